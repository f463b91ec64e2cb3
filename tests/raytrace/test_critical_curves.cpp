#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/raytrace/critical_curves.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

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
  // Independent of what critical_curves reports about itself: at every vertex,
  // the eigenvalue of A = I - H that the label names (tangential 1 - kappa -
  // gamma, radial 1 - kappa + gamma), from the lens's own Hessian evaluated
  // here, vanishes to the vertex's position accuracy: the root on a grid edge
  // is located to ~1e-12 of the 2" field (the SIE test above), so
  // |lambda| <= |grad lambda| 2e-12 + 16 eps (gradient by central differences);
  // the other eigenvalue is not small; and beta = x - alpha(x).
  double const eps = std::numeric_limits<double>::epsilon();
  auto eig = [&](double x, double y, bool tangential) {
    auto const H = lens.hessian(x, y);
    double const kappa = 0.5 * (H.xx + H.yy), gamma = std::hypot(0.5 * (H.xx - H.yy), H.xy);
    return tangential ? 1 - kappa - gamma : 1 - kappa + gamma;
  };
  for (auto const& c : curves) {
    CHECK(c.closed);
    bool const tang = c.kind == lensing::CriticalKind::tangential;
    double worst = 0, worst_beta = 0, min_other = 1e300;
    for (size_t k = 0; k < c.x.size(); ++k) {
      double const x = c.x[k], y = c.y[k], h = 1e-6;
      double const g = std::hypot((eig(x + h, y, tang) - eig(x - h, y, tang)) / (2 * h),
                                  (eig(x, y + h, tang) - eig(x, y - h, tang)) / (2 * h));
      worst = std::max(worst, std::fabs(eig(x, y, tang)) / (g * 2e-12 + 16 * eps));
      min_other = std::min(min_other, std::fabs(eig(x, y, !tang)));
      auto const a = lens.deflection(x, y);
      worst_beta = std::max(worst_beta, std::hypot(c.beta_x[k] - (x - a.x), c.beta_y[k] - (y - a.y)) /
                                            (4 * eps * (std::hypot(x, y) + std::hypot(a.x, a.y))));
    }
    MESSAGE(std::string(tang ? "tangential" : "radial") << ": " << c.x.size() << " vertices, worst |lambda| / model "
                                                        << worst << ", min |other eigenvalue| " << min_other);
    CHECK(worst <= 1);
    CHECK(worst_beta <= 1);
    CHECK(min_other > 0.1);
    double rmax = 0;
    for (size_t k = 0; k < c.x.size(); ++k)
      rmax = std::max(rmax, std::hypot(c.x[k], c.y[k]));
    if (tang) {
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
