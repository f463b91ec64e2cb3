#ifndef LENSING_NN_MC_PREDICT_HPP
#define LENSING_NN_MC_PREDICT_HPP

/// \file
/// Monte-Carlo dropout prediction (Gal & Ghahramani 2016): the predictive
/// mean and covariance of a network over T stochastic forward passes with
/// dropout active at inference, and for heteroscedastic Gaussian regressors
/// (Kendall & Gal 2017) the split of the predictive covariance into its
/// aleatoric and epistemic parts.

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/core/views.hpp>
#include <lensing/nn/layer.hpp>
#include <lensing/nn/loss_gaussian_full.hpp>
#include <lensing/nn/sequential.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdint>
#include <string>

namespace lensing {
namespace nn {

/// Outcome of mc_predict, in the network's memory space, in double.
template <class MemorySpace>
struct McPrediction {
  View2D<double, MemorySpace> mean;  ///< (N, K): (1/T) Σ_t y_t
  View3D<double, MemorySpace> cov;   ///< (N, K, K): (1/T) Σ_t (y_t − mean)(y_t − mean)ᵀ
  int passes = 0;                    ///< T
};

/// Parameterisation of a heteroscedastic Gaussian regressor's output.
enum class GaussianOutput {
  diagonal,  ///< per sample (μ_1..μ_D, s_1..s_D), s = log σ² (gaussian_nll_loss, loss.hpp)
  full       ///< μ then the precision's Cholesky factor, packed as gaussian_full_nll_loss
};

/// Outcome of mc_predict_gaussian, in the network's memory space, in double.
template <class MemorySpace>
struct McGaussianPrediction {
  View2D<double, MemorySpace> mean;       ///< (N, D): E[μ] ≈ (1/T) Σ_t μ_t
  View3D<double, MemorySpace> aleatoric;  ///< (N, D, D): E[Σ] ≈ (1/T) Σ_t Σ_t
  View3D<double, MemorySpace> epistemic;  ///< (N, D, D): Cov[μ] ≈ (1/T) Σ_t (μ_t − mean)(μ_t − mean)ᵀ
  View3D<double, MemorySpace> total;      ///< (N, D, D): aleatoric + epistemic
  int passes = 0;                         ///< T
};

namespace detail {
/// D for a heteroscedastic output of ps values per sample; throws when none fits.
inline long gaussian_output_dim(long ps, GaussianOutput kind, char const* where) {
  if (kind == GaussianOutput::diagonal) {
    check_argument(ps >= 2 && ps % 2 == 0, where,
                   "a diagonal Gaussian output packs (mu, log variance): an even number >= 2 of values per sample, "
                   "got " +
                       std::to_string(ps));
    return ps / 2;
  }
  for (long d = 1; gaussian_full_outputs(d) <= ps; ++d)
    if (gaussian_full_outputs(d) == ps) return d;
  throw_invalid_argument(
      where, "a full-covariance Gaussian output has D + D(D+1)/2 values per sample, got " + std::to_string(ps));
  return 0;
}

/// Runs `passes` forward passes of `net` on its input(s) (forward() returns
/// the output) in inference mode with dropout active when `dropout`, the
/// dropout layers re-seeded from `seed` first, calling update(y, t) after
/// pass t = 1..T; leaves MC dropout off.
template <class Net, class Forward, class Update>
void mc_passes(Net& net, int passes, std::uint64_t seed, bool dropout, Forward const& forward, Update const& update,
               char const* where) {
  check_count(passes, 1, where, "passes");
  net.set_training(false);
  net.set_mc_dropout(dropout);
  reseed_dropout_of(net, seed);
  try {
    for (int t = 1; t <= passes; ++t)
      update(forward(), t);
  } catch (...) {
    net.set_mc_dropout(false);
    throw;
  }
  net.set_mc_dropout(false);
}

/// Welford's update of the running mean m (N, K) and co-moment c (N, K, K)
/// with the t-th value y (N, K per sample): c += (y − m_old)(y − m_new)ᵀ,
/// m_new = m_old + (y − m_old)/t.  Equal values leave c exactly 0 and m
/// exactly equal to them.
template <class ExecutionSpace, class Scalar, class MemorySpace>
void welford_update(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& y,
                    View2D<double, MemorySpace> const& m, View3D<double, MemorySpace> const& c, int t) {
  long const n = long(m.extent(0)), k = long(m.extent(1));
  Scalar const* yp = y.data();
  double* mp = m.data();
  double* cp = c.data();
  double const inv_t = 1.0 / double(t);
  Kokkos::parallel_for(
      "lensing::nn::mc_predict::welford", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n),
      KOKKOS_LAMBDA(long b) {
        Scalar const* yb = yp + b * k;
        double* mb = mp + b * k;
        double* cb = cp + b * k * k;
        for (long i = 0; i < k; ++i) {
          double const di = double(yb[i]) - mb[i];
          for (long j = 0; j < k; ++j) {
            double const mj = mb[j] + (double(yb[j]) - mb[j]) * inv_t;
            cb[i * k + j] += di * (double(yb[j]) - mj);
          }
        }
        for (long i = 0; i < k; ++i)
          mb[i] += (double(yb[i]) - mb[i]) * inv_t;
      });
}

/// c *= s element-wise.
template <class ExecutionSpace, class MemorySpace>
void scale_in_place(ExecutionSpace const& space, View3D<double, MemorySpace> const& c, double s) {
  double* cp = c.data();
  Kokkos::parallel_for(
      "lensing::nn::mc_predict::scale",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(c.size())),
      KOKKOS_LAMBDA(long i) { cp[i] *= s; });
}

template <class ExecutionSpace, class Scalar, class MemorySpace, class Net, class Forward>
McPrediction<MemorySpace> mc_predict_impl(ExecutionSpace const& space, Net& net, int n, int passes, std::uint64_t seed,
                                          bool dropout, Forward const& forward, char const* where) {
  McPrediction<MemorySpace> r;
  r.passes = passes;
  long k = -1;
  mc_passes(
      net, passes, seed, dropout, forward,
      [&](Tensor<Scalar, MemorySpace> const& y, int t) {
        if (t == 1) {
          k = shape_of(y).per_sample();
          check_argument(int(y.extent(0)) == n, where, "the network's output batch differs from its input's");
          r.mean = allocate_view<View2D<double, MemorySpace>>(where, "mean", true, long(n), k);
          r.cov = allocate_view<View3D<double, MemorySpace>>(where, "cov", true, long(n), k, k);
        }
        welford_update(space, y, r.mean, r.cov, t);
      },
      where);
  scale_in_place(space, r.cov, 1.0 / double(passes));
  space.fence();
  return r;
}
}  // namespace detail

