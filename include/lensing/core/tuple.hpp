#ifndef LENSING_CORE_TUPLE_HPP
#define LENSING_CORE_TUPLE_HPP

#include <Kokkos_Macros.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>

namespace lensing {

namespace detail {
template <std::size_t I, class T>
struct TupleLeaf {
  T value;
};

template <class Indices, class... T>
struct TupleImpl;

template <std::size_t... I, class... T>
struct TupleImpl<std::index_sequence<I...>, T...> : TupleLeaf<I, T>... {
  TupleImpl() = default;
  template <bool NonEmpty = (sizeof...(T) > 0), std::enable_if_t<NonEmpty, int> = 0>
  KOKKOS_FUNCTION constexpr explicit TupleImpl(T const&... v) : TupleLeaf<I, T>{v}... {}
};

template <std::size_t I, class T>
KOKKOS_FORCEINLINE_FUNCTION constexpr T& get_leaf(TupleLeaf<I, T>& leaf) {
  return leaf.value;
}
template <std::size_t I, class T>
KOKKOS_FORCEINLINE_FUNCTION constexpr T const& get_leaf(TupleLeaf<I, T> const& leaf) {
  return leaf.value;
}
}  // namespace detail

/// A fixed-size heterogeneous collection usable inside Kokkos kernels.
///
/// `std::tuple` is not trivially copyable, so it cannot be captured by value in
/// a device kernel.  `Tuple<T...>` stores each element in an indexed leaf base
/// (`TupleLeaf<I, T>`); it is trivially copyable whenever every `T` is, and
/// accessed with `lensing::get<I>(t)`.  Compile-time composition of profiles
/// (`Composite<P...>`) is built on it, typically with a fold expression over
/// `std::index_sequence_for<T...>`.
template <class... T>
struct Tuple : detail::TupleImpl<std::index_sequence_for<T...>, T...> {
  using base_type = detail::TupleImpl<std::index_sequence_for<T...>, T...>;
  Tuple() = default;
  /// Construct from one value per element.
  template <bool NonEmpty = (sizeof...(T) > 0), std::enable_if_t<NonEmpty, int> = 0>
  KOKKOS_FUNCTION constexpr explicit Tuple(T const&... v) : base_type(v...) {}
};

/// Deduce a Tuple from its elements.
template <class... T>
KOKKOS_FUNCTION constexpr Tuple<T...> make_tuple(T const&... v) {
  return Tuple<T...>(v...);
}

/// Element I of a Tuple (reference).
template <std::size_t I, class... T>
KOKKOS_FORCEINLINE_FUNCTION constexpr auto& get(Tuple<T...>& t) {
  static_assert(I < sizeof...(T), "lensing::get: index out of range");
  return detail::get_leaf<I>(t);
}
template <std::size_t I, class... T>
KOKKOS_FORCEINLINE_FUNCTION constexpr auto const& get(Tuple<T...> const& t) {
  static_assert(I < sizeof...(T), "lensing::get: index out of range");
  return detail::get_leaf<I>(t);
}

/// Number of elements of a Tuple type.
template <class TupleType>
struct tuple_size;
template <class... T>
struct tuple_size<Tuple<T...>> : std::integral_constant<std::size_t, sizeof...(T)> {};
template <class TupleType>
constexpr std::size_t tuple_size_v = tuple_size<std::remove_cv_t<TupleType>>::value;

/// Type of element I of a Tuple type.
template <std::size_t I, class TupleType>
struct tuple_element {
  using type = std::remove_reference_t<decltype(get<I>(std::declval<TupleType&>()))>;
};
template <std::size_t I, class TupleType>
using tuple_element_t = typename tuple_element<I, TupleType>::type;

namespace detail {
template <class TupleType, class F, std::size_t... I>
KOKKOS_FORCEINLINE_FUNCTION constexpr void for_each_impl(TupleType& t, F& f, std::index_sequence<I...>) {
  (f(get<I>(t)), ...);
}
}  // namespace detail

/// Call f(element) for every element, in order.
template <class... T, class F>
KOKKOS_FORCEINLINE_FUNCTION constexpr void for_each(Tuple<T...>& t, F&& f) {
  detail::for_each_impl(t, f, std::index_sequence_for<T...>{});
}
template <class... T, class F>
KOKKOS_FORCEINLINE_FUNCTION constexpr void for_each(Tuple<T...> const& t, F&& f) {
  detail::for_each_impl(t, f, std::index_sequence_for<T...>{});
}

}  // namespace lensing

#endif  // LENSING_CORE_TUPLE_HPP
