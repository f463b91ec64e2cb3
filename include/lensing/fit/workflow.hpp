#ifndef LENSING_FIT_WORKFLOW_HPP
#define LENSING_FIT_WORKFLOW_HPP

/// \file
/// The fit workflow for any LogDensity (density/log_density.hpp) over the
/// unconstrained parameters q in R^d: MAP, Laplace covariance, then NUTS or
/// variational inference started from it, and a convergence verdict.
///
///   auto map = lensing::find_map(space, density, starts);            // multi-start L-BFGS + Laplace
///   auto fine = lensing::refine_map(space, finer_density, map);      // from a cheaper density's MAP
///   auto run = lensing::sample_from_map(space, density, map, {});    // NUTS from the MAP, whitened by the covariance
///   auto conv = lensing::check_convergence(run);                     // R-hat, ESS, divergences, E-BFMI
///   if (!conv.ok) std::cerr << conv.message << "\n";
///   auto vi = lensing::fit_vi_from_map(space, density, map, {});     // full-rank VI (or mean-field)
///
/// **MAP.**  L-BFGS (optim/lbfgs.hpp) from each start (optim/multi_start.hpp);
/// the best finite run is the MAP.  A run "reached the best mode" if its end
/// point lies within Mahalanobis distance `mode_distance` of the MAP under the
/// Laplace precision (MapResult::num_at_best).
///
/// **Laplace covariance.**  The Hessian H of log p at the MAP by central
/// differences of the analytic gradient, column j = (g(q + h_j e_j) -
/// g(q - h_j e_j)) / (2 h_j), symmetrised (H + H^T) / 2.  First pass: h_j =
/// hessian_step * scale_j (MapOptions::scales, default 1); second pass (if
/// the first gave a positive definite -H): h_j = hessian_refine_step /
/// sqrt(A_jj) with A = -H, i.e. a fixed fraction of the conditional posterior
/// width along axis j, so that the step suits parameters whose width is far
/// from their scale (milliarcsecond posteriors of arcsecond parameters).  For
/// a quadratic log p central differences are exact up to rounding: error
/// ~ eps |grad terms| / h.  The covariance is A^{-1} = V diag(1/lambda) V^T
/// (Eigen::SelfAdjointEigenSolver).  If A is not positive definite (lambda <=
/// relative_eigen_floor * max|lambda|, e.g. at a saddle or on a flat
/// direction) or the gradient is not finite at a stencil point, hessian_ok =
/// false and the covariance is regularised: each eigenvalue is replaced by
/// max(|lambda|, floor), floor = relative_eigen_floor * max|lambda| (the
/// curvature magnitude keeps the scale of a saddle direction; the floor bounds
/// flat ones); with no finite Hessian at all, diag(scale_j^2).
///
/// **Screening** (MapOptions::screen_iterations): every start runs a few
/// L-BFGS iterations, only the best go on.  **refine_map()**: the MAP of a
/// finer density (e.g. the likelihood with adaptive supersampling) from the
/// MAP of a cheaper one, by polishing rounds whitened by the cheaper MAP's
/// Laplace covariance, then the Laplace approximation there.
///
/// **Polishing.**  L-BFGS on raw lens parameters (widths from milliarcseconds
/// to tens of counts: condition numbers ~1e6) often stops on max_iterations
/// short of the mode; find_map() restarts it from the best run on the density
/// whitened by the Laplace covariance there (MapOptions::polish_rounds).
///
/// **Whitening.**  sample_from_map() and fit_vi_from_map() run on z with
/// q = q_MAP + W z (detail::WhitenedDensity; W the Cholesky factor of the
/// Laplace covariance, or its diagonal scale for mean-field VI) and map the
/// results back to q.  NUTS: chain c starts at z_c = jitter * N(0, I) from
/// random stream (seed, purpose_chain, c, 1) of core/random.hpp
/// (deterministic per seed, independent of the chain's own stream (seed,
/// purpose_chain, c)), the metric (dense if d <= dense_max_dimension, else
/// diagonal) starts at the identity in z, i.e. at the Laplace covariance,
/// and is adapted there, diagonal in z by default (FromMapOptions::adapt_metric,
/// adapt_dense; short warm-ups keep the Laplace covariance).
/// VI starts at N(0, I) in z, its ELBO (and trace) shifted by log det W back to q.
///
/// **Convergence.**  check_convergence() applies the thresholds of Vehtari et
/// al. 2021 and Betancourt 2016 (sample/diagnostics.hpp): rank-normalised
/// split R-hat, bulk and tail ESS, divergences after warm-up, E-BFMI of every
/// chain; a run that fails any of them has ok = false and a message that says
/// which and where.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/density/evaluator.hpp>
#include <lensing/density/log_density.hpp>
#include <lensing/optim/lbfgs.hpp>
#include <lensing/optim/multi_start.hpp>
#include <lensing/optim/result.hpp>
#include <lensing/sample/diagnostics.hpp>
#include <lensing/sample/draws.hpp>
#include <lensing/sample/sampler.hpp>
#include <lensing/sample/variational.hpp>

#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace lensing {

