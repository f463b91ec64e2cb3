// The chi^2 quantile the example programs use for their Mahalanobis-distance
// checks (is the truth inside the posterior's p-level ellipsoid?).
#ifndef LENSING_EXAMPLES_COMMON_CHI2_HPP
#define LENSING_EXAMPLES_COMMON_CHI2_HPP

#include <lensing/core/special.hpp>

namespace examples {

/// chi^2_d quantile p by bisection on the regularised gamma function
/// (P(chi^2_d <= x) = 1 - Q(d/2, x/2)); d >= 1, 0 < p < 1.
inline double chi2_quantile(int d, double p) {
  double lo = 0, hi = 10.0 * d + 100;
  for (int it = 0; it < 200; ++it) {
    double const mid = 0.5 * (lo + hi);
    (1 - lensing::math::gamma_q(0.5 * d, 0.5 * mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace examples

#endif  // LENSING_EXAMPLES_COMMON_CHI2_HPP
