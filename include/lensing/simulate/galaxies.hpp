#ifndef LENSING_SIMULATE_GALAXIES_HPP
#define LENSING_SIMULATE_GALAXIES_HPP

/// \file
/// Procedurally generated source galaxies: a Sérsic bulge, an exponential
/// disk and star-forming clumps with random sizes, shapes, orientations and
/// flux fractions, drawn from a seed (deterministic per (seed, galaxy index)
/// whatever the thread count) and either evaluated analytically
/// (`Galaxy::surface_brightness(x, y)`, a plain kernel-safe function of
/// position) or rendered onto pixelated stamps on any execution space.  They
/// are the default sources of the training-set generator, since no galaxy
/// catalogue ships with lensing; users with COSMOS/GREAT3 stamps read them
/// with io/fits.hpp or io/npy.hpp instead.

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/special.hpp>
#include <lensing/core/views.hpp>

#include <cmath>
#include <cstdint>
#include <string>

namespace lensing {
namespace simulate {

namespace detail {

// The half-light b_n and P(a, x) live in core/special.hpp; these names are
// kept for the simulator's tests.
using math::gamma_p_series;
KOKKOS_INLINE_FUNCTION double sersic_bn(double n) { return math::sersic_b(n); }

}  // namespace detail

//----------------------------------------------------------------------------
// Components.

/// Elliptical Sérsic profile truncated at R_trunc (Sérsic 1963):
/// I(R) = I_e exp(-b_n ((R/R_e)^(1/n) - 1)) for R < R_trunc, 0 beyond, with
/// the elliptical radius of lenstronomy's SERSIC_ELLIPSE,
/// R = sqrt(q x'^2 + y'^2 / q), (x', y') the offsets from the centre rotated
/// by -phi (phi = position angle of the major axis from the x axis, q =
/// minor/major).  I_e is set so that the light inside the truncation is
/// `flux`: flux = 2 pi n I_e R_e^2 e^b b^(-2n) Gamma(2n) P(2n, b (R_t/R_e)^(1/n)).
/// n = 1 is an exponential disk of scale length h = R_e / b_1 = R_e / 1.678.
/// Units: arcsec, flux per arcsec^2.
template <class Scalar>
struct SersicComponent {
  Scalar amp;      ///< I_e [flux / arcsec^2]
  Scalar r_e;      ///< R_e [arcsec]
  Scalar inv_n;    ///< 1 / n
  Scalar b_n;      ///< b_n
  Scalar r_trunc;  ///< truncation radius [arcsec]
  Scalar q;        ///< axis ratio
  Scalar cos_phi, sin_phi;
  Scalar x0, y0;  ///< centre [arcsec]

  /// Build from flux, R_e, n, q, phi and the centre (host or device).
  KOKKOS_INLINE_FUNCTION static SersicComponent make(double flux, double r_e, double n, double q, double phi, double x0,
                                                     double y0, double trunc_factor) {
    SersicComponent c;
    double const b = math::sersic_b(n);
    double const xt = b * math::pow(trunc_factor, 1 / n);
    double const norm = 2 * math::pi<double> * n * r_e * r_e *
                        math::exp(b - 2 * n * math::log(b) + math::lgamma(2 * n)) * math::gamma_p_series(2 * n, xt);
    c.amp = Scalar(flux / norm);
    c.r_e = Scalar(r_e);
    c.inv_n = Scalar(1 / n);
    c.b_n = Scalar(b);
    c.r_trunc = Scalar(trunc_factor * r_e);
    c.q = Scalar(q);
    c.cos_phi = Scalar(math::cos(phi));
    c.sin_phi = Scalar(math::sin(phi));
    c.x0 = Scalar(x0);
    c.y0 = Scalar(y0);
    return c;
  }

  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    Scalar const dx = x - x0, dy = y - y0;
    Scalar const xp = cos_phi * dx + sin_phi * dy, yp = -sin_phi * dx + cos_phi * dy;
    Scalar const r2 = q * xp * xp + yp * yp / q;
    if (r2 >= r_trunc * r_trunc) return Scalar(0);
    Scalar const r = math::sqrt(r2);
    // n = 1 (disks) without the pow call.
    Scalar const t = inv_n == Scalar(1) ? r / r_e : math::pow(r / r_e, inv_n);
    return amp * math::exp(-b_n * (t - Scalar(1)));
  }

