#ifndef LENSING_SOURCES_SERSIC_HPP
#define LENSING_SOURCES_SERSIC_HPP

#include <lensing/core/errors.hpp>
#include <lensing/core/special.hpp>
#include <lensing/geometry/ellipticity.hpp>
#include <lensing/sources/detail/light_ellipse.hpp>
#include <lensing/sources/light_profile.hpp>

namespace lensing {

namespace detail {

/// Sersic radial law as lenstronomy's SersicUtil:
///   I(R) = amp exp(-b_n ((R/R_sersic)^(1/n) - 1)),  b_n = max(1.9992 n - 0.3271, 1e-5)
/// (Capaccioli 1989's approximation of the half-light constant,
/// math::sersic_b_lenstronomy), with R
/// floored at 1e-4 arcsec (lenstronomy 1.14.2's SersicUtil smoothing; below it I is constant).
/// eval returns I and its partials in (amp, R_sersic, n_sersic), and
/// d_R_over_R = (dI/dR)/R, the factor of the offset's cotangent (0 inside the
/// floor, where I is constant).
template <class Scalar>
struct SersicRadial {
  static constexpr Scalar smoothing = Scalar(1e-4);
  Scalar I, d_amp, d_Rs, d_n, d_R_over_R;

  KOKKOS_FORCEINLINE_FUNCTION SersicRadial(Scalar amp, Scalar Rs, Scalar n, Scalar R2) {
    // log(R / Rs) as log(R^2 / Rs^2) / 2 with the reciprocal a per-profile
    // constant: no square root or division per point where only I is used
    // (loops hoist 1 / Rs^2), and none but -c/R² for the partials.
    bool const inside = R2 < smoothing * smoothing;
    // Selects of computed values (math::select): no branch in pixel loops.
    Scalar const R2f = math::select(inside, smoothing * smoothing, R2);
    Scalar const bn = math::sersic_b_lenstronomy(n);
    Scalar const inv_n = Scalar(1) / n;
    Scalar const logr = Scalar(0.5) * math::log(R2f * (Scalar(1) / (Rs * Rs)));
    Scalar const t = math::exp(logr * inv_n);
    Scalar const E = math::exp(-bn * (t - Scalar(1)));
    I = amp * E;
    d_amp = E;
    Scalar const c = I * bn * t * inv_n;
    d_Rs = c * (Scalar(1) / Rs);  // 1/Rs: a per-profile constant, hoisted
    // (dI/dR)/R = -c/R² outside the floor: no square root, one division.
    d_R_over_R = math::select(inside, Scalar(0), -c / R2f);
    d_n = I * (-math::sersic_b_lenstronomy_dn(n) * (t - Scalar(1)) + bn * t * logr * inv_n * inv_n);
  }
};

/// SersicRadial's I alone with the per-profile constants hoisted (a pixel
/// loop's form, from Sersic::prepared / SersicEllipse::prepared): the same
/// operations on the same values as SersicRadial(amp, Rs, n, R2).I, one log
/// and two exponentials per point, no division or square root.
template <class Scalar>
struct SersicRadialPrepared {
  Scalar amp, bn, inv_n, inv_rs2;
  KOKKOS_INLINE_FUNCTION static SersicRadialPrepared make(Scalar amp, Scalar Rs, Scalar n) {
    return {amp, math::sersic_b_lenstronomy(n), Scalar(1) / n, Scalar(1) / (Rs * Rs)};
  }
  KOKKOS_FORCEINLINE_FUNCTION Scalar operator()(Scalar R2) const {
    constexpr Scalar s2 = SersicRadial<Scalar>::smoothing * SersicRadial<Scalar>::smoothing;
    Scalar const R2f = R2 < s2 ? s2 : R2;
    Scalar const logr = Scalar(0.5) * math::log(R2f * inv_rs2);
    Scalar const t = math::exp(logr * inv_n);
    return amp * math::exp(-bn * (t - Scalar(1)));
  }
};

/// Sersic::prepared(): the circular profile for a loop over many points.
template <class Scalar>
struct PreparedSersic {
  using scalar_type = Scalar;
  SersicRadialPrepared<Scalar> radial;
  Scalar center_x, center_y;
  KOKKOS_FORCEINLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    Scalar const dx = x - center_x, dy = y - center_y;
    return radial(dx * dx + dy * dy);
  }
};

/// SersicEllipse::prepared(): the elliptical profile with its frame (q, phi,
/// sqrt(q) from e1, e2: three square roots and three divisions) and radial
/// constants built once.
template <class Scalar>
struct PreparedSersicEllipse {
  using scalar_type = Scalar;
  SersicRadialPrepared<Scalar> radial;
  LightEllipse<Scalar> ellipse;
  Scalar center_x, center_y;
  KOKKOS_FORCEINLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    Vec2<Scalar> p;
    Vec2<Scalar> const t = ellipse.transform(Vec2<Scalar>{x - center_x, y - center_y}, p);
    return radial(t.x * t.x + t.y * t.y);
  }
};

