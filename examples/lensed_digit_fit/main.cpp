// A lens fit with a learned source (issue 18, seeds 000/001): a digit-like
// source behind an SIE + external shear lens (theta_E = 2.3"), fitted
//  - with the source as the decoder of the VAE of examples/vae_source_prior
//    (Decoded<Net>, sources/decoded.hpp; DecodedSourcePosterior,
//    fit/decoded_source.hpp): joint inference of the 7 lens parameters, the
//    16 latent coordinates z (prior N(0, I)) and the source's flux scale, by
//    MAP (multi-start L-BFGS) with its Laplace approximation, NUTS from the
//    MAP, full-rank Gaussian VI from the MAP (fit/workflow.hpp) and VI with
//    an inverse-autoregressive-flow family (nn/iaf_variational.hpp) on the
//    density whitened by the MAP's Laplace covariance;
//  - with an elliptical Sersic source (Posterior over the lens + Sersic
//    parameters, the same lens priors): MAP + Laplace and NUTS;
// and a table of theta_E (estimate, 68 % and 95 % intervals) per method,
// data / model / residual PNGs of both MAPs and the true vs decoded source;
// then theta_E coverage of the learned-source MAP + Laplace (and, for
// contrast, the Sersic MAP + Laplace) over --lenses simulated lenses.
//
// Decoder error (issue 18's coverage check): the decoder cannot reproduce a
// digit exactly, and with the exact-decoder model theta_E absorbs the misfit
// (over-confident intervals).  The default run therefore also fits the
// decoder-error model of fit/decoded_source.hpp: source = amp D(z) + delta,
// delta ~ N(0, tau^2 I) on the 32 x 32 decoder pixels, marginalised
// analytically (the evidence of a linear source inversion of the residual),
// with tau = kTau, the per-pixel RMS of x - dec(mu(x)) on held-out digits
// (--calibrate-tau; no coverage lens is looked at).  Its MAP starts at the
// exact-decoder MAP; its Laplace interval is the one the coverage check
// uses.  --control: coverage lenses with the decoder's own sources, fitted
// with the exact-decoder model (a well-specified control).  --truth-grid
// control: the structured model's own control, sources amp dec(z) + delta on
// the decoder's grid with z ~ N(0, I) and delta drawn from the fit's
// structured decoder-error prior N(0, K V(s) K^T) at s = amp dec(z), fitted
// with that model (the prior the fit marginalises is then exactly right).
//
// The structured decoder-error model (the default, --error-model structured):
// delta ~ N(0, K V K^T), v_j = tau_sky^2 + kappa^2 D_j^2 + gamma^2 |grad D|_j^2
// (the error sits on the strokes, mostly at their edges), K a Gaussian
// smoothing of sd kernel_sigma decoder pixels (the error is spatially
// correlated): lensing::DecoderError of fit/decoded_source.hpp, with
// (tau_sky, kappa, gamma, kernel_sigma) = kErrTau, kErrKappa, kErrGamma, kErrSigma fitted to
// the held-out reconstructions x - dec(mu(x)) of the digits 2^40 + [0, N)
// and checked on 2^40 + [N, 2N) by --calibrate-error N (predicted against
// measured variance per brightness bin and of block sums at 1-8 pixels).
// --error-model white: the iid model of sd kTau (or --tau).
//
//   lensed_digit_fit [--short] [--coverage-only] [--first-lens F] [--seed SEED] [--weights PATH]
//                    [--starts K] [--chains C] [--warmup W] [--draws N] [--vi-iterations I]
//                    [--iaf-iterations J] [--lenses L] [--out PREFIX] [--tau T] [--calibrate-tau N]
//                    [--control] [--error-model structured|white] [--calibrate-error N]
//                    [--map-fit whitened|raw] [--truth-grid fine|decoder|control]
//
// MAPs of the learned source (--map-fit whitened, the default): raw L-BFGS
// from the starts stops far from the mode along the poorly scaled directions
// (-Hessian eigenvalues 25 .. 4e7, a condition number ~1e6: Newton steps of
// 14-15 sd left after 150 iterations), so each learned MAP is then converged
// by L-BFGS on the density whitened by the Laplace covariance (refine_map:
// |grad|_inf <= 1e-3 in sd units), the Laplace approximation there, and
// Newton steps with it; the decoder-error MAP starts at the converged
// exact-decoder MAP.  convergence() reports the Newton step left, in sd.
//
// Weights: by default digits_epoch6.weights here, the digits VAE of
// examples/vae_source_prior after 6 of its 15 training epochs (a copy taken
// during its training, so that the numbers of examples/README.md can be
// remade); --weights examples/vae_source_prior/digits.weights for the final one.
//
// Observation: 64 x 64 pixels of 0.1" (6.4" field), supersampling 2,
// Gaussian PSF of FWHM 0.15" (point-sampled weights as psf/gaussian_filter.hpp,
// applied as a direct convolution, zero outside the image), Gaussian background noise of sd 1/20 of the
// brightest noiseless pixel.  Source: a digit of simulate/digits.hpp
// (the VAE's training distribution: make_digit(index % 10, 1, index), but
// index = 2^41 + i, outside its training [0, N) and held-out 2^40 + [0, M)
// ranges), rendered on 96 x 96 pixels of a 1.6" box (finer than the
// decoder's 32 x 32 pixels of 0.05", so the truth is not in the decoder's
// pixel basis) with flux scale 1, centred at a known offset from the lens
// (the decoded source's grid is put there: its position is not fitted; the
// Sersic source's centre is).
//
// Short mode (ctest; ~260 learned-source gradients, ~2 s of one core): 48 x
// 48 pixels of 0.13" (6.24"), one lens, no NUTS, VI or coverage: the Sersic
// MAP from one start near the truth, the learned-source MAP from the Sersic
// MAP's lens (z = 0) must recover theta_E within 0.01" and reach a chi^2 per
// pixel below the Sersic MAP's by 10 % (no IAF VI: a useful one takes
// hundreds of ~10-70 ms gradients, far over the short mode's budget; and no
// decoder-error fit unless --error-model white --tau T is given: ~200 gradients of ~0.2 s).
// Checks of the full run (printed): the same for the main lens, and
// the 95 % coverage over the lenses (of the decoder-error fit when tau > 0,
// else of the exact-decoder fit) within 2 binomial sd of 0.95.
// Threads: OMP_NUM_THREADS.

#include <lensing/fit/decoded_source.hpp>
#include <lensing/fit/plots.hpp>
#include <lensing/fit/posterior.hpp>
#include <lensing/fit/workflow.hpp>
#include <lensing/inversion/source_inversion.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/nn/iaf_variational.hpp>
#include <lensing/noise/pixel_noise.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/convolution.hpp>
#include <lensing/psf/kernels.hpp>
#include <lensing/sample/diagnostics.hpp>
#include <lensing/simulate/digits.hpp>
#include <lensing/sources/decoded.hpp>
#include <lensing/sources/light_profile.hpp>
#include <lensing/sources/pixelated.hpp>
#include <lensing/sources/sersic.hpp>

#include <Kokkos_Core.hpp>

#include "../common/cli.hpp"
#include "../vae_source_prior/vae_model.hpp"

#ifndef LENSED_DIGIT_FIT_DIR
#define LENSED_DIGIT_FIT_DIR "examples/lensed_digit_fit"
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Options {
  bool short_run = false, coverage_only = false, control = false, converge = false;
  double tau = -1;                  // < 0: the default (kTau); 0: no decoder-error term
  int calibrate_tau = 0;            // > 0: measure tau on this many held-out digits and exit
  int calibrate_error = 0;          // > 0: fit and check the structured error model on 2 x this many held-out digits
  bool white = false;               // --error-model white: the iid decoder-error model
  int error_iterations = 100;       // L-BFGS iterations of the decoder-error MAP (per whitened round)
  bool raw_fit = false;             // --map-fit raw: the learned MAPs by L-BFGS on the raw parameters only
  bool truth_decoder_grid = false;  // --truth-grid decoder: coverage truths rendered on the decoder's 32 x 32 grid
  bool truth_control = false;       // --truth-grid control: truths dec(z) + delta, delta from the structured model
  std::uint64_t seed = 3;
  std::string weights = LENSED_DIGIT_FIT_DIR "/digits_epoch6.weights";
  int first_lens = 0;
  int starts = 0, chains = 2, warmup = 100, draws = 100, vi_iterations = 300, iaf_iterations = 1500, lenses = 20;
  std::string out = "lensed_digit_fit";
};

void usage(std::FILE* f) {
  std::fprintf(
      f,
      "usage: lensed_digit_fit [--short] [--coverage-only] [--first-lens F] [--seed SEED] [--weights PATH] [--starts "
      "K] "
      "[--chains C] [--warmup W]\n"
      "                        [--draws N] [--vi-iterations I] [--iaf-iterations J] [--lenses L] [--out PREFIX]\n"
      "                        [--tau T] [--calibrate-tau N] [--control] [--error-model M] [--calibrate-error N]\n"
      "                        [--help]\n"
      "  --short            ctest case: 48x48 pixels, one lens, MAP + Laplace only\n"
      "  --seed SEED        noise, starts, chains and the coverage lenses (default 3)\n"
      "  --weights PATH     trained VAE (default examples/lensed_digit_fit/digits_epoch6.weights, the digits\n"
      "                     VAE of vae_source_prior after 6 of its 15 epochs); 'untrained':\n"
      "                     the architecture with random weights (the short run's check must then fail)\n"
      "  --starts K         L-BFGS starts from the prior per fit, besides the chained start (default 0)\n"
      "  --chains C         NUTS chains (default 2)\n"
      "  --warmup W         NUTS warm-up iterations per chain (default 100)\n"
      "  --draws N          NUTS draws per chain (default 100)\n"
      "  --vi-iterations I  full-rank VI iterations (default 300)\n"
      "  --iaf-iterations J IAF VI iterations (4 draws each; default 1500), 0: no IAF VI\n"
      "  --lenses L         lenses of the coverage study, 0: none (default 20)\n"
      "  --coverage-only    skip the main lens (its fits, table rows and PNGs): the coverage study alone\n"
      "  --first-lens F     the coverage lenses are F .. F + L - 1 (default 0; to split the study over processes)\n"
      "  --out PREFIX       PREFIX_table.md, PREFIX_coverage.csv, PREFIX_*.png (default lensed_digit_fit)\n"
      "  --error-model M    the decoder-error term: 'structured' (default: correlated, growing with the decoded\n"
      "                     brightness, fitted by --calibrate-error) or 'white' (iid of sd --tau)\n"
      "  --tau T            white model: sd of the decoder-error term per decoder pixel (stroke brightness 1;\n"
      "                     default the held-out reconstruction RMS measured by --calibrate-tau); 0: no\n"
      "                     decoder-error term (either model), the exact-decoder fit only\n"
      "  --calibrate-error N  fit the structured model on N held-out digits, check it on the next N, and exit\n"
      "  --error-iterations N L-BFGS iterations of the decoder-error MAP from the exact-decoder MAP (default 100)\n"
      "  --calibrate-tau N  print the per-pixel RMS of x - dec(enc(x)) over N held-out digits and exit\n"
      "  --control          coverage lenses whose sources are the decoder's own (dec(z), z ~ N(0, I)),\n"
      "                     fitted with the exact-decoder model: the well-specified control\n"
      "  --converge         coverage lenses: Sersic and exact-decoder MAPs with 500 L-BFGS iterations and one\n"
      "                     whitened polishing round (default 150 iterations, none)\n"
      "  --map-fit F        the learned-source MAPs: 'whitened' (default: after the raw L-BFGS start, L-BFGS in\n"
      "                     units of the Laplace covariance until |grad|_inf <= 1e-3 per sd, then Newton steps;\n"
      "                     the decoder-error MAP so from the exact-decoder MAP) or 'raw' (the first runs: raw\n"
      "                     L-BFGS only, the decoder-error MAP --error-iterations iterations of it)\n"
      "  --truth-grid G     coverage truths: 'fine' (default: the digit on 96 x 96 pixels) or 'decoder' (the\n"
      "                     digit rendered on the decoder's 32 x 32 pixels, placed as the model places its own) or\n"
      "                     'control' (no digit: amp dec(z) + delta on the decoder's grid, z ~ N(0, I), delta drawn\n"
      "                     from the structured decoder-error prior the fit marginalises: the model exactly right)\n"
      "threads: set OMP_NUM_THREADS.\n");
}

}  // namespace

