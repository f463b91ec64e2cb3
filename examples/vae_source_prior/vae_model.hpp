// The convolutional VAE of examples/vae_source_prior, shared with the
// programs that load its trained weights (a lens fit with the decoder as a
// learned, differentiable source): the architecture, the image convention of
// its training sets and the loaders of the committed weights.  Kept stable:
// the weight files only load into exactly this architecture.
//
// Images: image_size x image_size, one channel, row-major image(iy, ix) with
// pixel (iy, ix) centred at ((ix - (n-1)/2)/n, (iy - (n-1)/2)/n) in units of
// the box side (iy grows with y: lenstronomy's grid convention, as
// simulate/digits.hpp renders), intensities of order 1 (digits: 1 on a
// stroke, 0 off it; galaxies: peak normalised to 1).  A source of angular
// side L arcsec puts decoder pixel (iy, ix) at L x the box coordinates above.
//
// Encoder: conv 3x3 (1 -> 16) - ELU - conv 4x4/2 (16 -> 32, 32 -> 16 px) - ELU
// - conv 4x4/2 (32 -> 64, 16 -> 8 px) - ELU - conv 4x4/2 (64 -> 64, 8 -> 4 px)
// - ELU - flatten - dense (1024 -> 2 latent_dim): (mu, log sigma^2) of q(z|x).
// Decoder: dense (latent_dim -> 1024) - ELU - reshape (64, 4, 4) - transposed
// conv 4x4/2 (64 -> 64, 4 -> 8 px) - ELU - transposed conv 4x4/2 (64 -> 32,
// 8 -> 16 px) - ELU - transposed conv 4x4/2 (32 -> 16, 16 -> 32 px) - ELU -
// conv 3x3 (16 -> 1): the mean image (linear output).  Prior p(z) = N(0, I).
//
//   auto dec = vae_model::load_decoder(vae_model::weights_path("digits"));
//   auto img = dec.forward(space, z);   // z: (N, latent_dim, 1, 1) -> (N, 1, 32, 32)
//   // d(pixels)/dz: write dL/dimg into dec.output_gradient(), dec.backward(space, z, dz).
#ifndef LENSING_EXAMPLES_VAE_SOURCE_PRIOR_VAE_MODEL_HPP
#define LENSING_EXAMPLES_VAE_SOURCE_PRIOR_VAE_MODEL_HPP

#include <lensing/nn/activation.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/conv_transpose2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/flatten.hpp>
#include <lensing/nn/reshape.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/serialize.hpp>
#include <lensing/nn/variational_autoencoder.hpp>

#include <cstdint>
#include <string>

#ifndef LENSING_VAE_SOURCE_PRIOR_DIR
#define LENSING_VAE_SOURCE_PRIOR_DIR "examples/vae_source_prior"
#endif

namespace vae_model {

using Scalar = float;
using Space = Kokkos::DefaultExecutionSpace;
using Mem = Space::memory_space;

constexpr int image_size = 32;
constexpr int latent_dim = 16;
constexpr int image_pixels = image_size * image_size;

/// Pixel likelihood of the training (nats in the ELBO): Gaussian with a
/// fixed sd in image units (the training sets' intensities are of order 1):
/// 0.1 for the digits, 0.05 for the galaxies (fainter structure: arms and
/// clumps at a few per cent of the peak).
constexpr double pixel_sigma = 0.1;
constexpr double galaxy_pixel_sigma = 0.05;
inline double pixel_sigma_for(std::string const& set) { return set == "galaxies" ? galaxy_pixel_sigma : pixel_sigma; }

inline auto make_encoder() {
  namespace nn = lensing::nn;
  using S = Scalar;
  using M = Mem;
  return nn::make_sequential(nn::Conv2D<S, M>(1, 16, 3, 1, 1), nn::ELU<S, M>(), nn::Conv2D<S, M>(16, 32, 4, 2, 1),
                             nn::ELU<S, M>(), nn::Conv2D<S, M>(32, 64, 4, 2, 1), nn::ELU<S, M>(),
                             nn::Conv2D<S, M>(64, 64, 4, 2, 1), nn::ELU<S, M>(), nn::Flatten<S, M>(),
                             nn::Dense<S, M>(64 * 4 * 4, 2 * latent_dim, nn::Init::xavier_normal));
}
inline auto make_decoder() {
  namespace nn = lensing::nn;
  using S = Scalar;
  using M = Mem;
  return nn::make_sequential(
      nn::Dense<S, M>(latent_dim, 64 * 4 * 4), nn::ELU<S, M>(), nn::Reshape<S, M>(64, 4, 4),
      nn::ConvTranspose2D<S, M>(64, 64, 4, 2, 1), nn::ELU<S, M>(), nn::ConvTranspose2D<S, M>(64, 32, 4, 2, 1),
      nn::ELU<S, M>(), nn::ConvTranspose2D<S, M>(32, 16, 4, 2, 1), nn::ELU<S, M>(), nn::Conv2D<S, M>(16, 1, 3, 1, 1));
}
using Encoder = decltype(make_encoder());
using Decoder = decltype(make_decoder());
using Vae = lensing::nn::VariationalAutoencoder<Encoder, Decoder>;

/// The whole VAE as a one-layer network (what nn::fit trains and
/// save_weights writes), initialised from `seed` (weights and the noise stream).
inline auto make_network(std::uint64_t seed) {
  auto net = lensing::nn::make_sequential(lensing::nn::Shape4{1, 1, image_size, image_size},
                                          Vae(make_encoder(), make_decoder(), latent_dim, seed));
  net.initialize(seed);
  return net;
}
using Network = decltype(make_network(0));

/// The committed weights of the model trained on `set` ("digits" or "galaxies").
inline std::string weights_path(std::string const& set, std::string const& dir = LENSING_VAE_SOURCE_PRIOR_DIR) {
  return dir + "/" + set + ".weights";
}

/// The VAE with the weights of `path` (lensing::nn::load_weights: throws on a
/// missing, corrupted or foreign file).
inline Network load_network(std::string const& path) {
  Network net = make_network(0);
  lensing::nn::load_weights(net, path);
  return net;
}

/// A decoder of its own (fresh buffers and parameters) with the trained
/// weights of `path`: z (N, latent_dim, 1, 1) -> mean image (N, 1, image_size, image_size).
inline Decoder load_decoder(std::string const& path) {
  Network net = load_network(path);
  Decoder dec = make_decoder();
  dec.prepare(lensing::nn::Shape4{1, latent_dim, 1, 1});
  Kokkos::deep_copy(dec.parameters(), net.layer<0>().decoder().parameters());
  return dec;
}

/// An encoder of its own with the trained weights of `path`: images (N, 1,
/// image_size, image_size) -> (N, 2 latent_dim, 1, 1), per sample (mu, log sigma^2).
inline Encoder load_encoder(std::string const& path) {
  Network net = load_network(path);
  Encoder enc = make_encoder();
  enc.prepare(lensing::nn::Shape4{1, 1, image_size, image_size});
  Kokkos::deep_copy(enc.parameters(), net.layer<0>().encoder().parameters());
  return enc;
}

}  // namespace vae_model

#endif  // LENSING_EXAMPLES_VAE_SOURCE_PRIOR_VAE_MODEL_HPP
