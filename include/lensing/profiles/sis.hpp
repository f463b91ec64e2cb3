#ifndef LENSING_PROFILES_SIS_HPP
#define LENSING_PROFILES_SIS_HPP

#include <lensing/profiles/detail/radial.hpp>

namespace lensing {

namespace detail {
template <class Scalar>
struct SISKernel {
  Scalar theta_E;
  KOKKOS_INLINE_FUNCTION Scalar psi(Scalar r) const { return theta_E * r; }
  KOKKOS_INLINE_FUNCTION Scalar alpha_over_r(Scalar r) const { return theta_E / math::max(r, cusp_radius<Scalar>); }
  KOKKOS_INLINE_FUNCTION Scalar dalpha_dr(Scalar) const { return Scalar(0); }
  KOKKOS_INLINE_FUNCTION Scalar kappa(Scalar r) const {
    return Scalar(0.5) * theta_E / math::max(r, cusp_radius<Scalar>);
  }
  KOKKOS_INLINE_FUNCTION Scalar dkappa_dr(Scalar r) const {
    Scalar const rs = math::max(r, cusp_radius<Scalar>);
    return Scalar(-0.5) * theta_E / (rs * rs);
  }
  KOKKOS_INLINE_FUNCTION void psi_grad(Scalar r, Scalar g, Scalar* grad) const { grad[0] += g * r; }
  KOKKOS_INLINE_FUNCTION void alpha_over_r_grad(Scalar r, Scalar g, Scalar* grad) const {
    grad[0] += g / math::max(r, cusp_radius<Scalar>);
  }
  KOKKOS_INLINE_FUNCTION void kappa_grad(Scalar r, Scalar g, Scalar* grad) const {
    grad[0] += Scalar(0.5) * g / math::max(r, cusp_radius<Scalar>);
  }
};
}  // namespace detail

/// Parameters of the singular isothermal sphere (see SIS).
template <class Scalar>
struct SISParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::SIS";
  static constexpr int num_shape_params = 1;
  static constexpr char const* param_names[] = {"theta_E", "center_x", "center_y"};
  Scalar theta_E;   ///< Einstein radius [arcsec], > 0
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;  ///< [arcsec]

  KOKKOS_INLINE_FUNCTION detail::SISKernel<Scalar> kernel() const { return {theta_E}; }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const { t[0] = theta_E; }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) { theta_E = t[0]; }
  void check_shape() const { check_positive(theta_E, name, "theta_E"); }
};

/// Singular isothermal sphere (lenstronomy "SIS").
///
///   psi = theta_E r,  alpha = theta_E (x, y)/r,  kappa = theta_E / (2 r),
/// r the distance to (center_x, center_y), all angles in arcsec.
/// Parameters (pack order): theta_E > 0, center_x, center_y.
/// Valid everywhere: below detail::cusp_radius (1e-15" in double) kappa and
/// the Hessian are evaluated at that radius (finite), and the deflection is 0
/// at the centre.
template <class Scalar>
using SIS = RadialProfile<SISParams<Scalar>>;

}  // namespace lensing

#endif  // LENSING_PROFILES_SIS_HPP