// Declared in ../common/cli.hpp.
[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "lensed_digit_fit: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

namespace {

Options parse(int argc, char** argv) {
  Options o;
  bool set_lenses = false;
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
    } else if (a == "--coverage-only") {
      o.coverage_only = true;
    } else if (a == "--first-lens") {
      o.first_lens = int(parse_integer(a, value(), 0, 1000000));
    } else if (a == "--seed") {
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 9000000000000000000L));
    } else if (a == "--weights") {
      o.weights = value();
      if (o.weights.empty()) bad("--weights needs a non-empty path");
    } else if (a == "--starts") {
      o.starts = int(parse_integer(a, value(), 0, 1000));
    } else if (a == "--chains") {
      o.chains = int(parse_integer(a, value(), 1, 64));
    } else if (a == "--warmup") {
      o.warmup = int(parse_integer(a, value(), 10, 1000000));
    } else if (a == "--draws") {
      o.draws = int(parse_integer(a, value(), 10, 1000000));
    } else if (a == "--vi-iterations") {
      o.vi_iterations = int(parse_integer(a, value(), 10, 10000000));
    } else if (a == "--iaf-iterations") {
      o.iaf_iterations = int(parse_integer(a, value(), 0, 10000000));
    } else if (a == "--lenses") {
      o.lenses = int(parse_integer(a, value(), 0, 100000)), set_lenses = true;
    } else if (a == "--tau") {
      o.tau = parse_real(a, value(), 0, 10);
    } else if (a == "--calibrate-tau") {
      o.calibrate_tau = int(parse_integer(a, value(), 1, 100000));
    } else if (a == "--calibrate-error") {
      o.calibrate_error = int(parse_integer(a, value(), 10, 100000));
    } else if (a == "--error-iterations") {
      o.error_iterations = int(parse_integer(a, value(), 1, 100000));
    } else if (a == "--error-model") {
      std::string const m = value();
      if (m != "structured" && m != "white") bad("--error-model must be 'structured' or 'white', got '" + m + "'");
      o.white = m == "white";
    } else if (a == "--map-fit") {
      std::string const m = value();
      if (m != "whitened" && m != "raw") bad("--map-fit must be 'whitened' or 'raw', got '" + m + "'");
      o.raw_fit = m == "raw";
    } else if (a == "--truth-grid") {
      std::string const m = value();
      if (m != "fine" && m != "decoder" && m != "control")
        bad("--truth-grid must be 'fine', 'decoder' or 'control', got '" + m + "'");
      o.truth_decoder_grid = m == "decoder";
      o.truth_control = m == "control";
    } else if (a == "--control") {
      o.control = true;
    } else if (a == "--converge") {
      o.converge = true;
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty prefix");
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  if (o.short_run && !set_lenses) o.lenses = 0;
  if (o.coverage_only && o.lenses == 0) bad("--coverage-only needs --lenses L with L > 0");
  if (o.control && !o.coverage_only) bad("--control needs --coverage-only");
  if (o.truth_decoder_grid && (!o.coverage_only || o.control))
    bad("--truth-grid decoder needs --coverage-only (and no --control)");
  if (o.truth_control && (!o.coverage_only || o.control))
    bad("--truth-grid control needs --coverage-only (and no --control)");
  // The control's delta is drawn from the structured model: the fit must be that model.
  if (o.truth_control && (o.white || o.tau == 0))
    bad("--truth-grid control needs the structured decoder-error model (no --error-model white, no --tau 0)");
  if (o.tau > 0 && !o.white) bad("--tau T > 0 sets the white model's sd: it needs --error-model white");
  return o;
}

using S = double;
using Space = Kokkos::DefaultExecutionSpace;
using Mem = Space::memory_space;
using Lens = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
using PixModel = lensing::LensModel<Lens, lensing::PixelatedSource<S>, lensing::NoLight<S>>;
using SerModel = lensing::LensModel<Lens, lensing::SersicEllipse<S>, lensing::NoLight<S>>;
// The PSF as a direct convolution with a kernel (zero outside the image), so
// that the decoder-error term's lensing operator (inversion/lensing_operator.hpp,
// the same kernel) renders exactly as the likelihood's Observation does.
using Psf = lensing::DirectConvolution<S, Mem>;
using PixLike = lensing::GaussianLikelihood<PixModel, Mem, Psf>;
using SerLike = lensing::GaussianLikelihood<SerModel, Mem, Psf>;
using Decoder = vae_model::Decoder;
using LearnedPost = lensing::DecodedSourcePosterior<PixModel, Mem, Psf, Decoder>;
using SersicPost = lensing::Posterior<SerLike>;
using P = lensing::Prior<double>;
using Table = lensing::ParameterTable<double, Kokkos::HostSpace>;

constexpr double kBox = 1.6;             // source box side, arcsec (decoder pixels of 0.05")
constexpr int kTruthPixels = 96;         // the true source's pixels over the box
constexpr double kSnrPeak = 20;          // brightest noiseless pixel / noise sd
constexpr double kTheta = 2.3;           // the main lens's Einstein radius
constexpr double kAmpTrue = 1.0;         // the true source's flux scale (digit intensity 1 on a stroke)
constexpr std::uint64_t kDigitSeed = 1;  // the VAE's training seed (vae_source_prior --seed default)
constexpr std::uint64_t kFirstIndex = std::uint64_t(1) << 41;
// sd of the decoder-error term per 32 x 32 decoder pixel (stroke brightness
// 1): the per-pixel RMS of x - dec(mu_enc(x)) over the first 500 held-out
// digits of the VAE (indices 2^40 + [0, 500), the held-out set of
// vae_source_prior, disjoint from the lenses' 2^41 + i), measured by
// `lensed_digit_fit --calibrate-tau 500` with the default weights.
constexpr double kTau = 0.0563;
// The structured decoder-error model (lensing::DecoderError): variance
// kErrTau^2 + kErrKappa^2 D^2 + kErrGamma^2 |grad D|^2 per decoder pixel
// (D the decoded brightness, stroke 1; gradient per pixel), correlated by a
// Gaussian kernel of sd kErrSigma decoder pixels; fitted by
// `lensed_digit_fit --calibrate-error 500` on the held-out digits 2^40 +
// [0, 500) and checked on 2^40 + [500, 1000), all disjoint from the lenses
// (the edge term dominates: on a stroke's edge |grad D| ~ 0.3-0.5).
constexpr double kErrTau = 0.0172;
constexpr double kErrKappa = 0.0338;
constexpr double kErrSigma = 0.5;
constexpr double kErrGamma = 0.2593;
lensing::DecoderError structured_error() { return {kErrTau, kErrKappa, kErrSigma, kErrGamma}; }

// A Gaussian PSF of FWHM `fwhm` sampled at pixel centres, truncated at
// round(5 sigma) pixels and normalised: the weights of psf/gaussian_filter.hpp
// (lenstronomy's GAUSSIAN PSF) as a 2-D kernel.
lensing::PsfKernel<S> gaussian_kernel(double fwhm, double pixel) {
  double const s = fwhm / (2.0 * std::sqrt(2.0 * std::log(2.0))) / pixel;
  int const r = int(std::floor(5 * s + 0.5)), n = 2 * r + 1;
  std::vector<S> v(std::size_t(n) * n);
  for (int iy = 0; iy < n; ++iy)
    for (int ix = 0; ix < n; ++ix)
      v[std::size_t(iy) * n + ix] = std::exp(-0.5 * ((iy - r) * (iy - r) + (ix - r) * (ix - r)) / (s * s));
  return lensing::pixel_kernel(std::move(v), n);
}

struct Setup {
  int n;
  double pixel;
  int k;
  double fwhm;
};

// One simulated lens: the lens row (model order: SIE theta_E e1 e2 cx cy,
// shear g1 g2 ra0 dec0), the source offset and its digit.
struct Truth {
  std::vector<double> lens;
  double src_x = 0, src_y = 0;
  std::uint64_t index = 0;
  std::vector<S> decoded;  // control lenses: the source is these decoder pixels (32 x 32), not a digit
};

Truth main_truth() { return {{kTheta, 0.08, -0.05, 0.03, -0.02, 0.04, -0.02, 0.0, 0.0}, 0.12, -0.08, kFirstIndex + 3}; }

