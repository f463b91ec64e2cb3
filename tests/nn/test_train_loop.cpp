// Learning-rate schedules against hand-computed rates, and the training
// loop: a deterministic regression fit to a stated loss, early stopping on a
// constructed case (restoring the best weights), checkpoint/resume giving
// weights bit-identical to an uninterrupted run, and its errors.
#include <lensing/nn/activation.hpp>
#include <lensing/nn/batchnorm.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/loss.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/schedule.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/train.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <unistd.h>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {
template <class V>
bool same_bits(V const& a, V const& b) {
  auto ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
  auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
  return ha.size() == hb.size() &&
         std::memcmp(ha.data(), hb.data(), ha.size() * sizeof(typename V::non_const_value_type)) == 0;
}

// y = 0.8 sin(1.5 x0) + 0.3 x1² − 0.4, x uniform in [−2, 2]².
template <class S>
void make_regression(int n, unsigned seed, nn::Tensor<S, Kokkos::HostSpace> const& x,
                     lensing::View2D<S, Kokkos::HostSpace> const& y) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  for (int i = 0; i < n; ++i) {
    double const a = u(rng), b = u(rng);
    x(i, 0, 0, 0) = S(a);
    x(i, 1, 0, 0) = S(b);
    y(i, 0) = S(0.8 * std::sin(1.5 * a) + 0.3 * b * b - 0.4);
  }
}

template <class S, class Mem>
auto make_mlp(int batch) {
  return nn::make_sequential(nn::Shape4{batch, 2, 1, 1}, nn::Dense<S, Mem>(2, 32), nn::Tanh<S, Mem>(),
                             nn::Dense<S, Mem>(32, 1));
}
template <class S, class Mem>
auto make_bn_mlp(int batch) {
  return nn::make_sequential(nn::Shape4{batch, 2, 1, 1}, nn::Dense<S, Mem>(2, 16), nn::BatchNorm<S, Mem>(16),
                             nn::ReLU<S, Mem>(), nn::Dense<S, Mem>(16, 1));
}

struct Mse {
  template <class Space, class P, class T, class G>
  auto operator()(Space const& space, P const& pred, T const& target, G const& grad) const {
    return nn::mse_loss(space, pred, target, grad);
  }
};

