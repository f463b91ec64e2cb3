// Lens-equation tools: image finding (solves/s), critical-curve extraction
// on a 512^2 grid (ms per extraction), and multi-plane ray shooting through
// 1, 2, 5 and 10 planes (and lensing::ray_shoot as the single-plane reference) of SIE + shear (ns/pixel),
// with the 2-plane VJP.  Figures and floors: benchmarks/README.md.
#include <lensing/cosmology/flat_lcdm.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/raytrace/critical_curves.hpp>
#include <lensing/raytrace/image_positions.hpp>
#include <lensing/raytrace/multi_plane.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <random>
#include <utility>
#include <vector>

namespace {

template <class Scalar>
using Plane = lensing::Composite<lensing::SIE<Scalar>, lensing::ExternalShear<Scalar>>;

template <class Scalar>
Plane<Scalar> plane(int k = 0) {
  return Plane<Scalar>(lensing::SIE<Scalar>{Scalar(k == 0 ? 1.0 : 0.1), Scalar(0.12), Scalar(-0.06),
                                            Scalar(0.02 + 0.3 * k), Scalar(-0.01 - 0.2 * k)},
                       lensing::ExternalShear<Scalar>{Scalar(0.03), Scalar(0.02), Scalar(0), Scalar(0)});
}

void set_ns_per_pixel(benchmark::State& state, double pixels) {
  state.counters["ns/pixel"] =
      benchmark::Counter(pixels * 1e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// Image finding for random sources inside the quad caustic (|beta| < 0.05"),
// with a finder built once; range(0) = cells per side.
void BM_find_images(benchmark::State& state) {
  auto const lens = plane<double>();
  lensing::ImageFinder<Plane<double>> const finder(Kokkos::DefaultHostExecutionSpace(), lens, 2.5, int(state.range(0)));
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(-0.05, 0.05);
  std::vector<std::pair<double, double>> src(1024);
  for (auto& s : src)
    s = {u(rng), u(rng)};
  size_t k = 0, images = 0;
  for (auto _ : state) {
    auto const im = finder.find(src[k].first, src[k].second);
    images += im.size();
    k = (k + 1) % src.size();
  }
  state.counters["solves/s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["images/solve"] = double(images) / double(state.iterations());
}
BENCHMARK(BM_find_images)->Arg(64)->Arg(128)->UseRealTime();

// Building the finder (the grid mapping, parallel on the host space).
void BM_image_finder_setup(benchmark::State& state) {
  auto const lens = plane<double>();
  for (auto _ : state) {
    lensing::ImageFinder<Plane<double>> const finder(Kokkos::DefaultHostExecutionSpace(), lens, 2.5,
                                                     int(state.range(0)));
    benchmark::DoNotOptimize(&finder);
  }
}
BENCHMARK(BM_image_finder_setup)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

// Critical curves and caustics of SIE + shear on range(0)^2 cells.
template <class Space>
void BM_critical_curves(benchmark::State& state) {
  auto const lens = plane<double>();
  Space space;
  size_t vertices = 0;
  for (auto _ : state) {
    auto const c = lensing::critical_curves(space, lens, 2.5, int(state.range(0)));
    vertices = c.empty() ? 0 : c[0].x.size();
  }
  state.counters["vertices"] = double(vertices);
  set_ns_per_pixel(state, double(state.range(0) + 1) * double(state.range(0) + 1));
}
BENCHMARK_TEMPLATE(BM_critical_curves, Kokkos::Serial)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_critical_curves, Kokkos::DefaultHostExecutionSpace)
    ->Arg(512)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

template <class Scalar, std::size_t... I>
auto stack(std::index_sequence<I...>) {
  lensing::FlatLambdaCDM<Scalar> const cosmo(70, 0.3);
  std::array<double, sizeof...(I)> z{};
  for (std::size_t i = 0; i < sizeof...(I); ++i)
    z[i] = 0.1 + 0.15 * i;
  return lensing::make_multi_plane(cosmo, 2.5, z, plane<Scalar>(int(I))...);
}

// Multi-plane ray shooting on a 256^2 grid through N planes.
template <class Space, class Scalar, int N>
void BM_multi_plane(benchmark::State& state) {
  auto const mp = stack<Scalar>(std::make_index_sequence<N>{});
  int const n = int(state.range(0));
  auto const grid = lensing::PixelGrid<Scalar>::square(n, Scalar(5.0) / Scalar(n));
  lensing::View2D<Scalar, typename Space::memory_space> bx("bx", n, n), by("by", n, n);
  Space space;
  for (auto _ : state) {
    lensing::multi_plane_ray_shoot(space, mp, grid, bx, by);
    space.fence();
  }
  set_ns_per_pixel(state, double(n) * n);
}
// Single-plane reference (lensing::ray_shoot of one SIE + shear).
template <class Space, class Scalar>
void BM_single_plane(benchmark::State& state) {
  auto const lens = plane<Scalar>();
  int const n = int(state.range(0));
  auto const grid = lensing::PixelGrid<Scalar>::square(n, Scalar(5.0) / Scalar(n));
  lensing::View2D<Scalar, typename Space::memory_space> bx("bx", n, n), by("by", n, n);
  Space space;
  for (auto _ : state) {
    lensing::ray_shoot(space, lens, grid, bx, by);
    space.fence();
  }
  set_ns_per_pixel(state, double(n) * n);
}
template <class Space, class Scalar>
void BM_multi_plane_vjp2(benchmark::State& state) {
  auto const mp = stack<Scalar>(std::make_index_sequence<2>{});
  using MP = std::decay_t<decltype(mp)>;
  int const n = int(state.range(0));
  auto const grid = lensing::PixelGrid<Scalar>::square(n, Scalar(5.0) / Scalar(n));
  using Mem = typename Space::memory_space;
  lensing::View2D<Scalar, Mem> wx("wx", n, n), wy("wy", n, n);
  Kokkos::deep_copy(wx, Scalar(0.3));
  Kokkos::deep_copy(wy, Scalar(-0.2));
  lensing::View1D<Scalar, Mem> g("g", MP::num_params);
  lensing::MapVjpWorkspace<Scalar, Mem> work(grid, MP::num_params);
  Space space;
  for (auto _ : state) {
    lensing::multi_plane_ray_shoot_vjp(space, mp, grid, wx, wy, g, work);
    space.fence();
  }
  set_ns_per_pixel(state, double(n) * n);
}

using Host = Kokkos::DefaultHostExecutionSpace;
BENCHMARK_TEMPLATE(BM_single_plane, Kokkos::Serial, double)->Arg(256)->UseRealTime();
BENCHMARK_TEMPLATE(BM_multi_plane, Kokkos::Serial, double, 1)->Arg(256)->UseRealTime();
BENCHMARK_TEMPLATE(BM_multi_plane, Kokkos::Serial, double, 2)->Arg(256)->UseRealTime();
BENCHMARK_TEMPLATE(BM_multi_plane, Kokkos::Serial, double, 5)->Arg(256)->UseRealTime();
BENCHMARK_TEMPLATE(BM_multi_plane, Kokkos::Serial, double, 10)->Arg(256)->UseRealTime();
BENCHMARK_TEMPLATE(BM_multi_plane, Kokkos::Serial, float, 10)->Arg(256)->UseRealTime();
BENCHMARK_TEMPLATE(BM_multi_plane_vjp2, Kokkos::Serial, double)->Arg(256)->UseRealTime();

BENCHMARK_TEMPLATE(BM_single_plane, Host, double)->Arg(256)->UseRealTime();
BENCHMARK_TEMPLATE(BM_multi_plane, Host, double, 2)->Arg(256)->UseRealTime();
BENCHMARK_TEMPLATE(BM_multi_plane, Host, double, 5)->Arg(256)->UseRealTime();
BENCHMARK_TEMPLATE(BM_multi_plane, Host, double, 10)->Arg(256)->UseRealTime();
BENCHMARK_TEMPLATE(BM_multi_plane, Host, float, 10)->Arg(256)->UseRealTime();
BENCHMARK_TEMPLATE(BM_multi_plane_vjp2, Host, double)->Arg(256)->UseRealTime();

}  // namespace
