#ifndef LENSING_NN_VAE_HPP
#define LENSING_NN_VAE_HPP

/// \file
/// Variational-autoencoder pieces: KL divergences between diagonal
/// Gaussians (value and gradient) and the reparameterisation trick with its
/// backward.

#include <lensing/core/math.hpp>
#include <lensing/core/random.hpp>
#include <lensing/nn/finite_check.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <string>

namespace lensing {
namespace nn {

namespace detail {
template <class E>
long latent_dim(E const& enc, char const* where) {
  long const ps = long(enc.extent(1)) * long(enc.extent(2)) * long(enc.extent(3));
  check_argument(long(enc.extent(0)) >= 1, where, "the batch is empty");
  check_argument(
      ps >= 2 && ps % 2 == 0, where,
      "the encoding must pack (mu, log variance) per sample: an even number >= 2 of values, got " + std::to_string(ps));
  return ps / 2;
}
}  // namespace detail

/// KL divergence of a diagonal Gaussian from the standard normal, KL(q ‖ N(0, I)).
///
/// enc (N, C, H, W) is read per sample as 2Z values: μ_0..μ_{Z−1} then
/// v_0..v_{Z−1} = log σ² (the usual VAE encoder output).  Returns, averaged
/// over the batch (Kingma & Welling 2014, appendix B),
///   KL = (1/N) Σ_n ½ Σ_j (e^{v_j} + μ_j² − 1 − v_j)   [nats];
/// grad (shape of enc; skipped when null): dKL/dμ = μ/N,
/// dKL/dv = ½(e^{v} − 1)/N, overwritten, or added to grad when accumulate.
/// Throws std::invalid_argument("lensing::nn::kl_standard_normal: ...") for
/// an odd per-sample size, a wrong grad shape or non-finite enc.
template <class ExecutionSpace, class Scalar, class MemorySpace>
Scalar kl_standard_normal(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& enc,
                          Tensor<Scalar, MemorySpace> const& grad, bool accumulate = false) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                "lensing::nn::kl_standard_normal: inaccessible views");
  char const* where = "lensing::nn::kl_standard_normal";
  long const z = detail::latent_dim(enc, where), n = enc.extent(0);
  if (grad.data() != nullptr) check_shape(grad, shape_of(enc), where, "grad");
  detail::check_all_finite(space, enc.data(), long(enc.size()), where, "enc");
  Scalar const* e = enc.data();
  Scalar* g = grad.data();
  double const inv_n = 1.0 / double(n);
  double sum = 0;
  Kokkos::parallel_reduce(
      "lensing::nn::kl_standard_normal", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * z),
      KOKKOS_LAMBDA(long i, double& acc) {
        long const b = i / z, j = i % z;
        double const mu = double(e[b * 2 * z + j]), v = double(e[b * 2 * z + z + j]);
        double const ev = lensing::math::exp(v);
        acc += 0.5 * (ev + mu * mu - 1.0 - v);
        if (g != nullptr) {
          Scalar const gm = Scalar(inv_n * mu), gv = Scalar(0.5 * inv_n * (ev - 1.0));
          g[b * 2 * z + j] = accumulate ? g[b * 2 * z + j] + gm : gm;
          g[b * 2 * z + z + j] = accumulate ? g[b * 2 * z + z + j] + gv : gv;
        }
      },
      sum);
  return Scalar(sum * inv_n);
}

