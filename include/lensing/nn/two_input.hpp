#ifndef LENSING_NN_TWO_INPUT_HPP
#define LENSING_NN_TWO_INPUT_HPP

/// \file
/// Networks of two inputs, f(x₁, x₂): two branches whose outputs are
/// flattened, concatenated and fed to a head (the ratio estimators and score
/// networks that take an image and a parameter vector).

#include <lensing/nn/layer.hpp>
#include <lensing/nn/sequential.hpp>

#include <cstdint>
#include <string>
#include <type_traits>

namespace lensing {
namespace nn {

/// f(x₁, x₂) = Head([flatten(A(x₁)), flatten(B(x₂))]).
///
/// A, B and Head model the Layer archetype (single layers or Sequentials,
/// typically a CNN on an image for A and a small MLP on a vector for B), with
/// the same scalar type and memory space.  For x₁ (N, C₁, H₁, W₁) and x₂
/// (N, C₂, H₂, W₂) of the same batch N, the branch outputs (N, P_A) and
/// (N, P_B) per-sample sizes P_A, P_B are joined into z (N, P_A + P_B, 1, 1),
/// z[n] = [A(x₁)[n], B(x₂)[n]] (torch.cat(dim=1) of the flattened outputs),
/// and the output is Head(z).  Backward: dz from the head is split the same
/// way; dx₁ = (∂A/∂x₁)ᵀ dz_A, dx₂ = (∂B/∂x₂)ᵀ dz_B.  Parameters, flat: A's,
/// B's, then Head's; state likewise.
///
/// The same interface as Sequential with two inputs: `forward(space, x1,
/// x2)` returns output() (any batch size; shapes inferred from the inputs,
/// buffers kept at the largest batch seen, as Sequential), and with dL/d(out)
/// in output_gradient(), `backward(space, x1, x2, dx1, dx2)` fills
/// gradients() (overwritten) and dx1, dx2 when given.
template <class A, class B, class Head>
class TwoInput {
  static_assert(check_layer<A>() && check_layer<B>() && check_layer<Head>(),
                "lensing::nn::TwoInput: both branches and the head must model the Layer archetype");

 public:
  using scalar_type = typename A::scalar_type;
  using memory_space = typename A::memory_space;
  using tensor_type = Tensor<scalar_type, memory_space>;
  using vector_type = ParamVector<scalar_type, memory_space>;
  static_assert(std::is_same<typename B::scalar_type, scalar_type>::value &&
                    std::is_same<typename Head::scalar_type, scalar_type>::value,
                "lensing::nn::TwoInput: the branches and the head must have the same scalar type");
  static_assert(std::is_same<typename B::memory_space, memory_space>::value &&
                    std::is_same<typename Head::memory_space, memory_space>::value,
                "lensing::nn::TwoInput: the branches and the head must have the same memory space");

  TwoInput(A const& a, B const& b, Head const& head) : a_(a), b_(b), head_(head) {
    off_[0] = 0;
    off_[1] = a_.num_params();
    off_[2] = off_[1] + b_.num_params();
    off_[3] = off_[2] + head_.num_params();
    soff_[0] = 0;
    soff_[1] = a_.num_state();
    soff_[2] = soff_[1] + b_.num_state();
    soff_[3] = soff_[2] + head_.num_state();
    params_ = vector_type("lensing::nn::TwoInput::parameters", off_[3]);
    dparams_ = vector_type("lensing::nn::TwoInput::gradients", off_[3]);
    state_ = vector_type("lensing::nn::TwoInput::state", soff_[3]);
    bind_all();
  }

