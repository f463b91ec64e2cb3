#ifndef LENSING_PROFILES_MULTIPOLE_HPP
#define LENSING_PROFILES_MULTIPOLE_HPP

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/profiles/detail/hessian_vjp.hpp>
#include <lensing/profiles/mass_profile.hpp>

namespace lensing {

namespace detail {
/// A point seen from a multipole's centre: the true radius r, the radius rc =
/// max(r, cusp_radius) used where a quantity diverges at the centre, the unit
/// vector (ex, ey) = (cos theta, sin theta) ((1, 0) at r = 0, like atan2(0, 0)
/// = 0), cos/sin of the multipole angle phi_m (cp, sp) and cm + i sm =
/// exp(i m (theta - phi_m)), the latter as an integer power of
/// exp(i (theta - phi_m)) (no atan2, no trigonometry per point).
template <class Scalar>
struct MultipolePoint {
  Scalar r, rc, ex, ey, cp, sp, cm, sm;
};

template <class Scalar, int M>
KOKKOS_INLINE_FUNCTION MultipolePoint<Scalar> multipole_point(Scalar dx, Scalar dy, Scalar phi_m) {
  MultipolePoint<Scalar> p;
  p.r = math::sqrt(dx * dx + dy * dy);
  // Below the cusp radius the squares may underflow (float): hypot keeps the
  // direction exact.
  if (p.r < cusp_radius<Scalar>) p.r = math::hypot(dx, dy);
  p.rc = math::max(p.r, cusp_radius<Scalar>);
  if (p.r > Scalar(0)) {
    p.ex = dx / p.r;
    p.ey = dy / p.r;
  } else {
    p.ex = Scalar(1);
    p.ey = Scalar(0);
  }
  p.cp = math::cos(phi_m);
  p.sp = math::sin(phi_m);
  Scalar const c1 = p.ex * p.cp + p.ey * p.sp;  // cos(theta - phi_m)
  Scalar const s1 = p.ey * p.cp - p.ex * p.sp;  // sin(theta - phi_m)
  Scalar c = c1, s = s1;
  for (int k = 1; k < M; ++k) {
    Scalar const cn = c * c1 - s * s1;
    s = s * c1 + c * s1;
    c = cn;
  }
  p.cm = c;
  p.sm = s;
  return p;
}
}  // namespace detail

/// Circular multipole perturbation of order M (lenstronomy "MULTIPOLE", not the
/// elliptical "MULTIPOLE_ELL"; Xu et al. 2013, MNRAS 435, 3040, eq. B12; the
/// M = 1 potential as in lenstronomy 1.14).
///
///   kappa = a_m cos(M (theta - phi_m)) / (2 r),
/// r, theta the polar coordinates about (center_x, center_y), angles in arcsec,
/// a_m in arcsec, psi in arcsec^2.  With Delta = theta - phi_m:
///  - M != 1: psi = a_m/(1 - M^2) r cos(M Delta); alpha depends on theta only,
///    alpha = a_m/(1 - M^2) (cos(M Delta) e_r - M sin(M Delta) e_theta);
///    H = a_m cos(M Delta)/r e_theta e_theta^T.  r_E has no effect.
///  - M = 1: psi = (a_m/2) r ln(r/r_E) cos(Delta), whose zero point r_E adds
///    only a uniform deflection -(a_m/2) ln(r_E) (cos phi_m, sin phi_m).
/// Parameters (pack order, lenstronomy's names): a_m (any sign), phi_m
/// [rad], center_x, center_y, r_E > 0 (default 1 in lenstronomy; kept in the
/// vector for every M so that names match, with zero gradient for M != 1).
/// M >= 1 is a compile-time constant and is not differentiated.
///
/// Centre: kappa and H diverge as 1/r (and alpha as ln r for M = 1).  Here
/// kappa, H and their gradients are evaluated at rc = max(r, cusp_radius)
/// (1e-15" double, 1e-12" float) along the true direction (theta = 0 at r = 0);
/// for M != 1 psi and alpha are exact (psi(0) = 0; alpha bounded but
/// direction dependent, at r = 0 its theta = 0 value); for M = 1 every
/// quantity is evaluated at the point moved radially onto rc (alpha ~
/// (a_m/2) ln(rc/r_E) there: large but finite).  Clamps have zero derivative.
/// lenstronomy clamps at 1e-6" instead (M = 1: everything; M != 1: Hessian and
/// kappa only), so the two differ only within 1e-6" of the centre.
template <class Scalar, int M>
struct Multipole {
  static_assert(M >= 1, "lensing::Multipole: the order M must be >= 1");
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::Multipole";
  static constexpr int order = M;
  static constexpr int num_params = 5;
  static constexpr char const* param_names[] = {"a_m", "phi_m", "center_x", "center_y", "r_E"};
  Scalar a_m;       ///< amplitude [arcsec] (kappa = a_m cos(M Delta)/(2r))
  Scalar phi_m;     ///< orientation [rad]
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;  ///< [arcsec]
  Scalar r_E;       ///< zero point of the M = 1 logarithm [arcsec], > 0 (unused for M != 1)

