#ifndef LENSING_NN_SERIALIZE_HPP
#define LENSING_NN_SERIALIZE_HPP

/// \file
/// Saving and loading the weights of a network (`Sequential<L...>` or any
/// type with `for_each_layer`) in lensing's binary weight format.
///
/// ## Format "LNSNNW", version 1 (all integers little-endian)
/// | bytes | content |
/// |-------|---------|
/// | 8     | magic `"LNSNNW01"` |
/// | 4     | uint32 format version (1) |
/// | 4     | uint32 bytes per scalar (4 = float, 8 = double) |
/// | 8     | uint64 number of layers L |
/// | 16 L  | per layer: uint64 number of parameters, uint64 number of state values |
/// | ...   | per layer: its parameters then its state, IEEE-754 scalars, little-endian |
///
/// Parameters are in each layer's documented order (PyTorch's), state is
/// e.g. BatchNorm's running mean and variance.  Loading checks the magic,
/// version, scalar size, layer count, every layer's counts and the file
/// length, so a file is only accepted by a network of the same architecture
/// and scalar type; the round trip is bit-exact.  Errors: std::runtime_error
/// ("lensing::nn::load_weights: ...") for a missing, unreadable, truncated or
/// foreign file; std::invalid_argument for an architecture or scalar-type
/// mismatch.  (The host must be little-endian; checked.)

#include <lensing/core/errors.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

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
inline constexpr std::uint32_t weights_version = 1;
inline bool little_endian() {
  std::uint32_t const one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}
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
}  // namespace detail

/// Write the parameters and state of every layer of `net` to `path`.
template <class Net>
void save_weights(Net const& net, std::string const& path) {
  char const* where = "lensing::nn::save_weights";
  using Scalar = typename Net::scalar_type;
  if (!detail::little_endian()) throw std::runtime_error(std::string(where) + ": big-endian hosts are not supported");
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error(std::string(where) + ": cannot open '" + path + "' for writing");
  f.write(detail::weights_magic, 8);
  detail::write_pod<std::uint32_t>(f, detail::weights_version);
  detail::write_pod<std::uint32_t>(f, sizeof(Scalar));
  detail::write_pod<std::uint64_t>(f, Net::num_layers);
  net.for_each_layer([&](auto const& l) {
    detail::write_pod<std::uint64_t>(f, std::uint64_t(l.num_params()));
    detail::write_pod<std::uint64_t>(f, std::uint64_t(l.num_state()));
  });
  net.for_each_layer([&](auto const& l) {
    detail::write_vector(f, l.parameters());
    detail::write_vector(f, l.state());
  });
  f.flush();
  if (!f) throw std::runtime_error(std::string(where) + ": writing '" + path + "' failed");
}

/// Read weights written by save_weights into `net` (same architecture and scalar type).
template <class Net>
void load_weights(Net& net, std::string const& path) {
  char const* where = "lensing::nn::load_weights";
  using Scalar = typename Net::scalar_type;
  auto const fail = [&](std::string const& what) {
    throw std::runtime_error(std::string(where) + ": '" + path + "': " + what);
  };
  if (!detail::little_endian()) fail("big-endian hosts are not supported");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open the file (missing or unreadable)");
  char magic[8];
  if (!f.read(magic, 8) || std::memcmp(magic, detail::weights_magic, 8) != 0)
    fail("not a lensing weight file (bad magic)");
  std::uint32_t version = 0, bytes = 0;
  std::uint64_t layers = 0;
  if (!detail::read_pod(f, version) || !detail::read_pod(f, bytes) || !detail::read_pod(f, layers))
    fail("truncated header");
  if (version != detail::weights_version) fail("unsupported format version " + std::to_string(version));
  if (bytes != sizeof(Scalar))
    throw_invalid_argument(where, "'" + path + "' holds " + std::to_string(bytes) + "-byte scalars, the network uses " +
                                      std::to_string(sizeof(Scalar)) + "-byte scalars");
  if (layers != Net::num_layers)
    throw_invalid_argument(where, "'" + path + "' has " + std::to_string(layers) + " layers, the network has " +
                                      std::to_string(Net::num_layers));
  std::vector<std::uint64_t> counts(2 * layers);
  for (auto& c : counts)
    if (!detail::read_pod(f, c)) fail("truncated header");
  std::size_t i = 0;
  net.for_each_layer([&](auto const& l) {
    if (counts[2 * i] != std::uint64_t(l.num_params()) || counts[2 * i + 1] != std::uint64_t(l.num_state()))
      throw_invalid_argument(where, "'" + path + "': layer " + std::to_string(i) + " has " +
                                        std::to_string(counts[2 * i]) + " parameters and " +
                                        std::to_string(counts[2 * i + 1]) +
                                        " state values in the file, the network's has " +
                                        std::to_string(l.num_params()) + " and " + std::to_string(l.num_state()));
    ++i;
  });
  // Read everything first, so that a truncated file leaves the network unchanged.
  std::vector<std::vector<Scalar>> data;
  for (std::uint64_t c : counts) {
    data.emplace_back(c);
    if (c > 0 && !f.read(reinterpret_cast<char*>(data.back().data()), std::streamsize(c * sizeof(Scalar))))
      fail("truncated data");
  }
  if (f.peek() != std::ifstream::traits_type::eof()) fail("trailing bytes after the data");
  i = 0;
  auto const put = [](auto const& v, std::vector<Scalar> const& src) {
    if (v.extent(0) == 0) return;
    Kokkos::View<Scalar const*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>> h(src.data(), src.size());
    Kokkos::deep_copy(v, h);
  };
  net.for_each_layer([&](auto const& l) {
    put(l.parameters(), data[2 * i]);
    put(l.state(), data[2 * i + 1]);
    ++i;
  });
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_SERIALIZE_HPP
