#ifndef LENSING_IO_FITS_HPP
#define LENSING_IO_FITS_HPP

/// \file
/// FITS images (Pence et al. 2010, A&A 524, A42, FITS standard 4.0) through
/// cfitsio (Debian libcfitsio-dev; link with `-lcfitsio`, see the CMake
/// target `lensing::lensing`): write and read 2-D images (ny, nx) and 3-D
/// cubes (n, ny, nx) of float or double in the primary HDU, with header
/// keywords carrying parameter names and values.  Host only; Views in any
/// memory space are copied through the host.
///
/// Axis order: FITS NAXIS1 is the fastest axis, so a row-major View (ny, nx)
/// is stored with NAXIS1 = nx, NAXIS2 = ny (and NAXIS3 = n for a cube): the
/// file displays with x to the right and y up in ds9, as lensing's images
/// (row iy = 0 at the bottom).  Keyword names longer than 8 characters or
/// with lower-case letters (lensing's parameter names, e.g. `theta_E`) are
/// written with the ESO HIERARCH convention, which cfitsio handles
/// transparently; look-ups are case-insensitive as in FITS.  float images
/// are written as BITPIX = -32, double as -64; reading converts any BITPIX.
///
/// Errors (missing file, not an image, wrong dimensions, cfitsio failures)
/// throw std::runtime_error "lensing::io::<fn>: <path>: <what> (cfitsio: ...)";
/// a View whose extents do not match the file throws std::invalid_argument.
///
/// File names are literal (fits_open_diskfile / fits_create_diskfile):
/// cfitsio's extended syntax (sections "x.fits[1:2,*]", "!" to overwrite,
/// "mem://", compressed files) is not interpreted, so any file name can be
/// read and written.  Reading validates before it allocates: the file must
/// start with the SIMPLE card and hold the data its header declares (a tiny
/// file declaring NAXIS1 = 2^32 fails at once), and the cfitsio handle is
/// closed on every path.  Conversion of the stored values to T is cfitsio's,
/// which refuses values T cannot hold (e.g. 1e300 read as float) with a
/// numerical-overflow error instead of producing inf.  Writing replaces a
/// file atomically (temporary + rename, io/file.hpp).
///
/// xtensor containers are read and written too: write_fits(path, e) takes
/// any rank-2 or rank-3 xtensor expression, read_fits(path, xarray) resizes
/// an xt::xarray<T> (or checks the rank of an xt::xtensor<T, N>) and fills it.

// cfitsio comes with the fits component of the CMake package, whose target
// lensing::fits defines LENSING_HAS_FITS.
#if !defined(LENSING_HAS_FITS)
#error "lensing/io/fits.hpp needs the fits component: find_package(lensing COMPONENTS fits) and link lensing::fits"
#endif

#include <lensing/core/errors.hpp>
#include <lensing/io/file.hpp>
#include <lensing/io/xtensor_views.hpp>

#include <fitsio.h>
#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace lensing {
namespace io {

/// One header keyword: a number (`text` empty) or a string (`text`).
struct FitsKeyword {
  std::string name;
  double value = 0;
  std::string text;
  std::string comment;
};

/// A FITS image read from a file.
template <class T>
struct FitsImage {
  /// Row-major shape: (ny, nx) or (n, ny, nx).
  std::vector<std::size_t> shape;
  std::vector<T> data;
  /// Non-structural keywords of the primary header, in file order.
  std::vector<FitsKeyword> keywords;

