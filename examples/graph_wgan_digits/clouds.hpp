// Digit point clouds, their Chamfer distances and the grid figure, for
// examples/graph_wgan_digits.
//
// A cloud is n points (x, y) in box coordinates [-0.5, 0.5]^2 (y up) drawn
// on a random digit of lensing::simulate::make_digit: cloud `index` of
// label l is digit_points(make_digit(l, seed, index), n, stream_key(seed,
// index, l)).  Training clouds take indices [0, 2^40), held-out ones
// 2^40 + [0, ...) (disjoint, so no held-out digit is ever trained on).
//
// Sample quality: the Chamfer distance of two clouds A, B (n points each)
//   CD(A, B) = (mean_a min_b |a - b| + mean_b min_a |a - b|) / 2
// (Euclidean, box units), and for a set G of clouds of label l against a
// reference set R of held-out clouds of that label
//   fidelity(G) = mean_{g in G} min_{r in R} CD(g, r)   (every sample looks like some digit l)
//   coverage(G) = mean_{r in R} min_{g in G} CD(g, r)   (every digit l is near some sample)
// The floor of both is the same numbers for a second set of held-out real
// clouds in place of G.
#ifndef LENSING_EXAMPLES_GRAPH_WGAN_DIGITS_CLOUDS_HPP
#define LENSING_EXAMPLES_GRAPH_WGAN_DIGITS_CLOUDS_HPP

#include <lensing/io/png.hpp>
#include <lensing/simulate/digits.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace digits {

/// One point cloud of a digit: x[i], y[i] for i < n.
struct Cloud {
  int label = 0;
  std::vector<double> x, y;
  int size() const { return int(x.size()); }
};

/// First index of the held-out clouds.
constexpr std::uint64_t held_out_base = std::uint64_t(1) << 40;

/// Cloud `index` of `label` (file comment).
inline Cloud make_cloud(int label, std::uint64_t seed, std::uint64_t index, int n_points) {
  auto const d = lensing::simulate::make_digit(label, seed, index);
  auto const p = lensing::simulate::digit_points(
      d, n_points, lensing::random::stream_key(seed, lensing::random::purpose_host, index, std::uint64_t(label)));
  Cloud c;
  c.label = label;
  c.x.resize(p.size());
  c.y.resize(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) {
    c.x[i] = p[i][0];
    c.y[i] = p[i][1];
  }
  return c;
}

/// Mean over the points of a of the distance to the nearest point of b.
inline double mean_nearest(Cloud const& a, Cloud const& b) {
  double s = 0;
  for (int i = 0; i < a.size(); ++i) {
    double best = 1e300;
    for (int j = 0; j < b.size(); ++j) {
      double const dx = a.x[i] - b.x[j], dy = a.y[i] - b.y[j];
      best = std::min(best, dx * dx + dy * dy);
    }
    s += std::sqrt(best);
  }
  return s / a.size();
}

/// Symmetric Chamfer distance (file comment).
inline double chamfer(Cloud const& a, Cloud const& b) { return 0.5 * (mean_nearest(a, b) + mean_nearest(b, a)); }

/// Fidelity and coverage of `samples` against `reference` (file comment),
/// per label present in both and pooled over labels (mean of per-label values).
struct Quality {
  double fidelity = 0, coverage = 0;
  std::vector<double> fidelity_by_label, coverage_by_label;
};

inline Quality quality(std::vector<Cloud> const& samples, std::vector<Cloud> const& reference) {
  Quality q;
  q.fidelity_by_label.assign(10, NAN);
  q.coverage_by_label.assign(10, NAN);
  int labels = 0;
  for (int l = 0; l < 10; ++l) {
    std::vector<Cloud const*> g, r;
    for (auto const& c : samples)
      if (c.label == l) g.push_back(&c);
    for (auto const& c : reference)
      if (c.label == l) r.push_back(&c);
    if (g.empty() || r.empty()) continue;
    std::vector<double> d(g.size() * r.size());
    for (std::size_t i = 0; i < g.size(); ++i)
      for (std::size_t j = 0; j < r.size(); ++j)
        d[i * r.size() + j] = chamfer(*g[i], *r[j]);
    double f = 0, c = 0;
    for (std::size_t i = 0; i < g.size(); ++i)
      f += *std::min_element(d.begin() + i * r.size(), d.begin() + (i + 1) * r.size());
    for (std::size_t j = 0; j < r.size(); ++j) {
      double best = 1e300;
      for (std::size_t i = 0; i < g.size(); ++i)
        best = std::min(best, d[i * r.size() + j]);
      c += best;
    }
    q.fidelity_by_label[l] = f / g.size();
    q.coverage_by_label[l] = c / r.size();
    q.fidelity += q.fidelity_by_label[l];
    q.coverage += q.coverage_by_label[l];
    ++labels;
  }
  if (labels > 0) {
    q.fidelity /= labels;
    q.coverage /= labels;
  }
  return q;
}

/// Grid figure: one row per entry of `rows` (each a list of clouds drawn
/// left to right, `cell` x `cell` pixels each over the box [-0.5, 0.5]^2,
/// points as small discs), a row label `row_titles[r]` to the left and a
/// column-group title line on top.  Clouds whose index within the row is
/// >= `split` are drawn in `second` (e.g. generated), the others in `first`.
inline lensing::io::Canvas cloud_grid(std::vector<std::vector<Cloud>> const& rows,
                                      std::vector<std::string> const& row_titles, std::string const& title, int split,
                                      int cell = 64) {
  using lensing::io::Canvas;
  using lensing::io::Rgb;
  std::size_t cols = 0;
  for (auto const& r : rows)
    cols = std::max(cols, r.size());
  int const left = 40, top = 22;
  Canvas c(left + int(cols) * cell + 4, top + int(rows.size()) * cell + 4);
  Rgb const first{20, 20, 20}, second{200, 30, 30}, grey{200, 200, 200}, ink{0, 0, 0};
  c.text(4, 4, title, ink);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    int const row0 = top + int(r) * cell;
    if (r < row_titles.size()) c.text(4, row0 + cell / 2 - 3, row_titles[r], ink);
    for (std::size_t k = 0; k < rows[r].size(); ++k) {
      int const col0 = left + int(k) * cell;
      // Cell frame in pixels; the window maps the box onto the cell.
      double const W = c.width(), H = c.height();
      double const x0 = -0.5 - double(col0) / cell, y1 = 0.5 + double(row0) / cell;
      c.set_window(x0, x0 + W / cell, y1 - H / cell, y1);
      c.polyline({-0.5, 0.5, 0.5, -0.5}, {-0.5, -0.5, 0.5, 0.5}, grey, true);
      Rgb const colour = int(k) >= split ? second : first;
      auto const& cl = rows[r][k];
      for (int i = 0; i < cl.size(); ++i)
        if (std::isfinite(cl.x[i]) && std::isfinite(cl.y[i]) && std::abs(cl.x[i]) < 0.6 && std::abs(cl.y[i]) < 0.6)
          c.marker(cl.x[i], cl.y[i], colour, 1);
    }
  }
  return c;
}

}  // namespace digits

#endif
