#ifndef LENSING_TEST_INSTANTIATE_HPP
#define LENSING_TEST_INSTANTIATE_HPP

// Each instantiate_<area>.cpp registers a function (LENSING_INSTANTIATE) that
// calls every public kernel of that area on every enabled execution space,
// in float and double, on tiny inputs.  Compiling them proves the kernels
// build for the backend (nvcc for CUDA); lensing_instantiate --run also
// executes them.  New files are picked up by the glob in CMakeLists.txt.

#include <Kokkos_Core.hpp>

#include <vector>

namespace lensing {
namespace instantiate {

/// Call f(space, Scalar{}) for every enabled execution space and scalar type.
/// The nvcc check (LENSING_INSTANTIATE_DEVICE_ONLY) instantiates the device
/// space only: the host spaces' instantiations are the host build's, and
/// compiling them a second time through nvcc's host pass took two thirds of
/// that stage.
template <class F>
void for_each_space_and_scalar(F const& f) {
#if !defined(LENSING_INSTANTIATE_DEVICE_ONLY)
#if defined(KOKKOS_ENABLE_SERIAL)
  f(Kokkos::Serial(), float{});
  f(Kokkos::Serial(), double{});
#endif
#if defined(KOKKOS_ENABLE_OPENMP)
  f(Kokkos::OpenMP(), float{});
  f(Kokkos::OpenMP(), double{});
#endif
#endif
#if defined(KOKKOS_ENABLE_CUDA)
  f(Kokkos::Cuda(), float{});
  f(Kokkos::Cuda(), double{});
#endif
}

using Function = void (*)();
inline std::vector<Function>& registry() {
  static std::vector<Function> r;
  return r;
}
struct Register {
  explicit Register(Function f) { registry().push_back(f); }
};

}  // namespace instantiate
}  // namespace lensing

/// Define and register an instantiation function: LENSING_INSTANTIATE(name) { ... }
#define LENSING_INSTANTIATE(name)                                         \
  static void name();                                                     \
  static lensing::instantiate::Register const name##_registered{&(name)}; \
  static void name()

#endif
