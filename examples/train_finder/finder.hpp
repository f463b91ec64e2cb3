// The strong-lens finder shared by train_finder and classify: the LSST-like
// three-band (g, r, i) simulations of lenses and of non-lenses, the
// DataSource that mixes them 50/50, the networks (the 46-layer pre-activated
// bottleneck ResNet after CMU DeepLens, Lanusse et al. 2018, and a small
// ResNet of the same units) and the sidecar file of a trained network.
//
// Classes of cutout (45 x 45 pixels at 0.2"/pixel, channels g, r, i):
//   0 lens             SIE + shear lens with its Sersic lens light and a
//                      lensed Sersic source (label 1)
//   1 galaxy           the same lens-galaxy population, no source (label 0)
//   2 blue companion   a lens galaxy with a second, blue, unlensed and
//                      possibly elongated (arc-like) component 0-2" away:
//                      the source of class 0 with theta_E ~ 0.02" (label 0)
//   3 merger           two red lens-light galaxies up to 2.5" apart (label 0)
//   4 artefacts        empty sky with cosmic rays and hot/dead pixels at ten
//                      times the rate of the other classes (label 0)
// Every class has cosmic rays and hot/dead pixels at the default rates (so
// artefacts are no label cue), on top of the LSST-like ten-year coadd noise.
#ifndef LENSING_EXAMPLES_FINDER_HPP
#define LENSING_EXAMPLES_FINDER_HPP

#include <lensing/core/math.hpp>
#include <lensing/core/random.hpp>
#include <lensing/density/parameter_table.hpp>
#include <lensing/model/instrument.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/nn/activation.hpp>
#include <lensing/nn/batchnorm.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/pooling.hpp>
#include <lensing/nn/residual.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/data_source.hpp>
#include <lensing/simulate/multiband.hpp>
#include <lensing/sources/composite_light.hpp>
#include <lensing/sources/sersic.hpp>

#include <Kokkos_Core.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace finder {

using Scalar = float;
using Space = Kokkos::DefaultExecutionSpace;
using Mem = Space::memory_space;
namespace nn = lensing::nn;

constexpr int image_size = 45;  // pixels at 0.2"/pixel: 9" on a side
constexpr int num_bands = 3;    // g, r, i
constexpr int num_kinds = 5;
inline char const* kind_name(int k) {
  static char const* const names[num_kinds] = {"lens", "galaxy", "blue companion", "merger", "artefacts"};
  return names[k];
}

using S = Scalar;
using Lens = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
using Light = lensing::CompositeLight<lensing::SersicEllipse<S>, lensing::SersicEllipse<S>>;
using Model = lensing::LensModel<Lens, lensing::SersicEllipse<S>, Light>;
using Psf = lensing::GaussianFilter<S, Mem>;
using Multi = lensing::simulate::MultiBandSimulator<Model, Psf, Mem>;
using Table = lensing::ParameterTable<S, Mem>;
using P = lensing::Prior<S>;

inline std::vector<lensing::BandConfig> bands(int kind) {
  std::vector<lensing::BandConfig> b{lensing::presets::lsst_like('g'), lensing::presets::lsst_like('r'),
                                     lensing::presets::lsst_like('i')};
  for (auto& band : b) {
    band.detector.cosmic_rays = band.detector.hot_dead_pixels = true;
    if (kind == 4) {
      band.detector.cosmic.rate *= 10;
      band.detector.bad_pixels.hot_fraction *= 10;
      band.detector.bad_pixels.dead_fraction *= 10;
    }
  }
  return b;
}

