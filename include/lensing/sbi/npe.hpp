#ifndef LENSING_SBI_NPE_HPP
#define LENSING_SBI_NPE_HPP

/// \file
/// Neural posterior estimation (NPE): a network maps an observation x to a
/// mixture of K full-covariance Gaussians over standardised parameters
/// z = (θ − m) / s, trained on simulated pairs (θ, x) by minimising
/// −log q(z | x) (Bishop 1994, "Mixture Density Networks"; Papamakarios &
/// Murray 2016, "Fast ε-free inference of simulation models with Bayesian
/// conditional density estimation"; Alsing et al. 2019, DELFI).
///
/// The packing reuses the two parameterisations of nn/: the logits first,
/// as in nn/loss_mdn.hpp, then per component the mean and the packed
/// lower-triangular Cholesky factor of the component's *precision* exactly
/// as nn/loss_gaussian_full.hpp packs its one Gaussian (tril_index, diagonal
/// stored as its log).  Per sample, mdn_full_outputs(K, D) =
/// K (1 + D + D(D+1)/2) values:
///   - values 0..K−1: logits α_k (weights π = softmax α);
///   - values K + k G .. K + (k+1) G − 1, G = gaussian_full_outputs(D):
///     μ_k (D values) then a_k (tril_index(i, j), L_ii = exp(a_ii),
///     L_ij = a_ij below the diagonal), with Λ_k = L_k L_kᵀ = Σ_k⁻¹.
///
/// sample_posterior() and log_prob() evaluate the network and read its
/// mixtures on the host, in double, in physical units.

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/core/random.hpp>
#include <lensing/nn/finite_check.hpp>
#include <lensing/nn/loss_gaussian_full.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace lensing {
namespace sbi {

/// Largest parameter dimension of the mixture kernels (a per-thread array).
inline constexpr long mdn_full_max_dimension = 16;

/// Network outputs per sample of a K-component, D-dimensional full-covariance
/// mixture: K (1 + D + D(D+1)/2).
inline long mdn_full_outputs(long k, long d) { return k * (1 + nn::gaussian_full_outputs(d)); }

/// Full-covariance mixture-density NLL, averaged over the batch.
///
/// pred (N, C, H, W) holds C·H·W = mdn_full_outputs(K, D) values per sample
/// (packing in the file comment), target is (N, D), K = `components`.
/// With r_k = t − μ_k, z_k = L_kᵀ r_k and the component log-density
///   ℓ_k = −½ ‖z_k‖² + Σ_i a_k,ii − (D/2) log 2π,
/// the loss is L = (1/N) Σ_n [LSE_k(α_k) − LSE_k(α_k + ℓ_k)], both
/// log-sum-exps shifted by their maximum (finite for any finite outputs and
/// far-away components).  Gradient, with responsibilities
/// γ_k = softmax_k(α_k + ℓ_k), per sample divided by N:
///   dL/dα_k = π_k − γ_k;  and γ_k times the single-Gaussian gradient of
///   nn::gaussian_full_nll_loss for component k: dL/dμ_k = −γ_k L_k z_k,
///   dL/da_k,ij = γ_k r_i z_j (j < i), dL/da_k,ii = γ_k (r_i z_i L_ii − 1).
/// With K = 1 it equals gaussian_full_nll_loss on the μ, a block.
///
/// grad (shape of pred) is overwritten, skipped when grad.data() is null.
/// Sums in double.  Throws std::invalid_argument("lensing::sbi::
/// mdn_full_nll_loss: ...") for components < 1, D > 16, inconsistent shapes
/// or non-finite values.
template <class ExecutionSpace, class Scalar, class MemorySpace>
Scalar mdn_full_nll_loss(ExecutionSpace const& space, nn::Tensor<Scalar, MemorySpace> const& pred,
                         View2D<Scalar, MemorySpace> const& target, int components,
                         nn::Tensor<Scalar, MemorySpace> const& grad) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                "lensing::sbi::mdn_full_nll_loss: inaccessible views");
  char const* where = "lensing::sbi::mdn_full_nll_loss";
  check_count(components, 1, where, "components");
  long const n = target.extent(0), d = target.extent(1), k = components;
  check_argument(
      d >= 1 && d <= mdn_full_max_dimension, where,
      "target must have 1 to " + std::to_string(mdn_full_max_dimension) + " columns, has " + std::to_string(d));
  long const ps = mdn_full_outputs(k, d), gs = nn::gaussian_full_outputs(d);
  nn::detail::check_packed_loss(space, pred, target, grad, ps, d, where);
  Scalar const* p = pred.data();
  Scalar const* t = target.data();
  Scalar* g = grad.data();
  double const inv_n = 1.0 / double(n);
  double const half_log2pi = 0.91893853320467274178;
  double sum = 0;
  Kokkos::parallel_reduce(
      where, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n),
      KOKKOS_LAMBDA(long b, double& acc) {
        Scalar const* alpha = p + b * ps;
        Scalar const* tb = t + b * d;
        // log-density of component c; z (when given) receives L_cᵀ r.
        auto const ell = [&](long c, double* z) {
          Scalar const* mu = alpha + k + c * gs;
          Scalar const* a = mu + d;
          double quad = 0, logdiag = 0;
          for (long j = 0; j < d; ++j) {
            double s = 0;
            for (long i = j; i < d; ++i) {
              double const aij = double(a[nn::tril_index(i, j)]);
              s += (i == j ? lensing::math::exp(aij) : aij) * (double(tb[i]) - double(mu[i]));
            }
            if (z != nullptr) z[j] = s;
            quad += s * s;
            logdiag += double(a[nn::tril_index(j, j)]);
          }
          return -0.5 * quad + logdiag - double(d) * half_log2pi;
        };
        double amax = double(alpha[0]), cmax = double(alpha[0]) + ell(0, nullptr);
        for (long c = 1; c < k; ++c) {
          amax = lensing::math::fmax(amax, double(alpha[c]));
          cmax = lensing::math::fmax(cmax, double(alpha[c]) + ell(c, nullptr));
        }
        double asum = 0, csum = 0;
        for (long c = 0; c < k; ++c) {
          asum += lensing::math::exp(double(alpha[c]) - amax);
          csum += lensing::math::exp(double(alpha[c]) + ell(c, nullptr) - cmax);
        }
        double const lse_a = amax + lensing::math::log(asum), lse_c = cmax + lensing::math::log(csum);
        acc += lse_a - lse_c;
        if (g != nullptr) {
          Scalar* ga = g + b * ps;
          double z[mdn_full_max_dimension];
          for (long c = 0; c < k; ++c) {
            double const lc = ell(c, z);
            double const pi = lensing::math::exp(double(alpha[c]) - lse_a);
            double const gam = lensing::math::exp(double(alpha[c]) + lc - lse_c);
            ga[c] = Scalar(inv_n * (pi - gam));
            Scalar const* mu = alpha + k + c * gs;
            Scalar const* a = mu + d;
            Scalar* gm = ga + k + c * gs;
            Scalar* gaa = gm + d;
            double const w = inv_n * gam;
            for (long i = 0; i < d; ++i) {
              double const ri = double(tb[i]) - double(mu[i]);
              double lz = 0;
              for (long j = 0; j <= i; ++j) {
                double const aij = double(a[nn::tril_index(i, j)]);
                double const lij = i == j ? lensing::math::exp(aij) : aij;
                lz += lij * z[j];
                gaa[nn::tril_index(i, j)] = Scalar(w * (i == j ? ri * z[j] * lij - 1.0 : ri * z[j]));
              }
              gm[i] = Scalar(-w * lz);
            }
          }
        }
      },
      sum);
  return Scalar(sum * inv_n);
}

