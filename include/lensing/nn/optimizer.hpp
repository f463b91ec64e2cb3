#ifndef LENSING_NN_OPTIMIZER_HPP
#define LENSING_NN_OPTIMIZER_HPP

/// \file
/// First-order optimizers over a flat parameter vector (PyTorch's update
/// rules, so hyper-parameters transfer), and gradient clipping.

#include <lensing/core/adam_rule.hpp>
#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace lensing {
namespace nn {

namespace detail {
template <class V>
void check_step(V const& p, V const& g, long n, char const* where) {
  check_argument(long(p.extent(0)) == n && long(g.extent(0)) == n, where,
                 "parameters (" + std::to_string(p.extent(0)) + ") and gradients (" + std::to_string(g.extent(0)) +
                     ") must both have " + std::to_string(n) + " elements");
}
}  // namespace detail

/// Stochastic gradient descent with momentum (PyTorch torch.optim.SGD,
/// dampening 0): g ← g + λ θ; v ← μ v + g (v₀ = 0); θ ← θ − η v
/// (Nesterov: θ ← θ − η (g + μ v)).
template <class Scalar, class MemorySpace>
class SGD {
 public:
  using vector_type = ParamVector<Scalar, MemorySpace>;
  SGD(long n, double lr, double momentum = 0, double weight_decay = 0, bool nesterov = false)
      : n_(n), lr_(lr), mu_(momentum), wd_(weight_decay), nesterov_(nesterov), v_("lensing::nn::SGD::velocity", n) {
    char const* where = "lensing::nn::SGD";
    check_count(n, 0, where, "n");
    check_positive(lr, where, "lr");
    check_in_closed_open(momentum, 0.0, 1.0, where, "momentum");
    check_nonnegative(weight_decay, where, "weight_decay");
  }
  void set_lr(double lr) {
    check_positive(lr, "lensing::nn::SGD::set_lr", "lr");
    lr_ = lr;
  }
  double lr() const { return lr_; }
  /// Steps taken so far, and the optimizer's state vectors (the velocity),
  /// for training checkpoints (train.hpp).
  long steps() const { return t_; }
  void set_steps(long t) {
    check_count(t, 0, "lensing::nn::SGD::set_steps", "t");
    t_ = t;
  }
  std::vector<vector_type> state_vectors() const { return {v_}; }
  template <class ExecutionSpace>
  void step(ExecutionSpace const& space, vector_type const& params, vector_type const& grads) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>, "lensing::nn::SGD::step: inaccessible views");
    detail::check_step(params, grads, n_, "lensing::nn::SGD::step");
    ++t_;
    Scalar* p = params.data();
    Scalar const* g = grads.data();
    Scalar* v = v_.data();
    Scalar const lr = Scalar(lr_), mu = Scalar(mu_), wd = Scalar(wd_);
    bool const nes = nesterov_;
    Kokkos::parallel_for(
        "lensing::nn::SGD::step", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n_),
        KOKKOS_LAMBDA(long i) {
          Scalar const gi = g[i] + wd * p[i];
          Scalar const vi = mu * v[i] + gi;
          v[i] = vi;
          p[i] -= lr * (nes ? gi + mu * vi : vi);
        });
  }

 private:
  long n_;
  double lr_, mu_, wd_;
  bool nesterov_;
  long t_ = 0;
  vector_type v_;
};

/// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), PyTorch's rules,
/// through the library's one update rule (core/adam_rule.hpp, AdamRule):
///
/// Step t: [AdamW: θ ← θ (1 − η λ)] [Adam: g ← g + λ θ];
/// m ← β₁ m + (1−β₁) g; v ← β₂ v + (1−β₂) g²;
/// θ ← θ − η m̂/(√v̂ + ε), m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
template <class Scalar, class MemorySpace>
class Adam {
 public:
  using vector_type = ParamVector<Scalar, MemorySpace>;
  Adam(long n, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0,
       bool decoupled = false)
      : n_(n),
        lr_(lr),
        b1_(beta1),
        b2_(beta2),
        eps_(eps),
        wd_(weight_decay),
        decoupled_(decoupled),
        m_("lensing::nn::Adam::m", n),
        v_("lensing::nn::Adam::v", n) {
    char const* where = "lensing::nn::Adam";
    check_count(n, 0, where, "n");
    check_positive(lr, where, "lr");
    check_in_closed_open(beta1, 0.0, 1.0, where, "beta1");
    check_in_closed_open(beta2, 0.0, 1.0, where, "beta2");
    check_positive(eps, where, "eps");
    check_nonnegative(weight_decay, where, "weight_decay");
  }
  void set_lr(double lr) {
    check_positive(lr, "lensing::nn::Adam::set_lr", "lr");
    lr_ = lr;
  }
  double lr() const { return lr_; }
  long steps() const { return t_; }
  /// Set the step count t (bias corrections), and the state vectors (m, v),
  /// for training checkpoints (train.hpp).
  void set_steps(long t) {
    check_count(t, 0, "lensing::nn::Adam::set_steps", "t");
    t_ = t;
  }
  std::vector<vector_type> state_vectors() const { return {m_, v_}; }
  template <class ExecutionSpace>
  void step(ExecutionSpace const& space, vector_type const& params, vector_type const& grads) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>, "lensing::nn::Adam::step: inaccessible views");
    detail::check_step(params, grads, n_, "lensing::nn::Adam::step");
    ++t_;
    Scalar* p = params.data();
    Scalar const* g = grads.data();
    Scalar* m = m_.data();
    Scalar* v = v_.data();
    auto const rule = AdamRule<Scalar>::at_step(t_, lr_, b1_, b2_, eps_, wd_, decoupled_);
    Kokkos::parallel_for(
        "lensing::nn::Adam::step", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n_),
        KOKKOS_LAMBDA(long i) { rule.update(p[i], g[i], m[i], v[i]); });
  }

 private:
  long n_;
  double lr_, b1_, b2_, eps_, wd_;
  bool decoupled_;
  long t_ = 0;
  vector_type m_, v_;
};

/// AdamW: Adam with decoupled weight decay (PyTorch default λ = 0.01).
template <class Scalar, class MemorySpace>
class AdamW : public Adam<Scalar, MemorySpace> {
 public:
  AdamW(long n, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weight_decay = 0.01)
      : Adam<Scalar, MemorySpace>(n, lr, beta1, beta2, eps, weight_decay, true) {}
};

/// Scale `grads` so that its Euclidean norm is at most max_norm; returns the norm before clipping.
template <class ExecutionSpace, class Scalar, class MemorySpace>
double clip_grad_norm(ExecutionSpace const& space, ParamVector<Scalar, MemorySpace> const& grads, double max_norm) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>, "lensing::nn::clip_grad_norm: inaccessible view");
  check_positive(max_norm, "lensing::nn::clip_grad_norm", "max_norm");
  Scalar* g = grads.data();
  double ss = 0;
  Kokkos::parallel_reduce(
      "lensing::nn::clip_grad_norm::norm",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(grads.extent(0))),
      KOKKOS_LAMBDA(long i, double& acc) { acc += double(g[i]) * double(g[i]); }, ss);
  double const norm = std::sqrt(ss);
  if (norm > max_norm) {
    Scalar const s = Scalar(max_norm / norm);
    Kokkos::parallel_for(
        "lensing::nn::clip_grad_norm::scale",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(grads.extent(0))),
        KOKKOS_LAMBDA(long i) { g[i] *= s; });
  }
  return norm;
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_OPTIMIZER_HPP
