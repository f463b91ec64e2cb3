// The two networks of the science examples, exactly as trained there (built by
// the examples' own headers), for the inference budgets of issue 16 and the
// side-by-side with PyTorch (benchmarks/peers/nets_torch.py builds the same
// layers; benchmarks/peers/run_nets.sh runs both):
//  - regressor: examples/train_regressor/regressor.hpp make_network (Hezaveh
//    et al. 2017 style CNN on 64x64x1, conv 5x5/16, 3x3/32, 3x3/64, 3x3/64,
//    each ReLU + 2x2 max pool, dense 1024 -> 256, ReLU, dropout 0.1, dense
//    256 -> 35; 331,875 parameters);
//  - regressor_fused: the same network with each convolution, its ReLU and its
//    pool as one nn::Conv2DReLUPool, holding the regressor's parameters (the
//    same flat vector: the fused layer's parameters are Conv2D's);
//  - finder: examples/train_finder/finder.hpp make_deeplens(8) (DeepLens-like
//    pre-activated bottleneck ResNet on 45x45x3, 46 convolutions on the main
//    path, BatchNorm + ELU; 1,263,249 parameters).
// Forward: inference mode (dropout off, BatchNorm on running statistics), at
// batch 32 and 256.  Train: training mode, forward + backward (parameter
// gradients, no input gradient), batch 32.  Counters: ms/image, images/s and
// the parameter count.  Run with OMP_NUM_THREADS=2 OMP_PROC_BIND=false.
#include "../../examples/train_finder/finder.hpp"
#include "../../examples/train_regressor/regressor.hpp"

#include <lensing/nn/conv_relu_pool2d.hpp>

#include <benchmark/benchmark.h>

#include <cmath>

namespace {

namespace nn = lensing::nn;
using Space = Kokkos::DefaultHostExecutionSpace;

// A deterministic, non-constant input (a smooth pattern plus a hash-like
// term), so that ReLU and ELU take both branches.
template <class T>
void fill_input(T const& x) {
  auto h = Kokkos::create_mirror_view(x);
  for (std::size_t i = 0; i < h.size(); ++i)
    h.data()[i] = float(std::sin(0.37 * double(i)) + 0.5 * std::sin(12.9898 * double(i % 9973)));
  Kokkos::deep_copy(x, h);
}

template <class Net>
void run(benchmark::State& state, Net& net, nn::Tensor<float, typename Net::memory_space> const& x, bool train) {
  int const batch = int(x.extent(0));
  Space space;
  net.set_training(train);
  net.forward(space, x);  // warm-up (and shapes)
  Kokkos::deep_copy(net.output_gradient(), 1e-3f);
  // The training case's warm-up includes a backward pass, as the PyTorch
  // side's (peers/nets_torch.py, two steps): the first backward allocates
  // and zeroes the layers' gradient buffers (page faults, memset), a one-off
  // cost that inflated the first of the few timed steps.
  if (train) {
    net.backward(space, x);
    space.fence();
  }
  for (auto _ : state) {
    net.forward(space, x);
    if (train) net.backward(space, x);
    space.fence();
  }
  state.counters["params"] = double(net.num_params());
  state.counters["ms/image"] =
      benchmark::Counter(batch * 1e-3, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["images/s"] = benchmark::Counter(batch, benchmark::Counter::kIsIterationInvariantRate);
}

void regressor_case(benchmark::State& state, bool train) {
  int const batch = int(state.range(0));
  auto net = regressor::make_network(batch, 0.1, 2);
  net.initialize(1);
  nn::Tensor<float, regressor::Mem> x("x", batch, 1, regressor::image_size, regressor::image_size);
  fill_input(x);
  run(state, net, x, train);
}

// The regressor with each Conv2D + ReLU + MaxPool2D(2) as one Conv2DReLUPool.
auto make_regressor_fused(int batch) {
  using S = regressor::Scalar;
  using M = regressor::Mem;
  using F = nn::Conv2DReLUPool<S, M>;
  return nn::make_sequential(nn::Shape4{batch, 1, regressor::image_size, regressor::image_size}, F(1, 16, 5, 1, 2),
                             F(16, 32, 3, 1, 1), F(32, 64, 3, 1, 1), F(64, 64, 3, 1, 1), nn::Flatten<S, M>(),
                             nn::Dense<S, M>(64 * 4 * 4, 256), nn::ReLU<S, M>(), nn::Dropout<S, M>(0.1, 2),
                             nn::Dense<S, M>(256, int(nn::GaussianFullNLLLoss::num_outputs(regressor::num_params))));
}

void regressor_fused_case(benchmark::State& state, bool train) {
  int const batch = int(state.range(0));
  auto plain = regressor::make_network(batch, 0.1, 2);
  plain.initialize(1);
  auto net = make_regressor_fused(batch);
  if (net.num_params() != plain.num_params()) {
    state.SkipWithError("the fused regressor's parameter count differs");
    return;
  }
  Kokkos::deep_copy(net.parameters(), plain.parameters());
  nn::Tensor<float, regressor::Mem> x("x", batch, 1, regressor::image_size, regressor::image_size);
  fill_input(x);
  run(state, net, x, train);
}

void finder_case(benchmark::State& state, bool train) {
  int const batch = int(state.range(0));
  auto net = finder::make_deeplens<float, finder::Mem>(8);
  net.initialize(1);
  nn::Tensor<float, finder::Mem> x("x", batch, finder::num_bands, finder::image_size, finder::image_size);
  fill_input(x);
  run(state, net, x, train);
}

void BM_regressor_forward(benchmark::State& s) { regressor_case(s, false); }
void BM_regressor_train(benchmark::State& s) { regressor_case(s, true); }
void BM_regressor_fused_forward(benchmark::State& s) { regressor_fused_case(s, false); }
void BM_regressor_fused_train(benchmark::State& s) { regressor_fused_case(s, true); }
void BM_finder_forward(benchmark::State& s) { finder_case(s, false); }
void BM_finder_train(benchmark::State& s) { finder_case(s, true); }

}  // namespace

BENCHMARK(BM_regressor_forward)->Arg(32)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_regressor_train)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_regressor_fused_forward)->Arg(32)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_regressor_fused_train)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_finder_forward)->Arg(32)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_finder_train)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
