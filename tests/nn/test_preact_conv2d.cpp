// PreactConv2D (BatchNorm, ELU and Conv2D fused into one layer) against the
// three layers run one after the other with the same parameters and state:
// forward, the input gradient and the parameter gradients, in training and
// inference mode, for 1x1, 3x3 and strided 3x3 kernels, batch sizes that
// change between calls; the pre-activated bottleneck unit (built of fused
// layers) against the same unit written out layer by layer; and the fused
// layer's gradients against central differences (double).
#include <lensing/nn/preact_conv2d.hpp>
#include <lensing/nn/residual.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {

double max_abs(std::vector<double> const& v) {
  double m = 0;
  for (double x : v)
    m = std::max(m, std::abs(x));
  return m;
}
double max_diff(std::vector<double> const& a, std::vector<double> const& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// Runs `fused` and `plain` (same parameters, state and mode) forward on x and
// backward from dy, and compares y, dx and the parameter gradients.
//
// Error model (ε the scalar's unit roundoff).  Forward: both compute t = a x +
// b' with a = γ/√(σ²+ε_BN), b' = β − a μ from the same statistics (the same
// code), z = ELU(t) by the same function and y by the same GEMM calls on the
// same col; the only freedom is the compiler contracting a x + b' into an FMA
// in one path and not the other: |Δt| ≤ ε|t|, so |Δz| ≤ ε(|t| + 1) and
// |Δy| ≤ Σ_K |W| |Δz| ≤ ε K max|W| (max|t| + 1) ≤ 4 ε K max|W| max(|y|, 1) for
// the O(1) data here; we allow 4 ε K max|W| (max|y| + 1).  Backward: dz is
// the same GEMM/col2im; dt = ELU'(t) dz differs like z; BatchNorm's channel
// sums Σ dt and Σ dt (x − μ) are both accumulated in double (in another
// order: an error of ~m·2⁻⁵³ relative to Σ|terms|, far below ε of the float
// result) and rounded once, so dγ, dβ differ by ≤ 2ε of their size and dx =
// a (dt − k0 − (x − μ) k1) by ≤ 4ε (|a||dt| + |a||k0| + |a||x − μ||k1|); the
// weight gradients Σ dy col(z)ᵀ inherit Δz: ≤ 4ε P N max|dy| (max|z| + 1);
// the bias gradients Σ dy are summed in double by both (detail::
// add_channel_sums; were one of them a float sum in order they would differ
// by ≤ P ε Σ|dy| per sample, P = oh·ow), so max(K, P) in place of K bounds
// the parameter gradients either way.
// We check each backward vector against 16 ε K max|·| (the K = C_in k_h k_w of the
// convolution bounds the accumulation lengths that matter here by the same
// factor as the forward bound).  A wrong fusion (a channel's a or b' swapped,
// padding with ELU(b') instead of 0, the inference statistics in training, a
// missing term of BatchNorm's dx) changes these values by O(1) relative.
template <class S, class Space, class Fused, class Plain>
void compare(Space const& space, Fused& fused, Plain& plain, nn::Shape4 in, long k, unsigned seed, std::string what) {
  using Mem = typename Space::memory_space;
  double const eps = std::numeric_limits<S>::epsilon();
  nn::Tensor<S, Mem> x("x", in.n, in.c, in.h, in.w), dxf("dxf", in.n, in.c, in.h, in.w),
      dxp("dxp", in.n, in.c, in.h, in.w);
  nn::Shape4 const out = fused.output_shape(in);
  CHECK(out == plain.output_shape(in));
  nn::Tensor<S, Mem> yf("yf", out.n, out.c, out.h, out.w), yp("yp", out.n, out.c, out.h, out.w),
      dy("dy", out.n, out.c, out.h, out.w);
  lt::fill_normal(x, seed, 1.0);
  lt::fill_normal(dy, seed + 1, 1.0);
  // Shift x so that the channels' means differ from 0 (BatchNorm subtracts them).
  {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
    for (std::size_t i = 0; i < h.size(); ++i)
      h.data()[i] += S(0.3);
    Kokkos::deep_copy(x, h);
  }
  nn::ParamVector<S, Mem> gf("gf", fused.num_params()), gp("gp", plain.num_params());
  fused.forward(space, x, yf);
  plain.forward(space, x, yp);
  fused.backward(space, x, yf, dy, dxf, gf);
  plain.backward(space, x, yp, dy, dxp, gp);
  space.fence();
  double const wmax = max_abs(lt::host_values(fused.parameters()));
  auto const yfv = lt::host_values(yf), ypv = lt::host_values(yp);
  double const ey = max_diff(yfv, ypv), ty = 4 * eps * double(k) * wmax * (max_abs(ypv) + 1);
  auto const dxfv = lt::host_values(dxf), dxpv = lt::host_values(dxp);
  double const edx = max_diff(dxfv, dxpv), tdx = 16 * eps * double(k) * max_abs(dxpv);
  auto const gfv = lt::host_values(gf), gpv = lt::host_values(gp);
  double const eg = max_diff(gfv, gpv), tg = 16 * eps * double(std::max<long>(k, long(out.h) * out.w)) * max_abs(gpv);
  MESSAGE(what << ": |dy| " << ey << " (allowed " << ty << "), |ddx| " << edx << " (" << tdx << "), |dparams| " << eg
               << " (" << tg << ")");
  CHECK(ey <= ty);
  CHECK(edx <= tdx);
  CHECK(eg <= tg);
  // The state (running statistics) moved the same way.
  CHECK(max_diff(lt::host_values(fused.state()), lt::host_values(plain.state())) <=
        4 * eps * (max_abs(lt::host_values(plain.state())) + 1));
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("nn: PreactConv2D equals BatchNorm, ELU, Conv2D in sequence", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  struct Case {
    int cin, cout, k, s, p;
    nn::Shape4 in;
  };
  Case const cases[] = {{5, 7, 1, 1, 0, {4, 5, 6, 7}},    // 1x1: the GEMM reads z directly
                        {3, 4, 3, 1, 1, {3, 3, 7, 6}},    // 3x3, padding: zeros of z, not ELU(b')
                        {4, 5, 3, 1, 1, {3, 4, 10, 9}},   // 3x3 on 90 pixels: one sample a GEMM, shifted planes
                        {4, 6, 3, 2, 1, {5, 4, 9, 8}},    // strided (small maps: samples grouped)
                        {4, 5, 3, 2, 1, {3, 4, 19, 18}},  // strided, 90 output pixels: phase planes, col2im
                        {6, 3, 1, 2, 0, {2, 6, 5, 5}}};   // strided 1x1 (not pointwise)
  unsigned seed = 10;
  for (auto const& c : cases) {
    for (bool training : {true, false}) {
      nn::PreactConv2D<S, Mem> fused(c.cin, c.cout, c.k, c.s, c.p);
      auto plain = nn::make_sequential(nn::BatchNorm<S, Mem>(c.cin), nn::ELU<S, Mem>(),
                                       nn::Conv2D<S, Mem>(c.cin, c.cout, c.k, c.s, c.p));
      CHECK(fused.num_params() == plain.num_params());
      CHECK(fused.num_state() == plain.num_state());
      fused.initialize(seed);
      lt::fill_normal(fused.parameters(), seed + 2, 0.5);
      // γ around 1 (of either sign), β around 0: random, as after training.
      Kokkos::deep_copy(plain.parameters(), fused.parameters());
      // Running statistics with nonzero mean and variance != 1 (what inference uses).
      {
        auto st = Kokkos::create_mirror_view(fused.state());
        for (int i = 0; i < c.cin; ++i) {
          st(i) = S(0.2 + 0.05 * i);
          st(c.cin + i) = S(0.5 + 0.3 * i);
        }
        Kokkos::deep_copy(fused.state(), st);
        Kokkos::deep_copy(plain.state(), st);
      }
      fused.set_training(training);
      plain.set_training(training);
      long const k = long(c.cin) * c.k * c.k;
      std::string const what = std::string(Space::name()) + " k" + std::to_string(c.k) + " s" + std::to_string(c.s) +
                               (training ? " training" : " inference");
      compare<S>(space, fused, plain, c.in, k, seed, what);
      // Another batch size, then the first again (buffers re-prepared).
      nn::Shape4 small = c.in;
      small.n = 2;
      compare<S>(space, fused, plain, small, k, seed + 3, what + ", batch 2");
      compare<S>(space, fused, plain, c.in, k, seed + 4, what + ", batch again");
      seed += 10;
    }
  }
}

LENSING_TEST_CASE_TEMPLATE("nn: fused bottleneck unit equals the unit written layer by layer", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using BN = nn::BatchNorm<S, Mem>;
  using E = nn::ELU<S, Mem>;
  using C = nn::Conv2D<S, Mem>;
  Space space;
  nn::Shape4 const in{4, 6, 8, 8};
  for (bool training : {true, false}) {
    auto fused = nn::make_preact_bottleneck<S, Mem>(6, 3, 8, 2);
    auto block = nn::make_sequential(BN(6), E(), C(6, 3, 1), BN(3), E(), C(3, 3, 3, 2, 1), BN(3), E(), C(3, 8, 1));
    nn::Residual<decltype(block), C> plain(block, C(6, 8, 1, 2));
    REQUIRE(fused.num_params() == plain.num_params());
    REQUIRE(fused.num_state() == plain.num_state());
    lt::fill_normal(fused.parameters(), 7, 0.5);
    Kokkos::deep_copy(plain.parameters(), fused.parameters());
    fused.set_training(training);
    plain.set_training(training);
    // The longest accumulation: the 3x3 convolution's K = 27, composed through three layers.
    compare<S>(space, fused, plain, in, 3 * 27, 21,
               std::string(Space::name()) + " bottleneck" + (training ? " training" : " inference"));
  }
  // The identity unit.
  auto fused = nn::make_preact_bottleneck_identity<S, Mem>(8, 2);
  auto block = nn::make_sequential(BN(8), E(), C(8, 2, 1), BN(2), E(), C(2, 2, 3, 1, 1), BN(2), E(), C(2, 8, 1));
  nn::Residual<decltype(block)> plain(block);
  lt::fill_normal(fused.parameters(), 8, 0.5);
  Kokkos::deep_copy(plain.parameters(), fused.parameters());
  compare<S>(space, fused, plain, nn::Shape4{3, 8, 5, 5}, 3 * 27, 31, std::string(Space::name()) + " identity unit");
}

// An identity unit in inference runs its three layers sample group by
// sample group on each thread (Residual::forward_chain: the inner outputs in
// per-thread buffers, not in the branch's activations): y must equal the
// unit written layer by layer (the error model of compare: the same
// arithmetic as the fused layers one after the other), and a backward after
// it (which first forms the activations the chain did not store) the same
// gradients.  Maps of 25 pixels run groups of 2–3 samples a GEMM, 81 pixels
// one; the running statistics are moved away from (0, 1) by training
// forwards first, so that inference does not reduce to BatchNorm's identity.
LENSING_TEST_CASE_TEMPLATE("nn: identity unit in inference (sample-by-sample forward) equals the unit layer by layer",
                           Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using BN = nn::BatchNorm<S, Mem>;
  using E = nn::ELU<S, Mem>;
  using C = nn::Conv2D<S, Mem>;
  Space space;
  for (nn::Shape4 const in : {nn::Shape4{5, 8, 5, 5}, nn::Shape4{3, 8, 9, 9}}) {
    auto fused = nn::make_preact_bottleneck_identity<S, Mem>(8, 3);
    auto block = nn::make_sequential(BN(8), E(), C(8, 3, 1), BN(3), E(), C(3, 3, 3, 1, 1), BN(3), E(), C(3, 8, 1));
    nn::Residual<decltype(block)> plain(block);
    lt::fill_normal(fused.parameters(), 9, 0.5);
    Kokkos::deep_copy(plain.parameters(), fused.parameters());
    {
      nn::Tensor<S, Mem> xt("xt", in.n, in.c, in.h, in.w), y1("y1", in.n, in.c, in.h, in.w),
          y2("y2", in.n, in.c, in.h, in.w);
      for (unsigned r = 0; r < 3; ++r) {
        lt::fill_normal(xt, 50 + r, 2.0);
        fused.forward(space, xt, y1);
        plain.forward(space, xt, y2);
      }
    }
    fused.set_training(false);
    plain.set_training(false);
    std::string const what = std::string(Space::name()) + " identity unit, inference, " + in.str();
    if constexpr (lensing::detail::is_host_space_v<Space>) {
      // The host ran the sample-by-sample path: the branch's first activation is left as it was.
      nn::Tensor<S, Mem> x("x", in.n, in.c, in.h, in.w), y("y", in.n, in.c, in.h, in.w);
      lt::fill_normal(x, 60, 1.0);
      Kokkos::deep_copy(fused.block().activation(1), S(12345));
      fused.forward(space, x, y);
      space.fence();
      auto const a1 = lt::host_values(fused.block().activation(1));
      CHECK(*std::min_element(a1.begin(), a1.end()) == 12345.0);
    }
    compare<S>(space, fused, plain, in, 3 * 27, 61, what);
  }
}

// The host ELU loops of the fused layer (float: vectorised, branch-free,
// detail::expm1_nonpositive for expm1) against ELU and its derivative in
// double.  Error model: for t > 0 the loops copy t and the slope is 1
// (exact); for t ≤ 0, z = float(α) · expm1_nonpositive(t) with α = 1 and
// expm1_nonpositive within 0.87 ulp of e^t − 1 (its documented bound, from a
// pass over every float in [−90, 0]), so |z − (e^t − 1)| ≤ 0.87 ulp; the
// slope z + α is one float addition of values in (−1, 1]: exactly
// EluOp::derivative(t, z) of the same z (compared bit for bit).  The grid is
// every 257th float in [−90, 0] (≈ 4.4e6 values, all binades, subnormals
// included) and a few positive ones, run through PreactConv2D::elu, affine
// (a = 1, b' = 0: t itself) and elu_backward_channel as whole arrays, with
// lengths that leave a vector remainder.  A wrong polynomial coefficient,
// the low part of ln 2 dropped or 2ᵏ off by one exponent shows as ≥ 1 ulp.
TEST_CASE("nn: PreactConv2D's host ELU loops against ELU in double (float)") {
  using P = nn::PreactConv2D<float, Kokkos::HostSpace>;
  nn::EluOp const op{};
  std::vector<float> t;
  for (float v = -0.0f; !(v < -90.0f);) {
    t.push_back(v);
    std::uint32_t b;
    std::memcpy(&b, &v, sizeof b);
    b += 257;
    std::memcpy(&v, &b, sizeof v);
  }
  for (float v : {1e-30f, 1e-3f, 0.5f, 1.0f, 3.0f, 100.0f, -1000.0f})  // −1000: below the clamp, −1
    t.push_back(v);
  if (t.size() % 16 == 0) t.push_back(-2.5f);  // a vector remainder at 8 and 16 lanes
  long const n = long(t.size());
  std::vector<float> z(t.begin(), t.begin() + n), za(n);
  P::elu(n, op, z.data());
  float const stats[2] = {0.0f, 1.0f}, gb[2] = {1.0f, 0.0f};  // μ = 0, 1/σ = 1, γ = 1, β = 0: a = 1, b' = 0
  P::affine<true>(1, n, t.data(), gb, stats, op, za.data(), n);
  double worst = 0;
  long wrong_pos = 0, differ = 0;
  for (long i = 0; i < n; ++i) {
    differ += std::memcmp(&z[i], &za[i], sizeof(float)) != 0;
    if (t[i] > 0.0f) {
      wrong_pos += z[i] != t[i];
      continue;
    }
    double const exact = std::expm1(double(t[i]));
    int ex = 0;
    std::frexp(exact, &ex);
    double const ulp = std::max(std::ldexp(1.0, ex - 24), std::ldexp(1.0, -149));
    worst = std::max(worst, std::abs(double(z[i]) - exact) / ulp);
  }
  MESSAGE("ELU (float, host loops): " << n << " values, max error " << worst << " ulp");
  CHECK(worst <= 0.87);
  CHECK(wrong_pos == 0);
  CHECK(differ == 0);  // the fused affine+ELU pass and the ELU pass: the same function
  // The derivative: dc = ELU'(t) dc with dc = 1, bit for bit EluOp::derivative of the same z.
  std::vector<float> dc(n, 1.0f);
  double s0 = 0, s1 = 0;
  P::elu_backward_channel(n, 1.0f, 0.0f, 0.0f, t.data(), z.data(), dc.data(), op, s0, s1);
  long wrong_slope = 0;
  double r0 = 0, r1 = 0, a0 = 0, a1 = 0;
  for (long i = 0; i < n; ++i) {
    float const want = op.derivative(t[i], z[i]);
    wrong_slope += dc[i] != want;
    r0 += double(want);
    r1 += double(want * t[i]);
    a0 += std::abs(double(want));
    a1 += std::abs(double(want * t[i]));
  }
  CHECK(wrong_slope == 0);
  // The channel sums Σ dt, Σ dt (x − μ) (μ = 0), in double in another order:
  // each within n 2⁻⁵³ Σ|terms| of the other (the float products are the same).
  double const eps53 = std::ldexp(1.0, -53);
  CHECK(std::abs(s0 - r0) <= double(n) * eps53 * a0);
  CHECK(std::abs(s1 - r1) <= double(n) * eps53 * a1);
}

LENSING_TEST_CASE_TEMPLATE("nn: PreactConv2D gradients", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  for (bool training : {true, false}) {
    nn::PreactConv2D<double, Mem> layer(3, 4, 3, 2, 1);
    layer.initialize(1);
    lt::fill_normal(layer.parameters(), 2, 0.5);
    layer.set_training(training);
    auto r = lt::check_layer_gradients(space, layer, nn::Shape4{3, 3, 6, 5}, 3, 1e-5, 80);
    MESSAGE("PreactConv2D " << (training ? "training" : "inference") << ": input grad err " << r.input_error
                            << ", param grad err " << r.param_error);
    CHECK(r.input_error < 1e-7);
    CHECK(r.param_error < 1e-7);
  }
}

// backward_add (a residual unit's gradient sum formed in the layer's dx
// pass) against backward followed by the sum: dx_add = dx + addend to one
// rounding (the sum may be contracted into the FMA that forms dx: |Δ| ≤ ulp
// of |dx| + |addend|, taken as 2 ε (|dx| + |addend|)); the parameter
// gradients bit for bit (the same passes); bad addends rejected.
LENSING_TEST_CASE_TEMPLATE("nn: PreactConv2D backward_add equals backward plus the addend", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  double const eps = std::numeric_limits<S>::epsilon();
  for (bool training : {true, false}) {
    nn::PreactConv2D<S, Mem> layer(3, 4, 3, 1, 1);
    layer.initialize(1);
    lt::fill_normal(layer.parameters(), 2, 0.5);
    layer.set_training(training);
    nn::Shape4 const in{5, 3, 6, 7};
    nn::Tensor<S, Mem> x("x", 5, 3, 6, 7), y("y", 5, 4, 6, 7), dy("dy", 5, 4, 6, 7), dx("dx", 5, 3, 6, 7),
        dx_add("dx_add", 5, 3, 6, 7), addend("addend", 5, 3, 6, 7);
    lt::fill_normal(x, 3);
    lt::fill_normal(dy, 4);
    lt::fill_normal(addend, 5);
    using V = typename nn::PreactConv2D<S, Mem>::vector_type;
    V g("g", layer.num_params()), g_add("g_add", layer.num_params());
    layer.forward(space, x, y);
    layer.backward(space, x, y, dy, dx, g);
    layer.forward(space, x, y);  // training: the same batch statistics again
    layer.backward_add(space, x, y, dy, dx_add, g_add, addend);
    space.fence();
    auto const a = lt::host_values(dx), b = lt::host_values(dx_add), c = lt::host_values(addend);
    std::size_t outside = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
      outside += std::abs(double(b[i]) - (double(a[i]) + double(c[i]))) >
                 2 * eps * (std::abs(double(a[i])) + std::abs(double(c[i])));
    CHECK(outside == 0);
    CHECK(lt::host_values(g_add) == lt::host_values(g));
    CHECK_THROWS_AS(layer.backward_add(space, x, y, dy, dx_add, g_add, dx_add), std::invalid_argument);
    nn::Tensor<S, Mem> wrong("wrong", 5, 3, 6, 6);
    CHECK_THROWS_AS(layer.backward_add(space, x, y, dy, dx_add, g_add, wrong), std::invalid_argument);
    CHECK_THROWS_AS(layer.backward_add(space, x, y, dy, nn::Tensor<S, Mem>(), g_add, addend), std::invalid_argument);
  }
}
