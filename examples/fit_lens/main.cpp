// Fit a strong lens: an SIE + external shear lens with an elliptical Sersic
// source and Sersic lens light, seen on 100x100 pixels of 0.05" with
// supersampling 3 and a Gaussian PSF (FWHM 0.1").  The data are simulated
// here in double (the library's Observation render + background noise from
// a seed); the fit is the part a user writes (between the "fit" markers
// below, ~55 lines): a prior table by name with the lens light centred on
// the lens, a float likelihood (double sums), the MAP by screened
// multi-start L-BFGS from prior draws, the supersampling mask chosen at that
// MAP (adaptive supersampling, likelihood/gaussian.hpp) and the MAP refined
// on it with its Laplace covariance, NUTS from the MAP whitened by that
// covariance (metric adapted, diagonal in those units), a convergence verdict, full-rank VI from the MAP, a summary by
// name, CSV, a corner plot and a data / model / residual plot.
//
//   fit_lens [--short] [--seed SEED] [--starts K] [--chains C] [--warmup W] [--draws N] [--out PREFIX]
//
// Checks (printed, "ok" only if all hold): the run converged
// (check_convergence: R-hat <= 1.01, bulk and tail ESS >= 400, no
// divergence, E-BFMI >= 0.3) and the truth's Mahalanobis distance under the
// posterior (mean and covariance of the draws, unconstrained parameters) is
// within the chi^2_d 95 % bound, d the number of free parameters.  --short
// (ctest): 48x48 pixels of 0.1", supersampling 2, 8 starts, 2 chains of
// 150 + 150, 300 VI iterations; there the verdict of check_convergence is
// printed but not required (too few draws for ESS >= 400), the Mahalanobis
// checks are.  Each stage prints a "timing:" line (wall and CPU seconds,
// gradients, ms per gradient) against the targets of issue 15 (MAP < 5 s,
// NUTS 4 x (1000 + 1000) < 60 s, VI < 10 s, wall on 2 cores).
// Threads: OMP_NUM_THREADS.

#include <lensing/core/special.hpp>
#include <lensing/fit/plots.hpp>
#include <lensing/fit/posterior.hpp>
#include <lensing/fit/workflow.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/noise/pixel_noise.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/sources/light_profile.hpp>
#include <lensing/sources/sersic.hpp>

#include <Kokkos_Core.hpp>

#include "../common/chi2.hpp"
#include "../common/cli.hpp"

#include <Eigen/Dense>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

namespace {

struct Options {
  bool short_run = false;
  std::uint64_t seed = 15;
  int starts = 8, chains = 4, warmup = 1000, draws = 1000;
  std::string out = "fit_lens";
  std::string metric = "diagonal";  // NUTS metric after the whitening: laplace (kept), diagonal or dense (adapted)
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: fit_lens [--short] [--seed SEED] [--starts K] [--chains C] [--warmup W] [--draws N] "
               "[--metric M] [--out PREFIX] [--help]\n"
               "  --short       small, fast case for ctest (48x48 pixels of 0.1\", 8 starts, 2 chains x 150+150,\n"
               "                300 VI iterations)\n"
               "  --seed SEED   noise, prior starts and chains, a non-negative integer (default 15)\n"
               "  --starts K    L-BFGS starts drawn from the prior (default 8)\n"
               "  --chains C    NUTS chains (default 4)\n"
               "  --warmup W    warm-up iterations per chain (default 1000)\n"
               "  --draws N     draws per chain (default 1000)\n"
               "  --metric M    NUTS metric in Laplace-whitened units: laplace (kept), diagonal (adapted, default)\n"
               "                or dense (adapted)\n"
               "  --out PREFIX  PREFIX.csv, PREFIX_corner.png, PREFIX_residuals.png (default fit_lens)\n"
               "threads: set OMP_NUM_THREADS.\n");
}

}  // namespace