/// KL divergence KL(q ‖ p) of two diagonal Gaussians.
///
/// q and p have the same shape, each read per sample as (μ, v = log σ²),
/// 2Z values.  Returns, averaged over the batch,
///   KL = (1/N) Σ_n ½ Σ_j [v_p − v_q + (e^{v_q} + (μ_q − μ_p)²) e^{−v_p} − 1];
/// gradients (each skipped when null, shape of q; overwritten, or added when
/// accumulate), per sample divided by N, δ = μ_q − μ_p:
///   dKL/dμ_q = δ e^{−v_p} = −dKL/dμ_p;  dKL/dv_q = ½(e^{v_q − v_p} − 1);
///   dKL/dv_p = ½(1 − (e^{v_q} + δ²) e^{−v_p}).
/// Throws std::invalid_argument("lensing::nn::kl_diagonal_gaussians: ...")
/// on shape mismatches or non-finite input.
template <class ExecutionSpace, class Scalar, class MemorySpace>
Scalar kl_diagonal_gaussians(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& q,
                             Tensor<Scalar, MemorySpace> const& p, Tensor<Scalar, MemorySpace> const& grad_q,
                             Tensor<Scalar, MemorySpace> const& grad_p, bool accumulate = false) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                "lensing::nn::kl_diagonal_gaussians: inaccessible views");
  char const* where = "lensing::nn::kl_diagonal_gaussians";
  long const z = detail::latent_dim(q, where), n = q.extent(0);
  check_shape(p, shape_of(q), where, "p");
  if (grad_q.data() != nullptr) check_shape(grad_q, shape_of(q), where, "grad_q");
  if (grad_p.data() != nullptr) check_shape(grad_p, shape_of(q), where, "grad_p");
  detail::check_all_finite(space, q.data(), long(q.size()), where, "q");
  detail::check_all_finite(space, p.data(), long(p.size()), where, "p");
  Scalar const* qp = q.data();
  Scalar const* pp = p.data();
  Scalar* gq = grad_q.data();
  Scalar* gp = grad_p.data();
  double const inv_n = 1.0 / double(n);
  double sum = 0;
  Kokkos::parallel_reduce(
      "lensing::nn::kl_diagonal_gaussians",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * z),
      KOKKOS_LAMBDA(long i, double& acc) {
        long const b = i / z, j = i % z;
        long const im = b * 2 * z + j, iv = im + z;
        double const dm = double(qp[im]) - double(pp[im]);
        double const vq = double(qp[iv]), vp = double(pp[iv]);
        double const eq = lensing::math::exp(vq), inv_ep = lensing::math::exp(-vp);
        double const ratio = (eq + dm * dm) * inv_ep;
        acc += 0.5 * (vp - vq + ratio - 1.0);
        if (gq != nullptr) {
          Scalar const a = Scalar(inv_n * dm * inv_ep), c = Scalar(0.5 * inv_n * (eq * inv_ep - 1.0));
          gq[im] = accumulate ? gq[im] + a : a;
          gq[iv] = accumulate ? gq[iv] + c : c;
        }
        if (gp != nullptr) {
          Scalar const a = Scalar(-inv_n * dm * inv_ep), c = Scalar(0.5 * inv_n * (1.0 - ratio));
          gp[im] = accumulate ? gp[im] + a : a;
          gp[iv] = accumulate ? gp[iv] + c : c;
        }
      },
      sum);
  return Scalar(sum * inv_n);
}

/// The reparameterisation trick z = μ + exp(½ v) ⊙ ε, ε ~ N(0, I)
/// (Kingma & Welling 2014), with its backward.
///
/// enc (N, C, H, W) is read per sample as (μ, v = log σ²), 2Z values; z is
/// (N, Z, 1, 1).  `sample` draws a new ε (N, Z) for every call and keeps it
/// for `backward`, which is the vector-Jacobian product of the last sample:
///   dL/dμ = dL/dz;  dL/dv = dL/dz ⊙ ε ⊙ ½ exp(½ v).
/// Randomness: ε of draw number k (0, 1, ... since construction or
/// `reseed`) for element (n, j) is a standard normal from the stream
/// random::stream_key(seed, purpose_latent_noise, k, n Z + j) (core/random.hpp)
/// — rather than from a
/// `Kokkos::Random_XorShift64_Pool`, whose per-thread states would make ε
/// depend on the thread count.  So draws are reproducible for a seed on any
/// backend and thread count.  Owns ε, allocated in the constructor for a
/// batch of N and latent size Z; `sample` takes any batch size (the batch of
/// enc), growing ε's storage when a batch exceeds it.
template <class Scalar, class MemorySpace>
class Reparameterize {
 public:
  using tensor_type = Tensor<Scalar, MemorySpace>;

