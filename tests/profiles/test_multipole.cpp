#include <lensing/profiles/multipole.hpp>

#include "profile_checks.hpp"

using lensing::Multipole1;
using lensing::Multipole3;
using lensing::Multipole4;
namespace lt = lensing::test;

namespace {
// Our values of one MULTIPOLE case (lenstronomy's m is a parameter; ours is
// the template argument) against lenstronomy's: double elementwise 1e-10
// relative or 1e-12 absolute (both analytic), float by check_reference's
// error model (input-rounding sensitivity x eps plus internal rounding).
template <template <class> class Profile, class Config>
void check_multipole_case(lt::MassCase const& c) {
  using Scalar = typename Config::scalar;
  using Space = typename Config::execution_space;
  bool const is_float = std::is_same<Scalar, float>::value;
  double const rt = 1e-10, at = 1e-12;
  int const m = Profile<double>::order;
  auto const theta = lt::params_from_names<Profile>(c.params, {"m"});
  auto const p = lt::make_profile<Profile, Scalar>(theta);
  p.check();
  auto const v = lt::evaluate_profile<Space>(p, c.x, c.y);
  std::map<std::string, double> errs;
  if (!is_float) {
    errs = {{"alpha_x", lt::detail::worst(v.ax, c.alpha_x, rt, at, false)},
            {"alpha_y", lt::detail::worst(v.ay, c.alpha_y, rt, at, false)},
            {"f_xx", lt::detail::worst(v.hxx, c.f_xx, rt, at, false)},
            {"f_xy", lt::detail::worst(v.hxy, c.f_xy, rt, at, false)},
            {"f_yy", lt::detail::worst(v.hyy, c.f_yy, rt, at, false)}};
    if (!c.kappa.empty()) errs["kappa"] = lt::detail::worst(v.kappa, c.kappa, rt, at, false);
    if (c.has_potential) errs["potential"] = lt::detail::worst(v.psi, c.potential, rt, at, false);
  } else {
    // The float error model of check_reference (ReferenceTolerance defaults).
    lt::ReferenceTolerance const tol;
    auto const s = lt::input_sensitivity<Profile>(theta, c.x, c.y);
    auto w = [&](std::vector<double> const& ours, std::vector<double> const& ref, std::vector<double> const& sens) {
      return lt::detail::worst_float(ours, ref, sens, tol.float_floor, tol.float_margin, rt, at, false);
    };
    errs = {{"alpha_x", w(v.ax, c.alpha_x, s.ax)},
            {"alpha_y", w(v.ay, c.alpha_y, s.ay)},
            {"f_xx", w(v.hxx, c.f_xx, s.hxx)},
            {"f_xy", w(v.hxy, c.f_xy, s.hxy)},
            {"f_yy", w(v.hyy, c.f_yy, s.hyy)}};
    if (!c.kappa.empty()) errs["kappa"] = w(v.kappa, c.kappa, s.kappa);
    if (c.has_potential) errs["potential"] = w(v.psi, c.potential, s.psi);
  }
  for (auto const& [q, e] : errs) {
    CHECK_MESSAGE(e <= 1.0, "MULTIPOLE m = ", m, " ", q, ": error ", e, " x the tolerance");
  }
}

// Dispatch on the case's m: whatever orders a reference draw contains.
template <class Config>
void check_multipole_case_any(lt::MassCase const& c) {
  int const m = int(c.params.at("m"));
  if (m == 1)
    check_multipole_case<Multipole1, Config>(c);
  else if (m == 3)
    check_multipole_case<Multipole3, Config>(c);
  else if (m == 4)
    check_multipole_case<Multipole4, Config>(c);
  else
    FAIL("MULTIPOLE reference case with m = ", m, " (only 1, 3, 4 are instantiated here)");
}

// Fixed cases of every order, independent of the reference draw: lenstronomy
// 1.14.2 values, generated with
//   lm = LensModel(["MULTIPOLE"]); kw = [dict(m=m, a_m=a, phi_m=phi, center_x=0.05, center_y=-0.08)]
//   lm.alpha(x, y, kw), lm.hessian(x, y, kw) (f_xx, f_xy, f_yy), lm.potential(x, y, kw)
// for (m, a, phi) in (1, 0.03, 0.4), (3, 0.02, -1.1), (4, 0.045, 2.3) and
// (x, y) in (0.31, -0.22), (-0.7, 0.45), (1.2, 0.9), (-0.05, -1.3); printed with %.17g.
struct FixedMultipole {
  int m;
  double a, phi, x, y, ax, ay, fxx, fxy, fyy, psi;
};
FixedMultipole const fixed_multipoles[] = {
    {1, 0.03, 0.4, 0.31, -0.22, -0.0085801417616059167, -0.01157929082161141, 0.064875062666807051,
     0.021797152738046853, -0.0012429673052684002, -0.0033840955007550261},
    {1, 0.03, 0.4, -0.7, 0.45, 0.0052848791703240987, -0.0050634817126540806, -0.021695318730885042,
     -0.0046331587511707671, 0.0044649171155692101, 0.0006187556757289509},
    {1, 0.03, 0.4, 1.2, 0.9, 0.016589470501694435, 0.011688720974289269, 0.012417766148961149, -0.00047399608292045454,
     0.006516704724477837, 0.0089200858532651542},
    {1, 0.03, 0.4, -0.05, -1.3, 0.0033613654283228549, 0.0081082856355615927, -0.0074463225512121558,
     -0.010714166110591854, -0.0039097201012873554, -0.0017202978629647977},
    {3, 0.02, -1.1, 0.31, -0.22, 0.0039864919395928029, 0.0061122794120334403, -0.003727662041857972,
     -0.0069228009348790897, -0.012856630307632594, 0.00018076878660944719},
    {3, 0.02, -1.1, -0.7, 0.45, 0.0040620408618406373, 0.0062510757950571989, -0.00084204664974070703,
     -0.0011915754477462832, -0.0016861916713390805, 0.00026653952499983662},
    {3, 0.02, -1.1, 1.2, 0.9, 0.0024723990869548705, -0.0053987037422211781, 0.0036081606560896488,
     -0.0042340660760235667, 0.0049685469259460211, -0.0024474707173786532},
    {3, 0.02, -1.1, -0.05, -1.3, -0.0074644304097509148, 0.0003940197751399582, -0.0014093189045321006,
     0.00011551794299443452, -9.4686838520028299e-06, 0.00026573891530434253},
    {4, 0.045, 2.3, 0.31, -0.22, 0.0051236986782854533, 0.010649490621483012, 0.0061386755918194915,
     0.011400397527664769, 0.021172166837091711, -0.00015876703065340381},
    {4, 0.045, 2.3, -0.7, 0.45, -0.0039368044633069704, -0.0087793125164975193, 0.010072450627350337,
     0.014253467868891985, 0.02017000170126225, -0.0017004322862634567},
    {4, 0.045, 2.3, 1.2, 0.9, -0.0015443606031370189, -0.0027926956184803381, 0.012474442589158337,
     -0.014638376507685799, 0.017177686718202721, -0.0045128563997183036},
    {4, 0.045, 2.3, -0.05, -1.3, 0.00097827554301058378, -0.0030744924214171823, -0.036325482249297714,
     0.0029774985450244035, -0.00024405725778888559, 0.0036530531998279036},
};

// The fixed cases of order m as MassCases (kappa left empty: not printed).
std::vector<lt::MassCase> fixed_multipole_cases() {
  std::vector<lt::MassCase> out;
  for (auto const& f : fixed_multipoles) {
    if (out.empty() || out.back().params.at("m") != f.m) {
      lt::MassCase c;
      c.model = "MULTIPOLE";
      c.params = {{"m", f.m}, {"a_m", f.a}, {"phi_m", f.phi}, {"center_x", 0.05}, {"center_y", -0.08}, {"r_E", 1.0}};
      c.has_potential = true;
      out.push_back(c);
    }
    auto& c = out.back();
    c.x.push_back(f.x);
    c.y.push_back(f.y);
    c.alpha_x.push_back(f.ax);
    c.alpha_y.push_back(f.ay);
    c.f_xx.push_back(f.fxx);
    c.f_xy.push_back(f.fxy);
    c.f_yy.push_back(f.fyy);
    c.potential.push_back(f.psi);
  }
  return out;
}

std::vector<std::vector<double>> const thetas = {
    {0.043, -1.49, -0.02, -0.1, 0.94}, {-0.02, 0.4, 0.1, 0.05, 1.3}, {0.01, 7.0, 0.0, 0.0, 1.0}};
}  // namespace

LENSING_TEST_CASE_TEMPLATE("Multipole matches lenstronomy MULTIPOLE (every m of the reference draw)", Config,
                           lt::AllConfigs) {
  for (auto const& c : lt::mass_cases("MULTIPOLE"))
    check_multipole_case_any<Config>(c);
}

LENSING_TEST_CASE_TEMPLATE("Multipole matches lenstronomy MULTIPOLE (fixed m = 1, 3, 4 cases)", Config,
                           lt::AllConfigs) {
  auto const cases = fixed_multipole_cases();
  REQUIRE(cases.size() == 3);
  for (auto const& c : cases)
    check_multipole_case_any<Config>(c);
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
