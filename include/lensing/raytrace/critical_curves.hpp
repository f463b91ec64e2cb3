#ifndef LENSING_RAYTRACE_CRITICAL_CURVES_HPP
#define LENSING_RAYTRACE_CRITICAL_CURVES_HPP

/// \file
/// Critical curves (det A = 0) and caustics as polylines.

#include <lensing/core/errors.hpp>
#include <lensing/core/views.hpp>
#include <lensing/raytrace/lens_map.hpp>

#include <cmath>
#include <string>
#include <unordered_map>
#include <vector>

namespace lensing {

/// Kind of a critical curve: tangential (images stretched along the curve,
/// eigenvalue 1 - kappa - gamma = 0) or radial (1 - kappa + gamma = 0).
enum class CriticalKind { tangential, radial };

/// One critical curve (image plane, x, y [arcsec]) and its caustic (the same
/// points mapped to the source plane, beta_x, beta_y [arcsec]); `closed`
/// when the polyline is a loop (the last point joins the first), open when it
/// leaves the window.
template <class Scalar>
struct CriticalCurve {
  std::vector<Scalar> x, y;
  std::vector<Scalar> beta_x, beta_y;
  bool closed = false;
  CriticalKind kind = CriticalKind::tangential;
  /// Largest |det A| at the refined vertices, relative to the det scale
  /// (diagnostic of the refinement).
  Scalar max_abs_det = 0;
};

/// Critical curves and caustics of a lens by marching squares on det A.
///
/// det A is evaluated (in parallel on `space`, a host execution space) at the
/// (cells+1)^2 vertices of a square window of half-width `half_width` around
/// (center_x, center_y); every cell edge with a sign change holds one vertex
/// of a curve, located by safeguarded regula falsi (Illinois) along the edge
/// to |det| <= 1e-14 (double) / 1e-6 (float) or edge-length resolution;
/// ambiguous (saddle) cells are split by the sign at the cell centre.
/// Segments are chained into polylines, mapped to the source plane
/// (caustics), and labelled tangential when trace(A) > 0 at the majority of
/// their vertices (at det A = 0 the other eigenvalue of A is trace(A):
/// 2 gamma > 0 on tangential curves, -2 gamma < 0 on radial ones; for
/// multi-plane lenses the same rule holds for the real eigenvalues).
///
/// Resolution: curves smaller than a cell, or two curves within one cell, can
/// be missed; vertices lie exactly on det A = 0 (to the tolerance above),
/// points between them are linear interpolations (error ~ h^2 curvature / 8,
/// h = 2 half_width / cells).  Singular centres (SIS/SIE) give no radial curve
/// (det A -> -inf there without a zero; sign changes through such poles are
/// recognised, their refined |det A| stays large, and dropped).  The lens is evaluated on the host
/// (see ImageFinder for the requirements).
template <class ExecutionSpace, class Lens>
std::vector<CriticalCurve<typename Lens::scalar_type>> critical_curves(ExecutionSpace const& space, Lens const& lens,
                                                                       typename Lens::scalar_type half_width,
                                                                       int cells = 256,
                                                                       typename Lens::scalar_type center_x = 0,
                                                                       typename Lens::scalar_type center_y = 0) {
  static_assert(detail::check_host_lens<Lens>(), "");
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::critical_curves: first argument must be an execution space");
  static_assert(is_accessible_from_v<ExecutionSpace, Kokkos::HostSpace>,
                "lensing::critical_curves: the contouring runs on the host: pass a host execution space");
  using Scalar = typename Lens::scalar_type;
  constexpr char const* where = "lensing::critical_curves";
  check_positive(half_width, where, "half_width");
  check_finite(center_x, where, "center_x");
  check_finite(center_y, where, "center_y");
  check_count(cells, 2, where, "cells");
  check_model(lens);
  int const n = cells, nv = n + 1;
  Scalar const h = Scalar(2) * half_width / Scalar(n);
  Scalar const x0 = center_x - half_width, y0 = center_y - half_width;
  std::vector<Scalar> det(size_t(nv) * nv);
  {
    Scalar* d = det.data();
    Lens const l = lens;
    Kokkos::parallel_for("lensing::raytrace::critical_curves_det", Kokkos::RangePolicy<ExecutionSpace>(space, 0, nv),
                         [=](int j) {
                           for (int i = 0; i < nv; ++i)
                             d[size_t(j) * nv + i] = lens_jacobian(l, x0 + h * i, y0 + h * j).det();
                         });
    space.fence();
  }
  auto D = [&](int i, int j) { return det[size_t(j) * nv + i]; };
  auto pos = [&](int i, int j) { return Vec2<Scalar>{x0 + h * i, y0 + h * j}; };
  auto det_at = [&](Vec2<Scalar> p) { return lens_jacobian(lens, p.x, p.y).det(); };
  Scalar const det_tol = std::is_same<Scalar, float>::value ? Scalar(1e-6) : Scalar(1e-14);

  // Edge ids: 2 (j nv + i) for the edge (i,j)-(i+1,j), +1 for (i,j)-(i,j+1).
  std::unordered_map<long, int> point_of_edge;
  std::vector<Vec2<Scalar>> pts;
  std::vector<std::vector<int>> links;
  auto edge_point = [&](long id) -> int {
    auto it = point_of_edge.find(id);
    if (it != point_of_edge.end()) return it->second;
    long const v = id / 2;
    int const i = int(v % nv), j = int(v / nv);
    bool const vertical = id % 2;
    Vec2<Scalar> a = pos(i, j), b = vertical ? pos(i, j + 1) : pos(i + 1, j);
    Scalar fa = D(i, j), fb = vertical ? D(i, j + 1) : D(i + 1, j);
    // Illinois regula falsi on the edge.
    Vec2<Scalar> p = a;
    Scalar fp = fa;
    int side = 0;
    for (int it = 0; it < 100; ++it) {
      Scalar const t = fa / (fa - fb);
      p = a + t * (b - a);
      fp = det_at(p);
      if (std::fabs(fp) <= det_tol || norm(b - a) <= Scalar(4) * std::numeric_limits<Scalar>::epsilon() * h) break;
      if ((fp > 0) == (fa > 0)) {
        a = p;
        fa = fp;
        if (side == -1) fb /= 2;
        side = -1;
      } else {
        b = p;
        fb = fp;
        if (side == 1) fa /= 2;
        side = 1;
      }
    }
    int const k = int(pts.size());
    pts.push_back(p);
    links.emplace_back();
    point_of_edge[id] = k;
    return k;
  };
  auto connect = [&](long e1, long e2) {
    int const a = edge_point(e1), b = edge_point(e2);
    links[a].push_back(b);
    links[b].push_back(a);
  };
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) {
      int const c =
          (D(i, j) > 0 ? 1 : 0) | (D(i + 1, j) > 0 ? 2 : 0) | (D(i + 1, j + 1) > 0 ? 4 : 0) | (D(i, j + 1) > 0 ? 8 : 0);
      if (c == 0 || c == 15) continue;
      long const bottom = 2L * (long(j) * nv + i), top = 2L * (long(j + 1) * nv + i);
      long const left = 2L * (long(j) * nv + i) + 1, right = 2L * (long(j) * nv + i + 1) + 1;
      switch (c) {
        case 1:
        case 14:
          connect(left, bottom);
          break;
        case 2:
        case 13:
          connect(bottom, right);
          break;
        case 3:
        case 12:
          connect(left, right);
          break;
        case 4:
        case 11:
          connect(right, top);
          break;
        case 6:
        case 9:
          connect(bottom, top);
          break;
        case 7:
        case 8:
          connect(left, top);
          break;
        case 5:
        case 10: {
          bool const centre = det_at(pos(i, j) + Vec2<Scalar>{h / 2, h / 2}) > 0;
          // 5: corners 0 and 2 positive.  If the centre has their sign they are joined.
          if ((c == 5) == centre) {
            connect(left, top);
            connect(bottom, right);
          } else {
            connect(left, bottom);
            connect(right, top);
          }
          break;
        }
        default:
          break;
      }
    }

