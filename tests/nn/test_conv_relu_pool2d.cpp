// Conv2DReLUPool (Conv2D, ReLU and 2x2 max pooling fused into one layer)
// against the three layers run one after the other with the same parameters:
// forward, the input gradient and the parameter gradients, on the im2col
// (host) and direct paths, for a one-channel 5x5 kernel (the Hezaveh-style
// CNN's first layer), odd output sizes (a dropped row and column), a 1x1
// kernel, a strided kernel, ties between positive values and windows with no
// positive value; the fused layer's gradients against central differences;
// and a small CNN of fused blocks against the same CNN layer by layer.  Also
// the masked-vector im2col / col2im (detail/masked_rows.hpp, used by Conv2D
// and this layer on AVX-512 hosts) against detail::im2col / col2im.
#include <lensing/nn/activation.hpp>
#include <lensing/nn/conv_relu_pool2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/detail/masked_rows.hpp>
#include <lensing/nn/flatten.hpp>
#include <lensing/nn/pooling.hpp>
#include <lensing/nn/sequential.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {

double max_diff(std::vector<double> const& a, std::vector<double> const& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// Runs `fused` and `plain` (same parameters) forward on x and backward from
// dy, and compares y, dx and the parameter gradients.
//
// Error model: the results are identical except the bias gradients (and the
// weight gradients of one input channel: see below).  The fused layer
// computes z by Conv2D's own calls (the bias fill, im2col and the same GEMM
// with the same shapes and strides; or the same direct kernel), ReLU by
// ReluOp's expression and the pooling by MaxPool2D's selects; backward builds
// dz = ReLU'(z) ⊙ unpool(dy) exactly (each element is dy or 0, as MaxPool2D's
// and ReLU's backward produce it) and passes it to Conv2D's calls, over the
// same split of the batch into per-thread chunks.  So every value is the same
// floating-point operation on the same operands: we require equality.  The
// bias gradients Σ_n Σ dz are sums of the same N·P nonzero-or-zero terms (P =
// oh·ow of z) in another order (the fused layer sums the dy that pass, per
// channel plane, vectorised; Conv2D sums dz serially): each has an error
// ≤ (N P − 1) ε Σ|dy| (recursive summation in any order), so they differ by
// ≤ 2 N P ε Σ|dy|, which we allow.  A wrong
// fusion (another tie rule, a gradient through a window with no positive
// value, a misplaced dz element, a dropped bias) changes values by O(1).
template <class S, class Space, class Fused, class Plain>
void compare(Space const& space, Fused& fused, Plain& plain, nn::Shape4 in, unsigned seed, std::string const& what,
             bool direct_path) {
  using Mem = typename Space::memory_space;
  nn::Tensor<S, Mem> x("x", in.n, in.c, in.h, in.w), dxf("dxf", in.n, in.c, in.h, in.w),
      dxp("dxp", in.n, in.c, in.h, in.w);
  nn::Shape4 const out = fused.output_shape(in);
  REQUIRE(out == plain.output_shape(in));
  nn::Tensor<S, Mem> yf("yf", out.n, out.c, out.h, out.w), yp("yp", out.n, out.c, out.h, out.w),
      dy("dy", out.n, out.c, out.h, out.w);
  lt::fill_normal(x, seed, 1.0);
  lt::fill_normal(dy, seed + 1, 1.0);
  Kokkos::deep_copy(dxf, S(7));  // every element must be written
  nn::ParamVector<S, Mem> gf("gf", fused.num_params()), gp("gp", plain.num_params());
  Kokkos::deep_copy(gf, S(7));
  fused.forward(space, x, yf);
  plain.forward(space, x, yp);
  fused.backward(space, x, yf, dy, dxf, gf);
  plain.backward(space, x, yp, dy, dxp, gp);
  space.fence();
  auto const yv = lt::host_values(yp);
  double const ey = max_diff(lt::host_values(yf), yv);
  double const edx = max_diff(lt::host_values(dxf), lt::host_values(dxp));
  auto const gfv = lt::host_values(gf), gpv = lt::host_values(gp);
  long const nw = long(gfv.size()) - out.c;  // the weights, then the C_out biases
  double ew = 0, eb = 0;
  for (long i = 0; i < long(gfv.size()); ++i)
    (i < nw ? ew : eb) = std::max(i < nw ? ew : eb, std::abs(gfv[i] - gpv[i]));
  double sdy = 0;
  for (double v : lt::host_values(dy))
    sdy += std::abs(v);
  int oh, ow;
  fused.geometry().output_hw(in.h, in.w, oh, ow, "test");
  double const tb = 2 * double(in.n) * oh * ow * double(std::numeric_limits<S>::epsilon()) * sdy;
  // One input channel, unit stride (the host path's direct weight gradient):
  // dW[o, p, q] = Σ_{n,i,j} dz x is a sum of N·P products in another order
  // than the GEMM's, each product exact in neither or rounded once: ≤ 2 (N P
  // + 1) ε Σ|dz||x| ≤ 2 (N P + 1) ε max|x| Σ|dy|, allowed.
  bool const direct_dw = Fused::direct_weight_grad(fused.dims(x)) && !direct_path;
  double xmax = 0;
  for (double v : lt::host_values(x))
    xmax = std::max(xmax, std::abs(v));
  double const tw =
      direct_dw ? 2 * (double(in.n) * oh * ow + 1) * double(std::numeric_limits<S>::epsilon()) * xmax * sdy : 0.0;
  long positive = 0;
  for (double v : yv)
    positive += v > 0;
  MESSAGE(what << ": |dy| " << ey << ", |ddx| " << edx << ", |dW| " << ew << ", |db| " << eb << " (allowed " << tb
               << "; " << positive << " of " << yv.size() << " outputs > 0)");
  CHECK(ey == 0);
  CHECK(edx == 0);
  CHECK(ew <= tw);
  if (direct_dw) MESSAGE("  direct weight gradient: |dW| allowed " << tw);
  CHECK(eb <= tb);
  // Both kinds of window occur: some pooled outputs are 0, most are not.
  CHECK(positive > long(yv.size()) / 4);
  CHECK(positive < long(yv.size()));
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("nn: Conv2DReLUPool equals Conv2D, ReLU, MaxPool2D(2) in sequence", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  struct Case {
    int cin, cout, k, s, p;
    nn::Shape4 in;
  };
  Case const cases[] = {{1, 6, 5, 1, 2, {3, 1, 12, 10}},  // the CNN's first layer: one channel, 5x5
                        {1, 4, 5, 1, 2, {2, 1, 6, 21}},   // ... 21 columns: 16 as a vector, 5 one by one
                        {1, 5, 7, 1, 3, {2, 1, 9, 19}},   // ... 7 kernel columns (blocks of 5 and 2), 5 channels
                        {3, 5, 3, 1, 1, {4, 3, 7, 9}},    // odd output: a row and a column dropped
                        {4, 6, 1, 1, 0, {2, 4, 6, 6}},    // 1x1: the GEMM reads x directly
                        {3, 4, 3, 2, 1, {3, 3, 9, 8}}};   // strided
  unsigned seed = 40;
  for (auto const& c : cases) {
    for (bool direct : {false, true}) {
      nn::Conv2DGeometry const g{c.k, c.k, c.s, c.s, c.p, c.p, 1, 1};
      nn::Conv2DReLUPool<S, Mem> fused(c.cin, c.cout, g, nn::Init::he_normal, direct);
      auto plain = nn::make_sequential(nn::Conv2D<S, Mem>(c.cin, c.cout, g, nn::Init::he_normal, direct),
                                       nn::ReLU<S, Mem>(), nn::MaxPool2D<S, Mem>(2));
      REQUIRE(fused.num_params() == plain.num_params());
      // The same initialisation as Conv2D's.
      nn::Conv2D<S, Mem> conv(c.cin, c.cout, g);
      fused.initialize(seed);
      conv.initialize(seed);
      CHECK(max_diff(lt::host_values(fused.parameters()), lt::host_values(conv.parameters())) == 0);
      lt::fill_normal(fused.parameters(), seed + 2, 0.5);
      {
        // Channel 0: W = 0, b = 0.5 (every window a tie of positive values:
        // the first position must win); channel 1: W = 0, b = -0.5 (no
        // positive value: no gradient anywhere).
        auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), fused.parameters());
        long const k = fused.ksize();
        for (long i = 0; i < 2 * k; ++i)
          h(i) = S(0);
        h(long(c.cout) * k) = S(0.5);
        h(long(c.cout) * k + 1) = S(-0.5);
        Kokkos::deep_copy(fused.parameters(), h);
      }
      Kokkos::deep_copy(plain.parameters(), fused.parameters());
      std::string const what = std::string(Space::name()) + " k" + std::to_string(c.k) + " s" + std::to_string(c.s) +
                               " " + c.in.str() + (direct ? " direct" : " im2col");
      compare<S>(space, fused, plain, c.in, seed, what, direct);
      // Another batch size, then the first again (buffers re-prepared).
      nn::Shape4 small = c.in;
      small.n = 1;
      compare<S>(space, fused, plain, small, seed + 3, what + ", batch 1", direct);
      compare<S>(space, fused, plain, c.in, seed + 4, what + ", batch again", direct);
      seed += 10;
    }
  }
}

