#ifndef LENSING_SAMPLE_HAMILTONIAN_HPP
#define LENSING_SAMPLE_HAMILTONIAN_HPP

/// \file
/// One Hamiltonian Monte Carlo chain: leapfrog integration, the No-U-Turn
/// sampler with multinomial sampling and the generalised U-turn criterion,
/// static HMC, divergence detection and Stan-style warm-up.
///
/// Hamiltonian H(q, p) = -log pi(q) + p^T Sigma p / 2 (metric.hpp).  Leapfrog:
///   p += eps/2 grad log pi(q);  q += eps Sigma p;  p += eps/2 grad log pi(q).
/// NUTS (Hoffman & Gelman 2014; Betancourt 2017, "A Conceptual Introduction to
/// Hamiltonian Monte Carlo", arXiv:1701.02434, secs. 5.1-5.2, appendix A), as in
/// Stan: the trajectory doubles forwards or backwards at random; states are
/// drawn multinomially with weights exp(-H) (biased progressive sampling
/// between the old tree and the new subtree, uniform progressive sampling
/// inside subtrees); the generalised no-U-turn criterion
///   v(-)^T rho > 0 and v(+)^T rho > 0,  rho = sum of momenta, v = Sigma p,
/// is checked on every (sub)tree and on the two merged halves extended by one
/// state.  A state with H - H0 > 1000 (or non-finite) is a divergence and ends
/// the trajectory.  Acceptance statistic: the mean over the new states of
/// min(1, exp(H0 - H)).
///
/// A chain is a host-side orchestrator: it keeps (q, p) in double on the host
/// and evaluates the density once per leapfrog step through a
/// DensityEvaluator (density/evaluator.hpp: q converted to the density's Scalar
/// and memory space, value_and_gradient(space, q, grad), fence, copy back).  While a
/// transition runs, floating-point exceptions of the calling thread are held
/// (feholdexcept), so that a density evaluated far in the tails cannot trap;
/// non-finite values or gradients count as divergences.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>
#include <lensing/density/evaluator.hpp>
#include <lensing/density/log_density.hpp>
#include <lensing/sample/adaptation.hpp>
#include <lensing/sample/metric.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lensing {

/// Which transition a chain makes.
enum class HmcAlgorithm { nuts, static_hmc };

/// Settings of HMC / NUTS runs (defaults are Stan's).
struct SamplerOptions {
  HmcAlgorithm algorithm = HmcAlgorithm::nuts;
  int num_chains = 4;
  int num_warmup = 1000;
  int num_draws = 1000;
  std::uint64_t seed = 1;
  MetricKind metric = MetricKind::diagonal;  ///< adapted during warm-up (unit: never adapted)
  bool adapt = true;                         ///< dual averaging and metric adaptation during warm-up
  double target_accept = 0.8;                ///< dual-averaging target (delta)
  double init_step_size = 1;
  double step_jitter = 0;          ///< eps *= 1 + jitter (2u - 1) per transition
  int max_depth = 10;              ///< NUTS: at most 2^max_depth - 1 leapfrog steps
  double integration_time = 1;     ///< static HMC: steps = max(1, floor(T / eps))
  double max_delta_energy = 1000;  ///< divergence threshold on H - H0
  double init_radius = 2;          ///< initial q uniform in [-r, r]^d unless init is given
  std::vector<double> init;        ///< empty, d values (all chains) or num_chains * d values
  /// Initial inverse metric Sigma (e.g. a Laplace covariance at the MAP, with
  /// `init` the MAP): empty (identity), d values (diagonal) or d*d row-major
  /// values (dense; needs metric = dense), symmetric positive definite.  The
  /// warm-up adapts from it; with metric = unit it is kept fixed (diagonal only).
  std::vector<double> init_inv_metric;
  int threads = 0;        ///< host threads running chains; 0: min(num_chains, hardware)
  bool progress = false;  ///< print progress to stderr every 10% of each chain
};

/// Statistics of one transition.
struct TransitionStats {
  double accept_stat = 0, energy = 0, lp = 0, step_size = 0;
  int tree_depth = 0, n_leapfrog = 0;
  bool divergent = false;
};

