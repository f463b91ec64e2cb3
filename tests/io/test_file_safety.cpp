// Bad input and faults in the file formats (npy, FITS, PNG, weight files):
// handles released on every path, validation before allocation, strict
// headers, value-preserving conversions, literal FITS file names, atomic
// replacement under a failing write, and checksummed weight files.
#include <lensing/io/fits.hpp>
#include <lensing/io/npy.hpp>
#include <lensing/io/png.hpp>
#include <lensing/nn/batchnorm.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/serialize.hpp>

#include <lensing_test.hpp>

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace io = lensing::io;
namespace nn = lensing::nn;
namespace fs = std::filesystem;

/// A fresh, empty directory, removed at scope exit.
struct TempDir {
  std::string path;
  explicit TempDir(std::string const& name) {
    path =
        (fs::temp_directory_path() / ("lensing_test_file_safety_" + std::to_string(::getpid()) + "_" + name)).string();
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(std::string const& name) const { return path + "/" + name; }
  /// Names of the entries (files and folders).
  std::set<std::string> entries() const {
    std::set<std::string> out;
    for (auto const& e : fs::directory_iterator(path))
      out.insert(e.path().filename().string());
    return out;
  }
};

std::string read_bytes(std::string const& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
void write_bytes(std::string const& path, std::string const& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

/// Overwrite an existing file of the same size in place: truncating a file
/// (as write_bytes does) makes ext4 flush it first, ~1 ms per call.
void overwrite_bytes(std::string const& path, std::string const& bytes) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

int open_descriptors() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d))
      ++n;
    ::closedir(d);
  }
  return n;
}

/// Resident set size in bytes (/proc/self/statm).
double resident_bytes() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return double(resident) * double(::sysconf(_SC_PAGESIZE));
}

/// One 80-character FITS header card.
std::string card(std::string s) {
  s.resize(80, ' ');
  return s;
}
std::string pad_block(std::string s, char fill = ' ') {
  s.resize((s.size() + 2879) / 2880 * 2880, fill);
  return s;
}
/// A primary header with the given NAXISn (NAXIS1 first) and BITPIX.
std::string fits_primary_header(int bitpix, std::vector<std::string> const& naxes) {
  std::string h = card("SIMPLE  =                    T") + card("BITPIX  = " + std::to_string(bitpix)) +
                  card("NAXIS   = " + std::to_string(naxes.size()));
  for (std::size_t i = 0; i < naxes.size(); ++i)
    h += card("NAXIS" + std::to_string(i + 1) + "  = " + naxes[i]);
  return pad_block(h + card("END"));
}

/// A .npy file with header dict `dict` and `data` after it.
std::string npy_bytes(std::string const& dict, std::string const& data = "") {
  std::string h = dict;
  std::size_t const total = 10 + h.size() + 1;
  h.append((total + 63) / 64 * 64 - total, ' ');
  h.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(char(h.size() & 0xff));
  out.push_back(char(h.size() >> 8));
  return out + h + data;
}
template <class T>
std::string raw(std::vector<T> const& v) {
  return std::string(reinterpret_cast<char const*>(v.data()), v.size() * sizeof(T));
}

/// Lowers the file-size limit of the process for its lifetime (writes past
/// it fail with EFBIG, SIGXFSZ ignored): a full disk, reproducibly.
struct FileSizeLimit {
  rlimit saved{};
  void (*saved_handler)(int) = nullptr;
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved);
    saved_handler = ::signal(SIGXFSZ, SIG_IGN);
    rlimit l = saved;
    l.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &l) == 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, saved_handler);
  }
};

template <class S, class Mem>
auto make_net() {
  return nn::make_sequential(nn::Shape4{2, 3, 1, 1}, nn::Dense<S, Mem>(3, 4), nn::BatchNorm<S, Mem>(4),
                             nn::Dense<S, Mem>(4, 2));
}

}  // namespace

