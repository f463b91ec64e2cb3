#ifndef LENSING_PROFILES_SERSIC_KAPPA_HPP
#define LENSING_PROFILES_SERSIC_KAPPA_HPP

#include <lensing/core/special.hpp>
#include <lensing/profiles/detail/elliptical.hpp>
#include <lensing/profiles/gaussian_kappa.hpp>  // detail::kappa_quadrature_node

#include <type_traits>

namespace lensing {

namespace detail {

/// Elliptical Sersic convergence in its major-axis frame, with k_eff,
/// R = R_sersic, n = n_sersic and the framework's axis ratio q, converted to
/// this model's q_s = 1 - |e| = 2q/(1 + q):
///   xi^2 = x^2 + y^2/q_s^2,  rho = (xi/R)^(1/n),  kappa = k_eff exp(-b (rho - 1)),
///   b = max(1.9992 n - 0.3271, 1e-5)  (lenstronomy's linear b_n, math::sersic_b_lenstronomy).
/// Deflection and Hessian from the Keeton (2001) major-axis integrals
///   w(t) = (1 - t) + q_s^2 t,  xi(t)^2 = t (x^2 + y^2/w),
///   J_m = int_0^1 kappa(xi(t)) w^(-m-1/2) dt,  L_m = int_0^1 t kappa'(xi^2) w^(-m-1/2) dt,
///   alpha_x = q_s x J0,  alpha_y = q_s y J1,
///   f_xx = 2 q_s x^2 L0 + q_s J0,  f_xy = 2 q_s x y L1,  f_yy = 2 q_s y^2 L2 + q_s J1,
/// on the 101-node tanh-sinh rule (kappa_quadrature_node).  Potential:
/// psi = q_s int_0^1 m(xi(t))/(t sqrt(w)) dt with m(xi) = int_0^xi xi' kappa dxi',
/// the two integrals exchanged so that only kappa is needed:
///   psi = q_s int_0^xi_max xi' kappa(xi') B(xi') dxi',  xi_max = xi(1),
///   B = int_{t*}^1 dt/(t sqrt(w)) = -ln t* + 2 ln((1 + sqrt(w(t*)))/(1 + q_s)),
/// where xi(t*) = xi' (the small root of a quadratic in t*); B(xi_max) = 0.
/// Every integrand is written with x^2/A, x y/A, y^2/A (A = x^2 + y^2/w),
/// which are bounded, so the centre needs no special case.
/// Shape gradients go to grad[0] (k_eff), grad[1] (R_sersic), grad[2] (n_sersic).
template <class Scalar>
struct SersicKappaKernel {
  Scalar k_eff, R, n, q;  // q: the framework's (1 - |e|)/(1 + |e|)
  Scalar qs, dqs_dq, b, db_dn;

  KOKKOS_INLINE_FUNCTION SersicKappaKernel(Scalar k_eff_, Scalar R_, Scalar n_, Scalar q_)
      : k_eff(k_eff_),
        R(R_),
        n(n_),
        q(q_),
        qs(Scalar(2) * q_ / (Scalar(1) + q_)),
        dqs_dq(Scalar(2) / ((Scalar(1) + q_) * (Scalar(1) + q_))),
        b(math::sersic_b_lenstronomy(n_)),
        db_dn(math::sersic_b_lenstronomy_dn(n_)) {}

  /// Smallest xi/R used in logarithms (a normal number).
  KOKKOS_INLINE_FUNCTION static Scalar tiny() {
    return std::is_same<Scalar, float>::value ? Scalar(1e-37) : Scalar(1e-300);
  }

  /// Unit-k_eff kappa, rho, d kappa/d R and d kappa/d n at radius xi >= 0.
  KOKKOS_INLINE_FUNCTION void profile(Scalar xi, Scalar& kap, Scalar& rho, Scalar* dk_dR, Scalar* dk_dn) const {
    Scalar const lr = math::log(math::max(xi / R, tiny()));
    rho = math::exp(lr / n);
    kap = math::exp(-b * (rho - Scalar(1)));
    if (dk_dR) *dk_dR = kap * b * rho / (n * R);
    if (dk_dn) *dk_dn = kap * (-db_dn * (rho - Scalar(1)) + b * rho * lr / (n * n));
  }

