#ifndef LENSING_GEOMETRY_PIXEL_GRID_HPP
#define LENSING_GEOMETRY_PIXEL_GRID_HPP

#include <lensing/core/errors.hpp>
#include <lensing/core/vec2.hpp>

namespace lensing {

/// A regular, axis-aligned grid of square pixels on the sky, with optional
/// uniform supersampling.
///
/// Conventions (lenstronomy's `make_grid`, so models and images port 1:1):
///  - angles in arcsec; x increases with the column index ix, y with the row
///    index iy; images are stored row-major as `image(iy, ix)`;
///  - the centre of pixel (ix, iy) of an nx x ny grid is
///    `x = center_x + (ix - (nx-1)/2) * pixel_scale`, and likewise for y, so the
///    grid is centred on (center_x, center_y);
///  - with supersampling factor k every pixel is split into k x k sub-pixels of
///    size pixel_scale/k.  Sub-pixel (sx, sy) of pixel (ix, iy) is fine-grid
///    index (ix*k + sx, iy*k + sy) and sits at
///    `x(ix) + (sx - (k-1)/2) * pixel_scale/k`: the fine grid is the
///    (nx*k) x (ny*k) grid with the same centre and pixel_scale/k.
///
/// Valid domain: nx, ny >= 1, supersampling >= 1, pixel_scale finite and > 0,
/// finite centre; the constructor throws std::invalid_argument otherwise.
/// Trivially copyable: pass it by value into kernels.
template <class Scalar>
class PixelGrid {
 public:
  using scalar_type = Scalar;

  /// An empty grid (0 x 0); assign a real one before use.
  PixelGrid() = default;

  /// nx columns by ny rows of pixel_scale arcsec, supersampled k x k, centred
  /// on (center_x, center_y).
  PixelGrid(int nx, int ny, Scalar pixel_scale, int supersampling = 1, Scalar center_x = Scalar(0),
            Scalar center_y = Scalar(0))
      : m_nx(nx), m_ny(ny), m_k(supersampling), m_scale(pixel_scale), m_cx(center_x), m_cy(center_y) {
    constexpr char const* where = "lensing::PixelGrid";
    check_count(nx, 1, where, "nx");
    check_count(ny, 1, where, "ny");
    check_count(supersampling, 1, where, "supersampling");
    check_positive(pixel_scale, where, "pixel_scale");
    check_finite(center_x, where, "center_x");
    check_finite(center_y, where, "center_y");
    // Fine-grid indices are int: keep (n*k) well inside its range.
    check_argument(static_cast<long long>(nx) * supersampling <= (1LL << 24) &&
                       static_cast<long long>(ny) * supersampling <= (1LL << 24),
                   where, "nx*supersampling and ny*supersampling must be <= 2^24");
  }

  /// An n x n grid centred on the origin.
  static PixelGrid square(int n, Scalar pixel_scale, int supersampling = 1) {
    return PixelGrid(n, n, pixel_scale, supersampling);
  }

  KOKKOS_INLINE_FUNCTION int nx() const { return m_nx; }
  KOKKOS_INLINE_FUNCTION int ny() const { return m_ny; }
  KOKKOS_INLINE_FUNCTION int supersampling() const { return m_k; }
  KOKKOS_INLINE_FUNCTION Scalar pixel_scale() const { return m_scale; }
  KOKKOS_INLINE_FUNCTION Scalar center_x() const { return m_cx; }
  KOKKOS_INLINE_FUNCTION Scalar center_y() const { return m_cy; }
  /// Number of (coarse) pixels nx*ny.
  KOKKOS_INLINE_FUNCTION long num_pixels() const { return static_cast<long>(m_nx) * m_ny; }
  /// Fine-grid extents nx*k and ny*k.
  KOKKOS_INLINE_FUNCTION int fine_nx() const { return m_nx * m_k; }
  KOKKOS_INLINE_FUNCTION int fine_ny() const { return m_ny * m_k; }
  /// Sub-pixel size pixel_scale/k.
  KOKKOS_INLINE_FUNCTION Scalar fine_pixel_scale() const { return m_scale / Scalar(m_k); }

  /// x of the centre of column ix.
  KOKKOS_INLINE_FUNCTION Scalar x(int ix) const {
    return m_cx + (Scalar(ix) - Scalar(0.5) * Scalar(m_nx - 1)) * m_scale;
  }
  /// y of the centre of row iy.
  KOKKOS_INLINE_FUNCTION Scalar y(int iy) const {
    return m_cy + (Scalar(iy) - Scalar(0.5) * Scalar(m_ny - 1)) * m_scale;
  }
  /// Centre of pixel (ix, iy).
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> position(int ix, int iy) const { return {x(ix), y(iy)}; }

  /// x of fine-grid column jx in [0, nx*k).
  KOKKOS_INLINE_FUNCTION Scalar fine_x(int jx) const {
    return m_cx + (Scalar(jx) - Scalar(0.5) * Scalar(m_nx * m_k - 1)) * fine_pixel_scale();
  }
  /// y of fine-grid row jy in [0, ny*k).
  KOKKOS_INLINE_FUNCTION Scalar fine_y(int jy) const {
    return m_cy + (Scalar(jy) - Scalar(0.5) * Scalar(m_ny * m_k - 1)) * fine_pixel_scale();
  }
  /// Centre of sub-pixel (sx, sy) in [0, k)^2 of pixel (ix, iy).
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> subpixel_position(int ix, int iy, int sx, int sy) const {
    return {fine_x(ix * m_k + sx), fine_y(iy * m_k + sy)};
  }

  /// Fractional pixel coordinates of the point (x, y): pixel centres are at
  /// integers, so (0, 0) is the centre of pixel (0, 0) and -0.5 its left edge.
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> to_pixel(Scalar x, Scalar y) const {
    return {(x - m_cx) / m_scale + Scalar(0.5) * Scalar(m_nx - 1),
            (y - m_cy) / m_scale + Scalar(0.5) * Scalar(m_ny - 1)};
  }

  /// The fine grid as a grid of its own (supersampling 1).
  PixelGrid fine_grid() const { return PixelGrid(fine_nx(), fine_ny(), fine_pixel_scale(), 1, m_cx, m_cy); }

 private:
  int m_nx = 0;
  int m_ny = 0;
  int m_k = 1;
  Scalar m_scale = Scalar(1);
  Scalar m_cx = Scalar(0);
  Scalar m_cy = Scalar(0);
};

}  // namespace lensing

#endif  // LENSING_GEOMETRY_PIXEL_GRID_HPP