namespace detail {
/// options.init_inv_metric in the storage of the chain's metric (d or d*d
/// values); throws std::invalid_argument for a wrong length, non-finite or
/// asymmetric values, a dense matrix with a diagonal metric, or a matrix that
/// is not positive definite.
inline std::vector<double> initial_inverse_metric(SamplerOptions const& o, int d) {
  constexpr char const* where = "lensing::sample";
  std::size_t const n = std::size_t(d), nn = n * n;
  auto const& v = o.init_inv_metric;
  bool const dense = o.metric == MetricKind::dense;
  check_argument(v.size() == n || (v.size() == nn && dense), where,
                 "init_inv_metric must have dimension() values (diagonal)" +
                     std::string(dense ? " or dimension()^2 values (dense)" : "") + ", got " +
                     std::to_string(v.size()) +
                     (v.size() == nn && !dense ? " (a dense matrix needs metric = dense)" : ""));
  for (double x : v)
    check_finite(x, where, "init_inv_metric value");
  std::vector<double> inv = v;
  if (dense && v.size() == n && n > 1) {
    inv.assign(nn, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      inv[i * n + i] = v[i];
  }
  if (dense && n > 1)
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < i; ++j) {
        double const a = inv[i * n + j], b = inv[j * n + i];
        check_argument(std::fabs(a - b) <= 1e-12 * std::max(std::fabs(a), std::fabs(b)), where,
                       "init_inv_metric must be symmetric");
      }
  Metric m(d, dense ? MetricKind::dense : MetricKind::diagonal);
  try {
    m.set_inverse_metric(inv);
  } catch (std::invalid_argument const&) {
    throw_invalid_argument(where, "init_inv_metric must be positive definite");
  }
  return inv;
}

inline double log_sum_exp(double a, double b) {
  if (!(a > -HUGE_VAL)) return b;
  if (!(b > -HUGE_VAL)) return a;
  return a > b ? a + std::log1p(std::exp(b - a)) : b + std::log1p(std::exp(a - b));
}
inline double dot(std::vector<double> const& a, std::vector<double> const& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}
// Holds the FP environment (no traps, flags discarded) for its lifetime.
class FenvHold {
 public:
  FenvHold() { std::feholdexcept(&env_); }
  ~FenvHold() { std::fesetenv(&env_); }
  FenvHold(FenvHold const&) = delete;
  FenvHold& operator=(FenvHold const&) = delete;

 private:
  std::fenv_t env_;
};
}  // namespace detail

//----------------------------------------------------------------------------
/// One chain of HMC / NUTS on `density` (a LogDensity, log_density.hpp).
template <class ExecutionSpace, class Density>
class HamiltonianChain {
  static_assert(check_log_density<Density, ExecutionSpace>(), "lensing::HamiltonianChain: see the messages above");

 public:
  /// Chain `chain` of a run with `options` (its random stream is (seed, chain)).
  HamiltonianChain(ExecutionSpace const& space, Density const& density, SamplerOptions const& options, int chain)
      : eval_(space, density, "lensing::sample"),
        opt_(options),
        d_(eval_.dimension()),
        metric_(d_, options.metric == MetricKind::dense ? MetricKind::dense : MetricKind::diagonal),
        rng_(options.seed, random::purpose_chain, std::uint64_t(chain)) {
    auto alloc = [&](std::vector<double>& v) { v.assign(d_, 0.0); };
    for (auto* v :
         {&q_,   &g_,       &zq_,      &zp_,      &zg_,   &zv_,   &fq_,   &fp_,   &fg_,   &bq_,   &bp_,   &bg_,
          &rho_, &rho_fwd_, &rho_bck_, &rho_ext_, &p_ff_, &v_ff_, &p_fb_, &v_fb_, &p_bf_, &v_bf_, &p_bb_, &v_bb_})
      alloc(*v);
    propose_.resize(d_);
    sample_.resize(d_);
    levels_.resize(std::size_t(opt_.max_depth) + 1);
    for (auto& l : levels_)
      l.resize(d_);
    eps_ = options.init_step_size;
    if (!options.init_inv_metric.empty()) metric_.set_inverse_metric(detail::initial_inverse_metric(options, d_));
    initialise(chain);
  }

  int dimension() const { return d_; }
  double step_size() const { return eps_; }
  void set_step_size(double eps) { eps_ = eps; }
  Metric const& metric() const { return metric_; }
  Metric& metric() { return metric_; }
  std::vector<double> const& position() const { return q_; }
  double log_density() const { return lp_; }
  long long gradient_evaluations() const { return eval_.evaluations(); }

  /// One transition (NUTS or static HMC per the options) from the current state.
  TransitionStats transition() {
    detail::FenvHold hold;
    double const eps0 = eps_;
    if (opt_.step_jitter > 0) eps_ *= 1 + opt_.step_jitter * (2 * rng_.uniform() - 1);
    TransitionStats s = opt_.algorithm == HmcAlgorithm::nuts ? nuts() : static_hmc();
    s.step_size = eps_;
    eps_ = eps0;
    return s;
  }

