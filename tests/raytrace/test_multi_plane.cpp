#include <lensing/cosmology/flat_lcdm.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/population.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/raytrace/image_positions.hpp>
#include <lensing/raytrace/multi_plane.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

#include <lensing_test.hpp>

#include <array>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace {
template <class Scalar>
using Main = lensing::Composite<lensing::SIE<Scalar>, lensing::ExternalShear<Scalar>>;
template <class Scalar>
Main<Scalar> main_lens() {
  return Main<Scalar>(lensing::SIE<Scalar>{Scalar(1.0), Scalar(0.1), Scalar(-0.05), Scalar(0.02), Scalar(-0.01)},
                      lensing::ExternalShear<Scalar>{Scalar(0.03), Scalar(0.02), Scalar(0), Scalar(0)});
}
template <class View>
auto host(View const& v) {
  return Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("multi-plane with one plane equals single-plane exactly", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  lensing::FlatLambdaCDM<Scalar> const cosmo(70, 0.3);
  auto const lens = main_lens<Scalar>();
  auto const mp = lensing::make_multi_plane(cosmo, 2.0, {0.5}, lens);
  lensing::PixelGrid<Scalar> const grid(17, 15, Scalar(0.17), 1, Scalar(0.01), Scalar(-0.02));
  int const ny = grid.fine_ny(), nx = grid.fine_nx();
  lensing::View2D<Scalar, Mem> bx("bx", ny, nx), by("by", ny, nx), cx("cx", ny, nx), cy("cy", ny, nx);
  Space space;
  lensing::ray_shoot(space, lens, grid, bx, by);
  lensing::multi_plane_ray_shoot(space, mp, grid, cx, cy);
  space.fence();
  auto hbx = host(bx), hby = host(by), hcx = host(cx), hcy = host(cy);
  int bad = 0;
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      // One plane is algebraically the single-plane map (coefficient 1, no
      // distance factors, beta = x - (0 + alpha)); numerically the same
      // expression compiled in another context may differ by FMA contraction
      // and, for the maps, by the SIMD libm of the vectorised single-plane
      // kernel: a few ulp of |x| at most.
      Scalar const x = grid.fine_x(ix), y = grid.fine_y(iy);
      auto const a = lens.deflection(x, y);
      auto const b = mp.source_position(x, y);
      Scalar const tol = 8 * std::numeric_limits<Scalar>::epsilon();
      bad += !lensing::test::close(b.x, x - a.x, tol, tol) || !lensing::test::close(b.y, y - a.y, tol, tol);
      bad += !lensing::test::close(hcx(iy, ix), hbx(iy, ix), tol, tol) ||
             !lensing::test::close(hcy(iy, ix), hby(iy, ix), tol, tol);
      auto const A = mp.jacobian(grid.fine_x(ix), grid.fine_y(iy));
      auto const B = lensing::LensJacobian<Scalar>::from_hessian(lens.hessian(grid.fine_x(ix), grid.fine_y(iy)));
      bad += !lensing::test::close(A.a11, B.a11, tol, tol) || !lensing::test::close(A.a12, B.a12, tol, tol) ||
             !lensing::test::close(A.a21, B.a21, tol, tol) || !lensing::test::close(A.a22, B.a22, tol, tol);
    }
  CHECK(bad == 0);
}

