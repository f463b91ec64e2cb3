// MADE (masked dense layers, degrees and masks), the inverse autoregressive
// flow (one step and a stack) and the variational autoencoder layer and
// loss: the autoregressive property of the masks (exact zeros of the
// Jacobian above the diagonal, nonzeros below), every backward against
// central differences (the IAF's log-determinant gradient included), and
// the IAF's log-determinant against log |det| of a finite-difference
// Jacobian.
#include <lensing/nn/activation.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/iaf.hpp>
#include <lensing/nn/iaf_variational.hpp>
#include <lensing/nn/made.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/variational_autoencoder.hpp>
#include <lensing/sample/variational.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {

/// log |det A| of a row-major n x n matrix by LU with partial pivoting.
double log_abs_det(std::vector<double> a, int n) {
  double s = 0;
  for (int c = 0; c < n; ++c) {
    int p = c;
    for (int r = c + 1; r < n; ++r)
      if (std::fabs(a[r * n + c]) > std::fabs(a[p * n + c])) p = r;
    if (p != c)
      for (int k = 0; k < n; ++k)
        std::swap(a[c * n + k], a[p * n + k]);
    double const piv = a[c * n + c];
    s += std::log(std::fabs(piv));
    for (int r = c + 1; r < n; ++r) {
      double const f = a[r * n + c] / piv;
      for (int k = c; k < n; ++k)
        a[r * n + k] -= f * a[c * n + k];
    }
  }
  return s;
}

/// A banana: z1 ~ N(0, 1), z2 | z1 ~ N(b (z1^2 - 1), 1); normalised, so log Z = 0
/// for log p = -z1^2/2 - r^2/2 - log 2 pi, r = z2 - b (z1^2 - 1).
struct Banana {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  double b = 1.0;
  int dimension() const { return 2; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    double const a = q(0), r = q(1) - b * (a * a - 1);
    g(0) = -a + r * 2 * b * a;
    g(1) = -r;
    return -0.5 * a * a - 0.5 * r * r - std::log(2 * M_PI);
  }
};

}  // namespace

LENSING_TEST_CASE_TEMPLATE("nn: MADE is autoregressive (d out_i / d in_j = 0 exactly for j >= i)", Config,
                           lt::AllConfigs) {
  using S = typename Config::scalar;
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using T = nn::Tensor<S, Mem>;
  Space space;
  // Degrees and masks (Germain et al. 2015): hidden degrees cycle through 1..D-1.
  auto const mh = nn::made_hidden_degrees(5, 9);
  CHECK(mh == std::vector<int>{1, 2, 3, 4, 1, 2, 3, 4, 1});
  CHECK(nn::made_output_degrees(3, 2) == std::vector<int>{1, 2, 3, 1, 2, 3});
  auto const m = nn::made_mask({1, 2, 3}, {1, 2, 3}, true);
  CHECK(m == std::vector<unsigned char>{0, 0, 0, 1, 0, 0, 1, 1, 0});

  for (int d : {1, 2, 5}) {
    auto made = nn::make_made<S, Mem>(d, 12, 2);
    made.initialize(11);
    int const n = 2;
    T x("x", n, d, 1, 1), dx("dx", n, d, 1, 1);
    lt::fill_normal(x, 3);
    made.forward(space, x);
    // Row o of the Jacobian (per sample) by a backward with a unit upstream.
    int bad_zero = 0, bad_nonzero = 0;
    for (int o = 0; o < 2 * d; ++o) {
      auto g = made.output_gradient();
      auto hg = Kokkos::create_mirror_view(g);
      Kokkos::deep_copy(hg, S(0));
      for (int b = 0; b < n; ++b)
        hg(b, o, 0, 0) = S(1);
      Kokkos::deep_copy(g, hg);
      made.backward(space, x, dx);
      space.fence();
      auto const h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dx);
      int const i = o % d;  // the coordinate output o belongs to
      for (int b = 0; b < n; ++b)
        for (int j = 0; j < d; ++j) {
          S const v = h(b, j, 0, 0);
          if (j >= i && v != S(0)) ++bad_zero;       // must not depend on z_j, j >= i: exactly 0
          if (j < i && !(v != S(0))) ++bad_nonzero;  // generic weights: every allowed path is used
        }
    }
    INFO("D = " << d);
    CHECK(bad_zero == 0);
    CHECK(bad_nonzero == 0);
  }
}

