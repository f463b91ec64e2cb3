#ifndef LENSING_TEST_INSTANTIATE_HPP
#define LENSING_TEST_INSTANTIATE_HPP

// Each instantiate_<area>.cpp registers a function (LENSING_INSTANTIATE) that
// calls every public kernel of that area (for_each_space_and_scalar: one host
// space and the device space) in float and double, on tiny inputs.  Compiling them proves the kernels
// build for the backend (nvcc for CUDA); lensing_instantiate --run also
// executes them.  New files are picked up by the glob in CMakeLists.txt.

#include <Kokkos_Core.hpp>

#include <vector>

namespace lensing {
namespace instantiate {

/// Call f(space, Scalar{}) for one host execution space and the device space
/// (when enabled), in float and double.  The host build instantiates the
/// parallel host space only (OpenMP, else Serial): a kernel's body is the same
/// template on every host space, and the test programs run their kernels on
/// every enabled host space anyway; instantiating Serial and OpenMP here cost
/// a quarter of the host build.  The nvcc check (LENSING_INSTANTIATE_DEVICE_ONLY)
/// instantiates the device space only: its host instantiations are the host
/// build's.
template <class F>
void for_each_space_and_scalar(F const& f) {
#if !defined(LENSING_INSTANTIATE_DEVICE_ONLY)
#if defined(KOKKOS_ENABLE_OPENMP)
  f(Kokkos::OpenMP(), float{});
  f(Kokkos::OpenMP(), double{});
#elif defined(KOKKOS_ENABLE_SERIAL)
  f(Kokkos::Serial(), float{});
  f(Kokkos::Serial(), double{});
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
