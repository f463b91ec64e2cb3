#ifndef LENSING_NN_GRAPH_NET_HPP
#define LENSING_NN_GRAPH_NET_HPP

/// \file
/// A graph network over batched graphs (graph_batch.hpp) with, besides its
/// forward and backward passes, a tangent (forward-mode) pass and the reverse
/// of it: what the gradient penalty of a Wasserstein GAN needs to take the
/// parameter gradient of an input gradient (nn/wgan.hpp).
///
/// Usage:
/// \code
///   nn::GraphNetSpec spec;                // critic: 3 node features -> one number per graph
///   spec.in_features = 3;
///   spec.conv_widths = {32, 32};          // GraphConv (self weight) + activation, twice
///   spec.pool = true;                     // mean over each graph's nodes
///   spec.dense_widths = {32};             // Dense + activation
///   spec.out_features = 1;                // final Dense, linear
///   nn::GraphNet<float, Mem, nn::LeakyReluOp> net(spec, nn::LeakyReluOp{0.2});
///   net.initialize(1);
///   auto d = net.forward(space, batch, h);                  // h (N x 3) -> d (G x 1)
///   net.backward(space, batch, h, dd, dh, nn::ParamGrad::overwrite);   // net.gradients(), dh
/// \endcode

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/core/views.hpp>
#include <lensing/nn/activation.hpp>
#include <lensing/nn/gemm.hpp>
#include <lensing/nn/graph_batch.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace lensing {
namespace nn {

//----------------------------------------------------------------------------
// Second derivatives of the element-wise activations (activation.hpp).

/// s''(x) of an activation op given x and y = s(x), for the reverse of the
/// tangent pass (dx gets s''(x) ẋ dẏ).  LeakyReLU and ReLU: 0 (almost
/// everywhere); tanh: −2y(1 − y²); sigmoid: y(1 − y)(1 − 2y); softplus:
/// σ(x)(1 − σ(x)); ELU: 0 for x > 0, y + α otherwise.  GELU has none here.
template <class S>
KOKKOS_INLINE_FUNCTION S activation_second_derivative(ReluOp const&, S, S) {
  return S(0);
}
template <class S>
KOKKOS_INLINE_FUNCTION S activation_second_derivative(LeakyReluOp const&, S, S) {
  return S(0);
}
template <class S>
KOKKOS_INLINE_FUNCTION S activation_second_derivative(TanhOp const&, S, S y) {
  return S(-2) * y * (S(1) - y * y);
}
template <class S>
KOKKOS_INLINE_FUNCTION S activation_second_derivative(SigmoidOp const&, S, S y) {
  return y * (S(1) - y) * (S(1) - S(2) * y);
}
template <class S>
KOKKOS_INLINE_FUNCTION S activation_second_derivative(SoftplusOp const&, S x, S) {
  S const s = SigmoidOp{}.value(x);
  return s * (S(1) - s);
}
template <class S>
KOKKOS_INLINE_FUNCTION S activation_second_derivative(EluOp const& op, S x, S y) {
  S const d = y + S(op.alpha);
  return x > S(0) ? S(0) : d;
}

namespace detail {
template <class Op, class S, class = void>
struct has_second_derivative : std::false_type {};
template <class Op, class S>
struct has_second_derivative<Op, S,
                             std::void_t<decltype(activation_second_derivative(std::declval<Op const&>(), S(0), S(0)))>>
    : std::true_type {};
}  // namespace detail

//----------------------------------------------------------------------------
// Network description.

/// Architecture of a GraphNet: in order,
///   conv_widths.size() × [GraphConv (Y = H W₀ᵀ + A H W₁ᵀ + 1bᵀ, A the batch's
///     adjacency) + activation],
///   [mean pool over each graph's nodes, if pool],
///   dense_widths.size() × [Dense + activation] (per node, or per graph after the pool),
///   Dense to out_features (linear).
struct GraphNetSpec {
  int in_features = 1;
  std::vector<int> conv_widths;
  bool pool = false;
  std::vector<int> dense_widths;
  int out_features = 1;
};

/// What a backward pass does with the parameter gradient.
enum class ParamGrad {
  overwrite,   ///< gradients() = this pass's parameter gradient
  accumulate,  ///< gradients() += this pass's parameter gradient
  none         ///< parameter gradient not computed (input gradient only)
};

/// The layer kinds of a GraphNet (see GraphNetSpec).
enum class GraphStageKind { conv, dense, activation, pool };

namespace detail {
struct GraphStage {
  GraphStageKind kind;
  int in, out;
  long poff, np;   // offset and size of the parameters in the flat vector
  bool per_graph;  // rows are graphs (after the pool), not nodes
};

/// One parameter block (a layer's slice of the flat vector) in the form
/// save_weights/load_weights (serialize.hpp) walk with for_each_layer.
template <class Scalar, class MemorySpace>
struct GraphNetBlock {
  using vector_type = ParamVector<Scalar, MemorySpace>;
  vector_type p;
  long num_params() const { return long(p.extent(0)); }
  vector_type parameters() const { return p; }
  long num_state() const { return 0; }
  vector_type state() const { return vector_type(); }
};

/// y_i (= or +=) Σ_k a_ik x_col(k) (+ b) for the CSR (rp, col, val), rows n, f columns.
template <class ExecutionSpace, class Scalar>
void csr_times(ExecutionSpace const& space, long n, int const* rp, int const* col, Scalar const* val, Scalar const* x,
               Scalar* y, long f, Scalar const* bias, bool accumulate, char const* name) {
  Kokkos::parallel_for(
      name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n), KOKKOS_LAMBDA(long i) {
        Scalar* o = y + i * f;
        for (long c = 0; c < f; ++c) {
          Scalar s = accumulate ? o[c] : Scalar(0);
          if (bias != nullptr) s += bias[c];
          o[c] = s;
        }
        for (int k = rp[i]; k < rp[i + 1]; ++k) {
          Scalar const a = val[k];
          Scalar const* xj = x + long(col[k]) * f;
          for (long c = 0; c < f; ++c)
            o[c] += a * xj[c];
        }
      });
}
/// g[c] += Σ_i dy[i f + c].
template <class ExecutionSpace, class Scalar>
void column_sums_add(ExecutionSpace const& space, long rows, long f, Scalar const* dy, Scalar* g) {
  Kokkos::parallel_for(
      "lensing::nn::GraphNet::bias_grad", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, f),
      KOKKOS_LAMBDA(long c) {
        Scalar s = Scalar(0);
        for (long i = 0; i < rows; ++i)
          s += dy[i * f + c];
        g[c] += s;
      });
}
/// y[i] = b[i % f] over rows x f.
template <class ExecutionSpace, class Scalar>
void fill_bias(ExecutionSpace const& space, long rows, long f, Scalar const* b, Scalar* y) {
  Kokkos::parallel_for(
      "lensing::nn::GraphNet::bias", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, rows * f),
      KOKKOS_LAMBDA(long i) { y[i] = b[i % f]; });
}
}  // namespace detail

