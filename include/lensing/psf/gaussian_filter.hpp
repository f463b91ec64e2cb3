#ifndef LENSING_PSF_GAUSSIAN_FILTER_HPP
#define LENSING_PSF_GAUSSIAN_FILTER_HPP

/// \file
/// lenstronomy's GAUSSIAN PSF: scipy.ndimage.gaussian_filter(image, sigma,
/// mode='nearest', truncate=5), and its exact adjoint.

#include <lensing/core/errors.hpp>
#include <lensing/core/parallel.hpp>
#include <lensing/core/views.hpp>
#include <lensing/psf/convolution.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace lensing {

namespace detail {
template <class Rows, class Tag>
struct TaggedRows {
  Rows rows;
  LENSING_ROW_FUNCTION void operator()(long row) const { rows(Tag{}, row); }
};

#if defined(__GNUC__) && !defined(__CUDACC__)
// A 256-bit vector of float or double (GCC's vector extension; host code).
template <class T>
struct Vector256 {
  using type = T;
};
template <>
struct Vector256<float> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct Vector256<double> {
  typedef double type __attribute__((vector_size(32)));
};
#endif

// Capacity (scalars) of the edge-padded row buffer on the host stack; rows
// with nx + 2r above it use a buffer in memory.
inline constexpr int gaussian_filter_stack_pad = 1024;

// The four 1-D passes of GaussianFilter on images b0 + b (b < the batch
// chunk) of `in` / `out`, one image row (b, iy) per work item, each written
// as element-wise multiply-adds over a row (vectorisable without reordering
// sums; Unit: `in` and `out` rows have unit stride, else pointer + stride).  X: x pass in -> tmp through a row padded
// with its edge values ("nearest"); Y: y pass tmp -> out; YT, XT: their transposes (in -> tmp, tmp -> out), XT folding
// the padding back onto the edge pixels. StackPad: the padded row lives on the stack (host; no memory traffic for it),
// else in `pad` (devices, and rows wider than the stack buffer).
template <class Scalar, class MemorySpace, class In, class Out, bool Unit, bool StackPad>
struct GaussianFilterRows {
  struct X {};
  struct Y {};
  struct XT {};
  struct YT {};
  View1D<Scalar, MemorySpace> w;
  View3D<Scalar, MemorySpace> tmp, pad;  // (chunk, ny, nx), (chunk, ny, nx + 2r) or empty
  In in;
  Out out;
  long in_stride, out_stride;  // along ix
  int b0, r, ny, nx;

  // Host rows (GCC, Clang; not under nvcc, whose front end is not asked to
  // take the vector extension's arithmetic) run their full blocks of `block` outputs with the
  // sums over the taps in four vector registers (one load a tap and one
  // store a block; the tap loops below load and store every output at every
  // tap, which bounds them at one multiply-add a cycle per vector), the same
  // sums in the same order; the row's tail (and device rows) through the tap
  // loops.
#if defined(__GNUC__) && !defined(__CUDACC__)
  static constexpr bool host = std::is_same<MemorySpace, Kokkos::HostSpace>::value;
  using vec = typename Vector256<Scalar>::type;
  static constexpr int lanes = 32 / int(sizeof(Scalar));
#else
  static constexpr bool host = false;
  using vec = Scalar;
  static constexpr int lanes = 1;
#endif
  static constexpr int block = 4 * lanes;
  // out[i] = sum over m <= 2r of w(m) row(m)[i], i < block, m ascending.
  template <class RowAt, class Store>
  KOKKOS_FORCEINLINE_FUNCTION void block_sums(RowAt const& row_at, Store const& out) const {
    vec a0 = {}, a1 = {}, a2 = {}, a3 = {};
    for (int m = 0; m <= 2 * r; ++m) {
      Scalar const wm = w(m);
      Scalar const* q = row_at(m);
      vec q0, q1, q2, q3;
      std::memcpy(&q0, q, sizeof(vec));
      std::memcpy(&q1, q + lanes, sizeof(vec));
      std::memcpy(&q2, q + 2 * lanes, sizeof(vec));
      std::memcpy(&q3, q + 3 * lanes, sizeof(vec));
      a0 += wm * q0;
      a1 += wm * q1;
      a2 += wm * q2;
      a3 += wm * q3;
    }
    Scalar acc[block];
    std::memcpy(acc, &a0, sizeof(vec));
    std::memcpy(acc + lanes, &a1, sizeof(vec));
    std::memcpy(acc + 2 * lanes, &a2, sizeof(vec));
    std::memcpy(acc + 3 * lanes, &a3, sizeof(vec));
    for (int i = 0; i < block; ++i)
      out(i, acc[i]);
  }

