// Neural posterior estimation of galaxy-galaxy lenses (sbi/npe.hpp): a CNN
// embedding + a mixture of K full-covariance Gaussians over the 7
// standardised SIE + shear parameters (theta_E, e1, e2, center_x, center_y,
// gamma1, gamma2), trained with nn::fit on images simulated on the fly
// (SimulatedBatches, galaxy_galaxy_priors, HST-like noise and PSF at 32 x 32
// pixels of 0.1"), then calibrated on held-out simulations: SBC rank
// histograms (validate/sbc.hpp) and the TARP expected-coverage curve
// (validate/tarp.hpp), with PNG plots.
//
//   npe_lens [--short] [--epochs E] [--steps-per-epoch S] [--batch B] [--lr LR] [--components K]
//            [--seed SEED] [--out DIR] [--resume] [--checkpoint-seconds T] [--evaluate N] [--draws L]
//            [--eval-only]
//
// Streams of global image indices: training [0, ...), validation
// 2^48 + [0, 8 B), held-out test 2^49 + [0, N), image-scale pilot 2^47.
// Writes into DIR: npe.weights (serialize.hpp, after every epoch),
// npe.scales (image scale, K, label means and sds), npe.ckpt (resumable
// fit() checkpoint), sbc.png, tarp.png, calibration.txt.
//
// --short: a ctest run (a few dozen small steps): asserts that the loss
// falls and that the posterior draws are finite, prints "short run: ok".
// Threads: OMP_NUM_THREADS.
#include <lensing/model/instrument.hpp>
#include <lensing/nn/activation.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/fit.hpp>
#include <lensing/nn/flatten.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/pooling.hpp>
#include <lensing/nn/schedule.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/serialize.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/sbi/npe.hpp>
#include <lensing/simulate/data_source.hpp>
#include <lensing/simulate/lens_presets.hpp>
#include <lensing/simulate/simulator.hpp>

#include "../common/calibration_report.hpp"
#include "../common/cli.hpp"
#include "../common/scaled_source.hpp"
#include "npe_model.hpp"

#include <sys/stat.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace npe_model;
namespace nn = lensing::nn;
namespace sbi = lensing::sbi;
namespace simulate = lensing::simulate;
using examples::ScaledSource;

struct Options {
  bool short_run = false;
  long epochs = 30;
  long steps_per_epoch = 100;
  int batch = 32;
  double lr = 1e-3;
  int components = 2;
  std::uint64_t seed = 2026;
  std::string out = "npe_out";
  bool resume = false;
  double checkpoint_seconds = 120;
  long evaluate = 1000;
  int draws = 199;
  bool eval_only = false;
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: npe_lens [--short] [--epochs E] [--steps-per-epoch S] [--batch B] [--lr LR] [--components K]\n"
               "                [--seed SEED] [--out DIR] [--resume] [--checkpoint-seconds T] [--evaluate N]\n"
               "                [--draws L] [--eval-only]\n"
               "  --short               ctest mode: a few dozen small steps, checks, 'short run: ok'\n"
               "  --epochs E            epochs of S steps (default 30)\n"
               "  --steps-per-epoch S   (default 100)\n"
               "  --batch B             images per step (default 32)\n"
               "  --lr LR               Adam rate, cosine schedule with one warm-up epoch (default 1e-3)\n"
               "  --components K        Gaussian components of the mixture (default 2)\n"
               "  --seed SEED           simulator and initialisation seed (default 2026)\n"
               "  --out DIR             output directory (default npe_out)\n"
               "  --resume              continue from DIR/npe.ckpt if it exists\n"
               "  --checkpoint-seconds T  (default 120)\n"
               "  --evaluate N          held-out simulations for SBC and TARP (default 1000; 0: none)\n"
               "  --draws L             posterior draws per simulation; L + 1 a multiple of 20 (default 199)\n"
               "  --eval-only           no training: load DIR/npe.weights and evaluate\n"
               "threads: set OMP_NUM_THREADS.\n");
}

}  // namespace

