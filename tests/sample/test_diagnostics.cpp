// Diagnostics: hand-computed R-hat, the inverse normal CDF, ESS of iid and
// AR(1) chains against theory, rank-normalised R-hat detecting a scale
// difference that classic split R-hat misses, E-BFMI, summary table.

#include <lensing/core/random.hpp>
#include <lensing/sample/diagnostics.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <sstream>
#include <vector>

namespace dg = lensing::diagnostics;

TEST_CASE("split R-hat of a hand-computable case") {
  // Chains [1 2 3 4] and [5 6 7 8] split into [1 2] [3 4] [5 6] [7 8]:
  // W = 1/2, B = n/(m-1) sum (mean_j - 4.5)^2 = 2/3 * 20, var+ = W/2 + B/2.
  std::vector<double> const x = {1, 2, 3, 4, 5, 6, 7, 8};
  double const w = 0.5, b = 2.0 / 3.0 * 20.0;
  CHECK(dg::split_rhat(x, 2, 4) == doctest::Approx(std::sqrt((0.5 * w + 0.5 * b) / w)).epsilon(1e-14));
  // Constant draws: R-hat 1, ESS = number of draws, no NaN.
  std::vector<double> const c(40, 3.0);
  CHECK(dg::rhat(c, 2, 20) == 1.0);
  CHECK(dg::ess_bulk(c, 2, 20) > 0);
  CHECK(dg::ess_mean(c, 2, 20) == 40.0);
  CHECK_THROWS_AS(dg::rhat(x, 3, 4), std::invalid_argument);
  CHECK_THROWS_AS(dg::rhat(std::vector<double>{1, 2, 3}, 1, 3), std::invalid_argument);
  std::vector<double> bad = x;
  bad[3] = std::nan("");
  CHECK_THROWS_AS(dg::ess_bulk(bad, 2, 4), std::invalid_argument);
}

TEST_CASE("inverse normal CDF") {
  CHECK(dg::detail::inv_phi(0.5) == doctest::Approx(0).epsilon(1e-15));
  CHECK(dg::detail::inv_phi(0.975) == doctest::Approx(1.959963984540054).epsilon(1e-13));
  CHECK(dg::detail::inv_phi(1e-6) == doctest::Approx(-4.753424308822899).epsilon(1e-12));
  CHECK(dg::detail::inv_phi(0.99) == doctest::Approx(2.326347874040841).epsilon(1e-13));
}

namespace {
// m chains of n AR(1) draws x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t (stationary N(0, scale^2)).
std::vector<double> ar1(int m, int n, double phi, std::uint64_t seed, std::vector<double> const& scale = {}) {
  std::vector<double> x(std::size_t(m) * n);
  for (int c = 0; c < m; ++c) {
    lensing::Rng rng(seed, c);
    double v = rng.normal();
    double const s = scale.empty() ? 1.0 : scale[c];
    for (int i = 0; i < n; ++i) {
      v = phi * v + std::sqrt(1 - phi * phi) * rng.normal();
      x[std::size_t(c) * n + i] = s * v;
    }
  }
  return x;
}
}  // namespace

TEST_CASE("ESS of iid and AR(1) chains matches theory") {
  int const m = 4, n = 4000;
  // iid: ESS = m n.  The estimator's relative sd at this size is ~3%; 15% is ~5 sd.
  auto const iid = ar1(m, n, 0.0, 11);
  CHECK(dg::ess_bulk(iid, m, n) == doctest::Approx(m * n).epsilon(0.15));
  CHECK(dg::ess_mean(iid, m, n) == doctest::Approx(m * n).epsilon(0.15));
  CHECK(dg::ess_tail(iid, m, n) == doctest::Approx(m * n).epsilon(0.2));
  CHECK(dg::mcse_mean(iid, m, n) == doctest::Approx(1 / std::sqrt(double(m * n))).epsilon(0.1));
  CHECK(dg::rhat(iid, m, n) < 1.005);
  // AR(1): tau = (1 + phi) / (1 - phi).  Relative sd of the estimate ~ 6% here.
  double const phi = 0.8;
  auto const a = ar1(m, n, phi, 12);
  double const expect = m * n * (1 - phi) / (1 + phi);
  CHECK(dg::ess_mean(a, m, n) == doctest::Approx(expect).epsilon(0.25));
  CHECK(dg::ess_bulk(a, m, n) == doctest::Approx(expect).epsilon(0.25));
  // Antithetic chains (phi < 0): ESS > number of draws, capped by the improved estimator.
  auto const anti = ar1(m, n, -0.5, 13);
  CHECK(dg::ess_mean(anti, m, n) > m * n * 1.5);
}

TEST_CASE("R-hat detects shifted chains; the folded R-hat detects a scale difference") {
  int const m = 4, n = 1000;
  auto x = ar1(m, n, 0.0, 21);
  for (int i = 0; i < n; ++i)
    x[i] += 1.0;  // chain 0 shifted by one sd
  CHECK(dg::rhat(x, m, n) > 1.05);
  CHECK(dg::split_rhat(x, m, n) > 1.05);
  auto const y = ar1(m, n, 0.0, 22, {1.0, 1.0, 1.0, 3.0});  // chain 3 three times wider, same mean
  CHECK(dg::split_rhat(y, m, n) < 1.01);
  CHECK(dg::rhat(y, m, n) > 1.05);
}

TEST_CASE("E-BFMI") {
  std::vector<double> alt(1000), iid(20000);
  for (int i = 0; i < 1000; ++i)
    alt[i] = i % 2 ? 1.0 : -1.0;
  CHECK(dg::ebfmi(alt.data(), 1000) == doctest::Approx(4.0 * 999 / 1000).epsilon(1e-12));
  lensing::Rng rng(3);
  for (auto& e : iid)
    e = rng.normal();
  // iid energies: E[(E_i - E_{i-1})^2] / Var = 2; relative sd ~ 1.5% here.
  CHECK(dg::ebfmi(iid.data(), 20000) == doctest::Approx(2.0).epsilon(0.06));
  // Random walk energies (poor energy exploration): BFMI ~ 0.
  std::vector<double> walk(20000);
  double w = 0;
  for (auto& e : walk)
    e = (w += rng.normal());
  CHECK(dg::ebfmi(walk.data(), 20000) < 0.05);
}

TEST_CASE("summary table") {
  int const m = 2, n = 500;
  auto const a = ar1(m, n, 0.3, 31), b = ar1(m, n, 0.3, 32);
  std::vector<double> v(std::size_t(m) * n * 2);
  for (std::size_t j = 0; j < a.size(); ++j) {
    v[2 * j] = a[j];
    v[2 * j + 1] = 5 + 2 * b[j];
  }
  auto const rows = dg::summarize(v, m, n, {"a", "b"});
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].mean == doctest::Approx(5).epsilon(0.05));
  CHECK(rows[1].sd == doctest::Approx(2).epsilon(0.1));
  CHECK(rows[1].q5 < rows[1].q50);
  CHECK(rows[1].q50 < rows[1].q95);
  std::ostringstream os;
  dg::print_summary(os, rows);
  CHECK(os.str().find("ess_bulk") != std::string::npos);
  CHECK(os.str().find("\nb ") != std::string::npos);
  CHECK_THROWS_AS(dg::summarize(v, m, n, {"a"}), std::invalid_argument);
}
