// Two-layer graph convolutional network (Kipf & Welling 2017) on a 10,000-node
// k = 10 nearest-neighbour graph of uniform random 2-D points, symmetric-
// normalised adjacency with self-loops, 16 -> 64 -> 8 features, ReLU between
// (PyTorch Geometric's GCNConv layers).  Reports ms per graph for forward and
// forward+backward (parameter gradients) and GFLOP/s.  PyTorch 1.13 CPU, 2
// threads: forward 9.2 ms, forward+backward 22.5 ms per graph.
#include <lensing/nn/activation.hpp>
#include <lensing/nn/graph_conv.hpp>
#include <lensing/nn/sequential.hpp>

#include <benchmark/benchmark.h>

#include <random>

namespace {

namespace nn = lensing::nn;

template <class S, class Space>
void gcn(benchmark::State& state, bool train) {
  using Mem = typename Space::memory_space;
  int const n = static_cast<int>(state.range(0)), k = 10;
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> px(n), py(n);
  for (int i = 0; i < n; ++i) {
    px[i] = u(rng);
    py[i] = u(rng);
  }
  auto const a = nn::gcn_normalized_adjacency<S, Mem>(n, nn::knn_graph_edges(px, py, k));
  auto net = nn::make_sequential(nn::Shape4{n, 16, 1, 1}, nn::GraphConv<S, Mem>(a, 16, 64, false), nn::ReLU<S, Mem>(),
                                 nn::GraphConv<S, Mem>(a, 64, 8, false));
  net.initialize(1);
  nn::Tensor<S, Mem> x("x", n, 16, 1, 1);
  Kokkos::deep_copy(x, S(0.1));
  Kokkos::deep_copy(net.output_gradient(), S(1e-3));
  Space space;
  net.forward(space, x);
  for (auto _ : state) {
    net.forward(space, x);
    if (train) net.backward(space, x);
    space.fence();
  }
  // FLOP: dense products 2 n (16·64 + 64·8), sparse products 2 nnz (64 + 8); backward ~2x.
  double const flop = 2.0 * n * (16 * 64 + 64 * 8) + 2.0 * double(a.nnz()) * (64 + 8);
  state.counters["nnz"] = double(a.nnz());
  state.counters["ms/graph"] =
      benchmark::Counter(1e-3, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["GFLOP/s"] =
      benchmark::Counter((train ? 3 : 1) * flop * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_gcn_forward_float(benchmark::State& s) { gcn<float, Kokkos::DefaultHostExecutionSpace>(s, false); }
void BM_gcn_train_float(benchmark::State& s) { gcn<float, Kokkos::DefaultHostExecutionSpace>(s, true); }

}  // namespace

BENCHMARK(BM_gcn_forward_float)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gcn_train_float)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();
