// The amortised posterior of examples/npe_lens against the exact-likelihood
// posterior of the same images (issue 17, the gold-standard comparison), and
// the NPE network's bottleneck as a learned summary (VMIM).
//
// Comparison: lenses drawn from the npe_lens simulator (its seed, 2026) at
// global indices 2^50 + [0, N) -- a stream neither the training ([0, ...)),
// validation (2^48 + ...), pilot (2^47) nor calibration (2^49 + ...) images
// come from.  Per lens:
//  - NUTS: the Posterior (fit/posterior.hpp) of the 17 free parameters of the
//    simulator's model under the simulator's own prior table
//    (galaxy_galaxy_priors, by name, the lens light tied to the lens) and its
//    own pixel-noise model (GaussianLikelihood with the model variance of
//    the HST-like detector: Poisson + sky + read noise), the same grid
//    (32 x 32 of 0.1", supersampling 2) and PSF, in double.  The detector's
//    artefacts are handled as a pipeline would: the random masks and the
//    pixels hit by cosmic rays or hot/dead pixels are masked (found by
//    regenerating the image with those artefacts off: every artefact has its
//    own random stream), and the image's zero-point bias (one N(0, 1e-3)
//    e-/s offset per image, 0.15 pixel sd, not in the model) is removed (the
//    image regenerated without it).  find_map (multi-start L-BFGS: half the
//    starts at the NPE posterior mean of the lens parameters with the rest
//    drawn from the prior, half from the prior), then sample_from_map (NUTS),
//    check_convergence.
//  - each amortised estimator (Estimator below: NPE; another one is one more
//    entry of `estimators`): 1,000+ draws of the unchanged simulator image.
//  - per parameter: z = (mean_est - mean_NUTS) / sd_NUTS, the width ratio
//    sd_est / sd_NUTS, the Bhattacharyya coefficient of the two Gaussian
//    approximations and the 1D histogram overlap; per lens: PQMass
//    (validate/pqmass.hpp) between the estimator's draws and the NUTS draws
//    (thinned to about one per effective sample, both standardised by the
//    NUTS mean and sd).
// Outputs in --out DIR: comparison.md (tables), comparison.csv (every lens x
// parameter), zscores.png; NUTS draws per lens in the cache directory
// (--nuts-cache, default DIR/nuts: lens_<i>.txt, 7 lens parameters), reused
// when present, so the comparison re-runs without re-sampling and an
// interrupted run resumes at the first missing lens.
//
// --vmim: the 128 features that feed the NPE's mixture head, s(x), as a
// frozen summary; small MDNs trained on s(x) alone (nn::fit) -- on all 128
// features and through a 7-number linear bottleneck -- against the full NPE
// on held-out simulations: mean posterior sd ratio per parameter.
//
//   sbi_vs_nuts [--short] [--lenses N] [--first I] [--chains C] [--warmup W] [--draws D] [--starts K]
//               [--npe-draws L] [--npe DIR] [--out DIR] [--nuts-cache DIR] [--seed S]
//               [--nre] [--nre-dir DIR] [--vmim] [--vmim-train N] [--vmim-test N] [--vmim-epochs E]
//               [--sequential R] [--seq-sims N] [--seq-epochs E] [--seq-lr LR] [--nuts-csv F]
//
// --nre: the NRE of examples/nre_lens as a second estimator (NUTS on its
// recalibrated log ratio + log prior, nre_model::posterior_draws).
//
// --sequential R: truncated sequential NPE (sbi/sequential.hpp) per lens,
// R rounds from the amortised NPE's weights (fine-tuned, --seq-epochs per
// round on --seq-sims new simulations from galaxy_galaxy_priors truncated to
// the box of the current posterior's 1 - 1e-4 HPR; the source and lens-light
// priors untouched), compared with the NUTS moments of --nuts-csv (NUTS is
// not rerun; its draws, for the histogram overlap and PQMass, are read from
// --nuts-cache when present).  Writes OUT/sequential.csv (comparison.csv's
// columns, estimator TSNPE-r<round>, appended lens by lens: a rerun skips the
// lenses already there), OUT/sequential_cost.csv and OUT/sequential.md.
// With --short: one lens, 1,024 simulations x 3 epochs per round; checks that
// the last round is narrower than the amortised NPE and still covers the
// NUTS mean and the truth.
//
// --short (ctest): one lens, 2 chains x (100 + 100), 2 starts; checks that
// the NUTS draws are finite, that the truth is typical of the exact
// posterior (2 [log p(MAP) - log p(truth)] within [0, the chi2_17 99 %
// bound]) and that the amortised posterior contains the exact one (its mean
// within 4 of its sds of the NUTS mean, its sd above half the NUTS sd);
// prints the truth's Mahalanobis distances (not required: see there) and
// "short run: ok".  Threads: OMP_NUM_THREADS.
#include <lensing/core/special.hpp>
#include <lensing/density/evaluator.hpp>
#include <lensing/fit/posterior.hpp>
#include <lensing/fit/workflow.hpp>
#include <lensing/io/png.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/nn/fit.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/schedule.hpp>
#include <lensing/nn/serialize.hpp>
#include <lensing/sample/diagnostics.hpp>
#include <lensing/sbi/sequential.hpp>
#include <lensing/validate/pqmass.hpp>

#include "../common/chi2.hpp"
#include "../common/cli.hpp"
#include "../common/scaled_source.hpp"
#include "../npe_lens/npe_model.hpp"
#include "../nre_lens/nre.hpp"

#include <Eigen/Dense>

#include <sys/stat.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#ifndef SBI_VS_NUTS_NPE_DIR
#define SBI_VS_NUTS_NPE_DIR "examples/npe_lens"
#endif

namespace {

using namespace npe_model;
namespace nn = lensing::nn;
namespace sbi = lensing::sbi;
namespace simulate = lensing::simulate;
using P = lensing::Prior<double>;
using DModel = simulate::GalaxyGalaxyModel<double>;
using DPsf = lensing::GaussianFilter<double, Mem>;
using Likelihood = lensing::GaussianLikelihood<DModel, Mem, DPsf>;
using Post = lensing::Posterior<Likelihood>;
constexpr int D = num_params;
constexpr std::uint64_t comparison_stream = std::uint64_t(1) << 50;
constexpr std::uint64_t calibration_stream = std::uint64_t(1) << 49;

// One run of --budget-study: its label, new simulations per round, output
// directory, and whether it enters the fit.
struct BudgetEntry {
  std::string label;
  long sims = 0;
  std::string dir;
  bool fit = true;
};

struct Options {
  bool short_run = false, vmim = false, nre = false, lenses_given = false;
  int lenses = 24, first = 0, chains = 4, warmup = 500, draws = 500, starts = 4, npe_draws = 2000;
  long vmim_train = 8192, vmim_test = 512;
  int vmim_epochs = 30;
  int sequential = 0;  // TSNPE rounds; 0: off
  long seq_sims = 4096, seq_epochs = 4;
  double seq_lr = 5e-4;
  int seq_patience = 2;             // early stopping of the fine-tuning (0: off)
  std::vector<BudgetEntry> budget;  // --budget-study: the runs; empty: off
  std::uint64_t seed = 2026;
  std::string npe = SBI_VS_NUTS_NPE_DIR, nre_dir = std::string(SBI_VS_NUTS_NPE_DIR) + "/../nre_lens",
              out = "sbi_vs_nuts", cache,
              nuts_csv = std::string(SBI_VS_NUTS_NPE_DIR) + "/../sbi_vs_nuts/comparison.csv";
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: sbi_vs_nuts [--short] [--lenses N] [--first I] [--chains C] [--warmup W] [--draws D]\n"
               "                   [--starts K] [--npe-draws L] [--npe DIR] [--out DIR] [--nuts-cache DIR]\n"
               "                   [--seed S] [--vmim] [--vmim-train N] [--vmim-test N] [--vmim-epochs E]\n"
               "                   [--sequential R] [--seq-sims N] [--seq-epochs E] [--seq-lr LR] [--nuts-csv F]\n"
               "                   [--seq-patience P] [--budget-study LABEL:SIMS:DIR[*],...]\n"
               "  --short           ctest mode: one lens, 2 chains x (100 + 100), checks, 'short run: ok'\n"
               "  --lenses N        comparison lenses, indices 2^50 + [I, I + N) (default 24)\n"
               "  --first I         first lens (default 0)\n"
               "  --chains C        NUTS chains (default 4)\n"
               "  --warmup W        NUTS warm-up iterations per chain (default 500)\n"
               "  --draws D         NUTS draws per chain (default 500)\n"
               "  --starts K        L-BFGS starts of the MAP (default 4)\n"
               "  --npe-draws L     amortised posterior draws per lens (default 2000)\n"
               "  --npe DIR         npe.weights and npe.scales (default the committed examples/npe_lens)\n"
               "  --out DIR         comparison.md, comparison.csv, zscores.png, vmim.md (default sbi_vs_nuts)\n"
               "  --nuts-cache DIR  NUTS draws per lens, reused when present (default OUT/nuts)\n"
               "  --seed S          simulator seed (default 2026, the NPE's training seed)\n"
               "  --nre             also the NRE of nre_lens (NUTS on its ratio, 4 x (300 + N/4) per lens)\n"
               "  --nre-dir DIR     nre.weights and nre.scales (default the committed examples/nre_lens)\n"
               "  --vmim            learned-summary mode instead of the comparison\n"
               "  --vmim-train N    training simulations of the summary MDNs (default 8192)\n"
               "  --vmim-test N     held-out simulations (calibration stream 2^49) (default 512)\n"
               "  --vmim-epochs E   (default 30)\n"
               "  --sequential R    truncated sequential NPE (R rounds from the NPE's weights) per lens against\n"
               "                    the NUTS moments of --nuts-csv (NUTS not rerun; its draws from --nuts-cache\n"
               "                    when present); writes OUT/sequential.csv, .md, sequential_cost.csv\n"
               "  --seq-sims N      new simulations per round (default 4096)\n"
               "  --seq-epochs E    fine-tuning epochs per round (default 4)\n"
               "  --seq-lr LR       Adam rate of the fine-tuning (default 5e-4)\n"
               "  --seq-patience P  early stopping on the held-out 10 %: stop after P epochs without a better\n"
               "                    validation loss, best epoch restored (default 2; 0: off)\n"
               "  --budget-study S  no fitting: width ratio vs simulation budget from the runs in S (comma-\n"
               "                    separated LABEL:SIMS:DIR, SIMS new simulations per round, DIR a --sequential\n"
               "                    output; a trailing * shows a run without fitting it); writes OUT/budget.csv,\n"
               "                    budget.md, budget.png; the lenses in every run, or with --lenses N: lenses\n"
               "                    [I, I + N) of any run\n"
               "  --nuts-csv F      NUTS results (default the committed sbi_vs_nuts/comparison.csv)\n"
               "threads: set OMP_NUM_THREADS.\n");
}

}  // namespace

[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "sbi_vs_nuts: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

namespace {

Options parse(int argc, char** argv) {
  Options o;
  bool lenses_set = false, chains_set = false, warmup_set = false, draws_set = false, starts_set = false,
       sims_set = false, epochs_set = false;
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
    } else if (a == "--lenses") {
      o.lenses = int(parse_integer(a, value(), 1, 100000)), lenses_set = true;
    } else if (a == "--first") {
      o.first = int(parse_integer(a, value(), 0, 1000000000));
    } else if (a == "--chains") {
      o.chains = int(parse_integer(a, value(), 1, 64)), chains_set = true;
    } else if (a == "--warmup") {
      o.warmup = int(parse_integer(a, value(), 10, 1000000)), warmup_set = true;
    } else if (a == "--draws") {
      o.draws = int(parse_integer(a, value(), 10, 1000000)), draws_set = true;
    } else if (a == "--starts") {
      o.starts = int(parse_integer(a, value(), 1, 1000)), starts_set = true;
    } else if (a == "--npe-draws") {
      o.npe_draws = int(parse_integer(a, value(), 100, 1000000));
    } else if (a == "--npe") {
      o.npe = value();
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty directory name");
    } else if (a == "--nuts-cache") {
      o.cache = value();
      if (o.cache.empty()) bad("--nuts-cache needs a non-empty directory name");
    } else if (a == "--seed") {
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 9000000000000000000L));
    } else if (a == "--nre") {
      o.nre = true;
    } else if (a == "--nre-dir") {
      o.nre_dir = value();
      o.nre = true;
    } else if (a == "--vmim") {
      o.vmim = true;
    } else if (a == "--vmim-train") {
      o.vmim_train = parse_integer(a, value(), 256, 10000000);
    } else if (a == "--vmim-test") {
      o.vmim_test = parse_integer(a, value(), 64, 10000000);
    } else if (a == "--vmim-epochs") {
      o.vmim_epochs = int(parse_integer(a, value(), 1, 100000));
    } else if (a == "--sequential") {
      o.sequential = int(parse_integer(a, value(), 1, 63));  // 63: the rounds' streams stay below the next lens's
    } else if (a == "--seq-sims") {
      o.seq_sims = parse_integer(a, value(), 128, 10000000), sims_set = true;
    } else if (a == "--seq-epochs") {
      o.seq_epochs = parse_integer(a, value(), 1, 1000), epochs_set = true;
    } else if (a == "--seq-lr") {
      o.seq_lr = parse_real(a, value(), 1e-8, 1.0);
    } else if (a == "--seq-patience") {
      o.seq_patience = int(parse_integer(a, value(), 0, 1000));
    } else if (a == "--budget-study") {
      std::string const spec = value();
      std::size_t p0 = 0;
      while (p0 <= spec.size()) {
        std::size_t const p1 = std::min(spec.find(',', p0), spec.size());
        std::string item = spec.substr(p0, p1 - p0);
        BudgetEntry e;
        if (!item.empty() && item.back() == '*') e.fit = false, item.pop_back();
        std::size_t const c1 = item.find(':'), c2 = c1 == std::string::npos ? c1 : item.find(':', c1 + 1);
        if (c2 == std::string::npos || c1 == 0 || c2 + 1 >= item.size())
          bad("--budget-study: bad entry '" + spec.substr(p0, p1 - p0) + "' (expected LABEL:SIMS:DIR)");
        e.label = item.substr(0, c1);
        e.sims = long(parse_integer(a, item.substr(c1 + 1, c2 - c1 - 1).c_str(), 1, 1000000000));
        e.dir = item.substr(c2 + 1);
        o.budget.push_back(e);
        p0 = p1 + 1;
      }
    } else if (a == "--nuts-csv") {
      o.nuts_csv = value();
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  o.lenses_given = lenses_set;
  if (o.short_run) {
    if (!lenses_set) o.lenses = 1;
    if (!chains_set) o.chains = 2;
    if (!warmup_set) o.warmup = 100;
    if (!draws_set) o.draws = 100;
    if (!starts_set) o.starts = 2;
    if (!sims_set) o.seq_sims = 1024;
    if (!epochs_set) o.seq_epochs = 3;
  }
  if (o.cache.empty()) o.cache = o.out + "/nuts";
  return o;
}

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

