// WGAN-GP on batched graphs (nn/graph_batch.hpp, nn/graph_net.hpp,
// nn/wgan.hpp): batched graphs equal per-graph runs, pooling and broadcast
// against direct sums, the GraphNet backward and tangent passes and the
// gradient penalty's value and double backward against central differences,
// a small WGAN-GP that learns to shift and scale Gaussian point clouds,
// save/load, errors.
#include <lensing/nn/graph_batch.hpp>
#include <lensing/nn/graph_net.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/wgan.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <cstdio>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {

// Positions of G clouds of the given sizes, N(0, 1) in each coordinate.
struct Clouds {
  std::vector<int> sizes;
  std::vector<double> px, py;
};
inline Clouds random_clouds(std::vector<int> const& sizes, unsigned seed, double mx = 0, double my = 0, double sd = 1) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd;
  Clouds c;
  c.sizes = sizes;
  for (int n : sizes)
    for (int i = 0; i < n; ++i) {
      c.px.push_back(mx + sd * nd(rng));
      c.py.push_back(my + sd * nd(rng));
    }
  return c;
}

template <class S, class M>
lensing::View2D<S, M> matrix(long rows, long cols, std::vector<double> const& v) {
  lensing::View2D<S, M> m("m", rows, cols);
  lt::set_values(m, v);
  return m;
}

inline std::vector<double> normals(long n, unsigned seed, double sd = 1) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd;
  std::vector<double> v(static_cast<std::size_t>(n));
  for (auto& x : v)
    x = sd * nd(rng);
  return v;
}

// A critic of the tests: 2 graph convolutions, mean pool, one dense hidden layer.
inline nn::GraphNetSpec critic_spec(int in) {
  nn::GraphNetSpec s;
  s.in_features = in;
  s.conv_widths = {6, 5};
  s.pool = true;
  s.dense_widths = {4};
  s.out_features = 1;
  return s;
}

// Gradient penalty value at xhat (host values), parameters as they are (no gradient).
template <class Space, class Net, class S, class M>
double gp_value(Space const& space, Net& critic, nn::GraphBatch<S, M> const& b, lensing::View2D<S, M> const& xhat,
                int d, double lambda) {
  nn::GradientPenalty<S, M> gp(d, lambda);
  return gp.evaluate(space, critic, b, xhat, nn::ParamGrad::none).penalty;
}

}  // namespace

//----------------------------------------------------------------------------

