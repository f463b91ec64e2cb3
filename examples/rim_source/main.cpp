// rim_source: a recurrent inference machine (RIM; Morningstar et al. 2019,
// arXiv:1901.01359) that reconstructs the pixelated source behind a KNOWN
// lens, trained by backpropagation through time on procedural galaxies
// behind random SIE + shear lenses, and compared with the regularised linear
// inversion (Suyu et al. 2006) on the same held-out images.
//
//   rim_source [--short] [--steps S] [--batch B] [--lr LR] [--seed SEED] [--test N]
//              [--rim-steps T] [--features F] [--hidden H] [--out DIR] [--resume]
//              [--eval-only] [--weights FILE] [--log-every K] [--checkpoint-every K]
//
// Data (examples/README.md, "Recurrent inference machine"): a 32 x 32 source
// grid of 0.05" (+-0.8") holding a procedural galaxy (simulate/galaxies.hpp;
// bulge + disk + clumps, R_d in [0.08", 0.2"], centre offset up to 0.1"),
// scaled to a peak of 1; an SIE + external shear lens drawn per image
// (theta_E ~ U(0.8", 1.3"), e1, e2 ~ U(-0.15, 0.15), centre ~ U(-0.05", 0.05"),
// gamma1, gamma2 ~ U(-0.04, 0.04)); a 64 x 64 image of 0.075" (2 x 2
// sub-pixels) blurred by a Gaussian PSF of FWHM 0.12"; Gaussian noise of
// sigma = peak(L s) / SNR, SNR log-uniform in [15, 60].  The data are made
// with the same lensing operator L (inversion/lensing_operator.hpp) that both
// reconstructions use, so the comparison isolates the reconstruction method.
//
// The RIM (nn/rim.hpp): s_{t+1} = s_t + conv(ConvGRU([tanh(conv([s_t, g_t])), h_t])),
// g_t = c L^T C^-1 (d - L s_t), c = 1 / mean diag(L^T C^-1 L); loss the mean
// over the T steps of the source MSE.  Adam with a cosine-decayed rate (to
// a tenth), gradient norm clipped at 1, fresh simulations at every step.
//
// The linear inversion (inversion/source_inversion.hpp): gradient
// regularisation, lambda maximising the Bayesian evidence.
//
// Outputs in DIR: rim.weights (checkpoint every K steps, with rim.step),
// training_log.txt, eval.csv (per test image: source MSE and residual
// chi^2 per pixel of the zero source, the RIM's first and last step and the
// linear inversion), summary.txt (the table), comparison.png (truth, data,
// RIM, linear inversion, both normalised residuals, for 4 test images).
//
// --short: a ctest run (16 x 16 source, 32 x 32 image, T = 4, 100 steps of
// batch 4, 16 test images): asserts that the trained RIM's final source MSE
// is below half that of the zero source and below its first step's, and
// prints "short run: ok".
#include <lensing/core/random.hpp>
#include <lensing/inversion/lensing_operator.hpp>
#include <lensing/inversion/regularisation.hpp>
#include <lensing/inversion/source_inversion.hpp>
#include <lensing/io/png.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/rim.hpp>
#include <lensing/nn/serialize.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/kernels.hpp>
#include <lensing/simulate/galaxies.hpp>

#include "../common/cli.hpp"

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Options {
  bool short_run = false;
  long steps = 3000;
  int batch = 8;
  double lr = 2e-3;
  std::uint64_t seed = 2026;
  int test = 64;
  int rim_steps = 8, features = 16, hidden = 16;
  std::string out = "rim_out";
  bool resume = false, eval_only = false;
  std::string weights;  // --eval-only: default DIR/rim.weights
  long log_every = 25, checkpoint_every = 100;
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: rim_source [--short] [--steps S] [--batch B] [--lr LR] [--seed SEED] [--test N]\n"
               "                  [--rim-steps T] [--features F] [--hidden H] [--out DIR] [--resume]\n"
               "                  [--eval-only] [--weights FILE] [--log-every K] [--checkpoint-every K]\n"
               "  --short             ctest mode: small images, a short training, checks, 'short run: ok'\n"
               "  --steps S           training steps (default 3000)\n"
               "  --batch B           simulated images per step (default 8)\n"
               "  --lr LR             Adam rate, cosine decay to LR/10 (default 2e-3)\n"
               "  --seed SEED         simulation and initialisation seed (default 2026)\n"
               "  --test N            held-out test images (default 64)\n"
               "  --rim-steps T       RIM updates (default 8)\n"
               "  --features F        channels of the input convolution (default 16)\n"
               "  --hidden H          channels of the ConvGRU state (default 16)\n"
               "  --out DIR           output directory (default rim_out)\n"
               "  --resume            continue from DIR/rim.weights and DIR/rim.step (fresh Adam moments)\n"
               "  --eval-only         no training: evaluate the weights of --weights (default DIR/rim.weights)\n"
               "  --log-every K       steps per line of training_log.txt (default 25)\n"
               "  --checkpoint-every K  steps between saves of rim.weights (default 100)\n"
               "threads: set OMP_NUM_THREADS.\n");
}

}  // namespace

