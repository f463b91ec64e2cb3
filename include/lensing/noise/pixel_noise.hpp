#ifndef LENSING_NOISE_PIXEL_NOISE_HPP
#define LENSING_NOISE_PIXEL_NOISE_HPP

/// \file
/// Pixel-wise noise and detector response: background Gaussian noise,
/// Poisson shot noise from the exposure time, read noise, zero-point bias and
/// saturation, applied in place to an image (ny, nx) or a batch (n, ny, nx) on
/// any execution space (noise/image_batch.hpp).
///
/// Units follow lenstronomy's SimAPI: pixel values are count rates [e-/s],
/// `exposure_time` [s] converts them to detected electrons, the background
/// rms is in image units.  The order of a realistic chain (Hezaveh, Perreault
/// Levasseur & Marshall 2017, Nature 548, 555) is: noiseless image -> Poisson
/// -> read noise -> background -> bias -> artefacts -> saturation.
///
/// Every draw comes from the counter-based stream (seed, purpose, global image
/// index first_image + b, pixel index iy * nx + ix): deterministic for a seed
/// whatever the thread count.  All calls are asynchronous on `space`.

#include <lensing/core/errors.hpp>
#include <lensing/noise/image_batch.hpp>
#include <lensing/noise/random_stream.hpp>

#include <cmath>
#include <cstdint>

