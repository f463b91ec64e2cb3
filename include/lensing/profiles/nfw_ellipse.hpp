#ifndef LENSING_PROFILES_NFW_ELLIPSE_HPP
#define LENSING_PROFILES_NFW_ELLIPSE_HPP

/// \file
/// Elliptical NFW profiles with the convergence a function of the
/// product-average radius xi = sqrt(q x'^2 + y'^2/q) / Rs (x' along the major
/// axis): NFWEllipseCSE (lenstronomy's NFW_ELLIPSE_CSE, a sum of cored steep
/// ellipsoids) and NFWEllipse (the exact profile by a fixed 1-D quadrature).

#include <lensing/profiles/detail/elliptical.hpp>

#include <type_traits>

namespace lensing {

namespace detail {
namespace nfw_ellipse {

/// 1 - ln 2: alpha_Rs = (M / Rs) (1 - ln 2) with M = 4 rho0 Rs^3.
constexpr double one_minus_ln2 = 0.30685281944005469058;

/// Oguri (2021), Table 1: the 44 (A_i, s_i) of the cored-steep-ellipsoid
/// expansion of the NFW convergence, in the published order.  Returned by
/// value so that device code gets a local copy (no static storage).
struct CSETable {
  double s[44];
  double A[44];
};
KOKKOS_INLINE_FUNCTION constexpr CSETable cse_table() {
  return {
      {1.082411e-06, 8.786566e-06, 3.292868e-06, 1.860019e-05, 3.274231e-05, 6.232485e-05, 9.256333e-05, 1.546762e-04,
       2.097321e-04, 3.391140e-04, 5.178790e-04, 8.636736e-04, 1.405152e-03, 2.193855e-03, 3.179572e-03, 4.970987e-03,
       7.631970e-03, 1.119413e-02, 1.827267e-02, 2.945251e-02, 4.562723e-02, 6.782509e-02, 1.596987e-01, 1.127751e-01,
       2.169469e-01, 3.423835e-01, 5.194527e-01, 8.623185e-01, 1.382737e+00, 2.034929e+00, 3.402979e+00, 5.594276e+00,
       8.052345e+00, 1.349045e+01, 2.603825e+01, 4.736823e+01, 6.559320e+01, 1.087932e+02, 1.477673e+02, 2.495341e+02,
       4.305999e+02, 7.760206e+02, 2.143057e+03, 1.935749e+03},
      {1.648988e-18, 6.274458e-16, 3.646620e-17, 3.459206e-15, 2.457389e-14, 1.059319e-13, 4.211597e-13, 1.142832e-12,
       4.391215e-12, 1.556500e-11, 6.951271e-11, 3.147466e-10, 1.379109e-09, 3.829778e-09, 1.384858e-08, 5.370951e-08,
       1.804384e-07, 5.788608e-07, 3.205256e-06, 1.102422e-05, 4.093971e-05, 1.282206e-04, 4.575541e-04, 7.995270e-04,
       5.013701e-03, 1.403508e-02, 5.230727e-02, 1.898907e-01, 3.643448e-01, 7.203734e-01, 1.717667e+00, 2.217566e+00,
       3.187447e+00, 8.194898e+00, 1.765210e+01, 1.974319e+01, 2.783688e+01, 4.482311e+01, 5.598897e+01, 1.426485e+02,
       2.279833e+02, 5.401335e+02, 9.743682e+02, 1.775124e+03}};
}

/// Tanh-sinh rule on (0, 1), 101 nodes, t_k = -4 + 0.08 k:
///   u_k = 1/(1 + exp(-pi sinh t_k)),  w_k = 0.08 pi cosh t_k u_k (1 - u_k).
/// The rule is symmetric (u_{100-k} = 1 - u_k); stored for k = 0..50: small[k]
/// = u_k (<= 1/2, so 1 - u is exact at the other end) and w[k].  Values from
/// mpmath at 50 digits.
struct TanhSinhTable {
  double small[51];
  double w[51];
};
KOKKOS_INLINE_FUNCTION constexpr TanhSinhTable tanh_sinh_table() {
  return {{5.8382444875493047e-38, 4.2751151911388766e-35, 1.8859670126961111e-32,
           5.2116527638927896e-30, 9.3520220335767307e-28, 1.1265671588712599e-25,
           9.394090130314187e-24,  5.5782761842708235e-22, 2.4213097009911545e-20,
           7.8703060965057037e-19, 1.9588692246858911e-17, 3.8109307367169727e-16,
           5.9063968720920257e-15, 7.4216775648653763e-14, 7.6843639860629794e-13,
           6.6548811667181408e-12, 4.8876783868355057e-11, 3.0834718805210285e-10,
           1.6907319036108084e-9,  8.1459029481932319e-9,  3.4834220858008989e-8,
           1.3344930503339798e-7,  4.6196065260722961e-7,  1.4565493724915952e-6,
           4.2137622474238015e-6,  1.1261403769203568e-5,  2.7978482928233753e-5,
           6.4996681632570276e-5,  0.00014194799117512423, 0.00029288427850923228,
           0.00057356427155685093, 0.0010705809139977148,  0.0019120064909472511,
           0.0032788956535066181,  0.0054166384878564585,  0.0086448189124028841,
           0.013363921293892915,   0.02005695693585547,    0.029283890940362874,
           0.041666718053521459,   0.057863290156139547,   0.078528698804719434,
           0.10426431625330331,    0.1355565686856696,     0.17271005077894326,
           0.21578232404930251,    0.26453001762823986,    0.31837681832729462,
           0.37641279189888238,    0.43743081137299983,    0.5},
          {4.0069667136265012e-37, 2.7087129798030247e-34, 1.1031519921553696e-31, 2.8142843115797415e-29,
           4.6622471099845993e-27, 5.1850291550746027e-25, 3.9917330820057223e-23, 2.1884124777714154e-21,
           8.7702776455706204e-20, 2.6320968451124959e-18, 6.0489313493587141e-17, 1.0866400061226757e-15,
           1.5551787797668674e-14, 1.8046301865385074e-13, 1.7256481833529153e-12, 1.3803134441971355e-11,
           9.3642718352314771e-11, 5.4574942997567582e-10, 2.7648152374048456e-9,  1.2309331085025478e-8,
           4.8649929284488287e-8,  1.7229135287821551e-7,  5.5147857544077994e-7,  1.6082313195533601e-6,
           4.3046367425438179e-6,  1.0648020550108676e-5,  2.4496437560584878e-5,  5.2722135948525255e-5,
           0.00010673431004468037, 0.00020427851175857571, 0.00037133464516967283, 0.00064384989864019378,
           0.0010689846013390578,  0.0017055238046411016,  0.0026231094534955903,  0.0038999665760074112,
           0.0056188277235780367,  0.0078608151184135158,  0.010697151797726519,   0.014178788000559047,
           0.018324392140572697,   0.023107685184797383,   0.028445753147295817,   0.034190627613256763,
           0.040126854553839115,   0.045977687211019318,   0.051421673753493223,   0.056119665039016354,
           0.059749853274540589,   0.062045949493654069,   0.062831853071795865}};
}

/// Spherical NFW functions of X = r/Rs (given X^2), in units where
/// kappa = (M/Rs^2) Khat:
///   F(X) = ln((1 + a)/X)/a, a = sqrt(1 - X^2) (X < 1);  atan(b)/b, b = sqrt(X^2 - 1) (X > 1);
///   Khat = (1 - F)/(2 (X^2 - 1)),  dKhat = dKhat/d(X^2) = (3 X^2 F - 2 X^2 - 1)/(4 X^2 (X^2 - 1)^2),
///   h = 2 int_0^X X' Khat dX' = ln(X/2) + F   (alpha_sph = (M/Rs) h/X).
/// Near X = 1 (|X^2 - 1| < 0.05 in double, 0.2 in float) the exact series
/// Khat = 1/2 sum_j (-t)^j/(2j + 3), t = X^2 - 1, 16 terms (error < 1e-20 /
/// 1e-11); for X < 0.9, h without the ln(X/2) + F cancellation:
/// h = [log1p(-X^2/(2(1 + a))) + X^2/(1 + a) ln(2/X)]/a.  X2 must be > 0.
template <class Scalar>
struct NFWRadial {
  Scalar K, dK, h;
};
template <class Scalar>
KOKKOS_INLINE_FUNCTION NFWRadial<Scalar> nfw_radial(Scalar X2, bool want_h) {
  Scalar const t = X2 - Scalar(1);
  Scalar const near = std::is_same<Scalar, float>::value ? Scalar(0.2) : Scalar(0.05);
  Scalar const X = math::sqrt(X2);
  NFWRadial<Scalar> r{Scalar(0), Scalar(0), Scalar(0)};
  Scalar F;
  if (math::fabs(t) < near) {
    // Horner from j = 15 down: K = 1/2 sum (-t)^j/(2j+3); dK = dK/dt.
    Scalar K = Scalar(0), dK = Scalar(0);
    for (int j = 15; j >= 0; --j) {
      Scalar const c = Scalar(j % 2 == 0 ? 0.5 : -0.5) / Scalar(2 * j + 3);
      dK = dK * t + K;
      K = K * t + c;
    }
    r.K = K;
    r.dK = dK;
    F = Scalar(1) - Scalar(2) * t * K;
  } else {
    if (t < Scalar(0)) {
      Scalar const a = math::sqrt(-t);
      F = math::log((Scalar(1) + a) / X) / a;
    } else {
      Scalar const b = math::sqrt(t);
      F = math::atan(b) / b;
    }
    Scalar const half_inv_t = Scalar(0.5) / t;
    r.K = (Scalar(1) - F) * half_inv_t;
    r.dK = (Scalar(3) * F - Scalar(2) - Scalar(1) / X2) * half_inv_t * half_inv_t;
  }
  if (want_h) {
    if (X2 < Scalar(0.81)) {
      Scalar const a = math::sqrt(-t), ia = Scalar(1) / (Scalar(1) + a);
      r.h = (math::log1p(Scalar(-0.5) * X2 * ia) + X2 * ia * math::log(Scalar(2) / X)) / a;
    } else {
      r.h = math::log(Scalar(0.5) * X) + F;
    }
  }
  return r;
}

/// Smallest xi^2 = (r/Rs)^2 the exact kernel evaluates (the cusp: kappa and
/// the Hessian diverge logarithmically at the centre).
template <class Scalar>
KOKKOS_INLINE_FUNCTION constexpr Scalar min_xi2() {
  return cusp_radius<Scalar> * cusp_radius<Scalar>;
}

/// NFW_ELLIPSE_CSE in the major-axis frame.  With u = x/Rs, v = y/Rs and the
/// 44 terms of cse_table, each term (Oguri 2021 CSE in product-average form)
///   kappa_i = A_i / (2 (s_i^2 + q u^2 + v^2/q)^{3/2}),
///   P = sqrt(q^2 s^2 + q^3 u^2 + q v^2),  Phi = (P + s)^2 + q (1 - q^2) u^2,
///   psi_i = A/(2s) log1p(D/((1+q)^2 s^2)), D = Phi - (1+q)^2 s^2 without cancellation,
///   g_i = A q/(s Phi) (u (P + q^2 s)/P, v (P + s)/P),
/// and psi = M sum psi_i, alpha = (M/Rs) sum g_i, H = (M/Rs^2) sum H_i, M = alpha_Rs Rs/(1 - ln 2).
/// Shape gradients: grad[0] = Rs, grad[1] = alpha_Rs.
template <class Scalar>
struct NFWCSEKernel {
  using scalar_type = Scalar;
  Scalar Rs, alpha_Rs, q;

