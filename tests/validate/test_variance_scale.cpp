// fit_variance_scales: the closed-form maximum-likelihood variance scale
// recovers a known scale from synthetic Gaussian residuals, and is the
// maximiser of the scaled Gaussian log-likelihood.

#include <lensing/validate/variance_scale.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <random>
#include <vector>

namespace lv = lensing::validate;

TEST_CASE("fit_variance_scales recovers the true scale within its sampling error") {
  // Residuals r_ik = t_k sigma_ik z_ik, z ~ N(0, 1), sigma_ik varying per row:
  // the fitted s_k^2 estimates t_k^2 with relative standard error sqrt(2 / n);
  // the check allows 4 of them (a false failure has probability ~6e-5 per k,
  // and the seed is fixed).
  std::size_t const n = 20000, d = 3;
  double const truth[d] = {0.5, 1.0, 1.7};
  std::mt19937_64 rng(12345);
  std::normal_distribution<double> z;
  std::uniform_real_distribution<double> u(0.1, 3.0);
  std::vector<double> r(n * d), sd(n * d);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < d; ++k) {
      sd[i * d + k] = u(rng);
      r[i * d + k] = truth[k] * sd[i * d + k] * z(rng);
    }
  auto const s2 = lv::fit_variance_scales(r, sd, d);
  REQUIRE(s2.size() == d);
  double const rel = std::sqrt(2.0 / double(n));
  for (std::size_t k = 0; k < d; ++k) {
    CAPTURE(k);
    CHECK(std::fabs(s2[k] / (truth[k] * truth[k]) - 1) < 4 * rel);
  }
  // The closed form maximises the log-likelihood: scaling it by 1 -+ 2 % lowers it.
  auto loglik = [&](std::size_t k, double v) {
    double l = 0;
    for (std::size_t i = 0; i < n; ++i) {
      double const q = r[i * d + k] / sd[i * d + k];
      l += -0.5 * std::log(v) - 0.5 * q * q / v;
    }
    return l;
  };
  for (std::size_t k = 0; k < d; ++k) {
    CHECK(loglik(k, s2[k]) > loglik(k, 0.98 * s2[k]));
    CHECK(loglik(k, s2[k]) > loglik(k, 1.02 * s2[k]));
  }
  // Exact on a hand case: r/sd = {1, 3} -> s^2 = (1 + 9) / 2.
  CHECK(lv::fit_variance_scales({2.0, -3.0}, {2.0, 1.0}, 1)[0] == doctest::Approx(5.0).epsilon(1e-15));
  CHECK_THROWS_AS(lv::fit_variance_scales({}, {}, 1), std::invalid_argument);
  CHECK_THROWS_AS(lv::fit_variance_scales({1.0, 2.0, 3.0}, {1.0, 1.0, 1.0}, 2), std::invalid_argument);
  CHECK_THROWS_AS(lv::fit_variance_scales({1.0}, {0.0}, 1), std::invalid_argument);
  CHECK_THROWS_AS(lv::fit_variance_scales({1.0}, {1.0, 1.0}, 1), std::invalid_argument);
}
