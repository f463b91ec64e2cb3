// Recurrent inference machine: the scaled likelihood gradient of
// LinearGaussianProblem and its VJP against central differences, the BPTT
// gradient of a tiny RIM's loss against central differences of the loss,
// float against double, the training-time weights round trip, bad arguments.
#include <lensing/nn/rim.hpp>
#include <lensing/nn/serialize.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {

// A random sparse problem with m data values and n unknowns: each row of A
// has a few positive entries (like interpolation weights under a PSF), the
// data A s0 + noise for a random s0 >= 0.
nn::LinearGaussianProblem random_problem(int m, int n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Eigen::Triplet<double>> t;
  for (int i = 0; i < m; ++i)
    for (int k = 0; k < 4; ++k)
      t.emplace_back(i, int(u(rng) * n) % n, 0.2 + u(rng));
  Eigen::SparseMatrix<double> a(m, n);
  a.setFromTriplets(t.begin(), t.end());
  Eigen::VectorXd s0(n), sigma(m);
  for (int j = 0; j < n; ++j)
    s0[j] = u(rng);
  for (int i = 0; i < m; ++i)
    sigma[i] = 0.3 + 0.4 * u(rng);
  Eigen::VectorXd d = a * s0;
  std::normal_distribution<double> g(0, 1);
  for (int i = 0; i < m; ++i)
    d[i] += sigma[i] * g(rng);
  return nn::LinearGaussianProblem::make(a, d, sigma);
}

}  // namespace

TEST_CASE("nn: LinearGaussianProblem gradient and its VJP") {
  auto const p = random_problem(30, 12, 3);
  Eigen::VectorXd s(12), v(12);
  for (int j = 0; j < 12; ++j)
    s[j] = 0.1 * j - 0.3, v[j] = std::cos(1.0 + j);
  // g = c grad log p = -c/2 grad chi^2: central differences of chi^2 (a
  // quadratic: exact up to rounding ~1e-16 chi^2 / h).
  Eigen::VectorXd const g = p.gradient(s);
  double const h = 1e-4;
  double err = 0;
  for (int j = 0; j < 12; ++j) {
    Eigen::VectorXd sp = s, sm = s;
    sp[j] += h;
    sm[j] -= h;
    double const fd = -0.5 * p.scale * (p.chi2(sp) - p.chi2(sm)) / (2 * h);
    err = std::max(err, std::abs(fd - g[j]) / std::max(1.0, std::abs(g[j])));
  }
  CHECK(err < 1e-8);
  // g is affine in s: (dg/ds)^T v = g(s + v) - g(s) (symmetric Jacobian).
  Eigen::VectorXd const jv = p.gradient(s + v) - g;
  CHECK((p.gradient_vjp(v) - jv).norm() < 1e-12 * std::max(1.0, jv.norm()));
  // The scale: c tr(A^T C^-1 A) = N_s.
  Eigen::SparseMatrix<double> const f = Eigen::SparseMatrix<double>(p.a.transpose()) * p.inv_var.asDiagonal() * p.a;
  CHECK(std::abs(p.scale * f.diagonal().sum() - 12.0) < 1e-10);
}

LENSING_TEST_CASE_TEMPLATE("nn: RIM backpropagation through time against central differences", Config,
                           lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  int const ny = 4, nx = 5, b = 2;
  for (int steps : {1, 3}) {
    nn::RimOptions opt;
    opt.steps = steps;
    opt.features = 2;
    opt.hidden = 2;
    opt.kernel = 3;
    nn::RIM<double, Mem> rim(opt, ny, nx);
    rim.initialize(5);
    lt::fill_normal(rim.parameters(), 6, 0.4);
    std::vector<nn::LinearGaussianProblem> problems{random_problem(25, ny * nx, 7), random_problem(18, ny * nx, 8)};
    nn::Tensor<double, Mem> truth("truth", b, 1, ny, nx);
    lt::fill_normal(truth, 9, 0.5);
    nn::ParamVector<double, Mem> scratch("scratch", rim.num_params());
    // Error model: the loss is a smooth composition of T steps; central
    // differences at h = 1e-6 have truncation ~h^2 |L'''| ~ 1e-12 and rounding
    // ~1e-16 |L| / h ~ 1e-10: 1e-7 relative to max(1, |dL/dtheta|).
    double const err = lt::loss_fd_error(
        rim.parameters(),
        [&](nn::ParamVector<double, Mem> const& grad) {
          return rim.loss_and_gradient(space, problems, truth, grad.data() != nullptr ? grad : scratch);
        },
        1e-6);
    MESSAGE("RIM (T = " << steps << ", " << rim.num_params() << " parameters) BPTT on " << std::string(Space::name())
                        << ": max gradient error " << err);
    CHECK(err < 1e-7);
    // The estimates are s_t = s_{t-1} + update: finite, and the loss is the
    // mean over the steps of the squared errors.
    rim.reconstruct(space, problems);
    auto const tv = lt::host_values(truth);
    double loss = 0;
    for (int t = 1; t <= steps; ++t) {
      auto const st = lt::host_values(rim.estimate(t));
      for (std::size_t i = 0; i < st.size(); ++i)
        loss += (st[i] - tv[i]) * (st[i] - tv[i]) / (double(steps) * double(st.size()));
    }
    CHECK(std::abs(loss - rim.loss_and_gradient(space, problems, truth, scratch)) < 1e-12 * std::max(1.0, loss));
    auto const s0 = lt::host_values(rim.estimate(0));
    for (double v : s0)
      CHECK(v == 0.0);
  }
}

