#ifndef LENSING_NN_RESIDUAL_HPP
#define LENSING_NN_RESIDUAL_HPP

#include <lensing/nn/activation.hpp>
#include <lensing/nn/batchnorm.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/layer.hpp>
#include <lensing/nn/preact_conv2d.hpp>
#include <lensing/nn/sequential.hpp>

#include <algorithm>
#include <string>
#include <tuple>
#include <type_traits>

namespace lensing {
namespace nn {

/// Identity shortcut of a residual unit (no parameters).
struct IdentityShortcut {};

namespace detail {
template <class T>
struct is_sequential : std::false_type {};
template <class... L>
struct is_sequential<Sequential<L...>> : std::true_type {};
template <class L, class = void>
struct has_forward_add : std::false_type {};
template <class L>
struct has_forward_add<
    L, std::void_t<decltype(std::declval<L&>().forward_add(
           std::declval<typename L::memory_space::execution_space>(), std::declval<typename L::tensor_type const&>(),
           std::declval<typename L::tensor_type const&>(), std::declval<typename L::tensor_type const&>()))>>
    : std::true_type {};
/// A Sequential whose last layer forms y = layer(x) + addend itself (PreactConv2D).
template <class T>
struct adds_in_last_layer : std::false_type {};
template <class... L>
struct adds_in_last_layer<Sequential<L...>>
    : has_forward_add<std::tuple_element_t<sizeof...(L) - 1, std::tuple<L...>>> {};
/// A Sequential whose first layer forms dx = its input gradient + addend itself (PreactConv2D).
template <class T>
struct adds_in_first_layer : std::false_type {};
template <class... L>
struct adds_in_first_layer<Sequential<L...>> : has_backward_add<std::tuple_element_t<0, std::tuple<L...>>> {};
/// A Sequential of three PreactConv2D (the pre-activated bottleneck's branch).
template <class T>
struct is_preact_chain3 : std::false_type {};
template <class S, class M>
struct is_preact_chain3<Sequential<PreactConv2D<S, M>, PreactConv2D<S, M>, PreactConv2D<S, M>>> : std::true_type {};
/// check_layer<S>() unless S is IdentityShortcut.
template <class S>
constexpr bool check_shortcut() {
  if constexpr (std::is_same<S, IdentityShortcut>::value)
    return true;
  else
    return check_layer<S>();
}
}  // namespace detail

/// Residual unit y = F(x) + S(x) (He, Zhang, Ren & Sun 2016, arXiv:1512.03385
/// and the pre-activated form, arXiv:1603.05027).
///
/// On host spaces, when F is a Sequential whose last layer can add to its
/// output (PreactConv2D::forward_add), the sum is formed in that layer's
/// output pass (y = S(x) written first, or x itself, then accumulated onto),
/// and F's output is not stored (block().output() is not written by the
/// unit's forward); a Sequential F is otherwise read in place, not copied.
/// Likewise backward: when F's first layer can add to its input gradient
/// (PreactConv2D::backward_add), dx = dF/dx·dy + (dy or S's dx) is formed in
/// that layer's pass that writes dx (S's backward runs first), without a
/// separate sum over the batch.  An identity unit whose F is three PreactConv2D runs its inference
/// forward on the host sample group by sample group through all three
/// layers (forward_chain), F's inner outputs in per-thread buffers: its
/// activations (block().activation(i)) are then formed only if a backward
/// follows.
///
/// Block F and Shortcut S model the Layer archetype (F is typically a
/// Sequential; S a 1x1 Conv2D projection when stride or width change) or
/// S = IdentityShortcut (y = F(x) + x).  Parameters, flat: F's then S's;
/// state likewise.  Backward: dx = dF/dx·dy + dS/dx·dy.  The shortcut is
/// applied to the unit's input x (not to the pre-activated input).
///
/// The unit takes any input F and S take, at any batch size: prepare(in)
/// (called by forward on a new input shape) prepares F and S for it and
/// slices the unit's buffers (F's and S's outputs, S's dx) out of storage
/// kept at the largest batch seen (detail::batch_slice), so alternating
/// batch sizes do not reallocate.  Built with an input shape, the unit
/// checks F against S at once and prepares for it; built without, the
/// shapes come from the first input.
template <class Block, class Shortcut = IdentityShortcut>
class Residual : public LayerBase<typename Block::scalar_type, typename Block::memory_space> {
  using Scalar = typename Block::scalar_type;
  using MemorySpace = typename Block::memory_space;
  using base = LayerBase<Scalar, MemorySpace>;
  static constexpr bool identity = std::is_same<Shortcut, IdentityShortcut>::value;
  static constexpr bool sequential_block = detail::is_sequential<Block>::value;
  static constexpr bool fused_sum = detail::adds_in_last_layer<Block>::value;
  static constexpr bool fused_backward_sum = detail::adds_in_first_layer<Block>::value;
  // Identity units of three fused layers run their inference forward sample by sample (forward_chain).
  static constexpr bool chain = identity && detail::is_preact_chain3<Block>::value;
  static_assert(check_layer<Block>(), "lensing::nn::Residual: the block must model the Layer archetype");
  static_assert(detail::check_shortcut<Shortcut>(),
                "lensing::nn::Residual: the shortcut must be IdentityShortcut or model the Layer archetype");