/// Loss object (nn/losses.hpp interface) of mdn_full_nll_loss with
/// `components` full-covariance Gaussians: mdn_full_outputs(components, K)
/// outputs per sample for K label columns.
struct MDNFullLoss {
  int components = 1;
  explicit MDNFullLoss(int k = 1) : components(k) { check_count(k, 1, "lensing::sbi::MDNFullLoss", "components"); }
  static constexpr char const* name() { return "mdn_full_nll"; }
  long num_outputs(long k) const { return mdn_full_outputs(components, k); }
  template <class ExecutionSpace, class Scalar, class MemorySpace>
  double operator()(ExecutionSpace const& space, nn::Tensor<Scalar, MemorySpace> const& pred,
                    View2D<Scalar, MemorySpace> const& labels, nn::Tensor<Scalar, MemorySpace> const& grad) const {
    return double(mdn_full_nll_loss(space, pred, labels, components, grad));
  }
  template <class ExecutionSpace, class Scalar, class MemorySpace>
  double value(ExecutionSpace const& space, nn::Tensor<Scalar, MemorySpace> const& pred,
               View2D<Scalar, MemorySpace> const& labels) const {
    return (*this)(space, pred, labels, nn::Tensor<Scalar, MemorySpace>());
  }
};

/// One mixture of K full-covariance Gaussians in D dimensions, host, double:
/// the unpacked form of one sample's network output.
struct GaussianMixture {
  int k = 0, d = 0;
  std::vector<double> log_weight;  ///< (K) log π_k (normalised)
  std::vector<double> mean;        ///< (K, D) μ_k
  std::vector<double> chol;        ///< (K, D, D) L_k, lower triangle (precision Λ_k = L_k L_kᵀ), zeros above
  std::vector<double> log_det;     ///< (K) Σ_i log L_k,ii = ½ log det Λ_k

