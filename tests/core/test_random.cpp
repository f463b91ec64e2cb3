// The random family of core/random.hpp: the key derivation and generator
// pinned to values computed independently (a few lines of Python with
// arbitrary-precision integers, reproduced in the comment below); a kernel
// Stream and the host Rng with the same key give the same numbers; the
// uniform is in the open interval (0, 1) even at the extreme bit patterns;
// moments, bit balance and correlations between streams of different
// purposes, indices and seeds within error-model tolerances.
//
// Tolerances: every statistical check is at 5 standard errors of its
// statistic under the null hypothesis (the error model is written next to
// the check).  The draws are deterministic for the fixed seeds, so a check
// cannot flake; a generator or key derivation with a defect of that size fails.
#include <lensing/core/random.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

namespace lr = lensing::random;
namespace lt = lensing::test;

namespace {

constexpr std::uint64_t golden = 0x9E3779B97F4A7C15ULL;

// Inverse of mix64, to build keys whose first draw has chosen bits.
std::uint64_t unshift_xor(std::uint64_t y, int s) {
  std::uint64_t z = y;
  for (int k = s; k < 64; k += s)
    z = y ^ (z >> s);
  return z;
}
std::uint64_t inverse_odd(std::uint64_t a) {  // a^-1 mod 2^64 by Newton's iteration (bits double per step)
  std::uint64_t x = a;
  for (int i = 0; i < 6; ++i)
    x *= 2 - a * x;
  return x;
}
std::uint64_t unmix64(std::uint64_t z) {
  z = unshift_xor(z, 31);
  z *= inverse_odd(0x94D049BB133111EBULL);
  z = unshift_xor(z, 27);
  z *= inverse_odd(0xBF58476D1CE4E5B9ULL);
  return unshift_xor(z, 30);
}
// A key whose stream's first bits() is `target`.
std::uint64_t key_with_first_bits(std::uint64_t target) { return unmix64(target) - golden; }

struct Moments {
  double mean = 0, var = 0, m3 = 0, m4 = 0;  // mean, variance, E(x - mean)^3, E(x - mean)^4
};
Moments moments(std::vector<double> const& x) {
  Moments m;
  double const n = double(x.size());
  for (double v : x)
    m.mean += v / n;
  for (double v : x) {
    double const d = v - m.mean, d2 = d * d;
    m.var += d2 / n;
    m.m3 += d2 * d / n;
    m.m4 += d2 * d2 / n;
  }
  return m;
}
double correlation(std::vector<double> const& x, std::vector<double> const& y) {
  Moments const mx = moments(x), my = moments(y);
  double c = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    c += (x[i] - mx.mean) * (y[i] - my.mean);
  return c / double(x.size()) / std::sqrt(mx.var * my.var);
}

// Checks of n uniform(0, 1) draws.  Error model: the sample mean has standard
// error sqrt(1/12 / n); the sample variance sqrt((mu4 - sigma^4) / n) with
// mu4 = 1/80, sigma^4 = 1/144.
void check_uniform_moments(std::vector<double> const& u) {
  double const n = double(u.size());
  Moments const m = moments(u);
  CHECK(std::abs(m.mean - 0.5) < 5 * std::sqrt(1.0 / 12 / n));
  CHECK(std::abs(m.var - 1.0 / 12) < 5 * std::sqrt((1.0 / 80 - 1.0 / 144) / n));
  long outside = 0;
  for (double v : u)
    outside += !(v > 0 && v < 1);
  CHECK(outside == 0);
}
// Checks of n standard normal draws.  Error model: standard errors of the
// sample mean 1/sqrt(n), of the variance sqrt(2/n) (mu4 - 1 = 2), of the third
// central moment sqrt(15/n) (E z^6 = 15), of the fourth sqrt(96/n)
// (E z^8 - (E z^4)^2 = 105 - 9).
void check_normal_moments(std::vector<double> const& z) {
  double const n = double(z.size());
  Moments const m = moments(z);
  CHECK(std::abs(m.mean) < 5 / std::sqrt(n));
  CHECK(std::abs(m.var - 1) < 5 * std::sqrt(2 / n));
  CHECK(std::abs(m.m3) < 5 * std::sqrt(15 / n));
  CHECK(std::abs(m.m4 - 3) < 5 * std::sqrt(96 / n));
}

}  // namespace

