#include "instantiate_maps.hpp"

#include <lensing/profiles/epl.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

using lensing::instantiate::all_maps;

LENSING_INSTANTIATE(instantiate_epl) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    all_maps(space, lensing::EPL<S>{S(1), S(2.1), S(0.1), S(-0.05), S(0), S(0)});
  });
}