// Lens i of the coverage study: parameters drawn (stream seed, purpose_prior,
// 0xc0fe, i) around the main lens's configuration.
Truth coverage_truth(std::uint64_t seed, int i) {
  lensing::Rng rng(seed, lensing::random::purpose_prior, 0xc0fe, std::uint64_t(i));
  Truth t;
  double const th = rng.uniform(2.0, 2.6);
  auto clip = [](double x, double a) { return std::max(-a, std::min(a, x)); };
  t.lens = {th,
            clip(0.1 * rng.normal(), 0.3),
            clip(0.1 * rng.normal(), 0.3),
            0.03 * rng.normal(),
            0.03 * rng.normal(),
            clip(0.03 * rng.normal(), 0.1),
            clip(0.03 * rng.normal(), 0.1),
            0.0,
            0.0};
  t.src_x = rng.uniform(-0.25, 0.25);
  t.src_y = rng.uniform(-0.25, 0.25);
  t.index = kFirstIndex + 100 + std::uint64_t(i);
  return t;
}

Table lens_table() {
  Table t;
  t.add("lens0.theta_E", P::uniform(1.5, 3.0))
      .add("lens0.e1", P::truncated_normal(0, 0.2, -0.6, 0.6))
      .add("lens0.e2", P::truncated_normal(0, 0.2, -0.6, 0.6))
      .add("lens0.center_x", P::normal(0, 0.1))
      .add("lens0.center_y", P::normal(0, 0.1))
      .add("lens1.gamma1", P::normal(0, 0.05))
      .add("lens1.gamma2", P::normal(0, 0.05))
      .add("lens1.ra_0", P::fixed(0))
      .add("lens1.dec_0", P::fixed(0));
  return t;
}

Table sersic_table() {
  Table t = lens_table();
  t.add("source0.amp", P::log_uniform(0.01, 100))
      .add("source0.R_sersic", P::log_uniform(0.02, 2))
      .add("source0.n_sersic", P::uniform(0.5, 6))
      .add("source0.e1", P::truncated_normal(0, 0.2, -0.6, 0.6))
      .add("source0.e2", P::truncated_normal(0, 0.2, -0.6, 0.6))
      .add("source0.center_x", P::normal(0, 0.3))
      .add("source0.center_y", P::normal(0, 0.3));
  return t;
}

// theta_E summaries of one method.
struct ThetaSummary {
  std::string method;
  double estimate = NAN, lo68 = NAN, hi68 = NAN, lo95 = NAN, hi95 = NAN;
  double chi2_pixel = NAN, seconds = 0;
  long long gradients = 0;
  std::string note;
  bool covers95(double t) const { return t >= lo95 && t <= hi95; }
  bool covers68(double t) const { return t >= lo68 && t <= hi68; }
};

// MAP + Laplace: theta_E (free parameter 0 under a bounded transform) at the
// MAP, intervals by mapping q0 +- z sd through the (monotone) transform.
template <class Post>
ThetaSummary laplace_summary(std::string const& method, Post const& post, lensing::MapResult const& map,
                             lensing::ParameterTransform const& t) {
  ThetaSummary s;
  s.method = method;
  double const q = map.q[0], sd = map.sd()[0];
  s.estimate = t.constrain(q);
  s.lo68 = t.constrain(q - sd), s.hi68 = t.constrain(q + sd);
  s.lo95 = t.constrain(q - 1.959964 * sd), s.hi95 = t.constrain(q + 1.959964 * sd);
  s.seconds = map.seconds;
  s.gradients = map.gradient_evaluations;
  (void)post;
  return s;
}

// Posterior median and central 68 / 95 % intervals of draws of theta_E.
ThetaSummary draws_summary(std::string const& method, std::vector<double> th) {
  ThetaSummary s;
  s.method = method;
  namespace dd = lensing::diagnostics::detail;
  s.estimate = dd::quantile(th, 0.5);
  s.lo68 = dd::quantile(th, 0.158655), s.hi68 = dd::quantile(th, 0.841345);
  s.lo95 = dd::quantile(th, 0.025), s.hi95 = dd::quantile(th, 0.975);
  return s;
}

// chi^2 per unmasked pixel of a model image.
double chi2_pixel(lensing::View2D<S, Mem> const& data, lensing::View2D<S, Mem> const& model, double sigma) {
  auto d = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), data);
  auto m = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model);
  double c = 0;
  for (std::size_t i = 0; i < d.size(); ++i) {
    double const r = (d.data()[i] - m.data()[i]) / sigma;
    c += r * r;
  }
  return c / double(d.size());
}

// One lens's data and its fits.
struct LensCase {
  Setup setup;
  Truth truth;
  lensing::PsfKernel<S> kernel;
  lensing::Observation<S, Mem, Psf> obs;
  lensing::View2D<S, Mem> data, noise, mask, truth_pixels;
  double sigma = 0;

  LensCase(Space const& space, Setup const& st, Truth const& t, std::uint64_t noise_seed)
      : setup(st),
        truth(t),
        kernel(gaussian_kernel(st.fwhm, st.pixel)),
        obs(lensing::PixelGrid<S>::square(st.n, st.pixel, st.k), Psf(kernel, st.n, st.n)),
        data("data", st.n, st.n),
        noise("noise", st.n, st.n),
        mask("mask", st.n, st.n),
        truth_pixels("truth_source", kTruthPixels, kTruthPixels) {
    namespace sim = lensing::simulate;
    auto const digit = sim::make_digit(int(t.index % 10), kDigitSeed, t.index);
    std::vector<S> px(std::size_t(kTruthPixels) * kTruthPixels);
    sim::render_digit(digit, kTruthPixels, px.data());
    auto h = Kokkos::create_mirror_view(truth_pixels);
    for (std::size_t i = 0; i < px.size(); ++i)
      h.data()[i] = kAmpTrue * px[i];
    Kokkos::deep_copy(truth_pixels, h);
    lensing::PixelGrid<S> tgrid(kTruthPixels, kTruthPixels, kBox / kTruthPixels, 1, t.src_x, t.src_y);
    if (!t.decoded.empty()) {  // the control: the decoder's own source on its own grid
      int const ns = vae_model::image_size;
      truth_pixels = lensing::View2D<S, Mem>("truth_source", ns, ns);
      auto hc = Kokkos::create_mirror_view(truth_pixels);
      std::copy(t.decoded.begin(), t.decoded.end(), hc.data());
      Kokkos::deep_copy(truth_pixels, hc);
      tgrid = decoder_grid();
    }
    PixModel const m{Lens::unpack(t.lens.data()),
                     lensing::make_pixelated_source(truth_pixels, tgrid, lensing::Interpolation::bicubic),
                     {}};
    obs.render(space, m, data);
    space.fence();
    auto hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), data);
    double peak = 0;
    for (std::size_t i = 0; i < hd.size(); ++i)
      peak = std::max(peak, hd.data()[i]);
    sigma = peak / kSnrPeak;
    lensing::noise::apply(space, lensing::noise::GaussianNoise<S>{sigma}, data, noise_seed);
    Kokkos::deep_copy(space, noise, sigma);
    Kokkos::deep_copy(space, mask, 1.0);
    space.fence();
  }
  // The decoder-error term's inversion: this data, noise, mask, grid and PSF
  // kernel, the decoder's grid, bicubic (the Decoded's interpolation), R = I.
  lensing::SourceInversion<S> correction() const {
    lensing::LensingOperatorOptions oo;
    oo.interpolation = lensing::Interpolation::bicubic;
    return lensing::SourceInversion<S>(obs.grid(), decoder_grid(), data, noise, mask, lensing::Regularisation::zeroth,
                                       kernel, oo);
  }
  lensing::PixelGrid<S> decoder_grid() const {
    return lensing::PixelGrid<S>(vae_model::image_size, vae_model::image_size, kBox / vae_model::image_size, 1,
                                 truth.src_x, truth.src_y);
  }
};

// How hard find_map works: the main lens of the full run 500 L-BFGS
// iterations and 1 polishing round, the coverage lenses and the short run
// 150 and none (the decoder's forward + backward costs ~70 ms of one core:
// it dominates every learned-source evaluation).
enum class Effort { full, coverage, quick, marginal };

lensing::MapOptions map_options(std::vector<double> scales, Effort e) {
  lensing::MapOptions o;
  o.scales = std::move(scales);
  if (e == Effort::coverage) o.optimize.max_iterations = 500, o.polish_rounds = 1;
  if (e == Effort::quick) o.optimize.max_iterations = 150, o.polish_rounds = 0;
  // The decoder-error fit starts at the exact-decoder MAP, close to its own mode.
  if (e == Effort::marginal) o.optimize.max_iterations = 100, o.polish_rounds = 0;
  return o;
}

// The best of the chained start (first) and prior starts.
template <class Post>
lensing::MapResult run_map(Space const& space, Post const& post, std::vector<std::vector<double>> starts, Effort e) {
  return lensing::find_map(space, post, starts, map_options(post.start_scales(), e));
}

// Convergence of a MAP, in units of its Laplace covariance C (the Hessian's
// inverse at the point): g the gradient of log p there, C g the Newton step to
// the quadratic model's mode, sqrt(g^T C g) its length in posterior sd (the
// Newton decrement), (C g)_0 / sqrt(C_00) the step of theta_E (free parameter
// 0) in its own sd.  |g|_inf in raw parameters is no measure of convergence
// here: theta_E's sd in its unconstrained parameter is ~1e-3, z's ~1e-1.
struct Convergence {
  int iterations = 0;  // L-BFGS iterations, all runs and polishing rounds
  double gnorm = NAN, decrement = NAN, theta_step = NAN;
};
Convergence convergence(lensing::MapResult const& m) {
  Convergence c;
  for (auto const& r : m.starts.runs)
    c.iterations += r.iterations;
  for (auto const& r : m.polish)
    c.iterations += r.iterations;
  int const d = m.dimension();
  if (int(m.gradient.size()) != d || m.covariance.size() != std::size_t(d) * d) return c;
  c.gnorm = 0;
  double dec = 0;
  std::vector<double> step(std::size_t(d), 0.0);
  for (int i = 0; i < d; ++i) {
    c.gnorm = std::max(c.gnorm, std::abs(m.gradient[std::size_t(i)]));
    for (int j = 0; j < d; ++j)
      step[std::size_t(i)] += m.covariance[std::size_t(i) * d + j] * m.gradient[std::size_t(j)];
  }
  for (int i = 0; i < d; ++i)
    dec += m.gradient[std::size_t(i)] * step[std::size_t(i)];
  c.decrement = std::sqrt(std::max(0.0, dec));
  c.theta_step = step[0] / std::sqrt(m.covariance[0]);
  return c;
}

// The decoder-error MAP's stopping rule in whitened units (one unit = one
// posterior sd along each axis of the Laplace covariance): |grad|_inf <= 1e-3
// puts the point within ~1e-3 sd of the mode.
constexpr double kWhitenedGradientTolerance = 1e-3;

