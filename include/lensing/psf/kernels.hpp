#ifndef LENSING_PSF_KERNELS_HPP
#define LENSING_PSF_KERNELS_HPP

/// \file
/// Host-side construction of normalised, odd-sized PSF pixel kernels.

#include <lensing/core/errors.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace lensing {

/// A PSF sampled on an odd size x size pixel grid centred on its middle
/// pixel, row-major values(iy * size + ix), summing to 1 (flux-conserving).
/// Host value type; convolution operators copy it to their memory space.
template <class Scalar>
struct PsfKernel {
  int size = 0;
  std::vector<Scalar> values;
  int radius() const { return size / 2; }
  Scalar operator()(int iy, int ix) const { return values[std::size_t(iy) * size + ix]; }
};

/// A PsfKernel from user values (row-major size x size, e.g. a star stamp or
/// lenstronomy's `kernel_point_source`): checks that size is odd, the values
/// finite and their sum > 0, and normalises them to sum 1.
template <class Scalar>
PsfKernel<Scalar> pixel_kernel(std::vector<Scalar> values, int size) {
  constexpr char const* where = "lensing::pixel_kernel";
  check_count(size, 1, where, "size");
  check_argument(size % 2 == 1, where, "size must be odd (got " + std::to_string(size) + ")");
  check_argument(
      values.size() == std::size_t(size) * size, where,
      "expected size*size = " + std::to_string(size * size) + " values, got " + std::to_string(values.size()));
  long double sum = 0;
  for (Scalar v : values) {
    check_finite(v, where, "kernel value");
    sum += v;
  }
  check_argument(sum > 0, where, "kernel values must have a positive sum");
  for (Scalar& v : values)
    v = Scalar(v / sum);
  return {size, std::move(values)};
}

namespace detail {
inline double fwhm_to_sigma(double fwhm) { return fwhm / (2.0 * std::sqrt(2.0 * std::log(2.0))); }
}  // namespace detail

/// Circular Gaussian PSF with full width at half maximum `fwhm` [arcsec] on
/// pixels of `pixel_scale` [arcsec], integrated over each pixel
/// (erf differences, exact), truncated at `truncation` sigma (size =
/// 2 ceil(truncation sigma / pixel_scale) + 1) and renormalised to sum 1.
/// sigma = fwhm / (2 sqrt(2 ln 2)).  (lenstronomy's GAUSSIAN PSF instead
/// samples the Gaussian at pixel centres: see psf/gaussian_filter.hpp for
/// that variant.)  A pixel-integrated kernel applied to an image whose pixels
/// are already sub-pixel averages integrates the pixel twice (2% of the peak
/// for a 2-pixel FWHM): with supersampling k > 1, build it at pixel_scale / k
/// and use PsfSampling::supersampled (model/observation.hpp).
template <class Scalar>
PsfKernel<Scalar> gaussian_psf_kernel(double fwhm, double pixel_scale, double truncation = 5.0) {
  constexpr char const* where = "lensing::gaussian_psf_kernel";
  check_positive(fwhm, where, "fwhm");
  check_positive(pixel_scale, where, "pixel_scale");
  check_positive(truncation, where, "truncation");
  double const s = detail::fwhm_to_sigma(fwhm) / pixel_scale;
  double const rr = std::ceil(truncation * s);
  check_argument(rr <= 2048, where, "kernel wider than 4097 pixels");
  int const r = int(rr), n = 2 * r + 1;
  std::vector<double> w(n);
  for (int i = 0; i < n; ++i) {
    double const a = (i - r - 0.5) / (std::sqrt(2.0) * s), b = (i - r + 0.5) / (std::sqrt(2.0) * s);
    w[i] = 0.5 * (std::erf(b) - std::erf(a));
  }
  std::vector<Scalar> v(std::size_t(n) * n);
  for (int iy = 0; iy < n; ++iy)
    for (int ix = 0; ix < n; ++ix)
      v[std::size_t(iy) * n + ix] = Scalar(w[iy] * w[ix]);
  return pixel_kernel(std::move(v), n);
}

/// Circular Moffat PSF (Moffat 1969): I(r) ~ (1 + (r/alpha)^2)^(-beta),
/// alpha = fwhm / (2 sqrt(2^(1/beta) - 1)), beta > 1, on `size` x `size`
/// pixels (odd) of `pixel_scale` [arcsec]; each pixel is the average of
/// `oversampling` x `oversampling` point samples (pixel integration to
/// O(1/oversampling^2)), and the kernel is normalised to sum 1 (the wings
/// beyond the stamp are dropped).  Pixel-integrated: see gaussian_psf_kernel
/// on its use with supersampled images.
template <class Scalar>
PsfKernel<Scalar> moffat_psf_kernel(double fwhm, double beta, double pixel_scale, int size, int oversampling = 5) {
  constexpr char const* where = "lensing::moffat_psf_kernel";
  check_positive(fwhm, where, "fwhm");
  check_positive(pixel_scale, where, "pixel_scale");
  check_argument(std::isfinite(beta) && beta > 1, where, "beta must be finite and > 1");
  check_count(size, 1, where, "size");
  check_argument(size % 2 == 1, where, "size must be odd");
  check_count(oversampling, 1, where, "oversampling");
  double const alpha = fwhm / (2.0 * std::sqrt(std::pow(2.0, 1.0 / beta) - 1.0)) / pixel_scale;
  int const r = size / 2;
  std::vector<Scalar> v(std::size_t(size) * size);
  for (int iy = 0; iy < size; ++iy)
    for (int ix = 0; ix < size; ++ix) {
      double s = 0;
      for (int sy = 0; sy < oversampling; ++sy)
        for (int sx = 0; sx < oversampling; ++sx) {
          double const x = ix - r + (sx + 0.5) / oversampling - 0.5, y = iy - r + (sy + 0.5) / oversampling - 0.5;
          s += std::pow(1.0 + (x * x + y * y) / (alpha * alpha), -beta);
        }
      v[std::size_t(iy) * size + ix] = Scalar(s);
    }
  return pixel_kernel(std::move(v), size);
}

}  // namespace lensing

#endif  // LENSING_PSF_KERNELS_HPP
