#ifndef LENSING_CORE_COMPONENT_PACK_HPP
#define LENSING_CORE_COMPONENT_PACK_HPP

/// \file
/// The parameter packing of compile-time composites (Composite<P...> of mass
/// profiles, CompositeLight<L...> of light profiles): the components in an
/// aggregate Tuple, their flat parameter vectors one after the other.

#include <lensing/core/tuple.hpp>

#include <Kokkos_Macros.hpp>

#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

/// Force-inlines a lambda's call operator: `[&](auto const& c)
/// LENSING_FORCEINLINE_LAMBDA { ... }`.  The composites' operations are
/// lambdas passed to ComponentPack's folds; GCC does not always inline a
/// plain lambda around a large component (a profile's VJP), and the pixel
/// loop calling the composite then stops vectorising.  GCC, Clang and nvcc
/// (host and device) accept the attribute in this position.
#if defined(__GNUC__) || defined(__clang__)
#define LENSING_FORCEINLINE_LAMBDA __attribute__((always_inline))
#else
#define LENSING_FORCEINLINE_LAMBDA
#endif

namespace lensing {

namespace detail {
/// o[0] = 0, o[i + 1] = o[i] + N_i: where block i starts in a vector made of
/// blocks of sizes N_0, N_1, ... one after the other (o.back() is the total).
template <int... N>
constexpr std::array<int, sizeof...(N) + 1> prefix_offsets() {
  std::array<int, sizeof...(N) + 1> o{};
  int const n[] = {0, N...};
  for (std::size_t i = 0; i < sizeof...(N); ++i)
    o[i + 1] = o[i] + n[i + 1];
  return o;
}

/// names[k + j] = P::param_names[j] for j < P::num_params; returns k + P::num_params.
template <class P, std::size_t N>
constexpr std::size_t append_param_names(std::array<char const*, N>& names, std::size_t k) {
  // sizeof makes Clang and nvcc instantiate the definition of a class
  // template's `static constexpr char const* param_names[] = {...}` (else
  // an array of unknown bound, not readable in a constant expression).
  static_assert(sizeof(P::param_names) >= sizeof(char const*) * std::size_t(P::num_params),
                "lensing: param_names must have num_params entries");
  for (int j = 0; j < P::num_params; ++j)
    names[k++] = P::param_names[j];
  return k;
}

/// Every P's param_names (its first P::num_params), one after the other.
template <class... P>
constexpr auto concatenated_param_names() {
  std::array<char const*, (0 + ... + P::num_params)> names{};
  std::size_t k = 0;
  ((k = append_param_names<P>(names, k)), ...);
  return names;
}

template <class T, class... Rest>
struct first_type {
  using type = T;
};

/// Whether P has what packing needs: scalar_type, num_params, param_names,
/// pack, unpack and check.
template <class P, class = void>
struct has_packed_params : std::false_type {};
template <class P>
struct has_packed_params<P,
                         std::void_t<typename P::scalar_type, decltype(P::num_params), decltype(P::param_names[0]),
                                     decltype(std::declval<P const&>().pack(std::declval<typename P::scalar_type*>())),
                                     decltype(P::unpack(std::declval<typename P::scalar_type const*>())),
                                     decltype(std::declval<P const&>().check())>> : std::true_type {};
}  // namespace detail

/// Layout of a flat parameter vector made of the vectors of P... one after
/// the other: component I's num_params parameters start at offset<I>;
/// param_names repeats each component's names; component_of_param(k) is the
/// component that parameter k belongs to.  Stateless (constants only).
template <class... P>
struct ParamLayout {
  static constexpr int num_components = sizeof...(P);
  static constexpr std::array<int, sizeof...(P) + 1> offsets = detail::prefix_offsets<P::num_params...>();
  static constexpr int num_params = offsets[sizeof...(P)];
  static constexpr std::array<char const*, num_params> param_names = detail::concatenated_param_names<P...>();
  /// Offset of component I's parameters in the flat vector (a constant, so
  /// usable in device code).
  template <std::size_t I>
  static constexpr int offset = detail::prefix_offsets<P::num_params...>()[I];