TEST_CASE("two planes agree with brute-force comoving propagation and the textbook distance form") {
  lensing::FlatLambdaCDM<double> const cosmo(67.0, 0.31);
  double const z1 = 0.3, z2 = 0.7, zs = 2.1;
  auto const p1 = lensing::make_composite(lensing::SIS<double>{0.3, 0.4, -0.2});
  auto const p2 = main_lens<double>();
  auto const mp = lensing::make_multi_plane(cosmo, zs, {z1, z2}, p1, p2);
  // Brute force: physical deflection alpha_hat = alpha D_s / D_is applied to a
  // ray propagated in comoving transverse coordinates x = T(z) theta.
  double const T1 = cosmo.comoving_distance(z1), T2 = cosmo.comoving_distance(z2), Ts = cosmo.comoving_distance(zs);
  double const s1 = cosmo.angular_diameter_distance(zs) / cosmo.angular_diameter_distance(z1, zs);
  double const s2 = cosmo.angular_diameter_distance(zs) / cosmo.angular_diameter_distance(z2, zs);
  double worst = 0;
  for (int k = 0; k < 200; ++k) {
    double const tx = -1.5 + 0.015 * k, ty = 1.2 * std::sin(0.37 * k);
    double x = T1 * tx, y = T1 * ty, dx = tx, dy = ty;
    auto const a1 = p1.deflection(x / T1, y / T1);
    dx -= s1 * a1.x, dy -= s1 * a1.y;
    x += (T2 - T1) * dx, y += (T2 - T1) * dy;
    auto const a2 = p2.deflection(x / T2, y / T2);
    dx -= s2 * a2.x, dy -= s2 * a2.y;
    x += (Ts - T2) * dx, y += (Ts - T2) * dy;
    auto const b = mp.source_position(tx, ty);
    worst = std::max(worst, std::hypot(b.x - x / Ts, b.y - y / Ts));
    // Textbook form with angular-diameter distances:
    // theta_2 = theta - D_12 D_s / (D_2 D_1s) alpha_1(theta), beta = theta - alpha_1 - alpha_2(theta_2).
    double const b12 = cosmo.angular_diameter_distance(z1, z2) * cosmo.angular_diameter_distance(zs) /
                       (cosmo.angular_diameter_distance(z2) * cosmo.angular_diameter_distance(z1, zs));
    auto const c1 = p1.deflection(tx, ty);
    auto const c2 = p2.deflection(tx - b12 * c1.x, ty - b12 * c1.y);
    worst = std::max(worst, std::hypot(b.x - (tx - c1.x - c2.x), b.y - (ty - c1.y - c2.y)));
    // Jacobian against central differences of the map.
    double const h = 1e-6;
    auto const bxp = mp.source_position(tx + h, ty), bxm = mp.source_position(tx - h, ty);
    auto const byp = mp.source_position(tx, ty + h), bym = mp.source_position(tx, ty - h);
    auto const A = mp.jacobian(tx, ty);
    CHECK(std::fabs(A.a11 - (bxp.x - bxm.x) / (2 * h)) < 1e-7);
    CHECK(std::fabs(A.a21 - (bxp.y - bxm.y) / (2 * h)) < 1e-7);
    CHECK(std::fabs(A.a12 - (byp.x - bym.x) / (2 * h)) < 1e-7);
    CHECK(std::fabs(A.a22 - (byp.y - bym.y) / (2 * h)) < 1e-7);
  }
  CHECK(worst < 1e-12);
  MESSAGE("two planes vs brute force: max |dbeta| = " << worst << " arcsec");
  // Images through two planes re-map to the source.
  lensing::ImageFinder<decltype(mp)> const finder(Kokkos::DefaultHostExecutionSpace(), mp, 3.0, 128);
  auto const im = finder.find(0.03, -0.02);
  CHECK(im.size() >= 2);
  for (auto const& i : im) {
    auto const b = mp.source_position(i.x, i.y);
    CHECK(std::hypot(b.x - 0.03, b.y + 0.02) <= 1e-12);
  }
  CHECK_THROWS_AS(lensing::make_multi_plane(cosmo, zs, {0.8, 0.5}, p1, p2), std::invalid_argument);
  CHECK_THROWS_AS(lensing::make_multi_plane(cosmo, zs, {0.5, 2.5}, p1, p2), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("multi-plane VJP matches finite differences for every plane parameter", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using P1 = lensing::Composite<lensing::SIS<double>>;
  using P2 = Main<double>;
  using P3 = lensing::Composite<lensing::SIE<double>>;
  lensing::FlatLambdaCDM<double> const cosmo(70, 0.3);
  std::array<double, 3> const z = {0.2, 0.5, 0.9};
  auto const p1 = P1(lensing::SIS<double>{0.25, -0.4, 0.3});
  auto const p2 = main_lens<double>();
  auto const p3 = P3(lensing::SIE<double>{0.2, -0.1, 0.05, 0.5, 0.2});
  auto const mp = lensing::make_multi_plane(cosmo, 2.0, z, p1, p2, p3);
  using MP = std::decay_t<decltype(mp)>;
  constexpr int np = MP::num_params;
  static_assert(np == 3 + 9 + 5, "");
  lensing::PixelGrid<double> const grid(10, 9, 0.3, 1, 0.01, 0.02);
  int const ny = grid.fine_ny(), nx = grid.fine_nx();
  lensing::View2D<double, Mem> wx("wx", ny, nx), wy("wy", ny, nx);
  auto hwx = Kokkos::create_mirror_view(wx), hwy = Kokkos::create_mirror_view(wy);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      hwx(iy, ix) = std::sin(0.7 * ix + 0.3 * iy);
      hwy(iy, ix) = std::cos(0.4 * ix - 0.9 * iy);
    }
  Kokkos::deep_copy(wx, hwx);
  Kokkos::deep_copy(wy, hwy);
  lensing::View1D<double, Mem> grad("grad", np);
  lensing::MapVjpWorkspace<double, Mem> work(grid, np);
  Space space;
  lensing::multi_plane_ray_shoot_vjp(space, mp, grid, wx, wy, grad, work);
  auto const hg = host(grad);
  // Central differences of sum w . beta over the flat parameter vector.
  std::vector<double> theta(np);
  p1.pack(theta.data());
  p2.pack(theta.data() + 3);
  p3.pack(theta.data() + 12);
  auto objective = [&](std::vector<double> const& t) {
    auto const m = lensing::make_multi_plane(cosmo, 2.0, z, P1::unpack(t.data()), P2::unpack(t.data() + 3),
                                             P3::unpack(t.data() + 12));
    double s = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        auto const b = m.source_position(grid.fine_x(ix), grid.fine_y(iy));
        s += hwx(iy, ix) * b.x + hwy(iy, ix) * b.y;
      }
    return s;
  };
  for (int k = 0; k < np; ++k) {
    double const h = 1e-6;
    auto tp = theta, tm = theta;
    tp[k] += h;
    tm[k] -= h;
    double const fd = (objective(tp) - objective(tm)) / (2 * h);
    INFO("parameter " << k << " (" << MP::offsets[0] << ")");
    CHECK(std::fabs(hg(k) - fd) <= 1e-6 * (1 + std::fabs(fd)));
  }
  lensing::View1D<double, Mem> wrong("wrong", np + 1);
  CHECK_THROWS_AS(lensing::multi_plane_ray_shoot_vjp(space, mp, grid, wx, wy, wrong, work), std::invalid_argument);
}

