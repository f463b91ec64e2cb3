#ifndef LENSING_MPI_SHARD_HPP
#define LENSING_MPI_SHARD_HPP

/// \file
/// Sharded simulation over MPI ranks: one training set of n images written
/// by all ranks of a communicator, as one HDF5 file per shard plus a master
/// file whose /images and /labels are HDF5 virtual datasets over the shards
/// (readable as one set by io::Hdf5TrainingSetReader, h5py, ...).
///
///     lensing::mpi::Communicator world;
///     auto sum = lensing::mpi::write_sharded_training_set(world, space, simulator, n, "out/train");
///     // out/train.h5 (master), out/train.shard000000.h5, out/train.shard000001.h5, ...
///
/// **Identical to one rank.**  The generator's images are a function of
/// (seed, global index) (simulate/simulator.hpp: image i uses random streams
/// of (seed, i) only, whatever the batch split), and shards are fixed index
/// ranges [s S, min(n, (s+1) S)) of S = shard_size images whatever the number
/// of ranks, so the shard files (io::Hdf5TrainingSetWriter writes the same
/// bytes for the same content) and the images read through the master are
/// bit-identical to a 1-rank run with the same generator and seed (tested).
///
/// **Work split.**  The shards still missing are dealt round-robin to the
/// ranks (missing shard j to rank j mod P): equal-cost shards, no
/// communication while generating.  Each rank generates its shards in
/// batches of the generator's batch size on its execution space, copies them
/// to the host as float32 images and float64 labels, and appends them to the
/// shard's resumable writer.
///
/// **Restart.**  A shard whose file exists is complete (the writer renames it
/// into place in finish()); its shape, label names and attributes are checked
/// against this run (another set there is an error naming the file, never
/// silently mixed in).  A shard that a dead or interrupted rank left half done
/// resumes from the writer's `<file>.partial` records (io/hdf5.hpp).  So
/// after a rank dies (MPI usually ends the whole job with it), running the
/// same command again generates only the missing shards, on any number of
/// ranks, and writes the master.  The master is rewritten at the end of every
/// run that completes (a few kilobytes: the mappings).
///
/// **Faults.**  At start-up every rank's configuration (the generator's
/// settings, n, the stem, shard size and writer options) is compared
/// (check_same_configuration: the differing setting is named).  An error on
/// one rank (disk full, a foreign shard file) does not hang the others: each
/// rank finishes or fails its own shards, the ranks agree on the outcome,
/// and every rank throws the same std::runtime_error naming each failed rank
/// and its message; the shards that were completed stay for the restart.
///
/// **Master file.**  /images float32 (n, ny, nx) and /labels float64 (n, K)
/// virtual datasets (one mapping per shard, source files named relative to
/// the master's directory: move the files together), /label_names and the
/// attributes as in io/hdf5.hpp's layout plus `shard_size`, `shards` and
/// `set_images`.  HDF5 reads a missing source file of a virtual dataset as
/// fill values (zeros) without an error, so io::Hdf5TrainingSetReader refuses
/// a master whose source files are not all there.  A virtual dataset needs
/// HDF5 >= 1.10 to read.
///
/// Cost per rank: the generator's rate (simulate/simulator.hpp) plus the
/// writer's appends; with deflate (default level 4) finish() compresses each
/// shard at ~1,000 images/s of 64 x 64 (io/hdf5.hpp), so for throughput pass
/// writer.deflate_level = 0.  Communication: a few collectives of O(shards)
/// integers at start and end; none while generating.

#if !defined(LENSING_HAS_MPI) || !defined(LENSING_HAS_HDF5)
#error "lensing/mpi/shard.hpp needs the mpi and hdf5 components: link lensing::mpi and lensing::hdf5"
#endif

#include <lensing/core/errors.hpp>
#include <lensing/core/views.hpp>
#include <lensing/io/file.hpp>
#include <lensing/io/hdf5.hpp>
#include <lensing/mpi/comm.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <sys/stat.h>

