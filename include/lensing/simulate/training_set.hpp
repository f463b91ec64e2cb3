#ifndef LENSING_SIMULATE_TRAINING_SET_HPP
#define LENSING_SIMULATE_TRAINING_SET_HPP

/// \file
/// Batched training-set generation: N strong-lens images with their labels,
/// drawn from a ParameterTable of priors, rendered, blurred and corrupted by
/// noise and detector artefacts on any execution space, written to disk in
/// resumable chunks (.npy, FITS, PNG mosaic) with progress on the terminal.
///
/// The chain per image (Hezaveh, Perreault Levasseur & Marshall 2017, Nature
/// 548, 555: real galaxy -> lens -> PSF -> masks -> cosmic rays -> noise ->
/// bias):
///
///   labels θ ~ priors (density/parameter_table.hpp)
///   -> lens SIE + external shear, source = procedural galaxy
///      (simulate/galaxies.hpp), lens light = elliptical Sérsic
///   -> supersampled ray shooting on the PixelGrid (k x k sub-pixels)
///   -> Gaussian PSF (lenstronomy's GAUSSIAN convention, psf/gaussian_filter.hpp)
///   -> sky + Poisson shot noise from the exposure time, read noise,
///      background noise, zero-point bias, cosmic rays, hot/dead pixels,
///      saturation, random masks (noise/).
///
/// Every random number comes from counter-based streams keyed by (seed,
/// purpose, global image index, element): a set generated in chunks of any
/// size, on any backend and thread count, equals the set generated at once.

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/core/parallel.hpp>
#include <lensing/core/special.hpp>
#include <lensing/core/views.hpp>
#include <lensing/density/parameter_table.hpp>
#include <lensing/geometry/pixel_grid.hpp>
#include <lensing/io/file.hpp>
#include <lensing/io/fits.hpp>
#include <lensing/io/npy.hpp>
#include <lensing/io/png.hpp>
#include <lensing/noise/bad_pixels.hpp>
#include <lensing/noise/cosmic_rays.hpp>
#include <lensing/noise/image_batch.hpp>
#include <lensing/noise/masks.hpp>
#include <lensing/noise/pixel_noise.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/galaxies.hpp>
#include <lensing/sources/sersic.hpp>

#include <Kokkos_Core.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace lensing {
namespace simulate {

//----------------------------------------------------------------------------
// Configuration.

/// Fixed (not drawn) settings of a simulated survey.  Defaults resemble a
/// Euclid-VIS-like wide survey: 0.1"/pixel, PSF FWHM 0.17", zero point 24.6
/// AB mag for 1 e-/s, 4 x 565 s = 2260 s, sky 22.3 mag/arcsec^2 (~190 e- per
/// pixel), read noise 4.5 e-.  Image values are count rates [e-/s],
/// sky-subtracted.
///
/// - `psf_fwhm` [arcsec]: Gaussian PSF applied to the binned image (0: none);
/// - `noise`: false gives the noiseless model (render + PSF) and skips every
///   noise and artefact step (the switches below are then ignored);
/// - sky: `sky_mag` [mag/arcsec^2] adds the sky rate s = 10^(-0.4 (sky_mag -
///   zero_point)) pixel_scale^2 before the Poisson draw, subtracted after
///   (so the sky contributes its shot noise only); `sky_mag` <= 0 disables;
/// - Poisson: N ~ Poisson((v + s) t) / t with t = `exposure_time` [s]; the
///   normal approximation above `poisson_normal_threshold` expected counts
///   (noise/pixel_noise.hpp: exact below; >= 10);
/// - `read_noise` [e- per pixel], `background_rms` [e-/s] extra Gaussian
///   noise, `bias_sigma` [e-/s] one zero-point offset N(0, bias_sigma) per image;
/// - `cosmic`, `bad_pixels`, `mask`: the noise/ models (their `exposure_time`
///   is set to `exposure_time` here); `saturation` [e-/s] clips (<= 0: none);
/// - `galaxy`: the procedural source model; its centre, size and flux are
///   overridden per image by the labels source_x, source_y, source_R,
///   source_mag (`offset` is set to 0).
struct TrainingSetConfig {
  int nx = 64, ny = 64;
  double pixel_scale = 0.1;  ///< [arcsec]
  int supersampling = 2;
  double psf_fwhm = 0.17;  ///< [arcsec], 0 = no PSF
  bool lens_light = true;
  bool noise = true;
  double zero_point = 24.6;  ///< AB magnitude of 1 e-/s
  double exposure_time = 2260;
  double sky_mag = 22.3;
  double poisson_normal_threshold = 1000;
  double read_noise = 4.5;
  double background_rms = 0;
  double bias_sigma = 1e-3;
  bool cosmic_rays = true, hot_dead_pixels = true, masks = true;
  noise::CosmicRayModel<double> cosmic{};
  noise::BadPixels<double> bad_pixels{1e-4, 0.5, 1e-4, 0.0, 0.5, true};
  noise::RandomMask<double> mask{0.3, 1.0, 4.0, 0.0, 16};
  double saturation = 0;
  GalaxyModel<double> galaxy{};
  std::uint64_t seed = 1;
  int chunk_size = 256;