  KOKKOS_INLINE_FUNCTION static int clamp(int i, int n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }
  // Weight of input i in output j of the 1-D "nearest" filter of length n:
  // sum of w_m over m with clamp(i + m) = j.
  KOKKOS_INLINE_FUNCTION Scalar weight(int n, int i, int j) const {
    if (j > 0 && j < n - 1) return w(j - i + r);
    Scalar s = 0;
    for (int m = -r; m <= r; ++m)
      if (clamp(i + m, n) == j) s += w(m + r);
    return s;
  }
  KOKKOS_INLINE_FUNCTION StridedRow<Unit, Scalar const> in_row(int b, int iy) const {
    return {&image_at(in, b0 + b, iy, 0), in_stride};
  }
  KOKKOS_INLINE_FUNCTION StridedRow<Unit, Scalar> out_row(int b, int iy) const {
    return {&image_at(out, b0 + b, iy, 0), out_stride};
  }

  KOKKOS_INLINE_FUNCTION void operator()(X, long row) const {
    int const b = int(row / ny), iy = int(row % ny);
    if constexpr (StackPad) {
      Scalar p[gaussian_filter_stack_pad];
      x_pass(b, iy, p);
    } else {
      x_pass(b, iy, &pad(b, iy, 0));
    }
  }
  KOKKOS_INLINE_FUNCTION void operator()(XT, long row) const {
    int const b = int(row / ny), iy = int(row % ny);
    if constexpr (StackPad) {
      Scalar p[gaussian_filter_stack_pad];
      xt_pass(b, iy, p);
    } else {
      xt_pass(b, iy, &pad(b, iy, 0));
    }
  }

  KOKKOS_INLINE_FUNCTION void x_pass(int b, int iy, Scalar* __restrict p) const {
    auto const src = in_row(b, iy);
    Scalar const left = src[0], right = src[nx - 1];
    for (int j = 0; j < r; ++j) {
      p[j] = left;
      p[r + nx + j] = right;
    }
    for (int ix = 0; ix < nx; ++ix)
      p[r + ix] = src[ix];
    Scalar* __restrict t = &tmp(b, iy, 0);
    int ix0 = 0;
    if constexpr (host) {
      for (; ix0 + block <= nx; ix0 += block) {
        block_sums([&](int m) { return p + m + ix0; }, [&](int i, Scalar v) { t[ix0 + i] = v; });
      }
    }
    for (int ix = ix0; ix < nx; ++ix)
      t[ix] = Scalar(0);
    for (int m = 0; m <= 2 * r; ++m) {  // offset m - r
      Scalar const wm = w(m);
      Scalar const* __restrict q = p + m;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
      for (int ix = ix0; ix < nx; ++ix)
        t[ix] += wm * q[ix];
    }
  }
  KOKKOS_INLINE_FUNCTION void operator()(Y, long row) const {
    int const b = int(row / ny), iy = int(row % ny);
    auto const o = out_row(b, iy);
    int ix0 = 0;
    if constexpr (host) {
      for (; ix0 + block <= nx; ix0 += block) {
        block_sums([&](int m) { return &tmp(b, clamp(iy + m - r, ny), ix0); },
                   [&](int i, Scalar v) { o[ix0 + i] = v; });
      }
    }
    for (int ix = ix0; ix < nx; ++ix)
      o[ix] = Scalar(0);
    for (int m = -r; m <= r; ++m) {
      Scalar const wm = w(m + r);
      Scalar const* __restrict src = &tmp(b, clamp(iy + m, ny), 0);
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
      for (int ix = ix0; ix < nx; ++ix)
        o[ix] += wm * src[ix];
    }
  }
  KOKKOS_INLINE_FUNCTION void operator()(YT, long row) const {
    int const b = int(row / ny), iy = int(row % ny);
    Scalar* __restrict t = &tmp(b, iy, 0);
    for (int ix = 0; ix < nx; ++ix)
      t[ix] = Scalar(0);
    for (int i = iy - r; i <= iy + r; ++i) {
      if (i < 0 || i >= ny) continue;
      Scalar const wi = weight(ny, i, iy);
      auto const src = in_row(b, i);
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
      for (int ix = 0; ix < nx; ++ix)
        t[ix] += wi * src[ix];
    }
  }
  KOKKOS_INLINE_FUNCTION void xt_pass(int b, int iy, Scalar* __restrict p) const {
    for (int j = 0; j < nx + 2 * r; ++j)
      p[j] = Scalar(0);
    Scalar const* __restrict t = &tmp(b, iy, 0);
    for (int m = 0; m <= 2 * r; ++m) {
      Scalar const wm = w(m);
      Scalar* __restrict dst = p + m;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
      for (int ix = 0; ix < nx; ++ix)
        dst[ix] += wm * t[ix];
    }
    // Padded index j holds input clamp(j - r): fold the padding back.
    auto const o = out_row(b, iy);
    for (int ix = 0; ix < nx; ++ix)
      o[ix] = p[ix + r];
    for (int j = 0; j < r; ++j) {
      o[0] += p[j];
      o[nx - 1] += p[nx + r + j];
    }
  }
};
}  // namespace detail

