#ifndef LENSING_NN_SERIALIZE_HPP
#define LENSING_NN_SERIALIZE_HPP

/// \file
/// Saving and loading the weights of a network (`Sequential<L...>` or any
/// type with `for_each_layer`) in lensing's binary weight format.
///
/// ## Format "LNSNNW", version 2 (all integers little-endian)
/// | bytes | content |
/// |-------|---------|
/// | 8     | magic `"LNSNNW01"` |
/// | 4     | uint32 format version (2) |
/// | 4     | uint32 bytes per scalar (4 = float, 8 = double) |
/// | 8     | uint64 number of layers L |
/// | 16 L  | per layer: uint64 number of parameters, uint64 number of state values |
/// | ...   | per layer: its parameters then its state, IEEE-754 scalars, little-endian |
/// | 8     | uint64 FNV-1a 64 checksum of every preceding byte (magic included) |
///
/// Parameters are in each layer's documented order (PyTorch's), state is
/// e.g. BatchNorm's running mean and variance.  Loading checks the magic,
/// version, scalar size, layer count, every layer's counts and the file
/// length (before reading the data, so a wrong file costs no allocation),
/// then the checksum, then that every value is finite; so a file is only
/// accepted by a network of the same architecture and scalar type, and any
/// single corrupted byte is rejected (FNV-1a changes its state injectively
/// at every byte: (h xor b) and the multiplication by an odd prime are both
/// bijections mod 2^64, so one changed byte always changes the result).
/// The round trip is bit-exact.  save_weights refuses a network with NaN or
/// infinite weights (std::invalid_argument) and replaces the file
/// atomically (a temporary beside it, then a rename; io/file.hpp), so a
/// failed save leaves the previous file intact.  Version 1 files (no
/// checksum) are refused with a message saying so: load them with the
/// release that wrote them and save again.
///
/// Errors: std::runtime_error ("lensing::nn::load_weights: ...") for a
/// missing, unreadable, truncated, corrupted or foreign file or non-finite
/// values; std::invalid_argument for an architecture or scalar-type
/// mismatch.  (The host must be little-endian; checked.)
///
/// The encoding itself (detail::encode_weights / detail::decode_weights)
/// works on host vectors without Kokkos, for tools and the fuzz target.

