// Many-lens fitting over MPI ranks (include/lensing/mpi/fit_catalogue.hpp):
// a catalogue of cutouts (images.npy (n, ny, nx) and noise.npy (n,) sigma per
// lens) is fitted lens by lens — SIE lens, circular Sersic source, Gaussian
// PSF; MAP by multi-start L-BFGS and the Laplace covariance
// (fit/workflow.hpp find_map) — with lenses handed out dynamically to free
// ranks, and one CSV table on rank 0.  A lens that cannot be fitted is a
// `failed` row; re-running the same command fits only the lenses without a
// result (the work directory is the done-list).
//
//   mpiexec -n 4 mpi_fit_catalogue [--catalogue DIR] [--n N] [--size S] [--starts K]
//                                  [--work DIR] [--table FILE] [--rank0-serves]
//
// Without DIR/images.npy, rank 0 first simulates a catalogue of N lenses
// (default 24 of 32x32 pixels; lens 5 gets a NaN pixel, to show a failed
// row).  Threads per rank: OMP_NUM_THREADS.

#include <lensing/fit/posterior.hpp>
#include <lensing/fit/workflow.hpp>
#include <lensing/io/npy.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/mpi/fit_catalogue.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/sources/light_profile.hpp>
#include <lensing/sources/sersic.hpp>

#include <Kokkos_Core.hpp>

#include "../common/cli.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

namespace {
struct Options {
  std::string catalogue = "mpi_catalogue";
  long n = 24;
  int size = 32;
  int starts = 4;
  std::string work = "mpi_catalogue/fits";
  std::string table = "mpi_catalogue/table.csv";
  bool rank0_serves = false;
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: mpiexec -n P mpi_fit_catalogue [--catalogue DIR] [--n N] [--size S] [--starts K]\n"
               "                                      [--work DIR] [--table FILE] [--rank0-serves] [--help]\n"
               "  --catalogue DIR  images.npy and noise.npy (simulated there by rank 0 if missing;\n"
               "                   default mpi_catalogue)\n"
               "  --n N            lenses to simulate when the catalogue is missing (default 24)\n"
               "  --size S         their side in pixels, 0.1\"/pixel (default 32)\n"
               "  --starts K       L-BFGS starts per lens (default 4)\n"
               "  --work DIR       per-lens results, the restart's done-list (default mpi_catalogue/fits)\n"
               "  --table FILE     the results table (default mpi_catalogue/table.csv)\n"
               "  --rank0-serves   rank 0 only hands out lenses (TCP-only networks; see fit_catalogue.hpp)\n"
               "threads per rank: OMP_NUM_THREADS.  Re-running fits only the lenses without a result.\n");
}
}  // namespace