std::string temp_path(std::string const& name) {
  return (std::filesystem::temp_directory_path() / ("lensing_nn_train_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// Mean batch loss over the first ⌊N/B⌋ batches in inference mode (as train() validates).
template <class Space, class Net, class S>
double evaluate(Space const& space, Net& net, nn::Tensor<S, Kokkos::HostSpace> const& x,
                lensing::View2D<S, Kokkos::HostSpace> const& y) {
  using Mem = typename Net::memory_space;
  int const b = net.input_shape().n;
  nn::Tensor<S, Mem> xb("xb", b, 2, 1, 1), none;
  lensing::View2D<S, Mem> yb("yb", b, 1);
  net.set_training(false);
  long const nb = long(x.extent(0)) / b;
  double s = 0;
  for (long k = 0; k < nb; ++k) {
    auto const rows = Kokkos::make_pair(k * b, (k + 1) * b);
    Kokkos::deep_copy(xb, Kokkos::subview(x, rows, Kokkos::ALL, Kokkos::ALL, Kokkos::ALL));
    Kokkos::deep_copy(yb, Kokkos::subview(y, rows, Kokkos::ALL));
    s += double(nn::mse_loss(space, net.forward(space, xb), yb, none));
  }
  net.set_training(true);
  return s / double(nb);
}
}  // namespace

TEST_CASE("nn: learning-rate schedules against hand-computed rates") {
  auto const step = nn::LRSchedule::step(0.1, 2, 0.5);
  std::vector<double> const step_want = {0.1, 0.1, 0.05, 0.05, 0.025};
  for (int e = 0; e < 5; ++e)
    CHECK(step.lr(e) == doctest::Approx(step_want[e]).epsilon(1e-15));
  CHECK(nn::LRSchedule::constant(0.3).lr(7) == 0.3);
  CHECK(nn::LRSchedule::exponential(1.0, 0.5).lr(3) == doctest::Approx(0.125).epsilon(1e-15));
  // Cosine, 10 epochs with 2 of warm-up to 1: 0.5, 1, then ½(1 + cos(π (e − 2)/8)), 0 from epoch 10.
  auto const cosine = nn::LRSchedule::cosine(1.0, 10, 2, 0.0);
  CHECK(cosine.lr(0) == doctest::Approx(0.5).epsilon(1e-15));
  CHECK(cosine.lr(1) == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(cosine.lr(2) == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(cosine.lr(6) == doctest::Approx(0.5).epsilon(1e-15));
  CHECK(cosine.lr(9) == doctest::Approx(0.5 * (1 + std::cos(7 * M_PI / 8))).epsilon(1e-14));
  CHECK(cosine.lr(12) == doctest::Approx(0.0).scale(1).epsilon(1e-15));
  CHECK(nn::LRSchedule::cosine(1.0, 4, 0, 0.2).lr(2) == doctest::Approx(0.6).epsilon(1e-15));
  // Plateau, factor ½, patience 1, cooldown 1.
  auto plateau = nn::LRSchedule::reduce_on_plateau(1.0, 0.5, 1, 1e-4, 0.1, 1);
  std::vector<double> const metrics = {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
  // best; bad 1; bad 2 -> 0.5 (cooldown 1); cooldown resets bad; bad 1; bad 2 -> 0.25; improvement (and the
  // cooldown); bad 1; bad 2 -> 0.125; cooldown; bad 1; bad 2 -> max(0.0625, min_lr) = 0.1; cooldown; bad 1.
  std::vector<double> const plateau_want = {1.0,  1.0,   0.5,   0.5,   0.5, 0.25, 0.25,
                                            0.25, 0.125, 0.125, 0.125, 0.1, 0.1,  0.1};
  for (std::size_t i = 0; i < metrics.size(); ++i) {
    CHECK(plateau.observe(metrics[i]) == doctest::Approx(plateau_want[i]).epsilon(1e-15));
    CHECK(plateau.lr(long(i)) == doctest::Approx(plateau_want[i]).epsilon(1e-15));
  }
  // State round trip.
  auto copy = nn::LRSchedule::reduce_on_plateau(1.0, 0.5, 1, 1e-4, 0.1, 1);
  copy.set_state(plateau.state());
  CHECK(copy.observe(0.5) == plateau.observe(0.5));
  // Hooked into the existing optimizers through set_lr.
  nn::Adam<double, Kokkos::HostSpace> adam(4, 1e-3);
  nn::SGD<double, Kokkos::HostSpace> sgd(4, 0.1);
  CHECK(step.apply(adam, 3) == doctest::Approx(0.05).epsilon(1e-15));
  CHECK(adam.lr() == doctest::Approx(0.05).epsilon(1e-15));
  step.apply(sgd, 4);
  CHECK(sgd.lr() == doctest::Approx(0.025).epsilon(1e-15));
  // Errors.
  CHECK_THROWS_AS(nn::LRSchedule::step(0.1, 0, 0.5), std::invalid_argument);
  CHECK_THROWS_AS(nn::LRSchedule::exponential(0.1, 1.5), std::invalid_argument);
  CHECK_THROWS_AS(nn::LRSchedule::constant(-1), std::invalid_argument);
  CHECK_THROWS_AS(nn::LRSchedule::cosine(0.1, 3, 3), std::invalid_argument);
  CHECK_THROWS_AS(nn::LRSchedule::reduce_on_plateau(0.1, 1.0), std::invalid_argument);
  CHECK_THROWS_AS(plateau.observe(std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
  CHECK_THROWS_AS(step.lr(-1), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("nn: train() fits a regression deterministically, with progress lines", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const batch = 32, n = 1024, nval = 256, epochs = 25;
  nn::Tensor<S, Kokkos::HostSpace> x("x", n, 2, 1, 1), xv("xv", nval, 2, 1, 1);
  lensing::View2D<S, Kokkos::HostSpace> y("y", n, 1), yv("yv", nval, 1);
  make_regression(n, 1, x, y);
  make_regression(nval, 2, xv, yv);
  double var = 0, mean = 0;
  for (int i = 0; i < nval; ++i)
    mean += double(yv(i, 0)) / nval;
  for (int i = 0; i < nval; ++i)
    var += (double(yv(i, 0)) - mean) * (double(yv(i, 0)) - mean) / nval;
  auto run = [&](std::ostream* log, nn::TrainHistory& h) {
    auto net = make_mlp<S, Mem>(batch);
    net.initialize(7);
    nn::Adam<S, Mem> opt(net.num_params(), 0.01);
    nn::TrainOptions o;
    o.epochs = epochs;
    o.seed = 11;
    o.log = log;
    o.schedule = nn::LRSchedule::cosine(0.02, epochs, 2, 1e-4);
    h = nn::train(space, net, opt, Mse(), x, y, xv, yv, o);
    return net;
  };
  std::ostringstream log;
  nn::TrainHistory h1, h2;
  auto net1 = run(&log, h1);
  auto net2 = run(nullptr, h2);
  CHECK(same_bits(net1.parameters(), net2.parameters()));  // bit-identical reruns
  CHECK(h1.loss == h2.loss);
  CHECK(h1.val_loss == h2.val_loss);
  REQUIRE(h1.epochs_run() == epochs);
  CHECK(h1.lr[0] == doctest::Approx(0.01).epsilon(1e-6));  // warm-up: 0.02 · 1/2
  CHECK(h1.lr[2] == doctest::Approx(0.02).epsilon(1e-6));
  // Stated result: validation MSE below 2% of the target variance.  After 25
  // epochs it depends on the initialisation and the shuffles: measured 0.68% -
  // 1.15% over init seeds 1-10 x shuffle seeds 11, 12 (1.07% for these);
  // 2% is above that spread (a constant prediction scores 100%).
  double const final_val = h1.val_loss.back();
  MESSAGE(std::string(Space::name()) << " " << (sizeof(S) == 4 ? "float" : "double") << ": val MSE "
                                     << h1.val_loss.front() << " -> " << final_val << " (target variance " << var
                                     << "), " << h1.epochs_run() << " epochs");
  CHECK(final_val < 0.02 * var);
  CHECK(h1.loss.back() < 0.1 * h1.loss.front());
  // Without early stopping the network keeps its last weights: re-evaluating gives the last val loss.
  CHECK(evaluate(space, net1, xv, yv) == doctest::Approx(final_val).epsilon(1e-12));
  // One progress line per epoch.
  std::string const text = log.str();
  std::istringstream lines(text);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    CHECK(line.rfind("epoch " + std::to_string(count + 1) + "/25  loss ", 0) == 0);
    CHECK(line.find("val_loss") != std::string::npos);
    CHECK(line.find("lr") != std::string::npos);
    ++count;
  }
  CHECK(count == epochs);
}

LENSING_TEST_CASE_TEMPLATE("nn: train() stops early and restores the best weights", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const batch = 32, n = 512, nval = 128;
  nn::Tensor<S, Kokkos::HostSpace> x("x", n, 2, 1, 1), xv("xv", nval, 2, 1, 1);
  lensing::View2D<S, Kokkos::HostSpace> y("y", n, 1), yv("yv", nval, 1);
  make_regression(n, 3, x, y);
  make_regression(nval, 4, xv, yv);
  // Constructed case: the validation targets are the negated function, so
  // fitting the training set makes the validation loss grow.
  for (int i = 0; i < nval; ++i)
    yv(i, 0) = -yv(i, 0) - S(1);
  auto net = make_mlp<S, Mem>(batch);
  net.initialize(5);
  nn::Adam<S, Mem> opt(net.num_params(), 0.01);
  nn::TrainOptions o;
  o.epochs = 50;
  o.patience = 3;
  o.log = nullptr;
  auto const h = nn::train(space, net, opt, Mse(), x, y, xv, yv, o);
  MESSAGE(std::string(Space::name()) << ": stopped after " << h.epochs_run() << " epochs, best epoch " << h.best_epoch
                                     << " val " << h.best_metric << ", last val " << h.val_loss.back());
  CHECK(h.stopped_early);
  CHECK(h.epochs_run() == h.best_epoch + 1 + o.patience);
  CHECK(h.val_loss.back() > h.best_metric);
  CHECK(h.best_metric == doctest::Approx(*std::min_element(h.val_loss.begin(), h.val_loss.end())).epsilon(1e-15));
  // The network holds the best epoch's weights: its validation loss is the best one.
  CHECK(evaluate(space, net, xv, yv) == doctest::Approx(h.best_metric).epsilon(1e-12));
}

LENSING_TEST_CASE_TEMPLATE("nn: train() checkpoint and resume give bit-identical weights", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const batch = 32, n = 512, nval = 64, epochs = 6;
  nn::Tensor<S, Kokkos::HostSpace> x("x", n, 2, 1, 1), xv("xv", nval, 2, 1, 1);
  lensing::View2D<S, Kokkos::HostSpace> y("y", n, 1), yv("yv", nval, 1);
  make_regression(n, 5, x, y);
  make_regression(nval, 6, xv, yv);
  std::string const path = temp_path(std::string(Space::name()) + (sizeof(S) == 4 ? "_f" : "_d"));
  auto options = [&](int total) {
    nn::TrainOptions o;
    o.epochs = total;
    o.seed = 3;
    o.log = nullptr;
    o.patience = 100;  // early stopping on (best weights kept and checkpointed) but never triggered
    o.restore_best = false;
    o.schedule = nn::LRSchedule::reduce_on_plateau(0.02, 0.5, 0, 0.2);  // halves often
    return o;
  };
  // Uninterrupted.
  auto full = make_bn_mlp<S, Mem>(batch);
  full.initialize(9);
  nn::Adam<S, Mem> opt_full(full.num_params());
  auto const hf = nn::train(space, full, opt_full, Mse(), x, y, xv, yv, options(epochs));
  // Interrupted after 3 epochs (checkpoint), resumed in a fresh network and optimizer.
  {
    auto first = make_bn_mlp<S, Mem>(batch);
    first.initialize(9);
    nn::Adam<S, Mem> opt_first(first.num_params());
    auto o = options(3);
    o.checkpoint_every = 3;
    o.checkpoint_path = path;
    nn::train(space, first, opt_first, Mse(), x, y, xv, yv, o);
  }
  auto resumed = make_bn_mlp<S, Mem>(batch);
  resumed.initialize(1234);  // different weights: all must come from the checkpoint
  nn::SGD<S, Mem> wrong_opt(resumed.num_params(), 0.1);
  nn::Adam<S, Mem> opt_resumed(resumed.num_params());
  auto o = options(epochs);
  o.resume_from = path;
  // An SGD has one state vector, the checkpoint two (Adam's m and v).
  CHECK_THROWS_AS(nn::train(space, resumed, wrong_opt, Mse(), x, y, xv, yv, o), std::invalid_argument);
  auto const hr = nn::train(space, resumed, opt_resumed, Mse(), x, y, xv, yv, o);
  CHECK(hr.first_epoch == 3);
  REQUIRE(hr.epochs_run() == 3);
  CHECK(same_bits(resumed.parameters(), full.parameters()));
  CHECK(same_bits(resumed.state(), full.state()));  // BatchNorm running statistics
  CHECK(opt_resumed.steps() == opt_full.steps());
  for (int e = 0; e < 3; ++e) {
    CHECK(hr.loss[e] == hf.loss[3 + e]);
    CHECK(hr.val_loss[e] == hf.val_loss[3 + e]);
    CHECK(hr.lr[e] == hf.lr[3 + e]);
  }
  CHECK(hr.best_epoch == hf.best_epoch);
  CHECK(hf.lr[5] < hf.lr[3]);  // the schedule's state matters after the resume point
  MESSAGE(std::string(Space::name()) << ": resumed run matches bit for bit; lr per epoch " << hf.lr[0] << " ... "
                                     << hf.lr.back() << ", best epoch " << hf.best_epoch);
  // Resume errors: missing checkpoint; another architecture.
  auto o_missing = options(epochs);
  o_missing.resume_from = path + ".missing";
  CHECK_THROWS_AS(nn::train(space, resumed, opt_resumed, Mse(), x, y, xv, yv, o_missing), std::runtime_error);
  auto other = make_mlp<S, Mem>(batch);
  nn::Adam<S, Mem> opt_other(other.num_params());
  CHECK_THROWS_AS(nn::train(space, other, opt_other, Mse(), x, y, xv, yv, o), std::invalid_argument);
  for (char const* ext : {".weights", ".train", ".best"})
    std::filesystem::remove(path + ext);
}

LENSING_TEST_CASE_TEMPLATE("nn: train() rejects bad data and options", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using HT = nn::Tensor<S, Kokkos::HostSpace>;
  using HM = lensing::View2D<S, Kokkos::HostSpace>;
  Space space;
  auto net = make_mlp<S, Mem>(8);
  net.initialize(1);
  nn::Adam<S, Mem> opt(net.num_params());
  HT x("x", 16, 2, 1, 1), x3("x3", 16, 3, 1, 1), small("small", 4, 2, 1, 1), none_x;
  HM y("y", 16, 1), y15("y15", 15, 1), ysmall("ysmall", 4, 1), none_y;
  nn::TrainOptions o;
  o.epochs = 1;
  o.log = nullptr;
  CHECK_NOTHROW(nn::train(space, net, opt, Mse(), x, y, none_x, none_y, o));  // no validation set
  CHECK(lt::error_message([&] {
          nn::train(space, net, opt, Mse(), x3, y, none_x, none_y, o);
        }).find("lensing::nn::train: x has shape (16, 3, 1, 1), expected (16, 2, 1, 1)") == 0);
  CHECK_THROWS_AS(nn::train(space, net, opt, Mse(), x, y15, none_x, none_y, o), std::invalid_argument);
  CHECK(lt::error_message([&] {
          nn::train(space, net, opt, Mse(), small, ysmall, none_x, none_y, o);
        }).find("fewer than the batch size 8") != std::string::npos);
  CHECK_THROWS_AS(nn::train(space, net, opt, Mse(), x, y, small, ysmall, o), std::invalid_argument);
  y(3, 0) = std::numeric_limits<S>::quiet_NaN();
  CHECK(lt::error_message([&] {
          nn::train(space, net, opt, Mse(), x, y, none_x, none_y, o);
        }).find("the training data have NaN") != std::string::npos);
  y(3, 0) = 0;
  nn::TrainOptions bad = o;
  bad.checkpoint_every = 2;
  CHECK_THROWS_AS(nn::train(space, net, opt, Mse(), x, y, none_x, none_y, bad), std::invalid_argument);
  bad = o;
  bad.epochs = 0;
  CHECK_THROWS_AS(nn::train(space, net, opt, Mse(), x, y, none_x, none_y, bad), std::invalid_argument);
}