[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "rim_source: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

namespace {

Options parse(int argc, char** argv) {
  Options o;
  bool steps_set = false, batch_set = false, test_set = false, t_set = false, f_set = false, h_set = false;
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
    } else if (a == "--lr") {
      o.lr = parse_real(a, value(), 1e-8, 1.0);
    } else if (a == "--seed") {
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 9000000000000000000L));
    } else if (a == "--test") {
      o.test = int(parse_integer(a, value(), 1, 100000));
      test_set = true;
    } else if (a == "--rim-steps") {
      o.rim_steps = int(parse_integer(a, value(), 1, 100));
      t_set = true;
    } else if (a == "--features") {
      o.features = int(parse_integer(a, value(), 1, 256));
      f_set = true;
    } else if (a == "--hidden") {
      o.hidden = int(parse_integer(a, value(), 1, 256));
      h_set = true;
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty directory name");
    } else if (a == "--resume") {
      o.resume = true;
    } else if (a == "--eval-only") {
      o.eval_only = true;
    } else if (a == "--weights") {
      o.weights = value();
      if (o.weights.empty()) bad("--weights needs a non-empty file name");
    } else if (a == "--log-every") {
      o.log_every = parse_integer(a, value(), 1, 100000000);
    } else if (a == "--checkpoint-every") {
      o.checkpoint_every = parse_integer(a, value(), 1, 100000000);
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  if (o.resume && o.eval_only) bad("--resume and --eval-only exclude each other");
  if (o.short_run) {
    if (!steps_set) o.steps = 100;
    if (!batch_set) o.batch = 4;
    if (!test_set) o.test = 16;
    if (!t_set) o.rim_steps = 4;
    if (!f_set) o.features = 8;
    if (!h_set) o.hidden = 8;
  }
  if (o.weights.empty()) o.weights = o.out + "/rim.weights";
  return o;
}

using Host = Kokkos::DefaultHostExecutionSpace;
using Mem = Host::memory_space;
using Scalar = float;  // the network (the likelihood terms are double)
using Lens = lensing::Composite<lensing::SIE<double>, lensing::ExternalShear<double>>;
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// Grids, PSF and priors of the simulated observations.
struct Setting {
  lensing::PixelGrid<double> image, source;
  lensing::PsfKernel<double> psf;
  Kokkos::View<double**, Kokkos::LayoutRight, Kokkos::HostSpace> mask;
  lensing::simulate::GalaxyModel<double> galaxy;

  explicit Setting(bool small) {
    // The same field of view either way: 4.8" image, 1.6" source grid.
    int const ni = small ? 32 : 64, ns = small ? 16 : 32;
    image = lensing::PixelGrid<double>(ni, ni, 4.8 / ni, 2);
    source = lensing::PixelGrid<double>(ns, ns, 1.6 / ns);
    psf = lensing::gaussian_psf_kernel<double>(small ? 0.24 : 0.12, image.pixel_scale(), 3.0);
    mask = decltype(mask)("mask", ni, ni);
    Kokkos::deep_copy(mask, 1.0);
    galaxy.r_min = 0.08;
    galaxy.r_max = 0.2;
    galaxy.offset = 0.1;
  }
};

/// One simulated observation: the problem the RIM sees, the truth, the
/// noise and the lens.
struct Sample {
  lensing::nn::LinearGaussianProblem problem;
  std::vector<double> truth;  // source pixels, row-major, peak 1
  Eigen::VectorXd sigma;      // per image pixel
};

