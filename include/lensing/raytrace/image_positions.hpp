#ifndef LENSING_RAYTRACE_IMAGE_POSITIONS_HPP
#define LENSING_RAYTRACE_IMAGE_POSITIONS_HPP

/// \file
/// All images of a point source: solve beta = x - alpha(x) for every lens.

#include <lensing/core/errors.hpp>
#include <lensing/core/views.hpp>
#include <lensing/raytrace/lens_map.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace lensing {

/// One image of a point source: position [arcsec], signed magnification
/// mu = 1/det A, parity sign(det A) (+1 minimum or maximum, -1 saddle) and
/// the source-plane residual |beta(x) - beta| [arcsec] reached by Newton.
template <class Scalar>
struct PointImage {
  Scalar x;
  Scalar y;
  Scalar magnification;
  int parity;
  Scalar residual;
};

/// Finds every image of a point source for one lens (host).
///
/// Method (after Schramm & Kayser 1987 and Keeton's gravlens): a square window
/// of half-width `half_width` around (center_x, center_y) is covered with
/// `cells` x `cells` cells whose corners and centres are mapped to the source
/// plane once, in the constructor (in parallel on `space`).  For a source
/// beta, every cell whose mapped bounding box (widened by the measured
/// curvature of the map, |beta(centre) - mean of the corners|) contains beta
/// is examined: cells where det A changes sign or the map is strongly
/// non-linear are split 2 x 2 recursively (to `max_depth` levels), the
/// leaves are split into two triangles, and each triangle whose image
/// encloses beta gives a starting point (linear inversion inside the
/// triangle) for Newton's method, x <- x + A^{-1} (beta - beta(x)), with the
/// step limited to one cell.  Converged solutions (|beta(x) - beta| <=
/// tolerance) are merged when they have the same parity and lie within
/// 1e-7 half_width of each other.
///
/// Found: every image inside the window whose neighbourhood is resolved by
/// the refined cells, including the faint central image of cored profiles
/// (NIE, cored power laws, NFW + ...) and both images of a pair straddling a
/// fold down to separations of 2 half_width / (cells 2^max_depth) (sources
/// to ~1e-10" of a fold with the defaults).  Limits: images outside the
/// window are not searched (choose half_width a few Einstein radii; an
/// external shear or convergence can push images far out); singular centres
/// (SIS/SIE/point mass) have no central image and none is reported; two
/// images of the same parity closer than 1e-7 half_width (sources within
/// ~1e-13" of a cusp) are reported as one.
///
/// Lens: anything with deflection + hessian (MassProfile, Composite,
/// LensSum, Population in host memory) or source_position + jacobian
/// (MultiPlaneLens); it is evaluated on the host.  `space` is a host
/// execution space for the initial mapping.  Tolerance: source-plane residual
/// in arcsec (default 1e-12 in double, 1e-5 in float); image positions are
/// then accurate to about tolerance * |mu|.
template <class Lens>
class ImageFinder {
  static_assert(detail::check_host_lens<Lens>(), "");

 public:
  using scalar_type = typename Lens::scalar_type;
  using Scalar = scalar_type;

  /// Default tolerance on |beta(x) - beta| [arcsec].
  static constexpr Scalar default_tolerance = std::is_same<Scalar, float>::value ? Scalar(1e-5) : Scalar(1e-12);

