#ifndef LENSING_SAMPLE_BIJECTIONS_HPP
#define LENSING_SAMPLE_BIJECTIONS_HPP

/// \file
/// Bijections from the unconstrained space R (or R^n) to constrained
/// parameters, with their log-Jacobians and gradients, as Stan defines them
/// (Stan Reference Manual, "Constraint transforms").
///
/// Samplers and optimizers work on u in R^d; a model with a constrained
/// parameter x = f(u) evaluates log p(x) + log|f'(u)| and its gradient
///   d/du [log p(f(u)) + log|f'(u)|] = f'(u) dlogp/dx + d/du log|f'(u)|,
/// which `pullback(u, dlogp_dx)` returns.  Every scalar bijection provides
///   constrain(u) -> x,  unconstrain(x) -> u,  derivative(u) = dx/du,
///   log_jacobian(u) = log|dx/du|,  log_jacobian_gradient(u),  pullback(u, x_bar).
/// All functions are kernel-safe value-type methods (trivially copyable).
/// Valid domain: every finite u; constrain() saturates at the bounds in
/// floating point when |u| is large (the log-Jacobian stays finite).

#include <Kokkos_Macros.hpp>
#include <lensing/core/math.hpp>

namespace lensing {

namespace detail {
/// log(1 + exp(z)) without overflow.
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar softplus(Scalar z) {
  return math::max(z, Scalar(0)) + math::log1p(math::exp(-math::fabs(z)));
}
/// 1 / (1 + exp(-z)) without overflow.
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar sigmoid(Scalar z) {
  if (z >= Scalar(0)) return Scalar(1) / (Scalar(1) + math::exp(-z));
  Scalar const e = math::exp(z);
  return e / (Scalar(1) + e);
}
}  // namespace detail

//----------------------------------------------------------------------------
/// x = lo + exp(u) in (lo, inf); log|dx/du| = u.  `LowerBound<S>{0}` is the
/// log transform of a positive parameter.
template <class Scalar>
struct LowerBound {
  using scalar_type = Scalar;
  Scalar lo;
  KOKKOS_INLINE_FUNCTION Scalar constrain(Scalar u) const { return lo + math::exp(u); }
  KOKKOS_INLINE_FUNCTION Scalar unconstrain(Scalar x) const { return math::log(x - lo); }
  KOKKOS_INLINE_FUNCTION Scalar derivative(Scalar u) const { return math::exp(u); }
  KOKKOS_INLINE_FUNCTION Scalar log_jacobian(Scalar u) const { return u; }
  KOKKOS_INLINE_FUNCTION Scalar log_jacobian_gradient(Scalar) const { return Scalar(1); }
  KOKKOS_INLINE_FUNCTION Scalar pullback(Scalar u, Scalar x_bar) const { return x_bar * math::exp(u) + Scalar(1); }
};

/// x = exp(u) > 0 (log transform).
template <class Scalar>
struct Positive : LowerBound<Scalar> {
  KOKKOS_INLINE_FUNCTION constexpr Positive() : LowerBound<Scalar>{Scalar(0)} {}
};

/// x = hi - exp(u) in (-inf, hi); log|dx/du| = u.
template <class Scalar>
struct UpperBound {
  using scalar_type = Scalar;
  Scalar hi;
  KOKKOS_INLINE_FUNCTION Scalar constrain(Scalar u) const { return hi - math::exp(u); }
  KOKKOS_INLINE_FUNCTION Scalar unconstrain(Scalar x) const { return math::log(hi - x); }
  KOKKOS_INLINE_FUNCTION Scalar derivative(Scalar u) const { return -math::exp(u); }
  KOKKOS_INLINE_FUNCTION Scalar log_jacobian(Scalar u) const { return u; }
  KOKKOS_INLINE_FUNCTION Scalar log_jacobian_gradient(Scalar) const { return Scalar(1); }
  KOKKOS_INLINE_FUNCTION Scalar pullback(Scalar u, Scalar x_bar) const { return -x_bar * math::exp(u) + Scalar(1); }
};

/// x = lo + (hi - lo) sigmoid(u) in (lo, hi) (scaled logit transform);
/// log|dx/du| = log(hi - lo) - softplus(-u) - softplus(u),
/// d/du log|dx/du| = 1 - 2 sigmoid(u).  Requires lo < hi.
template <class Scalar>
struct Bounded {
  using scalar_type = Scalar;
  Scalar lo, hi;
  KOKKOS_INLINE_FUNCTION Scalar constrain(Scalar u) const { return lo + (hi - lo) * detail::sigmoid(u); }
  KOKKOS_INLINE_FUNCTION Scalar unconstrain(Scalar x) const {
    Scalar const t = (x - lo) / (hi - lo);
    return math::log(t) - math::log1p(-t);
  }
  KOKKOS_INLINE_FUNCTION Scalar derivative(Scalar u) const {
    Scalar const s = detail::sigmoid(u);
    return (hi - lo) * s * (Scalar(1) - s);
  }
  KOKKOS_INLINE_FUNCTION Scalar log_jacobian(Scalar u) const {
    return math::log(hi - lo) - detail::softplus(-u) - detail::softplus(u);
  }
  KOKKOS_INLINE_FUNCTION Scalar log_jacobian_gradient(Scalar u) const {
    return Scalar(1) - Scalar(2) * detail::sigmoid(u);
  }
  KOKKOS_INLINE_FUNCTION Scalar pullback(Scalar u, Scalar x_bar) const {
    return x_bar * derivative(u) + log_jacobian_gradient(u);
  }
};

/// x = sigmoid(u) in (0, 1) (logit transform).
template <class Scalar>
struct UnitInterval : Bounded<Scalar> {
  KOKKOS_INLINE_FUNCTION constexpr UnitInterval() : Bounded<Scalar>{Scalar(0), Scalar(1)} {}
};

//----------------------------------------------------------------------------
/// Ordered vector x_0 < x_1 < ... < x_{n-1} from u in R^n:
///   x_0 = u_0,  x_k = x_{k-1} + exp(u_k)   (k >= 1),
///   log|det dx/du| = sum_{k>=1} u_k.
/// pullback: u_bar_0 = sum_j x_bar_j,
///           u_bar_k = exp(u_k) sum_{j>=k} x_bar_j + 1   (k >= 1).
/// Arrays are raw pointers of length n (kernel-safe).
template <class Scalar>
struct Ordered {
  using scalar_type = Scalar;
  int n;
  KOKKOS_INLINE_FUNCTION void constrain(Scalar const* u, Scalar* x) const {
    if (n < 1) return;
    x[0] = u[0];
    for (int k = 1; k < n; ++k)
      x[k] = x[k - 1] + math::exp(u[k]);
  }
  /// Requires strictly increasing x.
  KOKKOS_INLINE_FUNCTION void unconstrain(Scalar const* x, Scalar* u) const {
    if (n < 1) return;
    u[0] = x[0];
    for (int k = 1; k < n; ++k)
      u[k] = math::log(x[k] - x[k - 1]);
  }
  KOKKOS_INLINE_FUNCTION Scalar log_jacobian(Scalar const* u) const {
    Scalar s = 0;
    for (int k = 1; k < n; ++k)
      s += u[k];
    return s;
  }
  /// u_bar = (dx/du)^T x_bar + grad_u log|det dx/du|.
  KOKKOS_INLINE_FUNCTION void pullback(Scalar const* u, Scalar const* x_bar, Scalar* u_bar) const {
    Scalar tail = 0;
    for (int k = n - 1; k >= 1; --k) {
      tail += x_bar[k];
      u_bar[k] = math::exp(u[k]) * tail + Scalar(1);
    }
    if (n >= 1) u_bar[0] = tail + x_bar[0];
  }
};

}  // namespace lensing

#endif  // LENSING_SAMPLE_BIJECTIONS_HPP
