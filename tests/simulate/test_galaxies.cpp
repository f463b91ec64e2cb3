// Procedural galaxies: Sérsic normalisation and b_n against direct
// integration, flux of rendered stamps, centring, determinism, bad inputs.
#include <lensing/simulate/galaxies.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

using lensing::simulate::Galaxy;
using lensing::simulate::GalaxyModel;
using lensing::simulate::SersicComponent;

TEST_CASE("Sersic b_n halves the light and the truncated normalisation is exact") {
  for (double n : {0.5, 1.0, 2.0, 3.3, 4.0, 6.0, 8.0}) {
    double const b = lensing::simulate::detail::sersic_bn(n);
    // Half of the untruncated light inside R_e: P(2n, b_n) = 1/2.
    CHECK(std::fabs(lensing::simulate::detail::gamma_p_series(2 * n, b) - 0.5) < 1e-12);
    // Radial integral of I(R) 2 pi R dR (the Jacobian of R = sqrt(q x'^2 + y'^2/q)
    // is 1), substituting R = R_e t^n so that the integrand is smooth.
    double const r_e = 0.3, tf = 4.0, flux = 2.5;
    auto const c = SersicComponent<double>::make(flux, r_e, n, 0.6, 0.4, 0.1, -0.2, tf);
    int const m = 200000;
    double const t_max = std::pow(tf, 1 / n);
    double sum = 0;
    for (int i = 0; i < m; ++i) {
      double const t = (i + 0.5) * t_max / m;
      double const R = r_e * std::pow(t, n);
      double const dR = r_e * n * std::pow(t, n - 1);
      // Evaluate along the major axis of the component at radius R: x' = R / sqrt(q).
      double const xp = R / std::sqrt(0.6);
      double const x = 0.1 + std::cos(0.4) * xp, y = -0.2 + std::sin(0.4) * xp;
      sum += c.surface_brightness(x, y) * 2 * M_PI * R * dR;
    }
    sum *= t_max / m;
    INFO("n = " << n);
    CHECK(sum == doctest::Approx(flux).epsilon(1e-6));
  }
  // The elliptical radius: a brute-force 2-D sum over an exponential disk with q = 0.4.
  auto const d = SersicComponent<double>::make(1.0, 0.5, 1.0, 0.4, 1.1, 0.0, 0.0, 5.0);
  int const m = 1500;
  double const L = 4.2, h = 2 * L / m;
  double sum = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < m; ++j)
      sum += d.surface_brightness(-L + (j + 0.5) * h, -L + (i + 0.5) * h);
  CHECK(sum * h * h == doctest::Approx(1.0).epsilon(2e-3));  // sharp truncation edge on a grid
}

namespace {
struct StampStats {
  double flux, cx, cy;
};
}  // namespace

