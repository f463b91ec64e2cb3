// HMC / NUTS on targets with exact moments: a 100-dimensional correlated
// Gaussian (NUTS, density evaluated by kernels on every backend), Neal's
// funnel in its non-centred form (static HMC), a float density; results
// independent of the thread count; bad inputs.  Tolerances: 4.5 Monte Carlo
// standard errors, from the runs' own ESS.

#include <lensing/sample/diagnostics.hpp>
#include <lensing/sample/sampler.hpp>

#include <lensing_test.hpp>

#include "funnel.hpp"

#include <cmath>
#include <sstream>
#include <vector>

namespace dg = lensing::diagnostics;

namespace {
// Zero-mean Gaussian with AR(1) covariance Sigma_ij = rho^|i-j| (unit
// variances); its precision is tridiagonal:
//   P_ii = (1 + rho^2)/(1 - rho^2) (interior), 1/(1 - rho^2) (ends), P_i,i+-1 = -rho/(1 - rho^2).
// The `Ar1Kernel` version evaluates it with a Kokkos reduction on the given
// space; `Ar1Host` with a plain host loop (re-entrant: chains run in threads).
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar ar1_term(int i, int n, Scalar rho, Scalar qm, Scalar q0, Scalar qp, Scalar& g) {
  Scalar const c = Scalar(1) / (1 - rho * rho);
  Scalar const diag = (i == 0 || i == n - 1) ? c : (1 + rho * rho) * c;
  Scalar pq = diag * q0;
  if (i > 0) pq -= rho * c * qm;
  if (i < n - 1) pq -= rho * c * qp;
  g = -pq;
  return -Scalar(0.5) * q0 * pq;
}

template <class Scalar, class Mem>
struct Ar1Kernel {
  using scalar_type = Scalar;
  using memory_space = Mem;
  static constexpr bool launches_kernels = true;  // chains run on the calling thread (log_density.hpp)
  int n;
  Scalar rho;
  int dimension() const { return n; }
  template <class Space>
  Scalar value_and_gradient(Space const& space, lensing::View1D<Scalar, Mem> const& q,
                            lensing::View1D<Scalar, Mem> const& g) const {
    int const nn = n;
    Scalar const r = rho;
    Scalar lp = 0;
    Kokkos::parallel_reduce(
        "lensing::test::ar1_gaussian", Kokkos::RangePolicy<Space>(space, 0, nn),
        KOKKOS_LAMBDA(int i, Scalar& acc) {
          Scalar const qm = i > 0 ? q(i - 1) : Scalar(0), qp = i < nn - 1 ? q(i + 1) : Scalar(0);
          acc += ar1_term(i, nn, r, qm, q(i), qp, g(i));
        },
        lp);
    return lp;
  }
};

struct Ar1Host {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int n;
  double rho;
  int dimension() const { return n; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    double lp = 0;
    for (int i = 0; i < n; ++i)
      lp += ar1_term(i, n, rho, i > 0 ? q(i - 1) : 0.0, q(i), i < n - 1 ? q(i + 1) : 0.0, g(i));
    return lp;
  }
};

using Funnel = lensing::test::NonCentredFunnel;

// A density that is NaN for q_0 > 1 and has no finite point at all when `broken`.
struct Nasty {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  bool broken = false;
  int dimension() const { return 2; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    g(0) = -q(0);
    g(1) = -q(1);
    if (broken || q(0) > 1) return std::nan("");
    return -0.5 * (q(0) * q(0) + q(1) * q(1));
  }
};

// |mean - truth| <= k * mcse for every column of values ((chain, draw, k) layout).
int count_mean_failures(std::vector<double> const& values, int m, int n, int dim, std::vector<double> const& truth,
                        double k = 4.5) {
  int bad = 0;
  for (int j = 0; j < dim; ++j) {
    std::vector<double> x(std::size_t(m) * n);
    for (std::size_t i = 0; i < x.size(); ++i)
      x[i] = values[i * dim + j];
    double mean = 0;
    for (double xi : x)
      mean += xi;
    mean /= double(x.size());
    double const mcse = dg::mcse_mean(x, m, n);
    if (!(std::fabs(mean - truth[j]) <= k * mcse)) {
      ++bad;
      MESSAGE("column " << j << ": mean " << mean << " truth " << truth[j] << " mcse " << mcse);
    }
  }
  return bad;
}
}  // namespace

TEST_CASE("NUTS: 100-d correlated Gaussian, exact means and variances") {
  int const d = 100;
  Ar1Host const target{d, 0.8};
  lensing::SamplerOptions opt;
  opt.num_chains = 4;
  opt.num_warmup = 500;
  opt.num_draws = 1000;
  opt.seed = 2024;
  auto const r = lensing::sample(Kokkos::DefaultHostExecutionSpace(), target, opt);
  int const m = r.num_chains, n = r.num_draws;
  // E[q] = 0 and E[q^2] = 1 for every coordinate.
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
  CHECK(r.divergences() == 0);
  // The dual averaging target is met (mean acceptance statistic ~ 0.8).
  CHECK(r.mean_accept_stat() > 0.7);
  MESSAGE("100-d Gaussian: ESS_bulk min " << min_ess << ", gradients " << r.sampling_gradient_evaluations
                                          << ", ESS/grad " << min_ess / double(r.sampling_gradient_evaluations) << ", "
                                          << r.seconds << " s");
}

