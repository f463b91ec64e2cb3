// The shared Adam rule (core/adam_rule.hpp) and learning-rate schedule against
// hand-computed steps; Adam and L-BFGS (strong-Wolfe line search) on targets with known optima:
// the Rosenbrock function (minimum at (1, ..., 1)), an ill-conditioned
// quadratic (condition number 1e4, exact minimiser b) evaluated by kernels on
// every backend in float and double; multi-start on a double well; bad inputs.

#include <lensing/core/adam_rule.hpp>
#include <lensing/core/lr_schedule.hpp>
#include <lensing/core/math.hpp>
#include <lensing/optim/adam.hpp>
#include <lensing/optim/lbfgs.hpp>
#include <lensing/optim/line_search.hpp>
#include <lensing/optim/multi_start.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace {
// log p = -f, f = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 (chained Rosenbrock).
struct Rosenbrock {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int n = 2;
  int dimension() const { return n; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& x,
                            lensing::View1D<double, memory_space> const& g) const {
    double f = 0;
    for (int i = 0; i < n; ++i)
      g(i) = 0;
    for (int i = 0; i + 1 < n; ++i) {
      double const a = x(i + 1) - x(i) * x(i), b = 1 - x(i);
      f += 100 * a * a + b * b;
      g(i) -= -400 * a * x(i) - 2 * b;  // g = -df/dx
      g(i + 1) -= 200 * a;
    }
    return -f;
  }
};

// f = (x - b)^T A (x - b) / 2 with A = diag(lambda) + u u^T, lambda_i =
// 10^(4 i / (n - 1)), u_i = 1 / sqrt(n), b_i = 1 + i / n: minimiser b, computed
// by kernels on the space the optimizer passes.
template <class Scalar, class Mem>
struct IllQuadratic {
  using scalar_type = Scalar;
  using memory_space = Mem;
  int n = 20;
  int dimension() const { return n; }
  KOKKOS_INLINE_FUNCTION static Scalar lambda(int i, int n) {
    return Scalar(lensing::math::exp(4.0 * i / (n - 1) * 2.302585092994046));  // 10^(4 i / (n - 1))
  }
  template <class Space>
  Scalar value_and_gradient(Space const& space, lensing::View1D<Scalar, Mem> const& x,
                            lensing::View1D<Scalar, Mem> const& g) const {
    int const nn = n;
    Scalar const u = Scalar(1 / std::sqrt(double(nn)));
    Scalar s = 0, quad = 0;
    Kokkos::parallel_reduce(
        "lensing::test::ill_quadratic_dot", Kokkos::RangePolicy<Space>(space, 0, nn),
        KOKKOS_LAMBDA(int i, Scalar& acc) { acc += u * (x(i) - (1 + Scalar(i) / nn)); }, s);
    Kokkos::parallel_reduce(
        "lensing::test::ill_quadratic", Kokkos::RangePolicy<Space>(space, 0, nn),
        KOKKOS_LAMBDA(int i, Scalar& acc) {
          Scalar const r = x(i) - (1 + Scalar(i) / nn);
          Scalar const ar = lambda(i, nn) * r + u * s;
          g(i) = -ar;
          acc += Scalar(0.5) * r * lambda(i, nn) * r;
        },
        quad);
    return -(quad + Scalar(0.5) * s * s);
  }
};

// log p = -(x^2 - 1)^2 + 0.3 x: maxima near x = +0.96 (global) and x = -1.04.
struct DoubleWell {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int dimension() const { return 1; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& x,
                            lensing::View1D<double, memory_space> const& g) const {
    double const a = x(0) * x(0) - 1;
    g(0) = -4 * a * x(0) + 0.3;
    return -a * a + 0.3 * x(0);
  }
};