LENSING_TEST_CASE_TEMPLATE("nn: graph batches equal per-graph runs; pool and broadcast", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  // Same arithmetic per row either way; the tolerance allows for a GEMM
  // blocking that differs with the number of rows (a few ulps).
  double const tol = std::is_same<S, float>::value ? 1e-5 : 1e-12;
  auto const c = random_clouds({5, 9, 1, 13}, 11);
  int const G = 4, N = 28, F = 3;
  auto const batch = nn::knn_graph_batch<S, Mem>(c.sizes, c.px, c.py, 3);
  REQUIRE(batch.num_graphs() == G);
  REQUIRE(batch.num_nodes() == N);
  // The batch adjacency is the per-graph Kipf & Welling Â, block by block.
  {
    auto const rp = lt::host_values(batch.adjacency.row_ptr), col = lt::host_values(batch.adjacency.col);
    auto const val = lt::host_values(batch.adjacency.val);
    int o = 0;
    for (int g = 0; g < G; ++g) {
      int const n = c.sizes[g];
      std::vector<double> gx(c.px.begin() + o, c.px.begin() + o + n), gy(c.py.begin() + o, c.py.begin() + o + n);
      auto const a = nn::gcn_normalized_adjacency<double, Kokkos::HostSpace>(
          n, n > 3 ? nn::knn_graph_edges(gx, gy, 3) : std::vector<std::pair<int, int>>{});
      for (int i = 0; i < n; ++i) {
        if (n <= 3) continue;  // small graphs: complete (checked by the network comparison)
        REQUIRE(int(rp[o + i + 1] - rp[o + i]) == a.row_ptr(i + 1) - a.row_ptr(i));
        for (int k = 0; k < a.row_ptr(i + 1) - a.row_ptr(i); ++k) {
          CHECK(int(col[rp[o + i] + k]) == o + a.col(a.row_ptr(i) + k));
          CHECK(std::abs(val[rp[o + i] + k] - a.val(a.row_ptr(i) + k)) <= tol);
        }
      }
      o += n;
    }
  }
  auto const hv = normals(long(N) * F, 12);
  auto const h = matrix<S, Mem>(N, F, hv);
  // GraphNet critic (pooled) and generator-like (per node) networks.
  for (bool pool : {true, false}) {
    auto spec = critic_spec(F);
    spec.pool = pool;
    spec.out_features = pool ? 1 : 2;
    nn::GraphNet<S, Mem, nn::TanhOp> net(spec);
    net.initialize(5);
    auto const yb = lt::host_values(net.forward(space, batch, h));
    int o = 0;
    double err = 0, scale = 0;
    for (int g = 0; g < G; ++g) {
      int const n = c.sizes[g];
      auto const single = nn::knn_graph_batch<S, Mem>({n}, std::vector<double>(c.px.begin() + o, c.px.begin() + o + n),
                                                      std::vector<double>(c.py.begin() + o, c.py.begin() + o + n), 3);
      auto const hg = matrix<S, Mem>(n, F, std::vector<double>(hv.begin() + long(o) * F, hv.begin() + long(o + n) * F));
      auto const yg = lt::host_values(net.forward(space, single, hg));
      for (std::size_t k = 0; k < yg.size(); ++k) {
        double const ref = yg[k], got = yb[pool ? g : long(o) * 2 + long(k)];
        err = std::max(err, std::abs(got - ref));
        scale = std::max(scale, std::abs(ref));
      }
      o += n;
    }
    MESSAGE("GraphNet pool=" << pool << ": batched vs per graph, max diff " << err << " (scale " << scale << ")");
    CHECK(err <= tol * std::max(1.0, scale));
  }
  // GraphConv layers on the batch adjacency + GraphPool in a Sequential.
  {
    auto net = nn::make_sequential(nn::Shape4{N, F, 1, 1}, nn::GraphConv<S, Mem>(batch.adjacency, F, 4),
                                   nn::Tanh<S, Mem>(), nn::GraphPool<S, Mem>(batch, nn::GraphPoolMode::sum));
    net.initialize(6);
    nn::Tensor<S, Mem> x("x", N, F, 1, 1);
    lt::set_values(x, hv);
    auto const yb = lt::host_values(net.forward(space, x));
    REQUIRE(yb.size() == std::size_t(G) * 4);
    int o = 0;
    double err = 0;
    for (int g = 0; g < G; ++g) {
      int const n = c.sizes[g];
      auto const single = nn::knn_graph_batch<S, Mem>({n}, std::vector<double>(c.px.begin() + o, c.px.begin() + o + n),
                                                      std::vector<double>(c.py.begin() + o, c.py.begin() + o + n), 3);
      auto net1 = nn::make_sequential(nn::Shape4{n, F, 1, 1}, nn::GraphConv<S, Mem>(single.adjacency, F, 4),
                                      nn::Tanh<S, Mem>(), nn::GraphPool<S, Mem>(single, nn::GraphPoolMode::sum));
      Kokkos::deep_copy(net1.parameters(), net.parameters());
      nn::Tensor<S, Mem> xg("xg", n, F, 1, 1);
      lt::set_values(xg, std::vector<double>(hv.begin() + long(o) * F, hv.begin() + long(o + n) * F));
      auto const yg = lt::host_values(net1.forward(space, xg));
      for (int f = 0; f < 4; ++f)
        err = std::max(err, std::abs(yb[g * 4 + f] - yg[f]) / std::max(1.0, std::abs(yg[f])));
      o += n;
    }
    CHECK(err <= tol);
  }
  // Pool, broadcast and their adjoints against direct sums.
  {
    lensing::View2D<S, Mem> y("y", G, F), v("v", G, F), yn("yn", N, F), dx("dx", N, F);
    auto const vv = normals(long(G) * F, 13);
    lt::set_values(v, vv);
    for (auto mode : {nn::GraphPoolMode::mean, nn::GraphPoolMode::sum}) {
      nn::graph_pool(space, batch, h, y, mode);
      auto const yh = lt::host_values(y);
      nn::graph_pool_backward(space, batch, v, dx, mode);
      auto const dxh = lt::host_values(dx);
      double lhs = 0, rhs = 0;  // <pool(h), v> = <h, pool_backward(v)>
      int o = 0;
      for (int g = 0; g < G; ++g) {
        for (int f = 0; f < F; ++f) {
          double s = 0;
          for (int i = o; i < o + c.sizes[g]; ++i)
            s += hv[i * F + f];
          if (mode == nn::GraphPoolMode::mean) s /= c.sizes[g];
          CHECK(std::abs(yh[g * F + f] - s) <= tol * std::max(1.0, std::abs(s)));
          lhs += yh[g * F + f] * vv[g * F + f];
        }
        o += c.sizes[g];
      }
      for (int k = 0; k < N * F; ++k)
        rhs += hv[k] * dxh[k];
      CHECK(std::abs(lhs - rhs) <= 10 * tol * std::max(1.0, std::abs(lhs)));
    }
    nn::graph_broadcast(space, batch, v, yn);
    auto const ynh = lt::host_values(yn);
    int o = 0;
    for (int g = 0; g < G; ++g) {
      for (int i = o; i < o + c.sizes[g]; ++i)
        for (int f = 0; f < F; ++f)
          CHECK(ynh[i * F + f] == double(S(vv[g * F + f])));
      o += c.sizes[g];
    }
    nn::graph_broadcast_backward(space, batch, h, y);  // = sum pool
    auto const bh = lt::host_values(y);
    nn::graph_pool(space, batch, h, v, nn::GraphPoolMode::sum);
    CHECK(lt::rel_diff(bh, lt::host_values(v)) <= tol);
  }
}