  /// Throws std::invalid_argument on a bad setting.
  void check() const {
    constexpr char const* where = "lensing::simulate::TrainingSetConfig";
    check_count(nx, 1, where, "nx");
    check_count(ny, 1, where, "ny");
    check_positive(pixel_scale, where, "pixel_scale");
    check_count(supersampling, 1, where, "supersampling");
    check_argument(supersampling <= 16, where, "supersampling must be <= 16");
    check_nonnegative(psf_fwhm, where, "psf_fwhm");
    check_finite(zero_point, where, "zero_point");
    check_positive(exposure_time, where, "exposure_time");
    check_finite(sky_mag, where, "sky_mag");
    check_nonnegative(read_noise, where, "read_noise");
    check_nonnegative(background_rms, where, "background_rms");
    check_nonnegative(bias_sigma, where, "bias_sigma");
    check_finite(saturation, where, "saturation");
    check_count(chunk_size, 1, where, "chunk_size");
    noise::PoissonNoise<double>{exposure_time, poisson_normal_threshold}.check(where);
    auto c = cosmic;
    c.exposure_time = exposure_time;
    c.check(where);
    bad_pixels.check(where);
    mask.check(where);
    auto g = galaxy;
    g.offset = 0;
    g.check(where);
  }
};

/// Names of the labels the generator needs, in the default table's order:
///
/// | name | meaning | default prior |
/// |---|---|---|
/// | theta_E | SIE Einstein radius ["] | U(0.7, 1.6) |
/// | e1, e2 | SIE ellipticity (lenstronomy) | truncated N(0, 0.15) on [-0.4, 0.4] |
/// | center_x, center_y | lens centre ["] | truncated N(0, 0.05) on [-0.2, 0.2] |
/// | gamma1, gamma2 | external shear | truncated N(0, 0.05) on [-0.2, 0.2] |
/// | source_x, source_y | source centre (absolute) ["] | U(-0.3, 0.3) |
/// | source_R | source disk half-light radius ["] | log-U(0.08, 0.35) |
/// | source_mag | source AB magnitude (unlensed) | U(21.5, 24) |
/// | lens_mag | lens-light AB magnitude | U(18.5, 21) |
/// | lens_R | lens-light R_sersic ["] | log-U(0.4, 1.5) |
/// | lens_n | lens-light n_sersic | U(2.5, 5) |
///
/// The lens light shares the mass's centre and ellipticity.  Extra columns in
/// a user's table are drawn and written as labels but not used.
inline std::vector<std::string> const& training_set_parameter_names() {
  static std::vector<std::string> const names = {"theta_E",    "e1",       "e2",       "center_x", "center_y",
                                                 "gamma1",     "gamma2",   "source_x", "source_y", "source_R",
                                                 "source_mag", "lens_mag", "lens_R",   "lens_n"};
  return names;
}

/// The default priors (see training_set_parameter_names).
template <class Scalar, class MemorySpace>
ParameterTable<Scalar, MemorySpace> default_training_set_priors() {
  using P = Prior<Scalar>;
  return ParameterTable<Scalar, MemorySpace>({{"theta_E", P::uniform(0.7, 1.6)},
                                              {"e1", P::truncated_normal(0, 0.15, -0.4, 0.4)},
                                              {"e2", P::truncated_normal(0, 0.15, -0.4, 0.4)},
                                              {"center_x", P::truncated_normal(0, 0.05, -0.2, 0.2)},
                                              {"center_y", P::truncated_normal(0, 0.05, -0.2, 0.2)},
                                              {"gamma1", P::truncated_normal(0, 0.05, -0.2, 0.2)},
                                              {"gamma2", P::truncated_normal(0, 0.05, -0.2, 0.2)},
                                              {"source_x", P::uniform(-0.3, 0.3)},
                                              {"source_y", P::uniform(-0.3, 0.3)},
                                              {"source_R", P::log_uniform(0.08, 0.35)},
                                              {"source_mag", P::uniform(21.5, 24)},
                                              {"lens_mag", P::uniform(18.5, 21)},
                                              {"lens_R", P::log_uniform(0.4, 1.5)},
                                              {"lens_n", P::uniform(2.5, 5)}});
}

//----------------------------------------------------------------------------
// One simulated sky.

/// The sky of one training image, a kernel-callable brightness
/// f(x, y) = S(x - alpha(x)) + L(x) [e-/s per arcsec^2]: lens = SIE +
/// external shear, S = procedural Galaxy (0 outside its extent box, where
/// its light is exactly 0), L = elliptical Sérsic lens light (skipped when
/// `has_light` is false).  Trivially copyable.
template <class Scalar>
struct SimulatedSky {
  using Lens = Composite<SIE<Scalar>, ExternalShear<Scalar>>;
  Lens lens;
  Galaxy<Scalar> source;
  SersicEllipse<Scalar> light;
  bool has_light;