  /// Shape of the concatenated features for inputs of shapes in1, in2.
  Shape4 feature_shape(Shape4 const& in1, Shape4 const& in2) const {
    char const* where = "lensing::nn::TwoInput";
    check_valid_shape(in1, where);
    check_valid_shape(in2, where);
    check_argument(in1.n == in2.n, where,
                   "the inputs " + in1.str() + " and " + in2.str() + " have different batch sizes");
    Shape4 const oa = a_.output_shape(in1), ob = b_.output_shape(in2);
    return Shape4{in1.n, int(oa.per_sample() + ob.per_sample()), 1, 1};
  }
  /// Output shape for inputs of shapes in1, in2; throws std::invalid_argument
  /// when a branch or the head cannot take its input.
  Shape4 output_shape(Shape4 const& in1, Shape4 const& in2) const {
    return head_.output_shape(feature_shape(in1, in2));
  }
  /// Prepare the branches, the head and the buffers (forward does it on new shapes).
  void prepare(Shape4 const& in1, Shape4 const& in2) {
    if (prepared_ && in1 == in1_ && in2 == in2_) return;
    char const* where = "lensing::nn::TwoInput";
    Shape4 const zs = feature_shape(in1, in2), os = head_.output_shape(zs);
    a_.prepare(in1);
    b_.prepare(in2);
    head_.prepare(zs);
    Shape4 const oa = a_.output_shape(in1), ob = b_.output_shape(in2);
    ya_ = detail::batch_slice(ya_store_, oa, where, "ya");
    yb_ = detail::batch_slice(yb_store_, ob, where, "yb");
    dya_ = detail::batch_slice(dya_store_, oa, where, "dya");
    dyb_ = detail::batch_slice(dyb_store_, ob, where, "dyb");
    z_ = detail::batch_slice(z_store_, zs, where, "z");
    dz_ = detail::batch_slice(dz_store_, zs, where, "dz");
    out_ = detail::batch_slice(out_store_, os, where, "output");
    dout_ = detail::batch_slice(dout_store_, os, where, "output_gradient");
    in1_ = in1;
    in2_ = in2;
    prepared_ = true;
  }

  long num_params() const { return off_[3]; }
  vector_type parameters() const { return params_; }
  vector_type gradients() const { return dparams_; }
  long num_state() const { return soff_[3]; }
  vector_type state() const { return state_; }
  /// Output of the last forward and the buffer for dL/d(output) that backward reads.
  tensor_type output() const { return out_; }
  tensor_type output_gradient() const { return dout_; }
  /// The concatenated features z of the last forward.
  tensor_type features() const { return z_; }
  A& first() { return a_; }
  B& second() { return b_; }
  Head& head() { return head_; }
  /// f(A), f(B), f(Head) in order (what save_weights and load_weights of
  /// serialize.hpp walk: each part's parameters and state as one block).
  template <class F>
  void for_each_layer(F&& f) {
    f(a_);
    f(b_);
    f(head_);
  }
  template <class F>
  void for_each_layer(F&& f) const {
    f(a_);
    f(b_);
    f(head_);
  }

  /// Branch A gets child_seed(seed, 0), B child_seed(seed, 1), the head child_seed(seed, 2).
  void initialize(std::uint64_t seed) {
    a_.initialize(child_seed(seed, 0));
    b_.initialize(child_seed(seed, 1));
    head_.initialize(child_seed(seed, 2));
  }
  /// Re-seed the dropout layers only, as initialize(seed) would.
  void reseed_dropout(std::uint64_t seed) {
    detail::reseed_dropout_of(a_, child_seed(seed, 0));
    detail::reseed_dropout_of(b_, child_seed(seed, 1));
    detail::reseed_dropout_of(head_, child_seed(seed, 2));
  }
  void set_training(bool t) {
    a_.set_training(t);
    b_.set_training(t);
    head_.set_training(t);
  }
  /// Keep dropout layers active at inference (Monte-Carlo dropout).
  void set_mc_dropout(bool on) {
    if constexpr (detail::has_set_mc<A>::value) a_.set_mc(on);
    if constexpr (detail::has_set_mc<B>::value) b_.set_mc(on);
    if constexpr (detail::has_set_mc<Head>::value) head_.set_mc(on);
  }
  void set_mc(bool on) { set_mc_dropout(on); }
  void bind_parameters(vector_type const& p) {
    check_argument(long(p.extent(0)) == num_params(), "lensing::nn::TwoInput::bind_parameters",
                   "vector has " + std::to_string(p.extent(0)) + " elements, expected " + std::to_string(num_params()));
    Kokkos::deep_copy(p, params_);
    params_ = p;
    bind_all();
  }
  void bind_state(vector_type const& s) {
    check_argument(long(s.extent(0)) == num_state(), "lensing::nn::TwoInput::bind_state",
                   "vector has " + std::to_string(s.extent(0)) + " elements, expected " + std::to_string(num_state()));
    Kokkos::deep_copy(s, state_);
    state_ = s;
    bind_all();
  }