  /// The keyword `name` (case-insensitive), or nullptr.
  FitsKeyword const* find(std::string const& name) const {
    for (auto const& k : keywords)
      if (upper(k.name) == upper(name)) return &k;
    return nullptr;
  }
  /// Numeric value of keyword `name`; std::runtime_error if absent.
  double value(std::string const& name) const {
    auto const* k = find(name);
    if (!k || !k->text.empty()) throw std::runtime_error("lensing::io::FitsImage::value: no numeric keyword " + name);
    return k->value;
  }
  static std::string upper(std::string s) {
    for (auto& c : s)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  }
};

namespace detail {

[[noreturn]] inline void fits_fail(char const* where, std::string const& path, std::string const& what, int status) {
  std::string msg = std::string(where) + ": " + path + ": " + what;
  if (status != 0) {
    char text[FLEN_STATUS];
    fits_get_errstatus(status, text);
    msg += std::string(" (cfitsio: ") + text + ")";
  }
  throw std::runtime_error(msg);
}

/// Owns a cfitsio handle: closes it on scope exit on every path, also when
/// an open function failed after it had opened the file (cfitsio's
/// extended-syntax openers can return an error with a live handle; dropping
/// it leaked a file descriptor and one of cfitsio's 10000 handle slots).
struct FitsFile {
  fitsfile* f = nullptr;
  FitsFile() = default;
  FitsFile(FitsFile const&) = delete;
  FitsFile& operator=(FitsFile const&) = delete;
  /// Close now (flushing), reporting cfitsio's status; the handle is
  /// released whatever the outcome.
  int close(int& status) {
    fitsfile* g = f;
    f = nullptr;
    return g ? fits_close_file(g, &status) : status;
  }
  ~FitsFile() {
    int s = 0;
    close(s);
  }
};

template <class T>
constexpr int fits_datatype() {
  return std::is_same<T, float>::value ? TFLOAT : TDOUBLE;
}

inline bool is_structural_keyword(std::string const& name) {
  static char const* const skip[] = {"SIMPLE", "BITPIX", "NAXIS",   "EXTEND",  "PCOUNT",
                                     "GCOUNT", "END",    "COMMENT", "HISTORY", ""};
  for (auto s : skip)
    if (name == s) return true;
  return name.size() > 5 && name.compare(0, 5, "NAXIS") == 0 &&
         std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace detail

/// Write `data` (row-major, shape (ny, nx) or (n, ny, nx)) to a new FITS file
/// `path` (an existing file is replaced), with `keywords` in the header.
template <class T>
void write_fits(std::string const& path, T const* data, std::vector<std::size_t> const& shape,
                std::vector<FitsKeyword> const& keywords = {}) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "lensing::io::write_fits: images must be float or double");
  constexpr char const* where = "lensing::io::write_fits";
  if (shape.size() != 2 && shape.size() != 3)
    throw_invalid_argument(
        where, "images must have rank 2 (ny, nx) or 3 (n, ny, nx), got rank " + std::to_string(shape.size()));
  for (auto const& k : keywords) {
    check_argument(!k.name.empty() && k.name.size() <= 60, where, "keyword names must have 1 to 60 characters");
    if (k.text.empty()) check_finite(k.value, where, ("keyword " + k.name).c_str());
  }
  long naxes[3];
  std::uint64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    auto const e = shape[shape.size() - 1 - i];
    if (e > std::size_t(LONG_MAX) || !checked_multiply(count, e, count) || count > std::uint64_t(LLONG_MAX) / 8)
      throw_invalid_argument(where, path + ": the image is too large for a FITS file");
    naxes[i] = static_cast<long>(e);
  }
  auto const n = static_cast<LONGLONG>(count);
  // A literal file name (cfitsio's extended syntax, e.g. "x.fits[2:3,*]" or
  // a leading '!', is not interpreted), written to a temporary beside the
  // target and renamed onto it (io/file.hpp): a failed write leaves a
  // previous file intact and no stray file.
  AtomicFile out(path, where);
  {
    detail::FitsFile file;
    int status = 0;
    if (fits_create_diskfile(&file.f, out.temp_path().c_str(), &status))
      detail::fits_fail(where, path, "cannot create the file", status);
    int const bitpix = std::is_same<T, float>::value ? FLOAT_IMG : DOUBLE_IMG;
    if (fits_create_img(file.f, bitpix, static_cast<int>(shape.size()), naxes, &status))
      detail::fits_fail(where, path, "cannot create the image HDU", status);
    for (auto const& k : keywords) {
      char* comment = k.comment.empty() ? nullptr : const_cast<char*>(k.comment.c_str());
      if (k.text.empty()) {
        double v = k.value;
        fits_write_key(file.f, TDOUBLE, k.name.c_str(), &v, comment, &status);
      } else {
        fits_write_key(file.f, TSTRING, k.name.c_str(), const_cast<char*>(k.text.c_str()), comment, &status);
      }
      if (status) detail::fits_fail(where, path, "cannot write keyword " + k.name, status);
    }
    if (n > 0 && fits_write_img(file.f, detail::fits_datatype<T>(), 1, n, const_cast<T*>(data), &status))
      detail::fits_fail(where, path, "cannot write the data", status);
    if (file.close(status)) detail::fits_fail(where, path, "cannot write the file (disk full?)", status);
  }
  out.commit();
}