namespace lensing {
namespace noise {

//----------------------------------------------------------------------------
// Models (trivially copyable value types).

/// Background noise: v += sigma * z, z ~ N(0, 1) independent per pixel.
/// sigma [image units] >= 0 (lenstronomy `background_rms`).
template <class Scalar>
struct GaussianNoise {
  Scalar sigma;
  void check(char const* where) const {
    check_argument(std::isfinite(sigma) && sigma >= 0, where,
                   lensing::detail::describe("sigma", "finite and >= 0", sigma));
  }
};

/// Shot noise: v -> N / t with N ~ Poisson(max(v, 0) t), t = exposure_time [s]
/// > 0, v the expected count rate [e-/s] (negative rates, e.g. from a
/// subtracted background, count as 0).  Exact for expected counts below
/// `normal_threshold` (inversion below 10, PTRS rejection above; see
/// random::Stream::poisson); above it the normal approximation
/// N = round(mu + sqrt(mu) z), whose skewness error 1/sqrt(mu) is < 3% at the
/// default threshold 1000 and whose cost is one normal draw.  Image values
/// must be finite (checked: one reduction); expected counts are capped at
/// 2^52.  Cost (float, 64x64 images, one core of this machine): ~24 ns/pixel
/// at mu = 500 (PTRS), ~3 ns/pixel in the normal regime; lower
/// normal_threshold (>= 10) to trade exactness for speed.
template <class Scalar>
struct PoissonNoise {
  Scalar exposure_time;
  double normal_threshold = 1000;
  void check(char const* where) const {
    check_positive(exposure_time, where, "exposure_time");
    check_argument(std::isfinite(normal_threshold) && normal_threshold >= 10, where,
                   lensing::detail::describe("normal_threshold", "finite and >= 10", normal_threshold));
  }
};

/// Read noise: v += sigma_e z / t, sigma_e [e- rms per pixel per exposure] >= 0,
/// t = exposure_time [s] > 0.
template <class Scalar>
struct ReadNoise {
  Scalar sigma_e;
  Scalar exposure_time;
  void check(char const* where) const {
    check_argument(std::isfinite(sigma_e) && sigma_e >= 0, where,
                   lensing::detail::describe("sigma_e", "finite and >= 0", sigma_e));
    check_positive(exposure_time, where, "exposure_time");
  }
};

/// Zero-point bias (imperfect sky / bias subtraction): v += offset + sigma z_b
/// with one z_b ~ N(0, 1) per image b (the same for all its pixels).
template <class Scalar>
struct ZeroPointBias {
  Scalar offset;
  Scalar sigma = 0;
  void check(char const* where) const {
    check_finite(offset, where, "offset");
    check_argument(std::isfinite(sigma) && sigma >= 0, where,
                   lensing::detail::describe("sigma", "finite and >= 0", sigma));
  }
};

/// Saturation (full well / ADC limit): v -> min(v, level).  No charge
/// bleeding along columns.  NaN pixels stay NaN.
template <class Scalar>
struct Saturation {
  Scalar level;
  void check(char const* where) const { check_finite(level, where, "level"); }
};

//----------------------------------------------------------------------------
// Application.

/// Add background Gaussian noise to `images` (rank 2 or 3).
template <class ExecutionSpace, class View>
void apply(ExecutionSpace const& space, GaussianNoise<typename View::non_const_value_type> const& model,
           View const& images, std::uint64_t seed, std::uint64_t first_image = 0) {
  constexpr char const* where = "lensing::noise::apply(GaussianNoise)";
  using Scalar = typename View::non_const_value_type;
  detail::static_check_images<ExecutionSpace, View>();
  auto const s = detail::batch_shape(images);
  detail::check_shape(s, where);
  model.check(where);
  Scalar const sigma = model.sigma;
  int const nx = s.nx;
  detail::for_each_value(
      "lensing::noise::gaussian", space, images, KOKKOS_LAMBDA(int b, int iy, int ix, Scalar& v) {
        random::Stream r(
            random::stream_key(seed, random::purpose_gaussian, first_image + b, std::uint64_t(iy) * nx + ix));
        v += sigma * r.normal<Scalar>();
      });
}

/// Replace `images` (expected rates [e-/s]) by a Poisson realisation / t.
template <class ExecutionSpace, class View>
void apply(ExecutionSpace const& space, PoissonNoise<typename View::non_const_value_type> const& model,
           View const& images, std::uint64_t seed, std::uint64_t first_image = 0) {
  constexpr char const* where = "lensing::noise::apply(PoissonNoise)";
  using Scalar = typename View::non_const_value_type;
  detail::static_check_images<ExecutionSpace, View>();
  auto const s = detail::batch_shape(images);
  detail::check_shape(s, where);
  model.check(where);
  long const bad = detail::count_non_finite(space, images, s);
  check_argument(bad == 0, where, "images must be finite (" + std::to_string(bad) + " NaN or inf pixels)");
  double const t = model.exposure_time, threshold = model.normal_threshold;
  int const nx = s.nx;
  detail::for_each_value(
      "lensing::noise::poisson", space, images, KOKKOS_LAMBDA(int b, int iy, int ix, Scalar& v) {
        random::Stream r(
            random::stream_key(seed, random::purpose_poisson, first_image + b, std::uint64_t(iy) * nx + ix));
        // Expected counts, clamped to [0, 2^52] (finite for any finite v * t).
        double const mu = math::fmin(math::fmax(double(v), 0.0) * t, 4.5e15);
        double n;
        if (mu < threshold) {
          n = r.poisson(mu);
        } else {
          n = math::fmax(0.0, math::floor(mu + math::sqrt(mu) * r.normal<double>() + 0.5));
        }
        v = Scalar(n / t);
      });
}

/// Add read noise.
template <class ExecutionSpace, class View>
void apply(ExecutionSpace const& space, ReadNoise<typename View::non_const_value_type> const& model, View const& images,
           std::uint64_t seed, std::uint64_t first_image = 0) {
  constexpr char const* where = "lensing::noise::apply(ReadNoise)";
  using Scalar = typename View::non_const_value_type;
  detail::static_check_images<ExecutionSpace, View>();
  auto const s = detail::batch_shape(images);
  detail::check_shape(s, where);
  model.check(where);
  Scalar const sigma = model.sigma_e / model.exposure_time;
  int const nx = s.nx;
  detail::for_each_value(
      "lensing::noise::read", space, images, KOKKOS_LAMBDA(int b, int iy, int ix, Scalar& v) {
        random::Stream r(random::stream_key(seed, random::purpose_read, first_image + b, std::uint64_t(iy) * nx + ix));
        v += sigma * r.normal<Scalar>();
      });
}

/// Add the zero-point bias (one random offset per image).
template <class ExecutionSpace, class View>
void apply(ExecutionSpace const& space, ZeroPointBias<typename View::non_const_value_type> const& model,
           View const& images, std::uint64_t seed, std::uint64_t first_image = 0) {
  constexpr char const* where = "lensing::noise::apply(ZeroPointBias)";
  using Scalar = typename View::non_const_value_type;
  detail::static_check_images<ExecutionSpace, View>();
  auto const s = detail::batch_shape(images);
  detail::check_shape(s, where);
  model.check(where);
  Scalar const offset = model.offset, sigma = model.sigma;
  detail::for_each_value(
      "lensing::noise::bias", space, images, KOKKOS_LAMBDA(int b, int, int, Scalar& v) {
        random::Stream r(random::stream_key(seed, random::purpose_bias, first_image + b));
        v += offset + sigma * r.normal<Scalar>();
      });
}

/// Clip `images` at the saturation level.
template <class ExecutionSpace, class View>
void apply(ExecutionSpace const& space, Saturation<typename View::non_const_value_type> const& model,
           View const& images, std::uint64_t /*seed*/ = 0, std::uint64_t /*first_image*/ = 0) {
  constexpr char const* where = "lensing::noise::apply(Saturation)";
  detail::static_check_images<ExecutionSpace, View>();
  auto const s = detail::batch_shape(images);
  detail::check_shape(s, where);
  model.check(where);
  auto const level = model.level;
  using Scalar = typename View::non_const_value_type;
  detail::for_each_value(
      "lensing::noise::saturation", space, images, KOKKOS_LAMBDA(int, int, int, Scalar& v) {
        // isnan first: an ordered comparison with NaN would raise FE_INVALID.
        if (!math::isnan(v) && v > level) v = level;
      });
}

}  // namespace noise
}  // namespace lensing

#endif  // LENSING_NOISE_PIXEL_NOISE_HPP