TEST_CASE("multi-plane with a population of line-of-sight haloes (forward)") {
  using Mem = Kokkos::HostSpace;
  using Pop = lensing::Population<lensing::SIS<double>, Mem>;
  lensing::FlatLambdaCDM<double> const cosmo(70, 0.3);
  auto const pop = Pop::from_params(Kokkos::DefaultHostExecutionSpace(),
                                    std::vector<double>{0.05, 0.3, 0.1, 0.04, -0.5, 0.6, 0.03, 0.9, -0.2});
  auto const plane1 = lensing::LensSum<lensing::Composite<lensing::SIS<double>>, Pop>{
      lensing::make_composite(lensing::SIS<double>{0.1, 1.5, 1.5}), pop};
  auto const mp = lensing::make_multi_plane(cosmo, 2.0, {0.3, 0.6}, plane1, main_lens<double>());
  // Equivalent: the population members as separate SIS in a composite.
  auto const plane1b =
      lensing::make_composite(lensing::SIS<double>{0.1, 1.5, 1.5}, lensing::SIS<double>{0.05, 0.3, 0.1},
                              lensing::SIS<double>{0.04, -0.5, 0.6}, lensing::SIS<double>{0.03, 0.9, -0.2});
  auto const mpb = lensing::make_multi_plane(cosmo, 2.0, {0.3, 0.6}, plane1b, main_lens<double>());
  double worst = 0;
  for (int k = 0; k < 50; ++k) {
    double const x = -1 + 0.04 * k, y = 0.8 * std::cos(0.5 * k);
    auto const a = mp.source_position(x, y), b = mpb.source_position(x, y);
    worst = std::max(worst, std::hypot(a.x - b.x, a.y - b.y));
  }
  CHECK(worst < 1e-14);
}

