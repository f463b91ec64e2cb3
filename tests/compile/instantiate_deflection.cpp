#include "instantiate.hpp"

#include <lensing/deflection/convergence_deflection.hpp>
#include <lensing/deflection/interpolated_lens.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

LENSING_INSTANTIATE(instantiate_deflection) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using Space = std::decay_t<decltype(space)>;
    using S = decltype(scalar);
    using Mem = typename Space::memory_space;
    auto const grid = lensing::PixelGrid<S>::square(6, S(0.1));
    lensing::View2D<S, Mem> k("k", 6, 6), a("a", 6, 6), b("b", 6, 6);
    lensing::ConvergenceDeflection<S, Mem> fft(space, grid);
    fft.deflection(space, k, a, b);
    fft.potential(space, k, a);
    lensing::convergence_deflection_direct(space, grid, k, a, b);
    auto const lens = lensing::InterpolatedLens<S, Mem>::from_convergence(space, grid, k);
    lensing::ray_shoot(space, lens, grid, a, b);
    lensing::shear_map(space, lens, grid, a, b);
    lensing::convergence_map(space, lens, grid, a);
    lensing::magnification_map(space, lens, grid, a);
    space.fence();
  });
}
