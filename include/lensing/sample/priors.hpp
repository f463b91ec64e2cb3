#ifndef LENSING_SAMPLE_PRIORS_HPP
#define LENSING_SAMPLE_PRIORS_HPP

/// \file
/// Prior distributions as kernel-safe value types: the normalised
/// log-density log p(x) and its derivative d log p / dx.
///
/// Every prior provides `log_density(x)` and `gradient(x)`.  Outside the
/// support log_density returns -inf and gradient returns 0 (no NaN is ever
/// produced from finite input).  Parameters follow Stan's conventions
/// (Stan Functions Reference): scale parameters are standard deviations /
/// scales, Gamma uses shape alpha and *rate* beta.  Constructor-free
/// aggregates: validity of the parameters (scales > 0, lo < hi, ...) is the
/// caller's responsibility; `check()` tests it on the host.

#include <Kokkos_Macros.hpp>
#include <lensing/core/math.hpp>

#include <cmath>

namespace lensing {
namespace prior {

namespace detail {
template <class Scalar>
KOKKOS_INLINE_FUNCTION constexpr Scalar neg_inf() {
  return -Scalar(HUGE_VAL);
}
template <class Scalar>
constexpr Scalar half_log_two_pi = Scalar(0.918938533204672741780329736405617639L);
template <class Scalar>
constexpr Scalar log_two = Scalar(0.693147180559945309417232121458176568L);
}  // namespace detail

/// Normal(mu, sigma): log p = -z^2/2 - log sigma - log(2 pi)/2, z = (x - mu)/sigma.
template <class Scalar>
struct Normal {
  Scalar mu, sigma;
  bool check() const { return std::isfinite(mu) && std::isfinite(sigma) && sigma > 0; }
  KOKKOS_INLINE_FUNCTION Scalar log_density(Scalar x) const {
    Scalar const z = (x - mu) / sigma;
    return -Scalar(0.5) * z * z - math::log(sigma) - detail::half_log_two_pi<Scalar>;
  }
  KOKKOS_INLINE_FUNCTION Scalar gradient(Scalar x) const { return -(x - mu) / (sigma * sigma); }
};

/// Half-normal on x >= 0 with scale sigma: log p = log 2 + Normal(0, sigma).
template <class Scalar>
struct HalfNormal {
  Scalar sigma;
  bool check() const { return std::isfinite(sigma) && sigma > 0; }
  KOKKOS_INLINE_FUNCTION Scalar log_density(Scalar x) const {
    if (x < Scalar(0)) return detail::neg_inf<Scalar>();
    Scalar const z = x / sigma;
    return detail::log_two<Scalar> - Scalar(0.5) * z * z - math::log(sigma) - detail::half_log_two_pi<Scalar>;
  }
  KOKKOS_INLINE_FUNCTION Scalar gradient(Scalar x) const { return x < Scalar(0) ? Scalar(0) : -x / (sigma * sigma); }
};

/// Half-Cauchy on x >= 0 with scale s: p = 2 / (pi s (1 + (x/s)^2)).
template <class Scalar>
struct HalfCauchy {
  Scalar scale;
  bool check() const { return std::isfinite(scale) && scale > 0; }
  KOKKOS_INLINE_FUNCTION Scalar log_density(Scalar x) const {
    if (x < Scalar(0)) return detail::neg_inf<Scalar>();
    Scalar const z = x / scale;
    return detail::log_two<Scalar> - math::log(math::pi<Scalar> * scale) - math::log1p(z * z);
  }
  KOKKOS_INLINE_FUNCTION Scalar gradient(Scalar x) const {
    return x < Scalar(0) ? Scalar(0) : Scalar(-2) * x / (scale * scale + x * x);
  }
};

/// Student-t(nu, mu, sigma):
/// log p = lgamma((nu+1)/2) - lgamma(nu/2) - log(nu pi)/2 - log sigma - (nu+1)/2 log(1 + z^2/nu).
template <class Scalar>
struct StudentT {
  Scalar nu, mu, sigma;
  bool check() const { return std::isfinite(nu) && nu > 0 && std::isfinite(mu) && std::isfinite(sigma) && sigma > 0; }
  KOKKOS_INLINE_FUNCTION Scalar log_density(Scalar x) const {
    Scalar const z = (x - mu) / sigma;
    return math::lgamma(Scalar(0.5) * (nu + 1)) - math::lgamma(Scalar(0.5) * nu) -
           Scalar(0.5) * math::log(nu * math::pi<Scalar>) - math::log(sigma) -
           Scalar(0.5) * (nu + 1) * math::log1p(z * z / nu);
  }
  KOKKOS_INLINE_FUNCTION Scalar gradient(Scalar x) const {
    Scalar const z = (x - mu) / sigma;
    return -(nu + 1) * z / (sigma * (nu + z * z));
  }
};

/// Gamma(alpha, beta) with shape alpha and rate beta on x > 0:
/// log p = alpha log beta - lgamma(alpha) + (alpha - 1) log x - beta x.
template <class Scalar>
struct Gamma {
  Scalar alpha, beta;
  bool check() const { return std::isfinite(alpha) && alpha > 0 && std::isfinite(beta) && beta > 0; }
  KOKKOS_INLINE_FUNCTION Scalar log_density(Scalar x) const {
    if (!(x > Scalar(0))) return detail::neg_inf<Scalar>();
    return alpha * math::log(beta) - math::lgamma(alpha) + (alpha - 1) * math::log(x) - beta * x;
  }
  KOKKOS_INLINE_FUNCTION Scalar gradient(Scalar x) const { return x > Scalar(0) ? (alpha - 1) / x - beta : Scalar(0); }
};

/// Beta(a, b) on 0 < x < 1: log p = (a-1) log x + (b-1) log(1-x) - log B(a, b).
template <class Scalar>
struct Beta {
  Scalar a, b;
  bool check() const { return std::isfinite(a) && a > 0 && std::isfinite(b) && b > 0; }
  KOKKOS_INLINE_FUNCTION Scalar log_density(Scalar x) const {
    if (!(x > Scalar(0)) || !(x < Scalar(1))) return detail::neg_inf<Scalar>();
    return (a - 1) * math::log(x) + (b - 1) * math::log1p(-x) - math::lgamma(a) - math::lgamma(b) + math::lgamma(a + b);
  }
  KOKKOS_INLINE_FUNCTION Scalar gradient(Scalar x) const {
    if (!(x > Scalar(0)) || !(x < Scalar(1))) return Scalar(0);
    return (a - 1) / x - (b - 1) / (Scalar(1) - x);
  }
};

/// Uniform(lo, hi): log p = -log(hi - lo) on [lo, hi].
template <class Scalar>
struct Uniform {
  Scalar lo, hi;
  bool check() const { return std::isfinite(lo) && std::isfinite(hi) && lo < hi; }
  KOKKOS_INLINE_FUNCTION Scalar log_density(Scalar x) const {
    if (x < lo || x > hi) return detail::neg_inf<Scalar>();
    return -math::log(hi - lo);
  }
  KOKKOS_INLINE_FUNCTION Scalar gradient(Scalar) const { return Scalar(0); }
};

/// Log-uniform on [lo, hi] (0 < lo < hi): p = 1 / (x log(hi/lo)).
template <class Scalar>
struct LogUniform {
  Scalar lo, hi;
  bool check() const { return std::isfinite(lo) && std::isfinite(hi) && lo > 0 && lo < hi; }
  KOKKOS_INLINE_FUNCTION Scalar log_density(Scalar x) const {
    if (x < lo || x > hi) return detail::neg_inf<Scalar>();
    return -math::log(x) - math::log(math::log(hi / lo));
  }
  KOKKOS_INLINE_FUNCTION Scalar gradient(Scalar x) const { return (x < lo || x > hi) ? Scalar(0) : -Scalar(1) / x; }
};

}  // namespace prior
}  // namespace lensing

#endif  // LENSING_SAMPLE_PRIORS_HPP
