#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/mass_sheet.hpp>
#include <lensing/profiles/sis.hpp>

#include "profile_checks.hpp"

using lensing::ExternalShear;
using lensing::MassSheet;
namespace lt = lensing::test;

LENSING_TEST_CASE_TEMPLATE("ExternalShear matches lenstronomy SHEAR", Config, lt::AllConfigs) {
  lt::check_reference<ExternalShear, Config>("SHEAR");
}

LENSING_TEST_CASE_TEMPLATE("MassSheet matches lenstronomy CONVERGENCE", Config, lt::AllConfigs) {
  lt::check_reference<MassSheet, Config>("CONVERGENCE");
}

TEST_CASE("ExternalShear and MassSheet identities and packing") {
  std::vector<double> xs, ys;
  lt::spiral_points(0.3, -0.2, 20, xs, ys);
  for (auto const& theta : std::vector<std::vector<double>>{{0.05, -0.03, 0.3, -0.2}, {-0.1, 0.2, 0.0, 0.0}}) {
    lt::check_packing<ExternalShear>(theta);
    lt::check_identities<ExternalShear>(theta, xs, ys, 1e-9);
  }
  for (auto const& theta : std::vector<std::vector<double>>{{0.12, 0.3, -0.2}, {-0.05, 0.0, 0.0}}) {
    lt::check_packing<MassSheet>(theta);
    lt::check_identities<MassSheet>(theta, xs, ys, 1e-9);
  }
}

LENSING_TEST_CASE_TEMPLATE("ExternalShear and MassSheet VJPs match finite differences", Config, lt::AllConfigs) {
  std::vector<double> xs, ys;
  lt::spiral_points(0.3, -0.2, 20, xs, ys);
  lt::check_vjps<ExternalShear, Config>({0.05, -0.03, 0.1, 0.25}, xs, ys);
  lt::check_vjps<MassSheet, Config>({0.12, 0.1, 0.25}, xs, ys);
  lt::check_vjps<MassSheet, Config>({-0.3, -1.0, 0.5}, xs, ys);
}

LENSING_TEST_CASE_TEMPLATE("ExternalShear and MassSheet are finite everywhere", Config, lt::AllConfigs) {
  std::vector<double> const xs = {0.0, 1e-30, 0.0, 1e3, -1e3};
  std::vector<double> const ys = {0.0, 0.0, -1e-310, 1e3, 2.0};
  lt::check_finite<ExternalShear, Config>({0.05, -0.03, 0.0, 0.0}, xs, ys);
  lt::check_finite<MassSheet, Config>({0.12, 0.0, 0.0}, xs, ys);
}

TEST_CASE("ExternalShear: kappa = 0, shear (gamma1, gamma2), magnification 1/(1 - gamma^2)") {
  double const g1 = 0.07, g2 = -0.11;
  ExternalShear<double> const s{g1, g2, 0.4, -0.3};
  std::vector<double> xs, ys;
  lt::spiral_points(0.4, -0.3, 15, xs, ys);
  for (size_t i = 0; i < xs.size(); ++i) {
    double const x = xs[i], y = ys[i], dx = x - 0.4, dy = y + 0.3;
    auto const h = s.hessian(x, y);
    CHECK(s.convergence(x, y) == 0.0);
    CHECK(h.convergence() == 0.0);
    CHECK(0.5 * (h.xx - h.yy) == doctest::Approx(g1).epsilon(1e-15));
    CHECK(h.xy == g2);
    CHECK(h.magnification() == doctest::Approx(1.0 / (1.0 - g1 * g1 - g2 * g2)).epsilon(1e-14));
    // psi = (gamma1 cos 2phi + gamma2 sin 2phi) r^2 / 2 in polar form.
    double const r = std::hypot(dx, dy), ph = std::atan2(dy, dx);
    CHECK(s.potential(x, y) == doctest::Approx(0.5 * r * r * (g1 * std::cos(2 * ph) + g2 * std::sin(2 * ph))));
  }
  // Zero deflection at (ra_0, dec_0).
  CHECK(s.deflection(0.4, -0.3).x == 0.0);
  CHECK(s.deflection(0.4, -0.3).y == 0.0);
}

TEST_CASE("MassSheet: alpha = kappa0 (x - ra_0, y - dec_0), kappa = kappa0") {
  double const k0 = 0.23;
  MassSheet<double> const m{k0, -0.4, 0.7};
  std::vector<double> xs, ys;
  lt::spiral_points(0.1, 0.2, 15, xs, ys);
  for (size_t i = 0; i < xs.size(); ++i) {
    double const x = xs[i], y = ys[i];
    auto const a = m.deflection(x, y);
    CHECK(a.x == doctest::Approx(k0 * (x + 0.4)).epsilon(1e-15));
    CHECK(a.y == doctest::Approx(k0 * (y - 0.7)).epsilon(1e-15));
    CHECK(m.convergence(x, y) == k0);
    auto const h = m.hessian(x, y);
    CHECK(h.xx == k0);
    CHECK(h.yy == k0);
    CHECK(h.xy == 0.0);
    CHECK(h.magnification() == doctest::Approx(1.0 / ((1 - k0) * (1 - k0))).epsilon(1e-14));
  }
}

