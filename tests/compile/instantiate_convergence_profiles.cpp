#include "instantiate.hpp"

#include <lensing/profiles/gaussian_kappa.hpp>
#include <lensing/profiles/sersic_kappa.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

namespace {
// Every map and map VJP of lensing/raytrace/ray_shooting.hpp for one profile.
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
}  // namespace

LENSING_INSTANTIATE(instantiate_convergence_profiles) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    all_maps(space, lensing::GaussianKappa<S>{S(1.5), S(0.7), S(0.1), S(-0.05), S(0), S(0)});
    all_maps(space, lensing::GaussianKappa<S>{S(1.5), S(0.7), S(0), S(0), S(0), S(0)});
    all_maps(space, lensing::SersicKappa<S>{S(0.5), S(1.2), S(2.5), S(0.1), S(-0.05), S(0), S(0)});
  });
}
