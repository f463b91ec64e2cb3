#ifndef LENSING_CORE_RANDOM_HPP
#define LENSING_CORE_RANDOM_HPP

/// \file
/// Host random numbers for the samplers, multi-start optimisation and the
/// validation tests: xoshiro256** (Blackman & Vigna 2018) seeded through
/// splitmix64, with our own uniform and normal transforms so that draws are
/// bit-identical on every platform and standard library
/// (std::normal_distribution is implementation-defined).
///
/// Each chain c of a run with seed s uses Rng(s, c): independent streams
/// whatever the number of threads, so results never depend on the thread count.

#include <cmath>
#include <cstdint>

namespace lensing {

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
