#ifndef LENSING_PROFILES_GAUSSIAN_KAPPA_HPP
#define LENSING_PROFILES_GAUSSIAN_KAPPA_HPP

#include <lensing/core/complex.hpp>
#include <lensing/profiles/detail/elliptical.hpp>

namespace lensing {

namespace detail {

/// Faddeeva function w(z) = exp(-z^2) erfc(-i z) for Im z >= 0, by the
/// rational series of Weideman (1994, SIAM J. Numer. Anal. 31, 1497) with
/// N = 40 terms:
///   w(z) = 2 sum_n a_n Z^n / (L - i z)^2 + (1/sqrt(pi)) / (L - i z),
///   Z = (L + i z)/(L - i z),  L = sqrt(N / sqrt(2)).
/// |Z| <= 1 and Re(L - i z) >= L on the upper half plane: no branches, no
/// overflow.  Relative error <= 1.3e-14 for |z| up to 1e4 (vs scipy wofz).
/// The coefficients live in a local array (usable in device code).
template <class Scalar>
KOKKOS_INLINE_FUNCTION Complex<Scalar> faddeeva_upper(Complex<Scalar> z) {
  // Horner order (highest power first).
  Scalar const a[40] = {
      Scalar(-1.73569809987918647e-15), Scalar(1.20167491075928095e-15),  Scalar(1.15191702207494847e-14),
      Scalar(-5.23171636632440398e-15), Scalar(-7.07108802215940845e-14), Scalar(1.37782240476640457e-14),
      Scalar(4.53414489094346555e-13),  Scalar(1.20333095291956798e-13),  Scalar(-2.90771851041427015e-12),
      Scalar(-2.72777356258302445e-12), Scalar(1.77141856738671790e-11),  Scalar(3.47274209389070152e-11),
      Scalar(-9.05513886095832302e-11), Scalar(-3.56323504036026841e-10), Scalar(2.10859907312510581e-10),
      Scalar(3.01778042555156406e-09),  Scalar(3.24974658294507890e-09),  Scalar(-1.83156168342968342e-08),
      Scalar(-6.35177348301541098e-08), Scalar(1.41986423729534295e-08),  Scalar(5.91213695302905726e-07),
      Scalar(1.48356611331720142e-06),  Scalar(-1.06601389841627292e-06), Scalar(-1.80074471447234073e-05),
      Scalar(-5.59130926423487940e-05), Scalar(-3.93936314548380510e-05), Scalar(4.39807015986967025e-04),
      Scalar(2.70540563307372899e-03),  Scalar(1.00481862427835352e-02),  Scalar(2.92029164712418812e-02),
      Scalar(7.18236177907432827e-02),  Scalar(1.55042638024795038e-01),  Scalar(2.99894379961500590e-01),
      Scalar(5.26652898827708604e-01),  Scalar(8.47217457659381501e-01),  Scalar(1.25638156757651331e+00),
      Scalar(1.72538308481797786e+00),  Scalar(2.20151379487831189e+00),  Scalar(2.61605415276185971e+00),
      Scalar(2.89962450938970484e+00)};
  Scalar const L = Scalar(5.3182958969449885);
  // L - i z = (L + Im z) - i Re z,  L + i z = (L - Im z) + i Re z.
  Complex<Scalar> const d = reciprocal(Complex<Scalar>{L + z.im, -z.re});
  Complex<Scalar> const Z = Complex<Scalar>{L - z.im, z.re} * d;
  Complex<Scalar> p{a[0], Scalar(0)};
  for (int k = 1; k < 40; ++k) {
    p = p * Z;
    p.re += a[k];
  }
  Scalar const inv_sqrt_pi = Scalar(0.56418958354775628695);
  return Scalar(2) * (p * (d * d)) + inv_sqrt_pi * d;
}

/// Number of nodes of kappa_quadrature_node.
constexpr int kappa_quadrature_size = 101;

/// Node k (0 <= k < kappa_quadrature_size) of the tanh-sinh rule on (0, 1)
/// with s in [-4, 4], step h = 0.08:  a = (pi/2) sinh s,  t = 1/(1 + e^{-2a}),
/// 1 - t = 1/(1 + e^{2a}) (both without cancellation), weight
/// h pi cosh s t (1 - t).  Computed on the fly (no tables).  Smallest node
/// ~5e-38 (still a normal float); integrands with algebraic endpoint
/// singularities and all their structure at t << 1 are integrated to ~1e-15.
template <class Scalar>
KOKKOS_INLINE_FUNCTION void kappa_quadrature_node(int k, Scalar& t, Scalar& one_minus_t, Scalar& weight) {
  Scalar const h = Scalar(0.08);
  Scalar const s = Scalar(-4) + h * Scalar(k);
  Scalar const es = math::exp(s), ems = Scalar(1) / es;
  Scalar const a = Scalar(0.25) * math::pi<Scalar> * (es - ems);  // (pi/2) sinh s
  Scalar const e2a = math::exp(Scalar(2) * a);
  t = e2a / (Scalar(1) + e2a);
  one_minus_t = Scalar(1) / (Scalar(1) + e2a);
  weight = Scalar(0.5) * h * math::pi<Scalar> * (es + ems) * t * one_minus_t;
}

/// Node k of kappa_quadrature_node mapped onto (0, tmax], 0 < tmax <= 1
/// (t, 1 - t and the weight); tmax = 1 keeps 1 - t from the rule.
template <class Scalar>
KOKKOS_INLINE_FUNCTION void kappa_quadrature_node(int k, Scalar tmax, Scalar& t, Scalar& one_minus_t, Scalar& weight) {
  kappa_quadrature_node(k, t, one_minus_t, weight);
  if (tmax < Scalar(1)) {
    t *= tmax;
    one_minus_t = Scalar(1) - t;
    weight *= tmax;
  }
}

/// (1 - e^{-u})/u, accurate for small u >= 0.
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar one_minus_exp_over(Scalar u) {
  if (u < Scalar(1e-4)) return Scalar(1) - u * (Scalar(0.5) - u * (Scalar(1) / 6 - u / 24));
  return -math::expm1(-u) / u;
}

/// Elliptical Gaussian convergence in its major-axis frame (Shajib 2019,
/// MNRAS 488, 1387, "Unified lensing and kinematic analysis for any elliptical
/// mass profile", sec. 4.2), with amp, sigma and the axis ratio q:
///   kappa = amp/(2 pi sigma^2) exp(-(q x^2 + y^2/q)/(2 sigma^2)).
/// Deflection and Hessian in closed form through the Faddeeva function
/// (faddeeva_upper), for q < 0.99 and 0.1 sigma <~ xi <= 5 sigma; elsewhere
/// (see use_integral) from the product-average Keeton integrals with
/// kappa_quadrature_node; potential (and its q-derivative) always from the
/// 1-D Keeton integral.  Shape gradients go to grad[0] (amp), grad[1] (sigma).
template <class Scalar>
struct GaussianKappaKernel {
  Scalar amp, sigma, q;