 public:
  using typename base::tensor_type;
  using typename base::vector_type;

  /// Unit prepared for inputs of shape `in` (throws std::invalid_argument
  /// when F's and S's outputs differ for it).
  Residual(Shape4 const& in, Block const& block, Shortcut const& shortcut = Shortcut{}) : Residual(block, shortcut) {
    prepare(in);
  }
  /// Unit whose shapes come from its first input.
  explicit Residual(Block const& block, Shortcut const& shortcut = Shortcut{}) : block_(block), shortcut_(shortcut) {
    nb_ = block_.num_params();
    sb_ = block_.num_state();
    this->params_ = vector_type("lensing::nn::Residual::params", nb_ + shortcut_params());
    state_ = vector_type("lensing::nn::Residual::state", sb_ + shortcut_state());
    bind_children();
  }

  Shape4 output_shape(Shape4 const& in) const {
    char const* where = "lensing::nn::Residual";
    Shape4 const out = block_.output_shape(in);
    if constexpr (!identity) {
      Shape4 const s = shortcut_.output_shape(in);
      check_argument(s == out, where, "the shortcut's output " + s.str() + " differs from the block's " + out.str());
    } else {
      check_argument(in == out, where,
                     "an identity shortcut needs the block's output " + out.str() + " to equal its input " + in.str());
    }
    return out;
  }
  /// Prepare F, S and the buffers for inputs of shape `in` (a no-op for the prepared shape).
  void prepare(Shape4 const& in) {
    if (prepared_ && in == in_) return;
    char const* where = "lensing::nn::Residual";
    Shape4 const out = output_shape(in);
    block_.prepare(in);
    if constexpr (!identity) {
      shortcut_.prepare(in);
      sy_ = detail::batch_slice(sy_store_, out, where, "shortcut");
      sdx_ = detail::batch_slice(sdx_store_, in, where, "shortcut_dx");
    }
    // A Sequential block keeps its output: F(x) is read from there (no copy).
    if constexpr (!sequential_block) by_ = detail::batch_slice(by_store_, out, where, "block");
    in_ = in;
    out_ = out;
    prepared_ = true;
  }
  long num_state() const { return long(state_.extent(0)); }
  vector_type state() const { return state_; }
  void bind_parameters(vector_type const& p) {
    base::bind_parameters(p);
    bind_children();
  }
  void bind_state(vector_type const& s) {
    check_argument(long(s.extent(0)) == num_state(), "lensing::nn::Residual::bind_state", "wrong state size");
    Kokkos::deep_copy(s, state_);
    state_ = s;
    bind_children();
  }
  void initialize(std::uint64_t seed) {
    block_.initialize(child_seed(seed, 0));
    if constexpr (!identity) shortcut_.initialize(child_seed(seed, 1));
  }
  void set_training(bool t) {
    base::set_training(t);
    block_.set_training(t);
    if constexpr (!identity) shortcut_.set_training(t);
  }
  void set_mc(bool on) {
    if constexpr (detail::has_set_mc<Block>::value) block_.set_mc(on);
  }
  /// Re-seed the dropout layers of F and S as initialize(seed) would.
  void reseed_dropout(std::uint64_t seed) {
    detail::reseed_dropout_of(block_, child_seed(seed, 0));
    if constexpr (!identity) detail::reseed_dropout_of(shortcut_, child_seed(seed, 1));
  }
  Block& block() { return block_; }
  Shortcut& shortcut() { return shortcut_; }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    prepare(shape_of(x));
    check_shape(y, out_, "lensing::nn::Residual::forward", "y");
    if constexpr (fused_sum && lensing::detail::is_host_space_v<ExecutionSpace>) {
      if constexpr (chain) {
        if (forward_chain(space, x, y)) return;
      }
      block_stale_ = false;
      // y = S(x) first (the projection writes y), then F's last layer adds
      // its output onto S(x) in its output pass: no separate sum, and F's
      // output is not stored (the layers' backward reads only its shape).
      if constexpr (!identity) shortcut_.forward(space, x, y);
      forward_block_add(space, x, y, identity ? x : y);
      return;
    }
    block_stale_ = false;
    tensor_type by = by_;
    if constexpr (sequential_block)
      by = block_.forward(space, x);
    else
      block_.forward(space, x, by_);
    tensor_type const s = identity ? x : sy_;
    if constexpr (!identity) shortcut_.forward(space, x, sy_);
    add(space, by, s, y, "lensing::nn::Residual::forward");
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    char const* where = "lensing::nn::Residual::backward";
    check_argument(prepared_ && shape_of(x) == in_, where,
                   "x has shape " + shape_of(x).str() + ", the last forward had " + in_.str());
    detail::check_backward(*this, x, y, dy, dx, dparams, where);
    if constexpr (chain) {
      // After a sample-by-sample forward the branch's activations were not
      // stored: form them (the same layers, the same mode) before its backward.
      if (block_stale_) {
        forward_block_layers(space, x);
        block_stale_ = false;
      }
    }
    tensor_type by = by_;
    if constexpr (sequential_block) by = block_.output();
    vector_type const dblock(Kokkos::subview(dparams, Kokkos::make_pair(0L, nb_)));
    vector_type const dshortcut(Kokkos::subview(dparams, Kokkos::make_pair(nb_, this->num_params())));
    if constexpr (fused_backward_sum && lensing::detail::is_host_space_v<ExecutionSpace>) {
      if (dx.data() != nullptr) {
        // dx = F's input gradient + S's (dy for the identity), the sum formed
        // in the pass of F's first layer that writes dx: no separate sum.
        tensor_type addend = dy;
        if constexpr (!identity) {
          shortcut_.backward(space, x, sy_, dy, sdx_, dshortcut);
          addend = sdx_;
        }
        block_.backward_add(space, x, by, dy, dx, dblock, addend);
        return;
      }
    }
    block_.backward(space, x, by, dy, dx, dblock);
    if constexpr (!identity) {
      shortcut_.backward(space, x, sy_, dy, dx.data() != nullptr ? sdx_ : tensor_type(), dshortcut);
      if (dx.data() != nullptr) add(space, dx, sdx_, dx, "lensing::nn::Residual::backward");
    } else {
      if (dx.data() != nullptr) add(space, dx, dy, dx, "lensing::nn::Residual::backward");
    }
  }