TEST_CASE("FITS: failed reads release the cfitsio handle") {
  TempDir dir("leak");
  // A valid empty primary HDU followed by a truncated IMAGE extension
  // header (no END card): cfitsio opens the file, then fails to read the
  // extension.  The old reader dropped the handle on this path; after
  // ~10000 of them every open in the process failed.
  std::string const primary =
      pad_block(card("SIMPLE  =                    T") + card("BITPIX  =                    8") +
                card("NAXIS   =                    0") + card("EXTEND  =                    T") + card("END"));
  std::string const extension = card("XTENSION= 'IMAGE   '") + card("BITPIX  =                  -32") +
                                card("NAXIS   =                    2") + card("NAXIS1  =                   10") +
                                card("NAXIS2  =                   10") + card("PCOUNT  =                    0") +
                                card("GCOUNT  =                    1");
  write_bytes(dir / "crafted.fits", primary + extension);
  std::vector<float> good(6, 1.5f);
  io::write_fits(dir / "good.fits", good.data(), {2, 3});
  int const before = open_descriptors();
  int failures = 0;
  for (int i = 0; i < 2000; ++i) {
    try {
      io::read_fits<float>(dir / "crafted.fits");
    } catch (std::runtime_error const&) {
      ++failures;
    }
  }
  CHECK(failures == 2000);
  // Every failed read closed its file: no descriptor is left open.
  CHECK(open_descriptors() == before);
  auto const img = io::read_fits<float>(dir / "good.fits");
  CHECK(img.data == good);
}

TEST_CASE("FITS: file names are literal") {
  TempDir dir("names");
  std::vector<double> data = {1, 2, 3, 4, 5, 6};
  // '[' and ']' are characters of the name, not cfitsio's section syntax.
  std::string const odd = dir / "x[2:3,*].fits";
  io::write_fits(odd, data.data(), {2, 3});
  CHECK(dir.entries() == std::set<std::string>{"x[2:3,*].fits"});
  auto const back = io::read_fits<double>(odd);
  CHECK(back.shape == std::vector<std::size_t>{2, 3});
  CHECK(back.data == data);
  // A plain path does not take a section suffix: "plain.fits[1:1,*]" names
  // a file that does not exist.
  io::write_fits(dir / "plain.fits", data.data(), {2, 3});
  CHECK_THROWS_WITH_AS(io::read_fits<double>(dir / "plain.fits[1:1,*]"), doctest::Contains("plain.fits[1:1,*]"),
                       std::runtime_error);
  // Neither a leading '!' nor a compressed file is interpreted.
  CHECK_THROWS_AS(io::read_fits<double>("!" + (dir / "plain.fits")), std::runtime_error);
  // A failed write leaves no file of any name.
  auto const entries = dir.entries();
  CHECK_THROWS_AS(io::write_fits(dir / "y[2:3,*].fits", data.data(), {2, 3}, {{"BAD", std::nan(""), "", ""}}),
                  std::invalid_argument);
  CHECK_THROWS_AS(io::write_fits(dir / "missing/z[1].fits", data.data(), {2, 3}), std::runtime_error);
  CHECK(dir.entries() == entries);
}

TEST_CASE("tiny files declaring huge arrays fail fast without allocating") {
  TempDir dir("cap");
  auto const check_cheap = [](auto const& read) {
    double const rss0 = resident_bytes();
    auto const t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH_AS(read(), doctest::Contains("lensing::io::"), std::runtime_error);
    double const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(seconds < 1.0);
    // The old readers zero-filled the declared size first (1 GiB, 16 GiB):
    // the resident set may not grow by more than a few buffers.
    CHECK(resident_bytes() - rss0 < 64e6);
  };
  // .npy: 128 bytes declaring 2^28 float32 values (1 GiB).
  write_bytes(dir / "huge.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (268435456,), }"));
  CHECK(fs::file_size(dir / "huge.npy") < 200);
  check_cheap([&] { return io::read_npy<float>(dir / "huge.npy"); });
  CHECK_THROWS_WITH_AS(io::read_npy<float>(dir / "huge.npy"), doctest::Contains("truncated data"), std::runtime_error);
  // .npy whose element count overflows 64 bits (the old reader returned the
  // shape with no data).
  write_bytes(dir / "overflow.npy",
              npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }"));
  check_cheap([&] { return io::read_npy<double>(dir / "overflow.npy"); });
  CHECK_THROWS_WITH_AS(io::read_npy<double>(dir / "overflow.npy"), doctest::Contains("overflows 64 bits"),
                       std::runtime_error);
  // FITS: a 3 kB file declaring NAXIS1 = 2^32 (16 GiB as float).
  write_bytes(dir / "huge.fits", fits_primary_header(8, {"4294967296", "1"}) + std::string(100, '\0'));
  CHECK(fs::file_size(dir / "huge.fits") < 4000);
  check_cheap([&] { return io::read_fits<float>(dir / "huge.fits"); });
  CHECK_THROWS_WITH_AS(io::read_fits<float>(dir / "huge.fits"), doctest::Contains("truncated data"),
                       std::runtime_error);
  // FITS whose pixel count overflows 64 bits.
  write_bytes(dir / "overflow.fits", fits_primary_header(-32, {"4194304", "4194304", "4194304"}));
  check_cheap([&] { return io::read_fits<double>(dir / "overflow.fits"); });
}

