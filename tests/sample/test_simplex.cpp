// Stick-breaking simplex bijection: round trip, log-Jacobian against the
// log-determinant of a finite-difference Jacobian, log-Jacobian gradient and
// pullback against central differences, kernels on every backend in float
// and double, saturation far out; a Dirichlet target sampled by NUTS through
// the bijection recovers the analytic means and second moments within
// 4 Monte Carlo standard errors.

#include <lensing/sample/bijections.hpp>
#include <lensing/sample/diagnostics.hpp>
#include <lensing/sample/sampler.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <vector>

namespace dg = lensing::diagnostics;

namespace {
// log|det A| of a dense n x n matrix (row-major) by Gaussian elimination with partial pivoting.
double log_abs_det(std::vector<double> a, int n) {
  double s = 0;
  for (int c = 0; c < n; ++c) {
    int p = c;
    for (int r = c + 1; r < n; ++r)
      if (std::fabs(a[r * n + c]) > std::fabs(a[p * n + c])) p = r;
    if (p != c)
      for (int j = 0; j < n; ++j)
        std::swap(a[c * n + j], a[p * n + j]);
    double const piv = a[c * n + c];
    s += std::log(std::fabs(piv));
    for (int r = c + 1; r < n; ++r) {
      double const f = a[r * n + c] / piv;
      for (int j = c; j < n; ++j)
        a[r * n + j] -= f * a[c * n + j];
    }
  }
  return s;
}

std::vector<double> constrain(lensing::Simplex<double> const& s, std::vector<double> const& u) {
  std::vector<double> x(std::size_t(s.k));
  s.constrain(u.data(), x.data());
  return x;
}
}  // namespace

TEST_CASE("simplex bijection: centre, round trip, log-Jacobian vs FD determinant, gradients vs FD") {
  for (int K : {2, 3, 5, 8}) {
    lensing::Simplex<double> const s{K};
    int const n = K - 1;
    CHECK(s.unconstrained_dimension() == n);
    // u = 0 is the centre of the simplex.
    auto const x0 = constrain(s, std::vector<double>(std::size_t(n), 0.0));
    for (double v : x0)
      CHECK(v == doctest::Approx(1.0 / K).epsilon(1e-14));
    lensing::Rng rng(static_cast<std::uint64_t>(K));
    for (int trial = 0; trial < 4; ++trial) {
      std::vector<double> u(static_cast<std::size_t>(n)), xbar(static_cast<std::size_t>(K));
      for (auto& v : u)
        v = 3 * (2 * rng.uniform() - 1);
      for (auto& v : xbar)
        v = 2 * rng.uniform() - 1;
      auto const x = constrain(s, u);
      double sum = 0;
      for (double v : x) {
        CHECK(v > 0);
        sum += v;
      }
      CHECK(sum == doctest::Approx(1).epsilon(1e-14));
      std::vector<double> back(static_cast<std::size_t>(n)), logx(static_cast<std::size_t>(K));
      s.unconstrain(x.data(), back.data());
      s.log_constrain(u.data(), logx.data());
      for (int j = 0; j < n; ++j)
        CHECK(back[j] == doctest::Approx(u[j]).epsilon(1e-12));
      for (int j = 0; j < K; ++j)
        CHECK(logx[j] == doctest::Approx(std::log(x[j])).epsilon(1e-12));
      // FD Jacobian of u -> (x_0 .. x_{K-2}) and its log-determinant.
      double const h = 1e-6;
      std::vector<double> jac(static_cast<std::size_t>(n * n));
      std::vector<double> glj(static_cast<std::size_t>(n)), ub(static_cast<std::size_t>(n));
      s.log_jacobian_gradient(u.data(), glj.data());
      s.pullback(u.data(), xbar.data(), ub.data());
      auto objective = [&](std::vector<double> const& uu) {
        auto const xx = constrain(s, uu);
        double f = s.log_jacobian(uu.data());
        for (int i = 0; i < K; ++i)
          f += xbar[i] * xx[i];
        return f;
      };
      for (int j = 0; j < n; ++j) {
        auto up = u, um = u;
        up[j] += h;
        um[j] -= h;
        auto const xp = constrain(s, up), xm = constrain(s, um);
        for (int i = 0; i < n; ++i)
          jac[std::size_t(i) * n + j] = (xp[i] - xm[i]) / (2 * h);
        double const dlj = (s.log_jacobian(up.data()) - s.log_jacobian(um.data())) / (2 * h);
        CHECK(glj[j] == doctest::Approx(dlj).epsilon(1e-7).scale(1));
        CHECK(ub[j] == doctest::Approx((objective(up) - objective(um)) / (2 * h)).epsilon(1e-7).scale(1));
      }
      CHECK(s.log_jacobian(u.data()) == doctest::Approx(log_abs_det(jac, n)).epsilon(1e-7).scale(1));
    }
  }
}