TEST_CASE("random: stream keys and draws equal an independent reference") {
  // Reference (Python, integers mod 2^64):
  //   mix(z): z = (z ^ z>>30) * 0xBF58476D1CE4E5B9; z = (z ^ z>>27) * 0x94D049BB133111EB; z ^ z>>31
  //   key(s, p, a, b): h = mix(s + G); h = mix(h ^ (p + 0x3C6EF372FE94F82A));
  //                    h = mix(h ^ (a + 0xDAA66D2C7DDF743F)); mix(h ^ (b + 0x78DDE6E5FD29F054))
  //   draw n (n = 1, 2, ...) of key k: mix(k + n G),  G = 0x9E3779B97F4A7C15
  std::uint64_t const k = lr::stream_key(2024, lr::purpose_chain, 3);
  CHECK(k == 0x961969c4d2f4f998ULL);
  lr::Stream s(k);
  CHECK(s.bits() == 0x6cb3b407363070b4ULL);
  CHECK(s.bits() == 0x399bee4af96bbc2cULL);
  std::uint64_t const third = 0xeabca35039dde926ULL;
  CHECK(s.uniform<double>() == (double(third >> 12) + 0.5) * std::ldexp(1.0, -52));
  CHECK(lr::stream_key(0, lr::purpose_host) == 0xaaffdc6c8cf7420bULL);
  lensing::Rng r;  // Rng() is (seed 0, purpose_host, stream 0)
  CHECK(r.next() == 0xbc2b7f15ad019952ULL);
  CHECK(r.next() == 0xec1a181be729a5b3ULL);
}

TEST_CASE("random: uniform is in the open interval (0, 1) at the extreme bit patterns") {
  // The largest and smallest values: (2^23 - 1/2) 2^-23 = 1 - 2^-24 in float,
  // (2^52 - 1/2) 2^-52 = 1 - 2^-53 in double, and 2^-24, 2^-53 at the bottom.
  std::uint64_t const ones = key_with_first_bits(~0ULL), zeros = key_with_first_bits(0);
  CHECK(lr::Stream(ones).bits() == ~0ULL);
  CHECK(lr::Stream(zeros).bits() == 0);
  CHECK(lr::Stream(ones).uniform<float>() == 1.0f - std::ldexp(1.0f, -24));
  CHECK(lr::Stream(ones).uniform<double>() == 1.0 - std::ldexp(1.0, -53));
  CHECK(lr::Stream(zeros).uniform<float>() == std::ldexp(1.0f, -24));
  CHECK(lr::Stream(zeros).uniform<double>() == std::ldexp(1.0, -53));
  // The normal stays finite at both ends (log of the smallest uniform, cos of the largest).
  CHECK(std::isfinite(lr::Stream::normal_from(std::ldexp(1.0f, -24), 1.0f - std::ldexp(1.0f, -24))));
  CHECK(std::abs(lr::Stream::normal_from(std::ldexp(1.0, -53), 0.0)) < 8.6);
}

LENSING_TEST_CASE_TEMPLATE("random: a kernel Stream and the host Rng with the same key give the same numbers", Config,
                           lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  long const n = 2000;
  std::uint64_t const seed = 77;
  Kokkos::View<std::uint64_t*, Mem> bits("bits", n);
  Kokkos::View<S* [3], Mem> draws("draws", n);
  Kokkos::parallel_for(
      "test_random::kernel_streams", Kokkos::RangePolicy<Space>(space, 0, n), KOKKOS_LAMBDA(long i) {
        lr::Stream s(lr::stream_key(seed, lr::purpose_chain, std::uint64_t(i)));
        bits(i) = s.bits();
        draws(i, 0) = s.template uniform<S>();
        draws(i, 1) = s.template uniform<S>();
        draws(i, 2) = s.template normal<S>();
      });
  space.fence();
  auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), bits);
  auto hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), draws);
  long bit_mismatch = 0, uniform_mismatch = 0, normal_mismatch = 0;
  for (long i = 0; i < n; ++i) {
    lensing::Rng r(seed, lr::purpose_chain, std::uint64_t(i));
    bit_mismatch += r.next() != hb(i);
    uniform_mismatch += r.uniform<S>() != hd(i, 0);
    uniform_mismatch += r.uniform<S>() != hd(i, 1);
    S const z = r.normal<S>();
    // Host backends run the same operations in the same order (bit-equal); a
    // device compiler may contract the Horner steps of log and cos into FMAs,
    // a few ulps in all: 64 ulps of slack, scaled by |z|.
    normal_mismatch += !(std::abs(double(z) - double(hd(i, 2))) <=
                         64 * double(std::numeric_limits<S>::epsilon()) * (1 + std::abs(double(z))));
  }
  CHECK(bit_mismatch == 0);
  CHECK(uniform_mismatch == 0);
  CHECK(normal_mismatch == 0);
  // The double API is uniform<double>() and normal<double>() of the same stream.
  lensing::Rng a(seed, lr::purpose_chain, 5), b(seed, lr::purpose_chain, 5);
  CHECK(a.uniform() == b.uniform<double>());
  CHECK(a.normal() == b.normal<double>());
  // Rng(seed, stream) is the purpose_host stream.
  CHECK(lensing::Rng(seed, 3).next() == lr::Stream(lr::stream_key(seed, lr::purpose_host, 3)).bits());
}