  // alpha_Rs / (1 - ln 2) = M / Rs: the deflection unit.
  KOKKOS_INLINE_FUNCTION Scalar unit() const { return alpha_Rs / Scalar(one_minus_ln2); }

  // Per-term P and Phi.
  KOKKOS_INLINE_FUNCTION static void p_phi(Scalar s, Scalar q, Scalar u2, Scalar v2, Scalar& P, Scalar& Phi) {
    P = math::sqrt(q * (q * s * s + q * q * u2 + v2));
    Phi = (P + s) * (P + s) + q * (Scalar(1) - q * q) * u2;
  }

  KOKKOS_INLINE_FUNCTION Vec2<Scalar> unit_deflection(Scalar u, Scalar v) const {
    auto const tab = cse_table();
    Scalar const u2 = u * u, v2 = v * v;
    Scalar gx = 0, gy = 0;
    for (int i = 0; i < 44; ++i) {
      Scalar const s = Scalar(tab.s[i]), A = Scalar(tab.A[i]);
      Scalar P, Phi;
      p_phi(s, q, u2, v2, P, Phi);
      Scalar const c = A * q / (s * Phi * P);
      gx += c * (P + q * q * s);
      gy += c * (P + s);
    }
    return {gx * u, gy * v};
  }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> unit_hessian(Scalar u, Scalar v) const {
    auto const tab = cse_table();
    Scalar const u2 = u * u, v2 = v * v, q2 = q * q;
    Hessian<Scalar> h{0, 0, 0};
    for (int i = 0; i < 44; ++i) {
      Scalar const s = Scalar(tab.s[i]), A = Scalar(tab.A[i]);
      Scalar P, Phi;
      p_phi(s, q, u2, v2, P, Phi);
      Scalar const iP = Scalar(1) / P, pre = A * q / (s * Phi);
      Scalar const cs = q2 * s * iP * iP * iP;  // q^2 s / P^3, bounded by 1/(q s^2)
      Scalar const ax = u * (P + q2 * s) * iP, ay = v * (P + s) * iP;
      h.xx += pre * (Scalar(1) + cs * (q2 * s * s + q * v2) - Scalar(2) * q * ax * ax / Phi);
      h.yy += pre * (Scalar(1) + cs * (s * s + q * u2) - Scalar(2) * q * ay * ay / Phi);
      h.xy -= pre * q * (u * v * cs + Scalar(2) * ax * ay / Phi);
    }
    return h;
  }

  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Scalar const iR = Scalar(1) / Rs;
    return unit() * unit_deflection(x * iR, y * iR);
  }
  KOKKOS_INLINE_FUNCTION Scalar unit_potential(Scalar u, Scalar v) const {
    auto const tab = cse_table();
    Scalar const u2 = u * u, v2 = v * v, q2 = q * q;
    Scalar const ia = Scalar(1) / ((Scalar(1) + q) * (Scalar(1) + q));
    Scalar psi = 0;
    for (int i = 0; i < 44; ++i) {
      Scalar const s = Scalar(tab.s[i]), A = Scalar(tab.A[i]);
      Scalar P, Phi;
      p_phi(s, q, u2, v2, P, Phi);
      Scalar const D = q * (q2 * u2 + v2) * (P + q * s + Scalar(2) * s) / (P + q * s) + q * (Scalar(1) - q2) * u2;
      psi += A / (Scalar(2) * s) * math::log1p(D * ia / (s * s));
    }
    return psi;
  }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const {
    Scalar const iR = Scalar(1) / Rs;
    return unit() * Rs * unit_potential(x * iR, y * iR);
  }
  // sum A/2 S^{-3/2} and sum A/2 S^{-5/2}, S = s^2 + q u^2 + v^2/q.
  KOKKOS_INLINE_FUNCTION void kappa_sums(Scalar u, Scalar v, Scalar& k3, Scalar& k5) const {
    auto const tab = cse_table();
    Scalar const xi2 = q * u * u + v * v / q;
    k3 = k5 = Scalar(0);
    for (int i = 0; i < 44; ++i) {
      Scalar const s = Scalar(tab.s[i]), A = Scalar(tab.A[i]);
      Scalar const iS = Scalar(1) / (s * s + xi2), r = math::sqrt(iS);
      Scalar const k = Scalar(0.5) * A * r * r * r;
      k3 += k;
      k5 += k * iS;
    }
  }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const {
    auto const tab = cse_table();
    Scalar const iR = Scalar(1) / Rs, u = x * iR, v = y * iR;
    Scalar const xi2 = q * u * u + v * v / q;
    Scalar k = 0;
    for (int i = 0; i < 44; ++i) {
      Scalar const s = Scalar(tab.s[i]), A = Scalar(tab.A[i]);
      Scalar const r = math::sqrt(Scalar(1) / (s * s + xi2));
      k += Scalar(0.5) * A * r * r * r;
    }
    return unit() * iR * k;
  }
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> convergence_gradient(Scalar x, Scalar y) const {
    Scalar const iR = Scalar(1) / Rs, u = x * iR, v = y * iR;
    Scalar k3, k5;
    kappa_sums(u, v, k3, k5);
    Scalar const c = Scalar(-3) * unit() * iR * iR * k5;
    return {c * q * u, c * v / q};
  }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    Scalar const iR = Scalar(1) / Rs, c = unit() * iR;
    Hessian<Scalar> const h = unit_hessian(x * iR, y * iR);
    return {c * h.xx, c * h.xy, c * h.yy};
  }

