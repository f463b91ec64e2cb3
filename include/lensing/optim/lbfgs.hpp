#ifndef LENSING_OPTIM_LBFGS_HPP
#define LENSING_OPTIM_LBFGS_HPP

/// \file
/// Limited-memory BFGS (Nocedal & Wright, "Numerical Optimization", 2nd ed.,
/// Algorithm 7.4 two-loop recursion, Algorithm 7.5) maximising a LogDensity,
/// i.e. minimising f = -log p, with the strong-Wolfe line search of
/// line_search.hpp.  Initial inverse Hessian H0 = (s^T y / y^T y) I (eq. 7.20);
/// a pair with s^T y <= 1e-12 |s| |y| is not stored (keeps H positive
/// definite).  First trial step 1 (1 / |grad|_inf on the first iteration).
/// If the line search fails the memory is cleared and steepest descent is
/// tried once more before the run stops.  A failed search (no step satisfying
/// the strong Wolfe conditions) may still return a step with sufficient
/// decrease, which is taken; but such a step never counts as convergence by
/// value_tolerance or step_tolerance: a search that fails at a kink of the
/// density (or on a rounding-noise plateau) makes tiny steps with tiny
/// changes of f, far from a stationary point.  Nor does a step that met the
/// conditions without decreasing f (sufficient decrease by rounding).  If such a step would have met
/// a tolerance, the run stops unconverged ("line search failed ...") unless
/// the steepest-descent retry is still available.

#include <lensing/core/errors.hpp>
#include <lensing/density/evaluator.hpp>
#include <lensing/optim/line_search.hpp>
#include <lensing/optim/result.hpp>

#include <chrono>
#include <cmath>
#include <deque>
#include <vector>

