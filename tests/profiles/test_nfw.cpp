#include <lensing/profiles/nfw.hpp>

#include "profile_checks.hpp"

using lensing::NFW;
namespace lt = lensing::test;

namespace {
// ks = alpha_Rs / (4 Rs (1 - ln 2)).
long double ks_of(long double Rs, long double aRs) { return aRs / (4 * Rs * (1 - std::log(2.0L))); }
// Direct (textbook) NFW functions in long double, for x away from 1.
long double A_ld(long double x) {
  return x < 1 ? std::acosh(1 / x) / std::sqrt(1 - x * x) : std::acos(1 / x) / std::sqrt(x * x - 1);
}
// Points at radius r around the origin (x = r/Rs exact when the centre is 0).
void ring(double r, std::vector<double>& xs, std::vector<double>& ys) {
  xs.push_back(r);
  ys.push_back(0.0);
  xs.push_back(0.6 * r);
  ys.push_back(-0.8 * r);
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("NFW matches lenstronomy", Config, lt::AllConfigs) {
  // Default tolerances plus lenstronomy's own rounding of its direct F near
  // x = 1 (lt::nfw_reference_error: ~eps / (x - 1)^2 in the Hessian).
  lt::ReferenceTolerance tol;
  tol.reference_error = [](std::vector<double> const& t, double x, double y, bool second) {
    return lt::nfw_reference_error(t[0], t[1], t[2], t[3], x, y, second);
  };
  lt::check_reference<NFW, Config>("NFW", tol);
}

LENSING_TEST_CASE_TEMPLATE("NFW VJPs match finite differences, near x = 1 and at small r", Config, lt::AllConfigs) {
  double const Rs = 1.3;
  std::vector<double> xs, ys;
  lt::spiral_points(0.0, 0.0, 24, xs, ys);
  for (double r : {Rs, Rs + 1e-9, Rs - 1e-9, Rs * 1.0001, 0.9 * Rs, 1e-2, 3e-2, 40.0})
    ring(r, xs, ys);
  lt::check_vjps<NFW, Config>({Rs, 0.7, 0.0, 0.0}, xs, ys);
  std::vector<double> xs2, ys2;
  lt::spiral_points(0.2, -0.1, 16, xs2, ys2);
  lt::check_vjps<NFW, Config>({0.4, 1.1, 0.2, -0.1}, xs2, ys2);
}

TEST_CASE("NFW identities, packing and analytic values") {
  double const Rs = 1.3, aRs = 0.7;
  std::vector<double> const theta = {Rs, aRs, 0.0, 0.0};
  lt::check_packing<NFW>(theta);
  std::vector<double> xs, ys;
  lt::spiral_points(0.0, 0.0, 30, xs, ys);
  for (double r : {Rs, Rs + 1e-9, Rs - 1e-9, 0.05, 20.0})
    ring(r, xs, ys);
  lt::check_identities<NFW>(theta, xs, ys, 1e-7);
  NFW<double> const p{Rs, aRs, 0.0, 0.0};
  long double const ks = ks_of(Rs, aRs);
  // alpha(Rs) = alpha_Rs and kappa(Rs) = 2 ks / 3 (x = 1 exactly).
  CHECK(p.deflection(Rs, 0.0).x == doctest::Approx(aRs).epsilon(1e-15));
  CHECK(p.convergence(Rs, 0.0) == doctest::Approx(double(2 * ks / 3)).epsilon(1e-15));
  // Against the direct formulas in long double away from x = 1.
  for (double x : {1e-3, 0.05, 0.4, 0.69, 1.3, 2.0, 50.0, 1e4}) {
    long double const A = A_ld(x), F = (1 - A) / ((long double)x * x - 1);
    long double const g = std::log(x / 2.0L) + A,
                      h = std::pow(std::log(x / 2.0L), 2) + ((long double)x * x - 1) * A * A;
    double const r = x * Rs;
    CHECK(p.convergence(r, 0.0) == doctest::Approx(double(2 * ks * F)).epsilon(1e-13));
    CHECK(p.deflection(r, 0.0).x == doctest::Approx(double(4 * ks * Rs * g / x)).epsilon(1e-13));
    // h at small x: direct long double loses ~1e-19 ln^2(x)/h, still < 1e-13.
    CHECK(p.potential(r, 0.0) == doctest::Approx(double(2 * ks * Rs * Rs * h)).epsilon(1e-13));
  }
  // Small x: kappa -> 2 ks (ln(2/x) - 1), alpha/r -> 2 ks (ln(2/x) - 1/2), psi -> ks Rs^2 x^2 ln^2(2/x).
  {
    double const x = 1e-9, r = x * Rs;
    CHECK(p.convergence(r, 0.0) == doctest::Approx(double(2 * ks * (std::log(2 / 1e-9L) - 1))).epsilon(1e-14));
    CHECK(p.deflection(r, 0.0).x / r == doctest::Approx(double(2 * ks * (std::log(2 / 1e-9L) - 0.5L))).epsilon(1e-14));
    CHECK(p.potential(r, 0.0) > 0.0);
    CHECK(p.potential(r, 0.0) < 1.01 * double(ks * Rs * Rs * x * x * std::pow(std::log(2 / 1e-9L), 2)));
  }
  // Large x: alpha -> 4 ks Rs (ln(x/2) + pi/(2x) - ...)/x, kappa -> 2 ks/x^2.
  {
    double const x = 1e8, r = x * Rs;
    CHECK(
        p.deflection(r, 0.0).x ==
        doctest::Approx(double(4 * ks * Rs *
                               (std::log(x / 2.0L) + 3.14159265358979323846L / (2 * x) - 1 / (x * (long double)x)) / x))
            .epsilon(1e-14));
    CHECK(p.convergence(r, 0.0) == doctest::Approx(double(2 * ks / ((long double)x * x))).epsilon(1e-7));
  }
  // The centre: deflection 0, Hessian isotropic and finite.
  CHECK(p.deflection(0.0, 0.0) == lensing::Vec2<double>{0.0, 0.0});
  auto const H = p.hessian(0.0, 0.0);
  CHECK(H.xy == 0.0);
  CHECK(H.xx == H.yy);
  CHECK(std::isfinite(H.xx));
  CHECK(p.potential(0.0, 0.0) == doctest::Approx(0.0).epsilon(1e-25));
}

TEST_CASE("NFW rejects bad parameters") {
  CHECK_THROWS_WITH_AS(NFW<double>({0.0, 1.0, 0.0, 0.0}).check(), "lensing::NFW: Rs must be finite and > 0 (got 0)",
                       std::invalid_argument);
  CHECK_THROWS_AS(NFW<double>({-1.0, 1.0, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(NFW<double>({1.0, -1.0, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(NFW<double>({std::nan(""), 1.0, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(NFW<double>({1.0, std::nan(""), 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(NFW<double>({1.0, 1.0, std::nan(""), 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(NFW<float>({1.0f, 1.0f, 0.0f, INFINITY}).check(), std::invalid_argument);
  CHECK_NOTHROW(NFW<double>({1.0, 1.0, 0.0, 0.0}).check());
}

LENSING_TEST_CASE_TEMPLATE("NFW is finite at the centre, at x = 1 and far away", Config, lt::AllConfigs) {
  double const Rs = 1.3;
  std::vector<double> const xs = {0.0, 1e-30, 1e-13, Rs, Rs * (1 + 1e-7), Rs * (1 - 1e-7), 1e3, 1e6, -3e9};
  std::vector<double> const ys = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1e3, 0.0, 1e9};
  lt::check_finite<NFW, Config>({Rs, 0.7, 0.0, 0.0}, xs, ys);
  lt::check_finite<NFW, Config>({1e3, 0.7, 0.0, 0.0}, xs, ys);
  lt::check_finite<NFW, Config>({1e-3, 0.7, 0.0, 0.0}, xs, ys);
}
