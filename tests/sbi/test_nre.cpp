// sbi/nre.hpp: joint/shuffled batches, the ratio LogDensity's gradient
// against central differences, and on a toy problem (θ ~ N(0, 1),
// x = θ + 0.5 ε) the trained classifier's logit against the analytic
// log ratio log N(x; θ, 0.25) − log N(x; 0, 1.25), then NUTS on the
// learned posterior against the exact N(0.8 x, 0.2).
#include <lensing/nn/activation.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/two_input.hpp>
#include <lensing/sample/sampler.hpp>
#include <lensing/sbi/nre.hpp>
#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace lt = lensing::test;
namespace nn = lensing::nn;
namespace sbi = lensing::sbi;

namespace {
template <class S, class M>
auto make_ratio_net(int dx, int dt, int width) {
  auto image = nn::make_sequential(nn::Dense<S, M>(dx, width), nn::Tanh<S, M>());
  auto vec = nn::make_sequential(nn::Dense<S, M>(dt, width), nn::Tanh<S, M>());
  auto head = nn::make_sequential(nn::Dense<S, M>(2 * width, width), nn::Tanh<S, M>(), nn::Dense<S, M>(width, 1));
  return nn::make_two_input(image, vec, head);
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("sbi: make_ratio_batch pairs every x with its θ and with a shifted θ", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const b = 5, d = 2;
  nn::Tensor<S, Mem> x("x", b, 1, 1, 1), x2("x2", 2 * b, 1, 1, 1), t2("t2", 2 * b, d, 1, 1);
  lensing::View2D<S, Mem> th("th", b, d), lab("lab", 2 * b, 1);
  auto hx = Kokkos::create_mirror_view(x);
  auto ht = Kokkos::create_mirror_view(th);
  for (int i = 0; i < b; ++i) {
    hx(i, 0, 0, 0) = S(i);
    ht(i, 0) = S(10 + i);
    ht(i, 1) = S(20 + i);
  }
  Kokkos::deep_copy(x, hx);
  Kokkos::deep_copy(th, ht);
  sbi::make_ratio_batch(space, x, th, 2, x2, t2, lab);
  space.fence();
  auto const h2 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x2);
  auto const ht2 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), t2);
  auto const hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lab);
  for (int i = 0; i < 2 * b; ++i) {
    CHECK(h2(i, 0, 0, 0) == S(i % b));
    int const src = i < b ? i : (i - b + 2) % b;
    CHECK(ht2(i, 0, 0, 0) == S(10 + src));
    CHECK(ht2(i, 1, 0, 0) == S(20 + src));
    CHECK(hl(i, 0) == S(i < b ? 1 : 0));
  }
  CHECK_THROWS_AS(sbi::make_ratio_batch(space, x, th, 0, x2, t2, lab), std::invalid_argument);
  CHECK_THROWS_AS(sbi::make_ratio_batch(space, x, th, b, x2, t2, lab), std::invalid_argument);
}

