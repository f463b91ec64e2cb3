// Train the lens-parameter regressor (examples/train_regressor/regressor.hpp)
// data-parallel over MPI ranks (mpi/data_parallel.hpp): each rank simulates
// its own batches (ShardedSource over the training stream), the gradients
// are averaged with bucketed MPI_Iallreduce overlapped with backward, rank 0
// logs and writes the checkpoint; then the communication is measured.
//
//   mpiexec -n 2 train_data_parallel [--epochs E] [--steps S] [--batch B] [--lr LR]
//                                    [--bucket-mb M] [--no-overlap] [--seed SEED] [--reps R]
//
// S steps per epoch of B images per rank (n ranks: n B images a step, the
// steps of one process with batch n B); validation on 2 batches per rank of
// the validation stream.  Prints per rank the time per step, the time in the
// gradient allreduces (issued during backward, and waited for after it),
// their share of the step, the bytes each rank contributes per step, and the
// time of R blocking MPI_Allreduce calls of the whole gradient vector alone.
// Ends with "data-parallel: ok" when the losses are finite and the ranks'
// weights are bitwise identical.  Threads per rank: OMP_NUM_THREADS.
#include <lensing/mpi/comm.hpp>
#include <lensing/mpi/data_parallel.hpp>
#include <lensing/nn/fit.hpp>
#include <lensing/nn/optimizer.hpp>

#include "../common/cli.hpp"
#include "../train_regressor/regressor.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

using namespace regressor;

[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr,
               "train_data_parallel: %s\n"
               "usage: mpiexec -n N train_data_parallel [--epochs E] [--steps S] [--batch B] [--lr LR]\n"
               "                   [--bucket-mb M] [--no-overlap] [--seed SEED] [--reps R]\n",
               msg.c_str());
  std::exit(2);
}

namespace {
struct Options {
  long epochs = 2, steps = 10, reps = 20;
  int batch = 16;
  double lr = 1e-3, bucket_mb = 4;
  bool overlap = true;
  std::uint64_t seed = 42;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    auto value = [&]() -> char const* {
      if (i + 1 >= argc) bad(a + " needs a value");
      return argv[++i];
    };
    if (a == "--epochs")
      o.epochs = parse_integer(a, value(), 1, 100000);
    else if (a == "--steps")
      o.steps = parse_integer(a, value(), 1, 10000000);
    else if (a == "--batch")
      o.batch = int(parse_integer(a, value(), 1, 4096));
    else if (a == "--lr")
      o.lr = parse_real(a, value(), 1e-12, 10);
    else if (a == "--bucket-mb")
      o.bucket_mb = parse_real(a, value(), 1e-6, 1e6);
    else if (a == "--no-overlap")
      o.overlap = false;
    else if (a == "--seed")
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 1LL << 62));
    else if (a == "--reps")
      o.reps = parse_integer(a, value(), 0, 100000);
    else
      bad("unknown argument '" + a + "'");
  }
  return o;
}
}  // namespace

