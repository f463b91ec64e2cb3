#ifndef LENSING_NN_LAYER_HPP
#define LENSING_NN_LAYER_HPP

/// \file
/// The Layer archetype of lensing's neural-network core, the `is_layer_v`
/// trait, and `LayerBase`, which gives the defaults of the optional parts.
///
/// ## Layer archetype (what `Sequential<L...>` and the optimizers rely on)
///
/// \code
/// class Layer {  // templated on <Scalar, MemorySpace>, copyable (Views are shared)
///  public:
///   using scalar_type = Scalar;                        // float or double
///   using memory_space = MemorySpace;
///   using tensor_type = Tensor<Scalar, MemorySpace>;   // NCHW, see tensor.hpp
///   using vector_type = ParamVector<Scalar, MemorySpace>;
///
///   // Shape of the output for an input of shape `in`; throws
///   // std::invalid_argument("lensing::nn::<Layer>: ...") when the layer
///   // cannot take `in` (wrong channels, kernel larger than the padded image...).
///   Shape4 output_shape(Shape4 const& in) const;
///
///   // Trainable parameters as one flat vector (layout documented per layer,
///   // PyTorch's order: weights then bias).  num_params() may be 0.
///   long num_params() const;
///   vector_type parameters() const;
///   // Adopt `p` (num_params() elements, e.g. a slice of a network's flat
///   // vector) as parameter storage after copying the current values into it.
///   void bind_parameters(vector_type const& p);
///   // Draw the parameters from the layer's initialiser (tensor.hpp), seeded.
///   void initialize(std::uint64_t seed);
///
///   // Non-trainable state saved with the weights (BatchNorm running stats);
///   // num_state() may be 0.
///   long num_state() const;
///   vector_type state() const;
///   void bind_state(vector_type const& s);  // as bind_parameters
///
///   // Allocate workspaces for inputs of shape `in`: called by Sequential
///   // (and the containers: Residual, Concat, TwoInput) whenever the input
///   // shape changes, batch size included, so it must take any shape that
///   // output_shape takes, at any time; grow buffers to a capacity and use
///   // slices (detail::batch_slice) rather than reallocating per batch.
///   void prepare(Shape4 const& in);
///   // Training (batch statistics, dropout on) or inference mode.
///   void set_training(bool training);
///
///   // y = f(x; θ).  x and y are in MemorySpace, y has output_shape(shape(x)).
///   template <class ExecutionSpace>
///   void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y);
///
///   // Given x, y from the last forward and dy = ∂L/∂y: dx = ∂L/∂x (skipped
///   // when dx.data() == nullptr) and dparams = ∂L/∂θ (num_params()
///   // elements, overwritten, not accumulated).  Valid in the mode of that
///   // forward; stochastic layers reuse the randomness of that forward.
///   template <class ExecutionSpace>
///   void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y,
///                 tensor_type const& dy, tensor_type const& dx, vector_type const& dparams);
/// };
/// \endcode
///
/// Every hand-derived backward is checked against central finite
/// differences by one generic checker (nn/gradient_check.hpp).  `is_layer_v`
/// tests every member above; `check_layer<L>()` names each one L lacks.

#include <lensing/core/errors.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

/// `#pragma omp simd reduction(+ : v)` in host builds with OpenMP (sums do
/// not vectorise without it, as IEEE addition is not associative); nothing
/// in device code.
#define LENSING_NN_PRAGMA(x) _Pragma(#x)
#if defined(_OPENMP) && !defined(__CUDACC__)
#define LENSING_NN_SIMD_SUM(v) LENSING_NN_PRAGMA(omp simd reduction(+ : v))
#else
#define LENSING_NN_SIMD_SUM(v)
#endif

