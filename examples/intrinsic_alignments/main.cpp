// Intrinsic alignments painted by a conditional graph WGAN (seed 004 /
// issue 20): halo orientations sampled from p(orientation | positions,
// masses) by nn::Wgan, trained on a mock catalogue with a known alignment
// model and validated by the alignment statistics of generated vs true
// orientations on held-out catalogues.
//
//   intrinsic_alignments [--short] [--steps S] [--batch B] [--train N] [--test M] [--halos H]
//                        [--width W] [--n-critic C] [--lr LR] [--gp L] [--kappa0 K] [--kappa-slope A]
//                        [--eval-every E] [--max-minutes M] [--seed SEED] [--out DIR]
//
// The mock (intrinsic_alignments/catalogue.hpp): 2-D periodic box of side L
// (default 50 Mpc/h), H halos (default 128) from a Thomas-like cluster
// process about P centres (default 6), masses from dN/dM ∝
// M^-1.9 on [1e12, 3e14] Msun/h, the tidal tensor of the smoothed (R_s = 3
// Mpc/h) halo density contrast by FFT, and headless major axes around the
// tidal stretching axis: 2 (phi - theta_t) ~ von Mises(0, kappa(M)),
// kappa(M) = K (M / 1e12)^A (default K = 0.6, A = 0.35: <cos 2 (phi -
// theta_t)> = I_1/I_0(kappa) from 0.29 at 1e12 to 0.87 at 3e14).
// Training catalogues are indices [0, N) of the seed, held-out ones 2^40 +
// [0, M).
//
// Model (nn::Wgan, conditional): one graph per catalogue, the kNN graph (k =
// 8, Euclidean in the box, not wrapped) of the halo positions, used by both
// networks (WganGraph::given).  Node conditions: the 6 standardised,
// rotation-invariant features of catalogue.hpp's halo_features (log mass,
// log local density, how elongated the 8 and 32 nearest neighbours are and
// the angle between their axes) — positions and masses only, never the
// tidal field.  Orientations are painted in each halo's local frame, the
// long axis psi_32 of its 32 nearest neighbours: the generator takes the
// conditions and 4 standard-normal noise values per node and paints
// (cos 2 (phi - psi_32), sin 2 (phi - psi_32)) (unnormalised; phi = psi_32 +
// atan2(s, c) / 2 is read off); the critic sees painted or true values with
// the conditions and gives one number per catalogue (mean pool).  The frame
// makes the learned law isotropic by construction (the mock is); in a fixed
// frame the networks must learn the rotation themselves, which a few
// hundred steps did not (the painted alignment stayed at 0 +- 0.1).  What
// the features carry of the tidal axis bounds the painted alignment: the
// generator can only know theta_t through psi_32 and its neighbours'
// features.  Batches: B training catalogues drawn at random
// per step.
//
// Validation on the M held-out catalogues, for the true orientations, the
// generated ones (one draw) and uniform random ones: the alignment
// statistic <cos 2 (phi - theta_t)> in mass bins, and in radial bins the
// ellipticity-direction correlation ED(r) = <cos 2 (phi_i - theta_ij)>
// (theta_ij the direction to the neighbour j at separation r; a
// w_g+-like position-shape correlation) and the orientation correlation
// EE(r) = <cos 2 (phi_i - phi_j)>; errors: standard errors over halos
// (alignment) and over catalogues (pair correlations).
//
// Small catalogues, many per batch: the critic's per-catalogue output is a
// mean over the catalogue's halos and the gradient penalty holds its
// gradient norm over all of them to 1, so the per-halo critic must be
// ~sqrt(H)-Lipschitz; with H = 128 that is reached sooner than with 512.
//
// Writes into DIR: statistics.csv, statistics.png (the three panels),
// map.png (a 50 x 50 Mpc/h corner of a held-out catalogue, true vs painted
// sticks over the tidal axes), training.csv (per generator step: W
// estimate, GP, gradient norm, generator loss), progress.csv and
// training.png (W and GP; the painted orientations' mean alignment vs step
// with the truth), summary.txt, generator.weights and critic.weights.
//
// --short: a ctest run (64 training catalogues, 200 steps of 4): asserts
// that the losses are finite and that the painted orientations' mean
// alignment with the tidal field is closer to the truth than random
// orientations by a margin, |A_gen - A_true| < 0.6 |A_rand - A_true| (with
// the truth at 0.40 and random at 0.01: A_gen in (0.17, 0.63); the untrained
// generator gives 0.05), "short run: ok", else "short run: FAILED".
// Threads: OMP_NUM_THREADS.
#include <lensing/nn/graph_batch.hpp>
#include <lensing/nn/wgan.hpp>

