// Bijections and priors: gradients against central finite differences,
// evaluated inside kernels on every backend in float and double;
// normalisation of the priors by quadrature; known values.

#include <lensing/density/prior.hpp>
#include <lensing/sample/bijections.hpp>

#include <lensing_test.hpp>

#include <cmath>

namespace {
// Central difference of f at x in double (step h).
template <class F>
double fd(F const& f, double x, double h = 1e-5) {
  return (f(x + h) - f(x - h)) / (2 * h);
}
template <class Scalar>
Scalar grad_tol() {
  return std::is_same<Scalar, float>::value ? Scalar(2e-3) : Scalar(1e-7);
}

// Checks a scalar bijection B<Scalar> at the points us, in a kernel on Space.
template <class Space, class Scalar, class B, class BD>
long check_bijection(B const& b, BD const& bd) {
  using Mem = typename Space::memory_space;
  double const us[] = {-3.0, -0.7, 0.0, 0.4, 2.5};
  Kokkos::View<Scalar* [6], Mem> out("out", 5);
  Kokkos::parallel_for(
      "lensing::test::bijection", Kokkos::RangePolicy<Space>(0, 5), KOKKOS_LAMBDA(int i) {
        Scalar u = Scalar(i == 0 ? -3.0 : i == 1 ? -0.7 : i == 2 ? 0.0 : i == 3 ? 0.4 : 2.5);
        out(i, 0) = b.constrain(u);
        out(i, 1) = b.unconstrain(b.constrain(u));
        out(i, 2) = b.derivative(u);
        out(i, 3) = b.log_jacobian(u);
        out(i, 4) = b.log_jacobian_gradient(u);
        out(i, 5) = b.pullback(u, Scalar(0.3));
      });
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  long bad = 0;
  Scalar const tol = grad_tol<Scalar>();
  for (int i = 0; i < 5; ++i) {
    double const u = us[i];
    auto x = [&](double v) { return bd.constrain(v); };
    // log-Jacobian from the derivative, FD of x and of the log-Jacobian.
    auto lj = [&](double v) { return bd.log_jacobian(v); };
    double const dx = fd(x, u), dlj = fd(lj, u);
    bad += !lensing::test::close(double(h(i, 1)), u, double(tol), double(tol));
    bad += !lensing::test::close(double(h(i, 2)), dx, double(tol), double(tol) * 1e-2);
    bad += !lensing::test::close(double(h(i, 3)), std::log(std::fabs(dx)), double(tol), double(tol));
    bad += !lensing::test::close(double(h(i, 4)), dlj, double(tol), double(tol));
    bad += !lensing::test::close(double(h(i, 5)), 0.3 * dx + dlj, double(tol), double(tol));
  }
  return bad;
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("scalar bijections: inverse, derivative, log-Jacobian and pullback", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  CHECK(check_bijection<Space, Scalar>(lensing::Positive<Scalar>{}, lensing::Positive<double>{}) == 0);
  CHECK(check_bijection<Space, Scalar>(lensing::LowerBound<Scalar>{Scalar(-1.5)}, lensing::LowerBound<double>{-1.5}) ==
        0);
  CHECK(check_bijection<Space, Scalar>(lensing::UpperBound<Scalar>{Scalar(2)}, lensing::UpperBound<double>{2}) == 0);
  CHECK(check_bijection<Space, Scalar>(lensing::UnitInterval<Scalar>{}, lensing::UnitInterval<double>{}) == 0);
  CHECK(check_bijection<Space, Scalar>(lensing::Bounded<Scalar>{Scalar(-1), Scalar(3)},
                                       lensing::Bounded<double>{-1, 3}) == 0);
  // Saturation far out stays finite (no NaN, finite log-Jacobian).
  lensing::Bounded<Scalar> const b{Scalar(0), Scalar(1)};
  CHECK(std::isfinite(b.log_jacobian(Scalar(80))));
  CHECK(std::isfinite(b.pullback(Scalar(-80), Scalar(1))));
}

LENSING_TEST_CASE_TEMPLATE("ordered bijection: values, inverse, log-Jacobian and pullback vs FD", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  int const n = 4;
  lensing::Ordered<double> const ord{n};
  double const u0[n] = {0.3, -0.5, 0.8, -1.2};
  double const xbar[n] = {0.7, -0.2, 0.4, 1.1};
  Kokkos::View<double*, Mem> u("u", n), x("x", n), ub("ub", n), back("back", n), xb("xb", n), lj("lj", 1);
  auto hu = Kokkos::create_mirror_view(u);
  auto hxb = Kokkos::create_mirror_view(xb);
  for (int i = 0; i < n; ++i)
    hu(i) = u0[i], hxb(i) = xbar[i];
  Kokkos::deep_copy(u, hu);
  Kokkos::deep_copy(xb, hxb);
  Kokkos::parallel_for(
      "lensing::test::ordered", Kokkos::RangePolicy<Space>(0, 1), KOKKOS_LAMBDA(int) {
        ord.constrain(u.data(), x.data());
        ord.unconstrain(x.data(), back.data());
        ord.pullback(u.data(), xb.data(), ub.data());
        lj(0) = ord.log_jacobian(u.data());
      });
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
  auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), back);
  auto hub = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ub);
  auto hlj = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lj);
  CHECK(hx(0) == doctest::Approx(0.3));
  CHECK(hx(1) == doctest::Approx(0.3 + std::exp(-0.5)));
  for (int i = 1; i < n; ++i)
    CHECK(hx(i) > hx(i - 1));
  for (int i = 0; i < n; ++i)
    CHECK(hb(i) == doctest::Approx(u0[i]).epsilon(1e-12));
  // Objective f(u) = xbar . x(u) + log|J(u)|; its gradient is the pullback.
  auto f = [&](double const* uu) {
    double xx[n];
    ord.constrain(uu, xx);
    double s = ord.log_jacobian(uu);
    for (int i = 0; i < n; ++i)
      s += xbar[i] * xx[i];
    return s;
  };
  // log|J| against the log-determinant of the FD Jacobian (triangular: product of diagonal).
  double logdet = 0;
  for (int k = 0; k < n; ++k) {
    double up[n], um[n], xp[n], xm[n];
    for (int i = 0; i < n; ++i)
      up[i] = um[i] = u0[i];
    up[k] += 1e-6;
    um[k] -= 1e-6;
    ord.constrain(up, xp);
    ord.constrain(um, xm);
    logdet += std::log(std::fabs((xp[k] - xm[k]) / 2e-6));
    CHECK(hub(k) == doctest::Approx((f(up) - f(um)) / 2e-6).epsilon(1e-7));
  }
  CHECK(hlj(0) == doctest::Approx(logdet).epsilon(1e-8));
}

