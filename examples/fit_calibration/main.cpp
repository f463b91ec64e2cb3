// Calibration of the whole fit pipeline, and the batch mode of the fit
// workflow (lensing::fit_batch, fit/batch.hpp): N lenses are simulated from
// the prior by the library's Simulator (SIE + external shear lens, elliptical
// Sersic source, 11 free parameters; Gaussian PSF and background noise), each
// is fitted on a Posterior with the same prior table (MAP by multi-start
// L-BFGS + Laplace covariance, NUTS from the MAP, mean-field and full-rank
// VI from the MAP), and the posteriors are checked against the truths:
// simulation-based calibration ranks (validate/sbc.hpp, chi^2 uniformity per
// parameter), TARP expected coverage (validate/tarp.hpp) and the coverage of
// the central 68 % and 95 % intervals, for NUTS, the Laplace approximation
// and both VI families.
//
//   fit_calibration [--short] [--lenses N] [--seed SEED] [--chains C] [--warmup W] [--draws D] [--noise-scale F]
//                   [--out DIR] [--fresh] [--analyse-only]
//
// Every finished lens is appended to DIR/lenses.csv (one line per method:
// truth and L = 99 posterior draws of the free parameters, constrained), so
// an interrupted run loses nothing: run the same command again and it goes
// on after the last complete lens (lens i's fit depends only on (seed, i)).
// The file's first line records the settings (seed, noise scale, chains,
// warm-up, draws, short); resuming a file written with other settings is an
// error (--fresh starts over).
// At the end (or with --analyse-only, on what DIR/lenses.csv holds):
// DIR/calibration.txt and DIR/{sbc,tarp}_{nuts,laplace,vi_meanfield,vi_fullrank}.png.
//
// --noise-scale F fits with the noise sigma multiplied by F (the data keep
// the true sigma): F = 0.5 is a mis-specified likelihood whose posteriors
// are ~2x too narrow, which the check below must catch.
//
// Check (printed "calibration check: ok" or "FAILED"): the fraction of
// (lens, parameter) pairs whose truth lies in the NUTS central 95 % interval
// is at least 0.95 - 3 sd (sd = sqrt(0.95 * 0.05 / (N P)), binomial over the
// N P pairs; pairs of one lens are correlated, so this bound is loose, not
// tight), and every lens fitted.  Sizes (32x32 pixels of 0.1", supersampling
// 2; NUTS 1 chain of 200 + 400, VI 1000 iterations) keep a lens at ~10 s of
// one core.  --short (ctest): 8 lenses, NUTS 150 + 300, VI 600 iterations.  Before fitting, the simulator's
// noiseless image of lens 0 is compared with the likelihood's Observation
// render of the same parameters (they must agree to 1e-3 of the noise).
//
// The full run (a committed result in examples/fit_calibration/):
//   OMP_NUM_THREADS=1 OMP_PROC_BIND=false build/examples/fit_calibration --lenses 120 --out fit_calibration_run
// Threads: OMP_NUM_THREADS.

#include <lensing/core/random.hpp>
#include <lensing/fit/batch.hpp>
#include <lensing/fit/posterior.hpp>
#include <lensing/fit/workflow.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/instrument.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/simulator.hpp>
#include <lensing/sources/light_profile.hpp>
#include <lensing/sources/sersic.hpp>
#include <lensing/validate/sbc.hpp>
#include <lensing/validate/tarp.hpp>

#include <Kokkos_Core.hpp>

#include "../common/cli.hpp"

