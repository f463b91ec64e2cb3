// SBC on a conjugate normal model: ranks uniform (chi-square p-value above
// 0.1% for each parameter) for an exact posterior sampler and for NUTS (this
// library's sampler), clearly non-uniform for a biased and for an
// over-dispersed sampler; hand-computed ranks; PNG plot; bad inputs.

#include <lensing/sample/sampler.hpp>
#include <lensing/validate/sbc.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

namespace lv = lensing::validate;

namespace {
// theta_k ~ N(0, 1), y_k ~ N(theta_k, s^2): posterior N(y / (1 + s^2), s^2 / (1 + s^2)).
constexpr double s2 = 0.25;

// Posterior of the model above for one y (P = 1), as a LogDensity for NUTS.
struct Conjugate {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  double y;
  int dimension() const { return 1; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    g(0) = -q(0) + (y - q(0)) / s2;
    return -0.5 * q(0) * q(0) - 0.5 * (y - q(0)) * (y - q(0)) / s2;
  }
};

// Runs SBC with draws from N(shift + y / (1 + s^2), (scale^2) s^2 / (1 + s^2)).
lv::SbcResult run(int N, int L, int P, double shift, double scale, std::uint64_t seed) {
  lensing::Rng rng(seed);
  std::vector<double> truths(std::size_t(N) * P), draws(std::size_t(N) * L * P);
  double const post_sd = std::sqrt(s2 / (1 + s2));
  for (int i = 0; i < N; ++i)
    for (int k = 0; k < P; ++k) {
      double const th = rng.normal(), y = th + std::sqrt(s2) * rng.normal();
      truths[std::size_t(i) * P + k] = th;
      for (int l = 0; l < L; ++l)
        draws[(std::size_t(i) * L + l) * P + k] = shift + y / (1 + s2) + scale * post_sd * rng.normal();
    }
  return lv::sbc_ranks(truths, draws, N, L, P, 20);
}
}  // namespace

TEST_CASE("SBC: exact posterior sampler gives uniform ranks; biased ones do not") {
  auto const exact = run(2000, 99, 3, 0.0, 1.0, 1);
  for (int k = 0; k < 3; ++k) {
    MESSAGE("exact: parameter " << k << " chi2 " << exact.chi2[k] << " p " << exact.p_value[k]);
    CHECK(exact.p_value[k] > 1e-3);
  }
  int total = 0;
  for (int v : exact.histogram)
    total += v;
  CHECK(total == 2000 * 3);
  // Shifted by half a posterior sd; over-dispersed by a factor 1.5.
  auto const biased = run(2000, 99, 1, 0.5 * std::sqrt(s2 / (1 + s2)), 1.0, 2);
  auto const wide = run(2000, 99, 1, 0.0, 1.5, 3);
  MESSAGE("biased chi2 " << biased.chi2[0] << ", over-dispersed chi2 " << wide.chi2[0]);
  CHECK(biased.p_value[0] < 1e-10);
  CHECK(wide.p_value[0] < 1e-10);
  std::string const path = "test_validate_sbc.png";
  lv::plot_sbc(path, exact);
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  CHECK(f.good());
  CHECK(f.tellg() > 100);
  std::remove(path.c_str());
  CHECK_THROWS_AS(lv::plot_sbc("/nonexistent/dir/x.png", exact), std::runtime_error);
}

TEST_CASE("SBC: the plot labels each panel above and the rank range below") {
  auto const r = run(200, 99, 2, 0.0, 1.0, 4);
  int const w = 240, h = 200;
  // Black pixels (text) in the rows [r0, r1) across the canvas.
  auto ink = [&](lensing::io::Canvas const& c, int r0, int r1) {
    int n = 0;
    for (int row = r0; row < r1; ++row)
      for (int col = 0; col < c.width(); ++col) {
        auto const p = c.get(col, row);
        n += (p.r == 0 && p.g == 0 && p.b == 0) ? 1 : 0;
      }
    return n;
  };
  auto const c = lv::sbc_canvas(r, w, h, {"alpha", "beta"});
  CHECK(c.width() == 2 * w);
  // "alpha  p = ..." and "beta  p = ..." above (~15 black pixels a glyph),
  // "rank 0" and "99" under each panel; the histograms stay between.
  CHECK(ink(c, 0, 12) > 200);
  CHECK(ink(c, h - 10, h) > 100);
  auto const unnamed = lv::sbc_canvas(r, w, h);
  CHECK(ink(unnamed, 0, 12) > 200);
  CHECK_THROWS_AS(lv::sbc_canvas(r, w, h, {"only one"}), std::invalid_argument);
}

TEST_CASE("SBC: NUTS on the conjugate model has uniform ranks") {
  int const N = 300, L = 39, thin = 5;
  lensing::Rng rng(77);
  std::vector<double> truths(N), draws(std::size_t(N) * L);
  lensing::SamplerOptions opt;
  opt.num_chains = 1;
  opt.num_warmup = 150;
  opt.num_draws = L * thin;
  for (int i = 0; i < N; ++i) {
    double const th = rng.normal(), y = th + std::sqrt(s2) * rng.normal();
    truths[i] = th;
    opt.seed = 1000 + i;
    auto const r = lensing::sample(Kokkos::DefaultHostExecutionSpace(), Conjugate{y}, opt);
    for (int l = 0; l < L; ++l)
      draws[std::size_t(i) * L + l] = r.draws[std::size_t(l) * thin];  // thinned: nearly independent
  }
  auto const res = lv::sbc_ranks(truths, draws, N, L, 1, 10);
  MESSAGE("NUTS SBC: chi2 " << res.chi2[0] << " (9 dof), p " << res.p_value[0]);
  CHECK(res.p_value[0] > 1e-3);
}

TEST_CASE("SBC: hand-computed ranks and bad inputs") {
  // Two simulations, L = 3, one parameter: truths 0.5 and -1;
  // draws {0, 1, 0.2} -> rank 2, {-2, -0.5, 3} -> rank 1.  Bins of 2 ranks: {0,1}, {2,3}.
  auto const r = lv::sbc_ranks({0.5, -1}, {0, 1, 0.2, -2, -0.5, 3}, 2, 3, 1, 2);
  CHECK(r.ranks[0] == 2);
  CHECK(r.ranks[1] == 1);
  CHECK(r.histogram[0] == 1);
  CHECK(r.histogram[1] == 1);
  CHECK(r.chi2[0] == 0.0);
  CHECK_THROWS_AS(lv::sbc_ranks({0.5, -1}, {0, 1, 0.2, -2, -0.5, 3}, 2, 3, 1, 3), std::invalid_argument);
  CHECK_THROWS_AS(lv::sbc_ranks({0.5}, {0, 1, 0.2, -2, -0.5, 3}, 2, 3, 1, 2), std::invalid_argument);
  CHECK_THROWS_AS(lv::sbc_ranks({0.5, std::nan("")}, {0, 1, 0.2, -2, -0.5, 3}, 2, 3, 1, 2), std::invalid_argument);
}
