// score_lens_noise: lens parameters with a learned noise score (issue 19
// item 3; seed 002, "SLIC", Legin et al.).
//
// The data are d = M(theta) + r: M the noiseless image of an SIE + external
// shear lens and a known Sersic source (Observation render, Gaussian PSF),
// and r a residual that is NOT white Gaussian noise: white noise (rms 0.5)
// plus spatially correlated Gaussian noise (white noise smoothed by a
// Gaussian of 1.5 pixels, rms 1.0) plus a Poisson number (mean 3) of
// unresolved positive bumps (Gaussian blobs of 0.7-1.5 pixels, exponential
// peak amplitudes of mean 2: faint interlopers / subhalo-like structure).
// Its law Q is known only through samples.  A small fully convolutional
// network s_phi(r, sigma) (dilated 3x3 convolutions, log sigma as a second
// input channel) is trained by denoising score matching
// (nn/score_matching.hpp) on simulated residuals at noise levels
// sigma in [0.08, 0.8]; at sigma_min = 0.08 (2.6 % of the white component's
// variance) it is used as d/dr log Q(r).
//
// Which variant.  The seed's simpler one: the posterior's gradient
//   grad_theta log p(theta | d) = -J(theta)^T s_phi(d - M(theta), sigma_min) + grad log p(theta)
// (dr/dtheta = -J), J^T applied by the library's hand-derived VJP chain (a
// GaussianLikelihood with unit noise whose data view holds M(theta) - s: its
// residual cotangent is then exactly -s, and value_and_gradient returns
// -J^T s), in an
// unadjusted Langevin sampler (ULA).  Only the gradient exists: the score
// does not give log Q(r) itself (its line integral along a path would), so
// MALA's accept step and HMC/NUTS's energy check, which need the density,
// are not available; ULA's O(h) bias is kept small by the step below.
// The sampler is preconditioned: theta = theta0 + L u with L L^T the inverse
// of the white-noise Fisher matrix plus the prior precision at theta0 (the
// truth; the chains start there: the comparison is of the noise models,
// not of the search), re-scaled after the warm-up by the chains' sample
// covariance of u; ULA in u with step h = 0.1 (stationary variance of a
// unit Gaussian 1 / (1 - h/2): +2.6 % in sd).
//
// The comparison: the same sampler with the white Gaussian assumption,
// s(r) = -r / sigma_w^2, sigma_w^2 the residual's per-pixel variance
// (measured on 4,096 draws), over --lenses lenses with truths drawn from the
// prior; per parameter the bias (posterior mean - truth) / posterior sd and
// the coverage of the central 68 % and 95 % intervals.
//
// Modes:
//   --train             train s_phi for --minutes (checkpointed; resumes
//                       from OUT/score_net.weights + .step if present)
//   (default)           evaluate on --lenses lenses with OUT/score_net.weights
//   --score-test        per lens, E[J^T s(r)] over 512 residual draws for both
//                       scores (zero for the true score), no sampling
//                       (use an --out other than the results' directory)
//   --center-score      subtract the learned score's mean map under Q
//                       (512 draws) before use
//   --short             the ctest: 6 training steps of a fresh network
//                       (finite), the committed weights' DSM loss on held-out
//                       residuals below the white-noise score's (at every
//                       sigma), and one lens sampled with both noise models:
//                       finite posteriors, and the learned score's wider than
//                       the white one's (geometric mean of the 7 sd ratios
//                       > 1: the correlated noise carries less information
//                       than white noise of the same variance).
#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>
#include <lensing/io/png.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/nn/activation.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/score_matching.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/serialize.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/sources/light_profile.hpp>
#include <lensing/sources/sersic.hpp>

#include <Kokkos_Core.hpp>

#include <Eigen/Dense>

#include <sys/stat.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../common/cli.hpp"
#include "../common/mosaic.hpp"

#ifndef SCORE_LENS_NOISE_DIR
#define SCORE_LENS_NOISE_DIR "examples/score_lens_noise"
#endif

namespace {

using Space = Kokkos::DefaultHostExecutionSpace;
using Mem = Kokkos::HostSpace;
using S = double;  // lens model
using F = float;   // network
using Lens = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
using Model = lensing::LensModel<Lens, lensing::SersicEllipse<S>, lensing::NoLight<S>>;
using Psf = lensing::GaussianFilter<S, Mem>;
using Likelihood = lensing::GaussianLikelihood<Model, Mem, Psf>;
constexpr int P = 7;  // theta_E e1 e2 center_x center_y gamma1 gamma2
char const* const names[P] = {"theta_E", "e1", "e2", "center_x", "center_y", "gamma1", "gamma2"};
double const prior_mean[P] = {1.0, 0, 0, 0, 0, 0, 0};
double const prior_sd[P] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.03, 0.03};
constexpr double sigma_min = 0.08, sigma_max = 0.8;
constexpr int levels = 6;

