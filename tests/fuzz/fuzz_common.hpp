// Shared by the libFuzzer targets of lensing's file readers: the input is
// written to a scratch file (the readers take paths), on tmpfs when there is
// one, since rewriting a file on ext4 forces a flush each time.
#ifndef LENSING_FUZZ_COMMON_HPP
#define LENSING_FUZZ_COMMON_HPP

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace lensing_fuzz {

/// A per-process scratch path with the given suffix.
inline std::string const& scratch_path(char const* suffix) {
  static std::string const path = [&] {
    char const* dir = std::getenv("LENSING_FUZZ_TMP");
    if (!dir) dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/lensing_fuzz_" + std::to_string(long(::getpid())) + suffix;
  }();
  return path;
}

/// Write the input to `path`; aborts if it cannot (an environment error,
/// not a finding).
inline void write_input(std::string const& path, std::uint8_t const* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
}

/// A property the reader promises; a violation is a finding.
inline void require(bool ok, char const* what) {
  if (!ok) {
    std::fprintf(stderr, "lensing fuzz: property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace lensing_fuzz

#endif
