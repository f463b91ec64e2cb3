// Run the trained lens-parameter regressor (examples/train_regressor) over a
// stack of 64 x 64 cutouts in an .npy file and write a CSV table of the
// predicted parameters with their uncertainties; prints images/s.
//
//   estimate --weights FILE --scales FILE --in STACK.npy [--out TABLE.csv] [--batch B] [--mc T]
//            [--calibration FILE | --no-calibration]
//
// STACK.npy: (N, 64, 64) or (N, 1, 64, 64), float32 or float64, the raw
// images of the HST-like preset (0.05"/pixel, counts as the simulator makes
// them; the image scale of the .scales file is applied here).  The table has
// one row per image: index, then per parameter (theta_E, e1, e2, center_x,
// center_y, gamma1, gamma2) the predicted mean and standard deviation
// (aleatoric: the predicted full covariance's diagonal; with --mc T, the
// total of T MC-dropout passes: mean of the covariances + covariance of the
// means), and the 21 correlation coefficients are left out for brevity.
// Calibration: the standard deviations are multiplied by the per-parameter
// factors s_k of the calibration file (variance scales s_k^2 fitted by
// train_regressor on a separate calibration stream; the full covariance
// becomes D C D, D = diag(s_k)): the 'aleatoric' line without --mc, the 'mc'
// line with it (fitted for the pass count it names).  By default the file is
// calibration.txt beside the weights, used when it exists; --calibration FILE
// names another (it must exist), --no-calibration gives the raw sds.
// Defaults: batch 64, no MC dropout, table estimates.csv.  Threads:
// OMP_NUM_THREADS.
#include <lensing/io/npy.hpp>
#include <lensing/nn/loss_gaussian_full.hpp>
#include <lensing/nn/mc_predict.hpp>
#include <lensing/nn/serialize.hpp>

#include "../common/cli.hpp"
#include "../train_regressor/regressor.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string weights, scales, in, out = "estimates.csv";
  int batch = 64;
  int mc = 0;
  std::string calibration;  // empty: calibration.txt beside the weights, if any
  bool no_calibration = false;
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: estimate --weights FILE --scales FILE --in STACK.npy [--out TABLE.csv] [--batch B] [--mc T]\n"
               "                [--calibration FILE | --no-calibration]\n"
               "  --weights FILE   regressor.weights written by train_regressor\n"
               "  --scales FILE    regressor.scales written beside it\n"
               "  --in STACK.npy   (N, 64, 64) or (N, 1, 64, 64) raw HST-like cutouts, float32/float64\n"
               "  --out TABLE.csv  output table (default estimates.csv)\n"
               "  --batch B        images per forward pass (default 64)\n"
               "  --mc T           MC-dropout passes for the total uncertainty (default 0: aleatoric only)\n"
               "  --calibration FILE  variance scales (default: calibration.txt beside the weights, if it exists)\n"
               "  --no-calibration    raw predicted sds\n"
               "threads: set OMP_NUM_THREADS.\n");
}

}  // namespace

[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "estimate: %s\n", msg.c_str());
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
    } else if (a == "--scales") {
      o.scales = value();
    } else if (a == "--in") {
      o.in = value();
    } else if (a == "--out") {
      o.out = value();
    } else if (a == "--batch") {
      o.batch = int(parse_integer(a, value(), 1, 4096));
    } else if (a == "--mc") {
      o.mc = int(parse_integer(a, value(), 0, 10000));
    } else if (a == "--calibration") {
      o.calibration = value();
      if (o.calibration.empty()) bad("--calibration needs a non-empty file name");
    } else if (a == "--no-calibration") {
      o.no_calibration = true;
    } else {
      bad("unknown argument '" + a + "'");
    }
  }
  if (o.weights.empty()) bad("--weights is required");
  if (o.scales.empty()) bad("--scales is required");
  if (o.in.empty()) bad("--in is required");
  if (o.out.empty()) bad("--out needs a non-empty file name");
  if (o.no_calibration && !o.calibration.empty()) bad("--calibration and --no-calibration exclude each other");
  return o;
}

using namespace regressor;
using Clock = std::chrono::steady_clock;