/// Settings of find_map().
struct MapOptions {
  /// Stopping rules of each L-BFGS run.
  OptimizeOptions optimize = {1000, 1e-6, 1e-13, 0, false, 100};
  LbfgsOptions lbfgs = {};
  /// Per-parameter scales (d values, > 0; empty: all 1): first-pass Hessian
  /// steps and the fallback covariance diag(scale^2).
  std::vector<double> scales;
  double hessian_step = 1e-3;           ///< first pass: h_j = hessian_step * scale_j
  double hessian_refine_step = 1e-2;    ///< second pass: h_j = hessian_refine_step / sqrt(A_jj); 0: no second pass
  double relative_eigen_floor = 1e-14;  ///< eigenvalues of A below this * max|lambda| (~50 eps) count as not positive
  double mode_distance = 1;             ///< Mahalanobis radius of "reached the best mode"
  /// Polishing rounds of the best run: L-BFGS again from it on the density
  /// whitened by its Laplace covariance (q = q_best + L z, L L^T = covariance),
  /// where parameters of very different widths all have unit scale (the raw
  /// problem's condition number can be 1e6 and stall L-BFGS); stops after a
  /// round that converged and moved log p by less than 1e-6.  0: none.
  int polish_rounds = 3;
  /// Screening of the starts (0: none): every start first runs at most
  /// screen_iterations L-BFGS iterations (MapResult::screen), and only the
  /// screen_keep end points of highest log p go on to full L-BFGS runs
  /// (MapResult::starts) and the polishing.  Prior draws far from the mode
  /// otherwise spend up to max_iterations each stalled in a poor local
  /// optimum.  Measured on examples/fit_lens (19 parameters, 8 prior starts):
  /// 50 iterations, keep 1 reach the same MAP as no screening with 2,045
  /// instead of 9,297 gradients (48x48 pixels) and 2,179 instead of 8,876
  /// (100x100); the best screened start was the one that reaches the mode.
  int screen_iterations = 0;
  int screen_keep = 1;
  bool progress = false;  ///< one line per start and one for the Hessian, to stderr
};

/// The Laplace approximation at a point: Hessian of log p and covariance.
struct LaplaceApproximation {
  int dimension = 0;
  std::vector<double> hessian;     ///< of log p, d x d row-major, symmetrised
  std::vector<double> precision;   ///< A = -hessian, regularised where hessian_ok is false
  std::vector<double> covariance;  ///< A^{-1}, d x d row-major
  bool hessian_ok = false;         ///< -hessian finite and positive definite (no regularisation)
  int clipped_eigenvalues = 0;     ///< eigenvalues replaced by the regularisation
  long long gradient_evaluations = 0;
  std::string message;  ///< what was done ("positive definite", or why and how it was regularised)
};

/// Outcome of find_map().
struct MapResult {
  std::vector<double> q;  ///< the MAP, unconstrained
  double log_density = 0;
  std::vector<double> gradient;    ///< of log p at q
  std::vector<double> covariance;  ///< Laplace covariance, d x d row-major
  std::vector<double> hessian;     ///< of log p at q, d x d row-major (symmetrised, not regularised)
  bool hessian_ok = false;         ///< false: the covariance was regularised (see hessian_message)
  int clipped_eigenvalues = 0;
  std::string hessian_message;
  MultiStartResult screen;             ///< the screening runs (MapOptions::screen_iterations; else empty)
  MultiStartResult starts;             ///< every full L-BFGS run (starts.best is the MAP's run)
  int num_at_best = 0;                 ///< runs of `starts` that ended within mode_distance of the MAP
  std::vector<OptimizeResult> polish;  ///< the whitened L-BFGS rounds from the best run (x in whitened units)
  bool converged = false;              ///< the last L-BFGS run that produced q met a convergence criterion
  long long gradient_evaluations = 0;  ///< L-BFGS runs (screening included) and Hessians
  double seconds = 0;

  int dimension() const { return int(q.size()); }
  /// Laplace standard deviations sqrt(covariance_ii).
  std::vector<double> sd() const {
    int const d = dimension();
    std::vector<double> s(static_cast<std::size_t>(d));
    for (int i = 0; i < d; ++i)
      s[std::size_t(i)] = std::sqrt(covariance[std::size_t(i) * d + i]);
    return s;
  }
};

namespace detail {
/// Gradient of log p at x into g; false if the value or gradient is not finite.
template <class Evaluator>
bool finite_gradient(Evaluator& eval, std::vector<double> const& x, std::vector<double>& g) {
  return std::isfinite(eval(x.data(), g.data()));
}

/// Central-difference Hessian of log p at q with steps h (d*d, symmetrised);
/// false if any stencil point gave a non-finite gradient.
template <class Evaluator>
bool central_hessian(Evaluator& eval, std::vector<double> const& q, std::vector<double> const& h,
                     std::vector<double>& H) {
  std::size_t const d = q.size();
  H.assign(d * d, 0.0);
  std::vector<double> x = q, gp(d), gm(d);
  for (std::size_t j = 0; j < d; ++j) {
    x[j] = q[j] + h[j];
    bool ok = finite_gradient(eval, x, gp);
    x[j] = q[j] - h[j];
    ok = finite_gradient(eval, x, gm) && ok;
    x[j] = q[j];
    if (!ok) return false;
    double const step = (q[j] + h[j]) - (q[j] - h[j]);  // the step actually taken (rounding of q +- h)
    for (std::size_t i = 0; i < d; ++i)
      H[i * d + j] = (gp[i] - gm[i]) / step;
  }
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t j = 0; j < i; ++j)
      H[i * d + j] = H[j * d + i] = 0.5 * (H[i * d + j] + H[j * d + i]);
  for (double v : H)
    if (!std::isfinite(v)) return false;
  return true;
}

