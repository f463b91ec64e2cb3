#ifndef LENSING_IO_NPY_HPP
#define LENSING_IO_NPY_HPP

/// \file
/// NumPy `.npy` files (format version 1.0, NEP 1 / numpy.lib.format): write
/// and read float32, float64, int32 and int64 arrays of any rank, little-endian,
/// C (row-major) order, from and to Kokkos Views in any memory space (copied
/// through the host).  Host only.
///
/// xtensor containers are read and written too: read_npy(path, xarray)
/// resizes an xt::xarray<T> (or checks the rank of an xt::xtensor<T, N>) and
/// fills it; write_npy(path, e) writes any xtensor expression (contiguous
/// row-major containers straight from their memory, anything else evaluated
/// once).  io/xtensor_views.hpp adapts Views and xtensor arrays to each other
/// without copying.
///
/// The format is written here rather than through xtensor's xnpy (0.24):
/// xnpy does not notice a truncated file (it reads the data block without
/// checking the stream), gives no context in its errors and converts no
/// dtypes.  The format is small: the magic "\x93NUMPY", version bytes 1 0, a
/// little-endian uint16 header length, an ASCII Python-dict header
/// `{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }` padded with
/// spaces and '\n' so that the data starts at a multiple of 64 bytes, then the
/// raw data.  The tests read our files with xnpy and numpy-written bytes with
/// ours.
///
/// Reading converts between the four dtypes (e.g. numpy's default float64
/// stamps into a float simulation) when the value survives the conversion
/// (read_npy states the rule; e.g. 1e300 read as float or NaN read as int32
/// throws), and also accepts version 2.0 and 3.0 headers; big-endian data,
/// Fortran order and other dtypes are refused with a clear
/// `std::runtime_error`.  Readers validate before they allocate: a header
/// is parsed strictly and the declared data must fit in the file.  Writing
/// replaces a file atomically (temporary + rename, io/file.hpp).

#include <lensing/core/errors.hpp>
#include <lensing/io/file.hpp>
#include <lensing/io/xtensor_views.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
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

/// The three entries of a .npy header.
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::size_t> shape;
};

