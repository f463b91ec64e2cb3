// Predictor-corrector sampling of the VE SDE (issue 19 item 2,
// sample/predictor_corrector.hpp) on the Gaussian toy whose posterior is
// known exactly (the toy of test_score.cpp): Gaussian prior N(mu, Sigma) with
// its analytic noise-smoothed score, linear Gaussian likelihood y = A x + n.
//
// Every step of the sampler is linear in x for a Gaussian score
// s(x) = rhs - P x, so the exact law of the discretised chain is Gaussian and
// is propagated here step by step with the step sizes the sampler reports:
//   mean <- mean + c (rhs - P mean),  C <- (I - c P) C (I - c P)^T + v I,
// v = c for the predictor, 2 eps for the corrector (eps from the sampler's
// trace: its batch-norm rule couples the chains only through that scalar).
// This gives the discretisation bias analytically (no need to make it
// negligible by brute force) and a sharp check of each step.

#include <lensing/nn/score_matching.hpp>
#include <lensing/sample/predictor_corrector.hpp>
#include <lensing/sample/score.hpp>

#include <lensing_test.hpp>

#include "gaussian_toy.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace lt = lensing::test;
namespace nn = lensing::nn;

namespace {

using namespace gaussian_toy;

// The toy: d = 4, m = 3 (one prior-only direction); the numbers of test_score.cpp.
struct Toy {
  static constexpr int d = 4, m = 3;
  Mat sig;
  std::vector<double> mu = {0.5, -0.3, 0.2, 1.0};
  std::vector<double> a = {1.0, 0.5, 0.0, -0.2, 0.0, 1.0, -0.7, 0.3, 0.4, 0.0, 0.8, 0.5};
  std::vector<double> y = {2.5, -1.5, 2.0};
  double sigma_n = 0.7;
  Toy() : sig(std::size_t(d * d), 0.0) {
    // Sigma = L L^T + 0.3 I with a fixed L: eigenvalues in about [0.3, 2].
    Mat const l = {0.8, 0, 0, 0, 0.3, 0.7, 0, 0, -0.2, 0.4, 0.9, 0, 0.1, -0.3, 0.2, 0.6};
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j) {
        for (int k = 0; k < d; ++k)
          sig[std::size_t(i * d + j)] += l[std::size_t(i * d + k)] * l[std::size_t(j * d + k)];
        if (i == j) sig[std::size_t(i * d + j)] += 0.3;
      }
  }
  // Level target at sigma: score rhs - P x with P = (Sigma + sigma^2 I)^-1 (+ A^T A / sigma_n^2),
  // rhs = (Sigma + sigma^2 I)^-1 mu (+ A^T y / sigma_n^2).
  void level(double sigma, bool with_likelihood, Mat& p, std::vector<double>& rhs) const {
    Mat c = sig;
    for (int i = 0; i < d; ++i)
      c[std::size_t(i * d + i)] += sigma * sigma;
    p = inverse(c, d);
    rhs.assign(std::size_t(d), 0.0);
    double const w = 1 / (sigma_n * sigma_n);
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < d; ++j)
        rhs[std::size_t(i)] += p[std::size_t(i * d + j)] * mu[std::size_t(j)];
      if (!with_likelihood) continue;
      for (int j = 0; j < d; ++j)
        for (int k = 0; k < m; ++k)
          p[std::size_t(i * d + j)] += a[std::size_t(k * d + i)] * a[std::size_t(k * d + j)] * w;
      for (int k = 0; k < m; ++k)
        rhs[std::size_t(i)] += a[std::size_t(k * d + i)] * y[std::size_t(k)] * w;
    }
  }
  Moments target(double sigma, bool with_likelihood) const {
    Mat p;
    std::vector<double> rhs;
    level(sigma, with_likelihood, p, rhs);
    Moments r{std::vector<double>(std::size_t(d), 0.0), inverse(p, d)};
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j)
        r.mean[std::size_t(i)] += r.cov[std::size_t(i * d + j)] * rhs[std::size_t(j)];
    return r;
  }
};

// One linear step x <- x + c (rhs - P x) + sqrt(v) z applied to a Gaussian law.
void step(Moments& law, Mat const& p, std::vector<double> const& rhs, double c, double v, int d) {
  std::vector<double> mean = law.mean;
  Mat t(std::size_t(d * d), 0.0), tc(std::size_t(d * d), 0.0), cov(std::size_t(d * d), 0.0);
  for (int i = 0; i < d; ++i) {
    double g = rhs[std::size_t(i)];
    for (int k = 0; k < d; ++k)
      g -= p[std::size_t(i * d + k)] * law.mean[std::size_t(k)];
    mean[std::size_t(i)] += c * g;
    for (int j = 0; j < d; ++j)
      t[std::size_t(i * d + j)] = (i == j ? 1.0 : 0.0) - c * p[std::size_t(i * d + j)];
  }
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j)
      for (int k = 0; k < d; ++k)
        tc[std::size_t(i * d + j)] += t[std::size_t(i * d + k)] * law.cov[std::size_t(k * d + j)];
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) {
      for (int k = 0; k < d; ++k)
        cov[std::size_t(i * d + j)] += tc[std::size_t(i * d + k)] * t[std::size_t(j * d + k)];
      if (i == j) cov[std::size_t(i * d + j)] += v;
    }
  law.mean = mean;
  law.cov = cov;
}

