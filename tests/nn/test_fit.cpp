// nn::fit over DataSources and the loss objects: the loss falls on a small
// regression served by an ArraySource; a run interrupted at a checkpoint and
// resumed in fresh objects ends with bit-identical weights (Dropout masks,
// BatchNorm statistics, clipping, a stateful schedule and early-stopping
// bookkeeping included); a failed checkpoint write leaves the previous
// checkpoint valid; corrupted or foreign checkpoints and sources that do not
// fit the network or the loss are refused with a clear message.
#include <lensing/nn/activation.hpp>
#include <lensing/nn/batchnorm.hpp>
#include <lensing/nn/checkpoint.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/dropout.hpp>
#include <lensing/nn/fit.hpp>
#include <lensing/nn/losses.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/simulate/data_source.hpp>

#include <lensing_test.hpp>

#include <unistd.h>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;
namespace sim = lensing::simulate;

namespace {
template <class V>
bool same_bits(V const& a, V const& b) {
  auto ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
  auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
  return ha.size() == hb.size() &&
         std::memcmp(ha.data(), hb.data(), ha.size() * sizeof(typename V::non_const_value_type)) == 0;
}

// y0 = 0.8 sin(1.5 x0) + 0.3 x1² − 0.4 (and y1 = x0 x1 / 2 when k = 2), x uniform in [−2, 2]².
template <class S>
void make_regression(int n, unsigned seed, int k, lensing::View4D<S, Kokkos::HostSpace> const& x,
                     lensing::View2D<S, Kokkos::HostSpace> const& y) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  for (int i = 0; i < n; ++i) {
    double const a = u(rng), b = u(rng);
    x(i, 0, 0, 0) = S(a);
    x(i, 1, 0, 0) = S(b);
    y(i, 0) = S(0.8 * std::sin(1.5 * a) + 0.3 * b * b - 0.4);
    if (k > 1) y(i, 1) = S(0.5 * a * b);
  }
}

template <class S, class Mem>
auto make_mlp(int batch, int outputs) {
  return nn::make_sequential(nn::Shape4{batch, 2, 1, 1}, nn::Dense<S, Mem>(2, 32), nn::Tanh<S, Mem>(),
                             nn::Dense<S, Mem>(32, outputs));
}
// BatchNorm (state), Dropout (mask counter) and two outputs for a Gaussian NLL.
template <class S, class Mem>
auto make_stochastic_mlp(int batch) {
  return nn::make_sequential(nn::Shape4{batch, 2, 1, 1}, nn::Dense<S, Mem>(2, 16), nn::BatchNorm<S, Mem>(16),
                             nn::ReLU<S, Mem>(), nn::Dropout<S, Mem>(0.2, 5), nn::Dense<S, Mem>(16, 2));
}

