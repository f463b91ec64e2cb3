#ifndef LENSING_CORE_RANDOM_HPP
#define LENSING_CORE_RANDOM_HPP

/// \file
/// Counter-based random streams for kernels: every random number lensing's
/// simulator draws on a device depends only on (seed, purpose, image index,
/// element index), never on which thread draws it, so a batch is bit-identical
/// for a seed whatever the backend's thread count (Serial, OpenMP at any
/// number of threads; CUDA draws the same streams, values equal up to the
/// last-ulp differences of the device math library).
///
/// Why not a `Kokkos::Random_XorShift64_Pool`: a pool hands each *thread* a
/// state, so which numbers pixel i receives depends on the scheduling and on
/// the thread count.  Instead a stream's key is hashed with the splitmix64
/// finaliser (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number
/// generators") into the 64-bit seed of a `Kokkos::Random_XorShift64` (the
/// xorshift64* generator the pool itself uses; Vigna 2016), (its step written out here) constructed on
/// the stack inside the kernel.  The uniform and normal transforms are ours
/// (not Kokkos's drand()/normal()) so that draws are the same function of the
/// key in every Kokkos version, and the normal's log and cos are polynomial
/// (no libm call), so that a host loop of per-pixel streams vectorises: with
/// AVX-512 a Gaussian-noise pass costs 2.5 ns/pixel in float on one core
/// instead of 25 ns with libm's logf/cosf (measured on this machine).

#include <Kokkos_Macros.hpp>
#include <lensing/core/math.hpp>

#include <cmath>
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

/// Key of stream (seed, a, b, c): a chain of mixes, so that nearby indices
/// give unrelated keys (the golden-ratio increments keep zeros apart).
KOKKOS_FORCEINLINE_FUNCTION constexpr std::uint64_t stream_key(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0,
                                                               std::uint64_t c = 0) {
  std::uint64_t h = mix64(seed + 0x9E3779B97F4A7C15ULL);
  h = mix64(h ^ (a + 0x3C6EF372FE94F82AULL));
  h = mix64(h ^ (b + 0xDAA66D2C7DDF743FULL));
  return mix64(h ^ (c + 0x78DDE6E5FD29F054ULL));
}

/// Purposes: distinct third-level keys so that, e.g., the Gaussian noise and
/// the cosmic rays of the same image and seed are independent.
enum Purpose : std::uint64_t {
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
  purpose_galaxy = 11
};

//----------------------------------------------------------------------------
// The stream.

/// A short random stream built inside a kernel from a 64-bit key:
/// `Stream s(stream_key(seed, purpose, image, pixel));`.
///
/// uniform<Scalar>() is in the open interval (0, 1) (safe for log), with 53
/// random bits for double and 24 for float; normal<Scalar>() is a standard
/// normal by the Box-Muller transform (Box & Muller 1958), whose float tail is
/// cut at |z| = sqrt(-2 log 2^-25) = 5.9 (double: 8.6).  Trivially copyable; no allocation.
class Stream {
 public:
  KOKKOS_INLINE_FUNCTION explicit Stream(std::uint64_t key) : m_state(mix64(key) | 1ULL) {}

  /// Next 64 random bits (xorshift64*).
  KOKKOS_INLINE_FUNCTION std::uint64_t bits() {
    // The xorshift64* step of Kokkos::Random_XorShift64::urand64 (Kokkos 3.4),
    // written out so that this header needs no Kokkos_Core.hpp.
    m_state ^= m_state >> 12;
    m_state ^= m_state << 25;
    m_state ^= m_state >> 27;
    return m_state * 2685821657736338717ULL - 1;
  }

  /// Uniform in (0, 1).
  template <class Scalar>
  KOKKOS_INLINE_FUNCTION Scalar uniform() {
    std::uint64_t const u = bits();
    if constexpr (sizeof(Scalar) <= 4) {
      return (Scalar(u >> 40) + Scalar(0.5)) * Scalar(5.9604644775390625e-08);  // 2^-24
    } else {
      return (Scalar(u >> 11) + Scalar(0.5)) * Scalar(1.1102230246251565e-16);  // 2^-53
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
    double const b = 0.931 + 2.53 * math::sqrt(mean);
    double const a = -0.059 + 0.02483 * b;
    double const vr = 0.9277 - 3.6224 / (b - 2);
    double const U = u - 0.5;
    double const us = 0.5 - math::fabs(U);
    k = floor_exact((2 * a / us + b) * U + mean + 0.43);
    return (us >= 0.07) & (v <= vr);  // & rather than &&: no conditional comparison, so it if-converts
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
    double const a = -0.059 + 0.02483 * b;
    for (;;) {
      double const u = uniform<double>();
      double const V = uniform<double>();
      double k;
      if (ptrs_squeeze(mean, u, V, k)) return k;
      double const us = 0.5 - math::fabs(u - 0.5);
      if (k < 0 || (us < 0.013 && V > us)) continue;
      double const log_alpha_inv = math::log(1.1239 + 1.1328 / (b - 3.4));
      if (math::log(V) + log_alpha_inv - math::log(a / (us * us) + b) <= -mean + k * math::log(mean) - log_factorial(k))
        return k;
    }
  }

 private:
  std::uint64_t m_state;
};

}  // namespace random

/// xoshiro256** generator with uniform(0,1) and standard normal draws.
class Rng {
 public:
  /// Stream `stream` of seed `seed` (e.g. stream = chain index).
  explicit Rng(std::uint64_t seed = 0, std::uint64_t stream = 0) {
    std::uint64_t x = seed ^ (0x9E3779B97F4A7C15ULL * (stream + 1));
    for (auto& si : s_)
      si = splitmix64(x);
  }

  /// Next 64 random bits.
  std::uint64_t next() {
    std::uint64_t const result = rotl(s_[1] * 5, 7) * 9;
    std::uint64_t const t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }

  /// Uniform in (0, 1): never 0, safe for log().
  double uniform_open() { return (double(next() >> 11) + 0.5) * 0x1.0p-53; }

  /// Standard normal (Marsaglia polar method).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2 * uniform() - 1;
      v = 2 * uniform() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s == 0);
    double const f = std::sqrt(-2 * std::log(s) / s);
    spare_ = v * f;
    has_spare_ = true;
    return u * f;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace lensing

#endif  // LENSING_CORE_RANDOM_HPP