  template <class ExecutionSpace>
  ImageFinder(ExecutionSpace const& space, Lens const& lens, Scalar half_width, int cells = 128,
              Scalar center_x = Scalar(0), Scalar center_y = Scalar(0), int max_depth = 12)
      : m_lens(lens), m_half(half_width), m_n(cells), m_cx(center_x), m_cy(center_y), m_max_depth(max_depth) {
    static_assert(is_execution_space_v<ExecutionSpace>,
                  "lensing::ImageFinder: first argument must be an execution space");
    static_assert(is_accessible_from_v<ExecutionSpace, Kokkos::HostSpace>,
                  "lensing::ImageFinder: the initial mapping runs on the host: pass a host execution space");
    constexpr char const* where = "lensing::ImageFinder";
    check_positive(half_width, where, "half_width");
    check_finite(center_x, where, "center_x");
    check_finite(center_y, where, "center_y");
    check_count(cells, 2, where, "cells");
    check_argument(max_depth >= 0 && max_depth <= 30, where, "max_depth must be in [0, 30]");
    check_model(lens);
    m_h = Scalar(2) * half_width / Scalar(cells);
    int const nv = cells + 1;
    m_vbeta.resize(size_t(nv) * nv);
    m_vdet.resize(size_t(nv) * nv);
    m_cbeta.resize(size_t(cells) * cells);
    Lens const l = lens;
    Scalar const x0 = center_x - half_width, y0 = center_y - half_width, h = m_h;
    Vec2<Scalar>* vb = m_vbeta.data();
    Scalar* vd = m_vdet.data();
    Vec2<Scalar>* cb = m_cbeta.data();
    Kokkos::parallel_for("lensing::raytrace::image_finder_map", Kokkos::RangePolicy<ExecutionSpace>(space, 0, nv),
                         [=](int j) {
                           for (int i = 0; i < nv; ++i) {
                             Scalar const x = x0 + h * i, y = y0 + h * j;
                             vb[j * nv + i] = lens_map(l, x, y);
                             vd[j * nv + i] = lens_jacobian(l, x, y).det();
                             if (i < nv - 1 && j < nv - 1) cb[j * (nv - 1) + i] = lens_map(l, x + h / 2, y + h / 2);
                           }
                         });
    space.fence();
    // Source-plane bounding box of every cell, widened by the curvature of the map.
    m_box.resize(size_t(cells) * cells);
    for (int j = 0; j < cells; ++j)
      for (int i = 0; i < cells; ++i) {
        Vec2<Scalar> const c[4] = {vbeta(i, j), vbeta(i + 1, j), vbeta(i + 1, j + 1), vbeta(i, j + 1)};
        Vec2<Scalar> const m = m_cbeta[size_t(j) * cells + i];
        m_box[size_t(j) * cells + i] = widened_box(c, m);
      }
  }

  Lens const& lens() const { return m_lens; }
  Scalar half_width() const { return m_half; }
  int cells() const { return m_n; }

  /// Every image of the point source at (beta_x, beta_y) [arcsec], sorted by
  /// x then y.  Throws std::invalid_argument on non-finite input or a
  /// tolerance <= 0.
  std::vector<PointImage<Scalar>> find(Scalar beta_x, Scalar beta_y, Scalar tolerance = default_tolerance) const {
    constexpr char const* where = "lensing::ImageFinder::find";
    check_finite(beta_x, where, "beta_x");
    check_finite(beta_y, where, "beta_y");
    check_positive(tolerance, where, "tolerance");
    std::vector<PointImage<Scalar>> out;
    Vec2<Scalar> const beta{beta_x, beta_y};
    for (int j = 0; j < m_n; ++j)
      for (int i = 0; i < m_n; ++i) {
        Box const& b = m_box[size_t(j) * m_n + i];
        if (!b.contains(beta)) continue;
        Vertex const v[4] = {{corner(i, j), vbeta(i, j), vdet(i, j)},
                             {corner(i + 1, j), vbeta(i + 1, j), vdet(i + 1, j)},
                             {corner(i + 1, j + 1), vbeta(i + 1, j + 1), vdet(i + 1, j + 1)},
                             {corner(i, j + 1), vbeta(i, j + 1), vdet(i, j + 1)}};
        examine(v, m_cbeta[size_t(j) * m_n + i], m_h, 0, beta, tolerance, out);
      }
    std::sort(out.begin(), out.end(), [](PointImage<Scalar> const& a, PointImage<Scalar> const& b) {
      return a.x < b.x || (a.x == b.x && a.y < b.y);
    });
    return out;
  }

 private:
  struct Box {
    Scalar x0, x1, y0, y1;
    bool contains(Vec2<Scalar> const& p) const { return p.x >= x0 && p.x <= x1 && p.y >= y0 && p.y <= y1; }
  };
  struct Vertex {
    Vec2<Scalar> x;     // image plane
    Vec2<Scalar> beta;  // source plane
    Scalar det;
  };

