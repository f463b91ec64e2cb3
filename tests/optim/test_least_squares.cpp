// Levenberg-Marquardt: an exponential-decay curve fit with known parameters
// (dense Jacobian and Jacobian-vector products), Rosenbrock as least squares,
// a noisy linear fit against the closed-form normal-equation solution, bad inputs.

#include <lensing/core/random.hpp>
#include <lensing/optim/levenberg_marquardt.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <vector>

namespace {
// y(t) = a exp(-b t) + c at t_i = i / 10, i < 40; data from (a, b, c) = (2.5, 1.3, 0.5).
struct DecayFit {
  std::vector<double> t, y;
  DecayFit() {
    for (int i = 0; i < 40; ++i) {
      t.push_back(0.1 * i);
      y.push_back(2.5 * std::exp(-1.3 * t.back()) + 0.5);
    }
  }
  int num_residuals() const { return int(t.size()); }
  int num_parameters() const { return 3; }
  void residuals(double const* p, double* r) const {
    for (std::size_t i = 0; i < t.size(); ++i)
      r[i] = p[0] * std::exp(-p[1] * t[i]) + p[2] - y[i];
  }
  void jacobian(double const* p, double* J) const {
    for (std::size_t i = 0; i < t.size(); ++i) {
      double const e = std::exp(-p[1] * t[i]);
      J[3 * i] = e;
      J[3 * i + 1] = -p[0] * t[i] * e;
      J[3 * i + 2] = 1;
    }
  }
};
// The same with Jacobian-vector products only.
struct DecayFitJvp {
  DecayFit f;
  int num_residuals() const { return f.num_residuals(); }
  int num_parameters() const { return 3; }
  void residuals(double const* p, double* r) const { f.residuals(p, r); }
  void jvp(double const* p, double const* v, double* Jv) const {
    for (std::size_t i = 0; i < f.t.size(); ++i) {
      double const e = std::exp(-p[1] * f.t[i]);
      Jv[i] = e * v[0] - p[0] * f.t[i] * e * v[1] + v[2];
    }
  }
};
// r = (10 (x2 - x1^2), 1 - x1): minimum 0 at (1, 1).
struct RosenbrockLs {
  int num_residuals() const { return 2; }
  int num_parameters() const { return 2; }
  void residuals(double const* x, double* r) const {
    r[0] = 10 * (x[1] - x[0] * x[0]);
    r[1] = 1 - x[0];
  }
  void jacobian(double const* x, double* J) const {
    J[0] = -20 * x[0];
    J[1] = 10;
    J[2] = -1;
    J[3] = 0;
  }
};
// Straight line through noisy points: the least-squares solution is closed form.
struct LineFit {
  std::vector<double> t, y;
  int num_residuals() const { return int(t.size()); }
  int num_parameters() const { return 2; }
  void residuals(double const* p, double* r) const {
    for (std::size_t i = 0; i < t.size(); ++i)
      r[i] = p[0] + p[1] * t[i] - y[i];
  }
  void jacobian(double const*, double* J) const {
    for (std::size_t i = 0; i < t.size(); ++i) {
      J[2 * i] = 1;
      J[2 * i + 1] = t[i];
    }
  }
};
struct Broken {
  int m = 2;
  int num_residuals() const { return m; }
  int num_parameters() const { return 1; }
  void residuals(double const* x, double* r) const {
    r[0] = x[0] > 5 ? std::nan("") : x[0] - 10;  // minimum at 10 lies in the NaN region
    if (m > 1) r[1] = 0;
  }
  void jacobian(double const*, double* J) const {
    J[0] = 1;
    if (m > 1) J[1] = 0;
  }
};
}  // namespace

TEST_CASE("Levenberg-Marquardt: exponential decay fit recovers the parameters (dense J and JVPs)") {
  lensing::OptimizeOptions opt;
  opt.gradient_tolerance = 1e-12;
  auto const r = lensing::levenberg_marquardt(DecayFit{}, {1.0, 0.2, 0.0}, opt);
  CHECK(r.converged);
  MESSAGE("decay fit: " << r.iterations << " iterations, " << r.evaluations << " residual evaluations");
  CHECK(r.x[0] == doctest::Approx(2.5).epsilon(1e-9));
  CHECK(r.x[1] == doctest::Approx(1.3).epsilon(1e-9));
  CHECK(r.x[2] == doctest::Approx(0.5).epsilon(1e-9));
  CHECK(r.value < 1e-20);
  auto const rj = lensing::levenberg_marquardt(DecayFitJvp{}, {1.0, 0.2, 0.0}, opt);
  CHECK(rj.converged);
  for (int k = 0; k < 3; ++k)
    CHECK(rj.x[k] == doctest::Approx(r.x[k]).epsilon(1e-12));
  static_assert(lensing::is_least_squares_problem_v<DecayFitJvp>, "JVP problem models the archetype");
  static_assert(!lensing::is_least_squares_problem_v<int>, "int does not");
}

TEST_CASE("Levenberg-Marquardt: Rosenbrock and a noisy line (normal equations)") {
  auto const r = lensing::levenberg_marquardt(RosenbrockLs{}, {-1.2, 1.0});
  CHECK(r.converged);
  CHECK(r.x[0] == doctest::Approx(1.0).epsilon(1e-9));
  CHECK(r.x[1] == doctest::Approx(1.0).epsilon(1e-9));
  LineFit f;
  lensing::Rng rng(3);
  for (int i = 0; i < 50; ++i) {
    f.t.push_back(0.2 * i);
    f.y.push_back(1 - 0.7 * f.t.back() + 0.3 * rng.normal());
  }
  double st = 0, sy = 0, stt = 0, sty = 0;
  double const n = 50;
  for (int i = 0; i < 50; ++i) {
    st += f.t[i], sy += f.y[i], stt += f.t[i] * f.t[i], sty += f.t[i] * f.y[i];
  }
  double const slope = (n * sty - st * sy) / (n * stt - st * st), icpt = (sy - slope * st) / n;
  lensing::OptimizeOptions opt;
  opt.gradient_tolerance = 1e-10;
  auto const rl = lensing::levenberg_marquardt(f, {0.0, 0.0}, opt);
  CHECK(rl.converged);
  CHECK(rl.x[0] == doctest::Approx(icpt).epsilon(1e-9));
  CHECK(rl.x[1] == doctest::Approx(slope).epsilon(1e-9));
}

TEST_CASE("Levenberg-Marquardt: bad inputs and NaN regions") {
  // The minimum lies in the NaN region: steps into it are rejected, the run
  // stops (damping diverges or iterations run out) at a finite point <= 5.
  lensing::OptimizeOptions opt;
  opt.max_iterations = 500;
  auto const r = lensing::levenberg_marquardt(Broken{}, {0.0}, opt);
  CHECK(!r.converged);
  CHECK(r.x[0] <= 5);
  CHECK(r.x[0] > 4.9);
  CHECK_THROWS_AS(lensing::levenberg_marquardt(Broken{}, {6.0}), std::invalid_argument);
  CHECK_THROWS_AS(lensing::levenberg_marquardt(Broken{}, {0.0, 1.0}), std::invalid_argument);
  CHECK_THROWS_AS(lensing::levenberg_marquardt(Broken{0}, {0.0}), std::invalid_argument);
  CHECK_THROWS_AS(lensing::levenberg_marquardt(Broken{}, {std::nan("")}), std::invalid_argument);
  lensing::OptimizeOptions bad;
  bad.gradient_tolerance = -1;
  CHECK_THROWS_AS(lensing::levenberg_marquardt(Broken{}, {0.0}, bad), std::invalid_argument);
}
