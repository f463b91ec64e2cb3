#ifndef LENSING_NN_GRAPH_BATCH_HPP
#define LENSING_NN_GRAPH_BATCH_HPP

/// \file
/// Batches of graphs as one block-diagonal sparse adjacency, so that a batch
/// of point clouds runs through a graph network in one kernel launch per
/// layer; per-graph readout (mean or sum pooling over a graph's nodes) and
/// the broadcast of per-graph vectors (noise, conditions) to the nodes.
///
/// Usage:
/// \code
///   // 32 point clouds of 100..300 nodes, positions concatenated graph after graph:
///   std::vector<int> sizes = ...;                  // nodes per graph
///   std::vector<double> px = ..., py = ...;        // sum(sizes) positions
///   auto batch = lensing::nn::knn_graph_batch<float, Mem>(sizes, px, py, 8);
///   // batch.adjacency: block-diagonal Kipf & Welling Â of the per-graph kNN graphs,
///   // usable by GraphConv (graph_conv.hpp) for all 32 graphs at once;
///   lensing::nn::graph_pool(space, batch, h, pooled, lensing::nn::GraphPoolMode::mean);   // (N x F) -> (G x F)
///   lensing::nn::graph_broadcast(space, batch, noise, per_node);                           // (G x F) -> (N x F)
/// \endcode
///
/// Node i of the batch belongs to graph g when offsets[g] <= i < offsets[g+1];
/// node features are row-major matrices (N x F), LayoutRight View2D.  No entry
/// of the adjacency joins two graphs (checked when a batch is built from a
/// given matrix), so a graph network on the batch computes each graph's
/// output exactly as on that graph alone (tests/nn/test_wgan.cpp checks it).

#include <lensing/core/errors.hpp>
#include <lensing/core/parallel.hpp>
#include <lensing/core/views.hpp>
#include <lensing/nn/graph_conv.hpp>
#include <lensing/nn/layer.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <queue>
#include <string>
#include <utility>
#include <vector>

namespace lensing {
namespace nn {

//----------------------------------------------------------------------------
// The batch.

/// G graphs of n_0, ..., n_{G-1} nodes as one graph of N = Σ n_g nodes with
/// a block-diagonal adjacency.  Built on the host by knn_graph_batch,
/// graph_batch_from_edges or graph_batch_from_csr and copied to MemorySpace.
///   - adjacency: the N x N block-diagonal CSR matrix (rows of graph g in
///     [offsets[g], offsets[g+1]));
///   - trow_ptr, tcol, tval: its transpose Aᵀ in CSR form (row j: the i with
///     a_ij != 0 and a_ij), for backward passes without atomics;
///   - offsets (G + 1), graph_of (N: the graph of each node), and
///     host_offsets, the host copy of offsets.
template <class Scalar, class MemorySpace>
struct GraphBatch {
  using matrix_type = CsrMatrix<Scalar, MemorySpace>;
  matrix_type adjacency;
  View1D<int, MemorySpace> trow_ptr, tcol;
  View1D<Scalar, MemorySpace> tval;
  View1D<int, MemorySpace> offsets, graph_of;
  std::vector<int> host_offsets;

