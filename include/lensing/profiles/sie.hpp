#ifndef LENSING_PROFILES_SIE_HPP
#define LENSING_PROFILES_SIE_HPP

#include <lensing/profiles/detail/elliptical.hpp>

namespace lensing {

namespace detail {

/// Floor on the ellipticity e inside the direct forms below (e = 0, q = 1,
/// is the only profile below it: in float the smallest e > 0 is
/// sqrt(1 - (1 - 2⁻²⁴)²) ≈ 3e-4).  Its square is a normal number (float:
/// 1e-30), so the unused arm of a select never divides 0 by 0.
template <class Scalar>
constexpr Scalar sie_e_floor = std::is_same<Scalar, float>::value ? Scalar(1e-15) : Scalar(1e-30);

/// scale atan(e n/d)/e for d > 0 (the NIE's alpha_x: n = x, d = P + s, scale = b),
/// direct for every e in [0, 1): atan keeps its relative accuracy for small
/// arguments, and e = 0 takes the floor, where atan(es n/d)/es = n/d.  atan2
/// divides once (atan of a quotient would divide twice).
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION Scalar atan_over_e(Scalar e, Scalar n, Scalar d, Scalar scale) {
  Scalar const es = math::max(e, sie_e_floor<Scalar>);
  return math::atan2(es * n, d) * (scale / es);  // scale / es: a per-profile constant
}

/// scale atanh(e n/d)/e for d > e |n| (alpha_y: n = y, d = P + q² s, scale = b):
/// atanh z = log1p(u)/2 with u = 2z/(1 - z) = 2 e n/(d - e n), one division.
/// Direct for every e in [0, 1) (math::log1p_from_log is accurate down to u = 0).
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION Scalar atanh_over_e(Scalar e, Scalar n, Scalar d, Scalar scale) {
  Scalar const es = math::max(e, sie_e_floor<Scalar>), en = es * n;
  return math::log1p_from_log(Scalar(2) * en / (d - en)) * (Scalar(0.5) * scale / es);
}

/// atan(e w)/e (atan_over_e), w = n/d (given: the caller's n times its 1/d),
/// and, for its q-derivative, G = (w c - atan(e w)/e)/e^2, c = 1/(1 + t) (also
/// returned), t = e^2 w^2, finite and accurate as e -> 0 (series in t below
/// 1e-3, where the direct G loses digits; 7 terms: error < t^7).  Divisions by
/// per-profile constants are products by their hoisted reciprocals.
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION void atan_ratio(Scalar e, Scalar n, Scalar d, Scalar w, Scalar& f, Scalar& g, Scalar& c) {
  Scalar const t = e * e * w * w;
  Scalar const es = math::max(e, sie_e_floor<Scalar>), inv_e2 = Scalar(1) / (es * es);
  f = atan_over_e(e, n, d, Scalar(1));
  c = Scalar(1) / (Scalar(1) + t);
  // Both forms of G are computed and one is selected, so pixel loops vectorise
  // (no data-dependent branch).
  Scalar const gd = (w * c - f) * inv_e2;
  // G = w^3 sum_{k>=1} (-1)^k 2k/(2k+1) t^(k-1)
  Scalar const gs =
      w * w * w *
      (Scalar(-2) / 3 +
       t * (Scalar(4) / 5 +
            t * (Scalar(-6) / 7 +
                 t * (Scalar(8) / 9 + t * (Scalar(-10) / 11 + t * (Scalar(12) / 13 - t * (Scalar(14) / 15)))))));
  g = math::select(t < Scalar(1e-3), gs, gd);
}

/// atanh(e v)/e (atanh_over_e), v = n/d (given), and H = (v c - atanh(e v)/e)/e^2,
/// c = 1/(1 - e^2 v^2) (also returned), as atan_ratio with the hyperbolic
/// signs; requires e |v| < 1.
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION void atanh_ratio(Scalar e, Scalar n, Scalar d, Scalar v, Scalar& f, Scalar& h, Scalar& c) {
  Scalar const t = e * e * v * v;
  Scalar const es = math::max(e, sie_e_floor<Scalar>), inv_e2 = Scalar(1) / (es * es);
  f = atanh_over_e(e, n, d, Scalar(1));
  c = Scalar(1) / (Scalar(1) - t);
  Scalar const hd = (v * c - f) * inv_e2;
  Scalar const hs =
      v * v * v *
      (Scalar(2) / 3 +
       t * (Scalar(4) / 5 +
            t * (Scalar(6) / 7 +
                 t * (Scalar(8) / 9 + t * (Scalar(10) / 11 + t * (Scalar(12) / 13 + t * (Scalar(14) / 15)))))));
  h = math::select(t < Scalar(1e-3), hs, hd);
}

/// Non-singular isothermal ellipsoid in its major-axis frame (Kormann,
/// Schneider & Bartelmann 1994; Keeton & Kochanek 1998), with b, s, q:
///   P = sqrt(q^2 (s^2 + x^2) + y^2),  kappa = b / (2P),
///   alpha_x = b/e atan(e x/(P + s)),  alpha_y = b/e atanh(e y/(P + q^2 s)),  e = sqrt(1 - q^2),
///   psi = x alpha_x + y alpha_y - (b s / 2) ln((P + s)^2 + e^2 x^2).
/// lenstronomy's parameters: b = theta_E sqrt(q), s = s_scale / sqrt(q).
/// Shape gradients are written to grad[0] (theta_E) and, when WithCore,
/// grad[1] (s_scale).
template <class Scalar, bool WithCore>
struct NIEKernel {
  using scalar_type = Scalar;
  Scalar b, s, q, e, theta_E, s_scale;

