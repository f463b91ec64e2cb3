#include <lensing/profiles/gaussian_kappa.hpp>
#include <lensing/profiles/sersic_kappa.hpp>

#include "profile_checks.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

using lensing::GaussianKappa;
using lensing::SersicKappa;
namespace lt = lensing::test;

LENSING_TEST_CASE_TEMPLATE("SersicKappa matches lenstronomy", Config, lt::AllConfigs) {
  lt::ReferenceTolerance tol;
  // lenstronomy's deflection is alpha = x q J (and y q J1) with J from scipy's
  // quad at its default requested accuracy, epsabs = epsrel = 1.49e-8: so
  // |d alpha| <= 1.49e-8 max(|alpha|, |x| q) with |x| <= 3, q <= 1 on the
  // reference points.  (We measure 6e-12 ... 4e-11: quad over-delivers, but
  // that is not a property a test may rely on.)
  tol.rtol = 1.5e-8;
  tol.atol = 4.5e-8;
  // Its Hessian is a forward difference of that deflection with step 1e-6:
  // at quad's requested accuracy it carries 2 x 1.49e-8 |alpha| / 1e-6 ~ 3e-2,
  // so it checks nothing.  Our Hessian is checked against grad alpha
  // (identities below) and kappa against an independent evaluation.
  tol.check_hessian = false;
  tol.check_potential = false;  // lenstronomy has none for this model
  lt::check_reference<SersicKappa, Config>("SERSIC_ELLIPSE_KAPPA", tol);
}