  /// deflection_grad plus alpha and the Hessian at the same point: the node
  /// sums it accumulates already hold both (one pass instead of three in
  /// EllipticalProfile::deflection_vjp).
  KOKKOS_INLINE_FUNCTION void deflection_grad_with_values(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad,
                                                          Scalar& q_grad, Vec2<Scalar>& alpha,
                                                          Hessian<Scalar>& hess) const {
    auto const tab = cse_table();
    Scalar const iR = Scalar(1) / Rs, u = x * iR, v = y * iR, u2 = u * u, v2 = v * v, q2 = q * q;
    // sum g_i, sum dg_i/dq, sum H_i (dimensionless).
    Scalar gx = 0, gy = 0, gxq = 0, gyq = 0, hxx = 0, hxy = 0, hyy = 0;
    for (int i = 0; i < 44; ++i) {
      Scalar const s = Scalar(tab.s[i]), A = Scalar(tab.A[i]);
      Scalar P, Phi;
      p_phi(s, q, u2, v2, P, Phi);
      Scalar const iP = Scalar(1) / P, iPhi = Scalar(1) / Phi, pre = A * q / s * iPhi;
      Scalar const ax = u * (P + q2 * s) * iP, ay = v * (P + s) * iP;  // g = pre (ax, ay)
      Scalar const cs = q2 * s * iP * iP * iP;
      hxx += pre * (Scalar(1) + cs * (q2 * s * s + q * v2) - Scalar(2) * q * ax * ax * iPhi);
      hyy += pre * (Scalar(1) + cs * (s * s + q * u2) - Scalar(2) * q * ay * ay * iPhi);
      hxy -= pre * q * (u * v * cs + Scalar(2) * ax * ay * iPhi);
      Scalar const Pq = Scalar(0.5) * (Scalar(2) * q * s * s + Scalar(3) * q2 * u2 + v2) * iP;
      Scalar const Phiq = Scalar(2) * (P + s) * Pq + (Scalar(1) - Scalar(3) * q2) * u2;
      Scalar const common = Scalar(1) / q - Pq * iP - Phiq * iPhi;
      Scalar const gxi = pre * ax, gyi = pre * ay;
      gx += gxi;
      gy += gyi;
      gxq += gxi * (common + (Pq + Scalar(2) * q * s) / (P + q2 * s));
      gyq += gyi * (common + Pq / (P + s));
    }
    Scalar const U = unit();
    // d alpha/dRs = -(H p)/Rs, H = (U/Rs) h.
    Scalar const hpx = hxx * u + hxy * v, hpy = hxy * u + hyy * v;
    grad[0] -= U * iR * (g.x * hpx + g.y * hpy);
    grad[1] += (g.x * gx + g.y * gy) / Scalar(one_minus_ln2);
    q_grad += U * (g.x * gxq + g.y * gyq);
    alpha = {U * gx, U * gy};
    hess = {U * iR * hxx, U * iR * hxy, U * iR * hyy};
  }
  KOKKOS_INLINE_FUNCTION void deflection_grad(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad, Scalar& q_grad) const {
    Vec2<Scalar> alpha;
    Hessian<Scalar> hess;
    deflection_grad_with_values(x, y, g, grad, q_grad, alpha, hess);
  }
  KOKKOS_INLINE_FUNCTION void potential_grad(Scalar x, Scalar y, Scalar g, Scalar* grad, Scalar& q_grad) const {
    auto const tab = cse_table();
    Scalar const iR = Scalar(1) / Rs, u = x * iR, v = y * iR, u2 = u * u, v2 = v * v, q2 = q * q;
    Scalar const ia = Scalar(1) / ((Scalar(1) + q) * (Scalar(1) + q)), dq = Scalar(2) / (Scalar(1) + q);
    Scalar psi = 0, psiq = 0, gu = 0;  // gu = g . u (dimensionless)
    for (int i = 0; i < 44; ++i) {
      Scalar const s = Scalar(tab.s[i]), A = Scalar(tab.A[i]);
      Scalar P, Phi;
      p_phi(s, q, u2, v2, P, Phi);
      Scalar const iP = Scalar(1) / P, iPhi = Scalar(1) / Phi, h = A / (Scalar(2) * s);
      Scalar const D = q * (q2 * u2 + v2) * (P + q * s + Scalar(2) * s) / (P + q * s) + q * (Scalar(1) - q2) * u2;
      psi += h * math::log1p(D * ia / (s * s));
      Scalar const Pq = Scalar(0.5) * (Scalar(2) * q * s * s + Scalar(3) * q2 * u2 + v2) * iP;
      Scalar const Phiq = Scalar(2) * (P + s) * Pq + (Scalar(1) - Scalar(3) * q2) * u2;
      psiq += h * (Phiq * iPhi - dq);
      gu += Scalar(2) * h * q * iPhi * iP * (u2 * (P + q2 * s) + v2 * (P + s));
    }
    Scalar const U = unit();
    // psi = U Rs Psi; dpsi/dRs = (psi - alpha . p)/Rs = U (Psi - g . u).
    grad[0] += g * U * (psi - gu);
    grad[1] += g * Rs * psi / Scalar(one_minus_ln2);
    q_grad += g * U * Rs * psiq;
  }
  KOKKOS_INLINE_FUNCTION void convergence_grad(Scalar x, Scalar y, Scalar g, Scalar* grad, Scalar& q_grad) const {
    Scalar const iR = Scalar(1) / Rs, u = x * iR, v = y * iR;
    Scalar k3, k5;
    kappa_sums(u, v, k3, k5);
    Scalar const U = unit(), xi2 = q * u * u + v * v / q;
    // kappa = (U/Rs) k3;  dkappa/dRs = -(kappa + grad kappa . p)/Rs = -(U/Rs^2)(k3 - 3 xi^2 k5).
    grad[0] -= g * U * iR * iR * (k3 - Scalar(3) * xi2 * k5);
    grad[1] += g * iR * k3 / Scalar(one_minus_ln2);
    q_grad += g * U * iR * Scalar(-1.5) * (u * u - v * v / (q * q)) * k5;
  }
};

/// Exact elliptical NFW in the major-axis frame (Schramm 1990 / Keeton 2001
/// integrals in product-average form), u = x/Rs, v = y/Rs, w(t) = 1 - (1 - q^2) t,
/// xi(t)^2 = q t (u^2 + v^2/w):
///   J_n = int_0^1 Khat(xi) w^{-(n+1/2)} dt,  L_n = int_0^1 t dKhat(xi^2) w^{-(n+1/2)} dt,
///   alpha = (M/Rs) q (u J0, v J1),  H = (M/Rs^2)(2q^2u^2L0 + qJ0, 2q^2uvL1, 2q^2v^2L2 + qJ1),
///   psi = (M/2) int_0^1 h(xi)/(t sqrt(w)) dt,  kappa = (M/Rs^2) Khat(sqrt(q u^2 + v^2/q)),
/// integrals by the fixed 101-node tanh-sinh rule (tanh_sinh_table).
template <class Scalar>
struct NFWExactKernel {
  using scalar_type = Scalar;
  Scalar Rs, alpha_Rs, q;