  KOKKOS_INLINE_FUNCTION NIEKernel(Scalar theta_E_, Scalar s_scale_, Scalar q_)
      : b(theta_E_ * math::sqrt(q_)),
        s(s_scale_ / math::sqrt(q_)),
        q(q_),
        e(math::sqrt(math::max(Scalar(1) - q_ * q_, Scalar(0)))),
        theta_E(theta_E_),
        s_scale(s_scale_) {}

  // P, floored so that the singular (s = 0) centre stays finite.
  KOKKOS_INLINE_FUNCTION Scalar P(Scalar x, Scalar y) const {
    return math::max(math::sqrt(q * q * (s * s + x * x) + y * y), cusp_radius<Scalar> * q);
  }

  KOKKOS_FORCEINLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Scalar const p = P(x, y);
    return {atan_over_e(e, x, p + s, b), atanh_over_e(e, y, p + q * q * s, b)};
  }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const {
    Vec2<Scalar> const a = deflection(x, y);
    Scalar psi = x * a.x + y * a.y;
    if (WithCore) {
      Scalar const p = P(x, y);
      psi -= Scalar(0.5) * b * s * math::log((p + s) * (p + s) + e * e * x * x);
    }
    return psi;
  }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const { return Scalar(0.5) * b / P(x, y); }
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> convergence_gradient(Scalar x, Scalar y) const {
    Scalar const p = P(x, y), c = Scalar(-0.5) * b / (p * p * p);
    return {c * q * q * x, c * y};
  }
  KOKKOS_FORCEINLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    // Three divisions a point (1/P, 1/d1, 1/d2), the rest products: a vector
    // division costs 3.5-5 multiply-adds (benchmarks/README.md, element costs).
    Scalar const p = P(x, y), ip = Scalar(1) / p, px = q * q * x * ip, py = y * ip;
    Scalar const d1 = (p + s) * (p + s) + e * e * x * x;
    Scalar const d2 = (p + q * q * s) * (p + q * q * s) - e * e * y * y;
    Scalar const b1 = b / d1;
    return {b1 * (p + s - x * px), -b1 * x * py, b * (p + q * q * s - y * py) / d2};
  }

  // d(b, s)/d(theta_E, s_scale, q).
  KOKKOS_INLINE_FUNCTION Scalar db_dq() const { return Scalar(0.5) * theta_E / math::sqrt(q); }
  KOKKOS_INLINE_FUNCTION Scalar ds_dsscale() const { return Scalar(1) / math::sqrt(q); }
  KOKKOS_INLINE_FUNCTION Scalar ds_dq() const { return Scalar(-0.5) * s / q; }