#include <sys/stat.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Options {
  bool short_run = false, analyse_only = false, fresh = false;
  int lenses = 100, chains = 1, warmup = 200, draws = 400;
  std::uint64_t seed = 5;
  double noise_scale = 1;
  std::string out = "fit_calibration_run";
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: fit_calibration [--short] [--lenses N] [--seed SEED] [--chains C] [--warmup W] [--draws D] "
               "[--noise-scale F] [--out DIR] [--fresh] [--analyse-only] [--help]\n"
               "  --short          ctest size: 8 lenses, NUTS 150 + 300, VI 600 iterations\n"
               "  --lenses N       lenses simulated from the prior and fitted (default 100)\n"
               "  --seed SEED      simulations and fits, a non-negative integer (default 5)\n"
               "  --chains C       NUTS chains (default 1)\n"
               "  --warmup W       NUTS warm-up iterations per chain (default 200)\n"
               "  --draws D        NUTS draws per chain, all chains thinned to 99 for SBC, D >= 99 (default 400)\n"
               "  --noise-scale F  fit with the noise sigma times F, 0 < F <= 10 (default 1: the true sigma)\n"
               "  --out DIR        lenses.csv (appended per lens, resumed), calibration.txt, PNGs (default "
               "fit_calibration_run)\n"
               "  --fresh          start over: discard DIR/lenses.csv instead of resuming it\n"
               "  --analyse-only   no fitting: the report and plots of what DIR/lenses.csv holds\n"
               "threads: set OMP_NUM_THREADS.\n");
}

}  // namespace

// Declared in ../common/cli.hpp.
[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "fit_calibration: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

namespace {

Options parse(int argc, char** argv) {
  Options o;
  bool set_lenses = false, set_warmup = false, set_draws = false;
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
    } else if (a == "--fresh") {
      o.fresh = true;
    } else if (a == "--analyse-only") {
      o.analyse_only = true;
    } else if (a == "--lenses") {
      o.lenses = int(parse_integer(a, value(), 1, 100000)), set_lenses = true;
    } else if (a == "--seed") {
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 9000000000000000000L));
    } else if (a == "--chains") {
      o.chains = int(parse_integer(a, value(), 1, 64));
    } else if (a == "--warmup") {
      o.warmup = int(parse_integer(a, value(), 0, 1000000)), set_warmup = true;
    } else if (a == "--draws") {
      o.draws = int(parse_integer(a, value(), 99, 1000000)), set_draws = true;
    } else if (a == "--noise-scale") {
      o.noise_scale = parse_real(a, value(), 1e-3, 10);
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty directory");
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  if (o.short_run) {
    if (!set_lenses) o.lenses = 8;
    if (!set_warmup) o.warmup = 150;
    if (!set_draws) o.draws = 300;
  }
  return o;
}

using S = double;
using Space = Kokkos::DefaultExecutionSpace;
using Mem = Space::memory_space;
using Lens = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
using Model = lensing::LensModel<Lens, lensing::SersicEllipse<S>, lensing::NoLight<S>>;
using Psf = lensing::GaussianFilter<S, Mem>;
using Likelihood = lensing::GaussianLikelihood<Model, Mem, Psf>;
using Post = lensing::Posterior<Likelihood>;
using P = lensing::Prior<double>;
using Table = lensing::ParameterTable<double, Kokkos::HostSpace>;

constexpr int L = 99;     // posterior draws per lens and method (SBC ranks 0..99)
constexpr int bins = 10;  // SBC histogram bins ((L + 1) / bins draws per bin)
char const* const methods[] = {"nuts", "laplace", "vi_meanfield", "vi_fullrank"};
constexpr int num_methods = 4;

// The prior of the simulations and of the fits (one table for both).
Table prior_table() {
  Table t;
  t.add("lens0.theta_E", P::uniform(0.9, 1.4))
      .add("lens0.e1", P::truncated_normal(0, 0.1, -0.4, 0.4))
      .add("lens0.e2", P::truncated_normal(0, 0.1, -0.4, 0.4))
      .add("lens0.center_x", P::fixed(0))
      .add("lens0.center_y", P::fixed(0))
      .add("lens1.gamma1", P::normal(0, 0.03))
      .add("lens1.gamma2", P::normal(0, 0.03))
      .add("lens1.ra_0", P::fixed(0))
      .add("lens1.dec_0", P::fixed(0))
      .add("source0.amp", P::log_uniform(5, 30))
      .add("source0.R_sersic", P::log_uniform(0.1, 0.4))
      .add("source0.n_sersic", P::fixed(1))
      .add("source0.e1", P::truncated_normal(0, 0.15, -0.5, 0.5))
      .add("source0.e2", P::truncated_normal(0, 0.15, -0.5, 0.5))
      .add("source0.center_x", P::normal(0, 0.1))
      .add("source0.center_y", P::normal(0, 0.1));
  return t;
}