  /// Radius beyond which kappa < e^{-60} k_eff: b (rho - 1) > 60.  The
  /// integrals stop there (at t = xi_cut^2/(x^2 + y^2) >= the t where
  /// xi(t) = xi_cut), which keeps the rule on the scale of the integrand far
  /// from the centre.
  KOKKOS_INLINE_FUNCTION Scalar xi_cut() const { return R * math::pow(Scalar(1) + Scalar(60) / b, n); }
  KOKKOS_INLINE_FUNCTION Scalar t_max(Scalar x, Scalar y) const {
    Scalar const r2 = x * x + y * y, c = xi_cut();
    return r2 > c * c ? (c / math::sqrt(r2)) * (c / math::sqrt(r2)) : Scalar(1);
  }

  /// Coordinates scaled by max(|x|, |y|) (for bounded ratios); m = 0 at the centre.
  KOKKOS_INLINE_FUNCTION static void scaled(Scalar x, Scalar y, Scalar& m, Scalar& xh, Scalar& yh) {
    m = math::max(math::fabs(x), math::fabs(y));
    if (m > Scalar(0)) {
      xh = x / m;
      yh = y / m;
    } else {
      xh = Scalar(1);  // any direction: every term carries x, y or rho(0) = 0
      yh = Scalar(0);
    }
  }

  /// Unit-k_eff integrals.  J: J0, J1; H: x^2 L0, x y L1, y^2 L2;
  /// dR, dn: J0, J1 with d kappa/dR, d kappa/dn; dq: dJ0/dq_s, dJ1/dq_s.
  KOKKOS_INLINE_FUNCTION void integrals(Scalar x, Scalar y, Scalar* J, Scalar* H, Scalar* dR, Scalar* dn,
                                        Scalar* dq) const {
    Scalar m, xh, yh;
    scaled(x, y, m, xh, yh);
    for (int i = 0; i < 3; ++i) {
      if (i < 2) {
        J[i] = Scalar(0);
        if (dR) dR[i] = Scalar(0);
        if (dn) dn[i] = Scalar(0);
        if (dq) dq[i] = Scalar(0);
      }
      if (H) H[i] = Scalar(0);
    }
    Scalar const q2 = qs * qs, tmax = t_max(x, y);
    for (int k = 0; k < kappa_quadrature_size; ++k) {
      Scalar t, tc, w;
      kappa_quadrature_node(k, tmax, t, tc, w);
      Scalar const wh = tc + q2 * t, iw = Scalar(1) / wh, rw = Scalar(1) / math::sqrt(wh);
      Scalar const Ah = xh * xh + yh * yh * iw;  // A / m^2, >= min(1, q_s^2)
      Scalar const xi = m * math::sqrt(t * Ah);
      Scalar kap, rho, kR, kn;
      profile(xi, kap, rho, dR ? &kR : nullptr, dn ? &kn : nullptr);
      Scalar const w0 = w * rw, w1 = w0 * iw;
      J[0] += w0 * kap;
      J[1] += w1 * kap;
      if (dR) {
        dR[0] += w0 * kR;
        dR[1] += w1 * kR;
      }
      if (dn) {
        dn[0] += w0 * kn;
        dn[1] += w1 * kn;
      }
      // t kappa'(xi^2) = -kappa b rho / (2 n A).
      Scalar const c = -kap * b * rho / (Scalar(2) * n * Ah);
      if (H) {
        H[0] += w0 * c * xh * xh;
        H[1] += w1 * c * xh * yh;
        H[2] += w1 * iw * c * yh * yh;
      }
      if (dq) {
        // kappa' d(xi^2)/dq_s = -2 q_s t^2 y^2 / w^2 kappa';  dw/dq_s = 2 q_s t.
        Scalar const kx = Scalar(-2) * qs * t * c * yh * yh * iw * iw;
        Scalar const dw = Scalar(2) * qs * t * iw;
        dq[0] += w0 * (kx - Scalar(0.5) * kap * dw);
        dq[1] += w1 * (kx - Scalar(1.5) * kap * dw);
      }
    }
  }

  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Scalar J[2];
    integrals(x, y, J, nullptr, nullptr, nullptr, nullptr);
    return {k_eff * qs * x * J[0], k_eff * qs * y * J[1]};
  }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    Scalar J[2], H[3];
    integrals(x, y, J, H, nullptr, nullptr, nullptr);
    Scalar const c = k_eff * qs;
    return {c * (Scalar(2) * H[0] + J[0]), c * Scalar(2) * H[1], c * (Scalar(2) * H[2] + J[1])};
  }

