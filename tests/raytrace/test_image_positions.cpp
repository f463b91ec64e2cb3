#include <lensing/cosmology/flat_lcdm.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/raytrace/critical_curves.hpp>
#include <lensing/raytrace/image_positions.hpp>
#include <lensing/raytrace/time_delays.hpp>

#include <lensing_test.hpp>
#include <reference.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>

namespace {
nlohmann::json const& reference() { return lensing::test::reference_json(); }

template <class Scalar>
using Quad = lensing::Composite<lensing::SIE<Scalar>, lensing::ExternalShear<Scalar>>;

template <class Scalar>
Quad<Scalar> quad_lens() {
  return Quad<Scalar>(lensing::SIE<Scalar>{Scalar(1.0), Scalar(0.12), Scalar(-0.06), Scalar(0.02), Scalar(-0.01)},
                      lensing::ExternalShear<Scalar>{Scalar(0.03), Scalar(0.02), Scalar(0), Scalar(0)});
}

// Point-in-polygon (even-odd) and distance from a point to a closed polyline.
bool inside(std::vector<double> const& px, std::vector<double> const& py, double x, double y) {
  bool in = false;
  for (size_t i = 0, j = px.size() - 1; i < px.size(); j = i++)
    if ((py[i] > y) != (py[j] > y) && x < (px[j] - px[i]) * (y - py[i]) / (py[j] - py[i]) + px[i]) in = !in;
  return in;
}
double distance(std::vector<double> const& px, std::vector<double> const& py, double x, double y) {
  double d = 1e300;
  for (size_t i = 0, j = px.size() - 1; i < px.size(); j = i++) {
    double const ex = px[i] - px[j], ey = py[i] - py[j];
    double t = ((x - px[j]) * ex + (y - py[j]) * ey) / (ex * ex + ey * ey);
    t = std::min(1.0, std::max(0.0, t));
    d = std::min(d, std::hypot(x - px[j] - t * ex, y - py[j] - t * ey));
  }
  return d;
}

template <class Lens>
lensing::CriticalCurve<double> tangential_curve(Lens const& lens) {
  auto const curves = lensing::critical_curves(Kokkos::DefaultHostExecutionSpace(), lens, 2.5, 400);
  for (auto const& c : curves)
    if (c.kind == lensing::CriticalKind::tangential && c.closed) return c;
  throw std::runtime_error("no tangential critical curve");
}
}  // namespace

