#ifndef LENSING_CORE_REDUCE_PARAMS_HPP
#define LENSING_CORE_REDUCE_PARAMS_HPP

/// \file
/// Deterministic reduction of per-pixel parameter gradients over an image.

#include <lensing/core/parallel.hpp>
#include <lensing/core/views.hpp>

#include <type_traits>
#include <utility>

namespace lensing {
namespace detail {

// Whether the per-pixel term F also provides a block form,
//   void block(int iy, int ix0, int m, Scalar* grad, int stride) const,
// adding pixel (iy, ix0 + j)'s N values into grad[k * stride + j], j < m.
template <class F, class Scalar, class = void>
struct has_row_block : std::false_type {};
template <class F, class Scalar>
struct has_row_block<F, Scalar,
                     std::void_t<decltype(std::declval<F const&>().block(0, 0, 0, std::declval<Scalar*>(), 0))>>
    : std::true_type {};

// Whether a term F has a branch-free form for rows where is_regular() holds
// (profiles/mass_profile.hpp, has_regular_vjp): the test is hoisted out of
// the pixel loop, which a branch inside would keep from vectorising.
template <class F, class Scalar, class = void>
struct has_regular_form : std::false_type {};
template <class F, class Scalar>
struct has_regular_form<F, Scalar,
                        std::void_t<decltype(std::declval<F const&>().is_regular()),
                                    decltype(std::declval<F const&>().regular(0, 0, std::declval<Scalar*>()))>>
    : std::true_type {};

// One row's gradient.
//
// Host spaces (Blocked): the row is processed in blocks of B pixels.  Each
// pixel's N values go into a fresh local accumulator (no loop-carried
// dependency) and are stored column-wise, tmp[k * B + j]; the block's columns
// are then summed with `Lanes` fixed lanes.  A running `acc[k] += ...` inside
// the pixel loop is a floating-point reduction that GCC will not reorder
// without -ffast-math, so it kept the whole pixel loop scalar (measured
// 10-20x the forward map); the column buffer lets the pixel loop vectorise.
// The summation order depends only on nx, never on the thread count.
//
// A term with a block form (has_row_block: batched profile VJPs) fills the
// block's columns itself.
//
// Device spaces: one running accumulator per row.
template <int N, class Scalar, class MemorySpace, class F, bool Blocked>
struct RowReduction {
  static constexpr int B = N > 32 ? 16 : 64, Lanes = 8;
  View2D<Scalar, MemorySpace> partial;
  F f;
  int nx;
  template <std::size_t... K>
  KOKKOS_FORCEINLINE_FUNCTION void store(int iy, Scalar const* acc, std::index_sequence<K...>) const {
    ((partial(iy, K) = acc[K]), ...);
  }
  template <std::size_t... K>
  KOKKOS_FORCEINLINE_FUNCTION static void scatter(Scalar const* a, Scalar* col, std::index_sequence<K...>) {
    ((col[K * B] = a[K]), ...);
  }
  template <bool Regular>
  KOKKOS_FORCEINLINE_FUNCTION void term(int iy, int ix, Scalar* a) const {
    if constexpr (Regular)
      f.regular(iy, ix, a);
    else
      f(iy, ix, a);
  }
  KOKKOS_INLINE_FUNCTION void operator()(int iy) const {
    if constexpr (has_regular_form<F, Scalar>::value) {
      if (f.is_regular()) {
        row<true>(iy);
        return;
      }
    }
    row<false>(iy);
  }
  template <bool Regular>
  KOKKOS_INLINE_FUNCTION void row(int iy) const {
    Scalar acc[N] = {};
    if constexpr (Blocked) {
      for (int ix0 = 0; ix0 < nx; ix0 += B) {
        int const nb = nx - ix0 < B ? nx - ix0 : B;
        Scalar tmp[N * B];
        if constexpr (has_row_block<F, Scalar>::value) {
          for (int i = 0; i < N * B; ++i)
            tmp[i] = Scalar(0);
          f.block(iy, ix0, nb, tmp, B);
        } else {
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
          for (int j = 0; j < nb; ++j) {
            Scalar a[N] = {};
            term<Regular>(iy, ix0 + j, a);
            scatter(a, tmp + j, std::make_index_sequence<N>{});
          }
          for (int k = 0; k < N; ++k)
            for (int j = nb; j < B; ++j)
              tmp[k * B + j] = Scalar(0);
        }
        for (int k = 0; k < N; ++k) {
          Scalar lane[Lanes] = {};
          for (int j = 0; j < B; j += Lanes)
            for (int l = 0; l < Lanes; ++l)
              lane[l] += tmp[k * B + j + l];
          Scalar s = 0;
          for (int l = 0; l < Lanes; ++l)
            s += lane[l];
          acc[k] += s;
        }
      }
    } else {
      for (int ix = 0; ix < nx; ++ix)
        term<Regular>(iy, ix, acc);
    }
    store(iy, acc, std::make_index_sequence<N>{});
  }
};

/// grad(k) = sum over pixels (iy, ix) of the N values f(iy, ix, acc) adds
/// into acc[0..N) (f must only add to acc: on host spaces each call gets a
/// zeroed acc of its own).  Rows are reduced independently into a (ny, N)
/// buffer and the rows are then summed in order, so the result does not
/// depend on the number of threads.  `partial` must be a (>= ny, N) view in
/// the space's memory (callers reuse it across calls).
template <int N, class ExecutionSpace, class Scalar, class MemorySpace, class F>
void reduce_params_over_pixels(char const* name, ExecutionSpace const& space, int ny, int nx,
                               View2D<Scalar, MemorySpace> const& partial, View1D<Scalar, MemorySpace> const& grad,
                               F const& f) {
  Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecutionSpace>(space, 0, ny),
                       RowReduction<N, Scalar, MemorySpace, F, is_host_space_v<ExecutionSpace>>{partial, f, nx});
  // The row sums: N x ny additions, on the calling thread of a host space
  // when a fork/join would cost more (run_small_on_caller; the same sums).
  auto const sum_rows = KOKKOS_LAMBDA(int k) {
    Scalar s = 0;
    for (int iy = 0; iy < ny; ++iy)
      s += partial(iy, k);
    grad(k) = s;
  };
  if (!run_small_on_caller(space, N, double(ny), sum_rows))
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecutionSpace>(space, 0, N), sum_rows);
}

}  // namespace detail
}  // namespace lensing

#endif  // LENSING_CORE_REDUCE_PARAMS_HPP