  KOKKOS_INLINE_FUNCTION Scalar operator()(Scalar x, Scalar y) const {
    auto const a = lens.deflection(x, y);
    Scalar const bx = x - a.x, by = y - a.y;
    Scalar s = 0;
    if (math::fabs(bx - source.center_x) <= source.extent && math::fabs(by - source.center_y) <= source.extent)
      s = source.surface_brightness(bx, by);
    if (has_light) s += light.surface_brightness(x, y);
    return s;
  }
};

namespace detail {
/// Host render of image rows (one work item = one image row): per fine
/// sub-row, batches of deflection_batch_capacity sub-pixels go through the
/// lens's vectorised deflection_batch, then the source galaxy and the lens
/// light as structure-of-arrays loops (vector pow/exp), accumulated into the
/// pixels in SimulatedSky's / Renderer's order (sub-row, then sub-column).
template <class Scalar, class Skies, class Out>
struct TrainingSetRenderRows {
  Skies skies;
  Out out;
  PixelGrid<Scalar> grid;
  int ny, nx;
  Scalar scale;  ///< area / k^2
  KOKKOS_INLINE_FUNCTION void operator()(long row) const {
    constexpr int cap = deflection_batch_capacity;
    int const b = int(row / ny), iy = int(row % ny);
    SimulatedSky<Scalar> const& f = skies(b);
    int const k = grid.supersampling(), fnx = nx * k, bk = (cap / k) * k;
    Scalar x[cap], y[cap], bx[cap], by[cap], v[cap];
    auto const le = lensing::detail::LightEllipse<Scalar>::make(f.light.e1, f.light.e2);
    Scalar const amp = f.light.amp, rs = f.light.R_sersic, ns = f.light.n_sersic, lx = f.light.center_x,
                 ly = f.light.center_y;
    for (int ix = 0; ix < nx; ++ix)
      out(b, iy, ix) = Scalar(0);
    for (int sy = 0; sy < k; ++sy) {
      Scalar const yy = grid.fine_y(iy * k + sy);
      // Batches of whole pixels (bk = cap rounded down to a multiple of k).
      for (int i0 = 0; i0 < fnx; i0 += bk) {
        int const m = math::min(bk, fnx - i0);
        for (int i = 0; i < m; ++i) {
          x[i] = grid.fine_x(i0 + i);
          y[i] = yy;
        }
        if constexpr (has_deflection_batch_v<typename SimulatedSky<Scalar>::Lens>) {
          f.lens.deflection_batch(m, x, y, bx, by);
          for (int i = 0; i < m; ++i) {
            bx[i] = x[i] - bx[i];
            by[i] = y[i] - by[i];
          }
        } else {
          // SIE's deflection is branch-free: this loop vectorises (libmvec atan, atanh).
          for (int i = 0; i < m; ++i) {
            auto const a = f.lens.deflection(x[i], y[i]);
            bx[i] = x[i] - a.x;
            by[i] = y[i] - a.y;
          }
        }
        for (int i = 0; i < m; ++i)
          v[i] = Scalar(0);
        f.source.add_surface_brightness(m, bx, by, v);
        if (f.has_light) {
          for (int i = 0; i < m; ++i) {
            Vec2<Scalar> p;
            Vec2<Scalar> const t = le.transform(Vec2<Scalar>{x[i] - lx, y[i] - ly}, p);
            v[i] += lensing::detail::SersicRadial<Scalar>(amp, rs, ns, t.x * t.x + t.y * t.y).I;
          }
        }
        if (out.stride(2) != 1) {  // a strided user view
          for (int j = 0; j < m / k; ++j)
            for (int sx = 0; sx < k; ++sx)
              out(b, iy, i0 / k + j) += v[j * k + sx];
          continue;
        }
        Scalar* __restrict const o = &out(b, iy, i0 / k);
        if (k == 2) {
          for (int j = 0; j < m / 2; ++j)
            o[j] = o[j] + v[2 * j] + v[2 * j + 1];
        } else {
          for (int j = 0; j < m / k; ++j) {
            Scalar acc = o[j];
            for (int sx = 0; sx < k; ++sx)
              acc += v[j * k + sx];
            o[j] = acc;
          }
        }
      }
    }
    for (int ix = 0; ix < nx; ++ix)
      out(b, iy, ix) *= scale;
  }
};
}  // namespace detail

/// Column indices of the required labels in a table (host).
struct TrainingSetColumns {
  int theta_E, e1, e2, center_x, center_y, gamma1, gamma2, source_x, source_y, source_R, source_mag, lens_mag, lens_R,
      lens_n;
};

/// Build image `index`'s sky from its label row `p` (p[col] = value): usable
/// on host and device; the galaxy's internal draws (bulge, clumps,
/// orientation) come from the stream (seed, purpose_galaxy, index).
template <class Scalar, class Row>
KOKKOS_INLINE_FUNCTION SimulatedSky<Scalar> make_simulated_sky(Row const& p, TrainingSetColumns const& c,
                                                               GalaxyModel<double> const& galaxy, double zero_point,
                                                               bool lens_light, std::uint64_t seed,
                                                               std::uint64_t index) {
  SimulatedSky<Scalar> s;
  Scalar const lens_theta[9] = {Scalar(p[c.theta_E]),  Scalar(p[c.e1]),       Scalar(p[c.e2]),
                                Scalar(p[c.center_x]), Scalar(p[c.center_y]), Scalar(p[c.gamma1]),
                                Scalar(p[c.gamma2]),   Scalar(p[c.center_x]), Scalar(p[c.center_y])};
  s.lens = SimulatedSky<Scalar>::Lens::unpack(lens_theta);
  GalaxyModel<Scalar> gm;
  gm.flux = math::pow(10.0, -0.4 * (double(p[c.source_mag]) - zero_point));
  gm.r_min = gm.r_max = double(p[c.source_R]);
  gm.q0 = galaxy.q0;
  gm.bt_min = galaxy.bt_min;
  gm.bt_max = galaxy.bt_max;
  gm.n_min = galaxy.n_min;
  gm.n_max = galaxy.n_max;
  gm.mean_clumps = galaxy.mean_clumps;
  gm.clump_max = galaxy.clump_max;
  gm.center_x = double(p[c.source_x]);
  gm.center_y = double(p[c.source_y]);
  gm.offset = 0;
  gm.trunc_factor = galaxy.trunc_factor;
  s.source = gm.draw(seed, index);
  // Lens light: amp from the total flux of SersicEllipse (its b_n is
  // math::sersic_b_lenstronomy): F = 2 pi n R^2 e^b b^(-2n) Gamma(2n) amp.
  double const n = double(p[c.lens_n]), r = double(p[c.lens_R]);
  double const b = math::sersic_b_lenstronomy(n);
  double const flux = math::pow(10.0, -0.4 * (double(p[c.lens_mag]) - zero_point));
  double const norm = 2 * math::pi<double> * n * r * r * math::exp(b + math::lgamma(2 * n) - 2 * n * math::log(b));
  s.light = SersicEllipse<Scalar>{Scalar(flux / norm),  Scalar(r),       Scalar(n),
                                  Scalar(p[c.e1]),      Scalar(p[c.e2]), Scalar(p[c.center_x]),
                                  Scalar(p[c.center_y])};
  s.has_light = lens_light;
  return s;
}

//----------------------------------------------------------------------------
// The generator.

/// Generates chunks of training images on any execution space.
///
/// generate(space, first_image, images, labels) fills images (m, ny, nx) and
/// labels (m, K) for global images [first_image, first_image + m), m <=
/// chunk_size: labels drawn from the table (ParameterTable::sample), one
/// SimulatedSky per image, then one pass over all m * ny * nx pixels (each
/// averaging its k x k sub-pixels as Renderer does: the same sums in the same
/// order), the batched Gaussian PSF (GaussianFilter's weights and "nearest"
/// edges, the same sums in the same order), then the noise chain of
/// TrainingSetConfig on the whole batch.  Owns its chunk buffers (built in
/// the constructor).  Asynchronous on `space`.
///
/// Why an analytic source rather than a pixelated stamp: evaluating the
/// galaxy's surface brightness at each ray-shot sub-pixel is exact at any
/// magnification (a stamp would be resampled, blurring the highly magnified
/// parts of arcs by its own pixel scale) and needs no per-image stamp buffer
/// or interpolation; its cost (a Sérsic bulge, an exponential disk and a few
/// Gaussian clumps, skipped outside the galaxy's box) is comparable to the
/// SIE deflection.  Users with real stamps use PixelatedSource and Renderer.
template <class Scalar, class MemorySpace>
class TrainingSetGenerator {
 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;
  using table_type = ParameterTable<Scalar, MemorySpace>;