// Image `index` of stream `seed` (deterministic).
Sample simulate(Setting const& st, std::uint64_t seed, std::uint64_t index) {
  Host space;
  int const sny = st.source.ny(), snx = st.source.nx();
  Kokkos::View<double***, Kokkos::LayoutRight, Mem> stamp("stamp", 1, sny, snx);
  Kokkos::View<lensing::simulate::Galaxy<double>*, Mem> gal("galaxy", 1);
  lensing::simulate::render_galaxies(space, st.galaxy, stamp, st.source.pixel_scale(), gal, seed, index, 4);
  space.fence();
  Sample s;
  s.truth.resize(std::size_t(sny) * snx);
  double peak = 0;
  for (std::size_t i = 0; i < s.truth.size(); ++i)
    peak = std::max(peak, stamp.data()[i]);
  for (std::size_t i = 0; i < s.truth.size(); ++i)
    s.truth[i] = peak > 0 ? stamp.data()[i] / peak : 0.0;
  lensing::Rng rng(seed ^ 0x5eed0f1e25ULL, index);
  auto u = [&](double a, double b) { return a + (b - a) * rng.uniform(); };
  double const t[9] = {
      u(0.8, 1.3), u(-0.15, 0.15), u(-0.15, 0.15), u(-0.05, 0.05), u(-0.05, 0.05), u(-0.04, 0.04), u(-0.04, 0.04), 0.0,
      0.0};
  Lens const lens = Lens::unpack(t);
  auto op = lensing::lensing_operator(space, lens, st.image, st.source, st.mask, st.psf);
  Eigen::Map<Eigen::VectorXd const> sv(s.truth.data(), long(s.truth.size()));
  Eigen::VectorXd d = op.matrix * sv;
  double const snr = 15 * std::exp(std::log(60.0 / 15.0) * rng.uniform());
  double const sigma = std::max(d.maxCoeff(), 1e-12) / snr;
  s.sigma = Eigen::VectorXd::Constant(d.size(), sigma);
  for (Eigen::Index i = 0; i < d.size(); ++i)
    d[i] += sigma * rng.normal();
  s.problem = lensing::nn::LinearGaussianProblem::make(std::move(op.matrix), d, s.sigma);
  return s;
}

std::vector<Sample> simulate_batch(Setting const& st, std::uint64_t seed, std::uint64_t first, int n) {
  std::vector<Sample> out;
  out.reserve(std::size_t(n));
  for (int i = 0; i < n; ++i)
    out.push_back(simulate(st, seed, first + std::uint64_t(i)));
  return out;
}

//----------------------------------------------------------------------------
// Figure: rows of panels, each `scale` screen pixels per image pixel.

void panel(lensing::io::Canvas& c, int x0, int y0, std::vector<double> const& v, int nx, int ny, int scale, double vmin,
           double vmax, lensing::io::ColorMap map) {
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      double const t = (v[std::size_t(iy) * nx + ix] - vmin) / (vmax - vmin);
      auto const col = lensing::io::colour(map, t);
      for (int a = 0; a < scale; ++a)
        for (int b = 0; b < scale; ++b)
          c.set(x0 + ix * scale + b, y0 + (ny - 1 - iy) * scale + a, col);
    }
}

//----------------------------------------------------------------------------

struct Metrics {
  double mse_zero = 0, mse_first = 0, mse_rim = 0, mse_lin = 0, mse_truth = 0;
  double chi_zero = 0, chi_rim = 0, chi_lin = 0, chi_truth = 0;
  double lambda = 0;
};

double mse(std::vector<double> const& a, std::vector<double> const& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    s += (a[i] - b[i]) * (a[i] - b[i]);
  return s / double(a.size());
}

struct Summary {
  double mean = 0, se = 0, median = 0;
};
Summary summarise(std::vector<double> v) {
  Summary s;
  double const n = double(v.size());
  for (double x : v)
    s.mean += x / n;
  double ss = 0;
  for (double x : v)
    ss += (x - s.mean) * (x - s.mean);
  s.se = v.size() > 1 ? std::sqrt(ss / (n - 1) / n) : 0.0;
  std::sort(v.begin(), v.end());
  s.median = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  return s;
}