namespace lensing {
namespace nn {

//----------------------------------------------------------------------------
// Trait and per-requirement check.

namespace detail {
template <class L, class = void>
struct has_layer_types : std::false_type {};
template <class L>
struct has_layer_types<L, std::void_t<typename L::scalar_type, typename L::memory_space, typename L::tensor_type,
                                      typename L::vector_type, typename L::memory_space::execution_space>>
    : std::true_type {};

// Each member check below is only asked once the types exist (layer_member).
template <class L, class = void>
struct has_layer_output_shape : std::false_type {};
template <class L>
struct has_layer_output_shape<
    L, std::enable_if_t<std::is_same<decltype(std::declval<L const&>().output_shape(Shape4{})), Shape4>::value>>
    : std::true_type {};

template <class L, class = void>
struct has_layer_parameters : std::false_type {};
template <class L>
struct has_layer_parameters<
    L, std::enable_if_t<
           std::is_convertible<decltype(std::declval<L const&>().num_params()), long>::value &&
               std::is_convertible<decltype(std::declval<L const&>().parameters()), typename L::vector_type>::value,
           std::void_t<decltype(std::declval<L&>().bind_parameters(std::declval<typename L::vector_type const&>()))>>>
    : std::true_type {};

template <class L, class = void>
struct has_layer_initialize : std::false_type {};
template <class L>
struct has_layer_initialize<L, std::void_t<decltype(std::declval<L&>().initialize(std::uint64_t(0)))>>
    : std::true_type {};

template <class L, class = void>
struct has_layer_state : std::false_type {};
template <class L>
struct has_layer_state<
    L, std::enable_if_t<
           std::is_convertible<decltype(std::declval<L const&>().num_state()), long>::value &&
               std::is_convertible<decltype(std::declval<L const&>().state()), typename L::vector_type>::value,
           std::void_t<decltype(std::declval<L&>().bind_state(std::declval<typename L::vector_type const&>()))>>>
    : std::true_type {};

template <class L, class = void>
struct has_layer_prepare : std::false_type {};
template <class L>
struct has_layer_prepare<
    L, std::void_t<decltype(std::declval<L&>().prepare(Shape4{})), decltype(std::declval<L&>().set_training(true))>>
    : std::true_type {};

// forward/backward are templates on the execution space: detected for the
// execution space of the layer's memory space.
template <class L, class = void>
struct has_layer_forward : std::false_type {};
template <class L>
struct has_layer_forward<
    L, std::void_t<decltype(std::declval<L&>().forward(std::declval<typename L::memory_space::execution_space const&>(),
                                                       std::declval<typename L::tensor_type const&>(),
                                                       std::declval<typename L::tensor_type const&>()))>>
    : std::true_type {};

template <class L, class = void>
struct has_layer_backward : std::false_type {};
template <class L>
struct has_layer_backward<
    L, std::void_t<decltype(std::declval<L&>().backward(
           std::declval<typename L::memory_space::execution_space const&>(),
           std::declval<typename L::tensor_type const&>(), std::declval<typename L::tensor_type const&>(),
           std::declval<typename L::tensor_type const&>(), std::declval<typename L::tensor_type const&>(),
           std::declval<typename L::vector_type const&>()))>> : std::true_type {};

/// Check<L>::value when L has the archetype's types, false otherwise.
template <template <class, class> class Check, class L>
struct layer_member : std::conditional_t<has_layer_types<L>::value, Check<L, void>, std::false_type> {};
}  // namespace detail

/// Whether L models the Layer archetype above (every member, forward and
/// backward included, for the execution space of L's memory space).
template <class L>
constexpr bool is_layer_v =
    detail::has_layer_types<L>::value&& detail::layer_member<detail::has_layer_output_shape, L>::value&&
        detail::layer_member<detail::has_layer_parameters, L>::value&& detail::layer_member<
            detail::has_layer_initialize, L>::value&& detail::layer_member<detail::has_layer_state, L>::value&&
            detail::layer_member<detail::has_layer_prepare, L>::value&& detail::layer_member<
                detail::has_layer_forward, L>::value&& detail::layer_member<detail::has_layer_backward, L>::value;

/// Compile-time check with one readable message per missing requirement of
/// the Layer archetype; `static_assert(check_layer<L>())` in a template that
/// takes layers.
template <class L>
constexpr bool check_layer() {
  static_assert(detail::has_layer_types<L>::value,
                "lensing::nn::Layer: the layer must define scalar_type, memory_space (a Kokkos memory space), "
                "tensor_type and vector_type");
  static_assert(detail::layer_member<detail::has_layer_output_shape, L>::value,
                "lensing::nn::Layer: the layer must have Shape4 output_shape(Shape4 const&) const");
  static_assert(detail::layer_member<detail::has_layer_parameters, L>::value,
                "lensing::nn::Layer: the layer must have long num_params() const, vector_type parameters() const "
                "and bind_parameters(vector_type const&)");
  static_assert(detail::layer_member<detail::has_layer_initialize, L>::value,
                "lensing::nn::Layer: the layer must have initialize(std::uint64_t seed)");
  static_assert(detail::layer_member<detail::has_layer_state, L>::value,
                "lensing::nn::Layer: the layer must have long num_state() const, vector_type state() const and "
                "bind_state(vector_type const&)");
  static_assert(detail::layer_member<detail::has_layer_prepare, L>::value,
                "lensing::nn::Layer: the layer must have prepare(Shape4 const&) and set_training(bool)");
  static_assert(detail::layer_member<detail::has_layer_forward, L>::value,
                "lensing::nn::Layer: the layer must have forward(space, tensor_type const& x, tensor_type const& y)");
  static_assert(detail::layer_member<detail::has_layer_backward, L>::value,
                "lensing::nn::Layer: the layer must have backward(space, x, y, dy, dx, vector_type const& dparams)");
  if constexpr (detail::has_layer_types<L>::value) {
    static_assert(
        std::is_same<typename L::scalar_type, float>::value || std::is_same<typename L::scalar_type, double>::value,
        "lensing::nn::Layer: scalar_type must be float or double");
    static_assert(
        std::is_same<typename L::tensor_type, Tensor<typename L::scalar_type, typename L::memory_space>>::value,
        "lensing::nn::Layer: tensor_type must be Tensor<scalar_type, memory_space>");
    static_assert(
        std::is_same<typename L::vector_type, ParamVector<typename L::scalar_type, typename L::memory_space>>::value,
        "lensing::nn::Layer: vector_type must be ParamVector<scalar_type, memory_space>");
  }
  return true;
}

//----------------------------------------------------------------------------
// Defaults.

/// Base giving the defaults of the archetype: no parameters, no state, no
/// workspace, a training flag.  Layers derive from it and hide what they
/// need (no virtual functions: Sequential resolves everything statically).
template <class Scalar, class MemorySpace>
class LayerBase {
 public:
  static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value,
                "lensing::nn: Scalar must be float or double");
  using scalar_type = Scalar;
  using memory_space = MemorySpace;
  using tensor_type = Tensor<Scalar, MemorySpace>;
  using vector_type = ParamVector<Scalar, MemorySpace>;

