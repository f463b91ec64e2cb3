// Chi-square p-values against closed forms (2 dof: exp(-x/2); 1 dof:
// erfc(sqrt(x/2)); 4 dof: (1 + x/2) exp(-x/2)) on both sides of the
// series / continued-fraction switch; Kolmogorov-Smirnov distance by hand.

#include <lensing/validate/statistics.hpp>

#include <lensing_test.hpp>

#include <cmath>

namespace lv = lensing::validate;

TEST_CASE("chi-square p-values match closed forms") {
  for (double x : {0.01, 0.5, 1.9, 2.5, 7.0, 30.0, 120.0}) {
    CHECK(lv::chi_square_p_value(x, 2) == doctest::Approx(std::exp(-x / 2)).epsilon(1e-12));
    CHECK(lv::chi_square_p_value(x, 1) == doctest::Approx(std::erfc(std::sqrt(x / 2))).epsilon(1e-11));
    CHECK(lv::chi_square_p_value(x, 4) == doctest::Approx((1 + x / 2) * std::exp(-x / 2)).epsilon(1e-12));
  }
  CHECK(lv::chi_square_p_value(0, 3) == 1.0);
  CHECK_THROWS_AS(lv::chi_square_p_value(-1, 3), std::invalid_argument);
  CHECK_THROWS_AS(lv::chi_square_p_value(1, 0), std::invalid_argument);
  CHECK_THROWS_AS(lv::gamma_q(1, std::nan("")), std::invalid_argument);
}

TEST_CASE("Kolmogorov-Smirnov distance to U(0,1) and its p-value") {
  // Sorted {0.1, 0.2, 0.9}: max(1/3 - 0.1, 2/3 - 0.2, 1 - 0.9, 0.1, 0.2 - 1/3, 0.9 - 2/3) = 0.4667.
  CHECK(lv::ks_uniform_distance({0.9, 0.1, 0.2}) == doctest::Approx(2.0 / 3 - 0.2).epsilon(1e-14));
  // Kolmogorov: P(K > 1.3581) = 0.05, P(K > 1.9495) = 0.001 (standard table values).
  CHECK(lv::kolmogorov_p_value(1.3581) == doctest::Approx(0.05).epsilon(1e-3));
  CHECK(lv::kolmogorov_p_value(1.9495) == doctest::Approx(0.001).epsilon(1e-2));
  CHECK_THROWS_AS(lv::ks_uniform_distance({}), std::invalid_argument);
}