  /// Index of the component that parameter k (0 <= k < num_params) belongs to.
  static constexpr int component_of_param(int k) {
    int c = 0;
    while (c + 1 < num_components && offsets[c + 1] <= k)
      ++c;
    return c;
  }
};

/// The shared body of a compile-time composite `Derived` of components P...
/// (CRTP base of Composite and CompositeLight): the components in an
/// aggregate Tuple (trivially copyable when every P is, so the composite can
/// be captured by value in kernels, which std::tuple cannot), the
/// ParamLayout of its flat parameter vector, pack / unpack / check over that
/// vector, and the folds over the components that the composite's own
/// operations are written with:
///   - for_each(f): f(component) for each component in order (sums);
///   - for_each_offset(f): f(component, offset) with the component's offset
///     in the flat vector (each VJP into its own block, grad + offset).
/// Both are force-inlined folds over std::index_sequence; with lambdas
/// marked LENSING_FORCEINLINE_LAMBDA a composite operation inlines into its
/// caller's loop like a hand-written sum.
///
/// Derived needs a constructor from `P const&...` (unpack builds one).  The
/// components must share one scalar_type and provide num_params,
/// param_names, pack, unpack and check.
template <class Derived, class... P>
struct ComponentPack : ParamLayout<P...> {
  static_assert(sizeof...(P) > 0, "lensing::ComponentPack: a composite needs at least one component");
  static_assert((detail::has_packed_params<P>::value && ...),
                "lensing::ComponentPack: every component needs scalar_type, num_params, param_names, pack, unpack "
                "and check");
  using scalar_type = typename detail::first_type<typename P::scalar_type...>::type;
  static_assert((std::is_same<scalar_type, typename P::scalar_type>::value && ...),
                "lensing::ComponentPack: every component of a composite must use the same scalar type");
  using Scalar = scalar_type;
  using Indices = std::index_sequence_for<P...>;
  using layout_type = ParamLayout<P...>;

  Tuple<P...> components;

  ComponentPack() = default;
  KOKKOS_FUNCTION constexpr explicit ComponentPack(P const&... p) : components(p...) {}

  /// Component I.
  template <std::size_t I>
  KOKKOS_INLINE_FUNCTION constexpr auto& get() {
    return lensing::get<I>(components);
  }
  template <std::size_t I>
  KOKKOS_INLINE_FUNCTION constexpr auto const& get() const {
    return lensing::get<I>(components);
  }

  /// theta[offset<I> + j] = component I's parameter j.
  KOKKOS_INLINE_FUNCTION void pack(Scalar* theta) const { pack(theta, Indices{}); }
  /// The composite whose component I is P_I::unpack(theta + offset<I>).
  KOKKOS_INLINE_FUNCTION static Derived unpack(Scalar const* theta) { return unpack(theta, Indices{}); }
  /// Host: each component's check in order; the first failure propagates
  /// unchanged (std::invalid_argument naming the component's type and the
  /// offending parameter).
  void check() const { check(Indices{}); }

  /// f(component) for each component, in order.
  template <class F>
  KOKKOS_FORCEINLINE_FUNCTION void for_each(F&& f) const {
    lensing::for_each(components, f);
  }
  /// f(component, offset) for each component, in order; offset (an int, the
  /// constant offset<I>) is where the component's parameters start in the
  /// flat vector.
  template <class F>
  KOKKOS_FORCEINLINE_FUNCTION void for_each_offset(F&& f) const {
    for_each_offset(f, Indices{});
  }

 private:
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION void pack(Scalar* theta, std::index_sequence<I...>) const {
    (lensing::get<I>(components).pack(theta + layout_type::template offset<I>), ...);
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION static Derived unpack(Scalar const* theta, std::index_sequence<I...>) {
    return Derived(P::unpack(theta + layout_type::template offset<I>)...);
  }
  template <std::size_t... I>
  void check(std::index_sequence<I...>) const {
    (lensing::get<I>(components).check(), ...);
  }
  template <class F, std::size_t... I>
  KOKKOS_FORCEINLINE_FUNCTION void for_each_offset(F& f, std::index_sequence<I...>) const {
    (f(lensing::get<I>(components), int(layout_type::template offset<I>)), ...);
  }
};

}  // namespace lensing

#endif  // LENSING_CORE_COMPONENT_PACK_HPP
