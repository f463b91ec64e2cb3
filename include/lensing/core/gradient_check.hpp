#ifndef LENSING_CORE_GRADIENT_CHECK_HPP
#define LENSING_CORE_GRADIENT_CHECK_HPP

/// \file
/// Finite-difference gradient checks (host): compare a hand-written gradient
/// with central differences, for your own densities, losses and layers.
///
///   auto const r = lensing::check_log_density_gradient(space, density, q);
///   if (!(r.max_error < 1e-6)) ... // coordinate r.worst is wrong
///
/// Every partial derivative k is estimated by the central difference
///
///   D_h f = (f(x + h e_k) - f(x - h e_k)) / (2 h),
///
/// whose error model is truncation + rounding:
///
///   |D_h f - df/dx_k| <= h^2/6 |f'''| + eps |f| / h
///
/// (Taylor remainder of the symmetric difference; eps the machine epsilon
/// of the arithmetic, 2.2e-16 in double, each value of f carrying a relative
/// error of about eps).  The
/// sum is smallest at h* = (3 eps |f| / |f'''|)^(1/3); with f and its
/// derivatives of order 1 on the scale s of x_k that is h ~ eps^(1/3) s
/// (6e-6 s in double), leaving an error of order eps^(2/3) ~ 4e-11 (double).
/// central_difference_step() returns cbrt(eps) max(1, |x_k|), the default
/// when h = 0.  Choose a larger h when f is noisy (iterative solvers, tables)
/// and a smaller one when f''' is large on the scale of x (sharp features).
/// The reported error of a coordinate is |D_h f - g_k| / max(1, |g_k|): an
/// absolute error for small derivatives, relative for large ones.  A
/// tolerance should be well above the model's bound: rounding grows with
/// |f| (GradientCheckResult::value), so a log-likelihood of -1e4 at h = 1e-5
/// carries ~2e-7 of rounding error in each difference.  A wrong derivative
/// usually gives an error of order 1.
///
/// Host only; the function under test may launch kernels (the checks fence
/// nothing themselves: the callable must return a finished value).

#include <lensing/core/errors.hpp>
#include <lensing/core/views.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace lensing {

/// Outcome of a finite-difference gradient check.
struct GradientCheckResult {
  double max_error = 0;          ///< max over checked coordinates of |fd - analytic| / max(1, |analytic|)
  long worst = -1;               ///< coordinate of the largest error (-1: none checked)
  double fd_at_worst = 0;        ///< central difference there
  double analytic_at_worst = 0;  ///< analytic derivative there
  double value = 0;              ///< f at the base point (sets the rounding error: eps |f| / h)
  long checked = 0;              ///< number of coordinates compared
  /// True if at least one coordinate was checked and every error is <= tol.
  bool passed(double tol) const {
    return checked > 0 && !std::isnan(max_error) && max_error <= tol;
  }  // false for a NaN error
};

/// The default central-difference step for a coordinate of value x:
/// cbrt(eps) max(1, |x|), eps the machine epsilon of Scalar (see the file comment).
template <class Scalar = double>
double central_difference_step(double x) {
  return std::cbrt(double(std::numeric_limits<Scalar>::epsilon())) * std::max(1.0, std::fabs(x));
}

/// Indices to check among n coordinates: all of [0, n) when n <= max_checks,
/// else max_checks of them spread over the range (deterministic).
inline std::vector<long> spread_indices(long n, long max_checks) {
  check_count(max_checks, 1, "lensing::spread_indices", "max_checks");
  std::vector<long> idx;
  if (n <= max_checks) {
    for (long i = 0; i < n; ++i)
      idx.push_back(i);
  } else {
    for (long k = 0; k < max_checks; ++k)
      idx.push_back((k * n) / max_checks + (k * 7919) % std::max(1L, n / max_checks));
  }
  return idx;
}

