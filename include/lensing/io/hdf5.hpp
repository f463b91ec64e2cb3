#ifndef LENSING_IO_HDF5_HPP
#define LENSING_IO_HDF5_HPP

/// \file
/// Training sets as HDF5 files (HDF5 C library, Debian libhdf5-dev; CMake
/// component target `lensing::hdf5`, which defines LENSING_HAS_HDF5), readable
/// by h5py.  Host only, no Kokkos: images and labels are passed as host
/// pointers (copy device Views to a host mirror first).
///
/// The file (`n` images of ny x nx pixels, K labels each):
///
///     /images       float32 (n, ny, nx), row-major image(iy, ix) as lensing's Views
///     /labels       float64 (n, K)
///     /label_names  K fixed-length UTF-8 strings (NUL-padded to the longest)
///     attributes of the root group: the simulator configuration given by the
///                   caller (fixed-length UTF-8 strings, float64, int64, uint64
///                   scalars), in name order
///
/// `images` and `labels` are chunked along n (`chunk_images` images per chunk,
/// default 8), extendible (maximum n unlimited), and compressed by the shuffle
/// and deflate filters (level 4 by default) followed by a Fletcher-32 checksum
/// of each stored chunk, so damaged data is reported instead of read.  The
/// format is HDF5's 1.8 file format (libver bounds fixed to 1.8: readable by
/// HDF5 >= 1.8, h5py, and checksummed superblock and object headers), with
/// object time stamps off.  The files hold no variable-length data: HDF5
/// keeps it in a "global heap" without checksum, and HDF5 1.10.8 crashes
/// (H5HG_read) reading a damaged one (found by this header's tests), so
/// strings are fixed-length.  In h5py: `f["images"][i0:i1]`,
/// `f["label_names"].asstr()[()]`, `f.attrs["preset"].decode()`.
///
/// Writing, resume and bit-identical files (Hdf5TrainingSetWriter):
///
///     lensing::io::Hdf5Attributes config;
///     config.set("preset", "HST").set("seed", seed).set("pixel_scale", 0.05);
///     lensing::io::Hdf5TrainingSetWriter w(path, ny, nx, label_names, config);
///     for (std::size_t i = w.size(); i < n; i += batch) {   // w.size(): resume point
///       ... simulate images [i, i + m) (float, m*ny*nx) and labels (double, m*K)
///       w.append(images, labels, m);
///     }
///     w.finish();   // `path` appears, complete
///
/// Appending to an HDF5 file across close and reopen does not give the same
/// bytes as one uninterrupted session (measured with HDF5 1.10.8: the same
/// images and labels written with different interruption points give files
/// of different sizes and bytes, because the allocation of chunks and of the
/// chunk index's nodes depends on the session history), and a process killed
/// inside an HDF5 flush can leave a file that HDF5 cannot append to (measured:
/// 1 of 240 SIGKILLs left metadata beyond the file's recorded end).  So the
/// writer keeps its work in two partial files and writes `path` only in
/// finish(), in one deterministic pass:
///  - `<path>.partial`: an HDF5 file with the configuration (attributes,
///    label names, empty /images and /labels with the chunking and filters
///    of the final file, a format tag), written once under a temporary name
///    and renamed, so it is never half-written;
///  - `<path>.partial.data`: append-only records, one per whole chunk
///    (chunk index, FNV-1a-64 checksum, chunk_images images as float32 and
///    their labels as float64, uncompressed).  Images that do not fill a
///    chunk wait in memory: an interruption loses at most chunk_images - 1
///    of them plus the append in progress.  A process killed mid-append
///    leaves at most an incomplete last record, which resume drops.
///  - constructing a writer when `<path>.partial` exists resumes (unless
///    Hdf5WriterOptions::resume is false, which discards the partial files):
///    its attributes, label names, ny, nx, K, data types, chunking and filters
///    must equal the caller's (else std::runtime_error naming what differs and
///    the file), and every record's checksum is verified (verify_on_resume):
///    a damaged record or configuration file is an error naming the file,
///    never a wrong training set.  size() then says where to continue.
///    (Measured: 400 SIGKILLs at random times during appends, 4 per run,
///    each run resumed: all 100 final files byte-identical to an
///    uninterrupted run.)
///  - finish() creates `path` through a temporary in the same directory
///    (io/file.hpp, AtomicFile), writes the records one chunk per write in
///    order, then the incomplete last chunk, closes it, renames it onto
///    `path` and removes the partial files.  The bytes of `path` depend only
///    on the images, labels, names, configuration and options, never on
///    where the run was interrupted (the tests compare whole files), given
///    the same HDF5 and zlib builds.  `path` never holds a half-written file.
///    Compression happens here, so appends run at disk speed and finish()
///    carries the deflate cost; the partial data takes the uncompressed size
///    on disk until then.
///
/// Cost, measured with 4096 images of 64 x 64 (a lens plus unit Gaussian
/// noise, float32, chunks of 8) on one core of a busy 2-core machine: the
/// deflate filter at level 4 runs at ~750-1,000 images/s, limited by zlib
/// (zlib alone: 700-900 images/s on the same bytes; level 1 is no faster),
/// and noise-dominated floats shrink only to ~86% of their size; appends
/// run at ~7,000-25,000 images/s and finish() with deflate_level = 0 at
/// ~7,000-25,000 images/s (the range is the machine's load); reading runs at
/// ~8,000-10,000 images/s (level 4) or ~30,000-40,000 (level 0).  Where
/// throughput matters, pass deflate_level = 0.
///
/// Reading (Hdf5TrainingSetReader, read_hdf5_training_set): any file with
/// this layout (also one written by h5py: variable-length strings, any float
/// type, contiguous or chunked) is read, but only files without
/// variable-length strings are safe from the crash above when damaged; the shapes and the stored sizes are
/// validated before anything is allocated (a file declaring more data than
/// its stored chunks can hold is refused).  The reader reads images [i0, i1)
/// for data sources that stream from disk.
///
/// Errors throw std::runtime_error "lensing::io::<fn>: <path>: <what>
/// (HDF5: <innermost message of HDF5's error stack>)" for files that cannot
/// be created, opened or read, and std::invalid_argument for wrong arguments.
/// HDF5's own printing of its error stack is switched off while lensing calls
/// HDF5 (and restored after).  HDF5 is not assumed thread-safe: use a writer
/// or reader from one thread at a time.

// HDF5 comes with the hdf5 component of the CMake package, whose target
// lensing::hdf5 defines LENSING_HAS_HDF5.
#if !defined(LENSING_HAS_HDF5)
#error "lensing/io/hdf5.hpp needs the hdf5 component: find_package(lensing COMPONENTS hdf5) and link lensing::hdf5"
#endif

#include <lensing/io/file.hpp>

#include <hdf5.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lensing {
namespace io {

/// One scalar attribute: a string, a float64, an int64 or a uint64.
struct Hdf5Attribute {
  enum class Kind { text, real, integer, unsigned_integer };
  std::string name;
  Kind kind = Kind::text;
  std::string text;
  double real = 0;
  std::int64_t integer = 0;
  std::uint64_t unsigned_integer = 0;

  /// The value as text (numbers with enough digits to read them back).
  std::string value_string() const {
    char buf[64];
    switch (kind) {
      case Kind::text:
        return "\"" + text + "\"";
      case Kind::real:
        std::snprintf(buf, sizeof buf, "%.17g", real);
        return buf;
      case Kind::integer:
        return std::to_string(static_cast<long long>(integer));
      default:
        return std::to_string(static_cast<unsigned long long>(unsigned_integer));
    }
  }
  /// Same kind and value; reals compare by their bits (a NaN equals itself).
  friend bool operator==(Hdf5Attribute const& a, Hdf5Attribute const& b) {
    if (a.name != b.name || a.kind != b.kind) return false;
    switch (a.kind) {
      case Kind::text:
        return a.text == b.text;
      case Kind::real:
        return std::memcmp(&a.real, &b.real, sizeof(double)) == 0;
      case Kind::integer:
        return a.integer == b.integer;
      default:
        return a.unsigned_integer == b.unsigned_integer;
    }
  }
  friend bool operator!=(Hdf5Attribute const& a, Hdf5Attribute const& b) { return !(a == b); }
};

/// The simulator configuration stored as attributes: a map from names to
/// scalars, kept in name order (so the order in which they are set does not
/// change the file).  set() replaces an existing name.
///
///     Hdf5Attributes a{{"preset", "HST"}, {"source", "sersic"}};   // strings
///     a.set("seed", std::uint64_t(42)).set("pixel_scale", 0.05).set("n_bands", 3);
class Hdf5Attributes {
 public:
  Hdf5Attributes() = default;
  /// String attributes from (name, value) pairs.
  Hdf5Attributes(std::vector<std::pair<std::string, std::string>> const& texts) {  // NOLINT: implicit on purpose
    for (auto const& [name, value] : texts)
      set(name, value);
  }
  Hdf5Attributes(std::initializer_list<std::pair<std::string, std::string>> texts) {
    for (auto const& [name, value] : texts)
      set(name, value);
  }

