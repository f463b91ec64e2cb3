// render_lens: one strong lens rendered at high resolution, with its noise,
// critical curves and caustics, and the residuals of a slightly wrong model.
//
//   render_lens [--out DIR] [--size N] [--pixel-scale S] [--supersampling K]
//               [--psf gaussian|moffat] [--fwhm F] [--psf-sampling binned|supersampled]
//               [--exposure T] [--seed SEED] [--perturb P] [--help]
//
// The lens is an SIE + external shear, the source an elliptical Sersic galaxy,
// the lens light another (lenstronomy conventions).  Pixel values are count
// rates [e-/s]; the noise is Poisson (exposure T seconds) + read noise (5 e-)
// + sky background (0.02 e-/s rms).  Writes to DIR (default
// ./render_lens_output):
//   lensed_curves.png  left: the noiseless image (asinh stretch) with the
//                      critical curves (tangential orange, radial green);
//                      right: the source plane (unlensed source) with the
//                      caustics and the source centre
//   noiseless.png      the noiseless image
//   noisy.png          one noisy realisation (same stretch)
//   residual.png       (noisy - model with theta_E * (1 + P)) / sigma, blue -5 to red +5
// and prints what it wrote, chi^2 per pixel of the true and the perturbed
// model, and timings.  Bad arguments give a clear error and exit code 2.
#include <lensing/io/png.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/fft_convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/psf/kernels.hpp>
#include <lensing/raytrace/critical_curves.hpp>
#include <lensing/sources/sersic.hpp>

#include <Kokkos_Core.hpp>

#include "../common/cli.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string out = "render_lens_output";
  int size = 256;
  double pixel_scale = 0.025;
  int supersampling = 3;
  std::string psf = "gaussian";
  double fwhm = 0.1;
  std::string sampling = "binned";
  double exposure = 1000;
  long long seed = 42;
  double perturb = 0.01;
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: render_lens [--out DIR] [--size N] [--pixel-scale S] [--supersampling K]\n"
               "                   [--psf gaussian|moffat] [--fwhm F] [--psf-sampling binned|supersampled]\n"
               "                   [--exposure T] [--seed SEED] [--perturb P] [--help]\n"
               "  --out DIR           output directory (default ./render_lens_output)\n"
               "  --size N            image side in pixels, 16..4096 (default 256)\n"
               "  --pixel-scale S     arcsec per pixel, 0.001..1 (default 0.025)\n"
               "  --supersampling K   sub-pixels per pixel side, 1..16 (default 3)\n"
               "  --psf NAME          gaussian (lenstronomy GAUSSIAN) or moffat (beta = 3) (default gaussian)\n"
               "  --fwhm F            PSF FWHM in arcsec, > 0 (default 0.1)\n"
               "  --psf-sampling M    binned (PSF after binning) or supersampled (PSF on the\n"
               "                      sub-pixel grid, then binning) (default binned)\n"
               "  --exposure T        exposure time in seconds, > 0 (default 1000)\n"
               "  --seed SEED         noise seed, a non-negative integer (default 42)\n"
               "  --perturb P         relative change of theta_E for the residual map (default 0.01)\n");
}

}  // namespace