  TrainingSetGenerator(TrainingSetConfig const& config, table_type const& table)
      : m_config(config),
        m_table(table),
        m_grid(config.nx, config.ny, Scalar(config.pixel_scale), config.supersampling),
        m_cosmic(cosmic_model(config), config.chunk_size) {
    constexpr char const* where = "lensing::simulate::TrainingSetGenerator";
    config.check();
    check_argument(table.size() > 0, where, "the parameter table is empty");
    auto col = [&](char const* name) {
      int const k = table.find(name);
      check_argument(k >= 0, where,
                     std::string("the parameter table has no '") + name +
                         "' (see training_set_parameter_names() for the required labels)");
      return k;
    };
    m_cols = {col("theta_E"),    col("e1"),       col("e2"),       col("center_x"), col("center_y"),
              col("gamma1"),     col("gamma2"),   col("source_x"), col("source_y"), col("source_R"),
              col("source_mag"), col("lens_mag"), col("lens_R"),   col("lens_n")};
    // The priors' supports must lie in the profiles' valid domains.
    auto support = [&](int k, double lo, double hi, char const* what) {
      auto const& p = table.prior(k);
      check_argument(p.lo >= lo && p.hi <= hi, where,
                     "the prior of '" + table.names()[k] + "' has support [" + std::to_string(p.lo) + ", " +
                         std::to_string(p.hi) + "], outside " + what);
    };
    support(m_cols.theta_E, 1e-6, 1e6, "(0, inf): use a uniform, log-uniform or truncated prior");
    support(m_cols.e1, -0.7, 0.7, "[-0.7, 0.7] (|e| < 1 needs bounded e1, e2)");
    support(m_cols.e2, -0.7, 0.7, "[-0.7, 0.7] (|e| < 1 needs bounded e1, e2)");
    support(m_cols.source_R, 1e-4, 1e3, "(0, inf)");
    support(m_cols.lens_R, 1e-4, 1e3, "(0, inf)");
    support(m_cols.lens_n, 0.5, 8, "[0.5, 8]");
    for (int k : {m_cols.center_x, m_cols.center_y, m_cols.gamma1, m_cols.gamma2, m_cols.source_x, m_cols.source_y,
                  m_cols.source_mag, m_cols.lens_mag})
      support(k, -1e3, 1e3, "[-1e3, 1e3]");
    int const chunk = config.chunk_size, ny = config.ny, nx = config.nx;
    m_skies = View1D<SimulatedSky<Scalar>, MemorySpace>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::TrainingSetGenerator::skies"), chunk);
    m_sharp =
        allocate_view<View3D<Scalar, MemorySpace>>(where, "lensing::TrainingSetGenerator::sharp", true, chunk, ny, nx);
    m_mask = allocate_view<View3D<Scalar, MemorySpace>>(where, "lensing::TrainingSetGenerator::mask", true,
                                                        config.masks ? chunk : 0, ny, nx);
    if (config.psf_fwhm > 0) {
      GaussianFilter<Scalar, MemorySpace> const g(config.psf_fwhm, config.pixel_scale, 1, 1);
      m_psf_weights = g.weights();
      m_psf_radius = g.radius();
    }
  }

  TrainingSetConfig const& config() const { return m_config; }
  table_type const& table() const { return m_table; }
  PixelGrid<Scalar> const& grid() const { return m_grid; }
  int chunk_size() const { return m_config.chunk_size; }
  int num_labels() const { return m_table.size(); }
  std::vector<std::string> const& label_names() const { return m_table.names(); }
  TrainingSetColumns const& columns() const { return m_cols; }
  /// Masks (1 good, 0 masked) of the last generate call's images (empty
  /// when masks are off).
  View3D<Scalar, MemorySpace> const& masks() const { return m_mask; }

  /// Sky of image `index` from its label row (host; for tests and plots).
  template <class Row>
  SimulatedSky<Scalar> sky(Row const& labels_row, std::uint64_t index) const {
    return make_simulated_sky<Scalar>(labels_row, m_cols, m_config.galaxy, m_config.zero_point, m_config.lens_light,
                                      m_config.seed, index);
  }

  /// Fill images (m, ny, nx) and labels (m, num_labels) for global images
  /// [first_image, first_image + m); see the class comment.
  template <class ExecutionSpace, class Images, class Labels>
  void generate(ExecutionSpace const& space, std::uint64_t first_image, Images const& images,
                Labels const& labels) const {
    constexpr char const* where = "lensing::simulate::TrainingSetGenerator::generate";
    static_assert(is_execution_space_v<ExecutionSpace>,
                  "lensing::simulate::TrainingSetGenerator::generate: first argument must be a Kokkos execution space");
    static_assert(Images::rank == 3 && std::is_same<typename Images::value_type, Scalar>::value,
                  "lensing::simulate::TrainingSetGenerator::generate: images must be a rank-3 view (m, ny, nx) of "
                  "the generator's Scalar");
    static_assert(Labels::rank == 2 && std::is_same<typename Labels::value_type, Scalar>::value,
                  "lensing::simulate::TrainingSetGenerator::generate: labels must be a rank-2 view (m, K) of the "
                  "generator's Scalar");
    static_assert(is_accessible_from_v<ExecutionSpace, typename Images::memory_space> &&
                      is_accessible_from_v<ExecutionSpace, typename Labels::memory_space> &&
                      is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::simulate::TrainingSetGenerator::generate: views and the generator's buffers must be "
                  "accessible from the execution space");
    auto const& c = m_config;
    int const m = int(images.extent(0));
    check_argument(
        m >= 1 && m <= c.chunk_size, where,
        "images.extent(0) must be in [1, chunk_size = " + std::to_string(c.chunk_size) + "], got " + std::to_string(m));
    check_extents(images, where, "images", "(m, ny, nx)", m, c.ny, c.nx);
    check_extents(labels, where, "labels", "(images.extent(0), num_labels)", m, m_table.size());
    std::uint64_t const seed = c.seed;
    // 1. Labels and skies.
    m_table.sample(space, labels, seed, first_image);
    auto const skies = m_skies;
    auto const cols = m_cols;
    auto const galaxy = c.galaxy;
    double const zp = c.zero_point;
    bool const light = c.lens_light;
    Kokkos::parallel_for(
        "lensing::simulate::training_set_skies", Kokkos::RangePolicy<ExecutionSpace>(space, 0, m),
        KOKKOS_LAMBDA(int b) {
          auto const row = Kokkos::subview(labels, b, Kokkos::ALL);
          skies(b) = make_simulated_sky<Scalar>(row, cols, galaxy, zp, light, seed, first_image + b);
        });
    // 2. Render (supersampled), 3. PSF.
    bool const psf = c.psf_fwhm > 0;
    auto const sharp = psf ? Kokkos::subview(m_sharp, Kokkos::make_pair(0, m), Kokkos::ALL, Kokkos::ALL)
                           : Kokkos::subview(images, Kokkos::make_pair(0, m), Kokkos::ALL, Kokkos::ALL);
    auto const grid = m_grid;
    int const k = grid.supersampling();
    Scalar const area = grid.pixel_scale() * grid.pixel_scale();
    Scalar const w = area / Scalar(k * k);
    noise::detail::BatchShape const shape{m, c.ny, c.nx};
    if constexpr (lensing::detail::is_host_space_v<ExecutionSpace>) {
      Kokkos::parallel_for("lensing::simulate::training_set_render",
                           Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(m) * c.ny),
                           detail::TrainingSetRenderRows<Scalar, decltype(skies), std::decay_t<decltype(sharp)>>{
                               skies, sharp, grid, c.ny, c.nx, k == 1 ? area : w});
    } else {
      noise::detail::for_each_pixel(
          "lensing::simulate::training_set_render", space, shape, KOKKOS_LAMBDA(int b, int iy, int ix) {
            SimulatedSky<Scalar> const& f = skies(b);
            if (k == 1) {
              sharp(b, iy, ix) = area * f(grid.x(ix), grid.y(iy));
            } else {
              Scalar s = 0;
              for (int sy = 0; sy < k; ++sy)
                for (int sx = 0; sx < k; ++sx)
                  s += f(grid.fine_x(ix * k + sx), grid.fine_y(iy * k + sy));
              sharp(b, iy, ix) = w * s;
            }
          });
    }
    if (psf) blur(space, sharp, images);
    if (!c.noise) return;
    // 4. Noise and artefacts, in the order of noise/pixel_noise.hpp.
    Scalar const sky = c.sky_mag > 0
                           ? Scalar(std::pow(10.0, -0.4 * (c.sky_mag - c.zero_point)) * c.pixel_scale * c.pixel_scale)
                           : Scalar(0);
    if (sky > 0)
      noise::detail::for_each_value(
          "lensing::simulate::add_sky", space, images, KOKKOS_LAMBDA(int, int, int, Scalar& v) { v += sky; });
    noise::PoissonNoise<Scalar> poisson{Scalar(c.exposure_time), c.poisson_normal_threshold};
    noise::apply(space, poisson, images, seed, first_image);
    if (sky > 0)
      noise::detail::for_each_value(
          "lensing::simulate::subtract_sky", space, images, KOKKOS_LAMBDA(int, int, int, Scalar& v) { v -= sky; });
    if (c.read_noise > 0)
      noise::apply(space, noise::ReadNoise<Scalar>{Scalar(c.read_noise), Scalar(c.exposure_time)}, images, seed,
                   first_image);
    if (c.background_rms > 0)
      noise::apply(space, noise::GaussianNoise<Scalar>{Scalar(c.background_rms)}, images, seed, first_image);
    if (c.bias_sigma > 0)
      noise::apply(space, noise::ZeroPointBias<Scalar>{Scalar(0), Scalar(c.bias_sigma)}, images, seed, first_image);
    if (c.cosmic_rays) m_cosmic.apply(space, images, seed, first_image);
    if (c.hot_dead_pixels) {
      auto const& h = c.bad_pixels;
      noise::apply(space,
                   noise::BadPixels<Scalar>{Scalar(h.hot_fraction), Scalar(h.hot_value), Scalar(h.dead_fraction),
                                            Scalar(h.dead_value), Scalar(h.sigma_log), h.fixed_pattern},
                   images, seed, first_image);
    }
    if (c.saturation > 0) noise::apply(space, noise::Saturation<Scalar>{Scalar(c.saturation)}, images);
    if (c.masks) {
      auto const& r = c.mask;
      auto const mask = Kokkos::subview(m_mask, Kokkos::make_pair(0, m), Kokkos::ALL, Kokkos::ALL);
      noise::apply(space,
                   noise::RandomMask<Scalar>{Scalar(r.mean_count), Scalar(r.min_radius), Scalar(r.max_radius),
                                             Scalar(r.fill_value), r.max_count},
                   images, mask, seed, first_image);
    }
  }