LENSING_TEST_CASE_TEMPLATE("multi-plane VJP with a population plane matches finite differences", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using Pop = lensing::Population<lensing::SIS<double>, Mem>;
  using Macro = lensing::Composite<lensing::SIS<double>>;
  using Plane0 = lensing::LensSum<Macro, Pop>;
  lensing::FlatLambdaCDM<double> const cosmo(70, 0.3);
  std::array<double, 2> const z = {0.3, 0.6};
  std::vector<double> const members = {0.05, 0.3, 0.1, 0.04, -0.5, 0.6, 0.03, 0.9, -0.2};
  Space space;
  auto build = [&](std::vector<double> const& flat, std::vector<double> const& pop) {
    auto const plane0 = Plane0{Macro::unpack(flat.data()), Pop::from_params(space, pop)};
    return lensing::make_multi_plane(cosmo, 2.0, z, plane0, Main<double>::unpack(flat.data() + 3));
  };
  std::vector<double> flat(3 + 9);
  Macro(lensing::SIS<double>{0.1, 1.1, 1.2}).pack(flat.data());
  main_lens<double>().pack(flat.data() + 3);
  auto const mp = build(flat, members);
  using MP = std::decay_t<decltype(mp)>;
  static_assert(MP::num_params == 12, "");
  lensing::PixelGrid<double> const grid(8, 7, 0.35, 1, 0.01, 0.02);
  int const ny = grid.fine_ny(), nx = grid.fine_nx();
  lensing::View2D<double, Mem> wx("wx", ny, nx), wy("wy", ny, nx);
  auto hwx = Kokkos::create_mirror_view(wx), hwy = Kokkos::create_mirror_view(wy);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      hwx(iy, ix) = std::sin(0.5 * ix + 0.2 * iy);
      hwy(iy, ix) = std::cos(0.3 * ix - 0.7 * iy);
    }
  Kokkos::deep_copy(wx, hwx);
  Kokkos::deep_copy(wy, hwy);
  lensing::View1D<double, Mem> grad("grad", MP::num_params);
  lensing::MapVjpWorkspace<double, Mem> work(grid, MP::num_params);
  lensing::multi_plane_ray_shoot_vjp(space, mp, grid, wx, wy, grad, work);
  Kokkos::View<double**, Kokkos::LayoutRight, Mem> pgrad("pgrad", 3, 3);
  lensing::MultiPlanePopulationWork<double, Mem> pwork(grid);
  lensing::multi_plane_population_vjp<0>(space, mp, grid, wx, wy, pgrad, pwork);
  space.fence();
  auto const hg = host(grad);
  auto const hp = host(pgrad);
  auto objective = [&](std::vector<double> const& f, std::vector<double> const& p) {
    auto const m = build(f, p);
    double s = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        auto const b = m.source_position(grid.fine_x(ix), grid.fine_y(iy));
        s += hwx(iy, ix) * b.x + hwy(iy, ix) * b.y;
      }
    return s;
  };
  double const h = 1e-6;
  for (int k = 0; k < MP::num_params; ++k) {
    auto fp = flat, fm = flat;
    fp[k] += h;
    fm[k] -= h;
    double const fd = (objective(fp, members) - objective(fm, members)) / (2 * h);
    INFO("flat parameter " << k);
    CHECK(std::fabs(hg(k) - fd) <= 1e-6 * (1 + std::fabs(fd)));
  }
  for (int k = 0; k < 9; ++k) {
    auto pp = members, pm = members;
    pp[k] += h;
    pm[k] -= h;
    double const fd = (objective(flat, pp) - objective(flat, pm)) / (2 * h);
    INFO("member " << k / 3 << " parameter " << k % 3);
    CHECK(std::fabs(hp(k / 3, k % 3) - fd) <= 1e-6 * (1 + std::fabs(fd)));
  }
}
