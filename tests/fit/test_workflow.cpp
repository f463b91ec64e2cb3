// The fit workflow (fit/workflow.hpp) on targets with known answers:
//  - a correlated Gaussian (d = 5, precision P = B B^T): find_map recovers the
//    mean and the covariance P^-1, every start reaches the mode;
//  - a double well in y (log p = -x^2/2 - y^2/2 + 2 log cosh y): a start on the
//    symmetry line y = 0 ends at the saddle, where -H is not positive definite
//    (hessian_ok false, the covariance regularised); starts off it reach one of
//    the two modes, and only those at the best mode count;
//  - screening of the starts: only the best screened starts go on (a tilted
//    double well: the kept start is the one at the better mode);
//  - refine_map from a nearby point with an approximate covariance reaches the
//    mode and the exact covariance of a stiff Gaussian;
//  - NUTS from the MAP: the posterior mean within its Monte Carlo error; the
//    metric adapted diagonal in whitened units by default, the Laplace
//    covariance kept with adapt_metric = false, dense with adapt_dense;
//  - VI from the MAP: full-rank stays at the exact posterior (ELBO = log Z at
//    every iteration), mean-field has var_i = 1 / P_ii and ELBO = log Z - KL;
//  - check_convergence: a good synthetic run passes, broken ones (a stuck chain,
//    10 draws, divergences, random-walk energies) are flagged with the reason.

#include <lensing/fit/workflow.hpp>

#include <lensing_test.hpp>

#include <Eigen/Dense>

#include <cmath>
#include <vector>

