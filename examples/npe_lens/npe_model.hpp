// The simulator and network of examples/npe_lens, shared with the programs
// that load its trained weights (examples/sbi_vs_nuts): the 32 x 32
// HST-like galaxy-galaxy simulator, the SimulatedBatches over its 7 lens
// parameters, the CNN + full-covariance MDN network and the npe.scales file.
#ifndef LENSING_EXAMPLES_NPE_LENS_NPE_MODEL_HPP
#define LENSING_EXAMPLES_NPE_LENS_NPE_MODEL_HPP

#include <lensing/model/instrument.hpp>
#include <lensing/nn/activation.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/flatten.hpp>
#include <lensing/nn/pooling.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/sbi/npe.hpp>
#include <lensing/simulate/data_source.hpp>
#include <lensing/simulate/lens_presets.hpp>
#include <lensing/simulate/simulator.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace npe_model {

using Scalar = float;
using Space = Kokkos::DefaultExecutionSpace;
using Mem = Space::memory_space;

constexpr int image_size = 32;
constexpr double pixel_scale = 0.1;  // arcsec: 3.2" on a side
constexpr int supersampling = 2;
constexpr int num_params = 7;
inline std::vector<std::string> const label_names{"lens0.theta_E",  "lens0.e1",     "lens0.e2",    "lens0.center_x",
                                                  "lens0.center_y", "lens1.gamma1", "lens1.gamma2"};
inline std::vector<std::string> const short_names{"theta_E", "e1", "e2", "center_x", "center_y", "gamma1", "gamma2"};

using Model = lensing::simulate::GalaxyGalaxyModel<Scalar>;
using Psf = lensing::GaussianFilter<Scalar, Mem>;
using Sim = lensing::simulate::Simulator<Model, Psf, Mem>;
using Source = lensing::simulate::SimulatedBatches<Sim>;

/// The simulator (HST-like band at 0.1" pixels) with the prior table
/// `table` (e.g. galaxy_galaxy_priors truncated by sbi::truncate_table);
/// `detector` defaults to the band's.
inline Sim make_simulator_with(Sim::table_type const& table, std::uint64_t seed, int capacity,
                               lensing::DetectorConfig const* detector = nullptr) {
  auto const band = lensing::presets::hst_like();
  auto const grid = lensing::PixelGrid<Scalar>::square(image_size, Scalar(pixel_scale), supersampling);
  lensing::simulate::SimulatorOptions opt;
  opt.seed = seed;
  opt.batch_capacity = capacity;
  return Sim(grid, Psf(band.psf_fwhm, pixel_scale, image_size, image_size, 5.0, capacity),
             detector ? *detector : band.detector_config(), table, opt);
}

/// The simulator of npe_lens: galaxy_galaxy_priors.
inline Sim make_simulator(std::uint64_t seed, int capacity, lensing::DetectorConfig const* detector = nullptr) {
  return make_simulator_with(lensing::simulate::galaxy_galaxy_priors<Scalar, Mem>(), seed, capacity, detector);
}

inline Source make_source(Sim const& sim, int batch, std::uint64_t first, long batches, bool fresh) {
  lensing::simulate::SimulatedBatchesOptions o;
  o.batch_size = batch;
  o.first_index = first;
  o.batches_per_epoch = batches;
  o.fresh_each_epoch = fresh;
  Source s(sim, o);
  s.select_labels(label_names);
  s.standardise_from_priors();
  return s;
}

/// CNN embedding (3 blocks of conv + ReLU + 2x2 max pool: 16, 32, 64
/// channels, 32 -> 4 pixels) to a 128-vector (the summary: activation
/// `summary_activation`), then the mixture head.
inline auto make_network(int batch, int k) {
  namespace nn = lensing::nn;
  using S = Scalar;
  using M = Mem;
  return nn::make_sequential(nn::Shape4{batch, 1, image_size, image_size}, nn::Conv2D<S, M>(1, 16, 5, 1, 2),
                             nn::ReLU<S, M>(), nn::MaxPool2D<S, M>(2), nn::Conv2D<S, M>(16, 32, 3, 1, 1),
                             nn::ReLU<S, M>(), nn::MaxPool2D<S, M>(2), nn::Conv2D<S, M>(32, 64, 3, 1, 1),
                             nn::ReLU<S, M>(), nn::MaxPool2D<S, M>(2), nn::Flatten<S, M>(),
                             nn::Dense<S, M>(64 * 4 * 4, 128), nn::ReLU<S, M>(),
                             nn::Dense<S, M>(128, int(lensing::sbi::mdn_full_outputs(k, num_params))));
}
using Network = decltype(make_network(1, 1));
constexpr std::size_t output_layer = 12;
/// Network::activation(summary_activation): the 128 features the head reads.
constexpr std::size_t summary_activation = 12;
constexpr int summary_size = 128;

/// The scales files of the SBI examples (npe.scales, nre.scales): "key value"
/// lines, then one "label NAME mean sd" line per parameter in label_names
/// order.  values holds the keys in file order with their defaults.
struct ScalesFile {
  std::vector<std::pair<std::string, double>> values;
  std::vector<double> mean, sd;
  void write(std::string const& path) const {
    std::ofstream f(path);
    f.precision(17);
    for (auto const& kv : values)
      f << kv.first << " " << kv.second << "\n";
    for (std::size_t k = 0; k < mean.size(); ++k)
      f << "label " << label_names[k] << " " << mean[k] << " " << sd[k] << "\n";
    if (!f) throw std::runtime_error("cannot write '" + path + "'");
  }
  /// Reads the keys of defaults (a key missing from the file keeps its
  /// default; other keys are skipped) and the label lines.
  static ScalesFile read(std::string const& path, std::vector<std::pair<std::string, double>> defaults) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot open '" + path + "'");
    ScalesFile s;
    s.values = std::move(defaults);
    std::string line;
    while (std::getline(f, line)) {
      std::istringstream in(line);
      std::string key, name;
      in >> key;
      if (key == "label") {
        double m = 0, d = 0;
        in >> name >> m >> d;
        s.mean.push_back(m);
        s.sd.push_back(d);
      } else {
        for (auto& kv : s.values)
          if (kv.first == key) in >> kv.second;
      }
      if (!in && !key.empty()) throw std::runtime_error("'" + path + "': bad line '" + line + "'");
    }
    return s;
  }
  double value(std::string const& key) const {
    for (auto const& kv : values)
      if (kv.first == key) return kv.second;
    throw std::logic_error("ScalesFile: no key '" + key + "'");
  }
};

/// npe.scales: image scale, K, label means and sds.
struct Scales {
  double image_scale = 1;
  int components = 2;
  std::vector<double> mean, sd;
  void write(std::string const& path) const {
    ScalesFile{{{"image_scale", image_scale}, {"components", double(components)}}, mean, sd}.write(path);
  }
  static Scales read(std::string const& path) {
    ScalesFile const f = ScalesFile::read(path, {{"image_scale", 1.0}, {"components", 2.0}});
    Scales s;
    s.image_scale = f.value("image_scale");
    s.components = int(f.value("components"));
    s.mean = f.mean;
    s.sd = f.sd;
    if (s.mean.size() != std::size_t(num_params) || !(s.image_scale > 0) || s.components < 1)
      throw std::runtime_error("'" + path + "': expected image_scale, components and 7 labels");
    return s;
  }
};

}  // namespace npe_model

#endif  // LENSING_EXAMPLES_NPE_LENS_NPE_MODEL_HPP
