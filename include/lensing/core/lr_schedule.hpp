#ifndef LENSING_CORE_LR_SCHEDULE_HPP
#define LENSING_CORE_LR_SCHEDULE_HPP

/// \file
/// The one set of learning-rate schedules: per epoch for the network
/// optimizers (nn::SGD, nn::Adam, nn::AdamW, through `set_lr`; nn/schedule.hpp
/// names it nn::LRSchedule) and per step for the host Adam of
/// core/adam_rule.hpp (AdamOptions::decay_steps is `inverse_time`).

#include <lensing/core/errors.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

namespace lensing {

/// A learning-rate schedule over epochs or steps (host-side value type).
///
/// The index e is an epoch (nn training, from 0) or an optimizer step (the
/// host Adam, from 1); `lr(e)` is the rate to use during epoch e, and
/// `observe(metric)` is called once after each epoch with the monitored
/// value (the validation loss; only reduce_on_plateau uses it).  Kinds
/// (η₀ = base rate), PyTorch's definitions where they exist:
///   - constant:     η(e) = η₀.
///   - step:         η(e) = η₀ γ^⌊e / step_size⌋            (torch StepLR).
///   - exponential:  η(e) = η₀ γ^e                           (torch ExponentialLR).
///   - inverse_time: η(e) = η₀ / (1 + e / s), s > 0 real     (the host Adam's decay_steps).
///   - cosine:       linear warm-up η(e) = η₀ (e + 1)/W for e < W, then
///                   η(e) = η_min + ½(η₀ − η_min)(1 + cos(π τ)),
///                   τ = min(1, (e − W)/(T − W)), T = total epochs
///                   (SGDR without restarts, Loshchilov & Hutter 2017).
///   - reduce_on_plateau: η starts at η₀; after each epoch the metric m
///                   improves if m < best − threshold·|best|; after more than
///                   `patience` epochs without improvement η ← max(η·factor,
///                   η_min) and `cooldown` epochs are ignored (torch
///                   ReduceLROnPlateau, mode "min", relative threshold).
/// Every factory throws std::invalid_argument("lensing::LRSchedule::
/// <kind>: ...") for non-positive rates or decay_steps, γ or factor outside
/// (0, 1], or negative counts; observe() throws for a NaN metric.
/// `apply(opt, e)` sets opt's rate for epoch e.  The plateau state
/// (`state()` / `set_state()`) is what a training checkpoint saves.
class LRSchedule {
 public:
  enum class Kind { constant, step, exponential, cosine, reduce_on_plateau, inverse_time };

  static LRSchedule constant(double lr) {
    check_positive(lr, "lensing::LRSchedule::constant", "lr");
    LRSchedule s(Kind::constant, lr);
    return s;
  }
  static LRSchedule step(double lr, long step_size, double gamma) {
    char const* where = "lensing::LRSchedule::step";
    check_positive(lr, where, "lr");
    check_count(step_size, 1, where, "step_size");
    check_in_open_closed(gamma, 0.0, 1.0, where, "gamma");
    LRSchedule s(Kind::step, lr);
    s.step_size_ = step_size;
    s.gamma_ = gamma;
    return s;
  }
  static LRSchedule exponential(double lr, double gamma) {
    char const* where = "lensing::LRSchedule::exponential";
    check_positive(lr, where, "lr");
    check_in_open_closed(gamma, 0.0, 1.0, where, "gamma");
    LRSchedule s(Kind::exponential, lr);
    s.gamma_ = gamma;
    return s;
  }
  static LRSchedule inverse_time(double lr, double decay_steps) {
    char const* where = "lensing::LRSchedule::inverse_time";
    check_positive(lr, where, "lr");
    check_positive(decay_steps, where, "decay_steps");
    LRSchedule s(Kind::inverse_time, lr);
    s.decay_steps_ = decay_steps;
    return s;
  }
  static LRSchedule cosine(double lr, long total_epochs, long warmup_epochs = 0, double min_lr = 0) {
    char const* where = "lensing::LRSchedule::cosine";
    check_positive(lr, where, "lr");
    check_count(warmup_epochs, 0, where, "warmup_epochs");
    check_count(total_epochs, warmup_epochs + 1, where, "total_epochs");
    check_in_closed(min_lr, 0.0, lr, where, "min_lr");
    LRSchedule s(Kind::cosine, lr);
    s.total_ = total_epochs;
    s.warmup_ = warmup_epochs;
    s.min_lr_ = min_lr;
    return s;
  }
  static LRSchedule reduce_on_plateau(double lr, double factor = 0.1, long patience = 10, double threshold = 1e-4,
                                      double min_lr = 0, long cooldown = 0) {
    char const* where = "lensing::LRSchedule::reduce_on_plateau";
    check_positive(lr, where, "lr");
    check_argument(std::isfinite(factor) && factor > 0 && factor < 1, where, "factor must be in (0, 1)");
    check_count(patience, 0, where, "patience");
    check_nonnegative(threshold, where, "threshold");
    check_in_closed(min_lr, 0.0, lr, where, "min_lr");
    check_count(cooldown, 0, where, "cooldown");
    LRSchedule s(Kind::reduce_on_plateau, lr);
    s.factor_ = factor;
    s.patience_ = patience;
    s.threshold_ = threshold;
    s.min_lr_ = min_lr;
    s.cooldown_ = cooldown;
    return s;
  }

