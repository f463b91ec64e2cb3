#include "instantiate_maps.hpp"

#include <lensing/profiles/gaussian_kappa.hpp>
#include <lensing/profiles/sersic_kappa.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

using lensing::instantiate::all_maps;

LENSING_INSTANTIATE(instantiate_convergence_profiles) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    all_maps(space, lensing::GaussianKappa<S>{S(1.5), S(0.7), S(0.1), S(-0.05), S(0), S(0)});
    all_maps(space, lensing::GaussianKappa<S>{S(1.5), S(0.7), S(0), S(0), S(0), S(0)});
    all_maps(space, lensing::SersicKappa<S>{S(0.5), S(1.2), S(2.5), S(0.1), S(-0.05), S(0), S(0)});
  });
}
