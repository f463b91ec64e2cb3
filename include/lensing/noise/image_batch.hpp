#ifndef LENSING_NOISE_IMAGE_BATCH_HPP
#define LENSING_NOISE_IMAGE_BATCH_HPP

/// \file
/// What the noise and artefact models operate on: one image, a rank-2 View
/// (ny, nx), or a batch of images, a rank-3 View (n, ny, nx), both row-major
/// (iy, ix), on any execution space.  A rank-2 image is image 0 of a batch of
/// one.  Image b of a call with `first_image = f` draws its random numbers
/// from the streams of global image index f + b (core/random.hpp), so
/// a training set generated in chunks (resumed, or split over devices) equals
/// the one generated in one call.

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/core/views.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

namespace lensing {
namespace noise {
namespace detail {

/// Reference to pixel (b, iy, ix) of a rank-2 (b ignored) or rank-3 view.
template <class View>
KOKKOS_FORCEINLINE_FUNCTION typename View::reference_type at(View const& v, int b, int iy, int ix) {
  if constexpr (View::rank == 3) {
    return v(b, iy, ix);
  } else {
    (void)b;
    return v(iy, ix);
  }
}

/// Compile-time checks of an image or batch argument.
template <class ExecutionSpace, class View>
constexpr void static_check_images() {
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::noise: first argument must be a Kokkos execution space");
  static_assert(Kokkos::is_view<View>::value, "lensing::noise: images must be a Kokkos::View");
  static_assert(View::rank == 2 || View::rank == 3,
                "lensing::noise: images must be a rank-2 view (ny, nx) or a rank-3 batch (n, ny, nx)");
  static_assert(std::is_floating_point<typename View::non_const_value_type>::value,
                "lensing::noise: images must hold float or double");
  static_assert(!std::is_const<typename View::value_type>::value, "lensing::noise: images are modified in place");
  static_assert(is_accessible_from_v<ExecutionSpace, typename View::memory_space>,
                "lensing::noise: images must be accessible from the execution space");
}

/// (n, ny, nx) of an image (n = 1) or batch.
struct BatchShape {
  int n, ny, nx;
};
/// Throws std::invalid_argument unless the rows are contiguous (unit stride
/// along ix: LayoutRight, or a subview of one that keeps whole rows): the host
/// loops address each row through a pointer.  LayoutLeft or strided images are
/// refused rather than silently mis-indexed.
template <class View>
BatchShape batch_shape(View const& v) {
  std::size_t const nx = v.extent(View::rank - 1);
  std::size_t stride = 1;
  if constexpr (View::rank == 3)
    stride = v.stride_2();
  else
    stride = v.stride_1();
  check_argument(nx <= 1 || stride == 1, "lensing::noise",
                 "images must have contiguous rows (LayoutRight; unit stride along ix), got stride " +
                     std::to_string(stride) + " (copy a LayoutLeft or strided image into a LayoutRight view first)");
  if constexpr (View::rank == 3) {
    return {int(v.extent(0)), int(v.extent(1)), int(v.extent(2))};
  } else {
    return {1, int(v.extent(0)), int(v.extent(1))};
  }
}

/// Call f(b, iy, ix) for every pixel of every image.  Host spaces: one work
/// item per row with a unit-stride inner loop; device spaces: one per pixel.
template <class ExecutionSpace, class F>
void for_each_pixel(char const* name, ExecutionSpace const& space, BatchShape s, F const& f) {
  int const ny = s.ny, nx = s.nx;
  if constexpr (std::is_same<typename ExecutionSpace::memory_space, Kokkos::HostSpace>::value) {
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(s.n) * ny),
        KOKKOS_LAMBDA(long row) {
          int const b = int(row / ny), iy = int(row % ny);
          // A local copy of the functor: its views' extents and pointers can
          // then live in registers, so that the stores into the image cannot
          // alias them and the loop vectorises.
          F const g = f;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
          for (int ix = 0; ix < nx; ++ix)
            g(b, iy, ix);
        });
  } else {
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(s.n) * ny * nx),
        KOKKOS_LAMBDA(long i) {
          long const row = i / nx;
          f(int(row / ny), int(row % ny), int(i % nx));
        });
  }
}

