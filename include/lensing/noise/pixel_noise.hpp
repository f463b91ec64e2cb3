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
/// 2^52.  Cost (float, 64x64 images, one core of this machine): ~12 ns/pixel
/// at mu ~ 130 (PTRS; the HST-like preset's sky), ~3 ns/pixel in the normal
/// regime; lower normal_threshold (>= 10) to trade exactness for speed.
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
/// Most pixels one work item of the host Poisson pass handles (a multiple of
/// 64 and of 8; ~30 KB of stack arrays in pass 1).
constexpr int poisson_chunk = 512;

/// PTRS's full test (Stream::poisson's, mean mu >= 10) of a candidate k that
/// the squeeze did not accept, branch-free: whether Stream::poisson surely
/// accepts it (k >= 10: Stirling's log k! and vector logs, so that a decision
/// can differ from Stream::poisson's only where the two sides agree to a few
/// ulp) or surely rejects it (k < 0, the us < 0.013 cut, or the test);
/// neither for 0 <= k < 10 (lgamma), left to the scalar path.
/// b = 0.931 + 2.53 sqrt(mu), us = 0.5 - |u - 0.5|.
KOKKOS_INLINE_FUNCTION void ptrs_full_test(double mu, double b, double k, double us, double v, bool& accepted,
                                           bool& rejected) {
  bool const big_k = k >= 10;
  double const kk = big_k ? k : mu;  // keeps log k! finite on the other lanes
  bool const hard_reject = (k < 0) | ((us < 0.013) & (v > us));
  bool const full =
      random::Stream::ptrs_log_ratio(b, us, v) <= -mu + kk * math::log(mu) - random::Stream::log_factorial_stirling(kk);
  accepted = big_k & !hard_reject & full;
  rejected = hard_reject | (big_k & !full);
}

/// One PTRS candidate of Stream::poisson (mean mu >= 10) from its uniforms
/// u, v, branch-free: k, and whether Stream::poisson surely accepts it
/// (squeeze, or ptrs_full_test) or surely rejects it (ptrs_full_test).
KOKKOS_INLINE_FUNCTION void ptrs_candidate(double mu, double u, double v, double& k, bool& accepted, bool& rejected) {
  double const b = 0.931 + 2.53 * math::sqrt(mu);
  bool const squeezed = random::Stream::ptrs_squeeze_b(mu, b, u, v, k);
  bool full_accepted, full_rejected;
  ptrs_full_test(mu, b, k, 0.5 - math::fabs(u - 0.5), v, full_accepted, full_rejected);
  accepted = squeezed | full_accepted;
  rejected = !squeezed & full_rejected;
}

