// Three-band LSST-like strong lenses: a MultiBandSimulator of SIE + external
// shear lenses with a Sérsic source and a Sérsic lens light (centred on the
// lens by a tie), seen in the LSST-like g, r and i presets (each with its
// pixel scale, Gaussian PSF, sky and noise), with colours drawn per image: a
// blue source and a red lens galaxy.  Writes a colour mosaic PNG (Lupton et
// al. 2004 asinh mapping: i -> red, r -> green, g -> blue), reports the
// throughput, and checks the colours: the flux of the source alone (and of
// the lens light alone) in g and i over r must be the drawn flux ratios.
//
//   simulate_lsst_bands [--n N] [--size S] [--seed SEED] [--out FILE.png]
//
// Threads: OMP_NUM_THREADS (OpenMP backend).  Defaults: 256 images of 48x48
// pixels (0.2"/pixel), float, mosaic of the first 16 in lsst_bands.png.

#include <lensing/density/parameter_table.hpp>
#include <lensing/io/rgb_mosaic.hpp>
#include <lensing/model/instrument.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/multiband.hpp>
#include <lensing/sources/sersic.hpp>

#include <Kokkos_Core.hpp>

#include "../common/cli.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

namespace {

struct Options {
  long n = 256;
  int size = 48;
  std::uint64_t seed = 2024;
  std::string out = "lsst_bands.png";
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: simulate_lsst_bands [--n N] [--size S] [--seed SEED] [--out FILE.png] [--help]\n"
               "  --n N         number of three-band images (default 256)\n"
               "  --size S      image side in pixels at 0.2\"/pixel (default 48)\n"
               "  --seed SEED   random seed, a non-negative integer (default 2024)\n"
               "  --out FILE    colour mosaic of the first 16 images (default lsst_bands.png)\n"
               "threads: set OMP_NUM_THREADS.\n");
}

}  // namespace

// Declared in ../common/cli.hpp.
[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "simulate_lsst_bands: %s\n", msg.c_str());
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
    } else if (a == "--n") {
      o.n = parse_integer(a, value(), 1, 100000000);
    } else if (a == "--size") {
      o.size = int(parse_integer(a, value(), 16, 1024));
    } else if (a == "--seed") {
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 9000000000000000000L));
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty file name");
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  return o;
}

using Scalar = float;
using Space = Kokkos::DefaultExecutionSpace;
using Mem = Space::memory_space;
using Lens = lensing::Composite<lensing::SIE<Scalar>, lensing::ExternalShear<Scalar>>;
using Model = lensing::LensModel<Lens, lensing::SersicEllipse<Scalar>, lensing::SersicEllipse<Scalar>>;
using Psf = lensing::GaussianFilter<Scalar, Mem>;
using Multi = lensing::simulate::MultiBandSimulator<Model, Psf, Mem>;
using P = lensing::Prior<Scalar>;