// Newton steps q += C g with the Laplace covariance C of the MAP (the
// inverse of -Hessian, already computed): each is kept if log p rises, up to
// kNewtonSteps, stopping once the step is below 0.01 sd.  The covariance is
// not recomputed (the steps are small against the sd; convergence() reports
// the decrement at the final point with it).
constexpr int kNewtonSteps = 3;
template <class Post>
void newton_steps(Space const& space, Post const& post, lensing::MapResult& m) {
  int const d = m.dimension();
  lensing::DensityEvaluator<Space, Post> eval(space, post, "lensed_digit_fit::newton_steps");
  std::vector<double> q(static_cast<std::size_t>(d)), g(static_cast<std::size_t>(d));
  for (int k = 0; k < kNewtonSteps; ++k) {
    Convergence const c = convergence(m);
    if (!(c.decrement > 0.01)) break;
    for (int i = 0; i < d; ++i) {
      double st = 0;
      for (int j = 0; j < d; ++j)
        st += m.covariance[std::size_t(i) * d + j] * m.gradient[std::size_t(j)];
      q[std::size_t(i)] = m.q[std::size_t(i)] + st;
    }
    double const lp = eval(q.data(), g.data());
    m.gradient_evaluations += 1;
    std::fprintf(stderr, "lensed_digit_fit: Newton step %d of %.3g sd: log p %.10g -> %.10g%s\n", k + 1, c.decrement,
                 m.log_density, lp, lp > m.log_density ? "" : " (rejected)");
    if (!(lp > m.log_density)) break;
    m.q = q, m.gradient = g, m.log_density = lp;
  }
}

// A MAP converged from a nearby point `near` (with its Laplace covariance):
// one round of L-BFGS on the density whitened by near's covariance
// (refine_map) stopped at |grad|_inf <= kWhitenedGradientTolerance per sd (or
// `iterations`), the Laplace approximation there, then Newton steps with it.
template <class Post>
lensing::MapResult converge_map(Space const& space, Post const& post, lensing::MapResult const& near, int iterations) {
  auto mo = map_options(post.start_scales(), Effort::marginal);
  mo.optimize.max_iterations = iterations;
  mo.polish_rounds = 1;
  mo.optimize.gradient_tolerance = kWhitenedGradientTolerance;
  mo.progress = true;
  auto m = lensing::refine_map(space, post, near, mo);
  newton_steps(space, post, m);
  return m;
}

struct Fits {
  lensing::MapResult sersic, learned, marginal;
  ThetaSummary sersic_laplace, learned_laplace, marginal_laplace;
  double marginal_chi2_decoded = NAN;  // chi^2 / pixel of amp D(z) alone at the decoder-error MAP
};

// Sersic MAP (prior starts; unless effort is full, also one start at the
// true lens with theta_E 0.1" low and a round Sersic source at the source
// offset), then the learned MAP from the Sersic MAP's lens with z = 0 (plus
// prior starts, and with learned_near_truth the true lens with theta_E 0.1"
// low).  The coverage lenses start near the truth: the study
// measures the calibration of the Laplace interval at the mode, not the
// finding of the mode.
Fits fit_both(Space const& space, LensCase const& c, std::shared_ptr<Decoder> const& net, int starts,
              std::uint64_t seed, Effort effort, bool learned_near_truth, std::unique_ptr<SersicPost>& sp,
              std::unique_ptr<LearnedPost>& lp, double tau, std::unique_ptr<LearnedPost>& mp, bool white = true,
              int error_iterations = 100, bool raw_fit = false) {
  Fits f;
  sp = std::make_unique<SersicPost>(SerLike(c.obs, c.data, c.noise, c.mask), sersic_table());
  std::vector<std::vector<double>> s_starts;
  if (effort != Effort::full) {
    std::vector<double> r = c.truth.lens;
    r[0] -= 0.1;
    for (double v : {1.0, 0.3, 1.5, 0.0, 0.0, c.truth.src_x, c.truth.src_y})
      r.push_back(v);
    s_starts.push_back(sp->initial_point_from(r));
  }
  if (starts > 0 || s_starts.empty()) {
    // The Sersic fit is cheap (no network): 4 prior starts at least.
    auto more = sp->draw_prior_starts(std::max(4, starts), seed);
    s_starts.insert(s_starts.end(), more.begin(), more.end());
  }
  f.sersic = run_map(space, *sp, s_starts, effort);
  f.sersic_laplace = laplace_summary("Sersic source: MAP + Laplace", *sp, f.sersic, sp->transform(0));
  lensing::Decoded<Decoder, S> const dec(net, vae_model::latent_dim, c.decoder_grid());
  lp = std::make_unique<LearnedPost>(PixLike(c.obs, c.data, c.noise, c.mask), lens_table(), dec,
                                     P::log_uniform(0.1, 10));
  // The Sersic MAP's lens (unconstrained, kept off the transforms' ends), z = 0, amplitude 1.
  std::vector<double> q_lens(f.sersic.q.begin(), f.sersic.q.begin() + lp->lens_dimension());
  for (auto& v : q_lens)
    v = std::max(-8.0, std::min(8.0, v));  // the lens's free parameters come first in both, in the same order
  std::vector<double> l0 = q_lens;
  l0.insert(l0.end(), std::size_t(vae_model::latent_dim), 0.0);
  l0.push_back(lensing::ParameterTransform::for_prior(lp->amplitude_prior()).unconstrain(1.0));
  std::vector<std::vector<double>> l_starts{l0};
  if (learned_near_truth) {
    // Also from the true lens with theta_E 0.1" low: a Sersic MAP in a wrong
    // mode does not take the learned fit with it.
    std::vector<double> r = c.truth.lens;
    r[0] -= 0.1;
    l_starts.push_back(lp->initial_point(r, std::vector<double>(vae_model::latent_dim, 0.0), 1.0));
  }
  if (starts > 0) {
    auto more = lp->draw_prior_starts(starts, seed + 1);
    l_starts.insert(l_starts.end(), more.begin(), more.end());
  }
  f.learned = run_map(space, *lp, l_starts, effort);
  // Raw L-BFGS stops far from the mode in some directions (latent vs lens
  // scales; Newton steps of 15 sd measured): converge in whitened units.
  if (!raw_fit) {
    auto m = converge_map(space, *lp, f.learned, 500);
    m.starts = f.learned.starts;  // the raw runs, for the iteration count
    m.gradient_evaluations += f.learned.gradient_evaluations;
    m.seconds += f.learned.seconds;
    f.learned = std::move(m);
  }
  f.learned_laplace =
      laplace_summary("learned source: MAP + Laplace", *lp, f.learned, lp->lens_posterior().transform(0));
  lensing::View2D<S, Mem> model("model", c.setup.n, c.setup.n);
  c.obs.render(space, sp->model_at(f.sersic.q), model);
  space.fence();
  f.sersic_laplace.chi2_pixel = chi2_pixel(c.data, model, c.sigma);
  c.obs.render(space, lp->model_at(space, f.learned.q), model);
  space.fence();
  f.learned_laplace.chi2_pixel = chi2_pixel(c.data, model, c.sigma);
  if (tau > 0) {
    // The decoder-error model (source amp D(z) + delta, delta ~ N(0, tau^2 I)
    // marginalised), from the exact-decoder MAP.
    // (white: delta ~ N(0, tau^2 I); structured: N(0, K V K^T), structured_error()).
    char name[160];
    if (white) {
      mp = std::make_unique<LearnedPost>(PixLike(c.obs, c.data, c.noise, c.mask), lens_table(), dec,
                                         P::log_uniform(0.1, 10), c.correction(), tau);
      std::snprintf(name, sizeof name, "learned source + white decoder error (tau %.3g): MAP + Laplace", tau);
    } else {
      auto const e = structured_error();
      mp = std::make_unique<LearnedPost>(PixLike(c.obs, c.data, c.noise, c.mask), lens_table(), dec,
                                         P::log_uniform(0.1, 10), c.correction(), e);
      std::snprintf(
          name, sizeof name,
          "learned source + structured decoder error (tau %.3g, kappa %.3g, gamma %.3g, kernel %.2g px): MAP + "
          "Laplace",
          e.tau, e.kappa, e.gamma, e.kernel_sigma);
    }
    auto mo = map_options(mp->start_scales(), Effort::marginal);
    mo.optimize.max_iterations = error_iterations;
    if (raw_fit) {
      // The first structured runs: L-BFGS on the raw parameters from the
      // exact-decoder MAP, stopped by |grad|_inf <= 1e-6 in raw units (never
      // met: the float decoder's rounding alone exceeds it) or error_iterations.
      f.marginal = lensing::find_map(space, *mp, {f.learned.q}, mo);
    } else {
      // L-BFGS in units of the exact-decoder MAP's Laplace covariance, then
      // rounds in units of this density's own Laplace covariance at the new
      // point (refine_map), each stopped within kWhitenedGradientTolerance sd.
      f.marginal = converge_map(space, *mp, f.learned, error_iterations);
    }
    f.marginal_laplace = laplace_summary(name, *mp, f.marginal, mp->lens_posterior().transform(0));
    c.obs.render(space, mp->corrected_model_at(space, f.marginal.q), model);
    space.fence();
    f.marginal_laplace.chi2_pixel = chi2_pixel(c.data, model, c.sigma);
    c.obs.render(space, mp->model_at(space, f.marginal.q), model);
    space.fence();
    f.marginal_chi2_decoded = chi2_pixel(c.data, model, c.sigma);
  }
  return f;
}

std::string row(ThetaSummary const& s) {
  char b[512];
  std::snprintf(b, sizeof b, "| %s | %.4f | [%.4f, %.4f] | [%.4f, %.4f] | %s | %.1f | %lld | %s |", s.method.c_str(),
                s.estimate, s.lo68, s.hi68, s.lo95, s.hi95,
                std::isfinite(s.chi2_pixel) ? lensing::detail::plot_number(s.chi2_pixel, "%.3f").c_str() : "-",
                s.seconds, s.gradients, s.note.c_str());
  return b;
}