template <class T>
std::vector<float> read_stack(std::string const& path, std::size_t& n) {
  auto const a = lensing::io::read_npy<T>(path);
  auto const& s = a.shape;
  bool const ok = (s.size() == 3 && s[1] == std::size_t(image_size) && s[2] == std::size_t(image_size)) ||
                  (s.size() == 4 && s[1] == 1 && s[2] == std::size_t(image_size) && s[3] == std::size_t(image_size));
  if (!ok || s[0] == 0)
    throw std::invalid_argument("'" + path + "' must hold (N, 64, 64) or (N, 1, 64, 64) images, N >= 1");
  n = s[0];
  std::vector<float> out(a.data.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = float(a.data[i]);
  return out;
}

int run(Options const& o) {
  Space const space;
  Scales const sc = Scales::read(o.scales);
  auto net = make_network(o.batch, sc.dropout, 1);
  nn::load_weights(net, o.weights);
  net.set_training(false);
  // The sd factors s_k (1: uncalibrated).
  std::vector<double> factor(std::size_t(num_params), 1.0);
  std::string cal_path = o.calibration;
  if (cal_path.empty() && !o.no_calibration) {
    auto const slash = o.weights.rfind('/');
    cal_path = (slash == std::string::npos ? std::string() : o.weights.substr(0, slash + 1)) + "calibration.txt";
    if (!std::ifstream(cal_path)) cal_path.clear();
  }
  if (!cal_path.empty()) {
    Calibration const cal = Calibration::read(cal_path);
    if (o.mc > 0 && cal.total.empty()) {
      // A named file must fit the request; the default one is skipped.
      if (!o.calibration.empty())
        throw std::runtime_error("'" + cal_path + "' has no 'mc' scales for --mc (use --no-calibration)");
      std::printf("estimate: %s has no 'mc' scales: raw MC-dropout sds\n", cal_path.c_str());
      cal_path.clear();
    }
  }
  if (!cal_path.empty()) {
    Calibration const cal = Calibration::read(cal_path);
    auto const& s2 = o.mc > 0 ? cal.total : cal.aleatoric;
    for (std::size_t k = 0; k < factor.size(); ++k)
      factor[k] = std::sqrt(s2[k]);
    std::printf("estimate: %s sds calibrated by %s", o.mc > 0 ? "MC-dropout total" : "aleatoric", cal_path.c_str());
    if (o.mc > 0 && o.mc != cal.mc_passes) std::printf(" (scales fitted with %d MC passes)", cal.mc_passes);
    std::printf("\n");
  }
  std::size_t n = 0;
  std::vector<float> stack;
  {
    // The dtype decides the reader: float32 or float64 .npy.
    std::ifstream f(o.in, std::ios::binary);
    std::string head(128, '\0');
    f.read(&head[0], 128);
    stack = head.find("<f8") != std::string::npos ? read_stack<double>(o.in, n) : read_stack<float>(o.in, n);
  }
  int const B = o.batch, D = num_params;
  long const per = long(image_size) * image_size;
  nn::Tensor<Scalar, Mem> x("x", B, 1, image_size, image_size);
  auto hx = Kokkos::create_mirror_view(x);
  lensing::View2D<double, Kokkos::HostSpace> mean("mean", B, D);
  lensing::View3D<double, Kokkos::HostSpace> cov("cov", B, D, D);
  std::ofstream f(o.out);
  if (!f) throw std::runtime_error("cannot open '" + o.out + "' for writing");
  f.precision(7);
  f << "index";
  for (auto const& nm : short_names())
    f << "," << nm << "," << nm << "_sd";
  f << "\n";
  double const inv = 1.0 / sc.image_scale;
  double net_seconds = 0;
  auto const t_all = Clock::now();
  for (std::size_t first = 0; first < n; first += std::size_t(B)) {
    std::size_t const m = std::min<std::size_t>(std::size_t(B), n - first);
    // The last partial batch is padded with zeros (their rows are not written).
    for (long i = 0; i < long(B) * per; ++i)
      hx.data()[i] =
          std::size_t(i / per) < m ? Scalar(double(stack[first * std::size_t(per) + std::size_t(i)]) * inv) : Scalar(0);
    auto const t0 = Clock::now();
    Kokkos::deep_copy(x, hx);
    auto const out = net.forward(space, x);
    space.fence();
    net_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    lensing::nn::gaussian_full_unpack(out, mean, cov);
    std::vector<double> sd(std::size_t(B * D));
    for (int i = 0; i < B; ++i)
      for (int j = 0; j < D; ++j)
        sd[std::size_t(i * D + j)] = std::sqrt(cov(i, j, j));
    if (o.mc > 0) {
      // MC dropout (nn/mc_predict.hpp): mean of the T passes' means, total
      // covariance = mean of their covariances + covariance of their means.
      auto const pred = nn::mc_predict_gaussian(space, net, x, nn::GaussianOutput::full, o.mc, 1 + first);
      auto const hm = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), pred.mean);
      auto const ht = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), pred.total);
      for (int i = 0; i < B; ++i)
        for (int j = 0; j < D; ++j) {
          mean(i, j) = hm(i, j);
          sd[std::size_t(i * D + j)] = std::sqrt(ht(i, j, j));
        }
    }
    for (std::size_t i = 0; i < m; ++i) {
      f << first + i;
      for (int j = 0; j < D; ++j)
        f << "," << sc.mean[std::size_t(j)] + sc.sd[std::size_t(j)] * mean(long(i), j) << ","
          << factor[std::size_t(j)] * sc.sd[std::size_t(j)] * sd[i * std::size_t(D) + std::size_t(j)];
      f << "\n";
    }
  }
  f.close();
  if (!f) throw std::runtime_error("writing '" + o.out + "' failed");
  double const all = std::chrono::duration<double>(Clock::now() - t_all).count();
  std::printf("estimate: %zu images -> %s; network %.0f images/s (%s, batch %d%s), %.0f images/s including I/O\n", n,
              o.out.c_str(), double(n) / net_seconds, Space::name(), B,
              o.mc > 0 ? ", single pass timed; MC passes extra" : "", double(n) / all);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    return run(o);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "estimate: %s\n", e.what());
    return 1;
  }
}
