#ifndef LENSING_RAYTRACE_POPULATION_VJP_HPP
#define LENSING_RAYTRACE_POPULATION_VJP_HPP

/// \file
/// Parameter VJPs of lens maps with respect to every member of a Population.

#include <lensing/profiles/population.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

namespace lensing {

namespace detail {
template <class ExecutionSpace, class Profile, class MemorySpace, class Grad, class F>
void population_map_vjp(char const* name, ExecutionSpace const& space, Population<Profile, MemorySpace> const& pop,
                        int ny, int nx, Grad const& grad, F const& f) {
  using Scalar = typename Profile::scalar_type;
  constexpr int N = Profile::num_params;
  check_extents(grad, name, "grad", "(size, num_params)", pop.size(), N);
  Kokkos::deep_copy(space, grad, Scalar(0));
  using Policy = Kokkos::TeamPolicy<ExecutionSpace>;
  long const npix = static_cast<long>(ny) * nx;
  // One team per member; its threads share the pixels, each accumulating a
  // private gradient, then add it to the member's row.
  Kokkos::parallel_for(
      name, Policy(space, pop.size(), Kokkos::AUTO), KOKKOS_LAMBDA(typename Policy::member_type const& team) {
        int const m = team.league_rank();
        Profile const p = pop.member(m);
        Scalar acc[N];
        for (int k = 0; k < N; ++k)
          acc[k] = Scalar(0);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, npix),
                             [&](long i) { f(p, static_cast<int>(i / nx), static_cast<int>(i % nx), acc); });
        for (int k = 0; k < N; ++k)
          Kokkos::atomic_add(&grad(m, k), acc[k]);
      });
}
}  // namespace detail

/// grad(m, k) = sum over fine pixels of (abar_x, abar_y) . d alpha / d theta_{m,k}
/// for member m of the population (grad: (size, Profile::num_params), overwritten).
template <class ExecutionSpace, class Profile, class MemorySpace, class View, class Grad>
void population_deflection_map_vjp(ExecutionSpace const& space, Population<Profile, MemorySpace> const& pop,
                                   PixelGrid<typename Profile::scalar_type> const& grid, View const& abar_x,
                                   View const& abar_y, Grad const& grad) {
  constexpr char const* where = "lensing::population_deflection_map_vjp";
  using Scalar = typename Profile::scalar_type;
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, abar_x, "abar_x");
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, abar_y, "abar_y");
  detail::population_map_vjp(
      where, space, pop, grid.fine_ny(), grid.fine_nx(), grad,
      KOKKOS_LAMBDA(Profile const& p, int iy, int ix, Scalar* acc) {
        p.deflection_vjp(grid.fine_x(ix), grid.fine_y(iy), Vec2<Scalar>{abar_x(iy, ix), abar_y(iy, ix)}, acc);
      });
}

/// grad(m, k) = sum over fine pixels of kbar * d kappa / d theta_{m,k}.
template <class ExecutionSpace, class Profile, class MemorySpace, class View, class Grad>
void population_convergence_map_vjp(ExecutionSpace const& space, Population<Profile, MemorySpace> const& pop,
                                    PixelGrid<typename Profile::scalar_type> const& grid, View const& kbar,
                                    Grad const& grad) {
  constexpr char const* where = "lensing::population_convergence_map_vjp";
  using Scalar = typename Profile::scalar_type;
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, kbar, "kbar");
  detail::population_map_vjp(
      where, space, pop, grid.fine_ny(), grid.fine_nx(), grad,
      KOKKOS_LAMBDA(Profile const& p, int iy, int ix, Scalar* acc) {
        p.convergence_vjp(grid.fine_x(ix), grid.fine_y(iy), kbar(iy, ix), acc);
      });
}

}  // namespace lensing

#endif  // LENSING_RAYTRACE_POPULATION_VJP_HPP
