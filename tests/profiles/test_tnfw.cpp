#include <lensing/profiles/nfw.hpp>
#include <lensing/profiles/tnfw.hpp>

#include "profile_checks.hpp"

using lensing::NFW;
using lensing::TNFW;
namespace lt = lensing::test;

namespace {
void ring(double r, std::vector<double>& xs, std::vector<double>& ys) {
  xs.push_back(r);
  ys.push_back(0.0);
  xs.push_back(-0.8 * r);
  ys.push_back(0.6 * r);
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("TNFW matches lenstronomy", Config, lt::AllConfigs) {
  lt::check_reference<TNFW, Config>("TNFW");
}

LENSING_TEST_CASE_TEMPLATE("TNFW VJPs match finite differences, near x = 1 and at small r", Config, lt::AllConfigs) {
  double const Rs = 0.8;
  std::vector<double> xs, ys;
  lt::spiral_points(0.0, 0.0, 20, xs, ys);
  for (double r : {Rs, Rs + 1e-9, Rs - 1e-9, 1.01 * Rs, 1e-2, 25.0})
    ring(r, xs, ys);
  for (double rt : {4.0, 0.5, Rs}) {  // tau > 1, tau < 1, tau = 1
    CAPTURE(rt);
    lt::check_vjps<TNFW, Config>({Rs, 0.3, rt, 0.0, 0.0}, xs, ys);
  }
}

TEST_CASE("TNFW identities, packing and analytic limits") {
  double const Rs = 0.8, aRs = 0.3;
  for (double rt : {4.0, 0.5, 0.8}) {
    std::vector<double> const theta = {Rs, aRs, rt, 0.1, -0.2};
    lt::check_packing<TNFW>(theta);
    std::vector<double> xs, ys;
    lt::spiral_points(0.1, -0.2, 30, xs, ys);
    for (double r : {Rs, Rs + 1e-9, 0.03, 15.0}) {
      xs.push_back(0.1 + r);
      ys.push_back(-0.2);
    }
    lt::check_identities<TNFW>(theta, xs, ys, 1e-7);
  }
  // Total mass: alpha r -> 4 ks Rs^2 P [(tau^2-1) ln tau + pi tau - tau^2 - 1]  (correction O(tau/x)).
  for (double tau : {0.5, 3.0}) {
    TNFW<double> const p{Rs, aRs, tau * Rs, 0.0, 0.0};
    double const ks = aRs / (4 * Rs * (1 - std::log(2.0))), t2 = tau * tau;
    double const mass =
        4 * ks * Rs * Rs * t2 / ((t2 + 1) * (t2 + 1)) * ((t2 - 1) * std::log(tau) + 3.141592653589793 * tau - t2 - 1);
    double const r = 1e8 * Rs;
    CHECK(p.deflection(r, 0.0).x * r == doctest::Approx(mass).epsilon(1e-7));
    CHECK(p.potential(1e-10, 0.0) == doctest::Approx(0.0).epsilon(1e-15));  // psi(0) = 0
  }
}

TEST_CASE("TNFW -> NFW as r_trunc -> infinity at the rate O(ln tau / tau^2)") {
  double const Rs = 1.0, aRs = 1.0;
  NFW<double> const nfw{Rs, aRs, 0.0, 0.0};
  for (double x : {0.3, 2.0}) {
    for (double tau : {1e2, 1e3, 1e4}) {
      CAPTURE(x);
      CAPTURE(tau);
      TNFW<double> const t{Rs, aRs, tau * Rs, 0.0, 0.0};
      double const rate = std::log(tau) / (tau * tau);
      double const da = std::fabs(t.deflection(x, 0.0).x / nfw.deflection(x, 0.0).x - 1) / rate;
      double const dk = std::fabs(t.convergence(x, 0.0) / nfw.convergence(x, 0.0) - 1) / rate;
      double const dp = std::fabs(t.potential(x, 0.0) / nfw.potential(x, 0.0) - 1) / rate;
      // The note measures |dalpha/alpha| tau^2/ln tau -> ~0.6 (x = 0.3) and ~3 (x = 2).
      CHECK(da > 0.05);
      CHECK(da < 5.0);
      CHECK(dk < 10.0);
      CHECK(dp < 10.0);
    }
  }
}

TEST_CASE("TNFW rejects bad parameters") {
  CHECK_THROWS_WITH_AS(TNFW<double>({1.0, 1.0, 0.0, 0.0, 0.0}).check(),
                       "lensing::TNFW: r_trunc must be finite and > 0 (got 0)", std::invalid_argument);
  CHECK_THROWS_AS(TNFW<double>({1.0, 1.0, -2.0, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(TNFW<double>({0.0, 1.0, 2.0, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(TNFW<double>({1.0, 0.0, 2.0, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(TNFW<double>({1.0, 1.0, std::nan(""), 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(TNFW<double>({1.0, 1.0, INFINITY, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(TNFW<double>({1.0, 1.0, 2.0, 0.0, std::nan("")}).check(), std::invalid_argument);
  CHECK_NOTHROW(TNFW<double>({1.0, 1.0, 2.0, 0.0, 0.0}).check());
}

LENSING_TEST_CASE_TEMPLATE("TNFW is finite at the centre, at x = 1 and far away", Config, lt::AllConfigs) {
  double const Rs = 0.8;
  std::vector<double> const xs = {0.0, 1e-30, 1e-13, Rs, Rs * (1 + 1e-7), 4.0, 1e3, 1e6, -3e9};
  std::vector<double> const ys = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1e3, 0.0, 1e9};
  for (double rt : {4.0, 0.5, Rs, 1e4})
    lt::check_finite<TNFW, Config>({Rs, 0.3, rt, 0.0, 0.0}, xs, ys);
  lt::check_finite<TNFW, Config>({1e3, 0.3, 2e3, 0.0, 0.0}, xs, ys);
}
