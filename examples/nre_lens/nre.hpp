// The neural ratio estimator of examples/nre_lens, shared with the programs
// that load its trained weights (e.g. a comparison against the
// exact-likelihood NUTS posterior): the network (a CNN image embedding and
// an MLP on the 7 standardised lens parameters joined by an MLP head with
// one logit), the nre.scales file (image scale, label standardisation and
// the recalibration of the logit), the prior of the 7 parameters and
// posterior draws of one image by NUTS on the recalibrated log ratio plus
// the log prior (sbi::RatioLogDensity, the image embedding computed once).
//
//   nre_model::TrainedNre nre = nre_model::TrainedNre::load("examples/nre_lens");
//   auto const r = nre_model::posterior_draws(space, nre, image);   // image: (1, 1, 32, 32), simulator units
//   // r.draws: (chain, draw, parameter) row-major, physical units, parameters in label_names order
//
// The simulator, its prior and the labels are those of npe_lens
// (npe_model.hpp).
#ifndef LENSING_EXAMPLES_NRE_LENS_NRE_HPP
#define LENSING_EXAMPLES_NRE_LENS_NRE_HPP

#include <lensing/nn/activation.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/flatten.hpp>
#include <lensing/nn/pooling.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/serialize.hpp>
#include <lensing/nn/two_input.hpp>
#include <lensing/sample/sampler.hpp>
#include <lensing/sbi/nre.hpp>
#include <lensing/simulate/lens_presets.hpp>

