#ifndef LENSING_SAMPLE_VARIATIONAL_HPP
#define LENSING_SAMPLE_VARIATIONAL_HPP

/// \file
/// Gaussian variational inference (ADVI: Kucukelbir et al. 2017, "Automatic
/// differentiation variational inference", JMLR 18:14) on a LogDensity over
/// the unconstrained space: maximise
///   ELBO(mu, L) = E_q[log p(z)] + H[q],   q = N(mu, L L^T),  H = sum_i log L_ii + d (1 + log 2 pi) / 2,
/// with reparameterised gradients z = mu + L eps, eps ~ N(0, I), optimised by
/// Adam (AdamState of core/adam_rule.hpp).  Families: mean-field (L diagonal) and full-rank (L
/// lower triangular).  Parameters: mu, omega_i = log L_ii, strict lower part of L.
///
/// Gradient estimator: with u = grad log p(z) + (stl ? L^-T eps : 0),
///   d/dmu = u,  d/dL_ij = u_i eps_j (i > j),  d/domega_i = u_i eps_i L_ii + (stl ? 0 : 1),
/// averaged over `num_mc` draws.  stl = true is the "sticking the landing"
/// estimator (Roeder, Wu & Duvenaud 2017, NeurIPS): it drops the score term of
/// the entropy, so its variance vanishes when q equals the posterior (e.g. a
/// full-rank fit to a Gaussian posterior converges to machine precision).
/// The returned parameters are the average of the iterates over the last
/// `average_last` iterations (Polyak-Ruppert averaging), which removes most of
/// the stochastic-optimisation noise when the posterior is not in the family.
///
/// Known result used in the tests: for a Gaussian posterior with precision
/// Lambda the mean-field optimum is mu = posterior mean, var_i = 1 / Lambda_ii
/// (under-dispersed; e.g. Blei, Kucukelbir & McAuliffe 2017, sec. 5).

#include <lensing/core/adam_rule.hpp>
#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/density/evaluator.hpp>
#include <lensing/density/log_density.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lensing {

/// Variational family.
enum class VariationalFamily { mean_field, full_rank };

/// Settings of a variational fit.
struct VariationalOptions {
  VariationalFamily family = VariationalFamily::full_rank;
  int max_iterations = 5000;
  int num_mc = 1;             ///< Monte Carlo draws per gradient
  int average_last = 1000;    ///< iterations averaged at the end (<= max_iterations; 1: last iterate)
  bool stl = true;            ///< sticking-the-landing gradient (see the file comment)
  int num_elbo_draws = 1000;  ///< draws for the final ELBO estimate
  AdamOptions adam = {1e-2, 0.9, 0.999, 1e-8, 1000};
  std::uint64_t seed = 1;
  std::vector<double> init_mean;  ///< empty: zeros
  double init_log_sd = 0;         ///< omega at the start (when init_scale is empty)
  /// Initial L instead of exp(init_log_sd) I: empty, d values (the diagonal of
  /// L, > 0) or d*d row-major values of a lower-triangular L with a positive
  /// diagonal (full-rank only; e.g. the Cholesky factor of a Laplace covariance).
  std::vector<double> init_scale;
  int elbo_trace_every = 10;  ///< iterations averaged into one entry of VariationalResult::elbo_trace
  bool progress = false;      ///< print the running mean of the ELBO estimate every 10%
};

/// A fitted Gaussian approximation q = N(mean, L L^T) (host, double).
struct VariationalResult {
  VariationalFamily family = VariationalFamily::full_rank;
  int dimension = 0;
  std::vector<double> mean;
  std::vector<double> chol;  ///< L, row-major d x d, lower triangular (diagonal for mean-field)
  double elbo = 0;           ///< Monte Carlo estimate at the result (num_elbo_draws draws)
  double elbo_mcse = 0;      ///< its standard error
  /// ELBO during the fit: entry k is the mean over iterations
  /// [k * elbo_trace_every, (k + 1) * elbo_trace_every) of the per-iteration
  /// estimate log p(z) - log q(z) (the draws the gradient used, before the step).
  std::vector<double> elbo_trace;
  int iterations = 0;
  long long gradient_evaluations = 0;
  long long non_finite_draws = 0;  ///< draws where log p or its gradient was not finite (skipped)
  double seconds = 0;

