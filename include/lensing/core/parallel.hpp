#ifndef LENSING_CORE_PARALLEL_HPP
#define LENSING_CORE_PARALLEL_HPP

/// \file
/// Launch helpers shared by lensing's image-shaped kernels.

#include <Kokkos_Core.hpp>

#include <type_traits>

namespace lensing {

namespace detail {
template <class ExecutionSpace>
constexpr bool is_host_space_v = std::is_same<typename ExecutionSpace::memory_space, Kokkos::HostSpace>::value;

// Row-wise host functor: the inner loop over ix has unit stride and no index
// arithmetic, so the compiler can vectorise f's body.
template <class F>
struct RowLoop {
  F f;
  int nx;
  KOKKOS_INLINE_FUNCTION void operator()(int iy) const {
#if defined(KOKKOS_ENABLE_PRAGMA_IVDEP) || defined(__GNUC__)
#pragma GCC ivdep
#endif
    for (int ix = 0; ix < nx; ++ix)
      f(iy, ix);
  }
};
}  // namespace detail

/// Call f(iy, ix) for every pixel of an ny x nx image on `space`.
///
/// Host spaces get one work item per row with a vectorisable inner loop over
/// ix (MDRangePolicy tiles do not vectorise on the OpenMP backend of Kokkos
/// 3.4: measured 6x slower than the write bandwidth allows, see
/// benchmarks/README.md).  Device spaces get one work item per pixel, with
/// consecutive ix in consecutive threads so row-major accesses coalesce.
template <class ExecutionSpace, class F>
void parallel_for_pixels(char const* name, ExecutionSpace const& space, int ny, int nx, F const& f) {
  if constexpr (detail::is_host_space_v<ExecutionSpace>) {
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecutionSpace>(space, 0, ny), detail::RowLoop<F>{f, nx});
  } else {
    long const n = static_cast<long>(ny) * nx;
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n),
        KOKKOS_LAMBDA(long i) { f(static_cast<int>(i / nx), static_cast<int>(i % nx)); });
  }
}

}  // namespace lensing

#endif  // LENSING_CORE_PARALLEL_HPP
