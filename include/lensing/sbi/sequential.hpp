#ifndef LENSING_SBI_SEQUENTIAL_HPP
#define LENSING_SBI_SEQUENTIAL_HPP

/// \file
/// Truncated sequential neural posterior estimation (TSNPE; Deistler,
/// Gonçalves & Macke 2022, "Truncated proposals for scalable and
/// hassle-free simulation-based inference"): an NPE (npe.hpp) is sharpened
/// for one observation x_o by rounds of simulations from the prior
/// truncated to a box around the current posterior's highest-probability
/// region (HPR).
///
/// Round r = 1..R, starting from the given (e.g. amortised) network:
///   1. draws θ ~ q_{r−1}(θ | x_o) restricted to the current box B_{r−1}
///      (B_0 = the prior's support), with their log q;
///   2. B_r = the bounding box of the draws in the HPR holding 1 − ε of them
///      (hpr_box), intersected with B_{r−1};
///   3. N new simulations (θ, x) with θ ~ p(θ) 1_{B_r}(θ) / Z (the user's
///      simulator, e.g. a prior table truncated by truncate_table());
///   4. fine-tuning of the network (nn::fit, a few epochs, early stopping on
///      held-out simulations) on the new simulations and, with reuse, the
///      earlier rounds' simulations that lie in B_r — those are draws of the
///      prior truncated to B_r too (B_r ⊂ B_{r−1}: a rejection step), so the
///      training set is one truncated-prior sample.
/// Under a truncated prior the plain NPE loss needs no correction (the
/// minimiser is p(θ | x) ∝ p(x | θ) p(θ) on B_r, the exact posterior as long
/// as B_r holds its mass), unlike sequential NPE with arbitrary proposals.
/// The posterior of a round is q_r restricted to B_r (draws by rejection).
///
/// Before each round's training the labels are re-standardised to the
/// round's training set (mean and sd of its θ) and the mixture head (the
/// final Dense layer, restandardise_mixture_head) re-expressed so that the
/// network's density is unchanged: the posterior then has width O(1) in the
/// network's units every round, and Adam's per-parameter steps (of order
/// the learning rate) need not move a bias by log(prior sd / posterior sd).
///
/// Not amortised: every round simulates and trains for this one x_o.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>
#include <lensing/density/parameter_table.hpp>
#include <lensing/density/prior.hpp>
#include <lensing/nn/fit.hpp>
#include <lensing/nn/loss_gaussian_full.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/schedule.hpp>
#include <lensing/nn/tensor.hpp>
#include <lensing/sbi/npe.hpp>
#include <lensing/simulate/data_source.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace lensing {
namespace sbi {

/// An axis-aligned box [lo_j, hi_j] of parameter space (bounds may be ±inf).
struct Box {
  std::vector<double> lo, hi;
  int dimension() const { return int(lo.size()); }
  double width(int j) const { return hi[std::size_t(j)] - lo[std::size_t(j)]; }
  /// Whether t (dimension() values) lies in the closed box.
  bool contains(double const* t) const {
    for (std::size_t j = 0; j < lo.size(); ++j)
      if (!(t[j] >= lo[j] && t[j] <= hi[j])) return false;
    return true;
  }
};

namespace detail {
inline void check_box(Box const& b, char const* where) {
  check_argument(!b.lo.empty() && b.lo.size() == b.hi.size() && b.lo.size() <= std::size_t(mdn_full_max_dimension),
                 where, "the box needs lo and hi of one length, 1 to 16");
  for (std::size_t j = 0; j < b.lo.size(); ++j)
    check_argument(!std::isnan(b.lo[j]) && !std::isnan(b.hi[j]) && b.lo[j] < b.hi[j], where,
                   "box dimension " + std::to_string(j) + ": need lo < hi (not NaN)");
}
}  // namespace detail

/// The intersection of two boxes of one dimension.  Throws
/// std::invalid_argument("lensing::sbi::intersect: ...") when it is empty.
inline Box intersect(Box const& a, Box const& b) {
  char const* where = "lensing::sbi::intersect";
  detail::check_box(a, where);
  detail::check_box(b, where);
  check_argument(a.lo.size() == b.lo.size(), where, "the boxes have different dimensions");
  Box out;
  for (std::size_t j = 0; j < a.lo.size(); ++j) {
    out.lo.push_back(std::max(a.lo[j], b.lo[j]));
    out.hi.push_back(std::min(a.hi[j], b.hi[j]));
    check_argument(out.lo[j] < out.hi[j], where, "the boxes do not overlap in dimension " + std::to_string(j));
  }
  return out;
}

/// The bounding box of the highest-probability region holding 1 − ε of n
/// draws: the ⌊ε n⌋ draws of lowest log q are dropped (ties at the threshold
/// kept), the box is the per-dimension minimum and maximum of the rest.
/// draws (n, d) row-major, log_q (n).  ε = 1e-4 (TSNPE's choice) needs n
/// well above 10^4 for the threshold to be more than the lowest draw.
/// Throws std::invalid_argument("lensing::sbi::hpr_box: ...") for
/// inconsistent sizes, ε outside [0, 1), or non-finite values.
inline Box hpr_box(std::vector<double> const& draws, std::vector<double> const& log_q, int d, double epsilon) {
  char const* where = "lensing::sbi::hpr_box";
  check_argument(d >= 1 && d <= mdn_full_max_dimension, where, "d must be 1 to 16");
  std::size_t const n = log_q.size();
  check_argument(n >= 1 && draws.size() == n * std::size_t(d), where, "draws must hold n x d values, log_q n >= 1");
  check_argument(epsilon >= 0 && epsilon < 1, where, "epsilon must be in [0, 1)");
  for (double v : log_q)
    check_argument(!std::isnan(v), where, "log_q has NaN values");
  for (double v : draws)
    check_argument(std::isfinite(v), where, "draws must be finite");
  std::size_t const drop = std::size_t(std::floor(epsilon * double(n)));
  double threshold = -HUGE_VAL;
  if (drop > 0) {
    std::vector<double> s(log_q);
    std::nth_element(s.begin(), s.begin() + std::ptrdiff_t(drop), s.end());
    threshold = s[drop];
  }
  Box b;
  b.lo.assign(std::size_t(d), HUGE_VAL);
  b.hi.assign(std::size_t(d), -HUGE_VAL);
  for (std::size_t i = 0; i < n; ++i) {
    if (log_q[i] < threshold) continue;
    for (std::size_t j = 0; j < std::size_t(d); ++j) {
      b.lo[j] = std::min(b.lo[j], draws[i * std::size_t(d) + j]);
      b.hi[j] = std::max(b.hi[j], draws[i * std::size_t(d) + j]);
    }
  }
  for (std::size_t j = 0; j < std::size_t(d); ++j)
    if (!(b.lo[j] < b.hi[j])) {  // one kept draw, or all equal: a sliver around it
      double const h = 1e-12 * std::max(1.0, std::fabs(b.lo[j]));
      b.lo[j] -= h;
      b.hi[j] += h;
    }
  return b;
}

/// Draws of a mixture over standardised parameters (z = (θ − mean) / sd)
/// restricted to a box in physical units, by rejection.
struct BoxedDraws {
  std::vector<double> theta;  ///< (n, d) physical units
  std::vector<double> log_q;  ///< (n) log density of the mixture at the draw (standardised units)
  double acceptance = 1;      ///< accepted / proposed
};

/// n draws of `mix` (standardised) mapped to θ = mean + sd z and kept when θ
/// lies in `box`, from the host stream `rng`.  Throws std::runtime_error
/// ("lensing::sbi::sample_in_box: ...") when fewer than n are accepted in
/// max_proposals proposals (the box holds almost none of the mixture).
template <class RngT>
BoxedDraws sample_in_box(GaussianMixture const& mix, std::vector<double> const& mean, std::vector<double> const& sd,
                         Box const& box, long n, RngT& rng, long max_proposals = 0) {
  char const* where = "lensing::sbi::sample_in_box";
  check_count(n, 1, where, "n");
  detail::check_box(box, where);
  int const d = mix.d;
  check_argument(box.dimension() == d && long(mean.size()) == d && long(sd.size()) == d, where,
                 "box, mean and sd must have the mixture's dimension " + std::to_string(d));
  if (max_proposals <= 0) max_proposals = 1000 * n;
  BoxedDraws out;
  out.theta.reserve(std::size_t(n * d));
  out.log_q.reserve(std::size_t(n));
  double z[mdn_full_max_dimension], t[mdn_full_max_dimension];
  long proposed = 0;
  while (long(out.log_q.size()) < n) {
    if (proposed >= max_proposals)
      throw std::runtime_error(std::string(where) + ": " + std::to_string(out.log_q.size()) + " of " +
                               std::to_string(n) + " draws accepted in " + std::to_string(proposed) +
                               " proposals: the box holds almost none of the posterior");
    ++proposed;
    mix.sample(rng, z);
    for (int j = 0; j < d; ++j)
      t[j] = mean[std::size_t(j)] + sd[std::size_t(j)] * z[j];
    if (!box.contains(t)) continue;
    out.theta.insert(out.theta.end(), t, t + d);
    out.log_q.push_back(mix.log_prob(z));
  }
  out.acceptance = double(n) / double(proposed);
  return out;
}

/// The prior p restricted to [lo, hi] (intersected with its support), as a
/// prior of the same family: uniform, log-uniform, normal and truncated
/// normal (a truncated normal), half-normal (a truncated normal on [0, ∞)),
/// fixed (itself, when its value lies in [lo, hi]).  Throws
/// std::invalid_argument("lensing::sbi::truncate_prior: ...") for an empty
/// intersection or another family (no closed form here).
template <class Scalar>
Prior<Scalar> truncate_prior(Prior<Scalar> const& p, double lo, double hi) {
  char const* where = "lensing::sbi::truncate_prior";
  check_argument(!std::isnan(lo) && !std::isnan(hi) && lo < hi, where, "need lo < hi (not NaN)");
  double const a = std::max(lo, p.lo), b = std::min(hi, p.hi);
  if (p.kind == PriorKind::fixed) {
    check_argument(p.p0 >= lo && p.p0 <= hi, where, "the fixed value lies outside [lo, hi]");
    return p;
  }
  check_argument(a < b, where,
                 "[" + std::to_string(lo) + ", " + std::to_string(hi) + "] does not meet the prior's support");
  switch (p.kind) {
    case PriorKind::uniform:
      return Prior<Scalar>::uniform(a, b);
    case PriorKind::log_uniform:
      return Prior<Scalar>::log_uniform(a, b);
    case PriorKind::normal:
    case PriorKind::truncated_normal:
      return Prior<Scalar>::truncated_normal(p.p0, p.p1, a, b);
    case PriorKind::half_normal:
      return Prior<Scalar>::truncated_normal(0.0, p.p1, std::max(a, 0.0), b);
    default:
      throw_invalid_argument(where,
                             "only uniform, log-uniform, normal, truncated-normal, half-normal and fixed priors can be "
                             "truncated");
  }
}

/// The support of the named parameters' priors as a box.  Throws
/// std::invalid_argument for an unknown or tied name.
template <class Scalar, class MemorySpace>
Box prior_support(ParameterTable<Scalar, MemorySpace> const& table, std::vector<std::string> const& names) {
  Box b;
  for (auto const& name : names) {
    auto const& p = table.prior(table.find(name));
    b.lo.push_back(p.lo);
    b.hi.push_back(p.hi);
  }
  return b;
}

/// The table with the priors of `names` (independent parameters) truncated
/// to the box (dimension j for names[j]): same names, column order and ties,
/// the other priors unchanged.  Draws of the result are draws of the
/// original prior conditioned on the box (the parameters are independent
/// a priori).  Throws std::invalid_argument for an unknown or tied name or a
/// box that misses a prior's support.
template <class Scalar, class MemorySpace>
ParameterTable<Scalar, MemorySpace> truncate_table(ParameterTable<Scalar, MemorySpace> const& table,
                                                   std::vector<std::string> const& names, Box const& box) {
  char const* where = "lensing::sbi::truncate_table";
  detail::check_box(box, where);
  check_argument(std::size_t(box.dimension()) == names.size(), where, "the box must have one dimension per name");
  std::vector<int> which(std::size_t(table.size()), -1);
  for (std::size_t j = 0; j < names.size(); ++j) {
    int const k = table.find(names[j]);
    check_argument(!table.is_tied(k), where, "'" + names[j] + "' is tied: truncate its source instead");
    which[std::size_t(k)] = int(j);
  }
  using P = Prior<Scalar>;
  ParameterTable<Scalar, MemorySpace> out;
  for (int k = 0; k < table.size(); ++k) {
    std::string const& name = table.names()[std::size_t(k)];
    int const j = which[std::size_t(k)];
    if (table.is_tied(k))
      out.add(name, P::fixed(0));  // tied in place below
    else if (j >= 0)
      out.add(name, truncate_prior(table.prior(k), box.lo[std::size_t(j)], box.hi[std::size_t(j)]));
    else
      out.add(name, table.prior(k));
  }
  for (int k = 0; k < table.size(); ++k)
    if (table.is_tied(k)) {
      auto const& t = table.tie_of(k);
      out.tie(table.names()[std::size_t(k)], table.names()[std::size_t(t.source)], t.scale, t.offset);
    }
  return out;
}

/// Re-express the mixture head of an NPE from the standardisation
/// (old_mean, old_sd) to (new_mean, new_sd) without changing the density it
/// represents in physical units.  `params` are the parameters of the
/// network's final Dense layer (nn/dense.hpp: W (out × in_features)
/// row-major, then b (out)), out = mdn_full_outputs(k, d), packed as
/// npe.hpp describes.  Each output is an affine function of the layer's
/// input, so an affine map of the outputs is a map of W's rows and b:
/// with z = (θ − m) / s and z' = (θ − m') / s',
///   μ'_i = (s_i μ_i + m_i − m'_i) / s'_i,
///   L'_ij = D_i L_ij with D_i = s'_i / s_i (Λ' = D Λ D):
///   a'_ii = a_ii + log D_i, a'_ij = D_i a_ij (j < i);
/// the logits are unchanged.  The log-density in z' is the one in z plus
/// Σ log D_i, as the change of variables requires.
template <class Scalar, class MemorySpace>
void restandardise_mixture_head(View1D<Scalar, MemorySpace> const& params, long in_features, int k, int d,
                                std::vector<double> const& old_mean, std::vector<double> const& old_sd,
                                std::vector<double> const& new_mean, std::vector<double> const& new_sd) {
  char const* where = "lensing::sbi::restandardise_mixture_head";
  check_count(k, 1, where, "components");
  check_argument(d >= 1 && d <= mdn_full_max_dimension, where, "d must be 1 to 16");
  check_count(in_features, 1, where, "in_features");
  long const out = mdn_full_outputs(k, d), gs = nn::gaussian_full_outputs(d);
  check_argument(long(params.extent(0)) == out * in_features + out, where,
                 "params must hold W (" + std::to_string(out) + " x " + std::to_string(in_features) + ") and b (" +
                     std::to_string(out) + "), has " + std::to_string(params.extent(0)) + " values");
  for (auto const* v : {&old_mean, &old_sd, &new_mean, &new_sd})
    check_argument(long(v->size()) == d, where, "means and sds must have d values");
  for (int i = 0; i < d; ++i)
    check_argument(old_sd[std::size_t(i)] > 0 && new_sd[std::size_t(i)] > 0 &&
                       std::isfinite(old_sd[std::size_t(i)] + new_sd[std::size_t(i)] + old_mean[std::size_t(i)] +
                                     new_mean[std::size_t(i)]),
                   where, "means must be finite, sds finite and > 0");
  std::vector<double> scale(std::size_t(out), 1.0), shift(std::size_t(out), 0.0);
  for (int c = 0; c < k; ++c) {
    long const base = k + c * gs;
    for (int i = 0; i < d; ++i) {
      double const s = old_sd[std::size_t(i)], s2 = new_sd[std::size_t(i)];
      scale[std::size_t(base + i)] = s / s2;
      shift[std::size_t(base + i)] = (old_mean[std::size_t(i)] - new_mean[std::size_t(i)]) / s2;
      double const di = s2 / s;
      for (int j = 0; j <= i; ++j) {
        std::size_t const o = std::size_t(base + d + nn::tril_index(i, j));
        if (i == j)
          shift[o] = std::log(di);
        else
          scale[o] = di;
      }
    }
  }
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), params);
  for (long o = 0; o < out; ++o) {
    double const sc = scale[std::size_t(o)];
    for (long i = 0; i < in_features; ++i)
      h(o * in_features + i) = Scalar(sc * double(h(o * in_features + i)));
    Scalar& b = h(out * in_features + o);
    b = Scalar(sc * double(b) + shift[std::size_t(o)]);
  }
  Kokkos::deep_copy(params, h);
}