// Held-out reconstructions of the VAE: x and D = dec(mu_enc(x)) for the
// digits 2^40 + [first, first + n) (32 x 32, stroke brightness 1).
struct Reconstructions {
  std::vector<std::vector<double>> x, d;
};
template <class Enc, class Dec>
Reconstructions reconstruct(Space const& space, Enc& enc, Dec& dec, int first, int n) {
  int const ns = vae_model::image_size, np = ns * ns, nz = vae_model::latent_dim;
  lensing::nn::Tensor<vae_model::Scalar, Mem> x("x", 1, 1, ns, ns), z("z", 1, nz, 1, 1);
  auto hx = Kokkos::create_mirror_view(x);
  auto hz = Kokkos::create_mirror_view(z);
  std::vector<float> px(static_cast<std::size_t>(np));
  Reconstructions r;
  for (int i = first; i < first + n; ++i) {
    std::uint64_t const index = (std::uint64_t(1) << 40) + std::uint64_t(i);
    lensing::simulate::render_digit<float>(lensing::simulate::make_digit(int(index % 10), kDigitSeed, index), ns,
                                           px.data());
    std::copy(px.begin(), px.end(), hx.data());
    Kokkos::deep_copy(x, hx);
    auto const e = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), enc.forward(space, x));
    for (int j = 0; j < nz; ++j)
      hz.data()[j] = e.data()[j];
    Kokkos::deep_copy(z, hz);
    auto const y = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dec.forward(space, z));
    r.x.emplace_back(px.begin(), px.end());
    r.d.emplace_back(y.data(), y.data() + np);
  }
  return r;
}

// tau for the decoder-error term, measured without the lenses: the per-pixel
// RMS of x - dec(mu(x)) over the VAE's held-out digits 2^40 + [0, N) (32 x 32,
// stroke brightness 1; mu the encoder's mean), printed with the RMS over the
// pixels with ink (x > 0.05) and the spread over images.
int calibrate_tau(Space const& space, Options const& o) {
  if (o.weights == "untrained") bad("--calibrate-tau needs trained weights");
  auto enc = vae_model::load_encoder(o.weights);
  auto dec = vae_model::load_decoder(o.weights);
  int const np = vae_model::image_size * vae_model::image_size;
  auto const rec = reconstruct(space, enc, dec, 0, o.calibrate_tau);
  double sum = 0, sum_ink = 0;
  long n_ink = 0;
  std::vector<double> per_image;
  for (std::size_t i = 0; i < rec.x.size(); ++i) {
    double si = 0;
    for (int p = 0; p < np; ++p) {
      double const r = rec.x[i][std::size_t(p)] - rec.d[i][std::size_t(p)];
      si += r * r;
      if (rec.x[i][std::size_t(p)] > 0.05f) sum_ink += r * r, ++n_ink;
    }
    sum += si;
    per_image.push_back(std::sqrt(si / np));
  }
  std::sort(per_image.begin(), per_image.end());
  std::printf(
      "tau calibration on %d held-out digits (2^40 + [0, %d)): per-pixel RMS of x - dec(mu(x)) %.5f; over ink pixels "
      "(x > 0.05) %.5f; per image median %.5f, 10-90 %% [%.5f, %.5f]\n",
      o.calibrate_tau, o.calibrate_tau, std::sqrt(sum / (double(np) * o.calibrate_tau)),
      n_ink ? std::sqrt(sum_ink / double(n_ink)) : NAN, per_image[per_image.size() / 2],
      per_image[std::size_t(0.1 * double(per_image.size() - 1))],
      per_image[std::size_t(0.9 * double(per_image.size() - 1))]);
  return 0;
}

