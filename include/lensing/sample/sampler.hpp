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
/// concurrently from several threads when threads > 1: it must be re-entrant,
/// and a density that launches kernels on a backend instance that is not
/// thread-safe (Serial and OpenMP in Kokkos 3.x) must be run with threads = 1.
/// Errors (bad options, no finite initial point) throw before or after the
/// chains run; never a hang.

#include <lensing/core/errors.hpp>
#include <lensing/sample/draws.hpp>
#include <lensing/sample/hamiltonian.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
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

/// Run `options.num_chains` chains of NUTS or static HMC on `density`.
template <class ExecutionSpace, class Density>
SampleResult sample(ExecutionSpace const& space, Density const& density, SamplerOptions const& options) {
  static_assert(check_log_density<Density, ExecutionSpace>(), "lensing::sample: see the messages above");
  detail::check_sampler_options(options);
  int const d = density.dimension();
  check_count(d, 1, "lensing::sample", "density.dimension()");
  int const nc = options.num_chains, nd = options.num_draws, nw = options.num_warmup;

  SampleResult r;
  r.num_chains = nc;
  r.num_draws = nd;
  r.dimension = d;
  std::size_t const n = std::size_t(nc) * nd;
  r.draws.resize(n * d);
  r.lp.resize(n);
  r.accept_stat.resize(n);
  r.step_size.resize(n);
  r.energy.resize(n);
  r.tree_depth.resize(n);
  r.n_leapfrog.resize(n);
  r.divergent.resize(n);
  r.final_step_size.resize(nc);
  r.inverse_metric.resize(nc);
  std::vector<long long> grads(nc, 0), sampling_grads(nc, 0), warm_div(nc, 0);
  std::vector<std::exception_ptr> errors(nc);
  std::mutex print_mutex;
  int const total = nw + nd, every = std::max(1, total / 10);

  auto run_chain = [&](int c) {
    try {
      HamiltonianChain<ExecutionSpace, Density> chain(space, density, options, c);
      bool const adapt = options.adapt && nw > 0;
      if (adapt) chain.init_step_size();
      DualAveraging dual(options.target_accept);
      dual.restart(chain.step_size());
      WindowedAdaptation windows(nw, d, options.metric == MetricKind::dense);
      for (int it = 0; it < total; ++it) {
        bool const warm = it < nw;
        if (it == nw && adapt) chain.set_step_size(dual.final_step_size());
        if (it == nw) sampling_grads[c] = chain.gradient_evaluations();
        TransitionStats const s = chain.transition();
        if (warm) {
          warm_div[c] += s.divergent ? 1 : 0;
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
          std::fprintf(stderr, "lensing::sample: chain %d: iteration %d / %d (%s)\n", c + 1, it + 1, total,
                       warm ? "warm-up" : "sampling");
        }
      }
      r.final_step_size[c] = chain.step_size();
      r.inverse_metric[c] = chain.metric().inverse_metric();
      grads[c] = chain.gradient_evaluations();
      sampling_grads[c] = grads[c] - sampling_grads[c];
    } catch (...) {
      errors[c] = std::current_exception();
    }
  };

  auto const t0 = std::chrono::steady_clock::now();
  int threads = options.threads;
  if (threads == 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::min(threads, nc);
  if (threads <= 1) {
    for (int c = 0; c < nc; ++c)
      run_chain(c);
  } else {
    std::atomic<int> next{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&]() {
        for (int c = next++; c < nc; c = next++)
          run_chain(c);
      });
    for (auto& th : pool)
      th.join();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto const& e : errors)
    if (e) std::rethrow_exception(e);
  for (int c = 0; c < nc; ++c) {
    r.gradient_evaluations += grads[c];
    r.sampling_gradient_evaluations += sampling_grads[c];
    r.warmup_divergences += warm_div[c];
  }
  return r;
}

}  // namespace lensing

#endif  // LENSING_SAMPLE_SAMPLER_HPP