  Lens m_lens;
  Scalar m_half;
  int m_n;
  Scalar m_cx, m_cy;
  int m_max_depth;
  Scalar m_h = 0;
  std::vector<Vec2<Scalar>> m_vbeta;
  std::vector<Scalar> m_vdet;
  std::vector<Vec2<Scalar>> m_cbeta;
  std::vector<Box> m_box;

  Vec2<Scalar> const& vbeta(int i, int j) const { return m_vbeta[size_t(j) * (m_n + 1) + i]; }
  Scalar vdet(int i, int j) const { return m_vdet[size_t(j) * (m_n + 1) + i]; }
  Vec2<Scalar> corner(int i, int j) const { return {m_cx - m_half + m_h * i, m_cy - m_half + m_h * j}; }

  static Box widened_box(Vec2<Scalar> const* c, Vec2<Scalar> const& mid) {
    Box b{c[0].x, c[0].x, c[0].y, c[0].y};
    for (int k = 0; k < 4; ++k) {
      b.x0 = std::min(b.x0, c[k].x);
      b.x1 = std::max(b.x1, c[k].x);
      b.y0 = std::min(b.y0, c[k].y);
      b.y1 = std::max(b.y1, c[k].y);
    }
    b.x0 = std::min(b.x0, mid.x);
    b.x1 = std::max(b.x1, mid.x);
    b.y0 = std::min(b.y0, mid.y);
    b.y1 = std::max(b.y1, mid.y);
    // Curvature: the centre's departure from the bilinear prediction bounds
    // how far the mapped cell bulges beyond its corners (x2 margin).
    Vec2<Scalar> const avg = Scalar(0.25) * (c[0] + c[1] + c[2] + c[3]);
    Scalar const bulge = Scalar(2) * norm(mid - avg) + Scalar(1e-3) * (b.x1 - b.x0 + b.y1 - b.y0);
    b.x0 -= bulge;
    b.x1 += bulge;
    b.y0 -= bulge;
    b.y1 += bulge;
    return b;
  }

  Vertex vertex_at(Vec2<Scalar> const& x) const {
    return {x, lens_map(m_lens, x.x, x.y), lens_jacobian(m_lens, x.x, x.y).det()};
  }

  // Cell with corners v (counter-clockwise from the lower left), mapped centre
  // mid, size h, at refinement depth `depth`.
  void examine(Vertex const* v, Vec2<Scalar> const& mid, Scalar h, int depth, Vec2<Scalar> const& beta, Scalar tol,
               std::vector<PointImage<Scalar>>& out) const {
    bool const sign_change =
        !((v[0].det > 0) == (v[1].det > 0) && (v[1].det > 0) == (v[2].det > 0) && (v[2].det > 0) == (v[3].det > 0));
    Vec2<Scalar> const avg = Scalar(0.25) * (v[0].beta + v[1].beta + v[2].beta + v[3].beta);
    Scalar const size = norm(v[2].beta - v[0].beta) + norm(v[3].beta - v[1].beta);
    bool const curved = norm(mid - avg) > Scalar(0.05) * size;
    if ((sign_change || curved) && depth < m_max_depth) {
      Scalar const hh = h / 2;
      Vec2<Scalar> const o = v[0].x;
      Vertex const e01 = vertex_at(o + Vec2<Scalar>{hh, 0}), e12 = vertex_at(o + Vec2<Scalar>{h, hh});
      Vertex const e23 = vertex_at(o + Vec2<Scalar>{hh, h}), e30 = vertex_at(o + Vec2<Scalar>{0, hh});
      Vertex const c{o + Vec2<Scalar>{hh, hh}, mid, lens_jacobian(m_lens, o.x + hh, o.y + hh).det()};
      Vertex const sub[4][4] = {{v[0], e01, c, e30}, {e01, v[1], e12, c}, {c, e12, v[2], e23}, {e30, c, e23, v[3]}};
      for (auto const& s : sub) {
        Vec2<Scalar> const cs[4] = {s[0].beta, s[1].beta, s[2].beta, s[3].beta};
        Vec2<Scalar> const q = s[0].x + Vec2<Scalar>{hh / 2, hh / 2};
        Vec2<Scalar> const smid = lens_map(m_lens, q.x, q.y);
        if (widened_box(cs, smid).contains(beta)) examine(s, smid, hh, depth + 1, beta, tol, out);
      }
      return;
    }
    triangle(v[0], v[1], v[2], h, beta, tol, out);
    triangle(v[0], v[2], v[3], h, beta, tol, out);
  }