/// Read the primary image of `path` (2-D or 3-D, any BITPIX) converted to T,
/// with its keywords.
template <class T>
FitsImage<T> read_fits(std::string const& path) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "lensing::io::read_fits: images must be float or double");
  constexpr char const* where = "lensing::io::read_fits";
  long long const file_bytes = file_size(path);
  if (file_bytes < 0) detail::fits_fail(where, path, "cannot open (missing file or not a regular file)", 0);
  {
    // Every FITS file starts with the SIMPLE card.  This also refuses the
    // compressed files cfitsio would inflate into memory (.gz, .Z) before
    // anything could be checked against the file's size.
    std::ifstream f(path, std::ios::binary);
    char card[10] = {};
    if (!f.read(card, 10) || std::memcmp(card, "SIMPLE  = ", 10) != 0)
      detail::fits_fail(where, path, "not a FITS file (no SIMPLE card; compressed files are not read)", 0);
  }
  detail::FitsFile file;
  int status = 0;
  // The literal file name: "[" in a name is a character, not cfitsio's
  // extended syntax (a section suffix such as "x.fits[1:2,*]" names a file
  // that does not exist).
  if (fits_open_diskfile(&file.f, path.c_str(), READONLY, &status))
    detail::fits_fail(where, path, "cannot open (not FITS?)", status);
  int naxis = 0;
  if (fits_get_img_dim(file.f, &naxis, &status)) detail::fits_fail(where, path, "cannot read NAXIS", status);
  if (naxis == 0) {
    // Empty primary array: the first image extension with data, as
    // cfitsio's fits_open_image does.
    for (;;) {
      int type = 0;
      if (fits_movrel_hdu(file.f, 1, &type, &status)) {
        if (status == END_OF_FILE)
          detail::fits_fail(where, path, "the primary array is empty and no image extension follows", 0);
        detail::fits_fail(where, path, "cannot read the next HDU (truncated or malformed extension?)", status);
      }
      if (type != IMAGE_HDU) continue;
      if (fits_get_img_dim(file.f, &naxis, &status)) detail::fits_fail(where, path, "cannot read NAXIS", status);
      if (naxis > 0) break;
    }
  }
  if (naxis != 2 && naxis != 3)
    detail::fits_fail(where, path, "the primary image must be 2-D or 3-D, it has NAXIS = " + std::to_string(naxis), 0);
  LONGLONG naxes[3] = {0, 0, 0};
  int bitpix = 0;
  if (fits_get_img_sizell(file.f, naxis, naxes, &status)) detail::fits_fail(where, path, "cannot read NAXISn", status);
  if (fits_get_img_type(file.f, &bitpix, &status)) detail::fits_fail(where, path, "cannot read BITPIX", status);
  // Validate before allocating: the declared data must be in the file.
  std::uint64_t n = 1, bytes = 0;
  std::string dims;
  for (int i = naxis - 1; i >= 0; --i) {
    dims += std::to_string(naxes[i]) + (i > 0 ? ", " : "");
    if (naxes[i] < 0 || !checked_multiply(n, std::uint64_t(naxes[i]), n))
      detail::fits_fail(where, path, "the image size (" + dims + ") overflows 64 bits", 0);
  }
  if (!checked_multiply(n, std::uint64_t(bitpix < 0 ? -bitpix : bitpix) / 8, bytes))
    detail::fits_fail(where, path, "the data size overflows 64 bits", 0);
  LONGLONG head = 0, data_start = 0, data_end = 0;
  if (fits_get_hduaddrll(file.f, &head, &data_start, &data_end, &status))
    detail::fits_fail(where, path, "cannot locate the data", status);
  if (data_start < 0 || data_start > file_bytes || bytes > std::uint64_t(file_bytes - data_start))
    detail::fits_fail(where, path,
                      "truncated data: the header declares (" + dims + ") pixels of BITPIX = " +
                          std::to_string(bitpix) + " (" + std::to_string(bytes) + " bytes) from byte " +
                          std::to_string(data_start) + ", the file has " + std::to_string(file_bytes) + " bytes",
                      0);
  FitsImage<T> out;
  for (int i = naxis - 1; i >= 0; --i)
    out.shape.push_back(static_cast<std::size_t>(naxes[i]));
  out.data.resize(static_cast<std::size_t>(n));
  int anynul = 0;
  if constexpr (std::is_same<T, double>::value) {
    if (n > 0 &&
        fits_read_img(file.f, TDOUBLE, 1, static_cast<LONGLONG>(n), nullptr, out.data.data(), &anynul, &status))
      detail::fits_fail(where, path, "cannot read the data (truncated file?)", status);
  } else {
    // cfitsio turns values beyond float's range into inf without an error:
    // read as double in blocks and convert with io::detail::convert_checked
    // (finite values beyond float's range throw; NaN and inf are kept).
    std::vector<double> block(static_cast<std::size_t>(std::min<std::uint64_t>(n, 1u << 16)));
    for (std::uint64_t first = 0; first < n; first += block.size()) {
      auto const m = std::min<std::uint64_t>(block.size(), n - first);
      if (fits_read_img(file.f, TDOUBLE, static_cast<LONGLONG>(first + 1), static_cast<LONGLONG>(m), nullptr,
                        block.data(), &anynul, &status))
        detail::fits_fail(where, path, "cannot read the data (truncated file?)", status);
      for (std::uint64_t i = 0; i < m; ++i)
        if (!detail::convert_checked(block[i], out.data[first + i])) {
          std::ostringstream msg;
          msg.precision(17);
          msg << "pixel " << first + i << " (" << block[i] << ") is beyond the range of float";
          detail::fits_fail(where, path, msg.str(), 0);
        }
    }
  }
  int nkeys = 0;
  if (fits_get_hdrspace(file.f, &nkeys, nullptr, &status))
    detail::fits_fail(where, path, "cannot read the header", status);
  for (int i = 1; i <= nkeys; ++i) {
    char name[FLEN_KEYWORD], value[FLEN_VALUE], comment[FLEN_COMMENT];
    if (fits_read_keyn(file.f, i, name, value, comment, &status))
      detail::fits_fail(where, path, "cannot read keyword " + std::to_string(i), status);
    std::string const key = name;
    if (detail::is_structural_keyword(key) || value[0] == '\0') continue;
    FitsKeyword k;
    k.name = key;
    k.comment = comment;
    if (value[0] == '\'') {
      char text[FLEN_VALUE];
      int s2 = 0;
      fits_read_key(file.f, TSTRING, key.c_str(), text, nullptr, &s2);
      if (s2) {
        // Fallback: strip the quotes ourselves.
        std::string v = value;
        v = v.substr(1, v.rfind('\'') > 0 ? v.rfind('\'') - 1 : std::string::npos);
        while (!v.empty() && v.back() == ' ')
          v.pop_back();
        k.text = v;
      } else {
        k.text = text;
      }
      if (k.text.empty()) k.text = " ";  // keep "string keyword" distinguishable from a number
    } else {
      char* end = nullptr;
      k.value = std::strtod(value, &end);
      if (end == value) {
        // Logical (T/F) or complex values: keep the text.
        k.text = value;
      }
    }
    out.keywords.push_back(k);
  }
  return out;
}

