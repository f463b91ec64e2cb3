#ifndef LENSING_NN_SEQUENTIAL_HPP
#define LENSING_NN_SEQUENTIAL_HPP

#include <lensing/core/tuple.hpp>
#include <lensing/nn/layer.hpp>

#include <array>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

namespace lensing {
namespace nn {

namespace detail {
template <class F, std::size_t... I>
void for_each_index(F&& f, std::index_sequence<I...>) {
  (f(std::integral_constant<std::size_t, I>{}), ...);
}
/// Whether layer L forms dx = its input gradient + an addend in its own
/// backward pass (backward_add: PreactConv2D).
template <class L, class = void>
struct has_backward_add : std::false_type {};
template <class L>
struct has_backward_add<
    L, std::void_t<decltype(std::declval<L&>().backward_add(
           std::declval<typename L::memory_space::execution_space>(), std::declval<typename L::tensor_type const&>(),
           std::declval<typename L::tensor_type const&>(), std::declval<typename L::tensor_type const&>(),
           std::declval<typename L::tensor_type const&>(), std::declval<typename L::vector_type const&>(),
           std::declval<typename L::tensor_type const&>()))>> : std::true_type {};
template <class L, class = void>
struct has_set_mc : std::false_type {};
template <class L>
struct has_set_mc<L, std::void_t<decltype(std::declval<L&>().set_mc(true))>> : std::true_type {};
}  // namespace detail

/// A network of layers applied in order, composed at compile time.
///
/// `Sequential<L...>` stores its layers in an aggregate `lensing::Tuple` (no
/// virtual calls) and owns the activations after every layer and their
/// gradients.  All trainable parameters live in one flat vector
/// (`parameters()`, layer after layer, each in its own documented order)
/// with a matching gradient vector (`gradients()`), which is what the
/// optimizers (optimizer.hpp) update; every layer is bound to its slice.
/// Each L models the Layer archetype (layer.hpp), all with the same scalar
/// type and memory space.
///
/// **Shapes and batch size.**  The network runs on any input its layers
/// can take: `forward(space, x)` infers every layer's output shape from
/// shape(x) (the first layer that cannot take its input is named in the
/// std::invalid_argument) and, when shape(x) differs from the last input,
/// re-prepares the layers for it.  Activations and gradients are allocated
/// for a capacity (the largest batch seen for the current per-sample shape)
/// and used through slices of the batch actually given, so that alternating
/// batch sizes (training at 64, MC-dropout inference at 1000, then 64
/// again) allocate once; parameters and state are never touched by a change
/// of shape, and the results for a batch do not depend on the batches run
/// before.  The constructor with an input shape prepares for it at once
/// (input_shape() and output_shape() are then known before any forward);
/// the constructor with layers alone leaves the shapes to the first
/// forward or prepare (a block built without writing its input shape).
///
/// Usage: `auto y = net.forward(space, x);` then, with dL/dy written into
/// `net.output_gradient()` (losses do this), `net.backward(space, x)` fills
/// `gradients()` (overwritten, not accumulated) and optionally dL/dx.
template <class... L>
class Sequential {
  static_assert(sizeof...(L) >= 1, "lensing::nn::Sequential: at least one layer is required");
  static_assert((check_layer<L>() && ...),
                "lensing::nn::Sequential: every layer must model the Layer archetype (lensing/nn/layer.hpp)");
  using first_type = std::tuple_element_t<0, std::tuple<L...>>;

 public:
  using scalar_type = typename first_type::scalar_type;
  using memory_space = typename first_type::memory_space;
  using tensor_type = Tensor<scalar_type, memory_space>;
  using vector_type = ParamVector<scalar_type, memory_space>;
  static constexpr std::size_t num_layers = sizeof...(L);
  static_assert((std::is_same<typename L::scalar_type, scalar_type>::value && ...),
                "lensing::nn::Sequential: every layer must have the same scalar type");
  static_assert((std::is_same<typename L::memory_space, memory_space>::value && ...),
                "lensing::nn::Sequential: every layer must have the same memory space");

  /// Network prepared for inputs of shape `input` (it still runs on any
  /// other batch size or input shape its layers take); throws
  /// std::invalid_argument naming the first layer that cannot take its input.
  explicit Sequential(Shape4 const& input, L const&... layers) : layers_(layers...) {
    check_valid_shape(input, "lensing::nn::Sequential");
    allocate_parameters();
    prepare(input);
  }
  /// Network whose shapes are inferred from the first input (forward or
  /// prepare); until then input_shape() and output_shape() are (0, 0, 0, 0).
  explicit Sequential(L const&... layers) : layers_(layers...) { allocate_parameters(); }

