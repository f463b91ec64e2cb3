#ifndef LENSING_SAMPLE_BATCH_HPP
#define LENSING_SAMPLE_BATCH_HPP

/// \file
/// NUTS / static HMC with Stan-style warm-up on many independent posteriors at
/// once (one per lens of a survey):
///
///   std::vector<MyDensity> lenses = ...;                       // B LogDensity instances
///   auto results = lensing::sample_batch(space, lenses, options);  // B SampleResults
///
/// Every (problem b, chain c) pair is one task of a pool of host threads
/// (options.threads; 0: the concurrency of Kokkos::DefaultHostExecutionSpace,
/// i.e. OMP_NUM_THREADS with the OpenMP backend), so B problems with few
/// chains each still fill every thread.  Problem b runs exactly what
///   sample(space, densities[b], options with seed = batch_seed(options.seed, b))
/// runs (same warm-up, adaptation and random streams (batch_seed(seed, b), c)),
/// so results[b] is bit-identical to that sequential run whatever the number
/// of threads.  results[b].seconds is the summed wall time of its chains.
/// Settings (warm-up, draws, metric, init) are shared by all problems; the
/// problems may have different dimensions (options.init must then be empty).
/// As for sample(), densities are called concurrently from several threads:
/// every task evaluates its own clone (`clone()` where the density has one),
/// and the tasks of densities declaring `launches_kernels` run on the calling
/// thread (log_density.hpp, detail::chain_threads).  Errors: bad options or an empty batch throw
/// std::invalid_argument before anything runs; a problem that fails (no finite
/// initial point, zero dimension) makes the call throw, once every task has
/// finished, the first failure with "lensing::sample_batch: problem b: " prefixed.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/sample/draws.hpp>
#include <lensing/sample/parallel_chains.hpp>
#include <lensing/sample/sampler.hpp>

#include <Kokkos_Core.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace lensing {

/// Seed of problem `problem` in a sample_batch() run with seed `seed`: the
/// child seed random::stream_key(seed, purpose_batch_problem, problem)
/// (core/random.hpp), whose chains then use their purpose_chain streams.
inline std::uint64_t batch_seed(std::uint64_t seed, int problem) {
  return random::stream_key(seed, random::purpose_batch_problem, std::uint64_t(problem));
}

/// Run `options.num_chains` chains of NUTS or static HMC on each of the
/// independent `densities`; returns one SampleResult per density.
template <class ExecutionSpace, class Density>
std::vector<SampleResult> sample_batch(ExecutionSpace const& space, std::vector<Density> const& densities,
                                       SamplerOptions const& options) {
  static_assert(check_log_density<Density, ExecutionSpace>(), "lensing::sample_batch: see the messages above");
  constexpr char const* where = "lensing::sample_batch";
  detail::check_sampler_options(options);
  check_argument(!densities.empty(), where, "densities must not be empty");
  check_argument(densities.size() <= std::size_t(1) << 24, where, "at most 2^24 problems per call");
  int const nb = int(densities.size()), nc = options.num_chains;
  check_argument((long long)nb * nc <= 1LL << 30, where, "num_problems * num_chains must be <= 2^30");

  std::vector<SampleResult> results(densities.size());
  std::vector<SamplerOptions> opts(densities.size(), options);
  std::vector<std::string> errors(densities.size());
  for (int b = 0; b < nb; ++b) {
    opts[std::size_t(b)].seed = batch_seed(options.seed, b);
    opts[std::size_t(b)].progress = false;  // the batch reports finished problems instead
    int const d = densities[std::size_t(b)].dimension();
    if (d < 1) {
      errors[std::size_t(b)] = "density.dimension() must be >= 1, got " + std::to_string(d);
      continue;
    }
    if (!options.init.empty() && options.init.size() != std::size_t(d) &&
        options.init.size() != std::size_t(d) * std::size_t(nc)) {
      errors[std::size_t(b)] = "init must have dimension() or num_chains * dimension() values";
      continue;
    }
    if (!options.init_inv_metric.empty()) {
      try {
        detail::initial_inverse_metric(options, d);
      } catch (std::invalid_argument const& e) {
        errors[std::size_t(b)] = e.what();
        continue;
      }
    }
    results[std::size_t(b)] = detail::allocate_result(nc, options.num_draws, d);
  }
  for (int b = 0; b < nb; ++b)
    if (!errors[std::size_t(b)].empty())
      throw_invalid_argument(where, "problem " + std::to_string(b) + ": " + errors[std::size_t(b)]);

  std::vector<detail::ChainCounters> counters(std::size_t(nb) * std::size_t(nc));
  std::vector<double> seconds(counters.size(), 0.0);
  std::vector<int> chains_done(densities.size(), 0);
  int problems_done = 0;
  std::mutex mutex;
  int threads = options.threads;
  if (threads == 0) threads = std::max(1, int(Kokkos::DefaultHostExecutionSpace().concurrency()));
  threads = detail::chain_threads<Density>(threads);
  detail::for_each_chain(nb * nc, threads, [&](int t) {
    int const b = t / nc, c = t % nc;
    auto const t0 = std::chrono::steady_clock::now();
    try {
      detail::run_hmc_chain(space, densities[std::size_t(b)], opts[std::size_t(b)], c, results[std::size_t(b)],
                            counters[std::size_t(t)], mutex, where);
    } catch (std::invalid_argument const& e) {
      throw std::invalid_argument(std::string(where) + ": problem " + std::to_string(b) + ": " + e.what());
    } catch (std::runtime_error const& e) {
      throw std::runtime_error(std::string(where) + ": problem " + std::to_string(b) + ": " + e.what());
    }
    seconds[std::size_t(t)] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (options.progress) {
      std::lock_guard<std::mutex> lock(mutex);
      if (++chains_done[std::size_t(b)] == nc) {
        ++problems_done;
        if (problems_done == nb || problems_done % std::max(1, nb / 10) == 0)
          std::fprintf(stderr, "%s: %d / %d problems done\n", where, problems_done, nb);
      }
    }
  });
  for (int b = 0; b < nb; ++b) {
    auto& r = results[std::size_t(b)];
    std::vector<detail::ChainCounters> const mine(counters.begin() + std::ptrdiff_t(b) * nc,
                                                  counters.begin() + std::ptrdiff_t(b + 1) * nc);
    detail::add_counters(r, mine);
    for (int c = 0; c < nc; ++c)
      r.seconds += seconds[std::size_t(b) * nc + c];
  }
  return results;
}

}  // namespace lensing

#endif  // LENSING_SAMPLE_BATCH_HPP
