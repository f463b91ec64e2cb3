// Train the strong-lens finder (issue 16, item 3): a pre-activated
// bottleneck ResNet (the 46-layer DeepLens-like network, or a small one)
// classifying LSST-like g, r, i cutouts of 45 x 45 pixels as lens / not a
// lens, trained with nn::fit and the binary cross-entropy on logits on
// batches simulated on the fly (finder.hpp: half lenses, half non-lenses of
// four kinds), then evaluated on held-out simulated cutouts: ROC curve, AUC,
// completeness at 99 % rejection of non-lenses overall and in bins of the
// Einstein radius and of the lensed source's signal-to-noise ratio, PNGs of
// the ROC curve and of the highest-scoring false positives.
//
//   train_finder [--arch deeplens|small] [--width W] [--batch B] [--epochs E]
//                [--steps-per-epoch S] [--minutes M] [--lr LR] [--seed SEED]
//                [--eval N] [--stack N] [--out DIR] [--resume] [--eval-only]
//                [--short]
//
// Writes DIR/finder.weights (nn::save_weights), DIR/finder.meta (the
// architecture, the image stretch and the 99 %-rejection threshold),
// DIR/finder.ckpt (resumable), DIR/roc.png, DIR/false_positives.png,
// DIR/eval.csv (score, class, theta_E, S/N of every held-out cutout) and,
// with --stack N, DIR/stack.npy (N raw held-out cutouts, (N, 3, 45, 45)
// float32 e-/s) with DIR/stack_truth.csv for classify.
//
// S/N of a lens: the matched-filter signal-to-noise ratio of the lensed
// source alone in the r band, sqrt(sum_pixels s^2 / var), s the noiseless
// source image (PSF included), var the pixel variance of the noiseless
// full image (sky, read noise and shot noise of lens and source).
//
// Short mode (--short, the ctest): the small network at width 2, 300 steps of
// 32 cutouts, then checks that the training loss fell (by 15 % and below
// 0.9 ln 2), the outputs of the held-out evaluation are finite and shaped
// (N, 1), the source is balanced and deterministic; prints "short run: ok".

#include "finder.hpp"

#include <lensing/io/npy.hpp>
#include <lensing/io/png.hpp>
#include <lensing/io/rgb_mosaic.hpp>
#include <lensing/nn/fit.hpp>
#include <lensing/nn/losses.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/serialize.hpp>

#include "../common/cli.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string arch = "deeplens";
  int width = 8;
  int batch = 64;
  long epochs = 100000;
  long steps_per_epoch = 25;
  double minutes = 0;
  double lr = 1e-3;
  std::uint64_t seed = 16;
  long eval = 4096;
  long stack = 0;
  std::string out = "finder";
  bool resume = false, eval_only = false, short_run = false;
  bool width_given = false;
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: train_finder [options]\n"
               "  --arch A               deeplens (46 layers, default) or small\n"
               "  --width W              bottleneck width of the first stage (default 8)\n"
               "  --batch B              cutouts per step, a multiple of 8 (default 64)\n"
               "  --epochs E             epochs (default 100000: use --minutes)\n"
               "  --steps-per-epoch S    steps per epoch (default 25)\n"
               "  --minutes M            stop training after the first epoch ending M minutes in (0: off)\n"
               "  --lr LR                Adam learning rate (default 1e-3)\n"
               "  --seed SEED            seed of simulations and weights (default 16)\n"
               "  --eval N               held-out cutouts evaluated, a multiple of 64 (default 4096)\n"
               "  --stack N              also write N raw held-out cutouts to DIR/stack.npy (default 0)\n"
               "  --out DIR              output directory (default finder)\n"
               "  --resume               continue from DIR/finder.ckpt\n"
               "  --eval-only            no training: load DIR/finder.weights and DIR/finder.meta\n"
               "  --short                the ctest mode (small network, 300 steps, checks)\n"
               "threads: set OMP_NUM_THREADS.\n");
}

}  // namespace

