// Deflection maps per mass profile: ns per pixel, float and double, Serial
// (1 thread) and OpenMP (all threads of OMP_NUM_THREADS), grids 64^2..1024^2;
// and the parameter VJP of the deflection map relative to the forward map;
// SIE + shear convergence, shear and magnification maps (Serial and OpenMP).
// Floors per pixel and measured figures: benchmarks/README.md.
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/population.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

#include <benchmark/benchmark.h>

#include "profile_zoo.hpp"

namespace {

// "ns/pixel" = wall time per iteration / pixels, in ns.
void set_ns_per_pixel(benchmark::State& state, double pixels) {
  state.counters["ns/pixel"] =
      benchmark::Counter(pixels * 1e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

template <class Space, class Lens>
void deflection(benchmark::State& state, Lens const& lens) {
  using Scalar = typename Lens::scalar_type;
  int const n = static_cast<int>(state.range(0));
  auto const grid = lensing::PixelGrid<Scalar>::square(n, Scalar(4.0) / Scalar(n));
  lensing::View2D<Scalar, typename Space::memory_space> ax("ax", n, n), ay("ay", n, n);
  Space space;
  for (auto _ : state) {
    lensing::deflection_map(space, lens, grid, ax, ay);
    space.fence();
  }
  set_ns_per_pixel(state, double(n) * n);
}

template <class Space, class Lens>
void deflection_vjp(benchmark::State& state, Lens const& lens) {
  using Scalar = typename Lens::scalar_type;
  int const n = static_cast<int>(state.range(0));
  auto const grid = lensing::PixelGrid<Scalar>::square(n, Scalar(4.0) / Scalar(n));
  using Mem = typename Space::memory_space;
  lensing::View2D<Scalar, Mem> wx("wx", n, n), wy("wy", n, n);
  Kokkos::deep_copy(wx, Scalar(0.3));
  Kokkos::deep_copy(wy, Scalar(-0.2));
  lensing::View1D<Scalar, Mem> g("g", Lens::num_params);
  lensing::MapVjpWorkspace<Scalar, Mem> work(grid, Lens::num_params);
  Space space;
  for (auto _ : state) {
    lensing::deflection_map_vjp(space, lens, grid, wx, wy, g, work);
    space.fence();
  }
  set_ns_per_pixel(state, double(n) * n);
}

// The Hessian-based maps (convergence, shear, magnification) of one lens,
// for the OpenMP-at-1-thread against Serial comparison (issue 21).
enum class HessianMap { convergence, shear, magnification };

template <class Space, HessianMap Which, class Lens>
void hessian_map(benchmark::State& state, Lens const& lens) {
  using Scalar = typename Lens::scalar_type;
  int const n = static_cast<int>(state.range(0));
  auto const grid = lensing::PixelGrid<Scalar>::square(n, Scalar(4.0) / Scalar(n));
  lensing::View2D<Scalar, typename Space::memory_space> a("a", n, n), b("b", n, n);
  Space space;
  for (auto _ : state) {
    if constexpr (Which == HessianMap::convergence)
      lensing::convergence_map(space, lens, grid, a);
    else if constexpr (Which == HessianMap::shear)
      lensing::shear_map(space, lens, grid, a, b);
    else
      lensing::magnification_map(space, lens, grid, a);
    space.fence();
  }
  set_ns_per_pixel(state, double(n) * n);
}

}  // namespace

#define LENSING_BENCH_PROFILE(name, make)                                                                       \
  static void BM_##name##_double_serial(benchmark::State& s) { deflection<Kokkos::Serial>(s, make<double>()); } \
  static void BM_##name##_double_openmp(benchmark::State& s) {                                                  \
    deflection<Kokkos::DefaultHostExecutionSpace>(s, make<double>());                                           \
  }                                                                                                             \
  static void BM_##name##_float_serial(benchmark::State& s) { deflection<Kokkos::Serial>(s, make<float>()); }   \
  static void BM_##name##_float_openmp(benchmark::State& s) {                                                   \
    deflection<Kokkos::DefaultHostExecutionSpace>(s, make<float>());                                            \
  }                                                                                                             \
  static void BM_##name##_vjp_double_openmp(benchmark::State& s) {                                              \
    deflection_vjp<Kokkos::DefaultHostExecutionSpace>(s, make<double>());                                       \
  }                                                                                                             \
  BENCHMARK(BM_##name##_double_serial)->Arg(256)->UseRealTime();                                                \
  BENCHMARK(BM_##name##_double_openmp)->Arg(64)->Arg(256)->Arg(1024)->UseRealTime();                            \
  BENCHMARK(BM_##name##_float_serial)->Arg(256)->UseRealTime();                                                 \
  BENCHMARK(BM_##name##_float_openmp)->Arg(64)->Arg(256)->Arg(1024)->UseRealTime();                             \
  BENCHMARK(BM_##name##_vjp_double_openmp)->Arg(256)->UseRealTime();

LENSING_BENCH_PROFILE(sie_shear, lensing::bench::sie_shear)
LENSING_BENCH_PROFILE(epl, lensing::bench::epl)
LENSING_BENCH_PROFILE(nfw, lensing::bench::nfw)
LENSING_BENCH_PROFILE(nfw_ellipse_cse, lensing::bench::nfw_ellipse_cse)
LENSING_BENCH_PROFILE(nfw_ellipse_exact, lensing::bench::nfw_ellipse)
LENSING_BENCH_PROFILE(point_mass, lensing::bench::point_mass)
LENSING_BENCH_PROFILE(sis, lensing::bench::sis)

#define LENSING_BENCH_HESSIAN_MAP(name, which)                                                                 \
  static void BM_sie_shear_##name##_double_serial(benchmark::State& s) {                                       \
    hessian_map<Kokkos::Serial, HessianMap::which>(s, lensing::bench::sie_shear<double>());                    \
  }                                                                                                            \
  static void BM_sie_shear_##name##_double_openmp(benchmark::State& s) {                                       \
    hessian_map<Kokkos::DefaultHostExecutionSpace, HessianMap::which>(s, lensing::bench::sie_shear<double>()); \
  }                                                                                                            \
  BENCHMARK(BM_sie_shear_##name##_double_serial)->Arg(256)->UseRealTime();                                     \
  BENCHMARK(BM_sie_shear_##name##_double_openmp)->Arg(256)->UseRealTime();

LENSING_BENCH_HESSIAN_MAP(convergence, convergence)
LENSING_BENCH_HESSIAN_MAP(shear, shear)
LENSING_BENCH_HESSIAN_MAP(magnification, magnification)

// 1000 TNFW subhaloes (Population), 64^2 and 256^2: ns per pixel per subhalo.
template <class Space, class S>
static void population(benchmark::State& state) {
  using P = lensing::TNFW<S>;
  int const n = static_cast<int>(state.range(0)), members = 1000;
  std::vector<S> params;
  for (int m = 0; m < members; ++m)
    for (S v : {S(0.1 + 0.001 * (m % 50)), S(0.002), S(2.0), S(-2 + 4 * ((m * 37) % 101) / 101.0),
                S(-2 + 4 * ((m * 71) % 103) / 103.0)})
      params.push_back(v);
  Space space;
  auto const pop = lensing::Population<P, typename Space::memory_space>::from_params(space, params);
  auto const grid = lensing::PixelGrid<S>::square(n, S(4.0) / S(n));
  lensing::View2D<S, typename Space::memory_space> ax("ax", n, n), ay("ay", n, n);
  for (auto _ : state) {
    lensing::deflection_map(space, pop, grid, ax, ay);
    space.fence();
  }
  set_ns_per_pixel(state, double(n) * n * members);
}
static void BM_tnfw_population_double_openmp(benchmark::State& s) {
  population<Kokkos::DefaultHostExecutionSpace, double>(s);
}
static void BM_tnfw_population_float_openmp(benchmark::State& s) {
  population<Kokkos::DefaultHostExecutionSpace, float>(s);
}
BENCHMARK(BM_tnfw_population_double_openmp)->Arg(64)->Arg(256)->UseRealTime();
BENCHMARK(BM_tnfw_population_float_openmp)->Arg(64)->Arg(256)->UseRealTime();
