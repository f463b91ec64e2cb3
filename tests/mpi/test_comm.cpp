// mpi/comm.hpp under mpiexec -n 1 and -n 2: collectives on the element types
// of the layer (exact: sums of small integers in double/float/int64 are
// exact in any order), MPI errors as exceptions, and the start-up check that
// names a configuration setting that differs across ranks.
#include <lensing/mpi/comm.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace {
template <class T>
void check_allreduce_and_broadcast(lensing::mpi::Communicator const& world) {
  int const r = world.rank(), p = world.size();
  std::vector<T> v = {T(r + 1), T(2 * r), T(-3)};
  world.allreduce_sum(v);
  // Sums of integers below 2^24: exact in float too.
  CHECK(v[0] == T(p * (p + 1) / 2));
  CHECK(v[1] == T(p * (p - 1)));
  CHECK(v[2] == T(-3 * p));
  std::vector<T> b;
  if (r == p - 1) b = {T(7), T(8), T(9), T(10)};
  world.broadcast(b, p - 1);
  REQUIRE(b.size() == 4);
  CHECK(b[3] == T(10));
  CHECK(world.max(T(r)) == T(p - 1));
  CHECK(world.min(T(r)) == T(0));
}
}  // namespace

TEST_CASE("mpi::Communicator: allreduce, broadcast, min/max on double, float, int64") {
  lensing::mpi::Communicator world;
  CHECK(world.size() >= 1);
  check_allreduce_and_broadcast<double>(world);
  check_allreduce_and_broadcast<float>(world);
  check_allreduce_and_broadcast<std::int64_t>(world);
  std::string s = world.rank() == 0 ? "from rank 0" : "";
  world.broadcast(s);
  CHECK(s == "from rank 0");
  auto const all = world.allgather(std::int64_t(world.rank() * 10));
  REQUIRE(all.size() == std::size_t(world.size()));
  for (int i = 0; i < world.size(); ++i)
    CHECK(all[std::size_t(i)] == 10 * i);
  auto const g = world.gather("rank " + std::to_string(world.rank()));
  if (world.rank() == 0) {
    REQUIRE(g.size() == std::size_t(world.size()));
    CHECK(g.back() == "rank " + std::to_string(world.size() - 1));
  } else {
    CHECK(g.empty());
  }
  CHECK(world.all_ok(true));
  CHECK(!world.all_ok(world.rank() != world.size() - 1));
}

TEST_CASE("mpi: errors become exceptions naming the call; wrong arguments are refused on every rank") {
  lensing::mpi::Communicator world;
  // An invalid rank: MPI_ERRORS_RETURN (set by Environment) makes MPI return
  // the error, check() throws it.
  int x = 0;
  CHECK_THROWS_WITH_AS(
      lensing::mpi::check(MPI_Send(&x, 1, MPI_INT, world.size() + 5, 0, world.get()), "test", "MPI_Send"),
      doctest::Contains("test: MPI_Send failed: MPI_ERR_RANK"), std::runtime_error);
  std::vector<double> v(world.rank() == 0 ? 3 : 4, 1.0);
  if (world.size() > 1)
    CHECK_THROWS_WITH_AS(world.allreduce_sum(v), doctest::Contains("different lengths"), std::invalid_argument);
  CHECK_THROWS_AS(world.broadcast(v, world.size()), std::invalid_argument);
}

TEST_CASE("mpi::check_same_configuration: the same settings pass; a differing one is named on every rank") {
  lensing::mpi::Communicator world;
  lensing::mpi::Configuration config = {{"seed", "42"}, {"n", "64"}, {"preset", "HST"}};
  CHECK_NOTHROW(lensing::mpi::check_same_configuration(world, config, "test_app"));
  CHECK(lensing::mpi::configuration_hash(config) !=
        lensing::mpi::configuration_hash({{"seed", "4"}, {"2n", "64"}, {"preset", "HST"}}));
  if (world.size() < 2) return;
  auto other = config;
  if (world.rank() == 1) other[0].second = "43";
  CHECK_THROWS_WITH_AS(lensing::mpi::check_same_configuration(world, other, "test_app"),
                       "test_app: configuration differs across ranks: rank 1 has seed = '43', rank 0 has '42'",
                       std::runtime_error);
  auto missing = config;
  if (world.rank() == 1) missing.pop_back();
  CHECK_THROWS_WITH_AS(lensing::mpi::check_same_configuration(world, missing, "test_app"),
                       "test_app: configuration differs across ranks: rank 0 has preset = 'HST', rank 1 has no "
                       "setting preset",
                       std::runtime_error);
}