  int num_graphs() const { return host_offsets.empty() ? 0 : int(host_offsets.size()) - 1; }
  int num_nodes() const { return host_offsets.empty() ? 0 : host_offsets.back(); }
  int graph_size(int g) const { return host_offsets.at(std::size_t(g) + 1) - host_offsets.at(std::size_t(g)); }
  /// Largest number of nodes of one graph.
  int max_graph_size() const {
    int m = 0;
    for (int g = 0; g < num_graphs(); ++g)
      m = std::max(m, graph_size(g));
    return m;
  }
};

namespace detail {
template <class V, class T>
void copy_host_vector(V const& dst, std::vector<T> const& src) {
  auto h = Kokkos::create_mirror_view(dst);
  for (std::size_t i = 0; i < src.size(); ++i)
    h(i) = src[i];
  Kokkos::deep_copy(dst, h);
}

/// Offsets from graph sizes (each >= 1).
inline std::vector<int> offsets_from_sizes(std::vector<int> const& sizes, char const* where) {
  check_argument(!sizes.empty(), where, "at least one graph is required");
  std::vector<int> off(sizes.size() + 1, 0);
  for (std::size_t g = 0; g < sizes.size(); ++g) {
    check_argument(
        sizes[g] >= 1, where,
        "graph " + std::to_string(g) + " has " + std::to_string(sizes[g]) + " nodes; at least 1 is required");
    off[g + 1] = off[g] + sizes[g];
  }
  return off;
}
}  // namespace detail

/// Batch of the graphs of `sizes` whose block-diagonal adjacency is `a`
/// (N = Σ sizes nodes).  Builds the transpose and the node-to-graph map.
/// Throws std::invalid_argument when a.n != N, a size is < 1, or an entry of
/// `a` joins two graphs.
template <class Scalar, class MemorySpace>
GraphBatch<Scalar, MemorySpace> graph_batch_from_csr(std::vector<int> const& sizes,
                                                     CsrMatrix<Scalar, MemorySpace> const& a) {
  char const* where = "lensing::nn::graph_batch_from_csr";
  auto const off = detail::offsets_from_sizes(sizes, where);
  int const n = off.back();
  check_argument(a.n == n, where,
                 "the adjacency has " + std::to_string(a.n) + " nodes, the graphs " + std::to_string(n));
  auto rp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a.row_ptr);
  auto col = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a.col);
  auto val = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a.val);
  std::vector<int> gof(n);
  for (std::size_t g = 0; g + 1 < off.size(); ++g)
    for (int i = off[g]; i < off[g + 1]; ++i)
      gof[i] = int(g);
  long const nnz = a.nnz();
  std::vector<int> trp(n + 1, 0), tc(nnz);
  std::vector<Scalar> tv(nnz);
  for (int i = 0; i < n; ++i)
    for (int k = rp(i); k < rp(i + 1); ++k) {
      if (gof[col(k)] != gof[i])
        throw_invalid_argument(where, "entry (" + std::to_string(i) + ", " + std::to_string(col(k)) + ") joins graph " +
                                          std::to_string(gof[i]) + " to graph " + std::to_string(gof[col(k)]) +
                                          "; the adjacency must be block diagonal");
      ++trp[col(k) + 1];
    }
  for (int j = 0; j < n; ++j)
    trp[j + 1] += trp[j];
  std::vector<int> fill(trp.begin(), trp.end() - 1);
  for (int i = 0; i < n; ++i)
    for (int k = rp(i); k < rp(i + 1); ++k) {
      int const at = fill[col(k)]++;
      tc[at] = i;
      tv[at] = val(k);
    }
  GraphBatch<Scalar, MemorySpace> b;
  b.adjacency = a;
  b.trow_ptr = View1D<int, MemorySpace>("lensing::nn::GraphBatch::trow_ptr", n + 1);
  b.tcol = View1D<int, MemorySpace>("lensing::nn::GraphBatch::tcol", nnz);
  b.tval = View1D<Scalar, MemorySpace>("lensing::nn::GraphBatch::tval", nnz);
  b.offsets = View1D<int, MemorySpace>("lensing::nn::GraphBatch::offsets", off.size());
  b.graph_of = View1D<int, MemorySpace>("lensing::nn::GraphBatch::graph_of", n);
  detail::copy_host_vector(b.trow_ptr, trp);
  detail::copy_host_vector(b.tcol, tc);
  detail::copy_host_vector(b.tval, tv);
  detail::copy_host_vector(b.offsets, off);
  detail::copy_host_vector(b.graph_of, gof);
  b.host_offsets = off;
  return b;
}

/// Batch of graphs given by their sizes and their undirected edges in batch
/// numbering (node i of graph g is offsets[g] + i), each graph normalised as
/// Kipf & Welling's Â = D̃^{-1/2}(A + I)D̃^{-1/2} (gcn_normalized_adjacency;
/// the degrees are those of the graph itself, as no edge joins two graphs).
/// Throws std::invalid_argument for an edge joining two graphs.
template <class Scalar, class MemorySpace>
GraphBatch<Scalar, MemorySpace> graph_batch_from_edges(std::vector<int> const& sizes,
                                                       std::vector<std::pair<int, int>> const& edges) {
  auto const off = detail::offsets_from_sizes(sizes, "lensing::nn::graph_batch_from_edges");
  return graph_batch_from_csr(sizes, gcn_normalized_adjacency<Scalar, MemorySpace>(off.back(), edges));
}