LENSING_TEST_CASE_TEMPLATE("nn: MaskedDense, IAF and VAE backward against central differences", Config,
                           lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  // Error model: nn/gradient_check.hpp (double, h = 1e-5): truncation h^2/6 |L'''| and
  // rounding 1e-16 |L| / h, both < 1e-8 for these O(1) smooth maps (ELU is C^1 with a
  // jump of its second derivative at 0: an input within h of 0 would cost ~h, not met
  // by these draws); tolerance 1e-7 (lt::expect_gradients).
  {
    nn::MaskedDense<double, Mem> md(5, 4,
                                    nn::made_mask(nn::made_input_degrees(5), nn::made_hidden_degrees(5, 4), false));
    md.initialize(3);
    lt::expect_gradients(space, md, {3, 5, 1, 1}, "MaskedDense");
  }
  for (bool rev : {false, true}) {
    nn::IafStep<double, Mem> step(4, 10, rev, rev ? 0.5 : 0.0);
    step.initialize(5);
    lt::expect_gradients(space, step, {3, 5, 1, 1}, rev ? "IafStep (reversed input, g = 0.5)" : "IafStep (g = 0)");
  }
  {
    nn::InverseAutoregressiveFlow<double, Mem> flow(4, 10, 3, 1.0);
    flow.initialize(9);
    lt::expect_gradients(space, flow, {3, 5, 1, 1}, "InverseAutoregressiveFlow (3 steps)");
  }
  {
    // A small VAE: dense encoder 6 -> 2Z = 4, dense decoder 2 -> 6.
    using D = nn::Dense<double, Mem>;
    using E = nn::ELU<double, Mem>;
    auto enc = nn::make_sequential(D(6, 5), E(), D(5, 4, nn::Init::xavier_normal));
    auto dec = nn::make_sequential(D(2, 5), E(), D(5, 6));
    nn::VariationalAutoencoder<decltype(enc), decltype(dec)> vae(enc, dec, 2, 17);
    vae.initialize(21);
    lt::expect_gradients(space, vae, {3, 6, 1, 1}, "VariationalAutoencoder (sampled z)");
    vae.set_use_mean(true);
    lt::expect_gradients(space, vae, {3, 6, 1, 1}, "VariationalAutoencoder (z = mu)");
  }
  {
    // The negative-ELBO loss: pred (N, P + 2Z), target (N, P).
    int const n = 3, p = 5, z = 2;
    nn::Tensor<double, Mem> pred("pred", n, p + 2 * z, 1, 1);
    lensing::View2D<double, Mem> target("target", n, p);
    lt::fill_normal(pred, 31, 0.7);
    lt::fill_normal(target, 32);
    for (auto lik : {nn::PixelLikelihood::gaussian, nn::PixelLikelihood::laplace}) {
      nn::VaeLoss loss(z, lik, 0.3);
      *loss.beta = 0.6;
      double const e = lt::loss_fd_error(
          pred, [&](nn::Tensor<double, Mem> const& g) { return double(loss(space, pred, target, g)); });
      INFO("likelihood " << (lik == nn::PixelLikelihood::gaussian ? "gaussian" : "laplace"));
      CHECK(e < 1e-7);
      // Value: the terms by hand for one case.
      loss(space, pred, target, nn::Tensor<double, Mem>());
      auto const hp = lt::host_values(pred);
      auto const ht = lt::host_values(target);
      double nll = 0, kl = 0;
      for (int b = 0; b < n; ++b) {
        for (int k = 0; k < p; ++k) {
          double const r = hp[b * (p + 2 * z) + k] - ht[b * p + k];
          nll += lik == nn::PixelLikelihood::gaussian ? 0.5 * r * r / 0.09 + std::log(0.3 * std::sqrt(2 * M_PI))
                                                      : std::fabs(r) / 0.3 + std::log(0.6);
        }
        for (int j = 0; j < z; ++j) {
          double const mu = hp[b * (p + 2 * z) + p + j], v = hp[b * (p + 2 * z) + p + z + j];
          kl += 0.5 * (std::exp(v) + mu * mu - 1 - v);
        }
      }
      CHECK(loss.terms->nll == doctest::Approx(nll / n).epsilon(1e-12));
      CHECK(loss.terms->kl == doctest::Approx(kl / n).epsilon(1e-12));
    }
  }
}