// Declared in ../common/cli.hpp.
[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "fit_lens: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

namespace {

Options parse(int argc, char** argv) {
  Options o;
  bool set_starts = false, set_chains = false, set_warmup = false, set_draws = false;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    auto value = [&]() -> char const* {
      if (i + 1 >= argc) bad(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (a == "--short") {
      o.short_run = true;
    } else if (a == "--seed") {
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 9000000000000000000L));
    } else if (a == "--starts") {
      o.starts = int(parse_integer(a, value(), 1, 1000)), set_starts = true;
    } else if (a == "--chains") {
      o.chains = int(parse_integer(a, value(), 1, 64)), set_chains = true;
    } else if (a == "--warmup") {
      o.warmup = int(parse_integer(a, value(), 0, 1000000)), set_warmup = true;
    } else if (a == "--draws") {
      o.draws = int(parse_integer(a, value(), 10, 1000000)), set_draws = true;
    } else if (a == "--metric") {
      o.metric = value();
      if (o.metric != "laplace" && o.metric != "diagonal" && o.metric != "dense")
        bad("--metric must be laplace, diagonal or dense, got '" + o.metric + "'");
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty prefix");
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  if (o.short_run) {
    if (!set_starts) o.starts = 8;
    if (!set_chains) o.chains = 2;
    if (!set_warmup) o.warmup = 150;
    if (!set_draws) o.draws = 150;
  }
  return o;
}

using Space = Kokkos::DefaultExecutionSpace;
using Mem = Space::memory_space;
// The simulation in double, the fit in float (per-point terms in float, every
// sum in double: likelihood/gaussian.hpp; measured there on this case: the
// maximum moves by 2e-5 posterior sd); value+gradient ~2.4x cheaper.
template <class T>
using ModelOf = lensing::LensModel<lensing::Composite<lensing::SIE<T>, lensing::ExternalShear<T>>,
                                   lensing::SersicEllipse<T>, lensing::SersicEllipse<T>>;
template <class T>
using PsfOf = lensing::GaussianFilter<T, Mem>;
using S = float;
using Model = ModelOf<S>;
using Psf = PsfOf<S>;
using Likelihood = lensing::GaussianLikelihood<Model, Mem, Psf>;
using P = lensing::Prior<double>;

// The truth, in model order (lensing::model_parameter_names<Model>()).
std::vector<double> truth() {
  return {1.20, 0.08, -0.05, 0.0,  0.0,   0.03, -0.02,  // lens0: SIE theta_E e1 e2 centre; lens1: shear
          0.0,  0.0,                                    // lens1: shear origin (fixed)
          15.0, 0.15, 1.5,   0.10, -0.08, 0.05, 0.08,   // source0: amp R_sersic n_sersic e1 e2 centre
          2.0,  0.80, 1.0,   0.05, 0.03,  0.0,  0.0};   // light0: centre = the lens centre
}

// (x - mean)^T cov^-1 (x - mean), cov d x d row-major.
double mahalanobis2(std::vector<double> const& x, std::vector<double> const& mean, std::vector<double> const& cov) {
  int const d = int(x.size());
  Eigen::MatrixXd C(d, d);
  Eigen::VectorXd r(d);
  for (int i = 0; i < d; ++i) {
    r(i) = x[i] - mean[i];
    for (int j = 0; j < d; ++j)
      C(i, j) = cov[std::size_t(i) * d + j];
  }
  return r.dot(C.ldlt().solve(r));
}

// Wall and process CPU time (all threads) since construction.
struct StageClock {
  std::chrono::steady_clock::time_point wall0 = std::chrono::steady_clock::now();
  std::clock_t cpu0 = std::clock();
  double wall() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count(); }
  double cpu() const { return double(std::clock() - cpu0) / CLOCKS_PER_SEC; }
};

void timing(char const* stage, double wall, double cpu, long long gradients, double target, bool applies,
            std::string const& note) {
  std::printf(
      "timing: %-4s %7.2f s wall, %7.2f s CPU, %7lld gradients, %.3f ms/gradient wall, %.3f CPU; target < %g s "
      "wall: %s%s\n",
      stage, wall, cpu, gradients, 1e3 * wall / double(gradients), 1e3 * cpu / double(gradients), target,
      applies ? (wall < target ? "met" : "NOT met") : "n/a (not the issue's case)", note.c_str());
}

int run(Options const& o) {
  Space space;
  // ---- the observation and simulated data (not part of the fit) ----
  int const n = o.short_run ? 48 : 100, k = o.short_run ? 2 : 3;
  double const pixel = o.short_run ? 0.1 : 0.05, fwhm = 0.1, sigma = 0.05;
  auto const t = truth();
  lensing::View2D<S, Mem> data("data", n, n), noise_map("noise", n, n), mask("mask", n, n), model("model", n, n);
  {
    lensing::Observation<double, Mem, PsfOf<double>> const sim(lensing::PixelGrid<double>::square(n, pixel, k),
                                                               PsfOf<double>(fwhm, pixel, n, n));
    lensing::View2D<double, Mem> data_d("data_d", n, n);
    sim.render(space, ModelOf<double>::unpack(t.data()), data_d);
    lensing::noise::apply(space, lensing::noise::GaussianNoise<double>{sigma}, data_d, o.seed);
    Kokkos::parallel_for(
        "fit_lens::to_float", Kokkos::MDRangePolicy<Space, Kokkos::Rank<2>>(space, {0, 0}, {n, n}),
        KOKKOS_LAMBDA(int iy, int ix) { data(iy, ix) = S(data_d(iy, ix)); });
  }
  Kokkos::deep_copy(space, noise_map, S(sigma));
  Kokkos::deep_copy(space, mask, S(1));
  space.fence();
  std::printf(
      "fit_lens: SIE + shear, Sersic source and lens light; %dx%d pixels of %.2f\", supersampling %d, PSF "
      "FWHM %.2f\", noise %.3g; backend %s, %d thread(s)\n",
      n, n, pixel, k, fwhm, sigma, Space::name(), Space().concurrency());

  // ---- fit ----
  lensing::ParameterTable<double, Kokkos::HostSpace> table;
  table.add("lens0.theta_E", P::uniform(0.6, 2.0))
      .add("lens0.e1", P::truncated_normal(0, 0.2, -0.6, 0.6))
      .add("lens0.e2", P::truncated_normal(0, 0.2, -0.6, 0.6))
      .add("lens0.center_x", P::normal(0, 0.1))
      .add("lens0.center_y", P::normal(0, 0.1))
      .add("lens1.gamma1", P::normal(0, 0.05))
      .add("lens1.gamma2", P::normal(0, 0.05))
      .add("lens1.ra_0", P::fixed(0))
      .add("lens1.dec_0", P::fixed(0));
  for (std::string const c : {"source0", "light0"}) {
    bool const src = c == "source0";
    table.add(c + ".amp", src ? P::log_uniform(1, 1000) : P::log_uniform(0.1, 100))
        .add(c + ".R_sersic", src ? P::log_uniform(0.02, 1) : P::log_uniform(0.1, 5))
        .add(c + ".n_sersic", src ? P::uniform(0.5, 6) : P::uniform(0.5, 3))
        .add(c + ".e1", P::truncated_normal(0, 0.2, -0.6, 0.6))
        .add(c + ".e2", P::truncated_normal(0, 0.2, -0.6, 0.6));
  }
  table.add("source0.center_x", P::normal(0, 0.3)).add("source0.center_y", P::normal(0, 0.3));
  table.tie("light0.center_x", "lens0.center_x").tie("light0.center_y", "lens0.center_y");
  lensing::Observation<S, Mem, Psf> const obs(lensing::PixelGrid<S>::square(n, S(pixel), k), Psf(fwhm, pixel, n, n));
  Likelihood like(obs, data, noise_map, mask);

  // MAP: screened L-BFGS starts (50 iterations each, the best goes on) with
  // full supersampling, then the supersampling mask chosen at that MAP (model
  // error <= 0.1 noise sd in total, likelihood/gaussian.hpp) and the MAP
  // refined on the adaptive likelihood, with its Laplace covariance.  (A MAP
  // at one sample per pixel is 3x cheaper per gradient, but on 0.1" pixels its
  // mode lies in another basin, 4 sd from the supersampled one.)
  StageClock map_clock;
  lensing::Posterior<Likelihood> const full(like, table);
  lensing::MapOptions map_options;
  map_options.scales = full.start_scales();
  map_options.screen_iterations = 50, map_options.screen_keep = 1;
  map_options.progress = true;
  auto const map_full = lensing::find_map(space, full, full.draw_prior_starts(o.starts, o.seed), map_options);
  auto const supersampling = like.choose_supersampling_mask(space, full.model_at(map_full.q), 0.1);
  lensing::Posterior<Likelihood> const post(like, table);
  auto const map = lensing::refine_map(space, post, map_full, map_options);
  double const map_wall = map_clock.wall(), map_cpu = map_clock.cpu();

  lensing::SamplerOptions nuts;
  nuts.num_chains = o.chains, nuts.num_warmup = o.warmup, nuts.num_draws = o.draws, nuts.seed = o.seed;
  nuts.progress = !o.short_run;
  lensing::FromMapOptions from_map;
  from_map.adapt_metric = o.metric != "laplace", from_map.adapt_dense = o.metric == "dense";
  StageClock nuts_clock;
  auto const draws = lensing::sample_from_map(space, post, map, nuts, from_map);
  double const nuts_wall = nuts_clock.wall(), nuts_cpu = nuts_clock.cpu();
  auto const verdict = lensing::check_convergence(draws, {}, post.free_names());

  lensing::VariationalOptions vi_options;  // full-rank Gaussian, whitened by the Laplace covariance
  vi_options.max_iterations = o.short_run ? 300 : 2000;
  vi_options.average_last = vi_options.max_iterations / 3;
  vi_options.num_elbo_draws = 200;
  vi_options.seed = o.seed;
  StageClock vi_clock;
  auto const vi = lensing::fit_vi_from_map(space, post, map, vi_options);
  double const vi_wall = vi_clock.wall(), vi_cpu = vi_clock.cpu();

  std::cout << lensing::summarize(post, draws) << verdict.message << "\n";
  lensing::write_csv(o.out + ".csv", post, draws);
  lensing::plot_corner(o.out + "_corner.png", post, draws, truth());
  obs.render(space, post.model_at(map.q), model);
  space.fence();
  lensing::plot_fit_residuals(o.out + "_residuals.png", data, model, noise_map, mask);
  // ---- end of fit ----

  // ---- checks and timings ----
  int const d = post.dimension();
  auto const q_true = post.initial_point_from(t);
  std::vector<double> mean(std::size_t(d), 0.0), cov(std::size_t(d) * d, 0.0);
  std::size_t const nd = std::size_t(draws.num_chains) * draws.num_draws;
  for (std::size_t j = 0; j < nd; ++j)
    for (int a = 0; a < d; ++a)
      mean[a] += draws.draws[j * d + a] / double(nd);
  for (std::size_t j = 0; j < nd; ++j)
    for (int a = 0; a < d; ++a)
      for (int b = 0; b < d; ++b)
        cov[std::size_t(a) * d + b] +=
            (draws.draws[j * d + a] - mean[a]) * (draws.draws[j * d + b] - mean[b]) / double(nd - 1);
  double const bound = examples::chi2_quantile(d, 0.95);
  double const m2_post = mahalanobis2(q_true, mean, cov), m2_map = mahalanobis2(q_true, map.q, map.covariance);
  // --short: 2 chains x 150 draws (bulk ESS 40-80 over 19 parameters) estimate
  // the posterior's mean, not its 19 x 19 covariance: the inverse of the
  // draws' covariance is dominated by its underestimated smallest eigenvalues,
  // so the distance moved 22.3 -> 33.8 on the same data when only the chains'
  // rounding changed.  The short check takes the draws' mean in the Laplace
  // covariance's scale (the mean's Monte Carlo error, ~Sigma/ESS, is small
  // against Sigma); the full run checks the draws' own covariance.
  double const m2_post_laplace = mahalanobis2(q_true, mean, map.covariance);
  long long const map_grads = map_full.gradient_evaluations + map.gradient_evaluations,
                  nuts_grads = draws.gradient_evaluations;
  std::printf(
      "free parameters: %d; MAP with full supersampling: log p %.6g, %lld gradients (%zu starts screened by %d "
      "L-BFGS iterations, %d went on); supersampling mask at it: %ld of %d pixels, %.3f of the full cost, model "
      "error %.3g noise sd; refined MAP: log p %.6g, %lld gradients, %s\n",
      d, map_full.log_density, map_full.gradient_evaluations, map_full.screen.runs.size(),
      map_options.screen_iterations, int(map_full.starts.runs.size()), supersampling.flagged, n * n, supersampling.cost,
      supersampling.chi_distance, map.log_density, map.gradient_evaluations, map.hessian_message.c_str());
  std::printf(
      "NUTS: %d chains x (%d + %d), metric %s: %.1f leapfrogs per draw, %lld gradients in warm-up, step "
      "size %.3g (in Laplace units)\n",
      o.chains, o.warmup, o.draws,
      o.warmup < lensing::FromMapOptions{}.adapt_metric_min_warmup ? "laplace (short warm-up)" : o.metric.c_str(),
      double(draws.sampling_gradient_evaluations) / double(nd),
      draws.gradient_evaluations - draws.sampling_gradient_evaluations, draws.final_step_size[0]);
  {  // VI against the NUTS draws: per-parameter sd ratio (unconstrained)
    auto const vc = vi.covariance();
    double rmin = HUGE_VAL, rmax = 0;
    for (int a = 0; a < d; ++a) {
      double const r = std::sqrt(vc[std::size_t(a) * d + a] / cov[std::size_t(a) * d + a]);
      rmin = std::min(rmin, r), rmax = std::max(rmax, r);
    }
    std::printf("VI (full-rank, %d iterations): ELBO %.2f +- %.2f, sd / NUTS sd %.3f .. %.3f over the parameters\n",
                vi.iterations, vi.elbo, vi.elbo_mcse, rmin, rmax);
  }
  bool const issue_case = !o.short_run && o.chains == 4 && o.warmup == 1000 && o.draws == 1000;
  timing("MAP", map_wall, map_cpu, map_grads, 5, !o.short_run, "");
  timing("NUTS", nuts_wall, nuts_cpu, nuts_grads, 60, issue_case, "");
  timing("VI", vi_wall, vi_cpu, vi.gradient_evaluations, 10, !o.short_run, "");
  std::printf("max R-hat %.4f, min bulk ESS %.0f, min tail ESS %.0f, divergences %lld, min E-BFMI %.3g\n",
              verdict.max_rhat, verdict.min_bulk_ess, verdict.min_tail_ess, verdict.divergences, verdict.min_ebfmi);
  std::printf(
      "truth: squared Mahalanobis distance %.2f under the posterior, %.2f from the posterior mean in the Laplace "
      "covariance, %.2f under the Laplace approximation; chi^2_%d 95 %% bound %.2f\n",
      m2_post, m2_post_laplace, m2_map, d, bound);
  std::printf("wrote %s.csv, %s_corner.png, %s_residuals.png\n", o.out.c_str(), o.out.c_str(), o.out.c_str());
  bool const recovered = (o.short_run ? m2_post_laplace : m2_post) <= bound && m2_map <= bound;
  bool const ok = recovered && (o.short_run || verdict.ok);
  std::printf("%s: %s\n", o.short_run ? "short run" : "check", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    return run(o);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "fit_lens: error: %s\n", e.what());
    return 1;
  }
}