  /// log q(t) at a point t (D values), log-sum-exp over the components.
  double log_prob(double const* t) const {
    double const half_log2pi = 0.91893853320467274178;
    std::vector<double> lc(static_cast<std::size_t>(k));
    double mx = -HUGE_VAL;
    for (int c = 0; c < k; ++c) {
      double quad = 0;
      for (int j = 0; j < d; ++j) {
        double s = 0;
        for (int i = j; i < d; ++i)
          s += l(c, i, j) * (t[i] - mean[std::size_t(c * d + i)]);
        quad += s * s;
      }
      lc[std::size_t(c)] = log_weight[std::size_t(c)] - 0.5 * quad + log_det[std::size_t(c)] - d * half_log2pi;
      mx = std::fmax(mx, lc[std::size_t(c)]);
    }
    double s = 0;
    for (double v : lc)
      s += std::exp(v - mx);
    return mx + std::log(s);
  }

  /// One draw into out (D values): a component by its weight, then
  /// μ + L⁻ᵀ ε with ε standard normal (covariance L⁻ᵀ L⁻¹ = Λ⁻¹).
  template <class RngT>
  void sample(RngT& rng, double* out) const {
    double u = rng.uniform(), acc = 0;
    int c = k - 1;
    for (int j = 0; j < k; ++j) {
      acc += std::exp(log_weight[std::size_t(j)]);
      if (u < acc) {
        c = j;
        break;
      }
    }
    double eps[mdn_full_max_dimension];
    for (int j = 0; j < d; ++j)
      eps[j] = rng.normal();
    // Back substitution Lᵀ y = ε (Lᵀ upper triangular).
    for (int i = d - 1; i >= 0; --i) {
      double s = eps[i];
      for (int j = i + 1; j < d; ++j)
        s -= l(c, j, i) * out[j];
      out[i] = s / l(c, i, i);
    }
    for (int i = 0; i < d; ++i)
      out[i] += mean[std::size_t(c * d + i)];
  }

  /// Mixture mean (D) and covariance (D, D): Σ π_k μ_k and
  /// Σ π_k (Σ_k + μ_k μ_kᵀ) − m mᵀ, Σ_k = L_k⁻ᵀ L_k⁻¹.
  void moments(std::vector<double>& m, std::vector<double>& cov) const {
    std::size_t const D = std::size_t(d);
    m.assign(D, 0.0);
    cov.assign(D * D, 0.0);
    std::vector<double> inv(D * D);
    for (int c = 0; c < k; ++c) {
      double const w = std::exp(log_weight[std::size_t(c)]);
      // M = L⁻¹ by forward substitution, Σ_k = Mᵀ M.
      for (int j = 0; j < d; ++j)
        for (int i = 0; i < d; ++i) {
          double s = i == j ? 1.0 : 0.0;
          for (int q = 0; q < i; ++q)
            s -= l(c, i, q) * inv[std::size_t(q * d + j)];
          inv[std::size_t(i * d + j)] = s / l(c, i, i);
        }
      for (int i = 0; i < d; ++i) {
        double const mi = mean[std::size_t(c * d + i)];
        m[std::size_t(i)] += w * mi;
        for (int j = 0; j < d; ++j) {
          double s = 0;
          for (int q = 0; q < d; ++q)
            s += inv[std::size_t(q * d + i)] * inv[std::size_t(q * d + j)];
          cov[std::size_t(i * d + j)] += w * (s + mi * mean[std::size_t(c * d + j)]);
        }
      }
    }
    for (std::size_t i = 0; i < D; ++i)
      for (std::size_t j = 0; j < D; ++j)
        cov[i * D + j] -= m[i] * m[j];
  }