/// Prior table of class `kind` (see the file comment).  Amplitudes in the r
/// band [e-/s per arcsec^2 at R_sersic]; colours (AB) uniform in magnitude:
/// blue source g-r in [0, 0.4], r-i in [0, 0.3]; red lens light g-r in
/// [1.2, 1.6], r-i in [0.4, 0.6] (both lens-light components share it).
inline Table priors(int kind) {
  auto const b = bands(kind);
  auto const& g = b[0];
  auto const& r = b[1];
  auto const& i = b[2];
  auto const colour = [&](lensing::BandConfig const& band, double lo, double hi) {
    using lensing::simulate::flux_ratio_of_colour;
    return P::log_uniform(flux_ratio_of_colour(hi, band, r), flux_ratio_of_colour(lo, band, r));
  };
  std::vector<std::pair<std::string, P>> e{{"lens0.theta_E", P::uniform(0.6, 2.4)},
                                           {"lens0.e1", P::truncated_normal(0, 0.1, -0.3, 0.3)},
                                           {"lens0.e2", P::truncated_normal(0, 0.1, -0.3, 0.3)},
                                           {"lens0.center_x", P::normal(0, 0.05)},
                                           {"lens0.center_y", P::normal(0, 0.05)},
                                           {"lens1.gamma1", P::normal(0, 0.03)},
                                           {"lens1.gamma2", P::normal(0, 0.03)},
                                           {"lens1.ra_0", P::fixed(0)},
                                           {"lens1.dec_0", P::fixed(0)},
                                           {"source0.amp", P::log_uniform(1.5, 60)},
                                           {"source0.R_sersic", P::log_uniform(0.1, 0.4)},
                                           {"source0.n_sersic", P::uniform(0.8, 2.0)},
                                           {"source0.e1", P::uniform(-0.3, 0.3)},
                                           {"source0.e2", P::uniform(-0.3, 0.3)},
                                           {"source0.center_x", P::uniform(-0.3, 0.3)},
                                           {"source0.center_y", P::uniform(-0.3, 0.3)},
                                           {"light0.amp", P::log_uniform(15, 60)},
                                           {"light0.R_sersic", P::log_uniform(0.5, 1.2)},
                                           {"light0.n_sersic", P::uniform(3, 4.5)},
                                           {"light0.e1", P::fixed(0)},
                                           {"light0.e2", P::fixed(0)},
                                           {"light0.center_x", P::fixed(0)},
                                           {"light0.center_y", P::fixed(0)},
                                           {"light1.amp", P::fixed(0)},
                                           {"light1.R_sersic", P::fixed(0.5)},
                                           {"light1.n_sersic", P::fixed(2)},
                                           {"light1.e1", P::fixed(0)},
                                           {"light1.e2", P::fixed(0)},
                                           {"light1.center_x", P::fixed(1)},
                                           {"light1.center_y", P::fixed(1)},
                                           {"g.source_flux_ratio", colour(g, 0.0, 0.4)},
                                           {"g.light_flux_ratio", colour(g, 1.2, 1.6)},
                                           {"i.source_flux_ratio", colour(i, -0.3, 0.0)},
                                           {"i.light_flux_ratio", colour(i, -0.6, -0.4)}};
  auto const set = [&](std::string const& name, P p) {
    for (auto& x : e)
      if (x.first == name) {
        x.second = p;
        return;
      }
    throw std::logic_error("finder::priors: no parameter " + name);
  };
  switch (kind) {
    case 0:
      break;
    case 1:
      set("source0.amp", P::fixed(0));
      break;
    case 2:
      // An unlensed blue component: the source seen through a negligible lens.
      set("lens0.theta_E", P::uniform(0.01, 0.03));
      set("source0.R_sersic", P::log_uniform(0.1, 0.6));
      set("source0.n_sersic", P::uniform(0.5, 2.0));
      set("source0.e1", P::uniform(-0.5, 0.5));
      set("source0.e2", P::uniform(-0.5, 0.5));
      set("source0.center_x", P::uniform(-2, 2));
      set("source0.center_y", P::uniform(-2, 2));
      break;
    case 3:
      set("source0.amp", P::fixed(0));
      set("light1.amp", P::log_uniform(5, 60));
      set("light1.R_sersic", P::log_uniform(0.3, 1.2));
      set("light1.n_sersic", P::uniform(1, 4.5));
      set("light1.e1", P::truncated_normal(0, 0.15, -0.4, 0.4));
      set("light1.e2", P::truncated_normal(0, 0.15, -0.4, 0.4));
      set("light1.center_x", P::uniform(-2.5, 2.5));
      set("light1.center_y", P::uniform(-2.5, 2.5));
      break;
    case 4:
      set("source0.amp", P::fixed(0));
      set("light0.amp", P::fixed(0));
      break;
    default:
      throw std::invalid_argument("finder::priors: kind must be in [0, 5)");
  }
  Table t(e);
  // The lens light follows the lens mass: same centre and ellipticity.
  t.tie("light0.center_x", "lens0.center_x");
  t.tie("light0.center_y", "lens0.center_y");
  t.tie("light0.e1", "lens0.e1");
  t.tie("light0.e2", "lens0.e2");
  return t;
}