/// One round's simulations, returned by the user's simulator: n images of
/// shape (C, H, W), row-major (n, C, H, W) in the network's scalar type and
/// scaling, and their parameters θ (n, d) in physical units, drawn from the
/// prior truncated to the box the simulator was given.
template <class Scalar>
struct SimulationSet {
  long n = 0;
  std::array<int, 3> shape{{1, 1, 1}};
  std::vector<Scalar> images;
  std::vector<double> theta;
};

/// The final Dense layer of an NPE network, for restandardise_mixture_head:
/// its parameter view (a view into the network's parameters) and input
/// features.  Empty params: the labels keep the NeuralPosterior's
/// standardisation every round.
template <class Scalar, class MemorySpace>
struct MixtureHead {
  View1D<Scalar, MemorySpace> params;
  long in_features = 0;
};

/// Options of sequential_npe().
struct SequentialOptions {
  int rounds = 3;                    ///< R
  long simulations = 4096;           ///< new simulations per round
  double epsilon = 1e-4;             ///< the HPR drops this fraction of the posterior's draws
  long box_draws = 100000;           ///< posterior draws that define the box
  long report_draws = 4000;          ///< posterior draws per round for the reported mean, sd and draws
  bool reuse = true;                 ///< train on the earlier rounds' simulations inside the new box too
  int batch = 64;                    ///< training batch
  long epochs = 5;                   ///< fine-tuning epochs per round (cosine schedule from lr to lr / 20)
  double lr = 3e-4;                  ///< Adam's rate, a fresh optimizer per round
  double clip_grad_norm = 5.0;       ///< 0: off
  double validation_fraction = 0.1;  ///< held-out share of each round's training set (early stopping)
  int patience = 2;                  ///< early stopping (best epoch restored); 0: off
  std::uint64_t seed = 0;            ///< posterior draws (one host stream per use) and batch order
  std::ostream* log = nullptr;       ///< nn::fit's epoch lines and one line per round; nullptr: silent
};

