#include "instantiate.hpp"

#include <lensing/cosmology/flat_lcdm.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/population.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/raytrace/critical_curves.hpp>
#include <lensing/raytrace/image_positions.hpp>
#include <lensing/raytrace/lens_map.hpp>
#include <lensing/raytrace/multi_plane.hpp>
#include <lensing/raytrace/time_delays.hpp>

#include <array>
#include <vector>

namespace {
// Device-side kernels: cosmology and the multi-plane maps and VJP on every space.
template <class Space, class S>
void device_kernels(Space const& space) {
  using Mem = typename Space::memory_space;
  lensing::FlatLambdaCDM<S> const cosmo(70, 0.3);
  lensing::View1D<S, Mem> d("d", 4);
  Kokkos::parallel_for(
      "lensing::instantiate::cosmology", Kokkos::RangePolicy<Space>(space, 0, 1), KOKKOS_LAMBDA(int) {
        d(0) = cosmo.angular_diameter_distance(S(0.5), S(2));
        d(1) = cosmo.time_delay_distance(S(0.5), S(2));
        d(2) = cosmo.sigma_crit(S(0.5), S(2));
        d(3) = cosmo.fermat_to_days(S(0.5), S(2), S(0.1));
      });
  using Plane = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
  Plane const p(lensing::SIE<S>{S(1), S(0.1), S(0), S(0), S(0)}, lensing::ExternalShear<S>{S(0.01), S(0), S(0), S(0)});
  auto const sis = lensing::make_composite(lensing::SIS<S>{S(0.2), S(0.3), S(0)});
  auto const mp = lensing::make_multi_plane(cosmo, 2.0, {0.3, 0.5}, sis, p);
  using MP = std::decay_t<decltype(mp)>;
  auto const grid = lensing::PixelGrid<S>::square(4, S(0.5));
  lensing::View2D<S, Mem> a("a", 4, 4), b("b", 4, 4);
  lensing::multi_plane_ray_shoot(space, mp, grid, a, b);
  lensing::multi_plane_magnification_map(space, mp, grid, a);
  lensing::View1D<S, Mem> g("g", MP::num_params);
  lensing::MapVjpWorkspace<S, Mem> work(grid, MP::num_params);
  lensing::multi_plane_ray_shoot_vjp(space, mp, grid, a, b, g, work);
  // A plane with a population (forward maps).
  auto const pop = lensing::Population<lensing::SIS<S>, Mem>::from_params(space, std::vector<S>{S(0.1), S(0), S(0)});
  lensing::LensSum<Plane, lensing::Population<lensing::SIS<S>, Mem>> const both{p, pop};
  auto const mp2 = lensing::make_multi_plane(cosmo, 2.0, {0.3, 0.5}, sis, both);
  lensing::multi_plane_ray_shoot(space, mp2, grid, a, b);
  using MP2 = std::decay_t<decltype(mp2)>;
  lensing::View1D<S, Mem> g2("g2", MP2::num_params);
  lensing::MapVjpWorkspace<S, Mem> work2(grid, MP2::num_params);
  lensing::multi_plane_ray_shoot_vjp(space, mp2, grid, a, b, g2, work2);
  Kokkos::View<S**, Kokkos::LayoutRight, Mem> pg("pg", 1, 3);
  lensing::MultiPlanePopulationWork<S, Mem> pwork(grid);
  lensing::multi_plane_population_vjp<1>(space, mp2, grid, a, b, pg, pwork);
  space.fence();
}

// Host-side tools (image finding, time delays, critical curves).
template <class S>
void host_tools() {
  using Plane = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
  Plane const p(lensing::SIE<S>{S(1), S(0.1), S(0), S(0), S(0)}, lensing::ExternalShear<S>{S(0.01), S(0), S(0), S(0)});
  Kokkos::DefaultHostExecutionSpace host;
  lensing::ImageFinder<Plane> const finder(host, p, S(2), 16);
  lensing::FlatLambdaCDM<S> const cosmo(70, 0.3);
  auto const t = lensing::time_delays(finder, cosmo, 0.5, 2.0, S(0.01), S(0.02));
  (void)t;
  auto const c = lensing::critical_curves(host, p, S(2), 16);
  (void)c;
  auto const mp = lensing::make_multi_plane(cosmo, 2.0, {0.5}, p);
  lensing::ImageFinder<std::decay_t<decltype(mp)>> const f2(host, mp, S(2), 16);
  (void)f2.find(S(0.01), S(0.02));
  (void)lensing::critical_curves(host, mp, S(2), 16);
}
}  // namespace

LENSING_INSTANTIATE(instantiate_lens_equation) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    device_kernels<std::decay_t<decltype(space)>, S>(space);
  });
  host_tools<float>();
  host_tools<double>();
}