int run(Options const& o) {
  namespace nn = lensing::nn;
  namespace fs = std::filesystem;
  fs::create_directories(o.out);
  Host space;
  Setting const st(o.short_run);
  int const sny = st.source.ny(), snx = st.source.nx(), ns = sny * snx;
  int const iny = st.image.ny(), inx = st.image.nx();
  nn::RimOptions ro;
  ro.steps = o.rim_steps;
  ro.features = o.features;
  ro.hidden = o.hidden;
  nn::RIM<Scalar, Mem> rim(ro, sny, snx);
  rim.initialize(o.seed);
  std::printf(
      "rim_source: %d x %d source (%.3g\"), %d x %d image (%.3g\", PSF %d x %d), RIM T = %d, F = %d, C_h = %d, "
      "%ld parameters\n",
      snx, sny, st.source.pixel_scale(), inx, iny, st.image.pixel_scale(), st.psf.size, st.psf.size, ro.steps,
      ro.features, ro.hidden, rim.num_params());

  std::string const wpath = o.out + "/rim.weights", spath = o.out + "/rim.step";
  long start = 0;
  if (o.eval_only) {
    nn::load_weights(rim, o.weights);
    std::printf("loaded %s\n", o.weights.c_str());
  } else if (o.resume && fs::exists(wpath)) {
    nn::load_weights(rim, wpath);
    std::ifstream(spath) >> start;
    std::printf("resumed from %s at step %ld\n", wpath.c_str(), start);
  }

  // Training.
  double first_window = -1, last_window = -1;
  if (!o.eval_only && start < o.steps) {
    nn::Adam<Scalar, Mem> adam(rim.num_params(), o.lr);
    nn::ParamVector<Scalar, Mem> grad("grad", rim.num_params());
    nn::Tensor<Scalar, Mem> truth("truth", o.batch, 1, sny, snx);
    std::ofstream log(o.out + "/training_log.txt", start > 0 ? std::ios::app : std::ios::trunc);
    if (start == 0) log << "# step  mean_loss(window)  mean_grad_norm  lr  elapsed_s\n";
    auto const t0 = Clock::now();
    double wsum = 0, gsum = 0;
    long wn = 0;
    for (long step = start; step < o.steps; ++step) {
      double const frac = double(step) / double(std::max(1L, o.steps));
      double const lr = o.lr * (0.1 + 0.9 * 0.5 * (1 + std::cos(3.141592653589793 * frac)));
      adam.set_lr(lr);
      auto const batch = simulate_batch(st, o.seed, std::uint64_t(step) * std::uint64_t(o.batch), o.batch);
      std::vector<nn::LinearGaussianProblem> problems;
      problems.reserve(batch.size());
      for (int b = 0; b < o.batch; ++b) {
        problems.push_back(batch[std::size_t(b)].problem);
        for (int j = 0; j < ns; ++j)
          truth.data()[long(b) * ns + j] = Scalar(batch[std::size_t(b)].truth[std::size_t(j)]);
      }
      double const loss = rim.loss_and_gradient(space, problems, truth, grad);
      if (!std::isfinite(loss)) throw std::runtime_error("non-finite loss at step " + std::to_string(step));
      double const gnorm = nn::clip_grad_norm(space, grad, 1.0);
      adam.step(space, rim.parameters(), grad);
      wsum += loss, gsum += gnorm, ++wn;
      if ((step + 1) % o.log_every == 0 || step + 1 == o.steps) {
        double const mean = wsum / double(wn);
        if (first_window < 0) first_window = mean;
        last_window = mean;
        char line[200];
        std::snprintf(line, sizeof line, "%7ld  %.6e  %.3e  %.3e  %.1f", step + 1, mean, gsum / double(wn), lr,
                      seconds_since(t0));
        log << line << "\n" << std::flush;
        std::printf("%s\n", line);
        std::fflush(stdout);
        wsum = gsum = 0, wn = 0;
      }
      if ((step + 1) % o.checkpoint_every == 0 || step + 1 == o.steps) {
        nn::save_weights(rim, wpath);
        std::ofstream(spath) << (step + 1) << "\n";
      }
    }
    std::printf("trained %ld steps in %.1f s (batch %d)\n", o.steps - start, seconds_since(t0), o.batch);
  }

  // Evaluation on held-out images (a disjoint index range of the same stream).
  std::uint64_t const test0 = std::uint64_t(1) << 40;
  auto const test = simulate_batch(st, o.seed, test0, o.test);
  std::vector<Metrics> m(test.size());
  std::vector<std::vector<double>> rim_src(test.size()), lin_src(test.size());
  auto const te = Clock::now();
  int const eb = 16;
  for (std::size_t first = 0; first < test.size(); first += eb) {
    std::size_t const last = std::min(test.size(), first + eb);
    std::vector<nn::LinearGaussianProblem> problems;
    for (std::size_t i = first; i < last; ++i)
      problems.push_back(test[i].problem);
    rim.reconstruct(space, problems);
    auto const s1 = rim.estimate(1), sT = rim.estimate(ro.steps);
    for (std::size_t i = first; i < last; ++i) {
      long const off = long(i - first) * ns;
      std::vector<double> a(static_cast<std::size_t>(ns)), b(static_cast<std::size_t>(ns));
      for (int j = 0; j < ns; ++j)
        a[std::size_t(j)] = double(s1.data()[off + j]), b[std::size_t(j)] = double(sT.data()[off + j]);
      m[i].mse_first = mse(a, test[i].truth);
      m[i].mse_rim = mse(b, test[i].truth);
      m[i].mse_zero = mse(std::vector<double>(std::size_t(ns), 0.0), test[i].truth);
      auto const& p = test[i].problem;
      double const npix = double(p.data.size());
      m[i].chi_rim = p.chi2(Eigen::Map<Eigen::VectorXd>(b.data(), ns)) / npix;
      m[i].chi_zero = p.chi2(Eigen::VectorXd::Zero(ns)) / npix;
      m[i].chi_truth = p.chi2(Eigen::Map<Eigen::VectorXd const>(test[i].truth.data(), ns)) / npix;
      rim_src[i] = b;
    }
  }
  double const rim_seconds = seconds_since(te);
  auto const tl = Clock::now();
  Eigen::SparseMatrix<double> const r = lensing::regularisation_matrix(st.source, lensing::Regularisation::gradient);
  double const log_det_r = lensing::LinearInversion::log_det_spd(r, "the regularisation matrix");
  lensing::EvidenceSearch search;
  search.grid = 9;
  search.tolerance = 1e-2;  // in ln lambda: well inside the evidence's width
  for (std::size_t i = 0; i < test.size(); ++i) {
    auto const& p = test[i].problem;
    lensing::LinearInversion inv(p.a, p.data, test[i].sigma, r, log_det_r);
    auto const res = inv.maximise_evidence(search);
    lin_src[i].assign(res.source.data(), res.source.data() + ns);
    m[i].mse_lin = mse(lin_src[i], test[i].truth);
    m[i].chi_lin = res.chi2 / double(p.data.size());
    m[i].lambda = res.lambda;
  }
  double const lin_seconds = seconds_since(tl);

  {
    std::ofstream csv(o.out + "/eval.csv");
    csv << "image,mse_zero,mse_rim_step1,mse_rim,mse_linear,chi2pp_zero,chi2pp_truth,chi2pp_rim,chi2pp_linear,"
           "lambda_linear\n";
    for (std::size_t i = 0; i < m.size(); ++i) {
      char line[400];
      std::snprintf(line, sizeof line, "%zu,%.6e,%.6e,%.6e,%.6e,%.5f,%.5f,%.5f,%.5f,%.4e\n", i, m[i].mse_zero,
                    m[i].mse_first, m[i].mse_rim, m[i].mse_lin, m[i].chi_zero, m[i].chi_truth, m[i].chi_rim,
                    m[i].chi_lin, m[i].lambda);
      csv << line;
    }
  }
  auto col = [&](double Metrics::*f) {
    std::vector<double> v;
    for (auto const& x : m)
      v.push_back(x.*f);
    return summarise(v);
  };
  int rim_better = 0;
  for (auto const& x : m)
    rim_better += x.mse_rim < x.mse_lin ? 1 : 0;
  std::string table;
  {
    char buf[2000];
    auto row = [&](char const* name, double Metrics::*mf, double Metrics::*cf) {
      Summary const a = col(mf);
      std::string s;
      char line[300];
      if (cf != nullptr) {
        Summary const b = col(cf);
        std::snprintf(line, sizeof line, "| %-28s | %.4e +- %.1e | %.4e | %.3f +- %.3f | %.3f |\n", name, a.mean, a.se,
                      a.median, b.mean, b.se, b.median);
      } else {
        std::snprintf(line, sizeof line, "| %-28s | %.4e +- %.1e | %.4e | - | - |\n", name, a.mean, a.se, a.median);
      }
      return std::string(line);
    };
    std::snprintf(buf, sizeof buf,
                  "%d held-out images (%d x %d source, %d x %d image); mean +- standard error, median\n"
                  "| reconstruction               | source MSE (mean)     | MSE (median) | chi^2/pixel (mean) | "
                  "chi^2/pixel (median) |\n"
                  "|------------------------------|-----------------------|--------------|--------------------|"
                  "----------------------|\n",
                  int(m.size()), snx, sny, inx, iny);
    table = buf;
    table += row("zero source", &Metrics::mse_zero, &Metrics::chi_zero);
    table += row("true source", &Metrics::mse_truth, &Metrics::chi_truth);
    table += row("RIM, first step", &Metrics::mse_first, nullptr);
    table += row("RIM, last step", &Metrics::mse_rim, &Metrics::chi_rim);
    table += row("linear inversion (evidence)", &Metrics::mse_lin, &Metrics::chi_lin);
    std::snprintf(buf, sizeof buf,
                  "RIM source MSE below the linear inversion's on %d of %d images; RIM %.3f s per image, "
                  "linear inversion %.3f s per image (evidence search), 1 process, OMP_NUM_THREADS=%s\n",
                  rim_better, int(m.size()), rim_seconds / double(m.size()), lin_seconds / double(m.size()),
                  std::getenv("OMP_NUM_THREADS") ? std::getenv("OMP_NUM_THREADS") : "unset");
    table += buf;
  }
  std::printf("%s", table.c_str());
  std::ofstream(o.out + "/summary.txt") << table;

  // Figure: 4 test images (or fewer).
  {
    int const rows = std::min<int>(4, int(test.size()));
    int const ss = o.short_run ? 8 : 4, is = o.short_run ? 4 : 2;  // 128 screen pixels per panel
    int const pw = snx * ss, gap = 8, top = 20;
    int const W = 6 * (pw + gap) + gap, H = top + rows * (pw + gap) + gap;
    lensing::io::Canvas c(W, H);
    char const* titles[6] = {"truth", "data", "RIM", "linear", "RIM resid.", "linear resid."};
    for (int k = 0; k < 6; ++k)
      c.text(gap + k * (pw + gap), 6, titles[k], {0, 0, 0});
    for (int rr = 0; rr < rows; ++rr) {
      auto const& smp = test[std::size_t(rr)];
      auto const& p = smp.problem;
      int const y0 = top + rr * (pw + gap);
      double const vmax = 1.0;
      panel(c, gap, y0, smp.truth, snx, sny, ss, 0, vmax, lensing::io::ColorMap::magma);
      std::vector<double> d(p.data.data(), p.data.data() + p.data.size());
      double const dmax = p.data.maxCoeff();
      panel(c, gap + (pw + gap), y0, d, inx, iny, is, 0, dmax, lensing::io::ColorMap::magma);
      panel(c, gap + 2 * (pw + gap), y0, rim_src[std::size_t(rr)], snx, sny, ss, 0, vmax, lensing::io::ColorMap::magma);
      panel(c, gap + 3 * (pw + gap), y0, lin_src[std::size_t(rr)], snx, sny, ss, 0, vmax, lensing::io::ColorMap::magma);
      for (int k = 0; k < 2; ++k) {
        auto const& src = k == 0 ? rim_src[std::size_t(rr)] : lin_src[std::size_t(rr)];
        Eigen::VectorXd const res =
            (p.data - p.a * Eigen::Map<Eigen::VectorXd const>(src.data(), ns)).cwiseProduct(p.inv_var.cwiseSqrt());
        std::vector<double> rv(res.data(), res.data() + res.size());
        panel(c, gap + (4 + k) * (pw + gap), y0, rv, inx, iny, is, -4, 4, lensing::io::ColorMap::diverging);
      }
    }
    c.write(o.out + "/comparison.png");
    std::printf("wrote %s/comparison.png (sources on [0, 1], data on [0, max], residuals (d - L s)/sigma on [-4, 4])\n",
                o.out.c_str());
  }

  if (o.short_run) {
    Summary const z = col(&Metrics::mse_zero), f = col(&Metrics::mse_first), l = col(&Metrics::mse_rim);
    bool const finite = std::isfinite(l.mean) && std::isfinite(col(&Metrics::mse_lin).mean);
    bool const beats_zero = l.mean < 0.5 * z.mean;
    bool const improves = l.mean < f.mean;
    std::printf(
        "short check: RIM last-step MSE %.4e < 0.5 x zero-source MSE %.4e: %s; < first-step MSE %.4e: %s; "
        "training loss %.4e -> %.4e\n",
        l.mean, z.mean, beats_zero ? "yes" : "NO", f.mean, improves ? "yes" : "NO", first_window, last_window);
    bool const ok = finite && beats_zero && improves;
    std::printf("short run: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    return run(o);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "rim_source: %s\n", e.what());
    return 1;
  }
}