namespace {
template <class T>
std::vector<double> host_values(T const& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  std::vector<double> out(h.size());
  for (std::size_t i = 0; i < h.size(); ++i)
    out[i] = double(h.data()[i]);
  return out;
}
template <class T>
void fill(T const& v, lensing::Rng& rng) {
  auto h = Kokkos::create_mirror_view(v);
  for (std::size_t i = 0; i < h.size(); ++i)
    h.data()[i] = typename T::value_type(rng.normal());
  Kokkos::deep_copy(v, h);
}
double max_rel_diff(std::vector<double> const& a, std::vector<double> const& b) {
  double m = 0, scale = 0;
  for (double v : b)
    scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::abs(a[i] - b[i]) / scale);
  return a.size() == b.size() ? m : 1e300;
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("sbi: SharedEmbeddingRatioModel equals the TwoInput on make_ratio_batch's pairs", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const b = 5, dx = 3, d = 2;
  long const shift = 2;
  auto net = make_ratio_net<S, Mem>(dx, d, 6);
  net.initialize(11);
  lensing::Rng rng(12, 0);
  nn::Tensor<S, Mem> x("x", b, dx, 1, 1), x2("x2", 2 * b, dx, 1, 1), t2("t2", 2 * b, d, 1, 1), g("g", 2 * b, 1, 1, 1);
  lensing::View2D<S, Mem> th("th", b, d), lab("lab", 2 * b, 1);
  fill(x, rng);
  fill(th, rng);
  fill(g, rng);
  // Reference: the full network on [x; x], [θ; θ shifted] (the image branch twice).
  sbi::make_ratio_batch(space, x, th, shift, x2, t2, lab);
  auto const out_ref = host_values(net.forward(space, x2, t2));
  Kokkos::deep_copy(space, net.output_gradient(), g);
  net.backward(space, x2, t2);
  auto const grad_ref = host_values(net.gradients());
  auto const lab_ref = host_values(lab);
  // The shared-embedding model: the image branch once, its gradient the sum
  // of both halves'.
  sbi::SharedEmbeddingRatioModel<decltype(net)> model(net, d);
  CHECK(model.output_shape(nn::Shape4{b, dx, 1, 1}) == nn::Shape4{2 * b, 1, 1, 1});
  auto const labels = model.pair(space, th, shift);
  auto const out = host_values(model.forward(space, x));
  Kokkos::deep_copy(space, model.output_gradient(), g);
  Kokkos::deep_copy(net.gradients(), S(0));
  model.backward(space, x);
  auto const grad = host_values(net.gradients());
  CHECK(host_values(labels) == lab_ref);
  CHECK(host_values(model.pair_parameters()) == host_values(t2));
  // The same arithmetic but for the order of the two halves' sum in the
  // image branch's weight gradients: rounding only.
  double const tol = std::is_same<S, float>::value ? 1e-5 : 1e-12;
  double const eo = max_rel_diff(out, out_ref), eg = max_rel_diff(grad, grad_ref);
  MESSAGE(std::string(Space::name()) << ": logits " << eo << ", gradients " << eg << " (relative to the largest)");
  CHECK(eo < tol);
  CHECK(eg < tol);
  CHECK_THROWS_AS(model.pair(space, th, 0), std::invalid_argument);
  CHECK_THROWS_AS(model.pair(space, th, b), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("sbi: RatioFromEmbedding and RatioLogDensity on a cached embedding equal the full network",
                           Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const m = 4, dx = 3, d = 2;
  auto net = make_ratio_net<S, Mem>(dx, d, 6);
  net.initialize(21);
  lensing::Rng rng(22, 0);
  nn::Tensor<S, Mem> x("x", 1, dx, 1, 1), xr("xr", m, dx, 1, 1), z("z", m, d, 1, 1), dz("dz", m, d, 1, 1),
      dz_ref("dz_ref", m, d, 1, 1), dx_ref("dx_ref", m, dx, 1, 1);
  fill(x, rng);
  fill(z, rng);
  lensing::sbi::detail::repeat_rows(space, x, xr);
  auto const out_ref = host_values(net.forward(space, xr, z));
  Kokkos::deep_copy(space, net.output_gradient(), S(1));
  net.backward(space, xr, z, dx_ref, dz_ref);
  sbi::RatioFromEmbedding<decltype(net)> eval(net);
  auto const e = eval.embed(space, x);
  // Run the full network on other inputs in between: the cached embedding
  // must not depend on the network's buffers.
  fill(xr, rng);
  net.forward(space, xr, z);
  auto const out = host_values(eval.logits(space, e, z));
  Kokkos::deep_copy(space, net.head().output_gradient(), S(1));
  eval.backward_parameters(space, z, dz);
  double const tol = std::is_same<S, float>::value ? 1e-6 : 1e-13;
  CHECK(max_rel_diff(out, out_ref) < tol);
  CHECK(max_rel_diff(host_values(dz), host_values(dz_ref)) < tol);
  CHECK_THROWS_AS(eval.logits(space, nn::Tensor<S, Mem>("e3", 3, 6, 1, 1), z), std::invalid_argument);
  // The log density: a f + b at θ = m + s z_0, its gradient a df/dz / s.
  std::vector<double> const mean{0.5, -1.0}, sd{2.0, 0.25};
  double const a = 1.5, sh = 0.3;
  sbi::RatioLogDensity<decltype(net)> dens(
      net, x, mean, sd, [](double const*, double*) { return 0.0; }, a, sh);
  auto const hz = host_values(z);
  lensing::View1D<double, Kokkos::HostSpace> q("q", d), gq("gq", d);
  for (int j = 0; j < d; ++j)
    q(j) = mean[std::size_t(j)] + sd[std::size_t(j)] * hz[std::size_t(j)];
  double const v = dens.value_and_gradient(space, q, gq);
  auto const hdz = host_values(dz_ref);
  double const vt = std::is_same<S, float>::value ? 1e-5 : 1e-12;
  CHECK(std::abs(v - (a * out_ref[0] + sh)) < vt * (1 + std::abs(v)));
  for (int j = 0; j < d; ++j)
    CHECK(std::abs(gq(j) - a * hdz[std::size_t(j)] / sd[std::size_t(j)]) < vt * (1 + std::abs(gq(j))));
}

LENSING_TEST_CASE_TEMPLATE("sbi: RatioLogDensity gradient against central differences", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const dx = 2, d = 3;
  auto net = make_ratio_net<S, Mem>(dx, d, 8);
  net.initialize(4);
  nn::Tensor<S, Mem> x("x", 1, dx, 1, 1);
  auto hx = Kokkos::create_mirror_view(x);
  hx(0, 0, 0, 0) = S(0.3);
  hx(0, 1, 0, 0) = S(-0.7);
  Kokkos::deep_copy(x, hx);
  std::vector<double> const mean{1.0, -0.5, 0.0}, sd{0.5, 2.0, 0.1};
  // Gaussian prior N(mean, sd²), its gradient added.
  auto prior = [mean, sd](double const* t, double* g) {
    double v = 0;
    for (int j = 0; j < 3; ++j) {
      double const z = (t[j] - mean[j]) / sd[j];
      v -= 0.5 * z * z;
      g[j] -= z / sd[j];
    }
    return v;
  };
  sbi::RatioLogDensity<decltype(net)> dens(net, x, mean, sd, prior);
  CHECK(dens.dimension() == d);
  lensing::View1D<double, Kokkos::HostSpace> q("q", d), g("g", d), gt("gt", d);
  q(0) = 1.2;
  q(1) = 0.4;
  q(2) = -0.05;
  double const v = dens.value_and_gradient(space, q, g);
  double zero[3] = {0, 0, 0};
  CHECK(std::abs(v - (dens.log_ratio(space, q.data()) + prior(q.data(), zero))) < 1e-12 * (1 + std::abs(v)));
  // Central differences with h = 1e-2 sd_j: truncation O(h²) relative ~1e-4 of
  // the curvature; in float the logit's rounding (~1e-7) over 2h adds ~1e-5 / sd.
  bool const is_float = std::is_same<S, float>::value;
  for (int j = 0; j < d; ++j) {
    double const h = (is_float ? 1e-2 : 1e-4) * sd[std::size_t(j)], q0 = q(j);
    q(j) = q0 + h;
    double const up = dens.value_and_gradient(space, q, gt);
    q(j) = q0 - h;
    double const dn = dens.value_and_gradient(space, q, gt);
    q(j) = q0;
    double const fd = (up - dn) / (2 * h);
    MESSAGE("d/dθ" << j << ": backprop " << g(j) << ", central difference " << fd);
    CHECK(std::abs(g(j) - fd) < (is_float ? 2e-3 : 1e-6) * (1 + std::abs(fd)));
  }
}

LENSING_TEST_CASE_TEMPLATE("sbi: NRE on x = θ + noise approaches the analytic log ratio; NUTS samples its posterior",
                           Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const b = 128, steps = 1500;
  double const sigma = 0.5;
  auto net = make_ratio_net<S, Mem>(1, 1, 24);
  net.initialize(2);
  nn::Adam<S, Mem> opt(net.num_params(), 3e-3);
  nn::Tensor<S, Mem> x("x", b, 1, 1, 1), x2("x2", 2 * b, 1, 1, 1), t2("t2", 2 * b, 1, 1, 1);
  lensing::View2D<S, Mem> th("th", b, 1), lab("lab", 2 * b, 1);
  auto hx = Kokkos::create_mirror_view(x);
  auto ht = Kokkos::create_mirror_view(th);
  lensing::Rng rng(8, 0);
  double first = 0, last = 0;
  for (int s = 0; s < steps; ++s) {
    for (int i = 0; i < b; ++i) {
      double const t = rng.normal();
      ht(i, 0) = S(t);
      hx(i, 0, 0, 0) = S(t + sigma * rng.normal());
    }
    Kokkos::deep_copy(x, hx);
    Kokkos::deep_copy(th, ht);
    double const l = sbi::ratio_train_step(space, net, opt, x, th, 3, std::uint64_t(s), x2, t2, lab);
    if (s < 100) first += l / 100;
    if (s >= steps - 100) last += l / 100;
  }
  // The Bayes-optimal BCE here is E[log 2 − JS-type term] < log 2; the
  // initial classifier sits at log 2 = 0.693.
  MESSAGE(std::string(Space::name()) << " NRE toy: BCE " << first << " -> " << last);
  CHECK(last < first - 0.1);
  // Learned against analytic log ratio on joint pairs (x, θ) ~ p(x, θ), where
  // the posterior puts its mass.  (On marginal pairs far from x = θ the
  // analytic log ratio runs to −20 while the classifier, whose BCE gradient
  // vanishes once such pairs are confidently rejected, saturates: a ratio
  // estimator is only learned where the data are.)  Centred RMS error: the
  // constant offset of log r does not change the posterior.
  auto analytic = [&](double xv, double t) {
    double const a = (xv - t) / sigma, c = xv * xv / (1 + sigma * sigma);
    return -0.5 * a * a - std::log(sigma) + 0.5 * c + 0.5 * std::log(1 + sigma * sigma);
  };
  int const m = 400;
  std::vector<double> av(m), lv(m);
  lensing::Rng test_rng(9, 0);
  double mean_a = 0, mean_l = 0;
  for (int i = 0; i < m; ++i) {
    double const t = test_rng.normal(), xv = t + sigma * test_rng.normal();
    nn::Tensor<S, Mem> xo("xo", 1, 1, 1, 1);
    Kokkos::deep_copy(xo, S(xv));
    sbi::RatioLogDensity<decltype(net)> dens(net, xo, {0.0}, {1.0}, [](double const*, double*) { return 0.0; });
    lv[i] = dens.log_ratio(space, &t);
    av[i] = analytic(xv, t);
    mean_a += av[i] / m;
    mean_l += lv[i] / m;
  }
  double se = 0, var = 0;
  for (int i = 0; i < m; ++i) {
    double const e = (lv[i] - mean_l) - (av[i] - mean_a);
    se += e * e / m;
    var += (av[i] - mean_a) * (av[i] - mean_a) / m;
  }
  MESSAGE("joint pairs: mean log ratio " << mean_l << " (analytic " << mean_a << "), centred RMS error "
                                         << std::sqrt(se) << " against an analytic sd of " << std::sqrt(var));
  // The analytic log ratio on joint pairs has sd ~1 (a constant scores
  // 1.0 x sd); a converged classifier is within a few tenths of that.
  CHECK(std::sqrt(se) < 0.35 * std::sqrt(var));
  // Mean log ratio = the mutual information I(x; θ) = ½ log(1 + 1/σ²) = 0.805 nats.
  CHECK(std::abs(mean_l - mean_a) < 0.2);
  // NUTS on log r + log prior (prior N(0, 1)) at x = 1: the exact posterior is N(0.8, 0.2).
  nn::Tensor<S, Mem> xo("xo", 1, 1, 1, 1);
  Kokkos::deep_copy(xo, S(1.0));
  sbi::RatioLogDensity<decltype(net)> post(net, xo, {0.0}, {1.0}, [](double const* t, double* g) {
    g[0] -= t[0];
    return -0.5 * t[0] * t[0];
  });
  lensing::SamplerOptions so;
  so.num_chains = 2;
  so.num_warmup = 300;
  so.num_draws = 600;
  so.seed = 5;
  auto const r = lensing::sample(space, post, so);
  auto const draws = r.parameter(0);
  double pm = 0, pv = 0;
  for (double v : draws)
    pm += v / double(draws.size());
  for (double v : draws)
    pv += (v - pm) * (v - pm) / double(draws.size());
  MESSAGE("NUTS on the learned ratio at x = 1: mean " << pm << ", sd " << std::sqrt(pv) << " (exact 0.8, 0.447)");
  // MC error of the mean ~0.447 / sqrt(ESS ~ 400) = 0.02; the learned
  // ratio's error shifts it by up to ~0.15.
  CHECK(std::abs(pm - 0.8) < 0.2);
  CHECK(std::abs(std::sqrt(pv) - 0.447) < 0.15);
}
