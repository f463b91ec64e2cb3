// Train the convolutional VAE of vae_model.hpp (a learned source prior:
// seeds 000/001, issue 18) on 32 x 32 images of one training set, with
// nn::fit, and report its ELBO on held-out images.
//
//   vae_source_prior [--set digits|galaxies] [--short] [--n-train N] [--n-test M] [--epochs E]
//                    [--batch B] [--lr LR] [--warmup W] [--likelihood gaussian|laplace] [--sigma S]
//                    [--seed SEED] [--out DIR] [--resume] [--checkpoint-seconds T] [--eval-only]
//
// Training sets (no download; one model per set):
//  - digits: handwriting-like stroke digits of simulate/digits.hpp, label
//    (index mod 10), rendered with render_digit (intensity 1 on a stroke);
//  - galaxies: the procedural bulge + disk + clumps galaxies of
//    simulate/galaxies.hpp with logarithmic spiral arms on 70 % of them
//    (simulate/spiral_galaxies.hpp), on 0.05" pixels (1.6" stamps), disk
//    half-light radius 0.15-0.35", B/T 0-0.2, bulge n 1-3, clumps up to 15 %
//    of the disk light, each image divided by its maximum.
// Images of index [0, N) train, of index 2^40 + [0, M) are held out.
//
// Loss: the negative ELBO per image (nn::VaeLoss) with a Gaussian (or
// Laplace) pixel likelihood of fixed scale S (default vae_model::pixel_sigma_for(set))
// and a KL warm-up: the KL term is weighted by beta = min(1, (e + 1) / W) in
// epoch e (W = 0: beta = 1 throughout).  Adam, constant rate.  After every
// epoch: the held-out ELBO (beta = 1, one z per image, a fixed noise seed),
// DIR/<set>.weights (serialize.hpp format, loads into vae_model::Network)
// and a line of DIR/<set>_training_log.txt; the resumable fit() checkpoint
// DIR/<set>.ckpt every T seconds.  At the end (and with --eval-only, from
// DIR/<set>.weights and DIR/<set>_training_log.txt): DIR/<set>_elbo.txt (held-out
// ELBO of the untrained and of the trained network, its reconstruction and
// KL terms), DIR/<set>_reconstructions.png (held-out images, top row of each
// pair, and their reconstructions from z = mu, below), DIR/<set>_samples.png
// (decoder means of z ~ N(0, I)), DIR/<set>_loss.png (training loss and
// held-out -ELBO per epoch).
//
// --short: a ctest run (256 training images, 3 epochs): asserts that the
// held-out -ELBO falls below half the untrained network's (measured: from
// 39834 to 1828 nats per image), that the saved weights load back (vae_model::load_decoder gives
// the trained decoder's output), prints "short run: ok".
// Threads: OMP_NUM_THREADS.
#include <lensing/io/png.hpp>
#include <lensing/nn/fit.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/serialize.hpp>
#include <lensing/simulate/data_source.hpp>
#include <lensing/simulate/digits.hpp>
#include <lensing/simulate/spiral_galaxies.hpp>

#include "../common/cli.hpp"
#include "vae_model.hpp"

#include <sys/stat.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace nn = lensing::nn;
namespace sim = lensing::simulate;
using vae_model::Mem;
using vae_model::Scalar;
using vae_model::Space;
constexpr int N = vae_model::image_size;
constexpr int P = vae_model::image_pixels;
constexpr std::uint64_t test_first_index = std::uint64_t(1) << 40;

