#ifndef LENSING_SOURCES_HERNQUIST_LIGHT_HPP
#define LENSING_SOURCES_HERNQUIST_LIGHT_HPP

#include <lensing/core/errors.hpp>
#include <lensing/profiles/hernquist.hpp>
#include <lensing/sources/light_profile.hpp>

namespace lensing {

/// Hernquist light profile (lenstronomy light "HERNQUIST"; Hernquist 1990,
/// ApJ 356, 359): the projection of rho ~ 1/((r/Rs)(1 + r/Rs)^3),
///   I(r) = amp ((2 + X^2) F(X) - 3) / (X^2 - 1)^2,   X = r/Rs,
/// F(X) = arccosh(1/X)/sqrt(1 - X^2) (X < 1), arccos(1/X)/sqrt(X^2 - 1) (X > 1),
/// I = 4 amp / 15 at X = 1 (lenstronomy's amp is sigma0 = rho0 Rs).  The same
/// function as the Hernquist convergence, evaluated by its kernel
/// (profiles/hernquist.hpp: series near X = 1).  r is floored at 1e-5" as in
/// lenstronomy (logarithmic cusp).  Parameters (pack order): amp, Rs > 0
/// [arcsec], center_x, center_y.
template <class Scalar>
struct HernquistLight {
  using scalar_type = Scalar;
  static constexpr int num_params = 4;
  static constexpr char const* param_names[] = {"amp", "Rs", "center_x", "center_y"};
  static constexpr Scalar smoothing = Scalar(1e-5);
  Scalar amp;
  Scalar Rs;
  Scalar center_x;
  Scalar center_y;

  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    Scalar const dx = x - center_x, dy = y - center_y;
    Scalar const r = math::max(math::sqrt(dx * dx + dy * dy), smoothing);
    return amp * detail::HernquistKernel<Scalar>{amp, Rs}.eval(r).KH;
  }
  template <class Grad>
  KOKKOS_FORCEINLINE_FUNCTION Vec2<Scalar> surface_brightness_vjp(Scalar x, Scalar y, Scalar g, Grad grad) const {
    Scalar const dx = x - center_x, dy = y - center_y;
    Scalar const r0 = math::sqrt(dx * dx + dy * dy);
    bool const inside = r0 < smoothing;
    Scalar const r = inside ? smoothing : r0;
    auto const e = detail::HernquistKernel<Scalar>{amp, Rs}.eval(r);
    grad[0] += g * e.KH;
    grad[1] -= g * amp * e.x * e.dKH / Rs;
    Scalar const c = inside ? Scalar(0) : g * amp * e.dKH / (Rs * r);
    grad[2] -= c * dx;
    grad[3] -= c * dy;
    return {c * dx, c * dy};
  }
  KOKKOS_INLINE_FUNCTION void pack(Scalar* t) const {
    t[0] = amp;
    t[1] = Rs;
    t[2] = center_x;
    t[3] = center_y;
  }
  KOKKOS_INLINE_FUNCTION static HernquistLight unpack(Scalar const* t) { return {t[0], t[1], t[2], t[3]}; }
  void check() const {
    constexpr char const* where = "lensing::HernquistLight";
    check_finite(amp, where, "amp");
    check_positive(Rs, where, "Rs");
    check_finite(center_x, where, "center_x");
    check_finite(center_y, where, "center_y");
  }
};

}  // namespace lensing

#endif  // LENSING_SOURCES_HERNQUIST_LIGHT_HPP