/// The simulator of class `kind`: supersampling 2, at most `capacity`
/// images per call, and the same seed for every class.  One seed matters:
/// with a seed per class, the networks learnt each class's seed-fixed
/// detector pattern instead of the arcs (a lens and its source-less twin of
/// the same seed scored alike, 0.9994 both); the classes take disjoint
/// index ranges instead (class_index).
inline Multi make_simulator(int kind, std::uint64_t seed, int capacity) {
  (void)kind;
  lensing::simulate::MultiBandOptions opt;
  opt.seed = seed;
  opt.batch_capacity = capacity;
  opt.reference_band = "r";
  return Multi(bands(kind), image_size, image_size, 2, priors(kind), opt);
}

/// Images of the network: asinh(x / scale) of the sky-subtracted rates
/// [e-/s per pixel] (linear in the noise, about 0.6 sigma per unit at the
/// default scale 0.1, logarithmic in the bright lens-galaxy cores).
template <class ExecutionSpace, class V>
void stretch(ExecutionSpace const& space, V const& images, double scale) {
  Scalar* p = images.data();
  Scalar const inv = Scalar(1.0 / scale);
  Kokkos::parallel_for(
      "finder::stretch", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(images.size())),
      KOKKOS_LAMBDA(long i) { p[i] = lensing::math::asinh(p[i] * inv); });
}

/// The five class simulators of one seed.
struct Simulators {
  std::vector<Multi> sims;
  Simulators(std::uint64_t seed, int capacity) {
    for (int k = 0; k < num_kinds; ++k)
      sims.push_back(make_simulator(k, seed, capacity));
  }
};

/// Global index of image `index` of class `kind`: classes in disjoint
/// ranges of 2^44 images (below validation_first_index = 2^48).
inline std::uint64_t class_index(int kind, std::uint64_t index) { return (std::uint64_t(kind) << 44) + index; }

/// Images per batch of class k for batch size B (a multiple of 8): B/2
/// lenses, B/8 of each negative class.
inline int per_batch(int kind, int B) { return kind == 0 ? B / 2 : B / 8; }

