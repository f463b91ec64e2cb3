// lensing's main demo: simulate a survey-like batch of strong-lens images
// (SIE + external shear lenses, procedural source galaxies, lens light,
// Gaussian PSF, sky + Poisson noise, read noise, bias, cosmic rays, hot and
// dead pixels, random masks), write them with their labels, and report the
// throughput.  No input files needed.
//
//   simulate_survey [--n N] [--size S] [--out DIR] [--seed SEED] [--chunk C]
//                   [--supersampling K] [--double] [--no-noise]
//
// Threads: OMP_NUM_THREADS (OpenMP backend).  Defaults: 1000 images of 64x64
// at 0.1"/pixel, supersampling 2, float, into ./lensing_demo_output/.
// Run it again with the same settings to resume (finished chunks are kept).

#include <lensing/simulate/training_set.hpp>

#include <Kokkos_Core.hpp>

#include "../common/cli.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

namespace {

struct Options {
  long n = 1000;
  int size = 64;
  int supersampling = 2;
  int chunk = 256;
  std::string out = "lensing_demo_output";
  std::uint64_t seed = 2024;
  bool use_double = false;
  bool noise = true;
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: simulate_survey [--n N] [--size S] [--out DIR] [--seed SEED] [--chunk C]\n"
               "                       [--supersampling K] [--double] [--no-noise] [--help]\n"
               "  --n N              number of images (default 1000)\n"
               "  --size S           image side in pixels, 0.1\"/pixel (default 64)\n"
               "  --out DIR          output directory (default ./lensing_demo_output)\n"
               "  --seed SEED        random seed, a non-negative integer (default 2024)\n"
               "  --chunk C          images per chunk file (default 256)\n"
               "  --supersampling K  sub-pixels per pixel side (default 2)\n"
               "  --double           simulate in double precision (default float)\n"
               "  --no-noise         noiseless images (lens + source + lens light + PSF only)\n"
               "threads: set OMP_NUM_THREADS.  Re-running with the same settings resumes.\n");
}

}  // namespace

// Declared in ../common/cli.hpp.
[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "simulate_survey: %s\n", msg.c_str());
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
      o.size = int(parse_integer(a, value(), 8, 2048));
    } else if (a == "--out") {
      o.out = value();
      if (o.out.empty()) bad("--out needs a non-empty directory name");
    } else if (a == "--seed") {
      o.seed = std::uint64_t(parse_integer(a, value(), 0, 9000000000000000000L));
    } else if (a == "--chunk") {
      o.chunk = int(parse_integer(a, value(), 1, 65536));
    } else if (a == "--supersampling") {
      o.supersampling = int(parse_integer(a, value(), 1, 16));
    } else if (a == "--double") {
      o.use_double = true;
    } else if (a == "--no-noise") {
      o.noise = false;
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  return o;
}

template <class Scalar>
int run(Options const& o) {
  using Space = Kokkos::DefaultExecutionSpace;
  using Mem = Space::memory_space;
  lensing::simulate::TrainingSetConfig config;
  config.nx = config.ny = o.size;
  config.supersampling = o.supersampling;
  config.seed = o.seed;
  config.chunk_size = int(std::min<long>(o.chunk, o.n));
  config.noise = o.noise;
  auto const table = lensing::simulate::default_training_set_priors<Scalar, Mem>();
  lensing::simulate::TrainingSetGenerator<Scalar, Mem> const generator(config, table);
  std::printf("lensing demo: %ld strong-lens images of %dx%d at %.2f\"/pixel, supersampling %d, %s, %s\n", o.n, o.size,
              o.size, config.pixel_scale, o.supersampling, sizeof(Scalar) == 4 ? "float" : "double",
              o.noise ? "sky + Poisson + read noise, bias, cosmic rays, hot/dead pixels, masks" : "noiseless");
  std::printf("  backend %s, %d thread(s), seed %llu, output %s/\n", Space::name(), Space().concurrency(),
              static_cast<unsigned long long>(o.seed), o.out.c_str());
  std::printf("  labels (%d):", generator.num_labels());
  for (auto const& s : generator.label_names())
    std::printf(" %s", s.c_str());
  std::printf("\n");
  std::fflush(stdout);
  lensing::simulate::TrainingSetWriteOptions options;
  auto const sum = lensing::simulate::write_training_set(Space(), generator, o.n, o.out, options);
  if (sum.generated > 0) {
    std::printf("generated %ld images in %.3f s: %.0f images/s (%.1f us/image; %.2f s with file output)\n",
                sum.generated, sum.generate_seconds, sum.images_per_second, 1e6 / sum.images_per_second,
                sum.total_seconds);
  }
  if (sum.chunks_skipped > 0)
    std::printf("resumed: %d of %d chunks were already on disk\n", sum.chunks_skipped, sum.chunks);
  std::printf("files:\n");
  for (auto const& f : sum.files)
    std::printf("  %s\n", f.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    return o.use_double ? run<double>(o) : run<float>(o);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "simulate_survey: error: %s\n", e.what());
    return 1;
  }
}