LENSING_TEST_CASE_TEMPLATE("nn: knn_graph_edges_grid equals knn_graph_edges", Config, lt::DoubleConfigs) {
  for (int n : {40, 700}) {
    auto const c = random_clouds({n}, 21 + n);
    for (int k : {1, 6}) {
      auto a = nn::knn_graph_edges(c.px, c.py, k), b = nn::knn_graph_edges_grid(c.px, c.py, k);
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      CHECK(a == b);  // continuous random points: no ties
    }
  }
  // knn_graph_batch on clouds large enough for the grid search: the per-graph Â.
  auto const c = random_clouds({100, 80}, 23);
  auto const batch = nn::knn_graph_batch<double, Kokkos::HostSpace>(c.sizes, c.px, c.py, 5);
  int o = 0;
  for (int n : c.sizes) {
    std::vector<double> gx(c.px.begin() + o, c.px.begin() + o + n), gy(c.py.begin() + o, c.py.begin() + o + n);
    auto const a = nn::gcn_normalized_adjacency<double, Kokkos::HostSpace>(n, nn::knn_graph_edges(gx, gy, 5));
    long bad = 0;
    for (int i = 0; i < n; ++i) {
      int const rb = batch.adjacency.row_ptr(o + i), len = batch.adjacency.row_ptr(o + i + 1) - rb;
      if (len != a.row_ptr(i + 1) - a.row_ptr(i)) {
        ++bad;
        continue;
      }
      for (int k = 0; k < len; ++k)
        bad += batch.adjacency.col(rb + k) != o + a.col(a.row_ptr(i) + k) ||
               std::abs(batch.adjacency.val(rb + k) - a.val(a.row_ptr(i) + k)) > 1e-15;
    }
    CHECK(bad == 0);
    o += n;
  }
}

//----------------------------------------------------------------------------
// Derivatives against central differences (double).

// The GraphNet's backward (input and parameter gradients of <r, y>) and its
// tangent pass, for each activation.  Error model (core/gradient_check.hpp):
// the networks are smooth in x and θ (tanh, softplus; ELU is C¹ and LeakyReLU
// piecewise linear, whose kinks a random point lies within h of with
// probability ~1e-4 here), O(1) values and derivatives, h = 1e-5: truncation
// h²/6 |f'''| ~ 1e-11, rounding 1e-16/1e-5 ~ 1e-11; tolerance 1e-7.
template <class Act, class Space, class Mem>
void check_graph_net_derivatives(Space const& space, Act act, char const* name) {
  auto const c = random_clouds({6, 11, 8}, 31);
  int const N = 25, F = 3;
  auto const batch = nn::knn_graph_batch<double, Mem>(c.sizes, c.px, c.py, 4);
  nn::GraphNet<double, Mem, Act> net(critic_spec(F), act);
  net.initialize(7);
  lt::fill_normal(net.parameters(), 8, 0.5);  // non-zero biases
  auto const x = matrix<double, Mem>(N, F, normals(long(N) * F, 9));
  auto const xd = matrix<double, Mem>(N, F, normals(long(N) * F, 10));
  int const G = 3;
  auto const r = matrix<double, Mem>(G, 1, normals(G, 11));
  auto const rv = lt::host_values(r);
  auto const loss = [&]() {
    auto const y = lt::host_values(net.forward(space, batch, x));
    double s = 0;
    for (int g = 0; g < G; ++g)
      s += rv[g] * y[g];
    return s;
  };
  lensing::View2D<double, Mem> dx("dx", N, F);
  net.forward(space, batch, x);
  net.backward(space, batch, x, r, dx, nn::ParamGrad::overwrite);
  auto const gp = lt::host_values(net.gradients()), gx = lt::host_values(dx);
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), net.parameters());
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
  auto const at = [&](auto& host, auto const& dev) {
    return [&host, dev, &loss](long k, double v) {
      double const v0 = host.data()[k];
      host.data()[k] = v;
      Kokkos::deep_copy(dev, host);
      double const l = loss();
      host.data()[k] = v0;
      Kokkos::deep_copy(dev, host);
      return l;
    };
  };
  auto const rp = lensing::check_partials(
      lensing::spread_indices(long(gp.size()), 120), [&](long k) { return hp.data()[k]; },
      [&](long k) { return gp[k]; }, at(hp, net.parameters()), 1e-5);
  auto const rx = lensing::check_partials(
      lensing::spread_indices(long(gx.size()), 200), [&](long k) { return hx.data()[k]; },
      [&](long k) { return gx[k]; }, at(hx, x), 1e-5);
  // Tangent: ẏ = (y(x + h ẋ) − y(x − h ẋ)) / 2h.
  net.forward(space, batch, x);
  auto const yd = lt::host_values(net.forward_tangent(space, batch, xd));
  auto const xv = lt::host_values(x), xdv = lt::host_values(xd);
  auto shifted = [&](double t) {
    std::vector<double> v(xv.size());
    for (std::size_t k = 0; k < v.size(); ++k)
      v[k] = xv[k] + t * xdv[k];
    auto const xs = matrix<double, Mem>(N, F, v);
    return lt::host_values(net.forward(space, batch, xs));
  };
  double const h = 1e-5;
  auto const yp = shifted(h), ym = shifted(-h);
  double terr = 0;
  for (int g = 0; g < G; ++g)
    terr = std::max(terr, std::abs((yp[g] - ym[g]) / (2 * h) - yd[g]) / std::max(1.0, std::abs(yd[g])));
  MESSAGE(std::string(name) << ": backward param err " << rp.max_error << " (" << rp.checked << "), input err "
                            << rx.max_error << " (" << rx.checked << "), tangent err " << terr);
  CHECK(rp.passed(1e-7));
  CHECK(rx.passed(1e-7));
  CHECK(terr < 1e-7);
}

LENSING_TEST_CASE_TEMPLATE("nn: GraphNet backward and tangent pass against central differences", Config,
                           lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  check_graph_net_derivatives<nn::TanhOp, Space, Mem>(space, nn::TanhOp{}, "tanh");
  check_graph_net_derivatives<nn::SoftplusOp, Space, Mem>(space, nn::SoftplusOp{}, "softplus");
  check_graph_net_derivatives<nn::EluOp, Space, Mem>(space, nn::EluOp{}, "elu");
  check_graph_net_derivatives<nn::LeakyReluOp, Space, Mem>(space, nn::LeakyReluOp{0.2}, "leaky_relu");
}

