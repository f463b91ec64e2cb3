#include <lensing/profiles/multipole.hpp>

#include "profile_checks.hpp"

using lensing::Multipole1;
using lensing::Multipole3;
using lensing::Multipole4;
namespace lt = lensing::test;

namespace {
// check_reference for the MULTIPOLE cases of order m only (lenstronomy's m is
// a parameter; ours is the template argument).  Same tolerances: double
// elementwise 1e-10 relative or 1e-12 absolute, float normwise 1e-5.
template <template <class> class Profile, class Config>
void check_multipole_reference(int m) {
  using Scalar = typename Config::scalar;
  using Space = typename Config::execution_space;
  static_assert(Profile<double>::order > 0, "");
  REQUIRE(Profile<double>::order == m);
  bool const is_float = std::is_same<Scalar, float>::value;
  double const rt = is_float ? 1e-5 : 1e-10, at = is_float ? 1e-30 : 1e-12;
  int n = 0;
  for (auto const& c : lt::mass_cases("MULTIPOLE")) {
    if (c.params.at("m") != m) continue;
    ++n;
    auto const theta = lt::params_from_names<Profile>(c.params, {"m"});
    auto const p = lt::make_profile<Profile, Scalar>(theta);
    p.check();
    auto const v = lt::evaluate_profile<Space>(p, c.x, c.y);
    std::map<std::string, double> errs = {{"alpha_x", lt::detail::worst(v.ax, c.alpha_x, rt, at, is_float)},
                                          {"alpha_y", lt::detail::worst(v.ay, c.alpha_y, rt, at, is_float)},
                                          {"f_xx", lt::detail::worst(v.hxx, c.f_xx, rt, at, is_float)},
                                          {"f_xy", lt::detail::worst(v.hxy, c.f_xy, rt, at, is_float)},
                                          {"f_yy", lt::detail::worst(v.hyy, c.f_yy, rt, at, is_float)},
                                          {"kappa", lt::detail::worst(v.kappa, c.kappa, rt, at, is_float)}};
    if (c.has_potential) errs["potential"] = lt::detail::worst(v.psi, c.potential, rt, at, is_float);
    for (auto const& [q, e] : errs) {
      CHECK_MESSAGE(e <= 1.0, "MULTIPOLE m = ", m, " ", q, ": error ", e, " x the tolerance");
    }
  }
  CHECK_MESSAGE(n > 0, "no MULTIPOLE reference case with m = ", m);
}

std::vector<std::vector<double>> const thetas = {
    {0.043, -1.49, -0.02, -0.1, 0.94}, {-0.02, 0.4, 0.1, 0.05, 1.3}, {0.01, 7.0, 0.0, 0.0, 1.0}};
}  // namespace

LENSING_TEST_CASE_TEMPLATE("Multipole matches lenstronomy MULTIPOLE (m = 1, 4)", Config, lt::AllConfigs) {
  check_multipole_reference<Multipole1, Config>(1);
  check_multipole_reference<Multipole4, Config>(4);
}

TEST_CASE("Multipole identities and packing (m = 1, 3, 4)") {
  for (auto const& theta : thetas) {
    std::vector<double> xs, ys;
    lt::spiral_points(theta[2], theta[3], 20, xs, ys);
    lt::check_packing<Multipole1>(theta);
    lt::check_packing<Multipole3>(theta);
    lt::check_packing<Multipole4>(theta);
    // FD truncation ~h^2 m^3 |a_m| / r^3 near r = 0.02 (3e-7 relative at h = 1e-5): h = 5e-7.
    lt::check_identities<Multipole1>(theta, xs, ys, 1e-7, 5e-7);
    lt::check_identities<Multipole3>(theta, xs, ys, 1e-7, 5e-7);
    lt::check_identities<Multipole4>(theta, xs, ys, 1e-7, 5e-7);
  }
}

LENSING_TEST_CASE_TEMPLATE("Multipole VJPs match finite differences", Config, lt::AllConfigs) {
  for (auto const& theta : thetas) {
    std::vector<double> xs, ys;
    lt::spiral_points(theta[2] + 0.01, theta[3] - 0.02, 20, xs, ys);
    lt::check_vjps<Multipole1, Config>(theta, xs, ys);
    lt::check_vjps<Multipole3, Config>(theta, xs, ys);
    lt::check_vjps<Multipole4, Config>(theta, xs, ys);
  }
}