  /// Covariance L L^T, row-major d x d.
  std::vector<double> covariance() const {
    int const d = dimension;
    std::vector<double> c(std::size_t(d) * d, 0.0);
    for (int i = 0; i < d; ++i)
      for (int j = 0; j <= i; ++j) {
        double s = 0;
        for (int k = 0; k <= j; ++k)
          s += chol[i * d + k] * chol[j * d + k];
        c[i * d + j] = c[j * d + i] = s;
      }
    return c;
  }
  /// n independent draws from q, (draw, parameter) layout; from the stream
  /// (seed, random::purpose_variational_draws, stream) of core/random.hpp.
  std::vector<double> draws(int n, std::uint64_t seed, std::uint64_t stream = 0) const {
    check_count(n, 1, "lensing::VariationalResult::draws", "n");
    int const d = dimension;
    Rng rng(seed, random::purpose_variational_draws, stream);
    std::vector<double> out(std::size_t(n) * d), eps(d);
    for (int s = 0; s < n; ++s) {
      for (auto& e : eps)
        e = rng.normal();
      for (int i = 0; i < d; ++i) {
        double v = mean[i];
        for (int k = 0; k <= i; ++k)
          v += chol[i * d + k] * eps[k];
        out[std::size_t(s) * d + i] = v;
      }
    }
    return out;
  }
};