struct Options {
  bool train = false, short_run = false, score_test = false, center = false;
  double minutes = 22;
  int lenses = 16, chains = 4, warmup = 400, draws = 1000, batch = 16;
  double lr = 1e-3, step = 0.1;
  std::uint64_t seed = 1;
  std::string out = ".";
  std::string weights;  // empty: OUT/score_net.weights
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: score_lens_noise [--short] [--train] [--minutes M] [--batch B] [--lr LR] [--lenses N]\n"
               "                        [--chains C] [--warmup W] [--draws D] [--step H] [--seed SEED]\n"
               "                        [--weights FILE] [--score-test] [--center-score] [--out DIR]\n");
}

}  // namespace

[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "score_lens_noise: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

namespace {

Options parse(int argc, char** argv) {
  Options o;
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
    } else if (a == "--center-score") {
      o.center = true;
    } else if (a == "--score-test") {
      o.score_test = true;
    } else if (a == "--train") {
      o.train = true;
    } else if (a == "--minutes") {
      o.minutes = parse_real(a, value(), 0.01, 1e4);
    } else if (a == "--batch") {
      o.batch = int(parse_integer(a, value(), 1, 4096));
    } else if (a == "--lr") {
      o.lr = parse_real(a, value(), 1e-8, 1.0);
    } else if (a == "--lenses") {
      o.lenses = int(parse_integer(a, value(), 1, 100000));
    } else if (a == "--chains") {
      o.chains = int(parse_integer(a, value(), 2, 1024));
    } else if (a == "--warmup") {
      o.warmup = int(parse_integer(a, value(), 20, 10000000));
    } else if (a == "--draws") {
      o.draws = int(parse_integer(a, value(), 10, 10000000));
    } else if (a == "--step") {
      o.step = parse_real(a, value(), 1e-6, 1.0);
    } else if (a == "--seed") {
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 9000000000000000000L));
    } else if (a == "--weights") {
      o.weights = value();
      if (o.weights.empty()) bad("--weights needs a non-empty file name");
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty directory name");
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  if (o.weights.empty()) o.weights = (o.short_run ? std::string(SCORE_LENS_NOISE_DIR) : o.out) + "/score_net.weights";
  return o;
}

//----------------------------------------------------------------------------
// The residual law Q (known only through draws).
struct NoiseLaw {
  int n = 32;
  double white = 0.5, corr = 1.0, corr_sigma = 1.5;  // rms, rms, pixels
  double blob_mean = 3, blob_amp = 2, blob_wmin = 0.7, blob_wmax = 1.5;
  std::vector<double> kernel;  // (2R+1)^2, sum of squares 1
  int radius = 0;
  explicit NoiseLaw(int size) : n(size) {
    radius = int(std::ceil(3 * corr_sigma));
    int const k = 2 * radius + 1;
    kernel.resize(std::size_t(k * k));
    double s2 = 0;
    for (int a = 0; a < k; ++a)
      for (int b = 0; b < k; ++b) {
        double const d2 = double((a - radius) * (a - radius) + (b - radius) * (b - radius));
        double const w = std::exp(-d2 / (2 * corr_sigma * corr_sigma));
        kernel[std::size_t(a * k + b)] = w;
        s2 += w * w;
      }
    for (double& w : kernel)
      w /= std::sqrt(s2);
  }
  // Residual `index` of stream `seed` into r (n * n, row-major).
  void draw(std::uint64_t seed, std::uint64_t index, double* r) const {
    lensing::Rng rng(seed, lensing::random::purpose_host, index);
    int const m = n + 2 * radius, k = 2 * radius + 1;
    std::vector<double> w(std::size_t(m) * std::size_t(m));
    for (double& v : w)
      v = rng.normal();
    for (int iy = 0; iy < n; ++iy)
      for (int ix = 0; ix < n; ++ix) {
        double c = 0;
        for (int a = 0; a < k; ++a)
          for (int b = 0; b < k; ++b)
            c += kernel[std::size_t(a * k + b)] * w[std::size_t(iy + a) * m + std::size_t(ix + b)];
        r[iy * n + ix] = corr * c + white * rng.normal();
      }
    int const nb = int(rng.poisson(blob_mean));
    for (int b = 0; b < nb; ++b) {
      double const x0 = -2 + (n + 3) * rng.uniform(), y0 = -2 + (n + 3) * rng.uniform();
      double const wd = blob_wmin + (blob_wmax - blob_wmin) * rng.uniform();
      double const amp = -blob_amp * std::log(rng.uniform());
      for (int iy = std::max(0, int(y0 - 5 * wd)); iy < std::min(n, int(y0 + 5 * wd) + 1); ++iy)
        for (int ix = std::max(0, int(x0 - 5 * wd)); ix < std::min(n, int(x0 + 5 * wd) + 1); ++ix)
          r[iy * n + ix] += amp * std::exp(-((ix - x0) * (ix - x0) + (iy - y0) * (iy - y0)) / (2 * wd * wd));
    }
  }
};

