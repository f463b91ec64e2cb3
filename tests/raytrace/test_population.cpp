#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/population.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/profiles/tnfw.hpp>
#include <lensing/raytrace/population_vjp.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <stdexcept>
#include <vector>

using lensing::PixelGrid;

namespace {
// Deterministic subhalo-like population of n SIS members.
template <class Scalar>
std::vector<Scalar> population_params(int n) {
  std::vector<Scalar> p;
  for (int m = 0; m < n; ++m) {
    p.push_back(Scalar(0.01 + 0.002 * (m % 7)));
    p.push_back(Scalar(-1.5 + 3.0 * std::fmod(0.618034 * m, 1.0)));
    p.push_back(Scalar(-1.5 + 3.0 * std::fmod(0.414214 * m + 0.2, 1.0)));
  }
  return p;
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("Population sums its members", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  using P = lensing::SIS<Scalar>;
  Space space;
  auto const params = population_params<Scalar>(50);
  auto const pop = lensing::Population<P, Mem>::from_params(space, params);
  CHECK(pop.size() == 50);
  auto const macro = lensing::make_composite(lensing::SIE<Scalar>{Scalar(1.2), Scalar(0.1), Scalar(0.05), 0, 0});
  lensing::LensSum<decltype(macro), lensing::Population<P, Mem>> const lens{macro, pop};
  PixelGrid<Scalar> const grid(16, 16, Scalar(0.2));
  lensing::View2D<Scalar, Mem> ax("ax", 16, 16), ay("ay", 16, 16), k("k", 16, 16);
  lensing::deflection_map(space, lens, grid, ax, ay);
  lensing::convergence_map(space, lens, grid, k);
  auto hax = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ax);
  auto hk = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), k);
  double worst = 0, worst_k = 0;
  for (int iy = 0; iy < 16; ++iy)
    for (int ix = 0; ix < 16; ++ix) {
      double const x = grid.x(ix), y = grid.y(iy);
      double sx = lensing::SIE<double>{1.2, 0.1, 0.05, 0, 0}.deflection(x, y).x, sk = 0;
      sk += lensing::SIE<double>{1.2, 0.1, 0.05, 0, 0}.convergence(x, y);
      for (int m = 0; m < 50; ++m) {
        lensing::SIS<double> const s{double(params[3 * m]), double(params[3 * m + 1]), double(params[3 * m + 2])};
        sx += s.deflection(x, y).x;
        sk += s.convergence(x, y);
      }
      worst = std::max(worst, std::fabs(hax(iy, ix) - sx));
      worst_k = std::max(worst_k, std::fabs(hk(iy, ix) - sk) / std::fabs(sk));
    }
  double const tol = std::is_same<Scalar, float>::value ? 1e-5 : 1e-13;
  CHECK(worst < tol);
  CHECK(worst_k < tol);

  auto bad = params;
  bad[3 * 7] = Scalar(-1);
  using Pop = lensing::Population<P, Mem>;
  CHECK_THROWS_WITH_AS(
      Pop::from_params(space, bad),
      "lensing::Population::from_params: member 7: lensing::SIS: theta_E must be finite and > 0 (got -1)",
      std::invalid_argument);
  std::vector<Scalar> ragged(params.begin(), params.end() - 1);
  CHECK_THROWS_AS(Pop::from_params(space, ragged), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("Population map VJPs equal each member's map VJP", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  using P = lensing::SIE<Scalar>;
  Space space;
  std::vector<Scalar> params;
  for (int m = 0; m < 6; ++m)
    for (Scalar v :
         {Scalar(0.1 + 0.05 * m), Scalar(0.02 * m), Scalar(-0.03), Scalar(0.3 * m - 0.7), Scalar(0.1 - 0.2 * m)})
      params.push_back(v);
  auto const pop = lensing::Population<P, Mem>::from_params(space, params);
  PixelGrid<Scalar> const grid(10, 9, Scalar(0.3), 2);
  int const ny = grid.fine_ny(), nx = grid.fine_nx();
  lensing::View2D<Scalar, Mem> wx("wx", ny, nx), wy("wy", ny, nx);
  Kokkos::parallel_for(
      "weights", Kokkos::RangePolicy<Space>(space, 0, ny), KOKKOS_LAMBDA(int iy) {
        for (int ix = 0; ix < nx; ++ix) {
          wx(iy, ix) = Scalar(0.5) + Scalar(0.01) * Scalar((3 * ix + iy) % 11);
          wy(iy, ix) = Scalar(-0.3) + Scalar(0.02) * Scalar((ix + 5 * iy) % 7);
        }
      });
  Kokkos::View<Scalar**, Kokkos::LayoutRight, Mem> g("g", 6, P::num_params), gk("gk", 6, P::num_params);
  lensing::population_deflection_map_vjp(space, pop, grid, wx, wy, g);
  lensing::population_convergence_map_vjp(space, pop, grid, wx, gk);
  auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), g);
  auto hgk = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gk);
  lensing::View1D<Scalar, Mem> one("one", P::num_params), onek("onek", P::num_params);
  lensing::MapVjpWorkspace<Scalar, Mem> work(grid, P::num_params);
  for (int m = 0; m < 6; ++m) {
    P const p = P::unpack(params.data() + m * P::num_params);
    lensing::deflection_map_vjp(space, p, grid, wx, wy, one, work);
    auto h1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), one);
    lensing::convergence_map_vjp(space, p, grid, wx, onek, work);
    auto hk1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), onek);
    for (int k = 0; k < P::num_params; ++k) {
      double const tol = (std::is_same<Scalar, float>::value ? 1e-5 : 1e-12) * (std::fabs(double(h1(k))) + 1);
      CHECK_MESSAGE(std::fabs(double(hg(m, k)) - double(h1(k))) <= tol, "member ", m, " param ", k);
      double const tolk = (std::is_same<Scalar, float>::value ? 1e-5 : 1e-12) * (std::fabs(double(hk1(k))) + 1);
      CHECK_MESSAGE(std::fabs(double(hgk(m, k)) - double(hk1(k))) <= tolk, "member ", m, " param ", k);
    }
  }
  Kokkos::View<Scalar**, Kokkos::LayoutRight, Mem> wrong("wrong", 5, P::num_params);
  CHECK_THROWS_AS(lensing::population_deflection_map_vjp(space, pop, grid, wx, wy, wrong), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("Population maps (members outer on the host) equal the sum over members", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  using P = lensing::TNFW<Scalar>;
  using Pop = lensing::Population<P, Mem>;
  // Host maps of a Population alone go through its deflection_batch (members
  // outer, points inner); 150 columns: two full batches and a partial one.
  static_assert(lensing::has_deflection_batch_v<Pop>, "");
  Space space;
  std::vector<Scalar> params;
  for (int m = 0; m < 20; ++m)
    for (double v : {0.05 + 0.01 * (m % 5), 0.003 + 0.001 * (m % 3), 0.4 + 0.1 * (m % 4),
                     -2.0 + 4.0 * std::fmod(0.618034 * m, 1.0), -0.2 + 0.4 * std::fmod(0.414214 * m + 0.2, 1.0)})
      params.push_back(Scalar(v));
  auto const pop = Pop::from_params(space, params);
  PixelGrid<Scalar> const grid(150, 5, Scalar(0.027));
  lensing::View2D<Scalar, Mem> ax("ax", 5, 150), ay("ay", 5, 150), bx("bx", 5, 150), by("by", 5, 150);
  lensing::deflection_map(space, pop, grid, ax, ay);
  lensing::ray_shoot(space, pop, grid, bx, by);
  auto h = [](auto v) { return Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v); };
  auto const hax = h(ax), hay = h(ay), hbx = h(bx), hby = h(by);
  auto const members = h(pop.members());
  // Same formulas per member, summed in the same order; the map's loop is
  // vectorised (libmvec, 4 ulp): equal to ~1e-13 (double) / 1e-5 (float) of
  // the sum of the members' magnitudes.
  double const tol = std::is_same<Scalar, float>::value ? 1e-5 : 1e-13;
  int bad = 0;
  for (int iy = 0; iy < 5; ++iy)
    for (int ix = 0; ix < 150; ++ix) {
      Scalar const x = grid.x(ix), y = grid.y(iy);
      Scalar sx = 0, sy = 0;
      double mag = 1e-30;
      for (int m = 0; m < 20; ++m) {
        auto const a = members(m).deflection(x, y);
        sx += a.x;
        sy += a.y;
        mag += std::fabs(double(a.x)) + std::fabs(double(a.y));
      }
      bad += std::fabs(double(hax(iy, ix)) - sx) > tol * mag || std::fabs(double(hay(iy, ix)) - sy) > tol * mag;
      bad += std::fabs(double(hbx(iy, ix)) - (x - sx)) > tol * (mag + std::fabs(double(x)));
      bad += std::fabs(double(hby(iy, ix)) - (y - sy)) > tol * (mag + std::fabs(double(y)));
    }
  CHECK(bad == 0);
}