//----------------------------------------------------------------------------
// GraphNet.

/// Graph network on a GraphBatch (graph_batch.hpp): graph convolutions,
/// an optional per-graph mean pool and dense layers (GraphNetSpec), with
/// an element-wise activation Op (activation.hpp) after every hidden layer.
///
/// Layers and parameters (one flat vector, layer after layer):
///   - graph convolution, the layer of GraphConv (graph_conv.hpp) with a self
///     weight on the batch's block-diagonal adjacency A:
///     Y = H W₀ᵀ + A H W₁ᵀ + 1 bᵀ, parameters W₀ (F_out x F_in), W₁, b
///     (GraphConv's layout; Xavier-uniform, b = 0);
///   - dense, Y = H Wᵀ + 1 bᵀ, parameters W (F_out x F_in), b (Dense's
///     layout, He-normal, b = 0);
///   - pool, y_g = (1/n_g) Σ_{i in g} h_i (no parameters);
///   - activation, y = s(x) element-wise.
/// Node features are row-major (rows x features) View2D: N rows before the
/// pool, G after.  The network's output for one graph of a batch equals its
/// output for that graph alone (no entry of A joins two graphs).
///
/// **Forward and backward.**  forward(space, batch, x) stores every layer's
/// output; backward(space, batch, x, dy, dx, mode) back-propagates dy = ∂L/∂y:
/// dx = ∂L/∂x (skipped for an empty dx) and the parameter gradient into
/// gradients() (ParamGrad).  Per layer: graph convolution dT = Aᵀ dY (over
/// the batch's transpose), dW₀ = dYᵀ H, dW₁ = dTᵀ H, db = Σ dY,
/// dH = dY W₀ + dT W₁; dense dW = dYᵀ H, db = Σ dY, dH = dY W; pool
/// dh_i = dy_g / n_g; activation dx = s'(x) dy.
///
/// **Tangent pass and its reverse** (forward-mode, then reverse-mode over the
/// pair, for second derivatives).  forward_tangent(space, batch, ẋ), after
/// forward(x), propagates a tangent ẋ (the directional derivative
/// ẏ = (∂y/∂x) ẋ): every linear layer maps it with its linear part (no bias),
/// Ẏ = Ẋ W₀ᵀ + A Ẋ W₁ᵀ, Ẏ = Ẋ Wᵀ, the pool pools it, and the activation gives
/// ẏ = s'(x) ẋ.  backward_tangent(space, batch, x, ẋ, dy, dẏ, dx, dẋ, mode)
/// back-propagates a loss L(y, ẏ) given dy = ∂L/∂y and dẏ = ∂L/∂ẏ through
/// the pair (y, ẏ) as functions of (x, ẋ, θ):
///   - linear layer y = L_θ x + b, ẏ = L_θ ẋ:
///       dx = L_θᵀ dy, dẋ = L_θᵀ dẏ,
///       dθ = ∂⟨dy, L_θ x⟩/∂θ + ∂⟨dẏ, L_θ ẋ⟩/∂θ (both streams: e.g.
///       dW₁ = dTᵀ H + dṪᵀ Ḣ), db = Σ dy (the tangent carries no bias);
///   - activation y = s(x), ẏ = s'(x) ẋ:
///       dx = s'(x) dy + s''(x) ẋ dẏ,   dẋ = s'(x) dẏ;
///   - pool: both streams unpooled.
/// With dy = 0 and dẏ = v at the output this is the gradient of ⟨v, ẏ⟩, the
/// directional derivative along ẋ of ⟨v, y⟩: for ẋ = the input gradient's
/// adjoint it gives the parameter and input gradients of a function of
/// ∇ₓ⟨v, y⟩ (the gradient penalty, nn/wgan.hpp).  s'' comes from
/// activation_second_derivative (LeakyReLU: 0 a.e.; tanh, sigmoid, softplus,
/// ELU in closed form).
///
/// Workspaces grow to the largest batch seen and are reused (no allocation
/// for batches of at most that size).  Not thread-safe (one pass at a time).
template <class Scalar, class MemorySpace, class Act = LeakyReluOp>
class GraphNet {
  static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value,
                "lensing::nn::GraphNet: Scalar must be float or double");
  static_assert(detail::has_second_derivative<Act, Scalar>::value,
                "lensing::nn::GraphNet: the activation needs activation_second_derivative(op, x, y) "
                "(LeakyReluOp, ReluOp, TanhOp, SigmoidOp, SoftplusOp, EluOp have one)");

 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;
  using matrix_type = View2D<Scalar, MemorySpace>;
  using vector_type = ParamVector<Scalar, MemorySpace>;
  using batch_type = GraphBatch<Scalar, MemorySpace>;
  using activation_type = Act;

  /// Network of `spec`; throws std::invalid_argument for a width < 1.
  explicit GraphNet(GraphNetSpec const& spec, Act act = Act{}) : spec_(spec), act_(act) {
    char const* where = "lensing::nn::GraphNet";
    check_count(spec.in_features, 1, where, "in_features");
    check_count(spec.out_features, 1, where, "out_features");
    int f = spec.in_features;
    long off = 0;
    bool per_graph = false;
    auto add = [&](GraphStageKind k, int out, long np) {
      stages_.push_back(detail::GraphStage{k, f, out, off, np, per_graph});
      off += np;
      f = out;
    };
    for (int w : spec.conv_widths) {
      check_count(w, 1, where, "conv width");
      add(GraphStageKind::conv, w, 2L * w * f + w);
      add(GraphStageKind::activation, w, 0);
    }
    if (spec.pool) {
      add(GraphStageKind::pool, f, 0);  // its input rows are nodes
      per_graph = true;
    }
    for (int w : spec.dense_widths) {
      check_count(w, 1, where, "dense width");
      add(GraphStageKind::dense, w, long(w) * f + w);
      add(GraphStageKind::activation, w, 0);
    }
    add(GraphStageKind::dense, spec.out_features, long(spec.out_features) * f + spec.out_features);
    params_ = vector_type("lensing::nn::GraphNet::params", off);
    grads_ = vector_type("lensing::nn::GraphNet::grads", off);
    out_.resize(stages_.size());
    tan_.resize(stages_.size());
    adj_.resize(stages_.size());
    adjt_.resize(stages_.size());
  }

  GraphNetSpec const& spec() const { return spec_; }
  int in_features() const { return spec_.in_features; }
  int out_features() const { return spec_.out_features; }
  Act const& activation() const { return act_; }
  long num_params() const { return long(params_.extent(0)); }
  vector_type parameters() const { return params_; }
  vector_type gradients() const { return grads_; }
  /// Number of layers with parameters (the blocks of the weight file).
  int num_layers() const {
    int n = 0;
    for (auto const& s : stages_)
      n += s.np > 0 ? 1 : 0;
    return n;
  }

  /// Xavier-uniform (graph convolutions, as GraphConv) and He-normal (dense)
  /// weights, zero biases; parameter block l gets child_seed(seed, l).
  void initialize(std::uint64_t seed) {
    std::uint64_t l = 0;
    for (auto const& s : stages_) {
      if (s.np == 0) continue;
      std::uint64_t const ls = child_seed(seed, l++);
      long const nw = long(s.out) * s.in;
      if (s.kind == GraphStageKind::conv) {
        for (long m = 0; m < 2; ++m)
          nn::initialize(slice(params_, s.poff + m * nw, nw), Init::xavier_uniform, s.in, s.out, ls + std::uint64_t(m));
        Kokkos::deep_copy(slice(params_, s.poff + 2 * nw, s.out), Scalar(0));
      } else {
        nn::initialize(slice(params_, s.poff, nw), Init::he_normal, s.in, s.out, ls);
        Kokkos::deep_copy(slice(params_, s.poff + nw, s.out), Scalar(0));
      }
    }
  }

  /// f(block) for every layer with parameters, in order; block has
  /// parameters(), num_params(), state(), num_state() (serialize.hpp's
  /// save_weights / load_weights take a GraphNet).
  template <class F>
  void for_each_layer(F&& f) const {
    for (auto const& s : stages_)
      if (s.np > 0) f(detail::GraphNetBlock<Scalar, MemorySpace>{slice(params_, s.poff, s.np)});
  }

  /// Rows of the output for `batch`: G when the network pools, else N.
  int output_rows(batch_type const& batch) const { return spec_.pool ? batch.num_graphs() : batch.num_nodes(); }

  //--------------------------------------------------------------------------
  // Passes.

  /// y = net(x) for x (N x in_features), N = batch.num_nodes(); returns y
  /// (output_rows x out_features), valid until the next forward.
  template <class ExecutionSpace>
  matrix_type forward(ExecutionSpace const& space, batch_type const& batch, matrix_type const& x) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::GraphNet::forward: the views are not accessible from this execution space");
    char const* where = "lensing::nn::GraphNet::forward";
    detail::check_matrix(x, batch.num_nodes(), spec_.in_features, where, "x");
    reserve(batch);
    for (std::size_t s = 0; s < stages_.size(); ++s) {
      Scalar const* in = s == 0 ? x.data() : out_[s - 1].data();
      stage_forward(space, batch, s, in, out_[s].data());
    }
    forward_rows_ = batch.num_nodes();
    tangent_ready_ = false;
    return output_view(out_.back(), batch);
  }

  /// The tangent ẏ = (∂y/∂x) ẋ at the x of the last forward (same batch);
  /// ẋ (N x in_features).  Returns ẏ (output_rows x out_features).
  template <class ExecutionSpace>
  matrix_type forward_tangent(ExecutionSpace const& space, batch_type const& batch, matrix_type const& xdot) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::GraphNet::forward_tangent: the views are not accessible from this execution space");
    char const* where = "lensing::nn::GraphNet::forward_tangent";
    check_argument(forward_rows_ == batch.num_nodes(), where, "call forward on this batch first");
    detail::check_matrix(xdot, batch.num_nodes(), spec_.in_features, where, "xdot");
    for (std::size_t s = 0; s < stages_.size(); ++s) {
      Scalar const* in = s == 0 ? xdot.data() : tan_[s - 1].data();
      Scalar const* primal_in = s == 0 ? nullptr : out_[s - 1].data();
      stage_tangent(space, batch, s, in, primal_in, tan_[s].data());
    }
    tangent_ready_ = true;
    return output_view(tan_.back(), batch);
  }

  /// Back-propagate dy = ∂L/∂y (output_rows x out_features) after forward(x):
  /// dx = ∂L/∂x when dx is not empty (N x in_features, overwritten) and the
  /// parameter gradient into gradients() as `mode` says.
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, batch_type const& batch, matrix_type const& x, matrix_type const& dy,
                matrix_type const& dx, ParamGrad mode) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::GraphNet::backward: the views are not accessible from this execution space");
    char const* where = "lensing::nn::GraphNet::backward";
    check_pass(batch, x, dx, where);
    detail::check_matrix(dy, output_rows(batch), spec_.out_features, where, "dy");
    if (mode == ParamGrad::overwrite) Kokkos::deep_copy(space, grads_, Scalar(0));
    bool const pg = mode != ParamGrad::none;
    for (std::size_t r = 0; r < stages_.size(); ++r) {
      std::size_t const s = stages_.size() - 1 - r;
      Scalar const* in = s == 0 ? x.data() : out_[s - 1].data();
      Scalar const* d = s + 1 == stages_.size() ? dy.data() : adj_[s].data();
      Scalar* din = s == 0 ? dx.data() : adj_[s - 1].data();
      stage_backward(space, batch, s, in, d, din, pg);
    }
  }

  /// Back-propagate (dy, dẏ) = (∂L/∂y, ∂L/∂ẏ) through the pair (y, ẏ) of the
  /// last forward(x) and forward_tangent(ẋ): dx = ∂L/∂x and dẋ = ∂L/∂ẋ when
  /// not empty (overwritten), the parameter gradient into gradients() as
  /// `mode` says.  An empty dy means dy = 0.
  template <class ExecutionSpace>
  void backward_tangent(ExecutionSpace const& space, batch_type const& batch, matrix_type const& x,
                        matrix_type const& xdot, matrix_type const& dy, matrix_type const& dydot, matrix_type const& dx,
                        matrix_type const& dxdot, ParamGrad mode) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::GraphNet::backward_tangent: the views are not accessible from this execution space");
    char const* where = "lensing::nn::GraphNet::backward_tangent";
    check_pass(batch, x, dx, where);
    check_argument(tangent_ready_, where, "call forward_tangent after forward first");
    detail::check_matrix(xdot, batch.num_nodes(), spec_.in_features, where, "xdot");
    if (dxdot.data() != nullptr) detail::check_matrix(dxdot, batch.num_nodes(), spec_.in_features, where, "dxdot");
    if (dy.data() != nullptr) detail::check_matrix(dy, output_rows(batch), spec_.out_features, where, "dy");
    detail::check_matrix(dydot, output_rows(batch), spec_.out_features, where, "dydot");
    if (mode == ParamGrad::overwrite) Kokkos::deep_copy(space, grads_, Scalar(0));
    bool const pg = mode != ParamGrad::none;
    std::size_t const last = stages_.size() - 1;
    if (dy.data() == nullptr) Kokkos::deep_copy(space, adj_[last], Scalar(0));
    for (std::size_t r = 0; r < stages_.size(); ++r) {
      std::size_t const s = last - r;
      Scalar const* in = s == 0 ? x.data() : out_[s - 1].data();
      Scalar const* ind = s == 0 ? xdot.data() : tan_[s - 1].data();
      Scalar const* d = s == last && dy.data() != nullptr ? dy.data() : adj_[s].data();
      Scalar const* dd = s == last ? dydot.data() : adjt_[s].data();
      Scalar* din = s == 0 ? dx.data() : adj_[s - 1].data();
      Scalar* dind = s == 0 ? dxdot.data() : adjt_[s - 1].data();
      stage_backward_tangent(space, batch, s, in, ind, d, dd, din, dind, pg);
    }
  }

  // Implementation (public for nvcc's lambdas).

  static vector_type slice(vector_type const& v, long off, long n) {
    return vector_type(Kokkos::subview(v, Kokkos::make_pair(off, off + n)));
  }

  template <class ExecutionSpace>
  void stage_forward(ExecutionSpace const& space, batch_type const& b, std::size_t si, Scalar const* x, Scalar* y) {
    auto const& s = stages_[si];
    long const rows = s.per_graph ? b.num_graphs() : b.num_nodes(), fi = s.in, fo = s.out;
    Scalar const* p = params_.data() + s.poff;
    switch (s.kind) {
      case GraphStageKind::conv: {
        long const nw = fo * fi;
        gemm(space, false, true, rows, fo, fi, Scalar(1), x, fi, p + nw, fi, Scalar(0), t_.data(), fo);  // T = H W₁ᵀ
        gemm(space, false, true, rows, fo, fi, Scalar(1), x, fi, p, fi, Scalar(0), y, fo);               // H W₀ᵀ
        detail::csr_times(space, rows, b.adjacency.row_ptr.data(), b.adjacency.col.data(), b.adjacency.val.data(),
                          static_cast<Scalar const*>(t_.data()), y, fo, p + 2 * nw, true,
                          "lensing::nn::GraphNet::conv_forward");
        break;
      }
      case GraphStageKind::dense:
        detail::fill_bias(space, rows, fo, p + fo * fi, y);
        gemm(space, false, true, rows, fo, fi, Scalar(1), x, fi, p, fi, Scalar(1), y, fo);
        break;
      case GraphStageKind::activation: {
        Act const op = act_;
        detail::for_each_element(
            "lensing::nn::GraphNet::activation", space, rows * fo, KOKKOS_LAMBDA(long i) { y[i] = op.value(x[i]); });
        break;
      }
      case GraphStageKind::pool:
        detail::graph_pool_raw(space, b, x, fi, y, fo, fo, GraphPoolMode::mean);
        break;
    }
  }

  /// Tangent of stage si: xd the input tangent, x the input (primal; nullptr for stage 0, unused then).
  template <class ExecutionSpace>
  void stage_tangent(ExecutionSpace const& space, batch_type const& b, std::size_t si, Scalar const* xd,
                     Scalar const* x, Scalar* yd) {
    auto const& s = stages_[si];
    long const rows = s.per_graph ? b.num_graphs() : b.num_nodes(), fi = s.in, fo = s.out;
    Scalar const* p = params_.data() + s.poff;
    switch (s.kind) {
      case GraphStageKind::conv: {
        long const nw = fo * fi;
        gemm(space, false, true, rows, fo, fi, Scalar(1), xd, fi, p + nw, fi, Scalar(0), t_.data(), fo);
        gemm(space, false, true, rows, fo, fi, Scalar(1), xd, fi, p, fi, Scalar(0), yd, fo);
        detail::csr_times(space, rows, b.adjacency.row_ptr.data(), b.adjacency.col.data(), b.adjacency.val.data(),
                          static_cast<Scalar const*>(t_.data()), yd, fo, static_cast<Scalar const*>(nullptr), true,
                          "lensing::nn::GraphNet::conv_tangent");
        break;
      }
      case GraphStageKind::dense:
        gemm(space, false, true, rows, fo, fi, Scalar(1), xd, fi, p, fi, Scalar(0), yd, fo);
        break;
      case GraphStageKind::activation: {
        // An activation is never the first stage, so x (its input) exists.
        Act const op = act_;
        Scalar const* y = out_[si].data();
        detail::for_each_element(
            "lensing::nn::GraphNet::activation_tangent", space, rows * fo,
            KOKKOS_LAMBDA(long i) { yd[i] = op.derivative(x[i], y[i]) * xd[i]; });
        break;
      }
      case GraphStageKind::pool:
        detail::graph_pool_raw(space, b, xd, fi, yd, fo, fo, GraphPoolMode::mean);
        break;
    }
  }

  /// Reverse of a linear stage for one stream: parameter gradients (weights
  /// only when !bias) and the input adjoint din (when not null).
  template <class ExecutionSpace>
  void linear_reverse(ExecutionSpace const& space, batch_type const& b, std::size_t si, Scalar const* x,
                      Scalar const* d, Scalar* din, bool pgrad, bool bias) {
    auto const& s = stages_[si];
    long const rows = s.per_graph ? b.num_graphs() : b.num_nodes(), fi = s.in, fo = s.out;
    Scalar const* p = params_.data() + s.poff;
    Scalar* g = grads_.data() + s.poff;
    switch (s.kind) {
      case GraphStageKind::conv: {
        long const nw = fo * fi;
        // dT = Aᵀ dY over the transpose.
        detail::csr_times(space, rows, b.trow_ptr.data(), b.tcol.data(), b.tval.data(), d, dt_.data(), fo,
                          static_cast<Scalar const*>(nullptr), false, "lensing::nn::GraphNet::conv_backward");
        if (pgrad) {
          gemm(space, true, false, fo, fi, rows, Scalar(1), d, fo, x, fi, Scalar(1), g, fi);                // dW₀
          gemm(space, true, false, fo, fi, rows, Scalar(1), dt_.data(), fo, x, fi, Scalar(1), g + nw, fi);  // dW₁
          if (bias) detail::column_sums_add(space, rows, fo, d, g + 2 * nw);
        }
        if (din != nullptr) {
          gemm(space, false, false, rows, fi, fo, Scalar(1), d, fo, p, fi, Scalar(0), din, fi);
          gemm(space, false, false, rows, fi, fo, Scalar(1), dt_.data(), fo, p + nw, fi, Scalar(1), din, fi);
        }
        break;
      }
      case GraphStageKind::dense:
        if (pgrad) {
          gemm(space, true, false, fo, fi, rows, Scalar(1), d, fo, x, fi, Scalar(1), g, fi);
          if (bias) detail::column_sums_add(space, rows, fo, d, g + fo * fi);
        }
        if (din != nullptr) gemm(space, false, false, rows, fi, fo, Scalar(1), d, fo, p, fi, Scalar(0), din, fi);
        break;
      case GraphStageKind::pool:
        if (din != nullptr) detail::graph_unpool_raw(space, b, d, fo, din, fi, fi, GraphPoolMode::mean, false);
        break;
      case GraphStageKind::activation:
        break;
    }
  }

  template <class ExecutionSpace>
  void stage_backward(ExecutionSpace const& space, batch_type const& b, std::size_t si, Scalar const* x,
                      Scalar const* d, Scalar* din, bool pgrad) {
    auto const& s = stages_[si];
    if (s.kind != GraphStageKind::activation) {
      linear_reverse(space, b, si, x, d, din, pgrad, true);
      return;
    }
    if (din == nullptr) return;
    long const rows = s.per_graph ? b.num_graphs() : b.num_nodes();
    Act const op = act_;
    Scalar const* y = out_[si].data();
    detail::for_each_element(
        "lensing::nn::GraphNet::activation_backward", space, rows * s.out,
        KOKKOS_LAMBDA(long i) { din[i] = op.derivative(x[i], y[i]) * d[i]; });
  }

  template <class ExecutionSpace>
  void stage_backward_tangent(ExecutionSpace const& space, batch_type const& b, std::size_t si, Scalar const* x,
                              Scalar const* xd, Scalar const* d, Scalar const* dd, Scalar* din, Scalar* dind,
                              bool pgrad) {
    auto const& s = stages_[si];
    if (s.kind != GraphStageKind::activation) {
      linear_reverse(space, b, si, x, d, din, pgrad, true);      // primal stream (with the bias)
      linear_reverse(space, b, si, xd, dd, dind, pgrad, false);  // tangent stream: same weights, no bias
      return;
    }
    long const rows = s.per_graph ? b.num_graphs() : b.num_nodes();
    Act const op = act_;
    Scalar const* y = out_[si].data();
    if (din != nullptr)
      detail::for_each_element(
          "lensing::nn::GraphNet::activation_backward_tangent", space, rows * s.out, KOKKOS_LAMBDA(long i) {
            din[i] = op.derivative(x[i], y[i]) * d[i] + activation_second_derivative(op, x[i], y[i]) * xd[i] * dd[i];
          });
    if (dind != nullptr)
      detail::for_each_element(
          "lensing::nn::GraphNet::activation_backward_tangent_dot", space, rows * s.out,
          KOKKOS_LAMBDA(long i) { dind[i] = op.derivative(x[i], y[i]) * dd[i]; });
  }

 private:
  void check_pass(batch_type const& batch, matrix_type const& x, matrix_type const& dx, char const* where) const {
    check_argument(forward_rows_ == batch.num_nodes(), where, "call forward on this batch first");
    detail::check_matrix(x, batch.num_nodes(), spec_.in_features, where, "x");
    if (dx.data() != nullptr) detail::check_matrix(dx, batch.num_nodes(), spec_.in_features, where, "dx");
  }
  /// Buffers for `batch` (grown, never shrunk).
  void reserve(batch_type const& batch) {
    long const n = batch.num_nodes(), g = batch.num_graphs();
    long tmax = 1;
    for (std::size_t s = 0; s < stages_.size(); ++s) {
      long const need = (stages_[s].per_graph || stages_[s].kind == GraphStageKind::pool ? g : n) * stages_[s].out;
      grow(out_[s], need, "lensing::nn::GraphNet::out");
      grow(tan_[s], need, "lensing::nn::GraphNet::tangent");
      grow(adj_[s], need, "lensing::nn::GraphNet::adjoint");
      grow(adjt_[s], need, "lensing::nn::GraphNet::adjoint_tangent");
      if (stages_[s].kind == GraphStageKind::conv) tmax = std::max(tmax, n * stages_[s].out);
    }
    grow(t_, tmax, "lensing::nn::GraphNet::t");
    grow(dt_, tmax, "lensing::nn::GraphNet::dt");
  }
  static void grow(vector_type& v, long n, char const* label) {
    if (long(v.extent(0)) < n) v = vector_type(std::string(label), n);
  }
  matrix_type output_view(vector_type const& v, batch_type const& b) const {
    return matrix_type(v.data(), output_rows(b), spec_.out_features);
  }

  GraphNetSpec spec_;
  Act act_;
  std::vector<detail::GraphStage> stages_;
  vector_type params_, grads_;
  std::vector<vector_type> out_, tan_, adj_, adjt_;
  vector_type t_, dt_;
  long forward_rows_ = -1;
  bool tangent_ready_ = false;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_GRAPH_NET_HPP
