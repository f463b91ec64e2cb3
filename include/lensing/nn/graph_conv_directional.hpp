#ifndef LENSING_NN_GRAPH_CONV_DIRECTIONAL_HPP
#define LENSING_NN_GRAPH_CONV_DIRECTIONAL_HPP

#include <lensing/core/math.hpp>
#include <lensing/nn/gemm.hpp>
#include <lensing/nn/graph_conv.hpp>
#include <lensing/nn/layer.hpp>

#include <cmath>
#include <vector>

namespace lensing {
namespace nn {

namespace detail {
/// d̂·u for a direction d = (dx, dy) and a unit vector u (0 when d = 0).
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar direction_cosine(Scalar dx, Scalar dy, Scalar ux, Scalar uy) {
  Scalar const len = lensing::math::sqrt(dx * dx + dy * dy);
  return len > Scalar(0) ? (dx * ux + dy * uy) / len : Scalar(0);
}
}  // namespace detail

/// Directional graph convolution over a fixed sparse adjacency of nodes with
/// positions on the sky plane:
///
///   y_i = b + W₀ h_i + Σ_{m=1..M} Σ_j q_m(i, j) a_ij W_m h_j,
///   q_m(i, j) = max(0, d̂_m · u_ij),   u_ij = (x_j − x_i)/|x_j − x_i|,   d̂_m = d_m/|d_m|,
///
/// i.e. each of the M learned directions d_m ∈ R² weighs the neighbour j by
/// the positive part of the cosine of the angle between d_m and the edge
/// i → j (a half-plane angular kernel), so that the filter W_m sees the
/// neighbours lying towards d_m: an anisotropic, orientation-learning graph
/// filter in the spirit of the spatial graph convolutions that feed relative
/// positions through a ReLU (Danel et al. 2020, "Spatial Graph Convolutional
/// Networks", arXiv:1909.05310) and of MoNet's pseudo-coordinate kernels
/// (Monti et al. 2017, arXiv:1611.08402).  a_ij are the values of the CSR
/// adjacency (e.g. `gcn_normalized_adjacency` of a `knn_graph_edges` graph).
/// Conventions and domain:
///   - positions x_i = (px[i], py[i]) in any length unit (only directions
///     enter); coincident points and self-loops (x_j = x_i) give u_ij = 0,
///     hence q = 0: the node itself enters only through W₀;
///   - d_m = 0 gives q_m = 0 and a zero gradient for d_m (no NaN);
///   - q is not differentiable where d_m ⊥ u_ij; the backward uses the
///     derivative of the branch d̂_m·u_ij > 0 (as ReLU'(0) = 0).
/// Nodes are the batch dimension: input (N_nodes, F_in, 1, 1) (any
/// (N, C, H, W) with C·H·W = F_in), output (N_nodes, F_out, 1, 1).
/// Parameters, flat: W₀ (F_out x F_in), W_1 … W_M (M x F_out x F_in), the
/// directions D (M x 2: d_m = (D[m,0], D[m,1])), b (F_out).  Initialised
/// Xavier-uniform (weights), d_m = (cos 2πm/M, sin 2πm/M), b = 0; the
/// constructor sets the same directions (weights and bias zero).
/// Forward: T = H [W_1; …; W_M]ᵀ (one GEMM), then one sparse pass per row.
/// Backward: dT_j,m = Σ_i q_m(i,j) a_ij dy_i (over a transposed CSR built in
/// the constructor), dW_m = dT_mᵀ H, dW₀ = dYᵀ H, db = Σ dY,
/// dH = dY W₀ + Σ_m dT_m W_m, and dd_m = Σ_(i,j) a_ij (dy_i · T_j,m) ∂q_m/∂d_m
/// with ∂q/∂d = [d̂·u > 0] (u − d̂ (d̂·u))/|d|.
template <class Scalar, class MemorySpace>
class DirectionalGraphConv : public LayerBase<Scalar, MemorySpace> {
  using base = LayerBase<Scalar, MemorySpace>;

 public:
  using typename base::tensor_type;
  using typename base::vector_type;
  using matrix_type = CsrMatrix<Scalar, MemorySpace>;