  Hdf5Attributes& set(std::string const& name, std::string value) {
    if (value.find('\0') != std::string::npos)
      throw std::invalid_argument("lensing::io::Hdf5Attributes::set: the value of '" + name + "' holds a NUL");
    Hdf5Attribute a;
    a.name = name;
    a.kind = Hdf5Attribute::Kind::text;
    a.text = std::move(value);
    return put(std::move(a));
  }
  Hdf5Attributes& set(std::string const& name, char const* value) { return set(name, std::string(value)); }
  Hdf5Attributes& set(std::string const& name, double value) {
    Hdf5Attribute a;
    a.name = name;
    a.kind = Hdf5Attribute::Kind::real;
    a.real = value;
    return put(std::move(a));
  }
  /// Signed integers (and bool) as int64, unsigned ones as uint64.
  template <class I, std::enable_if_t<std::is_integral<I>::value, int> = 0>
  Hdf5Attributes& set(std::string const& name, I value) {
    Hdf5Attribute a;
    a.name = name;
    if constexpr (std::is_signed<I>::value || std::is_same<I, bool>::value) {
      a.kind = Hdf5Attribute::Kind::integer;
      a.integer = static_cast<std::int64_t>(value);
    } else {
      a.kind = Hdf5Attribute::Kind::unsigned_integer;
      a.unsigned_integer = static_cast<std::uint64_t>(value);
    }
    return put(std::move(a));
  }

  /// The attributes in name order.
  std::vector<Hdf5Attribute> const& entries() const { return m_entries; }
  std::size_t size() const { return m_entries.size(); }
  bool empty() const { return m_entries.empty(); }
  /// The attribute called `name`, or nullptr.
  Hdf5Attribute const* find(std::string const& name) const {
    auto it = lower(name);
    return it != m_entries.end() && it->name == name ? &*it : nullptr;
  }
  friend bool operator==(Hdf5Attributes const& a, Hdf5Attributes const& b) { return a.m_entries == b.m_entries; }
  friend bool operator!=(Hdf5Attributes const& a, Hdf5Attributes const& b) { return !(a == b); }

 private:
  std::vector<Hdf5Attribute>::const_iterator lower(std::string const& name) const {
    return std::lower_bound(m_entries.begin(), m_entries.end(), name,
                            [](Hdf5Attribute const& e, std::string const& n) { return e.name < n; });
  }
  Hdf5Attributes& put(Hdf5Attribute a) {
    if (a.name.empty() || a.name == "." || a.name.find('\0') != std::string::npos)
      throw std::invalid_argument(
          "lensing::io::Hdf5Attributes::set: attribute names must be non-empty, not \".\" "
          "and without NUL characters");
    auto it = std::lower_bound(m_entries.begin(), m_entries.end(), a.name,
                               [](Hdf5Attribute const& e, std::string const& n) { return e.name < n; });
    if (it != m_entries.end() && it->name == a.name)
      *it = std::move(a);
    else
      m_entries.insert(it, std::move(a));
    return *this;
  }
  std::vector<Hdf5Attribute> m_entries;
};

/// Options of Hdf5TrainingSetWriter.  Resuming needs the same chunking and
/// filters as the run that wrote the partial file.
struct Hdf5WriterOptions {
  std::size_t chunk_images = 8;  ///< images per chunk (and labels rows per chunk)
  int deflate_level = 4;         ///< 1..9; 0 stores the chunks without shuffle and deflate
  bool fletcher32 = true;        ///< checksum each stored chunk of the final file
  bool resume = true;            ///< resume the partial files if they exist; false discards them
  bool verify_on_resume = true;  ///< check every partial record's checksum when resuming
};

namespace detail {

/// An HDF5 identifier closed by its close function on destruction.
class Hdf5Id {
 public:
  Hdf5Id() = default;
  Hdf5Id(hid_t id, herr_t (*close)(hid_t)) : m_id(id), m_close(close) {}
  Hdf5Id(Hdf5Id&& o) noexcept : m_id(o.m_id), m_close(o.m_close) { o.m_id = -1; }
  Hdf5Id& operator=(Hdf5Id&& o) noexcept {
    if (this != &o) {
      reset();
      m_id = o.m_id;
      m_close = o.m_close;
      o.m_id = -1;
    }
    return *this;
  }
  Hdf5Id(Hdf5Id const&) = delete;
  Hdf5Id& operator=(Hdf5Id const&) = delete;
  ~Hdf5Id() { reset(); }
  hid_t get() const { return m_id; }
  bool valid() const { return m_id >= 0; }
  /// Close now; returns false if HDF5 reports an error (e.g. a failed flush).
  bool reset() {
    bool ok = true;
    if (m_id >= 0 && m_close) ok = m_close(m_id) >= 0;
    m_id = -1;
    return ok;
  }

