#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/epl.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

using lensing::PixelGrid;

LENSING_TEST_CASE_TEMPLATE("lens maps equal pointwise evaluation", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  auto const lens = lensing::make_composite(lensing::SIE<Scalar>{Scalar(1.1), Scalar(0.1), Scalar(-0.05), 0, 0},
                                            lensing::SIS<Scalar>{Scalar(0.2), Scalar(0.8), Scalar(0.3)});
  PixelGrid<Scalar> const grid(12, 10, Scalar(0.3), 2, Scalar(0.05), Scalar(-0.02));
  int const ny = grid.fine_ny(), nx = grid.fine_nx();
  lensing::View2D<Scalar, Mem> ax("ax", ny, nx), ay("ay", ny, nx), bx("bx", ny, nx), by("by", ny, nx);
  lensing::View2D<Scalar, Mem> k("k", ny, nx), g1("g1", ny, nx), g2("g2", ny, nx), mu("mu", ny, nx);
  Space space;
  lensing::deflection_map(space, lens, grid, ax, ay);
  lensing::ray_shoot(space, lens, grid, bx, by);
  lensing::convergence_map(space, lens, grid, k);
  lensing::shear_map(space, lens, grid, g1, g2);
  lensing::magnification_map(space, lens, grid, mu);
  space.fence();
  auto h = [](auto v) { return Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v); };
  auto hax = h(ax), hay = h(ay), hbx = h(bx), hby = h(by), hk = h(k), hg1 = h(g1), hg2 = h(g2), hmu = h(mu);
  // The same formulas, but the map's loop is vectorised (libmvec, 4 ulp) and
  // may contract differently: equal to a few ulp of the values involved.
  Scalar const eps = std::numeric_limits<Scalar>::epsilon();
  auto same = [&](Scalar a, Scalar b, Scalar scale) { return std::fabs(a - b) <= 64 * eps * (std::fabs(b) + scale); };
  int bad = 0;
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      Scalar const x = grid.fine_x(ix), y = grid.fine_y(iy);
      auto const a = lens.deflection(x, y);
      auto const H = lens.hessian(x, y);
      Scalar const hs = std::fabs(H.xx) + std::fabs(H.yy) + std::fabs(H.xy);
      bad += !same(hax(iy, ix), a.x, 1) || !same(hay(iy, ix), a.y, 1);
      bad += !same(hbx(iy, ix), x - a.x, 1) || !same(hby(iy, ix), y - a.y, 1);
      bad += !same(hk(iy, ix), lens.convergence(x, y), 0);
      bad += !same(hg1(iy, ix), Scalar(0.5) * (H.xx - H.yy), hs) || !same(hg2(iy, ix), H.xy, hs);
      // mu = 1/det(I - H) is ill-conditioned near critical curves: compare det.
      Scalar const det = (1 - H.xx) * (1 - H.yy) - H.xy * H.xy;
      bad += !same(Scalar(1) / hmu(iy, ix), det, (1 + hs) * (1 + hs));
    }
  CHECK(bad == 0);

  lensing::View2D<Scalar, Mem> wrong("wrong", ny, nx + 1);
  CHECK_THROWS_AS(lensing::ray_shoot(space, lens, grid, wrong, by), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("map VJPs match finite differences of the summed map", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  using Lens = lensing::Composite<lensing::SIE<Scalar>, lensing::SIS<Scalar>>;
  using LensD = lensing::Composite<lensing::SIE<double>, lensing::SIS<double>>;
  std::vector<double> const theta = {1.1, 0.1, -0.05, 0.02, -0.01, 0.2, 0.8, 0.3};
  std::vector<Scalar> ts(theta.begin(), theta.end());
  auto const lens = Lens::unpack(ts.data());
  PixelGrid<Scalar> const grid(9, 8, Scalar(0.35), 1, Scalar(0.013), Scalar(0.021));
  PixelGrid<double> const gridd(9, 8, 0.35, 1, 0.013, 0.021);
  int const ny = grid.fine_ny(), nx = grid.fine_nx();
  lensing::View2D<Scalar, Mem> wx("wx", ny, nx), wy("wy", ny, nx), wk("wk", ny, nx);
  auto hwx = Kokkos::create_mirror_view(wx), hwy = Kokkos::create_mirror_view(wy), hwk = Kokkos::create_mirror_view(wk);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      hwx(iy, ix) = Scalar(std::sin(0.7 * ix + 0.3 * iy));
      hwy(iy, ix) = Scalar(std::cos(0.4 * ix - 0.9 * iy));
      hwk(iy, ix) = Scalar(0.5 + 0.1 * ((ix * 7 + iy * 3) % 5));
    }
  Kokkos::deep_copy(wx, hwx);
  Kokkos::deep_copy(wy, hwy);
  Kokkos::deep_copy(wk, hwk);
  lensing::View1D<Scalar, Mem> ga("ga", Lens::num_params), gb("gb", Lens::num_params), gk("gk", Lens::num_params);
  lensing::MapVjpWorkspace<Scalar, Mem> work(grid, Lens::num_params);
  Space space;
  lensing::deflection_map_vjp(space, lens, grid, wx, wy, ga, work);
  auto hga = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ga);
  lensing::ray_shoot_vjp(space, lens, grid, wx, wy, gb, work);
  auto hgb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gb);
  lensing::convergence_map_vjp(space, lens, grid, wk, gk, work);
  auto hgk = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gk);
  for (int p = 0; p < Lens::num_params; ++p) {
    double const h = 1e-6;
    std::vector<double> tp = theta, tm = theta;
    tp[p] += h;
    tm[p] -= h;
    auto const lp = LensD::unpack(tp.data()), lm = LensD::unpack(tm.data());
    double fa = 0, fk = 0, scale = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        double const x = gridd.fine_x(ix), y = gridd.fine_y(iy);
        auto const ap = lp.deflection(x, y), am = lm.deflection(x, y);
        fa += (double(hwx(iy, ix)) * (ap.x - am.x) + double(hwy(iy, ix)) * (ap.y - am.y)) / (2 * h);
        fk += double(hwk(iy, ix)) * (lp.convergence(x, y) - lm.convergence(x, y)) / (2 * h);
        scale += 1;
      }
    double const tol = std::is_same<Scalar, float>::value ? 1e-4 * scale : 1e-6 * (std::fabs(fa) + 1);
    CHECK_MESSAGE(std::fabs(hga(p) - fa) <= tol, "deflection_map_vjp param ", p, ": ", hga(p), " vs ", fa);
    CHECK_MESSAGE(hgb(p) == -hga(p), "ray_shoot_vjp param ", p);
    double const tolk = std::is_same<Scalar, float>::value ? 1e-4 * scale : 1e-6 * (std::fabs(fk) + 1);
    CHECK_MESSAGE(std::fabs(hgk(p) - fk) <= tolk, "convergence_map_vjp param ", p, ": ", hgk(p), " vs ", fk);
  }
  lensing::View1D<Scalar, Mem> short_grad("short", 3);
  CHECK_THROWS_AS(lensing::deflection_map_vjp(space, lens, grid, wx, wy, short_grad, work), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("batched host deflections equal per-point deflections", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  // EPL provides deflection_batch (series summed across points); the composite
  // with a shear uses it for the EPL and per point for the shear.
  lensing::EPL<Scalar> const epl{Scalar(1.1), Scalar(2.15), Scalar(0.12), Scalar(-0.2), Scalar(0.03), Scalar(-0.02)};
  auto const lens = lensing::make_composite(epl, lensing::ExternalShear<Scalar>{Scalar(0.03), Scalar(-0.02), 0, 0});
  static_assert(lensing::has_deflection_batch_v<lensing::EPL<Scalar>>, "");
  static_assert(lensing::has_deflection_batch_v<decltype(lens)>, "");
  static_assert(!lensing::has_deflection_batch_v<lensing::SIE<Scalar>>, "");
  // 150 columns: two full batches and a partial one; the grid contains the centre.
  PixelGrid<Scalar> const grid(150, 7, Scalar(0.04), 1, Scalar(0.03) - Scalar(0.04) * Scalar(74.5 - 74), Scalar(-0.02));
  lensing::View2D<Scalar, Mem> ax("ax", 7, 150), ay("ay", 7, 150), bx("bx", 7, 150), by("by", 7, 150);
  Space space;
  lensing::deflection_map(space, lens, grid, ax, ay);
  lensing::ray_shoot(space, epl, grid, bx, by);
  auto hax = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ax);
  auto hay = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ay);
  auto hbx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), bx);
  Scalar const tol = std::is_same<Scalar, float>::value ? Scalar(2e-6) : Scalar(1e-14);
  int bad = 0;
  for (int iy = 0; iy < 7; ++iy)
    for (int ix = 0; ix < 150; ++ix) {
      Scalar const x = grid.fine_x(ix), y = grid.fine_y(iy);
      auto const a = lens.deflection(x, y);
      auto const e = epl.deflection(x, y);
      bad += !lensing::test::close(hax(iy, ix), a.x, tol, tol) || !lensing::test::close(hay(iy, ix), a.y, tol, tol);
      bad += !lensing::test::close(hbx(iy, ix), x - e.x, tol, tol);
    }
  CHECK(bad == 0);
}