//----------------------------------------------------------------------------
/// Fit a Gaussian approximation to `density` by stochastic ELBO maximisation.
/// Throws std::invalid_argument for bad options or sizes, std::runtime_error
/// when 100 consecutive iterations have no finite draw.
template <class ExecutionSpace, class Density>
VariationalResult fit_variational(ExecutionSpace const& space, Density const& density,
                                  VariationalOptions const& options = {}) {
  static_assert(check_log_density<Density, ExecutionSpace>(), "lensing::fit_variational: see the messages above");
  constexpr char const* where = "lensing::fit_variational";
  check_count(options.max_iterations, 1, where, "max_iterations");
  check_count(options.num_mc, 1, where, "num_mc");
  check_count(options.average_last, 1, where, "average_last");
  check_argument(options.average_last <= options.max_iterations, where, "average_last must be <= max_iterations");
  check_count(options.num_elbo_draws, 2, where, "num_elbo_draws");
  check_finite(options.init_log_sd, where, "init_log_sd");
  check_count(options.elbo_trace_every, 1, where, "elbo_trace_every");
  auto const t0 = std::chrono::steady_clock::now();
  DensityEvaluator<ExecutionSpace, Density> eval(space, density, where);
  int const d = eval.dimension();
  bool const full = options.family == VariationalFamily::full_rank;
  check_argument(options.init_mean.empty() || int(options.init_mean.size()) == d, where,
                 "init_mean must be empty or have dimension() values");
  for (double v : options.init_mean)
    check_finite(v, where, "init_mean value");
  // theta = [mu (d), omega (d), strict lower part of L row by row (full-rank)].
  std::size_t const nl = full ? std::size_t(d) * (d - 1) / 2 : 0, np = 2 * std::size_t(d) + nl;
  std::vector<double> theta(np, 0.0), grad(np), avg(np, 0.0);
  for (int i = 0; i < d; ++i) {
    theta[i] = options.init_mean.empty() ? 0.0 : options.init_mean[i];
    theta[d + i] = options.init_log_sd;
  }
  if (!options.init_scale.empty()) {
    auto const& s0 = options.init_scale;
    std::size_t const dd = std::size_t(d);
    check_argument(s0.size() == dd || (full && s0.size() == dd * dd), where,
                   std::string("init_scale must have dimension() values") + (full ? " or dimension()^2 values" : ""));
    bool const dense = s0.size() != dd || dd == 1;
    std::size_t k = 2 * dd;
    for (std::size_t i = 0; i < dd; ++i) {
      double const lii = dense ? s0[i * dd + i] : s0[i];
      check_finite(lii, where, "init_scale value");
      check_argument(lii > 0, where, "init_scale: the diagonal of L must be positive");
      theta[dd + i] = std::log(lii);
      for (std::size_t j = 0; j < i && full; ++j) {
        double const v = dense ? s0[i * dd + j] : 0.0;
        check_finite(v, where, "init_scale value");
        theta[k++] = v;
      }
    }
  }
  AdamState adam(int(np), options.adam);
  Rng rng(options.seed, random::purpose_variational, 0);
  std::vector<double> L(std::size_t(d) * d), eps(d), z(d), g(d), w(d), u(d);
  auto unpack = [&](std::vector<double> const& th) {
    std::fill(L.begin(), L.end(), 0.0);
    std::size_t k = 2 * std::size_t(d);
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < i && full; ++j)
        L[i * d + j] = th[k++];
      L[i * d + i] = std::exp(th[d + i]);
    }
  };
  long long non_finite = 0;
  int consecutive_bad = 0;
  std::vector<double> trace;
  double trace_sum = 0;
  int trace_n = 0;
  int const start_avg = options.max_iterations - options.average_last;
  for (int it = 0; it < options.max_iterations; ++it) {
    unpack(theta);
    std::fill(grad.begin(), grad.end(), 0.0);
    int good = 0;
    double logdet_it = 0, elbo_it = 0;
    for (int i = 0; i < d; ++i)
      logdet_it += std::log(L[i * d + i]);
    for (int s = 0; s < options.num_mc; ++s) {
      double e2 = 0;
      for (auto& e : eps) {
        e = rng.normal();
        e2 += e * e;
      }
      for (int i = 0; i < d; ++i) {
        double v = theta[i];
        for (int k = 0; k <= i; ++k)
          v += L[i * d + k] * eps[k];
        z[i] = v;
      }
      double const lp = eval(z.data(), g.data());
      if (!std::isfinite(lp)) {
        ++non_finite;
        continue;
      }
      ++good;
      elbo_it += lp + 0.5 * e2 + logdet_it + 0.5 * d * std::log(2 * M_PI);
      if (options.stl) {  // w = L^-T eps (back substitution with the upper-triangular L^T)
        for (int i = d - 1; i >= 0; --i) {
          double s2 = eps[i];
          for (int k = i + 1; k < d; ++k)
            s2 -= L[k * d + i] * w[k];
          w[i] = s2 / L[i * d + i];
        }
      }
      for (int i = 0; i < d; ++i)
        u[i] = g[i] + (options.stl ? w[i] : 0.0);
      std::size_t k = 2 * std::size_t(d);
      for (int i = 0; i < d; ++i) {
        grad[i] += u[i];
        grad[d + i] += u[i] * eps[i] * L[i * d + i];
        for (int j = 0; j < i && full; ++j)
          grad[k++] += u[i] * eps[j];
      }
    }
    if (good > 0) trace_sum += elbo_it / good, ++trace_n;
    if ((it + 1) % options.elbo_trace_every == 0 || it + 1 == options.max_iterations) {
      trace.push_back(trace_n > 0 ? trace_sum / trace_n : -HUGE_VAL);
      trace_sum = 0, trace_n = 0;
    }
    if (good == 0) {
      if (++consecutive_bad >= 100)
        throw std::runtime_error("lensing::fit_variational: log-density non-finite at every draw of 100 iterations");
      continue;
    }
    consecutive_bad = 0;
    // Adam minimises -ELBO: pass the negated mean gradient (+1 entropy term on omega without STL).
    for (std::size_t p = 0; p < np; ++p)
      grad[p] = -grad[p] / good;
    if (!options.stl)
      for (int i = 0; i < d; ++i)
        grad[d + i] -= 1;
    adam.step(theta.data(), grad.data());
    if (it >= start_avg)
      for (std::size_t p = 0; p < np; ++p)
        avg[p] += theta[p] / options.average_last;
    if (options.progress && ((it + 1) % std::max(1, options.max_iterations / 10) == 0)) {
      std::fprintf(stderr, "lensing::fit_variational: iteration %d / %d\n", it + 1, options.max_iterations);
    }
  }
  VariationalResult r;
  r.family = options.family;
  r.dimension = d;
  r.iterations = options.max_iterations;
  r.elbo_trace = std::move(trace);
  unpack(avg);
  r.mean.assign(avg.begin(), avg.begin() + d);
  r.chol = L;
  // ELBO estimate at the result: mean of log p(z) - log q(z) over fresh draws
  // (its MCSE is 0 when q equals the normalised posterior up to a constant).
  double sum = 0, sum2 = 0, logdet = 0;
  for (int i = 0; i < d; ++i)
    logdet += std::log(L[i * d + i]);
  int n = 0;
  Rng erng(options.seed, random::purpose_variational, 1);
  for (int s = 0; s < options.num_elbo_draws; ++s) {
    double e2 = 0;
    for (int i = 0; i < d; ++i) {
      eps[i] = erng.normal();
      e2 += eps[i] * eps[i];
    }
    for (int i = 0; i < d; ++i) {
      double v = r.mean[i];
      for (int k = 0; k <= i; ++k)
        v += L[i * d + k] * eps[k];
      z[i] = v;
    }
    double const lp = eval(z.data(), g.data());
    if (!std::isfinite(lp)) {
      ++non_finite;
      continue;
    }
    double const v = lp - (-0.5 * e2 - logdet - 0.5 * d * std::log(2 * M_PI));
    sum += v, sum2 += v * v, ++n;
  }
  double const m = n > 0 ? sum / n : -HUGE_VAL;
  r.elbo = m;
  r.elbo_mcse = n > 1 ? std::sqrt(std::max(0.0, sum2 / n - m * m) / (n - 1)) : HUGE_VAL;
  r.non_finite_draws = non_finite;
  r.gradient_evaluations = eval.evaluations();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace lensing

#endif  // LENSING_SAMPLE_VARIATIONAL_HPP
