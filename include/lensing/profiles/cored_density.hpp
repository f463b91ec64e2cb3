#ifndef LENSING_PROFILES_CORED_DENSITY_HPP
#define LENSING_PROFILES_CORED_DENSITY_HPP

#include <lensing/core/math.hpp>
#include <lensing/profiles/detail/radial.hpp>

namespace lensing {

namespace detail {

template <class Scalar>
struct CoredDensityKernel {
  Scalar sigma0, r_core;

  // rho = r/r_core, w = sqrt(1 + rho^2), rw = rho/w (<= 1), S = sqrt(r_core^2 + r^2).
  struct Eval {
    Scalar rho, w, rw, S;
  };
  KOKKOS_INLINE_FUNCTION Eval eval(Scalar r) const {
    Eval e;
    e.rho = r / r_core;
    e.w = math::hypot(Scalar(1), e.rho);
    e.rw = e.rho / e.w;
    e.S = math::hypot(r_core, r);
    return e;
  }

  KOKKOS_INLINE_FUNCTION Scalar psi(Scalar r) const {
    return Scalar(2) * sigma0 * r_core * r_core * math::log(r_core + eval(r).S);
  }
  KOKKOS_INLINE_FUNCTION Scalar alpha_over_r(Scalar r) const {
    Eval const e = eval(r);
    return Scalar(2) * sigma0 / (e.w * (Scalar(1) + e.w));
  }
  KOKKOS_INLINE_FUNCTION Scalar kappa(Scalar r) const {
    Eval const e = eval(r);
    return sigma0 / (e.w * e.w * e.w);
  }
  KOKKOS_INLINE_FUNCTION Scalar dalpha_dr(Scalar r) const {
    Eval const e = eval(r);
    return Scalar(2) * sigma0 * (Scalar(1) / (e.w * e.w * e.w) - Scalar(1) / (e.w * (Scalar(1) + e.w)));
  }
  KOKKOS_INLINE_FUNCTION Scalar dkappa_dr(Scalar r) const {
    Eval const e = eval(r);
    return Scalar(-3) * sigma0 * e.rw / (r_core * e.w * e.w * e.w * e.w);
  }
  // grad[0] = d/dsigma0, grad[1] = d/dr_core.
  KOKKOS_INLINE_FUNCTION void psi_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    Scalar const l = math::log(r_core + e.S);
    grad[0] += g * Scalar(2) * r_core * r_core * l;
    grad[1] += g * Scalar(2) * sigma0 * r_core * (Scalar(2) * l + r_core / e.S);
  }
  KOKKOS_INLINE_FUNCTION void alpha_over_r_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    Scalar const w1 = Scalar(1) + e.w;
    grad[0] += g * Scalar(2) / (e.w * w1);
    // d(alpha/r)/dr_core = 2 sigma0 (1 + 2w) q/(r_core w^3 (1+w)^2), q = rho^2
    grad[1] += g * Scalar(2) * sigma0 * (Scalar(1) + Scalar(2) * e.w) * e.rw * e.rw / (r_core * e.w * w1 * w1);
  }
  KOKKOS_INLINE_FUNCTION void kappa_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    Scalar const w3 = e.w * e.w * e.w;
    grad[0] += g / w3;
    grad[1] += g * Scalar(3) * sigma0 * e.rw * e.rw / (r_core * w3);
  }
};

}  // namespace detail

/// Parameters of the cored density profile (see CoredDensity).
template <class Scalar>
struct CoredDensityParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::CoredDensity";
  static constexpr int num_shape_params = 2;
  static constexpr char const* param_names[] = {"sigma0", "r_core", "center_x", "center_y"};
  Scalar sigma0;    ///< central convergence, > 0
  Scalar r_core;    ///< core radius [arcsec], > 0
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;  ///< [arcsec]

  KOKKOS_INLINE_FUNCTION detail::CoredDensityKernel<Scalar> kernel() const { return {sigma0, r_core}; }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const {
    t[0] = sigma0;
    t[1] = r_core;
  }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) {
    sigma0 = t[0];
    r_core = t[1];
  }
  void check_shape() const {
    check_positive(sigma0, name, "sigma0");
    check_positive(r_core, name, "r_core");
  }
};

/// Cored density profile (lenstronomy "CORED_DENSITY"; e.g. Blum, Castorina &
/// Simonovic 2020, ApJL 892, L27).
///
/// 3D density rho = (2/pi) sigma0 r_core^3 (r_core^2 + r^2)^-2; with
/// w = sqrt(1 + r^2/r_core^2):
///   kappa = sigma0 / w^3,   alpha = 2 sigma0 r/(w (1 + w)) (= 2 sigma0 r_core^2 (1 - 1/w)/r),
///   psi   = 2 sigma0 r_core^2 ln(r_core + sqrt(r_core^2 + r^2))
/// (lenstronomy's constant: its 2 sigma0 r_core^2 (2 ln r - ln(S - r_core)) is the same function).
/// Angles in arcsec; psi in arcsec^2.
/// Parameters (pack order): sigma0 > 0, r_core > 0, center_x, center_y.
/// Smooth everywhere: finite alpha/r, kappa and derivatives at r = 0 (no
/// clamping; lenstronomy clamps r >= 1e-6).  All forms cancellation-free
/// (alpha and its r_core-derivative without 1 - 1/w).  r_core -> 0 with
/// 2 sigma0 r_core^2 = theta_E^2 fixed gives a point mass (error O(r_core/r)).
template <class Scalar>
using CoredDensity = RadialProfile<CoredDensityParams<Scalar>>;

}  // namespace lensing

#endif  // LENSING_PROFILES_CORED_DENSITY_HPP
