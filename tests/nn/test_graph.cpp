// Graph convolution: equality with a dense-adjacency computation, Kipf &
// Welling's normalisation, gradients against central differences, errors.
#include <lensing/nn/graph_conv.hpp>

#include <lensing_test.hpp>

#include "gradient_check.hpp"

#include <random>
#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {

// A random directed weighted graph of n nodes, about deg entries per row, as COO.
struct Coo {
  std::vector<int> rows, cols;
  std::vector<double> vals;
};
inline Coo random_graph(int n, int deg, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd;
  Coo c;
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < deg; ++k) {
      c.rows.push_back(i);
      c.cols.push_back(int(rng() % n));
      c.vals.push_back(nd(rng));
    }
  return c;
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("nn: GraphConv equals the dense-adjacency computation", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  double const tol = std::is_same<S, float>::value ? 1e-5 : 1e-13;
  int const n = 37, fi = 5, fo = 4;
  auto const coo = random_graph(n, 4, 3);  // includes duplicates, which make_csr sums
  std::vector<double> dense(n * n, 0.0);
  for (std::size_t k = 0; k < coo.rows.size(); ++k)
    dense[coo.rows[k] * n + coo.cols[k]] += coo.vals[k];
  auto const a = nn::make_csr<S, Mem>(n, coo.rows, coo.cols, coo.vals);
  for (bool self : {true, false}) {
    nn::GraphConv<S, Mem> gc(a, fi, fo, self);
    gc.initialize(4);
    lt::fill_normal(Kokkos::subview(gc.parameters(), Kokkos::make_pair(gc.num_params() - fo, gc.num_params())), 5);
    nn::Tensor<S, Mem> h("h", n, fi, 1, 1), y("y", n, fo, 1, 1);
    lt::fill_normal(h, 6);
    gc.forward(space, h, y);
    space.fence();
    auto const hv = lt::host_values(h), yv = lt::host_values(y), p = lt::host_values(gc.parameters());
    long const nw = long(fo) * fi;
    double const* w0 = p.data();
    double const* w1 = p.data() + (self ? nw : 0);
    double const* b = w1 + nw;
    double err = 0, scale = 0;
    for (int i = 0; i < n; ++i)
      for (int o = 0; o < fo; ++o) {
        double r = b[o];
        for (int f = 0; f < fi; ++f) {
          if (self) r += w0[o * fi + f] * hv[i * fi + f];
          for (int j = 0; j < n; ++j)
            r += dense[i * n + j] * w1[o * fi + f] * hv[j * fi + f];
        }
        err = std::max(err, std::abs(yv[i * fo + o] - r));
        scale = std::max(scale, std::abs(r));
      }
    CHECK(err <= tol * scale);
  }
}

LENSING_TEST_CASE_TEMPLATE("nn: GraphConv gradients and Kipf-Welling normalisation", Config, lt::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  int const n = 23;
  auto const coo = random_graph(n, 3, 8);
  auto const a = nn::make_csr<double, Mem>(n, coo.rows, coo.cols, coo.vals);  // not symmetric: exercises Aᵀ
  for (bool self : {true, false}) {
    nn::GraphConv<double, Mem> gc(a, 3, 4, self);
    gc.initialize(2);
    lt::fill_normal(gc.parameters(), 3, 0.5);
    auto const r = lt::check_layer_gradients(space, gc, nn::Shape4{n, 3, 1, 1}, 5, 1e-5, 80);
    MESSAGE("GraphConv self_weight=" << self << " on " << std::string(Space::name()) << ": input grad err "
                                     << r.input_error << ", param grad err " << r.param_error);
    CHECK(r.input_error < 1e-7);
    CHECK(r.param_error < 1e-7);
  }
  // Â of a path 0-1-2: degrees with self-loops 2, 3, 2.
  auto const ah = nn::gcn_normalized_adjacency<double, Kokkos::HostSpace>(3, {{0, 1}, {1, 2}, {2, 1}, {1, 1}});
  std::vector<int> const rp = {0, 2, 5, 7}, col = {0, 1, 0, 1, 2, 1, 2};
  std::vector<double> const val = {
      0.5, 1 / std::sqrt(6.0), 1 / std::sqrt(6.0), 1 / 3.0, 1 / std::sqrt(6.0), 1 / std::sqrt(6.0), 0.5};
  REQUIRE(ah.nnz() == 7);
  for (int i = 0; i < 4; ++i)
    CHECK(ah.row_ptr(i) == rp[i]);
  for (int k = 0; k < 7; ++k) {
    CHECK(ah.col(k) == col[k]);
    CHECK(ah.val(k) == doctest::Approx(val[k]).epsilon(1e-15));
  }
  // k-nearest neighbours of points on a line 0, 1, 3, 7: k = 1 -> 0-1, 1-0, 3-1, 7-3.
  auto const e = nn::knn_graph_edges({0, 1, 3, 7}, {0, 0, 0, 0}, 1);
  std::vector<std::pair<int, int>> const want = {{0, 1}, {1, 0}, {2, 1}, {3, 2}};
  CHECK(e == want);
  CHECK(nn::knn_graph_edges({0, 1, 3, 7}, {0, 0, 0, 0}, 3).size() == 12);
  CHECK_THROWS_AS(nn::knn_graph_edges({0, 1}, {0, 0}, 2), std::invalid_argument);
  // Errors.
  CHECK_THROWS_AS((nn::make_csr<double, Mem>(3, {0, 3}, {0, 0}, {1, 1})), std::invalid_argument);
  CHECK_THROWS_AS((nn::make_csr<double, Mem>(3, {0}, {0, 1}, {1})), std::invalid_argument);
  CHECK_THROWS_AS((nn::gcn_normalized_adjacency<double, Mem>(3, {{0, 5}})), std::invalid_argument);
  nn::GraphConv<double, Mem> gc(a, 3, 4);
  CHECK_THROWS_AS(gc.output_shape({n + 1, 3, 1, 1}), std::invalid_argument);
  CHECK_THROWS_AS(gc.output_shape({n, 2, 1, 1}), std::invalid_argument);
}
