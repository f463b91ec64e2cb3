// TARP: hand-computed f values and ECP; on a conjugate normal model the ECP
// of an exact posterior stays within the DKW band of the diagonal and an
// over-confident posterior falls far below it; bootstrap band; PNG; bad inputs.

#include <lensing/core/random.hpp>
#include <lensing/validate/tarp.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

namespace lv = lensing::validate;

namespace {
constexpr double s2 = 0.25;
// N simulations of theta ~ N(0, I_P), y ~ N(theta, s2 I); n samples of N(y/(1+s2), scale^2 s2/(1+s2)).
void simulate(int N, int n, int P, double scale, std::uint64_t seed, std::vector<double>& truths,
              std::vector<double>& samples) {
  lensing::Rng rng(seed);
  truths.assign(std::size_t(N) * P, 0.0);
  samples.assign(std::size_t(N) * n * P, 0.0);
  double const sd = scale * std::sqrt(s2 / (1 + s2));
  for (int i = 0; i < N; ++i)
    for (int k = 0; k < P; ++k) {
      double const th = rng.normal(), y = th + std::sqrt(s2) * rng.normal();
      truths[std::size_t(i) * P + k] = th;
      for (int j = 0; j < n; ++j)
        samples[(std::size_t(i) * n + j) * P + k] = y / (1 + s2) + sd * rng.normal();
    }
}
}  // namespace

TEST_CASE("TARP: hand-computed case") {
  // 1-d, no normalisation, 2 simulations, 4 samples each, given references.
  // Sim 0: truth 1, reference 0 (distance 1); samples {0.5, -2, 1.5, 0.9}: distances
  //   {0.5, 2, 1.5, 0.9} -> 2 closer, f = 0.5.
  // Sim 1: truth -1, reference 1 (distance 2); samples {0, 0.5, 2.5, -2}: distances
  //   {1, 0.5, 1.5, 3} -> 3 closer, f = 0.75.
  lv::TarpOptions o;
  o.normalize = false;
  o.num_alpha = 5;  // alpha = 0, 0.25, 0.5, 0.75, 1
  auto const r = lv::tarp({1, -1}, {0.5, -2, 1.5, 0.9, 0, 0.5, 2.5, -2}, 2, 4, 1, o, {0, 1});
  CHECK(r.f[0] == 0.5);
  CHECK(r.f[1] == 0.75);
  // ECP(alpha) = fraction of f < alpha: 0, 0, 0, 0.5 (0.5 < 0.75), 1.
  std::vector<double> const expected{0, 0, 0, 0.5, 1};
  for (int a = 0; a < 5; ++a)
    CHECK(r.ecp[a] == expected[a]);
  CHECK(r.max_deviation == doctest::Approx(0.5));
}

TEST_CASE("TARP: exact posterior on the diagonal, over-confident posterior off it") {
  int const N = 1000, n = 200, P = 3;
  std::vector<double> truths, samples;
  simulate(N, n, P, 1.0, 5, truths, samples);
  lv::TarpOptions o;
  o.num_bootstrap = 100;
  auto const exact = lv::tarp(truths, samples, N, n, P, o);
  // f_i is uniform on {0, 1/n, ..., 1} for an exact posterior: E ECP(alpha) is
  // within 1/(n+1) of alpha, and the DKW inequality bounds the sampling error
  // sup |ECP - E ECP| by sqrt(log(2 / 0.001) / (2 N)) with probability 99.9%.
  double const tol = std::sqrt(std::log(2 / 0.001) / (2.0 * N)) + 1.0 / (n + 1);
  MESSAGE("exact: max |ECP - alpha| " << exact.max_deviation << " (tolerance " << tol << ")");
  CHECK(exact.max_deviation <= tol);
  // Bootstrap sd at alpha = 0.5 ~ sqrt(0.25 / N).
  CHECK(exact.ecp_sd[50] == doctest::Approx(std::sqrt(0.25 / N)).epsilon(0.3));
  simulate(N, n, P, 0.5, 6, truths, samples);
  auto const over = lv::tarp(truths, samples, N, n, P, o);
  MESSAGE("over-confident: max |ECP - alpha| " << over.max_deviation << ", mean signed " << over.mean_signed_deviation);
  CHECK(over.max_deviation > 2 * tol);    // 0.2 here: ~12 sampling sd of the maximum deviation
  CHECK(over.mean_signed_deviation < 0);  // coverage below nominal
  std::string const path = "test_validate_tarp.png";
  lv::plot_tarp(path, exact);
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  CHECK(f.good());
  CHECK(f.tellg() > 100);
  std::remove(path.c_str());
}

TEST_CASE("TARP: the plot carries its labels in margins around the frame") {
  std::vector<double> truths, samples;
  simulate(200, 50, 2, 1.0, 7, truths, samples);
  auto const r = lv::tarp(truths, samples, 200, 50, 2);
  int const size = 300;
  auto const c = lv::tarp_canvas(r, size, "TARP title");
  // Black pixels (text, ticks, frame) in a pixel rectangle [c0, c1) x [r0, r1).
  auto ink = [](lensing::io::Canvas const& cv, int c0, int r0, int c1, int r1) {
    int n = 0;
    for (int row = r0; row < r1; ++row)
      for (int col = c0; col < c1; ++col) {
        auto const p = cv.get(col, row);
        n += (p.r == 0 && p.g == 0 && p.b == 0) ? 1 : 0;
      }
    return n;
  };
  int const x_axis = int(std::lround(c.to_row(0))), y_axis = int(std::lround(c.to_col(0)));
  int const frame_top = int(std::lround(c.to_row(1)));
  // The frame sits inside the canvas with margins (the old plot filled it).
  CHECK(x_axis < size - 20);
  CHECK(y_axis > 20);
  // Tick labels and the axis name under the x axis, tick labels and "ECP"
  // left of the y axis, the title above the frame (right of the y axis,
  // clear of the tick label "1"): each a few glyphs of
  // ~15 black pixels.
  CHECK(ink(c, 0, x_axis + 5, size, size) > 100);
  CHECK(ink(c, 0, 0, y_axis - 4, x_axis) > 40);
  CHECK(ink(c, y_axis, 0, size, frame_top - 2) > 40);
  auto const untitled = lv::tarp_canvas(r, size);
  CHECK(ink(untitled, y_axis, 0, size, int(std::lround(untitled.to_row(1))) - 2) == 0);
  CHECK_THROWS_AS(lv::tarp_canvas(lv::TarpResult{}), std::invalid_argument);
}

TEST_CASE("TARP: bad inputs") {
  CHECK_THROWS_AS(lv::tarp({1}, {0, 1, 2}, 1, 2, 1), std::invalid_argument);
  CHECK_THROWS_AS(lv::tarp({1}, {0, std::nan("")}, 1, 2, 1), std::invalid_argument);
  CHECK_THROWS_AS(lv::tarp({1}, {0, 1}, 1, 2, 1, {}, {1, 2}), std::invalid_argument);
  lv::TarpOptions o;
  o.num_alpha = 1;
  CHECK_THROWS_AS(lv::tarp({1}, {0, 1}, 1, 2, 1, o), std::invalid_argument);
}
