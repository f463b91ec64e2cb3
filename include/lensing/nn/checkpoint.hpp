#ifndef LENSING_NN_CHECKPOINT_HPP
#define LENSING_NN_CHECKPOINT_HPP

/// \file
/// Training checkpoints: the state of a training loop (position, best
/// metric, optimizer, learning-rate schedule, dropout counters) as bytes, and
/// durable atomic file replacement.  One implementation for both loops:
/// train() (train.hpp, files <path>.weights / .best / .train) and fit()
/// (fit.hpp, one file holding the state and the weights).
///
/// ## Training state block (all integers little-endian)
/// | bytes  | content |
/// |--------|---------|
/// | 8      | magic (`"LNSNNT01"` for train's .train file, `"LNSNNF01"` for fit's checkpoint) |
/// | 4      | uint32 format version (2; version 1, train's former files without counters, is read) |
/// | 4      | uint32 bytes per scalar of the network |
/// | 8 x 3  | int64 next epoch, int64 best epoch (-1: none), double best metric |
/// | 8 x 3  | int64 epochs without improvement, int64 optimizer step count, double learning rate |
/// | 1 + 40 | uint8 has schedule, 5 doubles of the schedule's state (LRSchedule::state) |
/// | 8 + 8  | uint64 number of network parameters, uint64 number V of optimizer state vectors |
/// | V x .. | per vector: uint64 length, its scalars |
/// | 8 + 16C | (version 2) uint64 number C of Dropout layers, per layer (in order) uint64 seed, uint64 mask counter |
///
/// fit()'s checkpoint file is that block followed by uint64 n, n bytes of
/// the network's weight file (serialize.hpp), uint64 m, m bytes of the best
/// epoch's weight file (m = 0: none), and a uint64 FNV-1a 64 checksum of
/// every preceding byte.
///
/// Files are replaced durably and atomically (write_file_durably): the bytes
/// go to `<path>.tmp` in the same directory, which is fsync'ed, closed and
/// renamed onto `<path>`, and then the directory is fsync'ed; so after a
/// failure at any point (full disk, unwritable temporary, the process
/// killed, power loss after the call returned) `<path>` is either the
/// previous complete file or the new complete one.
///
/// Errors: std::runtime_error("<where>: '<path>': ...") for unreadable,
/// truncated, corrupted or foreign files and failed writes;
/// std::invalid_argument for a checkpoint of another network, scalar type
/// or optimizer.

#include <lensing/core/errors.hpp>
#include <lensing/nn/serialize.hpp>

