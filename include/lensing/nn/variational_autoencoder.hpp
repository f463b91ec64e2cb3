#ifndef LENSING_NN_VARIATIONAL_AUTOENCODER_HPP
#define LENSING_NN_VARIATIONAL_AUTOENCODER_HPP

/// \file
/// A variational autoencoder (Kingma & Welling 2014, arXiv:1312.6114) as one
/// Layer, so that nn::fit() trains it like any network, and its loss, the
/// negative (β-weighted) evidence lower bound with a Gaussian or Laplace
/// pixel likelihood.
///
///   x ──► Encoder ──► (μ, v = log σ²) ──► z = μ + e^{v/2} ε ──► Decoder ──► x̂
///
/// The layer's output per sample is [x̂ (P values), μ (Z), v (Z)], so the
/// loss sees everything the ELBO needs:
///   −ELBO(x) = −E_q[log p(x | z)] + KL(q(z | x) ‖ N(0, I)),
/// estimated with one z per image (the reparameterisation trick of nn/vae.hpp).

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/nn/layer.hpp>
#include <lensing/nn/loss.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/tensor.hpp>
#include <lensing/nn/vae.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

namespace lensing {
namespace nn {

//----------------------------------------------------------------------------
// The autoencoder as one layer.

/// Encoder + reparameterisation + decoder, a Layer (layer.hpp).
///
/// Encoder: a Sequential taking the images (N, C, H, W) to (N, 2Z, 1, 1)
/// read per sample as (μ_1..μ_Z, v_1..v_Z), v = log σ² of the diagonal
/// Gaussian q(z | x).  Decoder: a Sequential taking z (N, Z, 1, 1) to the
/// reconstruction x̂ (any per-sample shape of P values, usually that of x).
/// Output: (N, P + 2Z, 1, 1), per sample [x̂, μ, v] (join_samples of
/// tensor.hpp).  Parameters, flat: the encoder's then the decoder's; state
/// likewise.
///
/// z = μ + exp(v/2) ε with ε ~ N(0, I) drawn per forward by Reparameterize
/// (nn/vae.hpp, seeded: reproducible on every backend and thread count); in
/// `use_mean` mode z = μ (deterministic reconstructions).  Backward: the
/// decoder's backward gives dL/dz, the reparameterisation's VJP turns it into
/// dL/d(μ, v) (dμ = dz, dv = dz ε ½ e^{v/2}; dv = 0 with use_mean), to which
/// the output's own dL/d(μ, v) (the KL term) is added, then the encoder's
/// backward.  The randomness of the last forward is reused, as the archetype
/// asks of stochastic layers.
template <class Encoder, class Decoder>
class VariationalAutoencoder : public LayerBase<typename Encoder::scalar_type, typename Encoder::memory_space> {
  using Scalar = typename Encoder::scalar_type;
  using MemorySpace = typename Encoder::memory_space;
  using base = LayerBase<Scalar, MemorySpace>;
  static_assert(check_layer<Encoder>(), "lensing::nn::VariationalAutoencoder: the encoder must model Layer");
  static_assert(check_layer<Decoder>(), "lensing::nn::VariationalAutoencoder: the decoder must model Layer");
  static_assert(std::is_same<typename Decoder::scalar_type, Scalar>::value &&
                    std::is_same<typename Decoder::memory_space, MemorySpace>::value,
                "lensing::nn::VariationalAutoencoder: encoder and decoder must share scalar type and memory space");

 public:
  using typename base::tensor_type;
  using typename base::vector_type;
  using encoder_type = Encoder;
  using decoder_type = Decoder;