  // Chain the points: open chains start at points with one link.
  std::vector<CriticalCurve<Scalar>> curves;
  std::vector<char> used(pts.size(), 0);
  auto walk = [&](int start) {
    CriticalCurve<Scalar> cv;
    int prev = -1, cur = start;
    while (true) {
      used[cur] = 1;
      cv.x.push_back(pts[cur].x);
      cv.y.push_back(pts[cur].y);
      int next = -1;
      for (int nb : links[cur])
        if (nb != prev && !used[nb]) {
          next = nb;
          break;
        }
      if (next < 0) {
        cv.closed = links[cur].size() == 2 && cv.x.size() > 2;
        break;
      }
      prev = cur;
      cur = next;
    }
    int tangential = 0;
    for (size_t k = 0; k < cv.x.size(); ++k) {
      auto const b = lens_map(lens, cv.x[k], cv.y[k]);
      auto const A = lens_jacobian(lens, cv.x[k], cv.y[k]);
      cv.beta_x.push_back(b.x);
      cv.beta_y.push_back(b.y);
      tangential += A.trace() > 0 ? 1 : 0;
      cv.max_abs_det = std::max(cv.max_abs_det, Scalar(std::fabs(A.det())));
    }
    cv.kind = 2 * tangential >= int(cv.x.size()) ? CriticalKind::tangential : CriticalKind::radial;
    // A sign change through a pole of det A (the singular centre of an
    // SIS/SIE, a point mass) is not a critical curve: its refined vertices do
    // not reach det A ~ 0.
    if (cv.max_abs_det <= Scalar(1e-3)) curves.push_back(std::move(cv));
  };
  for (size_t k = 0; k < pts.size(); ++k)
    if (!used[k] && links[k].size() == 1) walk(int(k));
  for (size_t k = 0; k < pts.size(); ++k)
    if (!used[k]) walk(int(k));
  return curves;
}

}  // namespace lensing

#endif  // LENSING_RAYTRACE_CRITICAL_CURVES_HPP
