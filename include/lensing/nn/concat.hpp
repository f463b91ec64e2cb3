#ifndef LENSING_NN_CONCAT_HPP
#define LENSING_NN_CONCAT_HPP

#include <lensing/nn/layer.hpp>
#include <lensing/nn/sequential.hpp>

#include <type_traits>

namespace lensing {
namespace nn {

/// Two branches on the same input, outputs concatenated along channels:
/// y = [A(x), B(x)] (an Inception-style block; Szegedy et al. 2015,
/// arXiv:1409.4842; for feature vectors (N, F, 1, 1) the channels are the
/// features, torch.cat(dim=1)).
///
/// A and B model the Layer archetype (single layers or Sequentials built for
/// the block's input shape), same scalar type and memory space; their
/// outputs (N, C_A, H, W) and (N, C_B, H, W) must agree in N, H, W, and the
/// block's output is (N, C_A + C_B, H, W) with y[n, :C_A] = A(x)[n],
/// y[n, C_A:] = B(x)[n].  Backward: dy is split the same way and
/// dx = (∂A/∂x)ᵀ dy_A + (∂B/∂x)ᵀ dy_B.  Parameters, flat: A's then B's;
/// state likewise.  Buffers (branch outputs, the split dy, B's dx) are
/// prepared by prepare() for the input shape (any batch size).
template <class A, class B>
class Concat : public LayerBase<typename A::scalar_type, typename A::memory_space> {
  using Scalar = typename A::scalar_type;
  using MemorySpace = typename A::memory_space;
  using base = LayerBase<Scalar, MemorySpace>;
  static_assert(check_layer<A>() && check_layer<B>(),
                "lensing::nn::Concat: both branches must model the Layer archetype");
  static_assert(std::is_same<typename B::scalar_type, Scalar>::value,
                "lensing::nn::Concat: both branches must have the same scalar type");
  static_assert(std::is_same<typename B::memory_space, MemorySpace>::value,
                "lensing::nn::Concat: both branches must have the same memory space");

 public:
  using typename base::tensor_type;
  using typename base::vector_type;

  Concat(A const& a, B const& b) : a_(a), b_(b) {
    na_ = a_.num_params();
    sa_ = a_.num_state();
    this->params_ = vector_type("lensing::nn::Concat::params", na_ + b_.num_params());
    state_ = vector_type("lensing::nn::Concat::state", sa_ + b_.num_state());
    bind_children();
  }

  Shape4 output_shape(Shape4 const& in) const {
    char const* where = "lensing::nn::Concat";
    Shape4 const oa = a_.output_shape(in), ob = b_.output_shape(in);
    check_argument(oa.n == ob.n && oa.h == ob.h && oa.w == ob.w, where,
                   "the branch outputs " + oa.str() + " and " + ob.str() + " differ in batch or spatial size");
    return Shape4{oa.n, oa.c + ob.c, oa.h, oa.w};
  }
  /// Prepare both branches and the buffers for inputs of shape `in` (what
  /// forward does on a new input shape): the buffers are slices of storage
  /// kept at the largest batch seen (detail::batch_slice), so alternating
  /// batch sizes do not reallocate.
  void prepare(Shape4 const& in) {
    if (in == prepared_ && ya_.data() != nullptr) return;
    char const* where = "lensing::nn::Concat";
    output_shape(in);
    a_.prepare(in);
    b_.prepare(in);
    Shape4 const oa = a_.output_shape(in), ob = b_.output_shape(in);
    ya_ = detail::batch_slice(ya_store_, oa, where, "ya");
    yb_ = detail::batch_slice(yb_store_, ob, where, "yb");
    dya_ = detail::batch_slice(dya_store_, oa, where, "dya");
    dyb_ = detail::batch_slice(dyb_store_, ob, where, "dyb");
    dxb_ = detail::batch_slice(dxb_store_, in, where, "dxb");
    prepared_ = in;
  }

