#ifndef LENSING_PROFILES_HERNQUIST_HPP
#define LENSING_PROFILES_HERNQUIST_HPP

#include <lensing/profiles/nfw.hpp>

namespace lensing {

namespace detail {

template <class Scalar>
struct HernquistKernel {
  Scalar sigma0, Rs;

  // x = r/Rs, the NFW functions, and K_H = kappa/sigma0 with its x-derivative.
  struct Eval {
    Scalar x, KH, dKH;
    NFWAux<Scalar> a;
    NFWgh<Scalar> gh;
  };
  KOKKOS_INLINE_FUNCTION Eval eval(Scalar r) const {
    Eval e;
    Scalar const x = nfw_x(r, Rs);
    e.x = x;
    e.a = nfw_aux(x);
    e.gh = nfw_gh(x, e.a);
    Scalar const u = e.a.u;
    if (math::fabs(u) < Scalar(0.5)) {
      // K_H = sum 4(j+1)/((2j+3)(2j+5)) u^j,  K_H' = -2x sum 4(j+1)(j+2)/((2j+5)(2j+7)) u^j
      Scalar k = Scalar(0), dk = Scalar(0);
      for (int j = NFWSeries<Scalar>::nKH - 1; j >= 0; --j) {
        k = k * u + Scalar(4 * (j + 1)) / (Scalar(2 * j + 3) * Scalar(2 * j + 5));
        dk = dk * u + Scalar(4 * (j + 1)) * Scalar(j + 2) / (Scalar(2 * j + 5) * Scalar(2 * j + 7));
      }
      e.KH = k;
      e.dKH = Scalar(-2) * x * dk;
    } else {
      Scalar const b = Scalar(2) + x * x;
      Scalar const Nu = (Scalar(-3) + b * e.a.A) / u;  // numerator / u
      e.KH = Nu / u;
      e.dKH = ((Scalar(2) * x * e.a.A + b * e.a.dA) / u + Scalar(4) * x * Nu / u) / u;
    }
    return e;
  }

  KOKKOS_INLINE_FUNCTION Scalar psi(Scalar r) const {
    Eval const e = eval(r);
    return Scalar(2) * sigma0 * Rs * Rs * e.gh.g;
  }
  KOKKOS_INLINE_FUNCTION Scalar alpha_over_r(Scalar r) const {
    Eval const e = eval(r);
    return Scalar(2) * sigma0 * e.a.F;
  }
  KOKKOS_INLINE_FUNCTION Scalar kappa(Scalar r) const {
    Eval const e = eval(r);
    return sigma0 * e.KH;
  }
  KOKKOS_INLINE_FUNCTION Scalar dalpha_dr(Scalar r) const {
    Eval const e = eval(r);
    return Scalar(2) * sigma0 * (e.KH - e.a.F);
  }
  KOKKOS_INLINE_FUNCTION Scalar dkappa_dr(Scalar r) const {
    Eval const e = eval(r);
    return sigma0 * e.dKH / Rs;
  }
  // grad[0] = d/dsigma0, grad[1] = d/dRs.
  KOKKOS_INLINE_FUNCTION void psi_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    grad[0] += g * Scalar(2) * Rs * Rs * e.gh.g;
    grad[1] += g * Scalar(2) * sigma0 * Rs * (Scalar(2) * e.gh.g - e.x * e.x * e.a.F);
  }
  KOKKOS_INLINE_FUNCTION void alpha_over_r_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    grad[0] += g * Scalar(2) * e.a.F;
    grad[1] -= g * Scalar(2) * sigma0 * e.x * e.a.dF / Rs;
  }
  KOKKOS_INLINE_FUNCTION void kappa_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    grad[0] += g * e.KH;
    grad[1] -= g * sigma0 * e.x * e.dKH / Rs;
  }
};

}  // namespace detail

/// Parameters of the Hernquist profile (see Hernquist).
template <class Scalar>
struct HernquistParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::Hernquist";
  static constexpr int num_shape_params = 2;
  static constexpr char const* param_names[] = {"sigma0", "Rs", "center_x", "center_y"};
  Scalar sigma0;    ///< rho0 Rs (convergence units), > 0
  Scalar Rs;        ///< scale radius [arcsec], > 0
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;  ///< [arcsec]

  KOKKOS_INLINE_FUNCTION detail::HernquistKernel<Scalar> kernel() const { return {sigma0, Rs}; }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const {
    t[0] = sigma0;
    t[1] = Rs;
  }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) {
    sigma0 = t[0];
    Rs = t[1];
  }
  void check_shape() const {
    check_positive(sigma0, name, "sigma0");
    check_positive(Rs, name, "Rs");
  }
};

/// Spherical Hernquist profile (lenstronomy "HERNQUIST"; Hernquist 1990, ApJ
/// 356, 359; lensing functions as in Keeton 2001, astro-ph/0102341).
///
/// 3D density rho = rho0 / ((r/Rs)(1 + r/Rs)^3), sigma0 = rho0 Rs, x = r/Rs:
///   kappa = sigma0 (-3 + (2 + x^2) A)/(x^2 - 1)^2   (= 4 sigma0/15 at x = 1),
///   alpha = 2 sigma0 Rs x F(x),   psi = 2 sigma0 Rs^2 (ln(x/2) + A),
/// with A, F as for NFW.  Large r: alpha -> 2 sigma0 Rs^2 / r (total mass).
/// Angles in arcsec; psi in arcsec^2.
/// Parameters (pack order): sigma0 > 0, Rs > 0, center_x, center_y.
/// Numerics: kappa and its derivative near x = 1 from their series in 1 - x^2
/// (the direct form loses ~11 eps/(1-x^2)^2); the NFW functions' series and
/// small-x forms otherwise.  Logarithmic cusp: below detail::cusp_radius the
/// functions are evaluated at that radius.  lenstronomy's Hessian (and so its
/// kappa) is a finite difference of alpha (relative error up to ~5e-7); ours is
/// analytic.
template <class Scalar>
using Hernquist = RadialProfile<HernquistParams<Scalar>>;

}  // namespace lensing

#endif  // LENSING_PROFILES_HERNQUIST_HPP
