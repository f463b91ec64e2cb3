#ifndef LENSING_CORE_REDUCE_PARAMS_HPP
#define LENSING_CORE_REDUCE_PARAMS_HPP

/// \file
/// Deterministic reduction of per-pixel parameter gradients over an image.

#include <lensing/core/views.hpp>

namespace lensing {
namespace detail {

/// grad(k) = sum over pixels (iy, ix) of the N values f(iy, ix, acc) adds
/// into acc[0..N).  Rows are reduced independently into a (ny, N) buffer and
/// the rows are then summed in order, so the result does not depend on the
/// number of threads.  `partial` must be a (>= ny, N) view in the space's
/// memory (callers reuse it across calls).
template <int N, class ExecutionSpace, class Scalar, class MemorySpace, class F>
void reduce_params_over_pixels(char const* name, ExecutionSpace const& space, int ny, int nx,
                               View2D<Scalar, MemorySpace> const& partial, View1D<Scalar, MemorySpace> const& grad,
                               F const& f) {
  Kokkos::parallel_for(
      name, Kokkos::RangePolicy<ExecutionSpace>(space, 0, ny), KOKKOS_LAMBDA(int iy) {
        Scalar acc[N];
        for (int k = 0; k < N; ++k)
          acc[k] = Scalar(0);
        for (int ix = 0; ix < nx; ++ix)
          f(iy, ix, acc);
        for (int k = 0; k < N; ++k)
          partial(iy, k) = acc[k];
      });
  Kokkos::parallel_for(
      name, Kokkos::RangePolicy<ExecutionSpace>(space, 0, N), KOKKOS_LAMBDA(int k) {
        Scalar s = 0;
        for (int iy = 0; iy < ny; ++iy)
          s += partial(iy, k);
        grad(k) = s;
      });
}

}  // namespace detail
}  // namespace lensing

#endif  // LENSING_CORE_REDUCE_PARAMS_HPP