/// Precision and covariance from a Hessian of log p (see the file comment).
inline void laplace_from_hessian(LaplaceApproximation& out, double relative_floor) {
  int const d = out.dimension;
  using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Matrix A(d, d);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j)
      A(i, j) = -out.hessian[std::size_t(i) * d + j];
  Eigen::SelfAdjointEigenSolver<Matrix> es(A);
  Eigen::VectorXd lam = es.eigenvalues();
  double const lmax = lam.cwiseAbs().maxCoeff();
  double const floor = lmax > 0 ? relative_floor * lmax : 1.0;
  int clipped = 0;
  double lmin = lam.minCoeff();
  for (int i = 0; i < d; ++i)
    if (!(lam(i) > floor)) {
      lam(i) = std::max(std::fabs(lam(i)), floor);
      ++clipped;
    }
  Matrix const& V = es.eigenvectors();
  Matrix const P = V * lam.asDiagonal() * V.transpose();
  Matrix const C = V * lam.cwiseInverse().asDiagonal() * V.transpose();
  out.precision.assign(std::size_t(d) * d, 0.0);
  out.covariance.assign(std::size_t(d) * d, 0.0);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) {  // symmetric to the last bit (the sampler checks symmetry)
      out.precision[std::size_t(i) * d + j] = 0.5 * (P(i, j) + P(j, i));
      out.covariance[std::size_t(i) * d + j] = 0.5 * (C(i, j) + C(j, i));
    }
  out.clipped_eigenvalues = clipped;
  out.hessian_ok = clipped == 0;
  char buf[256];
  if (clipped == 0)
    std::snprintf(buf, sizeof buf, "-Hessian positive definite (eigenvalues %.3g .. %.3g)", lmin, lmax);
  else
    std::snprintf(buf, sizeof buf,
                  "-Hessian not positive definite: %d of %d eigenvalues <= %.3g (smallest %.3g) replaced by "
                  "max(|lambda|, %.3g); the covariance is regularised",
                  clipped, d, floor, lmin, floor);
  out.message = buf;
}
}  // namespace detail

/// The Laplace approximation of `density` at q (a mode): Hessian by central
/// differences with steps `steps` (d values, > 0), refined once with steps
/// refine_step / sqrt(A_jj) when refine_step > 0 and the first pass was
/// positive definite.  `scales` (d values or empty) give the fallback
/// covariance diag(scale^2) when no finite Hessian can be formed.
/// Throws std::invalid_argument for wrong sizes or non-positive steps.
template <class ExecutionSpace, class Density>
LaplaceApproximation laplace_approximation(ExecutionSpace const& space, Density const& density,
                                           std::vector<double> const& q, std::vector<double> const& steps,
                                           double refine_step = 1e-2, double relative_eigen_floor = 1e-14,
                                           std::vector<double> const& scales = {}) {
  constexpr char const* where = "lensing::laplace_approximation";
  DensityEvaluator<ExecutionSpace, Density> eval(space, density, where);
  int const d = eval.dimension();
  check_argument(int(q.size()) == d, where, "q must have dimension() values");
  check_argument(int(steps.size()) == d, where, "steps must have dimension() values");
  check_argument(scales.empty() || int(scales.size()) == d, where, "scales must be empty or have dimension() values");
  for (double v : q)
    check_finite(v, where, "q value");
  for (double v : steps)
    check_positive(v, where, "step");
  check_nonnegative(refine_step, where, "refine_step");
  check_argument(std::isfinite(relative_eigen_floor) && relative_eigen_floor > 0 && relative_eigen_floor < 1, where,
                 "relative_eigen_floor must be in (0, 1)");
  LaplaceApproximation out;
  out.dimension = d;
  bool ok = detail::central_hessian(eval, q, steps, out.hessian);
  if (ok) {
    detail::laplace_from_hessian(out, relative_eigen_floor);
    if (out.hessian_ok && refine_step > 0) {
      std::vector<double> h2(static_cast<std::size_t>(d)), H2;
      for (int j = 0; j < d; ++j)
        h2[std::size_t(j)] = refine_step / std::sqrt(out.precision[std::size_t(j) * d + j]);
      if (detail::central_hessian(eval, q, h2, H2)) {
        out.hessian = H2;
        detail::laplace_from_hessian(out, relative_eigen_floor);
      }
    }
  }
  if (!ok) {
    out.hessian.assign(std::size_t(d) * d, NAN);
    out.precision.assign(std::size_t(d) * d, 0.0);
    out.covariance.assign(std::size_t(d) * d, 0.0);
    for (int i = 0; i < d; ++i) {
      double const s = scales.empty() ? 1.0 : scales[std::size_t(i)];
      out.covariance[std::size_t(i) * d + i] = s * s;
      out.precision[std::size_t(i) * d + i] = 1 / (s * s);
    }
    out.hessian_ok = false;
    out.clipped_eigenvalues = d;
    out.message = "gradient not finite at a Hessian stencil point; the covariance is diag(scale^2)";
  }
  out.gradient_evaluations = eval.evaluations();
  return out;
}

namespace detail {
/// log p(q0 + L z) and its gradient L^T grad log p (host, double): the
/// density seen in units of a covariance with Cholesky factor L.  Evaluates
/// the wrapped density through its own DensityEvaluator (clone() makes a
/// new one), so it is a LogDensity for lbfgs and the other drivers.
template <class ExecutionSpace, class Density>
class WhitenedDensity {
 public:
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  static constexpr bool launches_kernels = launches_kernels_v<Density>;