TEST_CASE("Multipole analytic properties") {
  double const a = 0.03, phi = 0.35, cx = 0.2, cy = -0.1, rE = 1.2;
  lensing::Multipole<double, 1> const m1{a, phi, cx, cy, rE};
  lensing::Multipole<double, 3> const m3{a, phi, cx, cy, rE};
  lensing::Multipole<double, 4> const m4{a, phi, cx, cy, rE};
  lensing::Multipole<double, 4> const m4_other_rE{a, phi, cx, cy, 0.3};
  lensing::Multipole<double, 1> const m1_other_rE{a, phi, cx, cy, 0.3};
  std::vector<double> xs, ys;
  lt::spiral_points(cx, cy, 30, xs, ys);
  for (size_t i = 0; i < xs.size(); ++i) {
    double const x = xs[i], y = ys[i], dx = x - cx, dy = y - cy;
    double const r = std::hypot(dx, dy), t = std::atan2(dy, dx);
    // kappa = a_m cos(m (theta - phi_m)) / (2 r) for every m.
    CHECK(m1.convergence(x, y) == doctest::Approx(a * std::cos(t - phi) / (2 * r)).epsilon(1e-13).scale(a / r));
    CHECK(m3.convergence(x, y) == doctest::Approx(a * std::cos(3 * (t - phi)) / (2 * r)).epsilon(1e-13).scale(a / r));
    CHECK(m4.convergence(x, y) == doctest::Approx(a * std::cos(4 * (t - phi)) / (2 * r)).epsilon(1e-13).scale(a / r));
    // m != 1: psi = a_m/(1 - m^2) r cos(m Delta), homogeneous of degree 1:
    // x . alpha = psi and H (x - c) = 0; r_E has no effect.
    CHECK(m3.potential(x, y) == doctest::Approx(-a / 8 * r * std::cos(3 * (t - phi))).epsilon(1e-13).scale(a * r));
    for (auto const* m : {&m4}) {
      auto const al = m->deflection(x, y);
      auto const h = m->hessian(x, y);
      CHECK(dx * al.x + dy * al.y == doctest::Approx(m->potential(x, y)).epsilon(1e-13).scale(a * r));
      CHECK(h.xx * dx + h.xy * dy == doctest::Approx(0).scale(a));
      CHECK(h.xy * dx + h.yy * dy == doctest::Approx(0).scale(a));
      CHECK(m4_other_rE.deflection(x, y).x == al.x);
      CHECK(m4_other_rE.potential(x, y) == m->potential(x, y));
    }
    {
      auto const al = m3.deflection(x, y);
      CHECK(dx * al.x + dy * al.y == doctest::Approx(m3.potential(x, y)).epsilon(1e-13).scale(a * r));
    }
    // m = 1: r_E only adds the uniform deflection -(a_m/2) ln(r_E'/r_E) (cos phi_m, sin phi_m).
    auto const d1 = m1.deflection(x, y), d2 = m1_other_rE.deflection(x, y);
    double const shift = -0.5 * a * std::log(0.3 / rE);
    CHECK(d2.x - d1.x == doctest::Approx(shift * std::cos(phi)).epsilon(1e-10).scale(a));
    CHECK(d2.y - d1.y == doctest::Approx(shift * std::sin(phi)).epsilon(1e-10).scale(a));
    auto const h1 = m1.hessian(x, y), h2 = m1_other_rE.hessian(x, y);
    CHECK(h1.xx == h2.xx);
    CHECK(h1.xy == h2.xy);
    CHECK(m1.potential(x, y) == doctest::Approx(0.5 * a * r * std::log(r / rE) * std::cos(t - phi)).scale(a * r));
  }
  // Rotating phi_m by 2 pi / m leaves the profile unchanged.
  lensing::Multipole<double, 3> const m3r{a, phi + 2 * M_PI / 3, cx, cy, rE};
  auto const p = m3.deflection(0.7, 0.4), q = m3r.deflection(0.7, 0.4);
  CHECK(p.x == doctest::Approx(q.x).epsilon(1e-13));
  CHECK(p.y == doctest::Approx(q.y).epsilon(1e-13));
}