  KOKKOS_INLINE_FUNCTION GaussianKappaKernel(Scalar amp_, Scalar sigma_, Scalar q_) : amp(amp_), sigma(sigma_), q(q_) {}

  /// kappa per unit amp at the centre.
  KOKKOS_INLINE_FUNCTION Scalar kappa0() const { return Scalar(1) / (Scalar(2) * math::pi<Scalar> * sigma * sigma); }

  /// The closed form is used for q < 0.99 and 0.01 sigma^2 <= q x^2 + y^2/q <= 25 sigma^2:
  /// nearer the centre w(z) - E w(z_q) cancels (relative error ~eps/|z|), further
  /// out the Hessian (1/(1 - q^2) times cancelling terms) and d alpha/dq
  /// (w'(z) = -2 z w + 2i/sqrt(pi) cancels like |z|^2) lose digits, and
  /// as q -> 1 everything is amplified by 1/(1 - q^2).  Measured closed form vs
  /// integrals inside that region: alpha <= 3e-12, H <= 2e-13 (q >= 0.3),
  /// d alpha/dq <= 5e-11.
  KOKKOS_INLINE_FUNCTION bool use_integral(Scalar x, Scalar y) const {
    Scalar const xi2 = q * x * x + y * y / q, s2 = sigma * sigma;
    return !(q < Scalar(0.99)) || xi2 < Scalar(0.01) * s2 || xi2 > Scalar(25) * s2;
  }