// Declared in ../common/cli.hpp.
[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "mpi_fit_catalogue: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

namespace {
using S = double;
using Mem = Kokkos::HostSpace;
using Space = Kokkos::DefaultHostExecutionSpace;
using Psf = lensing::GaussianFilter<S, Mem>;
using Model = lensing::LensModel<lensing::SIE<S>, lensing::Sersic<S>, lensing::NoLight<S>>;
using Obs = lensing::Observation<S, Mem, Psf>;
using Like = lensing::GaussianLikelihood<Model, Mem, Psf>;
using P = lensing::Prior<double>;
constexpr double pixel = 0.1, fwhm = 0.15;

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
    } else if (a == "--catalogue") {
      o.catalogue = value();
    } else if (a == "--n") {
      o.n = parse_integer(a, value(), 1, 10000000);
    } else if (a == "--size") {
      o.size = int(parse_integer(a, value(), 8, 512));
    } else if (a == "--starts") {
      o.starts = int(parse_integer(a, value(), 1, 1000));
    } else if (a == "--work") {
      o.work = value();
    } else if (a == "--table") {
      o.table = value();
    } else if (a == "--rank0-serves") {
      o.rank0_serves = true;
    } else if (a.rfind("--kokkos", 0) == 0) {
      // Kokkos' own arguments (ScopeGuard reads them).
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  if (o.catalogue.empty() || o.work.empty() || o.table.empty()) bad("empty path");
  return o;
}

Obs observation(int n) { return Obs(lensing::PixelGrid<S>::square(n, S(pixel), 2), Psf(fwhm, pixel, n, n)); }

// A synthetic catalogue: lens i's parameters and noise from a fixed formula
// (a spread of Einstein radii, ellipticities and signal-to-noise ratios).
void simulate_catalogue(Options const& o) {
  Space space;
  Obs const obs = observation(o.size);
  lensing::View2D<S, Mem> img("img", o.size, o.size);
  std::vector<double> images, sigma;
  for (long i = 0; i < o.n; ++i) {
    double const u = std::fmod(0.618034 * double(i), 1.0), v = std::fmod(0.414214 * double(i), 1.0);
    std::vector<S> const t = {
        0.7 + 0.6 * u, 0.2 * (v - 0.5), 0.15 * (u - 0.5), 0.0, 0.0, 10.0 + 20.0 * v, 0.15 + 0.15 * u,
        1.5,           0.2 * (u - 0.5), 0.2 * (v - 0.5)};
    obs.render(space, Model::unpack(t.data()), img);
    space.fence();
    double const s = 0.1 + 0.3 * v;
    for (int iy = 0; iy < o.size; ++iy)
      for (int ix = 0; ix < o.size; ++ix)
        images.push_back(img(iy, ix) + s * std::sin(12.9898 * ix + 78.233 * iy + 3.7 * double(i)) * 1.7);
    sigma.push_back(s);
  }
  if (o.n > 5) images[5 * std::size_t(o.size) * o.size + 3] = std::numeric_limits<double>::quiet_NaN();
  std::filesystem::create_directories(o.catalogue);
  lensing::io::write_npy(o.catalogue + "/images.npy", images.data(),
                         {std::size_t(o.n), std::size_t(o.size), std::size_t(o.size)});
  lensing::io::write_npy(o.catalogue + "/noise.npy", sigma.data(), {std::size_t(o.n)});
}

int run(Options const& o) {
  lensing::mpi::Communicator world;
  if (world.rank() == 0 && !std::filesystem::exists(o.catalogue + "/images.npy")) simulate_catalogue(o);
  world.barrier();
  auto const cat = lensing::mpi::read_lens_catalogue_npy(o.catalogue + "/images.npy", o.catalogue + "/noise.npy");
  if (cat.ny != cat.nx) throw std::runtime_error("the cutouts must be square");
  Obs const obs = observation(int(cat.ny));
  Space space;
  auto const fit = [&](std::size_t i) -> std::vector<double> {
    int const n = int(cat.ny);
    lensing::View2D<S, Mem> data("data", n, n), noise("noise", n, n), mask("mask", n, n);
    for (int iy = 0; iy < n; ++iy)
      for (int ix = 0; ix < n; ++ix) {
        data(iy, ix) = cat.image(i)[iy * n + ix];
        noise(iy, ix) = cat.noise_map(i)[iy * n + ix];
        mask(iy, ix) = 1;
      }
    lensing::ParameterTable<double, Mem> table;
    table.add("lens0.theta_E", P::uniform(0.4, 2.0))
        .add("lens0.e1", P::truncated_normal(0, 0.2, -0.5, 0.5))
        .add("lens0.e2", P::truncated_normal(0, 0.2, -0.5, 0.5))
        .add("lens0.center_x", P::fixed(0))
        .add("lens0.center_y", P::fixed(0))
        .add("source0.amp", P::log_uniform(1, 100))
        .add("source0.R_sersic", P::log_uniform(0.05, 0.6))
        .add("source0.n_sersic", P::fixed(1.5))
        .add("source0.center_x", P::normal(0, 0.3))
        .add("source0.center_y", P::normal(0, 0.3));
    lensing::Posterior<Like> const post(Like(obs, data, noise, mask), table);  // refuses non-finite data
    lensing::MapOptions mo;
    mo.scales = post.start_scales();
    auto const map = lensing::find_map(space, post, post.draw_prior_starts(o.starts, 1000 + i), mo);
    auto const v = post.constrain(map.q);
    return {v[0], v[1], v[2], v[5], v[6], std::sqrt(map.covariance[0]), map.log_density, double(map.hessian_ok)};
  };
  lensing::mpi::CatalogueFitOptions opt;
  opt.work_dir = o.work;
  opt.rank0_works = !o.rank0_serves;
  opt.configuration = {{"catalogue", o.catalogue}, {"starts", std::to_string(o.starts)}};
  if (world.rank() == 0) {
    std::printf("mpi_fit_catalogue: %zu lenses of %zux%zu on %d rank(s) x %d thread(s), MAP (%d starts) + Laplace\n",
                cat.n, cat.ny, cat.nx, world.size(), Space().concurrency(), o.starts);
    std::fflush(stdout);
  }
  std::filesystem::path const tp(o.table);
  if (world.rank() == 0 && tp.has_parent_path()) std::filesystem::create_directories(tp.parent_path());
  auto const sum = lensing::mpi::fit_catalogue(
      world, cat.n, {"theta_E", "e1", "e2", "source_amp", "source_R", "sd_q_theta_E", "log_p", "hessian_ok"}, fit,
      o.table, opt);
  char line[160];
  std::snprintf(line, sizeof line, "  rank %d: %zu lens(es), %.3f s fitting (%.3f s per lens)\n", world.rank(),
                sum.rank_fitted, sum.rank_fit_seconds,
                sum.rank_fitted > 0 ? sum.rank_fit_seconds / double(sum.rank_fitted) : 0.0);
  auto const lines = world.gather(line);
  if (world.rank() == 0) {
    for (auto const& l : lines)
      std::fputs(l.c_str(), stdout);
    std::printf("total: %zu fitted in %.3f s (%.2f lenses/s), %zu found done, %zu failed; table %s\n", sum.fitted,
                sum.seconds, sum.seconds > 0 ? double(sum.fitted) / sum.seconds : 0.0, sum.found, sum.failed,
                sum.table.c_str());
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  lensing::mpi::Environment mpi(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    return run(o);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "mpi_fit_catalogue: error: %s\n", e.what());
    return 1;
  }
}
