#ifndef LENSING_PROFILES_MASS_SHEET_HPP
#define LENSING_PROFILES_MASS_SHEET_HPP

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/profiles/mass_profile.hpp>

namespace lensing {

/// Uniform mass sheet of constant convergence (lenstronomy "CONVERGENCE";
/// the mass-sheet degeneracy of Falco, Gorenstein & Shapiro 1985, ApJ 289, L1).
///
///   psi = kappa (dx^2 + dy^2)/2,  alpha = kappa (dx, dy),
///   f_xx = f_yy = kappa,  f_xy = 0,  convergence = kappa,
/// with (dx, dy) = (x - ra_0, y - dec_0); angles in arcsec, psi in arcsec^2.
/// Together with a profile scaled by (1 - kappa) it leaves image positions
/// unchanged when the source plane is scaled by (1 - kappa) about (ra_0, dec_0).
/// Parameters (pack order, lenstronomy's names): kappa (any sign), ra_0, dec_0
/// (the point of zero deflection; it only moves psi and alpha by terms constant
/// or linear in position).  Every finite value is valid.
/// Polynomial in position: exact and finite everywhere, no special points.
template <class Scalar>
struct MassSheet {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::MassSheet";
  static constexpr int num_params = 3;
  static constexpr char const* param_names[] = {"kappa", "ra_0", "dec_0"};
  Scalar kappa;  ///< convergence of the sheet (dimensionless)
  Scalar ra_0;   ///< centre of the expansion [arcsec]
  Scalar dec_0;  ///< [arcsec]

  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    return {kappa * (x - ra_0), kappa * (y - dec_0)};
  }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const {
    Scalar const dx = x - ra_0, dy = y - dec_0;
    return Scalar(0.5) * kappa * (dx * dx + dy * dy);
  }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar, Scalar) const { return kappa; }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar, Scalar) const { return {kappa, Scalar(0), kappa}; }

  KOKKOS_INLINE_FUNCTION void deflection_vjp(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad) const {
    grad[0] += g.x * (x - ra_0) + g.y * (y - dec_0);
    grad[1] -= kappa * g.x;
    grad[2] -= kappa * g.y;
  }
  KOKKOS_INLINE_FUNCTION void potential_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    Scalar const dx = x - ra_0, dy = y - dec_0;
    grad[0] += g * Scalar(0.5) * (dx * dx + dy * dy);
    grad[1] -= g * kappa * dx;
    grad[2] -= g * kappa * dy;
  }
  KOKKOS_INLINE_FUNCTION void convergence_vjp(Scalar, Scalar, Scalar g, Scalar* grad) const { grad[0] += g; }
  /// grad[k] += hbar . dH/dtheta_k (cotangent of (xx, xy, yy)); H is constant in position.
  KOKKOS_INLINE_FUNCTION void hessian_vjp(Scalar, Scalar, Hessian<Scalar> hbar, Scalar* grad) const {
    grad[0] += hbar.xx + hbar.yy;
  }

  KOKKOS_INLINE_FUNCTION void pack(Scalar* theta) const {
    theta[0] = kappa;
    theta[1] = ra_0;
    theta[2] = dec_0;
  }
  KOKKOS_INLINE_FUNCTION static MassSheet unpack(Scalar const* theta) { return {theta[0], theta[1], theta[2]}; }
  /// Host: throws std::invalid_argument unless every parameter is finite.
  void check() const {
    check_finite(kappa, name, "kappa");
    check_finite(ra_0, name, "ra_0");
    check_finite(dec_0, name, "dec_0");
  }
};

}  // namespace lensing

#endif  // LENSING_PROFILES_MASS_SHEET_HPP
