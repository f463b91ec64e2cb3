// ConvGRU: the forward pass against a direct evaluation of its documented
// equations, the hand-derived backward pass (inputs x and h, and every
// parameter) against central differences, the per-step Cache path against
// the Layer path, and bad arguments.
#include <lensing/nn/conv_gru.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {

// Direct evaluation of the cell (host, double) from the flat parameters:
// [z, r] = sigmoid(W_g * [x, h] + b_g), h~ = tanh(W_c * [x, r.h] + b_c),
// h' = (1 - z) h + z h~, "same" k x k cross-correlation with zero padding.
std::vector<double> reference_gru(std::vector<double> const& xh, std::vector<double> const& p, int n, int cx, int ch,
                                  int hh, int ww, int k) {
  int const cin = cx + ch, r = k / 2;
  long const hw = long(hh) * ww;
  auto conv = [&](std::vector<double> const& in, long w0, int cout, int oc, int b, int i, int j) {
    long const bias = w0 + long(cout) * cin * k * k;
    double s = p[std::size_t(bias + oc)];
    for (int c = 0; c < cin; ++c)
      for (int a = 0; a < k; ++a)
        for (int q = 0; q < k; ++q) {
          int const y = i - r + a, x = j - r + q;
          if (y < 0 || y >= hh || x < 0 || x >= ww) continue;
          s += p[std::size_t(w0 + ((long(oc) * cin + c) * k + a) * k + q)] *
               in[std::size_t((long(b) * cin + c) * hw + long(y) * ww + x)];
        }
    return s;
  };
  auto sig = [](double a) { return 1 / (1 + std::exp(-a)); };
  long const ng = long(2 * ch) * cin * k * k + 2 * ch;
  std::vector<double> u(xh.size()), out(std::size_t(n) * ch * hw);
  for (int b = 0; b < n; ++b)
    for (int c = 0; c < cin; ++c)
      for (int i = 0; i < hh; ++i)
        for (int j = 0; j < ww; ++j) {
          std::size_t const at = std::size_t((long(b) * cin + c) * hw + long(i) * ww + j);
          u[at] = c < cx ? xh[at] : sig(conv(xh, 0, 2 * ch, ch + c - cx, b, i, j)) * xh[at];
        }
  for (int b = 0; b < n; ++b)
    for (int c = 0; c < ch; ++c)
      for (int i = 0; i < hh; ++i)
        for (int j = 0; j < ww; ++j) {
          double const z = sig(conv(xh, 0, 2 * ch, c, b, i, j));
          double const ht = std::tanh(conv(u, ng, ch, c, b, i, j));
          double const h = xh[std::size_t((long(b) * cin + cx + c) * hw + long(i) * ww + j)];
          out[std::size_t((long(b) * ch + c) * hw + long(i) * ww + j)] = (1 - z) * h + z * ht;
        }
  return out;
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("nn: ConvGRU forward matches its equations", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  // Values O(1), sums of <= (C_x + C_h) k^2 = 63 products: float rounding
  // ~ 63 * 6e-8 ~ 4e-6 relative to the O(1) terms; double ~1e-14.
  double const tol = std::is_same<S, float>::value ? 2e-5 : 1e-12;
  for (int k : {1, 3}) {
    int const n = 2, cx = 3, ch = 4, hh = 5, ww = 6;
    nn::ConvGRU<S, Mem> gru(cx, ch, k);
    gru.initialize(11);
    lt::fill_normal(gru.parameters(), 12, 0.4);
    nn::Tensor<S, Mem> xh("xh", n, cx + ch, hh, ww), y("y", n, ch, hh, ww);
    lt::fill_normal(xh, 13);
    CHECK(gru.output_shape(nn::shape_of(xh)) == nn::Shape4{n, ch, hh, ww});
    gru.forward(space, xh, y);
    space.fence();
    auto const ref = reference_gru(lt::host_values(xh), lt::host_values(gru.parameters()), n, cx, ch, hh, ww, k);
    auto const got = lt::host_values(y);
    double err = 0;
    for (std::size_t i = 0; i < ref.size(); ++i)
      err = std::max(err, std::abs(got[i] - ref[i]));
    MESSAGE("ConvGRU k=" << k << " forward on " << std::string(Space::name()) << ": max |y - reference| " << err);
    CHECK(err < tol);
  }
}

LENSING_TEST_CASE_TEMPLATE("nn: ConvGRU gradients against central differences", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  // Error model (nn/gradient_check.hpp): central differences at h = 1e-5 of a
  // smooth layer with O(1) inputs, truncation h^2/6 |L'''| ~ 1e-10 and
  // rounding ~1e-16 |L| / h ~ 1e-10: every partial within 1e-7.
  struct Case {
    int cx, ch, k;
    nn::Shape4 in;
  };
  for (Case const c : {Case{3, 2, 3, {2, 5, 5, 4}}, Case{1, 3, 1, {3, 4, 3, 3}}, Case{2, 2, 5, {1, 4, 6, 5}}}) {
    nn::ConvGRU<double, Mem> gru(c.cx, c.ch, c.k);
    gru.initialize(3);
    lt::fill_normal(gru.parameters(), 4, 0.5);  // biases away from 0 too
    auto const r = lt::check_layer_gradients(space, gru, c.in, 5, 1e-5, 400);
    MESSAGE("ConvGRU (C_x " << c.cx << ", C_h " << c.ch << ", k " << c.k << ") on " << std::string(Space::name())
                            << ": input grad err " << r.input_error << " (" << r.inputs << " checked), param grad err "
                            << r.param_error << " (" << r.params << " of " << gru.num_params() << " checked)");
    CHECK(r.inputs == long(c.in.n) * c.in.c * c.in.h * c.in.w);
    CHECK(r.params >= std::min(400L, gru.num_params()));
    CHECK(r.input_error < 1e-7);
    CHECK(r.param_error < 1e-7);
  }
}

LENSING_TEST_CASE_TEMPLATE("nn: ConvGRU cached backward equals the Layer backward", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  nn::Shape4 const in{2, 5, 4, 4};
  nn::ConvGRU<double, Mem> gru(2, 3, 3);
  gru.initialize(8);
  nn::Tensor<double, Mem> xh("xh", 2, 5, 4, 4), other("other", 2, 5, 4, 4), y("y", 2, 3, 4, 4), y2("y2", 2, 3, 4, 4),
      dy("dy", 2, 3, 4, 4), dx1("dx1", 2, 5, 4, 4), dx2("dx2", 2, 5, 4, 4);
  lt::fill_normal(xh, 9);
  lt::fill_normal(other, 10);
  lt::fill_normal(dy, 11);
  nn::ParamVector<double, Mem> dp1("dp1", gru.num_params()), dp2("dp2", gru.num_params());
  auto cache = gru.make_cache(in);
  gru.forward(space, xh, y, cache);
  gru.forward(space, other, y2);  // the Layer's own cache now holds another input
  gru.backward(space, xh, dy, dx1, dp1, cache);
  gru.backward(space, xh, y, dy, dx2, dp2);
  space.fence();
  CHECK(lt::rel_diff(lt::host_values(dx1), lt::host_values(dx2)) < 1e-14);
  CHECK(lt::rel_diff(lt::host_values(dp1), lt::host_values(dp2)) < 1e-14);
  // Without dx the parameter gradients are the same.
  gru.backward(space, xh, dy, nn::Tensor<double, Mem>(), dp2, cache);
  space.fence();
  CHECK(lt::rel_diff(lt::host_values(dp1), lt::host_values(dp2)) < 1e-14);
}

LENSING_TEST_CASE_TEMPLATE("nn: ConvGRU bad arguments", Config, lt::DoubleConfigs) {
  using Mem = typename Config::memory_space;
  using G = nn::ConvGRU<double, Mem>;
  CHECK_THROWS_AS(G(0, 2, 3), std::invalid_argument);
  CHECK_THROWS_AS(G(2, 0, 3), std::invalid_argument);
  CHECK(lt::error_message([] { G(2, 2, 4); }).find("lensing::nn::ConvGRU: kernel must be odd") != std::string::npos);
  G gru(2, 3, 3);
  CHECK(lt::error_message([&] {
          gru.output_shape(nn::Shape4{1, 4, 5, 5});
        }).find("must hold [x, h]: 2 + 3 channels") != std::string::npos);
  typename Config::execution_space space;
  nn::Tensor<double, Mem> xh("xh", 1, 5, 4, 4), y("y", 1, 3, 4, 4);
  auto bad_cache = gru.make_cache(nn::Shape4{2, 5, 4, 4});
  CHECK_THROWS_AS(gru.forward(space, xh, y, bad_cache), std::invalid_argument);
  static_assert(nn::is_layer_v<G>, "ConvGRU models the Layer archetype");
}
