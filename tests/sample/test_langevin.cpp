// Langevin samplers: MALA (adapted step) on a 100-dimensional correlated
// Gaussian with exact moments; the ULA stationary variance for Gaussian
// targets, 1 / (lambda (1 - h lambda / 2)), at four step sizes (bias shrinking
// linearly in h); annealed Langevin with an analytic score against the
// exact moment recursion, on every backend in float and double; bad inputs.
// Tolerances: 4.5 Monte Carlo standard errors (from ESS or independence).

#include <lensing/sample/diagnostics.hpp>
#include <lensing/sample/langevin.hpp>

#include "gaussian_targets.hpp"

#include <lensing_test.hpp>

#include <cmath>
#include <vector>

namespace dg = lensing::diagnostics;

namespace {
// Zero-mean AR(1) Gaussian, Sigma_ij = rho^|i-j| (tridiagonal precision).
struct Ar1 {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int n = 100;
  double rho = 0.8;
  int dimension() const { return n; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    double const c = 1 / (1 - rho * rho);
    double lp = 0;
    for (int i = 0; i < n; ++i) {
      double const diag = (i == 0 || i == n - 1) ? c : (1 + rho * rho) * c;
      double pq = diag * q(i);
      if (i > 0) pq -= rho * c * q(i - 1);
      if (i < n - 1) pq -= rho * c * q(i + 1);
      g(i) = -pq;
      lp -= 0.5 * q(i) * pq;
    }
    return lp;
  }
};

using Independent = lensing::test::IndependentGaussian;

struct NanDensity {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  bool everywhere = false;
  int dimension() const { return 1; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    g(0) = -q(0);
    if (everywhere || q(0) > 1) return std::nan("");
    return -0.5 * q(0) * q(0);
  }
};

// Column j of (chain, draw, k) values.
std::vector<double> column(std::vector<double> const& v, int dim, int j) {
  std::vector<double> x(v.size() / dim);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = v[i * dim + j];
  return x;
}

int count_mean_failures(std::vector<double> const& values, int m, int n, int dim, std::vector<double> const& truth,
                        double k = 4.5, bool verbose = true) {
  int bad = 0;
  for (int j = 0; j < dim; ++j) {
    auto const x = column(values, dim, j);
    double mean = 0;
    for (double xi : x)
      mean += xi;
    mean /= double(x.size());
    double const mcse = dg::mcse_mean(x, m, n);
    if (!(std::fabs(mean - truth[j]) <= k * mcse)) {
      ++bad;
      if (verbose) MESSAGE("column " << j << ": mean " << mean << " truth " << truth[j] << " mcse " << mcse);
    }
  }
  return bad;
}
}  // namespace

TEST_CASE("MALA: 100-d correlated Gaussian, exact means and variances; adapted acceptance") {
  int const d = 100;
  lensing::LangevinOptions opt;
  opt.num_chains = 4;
  opt.num_warmup = 3000;
  opt.num_draws = 10000;
  opt.thin = 10;
  opt.seed = 42;
  auto const r = lensing::langevin(Kokkos::DefaultHostExecutionSpace(), Ar1{}, opt);
  int const m = r.num_chains, n = r.num_draws;
  auto const sq = lensing::map_draws(r, d, [&](double const* u, double* x) {
    for (int i = 0; i < d; ++i)
      x[i] = u[i] * u[i];
  });
  CHECK(count_mean_failures(r.draws, m, n, d, std::vector<double>(d, 0.0)) == 0);
  CHECK(count_mean_failures(sq, m, n, d, std::vector<double>(d, 1.0)) == 0);
  double worst_rhat = 0, min_ess = 1e300;
  for (int k = 0; k < d; ++k) {
    auto const x = r.parameter(k);
    worst_rhat = std::max(worst_rhat, dg::rhat(x, m, n));
    min_ess = std::min(min_ess, dg::ess_bulk(x, m, n));
  }
  CHECK(worst_rhat < 1.01);
  // Dual averaging reaches the target: the post-warm-up acceptance has a
  // standard error of ~ 0.5 / sqrt(ESS of the acceptance indicator); 0.05 is > 4 of those.
  CHECK(r.mean_accept_stat() == doctest::Approx(0.574).epsilon(0.1));
  CHECK(r.divergences() == 0);
  MESSAGE("MALA 100-d: step " << r.final_step_size[0] << ", accept " << r.mean_accept_stat() << ", ESS_bulk min "
                              << min_ess << ", gradients " << r.sampling_gradient_evaluations << ", ESS/grad "
                              << min_ess / double(r.sampling_gradient_evaluations) << ", " << r.seconds << " s");
}