// -x^2/2 - (x - 3)^2 ... is NaN for x_0 > 2 (maximum of the finite part at x_0 = 3).
struct NanBeyond {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  bool everywhere = false;
  int dimension() const { return 2; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& x,
                            lensing::View1D<double, memory_space> const& g) const {
    g(0) = -(x(0) - 3);
    g(1) = -x(1);
    if (everywhere || x(0) > 2) return std::nan("");
    return -0.5 * ((x(0) - 3) * (x(0) - 3) + x(1) * x(1));
  }
};
// log p = -f, f = s |x_0| + (x_1 - b)^2 / 2: a kink along x_0 = 0 (as where
// a lens centre sits exactly on a sub-pixel centre), gradient s sign(x_0)
// (sign(0) = 1) off the kink, and the minimum (0, b) at the kink.
struct Kink {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  double s = 1000, b = 100;
  int dimension() const { return 2; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& x,
                            lensing::View1D<double, memory_space> const& g) const {
    g(0) = x(0) >= 0 ? -s : s;
    g(1) = -(x(1) - b);
    return -(s * std::fabs(x(0)) + 0.5 * (x(1) - b) * (x(1) - b));
  }
};
}  // namespace

TEST_CASE("L-BFGS: a failed line search at a kink is never reported as convergence") {
  // From points near the kink, the strong-Wolfe search brackets x_0 = 0 and
  // cannot meet the curvature condition (the slope jumps from -s to +s); it
  // returns the best sufficient-decrease step, a tiny one whose change of f
  // is below value_tolerance * |f|.  That step must not count as
  // convergence: the run ends unconverged with a line-search message (the
  // steps taken before were stopped at x_1 = 0.03 .. 1e-13, far from the
  // minimum at x_1 = b, reported "converged: value_tolerance" with |grad| = s).
  auto const space = Kokkos::DefaultHostExecutionSpace();
  Kink const f;
  for (double tol : {1e-13, 0.0})
    for (double x0 : {1e-12, 1e-6, 0.3}) {
      lensing::OptimizeOptions opt;
      opt.value_tolerance = tol;
      auto const r = lensing::lbfgs(space, f, {x0, 0.0}, opt);
      CHECK_MESSAGE(!r.converged, "start " << x0 << ", value_tolerance " << tol << ": " << r.message << " at x = ("
                                           << r.x[0] << ", " << r.x[1] << "), |grad| " << std::fabs(r.gradient[0]));
      CHECK(r.message.find("line search") != std::string::npos);
    }
  // A smooth problem with the same value_tolerance still converges by it.
  lensing::OptimizeOptions opt;
  opt.value_tolerance = 1e-13;
  opt.gradient_tolerance = 0;
  auto const r = lensing::lbfgs(space, Rosenbrock{2}, {-1.2, 1.0}, opt);
  CHECK(r.converged);
  CHECK(r.message == "value_tolerance");
  CHECK(r.x[0] == doctest::Approx(1).epsilon(1e-5));
}

TEST_CASE("L-BFGS: Rosenbrock in 2 and 10 dimensions") {
  auto const space = Kokkos::DefaultHostExecutionSpace();
  for (int n : {2, 10}) {
    Rosenbrock const f{n};
    std::vector<double> x0(n, -1.2);
    x0[n - 1] = 1;
    lensing::OptimizeOptions opt;
    opt.gradient_tolerance = 1e-9;
    auto const r = lensing::lbfgs(space, f, x0, opt);
    CHECK(r.converged);
    MESSAGE("Rosenbrock n=" << n << ": " << r.iterations << " iterations, " << r.evaluations << " evaluations, "
                            << r.message);
    for (int i = 0; i < n; ++i)
      CHECK(r.x[i] == doctest::Approx(1.0).epsilon(1e-7));
    CHECK(std::fabs(r.value) < 1e-14);
    CHECK(r.iterations < 200);
  }
}

TEST_CASE("strong-Wolfe line search on a 1-d function: both conditions hold") {
  // phi(a) = (a - 3)^2 + sin(4a): phi'(0) = -6 + 4 < 0.
  lensing::LineSearchOptions ls;
  ls.c2 = 0.1;
  auto phi = [](double a) {
    return lensing::LineSearchPoint{a, (a - 3) * (a - 3) + std::sin(4 * a), 2 * (a - 3) + 4 * std::cos(4 * a)};
  };
  auto const p0 = phi(0.0);
  for (double a1 : {1e-3, 0.5, 1.0, 10.0}) {
    auto const res = lensing::strong_wolfe_search(phi, p0, a1, ls);
    CHECK(res.second);
    CHECK(res.first.phi <= p0.phi + ls.c1 * res.first.alpha * p0.dphi);
    CHECK(std::fabs(res.first.dphi) <= ls.c2 * std::fabs(p0.dphi));
  }
}