  // Public only because nvcc forbids extended lambdas in private member
  // functions; not part of the interface.
  template <class ExecutionSpace, class In, class Out>
  void blur(ExecutionSpace const& space, In const& in, Out const& out) const;

 private:
  static noise::CosmicRayModel<Scalar> cosmic_model(TrainingSetConfig const& c) {
    auto const& m = c.cosmic;
    noise::CosmicRayModel<Scalar> r;
    r.rate = Scalar(m.rate);
    r.depth = Scalar(m.depth);
    r.max_length = Scalar(m.max_length);
    r.width = Scalar(m.width);
    r.charge_per_depth = Scalar(m.charge_per_depth);
    r.sigma_log = Scalar(m.sigma_log);
    r.exposure_time = Scalar(c.exposure_time > 0 ? c.exposure_time : 1);
    r.max_tracks = m.max_tracks;
    return r;
  }

  TrainingSetConfig m_config;
  table_type m_table;
  PixelGrid<Scalar> m_grid;
  TrainingSetColumns m_cols{};
  noise::CosmicRays<Scalar, MemorySpace> m_cosmic;
  View1D<SimulatedSky<Scalar>, MemorySpace> m_skies;
  View3D<Scalar, MemorySpace> m_sharp, m_mask;
  View1D<Scalar, MemorySpace> m_psf_weights;
  int m_psf_radius = 0;
};

