#ifndef LENSING_CORE_REDUCE_PARAMS_HPP
#define LENSING_CORE_REDUCE_PARAMS_HPP

/// \file
/// Deterministic reduction of per-pixel parameter gradients over an image.

#include <lensing/core/views.hpp>

#include <utility>

namespace lensing {
namespace detail {

// One row's gradient: the accumulator is only ever indexed by compile-time
// constants (zero-initialised, written back by a fold), so the compiler can
// keep it in registers and vectorise the pixel loop as N reductions.
template <int N, class Scalar, class MemorySpace, class F>
struct RowReduction {
  View2D<Scalar, MemorySpace> partial;
  F f;
  int nx;
  template <std::size_t... K>
  KOKKOS_FORCEINLINE_FUNCTION void store(int iy, Scalar const* acc, std::index_sequence<K...>) const {
    ((partial(iy, K) = acc[K]), ...);
  }
  KOKKOS_INLINE_FUNCTION void operator()(int iy) const {
    Scalar acc[N] = {};
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
    for (int ix = 0; ix < nx; ++ix)
      f(iy, ix, acc);
    store(iy, acc, std::make_index_sequence<N>{});
  }
};

/// grad(k) = sum over pixels (iy, ix) of the N values f(iy, ix, acc) adds
/// into acc[0..N).  Rows are reduced independently into a (ny, N) buffer and
/// the rows are then summed in order, so the result does not depend on the
/// number of threads.  `partial` must be a (>= ny, N) view in the space's
/// memory (callers reuse it across calls).
template <int N, class ExecutionSpace, class Scalar, class MemorySpace, class F>
void reduce_params_over_pixels(char const* name, ExecutionSpace const& space, int ny, int nx,
                               View2D<Scalar, MemorySpace> const& partial, View1D<Scalar, MemorySpace> const& grad,
                               F const& f) {
  Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecutionSpace>(space, 0, ny),
                       RowReduction<N, Scalar, MemorySpace, F>{partial, f, nx});
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