/// Edges joining every point i of a 2-D point set to its k nearest other
/// points (ties broken by index), as knn_graph_edges, in O(n k) expected time
/// for roughly uniform points: the points are binned in square cells holding
/// about k points each and the search visits rings of cells outwards until
/// the ring's nearest possible point is farther than the k-th found.  The
/// result equals knn_graph_edges up to the choice among tied distances
/// (here: the smaller index).
inline std::vector<std::pair<int, int>> knn_graph_edges_grid(std::vector<double> const& x, std::vector<double> const& y,
                                                             int k) {
  char const* where = "lensing::nn::knn_graph_edges_grid";
  check_argument(x.size() == y.size(), where, "x and y must have the same length");
  int const n = int(x.size());
  check_argument(k >= 1 && k < n, where, "k must be in [1, n)");
  double x0 = x[0], x1 = x[0], y0 = y[0], y1 = y[0];
  for (int i = 0; i < n; ++i) {
    check_finite(x[i], where, "x");
    check_finite(y[i], where, "y");
    x0 = std::min(x0, x[i]);
    x1 = std::max(x1, x[i]);
    y0 = std::min(y0, y[i]);
    y1 = std::max(y1, y[i]);
  }
  double const w = std::max(x1 - x0, 1e-300), hgt = std::max(y1 - y0, 1e-300);
  // About k points per cell; at most ~n cells.
  double h = std::sqrt(w * hgt * double(k) / double(n));
  if (!(h > 0)) h = std::max(w, hgt);
  int const nx = std::max(1, std::min(int(w / h) + 1, 1 << 15)), ny = std::max(1, std::min(int(hgt / h) + 1, 1 << 15));
  double const hx = w / nx, hy = hgt / ny, hmin = std::min(hx, hy);
  auto cell_x = [&](double v) { return std::min(nx - 1, std::max(0, int((v - x0) / hx))); };
  auto cell_y = [&](double v) { return std::min(ny - 1, std::max(0, int((v - y0) / hy))); };
  std::vector<int> start(std::size_t(nx) * ny + 1, 0), pts(n);
  for (int i = 0; i < n; ++i)
    ++start[std::size_t(cell_y(y[i])) * nx + cell_x(x[i]) + 1];
  for (std::size_t c = 0; c + 1 < start.size(); ++c)
    start[c + 1] += start[c];
  {
    std::vector<int> fill(start.begin(), start.end() - 1);
    for (int i = 0; i < n; ++i)
      pts[fill[std::size_t(cell_y(y[i])) * nx + cell_x(x[i])]++] = i;
  }
  std::vector<std::pair<int, int>> edges;
  edges.reserve(std::size_t(n) * k);
  std::vector<std::pair<double, int>> heap;  // max-heap of (distance², index)
  for (int i = 0; i < n; ++i) {
    heap.clear();
    int const cx = cell_x(x[i]), cy = cell_y(y[i]);
    int const rmax = std::max(nx, ny);
    for (int r = 0; r <= rmax; ++r) {
      for (int qy = cy - r; qy <= cy + r; ++qy) {
        if (qy < 0 || qy >= ny) continue;
        bool const edge_row = qy == cy - r || qy == cy + r;
        for (int qx = cx - r; qx <= cx + r; qx += edge_row ? 1 : 2 * r) {
          if (qx >= 0 && qx < nx) {
            std::size_t const c = std::size_t(qy) * nx + qx;
            for (int s = start[c]; s < start[c + 1]; ++s) {
              int const j = pts[s];
              if (j == i) continue;
              std::pair<double, int> const e{(x[j] - x[i]) * (x[j] - x[i]) + (y[j] - y[i]) * (y[j] - y[i]), j};
              if (int(heap.size()) < k) {
                heap.push_back(e);
                std::push_heap(heap.begin(), heap.end());
              } else if (e < heap.front()) {
                std::pop_heap(heap.begin(), heap.end());
                heap.back() = e;
                std::push_heap(heap.begin(), heap.end());
              }
            }
          }
          if (r == 0) break;
        }
      }
      // Points of ring r + 1 are at least r·min(hx, hy) away from point i.
      double const reach = double(r) * hmin;
      if (int(heap.size()) == k && heap.front().first <= reach * reach) break;
    }
    for (auto const& e : heap)
      edges.emplace_back(i, e.second);
  }
  return edges;
}

