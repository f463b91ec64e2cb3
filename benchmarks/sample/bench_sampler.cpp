// Sampler costs (issue 6, item 9):
//  - overhead of NUTS per leapfrog step relative to the density cost, for a
//    density costing ~10 us and for a cheap one (100-d Gaussian, ~0.2 us):
//    overhead = (wall time per gradient evaluation inside NUTS - density time
//    per call measured alone) / density time per call;
//  - NUTS on the 100-d correlated Gaussian (AR(1), rho = 0.8; 4 chains, 500
//    warm-up + 1000 draws): minimum bulk ESS over the parameters per second and
//    per gradient, with chains on 1 and 2 host threads;
//  - sample_batch on 32 independent 10-d AR(1) Gaussians (2 chains each,
//    300 warm-up + 500 draws): problems per second on 1 and 2 host threads.
// Figures: benchmarks/README.md.
#include <lensing/sample/batch.hpp>
#include <lensing/sample/diagnostics.hpp>
#include <lensing/sample/sampler.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <vector>

namespace {

// 10-d Gaussian whose evaluation also does `work` iterations of busy
// arithmetic (a sum of exp), tuned to ~10 us; the work result is folded into
// the value with weight 0 so it cannot be optimised away.
struct CostlyGaussian {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int n = 10;
  int work = 0;
  int dimension() const { return n; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    double lp = 0, busy = 0;
    for (int i = 0; i < n; ++i) {
      g(i) = -q(i);
      lp -= 0.5 * q(i) * q(i);
    }
    for (int k = 0; k < work; ++k)
      busy += std::exp(-1e-3 * k * (1 + q(k % n) * q(k % n)));
    benchmark::DoNotOptimize(busy);
    return lp + 0 * (busy > -1 ? 0.0 : 1.0);
  }
};

// Zero-mean AR(1) Gaussian, Sigma_ij = rho^|i-j| (tridiagonal precision).
struct Ar1 {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int n = 100;
  double rho = 0.8;
  int dimension() const { return n; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    double const c = 1 / (1 - rho * rho);
    double lp = 0;
    for (int i = 0; i < n; ++i) {
      double const diag = (i == 0 || i == n - 1) ? c : (1 + rho * rho) * c;
      double pq = diag * q(i);
      if (i > 0) pq -= rho * c * q(i - 1);
      if (i < n - 1) pq -= rho * c * q(i + 1);
      g(i) = -pq;
      lp -= 0.5 * q(i) * pq;
    }
    return lp;
  }
};

// Seconds per value_and_gradient call, measured alone.
template <class Density>
double density_seconds(Density const& f) {
  int const d = f.dimension();
  std::vector<double> qs(d, 0.3), gs(d);
  lensing::View1D<double, Kokkos::HostSpace> q(qs.data(), d), g(gs.data(), d);
  Kokkos::DefaultHostExecutionSpace space;
  int reps = 1;
  for (;;) {
    auto const t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r)
      benchmark::DoNotOptimize(f.value_and_gradient(space, q, g));
    double const s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0.2 || reps >= (1 << 24)) return s / reps;
    reps *= 4;
  }
}

template <class Density>
void overhead(benchmark::State& state, Density const& f) {
  double const t_density = density_seconds(f);
  lensing::SamplerOptions opt;
  opt.num_chains = 1;
  opt.threads = 1;
  opt.num_warmup = 200;
  opt.num_draws = 500;
  double seconds = 0;
  long long grads = 0;
  for (auto _ : state) {
    auto const r = lensing::sample(Kokkos::DefaultHostExecutionSpace(), f, opt);
    seconds += r.seconds;
    grads += r.gradient_evaluations;
  }
  double const per_grad = seconds / double(grads);
  state.counters["density_us"] = t_density * 1e6;
  state.counters["per_leapfrog_us"] = per_grad * 1e6;
  state.counters["overhead_pct"] = 100 * (per_grad - t_density) / t_density;
  state.counters["overhead_ns"] = (per_grad - t_density) * 1e9;
}

void BM_nuts_overhead_10us_density(benchmark::State& state) {
  // ~10 us of work (calibrated on the development machine: exp ~ 5 ns).
  overhead(state, CostlyGaussian{10, int(state.range(0))});
}
BENCHMARK(BM_nuts_overhead_10us_density)->Arg(2000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_nuts_overhead_ar1_100d(benchmark::State& state) { overhead(state, Ar1{}); }
BENCHMARK(BM_nuts_overhead_ar1_100d)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_nuts_ess_ar1_100d(benchmark::State& state) {
  lensing::SamplerOptions opt;
  opt.num_chains = 4;
  opt.num_warmup = 500;
  opt.num_draws = 1000;
  opt.threads = int(state.range(0));
  double ess = 0, seconds = 0;
  long long grads = 0;
  for (auto _ : state) {
    auto const r = lensing::sample(Kokkos::DefaultHostExecutionSpace(), Ar1{}, opt);
    double min_ess = 1e300;
    for (int k = 0; k < r.dimension; ++k)
      min_ess = std::min(min_ess, lensing::diagnostics::ess_bulk(r.parameter(k), r.num_chains, r.num_draws));
    ess += min_ess;
    seconds += r.seconds;
    grads += r.gradient_evaluations;
  }
  state.counters["min_ESS_bulk"] = ess / double(state.iterations());
  state.counters["ESS_per_s"] = ess / seconds;
  state.counters["ESS_per_grad"] = ess / double(grads);
  state.counters["chains_per_s"] = 4.0 * double(state.iterations()) / seconds;
}
BENCHMARK(BM_nuts_ess_ar1_100d)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_nuts_batch_ar1_10d(benchmark::State& state) {
  std::vector<Ar1> problems;
  for (int b = 0; b < 32; ++b)
    problems.push_back(Ar1{10, 0.3 + 0.02 * b});
  lensing::SamplerOptions opt;
  opt.num_chains = 2;
  opt.num_warmup = 300;
  opt.num_draws = 500;
  opt.threads = int(state.range(0));
  long long grads = 0;
  for (auto _ : state) {
    auto const r = lensing::sample_batch(Kokkos::DefaultHostExecutionSpace(), problems, opt);
    for (auto const& x : r)
      grads += x.gradient_evaluations;
  }
  state.counters["problems_per_s"] = benchmark::Counter(32.0 * double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["grads_per_s"] = benchmark::Counter(double(grads), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_nuts_batch_ar1_10d)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