// Batched separable Gaussian blur with GaussianFilter's weights and
// "nearest" edges (its sums, in its order): x pass in -> out, y pass
// out -> in (free after the x pass), then a copy into out.
template <class Scalar, class MemorySpace>
template <class ExecutionSpace, class In, class Out>
void TrainingSetGenerator<Scalar, MemorySpace>::blur(ExecutionSpace const& space, In const& in, Out const& out) const {
  auto const w = m_psf_weights;
  int const r = m_psf_radius, ny = m_config.ny, nx = m_config.nx;
  noise::detail::BatchShape const shape{int(out.extent(0)), ny, nx};
  if constexpr (lensing::detail::is_host_space_v<ExecutionSpace>) {
    constexpr int cap = 512;
    if (nx + 2 * r <= cap && in.stride(2) == 1 && out.stride(2) == 1) {
      // Host: the same sums in the same order, as vectorisable row loops
      // without a copy: x pass in place on each row of `in` (from an
      // edge-padded copy of the row), then y pass in -> out.
      long const rows = long(shape.n) * ny;
      Kokkos::parallel_for(
          "lensing::simulate::training_set_psf_x",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, rows), KOKKOS_LAMBDA(long row) {
            Scalar buf[cap];
            Scalar* __restrict const p = &in(int(row / ny), int(row % ny), 0);
            for (int j = 0; j < nx + 2 * r; ++j)
              buf[j] = p[j - r < 0 ? 0 : (j - r >= nx ? nx - 1 : j - r)];
            for (int ix = 0; ix < nx; ++ix)
              p[ix] = Scalar(0);
            for (int m = 0; m <= 2 * r; ++m) {
              Scalar const wm = w(m);
              for (int ix = 0; ix < nx; ++ix)
                p[ix] += wm * buf[ix + m];
            }
          });
      Kokkos::parallel_for(
          "lensing::simulate::training_set_psf_y",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, rows), KOKKOS_LAMBDA(long row) {
            int const b = int(row / ny), iy = int(row % ny);
            Scalar* __restrict const o = &out(b, iy, 0);
            for (int ix = 0; ix < nx; ++ix)
              o[ix] = Scalar(0);
            for (int m = -r; m <= r; ++m) {
              Scalar const wm = w(m + r);
              Scalar const* __restrict const q = &in(b, iy + m < 0 ? 0 : (iy + m >= ny ? ny - 1 : iy + m), 0);
              for (int ix = 0; ix < nx; ++ix)
                o[ix] += wm * q[ix];
            }
          });
      return;
    }
  }
  // x pass: out(b, iy, ix) = sum_m w_m in(b, iy, clamp(ix + m)), summed in m order from 0.
  noise::detail::for_each_segment(
      "lensing::simulate::training_set_psf_x", space, shape, KOKKOS_LAMBDA(int b, int iy, int ix0, int ix1) {
        for (int ix = ix0; ix < ix1; ++ix)
          out(b, iy, ix) = Scalar(0);
        for (int m = -r; m <= r; ++m) {
          Scalar const wm = w(m + r);
          for (int ix = ix0; ix < ix1; ++ix)
            out(b, iy, ix) += wm * in(b, iy, ix + m < 0 ? 0 : (ix + m >= nx ? nx - 1 : ix + m));
        }
      });
  // y pass: in(b, iy, ix) = sum_m w_m out(b, clamp(iy + m), ix), then copied to out.
  noise::detail::for_each_segment(
      "lensing::simulate::training_set_psf_y", space, shape, KOKKOS_LAMBDA(int b, int iy, int ix0, int ix1) {
        for (int ix = ix0; ix < ix1; ++ix)
          in(b, iy, ix) = Scalar(0);
        for (int m = -r; m <= r; ++m) {
          Scalar const wm = w(m + r);
          int const sy = iy + m < 0 ? 0 : (iy + m >= ny ? ny - 1 : iy + m);
          for (int ix = ix0; ix < ix1; ++ix)
            in(b, iy, ix) += wm * out(b, sy, ix);
        }
      });
  Kokkos::deep_copy(space, out, in);
}

//----------------------------------------------------------------------------
// Writing a set to disk.

/// Options of write_training_set.
struct TrainingSetWriteOptions {
  bool progress = true;                                ///< a progress line on stderr per chunk
  int mosaic_count = 36;                               ///< images in mosaic.png (0: none; at most 64)
  int mosaic_scale = 2;                                ///< screen pixels per image pixel
  std::size_t merge_max_bytes = std::size_t(2) << 30;  ///< merge chunks into images.npy / images.fits below this
  bool write_masks = false;                            ///< also masks_NNNNNN.npy per chunk (float32, 1 = good)
};

/// What write_training_set did.
struct TrainingSetSummary {
  long images = 0;     ///< total in the set
  long generated = 0;  ///< generated by this call (the rest were found on disk)
  int chunks = 0, chunks_skipped = 0;
  double generate_seconds = 0;   ///< generation only (kernels, fenced)
  double total_seconds = 0;      ///< including file output
  double images_per_second = 0;  ///< generated / generate_seconds
  std::vector<std::string> files;
};

namespace detail {
inline std::string chunk_name(std::string const& stem, int chunk, char const* ext) {
  std::ostringstream s;
  s << stem << "_" << std::setw(6) << std::setfill('0') << chunk << ext;
  return s.str();
}

// Text that identifies a set: resuming into a directory written with other
// settings is refused.
template <class Gen>
std::string training_set_manifest(Gen const& g, long n) {
  auto const& c = g.config();
  std::ostringstream s;
  s << std::setprecision(17);
  s << "lensing training set\n"
    << "images " << n << "\nny " << c.ny << "\nnx " << c.nx << "\npixel_scale " << c.pixel_scale << "\nsupersampling "
    << c.supersampling << "\nscalar " << (sizeof(typename Gen::scalar_type) == 4 ? "float" : "double") << "\nseed "
    << c.seed << "\nchunk_size " << c.chunk_size << "\npsf_fwhm " << c.psf_fwhm << "\nnoise " << c.noise
    << "\nzero_point " << c.zero_point << "\nexposure_time " << c.exposure_time << "\nsky_mag " << c.sky_mag
    << "\nread_noise " << c.read_noise << "\ncosmic_rays " << c.cosmic_rays << "\nhot_dead_pixels " << c.hot_dead_pixels
    << "\nmasks " << c.masks << "\nlens_light " << c.lens_light << "\n";
  for (int k = 0; k < g.num_labels(); ++k) {
    auto const& p = g.table().prior(k);
    s << "label " << g.label_names()[k] << " kind " << int(p.kind) << " " << p.p0 << " " << p.p1 << " " << p.lo << " "
      << p.hi << "\n";
  }
  return s.str();
}

inline void write_text(std::string const& path, std::string const& text) {
  // Atomic (temporary + rename): an interrupted run never leaves a
  // truncated manifest that a resume would take for other settings.
  io::write_file_atomically(path, text.data(), text.size(), "lensing::simulate::write_training_set");
}
}  // namespace detail

