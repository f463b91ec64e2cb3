#ifndef LENSING_SIMULATE_TRAINING_SET_HPP
#define LENSING_SIMULATE_TRAINING_SET_HPP

/// \file
/// Batched training-set generation: N strong-lens images with their labels,
/// drawn from a ParameterTable of priors, rendered, blurred and corrupted by
/// noise and detector artefacts on any execution space (the forward model of
/// model/), written to disk by simulate/write.hpp (resumable .npy chunks,
/// FITS, HDF5, PNG mosaic) with progress on the terminal.
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
#include <lensing/core/special.hpp>
#include <lensing/core/views.hpp>
#include <lensing/density/parameter_table.hpp>
#include <lensing/geometry/pixel_grid.hpp>
#include <lensing/model/instrument.hpp>
#include <lensing/model/render.hpp>
#include <lensing/noise/bad_pixels.hpp>
#include <lensing/noise/cosmic_rays.hpp>
#include <lensing/noise/masks.hpp>
#include <lensing/noise/pixel_noise.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/galaxies.hpp>
#include <lensing/simulate/write.hpp>
#include <lensing/sources/sersic.hpp>

#include <Kokkos_Core.hpp>

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

/// The sky of one training image: lens = SIE + external shear, source =
/// procedural Galaxy (0 outside its extent box, where its light is exactly
/// 0), lens_light = elliptical Sérsic (amplitude 0 when the configuration
/// has no lens light) — a sky for render_batch (model/render.hpp), and a
/// kernel-callable brightness f(x, y) = S(x - alpha(x)) + L(x) [e-/s per
/// arcsec^2] for Renderer::render_brightness.  Trivially copyable.
template <class Scalar>
struct SimulatedSky {
  using Lens = Composite<SIE<Scalar>, ExternalShear<Scalar>>;
  Lens lens;
  Galaxy<Scalar> source;
  SersicEllipse<Scalar> lens_light;

  KOKKOS_INLINE_FUNCTION Scalar operator()(Scalar x, Scalar y) const {
    auto const a = lens.deflection(x, y);
    return source.surface_brightness(x - a.x, y - a.y) + lens_light.surface_brightness(x, y);
  }
};

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
  s.lens_light = SersicEllipse<Scalar>{Scalar(lens_light ? flux / norm : 0.0),
                                       Scalar(r),
                                       Scalar(n),
                                       Scalar(p[c.e1]),
                                       Scalar(p[c.e2]),
                                       Scalar(p[c.center_x]),
                                       Scalar(p[c.center_y])};
  return s;
}

//----------------------------------------------------------------------------
// The generator.