namespace {
// kappa of lenstronomy's SERSIC_ELLIPSE_KAPPA from its definition, in long
// double, independent of the library: phi = atan2(e2, e1) / 2, q = 1 - |e|,
// xi^2 = x'^2 + y'^2 / q^2 in the frame rotated by phi about the centre,
// kappa = k_eff exp(-b ((xi / R)^(1/n) - 1)), b = max(1.9992 n - 0.3271, 1e-5).
// Also returns the relative error bound of a Scalar evaluation of the same
// formula (see the test).
long double sersic_kappa_reference(std::vector<long double> const& t, long double x, long double y, double eps,
                                   double& bound) {
  long double const k = t[0], R = t[1], n = t[2], e1 = t[3], e2 = t[4], cx = t[5], cy = t[6];
  long double const phi = std::atan2(e2, e1) / 2, q = 1 - std::hypot(e1, e2);
  long double const dx = x - cx, dy = y - cy;
  long double const xr = std::cos(phi) * dx + std::sin(phi) * dy, yr = -std::sin(phi) * dx + std::cos(phi) * dy;
  long double const xi = std::sqrt(xr * xr + yr * yr / (q * q));
  long double const b = std::max(1.9992L * n - 0.3271L, 1e-5L);
  long double const rho = std::pow(xi / R, 1 / n);
  // Error model (first order, Scalar rounding eps): kappa = k exp(-b (rho - 1)),
  // d kappa / kappa = -b rho (d rho / rho); d rho / rho = (d xi / xi) / n + the
  // rounding of pow; d xi / xi <= g eps with g = (|x| + |cx| + |y| + |cy|) / xi
  // (the centre subtraction) + 4 (rotation, q, the squares, sqrt); exp, the
  // products and b itself: 4 eps + b rho eps.  Bound: 4 x the sum.
  double const g = double((std::fabs(x) + std::fabs(cx) + std::fabs(y) + std::fabs(cy)) / xi) + 4;
  bound = 4 * eps * double(4 + b * rho * (2 + g / n));
  return k * std::exp(-b * (rho - 1));
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("SersicKappa analytic kappa against an independent long-double evaluation", Config,
                           lt::AllConfigs) {
  using Scalar = typename Config::scalar;
  using Space = typename Config::execution_space;
  double const eps = std::numeric_limits<Scalar>::epsilon();
  double worst = 0;
  for (auto const& c : lt::mass_cases("SERSIC_ELLIPSE_KAPPA")) {
    auto const theta = lt::params_from_names<SersicKappa>(c.params);
    auto const p = lt::make_profile<SersicKappa, Scalar>(theta);
    // The reference points, plus a spiral from 0.02 to 4 and points close to
    // the centre (the cusp of n > 1).
    std::vector<double> xs = c.x, ys = c.y;
    lt::spiral_points(theta[5], theta[6], 40, xs, ys);
    for (double r : {1e-6, 1e-4, 1e-3})
      xs.push_back(theta[5] + r), ys.push_back(theta[6] - 0.5 * r);
    auto const v = lt::evaluate_profile<Space>(p, xs, ys);
    // Reference at the Scalar-rounded inputs, so that only the evaluation's
    // rounding is measured.
    std::vector<long double> t;
    for (double v0 : theta)
      t.push_back(static_cast<long double>(static_cast<Scalar>(v0)));
    for (std::size_t i = 0; i < xs.size(); ++i) {
      double bound = 0;
      long double const ref =
          sersic_kappa_reference(t, static_cast<Scalar>(xs[i]), static_cast<Scalar>(ys[i]), eps, bound);
      if (!(ref > 1e6L * std::numeric_limits<Scalar>::min())) continue;  // underflow: nothing to compare
      double const e = double(std::fabs(v.kappa[i] - ref) / ref);
      worst = std::max(worst, e / bound);
      CHECK_MESSAGE(e <= bound, "kappa at (", xs[i], ", ", ys[i], "): relative error ", e, ", model ", bound);
    }
  }
  MESSAGE("SersicKappa kappa: worst error / model " << worst);
}

TEST_CASE("SersicKappa identities (alpha = grad psi, H = grad alpha) and packing") {
  std::vector<double> xs, ys;
  lt::spiral_points(0.05, -0.1, 24, xs, ys);
  for (auto const& theta : std::vector<std::vector<double>>{{0.6, 1.2, 2.5, 0.15, -0.1, 0.05, -0.1},
                                                            {0.9, 0.8, 0.7, -0.4, 0.3, 0.05, -0.1},
                                                            {0.3, 1.5, 4.0, 0.0, 0.0, 0.05, -0.1},
                                                            {0.3, 1.5, 1.0, 1e-7, 0.0, 0.05, -0.1}}) {
    lt::check_packing<SersicKappa>(theta);
    // FD error near the cusp of n > 1 profiles ~ h^2 kappa''' : 1e-6
    lt::check_identities<SersicKappa>(theta, xs, ys, 1e-6);
  }
}

LENSING_TEST_CASE_TEMPLATE("SersicKappa VJPs match finite differences", Config, lt::AllConfigs) {
  std::vector<double> xs, ys;
  lt::spiral_points(0.05, -0.1, 16, xs, ys);
  lt::check_vjps<SersicKappa, Config>({0.6, 1.2, 2.5, 0.15, -0.1, 0.05, -0.1}, xs, ys);
  lt::check_vjps<SersicKappa, Config>({0.9, 0.8, 0.7, -0.4, 0.3, 0.05, -0.1}, xs, ys);
  lt::check_vjps<SersicKappa, Config>({0.3, 1.5, 4.0, 2e-2, -1e-2, 0.05, -0.1}, xs, ys);
  // e = 0 exactly.  This model's axis ratio q_s = 1 - |e| puts a cone |e| in
  // kappa (its monopole moves at first order in |e|), so the VJP is the
  // symmetric derivative and the central difference is only O(h) accurate
  // there (its second-order terms differ between +e and -e): 1e-5.
  lt::check_vjps<SersicKappa, Config>({0.6, 1.2, 2.5, 0.0, 0.0, 0.05, -0.1}, xs, ys, 1e-5);
}

TEST_CASE("SersicKappa with n = 1/2 is an elliptical Gaussian") {
  // n = 1/2: kappa = k e^b exp(-b (x'^2 + y'^2/q_s^2)/R^2), the Gaussian
  // amp/(2 pi s^2) exp(-q (x'^2 + y'^2/q^2)/(2 s^2)) with q = q_s,
  // s^2 = q_s R^2/(2 b), amp = 2 pi s^2 k e^b.  The two models map |e| to
  // their axis ratios differently: |e|_sersic = 1 - q, |e|_gauss = (1-q)/(1+q).
  double const k = 0.7, R = 1.3, n = 0.5, b = 1.9992 * n - 0.3271;
  for (double qs : {1.0, 0.93, 0.6, 0.25}) {
    double const phi = 0.4, es = 1 - qs, eg = (1 - qs) / (1 + qs);
    double const s2 = qs * R * R / (2 * b), amp = 2 * 3.141592653589793 * s2 * k * std::exp(b);
    SersicKappa<double> const ser{k, R, n, es * std::cos(2 * phi), es * std::sin(2 * phi), 0.2, -0.1};
    GaussianKappa<double> const gau{amp, std::sqrt(s2), eg * std::cos(2 * phi), eg * std::sin(2 * phi), 0.2, -0.1};
    std::vector<double> xs, ys;
    lt::spiral_points(0.2, -0.1, 30, xs, ys);
    xs.push_back(0.2);
    ys.push_back(-0.1);
    for (size_t i = 0; i < xs.size(); ++i) {
      double const x = xs[i], y = ys[i];
      auto const a = ser.deflection(x, y), ag = gau.deflection(x, y);
      double const sa = std::hypot(ag.x, ag.y);
      CHECK(std::hypot(a.x - ag.x, a.y - ag.y) <= 1e-12 * sa + 1e-15);
      // both potentials by quadrature; measured <= 7.6e-14 (q >= 0.6), 1.2e-11 (q = 0.25, r = 4)
      CHECK(ser.potential(x, y) == doctest::Approx(gau.potential(x, y)).epsilon(3e-11).scale(1e-3));
      CHECK(ser.convergence(x, y) == doctest::Approx(gau.convergence(x, y)).epsilon(1e-13));
      auto const h = ser.hessian(x, y), hg = gau.hessian(x, y);
      double const sh = std::fabs(hg.xx) + std::fabs(hg.xy) + std::fabs(hg.yy);
      CHECK(std::fabs(h.xx - hg.xx) + std::fabs(h.xy - hg.xy) + std::fabs(h.yy - hg.yy) <= 1e-12 * sh);
    }
  }
}

TEST_CASE("SersicKappa round limit and far field") {
  SersicKappa<double> const round{0.5, 1.1, 3.0, 0.0, 0.0, 0.1, 0.2};
  SersicKappa<double> const nearly{0.5, 1.1, 3.0, 0.0, 1e-6, 0.1, 0.2};
  std::vector<double> xs, ys;
  lt::spiral_points(0.1, 0.2, 30, xs, ys);
  for (size_t i = 0; i < xs.size(); ++i) {
    double const x = xs[i], y = ys[i], dx = x - 0.1, dy = y - 0.2;
    auto const a = round.deflection(x, y), b = nearly.deflection(x, y);
    // q = 1: alpha radial.
    CHECK(std::fabs(a.x * dy - a.y * dx) <= 1e-14 * std::hypot(a.x, a.y) * std::hypot(dx, dy));
    CHECK(std::hypot(a.x - b.x, a.y - b.y) <= 3e-6 * std::hypot(a.x, a.y));
    CHECK(std::fabs(round.potential(x, y) - nearly.potential(x, y)) <= 3e-6 * std::fabs(round.potential(x, y)));
    CHECK(std::fabs(nearly.convergence(x, y) - round.convergence(x, y)) <= 3e-6 * round.convergence(x, y));
  }
  // Far away: a point mass M = 2 pi q_s n R^2 k e^b b^(-2n) Gamma(2n):
  // alpha -> M/(pi r);  here q_s = 1, n = 1 (Gamma(2) = 1): M = 2 pi R^2 k e^b/b^2.
  SersicKappa<double> const expo{0.5, 1.1, 1.0, 0.0, 0.0, 0.0, 0.0};
  double const bn = 1.9992 - 0.3271, M = 2 * 3.141592653589793 * 1.1 * 1.1 * 0.5 * std::exp(bn) / (bn * bn);
  for (double r : {400.0, 1e4}) {
    auto const a = expo.deflection(r, 0.0);
    CHECK(a.x == doctest::Approx(M / (3.141592653589793 * r)).epsilon(1e-12));
    CHECK(a.y == 0.0);
  }
}

LENSING_TEST_CASE_TEMPLATE("SersicKappa is finite at the centre and far away", Config, lt::AllConfigs) {
  std::vector<double> const xs = {0.05, 0.05 + 1e-13, 0.05, 0.05 + 1e-30, 1e3, 1e6, 0.3, 0.05};
  std::vector<double> const ys = {-0.1, -0.1, -0.1 - 1e-30, -0.1, 1e3, -1e6, -0.1, 2.0};
  for (double n : {0.5, 1.0, 4.0, 8.0}) {
    lt::check_finite<SersicKappa, Config>({0.6, 1.2, n, 0.15, -0.1, 0.05, -0.1}, xs, ys);
    lt::check_finite<SersicKappa, Config>({0.6, 1.2, n, 0.0, 0.0, 0.05, -0.1}, xs, ys);
  }
  lt::check_finite<SersicKappa, Config>({0.6, 1.2, 2.0, 0.999, 0.0, 0.05, -0.1}, xs, ys);  // q_s = 1e-3
}

TEST_CASE("SersicKappa rejects bad parameters") {
  CHECK_THROWS_WITH_AS(SersicKappa<double>({1.0, 0.0, 2.0, 0.1, 0.1, 0.0, 0.0}).check(),
                       "lensing::SersicKappa: R_sersic must be finite and > 0 (got 0)", std::invalid_argument);
  CHECK_THROWS_WITH_AS(SersicKappa<double>({1.0, 1.0, -1.0, 0.1, 0.1, 0.0, 0.0}).check(),
                       "lensing::SersicKappa: n_sersic must be finite and > 0 (got -1)", std::invalid_argument);
  CHECK_THROWS_AS(SersicKappa<double>({1.0, 1.0, 2.0, 0.8, 0.7, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(SersicKappa<double>({std::nan(""), 1.0, 2.0, 0.1, 0.1, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(SersicKappa<double>({1.0, 1.0, 2.0, 0.1, 0.1, 0.0, INFINITY}).check(), std::invalid_argument);
  CHECK_NOTHROW(SersicKappa<double>({1.0, 1.0, 2.0, 0.1, 0.1, 0.0, 0.0}).check());
}
