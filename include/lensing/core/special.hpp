#ifndef LENSING_CORE_SPECIAL_HPP
#define LENSING_CORE_SPECIAL_HPP

/// \file
/// Special functions used in several areas, host and device: the standard
/// normal CDF and its quantile.  The library keeps exactly one copy of each
/// (the samplers' rank normalisation and the training-set priors both call
/// these), so that a coefficient cannot be wrong in one copy and right in
/// another.

#include <lensing/core/math.hpp>

#include <cmath>

namespace lensing {
namespace math {

/// Standard normal CDF, Phi(x) = erfc(-x / sqrt 2) / 2 (accurate in the lower
/// tail, where 1 - erfc would cancel).
KOKKOS_INLINE_FUNCTION double normal_cdf(double x) { return 0.5 * math::erfc(-x * 0.70710678118654752440); }

/// Acklam's rational approximation of the standard normal quantile
/// Phi^-1(p), unrefined: relative error below 1.15e-9 for 0 < p < 1
/// (published bound; tests/core/test_special.cpp checks it on a dense grid
/// down to p = 1e-300 against an independent reference).  Three regions:
/// lower tail p < 0.02425, central, upper tail by symmetry.  Returns -inf at
/// p = 0 and +inf at p = 1; p outside [0, 1] is the caller's error (NaN, from
/// an invalid operation).  Prefer normal_quantile()
/// unless the 1e-9 accuracy is enough and speed matters.
KOKKOS_INLINE_FUNCTION double normal_quantile_acklam(double p) {
  // Coefficients as published by P. J. Acklam (2003).
  constexpr double a0 = -3.969683028665376e+01, a1 = 2.209460984245205e+02, a2 = -2.759285104469687e+02,
                   a3 = 1.383577518672690e+02, a4 = -3.066479806614716e+01, a5 = 2.506628277459239e+00;
  constexpr double b0 = -5.447609879822406e+01, b1 = 1.615858368580409e+02, b2 = -1.556989798598866e+02,
                   b3 = 6.680131188771972e+01, b4 = -1.328068155288572e+01;
  constexpr double c0 = -7.784894002430293e-03, c1 = -3.223964580411365e-01, c2 = -2.400758277161838e+00,
                   c3 = -2.549732539343734e+00, c4 = 4.374664141464968e+00, c5 = 2.938163982698783e+00;
  constexpr double d0 = 7.784695709041462e-03, d1 = 3.224671290700398e-01, d2 = 2.445134137142996e+00,
                   d3 = 3.754408661907416e+00;
  constexpr double p_low = 0.02425;
  if (p == 0) return -HUGE_VAL;
  if (p == 1) return HUGE_VAL;
  if (p < p_low) {
    double const q = math::sqrt(-2 * math::log(p));
    return (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  }
  if (p <= 1 - p_low) {  // also NaN
    double const q = p - 0.5, r = q * q;
    return (((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q /
           (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1);
  }
  // 1 - p is exact here (Sterbenz); log1p keeps the digits of small 1 - p.
  double const q = math::sqrt(-2 * math::log1p(-p));
  return -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
}

/// Standard normal quantile Phi^-1(p): normal_quantile_acklam() refined by
/// one Halley step on Phi(x) - p (cubic convergence: the 1e-9 start leaves
/// ~1e-27, so what remains is the rounding of erf/erfc).  Relative error of x
/// of a few ulp for 1e-300 <= p < 1, p = 1/2 +- 1e-9 included (tested); same
/// values as the unrefined one at 0, 1 and outside [0, 1].
KOKKOS_INLINE_FUNCTION double normal_quantile(double p) {
  // Refine in the lower half, where Phi(x) - p has relative accuracy; the
  // upper half by symmetry (1 - p is exact for p >= 0.5).
  bool const upper = p > 0.5;
  double const s = upper ? 1 - p : p;
  double x = normal_quantile_acklam(s);
  if (math::fabs(x) < 37.5) {  // beyond, exp(x^2/2) would overflow (and s = 0, NaN skip)
    // Residual Phi(x) - s with relative accuracy: near the centre through erf
    // and the exact s - 0.5 (Phi(x) - s would lose the digits of a small x to
    // the rounding of 0.5 + x phi(0)), in the tail through erfc.
    double const e = s > 0.25 ? 0.5 * math::erf(x * 0.70710678118654752440) - (s - 0.5) : normal_cdf(x) - s;
    double const u = e * 2.50662827463100050242 * math::exp(0.5 * x * x);  // e / phi(x)
    x = x - u / (1 + 0.5 * x * u);
  }
  return upper ? -x : x;
}

}  // namespace math
}  // namespace lensing

#endif
