#ifndef LENSING_NOISE_COSMIC_RAYS_HPP
#define LENSING_NOISE_COSMIC_RAYS_HPP

/// \file
/// Cosmic-ray hits: random straight tracks of deposited charge added to an
/// image (ny, nx) or a batch (n, ny, nx), deterministic for a seed whatever
/// the thread count.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/noise/image_batch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

namespace lensing {
namespace noise {

/// Cosmic-ray model (all lengths in pixels).
///
/// Number of hits per image ~ Poisson(rate * ny * nx), `rate` = hits per
/// pixel per exposure (HST ACS/WFC: ~1.5% of pixels affected in a 1000 s
/// exposure, i.e. a few 1e-3 hits per pixel with a few pixels per hit; the
/// default 2e-4 suits ~100 s exposures).  Each hit: a uniformly placed start
/// point, an isotropic direction in the detector plane, and an incidence
/// angle theta from an isotropic flux through a flat surface (p(theta) ~
/// cos theta sin theta, i.e. cos^2 theta ~ U(0, 1)), so the projected length
/// is L = depth tan(theta) (depth = depletion thickness / pixel size), capped
/// at `max_length`: mostly short hits with a heavy tail of long tracks, as
/// seen in HST and ground-based CCD frames.  The charge deposited is that of
/// a minimum-ionising particle along the 3-d path, `charge_per_depth` [e-] per
/// pixel-depth of silicon times depth / cos(theta), times a log-normal
/// Landau-like fluctuation exp(sigma_log z); it is spread along the track
/// with a Gaussian cross-section of rms `width` (charge diffusion) and added
/// to the image as rate charge / exposure_time [e-/s].  The number of tracks
/// per image is capped at `max_tracks` (counts above are truncated; keep
/// rate * ny * nx well below it: the default leaves > 10 sigma).
template <class Scalar>
struct CosmicRayModel {
  Scalar rate = Scalar(2e-4);              ///< hits per pixel per exposure
  Scalar depth = Scalar(2);                ///< depletion depth / pixel size
  Scalar max_length = Scalar(40);          ///< cap on the projected length [px]
  Scalar width = Scalar(0.5);              ///< Gaussian rms of the track cross-section [px]
  Scalar charge_per_depth = Scalar(1500);  ///< e- per pixel-depth of path
  Scalar sigma_log = Scalar(0.3);          ///< rms of the log of the charge fluctuation
  Scalar exposure_time = Scalar(100);      ///< [s]: charge -> rate
  int max_tracks = 64;                     ///< cap on tracks per image

  void check(char const* where) const {
    check_nonnegative(rate, where, "rate");
    check_positive(depth, where, "depth");
    check_positive(max_length, where, "max_length");
    check_positive(width, where, "width");
    check_nonnegative(charge_per_depth, where, "charge_per_depth");
    check_nonnegative(sigma_log, where, "sigma_log");
    check_positive(exposure_time, where, "exposure_time");
    check_count(max_tracks, 1, where, "max_tracks");
  }
};

/// One track: segment (x0, y0) -> (x1, y1) in pixel coordinates (ix, iy),
/// line density `amplitude` [image units per pixel of length], rms `width`
/// of the cross-section including the pixel response, sqrt(w^2 + 1/12).
template <class Scalar>
struct CosmicRayTrack {
  Scalar x0, y0, x1, y1, amplitude, width;
};

/// Cosmic-ray generator owning its track buffers (built in the constructor
/// for up to `max_images` images per call).
///
/// apply() draws the tracks of each image (one work item per image), then
/// adds them (one per pixel): pixel value += amplitude / (sqrt(2 pi) width)
/// exp(-d^2 / (2 width^2)), d = distance from the pixel centre to the
/// segment, which deposits amplitude * L (+ the end caps) per track.
/// `counts()` and `tracks()` hold the last call's draws.
template <class Scalar, class MemorySpace>
class CosmicRays {
 public:
  using track_type = CosmicRayTrack<Scalar>;

  CosmicRays(CosmicRayModel<Scalar> const& model, int max_images) : m_model(model) {
    constexpr char const* where = "lensing::noise::CosmicRays";
    model.check(where);
    check_count(max_images, 1, where, "max_images");
    m_counts = allocate_view<View1D<int, MemorySpace>>("lensing::noise::CosmicRays",
                                                       "lensing::noise::CosmicRays::counts", true, max_images);
    m_tracks = allocate_view<View2D<track_type, MemorySpace>>(
        "lensing::noise::CosmicRays", "lensing::noise::CosmicRays::tracks", true, max_images, model.max_tracks);
  }