namespace {
// Checks prior P<Scalar>: log_density and gradient in a kernel vs FD in
// double, at the points xs (inside the support).
template <class Space, class Scalar, class P, class PD>
long check_prior(P const& p, PD const& pd, std::vector<double> const& xs) {
  using Mem = typename Space::memory_space;
  int const n = int(xs.size());
  Kokkos::View<Scalar*, Mem> x("x", n), lp("lp", n), g("g", n);
  auto hx = Kokkos::create_mirror_view(x);
  for (int i = 0; i < n; ++i)
    hx(i) = Scalar(xs[i]);
  Kokkos::deep_copy(x, hx);
  Kokkos::parallel_for(
      "lensing::test::prior", Kokkos::RangePolicy<Space>(0, n), KOKKOS_LAMBDA(int i) {
        lp(i) = p.log_density(x(i));
        g(i) = p.gradient(x(i));
      });
  auto hlp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lp);
  auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), g);
  double const tol = std::is_same<Scalar, float>::value ? 2e-4 : 1e-7;
  long bad = 0;
  for (int i = 0; i < n; ++i) {
    double const xi = double(Scalar(xs[i]));
    double const h = 1e-6 * std::max(1.0, std::fabs(xi));
    double const dfd = (pd.log_density(xi + h) - pd.log_density(xi - h)) / (2 * h);
    bad += !lensing::test::close(double(hlp(i)), pd.log_density(xi), tol, tol);
    bad += !lensing::test::close(double(hg(i)), dfd, 10 * tol, 10 * tol);
  }
  return bad;
}

