#ifndef LENSING_PROFILES_TNFW_HPP
#define LENSING_PROFILES_TNFW_HPP

#include <lensing/profiles/nfw.hpp>

namespace lensing {

namespace detail {

template <class Scalar>
struct TNFWKernel {
  Scalar Rs, alpha_Rs, r_trunc;

  // Everything at one radius: x = r/Rs, tau = r_trunc/Rs and (see TNFW)
  // F_t, g_t/x^2, h_t, with their x- and tau-derivatives.
  struct Eval {
    Scalar x, tau, ks_unit, ks;
    Scalar Ft, dFt_dx, dFt_dtau;
    Scalar gt_x2, dgt_dtau_x2;  // g_t/x^2, (dg_t/dtau)/x^2
    Scalar ht, dht_dtau;
  };

  KOKKOS_INLINE_FUNCTION Eval eval(Scalar r) const {
    Scalar const pi = math::pi<Scalar>, one = Scalar(1), two = Scalar(2);
    Eval e;
    Scalar const x = nfw_x(r, Rs), t = r_trunc / Rs;
    e.x = x;
    e.tau = t;
    e.ks_unit = nfw_norm<Scalar> / Rs;
    e.ks = alpha_Rs * e.ks_unit;
    NFWAux<Scalar> const a = nfw_aux(x);
    NFWgh<Scalar> const gh = nfw_gh(x, a);
    Scalar const t2 = t * t, tp1 = t2 + one, tm1 = t2 - one;
    Scalar const P = (t2 / tp1) / tp1;
    Scalar const dP = (two * t / tp1) * (-tm1 / tp1) / tp1;
    Scalar const S = math::hypot(t, x), tS = t + S;
    Scalar const lntS = math::log(tS), lnt = math::log(t);
    Scalar const L = math::log(x) - lntS;
    Scalar const d_x2 = one / (t * tS);  // d/x^2, d = (S - tau)/tau
    Scalar const d = x * x * d_x2;
    Scalar const lam = math::log1p(Scalar(0.5) * d);
    Scalar const lam_x2 = Scalar(0.5) * d_x2 * log1p_over(Scalar(0.5) * d);
    Scalar const iS = one / S, iS3 = iS * iS * iS;

    // kappa: F_t = P K
    Scalar const K = tp1 * a.F + two * a.A - pi * iS + tm1 * L / (t * S);
    e.Ft = P * K;
    e.dFt_dx = P * (tp1 * a.dF + two * a.dA + pi * x * iS3 + (tm1 / t) * (t / (x * S * S) - x * L * iS3));
    Scalar const q = (t - one / t) * iS, dq = (one + one / t2) * iS - (t - one / t) * t * iS3;
    Scalar const Ktau = two * t * a.F + pi * t * iS3 + dq * L - q * iS;
    e.dFt_dtau = dP * K + P * Ktau;

    // alpha: g_t = P G, G = (tau^2-1)(g - lam + d L) + 2 x^2 A - pi x^2/(tau+S)
    Scalar const G_x2 = tm1 * (gh.g_x2 - lam_x2 + d_x2 * L) + two * a.A - pi / tS;
    Scalar const Gtau_x2 =
        two * t * (gh.g_x2 - lam_x2) + pi * d_x2 / (one + d) + L * d_x2 * (two + tp1 * d) / (t * (one + d));
    e.gt_x2 = P * G_x2;
    e.dgt_dtau_x2 = dP * G_x2 + P * Gtau_x2;

    // psi: h_t = H/(tau^2+1)^2
    Scalar H, Htau;
    Scalar const T2 = t2 * tm1, T2p = Scalar(4) * t * t2 - two * t;
    if (x < one) {
      // Cancellation-free regrouping of H and its tau-derivative.
      Scalar const s = math::sqrt(a.u), d1 = one + s;
      Scalar const l = math::log1p(-x * x / (two * d1));
      Scalar const at = x < Scalar(0.5) ? math::log1p(s) - math::log(x) : math::atanh(s);
      Scalar const E = x * x * math::log(two / x) / d1;
      Scalar const Lp = -iS, dp = -x * x * iS / t2, lamp = dp / (two + d);
      Scalar const B = (L - at) * (l - lam) + lnt * (lam + l);
      Scalar const Bp = Lp * (l - lam) - (L - at) * lamp + (lam + l) / t + lnt * lamp;
      H = T2 * B + two * T2 * d * L + Scalar(4) * t2 * E - Scalar(4) * t2 * s * l + two * pi * t2 * t * (lam - d) -
          two * T2 * lam;
      Htau = T2p * B + T2 * Bp + two * T2p * d * L + two * T2 * (dp * L + d * Lp) + Scalar(8) * t * E -
             Scalar(8) * t * s * l + Scalar(6) * pi * t2 * (lam - d) + two * pi * t2 * t * (lamp - dp) -
             two * T2p * lam - two * T2 * lamp;
    } else {
      Scalar const xm = -a.u;  // x^2 - 1
      Scalar const lnx2 = two * math::log(x), ln4t = math::log(Scalar(4) * t), ln2t = math::log(two * t);
      Scalar const cosf = xm * a.A * a.A;
      H = two * t2 * pi * (t - S + t * lntS) + two * tm1 * t * S * L + T2 * L * L + Scalar(4) * t2 * xm * a.A +
          T2 * cosf + t2 * (tm1 * lnt - t2 - one) * lnx2 -
          t2 * (tm1 * lnt * ln4t + two * math::log(Scalar(0.5) * t) - two * t * (t - pi) * ln2t);
      Scalar const Cp = T2p * lnt * ln4t + tm1 * t * (ln4t + lnt) + Scalar(4) * t * math::log(Scalar(0.5) * t) +
                        two * t - (Scalar(8) * t2 * t - Scalar(6) * pi * t2) * ln2t - two * t2 * (t - pi);
      Htau = Scalar(4) * pi * t * (t - S + t * lntS) + two * pi * t2 * (one + lntS) +
             two * L * ((Scalar(3) * t2 - one) * S + tm1 * t2 * iS) - two * tm1 * t + T2p * L * L -
             two * tm1 * t2 * L * iS + Scalar(8) * t * xm * a.A + T2p * cosf +
             lnx2 * (T2p * lnt - Scalar(3) * t2 * t - Scalar(3) * t) - Cp;
    }
    Scalar const itp2 = one / (tp1 * tp1);
    e.ht = H * itp2;
    e.dht_dtau = Htau * itp2 - Scalar(4) * t / tp1 * e.ht;
    return e;
  }

