#include <lensing/deflection/convergence_deflection.hpp>
#include <lensing/deflection/interpolated_lens.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

#include <lensing_test.hpp>

#include <cmath>

using lensing::PixelGrid;

namespace {
// An elliptical pseudo-Jaffe: an NIE with a small core minus one with a large
// core (kappa ~ r^-3 outside the large core).  A lens for the maps, not a
// MassProfile: its negative-mass term is no valid NIE on its own (the entry
// points validate profiles, and NIE::check refuses theta_E < 0), so the
// difference is taken here.
struct EllipticalPseudoJaffe {
  using scalar_type = double;
  lensing::NIE<double> inner, outer;
  KOKKOS_INLINE_FUNCTION lensing::Vec2<double> deflection(double x, double y) const {
    return inner.deflection(x, y) - outer.deflection(x, y);
  }
  KOKKOS_INLINE_FUNCTION double convergence(double x, double y) const {
    return inner.convergence(x, y) - outer.convergence(x, y);
  }
  KOKKOS_INLINE_FUNCTION double potential(double x, double y) const {
    return inner.potential(x, y) - outer.potential(x, y);
  }
  KOKKOS_INLINE_FUNCTION lensing::Hessian<double> hessian(double x, double y) const {
    auto const a = inner.hessian(x, y), b = outer.hessian(x, y);
    return {a.xx - b.xx, a.xy - b.xy, a.yy - b.yy};
  }
};
}  // namespace

TEST_CASE("pixel-integrated Poisson kernels") {
  double const d = 0.1;
  // Far from the pixel the kernel tends to the point-mass kernel d^2 x / (pi r^2).
  double const X = 3.0, Y = -1.7, r2 = X * X + Y * Y;
  CHECK(lensing::detail::pixel_kernel_x(X, Y, d) == doctest::Approx(d * d * X / (M_PI * r2)).epsilon(1e-3));
  CHECK(lensing::detail::pixel_kernel_potential(X, Y, d) ==
        doctest::Approx(d * d * 0.5 * std::log(r2) / M_PI).epsilon(1e-3));
  // Finite and antisymmetric at the pixel itself; potential kernel finite.
  CHECK(lensing::detail::pixel_kernel_x(0.0, 0.0, d) == doctest::Approx(0.0).scale(1));
  CHECK(std::isfinite(lensing::detail::pixel_kernel_potential(0.0, 0.0, d)));
  CHECK(lensing::detail::pixel_kernel_x(-X, Y, d) == doctest::Approx(-lensing::detail::pixel_kernel_x(X, Y, d)));
  // Midpoint-rule check of the x-kernel on a neighbouring pixel.
  int const m = 400;
  double s = 0;
  for (int a = 0; a < m; ++a)
    for (int b = 0; b < m; ++b) {
      double const u = d + (a + 0.5 - m / 2.0) * d / m, v = 0.5 * d + (b + 0.5 - m / 2.0) * d / m;
      s += u / (u * u + v * v) * (d / m) * (d / m);
    }
  CHECK(lensing::detail::pixel_kernel_x(d, 0.5 * d, d) == doctest::Approx(s / M_PI).epsilon(1e-5));
}

LENSING_TEST_CASE_TEMPLATE("FFT deflection equals direct summation", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  PixelGrid<Scalar> const grid(13, 10, Scalar(0.2));
  lensing::View2D<Scalar, Mem> kappa("kappa", 10, 13), ax("ax", 10, 13), ay("ay", 10, 13), dx("dx", 10, 13),
      dy("dy", 10, 13);
  auto hk = Kokkos::create_mirror_view(kappa);
  for (int iy = 0; iy < 10; ++iy)
    for (int ix = 0; ix < 13; ++ix)
      hk(iy, ix) = Scalar(0.3 + 0.2 * std::sin(0.9 * ix) * std::cos(0.5 * iy));
  Kokkos::deep_copy(kappa, hk);
  Space space;
  lensing::ConvergenceDeflection<Scalar, Mem> fft(space, grid);
  fft.deflection(space, kappa, ax, ay);
  lensing::convergence_deflection_direct(space, grid, kappa, dx, dy);
  space.fence();
  auto hax = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ax);
  auto hay = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ay);
  auto hdx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dx);
  auto hdy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dy);
  double worst = 0, scale = 0;
  for (int iy = 0; iy < 10; ++iy)
    for (int ix = 0; ix < 13; ++ix) {
      worst =
          std::max({worst, std::fabs(double(hax(iy, ix) - hdx(iy, ix))), std::fabs(double(hay(iy, ix) - hdy(iy, ix)))});
      scale = std::max({scale, std::fabs(double(hdx(iy, ix))), std::fabs(double(hdy(iy, ix)))});
    }
  double const tol = std::is_same<Scalar, float>::value ? 1e-5 : 1e-12;
  CHECK_MESSAGE(worst <= tol * scale, "FFT vs direct: ", worst, " of ", scale);
}

