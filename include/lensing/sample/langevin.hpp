#ifndef LENSING_SAMPLE_LANGEVIN_HPP
#define LENSING_SAMPLE_LANGEVIN_HPP

/// \file
/// Langevin samplers.
///
/// ULA and MALA on a LogDensity (log_density.hpp), many chains in host threads:
///   proposal  y = x + h grad log pi(x) + sqrt(2 h) xi,   xi ~ N(0, I),
/// the Euler-Maruyama step of the Langevin diffusion dX = grad log pi dt + sqrt(2) dW
/// (Roberts & Tweedie 1996, "Exponential convergence of Langevin distributions
/// and their discrete approximations", Bernoulli 2, 341).  ULA always moves to
/// y and so samples a biased stationary law: for a Gaussian target N(0, s^2)
/// its stationary variance is s^2 / (1 - h / (2 s^2)) (bias O(h)).  MALA
/// accepts y with probability min(1, pi(y) q(x|y) / (pi(x) q(y|x))),
/// q(y|x) = N(y; x + h grad log pi(x), 2 h I), which makes pi exactly
/// stationary; during warm-up h is tuned by the dual averaging of
/// adaptation.hpp towards an acceptance rate of 0.574 (Roberts & Rosenthal
/// 1998, optimal scaling of MALA).  A non-finite proposal is rejected and
/// recorded as divergent (ULA too).  Output: a SampleResult (draws.hpp) with
/// n_leapfrog = 1, tree_depth = 0, energy = -lp.  Chain c uses the random
/// stream (seed, c): results do not depend on the number of threads.  With
/// threads > 1 the density is called concurrently, each chain on its own
/// clone (as for sample(); a density declaring launches_kernels runs its
/// chains on the calling thread).
///
/// Annealed Langevin dynamics (Song & Ermon 2019, "Generative modeling by
/// estimating gradients of the data distribution", NeurIPS, Algorithm 1)
/// for a user-supplied score s(x, sigma) ~ grad_x log p_sigma(x) of the data
/// density smoothed by N(0, sigma^2 I), and a decreasing noise schedule
/// sigma_1 > ... > sigma_L: at level i, T steps
///   x += alpha_i s(x, sigma_i) + sqrt(2 alpha_i) z,   alpha_i = epsilon sigma_i^2 / sigma_L^2,
/// (optionally capped at max_step),
/// for a batch of samples in a View (kernels on any space; the noise z comes
/// from counter-based streams keyed by (seed, step, element), so the result
/// does not depend on the thread count).  Each level is ULA on p_sigma_i: for
/// a Gaussian level target of precision P its stationary law is
/// N(mean, (P - alpha P^2 / 2)^-1), a covariance bias of about alpha / 2 I
/// at the last level (see tests/sample/test_score.cpp).

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>
#include <lensing/density/evaluator.hpp>
#include <lensing/density/log_density.hpp>
#include <lensing/sample/adaptation.hpp>
#include <lensing/sample/draws.hpp>
#include <lensing/sample/parallel_chains.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace lensing {

/// Which Langevin transition a chain makes.
enum class LangevinAlgorithm { ula, mala };

/// Settings of ULA / MALA runs.
struct LangevinOptions {
  LangevinAlgorithm algorithm = LangevinAlgorithm::mala;
  int num_chains = 4;
  int num_warmup = 1000;  ///< discarded iterations (MALA: step-size adaptation when adapt)
  int num_draws = 1000;
  int thin = 1;  ///< keep every thin-th iteration after warm-up
  std::uint64_t seed = 1;
  double step_size = 0.1;  ///< h (initial value when adapted)
  bool adapt = true;       ///< MALA only: dual averaging of h during warm-up
  double target_accept = 0.574;
  double init_radius = 2;    ///< initial x uniform in [-r, r]^d unless init is given
  std::vector<double> init;  ///< empty, d values (all chains) or num_chains * d values
  int threads = 0;           ///< host threads running chains; 0: min(num_chains, hardware)
  bool progress = false;     ///< print progress to stderr every 10% of each chain
};

namespace detail {
inline void check_langevin_options(LangevinOptions const& o) {
  constexpr char const* where = "lensing::langevin";
  check_count(o.num_chains, 1, where, "num_chains");
  check_count(o.num_warmup, 0, where, "num_warmup");
  check_count(o.num_draws, 1, where, "num_draws");
  check_count(o.thin, 1, where, "thin");
  check_count(o.threads, 0, where, "threads");
  check_positive(o.step_size, where, "step_size");
  check_in_open_closed(o.target_accept, 0.0, 1.0, where, "target_accept");
  check_argument(o.target_accept < 1, where, "target_accept must be < 1");
  check_positive(o.init_radius, where, "init_radius");
  for (double v : o.init)
    check_finite(v, where, "init value");
}

}  // namespace detail

