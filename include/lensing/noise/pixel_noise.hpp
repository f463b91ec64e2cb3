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
#include <lensing/core/random.hpp>
#include <lensing/noise/image_batch.hpp>

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace lensing {
namespace noise {

//----------------------------------------------------------------------------
// Models (trivially copyable value types).

/// Background noise: v += sigma * z, z ~ N(0, 1) independent per pixel.
/// sigma [image units] >= 0 (lenstronomy `background_rms`).
template <class Scalar>
struct GaussianNoise {
  Scalar sigma;
  void check(char const* where) const { check_nonnegative(sigma, where, "sigma"); }
};

/// Shot noise: v -> N / t - sky with N ~ Poisson(max(v + sky, 0) t),
/// t = exposure_time [s] > 0, v the expected count rate [e-/s] (negative
/// rates, e.g. from a subtracted background, count as 0), sky >= 0 (default
/// 0) a subtracted sky that still contributes its shot noise.  Exact for expected counts below
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
  /// [e-/s per pixel] >= 0, added before the draw and subtracted after it
  /// (v -> N / t - sky, N ~ Poisson(max(v + sky, 0) t)): the shot noise of a
  /// sky-subtracted image, in the same pass.
  Scalar sky = Scalar(0);
  void check(char const* where) const {
    check_positive(exposure_time, where, "exposure_time");
    check_nonnegative(sky, where, "sky");
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
    check_nonnegative(sigma_e, where, "sigma_e");
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
    check_nonnegative(sigma, where, "sigma");
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

namespace detail {
/// One PTRS candidate of Stream::poisson (mean mu >= 10) from its uniforms
/// u, v, branch-free: k, and whether Stream::poisson surely accepts it
/// (squeeze, or the full test for k >= 10 with Stirling's log k! and vector
/// logs) or surely rejects it; neither for 0 <= k < 10 past the squeeze
/// (lgamma), left to the scalar path.  On lanes with mu < 10, a run-time
/// safe_mean >= 10 keeps every logarithm's argument positive (values unused).
KOKKOS_INLINE_FUNCTION void ptrs_candidate(double mu, double u, double v, double safe_mean, double& k, bool& accepted,
                                           bool& rejected) {
  bool const squeezed = random::Stream::ptrs_squeeze(mu, u, v, k);
  double const mt = mu >= 10 ? mu : safe_mean;  // where b > 3.4 and a > 0
  double const b = 0.931 + 2.53 * math::sqrt(mt), a = -0.059 + 0.02483 * b;
  double const us = 0.5 - math::fabs(u - 0.5);
  bool const big_k = k >= 10;
  double const kk = big_k ? k : safe_mean;  // keeps log k! finite on the other lanes
  bool const hard_reject = (k < 0) | ((us < 0.013) & (v > us));
  bool const full = math::log(v) + math::log(1.1239 + 1.1328 / (b - 3.4)) - math::log(a / (us * us) + b) <=
                    -mt + kk * math::log(mt) - random::Stream::log_factorial_stirling(kk);
  accepted = squeezed | (big_k & !hard_reject & full);
  rejected = !squeezed & (hard_reject | (big_k & !full));
}

/// Host pass 1 of apply(PoissonNoise) on m <= 64 pixels p[0, m) of image
/// `image` (stream elements pixel0 + i): the draws that need only the
/// stream's first two uniforms -- normal approximation (mu >= threshold) or
/// a first PTRS candidate accepted (squeeze or full test, the latter with
/// vector logs: a decision can differ from Stream::poisson's only where the
/// two sides of the test agree to a few ulp), or else a later candidate
/// accepted after sure rejections of the earlier ones -- into res[i] (slow[i] = 0);
/// the full tests run on the compacted ~30% of pixels the squeeze leaves;
/// slow[i] = 1 for the others, which pass 2 draws with Stream::poisson.  A
/// separate function so that GCC vectorises its loop (it does not when the
/// body sits in the Kokkos lambda).
// The first loop of poisson_first_candidates.  WithNormal = false when no
// pixel of the block reaches the threshold: the normal-approximation draw
// (a logarithm, a cosine polynomial and a square root in double per pixel)
// is then not computed (the block-level choice keeps the loop branch-free).
template <bool WithNormal, class Scalar>
KOKKOS_INLINE_FUNCTION void poisson_candidate_loop(Scalar const* __restrict p, int* __restrict slow,
                                                   int* __restrict retry, Scalar* __restrict res, int m,
                                                   std::uint64_t seed, std::uint64_t image, std::uint64_t pixel0,
                                                   double t, double threshold, Scalar sky) {
  double const safe_mean = threshold;
  for (int i = 0; i < m; ++i) {
    random::Stream r(random::stream_key(seed, random::purpose_poisson, image, pixel0 + i));
    // Pixels with v t outside (0, 4.5e15] go to pass 2 (which clamps);
    // here they use a harmless finite mean (a run-time value: a constant arm
    // would let GCC specialise the branches and then not if-convert them).
    double const vt = double(p[i] + sky) * t;
    bool const in_range = (vt > 0) & (vt <= 4.5e15);
    double const mu = in_range ? vt : safe_mean;
    double const u1 = r.uniform<double>(), u2 = r.uniform<double>();
    double k;
    bool const squeezed = random::Stream::ptrs_squeeze(mu, u1, u2, k);
    // Without WithNormal, the lanes with mu >= threshold are out of range
    // (mu = safe_mean): slow, and redrawn in pass 2.
    bool const normal = WithNormal && mu >= threshold;
    slow[i] = (!in_range | (!normal & !((mu >= 10) & squeezed))) ? 1 : 0;
    retry[i] = (in_range & !normal & (mu >= 10) & !squeezed) ? 1 : 0;
    // Stored unconditionally (into res): a store under `slow` would sink the
    // division into a branch.
    if constexpr (WithNormal) {
      double const fl = random::Stream::floor_exact(mu + math::sqrt(mu) * random::Stream::normal_from(u1, u2) + 0.5);
      double const nn = fl > 0 ? fl : 0.0;
      res[i] = Scalar((normal ? nn : k) / t) - sky;
    } else {
      res[i] = Scalar(k / t) - sky;
    }
  }
}

// Host compilers: keep poisson_later_candidates out of
// poisson_first_candidates (inlined, it pushed that function past GCC's
// inlining budget: the PTRS helpers became calls and its loops scalar).
#if defined(__GNUC__) && !defined(__CUDACC__)
#define LENSING_NOISE_NOINLINE __attribute__((noinline))
#else
#define LENSING_NOISE_NOINLINE
#endif

// Pixels whose first two PTRS candidates were both surely rejected (~2% of
// PTRS pixels at mean ~100; pass 2 redrew them with scalar logarithms, ~4%
// of a simulated batch's time): candidates 3, 4, ... the way
// poisson_first_candidates does the second, compacted each round.
// Candidate c uses the stream's draws 2c + 1 and 2c + 2, i.e.
// Stream(key + 2c golden)'s first two (Stream's counter contract).  Pixels
// left undecided (k < 10, or 16 candidates) stay slow.  rest[0, cr): their
// indices.
template <class Scalar>
LENSING_NOISE_NOINLINE KOKKOS_INLINE_FUNCTION void poisson_later_candidates(
    Scalar const* __restrict p, int* __restrict slow, Scalar* __restrict res, int* __restrict rest, int cr,
    std::uint64_t seed, std::uint64_t image, std::uint64_t pixel0, double t, double safe_mean, Scalar sky) {
  for (int cand = 2; cr > 0 && cand < 16; ++cand) {
    double kc[64];
    int acc[64], rej[64];
    for (int j = 0; j < cr; ++j) {
      std::uint64_t const key = random::stream_key(seed, random::purpose_poisson, image, pixel0 + rest[j]);
      random::Stream r(key + std::uint64_t(2 * cand) * 0x9E3779B97F4A7C15ULL);
      double const u = r.uniform<double>(), v = r.uniform<double>();
      double k;
      bool a, rj;
      ptrs_candidate(double(p[rest[j]] + sky) * t, u, v, safe_mean, k, a, rj);
      kc[j] = k;
      acc[j] = a ? 1 : 0;
      rej[j] = rj ? 1 : 0;
    }
    int next = 0;
    for (int j = 0; j < cr; ++j) {
      int const i = rest[j];
      rest[next] = i;  // next <= j: reads stay ahead of writes
      next += rej[j];
      if (!acc[j]) continue;
      slow[i] = 0;
      res[i] = Scalar(kc[j] / t) - sky;
    }
    cr = next;
  }
}

template <class Scalar>
KOKKOS_INLINE_FUNCTION void poisson_first_candidates(Scalar* __restrict p, int* __restrict slow, Scalar* __restrict res,
                                                     int m, std::uint64_t seed, std::uint64_t image,
                                                     std::uint64_t pixel0, double t, double threshold, Scalar sky) {
  double const safe_mean = threshold;
  int retry[64];
  int normal_count = 0;
  for (int i = 0; i < m; ++i) {
    double const vt = double(p[i] + sky) * t;
    normal_count += ((vt >= threshold) & (vt <= 4.5e15)) ? 1 : 0;
  }
  if (normal_count > 0)
    poisson_candidate_loop<true>(p, slow, retry, res, m, seed, image, pixel0, t, threshold, sky);
  else
    poisson_candidate_loop<false>(p, slow, retry, res, m, seed, image, pixel0, t, threshold, sky);
  // The PTRS pixels whose first candidate the squeeze did not accept (~30%),
  // compacted: the full test of that candidate, and if it surely rejects,
  // the second candidate (the stream's 3rd and 4th uniforms).
  int idx[64];
  double mus[64];
  int c = 0;
  for (int i = 0; i < m; ++i) {
    idx[c] = i;
    mus[c] = double(p[i] + sky) * t;
    c += retry[i];
  }
  double k2[64];
  int ok[64], both_rejected[64];
  for (int j = 0; j < c; ++j) {
    random::Stream r(random::stream_key(seed, random::purpose_poisson, image, pixel0 + idx[j]));
    double const u1 = r.uniform<double>(), u2 = r.uniform<double>();
    double const u3 = r.uniform<double>(), u4 = r.uniform<double>();
    double k1, k;
    bool accepted1, rejected1, accepted2, rejected2;
    ptrs_candidate(mus[j], u1, u2, safe_mean, k1, accepted1, rejected1);
    ptrs_candidate(mus[j], u3, u4, safe_mean, k, accepted2, rejected2);
    ok[j] = (accepted1 | (rejected1 & accepted2)) ? 1 : 0;
    both_rejected[j] = (rejected1 & rejected2) ? 1 : 0;
    k2[j] = accepted1 ? k1 : k;
  }
  int rest[64];
  int cr = 0;
  for (int j = 0; j < c; ++j) {
    rest[cr] = idx[j];
    cr += both_rejected[j];
    if (!ok[j]) continue;
    slow[idx[j]] = 0;
    res[idx[j]] = Scalar(k2[j] / t) - sky;
  }
  if (cr > 0) poisson_later_candidates(p, slow, res, rest, cr, seed, image, pixel0, t, safe_mean, sky);
}
}  // namespace detail

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
  Scalar const sky = model.sky;
  int const nx = s.nx;
  if constexpr (std::is_same<typename ExecutionSpace::memory_space, Kokkos::HostSpace>::value) {
    if (images.stride(View::rank - 1) == 1) {
      // Host: the same draws as below, vectorised.  Pass 1 (branch-free)
      // finishes the pixels whose draw needs only the stream's first two
      // uniforms (normal approximation, or a PTRS candidate accepted by the
      // squeeze); pass 2 redraws the others (mean < 10, ~14% of PTRS draws)
      // from the start of their streams with Stream::poisson.
      int const ny = s.ny;
      Kokkos::parallel_for(
          "lensing::noise::poisson",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(s.n) * ny),
          KOKKOS_LAMBDA(long row) {
            int const b = int(row / ny), iy = int(row % ny);
            Scalar* __restrict const p = &detail::at(images, b, iy, 0);
            constexpr int cap = 64;
            int slow[cap];
            Scalar res[cap];
            for (int i0 = 0; i0 < nx; i0 += cap) {
              int const m = nx - i0 < cap ? nx - i0 : cap;
              detail::poisson_first_candidates(p + i0, slow, res, m, seed, first_image + b, std::uint64_t(iy) * nx + i0,
                                               t, threshold, sky);
              for (int i = 0; i < m; ++i) {
                if (!slow[i]) {
                  p[i0 + i] = res[i];
                  continue;
                }
                random::Stream r(random::stream_key(seed, random::purpose_poisson, first_image + b,
                                                    std::uint64_t(iy) * nx + (i0 + i)));
                double const mu = math::fmin(math::fmax(double(p[i0 + i] + sky), 0.0) * t, 4.5e15);
                double const n = mu < threshold
                                     ? r.poisson(mu)
                                     : math::fmax(0.0, math::floor(mu + math::sqrt(mu) * r.normal<double>() + 0.5));
                p[i0 + i] = Scalar(n / t) - sky;
              }
            }
          });
      return;
    }
  }
  detail::for_each_value(
      "lensing::noise::poisson", space, images, KOKKOS_LAMBDA(int b, int iy, int ix, Scalar& v) {
        random::Stream r(
            random::stream_key(seed, random::purpose_poisson, first_image + b, std::uint64_t(iy) * nx + ix));
        // Expected counts, clamped to [0, 2^52] (finite for any finite v * t).
        double const mu = math::fmin(math::fmax(double(v + sky), 0.0) * t, 4.5e15);
        double n;
        if (mu < threshold) {
          n = r.poisson(mu);
        } else {
          n = math::fmax(0.0, math::floor(mu + math::sqrt(mu) * r.normal<double>() + 0.5));
        }
        v = Scalar(n / t) - sky;
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