  /// Shape of the last input (or of the constructor's); (0, 0, 0, 0) before any.
  Shape4 input_shape() const { return shapes_[0]; }
  /// Output shape for input_shape().
  Shape4 output_shape() const { return shapes_[num_layers]; }
  /// Shape after layer i (i = 0: the input) for input_shape().
  Shape4 shape(std::size_t i) const { return shapes_.at(i); }
  /// Largest batch the activations currently hold without reallocating.
  int capacity() const { return act_store_[num_layers].data() != nullptr ? int(act_store_[num_layers].extent(0)) : 0; }
  long num_params() const { return offsets_[num_layers]; }
  vector_type parameters() const { return params_; }
  vector_type gradients() const { return dparams_; }
  /// Parameters of layer i (a slice of parameters()).
  vector_type parameters(std::size_t i) const { return slice(params_, i); }
  /// The output of the last forward, and the buffer for dL/d(output) that
  /// backward reads (both of batch input_shape().n).
  tensor_type output() const { return acts_[num_layers]; }
  tensor_type output_gradient() const { return grads_[num_layers]; }
  /// Activation after layer i (i >= 1) of the last forward.
  tensor_type activation(std::size_t i) const { return acts_.at(i); }

  template <std::size_t I>
  auto& layer() {
    return get<I>(layers_);
  }
  template <std::size_t I>
  auto const& layer() const {
    return get<I>(layers_);
  }
  /// f(layer) for every layer in order.
  template <class F>
  void for_each_layer(F&& f) {
    detail::for_each_index([&](auto i) { f(get<i>(layers_)); }, std::index_sequence_for<L...>{});
  }
  template <class F>
  void for_each_layer(F&& f) const {
    detail::for_each_index([&](auto i) { f(get<i>(layers_)); }, std::index_sequence_for<L...>{});
  }

  /// Initialise every layer; layer i gets a seed derived from (seed, i).
  void initialize(std::uint64_t seed) {
    detail::for_each_index([&](auto i) { get<i>(layers_).initialize(child_seed(seed, std::uint64_t(i))); },
                           std::index_sequence_for<L...>{});
  }
  /// Re-seed the dropout layers only (nested ones included) with the seeds
  /// initialize(seed) would give them, restarting their mask sequences;
  /// the parameters are untouched (mc_predict uses it).
  void reseed_dropout(std::uint64_t seed) {
    detail::for_each_index(
        [&](auto i) { detail::reseed_dropout_of(get<i>(layers_), child_seed(seed, std::uint64_t(i))); },
        std::index_sequence_for<L...>{});
  }
  /// Training or inference mode for every layer.
  void set_training(bool training) {
    for_each_layer([&](auto& l) { l.set_training(training); });
  }
  /// Keep dropout layers active at inference (Monte-Carlo dropout).
  void set_mc_dropout(bool on) {
    for_each_layer([&](auto& l) {
      if constexpr (detail::has_set_mc<std::decay_t<decltype(l)>>::value) l.set_mc(on);
    });
  }

  //--------------------------------------------------------------------------
  // The Layer archetype, so that a Sequential can be a block of a larger
  // network (e.g. the residual branch of Residual<Block>); state() is the
  // layers' state, flat.

  /// Output shape for an input of shape `in` (any the layers take).
  Shape4 output_shape(Shape4 const& in) const { return infer_shapes(in)[num_layers]; }
  /// Prepare the layers and the activations for inputs of shape `in` (what
  /// forward does on a new shape); a no-op when `in` is input_shape().
  void prepare(Shape4 const& in) {
    if (prepared_ && in == shapes_[0]) return;
    auto const s = infer_shapes(in);
    detail::for_each_index(
        [&](auto i) {
          get<i>(layers_).prepare(s[i]);
          acts_[i + 1] = detail::batch_slice(act_store_[i + 1], s[i + 1], "lensing::nn::Sequential", "activation");
          grads_[i + 1] = detail::batch_slice(grad_store_[i + 1], s[i + 1], "lensing::nn::Sequential", "gradient");
        },
        std::index_sequence_for<L...>{});
    shapes_ = s;
    prepared_ = true;
  }
  long num_state() const { return state_offsets_[num_layers]; }
  vector_type state() const { return state_; }
  void bind_parameters(vector_type const& p) {
    check_argument(long(p.extent(0)) == num_params(), "lensing::nn::Sequential::bind_parameters",
                   "vector has " + std::to_string(p.extent(0)) + " elements, expected " + std::to_string(num_params()));
    Kokkos::deep_copy(p, params_);
    params_ = p;
    bind_all();
  }
  void bind_state(vector_type const& s) {
    check_argument(long(s.extent(0)) == num_state(), "lensing::nn::Sequential::bind_state",
                   "vector has " + std::to_string(s.extent(0)) + " elements, expected " + std::to_string(num_state()));
    Kokkos::deep_copy(s, state_);
    state_ = s;
    bind_all();
  }
  /// Layer-style forward: y = network(x) (a copy of output()).
  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    check_shape(y, output_shape(shape_of(x)), "lensing::nn::Sequential::forward", "y");
    copy(space, forward(space, x), y);
  }
  /// Layer-style backward (after the forward of the same x): dx and dparams from dy.
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    layer_backward(space, x, y, dy, dx, dparams, tensor_type(), "lensing::nn::Sequential::backward");
  }

