// libFuzzer target: lensing::io::read_hdf5_training_set on arbitrary bytes.
// A file is either read, with data matching its shape, or refused with
// std::runtime_error; nothing is allocated beyond what the file stores
// (-malloc_limit_mb in scripts/fuzz.sh).  libhdf5 itself is not
// instrumented: its crashes are seen, its leaks are suppressed (fuzz.sh).
// HDF5 1.10.8 crashes on some damaged variable-length strings (H5HG_read;
// lensing's own files hold none, see io/hdf5.hpp), which mutations can
// reach: a crash inside libhdf5 is a library defect to report upstream
// and to avoid in our format, not one of the reader's.
#include "fuzz_common.hpp"

#include <lensing/io/hdf5.hpp>

#include <cstdint>
#include <stdexcept>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  static bool const quiet = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)quiet;
  auto const& path = lensing_fuzz::scratch_path(".h5");
  lensing_fuzz::write_input(path, data, size);
  try {
    auto const s = lensing::io::read_hdf5_training_set(path);
    lensing_fuzz::require(s.images.size() == s.n * s.ny * s.nx, "images match the shape");
    lensing_fuzz::require(s.labels.size() == s.n * s.label_names.size(), "labels match the shape");
  } catch (std::runtime_error const&) {
  }
  return 0;
}
