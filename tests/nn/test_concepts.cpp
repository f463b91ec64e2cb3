// The Layer and Loss concepts (nn/layer.hpp, nn/loss.hpp): the library's
// layers, a network, a residual unit and hand-written archetypes pass the
// per-requirement checks; types that miss one requirement are rejected by the
// trait (tested as a value, so the build does not fail).

#include <lensing/nn/activation.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/flatten.hpp>
#include <lensing/nn/layer.hpp>
#include <lensing/nn/loss.hpp>
#include <lensing/nn/residual.hpp>
#include <lensing/nn/sequential.hpp>

#include <lensing_test.hpp>

#include <cstdint>

namespace nn = lensing::nn;

namespace {

using Mem = Kokkos::HostSpace;
using Space = Mem::execution_space;
using T = nn::Tensor<double, Mem>;
using V = nn::ParamVector<double, Mem>;

// A minimal layer written against the archetype: LayerBase gives the
// parameter/state/prepare defaults, the layer adds output_shape, forward and
// backward.
struct ArchetypeLayer : nn::LayerBase<double, Mem> {
  nn::Shape4 output_shape(nn::Shape4 const& in) const { return in; }
  template <class ExecutionSpace>
  void forward(ExecutionSpace const&, T const&, T const&) {}
  template <class ExecutionSpace>
  void backward(ExecutionSpace const&, T const&, T const&, T const&, T const&, V const&) {}
};

// Everything but backward.  The old trait (types, shape, parameters,
// prepare, state) accepted it.
struct NoBackward : nn::LayerBase<double, Mem> {
  nn::Shape4 output_shape(nn::Shape4 const& in) const { return in; }
  template <class ExecutionSpace>
  void forward(ExecutionSpace const&, T const&, T const&) {}
};

// Everything but forward.
struct NoForward : nn::LayerBase<double, Mem> {
  nn::Shape4 output_shape(nn::Shape4 const& in) const { return in; }
  template <class ExecutionSpace>
  void backward(ExecutionSpace const&, T const&, T const&, T const&, T const&, V const&) {}
};

// Hides LayerBase's initialize(seed) and bind_state with unusable overloads.
struct NoInitializeNoBindState : ArchetypeLayer {
  void initialize() {}
  void bind_state() {}
};

// No types at all.
struct NotALayer {
  int forward(int) const { return 0; }
};

// A loss of one's own: a struct with the Loss call signature.
struct ArchetypeLoss {
  template <class ExecutionSpace>
  double operator()(ExecutionSpace const&, T const&, lensing::View2D<double, Mem> const&, T const&) const {
    return 0;
  }
};

}  // namespace

using Dense = nn::Dense<double, Mem>;
using Relu = nn::ReLU<double, Mem>;
using Net = nn::Sequential<Dense, Relu, Dense>;

static_assert(nn::check_layer<ArchetypeLayer>(), "the archetype layer models Layer");
static_assert(nn::check_layer<Dense>() && nn::check_layer<Relu>(), "library layers model Layer");
static_assert(nn::check_layer<nn::Conv2D<float, Mem>>() && nn::check_layer<nn::Flatten<float, Mem>>(),
              "library layers model Layer (float)");
static_assert(nn::check_layer<Net>(), "a Sequential models Layer (it can be a residual block)");
static_assert(nn::check_layer<nn::Residual<Net>>(), "a residual unit models Layer");

TEST_CASE("Layer concept: every requirement is detected") {
  CHECK(nn::is_layer_v<ArchetypeLayer>);
  CHECK(nn::is_layer_v<Dense>);
  CHECK(nn::is_layer_v<Net>);
  CHECK(nn::is_layer_v<nn::Residual<Net>>);
  // Each of these misses one requirement the old trait did not look at.
  CHECK_FALSE(nn::is_layer_v<NoBackward>);
  CHECK_FALSE(nn::is_layer_v<NoForward>);
  CHECK_FALSE(nn::is_layer_v<NoInitializeNoBindState>);
  CHECK_FALSE(nn::is_layer_v<NotALayer>);
  CHECK_FALSE(nn::is_layer_v<int>);
  // The per-member details name what is missing.
  CHECK(nn::detail::layer_member<nn::detail::has_layer_forward, NoBackward>::value);
  CHECK_FALSE(nn::detail::layer_member<nn::detail::has_layer_backward, NoBackward>::value);
  CHECK_FALSE(nn::detail::layer_member<nn::detail::has_layer_forward, NoForward>::value);
  CHECK_FALSE(nn::detail::layer_member<nn::detail::has_layer_initialize, NoInitializeNoBindState>::value);
  CHECK_FALSE(nn::detail::layer_member<nn::detail::has_layer_state, NoInitializeNoBindState>::value);
  CHECK(nn::detail::layer_member<nn::detail::has_layer_parameters, NoInitializeNoBindState>::value);
}

TEST_CASE("Loss concept: the library's losses wrapped in a lambda, and a callable type") {
  auto mse = [](auto const& space, T const& pred, lensing::View2D<double, Mem> const& target, T const& grad) {
    return nn::mse_loss(space, pred, target, grad);
  };
  static_assert(nn::check_loss<decltype(mse), Space, double, Mem>(), "mse_loss in a lambda models Loss");
  static_assert(nn::check_loss<ArchetypeLoss const&, Space, double, Mem>(), "a callable type models Loss");
  CHECK(nn::is_loss_v<decltype(mse)&, Space, double, Mem>);
  CHECK(nn::is_loss_v<ArchetypeLoss, Space, double, Mem>);

  // Target and prediction swapped, nothing returned, wrong scalar: rejected.
  auto swapped = [](auto const&, lensing::View2D<double, Mem> const&, T const&, T const&) { return 0.0; };
  auto returns_nothing = [](auto const&, T const&, lensing::View2D<double, Mem> const&, T const&) {};
  CHECK_FALSE(nn::is_loss_v<decltype(swapped), Space, double, Mem>);
  CHECK_FALSE(nn::is_loss_v<decltype(returns_nothing), Space, double, Mem>);
  CHECK_FALSE(nn::is_loss_v<ArchetypeLoss, Space, float, Mem>);
  CHECK_FALSE(nn::is_loss_v<int, Space, double, Mem>);
}