/// Parse the header dict strictly: exactly the keys 'descr' (a string),
/// 'fortran_order' (True/False) and 'shape' (a tuple of non-negative
/// integers: "()", "(n,)", "(a, b)" or "(a, b,)"), each once, in any order,
/// followed only by padding (spaces, newlines, NULs).  Anything else, e.g.
/// "(2 3)", "'shape': 6" or "(3)", throws naming the file.
inline NpyHeader npy_parse_header(std::string const& h, char const* where, std::string const& path) {
  std::size_t i = 0;
  auto const fail = [&](std::string const& what) -> void {
    std::string shown = h.substr(0, 200);  // printable, without the padding
    for (auto& c : shown)
      if (c < ' ' || c > '~') c = ' ';
    while (!shown.empty() && shown.back() == ' ')
      shown.pop_back();
    npy_fail(where, path, "malformed header (" + what + " at byte " + std::to_string(i) + "): " + shown);
  };
  auto const skip = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t' || h[i] == '\n' || h[i] == '\r'))
      ++i;
  };
  auto const expect = [&](char c) {
    skip();
    if (i >= h.size() || h[i] != c) fail(std::string("expected '") + c + "'");
    ++i;
  };
  auto const quoted = [&]() -> std::string {
    skip();
    if (i >= h.size() || (h[i] != '\'' && h[i] != '"')) fail("expected a quoted string");
    char const q = h[i++];
    auto const close = h.find(q, i);
    if (close == std::string::npos) fail("unterminated string");
    std::string v = h.substr(i, close - i);
    i = close + 1;
    return v;
  };
  NpyHeader out;
  bool have_descr = false, have_fortran = false, have_shape = false;
  expect('{');
  for (;;) {
    skip();
    if (i < h.size() && h[i] == '}') break;
    std::string const key = quoted();
    expect(':');
    skip();
    if (key == "descr") {
      if (have_descr) fail("duplicate 'descr'");
      out.descr = quoted();
      have_descr = true;
    } else if (key == "fortran_order") {
      if (have_fortran) fail("duplicate 'fortran_order'");
      if (h.compare(i, 4, "True") == 0) {
        out.fortran_order = true;
        i += 4;
      } else if (h.compare(i, 5, "False") == 0) {
        i += 5;
      } else {
        fail("'fortran_order' must be True or False");
      }
      have_fortran = true;
    } else if (key == "shape") {
      if (have_shape) fail("duplicate 'shape'");
      if (i >= h.size() || h[i] != '(') fail("'shape' must be a tuple such as (2, 3) or (3,)");
      ++i;
      bool trailing_comma = false;
      for (;;) {
        skip();
        if (i < h.size() && h[i] == ')') {
          ++i;
          break;
        }
        if (i >= h.size() || h[i] < '0' || h[i] > '9') fail("expected a non-negative integer in 'shape'");
        std::uint64_t v = 0;
        while (i < h.size() && h[i] >= '0' && h[i] <= '9') {
          std::uint64_t const d = std::uint64_t(h[i] - '0');
          if (v > (std::uint64_t(INT64_MAX) - d) / 10) fail("a 'shape' extent exceeds 2^63 - 1");
          v = v * 10 + d;
          ++i;
        }
        if (i < h.size() && h[i] == 'L') ++i;  // Python 2 long literal
        out.shape.push_back(static_cast<std::size_t>(v));
        skip();
        if (i < h.size() && h[i] == ',') {
          ++i;
          trailing_comma = true;
        } else if (i < h.size() && h[i] == ')') {
          trailing_comma = false;
        } else {
          fail("expected ',' or ')' after a 'shape' extent");
        }
      }
      // "(3)" is the integer 3 in Python, not a tuple.
      if (out.shape.size() == 1 && !trailing_comma) fail("a rank-1 'shape' needs a trailing comma: (n,)");
      have_shape = true;
    } else {
      fail("unexpected key '" + key + "'");
    }
    skip();
    if (i < h.size() && h[i] == ',') {
      ++i;
      continue;
    }
    if (i < h.size() && h[i] == '}') break;
    fail("expected ',' or '}'");
  }
  ++i;  // '}'
  for (; i < h.size(); ++i)
    if (h[i] != ' ' && h[i] != '\n' && h[i] != '\r' && h[i] != '\t' && h[i] != '\0') fail("text after the dict");
  if (!have_descr) npy_fail(where, path, "header has no 'descr' entry");
  if (!have_fortran) npy_fail(where, path, "header has no 'fortran_order' entry");
  if (!have_shape) npy_fail(where, path, "header has no 'shape' entry");
  return out;
}

template <class T>
constexpr char const* npy_type_name() {
  if constexpr (std::is_same<T, float>::value) return "float32";
  if constexpr (std::is_same<T, double>::value) return "float64";
  if constexpr (std::is_same<T, std::int32_t>::value) return "int32";
  return "int64";
}

