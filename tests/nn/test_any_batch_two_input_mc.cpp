// Networks at any batch size (one network run at 8, 3, 8 against fresh
// networks of each size, bitwise, forward and backward), shape inference
// (blocks built without input shapes), the two-input combinator (gradients
// against central differences for both inputs and the parameters) and
// MC-dropout prediction (deterministic passes, the analytic predictive
// moments of a linear model, the aleatoric/epistemic split), and the VAE's
// reparameterisation at any batch size.
#include <lensing/nn/activation.hpp>
#include <lensing/nn/concat.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/dropout.hpp>
#include <lensing/nn/flatten.hpp>
#include <lensing/nn/layer_norm.hpp>
#include <lensing/nn/loss_gaussian_full.hpp>
#include <lensing/nn/mc_predict.hpp>
#include <lensing/nn/pooling.hpp>
#include <lensing/nn/residual.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/serialize.hpp>
#include <lensing/nn/two_input.hpp>
#include <lensing/nn/vae.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {

// Conv – BN – ELU – pre-activated bottleneck (projection, stride 2) – Concat
// of two unshaped Sequentials – AvgPool – Flatten – LayerNorm – Dense: every
// layer with a batch-dependent buffer (conv workspaces, BN batch statistics,
// Residual, Concat and Sequential activations, LayerNorm statistics).  No
// input shape is written anywhere: the shapes come from the first input.
template <class S, class Mem>
auto build_net() {
  using C = nn::Conv2D<S, Mem>;
  using BN = nn::BatchNorm<S, Mem>;
  using E = nn::ELU<S, Mem>;
  return nn::make_sequential(C(2, 4, 3, 1, 1), BN(4), E(), nn::make_preact_bottleneck<S, Mem>(4, 2, 6, 2),
                             nn::make_concat(nn::make_sequential(C(6, 2, 1)), nn::make_sequential(BN(6), E())),
                             nn::AvgPool2D<S, Mem>(2), nn::Flatten<S, Mem>(), nn::LayerNorm<S, Mem>(32),
                             nn::Dense<S, Mem>(32, 3));
}