  double l(int c, int i, int j) const { return chol[std::size_t((c * d + i) * d + j)]; }
};

/// The mixture of one packed row (mdn_full_outputs(k, d) values; packing in
/// the file comment).  Throws std::invalid_argument("lensing::sbi::
/// unpack_mixture: ...") on non-finite values or d > 16.
template <class Scalar>
GaussianMixture unpack_mixture(Scalar const* row, int k, int d) {
  char const* where = "lensing::sbi::unpack_mixture";
  check_count(k, 1, where, "components");
  check_argument(d >= 1 && d <= mdn_full_max_dimension, where, "dimension must be 1 to 16");
  long const ps = mdn_full_outputs(k, d), gs = nn::gaussian_full_outputs(d);
  for (long i = 0; i < ps; ++i)
    check_argument(std::isfinite(double(row[i])), where, "the network output has NaN or infinite values");
  GaussianMixture m;
  m.k = k;
  m.d = d;
  m.log_weight.resize(std::size_t(k));
  m.mean.resize(std::size_t(k * d));
  m.chol.assign(std::size_t(k * d * d), 0.0);
  m.log_det.assign(std::size_t(k), 0.0);
  double mx = -HUGE_VAL;
  for (int c = 0; c < k; ++c)
    mx = std::fmax(mx, double(row[c]));
  double s = 0;
  for (int c = 0; c < k; ++c)
    s += std::exp(double(row[c]) - mx);
  double const lse = mx + std::log(s);
  for (int c = 0; c < k; ++c) {
    m.log_weight[std::size_t(c)] = double(row[c]) - lse;
    Scalar const* mu = row + k + c * gs;
    Scalar const* a = mu + d;
    for (int i = 0; i < d; ++i) {
      m.mean[std::size_t(c * d + i)] = double(mu[i]);
      for (int j = 0; j <= i; ++j) {
        double const aij = double(a[nn::tril_index(i, j)]);
        m.chol[std::size_t((c * d + i) * d + j)] = i == j ? std::exp(aij) : aij;
      }
      m.log_det[std::size_t(c)] += double(a[nn::tril_index(i, i)]);
    }
  }
  return m;
}

/// A trained NPE: the network (any type with `forward(space, x)` returning
/// its output tensor, e.g. nn::Sequential, at any batch size), the number of
/// mixture components and the standardisation of the D parameters
/// (z_j = (θ_j − mean_j) / sd_j, as SimulatedBatches::standardise writes the
/// labels it was trained on).  Holds a reference to the network.
/// The network is evaluated in its current mode: call set_training(false)
/// before inference when it has dropout or batch normalisation.
template <class Net>
class NeuralPosterior {
 public:
  NeuralPosterior(Net& net, int components, std::vector<double> mean, std::vector<double> sd)
      : m_net(&net), m_k(components), m_mean(std::move(mean)), m_sd(std::move(sd)) {
    char const* where = "lensing::sbi::NeuralPosterior";
    check_count(components, 1, where, "components");
    check_argument(!m_mean.empty() && m_mean.size() == m_sd.size() && long(m_mean.size()) <= mdn_full_max_dimension,
                   where, "mean and sd must have the same length, 1 to 16");
    for (std::size_t j = 0; j < m_sd.size(); ++j)
      check_argument(std::isfinite(m_mean[j]) && std::isfinite(m_sd[j]) && m_sd[j] > 0, where,
                     "parameter " + std::to_string(j) + ": mean must be finite and sd finite and > 0");
  }
  Net& network() const { return *m_net; }
  int components() const { return m_k; }
  int dimension() const { return int(m_mean.size()); }
  double mean(int j) const { return m_mean[std::size_t(j)]; }
  double sd(int j) const { return m_sd[std::size_t(j)]; }