  /// Stan's heuristic: double or halve eps until the acceptance probability
  /// of one leapfrog step crosses 0.8.
  void init_step_size() {
    detail::FenvHold hold;
    auto one_step = [&]() {
      zq_ = q_;
      zg_ = g_;
      zlp_ = lp_;
      metric_.sample_momentum(rng_, zp_.data());
      metric_.velocity(zp_.data(), zv_.data());
      double const h0 = hamiltonian();
      leapfrog(eps_);
      double const h = hamiltonian();
      return std::isfinite(h) ? h0 - h : -HUGE_VAL;
    };
    double const log08 = std::log(0.8);
    int const direction = one_step() > log08 ? 1 : -1;
    for (int k = 0; k < 200; ++k) {
      double const dh = one_step();
      if (direction == 1 && !(dh > log08)) return;
      if (direction == -1 && !(dh < log08)) return;
      eps_ = direction == 1 ? 2 * eps_ : 0.5 * eps_;
      if (eps_ > 1e7)
        throw std::runtime_error("lensing::sample: step size diverged to > 1e7 (is the posterior improper?)");
      if (!(eps_ > 1e-300)) break;
    }
    throw std::runtime_error(
        "lensing::sample: no usable step size (the log-density or its gradient is non-finite near the current "
        "point)");
  }

 private:
  struct State {
    std::vector<double> q, g;
    double lp = 0, h = 0;
    void resize(int d) {
      q.assign(d, 0.0);
      g.assign(d, 0.0);
    }
  };
  struct Level {
    std::vector<double> p_init_end, v_init_end, rho_init, p_final_beg, v_final_beg, rho_final, rho_sub, rho_ext;
    State propose_final;
    void resize(int d) {
      for (auto* v : {&p_init_end, &v_init_end, &rho_init, &p_final_beg, &v_final_beg, &rho_final, &rho_sub, &rho_ext})
        v->assign(d, 0.0);
      propose_final.resize(d);
    }
  };

  // log density and gradient at q; -inf (gradient unspecified) if anything is
  // non-finite.  Every caller holds the FP environment (detail::FenvHold).
  double evaluate(std::vector<double> const& q, std::vector<double>& g) { return eval_.evaluate(q.data(), g.data()); }

  void initialise(int chain) {
    constexpr char const* where = "lensing::sample";
    std::size_t const d = std::size_t(d_);
    if (!opt_.init.empty()) {
      check_argument(opt_.init.size() == d || opt_.init.size() == d * std::size_t(opt_.num_chains), where,
                     "init must have dimension() or num_chains * dimension() values");
      std::size_t const off = opt_.init.size() == d ? 0 : d * std::size_t(chain);
      for (std::size_t i = 0; i < d; ++i)
        q_[i] = opt_.init[off + i];
      detail::FenvHold hold;
      lp_ = evaluate(q_, g_);
      if (!std::isfinite(lp_))
        throw std::runtime_error("lensing::sample: log-density or gradient non-finite at the given init");
      return;
    }
    detail::FenvHold hold;
    for (int attempt = 0; attempt < 100; ++attempt) {
      for (auto& qi : q_)
        qi = opt_.init_radius * (2 * rng_.uniform() - 1);
      lp_ = evaluate(q_, g_);
      if (std::isfinite(lp_)) return;
    }
    throw std::runtime_error(
        "lensing::sample: no finite log-density and gradient in 100 random initialisations (uniform in [-" +
        std::to_string(opt_.init_radius) + ", " + std::to_string(opt_.init_radius) + "]^d)");
  }

  double hamiltonian() const {
    if (!std::isfinite(zlp_)) return HUGE_VAL;
    double const h = -zlp_ + 0.5 * detail::dot(zp_, zv_);
    return std::isfinite(h) ? h : HUGE_VAL;
  }

  // One leapfrog step of the integration state z (zv = Sigma zp on exit).
  void leapfrog(double eps) {
    for (int i = 0; i < d_; ++i)
      zp_[i] += 0.5 * eps * zg_[i];
    metric_.velocity(zp_.data(), zv_.data());
    for (int i = 0; i < d_; ++i)
      zq_[i] += eps * zv_[i];
    zlp_ = evaluate(zq_, zg_);
    if (!std::isfinite(zlp_)) return;
    for (int i = 0; i < d_; ++i)
      zp_[i] += 0.5 * eps * zg_[i];
    metric_.velocity(zp_.data(), zv_.data());
  }