template <class Scalar>
void check_sersic(char const* where, Scalar amp, Scalar R_sersic, Scalar n_sersic, Scalar cx, Scalar cy) {
  check_finite(amp, where, "amp");
  check_positive(R_sersic, where, "R_sersic");
  check_positive(n_sersic, where, "n_sersic");
  check_finite(cx, where, "center_x");
  check_finite(cy, where, "center_y");
}

}  // namespace detail

/// Circular Sersic light profile (lenstronomy "SERSIC"; Sersic 1963):
///   I(r) = amp exp(-b_n ((r/R_sersic)^(1/n_sersic) - 1)),  b_n = 1.9992 n - 0.3271,
/// r the distance to the centre [arcsec]; amp is the surface brightness at
/// R_sersic (the half-light radius).  Parameters (pack order): amp,
/// R_sersic > 0 [arcsec], n_sersic > 0, center_x, center_y [arcsec].
/// Valid everywhere: r is floored at 1e-4" as in lenstronomy.
template <class Scalar>
struct Sersic {
  using scalar_type = Scalar;
  static constexpr int num_params = 5;
  static constexpr char const* param_names[] = {"amp", "R_sersic", "n_sersic", "center_x", "center_y"};
  Scalar amp;
  Scalar R_sersic;
  Scalar n_sersic;
  Scalar center_x;
  Scalar center_y;

  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    Scalar const dx = x - center_x, dy = y - center_y;
    return detail::SersicRadial<Scalar>(amp, R_sersic, n_sersic, dx * dx + dy * dy).I;
  }
  /// The profile with its per-point constants hoisted, for pixel loops
  /// (detail::prepare): surface_brightness only, the same values.
  KOKKOS_INLINE_FUNCTION detail::PreparedSersic<Scalar> prepared() const {
    return {detail::SersicRadialPrepared<Scalar>::make(amp, R_sersic, n_sersic), center_x, center_y};
  }
  template <class Grad>
  KOKKOS_FORCEINLINE_FUNCTION Vec2<Scalar> surface_brightness_vjp(Scalar x, Scalar y, Scalar g, Grad grad) const {
    Scalar const dx = x - center_x, dy = y - center_y;
    Scalar const R2 = dx * dx + dy * dy;
    detail::SersicRadial<Scalar> const s(amp, R_sersic, n_sersic, R2);
    grad[0] += g * s.d_amp;
    grad[1] += g * s.d_Rs;
    grad[2] += g * s.d_n;
    Scalar const c = g * s.d_R_over_R;
    grad[3] -= c * dx;
    grad[4] -= c * dy;
    return {c * dx, c * dy};
  }
  KOKKOS_INLINE_FUNCTION void pack(Scalar* t) const {
    t[0] = amp;
    t[1] = R_sersic;
    t[2] = n_sersic;
    t[3] = center_x;
    t[4] = center_y;
  }
  KOKKOS_INLINE_FUNCTION static Sersic unpack(Scalar const* t) { return {t[0], t[1], t[2], t[3], t[4]}; }
  void check() const { detail::check_sersic("lensing::Sersic", amp, R_sersic, n_sersic, center_x, center_y); }
};