LENSING_TEST_CASE_TEMPLATE("rendered galaxies: flux, centring, extent, determinism", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  Space space;
  GalaxyModel<Scalar> model;
  model.r_min = 0.15;
  model.r_max = 0.3;
  model.center_x = 0.1;
  model.center_y = -0.15;
  model.offset = 0.2;
  model.flux = 3;
  int const n = 24, np = 128;
  Scalar const dx = Scalar(0.08);
  lensing::View3D<Scalar, Mem> stamps("stamps", n, np, np);
  lensing::View1D<Galaxy<Scalar>, Mem> gals("gals", n);
  lensing::simulate::render_galaxies(space, model, stamps, dx, gals, 77, 0, 6);
  space.fence();
  auto const hs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), stamps);
  auto const hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gals);
  double const half = 0.5 * np * double(dx);
  int inside = 0, flux_bad = 0, centroid_bad = 0, outside_light = 0, negative = 0, with_clumps = 0;
  double worst_flux = 0, worst_centroid = 0;
  for (int b = 0; b < n; ++b) {
    auto const& g = hg(b);
    with_clumps += g.num_clumps > 0;
    double sum = 0, sx = 0, sy = 0;
    for (int iy = 0; iy < np; ++iy)
      for (int ix = 0; ix < np; ++ix) {
        double const v = hs(b, iy, ix);
        double const x = (ix - 0.5 * (np - 1)) * double(dx), y = (iy - 0.5 * (np - 1)) * double(dx);
        negative += v < 0;
        sum += v;
        sx += v * x;
        sy += v * y;
        // No light beyond the galaxy's stated extent (plus a pixel diagonal).
        if (v != 0 &&
            (std::fabs(x - g.center_x) > g.extent + double(dx) || std::fabs(y - g.center_y) > g.extent + double(dx)))
          ++outside_light;
      }
    bool const fits = std::fabs(g.center_x) + g.extent < half && std::fabs(g.center_y) + g.extent < half;
    if (!fits) continue;
    ++inside;
    double const flux = sum * double(dx) * double(dx);
    worst_flux = std::fmax(worst_flux, std::fabs(flux - 3) / 3);
    // Sub-pixel integration of the cuspy bulge (k = 6 on 0.08" pixels, bulge
    // R_e >= 0.03"): measured < 0.5%.
    flux_bad += std::fabs(flux - 3) > 1e-2 * 3;
    // Analytic centroid: bulge and disk are symmetric about the centre.
    double ax = g.center_x * g.flux, ay = g.center_y * g.flux;
    for (int k = 0; k < g.num_clumps; ++k) {
      ax += g.clumps[k].flux * (g.clumps[k].x0 - g.center_x);
      ay += g.clumps[k].flux * (g.clumps[k].y0 - g.center_y);
    }
    ax /= g.flux;
    ay /= g.flux;
    double const e = std::hypot(sx / sum - ax, sy / sum - ay);
    worst_centroid = std::fmax(worst_centroid, e);
    centroid_bad += e > 0.1 * double(dx);
    // The centre lies within the offset box around the model centre.
    centroid_bad += std::fabs(g.center_x - 0.1) > 0.2 + 1e-6 || std::fabs(g.center_y + 0.15) > 0.2 + 1e-6;
  }
  INFO("worst relative flux error " << worst_flux << ", worst centroid error " << worst_centroid << " arcsec over "
                                    << inside << " galaxies");
  CHECK(inside >= n / 2);
  CHECK(with_clumps >= n / 2);
  CHECK(flux_bad == 0);
  CHECK(centroid_bad == 0);
  CHECK(outside_light == 0);
  CHECK(negative == 0);
  // The analytic profile equals the stamp at a pixel (k x k mean of the same function).
  {
    auto const& g = hg(3);
    double s = 0;
    int const iy = np / 2 + 3, ix = np / 2 - 2, k = 6;
    double const xc = (ix - 0.5 * (np - 1)) * double(dx), yc = (iy - 0.5 * (np - 1)) * double(dx);
    for (int a = 0; a < k; ++a)
      for (int c = 0; c < k; ++c)
        s += g.surface_brightness(Scalar(xc + ((c + 0.5) / k - 0.5) * double(dx)),
                                  Scalar(yc + ((a + 0.5) / k - 0.5) * double(dx)));
    CHECK(double(hs(3, iy, ix)) == doctest::Approx(s / (k * k)).epsilon(lensing::test::tolerance<Scalar> * 100));
  }
  // Determinism: again, in chunks, on Serial; draw() on the host gives the same galaxy.
  lensing::View3D<Scalar, Mem> again("again", n - 5, np, np);
  lensing::View1D<Galaxy<Scalar>, Mem> gals2("gals2", n - 5);
  lensing::simulate::render_galaxies(space, model, again, dx, gals2, 77, 5, 6);
  space.fence();
  auto const ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), again);
  long differ = 0;
  for (int b = 0; b < n - 5; ++b)
    for (int iy = 0; iy < np; ++iy)
      for (int ix = 0; ix < np; ++ix)
        differ += ha(b, iy, ix) != hs(b + 5, iy, ix);
  CHECK(differ == 0);
#if defined(KOKKOS_ENABLE_SERIAL)
  lensing::View3D<Scalar, Kokkos::HostSpace> serial("serial", 2, np, np);
  lensing::View1D<Galaxy<Scalar>, Kokkos::HostSpace> gs("gs", 2);
  lensing::simulate::render_galaxies(Kokkos::Serial(), model, serial, dx, gs, 77, 0, 6);
  long differ_serial = 0;
  for (int b = 0; b < 2; ++b)
    for (int iy = 0; iy < np; ++iy)
      for (int ix = 0; ix < np; ++ix)
        differ_serial += serial(b, iy, ix) != hs(b, iy, ix);
  CHECK(differ_serial == 0);
