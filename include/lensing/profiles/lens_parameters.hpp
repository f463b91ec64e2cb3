#ifndef LENSING_PROFILES_LENS_PARAMETERS_HPP
#define LENSING_PROFILES_LENS_PARAMETERS_HPP

/// \file
/// The flat parameter vector of any lens, including lenses with fixed parts
/// that are not parameters (a MultiPlaneLens's distance factors, the maps of
/// an interpolated lens): the count, pack, and a copy of a prototype lens
/// with its parameters replaced — what a LensModel and a Simulator need to
/// build one lens per image from a row of parameters.

#include <lensing/profiles/mass_profile.hpp>
#include <lensing/profiles/population.hpp>

#include <type_traits>
#include <utility>

namespace lensing {

namespace detail {
template <class L, class = void>
struct has_deflection_interface : std::false_type {};
template <class L>
struct has_deflection_interface<L, std::void_t<typename L::scalar_type, decltype(std::declval<L const&>().deflection(
                                                                            std::declval<typename L::scalar_type>(),
                                                                            std::declval<typename L::scalar_type>()))>>
    : std::true_type {};

template <class L>
struct is_lens_sum : std::false_type {};
template <class A, class B>
struct is_lens_sum<LensSum<A, B>> : std::true_type {};

// A lens that rebuilds itself from a prototype (MultiPlaneLens: the planes'
// parameters replaced, the distance factors kept).
template <class L, class = void>
struct has_with_params : std::false_type {};
template <class L>
struct has_with_params<L, std::void_t<decltype(L::num_params), decltype(std::declval<L const&>().with_params(
                                                                   std::declval<typename L::scalar_type const*>()))>>
    : std::true_type {};
}  // namespace detail

/// Whether L can be rendered: scalar_type and deflection(x, y) (a
/// MassProfile, Composite, LensSum, Population, MultiPlaneLens,
/// InterpolatedLens or its view).
template <class L>
constexpr bool is_deflector_v = detail::has_deflection_interface<L>::value;

/// Number of parameters of a lens in its flat vector: a MassProfile's
/// num_params; a LensSum's two parts' (first, then second); a lens with
/// with_params (MultiPlaneLens) its num_params; anything else (a Population,
/// an interpolated lens: fixed, not parameters) none.
template <class L, class = void>
struct lens_param_count : std::integral_constant<int, 0> {};
template <class L>
struct lens_param_count<L, std::enable_if_t<is_mass_profile_v<L> || detail::has_with_params<L>::value>>
    : std::integral_constant<int, L::num_params> {};
template <class A, class B>
struct lens_param_count<LensSum<A, B>, void>
    : std::integral_constant<int, lens_param_count<A>::value + lens_param_count<B>::value> {};

/// Whether a lens is its parameters and nothing else (a MassProfile, or a
/// LensSum of those): then L::unpack-like construction needs no prototype.
template <class L>
struct lens_is_parametric : std::integral_constant<bool, is_mass_profile_v<L>> {};
template <class A, class B>
struct lens_is_parametric<LensSum<A, B>>
    : std::integral_constant<bool, lens_is_parametric<A>::value && lens_is_parametric<B>::value> {};

/// t[0, lens_param_count) = the lens's parameters (see lens_param_count).
template <class L>
KOKKOS_INLINE_FUNCTION void pack_lens(L const& lens, typename L::scalar_type* t) {
  if constexpr (detail::is_lens_sum<L>::value) {
    pack_lens(lens.first, t);
    pack_lens(lens.second, t + lens_param_count<std::decay_t<decltype(lens.first)>>::value);
  } else if constexpr (is_mass_profile_v<L> || detail::has_with_params<L>::value) {
    lens.pack(t);
  }
}

/// A copy of `prototype` with its parameters from t[0, lens_param_count):
/// a MassProfile is L::unpack(t), a LensSum part by part, a MultiPlaneLens
/// its with_params(t) (distances kept); a lens without parameters is the
/// prototype itself.
template <class L>
KOKKOS_INLINE_FUNCTION L lens_with_params(L const& prototype, typename L::scalar_type const* t) {
  if constexpr (detail::is_lens_sum<L>::value) {
    using A = std::decay_t<decltype(prototype.first)>;
    return L{lens_with_params(prototype.first, t), lens_with_params(prototype.second, t + lens_param_count<A>::value)};
  } else if constexpr (is_mass_profile_v<L>) {
    (void)prototype;
    return L::unpack(t);
  } else if constexpr (detail::has_with_params<L>::value) {
    return prototype.with_params(t);
  } else {
    (void)t;
    return prototype;
  }
}

}  // namespace lensing

#endif  // LENSING_PROFILES_LENS_PARAMETERS_HPP
