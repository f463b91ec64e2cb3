// Warm-up adaptation on narrow posteriors, and the initial point and inverse
// metric of sample().  The metric regulariser is relative to the estimated
// variances (adaptation.hpp), so the warm-up is equivariant under a rescaling
// of the coordinates: NUTS on a Gaussian with scales 1e-4 .. 1e-2 (the
// posterior widths of a lens fit, in arcsec) reaches the ESS per gradient of
// its twin with scales 0.1 .. 10 (same seed; both starting from the same
// standardised point).  Stan's absolute regulariser (1e-3 * 5/(n+5) added to
// every variance) kept the narrow coordinates' metric entries ~1000x their
// variance: ~40x more gradients per effective draw.  Also: an initial inverse
// metric is used (and kept with the unit metric), invalid ones are rejected,
// and the realised acceptance statistic after warm-up (see the note in
// adaptation.hpp on why it exceeds the dual-averaging target).

#include <lensing/sample/diagnostics.hpp>
#include <lensing/sample/sampler.hpp>

#include "gaussian_targets.hpp"

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace dg = lensing::diagnostics;

namespace {
using lensing::test::IndependentGaussian;
using lensing::test::log_spaced;

// Minimum bulk ESS over coordinates per sampling gradient.
double ess_per_gradient(lensing::SampleResult const& r) {
  double ess = 1e300;
  for (int k = 0; k < r.dimension; ++k)
    ess = std::min(ess, dg::ess_bulk(r.parameter(k), r.num_chains, r.num_draws));
  return ess / double(r.sampling_gradient_evaluations);
}
}  // namespace

TEST_CASE("warm-up adapts to narrow posteriors: ESS per gradient of the unit-scaled twin") {
  int const d = 10;
  auto const narrow = log_spaced(d, 1e-4, 1e-2);
  std::vector<double> twin = narrow;
  for (auto& s : twin)
    s *= 1e3;  // 0.1 .. 10
  lensing::SamplerOptions opt;
  opt.num_chains = 4;
  opt.num_warmup = 500;
  opt.num_draws = 500;
  opt.seed = 4;
  // Same standardised start for both: init_i = 0.7 sd_i (-1)^i.
  auto start = [&](std::vector<double> const& sd) {
    std::vector<double> x(sd.size());
    for (std::size_t i = 0; i < sd.size(); ++i)
      x[i] = 0.7 * sd[i] * (i % 2 ? -1 : 1);
    return x;
  };
  auto on = opt;
  on.init = start(narrow);
  auto const rn = lensing::sample(Kokkos::DefaultHostExecutionSpace(), IndependentGaussian{narrow}, on);
  auto ot = opt;
  ot.init = start(twin);
  auto const rt = lensing::sample(Kokkos::DefaultHostExecutionSpace(), IndependentGaussian{twin}, ot);
  double const en = ess_per_gradient(rn), et = ess_per_gradient(rt);
  double const gn = double(rn.sampling_gradient_evaluations) / (4 * 500),
               gt = double(rt.sampling_gradient_evaluations) / (4 * 500);
  MESSAGE("narrow: " << gn << " gradients/draw, ESS/grad " << en << ", step " << rn.final_step_size[0]
                     << "; twin: " << gt << " gradients/draw, ESS/grad " << et << ", step " << rt.final_step_size[0]);
  // Equivariance holds up to the step-size initialisation (powers of two from
  // init_step_size) and Monte Carlo error of the min-ESS (~10-20 %): within 1.5x.
  CHECK(en > et / 1.5);
  CHECK(en < et * 1.5);
  // The adapted metric tracks each variance (ratio to sd^2 within 2x, the
  // same as the twin's).
  for (int i = 0; i < d; ++i) {
    double const ratio = rn.inverse_metric[0][std::size_t(i)] / (narrow[std::size_t(i)] * narrow[std::size_t(i)]);
    CHECK_MESSAGE((ratio > 0.5 && ratio < 2), "coordinate " << i << ": inverse metric / variance " << ratio);
  }
  // Means in MCSE units.
  for (int i = 0; i < d; ++i) {
    auto const x = rn.parameter(i);
    double mean = 0;
    for (double v : x)
      mean += v;
    mean /= double(x.size());
    CHECK(std::fabs(mean) <= 4.5 * dg::mcse_mean(x, rn.num_chains, rn.num_draws));
  }
}

