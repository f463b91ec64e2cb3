#ifndef LENSING_MODEL_INSTRUMENT_HPP
#define LENSING_MODEL_INSTRUMENT_HPP

/// \file
/// The detector half of an imaging instrument — pixel noise (sky, Poisson,
/// read noise, background) and artefacts (zero-point bias, cosmic rays,
/// hot/dead pixels, saturation, random masks) as one component that acts on
/// single images or rank-3 batches — and the band settings of the surveys
/// the seed pipelines target (HST-like, Euclid VIS-like, LSST-like g, r, i).

#include <lensing/core/errors.hpp>
#include <lensing/core/views.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/noise/bad_pixels.hpp>
#include <lensing/noise/cosmic_rays.hpp>
#include <lensing/noise/masks.hpp>
#include <lensing/noise/pixel_noise.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace lensing {

//----------------------------------------------------------------------------
// The detector.

/// Settings of a detector (host, double; the Detector converts them to its
/// Scalar).  Images are sky-subtracted count rates [e-/s per pixel].
///
///  - pixel noise: `noise` (ObservationNoise: exposure time t, sky s, read
///    noise, background rms, shot noise on/off) — the likelihood's variance
///    model is noise.variance(m), the same object;
///  - `bias_sigma` [e-/s]: one zero-point offset N(0, bias_sigma) per image;
///  - `cosmic_rays` with `cosmic` (noise::CosmicRayModel; its exposure_time
///    is replaced by noise.exposure_time), `hot_dead_pixels` with
///    `bad_pixels`, `saturation` [e-/s] (<= 0: none), `masks` with `mask`
///    (noise::RandomMask; the masks of the last batch are kept, 1 good, 0
///    masked).
/// Applied in this order (Hezaveh, Perreault Levasseur & Marshall 2017:
/// noise, then the detector's own artefacts, then masking).
struct DetectorConfig {
  ObservationNoise<double> noise{};
  double bias_sigma = 0;
  bool cosmic_rays = false;
  noise::CosmicRayModel<double> cosmic{};
  bool hot_dead_pixels = false;
  noise::BadPixels<double> bad_pixels{1e-4, 0.5, 1e-4, 0.0, 0.5, true};
  double saturation = 0;
  bool masks = false;
  noise::RandomMask<double> mask{0.3, 1.0, 4.0, 0.0, 16};

  /// Throws std::invalid_argument ("<where>: ...") for a bad setting.
  void check(char const* where) const {
    noise.check(where);
    check_nonnegative(bias_sigma, where, "bias_sigma");
    check_finite(saturation, where, "saturation");
    if (cosmic_rays) {
      auto c = cosmic;
      c.exposure_time = noise.exposure_time;
      c.check(where);
    }
    if (hot_dead_pixels) bad_pixels.check(where);
    if (masks) mask.check(where);
  }

  /// No noise and no artefact: the detector returns the model image.
  static DetectorConfig noiseless() {
    DetectorConfig c;
    c.noise.shot_noise = false;
    return c;
  }
};

/// Applies a DetectorConfig to images (rank 2 (ny, nx) or rank 3 (m, ny, nx),
/// m <= capacity) in place.  Every draw comes from the counter-based
/// streams keyed by (seed, purpose, first_index + b, pixel), so image b's
/// noise depends only on (seed, first_index + b): a set processed in batches
/// of any size, at any thread count, is the same.  Owns the cosmic-ray
/// track buffers and the masks of the last call (built in the constructor).
template <class Scalar, class MemorySpace>
class Detector {
 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;

  Detector() = default;
  Detector(DetectorConfig const& config, int capacity, int ny, int nx)
      : m_config(config), m_capacity(capacity), m_cosmic(cosmic_model(config), capacity) {
    constexpr char const* where = "lensing::Detector";
    config.check(where);
    check_count(capacity, 1, where, "capacity");
    check_count(ny, 1, where, "ny");
    check_count(nx, 1, where, "nx");
    if (config.masks)
      m_masks = allocate_view<View3D<Scalar, MemorySpace>>(where, "lensing::Detector::masks", true, capacity, ny, nx);
  }

  DetectorConfig const& config() const { return m_config; }
  int capacity() const { return m_capacity; }
  /// The pixel-noise model in the images' scalar type (its variance(m) is
  /// the likelihood's noise model for data from this detector).
  ObservationNoise<Scalar> pixel_noise() const { return convert_noise(m_config.noise); }
  /// Masks of the last apply (1 good, 0 masked; (capacity, ny, nx); empty
  /// unless masks are on).
  View3D<Scalar, MemorySpace> const& masks() const { return m_masks; }