/// Generate images [0, n) with `generator` on `space` and write them into
/// directory `dir` (created if needed):
///
/// - chunks/images_NNNNNN.npy (m, ny, nx) float32 and chunks/labels_NNNNNN.npy
///   (m, K) float64 per chunk of chunk_size images (chunk NNNNNN starts at
///   image NNNNNN * chunk_size).  Every file this function writes (chunks,
///   manifest, merged files, mosaic) is written to a temporary name beside
///   it and renamed (io/file.hpp), so an interrupted or failed run never
///   leaves a truncated file: a chunk whose two files exist is complete and
///   a later call skips it (resume after an interruption), and the merged
///   files are either complete or absent (or a previous complete version);
/// - manifest.txt: the settings; a call on a directory whose manifest
///   differs throws std::runtime_error (delete it or choose another dir);
/// - labels_names.txt: the K label names, one per line (column order);
/// - when n ny nx 4 bytes <= merge_max_bytes: images.npy (n, ny, nx)
///   float32, labels.npy (n, K) float64, images.fits (a cube, NAXIS3 = n,
///   with PNAMEi = label names, PIXSCALE, SUPERSMP, PSFFWHM, MAGZP, EXPTIME,
///   SEED, BUNIT keywords) and labels.fits (n x K, double, PNAMEi);
///   above it only the chunk files;
/// - mosaic.png: the first mosaic_count images (sqrt stretch per image,
///   between its 1st and 99.5th percentiles).
///
/// Progress on stderr: images done, images/s.  Returns a summary.
template <class ExecutionSpace, class Scalar, class MemorySpace>
TrainingSetSummary write_training_set(ExecutionSpace const& space,
                                      TrainingSetGenerator<Scalar, MemorySpace> const& generator, long n,
                                      std::string const& dir, TrainingSetWriteOptions const& options = {}) {
  namespace fs = std::filesystem;
  constexpr char const* where = "lensing::simulate::write_training_set";
  check_argument(n >= 1, where, "n must be >= 1, got " + std::to_string(n));
  check_argument(!dir.empty(), where, "the output directory name is empty");
  check_argument(options.mosaic_count >= 0 && options.mosaic_count <= 64, where, "mosaic_count must be in [0, 64]");
  check_count(options.mosaic_scale, 1, where, "mosaic_scale");
  auto const t_start = std::chrono::steady_clock::now();
  auto const& c = generator.config();
  int const chunk = c.chunk_size, ny = c.ny, nx = c.nx, K = generator.num_labels();
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "chunks", ec);
  if (ec) throw std::runtime_error(std::string(where) + ": cannot create " + dir + "/chunks: " + ec.message());
  std::string const manifest = detail::training_set_manifest(generator, n);
  std::string const manifest_path = dir + "/manifest.txt";
  if (fs::exists(manifest_path)) {
    std::ifstream f(manifest_path);
    std::stringstream old;
    old << f.rdbuf();
    if (old.str() != manifest)
      throw std::runtime_error(std::string(where) + ": " + dir +
                               " holds a training set with other settings (manifest.txt differs); delete it or "
                               "choose another output directory");
  } else {
    detail::write_text(manifest_path, manifest);
  }
  TrainingSetSummary sum;
  sum.images = n;
  sum.chunks = int((n + chunk - 1) / chunk);
  sum.files.push_back(manifest_path);
  {
    std::string names;
    for (auto const& s : generator.label_names())
      names += s + "\n";
    detail::write_text(dir + "/labels_names.txt", names);
    sum.files.push_back(dir + "/labels_names.txt");
  }
  auto const images =
      allocate_view<View3D<Scalar, MemorySpace>>(where, "lensing::write_training_set::images", true, chunk, ny, nx);
  auto const labels =
      allocate_view<View2D<Scalar, MemorySpace>>(where, "lensing::write_training_set::labels", true, chunk, K);
  std::vector<float> host_images;
  std::vector<double> host_labels, host_masks;
  for (int ci = 0; ci < sum.chunks; ++ci) {
    long const first = long(ci) * chunk;
    int const m = int(std::min<long>(chunk, n - first));
    std::string const img_path = dir + "/chunks/" + detail::chunk_name("images", ci, ".npy");
    std::string const lab_path = dir + "/chunks/" + detail::chunk_name("labels", ci, ".npy");
    if (fs::exists(img_path) && fs::exists(lab_path)) {
      ++sum.chunks_skipped;
    } else {
      auto const img = Kokkos::subview(images, Kokkos::make_pair(0, m), Kokkos::ALL, Kokkos::ALL);
      auto const lab = Kokkos::subview(labels, Kokkos::make_pair(0, m), Kokkos::ALL);
      auto const t0 = std::chrono::steady_clock::now();
      generator.generate(space, std::uint64_t(first), img, lab);
      space.fence();
      sum.generate_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      sum.generated += m;
      auto const hi = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), img);
      auto const hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lab);
      host_images.assign(hi.data(), hi.data() + size_t(m) * ny * nx);
      host_labels.assign(hl.data(), hl.data() + size_t(m) * K);
      // Every file is replaced atomically (io::write_npy: temporary +
      // rename); the images file is written last, so a chunk whose two
      // files exist is complete.
      if (options.write_masks && c.masks && c.noise) {
        auto const hm = Kokkos::create_mirror_view_and_copy(
            Kokkos::HostSpace(), Kokkos::subview(generator.masks(), Kokkos::make_pair(0, m), Kokkos::ALL, Kokkos::ALL));
        std::vector<float> mk(hm.data(), hm.data() + size_t(m) * ny * nx);
        io::write_npy(dir + "/chunks/" + detail::chunk_name("masks", ci, ".npy"), mk.data(),
                      {size_t(m), size_t(ny), size_t(nx)});
      }
      io::write_npy(lab_path, host_labels.data(), {size_t(m), size_t(K)});
      io::write_npy(img_path, host_images.data(), {size_t(m), size_t(ny), size_t(nx)});
    }
    if (options.progress) {
      long const done = first + m;
      double const rate = sum.generate_seconds > 0 ? sum.generated / sum.generate_seconds : 0;
      std::fprintf(stderr, "\r[lensing] %ld / %ld images (%d/%d chunks, %d found on disk), %.0f images/s   ", done, n,
                   ci + 1, sum.chunks, sum.chunks_skipped, rate);
      std::fflush(stderr);
    }
  }
  if (options.progress) std::fprintf(stderr, "\n");
  sum.images_per_second = sum.generate_seconds > 0 ? sum.generated / sum.generate_seconds : 0;

  // Merged files and the mosaic, from the chunk files (also a check that they read back).
  bool const merge = size_t(n) * ny * nx * sizeof(float) <= options.merge_max_bytes;
  int const n_mosaic = int(std::min<long>(options.mosaic_count, n));
  std::vector<float> all_images, mosaic_images;
  std::vector<double> all_labels;
  for (int ci = 0; ci < sum.chunks; ++ci) {
    long const first = long(ci) * chunk;
    if (!merge && first >= n_mosaic) break;
    auto const a = io::read_npy<float>(dir + "/chunks/" + detail::chunk_name("images", ci, ".npy"));
    auto const l = io::read_npy<double>(dir + "/chunks/" + detail::chunk_name("labels", ci, ".npy"));
    int const m = int(std::min<long>(chunk, n - first));
    if (a.shape.size() != 3 || a.shape[0] != size_t(m) || a.shape[1] != size_t(ny) || a.shape[2] != size_t(nx) ||
        l.shape.size() != 2 || l.shape[0] != size_t(m) || l.shape[1] != size_t(K))
      throw std::runtime_error(std::string(where) + ": chunk " + std::to_string(ci) + " in " + dir +
                               "/chunks has the wrong shape (a different set?); delete it to regenerate");
    if (first < n_mosaic)
      mosaic_images.insert(mosaic_images.end(), a.data.begin(),
                           a.data.begin() + std::min<long>(m, n_mosaic - first) * ny * nx);
    if (merge) {
      all_images.insert(all_images.end(), a.data.begin(), a.data.end());
      all_labels.insert(all_labels.end(), l.data.begin(), l.data.end());
    }
  }
  std::vector<io::FitsKeyword> keys = {{"PIXSCALE", c.pixel_scale, "", "pixel scale [arcsec]"},
                                       {"SUPERSMP", double(c.supersampling), "", "supersampling factor"},
                                       {"PSFFWHM", c.psf_fwhm, "", "Gaussian PSF FWHM [arcsec]"},
                                       {"MAGZP", c.zero_point, "", "AB magnitude of 1 e-/s"},
                                       {"EXPTIME", c.exposure_time, "", "exposure time [s]"},
                                       {"SEED", double(c.seed), "", "generator seed"},
                                       {"NPARAM", double(K), "", "number of labels"}};
  for (int k = 0; k < K; ++k)
    keys.push_back(
        {"PNAME" + std::to_string(k + 1), 0, generator.label_names()[k], "label column " + std::to_string(k)});
  if (merge) {
    io::write_npy(dir + "/images.npy", all_images.data(), {size_t(n), size_t(ny), size_t(nx)});
    io::write_npy(dir + "/labels.npy", all_labels.data(), {size_t(n), size_t(K)});
    auto img_keys = keys;
    img_keys.push_back({"BUNIT", 0, "e-/s", "sky-subtracted count rate"});
    io::write_fits(dir + "/images.fits", all_images.data(), {size_t(n), size_t(ny), size_t(nx)}, img_keys);
    io::write_fits(dir + "/labels.fits", all_labels.data(), {size_t(n), size_t(K)}, keys);
    for (char const* f : {"/images.npy", "/labels.npy", "/images.fits", "/labels.fits"})
      sum.files.push_back(dir + f);
  }
  sum.files.push_back(dir + "/chunks/");
  if (n_mosaic > 0) {
    int const cols = int(std::ceil(std::sqrt(double(n_mosaic)))), rows = (n_mosaic + cols - 1) / cols;
    int const s = options.mosaic_scale, gap = 2;
    io::Canvas canvas(cols * (nx * s + gap) + gap, rows * (ny * s + gap) + gap, {40, 40, 40});
    std::vector<float> sorted;
    for (int i = 0; i < n_mosaic; ++i) {
      float const* v = mosaic_images.data() + size_t(i) * ny * nx;
      sorted.assign(v, v + size_t(ny) * nx);
      std::sort(sorted.begin(), sorted.end());
      double const lo = sorted[size_t(0.01 * (sorted.size() - 1))], hi = sorted[size_t(0.995 * (sorted.size() - 1))];
      double const span = hi > lo ? hi - lo : 1;
      int const c0 = gap + (i % cols) * (nx * s + gap), r0 = gap + (i / cols) * (ny * s + gap);
      for (int iy = 0; iy < ny; ++iy)
        for (int ix = 0; ix < nx; ++ix) {
          double const t = std::sqrt(std::min(1.0, std::max(0.0, (double(v[size_t(iy) * nx + ix]) - lo) / span)));
          auto const col = io::colour(io::ColorMap::magma, t);
          for (int dy = 0; dy < s; ++dy)
            for (int dx = 0; dx < s; ++dx)
              canvas.set(c0 + ix * s + dx, r0 + (ny - 1 - iy) * s + dy, col);  // row 0 at the bottom
        }
    }
    canvas.write(dir + "/mosaic.png");
    sum.files.push_back(dir + "/mosaic.png");
  }
  sum.total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return sum;
}

