#ifndef LENSING_NOISE_BAD_PIXELS_HPP
#define LENSING_NOISE_BAD_PIXELS_HPP

/// \file
/// Hot and dead pixels on an image (ny, nx) or a batch (n, ny, nx).

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/noise/image_batch.hpp>

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace lensing {
namespace noise {

/// Hot and dead pixels.  With u ~ U(0, 1) per pixel: u < dead_fraction ->
/// v = dead_value (no response); dead_fraction <= u < dead_fraction +
/// hot_fraction -> v += hot_value * exp(sigma_log z) (excess dark current,
/// log-normal spread), z ~ N(0, 1).  `fixed_pattern` (default): the pattern
/// is a property of the detector, the same in every image of the seed
/// (streams keyed by pixel only); otherwise a new pattern per image.
/// Fractions in [0, 1] with dead_fraction + hot_fraction <= 1.
template <class Scalar>
struct BadPixels {
  Scalar hot_fraction = Scalar(1e-4);
  Scalar hot_value = Scalar(1);
  Scalar dead_fraction = Scalar(1e-4);
  Scalar dead_value = Scalar(0);
  Scalar sigma_log = Scalar(0.5);
  bool fixed_pattern = true;

  void check(char const* where) const {
    check_in_closed(hot_fraction, Scalar(0), Scalar(1), where, "hot_fraction");
    check_in_closed(dead_fraction, Scalar(0), Scalar(1), where, "dead_fraction");
    check_argument(hot_fraction + dead_fraction <= 1, where, "hot_fraction + dead_fraction must be <= 1");
    check_finite(hot_value, where, "hot_value");
    check_finite(dead_value, where, "dead_value");
    check_nonnegative(sigma_log, where, "sigma_log");
  }
};

namespace detail {
/// flag[i] = 1 where pixel pixel0 + i of `image` draws a uniform below
/// `limit` (a hot or dead pixel), for i < m <= 64: the first draw of apply's
/// stream, vectorised (a separate function: GCC does not vectorise the loop
/// inside the Kokkos lambda).
template <class Scalar>
KOKKOS_INLINE_FUNCTION void bad_pixel_flags(int* __restrict flag, int m, std::uint64_t seed, std::uint64_t image,
                                            std::uint64_t pixel0, Scalar limit) {
  for (int i = 0; i < m; ++i) {
    random::Stream r(random::stream_key(seed, random::purpose_hot_dead, image, pixel0 + i));
    flag[i] = r.uniform<Scalar>() < limit ? 1 : 0;
  }
}
}  // namespace detail

/// Apply hot and dead pixels to `images` in place.
template <class ExecutionSpace, class View>
void apply(ExecutionSpace const& space, BadPixels<typename View::non_const_value_type> const& model, View const& images,
           std::uint64_t seed, std::uint64_t first_image = 0) {
  constexpr char const* where = "lensing::noise::apply(BadPixels)";
  using Scalar = typename View::non_const_value_type;
  detail::static_check_images<ExecutionSpace, View>();
  auto const s = detail::batch_shape(images);
  detail::check_shape(s, where);
  model.check(where);
  auto const m = model;
  int const nx = s.nx;
  if constexpr (std::is_same<typename ExecutionSpace::memory_space, Kokkos::HostSpace>::value) {
    if (images.stride(View::rank - 1) == 1) {
      // Host: a vectorised pass draws every pixel's uniform and flags the
      // rare hot or dead ones (u < dead_fraction + hot_fraction), which the
      // scalar code below then redraws from the start of their streams.
      int const ny = s.ny;
      if (m.fixed_pattern) {
        // The same pattern in every image: one work item per row draws its
        // flags and values once and applies them to the row in each image
        // (the same values as per image, a sweep of the batch fewer).
        int const n_images = s.n;
        Kokkos::parallel_for(
            "lensing::noise::bad_pixels", Kokkos::RangePolicy<ExecutionSpace>(space, 0, ny), KOKKOS_LAMBDA(int iy) {
              std::uint64_t const image = ~std::uint64_t(0);
              constexpr int cap = 64;
              int flag[cap];
              for (int i0 = 0; i0 < nx; i0 += cap) {
                int const n = nx - i0 < cap ? nx - i0 : cap;
                detail::bad_pixel_flags<Scalar>(flag, n, seed, image, std::uint64_t(iy) * nx + i0,
                                                m.dead_fraction + m.hot_fraction);
                for (int i = 0; i < n; ++i) {
                  if (!flag[i]) continue;
                  random::Stream r(
                      random::stream_key(seed, random::purpose_hot_dead, image, std::uint64_t(iy) * nx + i0 + i));
                  Scalar const u = r.uniform<Scalar>();
                  if (u < m.dead_fraction) {
                    for (int b = 0; b < n_images; ++b)
                      detail::at(images, b, iy, i0 + i) = m.dead_value;
                  } else if (u < m.dead_fraction + m.hot_fraction) {
                    Scalar const hot = m.hot_value * math::exp(m.sigma_log * r.normal<Scalar>());
                    for (int b = 0; b < n_images; ++b)
                      detail::at(images, b, iy, i0 + i) += hot;
                  }
                }
              }
            });
        return;
      }
      Kokkos::parallel_for(
          "lensing::noise::bad_pixels",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(s.n) * ny),
          KOKKOS_LAMBDA(long row) {
            int const b = int(row / ny), iy = int(row % ny);
            Scalar* __restrict const p = &detail::at(images, b, iy, 0);
            std::uint64_t const image = m.fixed_pattern ? ~std::uint64_t(0) : first_image + b;
            constexpr int cap = 64;
            int flag[cap];
            for (int i0 = 0; i0 < nx; i0 += cap) {
              int const n = nx - i0 < cap ? nx - i0 : cap;
              detail::bad_pixel_flags<Scalar>(flag, n, seed, image, std::uint64_t(iy) * nx + i0,
                                              m.dead_fraction + m.hot_fraction);
              for (int i = 0; i < n; ++i) {
                if (!flag[i]) continue;
                random::Stream r(
                    random::stream_key(seed, random::purpose_hot_dead, image, std::uint64_t(iy) * nx + i0 + i));
                Scalar const u = r.uniform<Scalar>();
                if (u < m.dead_fraction) {
                  p[i0 + i] = m.dead_value;
                } else if (u < m.dead_fraction + m.hot_fraction) {
                  p[i0 + i] += m.hot_value * math::exp(m.sigma_log * r.normal<Scalar>());
                }
              }
            }
          });
      return;
    }
  }
  detail::for_each_value(
      "lensing::noise::bad_pixels", space, images, KOKKOS_LAMBDA(int b, int iy, int ix, Scalar& v) {
        std::uint64_t const image = m.fixed_pattern ? ~std::uint64_t(0) : first_image + b;
        random::Stream r(random::stream_key(seed, random::purpose_hot_dead, image, std::uint64_t(iy) * nx + ix));
        Scalar const u = r.uniform<Scalar>();
        if (u < m.dead_fraction) {
          v = m.dead_value;
        } else if (u < m.dead_fraction + m.hot_fraction) {
          v += m.hot_value * math::exp(m.sigma_log * r.normal<Scalar>());
        }
      });
}

}  // namespace noise
}  // namespace lensing

#endif  // LENSING_NOISE_BAD_PIXELS_HPP