  /// The mixtures over the *standardised* parameters for a batch x (N, C, H, W).
  template <class ExecutionSpace, class X>
  std::vector<GaussianMixture> mixtures(ExecutionSpace const& space, X const& x) const {
    auto y = m_net->forward(space, x);
    space.fence();
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
    long const n = long(h.extent(0)), per = long(h.extent(1) * h.extent(2) * h.extent(3));
    long const want = mdn_full_outputs(m_k, dimension());
    check_argument(
        per == want, "lensing::sbi::NeuralPosterior",
        "the network gives " + std::to_string(per) + " outputs per sample, the mixture needs " + std::to_string(want));
    std::vector<GaussianMixture> out;
    out.reserve(std::size_t(n));
    for (long b = 0; b < n; ++b)
      out.push_back(unpack_mixture(h.data() + b * per, m_k, dimension()));
    return out;
  }

 private:
  Net* m_net;
  int m_k;
  std::vector<double> m_mean, m_sd;
};

/// n posterior draws per observation of x (N, C, H, W), in physical units:
/// a vector (N, n, D) row-major.  Observation b draws from the host stream
/// Rng(seed, b + first_stream) (core/random.hpp), so the draws are a
/// function of (seed, stream, network output) only: the same on every
/// backend and thread count, and independent of the batch they come in
/// when first_stream is the observation's global index.
template <class ExecutionSpace, class Net, class X>
std::vector<double> sample_posterior(ExecutionSpace const& space, NeuralPosterior<Net> const& npe, X const& x, long n,
                                     std::uint64_t seed, std::uint64_t first_stream = 0) {
  check_count(n, 1, "lensing::sbi::sample_posterior", "n");
  auto const mix = npe.mixtures(space, x);
  int const d = npe.dimension();
  std::vector<double> out(mix.size() * std::size_t(n) * std::size_t(d));
  for (std::size_t b = 0; b < mix.size(); ++b) {
    Rng rng(seed, first_stream + b);
    for (long s = 0; s < n; ++s) {
      double* o = out.data() + (b * std::size_t(n) + std::size_t(s)) * std::size_t(d);
      mix[b].sample(rng, o);
      for (int j = 0; j < d; ++j)
        o[j] = npe.mean(j) + npe.sd(j) * o[j];
    }
  }
  return out;
}

/// log q(θ_b | x_b) in physical units for x (N, C, H, W) and theta (N, D)
/// row-major: the mixture's log-density at the standardised point minus
/// Σ_j log sd_j (the Jacobian of the standardisation).
template <class ExecutionSpace, class Net, class X>
std::vector<double> log_prob(ExecutionSpace const& space, NeuralPosterior<Net> const& npe, X const& x,
                             std::vector<double> const& theta) {
  auto const mix = npe.mixtures(space, x);
  int const d = npe.dimension();
  check_argument(theta.size() == mix.size() * std::size_t(d), "lensing::sbi::log_prob",
                 "theta must hold N x D = " + std::to_string(mix.size()) + " x " + std::to_string(d) + " values");
  double log_jac = 0;
  for (int j = 0; j < d; ++j)
    log_jac += std::log(npe.sd(j));
  std::vector<double> out(mix.size());
  std::vector<double> z(static_cast<std::size_t>(d));
  for (std::size_t b = 0; b < mix.size(); ++b) {
    for (int j = 0; j < d; ++j)
      z[std::size_t(j)] = (theta[b * std::size_t(d) + std::size_t(j)] - npe.mean(j)) / npe.sd(j);
    out[b] = mix[b].log_prob(z.data()) - log_jac;
  }
  return out;
}

}  // namespace sbi
}  // namespace lensing

#endif  // LENSING_SBI_NPE_HPP