  WhitenedDensity(ExecutionSpace const& space, Density const& density, std::vector<double> q0, std::vector<double> L)
      : space_(space),
        density_(&density),
        q0_(std::move(q0)),
        L_(std::move(L)),
        d_(int(q0_.size())),
        eval_(std::make_shared<DensityEvaluator<ExecutionSpace, Density>>(space, density, "lensing::find_map")),
        q_(q0_.size()),
        g_(q0_.size()) {}
  WhitenedDensity clone() const {
    WhitenedDensity c(*this);
    c.eval_ = std::make_shared<DensityEvaluator<ExecutionSpace, Density>>(space_, *density_, "lensing::find_map");
    return c;
  }
  int dimension() const { return d_; }
  /// q0 + L z.
  std::vector<double> point(double const* z) const {
    std::vector<double> q(static_cast<std::size_t>(d_));
    for (int i = 0; i < d_; ++i) {
      double s = q0_[std::size_t(i)];
      for (int k = 0; k <= i; ++k)
        s += L_[std::size_t(i) * d_ + k] * z[k];
      q[std::size_t(i)] = s;
    }
    return q;
  }
  template <class Space>
  double value_and_gradient(Space const&, View1D<double, Kokkos::HostSpace> const& z,
                            View1D<double, Kokkos::HostSpace> const& gz) const {
    for (int i = 0; i < d_; ++i) {
      double s = q0_[std::size_t(i)];
      for (int k = 0; k <= i; ++k)
        s += L_[std::size_t(i) * d_ + k] * z(k);
      q_[std::size_t(i)] = s;
    }
    double const lp = (*eval_)(q_.data(), g_.data());
    for (int k = 0; k < d_; ++k) {
      double s = 0;
      for (int i = k; i < d_; ++i)
        s += L_[std::size_t(i) * d_ + k] * g_[std::size_t(i)];
      gz(k) = std::isfinite(lp) ? s : 0.0;
    }
    return lp;
  }

 private:
  ExecutionSpace space_;
  Density const* density_;
  std::vector<double> q0_, L_;
  int d_;
  std::shared_ptr<DensityEvaluator<ExecutionSpace, Density>> eval_;
  mutable std::vector<double> q_, g_;
};
inline std::vector<double> cholesky_lower(std::vector<double> const& cov, int d, char const* where);
inline void check_map_result(MapResult const& map, int d, char const* where);
}  // namespace detail

namespace detail {
inline void check_map_options(MapOptions const& options, int d, char const* where) {
  check_argument(options.scales.empty() || int(options.scales.size()) == d, where,
                 "scales must be empty or have dimension() values");
  for (double s : options.scales)
    check_positive(s, where, "scale");
  check_positive(options.hessian_step, where, "hessian_step");
  check_nonnegative(options.mode_distance, where, "mode_distance");
  check_count(options.screen_iterations, 0, where, "screen_iterations");
  check_count(options.screen_keep, 1, where, "screen_keep");
  check_count(options.polish_rounds, 0, where, "polish_rounds");
}

/// From r.q (log p = r.log_density): polishing rounds in units of the
/// Laplace covariance (`initial_covariance` for the first round when given,
/// else the Laplace approximation at r.q), then the Laplace approximation at
/// the final point into r; returns it.
template <class ExecutionSpace, class Density>
LaplaceApproximation polish_map(ExecutionSpace const& space, Density const& density, MapOptions const& options,
                                MapResult& r, std::vector<double> const* initial_covariance, char const* where) {
  int const d = density.dimension();
  std::vector<double> steps(static_cast<std::size_t>(d));
  for (int j = 0; j < d; ++j)
    steps[std::size_t(j)] = options.hessian_step * (options.scales.empty() ? 1.0 : options.scales[std::size_t(j)]);
  auto laplace_here = [&] {
    LaplaceApproximation l = laplace_approximation(space, density, r.q, steps, options.hessian_refine_step,
                                                   options.relative_eigen_floor, options.scales);
    r.gradient_evaluations += l.gradient_evaluations;
    return l;
  };
  LaplaceApproximation lap;
  bool lap_at_q = false;
  if (initial_covariance) {
    lap.dimension = d;
    lap.covariance = *initial_covariance;
  } else {
    lap = laplace_here();
    lap_at_q = true;
  }
  for (int round = 0; round < options.polish_rounds; ++round) {
    WhitenedDensity<ExecutionSpace, Density> const white(space, density, r.q, cholesky_lower(lap.covariance, d, where));
    OptimizeResult pr = lbfgs(space, white, std::vector<double>(std::size_t(d), 0.0), options.optimize, options.lbfgs);
    r.gradient_evaluations += pr.evaluations;
    double const gain = pr.value - r.log_density;
    if (options.progress)
      std::fprintf(stderr, "%s: polishing round %d: log p %.10g (%+.3g; %s)\n", where, round + 1, pr.value, gain,
                   pr.message.c_str());
    bool const better = std::isfinite(pr.value) && gain >= 0;
    bool moved = false;
    for (double z : pr.x)
      moved = moved || z != 0;
    if (better && moved) {
      r.q = white.point(pr.x.data());
      r.log_density = pr.value;
      r.converged = pr.converged;
    }
    r.polish.push_back(std::move(pr));
    if (!better || !moved) break;
    lap = laplace_here();
    lap_at_q = true;
    // A round that gained < 1e-6 ends the polishing even when L-BFGS did not
    // converge: with a float likelihood its line search stops at the noise
    // floor ("no decrease"), and another round from the same point repeats it.
    if (gain < 1e-6) break;
  }
  if (!lap_at_q) lap = laplace_here();
  {  // the gradient in the original parameters at the final point
    DensityEvaluator<ExecutionSpace, Density> eval(space, density, where);
    r.gradient.assign(std::size_t(d), 0.0);
    r.log_density = eval(r.q.data(), r.gradient.data());
    r.gradient_evaluations += 1;
  }
  r.hessian = lap.hessian;
  r.covariance = lap.covariance;
  r.hessian_ok = lap.hessian_ok;
  r.clipped_eigenvalues = lap.clipped_eigenvalues;
  r.hessian_message = lap.message;
  return lap;
}

/// Runs of `runs` that ended within Mahalanobis distance `radius` of q under `precision`.
inline int runs_near(MultiStartResult const& runs, std::vector<double> const& q, std::vector<double> const& precision,
                     double radius) {
  int const d = int(q.size());
  int n = 0;
  for (auto const& run : runs.runs) {
    if (!std::isfinite(run.value) || int(run.x.size()) != d) continue;
    double m2 = 0;
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j)
        m2 += (run.x[std::size_t(i)] - q[std::size_t(i)]) * precision[std::size_t(i) * d + j] *
              (run.x[std::size_t(j)] - q[std::size_t(j)]);
    if (std::sqrt(std::max(0.0, m2)) <= radius) ++n;
  }
  return n;
}
}  // namespace detail