bool file_exists(std::string const& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// ---------------------------------------------------------------------------
// The lenses: the simulator's image, and what the exact likelihood needs.

struct Lens {
  std::uint64_t index = 0;
  std::vector<double> row;         // the table's columns (simulator labels)
  std::vector<double> truth;       // the 7 lens parameters
  std::vector<float> image;        // what the NPE sees (32 x 32, e-/s)
  std::vector<double> data, mask;  // for the likelihood: artefacts masked, bias removed
  double bias = 0;                 // the removed zero-point offset [e-/s]
  int artefact_pixels = 0, masked_pixels = 0;
};

class LensMaker {
 public:
  explicit LensMaker(std::uint64_t seed)
      : m_full(make_simulator(seed, 1)),
        m_clean(make_simulator(seed, 1, clean_config(false))),
        m_nobias(make_simulator(seed, 1, clean_config(true))) {}

  Lens make(Space const& space, std::uint64_t index) const {
    int const n = image_size, K = m_full.num_labels();
    lensing::View3D<Scalar, Mem> a("a", 1, n, n), b("b", 1, n, n), c("c", 1, n, n);
    lensing::View2D<Scalar, Mem> la("la", 1, K), lb("lb", 1, K), lc("lc", 1, K);
    m_full.generate(space, index, a, la);
    space.fence();
    auto ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
    auto hm = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m_full.masks());
    auto hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), la);
    m_clean.generate(space, index, b, lb);
    m_nobias.generate(space, index, c, lc);
    space.fence();
    auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
    auto hc = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), c);
    Lens L;
    L.index = index;
    for (int k = 0; k < K; ++k)
      L.row.push_back(double(hl(0, k)));
    for (auto const& name : label_names)
      L.truth.push_back(L.row[std::size_t(m_full.table().find(name))]);
    double bsum = 0;
    for (int iy = 0; iy < n; ++iy)
      for (int ix = 0; ix < n; ++ix) {
        L.image.push_back(ha(0, iy, ix));
        bool const art = ha(0, iy, ix) != hb(0, iy, ix);
        bool const good = hm(0, iy, ix) > 0.5f && !art;
        L.artefact_pixels += art && hm(0, iy, ix) > 0.5f ? 1 : 0;
        L.masked_pixels += good ? 0 : 1;
        L.mask.push_back(good ? 1.0 : 0.0);
        L.data.push_back(good ? double(hc(0, iy, ix)) : 0.0);
        bsum += double(hb(0, iy, ix)) - double(hc(0, iy, ix));
      }
    L.bias = bsum / double(n * n);
    return L;
  }
  Sim const& simulator() const { return m_full; }

 private:
  static lensing::DetectorConfig const* clean_config(bool no_bias) {
    static lensing::DetectorConfig c1, c2;
    auto& c = no_bias ? c2 : c1;
    c = lensing::presets::hst_like().detector_config();
    c.cosmic_rays = c.hot_dead_pixels = false;
    if (no_bias) c.bias_sigma = 0;
    return &c;
  }
  Sim m_full, m_clean, m_nobias;
};

// ---------------------------------------------------------------------------
// NUTS on the exact posterior, with its cache file.

struct NutsResult {
  std::vector<double> draws;  // (chains * draws, 7) constrained lens parameters
  int chains = 0, per_chain = 0;
  double map_seconds = 0, nuts_seconds = 0, max_rhat = 0, min_bulk_ess = 0, min_tail_ess = 0;
  long long gradients = 0, divergences = 0;
  bool converged = false;
  double mahalanobis2 = 0;  // truth, all free parameters, unconstrained
  // The truth's distance from the draws' mean and from the MAP in the Laplace
  // covariance, the part of the latter from the lens light's marginal, and
  // lr = 2 [log p(MAP) - log p(truth)] (printed by --short, lr checked);
  // not stored in the NUTS cache.
  double mahalanobis2_laplace = 0, mahalanobis2_map = 0, mahalanobis2_map_light = 0, lr = NAN;
  int free_dim = 0;
};

std::string cache_path(Options const& o, std::uint64_t index) {
  return o.cache + "/lens_" + std::to_string(index - comparison_stream) + ".txt";
}

void write_cache(std::string const& path, NutsResult const& r) {
  std::string const tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f.precision(17);
    f << "meta " << r.chains << " " << r.per_chain << " " << r.map_seconds << " " << r.nuts_seconds << " " << r.max_rhat
      << " " << r.min_bulk_ess << " " << r.min_tail_ess << " " << r.gradients << " " << r.divergences << " "
      << int(r.converged) << " " << r.mahalanobis2 << " " << r.free_dim << "\n";
    f << "names";
    for (auto const& n : label_names)
      f << " " << n;
    f << "\n";
    for (std::size_t i = 0; i < r.draws.size(); i += D) {
      for (int j = 0; j < D; ++j)
        f << (j ? " " : "") << r.draws[i + std::size_t(j)];
      f << "\n";
    }
    if (!f) throw std::runtime_error("cannot write '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename '" + tmp + "'");
}

NutsResult read_cache(std::string const& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open '" + path + "'");
  NutsResult r;
  std::string key;
  int conv = 0;
  f >> key >> r.chains >> r.per_chain >> r.map_seconds >> r.nuts_seconds >> r.max_rhat >> r.min_bulk_ess >>
      r.min_tail_ess >> r.gradients >> r.divergences >> conv >> r.mahalanobis2 >> r.free_dim;
  if (!f || key != "meta") throw std::runtime_error("'" + path + "': bad meta line");
  r.converged = conv != 0;
  f >> key;
  for (int j = 0; j < D; ++j) {
    std::string name;
    f >> name;
    if (name != label_names[std::size_t(j)]) throw std::runtime_error("'" + path + "': unexpected column " + name);
  }
  std::size_t const n = std::size_t(r.chains) * std::size_t(r.per_chain) * D;
  r.draws.resize(n);
  for (std::size_t i = 0; i < n; ++i)
    f >> r.draws[i];
  if (!f) throw std::runtime_error("'" + path + "': fewer draws than the meta line says");
  return r;
}

NutsResult run_nuts(Space const& space, Lens const& L, std::vector<double> const& npe_mean, Options const& o) {
  auto const band = lensing::presets::hst_like();
  int const n = image_size;
  lensing::Observation<double, Mem, DPsf> const obs(lensing::PixelGrid<double>::square(n, pixel_scale, supersampling),
                                                    DPsf(band.psf_fwhm, pixel_scale, n, n, 5.0));
  lensing::View2D<double, Mem> data("data", n, n), mask("mask", n, n);
  {
    auto hd = Kokkos::create_mirror_view(data);
    auto hm = Kokkos::create_mirror_view(mask);
    for (int iy = 0; iy < n; ++iy)
      for (int ix = 0; ix < n; ++ix)
        hd(iy, ix) = L.data[std::size_t(iy * n + ix)], hm(iy, ix) = L.mask[std::size_t(iy * n + ix)];
    Kokkos::deep_copy(data, hd);
    Kokkos::deep_copy(mask, hm);
  }
  auto const noise = band.detector_config().noise;
  Post const post(Likelihood(obs, data, noise, mask), simulate::galaxy_galaxy_priors<double, Kokkos::HostSpace>());
  int const d = post.dimension();
  // Starts: the first half at the NPE mean of the lens parameters (inside
  // their supports), the rest of each start and the other half from the prior.
  auto starts = post.draw_prior_starts(o.starts, o.seed + L.index);
  for (int s = 0; s < (o.starts + 1) / 2; ++s)
    for (int f = 0; f < d; ++f)
      for (int j = 0; j < D; ++j)
        if (post.free_names()[std::size_t(f)] == label_names[std::size_t(j)]) {
          auto const& t = post.transform(f);
          double const v = npe_mean[std::size_t(j)];
          if (t.contains(v)) starts[std::size_t(s)][std::size_t(f)] = t.unconstrain(v);
        }
  lensing::MapOptions mo;
  mo.scales = post.start_scales();
  auto const map = lensing::find_map(space, post, starts, mo);
  lensing::SamplerOptions so;
  so.num_chains = o.chains, so.num_warmup = o.warmup, so.num_draws = o.draws, so.seed = o.seed + L.index;
  auto const run = lensing::sample_from_map(space, post, map, so);
  auto const verdict = lensing::check_convergence(run, {}, post.free_names());
  NutsResult r;
  r.chains = run.num_chains, r.per_chain = run.num_draws;
  r.map_seconds = map.seconds, r.nuts_seconds = run.seconds;
  r.gradients = map.gradient_evaluations + run.gradient_evaluations;
  r.max_rhat = verdict.max_rhat, r.min_bulk_ess = verdict.min_bulk_ess, r.min_tail_ess = verdict.min_tail_ess;
  r.divergences = verdict.divergences, r.converged = verdict.ok;
  r.free_dim = d;
  auto const all = post.constrained_draws(run);
  auto const names = post.all_names();
  std::vector<int> col(D, -1);
  for (int j = 0; j < D; ++j)
    for (std::size_t c = 0; c < names.size(); ++c)
      if (names[c] == label_names[std::size_t(j)]) col[std::size_t(j)] = int(c);
  std::size_t const nd = std::size_t(run.num_chains) * run.num_draws, width = names.size();
  for (std::size_t i = 0; i < nd; ++i)
    for (int j = 0; j < D; ++j)
      r.draws.push_back(all[i * width + std::size_t(col[std::size_t(j)])]);
  // The truth's squared Mahalanobis distance under the draws (unconstrained).
  std::vector<double> row(names.size());
  {
    auto const& tn = post.table().names();
    for (std::size_t c = 0; c < names.size(); ++c)
      row[c] = L.row[std::size_t(post.table().find(names[c]))];
    (void)tn;
  }
  auto const qt = post.initial_point_from(row);
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(d);
  Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(d, d);
  for (std::size_t i = 0; i < nd; ++i)
    for (int a = 0; a < d; ++a)
      mean(a) += run.draws[i * std::size_t(d) + std::size_t(a)] / double(nd);
  for (std::size_t i = 0; i < nd; ++i)
    for (int a = 0; a < d; ++a)
      for (int b = 0; b < d; ++b)
        cov(a, b) += (run.draws[i * std::size_t(d) + std::size_t(a)] - mean(a)) *
                     (run.draws[i * std::size_t(d) + std::size_t(b)] - mean(b)) / double(nd - 1);
  Eigen::VectorXd res(d);
  for (int a = 0; a < d; ++a)
    res(a) = qt[std::size_t(a)] - mean(a);
  r.mahalanobis2 = res.dot(cov.ldlt().solve(res));
  {
    Eigen::MatrixXd lap(d, d);
    for (int a = 0; a < d; ++a)
      for (int b = 0; b < d; ++b)
        lap(a, b) = map.covariance[std::size_t(a) * std::size_t(d) + std::size_t(b)];
    r.mahalanobis2_laplace = res.dot(lap.ldlt().solve(res));
    Eigen::VectorXd rm(d);
    for (int a = 0; a < d; ++a)
      rm(a) = qt[std::size_t(a)] - map.q[std::size_t(a)];
    r.mahalanobis2_map = rm.dot(lap.ldlt().solve(rm));
    // The lens light's marginal (its Sersic amp, R_sersic, n_sersic): where
    // the Laplace form fails (see the --short check).
    std::vector<int> li;
    for (int a = 0; a < d; ++a)
      if (post.free_names()[std::size_t(a)].rfind("light0.", 0) == 0) li.push_back(a);
    Eigen::MatrixXd ll(li.size(), li.size());
    Eigen::VectorXd rl(li.size());
    for (std::size_t a = 0; a < li.size(); ++a) {
      rl(Eigen::Index(a)) = rm(li[a]);
      for (std::size_t b = 0; b < li.size(); ++b)
        ll(Eigen::Index(a), Eigen::Index(b)) = lap(li[a], li[b]);
    }
    r.mahalanobis2_map_light = li.empty() ? 0.0 : rl.dot(ll.ldlt().solve(rl));
  }
  {
    lensing::DensityEvaluator<Space, Post> eval(space, post, "sbi_vs_nuts");
    std::vector<double> g(std::size_t(d), 0.0);
    r.lr = 2 * (map.log_density - eval(qt.data(), g.data()));
  }
  std::printf("  NUTS: MAP %.1f s (%d of %d starts at the best mode), %d x (%d + %d) in %.1f s, %lld gradients; %s\n",
              map.seconds, map.num_at_best, o.starts, o.chains, o.warmup, o.draws, run.seconds, r.gradients,
              verdict.message.c_str());
  return r;
}

