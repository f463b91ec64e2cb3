#ifndef LENSING_CORE_RANDOM_HPP
#define LENSING_CORE_RANDOM_HPP

/// \file
/// lensing's one family of random numbers, for kernels and for the host:
/// counter-based streams named by a key, with one key derivation, one set of
/// transforms (uniform, normal, Poisson, bounded integer) and documented
/// stream splitting.  Every random number the library draws is a function of
/// (seed, purpose, a, b) and of its position in that stream, never of which
/// thread draws it, so results are bit-identical for a seed whatever the
/// backend's thread count (Serial, OpenMP at any number of threads; CUDA
/// draws the same bits and uniforms; normals equal up to a few ulps where
/// the device compiler contracts the log and cos polynomials into FMAs).
///
/// **Keys.**  `stream_key(seed, purpose, a, b)` hashes its four words by a
/// chain of splitmix64 finalisers (Steele, Lea & Flood 2014, "Fast splittable
/// pseudorandom number generators"), so nearby indices give unrelated keys.
/// `purpose` (enum Purpose) names the use, so that two uses sharing a seed
/// (the Gaussian noise and the cosmic rays of an image, a layer's weights and
/// its dropout masks) never share a stream; `a` and `b` are the indices the
/// purpose documents (below).  A key is also a good seed: a sub-computation
/// that needs its own seed (problem b of sample_batch, layer i of a
/// Sequential) is given `stream_key(seed, purpose, i)` and keys its own
/// streams with it.
///
/// **Stream splitting rules** (purpose: a, b):
///  - simulator, one stream per image and element, drawn in kernels:
///    purpose_gaussian, purpose_poisson, purpose_read, purpose_hot_dead:
///    a = global image index, b = pixel index (iy * nx + ix);
///    purpose_bias: a = image; purpose_cosmic_count, purpose_mask_count:
///    a = image; purpose_cosmic_track, purpose_mask_shape: a = image,
///    b = track / mask number; purpose_prior: a = image, b = parameter number;
///    purpose_galaxy: a = galaxy index.
///  - samplers and fits (host Rng, one long stream per chain):
///    purpose_chain: a = chain (HMC/NUTS, the Langevin samplers' host part);
///    purpose_langevin: a = step, b = chain * dimension + coordinate
///    (annealed Langevin's kernel noise; the predictor-corrector sampler
///    uses a = 2^62 + its step number, sample/predictor_corrector.hpp); purpose_batch_problem: a = problem
///    (a child seed: problem b of sample_batch runs with that seed);
///    purpose_multi_start: a = start; purpose_variational: a = 0 for the
///    ELBO-gradient draws of the fit, 1 for the ELBO estimate at the result;
///    purpose_variational_draws: a = the caller's stream number.
///  - validation: purpose_tarp: a = 0; purpose_pqmass: a = realisation.
///  - networks: purpose_weight_init: a = parameter index (within one
///    initialize call of one parameter block); purpose_layer_seed: a = child
///    number (a child seed: sub-layer i of a Sequential, Concat, Residual);
///    purpose_dropout: a = forward call number, b = element index;
///    purpose_latent_noise: a = draw number, b = sample * latent + j (VAE ε);
///    purpose_epoch_shuffle: a = epoch; purpose_test_input: a = 0 (random
///    test tensors of the gradient checks).
///  - multi-band simulation: purpose_band_seed: a = band index (the seed of
///    band b's noise streams, simulate/multiband.hpp's band_noise_seed);
///  - training data: purpose_augment: a = global image index (the random
///    dihedral augmentation of simulate/data_source.hpp).
///  - purpose_host: a = the stream number of `Rng(seed, stream)`, for callers
///    (tests, examples, user code) without a purpose of their own.
/// Thread-count independence follows: each key names an element of the
/// problem (an image, a pixel, a chain, an epoch), not a worker, and each
/// stream is consumed by exactly one work item in a fixed order.
///
/// **Generator.**  A stream is SplitMix64 (Steele, Lea & Flood 2014) used as
/// a counter: draw n (n = 1, 2, ...) of the stream with key k is
/// mix64(k + n * 0x9E3779B97F4A7C15).  Why this one for both kernels and
/// host chains: it passes TestU01's BigCrush, its 64-bit state costs nothing
/// to set up from a key (per-pixel streams draw only a few numbers, where
/// seeding a 256-bit xoshiro state would take four more mixes) and costs
/// one add and two multiplies per draw, with no loop-carried dependency but
/// the add, so host pixel loops vectorise; the xorshift64* generator used
/// before fails binary-rank and linear-complexity tests in its low bits
/// (Vigna 2016).  Long chains are fine: each stream walks the full 2^64
/// cycle from a pseudo-random start, and n streams of L draws overlap with
/// probability below n^2 L / 2^64 (1000 chains of 10^9 draws: 5e-5, and an
/// overlap would only repeat a stretch, not correlate the chains); a chain of
/// 10^9 draws uses 2^-34 of the period.
///
/// **Transforms** are ours, not a library's, so draws are the same function
/// of the key on every platform, standard library and Kokkos version
/// (std::normal_distribution is implementation-defined); the normal's log
/// and cos are polynomial (no libm call) so that a host loop of per-pixel
/// streams vectorises: with AVX-512 a Gaussian-noise pass costs a few
/// ns/pixel in float on one core instead of 25 ns with libm's logf/cosf.
///
/// Why not a `Kokkos::Random_XorShift64_Pool`: a pool hands each *thread* a
/// state, so which numbers pixel i receives would depend on the scheduling
/// and on the thread count.

