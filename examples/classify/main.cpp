// Run a trained lens finder (train_finder) over a stack of cutouts and
// write a table of scores.
//
//   classify --weights W --meta M --in STACK.npy [--out TABLE.csv] [--batch B]
//            [--check TRUTH.csv]
//
// STACK.npy: (N, 3, 45, 45) float32 or float64 sky-subtracted g, r, i rates
// [e-/s per pixel] at 0.2"/pixel (LSST-like, as train_finder's stack.npy).
// The table has one row per cutout: index, logit, score (the sigmoid of the
// logit: the network's probability of a lens) and candidate (1 when the
// score exceeds the threshold at 99 % rejection of the held-out non-lenses
// stored in the meta file).  --check compares the scores with the "score"
// column of a table (train_finder's stack_truth.csv) and fails above 1e-4.
// Prints the cutouts/s of the network alone and including I/O.

#include "../train_finder/finder.hpp"

#include <lensing/io/npy.hpp>
#include <lensing/nn/serialize.hpp>

#include "../common/cli.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string weights, meta, in, out = "scores.csv", check;
  int batch = 64;
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: classify --weights W --meta M --in STACK.npy [--out TABLE.csv] [--batch B] [--check TRUTH.csv]\n"
               "  --weights W      trained weights (train_finder's finder.weights)\n"
               "  --meta M         its sidecar (finder.meta: architecture, stretch, threshold)\n"
               "  --in STACK.npy   cutouts (N, 3, 45, 45), g r i, e-/s per pixel, float32 or float64\n"
               "  --out TABLE.csv  output table (default scores.csv)\n"
               "  --batch B        cutouts per forward pass (default 64)\n"
               "  --check T.csv    compare the scores with T's score column (max difference 1e-4)\n"
               "threads: set OMP_NUM_THREADS.\n");
}

}  // namespace

// Declared in ../common/cli.hpp.
[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "classify: %s\n", msg.c_str());
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
    } else if (a == "--weights") {
      o.weights = value();
    } else if (a == "--meta") {
      o.meta = value();
    } else if (a == "--in") {
      o.in = value();
    } else if (a == "--out") {
      o.out = value();
    } else if (a == "--check") {
      o.check = value();
    } else if (a == "--batch") {
      o.batch = int(parse_integer(a, value(), 1, 65536));
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  if (o.weights.empty()) bad("--weights is required");
  if (o.meta.empty()) bad("--meta is required");
  if (o.in.empty()) bad("--in is required");
  if (o.out.empty()) bad("--out needs a non-empty file name");
  return o;
}

using namespace finder;
using Clock = std::chrono::steady_clock;

template <class T>
std::vector<float> read_stack(std::string const& path, std::size_t& n) {
  auto const a = lensing::io::read_npy<T>(path);
  auto const& s = a.shape;
  bool const ok = s.size() == 4 && s[1] == std::size_t(num_bands) && s[2] == std::size_t(image_size) &&
                  s[3] == std::size_t(image_size) && s[0] > 0;
  if (!ok) throw std::invalid_argument("'" + path + "' must hold (N, 3, 45, 45) cutouts, N >= 1");
  n = s[0];
  std::vector<float> out(a.data.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = float(a.data[i]);
  return out;
}

std::vector<double> read_scores(std::string const& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read '" + path + "'");
  std::string line;
  std::getline(f, line);
  std::vector<std::string> head;
  {
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ','))
      head.push_back(c);
  }
  auto const col = std::find(head.begin(), head.end(), "score") - head.begin();
  if (col == long(head.size())) throw std::runtime_error("'" + path + "' has no score column");
  std::vector<double> v;
  while (std::getline(f, line)) {
    std::stringstream ss(line);
    std::string c;
    for (long k = 0; k <= col && std::getline(ss, c, ','); ++k)
      if (k == col) v.push_back(std::strtod(c.c_str(), nullptr));
  }
  return v;
}

template <class Net>
int run(Options const& o, Net net, Meta const& meta) {
  Space const space;
  nn::load_weights(net, o.weights);
  net.set_training(false);
  std::size_t n = 0;
  std::vector<float> stack;
  auto const t_all = Clock::now();
  {
    // The dtype decides the reader: float32 or float64 .npy.
    std::ifstream f(o.in, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read '" + o.in + "'");
    std::string head(128, '\0');
    f.read(&head[0], 128);
    stack = head.find("<f8") != std::string::npos ? read_stack<double>(o.in, n) : read_stack<float>(o.in, n);
  }
  int const B = o.batch;
  long const per = long(num_bands) * image_size * image_size;
  nn::Tensor<Scalar, Mem> x("x", B, num_bands, image_size, image_size);
  auto hx = Kokkos::create_mirror_view(x);
  std::ofstream f(o.out);
  if (!f) throw std::runtime_error("cannot open '" + o.out + "' for writing");
  f.precision(9);
  f << "index,logit,score,candidate\n";
  std::vector<double> scores;
  double net_seconds = 0;
  long candidates = 0;
  for (std::size_t first = 0; first < n; first += std::size_t(B)) {
    std::size_t const m = std::min<std::size_t>(std::size_t(B), n - first);
    // The last partial batch is padded with zeros (their rows are not written).
    for (long i = 0; i < long(B) * per; ++i)
      hx.data()[i] = std::size_t(i / per) < m ? stack[first * std::size_t(per) + std::size_t(i)] : Scalar(0);
    auto const t0 = Clock::now();
    Kokkos::deep_copy(x, hx);
    stretch(space, x, meta.scale);
    auto const out = net.forward(space, x);
    auto const ho = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
    net_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    for (std::size_t i = 0; i < m; ++i) {
      double const logit = ho.data()[i];
      double const score = 1.0 / (1.0 + std::exp(-logit));
      bool const cand = std::isfinite(meta.threshold99) && score > meta.threshold99;
      candidates += cand;
      scores.push_back(score);
      f << first + i << "," << logit << "," << score << "," << int(cand) << "\n";
    }
  }
  f.close();
  if (!f) throw std::runtime_error("writing '" + o.out + "' failed");
  double const all = std::chrono::duration<double>(Clock::now() - t_all).count();
  std::printf(
      "classify: %zu cutouts -> %s (%ld candidates above the 99 %%-rejection threshold %.4g); network %.0f "
      "cutouts/s (%s, %d thread(s), batch %d, %s ResNet width %d), %.0f cutouts/s including I/O\n",
      n, o.out.c_str(), candidates, meta.threshold99, double(n) / net_seconds, Space::name(), Space().concurrency(), B,
      meta.arch.c_str(), meta.width, double(n) / all);
  if (!o.check.empty()) {
    auto const ref = read_scores(o.check);
    if (ref.size() != scores.size())
      throw std::runtime_error("'" + o.check + "' has " + std::to_string(ref.size()) + " scores, the stack " +
                               std::to_string(scores.size()));
    double worst = 0;
    for (std::size_t i = 0; i < ref.size(); ++i)
      worst = std::max(worst, std::fabs(ref[i] - scores[i]));
    bool const ok = worst <= 1e-4;
    std::printf("check against %s: largest score difference %.2e (tolerance 1e-4): %s\n", o.check.c_str(), worst,
                ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    Meta const meta = Meta::read(o.meta);
    if (meta.arch == "deeplens") return run(o, make_deeplens<Scalar, Mem>(meta.width), meta);
    return run(o, make_small<Scalar, Mem>(meta.width), meta);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "classify: error: %s\n", e.what());
    return 1;
  }
}