// Declared in ../common/cli.hpp.
[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "train_finder: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

namespace {

Options parse(int argc, char** argv) {
  Options o;
  bool lr_given = false, eval_given = false, stack_given = false, steps_given = false, epochs_given = false,
       batch_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    auto value = [&]() -> char const* {
      if (i + 1 >= argc) bad(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (a == "--arch") {
      o.arch = value();
      if (o.arch != "deeplens" && o.arch != "small") bad("--arch must be deeplens or small, got '" + o.arch + "'");
    } else if (a == "--width") {
      o.width = int(parse_integer(a, value(), 1, 64));
      o.width_given = true;
    } else if (a == "--batch") {
      o.batch = int(parse_integer(a, value(), 8, 4096));
      if (o.batch % 8) bad("--batch must be a multiple of 8, got '" + std::to_string(o.batch) + "'");
      batch_given = true;
    } else if (a == "--epochs") {
      o.epochs = parse_integer(a, value(), 1, 100000000);
      epochs_given = true;
    } else if (a == "--steps-per-epoch") {
      o.steps_per_epoch = parse_integer(a, value(), 1, 100000000);
      steps_given = true;
    } else if (a == "--minutes") {
      o.minutes = parse_real(a, value(), 0, 1e6);
    } else if (a == "--lr") {
      o.lr = parse_real(a, value(), 1e-8, 1);
      lr_given = true;
    } else if (a == "--seed") {
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 9000000000000000000L));
    } else if (a == "--eval") {
      o.eval = parse_integer(a, value(), 64, 100000000);
      if (o.eval % 64) bad("--eval must be a multiple of 64, got '" + std::to_string(o.eval) + "'");
      eval_given = true;
    } else if (a == "--stack") {
      o.stack = parse_integer(a, value(), 0, 1000000);
      stack_given = true;
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty directory name");
    } else if (a == "--resume") {
      o.resume = true;
    } else if (a == "--eval-only") {
      o.eval_only = true;
    } else if (a == "--short") {
      o.short_run = true;
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  if (o.short_run) {
    o.arch = "small";
    if (!o.width_given) o.width = 2;
    if (!batch_given) o.batch = 32;
    if (!steps_given) o.steps_per_epoch = 50;
    if (!epochs_given) o.epochs = 6;
    if (!eval_given) o.eval = 256;
    if (!stack_given) o.stack = 40;
    if (!lr_given) o.lr = 3e-3;
  }
  if (o.resume && o.eval_only) bad("--resume and --eval-only exclude each other");
  if (o.stack > o.eval) bad("--stack must not exceed --eval, got '" + std::to_string(o.stack) + "'");
  return o;
}

using namespace finder;
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct StopTraining {};

void save_atomically(std::string const& path, std::function<void(std::string const&)> const& write) {
  std::string const tmp = path + ".tmp";
  write(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename '" + tmp + "'");
}

/// The r-band matched-filter S/N of the lensed source of each lens (rows of
/// `raw`, the lens simulator's labels), see the file comment.
std::vector<double> source_snr(Space const& space, Multi const& sim, lensing::View2D<Scalar, Mem> const& raw) {
  int const n = int(raw.extent(0)), K = int(raw.extent(1));
  auto const& t = sim.table();
  int const a0 = t.index("light0.amp"), a1 = t.index("light1.amp");
  lensing::View2D<Scalar, Mem> src("snr_labels", n, K);
  Kokkos::deep_copy(space, src, raw);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), src);
  for (int i = 0; i < n; ++i)
    h(i, a0) = h(i, a1) = 0;
  Kokkos::deep_copy(src, h);
  lensing::View4D<Scalar, Mem> full("snr_full", n, num_bands, image_size, image_size),
      only("snr_source", n, num_bands, image_size, image_size);
  sim.render(space, raw, full);
  sim.render(space, src, only);
  space.fence();
  auto const hf = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), full);
  auto const hs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), only);
  auto const noise = bands(0)[1].detector_config().noise;
  std::vector<double> snr(std::size_t(n), 0.0);
  for (int i = 0; i < n; ++i) {
    double s2 = 0;
    for (int y = 0; y < image_size; ++y)
      for (int x = 0; x < image_size; ++x) {
        double const s = hs(i, 1, y, x);
        s2 += s * s / noise.variance(double(hf(i, 1, y, x)));
      }
    snr[std::size_t(i)] = std::sqrt(s2);
  }
  return snr;
}

