// The built-in font (io/font.hpp, Canvas::text) and the fit plots
// (fit/plots.hpp): pixel counts of glyphs, a corner plot with and without a
// truth, and the data / model / residual panels, checked on the canvas and
// written as PNGs.

#include <lensing/fit/plots.hpp>
#include <lensing/io/font.hpp>
#include <lensing/io/png.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/sample/sampler.hpp>
#include <lensing/sources/light_profile.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

namespace {
int count(lensing::io::Canvas const& c, lensing::io::Rgb colour) {
  int n = 0;
  for (int r = 0; r < c.height(); ++r)
    for (int q = 0; q < c.width(); ++q) {
      auto const p = c.get(q, r);
      n += p.r == colour.r && p.g == colour.g && p.b == colour.b;
    }
  return n;
}
bool same(lensing::io::Rgb a, lensing::io::Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }
// A constant likelihood: the posterior is the prior.
template <class M>
struct FlatLikelihood {
  using model_type = M;
  using memory_space = Kokkos::HostSpace;
  template <class Space>
  double value_and_gradient(Space const&, M const&, lensing::View1D<double, Kokkos::HostSpace> const& g) const {
    for (std::size_t k = 0; k < g.extent(0); ++k)
      g(k) = 0;
    return 0;
  }
};
std::string read_file(std::string const& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
}  // namespace

TEST_CASE("font: every printable glyph is drawn, distinct, and text() sets exactly its pixels") {
  using F = lensing::io::Font5x7;
  std::set<std::vector<int>> seen;
  for (int ch = 32; ch <= 126; ++ch) {
    std::vector<int> bits;
    for (int r = 0; r < F::height; ++r)
      for (int q = 0; q < F::width; ++q)
        bits.push_back(F::pixel(char(ch), q, r));
    int const on = int(std::count(bits.begin(), bits.end(), 1));
    if (ch == ' ')
      CHECK(on == 0);
    else
      CHECK(on > 0);
    seen.insert(bits);
  }
  CHECK(seen.size() == 95);  // no two glyphs alike
  // Outside 32..126: drawn as '?'.
  CHECK(F::glyph(char(127)) == F::glyph('?'));
  lensing::io::Rgb const black{0, 0, 0};
  // 'A' is .###. #...# #...# ##### #...# #...# #...#: 18 pixels; 72 at scale 2.
  lensing::io::Canvas c(40, 40);
  int const end = c.text(2, 3, "A", black, 1);
  CHECK(end == 2 + F::advance);
  CHECK(count(c, black) == 18);
  CHECK(same(c.get(2 + 1, 3), black));  // top row .###.
  CHECK(!same(c.get(2, 3), black));
  CHECK(same(c.get(2, 3 + 3), black));  // middle row #####
  lensing::io::Canvas c2(40, 40);
  c2.text(0, 0, "A", black, 2);
  CHECK(count(c2, black) == 72);
  // Two lines, clipped at the canvas edge without error.
  lensing::io::Canvas c3(20, 30);
  c3.text(10, 0, "AA\nA", black, 1);
  // The second 'A' of the first line starts at column 16: its last column
  // (6 pixels) is clipped; the second line's 'A' is whole.
  CHECK(count(c3, black) == 18 + 12 + 18);
  CHECK(lensing::io::Canvas::text_width("ab\nabc") == 3 * F::advance - 1);
  CHECK(lensing::io::Canvas::text_height("a\nb", 2) == (F::line_height + F::height) * 2);
}

TEST_CASE("plot_corner: histograms, 2-D densities, truth lines and labels") {
  // Three correlated Gaussian parameters, deterministic pseudo-draws.
  int const n = 2000;
  std::vector<double> draws;
  for (int i = 0; i < n; ++i) {
    double const u = (i + 0.5) / n, v = std::fmod(0.618033988749895 * i, 1.0);
    double const z1 = std::sqrt(-2 * std::log(u)) * std::cos(2 * M_PI * v);
    double const z2 = std::sqrt(-2 * std::log(u)) * std::sin(2 * M_PI * v);
    draws.push_back(1 + 0.1 * z1);
    draws.push_back(-2 + 0.5 * (0.8 * z1 + 0.6 * z2));
    draws.push_back(30 + 3 * z2);
  }
  std::vector<std::string> const names = {"theta_E", "gamma1", "amp"};
  lensing::CornerPlotOptions opt;
  opt.title = "corner";
  auto const c = lensing::corner_canvas(names, draws, {1.0, -2.0, 30.0}, opt);
  using Col = lensing::CornerPlotColours;
  int const truth_pixels = count(c, Col::truth), hist_pixels = count(c, Col::histogram), text = count(c, Col::text);
  MESSAGE("corner " << c.width() << "x" << c.height() << ": truth " << truth_pixels << ", histogram " << hist_pixels
                    << ", text " << text);
  // Truth: one vertical line through the 3 diagonal and 3 lower panels, one
  // horizontal line through the 3 lower panels, each panel-size long (less
  // crossings and what the histograms cover).
  CHECK(truth_pixels > 6 * opt.panel);
  CHECK(hist_pixels > 3 * opt.panel);  // bars of the 1-D histograms at least
  CHECK(text > 200);                   // names, ranges, titles
  auto const none = lensing::corner_canvas(names, draws, {}, opt);
  CHECK(count(none, Col::truth) == 0);
  CHECK(none.width() == c.width());
  std::string const path = "test_fit_corner.png";
  lensing::plot_corner(path, names, draws, {1.0, -2.0, 30.0});
  std::string const png = read_file(path);
  CHECK(png.size() > 1000);
  CHECK(png.substr(1, 3) == "PNG");
  std::remove(path.c_str());
  CHECK_THROWS_AS(lensing::corner_canvas(names, std::vector<double>(7, 0.0)), std::invalid_argument);
  CHECK_THROWS_AS(lensing::corner_canvas(names, draws, {1.0}), std::invalid_argument);
}

TEST_CASE("plot_fit_residuals: data, model and normalised residual panels") {
  int const ny = 20, nx = 24;
  lensing::View2D<double, Kokkos::HostSpace> data("data", ny, nx), model("model", ny, nx), noise("noise", ny, nx),
      mask("mask", ny, nx);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      model(iy, ix) = std::exp(-0.02 * ((ix - 12) * (ix - 12) + (iy - 10) * (iy - 10)));
      noise(iy, ix) = 0.1;
      data(iy, ix) = model(iy, ix) + 0.1 * ((ix + iy) % 2 ? 1 : -1);  // r = +-1 everywhere
      mask(iy, ix) = ix < 3 ? 0 : 1;                                  // three masked columns
    }
  data(0, 10) = model(0, 10) + 0.3;  // r = 3 at the bottom row
  auto const plot = lensing::fit_residuals_canvas(data, model, noise, mask);
  auto const& c = plot.canvas;
  // chi2 per unmasked pixel: (N - 1) ones and one 9.
  double const npix = double(ny * (nx - 3));
  CHECK(plot.chi2_per_pixel == doctest::Approx((npix - 1 + 9) / npix).epsilon(1e-12));
  int const k = plot.scale;
  CHECK(k == 240 / nx);
  auto const at = [&](int panel, int iy, int ix) {  // centre of image pixel (iy, ix)
    return c.get(plot.left[panel] + ix * k + k / 2, plot.top + (ny - 1 - iy) * k + k / 2);
  };
  using lensing::io::ColorMap;
  using lensing::io::colour;
  // Residual panel: masked pixels grey, r = 3 at (0, 10) on [-5, 5], row 0 at the bottom.
  CHECK(same(at(2, 5, 1), colour(ColorMap::diverging, NAN)));
  CHECK(same(at(2, 0, 10), colour(ColorMap::diverging, (3.0 + 5) / 10)));
  CHECK(same(at(2, 0, 11), colour(ColorMap::diverging, (1.0 + 5) / 10)));
  // Data and model panels on the shared range.
  CHECK(same(at(1, 10, 12), colour(ColorMap::magma, (model(10, 12) - plot.vmin) / (plot.vmax - plot.vmin))));
  CHECK(same(at(0, 0, 10), colour(ColorMap::magma, (data(0, 10) - plot.vmin) / (plot.vmax - plot.vmin))));
  CHECK(count(c, {0, 0, 0}) > 150);  // titles, ranges, colour-bar frames
  std::string const path = "test_fit_residuals.png";
  lensing::plot_fit_residuals(path, data, model, noise, mask);
  CHECK(read_file(path).substr(1, 3) == "PNG");
  std::remove(path.c_str());
  lensing::View2D<double, Kokkos::HostSpace> small("small", 3, 3);
  CHECK_THROWS_AS(lensing::fit_residuals_canvas(data, small, noise, mask), std::invalid_argument);
}