LENSING_TEST_CASE_TEMPLATE("batched host deflection VJP equals the sum of per-point VJPs", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  // EPL provides deflection_vjp_batch (F, sum n Omega_n and dF/dgamma summed
  // across points); in the composite the shear is differentiated per point.
  lensing::EPL<Scalar> const epl{Scalar(1.1), Scalar(2.15), Scalar(0.12), Scalar(-0.2), Scalar(0.03), Scalar(-0.02)};
  auto const lens = lensing::make_composite(epl, lensing::ExternalShear<Scalar>{Scalar(0.03), Scalar(-0.02), 0, 0});
  using Lens = std::decay_t<decltype(lens)>;
  static_assert(lensing::has_deflection_vjp_batch_v<lensing::EPL<Scalar>>, "");
  static_assert(lensing::has_deflection_vjp_batch_v<Lens>, "");
  static_assert(!lensing::has_deflection_vjp_batch_v<lensing::SIE<Scalar>>, "");
  // 150 columns: two full blocks and a partial one; pixel (3, 74) is the
  // EPL centre (the per-point fallback inside a batch).
  PixelGrid<Scalar> const grid(150, 7, Scalar(0.04), 1, Scalar(0.03) - Scalar(0.04) * Scalar(74.5 - 74), Scalar(-0.02));
  int const ny = grid.fine_ny(), nx = grid.fine_nx();
  lensing::View2D<Scalar, Mem> wx("wx", ny, nx), wy("wy", ny, nx);
  auto hwx = Kokkos::create_mirror_view(wx), hwy = Kokkos::create_mirror_view(wy);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      hwx(iy, ix) = Scalar(std::sin(0.7 * ix + 0.3 * iy));
      hwy(iy, ix) = Scalar(std::cos(0.4 * ix - 0.9 * iy));
    }
  Kokkos::deep_copy(wx, hwx);
  Kokkos::deep_copy(wy, hwy);
  constexpr int np = Lens::num_params;
  lensing::View1D<Scalar, Mem> ga("ga", np), gb("gb", np);
  lensing::MapVjpWorkspace<Scalar, Mem> work(grid, np);
  Space space;
  lensing::deflection_map_vjp(space, lens, grid, wx, wy, ga, work);
  auto hga = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ga);
  lensing::ray_shoot_vjp(space, lens, grid, wx, wy, gb, work);
  auto hgb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gb);
  // Reference: the per-point VJP (one series_grad per point), summed in double.
  double ref[np] = {}, mag[np] = {};
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      Scalar g[np] = {};
      lens.deflection_vjp(grid.fine_x(ix), grid.fine_y(iy), lensing::Vec2<Scalar>{hwx(iy, ix), hwy(iy, ix)}, g);
      for (int k = 0; k < np; ++k) {
        ref[k] += double(g[k]);
        mag[k] += std::fabs(double(g[k]));
      }
    }
  // Same terms, different evaluation order (SIMD lanes, libmvec log/exp at
  // 4 ulp, summation order): a few ulp of the summed magnitudes.
  double const rtol = std::is_same<Scalar, float>::value ? 1e-5 : 1e-12;
  for (int k = 0; k < np; ++k) {
    CHECK_MESSAGE(std::fabs(double(hga(k)) - ref[k]) <= rtol * (mag[k] + 1e-30), "param ", k, ": ", hga(k), " vs ",
                  ref[k]);
    CHECK_MESSAGE(hgb(k) == -hga(k), "ray_shoot_vjp param ", k);
  }
  // The profile's batch directly, on points that take the per-point fallback
  // (the centre itself, inside the cusp radius) among regular ones.
  Scalar const cx = epl.center_x, cy = epl.center_y;
  Scalar const xs[5] = {cx, cx + Scalar(1e-30), Scalar(0.7), cx, Scalar(-1.3)};
  Scalar const ys[5] = {cy, cy, Scalar(0.2), cy + Scalar(0.5), Scalar(0.9)};
  Scalar const gxs[5] = {Scalar(0.3), Scalar(-0.4), Scalar(1.1), Scalar(0.2), Scalar(-0.6)};
  Scalar const gys[5] = {Scalar(-0.8), Scalar(0.5), Scalar(0.4), Scalar(0.9), Scalar(0.1)};
  constexpr int ne = lensing::EPL<Scalar>::num_params;
  Scalar cols[ne * 5] = {};
  epl.deflection_vjp_batch(5, xs, ys, gxs, gys, cols, 5);
  for (int i = 0; i < 5; ++i) {
    Scalar g[ne] = {};
    epl.deflection_vjp(xs[i], ys[i], lensing::Vec2<Scalar>{gxs[i], gys[i]}, g);
    for (int k = 0; k < ne; ++k) {
      CHECK(std::isfinite(cols[k * 5 + i]));
      CHECK_MESSAGE(std::fabs(cols[k * 5 + i] - g[k]) <= Scalar(rtol) * (std::fabs(g[k]) + 1), "point ", i, " param ",
                    k, ": ", cols[k * 5 + i], " vs ", g[k]);
    }
  }
}