#include <lensing/core/errors.hpp>
#include <lensing/io/file.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace lensing {
namespace nn {

namespace detail {
inline constexpr char weights_magic[9] = "LNSNNW01";
inline constexpr std::uint32_t weights_version = 2;
inline bool little_endian() {
  std::uint32_t const one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

// Stream helpers (also used by nn/train.hpp's checkpoints).
template <class T>
void write_pod(std::ofstream& f, T v) {
  f.write(reinterpret_cast<char const*>(&v), sizeof(T));
}
template <class T>
bool read_pod(std::ifstream& f, T& v) {
  return static_cast<bool>(f.read(reinterpret_cast<char*>(&v), sizeof(T)));
}
template <class V>
void write_vector(std::ofstream& f, V const& v) {
  if (v.extent(0) == 0) return;
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  f.write(reinterpret_cast<char const*>(h.data()), std::streamsize(sizeof(typename V::value_type) * h.extent(0)));
}

/// FNV-1a, 64 bits, continuing from `h`.
inline std::uint64_t fnv1a64(void const* data, std::size_t n, std::uint64_t h = 0xcbf29ce484222325ULL) {
  auto const* p = static_cast<unsigned char const*>(data);
  for (std::size_t i = 0; i < n; ++i)
    h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

template <class T>
void append_pod(std::string& out, T v) {
  out.append(reinterpret_cast<char const*>(&v), sizeof(T));
}

/// The bytes of a weight file holding `blocks` (per layer: parameters, then
/// state; so 2 L blocks).  Host only, no Kokkos.
template <class Scalar>
std::string encode_weights(std::vector<std::vector<Scalar>> const& blocks) {
  std::string out(detail::weights_magic, 8);
  append_pod<std::uint32_t>(out, weights_version);
  append_pod<std::uint32_t>(out, sizeof(Scalar));
  append_pod<std::uint64_t>(out, blocks.size() / 2);
  for (auto const& b : blocks)
    append_pod<std::uint64_t>(out, b.size());
  for (auto const& b : blocks)
    if (!b.empty()) out.append(reinterpret_cast<char const*>(b.data()), b.size() * sizeof(Scalar));
  append_pod<std::uint64_t>(out, fnv1a64(out.data(), out.size()));
  return out;
}

/// Decode a weight file: `data` holds its first `available` bytes, the file
/// has `file_bytes` bytes, and the network expects `counts` (2 L values:
/// per layer, parameters then state).  Validates everything (see the file
/// comment) before it allocates, and returns the 2 L blocks.
template <class Scalar>
std::vector<std::vector<Scalar>> decode_weights(char const* data, std::size_t available, std::uint64_t file_bytes,
                                                std::vector<std::uint64_t> const& counts, std::string const& path) {
  char const* where = "lensing::nn::load_weights";
  auto const fail = [&](std::string const& what) {
    throw std::runtime_error(std::string(where) + ": '" + path + "': " + what);
  };
  std::size_t pos = 0;
  auto const read = [&](auto& v) {
    if (pos + sizeof(v) > available) return false;
    std::memcpy(&v, data + pos, sizeof(v));
    pos += sizeof(v);
    return true;
  };
  if (available < 8 || std::memcmp(data, weights_magic, 8) != 0) fail("not a lensing weight file (bad magic)");
  pos = 8;
  std::uint32_t version = 0, bytes = 0;
  std::uint64_t layers = 0;
  if (!read(version) || !read(bytes) || !read(layers)) fail("truncated header");
  if (version == 1)
    fail(
        "format version 1 (written before weight files had a checksum) is no longer read; load it with the "
        "release that wrote it and save it again");
  if (version != weights_version) fail("unsupported format version " + std::to_string(version));
  if (bytes != sizeof(Scalar))
    throw_invalid_argument(where, "'" + path + "' holds " + std::to_string(bytes) + "-byte scalars, the network uses " +
                                      std::to_string(sizeof(Scalar)) + "-byte scalars");
  std::uint64_t const want_layers = counts.size() / 2;
  if (layers != want_layers)
    throw_invalid_argument(where, "'" + path + "' has " + std::to_string(layers) + " layers, the network has " +
                                      std::to_string(want_layers));
  std::uint64_t total = 0;
  for (std::uint64_t i = 0; i < layers; ++i) {
    std::uint64_t np = 0, ns = 0;
    if (!read(np) || !read(ns)) fail("truncated header");
    if (np != counts[2 * i] || ns != counts[2 * i + 1])
      throw_invalid_argument(where, "'" + path + "': layer " + std::to_string(i) + " has " + std::to_string(np) +
                                        " parameters and " + std::to_string(ns) +
                                        " state values in the file, the network's has " +
                                        std::to_string(counts[2 * i]) + " and " + std::to_string(counts[2 * i + 1]));
    total += np + ns;  // the network's own sizes: no overflow
  }
  std::uint64_t const expected = pos + total * sizeof(Scalar) + 8;
  if (file_bytes < expected)
    fail("truncated data: the file has " + std::to_string(file_bytes) + " bytes, the header declares " +
         std::to_string(expected));
  if (file_bytes > expected) fail("trailing bytes after the data");
  if (available < expected) fail("truncated data (the file shrank while it was read)");
  std::uint64_t stored = 0;
  std::memcpy(&stored, data + expected - 8, 8);
  if (fnv1a64(data, expected - 8) != stored) fail("checksum mismatch: the file is corrupted");
  std::vector<std::vector<Scalar>> out;
  out.reserve(counts.size());
  for (std::size_t b = 0; b < counts.size(); ++b) {
    out.emplace_back(counts[b]);
    if (counts[b] > 0) std::memcpy(out.back().data(), data + pos, counts[b] * sizeof(Scalar));
    pos += counts[b] * sizeof(Scalar);
    for (std::size_t j = 0; j < out.back().size(); ++j)
      if (!std::isfinite(out.back()[j]))
        fail("layer " + std::to_string(b / 2) + " has a non-finite " + (b % 2 ? "state value" : "parameter") +
             " (NaN or inf) at index " + std::to_string(j));
  }
  return out;
}

template <class V>
std::vector<typename V::non_const_value_type> host_vector(V const& v) {
  std::vector<typename V::non_const_value_type> out(v.extent(0));
  if (v.extent(0) == 0) return out;
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  std::copy(h.data(), h.data() + h.extent(0), out.begin());
  return out;
}
}  // namespace detail

namespace detail {
/// The bytes of the weight file of `net` (the format above); `path` only
/// names the file in messages.  std::invalid_argument if a value is NaN or
/// infinite.  Shared by save_weights and the training checkpoints
/// (checkpoint.hpp), which embed these bytes.
template <class Net>
std::string encode_network(Net const& net, std::string const& path, char const* where) {
  using Scalar = typename Net::scalar_type;
  if (!little_endian()) throw std::runtime_error(std::string(where) + ": big-endian hosts are not supported");
  std::vector<std::vector<Scalar>> blocks;
  std::size_t layer = 0;
  net.for_each_layer([&](auto const& l) {
    blocks.push_back(host_vector(l.parameters()));
    blocks.push_back(host_vector(l.state()));
    for (std::size_t b = blocks.size() - 2; b < blocks.size(); ++b)
      for (std::size_t j = 0; j < blocks[b].size(); ++j)
        if (!std::isfinite(blocks[b][j]))
          throw_invalid_argument(where, "layer " + std::to_string(layer) + " has a non-finite " +
                                            (b % 2 ? "state value" : "parameter") + " at index " + std::to_string(j) +
                                            "; not saving '" + path + "'");
    ++layer;
  });
  return encode_weights(blocks);
}

/// Per layer of `net`: its parameter count, then its state count (what
/// decode_weights checks a file against), and the byte size of its file.
template <class Net>
std::vector<std::uint64_t> network_counts(Net const& net, std::uint64_t& file_bytes) {
  using Scalar = typename Net::scalar_type;
  std::vector<std::uint64_t> counts;
  file_bytes = 24 + 8;
  net.for_each_layer([&](auto const& l) {
    counts.push_back(std::uint64_t(l.num_params()));
    counts.push_back(std::uint64_t(l.num_state()));
    file_bytes += 16 + (counts[counts.size() - 2] + counts.back()) * sizeof(Scalar);
  });
  return counts;
}

/// Load the weight-file bytes data[0, available) (of a file of `file_bytes`
/// bytes) into `net`, validated as load_weights does; `net` is unchanged on
/// any error.  Shared by load_weights and the training checkpoints.
template <class Net>
void decode_network(Net& net, char const* data, std::size_t available, std::uint64_t file_bytes,
                    std::string const& path) {
  using Scalar = typename Net::scalar_type;
  std::uint64_t expected = 0;
  auto const counts = network_counts(net, expected);
  auto const blocks = decode_weights<Scalar>(data, available, file_bytes, counts, path);
  std::size_t i = 0;
  auto const put = [](auto const& v, std::vector<Scalar> const& src) {
    if (v.extent(0) == 0) return;
    Kokkos::View<Scalar const*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>> h(src.data(), src.size());
    Kokkos::deep_copy(v, h);
  };
  net.for_each_layer([&](auto const& l) {
    put(l.parameters(), blocks[2 * i]);
    put(l.state(), blocks[2 * i + 1]);
    ++i;
  });
}
}  // namespace detail

/// Write the parameters and state of every layer of `net` to `path`
/// (replacing it atomically).  std::invalid_argument if a value is NaN or
/// infinite; std::runtime_error if the file cannot be written.
template <class Net>
void save_weights(Net const& net, std::string const& path) {
  char const* where = "lensing::nn::save_weights";
  auto const bytes = detail::encode_network(net, path, where);
  io::AtomicFile file(path, where);
  {
    std::ofstream f(file.temp_path(), std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error(std::string(where) + ": cannot open '" + path + "' for writing");
    f.write(bytes.data(), std::streamsize(bytes.size()));
    f.close();
    if (!f) throw std::runtime_error(std::string(where) + ": writing '" + path + "' failed (disk full?)");
  }
  file.commit();
}

/// Read weights written by save_weights into `net` (same architecture and
/// scalar type).  On any error the network is left unchanged.
template <class Net>
void load_weights(Net& net, std::string const& path) {
  char const* where = "lensing::nn::load_weights";
  auto const fail = [&](std::string const& what) {
    throw std::runtime_error(std::string(where) + ": '" + path + "': " + what);
  };
  if (!detail::little_endian()) fail("big-endian hosts are not supported");
  std::ifstream f(path, std::ios::binary);
  long long const file_bytes = io::file_size(path);
  if (!f || file_bytes < 0) fail("cannot open the file (missing or unreadable)");
  std::uint64_t expected = 0;
  detail::network_counts(net, expected);
  // Read no more than a file of this network's size: a foreign or huge file
  // costs no allocation beyond that.
  std::string bytes(static_cast<std::size_t>(std::min<std::uint64_t>(std::uint64_t(file_bytes), expected)), '\0');
  if (!bytes.empty() && !f.read(&bytes[0], std::streamsize(bytes.size()))) fail("cannot read the file");
  detail::decode_network(net, bytes.data(), bytes.size(), std::uint64_t(file_bytes), path);
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_SERIALIZE_HPP