  /// backward(space, x, y, dy, dx, dparams) with dx = the input gradient +
  /// addend (x's shape; not dx), formed by the first layer in its own
  /// backward pass (its backward_add: the sum of a residual unit's two
  /// branches without a separate pass).  Requires dx and a first layer with
  /// backward_add (detail::has_backward_add).
  template <class ExecutionSpace>
  void backward_add(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                    tensor_type const& dx, vector_type const& dparams, tensor_type const& addend) {
    static_assert(detail::has_backward_add<std::tuple_element_t<0, std::tuple<L...>>>::value,
                  "lensing::nn::Sequential::backward_add: the first layer has no backward_add");
    char const* where = "lensing::nn::Sequential::backward_add";
    check_argument(dx.data() != nullptr, where, "dx is required");
    layer_backward(space, x, y, dy, dx, dparams, addend, where);
  }

  /// Same as set_mc_dropout (so that nested networks follow the outer one).
  void set_mc(bool on) { set_mc_dropout(on); }

  /// Run every layer on x (any batch size, any shape the layers take;
  /// re-prepares when shape(x) differs from input_shape()); returns output().
  template <class ExecutionSpace>
  tensor_type forward(ExecutionSpace const& space, tensor_type const& x) {
    static_assert(
        is_accessible_from_v<ExecutionSpace, memory_space>,
        "lensing::nn::Sequential::forward: the network's memory space is not accessible from this execution space");
    prepare(shape_of(x));
    detail::for_each_index([&](auto i) { get<i>(layers_).forward(space, i == 0 ? x : acts_[i], acts_[i + 1]); },
                           std::index_sequence_for<L...>{});
    return acts_[num_layers];
  }

