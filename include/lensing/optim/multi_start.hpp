#ifndef LENSING_OPTIM_MULTI_START_HPP
#define LENSING_OPTIM_MULTI_START_HPP

/// \file
/// Multi-start optimisation: run an optimizer from given initial points, or
/// from `num_starts` points x0_s = centre + U(-radius, radius)^d (random
/// stream (seed, s) of core/random.hpp, so the starts do not depend on
/// anything else), and keep
/// every result and the best one (largest value for maximisers such as
/// adam/lbfgs of a LogDensity, smallest for levenberg_marquardt).
///
///   auto ms = lensing::multi_start(centre, 2.0, 16, 7, [&](std::vector<double> const& x0) {
///     return lensing::lbfgs(space, density, x0);
///   });

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/optim/result.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <utility>
#include <vector>

namespace lensing {

/// Direction in which a result is better.
enum class OptimizeSense { maximize, minimize };

/// All runs of a multi-start and the index of the best one.
struct MultiStartResult {
  std::vector<OptimizeResult> runs;
  int best = -1;  ///< index into runs (-1: no run gave a finite value)
  OptimizeResult const& best_run() const { return runs.at(std::size_t(best)); }
};

/// Run `optimize(x0)` (returning OptimizeResult) from each of the given
/// `starts` (e.g. draws from a prior), in order.  Runs whose optimizer throws
/// std::invalid_argument (e.g. a start where the density is not finite) are
/// recorded with converged = false and the message.  Throws
/// std::invalid_argument for no start, starts of different lengths or
/// non-finite values, and std::runtime_error if no run produced a finite value.
template <class Optimize>
MultiStartResult multi_start(std::vector<std::vector<double>> const& starts, Optimize&& optimize,
                             OptimizeSense sense = OptimizeSense::maximize, bool progress = false) {
  constexpr char const* where = "lensing::multi_start";
  check_count(int(starts.size()), 1, where, "number of starts");
  check_count(int(starts[0].size()), 1, where, "start size");
  for (auto const& x0 : starts) {
    check_argument(x0.size() == starts[0].size(), where, "every start must have the same number of values");
    for (double v : x0)
      check_finite(v, where, "start value");
  }
  int const num_starts = int(starts.size());
  MultiStartResult out;
  out.runs.resize(std::size_t(num_starts));
  for (int s = 0; s < num_starts; ++s) {
    try {
      out.runs[s] = optimize(starts[std::size_t(s)]);
    } catch (std::invalid_argument const& e) {
      out.runs[s].x = starts[std::size_t(s)];
      out.runs[s].value = NAN;
      out.runs[s].message = e.what();
    }
    auto const& r = out.runs[s];
    if (std::isfinite(r.value)) {
      bool const better = out.best < 0 || (sense == OptimizeSense::maximize ? r.value > out.runs[out.best].value
                                                                            : r.value < out.runs[out.best].value);
      if (better) out.best = s;
    }
    if (progress)
      std::fprintf(stderr, "%s: start %d/%d value %.10g (%s)\n", where, s + 1, num_starts, r.value, r.message.c_str());
  }
  if (out.best < 0) throw std::runtime_error("lensing::multi_start: no start gave a finite result");
  return out;
}

/// Run `optimize(x0)` (returning OptimizeResult) from num_starts random
/// starts around `centre` (the explicit-starts overload above does the runs).
/// Throws std::invalid_argument for bad arguments and std::runtime_error if
/// no run produced a finite value.
template <class Optimize>
MultiStartResult multi_start(std::vector<double> const& centre, double radius, int num_starts, std::uint64_t seed,
                             Optimize&& optimize, OptimizeSense sense = OptimizeSense::maximize,
                             bool progress = false) {
  constexpr char const* where = "lensing::multi_start";
  check_count(int(centre.size()), 1, where, "centre size");
  for (double v : centre)
    check_finite(v, where, "centre value");
  check_nonnegative(radius, where, "radius");
  check_count(num_starts, 1, where, "num_starts");
  std::vector<std::vector<double>> starts(std::size_t(num_starts), centre);
  for (int s = 0; s < num_starts; ++s) {
    Rng rng(seed, random::purpose_multi_start, std::uint64_t(s));
    for (auto& v : starts[std::size_t(s)])
      v += radius * (2 * rng.uniform() - 1);
  }
  return multi_start(starts, std::forward<Optimize>(optimize), sense, progress);
}

}  // namespace lensing

#endif  // LENSING_OPTIM_MULTI_START_HPP