/// A DataSource of lenses (label 1) and non-lenses (label 0), 50/50: batch
/// step s holds, in this order, the lenses of global index
/// first_index + j B/2 + [0, B/2) of the lens simulator and, for each of the
/// four negative classes, its images first_index + j B/8 + [0, B/8)
/// (each class's indices offset by class_index)
/// (j = s, or s mod batches_per_epoch for a fixed validation set).  Every
/// image is a function of (seed, class, global index) only, as a
/// SimulatedBatches' (the order within a batch does not matter to a
/// network trained on whole batches).  Images are stretched (finder::stretch)
/// when scale > 0, left as simulated (e-/s) when scale = 0.
class FinderSource {
 public:
  using scalar_type = Scalar;
  using memory_space = Mem;
  FinderSource(Simulators const& sims, int batch, std::uint64_t first_index, long batches_per_epoch, bool fresh,
               double scale)
      : m_sims(&sims),
        m_batch(batch),
        m_first(first_index),
        m_per_epoch(batches_per_epoch),
        m_fresh(fresh),
        m_scale(scale),
        m_images("finder_images", batch, num_bands, image_size, image_size),
        m_labels("finder_labels", batch, 1) {
    if (batch < 8 || batch % 8 != 0) throw std::invalid_argument("finder: the batch size must be a multiple of 8");
    int const K = sims.sims[0].num_labels();
    for (int k = 0; k < num_kinds; ++k) {
      if (sims.sims[std::size_t(k)].batch_capacity() < per_batch(k, batch))
        throw std::invalid_argument("finder: simulator capacity below the batch's share");
      m_raw.emplace_back("finder_raw", per_batch(k, batch), K);
    }
    auto h = Kokkos::create_mirror_view(m_labels);
    for (int b = 0; b < batch; ++b)
      h(b, 0) = b < batch / 2 ? Scalar(1) : Scalar(0);
    Kokkos::deep_copy(m_labels, h);
  }
  int batch_size() const { return m_batch; }
  int num_labels() const { return 1; }
  std::array<int, 3> sample_shape() const { return {num_bands, image_size, image_size}; }
  long batches_per_epoch() const { return m_per_epoch; }
  void start_epoch(long e) { m_step = m_fresh ? e * m_per_epoch : 0; }
  template <class ExecutionSpace>
  lensing::simulate::DataBatch<Scalar, Mem> next(ExecutionSpace const& space) {
    long const j = m_fresh ? m_step : m_step % m_per_epoch;
    int offset = 0;
    for (int k = 0; k < num_kinds; ++k) {
      int const n = per_batch(k, m_batch);
      auto const im =
          Kokkos::subview(m_images, Kokkos::make_pair(offset, offset + n), Kokkos::ALL, Kokkos::ALL, Kokkos::ALL);
      m_sims->sims[std::size_t(k)].generate(space, class_index(k, m_first + std::uint64_t(j) * std::uint64_t(n)), im,
                                            m_raw[std::size_t(k)]);
      offset += n;
    }
    if (m_scale > 0) stretch(space, m_images, m_scale);
    return {m_images, m_labels, m_step++};
  }
  /// Raw labels (the class's table columns) of the last batch's class k.
  lensing::View2D<Scalar, Mem> const& raw_labels(int k) const { return m_raw[std::size_t(k)]; }

 private:
  Simulators const* m_sims;
  int m_batch;
  std::uint64_t m_first;
  long m_per_epoch;
  bool m_fresh;
  double m_scale;
  long m_step = 0;
  lensing::View4D<Scalar, Mem> m_images;
  lensing::View2D<Scalar, Mem> m_labels;
  std::vector<lensing::View2D<Scalar, Mem>> m_raw;
};

//----------------------------------------------------------------------------
// Networks.  Pre-activated bottleneck units (nn/residual.hpp:
// BN-ELU-Conv1x1, BN-ELU-Conv3x3, BN-ELU-Conv1x1, expansion 4).

