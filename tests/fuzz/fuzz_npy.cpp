// libFuzzer target: lensing::io::read_npy on arbitrary bytes, for every
// element type.  A file is either read, with data matching its shape and
// no more elements than the file has bytes for, or refused with
// std::runtime_error; nothing else (crash, sanitizer report, other
// exception, leak, large allocation) is allowed.
#include "fuzz_common.hpp"

#include <lensing/io/npy.hpp>

#include <cstdint>
#include <stdexcept>

namespace {

template <class T>
void read_as(std::string const& path, std::size_t file_bytes) {
  try {
    auto const a = lensing::io::read_npy<T>(path);
    std::size_t n = 1;
    for (auto e : a.shape)
      n *= e;
    lensing_fuzz::require(a.data.size() == n, "data size == product of the shape");
    std::size_t const item = (a.descr == "<f4" || a.descr == "<i4") ? 4 : 8;
    lensing_fuzz::require(n * item <= file_bytes, "declared data fits in the file");
  } catch (std::runtime_error const&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  auto const& path = lensing_fuzz::scratch_path(".npy");
  lensing_fuzz::write_input(path, data, size);
  read_as<float>(path, size);
  read_as<double>(path, size);
  read_as<std::int32_t>(path, size);
  read_as<std::int64_t>(path, size);
  return 0;
}
