#ifndef LENSING_IO_PNG_HPP
#define LENSING_IO_PNG_HPP

/// \file
/// PNG output for pictures people would rather look at than read: images
/// with a colour map, and a small RGB canvas for plots (lines, markers,
/// polylines, text in a built-in 5 x 7 bitmap font: io/font.hpp).  Host only.  Uses stb_image_write (Debian
/// libstb-dev), compiled into every including translation unit as static functions.

#include <lensing/core/errors.hpp>
#include <lensing/io/file.hpp>
#include <lensing/io/font.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#if !defined(LENSING_STB_IMAGE_WRITE_INCLUDED)
#define LENSING_STB_IMAGE_WRITE_INCLUDED
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

namespace lensing {
namespace io {

/// An 8-bit RGB colour.
struct Rgb {
  std::uint8_t r, g, b;
};

/// Colour maps for scalar images.
enum class ColorMap {
  gray,      ///< black to white
  magma,     ///< perceptually uniform, dark purple to light yellow (approximation)
  diverging  ///< blue - white - red, for signed residuals
};

/// Colour of t in [0, 1] (clamped; NaN maps to mid grey).
inline Rgb colour(ColorMap map, double t) {
  if (!std::isfinite(t)) return {128, 128, 128};
  t = std::min(1.0, std::max(0.0, t));
  auto lerp = [](double a, double b, double u) { return static_cast<std::uint8_t>(std::lround(a + (b - a) * u)); };
  switch (map) {
    case ColorMap::gray: {
      auto const v = lerp(0, 255, t);
      return {v, v, v};
    }
    case ColorMap::diverging: {
      if (t < 0.5) {
        double const u = t / 0.5;
        return {lerp(33, 247, u), lerp(102, 247, u), lerp(172, 247, u)};
      }
      double const u = (t - 0.5) / 0.5;
      return {lerp(247, 178, u), lerp(247, 24, u), lerp(247, 43, u)};
    }
    case ColorMap::magma:
    default: {
      // Piecewise-linear through 5 anchor colours of a magma-like map.
      static double const anchors[5][3] = {{0, 0, 4}, {81, 18, 124}, {183, 55, 121}, {252, 137, 97}, {252, 253, 191}};
      double const s = t * 4;
      int const i = std::min(3, static_cast<int>(s));
      double const u = s - i;
      return {lerp(anchors[i][0], anchors[i + 1][0], u), lerp(anchors[i][1], anchors[i + 1][1], u),
              lerp(anchors[i][2], anchors[i + 1][2], u)};
    }
  }
}

/// An RGB picture in memory, row 0 at the top.  Plot coordinates can be
/// mapped with set_window so that y increases upwards (sky convention).
class Canvas {
 public:
  Canvas(int width, int height, Rgb background = {255, 255, 255}) : m_w(width), m_h(height) {
    check_count(width, 1, "lensing::io::Canvas", "width");
    check_count(height, 1, "lensing::io::Canvas", "height");
    m_pixels.assign(static_cast<size_t>(width) * height * 3, 0);
    for (int i = 0; i < width * height; ++i)
      set_index(i, background);
  }
  int width() const { return m_w; }
  int height() const { return m_h; }

  /// World window [x0, x1] x [y0, y1] mapped onto the canvas (y up).
  void set_window(double x0, double x1, double y0, double y1) {
    check_argument(x1 > x0 && y1 > y0, "lensing::io::Canvas::set_window", "need x1 > x0 and y1 > y0");
    m_x0 = x0;
    m_x1 = x1;
    m_y0 = y0;
    m_y1 = y1;
  }
  double to_col(double x) const { return (x - m_x0) / (m_x1 - m_x0) * m_w - 0.5; }
  double to_row(double y) const { return (m_y1 - y) / (m_y1 - m_y0) * m_h - 0.5; }

  void set(int col, int row, Rgb c) {
    if (col >= 0 && col < m_w && row >= 0 && row < m_h) set_index(row * m_w + col, c);
  }
  Rgb get(int col, int row) const {
    size_t const i = 3 * (static_cast<size_t>(row) * m_w + col);
    return {m_pixels[i], m_pixels[i + 1], m_pixels[i + 2]};
  }

  /// Scalar image (ny, nx) given row-major with row 0 at the bottom (as lensing
  /// images, y up), scaled from [vmin, vmax] through `map`, stretched over the
  /// whole canvas.
  void draw_image(std::vector<double> const& values, int nx, int ny, double vmin, double vmax,
                  ColorMap map = ColorMap::magma) {
    check_argument(values.size() == static_cast<size_t>(nx) * ny, "lensing::io::Canvas::draw_image",
                   "values.size() must be nx * ny");
    check_argument(vmax > vmin, "lensing::io::Canvas::draw_image", "need vmax > vmin");
    for (int r = 0; r < m_h; ++r)
      for (int c = 0; c < m_w; ++c) {
        int const ix = std::min(nx - 1, c * nx / m_w), iy = std::min(ny - 1, (m_h - 1 - r) * ny / m_h);
        set(c, r, colour(map, (values[static_cast<size_t>(iy) * nx + ix] - vmin) / (vmax - vmin)));
      }
  }

