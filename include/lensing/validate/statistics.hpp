#ifndef LENSING_VALIDATE_STATISTICS_HPP
#define LENSING_VALIDATE_STATISTICS_HPP

/// \file
/// Small host statistics for the calibration tools: the chi-square survival
/// function (p-value) through the regularised upper incomplete gamma function
///   Q(a, x) = Gamma(a, x) / Gamma(a),   p = Q(dof / 2, chi2 / 2),
/// evaluated by its power series for x < a + 1 and by the Legendre continued
/// fraction (modified Lentz algorithm) otherwise (Abramowitz & Stegun 6.5.29,
/// 6.5.31); the Kolmogorov-Smirnov distance of a sample to U(0, 1) and the
/// asymptotic Kolmogorov survival function
///   P(sqrt(n) D > t) = 2 sum_k (-1)^(k-1) exp(-2 k^2 t^2).

#include <lensing/core/errors.hpp>
#include <lensing/core/special.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace lensing {
namespace validate {

/// Regularised upper incomplete gamma function Q(a, x), a > 0, x >= 0
/// (math::gamma_q of core/special.hpp, with the arguments checked).
inline double gamma_q(double a, double x) {
  constexpr char const* where = "lensing::validate::gamma_q";
  check_positive(a, where, "a");
  // NaN first: an ordered comparison with NaN raises FE_INVALID.
  check_argument(!std::isnan(x) && x >= 0, where, "x must be >= 0");
  return math::gamma_q(a, x);
}

/// Upper tail probability of the chi-square distribution with `dof` degrees of freedom.
inline double chi_square_p_value(double chi2, double dof) {
  check_positive(dof, "lensing::validate::chi_square_p_value", "dof");
  check_nonnegative(chi2, "lensing::validate::chi_square_p_value", "chi2");
  return gamma_q(0.5 * dof, 0.5 * chi2);
}

/// sup_x |F_n(x) - x|: Kolmogorov-Smirnov distance of values in [0, 1] to U(0, 1).
inline double ks_uniform_distance(std::vector<double> u) {
  check_argument(!u.empty(), "lensing::validate::ks_uniform_distance", "no values");
  for (double v : u)
    check_argument(std::isfinite(v), "lensing::validate::ks_uniform_distance", "values must be finite");
  std::sort(u.begin(), u.end());
  double const n = double(u.size());
  double dmax = 0;
  for (std::size_t i = 0; i < u.size(); ++i)
    dmax = std::max({dmax, (i + 1) / n - u[i], u[i] - i / n});
  return dmax;
}

/// Asymptotic P(sqrt(n) D > t) of the Kolmogorov distribution.
inline double kolmogorov_p_value(double t) {
  if (!(t > 0)) return 1;
  double s = 0;
  for (int k = 1; k <= 100; ++k) {
    double const term = std::exp(-2.0 * k * k * t * t);
    s += (k % 2 ? 2 : -2) * term;
    if (term < 1e-18) break;
  }
  return std::min(1.0, std::max(0.0, s));
}

}  // namespace validate
}  // namespace lensing

#endif  // LENSING_VALIDATE_STATISTICS_HPP
