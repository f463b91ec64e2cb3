#ifndef LENSING_SIMULATE_SPIRAL_GALAXIES_HPP
#define LENSING_SIMULATE_SPIRAL_GALAXIES_HPP

/// \file
/// Procedural galaxies with spiral arms: the bulge + disk + clumps galaxies
/// of galaxies.hpp whose disk light is modulated by a logarithmic m-armed
/// spiral density wave, deterministic per (seed, galaxy index), evaluated
/// analytically or rendered onto stamps.  A training set of galaxy images
/// with structure beyond smooth profiles (the learned source priors of
/// examples/vae_source_prior), with nothing downloaded.
///
/// Disk light (galaxies.hpp's exponential disk D(R), elliptical radius
/// R = sqrt(q x'² + y'²/q), (x', y') the offsets rotated by −φ) becomes
///   D(R) [1 + A(R) cos(m (θ − ln(R / R_d) / tan p) − φ_0)],
///   θ = atan2(y'/√q, √q x'),  A(R) = A (1 − exp(−R² / R_c²)):
/// m arms winding at pitch angle p (a logarithmic spiral R ∝ exp(θ tan p)
/// is a ridge of the pattern), amplitude A ≤ 1 (the light stays ≥ 0),
/// tapered to 0 inside the core radius R_c (where ln R would wind the arms
/// without bound; the bulge dominates there).  (√q x', y'/√q) is the
/// deprojected (face-on) position, a map of unit Jacobian, and the cosine
/// integrates to 0 over every deprojected ring, so the arms move light
/// around without changing the total flux (up to the disk's truncation,
/// which is a ring too: exactly).
///
/// References: Lin & Shu 1964 (density waves); Seigar & James 1998 and
/// Davis et al. 2012 (logarithmic spirals, pitch angles 5-40° in observed
/// disks; m = 2 most common).

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>
#include <lensing/simulate/galaxies.hpp>

#include <cmath>
#include <cstdint>

namespace lensing {
namespace simulate {

/// A galaxy of galaxies.hpp with spiral arms on its disk (see the file
/// comment); a trivially copyable light profile (surface brightness
/// [flux / arcsec²] at (x, y) [arcsec]).  amplitude = 0: no arms.
template <class Scalar>
struct SpiralGalaxy {
  Galaxy<Scalar> galaxy;
  int arms;              ///< m
  Scalar amplitude;      ///< A, in [0, 1]
  Scalar inv_tan_pitch;  ///< 1 / tan p
  Scalar phase;          ///< φ_0 [rad]
  Scalar inv_core2;      ///< 1 / R_c² [arcsec⁻²]

  /// The arms' factor 1 + A(R) cos(...) − 1 at (x, y) (the relative change of the disk light).
  KOKKOS_INLINE_FUNCTION Scalar arm_modulation(Scalar x, Scalar y) const {
    auto const& d = galaxy.disk;
    Scalar const dx = x - d.x0, dy = y - d.y0;
    Scalar const xp = d.cos_phi * dx + d.sin_phi * dy, yp = -d.sin_phi * dx + d.cos_phi * dy;
    Scalar const sq = math::sqrt(d.q);
    Scalar const u = sq * xp, v = yp / sq;
    Scalar const r2 = u * u + v * v;
    if (!(r2 > Scalar(0)) || amplitude == Scalar(0)) return Scalar(0);
    Scalar const theta = math::atan2(v, u);
    Scalar const lnr = Scalar(0.5) * math::log(r2 / (d.r_e * d.r_e));
    Scalar const a = amplitude * (Scalar(1) - math::exp(-r2 * inv_core2));
    return a * math::cos(Scalar(arms) * (theta - lnr * inv_tan_pitch) - phase);
  }

  /// 0 outside the galaxy's extent box (as Galaxy::surface_brightness).
  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    Scalar const base = galaxy.surface_brightness(x, y);
    bool const in =
        math::fabs(x - galaxy.center_x) <= galaxy.extent && math::fabs(y - galaxy.center_y) <= galaxy.extent;
    if (!in) return Scalar(0);
    return base + galaxy.disk.surface_brightness(x, y) * arm_modulation(x, y);
  }
};

/// The stamp renderer's frame of a spiral galaxy: that of its galaxy.
template <class Scalar>
KOKKOS_INLINE_FUNCTION Galaxy<Scalar> const& stamp_frame(SpiralGalaxy<Scalar> const& g) {
  return g.galaxy;
}

/// Distributions of the spiral galaxies: the galaxy of `galaxy`
/// (galaxies.hpp's GalaxyModel, drawn with the same (seed, index): the same
/// bulge, disk and clumps) and, with probability spiral_fraction, arms:
/// - m uniform on the integers [arms_min, arms_max] (default 2-4);
/// - pitch angle p ~ U(pitch_min, pitch_max) [deg] (default 10-30°);
/// - amplitude A ~ U(amplitude_min, amplitude_max) (default 0.4-0.9; ≤ 1);
/// - phase φ_0 ~ U(0, 2π);  core radius R_c = R_d U(core_min, core_max)
///   (default 0.3-0.6 of the disk's half-light radius).
/// The arm draws come from the stream (seed, purpose_galaxy, index, 16)
/// (galaxies.hpp draws from b = 0, digits.hpp from b = 1-10), so adding arms
/// leaves the galaxy's other draws unchanged.
template <class Scalar>
struct SpiralGalaxyModel {
  GalaxyModel<Scalar> galaxy;
  double spiral_fraction = 1;
  int arms_min = 2, arms_max = 4;
  double pitch_min = 10, pitch_max = 30;  // degrees
  double amplitude_min = 0.4, amplitude_max = 0.9;
  double core_min = 0.3, core_max = 0.6;