  KOKKOS_INLINE_FUNCTION Scalar psi(Scalar r) const {
    Eval const e = eval(r);
    return Scalar(2) * e.ks * Rs * Rs * e.ht;
  }
  // g_t/x^2 of eval() without branches (vectorised deflection maps; eval
  // branches on x < 1 for psi): A and g/x^2 from nfw_g_x2_A, ln x = ln(x/2) +
  // ln 2, and log1p(d/2)/(d/2) with its series below 1e-4 selected per lane.
  KOKKOS_INLINE_FUNCTION Scalar alpha_over_r(Scalar r) const {
    Scalar const pi = math::pi<Scalar>, one = Scalar(1), two = Scalar(2);
    Scalar const x = nfw_x(r, Rs), t = r_trunc / Rs;
    Scalar A, lx;
    Scalar const g_x2 = nfw_g_x2_A(x, A, lx);
    Scalar const t2 = t * t, tp1 = t2 + one, tm1 = t2 - one;
    Scalar const P = (t2 / tp1) / tp1;
    Scalar const S = math::sqrt(t2 + x * x), tS = t + S;
    Scalar const L = lx + Scalar(0.69314718055994530941723212145818L) - math::log(tS);
    Scalar const d_x2 = one / (t * tS), h = Scalar(0.5) * x * x * d_x2;  // h = d/2
    constexpr Scalar hs = Scalar(1e-4);
    Scalar const h_series = one - h * (Scalar(1) / 2 - h * (Scalar(1) / 3 - h * (Scalar(1) / 4 - h / 5)));
    Scalar const hc = math::max(h, hs);
    Scalar const lam_x2 = Scalar(0.5) * d_x2 * (h < hs ? h_series : math::log1p(hc) / hc);
    Scalar const G_x2 = tm1 * (g_x2 - lam_x2 + d_x2 * L) + two * A - pi / tS;
    return Scalar(4) * alpha_Rs * (nfw_norm<Scalar> / Rs) * P * G_x2;
  }
  KOKKOS_INLINE_FUNCTION Scalar kappa(Scalar r) const {
    Eval const e = eval(r);
    return Scalar(2) * e.ks * e.Ft;
  }
  KOKKOS_INLINE_FUNCTION Scalar dalpha_dr(Scalar r) const {
    Eval const e = eval(r);
    return Scalar(4) * e.ks * (e.Ft - e.gt_x2);
  }
  KOKKOS_INLINE_FUNCTION Scalar dkappa_dr(Scalar r) const {
    Eval const e = eval(r);
    return Scalar(2) * e.ks * e.dFt_dx / Rs;
  }
  // grad[0] = d/dRs, grad[1] = d/dalpha_Rs, grad[2] = d/dr_trunc.
  KOKKOS_INLINE_FUNCTION void psi_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    Scalar const gt = e.gt_x2 * e.x * e.x;
    grad[0] += g * Scalar(2) * e.ks * Rs * (e.ht - Scalar(2) * gt - e.tau * e.dht_dtau);
    grad[1] += g * Scalar(2) * e.ks_unit * Rs * Rs * e.ht;
    grad[2] += g * Scalar(2) * e.ks * Rs * e.dht_dtau;
  }
  KOKKOS_INLINE_FUNCTION void alpha_over_r_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    grad[0] += g * Scalar(4) * e.ks / Rs * (e.gt_x2 - e.Ft - e.tau * e.dgt_dtau_x2);
    grad[1] += g * Scalar(4) * e.ks_unit * e.gt_x2;
    grad[2] += g * Scalar(4) * e.ks / Rs * e.dgt_dtau_x2;
  }
  KOKKOS_INLINE_FUNCTION void kappa_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    grad[0] -= g * Scalar(2) * e.ks / Rs * (e.Ft + e.x * e.dFt_dx + e.tau * e.dFt_dtau);
    grad[1] += g * Scalar(2) * e.ks_unit * e.Ft;
    grad[2] += g * Scalar(2) * e.ks / Rs * e.dFt_dtau;
  }
};

}  // namespace detail

