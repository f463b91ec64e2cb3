#ifndef LENSING_NN_LOSS_MDN_HPP
#define LENSING_NN_LOSS_MDN_HPP

/// \file
/// Mixture-density-network negative log-likelihood (diagonal Gaussian components).

#include <lensing/core/math.hpp>
#include <lensing/nn/finite_check.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

namespace lensing {
namespace nn {

/// Network outputs per sample of a K-component, D-dimensional mixture: K(1 + 2D).
inline long mdn_outputs(long k, long d) { return k * (1 + 2 * d); }

/// Mixture-density-network NLL (Bishop 1994, "Mixture Density Networks").
///
/// The network predicts, per sample, a mixture of K Gaussians with diagonal
/// covariance.  Packing of pred (N, C, H, W), read per sample as
/// C·H·W = K(1 + 2D) values (mdn_outputs(K, D)):
///   - values 0..K−1: the logits α_k (weights π = softmax(α));
///   - value K + k D + d: the mean μ_kd;
///   - value K + K D + k D + d: s_kd = log σ_kd.
/// target is (N, D); K is the argument `components`.
///
/// Loss, averaged over the batch (natural log):
///   L = −(1/N) Σ_n log Σ_k π_k Π_d N(t_d; μ_kd, σ_kd²),
/// evaluated as −[LSE_k(α_k + ℓ_k) − LSE_k(α_k)] with
/// ℓ_k = Σ_d [−½ u_kd² − s_kd − ½ log 2π], u_kd = (t_d − μ_kd) e^{−s_kd},
/// and both log-sum-exps shifted by their maximum (stable for any finite
/// logits and far-away components).  Gradient, with responsibilities
/// γ_k = softmax_k(α_k + ℓ_k), per sample divided by N:
///   dL/dα_k = π_k − γ_k;  dL/dμ_kd = −γ_k u_kd e^{−s_kd};
///   dL/ds_kd = γ_k (1 − u_kd²).
///
/// grad (shape of pred) is overwritten, skipped when grad.data() is null.
/// Sums in double.  Throws std::invalid_argument("lensing::nn::mdn_nll_loss:
/// ...") for components < 1, inconsistent shapes or non-finite values.
/// Valid while e^{−s} and u² do not overflow (in float: s > −44).
template <class ExecutionSpace, class Scalar, class MemorySpace>
Scalar mdn_nll_loss(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& pred,
                    View2D<Scalar, MemorySpace> const& target, int components,
                    Tensor<Scalar, MemorySpace> const& grad) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>, "lensing::nn::mdn_nll_loss: inaccessible views");
  char const* where = "lensing::nn::mdn_nll_loss";
  check_count(components, 1, where, "components");
  long const n = target.extent(0), d = target.extent(1), k = components;
  check_argument(d >= 1, where, "target must have at least one column");
  long const ps = mdn_outputs(k, d);
  detail::check_packed_loss(space, pred, target, grad, ps, d, where);
  Scalar const* p = pred.data();
  Scalar const* t = target.data();
  Scalar* g = grad.data();
  double const inv_n = 1.0 / double(n);
  double const half_log2pi = 0.91893853320467274178;
  double sum = 0;
  Kokkos::parallel_reduce(
      "lensing::nn::mdn_nll_loss", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n),
      KOKKOS_LAMBDA(long b, double& acc) {
        Scalar const* alpha = p + b * ps;
        Scalar const* mu = alpha + k;
        Scalar const* ls = mu + k * d;
        Scalar const* tb = t + b * d;
        // log-likelihood of component c (without its weight).
        auto const ell = [&](long c) {
          double l = 0;
          for (long j = 0; j < d; ++j) {
            double const s = double(ls[c * d + j]);
            double const u = (double(tb[j]) - double(mu[c * d + j])) * lensing::math::exp(-s);
            l += -0.5 * u * u - s - half_log2pi;
          }
          return l;
        };
        double amax = double(alpha[0]), cmax = double(alpha[0]) + ell(0);
        for (long c = 1; c < k; ++c) {
          amax = lensing::math::fmax(amax, double(alpha[c]));
          cmax = lensing::math::fmax(cmax, double(alpha[c]) + ell(c));
        }
        double asum = 0, csum = 0;
        for (long c = 0; c < k; ++c) {
          asum += lensing::math::exp(double(alpha[c]) - amax);
          csum += lensing::math::exp(double(alpha[c]) + ell(c) - cmax);
        }
        double const lse_a = amax + lensing::math::log(asum), lse_c = cmax + lensing::math::log(csum);
        acc += lse_a - lse_c;
        if (g != nullptr) {
          Scalar* ga = g + b * ps;
          Scalar* gm = ga + k;
          Scalar* gs = gm + k * d;
          for (long c = 0; c < k; ++c) {
            double const pi = lensing::math::exp(double(alpha[c]) - lse_a);
            double const gam = lensing::math::exp(double(alpha[c]) + ell(c) - lse_c);
            ga[c] = Scalar(inv_n * (pi - gam));
            for (long j = 0; j < d; ++j) {
              double const w = lensing::math::exp(-double(ls[c * d + j]));
              double const u = (double(tb[j]) - double(mu[c * d + j])) * w;
              gm[c * d + j] = Scalar(-inv_n * gam * u * w);
              gs[c * d + j] = Scalar(inv_n * gam * (1.0 - u * u));
            }
          }
        }
      },
      sum);
  return Scalar(sum * inv_n);
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_LOSS_MDN_HPP
