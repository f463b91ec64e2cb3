// The public finite-difference gradient checker (core/gradient_check.hpp):
// it passes a correct gradient, finds a wrong one (and which coordinate),
// reports NaN as a failure, follows its error model (truncation h^2/6 |f'''|
// at large h, rounding ~eps |f| / h at small h), and checks a LogDensity.

#include <lensing/core/gradient_check.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace {
double f3(std::vector<double> const& x) { return std::sin(x[0]) * std::exp(x[1]) + x[2] * x[2] * x[2]; }
std::vector<double> g3(std::vector<double> const& x) {
  return {std::cos(x[0]) * std::exp(x[1]), std::sin(x[0]) * std::exp(x[1]), 3 * x[2] * x[2]};
}

// log p = -1/2 sum a_i q_i^2; `wrong` scales the gradient of coordinate 1.
struct Quadratic {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  double wrong = 1;
  int dimension() const { return 3; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    double lp = 0;
    for (int i = 0; i < 3; ++i) {
      lp -= 0.5 * (i + 1) * q(i) * q(i);
      g(i) = -(i + 1) * q(i) * (i == 1 ? wrong : 1.0);
    }
    return lp;
  }
};
}  // namespace

TEST_CASE("gradient check: correct and wrong gradients, NaN, bad step") {
  std::vector<double> const x = {0.4, -0.3, 1.2};
  // Default step 6e-6: error ~ eps^(2/3) |f|-scaled, far below 1e-8.
  auto const ok = lensing::check_gradient(f3, x, g3(x));
  CHECK(ok.checked == 3);
  CHECK(ok.max_error < 1e-8);
  CHECK(ok.passed(1e-8));
  CHECK(ok.value == doctest::Approx(f3(x)));
  // A 1e-4 relative error in one component is found, with its coordinate.
  auto g = g3(x);
  g[2] *= 1 + 1e-4;
  auto const bad = lensing::check_gradient(f3, x, g);
  CHECK(bad.worst == 2);
  CHECK(bad.max_error > 5e-5);
  CHECK(!bad.passed(1e-6));
  CHECK(bad.analytic_at_worst == g[2]);
  // NaN anywhere fails, and stays the reported worst.
  g = g3(x);
  g[0] = std::nan("");
  auto const nan = lensing::check_gradient(f3, x, g);
  CHECK(std::isnan(nan.max_error));
  CHECK(nan.worst == 0);
  CHECK(!nan.passed(1.0));
  CHECK_THROWS_AS(lensing::check_gradient(f3, x, g, -1.0), std::invalid_argument);
  CHECK_THROWS_AS(lensing::check_gradient(f3, x, {1.0}), std::invalid_argument);
  // Nothing to check is not a pass.
  CHECK(!lensing::check_gradient([](std::vector<double> const&) { return 0.0; }, {}, {}).passed(1.0));
}

TEST_CASE("gradient check: the error model (truncation h^2/6 |f'''|, rounding eps |f| / h)") {
  // f = exp(x) at x = 0: f' = f''' = 1, so the truncation error is h^2/6 (1 + O(h^2)).
  auto const f = [](std::vector<double> const& v) { return std::exp(v[0]); };
  for (double h : {1e-2, 3e-3, 1e-3}) {
    double const err = lensing::check_gradient(f, {0.0}, {1.0}, h).max_error;
    CHECK(err == doctest::Approx(h * h / 6).epsilon(1e-3));
  }
  // At h = 1e-12 rounding (~eps / h = 2e-4 at most) dominates truncation (2e-25);
  // at the default step both are ~1e-11.
  double const tiny = lensing::check_gradient(f, {0.0}, {1.0}, 1e-12).max_error;
  CHECK(tiny > 1e-7);
  CHECK(tiny < 1e-3);
  CHECK(lensing::check_gradient(f, {0.0}, {1.0}).max_error < 1e-9);
  CHECK(lensing::central_difference_step(0.5) == doctest::Approx(std::cbrt(2.220446049250313e-16)));
  CHECK(lensing::central_difference_step(-100.0) == doctest::Approx(100 * std::cbrt(2.220446049250313e-16)));
  CHECK(lensing::central_difference_step<float>(1.0) == doctest::Approx(std::cbrt(1.1920929e-7)));
  // spread_indices: all when few, else max_checks distinct indices in range.
  CHECK(lensing::spread_indices(3, 10) == std::vector<long>{0, 1, 2});
  auto const idx = lensing::spread_indices(1000, 10);
  CHECK(idx.size() == 10);
  for (std::size_t k = 1; k < idx.size(); ++k)
    CHECK((idx[k] > idx[k - 1] && idx[k] < 1000));
}

TEST_CASE("gradient check: a LogDensity") {
  Kokkos::DefaultHostExecutionSpace const space;
  auto const good = lensing::check_log_density_gradient(space, Quadratic{}, {0.3, -0.7, 1.1});
  CHECK(good.checked == 3);
  CHECK(good.max_error < 1e-9);
  // Coordinate 1's derivative is -2 q_1 = 1.4, claimed 1.414: error 0.014 / 1.414 = 0.01 / 1.01.
  auto const bad = lensing::check_log_density_gradient(space, Quadratic{1.01}, {0.3, -0.7, 1.1});
  CHECK(bad.worst == 1);
  CHECK(bad.max_error == doctest::Approx(0.01 / 1.01).epsilon(1e-6));
  CHECK_THROWS_AS(lensing::check_log_density_gradient(space, Quadratic{}, {0.3}), std::invalid_argument);
}
