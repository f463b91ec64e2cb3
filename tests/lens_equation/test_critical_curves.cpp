#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/raytrace/critical_curves.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <stdexcept>

LENSING_TEST_CASE_TEMPLATE("SIS: the critical curve is the Einstein circle, the caustic a point", Config,
                           lensing::test::AllConfigs) {
  using Scalar = typename Config::scalar;
  using Space = typename Config::execution_space;
  lensing::SIS<Scalar> const sis{Scalar(1.3), Scalar(0.1), Scalar(-0.2)};
  auto const curves = lensing::critical_curves(Space(), sis, Scalar(2.0), 128, Scalar(0.1), Scalar(-0.2));
  REQUIRE(curves.size() == 1);
  auto const& c = curves[0];
  CHECK(c.closed);
  CHECK(c.kind == lensing::CriticalKind::tangential);
  CHECK(c.x.size() > 100);
  double const tol = std::is_same<Scalar, float>::value ? 2e-5 : 1e-12;
  double worst_r = 0, worst_b = 0;
  for (size_t k = 0; k < c.x.size(); ++k) {
    worst_r = std::max(worst_r, std::fabs(std::hypot(double(c.x[k]) - 0.1, double(c.y[k]) + 0.2) - 1.3));
    worst_b = std::max(worst_b, std::hypot(double(c.beta_x[k]) - 0.1, double(c.beta_y[k]) + 0.2));
  }
  CHECK(worst_r < tol);
  CHECK(worst_b < tol);
  CHECK_THROWS_AS(lensing::critical_curves(Space(), sis, Scalar(-1)), std::invalid_argument);
  CHECK_THROWS_AS(lensing::critical_curves(Space(), sis, Scalar(1), 1), std::invalid_argument);
}

TEST_CASE("SIE: the critical curve is the ellipse q x'^2 + y'^2/q = theta_E^2") {
  double const e1 = 0.2, e2 = 0.1, te = 1.1, cx = 0.05, cy = -0.03;
  lensing::SIE<double> const sie{te, e1, e2, cx, cy};
  double const phi = 0.5 * std::atan2(e2, e1), e = std::hypot(e1, e2), q = (1 - e) / (1 + e);
  for (int cells : {64, 512}) {
    auto const curves = lensing::critical_curves(Kokkos::DefaultHostExecutionSpace(), sie, 2.0, cells, cx, cy);
    REQUIRE(curves.size() == 1);
    auto const& c = curves[0];
    CHECK(c.closed);
    CHECK(c.kind == lensing::CriticalKind::tangential);
    double worst = 0;
    for (size_t k = 0; k < c.x.size(); ++k) {
      double const dx = c.x[k] - cx, dy = c.y[k] - cy;
      double const xp = std::cos(phi) * dx + std::sin(phi) * dy, yp = -std::sin(phi) * dx + std::cos(phi) * dy;
      worst = std::max(worst, std::fabs(std::sqrt(q * xp * xp + yp * yp / q) / te - 1));
    }
    CHECK(worst < 1e-12);
    MESSAGE("SIE critical curve on " << cells << "^2: " << c.x.size() << " vertices, max relative error " << worst);
  }
}

TEST_CASE("cored lens with shear: tangential and radial curves, labelled, closed, on det A = 0") {
  using Lens = lensing::Composite<lensing::NIE<double>, lensing::ExternalShear<double>>;
  Lens const lens(lensing::NIE<double>{1.0, 0.15, 0.1, 0.03, 0.0, 0.0},
                  lensing::ExternalShear<double>{0.02, -0.01, 0.0, 0.0});
  auto const curves = lensing::critical_curves(Kokkos::DefaultHostExecutionSpace(), lens, 2.0, 300);
  REQUIRE(curves.size() == 2);
  int tangential = 0, radial = 0;
  for (auto const& c : curves) {
    CHECK(c.closed);
    CHECK(c.max_abs_det < 1e-12);
    double rmax = 0;
    for (size_t k = 0; k < c.x.size(); ++k)
      rmax = std::max(rmax, std::hypot(c.x[k], c.y[k]));
    if (c.kind == lensing::CriticalKind::tangential) {
      ++tangential;
      CHECK(rmax > 0.8);
    } else {
      ++radial;
      CHECK(rmax < 0.5);
    }
  }
  CHECK(tangential == 1);
  CHECK(radial == 1);
}