#include <Kokkos_Macros.hpp>
#include <lensing/core/math.hpp>

#include <cstdint>
#include <cstring>

namespace lensing {
namespace random {

//----------------------------------------------------------------------------
// Hashing of stream keys.

/// splitmix64 finaliser: a bijective 64-bit mixer with full avalanche.
KOKKOS_FORCEINLINE_FUNCTION constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// Key of stream (seed, purpose, a, b): a chain of mixes, so that nearby
/// indices give unrelated keys (the golden-ratio increments keep zeros apart).
/// See the file comment for what a and b mean for each purpose.
KOKKOS_FORCEINLINE_FUNCTION constexpr std::uint64_t stream_key(std::uint64_t seed, std::uint64_t purpose,
                                                               std::uint64_t a = 0, std::uint64_t b = 0) {
  std::uint64_t h = mix64(seed + 0x9E3779B97F4A7C15ULL);
  h = mix64(h ^ (purpose + 0x3C6EF372FE94F82AULL));
  h = mix64(h ^ (a + 0xDAA66D2C7DDF743FULL));
  return mix64(h ^ (b + 0x78DDE6E5FD29F054ULL));
}

/// Purposes: the second word of a stream key, one per use of random numbers
/// in the library, so that uses sharing a seed never share a stream.  The
/// indices a, b of each are listed in the file comment.  Values are part of
/// the reproducibility contract: never renumber, only append.
enum Purpose : std::uint64_t {
  purpose_host = 0,  ///< Rng(seed, stream): callers without a purpose of their own
  // Simulator (noise, detector artefacts, training-set draws).
  purpose_gaussian = 1,
  purpose_poisson = 2,
  purpose_read = 3,
  purpose_bias = 4,
  purpose_cosmic_count = 5,
  purpose_cosmic_track = 6,
  purpose_hot_dead = 7,
  purpose_mask_count = 8,
  purpose_mask_shape = 9,
  purpose_prior = 10,
  purpose_galaxy = 11,
  // Samplers, fits and validation.
  purpose_chain = 12,
  purpose_langevin = 13,
  purpose_batch_problem = 14,
  purpose_multi_start = 15,
  purpose_variational = 16,
  purpose_variational_draws = 17,
  purpose_tarp = 18,
  purpose_pqmass = 19,
  // Networks.
  purpose_weight_init = 20,
  purpose_layer_seed = 21,
  purpose_dropout = 22,
  purpose_latent_noise = 23,
  purpose_epoch_shuffle = 24,
  purpose_test_input = 25,
  purpose_augment = 26,   ///< training-data augmentation (simulate/data_source.hpp): a = global image index
  purpose_band_seed = 27  ///< per-band noise seeds of a multi-band simulation: a = band index
};

//----------------------------------------------------------------------------
// The stream.

/// A random stream built from a 64-bit key, in a kernel or on the host:
/// `Stream s(stream_key(seed, purpose, a, b));`.  Draw n of the stream is
/// mix64(key + n * golden) (SplitMix64 as a counter; see the file comment).
///
/// uniform<Scalar>() is in the open interval (0, 1) (safe for log): the odd
/// multiples of 2^-53 for double (52 random bits) and of 2^-24 for float (23
/// bits), every one exactly representable, so 0 and 1 never occur.
/// normal<Scalar>() is a standard normal by the Box-Muller transform (Box &
/// Muller 1958; the cos branch, two uniforms per normal), whose tail is cut at
/// |z| = sqrt(-2 log 2^-53) = 8.57 in double (float: sqrt(-2 log 2^-24) =
/// 5.77).  Trivially copyable; no allocation.
class Stream {
 public:
  KOKKOS_INLINE_FUNCTION explicit Stream(std::uint64_t key) : m_counter(key) {}