  /// Unit-amp deflection, Hessian and (optionally) d alpha/dq, closed form.
  KOKKOS_INLINE_FUNCTION void closed_form(Scalar x, Scalar y, Vec2<Scalar>& a, Hessian<Scalar>* h,
                                          Vec2<Scalar>* da_dq) const {
    using C = Complex<Scalar>;
    Scalar const sg = y < Scalar(0) ? Scalar(-1) : Scalar(1), Y = math::fabs(y);
    Scalar const omq2 = (Scalar(1) - q) * (Scalar(1) + q);
    Scalar const p = math::sqrt(q) / (sigma * math::sqrt(Scalar(2) * omq2));
    C const z{p * x, p * Y}, zq{p * q * x, p * Y / q};
    Scalar const E = math::exp(-(q * x * x + Y * Y / q) / (Scalar(2) * sigma * sigma));
    C const wz = faddeeva_upper(z), wzq = faddeeva_upper(zq);
    C const S = wz - E * wzq;
    Scalar const cc = math::sqrt(q) / (sigma * math::sqrt(Scalar(2) * math::pi<Scalar> * omq2));
    a = {cc * S.im, sg * cc * S.re};
    if (h) {
      Scalar const k0 = kappa0(), kap = k0 * E, f = q / (sigma * sigma);
      Scalar const gre = -((Scalar(1) + q * q) * kap - Scalar(2) * q * k0 + f * (x * a.x + y * a.y)) / omq2;
      Scalar const gim = -f * (x * a.y - y * a.x) / omq2;
      *h = {kap + gre, gim, kap - gre};
    }
    if (da_dq) {
      Scalar const lam = Scalar(0.5) / q + q / omq2;
      C const two_i_sqrt_pi{Scalar(0), Scalar(1.1283791670955125739)};
      C const dwz = Scalar(-2) * (z * wz) + two_i_sqrt_pi, dwzq = Scalar(-2) * (zq * wzq) + two_i_sqrt_pi;
      C const dz = lam * z, dzq = lam * zq + C{p * x, -p * Y / (q * q)};
      Scalar const dE = -E * (x * x - Y * Y / (q * q)) / (Scalar(2) * sigma * sigma);
      C const dS = dwz * dz - dE * wzq - E * (dwzq * dzq);
      C const T = (lam * cc) * S + cc * dS;
      *da_dq = {T.im, sg * T.re};
    }
  }

  /// Upper end of the t integrals: beyond it xi(t)^2/(2 sigma^2) > 50 (as
  /// xi^2 >= q t (x^2 + y^2)), kappa < e^{-50} kappa0 and the rest of the
  /// integral below e^{-50} of it.  Keeps the rule on the scale of the
  /// integrand far from the centre (else ~1e-4 errors at r ~ 1e3 sigma).
  KOKKOS_INLINE_FUNCTION Scalar t_max(Scalar x, Scalar y) const {
    Scalar const r2 = q * (x * x + y * y), c = Scalar(100) * sigma * sigma;
    return r2 > c ? c / r2 : Scalar(1);
  }

  /// Unit-amp deflection, Hessian and (optionally) d alpha/dq from the
  /// Keeton integrals (product-average radius xi^2 = q t (x^2 + y^2/w)).
  KOKKOS_INLINE_FUNCTION void integrals(Scalar x, Scalar y, Vec2<Scalar>& a, Hessian<Scalar>* h,
                                        Vec2<Scalar>* da_dq) const {
    Scalar J0 = 0, J1 = 0, L0 = 0, L1 = 0, L2 = 0, dJ0 = 0, dJ1 = 0;
    Scalar const k0 = kappa0(), is2 = Scalar(1) / (Scalar(2) * sigma * sigma);
    Scalar const tmax = t_max(x, y);
    for (int k = 0; k < kappa_quadrature_size; ++k) {
      Scalar t, tc, w;
      kappa_quadrature_node(k, tmax, t, tc, w);
      Scalar const wh = tc + q * q * t, iw = Scalar(1) / wh, rw = Scalar(1) / math::sqrt(wh);
      Scalar const A = x * x + y * y * iw;
      Scalar const kap = k0 * math::exp(-q * t * A * is2);
      Scalar const j0 = w * kap * rw, j1 = j0 * iw;
      J0 += j0;
      J1 += j1;
      if (h) {
        Scalar const l0 = -t * is2 * j0;  // t kappa'(xi^2) w^(-1/2)
        L0 += l0;
        L1 += l0 * iw;
        L2 += l0 * iw * iw;
      }
      if (da_dq) {
        Scalar const Aq = A - Scalar(2) * q * q * t * y * y * iw * iw;
        Scalar const dxi = -t * Aq * is2;  // kappa'/kappa d(xi^2)/dq
        Scalar const dw = Scalar(2) * q * t * iw;
        dJ0 += j0 * (dxi - Scalar(0.5) * dw);
        dJ1 += j1 * (dxi - Scalar(1.5) * dw);
      }
    }
    a = {q * x * J0, q * y * J1};
    if (h) {
      Scalar const q2 = Scalar(2) * q * q;
      *h = {q2 * x * x * L0 + q * J0, q2 * x * y * L1, q2 * y * y * L2 + q * J1};
    }
    if (da_dq) *da_dq = {x * J0 + q * x * dJ0, y * J1 + q * y * dJ1};
  }