LENSING_TEST_CASE_TEMPLATE("FFT deflection of a sampled convergence map matches the analytic one", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  // kappa of an elliptical pseudo-Jaffe: an NIE with core 0.1" minus one with
  // core 0.6" (kappa ~ r^-3 outside 0.6", so the mass outside the 6.4" map
  // deflects little), sampled on 128^2 pixels of 0.05" as pixel averages over
  // 8x8 sub-samples.  Analytic deflection: the difference of the two NIEs.
  int const n = 128, k = 8;
  PixelGrid<double> const grid = PixelGrid<double>::square(n, 0.05);
  PixelGrid<double> const fine = PixelGrid<double>::square(n, 0.05, k);
  EllipticalPseudoJaffe const lens{lensing::NIE<double>{1.0, 0.1, 0.1, -0.05, 0.0, 0.0},
                                   lensing::NIE<double>{1.0, 0.6, 0.1, -0.05, 0.0, 0.0}};
  lensing::View2D<double, Mem> kf("kf", n * k, n * k), kappa("kappa", n, n), ax("ax", n, n), ay("ay", n, n),
      psi("psi", n, n), tx("tx", n, n), ty("ty", n, n);
  Space space;
  lensing::convergence_map(space, lens, fine, kf);
  Kokkos::parallel_for(
      "average", Kokkos::MDRangePolicy<Space, Kokkos::Rank<2>>(space, {0, 0}, {n, n}), KOKKOS_LAMBDA(int iy, int ix) {
        double s = 0;
        for (int a = 0; a < k; ++a)
          for (int b = 0; b < k; ++b)
            s += kf(iy * k + a, ix * k + b);
        kappa(iy, ix) = s / (k * k);
      });
  lensing::ConvergenceDeflection<double, Mem> fft(space, grid);
  fft.deflection(space, kappa, ax, ay);
  fft.potential(space, kappa, psi);
  lensing::deflection_map(space, lens, grid, tx, ty);
  space.fence();
  auto hax = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ax);
  auto hay = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ay);
  auto htx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), tx);
  auto hty = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ty);
  auto hpsi = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), psi);
  // Inner half of the field, outside r = 0.5".  The FFT result is exact for
  // a piecewise-constant kappa, so what remains is the pixelisation of kappa,
  // O(d^2 |grad kappa| / 12) (large at the 0.1" = 2-pixel core: 1.1e-2 there),
  // and the mass outside the map (changing the map to 256^2 changes nothing at
  // this level).  Measured 7.7e-4 (peak 0.48), the same with an independent
  // numpy computation.
  double worst = 0, worst_grad = 0, peak = 0;
  for (int iy = n / 4; iy < 3 * n / 4; ++iy)
    for (int ix = n / 4; ix < 3 * n / 4; ++ix) {
      if (std::hypot(grid.x(ix), grid.y(iy)) < 0.5) continue;
      worst = std::max({worst, std::fabs(hax(iy, ix) - htx(iy, ix)), std::fabs(hay(iy, ix) - hty(iy, ix))});
      peak = std::max({peak, std::fabs(htx(iy, ix)), std::fabs(hty(iy, ix))});
      // alpha = grad psi (central differences of the FFT potential, O(d^2)).
      double const gx = (hpsi(iy, ix + 1) - hpsi(iy, ix - 1)) / (2 * 0.05);
      double const gy = (hpsi(iy + 1, ix) - hpsi(iy - 1, ix)) / (2 * 0.05);
      worst_grad = std::max({worst_grad, std::fabs(gx - hax(iy, ix)), std::fabs(gy - hay(iy, ix))});
    }
  MESSAGE("FFT vs analytic deflection, inner half: ", worst, " (peak ", peak, "); grad psi vs alpha: ", worst_grad);
  CHECK(worst < 2e-3 * peak);
  CHECK(worst_grad < 4e-3 * peak);  // includes the O(d^2) error of the central difference
}