// GP value against a direct computation: ∇ₓ D by central differences of D
// (each of the N x d penalised inputs), then (λ/G) Σ_g (‖∇ D_g‖ − 1)².  Error
// model: each FD partial is off by ~h²/6 |D'''| + 1e-16 |D| / h ~ 1e-10 at
// h = 1e-5, so ‖∇ D_g‖ by ~1e-9 and GP by ~2λ·1e-9 ~ 1e-8: tolerance 1e-7.
// Then GP's parameter and input gradients (the double backward) against
// central differences of GP itself.  GP is C² for tanh and softplus (C¹ for
// ELU, piecewise C² for LeakyReLU), values O(10), h = 1e-5: truncation
// h²/6 |GP'''| ~ 1e-9, rounding 1e-16·10/1e-5 ~ 1e-10; tolerance 1e-6
// (|fd − analytic| / max(1, |analytic|)).  Checked by mutation of
// graph_net.hpp: dropping the s''(x) ẋ dẏ term of the activation's reverse
// gives GP parameter-gradient errors 0.9-1.7 and input-gradient errors
// 0.05-0.4 (tanh, softplus, ELU; LeakyReLU has s'' = 0 and is unaffected, as
// it should be); dropping the tangent stream's parameter gradient gives
// 2.4-8.1; adding the bias to the tangent of a graph convolution gives
// tangent errors 0.12-0.37 in the test above and GP errors 0.6-1.4.
template <class Act, class Space, class Mem>
void check_gradient_penalty(Space const& space, Act act, char const* name, bool curved = true) {
  auto const c = random_clouds({7, 10, 5, 9}, 41);
  int const N = 31, F = 3, d = 2, G = 4;
  double const lambda = 10;
  auto const batch = nn::knn_graph_batch<double, Mem>(c.sizes, c.px, c.py, 4);
  nn::GraphNet<double, Mem, Act> critic(critic_spec(F), act);
  critic.initialize(17);
  lt::fill_normal(critic.parameters(), 18, 0.6);
  auto const xhat = matrix<double, Mem>(N, F, normals(long(N) * F, 19));
  // Value.
  nn::GradientPenalty<double, Mem> gp(d, lambda);
  lensing::View2D<double, Mem> dx("dx", N, F);
  auto const res = gp.evaluate(space, critic, batch, xhat, nn::ParamGrad::overwrite, dx);
  auto const gpar = lt::host_values(critic.gradients()), gx = lt::host_values(dx);
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), xhat);
  std::vector<double> gsq(G, 0.0);
  auto const offs = batch.host_offsets;
  double const h = 1e-5;
  for (int g = 0; g < G; ++g)
    for (int i = offs[g]; i < offs[g + 1]; ++i)
      for (int f = 0; f < d; ++f) {
        double const v0 = hx(i, f);
        double dp = 0, dm = 0;
        for (int s : {1, -1}) {
          hx(i, f) = v0 + s * h;
          Kokkos::deep_copy(xhat, hx);
          auto const y = lt::host_values(critic.forward(space, batch, xhat));
          (s > 0 ? dp : dm) = y[g];
        }
        hx(i, f) = v0;
        Kokkos::deep_copy(xhat, hx);
        double const gi = (dp - dm) / (2 * h);
        gsq[g] += gi * gi;
      }
  double direct = 0, mean_norm = 0;
  for (int g = 0; g < G; ++g) {
    direct += (std::sqrt(gsq[g]) - 1) * (std::sqrt(gsq[g]) - 1);
    mean_norm += std::sqrt(gsq[g]) / G;
  }
  direct *= lambda / G;
  MESSAGE(std::string(name) << ": GP " << res.penalty << " direct " << direct << ", mean |grad| " << res.mean_norm
                            << " direct " << mean_norm);
  CHECK(std::abs(res.penalty - direct) <= 1e-7 * std::max(1.0, direct));
  CHECK(std::abs(res.mean_norm - mean_norm) <= 1e-8);
  CHECK(res.penalty > 1e-3);  // a test at GP ≈ 0 would check little
  // Double backward against central differences of GP.
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), critic.parameters());
  auto const at = [&](auto& host, auto const& dev) {
    return [&, dev](long k, double v) {
      double const v0 = host.data()[k];
      host.data()[k] = v;
      Kokkos::deep_copy(dev, host);
      double const l = gp_value(space, critic, batch, xhat, d, lambda);
      host.data()[k] = v0;
      Kokkos::deep_copy(dev, host);
      return l;
    };
  };
  auto const rp = lensing::check_partials(
      lensing::spread_indices(long(gpar.size()), 150), [&](long k) { return hp.data()[k]; },
      [&](long k) { return gpar[k]; }, at(hp, critic.parameters()), 1e-5, res.penalty);
  auto const rx = lensing::check_partials(
      lensing::spread_indices(long(gx.size()), long(gx.size())), [&](long k) { return hx.data()[k]; },
      [&](long k) { return gx[k]; }, at(hx, xhat), 1e-5, res.penalty);
  MESSAGE(std::string(name) << ": GP parameter gradient err " << rp.max_error << " (" << rp.checked
                            << " checked, worst " << rp.worst << ": fd " << rp.fd_at_worst << " vs "
                            << rp.analytic_at_worst << "), input gradient err " << rx.max_error << " (" << rx.checked
                            << " checked)");
  CHECK(rp.passed(1e-6));
  CHECK(rx.passed(1e-6));
  // The condition column (f >= d) is not penalised, but GP still depends on
  // it through D.  (Not for LeakyReLU: D is piecewise linear, ∇ₓD piecewise
  // constant, so ∂GP/∂x = 0 almost everywhere.)
  bool cond_nonzero = false;
  for (int i = 0; i < N; ++i)
    cond_nonzero = cond_nonzero || gx[i * F + 2] != 0;
  CHECK(cond_nonzero == curved);
}

