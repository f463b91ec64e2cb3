#ifndef LENSING_CORE_SPECIAL_HPP
#define LENSING_CORE_SPECIAL_HPP

/// \file
/// Special functions used in several areas, host and device: the standard
/// normal CDF and its quantile, the regularised lower incomplete gamma
/// function (series) and the upper one Q(a, x) (series or continued fraction),
/// and the Sérsic half-light constant b_n.  The library
/// keeps exactly one copy of each (the samplers' rank normalisation and the
/// training-set priors both call the quantile; the light and convergence
/// profiles and the simulator call b_n; the chi-square p-value calls Q), so that a coefficient cannot be
/// wrong in one copy and right in another.

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

/// Regularised lower incomplete gamma function P(a, x) = gamma(a, x) / Gamma(a)
/// by its power series (Abramowitz & Stegun 6.5.29),
///   P(a, x) = x^a e^-x / Gamma(a) sum_k x^k / (a (a + 1) ... (a + k)),
/// for a > 0 and 0 <= x <= a + 40, where it converges in < 200 terms for
/// a <= 20 and in O(sqrt a) terms for large a (the sum stops when a term is
/// below 1e-17 of it, at most 10000 terms).  Returns 0 for x <= 0 (and NaN x).
/// Double precision, host and device.
KOKKOS_INLINE_FUNCTION double gamma_p_series(double a, double x) {
  if (!(x > 0)) return 0;
  double term = 1 / a, sum = term;
  for (int k = 1; k < 10000; ++k) {
    term *= x / (a + k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum * math::exp(-x + a * math::log(x) - math::lgamma(a));
}

/// Regularised upper incomplete gamma function Q(a, x) = 1 - P(a, x), for
/// a > 0 and x >= 0: 1 - gamma_p_series(a, x) for x < a + 1 (where Q is not
/// small, so the subtraction loses nothing), otherwise the Legendre continued
/// fraction (A&S 6.5.31) by the modified Lentz algorithm, which keeps the
/// relative accuracy of a small Q in the tail.  Q(a, 0) = 1, Q(a, inf) = 0;
/// result clamped to [0, 1]; NaN x is the caller's error.  No argument checks (kernel-safe): the
/// chi-square p-value of validate/statistics.hpp checks and calls it.
KOKKOS_INLINE_FUNCTION double gamma_q(double a, double x) {
  if (x == 0) return 1;
  if (x > 1.7976931348623157e308) return 0;  // +inf
  if (x < a + 1) {
    double const q = 1 - gamma_p_series(a, x);
    return q < 0 ? 0 : q;
  }
  // Q = x^a e^-x / Gamma(a) / (x + 1 - a - 1 (1 - a) / (x + 3 - a - 2 (2 - a) / (x + 5 - a - ...))).
  double const tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    double const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (math::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (math::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    double const delta = d * c;
    h *= delta;
    if (math::fabs(delta - 1) < 1e-16) break;
  }
  double const q = math::exp(a * math::log(x) - x - math::lgamma(a)) * h;
  return q > 1 ? 1 : q;
}

/// Sérsic b_n by the linear fit b_n = 1.9992 n - 0.3271 (Capaccioli 1989),
/// floored at 1e-5 (reached for n < 0.1637; a NaN n also gives the floor).
/// This is the approximation lenstronomy uses, so the Sérsic light profiles
/// (sources/sersic.hpp) and the Sérsic convergence (profiles/sersic_kappa.hpp)
/// use it too: their amplitudes mean the same as there and their values
/// agree with lenstronomy's.  It is not the half-light constant: the error
/// against the exact b_n of sersic_b() is at most 0.021 absolute (3.0e-2
/// relative, at n = 0.5) for 0.5 <= n <= 10 and 3.8e-3 relative for
/// 1 <= n <= 10 (tests/core/test_special.cpp).  Scalar: float or double.
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar sersic_b_lenstronomy(Scalar n) {
  Scalar const b = Scalar(1.9992) * n - Scalar(0.3271);
  return select(b > Scalar(1e-5), b, Scalar(1e-5));
}

/// d sersic_b_lenstronomy(n) / dn: 1.9992 above the floor, 0 on it.
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar sersic_b_lenstronomy_dn(Scalar n) {
  return Scalar(1.9992) * n - Scalar(0.3271) > Scalar(1e-5) ? Scalar(1.9992) : Scalar(0);
}

/// Sérsic b_n by the asymptotic series of Ciotti & Bertin (1999, A&A 352,
/// 447, eq. 18) to n^-4:
///   b_n = 2n - 1/3 + 4/(405 n) + 46/(25515 n^2) + 131/(1148175 n^3)
///         - 2194697/(30690717750 n^4).
/// Relative error against the exact half-light b_n at most 3.7e-4 for
/// 0.5 <= n <= 10 (largest at n = 0.5) and 2.5e-5 for 1 <= n <= 10 (tested).
/// Kept as the starting point of sersic_b(); use that one for the half-light
/// constant itself.
KOKKOS_INLINE_FUNCTION double sersic_b_ciotti_bertin(double n) {
  return 2 * n - 1.0 / 3 + 4 / (405 * n) + 46 / (25515 * n * n) + 131 / (1148175 * n * n * n) -
         2194697 / (30690717750 * n * n * n * n);
}

/// Sérsic b_n such that the effective radius R_e encloses half of the
/// (untruncated) light, P(2n, b_n) = 1/2: sersic_b_ciotti_bertin(n) refined
/// by three Newton steps on P with dP/dx = x^(a-1) e^-x / Gamma(a), a = 2n
/// (quadratic convergence from the 4e-4 start); |P(2n, b_n) - 1/2| < 1e-12
/// for 0.5 <= n <= 8 (tested).  The simulator's galaxies use it
/// (simulate/galaxies.hpp): their R_e is the half-light radius and their
/// fluxes are exact.  Double precision, host and device.
KOKKOS_INLINE_FUNCTION double sersic_b(double n) {
  double b = sersic_b_ciotti_bertin(n);
  double const a = 2 * n, lg = math::lgamma(a);
  for (int it = 0; it < 3; ++it) {
    double const f = gamma_p_series(a, b) - 0.5;
    double const df = math::exp((a - 1) * math::log(b) - b - lg);
    b -= f / df;
  }
  return b;
}

}  // namespace math
}  // namespace lensing

#endif