  static bool criterion(std::vector<double> const& v_minus, std::vector<double> const& v_plus,
                        std::vector<double> const& rho) {
    return detail::dot(v_plus, rho) > 0 && detail::dot(v_minus, rho) > 0;
  }

  bool build_tree(int depth, State& propose, std::vector<double>& v_beg, std::vector<double>& v_end,
                  std::vector<double>& rho, std::vector<double>& p_beg, std::vector<double>& p_end, double h0,
                  double sign, int& n_leapfrog, double& log_sum_weight, double& sum_metro) {
    if (depth == 0) {
      leapfrog(sign * eps_);
      ++n_leapfrog;
      double const h = hamiltonian();
      if (!(h - h0 <= opt_.max_delta_energy)) divergent_ = true;
      log_sum_weight = detail::log_sum_exp(log_sum_weight, h0 - h);
      sum_metro += h0 - h > 0 ? 1.0 : std::exp(h0 - h);
      propose.q = zq_;
      propose.g = zg_;
      propose.lp = zlp_;
      propose.h = h;
      v_beg = zv_;
      v_end = zv_;
      for (int i = 0; i < d_; ++i)
        rho[i] += zp_[i];
      p_beg = zp_;
      p_end = zp_;
      return !divergent_;
    }
    Level& L = levels_[std::size_t(depth)];
    double lsw_init = -HUGE_VAL;
    std::fill(L.rho_init.begin(), L.rho_init.end(), 0.0);
    if (!build_tree(depth - 1, propose, v_beg, L.v_init_end, L.rho_init, p_beg, L.p_init_end, h0, sign, n_leapfrog,
                    lsw_init, sum_metro))
      return false;
    double lsw_final = -HUGE_VAL;
    std::fill(L.rho_final.begin(), L.rho_final.end(), 0.0);
    if (!build_tree(depth - 1, L.propose_final, L.v_final_beg, v_end, L.rho_final, L.p_final_beg, p_end, h0, sign,
                    n_leapfrog, lsw_final, sum_metro))
      return false;
    double const lsw_sub = detail::log_sum_exp(lsw_init, lsw_final);
    log_sum_weight = detail::log_sum_exp(log_sum_weight, lsw_sub);
    // Uniform progressive sampling inside the subtree.
    if (lsw_final > lsw_sub || rng_.uniform() < std::exp(lsw_final - lsw_sub)) swap_state(propose, L.propose_final);
    for (int i = 0; i < d_; ++i) {
      L.rho_sub[i] = L.rho_init[i] + L.rho_final[i];
      rho[i] += L.rho_sub[i];
    }
    bool persist = criterion(v_beg, v_end, L.rho_sub);
    for (int i = 0; i < d_; ++i)
      L.rho_ext[i] = L.rho_init[i] + L.p_final_beg[i];
    persist = persist && criterion(v_beg, L.v_final_beg, L.rho_ext);
    for (int i = 0; i < d_; ++i)
      L.rho_ext[i] = L.rho_final[i] + L.p_init_end[i];
    persist = persist && criterion(L.v_init_end, v_end, L.rho_ext);
    return persist;
  }

  static void swap_state(State& a, State& b) {
    a.q.swap(b.q);
    a.g.swap(b.g);
    std::swap(a.lp, b.lp);
    std::swap(a.h, b.h);
  }

