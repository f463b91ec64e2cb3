#include <lensing/geometry/ellipticity.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>

TEST_CASE("ellipticity: known values and lenstronomy's convention") {
  // q = 0.5 along x: e1 = (1-q)/(1+q) = 1/3.
  auto e = lensing::q_phi_to_ellipticity(0.5, 0.0);
  CHECK(e.x == doctest::Approx(1.0 / 3.0).epsilon(1e-15));
  CHECK(e.y == doctest::Approx(0.0).scale(1));
  e = lensing::q_phi_to_ellipticity(0.5, M_PI / 4);
  CHECK(e.x == doctest::Approx(0.0).scale(1).epsilon(1e-15));
  CHECK(e.y == doctest::Approx(1.0 / 3.0).epsilon(1e-15));
  auto qp = lensing::ellipticity_to_q_phi(0.0, 0.0);
  CHECK(qp.q == 1.0);
  CHECK(qp.phi == 0.0);
  // Beyond |e| = 0.9999 the axis ratio is capped, as lenstronomy does.
  qp = lensing::ellipticity_to_q_phi(1.2, 0.0);
  CHECK(qp.q == doctest::Approx((1 - 0.9999) / (1 + 0.9999)).epsilon(1e-12));
}

LENSING_TEST_CASE_TEMPLATE("ellipticity round trip on the device", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  Scalar const tol = Scalar(16) * lensing::test::tolerance<Scalar>;
  long const failures = lensing::test::count_failures(
      Space(), 400, KOKKOS_LAMBDA(long i) {
        Scalar const q = Scalar(0.05) + Scalar(0.95) * Scalar(i % 20) / Scalar(19);   // [0.05, 1]
        Scalar const phi = Scalar(-1.5) + Scalar(3.0) * Scalar(i / 20) / Scalar(19);  // within (-pi/2, pi/2)
        auto const e = lensing::q_phi_to_ellipticity(q, phi);
        auto const back = lensing::ellipticity_to_q_phi(e.x, e.y);
        bool ok = lensing::test::close(back.q, q, tol, tol);
        // phi is defined only for q < 1.
        if (q < Scalar(0.999)) ok = ok && lensing::test::close(back.phi, phi, tol, Scalar(20) * tol);
        return ok;
      });
  CHECK(failures == 0);
}

TEST_CASE("ellipticity VJPs match central finite differences") {
  double const h = 1e-6;
  for (double e1 : {-0.4, -0.05, 0.2, 0.6}) {
    for (double e2 : {-0.3, 0.01, 0.35}) {
      for (double qb : {0.0, 1.0, -0.7}) {
        for (double pb : {0.0, 1.0, 0.3}) {
          auto const g = lensing::ellipticity_to_q_phi_vjp(e1, e2, qb, pb);
          auto f = [&](double a, double b) {
            auto r = lensing::ellipticity_to_q_phi(a, b);
            return qb * r.q + pb * r.phi;
          };
          double const fd1 = (f(e1 + h, e2) - f(e1 - h, e2)) / (2 * h);
          double const fd2 = (f(e1, e2 + h) - f(e1, e2 - h)) / (2 * h);
          CHECK(g.x == doctest::Approx(fd1).epsilon(1e-7).scale(1));
          CHECK(g.y == doctest::Approx(fd2).epsilon(1e-7).scale(1));
        }
      }
    }
  }
  for (double q : {0.2, 0.55, 0.9}) {
    for (double phi : {-1.2, 0.1, 0.8}) {
      lensing::Vec2<double> const eb{0.7, -1.3};
      auto const g = lensing::q_phi_to_ellipticity_vjp(q, phi, eb);
      auto f = [&](double a, double b) { return lensing::dot(lensing::q_phi_to_ellipticity(a, b), eb); };
      CHECK(g.q == doctest::Approx((f(q + h, phi) - f(q - h, phi)) / (2 * h)).epsilon(1e-7));
      CHECK(g.phi == doctest::Approx((f(q, phi + h) - f(q, phi - h)) / (2 * h)).epsilon(1e-7));
    }
  }
  // At e = 0 the VJP is finite (zero) rather than NaN.
  auto const g0 = lensing::ellipticity_to_q_phi_vjp(0.0, 0.0, 1.0, 1.0);
  CHECK(g0.x == 0.0);
  CHECK(g0.y == 0.0);
}

TEST_CASE("ellipticity checked conversions reject bad input") {
  double const nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(lensing::checked_q_phi_to_ellipticity(0.0, 0.0),
                       "lensing::q_phi_to_ellipticity: q must be in (0, 1] (got 0)", std::invalid_argument);
  CHECK_THROWS_AS(lensing::checked_q_phi_to_ellipticity(1.01, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(lensing::checked_q_phi_to_ellipticity(-0.5, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(lensing::checked_q_phi_to_ellipticity(nan, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(lensing::checked_q_phi_to_ellipticity(0.5, nan), std::invalid_argument);
  CHECK_THROWS_WITH_AS(lensing::checked_ellipticity_to_q_phi(0.8, 0.6),
                       "lensing::ellipticity_to_q_phi: |e| = sqrt(e1^2 + e2^2) must be < 1", std::invalid_argument);
  CHECK_THROWS_AS(lensing::checked_ellipticity_to_q_phi(nan, 0.1), std::invalid_argument);
  CHECK_NOTHROW(lensing::checked_q_phi_to_ellipticity(1.0, 0.0));
  auto const qp = lensing::checked_ellipticity_to_q_phi(0.1, -0.2);
  CHECK(qp.q < 1.0);
}
