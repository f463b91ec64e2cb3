// Residual units: gradients of the pre-activated bottleneck (projection and
// identity shortcuts) against central differences, the residual identity
// y = F(x) + S(x), nesting in a Sequential, and weights round trip.
#include <lensing/nn/dense.hpp>
#include <lensing/nn/pooling.hpp>
#include <lensing/nn/residual.hpp>
#include <lensing/nn/serialize.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <unistd.h>
#include <filesystem>
#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

LENSING_TEST_CASE_TEMPLATE("nn: pre-activated bottleneck gradients", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  nn::Shape4 const in{2, 3, 6, 6};
  auto proj = nn::make_preact_bottleneck<double, Mem>(in, 2, 5, 2);
  proj.initialize(1);
  CHECK(proj.output_shape(in) == nn::Shape4{2, 5, 3, 3});
  // Random parameters, BatchNorm γ, β included.
  lt::fill_normal(proj.parameters(), 2, 0.5);
  auto r = lt::check_layer_gradients(space, proj, in, 3, 1e-5, 80);
  MESSAGE("bottleneck (projection, stride 2) on " << std::string(Space::name()) << ": input grad err " << r.input_error
                                                  << ", param grad err " << r.param_error << " (" << proj.num_params()
                                                  << " parameters)");
  CHECK(r.input_error < 1e-7);
  CHECK(r.param_error < 1e-7);
  nn::Shape4 const in2{2, 4, 5, 5};
  auto id = nn::make_preact_bottleneck_identity<double, Mem>(in2, 2);
  id.initialize(4);
  lt::fill_normal(id.parameters(), 5, 0.5);
  r = lt::check_layer_gradients(space, id, in2, 6, 1e-5, 80);
  MESSAGE("bottleneck (identity) on " << std::string(Space::name()) << ": input grad err " << r.input_error
                                      << ", param grad err " << r.param_error);
  CHECK(r.input_error < 1e-7);
  CHECK(r.param_error < 1e-7);
  // Inference mode too (BatchNorm with running statistics).
  id.set_training(false);
  r = lt::check_layer_gradients(space, id, in2, 7, 1e-5, 80);
  CHECK(r.input_error < 1e-7);
  CHECK(r.param_error < 1e-7);
}

LENSING_TEST_CASE_TEMPLATE("nn: residual identity, nesting and weights round trip", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  double const tol = std::is_same<S, float>::value ? 1e-5 : 1e-13;
  nn::Shape4 const in{3, 4, 5, 5};
  auto unit = nn::make_preact_bottleneck_identity<S, Mem>(in, 2);
  unit.initialize(3);
  nn::Tensor<S, Mem> x("x", 3, 4, 5, 5), y("y", 3, 4, 5, 5), fx("fx", 3, 4, 5, 5);
  lt::fill_normal(x, 1);
  unit.forward(space, x, y);
  unit.block().forward(space, x, fx);
  space.fence();
  auto const xv = lt::host_values(x), yv = lt::host_values(y), fv = lt::host_values(fx);
  double err = 0;
  for (std::size_t i = 0; i < xv.size(); ++i)
    err = std::max(err, std::abs(yv[i] - fv[i] - xv[i]));
  CHECK(err <= tol * 10);
  // A small ResNet: stem, two units, pooling, head; save and load bit-exactly (state nested).
  auto make = [&](std::uint64_t seed) {
    nn::Shape4 const a{3, 4, 8, 8}, b{3, 8, 4, 4};
    auto net = nn::make_sequential(
        nn::Shape4{3, 1, 8, 8}, nn::Conv2D<S, Mem>(1, 4, 3, 1, 1), nn::make_preact_bottleneck_identity<S, Mem>(a, 2),
        nn::make_preact_bottleneck<S, Mem>(a, 2, 8, 2), nn::make_preact_bottleneck_identity<S, Mem>(b, 4),
        nn::GlobalAvgPool<S, Mem>(), nn::Dense<S, Mem>(8, 2));
    net.initialize(seed);
    return net;
  };
  auto net = make(1);
  CHECK(net.num_state() == 2 * (4 + 2 + 2) + 2 * (4 + 2 + 2) + 2 * (8 + 4 + 4));
  nn::Tensor<S, Mem> x8("x8", 3, 1, 8, 8);
  lt::fill_normal(x8, 2);
  net.forward(space, x8);  // training: running statistics move
  space.fence();
  std::string const path =
      (std::filesystem::temp_directory_path() /
       ("lensing_nn_res_" + std::to_string(::getpid()) + std::string(Space::name()) + std::to_string(sizeof(S))))
          .string();
  nn::save_weights(net, path);
  auto other = make(2);
  nn::load_weights(other, path);
  std::filesystem::remove(path);
  CHECK(lt::host_values(other.parameters()) == lt::host_values(net.parameters()));
  CHECK(lt::host_values(other.state()) == lt::host_values(net.state()));
  net.set_training(false);
  other.set_training(false);
  CHECK(lt::host_values(other.forward(space, x8)) == lt::host_values(net.forward(space, x8)));
  // Errors: shortcut/block mismatch and an identity shortcut across a width change.
  using C = nn::Conv2D<S, Mem>;
  auto block = nn::make_sequential(in, C(4, 6, 1));
  using R = nn::Residual<decltype(block), C>;
  using RI = nn::Residual<decltype(block)>;
  CHECK_THROWS_AS(R(in, block, C(4, 6, 1, 2)), std::invalid_argument);
  CHECK_THROWS_AS(RI(in, block), std::invalid_argument);
}