TEST_CASE("image positions, magnifications and arrival times match lenstronomy (SIE + shear)") {
  using Lens = Quad<double>;
  double worst_pos = 0, worst_dt = 0, worst_t = 0, worst_mu = 0;
  for (auto const& c : reference()["time_delays"]) {
    auto const& p0 = c["lens_params"][0];
    auto const& p1 = c["lens_params"][1];
    Lens const lens(lensing::SIE<double>{p0["theta_E"], p0["e1"], p0["e2"], p0["center_x"], p0["center_y"]},
                    lensing::ExternalShear<double>{p1["gamma1"], p1["gamma2"], p1["ra_0"], p1["dec_0"]});
    lensing::FlatLambdaCDM<double> const cosmo(c["H0"].get<double>(), c["Om0"].get<double>());
    double const zl = c["z_lens"], zs = c["z_source"], bx = c["source_x"], by = c["source_y"];
    lensing::ImageFinder<Lens> const finder(Kokkos::DefaultHostExecutionSpace(), lens, 3.0, 128);
    auto const timed = lensing::time_delays(finder, cosmo, zl, zs, bx, by);
    std::vector<double> const rx = c["image_x"], ry = c["image_y"], rt = c["arrival_time_days"],
                              rmu = c["magnification"], rphi = c["fermat_potential"];
    REQUIRE(timed.size() == rx.size());
    // Match each reference image to the nearest found one.
    std::vector<int> match(rx.size());
    for (size_t k = 0; k < rx.size(); ++k) {
      double best = 1e300;
      for (size_t m = 0; m < timed.size(); ++m) {
        double const d = std::hypot(timed[m].image.x - rx[k], timed[m].image.y - ry[k]);
        if (d < best) best = d, match[k] = int(m);
      }
      worst_pos = std::max(worst_pos, best);
      CHECK(best < 1e-8);
      auto const& t = timed[match[k]];
      // Error model of lenstronomy's magnification: its SIE (an NIE) Hessian is
      // a forward difference of the deflection with step h = 1e-10, so each
      // entry carries the rounding of the two deflections (a few ulp of |alpha|)
      // and of x + h (eps |r| / 2 relative to h, scaling the whole difference):
      //   |dH| <= eps (4 |alpha_SIE| + |r| |H_SIE|) / h,
      // and mu = 1 / det A moves by |dmu / mu| = |mu| |d det A| with
      // |d det A| <= |dH| (|A_xx| + |A_yy| + 2 |A_xy|).  Our image sits |dx| from
      // lenstronomy's: add |mu| |grad det A| |dx| (gradient by central
      // differences of our Hessian).  Bound: twice the sum.
      {
        double const eps = std::numeric_limits<double>::epsilon(), h = 1e-10;
        lensing::SIE<double> const sie{p0["theta_E"], p0["e1"], p0["e2"], p0["center_x"], p0["center_y"]};
        double const x = t.image.x, y = t.image.y;
        auto const a = sie.deflection(x, y);
        auto const hs = sie.hessian(x, y);
        double const r = std::hypot(x - double(p0["center_x"]), y - double(p0["center_y"]));
        double const habs = std::fabs(hs.xx) + std::fabs(hs.xy) + std::fabs(hs.yy);
        double const dh = eps * (4 * std::hypot(a.x, a.y) + r * habs) / h;
        auto detA = [&](double u, double v) {
          auto const H = lens.hessian(u, v);
          return (1 - H.xx) * (1 - H.yy) - H.xy * H.xy;
        };
        auto const H = lens.hessian(x, y);
        double const mu = std::fabs(t.image.magnification), e = 1e-5;
        double const gdet =
            std::hypot((detA(x + e, y) - detA(x - e, y)) / (2 * e), (detA(x, y + e) - detA(x, y - e)) / (2 * e));
        double const tol =
            2 * mu * (dh * (std::fabs(1 - H.xx) + std::fabs(1 - H.yy) + 2 * std::fabs(H.xy)) + gdet * best);
        double const err = std::fabs(t.image.magnification / rmu[k] - 1);
        worst_mu = std::max(worst_mu, err / tol);
        CHECK_MESSAGE(err < tol, "image ", k, ": |mu| = ", mu, ", relative error ", err, " vs model ", tol);
      }
      CHECK(std::fabs(t.fermat_potential - rphi[k]) < 1e-9);
      // lenstronomy's convention is the same (t = D_dt phi / c): absolute and differences.
      worst_t = std::max(worst_t, std::fabs(t.arrival_time - rt[k]));
      CHECK(std::fabs(t.arrival_time - rt[k]) < 1e-6);
    }
    for (size_t k = 1; k < rx.size(); ++k) {
      double const d = (timed[match[k]].arrival_time - timed[match[0]].arrival_time) - (rt[k] - rt[0]);
      worst_dt = std::max(worst_dt, std::fabs(d));
      CHECK(std::fabs(d) < 1e-6);
    }
    // Delays are relative to the first arrival, which has delay 0.
    CHECK(timed.front().delay == 0);
    for (size_t m = 1; m < timed.size(); ++m)
      CHECK(timed[m].delay >= 0);
  }
  MESSAGE("lenstronomy: max |dx| = " << worst_pos << " arcsec, max |dt| = " << worst_t << " d, max |d(delta t)| = "
                                     << worst_dt << " d, worst magnification error / model = " << worst_mu);
}

