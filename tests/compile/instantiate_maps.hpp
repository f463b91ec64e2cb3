#ifndef LENSING_TEST_INSTANTIATE_MAPS_HPP
#define LENSING_TEST_INSTANTIATE_MAPS_HPP

// Shared by the instantiate_<profiles>.cpp files: every map and map VJP of
// lensing/raytrace/ray_shooting.hpp for one profile, on tiny inputs.

#include "instantiate.hpp"

#include <lensing/raytrace/ray_shooting.hpp>

namespace lensing {
namespace instantiate {

template <class Space, class Profile>
void all_maps(Space const& space, Profile const& p) {
  using Scalar = typename Profile::scalar_type;
  using Mem = typename Space::memory_space;
  auto const grid = lensing::PixelGrid<Scalar>::square(4, Scalar(0.5));
  lensing::View2D<Scalar, Mem> a("a", 4, 4), b("b", 4, 4);
  lensing::deflection_map(space, p, grid, a, b);
  lensing::ray_shoot(space, p, grid, a, b);
  lensing::convergence_map(space, p, grid, a);
  lensing::shear_map(space, p, grid, a, b);
  lensing::magnification_map(space, p, grid, a);
  lensing::View1D<Scalar, Mem> g("g", Profile::num_params);
  lensing::MapVjpWorkspace<Scalar, Mem> work(grid, Profile::num_params);
  lensing::deflection_map_vjp(space, p, grid, a, b, g, work);
  lensing::ray_shoot_vjp(space, p, grid, a, b, g, work);
  lensing::convergence_map_vjp(space, p, grid, a, g, work);
  space.fence();
}

}  // namespace instantiate
}  // namespace lensing

#endif
