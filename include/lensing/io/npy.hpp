#ifndef LENSING_IO_NPY_HPP
#define LENSING_IO_NPY_HPP

/// \file
/// NumPy `.npy` files (format version 1.0, NEP 1 / numpy.lib.format): write
/// and read float32, float64, int32 and int64 arrays of any rank, little-endian,
/// C (row-major) order, from and to Kokkos Views in any memory space (copied
/// through the host).  Host only.
///
/// The format is written here rather than through xtensor's xnpy (0.24):
/// xnpy does not notice a truncated file (it reads the data block without
/// checking the stream), gives no context in its errors, converts no dtypes
/// and would pull xtensor's expression headers into every user of a View
/// dump.  The format is small: the magic "\x93NUMPY", version bytes 1 0, a
/// little-endian uint16 header length, an ASCII Python-dict header
/// `{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }` padded with
/// spaces and '\n' so that the data starts at a multiple of 64 bytes, then the
/// raw data.  The tests read our files with xnpy and numpy-written bytes with
/// ours.
///
/// Reading converts between the four dtypes (e.g. numpy's default float64
/// stamps into a float simulation) and also accepts version 2.0 headers;
/// big-endian data, Fortran order and other dtypes are refused with a clear
/// `std::runtime_error`.

#include <lensing/core/errors.hpp>

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace lensing {
namespace io {

namespace detail {

[[noreturn]] inline void npy_fail(char const* where, std::string const& path, std::string const& what) {
  throw std::runtime_error(std::string(where) + ": " + path + ": " + what);
}

template <class T>
constexpr char const* npy_descr() {
  if constexpr (std::is_same<T, float>::value) return "<f4";
  if constexpr (std::is_same<T, double>::value) return "<f8";
  if constexpr (std::is_same<T, std::int32_t>::value) return "<i4";
  if constexpr (std::is_same<T, std::int64_t>::value) return "<i8";
  return "";
}

template <class T>
constexpr bool is_npy_type_v = std::is_same<T, float>::value || std::is_same<T, double>::value ||
                               std::is_same<T, std::int32_t>::value || std::is_same<T, std::int64_t>::value;

inline bool host_is_little_endian() {
  std::uint16_t const x = 1;
  unsigned char c;
  std::memcpy(&c, &x, 1);
  return c == 1;
}

/// The value of key `key` in the header dict, as raw text up to the next
/// top-level ',' or '}' (a shape tuple is returned with its parentheses).
inline std::string npy_header_value(std::string const& header, std::string const& key, char const* where,
                                    std::string const& path) {
  auto pos = header.find("'" + key + "'");
  if (pos == std::string::npos) pos = header.find("\"" + key + "\"");
  if (pos == std::string::npos) npy_fail(where, path, "header has no '" + key + "' entry");
  pos = header.find(':', pos);
  if (pos == std::string::npos) npy_fail(where, path, "malformed header");
  ++pos;
  while (pos < header.size() && header[pos] == ' ')
    ++pos;
  size_t end = pos;
  if (end < header.size() && header[end] == '(') {
    end = header.find(')', end);
    if (end == std::string::npos) npy_fail(where, path, "malformed shape in header");
    return header.substr(pos, end - pos + 1);
  }
  while (end < header.size() && header[end] != ',' && header[end] != '}')
    ++end;
  auto v = header.substr(pos, end - pos);
  while (!v.empty() && v.back() == ' ')
    v.pop_back();
  return v;
}

template <class From, class To>
void npy_convert(char const* bytes, size_t n, To* out) {
  for (size_t i = 0; i < n; ++i) {
    From v;
    std::memcpy(&v, bytes + i * sizeof(From), sizeof(From));
    out[i] = static_cast<To>(v);
  }
}

}  // namespace detail

//----------------------------------------------------------------------------
// Host arrays.

/// An array read from a .npy file: shape and row-major data converted to T.
template <class T>
struct NpyArray {
  std::vector<std::size_t> shape;
  std::vector<T> data;
  /// The file's dtype descr, e.g. "<f8".
  std::string descr;
};

/// Write `data` (row-major, product(shape) elements) as a version 1.0 .npy
/// file.  Throws std::runtime_error if the file cannot be written.
template <class T>
void write_npy(std::string const& path, T const* data, std::vector<std::size_t> const& shape) {
  static_assert(detail::is_npy_type_v<T>, "lensing::io::write_npy: element type must be float, double, int32 or int64");
  constexpr char const* where = "lensing::io::write_npy";
  if (!detail::host_is_little_endian()) detail::npy_fail(where, path, "big-endian hosts are not supported");
  std::size_t n = 1;
  for (auto s : shape)
    n *= s;
  std::ostringstream h;
  h << "{'descr': '" << detail::npy_descr<T>() << "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i)
    h << shape[i] << (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
  // numpy writes "(3,)" for rank 1 and "(2, 3)" otherwise; both parse the same.
  h << "), }";
  std::string header = h.str();
  // magic(6) + version(2) + length(2) + header + '\n' padded to a multiple of 64.
  size_t const total = 10 + header.size() + 1;
  size_t const padded = (total + 63) / 64 * 64;
  header.append(padded - total, ' ');
  header.push_back('\n');
  if (header.size() > 65535) detail::npy_fail(where, path, "header too long for format 1.0 (rank too high)");
  std::ofstream f(path, std::ios::binary);
  if (!f) detail::npy_fail(where, path, "cannot open for writing");
  char const magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
  f.write(magic, 8);
  unsigned char const len[2] = {static_cast<unsigned char>(header.size() & 0xff),
                                static_cast<unsigned char>(header.size() >> 8)};
  f.write(reinterpret_cast<char const*>(len), 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  if (n > 0) f.write(reinterpret_cast<char const*>(data), static_cast<std::streamsize>(n * sizeof(T)));
  f.flush();
  if (!f) detail::npy_fail(where, path, "write failed (disk full?)");
}

/// Read a .npy file, converting its dtype (f4, f8, i4, i8) to T.  Throws
/// std::runtime_error naming the file for a missing, truncated or unsupported
/// file.
template <class T>
NpyArray<T> read_npy(std::string const& path) {
  static_assert(detail::is_npy_type_v<T>, "lensing::io::read_npy: element type must be float, double, int32 or int64");
  constexpr char const* where = "lensing::io::read_npy";
  std::ifstream f(path, std::ios::binary);
  if (!f) detail::npy_fail(where, path, "cannot open (missing file?)");
  char magic[8];
  if (!f.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) detail::npy_fail(where, path, "not a .npy file");
  std::size_t header_len = 0;
  unsigned char len[4] = {0, 0, 0, 0};
  if (magic[6] == 1) {
    if (!f.read(reinterpret_cast<char*>(len), 2)) detail::npy_fail(where, path, "truncated header");
    header_len = len[0] | (std::size_t(len[1]) << 8);
  } else if (magic[6] == 2 || magic[6] == 3) {
    if (!f.read(reinterpret_cast<char*>(len), 4)) detail::npy_fail(where, path, "truncated header");
    header_len = len[0] | (std::size_t(len[1]) << 8) | (std::size_t(len[2]) << 16) | (std::size_t(len[3]) << 24);
  } else {
    detail::npy_fail(where, path, "unsupported format version " + std::to_string(int(magic[6])));
  }
  if (header_len > (1u << 24)) detail::npy_fail(where, path, "header length implausible");
  std::string header(header_len, '\0');
  if (!f.read(&header[0], static_cast<std::streamsize>(header_len))) detail::npy_fail(where, path, "truncated header");

  NpyArray<T> out;
  auto descr = detail::npy_header_value(header, "descr", where, path);
  if (descr.size() < 2) detail::npy_fail(where, path, "malformed descr");
  descr = descr.substr(1, descr.size() - 2);  // strip the quotes
  out.descr = descr;
  auto const fortran = detail::npy_header_value(header, "fortran_order", where, path);
  if (fortran != "False") detail::npy_fail(where, path, "Fortran-order arrays are not supported (save with C order)");
  auto const shape_text = detail::npy_header_value(header, "shape", where, path);
  std::size_t n = 1;
  {
    std::string digits;
    for (size_t i = 1; i < shape_text.size(); ++i) {
      char const c = shape_text[i];
      if (c >= '0' && c <= '9') {
        digits.push_back(c);
      } else if (c == ',' || c == ')') {
        if (!digits.empty()) {
          out.shape.push_back(std::stoull(digits));
          n *= out.shape.back();
          digits.clear();
        }
      } else if (c != ' ' && c != 'L') {
        detail::npy_fail(where, path, "malformed shape " + shape_text);
      }
    }
  }
  std::size_t size = 0;
  if (descr == "<f4" || descr == "<i4") {
    size = 4;
  } else if (descr == "<f8" || descr == "<i8") {
    size = 8;
  } else if (descr == "|i1" || descr == "|u1" || descr == "<u4" || descr == "<u8" || descr == "<i2" || descr == "<f2") {
    detail::npy_fail(where, path, "dtype " + descr + " is not supported (use float32, float64, int32 or int64)");
  } else {
    detail::npy_fail(where, path,
                     "dtype " + descr + " is not supported (little-endian float32, float64, int32 or int64 only)");
  }
  if (!detail::host_is_little_endian()) detail::npy_fail(where, path, "big-endian hosts are not supported");
  std::vector<char> bytes(n * size);
  if (n > 0 && !f.read(bytes.data(), static_cast<std::streamsize>(bytes.size())))
    detail::npy_fail(where, path, "truncated data: expected " + std::to_string(n) + " elements of " + descr);
  out.data.resize(n);
  if (descr == "<f4") detail::npy_convert<float>(bytes.data(), n, out.data.data());
  if (descr == "<f8") detail::npy_convert<double>(bytes.data(), n, out.data.data());
  if (descr == "<i4") detail::npy_convert<std::int32_t>(bytes.data(), n, out.data.data());
  if (descr == "<i8") detail::npy_convert<std::int64_t>(bytes.data(), n, out.data.data());
  return out;
}

//----------------------------------------------------------------------------
// Kokkos Views (any memory space; LayoutRight or contiguous rank <= 1).

/// Write a View of any rank (its extents become the shape).  Fences the
/// default execution space of the view's memory through the deep copy.
template <class View, class = std::enable_if_t<Kokkos::is_view<View>::value>>
void write_npy(std::string const& path, View const& view) {
  static_assert(Kokkos::is_view<View>::value, "lensing::io::write_npy: argument must be a Kokkos::View");
  using T = typename View::non_const_value_type;
  static_assert(detail::is_npy_type_v<T>, "lensing::io::write_npy: element type must be float, double, int32 or int64");
  static_assert(View::rank <= 1 || std::is_same<typename View::array_layout, Kokkos::LayoutRight>::value,
                "lensing::io::write_npy: multi-dimensional views must be LayoutRight (C order)");
  check_argument(view.span_is_contiguous(), "lensing::io::write_npy",
                 "view must be contiguous (not a strided subview)");
  auto const host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), view);
  std::vector<std::size_t> shape;
  for (unsigned r = 0; r < View::rank; ++r)
    shape.push_back(view.extent(r));
  write_npy(path, host.data(), shape);
}

/// Read a .npy file into `view`, whose rank and extents must match the file's
/// shape (std::invalid_argument otherwise); the dtype is converted.
template <class View, class = std::enable_if_t<Kokkos::is_view<View>::value>>
void read_npy(std::string const& path, View const& view) {
  static_assert(Kokkos::is_view<View>::value, "lensing::io::read_npy: argument must be a Kokkos::View");
  using T = typename View::non_const_value_type;
  static_assert(!std::is_const<typename View::value_type>::value, "lensing::io::read_npy: view must be writable");
  static_assert(View::rank <= 1 || std::is_same<typename View::array_layout, Kokkos::LayoutRight>::value,
                "lensing::io::read_npy: multi-dimensional views must be LayoutRight (C order)");
  auto const a = read_npy<T>(path);
  std::string want = "(", got = "(";
  bool ok = a.shape.size() == View::rank;
  for (unsigned r = 0; r < View::rank; ++r) {
    want += std::to_string(view.extent(r)) + (r + 1 < View::rank ? ", " : "");
    ok = ok && r < a.shape.size() && a.shape[r] == view.extent(r);
  }
  for (size_t r = 0; r < a.shape.size(); ++r)
    got += std::to_string(a.shape[r]) + (r + 1 < a.shape.size() ? ", " : "");
  check_argument(ok, "lensing::io::read_npy", path + " has shape " + got + ") but the view has extents " + want + ")");
  check_argument(view.span_is_contiguous(), "lensing::io::read_npy", "view must be contiguous (not a strided subview)");
  auto host = Kokkos::create_mirror_view(Kokkos::HostSpace(), view);
  std::copy(a.data.begin(), a.data.end(), host.data());
  Kokkos::deep_copy(view, host);
}

}  // namespace io
}  // namespace lensing

#endif  // LENSING_IO_NPY_HPP
