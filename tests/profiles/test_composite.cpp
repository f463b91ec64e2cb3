#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>

#include "profile_checks.hpp"

namespace lt = lensing::test;

template <class Scalar>
using SIEPlusSIS = lensing::Composite<lensing::SIE<Scalar>, lensing::SIS<Scalar>>;

TEST_CASE("Composite sums its components and concatenates their parameters") {
  using C = SIEPlusSIS<double>;
  static_assert(C::num_params == 8, "");
  static_assert(C::offset<1> == 5, "");
  static_assert(std::is_trivially_copyable<C>::value, "");
  static_assert(lensing::is_mass_profile_v<C>, "");
  CHECK(std::string(C::param_names[0]) == "theta_E");
  CHECK(std::string(C::param_names[5]) == "theta_E");
  CHECK(std::string(C::param_names[7]) == "center_y");
  CHECK(C::component_of_param(4) == 0);
  CHECK(C::component_of_param(5) == 1);
  lensing::SIE<double> const sie{1.1, 0.1, -0.05, 0.0, 0.0};
  lensing::SIS<double> const sis{0.2, 0.8, 0.3};
  auto const c = lensing::make_composite(sie, sis);
  for (double x : {-1.0, 0.3, 1.7}) {
    double const y = 0.4 - 0.5 * x;
    auto const a = c.deflection(x, y), a1 = sie.deflection(x, y), a2 = sis.deflection(x, y);
    // Equal up to FMA contraction, which differs between inlining contexts.
    CHECK(a.x == doctest::Approx(a1.x + a2.x).epsilon(1e-14));
    CHECK(a.y == doctest::Approx(a1.y + a2.y).epsilon(1e-14));
    CHECK(c.potential(x, y) == doctest::Approx(sie.potential(x, y) + sis.potential(x, y)).epsilon(1e-14));
    CHECK(c.convergence(x, y) == doctest::Approx(sie.convergence(x, y) + sis.convergence(x, y)).epsilon(1e-14));
    CHECK(c.hessian(x, y).xy == doctest::Approx(sie.hessian(x, y).xy + sis.hessian(x, y).xy).epsilon(1e-14));
  }
  lt::check_packing<SIEPlusSIS>({1.1, 0.1, -0.05, 0.0, 0.0, 0.2, 0.8, 0.3});
  CHECK_THROWS_WITH_AS(lensing::make_composite(sie, lensing::SIS<double>{-0.2, 0.0, 0.0}).check(),
                       "lensing::SIS: theta_E must be finite and > 0 (got -0.20000000000000001)",
                       std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("Composite VJPs match finite differences", Config, lt::AllConfigs) {
  std::vector<double> xs, ys;
  lt::spiral_points(0.0, 0.0, 16, xs, ys);
  lt::check_vjps<SIEPlusSIS, Config>({1.1, 0.1, -0.05, 0.0, 0.0, 0.2, 0.8, 0.3}, xs, ys);
}