int main(int argc, char** argv) {
  namespace lmpi = lensing::mpi;
  Options const o = parse(argc, argv);  // a bad command line exits before MPI starts
  lmpi::Environment mpi(argc, argv);
  Kokkos::ScopeGuard kokkos(argc, argv);
  lmpi::Communicator world;
  int const rank = world.rank(), n = world.size();
  lmpi::check_same_configuration(world,
                                 {{"epochs", std::to_string(o.epochs)},
                                  {"steps", std::to_string(o.steps)},
                                  {"batch", std::to_string(o.batch)},
                                  {"lr", std::to_string(o.lr)},
                                  {"bucket_mb", std::to_string(o.bucket_mb)},
                                  {"overlap", o.overlap ? "1" : "0"},
                                  {"seed", std::to_string(o.seed)}},
                                 "train_data_parallel");
  Space space;
  bool const root = rank == 0;

  Sim const sim = make_simulator(o.seed, o.batch);
  // Every rank computes the same image scale (the pilot stream is deterministic).
  Source pilot = make_source(sim, o.batch, std::uint64_t(1) << 47, 4, true);
  double const image_scale = examples::pilot_pixel_sd(space, pilot, 4);
  // The ranks shard n S training batches and 2 n validation batches of B.
  Source train = make_source(sim, o.batch, 0, o.steps * n, true);
  Source val = make_source(sim, o.batch, lensing::simulate::validation_first_index, 2 * n, false);
  lmpi::ShardedSource<Source> train_shard(train, rank, n), val_shard(val, rank, n);
  ScaledSource<lmpi::ShardedSource<Source>> strain(train_shard, image_scale), sval(val_shard, image_scale);

  auto net = make_network(o.batch, 0.1, o.seed + 1);
  net.initialize(o.seed);
  net.reseed_dropout(o.seed + 7919 * std::uint64_t(rank + 1));  // independent masks per rank
  lmpi::DataParallelOptions dpo;
  dpo.bucket_bytes = o.bucket_mb * 1024 * 1024;
  dpo.overlap = o.overlap;
  lmpi::DataParallel<Network, Space> dp(world, space, net, dpo);  // rank 0's weights everywhere
  if (root)
    std::printf(
        "regressor data-parallel: %d rank(s), %ld parameters, batch %d per rank (%d a step), %zu bucket(s) "
        "of <= %.3g MB, overlap %s, %s\n",
        n, net.num_params(), o.batch, o.batch * n, dp.statistics().buckets, o.bucket_mb, o.overlap ? "on" : "off",
        Space::name());

  nn::Adam<Scalar, Mem> opt(net.num_params(), o.lr);
  nn::FitOptions fo;
  fo.epochs = o.epochs;
  fo.clip_grad_norm = 5.0;
  fo.log_every = 0;
  fo.log = root ? &std::cout : nullptr;
  fo.replica = dp.hooks();
  dp.reset_statistics();
  auto const h = nn::fit(space, net, opt, nn::GaussianFullNLLLoss(), strain, sval, fo);

  // Per rank: step time, communication inside it.
  auto const& st = dp.statistics();
  double const step = (h.data_seconds + h.compute_seconds) / double(h.steps);
  double const issue = st.issue_seconds / double(st.steps), wait = st.wait_seconds / double(st.steps);
  // The whole gradient vector in one blocking allreduce, alone (no compute):
  // the minimum over R calls is the transfer cost without the load of other
  // processes on the machine, the median what a step typically meets.
  std::vector<Scalar> buf(std::size_t(net.num_params()), Scalar(1));
  std::vector<double> times;
  for (long r = 0; r < o.reps; ++r) {
    world.barrier();
    auto const t0 = std::chrono::steady_clock::now();
    world.allreduce(buf.data(), buf.size(), MPI_SUM);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  double const alone_min = times.empty() ? 0 : times.front(), alone_med = times.empty() ? 0 : times[times.size() / 2];
  auto const ms = [](double s) { return std::to_string(s * 1e3) + " ms"; };
  double const per = double(h.steps);
  std::string const line = "rank " + std::to_string(rank) + ": " + std::to_string(h.steps) + " steps, " + ms(step) +
                           "/step (data " + ms(h.data_seconds / per) + "), gradient allreduce: issue " + ms(issue) +
                           " + wait " + ms(wait) + " = " + std::to_string(100 * (issue + wait) / step) +
                           " % of the step (the wait includes the slower rank's lag), " +
                           std::to_string(st.overlapped_buckets) + " of " + std::to_string(st.buckets * st.steps) +
                           " buckets issued during backward, " + std::to_string(long(st.bytes_per_step)) +
                           " bytes/step; the gradient alone in one blocking allreduce: min " + ms(alone_min) +
                           ", median " + ms(alone_med) + " over " + std::to_string(o.reps) + "\n";
  auto const lines = world.gather(line, 0);
  for (auto const& l : lines)
    std::fputs(l.c_str(), stdout);

  bool ok = true;
  for (double l : h.loss)
    ok = ok && std::isfinite(l);
  std::uint64_t hash = 1469598103934665603ull;
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), net.parameters());
  auto const* bytes = reinterpret_cast<unsigned char const*>(hp.data());
  for (std::size_t i = 0; i < hp.size() * sizeof(Scalar); ++i)
    hash = (hash ^ bytes[i]) * 1099511628211ull;
  auto const all = world.allgather(hash);
  for (auto x : all)
    ok = ok && x == all[0];
  ok = world.all_ok(ok);
  if (root) std::printf("data-parallel: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
