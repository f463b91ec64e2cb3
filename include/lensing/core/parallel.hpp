#ifndef LENSING_CORE_PARALLEL_HPP
#define LENSING_CORE_PARALLEL_HPP

/// \file
/// Launch helpers shared by lensing's image-shaped kernels.

#include <Kokkos_Core.hpp>

#include <cstdlib>
#include <cstring>
#include <type_traits>

/// Declares the per-row operator() of a host row functor.  With GCC on the
/// host: one out-of-line function with everything it calls inlined into it
/// (noipa: no inlined or specialised copies elsewhere; flatten: the profile
/// code inlined, so that the pixel loop vectorises).  The Kokkos loop and the
/// small-work loop on the calling thread (run_small_on_caller) then run the
/// same machine code, so their results are the same bits: with the body
/// inlined into each loop instead, GCC vectorised the two copies differently
/// (different vector widths and remainders, results a few ulp apart), and an
/// out-of-line body without flatten kept a profile's set-up in the pixel loop
/// and did not vectorise (7x slower).  Elsewhere (device compilers, Clang):
/// an ordinary inline function.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && !defined(__HIPCC__) && \
    !defined(__INTEL_LLVM_COMPILER)
#define LENSING_ROW_FUNCTION __attribute__((noipa, flatten)) inline
#else
#define LENSING_ROW_FUNCTION KOKKOS_INLINE_FUNCTION
#endif

namespace lensing {

namespace detail {
template <class ExecutionSpace>
constexpr bool is_host_space_v = std::is_same<typename ExecutionSpace::memory_space, Kokkos::HostSpace>::value;

// Cost of one fork/join of a host parallel region, in ns (see
// host_fork_join_ns).  Default: from OMP_WAIT_POLICY, read once.
inline double& host_fork_join_ns_setting() {
  static double ns = [] {
    char const* p = std::getenv("OMP_WAIT_POLICY");
    bool const passive = p != nullptr && (std::strcmp(p, "passive") == 0 || std::strcmp(p, "PASSIVE") == 0 ||
                                          std::strcmp(p, "Passive") == 0);
    // Measured on the project's 2-core benchmark VM (benchmarks/README.md,
    // issue 21): with passive waiting a region costs ~60 us of wall time
    // beyond its work (64^2 image, 3 regions: 0.242 ms at 2 threads against
    // 0.099 ms at 1; 128^2 k = 3, 4 regions: 1.93 against 3.37 / 2 ms; the
    // sleeping worker's wake-up through the hypervisor); with spinning
    // workers (libgomp's default, or active) back-to-back empty regions cost
    // 2.8-3 us.
    return passive ? 60e3 : 5e3;
  }();
  return ns;
}
}  // namespace detail

/// Wall-time cost of starting and joining one parallel region on a host
/// execution space, in ns: host loops whose estimated work is below what a
/// second thread would save run on the calling thread instead (see
/// run_on_caller).  Default 60 us with OMP_WAIT_POLICY=passive, 5 us
/// otherwise (measured on a 2-core VM; bare metal wakes threads faster).
inline double host_fork_join_ns() { return detail::host_fork_join_ns_setting(); }

/// Sets host_fork_join_ns (0: always fork; a huge value: never).  Not
/// thread-safe: call it before launching work.
inline void set_host_fork_join_ns(double ns) { detail::host_fork_join_ns_setting() = ns; }

/// Nominal per-item costs (ns on one core) of lensing's host loops, for the
/// small-work fallback; estimates, not measurements of the caller's functor.
namespace work_ns {
/// One pixel of a lensed image (lens deflection, source and lens light).
constexpr double image_pixel = 25;
/// One pixel of one mass component's map (SIE ~5, EPL ~10, NFW ~17, shear < 1).
constexpr double deflection_pixel = 8;
/// One tap of a separable filter pass at one pixel.
constexpr double filter_tap = 0.25;
}  // namespace work_ns

namespace detail {
/// True when n items of ns_per_item each are too little work to split:
/// serial time T against T / p + fork/join on p threads, so below
/// T = c p / (p - 1) (2c on 2 threads) the calling thread alone is faster.
/// Always true for one thread; false on device spaces.
template <class ExecutionSpace>
bool run_on_caller(ExecutionSpace const& space, double n, double ns_per_item) {
  if constexpr (!is_host_space_v<ExecutionSpace>) {
    (void)space, (void)n, (void)ns_per_item;
    return false;
  } else {
    int const p = space.concurrency();
    if (p <= 1) return true;
    return n * ns_per_item * double(p - 1) < host_fork_join_ns() * double(p);
  }
}

/// f(i) for i in [0, n) on the calling thread when run_on_caller says so
/// (returns true), else nothing (returns false: launch the parallel loop).
/// Each f(i) writes its own outputs, so the result is the same bits either way.
template <class ExecutionSpace, class Index, class F>
bool run_small_on_caller(ExecutionSpace const& space, Index n, double ns_per_item, F const& f) {
  if constexpr (!is_host_space_v<ExecutionSpace>) {
    (void)space, (void)n, (void)ns_per_item, (void)f;
    return false;
  } else {
    if (!run_on_caller(space, double(n), ns_per_item)) return false;
    space.fence();  // work queued before on `space` comes first
    for (Index i = 0; i < n; ++i)
      f(i);
    return true;
  }
}

// Row-wise host functor: the inner loop over ix has unit stride and no index
// arithmetic, so the compiler can vectorise f's body.  Its operator() is one
// compiled function for both paths (LENSING_ROW_FUNCTION).
template <class F>
struct RowLoop {
  F f;
  int nx;
  LENSING_ROW_FUNCTION void operator()(int iy) const {
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
///
/// On host spaces an image whose work (ny nx ns_per_pixel, default a lensed
/// image pixel) is below what a second thread saves runs on the calling
/// thread (detail::run_on_caller): same per-pixel code, same results.
template <class ExecutionSpace, class F>
void parallel_for_pixels(char const* name, ExecutionSpace const& space, int ny, int nx, F const& f,
                         double ns_per_pixel = work_ns::image_pixel) {
  if constexpr (detail::is_host_space_v<ExecutionSpace>) {
    detail::RowLoop<F> const rows{f, nx};
    if (detail::run_small_on_caller(space, ny, double(nx) * ns_per_pixel, rows)) return;
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecutionSpace>(space, 0, ny), rows);
  } else {
    (void)ns_per_pixel;
    long const n = static_cast<long>(ny) * nx;
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n),
        KOKKOS_LAMBDA(long i) { f(static_cast<int>(i / nx), static_cast<int>(i % nx)); });
  }
}

}  // namespace lensing

#endif  // LENSING_CORE_PARALLEL_HPP
