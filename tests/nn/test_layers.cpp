// Layers of lensing/nn: forward values against hand-computed cases, every
// backward against central finite differences (gradient_check.hpp), the
// im2col and direct convolutions against each other, dropout statistics,
// BatchNorm train/inference consistency, initialiser statistics and errors.
#include <lensing/nn/activation.hpp>
#include <lensing/nn/batchnorm.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/conv_transpose2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/dropout.hpp>
#include <lensing/nn/flatten.hpp>
#include <lensing/nn/pooling.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {

template <class Layer>
Layer randomized(Layer l, unsigned seed, double scale = 0.5) {
  lt::fill_normal(l.parameters(), seed, scale);
  return l;
}

// Host copy of a tensor as std::vector<double>.

}  // namespace

//----------------------------------------------------------------------------
// Gradients.

LENSING_TEST_CASE_TEMPLATE("nn: Dense gradients", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  lt::expect_gradients(space, randomized(nn::Dense<double, Mem>(8, 5), 3), nn::Shape4{3, 2, 2, 2}, "Dense 8->5");
  lt::expect_gradients(space, randomized(nn::Dense<double, Mem>(1, 1), 4), nn::Shape4{1, 1, 1, 1}, "Dense 1->1");
}

LENSING_TEST_CASE_TEMPLATE("nn: Conv2D gradients (im2col and direct)", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using C = nn::Conv2D<double, Mem>;
  Space space;
  struct Case {
    int cin, cout;
    nn::Conv2DGeometry g;
    nn::Shape4 in;
    char const* name;
  };
  std::vector<Case> const cases = {
      {2, 3, {3, 3, 1, 1, 1, 1, 1, 1}, {2, 2, 5, 6}, "3x3 s1 p1"},
      {2, 3, {3, 3, 2, 2, 0, 0, 2, 2}, {3, 2, 7, 8}, "3x3 s2 d2"},
      {1, 2, {2, 3, 2, 1, 1, 0, 1, 2}, {2, 1, 6, 7}, "2x3 s(2,1) p(1,0) d(1,2)"},
      {3, 2, {1, 1, 1, 1, 0, 0, 1, 1}, {2, 3, 4, 4}, "1x1"},
      {2, 2, {5, 5, 1, 1, 2, 2, 1, 1}, {1, 2, 4, 5}, "5x5 p2 (kernel larger than image)"},
      {2, 2, {3, 3, 3, 2, 1, 2, 1, 1}, {2, 2, 6, 5}, "3x3 s(3,2) p(1,2)"},
  };
  for (auto const& c : cases) {
    for (bool direct : {false, true}) {
      C conv(c.cin, c.cout, c.g, nn::Init::he_normal, direct);
      std::string const what = std::string("Conv2D ") + c.name + (direct ? " direct" : " im2col");
      lt::expect_gradients(space, randomized(conv, 11), c.in, what.c_str());
    }
  }
}

LENSING_TEST_CASE_TEMPLATE("nn: pooling and flatten gradients", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  lt::expect_gradients(space, nn::MaxPool2D<double, Mem>(2), nn::Shape4{2, 3, 6, 5}, "MaxPool 2");
  lt::expect_gradients(space, nn::MaxPool2D<double, Mem>(3, 2), nn::Shape4{2, 2, 7, 7}, "MaxPool 3 s2 (overlapping)");
  lt::expect_gradients(space, nn::AvgPool2D<double, Mem>(2), nn::Shape4{2, 3, 6, 5}, "AvgPool 2");
  lt::expect_gradients(space, nn::AvgPool2D<double, Mem>(3, 2), nn::Shape4{2, 2, 7, 7}, "AvgPool 3 s2");
  lt::expect_gradients(space, nn::GlobalAvgPool<double, Mem>(), nn::Shape4{3, 4, 3, 5}, "GlobalAvgPool");
  lt::expect_gradients(space, nn::Flatten<double, Mem>(), nn::Shape4{2, 3, 2, 2}, "Flatten");
}

