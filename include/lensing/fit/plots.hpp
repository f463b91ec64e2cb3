#ifndef LENSING_FIT_PLOTS_HPP
#define LENSING_FIT_PLOTS_HPP

/// \file
/// PNG plots of a fit (io/png.hpp Canvas, labels in its built-in font):
///  - a corner plot of posterior draws: 1-D histograms on the diagonal
///    (titled median +- half the central 68 % interval), 2-D histograms of
///    every pair below it, the truth (if given) as red lines, parameter names
///    and the axis ranges as labels;
///  - data | model | normalised residual (d - m) / sigma panels of an image
///    fit, each with its colour bar and range, chi^2 per unmasked pixel.
/// Host only; the functions that return a canvas let callers add to it.

#include <lensing/core/errors.hpp>
#include <lensing/fit/posterior.hpp>
#include <lensing/io/png.hpp>
#include <lensing/sample/diagnostics.hpp>
#include <lensing/sample/draws.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace lensing {

namespace detail {
inline void plot_fill(io::Canvas& c, int col0, int row0, int w, int h, io::Rgb colour) {
  for (int r = row0; r < row0 + h; ++r)
    for (int q = col0; q < col0 + w; ++q)
      c.set(q, r, colour);
}
inline void plot_frame(io::Canvas& c, int col0, int row0, int w, int h, io::Rgb colour) {
  for (int q = col0; q < col0 + w; ++q) {
    c.set(q, row0, colour);
    c.set(q, row0 + h - 1, colour);
  }
  for (int r = row0; r < row0 + h; ++r) {
    c.set(col0, r, colour);
    c.set(col0 + w - 1, r, colour);
  }
}
inline std::string plot_number(double v, char const* format = "%.4g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}
// Axis range of one parameter: its 0.5 % and 99.5 % quantiles (and the
// truth), widened by 5 % on each side; a constant gets a small range around it.
inline std::pair<double, double> plot_range(std::vector<double> x, double truth) {
  x.erase(std::remove_if(x.begin(), x.end(), [](double v) { return !std::isfinite(v); }), x.end());
  double lo = x.empty() ? 0 : diagnostics::detail::quantile(x, 0.005);
  double hi = x.empty() ? 1 : diagnostics::detail::quantile(x, 0.995);
  if (std::isfinite(truth)) {
    lo = std::min(lo, truth);
    hi = std::max(hi, truth);
  }
  double const pad = 0.05 * (hi - lo);
  if (!(pad > 0)) {
    double const h = std::max(1e-3, 0.05 * std::fabs(lo));
    return {lo - h, hi + h};
  }
  return {lo - pad, hi + pad};
}
}  // namespace detail

//----------------------------------------------------------------------------
/// Options of a corner plot.
struct CornerPlotOptions {
  int panel = 120;     ///< panel size [pixels]
  int gap = 6;         ///< space between panels [pixels]
  int bins = 30;       ///< histogram bins per axis
  int text_scale = 1;  ///< font magnification
  std::string title;   ///< drawn at the top left (empty: none)
};

/// Colours of the corner plot (for callers and tests that look for them).
struct CornerPlotColours {
  static constexpr io::Rgb histogram{49, 104, 160};
  static constexpr io::Rgb truth{214, 39, 40};
  static constexpr io::Rgb frame{150, 150, 150};
  static constexpr io::Rgb text{0, 0, 0};
};

/// A corner plot of `draws` ((sample, parameter) layout, names.size()
/// columns, e.g. constrained_draws() or a SampleResult's draws) with the
/// optional `truth` (names.size() values, NaN for none; empty: no truth), as
/// a canvas.  Throws std::invalid_argument for inconsistent sizes.
inline io::Canvas corner_canvas(std::vector<std::string> const& names, std::vector<double> const& draws,
                                std::vector<double> const& truth = {}, CornerPlotOptions const& options = {}) {
  constexpr char const* where = "lensing::plot_corner";
  std::size_t const m = names.size();
  check_argument(m >= 1, where, "at least one parameter name is needed");
  check_argument(draws.size() % m == 0 && draws.size() >= m, where,
                 "draws must hold (number of samples) x names.size() values, got " + std::to_string(draws.size()) +
                     " for " + std::to_string(m) + " names");
  check_argument(truth.empty() || truth.size() == m, where, "truth must be empty or hold names.size() values");
  check_count(options.panel, 16, where, "panel");
  check_count(options.gap, 0, where, "gap");
  check_count(options.bins, 1, where, "bins");
  check_count(options.text_scale, 1, where, "text_scale");
  std::size_t const n = draws.size() / m;
  int const ts = options.text_scale, P = options.panel, G = options.gap, B = options.bins;
  std::vector<std::vector<double>> x(m, std::vector<double>(n));
  std::vector<double> lo(m), hi(m), t(m, NAN);
  for (std::size_t k = 0; k < m; ++k) {
    for (std::size_t i = 0; i < n; ++i)
      x[k][i] = draws[i * m + k];
    if (!truth.empty()) t[k] = truth[k];
    auto const r = detail::plot_range(x[k], t[k]);
    lo[k] = r.first;
    hi[k] = r.second;
  }
  // Margins: y names and ranges on the left, x names and ranges below.
  int name_w = 0, tick_w = 0;
  for (std::size_t k = 0; k < m; ++k) {
    name_w = std::max(name_w, io::Canvas::text_width(names[k], ts));
    tick_w = std::max({tick_w, io::Canvas::text_width(detail::plot_number(lo[k], "%.3g"), ts),
                       io::Canvas::text_width(detail::plot_number(hi[k], "%.3g"), ts)});
  }
  int const line = io::Font5x7::line_height * ts;
  int const left = name_w + tick_w + 16, top = (options.title.empty() ? 1 : 2) * line + 8, bottom = 2 * line + 12;
  int const width = left + int(m) * P + (int(m) - 1) * G + 8, height = top + int(m) * P + (int(m) - 1) * G + bottom;
  io::Canvas c(width, height);
  if (!options.title.empty()) c.text(4, 4, options.title, CornerPlotColours::text, ts);
  auto const col_of = [&](std::size_t j) { return left + int(j) * (P + G); };
  auto const row_of = [&](std::size_t i) { return top + int(i) * (P + G); };
  // Pixel offset inside a panel of value v on axis k (0 .. P-1), or -1 outside.
  auto const offset = [&](std::size_t k, double v) {
    if (!std::isfinite(v) || v < lo[k] || v > hi[k]) return -1;
    return std::min(P - 1, int((v - lo[k]) / (hi[k] - lo[k]) * P));
  };
  auto const bin = [&](std::size_t k, double v) {
    if (!std::isfinite(v) || v < lo[k] || v > hi[k]) return -1;
    return std::min(B - 1, int((v - lo[k]) / (hi[k] - lo[k]) * B));
  };
  for (std::size_t i = 0; i < m; ++i) {
    int const r0 = row_of(i);
    for (std::size_t j = 0; j <= i; ++j) {
      int const c0 = col_of(j);
      if (i == j) {
        std::vector<double> count(std::size_t(B), 0.0);
        for (double v : x[i]) {
          int const b = bin(i, v);
          if (b >= 0) count[b] += 1;
        }
        double const most = *std::max_element(count.begin(), count.end());
        for (int b = 0; b < B && most > 0; ++b) {
          int const q0 = b * P / B, q1 = (b + 1) * P / B, h = int(std::lround(count[b] / most * (P - 6)));
          detail::plot_fill(c, c0 + q0, r0 + P - h, std::max(1, q1 - q0), h, CornerPlotColours::histogram);
        }
        int const tq = offset(i, t[i]);
        if (tq >= 0) detail::plot_fill(c, c0 + tq, r0, 1, P, CornerPlotColours::truth);
        // Title: median +- half the central 68 % interval.
        std::vector<double> xs = x[i];
        xs.erase(std::remove_if(xs.begin(), xs.end(), [](double v) { return !std::isfinite(v); }), xs.end());
        if (!xs.empty()) {
          double const med = diagnostics::detail::quantile(xs, 0.5);
          double const s = 0.5 * (diagnostics::detail::quantile(xs, 0.8413447460685429) -
                                  diagnostics::detail::quantile(xs, 0.15865525393145707));
          c.text(c0, r0 - line, detail::plot_number(med) + "+-" + detail::plot_number(s, "%.2g"),
                 CornerPlotColours::text, ts);
        }
      } else {
        std::vector<double> count(std::size_t(B) * B, 0.0);
        for (std::size_t s = 0; s < n; ++s) {
          int const bx = bin(j, x[j][s]), by = bin(i, x[i][s]);
          if (bx >= 0 && by >= 0) count[std::size_t(by) * B + bx] += 1;
        }
        double const most = *std::max_element(count.begin(), count.end());
        for (int by = 0; by < B && most > 0; ++by)
          for (int bx = 0; bx < B; ++bx) {
            double const f = count[std::size_t(by) * B + bx] / most;
            if (f <= 0) continue;
            // White to the histogram colour, with a floor so single draws show.
            double const a = 0.15 + 0.85 * std::sqrt(f);
            auto const mix = [a](int from, int to) { return std::uint8_t(std::lround(from + (to - from) * a)); };
            io::Rgb const col{mix(255, CornerPlotColours::histogram.r), mix(255, CornerPlotColours::histogram.g),
                              mix(255, CornerPlotColours::histogram.b)};
            int const q0 = bx * P / B, q1 = (bx + 1) * P / B;
            int const y1 = P - by * P / B, y0 = P - (by + 1) * P / B;  // y up
            detail::plot_fill(c, c0 + q0, r0 + y0, q1 - q0, y1 - y0, col);
          }
        int const tq = offset(j, t[j]), tr = offset(i, t[i]);
        if (tq >= 0) detail::plot_fill(c, c0 + tq, r0, 1, P, CornerPlotColours::truth);
        if (tr >= 0) detail::plot_fill(c, c0, r0 + P - 1 - tr, P, 1, CornerPlotColours::truth);
      }
      detail::plot_frame(c, c0, r0, P, P, CornerPlotColours::frame);
    }
    // y labels (rows below the first): name, then the range at the panel's ends.
    if (i > 0) {
      int const tx = left - 6 - tick_w;
      c.text(4, r0 + P / 2 - 3 * ts, names[i], CornerPlotColours::text, ts);
      c.text(tx, r0, detail::plot_number(hi[i], "%.3g"), CornerPlotColours::text, ts);
      c.text(tx, r0 + P - 7 * ts, detail::plot_number(lo[i], "%.3g"), CornerPlotColours::text, ts);
    }
  }
  // x labels under the bottom row.
  int const yb = row_of(m - 1) + P + 4;
  for (std::size_t j = 0; j < m; ++j) {
    int const c0 = col_of(j);
    std::string const l = detail::plot_number(lo[j], "%.3g"), h = detail::plot_number(hi[j], "%.3g");
    c.text(c0, yb, l, CornerPlotColours::text, ts);
    c.text(c0 + P - io::Canvas::text_width(h, ts), yb, h, CornerPlotColours::text, ts);
    c.text(c0 + std::max(0, (P - io::Canvas::text_width(names[j], ts)) / 2), yb + line + 2, names[j],
           CornerPlotColours::text, ts);
  }
  return c;
}

/// Write corner_canvas(names, draws, truth, options) as a PNG.
inline void plot_corner(std::string const& path, std::vector<std::string> const& names,
                        std::vector<double> const& draws, std::vector<double> const& truth = {},
                        CornerPlotOptions const& options = {}) {
  corner_canvas(names, draws, truth, options).write(path);
}

/// Corner plot of the free parameters of a run on `posterior` (constrained);
/// `truth`: empty, a full row (all_names() order) or the free values.
template <class L, class E>
void plot_corner(std::string const& path, Posterior<L, E> const& posterior, SampleResult const& r,
                 std::vector<double> const& truth = {}, CornerPlotOptions const& options = {}) {
  auto const all = constrained_draws(posterior, r);
  auto const& names = posterior.all_names();
  auto const& free = posterior.free_names();
  std::size_t const m = names.size(), d = free.size(), n = all.size() / m;
  check_argument(truth.empty() || truth.size() == m || truth.size() == d, "lensing::plot_corner",
                 "truth must be empty, a full row or the free values");
  std::vector<std::size_t> column(d);
  for (std::size_t f = 0; f < d; ++f)
    column[f] = std::size_t(std::find(names.begin(), names.end(), free[f]) - names.begin());
  std::vector<double> x(n * d), t;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t f = 0; f < d; ++f)
      x[i * d + f] = all[i * m + column[f]];
  for (std::size_t f = 0; f < d && !truth.empty(); ++f)
    t.push_back(truth.size() == m ? truth[column[f]] : truth[f]);
  plot_corner(path, free, x, t, options);
}