namespace {
constexpr int kDim = 5;
// Lower-triangular B with unit-order entries: P = B B^T has correlations up to ~0.8.
constexpr double kB[kDim][kDim] = {{2.0, 0, 0, 0, 0},
                                   {1.2, 1.0, 0, 0, 0},
                                   {-0.5, 0.8, 1.5, 0, 0},
                                   {0.3, -0.4, 0.9, 0.7, 0},
                                   {0.1, 0.6, -0.2, 0.5, 1.1}};
constexpr double kMean[kDim] = {1.0, -2.0, 0.5, 3.0, -0.7};

std::vector<double> precision_matrix() {
  std::vector<double> P(kDim * kDim, 0.0);
  for (int i = 0; i < kDim; ++i)
    for (int j = 0; j < kDim; ++j)
      for (int k = 0; k < kDim; ++k)
        P[i * kDim + j] += kB[i][k] * kB[j][k];
  return P;
}

std::vector<double> covariance_matrix() {
  auto const P = precision_matrix();
  Eigen::MatrixXd M(kDim, kDim);
  for (int i = 0; i < kDim; ++i)
    for (int j = 0; j < kDim; ++j)
      M(i, j) = P[i * kDim + j];
  Eigen::MatrixXd const C = M.inverse();
  std::vector<double> out(kDim * kDim);
  for (int i = 0; i < kDim; ++i)
    for (int j = 0; j < kDim; ++j)
      out[i * kDim + j] = C(i, j);
  return out;
}

// log p = -(q - m)^T P (q - m) / 2 evaluated in a kernel on the test's space.
template <class Scalar, class Mem>
struct GaussianKernel {
  using scalar_type = Scalar;
  using memory_space = Mem;
  static constexpr bool launches_kernels = true;
  Kokkos::View<Scalar**, Mem> P;
  Kokkos::View<Scalar*, Mem> m;
  GaussianKernel() : P("P", kDim, kDim), m("m", kDim) {
    auto Ph = Kokkos::create_mirror_view(P);
    auto mh = Kokkos::create_mirror_view(m);
    auto const Pv = precision_matrix();
    for (int i = 0; i < kDim; ++i) {
      mh(i) = Scalar(kMean[i]);
      for (int j = 0; j < kDim; ++j)
        Ph(i, j) = Scalar(Pv[i * kDim + j]);
    }
    Kokkos::deep_copy(P, Ph);
    Kokkos::deep_copy(m, mh);
  }
  int dimension() const { return kDim; }
  template <class Space>
  Scalar value_and_gradient(Space const& space, lensing::View1D<Scalar, Mem> const& q,
                            lensing::View1D<Scalar, Mem> const& g) const {
    auto const PP = P;
    auto const mm = m;
    Scalar lp = 0;
    Kokkos::parallel_reduce(
        "lensing::test::fit_gaussian", Kokkos::RangePolicy<Space>(space, 0, kDim),
        KOKKOS_LAMBDA(int i, Scalar& acc) {
          Scalar pq = 0;
          for (int j = 0; j < kDim; ++j)
            pq += PP(i, j) * (q(j) - mm(j));
          g(i) = -pq;
          acc += -Scalar(0.5) * (q(i) - mm(i)) * pq;
        },
        lp);
    return lp;
  }
};

// log p = -x^2/2 - y^2/2 + 2 log cosh y: modes at y = +-y*, y* = 2 tanh y*; a saddle at y = 0.
struct DoubleWell {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int dimension() const { return 2; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    double const x = q(0), y = q(1);
    g(0) = -x;
    g(1) = -y + 2 * std::tanh(y);
    return -0.5 * x * x - 0.5 * y * y + 2 * std::log(std::cosh(y));
  }
};

std::vector<std::vector<double>> gaussian_starts() {
  return {{0, 0, 0, 0, 0}, {3, -1, 2, 0, 1}, {-2, -4, 1, 5, 0}, {1.5, 0.5, -1, 2, -3}};
}

double max_eigenvalue(std::vector<double> const& C) {
  Eigen::MatrixXd M(kDim, kDim);
  for (int i = 0; i < kDim; ++i)
    for (int j = 0; j < kDim; ++j)
      M(i, j) = C[i * kDim + j];
  return Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(M).eigenvalues().maxCoeff();
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("find_map recovers the mean and covariance of a correlated Gaussian", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  bool const is_float = std::is_same<Scalar, float>::value;
  GaussianKernel<Scalar, Mem> const target;
  auto const starts = gaussian_starts();
  lensing::MapResult const map = lensing::find_map(Space(), target, starts);
  auto const Sigma = covariance_matrix();
  REQUIRE(map.q.size() == std::size_t(kDim));
  CHECK(map.hessian_ok);
  CHECK(map.clipped_eigenvalues == 0);
  CHECK(map.hessian_message.find("positive definite") != std::string::npos);
  CHECK(map.num_at_best == int(starts.size()));
  CHECK(map.starts.runs.size() == starts.size());
  CHECK(map.gradient_evaluations > 0);
  // Error model, mean: L-BFGS stops at |grad|_inf <= 1e-6 (double), so
  // |q - m| <= |Sigma|_2 sqrt(d) 1e-6; in float the gradient carries rounding
  // ~ 1e-7 sum |P_ij (q_j - m_j)| ~ 1e-5, so the optimum is only good to
  // |Sigma|_2 sqrt(d) 1e-5 (x10 margin both).
  double const lmax = max_eigenvalue(Sigma);
  double const tol_q = (is_float ? 1e-4 : 1e-5) * lmax * std::sqrt(double(kDim));
  for (int i = 0; i < kDim; ++i)
    CHECK(std::fabs(map.q[i] - kMean[i]) <= tol_q);
  // Covariance: central differences of a linear gradient are exact up to
  // rounding.  double: ~1e-15 |grad terms| / h, h ~ 1e-2 sd -> ~1e-12, times
  // cond(P) ~ 1e2 -> 1e-10 (bound 1e-7).  float: the point q +- h is rounded
  // to float (6e-8 |q| / h ~ 2e-5 relative in h) and the gradient to ~1e-6,
  // times cond(P) -> ~5e-3 (bound 3e-2).
  CHECK(lensing::test::rel_diff(map.covariance, Sigma) <= (is_float ? 3e-2 : 1e-7));
  auto const sd = map.sd();
  for (int i = 0; i < kDim; ++i)
    CHECK(sd[i] == doctest::Approx(std::sqrt(Sigma[i * kDim + i])).epsilon(is_float ? 2e-2 : 1e-7));
}

TEST_CASE(
    "find_map: a saddle gives hessian_ok = false and a regularised covariance; only starts at the best mode count") {
  DoubleWell const target;
  Kokkos::DefaultHostExecutionSpace const space;
  // Start on y = 0: grad_y = 0 there exactly, so L-BFGS walks to the saddle (0, 0).
  lensing::MapResult const saddle = lensing::find_map(space, target, {{0.3, 0.0}});
  CHECK(std::fabs(saddle.q[0]) <= 1e-6);
  CHECK(saddle.q[1] == 0.0);
  CHECK_FALSE(saddle.hessian_ok);
  CHECK(saddle.clipped_eigenvalues == 1);
  CHECK(saddle.hessian_message.find("not positive definite") != std::string::npos);
  // -H = diag(1, -1) at the saddle: the regularised precision is diag(1, |-1|), covariance I
  // (central differences of 2 tanh with h = 1e-3: error 2 h^2 / 3 ~ 7e-7).
  CHECK(saddle.covariance[0] == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(saddle.covariance[3] == doctest::Approx(1.0).epsilon(3e-6));
  CHECK(std::fabs(saddle.covariance[1]) <= 1e-9);
  CHECK(saddle.hessian[3] == doctest::Approx(1.0).epsilon(3e-6));  // log p curves up in y: a saddle

  // Starts off the symmetry line reach one of the modes y = +-y*; the saddle
  // start ends 1.75 sd from a mode, the other mode is 3.5 sd away: one at the best.
  lensing::MapResult const map = lensing::find_map(space, target, {{0.3, 0.0}, {0.2, 0.5}, {-0.1, -0.7}});
  double ystar = 2;
  for (int it = 0; it < 100; ++it)
    ystar = 2 * std::tanh(ystar);
  CHECK(map.hessian_ok);
  CHECK(std::fabs(std::fabs(map.q[1]) - ystar) <= 1e-6);
  CHECK(map.num_at_best == 1);
  double const sech2 = 1 - std::tanh(ystar) * std::tanh(ystar);
  // -d2 log p / dy2 = 1 - 2 sech^2 y* = 0.83; the refined step h = 1e-2 / sqrt(0.83)
  // gives error h^2 |d3 g / dy3| / 6 ~ 1.2e-4 * 0.6 / 6 ~ 1.2e-5 (bound 1e-4).
  CHECK(map.covariance[3] == doctest::Approx(1 / (1 - 2 * sech2)).epsilon(1e-4));
  CHECK(map.covariance[0] == doctest::Approx(1.0).epsilon(1e-6));
}

namespace {
// The correlated Gaussian with widths from 1e-3 to 1e2 (x_i = m_i + s_i y_i, y ~ N(0, P^-1)):
// condition number ~1e12, like raw lens parameters (milliarcsecond centres, amplitudes of tens).
constexpr double kWidth[kDim] = {1e-3, 1e-2, 1.0, 10.0, 100.0};
struct StiffGaussian {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  std::vector<double> P = precision_matrix();
  int dimension() const { return kDim; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& x,
                            lensing::View1D<double, memory_space> const& g) const {
    double y[kDim], lp = 0;
    for (int i = 0; i < kDim; ++i)
      y[i] = (x(i) - kMean[i]) / kWidth[i];
    for (int i = 0; i < kDim; ++i) {
      double py = 0;
      for (int j = 0; j < kDim; ++j)
        py += P[i * kDim + j] * y[j];
      g(i) = -py / kWidth[i];
      lp -= 0.5 * y[i] * py;
    }
    return lp;
  }
};
}  // namespace

TEST_CASE("find_map: polishing in whitened units converges where L-BFGS on the raw parameters stalls") {
  StiffGaussian const target;
  Kokkos::DefaultHostExecutionSpace const space;
  lensing::MapOptions opt;
  opt.optimize.max_iterations = 15;
  opt.polish_rounds = 0;
  std::vector<std::vector<double>> const starts = {{0.01, -1.9, 2.0, 20.0, 50.0}};
  lensing::MapResult const raw = lensing::find_map(space, target, starts, opt);
  // Offsets in units of each width: the raw run is far from the mode.
  auto offset = [](std::vector<double> const& q) {
    double m = 0;
    for (int i = 0; i < kDim; ++i)
      m = std::max(m, std::fabs(q[i] - kMean[i]) / kWidth[i]);
    return m;
  };
  CHECK_FALSE(raw.converged);
  CHECK(offset(raw.q) > 1e-2);
  opt.polish_rounds = 3;
  lensing::MapResult const pol = lensing::find_map(space, target, starts, opt);
  CHECK(pol.converged);
  REQUIRE_FALSE(pol.polish.empty());
  // A quadratic is whitened exactly by its Laplace covariance (Hessian exact up to
  // rounding): L-BFGS then stops at |grad_z|_inf <= 1e-6, i.e. within ~1e-6 sd.
  CHECK(offset(pol.q) <= 1e-5);
  CHECK(pol.hessian_ok);
  auto const Sigma = covariance_matrix();
  for (int i = 0; i < kDim; ++i)
    CHECK(pol.covariance[i * kDim + i] == doctest::Approx(Sigma[i * kDim + i] * kWidth[i] * kWidth[i]).epsilon(1e-6));
}

namespace {
// log p = -x^2/2 - y^2/2 + 2 log cosh y + 0.2 y: the mode at y > 0 is higher than the one at y < 0.
struct TiltedWell {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int dimension() const { return 2; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    double const x = q(0), y = q(1);
    g(0) = -x;
    g(1) = -y + 2 * std::tanh(y) + 0.2;
    return -0.5 * x * x - 0.5 * y * y + 2 * std::log(std::cosh(y)) + 0.2 * y;
  }
};
}  // namespace

TEST_CASE("find_map: screening runs every start briefly and only the best go on") {
  TiltedWell const target;
  Kokkos::DefaultHostExecutionSpace const space;
  // Start 0 near the lower mode (y ~ -1.8), start 1 near the higher one (y ~ +2.0), start 2 far out.
  std::vector<std::vector<double>> const starts = {{0.5, -1.5}, {-0.4, 1.6}, {4.0, -6.0}};
  lensing::MapOptions opt;
  opt.screen_iterations = 2;
  opt.screen_keep = 1;
  lensing::MapResult const map = lensing::find_map(space, target, starts, opt);
  REQUIRE(map.screen.runs.size() == starts.size());
  REQUIRE(map.starts.runs.size() == 1);
  for (auto const& r : map.screen.runs)
    CHECK(r.iterations <= 2);
  // The kept start is the screened run of highest log p (start 1's), and it reaches the higher mode.
  CHECK(map.screen.best == 1);
  CHECK(map.q[1] > 1.5);
  long long screened = 0;
  for (auto const& r : map.screen.runs)
    screened += r.evaluations;
  CHECK(map.gradient_evaluations > screened + map.starts.runs[0].evaluations);  // + Laplace
  // Without screening every start runs to the end; the MAP is the same point.
  lensing::MapResult const plain = lensing::find_map(space, target, starts);
  CHECK(plain.screen.runs.empty());
  CHECK(plain.starts.runs.size() == starts.size());
  CHECK(std::fabs(plain.q[1] - map.q[1]) <= 1e-6);
  opt.screen_keep = 2;
  CHECK(lensing::find_map(space, target, starts, opt).starts.runs.size() == 2);
  opt.screen_keep = 3;  // no fewer starts than kept: no screening
  CHECK(lensing::find_map(space, target, starts, opt).screen.runs.empty());
  opt.screen_keep = 0;
  CHECK(lensing::test::error_message([&] { lensing::find_map(space, target, starts, opt); }).find("screen_keep") !=
        std::string::npos);
}

TEST_CASE("refine_map: from a nearby point and an approximate covariance to the mode and its exact covariance") {
  StiffGaussian const target;
  Kokkos::DefaultHostExecutionSpace const space;
  auto const Sigma = covariance_matrix();
  // A cheaper density's MAP: 3 widths off in every parameter, covariance 0.75 (C + diag C)
  // with C the exact one (positive definite as a sum of two positive definite matrices).
  lensing::MapResult near;
  near.q.resize(kDim);
  near.covariance.assign(kDim * kDim, 0.0);
  for (int i = 0; i < kDim; ++i) {
    near.q[i] = kMean[i] + 3 * kWidth[i];
    for (int j = 0; j < kDim; ++j)
      near.covariance[i * kDim + j] = (i == j ? 1.5 : 0.75) * Sigma[i * kDim + j] * kWidth[i] * kWidth[j];
  }
  lensing::MapResult const r = lensing::refine_map(space, target, near);
  CHECK(r.starts.runs.empty());
  REQUIRE_FALSE(r.polish.empty());
  CHECK(r.converged);
  // L-BFGS in the approximately whitened units stops at |grad_z|_inf <= 1e-6; the
  // later round in exactly whitened units then leaves the mode within ~1e-6 sd.
  for (int i = 0; i < kDim; ++i)
    CHECK(std::fabs(r.q[i] - kMean[i]) / kWidth[i] <= 1e-5);
  // The covariance is the Laplace approximation at the new point (exact for a quadratic
  // up to the rounding of central differences, as in the polishing test above).
  CHECK(r.hessian_ok);
  for (int i = 0; i < kDim; ++i)
    CHECK(r.covariance[i * kDim + i] == doctest::Approx(Sigma[i * kDim + i] * kWidth[i] * kWidth[i]).epsilon(1e-6));
  // No raw L-BFGS run and no Hessian at the start: a few dozen gradients (each Laplace
  // pass is 2 d = 10), against hundreds for L-BFGS on the raw parameters.
  CHECK(r.gradient_evaluations <= 120);
  // Bad input: another dimension, a covariance that is not positive definite, no polishing round.
  auto bad = near;
  bad.q.pop_back();
  CHECK_THROWS_AS(lensing::refine_map(space, target, bad), std::invalid_argument);
  bad = near;
  bad.covariance[1] = bad.covariance[kDim] = 1e9;
  CHECK(lensing::test::error_message([&] { lensing::refine_map(space, target, bad); }).find("not positive definite") !=
        std::string::npos);
  lensing::MapOptions none;
  none.polish_rounds = 0;
  CHECK_THROWS_AS(lensing::refine_map(space, target, near, none), std::invalid_argument);
}

TEST_CASE(
    "sample_from_map: metric adapted diagonal in whitened units by default, kept at the Laplace covariance, "
    "or adapted dense") {
  GaussianKernel<double, Kokkos::HostSpace> const target;
  Kokkos::DefaultHostExecutionSpace const space;
  lensing::MapResult const map = lensing::find_map(space, target, gaussian_starts());
  lensing::SamplerOptions opt;
  opt.num_chains = 2;
  opt.num_warmup = 600;  // >= adapt_metric_min_warmup: the windows run
  opt.num_draws = 100;
  opt.seed = 5;
  Eigen::MatrixXd C(kDim, kDim);
  for (int i = 0; i < kDim; ++i)
    for (int j = 0; j < kDim; ++j)
      C(i, j) = map.covariance[i * kDim + j];
  Eigen::MatrixXd const L = C.llt().matrixL();
  // The metric in whitened units, W = L^-1 M L^-T (M the inverse metric returned in q units).
  auto whitened = [&](lensing::SampleResult const& r, int c) {
    REQUIRE(r.inverse_metric[c].size() == std::size_t(kDim * kDim));
    Eigen::MatrixXd M(kDim, kDim);
    for (int i = 0; i < kDim; ++i)
      for (int j = 0; j < kDim; ++j)
        M(i, j) = r.inverse_metric[c][i * kDim + j];
    Eigen::MatrixXd const X = L.triangularView<Eigen::Lower>().solve(M);
    return Eigen::MatrixXd(L.triangularView<Eigen::Lower>().solve(X.transpose()));
  };
  auto max_off_diagonal = [](Eigen::MatrixXd const& W) {
    double m = 0;
    for (int i = 0; i < kDim; ++i)
      for (int j = 0; j < kDim; ++j)
        if (i != j) m = std::max(m, std::fabs(W(i, j)));
    return m;
  };
  auto max_diagonal_offset = [](Eigen::MatrixXd const& W) {
    double m = 0;
    for (int i = 0; i < kDim; ++i)
      m = std::max(m, std::fabs(W(i, i) - 1));
    return m;
  };
  // Default: adapted, diagonal in z.  W is diagonal up to the rounding of L diag L^T and
  // its solves (~1e-14), and the windows' variances differ from 1 (sampling error of a few
  // hundred draws: ~10 %, bound 1e-3).
  lensing::SampleResult const diag = lensing::sample_from_map(space, target, map, opt);
  for (int c = 0; c < opt.num_chains; ++c) {
    auto const W = whitened(diag, c);
    CHECK(max_off_diagonal(W) <= 1e-10);
    CHECK(max_diagonal_offset(W) > 1e-3);
  }
  // Kept: W = I, i.e. the Laplace covariance itself.
  lensing::FromMapOptions from;
  from.adapt_metric = false;
  lensing::SampleResult const kept = lensing::sample_from_map(space, target, map, opt, from);
  for (int c = 0; c < opt.num_chains; ++c) {
    auto const W = whitened(kept, c);
    CHECK(max_off_diagonal(W) <= 1e-10);
    CHECK(max_diagonal_offset(W) <= 1e-10);
  }
  // Dense in z: the estimate has off-diagonal terms (sampling error ~ 1 / sqrt(draws)).
  from.adapt_metric = true;
  from.adapt_dense = true;
  lensing::SampleResult const dense = lensing::sample_from_map(space, target, map, opt, from);
  CHECK(max_off_diagonal(whitened(dense, 0)) > 1e-3);
}

LENSING_TEST_CASE_TEMPLATE("sample_from_map: NUTS from the MAP finds the Gaussian mean within its MCSE", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  GaussianKernel<Scalar, Mem> const target;
  lensing::MapResult const map = lensing::find_map(Space(), target, gaussian_starts());
  lensing::SamplerOptions opt;
  opt.num_chains = 4;
  opt.num_warmup = 300;
  opt.num_draws = 500;
  opt.seed = 11;
  lensing::SampleResult const run = lensing::sample_from_map(Space(), target, map, opt);
  REQUIRE(run.num_chains == 4);
  // The chains start jittered around the MAP (not all at one point), deterministically per seed.
  CHECK(run(0, 0, 0) != run(1, 0, 0));
  lensing::ConvergenceReport const conv = lensing::check_convergence(run);
  CHECK_MESSAGE(conv.ok, conv.message);
  // Error model: the sample mean is normal around m with sd MCSE (CLT); 4 MCSE
  // per parameter (two-sided 6e-5 each) for the 5 fixed-seed parameters.
  for (int k = 0; k < kDim; ++k) {
    auto const x = run.parameter(k);
    double mean = 0;
    for (double v : x)
      mean += v;
    mean /= double(x.size());
    double const mcse = lensing::diagnostics::mcse_mean(x, run.num_chains, run.num_draws);
    CHECK_MESSAGE(std::fabs(mean - kMean[k]) <= 4 * mcse, "parameter ", k, ": mean ", mean, " mcse ", mcse);
  }
}

LENSING_TEST_CASE_TEMPLATE("fit_vi_from_map: full-rank stays at the Gaussian, mean-field gives 1 / P_ii", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  GaussianKernel<double, Mem> const target;
  lensing::MapResult const map = lensing::find_map(Space(), target, gaussian_starts());
  auto const P = precision_matrix();
  auto const Sigma = covariance_matrix();
  Eigen::MatrixXd Pm(kDim, kDim);
  for (int i = 0; i < kDim; ++i)
    for (int j = 0; j < kDim; ++j)
      Pm(i, j) = P[i * kDim + j];
  double const log_det_P = std::log(Pm.determinant());
  double const log_Z = 0.5 * kDim * std::log(2 * M_PI) - 0.5 * log_det_P;

  lensing::VariationalOptions opt;
  opt.max_iterations = 500;
  opt.average_last = 100;
  opt.seed = 5;
  lensing::VariationalResult const fr = lensing::fit_vi_from_map(Space(), target, map, opt);
  // Started at the exact posterior (up to the MAP's ~1e-6 error): the STL
  // gradient is only that offset, P (q - m) ~ 1e-6, but Adam normalises it and
  // still steps ~lr = 1e-2 per iteration, so the fit wanders by ~lr around the
  // posterior; the average over the last 100 iterations is good to a few
  // 1e-3 (bounds: mean 1e-2 absolute, covariance 2e-2 relative).  The ELBO
  // loss is quadratic in those offsets, (1/2) dm^T P dm + O(dSigma^2) with P
  // up to ~10: 1e-3 for the result, 5e-2 for the first trace entry (the first
  // 10 steps, before Adam's averages settle).
  CHECK(lensing::test::rel_diff(fr.covariance(), Sigma) <= 2e-2);
  for (int i = 0; i < kDim; ++i)
    CHECK(std::fabs(fr.mean[i] - kMean[i]) <= 1e-2);
  REQUIRE(fr.elbo_trace.size() == std::size_t(opt.max_iterations / opt.elbo_trace_every));
  CHECK(std::fabs(fr.elbo_trace.front() - log_Z) <= 5e-2);
  CHECK(std::fabs(fr.elbo_trace.back() - log_Z) <= 1e-3);
  CHECK(std::fabs(fr.elbo - log_Z) <= 1e-3);

  // Mean-field: optimum var_i = 1 / P_ii (Blei et al. 2017), where it starts;
  // ELBO = log Z - KL(q || p) with KL = (sum log P_ii - log det P) / 2.  The
  // STL gradient is not zero there (q is not the posterior): Adam wanders by
  // ~ lr = 1e-2 in log sd, averaged over the last 1000 iterations -> a few
  // 1e-3; bound 3 %.  ELBO: MC estimate with 1000 draws, bound 5 MCSE + 0.02.
  opt.family = lensing::VariationalFamily::mean_field;
  opt.max_iterations = 2000;
  opt.average_last = 1000;
  opt.num_mc = 2;
  lensing::VariationalResult const mf = lensing::fit_vi_from_map(Space(), target, map, opt);
  double kl = -log_det_P;
  for (int i = 0; i < kDim; ++i) {
    kl += std::log(P[i * kDim + i]);
    CHECK(mf.chol[i * kDim + i] == doctest::Approx(1 / std::sqrt(P[i * kDim + i])).epsilon(0.03));
  }
  kl *= 0.5;
  CHECK(std::fabs(mf.elbo - (log_Z - kl)) <= 5 * mf.elbo_mcse + 0.02);
  CHECK(mf.elbo < fr.elbo - 0.5 * kl);
  CHECK(mf.elbo_trace.size() == std::size_t(opt.max_iterations / opt.elbo_trace_every));
}

namespace {
// A synthetic run: iid N(0, 1) draws and energies, from a fixed stream.
lensing::SampleResult synthetic_run(int chains, int draws, int dim) {
  lensing::SampleResult r;
  r.num_chains = chains, r.num_draws = draws, r.dimension = dim;
  std::size_t const n = std::size_t(chains) * draws;
  r.draws.resize(n * dim);
  r.lp.assign(n, 0.0), r.accept_stat.assign(n, 0.8), r.step_size.assign(n, 0.5), r.energy.resize(n);
  r.tree_depth.assign(n, 2), r.n_leapfrog.assign(n, 3), r.divergent.assign(n, 0);
  lensing::Rng rng(3, 0);
  for (auto& v : r.draws)
    v = rng.normal();
  for (auto& e : r.energy)
    e = rng.normal();
  return r;
}
}  // namespace

TEST_CASE("check_convergence passes a good run and flags broken ones with the reason") {
  // iid draws: R-hat ~ 1 + O(1/n), ESS ~ 4000, E-BFMI ~ 2.
  auto const good = synthetic_run(4, 1000, 3);
  auto const rg = lensing::check_convergence(good, {}, {"a", "b", "c"});
  CHECK_MESSAGE(rg.ok, rg.message);
  CHECK(rg.message.rfind("converged", 0) == 0);
  CHECK(rg.max_rhat < 1.01);
  CHECK(rg.min_bulk_ess > 2000);
  CHECK(rg.divergences == 0);
  CHECK(rg.min_ebfmi > 1);

  // One chain stuck at 3 (10 draws per chain): R-hat far above 1 and tiny ESS.
  auto stuck = synthetic_run(4, 10, 3);
  for (int i = 0; i < 10; ++i)
    stuck.draws[(std::size_t(2) * 10 + i) * 3 + 1] = 3.0;
  auto const rs = lensing::check_convergence(stuck, {}, {"a", "b", "c"});
  CHECK_FALSE(rs.ok);
  CHECK(rs.message.rfind("NOT converged", 0) == 0);
  CHECK(rs.message.find("R-hat") != std::string::npos);
  CHECK(rs.message.find("at b") != std::string::npos);
  CHECK(rs.worst_rhat_parameter == 1);
  CHECK(rs.max_rhat > 1.1);
  CHECK(rs.min_bulk_ess < 400);

  // Divergences after warm-up.
  auto div = good;
  div.divergent[17] = div.divergent[2500] = 1;
  auto const rd = lensing::check_convergence(div);
  CHECK_FALSE(rd.ok);
  CHECK(rd.divergences == 2);
  CHECK(rd.message.find("2 divergences") != std::string::npos);

  // Random-walk energies: E-BFMI ~ 1 / n, far below 0.3.
  auto walk = good;
  for (int c = 0; c < 4; ++c)
    for (int i = 1; i < 1000; ++i)
      walk.energy[std::size_t(c) * 1000 + i] += walk.energy[std::size_t(c) * 1000 + i - 1];
  auto const rw = lensing::check_convergence(walk);
  CHECK_FALSE(rw.ok);
  CHECK(rw.min_ebfmi < 0.3);
  CHECK(rw.message.find("E-BFMI") != std::string::npos);

  // Too short for the diagnostics: not converged, no exception.
  auto const rt = lensing::check_convergence(synthetic_run(2, 3, 1));
  CHECK_FALSE(rt.ok);
  CHECK(rt.message.find("too few draws") != std::string::npos);
}

TEST_CASE("fit workflow: bad input") {
  DoubleWell const target;
  Kokkos::DefaultHostExecutionSpace const space;
  CHECK_THROWS_AS(lensing::find_map(space, target, {}), std::invalid_argument);
  CHECK_THROWS_AS(lensing::find_map(space, target, {{0.1, 0.2, 0.3}}), std::invalid_argument);
  lensing::MapOptions bad;
  bad.scales = {1.0, -1.0};
  CHECK_THROWS_AS(lensing::find_map(space, target, {{0.1, 0.2}}, bad), std::invalid_argument);
  lensing::MapResult map = lensing::find_map(space, target, {{0.1, 0.5}});
  auto broken = map;
  broken.covariance = {1.0, 2.0, 2.0, 1.0};  // indefinite
  CHECK(lensing::test::error_message([&] {
          lensing::sample_from_map(space, target, broken);
        }).find("lensing::sample_from_map: the covariance is not positive definite") != std::string::npos);
  broken = map;
  broken.q = {0.0};
  CHECK_THROWS_AS(lensing::fit_vi_from_map(space, target, broken), std::invalid_argument);
}