// ---------------------------------------------------------------------------
// Amortised estimators: each maps a lens image to posterior draws (n, 7) in
// physical units.  Adding one (e.g. the NRE of examples/nre_lens sampled by
// NUTS on its RatioLogDensity) is one more entry of the `estimators` vector.

struct Estimate {
  std::vector<double> draws;  // (n, 7)
  double seconds = 0;         // wall time of the call
};
struct Estimator {
  std::string name;
  std::function<Estimate(Lens const&, int n)> draw;
  bool amortised = true;  // timing: best of 5 calls of 1,000 draws (else the one call)
};

struct NpeHandle {
  Network net;
  Scales sc;
  NpeHandle(std::string const& dir) : net(make_network(1, Scales::read(dir + "/npe.scales").components)) {
    sc = Scales::read(dir + "/npe.scales");
    nn::load_weights(net, dir + "/npe.weights");
    net.set_training(false);
  }
};

nn::Tensor<Scalar, Mem> image_tensor(Lens const& L, double scale) {
  nn::Tensor<Scalar, Mem> x("x", 1, 1, image_size, image_size);
  auto h = Kokkos::create_mirror_view(x);
  for (int iy = 0; iy < image_size; ++iy)
    for (int ix = 0; ix < image_size; ++ix)
      h(0, 0, iy, ix) = Scalar(double(L.image[std::size_t(iy * image_size + ix)]) / scale);
  Kokkos::deep_copy(x, h);
  return x;
}

// The NRE of examples/nre_lens: NUTS on its recalibrated log ratio + log
// prior (nre_model::posterior_draws), 4 chains x (300 + n / 4).
Estimator nre_estimator(Space const& space, nre_model::TrainedNre& nre, std::uint64_t seed) {
  Estimator e{"NRE",
              [&space, &nre, seed](Lens const& L, int n) {
                auto const x = image_tensor(L, 1.0);  // simulator units: posterior_draws scales it
                nre_model::DrawOptions d;
                d.chains = 4, d.warmup = 300, d.draws = std::max(25, n / 4), d.seed = seed + L.index;
                auto const r = nre_model::posterior_draws(space, nre, x, d);
                Estimate out;
                out.draws = r.result.draws;
                out.seconds = r.seconds;
                return out;
              },
              false};
  return e;
}

Estimator npe_estimator(Space const& space, NpeHandle& h, std::uint64_t seed) {
  return {"NPE", [&space, &h, seed](Lens const& L, int n) {
            sbi::NeuralPosterior<Network> npe(h.net, h.sc.components, h.sc.mean, h.sc.sd);
            auto const x = image_tensor(L, h.sc.image_scale);
            auto const t0 = Clock::now();
            Estimate e;
            e.draws = sbi::sample_posterior(space, npe, x, n, seed, L.index);
            e.seconds = since(t0);
            return e;
          }};
}

// ---------------------------------------------------------------------------
// The comparison of one estimator's draws with the NUTS draws of one lens.