//----------------------------------------------------------------------------
/// Run `options.num_chains` ULA or MALA chains on `density`.  Throws
/// std::invalid_argument for bad options or a zero dimension, and
/// std::runtime_error when no finite initial point is found.
template <class ExecutionSpace, class Density>
SampleResult langevin(ExecutionSpace const& space, Density const& density, LangevinOptions const& options) {
  static_assert(check_log_density<Density, ExecutionSpace>(), "lensing::langevin: see the messages above");
  constexpr char const* where = "lensing::langevin";
  detail::check_langevin_options(options);
  int const d = density.dimension();
  check_count(d, 1, where, "density.dimension()");
  int const nc = options.num_chains, nd = options.num_draws, nw = options.num_warmup, thin = options.thin;
  std::size_t const dd = std::size_t(d);
  check_argument(options.init.empty() || options.init.size() == dd || options.init.size() == dd * nc, where,
                 "init must have dimension() or num_chains * dimension() values");
  SampleResult r = detail::allocate_result(nc, nd, d);
  r.n_leapfrog.assign(r.n_leapfrog.size(), 1);
  std::vector<detail::ChainCounters> counters(static_cast<std::size_t>(nc));
  std::mutex print_mutex;
  bool const mala = options.algorithm == LangevinAlgorithm::mala;
  long long const total = nw + (long long)nd * thin, every = std::max(1LL, total / 10);

  auto run_chain = [&](int c) {
    DensityEvaluator<ExecutionSpace, Density> eval(space, density, where);
    Rng rng(options.seed, random::purpose_chain, std::uint64_t(c));
    std::vector<double> x(dd), g(dd), y(dd), gy(dd), xi(dd);
    double lp = -HUGE_VAL;
    if (!options.init.empty()) {
      std::size_t const off = options.init.size() == dd ? 0 : dd * c;
      std::copy(options.init.begin() + off, options.init.begin() + off + dd, x.begin());
      lp = eval(x.data(), g.data());
      if (!std::isfinite(lp))
        throw std::runtime_error("lensing::langevin: log-density or gradient non-finite at the given init");
    } else {
      for (int attempt = 0; attempt < 100 && !std::isfinite(lp); ++attempt) {
        for (auto& v : x)
          v = options.init_radius * (2 * rng.uniform() - 1);
        lp = eval(x.data(), g.data());
      }
      if (!std::isfinite(lp))
        throw std::runtime_error("lensing::langevin: no finite log-density and gradient at 100 random initial points");
    }
    double h = options.step_size;
    DualAveraging dual(options.target_accept);
    dual.restart(h);
    bool const adapt = mala && options.adapt && nw > 0;
    std::size_t kept = std::size_t(c) * nd;
    for (long long it = 0; it < total; ++it) {
      bool const warm = it < nw;
      if (it == nw) {
        if (adapt) h = dual.final_step_size();
        counters[c].sampling_gradients = eval.evaluations();
      }
      double const s2h = std::sqrt(2 * h);
      for (std::size_t i = 0; i < dd; ++i) {
        xi[i] = rng.normal();
        y[i] = x[i] + h * g[i] + s2h * xi[i];
      }
      double const lpy = eval(y.data(), gy.data());
      bool divergent = !std::isfinite(lpy);
      double accept = 0;
      if (!divergent) {
        if (mala) {
          // log q(x|y) - log q(y|x); q(y|x) = N(y; x + h g(x), 2h).
          double fwd = 0, bwd = 0;
          for (std::size_t i = 0; i < dd; ++i) {
            double const a = y[i] - x[i] - h * g[i], b = x[i] - y[i] - h * gy[i];
            fwd += a * a;
            bwd += b * b;
          }
          double const log_ratio = lpy - lp + (fwd - bwd) / (4 * h);
          accept = log_ratio >= 0 ? 1.0 : std::exp(log_ratio);
          if (rng.uniform() < accept) {
            x.swap(y), g.swap(gy), lp = lpy;
          }
        } else {
          accept = 1;
          x.swap(y), g.swap(gy), lp = lpy;
        }
      }
      if (warm) {
        counters[c].warmup_divergences += divergent ? 1 : 0;
        if (adapt) {
          h = dual.learn(accept);
          h = std::min(std::max(h, 1e-12), 1e6);
        }
      } else if ((it - nw + 1) % thin == 0) {
        std::copy(x.begin(), x.end(), r.draws.begin() + kept * dd);
        r.lp[kept] = lp;
        r.energy[kept] = -lp;
        r.accept_stat[kept] = accept;
        r.step_size[kept] = h;
        r.divergent[kept] = divergent ? 1 : 0;
        ++kept;
      }
      if (options.progress && ((it + 1) % every == 0 || it + 1 == total)) {
        std::lock_guard<std::mutex> lock(print_mutex);
        std::fprintf(stderr, "lensing::langevin: chain %d: iteration %lld / %lld%s\n", c + 1, it + 1, total,
                     warm ? " (warm-up)" : "");
      }
    }
    r.final_step_size[c] = h;
    counters[c].gradients = eval.evaluations();
    counters[c].sampling_gradients = counters[c].gradients - counters[c].sampling_gradients;
  };
  auto const t0 = std::chrono::steady_clock::now();
  detail::for_each_chain(nc, detail::chain_threads<Density>(options.threads), run_chain);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  detail::add_counters(r, counters);
  return r;
}