[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "npe_lens: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

namespace {

Options parse(int argc, char** argv) {
  Options o;
  bool epochs_set = false, steps_set = false, batch_set = false, eval_set = false, draws_set = false;
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
    } else if (a == "--epochs") {
      o.epochs = parse_integer(a, value(), 1, 1000000);
      epochs_set = true;
    } else if (a == "--steps-per-epoch") {
      o.steps_per_epoch = parse_integer(a, value(), 1, 100000000);
      steps_set = true;
    } else if (a == "--batch") {
      o.batch = int(parse_integer(a, value(), 1, 4096));
      batch_set = true;
    } else if (a == "--lr") {
      o.lr = parse_real(a, value(), 1e-8, 1.0);
    } else if (a == "--components") {
      o.components = int(parse_integer(a, value(), 1, 16));
    } else if (a == "--seed") {
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 9000000000000000000L));
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty directory name");
    } else if (a == "--resume") {
      o.resume = true;
    } else if (a == "--checkpoint-seconds") {
      o.checkpoint_seconds = parse_real(a, value(), 0.0, 1e9);
    } else if (a == "--evaluate") {
      o.evaluate = parse_integer(a, value(), 0, 100000000);
      eval_set = true;
    } else if (a == "--draws") {
      o.draws = int(parse_integer(a, value(), 19, 100000));
      if ((o.draws + 1) % 20 != 0) bad("--draws L needs L + 1 a multiple of 20, got " + std::to_string(o.draws));
      draws_set = true;
    } else if (a == "--eval-only") {
      o.eval_only = true;
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  if (o.short_run) {
    if (!epochs_set) o.epochs = 6;
    if (!steps_set) o.steps_per_epoch = 20;
    if (!batch_set) o.batch = 8;
    if (!eval_set) o.evaluate = 40;
    if (!draws_set) o.draws = 39;
  }
  return o;
}

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

bool file_exists(std::string const& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

double pilot_image_scale(Space const& space, Sim const& sim, int batch) {
  Source pilot = make_source(sim, batch, std::uint64_t(1) << 47, 4, true);
  return examples::pilot_pixel_sd(space, pilot, 4);
}

struct Calibration {
  bool finite = true;
  std::vector<double> sbc_p, rms, prior_sd;
  double tarp_max_dev = 0, tarp_mean_dev = 0, ms_per_1000 = 0;
};

Calibration calibrate(Space const& space, Network& net, Sim const& sim, Scales const& sc, Options const& o) {
  int const B = o.batch, D = num_params, L = o.draws;
  long const nb = (o.evaluate + B - 1) / B, n = nb * B;
  Source test = make_source(sim, B, std::uint64_t(1) << 49, nb, true);
  ScaledSource<Source> scaled(test, sc.image_scale);
  net.set_training(false);
  sbi::NeuralPosterior<Network> npe(net, sc.components, sc.mean, sc.sd);
  std::vector<double> truths, draws;
  truths.reserve(std::size_t(n * D));
  draws.reserve(std::size_t(n * L * D));
  Calibration c;
  for (long b = 0; b < nb; ++b) {
    auto const batch = scaled.next(space);
    auto hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.labels);
    auto const d = sbi::sample_posterior(space, npe, batch.images, L, o.seed + 7, std::uint64_t(b * B));
    draws.insert(draws.end(), d.begin(), d.end());
    for (int i = 0; i < B; ++i)
      for (int j = 0; j < D; ++j)
        truths.push_back(test.destandardise_value(j, double(hl(i, j))));
  }
  for (double v : draws)
    c.finite = c.finite && std::isfinite(v);
  if (!c.finite) return c;
  // Speed: 1000 draws of one lens (network pass included), best of 5.
  {
    auto const one = scaled.next(space);
    auto const x1 = Kokkos::subview(one.images, std::make_pair(0, 1), Kokkos::ALL, Kokkos::ALL, Kokkos::ALL);
    nn::Tensor<Scalar, Mem> x("x1", 1, 1, image_size, image_size);
    Kokkos::deep_copy(x, x1);
    double best = 1e30;
    for (int r = 0; r < 5; ++r) {
      auto const t0 = Clock::now();
      auto const d = sbi::sample_posterior(space, npe, x, 1000, 1);
      best = std::min(best, since(t0));
    }
    c.ms_per_1000 = 1e3 * best;
  }
  for (int j = 0; j < D; ++j)
    c.prior_sd.push_back(sc.sd[std::size_t(j)]);
  auto const rc = examples::calibration_report(truths, draws, int(n), L, D, short_names, c.prior_sd, o.seed,
                                               o.out + "/sbc.png", o.out + "/tarp.png", "NPE, TARP");
  c.sbc_p = rc.sbc_p;
  c.rms = rc.rms;
  c.tarp_max_dev = rc.tarp_max_dev;
  c.tarp_mean_dev = rc.tarp_mean_dev;
  std::ostringstream rep;
  rep << "held-out simulations: " << n << " (test stream 2^49), " << L << " posterior draws each, K = " << sc.components
      << "\n";
  rep << rc.text;
  char line[200];
  std::snprintf(line, sizeof line, "amortised posterior: 1000 draws of one lens in %.2f ms (network pass included)\n",
                c.ms_per_1000);
  rep << line;
  std::fputs(rep.str().c_str(), stdout);
  std::ofstream(o.out + "/calibration.txt") << rep.str();
  return c;
}

