#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>

#include "profile_checks.hpp"

using lensing::NIE;
using lensing::SIE;
namespace lt = lensing::test;

LENSING_TEST_CASE_TEMPLATE("NIE matches lenstronomy", Config, lt::AllConfigs) {
  lt::ReferenceTolerance tol;
  tol.hessian_rtol = 1e-4;  // lenstronomy's NIE Hessian is a finite difference (see SIE)
  lt::check_reference<NIE, Config>("NIE", tol);
}

LENSING_TEST_CASE_TEMPLATE("SIE matches lenstronomy", Config, lt::AllConfigs) {
  // Our SIE has no core; lenstronomy's has s_scale = 1e-10, which moves values
  // by ~1e-10 theta_E / r: compared at 1e-8 relative / 1e-9 absolute here, and
  // exactly (1e-10) through an NIE with that core below.
  // lenstronomy's NIE Hessian (and so kappa) is a forward finite difference
  // of its deflection with step 1e-10: good to ~1e-5 only, compared normwise.
  lt::ReferenceTolerance tol;
  tol.rtol = 1e-8;
  tol.atol = 1e-9;
  tol.hessian_rtol = 1e-4;
  lt::check_reference<SIE, Config>("SIE", tol);
}

TEST_CASE("SIE reference through an NIE with lenstronomy's tiny core, at 1e-10") {
  for (auto const& c : lt::mass_cases("SIE")) {
    auto named = c.params;
    named["s_scale"] = 1e-10;
    auto const theta = lt::params_from_names<NIE>(named);
    auto const v =
        lt::evaluate_profile<Kokkos::DefaultHostExecutionSpace>(lt::make_profile<NIE, double>(theta), c.x, c.y);
    CHECK(lt::detail::worst(v.ax, c.alpha_x, 1e-10, 1e-12, false) <= 1);
    CHECK(lt::detail::worst(v.ay, c.alpha_y, 1e-10, 1e-12, false) <= 1);
    CHECK(lt::detail::worst(v.hxx, c.f_xx, 1e-4, 0, true) <= 1);  // reference Hessian: finite differences
    CHECK(lt::detail::worst(v.hxy, c.f_xy, 1e-4, 0, true) <= 1);
    CHECK(lt::detail::worst(v.hyy, c.f_yy, 1e-4, 0, true) <= 1);
    CHECK(lt::detail::worst(v.kappa, c.kappa, 1e-4, 0, true) <= 1);
    CHECK(lt::detail::worst(v.psi, c.potential, 1e-10, 1e-12, false) <= 1);
  }
}

LENSING_TEST_CASE_TEMPLATE("SIE and NIE VJPs match finite differences", Config, lt::AllConfigs) {
  std::vector<double> xs, ys;
  lt::spiral_points(0.05, -0.1, 20, xs, ys);
  lt::check_vjps<SIE, Config>({1.2, 0.15, -0.1, 0.05, -0.1}, xs, ys);
  lt::check_vjps<NIE, Config>({1.2, 0.2, 0.15, -0.1, 0.05, -0.1}, xs, ys);
  // Near-round: the q -> 1 series branch.
  lt::check_vjps<SIE, Config>({0.9, 1e-3, 2e-3, 0.0, 0.0}, xs, ys);
  lt::check_vjps<NIE, Config>({0.9, 0.1, -2e-3, 1e-3, 0.0, 0.0}, xs, ys);
  // e = 0 exactly: the (q, phi) chart is singular there (EllipticalProfile::vjp_round).
  lt::check_vjps<SIE, Config>({0.9, 0.0, 0.0, 0.05, -0.1}, xs, ys);
  lt::check_vjps<NIE, Config>({0.9, 0.1, 0.0, 0.0, 0.05, -0.1}, xs, ys);
}