  Reparameterize(int batch, int latent, std::uint64_t seed) : n_(batch), z_(latent), seed_(seed) {
    check_count(batch, 1, "lensing::nn::Reparameterize", "batch");
    check_count(latent, 1, "lensing::nn::Reparameterize", "latent");
    eps_store_ = View2D<Scalar, MemorySpace>("lensing::nn::Reparameterize::eps", batch, latent);
    eps_ = eps_store_;
  }
  /// Batch of the last sample (of the constructor before any).
  int batch() const { return n_; }
  int latent() const { return z_; }
  /// ε of the last sample, (N, Z).
  View2D<Scalar, MemorySpace> eps() const { return eps_; }
  /// Number of draws so far.
  std::uint64_t draws() const { return draws_; }
  /// Restart the ε sequence with a new seed.
  void reseed(std::uint64_t seed) {
    seed_ = seed;
    draws_ = 0;
  }

  /// Draw ε and write z = μ + exp(½ v) ε (z: (N, Z, 1, 1) or any shape of N·Z values per batch).
  template <class ExecutionSpace>
  void sample(ExecutionSpace const& space, tensor_type const& enc, tensor_type const& z) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::Reparameterize::sample: inaccessible views");
    char const* where = "lensing::nn::Reparameterize::sample";
    int const nb = int(enc.extent(0));
    check_count(nb, 1, where, "batch");
    check_shape(enc, Shape4{nb, 2 * z_, 1, 1}, where, "enc");
    check_shape(z, Shape4{nb, z_, 1, 1}, where, "z");
    detail::check_all_finite(space, enc.data(), long(enc.size()), where, "enc");
    if (int(eps_store_.extent(0)) < nb)
      eps_store_ = View2D<Scalar, MemorySpace>("lensing::nn::Reparameterize::eps", nb, z_);
    eps_ = View2D<Scalar, MemorySpace>(Kokkos::subview(eps_store_, Kokkos::make_pair(0, nb), Kokkos::ALL));
    n_ = nb;
    Scalar const* e = enc.data();
    Scalar* zp = z.data();
    Scalar* ep = eps_.data();
    long const zd = z_;
    std::uint64_t const seed = seed_, draw = draws_;
    Kokkos::parallel_for(
        "lensing::nn::Reparameterize::sample",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(n_) * z_), KOKKOS_LAMBDA(long i) {
          long const b = i / zd, j = i % zd;
          lensing::random::Stream s(
              lensing::random::stream_key(seed, lensing::random::purpose_latent_noise, draw, std::uint64_t(i)));
          Scalar const eps = s.template normal<Scalar>();
          ep[i] = eps;
          zp[i] = e[b * 2 * zd + j] + lensing::math::exp(Scalar(0.5) * e[b * 2 * zd + zd + j]) * eps;
        });
    ++draws_;
  }

  /// denc = VJP of the last sample for dz (overwritten, or added when accumulate,
  /// e.g. onto the gradient of kl_standard_normal).
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& enc, tensor_type const& dz, tensor_type const& denc,
                bool accumulate = false) const {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::Reparameterize::backward: inaccessible views");
    char const* where = "lensing::nn::Reparameterize::backward";
    check_argument(draws_ > 0, where, "call sample() first");
    check_shape(enc, Shape4{n_, 2 * z_, 1, 1}, where, "enc");
    check_shape(dz, Shape4{n_, z_, 1, 1}, where, "dz");
    check_shape(denc, Shape4{n_, 2 * z_, 1, 1}, where, "denc");
    Scalar const* e = enc.data();
    Scalar const* d = dz.data();
    Scalar const* ep = eps_.data();
    Scalar* g = denc.data();
    long const zd = z_;
    Kokkos::parallel_for(
        "lensing::nn::Reparameterize::backward",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(n_) * z_), KOKKOS_LAMBDA(long i) {
          long const b = i / zd, j = i % zd;
          long const im = b * 2 * zd + j, iv = im + zd;
          Scalar const gm = d[i];
          Scalar const gv = d[i] * ep[i] * Scalar(0.5) * lensing::math::exp(Scalar(0.5) * e[iv]);
          g[im] = accumulate ? g[im] + gm : gm;
          g[iv] = accumulate ? g[iv] + gv : gv;
        });
  }

 private:
  int n_, z_;
  std::uint64_t seed_;
  std::uint64_t draws_ = 0;
  View2D<Scalar, MemorySpace> eps_store_, eps_;  // storage at capacity; eps_: the last batch's rows
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_VAE_HPP