// The one Adam rule (core/adam_rule.hpp), one step t = 2 in a kernel on every
// backend, against values worked out by hand (exact decimals, 30 digits):
// θ = 2, g = 0.3, m = 0.1, v = 0.04, η = 0.05, β₁ = 0.5, β₂ = 0.75, ε = 0.1,
// λ = 0.5; 1 − β₁² = 0.75, 1 − β₂² = 0.4375.
//   L2 (coupled):  g' = 0.3 + 0.5·2 = 1.3, m = 0.05 + 0.65 = 0.7,
//                  v = 0.03 + 0.25·1.69 = 0.4525, m̂ = 0.93333…, v̂ = 1.0342857…,
//                  θ = 2 − 0.05 m̂ / (√v̂ + 0.1) = 1.9582213660199335.
//   decoupled:     θ' = 2 (1 − 0.05·0.5) = 1.95, m = 0.2, v = 0.0525, m̂ = 0.26667,
//                  v̂ = 0.12, θ = 1.95 − 0.05 m̂ / (√0.12 + 0.1) = 1.9201321016346939.
// A large ε tells the placements apart: ε inside the root, √(v̂ + ε), would
// give 1.9561827 and 1.9215732; no bias correction would give other values again.
LENSING_TEST_CASE_TEMPLATE("Adam rule: one step against hand-computed values", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using Scalar = typename Config::scalar;
  // ~10 rounded operations of unit roundoff u, no cancellation (the step is 2% of θ): ~10 u.
  double const tol = std::is_same<Scalar, float>::value ? 2e-6 : 1e-14;
  lensing::View1D<Scalar, Mem> th("theta", 2), g("g", 2), m("m", 2), v("v", 2);
  lensing::test::set_values(th, {2.0, 2.0});
  lensing::test::set_values(g, {0.3, 0.3});
  lensing::test::set_values(m, {0.1, 0.1});
  lensing::test::set_values(v, {0.04, 0.04});
  using Rule = lensing::AdamRule<Scalar>;
  Rule const l2 = Rule::at_step(2, 0.05, 0.5, 0.75, 0.1, 0.5, false);
  Rule const dec = Rule::at_step(2, 0.05, 0.5, 0.75, 0.1, 0.5, true);
  Kokkos::parallel_for(
      "test_adam_rule", Kokkos::RangePolicy<Space>(Space(), 0, 2),
      KOKKOS_LAMBDA(int i) { (i == 0 ? l2 : dec).update(th(i), g(i), m(i), v(i)); });
  Space().fence();
  auto const t = lensing::test::host_values(th), mv = lensing::test::host_values(m), vv = lensing::test::host_values(v);
  CHECK(t[0] == doctest::Approx(1.9582213660199335).epsilon(tol));
  CHECK(t[1] == doctest::Approx(1.9201321016346939).epsilon(tol));
  CHECK(mv[0] == doctest::Approx(0.7).epsilon(tol));
  CHECK(vv[0] == doctest::Approx(0.4525).epsilon(tol));
  CHECK(mv[1] == doctest::Approx(0.2).epsilon(tol));
  CHECK(vv[1] == doctest::Approx(0.0525).epsilon(tol));
}