/// Separable Gaussian blur with the conventions of lenstronomy's GAUSSIAN PSF
/// (`GaussianConvolution`, which calls scipy.ndimage.gaussian_filter):
///   - sigma_pix = fwhm / (2 sqrt(2 ln 2)) / pixel_scale;
///   - 1-D weights w_m = exp(-m^2 / (2 sigma_pix^2)) at integer offsets
///     |m| <= r = floor(truncation sigma_pix + 0.5), normalised to sum 1
///     (point-sampled, not pixel-integrated);
///   - applied along x, then along y, with edge mode "nearest": pixels
///     outside the image take the value of the closest edge pixel
///     (out_i = sum_m w_m in_clamp(i + m)).
/// Reproduces lenstronomy's images with PSF to rounding (tests/psf).
/// apply_adjoint is the exact transpose: interior outputs gather w_{j-i},
/// the two edge rows/columns also collect the weight that "nearest" folded
/// onto them.
///
/// apply and apply_adjoint take one image (ny, nx) or a batch (n, ny, nx),
/// any n >= 1, of any layout: each image is filtered independently, with
/// the same sums in the same order as alone (bit-identical).  Each pass works
/// an image row at a time, rows of all images of the batch in parallel, with
/// element-wise multiply-adds (vectorised on the host, where the edge-padded
/// row is a stack buffer and the forward passes sum each block of four
/// 256-bit vectors over the taps in registers: 1.4x the tap-by-tap loop on
/// 64^2 images; one work item per row on devices too, adequate for the image
/// sizes here).  The work buffer holds `max_batch` images (a
/// constructor argument, default 1): larger batches are filtered max_batch
/// images at a time, two kernel launches each, so give the batch size the
/// filter will see (memory: max_batch ny nx scalars, plus as much again with
/// the padding on devices).  Owns its weights and buffers; asynchronous on
/// `space`.
template <class Scalar, class MemorySpace>
class GaussianFilter {
 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;
  /// apply / apply_adjoint take rank-3 batches (psf_accepts_batches_v).
  static constexpr bool accepts_batches = true;

  GaussianFilter() = default;
  GaussianFilter(double fwhm, double pixel_scale, int ny, int nx, double truncation = 5.0, int max_batch = 1)
      : m_ny(ny), m_nx(nx), m_batch(max_batch) {
    constexpr char const* where = "lensing::GaussianFilter";
    check_positive(fwhm, where, "fwhm");
    check_positive(pixel_scale, where, "pixel_scale");
    check_positive(truncation, where, "truncation");
    check_count(ny, 1, where, "ny");
    check_count(nx, 1, where, "nx");
    check_count(max_batch, 1, where, "max_batch");
    double const s = fwhm / (2.0 * std::sqrt(2.0 * std::log(2.0))) / pixel_scale;
    double const rr = std::floor(truncation * s + 0.5);
    check_argument(rr <= 4096, where, "filter wider than 8193 pixels");
    m_r = int(rr);
    std::vector<double> w(2 * m_r + 1);
    double sum = 0;
    for (int m = -m_r; m <= m_r; ++m)
      sum += (w[m + m_r] = std::exp(-0.5 * m * m / (s * s)));
    m_w = View1D<Scalar, MemorySpace>("lensing::GaussianFilter::weights", 2 * m_r + 1);
    auto h = Kokkos::create_mirror_view(m_w);
    for (int i = 0; i <= 2 * m_r; ++i)
      h(i) = Scalar(w[i] / sum);
    Kokkos::deep_copy(m_w, h);
    allocate_buffers();
  }

  int ny() const { return m_ny; }
  int nx() const { return m_nx; }
  int radius() const { return m_r; }
  /// Images filtered per pass of a batched apply (the work buffer's size).
  int max_batch() const { return m_batch; }
  View1D<Scalar, MemorySpace> const& weights() const { return m_w; }

  /// An independent copy: its own buffers (the weights, read-only, are shared),
  /// so the copy may be applied concurrently with this one.
  GaussianFilter clone() const {
    GaussianFilter c(*this);
    if (m_tmp.extent(0) > 0) c.allocate_buffers();
    return c;
  }