 private:
  hid_t m_id = -1;
  herr_t (*m_close)(hid_t) = nullptr;
};

/// Switches HDF5's automatic printing of its error stack off for the scope
/// and restores the caller's setting after.
class Hdf5Quiet {
 public:
  Hdf5Quiet() {
    H5Eget_auto2(H5E_DEFAULT, &m_func, &m_data);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~Hdf5Quiet() { H5Eset_auto2(H5E_DEFAULT, m_func, m_data); }
  Hdf5Quiet(Hdf5Quiet const&) = delete;
  Hdf5Quiet& operator=(Hdf5Quiet const&) = delete;

 private:
  H5E_auto2_t m_func = nullptr;
  void* m_data = nullptr;
};

/// The innermost description on HDF5's error stack (the most specific one),
/// then clears the stack; empty if there is none.
inline std::string hdf5_message() {
  std::string msg;
  auto walk = [](unsigned, H5E_error2_t const* e, void* data) -> herr_t {
    if (e->desc && e->desc[0]) *static_cast<std::string*>(data) = e->desc;
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk, &msg);
  H5Eclear2(H5E_DEFAULT);
  return msg;
}

[[noreturn]] inline void hdf5_fail(char const* where, std::string const& path, std::string const& what) {
  std::string const h = hdf5_message();
  throw std::runtime_error(std::string(where) + ": " + path + ": " + what + (h.empty() ? "" : " (HDF5: " + h + ")"));
}

inline Hdf5Id hdf5_check(hid_t id, herr_t (*close)(hid_t), char const* where, std::string const& path,
                         std::string const& what) {
  if (id < 0) hdf5_fail(where, path, what);
  return Hdf5Id(id, close);
}
inline void hdf5_check(herr_t status, char const* where, std::string const& path, std::string const& what) {
  if (status < 0) hdf5_fail(where, path, what);
}

/// File access: HDF5 1.8 file format at both bounds, so that the bytes of a
/// file do not depend on the library version's default format.
inline Hdf5Id hdf5_file_access(char const* where, std::string const& path) {
  Hdf5Id fapl = hdf5_check(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, where, path, "H5Pcreate failed");
  hdf5_check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18), where, path,
             "cannot set the file format bounds");
  return fapl;
}

/// File creation: no time stamps on the root group (the datasets get none
/// either), so that the bytes do not depend on when the file was written.
inline Hdf5Id hdf5_file_create(char const* where, std::string const& path) {
  Hdf5Id fcpl = hdf5_check(H5Pcreate(H5P_FILE_CREATE), H5Pclose, where, path, "H5Pcreate failed");
  hdf5_check(H5Pset_obj_track_times(fcpl.get(), 0), where, path, "H5Pset_obj_track_times failed");
  return fcpl;
}

/// A fixed-length UTF-8 string type of `size` bytes (>= 1), NUL-padded.
inline Hdf5Id hdf5_fixed_string(std::size_t size, char const* where, std::string const& path) {
  Hdf5Id t = hdf5_check(H5Tcopy(H5T_C_S1), H5Tclose, where, path, "H5Tcopy failed");
  hdf5_check(H5Tset_size(t.get(), std::max<std::size_t>(size, 1)), where, path, "H5Tset_size failed");
  hdf5_check(H5Tset_strpad(t.get(), H5T_STR_NULLPAD), where, path, "H5Tset_strpad failed");
  hdf5_check(H5Tset_cset(t.get(), H5T_CSET_UTF8), where, path, "H5Tset_cset failed");
  return t;
}

inline void hdf5_write_attribute(hid_t obj, Hdf5Attribute const& a, char const* where, std::string const& path) {
  Hdf5Id space = hdf5_check(H5Screate(H5S_SCALAR), H5Sclose, where, path, "H5Screate failed");
  std::string const what = "cannot write attribute '" + a.name + "'";
  if (a.kind == Hdf5Attribute::Kind::text) {
    Hdf5Id type = hdf5_fixed_string(a.text.size(), where, path);
    Hdf5Id attr = hdf5_check(H5Acreate2(obj, a.name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                             H5Aclose, where, path, what);
    std::string buf = a.text;
    buf.resize(std::max<std::size_t>(a.text.size(), 1), '\0');
    hdf5_check(H5Awrite(attr.get(), type.get(), buf.data()), where, path, what);
    return;
  }
  hid_t file_type = H5T_IEEE_F64LE, mem_type = H5T_NATIVE_DOUBLE;
  void const* value = &a.real;
  if (a.kind == Hdf5Attribute::Kind::integer) {
    file_type = H5T_STD_I64LE;
    mem_type = H5T_NATIVE_INT64;
    value = &a.integer;
  } else if (a.kind == Hdf5Attribute::Kind::unsigned_integer) {
    file_type = H5T_STD_U64LE;
    mem_type = H5T_NATIVE_UINT64;
    value = &a.unsigned_integer;
  }
  Hdf5Id attr = hdf5_check(H5Acreate2(obj, a.name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
                           where, path, what);
  hdf5_check(H5Awrite(attr.get(), mem_type, value), where, path, what);
}

/// Write /label_names: the names as fixed-length UTF-8 strings, NUL-padded
/// to the longest.
inline void hdf5_write_label_names(hid_t file, std::vector<std::string> const& names, char const* where,
                                   std::string const& path) {
  hsize_t const k = names.size();
  std::size_t longest = 1;
  for (auto const& name : names)
    longest = std::max(longest, name.size());
  Hdf5Id type = hdf5_fixed_string(longest, where, path);
  Hdf5Id space = hdf5_check(H5Screate_simple(1, &k, nullptr), H5Sclose, where, path, "H5Screate failed");
  Hdf5Id dcpl = hdf5_check(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, where, path, "H5Pcreate failed");
  hdf5_check(H5Pset_obj_track_times(dcpl.get(), 0), where, path, "H5Pset_obj_track_times failed");
  Hdf5Id ds = hdf5_check(H5Dcreate2(file, "label_names", type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                         H5Dclose, where, path, "cannot create dataset 'label_names'");
  std::vector<char> buf(names.size() * longest, '\0');
  for (std::size_t j = 0; j < names.size(); ++j)
    std::copy(names[j].begin(), names[j].end(), buf.begin() + static_cast<std::ptrdiff_t>(j * longest));
  hdf5_check(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), where, path,
             "cannot write 'label_names'");
}

/// Read the strings of a string-typed dataset or attribute (fixed or
/// variable length) with `n` elements.  `read(mem_type, buffer)` does the I/O.
template <class Read>
std::vector<std::string> hdf5_read_strings(hid_t file_type, hid_t space, std::size_t n, Read read, char const* where,
                                           std::string const& path, std::string const& what) {
  std::vector<std::string> out;
  if (H5Tget_class(file_type) != H5T_STRING) hdf5_fail(where, path, what + " is not a string");
  htri_t const vlen = H5Tis_variable_str(file_type);
  if (vlen < 0) hdf5_fail(where, path, what + ": unreadable string type");
  Hdf5Id mem = hdf5_check(H5Tcopy(H5T_C_S1), H5Tclose, where, path, "H5Tcopy failed");
  H5T_cset_t const cset = H5Tget_cset(file_type);  // ASCII and UTF-8 do not convert into each other
  if (cset >= 0) H5Tset_cset(mem.get(), cset);
  if (vlen > 0) {
    hdf5_check(H5Tset_size(mem.get(), H5T_VARIABLE), where, path, "H5Tset_size failed");
    std::vector<char*> ptrs(n, nullptr);
    if (read(mem.get(), ptrs.data()) < 0) hdf5_fail(where, path, "cannot read " + what);
    out.reserve(n);
    for (char* p : ptrs)
      out.emplace_back(p ? p : "");
    // Release the strings HDF5 allocated.
    if (n > 0) {
      Hdf5Id mspace;
      hid_t s = space;
      if (s < 0) {
        hsize_t const d = n;
        mspace = Hdf5Id(H5Screate_simple(1, &d, nullptr), H5Sclose);
        s = mspace.get();
      }
#if H5_VERSION_GE(1, 12, 0)
      H5Treclaim(mem.get(), s, H5P_DEFAULT, ptrs.data());
#else
      H5Dvlen_reclaim(mem.get(), s, H5P_DEFAULT, ptrs.data());
#endif
    }
    return out;
  }
  std::size_t const size = H5Tget_size(file_type);
  if (size == 0) hdf5_fail(where, path, what + ": unreadable string type");
  hdf5_check(H5Tset_size(mem.get(), size), where, path, "H5Tset_size failed");
  hdf5_check(H5Tset_strpad(mem.get(), H5T_STR_NULLPAD), where, path, "H5Tset_strpad failed");
  std::vector<char> buf(n * size, '\0');
  if (read(mem.get(), buf.data()) < 0) hdf5_fail(where, path, "cannot read " + what);
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    char const* p = buf.data() + i * size;
    std::size_t len = 0;
    while (len < size && p[len] != '\0')
      ++len;
    // Space-padded strings (Fortran style) lose their padding.
    while (len > 0 && p[len - 1] == ' ' && H5Tget_strpad(file_type) == H5T_STR_SPACEPAD)
      --len;
    out.emplace_back(p, len);
  }
  return out;
}

/// The root group's attributes (scalars of string, float or integer type).
inline Hdf5Attributes hdf5_read_attributes(hid_t file, long long file_bytes, char const* where,
                                           std::string const& path) {
  Hdf5Attributes out;
  std::vector<std::string> names;
  auto collect = [](hid_t, char const* name, H5A_info_t const*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  hsize_t idx = 0;
  hdf5_check(H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &names), where, path,
             "cannot list the attributes of the root group");
  for (std::string const& name : names) {
    Hdf5Id attr = hdf5_check(H5Aopen(file, name.c_str(), H5P_DEFAULT), H5Aclose, where, path,
                             "cannot open attribute '" + name + "'");
    std::string const what = "attribute '" + name + "'";
    Hdf5Id space = hdf5_check(H5Aget_space(attr.get()), H5Sclose, where, path, "cannot read " + what);
    hssize_t const npoints = H5Sget_simple_extent_npoints(space.get());
    if (npoints != 1) hdf5_fail(where, path, what + " is not a scalar");
    Hdf5Id type = hdf5_check(H5Aget_type(attr.get()), H5Tclose, where, path, "cannot read the type of " + what);
    hsize_t const stored = H5Aget_storage_size(attr.get());
    if (file_bytes >= 0 && stored > static_cast<hsize_t>(file_bytes))
      hdf5_fail(where, path, what + " declares more bytes than the file has");
    H5T_class_t const cls = H5Tget_class(type.get());
    if (cls == H5T_STRING) {
      auto const s = hdf5_read_strings(
          type.get(), space.get(), 1, [&](hid_t mem, void* buf) { return H5Aread(attr.get(), mem, buf); }, where, path,
          what);
      out.set(name, s[0]);
    } else if (cls == H5T_FLOAT) {
      double v = 0;
      hdf5_check(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v), where, path, "cannot read " + what);
      out.set(name, v);
    } else if (cls == H5T_INTEGER && H5Tget_sign(type.get()) == H5T_SGN_NONE) {
      std::uint64_t v = 0;
      hdf5_check(H5Aread(attr.get(), H5T_NATIVE_UINT64, &v), where, path, "cannot read " + what);
      out.set(name, v);
    } else if (cls == H5T_INTEGER) {
      std::int64_t v = 0;
      hdf5_check(H5Aread(attr.get(), H5T_NATIVE_INT64, &v), where, path, "cannot read " + what);
      out.set(name, v);
    } else {
      hdf5_fail(where, path, what + " is neither a string nor a number");
    }
  }
  return out;
}

/// What the training-set datasets of an open file hold, validated.
struct Hdf5Layout {
  Hdf5Id images, labels, names;
  std::size_t n = 0, ny = 0, nx = 0, k = 0;
  std::vector<std::string> label_names;
  Hdf5Attributes attributes;
};

/// The extents of dataset `ds` (rank `rank`).
inline std::vector<hsize_t> hdf5_extents(hid_t ds, int rank, char const* where, std::string const& path,
                                         std::string const& what) {
  Hdf5Id space = hdf5_check(H5Dget_space(ds), H5Sclose, where, path, "cannot read the shape of " + what);
  int const r = H5Sget_simple_extent_ndims(space.get());
  if (r != rank) hdf5_fail(where, path, what + " has rank " + std::to_string(r) + ", expected " + std::to_string(rank));
  std::vector<hsize_t> d(static_cast<std::size_t>(rank));
  if (H5Sget_simple_extent_dims(space.get(), d.data(), nullptr) < 0)
    hdf5_fail(where, path, "cannot read the shape of " + what);
  return d;
}

/// The data a dataset's declared shape needs (`bytes`, as its memory type)
/// must be backed by what the file stores: every chunk present (a missing
/// chunk would read as fill values) and no more than deflate's maximum ratio
/// (1032:1) of the stored bytes.  Checked before anything is allocated.
// A virtual dataset (HDF5 >= 1.10; mpi/shard.hpp's master files) reads a
// missing source file, or a source dataset smaller than its mapping, as fill
// values without an error: every mapping's source must be there and hold at
// least the mapped number of elements.  Relative source names are resolved
// against the directory of `path` (as HDF5 does when no VDS prefix is set).
inline void hdf5_check_virtual_sources(hid_t dcpl, char const* where, std::string const& path,
                                       std::string const& what) {
  std::size_t count = 0;
  if (H5Pget_virtual_count(dcpl, &count) < 0) hdf5_fail(where, path, "cannot read the mappings of " + what);
  auto const slash = path.find_last_of('/');
  std::string const dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  for (std::size_t i = 0; i < count; ++i) {
    auto text = [&](ssize_t (*get)(hid_t, std::size_t, char*, std::size_t)) {
      ssize_t const len = get(dcpl, i, nullptr, 0);
      if (len < 0) hdf5_fail(where, path, "cannot read mapping " + std::to_string(i) + " of " + what);
      std::string out(static_cast<std::size_t>(len) + 1, '\0');
      get(dcpl, i, &out[0], out.size());
      out.resize(static_cast<std::size_t>(len));
      return out;
    };
    std::string const file = text(H5Pget_virtual_filename), dset = text(H5Pget_virtual_dsetname);
    if (file == ".") continue;  // a source inside this file: checked as any dataset when read
    std::string const source = !file.empty() && file[0] == '/' ? file : dir + file;
    Hdf5Id f(H5Fopen(source.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!f.valid())
      hdf5_fail(where, path,
                what + " maps data from " + source + ", which is missing or unreadable (HDF5 would read zeros there)");
    Hdf5Id d(H5Dopen2(f.get(), dset.c_str(), H5P_DEFAULT), H5Dclose);
    Hdf5Id src(H5Pget_virtual_srcspace(dcpl, i), H5Sclose);
    Hdf5Id have = d.valid() ? Hdf5Id(H5Dget_space(d.get()), H5Sclose) : Hdf5Id();
    if (!d.valid() || !src.valid() || !have.valid() ||
        H5Sget_simple_extent_npoints(have.get()) < H5Sget_select_npoints(src.get()))
      hdf5_fail(where, path,
                what + " maps data from '" + dset + "' in " + source +
                    ", which is missing or smaller than the mapping (HDF5 would read zeros there)");
  }
}

inline void hdf5_check_storage(hid_t ds, std::uint64_t bytes, std::uint64_t rows, long long file_bytes,
                               char const* where, std::string const& path, std::string const& what) {
  if (bytes == 0) return;
  Hdf5Id dcpl = hdf5_check(H5Dget_create_plist(ds), H5Pclose, where, path, "cannot read the layout of " + what);
  if (H5Pget_layout(dcpl.get()) == H5D_VIRTUAL) return hdf5_check_virtual_sources(dcpl.get(), where, path, what);
  hsize_t const stored = H5Dget_storage_size(ds);
  if (file_bytes >= 0 && stored > static_cast<hsize_t>(file_bytes))
    hdf5_fail(where, path, what + " declares more stored bytes than the file has (truncated or corrupted?)");
  std::uint64_t limit = stored;
  if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    int const nf = H5Pget_nfilters(dcpl.get());
    if (nf > 0) limit = stored * 1100;  // deflate expands at most 1032x; other filters do not expand more
    hsize_t chunk[3] = {0, 0, 0};
    int const cr = H5Pget_chunk(dcpl.get(), 3, chunk);
    if (cr < 1 || chunk[0] == 0) hdf5_fail(where, path, "cannot read the chunking of " + what);
    // Chunks along the first axis only (our files); other layouts: count all.
    Hdf5Id space = hdf5_check(H5Dget_space(ds), H5Sclose, where, path, "cannot read the shape of " + what);
    hsize_t dims[3] = {0, 0, 0};
    H5Sget_simple_extent_dims(space.get(), dims, nullptr);
    std::uint64_t expected = 1;
    for (int i = 0; i < cr; ++i) {
      hsize_t const d = i == 0 ? rows : dims[i];
      expected *= (d + chunk[i] - 1) / chunk[i];
    }
    hsize_t have = 0;
    if (H5Dget_num_chunks(ds, space.get(), &have) < 0) hdf5_fail(where, path, "cannot count the chunks of " + what);
    if (have < expected)
      hdf5_fail(where, path,
                what + " stores " + std::to_string(have) + " of its " + std::to_string(expected) +
                    " chunks (truncated or damaged file)");
    // A chunk whose filter mask leaves only size-keeping filters (shuffle,
    // Fletcher-32) is stored as the chunk's bytes (+ 4 for an applied
    // checksum).  HDF5 1.10 copies a full chunk out of a shorter one (a heap
    // overflow inside libhdf5, found by fuzzing: deflate masked off), so such
    // chunks of another size are refused.  By coordinate: a lookup per chunk.
    H5Z_filter_t ids[32];
    int const nids = std::min(nf, 32);
    for (int f = 0; f < nids; ++f) {
      unsigned flags = 0;
      std::size_t ncd = 0;
      ids[f] = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(f), &flags, &ncd, nullptr, 0, nullptr, nullptr);
    }
    Hdf5Id type = hdf5_check(H5Dget_type(ds), H5Tclose, where, path, "cannot read the type of " + what);
    std::uint64_t chunk_bytes = H5Tget_size(type.get());
    hsize_t grid[3] = {1, 1, 1}, step[3] = {0, 0, 0};
    for (int i = 0; i < cr && i < 3; ++i) {
      chunk_bytes *= chunk[i];
      step[i] = chunk[i];
      grid[i] = ((i == 0 ? rows : dims[i]) + chunk[i] - 1) / chunk[i];
    }
    for (hsize_t a = 0; a < grid[0]; ++a)
      for (hsize_t b = 0; b < grid[1]; ++b)
        for (hsize_t e = 0; e < grid[2]; ++e) {
          hsize_t offset[3] = {a * step[0], b * step[1], e * step[2]};
          unsigned mask = 0;
          haddr_t addr = 0;
          hsize_t size = 0;
          if (H5Dget_chunk_info_by_coord(ds, offset, &mask, &addr, &size) < 0)
            hdf5_fail(where, path, "cannot read the chunks of " + what);
          bool raw = nf <= 32, summed = false;
          for (int f = 0; f < nids; ++f) {
            bool const applied = ((mask >> f) & 1u) == 0;
            if (ids[f] == H5Z_FILTER_FLETCHER32)
              summed = summed || applied;
            else if (ids[f] != H5Z_FILTER_SHUFFLE && applied)
              raw = false;
          }
          if (raw && size != chunk_bytes + (summed ? 4 : 0))
            hdf5_fail(where, path,
                      what + " stores a chunk of " + std::to_string(size) + " bytes without compression, where " +
                          std::to_string(chunk_bytes + (summed ? 4 : 0)) + " are needed (damaged file)");
        }
  }
  if (bytes > limit)
    hdf5_fail(where, path,
              what + " declares " + std::to_string(bytes) + " bytes but the file stores only " +
                  std::to_string(stored) + " for it (truncated or corrupted?)");
}