/// Predictive mean and covariance of `net` at x over T = `passes`
/// stochastic forward passes with dropout active at inference (MC dropout,
/// Gal & Ghahramani 2016, arXiv:1506.02142).
///
/// `net` is a Sequential (or any network with forward(space, x) returning
/// its output, set_training, set_mc_dropout and reseed_dropout), run at the
/// batch of x (any size: Sequential re-prepares); its output (N, C, H, W) is
/// read per sample as K = C·H·W values y.  Returns, in double, mean (N, K) =
/// (1/T) Σ_t y_t and cov (N, K, K) = (1/T) Σ_t (y_t − mean)(y_t − mean)ᵀ,
/// the covariance of the T-pass empirical distribution (the MC estimate of
/// the predictive covariance; multiply by T/(T−1) for the unbiased sample
/// covariance), accumulated by Welford's update (so T equal passes give a
/// mean equal to the pass and an exactly zero covariance).
///
/// Determinism: the dropout layers are re-seeded with `seed` first
/// (Sequential::reseed_dropout; pass t uses their mask number t − 1 of the
/// streams of dropout.hpp), so the result depends only on (weights, x,
/// passes, seed), not on earlier calls, the execution space or the thread
/// count.  With `dropout` false the passes are deterministic (the network's
/// inference output; the covariance is 0).  Leaves the network in inference
/// mode with MC dropout off, its dropout layers' mask sequences continued
/// from the re-seeded state.
template <class ExecutionSpace, class Net>
McPrediction<typename Net::memory_space> mc_predict(ExecutionSpace const& space, Net& net,
                                                    typename Net::tensor_type const& x, int passes, std::uint64_t seed,
                                                    bool dropout = true) {
  using Mem = typename Net::memory_space;
  static_assert(is_accessible_from_v<ExecutionSpace, Mem>,
                "lensing::nn::mc_predict: the network's memory space is not accessible from this execution space");
  return detail::mc_predict_impl<ExecutionSpace, typename Net::scalar_type, Mem>(
      space, net, int(x.extent(0)), passes, seed, dropout, [&]() { return net.forward(space, x); },
      "lensing::nn::mc_predict");
}

