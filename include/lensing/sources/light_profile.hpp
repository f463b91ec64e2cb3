#ifndef LENSING_SOURCES_LIGHT_PROFILE_HPP
#define LENSING_SOURCES_LIGHT_PROFILE_HPP

/// \file
/// The LightProfile concept and its compile-time check.
///
/// A LightProfile is a trivially copyable value type, templated on the scalar,
/// usable inside kernels (the mirror of MassProfile).  With x, y the angular
/// position (arcsec) and I the surface brightness (amplitude units per
/// arcsec^2, lenstronomy's `surface_brightness`), it provides:
///
///   using scalar_type = Scalar;
///   static constexpr int num_params;                 // length of the flat vector
///   static constexpr char const* param_names[];      // lenstronomy names, pack order
///   Scalar surface_brightness(Scalar x, Scalar y) const;
///   // Vector-Jacobian product: grad[k] += g dI/dtheta_k, and the return
///   // value is g (dI/dx, dI/dy), the position cotangent that chains the
///   // source light through ray shooting (beta = x - alpha) to the lens.
///   // Grad is Scalar* or any accessor with grad[k] and grad + offset
///   // (StridedGrad below: pixel loops that write per-pixel gradients
///   // column-wise vectorise, where a running sum in grad[k] would not).
///   template <class Grad>
///   Vec2<Scalar> surface_brightness_vjp(Scalar x, Scalar y, Scalar g, Grad grad) const;
///   void pack(Scalar* theta) const;
///   static P unpack(Scalar const* theta);
///   void check() const;                              // host: throws on bad parameters
///
/// Every member function except check() is KOKKOS_INLINE_FUNCTION and finite
/// at every finite (x, y), the profile centre included.

#include <lensing/core/vec2.hpp>

#include <type_traits>
#include <utility>

namespace lensing {

namespace detail {
template <class P, class = void>
struct has_light_profile_interface : std::false_type {};
template <class P>
struct has_light_profile_interface<
    P, std::void_t<typename P::scalar_type, decltype(P::num_params), decltype(P::param_names[0]),
                   decltype(std::declval<P const&>().surface_brightness(std::declval<typename P::scalar_type>(),
                                                                        std::declval<typename P::scalar_type>())),
                   decltype(std::declval<P const&>().surface_brightness_vjp(
                       std::declval<typename P::scalar_type>(), std::declval<typename P::scalar_type>(),
                       std::declval<typename P::scalar_type>(), std::declval<typename P::scalar_type*>())),
                   decltype(std::declval<P const&>().pack(std::declval<typename P::scalar_type*>())),
                   decltype(P::unpack(std::declval<typename P::scalar_type const*>())),
                   decltype(std::declval<P const&>().check())>> : std::true_type {};
}  // namespace detail

/// Whether P models LightProfile (see the file comment).
template <class P>
constexpr bool is_light_profile_v =
    detail::has_light_profile_interface<P>::value&& std::is_trivially_copyable<P>::value;

/// static_assert with readable messages that P is a LightProfile.
template <class P>
constexpr bool check_light_profile() {
  static_assert(detail::has_light_profile_interface<P>::value,
                "lensing: not a LightProfile: needs scalar_type, num_params, param_names, surface_brightness, "
                "surface_brightness_vjp, pack, unpack and check (see lensing/sources/light_profile.hpp)");
  static_assert(std::is_trivially_copyable<P>::value,
                "lensing: a LightProfile must be trivially copyable to be captured by value in kernels");
  return true;
}

/// Gradient accessor with element k at p[k * stride] (see the file comment).
template <class Scalar>
struct StridedGrad {
  Scalar* p;
  long stride;
  KOKKOS_FORCEINLINE_FUNCTION Scalar& operator[](int k) const { return p[k * stride]; }
};
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION StridedGrad<Scalar> operator+(StridedGrad<Scalar> g, int k) {
  return {g.p + k * g.stride, g.stride};
}

/// The empty light profile: I = 0, no parameters.  Use it where a model has
/// no lens light (or no source).
template <class Scalar>
struct NoLight {
  using scalar_type = Scalar;
  static constexpr int num_params = 0;
  static constexpr char const* param_names[1] = {""};
  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar, Scalar) const { return Scalar(0); }
  template <class Grad>
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> surface_brightness_vjp(Scalar, Scalar, Scalar, Grad) const {
    return {Scalar(0), Scalar(0)};
  }
  KOKKOS_INLINE_FUNCTION void pack(Scalar*) const {}
  KOKKOS_INLINE_FUNCTION static NoLight unpack(Scalar const*) { return {}; }
  void check() const {}
};

}  // namespace lensing

#endif  // LENSING_SOURCES_LIGHT_PROFILE_HPP