  /// Unit-k_eff potential and (optionally) its R, n and q_s derivatives.
  KOKKOS_INLINE_FUNCTION void unit_potential(Scalar x, Scalar y, Scalar& psi, Scalar* dpsi) const {
    psi = Scalar(0);
    if (dpsi) dpsi[0] = dpsi[1] = dpsi[2] = Scalar(0);
    Scalar const xi_max = math::sqrt(x * x + y * y / (qs * qs));
    if (!(xi_max > Scalar(0))) return;
    Scalar const xh = x / xi_max, yh = y / xi_max;  // xh^2 + yh^2/q_s^2 = 1
    Scalar const e2 = (Scalar(1) - qs) * (Scalar(1) + qs), q2 = qs * qs;
    Scalar const l1q = math::log(Scalar(1) + qs);
    // Integrate xi' over (0, xi_top], xi_top = min(xi_max, xi_cut): xi' = xi_max tau.
    Scalar const top = math::min(Scalar(1), xi_cut() / xi_max);
    Scalar P = 0, PR = 0, Pn = 0, Pq = 0;
    for (int k = 0; k < kappa_quadrature_size; ++k) {
      Scalar tau, tauc, w;
      kappa_quadrature_node(k, top, tau, tauc, w);
      Scalar kap, rho, kR, kn;
      profile(xi_max * tau, kap, rho, dpsi ? &kR : nullptr, dpsi ? &kn : nullptr);
      // t* = tau^2 r: the small root of -e^2 xh^2 t^2 + beta t - tau^2 = 0.
      Scalar const beta = xh * xh + yh * yh + e2 * tau * tau;
      Scalar const disc = math::max(beta * beta - Scalar(4) * e2 * xh * xh * tau * tau, Scalar(0));
      Scalar const r = Scalar(2) / (beta + math::sqrt(disc));
      Scalar const ts = math::min(tau * tau * r, Scalar(1));
      Scalar const ws = (Scalar(1) - ts) + q2 * ts, ss = math::sqrt(ws);
      Scalar const B = -Scalar(2) * math::log(tau) - math::log(r) + Scalar(2) * (math::log1p(ss) - l1q);
      Scalar const f = w * tau * B;
      P += f * kap;
      if (dpsi) {
        PR += f * kR;
        Pn += f * kn;
        // dB/dq_s at fixed xi': t* moves with q_s.
        Scalar const iws = Scalar(1) / ws;
        Scalar const Ft = xh * xh + yh * yh * iws + ts * yh * yh * e2 * iws * iws;
        Scalar const dlt = Scalar(2) * qs * ts * yh * yh * iws * iws / Ft;  // (dt*/dq_s)/t*
        Scalar const dws = Scalar(2) * qs * ts - e2 * dlt * ts;
        Scalar const dB = -dlt + dws / (ss * (Scalar(1) + ss)) - Scalar(2) / (Scalar(1) + qs);
        Pq += w * tau * kap * dB;
      }
    }
    Scalar const c = qs * xi_max * xi_max;
    psi = c * P;
    if (dpsi) {
      dpsi[0] = c * PR;
      dpsi[1] = c * Pn;
      dpsi[2] = psi / qs + c * Pq;
    }
  }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const {
    Scalar psi;
    unit_potential(x, y, psi, nullptr);
    return k_eff * psi;
  }

  KOKKOS_INLINE_FUNCTION Scalar xi(Scalar x, Scalar y) const { return math::sqrt(x * x + y * y / (qs * qs)); }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const {
    Scalar kap, rho;
    profile(xi(x, y), kap, rho, nullptr, nullptr);
    return k_eff * kap;
  }
  /// grad kappa = 2 kappa'(xi^2) (x, y/q_s^2), kappa' = -kappa b rho/(2 n xi^2);
  /// xi floored at cusp_radius (the slope diverges at the centre for n > 1).
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> convergence_gradient(Scalar x, Scalar y) const {
    Scalar const xf = math::max(xi(x, y), cusp_radius<Scalar>);
    Scalar kap, rho;
    profile(xf, kap, rho, nullptr, nullptr);
    Scalar const c = -k_eff * kap * b * rho / (n * xf * xf);
    return {c * x, c * y / (qs * qs)};
  }