  void triangle(Vertex const& a, Vertex const& b, Vertex const& c, Scalar h, Vec2<Scalar> const& beta, Scalar tol,
                std::vector<PointImage<Scalar>>& out) const {
    // Barycentric coordinates of beta in the mapped triangle.
    Vec2<Scalar> const e1 = b.beta - a.beta, e2 = c.beta - a.beta, r = beta - a.beta;
    Scalar const d = e1.x * e2.y - e1.y * e2.x;
    if (!(std::fabs(d) > Scalar(0))) return;
    Scalar const l1 = (r.x * e2.y - r.y * e2.x) / d, l2 = (e1.x * r.y - e1.y * r.x) / d;
    Scalar const slack = Scalar(1e-6);
    if (!(l1 >= -slack && l2 >= -slack && l1 + l2 <= Scalar(1) + slack)) return;
    Vec2<Scalar> const x0 = a.x + l1 * (b.x - a.x) + l2 * (c.x - a.x);
    PointImage<Scalar> img;
    if (!newton(x0, beta, tol, h, img)) return;
    Scalar const merge = Scalar(1e-7) * m_half;
    for (auto const& o : out)
      if (o.parity == img.parity && std::fabs(o.x - img.x) <= merge && std::fabs(o.y - img.y) <= merge) return;
    out.push_back(img);
  }

  bool newton(Vec2<Scalar> x, Vec2<Scalar> const& beta, Scalar tol, Scalar h, PointImage<Scalar>& img) const {
    Scalar const max_step = std::max(h, Scalar(1e-3) * m_h);
    Scalar best = std::numeric_limits<Scalar>::max();
    for (int it = 0; it < 60; ++it) {
      Vec2<Scalar> const r = beta - lens_map(m_lens, x.x, x.y);
      Scalar const res = norm(r);
      if (!(res < std::numeric_limits<Scalar>::max())) return false;
      auto const A = lens_jacobian(m_lens, x.x, x.y);
      Scalar const det = A.det();
      if (res <= tol && (res >= best || res == Scalar(0))) break;  // converged and no longer improving
      best = std::min(best, res);
      if (!(std::fabs(det) > Scalar(0))) return false;
      Vec2<Scalar> dx = A.solve(r);
      Scalar const len = norm(dx);
      if (!(len <= max_step)) {
        if (!(len < std::numeric_limits<Scalar>::max())) return false;
        dx = (max_step / len) * dx;
      }
      x += dx;
      if (std::fabs(x.x - m_cx) > Scalar(1.5) * m_half || std::fabs(x.y - m_cy) > Scalar(1.5) * m_half) return false;
    }
    Vec2<Scalar> const r = beta - lens_map(m_lens, x.x, x.y);
    Scalar const res = norm(r);
    if (!(res <= tol)) return false;
    // Inside the window (with a margin of one cell).
    if (std::fabs(x.x - m_cx) > m_half + m_h || std::fabs(x.y - m_cy) > m_half + m_h) return false;
    Scalar const det = lens_jacobian(m_lens, x.x, x.y).det();
    if (!(std::fabs(det) > Scalar(0))) return false;
    img = {x.x, x.y, Scalar(1) / det, det > 0 ? 1 : -1, res};
    return true;
  }
};

/// Convenience: all images of the source at (beta_x, beta_y) with a one-off
/// ImageFinder (build an ImageFinder to solve for many sources).
template <class ExecutionSpace, class Lens>
std::vector<PointImage<typename Lens::scalar_type>> find_images(
    ExecutionSpace const& space, Lens const& lens, typename Lens::scalar_type beta_x, typename Lens::scalar_type beta_y,
    typename Lens::scalar_type half_width, typename Lens::scalar_type tolerance = ImageFinder<Lens>::default_tolerance,
    int cells = 128) {
  return ImageFinder<Lens>(space, lens, half_width, cells).find(beta_x, beta_y, tolerance);
}

}  // namespace lensing

#endif  // LENSING_RAYTRACE_IMAGE_POSITIONS_HPP
