#ifndef LENSING_SAMPLE_ADAPTATION_HPP
#define LENSING_SAMPLE_ADAPTATION_HPP

/// \file
/// Stan-style warm-up: step size by dual averaging and windowed estimation
/// of the inverse metric (Stan Reference Manual, "HMC algorithm parameters";
/// Hoffman & Gelman 2014, sec. 3.2, eqs. 5-6; Nesterov 2009).
///
/// Dual averaging drives the mean acceptance statistic to `delta`:
///   s_bar_t = (1 - 1/(t + t0)) s_bar_{t-1} + (delta - a_t) / (t + t0),
///   log eps_t = mu - sqrt(t) s_bar_t / gamma,
///   log eps_bar_t = t^-kappa log eps_t + (1 - t^-kappa) log eps_bar_{t-1},
/// mu = log(10 eps_0), gamma = 0.05, t0 = 10, kappa = 0.75; after warm-up eps = eps_bar.
///
/// Realised acceptance.  After warm-up the mean acceptance statistic is above
/// delta (measured on independent Gaussians, delta = 0.8: 0.86-0.93 in 2-10
/// dimensions, 0.83-0.88 in 100), as in Stan, whose final step is the same
/// exp(x_bar) and whose NUTS acceptance statistic is the same mean over all
/// new states of the trajectory of min(1, exp(H0 - H)).  It is not a
/// defect: dual averaging makes the *average over its fluctuating iterates*
/// of the acceptance statistic equal delta (measured over the last 50 warm-up
/// iterations: 0.76-0.79), while sampling runs at one central step, about the
/// geometric mean of those iterates (the last iterates of one run range over
/// 0.3x-3.5x of it).  Acceptance falls steeply for steps above the central
/// one and saturates at 1 below it, so the iterate average is lower than the
/// acceptance at the central step (Jensen); sampling at the iterates'
/// geometric mean instead of exp(x_bar) gives the same 0.85-0.92.
///
/// Windowed metric adaptation: an initial fast buffer (75 iterations), slow
/// windows of 25, 50, 100, ... iterations (the last stretched to the terminal
/// buffer) in which the draws' (co)variance is accumulated (Welford), and a
/// terminal fast buffer (50).  At the end of each slow window
///   Sigma = n/(n+5) Sigma_hat + 1e-3 * 5/(n+5) D,   D = diag(Sigma_hat),
/// and the step size is re-initialised.  Stan adds 1e-3 * 5/(n+5) I instead:
/// an absolute regulariser meant for posteriors of unit scale, which is
/// 100-1000x the variances of a lens fit (~1e-8 arcsec^2) and keeps the
/// metric from shrinking to them (measured: ~254 gradients per iteration
/// instead of ~7).  Scaling the regulariser by the estimated variance of each
/// coordinate makes the adaptation equivariant under a rescaling of the
/// coordinates (q -> S q, S diagonal, gives Sigma -> S Sigma S exactly): a
/// diagonal metric is shrunk by (n + 0.005)/(n + 5), a dense one gets a ridge
/// relative to its own diagonal (positive definite whenever every estimated
/// variance is > 0).  Per coordinate rather than the mean of the variances,
/// which would again be absolute for coordinates whose scales differ by
/// orders of magnitude.  A coordinate whose estimated variance is not > 0 (a
/// chain that did not move in the window) keeps its current metric entry as
/// its scale.  Short warm-ups (< 150 iterations) scale the buffers to
/// 15% / 75% / 10% as Stan does.

#include <lensing/sample/metric.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace lensing {

/// Nesterov dual averaging of log(step size) towards a target acceptance statistic.
class DualAveraging {
 public:
  explicit DualAveraging(double delta = 0.8, double gamma = 0.05, double kappa = 0.75, double t0 = 10)
      : delta_(delta), gamma_(gamma), kappa_(kappa), t0_(t0) {}
  /// Start over around step size eps (mu = log(10 eps)).
  void restart(double eps) {
    mu_ = std::log(10 * eps);
    counter_ = 0;
    s_bar_ = 0;
    x_bar_ = 0;
  }
  /// One update with the acceptance statistic of the last transition; returns the new step size.
  double learn(double accept_stat) {
    ++counter_;
    double const a = std::isfinite(accept_stat) ? std::min(1.0, accept_stat) : 0.0;
    double const eta = 1.0 / (counter_ + t0_);
    s_bar_ = (1 - eta) * s_bar_ + eta * (delta_ - a);
    double const x = mu_ - s_bar_ * std::sqrt(double(counter_)) / gamma_;
    double const x_eta = std::pow(double(counter_), -kappa_);
    x_bar_ = (1 - x_eta) * x_bar_ + x_eta * x;
    return std::exp(x);
  }
  /// Step size after warm-up: exp(x_bar).
  double final_step_size() const { return std::exp(x_bar_); }