LENSING_TEST_CASE_TEMPLATE("nn: activation gradients", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  nn::Shape4 const s{2, 3, 4, 5};
  // x ~ N(0, 3²): both branches of the piecewise functions, saturated tails.
  lt::expect_gradients(space, nn::ReLU<double, Mem>(), s, "ReLU", 3.0);
  lt::expect_gradients(space, nn::LeakyReLU<double, Mem>(nn::LeakyReluOp{0.2}), s, "LeakyReLU", 3.0);
  lt::expect_gradients(space, nn::ELU<double, Mem>(nn::EluOp{1.5}), s, "ELU", 3.0);
  lt::expect_gradients(space, nn::GELU<double, Mem>(), s, "GELU", 3.0);
  lt::expect_gradients(space, nn::Tanh<double, Mem>(), s, "Tanh", 3.0);
  lt::expect_gradients(space, nn::Sigmoid<double, Mem>(), s, "Sigmoid", 3.0);
  lt::expect_gradients(space, nn::Softplus<double, Mem>(), s, "Softplus", 3.0);
}

LENSING_TEST_CASE_TEMPLATE("nn: Dropout and BatchNorm gradients", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  lt::expect_gradients(space, nn::Dropout<double, Mem>(0.3, 42), nn::Shape4{2, 3, 4, 5}, "Dropout 0.3 train");
  nn::Dropout<double, Mem> mc(0.5, 1);
  mc.set_training(false);
  mc.set_mc(true);
  lt::expect_gradients(space, mc, nn::Shape4{2, 3, 4, 5}, "Dropout 0.5 MC inference");
  auto bn = nn::BatchNorm<double, Mem>(3);
  lt::fill_normal(bn.parameters(), 5, 1.0);
  lt::expect_gradients(space, bn, nn::Shape4{4, 3, 2, 3}, "BatchNorm train");
  lt::expect_gradients(space, bn, nn::Shape4{5, 3, 1, 1}, "BatchNorm train, dense features");
  lt::fill_normal(bn.state(), 6, 0.3);
  lt::set_values(Kokkos::subview(bn.state(), Kokkos::make_pair(3, 6)), {0.5, 1.5, 2.0});  // variances > 0
  bn.set_training(false);
  lt::expect_gradients(space, bn, nn::Shape4{4, 3, 2, 3}, "BatchNorm inference");
}

//----------------------------------------------------------------------------
// Forward values.

