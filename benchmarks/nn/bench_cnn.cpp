// Hezaveh-style CNN (Hezaveh, Perreault Levasseur & Marshall 2017) on 64x64x1
// images, batch 32: conv5x5·32 -> ReLU -> pool2 -> conv3x3·64 -> ReLU -> pool2
// -> conv3x3·128 -> ReLU -> pool2 -> dense 256 -> ReLU -> dense 5
// (2.19 M parameters, 86 MFLOP forward per image).  Reports ms per image for
// forward and forward+backward (parameter gradients, no input gradient, as
// PyTorch's training step) and GFLOP/s; PyTorch 1.13 CPU on this kind of
// machine, 2 threads: forward 1.68 ms/image, forward+backward 3.45 ms/image.
//
// DeepLens-style pre-activated bottleneck ResNet (Lanusse et al. 2018) on
// 45x45x1, batch 32: 7x7·32 stem, 5 stages x 3 bottleneck units (widths 32,
// 64, 128, 256, 512, bottleneck width/4, stride 2 and a projection at the
// first unit of stages 2-5; spatial 45/23/12/6/3), global average pool,
// dense 512 -> 1: 1.26 M parameters, 92.1 MFLOP forward per image.  PyTorch:
// forward 2.68, forward+backward 8.86 ms/image.
//
// Run with OMP_NUM_THREADS=2 OMP_PROC_BIND=false (see benchmarks/README.md).
#include <lensing/nn/activation.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/detail/masked_rows.hpp>
#include <lensing/nn/flatten.hpp>
#include <lensing/nn/gemm.hpp>
#include <lensing/nn/pooling.hpp>
#include <lensing/nn/residual.hpp>
#include <lensing/nn/sequential.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

namespace nn = lensing::nn;

template <class S, class Mem>
auto make_hezaveh(int batch) {
  return nn::make_sequential(nn::Shape4{batch, 1, 64, 64}, nn::Conv2D<S, Mem>(1, 32, 5, 1, 2), nn::ReLU<S, Mem>(),
                             nn::MaxPool2D<S, Mem>(2), nn::Conv2D<S, Mem>(32, 64, 3, 1, 1), nn::ReLU<S, Mem>(),
                             nn::MaxPool2D<S, Mem>(2), nn::Conv2D<S, Mem>(64, 128, 3, 1, 1), nn::ReLU<S, Mem>(),
                             nn::MaxPool2D<S, Mem>(2), nn::Flatten<S, Mem>(), nn::Dense<S, Mem>(8192, 256),
                             nn::ReLU<S, Mem>(), nn::Dense<S, Mem>(256, 5));
}

// Forward FLOP per image: 2 x multiply-adds of the three convolutions and two dense layers.
constexpr double forward_flop =
    2.0 * (64.0 * 64 * 32 * 25 + 32.0 * 32 * 64 * 288 + 16.0 * 16 * 128 * 576 + 8192.0 * 256 + 256.0 * 5);