/// Call f(b, iy, ix, v) with v a reference to pixel (b, iy, ix) of `images`,
/// for every pixel.  Host spaces: one work item per row, the row addressed
/// through a restrict pointer so that the inner loop vectorises (measured:
/// a View access in the loop body blocks GCC's vectoriser); device spaces:
/// one work item per pixel.
template <class ExecutionSpace, class View, class F>
void for_each_value(char const* name, ExecutionSpace const& space, View const& images, F const& f) {
  auto const s = batch_shape(images);
  int const ny = s.ny, nx = s.nx;
  using T = typename View::non_const_value_type;
  if constexpr (std::is_same<typename ExecutionSpace::memory_space, Kokkos::HostSpace>::value) {
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(s.n) * ny),
        KOKKOS_LAMBDA(long row) {
          int const b = int(row / ny), iy = int(row % ny);
          T* __restrict const p = &at(images, b, iy, 0);
          F const g = f;
          for (int ix = 0; ix < nx; ++ix)
            g(b, iy, ix, p[ix]);
        });
  } else {
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(s.n) * ny * nx),
        KOKKOS_LAMBDA(long i) {
          long const row = i / nx;
          int const b = int(row / ny), iy = int(row % ny), ix = int(i % nx);
          f(b, iy, ix, at(images, b, iy, ix));
        });
  }
}

/// Call f(b, iy, ix_begin, ix_end) over row segments covering every pixel:
/// whole rows on host spaces (so that per-image or per-row set-up is done
/// once per row), single pixels on device spaces.
template <class ExecutionSpace, class F>
void for_each_segment(char const* name, ExecutionSpace const& space, BatchShape s, F const& f) {
  int const ny = s.ny, nx = s.nx;
  if constexpr (std::is_same<typename ExecutionSpace::memory_space, Kokkos::HostSpace>::value) {
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(s.n) * ny),
        KOKKOS_LAMBDA(long row) { f(int(row / ny), int(row % ny), 0, nx); });
  } else {
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(s.n) * ny * nx),
        KOKKOS_LAMBDA(long i) {
          long const row = i / nx;
          int const ix = int(i % nx);
          f(int(row / ny), int(row % ny), ix, ix + 1);
        });
  }
}

/// Runtime checks: non-empty images.
inline void check_shape(BatchShape s, char const* where) {
  check_argument(s.n >= 1 && s.ny >= 1 && s.nx >= 1, where,
                 "images must be non-empty, got (n, ny, nx) = (" + std::to_string(s.n) + ", " + std::to_string(s.ny) +
                     ", " + std::to_string(s.nx) + ")");
}

/// Number of non-finite pixels (one reduction over the batch).
/// 1 when x is inf or NaN (all exponent bits set), else 0, from the bits.
KOKKOS_INLINE_FUNCTION int non_finite_bits(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, 4);
  return (b & 0x7f800000u) == 0x7f800000u ? 1 : 0;
}
KOKKOS_INLINE_FUNCTION int non_finite_bits(double x) {
  std::uint64_t b;
  std::memcpy(&b, &x, 8);
  return (b & 0x7ff0000000000000ULL) == 0x7ff0000000000000ULL ? 1 : 0;
}

template <class ExecutionSpace, class View>
long count_non_finite(ExecutionSpace const& space, View const& v, BatchShape s) {
  long bad = 0;
  long const ny = s.ny, nx = s.nx;
  if constexpr (std::is_same<typename ExecutionSpace::memory_space, Kokkos::HostSpace>::value) {
    if (v.stride(View::rank - 1) == 1) {
      // Host: a row loop on the exponent bits, which vectorises (isfinite
      // calls do not).
      using T = typename View::non_const_value_type;
      Kokkos::parallel_reduce(
          "lensing::noise::count_non_finite",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(s.n) * ny),
          KOKKOS_LAMBDA(long row, long& c) {
            T const* __restrict const p = &at(v, int(row / ny), int(row % ny), 0);
            long n = 0;
            for (long ix = 0; ix < nx; ++ix)
              n += non_finite_bits(p[ix]);
            c += n;
          },
          bad);
      space.fence();
      return bad;
    }
  }
  Kokkos::parallel_reduce(
      "lensing::noise::count_non_finite",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(s.n) * ny * nx),
      KOKKOS_LAMBDA(long i, long& c) {
        long const row = i / nx;
        c += math::isfinite(at(v, int(row / ny), int(row % ny), int(i % nx))) ? 0 : 1;
      },
      bad);
  space.fence();
  return bad;
}

}  // namespace detail
}  // namespace noise
}  // namespace lensing

#endif  // LENSING_NOISE_IMAGE_BATCH_HPP