/// Host pass 1 of apply(PoissonNoise) on m <= poisson_chunk pixels p[0, m) of image
/// `image` (stream elements pixel0 + i), in rounds over compacted index
/// lists: (1) every pixel: the normal approximation (mu >= threshold) or the
/// first PTRS candidate's squeeze (~70% of the PTRS draws at the HST sky);
/// (2) the ~30% left: that candidate's full test (k, u, v and b kept from
/// round 1); (3) the ~10% it rejects: candidates 2, 3, ... by
/// poisson_later_candidates.  Results into res[i] (slow[i] = 0); slow[i] = 1
/// for the others (mean < 10 or out of range, a k < 10 past the squeeze, 16
/// candidates), which pass 2 draws with Stream::poisson.  The compacted
/// loops run over a multiple of 8 entries (padded with a copy of the last):
/// their scalar epilogues would call scalar logarithms.  Separate functions
/// so that GCC vectorises their loops (it does not when the body sits in the
/// Kokkos lambda).
// Round 1.  WithNormal = false when no pixel of the block reaches the
// threshold: the normal-approximation draw (a logarithm, a cosine
// polynomial and a square root in double per pixel) is then not computed
// (the block-level choice keeps the loop branch-free).
template <bool WithNormal, class Scalar>
KOKKOS_INLINE_FUNCTION void poisson_candidate_loop(Scalar const* __restrict p, int* __restrict slow,
                                                   int* __restrict retry, Scalar* __restrict res, double* __restrict kc,
                                                   double* __restrict uc, double* __restrict vc, double* __restrict bc,
                                                   int m, std::uint64_t seed, std::uint64_t image, std::uint64_t pixel0,
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
    double const b = 0.931 + 2.53 * math::sqrt(mu);
    double k;
    bool const squeezed = random::Stream::ptrs_squeeze_b(mu, b, u1, u2, k);
    // Without WithNormal, the lanes with mu >= threshold are out of range
    // (mu = safe_mean): slow, and redrawn in pass 2.
    bool const normal = WithNormal && mu >= threshold;
    slow[i] = (!in_range | (!normal & !((mu >= 10) & squeezed))) ? 1 : 0;
    retry[i] = (in_range & !normal & (mu >= 10) & !squeezed) ? 1 : 0;
    kc[i] = k;
    uc[i] = u1;
    vc[i] = u2;
    bc[i] = b;
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

// Round 3: pixels whose first candidate was surely rejected (~10% of the
// PTRS pixels at the HST sky): candidates first_cand, first_cand + 1, ...,
// compacted each round.  Candidate c uses the stream's draws 2c + 1 and
// 2c + 2, i.e. Stream(key + 2c golden)'s first two (Stream's counter
// contract).  Pixels left undecided (k < 10, or 16 candidates) stay slow.
// rest[0, cr): their indices (room for poisson_chunk).
template <class Scalar>
LENSING_NOISE_NOINLINE KOKKOS_INLINE_FUNCTION void poisson_later_candidates(
    Scalar const* __restrict p, int* __restrict slow, Scalar* __restrict res, int* __restrict rest, int cr,
    int first_cand, std::uint64_t seed, std::uint64_t image, std::uint64_t pixel0, double t, Scalar sky) {
  for (int cand = first_cand; cr > 0 && cand < 16; ++cand) {
    double kc[poisson_chunk];
    int acc[poisson_chunk], rej[poisson_chunk];
    int const padded = (cr + 7) & ~7;
    for (int j = cr; j < padded; ++j)
      rest[j] = rest[cr - 1];
    for (int j = 0; j < padded; ++j) {
      std::uint64_t const key = random::stream_key(seed, random::purpose_poisson, image, pixel0 + rest[j]);
      random::Stream r(key + std::uint64_t(2 * cand) * 0x9E3779B97F4A7C15ULL);
      double const u = r.uniform<double>(), v = r.uniform<double>();
      double k;
      bool a, rj;
      ptrs_candidate(double(p[rest[j]] + sky) * t, u, v, k, a, rj);
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
  constexpr int cap = poisson_chunk;
  int retry[cap];
  double kc[cap], uc[cap], vc[cap], bc[cap];
  // Round 1 in blocks of 64 pixels, each with or without the normal draw.
  for (int i0 = 0; i0 < m; i0 += 64) {
    int const mb = m - i0 < 64 ? m - i0 : 64;
    int normal_count = 0;
    for (int i = i0; i < i0 + mb; ++i) {
      double const vt = double(p[i] + sky) * t;
      normal_count += ((vt >= threshold) & (vt <= 4.5e15)) ? 1 : 0;
    }
    if (normal_count > 0)
      poisson_candidate_loop<true>(p + i0, slow + i0, retry + i0, res + i0, kc + i0, uc + i0, vc + i0, bc + i0, mb,
                                   seed, image, pixel0 + i0, t, threshold, sky);
    else
      poisson_candidate_loop<false>(p + i0, slow + i0, retry + i0, res + i0, kc + i0, uc + i0, vc + i0, bc + i0, mb,
                                    seed, image, pixel0 + i0, t, threshold, sky);
  }
  // Round 2: the PTRS pixels whose first candidate the squeeze did not
  // accept, compacted: that candidate's full test.
  int idx[cap];
  int c = 0;
  for (int i = 0; i < m; ++i) {
    idx[c] = i;
    c += retry[i];
  }
  if (c == 0) return;
  int const padded = (c + 7) & ~7;
  for (int j = c; j < padded; ++j)
    idx[j] = idx[c - 1];
  int acc[cap], rej[cap];
  for (int j = 0; j < padded; ++j) {
    int const i = idx[j];
    bool a, rj;
    ptrs_full_test(double(p[i] + sky) * t, bc[i], kc[i], 0.5 - math::fabs(uc[i] - 0.5), vc[i], a, rj);
    acc[j] = a ? 1 : 0;
    rej[j] = rj ? 1 : 0;
  }
  int rest[cap];
  int cr = 0;
  for (int j = 0; j < c; ++j) {
    int const i = idx[j];
    rest[cr] = i;
    cr += rej[j];
    if (!acc[j]) continue;
    slow[i] = 0;
  }
  if (cr > 0) poisson_later_candidates(p, slow, res, rest, cr, 1, seed, image, pixel0, t, sky);
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
      // Work items: chunks of up to poisson_chunk consecutive pixels of one
      // image (one run of its pixels: the whole image when its rows are
      // contiguous, else one row), so that the compacted rounds of pass 1
      // gather their few pixels over a whole chunk.
      int const ny = s.ny;
      bool const flat = ny == 1 || images.stride(View::rank - 2) == std::size_t(nx);
      long const run = flat ? long(ny) * nx : long(nx);
      long const runs = flat ? 1 : ny;
      constexpr int cap = detail::poisson_chunk;
      long const chunks = (run + cap - 1) / cap;
      Kokkos::parallel_for(
          "lensing::noise::poisson",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(s.n) * runs * chunks),
          KOKKOS_LAMBDA(long item) {
            long const r = item / chunks, i0 = (item % chunks) * cap;
            int const b = int(r / runs), iy = int(r % runs);
            Scalar* __restrict const p = &detail::at(images, b, iy, 0) + i0;
            std::uint64_t const pixel0 = std::uint64_t(iy) * nx + std::uint64_t(i0);
            int const m = run - i0 < cap ? int(run - i0) : cap;
            int slow[cap];
            Scalar res[cap];
            detail::poisson_first_candidates(p, slow, res, m, seed, first_image + b, pixel0, t, threshold, sky);
            for (int i = 0; i < m; ++i) {
              if (!slow[i]) {
                p[i] = res[i];
                continue;
              }
              random::Stream rs(random::stream_key(seed, random::purpose_poisson, first_image + b, pixel0 + i));
              double const mu = math::fmin(math::fmax(double(p[i] + sky), 0.0) * t, 4.5e15);
              double const n = mu < threshold
                                   ? rs.poisson(mu)
                                   : math::fmax(0.0, math::floor(mu + math::sqrt(mu) * rs.normal<double>() + 0.5));
              p[i] = Scalar(n / t) - sky;
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