/// Multi-start L-BFGS from `starts` (each d unconstrained values, e.g. prior
/// draws), then the Laplace covariance at the best end point (see the file
/// comment).  With MapOptions::screen_iterations > 0 and more starts than
/// screen_keep, the starts are screened first (MapResult::screen) and only
/// the best screen_keep go on.  Starts where the density is not finite are
/// recorded as failed runs.  Throws std::invalid_argument for bad options or
/// starts, std::runtime_error if no start gave a finite result.
template <class ExecutionSpace, class Density>
MapResult find_map(ExecutionSpace const& space, Density const& density, std::vector<std::vector<double>> const& starts,
                   MapOptions const& options = {}) {
  static_assert(check_log_density<Density, ExecutionSpace>(), "lensing::find_map: see the messages above");
  constexpr char const* where = "lensing::find_map";
  auto const t0 = std::chrono::steady_clock::now();
  int const d = density.dimension();
  check_count(d, 1, where, "density.dimension()");
  check_count(int(starts.size()), 1, where, "number of starts");
  for (auto const& s : starts)
    check_argument(int(s.size()) == d, where, "every start must have dimension() values");
  detail::check_map_options(options, d, where);

  MapResult r;
  auto run_lbfgs = [&](OptimizeOptions const& o) {
    return [&space, &density, &options, o](std::vector<double> const& x0) {
      return lbfgs(space, density, x0, o, options.lbfgs);
    };
  };
  std::vector<std::vector<double>> kept;
  bool const screen = options.screen_iterations > 0 && int(starts.size()) > options.screen_keep;
  if (screen) {
    OptimizeOptions so = options.optimize;
    so.max_iterations = options.screen_iterations;
    r.screen = multi_start(starts, run_lbfgs(so), OptimizeSense::maximize, options.progress);
    std::vector<int> order;
    for (int i = 0; i < int(r.screen.runs.size()); ++i) {
      r.gradient_evaluations += r.screen.runs[std::size_t(i)].evaluations;
      if (std::isfinite(r.screen.runs[std::size_t(i)].value)) order.push_back(i);
    }
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return r.screen.runs[std::size_t(a)].value > r.screen.runs[std::size_t(b)].value;
    });
    for (int i = 0; i < int(order.size()) && i < options.screen_keep; ++i)
      kept.push_back(r.screen.runs[std::size_t(order[std::size_t(i)])].x);
    if (options.progress)
      std::fprintf(stderr, "%s: screening (%d L-BFGS iterations per start): %zu of %zu starts go on\n", where,
                   options.screen_iterations, kept.size(), starts.size());
  }
  r.starts =
      multi_start(screen ? kept : starts, run_lbfgs(options.optimize), OptimizeSense::maximize, options.progress);
  auto const& best = r.starts.best_run();
  r.q = best.x;
  r.log_density = best.value;
  r.gradient = best.gradient;
  for (auto const& run : r.starts.runs)
    r.gradient_evaluations += run.evaluations;
  r.converged = best.converged;

  LaplaceApproximation const lap = detail::polish_map(space, density, options, r, nullptr, where);
  // Runs within Mahalanobis distance mode_distance of the MAP (under the
  // possibly regularised precision).
  r.num_at_best = detail::runs_near(r.starts, r.q, lap.precision, options.mode_distance);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (options.progress)
    std::fprintf(stderr, "%s: log p = %.10g, %d of %zu runs at the best mode; %s (%.2f s)\n", where, r.log_density,
                 r.num_at_best, r.starts.runs.size(), r.hessian_message.c_str(), r.seconds);
  return r;
}

/// The MAP of `density` from a nearby point: a MAP of a cheaper
/// approximation of the same posterior (e.g. the likelihood with fewer
/// sub-pixels), whose Laplace covariance whitens the first polishing round
/// (MapOptions::polish_rounds >= 1), so that no L-BFGS run on the raw
/// parameters and no Hessian at the starting point are needed; then the
/// Laplace approximation at the new MAP.  MapResult::starts is empty;
/// `near.covariance` must be positive definite.  Throws
/// std::invalid_argument for a MapResult of another dimension, bad options
/// or a density that is not finite at near.q.
template <class ExecutionSpace, class Density>
MapResult refine_map(ExecutionSpace const& space, Density const& density, MapResult const& near,
                     MapOptions const& options = {}) {
  static_assert(check_log_density<Density, ExecutionSpace>(), "lensing::refine_map: see the messages above");
  constexpr char const* where = "lensing::refine_map";
  auto const t0 = std::chrono::steady_clock::now();
  int const d = density.dimension();
  detail::check_map_result(near, d, where);
  detail::check_map_options(options, d, where);
  check_count(options.polish_rounds, 1, where, "polish_rounds");
  MapResult r;
  r.q = near.q;
  {
    DensityEvaluator<ExecutionSpace, Density> eval(space, density, where);
    r.gradient.assign(std::size_t(d), 0.0);
    r.log_density = eval(r.q.data(), r.gradient.data());
    r.gradient_evaluations = 1;
  }
  check_argument(std::isfinite(r.log_density), where, "the density is not finite at the given MAP");
  detail::polish_map(space, density, options, r, &near.covariance, where);
  r.num_at_best = 1;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (options.progress)
    std::fprintf(stderr, "%s: log p = %.10g; %s (%.2f s)\n", where, r.log_density, r.hessian_message.c_str(),
                 r.seconds);
  return r;
}

