// Data-parallel training (mpi/data_parallel.hpp), run under mpiexec -n 1
// and -n 2: n ranks with batch B equal one process with batch nB (the
// reference, computed on every rank inside the same test) to rounding, for
// the averaged gradient of one step and for the weights and losses
// (validation included) after a few nn::fit epochs of SGD and Adam; the
// ShardedSource gives the ranks exactly the samples of the nB batches; the
// bucketing does not change the result; BatchNorm replicas stay identical;
// only rank 0 writes the checkpoint, and a run resumed from it on every rank
// ends bitwise where the uninterrupted run does.
//
// Error model (the bound of every comparison).  Both runs evaluate the same
// exact gradient; they differ only in how sums are split: the batch sum of
// each parameter's gradient runs over nB terms in one process and as n
// partial sums of B terms (averaged by an exact 1/n, n a power of two here)
// on n ranks, and the blocked products (Eigen GEMM) may split dot products
// of length k <= 16 differently at another batch size, perturbing each
// layer's per-sample activations and upstream gradients by <= γ_k relative.
// A sum of m terms in any order is within γ_{m-1} Σ|t| of the exact one
// (γ_m = m u / (1 − m u), u the unit roundoff), so per gradient entry
//   |g_n − g_ref| <= (2 nB + 4 L k) u A_i,   A_i = (1/nB) Σ_b |g_i^(b)|,
// g^(b) the gradient of sample b alone (each Dense weight gradient term is
// one product dy·x, so A_i is the sum of the terms' magnitudes), L = 3
// layers.  After K optimizer steps of rate η the weights differ by at most
// the accumulated step differences: SGD with momentum μ: K η ε / (1 − μ)
// with ε = max_i of the gradient bound, times 2 for the growth through the
// loss curvature over K steps at these small rates; Adam normalises each
// entry by its running magnitude, so per entry K η min(2, 2 ε_i / |g_i|).

#include <lensing/mpi/comm.hpp>
#include <lensing/mpi/data_parallel.hpp>
#include <lensing/nn/activation.hpp>
#include <lensing/nn/batchnorm.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/fit.hpp>
#include <lensing/nn/loss.hpp>
#include <lensing/nn/losses.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/simulate/data_source.hpp>

#include <lensing_test.hpp>

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;
namespace sim = lensing::simulate;
namespace mpi = lensing::mpi;

namespace {

constexpr int features = 4, outputs = 2, width = 16, layers = 3;

// N samples: x uniform in [−1, 1]^4, y = (sin(x0 + x1), x2 x3 − 0.2).
template <class S>
struct Data {
  lensing::View4D<S, Kokkos::HostSpace> x;
  lensing::View2D<S, Kokkos::HostSpace> y;
  explicit Data(int n, unsigned seed = 11) : x("x", n, features, 1, 1), y("y", n, outputs) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (int i = 0; i < n; ++i) {
      double v[features];
      for (int f = 0; f < features; ++f)
        x(i, f, 0, 0) = S(v[f] = u(rng));
      y(i, 0) = S(std::sin(v[0] + v[1]));
      y(i, 1) = S(v[2] * v[3] - 0.2);
    }
  }
};

template <class S, class Mem>
auto make_mlp(int batch) {
  return nn::make_sequential(nn::Shape4{batch, features, 1, 1}, nn::Dense<S, Mem>(features, width), nn::Tanh<S, Mem>(),
                             nn::Dense<S, Mem>(width, width), nn::Tanh<S, Mem>(), nn::Dense<S, Mem>(width, outputs));
}
template <class S, class Mem>
auto make_bn_mlp(int batch) {
  return nn::make_sequential(nn::Shape4{batch, features, 1, 1}, nn::Dense<S, Mem>(features, width),
                             nn::BatchNorm<S, Mem>(width), nn::ReLU<S, Mem>(), nn::Dense<S, Mem>(width, outputs));
}