struct Options {
  std::string set = "digits";
  bool short_run = false;
  long n_train = 20000, n_test = 1000, epochs = 20;
  int batch = 64;
  double lr = 1e-3;
  long warmup = 5;
  std::string likelihood = "gaussian";
  double sigma = 0;  // 0: the set's default (vae_model::pixel_sigma_for)
  std::uint64_t seed = 1;
  std::string out = "vae_source_prior_output";
  bool resume = false, eval_only = false;
  double checkpoint_seconds = 120;
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: vae_source_prior [options]\n"
               "  --set digits|galaxies   training set (default digits)\n"
               "  --short                 ctest run: 256 images, 3 epochs, checks the ELBO gain\n"
               "  --n-train N             training images (default 20000)\n"
               "  --n-test M              held-out images (default 1000)\n"
               "  --epochs E              (default 20)\n"
               "  --batch B               (default 64)\n"
               "  --lr LR                 Adam learning rate (default 1e-3)\n"
               "  --warmup W              KL warm-up epochs, beta = min(1, (e+1)/W) (default 5; 0: none)\n"
               "  --likelihood L          gaussian or laplace (default gaussian)\n"
               "  --sigma S               pixel likelihood scale (default 0.1 for digits, 0.05 for galaxies)\n"
               "  --seed SEED             (default 1)\n"
               "  --out DIR               output directory (default vae_source_prior_output)\n"
               "  --resume                continue from DIR/<set>.ckpt\n"
               "  --checkpoint-seconds T  (default 120)\n"
               "  --eval-only             no training: load DIR/<set>.weights, write the ELBO and figures\n"
               "threads: set OMP_NUM_THREADS.\n");
}

}  // namespace