LENSING_TEST_CASE_TEMPLATE("nn: RIM in float follows double; weights round trip", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const ny = 6, nx = 6, b = 3;
  nn::RimOptions opt;
  opt.steps = 4;
  opt.features = 3;
  opt.hidden = 4;
  nn::RIM<double, Mem> ref(opt, ny, nx);
  nn::RIM<S, Mem> rim(opt, ny, nx);
  ref.initialize(21);
  lt::set_values(rim.parameters(), lt::host_values(ref.parameters()));
  std::vector<nn::LinearGaussianProblem> problems;
  for (int i = 0; i < b; ++i)
    problems.push_back(random_problem(40, ny * nx, 30 + i));
  nn::Tensor<double, Mem> td("td", b, 1, ny, nx);
  nn::Tensor<S, Mem> ts("ts", b, 1, ny, nx);
  lt::fill_normal(td, 31, 0.5);
  lt::set_values(ts, lt::host_values(td));
  nn::ParamVector<double, Mem> gd("gd", ref.num_params());
  nn::ParamVector<S, Mem> gs("gs", rim.num_params());
  double const ld = ref.loss_and_gradient(space, problems, td, gd);
  double const ls = rim.loss_and_gradient(space, problems, ts, gs);
  // Float: ~1e-7 relative rounding per operation through 4 steps of O(10^2)-term
  // sums: 1e-4 relative is a generous bound; double against itself: exact.
  double const tol = std::is_same<S, float>::value ? 1e-4 : 1e-14;
  CHECK(std::abs(ls - ld) <= tol * ld);
  CHECK(lt::rel_diff(lt::host_values(gs), lt::host_values(gd)) < (std::is_same<S, float>::value ? 1e-3 : 1e-14));
  // save_weights / load_weights through for_each_layer.
  std::string const path =
      "test_rim_" + std::string(Space::name()) + (std::is_same<S, float>::value ? "_f" : "_d") + ".weights";
  nn::save_weights(rim, path);
  nn::RIM<S, Mem> back(opt, ny, nx);
  nn::load_weights(back, path);
  CHECK(lt::host_values(back.parameters()) == lt::host_values(rim.parameters()));
  std::remove(path.c_str());
}

LENSING_TEST_CASE_TEMPLATE("nn: RIM bad arguments", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  nn::RimOptions opt;
  opt.kernel = 2;
  CHECK(lt::error_message([&] { nn::RIM<double, Mem>(opt, 4, 4); }).find("kernel must be odd") != std::string::npos);
  opt.kernel = 3;
  opt.steps = 0;
  CHECK_THROWS_AS((nn::RIM<double, Mem>(opt, 4, 4)), std::invalid_argument);
  opt.steps = 2;
  nn::RIM<double, Mem> rim(opt, 4, 4);
  std::vector<nn::LinearGaussianProblem> wrong{random_problem(10, 9, 1)};
  CHECK(lt::error_message([&] { rim.reconstruct(space, wrong); }).find("a problem has 9 source pixels, the RIM 16") !=
        std::string::npos);
  Eigen::SparseMatrix<double> a(3, 2);
  Eigen::VectorXd d = Eigen::VectorXd::Ones(3), sigma = Eigen::VectorXd::Ones(3);
  CHECK(lt::error_message([&] { nn::LinearGaussianProblem::make(a, d, sigma); }).find("A = 0") != std::string::npos);
  sigma[1] = 0;
  a.insert(0, 0) = 1;
  CHECK(lt::error_message([&] { nn::LinearGaussianProblem::make(a, d, sigma); }).find("sigma must be finite and > 0") !=
        std::string::npos);
}