// Declared in ../common/cli.hpp.
[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "render_lens: %s\n", msg.c_str());
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
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty directory name");
    } else if (a == "--size") {
      o.size = int(parse_integer(a, value(), 16, 4096));
    } else if (a == "--pixel-scale") {
      o.pixel_scale = parse_real(a, value(), 1e-3, 1.0);
    } else if (a == "--supersampling") {
      o.supersampling = int(parse_integer(a, value(), 1, 16));
    } else if (a == "--psf") {
      o.psf = value();
      if (o.psf != "gaussian" && o.psf != "moffat") bad("--psf must be gaussian or moffat, got '" + o.psf + "'");
    } else if (a == "--fwhm") {
      o.fwhm = parse_real(a, value(), 1e-4, 10.0);
    } else if (a == "--psf-sampling") {
      o.sampling = value();
      if (o.sampling != "binned" && o.sampling != "supersampled")
        bad("--psf-sampling must be binned or supersampled, got '" + o.sampling + "'");
    } else if (a == "--exposure") {
      o.exposure = parse_real(a, value(), 1e-6, 1e9);
    } else if (a == "--seed") {
      o.seed = parse_integer(a, value(), 0, 9000000000000000000LL);
    } else if (a == "--perturb") {
      o.perturb = parse_real(a, value(), -0.5, 0.5);
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  return o;
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

template <class View>
std::vector<double> to_host(View const& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  std::vector<double> out(h.extent(0) * h.extent(1));
  for (std::size_t iy = 0; iy < h.extent(0); ++iy)
    for (std::size_t ix = 0; ix < h.extent(1); ++ix)
      out[iy * h.extent(1) + ix] = h(iy, ix);
  return out;
}

// asinh stretch of a count-rate image onto [0, 1]: linear below `soft`,
// logarithmic above; the same scale for every image drawn with it.
struct Stretch {
  double soft, top;
  double operator()(double v) const { return std::asinh(v / soft) / std::asinh(top / soft); }
  std::vector<double> apply(std::vector<double> const& v) const {
    std::vector<double> out(v.size());
    for (std::size_t i = 0; i < v.size(); ++i)
      out[i] = (*this)(v[i]);
    return out;
  }
};

using Lens = lensing::Composite<lensing::SIE<double>, lensing::ExternalShear<double>>;
using Light = lensing::SersicEllipse<double>;
using Model = lensing::LensModel<Lens, Light, Light>;

template <class Psf>
int run(Options const& o, Psf const& psf, lensing::PixelGrid<double> const& grid, lensing::PsfSampling sampling) {
  using Space = Kokkos::DefaultExecutionSpace;
  using Mem = Space::memory_space;
  Space space;
  int const n = o.size;
  Model const truth{
      Lens(lensing::SIE<double>{1.2, 0.12, -0.05, 0.0, 0.0}, lensing::ExternalShear<double>{0.04, 0.025, 0.0, 0.0}),
      Light{150.0, 0.25, 1.5, 0.15, 0.1, 0.06, -0.04}, Light{80.0, 0.8, 3.5, 0.05, -0.03, 0.0, 0.0}};
  truth.check();
  lensing::ObservationNoise<double> noise;
  noise.exposure_time = o.exposure;
  noise.background_rms = 0.02;
  noise.read_noise = 5.0;
  noise.check("render_lens");
  lensing::Observation<double, Mem, Psf> const obs(grid, psf, sampling);
  lensing::View2D<double, Mem> clean("clean", n, n), noisy("noisy", n, n), sigma("sigma", n, n), wrong("wrong", n, n);

  // Warm-up (first touch of the buffers, thread start-up), then timed runs.
  obs.render(space, truth, clean);
  space.fence();
  obs.sample(space, truth, noise, noisy, std::uint64_t(o.seed));
  space.fence();
  auto t0 = Clock::now();
  obs.render(space, truth, clean);
  space.fence();
  double const t_render = seconds_since(t0);
  t0 = Clock::now();
  obs.sample(space, truth, noise, noisy, std::uint64_t(o.seed));
  space.fence();
  double const t_sample = seconds_since(t0);
  lensing::observation_noise_map(space, noise, clean, sigma);
  Model perturbed = truth;
  perturbed.lens.get<0>().theta_E *= 1 + o.perturb;
  obs.render(space, perturbed, wrong);
  space.fence();

  auto const hc = to_host(clean), hn = to_host(noisy), hs = to_host(sigma), hw = to_host(wrong);
  std::vector<double> res(hc.size());
  double chi2_true = 0, chi2_wrong = 0;
  for (std::size_t i = 0; i < hc.size(); ++i) {
    double const rt = (hn[i] - hc[i]) / hs[i];
    res[i] = (hn[i] - hw[i]) / hs[i];
    chi2_true += rt * rt;
    chi2_wrong += res[i] * res[i];
  }
  double const peak = *std::max_element(hc.begin(), hc.end());

  t0 = Clock::now();
  Kokkos::DefaultHostExecutionSpace host;
  double const half = 0.5 * n * o.pixel_scale;
  auto const curves = lensing::critical_curves(host, truth.lens, half, 512);
  double const t_curves = seconds_since(t0);

  // Pictures.
  t0 = Clock::now();
  std::filesystem::create_directories(o.out);
  int const scale = std::max(1, 512 / n);
  Stretch const stretch{std::max(10 * noise.background_rms, 1e-3 * peak), peak};
  std::vector<std::string> written;
  auto path = [&](char const* name) { return (std::filesystem::path(o.out) / name).string(); };
  lensing::io::write_png(path("noiseless.png"), stretch.apply(hc), n, n, 0, 1, lensing::io::ColorMap::magma, scale);
  written.push_back(path("noiseless.png"));
  lensing::io::write_png(path("noisy.png"), stretch.apply(hn), n, n, 0, 1, lensing::io::ColorMap::magma, scale);
  written.push_back(path("noisy.png"));
  lensing::io::write_png(path("residual.png"), res, n, n, -5, 5, lensing::io::ColorMap::diverging, scale);
  written.push_back(path("residual.png"));
  {
    int const w = n * scale;
    lensing::io::Canvas canvas(2 * w + 8, w, lensing::io::Rgb{255, 255, 255});
    // Left panel: the image plane.
    auto const sc = stretch.apply(hc);
    for (int r = 0; r < w; ++r)
      for (int c = 0; c < w; ++c) {
        int const ix = std::min(n - 1, c * n / w), iy = std::min(n - 1, (w - 1 - r) * n / w);
        canvas.set(c, r, lensing::io::colour(lensing::io::ColorMap::magma, sc[std::size_t(iy) * n + ix]));
      }
    // Right panel: the unlensed source around its centre, the window sized to
    // hold the caustics.
    double const sx = truth.source.center_x, sy = truth.source.center_y;
    double S = 2.5 * truth.source.R_sersic;
    for (auto const& cv : curves)
      for (std::size_t i = 0; i < cv.beta_x.size(); ++i)
        S = std::max(S, 1.3 * std::max(std::fabs(cv.beta_x[i] - sx), std::fabs(cv.beta_y[i] - sy)));
    S = std::min(S, half);
    double const speak = truth.source.surface_brightness(sx, sy);
    Stretch const sstretch{0.05 * speak, speak};
    for (int r = 0; r < w; ++r)
      for (int c = 0; c < w; ++c) {
        double const x = sx - S + (c + 0.5) * 2 * S / w, y = sy + S - (r + 0.5) * 2 * S / w;
        canvas.set(w + 8 + c, r,
                   lensing::io::colour(lensing::io::ColorMap::magma, sstretch(truth.source.surface_brightness(x, y))));
      }
    lensing::io::Rgb const tangential{255, 150, 20}, radial{40, 220, 90}, white{255, 255, 255};
    double const p = 2 * half / w;  // world units per canvas pixel, left panel
    canvas.set_window(-half, half + (w + 8) * p, -half, half);
    for (auto const& cv : curves) {
      std::vector<double> x(cv.x.begin(), cv.x.end()), y(cv.y.begin(), cv.y.end());
      canvas.polyline(x, y, cv.kind == lensing::CriticalKind::tangential ? tangential : radial, cv.closed, 2);
    }
    double const q = 2 * S / w;  // right panel
    canvas.set_window(sx - S - (w + 8) * q, sx + S, sy - S, sy + S);
    for (auto const& cv : curves) {
      std::vector<double> x(cv.beta_x.begin(), cv.beta_x.end()), y(cv.beta_y.begin(), cv.beta_y.end());
      canvas.polyline(x, y, cv.kind == lensing::CriticalKind::tangential ? tangential : radial, cv.closed, 2);
    }
    canvas.marker(sx, sy, white, 3);
    canvas.write(path("lensed_curves.png"));
    written.push_back(path("lensed_curves.png"));
  }
  double const t_png = seconds_since(t0);

  std::printf("render_lens: %dx%d pixels of %.4g\", supersampling %d (%dx%d sub-pixels), %s PSF FWHM %.3g\" (%s)\n", n,
              n, o.pixel_scale, o.supersampling, grid.fine_nx(), grid.fine_ny(), o.psf.c_str(), o.fwhm,
              o.sampling.c_str());
  std::printf("  backend %s, %d thread(s); exposure %.4g s, read noise %.3g e-, background %.3g e-/s, seed %lld\n",
              Space::name(), Space().concurrency(), noise.exposure_time, noise.read_noise, noise.background_rms,
              o.seed);
  std::printf("  peak %.4g e-/s (%.3g counts); %zu critical curve(s):", peak, peak * o.exposure, curves.size());
  for (auto const& cv : curves)
    std::printf(" %s (%zu vertices)", cv.kind == lensing::CriticalKind::tangential ? "tangential" : "radial",
                cv.x.size());
  std::printf("\n  chi^2 / pixel: true model %.4f, theta_E x %.4g: %.4f\n", chi2_true / hc.size(), 1 + o.perturb,
              chi2_wrong / hc.size());
  std::printf(
      "  timings: render %.4f s (%.1f Mpix/s of sub-pixels), noisy realisation %.4f s, critical curves %.4f s, "
      "PNGs %.4f s\n",
      t_render, 1e-6 * grid.fine_nx() * double(grid.fine_ny()) / t_render, t_sample, t_curves, t_png);
  std::printf("wrote:\n");
  for (auto const& f : written)
    std::printf("  %s\n", f.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    using Mem = Kokkos::DefaultExecutionSpace::memory_space;
    bool const super = o.sampling == "supersampled";
    int const k = o.supersampling;
    auto const grid = lensing::PixelGrid<double>::square(o.size, o.pixel_scale, k);
    // The PSF operator on the grid it acts on: pixels, or sub-pixels.
    double const scale = super ? o.pixel_scale / k : o.pixel_scale;
    int const m = super ? grid.fine_nx() : o.size;
    auto const sampling = super ? lensing::PsfSampling::supersampled : lensing::PsfSampling::binned;
    if (o.psf == "gaussian") {
      lensing::GaussianFilter<double, Mem> const psf(o.fwhm, scale, m, m);
      return run(o, psf, grid, sampling);
    }
    // Moffat (beta = 3), pixel-integrated, on a stamp of ~8 FWHM, by FFT.
    double const stamp = std::ceil(4 * o.fwhm / scale);
    if (stamp > 512) throw std::invalid_argument("the Moffat stamp (8 FWHM) would exceed 1025 pixels: lower --fwhm");
    int const half = std::max(2, int(stamp));
    auto const kernel = lensing::moffat_psf_kernel<double>(o.fwhm, 3.0, scale, 2 * half + 1);
    lensing::FftConvolution<double, Mem> const psf(Kokkos::DefaultExecutionSpace(), kernel, m, m);
    return run(o, psf, grid, sampling);
  } catch (std::invalid_argument const& e) {
    std::fprintf(stderr, "render_lens: %s\n", e.what());
    return 2;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "render_lens: error: %s\n", e.what());
    return 1;
  }
}
