// Fill the supersampled coordinate arrays of an n x n grid.
// Floor: a pure write stream of 2*sizeof(Scalar) bytes per fine pixel (no
// reads, ~4 flops): the bound is the memory write bandwidth.  Reported as
// pixels/s and bytes/s.  Baseline in the same run: a plain Kokkos deep_copy of
// a constant into the same two arrays (the same bytes, no arithmetic).
#include <lensing/geometry/grid_coordinates.hpp>

#include <benchmark/benchmark.h>

template <class Space, class Scalar>
static void BM_grid_coordinates(benchmark::State& state) {
  int const n = static_cast<int>(state.range(0)), k = static_cast<int>(state.range(1));
  auto const grid = lensing::PixelGrid<Scalar>::square(n, Scalar(0.05), k);
  lensing::View2D<Scalar, typename Space::memory_space> x("x", n * k, n * k), y("y", n * k, n * k);
  Space space;
  for (auto _ : state) {
    lensing::grid_coordinates(space, grid, x, y);
    space.fence();
  }
  double const pixels = double(n) * n * k * k;
  state.counters["pixels/s"] = benchmark::Counter(pixels, benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(pixels) * 2 * int64_t(sizeof(Scalar)));
}

template <class Space, class Scalar>
static void BM_fill_baseline(benchmark::State& state) {
  int const n = static_cast<int>(state.range(0)), k = static_cast<int>(state.range(1));
  lensing::View2D<Scalar, typename Space::memory_space> x("x", n * k, n * k), y("y", n * k, n * k);
  Space space;
  for (auto _ : state) {
    Kokkos::deep_copy(space, x, Scalar(1));
    Kokkos::deep_copy(space, y, Scalar(2));
    space.fence();
  }
  double const pixels = double(n) * n * k * k;
  state.counters["pixels/s"] = benchmark::Counter(pixels, benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(pixels) * 2 * int64_t(sizeof(Scalar)));
}

#define LENSING_GRID_ARGS ->Args({256, 1})->Args({1024, 1})->Args({256, 4})->UseRealTime()
BENCHMARK_TEMPLATE(BM_grid_coordinates, Kokkos::DefaultHostExecutionSpace, float) LENSING_GRID_ARGS;
BENCHMARK_TEMPLATE(BM_grid_coordinates, Kokkos::DefaultHostExecutionSpace, double) LENSING_GRID_ARGS;
BENCHMARK_TEMPLATE(BM_fill_baseline, Kokkos::DefaultHostExecutionSpace, double) LENSING_GRID_ARGS;
#if defined(KOKKOS_ENABLE_SERIAL) && defined(KOKKOS_ENABLE_OPENMP)
BENCHMARK_TEMPLATE(BM_grid_coordinates, Kokkos::Serial, double) LENSING_GRID_ARGS;
#endif
