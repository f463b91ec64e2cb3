#ifndef LENSING_IO_FILE_HPP
#define LENSING_IO_FILE_HPP

/// \file
/// File-system helpers shared by the writers and readers of io/ and
/// nn/serialize.hpp.  Host only, no Kokkos.
///
/// - AtomicFile: replace a file by writing a temporary in the same directory
///   and renaming it over the target, so that a failed or interrupted write
///   (full disk, file-size limit, an exception, the process killed) leaves
///   the previous file intact and never a half-written file under the
///   target's name.  rename(2) within one directory is atomic on POSIX file
///   systems.  The temporary is removed on failure (only a SIGKILL between
///   creation and rename can leave one behind: `<target>.~<pid>-<n>.tmp`).
///   No fsync: this protects against failed writes and interrupted
///   processes, not against power loss.  The replaced file gets the default
///   permissions of a new file, and a symbolic link at the target is replaced
///   by a regular file.
/// - file_size, checked_multiply: validation before allocation (readers
///   compare what a header declares with what the file holds before they
///   allocate anything).

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <sys/stat.h>
#include <unistd.h>

namespace lensing {
namespace io {

/// Size in bytes of the regular file `path`, or -1 if it cannot be stat'ed or
/// is not a regular file.
inline long long file_size(std::string const& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  return static_cast<long long>(st.st_size);
}

/// a * b, or false if the product does not fit in std::uint64_t.
inline bool checked_multiply(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

namespace detail {
/// Convert one value, or return false if `To` cannot hold it (the rule is stated at read_npy).
template <class From, class To>
bool convert_checked(From v, To& out) {
  if constexpr (std::is_same<From, To>::value) {
    out = v;
    return true;
  } else if constexpr (std::is_floating_point<From>::value && std::is_floating_point<To>::value) {
    // Only double -> float can fail: a finite value beyond float's range
    // would become inf.  NaN and inf stay what they are.
    if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<To>::max()) return false;
    out = static_cast<To>(v);
    return true;
  } else if constexpr (std::is_floating_point<From>::value) {
    // To integer: finite, integral and in range (2^(bits-1) is exact in both
    // float and double); classification first, so NaN raises no FP flag.
    if (!std::isfinite(v) || v != std::trunc(v)) return false;
    From const limit = std::ldexp(From(1), std::numeric_limits<To>::digits);
    if (!(v >= -limit && v < limit)) return false;
    out = static_cast<To>(v);
    return true;
  } else if constexpr (std::is_floating_point<To>::value) {
    out = static_cast<To>(v);  // integer -> float: rounded to nearest
    return true;
  } else {
    if (v < From(std::numeric_limits<To>::min()) || v > From(std::numeric_limits<To>::max())) return false;
    out = static_cast<To>(v);
    return true;
  }
}

}  // namespace detail

/// A temporary file beside `path` that replaces `path` on commit().
///
/// Write to temp_path(), then call commit(); if commit() is not reached
/// (an exception), the destructor removes the temporary and `path` is
/// untouched.  Errors throw std::runtime_error("<where>: <path>: ...").
class AtomicFile {
 public:
  AtomicFile(std::string path, char const* where) : m_path(std::move(path)), m_where(where) {
    static std::atomic<unsigned long> counter{0};
    m_temp = m_path + ".~" + std::to_string(static_cast<long>(::getpid())) + "-" + std::to_string(counter++) + ".tmp";
    std::remove(m_temp.c_str());  // a leftover of a killed process that had our pid
  }
  AtomicFile(AtomicFile const&) = delete;
  AtomicFile& operator=(AtomicFile const&) = delete;
  ~AtomicFile() {
    if (!m_committed) std::remove(m_temp.c_str());
  }
  std::string const& path() const { return m_path; }
  std::string const& temp_path() const { return m_temp; }

  /// Rename the (closed, complete) temporary onto the target.
  void commit() {
    if (std::rename(m_temp.c_str(), m_path.c_str()) != 0) {
      std::error_code const ec(errno, std::generic_category());
      std::remove(m_temp.c_str());
      m_committed = true;
      throw std::runtime_error(std::string(m_where) + ": " + m_path + ": cannot rename the temporary file onto it (" +
                               ec.message() + ")");
    }
    m_committed = true;
  }

 private:
  std::string m_path, m_temp;
  char const* m_where;
  bool m_committed = false;
};

/// Write `size` bytes to `path` atomically (see AtomicFile).
inline void write_file_atomically(std::string const& path, void const* bytes, std::size_t size, char const* where) {
  AtomicFile file(path, where);
  {
    std::ofstream f(file.temp_path(), std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error(std::string(where) + ": " + path + ": cannot open for writing");
    if (size > 0) f.write(static_cast<char const*>(bytes), static_cast<std::streamsize>(size));
    f.close();
    if (!f) throw std::runtime_error(std::string(where) + ": " + path + ": write failed (disk full?)");
  }
  file.commit();
}

}  // namespace io
}  // namespace lensing

#endif  // LENSING_IO_FILE_HPP
