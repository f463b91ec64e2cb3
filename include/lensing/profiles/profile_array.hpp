#ifndef LENSING_PROFILES_PROFILE_ARRAY_HPP
#define LENSING_PROFILES_PROFILE_ARRAY_HPP

/// \file
/// ProfileArray<Profile, N>: a fixed number N of mass profiles of one type
/// (e.g. N TNFW subhaloes) as one trivially copyable MassProfile, whose flat
/// parameter vector is the members' vectors one after the other — the
/// compile-time-sized counterpart of Population (profiles/population.hpp),
/// usable wherever a MassProfile is: inside a Composite, a LensModel, a
/// Simulator drawing every member's parameters from its prior table.

#include <lensing/core/errors.hpp>
#include <lensing/profiles/mass_profile.hpp>

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

namespace lensing {

namespace detail {
template <class P, std::size_t... I>
constexpr std::array<char const*, sizeof...(I)> repeated_param_names(std::index_sequence<I...>) {
  return {{P::param_names[I % std::size_t(P::num_params)]...}};
}
}  // namespace detail

/// N mass profiles of one type summed (deflection, potential, convergence,
/// Hessian and their VJPs), itself a MassProfile.
///
/// Parameters: member m's Profile::num_params parameters start at
/// m * Profile::num_params (param_names repeats the member's names N times;
/// the Simulator names them `<group><c>.<member_prefix><m>.<name>`, e.g.
/// lens2.subhalo0.Rs: model/parameter_names.hpp).  A
/// loop over the members per point; the members are a plain array, so the
/// type is trivially copyable and captured by value in kernels (sizeof is N
/// times the profile's: for large or varying counts use Population, which
/// holds a View but is not a per-image model).
template <class Profile, int N>
struct ProfileArray {
  static_assert(check_mass_profile<Profile>(), "lensing::ProfileArray: the member type must be a MassProfile");
  static_assert(N >= 1, "lensing::ProfileArray: needs at least one member");
  using scalar_type = typename Profile::scalar_type;
  using Scalar = scalar_type;
  using member_type = Profile;
  static constexpr int num_members = N;
  static constexpr int member_params = Profile::num_params;
  static constexpr int num_params = N * Profile::num_params;
  /// Prefix of a member's parameter names in a Simulator's table.
  static constexpr char const* member_prefix = "subhalo";
  static constexpr std::array<char const*, std::size_t(num_params)> param_names =
      detail::repeated_param_names<Profile>(std::make_index_sequence<std::size_t(num_params)>{});

  Profile members[N];

  KOKKOS_INLINE_FUNCTION Profile const& member(int m) const { return members[m]; }

  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Vec2<Scalar> a{Scalar(0), Scalar(0)};
    for (int m = 0; m < N; ++m)
      a += members[m].deflection(x, y);
    return a;
  }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const {
    Scalar s(0);
    for (int m = 0; m < N; ++m)
      s += members[m].potential(x, y);
    return s;
  }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const {
    Scalar s(0);
    for (int m = 0; m < N; ++m)
      s += members[m].convergence(x, y);
    return s;
  }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    Hessian<Scalar> h{Scalar(0), Scalar(0), Scalar(0)};
    for (int m = 0; m < N; ++m)
      h += members[m].hessian(x, y);
    return h;
  }
  KOKKOS_INLINE_FUNCTION void deflection_vjp(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad) const {
    for (int m = 0; m < N; ++m)
      members[m].deflection_vjp(x, y, g, grad + m * member_params);
  }
  KOKKOS_INLINE_FUNCTION void potential_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    for (int m = 0; m < N; ++m)
      members[m].potential_vjp(x, y, g, grad + m * member_params);
  }
  KOKKOS_INLINE_FUNCTION void convergence_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    for (int m = 0; m < N; ++m)
      members[m].convergence_vjp(x, y, g, grad + m * member_params);
  }
  /// Present when used (needs Profile::hessian_vjp).
  KOKKOS_INLINE_FUNCTION void hessian_vjp(Scalar x, Scalar y, Hessian<Scalar> hbar, Scalar* grad) const {
    for (int m = 0; m < N; ++m)
      members[m].hessian_vjp(x, y, hbar, grad + m * member_params);
  }

  KOKKOS_INLINE_FUNCTION void pack(Scalar* t) const {
    for (int m = 0; m < N; ++m)
      members[m].pack(t + m * member_params);
  }
  KOKKOS_INLINE_FUNCTION static ProfileArray unpack(Scalar const* t) {
    ProfileArray a{};
    for (int m = 0; m < N; ++m)
      a.members[m] = Profile::unpack(t + m * member_params);
    return a;
  }
  /// Host: throws std::invalid_argument naming the member
  /// ("lensing::ProfileArray: subhalo 1: <the profile's message>").
  void check() const {
    for (int m = 0; m < N; ++m) {
      try {
        members[m].check();
      } catch (std::invalid_argument const& e) {
        throw_invalid_argument("lensing::ProfileArray",
                               std::string(member_prefix) + " " + std::to_string(m) + ": " + e.what());
      }
    }
  }
};

}  // namespace lensing

#endif  // LENSING_PROFILES_PROFILE_ARRAY_HPP