/// The DeepLens-like ResNet (Lanusse et al. 2018): a 7x7 input convolution
/// to 4w channels, five stages of three pre-activated bottleneck units
/// (bottleneck widths w, 2w, 4w, 8w, 16w; outputs 4x that; the first unit of
/// stages 2-5 halves the resolution 45 -> 23 -> 12 -> 6 -> 3 with a
/// projection shortcut), a final BN-ELU, global average pooling and one
/// logit: 1 + 15 x 3 = 46 convolution layers on the main path.  w = 8
/// gives 1.3 M parameters.
template <class Sc, class M>
auto make_deeplens(int w) {
  using C = nn::Conv2D<Sc, M>;
  auto pb = [](int ci, int cm, int co, int s) { return nn::make_preact_bottleneck<Sc, M>(ci, cm, co, s); };
  auto pi = [](int c, int cm) { return nn::make_preact_bottleneck_identity<Sc, M>(c, cm); };
  int const a = w, b = 2 * w, c = 4 * w, d = 8 * w, e = 16 * w;
  return nn::make_sequential(C(num_bands, 4 * a, 7, 1, 3), pi(4 * a, a), pi(4 * a, a), pi(4 * a, a),
                             pb(4 * a, b, 4 * b, 2), pi(4 * b, b), pi(4 * b, b), pb(4 * b, c, 4 * c, 2), pi(4 * c, c),
                             pi(4 * c, c), pb(4 * c, d, 4 * d, 2), pi(4 * d, d), pi(4 * d, d), pb(4 * d, e, 4 * e, 2),
                             pi(4 * e, e), pi(4 * e, e), nn::BatchNorm<Sc, M>(4 * e), nn::ELU<Sc, M>(),
                             nn::GlobalAvgPool<Sc, M>(), nn::Dense<Sc, M>(4 * e, 1));
}

/// A small ResNet of the same units: a 3x3 input convolution to 2w
/// channels, four pre-activated bottleneck units (widths w, 2w, 4w, 8w,
/// outputs 4x; the last three halve the resolution), BN-ELU, global average
/// pooling, one logit.  w = 8: 0.2 M parameters, ~10x cheaper than
/// make_deeplens(8); w = 2: the tiny network of the short mode.
template <class Sc, class M>
auto make_small(int w) {
  using C = nn::Conv2D<Sc, M>;
  auto pb = [](int ci, int cm, int co, int s) { return nn::make_preact_bottleneck<Sc, M>(ci, cm, co, s); };
  return nn::make_sequential(C(num_bands, 2 * w, 3, 1, 1), pb(2 * w, w, 4 * w, 1), pb(4 * w, 2 * w, 8 * w, 2),
                             pb(8 * w, 4 * w, 16 * w, 2), pb(16 * w, 8 * w, 32 * w, 2), nn::BatchNorm<Sc, M>(32 * w),
                             nn::ELU<Sc, M>(), nn::GlobalAvgPool<Sc, M>(), nn::Dense<Sc, M>(32 * w, 1));
}

using DeepLens = decltype(make_deeplens<Scalar, Mem>(8));
using Small = decltype(make_small<Scalar, Mem>(8));

/// Sidecar of a trained finder: architecture ("deeplens" or "small"), its
/// width, the stretch scale and the score threshold at 99 % rejection of
/// the held-out non-lenses (NaN before evaluation).
struct Meta {
  std::string arch = "small";
  int width = 8;
  double scale = 0.1;
  double threshold99 = std::nan("");
  void write(std::string const& path) const {
    std::ofstream f(path);
    f.precision(9);
    f << "arch " << arch << "\nwidth " << width << "\nscale " << scale << "\nthreshold99 " << threshold99 << "\n";
    if (!f) throw std::runtime_error("cannot write '" + path + "'");
  }
  static Meta read(std::string const& path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot read '" + path + "'");
    Meta m;
    std::string key;
    while (f >> key) {
      if (key == "arch")
        f >> m.arch;
      else if (key == "width")
        f >> m.width;
      else if (key == "scale")
        f >> m.scale;
      else if (key == "threshold99") {
        std::string v;
        f >> v;
        m.threshold99 = std::strtod(v.c_str(), nullptr);
      } else
        throw std::runtime_error("'" + path + "': unknown key '" + key + "'");
    }
    if ((m.arch != "deeplens" && m.arch != "small") || m.width < 1 || !(m.scale > 0))
      throw std::runtime_error("'" + path + "': bad arch, width or scale");
    return m;
  }
};

}  // namespace finder

#endif  // LENSING_EXAMPLES_FINDER_HPP