/// mc_predict for a network of two inputs (TwoInput): f(x1, x2) over T passes.
template <class ExecutionSpace, class Net>
McPrediction<typename Net::memory_space> mc_predict(ExecutionSpace const& space, Net& net,
                                                    typename Net::tensor_type const& x1,
                                                    typename Net::tensor_type const& x2, int passes, std::uint64_t seed,
                                                    bool dropout = true) {
  using Mem = typename Net::memory_space;
  static_assert(is_accessible_from_v<ExecutionSpace, Mem>,
                "lensing::nn::mc_predict: the network's memory space is not accessible from this execution space");
  return detail::mc_predict_impl<ExecutionSpace, typename Net::scalar_type, Mem>(
      space, net, int(x1.extent(0)), passes, seed, dropout, [&]() { return net.forward(space, x1, x2); },
      "lensing::nn::mc_predict");
}

namespace detail {
/// One pass of mc_predict_gaussian: Welford on μ (mean m, co-moment c) and
/// the running mean a of the predicted covariances Σ_t.  `work` (N, D, D)
/// holds M = L⁻¹ for the full parameterisation.
template <class ExecutionSpace, class Scalar, class MemorySpace>
void gaussian_mc_update(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& y, GaussianOutput kind,
                        View2D<double, MemorySpace> const& m, View3D<double, MemorySpace> const& c,
                        View3D<double, MemorySpace> const& a, View3D<double, MemorySpace> const& work, int t) {
  long const n = long(m.extent(0)), d = long(m.extent(1));
  long const ps = shape_of(y).per_sample();
  bool const full = kind == GaussianOutput::full;
  Scalar const* yp = y.data();
  double* mp = m.data();
  double* cp = c.data();
  double* ap = a.data();
  double* wp = work.data();
  double const inv_t = 1.0 / double(t);
  Kokkos::parallel_for(
      "lensing::nn::mc_predict_gaussian::update",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n), KOKKOS_LAMBDA(long b) {
        Scalar const* mu = yp + b * ps;
        Scalar const* s = mu + d;
        double* mb = mp + b * d;
        double* cb = cp + b * d * d;
        double* ab = ap + b * d * d;
        double* mi = wp + b * d * d;  // M = L⁻¹ (lower triangular), full only
        if (full) {
          // L_ij = s[tril(i, j)] below the diagonal, exp(s[tril(i, i)]) on it;
          // column j of M solves L m_j = e_j by forward substitution.
          for (long j = 0; j < d; ++j)
            for (long i = 0; i < d; ++i) {
              if (i < j) {
                mi[i * d + j] = 0;
                continue;
              }
              double acc = i == j ? 1.0 : 0.0;
              for (long q = j; q < i; ++q)
                acc -= double(s[tril_index(i, q)]) * mi[q * d + j];
              mi[i * d + j] = acc / lensing::math::exp(double(s[tril_index(i, i)]));
            }
        }
        for (long i = 0; i < d; ++i) {
          double const di = double(mu[i]) - mb[i];
          for (long j = 0; j < d; ++j) {
            double const mj = mb[j] + (double(mu[j]) - mb[j]) * inv_t;
            cb[i * d + j] += di * (double(mu[j]) - mj);
            // Σ_ij = Σ_q M_qi M_qj (q ≥ max(i, j)) for full; diag(exp s) for diagonal.
            double sij = 0;
            if (full) {
              for (long q = (i > j ? i : j); q < d; ++q)
                sij += mi[q * d + i] * mi[q * d + j];
            } else if (i == j) {
              sij = lensing::math::exp(double(s[i]));
            }
            ab[i * d + j] += (sij - ab[i * d + j]) * inv_t;
          }
        }
        for (long i = 0; i < d; ++i)
          mb[i] += (double(mu[i]) - mb[i]) * inv_t;
      });
}

