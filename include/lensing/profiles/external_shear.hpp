#ifndef LENSING_PROFILES_EXTERNAL_SHEAR_HPP
#define LENSING_PROFILES_EXTERNAL_SHEAR_HPP

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/profiles/mass_profile.hpp>

namespace lensing {

/// Constant external shear (lenstronomy "SHEAR"; e.g. Keeton, Kochanek &
/// Seljak 1997, ApJ 482, 604, the tidal term of the lens environment).
///
///   psi = gamma1 (dx^2 - dy^2)/2 + gamma2 dx dy,
///   alpha = (gamma1 dx + gamma2 dy, gamma2 dx - gamma1 dy),
///   f_xx = -f_yy = gamma1,  f_xy = gamma2,  kappa = 0,
/// with (dx, dy) = (x - ra_0, y - dec_0); angles in arcsec, psi in arcsec^2,
/// gamma1, gamma2 dimensionless.  The magnification is 1/(1 - gamma1^2 - gamma2^2).
/// Parameters (pack order, lenstronomy's names): gamma1, gamma2, ra_0, dec_0
/// (the point of zero deflection; it only moves psi and alpha by terms
/// constant or linear in position).  Every finite value is valid.
/// Polynomial in position: exact and finite everywhere, no special points.
template <class Scalar>
struct ExternalShear {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::ExternalShear";
  static constexpr int num_params = 4;
  static constexpr char const* param_names[] = {"gamma1", "gamma2", "ra_0", "dec_0"};
  Scalar gamma1;  ///< shear component along x (dimensionless)
  Scalar gamma2;  ///< shear component along the diagonal (dimensionless)
  Scalar ra_0;    ///< centre of the expansion [arcsec]
  Scalar dec_0;   ///< [arcsec]

  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Scalar const dx = x - ra_0, dy = y - dec_0;
    return {gamma1 * dx + gamma2 * dy, gamma2 * dx - gamma1 * dy};
  }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const {
    Scalar const dx = x - ra_0, dy = y - dec_0;
    return Scalar(0.5) * gamma1 * (dx * dx - dy * dy) + gamma2 * dx * dy;
  }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar, Scalar) const { return Scalar(0); }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar, Scalar) const { return {gamma1, gamma2, -gamma1}; }

  KOKKOS_INLINE_FUNCTION void deflection_vjp(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad) const {
    Scalar const dx = x - ra_0, dy = y - dec_0;
    grad[0] += g.x * dx - g.y * dy;
    grad[1] += g.x * dy + g.y * dx;
    // d alpha / d(ra_0, dec_0) = -H.
    grad[2] -= gamma1 * g.x + gamma2 * g.y;
    grad[3] -= gamma2 * g.x - gamma1 * g.y;
  }
  KOKKOS_INLINE_FUNCTION void potential_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    Scalar const dx = x - ra_0, dy = y - dec_0;
    grad[0] += g * Scalar(0.5) * (dx * dx - dy * dy);
    grad[1] += g * dx * dy;
    grad[2] -= g * (gamma1 * dx + gamma2 * dy);
    grad[3] -= g * (gamma2 * dx - gamma1 * dy);
  }
  KOKKOS_INLINE_FUNCTION void convergence_vjp(Scalar, Scalar, Scalar, Scalar*) const {}
  /// grad[k] += hbar . dH/dtheta_k (cotangent of (xx, xy, yy)); H is constant in position.
  KOKKOS_INLINE_FUNCTION void hessian_vjp(Scalar, Scalar, Hessian<Scalar> hbar, Scalar* grad) const {
    grad[0] += hbar.xx - hbar.yy;
    grad[1] += hbar.xy;
  }

  KOKKOS_INLINE_FUNCTION void pack(Scalar* theta) const {
    theta[0] = gamma1;
    theta[1] = gamma2;
    theta[2] = ra_0;
    theta[3] = dec_0;
  }
  KOKKOS_INLINE_FUNCTION static ExternalShear unpack(Scalar const* theta) {
    return {theta[0], theta[1], theta[2], theta[3]};
  }
  /// Host: throws std::invalid_argument unless every parameter is finite.
  void check() const {
    check_finite(gamma1, name, "gamma1");
    check_finite(gamma2, name, "gamma2");
    check_finite(ra_0, name, "ra_0");
    check_finite(dec_0, name, "dec_0");
  }
};

}  // namespace lensing

#endif  // LENSING_PROFILES_EXTERNAL_SHEAR_HPP
