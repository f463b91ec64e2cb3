// Probabilistic losses: full-covariance Gaussian NLL (precision Cholesky),
// mixture-density NLL, KL divergences of diagonal Gaussians and the
// reparameterisation trick: gradients against central differences, values
// against hand-computed cases, the reparameterised gradient of E[f(z)]
// against the analytic one within Monte Carlo error, and input errors.
#include <lensing/nn/loss.hpp>
#include <lensing/nn/loss_gaussian_full.hpp>
#include <lensing/nn/loss_mdn.hpp>
#include <lensing/nn/vae.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {}  // namespace

LENSING_TEST_CASE_TEMPLATE("nn: probabilistic loss gradients against central differences", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using T = nn::Tensor<double, Mem>;
  Space space;
  int const n = 3;
  // Full covariance, D = 3: 3 + 6 outputs.
  int const d = 3;
  T pf("pf", n, int(nn::gaussian_full_outputs(d)), 1, 1);
  lensing::View2D<double, Mem> tf("tf", n, d);
  lt::fill_normal(pf, 1, 0.6);
  lt::fill_normal(tf, 2);
  double const e_full = lt::loss_fd_error(pf, [&](T const& g) { return nn::gaussian_full_nll_loss(space, pf, tf, g); });
  {
    // Forward value for D = 3 from the unpacked covariance, independently:
    // NLL = ½ rᵀ Σ⁻¹ r + ½ log det Σ + (3/2) log 2π, Σ⁻¹ by cofactors.
    lensing::View2D<double, Kokkos::HostSpace> mean("mean", n, d);
    lensing::View3D<double, Kokkos::HostSpace> c("cov", n, d, d);
    nn::gaussian_full_unpack(pf, mean, c);
    auto const tv = lt::host_values(tf);
    double want = 0;
    for (int b = 0; b < n; ++b) {
      auto const e = [&](int i, int j) { return c(b, i, j); };
      double const det = e(0, 0) * (e(1, 1) * e(2, 2) - e(1, 2) * e(2, 1)) -
                         e(0, 1) * (e(1, 0) * e(2, 2) - e(1, 2) * e(2, 0)) +
                         e(0, 2) * (e(1, 0) * e(2, 1) - e(1, 1) * e(2, 0));
      double inv[3][3];
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
          int const r0 = (j + 1) % 3, r1 = (j + 2) % 3, c0 = (i + 1) % 3, c1 = (i + 2) % 3;
          inv[i][j] = (e(r0, c0) * e(r1, c1) - e(r0, c1) * e(r1, c0)) / det;
        }
      double q = 0;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
          q += (tv[b * d + i] - mean(b, i)) * inv[i][j] * (tv[b * d + j] - mean(b, j));
      CHECK(std::abs(c(b, 0, 1) - c(b, 1, 0)) < 1e-14);
      want += (0.5 * q + 0.5 * std::log(det) + 1.5 * std::log(2 * M_PI)) / n;
    }
    T none_f;
    CHECK(nn::gaussian_full_nll_loss(space, pf, tf, none_f) == doctest::Approx(want).epsilon(1e-12));
  }
  // Mixture density, K = 3 components in D = 2.
  int const k = 3, dm = 2;
  T pm("pm", n, 1, int(nn::mdn_outputs(k, dm)), 1);
  lensing::View2D<double, Mem> tm("tm", n, dm);
  lt::fill_normal(pm, 3, 0.7);
  lt::fill_normal(tm, 4);
  double const e_mdn = lt::loss_fd_error(pm, [&](T const& g) { return nn::mdn_nll_loss(space, pm, tm, k, g); });
  // KL to N(0, I) and between two diagonal Gaussians (gradients wrt q and p).
  T q("q", n, 8, 1, 1), p("p", n, 8, 1, 1), none;
  lt::fill_normal(q, 5, 0.8);
  lt::fill_normal(p, 6, 0.8);
  double const e_kl0 = lt::loss_fd_error(q, [&](T const& g) { return nn::kl_standard_normal(space, q, g); });
  double const e_klq =
      lt::loss_fd_error(q, [&](T const& g) { return nn::kl_diagonal_gaussians(space, q, p, g, none); });
  double const e_klp =
      lt::loss_fd_error(p, [&](T const& g) { return nn::kl_diagonal_gaussians(space, q, p, none, g); });
  // Reparameterisation: L = Σ r ⊙ z(enc), the same ε for every evaluation (reseed).
  nn::Reparameterize<double, Mem> rep(n, 4, 77);
  T z("z", n, 4, 1, 1), r("r", n, 4, 1, 1);
  lt::fill_normal(r, 7);
  auto const rv = lt::host_values(r);
  double const e_rep = lt::loss_fd_error(q, [&](T const& g) {
    rep.reseed(77);
    rep.sample(space, q, z);
    space.fence();
    auto const zv = lt::host_values(z);
    double s = 0;
    for (std::size_t i = 0; i < zv.size(); ++i)
      s += rv[i] * zv[i];
    if (g.data() != nullptr) rep.backward(space, q, r, g);
    return s;
  });
  // Accumulation: KL gradient + reparameterisation VJP.
  T g1("g1", n, 8, 1, 1), g2("g2", n, 8, 1, 1);
  nn::kl_standard_normal(space, q, g1);
  rep.backward(space, q, r, g1, true);
  rep.backward(space, q, r, g2);
  nn::kl_standard_normal(space, q, g2, true);
  space.fence();
  auto const g1v = lt::host_values(g1), g2v = lt::host_values(g2);  // equal up to rounding (FMA contraction)
  for (std::size_t i = 0; i < g1v.size(); ++i)
    CHECK(g1v[i] == doctest::Approx(g2v[i]).epsilon(1e-14).scale(1));
  MESSAGE(std::string(Space::name()) << ": gradient errors full-cov NLL " << e_full << ", MDN " << e_mdn << ", KL(q|N) "
                                     << e_kl0 << ", KL dq " << e_klq << ", KL dp " << e_klp << ", reparam " << e_rep);
  CHECK(e_full < 1e-8);
  CHECK(e_mdn < 1e-8);
  CHECK(e_kl0 < 1e-8);
  CHECK(e_klq < 1e-8);
  CHECK(e_klp < 1e-8);
  CHECK(e_rep < 1e-8);
}

