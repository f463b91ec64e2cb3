#ifndef LENSING_SIMULATE_DIGITS_HPP
#define LENSING_SIMULATE_DIGITS_HPP

/// \file
/// Handwriting-like digits drawn as strokes: the digit-shaped training data of
/// the learned-source and graph-network examples (a lensed digit as a source
/// with structure a Sérsic profile cannot describe; digits as 2-D point
/// clouds), generated procedurally so that nothing is downloaded.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace lensing {
namespace simulate {

/// Ranges of the random variation of a digit's strokes (all lengths in units
/// of the box side; angles in radians; each drawn uniformly in its range).
///
/// A digit's glyph (ten fixed stroke skeletons, 0.6 wide by 1 high) is
/// scaled to `height` × box and its width by `aspect`, slanted (x += slant y),
/// rotated by `rotation`, and bent by a smooth random displacement field of
/// amplitude `wobble` (two sinusoids per axis of wavelength ~0.5-1 box), then
/// inked with half-width `half_width`.  A draw whose ink would leave the box
/// [-0.5, 0.5]² is shrunk about the centre until it fits.
struct DigitOptions {
  double rotation_max = 0.2;                            ///< rotation in [-max, max]
  double slant_max = 0.25;                              ///< x += slant * y, slant in [-max, max]
  double height_min = 0.7, height_max = 0.8;            ///< digit height / box side
  double aspect_min = 0.75, aspect_max = 1.05;          ///< width / (0.6 height)
  double half_width_min = 0.05, half_width_max = 0.09;  ///< stroke half-width / box side
  double wobble = 0.025;                                ///< displacement-field amplitude / box side
};

/// One digit: its strokes as polylines in box coordinates (the box is
/// [-0.5, 0.5]², y up), inked with half-width `half_width` (box units).
struct Digit {
  int label = 0;
  double half_width = 0.07;
  std::vector<std::vector<std::array<double, 2>>> strokes;
};

namespace detail {

using Polyline = std::vector<std::array<double, 2>>;

// Elliptical arc from angle a0 to a1 [degrees, counter-clockwise positive;
// a1 < a0 runs clockwise], 4-degree steps.
inline Polyline digit_arc(double cx, double cy, double rx, double ry, double a0, double a1) {
  int const steps = std::max(2, int(std::ceil(std::abs(a1 - a0) / 4.0)));
  Polyline p;
  for (int k = 0; k <= steps; ++k) {
    double const a = (a0 + (a1 - a0) * k / steps) * 3.14159265358979323846 / 180.0;
    p.push_back({cx + rx * std::cos(a), cy + ry * std::sin(a)});
  }
  return p;
}

inline Polyline digit_join(Polyline a, Polyline const& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The ten skeletons in a glyph frame 0.6 wide and 1 high centred on 0.
inline std::vector<Polyline> digit_glyph(int label) {
  switch (label) {
    case 0:
      return {digit_arc(0, 0, 0.28, 0.48, 90, 450)};
    case 1:
      return {{{-0.13, 0.34}, {0.02, 0.5}, {0.02, -0.5}}};
    case 2:
      return {digit_join(digit_arc(0, 0.22, 0.26, 0.26, 160, -35), Polyline{{-0.28, -0.5}, {0.3, -0.5}})};
    case 3:
      return {digit_join(digit_arc(0, 0.25, 0.25, 0.24, 150, -90), digit_arc(0, -0.24, 0.28, 0.26, 90, -150))};
    case 4:
      return {{{0.12, -0.5}, {0.12, 0.5}, {-0.3, -0.15}, {0.3, -0.15}}};
    case 5:
      return {digit_join(Polyline{{0.27, 0.5}, {-0.2, 0.5}, {-0.25, 0.06}}, digit_arc(0, -0.2, 0.28, 0.29, 125, -145))};
    case 6:
      return {digit_join(Polyline{{0.22, 0.48}, {0.02, 0.4}, {-0.17, 0.2}, {-0.26, -0.06}},
                         digit_arc(0, -0.22, 0.26, 0.27, 180, -180))};
    case 7:
      return {{{-0.3, 0.5}, {0.3, 0.5}, {-0.08, -0.5}}};
    case 8:
      return {digit_arc(0, 0.26, 0.22, 0.23, -90, 270), digit_arc(0, -0.23, 0.27, 0.26, 90, 450)};
    case 9:
      return {digit_join(digit_arc(0, 0.22, 0.26, 0.27, 0, 360),
                         Polyline{{0.26, 0.22}, {0.24, -0.1}, {0.1, -0.38}, {-0.15, -0.5}})};
    default:
      return {};
  }
}

// Squared distance from p to the segment ab.
inline double digit_segment_distance2(double px, double py, std::array<double, 2> const& a,
                                      std::array<double, 2> const& b) {
  double const ex = b[0] - a[0], ey = b[1] - a[1];
  double const len2 = ex * ex + ey * ey;
  double t = len2 > 0 ? ((px - a[0]) * ex + (py - a[1]) * ey) / len2 : 0.0;
  t = std::min(1.0, std::max(0.0, t));
  double const dx = px - a[0] - t * ex, dy = py - a[1] - t * ey;
  return dx * dx + dy * dy;
}

// Width of the ink's soft edge (box units): the intensity falls linearly from
// 1 to 0 across [half_width - edge/2, half_width + edge/2].
constexpr double digit_edge = 0.02;

}  // namespace detail

/// A random digit `label` (0-9), deterministic per (label, seed, index): its
/// variation is drawn from the stream (seed, purpose_galaxy, index, 1 + label)
/// (purpose_galaxy's b = 0 is the procedural galaxies' stream, so a digit and
/// a galaxy of the same index never share draws).  Throws
/// std::invalid_argument("lensing::simulate::make_digit: ...") for a label
/// outside 0-9 or options out of range.
inline Digit make_digit(int label, std::uint64_t seed, std::uint64_t index, DigitOptions const& opt = {}) {
  char const* where = "lensing::simulate::make_digit";
  check_argument(label >= 0 && label <= 9, where, "label must be 0-9, got " + std::to_string(label));
  check_argument(opt.height_min > 0 && opt.height_min <= opt.height_max && opt.height_max <= 1, where,
                 "need 0 < height_min <= height_max <= 1");
  check_argument(opt.aspect_min > 0 && opt.aspect_min <= opt.aspect_max, where, "need 0 < aspect_min <= aspect_max");
  check_argument(opt.half_width_min > 0 && opt.half_width_min <= opt.half_width_max && opt.half_width_max < 0.25, where,
                 "need 0 < half_width_min <= half_width_max < 0.25");
  check_argument(opt.rotation_max >= 0 && opt.slant_max >= 0 && opt.wobble >= 0 && opt.wobble < 0.2, where,
                 "rotation_max, slant_max must be >= 0 and wobble in [0, 0.2)");
  random::Stream r(random::stream_key(seed, random::purpose_galaxy, index, 1 + std::uint64_t(label)));
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * r.uniform<double>(); };
  double const height = uniform(opt.height_min, opt.height_max);
  double const aspect = uniform(opt.aspect_min, opt.aspect_max);
  double const slant = uniform(-opt.slant_max, opt.slant_max);
  double const rotation = uniform(-opt.rotation_max, opt.rotation_max);
  Digit d;
  d.label = label;
  d.half_width = uniform(opt.half_width_min, opt.half_width_max);
  // Smooth displacement: per axis two plane waves of random direction,
  // wavelength 0.5-1 box and phase.
  double const two_pi = 6.28318530717958647692;
  double wave[2][2][4];
  for (auto& axis : wave)
    for (auto& w : axis) {
      double const dir = uniform(0, two_pi), k = two_pi / uniform(0.5, 1.0);
      w[0] = k * std::cos(dir);
      w[1] = k * std::sin(dir);
      w[2] = uniform(0, two_pi);
      w[3] = opt.wobble * uniform(-1, 1);
    }
  double const c = std::cos(rotation), s = std::sin(rotation);
  for (auto const& glyph_stroke : detail::digit_glyph(label)) {
    detail::Polyline stroke;
    for (auto const& p : glyph_stroke) {
      double x = p[0] * height * aspect, y = p[1] * height;
      x += slant * y;
      double xr = c * x - s * y, yr = s * x + c * y;
      double dx = 0, dy = 0;
      for (int j = 0; j < 2; ++j) {
        dx += wave[0][j][3] * std::sin(wave[0][j][0] * xr + wave[0][j][1] * yr + wave[0][j][2]);
        dy += wave[1][j][3] * std::sin(wave[1][j][0] * xr + wave[1][j][1] * yr + wave[1][j][2]);
      }
      stroke.push_back({xr + dx, yr + dy});
    }
    d.strokes.push_back(stroke);
  }
  // A draw whose ink would leave the box (a large digit slanted and rotated
  // the same way) is shrunk about the centre until it fits.
  double reach = 0;
  for (auto const& stroke : d.strokes)
    for (auto const& p : stroke)
      reach = std::max({reach, std::fabs(p[0]), std::fabs(p[1])});
  double const limit = 0.5 - d.half_width - 0.5 * detail::digit_edge;
  if (reach > limit)
    for (auto& stroke : d.strokes)
      for (auto& p : stroke) {
        p[0] *= limit / reach;
        p[1] *= limit / reach;
      }
  return d;
}

/// Ink of `d` at (x, y) in box coordinates: 1 within half_width − 0.01 of a
/// stroke, 0 beyond half_width + 0.01, linear in the distance between (a
/// soft edge, so that images of it are smooth in the digit's parameters).
inline double digit_intensity(Digit const& d, double x, double y) {
  double best = 1e300;
  for (auto const& stroke : d.strokes)
    for (std::size_t k = 0; k + 1 < stroke.size(); ++k)
      best = std::min(best, detail::digit_segment_distance2(x, y, stroke[k], stroke[k + 1]));
  double const t = (d.half_width - std::sqrt(best)) / detail::digit_edge + 0.5;
  return std::min(1.0, std::max(0.0, t));
}

/// Render `d` onto an n × n image `out` (row-major, out[iy n + ix]): pixel
/// (iy, ix) covers the box cell centred at ((ix − (n−1)/2)/n, (iy − (n−1)/2)/n)
/// (iy grows with y: lenstronomy's grid convention) and holds the mean of
/// digit_intensity over a 3 × 3 grid of sub-pixels, in [0, 1].  Host code
/// (the strokes are host vectors); ~n² × 9 × 100 segment distances.
/// Throws std::invalid_argument for n < 1 or a null `out`.
template <class Scalar>
void render_digit(Digit const& d, int n, Scalar* out) {
  char const* where = "lensing::simulate::render_digit";
  check_count(n, 1, where, "n");
  check_argument(out != nullptr, where, "out is null");
  constexpr int sub = 3;
  for (int iy = 0; iy < n; ++iy)
    for (int ix = 0; ix < n; ++ix) {
      double sum = 0;
      for (int sy = 0; sy < sub; ++sy)
        for (int sx = 0; sx < sub; ++sx) {
          double const x = (ix - 0.5 * (n - 1) + (sx + 0.5) / sub - 0.5) / n;
          double const y = (iy - 0.5 * (n - 1) + (sy + 0.5) / sub - 0.5) / n;
          sum += digit_intensity(d, x, y);
        }
      out[std::size_t(iy) * n + ix] = Scalar(sum / (sub * sub));
    }
}

/// `n_points` points on the ink of `d` (box coordinates): a stroke position
/// uniform along the digit's total stroke length, offset across the stroke
/// uniformly in [−half_width, half_width] along its normal.  Deterministic per
/// seed: stream (seed, purpose_galaxy, 2^64 − 1, 0) (pass a different seed per
/// cloud, e.g. random::stream_key(seed, index)).  Throws
/// std::invalid_argument for n_points < 1 or a digit without strokes.
inline std::vector<std::array<double, 2>> digit_points(Digit const& d, int n_points, std::uint64_t seed) {
  char const* where = "lensing::simulate::digit_points";
  check_count(n_points, 1, where, "n_points");
  std::vector<double> cumulative{0.0};
  std::vector<std::pair<std::size_t, std::size_t>> segment;
  for (std::size_t s = 0; s < d.strokes.size(); ++s)
    for (std::size_t k = 0; k + 1 < d.strokes[s].size(); ++k) {
      auto const &a = d.strokes[s][k], &b = d.strokes[s][k + 1];
      cumulative.push_back(cumulative.back() + std::hypot(b[0] - a[0], b[1] - a[1]));
      segment.emplace_back(s, k);
    }
  check_argument(!segment.empty() && cumulative.back() > 0, where, "the digit has no strokes");
  random::Stream r(random::stream_key(seed, random::purpose_galaxy, ~std::uint64_t(0), 0));
  std::vector<std::array<double, 2>> points(static_cast<std::size_t>(n_points));
  for (auto& p : points) {
    double const u = r.uniform<double>() * cumulative.back();
    std::size_t j = std::size_t(std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin()) - 1;
    j = std::min(j, segment.size() - 1);
    auto const& a = d.strokes[segment[j].first][segment[j].second];
    auto const& b = d.strokes[segment[j].first][segment[j].second + 1];
    double const len = cumulative[j + 1] - cumulative[j];
    double const t = len > 0 ? (u - cumulative[j]) / len : 0.0;
    double const nx = len > 0 ? -(b[1] - a[1]) / len : 0.0, ny = len > 0 ? (b[0] - a[0]) / len : 1.0;
    double const across = d.half_width * (2 * r.uniform<double>() - 1);
    p = {a[0] + t * (b[0] - a[0]) + across * nx, a[1] + t * (b[1] - a[1]) + across * ny};
  }
  return points;
}

}  // namespace simulate
}  // namespace lensing

#endif  // LENSING_SIMULATE_DIGITS_HPP