/// What one round did; round 0 is the starting network (no simulations,
/// box = the support).
struct RoundResult {
  int round = 0;
  Box box;                                   ///< B_r: the truncation of this round's simulations
  double box_acceptance = 1;                 ///< share of the previous posterior's draws inside B_{r−1}
  long simulated = 0;                        ///< new simulations
  long trained_on = 0;                       ///< training + validation set (new + reused)
  std::vector<double> mean, sd;              ///< posterior q_r(θ | x_o) on B_r: mean and sd of report_draws draws
  std::vector<double> draws;                 ///< (report_draws, d) those draws, physical units
  std::vector<double> label_mean, label_sd;  ///< the standardisation the network uses after the round
  double simulate_seconds = 0, train_seconds = 0;
  nn::FitHistory history;
};

namespace detail {
inline void draw_moments(std::vector<double> const& x, int d, std::vector<double>& m, std::vector<double>& s) {
  std::size_t const n = x.size() / std::size_t(d);
  m.assign(std::size_t(d), 0.0);
  s.assign(std::size_t(d), 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < std::size_t(d); ++j)
      m[j] += x[i * std::size_t(d) + j] / double(n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < std::size_t(d); ++j) {
      double const e = x[i * std::size_t(d) + j] - m[j];
      s[j] += e * e / double(n > 1 ? n - 1 : 1);
    }
  for (auto& v : s)
    v = std::sqrt(v);
}
}  // namespace detail