  // Partial derivatives of alpha (per unit b) with respect to s and q at fixed b.
  KOKKOS_FORCEINLINE_FUNCTION void deflection_partials(Scalar x, Scalar y, Vec2<Scalar>& unit, Vec2<Scalar>& d_s,
                                                       Vec2<Scalar>& d_q) const {
    // Five divisions a point (1/P, 1/dx, 1/dy, and atan_ratio's and
    // atanh_ratio's c), one more inside atanh_over_e; the rest products.
    Scalar const p = P(x, y), ip = Scalar(1) / p, ps = q * q * s * ip, pq = q * (s * s + x * x) * ip;
    Scalar const dx = p + s, dy = p + q * q * s, idx = Scalar(1) / dx, idy = Scalar(1) / dy;
    Scalar const w = x * idx, v = y * idy;
    Scalar fx, gx, cx, fy, gy, cy;
    atan_ratio(e, x, dx, w, fx, gx, cx);
    atanh_ratio(e, y, dy, v, fy, gy, cy);
    unit = {fx, fy};
    Scalar const wx = cx * w * idx, vy = cy * v * idy;
    d_s = {-wx * (ps + Scalar(1)), -vy * (ps + q * q)};
    // de/dq = -q/e, and (1/e) d(atan(e w)/e)/de = G.
    d_q = {-q * gx - wx * pq, -q * gy - vy * (pq + Scalar(2) * q * s)};
  }

  KOKKOS_FORCEINLINE_FUNCTION void deflection_grad(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad,
                                                   Scalar& q_grad) const {
    Vec2<Scalar> u, ds, dq;
    deflection_partials(x, y, u, ds, dq);
    Scalar const gu = dot(g, u);
    grad[0] += gu * math::sqrt(q);
    Scalar const gs = b * dot(g, ds);
    if (WithCore) grad[1] += gs * ds_dsscale();
    q_grad += gu * db_dq() + b * dot(g, dq) + gs * ds_dq();
  }
  /// deflection_grad, and alpha and the Hessian at the same point (alpha =
  /// b * the unit-b deflection the partials already hold: one atan and one
  /// atanh per point for the whole deflection VJP).
  KOKKOS_FORCEINLINE_FUNCTION void deflection_grad_with_values(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad,
                                                               Scalar& q_grad, Vec2<Scalar>& alpha,
                                                               Hessian<Scalar>& hess) const {
    Vec2<Scalar> u, ds, dq;
    deflection_partials(x, y, u, ds, dq);
    Scalar const gu = dot(g, u);
    grad[0] += gu * math::sqrt(q);
    Scalar const gs = b * dot(g, ds);
    if (WithCore) grad[1] += gs * ds_dsscale();
    q_grad += gu * db_dq() + b * dot(g, dq) + gs * ds_dq();
    alpha = {b * u.x, b * u.y};
    hess = hessian(x, y);
  }
  KOKKOS_FORCEINLINE_FUNCTION void potential_grad(Scalar x, Scalar y, Scalar g, Scalar* grad, Scalar& q_grad) const {
    Vec2<Scalar> u, ds, dq;
    deflection_partials(x, y, u, ds, dq);
    Scalar psi_b = x * u.x + y * u.y;  // psi per unit b
    Scalar dpsi_ds = x * ds.x + y * ds.y, dpsi_dq = x * dq.x + y * dq.y;
    if (WithCore) {
      Scalar const p = P(x, y), ps = q * q * s / p, pq = q * (s * s + x * x) / p;
      Scalar const L = (p + s) * (p + s) + e * e * x * x;
      Scalar const lnL = math::log(L);
      psi_b -= Scalar(0.5) * s * lnL;
      dpsi_ds -= Scalar(0.5) * lnL + s * (p + s) * (ps + Scalar(1)) / L;
      dpsi_dq -= s * ((p + s) * pq - q * x * x) / L;
    }
    grad[0] += g * psi_b * math::sqrt(q);
    if (WithCore) grad[1] += g * b * dpsi_ds * ds_dsscale();
    q_grad += g * (psi_b * db_dq() + b * dpsi_dq + b * dpsi_ds * ds_dq());
  }
  KOKKOS_FORCEINLINE_FUNCTION void convergence_grad(Scalar x, Scalar y, Scalar g, Scalar* grad, Scalar& q_grad) const {
    Scalar const p = P(x, y), ps = q * q * s / p, pq = q * (s * s + x * x) / p;
    Scalar const k_b = Scalar(0.5) / p, dk = Scalar(-0.5) * b / (p * p);  // kappa per unit b; dkappa/dP
    grad[0] += g * k_b * math::sqrt(q);
    if (WithCore) grad[1] += g * dk * ps * ds_dsscale();
    q_grad += g * (k_b * db_dq() + dk * (pq + ps * ds_dq()));
  }
};
}  // namespace detail