LENSING_TEST_CASE_TEMPLATE("nn: probabilistic loss values against hand-computed cases", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using T = nn::Tensor<S, Mem>;
  using M = lensing::View2D<S, Mem>;
  Space space;
  double const tol = std::is_same<S, float>::value ? 2e-6 : 1e-13;
  double const log2pi = std::log(2 * M_PI);
  T none;
  // Full covariance, D = 2: μ = 0, L = [[2, 0], [1, 1]] (a_00 = log 2, a_10 = 1, a_11 = 0),
  // Λ = L Lᵀ = [[4, 2], [2, 2]], t = (1, 1): ½ tᵀΛt = 5, ½ log det Σ = −log 2.
  T pf("pf", 1, 5, 1, 1), gf("gf", 1, 5, 1, 1);
  M tf("tf", 1, 2);
  lt::set_values(pf, {0, 0, std::log(2.0), 1, 0});
  lt::set_values(tf, {1, 1});
  CHECK(double(nn::gaussian_full_nll_loss(space, pf, tf, gf)) ==
        doctest::Approx(5 - std::log(2.0) + log2pi).epsilon(tol));
  // dL/dμ = −Λ t = (−6, −4); z = Lᵀ r = (3, 1); dL/da_00 = r_0 z_0 L_00 − 1 = 5,
  // dL/da_10 = r_1 z_0 = 3, dL/da_11 = r_1 z_1 L_11 − 1 = 0.
  auto const gfv = lt::host_values(gf);
  std::vector<double> const gf_want = {-6, -4, 5, 3, 0};
  for (int i = 0; i < 5; ++i)
    CHECK(gfv[i] == doctest::Approx(gf_want[i]).epsilon(tol).scale(1));
  // Unpacked covariance Σ = Λ⁻¹ = ¼ [[2, −2], [−2, 4]].
  lensing::View2D<double, Kokkos::HostSpace> mean("mean", 1, 2);
  lensing::View3D<double, Kokkos::HostSpace> cov("cov", 1, 2, 2);
  nn::gaussian_full_unpack(pf, mean, cov);
  CHECK(cov(0, 0, 0) == doctest::Approx(0.5).epsilon(tol));
  CHECK(cov(0, 0, 1) == doctest::Approx(-0.5).epsilon(tol));
  CHECK(cov(0, 1, 0) == doctest::Approx(-0.5).epsilon(tol));
  CHECK(cov(0, 1, 1) == doctest::Approx(1.0).epsilon(tol));
  CHECK(mean(0, 0) == 0.0);
  lensing::View3D<double, Kokkos::HostSpace> cov_bad("cov_bad", 1, 3, 3);
  CHECK_THROWS_AS(nn::gaussian_full_unpack(pf, mean, cov_bad), std::invalid_argument);
  // D = 1 equals the diagonal Gaussian NLL with log σ² = −2 a.
  T p1("p1", 2, 2, 1, 1), p2("p2", 2, 2, 1, 1);
  M t1("t1", 2, 1);
  lt::set_values(p1, {0.3, -0.4, -1.0, 0.7});
  lt::set_values(p2, {0.3, 0.8, -1.0, -1.4});
  lt::set_values(t1, {1.5, -2.0});
  CHECK(double(nn::gaussian_full_nll_loss(space, p1, t1, none)) ==
        doctest::Approx(double(nn::gaussian_nll_loss(space, p2, t1, none))).epsilon(tol));

  // MDN, K = 2, D = 1: equal weights, means ∓1, σ = 1, t = 0: p = N(1; 0, 1).
  T pm("pm", 1, 6, 1, 1), gm("gm", 1, 6, 1, 1);
  M tm("tm", 1, 1);
  lt::set_values(pm, {0.7, 0.7, -1, 1, 0, 0});
  CHECK(double(nn::mdn_nll_loss(space, pm, tm, 2, gm)) == doctest::Approx(0.5 + 0.5 * log2pi).epsilon(tol));
  // By symmetry γ = π = ½: dα = 0, dμ_k = −γ (t − μ_k)/σ² = ½ μ_k = (−½, ½), ds = γ(1 − u²) = 0.
  auto const gmv = lt::host_values(gm);
  std::vector<double> const gm_want = {0, 0, -0.5, 0.5, 0, 0};
  for (int i = 0; i < 6; ++i)
    CHECK(gmv[i] == doctest::Approx(gm_want[i]).epsilon(tol).scale(1));
  // K = 1 equals the diagonal Gaussian NLL (log σ² = 2 s); the logit does not matter.
  T pk1("pk1", 2, 3, 1, 1);
  lt::set_values(pk1, {5.0, 0.3, -0.2, -3.0, -1.0, 0.35});
  T pd("pd", 2, 2, 1, 1);
  lt::set_values(pd, {0.3, -0.4, -1.0, 0.7});
  CHECK(double(nn::mdn_nll_loss(space, pk1, t1, 1, none)) ==
        doctest::Approx(double(nn::gaussian_nll_loss(space, pd, t1, none))).epsilon(tol));
  // Stability: huge logits and a component 1000 σ away stay finite and exact.
  T ps("ps", 1, 6, 1, 1), gs("gs", 1, 6, 1, 1);
  lt::set_values(ps, {1000, -1000, 0, 1000, 0, 0});
  double const ls = double(nn::mdn_nll_loss(space, ps, tm, 2, gs));
  CHECK(ls == doctest::Approx(0.5 * log2pi).epsilon(tol));
  for (double v : lt::host_values(gs))
    CHECK(std::isfinite(v));

  // KL(q ‖ N(0, 1)), Z = 1: μ = 1, v = log 2: ½(2 + 1 − 1 − log 2).
  T q("q", 1, 2, 1, 1), p("p", 1, 2, 1, 1), gq("gq", 1, 2, 1, 1);
  lt::set_values(q, {1, std::log(2.0)});
  CHECK(double(nn::kl_standard_normal(space, q, gq)) == doctest::Approx(0.5 * (2 - std::log(2.0))).epsilon(tol));
  auto const gqv = lt::host_values(gq);
  CHECK(gqv[0] == doctest::Approx(1.0).epsilon(tol));
  CHECK(gqv[1] == doctest::Approx(0.5).epsilon(tol));
  // General KL with p = N(0, 1) equals it; KL(q ‖ q) = 0; a hand case with p = N(1, e).
  CHECK(double(nn::kl_diagonal_gaussians(space, q, p, none, none)) ==
        doctest::Approx(0.5 * (2 - std::log(2.0))).epsilon(tol));
  CHECK(double(nn::kl_diagonal_gaussians(space, q, q, none, none)) == doctest::Approx(0.0).scale(1).epsilon(tol));
  lt::set_values(p, {2, 1});
  // ½[1 − log 2 + (2 + 1)/e − 1]
  CHECK(double(nn::kl_diagonal_gaussians(space, q, p, none, none)) ==
        doctest::Approx(0.5 * (1 - std::log(2.0) + 3 / std::exp(1.0) - 1)).epsilon(tol));
}