TEST_CASE("npy: headers are parsed strictly") {
  TempDir dir("header");
  std::string const p = dir / "h.npy";
  std::string const six = raw(std::vector<float>(6, 2.f));
  auto const shape_of = [&](std::string const& dict) {
    write_bytes(p, npy_bytes(dict, six));
    return io::read_npy<float>(p).shape;
  };
  using Shape = std::vector<std::size_t>;
  // What numpy and other writers produce is accepted.
  CHECK(shape_of("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") == Shape{2, 3});
  CHECK(shape_of("{'descr': '<f4', 'fortran_order': False, 'shape': (2,3,)}") == Shape{2, 3});
  CHECK(shape_of("{'shape': (6,), 'fortran_order': False, 'descr': '<f4'}") == Shape{6});
  CHECK(shape_of("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (6L,)}") == Shape{6});
  CHECK(shape_of("{'descr': '<f4', 'fortran_order': False, 'shape': (), }") == Shape{});
  // Malformed headers are refused with the file's name, never misread.
  char const* const bad[] = {
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }",                       // was read as (23,)
      "{'descr': '<f4', 'fortran_order': False, 'shape': 6, }",                           // was read as a scalar
      "{'descr': '<f4', 'fortran_order': False, 'shape': (6), }",                         // the integer 6, not a tuple
      "{'descr': '<f4', 'fortran_order': False, 'shape': (x,), }",                        // non-numeric
      "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }",                       // negative
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }",                      // not an integer
      "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }",  // was std::out_of_range
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'shape': (6,)}",
      "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3)}",
      "{'descr': '<f4', 'shape': (2, 3)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} trailing",
      "{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}",
      "{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3)}",
      "'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3",
  };
  std::string const prefix = "lensing::io::read_npy: " + p;
  for (char const* dict : bad) {
    CAPTURE(dict);
    write_bytes(p, npy_bytes(dict, six));
    CHECK_THROWS_WITH_AS(io::read_npy<float>(p), doctest::Contains(prefix.c_str()), std::runtime_error);
  }
}