  /// Half-widths of the bounding box of the truncation ellipse (semi-axes
  /// R_t / sqrt(q) along the major axis, R_t sqrt(q) along the minor), with a
  /// 1% margin: the light is exactly 0 outside.
  KOKKOS_INLINE_FUNCTION void bounding_box(Scalar& hx, Scalar& hy) const {
    Scalar const a2 = r_trunc * r_trunc / q, b2 = r_trunc * r_trunc * q;
    Scalar const c2 = cos_phi * cos_phi, s2 = sin_phi * sin_phi;
    hx = Scalar(1.01) * math::sqrt(a2 * c2 + b2 * s2);
    hy = Scalar(1.01) * math::sqrt(a2 * s2 + b2 * c2);
  }

  /// out[i] += surface_brightness(x[i], y[i]) for i < m (host SIMD form:
  /// branch-free, so that the loop vectorises through libmvec; the same
  /// operations as surface_brightness, up to the vector pow/exp's <= 4 ulp).
  KOKKOS_INLINE_FUNCTION void add_surface_brightness(int m, Scalar const* __restrict x, Scalar const* __restrict y,
                                                     Scalar* __restrict out) const {
    Scalar const rt2 = r_trunc * r_trunc;
    if (inv_n == Scalar(1)) {
      for (int i = 0; i < m; ++i) {
        Scalar const dx = x[i] - x0, dy = y[i] - y0;
        Scalar const xp = cos_phi * dx + sin_phi * dy, yp = -sin_phi * dx + cos_phi * dy;
        Scalar const r2 = q * xp * xp + yp * yp / q;
        Scalar const e = amp * math::exp(-b_n * (math::sqrt(r2) / r_e - Scalar(1)));
        out[i] += r2 >= rt2 ? Scalar(0) : e;
      }
    } else {
      for (int i = 0; i < m; ++i) {
        Scalar const dx = x[i] - x0, dy = y[i] - y0;
        Scalar const xp = cos_phi * dx + sin_phi * dy, yp = -sin_phi * dx + cos_phi * dy;
        Scalar const r2 = q * xp * xp + yp * yp / q;
        Scalar const e = amp * math::exp(-b_n * (math::pow(math::sqrt(r2) / r_e, inv_n) - Scalar(1)));
        out[i] += r2 >= rt2 ? Scalar(0) : e;
      }
    }
  }
};

/// A star-forming clump: circular Gaussian of total `flux` and rms `sigma`
/// [arcsec], I = flux / (2 pi sigma^2) exp(-r^2 / (2 sigma^2)) for r < 6 sigma
/// (0 beyond: 1.5e-8 of the flux is dropped).
template <class Scalar>
struct Clump {
  Scalar flux, sigma, x0, y0;
  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    Scalar const dx = x - x0, dy = y - y0, s2 = sigma * sigma, d2 = dx * dx + dy * dy;
    // Beyond 6 sigma (exp(-18) = 1.5e-8 of the peak) the clump is cut off.
    if (d2 > Scalar(36) * s2) return Scalar(0);
    return flux / (Scalar(2) * math::pi<Scalar> * s2) * math::exp(-d2 / (Scalar(2) * s2));
  }
  /// out[i] += surface_brightness(x[i], y[i]) for i < m (host SIMD form).
  KOKKOS_INLINE_FUNCTION void add_surface_brightness(int m, Scalar const* __restrict x, Scalar const* __restrict y,
                                                     Scalar* __restrict out) const {
    Scalar const s2 = sigma * sigma, peak = flux / (Scalar(2) * math::pi<Scalar> * s2);
    for (int i = 0; i < m; ++i) {
      Scalar const dx = x[i] - x0, dy = y[i] - y0, d2 = dx * dx + dy * dy;
      Scalar const e = peak * math::exp(-d2 / (Scalar(2) * s2));
      out[i] += d2 > Scalar(36) * s2 ? Scalar(0) : e;
    }
  }
};

