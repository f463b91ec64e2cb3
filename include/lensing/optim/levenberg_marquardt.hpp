#ifndef LENSING_OPTIM_LEVENBERG_MARQUARDT_HPP
#define LENSING_OPTIM_LEVENBERG_MARQUARDT_HPP

/// \file
/// Levenberg-Marquardt for nonlinear least squares, minimising
///   F(x) = |r(x)|^2 / 2,  r: R^n -> R^m,
/// with Marquardt's scaling and Nielsen's damping update (Madsen, Nielsen &
/// Tingleff 2004, "Methods for non-linear least squares problems", Algorithm
/// 3.16; Marquardt 1963).  Each iteration solves
///   (J^T J + mu D) h = -J^T r,   D = diag(J^T J) (floored at 1e-12 max D),
/// by Cholesky; gain ratio rho = (F(x) - F(x + h)) / (h^T (mu D h - J^T r) / 2);
/// rho > 0: accept, mu *= max(1/3, 1 - (2 rho - 1)^3), nu = 2;
/// otherwise mu *= nu, nu *= 2.  mu_0 = 1e-3.
///
/// Host-side, double.  The problem (archetype):
/// \code
/// struct Problem {
///   int num_residuals() const;                                 // m >= 1
///   int num_parameters() const;                                // n >= 1
///   void residuals(double const* x, double* r) const;          // r[0..m)
///   // one of:
///   void jacobian(double const* x, double* J) const;           // J row-major m x n, J_ij = dr_i/dx_j
///   void jvp(double const* x, double const* v, double* Jv) const;  // Jv[0..m) = J v
/// };
/// \endcode
/// With only jvp, J is assembled from n Jacobian-vector products per
/// accepted step (n is small: lens-model parameters).  Residuals or a
/// Jacobian that are not finite at a trial point reject the step.
/// Convergence: |J^T r|_inf <= gradient_tolerance, or the value / step
/// criteria of result.hpp.  OptimizeResult::value = F(x), gradient = J^T r.

#include <lensing/core/errors.hpp>
#include <lensing/optim/result.hpp>

#include <algorithm>
#include <cfenv>
#include <chrono>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

