// Batch sampling of many independent posteriors (sample_batch): 16 Gaussians
// of different dimensions, means and scales each recover their means and
// variances within 4 Monte Carlo standard errors with R-hat < 1.01; every
// problem's draws are bit-identical to a sequential sample() run of that
// problem with seed batch_seed(seed, b), whatever the number of threads (the
// program also runs at OMP_NUM_THREADS 1 and 2, which sets the default pool);
// bad inputs throw with the failing problem named.

#include <lensing/sample/batch.hpp>
#include <lensing/sample/diagnostics.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace dg = lensing::diagnostics;

namespace {
// Independent Gaussian N(mean_i, sd^2) in dimension mean.size() (host density, re-entrant).
struct Gaussian {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  std::vector<double> mean;
  double sd = 1;
  bool broken = false;  ///< NaN everywhere
  int dimension() const { return int(mean.size()); }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    double lp = 0;
    for (std::size_t i = 0; i < mean.size(); ++i) {
      double const r = (q(i) - mean[i]) / sd;
      lp -= 0.5 * r * r;
      g(i) = -r / sd;
    }
    return broken ? std::nan("") : lp;
  }
};

// Problem b: dimension 1 + b % 3, mean_i = 2 (b - 7.5) + i, sd = 0.1 * 1.3^b (0.1 .. 5.1).
std::vector<Gaussian> problems(int B) {
  std::vector<Gaussian> p;
  for (int b = 0; b < B; ++b) {
    Gaussian g;
    for (int i = 0; i < 1 + b % 3; ++i)
      g.mean.push_back(2 * (b - 7.5) + i);
    g.sd = 0.1 * std::pow(1.3, b);
    p.push_back(g);
  }
  return p;
}

lensing::SamplerOptions batch_options() {
  lensing::SamplerOptions opt;
  opt.num_chains = 4;
  opt.num_warmup = 400;
  opt.num_draws = 1000;
  opt.seed = 77;
  return opt;
}

bool identical(lensing::SampleResult const& a, lensing::SampleResult const& b) {
  return a.draws == b.draws && a.lp == b.lp && a.step_size == b.step_size && a.energy == b.energy &&
         a.n_leapfrog == b.n_leapfrog && a.final_step_size == b.final_step_size &&
         a.inverse_metric == b.inverse_metric && a.gradient_evaluations == b.gradient_evaluations &&
         a.sampling_gradient_evaluations == b.sampling_gradient_evaluations;
}
}  // namespace

TEST_CASE("sample_batch: 16 Gaussians recover their means and variances within 4 MCSE") {
  int const B = 16;
  auto const dens = problems(B);
  auto const results = lensing::sample_batch(Kokkos::DefaultHostExecutionSpace(), dens, batch_options());
  REQUIRE(int(results.size()) == B);
  for (int b = 0; b < B; ++b) {
    auto const& r = results[std::size_t(b)];
    auto const& g = dens[std::size_t(b)];
    int const m = r.num_chains, n = r.num_draws, d = g.dimension();
    CHECK(r.dimension == d);
    for (int i = 0; i < d; ++i) {
      auto const x = r.parameter(i);
      std::vector<double> sq(x.size());
      double mean = 0, msq = 0;
      for (std::size_t j = 0; j < x.size(); ++j) {
        sq[j] = (x[j] - g.mean[i]) * (x[j] - g.mean[i]);
        mean += x[j];
        msq += sq[j];
      }
      mean /= double(x.size());
      msq /= double(x.size());
      double const mcse = dg::mcse_mean(x, m, n), mcse_sq = dg::mcse_mean(sq, m, n), rhat = dg::rhat(x, m, n);
      if (i == 0)
        MESSAGE("problem " << b << " (d " << d << ", sd " << g.sd << "): mean " << mean << " truth " << g.mean[0]
                           << " mcse " << mcse << " R-hat " << rhat << "; var " << msq << " truth " << g.sd * g.sd
                           << " mcse " << mcse_sq);
      CHECK(std::fabs(mean - g.mean[i]) <= 4 * mcse);
      CHECK(std::fabs(msq - g.sd * g.sd) <= 4 * mcse_sq);
      CHECK(rhat < 1.01);
    }
    CHECK(r.divergences() == 0);
    // The adapted inverse metric tracks the scale of each problem (within a factor 2; the scales span 27 x).
    CHECK(r.inverse_metric[0][0] > g.sd * g.sd / 2);
    CHECK(r.inverse_metric[0][0] < g.sd * g.sd * 2);
  }
}