TEST_CASE("H0 and D_dt from delays invert the forward model") {
  auto const& c = reference()["time_delays"][1];  // any image count >= 2 (a quad on seed 1)
  std::vector<double> const rt = c["arrival_time_days"], rphi = c["fermat_potential"];
  std::vector<double> dphi, dt, sigma;
  for (size_t k = 1; k < rt.size(); ++k) {
    dphi.push_back(rphi[k] - rphi[0]);
    dt.push_back(rt[k] - rt[0]);
    sigma.push_back(0.5 + 0.1 * k);
  }
  double const zl = c["z_lens"], zs = c["z_source"];
  lensing::FlatLambdaCDM<double> const guess(50.0, 0.3);
  auto const fit = lensing::h0_from_delays(guess, zl, zs, dphi, dt, sigma);
  CHECK(std::fabs(fit.value / 70.0 - 1) < 1e-8);
  CHECK(fit.chi2 < 1e-10);
  CHECK(fit.sigma > 0);
  // sigma(H0) from the delay errors: compare with a finite-difference curvature of chi^2.
  auto chi2 = [&](double h0) {
    lensing::FlatLambdaCDM<double> const cc(h0, 0.3);
    double s = 0;
    for (size_t k = 0; k < dt.size(); ++k) {
      double const r = (dt[k] - cc.fermat_to_days(zl, zs, dphi[k])) / sigma[k];
      s += r * r;
    }
    return s;
  };
  double const e = 1e-3, curv = (chi2(70 + e) - 2 * chi2(70) + chi2(70 - e)) / (e * e);
  CHECK(std::fabs(fit.sigma / std::sqrt(2 / curv) - 1) < 1e-4);
  lensing::FlatLambdaCDM<double> const truth(70.0, 0.3);
  auto const ddt = lensing::time_delay_distance_from_delays(dphi, dt, sigma);
  CHECK(std::fabs(ddt.value / truth.time_delay_distance(zl, zs) - 1) < 1e-8);
}

TEST_CASE("h0_from_delays and time_delay_distance_from_delays reject bad input") {
  // Own inputs, independent of how many images a reference draw has.
  lensing::FlatLambdaCDM<double> const guess(50.0, 0.3);
  double const zl = 0.5, zs = 2.0;
  std::vector<double> const dphi = {0.4, 0.7, 1.1}, dt = {10.0, 17.5, 27.5}, sigma = {0.5, 0.6, 0.7};
  CHECK_NOTHROW(lensing::h0_from_delays(guess, zl, zs, dphi, dt, sigma));
  CHECK_THROWS_AS(lensing::h0_from_delays(guess, zl, zs, dphi, {1.0}, sigma), std::invalid_argument);
  CHECK_THROWS_AS(lensing::h0_from_delays(guess, zl, zs, dphi, dt, {0.5, 0.6}), std::invalid_argument);
  CHECK_THROWS_AS(lensing::h0_from_delays(guess, zs, zl, dphi, dt, sigma), std::invalid_argument);
  CHECK_THROWS_AS(lensing::time_delay_distance_from_delays(dphi, {1.0}, sigma), std::invalid_argument);
  CHECK_THROWS_AS(lensing::time_delay_distance_from_delays(dphi, dt, {0.0, 0.0, 0.0}), std::invalid_argument);
}