#endif
  auto const host_galaxy = model.draw(77, 3);
  CHECK(host_galaxy.num_clumps == hg(3).num_clumps);
  CHECK(host_galaxy.disk.r_e == hg(3).disk.r_e);
  CHECK(host_galaxy.center_x == hg(3).center_x);
  // Another seed: another galaxy.
  CHECK(model.draw(78, 3).disk.r_e != host_galaxy.disk.r_e);
}

LENSING_TEST_CASE_TEMPLATE("galaxy population statistics follow the model", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  // Draw 4000 galaxies (1x1 stamps: only the draws matter) and check the
  // clump count (Poisson(3) capped at 8) and log-uniform disk sizes.
  GalaxyModel<double> model;
  int const n = 4000;
  lensing::View3D<double, Mem> stamps("stamps", n, 1, 1);
  lensing::View1D<Galaxy<double>, Mem> gals("gals", n);
  lensing::simulate::render_galaxies(Space(), model, stamps, 0.05, gals, 5, 0, 1);
  auto const hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gals);
  double mean_clumps = 0, mean_log_r = 0;
  for (int b = 0; b < n; ++b) {
    mean_clumps += hg(b).num_clumps;
    mean_log_r += std::log(double(hg(b).disk.r_e));
    CHECK(hg(b).disk.q >= 0.15 - 1e-12);
    CHECK(hg(b).disk.q <= 1 + 1e-12);
  }
  mean_clumps /= n;
  mean_log_r /= n;
  // E[min(N, 8)] for N ~ Poisson(3) = 3 - sum_{k>8} (k - 8) p(k) = 2.994710; sd 1.714.
  CHECK(std::fabs(mean_clumps - 2.994710) < 5 * 1.714 / std::sqrt(double(n)));
  // log r ~ U(log 0.1, log 0.5): mean, sd = log 5 / sqrt 12.
  double const lm = 0.5 * (std::log(0.1) + std::log(0.5)), ls = std::log(5.0) / std::sqrt(12.0);
  CHECK(std::fabs(mean_log_r - lm) < 5 * ls / std::sqrt(double(n)));
}

LENSING_TEST_CASE_TEMPLATE("galaxy rendering rejects bad inputs", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  lensing::View3D<double, Mem> stamps("stamps", 3, 8, 8);
  lensing::View1D<Galaxy<double>, Mem> gals("gals", 3), short_gals("short", 2);
  GalaxyModel<double> model;
  double const nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(lensing::simulate::render_galaxies(space, model, stamps, 0.0, gals, 1),
                       doctest::Contains("lensing::simulate::render_galaxies: pixel_scale"), std::invalid_argument);
  CHECK_THROWS_AS(lensing::simulate::render_galaxies(space, model, stamps, nan, gals, 1), std::invalid_argument);
  CHECK_THROWS_AS(lensing::simulate::render_galaxies(space, model, stamps, 0.05, short_gals, 1), std::invalid_argument);
  CHECK_THROWS_AS(lensing::simulate::render_galaxies(space, model, stamps, 0.05, gals, 1, 0, 0), std::invalid_argument);
  auto bad = model;
  bad.flux = nan;
  CHECK_THROWS_AS(lensing::simulate::render_galaxies(space, bad, stamps, 0.05, gals, 1), std::invalid_argument);
  bad = model;
  bad.r_max = 0.01;
  CHECK_THROWS_AS(lensing::simulate::render_galaxies(space, bad, stamps, 0.05, gals, 1), std::invalid_argument);
  bad = model;
  bad.n_max = 20;
  CHECK_THROWS_AS(lensing::simulate::render_galaxies(space, bad, stamps, 0.05, gals, 1), std::invalid_argument);
  bad = model;
  bad.q0 = 0;
  CHECK_THROWS_AS(lensing::simulate::render_galaxies(space, bad, stamps, 0.05, gals, 1), std::invalid_argument);
}