// Forward (and in training mode backward with a fixed output gradient) of
// `net` at x: output, parameter gradients and dx, as host vectors.
struct Pass {
  std::vector<double> y, dp, dx;
};
template <class Space, class Net, class T>
Pass run(Space const& space, Net& net, T const& x, bool backward) {
  Pass p;
  auto const y = net.forward(space, x);
  p.y = lt::host_values(y);
  if (backward) {
    lt::fill_normal(net.output_gradient(), 99);
    T dx("dx", x.layout());
    net.backward(space, x, dx);
    p.dp = lt::host_values(net.gradients());
    p.dx = lt::host_values(dx);
  }
  return p;
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("nn: one network runs at any batch size, as fresh networks of each size", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using T = nn::Tensor<S, Mem>;
  Space space;
  T x8("x8", 8, 2, 8, 8), x3("x3", 3, 2, 8, 8);
  lt::fill_normal(x8, 1);
  lt::fill_normal(x3, 2);
  auto net = build_net<S, Mem>();
  CHECK(net.input_shape() == nn::Shape4{});
  net.initialize(7);
  // The result for a batch must not depend on the batches run before: the
  // network alternating 8, 3, 8 equals a fresh network (same weights) for
  // each batch, bitwise (same operations on the same values).  Inference
  // first (the training forwards below move BatchNorm's running statistics).
  for (bool training : {false, true}) {
    net.set_training(training);
    std::vector<Pass> reused;
    void const* data8 = nullptr;
    for (int k = 0; k < 3; ++k) {
      T const& x = k == 1 ? x3 : x8;
      reused.push_back(run(space, net, x, training));
      CHECK(net.input_shape() == nn::shape_of(x));
      CHECK(net.output_shape() == nn::Shape4{int(x.extent(0)), 3, 1, 1});
      CHECK(net.capacity() == 8);
      // Back at 8: the same buffers (no reallocation).
      if (k == 0) data8 = net.output().data();
      if (k == 2) CHECK(net.output().data() == data8);
    }
    for (int k = 0; k < 3; ++k) {
      T const& x = k == 1 ? x3 : x8;
      // A fresh network prepared for this batch by the shaped constructor.
      auto fresh = build_net<S, Mem>();
      fresh.initialize(7);
      fresh.prepare(nn::shape_of(x));
      fresh.set_training(training);
      Pass const f = run(space, fresh, x, training);
      CAPTURE(training);
      CAPTURE(k);
      CHECK(reused[std::size_t(k)].y == f.y);
      CHECK(reused[std::size_t(k)].dp == f.dp);
      CHECK(reused[std::size_t(k)].dx == f.dx);
    }
  }
  // Parameters are untouched by a change of batch size (inference mode: no state moves).
  net.set_training(false);
  auto const p0 = lt::host_values(net.parameters());
  auto const s0 = lt::host_values(net.state());
  net.forward(space, x3);
  net.forward(space, x8);
  CHECK(lt::host_values(net.parameters()) == p0);
  CHECK(lt::host_values(net.state()) == s0);
}

LENSING_TEST_CASE_TEMPLATE("nn: shapes are inferred; shaped and unshaped blocks agree", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using C = nn::Conv2D<double, Mem>;
  Space space;
  // An unshaped residual unit takes any (N, 4, H, W) input.
  auto unit = nn::make_preact_bottleneck<double, Mem>(4, 2, 6, 2);
  CHECK(unit.output_shape({5, 4, 9, 7}) == nn::Shape4{5, 6, 5, 4});
  CHECK(unit.output_shape({1, 4, 4, 4}) == nn::Shape4{1, 6, 2, 2});
  CHECK_THROWS_AS(unit.output_shape({1, 3, 4, 4}), std::invalid_argument);
  // Its gradients at two input shapes, one unit object (re-prepared between).
  unit.initialize(3);
  lt::fill_normal(unit.parameters(), 4, 0.5);
  lt::expect_gradients(space, unit, {2, 4, 6, 6}, "unshaped bottleneck at (2, 4, 6, 6)");
  lt::expect_gradients(space, unit, {3, 4, 5, 5}, "the same bottleneck at (3, 4, 5, 5)");
  // Shaped (the hand-written shape) and unshaped builders: same type, same values.
  nn::Shape4 const in{2, 4, 6, 6};
  auto shaped = nn::make_preact_bottleneck<double, Mem>(in, 2, 6, 2);
  static_assert(std::is_same<decltype(shaped), decltype(unit)>::value, "one type for both builders");
  shaped.initialize(3);
  nn::Tensor<double, Mem> x("x", 2, 4, 6, 6), ya("ya", 2, 6, 3, 3), yb("yb", 2, 6, 3, 3);
  lt::fill_normal(x, 5);
  lt::fill_normal(shaped.parameters(), 4, 0.5);
  shaped.forward(space, x, ya);
  unit.forward(space, x, yb);
  CHECK(lt::host_values(ya) == lt::host_values(yb));
  // An unshaped Sequential names the layer that cannot take its first input.
  auto seq = nn::make_sequential(C(3, 2, 3), nn::Flatten<double, Mem>(), nn::Dense<double, Mem>(8, 1));
  nn::Tensor<double, Mem> ok("ok", 4, 3, 4, 4), bad("bad", 4, 3, 5, 5);
  CHECK(nn::shape_of(seq.forward(space, ok)) == nn::Shape4{4, 1, 1, 1});
  CHECK(lt::error_message([&] {
          seq.forward(space, bad);
        }).find("lensing::nn::Sequential: layer 2 cannot take input (4, 18, 1, 1)") == 0);
  // The failed forward left the network as it was.
  CHECK(seq.input_shape() == nn::Shape4{4, 3, 4, 4});
  // An identity shortcut across a width change is refused for any input.
  auto widen = nn::Residual<decltype(nn::make_sequential(C(3, 5, 3, 1, 1)))>(nn::make_sequential(C(3, 5, 3, 1, 1)));
  CHECK_THROWS_AS(widen.output_shape({1, 3, 4, 4}), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("nn: TwoInput forward, batch sizes and gradients for both inputs", Config,
                           lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using T = nn::Tensor<double, Mem>;
  using V = nn::ParamVector<double, Mem>;
  Space space;
  // Image branch (N, 1, 5, 5) -> (N, 2, 2, 2); vector branch (N, 3) -> (N, 4); head (N, 12) -> (N, 2).
  auto image = nn::make_sequential(nn::Conv2D<double, Mem>(1, 2, 3, 1, 1), nn::Tanh<double, Mem>(),
                                   nn::AvgPool2D<double, Mem>(2));
  auto vec = nn::make_sequential(nn::Dense<double, Mem>(3, 4), nn::Tanh<double, Mem>());
  auto head = nn::make_sequential(nn::Dense<double, Mem>(12, 5), nn::Tanh<double, Mem>(), nn::Dense<double, Mem>(5, 2));
  auto net = nn::make_two_input(image, vec, head);
  net.initialize(11);
  CHECK(net.num_params() == image.num_params() + vec.num_params() + head.num_params());
  CHECK(net.output_shape({3, 1, 5, 5}, {3, 3, 1, 1}) == nn::Shape4{3, 2, 1, 1});
  CHECK_THROWS_AS(net.output_shape({3, 1, 5, 5}, {2, 3, 1, 1}), std::invalid_argument);
  T x1("x1", 3, 1, 5, 5), x2("x2", 3, 3, 1, 1), r("r", 3, 2, 1, 1);
  lt::fill_normal(x1, 1);
  lt::fill_normal(x2, 2);
  lt::fill_normal(r, 3);
  // The forward is Head([flatten(A(x1)), flatten(B(x2))]): the branches
  // and the head (bound to the network's parameters) run separately.
  auto const out = lt::host_values(net.forward(space, x1, x2));
  {
    auto ya = lt::host_values(net.first().forward(space, x1));
    auto yb = lt::host_values(net.second().forward(space, x2));
    std::vector<double> z;
    for (int n = 0; n < 3; ++n) {
      z.insert(z.end(), ya.begin() + n * 8, ya.begin() + (n + 1) * 8);
      z.insert(z.end(), yb.begin() + n * 4, yb.begin() + (n + 1) * 4);
    }
    T zt("z", 3, 12, 1, 1);
    lt::set_values(zt, z);
    CHECK(lt::host_values(net.head().forward(space, zt)) == out);
  }
  // Another batch size, then back: the same output.
  T y1("y1", 5, 1, 5, 5), y2("y2", 5, 3, 1, 1);
  lt::fill_normal(y1, 4);
  lt::fill_normal(y2, 5);
  CHECK(nn::shape_of(net.forward(space, y1, y2)) == nn::Shape4{5, 2, 1, 1});
  CHECK(lt::host_values(net.forward(space, x1, x2)) == out);
  // Gradients of L = Σ r ⊙ f(x1, x2) against central differences (error
  // model of nn/gradient_check.hpp: smooth layers, O(1) inputs, h = 1e-5 in
  // double: below 1e-7).
  T dx1("dx1", 3, 1, 5, 5), dx2("dx2", 3, 3, 1, 1);
  Kokkos::deep_copy(net.output_gradient(), r);
  net.backward(space, x1, x2, dx1, dx2);
  auto const g1 = lt::host_values(dx1), g2 = lt::host_values(dx2), gp = lt::host_values(net.gradients());
  auto const hr = lt::host_values(r);
  auto const loss = [&]() {
    auto const y = lt::host_values(net.forward(space, x1, x2));
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i)
      s += hr[i] * y[i];
    return s;
  };
  auto const check = [&](auto const& view, std::vector<double> const& grad, char const* what) {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), view);
    auto const at = [&](long k, double v) {
      double const v0 = h.data()[k];
      h.data()[k] = v;
      Kokkos::deep_copy(view, h);
      double const l = loss();
      h.data()[k] = v0;
      Kokkos::deep_copy(view, h);
      return l;
    };
    auto const res = lensing::check_partials(
        lt::pick(long(h.size()), 60), [&](long k) { return h.data()[k]; }, [&](long k) { return grad[std::size_t(k)]; },
        at, 1e-5);
    MESSAGE("TwoInput d/d" << std::string(what) << " on " << std::string(Space::name()) << ": err " << res.max_error
                           << " (" << res.checked << " checked)");
    CHECK(res.checked > 0);
    CHECK(res.max_error < 1e-7);
  };
  check(x1, g1, "x1");
  check(x2, g2, "x2");
  check(V(net.parameters()), gp, "parameters");
  // Without dx: the same parameter gradients.
  net.forward(space, x1, x2);
  Kokkos::deep_copy(net.output_gradient(), r);
  net.backward(space, x1, x2);
  CHECK(lt::host_values(net.gradients()) == gp);
  // Weights round trip (serialize.hpp walks the branches and the head).
  std::string const path = (std::filesystem::temp_directory_path() /
                            ("lensing_nn_two_input_" + std::to_string(::getpid()) + std::string(Space::name())))
                               .string();
  nn::save_weights(net, path);
  auto other = nn::make_two_input(image, vec, head);
  other.initialize(12);
  nn::load_weights(other, path);
  std::filesystem::remove(path);
  CHECK(lt::host_values(other.parameters()) == lt::host_values(net.parameters()));
  CHECK(lt::host_values(other.forward(space, x1, x2)) == out);
  // mc_predict of a two-input network (no dropout layer here: every pass is
  // the forward, so the mean is it exactly and the covariance 0).
  auto const mc = nn::mc_predict(space, net, x1, x2, 3, 1);
  CHECK(lt::host_values(mc.mean) == out);
  for (double c : lt::host_values(mc.cov))
    CHECK(c == 0.0);
}