TEST_CASE("quad lens: four images for 1000 random sources inside the caustic, checked by re-mapping") {
  auto const lens = quad_lens<double>();
  auto const tc = tangential_curve(lens);
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (size_t k = 0; k < tc.beta_x.size(); ++k) {
    x0 = std::min(x0, tc.beta_x[k]), x1 = std::max(x1, tc.beta_x[k]);
    y0 = std::min(y0, tc.beta_y[k]), y1 = std::max(y1, tc.beta_y[k]);
  }
  lensing::ImageFinder<Quad<double>> const finder(Kokkos::DefaultHostExecutionSpace(), lens, 2.5, 100);
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<double> ux(x0, x1), uy(y0, y1);
  int tested = 0, bad_count = 0, bad_map = 0, bad_parity = 0;
  double worst = 0;
  while (tested < 1000) {
    double const bx = ux(rng), by = uy(rng);
    // Inside the caustic polygon by a margin larger than its chord error.
    if (!inside(tc.beta_x, tc.beta_y, bx, by) || distance(tc.beta_x, tc.beta_y, bx, by) < 2e-3) continue;
    ++tested;
    auto const im = finder.find(bx, by);
    bad_count += im.size() != 4;
    int plus = 0;
    for (auto const& i : im) {
      auto const b = lensing::lens_map(lens, i.x, i.y);
      double const r = std::hypot(b.x - bx, b.y - by);
      worst = std::max(worst, r);
      bad_map += !(r <= 1e-12);
      plus += i.parity > 0;
    }
    bad_parity += plus != 2;
  }
  CHECK(bad_count == 0);
  CHECK(bad_map == 0);
  CHECK(bad_parity == 0);
  MESSAGE("quad: 1000 sources, worst re-mapping residual " << worst << " arcsec");

  // Outside the caustic (by a margin): never four images.
  int outside_bad = 0;
  for (int k = 0; k < 300; ++k) {
    double const bx = 1.6 * ux(rng), by = 1.6 * uy(rng);
    if (inside(tc.beta_x, tc.beta_y, bx, by) || distance(tc.beta_x, tc.beta_y, bx, by) < 2e-3) continue;
    auto const im = finder.find(bx, by);
    outside_bad += !(im.size() == 1 || im.size() == 2);
  }
  CHECK(outside_bad == 0);
}

TEST_CASE("near-caustic sources: both images of a fold pair are found") {
  // Sources built to lie just inside a fold: with x_c on the critical curve
  // and e0 the null eigenvector of A there (transverse to the curve at a
  // fold), beta = beta(x_c + eps e0) lies a distance ~eps^2 inside the
  // caustic and has the image x_c + eps e0 and its partner near x_c - eps e0.
  auto const lens = quad_lens<double>();
  auto const tc = tangential_curve(lens);
  lensing::ImageFinder<Quad<double>> const finder(Kokkos::DefaultHostExecutionSpace(), lens, 2.5, 100);
  size_t const n = tc.x.size();
  int tested = 0, bad = 0;
  double min_inside = 1e300;
  for (size_t k = 0; k < n; k += 5) {
    size_t const a = (k + n - 1) % n, b = (k + 1) % n;
    double const tx = tc.x[b] - tc.x[a], ty = tc.y[b] - tc.y[a], tl = std::hypot(tx, ty);
    auto const A = lensing::lens_jacobian(lens, tc.x[k], tc.y[k]);
    // Null vector of the symmetric A (det A = 0): orthogonal to its larger row.
    double ex = -A.a12, ey = A.a11;
    if (std::hypot(A.a21, A.a22) > std::hypot(A.a11, A.a12)) ex = -A.a22, ey = A.a21;
    double const el = std::hypot(ex, ey);
    ex /= el, ey /= el;
    if (std::fabs(ex * tx + ey * ty) / tl > 0.98) continue;  // near a cusp
    for (double eps : {1e-2, 1e-3, 1e-4}) {
      double const px = tc.x[k] + eps * ex, py = tc.y[k] + eps * ey;
      auto const beta = lensing::lens_map(lens, px, py);
      auto const im = finder.find(beta.x, beta.y);
      ++tested;
      bool ok = im.size() == 4;
      int seed_parity = 0;
      for (auto const& i : im) {
        auto const bb = lensing::lens_map(lens, i.x, i.y);
        ok = ok && std::hypot(bb.x - beta.x, bb.y - beta.y) <= 1e-12;
        if (std::hypot(i.x - px, i.y - py) < 1e-9 / eps) seed_parity = i.parity;
      }
      bool has_partner = false;
      for (auto const& i : im)
        has_partner = has_partner || (i.parity == -seed_parity && std::hypot(i.x - tc.x[k], i.y - tc.y[k]) < 3 * eps);
      bool const has_seed = seed_parity != 0;
      min_inside = std::min(min_inside, std::hypot(beta.x - tc.beta_x[k], beta.y - tc.beta_y[k]));
      bad += !(ok && has_seed && has_partner);
    }
  }
  CHECK(tested > 100);
  CHECK(bad == 0);
  MESSAGE("near-caustic: " << tested << " sources inside folds (closest " << min_inside
                           << " arcsec from the caustic point), failures " << bad);
}

