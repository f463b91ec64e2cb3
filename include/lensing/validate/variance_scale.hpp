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

#include <lensing/core/errors.hpp>

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

}  // namespace validate
}  // namespace lensing

#endif
