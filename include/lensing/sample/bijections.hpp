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

//----------------------------------------------------------------------------
/// Unit K-simplex x (x_k > 0, sum_k x_k = 1) from u in R^{K-1} by stick
/// breaking, as Stan defines it (Stan Reference Manual, "Unit simplex";
/// Betancourt 2012, "Cruising the simplex", arXiv:1010.3436):
///   a_k = u_k - log(K - 1 - k),  z_k = sigmoid(a_k),  s_0 = 1,
///   x_k = s_k z_k,  s_{k+1} = s_k (1 - z_k)   (k = 0 .. K-2),   x_{K-1} = s_{K-1}.
/// u = 0 maps to the centre x_k = 1/K.  Jacobian of u -> (x_0 .. x_{K-2})
/// (lower triangular):
///   log|det| = sum_{k<K-1} [log z_k + log(1 - z_k) + log s_k],
///   d log|det| / du_j = 1 - (K - j) z_j.
/// pullback (gradient of xbar . x(u) + log|det|):
///   u_bar_j = xbar_j x_j (1 - z_j) - z_j sum_{k>j} xbar_k x_k + 1 - (K - j) z_j.
/// Computed in log space (log s_k = -sum_{j<k} softplus(a_j)), so every
/// finite u gives finite log x and log-Jacobian (x_k may underflow to 0 far
/// out; log_constrain() stays exact there).  Arrays are raw pointers: u and
/// u_bar of length K - 1, x and x_bar of length K (kernel-safe; u_bar must
/// not alias u).  Requires K >= 2.
template <class Scalar>
struct Simplex {
  using scalar_type = Scalar;
  int k;  ///< number of components K (>= 2); the unconstrained dimension is K - 1
  KOKKOS_INLINE_FUNCTION int unconstrained_dimension() const { return k - 1; }
  /// a_j = u_j - log(K - 1 - j).
  KOKKOS_INLINE_FUNCTION Scalar offset_logit(Scalar const* u, int j) const {
    return u[j] - math::log(Scalar(k - 1 - j));
  }
  /// log x_k (length K), without underflow.
  KOKKOS_INLINE_FUNCTION void log_constrain(Scalar const* u, Scalar* log_x) const {
    Scalar log_stick = 0;
    for (int j = 0; j + 1 < k; ++j) {
      Scalar const a = offset_logit(u, j);
      log_x[j] = log_stick - detail::softplus(-a);
      log_stick -= detail::softplus(a);
    }
    log_x[k - 1] = log_stick;
  }
  KOKKOS_INLINE_FUNCTION void constrain(Scalar const* u, Scalar* x) const {
    log_constrain(u, x);
    for (int j = 0; j < k; ++j)
      x[j] = math::exp(x[j]);
  }
  /// Requires x_j > 0 (the sum is not checked: u is computed from ratios
  /// x_j / sum_{i>j} x_i, so a scaled simplex maps to the same u).
  KOKKOS_INLINE_FUNCTION void unconstrain(Scalar const* x, Scalar* u) const {
    Scalar tail = x[k - 1];  // sum_{i>j} x_i
    for (int j = k - 2; j >= 0; --j) {
      u[j] = math::log(x[j]) - math::log(tail) + math::log(Scalar(k - 1 - j));
      tail += x[j];
    }
  }
  KOKKOS_INLINE_FUNCTION Scalar log_jacobian(Scalar const* u) const {
    Scalar s = 0, log_stick = 0;
    for (int j = 0; j + 1 < k; ++j) {
      Scalar const a = offset_logit(u, j);
      Scalar const sp = detail::softplus(a);
      s += log_stick - detail::softplus(-a) - sp;
      log_stick -= sp;
    }
    return s;
  }
  /// g_j = d log|det| / du_j (length K - 1).
  KOKKOS_INLINE_FUNCTION void log_jacobian_gradient(Scalar const* u, Scalar* g) const {
    for (int j = 0; j + 1 < k; ++j)
      g[j] = Scalar(1) - Scalar(k - j) * detail::sigmoid(offset_logit(u, j));
  }
  /// u_bar = (dx/du)^T x_bar + grad_u log|det| (x_bar of length K, u_bar of length K - 1).
  KOKKOS_INLINE_FUNCTION void pullback(Scalar const* u, Scalar const* x_bar, Scalar* u_bar) const {
    // Forward pass: u_bar_j holds log s_j; then backward with tail = sum_{i>j} xbar_i x_i.
    Scalar log_stick = 0;
    for (int j = 0; j + 1 < k; ++j) {
      u_bar[j] = log_stick;
      log_stick -= detail::softplus(offset_logit(u, j));
    }
    Scalar tail = x_bar[k - 1] * math::exp(log_stick);
    for (int j = k - 2; j >= 0; --j) {
      Scalar const a = offset_logit(u, j);
      Scalar const z = detail::sigmoid(a);
      Scalar const log_xj = u_bar[j] - detail::softplus(-a);
      Scalar const xj = math::exp(log_xj), xj_one_minus_z = math::exp(log_xj - detail::softplus(a));
      u_bar[j] = x_bar[j] * xj_one_minus_z - z * tail + Scalar(1) - Scalar(k - j) * z;
      tail += x_bar[j] * xj;
    }
  }
};

}  // namespace lensing

#endif  // LENSING_SAMPLE_BIJECTIONS_HPP
