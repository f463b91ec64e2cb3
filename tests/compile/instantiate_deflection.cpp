#include "instantiate.hpp"

#include <lensing/deflection/convergence_deflection.hpp>

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
    space.fence();
  });
}