// Amplitudes in the r band [e-/s per arcsec^2 at R_sersic]: r ~ 22-24.5 for
// the (unlensed) source, r ~ 19-20.5 for the lens galaxy.  Colours (AB): a
// star-forming source, g - r in [0, 0.4], r - i in [0, 0.3]; an early-type
// lens, g - r in [1.2, 1.6], r - i in [0.4, 0.6]; each uniform in magnitudes.
lensing::ParameterTable<Scalar, Mem> priors(std::vector<lensing::BandConfig> const& bands) {
  auto const& g = bands[0];
  auto const& r = bands[1];
  auto const& i = bands[2];
  auto const colour = [&](lensing::BandConfig const& b, double c_lo, double c_hi) {
    using lensing::simulate::flux_ratio_of_colour;
    return P::log_uniform(flux_ratio_of_colour(c_hi, b, r), flux_ratio_of_colour(c_lo, b, r));
  };
  lensing::ParameterTable<Scalar, Mem> t({{"lens0.theta_E", P::uniform(0.8, 1.6)},
                                          {"lens0.e1", P::truncated_normal(0, 0.1, -0.3, 0.3)},
                                          {"lens0.e2", P::truncated_normal(0, 0.1, -0.3, 0.3)},
                                          {"lens0.center_x", P::normal(0, 0.05)},
                                          {"lens0.center_y", P::normal(0, 0.05)},
                                          {"lens1.gamma1", P::normal(0, 0.03)},
                                          {"lens1.gamma2", P::normal(0, 0.03)},
                                          {"lens1.ra_0", P::fixed(0)},
                                          {"lens1.dec_0", P::fixed(0)},
                                          {"source0.amp", P::log_uniform(10, 80)},
                                          {"source0.R_sersic", P::log_uniform(0.1, 0.4)},
                                          {"source0.n_sersic", P::uniform(0.8, 2.0)},
                                          {"source0.e1", P::uniform(-0.3, 0.3)},
                                          {"source0.e2", P::uniform(-0.3, 0.3)},
                                          {"source0.center_x", P::uniform(-0.3, 0.3)},
                                          {"source0.center_y", P::uniform(-0.3, 0.3)},
                                          {"light0.amp", P::log_uniform(15, 60)},
                                          {"light0.R_sersic", P::log_uniform(0.5, 1.2)},
                                          {"light0.n_sersic", P::uniform(3, 4.5)},
                                          {"light0.e1", P::fixed(0)},
                                          {"light0.e2", P::fixed(0)},
                                          {"light0.center_x", P::fixed(0)},
                                          {"light0.center_y", P::fixed(0)},
                                          // g over r: m_g - m_r = g - r; i over r: m_i - m_r = -(r - i).
                                          {"g.source_flux_ratio", colour(g, 0.0, 0.4)},
                                          {"g.light_flux_ratio", colour(g, 1.2, 1.6)},
                                          {"i.source_flux_ratio", colour(i, -0.3, 0.0)},
                                          {"i.light_flux_ratio", colour(i, -0.6, -0.4)}});
  // The lens light follows the lens mass: same centre and ellipticity.
  t.tie("light0.center_x", "lens0.center_x");
  t.tie("light0.center_y", "lens0.center_y");
  t.tie("light0.e1", "lens0.e1");
  t.tie("light0.e2", "lens0.e2");
  return t;
}

template <class V>
std::vector<double> to_host(V const& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(h.data(), h.data() + h.size());
}