TEST_CASE("plot_corner and write_csv of a run on a Posterior: the free parameters, named") {
  using M = lensing::LensModel<lensing::SIS<double>, lensing::Sersic<double>, lensing::NoLight<double>>;
  using P = lensing::Prior<double>;
  lensing::ParameterTable<double, Kokkos::HostSpace> t;
  t.add("lens0.theta_E", P::uniform(0.5, 2))
      .add("lens0.center_x", P::normal(0, 0.1))
      .add("lens0.center_y", P::fixed(0))
      .add("source0.amp", P::gamma(4, 1))
      .add("source0.R_sersic", P::fixed(0.3))
      .add("source0.n_sersic", P::fixed(2));
  t.tie("source0.center_x", "lens0.center_x");
  t.tie("source0.center_y", "lens0.center_y");
  lensing::Posterior<FlatLikelihood<M>> const post(FlatLikelihood<M>{}, t);
  REQUIRE(post.free_names() == std::vector<std::string>{"lens0.theta_E", "lens0.center_x", "source0.amp"});
  lensing::SamplerOptions opt;
  opt.num_chains = 2;
  opt.num_warmup = 100;
  opt.num_draws = 200;
  auto const r = lensing::sample(Kokkos::DefaultHostExecutionSpace(), post, opt);
  std::string const png = "test_fit_posterior_corner.png", csv = "test_fit_posterior.csv";
  lensing::plot_corner(png, post, r, {1.0, 0.0, 0.0, 4.0, 0.3, 2.0, 0.0, 0.0});  // a full row
  CHECK(read_file(png).substr(1, 3) == "PNG");
  lensing::write_csv(csv, post, r);
  std::string const text = read_file(csv);
  CHECK(text.find("chain,draw,lens0.theta_E,lens0.center_x,lens0.center_y,source0.amp,source0.R_sersic,"
                  "source0.n_sersic,source0.center_x,source0.center_y,lp__") == 0);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1 + 2 * 200);
  std::remove(png.c_str());
  std::remove(csv.c_str());
  CHECK_THROWS_AS(lensing::plot_corner(png, post, r, {1.0, 2.0}), std::invalid_argument);
}
