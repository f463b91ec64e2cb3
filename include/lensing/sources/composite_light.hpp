#ifndef LENSING_SOURCES_COMPOSITE_LIGHT_HPP
#define LENSING_SOURCES_COMPOSITE_LIGHT_HPP

#include <lensing/core/tuple.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/sources/light_profile.hpp>

#include <array>
#include <tuple>
#include <type_traits>

namespace lensing {

/// Compile-time sum of light profiles, itself a LightProfile.
///
/// `CompositeLight<SersicEllipse<double>, Shapelets<double, 4>>` shines with
/// the sum of its components' surface brightness; its flat parameter vector
/// is the components' vectors one after the other (the same layout as the
/// mass Composite, profiles/composite.hpp, whose offset helpers it reuses).
/// Trivially copyable; the sum is a fold over an aggregate Tuple.
template <class... L>
struct CompositeLight {
  static_assert(sizeof...(L) > 0, "lensing::CompositeLight: needs at least one profile");
  static_assert((check_light_profile<L>() && ...), "lensing::CompositeLight: every component must be a LightProfile");
  using scalar_type = typename std::tuple_element<0, std::tuple<typename L::scalar_type...>>::type;
  static_assert((std::is_same<scalar_type, typename L::scalar_type>::value && ...),
                "lensing::CompositeLight: every component must use the same scalar type");
  using Scalar = scalar_type;
  using Indices = std::index_sequence_for<L...>;
  static constexpr int num_components = sizeof...(L);
  static constexpr std::array<int, sizeof...(L) + 1> offsets = detail::param_offsets<L...>();
  static constexpr int num_params = offsets[sizeof...(L)];
  static constexpr std::array<char const*, num_params> param_names = detail::concatenated_param_names<L...>();
  template <std::size_t I>
  static constexpr int offset = detail::param_offsets<L...>()[I];

  Tuple<L...> components;

  CompositeLight() = default;
  KOKKOS_FUNCTION constexpr explicit CompositeLight(L const&... l) : components(l...) {}

  template <std::size_t I>
  KOKKOS_INLINE_FUNCTION constexpr auto& get() {
    return lensing::get<I>(components);
  }
  template <std::size_t I>
  KOKKOS_INLINE_FUNCTION constexpr auto const& get() const {
    return lensing::get<I>(components);
  }

  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    return surface_brightness(x, y, Indices{});
  }
  template <class Grad>
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> surface_brightness_vjp(Scalar x, Scalar y, Scalar g, Grad grad) const {
    return surface_brightness_vjp(x, y, g, grad, Indices{});
  }
  KOKKOS_INLINE_FUNCTION void pack(Scalar* theta) const { pack(theta, Indices{}); }
  KOKKOS_INLINE_FUNCTION static CompositeLight unpack(Scalar const* theta) { return unpack(theta, Indices{}); }
  /// Host: throws std::invalid_argument if a component's parameters are bad.
  void check() const { check(Indices{}); }

 private:
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y, std::index_sequence<I...>) const {
    return (Scalar(0) + ... + lensing::get<I>(components).surface_brightness(x, y));
  }
  template <class Grad, std::size_t... I>
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> surface_brightness_vjp(Scalar x, Scalar y, Scalar g, Grad grad,
                                                             std::index_sequence<I...>) const {
    Vec2<Scalar> r{Scalar(0), Scalar(0)};
    ((r += lensing::get<I>(components).surface_brightness_vjp(x, y, g, grad + offset<I>)), ...);
    return r;
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION void pack(Scalar* theta, std::index_sequence<I...>) const {
    (lensing::get<I>(components).pack(theta + offset<I>), ...);
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION static CompositeLight unpack(Scalar const* theta, std::index_sequence<I...>) {
    return CompositeLight(L::unpack(theta + offset<I>)...);
  }
  template <std::size_t... I>
  void check(std::index_sequence<I...>) const {
    (lensing::get<I>(components).check(), ...);
  }
};

/// CompositeLight of the given profiles (types deduced).
template <class... L>
KOKKOS_FUNCTION constexpr CompositeLight<L...> make_composite_light(L const&... l) {
  return CompositeLight<L...>(l...);
}

}  // namespace lensing

#endif  // LENSING_SOURCES_COMPOSITE_LIGHT_HPP
