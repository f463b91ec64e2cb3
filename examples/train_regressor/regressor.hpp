// The lens-parameter regressor shared by train_regressor and estimate: the
// network (a Hezaveh et al. 2017 style CNN: conv + pool blocks, a dense head
// with dropout), the 7 labels it predicts, the HST-like simulator it is
// trained on, and its sidecar file of label and image scales.
//
// Outputs per image: the means of the 7 standardised labels and the packed
// lower-triangular Cholesky factor of their precision matrix
// (nn::GaussianFullNLLLoss, 7 + 28 = 35 values); gaussian_full_unpack turns
// them into means and covariances.
#ifndef LENSING_EXAMPLES_REGRESSOR_HPP
#define LENSING_EXAMPLES_REGRESSOR_HPP

#include "../common/scaled_source.hpp"

#include <lensing/model/instrument.hpp>
#include <lensing/model/render.hpp>
#include <lensing/nn/activation.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/dropout.hpp>
#include <lensing/nn/flatten.hpp>
#include <lensing/nn/losses.hpp>
#include <lensing/nn/pooling.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/data_source.hpp>
#include <lensing/simulate/lens_presets.hpp>
#include <lensing/simulate/simulator.hpp>

#include <Kokkos_Core.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace regressor {

using examples::ScaledSource;

using Scalar = float;
using Space = Kokkos::DefaultExecutionSpace;
using Mem = Space::memory_space;
namespace nn = lensing::nn;

constexpr int image_size = 64;  // pixels at the HST-like 0.05"/pixel: 3.2" on a side
constexpr int num_params = 7;
inline std::vector<std::string> const& label_names() {
  static std::vector<std::string> const names{"lens0.theta_E",  "lens0.e1",     "lens0.e2",    "lens0.center_x",
                                              "lens0.center_y", "lens1.gamma1", "lens1.gamma2"};
  return names;
}
inline std::vector<std::string> const& short_names() {
  static std::vector<std::string> const names{"theta_E", "e1", "e2", "center_x", "center_y", "gamma1", "gamma2"};
  return names;
}

using Model = lensing::simulate::GalaxyGalaxyModel<Scalar>;
using Psf = lensing::GaussianFilter<Scalar, Mem>;
using Sim = lensing::simulate::Simulator<Model, Psf, Mem>;
using Source = lensing::simulate::SimulatedBatches<Sim>;

/// The HST-like galaxy-galaxy simulator (SIE + shear, Sersic source and lens
/// light, PSF, noise and artefacts), 64 x 64 pixels, supersampling 2.
inline Sim make_simulator(std::uint64_t seed, int capacity) {
  auto const band = lensing::presets::hst_like();
  auto const grid = lensing::PixelGrid<Scalar>::square(image_size, Scalar(band.pixel_scale), 2);
  lensing::simulate::SimulatorOptions opt;
  opt.seed = seed;
  opt.batch_capacity = capacity;
  return Sim(grid, Psf(band.psf_fwhm, band.pixel_scale, image_size, image_size, 5.0, capacity), band.detector_config(),
             lensing::simulate::galaxy_galaxy_priors<Scalar, Mem>(), opt);
}

/// A stream of simulated batches with the 7 labels, standardised by the
/// priors' means and standard deviations.
inline Source make_source(Sim const& sim, int batch, std::uint64_t first_index, long batches_per_epoch, bool fresh) {
  lensing::simulate::SimulatedBatchesOptions o;
  o.batch_size = batch;
  o.first_index = first_index;
  o.batches_per_epoch = batches_per_epoch;
  o.fresh_each_epoch = fresh;
  Source s(sim, o);
  s.select_labels(label_names());
  s.standardise_from_priors();
  return s;
}

/// The CNN for batches of `batch` images of 1 x 64 x 64: four blocks of
/// convolution (16, 32, 64, 64 channels; 5x5 then 3x3, same padding) + ReLU +
/// 2x2 max pooling, then dense 1024 -> 256, ReLU, dropout, dense 256 -> 35.
inline auto make_network(int batch, double dropout, std::uint64_t dropout_seed) {
  using S = Scalar;
  using M = Mem;
  return nn::make_sequential(
      nn::Shape4{batch, 1, image_size, image_size}, nn::Conv2D<S, M>(1, 16, 5, 1, 2), nn::ReLU<S, M>(),
      nn::MaxPool2D<S, M>(2), nn::Conv2D<S, M>(16, 32, 3, 1, 1), nn::ReLU<S, M>(), nn::MaxPool2D<S, M>(2),
      nn::Conv2D<S, M>(32, 64, 3, 1, 1), nn::ReLU<S, M>(), nn::MaxPool2D<S, M>(2), nn::Conv2D<S, M>(64, 64, 3, 1, 1),
      nn::ReLU<S, M>(), nn::MaxPool2D<S, M>(2), nn::Flatten<S, M>(), nn::Dense<S, M>(64 * 4 * 4, 256), nn::ReLU<S, M>(),
      nn::Dropout<S, M>(dropout, dropout_seed),
      nn::Dense<S, M>(256, int(nn::GaussianFullNLLLoss::num_outputs(num_params))));
}
using Network = decltype(make_network(1, 0.1, 0));
constexpr std::size_t output_layer = 16;

