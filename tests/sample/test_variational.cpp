// Gaussian variational inference: a full-rank fit recovers a Gaussian
// posterior exactly (the sticking-the-landing gradient has zero variance at
// the optimum, so the fit converges to round-off); a mean-field fit to a
// correlated Gaussian has var_i = 1 / Lambda_ii (tolerance from the spread of
// independent fits); draws from the fit have its moments; bad inputs.

#include <lensing/optim/lbfgs.hpp>
#include <lensing/sample/variational.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <vector>

namespace {
// N(m, Sigma) in d = 4 with Sigma = B B^T for a fixed lower-triangular B.
struct DenseGaussian {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  static constexpr int d = 4;
  double m[d] = {1.0, -2.0, 0.5, 3.0};
  double B[d][d] = {{1.0, 0, 0, 0}, {0.6, 0.8, 0, 0}, {-0.3, 0.4, 0.5, 0}, {0.2, -0.1, 0.3, 2.0}};
  int dimension() const { return d; }
  // Solve B y = x - m (forward), then B^T w = y (backward): grad = -Sigma^-1 (x - m) = -w.
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& x,
                            lensing::View1D<double, memory_space> const& g) const {
    double y[d], w[d];
    for (int i = 0; i < d; ++i) {
      double s = x(i) - m[i];
      for (int k = 0; k < i; ++k)
        s -= B[i][k] * y[k];
      y[i] = s / B[i][i];
    }
    for (int i = d - 1; i >= 0; --i) {
      double s = y[i];
      for (int k = i + 1; k < d; ++k)
        s -= B[k][i] * w[k];
      w[i] = s / B[i][i];
    }
    double q = 0;
    for (int i = 0; i < d; ++i) {
      g(i) = -w[i];
      q += y[i] * y[i];
    }
    return -0.5 * q;
  }
  double sigma(int i, int j) const {
    double s = 0;
    for (int k = 0; k < d; ++k)
      s += B[i][k] * B[j][k];
    return s;
  }
};

// AR(1) Gaussian, Sigma_ij = rho^|i-j|, mean 1; Lambda_ii = (1 + rho^2)/(1 - rho^2) inside, 1/(1 - rho^2) at the ends.
template <class Scalar, class Mem>
struct Ar1Kernel {
  using scalar_type = Scalar;
  using memory_space = Mem;
  int n = 8;
  Scalar rho = Scalar(0.8);
  int dimension() const { return n; }
  template <class Space>
  Scalar value_and_gradient(Space const& space, lensing::View1D<Scalar, Mem> const& q,
                            lensing::View1D<Scalar, Mem> const& g) const {
    int const nn = n;
    Scalar const r = rho, c = 1 / (1 - rho * rho);
    Scalar lp = 0;
    Kokkos::parallel_reduce(
        "lensing::test::vi_ar1", Kokkos::RangePolicy<Space>(space, 0, nn),
        KOKKOS_LAMBDA(int i, Scalar& acc) {
          Scalar const diag = (i == 0 || i == nn - 1) ? c : (1 + r * r) * c;
          Scalar pq = diag * (q(i) - 1);
          if (i > 0) pq -= r * c * (q(i - 1) - 1);
          if (i < nn - 1) pq -= r * c * (q(i + 1) - 1);
          g(i) = -pq;
          acc += -Scalar(0.5) * (q(i) - 1) * pq;
        },
        lp);
    return lp;
  }
  double lambda_ii(int i) const {
    double const rr = double(rho) * double(rho);
    return (i == 0 || i == n - 1) ? 1 / (1 - rr) : (1 + rr) / (1 - rr);
  }
};

// The same (double, mean 1) with a plain host loop: fast for the repeated fits.
struct Ar1Host {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int n = 8;
  double rho = 0.8;
  int dimension() const { return n; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    double const c = 1 / (1 - rho * rho);
    double lp = 0;
    for (int i = 0; i < n; ++i) {
      double const diag = (i == 0 || i == n - 1) ? c : (1 + rho * rho) * c;
      double pq = diag * (q(i) - 1);
      if (i > 0) pq -= rho * c * (q(i - 1) - 1);
      if (i < n - 1) pq -= rho * c * (q(i + 1) - 1);
      g(i) = -pq;
      lp -= 0.5 * (q(i) - 1) * pq;
    }
    return lp;
  }
  double lambda_ii(int i) const {
    return (i == 0 || i == n - 1) ? 1 / (1 - rho * rho) : (1 + rho * rho) / (1 - rho * rho);
  }
};

lensing::VariationalOptions mean_field_options() {
  lensing::VariationalOptions opt;
  opt.family = lensing::VariationalFamily::mean_field;
  opt.max_iterations = 4000;
  opt.average_last = 2000;
  opt.num_mc = 4;
  return opt;
}