/// Batch of the k-nearest-neighbour graphs (Kipf & Welling normalised, as
/// gcn_normalized_adjacency(knn_graph_edges)) of G point clouds: graph g has
/// sizes[g] points whose positions are (px, py)[offsets[g] + i] (the clouds
/// concatenated).  A graph of at most k nodes is joined completely.  Graphs
/// of more than 64 nodes use knn_graph_edges_grid (O(n k); the Wgan rebuilds
/// these graphs for every pass on generated positions), the others
/// knn_graph_edges (O(n²)).  Throws std::invalid_argument for sizes that do not
/// match, k < 1 or non-finite positions.
template <class Scalar, class MemorySpace>
GraphBatch<Scalar, MemorySpace> knn_graph_batch(std::vector<int> const& sizes, std::vector<double> const& px,
                                                std::vector<double> const& py, int k) {
  char const* where = "lensing::nn::knn_graph_batch";
  auto const off = detail::offsets_from_sizes(sizes, where);
  int const n = off.back();
  check_argument(long(px.size()) == n && long(py.size()) == n, where,
                 "px and py must have sum(sizes) = " + std::to_string(n) + " entries, got " +
                     std::to_string(px.size()) + " and " + std::to_string(py.size()));
  check_count(k, 1, where, "k");
  // Â built row by row (no COO sort: this runs per training step on
  // generated positions).  Â is symmetric, so it is its own transpose.
  std::vector<int> rp(std::size_t(n) + 1, 0), col, gof(n);
  std::vector<double> val;
  std::vector<std::vector<int>> nb;
  for (std::size_t g = 0; g + 1 < off.size(); ++g) {
    int const m = sizes[g], o = off[g];
    nb.assign(std::size_t(m), std::vector<int>());
    for (int i = 0; i < m; ++i)
      nb[i].push_back(i);
    if (m > 1 && m <= k) {
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < m; ++j)
          if (j != i) nb[i].push_back(j);
    } else if (m > 1) {
      std::vector<double> gx(px.begin() + o, px.begin() + o + m), gy(py.begin() + o, py.begin() + o + m);
      auto const e = m > 64 ? knn_graph_edges_grid(gx, gy, k) : knn_graph_edges(gx, gy, k);
      for (auto const& p : e) {
        nb[p.first].push_back(p.second);
        nb[p.second].push_back(p.first);
      }
    }
    for (int i = 0; i < m; ++i) {
      std::sort(nb[i].begin(), nb[i].end());
      nb[i].erase(std::unique(nb[i].begin(), nb[i].end()), nb[i].end());
    }
    for (int i = 0; i < m; ++i) {
      gof[o + i] = int(g);
      rp[o + i + 1] = rp[o + i] + int(nb[i].size());
      for (int j : nb[i]) {
        col.push_back(o + j);
        val.push_back(1.0 / std::sqrt(double(nb[i].size()) * double(nb[j].size())));
      }
    }
  }
  GraphBatch<Scalar, MemorySpace> b;
  auto& a = b.adjacency;
  a.n = n;
  a.row_ptr = View1D<int, MemorySpace>("lensing::nn::CsrMatrix::row_ptr", rp.size());
  a.col = View1D<int, MemorySpace>("lensing::nn::CsrMatrix::col", col.size());
  a.val = View1D<Scalar, MemorySpace>("lensing::nn::CsrMatrix::val", val.size());
  detail::copy_host_vector(a.row_ptr, rp);
  detail::copy_host_vector(a.col, col);
  detail::copy_host_vector(a.val, val);
  b.trow_ptr = a.row_ptr;
  b.tcol = a.col;
  b.tval = a.val;
  b.offsets = View1D<int, MemorySpace>("lensing::nn::GraphBatch::offsets", off.size());
  b.graph_of = View1D<int, MemorySpace>("lensing::nn::GraphBatch::graph_of", n);
  detail::copy_host_vector(b.offsets, off);
  detail::copy_host_vector(b.graph_of, gof);
  b.host_offsets = off;
  return b;
}