struct Moments {
  std::vector<double> mean, sd;
};
Moments moments(std::vector<double> const& x) {
  std::size_t const n = x.size() / D;
  Moments m;
  m.mean.assign(D, 0.0);
  m.sd.assign(D, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (int j = 0; j < D; ++j)
      m.mean[std::size_t(j)] += x[i * D + std::size_t(j)] / double(n);
  for (std::size_t i = 0; i < n; ++i)
    for (int j = 0; j < D; ++j) {
      double const t = x[i * D + std::size_t(j)] - m.mean[std::size_t(j)];
      m.sd[std::size_t(j)] += t * t / double(n - 1);
    }
  for (auto& v : m.sd)
    v = std::sqrt(v);
  return m;
}

// 1D histogram overlap sum_b min(p_b, q_b) on 30 bins over the pooled range.
double histogram_overlap(std::vector<double> const& x, std::vector<double> const& y, int j) {
  double lo = HUGE_VAL, hi = -HUGE_VAL;
  for (auto const* v : {&x, &y})
    for (std::size_t i = std::size_t(j); i < v->size(); i += D)
      lo = std::min(lo, (*v)[i]), hi = std::max(hi, (*v)[i]);
  int const nb = 30;
  std::vector<double> p(nb, 0.0), q(nb, 0.0);
  auto fill = [&](std::vector<double> const& v, std::vector<double>& h) {
    double const w = 1.0 / double(v.size() / D);
    for (std::size_t i = std::size_t(j); i < v.size(); i += D)
      h[std::size_t(std::min(nb - 1, int((v[i] - lo) / (hi - lo + 1e-300) * nb)))] += w;
  };
  fill(x, p);
  fill(y, q);
  double s = 0;
  for (int b = 0; b < nb; ++b)
    s += std::min(p[std::size_t(b)], q[std::size_t(b)]);
  return s;
}

struct Row {
  std::uint64_t lens = 0;
  std::string estimator;
  std::vector<double> truth, nuts_mean, nuts_sd, est_mean, est_sd, z, z_est, width, bc, overlap, nuts_truth_z;
  double pq_chi2 = 0, pq_p = 0;
  int pq_dof = 0;
  double lens_rhat = 0, lens_ess = 0;  // NUTS, over the 7 lens parameters only
  double est_ms = 0;
  bool amortised = true;
  NutsResult const* nuts = nullptr;
};

Row compare(Lens const& L, NutsResult const& nuts, std::string const& name, Estimate const& e) {
  Row r;
  r.lens = L.index - comparison_stream;
  r.estimator = name;
  r.truth = L.truth;
  r.est_ms = 1e3 * e.seconds;
  auto const mn = moments(nuts.draws), me = moments(e.draws);
  r.nuts_mean = mn.mean, r.nuts_sd = mn.sd, r.est_mean = me.mean, r.est_sd = me.sd;
  for (int j = 0; j < D; ++j) {
    std::size_t const k = std::size_t(j);
    double const s1 = mn.sd[k], s2 = me.sd[k], dm = me.mean[k] - mn.mean[k];
    r.z.push_back(dm / s1);
    r.z_est.push_back(dm / s2);
    r.width.push_back(s2 / s1);
    r.bc.push_back(std::sqrt(2 * s1 * s2 / (s1 * s1 + s2 * s2)) * std::exp(-dm * dm / (4 * (s1 * s1 + s2 * s2))));
    r.overlap.push_back(histogram_overlap(nuts.draws, e.draws, j));
    r.nuts_truth_z.push_back((mn.mean[k] - L.truth[k]) / s1);
  }
  // Convergence of the NUTS draws of the 7 lens parameters (the rest are
  // nuisance parameters here).
  r.lens_rhat = 0, r.lens_ess = HUGE_VAL;
  std::size_t const nn_ = nuts.draws.size() / D;
  for (int j = 0; j < D; ++j) {
    std::vector<double> x(nn_);
    for (std::size_t i = 0; i < nn_; ++i)
      x[i] = nuts.draws[i * D + std::size_t(j)];
    r.lens_rhat = std::max(r.lens_rhat, lensing::diagnostics::rhat(x, nuts.chains, nuts.per_chain));
    r.lens_ess = std::min(r.lens_ess, lensing::diagnostics::ess_bulk(x, nuts.chains, nuts.per_chain));
  }
  // PQMass: NUTS thinned to about one draw per effective sample (of the lens
  // parameters), both sets standardised by the NUTS moments.
  int const thin = std::max(1, int(double(nn_) / std::max(1.0, r.lens_ess)));
  std::vector<double> xs, ys;
  for (std::size_t i = 0; i < nn_; i += std::size_t(thin))
    for (int j = 0; j < D; ++j)
      xs.push_back((nuts.draws[i * D + std::size_t(j)] - mn.mean[std::size_t(j)]) / mn.sd[std::size_t(j)]);
  for (std::size_t i = 0; i < e.draws.size(); i += D)
    for (int j = 0; j < D; ++j)
      ys.push_back((e.draws[i + std::size_t(j)] - mn.mean[std::size_t(j)]) / mn.sd[std::size_t(j)]);
  lensing::validate::PqmassOptions po;
  po.num_references = std::max(10, std::min(100, int(xs.size() / D) / 10));
  po.num_realizations = 20;
  po.seed = L.index;
  auto const pq = lensing::validate::pqmass(xs, ys, D, po);
  r.pq_chi2 = pq.mean_chi2, r.pq_p = pq.mean_p_value, r.pq_dof = pq.dof;
  return r;
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  std::size_t const n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string fmt(char const* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// Three panels, one column per parameter, one dot per lens: z in NUTS sds
// (asinh axis; grey: +-0.5, the accuracy target), the same offset in sds of
// the estimator (grey: +-1, +-2) and log2 of the width ratio (grey: 1).
void plot_zscores(std::string const& path, std::vector<Row> const& rows) {
  int const W = 760, H = 820;
  lensing::io::Canvas c(W, H);
  c.set_window(0, W, 0, H);
  lensing::io::Rgb const black{0, 0, 0}, grey{170, 170, 170}, blue{31, 119, 180}, red{214, 39, 40};
  double const x0 = -0.7, x1 = D - 0.3;
  auto const X = [&](double x) { return (x - x0) / (x1 - x0) * (W - 70) + 60; };
  auto const line = [&](double xa, double ya, double xb, double yb, lensing::io::Rgb col) {
    c.line(xa, H - ya, xb, H - yb, col);
  };
  auto const panel = [&](int row0, int row1, double y0, double y1, auto tr, auto value, std::vector<double> marks,
                         std::vector<double> ticks, double ok_band, std::string const& title) {
    auto const Y = [&](double v) {
      double const t = std::min(tr(y1), std::max(tr(y0), tr(v)));
      return row1 - (t - tr(y0)) / (tr(y1) - tr(y0)) * (row1 - row0);
    };
    line(X(x0), Y(y0), X(x1), Y(y0), black);
    line(X(x0), Y(y0), X(x0), Y(y1), black);
    for (double m : marks)
      line(X(x0), Y(m), X(x1), Y(m), grey);
    for (double t : ticks)
      c.text(4, int(Y(t)) - 4, fmt("%g", t), black);
    c.text(60, row0 - 18, title, black);
    for (int j = 0; j < D; ++j) {
      c.text(int(X(j)) - 20, row1 + 6, short_names[std::size_t(j)], black);
      int k = 0;
      for (auto const& r : rows) {
        double const v = value(r, j);
        double const dx = 0.6 * (double(k++) / double(std::max<std::size_t>(1, rows.size())) - 0.5);
        c.marker(X(j + dx), H - Y(v), std::fabs(v) > ok_band ? red : blue, 2);
      }
    }
  };
  auto const ident = [](double v) { return v; };
  auto const ash = [](double v) { return std::asinh(v / 0.5); };
  panel(
      40, 250, -50, 50, ash, [](Row const& r, int j) { return r.z[std::size_t(j)]; }, {-0.5, 0.0, 0.5},
      {-50, -10, -2, 0, 2, 10, 50}, 0.5, "z = (mean_est - mean_NUTS) / sd_NUTS (asinh axis); grey +-0.5: target");
  panel(
      310, 520, -3, 3, ident, [](Row const& r, int j) { return r.z_est[std::size_t(j)]; }, {-2, -1, 0, 1, 2},
      {-3, -2, -1, 0, 1, 2, 3}, 2.0, "(mean_est - mean_NUTS) / sd_est; grey +-1, +-2");
  panel(
      580, 790, -1, 6, ident, [](Row const& r, int j) { return std::log2(r.width[std::size_t(j)]); }, {0.0},
      {-1, 0, 2, 4, 6}, 1e30, "log2(sd_est / sd_NUTS); grey: equal widths");
  c.write(path);
}

void write_outputs(Options const& o, std::vector<Row> const& rows, std::vector<Lens> const& lenses) {
  // comparison.csv: every lens x parameter.
  {
    std::ofstream f(o.out + "/comparison.csv");
    f << "lens,estimator,parameter,truth,nuts_mean,nuts_sd,est_mean,est_sd,z,z_est,width_ratio,bhattacharyya,"
         "hist_overlap,nuts_truth_z,pqmass_chi2,pqmass_dof,pqmass_p,nuts_converged,nuts_max_rhat,nuts_min_ess\n";
    f.precision(6);
    for (auto const& r : rows)
      for (int j = 0; j < D; ++j) {
        std::size_t const k = std::size_t(j);
        f << r.lens << "," << r.estimator << "," << short_names[k] << "," << r.truth[k] << "," << r.nuts_mean[k] << ","
          << r.nuts_sd[k] << "," << r.est_mean[k] << "," << r.est_sd[k] << "," << r.z[k] << "," << r.z_est[k] << ","
          << r.width[k] << "," << r.bc[k] << "," << r.overlap[k] << "," << r.nuts_truth_z[k] << "," << r.pq_chi2 << ","
          << r.pq_dof << "," << r.pq_p << "," << int(r.nuts->converged) << "," << r.nuts->max_rhat << ","
          << r.nuts->min_bulk_ess << "\n";
      }
  }
  std::ostringstream md;
  std::vector<std::string> names;
  for (auto const& r : rows)
    if (std::find(names.begin(), names.end(), r.estimator) == names.end()) names.push_back(r.estimator);
  for (auto const& est : names) {
    std::vector<Row const*> rs;
    for (auto const& r : rows)
      if (r.estimator == est) rs.push_back(&r);
    int const n = int(rs.size());
    int all_within = 0, conv = 0, lens_conv = 0;
    for (auto const* r : rs) {
      bool ok = true;
      for (double z : r->z)
        ok = ok && std::fabs(z) < 0.5;
      all_within += ok ? 1 : 0;
      conv += r->nuts->converged ? 1 : 0;
      lens_conv += r->lens_rhat <= 1.01 && r->lens_ess >= 400 ? 1 : 0;
    }
    md << "## " << est << " vs NUTS: " << n << " lenses\n\n";
    md << "NUTS converged (check_convergence: R-hat <= 1.01, bulk/tail ESS >= 400, no divergence, E-BFMI >= 0.3) on "
       << conv << " of " << n << " lenses (all 17 free parameters); on the 7 lens parameters alone (R-hat <= 1.01, "
       << "bulk ESS >= 400) on " << lens_conv << " of " << n << ".\n\n";
    md << "| parameter | lenses with \\|z\\| < 0.5 | median \\|z\\| | max \\|z\\| | median \\|z_est\\| | "
          "lenses with \\|z_est\\| < 2 | median sd ratio (est / NUTS) | range of sd ratio | median Bhattacharyya | "
          "median hist. overlap | NUTS: lenses with \\|mean - truth\\| < 2 sd "
          "|\n|---|---|---|---|---|---|---|---|---|---|---|\n";
    double pairs = 0;
    for (int j = 0; j < D; ++j) {
      std::size_t const k = std::size_t(j);
      std::vector<double> az, aze, w, bc, ov;
      int within = 0, within_est = 0, nuts_cover = 0;
      for (auto const* r : rs) {
        az.push_back(std::fabs(r->z[k]));
        aze.push_back(std::fabs(r->z_est[k]));
        within_est += std::fabs(r->z_est[k]) < 2 ? 1 : 0;
        nuts_cover += std::fabs(r->nuts_truth_z[k]) < 2 ? 1 : 0;
        w.push_back(r->width[k]);
        bc.push_back(r->bc[k]);
        ov.push_back(r->overlap[k]);
        within += std::fabs(r->z[k]) < 0.5 ? 1 : 0;
      }
      pairs += within;
      md << "| " << short_names[k] << " | " << within << " / " << n << " (" << fmt("%.0f", 100.0 * within / n)
         << " %) | " << fmt("%.2f", median(az)) << " | " << fmt("%.2f", *std::max_element(az.begin(), az.end()))
         << " | " << fmt("%.2f", median(aze)) << " | " << within_est << " / " << n << " | " << fmt("%.2f", median(w))
         << " | " << fmt("%.2f", *std::min_element(w.begin(), w.end())) << " – "
         << fmt("%.2f", *std::max_element(w.begin(), w.end())) << " | " << fmt("%.3f", median(bc)) << " | "
         << fmt("%.2f", median(ov)) << " | " << nuts_cover << " / " << n << " |\n";
    }
    md << "\nTarget (issue 17): NPE means within 0.5 NUTS-sd on >= 80 % of the lenses. (lens, parameter) pairs "
          "within 0.5: "
       << fmt("%.0f", 100.0 * pairs / (n * D)) << " %; lenses with all 7 parameters within 0.5: " << all_within << " / "
       << n << " (" << fmt("%.0f", 100.0 * all_within / n) << " %).\n\n";
    md << "Per lens (z and sd ratio: the worst parameter; PQMass between the " << est
       << " draws and the NUTS draws thinned to ~1 per effective sample, 7-D, standardised by NUTS, mean over 20 "
          "reference draws):\n\n";
    md << "| lens | max \\|z\\| (param) | sd ratio min – max | min Bhattacharyya | PQMass chi2/dof | PQMass p | NUTS "
          "R-hat / bulk ESS, 7 lens params | NUTS R-hat / ESS, all 17 | NUTS converged (all 17) | truth in NUTS "
          "(Mahalanobis^2, chi2_17) | bias / masked px | NUTS s "
          "(MAP + sampling) | "
       << est << " ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    double nuts_s = 0, est_ms = 0;
    std::vector<double> ts, es;
    for (auto const* r : rs) {
      int jw = 0;
      for (int j = 1; j < D; ++j)
        if (std::fabs(r->z[std::size_t(j)]) > std::fabs(r->z[std::size_t(jw)])) jw = j;
      Lens const* L = nullptr;
      for (auto const& l : lenses)
        if (l.index - comparison_stream == r->lens) L = &l;
      double const t = r->nuts->map_seconds + r->nuts->nuts_seconds;
      ts.push_back(t);
      es.push_back(r->est_ms);
      nuts_s += t / n;
      est_ms += r->est_ms / n;
      md << "| " << r->lens << " | " << fmt("%.2f", std::fabs(r->z[std::size_t(jw)])) << " ("
         << short_names[std::size_t(jw)] << ") | " << fmt("%.2f", *std::min_element(r->width.begin(), r->width.end()))
         << " – " << fmt("%.2f", *std::max_element(r->width.begin(), r->width.end())) << " | "
         << fmt("%.3f", *std::min_element(r->bc.begin(), r->bc.end())) << " | "
         << fmt("%.2f", r->pq_chi2 / std::max(1, r->pq_dof)) << " | " << fmt("%.2g", r->pq_p) << " | "
         << fmt("%.3f", r->lens_rhat) << " / " << fmt("%.0f", r->lens_ess) << " | " << fmt("%.3f", r->nuts->max_rhat)
         << " / " << fmt("%.0f", std::min(r->nuts->min_bulk_ess, r->nuts->min_tail_ess)) << " | "
         << (r->nuts->converged ? "yes" : "**no**") << " | " << fmt("%.1f", r->nuts->mahalanobis2) << " | "
         << (L ? fmt("%.1e", L->bias) + " / " + std::to_string(L->masked_pixels) : std::string("-")) << " | "
         << fmt("%.1f", r->nuts->map_seconds) << " + " << fmt("%.1f", r->nuts->nuts_seconds) << " | "
         << fmt("%.2f", r->est_ms) << " |\n";
    }
    md << "\nTiming: NUTS (MAP + " << (rs.empty() ? 0 : rs[0]->nuts->chains) << " chains x "
       << (rs.empty() ? 0 : rs[0]->nuts->per_chain) << " draws after warm-up) " << fmt("%.1f", nuts_s)
       << " s per lens on average (median " << fmt("%.1f", median(ts)) << " s); " << est
       << (rs.empty() || rs[0]->amortised
               ? " 1,000 draws (best of 5) "
               : " one call of " + std::to_string(o.npe_draws) + " draws (warm-up included) ")
       << fmt("%.2f", est_ms) << " ms per lens on average (median " << fmt("%.2f", median(es))
       << " ms, network pass included).\n\n";
  }
  std::ofstream(o.out + "/comparison.md") << md.str();
  std::fputs(md.str().c_str(), stdout);
  std::vector<Row> npe_rows;
  for (auto const& r : rows)
    if (r.estimator == "NPE") npe_rows.push_back(r);
  plot_zscores(o.out + "/zscores.png", npe_rows);
}

int run_comparison(Space const& space, Options const& o) {
  ::mkdir(o.out.c_str(), 0755);
  ::mkdir(o.cache.c_str(), 0755);
  LensMaker const maker(o.seed);
  NpeHandle npe(o.npe);
  std::vector<Estimator> estimators{npe_estimator(space, npe, o.seed + 11)};
  std::unique_ptr<nre_model::TrainedNre> nre;
  if (o.nre) {
    nre = std::make_unique<nre_model::TrainedNre>(nre_model::TrainedNre::load(o.nre_dir));
    estimators.push_back(nre_estimator(space, *nre, o.seed + 13));
  }
  std::vector<Lens> lenses;
  std::vector<NutsResult> nuts;
  std::vector<Row> rows;
  lenses.reserve(std::size_t(o.lenses));
  nuts.reserve(std::size_t(o.lenses));
  bool ok = true;
  for (int i = 0; i < o.lenses; ++i) {
    auto const t0 = Clock::now();
    lenses.push_back(maker.make(space, comparison_stream + std::uint64_t(o.first + i)));
    Lens const& L = lenses.back();
    std::printf("lens %d (index 2^50 + %d): theta_E %.3f, %d masked pixels (%d artefacts), bias %.2e e-/s\n", i,
                o.first + i, L.truth[0], L.masked_pixels, L.artefact_pixels, L.bias);
    std::vector<Estimate> ests;
    for (auto const& e : estimators)
      ests.push_back(e.draw(L, o.npe_draws));
    // Timing: 1,000 draws (network pass included), best of 5.
    for (std::size_t k = 0; k < estimators.size(); ++k) {
      if (!estimators[k].amortised) continue;
      ests[k].seconds = HUGE_VAL;
      for (int rep = 0; rep < 5; ++rep)
        ests[k].seconds = std::min(ests[k].seconds, estimators[k].draw(L, 1000).seconds);
    }
    auto const path = cache_path(o, L.index);
    if (file_exists(path) && !o.short_run) {
      nuts.push_back(read_cache(path));
      std::printf("  NUTS draws from %s\n", path.c_str());
    } else {
      auto const m = moments(ests[0].draws);
      nuts.push_back(run_nuts(space, L, m.mean, o));
      write_cache(path, nuts.back());
    }
    for (std::size_t k = 0; k < estimators.size(); ++k) {
      rows.push_back(compare(L, nuts.back(), estimators[k].name, ests[k]));
      rows.back().amortised = estimators[k].amortised;
      auto const& r = rows.back();
      std::printf("  %s: z =", r.estimator.c_str());
      for (double z : r.z)
        std::printf(" %+.2f", z);
      std::printf("; sd ratio =");
      for (double w : r.width)
        std::printf(" %.2f", w);
      std::printf("; PQMass p %.2g\n", r.pq_p);
    }
    std::printf("  lens done in %.1f s\n", since(t0));
    std::fflush(stdout);
  }
  for (std::size_t i = 0; i < rows.size(); ++i)
    rows[i].nuts = &nuts[i / estimators.size()];
  write_outputs(o, rows, lenses);
  if (o.short_run) {
    auto const& n0 = nuts[0];
    bool finite = true;
    for (double v : n0.draws)
      finite = finite && std::isfinite(v);
    double const bound = examples::chi2_quantile(n0.free_dim, 0.99);
    // The truth against the posterior: lr = 2 [log p(MAP) - log p(truth)]
    // in [0, chi2_d 99 % bound].  Error model: for a correctly specified
    // model with an informative image (1,000 pixels, 17 parameters) lr ->
    // chi2_d (Wilks), whatever the parametrisation; the prior and the
    // transforms' log-Jacobians change it by O(1).  Lower end 0: the MAP
    // maximises log p, so a truth above it means the optimiser failed.
    // Measured on the comparison lenses 0-23 (the MAP from the truth as a
    // start): mean 19.7, max 32.1 (chi2_17: mean 17, 99 % 33.4);
    // lens 0 23.46, and NUTS 4 x (1000 + 1000) on it puts 86 % of its draws
    // above the truth's log p (chi2_17 CDF of 23.46: 0.87).  It fails for a
    // fit with the PSF FWHM 5 % wide (37.3) or supersampling 1 or 3 instead
    // of 2 (1478, 380).
    // The Mahalanobis distances are printed, not required.  The Laplace one
    // (~164 from the MAP on this lens) is a quadratic form that log p does
    // not follow: the lens light's Sersic amp, R_sersic and n_sersic are
    // degenerate along a curved ridge (their marginal alone gives ~120; the
    // other 14 parameters' marginal ~15), and along the line from the MAP to
    // the truth log p falls by 11.7 where the Hessian (its curvature along
    // the line checked by differences to 1e-5) predicts 81.9.  Over lenses
    // 0-23 it exceeds 33.4 on 12 (34-1235), the 10 above 40 with the lens
    // light's marginal above its chi2_3 99 % bound.  The
    // distance in the draws' own covariance (31.6 -> 82.7 when only the
    // render's rounding changed) needs more than 2 x 100 unconverged draws
    // (R-hat 1.06-1.2, bulk ESS 8-30): with 4 x (1000 + 1000) it is 28.9.
    bool const covers = n0.mahalanobis2 <= bound;
    bool const lr_ok = n0.lr >= 0 && n0.lr <= bound;
    // The amortised posterior must contain the exact one: its mean within 4
    // of its own sds of the NUTS mean, and not narrower than half the NUTS sd
    // (a calibrated estimator is not more confident than the exact posterior).
    bool zs = true;
    for (auto const& r : rows)
      for (int j = 0; j < D; ++j)
        zs = zs && std::isfinite(r.z[std::size_t(j)]) && std::fabs(r.z_est[std::size_t(j)]) < 4 &&
             r.width[std::size_t(j)] > 0.5;
    std::printf(
        "short run: NUTS draws finite %s; truth: 2 [log p(MAP) - log p(truth)] %.2f in [0, chi2_%d 99 %% bound "
        "%.2f]: %s; Mahalanobis^2 (not required) in the draws' covariance %.2f (<= %.2f: %s), from the draws' mean "
        "in the Laplace covariance %.2f, from the MAP %.2f (lens light's marginal %.2f); estimators contain NUTS "
        "(|mean_est - mean_NUTS| < 4 sd_est, sd_est > 0.5 sd_NUTS): %s\n",
        finite ? "yes" : "NO", n0.lr, n0.free_dim, bound, lr_ok ? "yes" : "NO", n0.mahalanobis2, bound,
        covers ? "yes" : "no", n0.mahalanobis2_laplace, n0.mahalanobis2_map, n0.mahalanobis2_map_light,
        zs ? "yes" : "NO");
    ok = finite && zs && lr_ok;
    std::printf("short run: %s\n", ok ? "ok" : "FAILED");
  }
  return ok ? 0 : 1;
}

// ---------------------------------------------------------------------------
// VMIM: the NPE's 128 head features as a frozen summary.

// ---------------------------------------------------------------------------
// VMIM: the NPE's 128 head features as a frozen summary s(x).

// s(x) (n, 128) and the standardised labels (n, 7) of simulations
// first + [0, n) (n a multiple of 64) through the trained NPE network.
void summaries(Space const& space, NpeHandle& h, Sim const& sim, std::uint64_t first, long n, std::vector<float>& s,
               std::vector<float>& y, std::vector<float>* images = nullptr) {
  int const B = 64;
  Source src = make_source(sim, B, first, n / B, true);
  examples::ScaledSource<Source> scaled(src, h.sc.image_scale);
  s.clear(), y.clear();
  for (long b = 0; b < n / B; ++b) {
    auto const batch = scaled.next(space);
    h.net.forward(space, batch.images);
    space.fence();
    auto f = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), h.net.activation(summary_activation));
    auto hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.labels);
    if (images) {
      auto hi = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.images);
      images->insert(images->end(), hi.data(), hi.data() + hi.size());
    }
    s.insert(s.end(), f.data(), f.data() + std::size_t(B) * summary_size);
    for (int i = 0; i < B; ++i)
      for (int j = 0; j < D; ++j)
        y.push_back(hl(i, j));
  }
}