TEST_CASE("npy and FITS: conversions that would change a value throw") {
  TempDir dir("convert");
  std::string const p = dir / "c.npy";
  auto const put = [&](auto const& values) { io::write_npy(p, values.data(), {values.size()}); };
  double const nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  // float64 -> float32: beyond float's range throws (was inf); NaN, inf,
  // rounding and underflow are kept as IEEE conversion gives them.
  put(std::vector<double>{1.0, 1e300});
  CHECK_THROWS_WITH_AS(io::read_npy<float>(p), doctest::Contains("element 1"), std::runtime_error);
  CHECK(io::read_npy<double>(p).data[1] == 1e300);
  put(std::vector<double>{nan, -inf, 0.1, 1e-50, -3.4e38});
  auto const f = io::read_npy<float>(p).data;
  CHECK(std::isnan(f[0]));
  CHECK(f[1] == -std::numeric_limits<float>::infinity());
  CHECK(f[2] == 0.1f);
  CHECK(f[3] == 0.0f);
  CHECK(f[4] == -3.4e38f);
  // float/double -> int: only finite integral values in range.
  for (double v : {nan, inf, 2.5, 2147483648.0, -2147483649.0}) {
    CAPTURE(v);
    put(std::vector<double>{7.0, v});
    CHECK_THROWS_WITH_AS(io::read_npy<std::int32_t>(p), doctest::Contains("cannot be converted to int32"),
                         std::runtime_error);
  }
  put(std::vector<double>{-2147483648.0, 2147483647.0, -0.0});
  CHECK(io::read_npy<std::int32_t>(p).data == std::vector<std::int32_t>{-2147483647 - 1, 2147483647, 0});
  for (float v : {std::nanf(""), 9.3e18f, 0.5f}) {
    CAPTURE(v);
    put(std::vector<float>{v});
    CHECK_THROWS_AS(io::read_npy<std::int64_t>(p), std::runtime_error);
  }
  put(std::vector<float>{-9.2233720e18f});
  CHECK(io::read_npy<std::int64_t>(p).data[0] == std::int64_t(-9.2233720e18f));
  // int64 -> int32: only values in range; int -> float: rounded.
  put(std::vector<std::int64_t>{1, 3000000000LL});
  CHECK_THROWS_AS(io::read_npy<std::int32_t>(p), std::runtime_error);
  CHECK(io::read_npy<float>(p).data == std::vector<float>{1.f, 3e9f});
  // FITS: cfitsio would give inf for 1e300 read as float; it throws.
  std::vector<double> img = {1, 2, 1e300, nan};
  io::write_fits(dir / "c.fits", img.data(), {2, 2});
  CHECK_THROWS_WITH_AS(io::read_fits<float>(dir / "c.fits"), doctest::Contains("pixel 2"), std::runtime_error);
  img[2] = -inf;
  io::write_fits(dir / "c.fits", img.data(), {2, 2});
  auto const r = io::read_fits<float>(dir / "c.fits").data;
  CHECK(r[2] == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(r[3]));
}

TEST_CASE("a failed write leaves the previous file intact and no temporary") {
  TempDir dir("atomic");
  std::vector<double> small = {1, 2, 3, 4}, big(20000);
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = std::sin(double(i));
  // Each writer: a good file, then a write that fails part-way (the file
  // size limit stands in for a full disk).
  auto const check_replacement = [&](std::string const& name, auto const& write_good, auto const& write_more) {
    CAPTURE(name);
    write_good(dir / name);
    std::string const before = read_bytes(dir / name);
    REQUIRE(!before.empty());
    auto const entries = dir.entries();
    {
      FileSizeLimit const limit(64);
      CHECK_THROWS_AS(write_more(dir / name), std::runtime_error);
    }
    CHECK(read_bytes(dir / name) == before);
    CHECK(dir.entries() == entries);
    // And a write that succeeds replaces it.
    write_more(dir / name);
    CHECK(read_bytes(dir / name) != before);
  };
  check_replacement(
      "a.npy", [&](std::string const& p) { io::write_npy(p, small.data(), {4}); },
      [&](std::string const& p) {
        io::write_npy(p, big.data(), {100, 200});
      });
  check_replacement(
      "a.fits",
      [&](std::string const& p) {
        io::write_fits(p, small.data(), {2, 2});
      },
      [&](std::string const& p) {
        io::write_fits(p, big.data(), {100, 200});
      });
  check_replacement(
      "a.png", [&](std::string const& p) { io::write_png(p, small, 2, 2); },
      [&](std::string const& p) { io::write_png(p, big, 200, 100); });
  using Mem = Kokkos::HostSpace;
  auto net = make_net<double, Mem>();
  net.initialize(1);
  check_replacement(
      "a.weights", [&](std::string const& p) { nn::save_weights(net, p); },
      [&](std::string const& p) {
        net.initialize(2);
        nn::save_weights(net, p);
      });
}