/// A galaxy: bulge + disk + up to max_clumps clumps, a trivially copyable
/// light profile (surface brightness [flux / arcsec^2] at (x, y) [arcsec]).
template <class Scalar>
struct Galaxy {
  static constexpr int max_clumps = 8;
  SersicComponent<Scalar> bulge, disk;
  Clump<Scalar> clumps[max_clumps];
  int num_clumps;
  Scalar flux;  ///< total flux (sum of the components)
  Scalar center_x, center_y;
  Scalar extent;  ///< half-width [arcsec] of the box around the centre outside which the light is 0

  /// 0 outside the extent box (as add_surface_brightness).
  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    Scalar s = bulge.surface_brightness(x, y) + disk.surface_brightness(x, y);
    for (int k = 0; k < num_clumps; ++k)
      s += clumps[k].surface_brightness(x, y);
    bool const in = math::fabs(x - center_x) <= extent && math::fabs(y - center_y) <= extent;
    return in ? s : Scalar(0);
  }

  /// [lo, hi): the smallest index range holding every point i < m with
  /// |x_i - cx| <= hx and |y_i - cy| <= hy (lo >= hi when there is none).
  KOKKOS_INLINE_FUNCTION static void box_range(int m, Scalar const* __restrict x, Scalar const* __restrict y, Scalar cx,
                                               Scalar cy, Scalar hx, Scalar hy, int& lo, int& hi) {
    int l = m, u = -1;
    for (int i = 0; i < m; ++i) {
      bool const in = math::fabs(x[i] - cx) <= hx && math::fabs(y[i] - cy) <= hy;
      l = in && i < l ? i : l;
      u = in ? i : u;
    }
    lo = l;
    hi = u + 1;
  }

  /// out[i] += surface_brightness(x[i], y[i]) for i < m, skipping the
  /// work when no point lies in the extent box (host SIMD form: the same sums
  /// in the same order, up to the vector exp/pow's <= 4 ulp).
  KOKKOS_INLINE_FUNCTION void add_surface_brightness(int m, Scalar const* __restrict x, Scalar const* __restrict y,
                                                     Scalar* __restrict out) const {
    int inside = 0;
    for (int i = 0; i < m; ++i)
      inside += (math::fabs(x[i] - center_x) <= extent && math::fabs(y[i] - center_y) <= extent) ? 1 : 0;
    if (inside == 0) return;
    constexpr int cap = 64;
    Scalar s[cap];
    for (int i0 = 0; i0 < m; i0 += cap) {
      int const n = math::min(cap, m - i0);
      for (int i = 0; i < n; ++i)
        s[i] = Scalar(0);
      // Each component only over the index range [lo, hi) of the points in
      // its own box (outside it its light is exactly 0): the bounding box of
      // a Sérsic's truncation ellipse, 6 sigma for a clump (1% margins).
      int lo, hi;
      for (auto const* c : {&bulge, &disk}) {
        Scalar hx, hy;
        c->bounding_box(hx, hy);
        box_range(n, x + i0, y + i0, c->x0, c->y0, hx, hy, lo, hi);
        if (hi > lo) c->add_surface_brightness(hi - lo, x + i0 + lo, y + i0 + lo, s + lo);
      }
      for (int k = 0; k < num_clumps; ++k) {
        auto const& c = clumps[k];
        box_range(n, x + i0, y + i0, c.x0, c.y0, Scalar(6.06) * c.sigma, Scalar(6.06) * c.sigma, lo, hi);
        if (hi > lo) c.add_surface_brightness(hi - lo, x + i0 + lo, y + i0 + lo, s + lo);
      }
      for (int i = 0; i < n; ++i) {
        bool const in = math::fabs(x[i0 + i] - center_x) <= extent && math::fabs(y[i0 + i] - center_y) <= extent;
        out[i0 + i] += in ? s[i] : Scalar(0);
      }
    }
  }
};

//----------------------------------------------------------------------------
// The generator's distributions.

