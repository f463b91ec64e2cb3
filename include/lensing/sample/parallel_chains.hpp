#ifndef LENSING_SAMPLE_PARALLEL_CHAINS_HPP
#define LENSING_SAMPLE_PARALLEL_CHAINS_HPP

/// \file
/// The chain driver shared by the MCMC front ends (sample(), sample_batch(),
/// langevin()): independent host-side tasks (chains, or (problem, chain)
/// pairs) run by a pool of host threads, and the SampleResult storage they
/// fill.
///
/// Task t always runs the same computation whatever thread picks it up (each
/// chain owns its random stream), so results are bit-identical for every
/// thread count; tasks write disjoint slots of the result.  An exception
/// thrown by a task is stored and the first one (in task order) rethrown once
/// every task has finished: never a hang, never a partial silent result.

#include <lensing/density/log_density.hpp>
#include <lensing/sample/draws.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

#include <Kokkos_Core.hpp>  // KOKKOS_ENABLE_OPENMP
#if defined(KOKKOS_ENABLE_OPENMP) && defined(__linux__)
#include <omp.h>
#include <sched.h>
#define LENSING_CHAIN_POOL_AFFINITY 1
#endif

namespace lensing {
namespace detail {

/// Called first in every chain-pool thread.  With OMP_PROC_BIND set (as
/// Kokkos recommends), the OpenMP runtime binds the thread that initialised
/// Kokkos to a single place, and threads created from it inherit that
/// one-core mask: the whole pool would share one core (measured: no speed-up
/// from 1 to 2 threads).  Give the thread the union of the OpenMP places
/// instead; without binding, leave the mask alone (taskset and cgroup limits
/// stay in force either way: the kernel intersects the mask with them).
inline void spread_over_openmp_places() {
#if defined(LENSING_CHAIN_POOL_AFFINITY)
  if (omp_get_proc_bind() == omp_proc_bind_false) return;
  int const np = omp_get_num_places();
  if (np <= 1) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int p = 0; p < np; ++p) {
    std::vector<int> ids(static_cast<std::size_t>(std::max(0, omp_get_place_num_procs(p))));
    if (ids.empty()) continue;
    omp_get_place_proc_ids(p, ids.data());
    for (int id : ids)
      if (id >= 0 && id < CPU_SETSIZE) CPU_SET(id, &set);
  }
  if (CPU_COUNT(&set) > 0) sched_setaffinity(0, sizeof set, &set);  // best effort: ignore failures
#endif
}

/// Run f(t) for t in [0, n) on up to `threads` host threads (0: hardware
/// concurrency); the first exception (by task index) is rethrown after all
/// tasks have finished.
template <class F>
void for_each_chain(int n, int threads, F const& f) {
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(n));
  auto run = [&](int t) {
    try {
      f(t);
    } catch (...) {
      errors[std::size_t(t)] = std::current_exception();
    }
  };
  if (threads == 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::min(threads, n);
  if (threads <= 1) {
    for (int t = 0; t < n; ++t)
      run(t);
  } else {
    std::atomic<int> next{0};
    std::vector<std::thread> pool;
    for (int k = 0; k < threads; ++k)
      pool.emplace_back([&]() {
        spread_over_openmp_places();
        for (int t = next++; t < n; t = next++)
          run(t);
      });
    for (auto& th : pool)
      th.join();
  }
  for (auto const& e : errors)
    if (e) std::rethrow_exception(e);
}

/// Host threads for chains of `Density`: `requested` (0: all), or 1 if the
/// density declares launches_kernels (log_density.hpp).  Kokkos 3.x host
/// backends cannot take kernels from several host threads: OpenMP launches
/// only from the thread that initialised Kokkos (its instance pointer is
/// thread-local: from another thread a launch runs inline without the
/// thread pool's scratch, and a View allocation throws "uninitialized
/// execution space"), and concurrent Serial launches share its scratch.  Such
/// chains therefore run one after another on the calling thread (each with
/// its own clone of the density and its own random stream, so the draws are
/// the same as with any thread count); the kernels themselves use the
/// backend's threads.
template <class Density>
int chain_threads(int requested) {
  return launches_kernels_v<Density> ? 1 : requested;
}

/// Per-chain counters of a run, summed into the SampleResult at the end.
struct ChainCounters {
  long long gradients = 0, sampling_gradients = 0, warmup_divergences = 0;
};

/// A SampleResult with storage for nc chains of nd draws in dimension d
/// (statistics zeroed; the unit inverse metric per chain).
inline SampleResult allocate_result(int nc, int nd, int d) {
  SampleResult r;
  r.num_chains = nc;
  r.num_draws = nd;
  r.dimension = d;
  std::size_t const n = std::size_t(nc) * std::size_t(nd);
  r.draws.assign(n * std::size_t(d), 0.0);
  r.lp.assign(n, 0.0);
  r.accept_stat.assign(n, 0.0);
  r.step_size.assign(n, 0.0);
  r.energy.assign(n, 0.0);
  r.tree_depth.assign(n, 0);
  r.n_leapfrog.assign(n, 0);
  r.divergent.assign(n, 0);
  r.final_step_size.assign(std::size_t(nc), 0.0);
  r.inverse_metric.assign(std::size_t(nc), std::vector<double>(std::size_t(d), 1.0));
  return r;
}

/// Sum the per-chain counters into r.
inline void add_counters(SampleResult& r, std::vector<ChainCounters> const& counters) {
  for (auto const& c : counters) {
    r.gradient_evaluations += c.gradients;
    r.sampling_gradient_evaluations += c.sampling_gradients;
    r.warmup_divergences += c.warmup_divergences;
  }
}

}  // namespace detail
}  // namespace lensing

#endif  // LENSING_SAMPLE_PARALLEL_CHAINS_HPP