/// A training set's label table on the host, as xtensor: the K label names
/// (column order) and the (n, K) values, row i = image i.
struct TrainingLabels {
  std::vector<std::string> names;
  xt::xtensor<double, 2> values;

  /// Index of the column `name`; std::invalid_argument if there is none.
  std::size_t index(std::string const& name) const {
    for (std::size_t k = 0; k < names.size(); ++k)
      if (names[k] == name) return k;
    throw_invalid_argument("lensing::simulate::TrainingLabels::index", "no label named '" + name + "'");
  }
  /// The column `name` (n values): a view into `values`, no copy.
  auto column(std::string const& name) const { return xt::view(values, xt::all(), index(name)); }
};

/// Read the labels that write_training_set wrote to `dir`: labels_names.txt
/// and labels.npy, or, for a set too large to merge, the chunk files
/// chunks/labels_NNNNNN.npy in order.  The npy readers' validation applies;
/// a column count that differs from the names (a mixed directory) throws
/// std::runtime_error.
inline TrainingLabels read_training_labels(std::string const& dir) {
  constexpr char const* where = "lensing::simulate::read_training_labels";
  TrainingLabels out;
  {
    std::ifstream f(dir + "/labels_names.txt");
    if (!f) throw std::runtime_error(std::string(where) + ": cannot open " + dir + "/labels_names.txt");
    for (std::string line; std::getline(f, line);)
      if (!line.empty()) out.names.push_back(line);
  }
  auto const check = [&](xt::xtensor<double, 2> const& t, std::string const& path) {
    if (t.shape()[1] != out.names.size())
      throw std::runtime_error(std::string(where) + ": " + path + " has " + std::to_string(t.shape()[1]) +
                               " columns, labels_names.txt names " + std::to_string(out.names.size()));
  };
  std::string const merged = dir + "/labels.npy";
  if (std::filesystem::exists(merged)) {
    io::read_npy(merged, out.values);
    check(out.values, merged);
    return out;
  }
  std::vector<xt::xtensor<double, 2>> chunks;
  std::size_t rows = 0;
  for (int ci = 0;; ++ci) {
    std::string const path = dir + "/chunks/" + detail::chunk_name("labels", ci, ".npy");
    if (!std::filesystem::exists(path)) break;
    chunks.emplace_back();
    io::read_npy(path, chunks.back());
    check(chunks.back(), path);
    rows += chunks.back().shape()[0];
  }
  if (chunks.empty())
    throw std::runtime_error(std::string(where) + ": " + dir + " holds neither labels.npy nor chunks");
  out.values = xt::xtensor<double, 2>::from_shape({rows, out.names.size()});
  std::size_t r = 0;
  for (auto const& c : chunks) {
    xt::view(out.values, xt::range(r, r + c.shape()[0]), xt::all()) = c;
    r += c.shape()[0];
  }
  return out;
}

}  // namespace simulate
}  // namespace lensing

#endif  // LENSING_SIMULATE_TRAINING_SET_HPP