  /// Noise and artefacts on `images`, in place (see the class comment).
  /// Fences `space` once (the Poisson step's finiteness check).
  template <class ExecutionSpace, class Images>
  void apply(ExecutionSpace const& space, Images const& images, std::uint64_t seed, std::uint64_t first_index) const {
    constexpr char const* where = "lensing::Detector::apply";
    static_assert(is_execution_space_v<ExecutionSpace>,
                  "lensing::Detector::apply: first argument must be a Kokkos execution space");
    static_assert(
        (Images::rank == 2 || Images::rank == 3) && std::is_same<typename Images::non_const_value_type, Scalar>::value,
        "lensing::Detector::apply: images are a rank-2 (ny, nx) or rank-3 (m, ny, nx) view of the "
        "detector's Scalar");
    static_assert(is_accessible_from_v<ExecutionSpace, typename Images::memory_space>,
                  "lensing::Detector::apply: the images must be accessible from the execution space");
    int const m = Images::rank == 3 ? int(images.extent(0)) : 1;
    check_argument(m <= m_capacity, where,
                   "a batch of " + std::to_string(m) + " images exceeds the capacity " + std::to_string(m_capacity));
    auto const& c = m_config;
    add_observation_noise(space, pixel_noise(), images, seed, first_index);
    if (c.bias_sigma > 0)
      noise::apply(space, noise::ZeroPointBias<Scalar>{Scalar(0), Scalar(c.bias_sigma)}, images, seed, first_index);
    if (c.cosmic_rays) m_cosmic.apply(space, images, seed, first_index);
    if (c.hot_dead_pixels) {
      auto const& h = c.bad_pixels;
      noise::apply(space,
                   noise::BadPixels<Scalar>{Scalar(h.hot_fraction), Scalar(h.hot_value), Scalar(h.dead_fraction),
                                            Scalar(h.dead_value), Scalar(h.sigma_log), h.fixed_pattern},
                   images, seed, first_index);
    }
    if (c.saturation > 0) noise::apply(space, noise::Saturation<Scalar>{Scalar(c.saturation)}, images);
    if (c.masks) {
      auto const& r = c.mask;
      noise::RandomMask<Scalar> const mask{Scalar(r.mean_count), Scalar(r.min_radius), Scalar(r.max_radius),
                                           Scalar(r.fill_value), r.max_count};
      if constexpr (Images::rank == 3) {
        auto const out = Kokkos::subview(m_masks, Kokkos::make_pair(0, m), Kokkos::ALL, Kokkos::ALL);
        noise::apply(space, mask, images, out, seed, first_index);
      } else {
        auto const out = Kokkos::subview(m_masks, 0, Kokkos::ALL, Kokkos::ALL);
        noise::apply(space, mask, images, out, seed, first_index);
      }
    }
  }

 private:
  static ObservationNoise<Scalar> convert_noise(ObservationNoise<double> const& n) {
    ObservationNoise<Scalar> r;
    r.exposure_time = Scalar(n.exposure_time);
    r.background_rms = Scalar(n.background_rms);
    r.read_noise = Scalar(n.read_noise);
    r.shot_noise = n.shot_noise;
    r.normal_threshold = n.normal_threshold;
    r.sky = Scalar(n.sky);
    return r;
  }
  static noise::CosmicRayModel<Scalar> cosmic_model(DetectorConfig const& c) {
    auto const& m = c.cosmic;
    noise::CosmicRayModel<Scalar> r;
    r.rate = Scalar(m.rate);
    r.depth = Scalar(m.depth);
    r.max_length = Scalar(m.max_length);
    r.width = Scalar(m.width);
    r.charge_per_depth = Scalar(m.charge_per_depth);
    r.sigma_log = Scalar(m.sigma_log);
    r.exposure_time = Scalar(c.noise.exposure_time > 0 ? c.noise.exposure_time : 1);
    r.max_tracks = m.max_tracks;
    return r;
  }

  DetectorConfig m_config{};
  int m_capacity = 0;
  noise::CosmicRays<Scalar, MemorySpace> m_cosmic;
  View3D<Scalar, MemorySpace> m_masks;
};

//----------------------------------------------------------------------------
// Survey bands.

/// One band of an imaging survey: pixel scale [arcsec], Gaussian PSF FWHM
/// [arcsec], AB zero point (magnitude of 1 e-/s), sky brightness
/// [mag/arcsec^2], and the detector (its noise.sky is set from sky_mag,
/// zero_point and pixel_scale by detector_config()).  Image values are
/// sky-subtracted rates [e-/s per pixel]; a source of AB magnitude m has
/// total rate flux(m) = 10^(-0.4 (m - zero_point)).
struct BandConfig {
  std::string name;
  double pixel_scale = 0.1;
  double psf_fwhm = 0.1;
  double zero_point = 25;
  double sky_mag = 22;  ///< <= 0: no sky
  DetectorConfig detector{};

