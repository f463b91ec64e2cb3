#ifndef LENSING_NN_LOSSES_HPP
#define LENSING_NN_LOSSES_HPP

/// \file
/// Loss objects: the losses of loss.hpp, loss_gaussian_full.hpp and
/// loss_mdn.hpp as small value types with one call signature, so that a
/// training loop (fit.hpp, train.hpp) takes them without hand-written
/// wrappers.
///
/// Every loss object `loss` provides
/// \code
/// double v = loss(space, pred, labels, grad);   // batch-mean value; dL/dpred into grad (skipped when null)
/// double v = loss.value(space, pred, labels);   // the value only
/// long   m = loss.num_outputs(K);               // network outputs per sample for K label columns
/// char const* loss.name();                      // "mse", "gaussian_nll", ...
/// \endcode
/// with pred the network output (N, C, H, W) read per sample as C·H·W
/// values, labels (N, K) and grad of pred's shape, as documented by the
/// function each one calls (the values, gradients and packings are theirs).
/// Each models the Loss concept of loss.hpp (is_loss_v).  fit() uses
/// num_outputs to refuse, before training, a network whose output does not
/// fit the labels of its data source.

#include <lensing/nn/loss.hpp>
#include <lensing/nn/loss_gaussian_full.hpp>
#include <lensing/nn/loss_mdn.hpp>
#include <lensing/nn/tensor.hpp>

namespace lensing {
namespace nn {

namespace detail {
/// The shared interface: value() from operator() with a null gradient.
template <class Derived>
struct LossObject {
  template <class ExecutionSpace, class Scalar, class MemorySpace>
  double value(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& pred,
               View2D<Scalar, MemorySpace> const& labels) const {
    return static_cast<Derived const&>(*this)(space, pred, labels, Tensor<Scalar, MemorySpace>());
  }
};
}  // namespace detail

/// Mean squared error (mse_loss): K outputs per sample, the predictions.
struct MSELoss : detail::LossObject<MSELoss> {
  static constexpr char const* name() { return "mse"; }
  static long num_outputs(long k) { return k; }
  template <class ExecutionSpace, class Scalar, class MemorySpace>
  double operator()(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& pred,
                    View2D<Scalar, MemorySpace> const& labels, Tensor<Scalar, MemorySpace> const& grad) const {
    return double(mse_loss(space, pred, labels, grad));
  }
};

/// Heteroscedastic Gaussian NLL with diagonal covariance
/// (gaussian_nll_loss): 2K outputs per sample, (μ_1..μ_K, log σ²_1..log σ²_K).
struct GaussianNLLLoss : detail::LossObject<GaussianNLLLoss> {
  static constexpr char const* name() { return "gaussian_nll"; }
  static long num_outputs(long k) { return 2 * k; }
  template <class ExecutionSpace, class Scalar, class MemorySpace>
  double operator()(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& pred,
                    View2D<Scalar, MemorySpace> const& labels, Tensor<Scalar, MemorySpace> const& grad) const {
    return double(gaussian_nll_loss(space, pred, labels, grad));
  }
};

/// Gaussian NLL with full covariance (gaussian_full_nll_loss): K + K(K+1)/2
/// outputs per sample, the mean then the packed Cholesky factor of the
/// precision; gaussian_full_unpack turns predictions into means and
/// covariances.
struct GaussianFullNLLLoss : detail::LossObject<GaussianFullNLLLoss> {
  static constexpr char const* name() { return "gaussian_full_nll"; }
  static long num_outputs(long k) { return gaussian_full_outputs(k); }
  template <class ExecutionSpace, class Scalar, class MemorySpace>
  double operator()(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& pred,
                    View2D<Scalar, MemorySpace> const& labels, Tensor<Scalar, MemorySpace> const& grad) const {
    return double(gaussian_full_nll_loss(space, pred, labels, grad));
  }
};

/// Binary cross-entropy with logits (bce_with_logits_loss): K logits per
/// sample, labels in [0, 1].
struct BCEWithLogitsLoss : detail::LossObject<BCEWithLogitsLoss> {
  static constexpr char const* name() { return "bce_with_logits"; }
  static long num_outputs(long k) { return k; }
  template <class ExecutionSpace, class Scalar, class MemorySpace>
  double operator()(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& pred,
                    View2D<Scalar, MemorySpace> const& labels, Tensor<Scalar, MemorySpace> const& grad) const {
    return double(bce_with_logits_loss(space, pred, labels, grad));
  }
};

/// Mixture-density-network NLL (mdn_nll_loss) with `components` diagonal
/// Gaussians: components (1 + 2K) outputs per sample.
struct MDNLoss : detail::LossObject<MDNLoss> {
  int components = 1;
  explicit MDNLoss(int k = 1) : components(k) { check_count(k, 1, "lensing::nn::MDNLoss", "components"); }
  static constexpr char const* name() { return "mdn_nll"; }
  long num_outputs(long k) const { return mdn_outputs(components, k); }
  template <class ExecutionSpace, class Scalar, class MemorySpace>
  double operator()(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& pred,
                    View2D<Scalar, MemorySpace> const& labels, Tensor<Scalar, MemorySpace> const& grad) const {
    return double(mdn_nll_loss(space, pred, labels, components, grad));
  }
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_LOSSES_HPP