// AdamState (the host loop over the same rule) with the inverse-time schedule,
// decay_steps = 1 (η_t = 0.1 / (1 + t)), β = (0.9, 0.999), ε = 1e-8, x = 1:
//   t = 1, g = 0.5:   m = 0.05, v = 2.5e-4, m̂/√v̂ = 0.5/(0.5 + 1e-8), x = 1 − 0.05·that = 0.950000001;
//   t = 2, g = −0.25: m = 0.02, v = 3.1225e-4, m̂ = 0.02/0.19, v̂ = 3.1225e-4/0.001999,
//                     x = 0.950000001 − (0.1/3) m̂/(√v̂ + 1e-8) = 0.94112209990261538.
TEST_CASE("Adam rule: AdamState steps with the inverse-time schedule") {
  lensing::AdamOptions a;
  a.learning_rate = 0.1;
  a.decay_steps = 1;
  lensing::AdamState s(1, a);
  double x = 1;
  double const g1 = 0.5, g2 = -0.25;
  s.step(&x, &g1);
  CHECK(x == doctest::Approx(0.95000000099999998).epsilon(1e-15));
  s.step(&x, &g2);
  CHECK(x == doctest::Approx(0.94112209990261538).epsilon(1e-14));  // a few roundings of 1.1e-16
  CHECK(s.steps() == 2);
  // The schedule on its own, and its argument checks.
  CHECK(lensing::LRSchedule::inverse_time(0.1, 4).lr(2) == doctest::Approx(0.1 / 1.5).epsilon(1e-15));
  CHECK(lensing::LRSchedule::inverse_time(0.1, 4).lr(0) == 0.1);
  CHECK_THROWS_AS(lensing::LRSchedule::inverse_time(0.1, 0), std::invalid_argument);
  CHECK_THROWS_AS(lensing::LRSchedule::inverse_time(-0.1, 4), std::invalid_argument);
  lensing::AdamOptions bad;
  bad.epsilon = 0;
  CHECK_THROWS_AS(lensing::AdamState(1, bad), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("L-BFGS and Adam: ill-conditioned quadratic, exact minimiser", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using Scalar = typename Config::scalar;
  IllQuadratic<Scalar, Mem> const q{};
  int const n = q.n;
  bool const is_float = std::is_same<Scalar, float>::value;
  lensing::OptimizeOptions opt;
  // Gradient noise of the Scalar evaluation: ~ eps * |A| |x| ~ eps * 1e4 * 2.
  opt.gradient_tolerance = is_float ? 5e-2 : 1e-9;
  opt.max_iterations = 2000;
  std::vector<double> x0(n, 0.0);
  auto const r = lensing::lbfgs(Space(), q, x0, opt);
  MESSAGE(sizeof(Scalar) << "-byte scalar: L-BFGS " << r.iterations << " iterations, " << r.message);
  // |x - b| <= |grad| / lambda_min = tol / 1 (the smallest eigenvalue of A is >= 1).
  double const xtol = is_float ? 5e-2 : 1e-8;
  int bad = 0;
  for (int i = 0; i < n; ++i)
    bad += std::fabs(r.x[i] - (1 + double(i) / n)) <= xtol ? 0 : 1;
  CHECK(bad == 0);
  if (!is_float) CHECK(r.converged);
  // Adam (per-coordinate step ~ learning rate) on the same problem; decaying learning rate.
  lensing::AdamOptions a;
  a.learning_rate = 0.05;
  a.decay_steps = 2000;
  lensing::OptimizeOptions ao;
  ao.max_iterations = 20000;
  ao.gradient_tolerance = is_float ? 5e-2 : 1e-6;
  auto const ra = lensing::adam(Space(), q, x0, ao, a);
  MESSAGE("Adam: " << ra.iterations << " iterations, " << ra.message);
  CHECK(ra.converged);
  bad = 0;
  for (int i = 0; i < n; ++i)
    bad += std::fabs(ra.x[i] - (1 + double(i) / n)) <= (is_float ? 5e-2 : 1e-6) ? 0 : 1;
  CHECK(bad == 0);
}

TEST_CASE("Adam: Rosenbrock converges to (1, 1)") {
  Rosenbrock const f{2};
  lensing::AdamOptions a;
  a.learning_rate = 0.02;
  a.decay_steps = 5000;
  lensing::OptimizeOptions opt;
  opt.max_iterations = 50000;
  opt.gradient_tolerance = 1e-5;
  auto const r = lensing::adam(Kokkos::DefaultHostExecutionSpace(), f, {-1.2, 1.0}, opt, a);
  MESSAGE("Adam Rosenbrock: " << r.iterations << " iterations, " << r.message);
  CHECK(r.converged);
  // |grad f| <= 1e-5 with Hessian eigenvalues >= 0.4 at (1, 1): |x - 1| <~ 1e-5 / 0.4.
  CHECK(std::fabs(r.x[0] - 1) < 1e-4);
  CHECK(std::fabs(r.x[1] - 1) < 1e-4);
}

TEST_CASE("multi-start: finds the global maximum of a double well") {
  DoubleWell const f;
  auto const space = Kokkos::DefaultHostExecutionSpace();
  auto const ms = lensing::multi_start({0.0}, 2.0, 12, 11,
                                       [&](std::vector<double> const& x0) { return lensing::lbfgs(space, f, x0); });
  CHECK(ms.runs.size() == 12u);
  int left = 0, right = 0;
  for (auto const& r : ms.runs) {
    CHECK(r.converged);
    (r.x[0] < 0 ? left : right) += 1;
  }
  CHECK(left > 0);  // some starts end in the lower mode, the best does not
  CHECK(right > 0);
  // Global maximum: 4x^3 - 4x = 0.3 -> root near 1 (Newton on the cubic).
  double x = 1;
  for (int k = 0; k < 50; ++k)
    x -= (4 * x * x * x - 4 * x - 0.3) / (12 * x * x - 4);
  CHECK(ms.best_run().x[0] == doctest::Approx(x).epsilon(1e-8));
}

TEST_CASE("optimizers: bad inputs give clear errors, NaN regions stop without hanging") {
  auto const space = Kokkos::DefaultHostExecutionSpace();
  NanBeyond f;
  // The maximum of the finite part (x0 = 3) lies in the NaN region: L-BFGS
  // shortens steps and stops at the boundary x0 <= 2.
  auto const r = lensing::lbfgs(space, f, {0.0, 1.0});
  CHECK(r.x[0] <= 2);
  CHECK(r.x[0] > 1.9);
  CHECK(std::isfinite(r.value));
  CHECK(!r.converged);
  lensing::AdamOptions big;
  big.learning_rate = 3;  // first step lands at x0 = 3: NaN, reported
  auto const ra = lensing::adam(space, f, {0.0, 1.0}, {}, big);
  CHECK(!ra.converged);
  CHECK(ra.message.find("non-finite") != std::string::npos);
  CHECK(ra.x[0] == 0.0);                                                         // the best finite point is kept
  CHECK_THROWS_AS(lensing::lbfgs(space, f, {3.0, 0.0}), std::invalid_argument);  // NaN at x0
  CHECK_THROWS_AS(lensing::lbfgs(space, f, {0.0}), std::invalid_argument);       // wrong length
  CHECK_THROWS_AS(lensing::adam(space, f, {std::nan(""), 0.0}), std::invalid_argument);
  Rosenbrock zero{0};
  CHECK_THROWS_AS(lensing::lbfgs(space, zero, {}), std::invalid_argument);
  lensing::OptimizeOptions bad;
  bad.max_iterations = 0;
  CHECK_THROWS_AS(lensing::lbfgs(space, Rosenbrock{}, {0.0, 0.0}, bad), std::invalid_argument);
  lensing::AdamOptions badadam;
  badadam.beta1 = 1;
  CHECK_THROWS_AS(lensing::adam(space, Rosenbrock{}, {0.0, 0.0}, {}, badadam), std::invalid_argument);
  f.everywhere = true;
  CHECK_THROWS_AS(lensing::multi_start({0.0, 0.0}, 1.0, 3, 1,
                                       [&](std::vector<double> const& x0) { return lensing::lbfgs(space, f, x0); }),
                  std::runtime_error);
  CHECK_THROWS_AS(lensing::multi_start({0.0}, -1.0, 3, 1,
                                       [&](std::vector<double> const& x0) { return lensing::lbfgs(space, f, x0); }),
                  std::invalid_argument);
}