LENSING_TEST_CASE_TEMPLATE("nn: Conv2DReLUPool gradients and arguments", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  for (bool direct : {false, true}) {
    nn::Conv2DReLUPool<double, Mem> layer(2, 3, nn::Conv2DGeometry{3, 3, 1, 1, 1, 1, 1, 1}, nn::Init::he_normal,
                                          direct);
    layer.initialize(3);
    lt::expect_gradients(space, layer, nn::Shape4{2, 2, 6, 5}, direct ? "Conv2DReLUPool direct" : "Conv2DReLUPool");
  }
  {
    // One input channel: the host path's direct weight gradient.
    nn::Conv2DReLUPool<double, Mem> one(1, 3, 5, 1, 2);
    one.initialize(4);
    lt::expect_gradients(space, one, nn::Shape4{2, 1, 8, 7}, "Conv2DReLUPool one channel");
  }
  nn::Conv2DReLUPool<double, Mem> layer(1, 2, 3);
  CHECK_THROWS_AS(layer.output_shape(nn::Shape4{1, 1, 3, 5}), std::invalid_argument);  // z is 1x3
  CHECK_THROWS_AS(layer.output_shape(nn::Shape4{1, 2, 6, 6}), std::invalid_argument);  // channels
  CHECK(layer.output_shape(nn::Shape4{2, 1, 7, 6}) == nn::Shape4{2, 2, 2, 2});
}