//----------------------------------------------------------------------------
/// Options of the data / model / residual plot.
struct FitResidualOptions {
  int panel = 240;            ///< target panel size [pixels]; whole screen pixels per image pixel
  double residual_range = 5;  ///< residual colour scale [-r, r] in units of sigma (clamped beyond)
  int text_scale = 1;         ///< font magnification
  std::string title;          ///< drawn at the top left (empty: none)
};

/// The data / model / residual figure and where its panels are.
struct FitResidualPlot {
  io::Canvas canvas{1, 1};
  int scale = 1;                ///< screen pixels per image pixel
  int top = 0;                  ///< canvas row of the panels' top edge
  std::array<int, 3> left{};    ///< canvas column of each panel's left edge (data, model, residual)
  double chi2_per_pixel = NAN;  ///< sum of m r^2 / sum of m over pixels with m > 0
  double vmin = 0, vmax = 1;    ///< data and model colour range
};

/// Data | model | (data - model) / sigma panels (each `scale` x `scale`
/// screen pixels per image pixel, row 0 of the images at the bottom),
/// titled, with a colour bar and its range under each.  data, model,
/// noise_map (> 0 where the mask is > 0) and mask (weights in [0, 1]; 0 =
/// ignored, drawn grey in the residual panel) are rank-2 (ny, nx) views in
/// any memory space.  Data and model share the colour range of the data and
/// model over the unmasked pixels (magma); residuals use the diverging map
/// on [-residual_range, residual_range].  The residual title gives chi^2 per
/// unmasked pixel, sum m r^2 / sum m.
template <class Data, class Model, class Noise, class Mask>
FitResidualPlot fit_residuals_canvas(Data const& data, Model const& model, Noise const& noise_map, Mask const& mask,
                                     FitResidualOptions const& options = {}) {
  constexpr char const* where = "lensing::plot_fit_residuals";
  static_assert(Data::rank == 2 && Model::rank == 2 && Noise::rank == 2 && Mask::rank == 2,
                "lensing::plot_fit_residuals: data, model, noise_map and mask are rank-2 views (ny, nx)");
  int const ny = int(data.extent(0)), nx = int(data.extent(1));
  check_count(ny, 1, where, "data.extent(0)");
  check_count(nx, 1, where, "data.extent(1)");
  check_extents(model, where, "model", "(ny, nx)", ny, nx);
  check_extents(noise_map, where, "noise_map", "(ny, nx)", ny, nx);
  check_extents(mask, where, "mask", "(ny, nx)", ny, nx);
  check_count(options.panel, 1, where, "panel");
  check_positive(options.residual_range, where, "residual_range");
  check_count(options.text_scale, 1, where, "text_scale");
  auto const d = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), data);
  auto const mo = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model);
  auto const s = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), noise_map);
  auto const w = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mask);
  std::size_t const np = std::size_t(nx) * ny;
  std::vector<double> dv(np), mv(np), rv(np);
  double vmin = HUGE_VAL, vmax = -HUGE_VAL, chi2 = 0, weight = 0;
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      std::size_t const k = std::size_t(iy) * nx + ix;
      dv[k] = double(d(iy, ix));
      mv[k] = double(mo(iy, ix));
      double const m = double(w(iy, ix));
      if (m > 0) {
        double const r = (dv[k] - mv[k]) / double(s(iy, ix));
        rv[k] = r;
        chi2 += m * r * r;
        weight += m;
        for (double v : {dv[k], mv[k]})
          if (std::isfinite(v)) {
            vmin = std::min(vmin, v);
            vmax = std::max(vmax, v);
          }
      } else {
        rv[k] = NAN;  // grey
      }
    }
  if (!(vmax > vmin)) {
    vmin = std::isfinite(vmin) ? vmin - 0.5 : 0;
    vmax = vmin + 1;
  }
  FitResidualPlot out;
  out.vmin = vmin;
  out.vmax = vmax;
  out.chi2_per_pixel = weight > 0 ? chi2 / weight : NAN;
  int const ts = options.text_scale, line = io::Font5x7::line_height * ts;
  int const k = std::max(1, options.panel / std::max(nx, ny));
  int const pw = nx * k, ph = ny * k, gap = 30 * ts;
  int const bar = 10;
  // Panels wide enough for their titles and range labels.
  std::string const titles[3] = {"data", "model",
                                 "(data - model) / sigma, chi2/N = " + detail::plot_number(out.chi2_per_pixel, "%.3f")};
  int const cw = std::max(pw, io::Canvas::text_width(titles[2], ts));
  out.scale = k;
  out.top = 4 + (options.title.empty() ? 0 : line + 2) + line + 4;
  for (int p = 0; p < 3; ++p)
    out.left[p] = 8 + p * (pw + gap);
  int const width = out.left[2] + cw + 8, height = out.top + ph + 6 + bar + 4 + line + 6;
  io::Canvas c(width, height);
  io::Rgb const black{0, 0, 0};
  if (!options.title.empty()) c.text(8, 4, options.title, black, ts);
  double const rr = options.residual_range;
  std::vector<double> const* values[3] = {&dv, &mv, &rv};
  for (int p = 0; p < 3; ++p) {
    io::ColorMap const map = p == 2 ? io::ColorMap::diverging : io::ColorMap::magma;
    double const lo = p == 2 ? -rr : vmin, hi = p == 2 ? rr : vmax;
    int const c0 = out.left[p];
    c.text(c0, out.top - line - 2, titles[p], black, ts);
    for (int r = 0; r < ph; ++r)
      for (int q = 0; q < pw; ++q) {
        int const iy = ny - 1 - r / k, ix = q / k;  // image row 0 at the bottom
        c.set(c0 + q, out.top + r, io::colour(map, ((*values[p])[std::size_t(iy) * nx + ix] - lo) / (hi - lo)));
      }
    // Colour bar under the panel, and its range.
    int const yb = out.top + ph + 6;
    for (int q = 0; q < pw; ++q) {
      io::Rgb const col = io::colour(map, (q + 0.5) / pw);
      detail::plot_fill(c, c0 + q, yb, 1, bar, col);
    }
    detail::plot_frame(c, c0 - 1, yb - 1, pw + 2, bar + 2, black);
    std::string const l = detail::plot_number(lo), h = detail::plot_number(hi);
    c.text(c0, yb + bar + 4, l, black, ts);
    c.text(c0 + pw - io::Canvas::text_width(h, ts), yb + bar + 4, h, black, ts);
  }
  out.canvas = std::move(c);
  return out;
}

/// Write fit_residuals_canvas(data, model, noise_map, mask, options) as a PNG.
template <class Data, class Model, class Noise, class Mask>
void plot_fit_residuals(std::string const& path, Data const& data, Model const& model, Noise const& noise_map,
                        Mask const& mask, FitResidualOptions const& options = {}) {
  fit_residuals_canvas(data, model, noise_map, mask, options).canvas.write(path);
}

}  // namespace lensing

#endif  // LENSING_FIT_PLOTS_HPP
