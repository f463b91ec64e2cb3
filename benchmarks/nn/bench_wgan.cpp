// One WGAN-GP step (nn/wgan.hpp): n_critic = 5 critic steps (each a
// generator forward, critic forward+backward on the real and the generated
// batch, and the gradient penalty: forward, input-gradient backward, tangent
// pass and its reverse) and one generator step (generator forward, critic
// forward + input-gradient backward, generator backward), Adam updates
// included; float.
//  - clouds_knn: the seed's proof of concept, a batch of 32 point clouds of
//    100-300 nodes (about 6,300 nodes; 4 batches cycled), generator and critic of two graph
//    convolutions of 32 features, critic dense 32; the critic's graphs of the
//    generated and interpolated clouds are rebuilt per pass (kNN, k = 8, on
//    the host) and so is the generator's (kNN of the node noise).
//  - clouds_given: the same with the batch's graphs kept (no kNN per pass),
//    to separate the host graph building from the network passes.
//  - catalogue_1e5: one graph of 10⁵ nodes (a halo catalogue: positions and
//    log-mass as node conditions, 2 generated features per node such as an
//    ellipticity), kNN k = 10 built once (knn_graph_edges_grid); in random
//    node order, and (_sorted) with the nodes ordered by 256 x 256 cells so
//    that graph neighbours are near in memory.
// Counters: ms per WGAN step, and nodes per second (batch nodes x 6 steps / time).
#include <lensing/nn/wgan.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

namespace {

namespace nn = lensing::nn;
using S = float;
using Space = Kokkos::DefaultHostExecutionSpace;
using Mem = Space::memory_space;

nn::WganBatch<S, Mem> cloud_batch(unsigned seed, int graphs, int min_nodes, int max_nodes, int k) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> size(min_nodes, max_nodes);
  std::normal_distribution<double> nd;
  std::vector<int> sizes(graphs);
  for (auto& s : sizes)
    s = size(rng);
  std::vector<double> px, py;
  for (int s : sizes)
    for (int i = 0; i < s; ++i) {
      px.push_back(nd(rng));
      py.push_back(0.5 * nd(rng));
    }
  nn::WganBatch<S, Mem> b;
  b.graph = nn::knn_graph_batch<S, Mem>(sizes, px, py, k);
  b.real = lensing::View2D<S, Mem>("real", px.size(), 2);
  auto h = Kokkos::create_mirror_view(b.real);
  for (std::size_t i = 0; i < px.size(); ++i) {
    h(i, 0) = S(px[i]);
    h(i, 1) = S(py[i]);
  }
  Kokkos::deep_copy(b.real, h);
  return b;
}

void run(benchmark::State& state, nn::WganConfig const& cfg, std::vector<nn::WganBatch<S, Mem>> const& batches) {
  nn::Wgan<S, Mem> gan(cfg, nn::LeakyReluOp{0.2});
  gan.initialize(1);
  Space space;
  std::size_t next = 0;
  auto const source = [&]() -> nn::WganBatch<S, Mem> const& { return batches[next++ % batches.size()]; };
  nn::WganTrainOptions opt;
  opt.steps = 1;
  opt.log_every = 0;
  gan.train(space, source, opt);  // warm-up (allocations)
  for (auto _ : state)
    gan.train(space, source, opt);
  long const nodes = batches[0].graph.num_nodes();
  state.counters["nodes"] = double(nodes);
  state.counters["ms/step"] =
      benchmark::Counter(1e-3, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["nodes/s"] =
      benchmark::Counter(double(nodes) * (cfg.n_critic + 1), benchmark::Counter::kIsIterationInvariantRate);
}

nn::WganConfig cloud_config(nn::WganGraph graphs) {
  nn::WganConfig cfg;
  cfg.node_features = 2;
  cfg.node_noise = 2;
  cfg.graph_noise = 8;
  cfg.generator_conv = {32, 32};
  cfg.critic_conv = {32, 32};
  cfg.critic_dense = {32};
  cfg.generator_graph = graphs;
  cfg.critic_graph = graphs;
  cfg.knn = 8;
  cfg.n_critic = 5;
  return cfg;
}

void BM_wgan_step_clouds_knn(benchmark::State& state) {
  std::vector<nn::WganBatch<S, Mem>> batches;
  for (unsigned s = 0; s < 4; ++s)
    batches.push_back(cloud_batch(11 + s, 32, 100, 300, 8));
  run(state, cloud_config(nn::WganGraph::knn_of_nodes), batches);
}

void BM_wgan_step_clouds_given(benchmark::State& state) {
  std::vector<nn::WganBatch<S, Mem>> batches;
  for (unsigned s = 0; s < 4; ++s)
    batches.push_back(cloud_batch(11 + s, 32, 100, 300, 8));
  run(state, cloud_config(nn::WganGraph::given), batches);
}

void catalogue_1e5(benchmark::State& state, bool sorted) {
  int const n = 100000;
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> nd;
  std::vector<double> px(n), py(n);
  for (int i = 0; i < n; ++i) {
    px[i] = u(rng);
    py[i] = u(rng);
  }
  if (sorted) {  // nodes in the order of 256 x 256 cells, row by row: neighbours close in memory
    std::vector<int> idx(n);
    for (int i = 0; i < n; ++i)
      idx[i] = i;
    auto const cell = [&](int i) { return int(py[i] * 256) * 256 + int(px[i] * 256); };
    std::sort(idx.begin(), idx.end(), [&](int a, int b) { return cell(a) < cell(b); });
    std::vector<double> sx(n), sy(n);
    for (int i = 0; i < n; ++i) {
      sx[i] = px[idx[i]];
      sy[i] = py[idx[i]];
    }
    px.swap(sx);
    py.swap(sy);
  }
  nn::WganBatch<S, Mem> b;
  b.graph = nn::knn_graph_batch<S, Mem>({n}, px, py, 10);
  b.real = lensing::View2D<S, Mem>("real", n, 2);
  b.node_conditions = lensing::View2D<S, Mem>("cond", n, 3);
  auto hr = Kokkos::create_mirror_view(b.real);
  auto hc = Kokkos::create_mirror_view(b.node_conditions);
  for (int i = 0; i < n; ++i) {
    hr(i, 0) = S(0.2 * nd(rng));
    hr(i, 1) = S(0.2 * nd(rng));
    hc(i, 0) = S(px[i]);
    hc(i, 1) = S(py[i]);
    hc(i, 2) = S(12 + nd(rng));
  }
  Kokkos::deep_copy(b.real, hr);
  Kokkos::deep_copy(b.node_conditions, hc);
  nn::WganConfig cfg;
  cfg.node_features = 2;
  cfg.node_conditions = 3;
  cfg.node_noise = 4;
  cfg.graph_noise = 0;
  cfg.generator_conv = {32, 32};
  cfg.critic_conv = {32, 32};
  cfg.critic_dense = {32};
  cfg.n_critic = 5;
  run(state, cfg, {b});
}

void BM_wgan_step_catalogue_1e5(benchmark::State& state) { catalogue_1e5(state, false); }
void BM_wgan_step_catalogue_1e5_sorted(benchmark::State& state) { catalogue_1e5(state, true); }

}  // namespace

BENCHMARK(BM_wgan_step_clouds_knn)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_wgan_step_clouds_given)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_wgan_step_catalogue_1e5)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_wgan_step_catalogue_1e5_sorted)->Unit(benchmark::kMillisecond)->UseRealTime();