  // Implementation: F's layers but the last into the Sequential's
  // activations, the last writing y = its output + addend.
  template <class ExecutionSpace>
  void forward_block_add(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y,
                         tensor_type const& addend) {
    constexpr std::size_t last = Block::num_layers - 1;
    forward_block_layers(space, x);
    block_.template layer<last>().forward_add(space, last == 0 ? x : block_.activation(last), y, addend);
  }
  // Implementation: F's layers but the last into the Sequential's activations.
  template <class ExecutionSpace>
  void forward_block_layers(ExecutionSpace const& space, tensor_type const& x) {
    constexpr std::size_t last = Block::num_layers - 1;
    block_.prepare(shape_of(x));
    detail::for_each_index(
        [&](auto i) {
          if constexpr (i < last)
            block_.template layer<i>().forward(space, i == 0 ? x : block_.activation(i), block_.activation(i + 1));
        },
        std::make_index_sequence<Block::num_layers>{});
  }

  // Implementation (host, inference, identity unit of three PreactConv2D):
  // the three layers run sample group by sample group on each thread, the
  // two inner outputs in a per-thread buffer that stays in cache, instead of
  // each layer passing over the whole batch (two tensors written and read
  // back per unit).  Batch statistics (training) need the whole batch
  // between layers, so this runs in inference only; the same arithmetic as
  // the layer-by-layer path (each layer's forward_samples), so the same y.
  // Returns false (nothing done) where the layers' sample groups differ.
  template <class ExecutionSpace>
  bool forward_chain(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    auto& l0 = block_.template layer<0>();
    auto& l1 = block_.template layer<1>();
    auto& l2 = block_.template layer<2>();
    if (this->training() || l0.training() || l1.training() || l2.training()) return false;
    block_.prepare(shape_of(x));
    tensor_type const a1 = block_.activation(1), a2 = block_.activation(2);
    // Inference statistics are the running ones: start_samples reads no data of a1, a2.
    detail::ConvDims const d0 = l0.start_samples(space, x, a1);
    detail::ConvDims const d1 = l1.start_samples(space, a1, a2);
    detail::ConvDims const d2 = l2.start_samples(space, a2, y);
    long const gmax = l0.group(), batch = long(x.extent(0));
    if (l1.group() != gmax || l2.group() != gmax) return false;
    long const nc = std::min<long>({l0.chunks(), l1.chunks(), l2.chunks(), batch, long(space.concurrency())});
    long const s0 = d0.c * d0.h * d0.w, s1 = d0.o * d0.oh * d0.ow, s2 = d1.o * d1.oh * d1.ow, s3 = d2.o * d2.oh * d2.ow;
    long const per = gmax * (s1 + s2);
    if (long(chain_.extent(0)) < nc * per)
      chain_ = vector_type(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string("lensing::nn::Residual::chain")),
                           nc * per);
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    Scalar* cb = chain_.data();
    auto const* p0 = &l0;
    auto const* p1 = &l1;
    auto const* p2 = &l2;
    Kokkos::parallel_for("lensing::nn::Residual::forward_chain", Kokkos::RangePolicy<ExecutionSpace>(space, 0, nc),
                         [=](long t) {
                           Scalar* b1 = cb + t * per;
                           Scalar* b2 = b1 + gmax * s1;
                           long const hi = batch * (t + 1) / nc;
                           for (long n = batch * t / nc; n < hi; n += gmax) {
                             long const gn = std::min(gmax, hi - n);
                             p0->forward_samples(d0, gn, xp + n * s0, b1, nullptr, p0->scratch(t));
                             p1->forward_samples(d1, gn, b1, b2, nullptr, p1->scratch(t));
                             p2->forward_samples(d2, gn, b2, yp + n * s3, xp + n * s0, p2->scratch(t));
                           }
                         });
    space.fence();
    block_stale_ = true;
    return true;
  }