struct Eval {
  std::vector<double> score;  // sigmoid of the logit
  std::vector<int> kind, label;
  std::vector<double> theta_E, snr;  // lenses only (NaN otherwise)
  std::vector<float> neg_images;     // stretched images of the non-lenses (index: neg_index)
  std::vector<long> neg_index;
  double network_seconds = 0;
  bool finite = true, shaped = true;
};

template <class Net>
Eval evaluate(Space const& space, Net& net, Simulators const& sims, Options const& o, double scale) {
  int const B = 64;
  FinderSource src(sims, B, lensing::simulate::validation_first_index, o.eval / B, true, scale);
  int const te = sims.sims[0].table().index("lens0.theta_E");
  net.set_training(false);
  Eval e;
  long const per = long(num_bands) * image_size * image_size;
  for (long s = 0; s < o.eval / B; ++s) {
    auto const b = src.next(space);
    auto const t0 = Clock::now();
    auto const out = net.forward(space, b.images);
    space.fence();
    e.network_seconds += since(t0);
    e.shaped = e.shaped && out.extent(0) == std::size_t(B) && out.size() == std::size_t(B);
    auto const ho = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
    auto const hi = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b.images);
    auto const raw0 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), src.raw_labels(0));
    auto const snr = source_snr(space, sims.sims[0], src.raw_labels(0));
    int slot = 0;
    for (int k = 0; k < num_kinds; ++k)
      for (int j = 0; j < per_batch(k, B); ++j, ++slot) {
        double const logit = ho.data()[slot];
        e.finite = e.finite && std::isfinite(logit);
        e.score.push_back(1.0 / (1.0 + std::exp(-logit)));
        e.kind.push_back(k);
        e.label.push_back(k == 0);
        e.theta_E.push_back(k == 0 ? double(raw0(j, te)) : std::nan(""));
        e.snr.push_back(k == 0 ? snr[std::size_t(j)] : std::nan(""));
        if (k != 0) {
          e.neg_index.push_back(long(e.score.size()) - 1);
          e.neg_images.insert(e.neg_images.end(), hi.data() + slot * per, hi.data() + (slot + 1) * per);
        }
      }
  }
  return e;
}

// Threshold at 99 % rejection: the score that 1 % of the non-lenses exceed.
double threshold_at(std::vector<double> neg, double rejection) {
  std::sort(neg.begin(), neg.end(), std::greater<double>());
  std::size_t const k = std::size_t(std::floor((1 - rejection) * double(neg.size())));
  return neg[std::min(k, neg.size() - 1)];
}

double auc_of(std::vector<double> const& pos, std::vector<double> const& neg) {
  // Mann-Whitney U / (n_pos n_neg), ties counted one half.
  std::vector<double> sn = neg;
  std::sort(sn.begin(), sn.end());
  double u = 0;
  for (double p : pos) {
    auto const lo = std::lower_bound(sn.begin(), sn.end(), p), hi = std::upper_bound(sn.begin(), sn.end(), p);
    u += double(lo - sn.begin()) + 0.5 * double(hi - lo);
  }
  return u / (double(pos.size()) * double(neg.size()));
}