/// Open /images, /labels, /label_names and read the names and attributes,
/// validating shapes, types and stored sizes.
inline Hdf5Layout hdf5_open_layout(hid_t file, long long file_bytes, char const* where, std::string const& path) {
  Hdf5Layout L;
  L.images = hdf5_check(H5Dopen2(file, "images", H5P_DEFAULT), H5Dclose, where, path, "no readable dataset 'images'");
  L.labels = hdf5_check(H5Dopen2(file, "labels", H5P_DEFAULT), H5Dclose, where, path, "no readable dataset 'labels'");
  L.names = hdf5_check(H5Dopen2(file, "label_names", H5P_DEFAULT), H5Dclose, where, path,
                       "no readable dataset 'label_names'");
  for (auto [ds, what] : {std::make_pair(L.images.get(), "'images'"), std::make_pair(L.labels.get(), "'labels'")}) {
    Hdf5Id t = hdf5_check(H5Dget_type(ds), H5Tclose, where, path, std::string("cannot read the type of ") + what);
    if (H5Tget_class(t.get()) != H5T_FLOAT) hdf5_fail(where, path, std::string(what) + " is not floating point");
  }
  auto const di = hdf5_extents(L.images.get(), 3, where, path, "'images'");
  auto const dl = hdf5_extents(L.labels.get(), 2, where, path, "'labels'");
  auto const dn = hdf5_extents(L.names.get(), 1, where, path, "'label_names'");
  if (di[0] != dl[0])
    hdf5_fail(where, path,
              "'images' holds " + std::to_string(di[0]) + " images but 'labels' " + std::to_string(dl[0]) + " rows");
  if (dn[0] != dl[1])
    hdf5_fail(
        where, path,
        "'labels' has " + std::to_string(dl[1]) + " columns but 'label_names' " + std::to_string(dn[0]) + " names");
  if (di[1] == 0 || di[2] == 0 || dl[1] == 0) hdf5_fail(where, path, "empty image or label shape");
  std::uint64_t pix = 0, img_bytes = 0, lab_bytes = 0;
  if (!checked_multiply(di[0], di[1], pix) || !checked_multiply(pix, di[2], pix) ||
      !checked_multiply(pix, sizeof(float), img_bytes) || !checked_multiply(dl[0], dl[1], lab_bytes) ||
      !checked_multiply(lab_bytes, sizeof(double), lab_bytes))
    hdf5_fail(where, path, "the declared shapes overflow");
  hdf5_check_storage(L.images.get(), img_bytes, di[0], file_bytes, where, path, "'images'");
  hdf5_check_storage(L.labels.get(), lab_bytes, dl[0], file_bytes, where, path, "'labels'");
  // Every name takes at least one stored byte (a heap reference or a character).
  hsize_t const names_stored = H5Dget_storage_size(L.names.get());
  if (dn[0] > names_stored)
    hdf5_fail(where, path, "'label_names' declares " + std::to_string(dn[0]) + " names but stores too little data");
  L.n = static_cast<std::size_t>(di[0]);
  L.ny = static_cast<std::size_t>(di[1]);
  L.nx = static_cast<std::size_t>(di[2]);
  L.k = static_cast<std::size_t>(dl[1]);
  Hdf5Id ntype = hdf5_check(H5Dget_type(L.names.get()), H5Tclose, where, path, "cannot read 'label_names'");
  hid_t const names = L.names.get();
  L.label_names = hdf5_read_strings(
      ntype.get(), -1, L.k,
      [names](hid_t mem, void* buf) { return H5Dread(names, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf); }, where, path,
      "'label_names'");
  L.attributes = hdf5_read_attributes(file, file_bytes, where, path);
  return L;
}