#include "../common/cli.hpp"
#include "../common/line_panel.hpp"
#include "../common/wgan_panel.hpp"
#include "catalogue.hpp"
#include "evaluate.hpp"

#include <sys/stat.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

[[noreturn]] void bad(std::string const& msg);

namespace {

struct Options {
  bool short_run = false;
  long steps = 3000;
  int batch = 16;
  int train = 512;
  int test = 64;
  int halos = 128;
  double box = 50;
  int clusters = 6;
  int width = 64;
  int n_critic = 5;
  double lr = 2e-4;
  double gp = 10;
  double kappa0 = 0.6, kappa_slope = 0.35;
  long eval_every = 250;
  double max_minutes = 0;  // 0: no limit
  std::uint64_t seed = 2026;
  std::string out = "intrinsic_alignments_out";
};

void usage(std::FILE* f) {
  std::fprintf(
      f,
      "usage: intrinsic_alignments [--short] [--steps S] [--batch B] [--train N] [--test M] [--halos H] [--box L]\n"
      "                            [--clusters P] [--width W] [--n-critic C] [--lr LR] [--gp L] [--kappa0 K] "
      "[--kappa-slope A]\n"
      "                            [--eval-every E] [--seed SEED] [--out DIR]\n"
      "  --short          ctest mode: small training set, a few hundred steps, checks, 'short run: ok'\n"
      "  --steps S        generator steps (default 3000; 0: evaluate the untrained generator)\n"
      "  --batch B        catalogues per step (default 16)\n"
      "  --train N        training catalogues (default 512)\n"
      "  --test M         held-out catalogues (default 64)\n"
      "  --halos H        halos per catalogue (default 128)\n"
      "  --box L          side of the periodic box, Mpc/h (default 50)\n"
      "  --clusters P     cluster centres per catalogue (default 6)\n"
      "  --width W        width of the graph convolutions (default 64)\n"
      "  --n-critic C     critic steps per generator step (default 5)\n"
      "  --lr LR          Adam rate of both networks (default 2e-4; beta1 0.5, beta2 0.9)\n"
      "  --gp L           gradient-penalty weight lambda (default 10)\n"
      "  --kappa0 K       alignment concentration at 1e12 Msun/h (default 0.6)\n"
      "  --kappa-slope A  kappa(M) = K (M / 1e12)^A (default 0.35)\n"
      "  --eval-every E   progress evaluation every E steps (default 250)\n"
      "  --max-minutes M  stop training at the first evaluation after M minutes (default 0: none)\n"
      "  --seed SEED      mock and initialisation seed (default 2026)\n"
      "  --out DIR        output directory (default intrinsic_alignments_out)\n"
      "threads: set OMP_NUM_THREADS.\n");
}

}  // namespace

[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "intrinsic_alignments: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

namespace {

Options parse(int argc, char** argv) {
  Options o;
  bool steps_set = false, train_set = false, test_set = false, eval_set = false, width_set = false, batch_set = false,
       halos_set = false;
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
    } else if (a == "--steps") {
      o.steps = parse_integer(a, value(), 0, 100000000);
      steps_set = true;
    } else if (a == "--batch") {
      o.batch = int(parse_integer(a, value(), 1, 1024));
      batch_set = true;
    } else if (a == "--train") {
      o.train = int(parse_integer(a, value(), 1, 100000));
      train_set = true;
    } else if (a == "--test") {
      o.test = int(parse_integer(a, value(), 1, 100000));
      test_set = true;
    } else if (a == "--halos") {
      o.halos = int(parse_integer(a, value(), 64, 1000000));
      halos_set = true;
    } else if (a == "--box") {
      o.box = parse_real(a, value(), 10.0, 1e5);
    } else if (a == "--clusters") {
      o.clusters = int(parse_integer(a, value(), 0, 1000000));
    } else if (a == "--width") {
      o.width = int(parse_integer(a, value(), 1, 1024));
      width_set = true;
    } else if (a == "--n-critic") {
      o.n_critic = int(parse_integer(a, value(), 1, 100));
    } else if (a == "--lr") {
      o.lr = parse_real(a, value(), 1e-8, 1.0);
    } else if (a == "--gp") {
      o.gp = parse_real(a, value(), 0.0, 1e6);
    } else if (a == "--kappa0") {
      o.kappa0 = parse_real(a, value(), 0.0, 100.0);
    } else if (a == "--kappa-slope") {
      o.kappa_slope = parse_real(a, value(), -2.0, 2.0);
    } else if (a == "--eval-every") {
      o.eval_every = parse_integer(a, value(), 1, 100000000);
      eval_set = true;
    } else if (a == "--max-minutes") {
      o.max_minutes = parse_real(a, value(), 0.0, 1e6);
    } else if (a == "--seed") {
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 9000000000000000000L));
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty directory name");
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  if (o.short_run) {
    if (!steps_set) o.steps = 200;
    if (!train_set) o.train = 64;
    if (!test_set) o.test = 16;
    if (!batch_set) o.batch = 4;
    if (!halos_set) o.halos = 128;
    if (!width_set) o.width = 32;
    if (!eval_set) o.eval_every = 100;
  }
  if (o.batch > o.train) bad("--batch " + std::to_string(o.batch) + " exceeds --train " + std::to_string(o.train));
  return o;
}