  /// Latent dimension `latent` (the encoder outputs 2 latent values per
  /// sample), noise seed `seed` (the ε stream of Reparameterize).
  VariationalAutoencoder(Encoder const& encoder, Decoder const& decoder, int latent, std::uint64_t seed = 0)
      : encoder_(encoder), decoder_(decoder), z_dim_(latent), rep_(1, latent, seed) {
    check_count(latent, 1, "lensing::nn::VariationalAutoencoder", "latent");
    ne_ = encoder_.num_params();
    se_ = encoder_.num_state();
    this->params_ = vector_type("lensing::nn::VariationalAutoencoder::params", ne_ + decoder_.num_params());
    state_ = vector_type("lensing::nn::VariationalAutoencoder::state", se_ + decoder_.num_state());
    bind_children();
  }

  int latent_dim() const { return z_dim_; }
  Encoder& encoder() { return encoder_; }
  Decoder& decoder() { return decoder_; }
  Encoder const& encoder() const { return encoder_; }
  Decoder const& decoder() const { return decoder_; }
  /// z = μ in the following forwards (no noise) when on.
  void set_use_mean(bool on) { use_mean_ = on; }
  bool use_mean() const { return use_mean_; }
  /// Restart the ε stream with `seed`.
  void reseed_noise(std::uint64_t seed) { rep_.reseed(seed); }
  /// z of the last forward, (N, Z, 1, 1).
  tensor_type latent() const { return z_; }

  /// Per-sample values of the reconstruction for input `in`.
  long reconstruction_size(Shape4 const& in) const {
    return decoder_.output_shape(Shape4{in.n, z_dim_, 1, 1}).per_sample();
  }

  Shape4 output_shape(Shape4 const& in) const {
    char const* where = "lensing::nn::VariationalAutoencoder";
    Shape4 const e = encoder_.output_shape(in);
    check_argument(e.per_sample() == 2L * z_dim_, where,
                   "the encoder gives " + e.str() + " for input " + in.str() + ", expected " +
                       std::to_string(2 * z_dim_) + " values (mu, log variance) per sample");
    return Shape4{in.n, int(reconstruction_size(in) + 2L * z_dim_), 1, 1};
  }
  void prepare(Shape4 const& in) {
    if (prepared_ && in == in_) return;
    Shape4 const out = output_shape(in);
    encoder_.prepare(in);
    decoder_.prepare(Shape4{in.n, z_dim_, 1, 1});
    z_ = detail::batch_slice(z_store_, Shape4{in.n, z_dim_, 1, 1}, "lensing::nn::VariationalAutoencoder", "z");
    dz_ = detail::batch_slice(dz_store_, Shape4{in.n, z_dim_, 1, 1}, "lensing::nn::VariationalAutoencoder", "dz");
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
    check_argument(long(s.extent(0)) == num_state(), "lensing::nn::VariationalAutoencoder::bind_state",
                   "wrong state size");
    Kokkos::deep_copy(s, state_);
    state_ = s;
    bind_children();
  }
  void initialize(std::uint64_t seed) {
    encoder_.initialize(child_seed(seed, 0));
    decoder_.initialize(child_seed(seed, 1));
  }
  void set_training(bool t) {
    base::set_training(t);
    encoder_.set_training(t);
    decoder_.set_training(t);
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::VariationalAutoencoder::forward: inaccessible tensors");
    prepare(shape_of(x));
    check_shape(y, out_, "lensing::nn::VariationalAutoencoder::forward", "y");
    tensor_type const enc = encoder_.forward(space, x);
    tensor_type const enc4(enc.data(), in_.n, 2 * z_dim_, 1, 1);
    if (use_mean_)
      copy_mean(space, enc4, z_);
    else
      rep_.sample(space, enc4, z_);
    tensor_type const dec = decoder_.forward(space, z_);
    join_samples(space, dec, enc4, y);
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    char const* where = "lensing::nn::VariationalAutoencoder::backward";
    check_argument(prepared_ && shape_of(x) == in_, where,
                   "x has shape " + shape_of(x).str() + ", the last forward had " + in_.str());
    detail::check_backward(*this, x, y, dy, dx, dparams, where);
    tensor_type const denc = encoder_.output_gradient();
    tensor_type const denc4(denc.data(), in_.n, 2 * z_dim_, 1, 1);
    tensor_type const enc = encoder_.output();
    tensor_type const enc4(enc.data(), in_.n, 2 * z_dim_, 1, 1);
    split_samples(space, dy, decoder_.output_gradient(), denc4);
    decoder_.backward(space, z_, dz_);
    if (use_mean_)
      add_mean_gradient(space, dz_, denc4);
    else
      rep_.backward(space, enc4, dz_, denc4, true);
    encoder_.backward(space, x, dx);
    if (ne_ > 0)
      Kokkos::deep_copy(space, vector_type(Kokkos::subview(dparams, Kokkos::make_pair(0L, ne_))), encoder_.gradients());
    if (this->num_params() > ne_)
      Kokkos::deep_copy(space, vector_type(Kokkos::subview(dparams, Kokkos::make_pair(ne_, this->num_params()))),
                        decoder_.gradients());
  }