  /// out = Head([A(x1), B(x2)]) for inputs of the same batch size; returns output().
  template <class ExecutionSpace>
  tensor_type forward(ExecutionSpace const& space, tensor_type const& x1, tensor_type const& x2) {
    static_assert(is_accessible_from_v<ExecutionSpace, memory_space>,
                  "lensing::nn::TwoInput::forward: the network's memory space is not accessible from this execution "
                  "space");
    prepare(shape_of(x1), shape_of(x2));
    a_.forward(space, x1, ya_);
    b_.forward(space, x2, yb_);
    join_samples(space, ya_, yb_, z_);
    head_.forward(space, z_, out_);
    return out_;
  }

  /// Back-propagate output_gradient() through the last forward (made with
  /// the same x1, x2): fills gradients(), and dx1, dx2 when given.
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x1, tensor_type const& x2,
                tensor_type const& dx1 = tensor_type(), tensor_type const& dx2 = tensor_type()) {
    static_assert(is_accessible_from_v<ExecutionSpace, memory_space>,
                  "lensing::nn::TwoInput::backward: the network's memory space is not accessible from this execution "
                  "space");
    char const* where = "lensing::nn::TwoInput::backward";
    check_argument(prepared_, where, "call forward first");
    check_shape(x1, in1_, where, "x1");
    check_shape(x2, in2_, where, "x2");
    if (dx1.data() != nullptr) check_shape(dx1, in1_, where, "dx1");
    if (dx2.data() != nullptr) check_shape(dx2, in2_, where, "dx2");
    head_.backward(space, z_, out_, dout_, dz_, slice(dparams_, 2));
    split_samples(space, dz_, dya_, dyb_);
    a_.backward(space, x1, ya_, dya_, dx1, slice(dparams_, 0));
    b_.backward(space, x2, yb_, dyb_, dx2, slice(dparams_, 1));
  }

 private:
  vector_type slice(vector_type const& v, int i) const {
    return vector_type(Kokkos::subview(v, Kokkos::make_pair(off_[i], off_[i + 1])));
  }
  vector_type state_slice(int i) const {
    return vector_type(Kokkos::subview(state_, Kokkos::make_pair(soff_[i], soff_[i + 1])));
  }
  void bind_all() {
    a_.bind_parameters(slice(params_, 0));
    b_.bind_parameters(slice(params_, 1));
    head_.bind_parameters(slice(params_, 2));
    a_.bind_state(state_slice(0));
    b_.bind_state(state_slice(1));
    head_.bind_state(state_slice(2));
  }

  A a_;
  B b_;
  Head head_;
  long off_[4] = {}, soff_[4] = {};
  vector_type params_, dparams_, state_;
  bool prepared_ = false;
  Shape4 in1_, in2_;
  // *_store_: buffers at capacity; the others: their slices for (in1_, in2_).
  tensor_type ya_store_, yb_store_, dya_store_, dyb_store_, z_store_, dz_store_, out_store_, dout_store_;
  tensor_type ya_, yb_, dya_, dyb_, z_, dz_, out_, dout_;
};

/// Deduce a TwoInput from its branches and head: make_two_input(image_branch, vector_branch, head).
template <class A, class B, class Head>
TwoInput<A, B, Head> make_two_input(A const& a, B const& b, Head const& head) {
  return TwoInput<A, B, Head>(a, b, head);
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_TWO_INPUT_HPP