  KOKKOS_INLINE_FUNCTION Scalar unit() const { return alpha_Rs / Scalar(one_minus_ln2); }

  // What a pass over the nodes accumulates.
  enum : int { want_J = 1, want_L = 2, want_psi = 4, want_Jq = 8, want_psiq = 16 };
  struct Sums {
    Scalar J0, J1, L0, L1, L2, psi, J0q, J1q, psiq;
  };

  // One node: t, 1 - t, weight.
  KOKKOS_INLINE_FUNCTION void node(Scalar t, Scalar omt, Scalar w, Scalar u2, Scalar v2, int want, Sums& S) const {
    Scalar const q2 = q * q, W = omt + q2 * t, iW = Scalar(1) / W, r = math::sqrt(iW);
    Scalar const B = u2 + v2 * iW;
    Scalar const xi2 = math::max(q * t * B, min_xi2<Scalar>());
    auto const f = nfw_radial(xi2, (want & (want_psi | want_psiq)) != 0);
    Scalar const wr = w * r;
    if (want & want_J) {
      S.J0 += wr * f.K;
      S.J1 += wr * iW * f.K;
    }
    if (want & want_L) {
      Scalar const l = wr * t * f.dK;
      S.L0 += l;
      S.L1 += l * iW;
      S.L2 += l * iW * iW;
    }
    if (want & want_psi) S.psi += Scalar(0.5) * wr * f.h / t;
    if (want & (want_Jq | want_psiq)) {
      Scalar const Bq = B - Scalar(2) * q2 * t * v2 * iW * iW;  // (d xi^2/dq)/t
      if (want & want_Jq) {
        Scalar const a = wr * (t * Bq * f.dK), b = wr * q * t * iW * f.K;
        S.J0q += a - b;
        S.J1q += iW * (a - Scalar(3) * b);
      }
      if (want & want_psiq) S.psiq += Scalar(0.5) * wr * (f.K * Bq - q * f.h * iW);
    }
  }
  KOKKOS_INLINE_FUNCTION Sums integrate(Scalar u, Scalar v, int want) const {
    auto const tab = tanh_sinh_table();
    Scalar const u2 = u * u, v2 = v * v;
    Sums S{0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int k = 0; k < 50; ++k) {
      Scalar const t = Scalar(tab.small[k]), omt = Scalar(1) - t, w = Scalar(tab.w[k]);
      node(t, omt, w, u2, v2, want, S);
      node(omt, t, w, u2, v2, want, S);
    }
    node(Scalar(0.5), Scalar(0.5), Scalar(tab.w[50]), u2, v2, want, S);
    return S;
  }

  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Scalar const iR = Scalar(1) / Rs, u = x * iR, v = y * iR;
    Sums const S = integrate(u, v, want_J);
    Scalar const c = unit() * q;
    return {c * u * S.J0, c * v * S.J1};
  }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const {
    Scalar const iR = Scalar(1) / Rs;
    return unit() * Rs * integrate(x * iR, y * iR, want_psi).psi;
  }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const {
    Scalar const iR = Scalar(1) / Rs, u = x * iR, v = y * iR;
    Scalar const xi2 = math::max(q * u * u + v * v / q, min_xi2<Scalar>());
    return unit() * iR * nfw_radial(xi2, false).K;
  }
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> convergence_gradient(Scalar x, Scalar y) const {
    Scalar const iR = Scalar(1) / Rs, u = x * iR, v = y * iR;
    Scalar const xi2 = math::max(q * u * u + v * v / q, min_xi2<Scalar>());
    Scalar const c = Scalar(2) * unit() * iR * iR * nfw_radial(xi2, false).dK;
    return {c * q * u, c * v / q};
  }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    Scalar const iR = Scalar(1) / Rs, u = x * iR, v = y * iR;
    Sums const S = integrate(u, v, want_J | want_L);
    Scalar const c = unit() * iR * q, tq = Scalar(2) * q;
    return {c * (tq * u * u * S.L0 + S.J0), c * tq * u * v * S.L1, c * (tq * v * v * S.L2 + S.J1)};
  }

  /// deflection_grad plus alpha and the Hessian at the same point: the node
  /// sums it accumulates already hold both (one pass instead of three in
  /// EllipticalProfile::deflection_vjp).
  KOKKOS_INLINE_FUNCTION void deflection_grad_with_values(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad,
                                                          Scalar& q_grad, Vec2<Scalar>& alpha,
                                                          Hessian<Scalar>& hess) const {
    Scalar const iR = Scalar(1) / Rs, u = x * iR, v = y * iR;
    Sums const S = integrate(u, v, want_J | want_L | want_Jq);
    Scalar const U = unit(), tq = Scalar(2) * q;
    // Dimensionless deflection g = q (u J0, v J1), Hessian h, and dg/dq.
    Scalar const gx = q * u * S.J0, gy = q * v * S.J1;
    Scalar const hxx = q * (tq * u * u * S.L0 + S.J0), hxy = q * tq * u * v * S.L1,
                 hyy = q * (tq * v * v * S.L2 + S.J1);
    Scalar const gxq = u * (S.J0 + q * S.J0q), gyq = v * (S.J1 + q * S.J1q);
    Scalar const hpx = hxx * u + hxy * v, hpy = hxy * u + hyy * v;
    grad[0] -= U * iR * (g.x * hpx + g.y * hpy);
    grad[1] += (g.x * gx + g.y * gy) / Scalar(one_minus_ln2);
    q_grad += U * (g.x * gxq + g.y * gyq);
    alpha = {U * gx, U * gy};
    hess = {U * iR * hxx, U * iR * hxy, U * iR * hyy};
  }
  KOKKOS_INLINE_FUNCTION void deflection_grad(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad, Scalar& q_grad) const {
    Vec2<Scalar> alpha;
    Hessian<Scalar> hess;
    deflection_grad_with_values(x, y, g, grad, q_grad, alpha, hess);
  }
  KOKKOS_INLINE_FUNCTION void potential_grad(Scalar x, Scalar y, Scalar g, Scalar* grad, Scalar& q_grad) const {
    Scalar const iR = Scalar(1) / Rs, u = x * iR, v = y * iR;
    Sums const S = integrate(u, v, want_J | want_psi | want_psiq);
    Scalar const U = unit();
    Scalar const gu = q * (u * u * S.J0 + v * v * S.J1);  // g . u
    grad[0] += g * U * (S.psi - gu);
    grad[1] += g * Rs * S.psi / Scalar(one_minus_ln2);
    q_grad += g * U * Rs * S.psiq;
  }
  KOKKOS_INLINE_FUNCTION void convergence_grad(Scalar x, Scalar y, Scalar g, Scalar* grad, Scalar& q_grad) const {
    Scalar const iR = Scalar(1) / Rs, u = x * iR, v = y * iR;
    Scalar const xi2 = math::max(q * u * u + v * v / q, min_xi2<Scalar>());
    auto const f = nfw_radial(xi2, false);
    Scalar const U = unit();
    // kappa = (U/Rs) K(xi^2): dkappa/dRs = -(U/Rs^2)(K + 2 xi^2 K').
    grad[0] -= g * U * iR * iR * (f.K + Scalar(2) * xi2 * f.dK);
    grad[1] += g * iR * f.K / Scalar(one_minus_ln2);
    q_grad += g * U * iR * f.dK * (u * u - v * v / (q * q));
  }
};

}  // namespace nfw_ellipse
}  // namespace detail

