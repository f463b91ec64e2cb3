// LayerNorm, Reshape, Concat and the pre-activated basic residual unit:
// forward values against hand-computed cases and against the branches run
// separately, every backward against central finite differences
// (gradient_check.hpp), and errors on bad shapes.
#include <lensing/nn/activation.hpp>
#include <lensing/nn/concat.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/conv_transpose2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/flatten.hpp>
#include <lensing/nn/layer_norm.hpp>
#include <lensing/nn/reshape.hpp>
#include <lensing/nn/residual.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {}  // namespace

//----------------------------------------------------------------------------
// LayerNorm.

LENSING_TEST_CASE_TEMPLATE("nn: LayerNorm forward values and normalisation", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  double const tol = std::is_same<S, float>::value ? 2e-6 : 1e-13;
  // Two samples of 4 features: [1, 2, 3, 4] (μ 2.5, σ² 1.25) and [0, 0, 0, 2] (μ 0.5, σ² 0.75);
  // γ = [1, 2, 1, 1], β = [0, 0, 1, −1], ε = 1e-5.
  {
    nn::LayerNorm<S, Mem> ln(4);
    lt::set_values(ln.parameters(), {1, 2, 1, 1, 0, 0, 1, -1});
    nn::Tensor<S, Mem> x("x", 2, 4, 1, 1), y("y", 2, 4, 1, 1);
    lt::set_values(x, {1, 2, 3, 4, 0, 0, 0, 2});
    ln.forward(space, x, y);
    space.fence();
    double const a = 1 / std::sqrt(1.25 + 1e-5), b = 1 / std::sqrt(0.75 + 1e-5);
    std::vector<double> const want = {-1.5 * a, -1.0 * a, 0.5 * a + 1,  1.5 * a - 1,
                                      -0.5 * b, -1.0 * b, -0.5 * b + 1, 1.5 * b - 1};
    auto const v = lt::host_values(y);
    for (int i = 0; i < 8; ++i)
      CHECK(v[i] == doctest::Approx(want[i]).epsilon(tol).scale(1));
  }
  // Images: with γ = 1, β = 0 every sample has mean 0 and variance σ²/(σ²+ε) over its C·H·W values;
  // per-element affine: γ, β of shape (C, H, W).
  {
    nn::Shape4 const s{3, 2, 3, 4};
    nn::LayerNorm<S, Mem> ln(2, 3, 4);
    CHECK(ln.num_params() == 2 * 24);
    CHECK(ln.num_state() == 0);
    nn::Tensor<S, Mem> x("x", s.n, s.c, s.h, s.w), y("y", s.n, s.c, s.h, s.w);
    lt::fill_normal(x, 3, 2.0);
    ln.forward(space, x, y);
    space.fence();
    auto const xv = lt::host_values(x), yv = lt::host_values(y);
    for (int b = 0; b < s.n; ++b) {
      double m = 0, v = 0, my = 0, vy = 0;
      for (int i = 0; i < 24; ++i) {
        m += xv[b * 24 + i] / 24;
        my += yv[b * 24 + i] / 24;
      }
      for (int i = 0; i < 24; ++i) {
        v += (xv[b * 24 + i] - m) * (xv[b * 24 + i] - m) / 24;
        vy += (yv[b * 24 + i] - my) * (yv[b * 24 + i] - my) / 24;
      }
      CHECK(std::abs(my) < 10 * tol);
      CHECK(vy == doctest::Approx(v / (v + 1e-5)).epsilon(20 * tol));
    }
    // γ_i, β_i act element-wise: doubling γ doubles y − β.
    std::vector<double> p(48, 0.0);
    for (int i = 0; i < 24; ++i) {
      p[i] = 2.0;
      p[24 + i] = 0.25 * i;
    }
    lt::set_values(ln.parameters(), p);
    nn::Tensor<S, Mem> y2("y2", s.n, s.c, s.h, s.w);
    ln.forward(space, x, y2);
    space.fence();
    auto const y2v = lt::host_values(y2);
    for (int b = 0; b < s.n; ++b)
      for (int i = 0; i < 24; ++i)
        CHECK(y2v[b * 24 + i] == doctest::Approx(2 * yv[b * 24 + i] + 0.25 * i).epsilon(10 * tol).scale(1));
  }
  // Errors.
  using LN = nn::LayerNorm<S, Mem>;
  CHECK(lt::error_message([] {
          LN(4).output_shape({2, 5, 1, 1});
        }).find("lensing::nn::LayerNorm: input (2, 5, 1, 1) does not have the normalised per-sample shape (4, 1, 1)") ==
        0);
  CHECK_THROWS_AS(LN(2, 3, 4).output_shape({2, 2, 4, 3}), std::invalid_argument);
  CHECK_THROWS_AS(LN(0), std::invalid_argument);
  CHECK_THROWS_AS(LN(3, 1, 1, 0.0), std::invalid_argument);
  LN ln(3);
  nn::Tensor<S, Mem> x("x", 2, 3, 1, 1), ybad("ybad", 2, 4, 1, 1);
  CHECK_THROWS_AS(ln.forward(space, x, ybad), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("nn: LayerNorm gradients", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  nn::LayerNorm<double, Mem> img(3, 2, 2);
  lt::fill_normal(img.parameters(), 5, 1.0);
  lt::expect_gradients(space, img, nn::Shape4{3, 3, 2, 2}, "LayerNorm (3, 2, 2)");
  nn::LayerNorm<double, Mem> vec(5, 1, 1, 1e-3);
  lt::fill_normal(vec.parameters(), 6, 1.0);
  lt::expect_gradients(space, vec, nn::Shape4{4, 5, 1, 1}, "LayerNorm 5, eps 1e-3", 3.0);
  // One feature: x̂ = 0, y = β, dx = 0.
  nn::LayerNorm<double, Mem> one(1);
  lt::fill_normal(one.parameters(), 7, 1.0);
  lt::expect_gradients(space, one, nn::Shape4{3, 1, 1, 1}, "LayerNorm 1");
}

//----------------------------------------------------------------------------
// Reshape.

LENSING_TEST_CASE_TEMPLATE("nn: Reshape shapes, values, gradients and errors", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using R = nn::Reshape<S, Mem>;
  Space space;
  CHECK(R(2, -1, 3).output_shape({2, 12, 1, 1}) == nn::Shape4{2, 2, 2, 3});
  CHECK(R(-1, 1, 1).output_shape({3, 2, 3, 4}) == nn::Shape4{3, 24, 1, 1});
  CHECK(R(4, 3, 2).output_shape({1, 2, 3, 4}) == nn::Shape4{1, 4, 3, 2});
  nn::Tensor<S, Mem> x("x", 2, 12, 1, 1), y("y", 2, 2, 2, 3), dx("dx", 2, 12, 1, 1);
  lt::fill_normal(x, 1);
  R r(2, 2, 3);
  r.forward(space, x, y);
  nn::ParamVector<S, Mem> none("none", 0);
  r.backward(space, x, y, y, dx, none);
  space.fence();
  auto const xv = lt::host_values(x);
  CHECK(lt::host_values(y) == xv);   // element (n, c, h, w) at the same flat index
  CHECK(lt::host_values(dx) == xv);  // backward with dy = y copies back
  auto const hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
  CHECK(double(hy(1, 1, 0, 2)) == xv[12 + 1 * 6 + 0 * 3 + 2]);
  if constexpr (std::is_same<S, double>::value) {
    lt::expect_gradients(space, R(3, -1, 2), nn::Shape4{2, 4, 3, 1}, "Reshape (3, -1, 2)");
  }
  // A decoder: Dense -> Reshape -> ConvTranspose2D builds and runs.
  auto net = nn::make_sequential(nn::Shape4{2, 5, 1, 1}, nn::Dense<S, Mem>(5, 12), R(3, 2, 2),
                                 nn::ConvTranspose2D<S, Mem>(3, 1, 2, 2));
  CHECK(net.output_shape() == nn::Shape4{2, 1, 4, 4});
  // Errors.
  CHECK(lt::error_message([] {
          R(5, 1, 1).output_shape({2, 12, 1, 1});
        }).find("lensing::nn::Reshape: input (2, 12, 1, 1) has 12 values per sample") == 0);
  CHECK_THROWS_AS(R(5, -1, 1).output_shape({2, 12, 1, 1}), std::invalid_argument);
  CHECK_THROWS_AS(R(-1, -1, 2), std::invalid_argument);
  CHECK_THROWS_AS(R(0, 1, 1), std::invalid_argument);
  CHECK_THROWS_AS(R(2, -2, 1), std::invalid_argument);
  nn::Tensor<S, Mem> ybad("ybad", 2, 3, 2, 2);
  CHECK_THROWS_AS(r.forward(space, x, ybad), std::invalid_argument);
}

//----------------------------------------------------------------------------
// Concat.

LENSING_TEST_CASE_TEMPLATE("nn: Concat equals its branches run separately", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using C = nn::Conv2D<S, Mem>;
  using T = nn::Tensor<S, Mem>;
  Space space;
  double const tol = std::is_same<S, float>::value ? 1e-6 : 1e-15;
  nn::Shape4 const in{2, 2, 5, 4};
  // Branch A: a 3x3 convolution (3 channels); branch B: BN-ELU-1x1 convolution (2 channels).
  auto branch_b = nn::make_sequential(in, nn::BatchNorm<S, Mem>(2), nn::ELU<S, Mem>(), C(2, 2, 1));
  auto cat = nn::make_concat(C(2, 3, 3, 1, 1), branch_b);
  cat.initialize(3);
  lt::fill_normal(cat.parameters(), 4, 0.5);
  CHECK(cat.output_shape(in) == nn::Shape4{2, 5, 5, 4});
  CHECK(cat.num_params() == (3 * 2 * 9 + 3) + (2 + 2 + 2 * 2 + 2));
  CHECK(cat.num_state() == 4);
  cat.prepare(in);
  T x("x", 2, 2, 5, 4), y("y", 2, 5, 5, 4), dy("dy", 2, 5, 5, 4), dx("dx", 2, 2, 5, 4);
  lt::fill_normal(x, 1);
  lt::fill_normal(dy, 2);
  nn::ParamVector<S, Mem> g("g", cat.num_params());
  cat.forward(space, x, y);
  cat.backward(space, x, y, dy, dx, g);
  space.fence();
  // The same branches, bound to the same parameters, run separately.
  auto& a = cat.first();
  auto& b = cat.second();
  T ya("ya", 2, 3, 5, 4), yb("yb", 2, 2, 5, 4), dya("dya", 2, 3, 5, 4), dyb("dyb", 2, 2, 5, 4);
  T dxa("dxa", 2, 2, 5, 4), dxb("dxb", 2, 2, 5, 4);
  nn::ParamVector<S, Mem> ga("ga", a.num_params()), gb("gb", b.num_params());
  auto const dyv = lt::host_values(dy);
  std::vector<double> va, vb;
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 5; ++c)
      for (int i = 0; i < 20; ++i)
        (c < 3 ? va : vb).push_back(dyv[(n * 5 + c) * 20 + i]);
  lt::set_values(dya, va);
  lt::set_values(dyb, vb);
  a.forward(space, x, ya);
  a.backward(space, x, ya, dya, dxa, ga);
  b.forward(space, x, yb);
  b.backward(space, x, yb, dyb, dxb, gb);
  space.fence();
  auto const yv = lt::host_values(y), yav = lt::host_values(ya), ybv = lt::host_values(yb);
  std::vector<double> joined;
  for (int n = 0; n < 2; ++n) {
    joined.insert(joined.end(), yav.begin() + n * 60, yav.begin() + (n + 1) * 60);
    joined.insert(joined.end(), ybv.begin() + n * 40, ybv.begin() + (n + 1) * 40);
  }
  CHECK(lt::rel_diff(yv, joined) <= tol);
  auto const dxav = lt::host_values(dxa), dxbv = lt::host_values(dxb);
  std::vector<double> dxsum(dxav.size());
  for (std::size_t i = 0; i < dxsum.size(); ++i)
    dxsum[i] = dxav[i] + dxbv[i];
  CHECK(lt::rel_diff(lt::host_values(dx), dxsum) <= 4 * tol);
  auto gv = lt::host_values(ga);
  auto const gbv = lt::host_values(gb);
  gv.insert(gv.end(), gbv.begin(), gbv.end());
  CHECK(lt::rel_diff(lt::host_values(g), gv) <= tol);
  // Feature vectors: two Dense heads, in a network with a Flatten before.
  auto net = nn::make_sequential(nn::Shape4{3, 2, 2, 2}, nn::Flatten<S, Mem>(),
                                 nn::make_concat(nn::Dense<S, Mem>(8, 3), nn::Dense<S, Mem>(8, 2)));
  CHECK(net.output_shape() == nn::Shape4{3, 5, 1, 1});
  CHECK(net.num_params() == 27 + 18);
  // Errors: branch outputs of different spatial size; a wrong output tensor.
  auto bad = nn::make_concat(C(2, 3, 3), C(2, 3, 1));
  CHECK(lt::error_message([&] {
          bad.output_shape(in);
        }).find("lensing::nn::Concat: the branch outputs (2, 3, 3, 2) and (2, 3, 5, 4) differ") == 0);
  CHECK_THROWS_AS(cat.output_shape({2, 3, 5, 4}), std::invalid_argument);
  T ybad("ybad", 2, 4, 5, 4);
  CHECK_THROWS_AS(cat.forward(space, x, ybad), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("nn: Concat gradients", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using C = nn::Conv2D<double, Mem>;
  Space space;
  nn::Shape4 const in{2, 2, 4, 5};
  auto seq = nn::make_sequential(in, nn::BatchNorm<double, Mem>(2), nn::ELU<double, Mem>(), C(2, 2, 1));
  auto cat = nn::make_concat(C(2, 3, 3, 1, 1), seq);
  lt::fill_normal(cat.parameters(), 8, 0.5);
  lt::expect_gradients(space, cat, in, "Concat(Conv3x3, BN-ELU-Conv1x1)");
  auto dense = nn::make_concat(nn::Dense<double, Mem>(6, 3), nn::ELU<double, Mem>());
  lt::fill_normal(dense.parameters(), 9, 0.5);
  lt::expect_gradients(space, dense, nn::Shape4{3, 6, 1, 1}, "Concat(Dense, ELU) features");
}

//----------------------------------------------------------------------------
// Basic pre-activated residual unit.

LENSING_TEST_CASE_TEMPLATE("nn: pre-activated basic residual unit", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  double const tol = std::is_same<S, float>::value ? 1e-5 : 1e-13;
  nn::Shape4 const in{2, 3, 6, 5};
  auto proj = nn::make_preact_basic<S, Mem>(in, 4, 2);
  CHECK(proj.output_shape(in) == nn::Shape4{2, 4, 3, 3});
  // BN(3) + Conv3x3 3->4 + BN(4) + Conv3x3 4->4, then the 1x1 projection 3->4.
  CHECK(proj.num_params() == (6 + 4 * 3 * 9 + 4 + 8 + 4 * 4 * 9 + 4) + (4 * 3 + 4));
  CHECK(proj.num_state() == 2 * 3 + 2 * 4);
  nn::Shape4 const in2{2, 3, 4, 4};
  auto id = nn::make_preact_basic_identity<S, Mem>(in2);
  id.initialize(2);
  CHECK(id.output_shape(in2) == in2);
  CHECK(id.num_params() == 2 * (6 + 3 * 3 * 9 + 3));
  // y = F(x) + x.
  nn::Tensor<S, Mem> x("x", 2, 3, 4, 4), y("y", 2, 3, 4, 4), fx("fx", 2, 3, 4, 4);
  lt::fill_normal(x, 1);
  id.forward(space, x, y);
  id.block().forward(space, x, fx);
  space.fence();
  auto const xv = lt::host_values(x), yv = lt::host_values(y), fv = lt::host_values(fx);
  double err = 0;
  for (std::size_t i = 0; i < xv.size(); ++i)
    err = std::max(err, std::abs(yv[i] - fv[i] - xv[i]));
  CHECK(err <= 10 * tol);
  // y = F(x) + P(x) with the projection.
  proj.initialize(3);
  nn::Tensor<S, Mem> x6("x6", 2, 3, 6, 5), y6("y6", 2, 4, 3, 3), f6("f6", 2, 4, 3, 3), p6("p6", 2, 4, 3, 3);
  lt::fill_normal(x6, 2);
  proj.forward(space, x6, y6);
  proj.block().forward(space, x6, f6);
  proj.shortcut().forward(space, x6, p6);
  space.fence();
  auto const y6v = lt::host_values(y6), f6v = lt::host_values(f6), p6v = lt::host_values(p6);
  err = 0;
  for (std::size_t i = 0; i < y6v.size(); ++i)
    err = std::max(err, std::abs(y6v[i] - f6v[i] - p6v[i]));
  CHECK(err <= 10 * tol);
  // An identity unit cannot change the width: the builder's Residual refuses it.
  using Seq = decltype(nn::make_sequential(in2, nn::Conv2D<S, Mem>(3, 5, 3, 1, 1)));
  CHECK_THROWS_AS(nn::Residual<Seq>(in2, nn::make_sequential(in2, nn::Conv2D<S, Mem>(3, 5, 3, 1, 1))),
                  std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("nn: pre-activated basic residual unit gradients", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  nn::Shape4 const in{2, 2, 5, 5};
  auto proj = nn::make_preact_basic<double, Mem>(in, 3, 2);
  proj.initialize(1);
  lt::fill_normal(proj.parameters(), 2, 0.5);
  lt::expect_gradients(space, proj, in, "basic unit (projection, stride 2)");
  nn::Shape4 const in2{2, 2, 4, 4};
  auto id = nn::make_preact_basic_identity<double, Mem>(in2);
  id.initialize(4);
  lt::fill_normal(id.parameters(), 5, 0.5);
  lt::expect_gradients(space, id, in2, "basic unit (identity)");
  id.set_training(false);
  lt::expect_gradients(space, id, in2, "basic unit (identity, inference)");
}