//----------------------------------------------------------------------------
// Readout and broadcast.

/// Per-graph readout: the mean or the sum of a graph's node features.
enum class GraphPoolMode { mean, sum };

namespace detail {
/// y (G x f, row stride ldy) = pool of x (N x f, row stride ldx) over each
/// graph's nodes; y is overwritten.
template <class ExecutionSpace, class Scalar, class MemorySpace>
void graph_pool_raw(ExecutionSpace const& space, GraphBatch<Scalar, MemorySpace> const& b, Scalar const* x, long ldx,
                    Scalar* y, long ldy, long f, GraphPoolMode mode) {
  int const* off = b.offsets.data();
  bool const mean = mode == GraphPoolMode::mean;
  Kokkos::parallel_for(
      "lensing::nn::graph_pool",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(b.num_graphs()) * f),
      KOKKOS_LAMBDA(long r) {
        long const g = r / f, c = r % f;
        Scalar s = Scalar(0);
        for (long i = off[g]; i < off[g + 1]; ++i)
          s += x[i * ldx + c];
        y[g * ldy + c] = mean ? s / Scalar(off[g + 1] - off[g]) : s;
      });
}
/// dx (N x f) = the adjoint of the pool: dx_i = dy_g (sum) or dy_g / n_g
/// (mean), g the graph of i; dx overwritten, or added to when accumulate.
template <class ExecutionSpace, class Scalar, class MemorySpace>
void graph_unpool_raw(ExecutionSpace const& space, GraphBatch<Scalar, MemorySpace> const& b, Scalar const* dy, long ldy,
                      Scalar* dx, long ldx, long f, GraphPoolMode mode, bool accumulate) {
  int const* off = b.offsets.data();
  int const* gof = b.graph_of.data();
  bool const mean = mode == GraphPoolMode::mean;
  Kokkos::parallel_for(
      "lensing::nn::graph_unpool",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(b.num_nodes()) * f),
      KOKKOS_LAMBDA(long r) {
        long const i = r / f, c = r % f, g = gof[i];
        Scalar const v = mean ? dy[g * ldy + c] / Scalar(off[g + 1] - off[g]) : dy[g * ldy + c];
        Scalar& o = dx[i * ldx + c];
        o = accumulate ? o + v : v;
      });
}

template <class V>
void check_matrix(V const& v, long rows, long cols, char const* where, char const* name) {
  static_assert(V::rank == 2, "lensing::nn: a rank-2 (rows x features) view is required");
  check_argument(long(v.extent(0)) == rows && long(v.extent(1)) == cols, where,
                 std::string(name) + " is " + std::to_string(v.extent(0)) + " x " + std::to_string(v.extent(1)) +
                     ", expected " + std::to_string(rows) + " x " + std::to_string(cols));
}
}  // namespace detail

/// Per-graph readout y_g = (1/n_g) Σ_{i in g} x_i (mean) or Σ_{i in g} x_i
/// (sum): x (N x F) -> y (G x F).
template <class ExecutionSpace, class Scalar, class MemorySpace>
void graph_pool(ExecutionSpace const& space, GraphBatch<Scalar, MemorySpace> const& b,
                View2D<Scalar, MemorySpace> const& x, View2D<Scalar, MemorySpace> const& y,
                GraphPoolMode mode = GraphPoolMode::mean) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                "lensing::nn::graph_pool: the views are not accessible from this execution space");
  long const f = long(x.extent(1));
  detail::check_matrix(x, b.num_nodes(), f, "lensing::nn::graph_pool", "x");
  detail::check_matrix(y, b.num_graphs(), f, "lensing::nn::graph_pool", "y");
  detail::graph_pool_raw(space, b, x.data(), f, y.data(), f, f, mode);
}