 private:
  double delta_, gamma_, kappa_, t0_;
  double mu_ = 0, s_bar_ = 0, x_bar_ = 0;
  long counter_ = 0;
};

/// Windowed (co)variance estimation of the inverse metric during warm-up.
class WindowedAdaptation {
 public:
  WindowedAdaptation() = default;
  WindowedAdaptation(int num_warmup, int d, bool dense, int init_buffer = 75, int term_buffer = 50,
                     int base_window = 25)
      : num_warmup_(num_warmup), d_(d), dense_(dense) {
    if (num_warmup < 20) {
      active_ = false;
      return;
    }
    if (init_buffer + base_window + term_buffer > num_warmup) {
      init_buffer = int(0.15 * num_warmup);
      term_buffer = int(0.1 * num_warmup);
      base_window = num_warmup - (init_buffer + term_buffer);
    }
    init_buffer_ = init_buffer;
    term_buffer_ = term_buffer;
    window_size_ = base_window;
    next_window_ = init_buffer + base_window - 1;
    restart_estimator();
  }

  /// Feed the draw of warm-up iteration `counter` (0-based, called once per
  /// iteration); returns true when `metric` was updated at a window end.
  bool learn(Metric& metric, double const* q) {
    bool updated = false;
    if (active_) {
      if (in_window()) add(q);
      if (counter_ == next_window_ && counter_ != num_warmup_) {
        compute_next_window();
        std::vector<double> inv = estimate(metric);
        metric.set_inverse_metric(inv);
        restart_estimator();
        updated = true;
      }
    }
    ++counter_;
    return updated;
  }

 private:
  bool in_window() const {
    return counter_ >= init_buffer_ && counter_ < num_warmup_ - term_buffer_ && counter_ != num_warmup_;
  }
  void compute_next_window() {
    if (next_window_ == num_warmup_ - term_buffer_ - 1) return;
    window_size_ *= 2;
    next_window_ = counter_ + window_size_;
    if (next_window_ != num_warmup_ - term_buffer_ - 1) {
      int const boundary = next_window_ + 2 * window_size_;
      if (boundary >= num_warmup_ - term_buffer_) next_window_ = num_warmup_ - term_buffer_ - 1;
    }
  }
  void restart_estimator() {
    n_ = 0;
    mean_.assign(d_, 0.0);
    m2_.assign(dense_ ? std::size_t(d_) * d_ : std::size_t(d_), 0.0);
  }
  void add(double const* q) {
    ++n_;
    std::vector<double> delta(d_);
    for (int i = 0; i < d_; ++i) {
      delta[i] = q[i] - mean_[i];
      mean_[i] += delta[i] / n_;
    }
    for (int i = 0; i < d_; ++i) {
      double const after = q[i] - mean_[i];
      if (dense_) {
        for (int j = 0; j < d_; ++j)
          m2_[std::size_t(i) * d_ + j] += after * delta[j];
      } else {
        m2_[i] += after * delta[i];
      }
    }
  }
  std::vector<double> estimate(Metric const& current) const {
    double const n = double(n_);
    double const w = n / (n + 5.0), reg = 1e-3 * 5.0 / (n + 5.0);
    std::vector<double> inv(m2_.size());
    for (std::size_t k = 0; k < m2_.size(); ++k)
      inv[k] = m2_[k] / std::max(n - 1.0, 1.0);
    auto const& cur = current.inverse_metric();
    for (int i = 0; i < d_; ++i) {
      std::size_t const ii = dense_ ? std::size_t(i) * d_ + i : std::size_t(i);
      double scale = inv[ii];
      if (!(scale > 0)) scale = cur[current.dense() ? std::size_t(i) * d_ + i : std::size_t(i)];
      // Sigma_ii = w s_ii + reg s_ii; off-diagonal entries (dense) = w s_ij.
      inv[ii] = !(inv[ii] > 0) ? (w + reg) * scale : w * inv[ii] + reg * scale;
    }
    if (dense_) {
      for (int i = 0; i < d_; ++i)  // symmetrise (Welford's outer products are not exactly symmetric)
        for (int j = 0; j < i; ++j) {
          double const s = 0.5 * w * (inv[std::size_t(i) * d_ + j] + inv[std::size_t(j) * d_ + i]);
          inv[std::size_t(i) * d_ + j] = inv[std::size_t(j) * d_ + i] = s;
        }
    }
    return inv;
  }

  int num_warmup_ = 0, d_ = 0;
  bool dense_ = false, active_ = true;
  int init_buffer_ = 0, term_buffer_ = 0, window_size_ = 0, next_window_ = 0, counter_ = 0;
  long n_ = 0;
  std::vector<double> mean_, m2_;
};

}  // namespace lensing

#endif  // LENSING_SAMPLE_ADAPTATION_HPP