//----------------------------------------------------------------------------
// The score network: fully convolutional, so any image size.
auto make_net(int batch, int n) {
  namespace nn = lensing::nn;
  int const c = 32;
  return nn::make_sequential(nn::Shape4{batch, 2, n, n}, nn::Conv2D<F, Mem>(2, c, 3, 1, 1, 1), nn::GELU<F, Mem>(),
                             nn::Conv2D<F, Mem>(c, c, 3, 1, 2, 2), nn::GELU<F, Mem>(),
                             nn::Conv2D<F, Mem>(c, c, 3, 1, 4, 4), nn::GELU<F, Mem>(),
                             nn::Conv2D<F, Mem>(c, c, 3, 1, 2, 2), nn::GELU<F, Mem>(),
                             nn::Conv2D<F, Mem>(c, 1, 3, 1, 1, 1));
}
using Net = decltype(make_net(1, 8));

// DSM pairs: residuals first..first+B of stream seed, sigma drawn from the
// schedule (or `fixed` > 0), inputs (B, 2, n, n) = (r + sigma z, log sigma),
// labels (B, n^2 + 1) = (z, sigma).
void make_pairs(NoiseLaw const& law, std::vector<double> const& sigmas, std::uint64_t seed, std::uint64_t first,
                double fixed, lensing::View4D<F, Mem> const& in, lensing::View2D<F, Mem> const& lab) {
  int const b = int(in.extent(0)), n = law.n, d = n * n;
  std::vector<double> r(static_cast<std::size_t>(d));
  for (int i = 0; i < b; ++i) {
    law.draw(seed, first + std::uint64_t(i), r.data());
    lensing::Rng rng(seed, lensing::random::purpose_augment, first + std::uint64_t(i));
    double const sigma =
        fixed > 0 ? fixed : sigmas[std::min(sigmas.size() - 1, std::size_t(rng.uniform() * double(sigmas.size())))];
    for (int j = 0; j < d; ++j) {
      double const z = rng.normal();
      in(i, 0, j / n, j % n) = F(r[std::size_t(j)] + sigma * z);
      in(i, 1, j / n, j % n) = F(std::log(sigma));
      lab(i, j) = F(z);
    }
    lab(i, d) = F(sigma);
  }
}

// Per-pixel mean and variance of Q from 4,096 draws (stream seed + 7).
double white_variance(NoiseLaw const& law, std::uint64_t seed, double* mean_out = nullptr) {
  int const d = law.n * law.n, m = 4096;
  std::vector<double> r(static_cast<std::size_t>(d));
  double s = 0, s2 = 0;
  for (int i = 0; i < m; ++i) {
    law.draw(seed + 7, std::uint64_t(i), r.data());
    for (double v : r)
      s += v, s2 += v * v;
  }
  double const mean = s / (double(m) * d);
  if (mean_out) *mean_out = mean;
  return s2 / (double(m) * d) - mean * mean;
}

struct DsmComparison {
  std::vector<double> learned, white;
};

// Held-out DSM loss per pixel at each sigma: the network's and the white Gaussian score's.
DsmComparison compare_dsm(Space const& space, Net& net, NoiseLaw const& law, std::vector<double> const& sigmas,
                          double sw2, int count) {
  int const n = law.n, d = n * n;
  lensing::View4D<F, Mem> in("in", count, 2, n, n);
  lensing::View2D<F, Mem> lab("lab", count, d + 1);
  lensing::nn::DenoisingScoreMatchingLoss const loss;
  lensing::nn::Tensor<F, Mem> ws("white_score", count, 1, n, n);
  DsmComparison c;
  for (double sigma : sigmas) {
    make_pairs(law, sigmas, 987654321, 0, sigma, in, lab);
    auto const pred = net.forward(space, in);
    space.fence();
    c.learned.push_back(loss.value(space, pred, lab) / d);
    for (int i = 0; i < count; ++i)
      for (int j = 0; j < d; ++j)
        ws(i, 0, j / n, j % n) = F(-double(in(i, 0, j / n, j % n)) / (sw2 + sigma * sigma));
    c.white.push_back(loss.value(space, ws, lab) / d);
  }
  return c;
}

