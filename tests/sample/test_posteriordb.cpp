// NUTS with adaptation on five posteriordb reference posteriors (see
// tests/data/posteriordb/README.md): every log-density and its hand-derived
// gradient is written here and checked against finite differences; the
// sampler must recover every reference mean and second moment E[x^2] within
// 4 combined MCSEs, with R-hat < 1.01.

#include "posteriordb_support.hpp"

#include <lensing/density/prior.hpp>
#include <lensing/sample/bijections.hpp>

#include <cmath>
#include <vector>

namespace {
using pdb::HostView;
constexpr double half_log_2pi = 0.91893853320467274178;

// ---------------------------------------------------------------------------
// eight_schools_noncentered: u = (theta_tilde[8], mu, log tau).
struct EightSchools {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  std::vector<double> y, sigma;
  int dimension() const { return 10; }
  template <class S>
  double value_and_gradient(S const&, HostView const& q, HostView const& g) const {
    double const mu = q(8), tau = std::exp(q(9));
    auto const pmu = lensing::Prior<double>::normal(0, 5);
    auto const ptau = lensing::Prior<double>::half_cauchy(5);
    double lp = pmu.log_density(mu) + ptau.log_density(tau) + q(9);
    double sum_r = 0, sum_rt = 0;
    for (int j = 0; j < 8; ++j) {
      double const th = mu + tau * q(j), s2 = sigma[j] * sigma[j];
      double const r = (y[j] - th) / s2;
      lp += -0.5 * q(j) * q(j) - 0.5 * (y[j] - th) * (y[j] - th) / s2;
      g(j) = -q(j) + r * tau;
      sum_r += r;
      sum_rt += r * q(j);
    }
    g(8) = sum_r + pmu.gradient(mu);
    g(9) = tau * (sum_rt + ptau.gradient(tau)) + 1;
    return lp;
  }
};

// ---------------------------------------------------------------------------
// arK: u = (alpha, beta[K], log sigma).
struct ArK {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int K;
  std::vector<double> y;
  int dimension() const { return K + 2; }
  template <class S>
  double value_and_gradient(S const&, HostView const& q, HostView const& g) const {
    double const sigma = std::exp(q(K + 1)), inv2 = 1 / (sigma * sigma);
    auto const pc = lensing::Prior<double>::normal(0, 10);
    auto const ps = lensing::Prior<double>::half_cauchy(2.5);
    double lp = pc.log_density(q(0)) + ps.log_density(sigma) + q(K + 1);
    g(0) = pc.gradient(q(0));
    for (int k = 0; k < K; ++k) {
      lp += pc.log_density(q(1 + k));
      g(1 + k) = pc.gradient(q(1 + k));
    }
    double ss = 0;
    int const T = int(y.size());
    for (int t = K; t < T; ++t) {
      double m = q(0);
      for (int k = 0; k < K; ++k)
        m += q(1 + k) * y[t - 1 - k];
      double const r = y[t] - m;
      ss += r * r;
      g(0) += r * inv2;
      for (int k = 0; k < K; ++k)
        g(1 + k) += r * inv2 * y[t - 1 - k];
    }
    double const nobs = T - K;
    lp += -0.5 * ss * inv2 - nobs * (std::log(sigma) + half_log_2pi);
    g(K + 1) = sigma * (ss * inv2 / sigma - nobs / sigma + ps.gradient(sigma)) + 1;
    return lp;
  }
};

// ---------------------------------------------------------------------------
// garch11: u = (mu, log alpha0, logit alpha1, u3) with beta1 = (1 - alpha1) sigmoid(u3).
struct Garch {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  std::vector<double> y;
  double sigma1;
  int dimension() const { return 4; }
  static double sig(double z) { return lensing::detail::sigmoid(z); }
  template <class S>
  double value_and_gradient(S const&, HostView const& q, HostView const& g) const {
    double const mu = q(0), a0 = std::exp(q(1)), s1 = sig(q(2)), s3 = sig(q(3));
    double const a1 = s1, b1 = (1 - a1) * s3;
    using lensing::detail::softplus;
    // log-Jacobian: u1 + log s1 (1 - s1) + log(1 - alpha1) + log s3 (1 - s3).
    double lp = q(1) - softplus(-q(2)) - 2 * softplus(q(2)) - softplus(-q(3)) - softplus(q(3));
    double dmu = 0, da0 = 0, da1 = 0, db1 = 0;
    double v = sigma1 * sigma1, dv[4] = {0, 0, 0, 0};  // d v_t / d(mu, a0, a1, b1)
    int const T = int(y.size());
    for (int t = 0; t < T; ++t) {
      if (t > 0) {
        double const e = y[t - 1] - mu;
        double const nd[4] = {-2 * a1 * e + b1 * dv[0], 1 + b1 * dv[1], e * e + b1 * dv[2], v + b1 * dv[3]};
        v = a0 + a1 * e * e + b1 * v;
        for (int k = 0; k < 4; ++k)
          dv[k] = nd[k];
      }
      double const r = y[t] - mu;
      lp += -0.5 * r * r / v - 0.5 * std::log(v) - half_log_2pi;
      double const dldv = 0.5 * r * r / (v * v) - 0.5 / v;
      dmu += r / v + dldv * dv[0];
      da0 += dldv * dv[1];
      da1 += dldv * dv[2];
      db1 += dldv * dv[3];
    }
    double const ds1 = s1 * (1 - s1), ds3 = s3 * (1 - s3);
    g(0) = dmu;
    g(1) = a0 * da0 + 1;
    g(2) = ds1 * da1 - s3 * ds1 * db1 + 1 - 3 * s1;
    g(3) = (1 - a1) * ds3 * db1 + 1 - 2 * s3;
    return lp;
  }
};

// ---------------------------------------------------------------------------
// gp_pois_regr: u = (log rho, log alpha, f_tilde[N]); f = L f_tilde, L = chol(K).
struct GpPois {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  std::vector<double> x, k;
  int dimension() const { return int(x.size()) + 2; }
  // Lower Cholesky factor of a (row-major n x n); false if not positive definite.
  static bool cholesky(std::vector<double> const& a, std::vector<double>& l, int n) {
    l.assign(std::size_t(n) * n, 0.0);
    for (int j = 0; j < n; ++j) {
      double s = a[j * n + j];
      for (int p = 0; p < j; ++p)
        s -= l[j * n + p] * l[j * n + p];
      if (!(s > 0)) return false;
      l[j * n + j] = std::sqrt(s);
      for (int i = j + 1; i < n; ++i) {
        double t = a[i * n + j];
        for (int p = 0; p < j; ++p)
          t -= l[i * n + p] * l[j * n + p];
        l[i * n + j] = t / l[j * n + j];
      }
    }
    return true;
  }
  template <class S>
  double value_and_gradient(S const&, HostView const& q, HostView const& g) const {
    int const n = int(x.size());
    double const rho = std::exp(q(0)), alpha = std::exp(q(1));
    std::vector<double> K(n * n), dKr(n * n), dKa(n * n), L;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        double const d2 = (x[i] - x[j]) * (x[i] - x[j]);
        double const c = std::exp(-d2 / (2 * rho * rho));
        K[i * n + j] = alpha * alpha * c + (i == j ? 1e-10 : 0.0);
        dKa[i * n + j] = 2 * alpha * c;
        dKr[i * n + j] = alpha * alpha * c * d2 / (rho * rho * rho);
      }
    for (int i = 0; i < n + 2; ++i)
      g(i) = 0;
    if (!cholesky(K, L, n)) return -HUGE_VAL;
    auto const prho = lensing::Prior<double>::gamma(25, 4);
    auto const palpha = lensing::Prior<double>::half_normal(2);
    double lp = prho.log_density(rho) + palpha.log_density(alpha) + q(0) + q(1);
    std::vector<double> f(n, 0.0), gf(n);
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j <= i; ++j)
        f[i] += L[i * n + j] * q(2 + j);
      lp += -0.5 * q(2 + i) * q(2 + i) + k[i] * f[i] - std::exp(f[i]) - std::lgamma(k[i] + 1);
      gf[i] = k[i] - std::exp(f[i]);
    }
    // d lp / d f_tilde = L^T gf - f_tilde.
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int i = j; i < n; ++i)
        s += L[i * n + j] * gf[i];
      g(2 + j) = s - q(2 + j);
    }
    // d lp / d theta = gf^T dL f_tilde, dL = L Phi(L^-1 dK L^-T) (Phi: lower triangle, half diagonal).
    auto dtheta = [&](std::vector<double> const& dK) {
      std::vector<double> A(dK);  // A = L^-1 dK (forward substitution, column by column)
      for (int c = 0; c < n; ++c)
        for (int i = 0; i < n; ++i) {
          double s = A[i * n + c];
          for (int p = 0; p < i; ++p)
            s -= L[i * n + p] * A[p * n + c];
          A[i * n + c] = s / L[i * n + i];
        }
      std::vector<double> B(n * n);  // B = A L^-T  <=>  B L^T = A: solve rows
      for (int r = 0; r < n; ++r)
        for (int j = 0; j < n; ++j) {
          double s = A[r * n + j];
          for (int p = 0; p < j; ++p)
            s -= B[r * n + p] * L[j * n + p];
          B[r * n + j] = s / L[j * n + j];
        }
      for (int i = 0; i < n; ++i) {
        B[i * n + i] *= 0.5;
        for (int j = i + 1; j < n; ++j)
          B[i * n + j] = 0;
      }
      // gf^T L Phi f_tilde
      std::vector<double> phif(n, 0.0);
      for (int i = 0; i < n; ++i)
        for (int j = 0; j <= i; ++j)
          phif[i] += B[i * n + j] * q(2 + j);
      double s = 0;
      for (int i = 0; i < n; ++i)
        for (int j = 0; j <= i; ++j)
          s += gf[i] * L[i * n + j] * phif[j];
      return s;
    };
    g(0) = rho * (dtheta(dKr) + prho.gradient(rho)) + 1;
    g(1) = alpha * (dtheta(dKa) + palpha.gradient(alpha)) + 1;
    return lp;
  }
  // Constrained (rho, alpha, f).
  void constrain(double const* u, double* out) const {
    int const n = int(x.size());
    double const rho = std::exp(u[0]), alpha = std::exp(u[1]);
    std::vector<double> K(n * n), L;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        K[i * n + j] =
            alpha * alpha * std::exp(-(x[i] - x[j]) * (x[i] - x[j]) / (2 * rho * rho)) + (i == j ? 1e-10 : 0.0);
    cholesky(K, L, n);
    out[0] = rho;
    out[1] = alpha;
    for (int i = 0; i < n; ++i) {
      out[2 + i] = 0;
      for (int j = 0; j <= i; ++j)
        out[2 + i] += L[i * n + j] * u[2 + j];
    }
  }
};

