#include <lensing/profiles/sis.hpp>

#include "profile_checks.hpp"

using lensing::SIS;
namespace lt = lensing::test;

LENSING_TEST_CASE_TEMPLATE("SIS matches lenstronomy", Config, lt::AllConfigs) {
  lt::check_reference<SIS, Config>("SIS");
}

LENSING_TEST_CASE_TEMPLATE("SIS VJPs match finite differences", Config, lt::AllConfigs) {
  std::vector<double> const theta = {1.3, 0.1, -0.2};
  std::vector<double> xs, ys;
  lt::spiral_points(0.1, -0.2, 24, xs, ys);
  lt::check_vjps<SIS, Config>(theta, xs, ys);
}

TEST_CASE("SIS identities, packing, analytic values and the centre") {
  std::vector<double> const theta = {1.3, 0.1, -0.2};
  lt::check_packing<SIS>(theta);
  std::vector<double> xs, ys;
  lt::spiral_points(0.1, -0.2, 24, xs, ys);
  lt::check_identities<SIS>(theta, xs, ys, 1e-6);  // FD error near the cusp ~ h^2 theta_E / r^3
  SIS<double> const p{1.3, 0.1, -0.2};
  // |alpha| = theta_E everywhere; kappa = theta_E / (2r).
  auto const a = p.deflection(0.1 + 0.6, -0.2 - 0.8);
  CHECK(std::hypot(a.x, a.y) == doctest::Approx(1.3).epsilon(1e-15));
  CHECK(p.convergence(0.1 + 0.6, -0.2 - 0.8) == doctest::Approx(0.65).epsilon(1e-15));
  CHECK(p.deflection(0.1, -0.2) == lensing::Vec2<double>{0.0, 0.0});
  CHECK_THROWS_WITH_AS(SIS<double>({-1.0, 0.0, 0.0}).check(), "lensing::SIS: theta_E must be finite and > 0 (got -1)",
                       std::invalid_argument);
  CHECK_THROWS_AS(SIS<double>({1.0, std::nan(""), 0.0}).check(), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("SIS is finite at the centre", Config, lt::AllConfigs) {
  lt::check_finite<SIS, Config>({1.3, 0.1, -0.2}, {0.1, 0.1 + 1e-12, 0.1, 1e3}, {-0.2, -0.2, -0.2 + 1e-30, -1e3});
}
