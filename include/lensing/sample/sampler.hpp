#ifndef LENSING_SAMPLE_SAMPLER_HPP
#define LENSING_SAMPLE_SAMPLER_HPP

/// \file
/// Run many HMC / NUTS chains with Stan-style warm-up, in parallel.
///
///   auto r = lensing::sample(space, density, options);   // SampleResult (draws.hpp)
///
/// Each chain: initial point, step-size initialisation, `num_warmup`
/// adaptation iterations (adaptation.hpp: dual averaging towards
/// `target_accept`, windowed diagonal or dense metric estimation), then
/// `num_draws` transitions with the adapted step size and metric.
/// Chains are independent host-side orchestrations run by `threads` host
/// threads; chain c draws from random stream (seed, c), so results are
/// bit-identical whatever the number of threads.  The density is called
/// concurrently from several threads when threads > 1: each chain evaluates
/// its own clone of the density (`clone()` where the density has one), and
/// the chains of a density declaring `launches_kernels` run on the calling
/// thread whatever `threads` says (Kokkos 3.x host backends take kernels from
/// one host thread only; see detail::chain_threads and the LogDensity
/// concept, log_density.hpp).  A density with shared writable state and no
/// clone() must be run with threads = 1.
/// Errors (bad options, no finite initial point) throw before or after the
/// chains run; never a hang.  The per-chain driver (detail::run_hmc_chain) and
/// the thread pool (parallel_chains.hpp) are shared with sample_batch()
/// (batch.hpp), which runs many independent posteriors at once.

#include <lensing/core/errors.hpp>
#include <lensing/sample/draws.hpp>
#include <lensing/sample/hamiltonian.hpp>
#include <lensing/sample/parallel_chains.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

namespace lensing {

namespace detail {
inline void check_sampler_options(SamplerOptions const& o) {
  constexpr char const* where = "lensing::sample";
  check_count(o.num_chains, 1, where, "num_chains");
  check_count(o.num_warmup, 0, where, "num_warmup");
  check_count(o.num_draws, 1, where, "num_draws");
  check_count(o.max_depth, 1, where, "max_depth");
  check_argument(o.max_depth <= 30, where, "max_depth must be <= 30");
  check_count(o.threads, 0, where, "threads");
  check_in_open_closed(o.target_accept, 0.0, 1.0, where, "target_accept");
  check_argument(o.target_accept < 1, where, "target_accept must be < 1");
  check_positive(o.init_step_size, where, "init_step_size");
  check_positive(o.integration_time, where, "integration_time");
  check_positive(o.max_delta_energy, where, "max_delta_energy");
  check_positive(o.init_radius, where, "init_radius");
  check_finite(o.step_jitter, where, "step_jitter");
  check_argument(o.step_jitter >= 0 && o.step_jitter < 1, where, "step_jitter must be in [0, 1)");
  for (double v : o.init)
    check_finite(v, where, "init value");
}
}  // namespace detail

namespace detail {
/// Chain `c` of a run: initial point, step-size initialisation, warm-up with
/// adaptation, then the draws, written to slot c of `r` (allocated by
/// allocate_result).  Progress lines (options.progress) are prefixed by
/// `label` and serialised by `print_mutex`.
template <class ExecutionSpace, class Density>
void run_hmc_chain(ExecutionSpace const& space, Density const& density, SamplerOptions const& options, int c,
                   SampleResult& r, ChainCounters& counters, std::mutex& print_mutex, char const* label) {
  int const d = r.dimension, nd = options.num_draws, nw = options.num_warmup;
  int const total = nw + nd, every = std::max(1, total / 10);
  HamiltonianChain<ExecutionSpace, Density> chain(space, density, options, c);
  bool const adapt = options.adapt && nw > 0;
  if (adapt) chain.init_step_size();
  DualAveraging dual(options.target_accept);
  dual.restart(chain.step_size());
  WindowedAdaptation windows(nw, d, options.metric == MetricKind::dense);
  long long grads_at_sampling = 0;
  for (int it = 0; it < total; ++it) {
    bool const warm = it < nw;
    if (it == nw && adapt) chain.set_step_size(dual.final_step_size());
    if (it == nw) grads_at_sampling = chain.gradient_evaluations();
    TransitionStats const s = chain.transition();
    if (warm) {
      counters.warmup_divergences += s.divergent ? 1 : 0;
      if (adapt) {
        chain.set_step_size(dual.learn(s.accept_stat));
        if (options.metric != MetricKind::unit && windows.learn(chain.metric(), chain.position().data())) {
          chain.init_step_size();
          dual.restart(chain.step_size());
        }
      }
    } else {
      std::size_t const j = std::size_t(c) * nd + (it - nw);
      std::copy(chain.position().begin(), chain.position().end(), r.draws.begin() + j * d);
      r.lp[j] = s.lp;
      r.accept_stat[j] = s.accept_stat;
      r.step_size[j] = s.step_size;
      r.energy[j] = s.energy;
      r.tree_depth[j] = s.tree_depth;
      r.n_leapfrog[j] = s.n_leapfrog;
      r.divergent[j] = s.divergent ? 1 : 0;
    }
    if (options.progress && ((it + 1) % every == 0 || it + 1 == total)) {
      std::lock_guard<std::mutex> lock(print_mutex);
      std::fprintf(stderr, "%s: chain %d: iteration %d / %d (%s)\n", label, c + 1, it + 1, total,
                   warm ? "warm-up" : "sampling");
    }
  }
  r.final_step_size[c] = chain.step_size();
  r.inverse_metric[c] = chain.metric().inverse_metric();
  counters.gradients = chain.gradient_evaluations();
  counters.sampling_gradients = counters.gradients - grads_at_sampling;
}
}  // namespace detail

/// Run `options.num_chains` chains of NUTS or static HMC on `density`.
template <class ExecutionSpace, class Density>
SampleResult sample(ExecutionSpace const& space, Density const& density, SamplerOptions const& options) {
  static_assert(check_log_density<Density, ExecutionSpace>(), "lensing::sample: see the messages above");
  detail::check_sampler_options(options);
  int const d = density.dimension();
  check_count(d, 1, "lensing::sample", "density.dimension()");
  if (!options.init_inv_metric.empty()) detail::initial_inverse_metric(options, d);  // validate before running
  int const nc = options.num_chains;
  SampleResult r = detail::allocate_result(nc, options.num_draws, d);
  std::vector<detail::ChainCounters> counters(static_cast<std::size_t>(nc));
  std::mutex print_mutex;
  auto const t0 = std::chrono::steady_clock::now();
  detail::for_each_chain(nc, detail::chain_threads<Density>(options.threads), [&](int c) {
    detail::run_hmc_chain(space, density, options, c, r, counters[std::size_t(c)], print_mutex, "lensing::sample");
  });
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  detail::add_counters(r, counters);
  return r;
}

}  // namespace lensing

#endif  // LENSING_SAMPLE_SAMPLER_HPP
