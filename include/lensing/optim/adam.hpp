#ifndef LENSING_OPTIM_ADAM_HPP
#define LENSING_OPTIM_ADAM_HPP

/// \file
/// Adam (Kingma & Ba 2015, arXiv:1412.6980, Algorithm 1): a driver
/// maximising a LogDensity.  The update rule, AdamOptions and AdamState live
/// in core/adam_rule.hpp (shared with nn::Adam and the variational fits):
///
///   m_t = b1 m_{t-1} + (1 - b1) g_t,   v_t = b2 v_{t-1} + (1 - b2) g_t^2,
///   x_t = x_{t-1} - lr_t (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps),
/// with g the gradient of the objective being minimised (here -grad log p).

#include <lensing/core/adam_rule.hpp>
#include <lensing/core/errors.hpp>
#include <lensing/density/evaluator.hpp>
#include <lensing/optim/result.hpp>

#include <chrono>
#include <cmath>
#include <vector>

namespace lensing {

//----------------------------------------------------------------------------
/// Maximise log p of `density` (a LogDensity) from x0 with Adam.  The result
/// holds the best point visited.  Converges on |grad log p|_inf <=
/// gradient_tolerance (or the value/step criteria of result.hpp); a
/// non-finite value or gradient stops the run unconverged.  Throws
/// std::invalid_argument for bad options, a wrong-length or non-finite x0, or a
/// density that is not finite at x0.
template <class ExecutionSpace, class Density>
OptimizeResult adam(ExecutionSpace const& space, Density const& density, std::vector<double> const& x0,
                    OptimizeOptions const& options = {}, AdamOptions const& adam_options = {}) {
  constexpr char const* where = "lensing::adam";
  detail::check_optimize_options(options, where);
  detail::check_adam_options(adam_options, where);
  auto const t0 = std::chrono::steady_clock::now();
  DensityEvaluator<ExecutionSpace, Density> eval(space, density, where);
  int const d = eval.dimension();
  check_argument(int(x0.size()) == d, where, "x0 must have dimension() values");
  for (double v : x0)
    check_finite(v, where, "x0 value");
  std::vector<double> x = x0, g(d), ng(d), xprev(d);
  double lp = eval(x.data(), g.data());
  check_argument(std::isfinite(lp), where, "log-density or gradient not finite at x0");
  OptimizeResult r;
  r.x = x;
  r.value = lp;
  r.gradient = g;
  AdamState state(d, adam_options);
  r.message = "max_iterations reached";
  for (int it = 1; it <= options.max_iterations; ++it) {
    double const gnorm = detail::inf_norm(g);
    detail::report_progress(options, where, it - 1, -lp, gnorm);
    if (gnorm <= options.gradient_tolerance) {
      r.converged = true;
      r.message = "gradient_tolerance";
      break;
    }
    for (int i = 0; i < d; ++i)
      ng[i] = -g[i];
    xprev = x;
    state.step(x.data(), ng.data());
    double const lp_new = eval(x.data(), g.data());
    r.iterations = it;
    if (!std::isfinite(lp_new)) {
      r.message = "non-finite log-density or gradient";
      break;
    }
    if (lp_new > r.value) {
      r.x = x;
      r.value = lp_new;
      r.gradient = g;
    }
    double dx = 0, xs = 1;
    for (int i = 0; i < d; ++i) {
      dx = std::max(dx, std::fabs(x[i] - xprev[i]));
      xs = std::max(xs, std::fabs(xprev[i]));
    }
    bool const fconv =
        options.value_tolerance > 0 && std::fabs(lp_new - lp) <= options.value_tolerance * std::max(1.0, std::fabs(lp));
    bool const xconv = options.step_tolerance > 0 && dx <= options.step_tolerance * xs;
    lp = lp_new;
    if (fconv || xconv) {
      r.converged = true;
      r.message = fconv ? "value_tolerance" : "step_tolerance";
      break;
    }
  }
  if (r.converged) {
    r.x = x;
    r.value = lp;
    r.gradient = g;
  }
  r.evaluations = eval.evaluations();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace lensing

#endif  // LENSING_OPTIM_ADAM_HPP