//----------------------------------------------------------------------------
/// Settings of annealed Langevin dynamics.
struct AnnealedLangevinOptions {
  std::vector<double> sigmas;  ///< noise levels, strictly decreasing, > 0
  int steps_per_level = 100;   ///< T
  double epsilon = 2e-5;       ///< step at the last level: alpha_L = epsilon
  /// Upper bound on alpha_i (infinite: none).  With a likelihood score added
  /// (PosteriorScore, score.hpp) the target's curvature no longer scales as
  /// 1 / sigma_i^2, and epsilon sigma_i^2 / sigma_L^2 can exceed the
  /// stability limit 2 / (largest curvature) at the first levels.
  double max_step = HUGE_VAL;
  std::uint64_t seed = 1;
  bool progress = false;  ///< print each finished level to stderr
};

/// Annealed Langevin sampler for a batch of `num_samples` points in R^d
/// (Scalar float or double, data in Mem).  The score is a callable
///   score(space, sigma, x, s):  s(i, :) = grad_x log p_sigma(x(i, :)),  x, s: View2D<Scalar, Mem> (n, d),
/// which may launch kernels on `space` (e.g. a neural network; the sampler
/// fences `space`).  The score buffer is built in the constructor.
template <class Scalar, class MemorySpace>
class AnnealedLangevin {
  static_assert(std::is_floating_point<Scalar>::value, "lensing::AnnealedLangevin: Scalar must be float or double");

 public:
  AnnealedLangevin(int num_samples, int dimension, AnnealedLangevinOptions const& options)
      : opt_(options), n_(num_samples), d_(dimension) {
    constexpr char const* where = "lensing::AnnealedLangevin";
    check_count(num_samples, 1, where, "num_samples");
    check_count(dimension, 1, where, "dimension");
    check_count(options.steps_per_level, 1, where, "steps_per_level");
    check_positive(options.epsilon, where, "epsilon");
    check_argument(options.max_step > 0, where, "max_step must be > 0");
    check_argument(!options.sigmas.empty(), where, "sigmas must not be empty");
    for (std::size_t i = 0; i < options.sigmas.size(); ++i) {
      check_positive(options.sigmas[i], where, "sigma");
      check_argument(i == 0 || options.sigmas[i] < options.sigmas[i - 1], where, "sigmas must be strictly decreasing");
    }
    s_ = View2D<Scalar, MemorySpace>(Kokkos::view_alloc(std::string("lensing::sample::annealed_score")), n_, d_);
  }

  /// Step size alpha_i of level i: min(epsilon sigma_i^2 / sigma_L^2, max_step).
  double step_size(int level) const {
    double const r = opt_.sigmas[std::size_t(level)] / opt_.sigmas.back();
    return std::min(opt_.epsilon * r * r, opt_.max_step);
  }

  /// Run all levels from the samples in x (n, d), which hold the result on return.
  template <class ExecutionSpace, class Score>
  void run(ExecutionSpace const& space, Score const& score, View2D<Scalar, MemorySpace> const& x) const {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::AnnealedLangevin::run: the samples must be accessible from the execution space");
    check_argument(int(x.extent(0)) == n_ && int(x.extent(1)) == d_, "lensing::AnnealedLangevin::run",
                   "x must have shape (num_samples, dimension)");
    auto const s = s_;
    int const d = d_;
    std::uint64_t const seed = opt_.seed;
    int const levels = int(opt_.sigmas.size());
    for (int level = 0; level < levels; ++level) {
      double const sigma = opt_.sigmas[std::size_t(level)];
      Scalar const alpha = Scalar(step_size(level)), noise = Scalar(std::sqrt(2 * step_size(level)));
      for (int t = 0; t < opt_.steps_per_level; ++t) {
        score(space, Scalar(sigma), x, s);
        std::uint64_t const step = std::uint64_t(level) * std::uint64_t(opt_.steps_per_level) + std::uint64_t(t);
        Kokkos::parallel_for(
            "lensing::sample::annealed_langevin_step",
            Kokkos::MDRangePolicy<ExecutionSpace, Kokkos::Rank<2>>(space, {0, 0}, {n_, d_}),
            KOKKOS_LAMBDA(int i, int j) {
              random::Stream z(random::stream_key(seed, random::purpose_langevin, step, std::uint64_t(i) * d + j));
              x(i, j) += alpha * s(i, j) + noise * z.template normal<Scalar>();
            });
      }
      space.fence();
      if (opt_.progress)
        std::fprintf(stderr, "lensing::AnnealedLangevin: level %d / %d (sigma = %g) done\n", level + 1, levels, sigma);
    }
  }

 private:
  AnnealedLangevinOptions opt_;
  int n_, d_;
  View2D<Scalar, MemorySpace> s_;
};

}  // namespace lensing

#endif  // LENSING_SAMPLE_LANGEVIN_HPP
