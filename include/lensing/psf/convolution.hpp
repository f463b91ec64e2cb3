#ifndef LENSING_PSF_CONVOLUTION_HPP
#define LENSING_PSF_CONVOLUTION_HPP

/// \file
/// Direct 2-D convolution of images with a PSF pixel kernel, and its adjoint.

#include <lensing/core/errors.hpp>
#include <lensing/core/parallel.hpp>
#include <lensing/core/views.hpp>
#include <lensing/psf/kernels.hpp>

#include <string>
#include <type_traits>

namespace lensing {

namespace detail {
// Images of a batch: a rank-2 view (iy, ix) is a batch of one (b is 0), a
// rank-3 view (b, iy, ix) a batch of extent(0) images.
template <class V>
KOKKOS_FORCEINLINE_FUNCTION typename V::reference_type image_at(V const& v, int b, int iy, int ix) {
  if constexpr (V::rank == 3) {
    return v(b, iy, ix);
  } else {
    (void)b;
    return v(iy, ix);
  }
}
template <class V>
int batch_size(V const& v) {
  if constexpr (V::rank == 3) {
    return int(v.extent(0));
  } else {
    (void)v;
    return 1;
  }
}
// Unit stride along ix (raw row pointers may be used).
template <class V>
bool rows_contiguous(V const& v) {
  return v.stride(V::rank - 1) == 1;
}

// Row iy of an image as a pointer and a stride along ix (every Kokkos layout
// stores a row with one stride); Unit: stride 1, known at compile time, so
// row loops vectorise as plain array loops.
template <bool Unit, class T>
struct StridedRow {
  T* p;
  long s;
  KOKKOS_FORCEINLINE_FUNCTION T& operator[](int i) const {
    if constexpr (Unit) {
      return p[i];
    } else {
      return p[i * s];
    }
  }
};

// Checks of apply(space, in, out) on one image (ny, nx) or a batch
// (n, ny, nx), n >= 1; returns the number of images.
template <class ExecutionSpace, class Scalar, class In, class Out>
int check_image_pair(char const* where, In const& in, Out const& out, int ny, int nx) {
  static_assert(is_execution_space_v<ExecutionSpace>, "lensing: first argument must be a Kokkos execution space");
  static_assert(Kokkos::is_view<In>::value && Kokkos::is_view<Out>::value, "lensing: images must be Kokkos views");
  static_assert((In::rank == 2 || In::rank == 3) && int(In::rank) == int(Out::rank),
                "lensing: images are rank-2 views (iy, ix) or rank-3 batches (b, iy, ix), input and output of the "
                "same rank");
  static_assert(std::is_same<typename Out::value_type, Scalar>::value,
                "lensing: the output image must hold the operator's scalar type");
  static_assert(std::is_same<typename In::non_const_value_type, Scalar>::value,
                "lensing: the input image must hold the operator's scalar type");
  static_assert(is_accessible_from_v<ExecutionSpace, typename In::memory_space> &&
                    is_accessible_from_v<ExecutionSpace, typename Out::memory_space>,
                "lensing: images must be accessible from the execution space");
  int const n = batch_size(in);
  if constexpr (In::rank == 3) {
    check_argument(n >= 1, where, "a batch (n, ny, nx) must hold at least one image, got n = 0");
    check_extents(in, where, "input", "(n, ny, nx)", n, ny, nx);
    check_extents(out, where, "output", "(n, ny, nx)", n, ny, nx);
  } else {
    check_extents(in, where, "input", "(ny, nx)", ny, nx);
    check_extents(out, where, "output", "(ny, nx)", ny, nx);
  }
  check_argument(in.data() != out.data(), where, "input and output must be different views");
  return n;
}

// f(b, iy, ix) for every pixel of n images ny x nx on `space`: host spaces
// one work item per image row with a vectorisable inner loop over ix (as
// parallel_for_pixels), devices one work item per pixel, ix fastest.
template <class F>
struct BatchRowLoop {
  F f;
  int ny, nx;
  KOKKOS_INLINE_FUNCTION void operator()(long row) const {
    int const b = int(row / ny), iy = int(row % ny);
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
    for (int ix = 0; ix < nx; ++ix)
      f(b, iy, ix);
  }
};
template <class ExecutionSpace, class F>
void parallel_for_batch_pixels(char const* name, ExecutionSpace const& space, int n, int ny, int nx, F const& f) {
  if constexpr (is_host_space_v<ExecutionSpace>) {
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(n) * ny),
                         BatchRowLoop<F>{f, ny, nx});
  } else {
    long const per_image = long(ny) * nx;
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * per_image),
        KOKKOS_LAMBDA(long i) {
          long const p = i % per_image;
          f(int(i / per_image), int(p / nx), int(p % nx));
        });
  }
}

