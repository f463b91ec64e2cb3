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
/// The shared part (the transforms, the aggregation over the CSR adjacency
/// and its transpose, the weight, bias and input gradients) is
/// detail::GraphConvCore with M filters and the edge weights q; this layer
/// adds q and the gradient of the directions.
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
      : core_(adjacency, in_features, out_features, std::max(num_directions, 1), true, 2L * std::max(num_directions, 1),
              "lensing::nn::DirectionalGraphConv"),
        m_(num_directions) {
    char const* where = "lensing::nn::DirectionalGraphConv";
    check_count(num_directions, 1, where, "num_directions");
    int const n = core_.a.n;
    check_argument(long(px.size()) == n && long(py.size()) == n, where,
                   "px and py must have one entry per node (" + std::to_string(n) + "), got " +
                       std::to_string(px.size()) + " and " + std::to_string(py.size()));
    for (int i = 0; i < n; ++i) {
      check_finite(px[i], where, "px");
      check_finite(py[i], where, "py");
    }
    auto rp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), core_.a.row_ptr);
    auto col = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), core_.a.col);
    long const nnz = core_.a.nnz();
    // Unit vectors of the edges.
    unit_ = vector_type("lensing::nn::DirectionalGraphConv::unit", 2 * nnz);
    auto hu = Kokkos::create_mirror_view(unit_);
    for (int i = 0; i < n; ++i)
      for (int k = rp(i); k < rp(i + 1); ++k) {
        int const j = col(k);
        double const ex = px[j] - px[i], ey = py[j] - py[i], len = std::hypot(ex, ey);
        hu(2 * k) = len > 0 ? Scalar(ex / len) : Scalar(0);
        hu(2 * k + 1) = len > 0 ? Scalar(ey / len) : Scalar(0);
      }
    Kokkos::deep_copy(unit_, hu);
    core_.allocate("lensing::nn::DirectionalGraphConv::t", "lensing::nn::DirectionalGraphConv::dt");
    this->params_ = vector_type("lensing::nn::DirectionalGraphConv::params", core_.num_params());
    q_ = vector_type("lensing::nn::DirectionalGraphConv::q", nnz * m_);
    gd_ = vector_type("lensing::nn::DirectionalGraphConv::gd", nnz * 2 * m_);
    set_default_directions();
  }

  int num_nodes() const { return core_.a.n; }
  int num_directions() const { return m_; }
  /// Offset of the directions D in the flat parameter vector.
  long directions_offset() const { return (1 + long(m_)) * core_.matrix_size(); }

  Shape4 output_shape(Shape4 const& in) const { return core_.output_shape(in, "lensing::nn::DirectionalGraphConv"); }

  void initialize(std::uint64_t seed) {
    core_.initialize(this->params_, seed);
    set_default_directions();
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(
        is_accessible_from_v<ExecutionSpace, MemorySpace>,
        "lensing::nn::DirectionalGraphConv::forward: the tensors are not accessible from this execution space");
    detail::check_forward(*this, x, y, "lensing::nn::DirectionalGraphConv::forward");
    long const nd = m_;
    Scalar const* dir = this->params_.data() + directions_offset();
    Scalar const* u = unit_.data();
    Scalar* q = q_.data();
    // q_m(i, j) = max(0, d̂_m · u_ij) per edge and direction.
    Kokkos::parallel_for(
        "lensing::nn::DirectionalGraphConv::edge_weights",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, core_.a.nnz() * nd),
        KOKKOS_LAMBDA(long r) {
          long const k = r / nd, m = r % nd;
          Scalar const qk = detail::direction_cosine(dir[2 * m], dir[2 * m + 1], u[2 * k], u[2 * k + 1]);
          q[r] = qk > Scalar(0) ? qk : Scalar(0);
        });
    core_.forward(space, this->params_.data(), x.data(), y.data(), q, "lensing::nn::DirectionalGraphConv::forward");
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(
        is_accessible_from_v<ExecutionSpace, MemorySpace>,
        "lensing::nn::DirectionalGraphConv::backward: the tensors are not accessible from this execution space");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::DirectionalGraphConv::backward");
    long const n = core_.a.n, fo = core_.fout, nd = m_, nnz = core_.a.nnz();
    Scalar const* dir = this->params_.data() + directions_offset();
    Scalar* gdir = dparams.data() + directions_offset();
    Scalar const* dyp = dy.data();
    int const* rp = core_.a.row_ptr.data();
    int const* col = core_.a.col.data();
    Scalar const* val = core_.a.val.data();
    Scalar const* u = unit_.data();
    Scalar const* t = core_.t.data();
    Scalar const* q = q_.data();
    Scalar* gd = gd_.data();
    core_.backward(space, this->params_.data(), x.data(), dyp, dx.data(), dparams.data(), q,
                   "lensing::nn::DirectionalGraphConv::backward_t");
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
  }

 private:
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

  detail::GraphConvCore<Scalar, MemorySpace> core_;
  int m_;
  vector_type unit_, q_, gd_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_GRAPH_CONV_DIRECTIONAL_HPP