  /// Back-propagate output_gradient() through the activations of the last
  /// forward (made with the same x): fills gradients(), and dx when given.
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& dx = tensor_type()) {
    static_assert(
        is_accessible_from_v<ExecutionSpace, memory_space>,
        "lensing::nn::Sequential::backward: the network's memory space is not accessible from this execution space");
    check_argument(prepared_, "lensing::nn::Sequential::backward", "call forward first");
    check_shape(x, shapes_[0], "lensing::nn::Sequential::backward", "x");
    if (dx.data() != nullptr) check_shape(dx, shapes_[0], "lensing::nn::Sequential::backward", "dx");
    backward_layers(space, x, dx, grads_[num_layers], [](long, long) {});
  }

  /// backward() calling `done(first, last)` after each layer's backward has
  /// been enqueued on `space`, with the range [first, last) of gradients()
  /// that layer writes.  Layers run last to first, so when `done(first, ...)`
  /// is called every gradient at index >= first is final once `space` is
  /// fenced: a data-parallel run (mpi/data_parallel.hpp) starts reducing a
  /// bucket of gradients there while the earlier layers still run.
  template <class ExecutionSpace, class Done>
  void backward_each_layer(ExecutionSpace const& space, tensor_type const& x, Done&& done) {
    static_assert(is_accessible_from_v<ExecutionSpace, memory_space>,
                  "lensing::nn::Sequential::backward_each_layer: the network's memory space is not accessible from "
                  "this execution space");
    check_argument(prepared_, "lensing::nn::Sequential::backward_each_layer", "call forward first");
    check_shape(x, shapes_[0], "lensing::nn::Sequential::backward_each_layer", "x");
    backward_layers(space, x, tensor_type(), grads_[num_layers], done);
  }

  // Implementation, public for nvcc.
  template <class ExecutionSpace>
  static void copy(ExecutionSpace const& space, tensor_type const& a, tensor_type const& b) {
    scalar_type const* ap = a.data();
    scalar_type* bp = b.data();
    Kokkos::parallel_for(
        "lensing::nn::Sequential::copy",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(a.size())),
        KOKKOS_LAMBDA(long i) { bp[i] = ap[i]; });
  }

 private:
  // backward and backward_add (addend empty: none): the checks, the layers
  // (dy straight to the last one, no copy into output_gradient()), dparams.
  template <class ExecutionSpace>
  void layer_backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                      tensor_type const& dx, vector_type const& dparams, tensor_type const& addend, char const* where) {
    check_shape(y, shapes_[num_layers], where, "y");
    check_shape(dy, shapes_[num_layers], where, "dy");
    check_argument(
        long(dparams.extent(0)) == num_params(), where,
        "dparams has " + std::to_string(dparams.extent(0)) + " elements, expected " + std::to_string(num_params()));
    backward_layers(
        space, x, dx, dy, [](long, long) {}, addend);
    if (num_params() > 0) Kokkos::deep_copy(space, dparams, dparams_);
  }
  // Layers last to first; the first adds `addend` to dx itself when given (backward_add).
  template <class ExecutionSpace, class Done>
  void backward_layers(ExecutionSpace const& space, tensor_type const& x, tensor_type const& dx, tensor_type const& dy,
                       Done&& done, tensor_type const& addend = tensor_type()) {
    detail::for_each_index(
        [&](auto r) {
          constexpr std::size_t i = num_layers - 1 - decltype(r)::value;
          auto& layer = get<i>(layers_);
          tensor_type const& in = i == 0 ? x : acts_[i];
          tensor_type const& g = i + 1 == num_layers ? dy : grads_[i + 1];
          if constexpr (i == 0 && detail::has_backward_add<std::decay_t<decltype(layer)>>::value) {
            if (addend.data() != nullptr)
              layer.backward_add(space, in, acts_[i + 1], g, dx, slice(dparams_, i), addend);
            else
              layer.backward(space, in, acts_[i + 1], g, dx, slice(dparams_, i));
          } else {
            layer.backward(space, in, acts_[i + 1], g, i == 0 ? dx : grads_[i], slice(dparams_, i));
          }
          done(offsets_[i], offsets_[i + 1]);
        },
        std::index_sequence_for<L...>{});
  }
  /// Shapes after every layer for input `in` (index 0: `in`).
  std::array<Shape4, num_layers + 1> infer_shapes(Shape4 const& in) const {
    check_valid_shape(in, "lensing::nn::Sequential");
    std::array<Shape4, num_layers + 1> s{};
    s[0] = in;
    detail::for_each_index(
        [&](auto i) {
          try {
            s[i + 1] = get<i>(layers_).output_shape(s[i]);
          } catch (std::invalid_argument const& e) {
            throw_invalid_argument("lensing::nn::Sequential",
                                   "layer " + std::to_string(i) + " cannot take input " + s[i].str() + ": " + e.what());
          }
        },
        std::index_sequence_for<L...>{});
    return s;
  }
  /// The flat parameter, gradient and state vectors, bound to the layers
  /// (their sizes do not depend on the input shape).
  void allocate_parameters() {
    long total = 0, st = 0;
    detail::for_each_index(
        [&](auto i) {
          offsets_[i] = total;
          total += get<i>(layers_).num_params();
          state_offsets_[i] = st;
          st += get<i>(layers_).num_state();
        },
        std::index_sequence_for<L...>{});
    offsets_[num_layers] = total;
    state_offsets_[num_layers] = st;
    params_ = vector_type("lensing::nn::Sequential::parameters", total);
    dparams_ = vector_type("lensing::nn::Sequential::gradients", total);
    state_ = vector_type("lensing::nn::Sequential::state", st);
    bind_all();
  }
  vector_type slice(vector_type const& v, std::size_t i) const {
    return vector_type(Kokkos::subview(v, Kokkos::make_pair(offsets_[i], offsets_[i + 1])));
  }
  void bind_all() {
    detail::for_each_index(
        [&](auto i) {
          auto& l = get<i>(layers_);
          l.bind_parameters(slice(params_, i));
          l.bind_state(
              vector_type(Kokkos::subview(state_, Kokkos::make_pair(state_offsets_[i], state_offsets_[i + 1]))));
        },
        std::index_sequence_for<L...>{});
  }

  Tuple<L...> layers_;
  bool prepared_ = false;
  std::array<Shape4, num_layers + 1> shapes_{};
  std::array<long, num_layers + 1> offsets_{}, state_offsets_{};
  // *_store_: the buffers at capacity; acts_, grads_: their slices for input_shape().
  std::array<tensor_type, num_layers + 1> act_store_, grad_store_, acts_, grads_;
  vector_type params_, dparams_, state_;
};

/// Deduce a Sequential from its layers: make_sequential(input_shape, l1, l2, ...).
template <class... L>
Sequential<L...> make_sequential(Shape4 const& input, L const&... layers) {
  return Sequential<L...>(input, layers...);
}

/// Deduce a Sequential whose shapes are inferred from its first input:
/// make_sequential(l1, l2, ...) (a block of a Residual or Concat, or a
/// network whose input shape the data decide).
template <class L0, class... L, std::enable_if_t<!std::is_same<std::decay_t<L0>, Shape4>::value, int> = 0>
Sequential<L0, L...> make_sequential(L0 const& first, L const&... layers) {
  return Sequential<L0, L...>(first, layers...);
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_SEQUENTIAL_HPP