void plot_roc(std::string const& path, std::vector<double> const& pos, std::vector<double> const& neg, double auc,
              double completeness, std::string const& title) {
  // x = log10(false-positive rate) in [-3.5, 0] (FPR 0 drawn at the left edge), y = completeness.
  std::vector<double> all = pos;
  all.insert(all.end(), neg.begin(), neg.end());
  std::sort(all.begin(), all.end(), std::greater<double>());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::vector<double> sp = pos, sn = neg;
  std::sort(sp.begin(), sp.end());
  std::sort(sn.begin(), sn.end());
  double const xmin = -3.5;
  std::vector<double> xs, ys;
  for (double t : all) {
    double const tpr = double(sp.end() - std::lower_bound(sp.begin(), sp.end(), t)) / double(sp.size());
    double const fpr = double(sn.end() - std::lower_bound(sn.begin(), sn.end(), t)) / double(sn.size());
    xs.push_back(fpr > 0 ? std::max(xmin, std::log10(fpr)) : xmin);
    ys.push_back(tpr);
  }
  int const W = 560, H = 460, L = 60, R = 20, T = 40, Bm = 50;
  lensing::io::Canvas c(W, H);
  // World window so that the plot area is [xmin, 0] x [0, 1] inside the margins.
  double const sx = (0 - xmin) / double(W - L - R), sy = 1.0 / double(H - T - Bm);
  c.set_window(xmin - L * sx, 0 + R * sx, 0 - Bm * sy, 1 + T * sy);
  lensing::io::Rgb const black{0, 0, 0}, grey{200, 200, 200}, blue{30, 80, 200}, red{200, 40, 40};
  for (int d = -3; d <= 0; ++d)
    c.line(d, 0, d, 1, grey);
  for (int k = 1; k < 5; ++k)
    c.line(xmin, 0.2 * k, 0, 0.2 * k, grey);
  c.line(-2, 0, -2, 1, red);
  c.polyline({xmin, 0, 0, xmin, xmin}, {0, 0, 1, 1, 0}, black);
  c.polyline(xs, ys, blue, false, 2);
  for (int d = -3; d <= 0; ++d) {
    std::string const s = d == 0 ? "1" : "1e" + std::to_string(d);
    c.text(int(std::lround(c.to_col(d))) - c.text_width(s) / 2, H - Bm + 8, s, black);
  }
  for (int k = 0; k <= 5; ++k) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.1f", 0.2 * k);
    c.text(L - 8 - c.text_width(buf), int(std::lround(c.to_row(0.2 * k))) - 3, buf, black);
  }
  c.text(L + 120, H - 22, "false-positive rate (log)", black);
  c.text(6, 12, "completeness", black);
  c.text(L + 40, 14, title, black);
  char buf[160];
  std::snprintf(buf, sizeof buf, "AUC %.4f   completeness at 99%% rejection %.3f", auc, completeness);
  c.text(L + 10, T + 6, buf, black);
  c.text(int(std::lround(c.to_col(-2))) + 4, int(std::lround(c.to_row(0.06))), "99% rejection", red);
  c.write(path);
}

struct Summary {
  double auc = 0, threshold = 0, completeness = 0;
};

