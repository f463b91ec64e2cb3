#ifndef LENSING_NN_LOSS_HPP
#define LENSING_NN_LOSS_HPP

/// \file
/// Losses: value and gradient with respect to the network output.
///
/// Every loss takes the network output `pred` (N, C, H, W) read per sample
/// as a vector of C·H·W values, targets `target` (N, D) row-major, and writes
/// dL/d(pred) into `grad` (same shape as pred; skipped when grad.data() is
/// null, e.g. `net.output_gradient()`), and returns L averaged over the batch
/// as documented per loss.  Sums are accumulated in double.
///
/// ## Loss concept (what `train()` (train.hpp) takes)
///
/// A Loss for a network of scalar `Scalar` in `MemorySpace` is any callable
/// (a lambda wrapping one of the functions of loss*.hpp, or a type of one's
/// own) with
/// \code
/// Scalar loss(ExecutionSpace const& space,
///             Tensor<Scalar, MemorySpace> const& pred,      // (N, C, H, W)
///             View2D<Scalar, MemorySpace> const& target,    // (N, D)
///             Tensor<Scalar, MemorySpace> const& grad);     // dL/dpred, or null
/// \endcode
/// returning the batch-mean loss (any arithmetic type) and writing dL/dpred
/// into grad unless grad.data() is null.  `is_loss_v<F, ExecutionSpace,
/// Scalar, MemorySpace>` tests it; `check_loss<...>()` names what is missing.

#include <lensing/core/math.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <string>
#include <type_traits>
#include <utility>

namespace lensing {
namespace nn {

namespace detail {
template <class F, class ExecutionSpace, class Scalar, class MemorySpace, class = void>
struct loss_result {
  static constexpr bool callable = false;
  using type = void;
};
template <class F, class ExecutionSpace, class Scalar, class MemorySpace>
struct loss_result<
    F, ExecutionSpace, Scalar, MemorySpace,
    std::void_t<decltype(std::declval<F&>()(
        std::declval<ExecutionSpace const&>(), std::declval<Tensor<Scalar, MemorySpace> const&>(),
        std::declval<View2D<Scalar, MemorySpace> const&>(), std::declval<Tensor<Scalar, MemorySpace> const&>()))>> {
  static constexpr bool callable = true;
  using type = decltype(std::declval<F&>()(
      std::declval<ExecutionSpace const&>(), std::declval<Tensor<Scalar, MemorySpace> const&>(),
      std::declval<View2D<Scalar, MemorySpace> const&>(), std::declval<Tensor<Scalar, MemorySpace> const&>()));
};
template <class F, class ExecutionSpace, class Scalar, class MemorySpace>
constexpr bool loss_returns_value =
    std::is_arithmetic<std::decay_t<typename loss_result<F, ExecutionSpace, Scalar, MemorySpace>::type>>::value;
}  // namespace detail

/// Whether F models Loss (see above) for a network of Scalar in MemorySpace
/// run on ExecutionSpace.
template <class F, class ExecutionSpace, class Scalar, class MemorySpace>
constexpr bool is_loss_v =
    detail::loss_result<std::remove_reference_t<F>, ExecutionSpace, Scalar, MemorySpace>::callable&&
        detail::loss_returns_value<std::remove_reference_t<F>, ExecutionSpace, Scalar, MemorySpace>;

/// Compile-time check with one readable message per missing requirement.
template <class F, class ExecutionSpace, class Scalar, class MemorySpace>
constexpr bool check_loss() {
  using G = std::remove_reference_t<F>;
  static_assert(is_execution_space_v<ExecutionSpace>, "lensing::nn::Loss: not a Kokkos execution space");
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                "lensing::nn::Loss: the memory space is not accessible from the execution space");
  static_assert(detail::loss_result<G, ExecutionSpace, Scalar, MemorySpace>::callable,
                "lensing::nn::Loss: the loss must be callable as loss(space, Tensor<Scalar, MemorySpace> pred, "
                "View2D<Scalar, MemorySpace> target, Tensor<Scalar, MemorySpace> grad)");
  static_assert(!detail::loss_result<G, ExecutionSpace, Scalar, MemorySpace>::callable ||
                    detail::loss_returns_value<G, ExecutionSpace, Scalar, MemorySpace>,
                "lensing::nn::Loss: the loss must return the batch-mean loss as a number (float or double)");
  return true;
}

namespace detail {
template <class P, class T, class G>
void check_loss_args(P const& pred, T const& target, G const& grad, long per_sample_pred, long d, char const* where) {
  check_argument(
      long(target.extent(0)) == long(pred.extent(0)), where,
      "target has " + std::to_string(target.extent(0)) + " rows, pred has batch " + std::to_string(pred.extent(0)));
  check_argument(per_sample_pred == (long(pred.extent(1)) * long(pred.extent(2)) * long(pred.extent(3))), where,
                 "pred has " + std::to_string(pred.extent(1) * pred.extent(2) * pred.extent(3)) +
                     " values per sample, expected " + std::to_string(per_sample_pred) + " for " + std::to_string(d) +
                     " targets per sample");
  if (grad.data() != nullptr) check_shape(grad, shape_of(pred), where, "grad");
}
}  // namespace detail

/// Mean squared error L = (1/(N D)) Σ_{n,d} (pred − target)²; dL/dpred = 2 (pred − target)/(N D).
template <class ExecutionSpace, class Scalar, class MemorySpace>
Scalar mse_loss(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& pred,
                View2D<Scalar, MemorySpace> const& target, Tensor<Scalar, MemorySpace> const& grad) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>, "lensing::nn::mse_loss: inaccessible views");
  long const n = target.extent(0), d = target.extent(1);
  detail::check_loss_args(pred, target, grad, d, d, "lensing::nn::mse_loss");
  Scalar const* p = pred.data();
  Scalar const* t = target.data();
  Scalar* g = grad.data();
  double const scale = 1.0 / (double(n) * double(d));
  double sum = 0;
  Kokkos::parallel_reduce(
      "lensing::nn::mse_loss", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * d),
      KOKKOS_LAMBDA(long i, double& acc) {
        Scalar const r = p[i] - t[i];
        acc += double(r) * double(r);
        if (g != nullptr) g[i] = Scalar(2 * scale) * r;
      },
      sum);
  return Scalar(sum * scale);
}

