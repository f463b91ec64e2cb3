#ifndef LENSING_SOURCES_DETAIL_LIGHT_ELLIPSE_HPP
#define LENSING_SOURCES_DETAIL_LIGHT_ELLIPSE_HPP

/// \file
/// lenstronomy's elliptical coordinates for light profiles
/// (`param_util.transform_e1e2_product_average`): with q, phi from (e1, e2)
/// and p = R(phi)^T (x - cx, y - cy) the offset in the major-axis frame,
///   xt1 = sqrt(q) p.x,  xt2 = p.y / sqrt(q),   R^2 = xt1^2 + xt2^2,
/// so the profile's half-light radius is the geometric mean of the axes and
/// the transform keeps areas (total flux does not depend on q).

#include <lensing/core/math.hpp>
#include <lensing/core/vec2.hpp>
#include <lensing/profiles/detail/elliptical.hpp>

#include <type_traits>

namespace lensing {
namespace detail {

template <class Scalar>
struct LightEllipse {
  EllipticalFrame<Scalar> frame;
  Scalar sq;      // sqrt(q)
  Scalar inv_sq;  // 1 / sqrt(q): a product per point rather than a division (loops hoist make)

  KOKKOS_INLINE_FUNCTION static LightEllipse make(Scalar e1, Scalar e2) {
    LightEllipse l;
    l.frame = EllipticalFrame<Scalar>::from_ellipticity(e1, e2);
    l.sq = math::sqrt(l.frame.q);
    l.inv_sq = Scalar(1) / l.sq;
    return l;
  }
  /// (xt1, xt2) of the sky offset d; p receives the major-axis offset.
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> transform(Vec2<Scalar> d, Vec2<Scalar>& p) const {
    p = frame.to_major(d);
    return {p.x * sq, p.y * inv_sq};
  }
  /// Given gt = g dI/d(xt1, xt2), the cotangents of q and phi, and the
  /// return value g dI/d(offset) in the sky frame.
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> vjp(Vec2<Scalar> p, Vec2<Scalar> gt, Scalar& q_bar, Scalar& phi_bar) const {
    // xt1 = p.x sqrt(q), xt2 = p.y / sqrt(q): d/dq = xt1/(2q), -xt2/(2q).
    // Products by per-profile constants (0.5/sqrt(q), inv_sq / (2q)), which
    // pixel loops hoist: no division per point.
    Scalar const hq = Scalar(0.5) * inv_sq, hq_q = hq / frame.q;
    q_bar = gt.x * p.x * hq - gt.y * p.y * hq_q;
    phi_bar = gt.x * sq * p.y - gt.y * p.x * inv_sq;
    return frame.to_sky(Vec2<Scalar>{gt.x * sq, gt.y * inv_sq});
  }
  /// Shared tail of the elliptical light VJPs: given gt = g dI/d(xt1, xt2)
  /// at the major-axis offset p, adds the cotangents of (e1, e2, center_x,
  /// center_y) to grad[K], ..., grad[K + 3] (compile-time indices keep pixel
  /// loops vectorisable) and returns g dI/d(offset) in the sky frame.
  template <int K, class Grad>
  KOKKOS_FORCEINLINE_FUNCTION Vec2<Scalar> shape_vjp(Scalar e1, Scalar e2, Vec2<Scalar> p, Vec2<Scalar> gt,
                                                     Grad& grad) const {
    Scalar q_bar, phi_bar;
    Vec2<Scalar> const gd = vjp(p, gt, q_bar, phi_bar);
    Vec2<Scalar> const ge = EllipticalFrame<Scalar>::ellipticity_vjp(e1, e2, q_bar, phi_bar);
    grad[K] += ge.x;
    grad[K + 1] += ge.y;
    grad[K + 2] -= gd.x;
    grad[K + 3] -= gd.y;
    return gd;
  }
};

}  // namespace detail
}  // namespace lensing

#endif  // LENSING_SOURCES_DETAIL_LIGHT_ELLIPSE_HPP
