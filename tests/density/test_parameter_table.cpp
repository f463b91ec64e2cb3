// Parameter tables (density/parameter_table.hpp) and the priors the
// training-set generator draws: moments within sampling error,
// Kolmogorov-Smirnov distance to the analytic CDF, normalised log-densities,
// determinism (bit-identical draws, chunking, Serial vs OpenMP), tied
// parameters, host rows, bad inputs.  Every family's own checks are in
// test_prior.cpp.
#include <lensing/density/parameter_table.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <vector>

using lensing::ParameterTable;
using P = lensing::Prior<double>;

namespace {
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// Analytic CDFs of the test priors.
std::function<double(double)> cdf_of(P const& p) {
  switch (p.kind) {
    case lensing::PriorKind::uniform:
      return [p](double x) { return (x - p.lo) / (p.hi - p.lo); };
    case lensing::PriorKind::normal:
      return [p](double x) { return normal_cdf((x - p.p0) / p.p1); };
    case lensing::PriorKind::log_uniform:
      return [p](double x) { return std::log(x / p.lo) / std::log(p.hi / p.lo); };
    default:
      return [p](double x) {
        double const a = normal_cdf((p.lo - p.p0) / p.p1), b = normal_cdf((p.hi - p.p0) / p.p1);
        return (normal_cdf((x - p.p0) / p.p1) - a) / (b - a);
      };
  }
}
}  // namespace

// The normal quantile the truncated normal uses is tested in tests/core/test_special.cpp.

LENSING_TEST_CASE_TEMPLATE("prior draws: moments, KS distance, determinism", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  using Pr = lensing::Prior<Scalar>;
  ParameterTable<Scalar, Mem> table({{"theta_E", Pr::uniform(0.5, 2.0)},
                                     {"gamma", Pr::normal(2.0, 0.1)},
                                     {"R_sersic", Pr::log_uniform(0.05, 3.0)},
                                     {"q", Pr::truncated_normal(0.8, 0.2, 0.2, 1.0)},
                                     {"tail", Pr::truncated_normal(0.0, 1.0, 3.0, HUGE_VAL)},
                                     {"one_sided", Pr::truncated_normal(1.0, 2.0, -HUGE_VAL, 0.0)},
                                     {"z_lens", Pr::fixed(0.5)}});
  int const n = 20000, k = table.size();
  lensing::View2D<Scalar, Mem> draws("draws", n, k);
  Space space;
  table.sample(space, draws, 2024);
  space.fence();
  auto const h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), draws);
  for (int j = 0; j < k; ++j) {
    auto const& pr = table.prior(j);
    std::vector<double> x(n);
    for (int i = 0; i < n; ++i)
      x[i] = double(h(i, j));
    double mean = 0;
    for (double v : x)
      mean += v;
    mean /= n;
    double var = 0, m4 = 0;
    for (double v : x) {
      var += (v - mean) * (v - mean);
      m4 += std::pow(v - mean, 4);
    }
    var /= (n - 1);
    m4 /= n;
    INFO(table.names()[j] << ": mean " << mean << " vs " << pr.mean() << ", var " << var << " vs " << pr.variance());
    double const lo = *std::min_element(x.begin(), x.end()), hi = *std::max_element(x.begin(), x.end());
    CHECK(lo >= double(Scalar(pr.lo)));
    CHECK(hi <= double(Scalar(pr.hi)));
    if (pr.kind == lensing::PriorKind::fixed) {
      CHECK(lo == double(Scalar(0.5)));
      CHECK(hi == double(Scalar(0.5)));
      continue;
    }
    // 5 standard errors: sqrt(var / n) for the mean, sqrt((mu4 - var^2) / n) for the variance.
    CHECK(std::fabs(mean - pr.mean()) < 5 * std::sqrt(pr.variance() / n));
    CHECK(std::fabs(var - pr.variance()) < 5 * std::sqrt((m4 - var * var) / n));
    // Kolmogorov-Smirnov: P(sqrt(n) D > 1.95) = 0.001.
    std::sort(x.begin(), x.end());
    auto const F =
        cdf_of(P(pr.kind == lensing::PriorKind::uniform       ? P::uniform(pr.lo, pr.hi)
                 : pr.kind == lensing::PriorKind::normal      ? P::normal(pr.p0, pr.p1)
                 : pr.kind == lensing::PriorKind::log_uniform ? P::log_uniform(pr.lo, pr.hi)
                                                              : P::truncated_normal(pr.p0, pr.p1, pr.lo, pr.hi)));
    double D = 0;
    for (int i = 0; i < n; ++i) {
      double const f = F(x[i]);
      D = std::max({D, std::fabs(f - double(i) / n), std::fabs(f - double(i + 1) / n)});
    }
    // Float rounding of the draws shifts the CDF by < 1e-6.
    CHECK(std::sqrt(double(n)) * D < 1.95);
  }
  // Determinism: again, in chunks, and on Serial.
  lensing::View2D<Scalar, Mem> again("again", n, k), tail("tail", n - 100, k);
  table.sample(space, again, 2024);
  table.sample(space, tail, 2024, 100);
  space.fence();
  auto const ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), again);
  auto const ht = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), tail);
  long differ = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < k; ++j) {
      differ += ha(i, j) != h(i, j);
      if (i >= 100) differ += ht(i - 100, j) != h(i, j);
    }
  CHECK(differ == 0);
