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
/// The computation GraphConv and DirectionalGraphConv share, over a fixed CSR
/// adjacency A with M neighbour filters W_1 … W_M and optional per-edge,
/// per-filter weights q (q_m(i, j) of DirectionalGraphConv; all ones when
/// q == nullptr, GraphConv):
///
///   Y = [H W₀ᵀ] + 1 bᵀ + Σ_m (A ∘ Q_m) T_m,   T = H [W_1; …; W_M]ᵀ  (n x M·F_out),
///
/// with the backward dT_j,m = Σ_i q_m(i,j) a_ij dy_i (over the transpose,
/// built once here as the edge index of each entry of A by rows j),
/// dW_m = dT_mᵀ H, dW₀ = dYᵀ H, db = Σ dY, dH = dY W₀ + Σ_m dT_m W_m.
/// Parameter layout: [W₀ if self] W_1 … W_M, `extra` layer-specific
/// parameters (the directions of DirectionalGraphConv), b (F_out).
template <class Scalar, class MemorySpace>
struct GraphConvCore {
  using vector_type = ParamVector<Scalar, MemorySpace>;
  CsrMatrix<Scalar, MemorySpace> a;
  View1D<int, MemorySpace> trow_ptr, tcol, tedge;  // row j of Aᵀ: nodes i and the edge k = (i, j) of A
  int fin, fout, nf;                               // F_in, F_out, M
  bool self;
  long extra;
  vector_type t, dt;  // T and dT (n x M·F_out)

  GraphConvCore(CsrMatrix<Scalar, MemorySpace> const& adjacency, int in_features, int out_features, int num_filters,
                bool self_weight, long extra_params, char const* where)
      : a(adjacency), fin(in_features), fout(out_features), nf(num_filters), self(self_weight), extra(extra_params) {
    check_count(adjacency.n, 1, where, "adjacency size");
    check_count(in_features, 1, where, "in_features");
    check_count(out_features, 1, where, "out_features");
  }