  // Implementation, public for nvcc.
  template <class ExecutionSpace>
  void copy_mean(ExecutionSpace const& space, tensor_type const& enc, tensor_type const& z) const {
    Scalar const* e = enc.data();
    Scalar* zp = z.data();
    long const zd = z_dim_;
    Kokkos::parallel_for(
        "lensing::nn::VariationalAutoencoder::mean",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(z.size())),
        KOKKOS_LAMBDA(long i) { zp[i] = e[(i / zd) * 2 * zd + i % zd]; });
  }
  template <class ExecutionSpace>
  void add_mean_gradient(ExecutionSpace const& space, tensor_type const& dz, tensor_type const& denc) const {
    Scalar const* d = dz.data();
    Scalar* g = denc.data();
    long const zd = z_dim_;
    Kokkos::parallel_for(
        "lensing::nn::VariationalAutoencoder::mean_gradient",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(dz.size())),
        KOKKOS_LAMBDA(long i) { g[(i / zd) * 2 * zd + i % zd] += d[i]; });
  }

 private:
  void bind_children() {
    long const np = this->num_params(), ns = num_state();
    encoder_.bind_parameters(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(0L, ne_))));
    decoder_.bind_parameters(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(ne_, np))));
    encoder_.bind_state(vector_type(Kokkos::subview(state_, Kokkos::make_pair(0L, se_))));
    decoder_.bind_state(vector_type(Kokkos::subview(state_, Kokkos::make_pair(se_, ns))));
  }

  Encoder encoder_;
  Decoder decoder_;
  int z_dim_;
  Reparameterize<Scalar, MemorySpace> rep_;
  bool use_mean_ = false, prepared_ = false;
  Shape4 in_, out_;
  long ne_ = 0, se_ = 0;
  vector_type state_;
  tensor_type z_store_, dz_store_, z_, dz_;
};

//----------------------------------------------------------------------------
// The loss: negative ELBO.

/// Pixel likelihood p(x | z) of a VAE, per pixel, with a fixed scale s:
/// Gaussian N(x̂, s²): −log p = ½ (x − x̂)²/s² + log s + ½ log 2π;
/// Laplace(x̂, s):     −log p = |x − x̂|/s + log 2s.
enum class PixelLikelihood { gaussian, laplace };

/// The terms of the last call of a VaeLoss (batch means, nats per image).
struct VaeLossTerms {
  double nll = 0;  ///< −log p(x | z), summed over the pixels
  double kl = 0;   ///< KL(q(z | x) ‖ N(0, I))
  double elbo() const { return -(nll + kl); }
};