/// The engine of every check: for each k in `indices`, the central difference
/// (loss_at(k, x0(k) + h_k) - loss_at(k, x0(k) - h_k)) / (2 h_k) against
/// analytic(k).  loss_at(k, v) returns the loss with coordinate k set to v
/// and every other coordinate at its base value (and must leave the base
/// point as it found it); x0(k) is the base value, analytic(k) the claimed
/// derivative.  h > 0: the same step for every coordinate; h = 0:
/// central_difference_step(x0(k)).  `value` is stored in the result.
/// Throws std::invalid_argument for h < 0 or non-finite.
template <class LossAt, class Base, class Analytic>
GradientCheckResult check_partials(std::vector<long> const& indices, Base const& x0, Analytic const& analytic,
                                   LossAt const& loss_at, double h = 0, double value = 0) {
  check_argument(std::isfinite(h) && h >= 0, "lensing::check_partials",
                 "h must be finite and >= 0 (0: the default step), got " + std::to_string(h));
  GradientCheckResult r;
  r.value = value;
  for (long k : indices) {
    double const base = double(x0(k));
    double const hk = h > 0 ? h : central_difference_step(base);
    double const fd = (double(loss_at(k, base + hk)) - double(loss_at(k, base - hk))) / (2 * hk);
    double const an = double(analytic(k));
    // NaN for a non-finite value or derivative, without comparing a NaN (which
    // raises FE_INVALID, a trap where floating-point exceptions are enabled).
    double const err = std::isfinite(fd) && std::isfinite(an) ? std::fabs(fd - an) / std::max(1.0, std::fabs(an))
                                                              : std::numeric_limits<double>::quiet_NaN();
    // A NaN error (a non-finite value or derivative) is the worst of all; the first one is kept.
    bool const worse = r.worst < 0 || (!std::isnan(r.max_error) && (std::isnan(err) || err > r.max_error));
    if (worse) {
      r.max_error = err;
      r.worst = k;
      r.fd_at_worst = fd;
      r.analytic_at_worst = an;
    }
    ++r.checked;
  }
  return r;
}

/// Check the gradient `grad` of f: R^n -> R at x, where f(std::vector<double>
/// const&) returns a double.  Every coordinate is checked (h as in check_partials).
template <class F>
GradientCheckResult check_gradient(F const& f, std::vector<double> const& x, std::vector<double> const& grad,
                                   double h = 0) {
  check_argument(
      grad.size() == x.size(), "lensing::check_gradient",
      "grad must have x.size() = " + std::to_string(x.size()) + " values, got " + std::to_string(grad.size()));
  std::vector<double> work = x;
  auto const at = [&](long k, double v) {
    work[std::size_t(k)] = v;
    double const y = f(static_cast<std::vector<double> const&>(work));
    work[std::size_t(k)] = x[std::size_t(k)];
    return y;
  };
  return check_partials(
      spread_indices(long(x.size()), std::max(1L, long(x.size()))), [&](long k) { return x[std::size_t(k)]; },
      [&](long k) { return grad[std::size_t(k)]; }, at, h, f(x));
}

/// Check a LogDensity's value_and_gradient (density/log_density.hpp) at the
/// host point q (dimension() values) against central differences of its
/// value; every coordinate.  The density's Views live in its memory_space
/// (copied there and back); `space` is fenced after each evaluation.  Use it
/// on a density you wrote before sampling or optimising it.
template <class ExecutionSpace, class Density>
GradientCheckResult check_log_density_gradient(ExecutionSpace const& space, Density const& density,
                                               std::vector<double> const& q, double h = 0) {
  using Scalar = typename Density::scalar_type;
  using Mem = typename Density::memory_space;
  int const d = density.dimension();
  check_argument(q.size() == std::size_t(d), "lensing::check_log_density_gradient",
                 "q must have dimension() = " + std::to_string(d) + " values, got " + std::to_string(q.size()));
  View1D<Scalar, Mem> qv("lensing::check_log_density_gradient::q", d), gv("lensing::check_log_density_gradient::g", d);
  auto hq = Kokkos::create_mirror_view(qv);
  auto hg = Kokkos::create_mirror_view(gv);
  auto const eval = [&](std::vector<double> const& x, bool keep_grad) {
    for (int i = 0; i < d; ++i)
      hq(i) = Scalar(x[std::size_t(i)]);
    Kokkos::deep_copy(qv, hq);
    double const lp = double(density.value_and_gradient(space, qv, gv));
    space.fence();
    if (keep_grad) Kokkos::deep_copy(hg, gv);
    return lp;
  };
  double const lp0 = eval(q, true);
  std::vector<double> grad(static_cast<std::size_t>(d));
  for (int i = 0; i < d; ++i)
    grad[std::size_t(i)] = double(hg(i));
  std::vector<double> work = q;
  auto const at = [&](long k, double v) {
    work[std::size_t(k)] = v;
    double const y = eval(work, false);
    work[std::size_t(k)] = q[std::size_t(k)];
    return y;
  };
  // One coordinate at a time, each with its own step (by default the one for
  // the density's scalar type: a float density needs a larger h).
  GradientCheckResult r;
  for (long k = 0; k < d; ++k) {
    double const hk = h > 0 ? h : central_difference_step<Scalar>(q[std::size_t(k)]);
    auto const one = check_partials(
        std::vector<long>{k}, [&](long j) { return q[std::size_t(j)]; }, [&](long j) { return grad[std::size_t(j)]; },
        at, hk, lp0);
    if (r.worst < 0 || (!std::isnan(r.max_error) && (std::isnan(one.max_error) || one.max_error > r.max_error)))
      r = one;
  }
  r.checked = d;
  r.value = lp0;
  return r;
}

}  // namespace lensing

#endif
