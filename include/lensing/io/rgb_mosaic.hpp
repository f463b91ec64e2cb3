#ifndef LENSING_IO_RGB_MOSAIC_HPP
#define LENSING_IO_RGB_MOSAIC_HPP

/// \file
/// Colour pictures of three-band images: the asinh colour mapping of Lupton
/// et al. (2004, PASP 116, 133), and a PNG mosaic of a batch (m, 3, ny, nx)
/// — e.g. a MultiBandSimulator's LSST-like g, r, i channels shown as
/// blue, green, red.  Host only, like io/png.hpp.

#include <lensing/core/errors.hpp>
#include <lensing/io/png.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace lensing {
namespace io {

/// Settings of the Lupton et al. (2004) asinh colour mapping and of the mosaic.
///
/// Per pixel, with channel values (b, g, r) (input channels 0, 1, 2: the
/// bluest band first) times `scales`, minus `minimum`:
///   I = (b + g + r) / 3,   F(I) = asinh(q I / stretch) / q,
///   (B, G, R) = (b, g, r) F(I) / I,
/// then divided by max(B, G, R) where that exceeds 1 (so saturated pixels
/// keep their hue instead of turning white), clipped to [0, 1] and mapped
/// to 0..255 (I <= 0: black; a non-finite value: mid grey).  F is linear,
/// F ~ I / stretch, for I << stretch / q and logarithmic above; the colour
/// of a pixel is the ratio of its channels whatever its brightness.
/// stretch <= 0 picks it from the data: the `auto_percentile` percentile
/// I_p of I over all pixels of the batch maps to F(I_p) = auto_level.
struct RgbOptions {
  double q = 3;
  double stretch = 0;
  double minimum = 0;
  std::array<double, 3> scales{{1, 1, 1}};  ///< channel weights, input order (bluest first)
  double auto_percentile = 99.5;
  double auto_level = 1.0;
  int columns = 0;  ///< tiles per mosaic row; 0: ceil(sqrt(m))
  int scale = 1;    ///< screen pixels per image pixel
  int gap = 1;      ///< pixels between tiles (dark grey)

