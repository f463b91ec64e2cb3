#ifndef LENSING_OPTIM_RESULT_HPP
#define LENSING_OPTIM_RESULT_HPP

/// \file
/// Options and result shared by the optimizers (adam.hpp, lbfgs.hpp,
/// levenberg_marquardt.hpp).  Optimizers of a LogDensity *maximise* log p
/// (i.e. minimise f = -log p: MAP estimation); least squares minimises
/// f = |r|^2 / 2.  Convergence (any one suffices):
///   |grad f|_inf <= gradient_tolerance,
///   |f_k - f_{k+1}| <= value_tolerance * max(1, |f_k|)   (accepted steps only),
///   |x_k - x_{k+1}|_inf <= step_tolerance * max(1, |x_k|_inf).
/// A criterion with tolerance 0 is off.  The run stops unconverged after
/// max_iterations or when no finite progress can be made (reported in message).

#include <lensing/core/errors.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace lensing {

/// Stopping rules and progress output of an optimizer run.
struct OptimizeOptions {
  int max_iterations = 1000;
  double gradient_tolerance = 1e-8;
  double value_tolerance = 0;  ///< relative change of f per accepted step
  double step_tolerance = 0;   ///< relative change of x per accepted step
  bool progress = false;       ///< print iteration, f and |grad|_inf to stderr
  int progress_every = 100;    ///< iterations between progress lines
};

/// Outcome of an optimizer run.
struct OptimizeResult {
  std::vector<double> x;         ///< best point found
  double value = 0;              ///< objective there: log p (LogDensity) or |r|^2/2 (least squares)
  std::vector<double> gradient;  ///< of that objective at x
  int iterations = 0;
  long long evaluations = 0;  ///< objective (and gradient / Jacobian) evaluations
  bool converged = false;
  std::string message;  ///< which criterion stopped the run
  double seconds = 0;
};

namespace detail {
inline void check_optimize_options(OptimizeOptions const& o, char const* where) {
  check_count(o.max_iterations, 1, where, "max_iterations");
  check_count(o.progress_every, 1, where, "progress_every");
  for (double t : {o.gradient_tolerance, o.value_tolerance, o.step_tolerance})
    check_nonnegative(t, where, "tolerances");
}
inline double inf_norm(std::vector<double> const& v) {
  double m = 0;
  for (double x : v)
    m = std::max(m, std::fabs(x));
  return m;
}
inline void report_progress(OptimizeOptions const& o, char const* where, int it, double f, double gnorm) {
  if (o.progress && (it % o.progress_every == 0))
    std::fprintf(stderr, "%s: iteration %d  f = %.10g  |grad|_inf = %.3g\n", where, it, f, gnorm);
}
}  // namespace detail

}  // namespace lensing

#endif  // LENSING_OPTIM_RESULT_HPP
