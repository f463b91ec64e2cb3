// libFuzzer target: lensing::io::read_fits on arbitrary bytes, as float and
// as double.  A file is either read, with data matching its shape and no
// more pixels than the file has bytes, or refused with std::runtime_error;
// the cfitsio handle must be released on every path (LeakSanitizer reports
// a dropped one).
#include "fuzz_common.hpp"

#include <lensing/io/fits.hpp>

#include <cstdint>
#include <stdexcept>

namespace {

template <class T>
void read_as(std::string const& path, std::size_t file_bytes) {
  try {
    auto const img = lensing::io::read_fits<T>(path);
    std::size_t n = 1;
    for (auto e : img.shape)
      n *= e;
    lensing_fuzz::require(img.shape.size() == 2 || img.shape.size() == 3, "rank 2 or 3");
    lensing_fuzz::require(img.data.size() == n, "data size == product of the shape");
    lensing_fuzz::require(n <= file_bytes, "declared data fits in the file");
  } catch (std::runtime_error const&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  auto const& path = lensing_fuzz::scratch_path(".fits");
  lensing_fuzz::write_input(path, data, size);
  read_as<float>(path, size);
  read_as<double>(path, size);
  return 0;
}