LENSING_TEST_CASE_TEMPLATE("nn: reparameterised gradient of E[f(z)] within Monte Carlo error", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using T = nn::Tensor<S, Mem>;
  Space space;
  // f(z) = Σ_j a_j z_j² + b_j z_j, z_j = μ_j + σ_j ε_j: E f = Σ a_j (μ_j² + σ_j²) + b_j μ_j,
  // dE/dμ_j = 2 a_j μ_j + b_j, dE/dv_j = a_j σ_j² (v = log σ²).
  int const n = 20000, zd = 3;
  std::vector<double> const mu = {0.5, -1.0, 2.0}, v = {0.0, std::log(0.25), std::log(3.0)}, a = {1.0, -0.5, 0.25},
                            b = {0.3, 1.0, -2.0};
  T enc("enc", n, 2 * zd, 1, 1), z("z", n, zd, 1, 1), dz("dz", n, zd, 1, 1), denc("denc", n, 2 * zd, 1, 1);
  {
    auto h = Kokkos::create_mirror_view(enc);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < zd; ++j) {
        h(i, j, 0, 0) = S(mu[j]);
        h(i, zd + j, 0, 0) = S(v[j]);
      }
    Kokkos::deep_copy(enc, h);
  }
  nn::Reparameterize<S, Mem> rep(n, zd, 2024);
  rep.sample(space, enc, z);
  space.fence();
  auto hz = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), z);
  auto hdz = Kokkos::create_mirror_view(dz);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < zd; ++j)
      hdz(i, j, 0, 0) = S(2 * a[j] * double(hz(i, j, 0, 0)) + b[j]);
  Kokkos::deep_copy(dz, hdz);
  rep.backward(space, enc, dz, denc);
  space.fence();
  auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), denc);
  // Sample means and standard errors of the per-sample gradients; ε statistics.
  double worst = 0;
  for (int c = 0; c < 2 * zd; ++c) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; ++i) {
      double const g = hg(i, c, 0, 0);
      s += g;
      ss += g * g;
    }
    double const mean = s / n, se = std::sqrt(std::max(ss / n - mean * mean, 0.0) / n);
    int const j = c % zd;
    double const want = c < zd ? 2 * a[j] * mu[j] + b[j] : a[j] * std::exp(v[j]);
    worst = std::max(worst, std::abs(mean - want) / se);
    CHECK(std::abs(mean - want) < 4.5 * se);  // 4.5 σ: false-alarm rate 7e-6 per check
    CHECK(se < 0.05);                         // the check has power
  }
  auto const eps = lt::host_values(rep.eps());
  double m = 0, m2 = 0;
  for (double e : eps) {
    m += e;
    m2 += e * e;
  }
  m /= double(eps.size());
  m2 /= double(eps.size());
  CHECK(std::abs(m) < 4.5 / std::sqrt(double(eps.size())));
  CHECK(std::abs(m2 - 1) < 4.5 * std::sqrt(2.0 / double(eps.size())));
  MESSAGE(std::string(Space::name()) << " " << (sizeof(S) == 4 ? "float" : "double")
                                     << ": reparameterised gradient, worst |mean − analytic| = " << worst
                                     << " standard errors (n = " << n << ")");
  // Another draw gives other ε; the same seed and draw number the same ε (thread-count independent).
  T z2("z2", n, zd, 1, 1);
  rep.sample(space, enc, z2);
  space.fence();
  CHECK(lt::host_values(z2) != lt::host_values(z));
  rep.reseed(2024);
  rep.sample(space, enc, z2);
  space.fence();
  CHECK(lt::host_values(z2) == lt::host_values(z));
}