#include "../npe_lens/npe_model.hpp"

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace nre_model {

using npe_model::image_size;
using npe_model::label_names;
using npe_model::Mem;
using npe_model::num_params;
using npe_model::Scalar;
using npe_model::short_names;
using npe_model::Space;
using Tensor = lensing::nn::Tensor<Scalar, Mem>;

/// d(x, θ) = σ(f(x, θ)): the CNN of npe_lens (3 blocks of conv + ReLU + 2x2
/// max pool, 16/32/64 channels, dense 1024 -> 128 + ReLU) on the image, an
/// MLP 7 -> 64 -> 64 (ELU) on the standardised parameters, and the head
/// 192 -> 128 -> 64 -> 1 (ELU): smooth in θ, so NUTS sees a continuous
/// gradient.
inline auto make_network() {
  namespace nn = lensing::nn;
  using S = Scalar;
  using M = Mem;
  auto image = nn::make_sequential(nn::Conv2D<S, M>(1, 16, 5, 1, 2), nn::ReLU<S, M>(), nn::MaxPool2D<S, M>(2),
                                   nn::Conv2D<S, M>(16, 32, 3, 1, 1), nn::ReLU<S, M>(), nn::MaxPool2D<S, M>(2),
                                   nn::Conv2D<S, M>(32, 64, 3, 1, 1), nn::ReLU<S, M>(), nn::MaxPool2D<S, M>(2),
                                   nn::Flatten<S, M>(), nn::Dense<S, M>(64 * 4 * 4, 128), nn::ReLU<S, M>());
  auto params =
      nn::make_sequential(nn::Dense<S, M>(num_params, 64), nn::ELU<S, M>(), nn::Dense<S, M>(64, 64), nn::ELU<S, M>());
  auto head = nn::make_sequential(nn::Dense<S, M>(128 + 64, 128), nn::ELU<S, M>(), nn::Dense<S, M>(128, 64),
                                  nn::ELU<S, M>(), nn::Dense<S, M>(64, 1));
  return nn::make_two_input(image, params, head);
}
using Network = decltype(make_network());

/// nre.scales: the image scale (images are divided by it), the label
/// standardisation z = (θ − mean) / sd, and the recalibration of the logit
/// log r = logit_scale f + logit_shift (1 and 0 before recalibration).
struct Scales {
  double image_scale = 1;
  std::vector<double> mean, sd;
  double logit_scale = 1, logit_shift = 0;
  void write(std::string const& path) const {
    npe_model::ScalesFile{
        {{"image_scale", image_scale}, {"logit_scale", logit_scale}, {"logit_shift", logit_shift}}, mean, sd}
        .write(path);
  }
  static Scales read(std::string const& path) {
    npe_model::ScalesFile const f =
        npe_model::ScalesFile::read(path, {{"image_scale", 1.0}, {"logit_scale", 1.0}, {"logit_shift", 0.0}});
    Scales s;
    s.image_scale = f.value("image_scale");
    s.logit_scale = f.value("logit_scale");
    s.logit_shift = f.value("logit_shift");
    s.mean = f.mean;
    s.sd = f.sd;
    if (s.mean.size() != std::size_t(num_params) || !(s.image_scale > 0) || !std::isfinite(s.logit_scale) ||
        !std::isfinite(s.logit_shift))
      throw std::runtime_error("'" + path + "': expected image_scale, logit_scale, logit_shift and 7 labels");
    return s;
  }
};

/// The prior of the 7 parameters (galaxy_galaxy_priors, independent per
/// parameter): log p(θ) with its gradient added into grad (may be null).
struct LensPrior {
  std::vector<lensing::Prior<Scalar>> priors;
  LensPrior() {
    auto const table = lensing::simulate::galaxy_galaxy_priors<Scalar, Mem>();
    for (auto const& n : label_names)
      priors.push_back(table.prior(table.index(n)));
  }
  double operator()(double const* theta, double* grad) const {
    double v = 0;
    for (std::size_t j = 0; j < priors.size(); ++j) {
      v += priors[j].log_density(theta[j]);
      if (grad != nullptr) grad[j] += priors[j].gradient(theta[j]);
    }
    return v;
  }
};

/// A trained NRE: the network (inference mode) and its scales.
struct TrainedNre {
  Network net = make_network();
  Scales scales;
  LensPrior prior;
  /// Loads DIR/nre.weights and DIR/nre.scales.
  static TrainedNre load(std::string const& dir) {
    TrainedNre t;
    t.scales = Scales::read(dir + "/nre.scales");
    lensing::nn::load_weights(t.net, dir + "/nre.weights");
    t.net.set_training(false);
    return t;
  }
};

/// Options of posterior_draws (NUTS: lensing::sample).
struct DrawOptions {
  int chains = 4;
  int warmup = 500;
  int draws = 500;
  std::uint64_t seed = 1;
  int init_candidates = 2000;  ///< prior draws scored by the ratio; the best starts every chain
  int threads = 1;             ///< the density runs kernels: chains take turns
};

/// Draws of the recalibrated NRE posterior of one image and the run's statistics.
struct Draws {
  lensing::SampleResult result;  ///< result.draws: (chain, draw, parameter), physical units
  double seconds = 0;            ///< wall time: embedding, initialisation and NUTS
};

/// Posterior draws of `image` ((1, 1, 32, 32) in simulator units, i.e. as
/// the simulator renders it, before the division by the image scale): NUTS
/// (diagonal metric adapted in warm-up) on logit_scale f(x, θ) +
/// log p(θ), chains started at the best of `init_candidates` prior draws by
/// that density (evaluated in one batch on the cached image embedding).
inline Draws posterior_draws(Space const& space, TrainedNre& nre, Tensor const& image, DrawOptions const& o = {}) {
  namespace sbi = lensing::sbi;
  auto const t0 = std::chrono::steady_clock::now();
  if (image.extent(0) != 1 || image.extent(1) != 1 || image.extent(2) != std::size_t(image_size) ||
      image.extent(3) != std::size_t(image_size))
    throw std::invalid_argument("nre_model::posterior_draws: the image must be (1, 1, 32, 32)");
  Tensor x("nre_model::x", 1, 1, image_size, image_size);
  Kokkos::deep_copy(space, x, image);
  {
    Scalar* p = x.data();
    Scalar const inv = Scalar(1.0 / nre.scales.image_scale);
    Kokkos::parallel_for(
        "nre_model::scale", Kokkos::RangePolicy<Space>(space, 0, int(x.size())), KOKKOS_LAMBDA(int i) { p[i] *= inv; });
  }
  auto const& sc = nre.scales;
  int const d = num_params;
  // Initial point: the best prior draw by a f + log p.
  std::vector<double> init(static_cast<std::size_t>(d));
  {
    sbi::RatioFromEmbedding<Network> eval(nre.net);
    auto const e = eval.embed(space, x);
    int const m = std::max(1, o.init_candidates);
    Tensor z("nre_model::z", m, d, 1, 1);
    auto hz = Kokkos::create_mirror_view(z);
    std::vector<double> th(std::size_t(m) * std::size_t(d));
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < d; ++j) {
        lensing::random::Stream r(
            lensing::random::stream_key(o.seed, lensing::random::purpose_prior, std::uint64_t(i), std::uint64_t(j)));
        double const v = double(nre.prior.priors[std::size_t(j)].sample(r));
        th[std::size_t(i * d + j)] = v;
        hz(i, j, 0, 0) = Scalar((v - sc.mean[std::size_t(j)]) / sc.sd[std::size_t(j)]);
      }
    Kokkos::deep_copy(z, hz);
    auto const out = eval.logits(space, e, z);
    auto ho = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
    double best = -std::numeric_limits<double>::infinity();
    for (int i = 0; i < m; ++i) {
      double const v = sc.logit_scale * double(ho.data()[i]) + nre.prior(th.data() + i * d, nullptr);
      if (v > best) {
        best = v;
        std::copy(th.begin() + i * d, th.begin() + (i + 1) * d, init.begin());
      }
    }
  }
  sbi::RatioLogDensity<Network> dens(
      nre.net, x, sc.mean, sc.sd, [&nre](double const* t, double* g) { return nre.prior(t, g); }, sc.logit_scale,
      sc.logit_shift);
  lensing::SamplerOptions so;
  so.num_chains = o.chains;
  so.num_warmup = o.warmup;
  so.num_draws = o.draws;
  so.seed = o.seed;
  so.init = init;
  so.threads = o.threads;
  // The posterior's scale is ~0.1-0.5 prior sd: start the metric there.
  for (int j = 0; j < d; ++j)
    so.init_inv_metric.push_back(0.01 * sc.sd[std::size_t(j)] * sc.sd[std::size_t(j)]);
  so.init_step_size = 0.1;
  Draws r;
  r.result = lensing::sample(space, dens, so);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace nre_model

#endif  // LENSING_EXAMPLES_NRE_LENS_NRE_HPP