LENSING_TEST_CASE_TEMPLATE("nn: forward values against hand-computed cases", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  double const tol = std::is_same<S, float>::value ? 1e-6 : 1e-14;
  // Dense: W = [[1,2,3],[4,5,6]], b = [0.5,-1]; x = [1,0,-1], [2,1,0].
  {
    nn::Dense<S, Mem> d(3, 2);
    lt::set_values(d.parameters(), {1, 2, 3, 4, 5, 6, 0.5, -1});
    nn::Tensor<S, Mem> x("x", 2, 3, 1, 1), y("y", 2, 2, 1, 1);
    lt::set_values(x, {1, 0, -1, 2, 1, 0});
    d.forward(space, x, y);
    space.fence();
    auto const v = lt::host_values(y);
    std::vector<double> const want = {-1.5, -3, 4.5, 12};
    for (int i = 0; i < 4; ++i)
      CHECK(v[i] == doctest::Approx(want[i]).epsilon(tol));
  }
  // Conv2D 1->1, 2x2 kernel [[1,0],[0,-1]] bias 1 on a 3x3 ramp 0..8, padding 0: x[i][j] - x[i+1][j+1] + 1 = -3.
  // With padding 1, stride 2: outputs at (-1,-1),(−1,1),(1,−1),(1,1) offsets.
  {
    nn::Conv2D<S, Mem> c(1, 1, nn::Conv2DGeometry{2, 2, 1, 1, 0, 0, 1, 1});
    lt::set_values(c.parameters(), {1, 0, 0, -1, 1});
    nn::Tensor<S, Mem> x("x", 1, 1, 3, 3), y("y", 1, 1, 2, 2);
    lt::set_values(x, {0, 1, 2, 3, 4, 5, 6, 7, 8});
    c.forward(space, x, y);
    space.fence();
    for (double v : lt::host_values(y))
      CHECK(v == doctest::Approx(-3).epsilon(tol));
    nn::Conv2D<S, Mem> cp(1, 1, nn::Conv2DGeometry{2, 2, 2, 2, 1, 1, 1, 1});
    lt::set_values(cp.parameters(), {1, 0, 0, -1, 1});
    nn::Tensor<S, Mem> yp("yp", 1, 1, 2, 2);
    cp.forward(space, x, yp);
    space.fence();
    // out(0,0): x[-1][-1] - x[0][0] + 1 = 1; out(0,1): x[-1][1] - x[0][2] + 1 = -1;
    // out(1,0): x[1][-1] - x[2][0] + 1 = -5; out(1,1): x[1][1] - x[2][2] + 1 = -3.
    auto const v = lt::host_values(yp);
    std::vector<double> const want = {1, -1, -5, -3};
    for (int i = 0; i < 4; ++i)
      CHECK(v[i] == doctest::Approx(want[i]).epsilon(tol));
  }
  // Pooling on a 4x4 ramp.
  {
    nn::Tensor<S, Mem> x("x", 1, 1, 4, 4), y("y", 1, 1, 2, 2), g("g", 1, 1, 1, 1);
    std::vector<double> ramp(16);
    for (int i = 0; i < 16; ++i)
      ramp[i] = i;
    lt::set_values(x, ramp);
    nn::MaxPool2D<S, Mem> mp(2);
    mp.forward(space, x, y);
    space.fence();
    std::vector<double> const want_max = {5, 7, 13, 15}, want_avg = {2.5, 4.5, 10.5, 12.5};
    auto v = lt::host_values(y);
    for (int i = 0; i < 4; ++i)
      CHECK(v[i] == want_max[i]);
    nn::AvgPool2D<S, Mem> ap(2);
    ap.forward(space, x, y);
    space.fence();
    v = lt::host_values(y);
    for (int i = 0; i < 4; ++i)
      CHECK(v[i] == doctest::Approx(want_avg[i]).epsilon(tol));
    nn::GlobalAvgPool<S, Mem> gp;
    gp.forward(space, x, g);
    space.fence();
    CHECK(lt::host_values(g)[0] == doctest::Approx(7.5).epsilon(tol));
  }
  // Activations at x = -1, 0, 1, 30, -30 (no overflow, no NaN).
  {
    nn::Tensor<S, Mem> x("x", 1, 5, 1, 1), y("y", 1, 5, 1, 1);
    lt::set_values(x, {-1, 0, 1, 30, -30});
    auto run = [&](auto layer, std::vector<double> const& want) {
      layer.forward(space, x, y);
      space.fence();
      auto const v = lt::host_values(y);
      for (int i = 0; i < 5; ++i)
        CHECK(v[i] == doctest::Approx(want[i]).epsilon(tol * 10).scale(1e-30));
    };
    double const e1 = std::exp(-1.0), e30 = std::exp(-30.0);
    run(nn::ReLU<S, Mem>(), {0, 0, 1, 30, 0});
    run(nn::LeakyReLU<S, Mem>(), {-0.01, 0, 1, 30, -0.3});
    run(nn::ELU<S, Mem>(), {e1 - 1, 0, 1, 30, std::expm1(-30.0)});
    run(nn::GELU<S, Mem>(),
        {-0.15865525393145705, 0, 0.8413447460685429, 30, -30 * 0.5 * std::erfc(30 / std::sqrt(2.0))});
    run(nn::Tanh<S, Mem>(), {std::tanh(-1.0), 0, std::tanh(1.0), 1, -1});
    run(nn::Sigmoid<S, Mem>(), {1 / (1 + 1 / e1), 0.5, 1 / (1 + e1), 1 / (1 + e30), e30 / (1 + e30)});
    run(nn::Softplus<S, Mem>(),
        {std::log1p(e1), std::log(2.0), 1 + std::log1p(e1), 30 + std::log1p(e30), std::log1p(e30)});
  }
}

