// HST-like strong lenses with dark subhaloes: a Simulator of an elliptical
// power-law (EPL) main lens + external shear + two truncated-NFW subhaloes,
// lensing a clumpy source made of shapelet components, seen through the
// HST-like F814W preset (0.05"/pixel, Gaussian PSF, sky + Poisson + read
// noise, bias, cosmic rays, hot/dead pixels, masks).  Writes a mosaic PNG of
// the first images (asinh-stretched grey), reports the throughput, and
// checks that the images are finite and that regenerating the first batch
// gives the same bits (determinism per seed and image index).
//
//   simulate_epl_subhalo [--n N] [--size S] [--seed SEED] [--out FILE.png]
//
// Threads: OMP_NUM_THREADS (OpenMP backend).  Defaults: 1024 images of 64x64
// pixels, supersampling 2, float, mosaic of the first 16 in epl_subhalo.png.
//
// The source: three shapelet components of order n_max = 0 (each its own
// amplitude, scale beta and centre).  Higher orders need a name per
// coefficient in the prior table; a Shapelets<Scalar, n_max> profile names
// all its coefficients "amp" (lenstronomy's list), so a table could only
// give them one common value.

#include <lensing/density/parameter_table.hpp>
#include <lensing/io/rgb_mosaic.hpp>
#include <lensing/model/instrument.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/epl.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/tnfw.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/simulator.hpp>
#include <lensing/sources/composite_light.hpp>
#include <lensing/sources/light_profile.hpp>
#include <lensing/sources/shapelets.hpp>

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
  long n = 1024;
  int size = 64;
  std::uint64_t seed = 2024;
  std::string out = "epl_subhalo.png";
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: simulate_epl_subhalo [--n N] [--size S] [--seed SEED] [--out FILE.png] [--help]\n"
               "  --n N         number of images (default 1024)\n"
               "  --size S      image side in pixels at 0.05\"/pixel (default 64)\n"
               "  --seed SEED   random seed, a non-negative integer (default 2024)\n"
               "  --out FILE    mosaic of the first 16 images (default epl_subhalo.png)\n"
               "threads: set OMP_NUM_THREADS.\n");
}

}  // namespace

// Declared in ../common/cli.hpp.
[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "simulate_epl_subhalo: %s\n", msg.c_str());
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
using Lens = lensing::Composite<lensing::EPL<Scalar>, lensing::ExternalShear<Scalar>, lensing::TNFW<Scalar>,
                                lensing::TNFW<Scalar>>;
using Clump = lensing::Shapelets<Scalar, 0>;
using Source = lensing::CompositeLight<Clump, Clump, Clump>;
using Model = lensing::LensModel<Lens, Source, lensing::NoLight<Scalar>>;
using Psf = lensing::GaussianFilter<Scalar, Mem>;
using Sim = lensing::simulate::Simulator<Model, Psf, Mem>;
using P = lensing::Prior<Scalar>;

// Priors by parameter name (lensing::simulate::model_parameter_names<Model>()).
// Main lens: theta_E 0.8-1.4", slope gamma 1.8-2.2.  Subhaloes (TNFW):
// anywhere within 1.4" of the centre, scale radius Rs 0.05-0.15", deflection
// at Rs alpha_Rs 0.005-0.05", truncated at r_trunc = 5 Rs (a tie).  Source
// clumps: amplitude 30-300 e-/s (shapelet normalisation, F814W zero point
// 25.94: a clump of beta = 0.1" and amp 100 has 3.5 e-/s, magnitude ~24.6),
// beta 0.04-0.15", within 0.4" of the optical axis.
lensing::ParameterTable<Scalar, Mem> priors() {
  lensing::ParameterTable<Scalar, Mem> t({{"lens0.theta_E", P::uniform(0.8, 1.4)},
                                          {"lens0.gamma", P::uniform(1.8, 2.2)},
                                          {"lens0.e1", P::truncated_normal(0, 0.1, -0.3, 0.3)},
                                          {"lens0.e2", P::truncated_normal(0, 0.1, -0.3, 0.3)},
                                          {"lens0.center_x", P::normal(0, 0.03)},
                                          {"lens0.center_y", P::normal(0, 0.03)},
                                          {"lens1.gamma1", P::normal(0, 0.03)},
                                          {"lens1.gamma2", P::normal(0, 0.03)},
                                          {"lens1.ra_0", P::fixed(0)},
                                          {"lens1.dec_0", P::fixed(0)}});
  for (char const* sub : {"lens2", "lens3"}) {
    std::string const s = sub;
    t.add(s + ".Rs", P::log_uniform(0.05, 0.15));
    t.add(s + ".alpha_Rs", P::log_uniform(0.005, 0.05));
    t.tie(s + ".r_trunc", s + ".Rs", 5.0);
    t.add(s + ".center_x", P::uniform(-1.4, 1.4));
    t.add(s + ".center_y", P::uniform(-1.4, 1.4));
  }
  for (char const* clump : {"source0", "source1", "source2"}) {
    std::string const c = clump;
    t.add(c + ".amp", P::log_uniform(30, 300));
    t.add(c + ".beta", P::log_uniform(0.04, 0.15));
    t.add(c + ".center_x", P::uniform(-0.4, 0.4));
    t.add(c + ".center_y", P::uniform(-0.4, 0.4));
  }
  return t;
}