  /// Layer for the graph `adjacency` (n nodes) whose node i sits at
  /// (px[i], py[i]); num_directions = M >= 1.  Throws std::invalid_argument
  /// for sizes that differ or non-finite positions.
  DirectionalGraphConv(matrix_type const& adjacency, std::vector<double> const& px, std::vector<double> const& py,
                       int in_features, int out_features, int num_directions)
      : a_(adjacency), fin_(in_features), fout_(out_features), m_(num_directions) {
    char const* where = "lensing::nn::DirectionalGraphConv";
    check_count(adjacency.n, 1, where, "adjacency size");
    check_count(in_features, 1, where, "in_features");
    check_count(out_features, 1, where, "out_features");
    check_count(num_directions, 1, where, "num_directions");
    int const n = a_.n;
    check_argument(long(px.size()) == n && long(py.size()) == n, where,
                   "px and py must have one entry per node (" + std::to_string(n) + "), got " +
                       std::to_string(px.size()) + " and " + std::to_string(py.size()));
    for (int i = 0; i < n; ++i) {
      check_finite(px[i], where, "px");
      check_finite(py[i], where, "py");
    }
    auto rp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a_.row_ptr);
    auto col = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a_.col);
    long const nnz = a_.nnz();
    // Unit vectors of the edges, and the transpose (rows j, entries (i, edge k)) by counting sort.
    unit_ = vector_type("lensing::nn::DirectionalGraphConv::unit", 2 * nnz);
    auto hu = Kokkos::create_mirror_view(unit_);
    std::vector<int> trp(n + 1, 0), tcol(nnz), tedge(nnz);
    for (int i = 0; i < n; ++i)
      for (int k = rp(i); k < rp(i + 1); ++k) {
        int const j = col(k);
        double const ex = px[j] - px[i], ey = py[j] - py[i], len = std::hypot(ex, ey);
        hu(2 * k) = len > 0 ? Scalar(ex / len) : Scalar(0);
        hu(2 * k + 1) = len > 0 ? Scalar(ey / len) : Scalar(0);
        ++trp[j + 1];
      }
    Kokkos::deep_copy(unit_, hu);
    for (int j = 0; j < n; ++j)
      trp[j + 1] += trp[j];
    std::vector<int> fill(trp.begin(), trp.end() - 1);
    for (int i = 0; i < n; ++i)
      for (int k = rp(i); k < rp(i + 1); ++k) {
        int const at = fill[col(k)]++;
        tcol[at] = i;
        tedge[at] = k;
      }
    trow_ptr_ = View1D<int, MemorySpace>("lensing::nn::DirectionalGraphConv::trow_ptr", n + 1);
    tcol_ = View1D<int, MemorySpace>("lensing::nn::DirectionalGraphConv::tcol", nnz);
    tedge_ = View1D<int, MemorySpace>("lensing::nn::DirectionalGraphConv::tedge", nnz);
    copy_to(trow_ptr_, trp);
    copy_to(tcol_, tcol);
    copy_to(tedge_, tedge);
    long const nw = long(fout_) * fin_;
    this->params_ = vector_type("lensing::nn::DirectionalGraphConv::params", (1 + m_) * nw + 2 * m_ + fout_);
    t_ = vector_type("lensing::nn::DirectionalGraphConv::t", long(n) * m_ * fout_);
    dt_ = vector_type("lensing::nn::DirectionalGraphConv::dt", long(n) * m_ * fout_);
    q_ = vector_type("lensing::nn::DirectionalGraphConv::q", nnz * m_);
    gd_ = vector_type("lensing::nn::DirectionalGraphConv::gd", nnz * 2 * m_);
    set_default_directions();
  }

  int num_nodes() const { return a_.n; }
  int num_directions() const { return m_; }
  /// Offset of the directions D in the flat parameter vector.
  long directions_offset() const { return (1 + long(m_)) * fout_ * fin_; }