/// Generates chunks of training images on any execution space.
///
/// generate(space, first_image, images, labels) fills images (m, ny, nx) and
/// labels (m, K) for global images [first_image, first_image + m), m <=
/// chunk_size: labels drawn from the table (ParameterTable::sample), one
/// SimulatedSky per image, then the forward model of model/ on the whole
/// batch — render_batch (k x k sub-pixels per pixel, Renderer's sums), the
/// batched GaussianFilter, and the Detector built from TrainingSetConfig
/// (detector_config: sky, Poisson, read noise, background, bias, cosmic
/// rays, hot/dead pixels, saturation, masks).  Owns its chunk buffers (built
/// in the constructor).  Asynchronous on `space` except for the detector's
/// one fence.
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
      : m_config((config.check(), config)),
        m_table(table),
        m_grid(config.nx, config.ny, Scalar(config.pixel_scale), config.supersampling),
        m_detector(detector_config(config), config.chunk_size, config.ny, config.nx) {
    constexpr char const* where = "lensing::simulate::TrainingSetGenerator";
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
    if (config.psf_fwhm > 0)
      m_psf = GaussianFilter<Scalar, MemorySpace>(config.psf_fwhm, config.pixel_scale, ny, nx, 5.0, chunk);
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
  View3D<Scalar, MemorySpace> const& masks() const { return m_detector.masks(); }
  /// The detector (noise and artefacts) built from the TrainingSetConfig.
  Detector<Scalar, MemorySpace> const& detector() const { return m_detector; }

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
    // 2. Render (supersampled: model/render.hpp), 3. PSF (batched GaussianFilter).
    auto const sky_batch = Kokkos::subview(skies, Kokkos::make_pair(0, m));
    if (c.psf_fwhm > 0) {
      auto const sharp = Kokkos::subview(m_sharp, Kokkos::make_pair(0, m), Kokkos::ALL, Kokkos::ALL);
      render_batch(space, m_grid, sky_batch, sharp);
      m_psf.apply(space, sharp, images);
    } else {
      render_batch(space, m_grid, sky_batch, images);
    }
    // 4. Noise and artefacts (model/instrument.hpp's Detector).
    if (c.noise) m_detector.apply(space, images, seed, first_image);
  }

  /// The settings that identify a set (write_training_set's manifest and
  /// HDF5 attributes, FITS keywords).
  SetDescription description() const {
    auto const& c = m_config;
    SetDescription d;
    d.ny = c.ny;
    d.nx = c.nx;
    d.batch = c.chunk_size;
    d.masks = c.masks && c.noise;
    auto const put = [&](char const* key, auto value) {
      std::ostringstream v;
      v << std::setprecision(17) << value;
      d.settings.emplace_back(key, v.str());
    };
    put("ny", c.ny);
    put("nx", c.nx);
    put("pixel_scale", c.pixel_scale);
    put("supersampling", c.supersampling);
    put("scalar", sizeof(Scalar) == 4 ? "float" : "double");
    put("seed", c.seed);
    put("chunk_size", c.chunk_size);
    put("psf_fwhm", c.psf_fwhm);
    put("noise", c.noise);
    put("zero_point", c.zero_point);
    put("exposure_time", c.exposure_time);
    put("sky_mag", c.sky_mag);
    put("read_noise", c.read_noise);
    put("cosmic_rays", c.cosmic_rays);
    put("hot_dead_pixels", c.hot_dead_pixels);
    put("masks", c.masks);
    put("lens_light", c.lens_light);
    d.fits = {{"PIXSCALE", c.pixel_scale, "", "pixel scale [arcsec]"},
              {"SUPERSMP", double(c.supersampling), "", "supersampling factor"},
              {"PSFFWHM", c.psf_fwhm, "", "Gaussian PSF FWHM [arcsec]"},
              {"MAGZP", c.zero_point, "", "AB magnitude of 1 e-/s"},
              {"EXPTIME", c.exposure_time, "", "exposure time [s]"},
              {"SEED", double(c.seed), "", "generator seed"}};
    return d;
  }

  /// The Detector settings of a TrainingSetConfig: the sky rate
  /// 10^(-0.4 (sky_mag - zero_point)) pixel_scale^2, Poisson noise from the
  /// exposure time, read noise, background, bias and the artefact switches.
  static DetectorConfig detector_config(TrainingSetConfig const& c) {
    DetectorConfig d;
    d.noise.exposure_time = c.exposure_time;
    d.noise.sky = c.sky_mag > 0 ? std::pow(10.0, -0.4 * (c.sky_mag - c.zero_point)) * c.pixel_scale * c.pixel_scale : 0;
    d.noise.read_noise = c.read_noise;
    d.noise.background_rms = c.background_rms;
    d.noise.shot_noise = true;
    d.noise.normal_threshold = c.poisson_normal_threshold;
    d.bias_sigma = c.bias_sigma;
    d.cosmic_rays = c.cosmic_rays;
    d.cosmic = c.cosmic;
    d.hot_dead_pixels = c.hot_dead_pixels;
    d.bad_pixels = c.bad_pixels;
    d.saturation = c.saturation;
    d.masks = c.masks;
    d.mask = c.mask;
    return d;
  }

 private:
  TrainingSetConfig m_config;
  table_type m_table;
  PixelGrid<Scalar> m_grid;
  TrainingSetColumns m_cols{};
  Detector<Scalar, MemorySpace> m_detector;
  GaussianFilter<Scalar, MemorySpace> m_psf;
  View1D<SimulatedSky<Scalar>, MemorySpace> m_skies;
  View3D<Scalar, MemorySpace> m_sharp;
};

}  // namespace simulate
}  // namespace lensing

#endif  // LENSING_SIMULATE_TRAINING_SET_HPP