using Scalar = float;
using Exec = Kokkos::DefaultHostExecutionSpace;
using Mem = Kokkos::HostSpace;
using Gan = lensing::nn::Wgan<Scalar, Mem, lensing::nn::LeakyReluOp>;
using Batch = lensing::nn::WganBatch<Scalar, Mem>;
using Matrix = lensing::View2D<Scalar, Mem>;

/// A catalogue with what the networks need: standardised features (H x 6)
/// and the kNN edges of its positions.
struct Prepared {
  ia::Catalogue cat;
  std::vector<double> features, frame;
  std::vector<std::pair<int, int>> edges;
};

Prepared prepare(ia::CatalogueOptions const& co, std::uint64_t seed, std::uint64_t index) {
  Prepared p;
  p.cat = ia::make_catalogue(co, seed, index);
  p.features = ia::halo_features(co, p.cat, p.frame);
  p.edges = lensing::nn::knn_graph_edges(p.cat.x, p.cat.y, 8);
  return p;
}

/// The batch of catalogues `which` (real orientations if with_real), the
/// features standardised by (mean, sd).
Batch make_batch(std::vector<Prepared> const& set, std::vector<int> const& which, std::vector<double> const& mean,
                 std::vector<double> const& sd, bool with_real) {
  std::vector<int> sizes;
  std::vector<std::pair<int, int>> edges;
  int offset = 0;
  for (int c : which) {
    sizes.push_back(set[c].cat.size());
    for (auto const& e : set[c].edges)
      edges.emplace_back(offset + e.first, offset + e.second);
    offset += set[c].cat.size();
  }
  Batch b;
  b.graph = lensing::nn::graph_batch_from_edges<Scalar, Mem>(sizes, edges);
  b.node_conditions = Matrix("intrinsic_alignments::conditions", offset, ia::n_features);
  if (with_real) b.real = Matrix("intrinsic_alignments::real", offset, 2);
  long row = 0;
  for (int c : which) {
    auto const& p = set[c];
    for (int h = 0; h < p.cat.size(); ++h, ++row) {
      for (int f = 0; f < ia::n_features; ++f)
        b.node_conditions(row, f) = Scalar((p.features[std::size_t(h) * ia::n_features + f] - mean[f]) / sd[f]);
      if (with_real) {
        b.real(row, 0) = Scalar(std::cos(2 * (p.cat.phi[h] - p.frame[h])));
        b.real(row, 1) = Scalar(std::sin(2 * (p.cat.phi[h] - p.frame[h])));
      }
    }
  }
  return b;
}

struct ProgressPoint {
  long step;
  double alignment, alignment_err, top_bin;
};

