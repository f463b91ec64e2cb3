// Deflection (and potential) maps from an n x n convergence map by
// zero-padded FFT convolution (ConvergenceDeflection), n = 256, 512, 1024.
// Floor: three real FFTs of (2n)^2 points (one forward, two inverse) at
// ~2.5 N log2 N flops each, plus 3 passes over the padded arrays.
// Baseline in the same run: one forward FFTW r2c of the same padded size.
#include <lensing/deflection/convergence_deflection.hpp>

#include <benchmark/benchmark.h>

#include <cmath>

static void BM_fft_deflection(benchmark::State& state) {
  using Space = Kokkos::DefaultHostExecutionSpace;
  int const n = static_cast<int>(state.range(0));
  auto const grid = lensing::PixelGrid<double>::square(n, 0.05);
  lensing::View2D<double, Kokkos::HostSpace> k("k", n, n), ax("ax", n, n), ay("ay", n, n);
  for (int iy = 0; iy < n; ++iy)
    for (int ix = 0; ix < n; ++ix)
      k(iy, ix) = 1.0 / (1.0 + 0.01 * ((ix - n / 2) * (ix - n / 2) + (iy - n / 2) * (iy - n / 2)));
  Space space;
  lensing::ConvergenceDeflection<double, Kokkos::HostSpace> fft(space, grid);
  for (auto _ : state)
    fft.deflection(space, k, ax, ay);
  double const N = 4.0 * n * n;
  state.counters["MFLOP/s(3 FFTs)"] =
      benchmark::Counter(3 * 2.5 * N * std::log2(N) * 1e-6, benchmark::Counter::kIsIterationInvariantRate);
}

static void BM_fftw_r2c_baseline(benchmark::State& state) {
  int const n = static_cast<int>(state.range(0));
  int const p = 2 * n;
  double* in = fftw_alloc_real(size_t(p) * p);
  fftw_complex* out = fftw_alloc_complex(size_t(p) * (n + 1));
  fftw_plan plan = fftw_plan_dft_r2c_2d(p, p, in, out, FFTW_ESTIMATE);
  for (int i = 0; i < p * p; ++i)
    in[i] = std::sin(0.001 * i);
  for (auto _ : state)
    fftw_execute(plan);
  fftw_destroy_plan(plan);
  fftw_free(in);
  fftw_free(out);
}

BENCHMARK(BM_fft_deflection)->Arg(256)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_fftw_r2c_baseline)->Arg(256)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