TEST_CASE("ULA: stationary variance 1 / (lambda (1 - h lambda / 2)); bias O(h)") {
  Independent const target{{0.5, 1.0, 2.0}};
  int const d = 3;
  double prev_bias = HUGE_VAL;
  for (double h : {0.4, 0.2, 0.1, 0.05}) {
    lensing::LangevinOptions opt;
    opt.algorithm = lensing::LangevinAlgorithm::ula;
    opt.step_size = h;
    opt.num_chains = 4;
    opt.num_warmup = 2000;
    opt.num_draws = 10000;
    opt.thin = 2;
    opt.seed = 5;
    auto const r = lensing::langevin(Kokkos::DefaultHostExecutionSpace(), target, opt);
    auto const sq = lensing::map_draws(r, d, [&](double const* u, double* x) {
      for (int i = 0; i < d; ++i)
        x[i] = u[i] * u[i];
    });
    std::vector<double> theory(d), truth(d);
    for (int i = 0; i < d; ++i) {
      double const lambda = 1 / (target.sd[i] * target.sd[i]);
      theory[i] = 1 / (lambda * (1 - h * lambda / 2));
      truth[i] = target.sd[i] * target.sd[i];
    }
    CHECK(count_mean_failures(sq, r.num_chains, r.num_draws, d, theory) == 0);
    CHECK(r.mean_accept_stat() == 1.0);
    // At h = 0.4 the bias of the sd = 0.5 coordinate (var 0.25 -> 1.25) is
    // hundreds of MCSEs: the test distinguishes ULA from an exact sampler.
    if (h == 0.4) CHECK(count_mean_failures(sq, r.num_chains, r.num_draws, d, truth, 4.5, false) > 0);
    // Relative bias (h lambda / 2) / (1 - h lambda / 2) of the first coordinate, shrinking with h.
    double const bias = theory[0] / truth[0] - 1;
    CHECK(bias < prev_bias);
    prev_bias = bias;
  }
}

LENSING_TEST_CASE_TEMPLATE("annealed Langevin with an analytic score: exact moment recursion", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using Scalar = typename Config::scalar;
  // Data N(mu, s^2 I); smoothed by N(0, sigma^2): score -(x - mu) / (s^2 + sigma^2).
  double const mu = 1.5, s2 = 0.25;
  int const n = 4000, d = 2;
  lensing::AnnealedLangevinOptions opt;
  for (int i = 0; i < 6; ++i)
    opt.sigmas.push_back(5 * std::pow(0.02, i / 5.0));  // 5 ... 0.1
  // alpha_1 / V_1 ~ epsilon / sigma_L^2 = 1 (stable: < 2); 50 steps per level.
  opt.steps_per_level = 50;
  opt.epsilon = 0.01;
  opt.seed = 9;
  lensing::AnnealedLangevin<Scalar, Mem> sampler(n, d, opt);
  lensing::View2D<Scalar, Mem> x("x", n, d);
  auto xh = Kokkos::create_mirror_view(x);
  lensing::Rng rng(1);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j)
      xh(i, j) = Scalar(opt.sigmas[0] * rng.normal());  // x ~ N(0, sigma_1^2)
  Kokkos::deep_copy(x, xh);
  auto score = [mu, s2](Space const& space, Scalar sigma, lensing::View2D<Scalar, Mem> const& xs,
                        lensing::View2D<Scalar, Mem> const& s) {
    Scalar const m = Scalar(mu), v = Scalar(s2) + sigma * sigma;
    Kokkos::parallel_for(
        "lensing::test::gaussian_score",
        Kokkos::MDRangePolicy<Space, Kokkos::Rank<2>>(space, {0, 0}, {int(xs.extent(0)), int(xs.extent(1))}),
        KOKKOS_LAMBDA(int i, int j) { s(i, j) = -(xs(i, j) - m) / v; });
  };
  sampler.run(Space(), score, x);
  Kokkos::deep_copy(xh, x);
  // Moments of every coordinate follow the linear recursion exactly:
  //   m <- m + alpha (mu - m) / V,  v <- (1 - alpha / V)^2 v + 2 alpha.
  double em = 0, ev = opt.sigmas[0] * opt.sigmas[0];
  for (std::size_t l = 0; l < opt.sigmas.size(); ++l) {
    double const V = s2 + opt.sigmas[l] * opt.sigmas[l], a = sampler.step_size(int(l));
    for (int t = 0; t < opt.steps_per_level; ++t) {
      em += a * (mu - em) / V;
      ev = (1 - a / V) * (1 - a / V) * ev + 2 * a;
    }
  }
  for (int j = 0; j < d; ++j) {
    double mean = 0, var = 0;
    for (int i = 0; i < n; ++i)
      mean += xh(i, j);
    mean /= n;
    for (int i = 0; i < n; ++i)
      var += (xh(i, j) - mean) * (xh(i, j) - mean);
    var /= n - 1;
    // Independent samples: SE(mean) = sqrt(v / n), SE(var) = v sqrt(2 / (n - 1)).
    CHECK(std::fabs(mean - em) <= 4.5 * std::sqrt(ev / n));
    CHECK(std::fabs(var - ev) <= 4.5 * ev * std::sqrt(2.0 / (n - 1)));
  }
  // The recursion ends near the ULA stationary variance of the last level,
  // V_L / (1 - alpha_L / (2 V_L)): what is left of the previous level's
  // variance (~5% away) decays by (1 - alpha_L / V_L)^(2 T) ~ 0.02.
  double const VL = s2 + opt.sigmas.back() * opt.sigmas.back(), aL = sampler.step_size(int(opt.sigmas.size()) - 1);
  CHECK(ev == doctest::Approx(VL / (1 - aL / (2 * VL))).epsilon(0.01));
}

