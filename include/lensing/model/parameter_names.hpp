#ifndef LENSING_MODEL_PARAMETER_NAMES_HPP
#define LENSING_MODEL_PARAMETER_NAMES_HPP

/// \file
/// Names of the flat parameter vector of a LensModel (model/observation.hpp),
/// the names every prior table, simulator and posterior uses.

#include <lensing/profiles/lens_parameters.hpp>

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lensing {

namespace detail {
template <class C, class = void>
struct has_component_offsets : std::false_type {};
template <class C>
struct has_component_offsets<C, std::void_t<decltype(C::num_components), decltype(C::offsets[0])>> : std::true_type {};

// Names of one profile's parameters, "<group><component>.<name>"; a name
// repeated inside the profile (e.g. the coefficients of a shapelet set, all
// "amp") gets the suffix _0, _1, ... in order.
template <class P>
void append_profile_names(std::vector<std::string>& out, char const* group, int component) {
  for (int k = 0; k < P::num_params; ++k) {
    int repeats = 0, index = 0;
    for (int j = 0; j < P::num_params; ++j)
      if (std::string(P::param_names[j]) == P::param_names[k]) {
        index += j < k ? 1 : 0;
        ++repeats;
      }
    std::string name = std::string(group) + std::to_string(component) + "." + P::param_names[k];
    if (repeats > 1) name += "_" + std::to_string(index);
    out.push_back(name);
  }
}

// A component made of numbered members of one profile type
// (ProfileArray: member_type, num_members, member_prefix).
template <class C, class = void>
struct has_members : std::false_type {};
template <class C>
struct has_members<C, std::void_t<typename C::member_type, decltype(C::num_members), decltype(C::member_prefix)>>
    : std::true_type {};

// Names of one component: a profile's (append_profile_names) or, for a
// component with members, "<group><component>.<prefix><m>.<name>" per member m.
template <class P>
void append_component(std::vector<std::string>& out, char const* group, int component) {
  if constexpr (has_members<P>::value) {
    std::vector<std::string> member;
    append_profile_names<typename P::member_type>(member, "", 0);  // "0.<name>"
    for (int m = 0; m < P::num_members; ++m)
      for (auto const& n : member)
        out.push_back(std::string(group) + std::to_string(component) + "." + P::member_prefix + std::to_string(m) +
                      n.substr(1));
  } else {
    append_profile_names<P>(out, group, component);
  }
}

// Component I of a composite C (Composite, CompositeLight).
template <class C, std::size_t I>
using component_t = std::decay_t<decltype(std::declval<C const&>().template get<I>())>;

template <class C, std::size_t... I>
void append_component_names(std::vector<std::string>& out, char const* group, std::index_sequence<I...>) {
  (append_component<component_t<C, I>>(out, group, int(I)), ...);
}

// Per component (not through the composite's concatenated param_names,
// which nvcc cannot evaluate).
template <class C>
void append_parameter_names(std::vector<std::string>& out, char const* group) {
  if constexpr (has_component_offsets<C>::value)
    append_component_names<C>(out, group, std::make_index_sequence<std::size_t(C::num_components)>{});
  else
    append_component<C>(out, group, 0);
}

// A lens of planes (MultiPlaneLens: num_planes, plane<I>()).
template <class L, class = void>
struct has_planes : std::false_type {};
template <class L>
struct has_planes<L, std::void_t<decltype(L::num_planes), decltype(std::declval<L const&>().template plane<0>())>>
    : std::true_type {};
template <class L, std::size_t I>
using plane_t = std::decay_t<decltype(std::declval<L const&>().template plane<I>())>;

template <class L>
void append_lens_names(std::vector<std::string>& out, std::string const& group, int& next);
template <class L, std::size_t... I>
void append_plane_names(std::vector<std::string>& out, std::string const& group, std::index_sequence<I...>) {
  // Plane p's components are numbered from 0 under "plane<p>.<group>".
  int next[sizeof...(I)] = {};
  (append_lens_names<plane_t<L, I>>(out, "plane" + std::to_string(I) + "." + group, next[I]), ...);
}
template <class C, std::size_t... I>
void append_lens_components(std::vector<std::string>& out, std::string const& group, int& next,
                            std::index_sequence<I...>) {
  ((append_component<component_t<C, I>>(out, group.c_str(), next), ++next), ...);
}
// The names of a lens whose components are numbered from `next` on (which
// is advanced past them): a MultiPlaneLens plane by plane, a LensSum its
// first part then its second, a Composite its components, a lens without
// parameters (an interpolated lens) takes a number and gives no name.
template <class L>
void append_lens_names(std::vector<std::string>& out, std::string const& group, int& next) {
  if constexpr (has_planes<L>::value) {
    append_plane_names<L>(out, group, std::make_index_sequence<std::size_t(L::num_planes)>{});
  } else if constexpr (is_lens_sum<L>::value) {
    append_lens_names<std::decay_t<decltype(std::declval<L const&>().first)>>(out, group, next);
    append_lens_names<std::decay_t<decltype(std::declval<L const&>().second)>>(out, group, next);
  } else if constexpr (has_component_offsets<L>::value) {
    append_lens_components<L>(out, group, next, std::make_index_sequence<std::size_t(L::num_components)>{});
  } else if constexpr (is_mass_profile_v<L>) {
    append_component<L>(out, group.c_str(), next++);
  } else {
    ++next;
  }
}
}  // namespace detail

/// Names of the parameters of a LensModel, in its flat order
/// [lens | source | lens light]: "<group><component>.<name>", group one of
/// `lens`, `source`, `light`, component the index inside a composite (0 for
/// a single profile), name the profile's lenstronomy name — e.g. for
/// LensModel<Composite<SIE, ExternalShear>, SersicEllipse, SersicEllipse>:
/// lens0.theta_E, lens0.e1, ..., lens1.gamma1, ..., source0.amp, ...,
/// light0.center_y.  A name repeated inside one component (the "amp" of
/// each shapelet coefficient) is numbered: source0.amp_0, source0.amp_1, ...
/// The members of a ProfileArray (profiles/profile_array.hpp) are named
/// "<group><component>.<member_prefix><m>.<name>", e.g. lens2.subhalo0.Rs.
/// A MultiPlaneLens's planes are named "plane<p>.lens<c>.<name>", c the
/// component inside plane p (e.g. plane0.lens1.gamma1, plane1.lens0.theta_E);
/// a LensSum numbers its first part's components, then its second's; a lens
/// without parameters (an InterpolatedLensView) takes a component number and
/// has no name: LensSum<InterpolatedLensView, Composite<SIE, ExternalShear>>
/// gives lens1.theta_E, ..., lens2.gamma1, ...
/// These are the names a Simulator's prior table and a Posterior use.
template <class Model>
std::vector<std::string> model_parameter_names() {
  std::vector<std::string> names;
  int component = 0;
  detail::append_lens_names<typename Model::lens_type>(names, "lens", component);
  detail::append_parameter_names<typename Model::source_type>(names, "source");
  detail::append_parameter_names<typename Model::lens_light_type>(names, "light");
  return names;
}

}  // namespace lensing

#endif  // LENSING_MODEL_PARAMETER_NAMES_HPP
