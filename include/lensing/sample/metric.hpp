#ifndef LENSING_SAMPLE_METRIC_HPP
#define LENSING_SAMPLE_METRIC_HPP

/// \file
/// Euclidean metric (mass matrix) of Hamiltonian Monte Carlo, stored as its
/// inverse Sigma = M^{-1} (the posterior covariance estimate), as Stan does
/// (Betancourt 2017, "A Conceptual Introduction to HMC", sec. 4.2).
///
///   kinetic energy K(p) = p^T Sigma p / 2,  velocity dq/dt = Sigma p,
///   momentum draw p ~ N(0, M) = L^{-T} z with Sigma = L L^T, z ~ N(0, I).
/// Diagonal: Sigma = diag(s); dense: full symmetric positive-definite Sigma.
/// Host-side, double precision (d x d storage for the dense metric).

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace lensing {

/// Which metric a sampler adapts.
enum class MetricKind { unit, diagonal, dense };

/// Inverse metric Sigma (diagonal or dense) with its Cholesky factor.
class Metric {
 public:
  Metric() = default;
  /// Identity metric of dimension d, diagonal or dense storage.
  Metric(int d, MetricKind kind) : d_(d), dense_(kind == MetricKind::dense) {
    check_count(d, 1, "lensing::Metric", "dimension");
    if (dense_) {
      inv_.assign(std::size_t(d) * d, 0.0);
      for (int i = 0; i < d; ++i)
        inv_[std::size_t(i) * d + i] = 1;
    } else {
      inv_.assign(d, 1.0);
    }
    factor();
  }

  int dimension() const { return d_; }
  bool dense() const { return dense_; }
  /// Sigma: d entries (diagonal) or d*d row-major entries (dense).
  std::vector<double> const& inverse_metric() const { return inv_; }

  /// Set Sigma (d entries for diagonal, d*d for dense); throws unless positive definite.
  void set_inverse_metric(std::vector<double> const& inv) {
    constexpr char const* where = "lensing::Metric::set_inverse_metric";
    check_argument(inv.size() == inv_.size(), where,
                   "expected " + std::to_string(inv_.size()) + " entries, got " + std::to_string(inv.size()));
    for (double v : inv)
      check_finite(v, where, "inverse metric entry");
    std::vector<double> const old = inv_;
    inv_ = inv;
    if (!factor()) {
      inv_ = old;
      factor();
      throw_invalid_argument(where, "inverse metric is not positive definite");
    }
  }

  /// p ~ N(0, M).
  void sample_momentum(Rng& rng, double* p) const {
    if (!dense_) {
      for (int i = 0; i < d_; ++i)
        p[i] = rng.normal() / chol_[i];
      return;
    }
    // Solve L^T p = z (back substitution), L lower-triangular row-major.
    for (int i = 0; i < d_; ++i)
      p[i] = rng.normal();
    for (int i = d_ - 1; i >= 0; --i) {
      double s = p[i];
      for (int k = i + 1; k < d_; ++k)
        s -= chol_[std::size_t(k) * d_ + i] * p[k];
      p[i] = s / chol_[std::size_t(i) * d_ + i];
    }
  }

  /// v = Sigma p.
  void velocity(double const* p, double* v) const {
    if (!dense_) {
      for (int i = 0; i < d_; ++i)
        v[i] = inv_[i] * p[i];
      return;
    }
    for (int i = 0; i < d_; ++i) {
      double const* row = inv_.data() + std::size_t(i) * d_;
      double s = 0;
      for (int k = 0; k < d_; ++k)
        s += row[k] * p[k];
      v[i] = s;
    }
  }

 private:
  bool factor() {
    chol_.assign(inv_.size(), 0.0);
    if (!dense_) {
      for (int i = 0; i < d_; ++i) {
        if (!(inv_[i] > 0)) return false;
        chol_[i] = std::sqrt(inv_[i]);
      }
      return true;
    }
    for (int j = 0; j < d_; ++j) {
      double s = inv_[std::size_t(j) * d_ + j];
      for (int k = 0; k < j; ++k)
        s -= chol_[std::size_t(j) * d_ + k] * chol_[std::size_t(j) * d_ + k];
      if (!(s > 0)) return false;
      double const ljj = std::sqrt(s);
      chol_[std::size_t(j) * d_ + j] = ljj;
      for (int i = j + 1; i < d_; ++i) {
        double t = inv_[std::size_t(i) * d_ + j];
        for (int k = 0; k < j; ++k)
          t -= chol_[std::size_t(i) * d_ + k] * chol_[std::size_t(j) * d_ + k];
        chol_[std::size_t(i) * d_ + j] = t / ljj;
      }
    }
    return true;
  }

  int d_ = 0;
  bool dense_ = false;
  std::vector<double> inv_, chol_;
};

}  // namespace lensing

#endif  // LENSING_SAMPLE_METRIC_HPP
