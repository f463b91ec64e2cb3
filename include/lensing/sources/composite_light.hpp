#ifndef LENSING_SOURCES_COMPOSITE_LIGHT_HPP
#define LENSING_SOURCES_COMPOSITE_LIGHT_HPP

#include <lensing/core/component_pack.hpp>
#include <lensing/core/vec2.hpp>
#include <lensing/sources/light_profile.hpp>

#include <type_traits>

namespace lensing {

/// Compile-time sum of light profiles, itself a LightProfile.
///
/// `CompositeLight<SersicEllipse<double>, Shapelets<double, 4>>` shines with
/// the sum of its components' surface brightness; its flat parameter vector
/// is the components' vectors one after the other.  The components, their
/// parameter layout (offsets, param_names, component_of_param), get<I>,
/// pack, unpack and check come from ComponentPack (core/component_pack.hpp),
/// shared with the mass Composite.  Trivially copyable; the sum is a fold
/// over an aggregate Tuple.
template <class... L>
struct CompositeLight : ComponentPack<CompositeLight<L...>, L...> {
  static_assert((check_light_profile<L>() && ...), "lensing::CompositeLight: every component must be a LightProfile");
  using base_type = ComponentPack<CompositeLight<L...>, L...>;
  using typename base_type::Scalar;

  CompositeLight() = default;
  KOKKOS_FUNCTION constexpr explicit CompositeLight(L const&... l) : base_type(l...) {}

  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    Scalar r(0);
    this->for_each([&](auto const& c) LENSING_FORCEINLINE_LAMBDA { r += c.surface_brightness(x, y); });
    return r;
  }
  template <class Grad>
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> surface_brightness_vjp(Scalar x, Scalar y, Scalar g, Grad grad) const {
    Vec2<Scalar> r{Scalar(0), Scalar(0)};
    this->for_each_offset([&](auto const& c, int off)
                              LENSING_FORCEINLINE_LAMBDA { r += c.surface_brightness_vjp(x, y, g, grad + off); });
    return r;
  }
};

/// CompositeLight of the given profiles (types deduced).
template <class... L>
KOKKOS_FUNCTION constexpr CompositeLight<L...> make_composite_light(L const&... l) {
  return CompositeLight<L...>(l...);
}

}  // namespace lensing

#endif  // LENSING_SOURCES_COMPOSITE_LIGHT_HPP
