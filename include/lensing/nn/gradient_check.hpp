#ifndef LENSING_NN_GRADIENT_CHECK_HPP
#define LENSING_NN_GRADIENT_CHECK_HPP

/// \file
/// Finite-difference checks of a layer's backward pass and of a loss's
/// gradient (double), for users writing their own layers and losses; built on
/// core/gradient_check.hpp (central differences, its error model and choice
/// of h).
///
///   auto const r = lensing::nn::check_layer_gradients(space, MyLayer<double, Mem>(...), {4, 3, 8, 8});
///   // r.input_error, r.param_error: max |fd - analytic| / max(1, |analytic|)
///
/// With random x and a random upstream r, L(x, theta) = sum r * layer(x; theta);
/// backward with dy = r must give dL/dx and dL/dtheta.  Each forward runs on a
/// fresh copy of the prototype layer, so stochastic layers (dropout) reuse the
/// same randomness.  L is linear in the output, so in double at h = 1e-5 the
/// truncation error is h^2/6 |L'''| and rounding ~1e-16 |L| / h: errors below
/// 1e-7 for smooth layers of O(1) inputs (kinks of ReLU-like layers within h
/// of an input give O(1) errors: keep inputs away from them or use fewer checks).

#include <lensing/core/gradient_check.hpp>
#include <lensing/core/random.hpp>
#include <lensing/nn/layer.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cstddef>
#include <type_traits>

namespace lensing {
namespace nn {

/// Outcome of check_layer_gradients.
struct LayerGradientCheck {
  double input_error = 0;       ///< max |fd - analytic| / max(1, |analytic|) over the checked inputs
  double param_error = 0;       ///< same over the checked parameters
  long inputs = 0, params = 0;  ///< how many of each were checked
};

/// Fill `v` (any rank, any memory space) with N(0, scale^2) draws of the
/// stream (seed, purpose_test_input) of core/random.hpp in memory order (host
/// generation, then a copy): reproducible test inputs.
template <class View>
void fill_normal(View const& v, unsigned seed, double scale = 1.0) {
  auto h = Kokkos::create_mirror_view(v);
  Rng rng(seed, random::purpose_test_input);
  auto* p = h.data();
  for (std::size_t i = 0; i < h.size(); ++i)
    p[i] = typename View::non_const_value_type(scale * rng.normal());
  Kokkos::deep_copy(v, h);
}

/// Check `proto`'s backward pass on inputs of shape `in`: x ~ N(0, x_scale^2),
/// r ~ N(0, 1) (seeds `seed` and seed + 1), at most `max_checks` inputs and
/// as many parameters (spread_indices), central differences with step h.
/// The layer must have scalar_type double.
template <class Space, class Layer>
LayerGradientCheck check_layer_gradients(Space const& space, Layer const& proto, Shape4 const& in, unsigned seed = 1,
                                         double h = 1e-5, long max_checks = 80, double x_scale = 1.0) {
  using T = typename Layer::tensor_type;
  using V = typename Layer::vector_type;
  static_assert(std::is_same<typename Layer::scalar_type, double>::value,
                "lensing::nn::check_layer_gradients: gradient checks run in double");
  Shape4 const out = proto.output_shape(in);
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
  // loss with element k of a host mirror set to v (copied to the layer's
  // memory), then restored.
  auto const perturbed = [&](auto& host, auto const& dev) {
    return [&host, &dev, &loss](long k, double v) {
      double const v0 = host.data()[k];
      host.data()[k] = v;
      Kokkos::deep_copy(dev, host);
      double const l = loss();
      host.data()[k] = v0;
      Kokkos::deep_copy(dev, host);
      return l;
    };
  };
  LayerGradientCheck res;
  auto const ri = check_partials(
      spread_indices(long(hx.size()), max_checks), [&](long k) { return hx.data()[k]; },
      [&](long k) { return hdx.data()[k]; }, perturbed(hx, x), h);
  auto const rp = check_partials(
      spread_indices(long(hp.size()), max_checks), [&](long k) { return hp.data()[k]; },
      [&](long k) { return hdp.data()[k]; }, perturbed(hp, params), h);
  res.input_error = ri.max_error;
  res.inputs = ri.checked;
  res.param_error = rp.max_error;
  res.params = rp.checked;
  return res;
}

/// Max of |fd - analytic| / max(1, |analytic|) over every element of `x` (a
/// View of any rank), where loss(grad) returns the loss at the current x and
/// writes its gradient with respect to x into grad (nothing for an empty
/// grad); central differences with step h.
template <class T, class F>
double loss_fd_error(T const& x, F const& loss, double h = 1e-6) {
  T grad("grad", x.layout()), none;
  loss(grad);
  auto const g = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad);
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
  auto const at = [&](long k, double v) {
    double const v0 = hx.data()[k];
    hx.data()[k] = v;
    Kokkos::deep_copy(x, hx);
    double const l = loss(none);
    hx.data()[k] = v0;
    Kokkos::deep_copy(x, hx);
    return l;
  };
  long const n = long(hx.size());
  return check_partials(
             spread_indices(n, std::max(1L, n)), [&](long k) { return hx.data()[k]; },
             [&](long k) { return g.data()[k]; }, at, h)
      .max_error;
}

}  // namespace nn
}  // namespace lensing

#endif