Summary report(Eval const& e, Options const& o, std::string const& title, double scale) {
  std::vector<double> pos, neg;
  for (std::size_t i = 0; i < e.score.size(); ++i)
    (e.label[i] ? pos : neg).push_back(e.score[i]);
  Summary s;
  s.auc = auc_of(pos, neg);
  s.threshold = threshold_at(neg, 0.99);
  auto const complete = [&](auto pred, long& n) {
    long hit = 0;
    n = 0;
    for (std::size_t i = 0; i < e.score.size(); ++i)
      if (e.label[i] && pred(i)) {
        ++n;
        hit += e.score[i] > s.threshold;
      }
    return n > 0 ? double(hit) / double(n) : std::nan("");
  };
  long n = 0;
  s.completeness = complete([](std::size_t) { return true; }, n);
  std::printf(
      "held-out evaluation: %zu lenses, %zu non-lenses; AUC %.4f; threshold at 99 %% rejection %.4g; "
      "completeness %.3f\n",
      pos.size(), neg.size(), s.auc, s.threshold, s.completeness);
  std::printf("  false-positive rate at that threshold per class:");
  for (int k = 1; k < num_kinds; ++k) {
    long nk = 0, fp = 0;
    for (std::size_t i = 0; i < e.score.size(); ++i)
      if (e.kind[i] == k) {
        ++nk;
        fp += e.score[i] > s.threshold;
      }
    std::printf(" %s %.4f;", kind_name(k), double(fp) / double(std::max(1L, nk)));
  }
  std::printf("\n  completeness at 99 %% rejection by theta_E [arcsec] (rows) and S/N (columns), (count):\n");
  double const tb[] = {0.6, 1.0, 1.4, 1.8, 2.41};
  double const sb[] = {0, 10, 20, 40, 80, 1e30};
  std::printf("  %-12s", "theta_E\\S/N");
  for (int j = 0; j < 5; ++j)
    std::printf(" %13s", (j < 4 ? std::to_string(int(sb[j])) + "-" + std::to_string(int(sb[j + 1]))
                                : ">" + std::to_string(int(sb[j])))
                             .c_str());
  std::printf(" %13s\n", "all");
  for (int r = 0; r <= 4; ++r) {
    double const t0 = r < 4 ? tb[r] : 0, t1 = r < 4 ? tb[r + 1] : 10;
    char row[32];
    if (r < 4)
      std::snprintf(row, sizeof row, "%.1f-%.1f", t0, std::min(t1, 2.4));
    else
      std::snprintf(row, sizeof row, "all");
    std::printf("  %-12s", row);
    for (int j = 0; j <= 5; ++j) {
      double const s0 = j < 5 ? sb[j] : 0, s1 = j < 5 ? sb[j + 1] : 1e30;
      long nn = 0;
      double const c = complete(
          [&](std::size_t i) { return e.theta_E[i] >= t0 && e.theta_E[i] < t1 && e.snr[i] >= s0 && e.snr[i] < s1; },
          nn);
      char cell[32];
      if (nn > 0)
        std::snprintf(cell, sizeof cell, "%.3f (%ld)", c, nn);
      else
        std::snprintf(cell, sizeof cell, "- (0)");
      std::printf(" %13s", cell);
    }
    std::printf("\n");
  }
  long nt = 0;
  double const ct = complete([&](std::size_t i) { return e.theta_E[i] > 1.4 && e.snr[i] > 20; }, nt);
  std::printf(
      "  target bin theta_E > 1.4\" and S/N > 20: completeness %.3f at 99 %% rejection (%ld lenses; "
      "DeepLens target 0.90)\n",
      ct, nt);
  plot_roc(o.out + "/roc.png", pos, neg, s.auc, s.completeness, title);
  // The 16 highest-scoring non-lenses.
  std::vector<std::size_t> order(e.neg_index.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return e.score[std::size_t(e.neg_index[a])] > e.score[std::size_t(e.neg_index[b])];
  });
  int const m = int(std::min<std::size_t>(16, order.size()));
  long const per = long(num_bands) * image_size * image_size;
  std::vector<double> mosaic;
  std::printf("  highest-scoring non-lenses:");
  for (int i = 0; i < m; ++i) {
    // Back to rates (e-/s) from the network's asinh stretch: the mosaic has its own.
    auto const first = e.neg_images.begin() + long(order[std::size_t(i)]) * per;
    for (auto it = first; it != first + per; ++it)
      mosaic.push_back(std::sinh(double(*it)) * scale);
    std::size_t const idx = std::size_t(e.neg_index[order[std::size_t(i)]]);
    if (i < 8) std::printf(" %s %.3f;", kind_name(e.kind[idx]), e.score[idx]);
  }
  std::printf("\n");
  lensing::io::RgbOptions rgb;
  rgb.scale = 3;
  rgb.columns = 4;
  lensing::io::write_rgb_mosaic(o.out + "/false_positives.png", mosaic, m, image_size, image_size, rgb);
  std::ofstream f(o.out + "/eval.csv");
  f.precision(7);
  f << "index,label,class,theta_E,snr,score\n";
  for (std::size_t i = 0; i < e.score.size(); ++i)
    f << i << "," << e.label[i] << "," << kind_name(e.kind[i]) << "," << e.theta_E[i] << "," << e.snr[i] << ","
      << e.score[i] << "\n";
  std::printf("wrote %s/roc.png, %s/false_positives.png, %s/eval.csv\n", o.out.c_str(), o.out.c_str(), o.out.c_str());
  return s;
}