  CosmicRayModel<Scalar> const& model() const { return m_model; }
  /// Tracks drawn per image by the last apply (before the cap: min(N, max_tracks)).
  View1D<int, MemorySpace> counts() const { return m_counts; }
  View2D<track_type, MemorySpace> tracks() const { return m_tracks; }

  /// Add cosmic rays to `images`.
  template <class ExecutionSpace, class View>
  void apply(ExecutionSpace const& space, View const& images, std::uint64_t seed, std::uint64_t first_image = 0) const {
    constexpr char const* where = "lensing::noise::CosmicRays::apply";
    detail::static_check_images<ExecutionSpace, View>();
    static_assert(std::is_same<typename View::non_const_value_type, Scalar>::value,
                  "lensing::noise::CosmicRays: images must hold the generator's Scalar");
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::noise::CosmicRays: buffers must be accessible from the execution space");
    auto const s = detail::batch_shape(images);
    detail::check_shape(s, where);
    check_argument(
        s.n <= int(m_counts.extent(0)), where,
        "batch of " + std::to_string(s.n) + " images exceeds max_images = " + std::to_string(m_counts.extent(0)));
    draw(space, s, seed, first_image);
    auto const counts = m_counts;
    auto const tracks = m_tracks;
    if constexpr (std::is_same<typename ExecutionSpace::memory_space, Kokkos::HostSpace>::value) {
      if (images.stride(View::rank - 1) == 1) {
        // Host: one work item per image row; each track adds to the columns
        // of its box only (the few pixels it touches) in a row buffer, then
        // the row takes the buffer.  The same terms in the same order as the
        // per-pixel loop below, so the same images.
        int const ny = s.ny, nx = s.nx;
        Kokkos::parallel_for(
            "lensing::noise::cosmic_rays::deposit",
            Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(s.n) * ny),
            KOKKOS_LAMBDA(long row) {
              int const b = int(row / ny), iy = int(row % ny);
              int const n = counts(b);
              if (n == 0) return;
              Scalar* __restrict const p = &detail::at(images, b, iy, 0);
              Scalar const py = Scalar(iy);
              constexpr int cap = 256;
              Scalar add[cap];
              for (int i0 = 0; i0 < nx; i0 += cap) {
                int const m = nx - i0 < cap ? nx - i0 : cap;
                bool any = false;
                for (int i = 0; i < m; ++i)
                  add[i] = Scalar(0);
                for (int k = 0; k < n; ++k) {
                  track_type const& t = tracks(b, k);
                  Scalar const reach = Scalar(5) * t.width;
                  if (py < math::min(t.y0, t.y1) - reach || py > math::max(t.y0, t.y1) + reach) continue;
                  // Columns ix with lo <= ix <= hi (ix exact in Scalar: the per-pixel test).
                  Scalar const lo = math::min(t.x0, t.x1) - reach, hi = math::max(t.x0, t.x1) + reach;
                  int const j0 = math::max(i0, int(math::ceil(math::max(lo, Scalar(-1)))));
                  int const j1 = math::min(i0 + m - 1, int(math::floor(math::min(hi, Scalar(nx)))));
                  Scalar const dx = t.x1 - t.x0, dy = t.y1 - t.y0;
                  Scalar const len2 = dx * dx + dy * dy;
                  Scalar const w = t.width;
                  for (int ix = j0; ix <= j1; ++ix) {
                    Scalar const px = Scalar(ix);
                    Scalar u = len2 > Scalar(0) ? ((px - t.x0) * dx + (py - t.y0) * dy) / len2 : Scalar(0);
                    u = math::clamp(u, Scalar(0), Scalar(1));
                    Scalar const ex = px - (t.x0 + u * dx), ey = py - (t.y0 + u * dy);
                    add[ix - i0] += t.amplitude * Scalar(0.3989422804014327) / w *
                                    math::exp(-(ex * ex + ey * ey) / (Scalar(2) * w * w));
                    any = true;
                  }
                }
                if (!any) continue;
                for (int i = 0; i < m; ++i)
                  p[i0 + i] += add[i];
              }
            });
        return;
      }
    }
    detail::for_each_pixel(
        "lensing::noise::cosmic_rays::deposit", space, s, KOKKOS_LAMBDA(int b, int iy, int ix) {
          Scalar const px = Scalar(ix), py = Scalar(iy);
          Scalar add = 0;
          int const n = counts(b);
          for (int k = 0; k < n; ++k) {
            track_type const& t = tracks(b, k);
            Scalar const reach = Scalar(5) * t.width;
            if (px < math::min(t.x0, t.x1) - reach || px > math::max(t.x0, t.x1) + reach ||
                py < math::min(t.y0, t.y1) - reach || py > math::max(t.y0, t.y1) + reach)
              continue;
            Scalar const dx = t.x1 - t.x0, dy = t.y1 - t.y0;
            Scalar const len2 = dx * dx + dy * dy;
            Scalar u = len2 > Scalar(0) ? ((px - t.x0) * dx + (py - t.y0) * dy) / len2 : Scalar(0);
            u = math::clamp(u, Scalar(0), Scalar(1));
            Scalar const ex = px - (t.x0 + u * dx), ey = py - (t.y0 + u * dy);
            Scalar const w = t.width;
            add += t.amplitude * Scalar(0.3989422804014327) / w * math::exp(-(ex * ex + ey * ey) / (Scalar(2) * w * w));
          }
          detail::at(images, b, iy, ix) += add;
        });
  }