std::string temp_path(std::string const& name) {
  return (std::filesystem::temp_directory_path() / ("lensing_nn_fit_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string file_bytes(std::string const& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Mean validation loss of the network in inference mode (as fit() computes it).
template <class Space, class Net, class Source, class Loss>
double mean_loss(Space const& space, Net& net, Source& src, Loss const& loss) {
  net.set_training(false);
  src.start_epoch(0);
  double s = 0;
  for (long b = 0; b < src.batches_per_epoch(); ++b) {
    auto const batch = src.next(space);
    s += loss.value(space, net.forward(space, batch.images), batch.labels);
  }
  net.set_training(true);
  return s / double(src.batches_per_epoch());
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("nn: fit() on an ArraySource: the loss falls (MSE and Gaussian NLL)", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const batch = 32, n = 512, nval = 128;
  lensing::View4D<S, Kokkos::HostSpace> x("x", n, 2, 1, 1), xv("xv", nval, 2, 1, 1);
  lensing::View2D<S, Kokkos::HostSpace> y("y", n, 1), yv("yv", nval, 1);
  make_regression(n, 1, 1, x, y);
  make_regression(nval, 2, 1, xv, yv);
  sim::ArraySource<S, Mem> train(x, y, {batch, true, 7}), val(xv, yv, {batch, false, 0});
  {
    // MSE: the target's variance is ~0.3; a fitted MLP reaches a few 1e-3.
    auto net = make_mlp<S, Mem>(batch, 1);
    net.initialize(3);
    nn::Adam<S, Mem> opt(net.num_params(), 0.01);
    double const before = mean_loss(space, net, val, nn::MSELoss());
    std::ostringstream log;
    nn::FitOptions o;
    o.epochs = 25;
    o.log = &log;
    o.log_every = 100;
    o.clip_grad_norm = 10;
    auto const h = nn::fit(space, net, opt, nn::MSELoss(), train, val, o);
    double const after = mean_loss(space, net, val, nn::MSELoss());
    MESSAGE(std::string(Space::name()) << " MSE: val loss " << before << " -> " << after);
    CHECK(h.epochs_run() == 25);
    CHECK(h.steps == 25 * (n / batch));
    CHECK(h.images == 25L * (n / batch) * batch);
    CHECK(opt.steps() == h.steps);
    CHECK(after == doctest::Approx(h.val_loss.back()).epsilon(1e-6));
    CHECK(after < 0.05 * before);
    CHECK(h.loss.back() < 0.1 * h.loss.front());
    // Progress lines: every 100 steps and per epoch.
    std::string const text = log.str();
    CHECK(text.find("step 100/400") != std::string::npos);
    CHECK(text.find("images/s") != std::string::npos);
    CHECK(text.find("ETA") != std::string::npos);
    CHECK(text.find("epoch 25/25") != std::string::npos);
  }
  {
    // Diagonal Gaussian NLL, no validation source: the monitored training loss falls.
    auto net = make_mlp<S, Mem>(batch, 2);
    net.initialize(4);
    nn::Adam<S, Mem> opt(net.num_params(), 0.01);
    nn::FitOptions o;
    o.epochs = 15;
    o.log = nullptr;
    auto const h = nn::fit(space, net, opt, nn::GaussianNLLLoss(), train, o);
    MESSAGE(std::string(Space::name()) << " Gaussian NLL: train loss " << h.loss.front() << " -> " << h.loss.back());
    CHECK(h.val_loss.empty());
    // It starts near +1.1 (unit variances) and ends near -1.1 (sigma ~ 0.1, 0.5 log(2 pi e 0.01) = -0.9, minus
    // a little as sigma follows the local residuals): a fall of 1.5 needs the fit.
    CHECK(h.loss.back() < h.loss.front() - 1.5);
  }
}

LENSING_TEST_CASE_TEMPLATE("nn: loss objects call the loss functions", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const n = 4, d = 2;
  nn::Tensor<S, Mem> pred("pred", n, nn::MDNLoss(2).num_outputs(d), 1, 1), g1("g1", n, pred.extent(1), 1, 1),
      g2("g2", n, pred.extent(1), 1, 1);
  lensing::View2D<S, Mem> t("t", n, d);
  Kokkos::deep_copy(t, S(0.3));
  Kokkos::deep_copy(pred, S(0.1));
  static_assert(nn::is_loss_v<nn::MSELoss, Space, S, Mem> && nn::is_loss_v<nn::GaussianFullNLLLoss, Space, S, Mem> &&
                nn::is_loss_v<nn::MDNLoss, Space, S, Mem>);
  CHECK(nn::MSELoss::num_outputs(3) == 3);
  CHECK(nn::GaussianNLLLoss::num_outputs(3) == 6);
  CHECK(nn::GaussianFullNLLLoss::num_outputs(7) == 35);
  CHECK(nn::BCEWithLogitsLoss::num_outputs(3) == 3);
  CHECK(nn::MDNLoss(3).num_outputs(2) == 15);
  double const a = nn::MDNLoss(2)(space, pred, t, g1);
  double const b = double(nn::mdn_nll_loss(space, pred, t, 2, g2));
  CHECK(a == b);
  CHECK(same_bits(g1, g2));
  CHECK(nn::MDNLoss(2).value(space, pred, t) == b);
  CHECK_THROWS_AS(nn::MDNLoss(0), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("nn: fit() resumed from a checkpoint ends bit-identical to an uninterrupted run", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const batch = 16, n = 256, nval = 64, epochs = 6;
  lensing::View4D<S, Kokkos::HostSpace> x("x", n, 2, 1, 1), xv("xv", nval, 2, 1, 1);
  lensing::View2D<S, Kokkos::HostSpace> y("y", n, 1), yv("yv", nval, 1);
  make_regression(n, 5, 1, x, y);
  make_regression(nval, 6, 1, xv, yv);
  std::string const path = temp_path(std::string(Space::name()) + (sizeof(S) == 4 ? "_f" : "_d") + ".ckpt");
  auto options = [&](long total) {
    nn::FitOptions o;
    o.epochs = total;
    o.log = nullptr;
    o.patience = 100;  // early stopping on (best weights in the checkpoint) but never triggered
    o.restore_best = false;
    o.clip_grad_norm = 0.5;
    o.schedule = nn::LRSchedule::reduce_on_plateau(0.02, 0.5, 0, 0.2);  // halves often
    return o;
  };
  auto const fresh_sources = [&] {
    return std::make_pair(sim::ArraySource<S, Mem>(x, y, {batch, true, 11}),
                          sim::ArraySource<S, Mem>(xv, yv, {batch, false, 0}));
  };
  // Uninterrupted.
  auto full = make_stochastic_mlp<S, Mem>(batch);
  full.initialize(9);
  nn::Adam<S, Mem> opt_full(full.num_params());
  auto sf = fresh_sources();
  auto const hf = nn::fit(space, full, opt_full, nn::GaussianNLLLoss(), sf.first, sf.second, options(epochs));
  // Interrupted after 3 epochs (the last epoch of a call writes the checkpoint).
  {
    auto first = make_stochastic_mlp<S, Mem>(batch);
    first.initialize(9);
    nn::Adam<S, Mem> opt_first(first.num_params());
    auto o = options(3);
    o.checkpoint_path = path;
    auto s1 = fresh_sources();
    nn::fit(space, first, opt_first, nn::GaussianNLLLoss(), s1.first, s1.second, o);
    CHECK(!std::filesystem::exists(path + ".tmp"));
  }
  // Resumed in a fresh network (other weights), optimizer and sources.
  auto resumed = make_stochastic_mlp<S, Mem>(batch);
  resumed.initialize(1234);
  nn::Adam<S, Mem> opt_resumed(resumed.num_params());
  auto o = options(epochs);
  o.resume_from = path;
  auto sr = fresh_sources();
  // An SGD has one state vector, the checkpoint two (Adam's m and v).
  nn::SGD<S, Mem> wrong_opt(resumed.num_params(), 0.1);
  CHECK(lt::error_message([&] {
          nn::fit(space, resumed, wrong_opt, nn::GaussianNLLLoss(), sr.first, sr.second, o);
        }).find("optimizer state vectors") != std::string::npos);
  auto const hr = nn::fit(space, resumed, opt_resumed, nn::GaussianNLLLoss(), sr.first, sr.second, o);
  CHECK(hr.first_epoch == 3);
  REQUIRE(hr.epochs_run() == 3);
  CHECK(same_bits(resumed.parameters(), full.parameters()));
  CHECK(same_bits(resumed.state(), full.state()));  // BatchNorm running statistics
  CHECK(opt_resumed.steps() == opt_full.steps());
  CHECK(resumed.template layer<3>().counter() == full.template layer<3>().counter());
  for (int e = 0; e < 3; ++e) {
    CHECK(hr.loss[e] == hf.loss[3 + e]);
    CHECK(hr.val_loss[e] == hf.val_loss[3 + e]);
    CHECK(hr.lr[e] == hf.lr[3 + e]);
  }
  CHECK(hr.best_epoch == hf.best_epoch);
  CHECK(hf.lr[5] < hf.lr[0]);  // the schedule's state matters after the resume point
  // Another architecture, and a corrupted file.
  {
    auto other = make_mlp<S, Mem>(batch, 2);
    nn::Adam<S, Mem> opt_other(other.num_params());
    CHECK_THROWS_AS(nn::fit(space, other, opt_other, nn::GaussianNLLLoss(), sr.first, sr.second, o),
                    std::invalid_argument);
    std::string bytes = file_bytes(path);
    bytes[bytes.size() / 2] ^= 1;
    std::string const bad = path + ".bad";
    std::ofstream(bad, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    auto ob = o;
    ob.resume_from = bad;
    CHECK(lt::error_message([&] {
            nn::fit(space, resumed, opt_resumed, nn::GaussianNLLLoss(), sr.first, sr.second, ob);
          }).find("checksum mismatch") != std::string::npos);
    std::filesystem::remove(bad);
  }
  std::filesystem::remove(path);
}

LENSING_TEST_CASE_TEMPLATE("nn: a failed checkpoint write leaves the previous checkpoint valid", Config,
                           lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const batch = 16, n = 64;
  lensing::View4D<S, Kokkos::HostSpace> x("x", n, 2, 1, 1);
  lensing::View2D<S, Kokkos::HostSpace> y("y", n, 1);
  make_regression(n, 8, 1, x, y);
  sim::ArraySource<S, Mem> train(x, y, {batch, true, 1});
  std::string const path = temp_path(std::string(Space::name()) + "_atomic.ckpt");
  auto net = make_mlp<S, Mem>(batch, 1);
  net.initialize(2);
  nn::Adam<S, Mem> opt(net.num_params());
  nn::FitOptions o;
  o.epochs = 2;
  o.log = nullptr;
  o.checkpoint_path = path;
  o.checkpoint_every = 1;
  nn::fit(space, net, opt, nn::MSELoss(), train, o);
  std::string const before = file_bytes(path);
  REQUIRE(!before.empty());
  // The temporary's name is taken by a directory: the write must fail
  // before the rename, naming the temporary, and leave `path` as it was.
  std::filesystem::create_directory(path + ".tmp");
  auto o2 = o;
  o2.epochs = 3;
  o2.resume_from = path;
  std::string const msg = lt::error_message([&] { nn::fit(space, net, opt, nn::MSELoss(), train, o2); });
  MESSAGE(msg);
  CHECK(msg.find("lensing::nn::fit: '" + path + "': cannot create the temporary") == 0);
  CHECK(msg.find("is unchanged") != std::string::npos);
  std::filesystem::remove(path + ".tmp");
  CHECK(file_bytes(path) == before);
  // ... and it still resumes: a fresh network continues at epoch 2.
  auto again = make_mlp<S, Mem>(batch, 1);
  again.initialize(77);
  nn::Adam<S, Mem> opt_again(again.num_params());
  auto o3 = o2;
  o3.checkpoint_path.clear();
  o3.checkpoint_every = 0;
  auto const h = nn::fit(space, again, opt_again, nn::MSELoss(), train, o3);
  CHECK(h.first_epoch == 2);
  CHECK(h.epochs_run() == 1);
  // A truncated checkpoint (what a non-atomic writer could leave) is refused.
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(before.data(), std::streamsize(before.size() / 2));
  CHECK_THROWS_AS(nn::fit(space, again, opt_again, nn::MSELoss(), train, o3), std::runtime_error);
  std::filesystem::remove(path);
}

LENSING_TEST_CASE_TEMPLATE("nn: fit() refuses sources that do not fit the network or the loss", Config,
                           lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const batch = 16, n = 64;
  lensing::View4D<S, Kokkos::HostSpace> x("x", n, 2, 1, 1);
  lensing::View2D<S, Kokkos::HostSpace> y1("y1", n, 1), y2("y2", n, 2);
  make_regression(n, 3, 1, x, y1);
  make_regression(n, 3, 2, x, y2);
  sim::ArraySource<S, Mem> one(x, y1, {batch, true, 1}), two(x, y2, {batch, true, 1}), big(x, y1, {32, true, 1});
  auto net = make_mlp<S, Mem>(batch, 1);
  net.initialize(2);
  nn::Adam<S, Mem> opt(net.num_params());
  nn::FitOptions o;
  o.epochs = 1;
  o.log = nullptr;
  // Two label columns for a network with one output.
  CHECK(lt::error_message([&] { nn::fit(space, net, opt, nn::MSELoss(), two, o); }) ==
        "lensing::nn::fit: the network outputs 1 values per sample; the loss 'mse' needs 2 for the 2 label columns of "
        "the training source");
  // The full-covariance loss needs 1 + 1 outputs for one label.
  CHECK(lt::error_message([&] {
          nn::fit(space, net, opt, nn::GaussianFullNLLLoss(), one, o);
        }).find("the loss 'gaussian_full_nll' needs 2 for the 1 label columns") != std::string::npos);
  // Validation source with other labels.
  CHECK(lt::error_message([&] {
          nn::fit(space, net, opt, nn::MSELoss(), one, two, o);
        }).find("of the validation source") != std::string::npos);
  // Images of 3 features for a network whose first layer takes 2.
  lensing::View4D<S, Kokkos::HostSpace> x3("x3", n, 3, 1, 1);
  sim::ArraySource<S, Mem> three(x3, y1, {batch, true, 1});
  CHECK(lt::error_message([&] {
          nn::fit(space, net, opt, nn::MSELoss(), three, o);
        }).find("lensing::nn::fit: the network cannot take the training source's batches of shape (16, 3, 1, 1): ") ==
        0);
  // Another batch size than the network was prepared for: a Sequential runs at any.
  CHECK_NOTHROW(nn::fit(space, net, opt, nn::MSELoss(), big, one, o));
  // Options.
  auto bad = o;
  bad.checkpoint_every = 1;
  CHECK_THROWS_AS(nn::fit(space, net, opt, nn::MSELoss(), one, bad), std::invalid_argument);
  bad = o;
  bad.clip_grad_norm = -1;
  CHECK_THROWS_AS(nn::fit(space, net, opt, nn::MSELoss(), one, bad), std::invalid_argument);
  CHECK_THROWS_AS(
      [&] {
        auto b2 = o;
        b2.resume_from = temp_path("missing.ckpt");
        nn::fit(space, net, opt, nn::MSELoss(), one, b2);
      }(),
      std::runtime_error);
  // Non-finite labels: the loss diverges, named with its epoch and step.
  lensing::View2D<S, Kokkos::HostSpace> ynan("ynan", n, 1);
  Kokkos::deep_copy(ynan, y1);
  ynan(5, 0) = std::numeric_limits<S>::quiet_NaN();
  sim::ArraySource<S, Mem> nan_source(x, ynan, {batch, false, 1});
  CHECK(lt::error_message([&] {
          nn::fit(space, net, opt, nn::MSELoss(), nan_source, o);
        }).find("the training loss is not finite at epoch 0, step 0") != std::string::npos);
  // No side effect: the network still trains afterwards.
  CHECK_NOTHROW(nn::fit(space, net, opt, nn::MSELoss(), one, o));
}