template <class From, class To>
void npy_convert(char const* bytes, size_t n, To* out, char const* where, std::string const& path) {
  for (size_t i = 0; i < n; ++i) {
    From v;
    std::memcpy(&v, bytes + i * sizeof(From), sizeof(From));
    if (!convert_checked(v, out[i])) {
      std::ostringstream s;
      s.precision(17);
      s << "element " << i << " (" << v << ", " << npy_type_name<From>() << ") cannot be converted to "
        << npy_type_name<To>() << " without changing its value";
      npy_fail(where, path, s.str());
    }
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
/// file.  The file is replaced atomically (written to a temporary beside it
/// and renamed, see io/file.hpp): if writing fails, a previous file at `path`
/// is left as it was.  Throws std::runtime_error if the file cannot be
/// written.
template <class T>
void write_npy(std::string const& path, T const* data, std::vector<std::size_t> const& shape) {
  static_assert(detail::is_npy_type_v<T>, "lensing::io::write_npy: element type must be float, double, int32 or int64");
  constexpr char const* where = "lensing::io::write_npy";
  if (!detail::host_is_little_endian()) detail::npy_fail(where, path, "big-endian hosts are not supported");
  std::uint64_t n = 1, bytes = 0;
  for (auto s : shape)
    if (!checked_multiply(n, s, n))
      throw_invalid_argument(where, path + ": the shape's element count overflows 64 bits");
  if (!checked_multiply(n, sizeof(T), bytes)) throw_invalid_argument(where, path + ": the data size overflows 64 bits");
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
  AtomicFile file(path, where);
  {
    std::ofstream f(file.temp_path(), std::ios::binary | std::ios::trunc);
    if (!f) detail::npy_fail(where, path, "cannot open for writing");
    char const magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
    f.write(magic, 8);
    unsigned char const len[2] = {static_cast<unsigned char>(header.size() & 0xff),
                                  static_cast<unsigned char>(header.size() >> 8)};
    f.write(reinterpret_cast<char const*>(len), 2);
    f.write(header.data(), static_cast<std::streamsize>(header.size()));
    if (n > 0) f.write(reinterpret_cast<char const*>(data), static_cast<std::streamsize>(bytes));
    f.close();
    if (!f) detail::npy_fail(where, path, "write failed (disk full?)");
  }
  file.commit();
}

/// Read a .npy file, converting its dtype (f4, f8, i4, i8) to T.  Throws
/// std::runtime_error naming the file for a missing, truncated, malformed or
/// unsupported file.
///
/// Validation comes before allocation: the header is parsed strictly (see
/// detail::npy_parse_header), the element count must not overflow 64 bits,
/// and the declared data (header + count x itemsize) must fit in the file, so
/// a tiny file declaring a huge array fails at once without allocating.
///
/// Conversion rule: a value is converted only if T holds it.  Integer ->
/// float or double: always (rounded to nearest).  double -> float: any
/// finite value within float's range (rounded to nearest; NaN and inf kept);
/// a finite value beyond it (e.g. 1e300) throws instead of becoming inf.
/// float or double -> int32/int64: only finite integral values within the
/// range of T; NaN, inf, fractions and out-of-range values throw.  int64 ->
/// int32: only values within int32's range.  The error names the element.
template <class T>
NpyArray<T> read_npy(std::string const& path) {
  static_assert(detail::is_npy_type_v<T>, "lensing::io::read_npy: element type must be float, double, int32 or int64");
  constexpr char const* where = "lensing::io::read_npy";
  std::ifstream f(path, std::ios::binary);
  long long const file_bytes = file_size(path);
  if (!f || file_bytes < 0) detail::npy_fail(where, path, "cannot open (missing file, or not a regular file?)");
  char magic[8];
  if (!f.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) detail::npy_fail(where, path, "not a .npy file");
  std::uint64_t header_len = 0, prefix = 0;
  unsigned char len[4] = {0, 0, 0, 0};
  if (magic[6] == 1) {
    if (!f.read(reinterpret_cast<char*>(len), 2)) detail::npy_fail(where, path, "truncated header");
    header_len = len[0] | (std::uint64_t(len[1]) << 8);
    prefix = 10;
  } else if (magic[6] == 2 || magic[6] == 3) {
    if (!f.read(reinterpret_cast<char*>(len), 4)) detail::npy_fail(where, path, "truncated header");
    header_len = len[0] | (std::uint64_t(len[1]) << 8) | (std::uint64_t(len[2]) << 16) | (std::uint64_t(len[3]) << 24);
    prefix = 12;
  } else {
    detail::npy_fail(where, path, "unsupported format version " + std::to_string(int(magic[6])));
  }
  if (header_len > (1u << 24)) detail::npy_fail(where, path, "header length implausible");
  if (prefix + header_len > std::uint64_t(file_bytes)) detail::npy_fail(where, path, "truncated header");
  std::string header(header_len, '\0');
  if (!f.read(&header[0], static_cast<std::streamsize>(header_len))) detail::npy_fail(where, path, "truncated header");

  auto const h = detail::npy_parse_header(header, where, path);
  NpyArray<T> out;
  auto const& descr = h.descr;
  out.descr = descr;
  if (h.fortran_order) detail::npy_fail(where, path, "Fortran-order arrays are not supported (save with C order)");
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
  std::uint64_t n = 1, bytes = 0;
  for (auto e : h.shape)
    if (!checked_multiply(n, e, n)) detail::npy_fail(where, path, "the shape's element count overflows 64 bits");
  if (!checked_multiply(n, size, bytes)) detail::npy_fail(where, path, "the data size overflows 64 bits");
  std::uint64_t const available = std::uint64_t(file_bytes) - (prefix + header_len);
  if (bytes > available)
    detail::npy_fail(where, path,
                     "truncated data: expected " + std::to_string(n) + " elements of " + descr + " (" +
                         std::to_string(bytes) + " bytes), the file holds " + std::to_string(available) +
                         " bytes after the header");
  out.shape = h.shape;
  out.data.resize(static_cast<std::size_t>(n));
  if (n == 0) return out;
  if (descr == detail::npy_descr<T>()) {
    // Same dtype: straight into the result.
    if (!f.read(reinterpret_cast<char*>(out.data.data()), static_cast<std::streamsize>(bytes)))
      detail::npy_fail(where, path, "truncated data: expected " + std::to_string(n) + " elements of " + descr);
    return out;
  }
  std::vector<char> raw(static_cast<std::size_t>(bytes));
  if (!f.read(raw.data(), static_cast<std::streamsize>(bytes)))
    detail::npy_fail(where, path, "truncated data: expected " + std::to_string(n) + " elements of " + descr);
  if (descr == "<f4") detail::npy_convert<float>(raw.data(), n, out.data.data(), where, path);
  if (descr == "<f8") detail::npy_convert<double>(raw.data(), n, out.data.data(), where, path);
  if (descr == "<i4") detail::npy_convert<std::int32_t>(raw.data(), n, out.data.data(), where, path);
  if (descr == "<i8") detail::npy_convert<std::int64_t>(raw.data(), n, out.data.data(), where, path);
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

//----------------------------------------------------------------------------
// xtensor containers (host).

/// Write an xtensor expression (xt::xarray, xt::xtensor, an adaptor, a view,
/// any expression) of float, double, int32 or int64; its shape becomes the
/// file's.  Contiguous row-major containers are written from their memory,
/// anything else (column-major, strided views, lazy expressions) is evaluated
/// once into a row-major xt::xarray first.  Replaces the file atomically.
template <class E>
void write_npy(std::string const& path, xt::xexpression<E> const& expression) {
  using T = std::decay_t<typename E::value_type>;
  static_assert(detail::is_npy_type_v<T>, "lensing::io::write_npy: element type must be float, double, int32 or int64");
  E const& e = expression.derived_cast();
  std::vector<std::size_t> const shape(e.shape().begin(), e.shape().end());
  if constexpr (xt::has_data_interface<E>::value) {
    if (detail::xt_is_row_major_contiguous(e)) {
      write_npy(path, e.data() + e.data_offset(), shape);
      return;
    }
  }
  xt::xarray<T, xt::layout_type::row_major> const copy = e;
  write_npy(path, copy.data(), shape);
}

/// Read a .npy file into an xt::xarray: `out` takes the file's shape (any
/// rank) and its values converted to T (read_npy<T> states the rule).
template <class EC, xt::layout_type L, class SC, class Tag>
void read_npy(std::string const& path, xt::xarray_container<EC, L, SC, Tag>& out) {
  auto a = read_npy<typename EC::value_type>(path);
  if (out.layout() == xt::layout_type::row_major) {
    out.resize(a.shape);
    std::copy(a.data.begin(), a.data.end(), out.data());
  } else {
    out = xt::adapt(a.data, a.shape);
  }
}

/// Read a .npy file into an xt::xtensor<T, N>: the file must have rank N
/// (std::invalid_argument otherwise); `out` takes its shape and values.
template <class EC, std::size_t N, xt::layout_type L, class Tag>
void read_npy(std::string const& path, xt::xtensor_container<EC, N, L, Tag>& out) {
  auto a = read_npy<typename EC::value_type>(path);
  check_argument(a.shape.size() == N, "lensing::io::read_npy",
                 path + " has shape " + detail::xt_tuple_string(a.shape) + " (rank " + std::to_string(a.shape.size()) +
                     ") but the xtensor has rank " + std::to_string(N));
  std::array<std::size_t, N> shape;
  std::copy(a.shape.begin(), a.shape.end(), shape.begin());
  if (out.layout() == xt::layout_type::row_major) {
    out.resize(shape);
    std::copy(a.data.begin(), a.data.end(), out.data());
  } else {
    out = xt::adapt(a.data, shape);
  }
}

}  // namespace io
}  // namespace lensing

#endif  // LENSING_IO_NPY_HPP
