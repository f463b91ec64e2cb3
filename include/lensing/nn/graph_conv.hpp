#ifndef LENSING_NN_GRAPH_CONV_HPP
#define LENSING_NN_GRAPH_CONV_HPP

#include <lensing/core/math.hpp>
#include <lensing/nn/gemm.hpp>
#include <lensing/nn/layer.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

namespace lensing {
namespace nn {

//----------------------------------------------------------------------------
// Sparse adjacency.

/// Square sparse matrix in compressed-sparse-row form: row i holds the
/// entries k in [row_ptr(i), row_ptr(i+1)), column col(k), value val(k);
/// columns sorted within a row.  Built on the host by `make_csr` or
/// `gcn_normalized_adjacency` and copied to MemorySpace.
template <class Scalar, class MemorySpace>
struct CsrMatrix {
  int n = 0;
  View1D<int, MemorySpace> row_ptr, col;
  View1D<Scalar, MemorySpace> val;
  long nnz() const { return long(col.extent(0)); }
};

/// CSR matrix of size n from COO triplets (duplicates summed).  Throws
/// std::invalid_argument for indices outside [0, n), sizes that differ or
/// non-finite values.
template <class Scalar, class MemorySpace>
CsrMatrix<Scalar, MemorySpace> make_csr(int n, std::vector<int> const& rows, std::vector<int> const& cols,
                                        std::vector<double> const& vals) {
  char const* where = "lensing::nn::make_csr";
  check_count(n, 1, where, "n");
  check_argument(rows.size() == cols.size() && rows.size() == vals.size(), where,
                 "rows, cols and vals must have the same length");
  std::vector<std::size_t> order(rows.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  for (std::size_t k = 0; k < rows.size(); ++k) {
    check_argument(rows[k] >= 0 && rows[k] < n && cols[k] >= 0 && cols[k] < n, where,
                   "entry " + std::to_string(k) + " (" + std::to_string(rows[k]) + ", " + std::to_string(cols[k]) +
                       ") is outside a " + std::to_string(n) + "x" + std::to_string(n) + " matrix");
    check_finite(vals[k], where, "value");
  }
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return rows[a] != rows[b] ? rows[a] < rows[b] : cols[a] < cols[b]; });
  std::vector<int> rp(n + 1, 0), cc;
  std::vector<Scalar> vv;
  for (std::size_t idx = 0; idx < order.size(); ++idx) {
    std::size_t const k = order[idx];
    if (idx > 0 && rows[order[idx - 1]] == rows[k] && cols[order[idx - 1]] == cols[k]) {
      vv.back() += Scalar(vals[k]);
      continue;
    }
    cc.push_back(cols[k]);
    vv.push_back(Scalar(vals[k]));
    ++rp[rows[k] + 1];
  }
  for (int i = 0; i < n; ++i)
    rp[i + 1] += rp[i];
  CsrMatrix<Scalar, MemorySpace> m;
  m.n = n;
  m.row_ptr = View1D<int, MemorySpace>("lensing::nn::CsrMatrix::row_ptr", n + 1);
  m.col = View1D<int, MemorySpace>("lensing::nn::CsrMatrix::col", cc.size());
  m.val = View1D<Scalar, MemorySpace>("lensing::nn::CsrMatrix::val", vv.size());
  auto copy = [](auto const& dst, auto const& src) {
    auto h = Kokkos::create_mirror_view(dst);
    for (std::size_t i = 0; i < src.size(); ++i)
      h(i) = src[i];
    Kokkos::deep_copy(dst, h);
  };
  copy(m.row_ptr, rp);
  copy(m.col, cc);
  copy(m.val, vv);
  return m;
}

/// Kipf & Welling's propagation matrix Â = D̃^{-1/2}(A + I)D̃^{-1/2} of an
/// undirected graph of n nodes given by its edges (i, j) (each edge once or
/// twice, self-loops ignored; A symmetric with unit weights), D̃ the degrees of A + I.
template <class Scalar, class MemorySpace>
CsrMatrix<Scalar, MemorySpace> gcn_normalized_adjacency(int n, std::vector<std::pair<int, int>> const& edges) {
  char const* where = "lensing::nn::gcn_normalized_adjacency";
  check_count(n, 1, where, "n");
  std::vector<std::vector<int>> nb(n);
  for (auto const& e : edges) {
    check_argument(e.first >= 0 && e.first < n && e.second >= 0 && e.second < n, where,
                   "edge (" + std::to_string(e.first) + ", " + std::to_string(e.second) + ") has a node outside [0, " +
                       std::to_string(n) + ")");
    if (e.first == e.second) continue;
    nb[e.first].push_back(e.second);
    nb[e.second].push_back(e.first);
  }
  std::vector<int> rows, cols;
  std::vector<double> deg(n), vals;
  for (int i = 0; i < n; ++i) {
    nb[i].push_back(i);
    std::sort(nb[i].begin(), nb[i].end());
    nb[i].erase(std::unique(nb[i].begin(), nb[i].end()), nb[i].end());
    deg[i] = double(nb[i].size());
  }
  for (int i = 0; i < n; ++i)
    for (int j : nb[i]) {
      rows.push_back(i);
      cols.push_back(j);
      vals.push_back(1.0 / std::sqrt(deg[i] * deg[j]));
    }
  return make_csr<Scalar, MemorySpace>(n, rows, cols, vals);
}

/// Edges (i, j) joining every point i of a 2-D point set to its k nearest
/// other points (Euclidean; ties broken by index), for
/// `gcn_normalized_adjacency` (which symmetrises them).  Host, exact,
/// O(n² log k) — fine for the 10⁴-point graphs of the benchmarks.
inline std::vector<std::pair<int, int>> knn_graph_edges(std::vector<double> const& x, std::vector<double> const& y,
                                                        int k) {
  char const* where = "lensing::nn::knn_graph_edges";
  check_argument(x.size() == y.size(), where, "x and y must have the same length");
  int const n = int(x.size());
  check_argument(k >= 1 && k < n, where, "k must be in [1, n)");
  for (int i = 0; i < n; ++i) {
    check_finite(x[i], where, "x");
    check_finite(y[i], where, "y");
  }
  std::vector<std::pair<int, int>> edges;
  edges.reserve(std::size_t(n) * k);
  std::vector<std::pair<double, int>> d(n - 1);
  for (int i = 0; i < n; ++i) {
    int m = 0;
    for (int j = 0; j < n; ++j)
      if (j != i) d[m++] = {(x[j] - x[i]) * (x[j] - x[i]) + (y[j] - y[i]) * (y[j] - y[i]), j};
    std::nth_element(d.begin(), d.begin() + (k - 1), d.end());
    for (int q = 0; q < k; ++q)
      edges.emplace_back(i, d[q].second);
  }
  return edges;
}

namespace detail {
template <class Scalar, class MemorySpace>
CsrMatrix<Scalar, MemorySpace> transpose(CsrMatrix<Scalar, MemorySpace> const& a) {
  auto rp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a.row_ptr);
  auto c = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a.col);
  auto v = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a.val);
  std::vector<int> rows, cols;
  std::vector<double> vals;
  for (int i = 0; i < a.n; ++i)
    for (int k = rp(i); k < rp(i + 1); ++k) {
      rows.push_back(c(k));
      cols.push_back(i);
      vals.push_back(double(v(k)));
    }
  return make_csr<Scalar, MemorySpace>(a.n, rows, cols, vals);
}
}  // namespace detail