#if defined(KOKKOS_ENABLE_SERIAL)
  ParameterTable<Scalar, Kokkos::HostSpace> host_table({{"theta_E", Pr::uniform(0.5, 2.0)},
                                                        {"gamma", Pr::normal(2.0, 0.1)},
                                                        {"R_sersic", Pr::log_uniform(0.05, 3.0)},
                                                        {"q", Pr::truncated_normal(0.8, 0.2, 0.2, 1.0)}});
  lensing::View2D<Scalar, Kokkos::HostSpace> serial("serial", 500, 4);
  host_table.sample(Kokkos::Serial(), serial, 2024);
  long differ_serial = 0;
  for (int i = 0; i < 500; ++i)
    for (int j = 0; j < 4; ++j)
      differ_serial += serial(i, j) != h(i, j);
  CHECK(differ_serial == 0);
#endif
}

TEST_CASE("prior log-densities are normalised and match the closed forms") {
  std::vector<P> const priors = {P::uniform(-1, 3),
                                 P::normal(0.3, 0.7),
                                 P::log_uniform(0.1, 10),
                                 P::truncated_normal(0.8, 0.2, 0.2, 1.0),
                                 P::truncated_normal(0, 1, 4, 9),
                                 P::truncated_normal(1, 2, -HUGE_VAL, 0)};
  for (auto const& p : priors) {
    // Midpoint rule on the support (normal: +-12 sigma), 2e5 cells.
    double const a = std::isfinite(p.lo) ? p.lo : p.p0 - 12 * p.p1;
    double const b = std::isfinite(p.hi) ? p.hi : p.p0 + 12 * p.p1;
    int const m = 200000;
    double sum = 0;
    for (int i = 0; i < m; ++i)
      sum += std::exp(p.log_density(a + (i + 0.5) * (b - a) / m));
    sum *= (b - a) / m;
    INFO("kind " << int(p.kind) << " integral " << sum);
    CHECK(sum == doctest::Approx(1).epsilon(1e-6));
  }
  CHECK(P::normal(0.3, 0.7).log_density(1.0) ==
        doctest::Approx(-0.5 * 1.0 - std::log(0.7) - 0.5 * std::log(2 * M_PI)).epsilon(1e-14));
  CHECK(P::log_uniform(0.1, 10).log_density(2.0) == doctest::Approx(-std::log(2.0 * std::log(100.0))).epsilon(1e-14));
  CHECK(P::uniform(-1, 3).log_density(3.5) == -HUGE_VAL);
  CHECK(P::truncated_normal(0, 1, 4, 9).log_density(3.9) == -HUGE_VAL);
  CHECK(P::fixed(2).log_density(2) == 0);
}

