#ifndef LENSING_VALIDATE_VARIANCE_SCALE_HPP
#define LENSING_VALIDATE_VARIANCE_SCALE_HPP

/// \file
/// Post-hoc calibration of predicted Gaussian uncertainties (temperature
/// scaling of the variance): per parameter k one factor s_k^2 that multiplies
/// every predicted variance sigma_k^2 (for a full covariance C -> D C D with
/// D = diag(s_k), which keeps the correlations).  Fitted on a calibration set
/// of residuals r_ik = mu_ik - truth_ik disjoint from the training data by
/// maximising the Gaussian log-likelihood of the marginals,
///   sum_i [ -log(s_k sigma_ik) - r_ik^2 / (2 s_k^2 sigma_ik^2) ],
/// whose maximum is in closed form
///   s_k^2 = (1/n) sum_i r_ik^2 / sigma_ik^2,
/// the mean squared standardised residual.  If the standardised residuals are
/// N(0, s^2) the estimate has relative standard error sqrt(2 / n).
///
/// Heavy-tailed standardised residuals make the variance-matched Gaussian
/// over-cover at 68.3 % and under-cover at 99.7 %; the coverage criterion
/// (VarianceScaleOptions::criterion = ScaleCriterion::coverage_minimax)
/// instead picks s_k to minimise the largest |coverage - nominal| of the
/// +-1, +-2, +-3 s sigma intervals (nominal erf(z / sqrt 2) = 68.27, 95.45,
/// 99.73 %) on the calibration set.  Coverage is a step function of s, so the
/// search is a grid of log-spaced s in [0.3, 3] x the variance-matched s
/// (plus that s itself), ties going to the s closest to it in log s.

#include <lensing/core/errors.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace lensing {
namespace validate {

/// Maximum-likelihood variance scales s_k^2 (k < d) of n = residual.size() / d
/// predictions: `residual` and `sd` are row-major (n, d) arrays of the
/// residuals (prediction - truth) and the predicted marginal standard
/// deviations.  Throws std::invalid_argument on mismatched or empty input,
/// non-finite values or a non-positive sd.
inline std::vector<double> fit_variance_scales(std::vector<double> const& residual, std::vector<double> const& sd,
                                               std::size_t d) {
  constexpr char const* where = "lensing::validate::fit_variance_scales";
  check_argument(d > 0, where, "d must be >= 1");
  check_argument(residual.size() == sd.size(), where, "residual and sd must have the same size");
  check_argument(!residual.empty() && residual.size() % d == 0, where,
                 "residual must hold n >= 1 rows of d = " + std::to_string(d) + " values");
  std::size_t const n = residual.size() / d;
  std::vector<double> s2(d, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < d; ++k) {
      double const r = residual[i * d + k], s = sd[i * d + k];
      check_argument(std::isfinite(r), where, "residuals must be finite");
      check_argument(std::isfinite(s) && s > 0, where, "sd must be finite and > 0");
      s2[k] += (r / s) * (r / s);
    }
  for (auto& v : s2)
    v /= double(n);
  return s2;
}

/// The criterion of fit_variance_scales (the overload with options).
enum class ScaleCriterion {
  likelihood,       ///< maximum likelihood: the mean squared standardised residual
  coverage_minimax  ///< minimise max over z = 1, 2, 3 of |coverage(z) - erf(z / sqrt 2)|
};

/// Options of fit_variance_scales: the criterion (default the closed-form
/// likelihood fit) and, for coverage_minimax, the number of grid points of
/// the log-spaced search in [lo, hi] x the variance-matched scale.
struct VarianceScaleOptions {
  ScaleCriterion criterion = ScaleCriterion::likelihood;
  std::size_t grid = 2000;
  double lo = 0.3, hi = 3.0;
};

/// fit_variance_scales with a choice of criterion (see the file comment);
/// returns s_k^2 like the three-argument form, which it equals for the
/// default options.  Throws std::invalid_argument on bad input or options
/// (grid < 2, not 0 < lo <= 1 <= hi).
inline std::vector<double> fit_variance_scales(std::vector<double> const& residual, std::vector<double> const& sd,
                                               std::size_t d, VarianceScaleOptions const& options) {
  constexpr char const* where = "lensing::validate::fit_variance_scales";
  auto s2 = fit_variance_scales(residual, sd, d);
  if (options.criterion == ScaleCriterion::likelihood) return s2;
  check_argument(options.grid >= 2, where, "grid must be >= 2");
  check_argument(options.lo > 0 && options.lo <= 1 && options.hi >= 1 && std::isfinite(options.hi), where,
                 "need 0 < lo <= 1 <= hi");
  std::size_t const n = residual.size() / d;
  double const zs[3] = {1.0, 2.0, 3.0};
  double nominal[3];
  for (int j = 0; j < 3; ++j)
    nominal[j] = std::erf(zs[j] / std::sqrt(2.0));
  std::vector<double> q(n);
  for (std::size_t k = 0; k < d; ++k) {
    for (std::size_t i = 0; i < n; ++i)
      q[i] = std::fabs(residual[i * d + k]) / sd[i * d + k];
    std::sort(q.begin(), q.end());
    // Largest |coverage - nominal| at scale s; coverage counts |r| / sd <= z s.
    auto worst = [&](double s) {
      double w = 0;
      for (int j = 0; j < 3; ++j) {
        auto const c = std::upper_bound(q.begin(), q.end(), zs[j] * s) - q.begin();
        w = std::max(w, std::fabs(double(c) / double(n) - nominal[j]));
      }
      return w;
    };
    double const s0 = std::sqrt(s2[k]);
    if (!(s0 > 0)) continue;  // all residuals zero: keep the (zero) likelihood scale
    double best = s0, best_w = worst(s0);
    double const a = std::log(options.lo), b = std::log(options.hi);
    for (std::size_t g = 0; g < options.grid; ++g) {
      double const t = a + (b - a) * double(g) / double(options.grid - 1);
      double const s = s0 * std::exp(t), w = worst(s);
      // Strictly better, or equal and closer to the variance-matched scale.
      if (w < best_w || (w == best_w && std::fabs(t) < std::fabs(std::log(best / s0)))) {
        best = s;
        best_w = w;
      }
    }
    s2[k] = best * best;
  }
  return s2;
}

}  // namespace validate
}  // namespace lensing

#endif