LENSING_TEST_CASE_TEMPLATE("nn: Conv2D im2col+GEMM equals the direct convolution", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  double const tol = std::is_same<S, float>::value ? 2e-5 : 1e-13;
  // 3x3 pad 1 at strides 1 and 2 (the GEMMs through detail::ShiftedPlanes: shifted copies, phase
  // planes), then strided 1x1 kernels (projection shortcuts; im2col's subsample_rows).
  for (nn::Conv2DGeometry g :
       {nn::Conv2DGeometry{3, 3, 1, 1, 1, 1, 1, 1}, nn::Conv2DGeometry{3, 3, 2, 2, 1, 1, 1, 1},
        nn::Conv2DGeometry{5, 3, 2, 1, 2, 0, 1, 2}, nn::Conv2DGeometry{1, 1, 1, 1, 0, 0, 1, 1},
        nn::Conv2DGeometry{1, 1, 2, 2, 0, 0, 1, 1}, nn::Conv2DGeometry{1, 1, 3, 2, 0, 0, 1, 1}}) {
    nn::Shape4 const in{5, 3, 9, 8};
    nn::Conv2D<S, Mem> fast(3, 4, g, nn::Init::he_normal, false);
    fast.initialize(3);
    lt::fill_normal(Kokkos::subview(fast.parameters(), Kokkos::make_pair(fast.num_params() - 4, fast.num_params())), 4);
    nn::Conv2D<S, Mem> direct(3, 4, g, nn::Init::he_normal, true);
    direct.bind_parameters(fast.parameters());
    auto const out = fast.output_shape(in);
    nn::Tensor<S, Mem> x("x", in.n, in.c, in.h, in.w), y1("y1", out.n, out.c, out.h, out.w),
        y2("y2", out.n, out.c, out.h, out.w);
    nn::Tensor<S, Mem> dy("dy", out.n, out.c, out.h, out.w), dx1("dx1", in.n, in.c, in.h, in.w),
        dx2("dx2", in.n, in.c, in.h, in.w);
    lt::fill_normal(x, 1);
    lt::fill_normal(dy, 2);
    nn::ParamVector<S, Mem> g1("g1", fast.num_params()), g2("g2", fast.num_params());
    fast.prepare(in);
    fast.forward(space, x, y1);
    fast.backward(space, x, y1, dy, dx1, g1);
    direct.forward(space, x, y2);
    direct.backward(space, x, y2, dy, dx2, g2);
    space.fence();
    auto compare = [&](auto const& a, auto const& b) {
      auto const va = lt::host_values(a), vb = lt::host_values(b);
      double scale = 0, err = 0;
      for (std::size_t i = 0; i < va.size(); ++i) {
        scale = std::max(scale, std::abs(vb[i]));
        err = std::max(err, std::abs(va[i] - vb[i]));
      }
      CHECK(err <= tol * scale);
    };
    compare(y1, y2);
    compare(dx1, dx2);
    compare(g1, g2);
  }
}