/// Heteroscedastic (aleatoric) Gaussian negative log-likelihood, Kendall & Gal (2017).
///
/// pred per sample = (μ_1..μ_D, s_1..s_D) with s = log σ²;
/// L = (1/N) Σ_n Σ_d ½[(t − μ)² e^{−s} + s + log 2π];
/// dL/dμ = −(t − μ) e^{−s}/N, dL/ds = ½(1 − (t − μ)² e^{−s})/N.
template <class ExecutionSpace, class Scalar, class MemorySpace>
Scalar gaussian_nll_loss(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& pred,
                         View2D<Scalar, MemorySpace> const& target, Tensor<Scalar, MemorySpace> const& grad) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                "lensing::nn::gaussian_nll_loss: inaccessible views");
  long const n = target.extent(0), d = target.extent(1);
  detail::check_loss_args(pred, target, grad, 2 * d, d, "lensing::nn::gaussian_nll_loss");
  Scalar const* p = pred.data();
  Scalar const* t = target.data();
  Scalar* g = grad.data();
  double const inv_n = 1.0 / double(n);
  double sum = 0;
  Kokkos::parallel_reduce(
      "lensing::nn::gaussian_nll_loss", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * d),
      KOKKOS_LAMBDA(long i, double& acc) {
        long const b = i / d, j = i % d;
        Scalar const mu = p[b * 2 * d + j], s = p[b * 2 * d + d + j];
        Scalar const r = t[i] - mu, w = lensing::math::exp(-s);
        acc += 0.5 * (double(r) * double(r) * double(w) + double(s) + 1.8378770664093454836);
        if (g != nullptr) {
          g[b * 2 * d + j] = Scalar(-inv_n) * r * w;
          g[b * 2 * d + d + j] = Scalar(0.5 * inv_n) * (Scalar(1) - r * r * w);
        }
      },
      sum);
  return Scalar(sum * inv_n);
}

/// Binary cross-entropy with logits z and labels t in [0, 1]:
/// L = (1/(N D)) Σ [max(z, 0) − z t + log(1 + e^{−|z|})] (stable for any z);
/// dL/dz = (σ(z) − t)/(N D).
template <class ExecutionSpace, class Scalar, class MemorySpace>
Scalar bce_with_logits_loss(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& logits,
                            View2D<Scalar, MemorySpace> const& target, Tensor<Scalar, MemorySpace> const& grad) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                "lensing::nn::bce_with_logits_loss: inaccessible views");
  long const n = target.extent(0), d = target.extent(1);
  detail::check_loss_args(logits, target, grad, d, d, "lensing::nn::bce_with_logits_loss");
  Scalar const* p = logits.data();
  Scalar const* t = target.data();
  Scalar* g = grad.data();
  double const scale = 1.0 / (double(n) * double(d));
  double sum = 0;
  Kokkos::parallel_reduce(
      "lensing::nn::bce_with_logits_loss",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * d),
      KOKKOS_LAMBDA(long i, double& acc) {
        Scalar const z = p[i];
        Scalar const e = lensing::math::exp(-lensing::math::fabs(z));
        acc += double((z > Scalar(0) ? z : Scalar(0)) - z * t[i] + lensing::math::log1p(e));
        Scalar const sig = z >= Scalar(0) ? Scalar(1) / (Scalar(1) + e) : e / (Scalar(1) + e);
        if (g != nullptr) g[i] = Scalar(scale) * (sig - t[i]);
      },
      sum);
  return Scalar(sum * scale);
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_LOSS_HPP
