// Spiral-arm galaxies: the arms keep the flux of the galaxy without them
// (the modulation integrates to 0 over every deprojected ring), an amplitude
// of 0 reproduces galaxies.hpp's galaxy exactly, the light stays >= 0, the
// arms follow the logarithmic spiral, renders are deterministic per
// (seed, index), bad inputs are refused.
#include <lensing/simulate/spiral_galaxies.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

using lensing::simulate::SpiralGalaxy;
using lensing::simulate::SpiralGalaxyModel;

TEST_CASE("spiral arms move light without changing the flux; A = 0 is the plain galaxy") {
  SpiralGalaxyModel<double> m;
  m.galaxy.r_min = 0.2;
  m.galaxy.r_max = 0.3;
  m.galaxy.mean_clumps = 0;
  int checked = 0;
  for (std::uint64_t idx = 0; idx < 6; ++idx) {
    auto const s = m.draw(5, idx);
    REQUIRE(s.amplitude > 0);  // spiral_fraction = 1
    auto const& g = s.galaxy;
    // Light with and without arms, midpoint rule on a 1200^2 grid over the extent box
    // (h ~ 3e-3"). Error model: the smooth parts converge as h^2 (< 1e-5); the sharp
    // truncation ring of the disk adds O(h / R_t) of the light near it, a few 1e-4 of
    // the total, modulated or not: tolerance 2e-3 relative.
    double const e = double(g.extent);
    int const n = 1200;
    double const h = 2 * e / n;
    double with = 0, without = 0, min_sb = 1e300;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        double const x = g.center_x - e + (j + 0.5) * h, y = g.center_y - e + (i + 0.5) * h;
        double const a = s.surface_brightness(x, y), b = g.surface_brightness(x, y);
        with += a;
        without += b;
        min_sb = std::min(min_sb, a);
      }
    INFO("galaxy " << idx << ": m = " << s.arms << ", A = " << s.amplitude);
    CHECK(with * h * h == doctest::Approx(without * h * h).epsilon(2e-3));
    CHECK(min_sb >= 0);
    ++checked;
  }
  CHECK(checked == 6);
  // A = 0: exactly the galaxy of galaxies.hpp drawn with the same (seed, index).
  SpiralGalaxyModel<double> none = m;
  none.spiral_fraction = 0;
  auto const s0 = none.draw(5, 3);
  auto const g0 = m.galaxy.draw(5, 3);
  for (double x : {-0.3, 0.0, 0.07, 0.25})
    for (double y : {-0.2, 0.01, 0.3})
      CHECK(s0.surface_brightness(x, y) == g0.surface_brightness(x, y));
}

TEST_CASE("spiral arms: the ridge follows the logarithmic spiral of the pitch angle") {
  // A face-on disk (q = 1) with 2 arms, phase 0: on the ridge m (theta - ln(R/R_d)/tan p) = 2 pi k
  // the modulation is +A(R); half an arm period away, -A(R).
  SpiralGalaxy<double> s;
  s.galaxy = SpiralGalaxyModel<double>().galaxy.draw(1, 0);
  auto& d = s.galaxy.disk;
  d.q = 1;
  d.cos_phi = 1;
  d.sin_phi = 0;
  s.arms = 2;
  s.amplitude = 0.8;
  double const pitch = 20 * M_PI / 180;
  s.inv_tan_pitch = 1 / std::tan(pitch);
  s.phase = 0;
  s.inv_core2 = 1e6;  // no taper at these radii (R >= 0.05")
  for (double r : {0.5, 1.0, 2.0}) {
    double const R = r * double(d.r_e), th = std::log(r) / std::tan(pitch);
    double const x = d.x0 + R * std::cos(th), y = d.y0 + R * std::sin(th);
    CHECK(s.arm_modulation(x, y) == doctest::Approx(0.8).epsilon(1e-5));
    double const th2 = th + M_PI / 2;  // half the angular period 2 pi / m
    CHECK(s.arm_modulation(d.x0 + R * std::cos(th2), d.y0 + R * std::sin(th2)) == doctest::Approx(-0.8).epsilon(1e-5));
  }
  // Inclined (q = 0.5, position angle 0.7): the spiral lies in the deprojected
  // frame (u, v) = (sqrt(q) x', y' / sqrt(q)), so a ridge point there maps to
  // x' = u / sqrt(q), y' = v sqrt(q), rotated by the position angle.
  double const q = 0.5, phi = 0.7;
  d.q = q;
  d.cos_phi = std::cos(phi);
  d.sin_phi = std::sin(phi);
  for (double r : {0.5, 1.0, 2.0}) {
    double const R = r * double(d.r_e), th = std::log(r) / std::tan(pitch) + 0.3;
    double const xp = R * std::cos(th) / std::sqrt(q), yp = R * std::sin(th) * std::sqrt(q);
    double const x = d.x0 + std::cos(phi) * xp - std::sin(phi) * yp, y = d.y0 + std::sin(phi) * xp + std::cos(phi) * yp;
    CHECK(s.arm_modulation(x, y) == doctest::Approx(0.8 * std::cos(2 * 0.3)).epsilon(1e-5));
  }
}