void set_counters(benchmark::State& state, int batch, double flop_per_image) {
  state.counters["ms/image"] =
      benchmark::Counter(batch * 1e-3, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["images/s"] = benchmark::Counter(batch, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(batch * flop_per_image * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

template <class S, class Space>
void hezaveh(benchmark::State& state, bool train) {
  using Mem = typename Space::memory_space;
  int const batch = static_cast<int>(state.range(0));
  auto net = make_hezaveh<S, Mem>(batch);
  net.initialize(1);
  nn::Tensor<S, Mem> x("x", batch, 1, 64, 64);
  Kokkos::deep_copy(x, S(0.1));
  Kokkos::deep_copy(net.output_gradient(), S(1e-3));
  Space space;
  net.forward(space, x);  // warm-up
  for (auto _ : state) {
    net.forward(space, x);
    if (train) net.backward(space, x);
    space.fence();
  }
  state.counters["params"] = double(net.num_params());
  // Backward of a convolution or dense layer costs 2x its forward (input and weight gradients).
  set_counters(state, batch, train ? 3 * forward_flop : forward_flop);
}

template <class S, class Mem>
auto make_deeplens(int batch) {
  using C = nn::Conv2D<S, Mem>;
  auto id = [&](int c, int h) {
    return nn::make_preact_bottleneck_identity<S, Mem>(nn::Shape4{batch, c, h, h}, c / 4);
  };
  auto down = [&](int c, int h) {
    return nn::make_preact_bottleneck<S, Mem>(nn::Shape4{batch, c / 2, h, h}, c / 4, c, 2);
  };
  return nn::make_sequential(nn::Shape4{batch, 1, 45, 45}, C(1, 32, 7, 1, 3), id(32, 45), id(32, 45), id(32, 45),
                             down(64, 45), id(64, 23), id(64, 23), down(128, 23), id(128, 12), id(128, 12),
                             down(256, 12), id(256, 6), id(256, 6), down(512, 6), id(512, 3), id(512, 3),
                             nn::GlobalAvgPool<S, Mem>(), nn::Dense<S, Mem>(512, 1));
}
constexpr double deeplens_flop = 92.085696e6;

template <class S, class Space>
void deeplens(benchmark::State& state, bool train) {
  using Mem = typename Space::memory_space;
  int const batch = static_cast<int>(state.range(0));
  auto net = make_deeplens<S, Mem>(batch);
  net.initialize(1);
  nn::Tensor<S, Mem> x("x", batch, 1, 45, 45);
  Kokkos::deep_copy(x, S(0.1));
  Kokkos::deep_copy(net.output_gradient(), S(1e-3));
  Space space;
  net.forward(space, x);
  for (auto _ : state) {
    net.forward(space, x);
    if (train) net.backward(space, x);
    space.fence();
  }
  state.counters["params"] = double(net.num_params());
  set_counters(state, batch, train ? 3 * deeplens_flop : deeplens_flop);
}

// The library's GEMM (nn::gemm: Eigen's kernels, the larger of m and n split
// over the threads of the space) on row-major m x k times k x n, float: the
// machine's practical GEMM ceiling (1024^3) and the per-sample shapes of the
// DeepLens-like network's convolutions (C_out x (oh ow) x (C_in k^2)), to
// see how far below the ceiling its small products run.
void BM_gemm_float(benchmark::State& state) {
  long const m = state.range(0), n = state.range(1), k = state.range(2);
  std::vector<float> a(std::size_t(m * k)), b(std::size_t(k * n)), c(std::size_t(m * n));
  for (std::size_t i = 0; i < a.size(); ++i)
    a[i] = float(std::sin(0.37 * double(i)));
  for (std::size_t i = 0; i < b.size(); ++i)
    b[i] = float(std::cos(0.23 * double(i)));
  Kokkos::DefaultHostExecutionSpace space;
  for (auto _ : state) {
    nn::gemm(space, false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * double(m) * double(n) * double(k) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// One sample of a "same" convolution's two GEMMs (C_in channels → C_out, k x k
// pad k/2, stride s (arg 5), h x h map, float, 1 thread): forward W · col and
// weight gradient dy · colᵀ, with col formed by im2col (arg 4 = 0, the path
// before) or read from k shifted copies of the input — at stride 2 of its
// phase planes — (arg 4 = 1, detail::ShiftedPlanes and gemm_host_offset_rows):
// the same values, without the K x P col.
void BM_same_conv_gemms(benchmark::State& state) {
  long const ci = state.range(0), co = state.range(1), h = state.range(2), kk = state.range(3), st = state.range(5);
  bool const planes = state.range(4) != 0;
  long const oh = (h + st - 1) / st;
  nn::detail::ConvDims const d{1, ci, h, h, co, oh, oh, kk, kk, st, st, kk / 2, kk / 2, 1, 1};
  long const k = ci * kk * kk, p = oh * oh;
  std::vector<float> x(std::size_t(ci * h * h)), w(std::size_t(co * k)), dy(std::size_t(co * p)),
      y(std::size_t(co * p)), gw(std::size_t(co * k)),
      col(std::size_t(std::max(k * p, nn::detail::ShiftedPlanes::size(d))));
  std::vector<long> offset(static_cast<std::size_t>(k));
  nn::detail::ShiftedPlanes::offsets(d, offset.data());
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = float(std::sin(0.37 * double(i)));
  for (std::size_t i = 0; i < w.size(); ++i)
    w[i] = float(std::cos(0.23 * double(i)));
  for (std::size_t i = 0; i < dy.size(); ++i)
    dy[i] = float(std::cos(0.71 * double(i)));
  for (auto _ : state) {
    std::fill(y.begin(), y.end(), 0.0f);
    if (planes) {
      nn::detail::ShiftedPlanes::fill(d, x.data(), col.data());
      nn::detail::gemm_host_offset_rows(false, co, p, k, w.data(), k, static_cast<float const*>(col.data()),
                                        offset.data(), y.data(), p);
      nn::detail::gemm_host_offset_rows(true, co, p, k, dy.data(), p, static_cast<float const*>(col.data()),
                                        offset.data(), gw.data(), k);
    } else {
      nn::detail::im2col_masked(d, x.data(), col.data());
      nn::detail::gemm_host(false, false, co, p, k, 1.0f, w.data(), k, col.data(), p, 1.0f, y.data(), p);
      nn::detail::gemm_host(false, true, co, k, p, 1.0f, dy.data(), p, col.data(), p, 1.0f, gw.data(), k);
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(gw.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * double(co) * double(p) * double(k) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// One Conv2D layer's forward + backward (input and parameter gradients),
// batch 32, float, through the layer (im2col or the shifted planes, the
// GEMMs, the bias fill and sums, col2im): args C_in, C_out, h, k, stride,
// pad k/2 — the ResNet's strided 1x1 projections and strided 3x3 layers.
void BM_conv2d_layer(benchmark::State& state) {
  int const ci = int(state.range(0)), co = int(state.range(1)), h = int(state.range(2)), kk = int(state.range(3)),
            st = int(state.range(4)), n = 32;
  using Mem = Kokkos::HostSpace;
  nn::Conv2D<float, Mem> layer(ci, co, kk, st, kk / 2);
  layer.initialize(1);
  nn::Shape4 const in{n, ci, h, h}, out = layer.output_shape(in);
  nn::Tensor<float, Mem> x("x", n, ci, h, h), dx("dx", n, ci, h, h), y("y", out.n, out.c, out.h, out.w),
      dy("dy", out.n, out.c, out.h, out.w);
  nn::ParamVector<float, Mem> g("g", layer.num_params());
  for (std::size_t i = 0; i < x.size(); ++i)
    x.data()[i] = float(std::sin(0.37 * double(i)));
  for (std::size_t i = 0; i < dy.size(); ++i)
    dy.data()[i] = float(std::cos(0.71 * double(i)));
  layer.prepare(in);
  Kokkos::DefaultHostExecutionSpace space;
  for (auto _ : state) {
    layer.forward(space, x, y);
    layer.backward(space, x, y, dy, dx, g);
    space.fence();
  }
  double const flop = 3 * 2.0 * co * double(ci) * kk * kk * out.h * out.w;  // forward, dW, dx
  set_counters(state, n, flop);
}

void BM_deeplens_forward_float(benchmark::State& s) { deeplens<float, Kokkos::DefaultHostExecutionSpace>(s, false); }
void BM_deeplens_train_float(benchmark::State& s) { deeplens<float, Kokkos::DefaultHostExecutionSpace>(s, true); }

void BM_hezaveh_forward_float(benchmark::State& s) { hezaveh<float, Kokkos::DefaultHostExecutionSpace>(s, false); }
void BM_hezaveh_train_float(benchmark::State& s) { hezaveh<float, Kokkos::DefaultHostExecutionSpace>(s, true); }
void BM_hezaveh_forward_double(benchmark::State& s) { hezaveh<double, Kokkos::DefaultHostExecutionSpace>(s, false); }
void BM_hezaveh_train_double(benchmark::State& s) { hezaveh<double, Kokkos::DefaultHostExecutionSpace>(s, true); }

}  // namespace

BENCHMARK(BM_gemm_float)
    ->Args({1024, 1024, 1024})
    ->Args({32, 2025, 147})
    ->Args({8, 2025, 72})
    ->Args({32, 2025, 8})
    ->Args({16, 529, 144})
    ->Args({32, 144, 288})
    ->Args({64, 36, 576})
    ->Args({256, 36, 64})
    ->Args({128, 9, 1152})
    ->Args({512, 9, 128})
    ->UseRealTime();
// The ResNet's 3x3 layers at 45², 23², 12² and its 7x7 stem, each path.
// Then the strided 3x3 layers of one sample a GEMM (45² → 23², 23² → 12²).
BENCHMARK(BM_same_conv_gemms)
    ->ArgsProduct({{8}, {8}, {45}, {3}, {0, 1}, {1}})
    ->ArgsProduct({{16}, {16}, {23}, {3}, {0, 1}, {1}})
    ->ArgsProduct({{32}, {32}, {12}, {3}, {0, 1}, {1}})
    ->ArgsProduct({{3}, {32}, {45}, {7}, {0, 1}, {1}})
    ->ArgsProduct({{16}, {16}, {45}, {3}, {0, 1}, {2}})
    ->ArgsProduct({{32}, {32}, {23}, {3}, {0, 1}, {2}})
    ->Unit(benchmark::kMicrosecond);
// The ResNet's four projections (1x1, stride 2) and its first two strided 3x3 layers.
BENCHMARK(BM_conv2d_layer)
    ->Args({32, 64, 45, 1, 2})
    ->Args({64, 128, 23, 1, 2})
    ->Args({128, 256, 12, 1, 2})
    ->Args({256, 512, 6, 1, 2})
    ->Args({16, 16, 45, 3, 2})
    ->Args({32, 32, 23, 3, 2})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_hezaveh_forward_float)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_hezaveh_train_float)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_hezaveh_forward_double)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_hezaveh_train_double)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_deeplens_forward_float)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_deeplens_train_float)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