/// Negative β-ELBO of a VariationalAutoencoder's output, a Loss (loss.hpp).
///
/// pred (N, P + 2Z, 1, 1) per sample [x̂, μ, v] (the layer's output);
/// target (N, P): the images, flattened.  Returns, averaged over the batch,
///   L = (1/N) Σ_n [ −log p(x_n | z_n) + β KL(q(z | x_n) ‖ N(0, I)) ]
/// with the pixel likelihood above and KL = ½ Σ_j (e^{v_j} + μ_j² − 1 − v_j)
/// (nn/vae.hpp); β = 1 is the negative ELBO (nats per image), β < 1 the
/// KL warm-up (Bowman et al. 2016; Sønderby et al. 2016) — β is read from a
/// shared cell (`beta`), so a training loop can raise it per epoch while
/// fit() holds the loss by const reference.  The two terms of the last call
/// are kept in `terms`.  Gradients: dL/dx̂ = (x̂ − x)/(s² N) (Gaussian) or
/// sign(x̂ − x)/(s N) (Laplace), dL/dμ = β μ/N, dL/dv = β ½(e^v − 1)/N.
struct VaeLoss {
  int latent = 1;
  PixelLikelihood likelihood = PixelLikelihood::gaussian;
  double scale = 0.1;  ///< s, in image units
  std::shared_ptr<double> beta = std::make_shared<double>(1.0);
  std::shared_ptr<VaeLossTerms> terms = std::make_shared<VaeLossTerms>();

  VaeLoss() = default;
  VaeLoss(int latent_dim, PixelLikelihood l, double s) : latent(latent_dim), likelihood(l), scale(s) {
    check_count(latent_dim, 1, "lensing::nn::VaeLoss", "latent");
    check_argument(s > 0 && s < 1e30, "lensing::nn::VaeLoss", "the pixel scale must be positive and finite");
  }
  char const* name() const { return "vae_negative_elbo"; }
  long num_outputs(long k) const { return k + 2L * latent; }

  template <class ExecutionSpace, class Scalar, class MemorySpace>
  Scalar operator()(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& pred,
                    View2D<Scalar, MemorySpace> const& target, Tensor<Scalar, MemorySpace> const& grad) const {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>, "lensing::nn::VaeLoss: inaccessible views");
    char const* where = "lensing::nn::VaeLoss";
    long const n = long(target.extent(0)), p = long(target.extent(1)), z = latent, w = p + 2 * z;
    detail::check_loss_args(pred, target, grad, w, p, where);
    Scalar const* pp = pred.data();
    Scalar const* t = target.data();
    Scalar* g = grad.data();
    double const inv_n = 1.0 / double(n), s = scale, b = *beta;
    bool const laplace = likelihood == PixelLikelihood::laplace;
    double const konst = laplace ? std::log(2.0 * s) : std::log(s) + 0.91893853320467274178;
    double nll = 0, kl = 0;
    Kokkos::parallel_reduce(
        "lensing::nn::VaeLoss::nll", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * p),
        KOKKOS_LAMBDA(long i, double& acc) {
          long const k = (i / p) * w + i % p;
          double const r = double(pp[k]) - double(t[i]);
          if (laplace) {
            acc += (r < 0 ? -r : r) / s + konst;
            if (g != nullptr) g[k] = Scalar(r > 0 ? inv_n / s : (r < 0 ? -inv_n / s : 0.0));
          } else {
            acc += 0.5 * r * r / (s * s) + konst;
            if (g != nullptr) g[k] = Scalar(inv_n * r / (s * s));
          }
        },
        nll);
    Kokkos::parallel_reduce(
        "lensing::nn::VaeLoss::kl", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * z),
        KOKKOS_LAMBDA(long i, double& acc) {
          long const im = (i / z) * w + p + i % z, iv = im + z;
          double const mu = double(pp[im]), v = double(pp[iv]), ev = lensing::math::exp(v);
          acc += 0.5 * (ev + mu * mu - 1.0 - v);
          if (g != nullptr) {
            g[im] = Scalar(b * inv_n * mu);
            g[iv] = Scalar(b * inv_n * 0.5 * (ev - 1.0));
          }
        },
        kl);
    terms->nll = nll * inv_n;
    terms->kl = kl * inv_n;
    return Scalar((nll + b * kl) * inv_n);
  }
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_VARIATIONAL_AUTOENCODER_HPP
