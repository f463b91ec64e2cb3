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
template <class ExecutionSpace, class Scalar, class In, class Out>
void check_image_pair(char const* where, In const& in, Out const& out, int ny, int nx) {
  static_assert(is_execution_space_v<ExecutionSpace>, "lensing: first argument must be a Kokkos execution space");
  static_assert(In::rank == 2 && Out::rank == 2, "lensing: images are rank-2 views (iy, ix)");
  static_assert(std::is_same<typename Out::value_type, Scalar>::value,
                "lensing: the output image must hold the operator's scalar type");
  static_assert(std::is_same<typename In::non_const_value_type, Scalar>::value,
                "lensing: the input image must hold the operator's scalar type");
  static_assert(is_accessible_from_v<ExecutionSpace, typename In::memory_space> &&
                    is_accessible_from_v<ExecutionSpace, typename Out::memory_space>,
                "lensing: images must be accessible from the execution space");
  check_extents(in, where, "input", "(ny, nx)", ny, nx);
  check_extents(out, where, "output", "(ny, nx)", ny, nx);
  check_argument(in.data() != out.data(), where, "input and output must be different views");
}

// Host: one output row per work item, accumulated kernel tap by kernel tap
// (out(iy, ix) += K(a, b) in(iy + s a, ix + s b) for all valid ix at once):
// the inner loop is an element-wise multiply-add over ix, which vectorises
// without reordering any sum (a per-pixel dot product would not).
template <class K, class In, class Out>
struct ConvolveRows {
  using Scalar = typename Out::non_const_value_type;
  K kernel;
  In in;
  Out out;
  int r, ny, nx, sign;
  KOKKOS_INLINE_FUNCTION void operator()(int iy) const {
    Scalar* o = &out(iy, 0);
    for (int ix = 0; ix < nx; ++ix)
      o[ix] = Scalar(0);
    for (int a = -r; a <= r; ++a) {
      int const jy = iy + sign * a;
      if (jy < 0 || jy >= ny) continue;
      for (int b = -r; b <= r; ++b) {
        int const sb = sign * b;
        int const lo = sb < 0 ? -sb : 0, hi = sb > 0 ? nx - sb : nx;  // 0 <= ix + sb < nx
        Scalar const w = kernel(r + a, r + b);
        auto const* src = &in(jy, 0) + sb;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
        for (int ix = lo; ix < hi; ++ix)
          o[ix] += w * src[ix];
      }
    }
  }
};

// Devices: one thread per output pixel.
template <class ExecutionSpace, class K, class In, class Out>
void convolve_pixels(char const* name, ExecutionSpace const& space, K const& kernel, In const& in, Out const& out,
                     int r, int ny, int nx, int sign) {
  using Scalar = typename Out::non_const_value_type;
  parallel_for_pixels(
      name, space, ny, nx, KOKKOS_LAMBDA(int iy, int ix) {
        Scalar s = 0;
        for (int a = -r; a <= r; ++a) {
          int const jy = iy + sign * a;
          if (jy < 0 || jy >= ny) continue;
          for (int b = -r; b <= r; ++b) {
            int const jx = ix + sign * b;
            if (jx >= 0 && jx < nx) s += kernel(r + a, r + b) * in(jy, jx);
          }
        }
        out(iy, ix) = s;
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
/// Owner of the kernel copy in MemorySpace; methods asynchronous on `space`.
template <class Scalar, class MemorySpace>
class DirectConvolution {
 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;

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

  /// out = K * in.
  template <class ExecutionSpace, class In, class Out>
  void apply(ExecutionSpace const& space, In const& in, Out const& out) const {
    detail::check_image_pair<ExecutionSpace, Scalar>("lensing::DirectConvolution::apply", in, out, m_ny, m_nx);
    run(space, in, out, -1, "lensing::psf::convolve");
  }
  /// out = K^T in (correlation).
  template <class ExecutionSpace, class In, class Out>
  void apply_adjoint(ExecutionSpace const& space, In const& in, Out const& out) const {
    detail::check_image_pair<ExecutionSpace, Scalar>("lensing::DirectConvolution::apply_adjoint", in, out, m_ny, m_nx);
    run(space, in, out, +1, "lensing::psf::convolve_adjoint");
  }

 private:
  template <class ExecutionSpace, class In, class Out>
  void run(ExecutionSpace const& space, In const& in, Out const& out, int sign, char const* name) const {
    // The row kernel walks raw row pointers, so it needs unit stride along ix
    // (LayoutRight, or a LayoutStride view with contiguous rows); any other
    // layout (LayoutLeft, strided subviews) goes through view(iy, ix).
    bool const rows_contiguous = in.stride_1() == 1 && out.stride_1() == 1;
    if constexpr (detail::is_host_space_v<ExecutionSpace>) {
      if (!rows_contiguous) {
        detail::convolve_pixels(name, space, m_kernel, in, out, m_r, m_ny, m_nx, sign);
        return;
      }
      Kokkos::parallel_for(
          name, Kokkos::RangePolicy<ExecutionSpace>(space, 0, m_ny),
          detail::ConvolveRows<View2D<Scalar, MemorySpace>, In, Out>{m_kernel, in, out, m_r, m_ny, m_nx, sign});
    } else {
      (void)rows_contiguous;
      detail::convolve_pixels(name, space, m_kernel, in, out, m_r, m_ny, m_nx, sign);
    }
  }

  int m_ny = 0, m_nx = 0, m_r = 0;
  View2D<Scalar, MemorySpace> m_kernel;
};

}  // namespace lensing

#endif  // LENSING_PSF_CONVOLUTION_HPP
