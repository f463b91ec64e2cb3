#ifndef LENSING_PROFILES_PSEUDO_JAFFE_HPP
#define LENSING_PROFILES_PSEUDO_JAFFE_HPP

#include <lensing/core/math.hpp>
#include <lensing/profiles/detail/radial.hpp>

namespace lensing {

namespace detail {

template <class Scalar>
struct PseudoJaffeKernel {
  Scalar sigma0, Ra, Rs;

  // Sa = sqrt(Ra^2 + r^2), Ss = sqrt(Rs^2 + r^2), Sg = Sa + Ss,
  // kappa/sigma0 and (alpha/r)/sigma0 in forms symmetric in (Ra, Rs) and
  // free of the (Rs - Ra) divided difference.
  struct Eval {
    Scalar Sa, Ss, Sg, N, k1, a1;
  };
  KOKKOS_INLINE_FUNCTION Eval eval(Scalar r) const {
    Eval e;
    e.Sa = math::hypot(Ra, r);
    e.Ss = math::hypot(Rs, r);
    e.Sg = e.Sa + e.Ss;
    Scalar const RaRs = Ra * Rs, sum = Ra + Rs;
    e.k1 = RaRs * sum / (e.Sg * e.Sa * e.Ss);  // kappa = c (1/Sa - 1/Ss)
    e.N = Scalar(1) + sum / e.Sg;              // alpha/r = 2c (1/(Ra+Sa) - 1/(Rs+Ss))
    e.a1 = Scalar(2) * RaRs * e.N / ((Ra + e.Sa) * (Rs + e.Ss));
    return e;
  }

  KOKKOS_INLINE_FUNCTION Scalar psi(Scalar r) const {
    Eval const e = eval(r);
    Scalar const c = sigma0 * Ra * Rs / (Rs - Ra);
    return Scalar(2) * c * (e.Sa - e.Ss - Ra * math::log(Ra + e.Sa) + Rs * math::log(Rs + e.Ss));
  }
  KOKKOS_INLINE_FUNCTION Scalar alpha_over_r(Scalar r) const { return sigma0 * eval(r).a1; }
  KOKKOS_INLINE_FUNCTION Scalar kappa(Scalar r) const { return sigma0 * eval(r).k1; }
  KOKKOS_INLINE_FUNCTION Scalar dalpha_dr(Scalar r) const {
    Eval const e = eval(r);
    return sigma0 * (Scalar(2) * e.k1 - e.a1);
  }
  KOKKOS_INLINE_FUNCTION Scalar dkappa_dr(Scalar r) const {
    Eval const e = eval(r);
    return -sigma0 * e.k1 * r * (Scalar(1) / (e.Sa * e.Ss) + Scalar(1) / (e.Sa * e.Sa) + Scalar(1) / (e.Ss * e.Ss));
  }
  // grad[0] = d/dsigma0, grad[1] = d/dRa, grad[2] = d/dRs.
  KOKKOS_INLINE_FUNCTION void psi_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    Scalar const dR = Rs - Ra, c1 = Ra * Rs / dR, c = sigma0 * c1;
    Scalar const la = math::log(Ra + e.Sa), ls = math::log(Rs + e.Ss);
    Scalar const PaPs = e.Sa - e.Ss - Ra * la + Rs * ls;
    Scalar const c_Ra = sigma0 * (Rs / dR) * (Rs / dR), c_Rs = -sigma0 * (Ra / dR) * (Ra / dR);
    grad[0] += g * Scalar(2) * c1 * PaPs;
    grad[1] += g * Scalar(2) * (c_Ra * PaPs - c * la);
    grad[2] += g * Scalar(2) * (c_Rs * PaPs + c * ls);
  }
  KOKKOS_INLINE_FUNCTION void alpha_over_r_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    // d ln(alpha/r)/dRa = (1/Ra - 1/Sa) + (dN/dRa)/N, both O(r^2) and written without cancellation:
    // dN/dRa = r^2 [1 + (Ra^2 + Rs^2 + r^2)/(Sa Ss + Ra Rs)] / (Sa Sg^2).
    Scalar const r2 = r * r;
    Scalar const m = r2 * (Scalar(1) + (Ra * Ra + Rs * Rs + r2) / (e.Sa * e.Ss + Ra * Rs)) / (e.Sg * e.Sg * e.N);
    Scalar const a = sigma0 * e.a1;
    grad[0] += g * e.a1;
    grad[1] += g * a * (r2 / (Ra * e.Sa * (Ra + e.Sa)) + m / e.Sa);
    grad[2] += g * a * (r2 / (Rs * e.Ss * (Rs + e.Ss)) + m / e.Ss);
  }
  KOKKOS_INLINE_FUNCTION void kappa_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    Scalar const k = sigma0 * e.k1, isum = Scalar(1) / (Ra + Rs);
    grad[0] += g * e.k1;
    grad[1] += g * k * (Scalar(1) / Ra + isum - Ra / (e.Sa * e.Sg) - Ra / (e.Sa * e.Sa));
    grad[2] += g * k * (Scalar(1) / Rs + isum - Rs / (e.Ss * e.Sg) - Rs / (e.Ss * e.Ss));
  }
};

}  // namespace detail