/// Parameters of the singular isothermal ellipsoid (see SIE).
template <class Scalar>
struct SIEParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::SIE";
  static constexpr int num_shape_params = 1;
  static constexpr char const* param_names[] = {"theta_E", "e1", "e2", "center_x", "center_y"};
  Scalar theta_E;  ///< Einstein radius [arcsec] (lenstronomy's: of the intermediate axis), > 0
  Scalar e1;       ///< ellipticity, lenstronomy convention
  Scalar e2;
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;

  KOKKOS_INLINE_FUNCTION detail::NIEKernel<Scalar, false> kernel(Scalar q) const { return {theta_E, Scalar(0), q}; }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const { t[0] = theta_E; }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) { theta_E = t[0]; }
  void check_shape() const { check_positive(theta_E, name, "theta_E"); }
};

/// Singular isothermal ellipsoid (lenstronomy "SIE"; Kormann et al. 1994).
///
///   kappa = theta_E / (2 sqrt(q x'^2 + y'^2 / q)),
/// x', y' along the major and minor axes, q = minor/major from (e1, e2), angles
/// in arcsec.  Deflection and potential in closed form (atan/atanh), exact for
/// every q in (0, 1] (q -> 1 through series: SIE(q = 1) = SIS).
/// Parameters (pack order): theta_E > 0, e1, e2 (|e| < 1), center_x, center_y.
/// lenstronomy evaluates its SIE as an NIE with s_scale = 1e-10; this one has
/// no core (differences ~1e-10 theta_E / r).  At the centre (r < 1e-15")
/// kappa and the Hessian are large but finite and the deflection is 0.
template <class Scalar>
using SIE = EllipticalProfile<SIEParams<Scalar>>;

/// Parameters of the non-singular isothermal ellipsoid (see NIE).
template <class Scalar>
struct NIEParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::NIE";
  static constexpr int num_shape_params = 2;
  static constexpr char const* param_names[] = {"theta_E", "s_scale", "e1", "e2", "center_x", "center_y"};
  Scalar theta_E;  ///< Einstein radius [arcsec], > 0
  Scalar s_scale;  ///< core radius [arcsec], >= 0 (0 gives the SIE)
  Scalar e1;       ///< ellipticity, lenstronomy convention
  Scalar e2;
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;

  KOKKOS_INLINE_FUNCTION detail::NIEKernel<Scalar, true> kernel(Scalar q) const { return {theta_E, s_scale, q}; }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const {
    t[0] = theta_E;
    t[1] = s_scale;
  }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) {
    theta_E = t[0];
    s_scale = t[1];
  }
  void check_shape() const {
    check_positive(theta_E, name, "theta_E");
    check_finite(s_scale, name, "s_scale");
    check_argument(s_scale >= Scalar(0), name, "s_scale must be >= 0");
  }
};

/// Non-singular (cored) isothermal ellipsoid (lenstronomy "NIE"; Keeton &
/// Kochanek 1998).
///
///   kappa = b / (2 sqrt(q^2 (s^2 + x'^2) + y'^2)),  b = theta_E sqrt(q),
///   s = s_scale / sqrt(q),
/// angles in arcsec, q from (e1, e2).  Deflection and potential in closed form
/// (see detail::NIEKernel); NIE(s_scale = 0) = SIE.
/// Parameters (pack order): theta_E > 0, s_scale >= 0, e1, e2, center_x, center_y.
template <class Scalar>
using NIE = EllipticalProfile<NIEParams<Scalar>>;

}  // namespace lensing

#endif  // LENSING_PROFILES_SIE_HPP
