// libFuzzer target: the weight-file decoder of lensing::nn::load_weights
// (nn::detail::decode_weights, the same code without a network), for a
// fixed small architecture in float and double, on the raw input and on the
// input with its checksum recomputed (so that the checks behind the
// checksum are reached too).  A file is either decoded, with the
// architecture's counts and only finite values, or refused with
// std::runtime_error / std::invalid_argument.
#include "fuzz_common.hpp"

#include <lensing/nn/serialize.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// Three layers: 3 parameters; 4 parameters and 2 state values; nothing.
std::vector<std::uint64_t> const counts = {3, 0, 4, 2, 0, 0};

template <class S>
void decode_as(std::string const& bytes) {
  try {
    auto const blocks =
        lensing::nn::detail::decode_weights<S>(bytes.data(), bytes.size(), bytes.size(), counts, "fuzz input");
    lensing_fuzz::require(blocks.size() == counts.size(), "one block per count");
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      lensing_fuzz::require(blocks[b].size() == counts[b], "block sizes are the architecture's");
      for (S v : blocks[b])
        lensing_fuzz::require(std::isfinite(v), "decoded values are finite");
    }
  } catch (std::runtime_error const&) {
  } catch (std::invalid_argument const&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  std::string bytes(reinterpret_cast<char const*>(data), size);
  decode_as<float>(bytes);
  decode_as<double>(bytes);
  if (bytes.size() >= 16) {
    std::uint64_t const sum = lensing::nn::detail::fnv1a64(bytes.data(), bytes.size() - 8);
    std::memcpy(&bytes[bytes.size() - 8], &sum, 8);
    decode_as<float>(bytes);
    decode_as<double>(bytes);
  }
  return 0;
}