LENSING_TEST_CASE_TEMPLATE("Multipole is finite at and near the centre", Config, lt::AllConfigs) {
  std::vector<double> const xs = {0.0, 1e-13, 0.0, 1e-30, -3e-39, 1e-310, 1e3};
  std::vector<double> const ys = {0.0, 0.0, -1e-16, 2e-30, 1e-39, 0.0, -1e3};
  for (auto const& theta : std::vector<std::vector<double>>{{0.04, 0.3, 0.0, 0.0, 1.0}, {-0.02, -2.0, 0.0, 0.0, 0.5}}) {
    lt::check_finite<Multipole1, Config>(theta, xs, ys);
    lt::check_finite<Multipole3, Config>(theta, xs, ys);
    lt::check_finite<Multipole4, Config>(theta, xs, ys);
  }
}

TEST_CASE("Multipole centre values") {
  // m != 1: psi(0) = 0 and alpha(0) = its theta = 0 value (k cos(m phi_m), k m sin(m phi_m)), k = a_m/(1 - m^2).
  double const a = 0.05, phi = 0.3;
  lensing::Multipole<double, 4> const m4{a, phi, 0.1, 0.2, 1.0};
  auto const al = m4.deflection(0.1, 0.2);
  CHECK(m4.potential(0.1, 0.2) == 0.0);
  CHECK(al.x == doctest::Approx(-a / 15 * std::cos(4 * phi)).epsilon(1e-15));
  CHECK(al.y == doctest::Approx(-a / 15 * 4 * std::sin(4 * phi)).epsilon(1e-15));
  // kappa at the cusp radius (1e-15"): finite, a_m cos(m phi_m) / (2e-15).
  CHECK(m4.convergence(0.1, 0.2) == doctest::Approx(a * std::cos(4 * phi) / 2e-15).epsilon(1e-14));
  // m = 1: evaluated at the point moved onto the cusp radius.
  lensing::Multipole<double, 1> const m1{a, phi, 0.0, 0.0, 1.0};
  auto const a1 = m1.deflection(0.0, 0.0);
  double const L = std::log(1e-15);
  CHECK(a1.x == doctest::Approx(0.5 * a * (std::cos(phi) + L * std::cos(phi))).epsilon(1e-14));
  CHECK(a1.y == doctest::Approx(0.5 * a * L * std::sin(phi)).epsilon(1e-14));
}

TEST_CASE("Multipole rejects bad parameters") {
  double const nan = std::nan("");
  CHECK_THROWS_WITH_AS((Multipole4<double>{nan, 0.0, 0.0, 0.0, 1.0}.check()),
                       "lensing::Multipole: a_m must be finite (got nan)", std::invalid_argument);
  CHECK_THROWS_AS((Multipole4<double>{0.1, nan, 0.0, 0.0, 1.0}.check()), std::invalid_argument);
  CHECK_THROWS_AS((Multipole3<double>{0.1, 0.0, nan, 0.0, 1.0}.check()), std::invalid_argument);
  CHECK_THROWS_AS((Multipole3<float>{0.1f, 0.0f, 0.0f, nan, 1.0f}.check()), std::invalid_argument);
  CHECK_THROWS_AS((Multipole1<double>{0.1, 0.0, 0.0, 0.0, nan}.check()), std::invalid_argument);
  CHECK_THROWS_WITH_AS((Multipole1<double>{0.1, 0.0, 0.0, 0.0, 0.0}.check()),
                       "lensing::Multipole: r_E must be finite and > 0 (got 0)", std::invalid_argument);
  CHECK_THROWS_AS((Multipole1<double>{0.1, 0.0, 0.0, 0.0, -1.0}.check()), std::invalid_argument);
  CHECK_NOTHROW((Multipole4<double>{-0.1, 10.0, 0.0, 0.0, 1.0}.check()));
}