using HostTensor = Kokkos::View<Scalar****, Kokkos::LayoutRight, Kokkos::HostSpace>;
using HostLabels = Kokkos::View<Scalar**, Kokkos::LayoutRight, Kokkos::HostSpace>;

HostTensor feature_view(std::vector<float> const& s, std::vector<double> const& mu, std::vector<double> const& sd) {
  long const n = long(s.size()) / summary_size;
  HostTensor v("features", n, summary_size, 1, 1);
  for (long i = 0; i < n; ++i)
    for (int k = 0; k < summary_size; ++k)
      v(i, k, 0, 0) = Scalar((double(s[std::size_t(i * summary_size + k)]) - mu[std::size_t(k)]) / sd[std::size_t(k)]);
  return v;
}
HostLabels label_view(std::vector<float> const& y) {
  long const n = long(y.size()) / D;
  HostLabels v("labels", n, D);
  for (long i = 0; i < n; ++i)
    for (int j = 0; j < D; ++j)
      v(i, j) = y[std::size_t(i * D + j)];
  return v;
}

// Per test simulation: posterior sd (physical units) and mean of each
// parameter, and log q(truth | x), of one NeuralPosterior over inputs x.
struct Summary {
  std::vector<double> sd, mean, logq;  // (n, 7), (n, 7), (n)
};
template <class Net>
Summary summarise(Space const& space, sbi::NeuralPosterior<Net> const& npe, nn::Tensor<Scalar, Mem> const& x,
                  std::vector<double> const& truth) {
  Summary out;
  auto const mix = npe.mixtures(space, x);
  std::vector<double> m, cov;
  for (auto const& g : mix) {
    g.moments(m, cov);
    for (int j = 0; j < D; ++j) {
      out.mean.push_back(npe.mean(j) + npe.sd(j) * m[std::size_t(j)]);
      out.sd.push_back(npe.sd(j) * std::sqrt(cov[std::size_t(j * D + j)]));
    }
  }
  auto const lq = sbi::log_prob(space, npe, x, truth);
  out.logq.insert(out.logq.end(), lq.begin(), lq.end());
  return out;
}

template <class Net, std::size_t Last>
void shrink_head(Net& net) {
  auto p = net.template layer<Last>().parameters();
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p);
  for (std::size_t i = 0; i < h.size(); ++i)
    h(i) = Scalar(double(h(i)) * 0.1);
  Kokkos::deep_copy(p, h);
}

template <class Net, class Train, class Val>
double train_mdn(Space const& space, Net& net, int k, Train& train, Val& val, Options const& o, char const* what) {
  nn::Adam<Scalar, Mem> opt(net.num_params(), 2e-3);
  sbi::MDNFullLoss const loss(k);
  nn::FitOptions fo;
  fo.epochs = o.vmim_epochs;
  fo.clip_grad_norm = 5.0;
  fo.log_every = 0;
  fo.schedule = nn::LRSchedule::cosine(2e-3, o.vmim_epochs, 1, 2e-3 * 0.02);
  auto const t0 = Clock::now();
  auto const h = nn::fit(space, net, opt, loss, train, val, fo);
  std::printf("  %s: %ld steps in %.1f s; loss %.3f -> %.3f, val %.3f (best %.3f)\n", what, h.steps, since(t0),
              h.loss.front(), h.loss.back(), h.val_loss.back(), h.best_metric);
  return h.best_metric;
}

int run_vmim(Space const& space, Options const& o) {
  ::mkdir(o.out.c_str(), 0755);
  auto const t_all = Clock::now();
  NpeHandle h(o.npe);
  int const K = h.sc.components, B = 64;
  Sim const sim = make_simulator(o.seed, B);
  long const ntr = o.vmim_train / B * B, nva = 1024, nte = o.vmim_test / B * B;
  std::vector<float> s_tr, y_tr, s_va, y_va, s_te, y_te, x_te;
  auto t0 = Clock::now();
  // Training and validation simulations on fresh streams, the test set on
  // the calibration stream of npe_lens (never trained on).
  summaries(space, h, sim, comparison_stream + (std::uint64_t(1) << 40), ntr, s_tr, y_tr);
  summaries(space, h, sim, comparison_stream + (std::uint64_t(1) << 41), nva, s_va, y_va);
  summaries(space, h, sim, calibration_stream, nte, s_te, y_te, &x_te);
  std::printf("vmim: summaries s(x) (128 features feeding the NPE head) of %ld + %ld + %ld simulations in %.1f s\n",
              ntr, nva, nte, since(t0));
  // Standardise the features by the training set (a constant feature keeps sd 1).
  std::vector<double> mu(summary_size, 0.0), sd(summary_size, 0.0);
  for (long i = 0; i < ntr; ++i)
    for (int k = 0; k < summary_size; ++k)
      mu[std::size_t(k)] += s_tr[std::size_t(i * summary_size + k)] / double(ntr);
  for (long i = 0; i < ntr; ++i)
    for (int k = 0; k < summary_size; ++k) {
      double const t = s_tr[std::size_t(i * summary_size + k)] - mu[std::size_t(k)];
      sd[std::size_t(k)] += t * t / double(ntr);
    }
  int dead = 0;
  for (auto& v : sd) {
    v = std::sqrt(v);
    if (!(v > 1e-6)) v = 1, ++dead;
  }
  std::printf("vmim: %d of 128 features constant on the training set (dead ReLUs)\n", dead);
  auto const ftr = feature_view(s_tr, mu, sd), fva = feature_view(s_va, mu, sd), fte = feature_view(s_te, mu, sd);
  auto const ltr = label_view(y_tr), lva = label_view(y_va);
  simulate::ArraySourceOptions ao;
  ao.batch_size = B;
  ao.seed = o.seed;
  simulate::ArraySource<Scalar, Mem> train(ftr, ltr, ao);
  ao.shuffle = false;
  simulate::ArraySource<Scalar, Mem> val(fva, lva, ao);
  int const outs = int(sbi::mdn_full_outputs(K, D));
  // (a) an MDN on all 128 features; (b) through a 7-number linear bottleneck.
  auto wide = nn::make_sequential(nn::Shape4{B, summary_size, 1, 1}, nn::Dense<Scalar, Mem>(summary_size, 64),
                                  nn::ReLU<Scalar, Mem>(), nn::Dense<Scalar, Mem>(64, outs));
  auto narrow =
      nn::make_sequential(nn::Shape4{B, summary_size, 1, 1}, nn::Dense<Scalar, Mem>(summary_size, D),
                          nn::Dense<Scalar, Mem>(D, 64), nn::ReLU<Scalar, Mem>(), nn::Dense<Scalar, Mem>(64, outs));
  wide.initialize(o.seed + 1);
  narrow.initialize(o.seed + 2);
  shrink_head<decltype(wide), 2>(wide);
  shrink_head<decltype(narrow), 3>(narrow);
  train_mdn(space, wide, K, train, val, o, "MDN on s(x) (128 -> 64 -> mixture)");
  train.reset();
  train_mdn(space, narrow, K, train, val, o, "MDN on a 7-number bottleneck of s(x) (128 -> 7 -> 64 -> mixture)");
  wide.set_training(false);
  narrow.set_training(false);
  // Held-out comparison.
  std::vector<double> truth;
  for (long i = 0; i < nte; ++i)
    for (int j = 0; j < D; ++j)
      truth.push_back(h.sc.mean[std::size_t(j)] + h.sc.sd[std::size_t(j)] * double(y_te[std::size_t(i * D + j)]));
  nn::Tensor<Scalar, Mem> xi("xi", nte, 1, image_size, image_size), xs("xs", nte, summary_size, 1, 1);
  {
    auto hx = Kokkos::create_mirror_view(xi);
    std::copy(x_te.begin(), x_te.end(), hx.data());
    Kokkos::deep_copy(xi, hx);
    Kokkos::deep_copy(xs, fte);
  }
  sbi::NeuralPosterior<Network> full(h.net, K, h.sc.mean, h.sc.sd);
  sbi::NeuralPosterior<decltype(wide)> pw(wide, K, h.sc.mean, h.sc.sd);
  sbi::NeuralPosterior<decltype(narrow)> pn(narrow, K, h.sc.mean, h.sc.sd);
  auto const sf = summarise(space, full, xi, truth), sw = summarise(space, pw, xs, truth),
             sn = summarise(space, pn, xs, truth);
  std::ostringstream md;
  md << "Held-out simulations: " << nte << " (calibration stream 2^49 of npe_lens); summary MDNs trained on " << ntr
     << " simulations (stream 2^50 + 2^40), " << o.vmim_epochs << " epochs, K = " << K << ".\n\n";
  md << "| parameter | mean sd, full NPE | sd ratio: MDN on s(x) (128) / full | sd ratio: 7-number bottleneck / full "
        "| RMS(mean - truth): full | MDN on s(x) | bottleneck |\n|---|---|---|---|---|---|---|\n";
  for (int j = 0; j < D; ++j) {
    double f = 0, rw = 0, rn = 0, ef = 0, ew = 0, en = 0;
    for (long i = 0; i < nte; ++i) {
      std::size_t const k = std::size_t(i * D + j);
      f += sf.sd[k] / double(nte);
      rw += sw.sd[k] / sf.sd[k] / double(nte);
      rn += sn.sd[k] / sf.sd[k] / double(nte);
      ef += (sf.mean[k] - truth[k]) * (sf.mean[k] - truth[k]) / double(nte);
      ew += (sw.mean[k] - truth[k]) * (sw.mean[k] - truth[k]) / double(nte);
      en += (sn.mean[k] - truth[k]) * (sn.mean[k] - truth[k]) / double(nte);
    }
    md << "| " << short_names[std::size_t(j)] << " | " << fmt("%.4f", f) << " | " << fmt("%.3f", rw) << " | "
       << fmt("%.3f", rn) << " | " << fmt("%.4f", std::sqrt(ef)) << " | " << fmt("%.4f", std::sqrt(ew)) << " | "
       << fmt("%.4f", std::sqrt(en)) << " |\n";
  }
  double lf = 0, lw = 0, ln = 0;
  for (long i = 0; i < nte; ++i)
    lf += sf.logq[std::size_t(i)] / double(nte), lw += sw.logq[std::size_t(i)] / double(nte),
        ln += sn.logq[std::size_t(i)] / double(nte);
  md << "\nMean log q(truth | x) (the VMIM objective; higher keeps more information): full NPE " << fmt("%.3f", lf)
     << ", MDN on s(x) " << fmt("%.3f", lw) << ", 7-number bottleneck " << fmt("%.3f", ln) << " (nats).\n\n"
     << "Wall time " << fmt("%.1f", since(t_all)) << " s.\n";
  std::ofstream(o.out + "/vmim.md") << md.str();
  std::fputs(md.str().c_str(), stdout);
  bool const finite = std::isfinite(lf) && std::isfinite(lw) && std::isfinite(ln);
  return finite ? 0 : 1;
}