template <class V>
std::uint64_t bits_hash(V const& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  std::uint64_t x = 1469598103934665603ull;
  auto const* p = reinterpret_cast<unsigned char const*>(h.data());
  for (std::size_t i = 0; i < h.size() * sizeof(typename V::non_const_value_type); ++i)
    x = (x ^ p[i]) * 1099511628211ull;
  return x;
}
// True when every rank holds bitwise the same vector.
template <class V>
bool same_on_all_ranks(mpi::Communicator const& world, V const& v) {
  std::uint64_t const h = bits_hash(v);
  auto const all = world.allgather(h);
  return std::all_of(all.begin(), all.end(), [&](std::uint64_t a) { return a == h; });
}

// A_i = (1/nB) Σ_b |g_i^(b)| over the first nB samples (the reference's
// first batch without shuffling), with the parameters of `net`.
template <class Space, class Net, class S>
std::vector<double> term_magnitudes(Space const& space, Net& net, lensing::View4D<S, Kokkos::HostSpace> const& x,
                                    lensing::View2D<S, Kokkos::HostSpace> const& y, int nb) {
  using Mem = typename Net::memory_space;
  std::vector<double> a(std::size_t(net.num_params()), 0.0);
  nn::Tensor<S, Mem> xs("x1", 1, features, 1, 1);
  lensing::View2D<S, Mem> ys("y1", 1, outputs);
  auto hx = Kokkos::create_mirror_view(xs);
  auto hy = Kokkos::create_mirror_view(ys);
  for (int b = 0; b < nb; ++b) {
    for (int f = 0; f < features; ++f)
      hx(0, f, 0, 0) = x(b, f, 0, 0);
    for (int k = 0; k < outputs; ++k)
      hy(0, k) = y(b, k);
    Kokkos::deep_copy(xs, hx);
    Kokkos::deep_copy(ys, hy);
    auto const out = net.forward(space, xs);
    nn::mse_loss(space, out, ys, net.output_gradient());
    net.backward(space, xs);
    space.fence();
    auto const g = lt::host_values(net.gradients());
    for (std::size_t i = 0; i < a.size(); ++i)
      a[i] += std::abs(g[i]) / double(nb);
  }
  return a;
}

template <class S>
constexpr double unit_roundoff() {
  return std::numeric_limits<S>::epsilon() / 2;
}

}  // namespace