/// Distributions of the procedural galaxies (sizes in arcsec).  Defaults
/// resemble faint star-forming sources at z ~ 1-2 as lensed in galaxy-scale
/// lenses (sizes ~0.1-0.5", a few clumps).
///
/// - disk half-light radius R_d ~ log-uniform [r_min, r_max], n = 1, centred at
///   (center_x, center_y) + U(-offset, offset)^2;
/// - inclination: cos i ~ U(0, 1), apparent axis ratio q = sqrt(cos^2 i (1 - q0^2) + q0^2)
///   (Hubble 1926, intrinsic thickness q0); position angle phi ~ U(0, pi);
/// - bulge-to-total B/T ~ U(bt_min, bt_max); bulge R_e = R_d U(0.2, 0.5),
///   n ~ U(n_min, n_max), q ~ U(0.6, 1), position angle phi + N(0, 10 deg);
/// - N_clumps ~ Poisson(mean_clumps) (<= 8) carrying a fraction U(0, clump_max)
///   of the disk light, split by exponential weights; radii drawn from the
///   exponential disk's light (r ~ Gamma(2, h)), placed on the disk's ellipse;
///   rms sigma = R_d U(0.05, 0.15);
/// - every Sérsic component is truncated at trunc_factor R_e (default 5: the
///   exponential disk keeps 99.8% of its untruncated light there); the stated
///   `flux` is the exact total inside the truncation.
template <class Scalar>
struct GalaxyModel {
  double flux = 1;
  double r_min = 0.1, r_max = 0.5;
  double q0 = 0.15;
  double bt_min = 0, bt_max = 0.5;
  double n_min = 2, n_max = 4.5;
  double mean_clumps = 3;
  double clump_max = 0.3;
  double center_x = 0, center_y = 0, offset = 0;
  double trunc_factor = 5;

  void check(char const* where) const {
    check_positive(flux, where, "flux");
    check_positive(r_min, where, "r_min");
    check_argument(std::isfinite(r_max) && r_max >= r_min, where, "need r_max >= r_min");
    check_in_open_closed(q0, 0.0, 1.0, where, "q0");
    check_argument(std::isfinite(bt_min) && std::isfinite(bt_max) && 0 <= bt_min && bt_min <= bt_max && bt_max <= 1,
                   where, "need 0 <= bt_min <= bt_max <= 1");
    check_argument(std::isfinite(n_min) && std::isfinite(n_max) && 0.5 <= n_min && n_min <= n_max && n_max <= 8, where,
                   "need 0.5 <= n_min <= n_max <= 8");
    check_in_closed(mean_clumps, 0.0, 100.0, where, "mean_clumps");
    check_in_closed(clump_max, 0.0, 1.0, where, "clump_max");
    check_finite(center_x, where, "center_x");
    check_finite(center_y, where, "center_y");
    check_nonnegative(offset, where, "offset");
    check_argument(std::isfinite(trunc_factor) && trunc_factor >= 2 && trunc_factor <= 20, where,
                   "trunc_factor must be in [2, 20]");
  }