// The settings a lenses.csv was written with (its first line).
std::string settings_line(Options const& o) {
  std::ostringstream s;
  s.precision(17);
  s << "# fit_calibration seed=" << o.seed << " noise_scale=" << o.noise_scale << " chains=" << o.chains
    << " warmup=" << o.warmup << " draws=" << o.draws << " short=" << int(o.short_run);
  return s.str();
}

// One method's result for one lens, as a line of lenses.csv.
struct Row {
  int lens = 0;
  std::string method;
  int ok = 0, converged = 0;
  double seconds = 0, max_rhat = NAN, min_ess = NAN;
  long long divergences = 0;
  std::vector<double> truth, draws;  // P and L * P (constrained free parameters)
};

std::string format_row(Row const& r) {
  std::ostringstream s;
  s.precision(8);
  s << r.lens << ',' << r.method << ',' << r.ok << ',' << r.converged << ',' << r.seconds << ',' << r.max_rhat << ','
    << r.min_ess << ',' << r.divergences << ',' << r.truth.size();
  for (double v : r.truth)
    s << ',' << v;
  for (double v : r.draws)
    s << ',' << v;
  s << '\n';
  return s.str();
}

// Parse a line of lenses.csv; false for a malformed (e.g. truncated) line.
bool parse_row(std::string const& line, Row& r) {
  std::vector<std::string> f;
  std::stringstream ss(line);
  std::string tok;
  while (std::getline(ss, tok, ','))
    f.push_back(tok);
  if (f.size() < 9) return false;
  try {
    r.lens = std::stoi(f[0]);
    r.method = f[1];
    r.ok = std::stoi(f[2]);
    r.converged = std::stoi(f[3]);
    r.seconds = std::stod(f[4]);
    r.max_rhat = std::stod(f[5]);
    r.min_ess = std::stod(f[6]);
    r.divergences = std::stoll(f[7]);
    int const p = std::stoi(f[8]);
    std::size_t const want = 9 + std::size_t(p) * (r.ok ? L + 1 : 1);
    if (p < 1 || f.size() != want) return false;
    r.truth.clear();
    r.draws.clear();
    for (int j = 0; j < p; ++j)
      r.truth.push_back(std::stod(f[9 + j]));
    for (std::size_t k = 9 + std::size_t(p); k < f.size(); ++k)
      r.draws.push_back(std::stod(f[k]));
  } catch (std::exception const&) {
    return false;
  }
  return true;
}

// Complete lenses of lenses.csv: lens -> its rows (one per method, or one "failed" row).
std::map<int, std::vector<Row>> read_rows(std::string const& path) {
  std::map<int, std::vector<Row>> by_lens;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    Row r;
    if (parse_row(line, r)) by_lens[r.lens].push_back(r);
  }
  std::map<int, std::vector<Row>> complete;
  for (auto& kv : by_lens)
    if (kv.second.size() == num_methods || (kv.second.size() == 1 && kv.second[0].method == "failed"))
      complete.insert(kv);
  return complete;
}

// `count` rows thinned evenly from the n >= count (draw, parameter) rows of q, constrained, free parameters only.
std::vector<double> constrained_free(Post const& post, std::vector<double> const& q, int n, int count = L) {
  int const d = post.dimension();
  std::vector<int> free_index;
  auto const& all = post.all_names();
  for (auto const& name : post.free_names())
    free_index.push_back(int(std::find(all.begin(), all.end(), name) - all.begin()));
  std::vector<double> out;
  out.reserve(std::size_t(count) * d);
  for (int k = 0; k < count; ++k) {
    int const j = int((long long)k * n / count);
    auto const x = post.constrain(q.data() + std::size_t(j) * d);
    for (int f : free_index)
      out.push_back(x[std::size_t(f)]);
  }
  return out;
}

