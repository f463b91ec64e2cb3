#ifndef LENSING_FIT_BATCH_HPP
#define LENSING_FIT_BATCH_HPP

/// \file
/// The fit workflow (fit/workflow.hpp) on many lenses, one posterior per
/// lens (a survey's candidates, or the simulations of a calibration run):
///
///   lensing::BatchFitOptions o;                       // starts, NUTS and/or VI settings
///   auto fits = lensing::fit_batch(space, [&](int i) { return make_posterior(i); }, n, o,
///                                  [&](lensing::LensFitResult const& r, auto const& post) { save(r, post); });
///   for (auto const& r : fits) if (!r.ok) std::cerr << r.error << "\n";   // a failed lens, not an abort
///
/// Lens i runs exactly what fit_one_lens(space, posterior_i, i, options)
/// runs: seed s_i = batch_seed(options.seed, i) (sample/batch.hpp),
///   map   = find_map(posterior_i, posterior_i.draw_prior_starts(starts, s_i))
///           (MapOptions::scales = the posterior's start_scales() when empty),
///   draws = sample_from_map(posterior_i, map, sampler with seed s_i)  (if options.nuts),
///   vi[k] = fit_vi_from_map(posterior_i, map, variational[k] with seed batch_seed(s_i, k)),
/// and check_convergence of the draws by free-parameter name.  So a lens's
/// result does not depend on which other lenses are in the batch, nor on
/// where the batch starts (first_index: resume an interrupted run).  Lenses run
/// one after another on the calling thread (each posterior's likelihood runs
/// its kernels on `space`, i.e. all threads); the posterior of lens i exists
/// only while it is fitted (a factory builds it), and the callback sees it
/// then, to write named draws or summaries (a checkpoint per lens).
///
/// Errors: bad options (no start, neither NUTS nor VI, bad sampler settings,
/// num_lenses < 0) throw std::invalid_argument before anything runs.  A lens
/// whose factory or fit throws (e.g. no start with a finite density) is
/// reported in its LensFitResult (ok = false, error = "lensing::fit_batch:
/// lens i: ...") and the batch goes on; its callback is still called.

#include <lensing/core/errors.hpp>
#include <lensing/fit/posterior.hpp>
#include <lensing/fit/workflow.hpp>
#include <lensing/sample/batch.hpp>
#include <lensing/sample/sampler.hpp>
#include <lensing/sample/variational.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lensing {

/// Settings of fit_batch() and fit_one_lens().
struct BatchFitOptions {
  std::uint64_t seed = 1;  ///< lens i uses batch_seed(seed, i) for its starts, chains and VI
  int starts = 8;          ///< L-BFGS starts drawn from the prior per lens
  MapOptions map;          ///< scales empty: the posterior's start_scales()
  bool nuts = true;        ///< run sample_from_map()
  SamplerOptions sampler;  ///< seed (and progress) overridden per lens
  FromMapOptions from;
  /// fit_vi_from_map() runs, one result each (e.g. mean-field and full-rank);
  /// seed overridden per lens.
  std::vector<VariationalOptions> variational;
  ConvergenceThresholds thresholds;
  bool progress = false;  ///< one line per lens to stderr
};

/// One lens of fit_batch().
struct LensFitResult {
  int index = 0;           ///< the lens index passed to the factory
  std::uint64_t seed = 0;  ///< batch_seed(options.seed, index)
  bool ok = false;         ///< the fit ran to the end (no exception)
  std::string error;       ///< why not ("lensing::fit_batch: lens i: ...")
  MapResult map;
  bool has_draws = false;
  SampleResult draws;                 ///< NUTS from the MAP (unconstrained q)
  ConvergenceReport convergence;      ///< of draws
  PosteriorSummary summary;           ///< by name (Posterior densities only; else empty)
  std::vector<VariationalResult> vi;  ///< one per BatchFitOptions::variational
  double seconds = 0;                 ///< the whole fit of this lens
  /// ok, and the NUTS run (if any) passed check_convergence.
  bool converged() const { return ok && (!has_draws || convergence.ok); }
};

namespace detail {
template <class T>
struct is_posterior : std::false_type {};
template <class L, class E>
struct is_posterior<Posterior<L, E>> : std::true_type {};

inline void check_batch_options(BatchFitOptions const& o, char const* where) {
  check_count(o.starts, 1, where, "starts");
  check_argument(o.nuts || !o.variational.empty(), where,
                 "nothing to run: set nuts = true or give at least one variational option set");
  if (o.nuts) check_sampler_options(o.sampler);
}
}  // namespace detail

