// mpi/shard.hpp under mpiexec -n 1 and -n 2: a sharded training set read back
// through its master file is bit-identical to the images and labels of one
// generator run over [0, n) (and, with 2 ranks, its shard files are
// byte-identical to a 1-rank run of the same set); a restart after a rank
// died (one shard lost, one half written) completes only what is missing;
// a foreign shard file, a missing source of the master and a configuration
// that differs across ranks are named.
#include <lensing/mpi/shard.hpp>
#include <lensing/simulate/lens_presets.hpp>
#include <lensing/simulate/simulator.hpp>

#include <doctest/doctest.h>
#include <Kokkos_Core.hpp>
#include <mpi_test_support.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace {
using S = double;
using Space = Kokkos::DefaultHostExecutionSpace;
using Mem = Space::memory_space;
using Sim = lensing::simulate::Simulator<lensing::simulate::GalaxyGalaxyModel<S>, lensing::NoPsf<S>, Mem>;

Sim make_simulator(std::uint64_t seed) {
  lensing::simulate::SimulatorOptions opt;
  opt.seed = seed;
  opt.batch_capacity = 5;  // not a divisor of the shard size 7: a shard is generated in batches of 5 and 2
  auto det = lensing::DetectorConfig::noiseless();
  det.noise.background_rms = 0.5;  // noise drawn per (seed, index, pixel)
  return Sim(lensing::PixelGrid<S>::square(12, S(0.1), 1), lensing::NoPsf<S>{}, det,
             lensing::simulate::galaxy_galaxy_priors<S, Mem>(), opt);
}

}  // namespace

