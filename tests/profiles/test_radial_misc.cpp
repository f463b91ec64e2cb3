// Hernquist, PseudoJaffe, CoredDensity and PointMass.
#include <lensing/profiles/cored_density.hpp>
#include <lensing/profiles/hernquist.hpp>
#include <lensing/profiles/point_mass.hpp>
#include <lensing/profiles/pseudo_jaffe.hpp>

#include "profile_checks.hpp"

using lensing::CoredDensity;
using lensing::Hernquist;
using lensing::PointMass;
using lensing::PseudoJaffe;
namespace lt = lensing::test;

namespace {
void ring(double cx, double cy, double r, std::vector<double>& xs, std::vector<double>& ys) {
  xs.push_back(cx + r);
  ys.push_back(cy);
  xs.push_back(cx - 0.6 * r);
  ys.push_back(cy + 0.8 * r);
}
std::vector<double> const far_x = {0.0, 1e-30, 1e-13, 1e-7, 1e3, 1e6, -3e9};
std::vector<double> const far_y = {0.0, 0.0, 0.0, 0.0, 1e3, 0.0, 1e9};
}  // namespace

//------------------------------------------------------------------------------
// Hernquist

LENSING_TEST_CASE_TEMPLATE("Hernquist matches lenstronomy", Config, lt::AllConfigs) {
  // lenstronomy's Hernquist Hessian (and so its kappa) is a central finite
  // difference of alpha with step 1e-5: measured against our analytic values,
  // 3.8e-8 of each quantity's largest value (4.9e-7 elementwise); psi and
  // alpha agree to 4e-11.  Hessian/kappa compared normwise at 1e-7.
  lt::ReferenceTolerance tol;
  tol.hessian_rtol = 1e-7;
  lt::check_reference<Hernquist, Config>("HERNQUIST", tol);
}

LENSING_TEST_CASE_TEMPLATE("Hernquist VJPs match finite differences, near x = 1 and at small r", Config,
                           lt::AllConfigs) {
  double const Rs = 1.7;
  std::vector<double> xs, ys;
  lt::spiral_points(0.0, 0.0, 20, xs, ys);
  for (double r : {Rs, Rs + 1e-9, Rs - 1e-9, 0.7071 * Rs, 1.2248 * Rs, 1e-2, 40.0})
    ring(0.0, 0.0, r, xs, ys);
  lt::check_vjps<Hernquist, Config>({0.6, Rs, 0.0, 0.0}, xs, ys);
}

TEST_CASE("Hernquist identities, packing and analytic values") {
  double const s0 = 0.6, Rs = 1.7;
  std::vector<double> const theta = {s0, Rs, 0.0, 0.0};
  lt::check_packing<Hernquist>(theta);
  std::vector<double> xs, ys;
  lt::spiral_points(0.0, 0.0, 30, xs, ys);
  for (double r : {Rs, Rs + 1e-9, 0.05, 20.0})
    ring(0.0, 0.0, r, xs, ys);
  lt::check_identities<Hernquist>(theta, xs, ys, 1e-7);
  Hernquist<double> const p{s0, Rs, 0.0, 0.0};
  // x = 1: alpha = (2/3) sigma0 Rs, kappa = 4 sigma0/15.
  CHECK(p.deflection(Rs, 0.0).x == doctest::Approx(2 * s0 * Rs / 3).epsilon(1e-15));
  CHECK(p.convergence(Rs, 0.0) == doctest::Approx(4 * s0 / 15).epsilon(1e-15));
  // Direct formulas in long double away from x = 1.
  for (double x : {1e-3, 0.05, 0.4, 1.5, 3.0, 100.0}) {
    long double const X = x;
    long double const A = X < 1 ? std::acosh(1 / X) / std::sqrt(1 - X * X) : std::acos(1 / X) / std::sqrt(X * X - 1);
    long double const KH = (-3 + (2 + X * X) * A) / ((X * X - 1) * (X * X - 1));
    long double const F = (1 - A) / (X * X - 1);
    CHECK(p.convergence(x * Rs, 0.0) == doctest::Approx(double(s0 * KH)).epsilon(1e-12));
    CHECK(p.deflection(x * Rs, 0.0).x == doctest::Approx(double(2 * s0 * Rs * X * F)).epsilon(1e-13));
    CHECK(p.potential(x * Rs, 0.0) ==
          doctest::Approx(double(s0 * Rs * Rs * (std::log(X * X / 4) + 2 * A))).epsilon(1e-12));
  }
  // Large r: point mass theta_E^2 = 2 sigma0 Rs^2, alpha r/theta_E^2 = 1 - pi/(2x) + O(1/x^2).
  double const x = 1e6;
  CHECK(p.deflection(x * Rs, 0.0).x * x * Rs / (2 * s0 * Rs * Rs) ==
        doctest::Approx(1 - 3.141592653589793 / (2 * x)).epsilon(1e-11));
  CHECK(p.deflection(0.0, 0.0) == lensing::Vec2<double>{0.0, 0.0});
}