/// Read rows [i0, i1) of a dataset of rank `rank` whose rows have `row`
/// elements into `out` as `mem_type`.
inline void hdf5_read_rows(hid_t ds, int rank, std::size_t i0, std::size_t i1, hid_t mem_type, void* out,
                           char const* where, std::string const& path, std::string const& what) {
  if (i1 <= i0) return;
  Hdf5Id fspace = hdf5_check(H5Dget_space(ds), H5Sclose, where, path, "cannot read the shape of " + what);
  hsize_t dims[3] = {0, 0, 0};
  H5Sget_simple_extent_dims(fspace.get(), dims, nullptr);
  hsize_t start[3] = {i0, 0, 0}, count[3] = {i1 - i0, dims[1], dims[2]};
  hdf5_check(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr), where, path,
             "cannot select rows of " + what);
  Hdf5Id mspace = hdf5_check(H5Screate_simple(rank, count, nullptr), H5Sclose, where, path, "H5Screate failed");
  hdf5_check(
      H5Dread(ds, mem_type, mspace.get(), fspace.get(), H5P_DEFAULT, out), where, path,
      "cannot read " + what + " [" + std::to_string(i0) + ", " + std::to_string(i1) + ") (damaged or truncated data)");
}

}  // namespace detail

/// Reads a training-set file (see the file comment for the layout), all at
/// once or a range of images at a time for data sources that stream from
/// disk.  Opening validates the shapes, types and stored sizes and reads the
/// label names and attributes; read() reads images [i0, i1).
class Hdf5TrainingSetReader {
 public:
  explicit Hdf5TrainingSetReader(std::string path) : m_path(std::move(path)) {
    static constexpr char const* where = "lensing::io::Hdf5TrainingSetReader";
    detail::Hdf5Quiet quiet;
    long long const bytes = file_size(m_path);
    if (bytes < 0)
      throw std::runtime_error(std::string(where) + ": " + m_path + ": no such file (or not a regular file)");
    if (H5Fis_hdf5(m_path.c_str()) <= 0) detail::hdf5_fail(where, m_path, "not an HDF5 file (or a damaged one)");
    m_file = detail::hdf5_check(H5Fopen(m_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose, where, m_path,
                                "cannot open (not an HDF5 file, truncated or damaged)");
    m_layout = detail::hdf5_open_layout(m_file.get(), bytes, where, m_path);
  }

  std::string const& path() const { return m_path; }
  /// Number of images n.
  std::size_t size() const { return m_layout.n; }
  std::size_t ny() const { return m_layout.ny; }
  std::size_t nx() const { return m_layout.nx; }
  /// Number of labels per image K.
  std::size_t num_labels() const { return m_layout.k; }
  std::vector<std::string> const& label_names() const { return m_layout.label_names; }
  Hdf5Attributes const& attributes() const { return m_layout.attributes; }

  /// Images [i0, i1) into `images` ((i1 - i0) * ny * nx floats, row-major)
  /// and their labels into `labels` ((i1 - i0) * K doubles; nullptr skips them).
  void read(std::size_t i0, std::size_t i1, float* images, double* labels) const {
    static constexpr char const* where = "lensing::io::Hdf5TrainingSetReader::read";
    if (i0 > i1 || i1 > m_layout.n)
      throw std::invalid_argument(std::string(where) + ": range [" + std::to_string(i0) + ", " + std::to_string(i1) +
                                  ") outside the " + std::to_string(m_layout.n) + " images of " + m_path);
    if (i1 > i0 && !images) throw std::invalid_argument(std::string(where) + ": images is a null pointer");
    detail::Hdf5Quiet quiet;
    detail::hdf5_read_rows(m_layout.images.get(), 3, i0, i1, H5T_NATIVE_FLOAT, images, where, m_path, "'images'");
    if (labels)
      detail::hdf5_read_rows(m_layout.labels.get(), 2, i0, i1, H5T_NATIVE_DOUBLE, labels, where, m_path, "'labels'");
  }
  std::vector<float> read_images(std::size_t i0, std::size_t i1) const {
    check_range(i0, i1);
    std::vector<float> out((i1 - i0) * m_layout.ny * m_layout.nx);
    read(i0, i1, out.data(), nullptr);
    return out;
  }
  std::vector<double> read_labels(std::size_t i0, std::size_t i1) const {
    static constexpr char const* where = "lensing::io::Hdf5TrainingSetReader::read_labels";
    check_range(i0, i1);
    std::vector<double> out((i1 - i0) * m_layout.k);
    detail::Hdf5Quiet quiet;
    detail::hdf5_read_rows(m_layout.labels.get(), 2, i0, i1, H5T_NATIVE_DOUBLE, out.data(), where, m_path, "'labels'");
    return out;
  }

 private:
  void check_range(std::size_t i0, std::size_t i1) const {
    if (i0 > i1 || i1 > m_layout.n)
      throw std::invalid_argument("lensing::io::Hdf5TrainingSetReader: range [" + std::to_string(i0) + ", " +
                                  std::to_string(i1) + ") outside the " + std::to_string(m_layout.n) + " images of " +
                                  m_path);
  }
  std::string m_path;
  detail::Hdf5Id m_file;  // declared before the datasets: closed after them
  detail::Hdf5Layout m_layout;
};

/// A whole training set in memory.
struct Hdf5TrainingSet {
  std::size_t n = 0, ny = 0, nx = 0;
  std::vector<float> images;   ///< (n, ny, nx) row-major
  std::vector<double> labels;  ///< (n, K) row-major
  std::vector<std::string> label_names;
  Hdf5Attributes attributes;
  float image(std::size_t i, std::size_t iy, std::size_t ix) const { return images[(i * ny + iy) * nx + ix]; }
  double label(std::size_t i, std::size_t j) const { return labels[i * label_names.size() + j]; }
};

/// Read a whole training-set file (Hdf5TrainingSetReader for a range).
inline Hdf5TrainingSet read_hdf5_training_set(std::string const& path) {
  Hdf5TrainingSetReader r(path);
  Hdf5TrainingSet s;
  s.n = r.size();
  s.ny = r.ny();
  s.nx = r.nx();
  s.label_names = r.label_names();
  s.attributes = r.attributes();
  s.images.resize(s.n * s.ny * s.nx);
  s.labels.resize(s.n * r.num_labels());
  r.read(0, s.n, s.images.data(), s.labels.data());
  return s;
}

/// Writes a training-set file, resumably: see the file comment for the
/// design (`<path>.partial` holds the configuration, `<path>.partial.data`
/// the whole chunks appended so far; the next writer of the same path resumes
/// them; finish() writes `path` deterministically and atomically).  Use:
///
///     io::Hdf5TrainingSetWriter w(path, ny, nx, label_names, attributes, options);
///     std::size_t have = w.size();          // > 0 when a partial run was resumed
///     w.append(images_ptr, labels_ptr, m);  // m images (float or double) and m*K labels
///     w.finish();
///
/// The destructor without finish() keeps the partial files (whole chunks)
/// for a later resume and drops the images still held in memory.
class Hdf5TrainingSetWriter {
 public:
  Hdf5TrainingSetWriter(std::string path, std::size_t ny, std::size_t nx, std::vector<std::string> label_names,
                        Hdf5Attributes attributes = {}, Hdf5WriterOptions options = {})
      : m_path(std::move(path)),
        m_partial(m_path + ".partial"),
        m_data_path(m_path + ".partial.data"),
        m_ny(ny),
        m_nx(nx),
        m_names(std::move(label_names)),
        m_attrs(std::move(attributes)),
        m_opt(options) {
    static constexpr char const* where = "lensing::io::Hdf5TrainingSetWriter";
    auto bad = [](std::string const& what) { throw std::invalid_argument(std::string(where) + ": " + what); };
    if (m_path.empty()) bad("empty path");
    if (ny == 0 || nx == 0) bad("image shape " + std::to_string(ny) + " x " + std::to_string(nx) + " is empty");
    if (m_names.empty()) bad("no label names (at least one label per image)");
    for (std::size_t i = 0; i < m_names.size(); ++i) {
      if (m_names[i].empty() || m_names[i].find('\0') != std::string::npos)
        bad("label name " + std::to_string(i) + " is empty or holds a NUL");
      for (std::size_t j = 0; j < i; ++j)
        if (m_names[j] == m_names[i]) bad("label name '" + m_names[i] + "' appears twice");
    }
    if (m_opt.chunk_images == 0) bad("chunk_images must be >= 1");
    if (m_opt.deflate_level < 0 || m_opt.deflate_level > 9)
      bad("deflate_level " + std::to_string(m_opt.deflate_level) + " is outside 0..9");
    // HDF5 limits a chunk to 4 GiB; a record holds a chunk of images and labels.
    std::uint64_t chunk_bytes = 0, label_bytes = 0;
    if (!checked_multiply(m_opt.chunk_images, ny, chunk_bytes) || !checked_multiply(chunk_bytes, nx, chunk_bytes) ||
        !checked_multiply(chunk_bytes, sizeof(float), chunk_bytes) || chunk_bytes >= (std::uint64_t(1) << 32) ||
        !checked_multiply(m_opt.chunk_images, m_names.size() * sizeof(double), label_bytes))
      bad("a chunk of " + std::to_string(m_opt.chunk_images) + " images of " + std::to_string(ny) + " x " +
          std::to_string(nx) + " pixels exceeds HDF5's 4 GiB chunk limit");
    m_record_bytes = record_header + static_cast<std::size_t>(chunk_bytes + label_bytes);

    detail::Hdf5Quiet quiet;
    struct stat st;
    bool const exists = ::lstat(m_partial.c_str(), &st) == 0;
    if (exists && m_opt.resume) {
      open_partial();
    } else {
      for (std::string const& f : {m_partial, m_data_path})
        if (std::remove(f.c_str()) != 0 && errno != ENOENT)
          throw std::runtime_error(std::string(where) + ": " + f + ": cannot remove the old partial file (" +
                                   std::strerror(errno) + ")");
      create_partial();
    }
  }
  Hdf5TrainingSetWriter(Hdf5TrainingSetWriter&& o) noexcept { swap(o); }
  Hdf5TrainingSetWriter& operator=(Hdf5TrainingSetWriter&& o) noexcept {
    if (this != &o) {
      close_data();
      swap(o);
    }
    return *this;
  }
  Hdf5TrainingSetWriter(Hdf5TrainingSetWriter const&) = delete;
  Hdf5TrainingSetWriter& operator=(Hdf5TrainingSetWriter const&) = delete;
  ~Hdf5TrainingSetWriter() { close_data(); }

