// Exactness of the NUTS transition where trees are deep: a fixed small step on
// an independent Gaussian whose scales span 100x (unit metric, no adaptation)
// makes trajectories of hundreds of leapfrog steps, so every U-turn check
// across subtree boundaries matters.  Chains start from exact draws of the
// target, so there is no burn-in and any drift of the moments is a defect of
// the transition (a wrong edge momentum in the merged U-turn checks biased
// the variances of the wide coordinates upwards by 5-17 % here).  Checks are
// in Monte Carlo standard errors (diagnostics.hpp: MCSE of E[x^2] from the
// run's own ESS), and the test asserts its own power: the MCSE of the pooled
// variance ratio (mean over coordinates) is small
// enough that a 2 % variance bias would exceed 5 MCSE.  The same for
// sample_batch(); and a stationarity check of the transition: many
// independent chains started from exact draws, whose draws after each of five
// transitions must keep the target's second moments (iid standard
// errors).

#include <lensing/sample/batch.hpp>
#include <lensing/sample/diagnostics.hpp>
#include <lensing/sample/sampler.hpp>

#include "gaussian_targets.hpp"

#include <lensing_test.hpp>

#include <cmath>
#include <vector>

namespace dg = lensing::diagnostics;

namespace {
using lensing::test::IndependentGaussian;
using lensing::test::log_spaced;

// num_chains * d exact draws of the target (the chains' initial points).
std::vector<double> exact_draws(std::vector<double> const& sd, int num_chains, std::uint64_t seed) {
  lensing::Rng rng(seed, 12345);
  std::vector<double> x;
  for (int c = 0; c < num_chains; ++c)
    for (double s : sd)
      x.push_back(s * rng.normal());
  return x;
}

// Deep trees: fixed step 0.02 on scales 0.1 .. 10 with the unit metric
// (a half period of the widest coordinate is ~1600 steps: most trees reach
// max_depth = 10), no warm-up, no adaptation.
lensing::SamplerOptions deep_tree_options(std::vector<double> const& sd, int num_chains, int num_draws) {
  lensing::SamplerOptions opt;
  opt.num_chains = num_chains;
  opt.num_warmup = 0;
  opt.num_draws = num_draws;
  opt.adapt = false;
  opt.metric = lensing::MetricKind::unit;
  opt.init_step_size = 0.02;
  opt.max_depth = 10;
  opt.seed = 31;
  opt.init = exact_draws(sd, num_chains, 5);
  return opt;
}

// Per coordinate: z_i = (mean(x_i^2) / sd_i^2 - 1) / MCSE, checked at 4.5
// (10 coordinates: a false alarm has probability ~7e-5).  Pooled: the mean
// over coordinates of x_i^2 / sd_i^2 per draw (its MCSE from the draws
// themselves, so correlations between coordinates are accounted for), whose
// MCSE sets the power of the test (checked: a 2 % bias of every variance
// would be more than 5 MCSE).
struct VarianceCheck {
  double worst_z = 0, pooled_ratio = 0, pooled_mcse = 0, widest_ratio = 0;
};
VarianceCheck check_variances(std::vector<lensing::SampleResult> const& runs, std::vector<double> const& sd) {
  int const d = runs.front().dimension;
  VarianceCheck v;
  std::vector<double> pooled;
  std::vector<double> x;
  int m = 0, n = runs.front().num_draws;
  for (auto const& r : runs)
    m += r.num_chains;
  for (int i = 0; i < d; ++i) {
    x.clear();
    for (auto const& r : runs) {
      auto const xi = r.parameter(i);
      x.insert(x.end(), xi.begin(), xi.end());
    }
    if (pooled.empty()) pooled.assign(x.size(), 0.0);
    double mean = 0;
    for (std::size_t k = 0; k < x.size(); ++k) {
      x[k] = x[k] * x[k] / (sd[std::size_t(i)] * sd[std::size_t(i)]);
      pooled[k] += x[k] / d;
      mean += x[k];
    }
    mean /= double(x.size());
    double const mcse = dg::mcse_mean(x, m, n);
    double const z = (mean - 1) / mcse;
    CHECK_MESSAGE(std::fabs(z) <= 4.5, "coordinate " << i << " (sd " << sd[std::size_t(i)] << "): E[x^2]/sd^2 = "
                                                     << mean << " +- " << mcse << " (z = " << z << ")");
    v.worst_z = std::max(v.worst_z, std::fabs(z));
    if (i == d - 1) v.widest_ratio = mean;
  }
  for (double p : pooled)
    v.pooled_ratio += p;
  v.pooled_ratio /= double(pooled.size());
  v.pooled_mcse = dg::mcse_mean(pooled, m, n);
  CHECK_MESSAGE(std::fabs(v.pooled_ratio - 1) <= 4.5 * v.pooled_mcse,
                "pooled E[x^2]/sd^2 = " << v.pooled_ratio << " +- " << v.pooled_mcse);
  // Power: a 2 % bias of the variances would be more than 5 MCSE.
  CHECK(0.02 > 5 * v.pooled_mcse);
  return v;
}

}  // namespace

