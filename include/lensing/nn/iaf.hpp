#ifndef LENSING_NN_IAF_HPP
#define LENSING_NN_IAF_HPP

/// \file
/// Inverse autoregressive flow (Kingma, Salimans, Jozefowicz, Chen,
/// Sutskever & Welling 2016, arXiv:1606.04934): a stack of invertible steps
///   [m, s] = MADE(z),  σ = sigmoid(s + g),  z' = σ ⊙ z + (1 − σ) ⊙ m,
///   log |det ∂z'/∂z| = Σ_i log σ_i,
/// with MADE networks (made.hpp) so that m_i, s_i depend on z_{<i} only: the
/// Jacobian is triangular with diagonal σ.  g is a fixed gate bias (the
/// paper's "forget gate bias", which starts the flow near the identity:
/// σ ≈ sigmoid(g)); g = 0 is the bare formula.  Between steps the order of
/// the coordinates is reversed (a permutation, |det| = 1), so that every
/// coordinate gets to depend on every other.
///
/// Both the step and the flow are Layers (layer.hpp) on rank-4 tensors
/// (N, D + 1, 1, 1): per sample the D coordinates z followed by an
/// accumulated log-determinant ℓ, mapped to [z', ℓ + Σ log σ].  So a flow
/// of K steps takes [z_0, 0] to [z_K, log |det ∂z_K/∂z_0|], and its backward
/// — the vector-Jacobian product of that map — gives the gradient of any
/// L(z_K, log det) with respect to z_0 and to every MADE weight (the
/// log-determinant's gradient included), which is what a reparameterised
/// ELBO with q(z_K) = q_0(z_0) / |det| needs (iaf_variational.hpp).
///
/// Backward of a step, for upstream (dz', dℓ'):
///   dm_i = dz'_i (1 − σ_i),
///   ds_i = dz'_i σ_i (1 − σ_i) (z_i − m_i) + dℓ' (1 − σ_i)   (d log σ/ds = 1 − σ),
///   dz_i = dz'_i σ_i + [MADE backward of (dm, ds)]_i,   dℓ = dℓ'.

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/nn/layer.hpp>
#include <lensing/nn/made.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace lensing {
namespace nn {

/// One IAF step, a Layer on (N, D + 1, 1, 1) = [z, ℓ] per sample (see the
/// file comment), optionally reversing the order of z first (reverse_input:
/// the step reads z_rev[i] = z[D − 1 − i] and the MADE's autoregressive order
/// is that of z_rev).  Parameters: the MADE's (made.hpp, D inputs, two
/// hidden layers of `hidden` units, 2D outputs: m then s).
template <class Scalar, class MemorySpace>
class IafStep : public LayerBase<Scalar, MemorySpace> {
  using base = LayerBase<Scalar, MemorySpace>;

 public:
  using typename base::tensor_type;
  using typename base::vector_type;
  using made_type = Made<Scalar, MemorySpace>;

  IafStep(int d, int hidden, bool reverse_input = false, double gate_bias = 1.0)
      : d_(d), reverse_(reverse_input), gate_(gate_bias), made_(make_made<Scalar, MemorySpace>(d, hidden, 2)) {
    check_argument(std::isfinite(gate_bias), "lensing::nn::IafStep", "gate_bias must be finite");
    this->params_ = made_.parameters();
  }
  int dimension() const { return d_; }
  bool reverses_input() const { return reverse_; }
  double gate_bias() const { return gate_; }
  made_type& made() { return made_; }