/// Backward of graph_pool: dx_i = dy_g / n_g (mean) or dy_g (sum), g the graph of node i.
template <class ExecutionSpace, class Scalar, class MemorySpace>
void graph_pool_backward(ExecutionSpace const& space, GraphBatch<Scalar, MemorySpace> const& b,
                         View2D<Scalar, MemorySpace> const& dy, View2D<Scalar, MemorySpace> const& dx,
                         GraphPoolMode mode = GraphPoolMode::mean) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                "lensing::nn::graph_pool_backward: the views are not accessible from this execution space");
  long const f = long(dy.extent(1));
  detail::check_matrix(dy, b.num_graphs(), f, "lensing::nn::graph_pool_backward", "dy");
  detail::check_matrix(dx, b.num_nodes(), f, "lensing::nn::graph_pool_backward", "dx");
  detail::graph_unpool_raw(space, b, dy.data(), f, dx.data(), f, f, mode, false);
}

/// Broadcast of per-graph vectors to the nodes: y_i = v_g for every node i
/// of graph g, v (G x F) -> y (N x F).  Its backward is the sum pool:
/// graph_broadcast_backward.
template <class ExecutionSpace, class Scalar, class MemorySpace>
void graph_broadcast(ExecutionSpace const& space, GraphBatch<Scalar, MemorySpace> const& b,
                     View2D<Scalar, MemorySpace> const& v, View2D<Scalar, MemorySpace> const& y) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                "lensing::nn::graph_broadcast: the views are not accessible from this execution space");
  long const f = long(v.extent(1));
  detail::check_matrix(v, b.num_graphs(), f, "lensing::nn::graph_broadcast", "v");
  detail::check_matrix(y, b.num_nodes(), f, "lensing::nn::graph_broadcast", "y");
  detail::graph_unpool_raw(space, b, v.data(), f, y.data(), f, f, GraphPoolMode::sum, false);
}

/// Backward of graph_broadcast: dv_g = Σ_{i in g} dy_i.
template <class ExecutionSpace, class Scalar, class MemorySpace>
void graph_broadcast_backward(ExecutionSpace const& space, GraphBatch<Scalar, MemorySpace> const& b,
                              View2D<Scalar, MemorySpace> const& dy, View2D<Scalar, MemorySpace> const& dv) {
  graph_pool(space, b, dy, dv, GraphPoolMode::sum);
}

//----------------------------------------------------------------------------
// Pooling as a Layer.

/// Per-graph readout as a Layer over a fixed GraphBatch, so that GraphConv
/// layers on `batch.adjacency` and a readout compose in a Sequential: input
/// (N_nodes, F, 1, 1) (any (N, C, H, W) with C·H·W = F), output
/// (G, F, 1, 1), y_g = mean (or sum) of the x_i of graph g.  No parameters.
/// Backward: dx_i = dy_g / n_g (mean) or dy_g (sum).
template <class Scalar, class MemorySpace>
class GraphPool : public LayerBase<Scalar, MemorySpace> {
  using base = LayerBase<Scalar, MemorySpace>;

 public:
  using typename base::tensor_type;
  using typename base::vector_type;

  explicit GraphPool(GraphBatch<Scalar, MemorySpace> const& batch, GraphPoolMode mode = GraphPoolMode::mean)
      : batch_(batch), mode_(mode) {
    check_count(batch.num_graphs(), 1, "lensing::nn::GraphPool", "number of graphs");
  }
  Shape4 output_shape(Shape4 const& in) const {
    char const* where = "lensing::nn::GraphPool";
    check_valid_shape(in, where);
    check_argument(in.n == batch_.num_nodes(), where,
                   "input " + in.str() + " has " + std::to_string(in.n) + " nodes, the batch " +
                       std::to_string(batch_.num_nodes()));
    return Shape4{batch_.num_graphs(), int(in.per_sample()), 1, 1};
  }
  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::GraphPool::forward: the tensors are not accessible from this execution space");
    detail::check_forward(*this, x, y, "lensing::nn::GraphPool::forward");
    long const f = shape_of(x).per_sample();
    detail::graph_pool_raw(space, batch_, x.data(), f, y.data(), f, f, mode_);
  }
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::GraphPool::backward: the tensors are not accessible from this execution space");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::GraphPool::backward");
    if (dx.data() == nullptr) return;
    long const f = shape_of(x).per_sample();
    detail::graph_unpool_raw(space, batch_, dy.data(), f, dx.data(), f, f, mode_, false);
  }

 private:
  GraphBatch<Scalar, MemorySpace> batch_;
  GraphPoolMode mode_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_GRAPH_BATCH_HPP