LENSING_TEST_CASE_TEMPLATE("random: per-element kernel streams have uniform and normal moments", Config,
                           lt::AllConfigs) {
  // One stream per element, as the simulator's pixel noise draws them, so the
  // check covers the key derivation as well as the generator.
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  long const n = 200000;
  std::uint64_t const seed = 5;
  Kokkos::View<S*, Mem> u("u", n), z("z", n);
  Kokkos::parallel_for(
      "test_random::moments", Kokkos::RangePolicy<Space>(space, 0, n), KOKKOS_LAMBDA(long i) {
        lr::Stream su(lr::stream_key(seed, lr::purpose_gaussian, 0, std::uint64_t(i)));
        u(i) = su.template uniform<S>();
        lr::Stream sz(lr::stream_key(seed, lr::purpose_read, 0, std::uint64_t(i)));
        z(i) = sz.template normal<S>();
      });
  space.fence();
  check_uniform_moments(lt::host_values(u));
  check_normal_moments(lt::host_values(z));
}

TEST_CASE("random: a long host stream has uniform and normal moments, balanced bits, no lag-1 correlation") {
  long const n = 1000000;
  lensing::Rng r(11, lr::purpose_chain, 0);
  std::vector<double> u(n), z(n);
  std::vector<long> ones(64, 0);
  for (long i = 0; i < n; ++i) {
    std::uint64_t const b = r.next();
    for (int k = 0; k < 64; ++k)
      ones[std::size_t(k)] += long((b >> k) & 1);
    u[std::size_t(i)] = r.uniform();
    z[std::size_t(i)] = r.normal();
  }
  check_uniform_moments(u);
  check_normal_moments(z);
  // Each bit is one with probability 1/2: the count has standard error sqrt(n)/2.
  for (int k = 0; k < 64; ++k)
    CHECK(std::abs(double(ones[std::size_t(k)]) - n / 2.0) < 5 * std::sqrt(double(n)) / 2);
  // Lag-1 autocorrelation: standard error 1/sqrt(n) for independent draws.
  std::vector<double> a(u.begin(), u.end() - 1), b(u.begin() + 1, u.end());
  CHECK(std::abs(correlation(a, b)) < 5 / std::sqrt(double(n)));
}

TEST_CASE("random: streams of different purposes, indices and seeds are uncorrelated") {
  // x_i and y_i: the first uniforms of the streams being compared, for
  // i < n; the sample correlation of independent pairs has standard error
  // 1/sqrt(n).  The pairs are the splits the library relies on.
  long const n = 100000;
  std::uint64_t const seed = 9;
  auto first = [](std::uint64_t key) { return lr::Stream(key).uniform<double>(); };
  auto check_uncorrelated = [&](auto const& kx, auto const& ky, char const* what) {
    std::vector<double> x(n), y(n);
    for (long i = 0; i < n; ++i) {
      x[std::size_t(i)] = first(kx(std::uint64_t(i)));
      y[std::size_t(i)] = first(ky(std::uint64_t(i)));
    }
    double const c = correlation(x, y);
    INFO(what << ": correlation " << c);
    CHECK(std::abs(c) < 5 / std::sqrt(double(n)));
  };
  check_uncorrelated([&](std::uint64_t i) { return lr::stream_key(seed, lr::purpose_gaussian, 0, i); },
                     [&](std::uint64_t i) { return lr::stream_key(seed, lr::purpose_poisson, 0, i); },
                     "two purposes, same image and pixel");
  check_uncorrelated([&](std::uint64_t i) { return lr::stream_key(seed, lr::purpose_gaussian, 0, i); },
                     [&](std::uint64_t i) { return lr::stream_key(seed, lr::purpose_gaussian, 0, i + 1); },
                     "neighbouring pixels");
  check_uncorrelated([&](std::uint64_t i) { return lr::stream_key(seed, lr::purpose_gaussian, i, 0); },
                     [&](std::uint64_t i) { return lr::stream_key(seed, lr::purpose_gaussian, 0, i); },
                     "a and b swapped");
  check_uncorrelated([&](std::uint64_t i) { return lr::stream_key(seed, lr::purpose_chain, i); },
                     [&](std::uint64_t i) { return lr::stream_key(seed + 1, lr::purpose_chain, i); },
                     "neighbouring seeds");
  check_uncorrelated([&](std::uint64_t i) { return lr::stream_key(seed, lr::purpose_chain, i); },
                     [&](std::uint64_t i) {
                       return lr::stream_key(lr::stream_key(seed, lr::purpose_batch_problem, 0), lr::purpose_chain, i);
                     },
                     "a child seed's chains and the parent's");
  // Within one stream: draw 1 against draw 2 of the same key (a counter
  // generator's successive outputs).
  check_uncorrelated([&](std::uint64_t i) { return lr::stream_key(seed, lr::purpose_dropout, 0, i); },
                     [&](std::uint64_t i) { return lr::stream_key(seed, lr::purpose_dropout, 0, i) + golden; },
                     "successive draws of one stream");
}