// Integral of exp(log_density) over [a, b] (Simpson, with x = a + (b - a) t^2
// mapping when the density is singular at a).
template <class P>
double integrate(P const& p, double a, double b, int n = 200000) {
  double s = 0;
  double const h = 1.0 / n;
  for (int i = 0; i <= n; ++i) {
    double const t = i * h;
    double const x = a + (b - a) * t * t, jac = 2 * (b - a) * t;
    double const w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
    double const lp = p.log_density(x);
    s += w * (std::isfinite(lp) ? std::exp(lp) * jac : 0.0);
  }
  return s * h / 3;
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("priors: log-densities and gradients vs FD", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using S = typename Config::scalar;
  using P = lensing::Prior<S>;
  using PD = lensing::Prior<double>;
  std::vector<double> const real = {-2.1, -0.3, 0.4, 1.7, 3.2};
  std::vector<double> const pos = {0.05, 0.4, 1.3, 2.7, 6.0};
  std::vector<double> const unit = {0.03, 0.2, 0.5, 0.77, 0.96};
  CHECK(check_prior<Space, S>(P::normal(0.5, 2), PD::normal(0.5, 2), real) == 0);
  CHECK(check_prior<Space, S>(P::half_normal(2), PD::half_normal(2), pos) == 0);
  CHECK(check_prior<Space, S>(P::half_cauchy(5), PD::half_cauchy(5), pos) == 0);
  CHECK(check_prior<Space, S>(P::student_t(3, 8, 10), PD::student_t(3, 8, 10), real) == 0);
  CHECK(check_prior<Space, S>(P::gamma(25, 4), PD::gamma(25, 4), pos) == 0);
  CHECK(check_prior<Space, S>(P::beta(5, 5), PD::beta(5, 5), unit) == 0);
  CHECK(check_prior<Space, S>(P::uniform(-3, 4), PD::uniform(-3, 4), real) == 0);
  CHECK(check_prior<Space, S>(P::log_uniform(0.01, 10), PD::log_uniform(0.01, 10), pos) == 0);
}

TEST_CASE("priors: normalised, known values, -inf outside the support") {
  using P = lensing::Prior<double>;
  CHECK(integrate(P::half_normal(2), 0, 40) == doctest::Approx(1).epsilon(1e-8));
  CHECK(integrate(P::gamma(25, 4), 0, 40) == doctest::Approx(1).epsilon(1e-8));
  CHECK(integrate(P::beta(5, 5), 0, 1) == doctest::Approx(1).epsilon(1e-8));
  CHECK(integrate(P::beta(0.5, 2), 0, 1) == doctest::Approx(1).epsilon(1e-5));
  CHECK(integrate(P::log_uniform(0.01, 10), 0.01, 10) == doctest::Approx(1).epsilon(1e-8));
  // Half-Cauchy: P(x <= s) = 1/2 (the scale is the median).
  CHECK(integrate(P::half_cauchy(5), 0, 5) == doctest::Approx(0.5).epsilon(1e-8));
  // Student-t(3): density at its centre = Gamma(2) / (Gamma(1.5) sqrt(3 pi) sigma).
  CHECK(std::exp(P::student_t(3, 8, 10).log_density(8)) ==
        doctest::Approx(1.0 / (std::tgamma(1.5) * std::sqrt(3 * M_PI) * 10)).epsilon(1e-12));
  CHECK(P::normal(0, 1).log_density(0) == doctest::Approx(-0.5 * std::log(2 * M_PI)).epsilon(1e-14));
  CHECK(std::exp(P::uniform(-3, 4).log_density(0)) == doctest::Approx(1.0 / 7).epsilon(1e-14));
  double const ninf = -HUGE_VAL;
  CHECK(P::half_normal(1).log_density(-0.1) == ninf);
  CHECK(P::half_cauchy(1).log_density(-0.1) == ninf);
  CHECK(P::gamma(2, 1).log_density(0) == ninf);
  CHECK(P::beta(2, 2).log_density(1) == ninf);
  CHECK(P::uniform(0, 1).log_density(1.5) == ninf);
  CHECK(P::log_uniform(1, 2).log_density(0.5) == ninf);
  CHECK(P::beta(2, 2).gradient(1.5) == 0);
  CHECK_NOTHROW(P::normal(0, 1));
  CHECK_THROWS_AS(P::normal(0, -1), std::invalid_argument);
  CHECK_THROWS_AS(P::uniform(1, 1), std::invalid_argument);
  CHECK_THROWS_AS(P::log_uniform(0, 1), std::invalid_argument);
}