LENSING_TEST_CASE_TEMPLATE("nn: IAF log-determinant equals log|det| of a finite-difference Jacobian", Config,
                           lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using T = nn::Tensor<double, Mem>;
  Space space;
  int const d = 4, n = 3;
  nn::InverseAutoregressiveFlow<double, Mem> flow(d, 16, 3, 0.0);
  flow.initialize(41);
  // Larger weights than the initialiser's make the flow clearly non-linear
  // (sigma far from constant) so that the test sees every term.
  {
    auto p = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), flow.parameters());
    for (std::size_t i = 0; i < p.size(); ++i)
      p(i) *= 1.5;
    Kokkos::deep_copy(flow.parameters(), p);
  }
  T x("x", n, d + 1, 1, 1), y("y", n, d + 1, 1, 1);
  auto hx = Kokkos::create_mirror_view(x);
  {
    lensing::Rng rng(5, 1);
    for (int b = 0; b < n; ++b) {
      for (int i = 0; i < d; ++i)
        hx(b, i, 0, 0) = rng.normal();
      hx(b, d, 0, 0) = 0;  // log-det accumulator starts at 0
    }
  }
  auto const run = [&]() {
    Kokkos::deep_copy(x, hx);
    flow.forward(space, x, y);
    space.fence();
    return lt::host_values(y);  // a copy (a host mirror of a host view would alias y)
  };
  auto const y0 = run();
  // Error model: central differences with h = 1e-5 give each Jacobian entry to
  // h^2/6 |f'''| + 1e-16/h ~ 1e-10 (O(1) derivatives); log|det| then moves by
  // ~ d * 1e-10 / smallest singular value (> 0.05 here): tolerance 1e-7.
  double const h = 1e-5;
  double max_err = 0, min_abs_logdet = 1e300;
  for (int b = 0; b < n; ++b) {
    std::vector<double> jac(std::size_t(d) * d);
    for (int j = 0; j < d; ++j) {
      double const v0 = hx(b, j, 0, 0);
      hx(b, j, 0, 0) = v0 + h;
      auto const yp = run();
      hx(b, j, 0, 0) = v0 - h;
      auto const ym = run();
      hx(b, j, 0, 0) = v0;
      for (int i = 0; i < d; ++i)
        jac[std::size_t(i) * d + j] = (yp[b * (d + 1) + i] - ym[b * (d + 1) + i]) / (2 * h);
    }
    double const want = log_abs_det(jac, d), got = y0[b * (d + 1) + d];
    MESSAGE("sample " << b << ": IAF log det " << got << ", finite-difference Jacobian " << want);
    max_err = std::max(max_err, std::fabs(got - want));
    min_abs_logdet = std::min(min_abs_logdet, std::fabs(got));
  }
  CHECK(max_err < 1e-7);
  CHECK(min_abs_logdet > 0.1);  // the check is not of a near-identity map
}

TEST_CASE("nn: VI with an IAF family beats mean-field on a banana (ELBO within MC error of log Z = 0)") {
  Kokkos::DefaultHostExecutionSpace host;
  Banana const target;
  lensing::VariationalOptions mf;
  mf.family = lensing::VariationalFamily::mean_field;
  mf.max_iterations = 3000;
  mf.average_last = 500;
  mf.num_mc = 8;
  mf.num_elbo_draws = 4000;
  mf.seed = 4;
  auto const r_mf = lensing::fit_variational(host, target, mf);
  lensing::VariationalOptions fr = mf;
  fr.family = lensing::VariationalFamily::full_rank;
  auto const r_fr = lensing::fit_variational(host, target, fr);
  nn::IafVariationalOptions io;
  io.steps = 2;
  io.hidden = 16;
  io.max_iterations = 3000;
  io.num_mc = 8;
  io.num_elbo_draws = 4000;
  io.seed = 4;
  auto r = nn::fit_variational_iaf(host, target, io);
  MESSAGE("banana ELBO (log Z = 0): mean-field " << r_mf.elbo << " +- " << r_mf.elbo_mcse << ", full-rank " << r_fr.elbo
                                                 << " +- " << r_fr.elbo_mcse << ", IAF (2 steps) " << r.elbo << " +- "
                                                 << r.elbo_mcse << " in " << r.seconds << " s");
  // The ELBO is a lower bound: at most log Z = 0 up to its Monte Carlo error.
  CHECK(r.elbo < 4 * r.elbo_mcse);
  // Error model: the MC errors of the estimates (4000 draws) are ~0.01; the
  // Gaussian families' KL gap to the banana is a property of the family, the
  // IAF closes most of it.  Margin: 0.1 nats over the best Gaussian.
  CHECK(r.elbo > std::max(r_mf.elbo, r_fr.elbo) + 0.1);
  // log q of the draws is consistent with the fitted flow: E_q[log p - log q] = ELBO.
  std::vector<double> log_q;
  auto const z = r.draws(4000, 9, &log_q);
  double s = 0, s2 = 0;
  lensing::View1D<double, Kokkos::HostSpace> q("q", 2), g("g", 2);
  for (int k = 0; k < 4000; ++k) {
    q(0) = z[2 * k];
    q(1) = z[2 * k + 1];
    double const w = target.value_and_gradient(host, q, g) - log_q[k];
    s += w;
    s2 += w * w;
  }
  double const m = s / 4000, se = std::sqrt(std::max(0.0, s2 / 4000 - m * m) / 3999);
  CHECK(std::fabs(m - r.elbo) < 4 * std::hypot(se, r.elbo_mcse));
}