namespace detail {
/// Lower Cholesky factor of a covariance (d x d row-major); throws if not positive definite.
inline std::vector<double> cholesky_lower(std::vector<double> const& cov, int d, char const* where) {
  using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  check_argument(cov.size() == std::size_t(d) * d, where, "covariance must have dimension()^2 values");
  Matrix C(d, d);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) {
      check_finite(cov[std::size_t(i) * d + j], where, "covariance value");
      C(i, j) = cov[std::size_t(i) * d + j];
    }
  Eigen::LLT<Matrix> llt(C);
  if (llt.info() != Eigen::Success) throw_invalid_argument(where, "the covariance is not positive definite");
  Matrix const L = llt.matrixL();
  std::vector<double> out(std::size_t(d) * d, 0.0);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j <= i; ++j)
      out[std::size_t(i) * d + j] = L(i, j);
  return out;
}
inline void check_map_result(MapResult const& map, int d, char const* where) {
  check_argument(int(map.q.size()) == d, where, "the MapResult has a different dimension than the density");
  check_argument(map.covariance.size() == std::size_t(d) * d, where, "the MapResult has no d x d covariance");
  for (double v : map.q)
    check_finite(v, where, "MAP value");
}
}  // namespace detail

/// How sample_from_map() starts the chains.
struct FromMapOptions {
  double jitter = 1;             ///< chain c starts at q_MAP + jitter L z_c (0: all at the MAP)
  int dense_max_dimension = 64;  ///< dense metric up to this dimension, diagonal above
  /// Sample z with q = q_MAP + L z (L L^T = the Laplace covariance) and map
  /// the draws back to q: the warm-up then adapts in units of the posterior
  /// width, where the metric estimate's regularisation towards the identity
  /// (adaptation.hpp) is harmless; on raw parameters whose widths are
  /// milliarcseconds it dominates the estimate and NUTS needs ~10x more
  /// leapfrogs.  false: sample q directly with the covariance as the initial
  /// inverse metric.
  bool whiten = true;
  /// With whiten and fewer warm-up iterations than this, the metric is not
  /// adapted (SamplerOptions::metric = unit in z, i.e. the Laplace covariance
  /// kept fixed; the step size is still adapted): a dense metric estimated
  /// from the short windows of a short warm-up (25 draws in 19 dimensions at
  /// 150 warm-up iterations) is singular and NUTS then needs ~10x more
  /// leapfrogs than with the Laplace metric.
  int adapt_metric_min_warmup = 500;
  /// With whiten: adapt the metric during warm-up from the identity in z
  /// (Stan's windows; the step size is adapted either way), diagonal in z
  /// unless adapt_dense; false keeps the Laplace covariance as the metric.
  /// Measured on examples/fit_lens (19 parameters, 4 chains x (1000 + 1000),
  /// target 0.8, same MAP and seed).  48x48 pixels: Laplace kept 59,301
  /// gradients, 7.0 leapfrogs per draw, min bulk / tail ESS 1,482 / 961,
  /// 2 divergences; diagonal in z 85,248, 11.0, 2,090 / 2,080, none; dense in
  /// z 112,788, 10.8, 1,322 / 997, none (its windows restart the step size
  /// and estimate 190 covariances from a few hundred draws).  100x100: Laplace
  /// kept 68,257 gradients, 7.6 leapfrogs per draw, but 22 divergences and min
  /// bulk ESS 536 at the lens light's R_sersic, whose posterior (a tail to the
  /// prior bound) is wider than its Laplace width; the diagonal in z rescales
  /// such directions and keeps the Laplace correlations (see
  /// examples/README.md, fit_lens, for its full run).
  bool adapt_metric = true;
  bool adapt_dense = false;  ///< with whiten and adapt_metric: a dense metric in z (d <= dense_max_dimension)
};

