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
#include <string>
#include <vector>

namespace lensing {

namespace detail {
template <class Rows, class Tag>
struct TaggedRows {
  Rows rows;
  KOKKOS_INLINE_FUNCTION void operator()(int iy) const { rows(Tag{}, iy); }
};

// The four 1-D passes of GaussianFilter, one image row per work item, each
// written as element-wise multiply-adds over a contiguous row (vectorisable
// without reordering sums).  X: x pass in -> tmp through a row padded with
// its edge values ("nearest"); Y: y pass tmp -> out; YT, XT: their
// transposes (in -> tmp, tmp -> out), XT folding the padding back onto the
// edge pixels.
template <class Scalar, class MemorySpace, class In, class Out>
struct GaussianFilterRows {
  struct X {};
  struct Y {};
  struct XT {};
  struct YT {};
  View1D<Scalar, MemorySpace> w;
  View2D<Scalar, MemorySpace> tmp, pad;
  In in;
  Out out;
  int r, ny, nx;

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
  KOKKOS_INLINE_FUNCTION void operator()(X, int iy) const {
    Scalar* p = &pad(iy, 0);
    for (int j = 0; j < nx + 2 * r; ++j)
      p[j] = in(iy, clamp(j - r, nx));
    Scalar* t = &tmp(iy, 0);
    for (int ix = 0; ix < nx; ++ix)
      t[ix] = Scalar(0);
    for (int m = -r; m <= r; ++m) {
      Scalar const wm = w(m + r);
      Scalar const* src = p + m + r;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
      for (int ix = 0; ix < nx; ++ix)
        t[ix] += wm * src[ix];
    }
  }
  KOKKOS_INLINE_FUNCTION void operator()(Y, int iy) const {
    for (int ix = 0; ix < nx; ++ix)
      out(iy, ix) = Scalar(0);
    for (int m = -r; m <= r; ++m) {
      Scalar const wm = w(m + r);
      Scalar const* src = &tmp(clamp(iy + m, ny), 0);
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
      for (int ix = 0; ix < nx; ++ix)
        out(iy, ix) += wm * src[ix];
    }
  }
  KOKKOS_INLINE_FUNCTION void operator()(YT, int iy) const {
    Scalar* t = &tmp(iy, 0);
    for (int ix = 0; ix < nx; ++ix)
      t[ix] = Scalar(0);
    for (int i = iy - r; i <= iy + r; ++i) {
      if (i < 0 || i >= ny) continue;
      Scalar const wi = weight(ny, i, iy);
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
      for (int ix = 0; ix < nx; ++ix)
        t[ix] += wi * in(i, ix);
    }
  }
  KOKKOS_INLINE_FUNCTION void operator()(XT, int iy) const {
    Scalar* p = &pad(iy, 0);
    for (int j = 0; j < nx + 2 * r; ++j)
      p[j] = Scalar(0);
    Scalar const* t = &tmp(iy, 0);
    for (int m = -r; m <= r; ++m) {
      Scalar const wm = w(m + r);
      Scalar* dst = p + m + r;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
      for (int ix = 0; ix < nx; ++ix)
        dst[ix] += wm * t[ix];
    }
    // Padded index j holds input clamp(j - r): fold the padding back.
    for (int ix = 0; ix < nx; ++ix)
      out(iy, ix) = p[ix + r];
    for (int j = 0; j < r; ++j) {
      out(iy, 0) += p[j];
      out(iy, nx - 1) += p[nx + r + j];
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
/// onto them.  Each pass works a row at a time with element-wise
/// multiply-adds (vectorised on the host; one work item per row on devices
/// too, adequate for the image sizes here).  Owns its weights and two
/// buffers; asynchronous on `space`.
template <class Scalar, class MemorySpace>
class GaussianFilter {
 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;

  GaussianFilter() = default;
  GaussianFilter(double fwhm, double pixel_scale, int ny, int nx, double truncation = 5.0) : m_ny(ny), m_nx(nx) {
    constexpr char const* where = "lensing::GaussianFilter";
    check_positive(fwhm, where, "fwhm");
    check_positive(pixel_scale, where, "pixel_scale");
    check_positive(truncation, where, "truncation");
    check_count(ny, 1, where, "ny");
    check_count(nx, 1, where, "nx");
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
    m_tmp = allocate_view<View2D<Scalar, MemorySpace>>(where, "lensing::GaussianFilter::buffer", true, ny, nx);
    m_pad = allocate_view<View2D<Scalar, MemorySpace>>(where, "lensing::GaussianFilter::padded", true, ny,
                                                       long(nx) + 2 * m_r);
  }

  int ny() const { return m_ny; }
  int nx() const { return m_nx; }
  int radius() const { return m_r; }
  View1D<Scalar, MemorySpace> const& weights() const { return m_w; }

  /// An independent copy: its own buffers (the weights, read-only, are shared),
  /// so the copy may be applied concurrently with this one.
  GaussianFilter clone() const {
    GaussianFilter c(*this);
    if (m_tmp.extent(0) > 0) {
      c.m_tmp = View2D<Scalar, MemorySpace>("lensing::GaussianFilter::buffer", m_ny, m_nx);
      c.m_pad = View2D<Scalar, MemorySpace>("lensing::GaussianFilter::padded", m_ny, m_nx + 2 * m_r);
    }
    return c;
  }

  /// out = G in.
  template <class ExecutionSpace, class In, class Out>
  void apply(ExecutionSpace const& space, In const& in, Out const& out) const {
    detail::check_image_pair<ExecutionSpace, Scalar>("lensing::GaussianFilter::apply", in, out, m_ny, m_nx);
    run(space, in, out, false);
  }

  /// out = G^T in.
  template <class ExecutionSpace, class In, class Out>
  void apply_adjoint(ExecutionSpace const& space, In const& in, Out const& out) const {
    detail::check_image_pair<ExecutionSpace, Scalar>("lensing::GaussianFilter::apply_adjoint", in, out, m_ny, m_nx);
    run(space, in, out, true);
  }

 private:
  template <class ExecutionSpace, class In, class Out>
  void run(ExecutionSpace const& space, In const& in, Out const& out, bool adjoint) const {
    using Rows = detail::GaussianFilterRows<Scalar, MemorySpace, In, Out>;
    Rows const rows{m_w, m_tmp, m_pad, in, out, m_r, m_ny, m_nx};
    using Policy = Kokkos::RangePolicy<ExecutionSpace>;
    if (!adjoint) {
      Kokkos::parallel_for("lensing::psf::gaussian_filter_x", Policy(space, 0, m_ny),
                           detail::TaggedRows<Rows, typename Rows::X>{rows});
      Kokkos::parallel_for("lensing::psf::gaussian_filter_y", Policy(space, 0, m_ny),
                           detail::TaggedRows<Rows, typename Rows::Y>{rows});
    } else {
      Kokkos::parallel_for("lensing::psf::gaussian_filter_y_adjoint", Policy(space, 0, m_ny),
                           detail::TaggedRows<Rows, typename Rows::YT>{rows});
      Kokkos::parallel_for("lensing::psf::gaussian_filter_x_adjoint", Policy(space, 0, m_ny),
                           detail::TaggedRows<Rows, typename Rows::XT>{rows});
    }
  }

  int m_ny = 0, m_nx = 0, m_r = 0;
  View1D<Scalar, MemorySpace> m_w;
  View2D<Scalar, MemorySpace> m_tmp, m_pad;
};

}  // namespace lensing

#endif  // LENSING_PSF_GAUSSIAN_FILTER_HPP