  /// Throws std::invalid_argument ("<where>: ...") for a bad setting.
  void check(char const* where) const {
    check_positive(q, where, "q");
    check_finite(stretch, where, "stretch");
    check_finite(minimum, where, "minimum");
    for (double s : scales)
      check_finite(s, where, "scales");
    check_argument(auto_percentile > 0 && auto_percentile <= 100, where,
                   lensing::detail::describe("auto_percentile", "in (0, 100]", auto_percentile));
    check_argument(auto_level > 0 && auto_level <= 1, where,
                   lensing::detail::describe("auto_level", "in (0, 1]", auto_level));
    check_count(columns, 0, where, "columns");
    check_count(scale, 1, where, "scale");
    check_count(gap, 0, where, "gap");
  }
};

/// The colour of one pixel with channel values (blue, green, red), already
/// weighted and with the minimum subtracted, for a stretch > 0 (see RgbOptions).
inline Rgb lupton_rgb(double blue, double green, double red, double q, double stretch) {
  if (!(std::isfinite(blue) && std::isfinite(green) && std::isfinite(red))) return {128, 128, 128};
  double const I = (blue + green + red) / 3;
  if (!(I > 0)) return {0, 0, 0};
  double const f = std::asinh(q * I / stretch) / q / I;
  double c[3] = {red * f, green * f, blue * f};
  double const top = std::max(c[0], std::max(c[1], c[2]));
  for (double& v : c) {
    if (top > 1) v /= top;
    v = std::min(1.0, std::max(0.0, v));
  }
  auto const byte = [](double v) { return static_cast<std::uint8_t>(std::lround(255 * v)); };
  return {byte(c[0]), byte(c[1]), byte(c[2])};
}

namespace detail {
// Intensities I of every pixel of a batch (m, 3, ny, nx) (finite ones only).
inline std::vector<double> rgb_intensities(double const* values, int m, int ny, int nx, RgbOptions const& o) {
  std::size_t const plane = std::size_t(ny) * nx;
  std::vector<double> I;
  I.reserve(std::size_t(m) * plane);
  for (int j = 0; j < m; ++j) {
    double const* v = values + std::size_t(j) * 3 * plane;
    for (std::size_t p = 0; p < plane; ++p) {
      double const s =
          (o.scales[0] * v[p] + o.scales[1] * v[plane + p] + o.scales[2] * v[2 * plane + p]) / 3 - o.minimum;
      if (std::isfinite(s)) I.push_back(s);
    }
  }
  return I;
}
}  // namespace detail

/// The stretch used for a batch (m, 3, ny, nx): o.stretch when > 0, else
/// the automatic one of RgbOptions (1 when no intensity is positive).
inline double rgb_stretch(double const* values, int m, int ny, int nx, RgbOptions const& o) {
  if (o.stretch > 0) return o.stretch;
  auto I = detail::rgb_intensities(values, m, ny, nx, o);
  if (I.empty()) return 1;
  std::size_t const k = std::min(I.size() - 1, std::size_t(o.auto_percentile / 100 * double(I.size() - 1) + 0.5));
  std::nth_element(I.begin(), I.begin() + std::ptrdiff_t(k), I.end());
  double const Ip = I[k];
  if (!(Ip > 0)) return 1;
  // asinh(q Ip / stretch) / q = auto_level.
  return o.q * Ip / std::sinh(o.q * o.auto_level);
}

/// A mosaic canvas of a batch (m, 3, ny, nx) of three-band images, row-major
/// (values[((j 3 + c) ny + iy) nx + ix], channel c = 0 the bluest band,
/// shown blue; 2 the reddest, shown red), each image with row 0 at the
/// bottom (y up, as lensing images); tiles left to right, top to bottom,
/// one stretch for all (RgbOptions), so colours and brightness compare
/// across tiles.
inline Canvas rgb_mosaic(double const* values, int m, int ny, int nx, RgbOptions const& o = {}) {
  constexpr char const* where = "lensing::io::rgb_mosaic";
  check_count(m, 1, where, "m");
  check_count(ny, 1, where, "ny");
  check_count(nx, 1, where, "nx");
  o.check(where);
  int const cols = o.columns > 0 ? std::min(o.columns, m) : int(std::ceil(std::sqrt(double(m)) - 1e-9));
  int const rows = (m + cols - 1) / cols;
  int const tw = nx * o.scale, th = ny * o.scale;
  check_argument(double(cols) * (tw + o.gap) < 1e5 && double(rows) * (th + o.gap) < 1e5, where,
                 "the mosaic would exceed 100000 pixels on a side");
  Canvas canvas(cols * tw + (cols - 1) * o.gap, rows * th + (rows - 1) * o.gap, Rgb{40, 40, 40});
  double const stretch = rgb_stretch(values, m, ny, nx, o);
  std::size_t const plane = std::size_t(ny) * nx;
  for (int j = 0; j < m; ++j) {
    int const c0 = (j % cols) * (tw + o.gap), r0 = (j / cols) * (th + o.gap);
    double const* v = values + std::size_t(j) * 3 * plane;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        std::size_t const p = std::size_t(iy) * nx + ix;
        Rgb const c = lupton_rgb(o.scales[0] * v[p] - o.minimum, o.scales[1] * v[plane + p] - o.minimum,
                                 o.scales[2] * v[2 * plane + p] - o.minimum, o.q, stretch);
        int const row = r0 + (ny - 1 - iy) * o.scale, col = c0 + ix * o.scale;
        for (int a = 0; a < o.scale; ++a)
          for (int b = 0; b < o.scale; ++b)
            canvas.set(col + b, row + a, c);
      }
  }
  return canvas;
}

/// Write a batch (m, 3, ny, nx) as a colour mosaic PNG (rgb_mosaic); throws
/// std::invalid_argument for bad extents or settings and std::runtime_error
/// if the file cannot be written (a previous file is then left intact:
/// Canvas::write).
inline void write_rgb_mosaic(std::string const& path, std::vector<double> const& values, int m, int ny, int nx,
                             RgbOptions const& o = {}) {
  check_argument(
      values.size() == std::size_t(m) * 3 * std::size_t(ny) * std::size_t(nx) && m >= 1 && ny >= 1 && nx >= 1,
      "lensing::io::write_rgb_mosaic",
      "values must hold m * 3 * ny * nx = " + std::to_string(long(m) * 3 * ny * nx) + " numbers, got " +
          std::to_string(values.size()));
  rgb_mosaic(values.data(), m, ny, nx, o).write(path);
}

}  // namespace io
}  // namespace lensing

#endif  // LENSING_IO_RGB_MOSAIC_HPP