//----------------------------------------------------------------------------
// Layer.

/// Graph convolution over a fixed sparse adjacency (Kipf & Welling 2017,
/// arXiv:1609.02907, with an optional separate self weight as in the
/// lensing GCN of the issue):
///
///   y_i = b + W₀ h_i + Σ_j a_ij W₁ h_j,   i.e.  Y = H W₀ᵀ + A H W₁ᵀ + 1 bᵀ,
///
/// with A the CSR adjacency (`gcn_normalized_adjacency` gives Kipf & Welling's
/// Â, for which self_weight = false is their layer Y = Â H W₁ᵀ + b).  Nodes are
/// the batch dimension: input (N_nodes, F_in, 1, 1) (any (N, C, H, W) with
/// C·H·W = F_in), output (N_nodes, F_out, 1, 1).  Parameters, flat: [W₀
/// (F_out x F_in) if self_weight], W₁ (F_out x F_in), b (F_out).  Backward:
/// dT = Aᵀ dY (the transpose is built once in the constructor), dW₁ = dTᵀ H,
/// dW₀ = dYᵀ H, db = Σ dY, dH = dY W₀ + dT W₁.  Initialised Xavier-uniform.
template <class Scalar, class MemorySpace>
class GraphConv : public LayerBase<Scalar, MemorySpace> {
  using base = LayerBase<Scalar, MemorySpace>;

 public:
  using typename base::tensor_type;
  using typename base::vector_type;
  using matrix_type = CsrMatrix<Scalar, MemorySpace>;

  GraphConv(matrix_type const& adjacency, int in_features, int out_features, bool self_weight = true)
      : a_(adjacency), at_(detail::transpose(adjacency)), fin_(in_features), fout_(out_features), self_(self_weight) {
    char const* where = "lensing::nn::GraphConv";
    check_count(adjacency.n, 1, where, "adjacency size");
    check_count(in_features, 1, where, "in_features");
    check_count(out_features, 1, where, "out_features");
    long const nw = long(fout_) * fin_;
    this->params_ = vector_type("lensing::nn::GraphConv::params", (self_ ? 2 : 1) * nw + fout_);
    t_ = vector_type("lensing::nn::GraphConv::t", long(a_.n) * fout_);
    dt_ = vector_type("lensing::nn::GraphConv::dt", long(a_.n) * fout_);
  }
  int num_nodes() const { return a_.n; }