struct NanEverywhere {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int dimension() const { return 2; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const&,
                            lensing::View1D<double, memory_space> const& g) const {
    g(0) = g(1) = 0;
    return std::nan("");
  }
};
}  // namespace

TEST_CASE("full-rank VI recovers a Gaussian posterior exactly; draws have its moments") {
  DenseGaussian const target;
  int const d = DenseGaussian::d;
  lensing::VariationalOptions opt;
  opt.max_iterations = 6000;
  opt.average_last = 100;
  opt.seed = 3;
  auto const r = lensing::fit_variational(Kokkos::DefaultHostExecutionSpace(), target, opt);
  auto const cov = r.covariance();
  double worst_mean = 0, worst_cov = 0;
  for (int i = 0; i < d; ++i) {
    worst_mean = std::max(worst_mean, std::fabs(r.mean[i] - target.m[i]));
    for (int j = 0; j < d; ++j)
      worst_cov = std::max(worst_cov, std::fabs(cov[i * d + j] - target.sigma(i, j)));
  }
  MESSAGE("full-rank VI: max |mean error| " << worst_mean << ", max |cov error| " << worst_cov << ", ELBO " << r.elbo
                                            << " +- " << r.elbo_mcse << ", " << r.seconds << " s");
  // STL gradients vanish at the optimum: the remaining error is Adam's
  // convergence, far below any Monte Carlo scale (sd of the posterior >= 0.5).
  CHECK(worst_mean < 1e-6);
  CHECK(worst_cov < 1e-6);
  // At q = posterior, ELBO = log Z = log((2 pi)^(d/2) |B|) exactly (the density is unnormalised, -|y|^2/2).
  double const logz = 0.5 * d * std::log(2 * M_PI) + std::log(1.0 * 0.8 * 0.5 * 2.0);
  CHECK(r.elbo == doctest::Approx(logz).epsilon(1e-6));
  CHECK(r.elbo_mcse < 1e-6);  // log p - log q is constant when q = p
  // Draws: mean within 4.5 standard errors of the fitted mean.
  int const n = 20000;
  auto const z = r.draws(n, 11);
  for (int i = 0; i < d; ++i) {
    double mean = 0;
    for (int s = 0; s < n; ++s)
      mean += z[std::size_t(s) * d + i];
    mean /= n;
    CHECK(std::fabs(mean - r.mean[i]) <= 4.5 * std::sqrt(cov[i * d + i] / n));
    double c01 = 0;
    for (int s = 0; s < n; ++s)
      c01 += (z[std::size_t(s) * d + i] - r.mean[i]) * (z[std::size_t(s) * d] - r.mean[0]);
    c01 /= n;
    // SE of a covariance estimate: sqrt((S_ii S_00 + S_i0^2) / n).
    double const se = std::sqrt((cov[i * d + i] * cov[0] + cov[i * d] * cov[i * d]) / n);
    CHECK(std::fabs(c01 - cov[i * d]) <= 4.5 * se);
  }
}

TEST_CASE("full-rank VI with the standard (score-including) gradient: unbiased within its noise") {
  // Without STL the gradient noise does not vanish at the optimum; the
  // averaged iterates of independent fits scatter around the exact answer:
  // |mean over fits - truth| <= 5 sd / sqrt(fits) (t, 5 dof: P ~ 0.4%).
  DenseGaussian const target;
  int const d = DenseGaussian::d, fits = 6;
  lensing::VariationalOptions opt;
  opt.stl = false;
  opt.max_iterations = 6000;
  opt.average_last = 3000;
  opt.num_mc = 2;
  std::vector<std::vector<double>> vals(2 * d);
  for (int f = 0; f < fits; ++f) {
    opt.seed = 300 + f;
    auto const r = lensing::fit_variational(Kokkos::DefaultHostExecutionSpace(), target, opt);
    auto const cov = r.covariance();
    for (int i = 0; i < d; ++i) {
      vals[i].push_back(r.mean[i] - target.m[i]);
      vals[d + i].push_back(cov[i * d + i] - target.sigma(i, i));
    }
  }
  int bad = 0;
  double worst_se = 0;
  for (auto const& v : vals) {
    double m = 0, s2 = 0;
    for (double x : v)
      m += x;
    m /= fits;
    for (double x : v)
      s2 += (x - m) * (x - m);
    double const se = std::sqrt(s2 / (fits - 1) / fits);
    worst_se = std::max(worst_se, se);
    if (!(std::fabs(m) <= 5 * se)) {
      ++bad;
      MESSAGE("error " << m << " se " << se);
    }
  }
  CHECK(bad == 0);
  // The check has power: the noise is small against the posterior scale
  // (sds 1-2.1, variances up to 4.5).
  CHECK(worst_se < 0.05);
  MESSAGE("standard-gradient full-rank VI: largest standard error over fits " << worst_se);
}

