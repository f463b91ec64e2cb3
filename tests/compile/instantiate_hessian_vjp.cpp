#include "instantiate.hpp"

#include <type_traits>

#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/cored_density.hpp>
#include <lensing/profiles/epl.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/gaussian_kappa.hpp>
#include <lensing/profiles/hernquist.hpp>
#include <lensing/profiles/mass_sheet.hpp>
#include <lensing/profiles/multipole.hpp>
#include <lensing/profiles/nfw.hpp>
#include <lensing/profiles/nfw_ellipse.hpp>
#include <lensing/profiles/point_mass.hpp>
#include <lensing/profiles/population.hpp>
#include <lensing/profiles/pseudo_jaffe.hpp>
#include <lensing/profiles/sersic_kappa.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/profiles/tnfw.hpp>
#include <lensing/raytrace/hessian_vjp.hpp>

namespace {
// Every Hessian map VJP of raytrace/hessian_vjp.hpp for one profile.
template <class Space, class P>
void hessian_vjps(Space const& space, P const& p) {
  using S = typename P::scalar_type;
  using Mem = typename Space::memory_space;
  auto const grid = lensing::PixelGrid<S>::square(4, S(0.5));
  lensing::View2D<S, Mem> a("a", 4, 4), b("b", 4, 4), c("c", 4, 4);
  lensing::View1D<S, Mem> g("g", P::num_params);
  lensing::MapVjpWorkspace<S, Mem> work(grid, P::num_params);
  lensing::hessian_map_vjp(space, p, grid, a, b, c, g, work);
  lensing::shear_map_vjp(space, p, grid, a, b, g, work);
  lensing::magnification_map_vjp(space, p, grid, a, g, work);
  space.fence();
}
}  // namespace

LENSING_INSTANTIATE(instantiate_hessian_vjp) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    lensing::SIE<S> const sie{S(1), S(0.1), S(0), S(0), S(0)};
    lensing::ExternalShear<S> const shear{S(0.02), S(-0.01), S(0), S(0)};
    hessian_vjps(space, lensing::SIS<S>{S(1), S(0), S(0)});
    hessian_vjps(space, sie);
    hessian_vjps(space, lensing::NIE<S>{S(1), S(0.1), S(0.1), S(0), S(0), S(0)});
    hessian_vjps(space, lensing::EPL<S>{S(1), S(2.1), S(0.1), S(0), S(0), S(0)});
    hessian_vjps(space, lensing::NFW<S>{S(1.5), S(0.8), S(0), S(0)});
    hessian_vjps(space, lensing::TNFW<S>{S(1.5), S(0.8), S(5), S(0), S(0)});
    hessian_vjps(space, lensing::PointMass<S>{S(1), S(0), S(0)});
    hessian_vjps(space, lensing::Hernquist<S>{S(1), S(0.8), S(0), S(0)});
    hessian_vjps(space, lensing::PseudoJaffe<S>{S(1), S(0.2), S(2), S(0), S(0)});
    hessian_vjps(space, lensing::CoredDensity<S>{S(1), S(0.3), S(0), S(0)});
    hessian_vjps(space, lensing::NFWEllipse<S>{S(1.5), S(0.8), S(0.1), S(0), S(0), S(0)});
    hessian_vjps(space, lensing::NFWEllipseCSE<S>{S(1.5), S(0.8), S(0.1), S(0), S(0), S(0)});
    hessian_vjps(space, lensing::GaussianKappa<S>{S(1), S(0.8), S(0.1), S(0), S(0), S(0)});
    hessian_vjps(space, lensing::SersicKappa<S>{S(0.5), S(0.8), S(2.5), S(0.1), S(0), S(0), S(0)});
    hessian_vjps(space, shear);
    hessian_vjps(space, lensing::MassSheet<S>{S(0.05), S(0), S(0)});
    hessian_vjps(space, lensing::Multipole<S, 1>{S(0.05), S(0.3), S(0), S(0), S(1)});
    hessian_vjps(space, lensing::Multipole<S, 3>{S(0.05), S(0.3), S(0), S(0), S(1)});
    hessian_vjps(space, lensing::Multipole<S, 4>{S(0.05), S(0.3), S(0), S(0), S(1)});
    hessian_vjps(space, lensing::make_composite(sie, shear));
    // Populations and a macro model plus subhaloes.
    using Space = std::decay_t<decltype(space)>;
    using Mem = typename Space::memory_space;
    auto const pop = lensing::Population<lensing::TNFW<S>, Mem>::from_params(
        space, std::vector<S>{S(0.3), S(0.05), S(1), S(0), S(0)});
    lensing::LensSum<lensing::SIE<S>, lensing::Population<lensing::TNFW<S>, Mem>> const both{sie, pop};
    auto const grid = lensing::PixelGrid<S>::square(4, S(0.5));
    lensing::View2D<S, Mem> a("a", 4, 4), b("b", 4, 4), c("c", 4, 4), d("d", 4, 4);
    Kokkos::View<S**, Kokkos::LayoutRight, Mem> g("g", 1, 5);
    lensing::magnification_cotangent_map(space, both, grid, a, b, c, d);
    lensing::population_hessian_map_vjp(space, pop, grid, b, c, d, g);
    lensing::population_shear_map_vjp(space, pop, grid, a, b, g);
    space.fence();
  });
}