/// Parameters of the pseudo-Jaffe profile (see PseudoJaffe).
template <class Scalar>
struct PseudoJaffeParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::PseudoJaffe";
  static constexpr int num_shape_params = 3;
  static constexpr char const* param_names[] = {"sigma0", "Ra", "Rs", "center_x", "center_y"};
  Scalar sigma0;    ///< pi rho0 Ra Rs/(Ra + Rs) (convergence units), > 0
  Scalar Ra;        ///< core radius [arcsec], > 0
  Scalar Rs;        ///< truncation radius [arcsec], > 0, != Ra
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;  ///< [arcsec]

  KOKKOS_INLINE_FUNCTION detail::PseudoJaffeKernel<Scalar> kernel() const { return {sigma0, Ra, Rs}; }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const {
    t[0] = sigma0;
    t[1] = Ra;
    t[2] = Rs;
  }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) {
    sigma0 = t[0];
    Ra = t[1];
    Rs = t[2];
  }
  void check_shape() const {
    check_positive(sigma0, name, "sigma0");
    check_positive(Ra, name, "Ra");
    check_positive(Rs, name, "Rs");
    check_argument(Ra != Rs, name, "Ra and Rs must differ (the potential is 0/0 at Ra = Rs)");
  }
};

/// Pseudo-Jaffe profile (lenstronomy "PJAFFE"; Keeton 2001, astro-ph/0102341;
/// Eliasdottir et al. 2007).
///
/// 3D density rho0/((1 + r^2/Ra^2)(1 + r^2/Rs^2)), sigma0 = pi rho0 Ra Rs/(Ra + Rs),
/// c = sigma0 Ra Rs/(Rs - Ra), Sa = sqrt(Ra^2 + r^2), Ss = sqrt(Rs^2 + r^2):
///   kappa = c (1/Sa - 1/Ss),   alpha = 2c [r/(Ra + Sa) - r/(Rs + Ss)],
///   psi   = 2c [Sa - Ss - Ra ln(Ra + Sa) + Rs ln(Rs + Ss)]   (lenstronomy's constant; psi(0) != 0).
/// Large r: alpha -> 2 sigma0 Ra Rs / r (total mass).  Ra -> 0, Rs -> infinity with
/// 2 sigma0 Ra = theta_E fixed gives the SIS.  Angles in arcsec; psi in arcsec^2.
/// Parameters (pack order): sigma0 > 0, Ra > 0, Rs > 0 (Ra != Rs), center_x, center_y.
/// Every expression is symmetric under Ra <-> Rs, so Ra > Rs gives the same
/// lens as the swapped pair (lenstronomy swaps them; it also clamps Ra >= 1e-4
/// and Rs >= Ra + 1e-4, which we do not).  kappa, alpha and their gradients are
/// written without the (Rs - Ra) divided difference (finite and accurate for
/// any Ra, Rs); psi and its gradients lose ~eps Rs/|Rs - Ra| relative as Ra -> Rs.
/// Smooth everywhere: finite alpha/r, kappa and derivatives at r = 0, no clamping
/// (lenstronomy clamps r >= 1e-4 in alpha and the Hessian).
template <class Scalar>
using PseudoJaffe = RadialProfile<PseudoJaffeParams<Scalar>>;

}  // namespace lensing

#endif  // LENSING_PROFILES_PSEUDO_JAFFE_HPP