//----------------------------------------------------------------------------
// Training.
int train(Options const& o) {
  Space space;
  namespace nn = lensing::nn;
  NoiseLaw const law(o.short_run ? 16 : 32);
  int const n = law.n, d = n * n, b = o.short_run ? 4 : o.batch;
  auto const sigmas = nn::geometric_sigmas(sigma_max, sigma_min, levels);
  auto net = make_net(b, n);
  net.initialize(o.seed);
  std::string const wpath = o.short_run ? o.out + "/short_net.weights" : o.weights;
  long step = 0;
  if (!o.short_run) {
    std::ifstream st(wpath + ".step");
    if (st >> step) {
      nn::load_weights(net, wpath);
      std::printf("score_lens_noise: resuming from %s at step %ld\n", wpath.c_str(), step);
    }
  }
  nn::Adam<F, Mem> opt(net.num_params(), o.lr);
  nn::ExponentialMovingAverage<F, Mem> ema(net.num_params(), 0.999);
  nn::DenoisingScoreMatchingLoss const loss;
  lensing::View4D<F, Mem> in("in", b, 2, n, n);
  lensing::View2D<F, Mem> lab("lab", b, d + 1);
  lensing::View1D<F, Mem> keep("keep", net.num_params());
  double const sw2 = white_variance(law, o.seed);
  std::FILE* log = o.short_run ? stdout : std::fopen((o.out + "/training_log.txt").c_str(), "a");
  if (!log) throw std::runtime_error("score_lens_noise: cannot open the training log in " + o.out);
  std::fprintf(log, "# DSM training: %dx%d residuals, batch %d, lr %g, sigmas %g..%g (%d levels), white var %.4f\n", n,
               n, b, o.lr, sigma_max, sigma_min, levels, sw2);
  auto save = [&]() {
    Kokkos::deep_copy(keep, net.parameters());
    ema.copy_to(space, net.parameters());
    space.fence();
    nn::save_weights(net, wpath);
    Kokkos::deep_copy(net.parameters(), keep);
    std::ofstream(wpath + ".step") << step << "\n";
  };
  auto const t0 = std::chrono::steady_clock::now();
  auto seconds = [&]() { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  long const max_steps = o.short_run ? 6 : (1L << 40);
  double running = 0, first_loss = 0;
  long const start = step;
  while (step - start < max_steps && seconds() < o.minutes * 60) {
    // Fresh residuals every step (the stream index is the global sample index).
    make_pairs(law, sigmas, o.seed, std::uint64_t(step) * std::uint64_t(b), 0, in, lab);
    if (!o.short_run) opt.set_lr(seconds() > 0.6 * o.minutes * 60 ? o.lr * 0.3 : o.lr);
    auto const pred = net.forward(space, in);
    double const l = loss(space, pred, lab, net.output_gradient()) / d;
    net.backward(space, in);
    opt.step(space, net.parameters(), net.gradients());
    ema.update(space, net.parameters());
    space.fence();
    if (!std::isfinite(l)) throw std::runtime_error("score_lens_noise: non-finite training loss");
    running = step == start ? l : 0.98 * running + 0.02 * l;
    if (step == start) first_loss = l;
    ++step;
    if (step % 100 == 0 || o.short_run) {
      std::fprintf(log, "step %ld  %.0f s  DSM loss/pixel %.5f (running %.5f)\n", step, seconds(), l, running);
      std::fflush(log);
    }
    if (!o.short_run && step % 500 == 0) save();
  }
  if (o.short_run) {
    std::printf("short training: %ld steps, DSM loss/pixel %.4f -> %.4f: %s\n", step, first_loss, running,
                std::isfinite(running) ? "finite" : "NON-FINITE");
    return std::isfinite(running) ? 0 : 1;
  }
  save();
  // The EMA weights against the white Gaussian score on held-out residuals.
  ema.copy_to(space, net.parameters());
  space.fence();
  auto const c = compare_dsm(space, net, law, sigmas, sw2, 256);
  std::fprintf(log, "# %ld steps in %.0f s; held-out DSM loss/pixel (256 residuals): sigma learned white\n", step,
               seconds());
  for (std::size_t i = 0; i < sigmas.size(); ++i)
    std::fprintf(log, "#   %.4f  %.5f  %.5f\n", sigmas[i], c.learned[i], c.white[i]);
  std::fclose(log);
  std::printf("score_lens_noise: trained %ld steps in %.0f s, weights %s\n", step, seconds(), wpath.c_str());
  return 0;
}

//----------------------------------------------------------------------------
// Inference.
struct Setup {
  int n = 32, k = 2;
  double pixel = 0.1, fwhm = 0.2;
};

Model make_model(double const* theta, double src_x, double src_y) {
  std::vector<double> t(std::size_t(Model::num_params), 0.0);
  for (int j = 0; j < P; ++j)
    t[std::size_t(j)] = theta[j];
  // shear origin (0, 0); source: amp R_sersic n_sersic e1 e2 centre
  double const src[7] = {1500.0, 0.25, 1.5, 0.05, -0.05, src_x, src_y};
  for (int j = 0; j < 7; ++j)
    t[std::size_t(Model::source_offset + j)] = src[j];
  return Model::unpack(t.data());
}

struct ChainSummary {
  double mean[P], sd[P], lo68[P], hi68[P], lo95[P], hi95[P];
  double seconds = 0;
};

// ULA on the lens parameters with the noise score `noise_score(r, s, count)`
// (count residual images (n*n each) -> scores).
template <class NoiseScore>
ChainSummary sample_lens(Space const& space, Likelihood const& lik, lensing::View2D<S, Mem> const& dprime,
                         std::vector<double> const& data, std::vector<double> const& theta0, double src_x, double src_y,
                         Eigen::MatrixXd const& l0, Options const& o, std::uint64_t seed,
                         NoiseScore const& noise_score) {
  auto const t0 = std::chrono::steady_clock::now();
  int const n = int(dprime.extent(0)), d = n * n, c = o.chains;
  Eigen::MatrixXd l = l0;
  std::vector<Eigen::VectorXd> u(std::size_t(c), Eigen::VectorXd::Zero(P));
  std::vector<double> resid(std::size_t(c) * d), score(std::size_t(c) * d), models(std::size_t(c) * d);
  lensing::View1D<S, Mem> grad("grad", Model::num_params);
  auto gradient = [&](std::vector<Eigen::VectorXd> const& uu, std::vector<Eigen::VectorXd>& g) {
    std::vector<std::vector<double>> th(static_cast<std::size_t>(c), std::vector<double>(P));
    for (int ch = 0; ch < c; ++ch) {
      Eigen::VectorXd const t = l * uu[std::size_t(ch)];
      for (int j = 0; j < P; ++j)
        th[std::size_t(ch)][std::size_t(j)] = theta0[std::size_t(j)] + t(j);
      lik.value(space, make_model(th[std::size_t(ch)].data(), src_x, src_y));
      auto const& mi = lik.model_image();
      for (int j = 0; j < d; ++j) {
        models[std::size_t(ch) * d + j] = mi(j / n, j % n);
        resid[std::size_t(ch) * d + j] = data[std::size_t(j)] - mi(j / n, j % n);
      }
    }
    noise_score(resid, score, c);
    for (int ch = 0; ch < c; ++ch) {
      for (int j = 0; j < d; ++j)
        dprime(j / n, j % n) = models[std::size_t(ch) * d + j] - score[std::size_t(ch) * d + j];
      lik.value_and_gradient(space, make_model(th[std::size_t(ch)].data(), src_x, src_y), grad);
      Eigen::VectorXd gt(P);
      for (int j = 0; j < P; ++j)
        gt(j) = grad(j) - (th[std::size_t(ch)][std::size_t(j)] - prior_mean[j]) / (prior_sd[j] * prior_sd[j]);
      g[std::size_t(ch)] = l.transpose() * gt;
    }
  };
  std::vector<Eigen::VectorXd> g(std::size_t(c), Eigen::VectorXd::Zero(P));
  std::vector<std::vector<double>> draws(static_cast<std::size_t>(P));
  std::vector<Eigen::VectorXd> warm;  // second half of the warm-up, theta - theta0
  double const hw = 0.5 * o.step;
  for (int phase = 0; phase < 2; ++phase) {
    int const steps = phase == 0 ? o.warmup : o.draws;
    double const h = phase == 0 ? hw : o.step, s2h = std::sqrt(2 * h);
    for (int it = 0; it < steps; ++it) {
      gradient(u, g);
      for (int ch = 0; ch < c; ++ch) {
        lensing::Rng rng(seed, lensing::random::purpose_chain, std::uint64_t(ch),
                         std::uint64_t(phase) * 100000000ULL + std::uint64_t(it));
        for (int j = 0; j < P; ++j)
          u[std::size_t(ch)](j) += h * g[std::size_t(ch)](j) + s2h * rng.normal();
        if (!u[std::size_t(ch)].allFinite()) throw std::runtime_error("score_lens_noise: a chain diverged");
        Eigen::VectorXd const t = l * u[std::size_t(ch)];
        if (phase == 0 && it >= steps / 2) warm.push_back(t);
        if (phase == 1)
          for (int j = 0; j < P; ++j)
            draws[std::size_t(j)].push_back(theta0[std::size_t(j)] + t(j));
      }
    }
    if (phase == 0) {
      // Re-scale: L = chol(sample covariance of theta - theta0) (+ a small jitter of L0's).
      Eigen::VectorXd mu = Eigen::VectorXd::Zero(P);
      for (auto const& t : warm)
        mu += t;
      mu /= double(warm.size());
      Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(P, P);
      for (auto const& t : warm)
        cov += (t - mu) * (t - mu).transpose();
      cov /= double(warm.size() - 1);
      cov += 1e-4 * l0 * l0.transpose();
      Eigen::MatrixXd const lnew = cov.llt().matrixL();
      for (auto& uu : u)
        uu = lnew.triangularView<Eigen::Lower>().solve(l * uu);
      l = lnew;
    }
  }
  ChainSummary r;
  for (int j = 0; j < P; ++j) {
    auto& v = draws[std::size_t(j)];
    double m = 0, s2 = 0;
    for (double x : v)
      m += x;
    m /= double(v.size());
    for (double x : v)
      s2 += (x - m) * (x - m);
    r.mean[j] = m;
    r.sd[j] = std::sqrt(s2 / double(v.size() - 1));
    std::sort(v.begin(), v.end());
    auto q = [&](double p) { return v[std::min(v.size() - 1, std::size_t(p * double(v.size())))]; };
    r.lo68[j] = q(0.1587), r.hi68[j] = q(0.8413), r.lo95[j] = q(0.025), r.hi95[j] = q(0.975);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

int evaluate(Options const& o) {
  Space space;
  Setup const su;
  int const n = su.n, d = n * n;
  NoiseLaw const law(n);
  double wmean = 0;
  double const sw2 = white_variance(law, o.seed, &wmean);
  auto net = make_net(o.chains, n);
  lensing::nn::load_weights(net, o.weights);
  net.set_training(false);
  auto const sigmas = lensing::nn::geometric_sigmas(sigma_max, sigma_min, levels);
  std::printf(
      "score_lens_noise: %dx%d pixels of %.2f\", PSF FWHM %.2f\"; residual variance %.4f (mean %.4f); "
      "weights %s\n",
      n, n, su.pixel, su.fwhm, sw2, wmean, o.weights.c_str());
  std::string const out = o.out;
  ::mkdir(out.c_str(), 0755);
  if (o.short_run) {
    // The committed network against the white score on held-out residuals.
    auto const c = compare_dsm(space, net, law, sigmas, sw2, 64);
    bool ok = true;
    for (std::size_t i = 0; i < sigmas.size(); ++i) {
      std::printf("held-out DSM loss/pixel at sigma %.3f: learned %.5f, white %.5f\n", sigmas[i], c.learned[i],
                  c.white[i]);
      ok = ok && c.learned[i] < c.white[i];
    }
    std::printf("learned score beats the white score at every sigma: %s\n", ok ? "yes" : "NO");
    if (!ok) return 1;
  }

  lensing::Observation<S, Mem, Psf> const obs(lensing::PixelGrid<S>::square(n, su.pixel, su.k),
                                              Psf(su.fwhm, su.pixel, n, n));
  lensing::View2D<S, Mem> dprime("dprime", n, n), ones("ones", n, n);
  Kokkos::deep_copy(ones, 1.0);
  Likelihood const lik(obs, dprime, ones, ones);
  lensing::View4D<F, Mem> in("in", o.chains, 2, n, n);
  std::vector<double> score_mean(static_cast<std::size_t>(d), 0.0);
  auto learned = [&](std::vector<double> const& r, std::vector<double>& s, int count) {
    F const ls = F(std::log(sigma_min));
    for (int i = 0; i < count; ++i)
      for (int j = 0; j < d; ++j) {
        in(i, 0, j / n, j % n) = F(r[std::size_t(i) * d + j]);
        in(i, 1, j / n, j % n) = ls;
      }
    auto const out4 = net.forward(space, in);
    space.fence();
    for (int i = 0; i < count; ++i)
      for (int j = 0; j < d; ++j)
        s[std::size_t(i) * d + j] = out4(i, 0, j / n, j % n) - score_mean[std::size_t(j)];
  };
  if (o.center) {
    // The true score has zero mean under Q (E_Q[grad log Q] = 0); the
    // network's does not (--score-test).  Subtract its mean map over 512
    // residual draws of a stream the evaluation does not use.
    std::vector<double> rr(std::size_t(o.chains) * d), sc(std::size_t(o.chains) * d), acc(std::size_t(d), 0.0);
    int const nr = 512 / o.chains * o.chains;
    for (int b0 = 0; b0 < nr; b0 += o.chains) {
      for (int i = 0; i < o.chains; ++i)
        law.draw(o.seed + 777, std::uint64_t(b0 + i), rr.data() + std::size_t(i) * d);
      learned(rr, sc, o.chains);
      for (std::size_t q = 0; q < sc.size(); ++q)
        acc[q % std::size_t(d)] += sc[q] / nr;
    }
    score_mean = acc;
    double m2 = 0;
    for (double v : score_mean)
      m2 += v * v / d;
    std::printf("centred learned score: rms of its mean map %.4f\n", std::sqrt(m2));
  }
  auto white = [&](std::vector<double> const& r, std::vector<double>& s, int count) {
    for (std::size_t j = 0; j < std::size_t(count) * d; ++j)
      s[j] = -r[j] / sw2;
  };
  int const nl = o.short_run ? 1 : o.lenses;
  std::ofstream csv(out + "/results.csv");
  csv << "lens,model,parameter,truth,mean,sd,z,in68,in95\n";
  int in68[2] = {0, 0}, in95[2] = {0, 0}, total = 0;
  double sumz2[2][P] = {}, sumsd[2][P] = {};
  std::vector<double> zs[2];
  double secs[2] = {0, 0};
  bool short_ok = true;
  double log_sd_ratio = 0;
  std::vector<MosaicPanel> panels;
  for (int lens = 0; lens < nl; ++lens) {
    lensing::Rng rng(o.seed, lensing::random::purpose_prior, std::uint64_t(lens));
    std::vector<double> truth(P);
    for (int j = 0; j < P; ++j)
      truth[std::size_t(j)] = prior_mean[j] + prior_sd[j] * rng.normal();
    double const sx = 0.15 * (2 * rng.uniform() - 1), sy = 0.15 * (2 * rng.uniform() - 1);
    lik.value(space, make_model(truth.data(), sx, sy));
    std::vector<double> model(static_cast<std::size_t>(d)), r(static_cast<std::size_t>(d)),
        data(static_cast<std::size_t>(d));
    for (int j = 0; j < d; ++j)
      model[std::size_t(j)] = lik.model_image()(j / n, j % n);
    law.draw(o.seed + 1000003, std::uint64_t(lens), r.data());
    for (int j = 0; j < d; ++j)
      data[std::size_t(j)] = model[std::size_t(j)] + r[std::size_t(j)];
    // Preconditioner: white Fisher + prior precision at the truth (J by central differences).
    Eigen::MatrixXd jac(d, P);
    for (int j = 0; j < P; ++j) {
      double const hstep = 1e-4;
      std::vector<double> tp = truth, tm = truth;
      tp[std::size_t(j)] += hstep;
      tm[std::size_t(j)] -= hstep;
      lik.value(space, make_model(tp.data(), sx, sy));
      std::vector<double> up(static_cast<std::size_t>(d));
      for (int q = 0; q < d; ++q)
        up[std::size_t(q)] = lik.model_image()(q / n, q % n);
      lik.value(space, make_model(tm.data(), sx, sy));
      for (int q = 0; q < d; ++q)
        jac(q, j) = (up[std::size_t(q)] - lik.model_image()(q / n, q % n)) / (2 * hstep);
    }
    Eigen::MatrixXd fisher = jac.transpose() * jac / sw2;
    for (int j = 0; j < P; ++j)
      fisher(j, j) += 1 / (prior_sd[j] * prior_sd[j]);
    Eigen::MatrixXd const l0 = Eigen::MatrixXd(fisher.inverse()).llt().matrixL();
    if (o.score_test) {
      // The score's unbiasedness along the lens directions: for the true
      // score E_r[J^T s(r)] = 0 (and -J^T s is the gradient of the
      // log-likelihood at the truth, so a mean offset is a bias of the
      // posterior).  z_j = mean / (sd / sqrt(N)) over N = 512 residual draws.
      int const nr = 512;
      for (int m = 0; m < 2; ++m) {
        Eigen::VectorXd sum = Eigen::VectorXd::Zero(P), sum2 = Eigen::VectorXd::Zero(P);
        std::vector<double> rr(std::size_t(o.chains) * d), sc(std::size_t(o.chains) * d);
        for (int b0 = 0; b0 < nr; b0 += o.chains) {
          for (int i = 0; i < o.chains; ++i)
            law.draw(o.seed + 555, std::uint64_t(b0 + i), rr.data() + std::size_t(i) * d);
          if (m == 0)
            white(rr, sc, o.chains);
          else
            learned(rr, sc, o.chains);
          for (int i = 0; i < o.chains; ++i) {
            Eigen::VectorXd g = Eigen::VectorXd::Zero(P);
            for (int q = 0; q < d; ++q)
              g += jac.row(q).transpose() * sc[std::size_t(i) * d + q];
            g = l0.transpose() * g;  // in the whitened coordinates: unit posterior sd
            sum += g;
            sum2 += g.cwiseProduct(g);
          }
        }
        std::printf("lens %d %-7s score test: z of E[L0^T J^T s] =", lens, m == 0 ? "white" : "learned");
        for (int j = 0; j < P; ++j) {
          double const mean = sum(j) / nr, sd = std::sqrt(std::max(0.0, sum2(j) / nr - mean * mean));
          std::printf(" %s %+.1f (mean %+.2f)", names[j], mean / (sd / std::sqrt(double(nr))), mean);
        }
        std::printf("\n");
      }
      continue;
    }
    for (int m = 0; m < 2; ++m) {
      ChainSummary const cs =
          m == 0 ? sample_lens(space, lik, dprime, data, truth, sx, sy, l0, o, o.seed * 7919 + lens, white)
                 : sample_lens(space, lik, dprime, data, truth, sx, sy, l0, o, o.seed * 7919 + lens, learned);
      secs[m] += cs.seconds;
      for (int j = 0; j < P; ++j) {
        double const t = truth[std::size_t(j)], z = (cs.mean[j] - t) / cs.sd[j];
        bool const a = cs.lo68[j] <= t && t <= cs.hi68[j], b = cs.lo95[j] <= t && t <= cs.hi95[j];
        in68[m] += a, in95[m] += b;
        sumz2[m][j] += z * z;
        sumsd[m][j] += cs.sd[j];
        zs[m].push_back(z);
        csv << lens << "," << (m == 0 ? "white" : "learned") << "," << names[j] << "," << t << "," << cs.mean[j] << ","
            << cs.sd[j] << "," << z << "," << a << "," << b << "\n";
        if (o.short_run) {
          std::printf("  %-9s truth %+.4f  %s posterior %+.4f +- %.4f  (z %+.2f)\n", names[j], t,
                      m == 0 ? "white  " : "learned", cs.mean[j], cs.sd[j], z);
          short_ok = short_ok && std::isfinite(z);
          log_sd_ratio += (m == 0 ? -1 : 1) * std::log(cs.sd[j]) / P;
        }
      }
      std::printf("lens %d %-7s: %.1f s, sd(theta_E) %.4f, z(theta_E) %+.2f\n", lens, m == 0 ? "white" : "learned",
                  cs.seconds, cs.sd[0], (cs.mean[0] - truth[0]) / cs.sd[0]);
      std::fflush(stdout);
    }
    total += P;
    if (lens < 3) {
      // data | residual | learned score of the residual at the truth
      std::vector<double> sc(std::size_t(o.chains) * d, 0.0), rr(std::size_t(o.chains) * d, 0.0);
      std::copy(r.begin(), r.end(), rr.begin());
      learned(rr, sc, 1);
      auto const dr = value_range(data);
      panels.push_back({data, n, n, dr.first, dr.second, lensing::io::ColorMap::magma, "data"});
      panels.push_back({r, n, n, -4, 4, lensing::io::ColorMap::diverging, "residual r"});
      std::vector<double> s1(sc.begin(), sc.begin() + d);
      panels.push_back({s1, n, n, -8, 8, lensing::io::ColorMap::diverging, "learned score"});
      std::vector<double> wsc(static_cast<std::size_t>(d));
      for (int j = 0; j < d; ++j)
        wsc[std::size_t(j)] = -r[std::size_t(j)] / sw2;
      panels.push_back({wsc, n, n, -8, 8, lensing::io::ColorMap::diverging, "white score"});
    }
  }
  if (o.score_test) return 0;
  write_mosaic(out + "/residuals.png", panels, 4, 4);
  std::ofstream md(out + "/summary.md");
  char line[512];
  std::snprintf(line, sizeof line,
                "%d lenses x %d parameters; %d chains x (%d warm-up + %d) ULA steps, h = %g; residual variance %.4f\n\n"
                "| noise model | coverage 68 %% | coverage 95 %% | seconds |\n|---|---|---|---|\n",
                nl, P, o.chains, o.warmup, o.draws, o.step, sw2);
  md << line;
  for (int m = 0; m < 2; ++m) {
    std::snprintf(line, sizeof line, "| %s | %.1f %% | %.1f %% | %.0f |\n", m == 0 ? "white Gaussian" : "learned score",
                  100.0 * in68[m] / total, 100.0 * in95[m] / total, secs[m]);
    md << line;
  }
  md << "\n| parameter | rms z white | rms z learned | mean sd white | mean sd learned |\n|---|---|---|---|---|\n";
  for (int j = 0; j < P; ++j) {
    std::snprintf(line, sizeof line, "| %s | %.2f | %.2f | %.4g | %.4g |\n", names[j], std::sqrt(sumz2[0][j] / nl),
                  std::sqrt(sumz2[1][j] / nl), sumsd[0][j] / nl, sumsd[1][j] / nl);
    md << line;
  }
  md.close();
  std::ifstream back(out + "/summary.md");
  std::stringstream ss;
  ss << back.rdbuf();
  std::printf("%s", ss.str().c_str());
  // z-scores: white (left) and learned (right), one column per parameter.
  {
    lensing::io::Canvas cv(2 * (P * 24 + 20) + 20, 260, {255, 255, 255});
    for (int m = 0; m < 2; ++m) {
      int const x0 = 10 + m * (P * 24 + 30);
      cv.text(x0, 4, m == 0 ? "z white" : "z learned", {0, 0, 0});
      for (int z = -4; z <= 4; z += 2)
        for (int q = 0; q < P * 24; ++q)
          cv.set(x0 + q, 130 - z * 25, z == 0 ? lensing::io::Rgb{0, 0, 0} : lensing::io::Rgb{200, 200, 200});
      for (std::size_t i = 0; i < zs[m].size(); ++i) {
        int const j = int(i % P);
        double const z = std::max(-4.9, std::min(4.9, zs[m][i]));
        int const col = x0 + j * 24 + 4 + int((i / P) % 16), row = 130 - int(std::lround(z * 25));
        for (int a = -1; a <= 1; ++a)
          for (int b = -1; b <= 1; ++b)
            cv.set(col + a, row + b, m == 0 ? lensing::io::Rgb{200, 40, 40} : lensing::io::Rgb{40, 40, 200});
      }
    }
    cv.write(out + "/zscores.png");
  }
  if (o.short_run) {
    std::printf("geometric mean sd ratio learned / white: %.3f (must be > 1)\n", std::exp(log_sd_ratio));
    short_ok = short_ok && log_sd_ratio > 0;
    std::printf("short run: %s\n", short_ok ? "ok" : "FAILED");
    return short_ok ? 0 : 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    ::mkdir(o.out.c_str(), 0755);
    if (o.short_run) {
      o.chains = 2, o.warmup = 60, o.draws = 140;
      int const rc = train(o);
      if (rc != 0) return rc;
      return evaluate(o);
    }
    return o.train ? train(o) : evaluate(o);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "score_lens_noise: %s\n", e.what());
    return 1;
  }
}