  std::string const& path() const { return m_path; }
  /// The configuration file `<path>.partial` (HDF5, no images) of the
  /// working files; the chunks go to `<path>.partial.data`.
  std::string const& partial_path() const { return m_partial; }
  std::string const& partial_data_path() const { return m_data_path; }
  /// Images appended so far (a resumed run's included): the index of the
  /// next image.
  std::size_t size() const { return m_committed + m_tail_n; }
  /// Images stored in the partial data file (a multiple of chunk_images);
  /// the rest of size() waits in memory for a full chunk or finish().
  std::size_t stored() const { return m_committed; }
  std::size_t ny() const { return m_ny; }
  std::size_t nx() const { return m_nx; }
  std::size_t num_labels() const { return m_names.size(); }
  bool finished() const { return m_finished; }

  /// Append `m` images (m * ny * nx values, row-major (m, ny, nx)) and their
  /// labels (m * K values, row-major (m, K)), from host memory.  Images and
  /// labels may be float or double: images are stored as float32 (double
  /// values rounded), labels as float64.
  template <class TImage, class TLabel>
  void append(TImage const* images, TLabel const* labels, std::size_t m) {
    static_assert(std::is_same<TImage, float>::value || std::is_same<TImage, double>::value,
                  "lensing::io::Hdf5TrainingSetWriter::append: images must be float or double");
    static_assert(std::is_same<TLabel, float>::value || std::is_same<TLabel, double>::value,
                  "lensing::io::Hdf5TrainingSetWriter::append: labels must be float or double");
    static constexpr char const* where = "lensing::io::Hdf5TrainingSetWriter::append";
    check_usable(where);
    if (m == 0) return;
    if (!images || !labels) throw std::invalid_argument(std::string(where) + ": null images or labels pointer");
    std::size_t const pix = m_ny * m_nx, k = m_names.size(), c = m_opt.chunk_images;
    m_failed = true;  // until this append succeeds: a failed write leaves an unknown state
    for (std::size_t done = 0; done < m;) {
      std::size_t const take = std::min(c - m_tail_n, m - done);
      for (std::size_t i = 0; i < take * pix; ++i)
        m_tail_images[m_tail_n * pix + i] = static_cast<float>(images[done * pix + i]);
      for (std::size_t i = 0; i < take * k; ++i)
        m_tail_labels[m_tail_n * k + i] = static_cast<double>(labels[done * k + i]);
      m_tail_n += take;
      done += take;
      if (m_tail_n == c) {
        write_record(where);
        m_tail_n = 0;
      }
    }
    m_failed = false;
  }

  /// Write `path` (complete, atomically) from the partial data and the images
  /// held in memory, then remove the partial files.  An existing `path` is
  /// replaced.  On failure `path` is untouched and the partial files are kept.
  void finish() {
    static constexpr char const* where = "lensing::io::Hdf5TrainingSetWriter::finish";
    check_usable(where);
    detail::Hdf5Quiet quiet;
    m_failed = true;  // until it succeeds
    std::size_t const n = size(), c = m_opt.chunk_images, pix = m_ny * m_nx;
    AtomicFile out(m_path, where);
    {
      std::string const& tmp = out.temp_path();
      detail::Hdf5Id fapl = detail::hdf5_file_access(where, m_path);
      detail::Hdf5Id fcpl = detail::hdf5_file_create(where, m_path);
      detail::Hdf5Id file = detail::hdf5_check(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), H5Fclose,
                                               where, m_path, "cannot create the file (unwritable directory?)");
      detail::Hdf5Id images, labels;
      create_content(file.get(), n, images, labels, where, m_path);
      // One chunk per write, in order: the same calls whatever the history.
      std::vector<unsigned char> rec(m_record_bytes);
      for (std::size_t r = 0; r < m_committed / c; ++r) {
        read_record(r, rec.data(), where);
        write_rows(images.get(), 3, r * c, c, H5T_NATIVE_FLOAT, rec.data() + record_header, where, m_path);
        write_rows(labels.get(), 2, r * c, c, H5T_NATIVE_DOUBLE, rec.data() + record_header + c * pix * sizeof(float),
                   where, m_path);
      }
      if (m_tail_n > 0) {
        write_rows(images.get(), 3, m_committed, m_tail_n, H5T_NATIVE_FLOAT, m_tail_images.data(), where, m_path);
        write_rows(labels.get(), 2, m_committed, m_tail_n, H5T_NATIVE_DOUBLE, m_tail_labels.data(), where, m_path);
      }
      images.reset();
      labels.reset();
      if (!file.reset()) detail::hdf5_fail(where, m_path, "cannot finish writing (disk full?)");
    }
    out.commit();
    close_data();
    std::remove(m_partial.c_str());
    std::remove(m_data_path.c_str());
    m_tail_n = 0;
    m_failed = false;
    m_finished = true;
  }

 private:
  // A record: 8 bytes chunk index, 8 bytes FNV-1a-64 checksum of the index
  // and payload, then the payload: chunk_images images (float32) and their
  // labels (float64), in the machine's byte order (little-endian checked by
  // the configuration file's "lensing_partial_format" attribute).
  static constexpr std::size_t record_header = 16;
  static constexpr char const* format_attribute() { return "lensing_partial_format"; }
  static std::uint32_t format_tag() {
    std::uint32_t const one = 1;
    unsigned char b;
    std::memcpy(&b, &one, 1);
    return b == 1 ? 0x4c480001u : 0x4c480101u;  // format 1, little / big endian
  }