TEST_CASE("static HMC: Neal's funnel (non-centred), exact moments") {
  Funnel const f;
  lensing::SamplerOptions opt;
  opt.algorithm = lensing::HmcAlgorithm::static_hmc;
  opt.integration_time = 1.5;  // not a half period of the (adapted) unit Gaussian: no antithetic resonance
  opt.step_jitter = 0.3;
  opt.num_chains = 4;
  opt.num_warmup = 500;
  opt.num_draws = 2000;
  opt.seed = 7;
  auto const r = lensing::sample(Kokkos::DefaultHostExecutionSpace(), f, opt);
  int const m = r.num_chains, n = r.num_draws, d = 10;
  // Columns: v, v^2, x_1..x_9, |x_1|, z_1^2.
  auto const vals = lensing::map_draws(r, 13, [&](double const* u, double* x) {
    x[0] = u[0];
    x[1] = u[0] * u[0];
    for (int i = 1; i < d; ++i)
      x[1 + i] = std::exp(0.5 * u[0]) * u[i];
    x[11] = std::exp(0.5 * u[0]) * std::fabs(u[1]);
    x[12] = u[1] * u[1];
  });
  std::vector<double> truth(13, 0.0);
  truth[1] = 9;
  truth[11] = std::exp(9.0 / 8) * std::sqrt(2 / M_PI);  // E exp(v/2) E|z|
  truth[12] = 1;
  CHECK(count_mean_failures(vals, m, n, 13, truth) == 0);
  for (int k = 0; k < d; ++k) {
    CHECK(dg::rhat(r.parameter(k), m, n) < 1.01);
  }
  CHECK(r.divergences() == 0);
  // Static HMC with a fixed integration time: leapfrog steps = floor(T / eps) (+- jitter).
  CHECK(r.n_leapfrog[0] >= int(std::floor(1.5 / (r.final_step_size[0] * 1.3))));
}

LENSING_TEST_CASE_TEMPLATE("NUTS on a density launching kernels, float and double; dense metric", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using Scalar = typename Config::scalar;
  Ar1Kernel<Scalar, Mem> const target{5, Scalar(0.9)};
  lensing::SamplerOptions opt;
  opt.num_chains = 2;
  opt.num_warmup = 300;
  opt.num_draws = 600;
  opt.metric = lensing::MetricKind::dense;
  // Default threads: the density declares launches_kernels (its chains run on the calling thread).
  auto const r = lensing::sample(Space(), target, opt);
  CHECK(count_mean_failures(r.draws, r.num_chains, r.num_draws, 5, std::vector<double>(5, 0.0)) == 0);
  MESSAGE(Space::name() << " " << sizeof(Scalar) << ": " << r.seconds << " s, " << r.gradient_evaluations
                        << " gradients");
  // The adapted dense inverse metric estimates Sigma_01 = rho (sampling error ~ 0.1 from ~400 warm-up draws).
  CHECK(r.inverse_metric[0].size() == 25u);
  CHECK(r.inverse_metric[0][1] == doctest::Approx(0.9).epsilon(0.3));
}

TEST_CASE("results do not depend on the number of threads; CSV output") {
  Funnel const f;
  lensing::SamplerOptions opt;
  opt.num_chains = 3;
  opt.num_warmup = 100;
  opt.num_draws = 50;
  opt.threads = 1;
  auto const a = lensing::sample(Kokkos::DefaultHostExecutionSpace(), f, opt);
  opt.threads = 3;
  auto const b = lensing::sample(Kokkos::DefaultHostExecutionSpace(), f, opt);
  CHECK(a.draws == b.draws);
  CHECK(a.energy == b.energy);
  opt.seed = 2;
  auto const c = lensing::sample(Kokkos::DefaultHostExecutionSpace(), f, opt);
  CHECK(a.draws != c.draws);
  std::ostringstream os;
  lensing::write_csv(os, a);
  std::string const s = os.str();
  CHECK(s.rfind("chain,draw,q[1],", 0) == 0);
  CHECK(std::count(s.begin(), s.end(), '\n') == 1 + 3 * 50);
  CHECK_THROWS_AS(lensing::write_csv("/nonexistent/dir/x.csv", a), std::runtime_error);
}

TEST_CASE("bad inputs: clear errors or reported divergences, never a crash") {
  auto const space = Kokkos::DefaultHostExecutionSpace();
  Nasty nasty;
  lensing::SamplerOptions opt;
  opt.num_chains = 2;
  opt.num_warmup = 200;
  opt.num_draws = 500;
  // NaN for q_0 > 1: the sampler stays in q_0 <= 1 and reports divergences.
  auto const r = lensing::sample(space, nasty, opt);
  double maxq = -1e300;
  for (int j = 0; j < 2 * 500; ++j)
    maxq = std::max(maxq, r.draws[2 * j]);
  CHECK(maxq <= 1);
  CHECK(r.divergences() + r.warmup_divergences > 0);
  nasty.broken = true;
  CHECK_THROWS_AS(lensing::sample(space, nasty, opt), std::runtime_error);
  Funnel f;
  f.n = -1;  // dimension 0
  CHECK_THROWS_AS(lensing::sample(space, f, opt), std::invalid_argument);
  Funnel const good;
  auto bad = opt;
  bad.num_chains = 0;
  CHECK_THROWS_AS(lensing::sample(space, good, bad), std::invalid_argument);
  bad = opt;
  bad.target_accept = 1.5;
  CHECK_THROWS_AS(lensing::sample(space, good, bad), std::invalid_argument);
  bad = opt;
  bad.init = {1.0, 2.0};  // wrong length
  CHECK_THROWS_AS(lensing::sample(space, good, bad), std::invalid_argument);
  bad = opt;
  bad.init_step_size = std::nan("");
  CHECK_THROWS_AS(lensing::sample(space, good, bad), std::invalid_argument);
  static_assert(lensing::is_log_density_v<Funnel, Kokkos::DefaultHostExecutionSpace>, "Funnel models LogDensity");
  static_assert(!lensing::is_log_density_v<int, Kokkos::DefaultHostExecutionSpace>, "int does not");
}
