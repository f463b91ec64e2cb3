#include "instantiate.hpp"

// The generative and recurrent networks (MADE/IAF, the VAE layer, ConvGRU,
// RIM, score U-Net, graph batches, GraphNet and the WGAN), the decoded
// (VAE) source and its posterior, and the spiral-galaxy renderer.

#include <lensing/fit/decoded_source.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/nn/activation.hpp>
#include <lensing/nn/conv_gru.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/graph_batch.hpp>
#include <lensing/nn/graph_net.hpp>
#include <lensing/nn/iaf.hpp>
#include <lensing/nn/iaf_variational.hpp>
#include <lensing/nn/made.hpp>
#include <lensing/nn/reshape.hpp>
#include <lensing/nn/rim.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/unet.hpp>
#include <lensing/nn/variational_autoencoder.hpp>
#include <lensing/nn/wgan.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/digits.hpp>
#include <lensing/simulate/spiral_galaxies.hpp>
#include <lensing/sources/decoded.hpp>
#include <lensing/sources/light_profile.hpp>

#include <memory>
#include <utility>
#include <vector>

namespace {
namespace nn = lensing::nn;

// forward and backward of one layer on a tiny input, in training and inference mode.
template <class Space, class Layer>
void run_layer(Space const& space, Layer layer, nn::Shape4 in) {
  using T = typename Layer::tensor_type;
  using V = typename Layer::vector_type;
  auto const out = layer.output_shape(in);
  layer.prepare(in);
  layer.initialize(1);
  T x("x", in.n, in.c, in.h, in.w), dx("dx", in.n, in.c, in.h, in.w);
  T y("y", out.n, out.c, out.h, out.w), dy("dy", out.n, out.c, out.h, out.w);
  Kokkos::deep_copy(x, typename Layer::scalar_type(0.25));
  V g("g", layer.num_params());
  layer.forward(space, x, y);
  layer.backward(space, x, y, dy, dx, g);
  layer.set_training(false);
  layer.forward(space, x, y);
  layer.backward(space, x, y, dy, dx, g);
  space.fence();
}

// Isotropic Gaussian evaluated by a kernel on the space the fit passes.
template <class Scalar, class Mem>
struct KernelGaussian {
  using scalar_type = Scalar;
  using memory_space = Mem;
  int n;
  int dimension() const { return n; }
  template <class Space>
  Scalar value_and_gradient(Space const& space, lensing::View1D<Scalar, Mem> const& q,
                            lensing::View1D<Scalar, Mem> const& g) const {
    Scalar lp = 0;
    Kokkos::parallel_reduce(
        "lensing::instantiate::nn_generative_gaussian", Kokkos::RangePolicy<Space>(space, 0, n),
        KOKKOS_LAMBDA(int i, Scalar& acc) {
          g(i) = -q(i);
          acc += -Scalar(0.5) * q(i) * q(i);
        },
        lp);
    return lp;
  }
};

// A linear-Gaussian problem of 6 data pixels on a 4 x 5 source (host, Eigen).
nn::LinearGaussianProblem rim_problem(int shift) {
  std::vector<Eigen::Triplet<double>> t;
  for (int i = 0; i < 6; ++i)
    for (int k = 0; k < 3; ++k)
      t.emplace_back(i, (3 * i + 7 * k + shift) % 20, 0.3 + 0.1 * k);
  Eigen::SparseMatrix<double> a(6, 20);
  a.setFromTriplets(t.begin(), t.end());
  Eigen::VectorXd d = Eigen::VectorXd::Constant(6, 0.5), sigma = Eigen::VectorXd::Constant(6, 0.2);
  return nn::LinearGaussianProblem::make(a, d, sigma);
}

// Three small point clouds (5, 4 and 6 points) for the kNN graphs.
struct Clouds {
  std::vector<int> sizes{5, 4, 6};
  std::vector<double> px, py;
  Clouds() {
    for (int i = 0; i < 15; ++i) {
      px.push_back(0.1 * i + 0.03 * (i % 3));
      py.push_back(0.2 * (i % 4) - 0.05 * i);
    }
  }
};

// The MADE/IAF, VAE, ConvGRU, U-Net and RIM pieces.
template <class Space, class S>
void dense_and_recurrent(Space const& space) {
  using Mem = typename Space::memory_space;
  auto const mask = nn::made_mask(nn::made_input_degrees(5), nn::made_hidden_degrees(5, 4), false);
  run_layer(space, nn::MaskedDense<S, Mem>(5, 4, mask), {3, 5, 1, 1});
  run_layer(space, nn::make_made<S, Mem>(4, 6), {3, 4, 1, 1});
  run_layer(space, nn::IafStep<S, Mem>(4, 6), {3, 5, 1, 1});
  run_layer(space, nn::IafStep<S, Mem>(4, 6, true, 0.5), {3, 5, 1, 1});
  run_layer(space, nn::InverseAutoregressiveFlow<S, Mem>(4, 6, 2), {3, 5, 1, 1});

  // The VAE layer (dense encoder 6 -> 2Z = 4, decoder 2 -> 6) and its loss.
  using D = nn::Dense<S, Mem>;
  using E = nn::ELU<S, Mem>;
  auto enc = nn::make_sequential(D(6, 5), E(), D(5, 4, nn::Init::xavier_normal));
  auto dec = nn::make_sequential(D(2, 5), E(), D(5, 6));
  nn::VariationalAutoencoder<decltype(enc), decltype(dec)> vae(enc, dec, 2, 3);
  run_layer(space, vae, {3, 6, 1, 1});
  vae.set_use_mean(true);
  run_layer(space, vae, {3, 6, 1, 1});
  nn::Tensor<S, Mem> pred("pred", 3, 6 + 4, 1, 1), grad("grad", 3, 6 + 4, 1, 1);
  lensing::View2D<S, Mem> target("target", 3, 6);
  nn::VaeLoss const gl(2, nn::PixelLikelihood::gaussian, 0.3), ll(2, nn::PixelLikelihood::laplace, 0.3);
  (void)gl(space, pred, target, grad);
  (void)ll(space, pred, target, nn::Tensor<S, Mem>());

  // ConvGRU as a Layer, then through a per-step Cache (the BPTT path).
  run_layer(space, nn::ConvGRU<S, Mem>(2, 3, 3), {2, 5, 4, 4});
  nn::ConvGRU<S, Mem> gru(2, 3, 3);
  nn::Shape4 const in{2, 5, 4, 4};
  gru.prepare(in);
  gru.initialize(2);
  nn::Tensor<S, Mem> xh("xh", 2, 5, 4, 4), dxh("dxh", 2, 5, 4, 4), h("h", 2, 3, 4, 4), dh("dh", 2, 3, 4, 4);
  typename nn::ConvGRU<S, Mem>::vector_type dp("dp", gru.num_params());
  auto const cache = gru.make_cache(in);
  gru.forward(space, xh, h, cache);
  gru.backward(space, xh, dh, dxh, dp, cache);
  gru.backward(space, xh, dh, nn::Tensor<S, Mem>(), dp, cache);

  // The score U-Net on 8 x 8 images (input: the image then log sigma).
  nn::UNetOptions uo;
  uo.height = 8;
  uo.width = 8;
  uo.base_channels = 2;
  uo.levels = 2;
  uo.frequencies = 2;
  run_layer(space, nn::ScoreUNet<S, Mem>(uo), {2, 65, 1, 1});

  // The RIM on two 4 x 5 problems: reconstruction, loss and BPTT gradient.
  nn::RimOptions ro;
  ro.steps = 2;
  ro.features = 2;
  ro.hidden = 2;
  nn::RIM<S, Mem> rim(ro, 4, 5);
  rim.initialize(4);
  std::vector<nn::LinearGaussianProblem> const problems{rim_problem(0), rim_problem(1)};
  nn::Tensor<S, Mem> truth("truth", 2, 1, 4, 5);
  typename nn::RIM<S, Mem>::vector_type rg("rg", rim.num_params());
  rim.reconstruct(space, problems);
  (void)rim.estimate(ro.steps);
  (void)rim.loss_and_gradient(space, problems, truth, rg);
  space.fence();
}

// Graph batches, GraphNet (forward, backward, tangents), the gradient
// penalty and the WGAN's steps; the kNN graphs are built on the host and
// copied to the memory space, so every piece runs on any space.
template <class Space, class S, class Act>
void graphs(Space const& space) {
  using Mem = typename Space::memory_space;
  using M = lensing::View2D<S, Mem>;
  Clouds const c;
  int const n = 15, g = 3, f = 3;
  auto const batch = nn::knn_graph_batch<S, Mem>(c.sizes, c.px, c.py, 2);
  auto const given = nn::graph_batch_from_edges<S, Mem>({2, 3}, {{0, 1}, {2, 3}, {3, 4}});
  (void)given;
  M x("x", n, f), dx("dx", n, f), xd("xd", n, f), dxd("dxd", n, f), p("p", g, f), dp("dp", g, f);
  Kokkos::deep_copy(x, S(0.3));
  Kokkos::deep_copy(xd, S(0.1));
  for (auto mode : {nn::GraphPoolMode::mean, nn::GraphPoolMode::sum}) {
    nn::graph_pool(space, batch, x, p, mode);
    nn::graph_pool_backward(space, batch, dp, dx, mode);
    run_layer(space, nn::GraphPool<S, Mem>(batch, mode), {n, f, 1, 1});
  }
  nn::graph_broadcast(space, batch, p, x);
  nn::graph_broadcast_backward(space, batch, x, dp);

  for (bool pool : {false, true}) {
    nn::GraphNetSpec spec;
    spec.in_features = f;
    spec.conv_widths = {4};
    spec.pool = pool;
    spec.dense_widths = {3};
    spec.out_features = pool ? 1 : 2;
    nn::GraphNet<S, Mem, Act> net(spec);
    net.initialize(5);
    int const rows = net.output_rows(batch);
    M dy("dy", rows, spec.out_features), dyd("dyd", rows, spec.out_features);
    (void)net.forward(space, batch, x);
    (void)net.forward_tangent(space, batch, xd);
    net.backward(space, batch, x, dy, dx, nn::ParamGrad::overwrite);
    net.backward(space, batch, x, dy, M(), nn::ParamGrad::accumulate);
    net.backward_tangent(space, batch, x, xd, dy, dyd, dx, dxd, nn::ParamGrad::accumulate);
    net.backward_tangent(space, batch, x, xd, M(), dyd, M(), dxd, nn::ParamGrad::none);
    if (pool) {
      nn::GradientPenalty<S, Mem> gp(2, 10.0);
      (void)gp.evaluate(space, net, batch, x, nn::ParamGrad::overwrite, dxd);
      (void)gp.evaluate(space, net, batch, x, nn::ParamGrad::none);
    }
  }
  space.fence();
}

template <class Space, class S>
void wgan(Space const& space) {
  using Mem = typename Space::memory_space;
  Clouds const c;
  int const n = 15, g = 3;
  nn::WganConfig cfg;
  cfg.node_features = 2;
  cfg.node_conditions = 1;
  cfg.graph_conditions = 1;
  cfg.node_noise = 2;
  cfg.graph_noise = 1;
  cfg.generator_conv = {4};
  cfg.generator_dense = {3};
  cfg.critic_conv = {4};
  cfg.critic_dense = {3};
  cfg.n_critic = 1;
  cfg.knn = 2;
  nn::WganBatch<S, Mem> b;
  b.graph = nn::knn_graph_batch<S, Mem>(c.sizes, c.px, c.py, 2);
  b.real = lensing::View2D<S, Mem>("real", n, 2);
  b.node_conditions = lensing::View2D<S, Mem>("node_conditions", n, 1);
  b.graph_conditions = lensing::View2D<S, Mem>("graph_conditions", g, 1);
  for (auto graph : {nn::WganGraph::given, nn::WganGraph::knn_of_nodes}) {
    cfg.generator_graph = graph;
    cfg.critic_graph = graph;
    nn::Wgan<S, Mem> gan(cfg);
    gan.initialize(6);
    (void)gan.critic_step(space, b);
    (void)gan.generator_step(space, b);
    (void)gan.generate(space, b, 7);
    nn::WganTrainOptions to;
    to.steps = 1;
    to.log_every = 0;
    (void)gan.train(
        space, [&]() -> nn::WganBatch<S, Mem> const& { return b; }, to);
  }
  space.fence();
}

// The decoded source (a 3 -> 16 -> 36 decoder on a 6 x 6 grid) and the
// posterior of an SIE + shear lens with it on a 10 x 10 image.
template <class T, class Mem>
using Decoder =
    nn::Sequential<nn::Dense<T, Mem>, nn::Tanh<T, Mem>, nn::Dense<T, Mem>, nn::Softplus<T, Mem>, nn::Reshape<T, Mem>>;
template <class T>
using Lens = lensing::Composite<lensing::SIE<T>, lensing::ExternalShear<T>>;
template <class T>
using Model = lensing::LensModel<Lens<T>, lensing::PixelatedSource<T>, lensing::NoLight<T>>;

template <class Space, class T>
void decoded(Space const& space) {
  using Mem = typename Space::memory_space;
  using Psf = lensing::GaussianFilter<T, Mem>;
  using P = lensing::Prior<double>;
  auto net = std::make_shared<Decoder<T, Mem>>(nn::Shape4{1, 3, 1, 1}, nn::Dense<T, Mem>(3, 16), nn::Tanh<T, Mem>(),
                                               nn::Dense<T, Mem>(16, 36), nn::Softplus<T, Mem>(),
                                               nn::Reshape<T, Mem>(1, 6, 6));
  net->initialize(8);
  lensing::PixelGrid<T> const sgrid(6, 6, T(0.1));
  lensing::Decoded<Decoder<T, Mem>, T> const dec(net, 3, sgrid);
  double const z[3] = {0.1, -0.2, 0.3};
  double gz[3];
  (void)dec.decode(space, z, 2.0);
  lensing::View2D<T, Mem> gbar("gbar", 6, 6);
  (void)dec.vjp(space, gbar, 2.0, gz);

  lensing::Observation<T, Mem, Psf> obs{lensing::PixelGrid<T>(10, 10, T(0.1), 2), Psf(0.2, 0.1, 10, 10)};
  lensing::View2D<T, Mem> data("data", 10, 10), noise("noise", 10, 10), mask("mask", 10, 10);
  Kokkos::deep_copy(noise, T(0.05));
  Kokkos::deep_copy(mask, T(1));
  lensing::GaussianLikelihood<Model<T>, Mem, Psf> like(obs, data, noise, mask);
  lensing::ParameterTable<double, Kokkos::HostSpace> t;
  t.add("lens0.theta_E", P::uniform(0.3, 1.2))
      .add("lens0.e1", P::normal(0, 0.2))
      .add("lens0.e2", P::normal(0, 0.2))
      .add("lens0.center_x", P::normal(0, 0.1))
      .add("lens0.center_y", P::normal(0, 0.1))
      .add("lens1.gamma1", P::normal(0, 0.05))
      .add("lens1.gamma2", P::normal(0, 0.05))
      .add("lens1.ra_0", P::fixed(0))
      .add("lens1.dec_0", P::fixed(0));
  for (auto amp : {P::log_uniform(0.1, 10), P::fixed(2.0)}) {
    lensing::DecodedSourcePosterior<Model<T>, Mem, Psf, Decoder<T, Mem>> const post(like, t, dec, amp);
    auto const q = post.initial_point({0.6, 0.05, -0.05, 0.01, 0.02, 0.01, -0.01, 0.0, 0.0}, {0.1, -0.2, 0.3}, 2.0);
    lensing::View1D<double, Kokkos::HostSpace> qv("q", q.size()), gv("g", q.size());
    for (std::size_t i = 0; i < q.size(); ++i)
      qv(i) = q[i];
    (void)post.value_and_gradient(space, qv, gv);
    (void)post.clone().value_and_gradient(space, qv, gv);
  }
}

// The spiral galaxies, drawn and rendered in a kernel.
template <class Space, class S>
void spirals(Space const& space) {
  using Mem = typename Space::memory_space;
  lensing::simulate::SpiralGalaxyModel<S> m;
  m.galaxy.r_min = 0.2;
  m.galaxy.r_max = 0.3;
  lensing::View3D<S, Mem> stamps("stamps", 2, 8, 8);
  lensing::View1D<lensing::simulate::SpiralGalaxy<S>, Mem> galaxies("galaxies", 2);
  lensing::simulate::render_spiral_galaxies(space, m, stamps, S(0.05), galaxies, 1, 0, 2);
  space.fence();
}
}  // namespace

LENSING_INSTANTIATE(instantiate_nn_generative) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    using Space = std::decay_t<decltype(space)>;
    dense_and_recurrent<Space, S>(space);
    graphs<Space, S, nn::LeakyReluOp>(space);
    graphs<Space, S, nn::TanhOp>(space);
    wgan<Space, S>(space);
    decoded<Space, S>(space);
    spirals<Space, S>(space);
    // The IAF fit: the flow runs on the host in double, the density on `space`.
    nn::IafVariationalOptions io;
    io.steps = 1;
    io.hidden = 4;
    io.max_iterations = 3;
    io.num_mc = 2;
    io.num_elbo_draws = 4;
    (void)nn::fit_variational_iaf(space, KernelGaussian<S, typename Space::memory_space>{2}, io);
  });
#if !defined(LENSING_INSTANTIATE_DEVICE_ONLY)
  // Digits are rendered on the host only (no kernels).
  std::vector<float> img(16 * 16);
  lensing::simulate::render_digit(lensing::simulate::make_digit(3, 1, 0), 16, img.data());
#endif
}