  /// Next 64 random bits (SplitMix64: the counter advances by the golden
  /// ratio 2^64 / phi, odd, so it visits every 64-bit value once per cycle).
  KOKKOS_INLINE_FUNCTION std::uint64_t bits() {
    m_counter += 0x9E3779B97F4A7C15ULL;
    return mix64(m_counter);
  }

  /// Uniform in (0, 1).
  template <class Scalar>
  KOKKOS_INLINE_FUNCTION Scalar uniform() {
    std::uint64_t const u = bits();
    if constexpr (sizeof(Scalar) <= 4) {
      return (Scalar(u >> 41) + Scalar(0.5)) * Scalar(1.1920928955078125e-07);  // (k + 1/2) 2^-23, k < 2^23
    } else {
      return (Scalar(u >> 12) + Scalar(0.5)) * Scalar(2.220446049250313e-16);  // (k + 1/2) 2^-52, k < 2^52
    }
  }

  /// Uniform in (lo, hi).
  template <class Scalar>
  KOKKOS_INLINE_FUNCTION Scalar uniform(Scalar lo, Scalar hi) {
    return lo + (hi - lo) * uniform<Scalar>();
  }

  /// Standard normal.
  template <class Scalar>
  KOKKOS_INLINE_FUNCTION Scalar normal() {
    Scalar const u1 = uniform<Scalar>(), u2 = uniform<Scalar>();
    return normal_from(u1, u2);
  }

  /// The standard normal of normal() from its two uniforms u1, u2 in (0, 1)
  /// (Box-Muller), branch-free.
  template <class Scalar>
  KOKKOS_INLINE_FUNCTION static Scalar normal_from(Scalar u1, Scalar u2) {
    return math::sqrt(Scalar(-2) * log_unit(u1)) * cos_two_pi(u2);
  }

  /// floor(x) for finite x, exact: below 2^52 in magnitude, x rounded to an
  /// integer by adding and subtracting 2^52 (round to nearest), minus 1 where
  /// that rounded up; from 2^52 up every double is an integer.  Branch-free
  /// and vectorisable where a libm floor call in a host loop is not.
  KOKKOS_INLINE_FUNCTION static double floor_exact(double x) {
    double const c = x < 0 ? -4503599627370496.0 : 4503599627370496.0;  // +-2^52
    double const r = (x + c) - c;
    double const f = r - (r > x ? 1.0 : 0.0);
    return math::fabs(x) < 4503599627370496.0 ? f : x;
  }

  /// log k! for an integer k >= 0: lgamma below 10, else Stirling's series
  /// to the 1/(1260 (k+1)^5) term (truncation error < 1/(1680 (k+1)^7) <
  /// 1e-10), several times cheaper than lgamma.
  KOKKOS_INLINE_FUNCTION static double log_factorial(double k) {
    return k < 10 ? math::lgamma(k + 1) : log_factorial_stirling(k);
  }
  /// The Stirling branch of log_factorial (k >= 10), branch-free.
  KOKKOS_INLINE_FUNCTION static double log_factorial_stirling(double k) {
    double const n = k + 1, r = 1 / n, r2 = r * r;
    return (n - 0.5) * math::log(n) - n + 0.91893853320467274178 +
           r * (1.0 / 12 - r2 * (1.0 / 360 - r2 * (1.0 / 1260)));
  }

  /// One candidate of poisson()'s PTRS loop (mean >= 10) from its two
  /// uniforms u, v in (0, 1): sets k and returns whether the squeeze accepts
  /// it (branch-free, so that host pixel loops vectorise the ~86% of draws
  /// accepted at the first candidate).
  KOKKOS_INLINE_FUNCTION static bool ptrs_squeeze(double mean, double u, double v, double& k) {
    return ptrs_squeeze_b(mean, 0.931 + 2.53 * math::sqrt(mean), u, v, k);
  }
  /// ptrs_squeeze with b = 0.931 + 2.53 sqrt(mean) given (callers that
  /// also need b compute its square root once).  The squeeze's bound
  /// v <= v_r = 0.9277 - 3.6224 / (b - 2) is tested without its division, as
  /// (0.9277 - v)(b - 2) >= 3.6224 (b - 2 > 6.9 for mean >= 10): the two
  /// forms can disagree only within an ulp of the bound, where the full test
  /// accepts too (the squeeze region lies inside the acceptance region).
  KOKKOS_INLINE_FUNCTION static bool ptrs_squeeze_b(double mean, double b, double u, double v, double& k) {
    double const a = -0.059 + 0.02483 * b;
    double const U = u - 0.5;
    double const us = 0.5 - math::fabs(U);
    k = floor_exact((2 * a / us + b) * U + mean + 0.43);
    return (us >= 0.07) & ((0.9277 - v) * (b - 2) >= 3.6224);  // &: no conditional comparison, so it if-converts
  }