template <class V>
std::vector<double> to_host(V const& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(h.data(), h.data() + h.size());
}

int run(Options const& o) {
  auto const band = lensing::presets::hst_like();
  int const S = o.size, k = 2;
  lensing::simulate::SimulatorOptions opt;
  opt.seed = o.seed;
  opt.batch_capacity = int(std::min<long>(o.n, 256));
  int const cap = opt.batch_capacity;
  Sim const sim(lensing::PixelGrid<Scalar>::square(S, Scalar(band.pixel_scale), k),
                Psf(band.psf_fwhm, band.pixel_scale, S, S, 5.0, cap), band.detector_config(), priors(), opt);
  int const K = sim.num_labels();
  std::printf(
      "HST-like %s: %ld EPL + shear + 2 TNFW subhalo lenses, 3-clump shapelet sources, %dx%d at %.2f\"/pixel, "
      "supersampling %d, float\n",
      band.name.c_str(), o.n, S, S, band.pixel_scale, k);
  std::printf("  backend %s, %d thread(s), seed %llu, %d labels\n", Space::name(), Space().concurrency(),
              static_cast<unsigned long long>(o.seed), K);

  Space space;
  Kokkos::View<Scalar***, Kokkos::LayoutRight, Mem> images("images", cap, S, S);
  Kokkos::View<Scalar**, Kokkos::LayoutRight, Mem> labels("labels", cap, K);
  auto const batch = [&](long first) {
    int const m = int(std::min<long>(cap, o.n - first));
    auto const im = Kokkos::subview(images, Kokkos::make_pair(0, m), Kokkos::ALL, Kokkos::ALL);
    auto const lb = Kokkos::subview(labels, Kokkos::make_pair(0, m), Kokkos::ALL);
    sim.generate(space, std::uint64_t(first), im, lb);
    return im;
  };
  // The first batch, kept for the mosaic and the determinism check.
  auto const first_batch = to_host(batch(0));
  // Throughput: every batch, device work only.
  long last = 0;
  auto const t0 = std::chrono::steady_clock::now();
  for (long first = 0; first < o.n; first += cap) {
    batch(first);
    last = first;
  }
  space.fence();
  double const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("simulated %ld images in %.3f s: %.0f images/s (%.1f us/image)\n", o.n, seconds, double(o.n) / seconds,
              1e6 * seconds / double(o.n));
  long nonfinite = 0;
  for (double v : to_host(Kokkos::subview(images, Kokkos::make_pair(0, int(std::min<long>(cap, o.n - last))),
                                          Kokkos::ALL, Kokkos::ALL)))
    nonfinite += !std::isfinite(v);
  for (double v : first_batch)
    nonfinite += !std::isfinite(v);
  // Regenerated after the others: the same bits.
  auto const again = to_host(batch(0));
  bool const same = again == first_batch;

  // Mosaic: each image as three equal channels, i.e. a grey asinh stretch.
  int const shown = int(std::min<long>(o.n, 16));
  std::vector<double> grey(std::size_t(shown) * 3 * S * S);
  for (int i = 0; i < shown; ++i)
    for (int c = 0; c < 3; ++c)
      std::copy(first_batch.begin() + std::size_t(i) * S * S, first_batch.begin() + std::size_t(i + 1) * S * S,
                grey.begin() + (std::size_t(i) * 3 + c) * S * S);
  lensing::io::RgbOptions rgb;
  rgb.scale = 2;
  lensing::io::write_rgb_mosaic(o.out, grey, shown, S, S, rgb);
  std::printf("wrote %s (%d images)\n", o.out.c_str(), shown);
  bool const ok = nonfinite == 0 && same;
  std::printf("check: %ld non-finite pixels, first batch regenerated %s: %s\n", nonfinite,
              same ? "bit-identical" : "DIFFERENT", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    return run(o);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "simulate_epl_subhalo: error: %s\n", e.what());
    return 1;
  }
}