  /// out = G in, for one image (ny, nx) or each image of a batch (n, ny, nx).
  template <class ExecutionSpace, class In, class Out>
  void apply(ExecutionSpace const& space, In const& in, Out const& out) const {
    int const n =
        detail::check_image_pair<ExecutionSpace, Scalar>("lensing::GaussianFilter::apply", in, out, m_ny, m_nx);
    run(space, in, out, n, false);
  }

  /// out = G^T in, one image or a batch as apply.
  template <class ExecutionSpace, class In, class Out>
  void apply_adjoint(ExecutionSpace const& space, In const& in, Out const& out) const {
    int const n =
        detail::check_image_pair<ExecutionSpace, Scalar>("lensing::GaussianFilter::apply_adjoint", in, out, m_ny, m_nx);
    run(space, in, out, n, true);
  }

 private:
  // Host memory and rows that fit the stack buffer need no padded-row buffer
  // (not for memory that host and devices share: device kernels need it).
  bool stack_pad() const {
    return detail::is_host_space_v<typename MemorySpace::execution_space> &&
           m_nx + 2 * m_r <= detail::gaussian_filter_stack_pad;
  }
  void allocate_buffers() {
    constexpr char const* where = "lensing::GaussianFilter";
    m_tmp =
        allocate_view<View3D<Scalar, MemorySpace>>(where, "lensing::GaussianFilter::buffer", true, m_batch, m_ny, m_nx);
    m_pad = stack_pad() ? View3D<Scalar, MemorySpace>()
                        : allocate_view<View3D<Scalar, MemorySpace>>(where, "lensing::GaussianFilter::padded", true,
                                                                     m_batch, m_ny, long(m_nx) + 2 * m_r);
  }

  template <class ExecutionSpace, class In, class Out>
  void run(ExecutionSpace const& space, In const& in, Out const& out, int n, bool adjoint) const {
    bool const unit = detail::rows_contiguous(in) && detail::rows_contiguous(out);
    if constexpr (detail::is_host_space_v<ExecutionSpace>) {
      if (m_pad.extent(0) == 0) {
        if (unit)
          run_passes<true, true>(space, in, out, n, adjoint);
        else
          run_passes<false, true>(space, in, out, n, adjoint);
        return;
      }
    }
    if (unit)
      run_passes<true, false>(space, in, out, n, adjoint);
    else
      run_passes<false, false>(space, in, out, n, adjoint);
  }

  template <bool Unit, bool StackPad, class ExecutionSpace, class In, class Out>
  void run_passes(ExecutionSpace const& space, In const& in, Out const& out, int n, bool adjoint) const {
    using Rows = detail::GaussianFilterRows<Scalar, MemorySpace, In, Out, Unit, StackPad>;
    using Policy = Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>;
    long const in_stride = long(in.stride(In::rank - 1)), out_stride = long(out.stride(Out::rank - 1));
    for (int b0 = 0; b0 < n; b0 += m_batch) {
      long const rows_count = long(n - b0 < m_batch ? n - b0 : m_batch) * m_ny;
      Rows const rows{m_w, m_tmp, m_pad, in, out, in_stride, out_stride, b0, m_r, m_ny, m_nx};
      // A small image's pass runs on the calling thread (core/parallel.hpp).
      double const row_ns = double(m_nx) * double(2 * m_r + 1) * work_ns::filter_tap;
      auto const pass = [&](char const* name, auto const& f) {
        if (!detail::run_small_on_caller(space, rows_count, row_ns, f))
          Kokkos::parallel_for(name, Policy(space, 0, rows_count), f);
      };
      if (!adjoint) {
        pass("lensing::psf::gaussian_filter_x", detail::TaggedRows<Rows, typename Rows::X>{rows});
        pass("lensing::psf::gaussian_filter_y", detail::TaggedRows<Rows, typename Rows::Y>{rows});
      } else {
        pass("lensing::psf::gaussian_filter_y_adjoint", detail::TaggedRows<Rows, typename Rows::YT>{rows});
        pass("lensing::psf::gaussian_filter_x_adjoint", detail::TaggedRows<Rows, typename Rows::XT>{rows});
      }
    }
  }

  int m_ny = 0, m_nx = 0, m_r = 0, m_batch = 1;
  View1D<Scalar, MemorySpace> m_w;
  View3D<Scalar, MemorySpace> m_tmp, m_pad;
};

}  // namespace lensing

#endif  // LENSING_PSF_GAUSSIAN_FILTER_HPP