LENSING_TEST_CASE_TEMPLATE("nn: MaxPool2D backward routes dy to the first maximum of each window", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  // Odd sizes (a last row and column outside every 2x2 window) and small
  // integer values, so that windows hold ties; dy integers, so the sums of
  // overlapping windows are exact.  dx starts as 99 everywhere: every
  // element must be written.  The reference: each window's first maximum in
  // scan order (row, then column) receives its dy.
  nn::Shape4 const in{2, 3, 7, 9};
  std::vector<double> xv(std::size_t(in.n) * in.c * in.h * in.w);
  unsigned state = 12345u;
  for (auto& v : xv) {
    state = state * 1103515245u + 12345u;
    v = double((state >> 16) % 3u);  // three values: ties in most windows
  }
  for (int k : {2, 3}) {
    nn::MaxPool2D<S, Mem> pool(k, 2);
    auto const out = pool.output_shape(in);
    nn::Tensor<S, Mem> x("x", in.n, in.c, in.h, in.w), y("y", out.n, out.c, out.h, out.w),
        dy("dy", out.n, out.c, out.h, out.w), dx("dx", in.n, in.c, in.h, in.w);
    lt::set_values(x, xv);
    std::vector<double> dyv(std::size_t(out.n) * out.c * out.h * out.w);
    for (std::size_t i = 0; i < dyv.size(); ++i)
      dyv[i] = double(int(i % 11) - 5);
    lt::set_values(dy, dyv);
    Kokkos::deep_copy(dx, S(99));
    nn::ParamVector<S, Mem> g("g", 0);
    pool.forward(space, x, y);
    pool.backward(space, x, y, dy, dx, g);
    space.fence();
    std::vector<double> want(xv.size(), 0.0);
    for (long plane = 0; plane < long(in.n) * in.c; ++plane)
      for (long i = 0; i < out.h; ++i)
        for (long j = 0; j < out.w; ++j) {
          long best = plane * in.h * in.w + 2 * i * in.w + 2 * j;
          for (long p = 0; p < k; ++p)
            for (long q = 0; q < k; ++q) {
              long const at = plane * in.h * in.w + (2 * i + p) * in.w + 2 * j + q;
              if (xv[std::size_t(at)] > xv[std::size_t(best)]) best = at;
            }
          want[std::size_t(best)] += dyv[std::size_t((plane * out.h + i) * out.w + j)];
        }
    auto const got = lt::host_values(dx);
    long wrong = 0;
    for (std::size_t i = 0; i < want.size(); ++i)
      wrong += got[i] != want[i] ? 1 : 0;
    INFO("k = " << k);
    CHECK(wrong == 0);
  }
}

//----------------------------------------------------------------------------
// Stochastic layers and modes.