TEST_CASE("SIE and NIE identities and packing") {
  std::vector<double> xs, ys;
  lt::spiral_points(0.05, -0.1, 20, xs, ys);
  for (auto const& theta : std::vector<std::vector<double>>{
           {1.2, 0.15, -0.1, 0.05, -0.1}, {0.7, -0.4, 0.3, 0.05, -0.1}, {1.0, 1e-4, 0.0, 0.05, -0.1}}) {
    lt::check_packing<SIE>(theta);
    lt::check_identities<SIE>(theta, xs, ys, 1e-6);  // FD error near the cusp ~ h^2 theta_E / r^3
  }
  lt::check_packing<NIE>({1.2, 0.2, 0.15, -0.1, 0.05, -0.1});
  lt::check_identities<NIE>({1.2, 0.2, 0.15, -0.1, 0.05, -0.1}, xs, ys, 1e-6);
  lt::check_identities<NIE>({1.2, 0.2, 0.0, 0.0, 0.05, -0.1}, xs, ys, 1e-6);
}

TEST_CASE("SIE special cases: q = 1 is the SIS, NIE(s -> 0) is the SIE") {
  lensing::SIS<double> const sis{1.1, 0.2, 0.1};
  SIE<double> const round{1.1, 0.0, 0.0, 0.2, 0.1};
  SIE<double> const nearly{1.1, 1e-9, 0.0, 0.2, 0.1};
  NIE<double> const tiny_core{1.1, 1e-12, 0.3, -0.2, 0.2, 0.1};
  SIE<double> const sie{1.1, 0.3, -0.2, 0.2, 0.1};
  std::vector<double> xs, ys;
  lt::spiral_points(0.2, 0.1, 30, xs, ys);
  for (size_t i = 0; i < xs.size(); ++i) {
    double const x = xs[i], y = ys[i];
    auto const a = sis.deflection(x, y), b = round.deflection(x, y), c = nearly.deflection(x, y);
    CHECK(b.x == doctest::Approx(a.x).epsilon(1e-14));
    CHECK(b.y == doctest::Approx(a.y).epsilon(1e-14));
    CHECK(c.x == doctest::Approx(a.x).epsilon(1e-8));
    CHECK(round.potential(x, y) == doctest::Approx(sis.potential(x, y)).epsilon(1e-14));
    CHECK(round.convergence(x, y) == doctest::Approx(sis.convergence(x, y)).epsilon(1e-14));
    auto const hs = sis.hessian(x, y), hr = round.hessian(x, y);
    CHECK(hr.xx == doctest::Approx(hs.xx).epsilon(1e-13));
    CHECK(hr.xy == doctest::Approx(hs.xy).scale(1).epsilon(1e-13));
    auto const d = tiny_core.deflection(x, y), e = sie.deflection(x, y);
    CHECK(d.x == doctest::Approx(e.x).epsilon(1e-9));
    CHECK(d.y == doctest::Approx(e.y).epsilon(1e-9));
    CHECK(tiny_core.convergence(x, y) == doctest::Approx(sie.convergence(x, y)).epsilon(1e-9));
  }
  // kappa = theta_E / (2 sqrt(q x'^2 + y'^2/q)) along the major axis.
  auto const qp = lensing::ellipticity_to_q_phi(0.3, -0.2);
  double const r = 0.8;
  double const x = 0.2 + r * std::cos(qp.phi), y = 0.1 + r * std::sin(qp.phi);
  CHECK(sie.convergence(x, y) == doctest::Approx(1.1 / (2 * std::sqrt(qp.q) * r)).epsilon(1e-13));
}

LENSING_TEST_CASE_TEMPLATE("SIE and NIE are finite at the centre and for round shapes", Config, lt::AllConfigs) {
  std::vector<double> const xs = {0.05, 0.05 + 1e-13, 0.05, 1e3, 0.3};
  std::vector<double> const ys = {-0.1, -0.1, -0.1 - 1e-30, 1e3, 0.0};
  lt::check_finite<SIE, Config>({1.2, 0.15, -0.1, 0.05, -0.1}, xs, ys);
  lt::check_finite<SIE, Config>({1.2, 0.0, 0.0, 0.05, -0.1}, xs, ys);
  lt::check_finite<NIE, Config>({1.2, 0.1, 0.15, -0.1, 0.05, -0.1}, xs, ys);
  lt::check_finite<NIE, Config>({1.2, 0.0, 0.0, 0.0, 0.05, -0.1}, xs, ys);
}