  KOKKOS_INLINE_FUNCTION void unit(Scalar x, Scalar y, Vec2<Scalar>& a, Hessian<Scalar>* h, Vec2<Scalar>* da_dq) const {
    if (use_integral(x, y))
      integrals(x, y, a, h, da_dq);
    else
      closed_form(x, y, a, h, da_dq);
  }

  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Vec2<Scalar> a;
    unit(x, y, a, nullptr, nullptr);
    return {amp * a.x, amp * a.y};
  }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    Vec2<Scalar> a;
    Hessian<Scalar> h;
    unit(x, y, a, &h, nullptr);
    return {amp * h.xx, amp * h.xy, amp * h.yy};
  }

  /// Unit-amp potential and its q-derivative:
  ///   psi = kappa0 sigma^2 int_0^1 (1 - e^{-u}) / (t sqrt(w)) dt,  u = q t (x^2 + y^2/w)/(2 sigma^2);
  /// beyond a = t_max (e^{-u} < e^{-50}) in closed form:
  ///   int_a^1 dt/(t sqrt(w)) = -ln a + 2 ln((1 + sqrt(w(a)))/(1 + q)),
  ///   d/dq = -int_a^1 q w^(-3/2) dt = -2 (1 - a)/(sqrt(w(a)) (sqrt(w(a)) + q)).
  KOKKOS_INLINE_FUNCTION void unit_potential(Scalar x, Scalar y, Scalar& psi, Scalar* dpsi_dq) const {
    Scalar P = 0, D = 0;
    Scalar const is2 = Scalar(1) / (Scalar(2) * sigma * sigma);
    Scalar const a = t_max(x, y);
    for (int k = 0; k < kappa_quadrature_size; ++k) {
      Scalar t, tc, w;
      kappa_quadrature_node(k, a, t, tc, w);
      Scalar const wh = tc + q * q * t, iw = Scalar(1) / wh, rw = Scalar(1) / math::sqrt(wh);
      Scalar const A = x * x + y * y * iw, u = q * t * A * is2;
      // (1 - e^{-u})/t = q A/(2 sigma^2) (1 - e^{-u})/u: no 1/t.
      P += w * q * A * is2 * one_minus_exp_over(u) * rw;
      if (dpsi_dq) {
        Scalar const Aq = A - Scalar(2) * q * q * t * y * y * iw * iw;
        D += w * (math::exp(-u) * Aq * is2 * rw + q * math::expm1(-u) * rw * iw);
      }
    }
    if (a < Scalar(1)) {
      Scalar const sa = math::sqrt((Scalar(1) - a) + q * q * a);
      P += -math::log(a) + Scalar(2) * (math::log1p(sa) - math::log1p(q));
      D -= Scalar(2) * (Scalar(1) - a) / (sa * (sa + q));
    }
    Scalar const c = kappa0() * sigma * sigma;
    psi = c * P;
    if (dpsi_dq) *dpsi_dq = c * D;
  }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const {
    Scalar psi;
    unit_potential(x, y, psi, nullptr);
    return amp * psi;
  }

  KOKKOS_INLINE_FUNCTION Scalar unit_convergence(Scalar x, Scalar y) const {
    return kappa0() * math::exp(-(q * x * x + y * y / q) / (Scalar(2) * sigma * sigma));
  }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const { return amp * unit_convergence(x, y); }
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> convergence_gradient(Scalar x, Scalar y) const {
    Scalar const c = -amp * unit_convergence(x, y) / (sigma * sigma);
    return {c * q * x, c * y / q};
  }