/// Parameters of NFWEllipseCSE (see there).
template <class Scalar>
struct NFWEllipseCSEParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::NFWEllipseCSE";
  static constexpr int num_shape_params = 2;
  static constexpr char const* param_names[] = {"Rs", "alpha_Rs", "e1", "e2", "center_x", "center_y"};
  Scalar Rs;        ///< scale radius [arcsec], > 0
  Scalar alpha_Rs;  ///< deflection at Rs of the round profile [arcsec], > 0
  Scalar e1;        ///< ellipticity, lenstronomy convention
  Scalar e2;
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;

  KOKKOS_INLINE_FUNCTION detail::nfw_ellipse::NFWCSEKernel<Scalar> kernel(Scalar q) const { return {Rs, alpha_Rs, q}; }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const {
    t[0] = Rs;
    t[1] = alpha_Rs;
  }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) {
    Rs = t[0];
    alpha_Rs = t[1];
  }
  void check_shape() const {
    check_positive(Rs, name, "Rs");
    check_positive(alpha_Rs, name, "alpha_Rs");
  }
};

/// Elliptical NFW as a sum of 44 cored steep ellipsoids (lenstronomy
/// "NFW_ELLIPSE_CSE"; Oguri 2021, Table 1 coefficients).
///
/// The NFW convergence kappa = (M/Rs^2) (1 - F(xi))/(2 (xi^2 - 1)), M =
/// alpha_Rs Rs/(1 - ln 2), is made elliptical through the product-average
/// radius xi = sqrt(q x'^2 + y'^2/q)/Rs (x', y' along the major/minor axes, q
/// from (e1, e2)), which keeps the mass inside each isodensity ellipse that of
/// the round profile, and is approximated by
///   kappa = (M/Rs^2) sum_i A_i / (2 (s_i^2 + xi^2)^{3/2}),
/// each term's deflection, potential and Hessian in closed form (Oguri 2021,
/// eqs. for the CSE; Keeton & Kochanek 1998).  Angles in arcsec, psi in
/// arcsec^2, psi(centre) = 0.
/// Parameters (pack order): Rs > 0, alpha_Rs > 0 (alpha of the round profile
/// at Rs), e1, e2 (|e| < 1; q capped at 0.9999 as lenstronomy), center_x, center_y.
/// Accuracy (of the expansion, not of the arithmetic): kappa within 4e-5,
/// alpha 5e-6, psi 1.5e-5 (relative) of the exact profile (NFWEllipse) for
/// xi in [1e-4, 1e3]; 0.13 beyond 1e3 Rs (the CSE sum has finite mass).
/// Matches lenstronomy to ~1e-12.  Cored: finite everywhere, the centre
/// included.  For the exact profile use NFWEllipse.
template <class Scalar>
using NFWEllipseCSE = EllipticalProfile<NFWEllipseCSEParams<Scalar>>;