namespace lensing {

/// Settings of L-BFGS beyond the common OptimizeOptions.
struct LbfgsOptions {
  int memory = 10;  ///< number of (s, y) pairs kept
  LineSearchOptions line_search = {};
};

/// Maximise log p of `density` from x0 with L-BFGS.  Throws
/// std::invalid_argument for bad options, a wrong-length or non-finite x0, or a
/// density not finite at x0.  Non-finite values met during line searches are
/// treated as "too large" (the step is shortened).
template <class ExecutionSpace, class Density>
OptimizeResult lbfgs(ExecutionSpace const& space, Density const& density, std::vector<double> const& x0,
                     OptimizeOptions const& options = {}, LbfgsOptions const& lbfgs_options = {}) {
  constexpr char const* where = "lensing::lbfgs";
  detail::check_optimize_options(options, where);
  check_count(lbfgs_options.memory, 1, where, "memory");
  auto const& ls = lbfgs_options.line_search;
  check_argument(std::isfinite(ls.c1) && std::isfinite(ls.c2) && 0 < ls.c1 && ls.c1 < ls.c2 && ls.c2 < 1, where,
                 "line search needs 0 < c1 < c2 < 1");
  check_positive(ls.max_step, where, "line_search.max_step");
  check_count(ls.max_evaluations, 1, where, "line_search.max_evaluations");
  auto const t0 = std::chrono::steady_clock::now();
  DensityEvaluator<ExecutionSpace, Density> eval(space, density, where);
  int const d = eval.dimension();
  check_argument(int(x0.size()) == d, where, "x0 must have dimension() values");
  for (double v : x0)
    check_finite(v, where, "x0 value");

  // f = -log p and its gradient.
  std::vector<double> x = x0, gf(d), tmp(d);
  double f = -eval(x.data(), gf.data());
  check_argument(std::isfinite(f), where, "log-density or gradient not finite at x0");
  for (auto& v : gf)
    v = -v;
  std::deque<std::vector<double>> S, Y;
  std::deque<double> rho;
  std::vector<double> p(d), alpha_k(lbfgs_options.memory), xt(d), gt(d);
  double last_alpha = 0;
  auto dot = [d](std::vector<double> const& a, std::vector<double> const& b) {
    double s = 0;
    for (int i = 0; i < d; ++i)
      s += a[i] * b[i];
    return s;
  };
  OptimizeResult r;
  r.message = "max_iterations reached";
  bool retried = false;
  for (int it = 0; it < options.max_iterations; ++it) {
    double const gnorm = detail::inf_norm(gf);
    detail::report_progress(options, where, it, f, gnorm);
    if (gnorm <= options.gradient_tolerance) {
      r.converged = true;
      r.message = "gradient_tolerance";
      break;
    }
    // Two-loop recursion: p = -H grad f.
    for (int i = 0; i < d; ++i)
      p[i] = -gf[i];
    int const m = int(S.size());
    for (int k = m - 1; k >= 0; --k) {
      alpha_k[k] = rho[k] * dot(S[k], p);
      for (int i = 0; i < d; ++i)
        p[i] -= alpha_k[k] * Y[k][i];
    }
    if (m > 0) {
      double const gamma = dot(S[m - 1], Y[m - 1]) / dot(Y[m - 1], Y[m - 1]);
      for (auto& v : p)
        v *= gamma;
    }
    for (int k = 0; k < m; ++k) {
      double const beta = rho[k] * dot(Y[k], p);
      for (int i = 0; i < d; ++i)
        p[i] += (alpha_k[k] - beta) * S[k][i];
    }
    double dphi0 = dot(gf, p);
    if (!(dphi0 < 0)) {  // not a descent direction (numerical trouble): steepest descent
      S.clear(), Y.clear(), rho.clear();
      for (int i = 0; i < d; ++i)
        p[i] = -gf[i];
      dphi0 = dot(gf, p);
    }
    double const a1 = m == 0 ? std::min(1.0, 1.0 / gnorm) : 1.0;
    auto phi = [&](double a) {
      for (int i = 0; i < d; ++i)
        xt[i] = x[i] + a * p[i];
      double const lp = eval(xt.data(), gt.data());
      last_alpha = a;
      LineSearchPoint q{a, HUGE_VAL, HUGE_VAL};
      if (std::isfinite(lp)) {
        for (auto& v : gt)
          v = -v;
        q.phi = -lp;
        q.dphi = dot(gt, p);
      }
      return q;
    };
    auto const res = strong_wolfe_search(phi, LineSearchPoint{0, f, dphi0}, a1, ls);
    r.iterations = it + 1;
    LineSearchPoint const acc = res.first;
    if (!(acc.alpha > 0)) {
      if (!retried && m > 0) {
        retried = true;
        S.clear(), Y.clear(), rho.clear();
        continue;
      }
      r.message = "line search found no decrease";
      break;
    }
    // A search that met the strong Wolfe conditions with no actual decrease
    // (Armijo holds by rounding once c1 alpha phi'(0) is below an ulp of f,
    // e.g. across a kink) is no evidence of convergence either.
    bool const search_ok = res.second && acc.phi < f;
    // xt, gt hold the last evaluated point: re-evaluate if the search returned another.
    double fnew = acc.phi;
    if (acc.alpha != last_alpha) fnew = phi(acc.alpha).phi;
    std::vector<double> s(d), y(d);
    double dx = 0, xs = 1;
    for (int i = 0; i < d; ++i) {
      s[i] = xt[i] - x[i];
      y[i] = gt[i] - gf[i];
      dx = std::max(dx, std::fabs(s[i]));
      xs = std::max(xs, std::fabs(x[i]));
    }
    double const fold = f;
    x = xt;
    gf = gt;
    f = fnew;
    double const sy = dot(s, y), ss = dot(s, s), yy = dot(y, y);
    if (sy > 1e-12 * std::sqrt(ss * yy)) {
      if (int(S.size()) == lbfgs_options.memory) {
        S.pop_front(), Y.pop_front(), rho.pop_front();
      }
      S.push_back(s), Y.push_back(y), rho.push_back(1 / sy);
    }
    bool const fconv =
        options.value_tolerance > 0 && std::fabs(fold - f) <= options.value_tolerance * std::max(1.0, std::fabs(fold));
    bool const xconv = options.step_tolerance > 0 && dx <= options.step_tolerance * xs;
    if (!search_ok) {
      // A step from a failed search is not evidence of convergence.
      if (fconv || xconv) {
        if (!retried && m > 0) {
          retried = true;
          S.clear(), Y.clear(), rho.clear();
          continue;
        }
        r.message = "line search failed (no step satisfying the Wolfe conditions; the density may have a kink)";
        break;
      }
      continue;  // keep `retried`: a run of failed searches ends at the next stall
    }
    retried = false;
    if (fconv || xconv) {
      r.converged = true;
      r.message = fconv ? "value_tolerance" : "step_tolerance";
      break;
    }
  }
  r.x = x;
  r.value = -f;
  r.gradient.resize(d);
  for (int i = 0; i < d; ++i)
    r.gradient[i] = -gf[i];
  r.evaluations = eval.evaluations();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace lensing

#endif  // LENSING_OPTIM_LBFGS_HPP