/// TSNPE for one observation x_o (a (1, C, H, W) tensor the network takes):
/// R rounds as the file comment describes, fine-tuning `npe`'s network in
/// place (and re-standardising `npe` and the head when head.params is set).
/// `simulate(box, n, round)` returns a SimulationSet of n new simulations
/// with θ from the prior truncated to `box` (round = 1..R: use it to pick
/// fresh random streams).  `support` is the prior's support over the d
/// parameters (prior_support()).  Returns R + 1 RoundResults (round 0: the
/// starting posterior on the support).
///
/// Throws std::invalid_argument("lensing::sbi::sequential_npe: ...") for bad
/// options or a simulator whose set has the wrong size or θ outside the
/// box; std::runtime_error from sample_in_box or nn::fit.
template <class ExecutionSpace, class Net, class X, class Simulate>
std::vector<RoundResult> sequential_npe(ExecutionSpace const& space, NeuralPosterior<Net>& npe, X const& x_obs,
                                        Box const& support,
                                        MixtureHead<typename Net::scalar_type, typename Net::memory_space> const& head,
                                        Simulate&& simulate, SequentialOptions const& o) {
  using Scalar = typename Net::scalar_type;
  using Mem = typename Net::memory_space;
  using Clock = std::chrono::steady_clock;
  char const* where = "lensing::sbi::sequential_npe";
  int const d = npe.dimension(), k = npe.components();
  detail::check_box(support, where);
  check_argument(support.dimension() == d, where, "the support must have the posterior's dimension");
  check_count(o.rounds, 0, where, "rounds");
  check_count(o.simulations, 2, where, "simulations");
  check_count(o.box_draws, 1, where, "box_draws");
  check_count(o.report_draws, 2, where, "report_draws");
  check_count(o.batch, 1, where, "batch");
  check_count(o.epochs, 1, where, "epochs");
  check_argument(o.epsilon >= 0 && o.epsilon < 1, where, "epsilon must be in [0, 1)");
  check_argument(o.validation_fraction > 0 && o.validation_fraction < 0.5, where,
                 "validation_fraction must be in (0, 0.5)");
  check_argument(long(x_obs.extent(0)) == 1, where, "x_obs must hold one observation");
  Net& net = npe.network();
  auto const since = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  auto const mean_of = [&] {
    std::vector<double> m(static_cast<std::size_t>(d)), s(static_cast<std::size_t>(d));
    for (int j = 0; j < d; ++j)
      m[std::size_t(j)] = npe.mean(j), s[std::size_t(j)] = npe.sd(j);
    return std::make_pair(m, s);
  };
  auto const posterior = [&](Box const& box, std::uint64_t stream, long n) {
    net.set_training(false);
    auto const mix = npe.mixtures(space, x_obs).at(0);
    auto const ms = mean_of();
    Rng rng(o.seed, random::purpose_host, stream, 0x5e9);
    return sample_in_box(mix, ms.first, ms.second, box, n, rng);
  };

  std::vector<RoundResult> out;
  Box current = support;
  {
    RoundResult r0;
    r0.box = support;
    auto const dr = posterior(support, 0, o.report_draws);
    r0.box_acceptance = dr.acceptance;
    r0.draws = dr.theta;
    detail::draw_moments(r0.draws, d, r0.mean, r0.sd);
    auto const ms = mean_of();
    r0.label_mean = ms.first, r0.label_sd = ms.second;
    out.push_back(std::move(r0));
  }
  std::vector<Scalar> pool_x;
  std::vector<double> pool_t;
  std::array<int, 3> shape{{0, 0, 0}};
  long per = 0;
  for (int round = 1; round <= o.rounds; ++round) {
    RoundResult res;
    res.round = round;
    // 1-2: the box of the current posterior's HPR.
    auto const dr = posterior(current, 2 * std::uint64_t(round) - 1, o.box_draws);
    res.box_acceptance = dr.acceptance;
    res.box = intersect(hpr_box(dr.theta, dr.log_q, d, o.epsilon), current);
    // 3: simulations from the prior truncated to the box.
    auto const t_sim = Clock::now();
    SimulationSet<Scalar> sims = simulate(res.box, o.simulations, round);
    res.simulate_seconds = since(t_sim);
    long const ps = long(sims.shape[0]) * sims.shape[1] * sims.shape[2];
    check_argument(sims.n == o.simulations && ps >= 1 && long(sims.images.size()) == sims.n * ps &&
                       long(sims.theta.size()) == sims.n * d,
                   where, "the simulator must return n images of its shape and n x d parameters");
    if (per == 0) {
      shape = sims.shape;
      per = ps;
    }
    check_argument(sims.shape == shape, where, "the simulator changed the image shape between rounds");
    for (long i = 0; i < sims.n; ++i)
      for (int j = 0; j < d; ++j) {
        double const t = sims.theta[std::size_t(i * d + j)];
        double const tol = 1e-5 * std::max(1.0, std::fabs(t));  // the simulator's labels may be rounded to float
        check_argument(t >= res.box.lo[std::size_t(j)] - tol && t <= res.box.hi[std::size_t(j)] + tol, where,
                       "simulation " + std::to_string(i) + " of round " + std::to_string(round) + ": parameter " +
                           std::to_string(j) + " = " + std::to_string(t) + " lies outside the box");
      }
    res.simulated = sims.n;
    // 4: the training set: earlier simulations inside the box, then the new ones.
    std::vector<Scalar> xs;
    std::vector<double> ts;
    if (o.reuse) {
      long const np = long(pool_t.size()) / d;
      for (long i = 0; i < np; ++i)
        if (res.box.contains(pool_t.data() + i * d)) {
          xs.insert(xs.end(), pool_x.begin() + i * per, pool_x.begin() + (i + 1) * per);
          ts.insert(ts.end(), pool_t.begin() + i * d, pool_t.begin() + (i + 1) * d);
        }
    }
    xs.insert(xs.end(), sims.images.begin(), sims.images.end());
    ts.insert(ts.end(), sims.theta.begin(), sims.theta.end());
    if (o.reuse) {
      pool_x.insert(pool_x.end(), sims.images.begin(), sims.images.end());
      pool_t.insert(pool_t.end(), sims.theta.begin(), sims.theta.end());
    }
    long const n = long(ts.size()) / d;
    res.trained_on = n;
    // Re-standardise to this training set (and the head with it).
    if (head.params.extent(0) > 0) {
      std::vector<double> m, s;
      detail::draw_moments(ts, d, m, s);
      auto const old = mean_of();
      restandardise_mixture_head(head.params, head.in_features, k, d, old.first, old.second, m, s);
      npe = NeuralPosterior<Net>(net, k, m, s);
    }
    auto const ms = mean_of();
    res.label_mean = ms.first, res.label_sd = ms.second;
    // Every m-th sample held out.
    long const every = std::max(2L, long(std::lround(1.0 / o.validation_fraction)));
    long const nval = n / every, ntr = n - nval;
    int const vb = int(std::min<long>(o.batch, std::max(1L, nval)));
    check_argument(ntr >= o.batch && nval >= 1, where,
                   "round " + std::to_string(round) + ": " + std::to_string(n) +
                       " simulations are too few for the batch and the validation share");
    View4D<Scalar, Kokkos::HostSpace> xtr("lensing::sbi::tsnpe::x", ntr, shape[0], shape[1], shape[2]),
        xva("lensing::sbi::tsnpe::xv", nval, shape[0], shape[1], shape[2]);
    View2D<Scalar, Kokkos::HostSpace> ytr("lensing::sbi::tsnpe::y", ntr, d), yva("lensing::sbi::tsnpe::yv", nval, d);
    long itr = 0, iva = 0;
    for (long i = 0; i < n; ++i) {
      bool const val = (i % every) == every - 1 && iva < nval;
      Scalar* xd = val ? xva.data() + iva * per : xtr.data() + itr * per;
      std::copy(xs.begin() + i * per, xs.begin() + (i + 1) * per, xd);
      for (int j = 0; j < d; ++j) {
        double const z = (ts[std::size_t(i * d + j)] - ms.first[std::size_t(j)]) / ms.second[std::size_t(j)];
        if (val)
          yva(iva, j) = Scalar(z);
        else
          ytr(itr, j) = Scalar(z);
      }
      (val ? iva : itr) += 1;
    }
    simulate::ArraySource<Scalar, Mem> train(xtr, ytr, {o.batch, true, o.seed + std::uint64_t(round)});
    simulate::ArraySource<Scalar, Mem> valsrc(xva, yva, {vb, false, 0});
    nn::Adam<Scalar, Mem> opt(net.num_params(), o.lr);
    nn::FitOptions fo;
    fo.epochs = o.epochs;
    fo.patience = o.patience;
    fo.restore_best = true;
    fo.clip_grad_norm = o.clip_grad_norm;
    fo.log_every = 0;
    fo.log = o.log;
    fo.schedule = nn::LRSchedule::cosine(o.lr, o.epochs, 0, o.lr * 0.05);
    auto const t_fit = Clock::now();
    res.history = nn::fit(space, net, opt, MDNFullLoss(k), train, valsrc, fo);
    res.train_seconds = since(t_fit);
    // The round's posterior on its box.
    auto const rep = posterior(res.box, 2 * std::uint64_t(round), o.report_draws);
    res.draws = rep.theta;
    detail::draw_moments(res.draws, d, res.mean, res.sd);
    if (o.log != nullptr) {
      *o.log << "tsnpe round " << round << ": " << res.simulated << " new simulations, " << res.trained_on
             << " in the training set; box share " << res.box_acceptance << "; sd";
      for (double v : res.sd)
        *o.log << " " << v;
      *o.log << "; " << res.simulate_seconds << " s simulating, " << res.train_seconds << " s training\n";
    }
    current = res.box;
    out.push_back(std::move(res));
  }
  net.set_training(false);
  return out;
}

}  // namespace sbi
}  // namespace lensing

#endif  // LENSING_SBI_SEQUENTIAL_HPP
