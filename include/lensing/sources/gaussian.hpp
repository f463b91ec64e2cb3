#ifndef LENSING_SOURCES_GAUSSIAN_HPP
#define LENSING_SOURCES_GAUSSIAN_HPP

#include <lensing/core/errors.hpp>
#include <lensing/geometry/ellipticity.hpp>
#include <lensing/sources/detail/light_ellipse.hpp>
#include <lensing/sources/light_profile.hpp>

namespace lensing {

namespace detail {
// I = amp/(2 pi sigma^2) exp(-R2/(2 sigma^2)) and its partials in amp, sigma, R2.
template <class Scalar>
struct GaussianRadial {
  Scalar I, d_amp, d_sigma, d_R2;
  KOKKOS_FORCEINLINE_FUNCTION GaussianRadial(Scalar amp, Scalar sigma, Scalar R2) {
    Scalar const is2 = Scalar(1) / (sigma * sigma);
    Scalar const E = Scalar(0.5) / math::pi<Scalar> * is2 * math::exp(Scalar(-0.5) * R2 * is2);
    I = amp * E;
    d_amp = E;
    d_sigma = I * (R2 * is2 - Scalar(2)) / sigma;
    d_R2 = Scalar(-0.5) * I * is2;
  }
};
}  // namespace detail

/// Circular Gaussian light profile (lenstronomy "GAUSSIAN"):
///   I(r) = amp / (2 pi sigma^2) exp(-r^2 / (2 sigma^2)),
/// so amp is the total flux.  Parameters (pack order): amp, sigma > 0
/// [arcsec], center_x, center_y [arcsec].
template <class Scalar>
struct Gaussian {
  using scalar_type = Scalar;
  static constexpr int num_params = 4;
  static constexpr char const* param_names[] = {"amp", "sigma", "center_x", "center_y"};
  Scalar amp;
  Scalar sigma;
  Scalar center_x;
  Scalar center_y;

  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    Scalar const dx = x - center_x, dy = y - center_y;
    return detail::GaussianRadial<Scalar>(amp, sigma, dx * dx + dy * dy).I;
  }
  template <class Grad>
  KOKKOS_FORCEINLINE_FUNCTION Vec2<Scalar> surface_brightness_vjp(Scalar x, Scalar y, Scalar g, Grad grad) const {
    Scalar const dx = x - center_x, dy = y - center_y;
    detail::GaussianRadial<Scalar> const s(amp, sigma, dx * dx + dy * dy);
    grad[0] += g * s.d_amp;
    grad[1] += g * s.d_sigma;
    Scalar const c = Scalar(2) * g * s.d_R2;
    grad[2] -= c * dx;
    grad[3] -= c * dy;
    return {c * dx, c * dy};
  }
  KOKKOS_INLINE_FUNCTION void pack(Scalar* t) const {
    t[0] = amp;
    t[1] = sigma;
    t[2] = center_x;
    t[3] = center_y;
  }
  KOKKOS_INLINE_FUNCTION static Gaussian unpack(Scalar const* t) { return {t[0], t[1], t[2], t[3]}; }
  void check() const {
    constexpr char const* where = "lensing::Gaussian";
    check_finite(amp, where, "amp");
    check_positive(sigma, where, "sigma");
    check_finite(center_x, where, "center_x");
    check_finite(center_y, where, "center_y");
  }
};

/// Elliptical Gaussian light profile (lenstronomy "GAUSSIAN_ELLIPSE"):
///   I = amp / (2 pi sigma^2) exp(-R^2 / (2 sigma^2)),  R^2 = q x'^2 + y'^2/q,
/// x', y' along the major and minor axes, (q, phi) from (e1, e2); amp is the
/// total flux for every q.  Parameters (pack order): amp, sigma > 0, e1, e2
/// (|e| < 1), center_x, center_y.
template <class Scalar>
struct GaussianEllipse {
  using scalar_type = Scalar;
  static constexpr int num_params = 6;
  static constexpr char const* param_names[] = {"amp", "sigma", "e1", "e2", "center_x", "center_y"};
  Scalar amp;
  Scalar sigma;
  Scalar e1;
  Scalar e2;
  Scalar center_x;
  Scalar center_y;

  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    auto const l = detail::LightEllipse<Scalar>::make(e1, e2);
    Vec2<Scalar> p;
    Vec2<Scalar> const t = l.transform(Vec2<Scalar>{x - center_x, y - center_y}, p);
    return detail::GaussianRadial<Scalar>(amp, sigma, t.x * t.x + t.y * t.y).I;
  }
  template <class Grad>
  KOKKOS_FORCEINLINE_FUNCTION Vec2<Scalar> surface_brightness_vjp(Scalar x, Scalar y, Scalar g, Grad grad) const {
    auto const l = detail::LightEllipse<Scalar>::make(e1, e2);
    Vec2<Scalar> p;
    Vec2<Scalar> const t = l.transform(Vec2<Scalar>{x - center_x, y - center_y}, p);
    detail::GaussianRadial<Scalar> const s(amp, sigma, t.x * t.x + t.y * t.y);
    grad[0] += g * s.d_amp;
    grad[1] += g * s.d_sigma;
    Scalar const c = Scalar(2) * g * s.d_R2;
    return l.template shape_vjp<2>(e1, e2, p, Vec2<Scalar>{c * t.x, c * t.y}, grad);
  }
  KOKKOS_INLINE_FUNCTION void pack(Scalar* t) const {
    t[0] = amp;
    t[1] = sigma;
    t[2] = e1;
    t[3] = e2;
    t[4] = center_x;
    t[5] = center_y;
  }
  KOKKOS_INLINE_FUNCTION static GaussianEllipse unpack(Scalar const* t) { return {t[0], t[1], t[2], t[3], t[4], t[5]}; }
  void check() const {
    constexpr char const* where = "lensing::GaussianEllipse";
    check_finite(amp, where, "amp");
    check_positive(sigma, where, "sigma");
    check_ellipticity(e1, e2, where);
    check_finite(center_x, where, "center_x");
    check_finite(center_y, where, "center_y");
  }
};

}  // namespace lensing

#endif  // LENSING_SOURCES_GAUSSIAN_HPP