// ---------------------------------------------------------------------------
// Truncated sequential NPE per lens (sbi/sequential.hpp) against the NUTS
// results of comparison.csv.

// The NUTS side of one lens, as comparison.csv holds it (the NPE rows).
struct NutsMoments {
  std::vector<double> truth, mean, sd;
  int converged = 0;
  double max_rhat = 0, min_ess = 0;
};

std::vector<std::string> split_csv(std::string const& line) {
  std::vector<std::string> f;
  std::string cur;
  std::istringstream in(line);
  while (std::getline(in, cur, ','))
    f.push_back(cur);
  return f;
}

// comparison.csv's NUTS columns per lens (rows of estimator NPE).
std::map<long, NutsMoments> read_nuts_csv(std::string const& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open '" + path + "'");
  std::string line;
  std::getline(f, line);
  if (line.rfind("lens,estimator,parameter,truth,nuts_mean,nuts_sd,", 0) != 0)
    throw std::runtime_error("'" + path + "': not a comparison.csv (header)");
  std::map<long, NutsMoments> out;
  while (std::getline(f, line)) {
    auto const c = split_csv(line);
    if (c.size() != 20) throw std::runtime_error("'" + path + "': bad line '" + line + "'");
    if (c[1] != "NPE") continue;
    auto& m = out[std::stol(c[0])];
    int j = -1;
    for (int k = 0; k < D; ++k)
      if (short_names[std::size_t(k)] == c[2]) j = k;
    if (j != int(m.mean.size())) throw std::runtime_error("'" + path + "': parameters out of order at '" + line + "'");
    m.truth.push_back(std::stod(c[3]));
    m.mean.push_back(std::stod(c[4]));
    m.sd.push_back(std::stod(c[5]));
    m.converged = std::stoi(c[17]);
    m.max_rhat = std::stod(c[18]);
    m.min_ess = std::stod(c[19]);
  }
  return out;
}

// One estimator's row against the NUTS moments; the histogram overlap and
// PQMass need the NUTS draws (from the cache; NaN without).
Row sequential_row(Lens const& L, NutsMoments const& nm, NutsResult const* nuts, std::string const& name,
                   std::vector<double> const& draws) {
  Estimate e;
  e.draws = draws;
  Row r;
  if (nuts != nullptr) {
    r = compare(L, *nuts, name, e);
  } else {
    r.lens = L.index - comparison_stream;
    r.estimator = name;
    r.truth = L.truth;
    auto const me = moments(draws);
    r.est_mean = me.mean, r.est_sd = me.sd;
    r.overlap.assign(D, NAN);
    r.pq_chi2 = NAN, r.pq_p = NAN;
  }
  // The NUTS moments of comparison.csv (the cache's draws give the same to
  // its 6 printed digits).
  r.nuts_mean = nm.mean, r.nuts_sd = nm.sd;
  r.z.clear(), r.z_est.clear(), r.width.clear(), r.bc.clear(), r.nuts_truth_z.clear();
  for (int j = 0; j < D; ++j) {
    std::size_t const k = std::size_t(j);
    double const s1 = nm.sd[k], s2 = r.est_sd[k], dm = r.est_mean[k] - nm.mean[k];
    r.z.push_back(dm / s1);
    r.z_est.push_back(dm / s2);
    r.width.push_back(s2 / s1);
    r.bc.push_back(std::sqrt(2 * s1 * s2 / (s1 * s1 + s2 * s2)) * std::exp(-dm * dm / (4 * (s1 * s1 + s2 * s2))));
    r.nuts_truth_z.push_back((nm.mean[k] - L.truth[k]) / s1);
  }
  return r;
}

std::string csv_line(Row const& r, NutsMoments const& nm, int j) {
  std::ostringstream f;
  f.precision(6);
  std::size_t const k = std::size_t(j);
  f << r.lens << "," << r.estimator << "," << short_names[k] << "," << r.truth[k] << "," << r.nuts_mean[k] << ","
    << r.nuts_sd[k] << "," << r.est_mean[k] << "," << r.est_sd[k] << "," << r.z[k] << "," << r.z_est[k] << ","
    << r.width[k] << "," << r.bc[k] << "," << r.overlap[k] << "," << r.nuts_truth_z[k] << "," << r.pq_chi2 << ","
    << r.pq_dof << "," << r.pq_p << "," << nm.converged << "," << nm.max_rhat << "," << nm.min_ess << "\n";
  return f.str();
}

// sequential.md from sequential.csv (all lenses done so far) and
// sequential_cost.csv: per round, the table of comparison.md's first
// columns, then the per-lens cost.
void write_sequential_md(Options const& o) {
  std::ifstream f(o.out + "/sequential.csv");
  std::string line;
  std::getline(f, line);
  struct Rec {
    long lens;
    std::string est;
    int j;
    double z, z_est, w, bc, ov;
  };
  std::vector<Rec> recs;
  std::vector<std::string> ests;
  while (std::getline(f, line)) {
    auto const c = split_csv(line);
    if (c.size() != 20) continue;
    Rec r{std::stol(c[0]), c[1], 0, std::stod(c[8]), std::stod(c[9]), std::stod(c[10]), std::stod(c[11]),
          std::stod(c[12])};
    for (int k = 0; k < D; ++k)
      if (short_names[std::size_t(k)] == c[2]) r.j = k;
    if (std::find(ests.begin(), ests.end(), r.est) == ests.end()) ests.push_back(r.est);
    recs.push_back(r);
  }
  std::ostringstream md;
  md << "# Truncated sequential NPE (TSNPE) vs NUTS\n\n";
  md << "Rounds of `sbi::sequential_npe` per lens from the amortised NPE's weights (round 0 = the amortised NPE on "
        "the prior's support); NUTS moments from `"
     << o.nuts_csv << "`. " << o.seq_sims << " new simulations per round, " << o.seq_epochs
     << " fine-tuning epochs (early-stopping patience " << o.seq_patience << "), Adam " << o.seq_lr << ".\n\n";
  for (auto const& est : ests) {
    std::vector<long> lenses;
    for (auto const& r : recs)
      if (r.est == est && std::find(lenses.begin(), lenses.end(), r.lens) == lenses.end()) lenses.push_back(r.lens);
    int const n = int(lenses.size());
    md << "## " << est << ": " << n << " lenses\n\n";
    md << "| parameter | lenses with \\|z\\| < 0.5 | median \\|z\\| | max \\|z\\| | median \\|z_est\\| | lenses "
          "with \\|z_est\\| < 2 | median sd ratio (est / NUTS) | range of sd ratio | median Bhattacharyya | median "
          "hist. overlap |\n|---|---|---|---|---|---|---|---|---|---|\n";
    int pairs = 0;
    std::map<long, int> lens_ok;
    for (int j = 0; j < D; ++j) {
      std::vector<double> az, aze, w, bc, ov;
      int within = 0, within_est = 0;
      for (auto const& r : recs) {
        if (r.est != est || r.j != j) continue;
        az.push_back(std::fabs(r.z));
        aze.push_back(std::fabs(r.z_est));
        w.push_back(r.w);
        bc.push_back(r.bc);
        if (std::isfinite(r.ov)) ov.push_back(r.ov);
        within += std::fabs(r.z) < 0.5 ? 1 : 0;
        within_est += std::fabs(r.z_est) < 2 ? 1 : 0;
        lens_ok[r.lens] += std::fabs(r.z) < 0.5 ? 1 : 0;
      }
      pairs += within;
      md << "| " << short_names[std::size_t(j)] << " | " << within << " / " << n << " | " << fmt("%.2f", median(az))
         << " | " << fmt("%.2f", *std::max_element(az.begin(), az.end())) << " | " << fmt("%.2f", median(aze)) << " | "
         << within_est << " / " << n << " | " << fmt("%.2f", median(w)) << " | "
         << fmt("%.2f", *std::min_element(w.begin(), w.end())) << " – "
         << fmt("%.2f", *std::max_element(w.begin(), w.end())) << " | " << fmt("%.3f", median(bc)) << " | "
         << (ov.empty() ? std::string("-") : fmt("%.2f", median(ov))) << " |\n";
    }
    int all7 = 0;
    for (auto const& kv : lens_ok)
      all7 += kv.second == D ? 1 : 0;
    md << "\n(lens, parameter) pairs within 0.5 NUTS sd: " << pairs << " / " << n * D << " ("
       << fmt("%.0f", 100.0 * pairs / std::max(1, n * D)) << " %); lenses with all 7 within 0.5: " << all7 << " / " << n
       << " (target: >= 80 % of the lenses).\n\n";
  }
  std::ifstream fc(o.out + "/sequential_cost.csv");
  md << "## Cost per lens (1 thread)\n\n| lens | rounds | new simulations | training set (last round) | CPU s | "
        "wall s | of which simulating s | training s |\n|---|---|---|---|---|---|---|---|\n";
  std::getline(fc, line);
  double cpu = 0;
  int nl = 0;
  while (std::getline(fc, line)) {
    auto const c = split_csv(line);
    if (c.size() != 8) continue;
    md << "| " << c[0] << " | " << c[1] << " | " << c[2] << " | " << c[3] << " | " << c[4] << " | " << c[5] << " | "
       << c[6] << " | " << c[7] << " |\n";
    cpu += std::stod(c[4]);
    ++nl;
  }
  md << "\nMean CPU per lens: " << fmt("%.1f", cpu / std::max(1, nl))
     << " s (not amortised: every lens simulates and trains afresh).\n";
  std::ofstream(o.out + "/sequential.md") << md.str();
  std::fputs(md.str().c_str(), stdout);
}

