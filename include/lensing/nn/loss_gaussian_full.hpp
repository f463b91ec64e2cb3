#ifndef LENSING_NN_LOSS_GAUSSIAN_FULL_HPP
#define LENSING_NN_LOSS_GAUSSIAN_FULL_HPP

/// \file
/// Full-covariance Gaussian negative log-likelihood with a Cholesky factor
/// of the precision matrix predicted by the network.

#include <lensing/core/math.hpp>
#include <lensing/nn/finite_check.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace lensing {
namespace nn {

/// Number of network outputs per sample for a D-dimensional full-covariance
/// Gaussian: D means + D(D+1)/2 entries of the lower-triangular factor.
inline long gaussian_full_outputs(long d) { return d + d * (d + 1) / 2; }

/// Position of the factor entry (i, j), j <= i, in the packed triangle
/// (row-major lower triangle: (0,0), (1,0), (1,1), (2,0), ...).
KOKKOS_INLINE_FUNCTION long tril_index(long i, long j) { return i * (i + 1) / 2 + j; }

/// Full-covariance Gaussian NLL, precision-Cholesky parameterisation.
///
/// The network predicts, per sample, a mean μ (D) and the lower-triangular
/// Cholesky factor L of the *precision* matrix Λ = Σ⁻¹ = L Lᵀ (as in
/// Dorta et al. 2018, "Structured Uncertainty Prediction Networks", and the
/// full-covariance lens-modelling BNNs of Wagner-Carena et al. 2021): the
/// likelihood needs no triangular solve, log det Λ = 2 Σ_i log L_ii, and any
/// real output is a valid positive-definite matrix.
///
/// Packing of pred (N, C, H, W), read per sample as C·H·W =
/// D + D(D+1)/2 values (gaussian_full_outputs(D)):
///   - values 0..D−1: μ_0..μ_{D−1};
///   - value D + i(i+1)/2 + j (tril_index(i, j), j ≤ i): the raw entry a_ij,
///     with L_ij = a_ij below the diagonal and L_ii = exp(a_ii) on it
///     (a_ii = log L_ii, so that the diagonal is positive).
/// target is (N, D).
///
/// Loss, averaged over the batch (natural log, units of the targets):
///   L = (1/N) Σ_n [ ½ ‖Lᵀ r‖² − Σ_i a_ii + (D/2) log 2π ],   r = t − μ,
/// so that ½ ‖Lᵀ r‖² = ½ rᵀ Σ⁻¹ r and −Σ a_ii = ½ log det Σ.
/// Gradient (z = Lᵀ r, z_j = Σ_{i≥j} L_ij r_i), per sample divided by N:
///   dL/dμ = −L z;  dL/da_ij = r_i z_j (j < i);  dL/da_ii = r_i z_i L_ii − 1.
/// The covariance is Σ = L⁻ᵀ L⁻¹ (gaussian_full_unpack computes it).
///
/// grad (shape of pred) is overwritten, skipped when grad.data() is null.
/// Sums in double.  Throws std::invalid_argument("lensing::nn::
/// gaussian_full_nll_loss: ...") on inconsistent shapes or non-finite pred
/// or target.  Valid while exp(a_ii) does not overflow (|a_ii| < 88 in float).
template <class ExecutionSpace, class Scalar, class MemorySpace>
Scalar gaussian_full_nll_loss(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& pred,
                              View2D<Scalar, MemorySpace> const& target, Tensor<Scalar, MemorySpace> const& grad) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                "lensing::nn::gaussian_full_nll_loss: inaccessible views");
  char const* where = "lensing::nn::gaussian_full_nll_loss";
  long const n = target.extent(0), d = target.extent(1);
  check_argument(d >= 1, where, "target must have at least one column");
  long const ps = gaussian_full_outputs(d);
  detail::check_packed_loss(space, pred, target, grad, ps, d, where);
  View2D<double, MemorySpace> zbuf("lensing::nn::gaussian_full_nll_loss::z", n, d);
  double* zw = zbuf.data();
  Scalar const* p = pred.data();
  Scalar const* t = target.data();
  Scalar* g = grad.data();
  double const inv_n = 1.0 / double(n);
  double const log2pi = 1.8378770664093454836;
  double sum = 0;
  Kokkos::parallel_reduce(
      "lensing::nn::gaussian_full_nll_loss", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n),
      KOKKOS_LAMBDA(long b, double& acc) {
        Scalar const* mu = p + b * ps;
        Scalar const* a = mu + d;
        Scalar const* tb = t + b * d;
        double* z = zw + b * d;
        double quad = 0, logdiag = 0;
        for (long j = 0; j < d; ++j) {
          double s = 0;
          for (long i = j; i < d; ++i) {
            double const aij = double(a[tril_index(i, j)]);
            double const lij = i == j ? lensing::math::exp(aij) : aij;
            s += lij * (double(tb[i]) - double(mu[i]));
          }
          z[j] = s;
          quad += s * s;
          logdiag += double(a[tril_index(j, j)]);
        }
        acc += 0.5 * quad - logdiag + 0.5 * double(d) * log2pi;
        if (g != nullptr) {
          Scalar* gb = g + b * ps;
          for (long i = 0; i < d; ++i) {
            double const ri = double(tb[i]) - double(mu[i]);
            double lz = 0;
            for (long j = 0; j <= i; ++j) {
              double const aij = double(a[tril_index(i, j)]);
              double const lij = i == j ? lensing::math::exp(aij) : aij;
              lz += lij * z[j];
              gb[d + tril_index(i, j)] = Scalar(inv_n * (i == j ? ri * z[j] * lij - 1.0 : ri * z[j]));
            }
            gb[i] = Scalar(-inv_n * lz);
          }
        }
      },
      sum);
  return Scalar(sum * inv_n);
}

