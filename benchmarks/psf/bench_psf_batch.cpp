// Batched PSF convolution on the default host space (threads from
// OMP_NUM_THREADS): GaussianFilter on a batch (n, ny, nx) against the
// hand-fused batched blur the training-set generator carried before the PSF
// operators took batches (kept here, frozen, as the baseline: the same sums,
// x pass in place on the input, y pass into the output), against a loop of
// single-image applies, and DirectConvolution / FftConvolution batches.
// Counter images/s.  The case of the generator: 64^2 float images, PSF FWHM
// 0.17" on 0.1" pixels (radius 4), n = 256.
//
// Measured (2026-12-05, 2-core Skylake-AVX512 VM, GCC 12 -O3, images/s, real
// time; one run): GaussianFilter batch, max_batch = n: 152k (1 thread), 269k
// (2 threads); max_batch = 32: 148k / 271k; the former private blur: 119k /
// 239k.  At 1 thread, one launch per image (max_batch = 1: 134k; rank-2 loop:
// 141k) is close, but each launch waits for every thread: on a loaded machine
// at 2 threads the per-image forms fell to ~5k while the batch held, so give
// the filter the batch size (or a chunk of it) at construction.
#include <lensing/psf/convolution.hpp>
#include <lensing/psf/fft_convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/psf/kernels.hpp>

#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

namespace {

using Space = Kokkos::DefaultHostExecutionSpace;
using Mem = Space::memory_space;

constexpr double fwhm = 0.17, pixel_scale = 0.1;

// The baseline: host path of the former TrainingSetGenerator::blur (needs
// nx + 2r <= 512; overwrites `in`).
template <class S>
void reference_blur(Space const& space, lensing::View1D<S, Mem> const& w, int r, lensing::View3D<S, Mem> const& in,
                    lensing::View3D<S, Mem> const& out) {
  constexpr int cap = 512;
  int const ny = int(in.extent(1)), nx = int(in.extent(2));
  long const rows = long(in.extent(0)) * ny;
  Kokkos::parallel_for(
      "bench::reference_blur_x", Kokkos::RangePolicy<Space, Kokkos::IndexType<long>>(space, 0, rows),
      KOKKOS_LAMBDA(long row) {
        S buf[cap];
        S* __restrict const p = &in(int(row / ny), int(row % ny), 0);
        for (int j = 0; j < nx + 2 * r; ++j)
          buf[j] = p[j - r < 0 ? 0 : (j - r >= nx ? nx - 1 : j - r)];
        for (int ix = 0; ix < nx; ++ix)
          p[ix] = S(0);
        for (int m = 0; m <= 2 * r; ++m) {
          S const wm = w(m);
          for (int ix = 0; ix < nx; ++ix)
            p[ix] += wm * buf[ix + m];
        }
      });
  Kokkos::parallel_for(
      "bench::reference_blur_y", Kokkos::RangePolicy<Space, Kokkos::IndexType<long>>(space, 0, rows),
      KOKKOS_LAMBDA(long row) {
        int const b = int(row / ny), iy = int(row % ny);
        S* __restrict const o = &out(b, iy, 0);
        for (int ix = 0; ix < nx; ++ix)
          o[ix] = S(0);
        for (int m = -r; m <= r; ++m) {
          S const wm = w(m + r);
          S const* __restrict const q = &in(b, iy + m < 0 ? 0 : (iy + m >= ny ? ny - 1 : iy + m), 0);
          for (int ix = 0; ix < nx; ++ix)
            o[ix] += wm * q[ix];
        }
      });
}

template <class S>
lensing::View3D<S, Mem> test_batch(int n, int size) {
  lensing::View3D<S, Mem> v("in", n, size, size);
  auto h = Kokkos::create_mirror_view(v);
  for (int b = 0; b < n; ++b)
    for (int iy = 0; iy < size; ++iy)
      for (int ix = 0; ix < size; ++ix)
        h(b, iy, ix) = S(1 + std::sin(0.3 * ix + 0.2 * iy + b));
  Kokkos::deep_copy(v, h);
  return v;
}

void images_per_second(benchmark::State& state, int n) {
  state.counters["images/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
}

// args: n, image size.
template <class S>
void BM_gaussian_reference(benchmark::State& state) {
  int const n = int(state.range(0)), size = int(state.range(1));
  lensing::GaussianFilter<S, Mem> const g(fwhm, pixel_scale, 1, 1);
  auto const in = test_batch<S>(n, size);
  lensing::View3D<S, Mem> out("out", n, size, size);
  Space space;
  for (auto _ : state) {
    reference_blur(space, g.weights(), g.radius(), in, out);
    space.fence();
  }
  images_per_second(state, n);
}

// args: n, image size, max_batch (0: n).
template <class S>
void BM_gaussian_batch(benchmark::State& state) {
  int const n = int(state.range(0)), size = int(state.range(1)), cap = state.range(2) > 0 ? int(state.range(2)) : n;
  lensing::GaussianFilter<S, Mem> const g(fwhm, pixel_scale, size, size, 5.0, cap);
  auto const in = test_batch<S>(n, size);
  lensing::View3D<S, Mem> out("out", n, size, size);
  Space space;
  for (auto _ : state) {
    g.apply(space, in, out);
    space.fence();
  }
  images_per_second(state, n);
}

// One rank-2 apply per image (what a caller without batches does).  args: n, image size.
template <class S>
void BM_gaussian_loop(benchmark::State& state) {
  int const n = int(state.range(0)), size = int(state.range(1));
  lensing::GaussianFilter<S, Mem> const g(fwhm, pixel_scale, size, size);
  auto const in = test_batch<S>(n, size);
  lensing::View3D<S, Mem> out("out", n, size, size);
  Space space;
  for (auto _ : state) {
    for (int b = 0; b < n; ++b)
      g.apply(space, Kokkos::subview(in, b, Kokkos::ALL, Kokkos::ALL),
              Kokkos::subview(out, b, Kokkos::ALL, Kokkos::ALL));
    space.fence();
  }
  images_per_second(state, n);
}

// args: n, image size, kernel size, 0 = direct, 1 = FFT.
template <class S>
void BM_convolution_batch(benchmark::State& state) {
  int const n = int(state.range(0)), size = int(state.range(1)), ksize = int(state.range(2));
  bool const fft = state.range(3) != 0;
  // sigma = 1 pixel, truncated at radius ksize / 2.
  auto const k = lensing::gaussian_psf_kernel<S>(2.3548200450309493, 1.0, ksize / 2 - 0.5);
  Space space;
  lensing::DirectConvolution<S, Mem> const direct(k, size, size);
  lensing::FftConvolution<S, Mem> const f(space, k, size, size);
  auto const in = test_batch<S>(n, size);
  lensing::View3D<S, Mem> out("out", n, size, size);
  for (auto _ : state) {
    if (fft)
      f.apply(space, in, out);
    else
      direct.apply(space, in, out);
    space.fence();
  }
  state.counters["kernel"] = k.size;
  images_per_second(state, n);
}

}  // namespace

BENCHMARK_TEMPLATE(BM_gaussian_reference, float)->Args({256, 64})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_gaussian_batch, float)
    ->Args({256, 64, 0})
    ->Args({256, 64, 32})
    ->Args({256, 64, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_gaussian_loop, float)->Args({256, 64})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_gaussian_reference, double)->Args({256, 64})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_gaussian_batch, double)->Args({256, 64, 0})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_convolution_batch, float)
    ->Args({256, 64, 9, 0})
    ->Args({256, 64, 9, 1})
    ->Args({256, 64, 21, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