LENSING_TEST_CASE_TEMPLATE("nn: a CNN of Conv2DReLUPool blocks equals the CNN written layer by layer", Config,
                           lt::AllConfigs) {
  // The regressor's structure in small (examples/train_regressor): two blocks,
  // then dense; the same flat parameter vector in both networks (this checks
  // the fused layer inside Sequential: its prepare, and its state between the
  // network's forward and backward).  Error model: the output is identical
  // (see compare); the parameter gradients differ only in the bias sums and
  // the first layer's direct weight gradient, sums of ≤ N P = 512 terms in
  // another order, whose rigorous bounds the cases above check layer by layer.
  // Here Σ|terms| is not at hand, so we allow 1e3 ε max|g|: loose (we see
  // ≤ 1 ε max|g|), yet 1e3 below the O(max|g|) error of a wrong fusion.
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const n = 2;
  nn::Shape4 const in{n, 1, 16, 16};
  auto fused =
      nn::make_sequential(in, nn::Conv2DReLUPool<S, Mem>(1, 4, 5, 1, 2), nn::Conv2DReLUPool<S, Mem>(4, 6, 3, 1, 1),
                          nn::Flatten<S, Mem>(), nn::Dense<S, Mem>(6 * 4 * 4, 5));
  auto plain = nn::make_sequential(in, nn::Conv2D<S, Mem>(1, 4, 5, 1, 2), nn::ReLU<S, Mem>(), nn::MaxPool2D<S, Mem>(2),
                                   nn::Conv2D<S, Mem>(4, 6, 3, 1, 1), nn::ReLU<S, Mem>(), nn::MaxPool2D<S, Mem>(2),
                                   nn::Flatten<S, Mem>(), nn::Dense<S, Mem>(6 * 4 * 4, 5));
  REQUIRE(fused.num_params() == plain.num_params());
  plain.initialize(5);
  lt::fill_normal(plain.parameters(), 6, 0.4);
  Kokkos::deep_copy(fused.parameters(), plain.parameters());
  nn::Tensor<S, Mem> x("x", n, 1, 16, 16);
  lt::fill_normal(x, 7, 1.0);
  fused.set_training(true);
  plain.set_training(true);
  fused.forward(space, x);
  plain.forward(space, x);
  Kokkos::deep_copy(fused.output_gradient(), S(0.1));
  Kokkos::deep_copy(plain.output_gradient(), S(0.1));
  fused.backward(space, x);
  plain.backward(space, x);
  space.fence();
  CHECK(max_diff(lt::host_values(fused.output()), lt::host_values(plain.output())) == 0);
  auto const gp = lt::host_values(plain.gradients());
  double gmax = 0;
  for (double v : gp)
    gmax = std::max(gmax, std::abs(v));
  double const eg = max_diff(lt::host_values(fused.gradients()), gp);
  MESSAGE(std::string(Space::name()) << ": network gradients differ by " << eg << " (max " << gmax << ")");
  CHECK(gmax > 0);
  CHECK(eg <= 1e3 * double(std::numeric_limits<S>::epsilon()) * gmax);
}