/// Unpack the predicted Gaussians of gaussian_full_nll_loss, on the host.
///
/// For pred (N, C, H, W) packed as documented above (D + D(D+1)/2 values per
/// sample), writes mean (N, D) = μ and cov (N, D, D) = Σ = Λ⁻¹ = L⁻ᵀ L⁻¹
/// (M = L⁻¹ by forward substitution, Σ_ij = Σ_k M_ki M_kj), in double.
/// Throws std::invalid_argument("lensing::nn::gaussian_full_unpack: ...") on
/// inconsistent extents or non-finite pred.
template <class Scalar, class MemorySpace>
void gaussian_full_unpack(Tensor<Scalar, MemorySpace> const& pred, View2D<double, Kokkos::HostSpace> const& mean,
                          View3D<double, Kokkos::HostSpace> const& cov) {
  char const* where = "lensing::nn::gaussian_full_unpack";
  long const n = long(pred.extent(0)), d = long(mean.extent(1));
  check_argument(d >= 1, where, "mean must have at least one column");
  long const ps = gaussian_full_outputs(d);
  check_argument(long(pred.extent(1)) * long(pred.extent(2)) * long(pred.extent(3)) == ps, where,
                 "pred has " + std::to_string(pred.extent(1) * pred.extent(2) * pred.extent(3)) +
                     " values per sample, expected " + std::to_string(ps) + " for D = " + std::to_string(d));
  check_argument(
      long(mean.extent(0)) == n && long(cov.extent(0)) == n && long(cov.extent(1)) == d && long(cov.extent(2)) == d,
      where, "mean must be (N, D) and cov (N, D, D) for pred of batch N = " + std::to_string(n));
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), pred);
  Scalar const* p = h.data();
  for (long i = 0; i < long(h.size()); ++i)
    check_argument(detail::finite_bits(p[i]), where, "pred has NaN or infinite values");
  std::vector<double> l(std::size_t(d * d)), m(std::size_t(d * d));
  for (long b = 0; b < n; ++b) {
    Scalar const* mu = p + b * ps;
    Scalar const* a = mu + d;
    for (long i = 0; i < d; ++i) {
      mean(b, i) = double(mu[i]);
      for (long j = 0; j < d; ++j)
        l[std::size_t(i * d + j)] =
            j > i ? 0.0 : (j == i ? std::exp(double(a[tril_index(i, i)])) : double(a[tril_index(i, j)]));
    }
    // M = L⁻¹, column by column: L m_j = e_j.
    for (long j = 0; j < d; ++j)
      for (long i = 0; i < d; ++i) {
        double s = i == j ? 1.0 : 0.0;
        for (long k = 0; k < i; ++k)
          s -= l[std::size_t(i * d + k)] * m[std::size_t(k * d + j)];
        m[std::size_t(i * d + j)] = s / l[std::size_t(i * d + i)];
      }
    for (long i = 0; i < d; ++i)
      for (long j = 0; j < d; ++j) {
        double s = 0;
        for (long k = 0; k < d; ++k)
          s += m[std::size_t(k * d + i)] * m[std::size_t(k * d + j)];
        cov(b, i, j) = s;
      }
  }
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_LOSS_GAUSSIAN_FULL_HPP