/// NUTS (or static HMC, per `options`) initialised at the MAP with the Laplace
/// covariance as the initial inverse metric.  `options.init`,
/// `options.init_inv_metric` and `options.metric` are set here (metric unit is
/// kept, with the diagonal as its fixed inverse metric).  Throws
/// std::invalid_argument for a MapResult of another dimension or a covariance
/// that is not positive definite.
template <class ExecutionSpace, class Density>
SampleResult sample_from_map(ExecutionSpace const& space, Density const& density, MapResult const& map,
                             SamplerOptions options = {}, FromMapOptions const& from = {}) {
  constexpr char const* where = "lensing::sample_from_map";
  int const d = density.dimension();
  detail::check_map_result(map, d, where);
  check_nonnegative(from.jitter, where, "jitter");
  check_count(options.num_chains, 1, where, "num_chains");
  std::vector<double> const L = detail::cholesky_lower(map.covariance, d, where);
  options.init.assign(std::size_t(options.num_chains) * d, 0.0);
  std::vector<double> z(static_cast<std::size_t>(d));
  for (int c = 0; c < options.num_chains; ++c) {
    Rng rng(options.seed, random::purpose_chain, std::uint64_t(c), 1);
    for (auto& v : z)
      v = rng.normal();
    for (int i = 0; i < d; ++i) {
      double s = map.q[std::size_t(i)];
      for (int k = 0; k <= i; ++k)
        s += from.jitter * L[std::size_t(i) * d + k] * z[std::size_t(k)];
      options.init[std::size_t(c) * d + i] = s;
    }
  }
  bool const dense = d <= from.dense_max_dimension && options.metric != MetricKind::unit;
  if (options.metric != MetricKind::unit) options.metric = dense ? MetricKind::dense : MetricKind::diagonal;
  if (from.whiten) {
    // init holds q_MAP + jitter L z_c: back to z_c = jitter z.
    for (int c = 0; c < options.num_chains; ++c) {
      Rng rng(options.seed, random::purpose_chain, std::uint64_t(c), 1);
      for (int i = 0; i < d; ++i)
        options.init[std::size_t(c) * d + i] = from.jitter * rng.normal();
    }
    options.init_inv_metric.clear();  // identity in z = the Laplace covariance in q
    if (!from.adapt_metric || options.num_warmup < from.adapt_metric_min_warmup)
      options.metric = MetricKind::unit;
    else if (options.metric != MetricKind::unit)
      options.metric = from.adapt_dense && dense ? MetricKind::dense : MetricKind::diagonal;
    if (launches_kernels_v<Density>) options.threads = 1;  // chains on this thread (parallel_chains.hpp)
    detail::WhitenedDensity<ExecutionSpace, Density> const white(space, density, map.q, L);
    SampleResult r = sample(space, white, options);
    std::size_t const n = std::size_t(r.num_chains) * r.num_draws;
    for (std::size_t j = 0; j < n; ++j) {
      auto const q = white.point(r.draws.data() + j * d);
      std::copy(q.begin(), q.end(), r.draws.begin() + j * d);
    }
    for (auto& m : r.inverse_metric) {  // L M L^T in q units (d x d; M diagonal or dense in z)
      std::vector<double> M(std::size_t(d) * d, 0.0), LM(std::size_t(d) * d, 0.0), out(std::size_t(d) * d, 0.0);
      if (m.size() == std::size_t(d) * d)
        M = m;
      else
        for (int i = 0; i < d && std::size_t(i) < m.size(); ++i)
          M[std::size_t(i) * d + i] = m[std::size_t(i)];
      for (int i = 0; i < d; ++i)
        for (int k = 0; k < d; ++k) {
          double s = 0;
          for (int a = 0; a <= i; ++a)
            s += L[std::size_t(i) * d + a] * M[std::size_t(a) * d + k];
          LM[std::size_t(i) * d + k] = s;
        }
      for (int i = 0; i < d; ++i)
        for (int k = 0; k < d; ++k) {
          double s = 0;
          for (int a = 0; a <= k; ++a)
            s += LM[std::size_t(i) * d + a] * L[std::size_t(k) * d + a];
          out[std::size_t(i) * d + k] = s;
        }
      m = std::move(out);
    }
    return r;
  }
  if (dense) {
    options.init_inv_metric = map.covariance;
  } else {
    options.init_inv_metric.assign(std::size_t(d), 0.0);
    for (int i = 0; i < d; ++i)
      options.init_inv_metric[std::size_t(i)] = map.covariance[std::size_t(i) * d + i];
  }
  return sample(space, density, options);
}

/// Gaussian VI (fit_variational, sample/variational.hpp) started at the MAP
/// and run in whitened units: z with q = q_MAP + W z, W = the Cholesky factor
/// of the Laplace covariance (full-rank) or diag(1 / sqrt(precision_ii))
/// (mean-field: the mean-field optimum of a Gaussian; a diagonal W keeps the
/// family), starting from N(0, I) in z.  Adam's steps (~learning rate) are
/// then in units of the posterior width, not of the raw parameters.  The
/// result is mapped back to q (mean, chol; ELBO and its trace + log det W).
/// `options.init_mean`, `init_scale` and `init_log_sd` are overridden.  Throws std::invalid_argument as
/// sample_from_map().
template <class ExecutionSpace, class Density>
VariationalResult fit_vi_from_map(ExecutionSpace const& space, Density const& density, MapResult const& map,
                                  VariationalOptions options = {}) {
  constexpr char const* where = "lensing::fit_vi_from_map";
  int const d = density.dimension();
  detail::check_map_result(map, d, where);
  std::vector<double> const L = detail::cholesky_lower(map.covariance, d, where);
  std::vector<double> W = L;  // the whitening factor: L (full-rank) or diag(1 / sqrt(precision_ii)) (mean-field)
  if (options.family == VariationalFamily::mean_field) {
    // precision = L^-T L^-1, so precision_jj = |column j of L^-1|^2; L^-1 e_j by forward substitution.
    W.assign(std::size_t(d) * d, 0.0);
    std::vector<double> col(static_cast<std::size_t>(d));
    for (int j = 0; j < d; ++j) {
      double pjj = 0;
      for (int i = j; i < d; ++i) {
        double s = i == j ? 1.0 : 0.0;
        for (int k = j; k < i; ++k)
          s -= L[std::size_t(i) * d + k] * col[std::size_t(k)];
        col[std::size_t(i)] = s / L[std::size_t(i) * d + i];
        pjj += col[std::size_t(i)] * col[std::size_t(i)];
      }
      W[std::size_t(j) * d + j] = 1 / std::sqrt(pjj);
    }
  }
  // Fit z with q = q_MAP + W z from N(0, I), then map back: mean = q_MAP + W mean_z,
  // L_q = W L_z (lower triangular; diagonal for mean-field), ELBO + log det W.
  options.init_mean.clear();
  options.init_scale.clear();
  options.init_log_sd = 0;
  detail::WhitenedDensity<ExecutionSpace, Density> const white(space, density, map.q, W);
  VariationalResult r = fit_variational(space, white, options);
  r.mean = white.point(r.mean.data());
  std::vector<double> Lq(std::size_t(d) * d, 0.0);
  double logdet = 0;
  for (int i = 0; i < d; ++i) {
    logdet += std::log(W[std::size_t(i) * d + i]);
    for (int k = 0; k <= i; ++k) {
      double s = 0;
      for (int a = k; a <= i; ++a)
        s += W[std::size_t(i) * d + a] * r.chol[std::size_t(a) * d + k];
      Lq[std::size_t(i) * d + k] = s;
    }
  }
  r.chol = std::move(Lq);
  r.elbo += logdet;
  for (auto& e : r.elbo_trace)
    e += logdet;
  return r;
}