TEST_CASE("SIE and NIE reject bad parameters") {
  CHECK_THROWS_WITH_AS(SIE<double>({0.0, 0.1, 0.1, 0.0, 0.0}).check(),
                       "lensing::SIE: theta_E must be finite and > 0 (got 0)", std::invalid_argument);
  CHECK_THROWS_WITH_AS(SIE<double>({1.0, 0.8, 0.7, 0.0, 0.0}).check(),
                       "lensing::SIE: |e| = sqrt(e1^2 + e2^2) must be < 1", std::invalid_argument);
  CHECK_THROWS_AS(NIE<double>({1.0, -0.1, 0.1, 0.1, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(NIE<double>({1.0, 0.1, std::nan(""), 0.1, 0.0, 0.0}).check(), std::invalid_argument);
}

TEST_CASE("EllipticalFrame matches the trigonometric position angle") {
  for (double e1 : {-0.5, -0.3, -1e-9, 0.0, 1e-12, 0.2}) {
    for (double e2 : {-0.4, -1e-10, 0.0, 3e-11, 0.25}) {
      auto const f = lensing::EllipticalFrame<double>::from_ellipticity(e1, e2);
      auto const qp = lensing::ellipticity_to_q_phi(e1, e2);
      CHECK(f.q == doctest::Approx(qp.q).epsilon(1e-15));
      CHECK(f.cos_phi == doctest::Approx(std::cos(qp.phi)).scale(1).epsilon(1e-15));
      CHECK(f.sin_phi == doctest::Approx(std::sin(qp.phi)).scale(1).epsilon(1e-15));
    }
  }
}

// The direct forms behind the SIE/NIE deflection against long double, at the
// device's rounded inputs, on a grid that covers u below an ulp (w = 1), w
// near 1 from both sides, w >= 2, e = 0 (the floor), e near 1 and z near 1.
// Error model (first order, ε = the scalar's epsilon; libmvec's vector
// log/atan2 are within 4 ulp, the scalar libm within 1):
//   log1p_from_log: log 4ε + the correction term ε (see its comment) + the sum 0.5ε   -> 6ε |log1p u|
//   atan_over_e:    e n 0.5ε (atan2's relative condition in y <= 1) + atan2 4ε + scale/e and the
//                   product 2 x 0.5ε                                                   -> 6ε |ref|
//   atanh_over_e:   u = 2en/(d - en): ε (1.5 + 0.5 z/(1 - z)), z = en/d (log1p's relative condition
//                   in u <= 1) + log1p_from_log 5.5ε + scale/e and the product ε     -> ε (8 + z/(1 - z)) |ref|
LENSING_TEST_CASE_TEMPLATE("SIE's atan and atanh over e match long double within their error model", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  std::vector<double> us = {0,    1e-30, -1e-30, 1e-12, -1e-12, 3e-8, -3e-8, 1e-5,   -1e-5,
                            1e-3, -1e-3, 0.1,    -0.1,  0.5,    -0.5, 0.99,  -0.9,   1.0,
                            1.5,  1.999, 2.0,    2.5,   10.0,   1e3,  1e10,  -0.999, 7.3};
  // u one ulp below a power of two: 1 + u rounds (c = one ulp of u), the w >= 2 regime's largest term.
  for (Scalar p : {Scalar(2), Scalar(16), Scalar(128), Scalar(1 << 20)})
    us.push_back(double(std::nextafter(p, Scalar(0))));
  std::vector<double> const es = {0.0, 3e-4, 0.01, 0.3, 0.8, 0.995};
  std::vector<double> const rs = {0.0, 1e-20, -1e-8, 1e-4, -0.01, 0.3, -0.7, 0.95, 1.0, -1.0, 2.0, 9.0};  // n/d
  std::vector<double> const ds = {1.0, 0.37, 4.1};
  int const nu = int(us.size()), npt = int(es.size() * rs.size() * ds.size());
  REQUIRE(npt >= nu);  // one kernel pass covers both grids
  auto const to_view = [](std::vector<double> const& v, char const* name) {
    Kokkos::View<Scalar*, typename Config::memory_space> out(std::string(name), v.size());
    auto h = Kokkos::create_mirror_view(out);
    for (std::size_t i = 0; i < v.size(); ++i)
      h(i) = Scalar(v[i]);
    Kokkos::deep_copy(out, h);
    return out;
  };
  // Points (e, n, d): n = r d rounded to Scalar.
  std::vector<double> pe, pn, pd;
  for (double e : es)
    for (double r : rs)
      for (double d : ds) {
        pe.push_back(e);
        pn.push_back(double(Scalar(r * double(Scalar(d)))));
        pd.push_back(d);
      }
  auto const u = to_view(us, "u"), e = to_view(pe, "e"), n = to_view(pn, "n"), d = to_view(pd, "d");
  Kokkos::View<Scalar* [3], typename Config::memory_space> out("out", npt > nu ? npt : nu);
  Scalar const scale = Scalar(1.3);
  Kokkos::parallel_for(
      "test_sie_direct", Kokkos::RangePolicy<Space>(Space(), 0, npt), KOKKOS_LAMBDA(int i) {
        out(i, 0) = i < nu ? lensing::math::log1p_from_log(u(i)) : Scalar(0);
        out(i, 1) = lensing::detail::atan_over_e(e(i), n(i), d(i), scale);
        // atanh needs e |n| < d: the others are skipped on the host.
        out(i, 2) = e(i) * lensing::math::fabs(n(i)) < d(i) ? lensing::detail::atanh_over_e(e(i), n(i), d(i), scale)
                                                            : Scalar(0);
      });
  Space().fence();
  auto const h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  auto const hu = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), u);
  auto const he = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), e);
  auto const hn = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), n);
  auto const hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), d);
  long double const eps = std::numeric_limits<Scalar>::epsilon();
  for (int i = 0; i < nu; ++i) {
    long double const ref = std::log1p((long double)hu(i));
    CHECK_MESSAGE(std::fabs(h(i, 0) - ref) <= 6 * eps * std::fabs(ref), "log1p_from_log(", hu(i), ") = ", h(i, 0),
                  " against ", double(ref));
  }
  int atanh_points = 0;
  for (int i = 0; i < npt; ++i) {
    long double const ee = he(i), r = (long double)hn(i) / (long double)hd(i), sc = scale;
    long double const ref_atan = ee == 0 ? sc * r : sc * std::atan(ee * r) / ee;
    CHECK_MESSAGE(std::fabs(h(i, 1) - ref_atan) <= 6 * eps * std::fabs(ref_atan), "atan_over_e(", he(i), ", ", hn(i),
                  ", ", hd(i), ") = ", h(i, 1), " against ", double(ref_atan));
    long double const z = ee * r;
    if (std::fabs(z) >= 0.999L) continue;  // outside the domain (or its last 0.1 %: atanh's own condition)
    ++atanh_points;
    long double const ref_atanh = ee == 0 ? sc * r : sc * std::atanh(z) / ee;
    long double const bound = eps * (8 + std::fabs(z) / (1 - std::fabs(z))) * std::fabs(ref_atanh);
    CHECK_MESSAGE(std::fabs(h(i, 2) - ref_atanh) <= bound, "atanh_over_e(", he(i), ", ", hn(i), ", ", hd(i),
                  ") = ", h(i, 2), " against ", double(ref_atanh));
  }
  CHECK(atanh_points > npt / 2);
}
