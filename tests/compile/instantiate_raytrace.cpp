#include "instantiate_maps.hpp"

#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/population.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/raytrace/population_vjp.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

using lensing::instantiate::all_maps;

LENSING_INSTANTIATE(instantiate_raytrace) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    lensing::SIS<S> const sis{S(1), S(0), S(0)};
    lensing::SIE<S> const sie{S(1), S(0.1), S(0), S(0), S(0)};
    lensing::NIE<S> const nie{S(1), S(0.1), S(0.1), S(0), S(0), S(0)};
    all_maps(space, sis);
    all_maps(space, sie);
    all_maps(space, nie);
    all_maps(space, lensing::make_composite(sie, sis));
    // Populations: forward maps of a macro model plus subhaloes, and the
    // per-member VJPs.
    using Space = std::decay_t<decltype(space)>;
    using Mem = typename Space::memory_space;
    auto const pop = lensing::Population<lensing::SIS<S>, Mem>::from_params(space, std::vector<S>{S(0.1), S(0), S(0)});
    lensing::LensSum<lensing::SIE<S>, lensing::Population<lensing::SIS<S>, Mem>> const both{sie, pop};
    auto const grid = lensing::PixelGrid<S>::square(4, S(0.5));
    lensing::View2D<S, Mem> a("a", 4, 4), b("b", 4, 4);
    lensing::deflection_map(space, both, grid, a, b);
    lensing::ray_shoot(space, both, grid, a, b);
    lensing::convergence_map(space, both, grid, a);
    lensing::shear_map(space, both, grid, a, b);
    lensing::magnification_map(space, both, grid, a);
    Kokkos::View<S**, Kokkos::LayoutRight, Mem> g("g", 1, 3);
    lensing::population_deflection_map_vjp(space, pop, grid, a, b, g);
    lensing::population_convergence_map_vjp(space, pop, grid, a, g);
    space.fence();
  });
}