/// Parameters of the truncated NFW profile (see TNFW).
template <class Scalar>
struct TNFWParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::TNFW";
  static constexpr int num_shape_params = 3;
  static constexpr char const* param_names[] = {"Rs", "alpha_Rs", "r_trunc", "center_x", "center_y"};
  Scalar Rs;        ///< scale radius [arcsec], > 0
  Scalar alpha_Rs;  ///< deflection at Rs of the untruncated NFW [arcsec], > 0
  Scalar r_trunc;   ///< truncation radius [arcsec], > 0
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;  ///< [arcsec]

  KOKKOS_INLINE_FUNCTION detail::TNFWKernel<Scalar> kernel() const { return {Rs, alpha_Rs, r_trunc}; }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const {
    t[0] = Rs;
    t[1] = alpha_Rs;
    t[2] = r_trunc;
  }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) {
    Rs = t[0];
    alpha_Rs = t[1];
    r_trunc = t[2];
  }
  void check_shape() const {
    check_positive(Rs, name, "Rs");
    check_positive(alpha_Rs, name, "alpha_Rs");
    check_positive(r_trunc, name, "r_trunc");
  }
};

/// Truncated spherical NFW profile (lenstronomy "TNFW"; Baltz, Marshall &
/// Oguri 2009, JCAP 01, 015, with the truncation factor to the first power).
///
/// 3D density rho = rho0 / (x (1 + x)^2) * tau^2/(tau^2 + x^2), x = r/Rs,
/// tau = r_trunc/Rs.  ks = rho0 Rs = alpha_Rs / (4 Rs (1 - ln 2)) exactly as for
/// NFW, ignoring the truncation (so |alpha(Rs)| < alpha_Rs).  With
/// S = sqrt(tau^2 + x^2), L = ln(x/(tau + S)), P = tau^2/(tau^2 + 1)^2:
///   kappa = 2 ks P [(tau^2+1) F + 2A - pi/S + (tau^2-1) L/(tau S)],
///   alpha = 4 ks Rs g_t/x,  g_t = P [(tau^2+2x^2-1) A + pi tau + (tau^2-1) ln tau + S(-pi + (tau^2-1) L/tau)],
///   psi   = 2 ks Rs^2 h_t  (BMO's potential with lenstronomy's constant: psi(0) = 0),
/// A, F as for NFW.  Total mass: alpha -> 4 ks Rs^2 P [(tau^2-1) ln tau + pi tau - tau^2 - 1]/r.
/// Angles in arcsec; psi in arcsec^2.
/// Parameters (pack order): Rs > 0, alpha_Rs > 0, r_trunc > 0, center_x, center_y.
/// Numerics: g_t regrouped as P[(tau^2-1)(g - ln(1 + d/2) + d L) + 2x^2 A - pi x^2/(tau+S)],
/// d = (S - tau)/tau, and h_t (with its tau-derivative) regrouped for x < 1, so
/// no cancellation at small x; NFW's series near x = 1.  At large x kappa loses
/// ~eps x^2 relative (a difference of O(1/x^2) terms, kappa ~ x^-4).  tau -> infinity
/// gives NFW (relative difference O(ln tau / tau^2)).  Below detail::cusp_radius the
/// functions are evaluated at that radius (logarithmic cusp).  lenstronomy clamps
/// x >= 0.001 instead, so it differs for r < 0.001 Rs.  Valid for tau^4 finite.
template <class Scalar>
using TNFW = RadialProfile<TNFWParams<Scalar>>;

}  // namespace lensing

#endif  // LENSING_PROFILES_TNFW_HPP