int run(Options const& o) {
  Space const space;
  ::mkdir(o.out.c_str(), 0755);
  std::string const wpath = o.out + "/npe.weights", spath = o.out + "/npe.scales", cpath = o.out + "/npe.ckpt";
  Sim const sim = make_simulator(o.seed, o.batch);
  bool const resuming = o.resume && file_exists(cpath) && file_exists(spath);
  Scales sc;
  if (o.eval_only || resuming) {
    sc = Scales::read(spath);
  } else {
    sc.image_scale = pilot_image_scale(space, sim, o.batch);
    sc.components = o.components;
    Source probe = make_source(sim, o.batch, 0, 1, true);
    for (int k = 0; k < num_params; ++k) {
      sc.mean.push_back(probe.mean(k));
      sc.sd.push_back(probe.sd(k));
    }
    sc.write(spath);
  }
  auto net = make_network(o.batch, sc.components);
  std::printf("npe_lens: %ld parameters, input %s, output %s (K = %d, D = %d); batch %d, %s\n", net.num_params(),
              net.input_shape().str().c_str(), net.output_shape().str().c_str(), sc.components, num_params, o.batch,
              Space::name());
  bool ok = true;
  if (o.eval_only) {
    nn::load_weights(net, wpath);
  } else {
    net.initialize(o.seed);
    {
      // Small initial head: first mixtures near the standard normal.
      auto p = net.layer<output_layer>().parameters();
      auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p);
      for (std::size_t i = 0; i < h.size(); ++i)
        h(i) = Scalar(double(h(i)) * 0.1);
      Kokkos::deep_copy(p, h);
    }
    Source train = make_source(sim, o.batch, 0, o.steps_per_epoch, true);
    Source val = make_source(sim, o.batch, simulate::validation_first_index, 8, false);
    ScaledSource<Source> strain(train, sc.image_scale), sval(val, sc.image_scale);
    nn::Adam<Scalar, Mem> opt(net.num_params(), o.lr);
    sbi::MDNFullLoss const loss(sc.components);
    nn::FitOptions fo;
    fo.epochs = o.epochs;
    fo.clip_grad_norm = 5.0;
    fo.log_every = o.short_run ? 0 : 50;
    fo.schedule = nn::LRSchedule::cosine(o.lr, o.epochs, 1, o.lr * 0.02);
    fo.checkpoint_path = cpath;
    fo.checkpoint_seconds = o.checkpoint_seconds;
    if (resuming) {
      fo.resume_from = cpath;
      std::printf("resuming from %s\n", cpath.c_str());
    }
    fo.on_epoch_end = [&](long, nn::FitHistory const&) { nn::save_weights(net, wpath); };
    auto const t0 = Clock::now();
    auto const h = nn::fit(space, net, opt, loss, strain, sval, fo);
    nn::save_weights(net, wpath);
    std::printf("trained %ld steps (%ld images) in %.1f s (%.1f images/s)\n", h.steps, h.images, since(t0),
                h.images_per_second());
    if (!h.loss.empty())
      std::printf("loss: first epoch %.4f, last %.4f; val_loss first %.4f, last %.4f, best %.4f\n", h.loss.front(),
                  h.loss.back(), h.val_loss.front(), h.val_loss.back(), h.best_metric);
    if (o.short_run) {
      bool const fell = h.loss.size() >= 2 && h.loss.back() < h.loss.front() && h.val_loss.back() < h.val_loss.front();
      bool const finite = std::isfinite(h.loss.back()) && std::isfinite(h.val_loss.back());
      std::printf("short run: loss fell %s, finite %s\n", fell ? "yes" : "NO", finite ? "yes" : "NO");
      ok = ok && fell && finite;
    }
  }
  if (o.evaluate > 0) {
    auto const c = calibrate(space, net, sim, sc, o);
    if (!c.finite) std::printf("posterior draws are not finite\n");
    ok = ok && c.finite;
  }
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
    std::fprintf(stderr, "npe_lens: %s\n", e.what());
    return 1;
  }
}