LENSING_TEST_CASE_TEMPLATE("rendered spiral galaxies: deterministic per (seed, index), arms visible", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  Space space;
  SpiralGalaxyModel<Scalar> m;
  m.galaxy.r_min = 0.2;
  m.galaxy.r_max = 0.3;
  m.galaxy.bt_max = 0.2;
  m.galaxy.n_max = 3;
  int const n = 6, np = 48;
  Scalar const dx = Scalar(0.05);
  lensing::View3D<Scalar, Mem> a("a", n, np, np), b("b", n - 2, np, np), plain("plain", n, np, np);
  lensing::View1D<SpiralGalaxy<Scalar>, Mem> ga("ga", n), gb("gb", n - 2);
  lensing::simulate::render_spiral_galaxies(space, m, a, dx, ga, 11, 0, 3);
  lensing::simulate::render_spiral_galaxies(space, m, b, dx, gb, 11, 2, 3);  // images 2..5 again
  SpiralGalaxyModel<Scalar> flat = m;
  flat.spiral_fraction = 0;
  lensing::simulate::render_spiral_galaxies(space, flat, plain, dx, ga, 11, 0, 3);
  space.fence();
  auto const ha = lensing::test::host_values(a), hb = lensing::test::host_values(b),
             hp = lensing::test::host_values(plain);
  long const per = long(np) * np;
  int differ = 0, arms_off = 0;
  for (int k = 0; k < n - 2; ++k)
    for (long p = 0; p < per; ++p)
      differ += ha[(k + 2) * per + p] != hb[k * per + p];
  CHECK(differ == 0);
  // Every spiral galaxy differs from its plain version by more than 1 % of its
  // peak somewhere (A >= 0.4 of a disk carrying >= 80 % of the light).
  for (int k = 0; k < n; ++k) {
    double peak = 0, dmax = 0;
    for (long p = 0; p < per; ++p) {
      peak = std::max(peak, hp[k * per + p]);
      dmax = std::max(dmax, std::fabs(ha[k * per + p] - hp[k * per + p]));
    }
    arms_off += dmax < 0.01 * peak;
  }
  CHECK(arms_off == 0);
}

TEST_CASE("spiral galaxies: bad inputs are refused") {
  SpiralGalaxyModel<double> m;
  lensing::View3D<double, Kokkos::HostSpace> st("st", 1, 8, 8);
  lensing::View1D<SpiralGalaxy<double>, Kokkos::HostSpace> g("g", 1);
  Kokkos::DefaultHostExecutionSpace host;
  auto bad = m;
  bad.amplitude_max = 1.5;
  CHECK_THROWS_AS(lensing::simulate::render_spiral_galaxies(host, bad, st, 0.1, g, 1), std::invalid_argument);
  bad = m;
  bad.arms_min = 0;
  CHECK_THROWS_AS(lensing::simulate::render_spiral_galaxies(host, bad, st, 0.1, g, 1), std::invalid_argument);
  bad = m;
  bad.pitch_max = 90;
  CHECK_THROWS_AS(lensing::simulate::render_spiral_galaxies(host, bad, st, 0.1, g, 1), std::invalid_argument);
  CHECK_THROWS_AS(lensing::simulate::render_spiral_galaxies(host, m, st, 0.0, g, 1), std::invalid_argument);
  CHECK_THROWS_AS(lensing::simulate::render_spiral_galaxies(host, m, st, 0.1, g, 1, 0, 0), std::invalid_argument);
}