TEST_CASE("mean-field VI: under-dispersion var_i = 1 / Lambda_ii for a correlated Gaussian") {
  auto const space = Kokkos::DefaultHostExecutionSpace();
  Ar1Host const target;
  int const d = target.n, fits = 6;
  // Start at the MAP (L-BFGS), as a user would.
  auto const map = lensing::lbfgs(space, target, std::vector<double>(d, 0.0));
  REQUIRE(map.converged);
  lensing::VariationalOptions opt = mean_field_options();
  opt.init_mean = map.x;
  std::vector<std::vector<double>> var(d), mu(d);
  for (int f = 0; f < fits; ++f) {
    opt.seed = 100 + f;
    auto const r = lensing::fit_variational(space, target, opt);
    auto const cov = r.covariance();
    for (int i = 0; i < d; ++i) {
      var[i].push_back(cov[i * d + i]);
      mu[i].push_back(r.mean[i]);
      CHECK(cov[i * d + (i + 1) % d] == 0.0);  // mean-field: no correlations
    }
  }
  // Each fit's error is its own stochastic-optimisation noise: the fits are
  // independent, so |mean over fits - theory| <= 5 sd / sqrt(fits) (t with 5
  // degrees of freedom: P(|t| > 5) ~ 0.4%).
  int bad = 0;
  double worst_rel = 0;
  for (int i = 0; i < d; ++i) {
    for (auto const* p : {&var[i], &mu[i]}) {
      bool const is_var = p == &var[i];
      double const theory = is_var ? 1 / target.lambda_ii(i) : 1.0;
      double m = 0, s2 = 0;
      for (double v : *p)
        m += v;
      m /= fits;
      for (double v : *p)
        s2 += (v - m) * (v - m);
      double const se = std::sqrt(s2 / (fits - 1) / fits);
      if (!(std::fabs(m - theory) <= 5 * se)) {
        ++bad;
        MESSAGE((is_var ? "var " : "mean ") << i << ": " << m << " theory " << theory << " se " << se);
      }
      if (is_var) worst_rel = std::max(worst_rel, std::fabs(m / theory - 1));
    }
  }
  CHECK(bad == 0);
  MESSAGE("mean-field VI: worst relative variance error " << worst_rel
                                                          << " (true marginal variances 1, fitted 0.22-0.36)");
}

LENSING_TEST_CASE_TEMPLATE("mean-field VI with a density evaluated by kernels matches the host fit", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using Scalar = typename Config::scalar;
  Ar1Kernel<Scalar, Mem> const target;
  int const d = target.n;
  auto opt = mean_field_options();
  opt.max_iterations = 300;  // few kernel launches: OpenMP launches are slow on a loaded machine
  opt.average_last = 100;
  opt.num_mc = 1;
  opt.init_mean.assign(d, 1.0);
  auto const r = lensing::fit_variational(Space(), target, opt);
  auto const h = lensing::fit_variational(Kokkos::DefaultHostExecutionSpace(), Ar1Host{}, opt);
  // Same random draws; the fits differ only by the round-off of the density
  // (Scalar, reduction order), which Adam's contraction near the optimum keeps small.
  double const tol = std::is_same<Scalar, float>::value ? 1e-3 : 1e-9;
  double worst = 0;
  auto const cr = r.covariance(), ch = h.covariance();
  for (int i = 0; i < d; ++i) {
    worst = std::max(worst, std::fabs(r.mean[i] - h.mean[i]));
    worst = std::max(worst, std::fabs(cr[i * d + i] - ch[i * d + i]));
  }
  MESSAGE("kernel vs host fit: max difference " << worst);
  CHECK(worst <= tol);
}

TEST_CASE("variational: bad inputs") {
  auto const space = Kokkos::DefaultHostExecutionSpace();
  lensing::VariationalOptions opt;
  opt.max_iterations = 200;
  opt.average_last = 10;
  CHECK_THROWS_AS(lensing::fit_variational(space, NanEverywhere{}, opt), std::runtime_error);
  auto bad = opt;
  bad.num_mc = 0;
  CHECK_THROWS_AS(lensing::fit_variational(space, DenseGaussian{}, bad), std::invalid_argument);
  bad = opt;
  bad.average_last = 500;
  CHECK_THROWS_AS(lensing::fit_variational(space, DenseGaussian{}, bad), std::invalid_argument);
  bad = opt;
  bad.init_mean = {1.0};
  CHECK_THROWS_AS(lensing::fit_variational(space, DenseGaussian{}, bad), std::invalid_argument);
  bad = opt;
  bad.adam.learning_rate = -1;
  CHECK_THROWS_AS(lensing::fit_variational(space, DenseGaussian{}, bad), std::invalid_argument);
}