  /// The left side of PTRS's full acceptance test, log(v alpha / (a / us^2 + b))
  /// with 1 / alpha = 1.1239 + 1.1328 / (b - 3.4), as one logarithm of one
  /// quotient: log(v us^2 (1.1239 (b - 3.4) + 1.1328) / ((b - 3.4)(a + b us^2)))
  /// (three logarithms and three divisions in the textbook form; the two
  /// agree to a few ulp).  b = 0.931 + 2.53 sqrt(mean), a = -0.059 + 0.02483 b,
  /// us = 0.5 - |u - 0.5|.
  KOKKOS_INLINE_FUNCTION static double ptrs_log_ratio(double b, double us, double v) {
    double const a = -0.059 + 0.02483 * b, us2 = us * us, b3 = b - 3.4;
    return math::log((v * us2 * (1.1239 * b3 + 1.1328)) / (b3 * (a + b * us2)));
  }

  /// log(u) for u in (0, 1] and normal (not subnormal) u: u = m 2^e with
  /// m in [sqrt(1/2), sqrt(2)) from the bits, log m = 2 atanh(t),
  /// t = (m - 1)/(m + 1), |t| <= 0.172, by its series to t^23 (truncation
  /// < 1e-17).  Branch-free and vectorisable, unlike a libm call (~5 ns).
  template <class Scalar>
  KOKKOS_INLINE_FUNCTION static Scalar log_unit(Scalar u) {
    Scalar m;
    int e;
    if constexpr (sizeof(Scalar) == 4) {
      std::uint32_t bits;
      std::memcpy(&bits, &u, 4);
      e = int((bits >> 23) & 0xffu) - 127;
      bits = (bits & 0x7fffffu) | 0x3f800000u;
      std::memcpy(&m, &bits, 4);
    } else {
      std::uint64_t bits;
      std::memcpy(&bits, &u, 8);
      e = int((bits >> 52) & 0x7ffu) - 1023;
      bits = (bits & 0xfffffffffffffULL) | 0x3ff0000000000000ULL;
      std::memcpy(&m, &bits, 8);
    }
    bool const big = m > Scalar(1.4142135623730951);
    m = big ? Scalar(0.5) * m : m;
    e = big ? e + 1 : e;
    Scalar const t = (m - Scalar(1)) / (m + Scalar(1)), t2 = t * t;
    Scalar p = Scalar(1) / Scalar(23);
    p = p * t2 + Scalar(1) / Scalar(21);
    p = p * t2 + Scalar(1) / Scalar(19);
    p = p * t2 + Scalar(1) / Scalar(17);
    p = p * t2 + Scalar(1) / Scalar(15);
    p = p * t2 + Scalar(1) / Scalar(13);
    p = p * t2 + Scalar(1) / Scalar(11);
    p = p * t2 + Scalar(1) / Scalar(9);
    p = p * t2 + Scalar(1) / Scalar(7);
    p = p * t2 + Scalar(1) / Scalar(5);
    p = p * t2 + Scalar(1) / Scalar(3);
    p = p * t2 + Scalar(1);
    return Scalar(e) * Scalar(0.69314718055994530942) + Scalar(2) * t * p;
  }

  /// cos(2 pi u) for u in [0, 1] by symmetry reduction to [0, pi/2] and the
  /// Taylor series to x^20 (truncation error < 3e-17): branch-free and
  /// vectorisable, where a libm cos call in a host loop costs ~15 ns.
  template <class Scalar>
  KOKKOS_INLINE_FUNCTION static Scalar cos_two_pi(Scalar u) {
    Scalar v = u < Scalar(0.5) ? u : Scalar(1) - u;  // cos(2 pi u) = cos(2 pi v), v in [0, 0.5]
    Scalar const sign = v < Scalar(0.25) ? Scalar(1) : Scalar(-1);
    v = v < Scalar(0.25) ? v : Scalar(0.5) - v;  // cos(2 pi v) = -cos(2 pi (0.5 - v))
    Scalar const x = Scalar(2) * math::pi<Scalar> * v, x2 = x * x;
    // Horner form of sum_k (-1)^k x^(2k) / (2k)!, k = 0..10.
    Scalar c = Scalar(4.1103176233121648e-19);
    c = c * x2 - Scalar(1.5619206968586225e-16);
    c = c * x2 + Scalar(4.7794773323873853e-14);
    c = c * x2 - Scalar(1.1470745597729725e-11);
    c = c * x2 + Scalar(2.0876756987868099e-09);
    c = c * x2 - Scalar(2.7557319223985891e-07);
    c = c * x2 + Scalar(2.4801587301587302e-05);
    c = c * x2 - Scalar(1.3888888888888889e-03);
    c = c * x2 + Scalar(4.1666666666666667e-02);
    c = c * x2 - Scalar(0.5);
    c = c * x2 + Scalar(1);
    return sign * c;
  }

