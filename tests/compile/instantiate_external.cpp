#include "instantiate_maps.hpp"

#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/mass_sheet.hpp>
#include <lensing/profiles/multipole.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

using lensing::instantiate::all_maps;

LENSING_INSTANTIATE(instantiate_external) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    lensing::ExternalShear<S> const shear{S(0.05), S(-0.03), S(0), S(0)};
    lensing::MassSheet<S> const sheet{S(0.1), S(0), S(0)};
    lensing::Multipole1<S> const m1{S(0.01), S(0.3), S(0), S(0), S(1)};
    lensing::Multipole3<S> const m3{S(0.01), S(0.3), S(0), S(0), S(1)};
    lensing::Multipole4<S> const m4{S(0.01), S(0.3), S(0), S(0), S(1)};
    all_maps(space, shear);
    all_maps(space, sheet);
    all_maps(space, m1);
    all_maps(space, m3);
    all_maps(space, m4);
    lensing::SIE<S> const sie{S(1), S(0.1), S(0), S(0), S(0)};
    all_maps(space, lensing::make_composite(sie, shear, sheet, m4));
  });
}
