// Sharded simulation over MPI ranks (include/lensing/mpi/shard.hpp): every
// rank generates its share of one training set of HST-like strong lenses
// (SIE + shear, Sersic source and lens light, Gaussian PSF, sky + Poisson +
// read noise) into one HDF5 file per shard, and rank 0 writes the master
// file whose /images and /labels are virtual datasets over the shards.  The
// result is the same for any number of ranks (images are a function of
// (seed, index)); running the same command again after an interruption
// completes only the missing shards.  Prints each rank's rate and the total.
//
//   mpiexec -n 4 mpi_simulate [--n N] [--size S] [--shard M] [--seed SEED]
//                             [--out STEM] [--deflate L]
//
// Threads per rank: OMP_NUM_THREADS (OpenMP backend); one GPU per rank with a
// CUDA Kokkos (e.g. --kokkos-num-devices, or CUDA_VISIBLE_DEVICES per rank).
// Defaults: 2048 images of 64x64, shards of 512, seed 2024, deflate 0 (see
// io/hdf5.hpp: deflate costs ~1 ms per 64x64 image), into ./mpi_sim/train.h5.

#include <lensing/model/instrument.hpp>
#include <lensing/mpi/shard.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/lens_presets.hpp>
#include <lensing/simulate/simulator.hpp>

#include <Kokkos_Core.hpp>

#include "../common/cli.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>

namespace {
struct Options {
  long n = 2048;
  int size = 64;
  long shard = 512;
  std::uint64_t seed = 2024;
  std::string out = "mpi_sim/train";
  int deflate = 0;
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: mpiexec -n P mpi_simulate [--n N] [--size S] [--shard M] [--seed SEED] [--out STEM]\n"
               "                                 [--deflate L] [--help]\n"
               "  --n N        images in the set (default 2048)\n"
               "  --size S     image side in pixels, 0.05\"/pixel (default 64)\n"
               "  --shard M    images per shard file (default 512)\n"
               "  --seed SEED  random seed (default 2024)\n"
               "  --out STEM   STEM.h5 (master) and STEM.shardNNNNNN.h5 (default mpi_sim/train)\n"
               "  --deflate L  HDF5 deflate level 0-9 of the shard files (default 0)\n"
               "threads per rank: OMP_NUM_THREADS.  Re-running with the same settings resumes.\n");
}
}  // namespace

// Declared in ../common/cli.hpp.
[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "mpi_simulate: %s\n", msg.c_str());
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
      o.size = int(parse_integer(a, value(), 8, 1024));
    } else if (a == "--shard") {
      o.shard = parse_integer(a, value(), 1, 10000000);
    } else if (a == "--seed") {
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 9000000000000000000L));
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty path");
    } else if (a == "--deflate") {
      o.deflate = int(parse_integer(a, value(), 0, 9));
    } else if (a.rfind("--kokkos", 0) == 0) {
      // Kokkos' own arguments (ScopeGuard reads them).
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  return o;
}

int run(Options const& o) {
  using S = float;
  using Space = Kokkos::DefaultExecutionSpace;
  using Mem = Space::memory_space;
  using Psf = lensing::GaussianFilter<S, Mem>;
  using Sim = lensing::simulate::Simulator<lensing::simulate::GalaxyGalaxyModel<S>, Psf, Mem>;
  lensing::mpi::Communicator world;
  auto const band = lensing::presets::hst_like();
  lensing::simulate::SimulatorOptions so;
  so.seed = o.seed;
  so.batch_capacity = 64;
  Sim const sim(lensing::PixelGrid<S>::square(o.size, S(band.pixel_scale), 2),
                Psf(band.psf_fwhm, band.pixel_scale, o.size, o.size, 5.0, so.batch_capacity), band.detector_config(),
                lensing::simulate::galaxy_galaxy_priors<S, Mem>(), so);
  if (world.rank() == 0) {
    auto const dir = std::filesystem::path(o.out).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir);
    std::printf("mpi_simulate: %ld images of %dx%d on %d rank(s) x %d thread(s) (%s), shards of %ld, seed %llu\n", o.n,
                o.size, o.size, world.size(), Space().concurrency(), Space::name(), o.shard,
                static_cast<unsigned long long>(o.seed));
    std::fflush(stdout);
  }
  world.barrier();
  lensing::mpi::ShardOptions opt;
  opt.shard_size = std::size_t(o.shard);
  opt.writer.deflate_level = o.deflate;
  auto const sum = lensing::mpi::write_sharded_training_set(world, Space(), sim, std::size_t(o.n), o.out, opt);
  // Each rank's line, in rank order.
  char line[256];
  std::snprintf(line, sizeof line,
                "  rank %d: %zu shard(s), %zu images, generate %.3f s (%.0f images/s), write %.3f s\n", world.rank(),
                sum.rank_shards, sum.rank_images, sum.rank_generate_seconds,
                sum.rank_generate_seconds > 0 ? double(sum.rank_images) / sum.rank_generate_seconds : 0.0,
                sum.rank_write_seconds);
  auto const lines = world.gather(line);
  if (world.rank() == 0) {
    for (auto const& l : lines)
      std::fputs(l.c_str(), stdout);
    std::printf("total: %zu of %zu shards written (%zu found on disk), %zu images in %.3f s: %.0f images/s\n",
                sum.shards_written, sum.shards, sum.shards_found, sum.images_generated, sum.seconds,
                sum.seconds > 0 ? double(sum.images_generated) / sum.seconds : 0.0);
    std::printf("master: %s\n", sum.master.c_str());
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
    std::fprintf(stderr, "mpi_simulate: error: %s\n", e.what());
    return 1;
  }
}