  Shape4 output_shape(Shape4 const& in) const {
    check_valid_shape(in, "lensing::nn::IafStep");
    check_argument(in.per_sample() == d_ + 1L, "lensing::nn::IafStep",
                   "input " + in.str() + " must hold D + 1 = " + std::to_string(d_ + 1) +
                       " values per sample (z, then the accumulated log-determinant)");
    return Shape4{in.n, d_ + 1, 1, 1};
  }
  void prepare(Shape4 const& in) {
    if (prepared_ && in == in_) return;
    char const* where = "lensing::nn::IafStep";
    output_shape(in);
    Shape4 const zs{in.n, d_, 1, 1};
    made_.prepare(zs);
    z_ = detail::batch_slice(z_store_, zs, where, "z");
    dzd_ = detail::batch_slice(dzd_store_, zs, where, "dz_direct");
    dzm_ = detail::batch_slice(dzm_store_, zs, where, "dz_made");
    in_ = in;
    prepared_ = true;
  }
  void bind_parameters(vector_type const& p) {
    check_argument(long(p.extent(0)) == this->num_params(), "lensing::nn::IafStep::bind_parameters",
                   "vector has " + std::to_string(p.extent(0)) + " elements, the step has " +
                       std::to_string(this->num_params()) + " parameters");
    made_.bind_parameters(p);
    this->params_ = p;
  }
  void initialize(std::uint64_t seed) { made_.initialize(seed); }
  void set_training(bool t) {
    base::set_training(t);
    made_.set_training(t);
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::IafStep::forward: inaccessible tensors");
    prepare(shape_of(x));
    detail::check_forward(*this, x, y, "lensing::nn::IafStep::forward");
    long const n = x.extent(0), d = d_;
    bool const rev = reverse_;
    Scalar const* xp = x.data();
    Scalar* zp = z_.data();
    Kokkos::parallel_for(
        "lensing::nn::IafStep::gather", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * d),
        KOKKOS_LAMBDA(long k) {
          long const b = k / d, i = k % d;
          zp[k] = xp[b * (d + 1) + (rev ? d - 1 - i : i)];
        });
    tensor_type const h = made_.forward(space, z_);
    Scalar const* hp = h.data();
    Scalar* yp = y.data();
    Scalar const g = Scalar(gate_);
    Kokkos::parallel_for(
        "lensing::nn::IafStep::forward", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n),
        KOKKOS_LAMBDA(long b) {
          Scalar ld = xp[b * (d + 1) + d];
          for (long i = 0; i < d; ++i) {
            Scalar const m = hp[b * 2 * d + i], s = hp[b * 2 * d + d + i] + g;
            Scalar sig, log_sig;
            sigmoid_and_log(s, sig, log_sig);
            yp[b * (d + 1) + i] = sig * zp[b * d + i] + (Scalar(1) - sig) * m;
            ld += log_sig;
          }
          yp[b * (d + 1) + d] = ld;
        });
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::IafStep::backward: inaccessible tensors");
    char const* where = "lensing::nn::IafStep::backward";
    check_argument(prepared_ && shape_of(x) == in_, where,
                   "x has shape " + shape_of(x).str() + ", the last forward had " + in_.str());
    detail::check_backward(*this, x, y, dy, dx, dparams, where);
    long const n = x.extent(0), d = d_;
    bool const rev = reverse_;
    Scalar const* hp = made_.output().data();
    Scalar* dh = made_.output_gradient().data();
    Scalar const* zp = z_.data();
    Scalar const* dyp = dy.data();
    Scalar* dzd = dzd_.data();
    Scalar const g = Scalar(gate_);
    Kokkos::parallel_for(
        "lensing::nn::IafStep::backward", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * d),
        KOKKOS_LAMBDA(long k) {
          long const b = k / d, i = k % d;
          Scalar const m = hp[b * 2 * d + i], s = hp[b * 2 * d + d + i] + g;
          Scalar sig, log_sig;
          sigmoid_and_log(s, sig, log_sig);
          Scalar const dzp = dyp[b * (d + 1) + i], dl = dyp[b * (d + 1) + d];
          dh[b * 2 * d + i] = dzp * (Scalar(1) - sig);
          dh[b * 2 * d + d + i] = dzp * sig * (Scalar(1) - sig) * (zp[k] - m) + dl * (Scalar(1) - sig);
          dzd[k] = dzp * sig;
        });
    bool const want_dx = dx.data() != nullptr;
    made_.backward(space, z_, want_dx ? dzm_ : tensor_type());
    if (this->num_params() > 0) Kokkos::deep_copy(space, dparams, made_.gradients());
    if (!want_dx) return;
    Scalar const* dzm = dzm_.data();
    Scalar* dxp = dx.data();
    Kokkos::parallel_for(
        "lensing::nn::IafStep::scatter", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n),
        KOKKOS_LAMBDA(long b) {
          for (long i = 0; i < d; ++i)
            dxp[b * (d + 1) + (rev ? d - 1 - i : i)] = dzd[b * d + i] + dzm[b * d + i];
          dxp[b * (d + 1) + d] = dyp[b * (d + 1) + d];
        });
  }

  /// σ = sigmoid(s) and log σ, stable for any s.
  KOKKOS_INLINE_FUNCTION static void sigmoid_and_log(Scalar s, Scalar& sig, Scalar& log_sig) {
    if (s >= Scalar(0)) {
      Scalar const e = lensing::math::exp(-s);
      sig = Scalar(1) / (Scalar(1) + e);
      log_sig = -lensing::math::log1p(e);
    } else {
      Scalar const e = lensing::math::exp(s);
      sig = e / (Scalar(1) + e);
      log_sig = s - lensing::math::log1p(e);
    }
  }

 private:
  int d_;
  bool reverse_;
  double gate_;
  made_type made_;
  bool prepared_ = false;
  Shape4 in_;
  tensor_type z_store_, dzd_store_, dzm_store_, z_, dzd_, dzm_;
};

