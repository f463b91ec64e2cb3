// A mosaic of scalar images in one PNG (io/png.hpp Canvas): panels in a
// grid, each with its own colour range and a title above it.  Used by the
// score-based examples (score_deconvolution, score_lens_noise).
#ifndef LENSING_EXAMPLES_COMMON_MOSAIC_HPP
#define LENSING_EXAMPLES_COMMON_MOSAIC_HPP

#include <lensing/io/png.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

/// One panel: an (ny, nx) image (row 0 at the bottom), its colour range and title.
struct MosaicPanel {
  std::vector<double> values;
  int nx = 0, ny = 0;
  double vmin = 0, vmax = 1;
  lensing::io::ColorMap map = lensing::io::ColorMap::magma;
  std::string title;
};

/// Write `panels` in rows of `columns`, each `scale` screen pixels per image pixel.
inline void write_mosaic(std::string const& path, std::vector<MosaicPanel> const& panels, int columns, int scale) {
  namespace io = lensing::io;
  int pw = 0, ph = 0;
  for (auto const& p : panels) {
    pw = std::max(pw, p.nx * scale);
    ph = std::max(ph, p.ny * scale);
  }
  int const gap = 6, title_h = 12;
  int const rows = int((panels.size() + std::size_t(columns) - 1) / std::size_t(columns));
  io::Canvas c(columns * (pw + gap) + gap, rows * (ph + gap + title_h) + gap, {255, 255, 255});
  for (std::size_t k = 0; k < panels.size(); ++k) {
    auto const& p = panels[k];
    int const col0 = gap + int(k % std::size_t(columns)) * (pw + gap);
    int const row0 = gap + int(k / std::size_t(columns)) * (ph + gap + title_h);
    c.text(col0, row0, p.title, {0, 0, 0});
    double const span = p.vmax > p.vmin ? p.vmax - p.vmin : 1.0;
    for (int r = 0; r < p.ny * scale; ++r)
      for (int q = 0; q < p.nx * scale; ++q) {
        int const iy = p.ny - 1 - r / scale, ix = q / scale;
        double const v = p.values[std::size_t(iy) * std::size_t(p.nx) + std::size_t(ix)];
        c.set(col0 + q, row0 + title_h + r, io::colour(p.map, (v - p.vmin) / span));
      }
  }
  c.write(path);
}

/// The [lo, hi] range of values (lo < hi).
inline std::pair<double, double> value_range(std::vector<double> const& v) {
  double lo = HUGE_VAL, hi = -HUGE_VAL;
  for (double x : v)
    if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
  if (!(hi > lo)) hi = lo + 1;
  return {lo, hi};
}

#endif  // LENSING_EXAMPLES_COMMON_MOSAIC_HPP