namespace lensing {

namespace detail {
template <class T, class = void>
struct has_residual_jacobian : std::false_type {};
template <class T>
struct has_residual_jacobian<
    T, std::void_t<decltype(std::declval<T const&>().jacobian(std::declval<double const*>(), std::declval<double*>()))>>
    : std::true_type {};
template <class T, class = void>
struct has_jvp : std::false_type {};
template <class T>
struct has_jvp<T, std::void_t<decltype(std::declval<T const&>().jvp(
                      std::declval<double const*>(), std::declval<double const*>(), std::declval<double*>()))>>
    : std::true_type {};
template <class T, class = void>
struct has_residuals : std::false_type {};
template <class T>
struct has_residuals<T, std::void_t<decltype(int(std::declval<T const&>().num_residuals())),
                                    decltype(int(std::declval<T const&>().num_parameters())),
                                    decltype(std::declval<T const&>().residuals(
                                        std::declval<double const*>(), std::declval<double*>()))>> : std::true_type {};

// In-place Cholesky of the n x n SPD matrix a (row-major, lower triangle
// used); false if not positive definite.
inline bool cholesky(std::vector<double>& a, int n) {
  for (int j = 0; j < n; ++j) {
    double s = a[j * n + j];
    for (int k = 0; k < j; ++k)
      s -= a[j * n + k] * a[j * n + k];
    if (!(s > 0) || !std::isfinite(s)) return false;
    double const l = std::sqrt(s);
    a[j * n + j] = l;
    for (int i = j + 1; i < n; ++i) {
      double t = a[i * n + j];
      for (int k = 0; k < j; ++k)
        t -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = t / l;
    }
  }
  return true;
}
// Solve L L^T x = b with the factor of cholesky().
inline void cholesky_solve(std::vector<double> const& l, int n, std::vector<double>& b) {
  for (int i = 0; i < n; ++i) {
    double s = b[i];
    for (int k = 0; k < i; ++k)
      s -= l[i * n + k] * b[k];
    b[i] = s / l[i * n + i];
  }
  for (int i = n - 1; i >= 0; --i) {
    double s = b[i];
    for (int k = i + 1; k < n; ++k)
      s -= l[k * n + i] * b[k];
    b[i] = s / l[i * n + i];
  }
}
}  // namespace detail

/// Whether `T` models the least-squares problem archetype above.
template <class T>
constexpr bool is_least_squares_problem_v = detail::has_residuals<T>::value &&
                                            (detail::has_residual_jacobian<T>::value || detail::has_jvp<T>::value);

/// Minimise |r(x)|^2 / 2 from x0 by Levenberg-Marquardt.  Throws
/// std::invalid_argument for bad options or sizes, a non-finite x0, or
/// residuals / Jacobian not finite at x0.
template <class Problem>
OptimizeResult levenberg_marquardt(Problem const& problem, std::vector<double> const& x0,
                                   OptimizeOptions const& options = {}) {
  constexpr char const* where = "lensing::levenberg_marquardt";
  static_assert(detail::has_residuals<Problem>::value,
                "lensing::levenberg_marquardt: the problem needs num_residuals(), num_parameters() and "
                "residuals(double const* x, double* r) const");
  static_assert(detail::has_residual_jacobian<Problem>::value || detail::has_jvp<Problem>::value,
                "lensing::levenberg_marquardt: the problem needs jacobian(x, J) or jvp(x, v, Jv) const");
  detail::check_optimize_options(options, where);
  int const m = problem.num_residuals(), n = problem.num_parameters();
  check_count(m, 1, where, "num_residuals()");
  check_count(n, 1, where, "num_parameters()");
  check_argument(int(x0.size()) == n, where, "x0 must have num_parameters() values");
  for (double v : x0)
    check_finite(v, where, "x0 value");
  auto const t0 = std::chrono::steady_clock::now();
  std::fenv_t env;
  std::feholdexcept(&env);  // user residuals may overflow at wild trial points
  struct Restore {
    std::fenv_t* e;
    ~Restore() { std::fesetenv(e); }
  } restore{&env};

  long long evals = 0;
  auto all_finite = [](std::vector<double> const& v) {
    for (double a : v)
      if (!std::isfinite(a)) return false;
    return true;
  };
  auto cost = [&](std::vector<double> const& x, std::vector<double>& r) {
    problem.residuals(x.data(), r.data());
    ++evals;
    if (!all_finite(r)) return HUGE_VAL;
    double s = 0;
    for (double a : r)
      s += a * a;
    return 0.5 * s;
  };
  std::vector<double> J(std::size_t(m) * n), e(n), col(m);
  auto jacobian = [&](std::vector<double> const& x) {
    if constexpr (detail::has_residual_jacobian<Problem>::value) {
      problem.jacobian(x.data(), J.data());
    } else {
      for (int j = 0; j < n; ++j) {
        std::fill(e.begin(), e.end(), 0.0);
        e[j] = 1;
        problem.jvp(x.data(), e.data(), col.data());
        for (int i = 0; i < m; ++i)
          J[std::size_t(i) * n + j] = col[i];
      }
    }
    return all_finite(J);
  };
  std::vector<double> x = x0, r(m), rn(m), xn(n), A(std::size_t(n) * n), L, g(n), h(n), D(n);
  double F = cost(x, r);
  check_argument(std::isfinite(F), where, "residuals not finite at x0");
  check_argument(jacobian(x), where, "Jacobian not finite at x0");
  auto normal_equations = [&]() {
    for (int a = 0; a < n; ++a) {
      double s = 0;
      for (int i = 0; i < m; ++i)
        s += J[std::size_t(i) * n + a] * r[i];
      g[a] = s;
      for (int b = 0; b <= a; ++b) {
        double t = 0;
        for (int i = 0; i < m; ++i)
          t += J[std::size_t(i) * n + a] * J[std::size_t(i) * n + b];
        A[a * n + b] = A[b * n + a] = t;
      }
    }
    double dmax = 0;
    for (int a = 0; a < n; ++a)
      dmax = std::max(dmax, A[a * n + a]);
    for (int a = 0; a < n; ++a)
      D[a] = std::max(A[a * n + a], 1e-12 * std::max(dmax, 1e-300));
  };
  normal_equations();
  double mu = 1e-3, nu = 2;
  OptimizeResult res;
  res.message = "max_iterations reached";
  for (int it = 0; it < options.max_iterations; ++it) {
    double const gnorm = detail::inf_norm(g);
    detail::report_progress(options, where, it, F, gnorm);
    if (gnorm <= options.gradient_tolerance) {
      res.converged = true;
      res.message = "gradient_tolerance";
      break;
    }
    res.iterations = it + 1;
    L = A;
    for (int a = 0; a < n; ++a)
      L[a * n + a] += mu * D[a];
    bool accepted = false;
    if (detail::cholesky(L, n)) {
      for (int a = 0; a < n; ++a)
        h[a] = -g[a];
      detail::cholesky_solve(L, n, h);
      double dx = 0, xs = 1, pred = 0;
      for (int a = 0; a < n; ++a) {
        xn[a] = x[a] + h[a];
        dx = std::max(dx, std::fabs(h[a]));
        xs = std::max(xs, std::fabs(x[a]));
        pred += h[a] * (mu * D[a] * h[a] - g[a]);
      }
      pred *= 0.5;
      if (options.step_tolerance > 0 && dx <= options.step_tolerance * xs) {
        res.converged = true;
        res.message = "step_tolerance";
        break;
      }
      double const Fn = cost(xn, rn);
      double const rho = (std::isfinite(Fn) && pred > 0) ? (F - Fn) / pred : -1.0;
      if (rho > 0) {
        std::vector<double> const xold = x;
        x = xn;
        if (jacobian(x)) {
          accepted = true;
          double const Fold = F;
          F = Fn;
          r = rn;
          normal_equations();
          mu *= std::max(1.0 / 3, 1 - std::pow(2 * rho - 1, 3));
          nu = 2;
          if (options.value_tolerance > 0 &&
              std::fabs(Fold - F) <= options.value_tolerance * std::max(1.0, std::fabs(Fold))) {
            res.converged = true;
            res.message = "value_tolerance";
            break;
          }
        } else {
          x = xold;  // Jacobian not finite there: treat as a rejected step
          jacobian(x);
        }
      }
    }
    if (!accepted) {
      mu *= nu;
      nu *= 2;
      if (!(mu < 1e50)) {
        res.message = "damping diverged: no decrease possible";
        break;
      }
    }
  }
  res.x = x;
  res.value = F;
  res.gradient = g;
  res.evaluations = evals;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace lensing

#endif  // LENSING_OPTIM_LEVENBERG_MARQUARDT_HPP