TEST_CASE("ConvergenceDeflection rejects wrong shapes") {
  using Space = Kokkos::DefaultHostExecutionSpace;
  PixelGrid<double> const grid(8, 6, 0.1);
  lensing::ConvergenceDeflection<double, Kokkos::HostSpace> fft(Space(), grid);
  lensing::View2D<double, Kokkos::HostSpace> k("k", 6, 8), bad("bad", 8, 6);
  CHECK_THROWS_WITH_AS(
      fft.deflection(Space(), k, bad, bad),
      "lensing::ConvergenceDeflection::deflection: alpha_x must have extents (ny, nx) = (6, 8), got (8, 6)",
      std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("InterpolatedLens interpolates its maps bilinearly", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  // Maps that are bilinear functions of (x, y) are reproduced exactly.
  PixelGrid<Scalar> const grid(7, 5, Scalar(0.2), 1, Scalar(0.1), Scalar(-0.05));
  lensing::View2D<Scalar, Mem> ax("ax", 5, 7), ay("ay", 5, 7), psi("psi", 5, 7), k("k", 5, 7);
  Space space;
  Kokkos::parallel_for(
      "maps", Kokkos::RangePolicy<Space>(space, 0, 5), KOKKOS_LAMBDA(int iy) {
        for (int ix = 0; ix < 7; ++ix) {
          Scalar const x = grid.x(ix), y = grid.y(iy);
          ax(iy, ix) = Scalar(0.5) + Scalar(2) * x - y + Scalar(0.3) * x * y;
          ay(iy, ix) = Scalar(-0.2) + x + Scalar(3) * y + Scalar(0.3) * x * y;
          psi(iy, ix) = x * y;
          k(iy, ix) = Scalar(1) + x;
        }
      });
  lensing::InterpolatedLens<Scalar, Mem> const lens(grid, ax, ay, psi, k);
  PixelGrid<Scalar> const probe(9, 6, Scalar(0.13), 1, Scalar(0.1), Scalar(-0.05));  // inside the span of centres
  lensing::View2D<Scalar, Mem> bx("bx", 6, 9), by("by", 6, 9), g1("g1", 6, 9), g2("g2", 6, 9);
  lensing::deflection_map(space, lens, probe, bx, by);
  lensing::shear_map(space, lens, probe, g1, g2);
  auto hbx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), bx);
  auto hby = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), by);
  auto hg2 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), g2);
  double const tol = std::is_same<Scalar, float>::value ? 1e-5 : 1e-13;
  for (int iy = 0; iy < 6; ++iy)
    for (int ix = 0; ix < 9; ++ix) {
      double const x = probe.x(ix), y = probe.y(iy);
      CHECK(double(hbx(iy, ix)) == doctest::Approx(0.5 + 2 * x - y + 0.3 * x * y).epsilon(tol).scale(1));
      CHECK(double(hby(iy, ix)) == doctest::Approx(-0.2 + x + 3 * y + 0.3 * x * y).epsilon(tol).scale(1));
      // f_xy = (d ax/dy + d ay/dx)/2 = (-1 + 0.3 x + 1 + 0.3 y)/2
      CHECK(double(hg2(iy, ix)) == doctest::Approx(0.15 * (x + y)).epsilon(10 * tol).scale(1));
    }
  lensing::View2D<Scalar, Mem> bad("bad", 4, 7);
  CHECK_THROWS_AS((lensing::InterpolatedLens<Scalar, Mem>(grid, ax, bad, psi, k)), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("InterpolatedLens from a convergence map ray-shoots like the analytic lens", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  int const n = 96;
  PixelGrid<double> const grid = PixelGrid<double>::square(n, 0.05);
  EllipticalPseudoJaffe const lens{lensing::NIE<double>{1.0, 0.1, 0.1, -0.05, 0.0, 0.0},
                                   lensing::NIE<double>{1.0, 0.6, 0.1, -0.05, 0.0, 0.0}};
  PixelGrid<double> const fine = PixelGrid<double>::square(n, 0.05, 8);
  lensing::View2D<double, Mem> kf("kf", n * 8, n * 8), kappa("kappa", n, n);
  Space space;
  lensing::convergence_map(space, lens, fine, kf);
  Kokkos::parallel_for(
      "average", Kokkos::RangePolicy<Space>(space, 0, n), KOKKOS_LAMBDA(int iy) {
        for (int ix = 0; ix < n; ++ix) {
          double s = 0;
          for (int a = 0; a < 8; ++a)
            for (int b = 0; b < 8; ++b)
              s += kf(iy * 8 + a, ix * 8 + b);
          kappa(iy, ix) = s / 64;
        }
      });
  auto const interp = lensing::InterpolatedLens<double, Mem>::from_convergence(space, grid, kappa);
  // Rays between pixel centres, in the inner field outside the core.
  PixelGrid<double> const probe = PixelGrid<double>::square(40, 0.061);
  lensing::View2D<double, Mem> b1x("b1x", 40, 40), b1y("b1y", 40, 40), b2x("b2x", 40, 40), b2y("b2y", 40, 40);
  lensing::ray_shoot(space, interp, probe, b1x, b1y);
  lensing::ray_shoot(space, lens, probe, b2x, b2y);
  auto h1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b1x);
  auto h2 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b2x);
  double worst = 0;
  for (int iy = 0; iy < 40; ++iy)
    for (int ix = 0; ix < 40; ++ix)
      if (std::hypot(probe.x(ix), probe.y(iy)) > 0.5) worst = std::max(worst, std::fabs(h1(iy, ix) - h2(iy, ix)));
  // Map error (see the FFT test, ~8e-4) plus bilinear interpolation, O(d^2 alpha''/8).
  MESSAGE("interpolated vs analytic ray shooting: ", worst);
  CHECK(worst < 2e-3);
}