// Exact law of the sampler's chain of steps from N(0, sigma_0^2 I) (initialize()).
Moments propagate(Toy const& toy, lensing::PredictorCorrectorOptions const& o,
                  lensing::PredictorCorrectorTrace const& tr, bool with_likelihood) {
  int const d = Toy::d, m = o.corrector_steps;
  Moments law{std::vector<double>(std::size_t(d), 0.0), Mat(std::size_t(d * d), 0.0)};
  for (int i = 0; i < d; ++i)
    law.cov[std::size_t(i * d + i)] = o.sigmas[0] * o.sigmas[0];
  Mat p;
  std::vector<double> rhs;
  for (std::size_t i = 0; i + 1 < o.sigmas.size(); ++i) {
    toy.level(o.sigmas[i], with_likelihood, p, rhs);
    step(law, p, rhs, tr.predictor_steps[i], tr.predictor_steps[i], d);
    toy.level(o.sigmas[i + 1], with_likelihood, p, rhs);
    for (int t = 0; t < m; ++t) {
      double const eps = tr.corrector_steps[i * std::size_t(m) + std::size_t(t)];
      step(law, p, rhs, eps, 2 * eps, d);
    }
  }
  return law;
}

// Error model.  n independent chains (the shared eps is a batch average: a
// coupling of order 1/n), one draw each: the sample mean has MCSE
// sqrt(C_jj / n) and the sample covariance (j, k) sqrt((C_jj C_kk + C_jk^2) / n)
// (Gaussian fourth moments), C the law's covariance.  The largest |error| /
// MCSE over the 4 means and 10 covariance entries.
double worst_z(Moments const& got, Moments const& want, Moments const& ref, int n, double const* extra_mean = nullptr,
               double const* extra_cov = nullptr) {
  int const d = Toy::d;
  double worst = 0;
  for (int j = 0; j < d; ++j) {
    double const e =
        std::abs(got.mean[std::size_t(j)] - want.mean[std::size_t(j)]) - (extra_mean ? extra_mean[j] : 0.0);
    worst = std::max(worst, e / std::sqrt(ref.cov[std::size_t(j * d + j)] / n));
    for (int k = j; k < d; ++k) {
      std::size_t const jk = std::size_t(j * d + k);
      double const c = ref.cov[jk];
      double const mc = std::sqrt((ref.cov[std::size_t(j * d + j)] * ref.cov[std::size_t(k * d + k)] + c * c) / n);
      worst = std::max(worst, (std::abs(got.cov[jk] - want.cov[jk]) - (extra_cov ? extra_cov[jk] : 0.0)) / mc);
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("predictor-corrector: bad options and shapes throw") {
  using Mem = Kokkos::HostSpace;
  using PC = lensing::PredictorCorrector<double, Mem>;
  lensing::PredictorCorrectorOptions o;
  o.sigmas = {1.0, 0.1};
  CHECK_NOTHROW(PC(3, 2, o));
  CHECK_THROWS_AS(PC(0, 2, o), std::invalid_argument);
  CHECK_THROWS_AS(PC(3, 0, o), std::invalid_argument);
  auto bad = o;
  bad.sigmas = {1.0};  // the predictor needs two levels
  CHECK_THROWS_AS(PC(3, 2, bad), std::invalid_argument);
  bad.sigmas = {1.0, 1.0};
  CHECK_THROWS_AS(PC(3, 2, bad), std::invalid_argument);
  bad.sigmas = {1.0, 0.0};
  CHECK_THROWS_AS(PC(3, 2, bad), std::invalid_argument);
  bad = o;
  bad.snr = 0;
  CHECK_THROWS_AS(PC(3, 2, bad), std::invalid_argument);
  bad = o;
  bad.corrector_steps = -1;
  CHECK_THROWS_AS(PC(3, 2, bad), std::invalid_argument);
  bad = o;
  bad.max_step = 0;
  CHECK_THROWS_AS(PC(3, 2, bad), std::invalid_argument);

  Kokkos::DefaultHostExecutionSpace space;
  PC const pc(3, 2, o);
  CHECK(pc.predictor_step(0) == doctest::Approx(0.99));
  lensing::View2D<double, Mem> wrong("wrong", 3, 3), x("x", 3, 2);
  auto const zero = [](auto const&, double, auto const&, auto const& s) { Kokkos::deep_copy(s, 0.0); };
  CHECK_THROWS_AS(pc.initialize(space, wrong), std::invalid_argument);
  CHECK_THROWS_AS(pc.run(space, zero, wrong), std::invalid_argument);
  // A score that vanishes everywhere leaves the corrector's step undefined.
  pc.initialize(space, x);
  CHECK_THROWS_AS(pc.run(space, zero, x), std::runtime_error);
}

// Posterior sampling.  Score = prior score at sigma + the (unsmoothed)
// likelihood score.  Schedule 20 geometric levels 1 .. 0.01, M = 50
// corrector steps at SNR r = 0.1 (last-level eps ~ 2 r^2 d / tr(P) ~ 6e-3,
// tr(P) = 12.9; covariance bias ~ eps / 2), max_step 0.1 (the likelihood's
// curvature, up to 5.4, does not shrink with sigma: c lambda_max < 2).
// n = 2000 chains.
// Bias: the exact law of the chain (propagate) differs from the posterior
// by the corrector's step bias and the smoothing at sigma_L; required below
// half an MCSE (the design choice, checked) and added to the tolerance.
// Checks at 4.5 MCSE (28 statistics: false alarm < 2e-4 for a fixed seed,
// which is deterministic anyway).
LENSING_TEST_CASE_TEMPLATE("predictor-corrector: prior + likelihood score recovers the Gaussian posterior", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  Toy const toy;
  int const d = Toy::d, n = 2000;
  lensing::PredictorCorrectorOptions o;
  o.sigmas = nn::geometric_sigmas(1.0, 0.01, 20);
  o.corrector_steps = 50;
  o.snr = 0.1;
  o.max_step = 0.1;
  o.seed = 23;
  lensing::PredictorCorrector<S, Mem> pc(n, d, o);
  GaussianPriorScore<S, Mem> prior(toy.sig, toy.mu);
  lensing::LinearGaussianScore<S, Mem> like(toy.a, Toy::m, d, toy.y, toy.sigma_n);
  auto const post = lensing::make_posterior_score(prior, like);

  lensing::View2D<S, Mem> x("x", n, d);
  pc.initialize(space, x);
  auto const tr = pc.run(space, post, x);
  space.fence();
  REQUIRE(tr.predictor_steps.size() == o.sigmas.size() - 1);
  REQUIRE(tr.corrector_steps.size() == (o.sigmas.size() - 1) * std::size_t(o.corrector_steps));
  Moments const got = moments(x);
  Moments const exact = toy.target(0.0, true);
  Moments const law = propagate(toy, o, tr, true);

  std::vector<double> bias_mean(static_cast<std::size_t>(d)), bias_cov(static_cast<std::size_t>(d * d));
  for (int j = 0; j < d; ++j)
    bias_mean[std::size_t(j)] = std::abs(law.mean[std::size_t(j)] - exact.mean[std::size_t(j)]);
  for (int jk = 0; jk < d * d; ++jk)
    bias_cov[std::size_t(jk)] = std::abs(law.cov[std::size_t(jk)] - exact.cov[std::size_t(jk)]);
  double const bias_z = worst_z(law, exact, exact, n);
  double const z_exact = worst_z(got, exact, exact, n, bias_mean.data(), bias_cov.data());
  double const z_law = worst_z(got, law, law, n);
  MESSAGE(std::string(Space::name()) << " " << sizeof(S) << "-byte: last eps " << tr.corrector_steps.back()
                                     << ", bias of the discretised chain " << bias_z
                                     << " MCSE; worst |error| / MCSE vs the posterior (beyond the bias) " << z_exact
                                     << ", vs the chain's exact law " << z_law);
  CHECK(bias_z < 0.5);  // the step choice: the discretisation bias is below half an MCSE
  CHECK(z_exact <= 4.5);
  CHECK(z_law <= 4.5);
}

// Each step on its own.  Prior score only (then the score of every level is
// exact), a coarse schedule (8 levels 1 .. 0.01) and few corrector steps
// (M = 2 at the paper's r = 0.16; and M = 0, the reverse-diffusion sampler),
// so that the final law still remembers every predictor and corrector step.
// n = 40000 chains; checks at 4.5 MCSE against the exact law of the chain.
// Power (computed from the same propagation): dropping the predictor's noise
// term moves the covariance by ~ 20 MCSE; running the corrector at sigma_i
// instead of sigma_{i+1} by ~ 10 MCSE (both fail).
LENSING_TEST_CASE_TEMPLATE("predictor-corrector: the chain follows the exact law of its discretised steps", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  Toy const toy;
  int const d = Toy::d, n = 40000;
  GaussianPriorScore<S, Mem> prior(toy.sig, toy.mu);
  for (int m : {2, 0}) {
    lensing::PredictorCorrectorOptions o;
    o.sigmas = nn::geometric_sigmas(1.0, 0.01, 8);
    o.corrector_steps = m;
    o.snr = 0.16;
    o.seed = 5;
    lensing::PredictorCorrector<S, Mem> pc(n, d, o);
    lensing::View2D<S, Mem> x("x", n, d);
    pc.initialize(space, x);
    auto const tr = pc.run(space, prior, x);
    space.fence();
    Moments const got = moments(x);
    Moments const law = propagate(toy, o, tr, false);
    double const z = worst_z(got, law, law, n);
    MESSAGE(std::string(Space::name()) << " " << sizeof(S) << "-byte, M = " << m
                                       << ": worst |error| / MCSE vs the exact law " << z);
    CHECK(z <= 4.5);
  }
}