// The first n held-out cutouts, unstretched, for classify (and its check).
void write_stack(Space const& space, Simulators const& sims, Options const& o, Eval const& e) {
  int const B = 64;
  FinderSource raw(sims, B, lensing::simulate::validation_first_index, o.eval / B, true, 0.0);
  long const per = long(num_bands) * image_size * image_size;
  std::vector<float> stack;
  std::ofstream f(o.out + "/stack_truth.csv");
  f.precision(9);
  f << "index,label,class,score\n";
  for (long i = 0; i < o.stack;) {
    auto const b = raw.next(space);
    space.fence();
    auto const h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b.images);
    for (int j = 0; j < B && i < o.stack; ++j, ++i) {
      stack.insert(stack.end(), h.data() + j * per, h.data() + (j + 1) * per);
      f << i << "," << e.label[std::size_t(i)] << "," << kind_name(e.kind[std::size_t(i)]) << ","
        << e.score[std::size_t(i)] << "\n";
    }
  }
  lensing::io::write_npy(
      o.out + "/stack.npy", stack.data(),
      {std::size_t(o.stack), std::size_t(num_bands), std::size_t(image_size), std::size_t(image_size)});
  std::printf("wrote %s/stack.npy (%ld raw cutouts) and %s/stack_truth.csv\n", o.out.c_str(), o.stack, o.out.c_str());
}