/// The fit of one lens as fit_batch() runs lens `index` (see the file
/// comment).  Density: a Posterior, or any LogDensity with
/// draw_prior_starts(n, seed) and start_scales().  Exceptions of the fit
/// are caught into the result (ok = false); bad options throw.
template <class ExecutionSpace, class Density>
LensFitResult fit_one_lens(ExecutionSpace const& space, Density const& density, int index,
                           BatchFitOptions const& options) {
  constexpr char const* where = "lensing::fit_batch";
  detail::check_batch_options(options, where);
  LensFitResult r;
  r.index = index;
  r.seed = batch_seed(options.seed, index);
  auto const t0 = std::chrono::steady_clock::now();
  try {
    MapOptions mo = options.map;
    if (mo.scales.empty()) mo.scales = density.start_scales();
    r.map = find_map(space, density, density.draw_prior_starts(options.starts, r.seed), mo);
    if (options.nuts) {
      SamplerOptions so = options.sampler;
      so.seed = r.seed;
      r.draws = sample_from_map(space, density, r.map, so, options.from);
      r.has_draws = true;
      std::vector<std::string> names;
      if constexpr (detail::is_posterior<Density>::value) {
        names = density.free_names();
        r.summary = summarize(density, r.draws);
      }
      r.convergence = check_convergence(r.draws, options.thresholds, names);
    }
    for (std::size_t k = 0; k < options.variational.size(); ++k) {
      VariationalOptions vo = options.variational[k];
      vo.seed = batch_seed(r.seed, int(k));
      vo.progress = false;
      r.vi.push_back(fit_vi_from_map(space, density, r.map, vo));
    }
    r.ok = true;
  } catch (std::exception const& e) {
    r.ok = false;
    r.error = std::string(where) + ": lens " + std::to_string(index) + ": " + e.what();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

/// Fit lenses first_index, ..., first_index + num_lenses - 1, lens i on the
/// posterior make_posterior(i) (see the file comment); on_done(result,
/// posterior) after each lens (a failed factory: on_done is not called for
/// want of a posterior, the result still says why).  Returns the results in
/// lens order.
template <class ExecutionSpace, class Factory, class OnDone>
auto fit_batch(ExecutionSpace const& space, Factory&& make_posterior, int num_lenses, BatchFitOptions const& options,
               OnDone&& on_done, int first_index = 0) -> std::vector<LensFitResult> {
  constexpr char const* where = "lensing::fit_batch";
  detail::check_batch_options(options, where);
  check_count(num_lenses, 0, where, "num_lenses");
  check_count(first_index, 0, where, "first_index");
  std::vector<LensFitResult> out;
  out.reserve(std::size_t(num_lenses));
  for (int i = first_index; i < first_index + num_lenses; ++i) {
    LensFitResult r;
    try {
      auto&& density = make_posterior(i);
      r = fit_one_lens(space, density, i, options);
      on_done(static_cast<LensFitResult const&>(r), density);
    } catch (std::exception const& e) {
      if (r.error.empty()) {
        r.index = i;
        r.seed = batch_seed(options.seed, i);
        r.ok = false;
        r.error = std::string(where) + ": lens " + std::to_string(i) + ": " + e.what();
      }
    }
    if (options.progress)
      std::fprintf(stderr, "fit_batch: lens %d: %s (%.1f s)%s%s\n", i,
                   !r.ok ? "FAILED" : (r.converged() ? "converged" : "NOT converged"), r.seconds, r.ok ? "" : ": ",
                   r.ok ? "" : r.error.c_str());
    out.push_back(std::move(r));
  }
  return out;
}

/// fit_batch() without a callback.
template <class ExecutionSpace, class Factory>
std::vector<LensFitResult> fit_batch(ExecutionSpace const& space, Factory&& make_posterior, int num_lenses,
                                     BatchFitOptions const& options) {
  return fit_batch(space, std::forward<Factory>(make_posterior), num_lenses, options,
                   [](LensFitResult const&, auto const&) {});
}

/// fit_batch() over given posteriors: lens i is posteriors[i].
template <class ExecutionSpace, class Density>
std::vector<LensFitResult> fit_batch(ExecutionSpace const& space, std::vector<Density> const& posteriors,
                                     BatchFitOptions const& options) {
  return fit_batch(
      space, [&](int i) -> Density const& { return posteriors[std::size_t(i)]; }, int(posteriors.size()), options);
}

}  // namespace lensing

#endif  // LENSING_FIT_BATCH_HPP
