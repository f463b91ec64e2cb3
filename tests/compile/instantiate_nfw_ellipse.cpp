#include "instantiate_maps.hpp"

#include <lensing/profiles/nfw_ellipse.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

using lensing::instantiate::all_maps;

LENSING_INSTANTIATE(instantiate_nfw_ellipse) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    lensing::NFWEllipseCSE<S> const cse{S(1.5), S(0.4), S(0.1), S(-0.05), S(0), S(0)};
    lensing::NFWEllipse<S> const exact{S(1.5), S(0.4), S(0.1), S(-0.05), S(0), S(0)};
    all_maps(space, cse);
    all_maps(space, exact);
  });
}
