// The test harness itself: the floating-point-invalid trap is armed in the
// main thread and in every worker thread of the host backends.
#include <lensing_test.hpp>

#include <cfenv>

#if defined(__GLIBC__) && !defined(LENSING_TEST_NO_FP_TRAP)
TEST_CASE("FE_INVALID traps on every host thread") {
  CHECK((fegetexcept() & FE_INVALID) != 0);
#if defined(KOKKOS_ENABLE_OPENMP)
  Kokkos::OpenMP space;
  int armed = 0;
  Kokkos::parallel_reduce(
      "trap_armed", Kokkos::RangePolicy<Kokkos::OpenMP>(space, 0, 64),
      [](int, int& n) { n += (fegetexcept() & FE_INVALID) != 0 ? 1 : 0; }, armed);
  CHECK(armed == 64);
#endif
}
#endif

TEST_CASE("count_failures counts exactly the failing indices") {
  using Space = Kokkos::DefaultHostExecutionSpace;
  CHECK(lensing::test::count_failures(Space(), 1000, [](long i) { return i % 7 != 0; }) == 143);
  CHECK(lensing::test::count_failures(Space(), 10, [](long) { return true; }) == 0);
}
