// find_package(lensing COMPONENTS mpi): the mpi component's header and an
// allreduce over the ranks, with Kokkos initialised per rank.
#include <lensing/mpi/comm.hpp>

#include <Kokkos_Core.hpp>

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  lensing::mpi::Environment mpi(argc, argv);
  Kokkos::ScopeGuard kokkos(argc, argv);
  lensing::mpi::Communicator world;
  std::vector<double> v = {1.0, double(world.rank())};
  world.allreduce_sum(v);
  bool const ok = v[0] == world.size() && v[1] == world.size() * (world.size() - 1) / 2.0;
  if (world.rank() == 0) std::printf("lensing_mpi_consumer: %d ranks, %s\n", world.size(), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