void plot_training(std::string const& path, std::vector<lensing::nn::WganRecord> const& hist,
                   std::vector<ProgressPoint> const& progress, double truth, double truth_top) {
  lensing::io::Canvas c(2 * 380 + 150, 300);
  lensing::io::Rgb const black{0, 0, 0}, red{210, 30, 30}, grey{150, 150, 150}, orange{230, 130, 20};
  wgan_panel::draw_critic(c, 60, 30, 380, 230, hist);
  line_panel::Series a, t, top, ttop;
  a.label = "generated, all";
  a.colour = red;
  a.markers = true;
  t.label = "true, all";
  t.colour = black;
  top.label = "generated, M > 10^13.5";
  top.colour = orange;
  top.markers = true;
  ttop.label = "true, M > 10^13.5";
  ttop.colour = grey;
  for (auto const& p : progress) {
    a.x.push_back(double(p.step));
    a.y.push_back(p.alignment);
    a.err.push_back(p.alignment_err);
    top.x.push_back(double(p.step));
    top.y.push_back(p.top_bin);
  }
  if (!progress.empty()) {
    t.x = ttop.x = {double(progress.front().step), double(progress.back().step)};
    t.y = {truth, truth};
    ttop.y = {truth_top, truth_top};
  }
  line_panel::Options q;
  q.title = "<cos 2(phi - theta_tidal)>, held-out";
  q.xlabel = "generator step";
  q.zero_line = true;
  line_panel::draw(c, 60 + 380 + 90, 30, 380, 230, {t, ttop, a, top}, q);
  c.write(path);
}