  // Implementation, public for nvcc: c = a + b element-wise.
  template <class ExecutionSpace>
  static void add(ExecutionSpace const& space, tensor_type const& a, tensor_type const& b, tensor_type const& c,
                  char const* name) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>, "lensing::nn::Residual: inaccessible tensors");
    Scalar const* ap = a.data();
    Scalar const* bp = b.data();
    Scalar* cp = c.data();
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(a.size())),
        KOKKOS_LAMBDA(long i) { cp[i] = ap[i] + bp[i]; });
  }

 private:
  long shortcut_params() const {
    if constexpr (identity)
      return 0;
    else
      return shortcut_.num_params();
  }
  long shortcut_state() const {
    if constexpr (identity)
      return 0;
    else
      return shortcut_.num_state();
  }
  void bind_children() {
    long const np = this->num_params();
    block_.bind_parameters(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(0L, nb_))));
    block_.bind_state(vector_type(Kokkos::subview(state_, Kokkos::make_pair(0L, sb_))));
    if constexpr (!identity) {
      shortcut_.bind_parameters(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(nb_, np))));
      shortcut_.bind_state(vector_type(Kokkos::subview(state_, Kokkos::make_pair(sb_, num_state()))));
    }
  }

  Block block_;
  Shortcut shortcut_;
  bool prepared_ = false;
  Shape4 in_, out_;
  long nb_ = 0, sb_ = 0;
  vector_type state_;
  // forward_chain's per-thread buffers (host), and whether the branch's
  // activations are out of date (the last forward ran forward_chain).
  vector_type chain_;
  bool block_stale_ = false;
  // *_store_: buffers at capacity; by_, sy_, sdx_: their slices for in_.
  tensor_type by_store_, sy_store_, sdx_store_, by_, sy_, sdx_;
};