// Host: one output row (b, iy) per work item, accumulated kernel tap by
// kernel tap (out(b, iy, ix) += K(a, c) in(b, iy + s a, ix + s c) for all
// valid ix at once): the inner loop is an element-wise multiply-add over ix,
// which vectorises without reordering any sum (a per-pixel dot product would
// not), and without a branch, so every product is contracted the same way
// (a per-tap branch in a per-pixel loop made the vectoriser fuse multiply and
// add in some lanes and not others: results differed in the last bit between
// a batch and its images).  Unit: rows with unit stride along ix (else
// pointer + stride: any layout).
template <class K, class In, class Out, bool Unit>
struct ConvolveRows {
  using Scalar = typename Out::non_const_value_type;
  K kernel;
  In in;
  Out out;
  long in_stride, out_stride;  // along ix
  int r, ny, nx, sign;
  KOKKOS_INLINE_FUNCTION void operator()(long row) const {
    int const bi = int(row / ny), iy = int(row % ny);
    StridedRow<Unit, Scalar> const o{&image_at(out, bi, iy, 0), out_stride};
    for (int ix = 0; ix < nx; ++ix)
      o[ix] = Scalar(0);
    for (int a = -r; a <= r; ++a) {
      int const jy = iy + sign * a;
      if (jy < 0 || jy >= ny) continue;
      StridedRow<Unit, Scalar const> const src{&image_at(in, bi, jy, 0), in_stride};
      for (int b = -r; b <= r; ++b) {
        int const sb = sign * b;
        int const lo = sb < 0 ? -sb : 0, hi = sb > 0 ? nx - sb : nx;  // 0 <= ix + sb < nx
        Scalar const w = kernel(r + a, r + b);
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
        for (int ix = lo; ix < hi; ++ix)
          o[ix] += w * src[ix + sb];
      }
    }
  }
};

// Taps t in [-r, r] with 0 <= i + sign t <= m - 1 (sign = +-1): [tap_lo, tap_hi].
KOKKOS_INLINE_FUNCTION int tap_lo(int i, int m, int r, int sign) {
  int const t = sign > 0 ? -i : i - (m - 1);
  return t > -r ? t : -r;
}
KOKKOS_INLINE_FUNCTION int tap_hi(int i, int m, int r, int sign) {
  int const t = sign > 0 ? m - 1 - i : i;
  return t < r ? t : r;
}

// Devices: one work item per output pixel (b, iy, ix), the same sums in the
// same order as ConvolveRows.  The taps that stay inside the image are a
// range of a and of c, computed up front: no per-tap branch.
template <class ExecutionSpace, class K, class In, class Out>
void convolve_pixels(char const* name, ExecutionSpace const& space, K const& kernel, In const& in, Out const& out,
                     int n, int r, int ny, int nx, int sign) {
  using Scalar = typename Out::non_const_value_type;
  parallel_for_batch_pixels(
      name, space, n, ny, nx, KOKKOS_LAMBDA(int bi, int iy, int ix) {
        int const a0 = tap_lo(iy, ny, r, sign), a1 = tap_hi(iy, ny, r, sign);
        int const b0 = tap_lo(ix, nx, r, sign), b1 = tap_hi(ix, nx, r, sign);
        Scalar s = 0;
        for (int a = a0; a <= a1; ++a)
          for (int b = b0; b <= b1; ++b)
            s += kernel(r + a, r + b) * image_at(in, bi, iy + sign * a, ix + sign * b);
        image_at(out, bi, iy, ix) = s;
      });
}
}  // namespace detail