TEST_CASE("sample_batch: bit-identical to per-problem sequential runs whatever the thread count") {
  int const B = 16;
  auto const dens = problems(B);
  auto opt = batch_options();
  opt.num_warmup = 150;
  opt.num_draws = 100;
  auto const space = Kokkos::DefaultHostExecutionSpace();
  auto const pooled = lensing::sample_batch(space, dens, opt);  // threads = Kokkos host concurrency
  opt.threads = 1;
  auto const one = lensing::sample_batch(space, dens, opt);
  opt.threads = 3;
  auto const three = lensing::sample_batch(space, dens, opt);
  int mismatches = 0;
  for (int b = 0; b < B; ++b) {
    auto seq = opt;
    seq.threads = 1;
    seq.seed = lensing::batch_seed(opt.seed, b);
    auto const ref = lensing::sample(space, dens[std::size_t(b)], seq);
    mismatches += identical(ref, pooled[std::size_t(b)]) ? 0 : 1;
    mismatches += identical(ref, one[std::size_t(b)]) ? 0 : 1;
    mismatches += identical(ref, three[std::size_t(b)]) ? 0 : 1;
  }
  MESSAGE("host concurrency " << space.concurrency() << ": " << mismatches << " mismatches");
  CHECK(mismatches == 0);
  // Identical densities in different slots get different random streams.
  std::vector<Gaussian> const twins(2, dens[3]);
  auto const tw = lensing::sample_batch(space, twins, opt);
  CHECK(tw[0].draws != tw[1].draws);
  CHECK(lensing::batch_seed(1, 0) != lensing::batch_seed(1, 1));
  CHECK(lensing::batch_seed(1, 0) != lensing::batch_seed(2, 0));
}

namespace {
// Isotropic Gaussian N(mu, s^2 I) evaluated by a Kokkos reduction on the space the sampler passes.
template <class Scalar, class Mem>
struct KernelGaussian {
  using scalar_type = Scalar;
  using memory_space = Mem;
  static constexpr bool launches_kernels = true;  // chains run on the calling thread (log_density.hpp)
  int n;
  Scalar mu, s;
  int dimension() const { return n; }
  template <class Space>
  Scalar value_and_gradient(Space const& space, lensing::View1D<Scalar, Mem> const& q,
                            lensing::View1D<Scalar, Mem> const& g) const {
    Scalar const m = mu, inv = Scalar(1) / s;
    Scalar lp = 0;
    Kokkos::parallel_reduce(
        "lensing::test::batch_gaussian", Kokkos::RangePolicy<Space>(space, 0, n),
        KOKKOS_LAMBDA(int i, Scalar& acc) {
          Scalar const r = (q(i) - m) * inv;
          g(i) = -r * inv;
          acc += -Scalar(0.5) * r * r;
        },
        lp);
    return lp;
  }
};
}  // namespace

LENSING_TEST_CASE_TEMPLATE("sample_batch on densities launching kernels, float and double", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using Scalar = typename Config::scalar;
  std::vector<KernelGaussian<Scalar, Mem>> dens;
  for (int b = 0; b < 4; ++b)
    dens.push_back({2, Scalar(3 * b - 4), Scalar(0.5 + b)});
  auto opt = batch_options();
  opt.num_chains = 2;
  opt.num_warmup = 300;
  opt.num_draws = 500;
  // Default threads: the densities declare launches_kernels, so their chains
  // run on the calling thread (Kokkos host backends take kernels from one).
  auto const r = lensing::sample_batch(Space(), dens, opt);
  for (int b = 0; b < 4; ++b)
    for (int i = 0; i < 2; ++i) {
      auto const x = r[std::size_t(b)].parameter(i);
      double mean = 0;
      for (double v : x)
        mean += v;
      mean /= double(x.size());
      CHECK(std::fabs(mean - double(dens[std::size_t(b)].mu)) <= 4 * dg::mcse_mean(x, 2, 500));
    }
}

TEST_CASE("sample_batch: bad inputs name the failing problem") {
  auto const space = Kokkos::DefaultHostExecutionSpace();
  auto opt = batch_options();
  opt.num_warmup = 50;
  opt.num_draws = 20;
  CHECK_THROWS_AS(lensing::sample_batch(space, std::vector<Gaussian>{}, opt), std::invalid_argument);
  auto dens = problems(5);
  dens[3].mean.clear();  // dimension 0
  CHECK_THROWS_WITH_AS(lensing::sample_batch(space, dens, opt), doctest::Contains("problem 3"), std::invalid_argument);
  dens = problems(5);
  dens[2].broken = true;  // no finite initial point
  CHECK_THROWS_WITH_AS(lensing::sample_batch(space, dens, opt), doctest::Contains("problem 2"), std::runtime_error);
  dens = problems(5);
  auto bad = opt;
  bad.init = {0.0, 0.0};  // problem 0 has dimension 1: wrong length
  CHECK_THROWS_AS(lensing::sample_batch(space, dens, bad), std::invalid_argument);
  bad = opt;
  bad.num_draws = 0;
  CHECK_THROWS_AS(lensing::sample_batch(space, dens, bad), std::invalid_argument);
}