  KOKKOS_INLINE_FUNCTION void deflection_grad(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad, Scalar& q_grad) const {
    Scalar J[2], dR[2], dn[2], dq[2];
    integrals(x, y, J, nullptr, dR, dn, dq);
    Scalar const gx = g.x * qs * x, gy = g.y * qs * y;
    grad[0] += gx * J[0] + gy * J[1];
    grad[1] += k_eff * (gx * dR[0] + gy * dR[1]);
    grad[2] += k_eff * (gx * dn[0] + gy * dn[1]);
    Scalar const dqs = k_eff * (g.x * x * (J[0] + qs * dq[0]) + g.y * y * (J[1] + qs * dq[1]));
    q_grad += dqs * dqs_dq;
  }
  KOKKOS_INLINE_FUNCTION void potential_grad(Scalar x, Scalar y, Scalar g, Scalar* grad, Scalar& q_grad) const {
    Scalar psi, d[3];
    unit_potential(x, y, psi, d);
    grad[0] += g * psi;
    grad[1] += g * k_eff * d[0];
    grad[2] += g * k_eff * d[1];
    q_grad += g * k_eff * d[2] * dqs_dq;
  }
  KOKKOS_INLINE_FUNCTION void convergence_grad(Scalar x, Scalar y, Scalar g, Scalar* grad, Scalar& q_grad) const {
    Scalar kap, rho, kR, kn;
    profile(xi(x, y), kap, rho, &kR, &kn);
    grad[0] += g * kap;
    grad[1] += g * k_eff * kR;
    grad[2] += g * k_eff * kn;
    // d kappa/d q_s = kappa'(xi^2) (-2 y^2/q_s^3) = kappa b rho y^2/(n xi^2 q_s^3), xi floored.
    Scalar const xf = math::max(xi(x, y), cusp_radius<Scalar>);
    Scalar kf, rf;
    profile(xf, kf, rf, nullptr, nullptr);
    q_grad += g * k_eff * kf * b * rf * (y / xf) * (y / xf) / (n * qs * qs * qs) * dqs_dq;
  }
};

}  // namespace detail

/// Parameters of the elliptical Sersic convergence (see SersicKappa).
template <class Scalar>
struct SersicKappaParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::SersicKappa";
  static constexpr int num_shape_params = 3;
  static constexpr char const* param_names[] = {"k_eff", "R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y"};
  Scalar k_eff;     ///< convergence at the (major-axis) half-light radius, finite
  Scalar R_sersic;  ///< semi-major-axis half-light radius [arcsec], > 0
  Scalar n_sersic;  ///< Sersic index, > 0 (accuracy verified for 0.5 <= n <= 6)
  Scalar e1;        ///< ellipticity, lenstronomy convention (but see SersicKappa for q)
  Scalar e2;
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;

  KOKKOS_INLINE_FUNCTION detail::SersicKappaKernel<Scalar> kernel(Scalar q) const {
    return {k_eff, R_sersic, n_sersic, q};
  }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const {
    t[0] = k_eff;
    t[1] = R_sersic;
    t[2] = n_sersic;
  }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) {
    k_eff = t[0];
    R_sersic = t[1];
    n_sersic = t[2];
  }
  void check_shape() const {
    check_finite(k_eff, name, "k_eff");
    check_positive(R_sersic, name, "R_sersic");
    check_positive(n_sersic, name, "n_sersic");
  }
};

/// Elliptical Sersic convergence (lenstronomy "SERSIC_ELLIPSE_KAPPA"; Sersic
/// 1968; deflection by the integrals of Schramm 1990 / Keeton 2001).
///
///   kappa = k_eff exp(-b_n ((xi/R_sersic)^(1/n) - 1)),  xi^2 = x'^2 + y'^2/q_s^2,
///   b_n = max(1.9992 n - 0.3271, 1e-5)  (lenstronomy's approximation),
/// x', y' along the major and minor axes (phi = atan2(e2, e1)/2); NOTE this
/// model's axis ratio is lenstronomy's q_s = 1 - |e| (not the framework's
/// q = (1 - |e|)/(1 + |e|)); R_sersic is the semi-major axis and the mass grows
/// with q_s.  |e| is capped at 0.9999 as elsewhere (q_s >= 1e-4; lenstronomy:
/// 1e-5).  Angles in arcsec, kappa dimensionless, psi in arcsec^2, psi(centre) = 0.
/// Deflection and Hessian: Keeton's 1-D integrals on a 101-node tanh-sinh rule
/// (~1e-15 for 0.5 <= n <= 6, q_s in [0.2, 1], r/R in [1e-3, 30]); potential:
/// the same integral with m(xi) exchanged into a kernel B (detail::SersicKappaKernel;
/// lenstronomy has no potential for this model).  Parameter gradients are
/// analytic (differentiated under the integral).  q_s = 1 and the centre need
/// no special case; the convergence slope (convergence VJP w.r.t. the centre
/// and angle) diverges at the centre for n > 1 and is evaluated at
/// xi = cusp_radius there.
/// Parameters (pack order): k_eff (finite), R_sersic > 0, n_sersic > 0, e1, e2
/// (|e| < 1), center_x, center_y.
template <class Scalar>
using SersicKappa = EllipticalProfile<SersicKappaParams<Scalar>>;

}  // namespace lensing

#endif  // LENSING_PROFILES_SERSIC_KAPPA_HPP