  KOKKOS_INLINE_FUNCTION void deflection_grad(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad, Scalar& q_grad) const {
    Vec2<Scalar> a, dq;
    Hessian<Scalar> h;
    unit(x, y, a, &h, &dq);
    grad[0] += dot(g, a);
    // alpha = (amp/sigma) alpha_hat(x/sigma): d alpha/d sigma = -(alpha + H d)/sigma.
    Vec2<Scalar> const hd = h.apply(Vec2<Scalar>{x, y});
    grad[1] -= amp * (g.x * (a.x + hd.x) + g.y * (a.y + hd.y)) / sigma;
    q_grad += amp * dot(g, dq);
  }
  KOKKOS_INLINE_FUNCTION void potential_grad(Scalar x, Scalar y, Scalar g, Scalar* grad, Scalar& q_grad) const {
    Scalar psi, dpsi;
    unit_potential(x, y, psi, &dpsi);
    Vec2<Scalar> a;
    unit(x, y, a, nullptr, nullptr);
    grad[0] += g * psi;
    grad[1] -= g * amp * (a.x * x + a.y * y) / sigma;  // psi = amp Psi(d/sigma)
    q_grad += g * amp * dpsi;
  }
  KOKKOS_INLINE_FUNCTION void convergence_grad(Scalar x, Scalar y, Scalar g, Scalar* grad, Scalar& q_grad) const {
    Scalar const k = unit_convergence(x, y), s2 = sigma * sigma;
    Scalar const xi2 = q * x * x + y * y / q;
    grad[0] += g * k;
    grad[1] += g * amp * k * (xi2 / s2 - Scalar(2)) / sigma;
    q_grad -= g * amp * k * (x * x - y * y / (q * q)) / (Scalar(2) * s2);
  }
};

}  // namespace detail

/// Parameters of the elliptical Gaussian convergence (see GaussianKappa).
template <class Scalar>
struct GaussianKappaParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::GaussianKappa";
  static constexpr int num_shape_params = 2;
  static constexpr char const* param_names[] = {"amp", "sigma", "e1", "e2", "center_x", "center_y"};
  Scalar amp;    ///< total mass: integral of kappa over the plane [arcsec^2], finite
  Scalar sigma;  ///< Gaussian width (of the product-average radius) [arcsec], > 0
  Scalar e1;     ///< ellipticity, lenstronomy convention
  Scalar e2;
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;

  KOKKOS_INLINE_FUNCTION detail::GaussianKappaKernel<Scalar> kernel(Scalar q) const { return {amp, sigma, q}; }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const {
    t[0] = amp;
    t[1] = sigma;
  }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) {
    amp = t[0];
    sigma = t[1];
  }
  void check_shape() const {
    check_finite(amp, name, "amp");
    check_positive(sigma, name, "sigma");
  }
};

/// Elliptical Gaussian convergence (lenstronomy "GAUSSIAN_ELLIPSE_KAPPA";
/// Shajib 2019, MNRAS 488, 1387, sec. 4.2).
///
///   kappa = amp/(2 pi sigma^2) exp(-(q x'^2 + y'^2/q)/(2 sigma^2)),
/// x', y' along the major and minor axes, q = minor/major from (e1, e2)
/// (lenstronomy's map, |e| capped at 0.9999); angles and sigma in arcsec,
/// amp = total mass in arcsec^2 (independent of q), psi in arcsec^2 with
/// psi(centre) = 0.
/// Deflection and Hessian in closed form (Shajib's eqs. with the Faddeeva
/// function w, Weideman's N = 40 rational approximation, ~1e-14):
///   alpha'_x + i alpha'_y = C conj(Im S - i Re S) (for y' >= 0; mirrored),
///   S = w(z) - e^{-xi^2/(2 sigma^2)} w(z_q), z = p(x' + i y'), z_q = p(q x' + i y'/q),
///   p = sqrt(q)/(sigma sqrt(2(1 - q^2))), C = amp sqrt(q)/(sigma sqrt(2 pi (1 - q^2))),
/// for q < 0.99 and 0.1 sigma <= xi <= 5 sigma (xi^2 = q x'^2 + y'^2/q); for
/// q >= 0.99 (including q = 1, no 1/(1 - q^2)), nearer the centre and further
/// out the same quantities come from the Keeton (2001) integrals on a
/// 101-node tanh-sinh rule truncated where kappa < e^{-50} kappa(0) (~1e-14
/// for q >= 0.3; ~1e-10 at q = 0.05).  The
/// potential is the 1-D Keeton integral of m(xi) = amp/(2 pi) (1 - e^{-xi^2/2sigma^2}).
/// lenstronomy switches to the round profile at q > 1 - 1e-5 (we do not:
/// differences ~(1 - q) there).  Parameter gradients are analytic.
/// Parameters (pack order): amp (finite), sigma > 0, e1, e2 (|e| < 1),
/// center_x, center_y.  Finite everywhere, the centre included.
template <class Scalar>
using GaussianKappa = EllipticalProfile<GaussianKappaParams<Scalar>>;

}  // namespace lensing

#endif  // LENSING_PROFILES_GAUSSIAN_KAPPA_HPP
