#ifndef LENSING_PROFILES_POINT_MASS_HPP
#define LENSING_PROFILES_POINT_MASS_HPP

#include <lensing/core/math.hpp>
#include <lensing/profiles/detail/radial.hpp>

namespace lensing {

namespace detail {

template <class Scalar>
struct PointMassKernel {
  Scalar theta_E;
  // 1/r^2 outside cusp_radius, 0 inside (no field at the centre).
  KOKKOS_INLINE_FUNCTION static Scalar inv_r2(Scalar r) {
    return r < cusp_radius<Scalar> ? Scalar(0) : Scalar(1) / (r * r);
  }
  KOKKOS_INLINE_FUNCTION Scalar psi(Scalar r) const {
    return theta_E * theta_E * math::log(math::max(r, cusp_radius<Scalar>));
  }
  KOKKOS_INLINE_FUNCTION Scalar alpha_over_r(Scalar r) const { return theta_E * theta_E * inv_r2(r); }
  KOKKOS_INLINE_FUNCTION Scalar dalpha_dr(Scalar r) const { return -theta_E * theta_E * inv_r2(r); }
  KOKKOS_INLINE_FUNCTION Scalar kappa(Scalar) const { return Scalar(0); }
  KOKKOS_INLINE_FUNCTION Scalar dkappa_dr(Scalar) const { return Scalar(0); }
  KOKKOS_INLINE_FUNCTION void psi_grad(Scalar r, Scalar g, Scalar* grad) const {
    grad[0] += g * Scalar(2) * theta_E * math::log(math::max(r, cusp_radius<Scalar>));
  }
  KOKKOS_INLINE_FUNCTION void alpha_over_r_grad(Scalar r, Scalar g, Scalar* grad) const {
    grad[0] += g * Scalar(2) * theta_E * inv_r2(r);
  }
  KOKKOS_INLINE_FUNCTION void kappa_grad(Scalar, Scalar, Scalar*) const {}
};

}  // namespace detail

/// Parameters of the point mass (see PointMass).
template <class Scalar>
struct PointMassParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::PointMass";
  static constexpr int num_shape_params = 1;
  static constexpr char const* param_names[] = {"theta_E", "center_x", "center_y"};
  Scalar theta_E;   ///< Einstein radius [arcsec], > 0
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;  ///< [arcsec]

  KOKKOS_INLINE_FUNCTION detail::PointMassKernel<Scalar> kernel() const { return {theta_E}; }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const { t[0] = theta_E; }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) { theta_E = t[0]; }
  void check_shape() const { check_positive(theta_E, name, "theta_E"); }
};

/// Point mass (lenstronomy "POINT_MASS"; Schneider, Ehlers & Falco 1992).
///
///   psi = theta_E^2 ln r,   alpha = theta_E^2 (x, y)/r^2,   kappa = 0 (r > 0),
/// r the distance to (center_x, center_y).  Angles in arcsec; psi in arcsec^2.
/// Parameters (pack order): theta_E > 0, center_x, center_y.
/// At the centre: below detail::cusp_radius the deflection, Hessian and their
/// gradients are 0 (as lenstronomy's at r = 0) and psi = theta_E^2 ln(cusp_radius)
/// (lenstronomy: theta_E^2 ln 1e-25).  The delta function in kappa at the centre
/// is not represented.
template <class Scalar>
using PointMass = RadialProfile<PointMassParams<Scalar>>;

}  // namespace lensing

#endif  // LENSING_PROFILES_POINT_MASS_HPP