 private:
  using Point = detail::MultipolePoint<Scalar>;
  // 1/(1 - M^2) for M != 1.
  KOKKOS_FORCEINLINE_FUNCTION static constexpr Scalar inv_1m_m2() {
    return M == 1 ? Scalar(0) : Scalar(1) / Scalar(1 - M * M);
  }

  KOKKOS_INLINE_FUNCTION Point point(Scalar x, Scalar y) const {
    return detail::multipole_point<Scalar, M>(x - center_x, y - center_y, phi_m);
  }
  // alpha / a_m.
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> unit_deflection(Point const& p) const {
    if constexpr (M == 1) {
      Scalar const L = math::log(p.rc / r_E);
      return {Scalar(0.5) * (p.ex * p.cm + L * p.cp), Scalar(0.5) * (p.ey * p.cm + L * p.sp)};
    } else {
      Scalar const mm = Scalar(M);
      return {inv_1m_m2() * (p.ex * p.cm + mm * p.ey * p.sm), inv_1m_m2() * (p.ey * p.cm - mm * p.ex * p.sm)};
    }
  }
  // psi / a_m.
  KOKKOS_INLINE_FUNCTION Scalar unit_potential(Point const& p) const {
    if constexpr (M == 1) {
      return Scalar(0.5) * math::log(p.rc / r_E) * p.rc * p.cm;
    } else {
      return inv_1m_m2() * p.r * p.cm;
    }
  }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian_at(Point const& p) const {
    if constexpr (M == 1) {
      Scalar const f = Scalar(0.5) * a_m / p.rc, d = p.cm * (p.ex * p.ex - p.ey * p.ey);
      return {f * (Scalar(2) * p.ex * p.cp - d), f * (p.ex * p.sp + p.ey * p.cp - Scalar(2) * p.cm * p.ex * p.ey),
              f * (Scalar(2) * p.ey * p.sp + d)};
    } else {
      Scalar const g = a_m * p.cm / p.rc;
      return {g * p.ey * p.ey, -g * p.ex * p.ey, g * p.ex * p.ex};
    }
  }
  // grad kappa (with respect to x, y).
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> convergence_gradient(Point const& p) const {
    Scalar const f = Scalar(0.5) * a_m / p.rc / p.rc;
    if constexpr (M == 1) {
      return {f * (p.cp - Scalar(2) * p.ex * p.cm), f * (p.sp - Scalar(2) * p.ey * p.cm)};
    } else {
      Scalar const mm = Scalar(M);
      return {-f * (p.ex * p.cm - mm * p.ey * p.sm), -f * (p.ey * p.cm + mm * p.ex * p.sm)};
    }
  }

 public:
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Vec2<Scalar> const u = unit_deflection(point(x, y));
    return {a_m * u.x, a_m * u.y};
  }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const { return a_m * unit_potential(point(x, y)); }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const {
    Point const p = point(x, y);
    return Scalar(0.5) * a_m * p.cm / p.rc;
  }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const { return hessian_at(point(x, y)); }