LENSING_TEST_CASE_TEMPLATE("nn: gradient penalty value and double backward against central differences", Config,
                           lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  check_gradient_penalty<nn::TanhOp, Space, Mem>(space, nn::TanhOp{}, "tanh");
  check_gradient_penalty<nn::SoftplusOp, Space, Mem>(space, nn::SoftplusOp{}, "softplus");
  check_gradient_penalty<nn::EluOp, Space, Mem>(space, nn::EluOp{}, "elu");
  check_gradient_penalty<nn::LeakyReluOp, Space, Mem>(space, nn::LeakyReluOp{0.2}, "leaky_relu", false);
}

// Float agrees with double (same weights, same inputs): GP to float rounding.
LENSING_TEST_CASE_TEMPLATE("nn: gradient penalty in float agrees with double", Config, lt::FloatConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  auto const c = random_clouds({7, 10, 5}, 51);
  int const N = 22, F = 3;
  auto const bd = nn::knn_graph_batch<double, Mem>(c.sizes, c.px, c.py, 4);
  auto const bf = nn::knn_graph_batch<float, Mem>(c.sizes, c.px, c.py, 4);
  nn::GraphNet<double, Mem, nn::TanhOp> cd(critic_spec(F));
  nn::GraphNet<float, Mem, nn::TanhOp> cf(critic_spec(F));
  cd.initialize(3);
  lt::set_values(cf.parameters(), lt::host_values(cd.parameters()));
  auto const xv = normals(long(N) * F, 52);
  nn::GradientPenalty<double, Mem> gd(2);
  nn::GradientPenalty<float, Mem> gf(2);
  auto const rd = gd.evaluate(space, cd, bd, matrix<double, Mem>(N, F, xv), nn::ParamGrad::overwrite);
  auto const rf = gf.evaluate(space, cf, bf, matrix<float, Mem>(N, F, xv), nn::ParamGrad::overwrite);
  // float: ~1e-7 relative per operation over a few hundred operations per value.
  CHECK(std::abs(rf.penalty - rd.penalty) <= 1e-4 * std::max(1.0, rd.penalty));
  CHECK(lt::rel_diff(lt::host_values(cf.gradients()), lt::host_values(cd.gradients())) <= 1e-4);
}

//----------------------------------------------------------------------------
// Training.