LENSING_TEST_CASE_TEMPLATE("weight files: every corrupted byte and non-finite weights are rejected", Config,
                           lensing::test::AllConfigs) {
  using S = typename Config::scalar;
  using Mem = typename Config::memory_space;
  TempDir dir(std::string("weights_") + Config::execution_space::name() + std::to_string(sizeof(S)));
  auto net = make_net<S, Mem>();
  net.initialize(3);
  std::string const p = dir / "w.bin";
  nn::save_weights(net, p);
  std::string const good = read_bytes(p);
  // 24-byte header, 16 per layer, the values, an 8-byte checksum.
  std::size_t const values = std::size_t(net.num_params() + net.num_state());
  REQUIRE(good.size() == 24 + 16 * 3 + sizeof(S) * values + 8);
  auto other = make_net<S, Mem>();
  other.initialize(4);
  auto const untouched = lensing::test::host_values(other.parameters());
  // Every single-byte corruption of the file is refused: through the
  // decoder for every byte (header, data, checksum) and three bit patterns,
  // through files for every byte of the data section; the network is left
  // unchanged.
  std::vector<std::uint64_t> counts;
  net.for_each_layer([&](auto const& l) {
    counts.push_back(std::uint64_t(l.num_params()));
    counts.push_back(std::uint64_t(l.num_state()));
  });
  std::size_t const data_begin = 24 + 16 * 3, data_end = good.size() - 8;
  int accepted = 0;
  for (std::size_t i = 0; i < good.size(); ++i)
    for (unsigned char flip : {0x01, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = char(bad[i] ^ flip);
      try {
        nn::detail::decode_weights<S>(bad.data(), bad.size(), bad.size(), counts, p);
        ++accepted;
      } catch (std::exception const&) {
      }
    }
  CHECK(accepted == 0);
  for (std::size_t i = data_begin; i < data_end; ++i) {
    std::string bad = good;
    bad[i] = char(bad[i] ^ 0x20);
    overwrite_bytes(p, bad);
    try {
      nn::load_weights(other, p);
      ++accepted;
    } catch (std::runtime_error const&) {
    }
  }
  CHECK(accepted == 0);
  CHECK(lensing::test::host_values(other.parameters()) == untouched);
  overwrite_bytes(p, good);
  nn::load_weights(other, p);
  CHECK(lensing::test::host_values(other.parameters()) == lensing::test::host_values(net.parameters()));
  // A data-section corruption is reported as such.
  {
    std::string bad = good;
    bad[24 + 16 * 3 + 5] ^= 0x10;
    write_bytes(p, bad);
    CHECK_THROWS_WITH_AS(nn::load_weights(other, p), doctest::Contains("checksum mismatch"), std::runtime_error);
  }
  // Non-finite weights with a valid checksum are refused on load, and not
  // saved in the first place.
  std::vector<std::vector<S>> blocks;
  net.for_each_layer([&](auto const& l) {
    blocks.push_back(nn::detail::host_vector(l.parameters()));
    blocks.push_back(nn::detail::host_vector(l.state()));
  });
  CHECK(nn::detail::encode_weights(blocks) == good);
  for (S v : {std::numeric_limits<S>::quiet_NaN(), std::numeric_limits<S>::infinity()}) {
    auto with = blocks;
    with[2][1] = v;
    write_bytes(p, nn::detail::encode_weights(with));
    CHECK_THROWS_WITH_AS(nn::load_weights(other, p), doctest::Contains("non-finite"), std::runtime_error);
  }
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), net.parameters());
  h(0) = std::numeric_limits<S>::quiet_NaN();
  Kokkos::deep_copy(net.parameters(), h);
  write_bytes(p, good);
  CHECK_THROWS_WITH_AS(nn::save_weights(net, p), doctest::Contains("non-finite"), std::invalid_argument);
  CHECK(read_bytes(p) == good);
  // Files of format version 1 (no checksum) are refused with a clear message.
  std::string v1 = good.substr(0, good.size() - 8);
  v1[8] = 1;
  write_bytes(p, v1);
  CHECK_THROWS_WITH_AS(nn::load_weights(other, p), doctest::Contains("format version 1"), std::runtime_error);
}
