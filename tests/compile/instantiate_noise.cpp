#include "instantiate.hpp"

#include <lensing/density/parameter_table.hpp>
#include <lensing/noise/bad_pixels.hpp>
#include <lensing/noise/cosmic_rays.hpp>
#include <lensing/noise/masks.hpp>
#include <lensing/noise/pixel_noise.hpp>
#include <lensing/simulate/galaxies.hpp>

namespace {
// Every noise and artefact kernel on one image view type (rank 2 or 3).
template <class Space, class View>
void all_noise(Space const& space, View const& img, View const& mask) {
  using S = typename View::non_const_value_type;
  using Mem = typename Space::memory_space;
  namespace noise = lensing::noise;
  noise::apply(space, noise::GaussianNoise<S>{S(0.1)}, img, 1);
  noise::apply(space, noise::PoissonNoise<S>{S(100)}, img, 2);
  noise::apply(space, noise::ReadNoise<S>{S(3), S(100)}, img, 3);
  noise::apply(space, noise::ZeroPointBias<S>{S(0.01), S(0.01)}, img, 4);
  noise::apply(space, noise::BadPixels<S>{}, img, 5);
  noise::apply(space, noise::RandomMask<S>{}, img, mask, 6);
  noise::CosmicRays<S, Mem> cr(noise::CosmicRayModel<S>{}, 2);
  cr.apply(space, img, 7);
  noise::apply(space, noise::Saturation<S>{S(1e3)}, img);
  space.fence();
}
}  // namespace

LENSING_INSTANTIATE(instantiate_noise) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    using Space = std::decay_t<decltype(space)>;
    using Mem = typename Space::memory_space;
    lensing::View2D<S, Mem> img("img", 4, 5), mask("mask", 4, 5);
    lensing::View3D<S, Mem> batch("batch", 2, 4, 5), bmask("bmask", 2, 4, 5);
    Kokkos::deep_copy(img, S(1));
    Kokkos::deep_copy(batch, S(1));
    all_noise(space, img, mask);
    all_noise(space, batch, bmask);
    // Priors.
    using Pr = lensing::Prior<S>;
    lensing::ParameterTable<S, Mem> table({{"a", Pr::uniform(0, 1)},
                                           {"b", Pr::normal(0, 1)},
                                           {"c", Pr::log_uniform(0.1, 1)},
                                           {"d", Pr::truncated_normal(0, 1, 0, 2)},
                                           {"e", Pr::fixed(1)},
                                           {"f", Pr::half_normal(1)},
                                           {"g", Pr::half_cauchy(1)},
                                           {"h", Pr::student_t(3, 0, 1)},
                                           {"i", Pr::gamma(0.5, 1)},
                                           {"j", Pr::beta(2, 3)}});
    table.tie("k", "a", 2, 1);
    lensing::View2D<S, Mem> params("params", 3, 11);
    lensing::View1D<double, Mem> logp("logp", 3);
    table.sample(space, params, 1);
    table.log_density(space, params, logp);
    // Galaxies.
    lensing::View3D<S, Mem> stamps("stamps", 2, 8, 8);
    lensing::View1D<lensing::simulate::Galaxy<S>, Mem> gals("gals", 2);
    lensing::simulate::render_galaxies(space, lensing::simulate::GalaxyModel<S>{}, stamps, S(0.1), gals, 1);
    space.fence();
  });
}
