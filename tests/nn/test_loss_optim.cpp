// Losses (values and central-difference gradients) and optimizers (steps
// against values computed by hand from PyTorch's update rules).
#include <lensing/nn/loss.hpp>
#include <lensing/nn/optimizer.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {

// Max relative error of the loss gradient against central differences.
template <class Space, class F>
double loss_gradient_error(Space const& space, F const& loss, int n, int c, unsigned seed, double scale) {
  using Mem = typename Space::memory_space;
  nn::Tensor<double, Mem> pred("pred", n, c, 1, 1);
  lt::fill_normal(pred, seed, scale);
  (void)space;
  return lt::loss_fd_error(pred, [&](auto const& g) { return loss(pred, g); });
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("nn: loss gradients against central differences", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  int const n = 3, d = 4;
  lensing::View2D<double, Mem> t("t", n, d), labels("labels", n, d);
  lt::fill_normal(t, 3);
  lt::set_values(labels, {0, 1, 0.25, 1, 0, 0, 1, 0.5, 1, 1, 0, 0.75});
  double const e_mse = loss_gradient_error(
      space, [&](auto const& p, auto const& g) { return nn::mse_loss(space, p, t, g); }, n, d, 1, 1.0);
  double const e_nll = loss_gradient_error(
      space, [&](auto const& p, auto const& g) { return nn::gaussian_nll_loss(space, p, t, g); }, n, 2 * d, 2, 1.0);
  double const e_bce = loss_gradient_error(
      space, [&](auto const& p, auto const& g) { return nn::bce_with_logits_loss(space, p, labels, g); }, n, d, 4, 3.0);
  MESSAGE(std::string(Space::name()) << ": loss gradient errors MSE " << e_mse << ", Gaussian NLL " << e_nll << ", BCE "
                                     << e_bce);
  CHECK(e_mse < 1e-8);
  CHECK(e_nll < 1e-8);
  CHECK(e_bce < 1e-8);
}

LENSING_TEST_CASE_TEMPLATE("nn: loss values and shape errors", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using T = nn::Tensor<S, Mem>;
  using M = lensing::View2D<S, Mem>;
  Space space;
  double const tol = std::is_same<S, float>::value ? 1e-6 : 1e-14;
  T p("p", 2, 1, 1, 1), none;
  M t("t", 2, 1);
  lt::set_values(p, {1, 2});
  CHECK(double(nn::mse_loss(space, p, t, none)) == doctest::Approx(2.5).epsilon(tol));
  // Gaussian NLL, one sample, μ = 0, s = log σ² = log 4, t = 2: ½(4/4 + log 4 + log 2π).
  T q("q", 1, 2, 1, 1), gq("gq", 1, 2, 1, 1);
  M tq("tq", 1, 1);
  lt::set_values(q, {0, std::log(4.0)});
  lt::set_values(tq, {2});
  CHECK(double(nn::gaussian_nll_loss(space, q, tq, gq)) ==
        doctest::Approx(0.5 * (1 + std::log(4.0) + std::log(2 * M_PI))).epsilon(tol));
  auto const g = lt::host_values(gq);
  CHECK(g[0] == doctest::Approx(-0.5).epsilon(tol));          // −(t−μ)/σ²
  CHECK(g[1] == doctest::Approx(0.0).epsilon(tol).scale(1));  // ½(1 − (t−μ)²/σ²)
  // BCE with logits: z = 0 -> log 2; z = ±100 stays finite (no overflow, no NaN).
  T z("z", 3, 1, 1, 1), gz("gz", 3, 1, 1, 1);
  M lab("lab", 3, 1);
  lt::set_values(z, {0, 100, -100});
  lt::set_values(lab, {1, 1, 1});
  CHECK(double(nn::bce_with_logits_loss(space, z, lab, gz)) ==
        doctest::Approx((std::log(2.0) + 0 + 100) / 3).epsilon(tol));
  auto const gzv = lt::host_values(gz);
  CHECK(gzv[0] == doctest::Approx(-0.5 / 3).epsilon(tol));
  CHECK(gzv[2] == doctest::Approx(-1.0 / 3).epsilon(tol));
  // Shapes.
  M wrong("wrong", 3, 1);
  CHECK_THROWS_AS(nn::mse_loss(space, p, wrong, none), std::invalid_argument);
  CHECK_THROWS_AS(nn::gaussian_nll_loss(space, p, t, none), std::invalid_argument);  // needs 2 values per target
  T gbad("gbad", 2, 2, 1, 1);
  CHECK_THROWS_AS(nn::mse_loss(space, p, t, gbad), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("nn: optimizer steps against hand-computed values", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  double const tol = std::is_same<S, float>::value ? 2e-6 : 1e-14;
  nn::ParamVector<S, Mem> p("p", 3), g("g", 3);
  std::vector<std::vector<double>> const grads = {{0.5, 0.1, -3.0}, {-0.25, 0.2, -1.0}};
  auto run = [&](auto&& opt, std::vector<double> const& want) {
    lt::set_values(p, {1.0, -2.0, 0.5});
    for (auto const& gv : grads) {
      lt::set_values(g, gv);
      opt.step(space, p, g);
    }
    space.fence();
    auto const v = lt::host_values(p);
    for (int i = 0; i < 3; ++i)
      CHECK(v[i] == doctest::Approx(want[i]).epsilon(tol));
  };
  // Two steps each.  SGD, momentum 0.9, weight decay 0.01, lr 0.1:
  // g' = g + 0.01 θ, v = 0.9 v + g', θ -= 0.1 v; e.g. θ₀: 1 -> 0.949 -> 0.949 - 0.1 (0.9·0.51 − 0.24051) = 0.927151.
  run(nn::SGD<S, Mem>(3, 0.1, 0.9, 0.01), {0.927151, -2.033192, 1.1682505});
  run(nn::SGD<S, Mem>(3, 0.1, 0.9, 0.0, true), {0.912, -2.0651, 1.503});
  // Adam lr 0.1 (β = 0.9, 0.999, ε = 1e-8): step 1 moves each θ by −0.1 sign(g) (m̂/√v̂ = g/|g|).
  run(nn::Adam<S, Mem>(3, 0.1), {0.8733662987078463, -2.196518186478747, 0.6871063943494707});
  run(nn::Adam<S, Mem>(3, 0.1, 0.9, 0.999, 1e-8, 0.1), {0.8544413674617625, -1.8407351661168132, 0.686442621846279});
  run(nn::AdamW<S, Mem>(3, 0.1, 0.9, 0.999, 1e-8, 0.1), {0.8544662986878463, -2.155718186578747, 0.6761563943528041});
  // Gradient clipping to norm 1.
  lt::set_values(g, {3, 0, 4});
  CHECK(nn::clip_grad_norm(space, g, 1.0) == doctest::Approx(5.0));
  auto const gv = lt::host_values(g);
  CHECK(gv[0] == doctest::Approx(0.6).epsilon(tol));
  CHECK(gv[2] == doctest::Approx(0.8).epsilon(tol));
  using Opt = nn::Adam<S, Mem>;
  using Sgd = nn::SGD<S, Mem>;
  CHECK_THROWS_AS(Opt(3, -1.0), std::invalid_argument);
  CHECK_THROWS_AS(Sgd(3, 0.1, 1.0), std::invalid_argument);
  nn::ParamVector<S, Mem> small("small", 2);
  Opt adam(3);
  CHECK_THROWS_AS(adam.step(space, small, g), std::invalid_argument);
}
