#ifndef LENSING_NN_IAF_VARIATIONAL_HPP
#define LENSING_NN_IAF_VARIATIONAL_HPP

/// \file
/// Variational inference with an inverse-autoregressive-flow family: the
/// Gaussian families of sample/variational.hpp made flexible by an IAF
/// (Kingma et al. 2016, arXiv:1606.04934; Rezende & Mohamed 2015 for flows
/// in VI), fitted to any LogDensity (density/log_density.hpp).
///
///   z_0 = μ + e^ω ⊙ ε,  ε ~ N(0, I),   z = IAF(z_0)   (iaf.hpp, K steps),
///   log q(z) = log N(ε; 0, I) − Σ_i ω_i − log |det ∂z/∂z_0|,
///   ELBO = E_ε[ log p(z) + log |det ∂z/∂z_0| ] + Σ_i ω_i + (D/2)(1 + log 2π).
///
/// Reparameterised gradients: with u = ∇ log p(z) / S and the IAF's backward
/// (its vector-Jacobian product of [z, log det] for the upstream [u, 1/S],
/// which includes the log-determinant's gradient) giving dz_0 and the flow's
/// weight gradients, dμ = Σ dz_0, dω = Σ dz_0 ⊙ ε ⊙ e^ω + 1, averaged over
/// S = num_mc draws per iteration; Adam (core/adam_rule.hpp) on
/// [μ, ω, flow weights].  The family contains the mean-field Gaussians (with
/// the MADEs' output weights at 0 every step is an affine map z ↦ σ z +
/// (1 − σ) m with constant σ, m), so its optimum is at least as good.
/// The flow runs on the host (Kokkos::DefaultHostExecutionSpace, double);
/// the density on the caller's execution space (DensityEvaluator).

#include <lensing/core/adam_rule.hpp>
#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/density/evaluator.hpp>
#include <lensing/density/log_density.hpp>
#include <lensing/nn/iaf.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace lensing {
namespace nn {

/// Settings of fit_variational_iaf.
struct IafVariationalOptions {
  int steps = 2;           ///< IAF steps K
  int hidden = 16;         ///< hidden units of each MADE's two hidden layers
  double gate_bias = 1.0;  ///< g of iaf.hpp
  int max_iterations = 3000;
  int num_mc = 8;  ///< draws per gradient (the flow's batch)
  AdamOptions adam = {5e-3, 0.9, 0.999, 1e-8, 0};
  std::uint64_t seed = 1;         ///< draws: streams (seed, purpose_variational, 2 | 3); weights: initialize(seed)
  std::vector<double> init_mean;  ///< μ at the start; empty: zeros
  double init_log_sd = 0;         ///< ω at the start
  int num_elbo_draws = 2000;      ///< draws for the final ELBO estimate
  int elbo_trace_every = 10;
};

/// A fitted IAF approximation (host, double): the base N(μ, diag e^{2ω}) and the flow.
struct IafVariationalResult {
  int dimension = 0;
  std::vector<double> mean, log_sd;  ///< μ, ω of the base Gaussian
  InverseAutoregressiveFlow<double, Kokkos::HostSpace> flow{1, 1, 1};
  double elbo = 0, elbo_mcse = 0;  ///< Monte Carlo estimate at the result and its standard error
  std::vector<double> elbo_trace;  ///< per-iteration estimates, averaged over elbo_trace_every iterations
  int iterations = 0;
  long long non_finite_draws = 0;
  double seconds = 0;