LENSING_TEST_CASE_TEMPLATE("nn: Reparameterize takes any batch size", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using T = nn::Tensor<S, Mem>;
  Space space;
  // ε of draw k, element i depends only on (seed, k, i): a sampler built for
  // batch 2 that draws at batch 5 then 2 gives, at its second draw, the ε
  // and z of a sampler that drew twice at batch 2.
  T enc5("enc5", 5, 6, 1, 1), z5("z5", 5, 3, 1, 1), enc2("enc2", 2, 6, 1, 1), z2("z2", 2, 3, 1, 1);
  T w2("w2", 2, 3, 1, 1), d2("d2", 2, 6, 1, 1), e2("e2", 2, 6, 1, 1);
  lt::fill_normal(enc5, 1, 0.5);
  lt::fill_normal(enc2, 2, 0.5);
  nn::Reparameterize<S, Mem> grown(2, 3, 17), fixed(2, 3, 17);
  grown.sample(space, enc5, z5);
  CHECK(grown.batch() == 5);
  CHECK(grown.eps().extent(0) == 5);
  grown.sample(space, enc2, z2);
  CHECK(grown.batch() == 2);
  fixed.sample(space, enc2, w2);
  fixed.sample(space, enc2, w2);
  CHECK(lt::host_values(z2) == lt::host_values(w2));
  CHECK(lt::host_values(grown.eps()) == lt::host_values(fixed.eps()));
  // backward follows the last sample's batch.
  lt::fill_normal(w2, 3);
  grown.backward(space, enc2, w2, d2);
  fixed.backward(space, enc2, w2, e2);
  CHECK(lt::host_values(d2) == lt::host_values(e2));
  CHECK_THROWS_AS(grown.backward(space, enc5, z5, enc5), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("nn: mc_predict without dropout is the single forward with zero covariance", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using T = nn::Tensor<S, Mem>;
  Space space;
  auto net = nn::make_sequential(nn::Dense<S, Mem>(6, 8), nn::Tanh<S, Mem>(), nn::Dropout<S, Mem>(0.3),
                                 nn::Dense<S, Mem>(8, 4));
  net.initialize(5);
  T x("x", 3, 6, 1, 1);
  lt::fill_normal(x, 6);
  auto const r = nn::mc_predict(space, net, x, 7, 1, false);
  CHECK(r.passes == 7);
  net.set_training(false);
  auto const y = lt::host_values(net.forward(space, x));
  // Welford's update leaves the mean exactly equal to equal values, the co-moment exactly 0.
  CHECK(lt::host_values(r.mean) == y);
  for (double c : lt::host_values(r.cov))
    CHECK(c == 0.0);
  // With dropout: deterministic per seed, the seed matters, the network's weights untouched.
  auto const p0 = lt::host_values(net.parameters());
  auto const a = nn::mc_predict(space, net, x, 5, 42);
  auto const b = nn::mc_predict(space, net, x, 5, 42);
  auto const c = nn::mc_predict(space, net, x, 5, 43);
  CHECK(lt::host_values(a.mean) == lt::host_values(b.mean));
  CHECK(lt::host_values(a.cov) == lt::host_values(b.cov));
  CHECK(lt::host_values(a.mean) != lt::host_values(c.mean));
  CHECK(lt::host_values(net.parameters()) == p0);
  // MC dropout is off afterwards: a plain forward is the deterministic one.
  CHECK(lt::host_values(net.forward(space, x)) == y);
  CHECK_THROWS_AS(nn::mc_predict(space, net, x, 0, 1), std::invalid_argument);

  // Heteroscedastic outputs without dropout: epistemic exactly 0, aleatoric
  // the single pass's covariance.
  auto diag = nn::make_sequential(nn::Dense<S, Mem>(6, 8), nn::Tanh<S, Mem>(), nn::Dropout<S, Mem>(0.3),
                                  nn::Dense<S, Mem>(8, 4));  // D = 2: (μ, log σ²)
  diag.initialize(8);
  auto const g = nn::mc_predict_gaussian(space, diag, x, nn::GaussianOutput::diagonal, 4, 1, false);
  diag.set_training(false);
  auto const yd = lt::host_values(diag.forward(space, x));
  auto const gm = lt::host_values(g.mean), ga = lt::host_values(g.aleatoric), ge = lt::host_values(g.epistemic),
             gt = lt::host_values(g.total);
  for (int n = 0; n < 3; ++n)
    for (int i = 0; i < 2; ++i) {
      CHECK(gm[std::size_t(n * 2 + i)] == yd[std::size_t(n * 4 + i)]);
      for (int j = 0; j < 2; ++j) {
        std::size_t const e = std::size_t(n * 4 + i * 2 + j);
        // Σ in double from the same predicted log σ² (1e-14: exp's rounding).
        double const want = i == j ? std::exp(yd[std::size_t(n * 4 + 2 + i)]) : 0.0;
        CHECK(std::abs(ga[e] - want) <= 1e-14 * want);
        CHECK(ge[e] == 0.0);
        CHECK(gt[e] == ga[e]);
      }
    }
  // Full covariance (D = 2: 2 + 3 outputs) against gaussian_full_unpack of a forward.
  auto full = nn::make_sequential(nn::Dense<S, Mem>(6, 8), nn::Tanh<S, Mem>(), nn::Dense<S, Mem>(8, 5));
  full.initialize(9);
  auto const gf = nn::mc_predict_gaussian(space, full, x, nn::GaussianOutput::full, 3, 1);
  lensing::View2D<double, Kokkos::HostSpace> um("um", 3, 2);
  lensing::View3D<double, Kokkos::HostSpace> uc("uc", 3, 2, 2);
  nn::gaussian_full_unpack(full.forward(space, x), um, uc);
  // Both invert the same factor in double (different operation order): 1e-12 relative.
  CHECK(lt::rel_diff(lt::host_values(gf.aleatoric), lt::host_values(uc)) < 1e-12);
  CHECK(lt::host_values(gf.mean) == lt::host_values(um));
  CHECK_THROWS_AS(nn::mc_predict_gaussian(space, full, x, nn::GaussianOutput::diagonal, 3, 1), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("nn: MC-dropout moments of a linear model match the analytic ones", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using T = nn::Tensor<S, Mem>;
  Space space;
  // y = W (m ⊙ x) + b, m_i = 1/(1−p) w.p. 1−p and 0 otherwise, independent:
  // E[y] = W x + b;  Cov[y]_jk = Σ_i W_ji W_ki x_i² Var(m_i), Var(m_i) = p/(1−p).
  int const f = 24, k = 3, n = 2, passes = 4000;
  double const p = 0.25;
  // Built for batch 7, predicted at batch 2 (any batch size).
  auto net = nn::make_sequential(nn::Shape4{7, f, 1, 1}, nn::Dropout<S, Mem>(p), nn::Dense<S, Mem>(f, k));
  net.initialize(3);
  lt::fill_normal(net.parameters(), 4, 0.5);
  T x("x", n, f, 1, 1);
  lt::fill_normal(x, 5);
  auto const r = nn::mc_predict(space, net, x, passes, 2024);
  auto const w = lt::host_values(net.parameters());  // W (k, f) row-major, then b (k)
  auto const hx = lt::host_values(x);
  auto const mean = lt::host_values(r.mean), cov = lt::host_values(r.cov);
  double const vm = p / (1 - p);
  double worst_mean = 0, worst_cov = 0;
  for (int s = 0; s < n; ++s) {
    std::vector<double> mu(k), c(k * k, 0.0);
    for (int j = 0; j < k; ++j) {
      mu[std::size_t(j)] = w[std::size_t(k * f + j)];
      for (int i = 0; i < f; ++i)
        mu[std::size_t(j)] += w[std::size_t(j * f + i)] * hx[std::size_t(s * f + i)];
      for (int l = 0; l < k; ++l)
        for (int i = 0; i < f; ++i)
          c[std::size_t(j * k + l)] += w[std::size_t(j * f + i)] * w[std::size_t(l * f + i)] *
                                       hx[std::size_t(s * f + i)] * hx[std::size_t(s * f + i)] * vm;
    }
    // Error model: the MC mean has standard deviation sqrt(C_jj / T); the
    // empirical covariance entry sqrt((C_jj C_ll + C_jl²) / T) for a nearly
    // Gaussian y (a sum of 24 independent terms whose excess kurtosis is
    // (1 − 6p(1−p))/(p(1−p)) ≈ 0.67 / 24 after summing: negligible).  Bounds at
    // 5 standard deviations, plus float rounding of the passes (1e-5 relative).
    double const fl = std::is_same<S, float>::value ? 1e-5 : 1e-12;
    for (int j = 0; j < k; ++j) {
      double const sd = std::sqrt(c[std::size_t(j * k + j)] / passes);
      double const err = std::abs(mean[std::size_t(s * k + j)] - mu[std::size_t(j)]);
      worst_mean = std::max(worst_mean, err / sd);
      CHECK(err <= 5 * sd + fl * std::abs(mu[std::size_t(j)]));
      for (int l = 0; l < k; ++l) {
        double const cjl = c[std::size_t(j * k + l)];
        double const sdc = std::sqrt((c[std::size_t(j * k + j)] * c[std::size_t(l * k + l)] + cjl * cjl) / passes);
        double const e = std::abs(cov[std::size_t(s * k * k + j * k + l)] - cjl);
        worst_cov = std::max(worst_cov, e / sdc);
        CHECK(e <= 5 * sdc + fl * std::abs(cjl));
      }
    }
  }
  MESSAGE("MC dropout on " << std::string(Space::name()) << ": worst mean error " << worst_mean
                           << " sd, worst covariance error " << worst_cov << " sd");
  // The heteroscedastic split on the same network read as (μ, log σ²)
  // would need an even output: a 3-output net is refused.
  CHECK_THROWS_AS(nn::mc_predict_gaussian(space, net, x, nn::GaussianOutput::diagonal, 2, 1), std::invalid_argument);
  // Its epistemic part is mc_predict's covariance of the means: a 4-output
  // net (μ, log σ²) for D = 2 gives, for the same seed, the same mean and the
  // same covariance block, and total = aleatoric + epistemic.
  auto het = nn::make_sequential(nn::Dropout<S, Mem>(p), nn::Dense<S, Mem>(f, 4));
  het.initialize(6);
  auto const m4 = nn::mc_predict(space, het, x, 50, 9);
  auto const g4 = nn::mc_predict_gaussian(space, het, x, nn::GaussianOutput::diagonal, 50, 9);
  auto const mm = lt::host_values(m4.mean), mc = lt::host_values(m4.cov);
  auto const gm = lt::host_values(g4.mean), ge = lt::host_values(g4.epistemic), ga = lt::host_values(g4.aleatoric),
             gt = lt::host_values(g4.total);
  for (int s = 0; s < n; ++s)
    for (int i = 0; i < 2; ++i) {
      CHECK(gm[std::size_t(s * 2 + i)] == mm[std::size_t(s * 4 + i)]);
      for (int j = 0; j < 2; ++j) {
        std::size_t const e = std::size_t(s * 4 + i * 2 + j);
        CHECK(ge[e] == mc[std::size_t(s * 16 + i * 4 + j)]);
        CHECK(gt[e] == ga[e] + ge[e]);
      }
      CHECK(ge[std::size_t(s * 4 + i * 3)] > 0);
    }
}