// The losses the training steps differentiate, against central differences:
// the critic step's gradient is that of L_D = mean D(x_f) − mean D(x_r) +
// GP(x̂) and the generator step's that of L_G = −mean D(x_f), with the noise
// of the first draw (generate(seed) reproduces it; ε_g is the stream
// (seed, purpose_latent_noise, 2, g), see Wgan::run_generator).  Both losses
// are smooth (tanh), O(1), h = 1e-5: errors ~1e-10 (GP's part as in the test
// above); tolerance 1e-6.  A sign error or a gradient taken at the wrong
// input gives O(1) errors.
LENSING_TEST_CASE_TEMPLATE("nn: Wgan steps differentiate L_D and L_G (central differences)", Config,
                           lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  auto const c = random_clouds({6, 8, 7}, 71);
  int const N = 21, G = 3;
  nn::WganConfig cfg;
  cfg.node_features = 2;
  cfg.node_conditions = 1;
  cfg.graph_conditions = 1;
  cfg.node_noise = 2;
  cfg.graph_noise = 2;
  cfg.generator_conv = {5};
  cfg.generator_dense = {4};
  cfg.critic_conv = {5};
  cfg.critic_dense = {4};
  cfg.seed = 77;
  nn::WganBatch<double, Mem> b;
  b.graph = nn::knn_graph_batch<double, Mem>(c.sizes, c.px, c.py, 3);
  b.real = matrix<double, Mem>(N, 2, normals(2 * N, 72));
  b.node_conditions = matrix<double, Mem>(N, 1, normals(N, 73));
  b.graph_conditions = matrix<double, Mem>(G, 1, {0.3, -0.2, 0.9});
  auto const copy_of = [](auto const& v) {
    auto h = Kokkos::create_mirror(Kokkos::HostSpace(), v);  // a copy even for host memory
    Kokkos::deep_copy(h, v);
    return h;
  };
  auto const critic_input = [&](nn::Wgan<double, Mem, nn::TanhOp>& gan, std::vector<double> const& x) {
    auto const cond = lt::host_values(b.node_conditions), gc = lt::host_values(b.graph_conditions);
    std::vector<double> h;
    for (int i = 0; i < N; ++i) {
      int g = 0;
      while (b.graph.host_offsets[g + 1] <= i)
        ++g;
      h.insert(h.end(), {x[2 * i], x[2 * i + 1], cond[i], gc[g]});
    }
    (void)gan;
    return matrix<double, Mem>(N, 4, h);
  };
  auto const mean_d = [&](nn::Wgan<double, Mem, nn::TanhOp>& gan, std::vector<double> const& x) {
    auto const d = lt::host_values(gan.critic().forward(space, b.graph, critic_input(gan, x)));
    return (d[0] + d[1] + d[2]) / G;
  };
  auto const fd_check = [&](auto const& params, auto const& grad, auto const& loss) {
    auto host = copy_of(params);
    auto const at = [&](long k, double v) {
      double const v0 = host(k);
      host(k) = v;
      Kokkos::deep_copy(params, host);
      double const l = loss();
      host(k) = v0;
      Kokkos::deep_copy(params, host);
      return l;
    };
    return lensing::check_partials(
        lensing::spread_indices(long(host.extent(0)), 120), [&](long k) { return host(k); },
        [&](long k) { return grad(k); }, at, 1e-5);
  };
  // Critic.
  {
    nn::Wgan<double, Mem, nn::TanhOp> gan(cfg);
    gan.initialize(4);
    auto const p0 = copy_of(gan.critic().parameters());
    auto const step = gan.critic_step(space, b);
    auto const grad = copy_of(gan.critic().gradients());
    Kokkos::deep_copy(gan.critic().parameters(), p0);
    std::vector<double> eps(G);
    for (int g = 0; g < G; ++g)
      eps[g] = lensing::random::Stream(lensing::random::stream_key(77, lensing::random::purpose_latent_noise, 2, g))
                   .uniform<double>();
    auto const xr = lt::host_values(b.real);
    auto const loss_d = [&]() {
      auto const xf = lt::host_values(gan.generate(space, b, 77));
      std::vector<double> xh(xf.size());
      for (int i = 0; i < N; ++i) {
        int g = 0;
        while (b.graph.host_offsets[g + 1] <= i)
          ++g;
        for (int f = 0; f < 2; ++f)
          xh[2 * i + f] = eps[g] * xr[2 * i + f] + (1 - eps[g]) * xf[2 * i + f];
      }
      double const mf = mean_d(gan, xf), mr = mean_d(gan, xr);
      return mf - mr + gp_value(space, gan.critic(), b.graph, critic_input(gan, xh), 2, cfg.gp_lambda);
    };
    double const l0 = loss_d();
    MESSAGE("critic step: L_D " << step.loss << " recomputed " << l0 << ", W " << step.wasserstein << ", GP "
                                << step.gradient_penalty);
    CHECK(std::abs(step.loss - l0) <= 1e-12 * std::max(1.0, std::abs(l0)));
    auto const r = fd_check(gan.critic().parameters(), grad, loss_d);
    MESSAGE("critic step gradient err " << r.max_error << " (" << r.checked << " checked)");
    CHECK(r.passed(1e-6));
  }
  // Generator.
  {
    nn::Wgan<double, Mem, nn::TanhOp> gan(cfg);
    gan.initialize(5);
    auto const p0 = copy_of(gan.generator().parameters());
    double const lg = gan.generator_step(space, b);
    auto const grad = copy_of(gan.generator().gradients());
    Kokkos::deep_copy(gan.generator().parameters(), p0);
    auto const loss_g = [&]() { return -mean_d(gan, lt::host_values(gan.generate(space, b, 77))); };
    CHECK(std::abs(lg - loss_g()) <= 1e-12);
    auto const r = fd_check(gan.generator().parameters(), grad, loss_g);
    MESSAGE("generator step gradient err " << r.max_error << " (" << r.checked << " checked)");
    CHECK(r.passed(1e-6));
  }
}

