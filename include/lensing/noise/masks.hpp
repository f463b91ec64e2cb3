#ifndef LENSING_NOISE_MASKS_HPP
#define LENSING_NOISE_MASKS_HPP

/// \file
/// Random masks: regions of missing data (satellite trails, bad columns,
/// blocked areas) as in the training sets of Hezaveh, Perreault Levasseur &
/// Marshall (2017, Nature 548, 555), where random masked regions teach the
/// network to ignore missing pixels.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/noise/image_batch.hpp>

#include <cmath>
#include <cstdint>
#include <string>

namespace lensing {
namespace noise {

/// Random disks of missing pixels.  Per image: N ~ Poisson(mean_count)
/// disks (capped at max_count), centres uniform over the image, radii
/// uniform in [min_radius, max_radius] [pixels] (max_count <= 32).  A pixel
/// whose centre lies inside a disk is masked: image value -> fill_value, mask -> 0 (else 1).
template <class Scalar>
struct RandomMask {
  Scalar mean_count = Scalar(1);
  Scalar min_radius = Scalar(1);
  Scalar max_radius = Scalar(4);
  Scalar fill_value = Scalar(0);
  int max_count = 16;  ///< at most count_limit
  static constexpr int count_limit = 32;

  void check(char const* where) const {
    check_in_closed_open(mean_count, Scalar(0), Scalar(1e6), where, "mean_count");
    check_nonnegative(min_radius, where, "min_radius");
    check_argument(std::isfinite(max_radius) && max_radius >= min_radius, where,
                   lensing::detail::describe("max_radius", "finite and >= min_radius", max_radius));
    check_finite(fill_value, where, "fill_value");
    check_count(max_count, 0, where, "max_count");
    check_argument(max_count <= count_limit, where, "max_count must be <= " + std::to_string(count_limit));
  }
};

/// Mask `images` in place and write the mask (1 = good, 0 = masked) into
/// `mask`, a view of the same rank, extents and value type.
template <class ExecutionSpace, class View, class MaskView>
void apply(ExecutionSpace const& space, RandomMask<typename View::non_const_value_type> const& model,
           View const& images, MaskView const& mask, std::uint64_t seed, std::uint64_t first_image = 0) {
  constexpr char const* where = "lensing::noise::apply(RandomMask)";
  using Scalar = typename View::non_const_value_type;
  detail::static_check_images<ExecutionSpace, View>();
  detail::static_check_images<ExecutionSpace, MaskView>();
  static_assert(int(MaskView::rank) == int(View::rank),
                "lensing::noise::apply(RandomMask): mask must have the images' rank");
  auto const s = detail::batch_shape(images);
  auto const sm = detail::batch_shape(mask);
  detail::check_shape(s, where);
  check_argument(s.n == sm.n && s.ny == sm.ny && s.nx == sm.nx, where, "mask must have the extents of images");
  model.check(where);
  auto const m = model;
  int const ny = s.ny, nx = s.nx;
  detail::for_each_segment(
      "lensing::noise::random_mask", space, s, KOKKOS_LAMBDA(int b, int iy, int ix0, int ix1) {
        // The disks of image b that cross row iy (drawn once per segment).
        random::Stream rc(random::stream_key(seed, random::purpose_mask_count, first_image + b));
        double const drawn = rc.poisson(double(m.mean_count));
        int const n = drawn < double(m.max_count) ? int(drawn) : m.max_count;
        Scalar cx[RandomMask<Scalar>::count_limit], half[RandomMask<Scalar>::count_limit];
        int nrow = 0;
        for (int k = 0; k < n; ++k) {
          random::Stream r(random::stream_key(seed, random::purpose_mask_shape, first_image + b, k));
          Scalar const x = r.uniform<Scalar>() * Scalar(nx) - Scalar(0.5);
          Scalar const y = r.uniform<Scalar>() * Scalar(ny) - Scalar(0.5);
          Scalar const rad = m.min_radius + (m.max_radius - m.min_radius) * r.uniform<Scalar>();
          Scalar const dy = Scalar(iy) - y, h2 = rad * rad - dy * dy;
          if (h2 > Scalar(0)) {  // the chord of the disk on this row: |ix - x| < sqrt(h2)
            cx[nrow] = x;
            half[nrow] = math::sqrt(h2);
            ++nrow;
          }
        }
        for (int ix = ix0; ix < ix1; ++ix) {
          bool masked = false;
          for (int k = 0; k < nrow; ++k)
            masked = masked || math::fabs(Scalar(ix) - cx[k]) < half[k];
          if (masked) detail::at(images, b, iy, ix) = m.fill_value;
          detail::at(mask, b, iy, ix) = masked ? 0 : 1;
        }
      });
}

}  // namespace noise
}  // namespace lensing

#endif  // LENSING_NOISE_MASKS_HPP