/// Parameters of NFWEllipse (see there).
template <class Scalar>
struct NFWEllipseParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::NFWEllipse";
  static constexpr int num_shape_params = 2;
  static constexpr char const* param_names[] = {"Rs", "alpha_Rs", "e1", "e2", "center_x", "center_y"};
  Scalar Rs;        ///< scale radius [arcsec], > 0
  Scalar alpha_Rs;  ///< deflection at Rs of the round profile [arcsec], > 0
  Scalar e1;        ///< ellipticity, lenstronomy convention
  Scalar e2;
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;

  KOKKOS_INLINE_FUNCTION detail::nfw_ellipse::NFWExactKernel<Scalar> kernel(Scalar q) const {
    return {Rs, alpha_Rs, q};
  }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const {
    t[0] = Rs;
    t[1] = alpha_Rs;
  }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) {
    Rs = t[0];
    alpha_Rs = t[1];
  }
  void check_shape() const {
    check_positive(Rs, name, "Rs");
    check_positive(alpha_Rs, name, "alpha_Rs");
  }
};

/// Elliptical NFW, exact (the profile NFWEllipseCSE approximates).
///
///   kappa = (M/Rs^2) (1 - F(xi))/(2 (xi^2 - 1)),  xi = sqrt(q x'^2 + y'^2/q)/Rs,
/// M = alpha_Rs Rs/(1 - ln 2), F as for the round NFW (Bartelmann 1996;
/// Wright & Brainerd 2000), x', y' along the major/minor axes, q from (e1, e2).
/// Deflection, Hessian and potential are the 1-D integrals of an elliptical
/// kappa(xi) (Schramm 1990; Keeton 2001, in product-average form; see
/// detail::nfw_ellipse::NFWExactKernel), computed with a fixed 101-node
/// tanh-sinh rule: max relative error ~2e-15 (psi, alpha) against 30-digit
/// quadrature for q in [0.05, 1] and r/Rs in [1e-4, 1e3]; below q ~ 0.05 the
/// integrands peak within ~q^2 of t = 1 and the error grows.  Convergence in
/// closed form.  Angles in arcsec, psi in arcsec^2 with psi(centre) = 0 (as
/// NFWEllipseCSE).  About 100 NFW-function evaluations per call (NFWEllipseCSE:
/// 44 algebraic terms); use the CSE where its ~3e-5 suffices.
/// Parameters (pack order): Rs > 0, alpha_Rs > 0, e1, e2 (|e| < 1; q capped
/// at 0.9999), center_x, center_y.  NFWEllipse(e = 0) is the round NFW.
/// Edges: the central cusp (kappa ~ ln r) is evaluated at xi >= 1e-15 (1e-12
/// in float): kappa and the Hessian are large but finite at the centre, alpha
/// -> 0 there; near xi = 1 exact series; q = 1 needs no special case.
template <class Scalar>
using NFWEllipse = EllipticalProfile<NFWEllipseParams<Scalar>>;

}  // namespace lensing

#endif  // LENSING_PROFILES_NFW_ELLIPSE_HPP