// Real data: G clouds of n points x ~ N((1, −0.5), 0.5² I).  The generator
// is the linear node map x = W [u, z] + b of per-node noise u ~ N(0, I) and
// per-graph noise z (no hidden layer: the target x = μ + σ u is in the family;
// the graph-convolution generator is checked by the test above); the critic
// (ELU) judges each cloud on its own kNN graph (WganGraph::knn_of_nodes).
// Adam (β₁ = 0, β₂ = 0.9) at η = 1e-2 for 100 generator steps (Adam moves a
// parameter by at most ~η per step, and the mean must travel 1.1), then
// 1e-3 for 100 steps.  Tolerances: the generated mean and standard deviation
// are estimated from 8 x 384 points (standard errors 0.009 and 0.006); over
// initialisation seeds 1-4 of this setup the worst errors were 0.09 (mean)
// and 0.10 (sd), so 0.12 and 0.15; an untrained generator is off by ~1 in
// the mean.  The critic's Wasserstein estimate must fall below 0.3 x its
// early peak (seen: peaks 4.4-5.3, late values 0.0-0.5).  ~5 s at one thread,
// so run on one configuration only.
using ToyConfigs = std::tuple<std::tuple_element_t<0, lt::FloatFirstConfigs>>;
LENSING_TEST_CASE_TEMPLATE("nn: WGAN-GP learns to shift and scale Gaussian point clouds", Config, ToyConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const G = 32, n = 12;
  double const mx = 1.0, my = -0.5, sd = 0.5;
  std::vector<int> const sizes(G, n);
  unsigned draw = 100;
  auto const make = [&]() {
    auto const c = random_clouds(sizes, draw++, mx, my, sd);
    nn::WganBatch<S, Mem> b;
    b.graph = nn::knn_graph_batch<S, Mem>(sizes, c.px, c.py, 4);
    std::vector<double> v(std::size_t(G) * n * 2);
    for (int i = 0; i < G * n; ++i) {
      v[2 * i] = c.px[i];
      v[2 * i + 1] = c.py[i];
    }
    b.real = matrix<S, Mem>(G * n, 2, v);
    return b;
  };
  nn::WganConfig cfg;
  cfg.node_features = 2;
  cfg.node_noise = 2;
  cfg.graph_noise = 2;
  cfg.generator_conv = {};
  cfg.generator_dense = {};
  cfg.critic_conv = {16};
  cfg.critic_dense = {16};
  cfg.critic_graph = nn::WganGraph::knn_of_nodes;
  cfg.knn = 4;
  cfg.lr_critic = 1e-2;
  cfg.lr_generator = 1e-2;
  cfg.beta1 = 0;
  nn::Wgan<S, Mem, nn::EluOp> gan(cfg);
  gan.initialize(3);
  nn::WganTrainOptions opt;
  opt.steps = 100;
  opt.log_every = 0;
  auto hist = gan.train(space, make, opt);
  gan.generator_optimizer().set_lr(1e-3);
  gan.critic_optimizer().set_lr(1e-3);
  auto const h2 = gan.train(space, make, opt);
  hist.insert(hist.end(), h2.begin(), h2.end());
  REQUIRE(hist.size() == 200);
  CHECK(hist.back().step == 200);
  double w_peak = 0, w_late = 0;
  for (int s = 0; s + 10 <= 100; ++s) {
    double w = 0;
    for (int t = s; t < s + 10; ++t)
      w += hist[t].wasserstein / 10;
    w_peak = std::max(w_peak, w);
  }
  for (int s = 180; s < 200; ++s)
    w_late += hist[s].wasserstein / 20;
  double m0 = 0, m1 = 0, q0 = 0, q1 = 0;
  long cnt = 0;
  for (int r = 0; r < 8; ++r) {
    auto const b = make();
    auto const x = lt::host_values(gan.generate(space, b, 1000 + r));
    for (int i = 0; i < G * n; ++i) {
      m0 += x[2 * i];
      m1 += x[2 * i + 1];
      q0 += x[2 * i] * x[2 * i];
      q1 += x[2 * i + 1] * x[2 * i + 1];
      ++cnt;
    }
  }
  m0 /= cnt;
  m1 /= cnt;
  double const s0 = std::sqrt(q0 / cnt - m0 * m0), s1 = std::sqrt(q1 / cnt - m1 * m1);
  MESSAGE("WGAN-GP toy on " << std::string(Space::name()) << ": W peak " << w_peak << " late " << w_late
                            << "; generated mean (" << m0 << ", " << m1 << ") sd (" << s0 << ", " << s1 << "), target ("
                            << mx << ", " << my << ") sd " << sd);
  CHECK(w_late < 0.3 * w_peak);
  CHECK(std::abs(m0 - mx) < 0.12);
  CHECK(std::abs(m1 - my) < 0.12);
  CHECK(std::abs(s0 - sd) < 0.15);
  CHECK(std::abs(s1 - sd) < 0.15);
}

LENSING_TEST_CASE_TEMPLATE("nn: Wgan save/load round trip and reproducible generation", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  auto const c = random_clouds({9, 9}, 61);
  nn::WganConfig cfg;
  cfg.node_features = 1;  // e.g. an orientation painted on a fixed catalogue graph
  cfg.node_conditions = 2;
  cfg.graph_conditions = 1;
  cfg.node_noise = 1;
  cfg.graph_noise = 3;
  cfg.generator_conv = {8};
  cfg.critic_conv = {8};
  cfg.critic_dense = {4};
  nn::WganBatch<S, Mem> b;
  b.graph = nn::knn_graph_batch<S, Mem>(c.sizes, c.px, c.py, 3);
  b.real = matrix<S, Mem>(18, 1, normals(18, 62));
  std::vector<double> cond;
  for (int i = 0; i < 18; ++i) {
    cond.push_back(c.px[i]);
    cond.push_back(c.py[i]);
  }
  b.node_conditions = matrix<S, Mem>(18, 2, cond);
  b.graph_conditions = matrix<S, Mem>(2, 1, {0.5, -0.5});
  nn::Wgan<S, Mem> a(cfg, nn::LeakyReluOp{0.2});
  a.initialize(1);
  for (int s = 0; s < 3; ++s)
    a.critic_step(space, b);
  a.generator_step(space, b);
  auto const xa = lt::host_values(a.generate(space, b, 7));
  CHECK(lt::host_values(a.generate(space, b, 7)) == xa);  // same seed, same sample
  CHECK(lt::host_values(a.generate(space, b, 8)) != xa);  // another seed, another sample
  std::string const gpath = "test_wgan_" + std::string(Space::name()) + std::to_string(sizeof(S)) + ".gen";
  std::string const cpath = "test_wgan_" + std::string(Space::name()) + std::to_string(sizeof(S)) + ".critic";
  a.save(gpath, cpath);
  nn::Wgan<S, Mem> bgan(cfg, nn::LeakyReluOp{0.2});
  bgan.initialize(2);
  CHECK(lt::host_values(bgan.generate(space, b, 7)) != xa);
  bgan.load(gpath, cpath);
  CHECK(lt::host_values(bgan.generate(space, b, 7)) == xa);
  CHECK(lt::host_values(bgan.critic().parameters()) == lt::host_values(a.critic().parameters()));
  // A network of another architecture refuses the file.
  auto cfg2 = cfg;
  cfg2.critic_dense = {5};
  nn::Wgan<S, Mem> other(cfg2);
  CHECK_THROWS(other.load(gpath, cpath));
  std::remove(gpath.c_str());
  std::remove(cpath.c_str());
}