LENSING_TEST_CASE_TEMPLATE("small maps on the calling thread are bit-identical to the parallel loop", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  // The small-work fallback (core/parallel.hpp) calls the same per-row code
  // on the calling thread; every pixel writes its own outputs, so the maps
  // must not differ in a single bit.  host_fork_join_ns = 0 forces the
  // parallel loop (at >= 2 threads), a huge value the calling thread.
  // SIE + shear: LocalLensRows; EPL: batched rows; the lambda:
  // parallel_for_pixels.
  auto const sie = lensing::make_composite(lensing::SIE<Scalar>{Scalar(1.1), Scalar(0.1), Scalar(-0.05), 0, 0},
                                           lensing::ExternalShear<Scalar>{Scalar(0.03), Scalar(-0.02), 0, 0});
  lensing::EPL<Scalar> const epl{Scalar(1.1), Scalar(2.15), Scalar(0.12), Scalar(-0.2), Scalar(0.03), Scalar(-0.02)};
  auto const grid = PixelGrid<Scalar>::square(40, Scalar(0.07), 2);
  int const ny = grid.fine_ny(), nx = grid.fine_nx();
  using V = lensing::View2D<Scalar, Mem>;
  Space space;
  auto run = [&](double fork_join_ns) {
    std::vector<V> m;
    for (int i = 0; i < 8; ++i)
      m.emplace_back("m", ny, nx);
    lensing::set_host_fork_join_ns(fork_join_ns);
    lensing::deflection_map(space, sie, grid, m[0], m[1]);
    lensing::ray_shoot(space, epl, grid, m[2], m[3]);
    lensing::convergence_map(space, sie, grid, m[4]);
    lensing::shear_map(space, sie, grid, m[5], m[6]);
    V const out = m[7];
    lensing::parallel_for_pixels(
        "test", space, ny, nx,
        KOKKOS_LAMBDA(int iy, int ix) { out(iy, ix) = sie.deflection(grid.fine_x(ix), grid.fine_y(iy)).x; });
    space.fence();
    std::vector<Scalar> flat;
    for (auto const& v : m) {
      auto const hv = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
      flat.insert(flat.end(), hv.data(), hv.data() + hv.size());
    }
    return flat;
  };
  double const saved = lensing::host_fork_join_ns();
  bool const host = lensing::detail::is_host_space_v<Space>;
  lensing::set_host_fork_join_ns(1e12);
  CHECK(lensing::detail::run_on_caller(space, double(ny) * nx, 8.0) == host);
  lensing::set_host_fork_join_ns(0);
  CHECK(lensing::detail::run_on_caller(space, double(ny) * nx, 8.0) == (host && space.concurrency() == 1));
  auto const threaded = run(0), caller = run(1e12);
  lensing::set_host_fork_join_ns(saved);
  REQUIRE(threaded.size() == caller.size());
  int differ = 0;
  for (std::size_t i = 0; i < threaded.size(); ++i)
    differ += std::memcmp(&threaded[i], &caller[i], sizeof(Scalar)) != 0;
  CHECK(differ == 0);
}
