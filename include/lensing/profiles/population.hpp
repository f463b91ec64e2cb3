#ifndef LENSING_PROFILES_POPULATION_HPP
#define LENSING_PROFILES_POPULATION_HPP

#include <lensing/core/errors.hpp>
#include <lensing/core/views.hpp>
#include <lensing/profiles/mass_profile.hpp>

#include <string>
#include <vector>

namespace lensing {

/// A runtime population of mass profiles of one type (e.g. thousands of TNFW
/// subhaloes), held in a View and summed inside the kernel.
///
/// Deflection, potential, convergence and Hessian are the sums over the
/// members (a loop in the kernel, so the cost per evaluation is linear in
/// size()).  Parameters: member m's flat vector is row m of an
/// (size, Profile::num_params) array (see from_params / params); parameter
/// gradients over a whole map come from population_deflection_map_vjp and
/// population_convergence_map_vjp (raytrace/population_vjp.hpp), one row per member.
/// Copy it into kernels by value (it holds a View).
template <class Profile, class MemorySpace>
class Population {
  static_assert(check_mass_profile<Profile>(), "");

 public:
  using profile_type = Profile;
  using scalar_type = typename Profile::scalar_type;
  using memory_space = MemorySpace;
  using Scalar = scalar_type;

  Population() = default;
  /// From a View of profiles (shared, not copied).
  explicit Population(View1D<Profile, MemorySpace> members) : m_members(members) {}

  /// From an (n, Profile::num_params) host array of parameter vectors (pack
  /// order); every member is checked (throws std::invalid_argument naming the
  /// member).  `space` performs the copy to MemorySpace.
  template <class ExecutionSpace>
  static Population from_params(ExecutionSpace const& space, std::vector<Scalar> const& params) {
    check_argument(params.size() % Profile::num_params == 0, "lensing::Population::from_params",
                   "params.size() must be a multiple of num_params = " + std::to_string(Profile::num_params));
    size_t const n = params.size() / Profile::num_params;
    View1D<Profile, MemorySpace> members(Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::Population"), n);
    auto host = Kokkos::create_mirror_view(members);
    for (size_t m = 0; m < n; ++m) {
      host(m) = Profile::unpack(params.data() + m * Profile::num_params);
      try {
        host(m).check();
      } catch (std::invalid_argument const& e) {
        throw_invalid_argument("lensing::Population::from_params", "member " + std::to_string(m) + ": " + e.what());
      }
    }
    Kokkos::deep_copy(space, members, host);
    space.fence();
    return Population(members);
  }

  KOKKOS_INLINE_FUNCTION int size() const { return static_cast<int>(m_members.extent(0)); }
  KOKKOS_INLINE_FUNCTION Profile const& member(int m) const { return m_members(m); }
  View1D<Profile, MemorySpace> const& members() const { return m_members; }

  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Vec2<Scalar> a{Scalar(0), Scalar(0)};
    for (int m = 0; m < size(); ++m)
      a += m_members(m).deflection(x, y);
    return a;
  }
  /// Batched deflection (host row loops, see deflection_batch_capacity):
  /// members outer, points inner, so that the loop over points vectorises for
  /// each member (the loop over members in deflection() is a floating-point
  /// sum, which GCC keeps scalar).  Each point's sum runs over the members in
  /// the same order as deflection().
  KOKKOS_INLINE_FUNCTION void deflection_batch(int n, Scalar const* x, Scalar const* y, Scalar* ax, Scalar* ay) const {
    Scalar px[deflection_batch_capacity], py[deflection_batch_capacity], sx[deflection_batch_capacity],
        sy[deflection_batch_capacity];
    for (int i = 0; i < n; ++i) {  // x, y may alias ax, ay
      px[i] = x[i];
      py[i] = y[i];
      sx[i] = Scalar(0);
      sy[i] = Scalar(0);
    }
    for (int m = 0; m < size(); ++m) {
      auto const p = detail::prepare(m_members(m));
      for (int i = 0; i < n; ++i) {
        Vec2<Scalar> const a = p.deflection(px[i], py[i]);
        sx[i] += a.x;
        sy[i] += a.y;
      }
    }
    for (int i = 0; i < n; ++i) {
      ax[i] = sx[i];
      ay[i] = sy[i];
    }
  }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const {
    Scalar s = 0;
    for (int m = 0; m < size(); ++m)
      s += m_members(m).potential(x, y);
    return s;
  }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const {
    Scalar s = 0;
    for (int m = 0; m < size(); ++m)
      s += m_members(m).convergence(x, y);
    return s;
  }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    Hessian<Scalar> h{Scalar(0), Scalar(0), Scalar(0)};
    for (int m = 0; m < size(); ++m)
      h += m_members(m).hessian(x, y);
    return h;
  }

 private:
  View1D<Profile, MemorySpace> m_members;
};

/// The sum of two lenses (each a MassProfile, a Population, or another
/// LensSum) for the forward maps: e.g. a macro model plus its subhaloes.
template <class A, class B>
struct LensSum {
  using scalar_type = typename A::scalar_type;
  using Scalar = scalar_type;
  static_assert(std::is_same<scalar_type, typename B::scalar_type>::value,
                "lensing::LensSum: both lenses must use the same scalar type");
  A first;
  B second;
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    return first.deflection(x, y) + second.deflection(x, y);
  }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const {
    return first.potential(x, y) + second.potential(x, y);
  }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const {
    return first.convergence(x, y) + second.convergence(x, y);
  }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    return first.hessian(x, y) + second.hessian(x, y);
  }  /// Host: validates both lenses (check_model).
  void check() const {
    check_model(first);
    check_model(second);
  }
};

}  // namespace lensing

#endif  // LENSING_PROFILES_POPULATION_HPP