LENSING_TEST_CASE_TEMPLATE("nn: graph batch and Wgan errors", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  CHECK_THROWS_AS((nn::knn_graph_batch<double, Mem>({3, 0}, {0, 1, 2}, {0, 1, 2}, 2)), std::invalid_argument);
  CHECK_THROWS_AS((nn::knn_graph_batch<double, Mem>({3, 2}, {0, 1, 2}, {0, 1, 2}, 2)), std::invalid_argument);
  CHECK_THROWS_AS((nn::knn_graph_batch<double, Mem>({3}, {0, 1, 2}, {0, 1, 2}, 0)), std::invalid_argument);
  CHECK_THROWS_AS((nn::knn_graph_batch<double, Mem>({}, {}, {}, 2)), std::invalid_argument);
  // A matrix joining graph 0 (nodes 0, 1) to graph 1 (node 2) is not a batch.
  auto const a = nn::make_csr<double, Mem>(3, {0, 1, 1, 2}, {1, 0, 2, 2}, {1, 1, 1, 1});
  auto const msg = lt::error_message([&] { nn::graph_batch_from_csr<double, Mem>({2, 1}, a); });
  CHECK(msg.find("block diagonal") != std::string::npos);
  CHECK_THROWS_AS((nn::graph_batch_from_csr<double, Mem>({2, 2}, a)), std::invalid_argument);
  auto const a_ok = nn::make_csr<double, Mem>(3, {0, 1, 2}, {1, 0, 2}, {1, 1, 1});
  auto const ok = nn::graph_batch_from_csr<double, Mem>({2, 1}, a_ok);
  CHECK(ok.num_graphs() == 2);
  CHECK(lt::host_values(ok.tcol) == std::vector<double>{1, 0, 2});
  // Shapes.
  auto const batch = nn::knn_graph_batch<double, Mem>({4, 5}, normals(9, 1), normals(9, 2), 2);
  lensing::View2D<double, Mem> y("y", 3, 2), x("x", 9, 2);
  CHECK_THROWS_AS(nn::graph_pool(space, batch, x, y), std::invalid_argument);
  nn::GraphNet<double, Mem> net(critic_spec(3));
  CHECK_THROWS_AS(net.forward(space, batch, x), std::invalid_argument);  // 2 features, expects 3
  lensing::View2D<double, Mem> x3("x3", 9, 3), dx("dx", 9, 3), d("d", 2, 1);
  CHECK_THROWS_AS(net.backward(space, batch, x3, d, dx, nn::ParamGrad::overwrite),
                  std::invalid_argument);  // no forward
  net.forward(space, batch, x3);
  CHECK_THROWS_AS(net.backward_tangent(space, batch, x3, x3, {}, d, dx, {}, nn::ParamGrad::none),
                  std::invalid_argument);  // no tangent pass
  auto spec = critic_spec(3);
  spec.conv_widths = {0};
  CHECK_THROWS_AS((nn::GraphNet<double, Mem>{spec}), std::invalid_argument);
  nn::GraphNet<double, Mem> gen([] {
    nn::GraphNetSpec s;
    s.in_features = 3;
    s.conv_widths = {4};
    s.out_features = 2;
    return s;
  }());
  nn::GradientPenalty<double, Mem> gp(2);
  CHECK_THROWS_AS(gp.evaluate(space, gen, batch, x3, nn::ParamGrad::none), std::invalid_argument);  // not a critic
  nn::GradientPenalty<double, Mem> gp4(4);
  CHECK_THROWS_AS(gp4.evaluate(space, net, batch, x3, nn::ParamGrad::none), std::invalid_argument);
  CHECK_THROWS_AS((nn::GradientPenalty<double, Mem>(0)), std::invalid_argument);
  // Configurations.
  nn::WganConfig cfg;
  cfg.node_features = 1;
  cfg.critic_graph = nn::WganGraph::knn_of_nodes;
  CHECK_THROWS_AS((nn::Wgan<double, Mem>{cfg}), std::invalid_argument);
  cfg = nn::WganConfig{};
  cfg.node_noise = 1;
  cfg.generator_graph = nn::WganGraph::knn_of_nodes;
  CHECK_THROWS_AS((nn::Wgan<double, Mem>{cfg}), std::invalid_argument);
  cfg = nn::WganConfig{};
  cfg.n_critic = 0;
  CHECK_THROWS_AS((nn::Wgan<double, Mem>{cfg}), std::invalid_argument);
  // Batches.
  cfg = nn::WganConfig{};
  cfg.node_conditions = 1;
  nn::Wgan<double, Mem> gan(cfg);
  nn::WganBatch<double, Mem> b{batch, x, {}, {}};
  auto const m = lt::error_message([&] { gan.critic_step(space, b); });
  CHECK(m.find("node_conditions") != std::string::npos);
  b.node_conditions = lensing::View2D<double, Mem>("c", 9, 1);
  b.real = lensing::View2D<double, Mem>("r", 8, 2);
  CHECK_THROWS_AS(gan.critic_step(space, b), std::invalid_argument);
  nn::WganTrainOptions opt;
  opt.checkpoint_every = 1;
  CHECK_THROWS_AS(gan.train(
                      space, [&] { return b; }, opt),
                  std::invalid_argument);
}