  /// Integer uniform in [0, n) (n >= 1), by 64x32-bit multiply-shift
  /// (bias below 2^-32 for n < 2^32).
  KOKKOS_INLINE_FUNCTION std::uint32_t index(std::uint32_t n) {
    return static_cast<std::uint32_t>(((bits() >> 32) * std::uint64_t(n)) >> 32);
  }

  /// Poisson(mean) count, exact.  mean < 10: sequential inversion of the CDF
  /// (expected mean + 1 uniforms); mean >= 10: transformed rejection with
  /// squeeze, PTRS (Hoermann 1993, "The transformed rejection method for
  /// generating Poisson random variables", Insurance: Math. Econ. 12, 39),
  /// about 1.2 uniform pairs per draw.  Computed in double.  Requires
  /// 0 <= mean < 2^52 (callers check); mean = 0 gives 0.
  KOKKOS_INLINE_FUNCTION double poisson(double mean) {
    if (!(mean > 0)) return 0;
    if (mean < 10) {
      double p = math::exp(-mean), cdf = p;
      double const u = uniform<double>();
      double k = 0;
      while (u > cdf && k < 1000) {
        k += 1;
        p *= mean / k;
        cdf += p;
      }
      return k;
    }
    // The squeeze accepts ~86% of the first candidates; the logarithms are
    // only needed by the full test, so they are computed there.
    double const b = 0.931 + 2.53 * math::sqrt(mean);
    for (;;) {
      double const u = uniform<double>();
      double const V = uniform<double>();
      double k;
      if (ptrs_squeeze_b(mean, b, u, V, k)) return k;
      double const us = 0.5 - math::fabs(u - 0.5);
      if (k < 0 || (us < 0.013 && V > us)) continue;
      if (ptrs_log_ratio(b, us, V) <= -mean + k * math::log(mean) - log_factorial(k)) return k;
    }
  }

 private:
  std::uint64_t m_counter;
};

}  // namespace random

/// The host face of the family: a random::Stream with a double-valued API for
/// the samplers, multi-start optimisation, variational fits and validation.
/// `Rng(seed, purpose, a, b)` is the stream random::stream_key(seed, purpose,
/// a, b), so its draws are the same numbers as those of a kernel's
/// `random::Stream` with that key; `Rng(seed, stream)` is the purpose_host
/// stream `stream` (tests, examples, user code).  Each chain c of a run with
/// seed s uses Rng(s, random::purpose_chain, c): independent streams whatever
/// the number of threads, so results never depend on the thread count.
class Rng : public random::Stream {
 public:
  /// Stream `stream` of seed `seed` with purpose_host.
  KOKKOS_INLINE_FUNCTION explicit Rng(std::uint64_t seed = 0, std::uint64_t stream = 0)
      : Stream(random::stream_key(seed, random::purpose_host, stream)) {}
  /// The stream (seed, purpose, a, b) of the family (see the file comment).
  KOKKOS_INLINE_FUNCTION Rng(std::uint64_t seed, random::Purpose purpose, std::uint64_t a = 0, std::uint64_t b = 0)
      : Stream(random::stream_key(seed, purpose, a, b)) {}

  using Stream::normal;
  using Stream::uniform;

  /// Next 64 random bits.
  KOKKOS_INLINE_FUNCTION std::uint64_t next() { return bits(); }
  /// Uniform in (0, 1) (uniform<double>(): never 0 or 1, safe for log).
  KOKKOS_INLINE_FUNCTION double uniform() { return uniform<double>(); }
  /// Same as uniform() (kept for callers that spell out the open interval).
  KOKKOS_INLINE_FUNCTION double uniform_open() { return uniform<double>(); }
  /// Standard normal (normal<double>(): Box-Muller, two uniforms per draw).
  KOKKOS_INLINE_FUNCTION double normal() { return normal<double>(); }
};

}  // namespace lensing

#endif  // LENSING_CORE_RANDOM_HPP