  long num_state() const { return long(state_.extent(0)); }
  vector_type state() const { return state_; }
  void bind_parameters(vector_type const& p) {
    base::bind_parameters(p);
    bind_children();
  }
  void bind_state(vector_type const& s) {
    check_argument(long(s.extent(0)) == num_state(), "lensing::nn::Concat::bind_state",
                   "vector has " + std::to_string(s.extent(0)) + " elements, expected " + std::to_string(num_state()));
    if (num_state() > 0) Kokkos::deep_copy(s, state_);
    state_ = s;
    bind_children();
  }
  void initialize(std::uint64_t seed) {
    a_.initialize(child_seed(seed, 0));
    b_.initialize(child_seed(seed, 1));
  }
  void set_training(bool t) {
    base::set_training(t);
    a_.set_training(t);
    b_.set_training(t);
  }
  void set_mc(bool on) {
    if constexpr (detail::has_set_mc<A>::value) a_.set_mc(on);
    if constexpr (detail::has_set_mc<B>::value) b_.set_mc(on);
  }
  /// Re-seed the dropout layers of both branches as initialize(seed) would.
  void reseed_dropout(std::uint64_t seed) {
    detail::reseed_dropout_of(a_, child_seed(seed, 0));
    detail::reseed_dropout_of(b_, child_seed(seed, 1));
  }
  A& first() { return a_; }
  B& second() { return b_; }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    detail::check_forward(*this, x, y, "lensing::nn::Concat::forward");
    prepare(shape_of(x));
    a_.forward(space, x, ya_);
    b_.forward(space, x, yb_);
    join_samples(space, ya_, yb_, y);
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::Concat::backward");
    check_argument(shape_of(x) == prepared_, "lensing::nn::Concat::backward",
                   "x has shape " + shape_of(x).str() + ", the last forward had " + prepared_.str());
    split_samples(space, dy, dya_, dyb_);
    bool const want_dx = dx.data() != nullptr;
    a_.backward(space, x, ya_, dya_, dx, vector_type(Kokkos::subview(dparams, Kokkos::make_pair(0L, na_))));
    b_.backward(space, x, yb_, dyb_, want_dx ? dxb_ : tensor_type(),
                vector_type(Kokkos::subview(dparams, Kokkos::make_pair(na_, this->num_params()))));
    if (want_dx) accumulate(space, dxb_, dx);
  }

  //--------------------------------------------------------------------------
  // Implementation, public for nvcc.

  /// dx += e.
  template <class ExecutionSpace>
  static void accumulate(ExecutionSpace const& space, tensor_type const& e, tensor_type const& dx) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>, "lensing::nn::Concat: inaccessible tensors");
    Scalar const* ep = e.data();
    Scalar* dp = dx.data();
    Kokkos::parallel_for(
        "lensing::nn::Concat::accumulate",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(dx.size())),
        KOKKOS_LAMBDA(long i) { dp[i] += ep[i]; });
  }

 private:
  void bind_children() {
    long const np = this->num_params(), ns = num_state();
    a_.bind_parameters(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(0L, na_))));
    b_.bind_parameters(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(na_, np))));
    a_.bind_state(vector_type(Kokkos::subview(state_, Kokkos::make_pair(0L, sa_))));
    b_.bind_state(vector_type(Kokkos::subview(state_, Kokkos::make_pair(sa_, ns))));
  }

  A a_;
  B b_;
  long na_ = 0, sa_ = 0;
  vector_type state_;
  Shape4 prepared_{};
  // *_store_: buffers at capacity; ya_ ... dxb_: their slices for prepared_.
  tensor_type ya_store_, yb_store_, dya_store_, dyb_store_, dxb_store_;
  tensor_type ya_, yb_, dya_, dyb_, dxb_;
};

/// Deduce a Concat from its branches: make_concat(a, b).
template <class A, class B>
Concat<A, B> make_concat(A const& a, B const& b) {
  return Concat<A, B>(a, b);
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_CONCAT_HPP