  long num_params() const { return static_cast<long>(params_.extent(0)); }
  vector_type parameters() const { return params_; }
  void bind_parameters(vector_type const& p) {
    check_argument(static_cast<long>(p.extent(0)) == num_params(), "lensing::nn::Layer::bind_parameters",
                   "vector has " + std::to_string(p.extent(0)) + " elements, the layer has " +
                       std::to_string(num_params()) + " parameters");
    if (num_params() > 0) Kokkos::deep_copy(p, params_);
    params_ = p;
  }
  void initialize(std::uint64_t) {}
  long num_state() const { return 0; }
  vector_type state() const { return vector_type(); }
  void bind_state(vector_type const& s) {
    check_argument(s.extent(0) == 0, "lensing::nn::Layer::bind_state", "the layer has no state");
  }
  void prepare(Shape4 const&) {}
  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }

 protected:
  vector_type params_;
  bool training_ = true;
};

namespace detail {
/// The first s.n samples of a batch buffer of per-sample shape (s.c, s.h,
/// s.w): `store` is (re)allocated (zeroed) when it is empty, has another
/// per-sample shape, or holds fewer than s.n samples, and otherwise reused,
/// so that a network alternating between batch sizes allocates once for the
/// largest (its capacity).  The slice is contiguous (LayoutRight, batch
/// first) and keeps `store` alive.
template <class T>
T batch_slice(T& store, Shape4 const& s, char const* where, char const* label) {
  static_assert(T::rank == 4, "lensing::nn::detail::batch_slice: a rank-4 (NCHW) tensor is required");
  check_valid_shape(s, where);
  Shape4 const have = store.data() != nullptr ? shape_of(store) : Shape4{};
  bool const same = have.c == s.c && have.h == s.h && have.w == s.w;
  if (store.data() == nullptr || !same || have.n < s.n) {
    int const cap = store.data() != nullptr && same ? std::max(have.n, s.n) : s.n;
    store = allocate_view<T>(where, label, true, cap, s.c, s.h, s.w);
  }
  if (int(store.extent(0)) == s.n) return store;
  return T(Kokkos::subview(store, Kokkos::make_pair(0, s.n), Kokkos::ALL, Kokkos::ALL, Kokkos::ALL));
}

template <class L, class = void>
struct has_reseed_dropout : std::false_type {};
template <class L>
struct has_reseed_dropout<L, std::void_t<decltype(std::declval<L&>().reseed_dropout(std::uint64_t(0)))>>
    : std::true_type {};
/// l.reseed_dropout(seed) when L has it (dropout layers and the containers
/// of layers), nothing otherwise.
template <class L>
void reseed_dropout_of(L& l, std::uint64_t seed) {
  if constexpr (has_reseed_dropout<L>::value) l.reseed_dropout(seed);
}

/// Checks shared by every forward/backward: shapes of x, y (and dy, dx, dparams).
template <class L, class T>
void check_forward(L const& layer, T const& x, T const& y, char const* where) {
  Shape4 const in = shape_of(x);
  Shape4 const out = layer.output_shape(in);
  check_shape(y, out, where, "y");
}
template <class L, class T, class V>
void check_backward(L const& layer, T const& x, T const& y, T const& dy, T const& dx, V const& dparams,
                    char const* where) {
  check_forward(layer, x, y, where);
  check_shape(dy, shape_of(y), where, "dy");
  if (dx.data() != nullptr) check_shape(dx, shape_of(x), where, "dx");
  check_argument(
      static_cast<long>(dparams.extent(0)) == layer.num_params(), where,
      "dparams has " + std::to_string(dparams.extent(0)) + " elements, expected " + std::to_string(layer.num_params()));
}
}  // namespace detail

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_LAYER_HPP