TEST_CASE("sample(): initial inverse metric and point") {
  auto const sd = log_spaced(4, 1e-3, 1e-1);
  IndependentGaussian const target{sd};
  lensing::SamplerOptions opt;
  opt.num_chains = 2;
  opt.num_warmup = 200;
  opt.num_draws = 200;
  opt.init = {0, 0, 0, 0};
  std::vector<double> var;
  for (double s : sd)
    var.push_back(s * s);
  // With the unit metric the given inverse metric is kept (no adaptation of
  // the metric, only of the step size), and with it the sampler needs few
  // gradients per draw (a standardised target).
  opt.metric = lensing::MetricKind::unit;
  opt.init_inv_metric = var;
  auto const r = lensing::sample(Kokkos::DefaultHostExecutionSpace(), target, opt);
  CHECK(r.inverse_metric[0] == var);
  CHECK(double(r.sampling_gradient_evaluations) / (2 * 200) < 8);
  // The acceptance statistic after warm-up is above the target 0.8: the final
  // step is exp(x_bar), the dual-averaging iterate average (see adaptation.hpp).
  MESSAGE("mean accept_stat " << r.mean_accept_stat() << " (target 0.8), step " << r.final_step_size[0]);
  CHECK(r.mean_accept_stat() > 0.75);
  // Dense: a d*d matrix, or d values for its diagonal.
  opt.metric = lensing::MetricKind::dense;
  std::vector<double> dense(16, 0.0);
  for (int i = 0; i < 4; ++i)
    dense[std::size_t(i) * 5] = var[std::size_t(i)];
  opt.init_inv_metric = dense;
  CHECK_NOTHROW(lensing::sample(Kokkos::DefaultHostExecutionSpace(), target, opt));
  opt.init_inv_metric = var;
  CHECK_NOTHROW(lensing::sample(Kokkos::DefaultHostExecutionSpace(), target, opt));
  // Invalid: wrong length, a dense matrix with a diagonal metric, non-finite,
  // not positive definite, asymmetric.
  auto bad = opt;
  bad.init_inv_metric = {1, 2, 3};
  CHECK_THROWS_AS(lensing::sample(Kokkos::DefaultHostExecutionSpace(), target, bad), std::invalid_argument);
  bad.metric = lensing::MetricKind::diagonal;
  bad.init_inv_metric = dense;
  CHECK_THROWS_AS(lensing::sample(Kokkos::DefaultHostExecutionSpace(), target, bad), std::invalid_argument);
  bad.init_inv_metric = {1, std::nan(""), 1, 1};
  CHECK_THROWS_AS(lensing::sample(Kokkos::DefaultHostExecutionSpace(), target, bad), std::invalid_argument);
  bad.init_inv_metric = {1, 0, 1, 1};
  CHECK_THROWS_AS(lensing::sample(Kokkos::DefaultHostExecutionSpace(), target, bad), std::invalid_argument);
  bad.metric = lensing::MetricKind::dense;
  auto indefinite = dense;
  indefinite[1] = indefinite[4] = 1;  // |Sigma_01| > sqrt(Sigma_00 Sigma_11)
  bad.init_inv_metric = indefinite;
  CHECK_THROWS_AS(lensing::sample(Kokkos::DefaultHostExecutionSpace(), target, bad), std::invalid_argument);
  auto asym = dense;
  asym[1] = 1e-7;
  bad.init_inv_metric = asym;
  CHECK_THROWS_AS(lensing::sample(Kokkos::DefaultHostExecutionSpace(), target, bad), std::invalid_argument);
}
