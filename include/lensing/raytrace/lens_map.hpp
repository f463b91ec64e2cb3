#ifndef LENSING_RAYTRACE_LENS_MAP_HPP
#define LENSING_RAYTRACE_LENS_MAP_HPP

/// \file
/// The lens map beta(x) and its Jacobian A = d beta / d x at a point, for any
/// lens: single-plane lenses (beta = x - alpha, A = I - H, symmetric) and
/// lenses that provide their own source_position / jacobian (multi-plane,
/// where A is not symmetric).  Used by the image finder, the critical-curve
/// extraction and the time-delay code.

#include <lensing/core/math.hpp>
#include <lensing/core/vec2.hpp>
#include <lensing/core/views.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/mass_profile.hpp>

#include <type_traits>
#include <utility>

namespace lensing {

/// Full 2x2 Jacobian of the lens map, A = [[a11, a12], [a21, a22]],
/// a_ij = d beta_i / d x_j (dimensionless).
template <class Scalar>
struct LensJacobian {
  Scalar a11, a12, a21, a22;
  KOKKOS_INLINE_FUNCTION constexpr Scalar det() const { return a11 * a22 - a12 * a21; }
  KOKKOS_INLINE_FUNCTION constexpr Scalar trace() const { return a11 + a22; }
  /// Signed magnification 1/det A.
  KOKKOS_INLINE_FUNCTION constexpr Scalar magnification() const { return Scalar(1) / det(); }
  /// A v.
  KOKKOS_INLINE_FUNCTION constexpr Vec2<Scalar> apply(Vec2<Scalar> const& v) const {
    return {a11 * v.x + a12 * v.y, a21 * v.x + a22 * v.y};
  }
  /// A^T v.
  KOKKOS_INLINE_FUNCTION constexpr Vec2<Scalar> apply_transpose(Vec2<Scalar> const& v) const {
    return {a11 * v.x + a21 * v.y, a12 * v.x + a22 * v.y};
  }
  /// A^{-1} r (Cramer; the caller guards det != 0).
  KOKKOS_INLINE_FUNCTION constexpr Vec2<Scalar> solve(Vec2<Scalar> const& r) const {
    Scalar const d = det();
    return {(a22 * r.x - a12 * r.y) / d, (a11 * r.y - a21 * r.x) / d};
  }
  /// I - H for a single-plane Hessian.
  KOKKOS_INLINE_FUNCTION static constexpr LensJacobian from_hessian(Hessian<Scalar> const& h) {
    return {Scalar(1) - h.xx, -h.xy, -h.xy, Scalar(1) - h.yy};
  }
};

namespace detail {
template <class L, class = void>
struct has_source_position : std::false_type {};
template <class L>
struct has_source_position<L, std::void_t<decltype(std::declval<L const&>().source_position(
                                  std::declval<typename L::scalar_type>(), std::declval<typename L::scalar_type>()))>>
    : std::true_type {};
template <class L, class = void>
struct has_jacobian : std::false_type {};
template <class L>
struct has_jacobian<L, std::void_t<decltype(std::declval<L const&>().jacobian(
                           std::declval<typename L::scalar_type>(), std::declval<typename L::scalar_type>()))>>
    : std::true_type {};
template <class L, class = void>
struct lens_memory_space_is_host : std::true_type {};
template <class L>
struct lens_memory_space_is_host<L, std::void_t<typename L::memory_space>>
    : std::integral_constant<bool,
                             Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename L::memory_space>::accessible> {};
}  // namespace detail

/// Whether L can be used by the lens-equation tools: scalar_type, and either
/// deflection + hessian (single plane) or source_position + jacobian.
template <class L>
constexpr bool is_lens_map_v = (detail::has_lens_interface<L>::value ||
                                (detail::has_source_position<L>::value && detail::has_jacobian<L>::value));

namespace detail {
template <class L>
struct is_composite : std::false_type {};
template <class... P>
struct is_composite<Composite<P...>> : std::true_type {};

template <class L>
KOKKOS_FORCEINLINE_FUNCTION Vec2<typename L::scalar_type> inline_deflection(L const& l, typename L::scalar_type x,
                                                                            typename L::scalar_type y);
template <class... P, std::size_t... I>
KOKKOS_FORCEINLINE_FUNCTION Vec2<typename Composite<P...>::scalar_type> composite_deflection(
    Composite<P...> const& c, typename Composite<P...>::scalar_type x, typename Composite<P...>::scalar_type y,
    std::index_sequence<I...>) {
  Vec2<typename Composite<P...>::scalar_type> r{0, 0};
  ((r += inline_deflection(c.template get<I>(), x, y)), ...);
  return r;
}
/// The deflection of l, with Composites unpacked into their components in a
/// force-inlined fold (the same sum, in the same order, as
/// Composite::deflection): Composite::deflection is a plain inline function
/// that GCC stops inlining when a translation unit has many call sites,
/// which stops pixel loops vectorising.
template <class L>
KOKKOS_FORCEINLINE_FUNCTION Vec2<typename L::scalar_type> inline_deflection(L const& l, typename L::scalar_type x,
                                                                            typename L::scalar_type y) {
  if constexpr (is_composite<L>::value) {
    return composite_deflection(l, x, y, std::make_index_sequence<L::num_components>{});
  } else {
    return l.deflection(x, y);
  }
}

template <class L>
KOKKOS_FORCEINLINE_FUNCTION Hessian<typename L::scalar_type> inline_hessian(L const& l, typename L::scalar_type x,
                                                                            typename L::scalar_type y);
template <class... P, std::size_t... I>
KOKKOS_FORCEINLINE_FUNCTION Hessian<typename Composite<P...>::scalar_type> composite_hessian(
    Composite<P...> const& c, typename Composite<P...>::scalar_type x, typename Composite<P...>::scalar_type y,
    std::index_sequence<I...>) {
  Hessian<typename Composite<P...>::scalar_type> h{0, 0, 0};
  ((h += inline_hessian(c.template get<I>(), x, y)), ...);
  return h;
}
/// As inline_deflection, for the Hessian.
template <class L>
KOKKOS_FORCEINLINE_FUNCTION Hessian<typename L::scalar_type> inline_hessian(L const& l, typename L::scalar_type x,
                                                                            typename L::scalar_type y) {
  if constexpr (is_composite<L>::value) {
    return composite_hessian(l, x, y, std::make_index_sequence<L::num_components>{});
  } else {
    return l.hessian(x, y);
  }
}

template <class L>
KOKKOS_FORCEINLINE_FUNCTION void inline_deflection_vjp(L const& l, typename L::scalar_type x, typename L::scalar_type y,
                                                       Vec2<typename L::scalar_type> g, typename L::scalar_type* grad);
template <class... P, std::size_t... I>
KOKKOS_FORCEINLINE_FUNCTION void composite_deflection_vjp(Composite<P...> const& c,
                                                          typename Composite<P...>::scalar_type x,
                                                          typename Composite<P...>::scalar_type y,
                                                          Vec2<typename Composite<P...>::scalar_type> g,
                                                          typename Composite<P...>::scalar_type* grad,
                                                          std::index_sequence<I...>) {
  (inline_deflection_vjp(c.template get<I>(), x, y, g, grad + Composite<P...>::template offset<I>), ...);
}
/// As inline_deflection, for the deflection VJP.
template <class L>
KOKKOS_FORCEINLINE_FUNCTION void inline_deflection_vjp(L const& l, typename L::scalar_type x, typename L::scalar_type y,
                                                       Vec2<typename L::scalar_type> g, typename L::scalar_type* grad) {
  if constexpr (is_composite<L>::value) {
    composite_deflection_vjp(l, x, y, g, grad, std::make_index_sequence<L::num_components>{});
  } else {
    l.deflection_vjp(x, y, g, grad);
  }
}
}  // namespace detail

/// beta(x, y): where the ray through (x, y) lands on the source plane [arcsec].
template <class Lens>
KOKKOS_INLINE_FUNCTION Vec2<typename Lens::scalar_type> lens_map(Lens const& lens, typename Lens::scalar_type x,
                                                                 typename Lens::scalar_type y) {
  if constexpr (detail::has_source_position<Lens>::value) {
    return lens.source_position(x, y);
  } else {
    auto const a = lens.deflection(x, y);
    return {x - a.x, y - a.y};
  }
}

/// A(x, y) = d beta / d x.
template <class Lens>
KOKKOS_INLINE_FUNCTION LensJacobian<typename Lens::scalar_type> lens_jacobian(Lens const& lens,
                                                                              typename Lens::scalar_type x,
                                                                              typename Lens::scalar_type y) {
  if constexpr (detail::has_jacobian<Lens>::value) {
    return lens.jacobian(x, y);
  } else {
    return LensJacobian<typename Lens::scalar_type>::from_hessian(lens.hessian(x, y));
  }
}

namespace detail {
/// static_asserts for host-side lens-equation tools.
template <class Lens>
constexpr bool check_host_lens() {
  static_assert(is_lens_map_v<Lens>,
                "lensing: the lens must provide deflection and hessian (a MassProfile, Composite, Population, "
                "LensSum) or source_position and jacobian (MultiPlaneLens)");
  static_assert(lens_memory_space_is_host<Lens>::value,
                "lensing: this tool evaluates the lens on the host: its data must be in host-accessible memory");
  return true;
}
}  // namespace detail

}  // namespace lensing

#endif  // LENSING_RAYTRACE_LENS_MAP_HPP
