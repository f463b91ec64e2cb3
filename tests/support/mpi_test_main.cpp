// Test main of the MPI test programs (lensing_add_mpi_test): MPI is
// initialised first (lensing::mpi::Environment, errors as exceptions), then
// Kokkos (one execution space per rank), then doctest runs on every rank.
// The exit status is the worst over the ranks, so a check that fails on one
// rank fails the ctest entry (each rank prints its own doctest report).  Invalid floating-point operations trap as in
// test_main.cpp.
#define DOCTEST_CONFIG_IMPLEMENT
#include <lensing/mpi/comm.hpp>

#include <doctest/doctest.h>
#include <Kokkos_Core.hpp>

#include <cfenv>
#include <cstdio>

int main(int argc, char* argv[]) {
  lensing::mpi::Environment mpi(argc, argv);
#if defined(__GLIBC__) && !defined(LENSING_TEST_NO_FP_TRAP)
  feenableexcept(FE_INVALID);
#endif
  int status = 0;
  {
    Kokkos::ScopeGuard guard(argc, argv);
    lensing::mpi::Communicator world;
    if (world.rank() == 0)
      std::printf("lensing MPI tests: %d rank(s), Kokkos %d, default execution space %s, concurrency %d\n",
                  world.size(), KOKKOS_VERSION, Kokkos::DefaultExecutionSpace::name(),
                  Kokkos::DefaultExecutionSpace().concurrency());
    doctest::Context context;
    context.applyCommandLine(argc, argv);
    if (world.rank() != 0) context.setOption("no-intro", true);
    status = context.run();
    int const worst = world.max(status);
    if (worst != 0 && status == 0 && world.rank() == 0)
      std::printf("lensing MPI tests: another rank failed (exit %d)\n", worst);
    status = worst;
  }
  return status;
}
