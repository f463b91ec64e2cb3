#include <lensing/sources/pixelated.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <stdexcept>
#include <type_traits>
#include <vector>

static_assert(lensing::is_light_profile_v<lensing::PixelatedSource<double>>);
static_assert(lensing::is_light_profile_v<lensing::PixelatedSource<float>>);

namespace {
// Pixel values f(x, y) at the centres of `grid`.
template <class Scalar, class Mem, class F>
lensing::View2D<Scalar, Mem> sample(lensing::PixelGrid<Scalar> const& grid, F f) {
  lensing::View2D<Scalar, Mem> v("v", grid.ny(), grid.nx());
  auto h = Kokkos::create_mirror_view(v);
  for (int iy = 0; iy < grid.ny(); ++iy)
    for (int ix = 0; ix < grid.nx(); ++ix)
      h(iy, ix) = Scalar(f(double(grid.x(ix)), double(grid.y(iy))));
  Kokkos::deep_copy(v, h);
  return v;
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("pixelated source interpolation is exact for low-order polynomials", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  double const tol = std::is_same<Scalar, double>::value ? 1e-12 : 2e-5;
  lensing::PixelGrid<Scalar> const grid(12, 10, Scalar(0.1), 1, Scalar(0.03), Scalar(-0.02));
  // Bilinear reproduces a + bx + cy + dxy; bicubic (Keys) reproduces quadratics.
  auto bil = [](double x, double y) { return 1.0 + 2.0 * x - 0.7 * y + 1.3 * x * y; };
  auto quad = [](double x, double y) { return 1.0 + 2.0 * x - 0.7 * y + 1.3 * x * y + 0.9 * x * x - 0.4 * y * y; };
  auto vb = sample<Scalar, Mem>(grid, bil);
  auto vq = sample<Scalar, Mem>(grid, quad);
  auto const sb = lensing::make_pixelated_source(vb, grid, lensing::Interpolation::bilinear);
  auto const sq = lensing::make_pixelated_source(vq, grid, lensing::Interpolation::bicubic);
  sb.check();
  // Points inside the interpolation domain (two pixels from the border for bicubic).
  long const n = 200;
  long const bad = lensing::test::count_failures(
      Space(), n, KOKKOS_LAMBDA(long i) {
        Scalar const x = Scalar(0.03) + Scalar(-0.3 + 0.6 * ((i * 37) % 101) / 100.0);
        Scalar const y = Scalar(-0.02) + Scalar(-0.25 + 0.5 * ((i * 53) % 97) / 96.0);
        Scalar const dx = x, dy = y;
        Scalar const want_b = Scalar(1) + Scalar(2) * dx - Scalar(0.7) * dy + Scalar(1.3) * dx * dy;
        Scalar const want_q = want_b + Scalar(0.9) * dx * dx - Scalar(0.4) * dy * dy;
        auto const gb = sb.surface_brightness_vjp(x, y, Scalar(1), (Scalar*)nullptr);
        auto const gq = sq.surface_brightness_vjp(x, y, Scalar(1), (Scalar*)nullptr);
        Scalar const t = Scalar(tol);
        bool ok = lensing::test::close(sb.surface_brightness(x, y), want_b, t, t);
        ok = ok && lensing::test::close(sq.surface_brightness(x, y), want_q, t, t);
        // Gradients of the quadratic, exact for the bicubic interpolant.
        ok = ok && lensing::test::close(gq.x, Scalar(2) + Scalar(1.3) * dy + Scalar(1.8) * dx, Scalar(50) * t,
                                        Scalar(50) * t);
        ok = ok && lensing::test::close(gq.y, Scalar(-0.7) + Scalar(1.3) * dx - Scalar(0.8) * dy, Scalar(50) * t,
                                        Scalar(50) * t);
        (void)gb;
        return ok;
      });
  CHECK(bad == 0);
  // Far outside: 0, no overflow.
  CHECK(sb.surface_brightness(Scalar(1e30), Scalar(-1e30)) == Scalar(0));
  CHECK(sq.surface_brightness(Scalar(5), Scalar(0)) == Scalar(0));
}

LENSING_TEST_CASE_TEMPLATE("pixelated source: position gradient and adjoint scatter", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  lensing::PixelGrid<double> const grid(9, 8, 0.1);
  auto v = sample<double, Mem>(grid, [](double x, double y) { return std::sin(7 * x + 1) * std::cos(5 * y) + 2; });
  for (auto interp : {lensing::Interpolation::bilinear, lensing::Interpolation::bicubic}) {
    auto const s = lensing::make_pixelated_source(v, grid, interp);
    // Position gradient vs central differences, off the pixel lines.
    int bad = 0;
    auto hs = s;
    auto hv = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
    hs.values = hv.data();
    for (double x : {-0.213, 0.0171, 0.2449})
      for (double y : {-0.1887, 0.0333, 0.2051}) {
        double const h = 1e-6;
        auto const g = hs.surface_brightness_vjp(x, y, 0.7, (double*)nullptr);
        double const fx = 0.7 * (hs.surface_brightness(x + h, y) - hs.surface_brightness(x - h, y)) / (2 * h);
        double const fy = 0.7 * (hs.surface_brightness(x, y + h) - hs.surface_brightness(x, y - h)) / (2 * h);
        bad += std::fabs(g.x - fx) > 1e-6 * (1 + std::fabs(fx)) || std::fabs(g.y - fy) > 1e-6 * (1 + std::fabs(fy));
      }
    CHECK(bad == 0);
    // <W s, g> = <s, W^T g> over a set of points, some outside the grid.
    int const ny = 7, nx = 11;
    lensing::View2D<double, Mem> bx("bx", ny, nx), by("by", ny, nx), gbar("gbar", ny, nx), grad("grad", 8, 9);
    auto hbx = Kokkos::create_mirror_view(bx), hby = Kokkos::create_mirror_view(by),
         hg = Kokkos::create_mirror_view(gbar);
    double lhs = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        hbx(iy, ix) = -0.55 + 0.1 * ix + 0.013 * iy;
        hby(iy, ix) = -0.5 + 0.15 * iy - 0.007 * ix;
        hg(iy, ix) = std::cos(0.3 * ix + 0.8 * iy);
        lhs += hg(iy, ix) * hs.surface_brightness(hbx(iy, ix), hby(iy, ix));
      }
    Kokkos::deep_copy(bx, hbx);
    Kokkos::deep_copy(by, hby);
    Kokkos::deep_copy(gbar, hg);
    Space space;
    lensing::pixelated_source_adjoint(space, s, bx, by, gbar, grad);
    space.fence();
    auto hgr = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad);
    double rhs = 0;
    for (int iy = 0; iy < 8; ++iy)
      for (int ix = 0; ix < 9; ++ix)
        rhs += hgr(iy, ix) * hv(iy, ix);
    CHECK(rhs == doctest::Approx(lhs).epsilon(1e-13));
    lensing::View2D<double, Mem> wrong("wrong", 8, 8);
    CHECK_THROWS_AS(lensing::pixelated_source_adjoint(space, s, bx, by, gbar, wrong), std::invalid_argument);
  }
  lensing::View2D<double, Mem> wrong("wrong", 3, 3);
  CHECK_THROWS_AS(lensing::make_pixelated_source(wrong, grid), std::invalid_argument);
  CHECK_THROWS_AS(lensing::PixelatedSource<double>{}.check(), std::invalid_argument);
}