#include <Kokkos_Core.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace lensing {
namespace nn {

/// The scalar state of a training loop saved in a checkpoint.
struct TrainingState {
  std::int64_t next_epoch = 0;          ///< first epoch still to run
  std::int64_t best_epoch = -1;         ///< epoch of the best monitored metric, -1: none yet
  double best_metric = 0;               ///< its value
  std::int64_t wait = 0;                ///< epochs without improvement
  std::int64_t optimizer_steps = 0;     ///< the optimizer's step count
  double lr = 0;                        ///< the optimizer's rate
  bool has_schedule = false;            ///< a learning-rate schedule was used
  std::array<double, 5> schedule{};     ///< its state (LRSchedule::state)
  std::vector<std::uint64_t> counters;  ///< per top-level Dropout layer, in order: its seed, its mask counter
};

namespace detail {
inline constexpr std::uint32_t training_state_version = 2;

template <class L, class = void>
struct has_counter : std::false_type {};
template <class L>
struct has_counter<L,
                   std::void_t<decltype(std::declval<L const&>().counter()), decltype(std::declval<L const&>().seed()),
                               decltype(std::declval<L&>().set_counter(std::uint64_t(0))),
                               decltype(std::declval<L&>().initialize(std::uint64_t(0)))>> : std::true_type {};

/// (seed, mask counter) of each of the network's top-level stochastic
/// layers (Dropout), flat: what decides the masks of the next forward calls.
template <class Net>
std::vector<std::uint64_t> layer_counters(Net const& net) {
  std::vector<std::uint64_t> c;
  net.for_each_layer([&](auto const& l) {
    if constexpr (has_counter<std::decay_t<decltype(l)>>::value) {
      c.push_back(std::uint64_t(l.seed()));
      c.push_back(std::uint64_t(l.counter()));
    }
  });
  return c;
}
template <class Net>
void set_layer_counters(Net& net, std::vector<std::uint64_t> const& c, std::string const& path, char const* where) {
  check_argument(c.size() == layer_counters(net).size(), where,
                 "'" + path + "' holds " + std::to_string(c.size() / 2) + " dropout layers' states, the network has " +
                     std::to_string(layer_counters(net).size() / 2) + " dropout layers");
  std::size_t i = 0;
  net.for_each_layer([&](auto& l) {
    if constexpr (has_counter<std::decay_t<decltype(l)>>::value) {
      l.initialize(c[i]);       // the seed (and a zero counter) ...
      l.set_counter(c[i + 1]);  // ... then the counter
      i += 2;
    }
  });
}

/// Bytes of the training state block (file comment) of a network of
/// `num_params` scalars of type Scalar trained by `opt`.
template <class Scalar, class Optimizer>
std::string encode_training_state(char const (&magic)[9], TrainingState const& s, Optimizer const& opt,
                                  long num_params) {
  std::string out(magic, 8);
  append_pod<std::uint32_t>(out, training_state_version);
  append_pod<std::uint32_t>(out, sizeof(Scalar));
  append_pod<std::int64_t>(out, s.next_epoch);
  append_pod<std::int64_t>(out, s.best_epoch);
  append_pod<double>(out, s.best_metric);
  append_pod<std::int64_t>(out, s.wait);
  append_pod<std::int64_t>(out, s.optimizer_steps);
  append_pod<double>(out, s.lr);
  append_pod<std::uint8_t>(out, s.has_schedule ? 1 : 0);
  for (double v : s.schedule)
    append_pod<double>(out, v);
  append_pod<std::uint64_t>(out, std::uint64_t(num_params));
  auto const vecs = opt.state_vectors();
  append_pod<std::uint64_t>(out, vecs.size());
  for (auto const& v : vecs) {
    auto const h = host_vector(v);
    append_pod<std::uint64_t>(out, h.size());
    out.append(reinterpret_cast<char const*>(h.data()), h.size() * sizeof(Scalar));
  }
  append_pod<std::uint64_t>(out, s.counters.size() / 2);
  for (auto c : s.counters)
    append_pod<std::uint64_t>(out, c);
  return out;
}

/// Bounds-checked reading of a byte buffer.
struct ByteReader {
  char const* data;
  std::size_t size, pos = 0;
  template <class T>
  bool read(T& v) {
    if (size - pos < sizeof(T)) return false;
    std::memcpy(&v, data + pos, sizeof(T));
    pos += sizeof(T);
    return true;
  }
  bool skip(std::size_t n) {
    if (size - pos < n) return false;
    pos += n;
    return true;
  }
};

/// A decoded training state block: the scalar state and the optimizer's
/// state vectors (host copies, loaded by load_optimizer_state).
template <class Scalar>
struct DecodedTrainingState {
  TrainingState state;
  std::vector<std::vector<Scalar>> optimizer;
};

/// Parse a training state block at r's position, checking it against the
/// network (num_params) and the optimizer (number and lengths of its state
/// vectors).  Modifies nothing but r's position.
template <class Scalar, class Optimizer>
DecodedTrainingState<Scalar> decode_training_state(ByteReader& r, char const (&magic)[9], Optimizer const& opt,
                                                   long num_params, std::string const& path, char const* where) {
  auto const fail = [&](std::string const& what) {
    throw std::runtime_error(std::string(where) + ": '" + path + "': " + what);
  };
  if (r.size - r.pos < 8 || std::memcmp(r.data + r.pos, magic, 8) != 0)
    fail("not a lensing training checkpoint of this kind (bad magic)");
  r.pos += 8;
  TrainingState s;
  std::uint32_t version = 0, bytes = 0;
  std::uint8_t has_sched = 0;
  std::uint64_t np = 0, nvec = 0;
  if (!r.read(version) || !r.read(bytes)) fail("truncated header");
  if (version != 1 && version != training_state_version) fail("unsupported format version " + std::to_string(version));
  if (!r.read(s.next_epoch) || !r.read(s.best_epoch) || !r.read(s.best_metric) || !r.read(s.wait) ||
      !r.read(s.optimizer_steps) || !r.read(s.lr) || !r.read(has_sched))
    fail("truncated header");
  for (double& v : s.schedule)
    if (!r.read(v)) fail("truncated header");
  if (!r.read(np) || !r.read(nvec)) fail("truncated header");
  s.has_schedule = has_sched != 0;
  if (bytes != sizeof(Scalar))
    throw_invalid_argument(where, "'" + path + "' holds " + std::to_string(bytes) + "-byte scalars, the network uses " +
                                      std::to_string(sizeof(Scalar)));
  if (np != std::uint64_t(num_params))
    throw_invalid_argument(where, "'" + path + "' is for a network of " + std::to_string(np) +
                                      " parameters, this one has " + std::to_string(num_params));
  auto const vecs = opt.state_vectors();
  if (nvec != vecs.size())
    throw_invalid_argument(where, "'" + path + "' holds " + std::to_string(nvec) +
                                      " optimizer state vectors, the optimizer has " + std::to_string(vecs.size()));
  std::vector<std::pair<std::size_t, std::uint64_t>> spans;  // (offset, length) of each vector's data
  for (auto const& v : vecs) {
    std::uint64_t len = 0;
    if (!r.read(len)) fail("truncated optimizer state");
    if (len != std::uint64_t(v.extent(0)))
      throw_invalid_argument(where, "'" + path + "' holds an optimizer state vector of " + std::to_string(len) +
                                        " values, the optimizer has " + std::to_string(v.extent(0)));
    spans.emplace_back(r.pos, len);
    if (!r.skip(std::size_t(len) * sizeof(Scalar))) fail("truncated optimizer state");
  }
  if (s.optimizer_steps < 0 || s.next_epoch < 0 || !(s.lr > 0)) fail("invalid training state");
  if (version >= 2) {
    std::uint64_t nc = 0;
    if (!r.read(nc) || nc > (r.size - r.pos) / 16) fail("truncated layer counters");
    s.counters.resize(std::size_t(2 * nc));
    for (auto& c : s.counters)
      r.read(c);
  }
  DecodedTrainingState<Scalar> out{s, {}};
  for (std::size_t i = 0; i < vecs.size(); ++i) {
    std::vector<Scalar> buf(std::size_t(spans[i].second));
    if (!buf.empty()) std::memcpy(buf.data(), r.data + spans[i].first, buf.size() * sizeof(Scalar));
    for (Scalar x : buf)
      if (!std::isfinite(x)) fail("the optimizer state has NaN or infinite values");
    out.optimizer.push_back(std::move(buf));
  }
  return out;
}

/// Copy decoded state vectors into the optimizer (lengths checked by decode_training_state).
template <class Optimizer, class Scalar>
void load_optimizer_state(Optimizer& opt, std::vector<std::vector<Scalar>> const& vectors) {
  auto const vecs = opt.state_vectors();
  for (std::size_t i = 0; i < vecs.size() && i < vectors.size(); ++i) {
    if (vectors[i].empty()) continue;
    Kokkos::View<Scalar const*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>> h(vectors[i].data(),
                                                                                              vectors[i].size());
    Kokkos::deep_copy(vecs[i], h);
  }
}

/// Read a whole file into a string (runtime_error naming it if it cannot be read).
inline std::string read_file_bytes(std::string const& path, char const* where) {
  long long const n = io::file_size(path);
  std::ifstream f(path, std::ios::binary);
  if (!f || n < 0)
    throw std::runtime_error(std::string(where) + ": '" + path + "': cannot open the file (missing or unreadable)");
  std::string bytes(static_cast<std::size_t>(n), '\0');
  if (n > 0 && !f.read(&bytes[0], std::streamsize(n)))
    throw std::runtime_error(std::string(where) + ": '" + path + "': cannot read the file");
  return bytes;
}
}  // namespace detail

/// Replace `path` by `bytes` durably and atomically: write `<path>.tmp`
/// (same directory), fsync it, rename it onto `path`, fsync the directory.
/// On any failure `path` is untouched (the previous file stays valid), the
/// temporary is removed when it was created, and std::runtime_error("<where>:
/// '<path>': ...") says which step failed.  A stale `<path>.tmp` (a killed
/// writer's) is overwritten.  POSIX.
inline void write_file_durably(std::string const& path, std::string const& bytes, char const* where) {
  std::string const tmp = path + ".tmp";
  auto const fail = [&](std::string const& what, int err) {
    throw std::runtime_error(std::string(where) + ": '" + path + "': " + what + " (" +
                             std::error_code(err, std::generic_category()).message() + "); '" + path +
                             "' is unchanged");
  };
  int const fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create the temporary '" + tmp + "'", errno);
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t const w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int const err = w < 0 ? errno : EIO;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail("writing the temporary '" + tmp + "' failed", err);
    }
    done += std::size_t(w);
  }
  if (::fsync(fd) != 0) {
    int const err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail("fsync of the temporary '" + tmp + "' failed", err);
  }
  if (::close(fd) != 0) {
    int const err = errno;
    ::unlink(tmp.c_str());
    fail("closing the temporary '" + tmp + "' failed", err);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int const err = errno;
    ::unlink(tmp.c_str());
    fail("cannot rename '" + tmp + "' onto it", err);
  }
  // Make the rename itself durable (best effort: some file systems refuse
  // fsync on directories; the file is complete either way).
  auto const slash = path.find_last_of('/');
  std::string const dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int const dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_CHECKPOINT_HPP