  double flux(double magnitude) const { return std::pow(10.0, -0.4 * (magnitude - zero_point)); }
  /// Sky rate per pixel [e-/s] (0 when sky_mag <= 0).
  double sky_per_pixel() const {
    return sky_mag > 0 ? std::pow(10.0, -0.4 * (sky_mag - zero_point)) * pixel_scale * pixel_scale : 0.0;
  }
  /// The detector with its sky level filled in.
  DetectorConfig detector_config() const {
    DetectorConfig d = detector;
    d.noise.sky = sky_per_pixel();
    return d;
  }
  /// Throws std::invalid_argument for a bad setting (names the band).
  void check() const {
    std::string const w = "lensing::BandConfig '" + name + "'";
    check_positive(pixel_scale, w.c_str(), "pixel_scale");
    check_nonnegative(psf_fwhm, w.c_str(), "psf_fwhm");
    check_finite(zero_point, w.c_str(), "zero_point");
    check_finite(sky_mag, w.c_str(), "sky_mag");
    detector_config().check(w.c_str());
  }
};

/// Band settings of the surveys the seed pipelines target.  Values are
/// representative, not calibrations; each preset says where its numbers
/// come from.  Coadded depths: N exposures of t_1 seconds are one exposure
/// of t = N t_1 with read noise sqrt(N) sigma_1 (the coadd's variance).
namespace presets {

/// HST ACS/WFC F814W-like, one orbit: 0.05"/pixel (drizzled), PSF FWHM
/// 0.10", AB zero point 25.94 (ACS instrument handbook), sky 22.5
/// mag/arcsec^2 (low-zodiacal F814W), 4 x 550 s with 4.5 e- read noise.
/// Cosmic rays, hot/dead pixels and masks on (single-visit cutouts).
inline BandConfig hst_like() {
  BandConfig b;
  b.name = "F814W";
  b.pixel_scale = 0.05;
  b.psf_fwhm = 0.10;
  b.zero_point = 25.94;
  b.sky_mag = 22.5;
  b.detector.noise.exposure_time = 2200;
  b.detector.noise.read_noise = 4.5 * 2;  // sqrt(4) exposures
  b.detector.bias_sigma = 1e-3;
  b.detector.cosmic_rays = b.detector.hot_dead_pixels = b.detector.masks = true;
  return b;
}

/// Euclid VIS-like wide survey: 0.1"/pixel, PSF FWHM 0.17", zero point
/// 24.6 AB for 1 e-/s, 4 x 565 s, sky 22.3 mag/arcsec^2, read noise 4.5 e-
/// per exposure (Euclid Collaboration: Scaramella et al. 2022, the wide
/// survey's VIS settings).  Artefacts on.
inline BandConfig euclid_vis_like() {
  BandConfig b;
  b.name = "VIS";
  b.pixel_scale = 0.1;
  b.psf_fwhm = 0.17;
  b.zero_point = 24.6;
  b.sky_mag = 22.3;
  b.detector.noise.exposure_time = 4 * 565;
  b.detector.noise.read_noise = 4.5 * 2;  // sqrt(4) exposures
  b.detector.bias_sigma = 1e-3;
  b.detector.cosmic_rays = b.detector.hot_dead_pixels = b.detector.masks = true;
  return b;
}

/// LSST-like ten-year coadd in band 'g', 'r' or 'i' (lenstronomy's
/// provisional LSST settings after the Rubin "Optics and Observation
/// Conditions" table): 0.2"/pixel, 15 s visits with 10 e- read noise; g:
/// 200 visits, sky 22.26, zero point 28.30, seeing 0.77"; r: 460 visits,
/// sky 21.20, zero point 28.13, seeing 0.73"; i: 460 visits, sky 20.48,
/// zero point 27.79, seeing 0.71".  Coadds: no cosmic rays, bad pixels or
/// masks.  Throws std::invalid_argument for another band.
inline BandConfig lsst_like(char band) {
  BandConfig b;
  b.pixel_scale = 0.2;
  int visits = 0;
  switch (band) {
    case 'g':
      b.name = "g", visits = 200, b.sky_mag = 22.26, b.zero_point = 28.30, b.psf_fwhm = 0.77;
      break;
    case 'r':
      b.name = "r", visits = 460, b.sky_mag = 21.20, b.zero_point = 28.13, b.psf_fwhm = 0.73;
      break;
    case 'i':
      b.name = "i", visits = 460, b.sky_mag = 20.48, b.zero_point = 27.79, b.psf_fwhm = 0.71;
      break;
    default:
      throw_invalid_argument("lensing::presets::lsst_like",
                             std::string("band must be 'g', 'r' or 'i', got '") + band + "'");
  }
  b.detector.noise.exposure_time = 15.0 * visits;
  b.detector.noise.read_noise = 10 * std::sqrt(double(visits));
  return b;
}

}  // namespace presets
}  // namespace lensing

#endif  // LENSING_MODEL_INSTRUMENT_HPP