TEST_CASE("mpi: ShardedSource gives rank r the r-th B samples of every nB batch") {
  using Mem = Kokkos::HostSpace;
  int const B = 3, N = 40;
  lensing::View4D<double, Mem> x("x", N, 1, 1, 1);
  lensing::View2D<double, Mem> y("y", N, 1);
  for (int i = 0; i < N; ++i)
    x(i, 0, 0, 0) = y(i, 0) = double(i);  // the sample's index
  Kokkos::DefaultHostExecutionSpace space;
  for (int n : {1, 2, 3}) {
    CAPTURE(n);
    sim::ArraySource<double, Mem> big(x, y, {n * B, true, 5});
    std::vector<sim::ArraySource<double, Mem>> inner;
    for (int r = 0; r < n; ++r)
      inner.emplace_back(x, y, sim::ArraySourceOptions{B, true, 5});
    std::vector<mpi::ShardedSource<sim::ArraySource<double, Mem>>> shard;
    for (int r = 0; r < n; ++r)
      shard.emplace_back(inner[std::size_t(r)], r, n);
    for (int r = 0; r < n; ++r)
      CHECK(shard[std::size_t(r)].batches_per_epoch() == big.batches_per_epoch());
    for (long e = 0; e < 3; ++e) {
      big.start_epoch(e);
      for (auto& s : shard)
        s.start_epoch(e);
      for (long j = 0; j < big.batches_per_epoch(); ++j) {
        auto const want = big.next(space);
        for (int r = 0; r < n; ++r) {
          auto const got = shard[std::size_t(r)].next(space);
          for (int b = 0; b < B; ++b)
            CHECK(got.images(b, 0, 0, 0) == want.images(r * B + b, 0, 0, 0));
        }
      }
    }
  }
  sim::ArraySource<double, Mem> small(x, y, {20, true, 5});
  using Shard = mpi::ShardedSource<sim::ArraySource<double, Mem>>;
  CHECK_THROWS_WITH_AS(Shard(small, 2, 2), doctest::Contains("rank 2 is outside [0, 2)"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(Shard(small, 0, 3), doctest::Contains("2 batches per epoch, fewer than the 3 ranks"),
                       std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("mpi: data-parallel gradient of one step = the doubled batch's, to rounding", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  mpi::Communicator world;
  int const n = world.size(), B = 8, nb = n * B, N = 64;
  Data<S> const d(N);
  auto const& x = d.x;
  auto const& y = d.y;

  // Reference: one process, batch nB (the first nB samples).
  auto ref = make_mlp<S, Mem>(nb);
  ref.initialize(3);
  sim::ArraySource<S, Mem> ref_src(x, y, {nb, false, 0});
  auto const rb = ref_src.next(space);
  double const ref_loss = nn::MSELoss()(space, ref.forward(space, rb.images), rb.labels, ref.output_gradient());
  ref.backward(space, rb.images);
  space.fence();
  auto const g_ref = lt::host_values(ref.gradients());
  auto const a = term_magnitudes(space, ref, x, y, nb);
  double const u = unit_roundoff<S>(), c = (2.0 * nb + 4.0 * layers * width) * u;

  std::vector<double> first_g;
  for (double bucket : {1e9, 5.0 * sizeof(S)}) {
    CAPTURE(bucket);
    // This rank's replica: batch B, its shard; other initial weights on
    // ranks > 0, which the constructor's broadcast replaces.
    auto net = make_mlp<S, Mem>(B);
    net.initialize(world.rank() == 0 ? 3 : 100 + world.rank());
    mpi::DataParallelOptions o;
    o.bucket_bytes = bucket;
    mpi::DataParallel<decltype(net), Space> dp(world, space, net, o);
    CHECK(lt::host_values(net.parameters()) == lt::host_values(ref.parameters()));
    sim::ArraySource<S, Mem> inner(x, y, {B, false, 0});
    mpi::ShardedSource<sim::ArraySource<S, Mem>> src(inner, world.rank(), n);
    auto const b = src.next(space);
    double const l = nn::MSELoss()(space, net.forward(space, b.images), b.labels, net.output_gradient());
    net.backward_each_layer(space, b.images, [&](long first, long last) { dp.gradients_ready(first, last); });
    double const loss = dp.reduce_gradients(l);
    auto const g = lt::host_values(net.gradients());
    CHECK(same_on_all_ranks(world, net.gradients()));
    if (n > 1 && dp.buckets().size() > 1) CHECK(dp.statistics().overlapped_buckets > 0);

    double worst = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      double const bound = c * a[i];
      if (std::abs(g[i] - g_ref[i]) > bound) {
        CAPTURE(i);
        CHECK(std::abs(g[i] - g_ref[i]) <= bound);
      }
      if (bound > 0) worst = std::max(worst, std::abs(g[i] - g_ref[i]) / bound);
    }
    MESSAGE("ranks " << n << ": largest gradient difference / bound = " << worst);
    // The loss: a mean of nB·K positive terms, split in n partial sums (and
    // rounded to S by mse_loss).
    CHECK(std::abs(loss - ref_loss) <= (2.0 * nb * outputs + 4.0) * u * ref_loss);
    if (n == 1) CHECK(g == g_ref);  // the same computation
    // Buckets of 5 values or one bucket: with 2 ranks each element's sum is
    // a + b whatever the message size (more ranks may associate differently).
    if (first_g.empty())
      first_g = g;
    else if (n <= 2)
      CHECK(g == first_g);
  }
}

LENSING_TEST_CASE_TEMPLATE("mpi: data-parallel fit() = the doubled batch's fit() to rounding (SGD, Adam)", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  mpi::Communicator world;
  int const n = world.size(), B = 8, nb = n * B, N = 64 * n;
  long const epochs = 2;
  Data<S> const d(N), dv(16 * n, 12);
  auto const& x = d.x;
  auto const& y = d.y;

  // At the initial weights: g0, the gradient of the first nB samples, and
  // the one-step bound c A_i; ε = its largest entry.
  auto probe = make_mlp<S, Mem>(nb);
  probe.initialize(3);
  sim::ArraySource<S, Mem> first(x, y, {nb, false, 0});
  auto const fb = first.next(space);
  nn::MSELoss()(space, probe.forward(space, fb.images), fb.labels, probe.output_gradient());
  probe.backward(space, fb.images);
  auto const g0 = lt::host_values(probe.gradients());
  auto const a = term_magnitudes(space, probe, x, y, nb);
  double const u = unit_roundoff<S>(), c = (2.0 * nb + 4.0 * layers * width) * u;
  double const eps = c * *std::max_element(a.begin(), a.end());
  double g0_l1 = 0, a_l1 = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    g0_l1 += std::abs(g0[i]);
    a_l1 += a[i];
  }

  for (bool adam : {false, true}) {
    CAPTURE(adam);
    double const lr = adam ? 0.01 : 0.05, mu = 0.5;
    auto run = [&](auto& net, auto& source, auto& val, nn::ReplicaHooks const& hooks) {
      net.initialize(3);
      nn::FitOptions fo;
      fo.epochs = epochs;
      fo.log = nullptr;
      fo.replica = hooks;
      if (adam) {
        nn::Adam<S, Mem> opt(net.num_params(), lr);
        return nn::fit(space, net, opt, nn::MSELoss(), source, val, fo);
      }
      nn::SGD<S, Mem> opt(net.num_params(), lr, mu);
      return nn::fit(space, net, opt, nn::MSELoss(), source, val, fo);
    };
    auto ref = make_mlp<S, Mem>(nb);
    sim::ArraySource<S, Mem> ref_src(x, y, {nb, true, 9}), ref_val(dv.x, dv.y, {nb, false, 0});
    auto const h_ref = run(ref, ref_src, ref_val, {});

    auto net = make_mlp<S, Mem>(B);
    mpi::DataParallel<decltype(net), Space> dp(world, space, net);
    sim::ArraySource<S, Mem> inner(x, y, {B, true, 9});
    sim::ArraySource<S, Mem> inner_val(dv.x, dv.y, {B, false, 0});
    mpi::ShardedSource<sim::ArraySource<S, Mem>> src(inner, world.rank(), n), val(inner_val, world.rank(), n);
    auto const h = run(net, src, val, dp.hooks());

    long const K = h.steps;
    CHECK(K == h_ref.steps);
    CHECK(K == epochs * N / nb);
    CHECK(same_on_all_ranks(world, net.parameters()));
    auto const p = lt::host_values(net.parameters()), p_ref = lt::host_values(ref.parameters());
    double worst = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      double bound = 0;
      if (adam)
        bound = double(K) * lr * std::min(2.0, 2.0 * c * a[i] / std::max(std::abs(g0[i]), 1e-300));
      else
        bound = 2.0 * double(K) * lr * eps / (1.0 - mu);
      bound += 4 * u * std::abs(p_ref[i]);  // the weights' own rounding
      double const d = std::abs(p[i] - p_ref[i]);
      if (d > bound) {
        CAPTURE(i);
        CHECK(d <= bound);
      }
      worst = std::max(worst, d / bound);
    }
    MESSAGE("ranks " << n << std::string(adam ? " Adam" : " SGD") << ": " << K
                     << " steps, largest weight difference / bound = " << worst);
    // Epoch losses: each step's loss is a mean of nB·K positive terms split
    // in n partial sums (and rounded to S), plus the effect of the weight
    // differences, Σ_i |g_i| |Δθ_i| with the weight bounds above (g ~ g0,
    // times 2 for its change over the run).
    double const weights =
        adam ? 2.0 * double(K) * lr * 2.0 * c * a_l1 : 2.0 * g0_l1 * 2.0 * double(K) * lr * eps / (1.0 - mu);
    // The validation losses (each rank its shard, averaged over the ranks)
    // likewise, at the epoch's end weights.
    REQUIRE(h.loss.size() == h_ref.loss.size());
    REQUIRE(h.val_loss.size() == h_ref.val_loss.size());
    for (std::size_t e = 0; e < h.loss.size(); ++e) {
      CHECK(std::abs(h.loss[e] - h_ref.loss[e]) <= (2.0 * nb * outputs + 4.0) * u * h_ref.loss[e] + weights);
      CHECK(std::abs(h.val_loss[e] - h_ref.val_loss[e]) <=
            (2.0 * nb * outputs + 4.0) * u * h_ref.val_loss[e] + weights);
    }
    if (n == 1) CHECK(p == p_ref);  // the same computation
  }
}

LENSING_TEST_CASE_TEMPLATE("mpi: BatchNorm replicas stay identical; only rank 0 writes the checkpoint", Config,
                           lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  mpi::Communicator world;
  int const n = world.size(), B = 8, N = 32 * n;
  Data<S> const d(N);
  auto const& x = d.x;
  auto const& y = d.y;
  // BatchNorm normalises with each rank's own B samples: the steps differ
  // from the nB run beyond rounding (not compared; see data_parallel.hpp).
  // The running statistics are averaged at every epoch end, so the
  // replicas' parameters and state are bitwise the same.
  auto net = make_bn_mlp<S, Mem>(B);
  net.initialize(4);
  mpi::DataParallel<decltype(net), Space> dp(world, space, net);
  sim::ArraySource<S, Mem> inner(x, y, {B, true, 2});
  mpi::ShardedSource<sim::ArraySource<S, Mem>> src(inner, world.rank(), n);
  // Each rank names its own file: only rank 0's may appear.
  auto const dir = std::filesystem::temp_directory_path();
  std::string const tag = "lensing_dp_" + std::to_string(world.broadcast_value(std::int64_t(::getpid()), 0)) + "_";
  std::string const mine = (dir / (tag + std::to_string(world.rank()) + ".ckpt")).string();
  nn::FitOptions fo;
  fo.epochs = 2;
  fo.log = nullptr;
  fo.checkpoint_path = mine;
  fo.checkpoint_every = 1;
  fo.replica = dp.hooks();
  nn::Adam<S, Mem> opt(net.num_params(), 0.01);
  auto const h = nn::fit(space, net, opt, nn::MSELoss(), src, fo);
  CHECK(h.steps == 2 * N / (n * B));
  CHECK(same_on_all_ranks(world, net.parameters()));
  CHECK(same_on_all_ranks(world, net.state()));
  CHECK(std::filesystem::exists(mine) == (world.rank() == 0));
  world.barrier();
  std::filesystem::remove(mine);
}

LENSING_TEST_CASE_TEMPLATE("mpi: a data-parallel fit resumed from rank 0's checkpoint = the uninterrupted run", Config,
                           lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  mpi::Communicator world;
  int const n = world.size(), B = 8, N = 32 * n;
  Data<S> const d(N);
  // One file, written by rank 0 and read by every rank (a shared file system).
  std::string const path =
      (std::filesystem::temp_directory_path() /
       ("lensing_dp_resume_" + std::to_string(world.broadcast_value(std::int64_t(::getpid()), 0)) + ".ckpt"))
          .string();
  auto train = [&](long epochs, std::string const& write, std::string const& resume) {
    auto net = make_mlp<S, Mem>(B);
    net.initialize(5);
    mpi::DataParallel<decltype(net), Space> dp(world, space, net);
    sim::ArraySource<S, Mem> inner(d.x, d.y, {B, true, 4});
    mpi::ShardedSource<sim::ArraySource<S, Mem>> src(inner, world.rank(), n);
    nn::FitOptions fo;
    fo.epochs = epochs;
    fo.log = nullptr;
    fo.checkpoint_path = write;
    fo.resume_from = resume;
    fo.replica = dp.hooks();
    nn::Adam<S, Mem> opt(net.num_params(), 0.01);
    nn::fit(space, net, opt, nn::MSELoss(), src, fo);
    return lt::host_values(net.parameters());
  };
  auto const whole = train(3, "", "");
  train(1, path, "");
  world.barrier();  // rank 0 has written the file
  auto const resumed = train(3, "", path);
  CHECK(resumed == whole);
  world.barrier();
  if (world.rank() == 0) std::filesystem::remove(path);
}
