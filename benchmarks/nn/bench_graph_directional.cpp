// Directional graph convolution (nn/graph_conv_directional.hpp) against the
// isotropic GraphConv (nn/graph_conv.hpp) on the graph of bench_gcn.cpp: a
// 10,000-node k = 10 nearest-neighbour graph of uniform random 2-D points,
// symmetric-normalised adjacency with self-loops, one layer 16 -> 64
// features with a self weight; the directional layer with M = 4 learned
// directions.  Reports ms per graph for forward and forward+backward (input
// and parameter gradients, directions included).
#include <lensing/nn/graph_conv.hpp>
#include <lensing/nn/graph_conv_directional.hpp>

#include <benchmark/benchmark.h>

#include <random>
#include <vector>

namespace {

namespace nn = lensing::nn;

struct Points {
  std::vector<double> px, py;
};
inline Points random_points(int n) {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(0, 1);
  Points p{std::vector<double>(n), std::vector<double>(n)};
  for (int i = 0; i < n; ++i) {
    p.px[i] = u(rng);
    p.py[i] = u(rng);
  }
  return p;
}

template <class Layer, class Space>
void run(benchmark::State& state, Layer layer, int n, int fi, bool train, long nnz) {
  using S = typename Layer::scalar_type;
  using Mem = typename Layer::memory_space;
  int const fo = layer.output_shape(nn::Shape4{n, fi, 1, 1}).c;
  layer.initialize(1);
  nn::Tensor<S, Mem> x("x", n, fi, 1, 1), y("y", n, fo, 1, 1), dy("dy", n, fo, 1, 1), dx("dx", n, fi, 1, 1);
  nn::ParamVector<S, Mem> g("g", layer.num_params());
  Kokkos::deep_copy(x, S(0.1));
  Kokkos::deep_copy(dy, S(1e-3));
  Space space;
  layer.forward(space, x, y);
  for (auto _ : state) {
    layer.forward(space, x, y);
    if (train) layer.backward(space, x, y, dy, dx, g);
    space.fence();
  }
  state.counters["nnz"] = double(nnz);
  state.counters["ms/graph"] =
      benchmark::Counter(1e-3, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

template <class S, class Space>
void graph_conv(benchmark::State& state, bool train) {
  using Mem = typename Space::memory_space;
  int const n = static_cast<int>(state.range(0));
  auto const p = random_points(n);
  auto const a = nn::gcn_normalized_adjacency<S, Mem>(n, nn::knn_graph_edges(p.px, p.py, 10));
  run<nn::GraphConv<S, Mem>, Space>(state, nn::GraphConv<S, Mem>(a, 16, 64, true), n, 16, train, a.nnz());
}

template <class S, class Space>
void directional(benchmark::State& state, bool train) {
  using Mem = typename Space::memory_space;
  int const n = static_cast<int>(state.range(0));
  auto const p = random_points(n);
  auto const a = nn::gcn_normalized_adjacency<S, Mem>(n, nn::knn_graph_edges(p.px, p.py, 10));
  run<nn::DirectionalGraphConv<S, Mem>, Space>(state, nn::DirectionalGraphConv<S, Mem>(a, p.px, p.py, 16, 64, 4), n, 16,
                                               train, a.nnz());
}

void BM_graph_conv_forward_float(benchmark::State& s) {
  graph_conv<float, Kokkos::DefaultHostExecutionSpace>(s, false);
}
void BM_graph_conv_train_float(benchmark::State& s) { graph_conv<float, Kokkos::DefaultHostExecutionSpace>(s, true); }
void BM_directional_forward_float(benchmark::State& s) {
  directional<float, Kokkos::DefaultHostExecutionSpace>(s, false);
}
void BM_directional_train_float(benchmark::State& s) { directional<float, Kokkos::DefaultHostExecutionSpace>(s, true); }

}  // namespace

BENCHMARK(BM_graph_conv_forward_float)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_graph_conv_train_float)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_directional_forward_float)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_directional_train_float)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();