TEST_CASE("Langevin: bad inputs, NaN regions, thread independence") {
  auto const space = Kokkos::DefaultHostExecutionSpace();
  lensing::LangevinOptions opt;
  opt.num_chains = 3;
  opt.num_warmup = 200;
  opt.num_draws = 500;
  // NaN for q > 1: proposals there are rejected and counted as divergent.
  auto const r = lensing::langevin(space, NanDensity{}, opt);
  double maxq = -1e300;
  for (double v : r.draws)
    maxq = std::max(maxq, v);
  CHECK(maxq <= 1);
  CHECK(r.divergences() + r.warmup_divergences > 0);
  CHECK_THROWS_AS(lensing::langevin(space, NanDensity{true}, opt), std::runtime_error);
  auto bad = opt;
  bad.step_size = 0;
  CHECK_THROWS_AS(lensing::langevin(space, Ar1{}, bad), std::invalid_argument);
  bad = opt;
  bad.init = {1.0, 2.0};
  CHECK_THROWS_AS(lensing::langevin(space, Ar1{}, bad), std::invalid_argument);
  bad = opt;
  bad.thin = 0;
  CHECK_THROWS_AS(lensing::langevin(space, Ar1{}, bad), std::invalid_argument);
  CHECK_THROWS_AS(lensing::langevin(space, Independent{}, opt), std::invalid_argument);  // dimension 0
  opt.threads = 1;
  auto const a = lensing::langevin(space, Ar1{10}, opt);
  opt.threads = 3;
  auto const b = lensing::langevin(space, Ar1{10}, opt);
  CHECK(a.draws == b.draws);
  lensing::AnnealedLangevinOptions ao;
  CHECK_THROWS_AS((lensing::AnnealedLangevin<double, Kokkos::HostSpace>(10, 2, ao)), std::invalid_argument);
  ao.sigmas = {1.0, 2.0};
  CHECK_THROWS_AS((lensing::AnnealedLangevin<double, Kokkos::HostSpace>(10, 2, ao)), std::invalid_argument);
  ao.sigmas = {2.0, 1.0};
  lensing::AnnealedLangevin<double, Kokkos::HostSpace> al(10, 2, ao);
  lensing::View2D<double, Kokkos::HostSpace> wrong("wrong", 10, 3);
  auto noop = [](auto const&, double, auto const&, auto const&) {};
  CHECK_THROWS_AS(al.run(Kokkos::DefaultHostExecutionSpace(), noop, wrong), std::invalid_argument);
}
