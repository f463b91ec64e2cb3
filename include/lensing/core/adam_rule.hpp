#ifndef LENSING_CORE_ADAM_RULE_HPP
#define LENSING_CORE_ADAM_RULE_HPP

/// \file
/// The library's one Adam update rule (Kingma & Ba 2015, arXiv:1412.6980,
/// Algorithm 1; decoupled weight decay: Loshchilov & Hutter 2019, "AdamW"),
/// per element, usable in a kernel over Views (nn::Adam, nn::AdamW of
/// nn/optimizer.hpp) and in a host loop (AdamState below, used by
/// lensing::adam of optim/adam.hpp and by the variational fits of
/// sample/variational.hpp).  Step t >= 1, learning rate η_t, gradient g of the
/// objective being minimised, weight decay λ:
///
///   [decoupled: θ ← θ (1 − η_t λ)]   [coupled (L2): g ← g + λ θ]
///   m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²,
///   θ ← θ − η_t m̂ / (√v̂ + ε),   m̂ = m / (1 − β₁ᵗ),   v̂ = v / (1 − β₂ᵗ).
///
/// Conventions, fixed here once (both former copies already agreed on them,
/// as do the paper and PyTorch): ε is added outside the square root, to √v̂;
/// the bias corrections divide m and v separately (not folded into the step
/// size); 1 − βᵗ is computed in double from the step count with std::pow, so a
/// checkpoint restores it from t alone, then rounded to Scalar.

#include <lensing/core/errors.hpp>
#include <lensing/core/lr_schedule.hpp>
#include <lensing/core/math.hpp>

#include <cmath>
#include <vector>

namespace lensing {

/// Coefficients of one Adam step, and the per-element update (kernel-safe,
/// trivially copyable: capture it by value in a kernel).
template <class Scalar>
struct AdamRule {
  Scalar lr = 0, beta1 = 0, beta2 = 0, epsilon = 0, weight_decay = 0;
  Scalar bias1 = 1, bias2 = 1;  ///< 1 − β₁ᵗ and 1 − β₂ᵗ
  bool decoupled = false;       ///< AdamW's decay of θ (true) or L2 added to g (false)

  /// The coefficients of step t (>= 1) at learning rate lr (host; the
  /// caller has checked the hyper-parameters).
  static AdamRule at_step(long long t, double lr, double beta1, double beta2, double epsilon, double weight_decay = 0,
                          bool decoupled = false) {
    AdamRule r;
    r.lr = Scalar(lr);
    r.beta1 = Scalar(beta1);
    r.beta2 = Scalar(beta2);
    r.epsilon = Scalar(epsilon);
    r.weight_decay = Scalar(weight_decay);
    r.bias1 = Scalar(1.0 - std::pow(beta1, double(t)));
    r.bias2 = Scalar(1.0 - std::pow(beta2, double(t)));
    r.decoupled = decoupled;
    return r;
  }

  /// Update one parameter θ with its gradient g and its moments m, v.
  KOKKOS_INLINE_FUNCTION void update(Scalar& theta, Scalar g, Scalar& m, Scalar& v) const {
    Scalar th = theta;
    if (decoupled)
      th *= Scalar(1) - lr * weight_decay;
    else
      g += weight_decay * th;
    Scalar const mi = beta1 * m + (Scalar(1) - beta1) * g;
    Scalar const vi = beta2 * v + (Scalar(1) - beta2) * g * g;
    m = mi;
    v = vi;
    theta = th - lr * (mi / bias1) / (lensing::math::sqrt(vi / bias2) + epsilon);
  }
};

/// Hyper-parameters of the host Adam (lensing::adam, fit_variational).  The
/// learning rate decays as lr_t = learning_rate / (1 + t / decay_steps) when
/// decay_steps > 0 (LRSchedule::inverse_time over steps t = 1, 2, ...).
struct AdamOptions {
  double learning_rate = 1e-2;
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
  double decay_steps = 0;
};

namespace detail {
inline void check_adam_options(AdamOptions const& a, char const* where) {
  check_positive(a.learning_rate, where, "learning_rate");
  check_in_closed_open(a.beta1, 0.0, 1.0, where, "beta1");
  check_in_closed_open(a.beta2, 0.0, 1.0, where, "beta2");
  check_positive(a.epsilon, where, "epsilon");
  check_nonnegative(a.decay_steps, where, "decay_steps");
}
}  // namespace detail

/// Adam moment estimates for n parameters (host, double), stepping with
/// AdamRule at the learning rate of AdamOptions' schedule.
class AdamState {
 public:
  /// Throws std::invalid_argument for bad options.
  AdamState(int n, AdamOptions const& options)
      : opt_(options), schedule_(schedule_of(options)), m_(std::size_t(n), 0.0), v_(std::size_t(n), 0.0) {}
  /// One descent step for the gradient g of a minimised objective (x and g hold n values).
  void step(double* x, double const* g) {
    ++t_;
    auto const rule = AdamRule<double>::at_step(t_, schedule_.lr(long(t_)), opt_.beta1, opt_.beta2, opt_.epsilon);
    for (std::size_t i = 0; i < m_.size(); ++i)
      rule.update(x[i], g[i], m_[i], v_[i]);
  }
  long long steps() const { return t_; }

 private:
  static LRSchedule schedule_of(AdamOptions const& o) {
    detail::check_adam_options(o, "lensing::AdamState");
    return o.decay_steps > 0 ? LRSchedule::inverse_time(o.learning_rate, o.decay_steps)
                             : LRSchedule::constant(o.learning_rate);
  }
  AdamOptions opt_;
  LRSchedule schedule_;
  std::vector<double> m_, v_;
  long long t_ = 0;
};

}  // namespace lensing

#endif  // LENSING_CORE_ADAM_RULE_HPP