//----------------------------------------------------------------------------
// Views.

/// Write a rank-2 (ny, nx) or rank-3 (n, ny, nx) LayoutRight View.
template <class View, class = std::enable_if_t<Kokkos::is_view<View>::value>>
void write_fits(std::string const& path, View const& view, std::vector<FitsKeyword> const& keywords = {}) {
  static_assert(Kokkos::is_view<View>::value, "lensing::io::write_fits: argument must be a Kokkos::View");
  static_assert(View::rank == 2 || View::rank == 3, "lensing::io::write_fits: views must have rank 2 or 3");
  static_assert(std::is_same<typename View::array_layout, Kokkos::LayoutRight>::value,
                "lensing::io::write_fits: views must be LayoutRight (row-major)");
  check_argument(view.span_is_contiguous(), "lensing::io::write_fits", "view must be contiguous");
  auto const host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), view);
  std::vector<std::size_t> shape;
  for (unsigned r = 0; r < View::rank; ++r)
    shape.push_back(view.extent(r));
  write_fits(path, host.data(), shape, keywords);
}

/// Read the primary image of `path` into `view` (extents must match the
/// file's shape); returns the header keywords.
template <class View, class = std::enable_if_t<Kokkos::is_view<View>::value>>
std::vector<FitsKeyword> read_fits(std::string const& path, View const& view) {
  static_assert(Kokkos::is_view<View>::value, "lensing::io::read_fits: argument must be a Kokkos::View");
  static_assert(View::rank == 2 || View::rank == 3, "lensing::io::read_fits: views must have rank 2 or 3");
  static_assert(std::is_same<typename View::array_layout, Kokkos::LayoutRight>::value,
                "lensing::io::read_fits: views must be LayoutRight (row-major)");
  using T = typename View::non_const_value_type;
  auto image = read_fits<T>(path);
  bool ok = image.shape.size() == View::rank;
  std::string got = "(", want = "(";
  for (unsigned r = 0; r < View::rank; ++r) {
    ok = ok && r < image.shape.size() && image.shape[r] == view.extent(r);
    want += std::to_string(view.extent(r)) + (r + 1 < View::rank ? ", " : ")");
  }
  for (size_t r = 0; r < image.shape.size(); ++r)
    got += std::to_string(image.shape[r]) + (r + 1 < image.shape.size() ? ", " : ")");
  check_argument(ok, "lensing::io::read_fits", path + " has shape " + got + " but the view has extents " + want);
  check_argument(view.span_is_contiguous(), "lensing::io::read_fits", "view must be contiguous");
  auto host = Kokkos::create_mirror_view(Kokkos::HostSpace(), view);
  std::copy(image.data.begin(), image.data.end(), host.data());
  Kokkos::deep_copy(view, host);
  return image.keywords;
}

