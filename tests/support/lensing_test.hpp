#ifndef LENSING_TEST_SUPPORT_HPP
#define LENSING_TEST_SUPPORT_HPP

// Shared test support: the type lists tests are templated over (every enabled
// execution space, times float and double), a device-side failure counter,
// tolerances per scalar type, and host copies of views for comparisons.
//
//   LENSING_TEST_CASE_TEMPLATE("name", Config, lensing::test::AllConfigs) {
//     using Space = typename Config::execution_space;
//     using Scalar = typename Config::scalar;
//     ...
//   }

#include <lensing_test_config.hpp>

#include <doctest/doctest.h>
#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

namespace lensing {
namespace test {

/// One (execution space, scalar) combination a test body runs with.
template <class ExecutionSpace, class Scalar>
struct Config {
  using execution_space = ExecutionSpace;
  using memory_space = typename ExecutionSpace::memory_space;
  using scalar = Scalar;
};

template <class... Tuples>
using tuple_cat_t = decltype(std::tuple_cat(std::declval<Tuples>()...));

template <bool Enabled, class... T>
using if_enabled_t = std::conditional_t<Enabled, std::tuple<T...>, std::tuple<>>;

/// Enabled execution spaces.
using Spaces = tuple_cat_t<
#if defined(KOKKOS_ENABLE_SERIAL)
    if_enabled_t<LENSING_TEST_SERIAL, Kokkos::Serial>,
#endif
#if defined(KOKKOS_ENABLE_OPENMP)
    if_enabled_t<LENSING_TEST_OPENMP, Kokkos::OpenMP>,
#endif
#if defined(KOKKOS_ENABLE_CUDA)
    if_enabled_t<LENSING_TEST_CUDA, Kokkos::Cuda>,
#endif
    std::tuple<>>;

template <class Scalar, class SpaceTuple>
struct configs_for;
template <class Scalar, class... S>
struct configs_for<Scalar, std::tuple<S...>> {
  using type = std::tuple<Config<S, Scalar>...>;
};

/// Every enabled space with double (none when LENSING_TEST_SCALARS leaves double out).
using DoubleConfigs = std::conditional_t<LENSING_TEST_DOUBLE, typename configs_for<double, Spaces>::type, std::tuple<>>;
/// Every enabled space with float (none when LENSING_TEST_SCALARS leaves float out:
/// the sanitizer build runs double only).
using FloatConfigs = std::conditional_t<LENSING_TEST_FLOAT, typename configs_for<float, Spaces>::type, std::tuple<>>;
/// Float configs, or double ones when the build leaves float out: for tests of
/// code paths that are float first (image files) and must still run in the
/// double-only sanitizer build.
using FloatFirstConfigs = std::conditional_t<LENSING_TEST_FLOAT, FloatConfigs, DoubleConfigs>;
/// Every enabled space with float and with double.
using AllConfigs = tuple_cat_t<DoubleConfigs, FloatConfigs>;

static_assert(std::tuple_size<Spaces>::value > 0, "lensing tests: no execution space enabled for testing");

/// Relative tolerance for results computed in Scalar from exact formulas.
template <class Scalar>
constexpr Scalar tolerance = std::is_same<Scalar, float>::value ? Scalar(1e-5) : Scalar(1e-12);

/// |a - b| <= atol + rtol |b|, false for NaN.  Kernel-safe.
template <class Scalar>
KOKKOS_INLINE_FUNCTION bool close(Scalar a, Scalar b, Scalar rtol, Scalar atol = Scalar(0)) {
  Scalar const d = a > b ? a - b : b - a;
  Scalar const m = b < Scalar(0) ? -b : b;
  return d <= atol + rtol * m;  // NaN compares false
}

/// Number of i in [0, n) for which ok(i) is false, evaluated on `space`.
/// Device checks count failures; the host asserts the count.
template <class ExecutionSpace, class Predicate>
long count_failures(ExecutionSpace const& space, long n, Predicate const& ok) {
  long failures = 0;
  Kokkos::parallel_reduce(
      "lensing::test::count_failures", Kokkos::RangePolicy<ExecutionSpace>(space, 0, n),
      KOKKOS_LAMBDA(long i, long& count) { count += ok(i) ? 0 : 1; }, failures);
  space.fence();
  return failures;
}

/// A View's elements (any layout, any memory space) as doubles, in storage order.
template <class V>
std::vector<double> host_values(V const& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  std::vector<double> out(h.size());
  for (std::size_t i = 0; i < h.size(); ++i)
    out[i] = double(h.data()[i]);
  return out;
}
/// Sets a View's elements (storage order) from doubles; sizes must match.
template <class V>
void set_values(V const& v, std::vector<double> const& vals) {
  auto h = Kokkos::create_mirror_view(v);
  if (h.size() != vals.size()) throw std::invalid_argument("set_values: size mismatch");
  for (std::size_t i = 0; i < h.size(); ++i)
    h.data()[i] = typename V::value_type(vals[i]);
  Kokkos::deep_copy(v, h);
}
/// max |a - b| / max(1e-300, max |b|).
inline double rel_diff(std::vector<double> const& a, std::vector<double> const& b) {
  if (a.size() != b.size()) throw std::invalid_argument("rel_diff: size mismatch");
  double err = 0, scale = 1e-300;
  for (std::size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return err / scale;
}
/// The message of the exception f() throws, "no exception" when none (check
/// the type separately with CHECK_THROWS_AS).
template <class F>
std::string error_message(F f) {
  try {
    f();
  } catch (std::exception const& e) {
    return e.what();
  }
  return "no exception";
}

}  // namespace test
}  // namespace lensing

/// A doctest test case run once per type in the std::tuple `list`.
#define LENSING_TEST_CASE_TEMPLATE(name, T, list) \
  LENSING_TEST_CASE_TEMPLATE_IMPL(name, T, list, DOCTEST_ANONYMOUS(LENSING_TTC_))
#define LENSING_TEST_CASE_TEMPLATE_IMPL(name, T, list, id)                                           \
  DOCTEST_TEST_CASE_TEMPLATE_DEFINE_IMPL(name, T, DOCTEST_CAT(id, ITERATOR), DOCTEST_CAT(id, FUNC)); \
  DOCTEST_TEST_CASE_TEMPLATE_APPLY(id, list);                                                        \
  template <typename T>                                                                              \
  static void DOCTEST_CAT(id, FUNC)()

#endif  // LENSING_TEST_SUPPORT_HPP