TEST_CASE("NUTS with deep trees keeps the variances of a 10-d Gaussian (scales 0.1 .. 10), in MCSE units") {
  auto const sd = log_spaced(10, 0.1, 10);
  IndependentGaussian const target{sd};
  auto const opt = deep_tree_options(sd, 4, 12000);
  auto const r = lensing::sample(Kokkos::DefaultHostExecutionSpace(), target, opt);
  auto const v = check_variances({r}, sd);
  double depth = 0;
  for (int t : r.tree_depth)
    depth += t;
  depth /= double(r.tree_depth.size());
  CHECK(depth > 7);  // the trees are deep (the regime of the defect)
  CHECK(r.divergences() == 0);
  MESSAGE("sample: worst |z| " << v.worst_z << ", pooled E[x^2]/sd^2 " << v.pooled_ratio << " +- " << v.pooled_mcse
                               << ", widest " << v.widest_ratio << ", mean depth " << depth << ", " << r.seconds
                               << " s");
}

TEST_CASE("sample_batch with deep trees keeps the variances, in MCSE units") {
  auto const sd = log_spaced(10, 0.1, 10);
  std::vector<IndependentGaussian> const targets(2, IndependentGaussian{sd});
  auto const opt = deep_tree_options(sd, 2, 12000);
  auto const rs = lensing::sample_batch(Kokkos::DefaultHostExecutionSpace(), targets, opt);
  auto const v = check_variances(rs, sd);
  MESSAGE("sample_batch: worst |z| " << v.worst_z << ", pooled E[x^2]/sd^2 " << v.pooled_ratio << " +- "
                                     << v.pooled_mcse << ", widest " << v.widest_ratio << ", "
                                     << rs[0].seconds + rs[1].seconds << " s");
}

TEST_CASE("NUTS transition preserves the target: chains started from exact draws stay at its moments") {
  // 1500 independent chains of the deep-tree Gaussian, each started from an
  // exact draw, 5 transitions each.  If the transition preserves the target,
  // every draw is an exact draw, and across chains the draws are independent:
  // the standard error of E[x_i^2]/sd_i^2 is the plain one, sqrt(2 / 1500)
  // per coordinate.  Checked per transition: each coordinate, and the mean
  // over the five widest (sd 1.3 .. 10, where the trees end by U-turns that
  // depend on the boundary checks; SE sqrt(2 / 7500) = 1.6 %).
  auto const sd = log_spaced(10, 0.1, 10);
  IndependentGaussian const target{sd};
  int const nc = 1500, nd = 5, d = 10;
  auto opt = deep_tree_options(sd, nc, nd);
  opt.seed = 8;
  auto const r = lensing::sample(Kokkos::DefaultHostExecutionSpace(), target, opt);
  for (int t = 0; t < nd; ++t) {
    std::vector<double> wide(std::size_t(nc), 0.0);
    for (int i = 0; i < d; ++i) {
      double sum = 0, sum2 = 0;
      for (int k = 0; k < nc; ++k) {
        double const x = r.draws[(std::size_t(k) * nd + t) * d + i] / sd[std::size_t(i)];
        sum += x * x;
        sum2 += x * x * x * x;
        if (i >= d / 2) wide[std::size_t(k)] += x * x / (d - d / 2);
      }
      double const mean = sum / nc, se = std::sqrt((sum2 / nc - mean * mean) / (nc - 1));
      CHECK_MESSAGE(std::fabs(mean - 1) <= 4.5 * se, "transition " << t + 1 << ", coordinate " << i
                                                                   << ": E[x^2]/sd^2 = " << mean << " (SE " << se
                                                                   << ")");
    }
    double sum = 0, sum2 = 0;
    for (double w : wide) {
      sum += w;
      sum2 += w * w;
    }
    double const mean = sum / nc, se = std::sqrt((sum2 / nc - mean * mean) / (nc - 1));
    CHECK_MESSAGE(std::fabs(mean - 1) <= 4.5 * se,
                  "transition " << t + 1 << ", five widest: E[x^2]/sd^2 = " << mean << " (SE " << se << ")");
  }
}