// The structured decoder-error model (lensing::DecoderError) against held-out
// reconstruction errors e = x - a D (a the least-squares flux scale of each
// image, as the lens fit's free flux scale absorbs a global brightness
// error; D = dec(mu_enc(x)), s = a D):
//  - the model's variance of e_j is P_j = sum_i K_ji^2 v_i = tau^2 (K^2 * 1)_j
//    + kappa^2 (K^2 * s^2)_j + gamma^2 (K^2 * |grad s|^2)_j (K^2: the kernel
//    squared), linear in (tau^2, kappa^2, gamma^2): weighted least squares of
//    e_j^2 on the three maps (weights 1 / P_j^2, iterated: var(e^2) = 2 P^2
//    for a Gaussian e; a negative coefficient is set to 0 and the rest refitted);
//  - kernel_sigma on a grid of 0.1 px: the one whose fitted model best
//    predicts the variance of the sums of e over b x b blocks, b = 2, 4, 8
//    (least squares of the log ratios; the predicted variance of a block sum
//    is sum_i v_i (K 1_B)_i^2), i.e. the correlations at the scales a lensed
//    image resolves (0.1" image pixels are 2 decoder pixels).
// The check, on the next N digits: measured / predicted variance (i) per
// pixel, in bins of the decoded brightness s, and (ii) of block sums, b =
// 2, 4, 8, 32 (the whole image), for the compiled-in model (kErr*), the one
// just fitted, and the white model (kTau).  "error model check: ok" when
// every ratio of the compiled-in model at the pixel bins and b <= 8 lies in
// [0.6, 1.67] (a factor 1.67 either way; the white model misses it by up to 8x).
int calibrate_error(Space const& space, Options const& o) {
  if (o.weights == "untrained") bad("--calibrate-error needs trained weights");
  auto enc = vae_model::load_encoder(o.weights);
  auto dec = vae_model::load_decoder(o.weights);
  int const n = o.calibrate_error, ns = vae_model::image_size, np = ns * ns;
  auto const sz = static_cast<std::size_t>(np);
  // Residuals and model images s = a D of a set.
  struct Set {
    std::vector<std::vector<double>> e, s;
  };
  auto make_set = [&](Reconstructions const& r) {
    Set out;
    for (std::size_t i = 0; i < r.x.size(); ++i) {
      double xd = 0, dd = 0;
      for (std::size_t p = 0; p < sz; ++p)
        xd += r.x[i][p] * r.d[i][p], dd += r.d[i][p] * r.d[i][p];
      double const a = dd > 0 ? xd / dd : 1.0;
      std::vector<double> e(sz), s(sz);
      for (std::size_t p = 0; p < sz; ++p)
        s[p] = a * r.d[i][p], e[p] = r.x[i][p] - s[p];
      out.e.push_back(std::move(e));
      out.s.push_back(std::move(s));
    }
    return out;
  };
  Set const fit = make_set(reconstruct(space, enc, dec, 0, n)), chk = make_set(reconstruct(space, enc, dec, n, n));
  // The three variance maps of one image under kernel sd sigma.
  auto features = [&](double sigma, std::vector<double> const& s) {
    auto k = lensing::detail::decoder_error_kernel(sigma);
    for (auto& x : k)
      x *= x;
    std::vector<std::vector<double>> f(3, std::vector<double>(sz));
    std::vector<double> tmp(sz);
    for (int q = 0; q < 3; ++q) {
      lensing::DecoderError const unit{q == 0 ? 1.0 : 0.0, q == 1 ? 1.0 : 0.0, 0, q == 2 ? 1.0 : 0.0};
      auto const v = lensing::detail::decoder_error_variance(unit, ns, ns, s.data());
      lensing::detail::decoder_error_smooth(k, ns, ns, v.data(), f[std::size_t(q)].data(), tmp.data());
    }
    return f;
  };
  auto fit_amplitudes = [&](double sigma) {
    std::vector<std::vector<std::vector<double>>> feats;
    for (auto const& s : fit.s)
      feats.push_back(features(sigma, s));
    double c[3] = {kTau * kTau, 0, 0};
    for (int it = 0; it < 8; ++it) {
      bool on[3] = {true, true, true};
      for (int pass = 0; pass < 3; ++pass) {
        Eigen::Matrix3d a = Eigen::Matrix3d::Zero();
        Eigen::Vector3d b = Eigen::Vector3d::Zero();
        for (std::size_t i = 0; i < feats.size(); ++i)
          for (std::size_t p = 0; p < sz; ++p) {
            double f[3], pr = 0;
            for (int q = 0; q < 3; ++q)
              f[q] = on[q] ? feats[i][std::size_t(q)][p] : 0.0, pr += c[q] * feats[i][std::size_t(q)][p];
            pr = std::max(pr, 1e-10);
            double const w = 1 / (pr * pr), y = fit.e[i][p] * fit.e[i][p];
            for (int q = 0; q < 3; ++q) {
              b[q] += w * f[q] * y;
              for (int r = 0; r < 3; ++r)
                a(q, r) += w * f[q] * f[r];
            }
          }
        for (int q = 0; q < 3; ++q)
          if (!on[q]) a(q, q) = 1;
        Eigen::Vector3d const x = a.ldlt().solve(b);
        bool neg = false;
        for (int q = 0; q < 3; ++q)
          if (on[q] && x[q] < 0) on[q] = false, neg = true;
        if (!neg || pass == 2) {
          for (int q = 0; q < 3; ++q)
            c[q] = on[q] ? std::max(0.0, x[q]) : 0.0;
          break;
        }
      }
      c[0] = std::max(c[0], 1e-8);
    }
    return lensing::DecoderError{std::sqrt(c[0]), std::sqrt(c[1]), sigma, std::sqrt(c[2])};
  };
  // Measured / predicted variance: 4 brightness bins of s, then block sums b = 2, 4, 8, 32.
  int const blocks[] = {2, 4, 8, 32};
  auto ratios = [&](lensing::DecoderError const& m, Set const& set) {
    auto const k = lensing::detail::decoder_error_kernel(m.kernel_sigma);
    std::vector<std::vector<std::vector<double>>> u(4);  // (K 1_B)^2 per block
    std::vector<double> ind(sz), tmp(sz);
    for (int b = 0; b < 4; ++b)
      for (int by = 0; by < ns; by += blocks[b])
        for (int bx = 0; bx < ns; bx += blocks[b]) {
          std::fill(ind.begin(), ind.end(), 0.0);
          for (int iy = by; iy < by + blocks[b]; ++iy)
            for (int ix = bx; ix < bx + blocks[b]; ++ix)
              ind[std::size_t(iy) * ns + ix] = 1;
          std::vector<double> o2(sz);
          lensing::detail::decoder_error_smooth(k, ns, ns, ind.data(), o2.data(), tmp.data());
          for (auto& x : o2)
            x *= x;
          u[std::size_t(b)].push_back(std::move(o2));
        }
    double const edges[] = {-HUGE_VAL, 0.1, 0.4, 0.7, HUGE_VAL};
    std::vector<double> meas(8, 0.0), pred(8, 0.0);
    auto k2 = k;
    for (auto& x : k2)
      x *= x;
    for (std::size_t i = 0; i < set.e.size(); ++i) {
      auto const& e = set.e[i];
      auto const v = lensing::detail::decoder_error_variance(m, ns, ns, set.s[i].data());
      std::vector<double> pv(sz);
      lensing::detail::decoder_error_smooth(k2, ns, ns, v.data(), pv.data(), tmp.data());
      for (std::size_t p = 0; p < sz; ++p) {
        int bin = 0;
        while (!(set.s[i][p] < edges[bin + 1]))
          ++bin;
        meas[std::size_t(bin)] += e[p] * e[p], pred[std::size_t(bin)] += pv[p];
      }
      for (int b = 0; b < 4; ++b) {
        int const nb = ns / blocks[b];
        for (int by = 0; by < nb; ++by)
          for (int bx = 0; bx < nb; ++bx) {
            double sum = 0, pr = 0;
            for (int iy = by * blocks[b]; iy < (by + 1) * blocks[b]; ++iy)
              for (int ix = bx * blocks[b]; ix < (bx + 1) * blocks[b]; ++ix)
                sum += e[std::size_t(iy) * ns + ix];
            auto const& ub = u[std::size_t(b)][std::size_t(by) * nb + bx];
            for (std::size_t p = 0; p < sz; ++p)
              pr += v[p] * ub[p];
            meas[std::size_t(4 + b)] += sum * sum, pred[std::size_t(4 + b)] += pr;
          }
      }
    }
    std::vector<double> r(8);
    for (std::size_t q = 0; q < 8; ++q)
      r[q] = meas[q] / pred[q];
    return r;
  };
  lensing::DecoderError fitted{};
  double best = HUGE_VAL;
  for (int t = 0; t <= 25; ++t) {
    auto const m = fit_amplitudes(0.1 * t);
    auto const r = ratios(m, fit);
    double obj = 0;
    for (int q = 4; q < 7; ++q)
      obj += std::pow(std::log(r[std::size_t(q)]), 2);
    if (obj < best) best = obj, fitted = m;
  }
  lensing::DecoderError const compiled = structured_error(), white{kTau, 0, 0, 0};
  std::printf(
      "structured error model fitted on %d held-out digits (2^40 + [0, %d)): tau_sky %.4f, kappa %.4f, gamma %.4f, "
      "kernel sd %.1f px; compiled-in: %.4f, %.4f, %.4f, %.1f px\n",
      n, n, fitted.tau, fitted.kappa, fitted.gamma, fitted.kernel_sigma, compiled.tau, compiled.kappa, compiled.gamma,
      compiled.kernel_sigma);
  std::printf("check on the next %d held-out digits (2^40 + [%d, %d)), measured / predicted variance:\n", n, n, 2 * n);
  auto show = [&](lensing::DecoderError const& m, char const* what) {
    auto const r = ratios(m, chk);
    bool in_band = true;
    for (int q = 0; q < 7; ++q)
      in_band = in_band && r[std::size_t(q)] >= 0.6 && r[std::size_t(q)] <= 1.67;
    std::printf(
        "  %s (tau %.4f, kappa %.4f, gamma %.4f, kernel %.1f px): pixels with s in (-inf, 0.1) %.2f, [0.1, 0.4) %.2f, "
        "[0.4, 0.7) %.2f, [0.7, inf) %.2f; block sums b = 2: %.2f, 4: %.2f, 8: %.2f, 32: %.2f (%s)\n",
        what, m.tau, m.kappa, m.gamma, m.kernel_sigma, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
        in_band ? "all but b = 32 in [0.6, 1.67]" : "NOT all in [0.6, 1.67] (b <= 8)");
    return in_band;
  };
  {
    // Is the error zero-mean given s?  Per image, the least-squares c of e on
    // the 5-point Laplacian of s (zero outside): a blurring decoder gives
    // e = x - s ~ -(sigma^2 / 2) lap s, c < 0 on every image -- a
    // deterministic error the zero-mean model cannot absorb.  Mean +- se of
    // c over the check images and the share of e's variance c lap s explains.
    std::vector<double> cs;
    double ee = 0, res = 0;
    for (std::size_t i = 0; i < chk.e.size(); ++i) {
      auto const& sv = chk.s[i];
      auto at = [&](int y, int x) {
        return y < 0 || x < 0 || y >= ns || x >= ns ? 0.0 : sv[std::size_t(y) * ns + std::size_t(x)];
      };
      std::vector<double> lap(sz);
      double el = 0, ll = 0;
      for (int y = 0; y < ns; ++y)
        for (int x = 0; x < ns; ++x) {
          double const l = at(y - 1, x) + at(y + 1, x) + at(y, x - 1) + at(y, x + 1) - 4 * at(y, x);
          lap[std::size_t(y) * ns + std::size_t(x)] = l;
          el += chk.e[i][std::size_t(y) * ns + std::size_t(x)] * l, ll += l * l;
        }
      double const c = ll > 0 ? el / ll : 0.0;
      cs.push_back(c);
      for (std::size_t p = 0; p < sz; ++p)
        ee += chk.e[i][p] * chk.e[i][p], res += std::pow(chk.e[i][p] - c * lap[p], 2);
    }
    double m = 0, v = 0;
    int neg = 0;
    for (double c : cs)
      m += c, neg += c < 0;
    m /= double(cs.size());
    for (double c : cs)
      v += (c - m) * (c - m);
    v /= double(cs.size() - 1);
    std::printf(
        "error mean given s: e on lap(s) per check image, c = %+.4f +- %.4f (sd %.4f; %d of %zu negative); c lap s "
        "explains %.1f %% of sum e^2\n",
        m, std::sqrt(v / double(cs.size())), std::sqrt(v), neg, cs.size(), 100 * (1 - res / ee));
  }
  bool const ok = show(compiled, "compiled-in structured");
  show(fitted, "fitted structured");
  show(white, "white");
  std::printf("error model check: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

int run(Options const& o) {
  Space space;
  auto const t0 = std::chrono::steady_clock::now();
  Setup const st = o.short_run ? Setup{48, 0.13, 2, 0.15} : Setup{64, 0.1, 2, 0.15};
  if (o.calibrate_tau > 0) return calibrate_tau(space, o);
  if (o.calibrate_error > 0) return calibrate_error(space, o);
  // The short run fits the decoder-error model only when --tau is given (its
  // evaluations cost ~10x the exact decoder's: see fit/decoded_source.hpp).
  double const tau = o.tau >= 0 ? o.tau : (o.short_run ? 0.0 : kTau);
  std::shared_ptr<Decoder> net;
  if (o.weights == "untrained") {
    // The architecture with its random initial weights: the short run's
    // check must fail with it (ctest example_lensed_digit_fit_untrained).
    net = std::make_shared<Decoder>(vae_model::make_decoder());
    net->prepare(lensing::nn::Shape4{1, vae_model::latent_dim, 1, 1});
    net->initialize(o.seed);
  } else {
    net = std::make_shared<Decoder>(vae_model::load_decoder(o.weights));
  }
  std::printf(
      "lensed_digit_fit: SIE + shear (theta_E %.2f\"), digit source of %.1f\" (VAE decoder %dx%d, latent %d, %s); "
      "%dx%d pixels of %.2f\", supersampling %d, PSF FWHM %.2f\", peak S/N %.0f; %s, %d thread(s)\n",
      kTheta, kBox, vae_model::image_size, vae_model::image_size, vae_model::latent_dim, o.weights.c_str(), st.n, st.n,
      st.pixel, st.k, st.fwhm, kSnrPeak, Space::name(), Space().concurrency());

  bool ok = true;
  std::ofstream md(o.out + "_table.md");
  if (!o.coverage_only) {
    // ---- the main lens ----
    LensCase const c(space, st, main_truth(), o.seed);
    std::unique_ptr<SersicPost> sp;
    std::unique_ptr<LearnedPost> lp, mp;
    Fits f = fit_both(space, c, net, o.short_run ? 0 : o.starts, o.seed, o.short_run ? Effort::quick : Effort::full,
                      false, sp, lp, tau, mp, o.white, o.error_iterations, o.raw_fit);
    std::vector<ThetaSummary> table{f.learned_laplace};
    if (tau > 0) {
      table.push_back(f.marginal_laplace);
      std::printf(
          "decoder-error MAP: theta_E %.4f, 95 %% [%.4f, %.4f], chi^2/pixel %.3f (D + delta*), %.3f (D alone), %lld "
          "gradients, %.1f s (%s)\n",
          f.marginal_laplace.estimate, f.marginal_laplace.lo95, f.marginal_laplace.hi95, f.marginal_laplace.chi2_pixel,
          f.marginal_chi2_decoded, f.marginal.gradient_evaluations, f.marginal.seconds,
          f.marginal.hessian_message.c_str());
    }
    auto const& lt = lp->lens_posterior().transform(0);
    std::printf(
        "learned MAP: theta_E %.4f, log p %.6g, %lld gradients, %.1f s (%s); Sersic MAP: theta_E %.4f, %.1f s\n",
        f.learned_laplace.estimate, f.learned.log_density, f.learned.gradient_evaluations, f.learned.seconds,
        f.learned.hessian_message.c_str(), f.sersic_laplace.estimate, f.sersic.seconds);

    // Plots of the MAPs: data | model | residual, and the true | decoded source.
    {
      lensing::View2D<S, Mem> model("model", st.n, st.n);
      c.obs.render(space, lp->model_at(space, f.learned.q), model);
      space.fence();
      lensing::plot_fit_residuals(o.out + "_learned.png", c.data, model, c.noise, c.mask);
      c.obs.render(space, sp->model_at(f.sersic.q), model);
      space.fence();
      lensing::plot_fit_residuals(o.out + "_sersic.png", c.data, model, c.noise, c.mask);
      // The true source at the decoder's resolution against the decoded MAP
      // source (both in surface brightness; "noise" 0.1 = 10 % of a stroke).
      int const ns = vae_model::image_size;
      lensing::View2D<S, Mem> tsrc("tsrc", ns, ns), dsrc("dsrc", ns, ns), ones("ones", ns, ns), tenth("tenth", ns, ns);
      std::vector<S> px(std::size_t(ns) * ns);
      lensing::simulate::render_digit(lensing::simulate::make_digit(int(c.truth.index % 10), kDigitSeed, c.truth.index),
                                      ns, px.data());
      for (auto& v : px)
        v *= kAmpTrue;
      auto ht = Kokkos::create_mirror_view(tsrc);
      std::copy(px.begin(), px.end(), ht.data());
      Kokkos::deep_copy(tsrc, ht);
      lp->model_at(space, f.learned.q);
      Kokkos::deep_copy(space, dsrc, lp->decoded().pixels());
      Kokkos::deep_copy(space, ones, 1.0);
      Kokkos::deep_copy(space, tenth, 0.1);
      space.fence();
      lensing::plot_fit_residuals(o.out + "_source.png", tsrc, dsrc, tenth, ones);
    }

    // theta_E within 0.01" (0.4 %) of the truth: not "inside the 95 % Laplace
    // interval", which the coverage study finds too narrow for this decoder
    // (37 % coverage; the final VAE weights' short-run interval misses 2.3 by 0.0005").
    double const err = std::abs(f.learned_laplace.estimate - kTheta);
    bool const covered = err <= 0.01;
    bool const better = f.learned_laplace.chi2_pixel < 0.9 * f.sersic_laplace.chi2_pixel;
    std::printf(
        "learned MAP + Laplace: theta_E %.4f (95 %% interval [%.4f, %.4f]), |error| %.4f %s 0.01; chi^2/pixel "
        "%.3f vs Sersic %.3f: %s by 10 %%\n",
        f.learned_laplace.estimate, f.learned_laplace.lo95, f.learned_laplace.hi95, err,
        covered ? "<=" : "NOT <=", f.learned_laplace.chi2_pixel, f.sersic_laplace.chi2_pixel,
        better ? "below" : "NOT below");
    // The exact-decoder MAP at its mode: the Newton step with its Laplace
    // covariance below 0.05 sd (raw L-BFGS alone, --map-fit raw, stops ~14 sd short).
    Convergence const cv = convergence(f.learned);
    bool const converged = cv.decrement <= 0.05;
    std::printf(
        "learned MAP convergence: %d L-BFGS iterations, |grad|_inf %.3g, Newton step %.3g sd (theta_E %+.3g sd): %s "
        "0.05 sd\n",
        cv.iterations, cv.gnorm, cv.decrement, cv.theta_step, converged ? "<=" : "NOT <=");
    ok = ok && covered && better && converged;

    if (!o.short_run) {
      // NUTS and VI from the learned MAP.
      lensing::SamplerOptions nuts;
      nuts.num_chains = o.chains, nuts.num_warmup = o.warmup, nuts.num_draws = o.draws, nuts.seed = o.seed;
      nuts.progress = true;
      auto const run_l = lensing::sample_from_map(space, *lp, f.learned, nuts);
      std::vector<double> th;
      for (std::size_t j = 0; j < std::size_t(run_l.num_chains) * run_l.num_draws; ++j)
        th.push_back(lt.constrain(run_l.draws[j * std::size_t(lp->dimension())]));
      auto const conv_l = lensing::check_convergence(run_l);
      ThetaSummary sn = draws_summary("learned source: NUTS", th);
      sn.seconds = run_l.seconds, sn.gradients = run_l.gradient_evaluations;
      char note[256];
      std::snprintf(note, sizeof note, "R-hat %.3f, min ESS %.0f, %lld divergences", conv_l.max_rhat,
                    std::min(conv_l.min_bulk_ess, conv_l.min_tail_ess), conv_l.divergences);
      sn.note = note;
      table.push_back(sn);

      lensing::VariationalOptions vo;
      vo.max_iterations = o.vi_iterations;
      vo.average_last = std::max(1, o.vi_iterations / 3);
      vo.num_elbo_draws = 200;
      vo.seed = o.seed;
      auto const vi = lensing::fit_vi_from_map(space, *lp, f.learned, vo);
      auto const vd = vi.draws(4000, o.seed);
      th.clear();
      for (int j = 0; j < 4000; ++j)
        th.push_back(lt.constrain(vd[std::size_t(j) * lp->dimension()]));
      ThetaSummary sv = draws_summary("learned source: full-rank VI", th);
      sv.seconds = vi.seconds, sv.gradients = vi.gradient_evaluations;
      std::snprintf(note, sizeof note, "ELBO %.1f +- %.1f", vi.elbo, vi.elbo_mcse);
      sv.note = note;
      table.push_back(sv);

      if (o.iaf_iterations > 0) {
        // IAF VI on z with q = q_MAP + L z (L L^T the Laplace covariance, as
        // fit_vi_from_map whitens): the base starts at N(0, I) in z; draws and
        // the ELBO are mapped back to q (ELBO + log det L).
        int const d = lp->dimension();
        std::vector<double> const L = lensing::detail::cholesky_lower(f.learned.covariance, d, "lensed_digit_fit");
        lensing::detail::WhitenedDensity<Space, LearnedPost> const white(space, *lp, f.learned.q, L);
        lensing::nn::IafVariationalOptions io;
        io.steps = 2, io.hidden = 32, io.num_mc = 4;
        io.max_iterations = o.iaf_iterations;
        io.num_elbo_draws = 200;
        io.seed = o.seed;
        auto iaf = lensing::nn::fit_variational_iaf(space, white, io);
        double logdet = 0;
        for (int i = 0; i < d; ++i)
          logdet += std::log(L[std::size_t(i) * d + i]);
        auto const zd = iaf.draws(4000, o.seed);
        th.clear();
        for (int j = 0; j < 4000; ++j)
          th.push_back(lt.constrain(white.point(zd.data() + std::size_t(j) * d)[0]));
        ThetaSummary si = draws_summary("learned source: IAF VI", th);
        si.seconds = iaf.seconds;
        si.gradients = (long long)io.max_iterations * io.num_mc + io.num_elbo_draws;
        // Two decimals: the two VI families' ELBOs agree to within tenths of a nat.
        std::snprintf(note, sizeof note, "ELBO %.2f +- %.2f (full-rank VI %.2f +- %.2f)", iaf.elbo + logdet,
                      iaf.elbo_mcse, vi.elbo, vi.elbo_mcse);
        auto const& tr = iaf.elbo_trace;  // averages over 10 iterations
        std::printf("IAF VI: ELBO trace %.2f (first 10 iterations), %.2f (middle), %.2f (last 10); %lld non-finite\n",
                    tr.front() + logdet, tr[tr.size() / 2] + logdet, tr.back() + logdet, iaf.non_finite_draws);
        si.note = note;
        table.push_back(si);
      }

      table.push_back(f.sersic_laplace);
      auto const run_s = lensing::sample_from_map(space, *sp, f.sersic, nuts);
      th.clear();
      for (std::size_t j = 0; j < std::size_t(run_s.num_chains) * run_s.num_draws; ++j)
        th.push_back(sp->transform(0).constrain(run_s.draws[j * std::size_t(sp->dimension())]));
      auto const conv_s = lensing::check_convergence(run_s);
      ThetaSummary ss = draws_summary("Sersic source: NUTS", th);
      ss.seconds = run_s.seconds, ss.gradients = run_s.gradient_evaluations;
      std::snprintf(note, sizeof note, "R-hat %.3f, min ESS %.0f, %lld divergences", conv_s.max_rhat,
                    std::min(conv_s.min_bulk_ess, conv_s.min_tail_ess), conv_s.divergences);
      ss.note = note;
      table.push_back(ss);
    } else {
      table.push_back(f.sersic_laplace);
    }

    md << "theta_E of the lensed digit (truth " << kTheta << "\"): estimate (MAP, or posterior median) and central "
       << "intervals\n\n| method | theta_E | 68 % | 95 % | chi^2/pixel (MAP) | s | gradients | notes |\n"
       << "|---|---|---|---|---|---|---|---|\n";
    for (auto const& s : table) {
      std::printf("%s\n", row(s).c_str());
      md << row(s) << "\n";
    }
  }

  // ---- coverage ----
  if (o.lenses > 0) {
    // The control fits the exact-decoder model to sources the decoder can make.
    double const tau_cov = o.control ? 0.0 : tau;
    std::ofstream csv(o.out + "_coverage.csv");
    csv << "lens,theta_true,learned_map,learned_sd_q,learned_lo68,learned_hi68,learned_lo95,learned_hi95,"
           "learned_chi2,sersic_map,sersic_lo95,sersic_hi95,sersic_chi2,error_map,error_sd_q,error_lo68,error_hi68,"
           "error_lo95,error_hi95,error_chi2,error_chi2_decoded,error_gradients,error_seconds,learned_converged,"
           "error_converged,learned_z,learned_iterations,learned_gnorm,learned_newton,learned_newton_theta,error_z,"
           "error_iterations,error_gnorm,error_newton,error_newton_theta\n";
    int in68 = 0, in95 = 0, s68 = 0, s95 = 0, e68 = 0, e95 = 0;
    std::vector<double> err_learned, err_error, z_learned, z_error;
    for (int i = o.first_lens; i < o.first_lens + o.lenses; ++i) {
      Truth t = coverage_truth(o.seed, i);
      if (o.control) {
        // z ~ N(0, I) from the stream (seed, purpose_prior, 0xc0ff, i); flux scale 1.
        lensing::Rng rz(o.seed, lensing::random::purpose_prior, 0xc0ff, std::uint64_t(i));
        std::vector<double> z(std::size_t(vae_model::latent_dim));
        for (auto& v : z)
          v = rz.normal();
        lensing::PixelGrid<S> const g(vae_model::image_size, vae_model::image_size, kBox / vae_model::image_size, 1,
                                      t.src_x, t.src_y);
        lensing::Decoded<Decoder, S> const dz(net, vae_model::latent_dim, g);
        dz.decode(space, z.data(), kAmpTrue);
        auto const h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dz.pixels());
        t.decoded.assign(h.data(), h.data() + h.size());
      } else if (o.truth_control) {
        // The structured model's control: s = amp dec(z), z ~ N(0, I) (the
        // --control stream, so the same z), plus delta = K (sqrt(v(s)) .* eta),
        // eta ~ N(0, I) from (seed, purpose_prior, 0xc100, i) -- a draw of the
        // decoder-error prior the fit marginalises (DecoderError's definition,
        // at the truth's s as the fit's v at its own s), on the decoder's grid.
        lensing::Rng rz(o.seed, lensing::random::purpose_prior, 0xc0ff, std::uint64_t(i));
        std::vector<double> z(std::size_t(vae_model::latent_dim));
        for (auto& v : z)
          v = rz.normal();
        int const ns = vae_model::image_size;
        lensing::PixelGrid<S> const g(ns, ns, kBox / ns, 1, t.src_x, t.src_y);
        lensing::Decoded<Decoder, S> const dz(net, vae_model::latent_dim, g);
        dz.decode(space, z.data(), kAmpTrue);
        auto const h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dz.pixels());
        std::vector<double> const s(h.data(), h.data() + h.size());
        auto const e = structured_error();
        auto const v = lensing::detail::decoder_error_variance(e, ns, ns, s.data());
        lensing::Rng re(o.seed, lensing::random::purpose_prior, 0xc100, std::uint64_t(i));
        std::vector<double> w(s.size()), delta(s.size()), tmp(s.size());
        for (std::size_t j = 0; j < w.size(); ++j)
          w[j] = std::sqrt(v[j]) * re.normal();
        lensing::detail::decoder_error_smooth(lensing::detail::decoder_error_kernel(e.kernel_sigma), ns, ns, w.data(),
                                              delta.data(), tmp.data());
        t.decoded.resize(s.size());
        double dd = 0, vv = 0;
        for (std::size_t j = 0; j < s.size(); ++j)
          t.decoded[j] = s[j] + delta[j], dd += delta[j] * delta[j], vv += v[j];
        // sum delta^2 / sum v ~ 1 (K keeps a white field's variance away from the border).
        std::printf("control truth %d: rms delta %.4f, prior rms %.4f, max |s| %.3f\n", i,
                    std::sqrt(dd / double(s.size())), std::sqrt(vv / double(s.size())),
                    *std::max_element(s.begin(), s.end()));
      } else if (o.truth_decoder_grid) {
        // The same digit rendered on the decoder's 32 x 32 pixels (as the
        // held-out reconstructions the error model was fitted to), placed and
        // interpolated as the model places its decoded grid.
        int const ns = vae_model::image_size;
        t.decoded.resize(std::size_t(ns) * ns);
        lensing::simulate::render_digit(lensing::simulate::make_digit(int(t.index % 10), kDigitSeed, t.index), ns,
                                        t.decoded.data());
        for (auto& v : t.decoded)
          v *= kAmpTrue;
      }
      LensCase const ci(space, st, t, o.seed * 1000 + std::uint64_t(i) + 1);
      std::unique_ptr<SersicPost> spi;
      std::unique_ptr<LearnedPost> lpi, mpi;
      Fits const fi =
          fit_both(space, ci, net, 0, o.seed + 17 * std::uint64_t(i), o.converge ? Effort::coverage : Effort::quick,
                   true, spi, lpi, tau_cov, mpi, o.white, o.error_iterations, o.raw_fit);
      double const th = t.lens[0];
      in68 += fi.learned_laplace.covers68(th), in95 += fi.learned_laplace.covers95(th);
      s68 += fi.sersic_laplace.covers68(th), s95 += fi.sersic_laplace.covers95(th);
      e68 += fi.marginal_laplace.covers68(th), e95 += fi.marginal_laplace.covers95(th);
      err_learned.push_back(std::abs(fi.learned_laplace.estimate - th));
      err_error.push_back(std::abs(fi.marginal_laplace.estimate - th));
      // Standardised errors in theta_E's unconstrained parameter, where the
      // Laplace interval is q +- z sd: |z| <= 1 iff the 68 % interval covers.
      double const q_true = lpi->lens_posterior().transform(0).unconstrain(th);
      double const zl = (fi.learned.q[0] - q_true) / fi.learned.sd()[0];
      double const ze = tau_cov > 0 ? (fi.marginal.q[0] - q_true) / fi.marginal.sd()[0] : NAN;
      z_learned.push_back(zl);
      if (tau_cov > 0) z_error.push_back(ze);
      Convergence const cl = convergence(fi.learned), ce = tau_cov > 0 ? convergence(fi.marginal) : Convergence{};
      char b[1024];
      std::snprintf(b, sizeof b,
                    "%d,%.5f,%.5f,%.5g,%.5f,%.5f,%.5f,%.5f,%.4f,%.5f,%.5f,%.5f,%.4f,%.5f,%.5g,%.5f,%.5f,%.5f,%.5f,%.4f,"
                    "%.4f,%lld,%.1f,%d,%d,%.4f,%d,%.4g,%.4g,%.4g,%.4f,%d,%.4g,%.4g,%.4g",
                    i, th, fi.learned_laplace.estimate, fi.learned.sd()[0], fi.learned_laplace.lo68,
                    fi.learned_laplace.hi68, fi.learned_laplace.lo95, fi.learned_laplace.hi95,
                    fi.learned_laplace.chi2_pixel, fi.sersic_laplace.estimate, fi.sersic_laplace.lo95,
                    fi.sersic_laplace.hi95, fi.sersic_laplace.chi2_pixel, fi.marginal_laplace.estimate,
                    tau_cov > 0 ? fi.marginal.sd()[0] : NAN, fi.marginal_laplace.lo68, fi.marginal_laplace.hi68,
                    fi.marginal_laplace.lo95, fi.marginal_laplace.hi95, fi.marginal_laplace.chi2_pixel,
                    fi.marginal_chi2_decoded, fi.marginal.gradient_evaluations, fi.marginal.seconds,
                    int(fi.learned.converged), int(fi.marginal.converged), zl, cl.iterations, cl.gnorm, cl.decrement,
                    cl.theta_step, ze, ce.iterations, ce.gnorm, ce.decrement, ce.theta_step);
      csv << b << "\n";
      csv.flush();
      std::printf(
          "coverage lens %d: theta_E %.4f; learned %.4f [%.4f, %.4f] chi2 %.3f; with decoder error %.4f [%.4f, %.4f] "
          "chi2 %.3f (%.1f s); Sersic %.4f [%.4f, %.4f] chi2 %.3f\n",
          i, th, fi.learned_laplace.estimate, fi.learned_laplace.lo95, fi.learned_laplace.hi95,
          fi.learned_laplace.chi2_pixel, fi.marginal_laplace.estimate, fi.marginal_laplace.lo95,
          fi.marginal_laplace.hi95, fi.marginal_laplace.chi2_pixel, fi.marginal.seconds, fi.sersic_laplace.estimate,
          fi.sersic_laplace.lo95, fi.sersic_laplace.hi95, fi.sersic_laplace.chi2_pixel);
      std::printf(
          "  convergence: exact-decoder MAP %d iterations, |grad|_inf %.3g, Newton step %.3g sd (theta_E %+.3g sd), "
          "z %+.2f; decoder-error MAP %d iterations, |grad|_inf %.3g, Newton step %.3g sd (theta_E %+.3g sd), z %+.2f "
          "(%s)\n",
          cl.iterations, cl.gnorm, cl.decrement, cl.theta_step, zl, ce.iterations, ce.gnorm, ce.decrement,
          ce.theta_step, ze,
          tau_cov <= 0                       ? "-"
          : !fi.marginal.polish.empty()      ? fi.marginal.polish.back().message.c_str()
          : !fi.marginal.starts.runs.empty() ? fi.marginal.starts.runs.front().message.c_str()
                                             : "-");
      std::fflush(stdout);
    }
    double const n = o.lenses;
    auto line = [&](char const* what, int k, double p) {
      double const f = k / n, sd = std::sqrt(p * (1 - p) / n);
      char b[256];
      std::snprintf(b, sizeof b, "%s: %d / %d = %.3f (nominal %.3f, binomial sd %.3f)", what, k, o.lenses, f, p, sd);
      return std::string(b);
    };
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v.empty() ? NAN : (v[(v.size() - 1) / 2] + v[v.size() / 2]) / 2;
    };
    std::vector<std::string> lines{line("learned MAP + Laplace, 68 % interval", in68, 0.6827),
                                   line("learned MAP + Laplace, 95 % interval", in95, 0.95)};
    if (tau_cov > 0) {
      lines.push_back(line("learned + decoder error MAP + Laplace, 68 % interval", e68, 0.6827));
      lines.push_back(line("learned + decoder error MAP + Laplace, 95 % interval", e95, 0.95));
    }
    lines.push_back(line("Sersic MAP + Laplace, 68 % interval", s68, 0.6827));
    lines.push_back(line("Sersic MAP + Laplace, 95 % interval", s95, 0.95));
    char med[256];
    std::snprintf(
        med, sizeof med, "median |theta_E error|: learned %.4f\"%s", median(err_learned),
        tau_cov > 0 ? (", with decoder error " + lensing::detail::plot_number(median(err_error), "%.4f") + "\"").c_str()
                    : "");
    lines.push_back(med);
    // Standardised errors z = (q_MAP - q_true) / sd in theta_E's unconstrained
    // parameter: mean +- its standard error, and sd (calibrated: 0 +- 1/sqrt(n), 1).
    auto zline = [&](char const* what, std::vector<double> const& z) {
      double m = 0, v = 0;
      for (double x : z)
        m += x;
      m /= double(z.size());
      for (double x : z)
        v += (x - m) * (x - m);
      double const sd = z.size() > 1 ? std::sqrt(v / double(z.size() - 1)) : NAN;
      char b[256];
      std::snprintf(b, sizeof b, "standardised theta_E errors, %s: mean %+.3f +- %.3f, sd %.3f (n %zu)", what, m,
                    sd / std::sqrt(double(z.size())), sd, z.size());
      return std::string(b);
    };
    lines.push_back(zline("learned MAP", z_learned));
    if (tau_cov > 0) lines.push_back(zline("decoder-error MAP", z_error));
    md << "\ntheta_E coverage over " << o.lenses << " simulated lenses (theta_E uniform in [2.0, 2.6]"
       << (o.control ? "; control: sources dec(z), z ~ N(0, I)" : "")
       << (o.truth_decoder_grid ? "; truths on the decoder's 32 x 32 grid" : "")
       << (o.truth_control ? "; control: truths dec(z) + delta, delta from the structured decoder-error prior" : "")
       << "):\n\n";
    for (auto const& l : lines) {
      std::printf("%s\n", l.c_str());
      md << "- " << l << "\n";
    }
    int const k95 = tau_cov > 0 ? e95 : in95;
    bool const cov_ok = std::abs(k95 / n - 0.95) <= 2 * std::sqrt(0.95 * 0.05 / n) + 1e-12;
    std::printf("%s 95 %% coverage within 2 binomial sd of 0.95: %s\n", tau_cov > 0 ? "decoder-error" : "learned",
                cov_ok ? "yes" : "NO");
    ok = ok && cov_ok;
  }
  double const secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s_table.md%s%s; %.1f s\n", o.out.c_str(),
              o.coverage_only
                  ? ""
                  : (", " + o.out + "_learned.png, " + o.out + "_sersic.png, " + o.out + "_source.png").c_str(),
              o.lenses > 0 ? (", " + o.out + "_coverage.csv").c_str() : "", secs);
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
    std::fprintf(stderr, "lensed_digit_fit: error: %s\n", e.what());
    return 1;
  }
}