/// Thresholds of check_convergence() (defaults: Vehtari et al. 2021 and Stan's warnings).
struct ConvergenceThresholds {
  double max_rhat = 1.01;
  double min_bulk_ess = 400;
  double min_tail_ess = 400;
  long long max_divergences = 0;  ///< after warm-up
  double min_ebfmi = 0.3;
};

/// The verdict of check_convergence().
struct ConvergenceReport {
  double max_rhat = NAN;
  double min_bulk_ess = NAN, min_tail_ess = NAN;
  long long divergences = 0;
  double min_ebfmi = NAN;
  int worst_rhat_parameter = -1, worst_ess_parameter = -1;
  bool ok = false;
  std::string message;  ///< "converged: ..." or "NOT converged: <every failed check> ..."
};

/// R-hat, bulk / tail ESS of every parameter of `run`'s unconstrained draws,
/// divergences and per-chain E-BFMI against `thresholds`.  `names` (d names
/// or empty) label the worst parameters in the message.  A run too short for
/// the diagnostics (fewer than 4 draws per chain) or with non-finite draws is
/// not converged.  Never throws for a well-formed SampleResult.
inline ConvergenceReport check_convergence(SampleResult const& run, ConvergenceThresholds const& thresholds = {},
                                           std::vector<std::string> const& names = {}) {
  ConvergenceReport rep;
  int const m = run.num_chains, n = run.num_draws, d = run.dimension;
  auto name = [&](int k) {
    return k >= 0 && std::size_t(k) < names.size() ? names[std::size_t(k)] : "q[" + std::to_string(k + 1) + "]";
  };
  rep.divergences = run.divergences();
  std::ostringstream fail, info;
  if (m < 1 || n < 4 || d < 1 || run.draws.size() != std::size_t(m) * n * d) {
    rep.ok = false;
    rep.message = "NOT converged: too few draws for the diagnostics (" + std::to_string(m) + " chains x " +
                  std::to_string(n) + " draws; at least 4 per chain)";
    return rep;
  }
  for (double v : run.draws)
    if (!std::isfinite(v)) {
      rep.message = "NOT converged: non-finite draws";
      return rep;
    }
  rep.max_rhat = -HUGE_VAL;
  rep.min_bulk_ess = rep.min_tail_ess = HUGE_VAL;
  for (int k = 0; k < d; ++k) {
    std::vector<double> const x = run.parameter(k);
    double const rh = diagnostics::rhat(x, m, n), eb = diagnostics::ess_bulk(x, m, n),
                 et = diagnostics::ess_tail(x, m, n);
    if (!(rh <= rep.max_rhat)) rep.max_rhat = rh, rep.worst_rhat_parameter = k;
    if (!(std::min(eb, et) >= std::min(rep.min_bulk_ess, rep.min_tail_ess))) rep.worst_ess_parameter = k;
    rep.min_bulk_ess = std::min(rep.min_bulk_ess, eb);
    rep.min_tail_ess = std::min(rep.min_tail_ess, et);
  }
  rep.min_ebfmi = HUGE_VAL;
  if (run.energy.size() == std::size_t(m) * n)
    for (int c = 0; c < m; ++c)
      rep.min_ebfmi = std::min(rep.min_ebfmi, diagnostics::ebfmi(run.energy.data() + std::size_t(c) * n, n));
  char buf[160];
  auto add = [&](bool bad, char const* fmt, double v, double t, std::string const& what) {
    std::snprintf(buf, sizeof buf, fmt, v, t);
    (bad ? fail : info) << (bad ? (fail.tellp() > 0 ? "; " : "") : (info.tellp() > 0 ? ", " : "")) << buf
                        << (bad ? what : "");
  };
  add(!(rep.max_rhat <= thresholds.max_rhat), "max R-hat %.4g (limit %.4g)", rep.max_rhat, thresholds.max_rhat,
      " at " + name(rep.worst_rhat_parameter));
  add(!(rep.min_bulk_ess >= thresholds.min_bulk_ess), "min bulk ESS %.0f (limit %.0f)", rep.min_bulk_ess,
      thresholds.min_bulk_ess, " at " + name(rep.worst_ess_parameter));
  add(!(rep.min_tail_ess >= thresholds.min_tail_ess), "min tail ESS %.0f (limit %.0f)", rep.min_tail_ess,
      thresholds.min_tail_ess, " at " + name(rep.worst_ess_parameter));
  add(rep.divergences > thresholds.max_divergences, "%.0f divergences after warm-up (limit %.0f)",
      double(rep.divergences), double(thresholds.max_divergences), "");
  add(!(rep.min_ebfmi >= thresholds.min_ebfmi), "min E-BFMI %.3g (limit %.3g)", rep.min_ebfmi, thresholds.min_ebfmi,
      " (heavy tails or a poorly explored energy)");
  rep.ok = fail.tellp() == 0;
  rep.message = rep.ok ? "converged: " + info.str()
                       : "NOT converged: " + fail.str() + (info.tellp() > 0 ? " (passed: " + info.str() + ")" : "") +
                             " -- do not use these draws as a posterior";
  return rep;
}

}  // namespace lensing

#endif  // LENSING_FIT_WORKFLOW_HPP