  TransitionStats nuts() {
    zq_ = q_;
    zg_ = g_;
    zlp_ = lp_;
    metric_.sample_momentum(rng_, zp_.data());
    metric_.velocity(zp_.data(), zv_.data());
    double const h0 = hamiltonian();
    fq_ = zq_, fp_ = zp_, fg_ = zg_, flp_ = zlp_;
    bq_ = zq_, bp_ = zp_, bg_ = zg_, blp_ = zlp_;
    sample_.q = q_, sample_.g = g_, sample_.lp = lp_, sample_.h = h0;
    p_ff_ = zp_, v_ff_ = zv_, p_fb_ = zp_, v_fb_ = zv_, p_bf_ = zp_, v_bf_ = zv_, p_bb_ = zp_, v_bb_ = zv_;
    rho_ = zp_;
    double log_sum_weight = 0, sum_metro = 0;
    int depth = 0, n_leapfrog = 0;
    divergent_ = false;
    while (depth < opt_.max_depth) {
      std::fill(rho_fwd_.begin(), rho_fwd_.end(), 0.0);
      std::fill(rho_bck_.begin(), rho_bck_.end(), 0.0);
      double lsw_sub = -HUGE_VAL;
      bool valid;
      if (rng_.uniform() > 0.5) {
        zq_ = fq_, zp_ = fp_, zg_ = fg_, zlp_ = flp_;
        rho_bck_ = rho_;
        // The old trajectory becomes the backward subtree: its forward end is
        // the old forward-most state (not the inner end p_fb_ of the last
        // forward subtree), so the merged checks below span the boundary.
        p_bf_ = p_ff_;
        v_bf_ = v_ff_;
        valid =
            build_tree(depth, propose_, v_fb_, v_ff_, rho_fwd_, p_fb_, p_ff_, h0, 1.0, n_leapfrog, lsw_sub, sum_metro);
        fq_ = zq_, fp_ = zp_, fg_ = zg_, flp_ = zlp_;
      } else {
        zq_ = bq_, zp_ = bp_, zg_ = bg_, zlp_ = blp_;
        rho_fwd_ = rho_;
        p_fb_ = p_bb_;  // likewise: the old trajectory's backward-most state
        v_fb_ = v_bb_;
        valid =
            build_tree(depth, propose_, v_bf_, v_bb_, rho_bck_, p_bf_, p_bb_, h0, -1.0, n_leapfrog, lsw_sub, sum_metro);
        bq_ = zq_, bp_ = zp_, bg_ = zg_, blp_ = zlp_;
      }
      if (!valid) break;
      ++depth;
      // Biased progressive sampling between the old tree and the new subtree.
      if (lsw_sub > log_sum_weight || rng_.uniform() < std::exp(lsw_sub - log_sum_weight))
        swap_state(sample_, propose_);
      log_sum_weight = detail::log_sum_exp(log_sum_weight, lsw_sub);
      for (int i = 0; i < d_; ++i)
        rho_[i] = rho_bck_[i] + rho_fwd_[i];
      bool persist = criterion(v_bb_, v_ff_, rho_);
      for (int i = 0; i < d_; ++i)
        rho_ext_[i] = rho_bck_[i] + p_fb_[i];
      persist = persist && criterion(v_bb_, v_fb_, rho_ext_);
      for (int i = 0; i < d_; ++i)
        rho_ext_[i] = rho_fwd_[i] + p_bf_[i];
      persist = persist && criterion(v_bf_, v_ff_, rho_ext_);
      if (!persist) break;
    }
    q_.swap(sample_.q);
    g_.swap(sample_.g);
    lp_ = sample_.lp;
    TransitionStats s;
    s.accept_stat = n_leapfrog > 0 ? sum_metro / n_leapfrog : 0;
    s.energy = sample_.h;
    s.lp = lp_;
    s.tree_depth = depth;
    s.n_leapfrog = n_leapfrog;
    s.divergent = divergent_;
    return s;
  }

  TransitionStats static_hmc() {
    zq_ = q_;
    zg_ = g_;
    zlp_ = lp_;
    metric_.sample_momentum(rng_, zp_.data());
    metric_.velocity(zp_.data(), zv_.data());
    double const h0 = hamiltonian();
    double const ratio = opt_.integration_time / eps_;
    int const steps = ratio < 1 ? 1 : (ratio > 1e6 ? 1000000 : int(ratio));
    TransitionStats s;
    double h = h0;
    for (int l = 0; l < steps; ++l) {
      leapfrog(eps_);
      ++s.n_leapfrog;
      h = hamiltonian();
      if (!(h - h0 <= opt_.max_delta_energy)) {
        s.divergent = true;
        break;
      }
    }
    s.accept_stat = s.divergent ? 0.0 : (h0 - h > 0 ? 1.0 : std::exp(h0 - h));
    if (rng_.uniform() < s.accept_stat) {
      q_ = zq_;
      g_ = zg_;
      lp_ = zlp_;
      s.energy = h;
    } else {
      s.energy = h0;
    }
    s.lp = lp_;
    return s;
  }

  DensityEvaluator<ExecutionSpace, Density> eval_;
  SamplerOptions opt_;
  int d_;
  Metric metric_;
  Rng rng_;
  double eps_ = 1, lp_ = 0, zlp_ = 0, flp_ = 0, blp_ = 0;
  bool divergent_ = false;
  std::vector<double> q_, g_, zq_, zp_, zg_, zv_, fq_, fp_, fg_, bq_, bp_, bg_, rho_, rho_fwd_, rho_bck_, rho_ext_;
  std::vector<double> p_ff_, v_ff_, p_fb_, v_fb_, p_bf_, v_bf_, p_bb_, v_bb_;
  State propose_, sample_;
  std::vector<Level> levels_;
};

}  // namespace lensing

#endif  // LENSING_SAMPLE_HAMILTONIAN_HPP