LENSING_TEST_CASE_TEMPLATE("parameter table log_density and bad inputs", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  ParameterTable<double, Mem> table;
  table.add("a", P::uniform(0, 2)).add("b", P::normal(1, 2));
  lensing::View2D<double, Mem> params("params", 2, 2);
  lensing::View1D<double, Mem> logp("logp", 2);
  auto h = Kokkos::create_mirror_view(params);
  h(0, 0) = 1;
  h(0, 1) = 3;
  h(1, 0) = 5;
  h(1, 1) = 0;
  Kokkos::deep_copy(params, h);
  table.log_density(space, params, logp);
  space.fence();
  auto const hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), logp);
  CHECK(hl(0) == doctest::Approx(-std::log(2.0) - 0.5 - std::log(2.0) - 0.5 * std::log(2 * M_PI)).epsilon(1e-14));
  CHECK(hl(1) == -HUGE_VAL);
  CHECK(table.index("b") == 1);
  CHECK_THROWS_AS(table.index("c"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(table.add("a", P::fixed(1)), doctest::Contains("duplicate parameter name 'a'"),
                       std::invalid_argument);
  lensing::View2D<double, Mem> wrong("wrong", 4, 3);
  CHECK_THROWS_WITH_AS(table.sample(space, wrong, 1), doctest::Contains("extent(1) = num_params = 2"),
                       std::invalid_argument);
  ParameterTable<double, Mem> empty;
  lensing::View2D<double, Mem> none("none", 4, 0);
  CHECK_THROWS_WITH_AS(empty.sample(space, none, 1), doctest::Contains("empty"), std::invalid_argument);
  double const nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(P::uniform(1, 1), std::invalid_argument);
  CHECK_THROWS_AS(P::uniform(nan, 1), std::invalid_argument);
  CHECK_THROWS_AS(P::normal(0, 0), std::invalid_argument);
  CHECK_THROWS_AS(P::normal(nan, 1), std::invalid_argument);
  CHECK_THROWS_AS(P::log_uniform(0, 1), std::invalid_argument);
  CHECK_THROWS_AS(P::log_uniform(2, 1), std::invalid_argument);
  CHECK_THROWS_AS(P::truncated_normal(0, 1, 1, 0), std::invalid_argument);
  CHECK_THROWS_AS(P::truncated_normal(0, 1, nan, 1), std::invalid_argument);
  CHECK_THROWS_WITH_AS(P::truncated_normal(0, 1, 50, 60), doctest::Contains("carries no probability"),
                       std::invalid_argument);
  CHECK_THROWS_AS(P::fixed(HUGE_VAL), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("tied parameters: scale * source + offset, no density, own streams untouched", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  using Pr = lensing::Prior<Scalar>;
  Space space;
  std::vector<std::pair<std::string, Pr>> const entries = {{"center_x", Pr::normal(0, 0.1)},
                                                           {"center_y", Pr::normal(0, 0.1)},
                                                           {"theta_E", Pr::uniform(0.5, 2.0)},
                                                           {"light_y", Pr::uniform(-1, 1)},
                                                           {"lens_n", Pr::gamma(4, 2)}};
  ParameterTable<Scalar, Mem> plain(entries), tied(entries);
  // Appended ("light_x") and in place ("light_y" loses its own prior).
  tied.tie("light_x", "center_x").tie("light_y", "center_y", -2, 0.25);
  REQUIRE(tied.size() == 6);
  CHECK(tied.index("light_x") == 5);
  CHECK(tied.index("light_y") == 3);
  CHECK(tied.is_tied(3));
  CHECK(tied.is_tied(5));
  CHECK_FALSE(tied.is_tied(0));
  CHECK(tied.tie_of(3).source == 1);
  int const n = 3000;
  lensing::View2D<Scalar, Mem> a("a", n, 5), b("b", n, 6);
  plain.sample(space, a, 77, 5);
  tied.sample(space, b, 77, 5);
  space.fence();
  auto const ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
  auto const hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
  long bad_free = 0, bad_tied = 0;
  for (int i = 0; i < n; ++i) {
    for (int j : {0, 1, 2, 4})
      bad_free += ha(i, j) != hb(i, j);  // the same streams, so the same bits
    // The tie is evaluated in double from the Scalar source, then rounded.
    bad_tied += hb(i, 5) != Scalar(1.0 * double(hb(i, 0)) + 0.0);
    bad_tied += hb(i, 3) != Scalar(-2.0 * double(hb(i, 1)) + 0.25);
  }
  CHECK(bad_free == 0);
  CHECK(bad_tied == 0);

  // A copy in host memory (names, priors, ties, column order) draws the same bits.
  ParameterTable<Scalar, Kokkos::HostSpace> const host_copy(tied);
  CHECK(host_copy.names() == tied.names());
  CHECK(host_copy.is_tied(3));
  CHECK(host_copy.tie_of(3).scale == -2.0);
  lensing::View2D<Scalar, Kokkos::HostSpace> hc("hc", n, 6);
  host_copy.sample(Kokkos::DefaultHostExecutionSpace(), hc, 77, 5);
  Kokkos::DefaultHostExecutionSpace().fence();
  long bad_copy = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < 6; ++j)
      bad_copy += hc(i, j) != hb(i, j);
  CHECK(bad_copy == 0);

  // Batch log-density: the tied columns contribute nothing (light_y = 0.25 -
  // 2 * center_y lies outside its former uniform(-1, 1) for |center_y| > 0.625
  // and still counts 0).
  lensing::View1D<double, Mem> logp("logp", n);
  tied.log_density(space, b, logp);
  space.fence();
  auto const hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), logp);
  long bad_logp = 0;
  for (int i = 0; i < n; ++i) {
    std::vector<double> row(6), grad;
    for (int j = 0; j < 6; ++j)
      row[j] = double(hb(i, j));
    double expect = 0;
    for (int j : {0, 1, 2, 4})
      expect += tied.prior(j).log_density(row[j]);
    // Sums of the same double terms in the same order: equal to rounding.
    bad_logp += !lensing::test::close(hl(i), expect, 1e-14, 1e-14);
    bad_logp += !lensing::test::close(tied.log_density(row), expect, 1e-14, 1e-14);
    bad_logp += !lensing::test::close(tied.log_density_and_gradient(row, grad), expect, 1e-14, 1e-14);
    bad_logp += grad[3] != 0 || grad[5] != 0 || grad[0] != tied.prior(0).gradient(row[0]) ||
                grad[4] != tied.prior(4).gradient(row[4]);
  }
  CHECK(bad_logp == 0);

  // Host rows: resolve_ties and the chain rule through the ties.
  std::vector<double> row = {0.1, -0.2, 1.0, 99, 2.0, 99};
  tied.resolve_ties(row.data());
  CHECK(row[5] == 0.1);
  CHECK(row[3] == -2 * -0.2 + 0.25);
  std::vector<double> g = {1, 2, 3, 4, 5, 6};
  tied.pullback_ties(g.data());
  CHECK(g == std::vector<double>{1 + 6, 2 - 2 * 4, 3, 0, 5, 0});
}

