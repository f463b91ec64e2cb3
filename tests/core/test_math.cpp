#include <lensing/core/math.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace m = lensing::math;

TEST_CASE("math constants and helpers") {
  CHECK(m::pi<double> == M_PI);
  CHECK(m::pi<float> == static_cast<float>(M_PI));
  static_assert(m::square(3) == 9, "");
  static_assert(m::min(2, 3) == 2 && m::max(2, 3) == 3, "");
  static_assert(m::clamp(5, 0, 3) == 3 && m::clamp(-1, 0, 3) == 0 && m::clamp(2, 0, 3) == 2, "");
}

// Device results of the forwarded functions against the host C++ library.
// Same formula on both sides, so the bound is a few ulp, not a model error.
LENSING_TEST_CASE_TEMPLATE("math functions match the C++ library", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  int const n = 200;
  Kokkos::View<Scalar* [10], typename Config::memory_space> out("out", n);
  Kokkos::parallel_for(
      "test_math", Kokkos::RangePolicy<Space>(Space(), 0, n), KOKKOS_LAMBDA(int i) {
        Scalar const x = Scalar(0.05) + Scalar(0.037) * Scalar(i);  // (0, 7.5]
        out(i, 0) = m::sqrt(x);
        out(i, 1) = m::exp(-x);
        out(i, 2) = m::log(x);
        out(i, 3) = m::log1p(x);
        out(i, 4) = m::atan2(x - Scalar(3), Scalar(1.5));
        out(i, 5) = m::atan(x);
        out(i, 6) = m::sin(x) + m::cos(x);
        out(i, 7) = m::pow(x, Scalar(0.37));
        out(i, 8) = m::asinh(x) + m::atanh(Scalar(1) / (Scalar(1) + x));
        out(i, 9) = m::erf(x - Scalar(2)) + m::cbrt(x) + m::fabs(-x) + m::hypot(x, Scalar(2));
      });
  Space().fence();
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  Scalar const eps = std::numeric_limits<Scalar>::epsilon();
  for (int i = 0; i < n; ++i) {
    Scalar const x = Scalar(0.05) + Scalar(0.037) * Scalar(i);
    Scalar const expect[10] = {std::sqrt(x),
                               std::exp(-x),
                               std::log(x),
                               std::log1p(x),
                               std::atan2(x - Scalar(3), Scalar(1.5)),
                               std::atan(x),
                               std::sin(x) + std::cos(x),
                               std::pow(x, Scalar(0.37)),
                               std::asinh(x) + std::atanh(Scalar(1) / (Scalar(1) + x)),
                               std::erf(x - Scalar(2)) + std::cbrt(x) + std::fabs(-x) + std::hypot(x, Scalar(2))};
    for (int k = 0; k < 10; ++k) {
      CHECK_MESSAGE(lensing::test::close(h(i, k), expect[k], Scalar(8) * eps, Scalar(8) * eps), "function ", k,
                    " at x=", x);
    }
  }
  // Predicates.
  CHECK(m::isnan(std::numeric_limits<Scalar>::quiet_NaN()));
  CHECK(m::isinf(std::numeric_limits<Scalar>::infinity()));
  CHECK(m::isfinite(Scalar(1)));
  CHECK_FALSE(m::isfinite(std::numeric_limits<Scalar>::infinity()));
}

// math::select, min, max and clamp against the conditional expressions they
// stand for, bit for bit (select is a bit-mask blend on GCC hosts, ?: on
// devices): signed zeros, infinities, subnormals and a NaN with a payload
// (select only: comparing a NaN raises FE_INVALID, which the tests trap).
// Exact identities, so any difference is a failure.
LENSING_TEST_CASE_TEMPLATE("math::select, min, max, clamp equal their ?: forms bit for bit", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Bits = std::conditional_t<sizeof(Scalar) == 8, std::uint64_t, std::uint32_t>;
  using lim = std::numeric_limits<Scalar>;
  Scalar const ordered[] = {Scalar(0),  -Scalar(0),       Scalar(1.5),     Scalar(-2.25), lim::denorm_min(),
                            lim::min(), -lim::infinity(), lim::infinity(), lim::max(),    Scalar(3e-7)};
  constexpr int n = int(sizeof(ordered) / sizeof(ordered[0]));
  Kokkos::View<Scalar[n], typename Config::memory_space> v("values");
  auto hv = Kokkos::create_mirror_view(v);
  for (int i = 0; i < n; ++i)
    hv(i) = ordered[i];
  Kokkos::deep_copy(v, hv);
  // out(i, j, .): select(i < j, v_i, v_j), min, max, clamp(v_i, lo, hi) with
  // lo = min, hi = max of v_j and 1.5 (lo <= hi).
  Kokkos::View<Scalar[n][n][4], typename Config::memory_space> out("out");
  Kokkos::parallel_for(
      "test_math_select", Kokkos::RangePolicy<Space>(Space(), 0, n * n), KOKKOS_LAMBDA(int k) {
        int const i = k / n, j = k % n;
        Scalar const a = v(i), b = v(j);
        out(i, j, 0) = m::select(i < j, a, b);
        out(i, j, 1) = m::min(a, b);
        out(i, j, 2) = m::max(a, b);
        Scalar const lo = b < Scalar(1.5) ? b : Scalar(1.5), hi = b < Scalar(1.5) ? Scalar(1.5) : b;
        out(i, j, 3) = m::clamp(a, lo, hi);
      });
  Space().fence();
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  auto bits = [](Scalar x) {
    Bits u;
    std::memcpy(&u, &x, sizeof u);
    return u;
  };
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      Scalar const a = ordered[i], b = ordered[j];
      Scalar const lo = b < Scalar(1.5) ? b : Scalar(1.5), hi = b < Scalar(1.5) ? Scalar(1.5) : b;
      Scalar const expect[4] = {i < j ? a : b, b < a ? b : a, a < b ? b : a, a < lo ? lo : (hi < a ? hi : a)};
      for (int k = 0; k < 4; ++k)
        CHECK_MESSAGE(bits(h(i, j, k)) == bits(expect[k]), "case ", k, " at (", a, ", ", b, ")");
    }
  // A NaN with a payload passes through select unchanged, from either side.
  Bits const payload = sizeof(Scalar) == 8 ? Bits(0x7ff8000000012345ull) : Bits(0x7fc12345u);
  Scalar nan;
  std::memcpy(&nan, &payload, sizeof nan);
  CHECK(bits(m::select(true, nan, Scalar(1))) == payload);
  CHECK(bits(m::select(false, Scalar(1), nan)) == payload);
  CHECK(bits(m::select(false, nan, -Scalar(0))) == bits(-Scalar(0)));
  // Usable in constant expressions (GCC's bit-mask path included).
  static_assert(m::max(Scalar(1), Scalar(2)) == Scalar(2) && m::min(Scalar(1), Scalar(2)) == Scalar(1), "");
  static_assert(m::clamp(Scalar(5), Scalar(0), Scalar(3)) == Scalar(3), "");
}