int run_sequential(Space const& space, Options const& o) {
  ::mkdir(o.out.c_str(), 0755);
  auto const nuts_csv = read_nuts_csv(o.nuts_csv);
  LensMaker const maker(o.seed);
  std::string const csv = o.out + "/sequential.csv", cost = o.out + "/sequential_cost.csv";
  // Resume: lenses already in sequential.csv are skipped.
  std::vector<long> done;
  if (file_exists(csv) && !o.short_run) {
    std::ifstream f(csv);
    std::string line;
    std::getline(f, line);
    while (std::getline(f, line))
      if (!line.empty()) done.push_back(std::stol(line.substr(0, line.find(','))));
  } else {
    std::ofstream(csv) << "lens,estimator,parameter,truth,nuts_mean,nuts_sd,est_mean,est_sd,z,z_est,width_ratio,"
                          "bhattacharyya,hist_overlap,nuts_truth_z,pqmass_chi2,pqmass_dof,pqmass_p,nuts_converged,"
                          "nuts_max_rhat,nuts_min_ess\n";
    std::ofstream(cost) << "lens,rounds,simulations,trained_last,cpu_s,wall_s,simulate_s,train_s\n";
  }
  auto const base_table = simulate::galaxy_galaxy_priors<Scalar, Mem>();
  bool ok = true;
  for (int i = 0; i < o.lenses; ++i) {
    long const li = o.first + i;
    if (std::find(done.begin(), done.end(), li) != done.end()) {
      std::printf("lens %ld: in %s, skipped\n", li, csv.c_str());
      continue;
    }
    auto const it = nuts_csv.find(li);
    if (it == nuts_csv.end() || it->second.mean.size() != std::size_t(D))
      throw std::runtime_error("lens " + std::to_string(li) + " is not in '" + o.nuts_csv + "'");
    NutsMoments const& nm = it->second;
    Lens const L = maker.make(space, comparison_stream + std::uint64_t(li));
    for (int j = 0; j < D; ++j)
      if (std::fabs(L.truth[std::size_t(j)] - nm.truth[std::size_t(j)]) >
          1e-4 * (1 + std::fabs(nm.truth[std::size_t(j)])))
        throw std::runtime_error("lens " + std::to_string(li) + ": the truth differs from '" + o.nuts_csv +
                                 "' (another seed or simulator?)");
    std::unique_ptr<NutsResult> nuts;
    if (file_exists(cache_path(o, L.index))) nuts = std::make_unique<NutsResult>(read_cache(cache_path(o, L.index)));
    auto const c0 = std::clock();
    auto const t0 = Clock::now();
    NpeHandle h(o.npe);  // the amortised weights, afresh for every lens
    sbi::NeuralPosterior<Network> npe(h.net, h.sc.components, h.sc.mean, h.sc.sd);
    auto const x = image_tensor(L, h.sc.image_scale);
    int const B = 64;
    auto const simulate_box = [&](sbi::Box const& box, long n, int round) {
      Sim const sim = make_simulator_with(sbi::truncate_table(base_table, label_names, box), o.seed, B);
      std::vector<int> cols;
      for (auto const& name : label_names)
        cols.push_back(sim.table().find(name));
      int const K = sim.num_labels(), np = image_size * image_size;
      lensing::View3D<Scalar, Mem> img("img", B, image_size, image_size);
      lensing::View2D<Scalar, Mem> lab("lab", B, K);
      sbi::SimulationSet<Scalar> set;
      set.n = n;
      set.shape = {1, image_size, image_size};
      // Streams 2^51 + lens 2^32 + round 2^26 + [0, n): used by no other run.
      std::uint64_t const first = (std::uint64_t(1) << 51) + (std::uint64_t(li) << 32) + (std::uint64_t(round) << 26);
      double const inv = 1.0 / h.sc.image_scale;
      for (long b0 = 0; b0 < n; b0 += B) {
        sim.generate(space, first + std::uint64_t(b0), img, lab);
        space.fence();
        auto hi = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), img);
        auto hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lab);
        for (long b = 0; b < B && b0 + b < n; ++b) {
          for (int p = 0; p < np; ++p)
            set.images.push_back(Scalar(double(hi.data()[b * np + p]) * inv));
          for (int c : cols)
            set.theta.push_back(double(hl(b, c)));
        }
      }
      return set;
    };
    sbi::SequentialOptions so;
    so.rounds = o.sequential;
    so.simulations = o.seq_sims;
    so.epochs = o.seq_epochs;
    so.lr = o.seq_lr;
    so.patience = o.seq_patience;
    so.batch = B;
    so.report_draws = o.npe_draws;
    so.seed = o.seed + std::uint64_t(li);
    so.log = o.short_run ? nullptr : &std::cout;
    sbi::MixtureHead<Scalar, Mem> head{h.net.parameters(output_layer), summary_size};
    auto const support = sbi::prior_support(base_table, label_names);
    auto const rounds = sbi::sequential_npe(space, npe, x, support, head, simulate_box, so);
    double const cpu = double(std::clock() - c0) / CLOCKS_PER_SEC, wall = since(t0);
    double sim_s = 0, train_s = 0;
    long sims = 0;
    std::ofstream fcsv(csv, std::ios::app);
    std::printf("lens %ld (theta_E %.3f):\n", li, L.truth[0]);
    std::vector<Row> rows;
    for (auto const& r : rounds) {
      sim_s += r.simulate_seconds, train_s += r.train_seconds, sims += r.simulated;
      rows.push_back(sequential_row(L, nm, nuts.get(), "TSNPE-r" + std::to_string(r.round), r.draws));
      auto const& row = rows.back();
      int within = 0;
      for (int j = 0; j < D; ++j)
        within += std::fabs(row.z[std::size_t(j)]) < 0.5 ? 1 : 0;
      std::printf("  round %d: %d / 7 within 0.5 NUTS sd; z =", r.round, within);
      for (double z : row.z)
        std::printf(" %+.2f", z);
      std::printf("; sd ratio =");
      for (double w : row.width)
        std::printf(" %.2f", w);
      std::printf("\n");
      for (int j = 0; j < D; ++j)
        fcsv << csv_line(row, nm, j);
    }
    fcsv.close();
    std::ofstream(cost, std::ios::app) << li << "," << o.sequential << "," << sims << "," << rounds.back().trained_on
                                       << "," << fmt("%.1f", cpu) << "," << fmt("%.1f", wall) << ","
                                       << fmt("%.1f", sim_s) << "," << fmt("%.1f", train_s) << "\n";
    std::printf("  lens done: %ld simulations, %.1f s CPU, %.1f s wall (simulating %.1f s, training %.1f s)\n", sims,
                cpu, wall, sim_s, train_s);
    std::fflush(stdout);
    if (o.short_run) {
      // The short check: the last round is narrower than the amortised start
      // (the geometric mean of the 7 sd ratios below 0.95; two rounds of
      // 1,024 simulations x 2 epochs gave 0.88, a round that learns nothing
      // ~1) and still holds the exact posterior's mean and the truth within
      // 4 of its own sds.
      auto const& r0 = rows.front();
      auto const& rl = rows.back();
      bool covers = true;
      double log_ratio = 0;
      for (int j = 0; j < D; ++j) {
        std::size_t const k = std::size_t(j);
        log_ratio += std::log(rl.est_sd[k] / r0.est_sd[k]) / D;
        covers = covers && std::fabs(rl.z_est[k]) < 4 && std::fabs(rl.est_mean[k] - L.truth[k]) < 4 * rl.est_sd[k];
      }
      bool const narrower = std::exp(log_ratio) < 0.95;
      std::printf(
          "short run: last round / amortised sd, geometric mean over the 7: %.3f (< 0.95: %s); covers the "
          "NUTS mean and the truth (4 sd): %s\n",
          std::exp(log_ratio), narrower ? "yes" : "NO", covers ? "yes" : "NO");
      ok = ok && narrower && covers;
    }
  }
  write_sequential_md(o);
  if (o.short_run) std::printf("short run: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

// ---------------------------------------------------------------------------
// --budget-study: the TSNPE's width ratio to NUTS against the simulation
// budget, from the sequential.csv / sequential_cost.csv of several runs.

// Share of (lens, parameter) pairs within 0.5 NUTS sd that a calibrated
// estimator with width ratio w gives: a posterior from less information
// than the exact one has its mean scattered about the exact mean with
// variance sd_q^2 - sd_NUTS^2 (law of total variance), so z ~ N(0, w^2 - 1)
// and P(|z| < 0.5) = erf(0.5 / sqrt(2 (w^2 - 1))).
double within_half_calibrated(double w) {
  double const v = w * w - 1;
  return v <= 0 ? 1.0 : std::erf(0.5 / std::sqrt(2 * v));
}

// The w at which within_half_calibrated(w) = p (decreasing in w; bisection).
double width_for_within(double p) {
  double lo = 1, hi = 1000;
  for (int it = 0; it < 200; ++it) {
    double const m = 0.5 * (lo + hi);
    (within_half_calibrated(m) > p ? lo : hi) = m;
  }
  return 0.5 * (lo + hi);
}

struct BudgetPoint {
  std::size_t entry;
  long lens;
  int round;
  double sims;             // cumulative new simulations after the round
  double w_median, w_geo;  // over the 7 parameters
  int within;              // parameters with |z| < 0.5
  double predicted;        // sum over the 7 of within_half_calibrated(w_j)
};

// log y = a - bR log R - bn log n, y = w or w - 1, after R rounds of n new
// simulations each.
struct PowerFit {
  double a = NAN, bR = NAN, bn = NAN;
  double at(double R, double n) const {
    return std::exp(a - bR * std::log(R) - (std::isfinite(bn) ? bn : 0.0) * std::log(n));
  }
  // More rounds of n: the simulations R n at which y is reached.
  double by_rounds(double y, double n) const {
    if (!(bR > 0)) return INFINITY;
    return n * std::exp((a - (std::isfinite(bn) ? bn : 0.0) * std::log(n) - std::log(y)) / bR);
  }
  // R rounds of more simulations each: the simulations R n at which y is reached.
  double by_sims(double y, double R) const {
    if (!(bn > 0)) return INFINITY;
    return R * std::exp((a - bR * std::log(R) - std::log(y)) / bn);
  }
};

// Least squares of log y on log R and log n with one intercept per lens
// (the lenses' widths differ by factors of a few at any budget; a pooled
// intercept would let the lens mix of each run bias the exponents); the
// reported intercept is the median lens's.  Only one n among the points:
// bn = NaN and log R alone.
PowerFit fit_power(std::vector<BudgetPoint const*> const& pts, bool minus_one) {
  struct Q {
    double r, n, y;
  };
  std::map<long, std::vector<Q>> by_lens;
  for (auto const* p : pts) {
    double const y = minus_one ? p->w_median - 1 : p->w_median;
    if (y > 1e-3) by_lens[p->lens].push_back({std::log(double(p->round)), std::log(p->sims / p->round), std::log(y)});
  }
  double s11 = 0, s12 = 0, s22 = 0, s1y = 0, s2y = 0;
  std::vector<Q> means;
  for (auto const& kv : by_lens) {
    Q m{0, 0, 0};
    double const k = double(kv.second.size());
    for (auto const& q : kv.second)
      m.r += q.r / k, m.n += q.n / k, m.y += q.y / k;
    for (auto const& q : kv.second) {
      double const dr = q.r - m.r, dn = q.n - m.n, dy = q.y - m.y;
      s11 += dr * dr, s12 += dr * dn, s22 += dn * dn, s1y += dr * dy, s2y += dn * dy;
    }
    means.push_back(m);
  }
  PowerFit f;
  if (!(s11 > 0)) return f;
  double const det = s11 * s22 - s12 * s12;
  if (s22 > 1e-9 * s11 && det > 1e-9 * s11 * s22) {
    f.bR = -(s22 * s1y - s12 * s2y) / det;
    f.bn = -(s11 * s2y - s12 * s1y) / det;
  } else {
    f.bR = -s1y / s11;
  }
  std::vector<double> a;
  for (auto const& m : means)
    a.push_back(m.y + f.bR * m.r + (std::isfinite(f.bn) ? f.bn : 0.0) * m.n);
  f.a = median(a);
  return f;
}

double quantile(std::vector<double> v, double q) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  double const t = q * double(v.size() - 1);
  std::size_t const i = std::size_t(t);
  return i + 1 < v.size() ? v[i] + (t - double(i)) * (v[i + 1] - v[i]) : v.back();
}