/// total = a + e.
template <class ExecutionSpace, class MemorySpace>
void add_into(ExecutionSpace const& space, View3D<double, MemorySpace> const& a, View3D<double, MemorySpace> const& e,
              View3D<double, MemorySpace> const& total) {
  double const* ap = a.data();
  double const* ep = e.data();
  double* tp = total.data();
  Kokkos::parallel_for(
      "lensing::nn::mc_predict_gaussian::total",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(total.size())),
      KOKKOS_LAMBDA(long i) { tp[i] = ap[i] + ep[i]; });
}
}  // namespace detail

/// MC-dropout prediction of a heteroscedastic Gaussian regressor, split by
/// the law of total variance (Kendall & Gal 2017, arXiv:1703.04977):
///   Cov[y] = E_w[Σ_w(x)] + Cov_w[μ_w(x)]  (aleatoric + epistemic),
/// the expectations over the dropout masks w estimated by T passes as in
/// mc_predict.  Each pass's output is read per sample as `kind` says:
/// diagonal (μ, log σ²), Σ = diag(σ²); or full (μ, precision Cholesky factor,
/// gaussian_full_nll_loss's packing), Σ = L⁻ᵀ L⁻¹.  Returns mean (N, D),
/// aleatoric = (1/T) Σ_t Σ_t, epistemic = (1/T) Σ_t (μ_t − mean)(μ_t −
/// mean)ᵀ and total = their sum, in double: the mean and covariance of the
/// equal mixture of the T predicted Gaussians.  Seeding, modes and
/// determinism as mc_predict; with dropout off the epistemic part is exactly
/// 0 and the aleatoric part the single pass's covariance.  Throws
/// std::invalid_argument when the per-sample output size fits no D.
template <class ExecutionSpace, class Net>
McGaussianPrediction<typename Net::memory_space> mc_predict_gaussian(ExecutionSpace const& space, Net& net,
                                                                     typename Net::tensor_type const& x,
                                                                     GaussianOutput kind, int passes,
                                                                     std::uint64_t seed, bool dropout = true) {
  using Mem = typename Net::memory_space;
  using Scalar = typename Net::scalar_type;
  static_assert(is_accessible_from_v<ExecutionSpace, Mem>,
                "lensing::nn::mc_predict_gaussian: the network's memory space is not accessible from this execution "
                "space");
  char const* where = "lensing::nn::mc_predict_gaussian";
  long const n = long(x.extent(0));
  McGaussianPrediction<Mem> r;
  r.passes = passes;
  View3D<double, Mem> work;
  detail::mc_passes(
      net, passes, seed, dropout, [&]() { return net.forward(space, x); },
      [&](Tensor<Scalar, Mem> const& y, int t) {
        if (t == 1) {
          check_argument(long(y.extent(0)) == n, where, "the network's output batch differs from its input's");
          long const d = detail::gaussian_output_dim(shape_of(y).per_sample(), kind, where);
          r.mean = allocate_view<View2D<double, Mem>>(where, "mean", true, n, d);
          r.aleatoric = allocate_view<View3D<double, Mem>>(where, "aleatoric", true, n, d, d);
          r.epistemic = allocate_view<View3D<double, Mem>>(where, "epistemic", true, n, d, d);
          r.total = allocate_view<View3D<double, Mem>>(where, "total", true, n, d, d);
          if (kind == GaussianOutput::full) work = allocate_view<View3D<double, Mem>>(where, "work", true, n, d, d);
        }
        detail::gaussian_mc_update(space, y, kind, r.mean, r.epistemic, r.aleatoric, work, t);
      },
      where);
  detail::scale_in_place(space, r.epistemic, 1.0 / double(passes));
  detail::add_into(space, r.aleatoric, r.epistemic, r.total);
  space.fence();
  return r;
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_MC_PREDICT_HPP