namespace lensing {
namespace mpi {

/// Options of write_sharded_training_set.
struct ShardOptions {
  std::size_t shard_size = 4096;  ///< images per shard file (the last one may hold fewer)
  io::Hdf5WriterOptions writer;   ///< chunking, deflate level, checksums of every shard file
  bool progress = false;          ///< one line per shard on stderr (each rank)
};

/// What write_sharded_training_set did (totals over all ranks, except where
/// it says "this rank").
struct ShardSummary {
  std::size_t images = 0;            ///< in the set
  std::size_t shards = 0;            ///< in the set
  std::size_t shards_found = 0;      ///< complete on disk before this run (restart)
  std::size_t shards_written = 0;    ///< completed by this run, all ranks
  std::size_t images_generated = 0;  ///< by this run, all ranks (a resumed shard counts its missing images)
  std::size_t rank_shards = 0;       ///< this rank: shards completed
  std::size_t rank_images = 0;       ///< this rank: images generated
  double rank_generate_seconds = 0;  ///< this rank: generation (kernels, fenced)
  double rank_write_seconds = 0;     ///< this rank: host copies and shard files (appends and finish)
  double seconds = 0;                ///< wall time of the call (slowest rank, collectives included)
  std::string master;                ///< the master file
  std::vector<std::string> shard_files;
};

/// The file of shard `s` of the set with master `<stem>.h5`: `<stem>.shardNNNNNN.h5`.
inline std::string shard_path(std::string const& stem, std::size_t s) {
  std::ostringstream o;
  o << stem << ".shard" << std::setw(6) << std::setfill('0') << s << ".h5";
  return o.str();
}

namespace detail {
inline std::string base_name(std::string const& path) {
  auto const p = path.find_last_of('/');
  return p == std::string::npos ? path : path.substr(p + 1);
}
inline bool exists(std::string const& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// The master file: virtual /images and /labels over the shard files.
inline void write_master(std::string const& master, std::string const& stem, std::size_t n, std::size_t shard_size,
                         std::size_t ny, std::size_t nx, std::vector<std::string> const& names,
                         io::Hdf5Attributes const& attributes, char const* where) {
  using io::detail::hdf5_check;
  using io::detail::Hdf5Id;
  io::detail::Hdf5Quiet quiet;
  io::AtomicFile out(master, where);
  {
    Hdf5Id fcpl = io::detail::hdf5_file_create(where, master);
    // Virtual datasets need the 1.10 file format (HDF5 picks it for them).
    Hdf5Id file = hdf5_check(H5Fcreate(out.temp_path().c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT), H5Fclose,
                             where, master, "cannot create the file (unwritable directory?)");
    for (auto const& a : attributes.entries())
      io::detail::hdf5_write_attribute(file.get(), a, where, master);
    hsize_t const k = names.size();
    auto make = [&](char const* name, int rank, hsize_t const* dims, hid_t type) {
      Hdf5Id space = hdf5_check(H5Screate_simple(rank, dims, nullptr), H5Sclose, where, master, "H5Screate failed");
      Hdf5Id dcpl = hdf5_check(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, where, master, "H5Pcreate failed");
      hdf5_check(H5Pset_obj_track_times(dcpl.get(), 0), where, master, "H5Pset_obj_track_times failed");
      for (std::size_t first = 0, s = 0; first < n; first += shard_size, ++s) {
        hsize_t const m = std::min(shard_size, n - first);
        hsize_t start[3] = {first, 0, 0}, count[3] = {m, dims[1], rank > 2 ? dims[2] : 0};
        Hdf5Id vspace = hdf5_check(H5Screate_simple(rank, dims, nullptr), H5Sclose, where, master, "H5Screate failed");
        hdf5_check(H5Sselect_hyperslab(vspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr), where, master,
                   "H5Sselect_hyperslab failed");
        Hdf5Id sspace = hdf5_check(H5Screate_simple(rank, count, nullptr), H5Sclose, where, master, "H5Screate failed");
        std::string const src = base_name(shard_path(stem, s));
        hdf5_check(H5Pset_virtual(dcpl.get(), vspace.get(), src.c_str(), name, sspace.get()), where, master,
                   "cannot map " + src + " into '" + name + "' (H5Pset_virtual)");
      }
      Hdf5Id ds = hdf5_check(H5Dcreate2(file.get(), name, type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                             H5Dclose, where, master, std::string("cannot create virtual dataset '") + name + "'");
    };
    hsize_t const idims[3] = {n, ny, nx}, ldims[2] = {n, k};
    make("images", 3, idims, H5T_IEEE_F32LE);
    make("labels", 2, ldims, H5T_IEEE_F64LE);
    io::detail::hdf5_write_label_names(file.get(), names, where, master);
    if (!file.reset()) io::detail::hdf5_fail(where, master, "cannot finish writing (disk full?)");
  }
  out.commit();
}
}  // namespace detail

/// Generate images [0, n) of `generator` (simulate/simulator.hpp's
/// Simulator, or any type with scalar_type, memory_space, num_labels(),
/// label_names(), description() {ny, nx, batch, settings} and
/// generate(space, first_index, images, labels)) on all ranks of `comm`
/// (collective) into `<stem>.h5` and its shard files `<stem>.shardNNNNNN.h5`
/// (the directory must exist and be shared by the ranks).  Every rank passes
/// the same generator configuration, n, stem and options (checked); each
/// uses its own `space`.  Returns the summary on every rank.
template <class ExecutionSpace, class Generator>
ShardSummary write_sharded_training_set(Communicator const& comm, ExecutionSpace const& space,
                                        Generator const& generator, std::size_t n, std::string const& stem,
                                        ShardOptions const& options = {}) {
  using Scalar = typename Generator::scalar_type;
  using MemorySpace = typename Generator::memory_space;
  constexpr char const* where = "lensing::mpi::write_sharded_training_set";
  auto const t_start = std::chrono::steady_clock::now();
  check_argument(n >= 1, where, "n must be >= 1");
  check_argument(!stem.empty(), where, "the stem (output path without .h5) is empty");
  check_argument(options.shard_size >= 1, where, "shard_size must be >= 1");
  auto const desc = generator.description();
  std::size_t const ny = std::size_t(desc.ny), nx = std::size_t(desc.nx), K = std::size_t(generator.num_labels());
  std::size_t const batch = std::size_t(std::max(1, desc.batch));
  std::vector<std::string> const names = generator.label_names();

  // The same run on every rank, named where it differs.
  Configuration config = desc.settings;
  config.emplace_back("set_images", std::to_string(n));
  config.emplace_back("stem", stem);
  config.emplace_back("shard_size", std::to_string(options.shard_size));
  config.emplace_back("chunk_images", std::to_string(options.writer.chunk_images));
  config.emplace_back("deflate_level", std::to_string(options.writer.deflate_level));
  config.emplace_back("fletcher32", std::to_string(int(options.writer.fletcher32)));
  for (std::size_t k = 0; k < names.size(); ++k)
    config.emplace_back("label" + std::to_string(k), names[k]);
  check_same_configuration(comm, config, where);

  io::Hdf5Attributes set_attributes;
  for (auto const& kv : desc.settings)
    set_attributes.set(kv.first, kv.second);
  set_attributes.set("set_images", std::uint64_t(n)).set("shard_size", std::uint64_t(options.shard_size));
  std::size_t const num_shards = (n + options.shard_size - 1) / options.shard_size;
  auto shard_attributes = [&](std::size_t s) {
    io::Hdf5Attributes a = set_attributes;
    a.set("shard", std::uint64_t(s)).set("shard_first", std::uint64_t(s * options.shard_size));
    return a;
  };
  auto shard_count = [&](std::size_t s) { return std::min(options.shard_size, n - s * options.shard_size); };

  ShardSummary sum;
  sum.images = n;
  sum.shards = num_shards;
  sum.master = stem + ".h5";
  for (std::size_t s = 0; s < num_shards; ++s)
    sum.shard_files.push_back(shard_path(stem, s));

  // Which shards are complete: each rank checks every P-th file.
  std::vector<int> done(num_shards, 0);
  std::string error;
  try {
    for (std::size_t s = std::size_t(comm.rank()); s < num_shards; s += std::size_t(comm.size())) {
      std::string const& path = sum.shard_files[s];
      if (!detail::exists(path)) continue;
      io::Hdf5TrainingSetReader const r(path);
      if (r.size() != shard_count(s) || r.ny() != ny || r.nx() != nx || r.label_names() != names ||
          r.attributes() != shard_attributes(s))
        throw std::runtime_error(path +
                                 " holds another set (shape, label names or settings differ from this run); "
                                 "delete it or choose another stem");
      done[s] = 1;
    }
  } catch (std::exception const& e) {
    error = e.what();
  }
  agree_on_errors(comm, error, where, "");
  comm.allreduce(done, MPI_MAX);
  std::vector<std::size_t> missing;
  for (std::size_t s = 0; s < num_shards; ++s)
    if (done[s] != 0)
      ++sum.shards_found;
    else
      missing.push_back(s);

  // This rank's shards: missing shard j goes to rank j mod P.
  try {
    auto const images =
        allocate_view<View3D<Scalar, MemorySpace>>(where, "lensing::mpi::shard::images", false, batch, ny, nx);
    auto const labels =
        allocate_view<View2D<Scalar, MemorySpace>>(where, "lensing::mpi::shard::labels", false, batch, K);
    std::vector<float> host_images;
    std::vector<double> host_labels;
    for (std::size_t j = std::size_t(comm.rank()); j < missing.size(); j += std::size_t(comm.size())) {
      std::size_t const s = missing[j], first = s * options.shard_size, m = shard_count(s);
      io::Hdf5TrainingSetWriter writer(sum.shard_files[s], ny, nx, names, shard_attributes(s), options.writer);
      for (std::size_t i = writer.size(); i < m; i += batch) {
        std::size_t const b = std::min(batch, m - i);
        auto const img = Kokkos::subview(images, Kokkos::make_pair(std::size_t(0), b), Kokkos::ALL, Kokkos::ALL);
        auto const lab = Kokkos::subview(labels, Kokkos::make_pair(std::size_t(0), b), Kokkos::ALL);
        auto const t0 = std::chrono::steady_clock::now();
        generator.generate(space, std::uint64_t(first + i), img, lab);
        space.fence();
        auto const t1 = std::chrono::steady_clock::now();
        auto const hi = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), img);
        auto const hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lab);
        host_images.assign(hi.data(), hi.data() + b * ny * nx);
        host_labels.assign(hl.data(), hl.data() + b * K);
        writer.append(host_images.data(), host_labels.data(), b);
        sum.rank_generate_seconds += std::chrono::duration<double>(t1 - t0).count();
        sum.rank_write_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
        sum.rank_images += b;
      }
      auto const t0 = std::chrono::steady_clock::now();
      writer.finish();
      sum.rank_write_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++sum.rank_shards;
      if (options.progress)
        std::fprintf(stderr, "[lensing] rank %d: shard %zu (%zu images) done, %zu shard(s) this rank\n", comm.rank(), s,
                     m, sum.rank_shards);
    }
  } catch (std::exception const& e) {
    error = e.what();
  }
  sum.shards_written = std::size_t(comm.sum(std::uint64_t(sum.rank_shards)));
  sum.images_generated = std::size_t(comm.sum(std::uint64_t(sum.rank_images)));
  agree_on_errors(comm, error, where, " (the completed shards are kept: run again to complete the missing ones)");

  // The master, on rank 0.
  if (comm.rank() == 0) {
    try {
      io::Hdf5Attributes master = set_attributes;
      master.set("shards", std::uint64_t(num_shards));
      detail::write_master(sum.master, stem, n, options.shard_size, ny, nx, names, master, where);
    } catch (std::exception const& e) {
      error = e.what();
    }
  }
  agree_on_errors(comm, error, where, "");
  sum.seconds = comm.max(std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count());
  return sum;
}

}  // namespace mpi
}  // namespace lensing

#endif  // LENSING_MPI_SHARD_HPP