  void check(char const* where) const {
    galaxy.check(where);
    check_in_closed(spiral_fraction, 0.0, 1.0, where, "spiral_fraction");
    check_argument(arms_min >= 1 && arms_min <= arms_max && arms_max <= 8, where,
                   "need 1 <= arms_min <= arms_max <= 8");
    check_argument(std::isfinite(pitch_min) && std::isfinite(pitch_max) && 1 <= pitch_min && pitch_min <= pitch_max &&
                       pitch_max <= 80,
                   where, "need 1 <= pitch_min <= pitch_max <= 80 (degrees)");
    check_argument(std::isfinite(amplitude_min) && std::isfinite(amplitude_max) && 0 <= amplitude_min &&
                       amplitude_min <= amplitude_max && amplitude_max <= 1,
                   where, "need 0 <= amplitude_min <= amplitude_max <= 1 (the light must stay >= 0)");
    check_argument(
        std::isfinite(core_min) && std::isfinite(core_max) && 0 < core_min && core_min <= core_max && core_max <= 10,
        where, "need 0 < core_min <= core_max <= 10");
  }

  /// Spiral galaxy `index` of seed `seed` (host or device; the same draws either way).
  KOKKOS_INLINE_FUNCTION SpiralGalaxy<Scalar> draw(std::uint64_t seed, std::uint64_t index) const {
    SpiralGalaxy<Scalar> s;
    s.galaxy = galaxy.draw(seed, index);
    random::Stream r(random::stream_key(seed, random::purpose_galaxy, index, 16));
    bool const spiral = r.uniform<double>() < spiral_fraction;
    int const m = arms_min + int(r.uniform<double>() * double(arms_max - arms_min + 1));
    double const pitch = (pitch_min + (pitch_max - pitch_min) * r.uniform<double>()) * (math::pi<double> / 180.0);
    double const amp = amplitude_min + (amplitude_max - amplitude_min) * r.uniform<double>();
    double const phase = 2 * math::pi<double> * r.uniform<double>();
    double const core = double(s.galaxy.disk.r_e) * (core_min + (core_max - core_min) * r.uniform<double>());
    s.arms = m > arms_max ? arms_max : m;
    s.amplitude = Scalar(spiral ? amp : 0.0);
    s.inv_tan_pitch = Scalar(1.0 / math::tan(pitch));
    s.phase = Scalar(phase);
    s.inv_core2 = Scalar(1.0 / (core * core));
    return s;
  }
};

/// Render spiral galaxies onto stamps: stamps(b, iy, ix) = mean surface
/// brightness of galaxy first_index + b over pixel (iy, ix), on a k x k grid
/// of sub-pixels (k = supersampling; 4k x 4k within 1.5 pixels of the
/// centre, for the bulge's cusp), pixel centres at ((ix − (nx−1)/2) dx,
/// (iy − (ny−1)/2) dx) (lenstronomy's grid), as render_galaxies of
/// galaxies.hpp.  `galaxies` (length >= n) receives the drawn galaxies.
/// Asynchronous on `space`.  Throws std::invalid_argument
/// ("lensing::simulate::render_spiral_galaxies: ...") for a bad model,
/// pixel scale, supersampling or view sizes.
template <class ExecutionSpace, class Scalar, class StampView, class GalaxyView>
void render_spiral_galaxies(ExecutionSpace const& space, SpiralGalaxyModel<Scalar> const& model,
                            StampView const& stamps, Scalar pixel_scale, GalaxyView const& galaxies, std::uint64_t seed,
                            std::uint64_t first_index = 0, int supersampling = 4) {
  constexpr char const* where = "lensing::simulate::render_spiral_galaxies";
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::simulate::render_spiral_galaxies: first argument must be a Kokkos execution space");
  static_assert(StampView::rank == 3,
                "lensing::simulate::render_spiral_galaxies: stamps must be a rank-3 view (n, ny, nx)");
  static_assert(std::is_same<typename StampView::value_type, Scalar>::value,
                "lensing::simulate::render_spiral_galaxies: stamps must hold the model's Scalar");
  static_assert(GalaxyView::rank == 1 && std::is_same<typename GalaxyView::value_type, SpiralGalaxy<Scalar>>::value,
                "lensing::simulate::render_spiral_galaxies: galaxies must be a rank-1 view of SpiralGalaxy<Scalar>");
  static_assert(is_accessible_from_v<ExecutionSpace, typename StampView::memory_space> &&
                    is_accessible_from_v<ExecutionSpace, typename GalaxyView::memory_space>,
                "lensing::simulate::render_spiral_galaxies: views must be accessible from the execution space");
  model.check(where);
  check_positive(pixel_scale, where, "pixel_scale");
  check_count(supersampling, 1, where, "supersampling");
  int const n = int(stamps.extent(0)), ny = int(stamps.extent(1)), nx = int(stamps.extent(2));
  check_argument(n >= 1 && ny >= 1 && nx >= 1, where, "stamps must be non-empty");
  check_argument(galaxies.extent(0) >= size_t(n), where, "galaxies must have length >= stamps.extent(0)");
  auto const m = model;
  Kokkos::parallel_for(
      "lensing::simulate::draw_spiral_galaxies", Kokkos::RangePolicy<ExecutionSpace>(space, 0, n),
      KOKKOS_LAMBDA(int b) { galaxies(b) = m.draw(seed, first_index + b); });
  detail::render_stamps(space, stamps, pixel_scale, galaxies, supersampling,
                        "lensing::simulate::render_spiral_galaxies");
}

}  // namespace simulate
}  // namespace lensing

#endif  // LENSING_SIMULATE_SPIRAL_GALAXIES_HPP