LENSING_TEST_CASE_TEMPLATE("nn: probabilistic losses reject bad shapes and NaN", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using T = nn::Tensor<S, Mem>;
  using M = lensing::View2D<S, Mem>;
  Space space;
  T none;
  T pf("pf", 2, 5, 1, 1), gbad("gbad", 2, 4, 1, 1);
  M t2("t2", 2, 2), t3("t3", 2, 3), t_rows("t_rows", 3, 2);
  CHECK(lt::error_message([&] {
          nn::gaussian_full_nll_loss(space, pf, t3, none);
        }).find("lensing::nn::gaussian_full_nll_loss: pred has 5 values per sample, expected 9") == 0);
  CHECK_THROWS_AS(nn::gaussian_full_nll_loss(space, pf, t_rows, none), std::invalid_argument);
  CHECK_THROWS_AS(nn::gaussian_full_nll_loss(space, pf, t2, gbad), std::invalid_argument);
  T pm("pm", 2, 10, 1, 1);
  CHECK_NOTHROW(nn::mdn_nll_loss(space, pm, t2, 2, none));
  CHECK_THROWS_AS(nn::mdn_nll_loss(space, pm, t2, 3, none), std::invalid_argument);
  CHECK_THROWS_AS(nn::mdn_nll_loss(space, pm, t2, 0, none), std::invalid_argument);
  // NaN and inf in the prediction or the target.
  auto hp = Kokkos::create_mirror_view(pf);
  hp(1, 3, 0, 0) = std::numeric_limits<S>::quiet_NaN();
  Kokkos::deep_copy(pf, hp);
  CHECK(lt::error_message([&] {
          nn::gaussian_full_nll_loss(space, pf, t2, none);
        }).find("lensing::nn::gaussian_full_nll_loss: pred has 1 NaN or infinite values") == 0);
  auto ht = Kokkos::create_mirror_view(t2);
  ht(0, 1) = std::numeric_limits<S>::infinity();
  Kokkos::deep_copy(t2, ht);
  CHECK(lt::error_message([&] { nn::mdn_nll_loss(space, pm, t2, 2, none); }).find("target has 1 NaN") !=
        std::string::npos);
  T q("q", 2, 3, 1, 1), q4("q4", 2, 4, 1, 1), p4("p4", 2, 4, 1, 1), p6("p6", 2, 6, 1, 1);
  CHECK(lt::error_message([&] { nn::kl_standard_normal(space, q, none); }).find("lensing::nn::kl_standard_normal: ") ==
        0);
  CHECK_THROWS_AS(nn::kl_diagonal_gaussians(space, q4, p6, none, none), std::invalid_argument);
  auto hq = Kokkos::create_mirror_view(q4);
  hq(0, 0, 0, 0) = std::numeric_limits<S>::quiet_NaN();
  Kokkos::deep_copy(q4, hq);
  CHECK_THROWS_AS(nn::kl_standard_normal(space, q4, none), std::invalid_argument);
  CHECK_THROWS_AS(nn::kl_diagonal_gaussians(space, p4, q4, none, none), std::invalid_argument);
  nn::Reparameterize<S, Mem> rep(2, 2, 1);
  T z("z", 2, 2, 1, 1), z3("z3", 2, 3, 1, 1);
  CHECK(lt::error_message([&] { rep.backward(space, p4, z, p4); }).find("call sample() first") != std::string::npos);
  CHECK_THROWS_AS(rep.sample(space, q4, z), std::invalid_argument);  // NaN
  CHECK_THROWS_AS(rep.sample(space, p4, z3), std::invalid_argument);
  using Rep = nn::Reparameterize<S, Mem>;
  CHECK_THROWS_AS(Rep(0, 2, 1), std::invalid_argument);
}