  /// Draw the tracks of images [first_image, first_image + shape.n) without
  /// adding them (apply calls it; exposed for tests and for writing masks of
  /// the hits).
  template <class ExecutionSpace>
  void draw(ExecutionSpace const& space, detail::BatchShape s, std::uint64_t seed,
            std::uint64_t first_image = 0) const {
    constexpr char const* where = "lensing::noise::CosmicRays::draw";
    detail::check_shape(s, where);
    check_argument(s.n <= int(m_counts.extent(0)), where, "more images than max_images");
    auto const counts = m_counts;
    auto const tracks = m_tracks;
    auto const m = m_model;
    double const mean = double(m.rate) * s.ny * s.nx;
    check_argument(mean < 4.5e15, where, "rate * ny * nx too large");
    int const ny = s.ny, nx = s.nx;
    // Pixels integrate the charge over their area; sampling the profile at
    // pixel centres with the box's variance 1/12 added approximates that
    // integral (and keeps the sum over pixels within 0.3% of the charge for
    // width >= 0.5, where pure centre sampling aliases by 1.5%).
    Scalar const w_eff = math::sqrt(m.width * m.width + Scalar(1) / Scalar(12));
    Kokkos::parallel_for(
        "lensing::noise::cosmic_rays::draw", Kokkos::RangePolicy<ExecutionSpace>(space, 0, s.n), KOKKOS_LAMBDA(int b) {
          random::Stream rc(random::stream_key(seed, random::purpose_cosmic_count, first_image + b));
          double const drawn = rc.poisson(mean);
          int const n = drawn < double(m.max_tracks) ? int(drawn) : m.max_tracks;
          counts(b) = n;
          for (int k = 0; k < n; ++k) {
            random::Stream r(random::stream_key(seed, random::purpose_cosmic_track, first_image + b, k));
            Scalar const x0 = r.uniform<Scalar>() * Scalar(nx) - Scalar(0.5);
            Scalar const y0 = r.uniform<Scalar>() * Scalar(ny) - Scalar(0.5);
            Scalar const phi = Scalar(2) * math::pi<Scalar> * r.uniform<Scalar>();
            Scalar const c2 = r.uniform<Scalar>();  // cos^2(theta) ~ U(0, 1)
            Scalar const cos_t = math::sqrt(c2);
            Scalar const len = math::min(m.depth * math::sqrt(Scalar(1) - c2) / cos_t, m.max_length);
            Scalar const path = m.depth / cos_t;  // 3-d path in pixel-depth units (uncapped)
            Scalar const charge = math::min(path, m.max_length + m.depth) * m.charge_per_depth / m.depth *
                                  math::exp(m.sigma_log * r.normal<Scalar>() - Scalar(0.5) * m.sigma_log * m.sigma_log);
            track_type t;
            t.x0 = x0;
            t.y0 = y0;
            t.x1 = x0 + len * math::cos(phi);
            t.y1 = y0 + len * math::sin(phi);
            t.width = w_eff;
            // Line density so that the segment carries the charge (the end caps add
            // amplitude * sqrt(2 pi) width / 2 each, small next to long tracks).
            t.amplitude = charge / m.exposure_time / (len + Scalar(2.5066282746310002) * w_eff);
            tracks(b, k) = t;
          }
        });
  }

 private:
  CosmicRayModel<Scalar> m_model;
  View1D<int, MemorySpace> m_counts;
  View2D<track_type, MemorySpace> m_tracks;
};

}  // namespace noise
}  // namespace lensing

#endif  // LENSING_NOISE_COSMIC_RAYS_HPP