TEST_CASE("parameter table: unknown names, bad ties and tied priors throw, naming the parameters") {
  ParameterTable<double, Kokkos::HostSpace> table({{"theta_E", P::uniform(0.5, 2)}, {"center_x", P::normal(0, 1)}});
  CHECK(table.find("nope") == -1);
  std::string const msg = lensing::test::error_message([&] { table.index("thetaE"); });
  CHECK(msg.find("lensing::ParameterTable::index") != std::string::npos);
  CHECK(msg.find("'thetaE'") != std::string::npos);
  CHECK(msg.find("theta_E, center_x") != std::string::npos);
  CHECK_THROWS_AS(table.index("thetaE"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(table.tie("light_x", "centre_x"), doctest::Contains("unknown parameter 'centre_x'"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(table.tie("center_x", "center_x"), doctest::Contains("to itself"), std::invalid_argument);
  CHECK_THROWS_AS(table.tie("light_x", "center_x", HUGE_VAL), std::invalid_argument);
  table.tie("light_x", "center_x");
  // A tie to a tied parameter, and tying away a parameter others are tied to.
  CHECK_THROWS_WITH_AS(table.tie("light_y", "light_x"), doctest::Contains("itself tied to 'center_x'"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(table.tie("center_x", "theta_E"), doctest::Contains("'light_x' is tied to it"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(table.prior(2), doctest::Contains("'light_x' is tied to 'center_x'"), std::invalid_argument);
  CHECK_THROWS_AS(table.prior(3), std::out_of_range);
  CHECK(table.size() == 3);
  std::vector<double> grad;
  CHECK_THROWS_WITH_AS(table.log_density_and_gradient(std::vector<double>{1, 2}, grad),
                       doctest::Contains("num_params = 3"), std::invalid_argument);
}