  /// Builds the transpose and the buffers; call after the layer's own checks.
  void allocate(char const* t_name, char const* dt_name) {
    int const n = a.n;
    long const nnz = a.nnz();
    auto rp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a.row_ptr);
    auto col = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a.col);
    // Counting sort by column; rows i ascend within each row j of the transpose.
    std::vector<int> trp(n + 1, 0), tc(nnz), te(nnz);
    for (long k = 0; k < nnz; ++k)
      ++trp[col(k) + 1];
    for (int j = 0; j < n; ++j)
      trp[j + 1] += trp[j];
    std::vector<int> fill(trp.begin(), trp.end() - 1);
    for (int i = 0; i < n; ++i)
      for (int k = rp(i); k < rp(i + 1); ++k) {
        int const at = fill[col(k)]++;
        tc[at] = i;
        te[at] = k;
      }
    trow_ptr = View1D<int, MemorySpace>("lensing::nn::GraphConv::trow_ptr", n + 1);
    tcol = View1D<int, MemorySpace>("lensing::nn::GraphConv::tcol", nnz);
    tedge = View1D<int, MemorySpace>("lensing::nn::GraphConv::tedge", nnz);
    copy_to(trow_ptr, trp);
    copy_to(tcol, tc);
    copy_to(tedge, te);
    t = vector_type(std::string(t_name), long(n) * nf * fout);
    dt = vector_type(std::string(dt_name), long(n) * nf * fout);
  }

  long matrix_size() const { return long(fout) * fin; }
  long num_matrices() const { return (self ? 1 : 0) + long(nf); }
  /// Offset of W_1 and of b in the flat parameters; their number.
  long filters_offset() const { return self ? matrix_size() : 0; }
  long bias_offset() const { return num_matrices() * matrix_size() + extra; }
  long num_params() const { return bias_offset() + fout; }

  Shape4 output_shape(Shape4 const& in, char const* where) const {
    check_valid_shape(in, where);
    check_argument(
        in.n == a.n, where,
        "input " + in.str() + " has " + std::to_string(in.n) + " nodes, the adjacency " + std::to_string(a.n));
    check_argument(in.per_sample() == fin, where,
                   "input " + in.str() + " has " + std::to_string(in.per_sample()) + " features per node, expected " +
                       std::to_string(fin));
    return Shape4{in.n, fout, 1, 1};
  }

  /// Xavier-uniform weight matrices (matrix m with seed + m), bias zero; leaves the extra parameters.
  void initialize(vector_type const& params, std::uint64_t seed) const {
    long const nw = matrix_size(), nmat = num_matrices(), ob = bias_offset();
    for (long m = 0; m < nmat; ++m)
      nn::initialize(vector_type(Kokkos::subview(params, Kokkos::make_pair(m * nw, (m + 1) * nw))),
                     Init::xavier_uniform, fin, fout, seed + std::uint64_t(m));
    Kokkos::deep_copy(Kokkos::subview(params, Kokkos::make_pair(ob, ob + fout)), Scalar(0));
  }

  /// y = [H W₀ᵀ] + b + Σ_m (A ∘ Q_m) T_m, storing T; q (nnz x M) may be nullptr (all ones).
  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, Scalar const* p, Scalar const* x, Scalar* y, Scalar const* q,
               char const* name) const {
    long const n = a.n, fi = fin, fo = fout, nd = nf, wide = nd * fo;
    bool const accumulate = self;
    Scalar const* b = p + bias_offset();
    Scalar* tp = t.data();
    gemm(space, false, true, n, wide, fi, Scalar(1), x, fi, p + filters_offset(), fi, Scalar(0), tp, wide);  // T
    if (self) gemm(space, false, true, n, fo, fi, Scalar(1), x, fi, p, fi, Scalar(0), y, fo);  // Y = H W₀ᵀ
    int const* rp = a.row_ptr.data();
    int const* col = a.col.data();
    Scalar const* val = a.val.data();
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n), KOKKOS_LAMBDA(long i) {
          Scalar* o = y + i * fo;
          if (!accumulate)
            for (long f = 0; f < fo; ++f)
              o[f] = Scalar(0);
          for (long f = 0; f < fo; ++f)
            o[f] += b[f];
          for (int k = rp[i]; k < rp[i + 1]; ++k) {
            Scalar const* tj = tp + long(col[k]) * wide;
            for (long m = 0; m < nd; ++m) {
              Scalar const c = val[k] * (q != nullptr ? q[long(k) * nd + m] : Scalar(1));
              if (q != nullptr && c == Scalar(0)) continue;
              for (long f = 0; f < fo; ++f)
                o[f] += c * tj[m * fo + f];
            }
          }
        });
  }

  /// dT, the weight and bias gradients into g (not the extra ones) and, when dx != nullptr, dx.
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, Scalar const* p, Scalar const* x, Scalar const* dy, Scalar* dx, Scalar* g,
                Scalar const* q, char const* name) const {
    long const n = a.n, fi = fin, fo = fout, nd = nf, wide = nd * fo;
    Scalar* dtp = dt.data();
    Scalar* gb = g + bias_offset();
    int const* trp = trow_ptr.data();
    int const* tc = tcol.data();
    int const* te = tedge.data();
    Scalar const* val = a.val.data();
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n), KOKKOS_LAMBDA(long j) {
          Scalar* o = dtp + j * wide;
          for (long r = 0; r < wide; ++r)
            o[r] = Scalar(0);
          for (int e = trp[j]; e < trp[j + 1]; ++e) {
            long const k = te[e];
            Scalar const* dyi = dy + long(tc[e]) * fo;
            for (long m = 0; m < nd; ++m) {
              Scalar const c = val[k] * (q != nullptr ? q[k * nd + m] : Scalar(1));
              if (q != nullptr && c == Scalar(0)) continue;
              for (long f = 0; f < fo; ++f)
                o[m * fo + f] += c * dyi[f];
            }
          }
        });
    Kokkos::parallel_for(
        "lensing::nn::GraphConv::bias_grad", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, fo),
        KOKKOS_LAMBDA(long o) {
          Scalar s = Scalar(0);
          for (long i = 0; i < n; ++i)
            s += dy[i * fo + o];
          gb[o] = s;
        });
    gemm(space, true, false, wide, fi, n, Scalar(1), dtp, wide, x, fi, Scalar(0), g + filters_offset(), fi);
    if (self) gemm(space, true, false, fo, fi, n, Scalar(1), dy, fo, x, fi, Scalar(0), g, fi);
    if (dx == nullptr) return;
    if (self) gemm(space, false, false, n, fi, fo, Scalar(1), dy, fo, p, fi, Scalar(0), dx, fi);
    gemm(space, false, false, n, fi, wide, Scalar(1), dtp, wide, p + filters_offset(), fi, Scalar(self ? 1 : 0), dx,
         fi);
  }

  template <class V, class T>
  static void copy_to(V const& dst, std::vector<T> const& src) {
    auto h = Kokkos::create_mirror_view(dst);
    for (std::size_t i = 0; i < src.size(); ++i)
      h(i) = src[i];
    Kokkos::deep_copy(dst, h);
  }
};
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
/// The computation is detail::GraphConvCore with one filter and no edge weights.
template <class Scalar, class MemorySpace>
class GraphConv : public LayerBase<Scalar, MemorySpace> {
  using base = LayerBase<Scalar, MemorySpace>;

 public:
  using typename base::tensor_type;
  using typename base::vector_type;
  using matrix_type = CsrMatrix<Scalar, MemorySpace>;

  GraphConv(matrix_type const& adjacency, int in_features, int out_features, bool self_weight = true)
      : core_(adjacency, in_features, out_features, 1, self_weight, 0, "lensing::nn::GraphConv") {
    core_.allocate("lensing::nn::GraphConv::t", "lensing::nn::GraphConv::dt");
    this->params_ = vector_type("lensing::nn::GraphConv::params", core_.num_params());
  }
  int num_nodes() const { return core_.a.n; }

  Shape4 output_shape(Shape4 const& in) const { return core_.output_shape(in, "lensing::nn::GraphConv"); }

  void initialize(std::uint64_t seed) { core_.initialize(this->params_, seed); }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::GraphConv::forward: the tensors are not accessible from this execution space");
    detail::check_forward(*this, x, y, "lensing::nn::GraphConv::forward");
    core_.forward(space, this->params_.data(), x.data(), y.data(), static_cast<Scalar const*>(nullptr),
                  "lensing::nn::GraphConv::forward");
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::GraphConv::backward: the tensors are not accessible from this execution space");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::GraphConv::backward");
    core_.backward(space, this->params_.data(), x.data(), dy.data(), dx.data(), dparams.data(),
                   static_cast<Scalar const*>(nullptr), "lensing::nn::GraphConv::backward");
  }

 private:
  detail::GraphConvCore<Scalar, MemorySpace> core_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_GRAPH_CONV_HPP
