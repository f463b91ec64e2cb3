#include "instantiate.hpp"

#include <lensing/nn/activation.hpp>
#include <lensing/nn/batchnorm.hpp>
#include <lensing/nn/concat.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/conv_relu_pool2d.hpp>
#include <lensing/nn/conv_transpose2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/dropout.hpp>
#include <lensing/nn/flatten.hpp>
#include <lensing/nn/gemm.hpp>
#include <lensing/nn/graph_conv.hpp>
#include <lensing/nn/graph_conv_directional.hpp>
#include <lensing/nn/layer_norm.hpp>
#include <lensing/nn/loss.hpp>
#include <lensing/nn/loss_gaussian_full.hpp>
#include <lensing/nn/loss_mdn.hpp>
#include <lensing/nn/mc_predict.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/pooling.hpp>
#include <lensing/nn/reshape.hpp>
#include <lensing/nn/residual.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/train.hpp>
#include <lensing/nn/two_input.hpp>
#include <lensing/nn/vae.hpp>

namespace {
// forward and backward of one layer on a tiny input.
template <class Space, class Layer>
void run_layer(Space const& space, Layer layer, lensing::nn::Shape4 in) {
  using T = typename Layer::tensor_type;
  using V = typename Layer::vector_type;
  auto const out = layer.output_shape(in);
  layer.prepare(in);
  layer.initialize(1);
  T x("x", in.n, in.c, in.h, in.w), dx("dx", in.n, in.c, in.h, in.w);
  T y("y", out.n, out.c, out.h, out.w), dy("dy", out.n, out.c, out.h, out.w);
  Kokkos::deep_copy(x, typename Layer::scalar_type(0.5));
  V g("g", layer.num_params());
  layer.forward(space, x, y);
  layer.backward(space, x, y, dy, dx, g);
  layer.set_training(false);
  layer.forward(space, x, y);
  layer.backward(space, x, y, dy, dx, g);
  space.fence();
}
}  // namespace