  /// Galaxy `index` of seed `seed` (host or device; the same draws either way).
  KOKKOS_INLINE_FUNCTION Galaxy<Scalar> draw(std::uint64_t seed, std::uint64_t index) const {
    random::Stream r(random::stream_key(seed, random::purpose_galaxy, index));
    constexpr double pi = math::pi<double>;
    Galaxy<Scalar> g;
    double const cx = center_x + offset * (2 * r.uniform<double>() - 1);
    double const cy = center_y + offset * (2 * r.uniform<double>() - 1);
    double const r_d = r_min * math::exp(math::log(r_max / r_min) * r.uniform<double>());
    double const cos_i = r.uniform<double>();
    double const q_d = math::sqrt(cos_i * cos_i * (1 - q0 * q0) + q0 * q0);
    double const phi = pi * r.uniform<double>();
    double const bt = bt_min + (bt_max - bt_min) * r.uniform<double>();
    double const r_b = r_d * (0.2 + 0.3 * r.uniform<double>());
    double const n_b = n_min + (n_max - n_min) * r.uniform<double>();
    double const q_b = 0.6 + 0.4 * r.uniform<double>();
    double const phi_b = phi + 0.17453292519943295 * r.normal<double>();
    double const f_clumps = clump_max * r.uniform<double>();
    double const n_clumps_drawn = r.poisson(mean_clumps);
    int const nc = n_clumps_drawn < Galaxy<Scalar>::max_clumps ? int(n_clumps_drawn) : Galaxy<Scalar>::max_clumps;
    double const disk_flux = flux * (1 - bt) * (nc > 0 ? 1 - f_clumps : 1);
    g.bulge = SersicComponent<Scalar>::make(flux * bt, r_b, n_b, q_b, phi_b, cx, cy, trunc_factor);
    g.disk = SersicComponent<Scalar>::make(disk_flux, r_d, 1.0, q_d, phi, cx, cy, trunc_factor);
    double weights[Galaxy<Scalar>::max_clumps];
    double wsum = 0;
    for (int k = 0; k < nc; ++k) {
      weights[k] = -math::log(r.uniform<double>());
      wsum += weights[k];
    }
    double const h = r_d / math::sersic_b(1.0);
    double const cphi = math::cos(phi), sphi = math::sin(phi), sq = math::sqrt(q_d);
    double extent = trunc_factor * math::max(r_d, r_b) / math::sqrt(math::min(q_d, q_b));
    for (int k = 0; k < nc; ++k) {
      double rad = -h * (math::log(r.uniform<double>()) + math::log(r.uniform<double>()));
      rad = math::min(rad, 0.8 * trunc_factor * r_d);
      double const th = 2 * pi * r.uniform<double>();
      double const xp = rad * math::cos(th) / sq, yp = rad * math::sin(th) * sq;
      auto& c = g.clumps[k];
      c.flux = Scalar(flux * (1 - bt) * f_clumps * weights[k] / wsum);
      c.sigma = Scalar(r_d * (0.05 + 0.1 * r.uniform<double>()));
      c.x0 = Scalar(cx + cphi * xp - sphi * yp);
      c.y0 = Scalar(cy + sphi * xp + cphi * yp);
      extent = math::max(extent, math::sqrt(xp * xp + yp * yp) + 6 * double(c.sigma));
    }
    for (int k = nc; k < Galaxy<Scalar>::max_clumps; ++k)
      g.clumps[k] = Clump<Scalar>{Scalar(0), Scalar(1), Scalar(0), Scalar(0)};
    g.num_clumps = nc;
    g.flux = Scalar(flux);
    g.center_x = Scalar(cx);
    g.center_y = Scalar(cy);
    g.extent = Scalar(extent);
    return g;
  }
};

//----------------------------------------------------------------------------
// Rendering onto stamps.

/// The centre and extent of a galaxy-like profile for the stamp renderer:
/// the galaxy itself (found by argument-dependent lookup, so that other
/// galaxy types, e.g. SpiralGalaxy, give theirs).
template <class Scalar>
KOKKOS_INLINE_FUNCTION Galaxy<Scalar> const& stamp_frame(Galaxy<Scalar> const& g) {
  return g;
}

namespace detail {

// stamps(b, iy, ix) = mean surface brightness of galaxies(b) over pixel (iy,
// ix) on a k x k sub-pixel grid (4k x 4k within 1.5 pixels of the centre, for
// a bulge's cusp); 0 for pixels entirely outside the galaxy's extent.  The
// kernel of render_galaxies and render_spiral_galaxies (sizes checked there).
template <class ExecutionSpace, class Scalar, class StampView, class GalaxyView>
void render_stamps(ExecutionSpace const& space, StampView const& stamps, Scalar pixel_scale, GalaxyView const& galaxies,
                   int supersampling, char const* label) {
  int const n = int(stamps.extent(0)), ny = int(stamps.extent(1)), nx = int(stamps.extent(2));
  int const k = supersampling;
  Scalar const dx = pixel_scale, sub = pixel_scale / Scalar(k);
  Scalar const x_first = -Scalar(0.5) * Scalar(nx - 1) * dx, y_first = -Scalar(0.5) * Scalar(ny - 1) * dx;
  Scalar const inv_k2 = Scalar(1) / Scalar(k * k);
  Kokkos::parallel_for(
      label, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(n) * ny * nx),
      KOKKOS_LAMBDA(long i) {
        int const b = int(i / (long(ny) * nx));
        int const iy = int((i / nx) % ny), ix = int(i % nx);
        auto const& g = galaxies(b);
        auto const& frame = stamp_frame(g);
        Scalar const xc = x_first + Scalar(ix) * dx, yc = y_first + Scalar(iy) * dx;
        // Pixels entirely outside the galaxy's extent are 0.
        Scalar const ex = math::fabs(xc - frame.center_x) - Scalar(0.7072) * dx;
        Scalar const ey = math::fabs(yc - frame.center_y) - Scalar(0.7072) * dx;
        if (ex > frame.extent || ey > frame.extent) {
          stamps(b, iy, ix) = Scalar(0);
          return;
        }
        // The cusp of a Sérsic bulge: 4x finer sub-pixels on the pixels
        // within 1.5 pixels of the galaxy's centre.
        bool const central =
            math::fabs(xc - frame.center_x) < Scalar(1.5) * dx && math::fabs(yc - frame.center_y) < Scalar(1.5) * dx;
        int const kk = central ? 4 * k : k;
        Scalar const ss = central ? sub / Scalar(4) : sub;
        Scalar s = 0;
        for (int sy = 0; sy < kk; ++sy)
          for (int sx = 0; sx < kk; ++sx)
            s += g.surface_brightness(xc + (Scalar(sx) + Scalar(0.5)) * ss - Scalar(0.5) * dx,
                                      yc + (Scalar(sy) + Scalar(0.5)) * ss - Scalar(0.5) * dx);
        stamps(b, iy, ix) = central ? s * inv_k2 / Scalar(16) : s * inv_k2;
      });
}

}  // namespace detail

