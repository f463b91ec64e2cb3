#include <lensing/core/tuple.hpp>

#include <lensing_test.hpp>

#include <type_traits>

namespace {
struct Scale {
  double factor;
  KOKKOS_INLINE_FUNCTION double apply(double x) const { return factor * x; }
};
struct Offset {
  double shift;
  KOKKOS_INLINE_FUNCTION double apply(double x) const { return x + shift; }
};
struct Empty {
  KOKKOS_INLINE_FUNCTION double apply(double) const { return 0.0; }
};

// Sum of every element's apply(x), by a fold over the index sequence: the
// pattern Composite<P...> uses for profiles.
template <class... T, std::size_t... I>
KOKKOS_INLINE_FUNCTION double sum_apply(lensing::Tuple<T...> const& t, double x, std::index_sequence<I...>) {
  double r = 0;
  ((r = r + lensing::get<I>(t).apply(x)), ...);
  return r;
}
}  // namespace

TEST_CASE("Tuple is trivially copyable and indexable") {
  using T3 = lensing::Tuple<Scale, Offset, Empty>;
  static_assert(std::is_trivially_copyable<T3>::value, "");
  static_assert(std::is_trivially_copyable<lensing::Tuple<>>::value, "");
  static_assert(lensing::tuple_size_v<T3> == 3, "");
  static_assert(std::is_same<lensing::tuple_element_t<1, T3>, Offset>::value, "");
  static_assert(std::is_same<lensing::tuple_element_t<1, T3 const>, Offset const>::value, "");

  T3 t(Scale{2.0}, Offset{-1.0}, Empty{});
  CHECK(lensing::get<0>(t).factor == 2.0);
  CHECK(lensing::get<1>(t).shift == -1.0);
  lensing::get<0>(t).factor = 5.0;
  CHECK(lensing::get<0>(t).factor == 5.0);

  auto const u = lensing::make_tuple(1, 2.5, Scale{3.0});
  static_assert(std::is_same<std::decay_t<decltype(u)>, lensing::Tuple<int, double, Scale>>::value, "");
  CHECK(lensing::get<0>(u) == 1);
  CHECK(lensing::get<1>(u) == 2.5);
  double total = 0;
  lensing::for_each(lensing::make_tuple(1.0, 2.0, 4.0), [&](double v) { total += v; });
  CHECK(total == 7.0);
  // Same-type elements stay distinct.
  lensing::Tuple<double, double> same(1.0, 2.0);
  CHECK(lensing::get<0>(same) == 1.0);
  CHECK(lensing::get<1>(same) == 2.0);
}

LENSING_TEST_CASE_TEMPLATE("Tuple captured by value in a kernel", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  lensing::Tuple<Scale, Offset, Empty> const t(Scale{3.0}, Offset{0.5}, Empty{});
  long const failures = lensing::test::count_failures(
      Space(), 100, KOKKOS_LAMBDA(long i) {
        double const x = 0.1 * double(i);
        return sum_apply(t, x, std::index_sequence_for<Scale, Offset, Empty>{}) == 3.0 * x + (x + 0.5);
      });
  CHECK(failures == 0);
}
