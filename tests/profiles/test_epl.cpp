#include <lensing/profiles/epl.hpp>
#include <lensing/profiles/sie.hpp>

#include "profile_checks.hpp"

#include <complex>

using lensing::EPL;
namespace lt = lensing::test;

namespace {

// Parameter sets (theta_E, gamma, e1, e2, center_x, center_y): moderate,
// gamma near and at 2, the ends of the accurate range, q = 0.25 (|e| = 0.6)
// and near-round (|e| ~ 1e-4).
std::vector<std::vector<double>> const epl_params = {
    {1.1, 1.7, 0.15, -0.2, 0.05, -0.1},  {0.8, 2.0, -0.3, 0.1, 0.05, -0.1},  {0.8, 1.9999, -0.3, 0.1, 0.05, -0.1},
    {1.3, 1.3, 0.05, 0.35, 0.05, -0.1},  {1.0, 2.7, 0.2, 0.1, 0.05, -0.1},   {0.9, 2.3, 0.36, -0.48, 0.05, -0.1},
    {1.2, 1.3, -0.36, 0.48, 0.05, -0.1}, {1.0, 2.7, 0.48, 0.36, 0.05, -0.1}, {1.1, 1.8, 1e-4, -5e-5, 0.05, -0.1},
    {1.1, 2.6, -8e-5, 6e-5, 0.05, -0.1},
};

// Independent reference for the deflection: the series summed in long double
// until the terms are below 1e-22 (host).
std::complex<long double> epl_alpha_reference(double theta_E, double gamma, double q, double x, double y) {
  using LD = long double;
  LD const t = gamma - 1, b = theta_E * std::sqrt(LD(q)), f = (1 - LD(q)) / (1 + LD(q));
  LD const R = std::hypot(LD(q) * x, LD(y));
  std::complex<LD> const u(LD(q) * x / R, y / R), z = -f * u * u;
  std::complex<LD> om = u, F = u;
  for (int n = 1; n < 100000 && std::abs(om) > 1e-22L; ++n) {
    om *= z * ((2 * n - 2 + t) / (2 * n + 2 - t));
    F += om;
  }
  return LD(2) * b / (1 + LD(q)) * std::pow(b / R, t - 1) * F;
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("EPL matches lenstronomy", Config, lt::AllConfigs) {
  lt::check_reference<EPL, Config>("EPL");
}

LENSING_TEST_CASE_TEMPLATE("EPL VJPs match finite differences", Config, lt::AllConfigs) {
  std::vector<double> xs, ys;
  lt::spiral_points(0.05, -0.1, 20, xs, ys);
  bool const is_float = std::is_same<typename Config::scalar, float>::value;
  for (auto const& theta : epl_params) {
    CAPTURE(theta[1]);
    CAPTURE(theta[2]);
    CAPTURE(theta[3]);
    // In float the (e1, e2) gradients lose ~1e-7/|e| relative near round:
    // EllipticalProfile's phi-derivative is a cancelling difference of O(|alpha|)
    // terms down to O(|e| |alpha|), then divided by |e|^2.  Checked near round
    // in double only; float gets |e| = 1e-2 below.
    if (is_float && std::hypot(theta[2], theta[3]) < 1e-3) continue;
    lt::check_vjps<EPL, Config>(theta, xs, ys);
  }
  if (is_float) lt::check_vjps<EPL, Config>({1.1, 2.6, -8e-3, 6e-3, 0.05, -0.1}, xs, ys);
  // Near gamma = 1 (the uniform-sheet limit; central differences need gamma >= 1) and near 3.
  lt::check_vjps<EPL, Config>({1.1, 1.05, 0.2, -0.1, 0.05, -0.1}, xs, ys);
  lt::check_vjps<EPL, Config>({1.1, 2.95, 0.2, -0.1, 0.05, -0.1}, xs, ys);
  lt::check_vjps<EPL, Config>({1.1, 2.3, 0.0, 0.0, 0.05, -0.1}, xs, ys);  // e = 0 exactly
}

TEST_CASE("EPL identities and packing") {
  std::vector<double> xs, ys;
  lt::spiral_points(0.05, -0.1, 24, xs, ys);
  double const h = 2e-6;  // small: the steep profiles (gamma = 2.8) are checked down to r = 0.02
  for (auto const& theta : epl_params) {
    CAPTURE(theta[1]);
    CAPTURE(theta[2]);
    lt::check_packing<EPL>(theta);
    lt::check_identities<EPL>(theta, xs, ys, 1e-7, h);
  }
  lt::check_identities<EPL>({1.0, 2.2, 0.0, 0.0, 0.05, -0.1}, xs, ys, 1e-7, h);
  lt::check_identities<EPL>({1.0, 1.0, 0.3, 0.2, 0.05, -0.1}, xs, ys, 1e-7, h);
  // q = 0.2 (|e| = 2/3).
  lt::check_identities<EPL>({1.0, 2.8, 0.4, -0.5333333333333333, 0.05, -0.1}, xs, ys, 1e-7, h);
  lt::check_identities<EPL>({1.0, 1.2, 0.4, -0.5333333333333333, 0.05, -0.1}, xs, ys, 1e-7, h);
}

TEST_CASE("EPL deflection: series truncation within 1e-12 of a long-double sum, q >= 0.2") {
  for (double q : {1.0, 0.95, 0.7, 0.5, 0.3, 0.2}) {
    for (double gamma : {1.0, 1.2, 1.6, 2.0, 2.4, 2.8, 2.99}) {
      double const c = (1 - q) / (1 + q);
      EPL<double> const p{1.2, gamma, c, 0.0, 0.0, 0.0};  // phi = 0: sky = major-axis frame
      EPL<float> const pf{1.2f, float(gamma), float(c), 0.0f, 0.0f, 0.0f};
      double worst = 0, worst_f = 0;
      for (int i = 0; i < 90; ++i) {
        double const r = 0.05 + 0.04 * i, th = 0.0174533 * i + 1e-3;  // angles 0..90 deg
        double const x = r * std::cos(th), y = r * std::sin(th);
        auto const ref = epl_alpha_reference(1.2, gamma, q, x, y);
        auto const a = p.deflection(x, y);
        auto const af = pf.deflection(float(x), float(y));
        double const n = double(std::abs(ref));
        worst = std::max(worst, std::hypot(a.x - double(ref.real()), a.y - double(ref.imag())) / n);
        worst_f = std::max(worst_f, std::hypot(af.x - double(ref.real()), af.y - double(ref.imag())) / n);
      }
      CHECK_MESSAGE(worst < 1e-12, "q = ", q, " gamma = ", gamma, ": |dalpha|/|alpha| = ", worst);
      CHECK_MESSAGE(worst_f < 2e-6, "float: q = ", q, " gamma = ", gamma, ": |dalpha|/|alpha| = ", worst_f);
    }
  }
}

TEST_CASE("EPL batched deflection (host maps): within 1e-12 of a long-double sum, per-point path within 1e-14") {
  // deflection_batch sums the same terms as deflection() in another order
  // (Horner's rule on the coefficients) and takes (b/R)^(t-1) as
  // exp((t-1) log(b/R)): a few ulp of |alpha| from the per-point path, and
  // the truncation bound 2e-14 from the exact series.  Points: radii 1e-9
  // (near the cusp radius) to 1e4, every angle; the centre and a point
  // inside the cusp radius take the per-point path inside the batch; m = 64
  // (whole SIMD groups) and m = 37 (padded).
  constexpr int cap = lensing::deflection_batch_capacity;
  double x[cap], y[cap], ax[cap], ay[cap];
  for (double q : {1.0, 0.95, 0.8, 0.5, 0.2}) {
    for (double gamma : {1.0, 1.3, 2.0, 2.1, 2.8, 2.99}) {
      lensing::detail::EPLKernel<double> const k(1.2, gamma, q);
      for (int m : {cap, 37}) {
        for (int i = 0; i < m; ++i) {
          double const r = std::pow(10.0, -9.0 + 13.0 * i / (m - 1)), th = 0.7 + 2.3 * i;
          x[i] = r * std::cos(th);
          y[i] = r * std::sin(th);
        }
        x[5] = y[5] = 0.0;  // centre
        x[9] = 1e-17;       // inside the cusp radius
        y[9] = -2e-17;
        k.deflection_batch(m, x, y, ax, ay);
        double worst_ref = 0, worst_point = 0;
        for (int i = 0; i < m; ++i) {
          auto const p = k.deflection(x[i], y[i]);
          double const na = std::hypot(p.x, p.y);
          worst_point = std::max(worst_point, std::hypot(ax[i] - p.x, ay[i] - p.y) / std::max(na, 1e-300));
          if (i == 5 || i == 9) continue;  // the reference has no cusp convention
          auto const ref = epl_alpha_reference(1.2, gamma, q, x[i], y[i]);
          double const n = double(std::abs(ref));
          worst_ref = std::max(worst_ref, std::hypot(ax[i] - double(ref.real()), ay[i] - double(ref.imag())) / n);
        }
        CHECK_MESSAGE(worst_ref < 1e-12, "q = ", q, " gamma = ", gamma, " m = ", m, ": ", worst_ref);
        CHECK_MESSAGE(worst_point < 1e-14, "q = ", q, " gamma = ", gamma, " m = ", m, ": ", worst_point);
        CHECK(ax[5] == 0.0);
        CHECK(ay[5] == 0.0);
      }
    }
  }
}

TEST_CASE("EPL(gamma = 2) is the SIE") {
  for (auto const& e : std::vector<std::pair<double, double>>{{0.3, -0.2}, {0.36, -0.48}, {-0.05, 0.01}, {1e-5, 0}}) {
    EPL<double> const epl{1.1, 2.0, e.first, e.second, 0.2, 0.1};
    lensing::SIE<double> const sie{1.1, e.first, e.second, 0.2, 0.1};
    std::vector<double> xs, ys;
    lt::spiral_points(0.2, 0.1, 40, xs, ys);
    for (size_t i = 0; i < xs.size(); ++i) {
      double const x = xs[i], y = ys[i];
      auto const a = epl.deflection(x, y), b = sie.deflection(x, y);
      double const na = std::hypot(b.x, b.y);
      CHECK(std::hypot(a.x - b.x, a.y - b.y) <= 1e-12 * na);
      CHECK(epl.potential(x, y) == doctest::Approx(sie.potential(x, y)).epsilon(1e-12));
      CHECK(epl.convergence(x, y) == doctest::Approx(sie.convergence(x, y)).epsilon(1e-13));
      auto const h = epl.hessian(x, y), hs = sie.hessian(x, y);
      double const nh = std::fabs(hs.xx) + std::fabs(hs.xy) + std::fabs(hs.yy);
      CHECK(std::fabs(h.xx - hs.xx) <= 1e-12 * nh);
      CHECK(std::fabs(h.xy - hs.xy) <= 1e-12 * nh);
      CHECK(std::fabs(h.yy - hs.yy) <= 1e-12 * nh);
      // The shared parameters' gradients agree too (theta_E, e1, e2, centre).
      double ge[6] = {0, 0, 0, 0, 0, 0}, gs[5] = {0, 0, 0, 0, 0};
      epl.deflection_vjp(x, y, {0.7, -1.3}, ge);
      sie.deflection_vjp(x, y, {0.7, -1.3}, gs);
      // Near round, EllipticalProfile's (q, phi) -> (e1, e2) chain amplifies the
      // ~1e-14 difference of the two deflections by 1/|e|.
      double const amplify = std::max(1.0, 1e-2 / std::hypot(e.first, e.second));
      double const scale = amplify * (std::fabs(gs[0]) + std::fabs(gs[1]) + std::fabs(gs[2]) + 1e-3);
      CHECK(std::fabs(ge[0] - gs[0]) <= 1e-11 * scale);
      CHECK(std::fabs(ge[2] - gs[1]) <= 1e-11 * scale);
      CHECK(std::fabs(ge[3] - gs[2]) <= 1e-11 * scale);
      CHECK(std::fabs(ge[4] - gs[3]) <= 1e-11 * scale);
      CHECK(std::fabs(ge[5] - gs[4]) <= 1e-11 * scale);
    }
  }
}

TEST_CASE("EPL(q -> 1) is the spherical power law") {
  // kappa = (3 - gamma)/2 (theta_E/r)^(gamma - 1) gives
  //   alpha = theta_E (r/theta_E)^(2 - gamma) (x, y)/r = theta_E^t r^-t (x, y),  t = gamma - 1,
  //   psi = theta_E^t r^(2 - t)/(2 - t),
  //   H = theta_E^t r^-t (I - t (x, y)(x, y)^T / r^2).
  double const thE = 1.3, cx = 0.2, cy = -0.1;
  for (double gamma : {1.0, 1.3, 1.75, 2.0, 2.5, 2.9}) {
    double const t = gamma - 1;
    EPL<double> const round{thE, gamma, 0.0, 0.0, cx, cy};
    EPL<double> const nearly{thE, gamma, 1e-9, -1e-9, cx, cy};
    std::vector<double> xs, ys;
    lt::spiral_points(cx, cy, 30, xs, ys);
    for (size_t i = 0; i < xs.size(); ++i) {
      double const dx = xs[i] - cx, dy = ys[i] - cy, r = std::hypot(dx, dy);
      double const s = std::pow(thE, t) * std::pow(r, -t);
      auto const a = round.deflection(xs[i], ys[i]), an = nearly.deflection(xs[i], ys[i]);
      CHECK(a.x == doctest::Approx(s * dx).epsilon(1e-13));
      CHECK(a.y == doctest::Approx(s * dy).epsilon(1e-13));
      CHECK(an.x == doctest::Approx(s * dx).epsilon(1e-8));
      CHECK(an.y == doctest::Approx(s * dy).epsilon(1e-8));
      CHECK(round.potential(xs[i], ys[i]) == doctest::Approx(s * r * r / (2 - t)).epsilon(1e-13));
      CHECK(round.convergence(xs[i], ys[i]) == doctest::Approx(0.5 * (2 - t) * s).epsilon(1e-13));
      auto const h = round.hessian(xs[i], ys[i]);
      CHECK(h.xx == doctest::Approx(s * (1 - t * dx * dx / (r * r))).scale(s).epsilon(1e-13));
      CHECK(h.xy == doctest::Approx(-s * t * dx * dy / (r * r)).scale(s).epsilon(1e-13));
      CHECK(h.yy == doctest::Approx(s * (1 - t * dy * dy / (r * r))).scale(s).epsilon(1e-13));
    }
  }
  // kappa along the major axis of an elliptical model: (3 - gamma)/2 (theta_E/(sqrt(q) r))^(gamma - 1).
  auto const qp = lensing::ellipticity_to_q_phi(0.3, -0.2);
  EPL<double> const p{1.1, 2.3, 0.3, -0.2, 0.2, 0.1};
  double const r = 0.8, x = 0.2 + r * std::cos(qp.phi), y = 0.1 + r * std::sin(qp.phi);
  CHECK(p.convergence(x, y) == doctest::Approx(0.35 * std::pow(1.1 / (std::sqrt(qp.q) * r), 1.3)).epsilon(1e-13));
}

LENSING_TEST_CASE_TEMPLATE("EPL is finite at the centre, at gamma = 2 and q = 1", Config, lt::AllConfigs) {
  std::vector<double> const xs = {0.05, 0.05 + 1e-13, 0.05, 1e3, 0.3, 0.05 + 1e-9, 0.05, -2e4};
  std::vector<double> const ys = {-0.1, -0.1, -0.1 - 1e-30, 1e3, 0.0, -0.1, -0.1 + 1e-7, 3e4};
  for (double gamma : {1.0, 1.2, 1.5, 2.0, 2.5, 2.8, 2.99}) {
    CAPTURE(gamma);
    lt::check_finite<EPL, Config>({1.2, gamma, 0.15, -0.1, 0.05, -0.1}, xs, ys);
    lt::check_finite<EPL, Config>({1.2, gamma, 0.0, 0.0, 0.05, -0.1}, xs, ys);
    lt::check_finite<EPL, Config>({1.2, gamma, 0.5, 0.6, 0.05, -0.1}, xs, ys);   // q ~ 0.12
    lt::check_finite<EPL, Config>({1.2, gamma, 0.99, 0.0, 0.05, -0.1}, xs, ys);  // q ~ 0.005
  }
}

TEST_CASE("EPL at the centre: lenstronomy's conventions") {
  EPL<double> const p{1.2, 2.3, 0.15, -0.1, 0.05, -0.1};
  auto const a = p.deflection(0.05, -0.1);
  CHECK(a.x == 0.0);
  CHECK(a.y == 0.0);
  CHECK(p.potential(0.05, -0.1) == 0.0);
  auto const h = p.hessian(0.05, -0.1);
  CHECK(h.xy == 0.0);
  CHECK(h.xx == doctest::Approx(h.yy).epsilon(1e-13));  // equal up to FMA contraction
  CHECK(h.xx == doctest::Approx(p.convergence(0.05, -0.1)));
  CHECK(h.xx > 1e15);
  // The shape gradients vanish; the centre's are -H g (EllipticalProfile), finite.
  double g[6] = {0, 0, 0, 0, 0, 0};
  p.deflection_vjp(0.05, -0.1, {1.0, 1.0}, g);
  p.potential_vjp(0.05, -0.1, 1.0, g);
  p.convergence_vjp(0.05, -0.1, 1.0, g);
  for (int k = 0; k < 4; ++k)
    CHECK(g[k] == 0.0);
  CHECK(g[4] == doctest::Approx(-h.xx));
  CHECK(g[5] == doctest::Approx(-h.yy));
}

TEST_CASE("EPL rejects bad parameters") {
  CHECK_THROWS_WITH_AS(EPL<double>({0.0, 2.0, 0.1, 0.1, 0.0, 0.0}).check(),
                       "lensing::EPL: theta_E must be finite and > 0 (got 0)", std::invalid_argument);
  CHECK_THROWS_WITH_AS(EPL<double>({1.0, 3.0, 0.1, 0.1, 0.0, 0.0}).check(),
                       "lensing::EPL: gamma must be in [1, 3) (got 3)", std::invalid_argument);
  CHECK_THROWS_WITH_AS(EPL<double>({1.0, 0.9, 0.1, 0.1, 0.0, 0.0}).check(),
                       "lensing::EPL: gamma must be in [1, 3) (got 0.90000000000000002)", std::invalid_argument);
  CHECK_THROWS_WITH_AS(EPL<double>({1.0, std::nan(""), 0.1, 0.1, 0.0, 0.0}).check(),
                       "lensing::EPL: gamma must be finite (got nan)", std::invalid_argument);
  CHECK_THROWS_WITH_AS(EPL<double>({1.0, 2.0, 0.8, 0.7, 0.0, 0.0}).check(),
                       "lensing::EPL: |e| = sqrt(e1^2 + e2^2) must be < 1", std::invalid_argument);
  CHECK_THROWS_AS(EPL<float>({1.0f, 2.0f, 0.1f, 0.1f, INFINITY, 0.0f}).check(), std::invalid_argument);
  CHECK_NOTHROW(EPL<double>({1.0, 1.0, 0.1, 0.1, 0.0, 0.0}).check());
  CHECK_NOTHROW(EPL<double>({1.0, 2.999, 0.1, 0.1, 0.0, 0.0}).check());
  CHECK_NOTHROW(EPL<float>({1.0f, 2.0f, 0.0f, 0.0f, 0.0f, 0.0f}).check());
}
