// Test main shared by every lensing test program: Kokkos is initialised once
// (ScopeGuard, so --kokkos-* arguments and OMP_NUM_THREADS apply), and an
// invalid floating-point operation (NaN produced from non-NaN input) traps at
// once (SIGFPE) instead of propagating silently into a wrong answer.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <Kokkos_Core.hpp>

#include <cfenv>
#include <cstdio>

int main(int argc, char* argv[]) {
#if defined(__GLIBC__) && !defined(LENSING_TEST_NO_FP_TRAP)
  // Before Kokkos starts threads: new threads inherit the FP environment.
  feenableexcept(FE_INVALID);
#endif
  Kokkos::ScopeGuard guard(argc, argv);
  std::printf("lensing tests: Kokkos %d, default execution space %s, concurrency %d\n", KOKKOS_VERSION,
              Kokkos::DefaultExecutionSpace::name(), Kokkos::DefaultExecutionSpace().concurrency());
  doctest::Context context;
  context.applyCommandLine(argc, argv);
  return context.run();
}