  KOKKOS_INLINE_FUNCTION void deflection_vjp(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad) const {
    Point const p = point(x, y);
    grad[0] += dot(g, unit_deflection(p));
    Scalar dphi;
    if constexpr (M == 1) {
      Scalar const L = math::log(p.rc / r_E);
      dphi = Scalar(0.5) * a_m * (g.x * (p.ex * p.sm - L * p.sp) + g.y * (p.ey * p.sm + L * p.cp));
      grad[4] -= Scalar(0.5) * a_m / r_E * (g.x * p.cp + g.y * p.sp);
    } else {
      Scalar const mm = Scalar(M), f = a_m * inv_1m_m2() * mm;
      dphi = f * (g.x * (p.ex * p.sm - mm * p.ey * p.cm) + g.y * (p.ey * p.sm + mm * p.ex * p.cm));
    }
    grad[1] += dphi;
    Vec2<Scalar> const hg = hessian_at(p).apply(g);  // d alpha / d centre = -H
    grad[2] -= hg.x;
    grad[3] -= hg.y;
  }
  KOKKOS_INLINE_FUNCTION void potential_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    Point const p = point(x, y);
    grad[0] += g * unit_potential(p);
    if constexpr (M == 1) {
      Scalar const L = math::log(p.rc / r_E);
      grad[1] += g * Scalar(0.5) * a_m * L * p.rc * p.sm;
      grad[4] -= g * Scalar(0.5) * a_m * p.rc * p.cm / r_E;
    } else {
      grad[1] += g * a_m * inv_1m_m2() * Scalar(M) * p.r * p.sm;
    }
    Vec2<Scalar> const u = unit_deflection(p);  // d psi / d centre = -alpha
    grad[2] -= g * a_m * u.x;
    grad[3] -= g * a_m * u.y;
  }
  KOKKOS_INLINE_FUNCTION void convergence_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    Point const p = point(x, y);
    Scalar const h = Scalar(0.5) * g / p.rc;
    grad[0] += h * p.cm;
    grad[1] += h * a_m * Scalar(M) * p.sm;
    Vec2<Scalar> const dk = convergence_gradient(p);  // d kappa / d centre = -grad kappa
    grad[2] -= g * dk.x;
    grad[3] -= g * dk.y;
  }

  /// grad[k] += hbar : dH/dtheta_k (exact, by dual numbers through
  /// deflection_vjp; see profiles/detail/hessian_vjp.hpp).
  KOKKOS_INLINE_FUNCTION void hessian_vjp(Scalar x, Scalar y, Hessian<Scalar> hbar, Scalar* grad) const {
    detail::hessian_vjp_by_dual<Multipole<detail::hessian_dual_t<Scalar>, M>>(*this, x, y, hbar, grad);
  }

  KOKKOS_INLINE_FUNCTION void pack(Scalar* theta) const {
    theta[0] = a_m;
    theta[1] = phi_m;
    theta[2] = center_x;
    theta[3] = center_y;
    theta[4] = r_E;
  }
  KOKKOS_INLINE_FUNCTION static Multipole unpack(Scalar const* theta) {
    return {theta[0], theta[1], theta[2], theta[3], theta[4]};
  }
  /// Host: throws std::invalid_argument on non-finite parameters or r_E <= 0.
  void check() const {
    check_finite(a_m, name, "a_m");
    check_finite(phi_m, name, "phi_m");
    check_finite(center_x, name, "center_x");
    check_finite(center_y, name, "center_y");
    check_positive(r_E, name, "r_E");
  }
};

/// Multipole of order 1, 3, 4 as templates of the scalar (see Multipole).
template <class Scalar>
using Multipole1 = Multipole<Scalar, 1>;
template <class Scalar>
using Multipole3 = Multipole<Scalar, 3>;
template <class Scalar>
using Multipole4 = Multipole<Scalar, 4>;

}  // namespace lensing

#endif  // LENSING_PROFILES_MULTIPOLE_HPP
