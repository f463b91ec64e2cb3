#ifndef LENSING_TEST_INSTANTIATE_HPP
#define LENSING_TEST_INSTANTIATE_HPP

// Each instantiate_<area>.cpp defines `void instantiate_<area>()`, which calls
// every public kernel of that area on every enabled execution space, in float
// and double, on tiny inputs.  Compiling them proves the kernels build for the
// backend (nvcc for CUDA); lensing_instantiate --run also executes them.

#include <Kokkos_Core.hpp>

namespace lensing {
namespace instantiate {

/// Call f(space, Scalar{}) for every enabled execution space and scalar type.
template <class F>
void for_each_space_and_scalar(F const& f) {
#if defined(KOKKOS_ENABLE_SERIAL)
  f(Kokkos::Serial(), float{});
  f(Kokkos::Serial(), double{});
#endif
#if defined(KOKKOS_ENABLE_OPENMP)
  f(Kokkos::OpenMP(), float{});
  f(Kokkos::OpenMP(), double{});
#endif
#if defined(KOKKOS_ENABLE_CUDA)
  f(Kokkos::Cuda(), float{});
  f(Kokkos::Cuda(), double{});
#endif
}

}  // namespace instantiate
}  // namespace lensing

void instantiate_geometry();

#endif