TEST_CASE("cored lens: the faint central (fifth) image is found") {
  using Lens = lensing::Composite<lensing::NIE<double>, lensing::ExternalShear<double>>;
  Lens const lens(lensing::NIE<double>{1.0, 0.15, 0.1, 0.03, 0.0, 0.0},
                  lensing::ExternalShear<double>{0.02, -0.01, 0.0, 0.0});
  lensing::ImageFinder<Lens> const finder(Kokkos::DefaultHostExecutionSpace(), lens, 2.5, 100);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-0.03, 0.03);
  int bad = 0;
  double faintest = 1e300;
  for (int k = 0; k < 200; ++k) {
    double const bx = u(rng), by = u(rng);
    auto const im = finder.find(bx, by);
    int plus = 0, minus = 0;
    bool central = false;
    for (auto const& i : im) {
      auto const b = lensing::lens_map(lens, i.x, i.y);
      bad += !(std::hypot(b.x - bx, b.y - by) <= 1e-12);
      (i.parity > 0 ? plus : minus) += 1;
      if (std::hypot(i.x, i.y) < 0.3) {
        central = true;
        faintest = std::min(faintest, std::fabs(i.magnification));
        // A maximum of the Fermat potential: det A > 0 and trace A < 0.
        bad += !(lensing::lens_jacobian(lens, i.x, i.y).trace() < 0);
      }
    }
    // Odd-number theorem for a non-singular lens: N_+ - N_- = 1.
    bad += !(im.size() == 5 && plus - minus == 1 && central);
  }
  CHECK(bad == 0);
  MESSAGE("cored lens: 200 sources, 5 images each; faintest central |mu| = " << faintest);
}

LENSING_TEST_CASE_TEMPLATE("image finding in float and double; bad input throws", Config, lensing::test::AllConfigs) {
  using Scalar = typename Config::scalar;
  using Space = typename Config::execution_space;
  auto const lens = quad_lens<Scalar>();
  lensing::ImageFinder<Quad<Scalar>> const finder(Space(), lens, Scalar(2.5), 80);
  Scalar const tol = lensing::ImageFinder<Quad<Scalar>>::default_tolerance;
  int bad = 0;
  for (int k = 0; k < 20; ++k) {
    Scalar const bx = Scalar(0.002 * (k - 10)), by = Scalar(0.0015 * (k % 7 - 3));
    auto const im = finder.find(bx, by);
    bad += im.size() != 4;
    for (auto const& i : im) {
      auto const b = lensing::lens_map(lens, i.x, i.y);
      bad += !(std::hypot(b.x - bx, b.y - by) <= 2 * tol);
    }
  }
  CHECK(bad == 0);
  CHECK_THROWS_AS(finder.find(std::numeric_limits<Scalar>::quiet_NaN(), Scalar(0)), std::invalid_argument);
  CHECK_THROWS_AS(finder.find(Scalar(0), Scalar(0), Scalar(-1)), std::invalid_argument);
  CHECK_THROWS_AS(lensing::ImageFinder<Quad<Scalar>>(Space(), lens, Scalar(0)), std::invalid_argument);
  CHECK_THROWS_AS(lensing::ImageFinder<Quad<Scalar>>(Space(), lens, Scalar(1), 1), std::invalid_argument);
}