int run_budget_study(Options const& o) {
  ::mkdir(o.out.c_str(), 0755);
  auto const& entries = o.budget;
  std::vector<BudgetPoint> pts;
  std::vector<std::map<long, std::pair<double, double>>> cost(entries.size());  // lens -> (cpu s, simulations)
  std::vector<std::vector<long>> lens_sets(entries.size());
  for (std::size_t e = 0; e < entries.size(); ++e) {
    std::string const path = entries[e].dir + "/sequential.csv";
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot open '" + path + "'");
    std::string line;
    std::getline(f, line);
    if (line.rfind("lens,estimator,parameter,", 0) != 0)
      throw std::runtime_error("'" + path + "': not a sequential.csv (header)");
    std::map<std::pair<long, int>, std::vector<std::pair<double, double>>> rows;  // (lens, round) -> (w, z)
    while (std::getline(f, line)) {
      auto const c = split_csv(line);
      if (c.size() != 20 || c[1].rfind("TSNPE-r", 0) != 0) continue;
      rows[{std::stol(c[0]), std::stoi(c[1].substr(7))}].push_back({std::stod(c[10]), std::stod(c[8])});
    }
    for (auto const& kv : rows) {
      if (kv.second.size() != std::size_t(D))
        throw std::runtime_error("'" + path + "': lens " + std::to_string(kv.first.first) + " round " +
                                 std::to_string(kv.first.second) + " has " + std::to_string(kv.second.size()) +
                                 " parameters");
      BudgetPoint p{e, kv.first.first, kv.first.second, double(kv.first.second) * double(entries[e].sims), 0, 0, 0, 0};
      std::vector<double> w;
      double lg = 0;
      for (auto const& wz : kv.second) {
        w.push_back(wz.first);
        lg += std::log(wz.first) / D;
        p.within += std::fabs(wz.second) < 0.5 ? 1 : 0;
        p.predicted += within_half_calibrated(wz.first);
      }
      p.w_median = median(w), p.w_geo = std::exp(lg);
      pts.push_back(p);
      if (std::find(lens_sets[e].begin(), lens_sets[e].end(), p.lens) == lens_sets[e].end())
        lens_sets[e].push_back(p.lens);
    }
    std::ifstream fc(entries[e].dir + "/sequential_cost.csv");
    std::getline(fc, line);
    while (std::getline(fc, line)) {
      auto const c = split_csv(line);
      if (c.size() == 8) cost[e][std::stol(c[0])] = {std::stod(c[4]), std::stod(c[2])};
    }
  }
  // The lenses every run has, or with --lenses: [first, first + lenses)
  // (a run missing some of them contributes the others).
  std::vector<long> lenses;
  if (o.lenses_given) {
    for (long l = o.first; l < o.first + o.lenses; ++l)
      for (auto const& s : lens_sets)
        if (std::find(s.begin(), s.end(), l) != s.end() && std::find(lenses.begin(), lenses.end(), l) == lenses.end())
          lenses.push_back(l);
  } else {
    lenses = lens_sets.front();
    for (auto const& s : lens_sets)
      lenses.erase(std::remove_if(lenses.begin(), lenses.end(),
                                  [&](long l) { return std::find(s.begin(), s.end(), l) == s.end(); }),
                   lenses.end());
  }
  std::sort(lenses.begin(), lenses.end());
  if (lenses.empty()) throw std::runtime_error("--budget-study: no lens is in every run");
  auto const in_study = [&](BudgetPoint const& p) {
    return std::find(lenses.begin(), lenses.end(), p.lens) != lenses.end();
  };
  auto const fit_points = [&](std::vector<long> const& ls) {
    std::vector<BudgetPoint const*> v;
    for (long l : ls)
      for (auto const& p : pts)
        if (p.lens == l && p.round >= 1 && entries[p.entry].fit) v.push_back(&p);
    return v;
  };
  PowerFit const fw = fit_power(fit_points(lenses), false), fw1 = fit_power(fit_points(lenses), true);
  // Targets: w = 1.2; the w at which a calibrated estimator has 80 % of the
  // pairs within 0.5 NUTS sd; the w at which 80 % of the lenses have all 7.
  double const w_pairs = width_for_within(0.8), w_lens = width_for_within(std::pow(0.8, 1.0 / D));
  std::vector<double> const targets{1.2, w_pairs, w_lens};
  // The two ways to spend more: more rounds of the smallest fitted n, or
  // R0 = 4 rounds of more simulations each.
  long n0 = 0;
  for (auto const& e : entries)
    if (e.fit && (n0 == 0 || e.sims < n0)) n0 = e.sims;
  double const R0 = 4;
  // Bootstrap over lenses (the rounds of one lens are not independent).
  std::mt19937_64 rng(o.seed);
  int const nboot = 2000;
  std::vector<double> bR, bn, bR1, bn1;
  std::vector<std::vector<double>> nr(targets.size()), ns(targets.size()), nr1(targets.size()), ns1(targets.size());
  for (int k = 0; k < nboot; ++k) {
    std::vector<long> ls;
    for (std::size_t i = 0; i < lenses.size(); ++i)
      ls.push_back(lenses[std::size_t(rng() % lenses.size())]);
    auto const v = fit_points(ls);
    PowerFit const a = fit_power(v, false), b = fit_power(v, true);
    bR.push_back(a.bR), bn.push_back(a.bn), bR1.push_back(b.bR), bn1.push_back(b.bn);
    for (std::size_t t = 0; t < targets.size(); ++t) {
      nr[t].push_back(a.by_rounds(targets[t], double(n0)));
      ns[t].push_back(a.by_sims(targets[t], R0));
      nr1[t].push_back(b.by_rounds(targets[t] - 1, double(n0)));
      ns1[t].push_back(b.by_sims(targets[t] - 1, R0));
    }
  }
  // CPU per simulation (simulating + fine-tuning), 1 thread, per run.
  std::vector<double> cpu_per_sim(entries.size(), NAN);
  for (std::size_t e = 0; e < entries.size(); ++e) {
    double c = 0, s = 0;
    for (long l : lenses)
      if (cost[e].count(l)) c += cost[e][l].first, s += cost[e][l].second;
    if (s > 0) cpu_per_sim[e] = c / s;
  }
  // The largest over the fitted runs: more rounds reuse more simulations
  // inside the box, so the training set, and the CPU per new simulation,
  // grow with the rounds.
  double cps = NAN;
  for (std::size_t e = 0; e < entries.size(); ++e)
    if (entries[e].fit && std::isfinite(cpu_per_sim[e]) && !(cpu_per_sim[e] <= cps)) cps = cpu_per_sim[e];

  {
    std::ofstream f(o.out + "/budget.csv");
    f << "run,sims_per_round,fitted,lens,round,cumulative_sims,median_width_ratio,geomean_width_ratio,within_0.5,"
         "predicted_within_0.5\n";
    for (auto const& p : pts)
      if (in_study(p))
        f << entries[p.entry].label << "," << entries[p.entry].sims << "," << int(entries[p.entry].fit) << "," << p.lens
          << "," << p.round << "," << long(p.sims) << "," << fmt("%.4f", p.w_median) << "," << fmt("%.4f", p.w_geo)
          << "," << p.within << "," << fmt("%.3f", p.predicted) << "\n";
  }
  std::ostringstream md;
  md << "# TSNPE accuracy vs simulation budget\n\n" << (o.lenses_given ? "Lenses: " : "Lenses in every run: ");
  for (std::size_t i = 0; i < lenses.size(); ++i)
    md << (i ? ", " : "") << lenses[i];
  md << ". Per run and round: the median over the lenses of the per-lens median (over the 7 parameters) of "
        "sd_TSNPE / sd_NUTS; the (lens, parameter) pairs within 0.5 NUTS sd, and the number a calibrated "
        "estimator of those widths would have (sum of erf(0.5 / sqrt(2 (w^2 - 1)))).\n\n";
  md << "| run | simulations per round | fitted | round | cumulative simulations | median width ratio | pairs "
        "within 0.5 | calibrated prediction | CPU s per simulation |\n|---|---|---|---|---|---|---|---|---|\n";
  for (std::size_t e = 0; e < entries.size(); ++e) {
    int maxr = 0;
    for (auto const& p : pts)
      if (p.entry == e) maxr = std::max(maxr, p.round);
    for (int r = 0; r <= maxr; ++r) {
      std::vector<double> w;
      int within = 0, n = 0;
      double pred = 0;
      for (auto const& p : pts)
        if (p.entry == e && p.round == r && in_study(p))
          w.push_back(p.w_median), within += p.within, pred += p.predicted, ++n;
      if (n == 0) continue;
      md << "| " << entries[e].label << " | " << entries[e].sims << " | " << (entries[e].fit ? "yes" : "no") << " | "
         << r << " | " << long(r * entries[e].sims) << " | " << fmt("%.2f", median(w)) << " | " << within << " / "
         << n * D << " | " << fmt("%.1f", pred) << " | " << fmt("%.2e", cpu_per_sim[e]) << " |\n";
    }
  }
  auto const ci = [&](std::vector<double> const& v, char const* f) {
    return fmt(f, quantile(v, 0.16)) + " – " + fmt(f, quantile(v, 0.84));
  };
  md << "\nFit over the fitted runs' rounds >= 1 (one point per lens and round; R rounds of n new simulations "
        "each; one intercept per lens, the extrapolation for the median lens; 68 % intervals from "
     << nboot << " bootstrap resamples of the lenses):\n\n"
     << "- model A, w = c R^-bR n^-bn: bR = " << fmt("%.3f", fw.bR) << " (" << ci(bR, "%.3f")
     << "), bn = " << fmt("%.3f", fw.bn) << " (" << ci(bn, "%.3f") << ")\n"
     << "- model B, w - 1 = c R^-bR n^-bn: bR = " << fmt("%.3f", fw1.bR) << " (" << ci(bR1, "%.3f")
     << "), bn = " << fmt("%.3f", fw1.bn) << " (" << ci(bn1, "%.3f") << ")\n\n";
  md << "Calibrated estimator: 80 % of the pairs within 0.5 NUTS sd needs w <= " << fmt("%.3f", w_pairs)
     << "; 80 % of the lenses with all 7 within needs w <= " << fmt("%.3f", w_lens) << ".\n\n";
  md << "Simulations per lens to reach the target width ratio, (i) by more rounds of n = " << n0 << ", (ii) by " << R0
     << " rounds of more simulations each (68 % intervals); CPU hours at the measured CPU "
     << "per simulation, for the cheaper of (i) and (ii):\n\n";
  md << "| target w | A (i) rounds | 68 % | A (ii) sims per round | 68 % | B (i) rounds | 68 % | B (ii) | 68 % | CPU h "
        "per lens, 1 thread, A / B | 24 lenses on 2 cores, h, A / B |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (std::size_t t = 0; t < targets.size(); ++t) {
    double const ar = fw.by_rounds(targets[t], double(n0)), as = fw.by_sims(targets[t], R0),
                 br = fw1.by_rounds(targets[t] - 1, double(n0)), bs = fw1.by_sims(targets[t] - 1, R0);
    double const na = std::min(ar, as), nb = std::min(br, bs);
    md << "| " << fmt("%.3f", targets[t]) << " | " << fmt("%.3g", ar) << " | " << ci(nr[t], "%.3g") << " | "
       << fmt("%.3g", as) << " | " << ci(ns[t], "%.3g") << " | " << fmt("%.3g", br) << " | " << ci(nr1[t], "%.3g")
       << " | " << fmt("%.3g", bs) << " | " << ci(ns1[t], "%.3g") << " | " << fmt("%.3g", na * cps / 3600) << " / "
       << fmt("%.3g", nb * cps / 3600) << " | " << fmt("%.3g", 24 * na * cps / 7200) << " / "
       << fmt("%.3g", 24 * nb * cps / 7200) << " |\n";
  }
  md << "\nCPU per simulation (simulating + fine-tuning, 1 thread) (the largest over the fitted runs): "
     << fmt("%.2e", cps) << " s.\n";
  std::ofstream(o.out + "/budget.md") << md.str();
  std::fputs(md.str().c_str(), stdout);

  // The plot: log10 width ratio against log10 cumulative simulations.
  {
    int const W = 800, H = 560, L0 = 70, RM = 20, T0 = 40, B0 = 60;
    lensing::io::Canvas c(W, H);
    double const x0 = 3.5, x1 = 8.5, y0 = -0.05, y1 = 1.75;
    c.set_window(x0 - (x1 - x0) * L0 / double(W - L0 - RM), x1 + (x1 - x0) * RM / double(W - L0 - RM),
                 y0 - (y1 - y0) * B0 / double(H - T0 - B0), y1 + (y1 - y0) * T0 / double(H - T0 - B0));
    auto const col = [&](double x) { return int(L0 + (x - x0) / (x1 - x0) * (W - L0 - RM)); };
    auto const row = [&](double y) { return int(H - B0 - (y - y0) / (y1 - y0) * (H - T0 - B0)); };
    lensing::io::Rgb const black{0, 0, 0}, grey{170, 170, 170};
    std::vector<lensing::io::Rgb> const pal{{31, 119, 180}, {255, 127, 14},  {44, 160, 44},
                                            {214, 39, 40},  {148, 103, 189}, {140, 86, 75}};
    c.line(x0, y0, x1, y0, black), c.line(x0, y0, x0, y1, black);
    for (int k = 4; k <= 8; ++k) {
      c.line(k, y0, k, y0 + 0.02, black);
      c.text(col(k) - 12, row(y0) + 6, "1e" + std::to_string(k), black);
    }
    for (double w : {1.0, 2.0, 5.0, 10.0, 20.0, 50.0}) {
      c.line(x0, std::log10(w), x0 + 0.05, std::log10(w), black);
      c.text(L0 - 30, row(std::log10(w)) - 4, fmt("%g", w), black);
    }
    for (std::size_t t = 0; t < targets.size(); ++t) {
      c.line(x0, std::log10(targets[t]), x1, std::log10(targets[t]), grey);
      c.text(col(x0) + 10 + 90 * int(t), row(std::log10(targets[t])) - 10, "w = " + fmt("%.3f", targets[t]), grey);
    }
    c.text(L0, 10, "TSNPE width ratio sd/sd_NUTS (median of 7; per lens, log axes) vs cumulative simulations", black);
    c.text(W / 2 - 90, H - 22, "simulations per lens", black);
    // Fits, dashed past the data.
    double xmax = 0;
    for (auto const& p : pts)
      if (p.round >= 1 && in_study(p)) xmax = std::max(xmax, std::log10(p.sims));
    // (i) more rounds of n0 (black), (ii) R0 rounds of more each (grey), model A.
    auto const curve = [&](bool rounds, lensing::io::Rgb cl) {
      for (double x = x0; x < x1; x += 0.02) {
        auto const y = [&](double xx) {
          double const N = std::pow(10, xx);
          return std::log10(rounds ? fw.at(N / double(n0), double(n0)) : fw.at(R0, N / R0));
        };
        if (std::pow(10, x) < (rounds ? 1 : R0) * double(n0) || (!rounds && !std::isfinite(fw.bn))) continue;
        double const ya = y(x), yb = y(x + 0.02);
        bool const dash = x > xmax && int((x - xmax) / 0.06) % 2 == 1;
        if (!dash && ya > y0 && yb > y0 && ya < y1 && yb < y1) c.line(x, ya, x + 0.02, yb, cl, 2);
      }
    };
    curve(true, black);
    curve(false, grey);
    for (std::size_t e = 0; e < entries.size(); ++e) {
      auto const cl = pal[e % pal.size()];
      for (auto const& p : pts)
        if (p.entry == e && p.round >= 1 && in_study(p)) c.marker(std::log10(p.sims), std::log10(p.w_median), cl, 3);
      // The median over the lenses per round: a ringed marker.
      for (int r = 1; r <= 20; ++r) {
        std::vector<double> w;
        double n = 0;
        for (auto const& p : pts)
          if (p.entry == e && p.round == r && in_study(p)) w.push_back(p.w_median), n = p.sims;
        if (w.empty()) continue;
        c.marker(std::log10(n), std::log10(median(w)), black, 6);
        c.marker(std::log10(n), std::log10(median(w)), cl, 4);
      }
      c.text(col(x1) - 420, row(y1) + 10 + 14 * int(e), entries[e].label + (entries[e].fit ? "" : " (not fitted)"), cl);
    }
    c.text(col(x1) - 420, row(y1) + 10 + 14 * int(entries.size()),
           "dots: lenses; rings: their median\nfit w = c R^-bR n^-bn (R rounds of n):\nblack: more rounds of n = " +
               std::to_string(n0) + "\ngrey: 4 rounds of larger n\n(dashed: extrapolated)",
           black);
    c.write(o.out + "/budget.png");
  }
  // Widths that fall by less than R^-0.1 (13 % over 4 rounds) fail: the
  // committed runs give bR = 0.55, constant widths 0.
  bool const ok = pts.size() > 0 && quantile(bR, 0.16) > 0.1 && fw.bR > 0.1;
  std::printf(
      "budget study: %s (%zu lenses, width falls with the rounds: bR = %.3f, with the simulations per round: "
      "bn = %.3f)\n",
      ok ? "ok" : "FAILED", lenses.size(), fw.bR, fw.bn);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    Space const space;
    if (!o.budget.empty()) return run_budget_study(o);
    return o.vmim ? run_vmim(space, o) : o.sequential > 0 ? run_sequential(space, o) : run_comparison(space, o);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "sbi_vs_nuts: %s\n", e.what());
    return 1;
  }
}