LENSING_TEST_CASE_TEMPLATE("nn: masked im2col and col2im equal detail::im2col and col2im", Config, lt::AllConfigs) {
  // Host functions on host arrays (the configs give the scalar; every space
  // runs the same host code).  Error model: im2col copies values and writes
  // zeros: equal.  col2im gives each input element 0 + its terms in (ki, kj)
  // order in both versions; the masked one also adds exact +0s (masked
  // lanes, zeroed wrapped columns), which change no partial sum (none
  // starting from +0 is −0): equal, bit for bit.  A lost shift, a wrapped
  // column left in, a wrong mask edge or a term dropped or added changes
  // values by O(1).
  using S = typename Config::scalar;
  namespace d = lensing::nn::detail;
  struct Case {
    long c, h, w, kh, kw, sh, sw, ph, pw, dh, dw;
  };
  Case const cases[] = {
      {2, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1},    // "same", 8 wide (the CNN's last block)
      {3, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1},  // "same", 16 wide
      {2, 12, 33, 3, 3, 1, 1, 1, 1, 1, 1},  // "same", 33 wide (a partial vector per row)
      {1, 20, 21, 5, 5, 1, 1, 2, 2, 1, 1},  // "same" 5x5 (the first block's shape, smaller)
      {2, 9, 11, 3, 3, 1, 1, 2, 2, 2, 2},   // "same" with dilation 2
      {2, 3, 2, 5, 5, 1, 1, 2, 2, 1, 1},    // "same", kernel wider than the image
      {2, 7, 19, 3, 5, 1, 1, 1, 0, 1, 1},   // narrower output (no column padding): row path
      {2, 9, 10, 3, 3, 2, 1, 1, 1, 1, 1},   // vertical stride 2: row path
      {2, 6, 40, 2, 3, 1, 1, 0, 3, 1, 2},   // padding wider than the kernel's reach: row path
      {2, 9, 10, 3, 3, 2, 2, 1, 1, 1, 1},   // horizontal stride 2: the plain version
  };
  unsigned seed = 90;
  for (auto const& c : cases) {
    d::ConvDims dims{1, c.c, c.h, c.w, 3, 0, 0, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw};
    dims.oh = nn::Conv2DGeometry::out_extent(c.h, c.kh, c.sh, c.ph, c.dh);
    dims.ow = nn::Conv2DGeometry::out_extent(c.w, c.kw, c.sw, c.pw, c.dw);
    REQUIRE(dims.oh >= 1);
    REQUIRE(dims.ow >= 1);
    long const k = c.c * c.kh * c.kw, p = dims.oh * dims.ow, nx = c.c * c.h * c.w;
    std::vector<S> x(std::size_t(nx + 64)), colr(std::size_t(k * p)), colm(std::size_t(k * p), S(7));
    // x sits in a larger array with NaN around it: a read outside the sample shows.
    for (auto& v : x)
      v = std::numeric_limits<S>::quiet_NaN();
    {
      nn::ParamVector<S, Kokkos::HostSpace> h("x", nx);
      lt::fill_normal(h, seed, 1.0);
      for (long i = 0; i < nx; ++i)
        x[std::size_t(32 + i)] = h(i);
    }
    S const* xs = x.data() + 32;
    d::im2col(dims, xs, colr.data());
    d::im2col_masked(dims, xs, colm.data());
    long bad = 0;
    for (long i = 0; i < k * p; ++i)
      bad += !(colr[std::size_t(i)] == colm[std::size_t(i)]);
    std::string const what = "c" + std::to_string(c.c) + " " + std::to_string(c.h) + "x" + std::to_string(c.w) + " k" +
                             std::to_string(c.kh) + "x" + std::to_string(c.kw) + " s" + std::to_string(c.sh) +
                             std::to_string(c.sw) + " p" + std::to_string(c.ph) + std::to_string(c.pw) + " d" +
                             std::to_string(c.dh) + std::to_string(c.dw);
    INFO(what);
    CHECK(bad == 0);
    // col2im of a random col (every element, the padded ones included, nonzero).
    std::vector<S> dcol(std::size_t(k * p)), dxr(std::size_t(nx), S(7)), dxm(std::size_t(nx), S(7));
    {
      nn::ParamVector<S, Kokkos::HostSpace> h("dcol", k * p);
      lt::fill_normal(h, seed + 1, 1.0);
      for (long i = 0; i < k * p; ++i)
        dcol[std::size_t(i)] = h(i);
    }
    d::col2im(dims, static_cast<S const*>(dcol.data()), dxr.data());
    std::vector<S> scratch = dcol;
    d::col2im_masked(dims, scratch.data(), dxm.data());
    bad = 0;
    for (long i = 0; i < nx; ++i)
      bad += !(dxr[std::size_t(i)] == dxm[std::size_t(i)]);
    CHECK(bad == 0);
    // The adjoint pair: <col(x), dcol> = <x, col2im(dcol)> (a check of the reference itself, to rounding).
    double lhs = 0, rhs = 0, mag = 0;
    for (long i = 0; i < k * p; ++i) {
      lhs += double(colm[std::size_t(i)]) * double(dcol[std::size_t(i)]);
      mag += std::abs(double(colm[std::size_t(i)]) * double(dcol[std::size_t(i)]));
    }
    for (long i = 0; i < nx; ++i)
      rhs += double(xs[i]) * double(dxm[std::size_t(i)]);
    // Each dxm element rounds a sum of ≤ kh kw terms in S: ≤ kh kw ε Σ|terms|.
    CHECK(std::abs(lhs - rhs) <= double(c.kh * c.kw) * double(std::numeric_limits<S>::epsilon()) * mag + 1e-300);
    seed += 7;
  }
}