/// Render galaxies onto stamps.
///
/// stamps(b, iy, ix) = mean surface brightness of galaxy first_index + b over
/// pixel (iy, ix) [flux / arcsec^2], estimated on a k x k grid of sub-pixels
/// (k = supersampling); pixel centres at ((ix - (nx-1)/2) dx, (iy - (ny-1)/2) dx),
/// x fastest (lenstronomy's grid convention), so that sum(stamp) dx^2 = flux
/// for a galaxy inside the stamp (up to the sub-pixel integration error of a
/// cuspy bulge, see the tests).  `galaxies` (length >= n) receives the drawn
/// galaxies for analytic use.  Asynchronous on `space`.
template <class ExecutionSpace, class Scalar, class StampView, class GalaxyView>
void render_galaxies(ExecutionSpace const& space, GalaxyModel<Scalar> const& model, StampView const& stamps,
                     Scalar pixel_scale, GalaxyView const& galaxies, std::uint64_t seed, std::uint64_t first_index = 0,
                     int supersampling = 4) {
  constexpr char const* where = "lensing::simulate::render_galaxies";
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::simulate::render_galaxies: first argument must be a Kokkos execution space");
  static_assert(StampView::rank == 3, "lensing::simulate::render_galaxies: stamps must be a rank-3 view (n, ny, nx)");
  static_assert(std::is_same<typename StampView::value_type, Scalar>::value,
                "lensing::simulate::render_galaxies: stamps must hold the model's Scalar");
  static_assert(GalaxyView::rank == 1 && std::is_same<typename GalaxyView::value_type, Galaxy<Scalar>>::value,
                "lensing::simulate::render_galaxies: galaxies must be a rank-1 view of Galaxy<Scalar>");
  static_assert(is_accessible_from_v<ExecutionSpace, typename StampView::memory_space> &&
                    is_accessible_from_v<ExecutionSpace, typename GalaxyView::memory_space>,
                "lensing::simulate::render_galaxies: views must be accessible from the execution space");
  model.check(where);
  check_positive(pixel_scale, where, "pixel_scale");
  check_count(supersampling, 1, where, "supersampling");
  int const n = int(stamps.extent(0)), ny = int(stamps.extent(1)), nx = int(stamps.extent(2));
  check_argument(n >= 1 && ny >= 1 && nx >= 1, where, "stamps must be non-empty");
  check_argument(galaxies.extent(0) >= size_t(n), where, "galaxies must have length >= stamps.extent(0)");
  auto const m = model;
  Kokkos::parallel_for(
      "lensing::simulate::draw_galaxies", Kokkos::RangePolicy<ExecutionSpace>(space, 0, n),
      KOKKOS_LAMBDA(int b) { galaxies(b) = m.draw(seed, first_index + b); });
  detail::render_stamps(space, stamps, pixel_scale, galaxies, supersampling, "lensing::simulate::render_galaxies");
}

}  // namespace simulate
}  // namespace lensing

#endif  // LENSING_SIMULATE_GALAXIES_HPP