  static std::uint64_t fnv1a(unsigned char const* p, std::size_t n, std::uint64_t h = 1469598103934665603ull) {
    for (std::size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 1099511628211ull;
    }
    return h;
  }

  void swap(Hdf5TrainingSetWriter& o) noexcept {
    std::swap(m_path, o.m_path);
    std::swap(m_partial, o.m_partial);
    std::swap(m_data_path, o.m_data_path);
    std::swap(m_ny, o.m_ny);
    std::swap(m_nx, o.m_nx);
    std::swap(m_names, o.m_names);
    std::swap(m_attrs, o.m_attrs);
    std::swap(m_opt, o.m_opt);
    std::swap(m_fd, o.m_fd);
    std::swap(m_record_bytes, o.m_record_bytes);
    std::swap(m_committed, o.m_committed);
    std::swap(m_tail_n, o.m_tail_n);
    std::swap(m_tail_images, o.m_tail_images);
    std::swap(m_tail_labels, o.m_tail_labels);
    std::swap(m_finished, o.m_finished);
    std::swap(m_failed, o.m_failed);
  }

  void check_usable(char const* where) const {
    if (m_finished) throw std::runtime_error(std::string(where) + ": " + m_path + ": already finished");
    if (m_failed)
      throw std::runtime_error(std::string(where) + ": " + m_path +
                               ": an earlier write failed; construct a new writer to resume from the partial files");
    if (m_fd < 0) throw std::runtime_error(std::string(where) + ": " + m_path + ": writer was moved from");
  }

  void alloc_tail() {
    m_tail_images.assign(m_opt.chunk_images * m_ny * m_nx, 0.0f);
    m_tail_labels.assign(m_opt.chunk_images * m_names.size(), 0.0);
  }

  /// Append the (full) chunk held in memory as one record.
  void write_record(char const* where) {
    std::vector<unsigned char> rec(m_record_bytes);
    std::uint64_t const index = m_committed / m_opt.chunk_images;
    std::size_t const ib = m_tail_images.size() * sizeof(float);
    std::memcpy(rec.data(), &index, 8);
    std::memcpy(rec.data() + record_header, m_tail_images.data(), ib);
    std::memcpy(rec.data() + record_header + ib, m_tail_labels.data(), m_tail_labels.size() * sizeof(double));
    std::uint64_t h = fnv1a(rec.data(), 8);
    h = fnv1a(rec.data() + record_header, m_record_bytes - record_header, h);
    std::memcpy(rec.data() + 8, &h, 8);
    std::size_t off = 0;
    while (off < rec.size()) {
      ssize_t const w = ::write(m_fd, rec.data() + off, rec.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0)
        throw std::runtime_error(std::string(where) + ": " + m_data_path + ": write failed (" +
                                 std::strerror(w < 0 ? errno : ENOSPC) + ")");
      off += static_cast<std::size_t>(w);
    }
    m_committed += m_opt.chunk_images;
  }

