// Directional graph convolution: equality with a dense computation of
// y_i = b + W0 h_i + Σ_m Σ_j max(0, d̂_m·u_ij) a_ij W_m h_j, a hand-computed
// case, gradients (inputs, weights and directions) against central
// differences, and errors.
#include <lensing/nn/graph_conv_directional.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {

// Random points in the unit square, a directed kNN-like graph with random
// weights (duplicates and self-loops included) as COO.
struct PointGraph {
  std::vector<double> px, py;
  std::vector<int> rows, cols;
  std::vector<double> vals;
};
inline PointGraph random_point_graph(int n, int deg, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> ud;
  std::normal_distribution<double> nd;
  PointGraph g;
  for (int i = 0; i < n; ++i) {
    g.px.push_back(ud(rng));
    g.py.push_back(ud(rng));
  }
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < deg; ++k) {
      g.rows.push_back(i);
      g.cols.push_back(k == 0 ? i : int(rng() % n));  // one self-loop per row: q = 0 there
      g.vals.push_back(nd(rng));
    }
  return g;
}

// Dense reference in double from the host parameters.
inline std::vector<double> dense_reference(PointGraph const& g, int n, int fi, int fo, int m,
                                           std::vector<double> const& p, std::vector<double> const& h) {
  std::vector<double> a(std::size_t(n) * n, 0.0);
  for (std::size_t k = 0; k < g.rows.size(); ++k)
    a[g.rows[k] * n + g.cols[k]] += g.vals[k];
  long const nw = long(fo) * fi;
  double const* w0 = p.data();
  double const* wm = p.data() + nw;
  double const* d = p.data() + (1 + m) * nw;
  double const* b = d + 2 * m;
  std::vector<double> y(std::size_t(n) * fo);
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < fo; ++o) {
      double r = b[o];
      for (int f = 0; f < fi; ++f)
        r += w0[o * fi + f] * h[i * fi + f];
      for (int j = 0; j < n; ++j) {
        if (a[i * n + j] == 0.0) continue;
        double const ex = g.px[j] - g.px[i], ey = g.py[j] - g.py[i], len = std::hypot(ex, ey);
        if (len == 0.0) continue;
        for (int q = 0; q < m; ++q) {
          double const dl = std::hypot(d[2 * q], d[2 * q + 1]);
          double const c = (d[2 * q] * ex + d[2 * q + 1] * ey) / (dl * len);
          if (c <= 0) continue;
          for (int f = 0; f < fi; ++f)
            r += c * a[i * n + j] * wm[(q * fo + o) * fi + f] * h[j * fi + f];
        }
      }
      y[i * fo + o] = r;
    }
  return y;
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("nn: DirectionalGraphConv equals the dense computation", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  double const tol = std::is_same<S, float>::value ? 1e-5 : 1e-13;
  int const n = 31, fi = 4, fo = 3, m = 3;
  auto const g = random_point_graph(n, 5, 3);
  auto const a = nn::make_csr<S, Mem>(n, g.rows, g.cols, g.vals);
  nn::DirectionalGraphConv<S, Mem> gc(a, g.px, g.py, fi, fo, m);
  CHECK(gc.num_params() == (1 + m) * fo * fi + 2 * m + fo);
  gc.initialize(4);
  // Default directions: angles 0, 2π/3, 4π/3.
  auto const p0 = lt::host_values(gc.parameters());
  long const off = gc.directions_offset();
  CHECK(p0[off] == doctest::Approx(1.0));
  CHECK(p0[off + 3] == doctest::Approx(std::sqrt(3.0) / 2).epsilon(1e-6));
  // Random directions of various lengths and a random bias.
  lt::fill_normal(Kokkos::subview(gc.parameters(), Kokkos::make_pair(off, gc.num_params())), 5);
  nn::Tensor<S, Mem> h("h", n, fi, 1, 1), y("y", n, fo, 1, 1);
  lt::fill_normal(h, 6);
  gc.forward(space, h, y);
  space.fence();
  auto const want = dense_reference(g, n, fi, fo, m, lt::host_values(gc.parameters()), lt::host_values(h));
  auto const yv = lt::host_values(y);
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < yv.size(); ++i) {
    err = std::max(err, std::abs(yv[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  CHECK(err <= tol * scale);
}

LENSING_TEST_CASE_TEMPLATE("nn: DirectionalGraphConv hand-computed case and errors", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  double const tol = std::is_same<S, float>::value ? 1e-6 : 1e-14;
  // Node 0 at the origin, node 1 at (2, 0) (east), node 2 at (0, 3) (north); edges 0->1, 0->2 with
  // weight 1, scalar features h = (0, 1, 10), W0 = 0, one filter per direction: W_1 = 1 (d_1 east),
  // W_2 = 100 (d_2 = (1, 1), 45°), b = 0.5.  y_0 = 0.5 + 1·(1·1 + 0·10) + 100·(cos45°·1 + cos45°·10);
  // nodes 1, 2 have no edges: y = b + W0 h = 0.5.
  auto const a = nn::make_csr<S, Mem>(3, {0, 0}, {1, 2}, {1.0, 1.0});
  nn::DirectionalGraphConv<S, Mem> gc(a, {0, 2, 0}, {0, 0, 3}, 1, 1, 2);
  lt::set_values(gc.parameters(), {0, 1, 100, 1, 0, 1, 1, 0.5});
  nn::Tensor<S, Mem> h("h", 3, 1, 1, 1), y("y", 3, 1, 1, 1);
  lt::set_values(h, {0, 1, 10});
  gc.forward(space, h, y);
  space.fence();
  auto const v = lt::host_values(y);
  CHECK(v[0] == doctest::Approx(0.5 + 1 + 100 * 11 / std::sqrt(2.0)).epsilon(tol));
  CHECK(v[1] == doctest::Approx(0.5).epsilon(tol));
  CHECK(v[2] == doctest::Approx(0.5).epsilon(tol));
  // A zero direction contributes nothing (no NaN): d_2 = 0 leaves 0.5 + 1.
  lt::set_values(gc.parameters(), {0, 1, 100, 1, 0, 0, 0, 0.5});
  gc.forward(space, h, y);
  space.fence();
  CHECK(lt::host_values(y)[0] == doctest::Approx(1.5).epsilon(tol));
  // Errors.
  using G = nn::DirectionalGraphConv<S, Mem>;
  std::vector<double> const x3 = {0, 1, 2}, x2 = {0, 1};
  CHECK_THROWS_AS(G(a, x2, x3, 1, 1, 2), std::invalid_argument);
  CHECK_THROWS_AS(G(a, x3, x3, 1, 1, 0), std::invalid_argument);
  CHECK_THROWS_AS(G(a, x3, x3, 0, 1, 1), std::invalid_argument);
  CHECK_THROWS_AS(G(a, {0, std::nan(""), 2}, x3, 1, 1, 1), std::invalid_argument);
  std::string msg;
  try {
    gc.output_shape({4, 1, 1, 1});
  } catch (std::invalid_argument const& e) {
    msg = e.what();
  }
  CHECK(msg.find("lensing::nn::DirectionalGraphConv: input (4, 1, 1, 1) has 4 nodes, the adjacency 3") == 0);
  CHECK_THROWS_AS(gc.output_shape({3, 2, 1, 1}), std::invalid_argument);
  nn::Tensor<S, Mem> ybad("ybad", 3, 2, 1, 1);
  CHECK_THROWS_AS(gc.forward(space, h, ybad), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("nn: DirectionalGraphConv gradients", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  int const n = 19, fi = 3, fo = 2, m = 3;
  auto const g = random_point_graph(n, 4, 8);
  auto const a = nn::make_csr<double, Mem>(n, g.rows, g.cols, g.vals);  // not symmetric: exercises the transpose
  nn::DirectionalGraphConv<double, Mem> gc(a, g.px, g.py, fi, fo, m);
  gc.initialize(2);
  lt::fill_normal(gc.parameters(), 3, 0.7);  // random directions too
  REQUIRE(gc.num_params() <= 80);            // every parameter, directions included, is checked
  auto const r = lt::check_layer_gradients(space, gc, nn::Shape4{n, fi, 1, 1}, 5, 1e-6, 80);
  MESSAGE("DirectionalGraphConv on " << std::string(Space::name()) << ": input grad err " << r.input_error
                                     << ", param grad err " << r.param_error << " (" << r.params << " parameters)");
  CHECK(r.params == gc.num_params());
  CHECK(r.input_error < 1e-7);
  CHECK(r.param_error < 1e-7);
  // The direction gradient alone, against a dedicated difference with a larger step.
  long const off = gc.directions_offset();
  nn::Tensor<double, Mem> h("h", n, fi, 1, 1), y("y", n, fo, 1, 1), dy("dy", n, fo, 1, 1), dx("dx", n, fi, 1, 1);
  lt::fill_normal(h, 11);
  lt::fill_normal(dy, 12);
  nn::ParamVector<double, Mem> grad("grad", gc.num_params());
  gc.forward(space, h, y);
  gc.backward(space, h, y, dy, dx, grad);
  space.fence();
  auto const gv = lt::host_values(grad);
  double dir_norm = 0;
  for (int k = 0; k < 2 * m; ++k)
    dir_norm += std::abs(gv[off + k]);
  CHECK(dir_norm > 1e-3);  // the directions do get a gradient
}
