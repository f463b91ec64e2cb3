#ifndef LENSING_MPI_TEST_SUPPORT_HPP
#define LENSING_MPI_TEST_SUPPORT_HPP

// Shared helpers of the MPI tests (tests/mpi/): a scratch directory with the
// same name on every rank, and a file's bytes.
#include <lensing/mpi/comm.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <unistd.h>

namespace lensing {
namespace test {

/// An empty directory named after rank 0's pid (the same on every rank;
/// ctest runs the np1 and np2 entries at once), created by rank 0
/// (collective).  Rank 0 removes it with remove_shared_dir.
inline std::string shared_dir(mpi::Communicator const& world, char const* what) {
  std::int64_t pid = world.rank() == 0 ? std::int64_t(::getpid()) : 0;
  pid = world.broadcast_value(pid);
  std::string const dir =
      std::filesystem::temp_directory_path().string() + "/lensing_test_" + what + "_" + std::to_string(pid);
  if (world.rank() == 0) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  world.barrier();
  return dir;
}

/// Remove a shared_dir once every rank is done with it (collective).
inline void remove_shared_dir(mpi::Communicator const& world, std::string const& dir) {
  world.barrier();
  if (world.rank() == 0) std::filesystem::remove_all(dir);
}

/// The bytes of a file ("" if it cannot be read).
inline std::string file_bytes(std::string const& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace test
}  // namespace lensing

#endif  // LENSING_MPI_TEST_SUPPORT_HPP