// Whether the truth lies in the central interval of probability c of the
// draws, from its rank r in {0, ..., L}: the part of rank cell [r, r + 1)
// inside [(1 - c) / 2, (1 + c) / 2] (L + 1), so that an exact posterior (r
// uniform) covers with probability c exactly (a 0/1 count of ranks 3..96
// would give 0.94 for c = 0.95 and L = 99).
double central_weight(int r, double c) {
  double const lo = 0.5 * (1 - c) * (L + 1), hi = 0.5 * (1 + c) * (L + 1);
  return std::max(0.0, std::min(r + 1.0, hi) - std::max(double(r), lo));
}

struct MethodReport {
  int n = 0;
  double cover68 = 0, cover95 = 0, min_sbc_p = 1, tarp_max_dev = 0, tarp_mean_dev = 0, seconds = 0;
  int converged = 0;
  std::vector<double> sbc_p, cover95_param;
};

MethodReport analyse_method(std::string const& dir, std::string const& method, std::vector<Row> const& rows,
                            std::uint64_t seed, std::vector<std::string> const& names) {
  MethodReport m;
  m.n = int(rows.size());
  if (m.n == 0) return m;
  int const p = int(rows[0].truth.size());
  std::vector<double> truths, draws;
  std::vector<double> in68(std::size_t(p), 0.0), in95(std::size_t(p), 0.0);
  for (auto const& r : rows) {
    truths.insert(truths.end(), r.truth.begin(), r.truth.end());
    draws.insert(draws.end(), r.draws.begin(), r.draws.end());
    m.converged += r.converged;
    m.seconds += r.seconds;
    for (int j = 0; j < p; ++j) {
      int below = 0;
      for (int k = 0; k < L; ++k)
        below += r.draws[std::size_t(k) * p + j] < r.truth[std::size_t(j)];
      in68[std::size_t(j)] += central_weight(below, 0.68);
      in95[std::size_t(j)] += central_weight(below, 0.95);
    }
  }
  for (int j = 0; j < p; ++j) {
    m.cover68 += double(in68[std::size_t(j)]) / (double(m.n) * p);
    m.cover95 += double(in95[std::size_t(j)]) / (double(m.n) * p);
    m.cover95_param.push_back(double(in95[std::size_t(j)]) / m.n);
  }
  auto const sbc = lensing::validate::sbc_ranks(truths, draws, m.n, L, p, bins);
  lensing::validate::plot_sbc(dir + "/sbc_" + method + ".png", sbc, 240, 200,
                              names.size() == std::size_t(p) ? names : std::vector<std::string>{});
  m.sbc_p = sbc.p_value;
  for (double v : sbc.p_value)
    m.min_sbc_p = std::min(m.min_sbc_p, v);
  lensing::validate::TarpOptions to;
  to.num_bootstrap = 100;
  to.seed = seed;
  auto const tr = lensing::validate::tarp(truths, draws, m.n, L, p, to);
  lensing::validate::plot_tarp(dir + "/tarp_" + method + ".png", tr, 300,
                               "TARP " + method + ", " + std::to_string(m.n) + " lenses");
  m.tarp_max_dev = tr.max_deviation;
  m.tarp_mean_dev = tr.mean_signed_deviation;
  return m;
}