  Shape4 output_shape(Shape4 const& in) const {
    char const* where = "lensing::nn::DirectionalGraphConv";
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
    long const nw = long(fout_) * fin_;
    for (long m = 0; m <= m_; ++m)
      nn::initialize(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(m * nw, (m + 1) * nw))),
                     Init::xavier_uniform, fin_, fout_, seed + std::uint64_t(m));
    long const off = directions_offset();
    Kokkos::deep_copy(Kokkos::subview(this->params_, Kokkos::make_pair(off + 2 * m_, off + 2 * m_ + fout_)), Scalar(0));
    set_default_directions();
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(
        is_accessible_from_v<ExecutionSpace, MemorySpace>,
        "lensing::nn::DirectionalGraphConv::forward: the tensors are not accessible from this execution space");
    detail::check_forward(*this, x, y, "lensing::nn::DirectionalGraphConv::forward");
    long const n = a_.n, fi = fin_, fo = fout_, nd = m_, nw = fo * fi;
    Scalar const* p = this->params_.data();
    Scalar const* dir = p + (1 + nd) * nw;
    Scalar const* b = dir + 2 * nd;
    gemm(space, false, true, n, nd * fo, fi, Scalar(1), x.data(), fi, p + nw, fi, Scalar(0), t_.data(), nd * fo);
    gemm(space, false, true, n, fo, fi, Scalar(1), x.data(), fi, p, fi, Scalar(0), y.data(), fo);
    int const* rp = a_.row_ptr.data();
    int const* col = a_.col.data();
    Scalar const* val = a_.val.data();
    Scalar const* u = unit_.data();
    Scalar const* t = t_.data();
    Scalar* q = q_.data();
    Scalar* yp = y.data();
    Kokkos::parallel_for(
        "lensing::nn::DirectionalGraphConv::forward",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n), KOKKOS_LAMBDA(long i) {
          Scalar* o = yp + i * fo;
          for (long f = 0; f < fo; ++f)
            o[f] += b[f];
          for (int k = rp[i]; k < rp[i + 1]; ++k) {
            Scalar const* tj = t + long(col[k]) * nd * fo;
            for (long m = 0; m < nd; ++m) {
              Scalar const qk = detail::direction_cosine(dir[2 * m], dir[2 * m + 1], u[2 * k], u[2 * k + 1]);
              Scalar const c = qk > Scalar(0) ? qk : Scalar(0);
              q[long(k) * nd + m] = c;
              Scalar const a = val[k] * c;
              if (a == Scalar(0)) continue;
              for (long f = 0; f < fo; ++f)
                o[f] += a * tj[m * fo + f];
            }
          }
        });
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(
        is_accessible_from_v<ExecutionSpace, MemorySpace>,
        "lensing::nn::DirectionalGraphConv::backward: the tensors are not accessible from this execution space");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::DirectionalGraphConv::backward");
    long const n = a_.n, fi = fin_, fo = fout_, nd = m_, nw = fo * fi, nnz = a_.nnz();
    Scalar const* p = this->params_.data();
    Scalar const* dir = p + (1 + nd) * nw;
    Scalar* g = dparams.data();
    Scalar* gdir = g + (1 + nd) * nw;
    Scalar* gb = gdir + 2 * nd;
    Scalar const* dyp = dy.data();
    int const* rp = a_.row_ptr.data();
    int const* col = a_.col.data();
    Scalar const* val = a_.val.data();
    int const* trp = trow_ptr_.data();
    int const* tcol = tcol_.data();
    int const* tedge = tedge_.data();
    Scalar const* u = unit_.data();
    Scalar const* t = t_.data();
    Scalar const* q = q_.data();
    Scalar* dt = dt_.data();
    Scalar* gd = gd_.data();
    // dT_j,m = Σ_i q_m(i,j) a_ij dy_i over the transposed adjacency.
    Kokkos::parallel_for(
        "lensing::nn::DirectionalGraphConv::backward_t",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n), KOKKOS_LAMBDA(long j) {
          Scalar* o = dt + j * nd * fo;
          for (long r = 0; r < nd * fo; ++r)
            o[r] = Scalar(0);
          for (int e = trp[j]; e < trp[j + 1]; ++e) {
            long const k = tedge[e];
            Scalar const* dyi = dyp + long(tcol[e]) * fo;
            for (long m = 0; m < nd; ++m) {
              Scalar const a = val[k] * q[k * nd + m];
              if (a == Scalar(0)) continue;
              for (long f = 0; f < fo; ++f)
                o[m * fo + f] += a * dyi[f];
            }
          }
        });
    // Per edge (i, j) and direction m: a_ij (dy_i · T_j,m) ∂q_m/∂d_m.
    Kokkos::parallel_for(
        "lensing::nn::DirectionalGraphConv::backward_edges",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n), KOKKOS_LAMBDA(long i) {
          Scalar const* dyi = dyp + i * fo;
          for (int k = rp[i]; k < rp[i + 1]; ++k) {
            Scalar const* tj = t + long(col[k]) * nd * fo;
            Scalar const ux = u[2 * k], uy = u[2 * k + 1];
            for (long m = 0; m < nd; ++m) {
              Scalar gx = Scalar(0), gy = Scalar(0);
              Scalar const dxm = dir[2 * m], dym = dir[2 * m + 1];
              Scalar const len = lensing::math::sqrt(dxm * dxm + dym * dym);
              if (q[long(k) * nd + m] > Scalar(0) && len > Scalar(0)) {
                Scalar s = Scalar(0);
                for (long f = 0; f < fo; ++f)
                  s += dyi[f] * tj[m * fo + f];
                Scalar const c = q[long(k) * nd + m], w = val[k] * s / len;
                gx = w * (ux - dxm / len * c);
                gy = w * (uy - dym / len * c);
              }
              gd[(long(k) * nd + m) * 2] = gx;
              gd[(long(k) * nd + m) * 2 + 1] = gy;
            }
          }
        });
    Kokkos::parallel_for(
        "lensing::nn::DirectionalGraphConv::backward_directions",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, 2 * nd), KOKKOS_LAMBDA(long r) {
          double s = 0;
          for (long k = 0; k < nnz; ++k)
            s += double(gd[k * 2 * nd + r]);
          gdir[r] = Scalar(s);
        });
    Kokkos::parallel_for(
        "lensing::nn::DirectionalGraphConv::bias_grad",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, fo), KOKKOS_LAMBDA(long o) {
          Scalar s = Scalar(0);
          for (long i = 0; i < n; ++i)
            s += dyp[i * fo + o];
          gb[o] = s;
        });
    gemm(space, true, false, nd * fo, fi, n, Scalar(1), dt, nd * fo, x.data(), fi, Scalar(0), g + nw, fi);
    gemm(space, true, false, fo, fi, n, Scalar(1), dyp, fo, x.data(), fi, Scalar(0), g, fi);
    if (dx.data() == nullptr) return;
    gemm(space, false, false, n, fi, fo, Scalar(1), dyp, fo, p, fi, Scalar(0), dx.data(), fi);
    gemm(space, false, false, n, fi, nd * fo, Scalar(1), dt, nd * fo, p + nw, fi, Scalar(1), dx.data(), fi);
  }

 private:
  template <class V, class T>
  static void copy_to(V const& dst, std::vector<T> const& src) {
    auto h = Kokkos::create_mirror_view(dst);
    for (std::size_t i = 0; i < src.size(); ++i)
      h(i) = src[i];
    Kokkos::deep_copy(dst, h);
  }
  void set_default_directions() {
    long const off = directions_offset();
    auto d = Kokkos::subview(this->params_, Kokkos::make_pair(off, off + 2 * m_));
    auto h = Kokkos::create_mirror_view(d);
    double const two_pi = 6.283185307179586476925;
    for (int m = 0; m < m_; ++m) {
      h(2 * m) = Scalar(std::cos(two_pi * m / m_));
      h(2 * m + 1) = Scalar(std::sin(two_pi * m / m_));
    }
    Kokkos::deep_copy(d, h);
  }

  matrix_type a_;
  int fin_, fout_, m_;
  View1D<int, MemorySpace> trow_ptr_, tcol_, tedge_;
  vector_type unit_, t_, dt_, q_, gd_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_GRAPH_CONV_DIRECTIONAL_HPP