// ---------------------------------------------------------------------------
// low_dim_gauss_mix: u = (ordered mu[2], log sigma[2], logit theta).
struct GaussMix {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  std::vector<double> y;
  int dimension() const { return 5; }
  template <class S>
  double value_and_gradient(S const&, HostView const& q, HostView const& g) const {
    lensing::Ordered<double> const ord{2};
    lensing::UnitInterval<double> const unit;
    double const uu[2] = {q(0), q(1)};
    double mu[2];
    ord.constrain(uu, mu);
    double const s1 = std::exp(q(2)), s2 = std::exp(q(3)), th = unit.constrain(q(4));
    auto const pmu = lensing::Prior<double>::normal(0, 2);
    auto const ps = lensing::Prior<double>::half_normal(2);
    auto const pth = lensing::Prior<double>::beta(5, 5);
    double lp = pmu.log_density(mu[0]) + pmu.log_density(mu[1]) + ps.log_density(s1) + ps.log_density(s2) +
                pth.log_density(th) + ord.log_jacobian(uu) + q(2) + q(3) + unit.log_jacobian(q(4));
    double dmu[2] = {pmu.gradient(mu[0]), pmu.gradient(mu[1])};
    double ds1 = ps.gradient(s1), ds2 = ps.gradient(s2), dth = pth.gradient(th);
    double const lth = std::log(th), l1th = std::log1p(-th), ls1 = std::log(s1), ls2 = std::log(s2);
    for (double yn : y) {
      double const z1 = (yn - mu[0]) / s1, z2 = (yn - mu[1]) / s2;
      double const a = lth - 0.5 * z1 * z1 - ls1, b = l1th - 0.5 * z2 * z2 - ls2;
      double const mx = a > b ? a : b;
      double const l = mx + std::log(std::exp(a - mx) + std::exp(b - mx));
      double const w1 = std::exp(a - l), w2 = std::exp(b - l);
      lp += l - half_log_2pi;
      dmu[0] += w1 * z1 / s1;
      dmu[1] += w2 * z2 / s2;
      ds1 += w1 * (z1 * z1 - 1) / s1;
      ds2 += w2 * (z2 * z2 - 1) / s2;
      dth += w1 / th - w2 / (1 - th);
    }
    double ub[2];
    ord.pullback(uu, dmu, ub);
    g(0) = ub[0];
    g(1) = ub[1];
    g(2) = s1 * ds1 + 1;
    g(3) = s2 * ds2 + 1;
    g(4) = unit.pullback(q(4), dth);
    return lp;
  }
};