/// Sidecar of a trained network: the image scale and, per label, its name,
/// mean and standard deviation (standardised = (value - mean) / sd).
struct Scales {
  double image_scale = 1;
  double dropout = 0.1;
  std::vector<std::string> names;
  std::vector<double> mean, sd;
  void write(std::string const& path) const {
    std::ofstream f(path);
    f.precision(17);
    f << "image_scale " << image_scale << "\ndropout " << dropout << "\n";
    for (std::size_t k = 0; k < names.size(); ++k)
      f << "label " << names[k] << " " << mean[k] << " " << sd[k] << "\n";
    if (!f) throw std::runtime_error("cannot write '" + path + "'");
  }
  static Scales read(std::string const& path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot open '" + path + "'");
    Scales s;
    std::string line;
    while (std::getline(f, line)) {
      std::istringstream in(line);
      std::string key;
      in >> key;
      if (key == "image_scale") {
        in >> s.image_scale;
      } else if (key == "dropout") {
        in >> s.dropout;
      } else if (key == "label") {
        std::string n;
        double m = 0, d = 0;
        in >> n >> m >> d;
        s.names.push_back(n);
        s.mean.push_back(m);
        s.sd.push_back(d);
      }
      if (!in && !key.empty()) throw std::runtime_error("'" + path + "': bad line '" + line + "'");
    }
    if (s.names.size() != std::size_t(num_params) || !(s.image_scale > 0))
      throw std::runtime_error("'" + path + "': expected an image_scale and " + std::to_string(num_params) + " labels");
    return s;
  }
};

// Post-hoc variance calibration (calibration.txt beside the weights): per
// label k a factor s_k^2 on the predicted variance (full covariance
// C -> D C D, D = diag(s_k); so each sd is multiplied by s_k), fitted by
// train_regressor on a calibration stream disjoint from training, validation
// and test (validate::fit_variance_scales), once for the aleatoric sd of the
// single deterministic pass and once for the MC-dropout total sd (fitted
// with mc_passes passes; empty when not fitted).
struct Calibration {
  long lenses = 0;
  int mc_passes = 0;
  std::vector<double> aleatoric, total;
  void write(std::string const& path) const {
    std::ofstream f(path);
    f.precision(8);
    f << "# variance scales s_k^2 (sd -> s_k sd) fitted on " << lenses
      << " calibration lenses, stream 2^50 + [0, n)\nlabels";
    for (auto const& n : short_names())
      f << " " << n;
    f << "\naleatoric";
    for (double v : aleatoric)
      f << " " << v;
    f << "\n";
    if (!total.empty()) {
      f << "mc " << mc_passes;
      for (double v : total)
        f << " " << v;
      f << "\n";
    }
    if (!f) throw std::runtime_error("cannot write '" + path + "'");
  }
  static Calibration read(std::string const& path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot open '" + path + "'");
    Calibration c;
    std::string line;
    auto values = [&](std::istringstream& in, std::vector<double>& v) {
      double x = 0;
      while (in >> x)
        v.push_back(x);
      if (v.size() != std::size_t(num_params))
        throw std::runtime_error("'" + path + "': expected " + std::to_string(num_params) + " scales in '" + line +
                                 "'");
      for (double s : v)
        if (!(s > 0) || !std::isfinite(s)) throw std::runtime_error("'" + path + "': bad scale in '" + line + "'");
    };
    while (std::getline(f, line)) {
      std::istringstream in(line);
      std::string key;
      in >> key;
      if (key == "aleatoric") {
        values(in, c.aleatoric);
      } else if (key == "mc") {
        in >> c.mc_passes;
        values(in, c.total);
      }
    }
    if (c.aleatoric.empty()) throw std::runtime_error("'" + path + "': no 'aleatoric' line");
    return c;
  }
};

}  // namespace regressor

#endif  // LENSING_EXAMPLES_REGRESSOR_HPP