/// Pre-activated bottleneck residual unit (He et al. 2016, arXiv:1603.05027;
/// the DeepLens lens finder of Lanusse et al. 2018 with ELU):
/// F = BN–ELU–Conv1x1(c_in→c_mid) – BN–ELU–Conv3x3(c_mid→c_mid, stride, pad 1)
/// – BN–ELU–Conv1x1(c_mid→c_out); shortcut: a 1x1 Conv2D projection with the
/// stride when stride ≠ 1 or c_in ≠ c_out.  Returns a Residual<Sequential<...>, Conv2D>
/// taking any (N, c_in, H, W) input (shapes inferred from it; the projection
/// is present in every case, the identity being the special case of its
/// weights; use make_preact_bottleneck_identity for a parameter-free shortcut).
///
/// Each BN–ELU–Conv of F is one PreactConv2D (preact_conv2d.hpp: the
/// normalisation and activation fused into the convolution's input pass),
/// with the parameters and state of the three layers in their order, so the
/// unit's flat parameters, state and saved weights are those of the layers
/// written out one by one.  (Initialisation: each convolution draws its
/// He-normal weights from the seed of its PreactConv2D, child j of the block.)
template <class Scalar, class MemorySpace>
auto make_preact_bottleneck(int c_in, int c_mid, int c_out, int stride = 1) {
  using P = PreactConv2D<Scalar, MemorySpace>;
  using C = Conv2D<Scalar, MemorySpace>;
  auto block = make_sequential(P(c_in, c_mid, 1), P(c_mid, c_mid, 3, stride, 1), P(c_mid, c_out, 1));
  return Residual<decltype(block), C>(block, C(c_in, c_out, 1, stride));
}
/// The same unit prepared for inputs of shape `in` (c_in = in.c).
template <class Scalar, class MemorySpace>
auto make_preact_bottleneck(Shape4 const& in, int c_mid, int c_out, int stride = 1) {
  auto unit = make_preact_bottleneck<Scalar, MemorySpace>(in.c, c_mid, c_out, stride);
  unit.prepare(in);
  return unit;
}

/// Pre-activated bottleneck unit with an identity shortcut (stride 1, c_out = c_in),
/// taking any (N, c, H, W) input.
template <class Scalar, class MemorySpace>
auto make_preact_bottleneck_identity(int c, int c_mid) {
  using P = PreactConv2D<Scalar, MemorySpace>;
  auto block = make_sequential(P(c, c_mid, 1), P(c_mid, c_mid, 3, 1, 1), P(c_mid, c, 1));
  return Residual<decltype(block)>(block);
}
/// The same unit prepared for inputs of shape `in` (c = in.c).
template <class Scalar, class MemorySpace>
auto make_preact_bottleneck_identity(Shape4 const& in, int c_mid) {
  auto unit = make_preact_bottleneck_identity<Scalar, MemorySpace>(in.c, c_mid);
  unit.prepare(in);
  return unit;
}

/// Pre-activated basic (non-bottleneck) residual unit (He et al. 2016,
/// arXiv:1603.05027, the two-3x3 unit of their ResNet-18/34, with ELU):
/// F = BN–ELU–Conv3x3(c_in→c_out, stride, pad 1) – BN–ELU–Conv3x3(c_out→c_out,
/// pad 1); shortcut: a 1x1 Conv2D projection with the stride (for a stride or
/// width change).  Returns a Residual<Sequential<...>, Conv2D> taking any
/// (N, c_in, H, W) input; output (N, c_out, ⌊(H−1)/stride⌋+1, ⌊(W−1)/stride⌋+1).
/// The projection is present in every case (as make_preact_bottleneck); use
/// make_preact_basic_identity for a parameter-free shortcut.
template <class Scalar, class MemorySpace>
auto make_preact_basic(int c_in, int c_out, int stride = 1) {
  using P = PreactConv2D<Scalar, MemorySpace>;
  using C = Conv2D<Scalar, MemorySpace>;
  auto block = make_sequential(P(c_in, c_out, 3, stride, 1), P(c_out, c_out, 3, 1, 1));
  return Residual<decltype(block), C>(block, C(c_in, c_out, 1, stride));
}
/// The same unit prepared for inputs of shape `in` (c_in = in.c).
template <class Scalar, class MemorySpace>
auto make_preact_basic(Shape4 const& in, int c_out, int stride = 1) {
  auto unit = make_preact_basic<Scalar, MemorySpace>(in.c, c_out, stride);
  unit.prepare(in);
  return unit;
}

/// Pre-activated basic unit with an identity shortcut (stride 1, c_out = c_in):
/// y = x + Conv3x3(ELU(BN(Conv3x3(ELU(BN(x)))))), taking any (N, c, H, W) input.
template <class Scalar, class MemorySpace>
auto make_preact_basic_identity(int c) {
  using P = PreactConv2D<Scalar, MemorySpace>;
  auto block = make_sequential(P(c, c, 3, 1, 1), P(c, c, 3, 1, 1));
  return Residual<decltype(block)>(block);
}
/// The same unit prepared for inputs of shape `in` (c = in.c).
template <class Scalar, class MemorySpace>
auto make_preact_basic_identity(Shape4 const& in) {
  auto unit = make_preact_basic_identity<Scalar, MemorySpace>(in.c);
  unit.prepare(in);
  return unit;
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_RESIDUAL_HPP