  Kind kind() const { return kind_; }
  double base_lr() const { return lr0_; }

  /// Rate for epoch `epoch` (>= 0); reduce_on_plateau: the current rate.
  double lr(long epoch) const {
    check_count(epoch, 0, "lensing::LRSchedule::lr", "epoch");
    switch (kind_) {
      case Kind::step:
        return lr0_ * std::pow(gamma_, double(epoch / step_size_));
      case Kind::exponential:
        return lr0_ * std::pow(gamma_, double(epoch));
      case Kind::cosine: {
        if (epoch < warmup_) return lr0_ * double(epoch + 1) / double(warmup_);
        double const tau = std::min(1.0, double(epoch - warmup_) / double(total_ - warmup_));
        return min_lr_ + 0.5 * (lr0_ - min_lr_) * (1 + std::cos(3.14159265358979323846 * tau));
      }
      case Kind::inverse_time:
        return lr0_ / (1 + double(epoch) / decay_steps_);
      case Kind::reduce_on_plateau:
        return current_;
      case Kind::constant:
      default:
        return lr0_;
    }
  }

  /// Report the monitored metric of the epoch just finished; returns the
  /// rate of reduce_on_plateau after the update (others: unchanged state).
  double observe(double metric) {
    check_finite(metric, "lensing::LRSchedule::observe", "metric");
    if (kind_ != Kind::reduce_on_plateau) return current_;
    if (!have_best_ || metric < best_ - threshold_ * std::abs(best_)) {
      best_ = metric;
      have_best_ = true;
      bad_ = 0;
    } else {
      ++bad_;
    }
    if (cooldown_left_ > 0) {
      --cooldown_left_;
      bad_ = 0;
    }
    if (bad_ > patience_) {
      current_ = std::max(current_ * factor_, min_lr_);
      cooldown_left_ = cooldown_;
      bad_ = 0;
    }
    return current_;
  }

  /// Set `opt`'s rate for epoch `epoch` (opt.set_lr(lr(epoch))); returns it.
  template <class Optimizer>
  double apply(Optimizer& opt, long epoch) const {
    double const r = lr(epoch);
    opt.set_lr(r);
    return r;
  }

  /// Mutable state (current rate, best metric, whether a best exists, epochs
  /// without improvement, cooldown left), for checkpoints.
  std::array<double, 5> state() const {
    return {current_, best_, have_best_ ? 1.0 : 0.0, double(bad_), double(cooldown_left_)};
  }
  void set_state(std::array<double, 5> const& s) {
    char const* where = "lensing::LRSchedule::set_state";
    check_positive(s[0], where, "current lr");
    check_argument(std::isfinite(s[1]) && s[3] >= 0 && s[4] >= 0, where, "invalid plateau state");
    current_ = s[0];
    best_ = s[1];
    have_best_ = s[2] != 0;
    bad_ = long(s[3]);
    cooldown_left_ = long(s[4]);
  }

 private:
  LRSchedule(Kind k, double lr) : kind_(k), lr0_(lr), current_(lr) {}
  Kind kind_;
  double lr0_;
  double current_;
  long step_size_ = 1;
  double gamma_ = 1;
  double decay_steps_ = 1;
  long total_ = 1, warmup_ = 0;
  double min_lr_ = 0;
  double factor_ = 0.1, threshold_ = 0;
  long patience_ = 0, cooldown_ = 0;
  double best_ = 0;
  bool have_best_ = false;
  long bad_ = 0, cooldown_left_ = 0;
};

}  // namespace lensing

#endif  // LENSING_CORE_LR_SCHEDULE_HPP