lensing::SamplerOptions options(std::uint64_t seed, int draws = 1000) {
  lensing::SamplerOptions opt;
  opt.num_chains = 4;
  opt.num_warmup = 1000;
  opt.num_draws = draws;
  opt.seed = seed;
  return opt;
}
}  // namespace

TEST_CASE("posteriordb: eight_schools_noncentered") {
  auto const data = pdb::load("eight_schools.data.json");
  EightSchools const d{data["y"].get<std::vector<double>>(), data["sigma"].get<std::vector<double>>()};
  pdb::check_gradient(d, 2.0);
  auto opt = options(1);
  opt.target_accept = 0.9;
  pdb::check_reference(
      "eight_schools-eight_schools_noncentered", d,
      [](double const* u, double* x) {
        double const tau = std::exp(u[9]);
        for (int j = 0; j < 8; ++j)
          x[j] = u[8] + tau * u[j];
        x[8] = u[8];
        x[9] = tau;
      },
      opt);
}

TEST_CASE("posteriordb: arK") {
  auto const data = pdb::load("arK.data.json");
  ArK const d{data["K"].get<int>(), data["y"].get<std::vector<double>>()};
  pdb::check_gradient(d);
  pdb::check_reference(
      "arK-arK", d,
      [](double const* u, double* x) {
        for (int k = 0; k < 6; ++k)
          x[k] = u[k];
        x[6] = std::exp(u[6]);
      },
      options(2));
}