  /// Line between world points (Bresenham on the mapped coordinates).
  void line(double xa, double ya, double xb, double yb, Rgb c, int thickness = 1) {
    if (!(std::isfinite(xa) && std::isfinite(ya) && std::isfinite(xb) && std::isfinite(yb))) return;
    int x0 = static_cast<int>(std::lround(to_col(xa))), y0 = static_cast<int>(std::lround(to_row(ya)));
    int const x1 = static_cast<int>(std::lround(to_col(xb))), y1 = static_cast<int>(std::lround(to_row(yb)));
    int const dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (int guard = 0; guard < 4 * (m_w + m_h) + 8; ++guard) {
      dot(x0, y0, c, thickness);
      if (x0 == x1 && y0 == y1) break;
      int const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }
  /// Open or closed polyline through world points.
  void polyline(std::vector<double> const& xs, std::vector<double> const& ys, Rgb c, bool closed = false,
                int thickness = 1) {
    size_t const n = std::min(xs.size(), ys.size());
    for (size_t i = 0; i + 1 < n; ++i)
      line(xs[i], ys[i], xs[i + 1], ys[i + 1], c, thickness);
    if (closed && n > 2) line(xs[n - 1], ys[n - 1], xs[0], ys[0], c, thickness);
  }
  /// Filled disc marker of `radius` pixels at a world point.
  void marker(double x, double y, Rgb c, int radius = 3) {
    int const cx = static_cast<int>(std::lround(to_col(x))), cy = static_cast<int>(std::lround(to_row(y)));
    for (int r = -radius; r <= radius; ++r)
      for (int q = -radius; q <= radius; ++q)
        if (q * q + r * r <= radius * radius) set(cx + q, cy + r, c);
  }

  /// Text with its first glyph's top-left corner at canvas pixel (col,
  /// row), in the built-in 5 x 7 font (io/font.hpp) magnified `scale` times
  /// (each font pixel a scale x scale block); '\n' starts a new line.
  /// Clipped to the canvas.  Returns the column just after the last line's
  /// last character.
  int text(int col, int row, std::string const& s, Rgb c, int scale = 1) {
    check_count(scale, 1, "lensing::io::Canvas::text", "scale");
    int x = col, y = row;
    for (char ch : s) {
      if (ch == '\n') {
        x = col;
        y += Font5x7::line_height * scale;
        continue;
      }
      for (int r = 0; r < Font5x7::height; ++r)
        for (int q = 0; q < Font5x7::width; ++q)
          if (Font5x7::pixel(ch, q, r))
            for (int a = 0; a < scale; ++a)
              for (int b = 0; b < scale; ++b)
                set(x + q * scale + b, y + r * scale + a, c);
      x += Font5x7::advance * scale;
    }
    return x;
  }
  /// Width in pixels of the widest line of `s` drawn by text() (no trailing gap).
  static int text_width(std::string const& s, int scale = 1) {
    int widest = 0, n = 0;
    for (char ch : s) {
      n = ch == '\n' ? 0 : n + 1;
      widest = std::max(widest, n);
    }
    return widest > 0 ? (widest * Font5x7::advance - 1) * scale : 0;
  }
  /// Height in pixels of `s` drawn by text().
  static int text_height(std::string const& s, int scale = 1) {
    int lines = 1;
    for (char ch : s)
      lines += ch == '\n' ? 1 : 0;
    return ((lines - 1) * Font5x7::line_height + Font5x7::height) * scale;
  }

  /// Write as PNG; throws std::runtime_error if the file cannot be written.
  /// The PNG is encoded in memory and replaces `path` atomically (a
  /// temporary beside it, then a rename; io/file.hpp), so a failed write
  /// leaves a previous file intact.
  void write(std::string const& path) const {
    std::vector<unsigned char> png;
    auto const append = [](void* context, void* data, int size) {
      auto* out = static_cast<std::vector<unsigned char>*>(context);
      auto const* bytes = static_cast<unsigned char const*>(data);
      out->insert(out->end(), bytes, bytes + size);
    };
    if (!stbi_write_png_to_func(append, &png, m_w, m_h, 3, m_pixels.data(), m_w * 3))
      throw std::runtime_error("lensing::io::Canvas::write: cannot encode " + path);
    write_file_atomically(path, png.data(), png.size(), "lensing::io::Canvas::write");
  }

 private:
  void set_index(int i, Rgb c) {
    m_pixels[3 * size_t(i)] = c.r;
    m_pixels[3 * size_t(i) + 1] = c.g;
    m_pixels[3 * size_t(i) + 2] = c.b;
  }
  void dot(int col, int row, Rgb c, int thickness) {
    int const h = thickness / 2;
    for (int r = -h; r <= h; ++r)
      for (int q = -h; q <= h; ++q)
        set(col + q, row + r, c);
  }
  int m_w, m_h;
  double m_x0 = 0, m_x1 = 1, m_y0 = 0, m_y1 = 1;
  std::vector<std::uint8_t> m_pixels;
};

/// Write a scalar image (ny, nx), row 0 at the bottom, as a PNG of
/// `scale` x `scale` screen pixels per image pixel, mapped from [vmin, vmax]
/// (vmin == vmax: the image's own range).
inline void write_png(std::string const& path, std::vector<double> const& values, int nx, int ny, double vmin = 0,
                      double vmax = 0, ColorMap map = ColorMap::magma, int scale = 1) {
  check_count(scale, 1, "lensing::io::write_png", "scale");
  if (!(vmax > vmin)) {
    vmin = INFINITY;
    vmax = -INFINITY;
    for (double v : values)
      if (std::isfinite(v)) {
        vmin = std::min(vmin, v);
        vmax = std::max(vmax, v);
      }
    if (!(vmax > vmin)) vmax = vmin + 1;
    if (!std::isfinite(vmin)) vmin = 0, vmax = 1;
  }
  Canvas canvas(nx * scale, ny * scale);
  canvas.draw_image(values, nx, ny, vmin, vmax, map);
  canvas.write(path);
}

}  // namespace io
}  // namespace lensing

#endif  // LENSING_IO_PNG_HPP