int run(Options const& o) {
  std::vector<lensing::BandConfig> const bands{lensing::presets::lsst_like('g'), lensing::presets::lsst_like('r'),
                                               lensing::presets::lsst_like('i')};
  lensing::simulate::MultiBandOptions opt;
  opt.seed = o.seed;
  opt.batch_capacity = int(std::min<long>(o.n, 128));
  opt.reference_band = "r";
  Multi const sim(bands, o.size, o.size, 2, priors(bands), opt);
  int const K = sim.num_labels(), cap = sim.batch_capacity(), S = o.size;
  std::printf("LSST-like g, r, i: %ld lenses of %dx%d pixels at 0.2\"/pixel, supersampling 2, float\n", o.n, S, S);
  std::printf("  backend %s, %d thread(s), seed %llu; labels (%d):", Space::name(), Space().concurrency(),
              static_cast<unsigned long long>(o.seed), K);
  for (auto const& s : sim.label_names())
    std::printf(" %s", s.c_str());
  std::printf("\n");

  Space space;
  Kokkos::View<Scalar****, Kokkos::LayoutRight, Mem> images("images", cap, 3, S, S);
  Kokkos::View<Scalar**, Kokkos::LayoutRight, Mem> labels("labels", cap, K);
  int const shown = int(std::min<long>(o.n, 16));
  std::vector<double> mosaic, first_labels;
  long nonfinite = 0;
  auto const t0 = std::chrono::steady_clock::now();
  for (long first = 0; first < o.n; first += cap) {
    int const m = int(std::min<long>(cap, o.n - first));
    auto const im = Kokkos::subview(images, Kokkos::make_pair(0, m), Kokkos::ALL, Kokkos::ALL, Kokkos::ALL);
    auto const lb = Kokkos::subview(labels, Kokkos::make_pair(0, m), Kokkos::ALL);
    sim.generate(space, std::uint64_t(first), im, lb);
    space.fence();
    auto const h = to_host(im);
    for (double v : h)
      nonfinite += !std::isfinite(v);
    if (first == 0) {
      mosaic.assign(h.begin(), h.begin() + std::size_t(shown) * 3 * S * S);
      auto const hl = to_host(lb);
      first_labels.assign(hl.begin(), hl.begin() + std::size_t(shown) * K);
    }
  }
  double const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("simulated %ld three-band images in %.3f s: %.0f images/s (with the copies to the host)\n", o.n, seconds,
              double(o.n) / seconds);

  lensing::io::RgbOptions rgb;
  rgb.scale = 3;
  lensing::io::write_rgb_mosaic(o.out, mosaic, shown, S, S, rgb);
  std::printf("wrote %s (%d images; i -> red, r -> green, g -> blue)\n", o.out.c_str(), shown);

  // Colour check: the source alone (lens light amplitude 0), then the lens
  // light alone, rendered without noise; per image, each band's total flux
  // over the r band's is the drawn ratio.  Deviations: rounding, and the PSF
  // near the image edges (its "nearest" edge mode does not conserve the flux
  // that reaches the border; the bands' PSFs differ) — well below 1e-2.
  auto const& table = sim.table();
  int const m = shown;
  Kokkos::View<Scalar**, Kokkos::LayoutRight, Mem> parts("parts", m, K);
  Kokkos::View<Scalar****, Kokkos::LayoutRight, Mem> clean("clean", m, 3, S, S);
  auto const hp = Kokkos::create_mirror_view(parts);
  double worst = 0;
  bool ok = nonfinite == 0;
  char const* const group[2] = {"source", "light"};
  for (int part = 0; part < 2; ++part) {
    for (int i = 0; i < m; ++i)
      for (int k = 0; k < K; ++k)
        hp(i, k) = Scalar(first_labels[std::size_t(i) * K + k]);
    for (int i = 0; i < m; ++i)
      hp(i, table.index(part == 0 ? "light0.amp" : "source0.amp")) = 0;
    Kokkos::deep_copy(parts, hp);
    sim.render(space, parts, clean);
    space.fence();
    auto const hc = to_host(clean);
    double drawn_mean[3] = {0, 0, 0}, measured_mean[3] = {0, 0, 0};
    for (int i = 0; i < m; ++i) {
      double flux[3] = {0, 0, 0};
      for (int b = 0; b < 3; ++b)
        for (int p = 0; p < S * S; ++p)
          flux[b] += hc[(std::size_t(i) * 3 + b) * S * S + p];
      for (int b : {0, 2}) {
        std::string const name = bands[b].name + "." + group[part] + "_flux_ratio";
        double const drawn = first_labels[std::size_t(i) * K + table.index(name)];
        double const measured = flux[b] / flux[1];
        drawn_mean[b] += drawn / m;
        measured_mean[b] += measured / m;
        worst = std::max(worst, std::fabs(measured / drawn - 1));
        ok = ok && std::isfinite(measured) && flux[1] > 0;
      }
    }
    std::printf("  %-6s flux over r: g %.4f (drawn %.4f), i %.4f (drawn %.4f), mean of %d images\n", group[part],
                measured_mean[0], drawn_mean[0], measured_mean[2], drawn_mean[2], m);
  }
  ok = ok && worst < 1e-2;
  std::printf("colour check: largest relative deviation %.2e (tolerance 1e-2), %ld non-finite pixels: %s\n", worst,
              nonfinite, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    return run(o);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "simulate_lsst_bands: error: %s\n", e.what());
    return 1;
  }
}