  /// Read record `r` and check its index and checksum.
  void read_record(std::size_t r, unsigned char* rec, char const* where) const {
    std::size_t off = 0;
    while (off < m_record_bytes) {
      ssize_t const got = ::pread(m_fd, rec + off, m_record_bytes - off, static_cast<off_t>(r * m_record_bytes + off));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0)
        throw std::runtime_error(std::string(where) + ": " + m_data_path + ": cannot read chunk " + std::to_string(r));
      off += static_cast<std::size_t>(got);
    }
    std::uint64_t index = 0, stored = 0;
    std::memcpy(&index, rec, 8);
    std::memcpy(&stored, rec + 8, 8);
    std::uint64_t h = fnv1a(rec, 8);
    h = fnv1a(rec + record_header, m_record_bytes - record_header, h);
    if (index != r || h != stored)
      throw std::runtime_error(std::string(where) + ": " + m_data_path + ": chunk " + std::to_string(r) + " (images " +
                               std::to_string(r * m_opt.chunk_images) + " to " +
                               std::to_string((r + 1) * m_opt.chunk_images - 1) +
                               ") is damaged (checksum); remove the partial files (or pass "
                               "Hdf5WriterOptions::resume = false) to start over");
  }

  void close_data() {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
  }

  /// Rows [i0, i0 + m) of a dataset, extending it to i0 + m.
  static void write_rows(hid_t ds, int rank, std::size_t i0, std::size_t m, hid_t mem_type, void const* data,
                         char const* where, std::string const& path) {
    hsize_t dims[3] = {0, 0, 0};
    {
      detail::Hdf5Id s = detail::hdf5_check(H5Dget_space(ds), H5Sclose, where, path, "H5Dget_space failed");
      H5Sget_simple_extent_dims(s.get(), dims, nullptr);
    }
    if (dims[0] < i0 + m) {
      dims[0] = i0 + m;
      detail::hdf5_check(H5Dset_extent(ds, dims), where, path, "cannot extend the data set");
    }
    detail::Hdf5Id fspace = detail::hdf5_check(H5Dget_space(ds), H5Sclose, where, path, "H5Dget_space failed");
    hsize_t start[3] = {i0, 0, 0}, count[3] = {m, dims[1], dims[2]};
    detail::hdf5_check(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr), where, path,
                       "cannot select rows");
    detail::Hdf5Id mspace =
        detail::hdf5_check(H5Screate_simple(rank, count, nullptr), H5Sclose, where, path, "H5Screate failed");
    detail::hdf5_check(H5Dwrite(ds, mem_type, mspace.get(), fspace.get(), H5P_DEFAULT, data), where, path,
                       "cannot write (disk full?)");
  }

  /// Datasets, names and attributes of an empty (n = 0) or full-size file.
  void create_content(hid_t file, std::size_t n, detail::Hdf5Id& images, detail::Hdf5Id& labels, char const* where,
                      std::string const& path) const {
    using detail::hdf5_check;
    using detail::Hdf5Id;
    for (auto const& a : m_attrs.entries())
      detail::hdf5_write_attribute(file, a, where, path);
    hsize_t const k = m_names.size(), c = m_opt.chunk_images;
    auto make = [&](char const* name, int rank, hsize_t const* dims, hsize_t const* chunk, hid_t type) {
      hsize_t maxdims[3] = {H5S_UNLIMITED, dims[1], rank > 2 ? dims[2] : 0};
      Hdf5Id space = hdf5_check(H5Screate_simple(rank, dims, maxdims), H5Sclose, where, path, "H5Screate failed");
      Hdf5Id dcpl = hdf5_check(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, where, path, "H5Pcreate failed");
      hdf5_check(H5Pset_chunk(dcpl.get(), rank, chunk), where, path, "cannot set the chunking");
      hdf5_check(H5Pset_obj_track_times(dcpl.get(), 0), where, path, "H5Pset_obj_track_times failed");
      if (m_opt.deflate_level > 0) {
        hdf5_check(H5Pset_shuffle(dcpl.get()), where, path, "cannot add the shuffle filter");
        hdf5_check(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(m_opt.deflate_level)), where, path,
                   "cannot add the deflate filter (HDF5 without zlib?)");
      }
      if (m_opt.fletcher32) hdf5_check(H5Pset_fletcher32(dcpl.get()), where, path, "cannot add the checksum filter");
      return hdf5_check(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), H5Dclose,
                        where, path, std::string("cannot create dataset '") + name + "'");
    };
    hsize_t const idims[3] = {n, m_ny, m_nx}, ichunk[3] = {c, m_ny, m_nx};
    hsize_t const ldims[2] = {n, k}, lchunk[2] = {c, k};
    images = make("images", 3, idims, ichunk, H5T_IEEE_F32LE);
    labels = make("labels", 2, ldims, lchunk, H5T_IEEE_F64LE);
    detail::hdf5_write_label_names(file, m_names, where, path);
  }

  /// A new run: an empty data file, then the configuration file, written
  /// under a temporary name and renamed (never half-created).
  void create_partial() {
    static constexpr char const* where = "lensing::io::Hdf5TrainingSetWriter";
    m_fd = ::open(m_data_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (m_fd < 0)
      throw std::runtime_error(std::string(where) + ": " + m_data_path + ": cannot create the partial data file (" +
                               std::strerror(errno) + ")");
    try {
      AtomicFile tmp(m_partial, where);
      {
        detail::Hdf5Id fapl = detail::hdf5_file_access(where, m_partial);
        detail::Hdf5Id fcpl = detail::hdf5_file_create(where, m_partial);
        detail::Hdf5Id file =
            detail::hdf5_check(H5Fcreate(tmp.temp_path().c_str(), H5F_ACC_EXCL, fcpl.get(), fapl.get()), H5Fclose,
                               where, m_partial, "cannot create the partial file (unwritable directory?)");
        detail::Hdf5Id images, labels;
        create_content(file.get(), 0, images, labels, where, m_partial);
        detail::Hdf5Id space =
            detail::hdf5_check(H5Screate(H5S_SCALAR), H5Sclose, where, m_partial, "H5Screate failed");
        detail::Hdf5Id attr = detail::hdf5_check(
            H5Acreate2(images.get(), format_attribute(), H5T_STD_U32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
            H5Aclose, where, m_partial, "cannot write the partial file");
        std::uint32_t const tag = format_tag();
        detail::hdf5_check(H5Awrite(attr.get(), H5T_NATIVE_UINT32, &tag), where, m_partial,
                           "cannot write the partial file");
        attr.reset();
        images.reset();
        labels.reset();
        if (!file.reset()) detail::hdf5_fail(where, m_partial, "cannot write the partial file (disk full?)");
      }
      tmp.commit();
    } catch (...) {
      close_data();
      std::remove(m_data_path.c_str());
      throw;
    }
    m_committed = 0;
    alloc_tail();
  }

  /// Resume: the configuration file must match this run's; the data file's
  /// whole records are checked, an incomplete last record (an append cut
  /// short) is dropped.
  void open_partial() {
    static constexpr char const* where = "lensing::io::Hdf5TrainingSetWriter (resume)";
    std::string const hint = " (remove the partial files, or pass Hdf5WriterOptions::resume = false, to start over)";
    long long const bytes = file_size(m_partial);
    if (bytes < 0) detail::hdf5_fail(where, m_partial, "the partial file is not a regular file" + hint);
    if (H5Fis_hdf5(m_partial.c_str()) <= 0)
      detail::hdf5_fail(where, m_partial, "the partial file is not a readable HDF5 file (damaged?)" + hint);
    {
      detail::Hdf5Id file =
          detail::hdf5_check(H5Fopen(m_partial.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose, where, m_partial,
                             "cannot open the partial file (truncated or damaged?)" + hint);
      detail::Hdf5Layout L = detail::hdf5_open_layout(file.get(), bytes, where, m_partial);
      std::uint32_t tag = 0;
      {
        detail::Hdf5Id attr =
            detail::hdf5_check(H5Aopen(L.images.get(), format_attribute(), H5P_DEFAULT), H5Aclose, where, m_partial,
                               "not a partial file of this writer (no format tag)" + hint);
        detail::hdf5_check(H5Aread(attr.get(), H5T_NATIVE_UINT32, &tag), where, m_partial,
                           "cannot read the format tag" + hint);
      }
      if (tag != format_tag())
        detail::hdf5_fail(where, m_partial,
                          "written by another version of this writer or on a machine of the other byte order" + hint);
      auto differ = [&](std::string const& what) {
        throw std::runtime_error(std::string(where) + ": " + m_partial + ": " + what +
                                 " differs from this run's; the partial files belong to another configuration" + hint);
      };
      if (L.ny != m_ny || L.nx != m_nx)
        differ("the image shape " + std::to_string(L.ny) + " x " + std::to_string(L.nx) +
               " (this run: " + std::to_string(m_ny) + " x " + std::to_string(m_nx) + ")");
      if (L.k != m_names.size())
        differ("the number of labels " + std::to_string(L.k) + " (this run: " + std::to_string(m_names.size()) + ")");
      for (std::size_t j = 0; j < L.k; ++j)
        if (L.label_names[j] != m_names[j])
          differ("label name " + std::to_string(j) + " '" + L.label_names[j] + "' (this run: '" + m_names[j] + "')");
      check_types(L, differ);
      compare_attributes(L.attributes, differ);
    }
    m_fd = ::open(m_data_path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (m_fd < 0)
      throw std::runtime_error(std::string(where) + ": " + m_data_path + ": cannot open the partial data file (" +
                               std::strerror(errno) + ")");
    try {
      long long const data_bytes = file_size(m_data_path);
      if (data_bytes < 0) throw std::runtime_error(std::string(where) + ": " + m_data_path + ": not a regular file");
      std::size_t const records = static_cast<std::size_t>(data_bytes) / m_record_bytes;
      if (static_cast<std::uint64_t>(records) * m_record_bytes != static_cast<std::uint64_t>(data_bytes) &&
          ::ftruncate(m_fd, static_cast<off_t>(records * m_record_bytes)) != 0)
        throw std::runtime_error(std::string(where) + ": " + m_data_path + ": cannot drop an incomplete chunk (" +
                                 std::strerror(errno) + ")");
      if (m_opt.verify_on_resume) {
        std::vector<unsigned char> rec(m_record_bytes);
        for (std::size_t r = 0; r < records; ++r)
          read_record(r, rec.data(), where);
      }
      m_committed = records * m_opt.chunk_images;
    } catch (...) {
      close_data();
      throw;
    }
    alloc_tail();
  }

  template <class Differ>
  void check_types(detail::Hdf5Layout const& L, Differ const& differ) const {
    static constexpr char const* where = "lensing::io::Hdf5TrainingSetWriter (resume)";
    for (int which = 0; which < 2; ++which) {
      hid_t const ds = which == 0 ? L.images.get() : L.labels.get();
      char const* name = which == 0 ? "'images'" : "'labels'";
      detail::Hdf5Id t = detail::hdf5_check(H5Dget_type(ds), H5Tclose, where, m_partial, "cannot read a type");
      if (H5Tequal(t.get(), which == 0 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE) <= 0)
        differ(std::string("the data type of ") + name + " (this run: " + (which == 0 ? "float32" : "float64") + ")");
      detail::Hdf5Id dcpl =
          detail::hdf5_check(H5Dget_create_plist(ds), H5Pclose, where, m_partial, "cannot read a layout");
      hsize_t chunk[3] = {0, 0, 0};
      if (H5Pget_layout(dcpl.get()) != H5D_CHUNKED || H5Pget_chunk(dcpl.get(), 3, chunk) < 1 ||
          chunk[0] != m_opt.chunk_images)
        differ(std::string("the chunking of ") + name + " (" + std::to_string(chunk[0]) +
               " images per chunk; this run: " + std::to_string(m_opt.chunk_images) + ")");
      int const nf = H5Pget_nfilters(dcpl.get());
      bool shuffle = false, fletcher = false;
      int level = 0;
      for (int f = 0; f < nf; ++f) {
        unsigned flags = 0, cd[8] = {0};
        std::size_t ncd = 8;
        H5Z_filter_t const id =
            H5Pget_filter2(dcpl.get(), static_cast<unsigned>(f), &flags, &ncd, cd, 0, nullptr, nullptr);
        if (id == H5Z_FILTER_SHUFFLE)
          shuffle = true;
        else if (id == H5Z_FILTER_FLETCHER32)
          fletcher = true;
        else if (id == H5Z_FILTER_DEFLATE)
          level = ncd > 0 ? static_cast<int>(cd[0]) : -1;
        else
          differ(std::string("the filters of ") + name + " (an unknown filter " + std::to_string(id) + ")");
      }
      bool const want_shuffle = m_opt.deflate_level > 0;
      if (shuffle != want_shuffle || level != m_opt.deflate_level || fletcher != m_opt.fletcher32)
        differ(std::string("the compression of ") + name + " (deflate " + std::to_string(level) + ", shuffle " +
               (shuffle ? "on" : "off") + ", fletcher32 " + (fletcher ? "on" : "off") + "; this run: deflate " +
               std::to_string(m_opt.deflate_level) + ", fletcher32 " + (m_opt.fletcher32 ? "on" : "off") + ")");
    }
  }

  template <class Differ>
  void compare_attributes(Hdf5Attributes const& file, Differ const& differ) const {
    for (auto const& a : file.entries()) {
      Hdf5Attribute const* mine = m_attrs.find(a.name);
      if (!mine)
        differ("attribute '" + a.name + "' = " + a.value_string() + " (absent in this run)");
      else if (*mine != a)
        differ("attribute '" + a.name + "' = " + a.value_string() + " (this run: " + mine->value_string() + ")");
    }
    for (auto const& a : m_attrs.entries())
      if (!file.find(a.name))
        differ("attribute '" + a.name + "' (absent in the file; this run: " + a.value_string() + ")");
  }

  std::string m_path, m_partial, m_data_path;
  std::size_t m_ny = 0, m_nx = 0;
  std::vector<std::string> m_names;
  Hdf5Attributes m_attrs;
  Hdf5WriterOptions m_opt;
  int m_fd = -1;                   // the partial data file, appended to
  std::size_t m_record_bytes = 0;  // one chunk of images and labels with its header
  std::size_t m_committed = 0;     // images in the partial data file (whole chunks)
  std::size_t m_tail_n = 0;        // images waiting in memory (< chunk_images)
  std::vector<float> m_tail_images;
  std::vector<double> m_tail_labels;
  bool m_finished = false, m_failed = false;
};

}  // namespace io
}  // namespace lensing

#endif  // LENSING_IO_HDF5_HPP