LENSING_INSTANTIATE(instantiate_nn) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    using Space = std::decay_t<decltype(space)>;
    using Mem = typename Space::memory_space;
    namespace nn = lensing::nn;
    nn::Shape4 const img{2, 2, 6, 6};
    run_layer(space, nn::Dense<S, Mem>(72, 3), img);
    run_layer(space, nn::Conv2D<S, Mem>(2, 3, 3, 1, 1), img);
    run_layer(space, nn::Conv2D<S, Mem>(2, 3, nn::Conv2DGeometry{3, 3, 1, 1, 1, 1, 1, 1}, nn::Init::he_normal, true),
              img);
    run_layer(space, nn::ConvTranspose2D<S, Mem>(2, 3, 3, 2, 1, 1), img);
    run_layer(
        space,
        nn::ConvTranspose2D<S, Mem>(2, 3, nn::Conv2DGeometry{3, 3, 2, 2, 1, 1, 1, 1}, 1, 1, nn::Init::he_normal, true),
        img);
    auto const adj = nn::gcn_normalized_adjacency<S, Mem>(2, {{0, 1}});
    run_layer(space, nn::GraphConv<S, Mem>(adj, 72, 3), img);
    run_layer(space, nn::GraphConv<S, Mem>(adj, 72, 3, false), img);
    run_layer(space, nn::MaxPool2D<S, Mem>(2), img);
    run_layer(space, nn::AvgPool2D<S, Mem>(2), img);
    run_layer(space, nn::GlobalAvgPool<S, Mem>(), img);
    run_layer(space, nn::ReLU<S, Mem>(), img);
    run_layer(space, nn::LeakyReLU<S, Mem>(), img);
    run_layer(space, nn::ELU<S, Mem>(), img);
    run_layer(space, nn::GELU<S, Mem>(), img);
    run_layer(space, nn::Tanh<S, Mem>(), img);
    run_layer(space, nn::Sigmoid<S, Mem>(), img);
    run_layer(space, nn::Softplus<S, Mem>(), img);
    run_layer(space, nn::Flatten<S, Mem>(), img);
    run_layer(space, nn::Conv2DReLUPool<S, Mem>(2, 3, 3, 1, 1), img);
    run_layer(space, nn::Dropout<S, Mem>(0.5, 1), img);
    run_layer(space, nn::BatchNorm<S, Mem>(2), img);
    run_layer(space, nn::PreactConv2D<S, Mem>(2, 3, 3, 2, 1), img);
    run_layer(space, nn::make_preact_bottleneck<S, Mem>(img, 2, 4, 2), img);
    run_layer(space, nn::make_preact_bottleneck_identity<S, Mem>(img, 1), img);
    run_layer(space, nn::make_preact_basic<S, Mem>(img, 4, 2), img);
    run_layer(space, nn::make_preact_basic_identity<S, Mem>(img), img);
    run_layer(space, nn::LayerNorm<S, Mem>(2, 6, 6), img);
    run_layer(space, nn::Reshape<S, Mem>(8, -1, 3), img);
    run_layer(space, nn::make_concat(nn::Conv2D<S, Mem>(2, 3, 3, 1, 1), nn::Conv2D<S, Mem>(2, 1, 1)), img);
    run_layer(space, nn::DirectionalGraphConv<S, Mem>(adj, {0.0, 1.0}, {0.0, 0.5}, 72, 3, 2), img);
    // A network, the losses and the optimizers.
    auto net = nn::make_sequential(img, nn::Conv2D<S, Mem>(2, 3, 3), nn::ReLU<S, Mem>(), nn::Flatten<S, Mem>(),
                                   nn::Dense<S, Mem>(48, 4));
    net.initialize(3);
    nn::Tensor<S, Mem> x("x", 2, 2, 6, 6);
    lensing::View2D<S, Mem> t("t", 2, 4), t2("t2", 2, 2);
    auto out = net.forward(space, x);
    nn::mse_loss(space, out, t, net.output_gradient());
    nn::gaussian_nll_loss(space, out, t2, net.output_gradient());
    nn::bce_with_logits_loss(space, out, t, net.output_gradient());
    net.backward(space, x);
    nn::SGD<S, Mem> sgd(net.num_params(), 0.1, 0.9);
    nn::Adam<S, Mem> adam(net.num_params());
    nn::AdamW<S, Mem> adamw(net.num_params());
    sgd.step(space, net.parameters(), net.gradients());
    adam.step(space, net.parameters(), net.gradients());
    adamw.step(space, net.parameters(), net.gradients());
    nn::clip_grad_norm(space, net.gradients(), 1.0);
    // Probabilistic losses, VAE pieces and the training loop (helper nn-train).
    nn::Tensor<S, Mem> pf("pf", 2, 5, 1, 1), gf("gf", 2, 5, 1, 1), zr("zr", 2, 2, 1, 1);
    nn::gaussian_full_nll_loss(space, pf, t2, gf);
    nn::mdn_nll_loss(space, pf, t2, 1, gf);
    nn::kl_standard_normal(space, out, net.output_gradient());
    nn::kl_diagonal_gaussians(space, out, out, net.output_gradient(), net.output_gradient(), true);
    nn::Reparameterize<S, Mem> rep(2, 2, 1);
    rep.sample(space, out, zr);
    rep.backward(space, out, zr, net.output_gradient(), true);
    nn::TrainOptions topt;
    topt.epochs = 1;
    topt.log = nullptr;
    topt.schedule = nn::LRSchedule::cosine(1e-3, 2, 1);
    nn::train(
        space, net, adam,
        [](auto const& s, auto const& p, auto const& tt, auto const& g) { return nn::mse_loss(s, p, tt, g); },
        nn::Tensor<S, Kokkos::HostSpace>("hx", 2, 2, 6, 6), lensing::View2D<S, Kokkos::HostSpace>("ht", 2, 4),
        nn::Tensor<S, Kokkos::HostSpace>(), lensing::View2D<S, Kokkos::HostSpace>(), topt);
    // Another batch size, a two-input model and MC-dropout prediction (helper seq).
    nn::Tensor<S, Mem> x3("x3", 3, 2, 6, 6), v3("v3", 3, 3, 1, 1), dx3("dx3", 3, 2, 6, 6), dv3("dv3", 3, 3, 1, 1);
    net.forward(space, x3);
    auto two = nn::make_two_input(nn::make_sequential(nn::Conv2D<S, Mem>(2, 1, 3), nn::Flatten<S, Mem>()),
                                  nn::make_sequential(nn::Dense<S, Mem>(3, 2)),
                                  nn::make_sequential(nn::Dropout<S, Mem>(0.5), nn::Dense<S, Mem>(18, 5)));
    two.forward(space, x3, v3);
    two.backward(space, x3, v3, dx3, dv3);
    nn::mc_predict(space, net, x3, 2, 1);
    nn::mc_predict(space, two, x3, v3, 2, 1);
    nn::mc_predict_gaussian(space, net, x3, nn::GaussianOutput::diagonal, 2, 1);
    auto full = nn::make_sequential(nn::Flatten<S, Mem>(), nn::Dense<S, Mem>(72, 5));
    nn::mc_predict_gaussian(space, full, x3, nn::GaussianOutput::full, 2, 1);
    space.fence();
  });
}