TEST_CASE("mpi::write_sharded_training_set: identical to one generator run; restart completes the missing shards") {
  lensing::mpi::Communicator world;
  Space space;
  std::size_t const n = 23;
  lensing::mpi::ShardOptions opt;
  opt.shard_size = 7;  // shards of 7, 7, 7, 2 images
  opt.writer.chunk_images = 4;
  Sim const sim = make_simulator(9);
  std::string const dir = lensing::test::shared_dir(world, "shard");
  std::string const stem = dir + "/train";

  // The reference: one run of the generator over [0, n), as float32 / float64.
  int const K = sim.num_labels();
  lensing::View3D<S, Mem> images("images", n, 12, 12);
  lensing::View2D<S, Mem> labels("labels", n, K);
  for (std::size_t i = 0; i < n; i += 5) {
    std::size_t const b = std::min<std::size_t>(5, n - i);
    sim.generate(space, i, Kokkos::subview(images, Kokkos::make_pair(i, i + b), Kokkos::ALL, Kokkos::ALL),
                 Kokkos::subview(labels, Kokkos::make_pair(i, i + b), Kokkos::ALL));
  }
  space.fence();
  std::vector<float> const ref_images(images.data(), images.data() + images.size());
  std::vector<double> const ref_labels(labels.data(), labels.data() + labels.size());
  auto check_master = [&] {
    auto const set = lensing::io::read_hdf5_training_set(stem + ".h5");
    REQUIRE(set.n == n);
    CHECK(set.ny == 12);
    CHECK(set.label_names == sim.label_names());
    CHECK(set.images == ref_images);  // bit-identical
    CHECK(set.labels == ref_labels);
    CHECK(set.attributes.find("shards")->unsigned_integer == 4);
  };

  auto const first = lensing::mpi::write_sharded_training_set(world, space, sim, n, stem, opt);
  CHECK(first.shards == 4);
  CHECK(first.shards_found == 0);
  CHECK(first.shards_written == 4);
  CHECK(first.images_generated == n);
  // Shard j of the missing list goes to rank j mod P.
  CHECK(first.rank_shards == std::size_t((4 - world.rank() + world.size() - 1) / world.size()));
  check_master();

  // A 1-rank run of the same set (rank 0 alone) writes the same shard bytes.
  if (world.size() > 1) {
    MPI_Comm solo = MPI_COMM_NULL;
    MPI_Comm_split(world.get(), world.rank() == 0 ? 0 : MPI_UNDEFINED, 0, &solo);
    if (world.rank() == 0) {
      lensing::mpi::Communicator one(solo);
      MPI_Comm_set_errhandler(solo, MPI_ERRORS_RETURN);
      auto const s1 = lensing::mpi::write_sharded_training_set(one, space, sim, n, dir + "/solo", opt);
      CHECK(s1.shards_written == 4);
      for (std::size_t s = 0; s < 4; ++s)
        CHECK(lensing::test::file_bytes(lensing::mpi::shard_path(dir + "/solo", s)) ==
              lensing::test::file_bytes(lensing::mpi::shard_path(stem, s)));
      MPI_Comm_free(&solo);
    }
    world.barrier();
  }

  // A rank that died: shard 3 never started, shard 1 stopped after 5 of its 7
  // images (its resumable writer had recorded one chunk of 4; the 5th, still
  // in memory, is lost).  The restart writes only what is missing.
  if (world.rank() == 0) {
    auto const attributes = lensing::io::Hdf5TrainingSetReader(lensing::mpi::shard_path(stem, 1)).attributes();
    std::remove(lensing::mpi::shard_path(stem, 1).c_str());
    std::remove(lensing::mpi::shard_path(stem, 3).c_str());
    lensing::io::Hdf5TrainingSetWriter dying(lensing::mpi::shard_path(stem, 1), 12, 12, sim.label_names(), attributes,
                                             opt.writer);
    dying.append(ref_images.data() + 7 * 144, ref_labels.data() + 7 * K, 5);
  }
  world.barrier();
  if (world.rank() == 0)
    CHECK_THROWS_WITH_AS(lensing::io::read_hdf5_training_set(stem + ".h5"), doctest::Contains("missing"),
                         std::runtime_error);  // a virtual dataset would read zeros there
  auto const again = lensing::mpi::write_sharded_training_set(world, space, sim, n, stem, opt);
  CHECK(again.shards_found == 2);
  CHECK(again.shards_written == 2);
  CHECK(again.images_generated == 3 + 2);  // shard 1 resumed after its recorded chunk
  check_master();
  auto const nothing = lensing::mpi::write_sharded_training_set(world, space, sim, n, stem, opt);
  CHECK(nothing.shards_written == 0);
  CHECK(nothing.images_generated == 0);

  // Another set's file where a shard should be: named, on every rank.
  if (world.rank() == 0)
    std::filesystem::copy_file(lensing::mpi::shard_path(stem, 1), lensing::mpi::shard_path(stem, 0),
                               std::filesystem::copy_options::overwrite_existing);
  world.barrier();
  CHECK_THROWS_WITH_AS(lensing::mpi::write_sharded_training_set(world, space, sim, n, stem, opt),
                       doctest::Contains("train.shard000000.h5 holds another set"), std::runtime_error);
  lensing::test::remove_shared_dir(world, dir);
}

TEST_CASE("mpi::write_sharded_training_set: a configuration that differs across ranks is named at start-up") {
  lensing::mpi::Communicator world;
  if (world.size() < 2) return;
  Space space;
  std::string const dir = lensing::test::shared_dir(world, "shard_config");
  Sim const sim = make_simulator(world.rank() == 1 ? 10 : 9);
  CHECK_THROWS_WITH_AS(lensing::mpi::write_sharded_training_set(world, space, sim, 10, dir + "/train"),
                       "lensing::mpi::write_sharded_training_set: configuration differs across ranks: rank 1 has "
                       "seed = '10', rank 0 has '9'",
                       std::runtime_error);
  CHECK(!std::filesystem::exists(lensing::mpi::shard_path(dir + "/train", 0)));  // nothing written
  lensing::test::remove_shared_dir(world, dir);
}