TEST_CASE("Hernquist rejects bad parameters") {
  CHECK_THROWS_WITH_AS(Hernquist<double>({1.0, -1.0, 0.0, 0.0}).check(),
                       "lensing::Hernquist: Rs must be finite and > 0 (got -1)", std::invalid_argument);
  CHECK_THROWS_AS(Hernquist<double>({0.0, 1.0, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(Hernquist<double>({std::nan(""), 1.0, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_NOTHROW(Hernquist<double>({1.0, 1.0, 0.0, 0.0}).check());
}

LENSING_TEST_CASE_TEMPLATE("Hernquist is finite at the centre, at x = 1 and far away", Config, lt::AllConfigs) {
  auto xs = far_x, ys = far_y;
  xs.push_back(1.7);
  ys.push_back(0.0);
  lt::check_finite<Hernquist, Config>({0.6, 1.7, 0.0, 0.0}, xs, ys);
  lt::check_finite<Hernquist, Config>({0.6, 1e3, 0.0, 0.0}, xs, ys);
}

//------------------------------------------------------------------------------
// PseudoJaffe

LENSING_TEST_CASE_TEMPLATE("PseudoJaffe matches lenstronomy", Config, lt::AllConfigs) {
  lt::check_reference<PseudoJaffe, Config>("PJAFFE");
}

LENSING_TEST_CASE_TEMPLATE("PseudoJaffe VJPs match finite differences, at the centre and small r", Config,
                           lt::AllConfigs) {
  std::vector<double> xs, ys;
  lt::spiral_points(0.1, 0.2, 20, xs, ys);
  for (double r : {0.0, 1e-3, 0.2, 1.5, 30.0})
    ring(0.1, 0.2, r, xs, ys);
  lt::check_vjps<PseudoJaffe, Config>({0.9, 0.2, 1.5, 0.1, 0.2}, xs, ys);
  lt::check_vjps<PseudoJaffe, Config>({0.9, 1.5, 0.2, 0.1, 0.2}, xs, ys);  // Ra > Rs: the swapped lens
}

TEST_CASE("PseudoJaffe identities, symmetry, centre and limits") {
  double const s0 = 0.9, Ra = 0.2, Rs = 1.5;
  std::vector<double> const theta = {s0, Ra, Rs, 0.1, 0.2};
  lt::check_packing<PseudoJaffe>(theta);
  std::vector<double> xs, ys;
  lt::spiral_points(0.1, 0.2, 30, xs, ys);
  lt::check_identities<PseudoJaffe>(theta, xs, ys, 1e-7);
  PseudoJaffe<double> const p{s0, Ra, Rs, 0.0, 0.0}, q{s0, Rs, Ra, 0.0, 0.0};
  // Symmetric under Ra <-> Rs (lenstronomy swaps them), gradients swapped.
  for (double r : {0.0, 0.01, 0.7, 9.0}) {
    CHECK(q.potential(r, 0.0) == doctest::Approx(p.potential(r, 0.0)).epsilon(1e-14));
    CHECK(q.deflection(r, 0.0).x == doctest::Approx(p.deflection(r, 0.0).x).epsilon(1e-14));
    CHECK(q.convergence(r, 0.0) == doctest::Approx(p.convergence(r, 0.0)).epsilon(1e-14));
    double gp[5] = {}, gq[5] = {};
    p.deflection_vjp(r, 0.0, {1.0, 0.0}, gp);
    q.deflection_vjp(r, 0.0, {1.0, 0.0}, gq);
    p.potential_vjp(r, 0.0, 1.0, gp);
    q.potential_vjp(r, 0.0, 1.0, gq);
    p.convergence_vjp(r, 0.0, 1.0, gp);
    q.convergence_vjp(r, 0.0, 1.0, gq);
    CHECK(gq[1] == doctest::Approx(gp[2]).epsilon(1e-12));
    CHECK(gq[2] == doctest::Approx(gp[1]).epsilon(1e-12));
  }
  // Centre: kappa = sigma0, H = sigma0 I, alpha = 0, psi(0) = 2c[Ra - Rs - Ra ln 2Ra + Rs ln 2Rs].
  double const c = s0 * Ra * Rs / (Rs - Ra);
  CHECK(p.convergence(0.0, 0.0) == doctest::Approx(s0).epsilon(1e-15));
  auto const H = p.hessian(0.0, 0.0);
  CHECK(H.xx == doctest::Approx(s0).epsilon(1e-15));
  CHECK(H.yy == doctest::Approx(s0).epsilon(1e-15));
  CHECK(H.xy == 0.0);
  CHECK(p.deflection(0.0, 0.0) == lensing::Vec2<double>{0.0, 0.0});
  CHECK(p.potential(0.0, 0.0) ==
        doctest::Approx(2 * c * (Ra - Rs - Ra * std::log(2 * Ra) + Rs * std::log(2 * Rs))).epsilon(1e-14));
  // Direct forms away from the centre.
  for (double r : {0.05, 0.7, 4.0}) {
    double const Sa = std::hypot(Ra, r), Ss = std::hypot(Rs, r);
    CHECK(p.convergence(r, 0.0) == doctest::Approx(c * (1 / Sa - 1 / Ss)).epsilon(1e-13));
    CHECK(p.deflection(r, 0.0).x == doctest::Approx(2 * c * (Sa - Ra - Ss + Rs) / r).epsilon(1e-13));
  }
  // Large r: alpha r -> 2 sigma0 Ra Rs (total mass).
  CHECK(p.deflection(1e8, 0.0).x * 1e8 == doctest::Approx(2 * s0 * Ra * Rs).epsilon(1e-7));
  // Ra -> 0, Rs -> infinity, 2 sigma0 Ra = theta_E: the SIS, error O(Ra) + O(r/Rs).
  double const tE = 1.2, r = 0.7;
  double prev = 1;
  for (double ra : {1e-2, 1e-3, 1e-4}) {
    PseudoJaffe<double> const s{tE / (2 * ra), ra, 1 / ra, 0.0, 0.0};
    double const err = std::fabs(s.deflection(r, 0.0).x / tE - 1);
    CHECK(err < 3 * ra);
    CHECK(err < 0.2 * prev);
    prev = err;
    CHECK(s.convergence(r, 0.0) == doctest::Approx(tE / (2 * r)).epsilon(3 * ra));
  }
  // Ra -> 0 alone: truncated SIS kappa = (theta_E/2)(1/r - 1/sqrt(Rs^2 + r^2)).
  PseudoJaffe<double> const t{tE / 2e-8, 1e-8, 2.0, 0.0, 0.0};
  CHECK(t.convergence(r, 0.0) == doctest::Approx(tE / 2 * (1 / r - 1 / std::hypot(2.0, r))).epsilon(1e-7));
}

TEST_CASE("PseudoJaffe rejects bad parameters") {
  CHECK_THROWS_WITH_AS(PseudoJaffe<double>({1.0, 0.5, 0.5, 0.0, 0.0}).check(),
                       "lensing::PseudoJaffe: Ra and Rs must differ (the potential is 0/0 at Ra = Rs)",
                       std::invalid_argument);
  CHECK_THROWS_AS(PseudoJaffe<double>({1.0, 0.0, 0.5, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(PseudoJaffe<double>({1.0, 0.2, -0.5, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(PseudoJaffe<double>({0.0, 0.2, 0.5, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(PseudoJaffe<double>({1.0, std::nan(""), 0.5, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_NOTHROW(PseudoJaffe<double>({1.0, 0.5, 0.2, 0.0, 0.0}).check());  // Ra > Rs: lenstronomy swaps
}

LENSING_TEST_CASE_TEMPLATE("PseudoJaffe is finite at the centre and far away", Config, lt::AllConfigs) {
  lt::check_finite<PseudoJaffe, Config>({0.9, 0.2, 1.5, 0.0, 0.0}, far_x, far_y);
  lt::check_finite<PseudoJaffe, Config>({0.9, 1e-4, 1e4, 0.0, 0.0}, far_x, far_y);
}

//------------------------------------------------------------------------------
// CoredDensity

LENSING_TEST_CASE_TEMPLATE("CoredDensity matches lenstronomy", Config, lt::AllConfigs) {
  lt::check_reference<CoredDensity, Config>("CORED_DENSITY");
}

LENSING_TEST_CASE_TEMPLATE("CoredDensity VJPs match finite differences, at the centre and small r", Config,
                           lt::AllConfigs) {
  std::vector<double> xs, ys;
  lt::spiral_points(-0.1, 0.3, 20, xs, ys);
  for (double r : {0.0, 1e-3, 2.0, 9.0, 50.0})
    ring(-0.1, 0.3, r, xs, ys);
  lt::check_vjps<CoredDensity, Config>({0.3, 2.0, -0.1, 0.3}, xs, ys);
  lt::check_vjps<CoredDensity, Config>({0.3, 0.05, -0.1, 0.3}, xs, ys);
}

TEST_CASE("CoredDensity identities, centre and the point-mass limit") {
  double const s0 = 0.3, rc = 2.0;
  std::vector<double> const theta = {s0, rc, -0.1, 0.3};
  lt::check_packing<CoredDensity>(theta);
  std::vector<double> xs, ys;
  lt::spiral_points(-0.1, 0.3, 30, xs, ys);
  lt::check_identities<CoredDensity>(theta, xs, ys, 1e-7);
  CoredDensity<double> const p{s0, rc, 0.0, 0.0};
  // Centre: kappa = sigma0, H = sigma0 I, alpha = 0, psi = 2 sigma0 rc^2 ln(2 rc).
  CHECK(p.convergence(0.0, 0.0) == s0);
  auto const H = p.hessian(0.0, 0.0);
  CHECK(H.xx == doctest::Approx(s0).epsilon(1e-15));
  CHECK(H.yy == doctest::Approx(s0).epsilon(1e-15));
  CHECK(H.xy == 0.0);
  CHECK(p.deflection(0.0, 0.0) == lensing::Vec2<double>{0.0, 0.0});
  CHECK(p.potential(0.0, 0.0) == doctest::Approx(2 * s0 * rc * rc * std::log(2 * rc)).epsilon(1e-15));
  // Direct forms: alpha = 2 sigma0 rc^2 (1 - rc/S)/r, psi = 2 sigma0 rc^2 (2 ln r - ln(S - rc)).
  for (double r : {0.3, 2.0, 30.0}) {
    double const S = std::hypot(rc, r);
    CHECK(p.deflection(r, 0.0).x == doctest::Approx(2 * s0 * rc * rc * (1 - rc / S) / r).epsilon(1e-13));
    CHECK(p.potential(r, 0.0) ==
          doctest::Approx(2 * s0 * rc * rc * (2 * std::log(r) - std::log(S - rc))).epsilon(1e-12));
    CHECK(p.convergence(r, 0.0) == doctest::Approx(s0 * std::pow(1 + r * r / (rc * rc), -1.5)).epsilon(1e-14));
  }
  // Small r, where lenstronomy's form cancels: alpha/r -> sigma0 (1 - 3 q/4), q = r^2/rc^2.
  CHECK(p.deflection(1e-5, 0.0).x / 1e-5 == doctest::Approx(s0 * (1 - 0.75 * 1e-10 / (rc * rc))).epsilon(1e-15));
  // r_core -> 0 with 2 sigma0 rc^2 = theta_E^2: point mass, error rc/S = O(rc/r).
  double const tE = 1.2, r = 0.7;
  for (double c : {1e-2, 1e-3, 1e-4}) {
    CoredDensity<double> const q{tE * tE / (2 * c * c), c, 0.0, 0.0};
    double const err = std::fabs(q.deflection(r, 0.0).x * r / (tE * tE) - 1);
    CHECK(err == doctest::Approx(c / std::hypot(c, r)).epsilon(1e-6));
    CHECK(err < 2 * c / r);
  }
}

TEST_CASE("CoredDensity rejects bad parameters") {
  CHECK_THROWS_WITH_AS(CoredDensity<double>({1.0, 0.0, 0.0, 0.0}).check(),
                       "lensing::CoredDensity: r_core must be finite and > 0 (got 0)", std::invalid_argument);
  CHECK_THROWS_AS(CoredDensity<double>({-1.0, 1.0, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(CoredDensity<double>({1.0, std::nan(""), 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_NOTHROW(CoredDensity<double>({1.0, 1.0, 0.0, 0.0}).check());
}

LENSING_TEST_CASE_TEMPLATE("CoredDensity is finite at the centre and far away", Config, lt::AllConfigs) {
  lt::check_finite<CoredDensity, Config>({0.3, 2.0, 0.0, 0.0}, far_x, far_y);
  lt::check_finite<CoredDensity, Config>({0.3, 1e-6, 0.0, 0.0}, far_x, far_y);
}

//------------------------------------------------------------------------------
// PointMass

LENSING_TEST_CASE_TEMPLATE("PointMass matches lenstronomy", Config, lt::AllConfigs) {
  lt::check_reference<PointMass, Config>("POINT_MASS");
}

LENSING_TEST_CASE_TEMPLATE("PointMass VJPs match finite differences", Config, lt::AllConfigs) {
  std::vector<double> xs, ys;
  lt::spiral_points(0.1, -0.3, 24, xs, ys);
  lt::check_vjps<PointMass, Config>({1.1, 0.1, -0.3}, xs, ys, 1e-6, 1e-7);
}

TEST_CASE("PointMass identities, analytic values and the centre") {
  double const tE = 1.1;
  std::vector<double> const theta = {tE, 0.1, -0.3};
  lt::check_packing<PointMass>(theta);
  std::vector<double> xs, ys;
  lt::spiral_points(0.1, -0.3, 24, xs, ys);
  lt::check_identities<PointMass>(theta, xs, ys, 1e-6);  // FD error ~ h^2 theta_E^2/r^4 near the centre
  PointMass<double> const p{tE, 0.0, 0.0};
  double const x = 0.6, y = -0.8;  // r = 1
  auto const a = p.deflection(x, y);
  CHECK(a.x == doctest::Approx(tE * tE * x).epsilon(1e-15));
  CHECK(a.y == doctest::Approx(tE * tE * y).epsilon(1e-15));
  auto const H = p.hessian(2 * x, 2 * y);  // r = 2
  CHECK(H.xx == doctest::Approx(tE * tE * (4 * y * y - 4 * x * x) / 16).epsilon(1e-14));
  CHECK(H.xy == doctest::Approx(-2 * tE * tE * 4 * x * y / 16).epsilon(1e-14));
  CHECK(H.yy == doctest::Approx(-H.xx).epsilon(1e-14));
  CHECK(p.convergence(x, y) == 0.0);
  CHECK(p.potential(2 * x, 2 * y) == doctest::Approx(tE * tE * std::log(2.0)).epsilon(1e-15));
  // Centre: no deflection, zero Hessian (as lenstronomy), psi = theta_E^2 ln(cusp_radius).
  CHECK(p.deflection(0.0, 0.0) == lensing::Vec2<double>{0.0, 0.0});
  auto const H0 = p.hessian(0.0, 0.0);
  CHECK(H0.xx == 0.0);
  CHECK(H0.xy == 0.0);
  CHECK(H0.yy == 0.0);
  CHECK(p.potential(0.0, 0.0) == doctest::Approx(tE * tE * std::log(1e-15)).epsilon(1e-15));
}

TEST_CASE("PointMass rejects bad parameters") {
  CHECK_THROWS_WITH_AS(PointMass<double>({0.0, 0.0, 0.0}).check(),
                       "lensing::PointMass: theta_E must be finite and > 0 (got 0)", std::invalid_argument);
  CHECK_THROWS_AS(PointMass<double>({std::nan(""), 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(PointMass<double>({1.0, INFINITY, 0.0}).check(), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("PointMass is finite at the centre and far away", Config, lt::AllConfigs) {
  lt::check_finite<PointMass, Config>({1.1, 0.0, 0.0}, far_x, far_y);
}
