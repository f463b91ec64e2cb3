// Line-plot panels on an io::Canvas for the example programs: series of
// (x, y) points with optional error bars, markers, linear or log axes, the
// axis ranges as labels, a title and a legend.  Used by graph_wgan_digits
// (loss and sample-quality curves) and intrinsic_alignments (alignment and
// correlation-function panels).  Host only.
#ifndef LENSING_EXAMPLES_COMMON_LINE_PANEL_HPP
#define LENSING_EXAMPLES_COMMON_LINE_PANEL_HPP

#include <lensing/io/png.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace line_panel {

/// One curve: y (and optional +-err) at x; `markers` draws a disc per point,
/// `line` joins them.
struct Series {
  std::string label;
  std::vector<double> x, y, err;
  lensing::io::Rgb colour{0, 0, 0};
  bool markers = false;
  bool line = true;
};

/// Axes and labels of a panel; NaN limits: the data's range (padded 5 %).
struct Options {
  std::string title, xlabel, ylabel;
  bool log_x = false, log_y = false;
  double xmin = NAN, xmax = NAN, ymin = NAN, ymax = NAN;
  bool zero_line = false;  // a grey horizontal line at y = 0
};

inline std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

/// Draw `series` in the panel whose frame spans canvas pixels
/// [col0, col0 + w) x [row0, row0 + h) (labels go outside: leave ~40 pixels
/// left, ~20 below and ~12 above).
inline void draw(lensing::io::Canvas& c, int col0, int row0, int w, int h, std::vector<Series> const& series,
                 Options const& o) {
  using lensing::io::Rgb;
  auto tx = [&](double v) { return o.log_x ? std::log10(v) : v; };
  auto ty = [&](double v) { return o.log_y ? std::log10(v) : v; };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (auto const& s : series)
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      double const e = i < s.err.size() ? s.err[i] : 0;
      double const xv = tx(s.x[i]), ylo = ty(s.y[i] - e), yhi = ty(s.y[i] + e);
      if (std::isfinite(xv)) x0 = std::min(x0, xv), x1 = std::max(x1, xv);
      if (std::isfinite(ylo)) y0 = std::min(y0, ylo);
      if (std::isfinite(yhi)) y1 = std::max(y1, yhi);
    }
  if (o.zero_line && !o.log_y) y0 = std::min(y0, 0.0), y1 = std::max(y1, 0.0);
  if (!(x1 > x0)) x0 -= 1, x1 += 1;
  if (!(y1 > y0)) y0 -= 1, y1 += 1;
  double const px = 0.03 * (x1 - x0), py = 0.06 * (y1 - y0);
  x0 -= px, x1 += px, y0 -= py, y1 += py;
  if (std::isfinite(o.xmin)) x0 = tx(o.xmin);
  if (std::isfinite(o.xmax)) x1 = tx(o.xmax);
  if (std::isfinite(o.ymin)) y0 = ty(o.ymin);
  if (std::isfinite(o.ymax)) y1 = ty(o.ymax);
  // World coordinates = canvas pixel centres (col + 0.5, H - row - 0.5).
  c.set_window(0, c.width(), 0, c.height());
  auto col = [&](double v) { return col0 + (tx(v) - x0) / (x1 - x0) * (w - 1) + 0.5; };
  auto rowy = [&](double v) {
    double const r = row0 + (y1 - ty(v)) / (y1 - y0) * (h - 1);
    return c.height() - std::min(double(row0 + h - 1), std::max(double(row0), r)) - 0.5;
  };
  Rgb const ink{0, 0, 0}, grey{170, 170, 170};
  if (o.zero_line && !o.log_y && y0 < 0 && y1 > 0) c.line(col0 + 0.5, rowy(0), col0 + w - 0.5, rowy(0), grey);
  for (auto const& s : series) {
    std::size_t const n = std::min(s.x.size(), s.y.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(tx(s.x[i])) || !std::isfinite(ty(s.y[i]))) continue;
      double const cx = col(s.x[i]);
      if (cx < col0 || cx > col0 + w) continue;
      if (s.line && i + 1 < n && std::isfinite(ty(s.y[i + 1])) && std::isfinite(tx(s.x[i + 1])))
        c.line(cx, rowy(s.y[i]), col(s.x[i + 1]), rowy(s.y[i + 1]), s.colour);
      if (i < s.err.size() && s.err[i] > 0) c.line(cx, rowy(s.y[i] - s.err[i]), cx, rowy(s.y[i] + s.err[i]), s.colour);
      if (s.markers) c.marker(cx, rowy(s.y[i]), s.colour, 2);
    }
  }
  // Frame, range labels, title, legend.
  c.line(col0 + 0.5, c.height() - row0 - 0.5, col0 + w - 0.5, c.height() - row0 - 0.5, ink);
  c.line(col0 + 0.5, c.height() - (row0 + h - 1) - 0.5, col0 + w - 0.5, c.height() - (row0 + h - 1) - 0.5, ink);
  c.line(col0 + 0.5, c.height() - row0 - 0.5, col0 + 0.5, c.height() - (row0 + h - 1) - 0.5, ink);
  c.line(col0 + w - 0.5, c.height() - row0 - 0.5, col0 + w - 0.5, c.height() - (row0 + h - 1) - 0.5, ink);
  auto back_x = [&](double v) { return o.log_x ? std::pow(10.0, v) : v; };
  auto back_y = [&](double v) { return o.log_y ? std::pow(10.0, v) : v; };
  std::string const xl = number(back_x(x0)), xr = number(back_x(x1));
  c.text(col0, row0 + h + 3, xl, ink);
  c.text(col0 + w - lensing::io::Canvas::text_width(xr), row0 + h + 3, xr, ink);
  std::string const xlab = o.xlabel + (o.log_x ? " (log)" : "");
  c.text(col0 + (w - lensing::io::Canvas::text_width(xlab)) / 2, row0 + h + 3, xlab, ink);
  std::string const yb = number(back_y(y0)), yt = number(back_y(y1));
  c.text(col0 - 3 - lensing::io::Canvas::text_width(yb), row0 + h - 7, yb, ink);
  c.text(col0 - 3 - lensing::io::Canvas::text_width(yt), row0, yt, ink);
  std::string const ylab = o.ylabel + (o.log_y ? " (log)" : "");
  c.text(col0 + 3, row0 + 3, ylab, ink);
  c.text(col0 + (w - lensing::io::Canvas::text_width(o.title)) / 2, row0 - 10, o.title, ink);
  int r = row0 + 3;
  for (auto const& s : series) {
    if (s.label.empty()) continue;
    int const tw = lensing::io::Canvas::text_width(s.label);
    c.text(col0 + w - 4 - tw, r, s.label, s.colour);
    r += 9;
  }
}

}  // namespace line_panel

#endif