/// Convolution of ny x nx images with a PsfKernel K of odd size 2R+1, zero
/// outside the image ("same" output size, as scipy.signal.fftconvolve(...,
/// mode='same') in lenstronomy's PIXEL PSF):
///
///   out(i, j) = sum_{a, b = -R..R} K(R + a, R + b) in(i - a, j - b),
///
/// and its exact adjoint (the correlation with K, again zero outside),
///   out(i, j) = sum_{a, b} K(R + a, R + b) in(i + a, j + b),
/// so <A x, y> = <x, A^T y>.  Direct summation, (2R+1)^2 multiply-adds per
/// pixel (vectorised row by row on the host: ~0.09 ns per multiply-add in
/// double): the right choice for kernels up to ~13 x 13 pixels; above that
/// FftConvolution (psf/fft_convolution.hpp) is faster.
/// apply and apply_adjoint take one image (ny, nx) or a batch (n, ny, nx),
/// n >= 1, of any layout, each image convolved independently with the same
/// sums in the same order as alone (bit-identical; one work item per image
/// row (b, iy) on the host, per pixel (b, iy, ix) on devices).
/// Owner of the kernel copy in MemorySpace; methods asynchronous on `space`.
template <class Scalar, class MemorySpace>
class DirectConvolution {
 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;
  /// apply / apply_adjoint take rank-3 batches (psf_accepts_batches_v).
  static constexpr bool accepts_batches = true;

  DirectConvolution() = default;
  DirectConvolution(PsfKernel<Scalar> const& kernel, int ny, int nx) : m_ny(ny), m_nx(nx), m_r(kernel.radius()) {
    constexpr char const* where = "lensing::DirectConvolution";
    check_count(ny, 1, where, "ny");
    check_count(nx, 1, where, "nx");
    check_argument(kernel.size % 2 == 1 && kernel.values.size() == std::size_t(kernel.size) * kernel.size, where,
                   "kernel must be odd-sized and square (build it with lensing::pixel_kernel)");
    m_kernel = View2D<Scalar, MemorySpace>("lensing::DirectConvolution::kernel", kernel.size, kernel.size);
    auto h = Kokkos::create_mirror_view(m_kernel);
    for (int a = 0; a < kernel.size; ++a)
      for (int b = 0; b < kernel.size; ++b)
        h(a, b) = kernel(a, b);
    Kokkos::deep_copy(m_kernel, h);
  }

  int ny() const { return m_ny; }
  int nx() const { return m_nx; }
  View2D<Scalar, MemorySpace> const& kernel() const { return m_kernel; }

  /// out = K * in, for one image (ny, nx) or each image of a batch (n, ny, nx).
  template <class ExecutionSpace, class In, class Out>
  void apply(ExecutionSpace const& space, In const& in, Out const& out) const {
    int const n =
        detail::check_image_pair<ExecutionSpace, Scalar>("lensing::DirectConvolution::apply", in, out, m_ny, m_nx);
    run(space, in, out, n, -1, "lensing::psf::convolve");
  }
  /// out = K^T in (correlation), one image or a batch as apply.
  template <class ExecutionSpace, class In, class Out>
  void apply_adjoint(ExecutionSpace const& space, In const& in, Out const& out) const {
    int const n = detail::check_image_pair<ExecutionSpace, Scalar>("lensing::DirectConvolution::apply_adjoint", in, out,
                                                                   m_ny, m_nx);
    run(space, in, out, n, +1, "lensing::psf::convolve_adjoint");
  }

 private:
  template <class ExecutionSpace, class In, class Out>
  void run(ExecutionSpace const& space, In const& in, Out const& out, int n, int sign, char const* name) const {
    if constexpr (detail::is_host_space_v<ExecutionSpace>) {
      if (detail::rows_contiguous(in) && detail::rows_contiguous(out))
        run_rows<true>(space, in, out, n, sign, name);
      else
        run_rows<false>(space, in, out, n, sign, name);
    } else {
      detail::convolve_pixels(name, space, m_kernel, in, out, n, m_r, m_ny, m_nx, sign);
    }
  }
  template <bool Unit, class ExecutionSpace, class In, class Out>
  void run_rows(ExecutionSpace const& space, In const& in, Out const& out, int n, int sign, char const* name) const {
    using Rows = detail::ConvolveRows<View2D<Scalar, MemorySpace>, In, Out, Unit>;
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(n) * m_ny),
        Rows{m_kernel, in, out, long(in.stride(In::rank - 1)), long(out.stride(Out::rank - 1)), m_r, m_ny, m_nx, sign});
  }

  int m_ny = 0, m_nx = 0, m_r = 0;
  View2D<Scalar, MemorySpace> m_kernel;
};

}  // namespace lensing

#endif  // LENSING_PSF_CONVOLUTION_HPP