[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "vae_source_prior: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

namespace {

Options parse(int argc, char** argv) {
  Options o;
  bool n_set = false, m_set = false, e_set = false, b_set = false, w_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    auto value = [&]() -> char const* {
      if (i + 1 >= argc) bad(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (a == "--set") {
      o.set = value();
      if (o.set != "digits" && o.set != "galaxies") bad("--set must be digits or galaxies, got '" + o.set + "'");
    } else if (a == "--short") {
      o.short_run = true;
    } else if (a == "--n-train") {
      o.n_train = parse_integer(a, value(), 1, 10000000);
      n_set = true;
    } else if (a == "--n-test") {
      o.n_test = parse_integer(a, value(), 1, 1000000);
      m_set = true;
    } else if (a == "--epochs") {
      o.epochs = parse_integer(a, value(), 1, 100000);
      e_set = true;
    } else if (a == "--batch") {
      o.batch = int(parse_integer(a, value(), 1, 4096));
      b_set = true;
    } else if (a == "--lr") {
      o.lr = parse_real(a, value(), 1e-8, 1.0);
    } else if (a == "--warmup") {
      o.warmup = parse_integer(a, value(), 0, 100000);
      w_set = true;
    } else if (a == "--likelihood") {
      o.likelihood = value();
      if (o.likelihood != "gaussian" && o.likelihood != "laplace")
        bad("--likelihood must be gaussian or laplace, got '" + o.likelihood + "'");
    } else if (a == "--sigma") {
      o.sigma = parse_real(a, value(), 1e-4, 100.0);
    } else if (a == "--seed") {
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 9000000000000000000L));
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty directory name");
    } else if (a == "--resume") {
      o.resume = true;
    } else if (a == "--checkpoint-seconds") {
      o.checkpoint_seconds = parse_real(a, value(), 0.0, 1e9);
    } else if (a == "--eval-only") {
      o.eval_only = true;
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  if (o.short_run) {
    if (!n_set) o.n_train = 256;
    if (!m_set) o.n_test = 64;
    if (!e_set) o.epochs = 3;
    if (!b_set) o.batch = 32;
    if (!w_set) o.warmup = 1;
  }
  if (o.sigma == 0) o.sigma = vae_model::pixel_sigma_for(o.set);
  if (o.n_train < o.batch) bad("--n-train must be at least the batch size (" + std::to_string(o.batch) + ")");
  if (o.resume && o.eval_only) bad("--resume and --eval-only exclude each other");
  return o;
}

//----------------------------------------------------------------------------
// Training images.

/// n images (row-major, P values each) of `set`, indices first, first + 1, ...
std::vector<float> make_images(std::string const& set, std::uint64_t seed, std::uint64_t first, long n) {
  std::vector<float> img(std::size_t(n) * P);
  using Host = Kokkos::DefaultHostExecutionSpace;
  if (set == "digits") {
    Kokkos::parallel_for("vae_source_prior::digits", Kokkos::RangePolicy<Host, Kokkos::IndexType<long>>(Host(), 0, n),
                         [&](long i) {
                           std::uint64_t const index = first + std::uint64_t(i);
                           auto const d = sim::make_digit(int(index % 10), seed, index);
                           sim::render_digit<float>(d, N, img.data() + std::size_t(i) * P);
                         });
    Host().fence();
    return img;
  }
  sim::SpiralGalaxyModel<float> m;
  m.galaxy.r_min = 0.15;
  m.galaxy.r_max = 0.35;
  m.galaxy.bt_max = 0.2;
  m.galaxy.n_min = 1;
  m.galaxy.n_max = 3;
  m.galaxy.clump_max = 0.15;
  m.spiral_fraction = 0.7;
  long const chunk = 4096;
  for (long a = 0; a < n; a += chunk) {
    long const c = std::min(chunk, n - a);
    Kokkos::View<float***, Kokkos::LayoutRight, Kokkos::HostSpace> stamps("stamps", c, N, N);
    Kokkos::View<sim::SpiralGalaxy<float>*, Kokkos::HostSpace> gal("galaxies", c);
    sim::render_spiral_galaxies(Host(), m, stamps, 0.05f, gal, seed, first + std::uint64_t(a), 4);
    Host().fence();
    for (long i = 0; i < c; ++i) {
      float mx = 0;
      for (int k = 0; k < P; ++k)
        mx = std::max(mx, stamps.data()[i * P + k]);
      for (int k = 0; k < P; ++k)
        img[std::size_t(a + i) * P + k] = mx > 0 ? stamps.data()[i * P + k] / mx : 0.0f;
    }
  }
  return img;
}

using Images = lensing::View4D<Scalar, Mem>;
using Labels = lensing::View2D<Scalar, Mem>;

/// Images (n, 1, N, N) and the same values as labels (n, P), on the device.
void to_device(std::vector<float> const& h, Images& images, Labels& labels) {
  long const n = long(h.size() / P);
  images = Images("vae_source_prior::images", n, 1, N, N);
  labels = Labels("vae_source_prior::labels", n, P);
  auto hi = Kokkos::create_mirror_view(images);
  auto hl = Kokkos::create_mirror_view(labels);
  for (std::size_t i = 0; i < h.size(); ++i) {
    hi.data()[i] = h[i];
    hl.data()[i] = h[i];
  }
  Kokkos::deep_copy(images, hi);
  Kokkos::deep_copy(labels, hl);
}

/// The training source with the KL warm-up: start_epoch(e) sets beta for epoch e.
class WarmupSource : public sim::ArraySource<Scalar, Mem> {
 public:
  WarmupSource(Images const& x, Labels const& y, sim::ArraySourceOptions const& o, std::shared_ptr<double> beta,
               long warmup)
      : sim::ArraySource<Scalar, Mem>(x, y, o), beta_(std::move(beta)), warmup_(warmup) {}
  void start_epoch(long epoch) {
    *beta_ = beta_for(epoch, warmup_);
    sim::ArraySource<Scalar, Mem>::start_epoch(epoch);
  }
  static double beta_for(long epoch, long warmup) {
    return warmup <= 0 ? 1.0 : std::min(1.0, double(epoch + 1) / double(warmup));
  }

 private:
  std::shared_ptr<double> beta_;
  long warmup_;
};

//----------------------------------------------------------------------------
// Evaluation.

/// Held-out ELBO (beta = 1): per-image means over the set, one z per image
/// from the noise stream `noise_seed` (on a copy of the network, so the
/// training noise stream is untouched).
nn::VaeLossTerms held_out_elbo(vae_model::Network const& trained, nn::VaeLoss const& proto, Images const& x,
                               Labels const& y, int batch, std::uint64_t noise_seed) {
  Space space;
  vae_model::Network net = trained;
  net.set_training(false);
  net.layer<0>().reseed_noise(noise_seed);
  net.layer<0>().set_use_mean(false);
  nn::VaeLoss loss(proto.latent, proto.likelihood, proto.scale);
  long const n = long(x.extent(0));
  nn::Tensor<Scalar, Mem> none;
  double nll = 0, kl = 0;
  for (long a = 0; a < n; a += batch) {
    long const b = std::min(n, a + batch);
    nn::Tensor<Scalar, Mem> xb(Kokkos::subview(x, Kokkos::make_pair(a, b), Kokkos::ALL, Kokkos::ALL, Kokkos::ALL));
    Labels yb(Kokkos::subview(y, Kokkos::make_pair(a, b), Kokkos::ALL));
    loss(space, net.forward(space, xb), yb, none);
    nll += loss.terms->nll * double(b - a);
    kl += loss.terms->kl * double(b - a);
  }
  nn::VaeLossTerms t;
  t.nll = nll / double(n);
  t.kl = kl / double(n);
  return t;
}

/// Tiles of N x N images (row-major, y up) in a grid of `cols` columns,
/// `scale` screen pixels per image pixel, grey from [0, vmax].
void write_grid(std::string const& path, std::vector<float> const& tiles, int cols, int scale, double vmax,
                std::string const& title) {
  int const count = int(tiles.size() / P), rows = (count + cols - 1) / cols, gap = 2, top = 14;
  int const tw = N * scale;
  lensing::io::Canvas c(cols * (tw + gap) + gap, top + rows * (tw + gap) + gap, {255, 255, 255});
  c.text(gap, 3, title, {0, 0, 0});
  for (int t = 0; t < count; ++t) {
    int const c0 = gap + (t % cols) * (tw + gap), r0 = top + (t / cols) * (tw + gap);
    for (int iy = 0; iy < N; ++iy)
      for (int ix = 0; ix < N; ++ix) {
        double const v = tiles[std::size_t(t) * P + std::size_t(iy) * N + ix];
        auto const col = lensing::io::colour(lensing::io::ColorMap::gray, v / vmax);
        for (int sy = 0; sy < scale; ++sy)
          for (int sx = 0; sx < scale; ++sx)
            c.set(c0 + ix * scale + sx, r0 + (N - 1 - iy) * scale + sy, col);
      }
  }
  c.write(path);
}

/// Training loss and held-out -ELBO per epoch.
void write_loss_plot(std::string const& path, std::vector<double> const& train, std::vector<double> const& held,
                     std::string const& title) {
  int const w = 640, h = 400, l = 70, r = 20, t = 30, b = 40;
  lensing::io::Canvas c(w, h, {255, 255, 255});
  double lo = 1e300, hi = -1e300;
  for (auto const* s : {&train, &held})
    for (double v : *s)
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  if (!(hi > lo)) hi = lo + 1;
  double const pad = 0.05 * (hi - lo);
  lo -= pad;
  hi += pad;
  double const ne = double(std::max<std::size_t>(2, train.size()));
  auto const col = [&](double e) { return l + (w - l - r) * e / (ne - 1); };
  auto const row = [&](double v) { return t + (h - t - b) * (hi - v) / (hi - lo); };
  lensing::io::Rgb const k{0, 0, 0}, blue{31, 119, 180}, red{214, 39, 40};
  c.set_window(0, w, 0, h);
  auto const seg = [&](double x0, double y0, double x1, double y1, lensing::io::Rgb colr) {
    c.line(x0, h - y0, x1, h - y1, colr, 2);
  };
  seg(l, t, l, h - b, k);
  seg(l, h - b, w - r, h - b, k);
  for (auto const& [s, colr] : {std::make_pair(&train, blue), std::make_pair(&held, red)})
    for (std::size_t i = 0; i + 1 < s->size(); ++i)
      seg(col(double(i)), row((*s)[i]), col(double(i + 1)), row((*s)[i + 1]), colr);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", hi);
  c.text(2, t - 3, buf, k);
  std::snprintf(buf, sizeof buf, "%.1f", lo);
  c.text(2, h - b - 7, buf, k);
  c.text(l, h - b + 8, "epoch 1", k);
  std::snprintf(buf, sizeof buf, "epoch %zu", train.size());
  c.text(w - r - 60, h - b + 8, buf, k);
  c.text(l, 8, title, k);
  c.text(l + 10, t + 6, "training loss (-beta-ELBO, nats/image)", blue);
  c.text(l + 10, t + 18, "held-out -ELBO (nats/image)", red);
  c.write(path);
}

bool file_exists(std::string const& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

int run(Options const& o) {
  using Clock = std::chrono::steady_clock;
  auto const t0 = Clock::now();
  auto const secs = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  ::mkdir(o.out.c_str(), 0755);
  std::string const base = o.out + "/" + o.set;
  Space space;

  auto const htrain = make_images(o.set, o.seed, 0, o.eval_only ? o.batch : o.n_train);
  auto const htest = make_images(o.set, o.seed, test_first_index, o.n_test);
  Images xtr, xte;
  Labels ytr, yte;
  to_device(htrain, xtr, ytr);
  to_device(htest, xte, yte);
  std::printf("vae_source_prior: %s, %ld training and %ld held-out %dx%d images made in %.1f s\n", o.set.c_str(),
              o.eval_only ? 0L : o.n_train, o.n_test, N, N, secs());

  nn::VaeLoss loss(vae_model::latent_dim,
                   o.likelihood == "laplace" ? nn::PixelLikelihood::laplace : nn::PixelLikelihood::gaussian, o.sigma);
  std::uint64_t const eval_noise = o.seed + 7919;
  auto net = vae_model::make_network(o.seed);
  auto const u = held_out_elbo(net, loss, xte, yte, o.batch, eval_noise);
  double const elbo0 = u.elbo();
  std::printf("untrained: held-out ELBO %.2f nats/image (reconstruction %.2f, KL %.2f)\n", u.elbo(), -u.nll, u.kl);
  std::fflush(stdout);
  if (!o.eval_only) {
    sim::ArraySourceOptions so;
    so.batch_size = o.batch;
    so.seed = o.seed;
    WarmupSource train(xtr, ytr, so, loss.beta, o.warmup);
    nn::Adam<Scalar, Mem> opt(net.num_params(), o.lr);
    nn::FitOptions fo;
    fo.epochs = o.epochs;
    fo.log_every = o.short_run ? 0 : 50;
    fo.clip_grad_norm = 1000;
    fo.checkpoint_path = base + ".ckpt";
    fo.checkpoint_seconds = o.checkpoint_seconds;
    if (o.resume && file_exists(fo.checkpoint_path)) fo.resume_from = fo.checkpoint_path;
    std::ofstream logf(base + "_training_log.txt", o.resume ? std::ios::app : std::ios::trunc);
    if (!o.resume) logf << "# epoch beta train_loss held_out_elbo held_out_recon_nll held_out_kl seconds\n";
    fo.on_epoch_end = [&](long e, nn::FitHistory const& h) {
      auto const v = held_out_elbo(net, loss, xte, yte, o.batch, eval_noise);
      nn::save_weights(net, base + ".weights");
      double const beta = WarmupSource::beta_for(e, o.warmup);
      logf << e + 1 << " " << beta << " " << h.loss.back() << " " << v.elbo() << " " << v.nll << " " << v.kl << " "
           << secs() << "\n"
           << std::flush;
      std::printf("epoch %ld/%ld  beta %.2f  held-out ELBO %.2f (reconstruction %.2f, KL %.2f)  %.0f s\n", e + 1,
                  o.epochs, beta, v.elbo(), -v.nll, v.kl, secs());
      std::fflush(stdout);
    };
    auto const hist = nn::fit(space, net, opt, loss, train, fo);
    std::printf("trained %ld epochs (%ld steps) in %.1f s, %.0f images/s\n", hist.epochs_run(), hist.steps,
                hist.data_seconds + hist.compute_seconds, hist.images_per_second());
  } else {
    nn::load_weights(net, base + ".weights");
  }
  // The loss curve from the training log (also that of a resumed or earlier run).
  std::vector<double> train_curve, held_curve;
  {
    std::ifstream in(base + "_training_log.txt");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      double e, be, tl, el, nl, k, sc;
      if (std::sscanf(line.c_str(), "%lf %lf %lf %lf %lf %lf %lf", &e, &be, &tl, &el, &nl, &k, &sc) == 7) {
        train_curve.push_back(tl);
        held_curve.push_back(-el);
      }
    }
  }

  auto const v = held_out_elbo(net, loss, xte, yte, o.batch, eval_noise);
  std::printf("trained: held-out ELBO %.2f nats/image (reconstruction %.2f, KL %.2f) on %ld images\n", v.elbo(), -v.nll,
              v.kl, o.n_test);
  {
    std::ofstream f(base + "_elbo.txt");
    f.precision(6);
    f << "# held-out ELBO per image [nats] of the " << o.set << " VAE, " << o.n_test
      << " held-out images (indices 2^40 + [0, M)), one z each, likelihood " << o.likelihood << " sigma " << o.sigma
      << "\n";
    f << "untrained_elbo " << elbo0 << "\n";
    f << "elbo " << v.elbo() << "\nreconstruction_log_likelihood " << -v.nll << "\nkl " << v.kl << "\n";
  }

  // Figures: reconstructions (z = mu) of the first 16 held-out images, samples of z ~ N(0, I).
  int const show = int(std::min<long>(16, o.n_test));
  {
    vae_model::Network r = net;
    r.set_training(false);
    r.layer<0>().set_use_mean(true);
    nn::Tensor<Scalar, Mem> xb(
        Kokkos::subview(xte, Kokkos::make_pair(0L, long(show)), Kokkos::ALL, Kokkos::ALL, Kokkos::ALL));
    auto const out = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), r.forward(space, xb));
    std::vector<float> tiles;
    int const cols = 8;
    for (int r0 = 0; r0 < show; r0 += cols) {
      for (int i = r0; i < std::min(show, r0 + cols); ++i)
        tiles.insert(tiles.end(), htest.begin() + std::size_t(i) * P, htest.begin() + std::size_t(i + 1) * P);
      for (int i = r0; i < std::min(show, r0 + cols); ++i)
        for (int k = 0; k < P; ++k)
          tiles.push_back(out.data()[std::size_t(i) * (P + 2 * vae_model::latent_dim) + k]);
    }
    write_grid(base + "_reconstructions.png", tiles, cols, 3, 1.0,
               o.set + ": held-out images (odd rows), reconstructions (even rows)");
  }
  {
    auto dec = net.layer<0>().decoder();
    int const ns = 32;
    nn::Tensor<Scalar, Mem> z("z", ns, vae_model::latent_dim, 1, 1);
    {
      auto hz = Kokkos::create_mirror_view(z);
      lensing::Rng rng(o.seed, 99);
      for (std::size_t i = 0; i < hz.size(); ++i)
        hz.data()[i] = Scalar(rng.normal());
      Kokkos::deep_copy(z, hz);
    }
    auto const out = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dec.forward(space, z));
    std::vector<float> tiles(out.data(), out.data() + out.size());
    write_grid(base + "_samples.png", tiles, 8, 3, 1.0, o.set + ": decoder means of z ~ N(0, I)");
  }
  if (!train_curve.empty()) write_loss_plot(base + "_loss.png", train_curve, held_curve, o.set + " VAE");

  if (o.short_run) {
    bool ok = std::isfinite(v.elbo()) && -v.elbo() < 0.5 * -elbo0;
    std::printf("short run: held-out ELBO %.2f vs untrained %.2f (need -ELBO below half the untrained one)\n", v.elbo(),
                elbo0);
    // The saved weights load back: the decoder of the file reproduces the trained decoder.
    auto dec = vae_model::load_decoder(base + ".weights");
    auto mine = net.layer<0>().decoder();
    nn::Tensor<Scalar, Mem> z("z", 4, vae_model::latent_dim, 1, 1);
    Kokkos::deep_copy(z, Scalar(0.3));
    auto const a = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dec.forward(space, z));
    auto const b = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mine.forward(space, z));
    double diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
      diff = std::max(diff, double(std::fabs(a.data()[i] - b.data()[i])));
    if (diff != 0) {
      std::printf("short run: the decoder loaded from %s.weights differs by %g\n", base.c_str(), diff);
      ok = false;
    }
    std::printf("short run: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
  }
  std::printf("done in %.1f s\n", secs());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    return run(o);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "vae_source_prior: %s\n", e.what());
    return 1;
  }
}
