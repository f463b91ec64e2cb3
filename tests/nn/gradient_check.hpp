#ifndef LENSING_TESTS_NN_GRADIENT_CHECK_HPP
#define LENSING_TESTS_NN_GRADIENT_CHECK_HPP

// One generic gradient checker for every layer (as dlib's test_layer): with
// random x and a random upstream r, L(x, θ) = Σ r ⊙ layer(x; θ); backward
// with dy = r must give dL/dx and dL/dθ equal to central differences
// (L(·+h) − L(·−h))/2h, in double.  Each forward runs on a fresh copy of the
// prototype layer, so stochastic layers (dropout) reuse the same randomness.

#include <lensing/nn/layer.hpp>

#include <lensing_test.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace lensing {
namespace test {

struct GradCheck {
  double input_error = 0;  // max |fd - analytic| / max(1, |analytic|) over the checked inputs
  double param_error = 0;  // same over the checked parameters
  long inputs = 0, params = 0;
};

template <class View>
void fill_normal(View const& v, unsigned seed, double scale = 1.0) {
  auto h = Kokkos::create_mirror_view(v);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, scale);
  auto* p = h.data();
  for (std::size_t i = 0; i < h.size(); ++i)
    p[i] = typename View::value_type(nd(rng));
  Kokkos::deep_copy(v, h);
}

/// Indices to check: all of [0, n) when n <= max, else max spread evenly.
inline std::vector<long> pick(long n, long max) {
  std::vector<long> idx;
  if (n <= max) {
    for (long i = 0; i < n; ++i)
      idx.push_back(i);
  } else {
    for (long k = 0; k < max; ++k)
      idx.push_back((k * n) / max + (k * 7919) % std::max(1L, n / max));
  }
  return idx;
}

template <class Space, class Layer>
GradCheck check_layer_gradients(Space const& space, Layer const& proto, nn::Shape4 const& in, unsigned seed = 1,
                                double h = 1e-5, long max_checks = 80, double x_scale = 1.0) {
  using T = typename Layer::tensor_type;
  using V = typename Layer::vector_type;
  static_assert(std::is_same<typename Layer::scalar_type, double>::value, "gradient checks run in double");
  nn::Shape4 const out = proto.output_shape(in);
  T x("x", in.n, in.c, in.h, in.w), y("y", out.n, out.c, out.h, out.w), r("r", out.n, out.c, out.h, out.w);
  T dx("dx", in.n, in.c, in.h, in.w);
  fill_normal(x, seed, x_scale);
  fill_normal(r, seed + 1);
  V params = proto.parameters();
  V dparams("dparams", proto.num_params());
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
  auto hr = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), r);
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), params);
  auto loss = [&]() {
    Layer l = proto;
    l.prepare(in);
    l.forward(space, x, y);
    space.fence();
    auto hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
    double s = 0;
    for (std::size_t i = 0; i < hy.size(); ++i)
      s += hr.data()[i] * hy.data()[i];
    return s;
  };
  {
    Layer l = proto;
    l.prepare(in);
    l.forward(space, x, y);
    l.backward(space, x, y, r, dx, dparams);
    space.fence();
  }
  auto hdx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dx);
  auto hdp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dparams);
  GradCheck res;
  for (long i : pick(long(hx.size()), max_checks)) {
    double const x0 = hx.data()[i];
    hx.data()[i] = x0 + h;
    Kokkos::deep_copy(x, hx);
    double const lp = loss();
    hx.data()[i] = x0 - h;
    Kokkos::deep_copy(x, hx);
    double const lm = loss();
    hx.data()[i] = x0;
    Kokkos::deep_copy(x, hx);
    double const fd = (lp - lm) / (2 * h), an = hdx.data()[i];
    res.input_error = std::max(res.input_error, std::abs(fd - an) / std::max(1.0, std::abs(an)));
    ++res.inputs;
  }
  for (long i : pick(long(hp.size()), max_checks)) {
    double const p0 = hp(i);
    hp(i) = p0 + h;
    Kokkos::deep_copy(params, hp);
    double const lp = loss();
    hp(i) = p0 - h;
    Kokkos::deep_copy(params, hp);
    double const lm = loss();
    hp(i) = p0;
    Kokkos::deep_copy(params, hp);
    double const fd = (lp - lm) / (2 * h), an = hdp(i);
    res.param_error = std::max(res.param_error, std::abs(fd - an) / std::max(1.0, std::abs(an)));
    ++res.params;
  }
  return res;
}

/// Max of |fd - analytic| / max(1, |analytic|) over every element of `x`,
/// where loss(grad) returns the loss and writes its gradient wrt x into grad
/// (skipped for an empty grad).
template <class T, class F>
double loss_fd_error(T const& x, F const& loss, double h = 1e-6) {
  T grad("grad", x.extent(0), x.extent(1), x.extent(2), x.extent(3)), none;
  loss(grad);
  auto const g = host_values(grad);
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
  double err = 0;
  for (std::size_t i = 0; i < hx.size(); ++i) {
    double const x0 = hx.data()[i];
    hx.data()[i] = x0 + h;
    Kokkos::deep_copy(x, hx);
    double const lp = loss(none);
    hx.data()[i] = x0 - h;
    Kokkos::deep_copy(x, hx);
    double const lm = loss(none);
    hx.data()[i] = x0;
    Kokkos::deep_copy(x, hx);
    err = std::max(err, std::abs((lp - lm) / (2 * h) - g[i]) / std::max(1.0, std::abs(g[i])));
  }
  return err;
}

/// check_layer_gradients with the standard tolerance (1e-7 relative, double),
/// the errors reported through MESSAGE.
template <class Space, class Layer>
void expect_gradients(Space const& space, Layer const& layer, nn::Shape4 in, std::string const& what,
                      double x_scale = 1.0) {
  constexpr double grad_tol = 1e-7;
  auto const r = check_layer_gradients(space, layer, in, 7, 1e-5, 80, x_scale);
  MESSAGE(what << " on " << std::string(Space::name()) << ": input grad err " << r.input_error << " (" << r.inputs
               << " checked), param grad err " << r.param_error << " (" << r.params << " checked)");
  CHECK(r.inputs > 0);
  CHECK(r.input_error < grad_tol);
  CHECK(r.param_error < grad_tol);
  if (layer.num_params() > 0) CHECK(r.params > 0);
}

}  // namespace test
}  // namespace lensing

#endif