// The report of DIR/lenses.csv; returns whether the check passed.
bool analyse(Options const& o, std::vector<std::string> const& names) {
  auto const lenses = read_rows(o.out + "/lenses.csv");
  int failed = 0;
  std::map<std::string, std::vector<Row>> by_method;
  for (auto const& kv : lenses)
    for (auto const& r : kv.second) {
      if (r.method == "failed")
        ++failed;
      else
        by_method[r.method].push_back(r);
    }
  std::ostringstream rep;
  char buf[512];
  std::string head;
  std::getline(std::ifstream(o.out + "/lenses.csv") >> std::ws, head);
  std::snprintf(buf, sizeof buf, "fit_calibration: %d lenses in %s/lenses.csv (%d failed fits)%s%s\n",
                int(lenses.size()), o.out.c_str(), failed, head.rfind("# ", 0) == 0 ? "; " : "",
                head.rfind("# ", 0) == 0 ? head.c_str() + 2 : "");
  rep << buf;
  int const n = int(lenses.size()) - failed;
  if (n < 2) {
    std::cout << rep.str() << "too few lenses to analyse\ncalibration check: FAILED\n";
    return false;
  }
  double const sd = std::sqrt(0.95 * 0.05 / (double(n) * names.size())), bound = 0.95 - 3 * sd;
  bool ok = failed == 0;
  for (int k = 0; k < num_methods; ++k) {
    std::string const m = methods[k];
    auto const r = analyse_method(o.out, m, by_method[m], o.seed, names);
    std::snprintf(buf, sizeof buf,
                  "%-13s n %d: coverage of the truth 68 %%: %.3f, 95 %%: %.3f; SBC min p %.3g; TARP max |ECP - "
                  "alpha| %.3f, mean ECP - alpha %+.3f; %.1f s per lens",
                  m.c_str(), r.n, r.cover68, r.cover95, r.min_sbc_p, r.tarp_max_dev, r.tarp_mean_dev,
                  r.n ? r.seconds / r.n : 0.0);
    rep << buf;
    if (m == "nuts") {
      std::snprintf(buf, sizeof buf, "; %d of %d converged (R-hat <= 1.01, ESS >= 100, no divergence)", r.converged,
                    r.n);
      rep << buf;
    }
    rep << "\n   SBC p per parameter:";
    for (std::size_t j = 0; j < r.sbc_p.size(); ++j) {
      std::snprintf(buf, sizeof buf, " %s %.3f", j < names.size() ? names[j].c_str() : "?", r.sbc_p[j]);
      rep << buf;
    }
    rep << "\n   95 % coverage per parameter:";
    for (std::size_t j = 0; j < r.cover95_param.size(); ++j) {
      std::snprintf(buf, sizeof buf, " %.2f", r.cover95_param[j]);
      rep << buf;
    }
    rep << "\n";
    if (m == "nuts") {
      bool const pass = r.n == n && r.cover95 >= bound;
      std::snprintf(buf, sizeof buf,
                    "   NUTS 95 %% coverage %.3f vs the bound %.3f (0.95 - 3 sd over %d x %d pairs): %s\n", r.cover95,
                    bound, n, int(names.size()), pass ? "ok" : "below");
      rep << buf;
      ok = ok && pass;
    }
  }
  rep << "calibration check: " << (ok ? "ok" : "FAILED") << "\n";
  std::cout << rep.str();
  std::ofstream(o.out + "/calibration.txt") << rep.str();
  return ok;
}