/// Elliptical Sersic light profile (lenstronomy "SERSIC_ELLIPSE"):
///   I = amp exp(-b_n ((R/R_sersic)^(1/n_sersic) - 1)),  R^2 = q x'^2 + y'^2/q,
/// x', y' the offsets along the major and minor axes, q = minor/major and the
/// position angle from (e1, e2) (lenstronomy's convention,
/// geometry/ellipticity.hpp); R_sersic is the half-light radius of the
/// geometric-mean axis.  Parameters (pack order): amp, R_sersic > 0,
/// n_sersic > 0, e1, e2 (|e| < 1), center_x, center_y.
template <class Scalar>
struct SersicEllipse {
  using scalar_type = Scalar;
  static constexpr int num_params = 7;
  static constexpr char const* param_names[] = {"amp", "R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y"};
  Scalar amp;
  Scalar R_sersic;
  Scalar n_sersic;
  Scalar e1;
  Scalar e2;
  Scalar center_x;
  Scalar center_y;

  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    auto const l = detail::LightEllipse<Scalar>::make(e1, e2);
    Vec2<Scalar> p;
    Vec2<Scalar> const t = l.transform(Vec2<Scalar>{x - center_x, y - center_y}, p);
    return detail::SersicRadial<Scalar>(amp, R_sersic, n_sersic, t.x * t.x + t.y * t.y).I;
  }
  /// The profile with its frame and radial constants built once, for pixel
  /// loops (detail::prepare): surface_brightness only, the same values.
  KOKKOS_INLINE_FUNCTION detail::PreparedSersicEllipse<Scalar> prepared() const {
    return {detail::SersicRadialPrepared<Scalar>::make(amp, R_sersic, n_sersic),
            detail::LightEllipse<Scalar>::make(e1, e2), center_x, center_y};
  }
  template <class Grad>
  KOKKOS_FORCEINLINE_FUNCTION Vec2<Scalar> surface_brightness_vjp(Scalar x, Scalar y, Scalar g, Grad grad) const {
    auto const l = detail::LightEllipse<Scalar>::make(e1, e2);
    Vec2<Scalar> p;
    Vec2<Scalar> const t = l.transform(Vec2<Scalar>{x - center_x, y - center_y}, p);
    Scalar const R2 = t.x * t.x + t.y * t.y;
    detail::SersicRadial<Scalar> const s(amp, R_sersic, n_sersic, R2);
    grad[0] += g * s.d_amp;
    grad[1] += g * s.d_Rs;
    grad[2] += g * s.d_n;
    Scalar const c = g * s.d_R_over_R;
    return l.template shape_vjp<3>(e1, e2, p, Vec2<Scalar>{c * t.x, c * t.y}, grad);
  }
  KOKKOS_INLINE_FUNCTION void pack(Scalar* t) const {
    t[0] = amp;
    t[1] = R_sersic;
    t[2] = n_sersic;
    t[3] = e1;
    t[4] = e2;
    t[5] = center_x;
    t[6] = center_y;
  }
  KOKKOS_INLINE_FUNCTION static SersicEllipse unpack(Scalar const* t) {
    return {t[0], t[1], t[2], t[3], t[4], t[5], t[6]};
  }
  void check() const {
    constexpr char const* where = "lensing::SersicEllipse";
    detail::check_sersic(where, amp, R_sersic, n_sersic, center_x, center_y);
    check_ellipticity(e1, e2, where);
  }
};

}  // namespace lensing

#endif  // LENSING_SOURCES_SERSIC_HPP