LENSING_TEST_CASE_TEMPLATE("simplex bijection in kernels: float and double against the double reference; saturation",
                           Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using Scalar = typename Config::scalar;
  constexpr int K = 4;
  lensing::Simplex<Scalar> const s{K};
  // Row 0: a moderate point; row 1: far out (x_0 -> 1 and x_3 underflows in float).
  double const u0[2][K - 1] = {{0.4, -1.1, 0.7}, {60.0, -60.0, 30.0}};
  double const xb[K] = {0.3, -0.8, 1.2, 0.5};
  Kokkos::View<Scalar* [12], Mem> out("out", 2);
  Kokkos::parallel_for(
      "lensing::test::simplex", Kokkos::RangePolicy<Space>(Space(), 0, 2), KOKKOS_LAMBDA(int r) {
        Scalar u[K - 1], x[K], back[K - 1], g[K - 1], ub[K - 1];
        Scalar const xbar[K] = {Scalar(0.3), Scalar(-0.8), Scalar(1.2), Scalar(0.5)};
        u[0] = Scalar(r == 0 ? 0.4 : 60.0);
        u[1] = Scalar(r == 0 ? -1.1 : -60.0);
        u[2] = Scalar(r == 0 ? 0.7 : 30.0);
        s.constrain(u, x);
        s.unconstrain(x, back);
        s.log_jacobian_gradient(u, g);
        s.pullback(u, xbar, ub);
        for (int j = 0; j < K; ++j)
          out(r, j) = x[j];
        for (int j = 0; j < K - 1; ++j) {
          out(r, 4 + j) = r == 0 ? back[j] : g[j];
          out(r, 7 + j) = ub[j];
        }
        out(r, 10) = s.log_jacobian(u);
        out(r, 11) = x[0] + x[1] + x[2] + x[3];
      });
  auto const h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  lensing::Simplex<double> const sd{K};
  double const tol = std::is_same<Scalar, float>::value ? 2e-5 : 1e-12;
  for (int r = 0; r < 2; ++r) {
    double x[K], g[K - 1], ub[K - 1];
    sd.constrain(u0[r], x);
    sd.log_jacobian_gradient(u0[r], g);
    sd.pullback(u0[r], xb, ub);
    for (int j = 0; j < K; ++j)
      CHECK(lensing::test::close(double(h(r, j)), x[j], tol, tol));
    for (int j = 0; j < K - 1; ++j) {
      if (r == 0) CHECK(lensing::test::close(double(h(r, 4 + j)), u0[r][j], 10 * tol, 10 * tol));
      if (r == 1) CHECK(lensing::test::close(double(h(r, 4 + j)), g[j], tol, tol));
      CHECK(lensing::test::close(double(h(r, 7 + j)), ub[j], 10 * tol, 10 * tol));
    }
    CHECK(lensing::test::close(double(h(r, 10)), sd.log_jacobian(u0[r]), tol, tol));
    CHECK(lensing::test::close(double(h(r, 11)), 1.0, tol));
  }
  // Far out the log-Jacobian and log x stay finite (no 0 * inf, no log 0).
  double lx[K];
  sd.log_constrain(u0[1], lx);
  for (double v : lx)
    CHECK(std::isfinite(v));
  CHECK(std::isfinite(sd.log_jacobian(u0[1])));
}

namespace {
// Dirichlet(alpha) on the K-simplex through the stick-breaking bijection:
//   log p(u) = sum_k (alpha_k - 1) log x_k(u) + log|det dx/du|,
// gradient = pullback with x_bar_k = (alpha_k - 1) / x_k (host density).
struct Dirichlet {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  std::vector<double> alpha;
  int dimension() const { return int(alpha.size()) - 1; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    int const K = int(alpha.size());
    lensing::Simplex<double> const s{K};
    double logx[16], xbar[16];
    s.log_constrain(q.data(), logx);
    double lp = s.log_jacobian(q.data());
    for (int k = 0; k < K; ++k) {
      lp += (alpha[k] - 1) * logx[k];
      xbar[k] = (alpha[k] - 1) * std::exp(-logx[k]);
    }
    s.pullback(q.data(), xbar, g.data());
    return lp;
  }
};
}  // namespace

TEST_CASE("NUTS through the simplex bijection: Dirichlet means and second moments within 4 MCSE") {
  Dirichlet const target{{0.7, 1.5, 3.0, 5.0}};
  int const K = 4;
  double const a0 = 0.7 + 1.5 + 3.0 + 5.0;
  lensing::SamplerOptions opt;
  opt.num_chains = 4;
  opt.num_warmup = 1000;
  opt.num_draws = 2000;
  opt.seed = 31;
  auto const r = lensing::sample(Kokkos::DefaultHostExecutionSpace(), target, opt);
  int const m = r.num_chains, n = r.num_draws;
  lensing::Simplex<double> const s{K};
  // Columns: x_0..x_3, x_0^2..x_3^2.
  auto const vals = lensing::map_draws(r, 2 * K, [&](double const* u, double* out) {
    s.constrain(u, out);
    for (int k = 0; k < K; ++k)
      out[K + k] = out[k] * out[k];
  });
  for (int k = 0; k < K; ++k) {
    double const ak = target.alpha[k];
    double const mean = ak / a0, var = ak * (a0 - ak) / (a0 * a0 * (a0 + 1));
    double const truth[2] = {mean, var + mean * mean};
    for (int c = 0; c < 2; ++c) {
      std::vector<double> x(std::size_t(m) * n);
      for (std::size_t i = 0; i < x.size(); ++i)
        x[i] = vals[i * 2 * K + c * K + k];
      double avg = 0;
      for (double v : x)
        avg += v;
      avg /= double(x.size());
      double const mcse = dg::mcse_mean(x, m, n);
      MESSAGE("Dirichlet x_" << k << (c ? std::string("^2") : std::string()) << ": mean " << avg << " truth "
                             << truth[c] << " mcse " << mcse << " R-hat " << dg::rhat(x, m, n));
      CHECK(std::fabs(avg - truth[c]) <= 4 * mcse);
      CHECK(dg::rhat(x, m, n) < 1.01);
    }
  }
  CHECK(r.divergences() == 0);
}