TEST_CASE("posteriordb: garch11") {
  auto const data = pdb::load("garch.data.json");
  Garch const d{data["y"].get<std::vector<double>>(), data["sigma1"].get<double>()};
  pdb::check_gradient(d);
  pdb::check_reference(
      "garch-garch11", d,
      [](double const* u, double* x) {
        double const a1 = lensing::detail::sigmoid(u[2]);
        x[0] = u[0];
        x[1] = std::exp(u[1]);
        x[2] = a1;
        x[3] = (1 - a1) * lensing::detail::sigmoid(u[3]);
      },
      options(3));
}

TEST_CASE("posteriordb: gp_pois_regr") {
  auto const data = pdb::load("gp_pois_regr.data.json");
  GpPois const d{data["x"].get<std::vector<double>>(), data["k"].get<std::vector<double>>()};
  pdb::check_gradient(d, 0.5);
  // Funnel-like geometry in (alpha, f): a higher target acceptance reduces the
  // divergences, and 1500 draws per chain shrink the Monte Carlo error of the
  // heavy-tailed alpha's second moment (see check_reference).
  auto opt = options(4, 1500);
  opt.target_accept = 0.9;
  pdb::check_reference(
      "gp_pois_regr-gp_pois_regr", d, [&](double const* u, double* x) { d.constrain(u, x); }, opt);
}

TEST_CASE("posteriordb: low_dim_gauss_mix") {
  auto const data = pdb::load("low_dim_gauss_mix.data.json");
  GaussMix const d{data["y"].get<std::vector<double>>()};
  pdb::check_gradient(d);
  // The posterior has a secondary mode ~450 nats below the reference's (both
  // means near -2.3, one component wide: sigma ~4.1 and ~0.8), which NUTS
  // cannot leave once a chain falls in. From Stan's inits, uniform(-2, 2) on
  // the unconstrained scale, one of the four chains fell in for 8 of 260
  // seeds (R-hat 1.5-1.7 then), so whether this test passed depended on the
  // seed and on the build's rounding. The reference describes the main mode:
  // the chains start in uniform(-1, 1), i.e. the gap between the ordered
  // means at least e^-1, from which 0 of 300 seeds (and 0 of 300 with the
  // test built at -O2) reached the secondary mode.
  auto opt = options(5);
  opt.init_radius = 1;
  pdb::check_reference(
      "low_dim_gauss_mix-low_dim_gauss_mix", d,
      [](double const* u, double* x) {
        x[0] = u[0];
        x[1] = u[0] + std::exp(u[1]);
        x[2] = std::exp(u[2]);
        x[3] = std::exp(u[3]);
        x[4] = lensing::detail::sigmoid(u[4]);
      },
      opt);
}