  /// n draws z ~ q ((draw, parameter) layout) and, when log_q is given, log q(z) of each.
  std::vector<double> draws(int n, std::uint64_t seed, std::vector<double>* log_q = nullptr) {
    check_count(n, 1, "lensing::nn::IafVariationalResult::draws", "n");
    int const d = dimension;
    using T = Tensor<double, Kokkos::HostSpace>;
    T x("x", n, d + 1, 1, 1), y("y", n, d + 1, 1, 1);
    Rng rng(seed, random::purpose_variational_draws, 0);
    std::vector<double> e2(std::size_t(n), 0.0);
    double sum_w = 0;
    for (int i = 0; i < d; ++i)
      sum_w += log_sd[i];
    for (int s = 0; s < n; ++s) {
      for (int i = 0; i < d; ++i) {
        double const e = rng.normal();
        e2[std::size_t(s)] += e * e;
        x(s, i, 0, 0) = mean[i] + std::exp(log_sd[i]) * e;
      }
      x(s, d, 0, 0) = 0;
    }
    flow.forward(Kokkos::DefaultHostExecutionSpace(), x, y);
    Kokkos::DefaultHostExecutionSpace().fence();
    std::vector<double> out(std::size_t(n) * d);
    if (log_q) log_q->assign(std::size_t(n), 0.0);
    for (int s = 0; s < n; ++s) {
      for (int i = 0; i < d; ++i)
        out[std::size_t(s) * d + i] = y(s, i, 0, 0);
      if (log_q)
        (*log_q)[std::size_t(s)] = -0.5 * e2[std::size_t(s)] - 0.5 * d * std::log(2 * M_PI) - sum_w - y(s, d, 0, 0);
    }
    return out;
  }
};

/// Fit q = IAF(N(μ, diag e^{2ω})) to `density` by stochastic ELBO
/// maximisation (see the file comment).  Throws std::invalid_argument for
/// bad options, std::runtime_error when 100 consecutive iterations have no
/// finite draw.
template <class ExecutionSpace, class Density>
IafVariationalResult fit_variational_iaf(ExecutionSpace const& space, Density const& density,
                                         IafVariationalOptions const& options = {}) {
  static_assert(check_log_density<Density, ExecutionSpace>(), "lensing::nn::fit_variational_iaf: see above");
  constexpr char const* where = "lensing::nn::fit_variational_iaf";
  check_count(options.steps, 1, where, "steps");
  check_count(options.hidden, 1, where, "hidden");
  check_count(options.max_iterations, 1, where, "max_iterations");
  check_count(options.num_mc, 1, where, "num_mc");
  check_count(options.num_elbo_draws, 2, where, "num_elbo_draws");
  check_count(options.elbo_trace_every, 1, where, "elbo_trace_every");
  check_finite(options.init_log_sd, where, "init_log_sd");
  auto const t0 = std::chrono::steady_clock::now();
  using Host = Kokkos::DefaultHostExecutionSpace;
  using T = Tensor<double, Kokkos::HostSpace>;
  using V = ParamVector<double, Kokkos::HostSpace>;
  Host host;
  DensityEvaluator<ExecutionSpace, Density> eval(space, density, where);
  int const d = eval.dimension(), s_n = options.num_mc;
  check_argument(options.init_mean.empty() || int(options.init_mean.size()) == d, where,
                 "init_mean must be empty or have dimension() values");

  IafVariationalResult r;
  r.dimension = d;
  r.flow = InverseAutoregressiveFlow<double, Kokkos::HostSpace>(d, options.hidden, options.steps, options.gate_bias);
  auto& flow = r.flow;
  flow.initialize(options.seed);
  long const nf = flow.num_params();
  std::size_t const np = 2 * std::size_t(d) + std::size_t(nf);
  // theta = [μ (d), ω (d), flow weights (nf)].
  std::vector<double> theta(np), grad(np);
  for (int i = 0; i < d; ++i) {
    theta[std::size_t(i)] = options.init_mean.empty() ? 0.0 : options.init_mean[std::size_t(i)];
    theta[std::size_t(d + i)] = options.init_log_sd;
  }
  V fp = flow.parameters();
  for (long k = 0; k < nf; ++k)
    theta[2 * std::size_t(d) + std::size_t(k)] = fp(k);
  V fg("lensing::nn::fit_variational_iaf::flow_gradient", nf);
  T x("x", s_n, d + 1, 1, 1), y("y", s_n, d + 1, 1, 1), dy("dy", s_n, d + 1, 1, 1), dx("dx", s_n, d + 1, 1, 1);
  std::vector<double> eps(std::size_t(s_n) * d), z(static_cast<std::size_t>(d)), g(static_cast<std::size_t>(d)),
      lp(static_cast<std::size_t>(s_n));
  std::vector<char> ok(static_cast<std::size_t>(s_n));
  AdamState adam(int(np), options.adam);
  Rng rng(options.seed, random::purpose_variational, 2);
  long long non_finite = 0;
  int consecutive_bad = 0;
  double trace_sum = 0;
  int trace_n = 0;

  // One batch of draws through the flow; returns the number of finite draws.
  auto const draw = [&](Rng& gen) {
    for (int s = 0; s < s_n; ++s) {
      for (int i = 0; i < d; ++i) {
        double const e = gen.normal();
        eps[std::size_t(s) * d + i] = e;
        x(s, i, 0, 0) = theta[std::size_t(i)] + std::exp(theta[std::size_t(d + i)]) * e;
      }
      x(s, d, 0, 0) = 0;
    }
    flow.forward(host, x, y);
    host.fence();
  };
  for (int it = 0; it < options.max_iterations; ++it) {
    for (long k = 0; k < nf; ++k)
      fp(k) = theta[2 * std::size_t(d) + std::size_t(k)];
    draw(rng);
    int good = 0;
    double elbo_it = 0, sum_w = 0;
    for (int i = 0; i < d; ++i)
      sum_w += theta[std::size_t(d + i)];
    for (int s = 0; s < s_n; ++s) {
      for (int i = 0; i < d; ++i)
        z[std::size_t(i)] = y(s, i, 0, 0);
      double const v = eval(z.data(), g.data());
      bool const fin = std::isfinite(v);
      ok[std::size_t(s)] = fin ? 1 : 0;
      lp[std::size_t(s)] = v;
      for (int i = 0; i < d; ++i)
        dy(s, i, 0, 0) = fin ? g[std::size_t(i)] : 0.0;
      dy(s, d, 0, 0) = fin ? 1.0 : 0.0;
      if (!fin) {
        ++non_finite;
        continue;
      }
      ++good;
      double e2 = 0;
      for (int i = 0; i < d; ++i)
        e2 += eps[std::size_t(s) * d + i] * eps[std::size_t(s) * d + i];
      elbo_it += v + y(s, d, 0, 0) + sum_w + 0.5 * e2 + 0.5 * d * std::log(2 * M_PI);
    }
    if (good > 0) trace_sum += elbo_it / good, ++trace_n;
    if ((it + 1) % options.elbo_trace_every == 0 || it + 1 == options.max_iterations) {
      r.elbo_trace.push_back(trace_n > 0 ? trace_sum / trace_n : -HUGE_VAL);
      trace_sum = 0, trace_n = 0;
    }
    if (good == 0) {
      if (++consecutive_bad >= 100)
        throw std::runtime_error(std::string(where) + ": log-density non-finite at every draw of 100 iterations");
      continue;
    }
    consecutive_bad = 0;
    flow.backward(host, x, y, dy, dx, fg);
    host.fence();
    // Adam minimises −ELBO: the negated mean gradient.
    double const inv = 1.0 / good;
    for (int i = 0; i < d; ++i) {
      double gm = 0, gw = 0;
      double const sd = std::exp(theta[std::size_t(d + i)]);
      for (int s = 0; s < s_n; ++s) {
        if (!ok[std::size_t(s)]) continue;
        gm += dx(s, i, 0, 0);
        gw += dx(s, i, 0, 0) * eps[std::size_t(s) * d + i] * sd;
      }
      grad[std::size_t(i)] = -gm * inv;
      grad[std::size_t(d + i)] = -(gw * inv + 1.0);
    }
    for (long k = 0; k < nf; ++k)
      grad[2 * std::size_t(d) + std::size_t(k)] = -fg(k) * inv;
    adam.step(theta.data(), grad.data());
  }
  for (long k = 0; k < nf; ++k)
    fp(k) = theta[2 * std::size_t(d) + std::size_t(k)];
  r.mean.assign(theta.begin(), theta.begin() + d);
  r.log_sd.assign(theta.begin() + d, theta.begin() + 2 * d);
  r.iterations = options.max_iterations;

  // ELBO at the result: mean of log p(z) − log q(z) over fresh draws.
  Rng erng(options.seed, random::purpose_variational, 3);
  double sum = 0, sum2 = 0, sum_w = 0;
  for (int i = 0; i < d; ++i)
    sum_w += r.log_sd[std::size_t(i)];
  long n = 0;
  for (int done = 0; done < options.num_elbo_draws; done += s_n) {
    draw(erng);
    for (int s = 0; s < s_n && done + s < options.num_elbo_draws; ++s) {
      for (int i = 0; i < d; ++i)
        z[std::size_t(i)] = y(s, i, 0, 0);
      double const v = eval(z.data(), g.data());
      if (!std::isfinite(v)) {
        ++non_finite;
        continue;
      }
      double e2 = 0;
      for (int i = 0; i < d; ++i)
        e2 += eps[std::size_t(s) * d + i] * eps[std::size_t(s) * d + i];
      double const w = v + y(s, d, 0, 0) + sum_w + 0.5 * e2 + 0.5 * d * std::log(2 * M_PI);
      sum += w, sum2 += w * w, ++n;
    }
  }
  double const m = n > 0 ? sum / double(n) : -HUGE_VAL;
  r.elbo = m;
  r.elbo_mcse = n > 1 ? std::sqrt(std::max(0.0, sum2 / double(n) - m * m) / double(n - 1)) : HUGE_VAL;
  r.non_finite_draws = non_finite;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_IAF_VARIATIONAL_HPP