  Shape4 output_shape(Shape4 const& in) const {
    char const* where = "lensing::nn::GraphConv";
    check_valid_shape(in, where);
    check_argument(
        in.n == a_.n, where,
        "input " + in.str() + " has " + std::to_string(in.n) + " nodes, the adjacency " + std::to_string(a_.n));
    check_argument(in.per_sample() == fin_, where,
                   "input " + in.str() + " has " + std::to_string(in.per_sample()) + " features per node, expected " +
                       std::to_string(fin_));
    return Shape4{in.n, fout_, 1, 1};
  }

  void initialize(std::uint64_t seed) {
    long const nw = long(fout_) * fin_, nmat = self_ ? 2 : 1;
    for (long m = 0; m < nmat; ++m)
      nn::initialize(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(m * nw, (m + 1) * nw))),
                     Init::xavier_uniform, fin_, fout_, seed + std::uint64_t(m));
    Kokkos::deep_copy(Kokkos::subview(this->params_, Kokkos::make_pair(nmat * nw, nmat * nw + fout_)), Scalar(0));
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::GraphConv::forward: the tensors are not accessible from this execution space");
    detail::check_forward(*this, x, y, "lensing::nn::GraphConv::forward");
    long const n = a_.n, fi = fin_, fo = fout_, nw = fo * fi;
    Scalar const* p = this->params_.data();
    Scalar const* w1 = p + (self_ ? nw : 0);
    Scalar const* b = w1 + nw;
    gemm(space, false, true, n, fo, fi, Scalar(1), x.data(), fi, w1, fi, Scalar(0), t_.data(), fo);  // T = H W1ᵀ
    if (self_) {
      gemm(space, false, true, n, fo, fi, Scalar(1), x.data(), fi, p, fi, Scalar(0), y.data(), fo);  // Y = H W0ᵀ
    }
    spmm(space, a_, t_.data(), b, self_, y.data(), "lensing::nn::GraphConv::forward");  // Y (+)= A T + b
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::GraphConv::backward: the tensors are not accessible from this execution space");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::GraphConv::backward");
    long const n = a_.n, fi = fin_, fo = fout_, nw = fo * fi;
    Scalar const* p = this->params_.data();
    Scalar const* w1 = p + (self_ ? nw : 0);
    Scalar* g = dparams.data();
    Scalar* gw1 = g + (self_ ? nw : 0);
    Scalar* gb = gw1 + nw;
    Scalar const* dyp = dy.data();
    spmm(space, at_, dyp, nullptr, false, dt_.data(), "lensing::nn::GraphConv::backward");  // dT = Aᵀ dY
    gemm(space, true, false, fo, fi, n, Scalar(1), dt_.data(), fo, x.data(), fi, Scalar(0), gw1, fi);
    if (self_) gemm(space, true, false, fo, fi, n, Scalar(1), dyp, fo, x.data(), fi, Scalar(0), g, fi);
    Kokkos::parallel_for(
        "lensing::nn::GraphConv::bias_grad", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, fo),
        KOKKOS_LAMBDA(long o) {
          Scalar s = Scalar(0);
          for (long i = 0; i < n; ++i)
            s += dyp[i * fo + o];
          gb[o] = s;
        });
    if (dx.data() == nullptr) return;
    gemm(space, false, false, n, fi, fo, Scalar(1), dt_.data(), fo, w1, fi, Scalar(0), dx.data(), fi);
    if (self_) gemm(space, false, false, n, fi, fo, Scalar(1), dyp, fo, p, fi, Scalar(1), dx.data(), fi);
  }

  // Implementation, public for nvcc: out = (accumulate ? out : 0) + M t (+ bias), t and out (n x fo) row-major.
  template <class ExecutionSpace>
  void spmm(ExecutionSpace const& space, matrix_type const& m, Scalar const* t, Scalar const* bias, bool accumulate,
            Scalar* out, char const* name) const {
    long const fo = fout_;
    int const* rp = m.row_ptr.data();
    int const* col = m.col.data();
    Scalar const* val = m.val.data();
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(m.n)), KOKKOS_LAMBDA(long i) {
          Scalar* o = out + i * fo;
          if (!accumulate)
            for (long f = 0; f < fo; ++f)
              o[f] = Scalar(0);
          if (bias != nullptr)
            for (long f = 0; f < fo; ++f)
              o[f] += bias[f];
          for (int k = rp[i]; k < rp[i + 1]; ++k) {
            Scalar const a = val[k];
            Scalar const* tr = t + long(col[k]) * fo;
            for (long f = 0; f < fo; ++f)
              o[f] += a * tr[f];
          }
        });
  }

 private:
  matrix_type a_, at_;
  int fin_, fout_;
  bool self_;
  vector_type t_, dt_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_GRAPH_CONV_HPP
