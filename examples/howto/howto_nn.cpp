// How to: build a small network, check a layer's backward pass, train with
// the library's loop on a toy regression, and save / load the weights.
//
//   howto_nn      (no arguments; writes howto_mlp.weights; exits 1 if a check fails)
//
// y = sin(2 x) + x / 2 on x in [-2, 2], fitted by Dense(1, 32) - tanh - Dense(32, 1)
// with Adam and a cosine learning-rate schedule, mini-batches of 32.  Checks:
// the Dense layer's gradients match central differences, the training loss
// falls by 10x or more, the validation MSE ends below 1% of the target's
// variance, and a network loaded from the saved file predicts bit for bit
// what the trained one does.
#include <lensing/nn/activation.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/gradient_check.hpp>
#include <lensing/nn/loss.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/schedule.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/serialize.hpp>
#include <lensing/nn/train.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdio>

namespace nn = lensing::nn;
using Space = Kokkos::DefaultExecutionSpace;
using Mem = Space::memory_space;

// n samples of the toy function at evenly spread, shuffled-looking points (host views).
void make_data(int n, double offset, nn::Tensor<double, Kokkos::HostSpace> const& x,
               lensing::View2D<double, Kokkos::HostSpace> const& y) {
  for (int i = 0; i < n; ++i) {
    double const t = -2 + 4 * std::fmod(0.6180339887 * (i + offset), 1.0);
    x(i, 0, 0, 0) = t;
    y(i, 0) = std::sin(2 * t) + 0.5 * t;
  }
}

int main(int argc, char** argv) {
  Kokkos::ScopeGuard guard(argc, argv);
  Space const space;
  bool ok = true;
  // A layer's backward pass against central differences (nn/gradient_check.hpp).
  nn::Dense<double, Mem> dense(4, 3);
  dense.initialize(1);
  auto const gc = nn::check_layer_gradients(space, dense, nn::Shape4{5, 4, 1, 1});
  std::printf("Dense 4->3 gradient check: inputs %.1e, parameters %.1e\n", gc.input_error, gc.param_error);
  ok = ok && gc.input_error < 1e-7 && gc.param_error < 1e-7;

  // The network: input shape (batch, channels, height, width), then the layers.
  int const batch = 32, n = 1024, nval = 256;
  auto make_net = [] {
    return nn::make_sequential(nn::Shape4{batch, 1, 1, 1}, nn::Dense<double, Mem>(1, 32), nn::Tanh<double, Mem>(),
                               nn::Dense<double, Mem>(32, 1));
  };
  auto net = make_net();
  net.initialize(/*seed=*/7);

  nn::Tensor<double, Kokkos::HostSpace> x("x", n, 1, 1, 1), xv("xv", nval, 1, 1, 1);
  lensing::View2D<double, Kokkos::HostSpace> y("y", n, 1), yv("yv", nval, 1);
  make_data(n, 0, x, y);
  make_data(nval, 0.5, xv, yv);

  nn::Adam<double, Mem> adam(net.num_params(), /*lr=*/0.01);
  nn::TrainOptions opt;
  opt.epochs = 20;
  opt.seed = 11;  // per-epoch shuffles
  opt.schedule = nn::LRSchedule::cosine(/*base=*/0.02, opt.epochs, /*warmup=*/2, /*min=*/1e-4);
  auto const mse = [](auto const& s, auto const& pred, auto const& target, auto const& grad) {
    return nn::mse_loss(s, pred, target, grad);
  };
  nn::TrainHistory const h = nn::train(space, net, adam, mse, x, y, xv, yv, opt);  // one line per epoch
  double var = 0;  // variance of the validation targets (mean ~0 by symmetry)
  for (int i = 0; i < nval; ++i)
    var += yv(i, 0) * yv(i, 0) / nval;
  std::printf("training loss %.4f -> %.5f, validation MSE %.5f (target variance %.3f)\n", h.loss.front(), h.loss.back(),
              h.val_loss.back(), var);
  ok = ok && h.loss.back() < 0.1 * h.loss.front() && h.val_loss.back() < 0.01 * var;

  // Save, load into a fresh network of the same architecture, compare predictions.
  nn::save_weights(net, "howto_mlp.weights");
  auto loaded = make_net();
  nn::load_weights(loaded, "howto_mlp.weights");
  nn::Tensor<double, Mem> xb("xb", batch, 1, 1, 1);
  Kokkos::deep_copy(xb, Kokkos::subview(xv, Kokkos::make_pair(0, batch), Kokkos::ALL, Kokkos::ALL, Kokkos::ALL));
  net.set_training(false);
  loaded.set_training(false);
  auto const p1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), net.forward(space, xb));
  auto const p2 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), loaded.forward(space, xb));
  for (int i = 0; i < batch; ++i)
    ok = ok && p1(i, 0, 0, 0) == p2(i, 0, 0, 0);
  std::printf("loaded network: prediction at x = %.3f is %.5f (target %.5f)\n", xv(0, 0, 0, 0), p2(0, 0, 0, 0),
              yv(0, 0));
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