//----------------------------------------------------------------------------
// xtensor containers (host).

/// Write a rank-2 (ny, nx) or rank-3 (n, ny, nx) xtensor expression of float
/// or double (another rank: std::invalid_argument).  Contiguous row-major
/// containers are written from their memory, anything else is evaluated
/// once into a row-major xt::xarray first.
template <class E>
void write_fits(std::string const& path, xt::xexpression<E> const& expression,
                std::vector<FitsKeyword> const& keywords = {}) {
  using T = std::decay_t<typename E::value_type>;
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "lensing::io::write_fits: images must be float or double");
  E const& e = expression.derived_cast();
  std::vector<std::size_t> const shape(e.shape().begin(), e.shape().end());
  if constexpr (xt::has_data_interface<E>::value) {
    if (detail::xt_is_row_major_contiguous(e)) {
      write_fits(path, e.data() + e.data_offset(), shape, keywords);
      return;
    }
  }
  xt::xarray<T, xt::layout_type::row_major> const copy = e;
  write_fits(path, copy.data(), shape, keywords);
}

/// Read the primary image of `path` into an xt::xarray (it takes the file's
/// shape, (ny, nx) or (n, ny, nx)); returns the header keywords.
template <class EC, xt::layout_type L, class SC, class Tag>
std::vector<FitsKeyword> read_fits(std::string const& path, xt::xarray_container<EC, L, SC, Tag>& out) {
  auto image = read_fits<typename EC::value_type>(path);
  if (out.layout() == xt::layout_type::row_major) {
    out.resize(image.shape);
    std::copy(image.data.begin(), image.data.end(), out.data());
  } else {
    out = xt::adapt(image.data, image.shape);
  }
  return image.keywords;
}

/// Read the primary image of `path` into an xt::xtensor<T, N> (N = 2 or 3):
/// the file must have rank N (std::invalid_argument otherwise).  Returns the
/// header keywords.
template <class EC, std::size_t N, xt::layout_type L, class Tag>
std::vector<FitsKeyword> read_fits(std::string const& path, xt::xtensor_container<EC, N, L, Tag>& out) {
  static_assert(N == 2 || N == 3, "lensing::io::read_fits: images have rank 2 or 3");
  auto image = read_fits<typename EC::value_type>(path);
  check_argument(image.shape.size() == N, "lensing::io::read_fits",
                 path + " has shape " + detail::xt_tuple_string(image.shape) + " (rank " +
                     std::to_string(image.shape.size()) + ") but the xtensor has rank " + std::to_string(N));
  std::array<std::size_t, N> shape;
  std::copy(image.shape.begin(), image.shape.end(), shape.begin());
  if (out.layout() == xt::layout_type::row_major) {
    out.resize(shape);
    std::copy(image.data.begin(), image.data.end(), out.data());
  } else {
    out = xt::adapt(image.data, shape);
  }
  return image.keywords;
}

}  // namespace io
}  // namespace lensing

#endif  // LENSING_IO_FITS_HPP