int run(Options const& o) {
  Space space;
  int const n = 32, k = 2;
  double const pixel = 0.1, fwhm = 0.15, sigma = 0.05;
  mkdir(o.out.c_str(), 0755);
  Table const table = prior_table();

  lensing::DetectorConfig det;
  det.noise.shot_noise = false;
  det.noise.background_rms = sigma;
  lensing::simulate::SimulatorOptions so;
  so.seed = o.seed;
  so.batch_capacity = 1;
  auto const grid = lensing::PixelGrid<S>::square(n, pixel, k);
  lensing::simulate::Simulator<Model, Psf, Mem> const sim(grid, Psf(fwhm, pixel, n, n), det, table, so);
  lensing::Observation<S, Mem, Psf> const obs(grid, Psf(fwhm, pixel, n, n));
  lensing::ObservationNoise<S> fit_noise = sim.noise_model();
  fit_noise.background_rms *= o.noise_scale;

  // Names of the free parameters (a throwaway posterior on a blank image).
  lensing::View2D<S, Mem> blank("blank", n, n), ones("ones", n, n);
  Kokkos::deep_copy(ones, 1.0);
  auto const names = Post(Likelihood(obs, blank, fit_noise, ones), table).free_names();
  std::printf(
      "fit_calibration: SIE + shear, Sersic source; %dx%d pixels of %.2f\", supersampling %d, PSF FWHM %.2f\", "
      "noise %.3g (fitted with %.3g); %zu free parameters; %d thread(s)\n",
      n, n, pixel, k, fwhm, sigma, sigma * o.noise_scale, names.size(), Space().concurrency());
  std::fflush(stdout);

  {
    // The simulator's noiseless image and the likelihood's Observation must be
    // the same forward model (else no fit can be calibrated): lens 0's truth.
    lensing::View3D<S, Mem> sharp("sharp", 1, n, n);
    lensing::View2D<S, Mem> labels("labels", 1, table.size()), model("model", n, n);
    table.sample(space, labels, o.seed, 0);
    sim.render(space, labels, sharp);
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), labels);
    std::vector<double> row(std::size_t(table.size()));
    for (int c = 0; c < table.size(); ++c)
      row[std::size_t(c)] = h(0, c);
    obs.render(space, sim.model(row), model);
    space.fence();
    auto hs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), sharp);
    auto hm = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model);
    double diff = 0, peak = 0;
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x)
        diff = std::max(diff, std::abs(hs(0, y, x) - hm(y, x))), peak = std::max(peak, std::abs(hm(y, x)));
    std::printf("simulator vs likelihood forward model (lens 0): max |difference| %.3g of a peak %.3g (noise %.3g)\n",
                diff, peak, sigma);
    if (!(diff <= 1e-3 * sigma)) throw std::runtime_error("the simulator and the likelihood render different images");
  }

  std::string const csv = o.out + "/lenses.csv";
  int first = 0;
  if (!o.analyse_only) {  // --analyse-only only reads (a run may still be appending)
    std::string head;
    if (!o.fresh && std::getline(std::ifstream(csv) >> std::ws, head) && head != settings_line(o))
      throw std::runtime_error(csv + " was written with other settings (\"" + head + "\", now \"" + settings_line(o) +
                               "\"): resume with those, or use --fresh or another --out");
    auto const done = o.fresh ? std::map<int, std::vector<Row>>{} : read_rows(csv);
    while (done.count(first))
      ++first;
    // Drop a truncated tail (an interrupted write) by rewriting the complete lenses.
    std::ofstream rewrite(csv, std::ios::trunc);
    rewrite << settings_line(o) << '\n';
    for (auto const& kv : done)
      if (kv.first < first)
        for (auto const& r : kv.second)
          rewrite << format_row(r);
  }
  if (!o.analyse_only && first < o.lenses) {
    if (first > 0) std::printf("resuming after %d complete lenses in %s\n", first, csv.c_str());
    lensing::BatchFitOptions bo;
    bo.seed = o.seed;
    bo.starts = 6;
    bo.sampler.num_chains = o.chains;
    bo.sampler.num_warmup = o.warmup;
    bo.sampler.num_draws = o.draws;
    bo.thresholds.min_bulk_ess = bo.thresholds.min_tail_ess = 100;
    lensing::VariationalOptions vo;
    vo.max_iterations = o.short_run ? 600 : 1000;
    vo.average_last = o.short_run ? 200 : 300;
    vo.num_elbo_draws = 100;
    vo.family = lensing::VariationalFamily::mean_field;
    bo.variational.push_back(vo);
    vo.family = lensing::VariationalFamily::full_rank;
    bo.variational.push_back(vo);
    bo.progress = true;

    // Lens i: the simulator's image i and its labels (table order), and a Posterior on it.
    std::map<int, std::vector<double>> truth_rows;
    auto make = [&](int i) {
      lensing::View3D<S, Mem> images("images", 1, n, n);
      lensing::View2D<S, Mem> labels("labels", 1, table.size()), data("data", n, n), mask("mask", n, n);
      sim.generate(space, std::uint64_t(i), images, labels);
      space.fence();
      Kokkos::deep_copy(data, Kokkos::subview(images, 0, Kokkos::ALL, Kokkos::ALL));
      Kokkos::deep_copy(mask, 1.0);
      auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), labels);
      std::vector<double> row(std::size_t(table.size()));
      for (int c = 0; c < table.size(); ++c)
        row[std::size_t(c)] = h(0, c);
      truth_rows[i] = row;
      return Post(Likelihood(obs, data, fit_noise, mask), table);
    };
    std::ofstream out(csv, std::ios::app);
    auto on_done = [&](lensing::LensFitResult const& r, Post const& post) {
      // The truth's free parameters: the table row in model order, then constrain(unconstrain(.)).
      auto const& row = truth_rows.at(r.index);
      std::vector<double> model_row;
      for (auto const& name : post.all_names())
        model_row.push_back(row[std::size_t(table.find(name))]);
      std::vector<double> const q_true = post.initial_point_from(model_row);
      std::vector<double> const truth = constrained_free(post, q_true, 1, 1);
      std::string lines;
      if (!r.ok) {
        Row f;
        f.lens = r.index, f.method = "failed", f.truth = truth;
        lines = format_row(f);
        std::fprintf(stderr, "%s\n", r.error.c_str());
      } else {
        int const d = post.dimension();
        Row base;
        base.lens = r.index, base.ok = 1, base.truth = truth;
        Row nuts = base;
        nuts.method = "nuts";
        nuts.converged = r.convergence.ok;
        nuts.seconds = r.map.seconds + r.draws.seconds;
        nuts.max_rhat = r.convergence.max_rhat;
        nuts.min_ess = std::min(r.convergence.min_bulk_ess, r.convergence.min_tail_ess);
        nuts.divergences = r.convergence.divergences;
        nuts.draws = constrained_free(post, r.draws.draws, r.draws.num_chains * r.draws.num_draws);
        // The Laplace approximation: N(q_MAP, covariance) in q, L draws.
        auto const chol = lensing::detail::cholesky_lower(r.map.covariance, d, "fit_calibration");
        lensing::Rng rng(r.seed, 7);
        std::vector<double> lq(std::size_t(L) * d), z(static_cast<std::size_t>(d));
        for (int s = 0; s < L; ++s) {
          for (auto& v : z)
            v = rng.normal();
          for (int i = 0; i < d; ++i) {
            double v = r.map.q[std::size_t(i)];
            for (int j = 0; j <= i; ++j)
              v += chol[std::size_t(i) * d + j] * z[std::size_t(j)];
            lq[std::size_t(s) * d + i] = v;
          }
        }
        Row lap = base;
        lap.method = "laplace";
        lap.converged = r.map.hessian_ok;
        lap.seconds = r.map.seconds;
        lap.draws = constrained_free(post, lq, L);
        lines = format_row(nuts) + format_row(lap);
        for (int v = 0; v < 2; ++v) {
          Row vi = base;
          vi.method = methods[2 + v];
          vi.seconds = r.map.seconds + r.vi[std::size_t(v)].seconds;
          vi.converged = r.vi[std::size_t(v)].non_finite_draws == 0;
          vi.draws = constrained_free(post, r.vi[std::size_t(v)].draws(L, r.seed, std::uint64_t(3 + v)), L);
          lines += format_row(vi);
        }
        std::fprintf(stderr,
                     "lens %d: MAP %.1f s (%d of %d starts at the best mode), NUTS %.1f s (%s), VI %.1f + %.1f s\n",
                     r.index, r.map.seconds, r.map.num_at_best, bo.starts, r.draws.seconds,
                     r.convergence.message.substr(0, 60).c_str(), r.vi[0].seconds, r.vi[1].seconds);
      }
      out << lines;
      out.flush();
      truth_rows.erase(r.index);
    };
    auto const fits = lensing::fit_batch(space, make, o.lenses - first, bo, on_done, first);
    (void)fits;
  }
  bool const ok = analyse(o, names);
  if (o.short_run) std::printf("short run: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    return run(o);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "fit_calibration: error: %s\n", e.what());
    return 1;
  }
}
