#include <lensing/core/math.hpp>

#include <lensing_test.hpp>

#include <cmath>

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
