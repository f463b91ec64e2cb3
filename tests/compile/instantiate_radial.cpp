#include "instantiate_maps.hpp"

#include <lensing/profiles/cored_density.hpp>
#include <lensing/profiles/hernquist.hpp>
#include <lensing/profiles/nfw.hpp>
#include <lensing/profiles/point_mass.hpp>
#include <lensing/profiles/pseudo_jaffe.hpp>
#include <lensing/profiles/tnfw.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

using lensing::instantiate::all_maps;

LENSING_INSTANTIATE(instantiate_radial) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    all_maps(space, lensing::NFW<S>{S(1), S(0.5), S(0), S(0)});
    all_maps(space, lensing::TNFW<S>{S(1), S(0.5), S(3), S(0), S(0)});
    all_maps(space, lensing::Hernquist<S>{S(0.5), S(1), S(0), S(0)});
    all_maps(space, lensing::PseudoJaffe<S>{S(0.5), S(0.2), S(1.5), S(0), S(0)});
    all_maps(space, lensing::CoredDensity<S>{S(0.5), S(1), S(0), S(0)});
    all_maps(space, lensing::PointMass<S>{S(1), S(0), S(0)});
  });
}