// With the raw (unstretched) scale 0, FinderSource leaves the images as simulated.
template <class Net>
int run(Options const& o, Net net, Meta meta) {
  Space const space;
  ::mkdir(o.out.c_str(), 0755);
  std::string const wpath = o.out + "/finder.weights", mpath = o.out + "/finder.meta", cpath = o.out + "/finder.ckpt";
  int const cap = std::max(8, o.batch / 2);
  Simulators const sims(o.seed, std::max(cap, 32));
  std::printf("train_finder: %s ResNet, width %d, %ld parameters; backend %s, %d thread(s); batch %d\n",
              meta.arch.c_str(), meta.width, long(net.num_params()), Space::name(), Space().concurrency(), o.batch);
  bool ok = true;
  double first_loss = 0, last_loss = 0;
  if (o.eval_only) {
    nn::load_weights(net, wpath);
  } else {
    net.initialize(o.seed);
    FinderSource train(sims, o.batch, 0, o.steps_per_epoch, true, meta.scale);
    FinderSource val(sims, o.batch, lensing::simulate::validation_first_index + (std::uint64_t(1) << 40),
                     o.short_run ? 2 : 4, false, meta.scale);
    if (o.short_run) {
      // The source: balanced labels, and the same batch from a second source.
      FinderSource again(sims, o.batch, 0, o.steps_per_epoch, true, meta.scale);
      auto const b1 = train.next(space);
      auto const h1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b1.images);
      auto const l1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b1.labels);
      auto const b2 = again.next(space);
      auto const h2 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b2.images);
      bool same = true, finite = true;
      double positives = 0;
      for (std::size_t i = 0; i < h1.size(); ++i) {
        same = same && h1.data()[i] == h2.data()[i];
        finite = finite && std::isfinite(h1.data()[i]);
      }
      for (int b = 0; b < o.batch; ++b)
        positives += l1(b, 0);
      std::printf("source check: batch regenerated bit-identical %s, %g of %d labels 1, finite %s\n",
                  same ? "yes" : "NO", positives, o.batch, finite ? "yes" : "NO");
      ok = ok && same && finite && positives == o.batch / 2;
      train.start_epoch(0);
    }
    nn::Adam<Scalar, Mem> opt(net.num_params(), o.lr);
    nn::FitOptions fo;
    fo.epochs = o.epochs;
    fo.clip_grad_norm = 5.0;
    fo.log_every = o.short_run ? 50 : 25;
    fo.checkpoint_path = cpath;
    fo.checkpoint_seconds = 180;
    if (o.resume) {
      fo.resume_from = cpath;
      std::printf("resuming from %s\n", cpath.c_str());
    }
    auto const t0 = Clock::now();
    fo.on_epoch_end = [&](long, nn::FitHistory const& h) {
      save_atomically(wpath, [&](std::string const& p) { nn::save_weights(net, p); });
      meta.write(mpath);
      if (!h.loss.empty()) last_loss = h.loss.back();
      if (o.minutes > 0 && since(t0) >= 60 * o.minutes) throw StopTraining{};
    };
    std::printf("training: up to %ld epochs x %ld steps x %d cutouts%s, validation %d x %d cutouts, Adam lr %g\n",
                o.epochs, o.steps_per_epoch, o.batch,
                o.minutes > 0 ? (" (stopping after " + cli_detail::show(o.minutes) + " min)").c_str() : "",
                o.short_run ? 2 : 4, o.batch, o.lr);
    nn::FitHistory h;
    bool stopped = false;
    try {
      h = nn::fit(space, net, opt, nn::BCEWithLogitsLoss(), train, val, fo);
    } catch (StopTraining const&) {
      stopped = true;
    }
    double const secs = since(t0);
    if (stopped)
      std::printf("stopped after %.1f min (time limit); the last epoch's weights are in %s\n", secs / 60,
                  wpath.c_str());
    else
      std::printf(
          "trained %ld steps (%ld cutouts) in %.1f s: %.1f cutouts/s (simulation %.0f cutouts/s alone, "
          "%.0f %% of the step time)\n",
          h.steps, h.images, secs, h.images_per_second(), h.data_seconds > 0 ? double(h.images) / h.data_seconds : 0.0,
          100 * h.data_seconds / std::max(1e-9, h.data_seconds + h.compute_seconds));
    if (!h.loss.empty()) {
      first_loss = h.loss.front();
      last_loss = h.loss.back();
    }
    if (!stopped)
      save_atomically(wpath, [&](std::string const& p) { nn::save_weights(net, p); });
    else
      nn::load_weights(net, wpath);  // the weights of the last completed epoch
  }
  auto const t1 = Clock::now();
  Eval const e = evaluate(space, net, sims, o, meta.scale);
  double const secs = since(t1);
  std::printf(
      "evaluated %ld held-out cutouts in %.1f s (simulation and S/N included); network alone %.0f "
      "cutouts/s (batch 64)\n",
      o.eval, secs, double(o.eval) / e.network_seconds);
  Summary const s = report(e, o, meta.arch + " ResNet, width " + std::to_string(meta.width), meta.scale);
  meta.threshold99 = s.threshold;
  meta.write(mpath);
  if (o.stack > 0) write_stack(space, sims, o, e);
  if (o.short_run) {
    // Fell: by 15 % over the run and to 0.9 ln 2 (chance is ln 2); noise
    // alone moves the epoch means of an untrained network by ~1 %.
    bool const fell = last_loss < 0.85 * first_loss && last_loss < 0.9 * std::log(2.0);
    std::printf("short checks: training loss %.4f -> %.4f (%s), outputs finite %s, shaped (N, 1) %s\n", first_loss,
                last_loss, fell ? "fell" : "DID NOT FALL", e.finite ? "yes" : "NO", e.shaped ? "yes" : "NO");
    ok = ok && fell && e.finite && e.shaped && long(e.score.size()) == o.eval;
    std::printf("short run: %s\n", ok ? "ok" : "FAILED");
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they are printed
  Options const o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    Meta meta;
    if (o.eval_only) {
      meta = Meta::read(o.out + "/finder.meta");
    } else {
      meta.arch = o.arch;
      meta.width = o.width;
    }
    if (meta.arch == "deeplens") return run(o, make_deeplens<Scalar, Mem>(meta.width), meta);
    return run(o, make_small<Scalar, Mem>(meta.width), meta);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "train_finder: error: %s\n", e.what());
    return 1;
  }
}