LENSING_TEST_CASE_TEMPLATE("nn: Dropout statistics, MC mode and determinism", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  double const p = 0.3;
  long const n = 200000;
  nn::Dropout<S, Mem> d(p, 123);
  nn::Tensor<S, Mem> x("x", 1, n, 1, 1), y("y", 1, n, 1, 1), y2("y2", 1, n, 1, 1);
  Kokkos::deep_copy(x, S(1));
  d.forward(space, x, y);
  space.fence();
  auto v = lt::host_values(y);
  long zeros = 0;
  double sum = 0;
  for (double e : v) {
    zeros += e == 0.0;
    sum += e;
    if (e != 0.0) CHECK(e == doctest::Approx(1 / (1 - p)).epsilon(1e-6));
  }
  // Binomial: sd of the zero fraction sqrt(p(1-p)/n) = 1.0e-3; 5 sigma.
  double const sd = std::sqrt(p * (1 - p) / n);
  CHECK(std::abs(double(zeros) / n - p) < 5 * sd);
  CHECK(std::abs(sum / n - 1.0) < 5 * sd / (1 - p));
  // The next forward draws a new mask; a new layer with the same seed repeats the sequence.
  d.forward(space, x, y2);
  space.fence();
  CHECK(lt::host_values(y2) != v);
  nn::Dropout<S, Mem> again(p, 123);
  again.forward(space, x, y2);
  space.fence();
  CHECK(lt::host_values(y2) == v);
  // Inference: identity, unless MC dropout is on.
  d.set_training(false);
  d.forward(space, x, y);
  space.fence();
  long not_one = 0;
  for (double e : lt::host_values(y))
    not_one += e != 1.0;
  CHECK(not_one == 0);
  d.set_mc(true);
  d.forward(space, x, y);
  space.fence();
  zeros = 0;
  for (double e : lt::host_values(y))
    zeros += e == 0.0;
  CHECK(std::abs(double(zeros) / n - p) < 5 * sd);
  using Drop = nn::Dropout<S, Mem>;
  CHECK_THROWS_AS(Drop(1.0), std::invalid_argument);
  CHECK_THROWS_AS(Drop(-0.1), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("nn: BatchNorm train/inference consistency", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  double const tol = std::is_same<S, float>::value ? 2e-5 : 1e-12;
  nn::Shape4 const s{4, 2, 3, 3};
  long const m = 4 * 9;
  nn::BatchNorm<S, Mem> bn(2, /*momentum=*/1.0);
  lt::set_values(bn.parameters(), {1.5, 0.5, -0.2, 0.3});
  nn::Tensor<S, Mem> x("x", s.n, s.c, s.h, s.w), yt("yt", s.n, s.c, s.h, s.w), yi("yi", s.n, s.c, s.h, s.w);
  lt::fill_normal(x, 9, 2.0);
  bn.forward(space, x, yt);
  space.fence();
  // Training output: per channel zero mean and variance γ²σ²/(σ²+ε) ≈ γ², mean β.
  auto const xv = lt::host_values(x), tv = lt::host_values(yt);
  std::vector<double> mean(2, 0), var(2, 0);
  for (int c = 0; c < 2; ++c) {
    double s1 = 0, s2 = 0, y1 = 0;
    for (int b = 0; b < 4; ++b)
      for (int i = 0; i < 9; ++i) {
        double const v = xv[(b * 2 + c) * 9 + i];
        s1 += v;
        s2 += v * v;
        y1 += tv[(b * 2 + c) * 9 + i];
      }
    mean[c] = s1 / m;
    var[c] = s2 / m - mean[c] * mean[c];
    CHECK(y1 / m == doctest::Approx(c == 0 ? -0.2 : 0.3).epsilon(tol).scale(1));
  }
  // Momentum 1: running stats are the batch mean and the unbiased variance.
  auto const st = lt::host_values(bn.state());
  for (int c = 0; c < 2; ++c) {
    CHECK(st[c] == doctest::Approx(mean[c]).epsilon(tol * 10));
    CHECK(st[2 + c] == doctest::Approx(var[c] * m / (m - 1)).epsilon(tol * 10));
  }
  // Inference on the same batch: y_inf = β + (y_train − β) √((σ²+ε)/(σ²_unb+ε)).
  bn.set_training(false);
  bn.forward(space, x, yi);
  space.fence();
  auto const iv = lt::host_values(yi);
  std::vector<double> const gamma = {1.5, 0.5}, beta = {-0.2, 0.3};
  for (int b = 0; b < 4; ++b)
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 9; ++i) {
        long const at = (b * 2 + c) * 9 + i;
        double const ratio = std::sqrt((var[c] + 1e-5) / (var[c] * m / (m - 1) + 1e-5));
        CHECK(iv[at] == doctest::Approx(beta[c] + (tv[at] - beta[c]) * ratio).epsilon(tol * 10).scale(1));
      }
  // Inference mode leaves the running statistics alone.
  CHECK(lt::host_values(bn.state()) == st);
  // Training with one value per channel is refused.
  bn.set_training(true);
  nn::Tensor<S, Mem> one("one", 1, 2, 1, 1);
  CHECK_THROWS_AS(bn.forward(space, one, one), std::invalid_argument);
}

//----------------------------------------------------------------------------
// Initialisers and errors.

LENSING_TEST_CASE_TEMPLATE("nn: initialisers are seeded and have the stated variance", Config, lt::AllConfigs) {
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  long const n = 100000;
  nn::ParamVector<S, Mem> a("a", n), b("b", n);
  struct Case {
    nn::Init init;
    double var;
  };
  long const fi = 50, fo = 30;
  for (auto c : {Case{nn::Init::he_normal, 2.0 / fi}, Case{nn::Init::he_uniform, 2.0 / fi},
                 Case{nn::Init::xavier_normal, 2.0 / (fi + fo)}, Case{nn::Init::xavier_uniform, 2.0 / (fi + fo)}}) {
    nn::initialize(a, c.init, fi, fo, 17);
    nn::initialize(b, c.init, fi, fo, 17);
    auto const va = lt::host_values(a);
    CHECK(va == lt::host_values(b));
    double s1 = 0, s2 = 0;
    for (double v : va) {
      s1 += v;
      s2 += v * v;
    }
    double const mean = s1 / n, var = s2 / n - mean * mean;
    // sd of the sample mean sqrt(var/n); of the sample variance <= sqrt(2/n) var (normal), less for uniform.
    CHECK(std::abs(mean) < 5 * std::sqrt(c.var / n));
    CHECK(std::abs(var / c.var - 1) < 5 * std::sqrt(2.0 / n));
    nn::initialize(b, c.init, fi, fo, 18);
    CHECK(lt::host_values(b) != va);
  }
  CHECK_THROWS_AS(nn::initialize(a, nn::Init::he_normal, 0, 3, 1), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("nn: bad shapes give clear errors", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  nn::Dense<S, Mem> d(8, 3);
  CHECK(lt::error_message([&] {
          d.output_shape({2, 3, 1, 1});
        }).find("lensing::nn::Dense: input (2, 3, 1, 1) has 3 features per sample, expected 8") == 0);
  nn::Conv2D<S, Mem> c(3, 4, 5);
  CHECK(lt::error_message([&] {
          c.output_shape({1, 2, 8, 8});
        }).find("lensing::nn::Conv2D: input (1, 2, 8, 8) has 2 channels, expected 3") == 0);
  CHECK(lt::error_message([&] {
          c.output_shape({1, 3, 4, 8});
        }).find("smaller than the dilated kernel") != std::string::npos);
  using Conv = nn::Conv2D<S, Mem>;
  using Pool = nn::MaxPool2D<S, Mem>;
  using BN = nn::BatchNorm<S, Mem>;
  CHECK_THROWS_AS(Conv(0, 4, 3), std::invalid_argument);
  CHECK_THROWS_AS(Conv(1, 4, 3, 0), std::invalid_argument);
  CHECK_THROWS_AS(Pool(2).output_shape({1, 1, 1, 4}), std::invalid_argument);
  CHECK_THROWS_AS(BN(3).output_shape({1, 2, 4, 4}), std::invalid_argument);
  // Runtime checks in forward/backward: wrong output or gradient shapes.
  nn::Tensor<S, Mem> x("x", 2, 8, 1, 1), y("y", 2, 4, 1, 1), yok("yok", 2, 3, 1, 1), dxbad("dx", 2, 7, 1, 1);
  CHECK(lt::error_message([&] {
          d.forward(space, x, y);
        }).find("lensing::nn::Dense::forward: y has shape (2, 4, 1, 1), expected (2, 3, 1, 1)") == 0);
  nn::ParamVector<S, Mem> g("g", d.num_params()), gbad("gbad", 3);
  CHECK_THROWS_AS(d.backward(space, x, yok, yok, dxbad, g), std::invalid_argument);
  using T = nn::Tensor<S, Mem>;
  CHECK_THROWS_AS(d.backward(space, x, yok, yok, T(), gbad), std::invalid_argument);
  nn::ParamVector<S, Mem> wrong("wrong", 5);
  CHECK_THROWS_AS(d.bind_parameters(wrong), std::invalid_argument);
}

//----------------------------------------------------------------------------
// Transposed convolution.

LENSING_TEST_CASE_TEMPLATE("nn: ConvTranspose2D gradients (im2col and direct)", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  struct Case {
    nn::Conv2DGeometry g;
    int op;
    nn::Shape4 in;
    char const* name;
  };
  std::vector<Case> const cases = {
      {{3, 3, 2, 2, 1, 1, 1, 1}, 1, {2, 2, 3, 4}, "3x3 s2 p1 op1"},
      {{2, 3, 1, 2, 0, 1, 2, 1}, 0, {2, 2, 4, 3}, "2x3 s(1,2) p(0,1) d(2,1)"},
      {{4, 4, 2, 2, 1, 1, 1, 1}, 0, {1, 2, 3, 3}, "4x4 s2 p1"},
  };
  for (auto const& c : cases)
    for (bool direct : {false, true}) {
      nn::ConvTranspose2D<double, Mem> t(2, 3, c.g, c.op, c.op, nn::Init::he_normal, direct);
      std::string const what = std::string("ConvTranspose2D ") + c.name + (direct ? " direct" : " im2col");
      lt::expect_gradients(space, randomized(t, 12), c.in, what.c_str());
    }
}

LENSING_TEST_CASE_TEMPLATE("nn: ConvTranspose2D is the adjoint of Conv2D", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  double const tol = std::is_same<S, float>::value ? 1e-5 : 1e-13;
  // Known value: k = s = 2 paints each pixel as a scaled 2x2 kernel.
  {
    nn::ConvTranspose2D<S, Mem> t(1, 1, 2, 2);
    lt::set_values(t.parameters(), {1, 2, 3, 4, 0.5});
    nn::Tensor<S, Mem> x("x", 1, 1, 1, 2), y("y", 1, 1, 2, 4);
    CHECK(t.output_shape({1, 1, 1, 2}) == nn::Shape4{1, 1, 2, 4});
    lt::set_values(x, {1, 2});
    t.forward(space, x, y);
    space.fence();
    std::vector<double> const want = {1.5, 2.5, 2.5, 4.5, 3.5, 4.5, 6.5, 8.5};
    auto const v = lt::host_values(y);
    for (int i = 0; i < 8; ++i)
      CHECK(v[i] == doctest::Approx(want[i]).epsilon(tol));
  }
  // <C u, x> = <u, Cᵀ x> with shared weights and zero biases, both paths; output
  // extent (H−1)s − 2p + d(k−1) + op + 1 maps back to H under the Conv2D.
  nn::Conv2DGeometry const g{3, 2, 2, 3, 1, 0, 1, 2};
  for (bool direct : {false, true}) {
    nn::ConvTranspose2D<S, Mem> t(4, 3, g, 1, 2, nn::Init::he_normal, direct);
    t.initialize(5);
    nn::Shape4 const in{2, 4, 5, 4};
    nn::Shape4 const out = t.output_shape(in);
    CHECK(out == nn::Shape4{2, 3, 4 * 2 - 2 + 2 + 1 + 1, 3 * 3 - 0 + 2 + 2 + 1});
    nn::Conv2D<S, Mem> c(3, 4, g);
    long const nw = 4L * 3 * 3 * 2;
    Kokkos::deep_copy(Kokkos::subview(c.parameters(), Kokkos::make_pair(0L, nw)),
                      Kokkos::subview(t.parameters(), Kokkos::make_pair(0L, nw)));
    CHECK(c.output_shape(out) == in);
    nn::Tensor<S, Mem> x("x", in.n, in.c, in.h, in.w), cu("cu", in.n, in.c, in.h, in.w);
    nn::Tensor<S, Mem> u("u", out.n, out.c, out.h, out.w), tx("tx", out.n, out.c, out.h, out.w);
    lt::fill_normal(x, 1);
    lt::fill_normal(u, 2);
    t.prepare(in);
    c.prepare(out);
    t.forward(space, x, tx);
    c.forward(space, u, cu);
    space.fence();
    auto const xv = lt::host_values(x), cuv = lt::host_values(cu), uv = lt::host_values(u), txv = lt::host_values(tx);
    double a = 0, b = 0, scale = 0;
    for (std::size_t i = 0; i < xv.size(); ++i) {
      a += cuv[i] * xv[i];
      scale += std::abs(cuv[i] * xv[i]);
    }
    for (std::size_t i = 0; i < uv.size(); ++i)
      b += uv[i] * txv[i];
    CHECK(std::abs(a - b) <= tol * scale);
  }
  using T = nn::ConvTranspose2D<S, Mem>;
  CHECK_THROWS_AS(T(1, 1, nn::Conv2DGeometry{3, 3, 2, 2, 0, 0, 1, 1}, 2, 0), std::invalid_argument);
  CHECK_THROWS_AS(T(1, 1, 3, 1, 3).output_shape({1, 1, 2, 2}), std::invalid_argument);
  CHECK_THROWS_AS(T(2, 1, 3).output_shape({1, 1, 2, 2}), std::invalid_argument);
}