int run(Options const& o) {
  ::mkdir(o.out.c_str(), 0755);
  ia::CatalogueOptions co;
  co.n_halos = o.halos;
  co.box = o.box;
  co.n_clusters = o.clusters;
  co.kappa0 = o.kappa0;
  co.kappa_slope = o.kappa_slope;
  auto const t_data = std::chrono::steady_clock::now();
  std::vector<Prepared> train, test;
  for (int k = 0; k < o.train; ++k)
    train.push_back(prepare(co, o.seed, std::uint64_t(k)));
  for (int k = 0; k < o.test; ++k)
    test.push_back(prepare(co, o.seed, (std::uint64_t(1) << 40) + std::uint64_t(k)));
  // Feature standardisation from the training catalogues.
  std::vector<double> mean(ia::n_features, 0), sd(ia::n_features, 0);
  long count = 0;
  for (auto const& p : train)
    for (int h = 0; h < p.cat.size(); ++h, ++count)
      for (int f = 0; f < ia::n_features; ++f)
        mean[f] += p.features[std::size_t(h) * ia::n_features + f];
  for (auto& m : mean)
    m /= double(count);
  for (auto const& p : train)
    for (int h = 0; h < p.cat.size(); ++h)
      for (int f = 0; f < ia::n_features; ++f) {
        double const d = p.features[std::size_t(h) * ia::n_features + f] - mean[f];
        sd[f] += d * d;
      }
  for (auto& s : sd)
    s = std::sqrt(s / double(count)) + 1e-12;
  std::printf("%d training and %d held-out catalogues of %d halos in %.1f s\n", o.train, o.test, o.halos,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t_data).count());

  lensing::nn::WganConfig cfg;
  cfg.node_features = 2;
  cfg.node_conditions = ia::n_features;
  cfg.graph_conditions = 0;
  cfg.node_noise = 4;
  cfg.graph_noise = 0;
  cfg.generator_conv = {o.width, o.width};
  cfg.generator_dense = {o.width};
  cfg.critic_conv = {o.width, o.width};
  cfg.critic_dense = {o.width};
  cfg.generator_graph = lensing::nn::WganGraph::given;
  cfg.critic_graph = lensing::nn::WganGraph::given;
  cfg.n_critic = o.n_critic;
  cfg.gp_lambda = o.gp;
  cfg.lr_generator = cfg.lr_critic = o.lr;
  cfg.seed = o.seed;
  Gan gan(cfg, lensing::nn::LeakyReluOp{0.2});
  gan.initialize(o.seed);
  std::printf("generator %ld parameters, critic %ld\n", long(gan.generator().num_params()),
              long(gan.critic().num_params()));

  // The held-out catalogues as one batch (their true orientations for the statistics).
  std::vector<int> all_test(o.test);
  for (int k = 0; k < o.test; ++k)
    all_test[k] = k;
  auto const test_batch = make_batch(test, all_test, mean, sd, false);
  std::vector<ia::Catalogue> test_cats;
  std::vector<std::vector<double>> true_phi;
  for (auto const& p : test) {
    test_cats.push_back(p.cat);
    true_phi.push_back(p.cat.phi);
  }
  Exec space;
  std::uint64_t const eval_seed = lensing::random::stream_key(o.seed, lensing::random::purpose_host, 77, 0);
  auto paint = [&](std::uint64_t seed) {
    auto const x = gan.generate(space, test_batch, seed);
    space.fence();
    auto const h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
    std::vector<std::vector<double>> phi(test.size());
    long row = 0;
    for (std::size_t c = 0; c < test.size(); ++c) {
      phi[c].resize(test[c].cat.size());
      for (std::size_t k = 0; k < phi[c].size(); ++k, ++row)
        phi[c][k] = ia::wrap_axis(test[c].frame[k] + 0.5 * std::atan2(double(h(row, 1)), double(h(row, 0))));
    }
    return phi;
  };
  ia::Bins const bins;
  auto const truth = ia::statistics(co, test_cats, true_phi, bins);
  auto const random = ia::statistics(co, test_cats, ia::random_orientations(test_cats, o.seed), bins);
  std::printf("true alignment <cos 2(phi - theta_t)> = %.4f +- %.4f, random %.4f +- %.4f\n", truth.alignment_all.mean,
              truth.alignment_all.err, random.alignment_all.mean, random.alignment_all.err);
  std::vector<ProgressPoint> progress;
  auto evaluate = [&](long step) {
    auto const s = ia::statistics(co, test_cats, paint(eval_seed), bins, false);
    progress.push_back({step, s.alignment_all.mean, s.alignment_all.err, s.alignment.back().mean});
    std::printf("step %ld: generated alignment %.4f +- %.4f (true %.4f), M > 10^13.5: %.4f (true %.4f)\n", step,
                s.alignment_all.mean, s.alignment_all.err, truth.alignment_all.mean, s.alignment.back().mean,
                truth.alignment.back().mean);
    std::fflush(stdout);
  };
  evaluate(0);

  // Batches of B distinct training catalogues drawn at random.
  lensing::Rng pick(o.seed, lensing::random::purpose_host, 0xba7c, 0);
  auto next_batch = [&]() {
    std::vector<int> which;
    while (int(which.size()) < o.batch) {
      int const c = int(pick.index(std::uint32_t(o.train)));
      if (std::find(which.begin(), which.end(), c) == which.end()) which.push_back(c);
    }
    return make_batch(train, which, mean, sd, true);
  };
  std::vector<lensing::nn::WganRecord> hist;
  long steps_done = o.steps;
  auto const t0 = std::chrono::steady_clock::now();
  for (long done = 0; done < o.steps;) {
    long const chunk = std::min(o.eval_every, o.steps - done);
    lensing::nn::WganTrainOptions topt;
    topt.steps = chunk;
    topt.log_every = o.short_run ? 0 : 50;
    topt.log = &std::cout;
    auto const h = gan.train(space, next_batch, topt);
    hist.insert(hist.end(), h.begin(), h.end());
    done += chunk;
    evaluate(done);
    double const minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 60;
    if (o.max_minutes > 0 && minutes >= o.max_minutes && done < o.steps) {
      std::printf("stopping after %ld of %ld steps: %.1f min >= --max-minutes %g\n", done, o.steps, minutes,
                  o.max_minutes);
      steps_done = done;
      break;
    }
    if (!o.short_run) gan.save(o.out + "/generator.weights", o.out + "/critic.weights");
  }
  double const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("trained %ld steps in %.1f s (%.1f ms per generator step with its %d critic steps)\n", steps_done,
              seconds, steps_done > 0 ? 1e3 * seconds / steps_done : 0.0, o.n_critic);

  auto const gen_phi = paint(eval_seed + 1);
  auto const generated = ia::statistics(co, test_cats, gen_phi, bins);
  ia::write_statistics_csv(o.out + "/statistics.csv", bins, truth, generated, random);
  ia::plot_statistics(o.out + "/statistics.png", co, bins, truth, generated, random);
  ia::plot_map(o.out + "/map.png", test_cats[0], gen_phi[0], 0, 0, 50);
  plot_training(o.out + "/training.png", hist, progress, truth.alignment_all.mean, truth.alignment.back().mean);
  {
    std::ofstream f(o.out + "/training.csv");
    f << "step,wasserstein,gradient_penalty,grad_norm,generator_loss\n";
    for (auto const& r : hist)
      f << r.step << ',' << r.wasserstein << ',' << r.gradient_penalty << ',' << r.grad_norm << ',' << r.generator_loss
        << '\n';
    std::ofstream p(o.out + "/progress.csv");
    p << "step,alignment_generated,alignment_generated_err,alignment_generated_top_mass_bin,alignment_true,"
         "alignment_true_top_mass_bin\n";
    for (auto const& q : progress)
      p << q.step << ',' << q.alignment << ',' << q.alignment_err << ',' << q.top_bin << ',' << truth.alignment_all.mean
        << ',' << truth.alignment.back().mean << '\n';
  }
  // Summary: per mass bin and a few radial bins.
  double chi2_align = 0, chi2_ed = 0;
  int n_ed = 0;
  for (std::size_t b = 0; b < truth.alignment.size(); ++b) {
    double const d = generated.alignment[b].mean - truth.alignment[b].mean;
    chi2_align +=
        d * d /
        (generated.alignment[b].err * generated.alignment[b].err + truth.alignment[b].err * truth.alignment[b].err);
  }
  for (std::size_t b = 0; b < truth.ed.size(); ++b) {
    double const e2 = generated.ed[b].err * generated.ed[b].err + truth.ed[b].err * truth.ed[b].err;
    if (e2 > 0) {
      chi2_ed += (generated.ed[b].mean - truth.ed[b].mean) * (generated.ed[b].mean - truth.ed[b].mean) / e2;
      ++n_ed;
    }
  }
  bool finite = std::isfinite(generated.alignment_all.mean);
  for (auto const& r : hist)
    finite = finite && std::isfinite(r.wasserstein) && std::isfinite(r.generator_loss);
  {
    std::ofstream s(o.out + "/summary.txt");
    char line[1024];
    std::snprintf(line, sizeof line,
                  "steps %ld, batch %d catalogues, %d training / %d held-out catalogues of %d halos, width %d, "
                  "n_critic %d, lr %g, gp %g, kappa0 %g, kappa_slope %g, seed %llu\n"
                  "train time %.1f s (%.1f ms per generator step)\n"
                  "<cos 2(phi - theta_t)> over all held-out halos: true %.4f +- %.4f, generated %.4f +- %.4f, "
                  "random %.4f +- %.4f\n"
                  "alignment in %zu mass bins: chi2 (generated - true) %.1f\n"
                  "ED(r) in %d radial bins: chi2 (generated - true) %.1f\n",
                  steps_done, o.batch, o.train, o.test, o.halos, o.width, o.n_critic, o.lr, o.gp, o.kappa0,
                  o.kappa_slope, (unsigned long long)o.seed, seconds, steps_done > 0 ? 1e3 * seconds / steps_done : 0.0,
                  truth.alignment_all.mean, truth.alignment_all.err, generated.alignment_all.mean,
                  generated.alignment_all.err, random.alignment_all.mean, random.alignment_all.err,
                  truth.alignment.size(), chi2_align, n_ed, chi2_ed);
    s << line;
    std::fputs(line, stdout);
    for (std::size_t b = 0; b < truth.alignment.size(); ++b) {
      std::snprintf(line, sizeof line, "  log10 M in [%.2f, %.2f): true %.3f +- %.3f, generated %.3f +- %.3f (n %ld)\n",
                    bins.log_mass[b], bins.log_mass[b + 1], truth.alignment[b].mean, truth.alignment[b].err,
                    generated.alignment[b].mean, generated.alignment[b].err, truth.alignment[b].count);
      s << line;
      std::fputs(line, stdout);
    }
    for (std::size_t b = 0; b < truth.ed.size(); ++b) {
      std::snprintf(line, sizeof line,
                    "  r in [%.2f, %.2f) Mpc/h: ED true %.3f +- %.3f, generated %.3f +- %.3f; EE true %.3f +- %.3f, "
                    "generated %.3f +- %.3f\n",
                    bins.radius[b], bins.radius[b + 1], truth.ed[b].mean, truth.ed[b].err, generated.ed[b].mean,
                    generated.ed[b].err, truth.ee[b].mean, truth.ee[b].err, generated.ee[b].mean, generated.ee[b].err);
      s << line;
      std::fputs(line, stdout);
    }
  }
  std::printf("wrote %s/{statistics.csv,statistics.png,map.png,training.csv,progress.csv,training.png,summary.txt}\n",
              o.out.c_str());
  if (o.short_run) {
    double const dg = std::fabs(generated.alignment_all.mean - truth.alignment_all.mean);
    double const dr = std::fabs(random.alignment_all.mean - truth.alignment_all.mean);
    bool const closer = dg < 0.6 * dr;
    std::printf("check: losses finite %s; |A_gen - A_true| = %.4f vs 0.6 |A_rand - A_true| = %.4f: %s\n",
                finite ? "yes" : "NO", dg, 0.6 * dr, closer ? "below" : "NOT below");
    std::printf("short run: %s\n", finite && closer ? "ok" : "FAILED");
    return finite && closer ? 0 : 1;
  }
  return finite ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    return run(o);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "intrinsic_alignments: %s\n", e.what());
    return 1;
  }
}