// Mass-sheet degeneracy.  With the SIS and the sheet both centred on c, the
// lens  L = SIS(theta_E (1 - k0)) + sheet(k0)  has
//   alpha_L(x) = (1 - k0) alpha_SIS(x) + k0 (x - c), so
//   beta_L(x) - c = x - c - alpha_L(x) = (1 - k0) (beta_SIS(x) - c),
// i.e. the same images for a source plane scaled by (1 - k0) about c; also
//   kappa_L = (1 - k0) kappa_SIS + k0,  mu_L = mu_SIS / (1 - k0)^2,
// and for a source beta_L = c + (1 - k0)(beta - c) the Fermat potential
// tau(x) = |x - beta|^2/2 - psi(x) obeys
//   tau_L(x) = (1 - k0) tau_SIS(x; beta) + const(beta)
// (expand |x - c - (1 - k0)(beta - c)|^2 / 2 - (1 - k0) psi_SIS - k0 |x - c|^2 / 2),
// so time-delay differences scale by (1 - k0).
LENSING_TEST_CASE_TEMPLATE("Mass-sheet degeneracy with an SIS", Config, lt::AllConfigs) {
  using Scalar = typename Config::scalar;
  using Space = typename Config::execution_space;
  bool const is_float = std::is_same<Scalar, float>::value;
  double const tol = is_float ? 2e-6 : 1e-14;
  double const te = 1.3, cx = 0.15, cy = -0.25;
  std::vector<double> xs, ys;
  lt::spiral_points(cx, cy, 25, xs, ys);
  for (double k0 : {0.2, -0.15, 0.6}) {
    lensing::SIS<Scalar> const sis{Scalar(te), Scalar(cx), Scalar(cy)};
    auto const lens = lensing::make_composite(lensing::SIS<Scalar>{Scalar(te * (1 - k0)), Scalar(cx), Scalar(cy)},
                                              MassSheet<Scalar>{Scalar(k0), Scalar(cx), Scalar(cy)});
    lens.check();
    auto const vs = lt::evaluate_profile<Space>(sis, xs, ys);
    auto const vl = lt::evaluate_profile<Space>(lens, xs, ys);
    double const beta_x = 0.1, beta_y = 0.05;  // a source for the SIS
    double const blx = cx + (1 - k0) * (beta_x - cx), bly = cy + (1 - k0) * (beta_y - cy);
    std::vector<double> dtau;
    for (size_t i = 0; i < xs.size(); ++i) {
      double const x = xs[i], y = ys[i];
      // Lens equation.
      double const bsx = x - vs.ax[i], bsy = y - vs.ay[i];
      double const blx_i = x - vl.ax[i], bly_i = y - vl.ay[i];
      double const scale = std::fabs(x - cx) + std::fabs(y - cy) + te;
      CHECK(std::fabs((blx_i - cx) - (1 - k0) * (bsx - cx)) <= tol * scale);
      CHECK(std::fabs((bly_i - cy) - (1 - k0) * (bsy - cy)) <= tol * scale);
      // Convergence and magnification.
      CHECK(std::fabs(vl.kappa[i] - ((1 - k0) * vs.kappa[i] + k0)) <= tol * (std::fabs(vl.kappa[i]) + 1));
      lensing::Hessian<double> const hs{vs.hxx[i], vs.hxy[i], vs.hyy[i]}, hl{vl.hxx[i], vl.hxy[i], vl.hyy[i]};
      // Compared as 1/mu (det(I - H)), which stays well conditioned near the critical curve.
      double const det = (1 - k0) * (1 - k0) / hs.magnification();
      double const hscale = std::fabs(hs.xx) + std::fabs(hs.xy) + std::fabs(hs.yy) + 1;
      CHECK(std::fabs(1 / hl.magnification() - det) <= tol * hscale * hscale);
      // Fermat potential difference to the first point.
      double const tau_s = 0.5 * ((x - beta_x) * (x - beta_x) + (y - beta_y) * (y - beta_y)) - vs.psi[i];
      double const tau_l = 0.5 * ((x - blx) * (x - blx) + (y - bly) * (y - bly)) - vl.psi[i];
      dtau.push_back(tau_l - (1 - k0) * tau_s);
      CHECK(std::fabs(dtau[i] - dtau[0]) <= (is_float ? 1e-5 : 1e-13) * (scale * scale));
    }
  }
}

TEST_CASE("ExternalShear and MassSheet reject bad parameters") {
  double const nan = std::nan("");
  CHECK_THROWS_WITH_AS(ExternalShear<double>({nan, 0.0, 0.0, 0.0}).check(),
                       "lensing::ExternalShear: gamma1 must be finite (got nan)", std::invalid_argument);
  CHECK_THROWS_AS(ExternalShear<double>({0.0, nan, 0.0, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(ExternalShear<double>({0.0, 0.0, nan, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(ExternalShear<double>({0.0, 0.0, 0.0, HUGE_VAL}).check(), std::invalid_argument);
  CHECK_NOTHROW(ExternalShear<double>({0.0, 0.0, 0.0, 0.0}).check());
  CHECK_THROWS_WITH_AS(MassSheet<double>({nan, 0.0, 0.0}).check(), "lensing::MassSheet: kappa must be finite (got nan)",
                       std::invalid_argument);
  CHECK_THROWS_AS(MassSheet<double>({0.1, nan, 0.0}).check(), std::invalid_argument);
  CHECK_THROWS_AS(MassSheet<float>({0.1f, 0.0f, -HUGE_VALF}).check(), std::invalid_argument);
  CHECK_NOTHROW(MassSheet<double>({-0.2, 1.0, 0.0}).check());
}