/// A K-step inverse autoregressive flow, a Layer on (N, D + 1, 1, 1): [z_0,
/// ℓ] ↦ [z_K, ℓ + log |det ∂z_K/∂z_0|] (see the file comment).  Step k > 0
/// reverses the order of its input (reverse_input = k odd: the order
/// alternates), step 0 reads z_0 in its natural order.  Parameters, flat: the
/// steps' in order.  Takes any batch size.
template <class Scalar, class MemorySpace>
class InverseAutoregressiveFlow : public LayerBase<Scalar, MemorySpace> {
  using base = LayerBase<Scalar, MemorySpace>;

 public:
  using typename base::tensor_type;
  using typename base::vector_type;
  using step_type = IafStep<Scalar, MemorySpace>;

  /// D coordinates, K = steps (>= 1), MADEs with two hidden layers of `hidden` units, gate bias g.
  InverseAutoregressiveFlow(int d, int hidden, int steps, double gate_bias = 1.0) : d_(d) {
    char const* where = "lensing::nn::InverseAutoregressiveFlow";
    check_count(d, 1, where, "d");
    check_count(hidden, 1, where, "hidden");
    check_count(steps, 1, where, "steps");
    long total = 0;
    offsets_.push_back(0);
    for (int k = 0; k < steps; ++k) {
      steps_.emplace_back(d, hidden, k % 2 == 1, gate_bias);
      total += steps_.back().num_params();
      offsets_.push_back(total);
    }
    this->params_ = vector_type("lensing::nn::InverseAutoregressiveFlow::params", total);
    bind_children();
  }
  int dimension() const { return d_; }
  int num_steps() const { return int(steps_.size()); }
  step_type& step(int k) { return steps_.at(std::size_t(k)); }

  Shape4 output_shape(Shape4 const& in) const { return steps_.front().output_shape(in); }
  void prepare(Shape4 const& in) {
    if (prepared_ && in == in_) return;
    output_shape(in);
    std::size_t const k = steps_.size();
    acts_store_.resize(k + 1);
    grads_store_.resize(k + 1);
    acts_.resize(k + 1);
    grads_.resize(k + 1);
    for (std::size_t i = 0; i < k; ++i)
      steps_[i].prepare(in);
    for (std::size_t i = 1; i < k; ++i) {
      acts_[i] = detail::batch_slice(acts_store_[i], in, "lensing::nn::InverseAutoregressiveFlow", "activation");
      grads_[i] = detail::batch_slice(grads_store_[i], in, "lensing::nn::InverseAutoregressiveFlow", "gradient");
    }
    in_ = in;
    prepared_ = true;
  }
  void bind_parameters(vector_type const& p) {
    base::bind_parameters(p);
    bind_children();
  }
  void initialize(std::uint64_t seed) {
    for (std::size_t k = 0; k < steps_.size(); ++k)
      steps_[k].initialize(child_seed(seed, k));
  }
  void set_training(bool t) {
    base::set_training(t);
    for (auto& s : steps_)
      s.set_training(t);
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    prepare(shape_of(x));
    detail::check_forward(*this, x, y, "lensing::nn::InverseAutoregressiveFlow::forward");
    std::size_t const k = steps_.size();
    for (std::size_t i = 0; i < k; ++i)
      steps_[i].forward(space, i == 0 ? x : acts_[i], i + 1 == k ? y : acts_[i + 1]);
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    char const* where = "lensing::nn::InverseAutoregressiveFlow::backward";
    check_argument(prepared_ && shape_of(x) == in_, where,
                   "x has shape " + shape_of(x).str() + ", the last forward had " + in_.str());
    detail::check_backward(*this, x, y, dy, dx, dparams, where);
    std::size_t const k = steps_.size();
    for (std::size_t r = 0; r < k; ++r) {
      std::size_t const i = k - 1 - r;
      steps_[i].backward(space, i == 0 ? x : acts_[i], i + 1 == k ? y : acts_[i + 1], i + 1 == k ? dy : grads_[i + 1],
                         i == 0 ? dx : grads_[i],
                         vector_type(Kokkos::subview(dparams, Kokkos::make_pair(offsets_[i], offsets_[i + 1]))));
    }
  }

 private:
  void bind_children() {
    for (std::size_t i = 0; i < steps_.size(); ++i)
      steps_[i].bind_parameters(
          vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(offsets_[i], offsets_[i + 1]))));
  }

  int d_;
  std::vector<step_type> steps_;
  std::vector<long> offsets_;
  bool prepared_ = false;
  Shape4 in_;
  std::vector<tensor_type> acts_store_, grads_store_, acts_, grads_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_IAF_HPP
