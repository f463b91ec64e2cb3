// .npy and FITS files: round trips on every backend, cross-checks against
// xtensor's independent .npy implementation, and bad files.
#include <lensing/core/views.hpp>
#include <lensing/io/fits.hpp>
#include <lensing/io/npy.hpp>

#include <lensing_test.hpp>

#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>

#include <unistd.h>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

namespace {

std::string temp_path(std::string const& name) {
  return "/tmp/lensing_test_io_" + std::to_string(::getpid()) + "_" + name;
}

template <class T, class View>
void fill(View const& v) {
  auto h = Kokkos::create_mirror_view(v);
  auto* p = h.data();
  for (size_t i = 0; i < h.size(); ++i)
    p[i] = static_cast<T>(std::is_integral<T>::value ? (long(i) * 7919 - 3000000000L) % 2000000000L
                                                     : 0.1 * double(i) - 3.7e-3 * double(i * i));
  Kokkos::deep_copy(v, h);
}

template <class View>
bool equal_views(View const& a, View const& b) {
  auto ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
  auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
  if (ha.size() != hb.size()) return false;
  for (size_t i = 0; i < ha.size(); ++i)
    if (ha.data()[i] != hb.data()[i]) return false;
  return true;
}

template <class T, class Mem>
void npy_round_trips() {
  std::string const path = temp_path("rt.npy");
  {
    Kokkos::View<T*, Kokkos::LayoutRight, Mem> a("a", 13), b("b", 13);
    fill<T>(a);
    lensing::io::write_npy(path, a);
    lensing::io::read_npy(path, b);
    CHECK(equal_views(a, b));
  }
  {
    Kokkos::View<T**, Kokkos::LayoutRight, Mem> a("a", 5, 7), b("b", 5, 7);
    fill<T>(a);
    lensing::io::write_npy(path, a);
    lensing::io::read_npy(path, b);
    CHECK(equal_views(a, b));
  }
  {
    Kokkos::View<T***, Kokkos::LayoutRight, Mem> a("a", 3, 4, 6), b("b", 3, 4, 6);
    fill<T>(a);
    lensing::io::write_npy(path, a);
    lensing::io::read_npy(path, b);
    CHECK(equal_views(a, b));
    // Rank or extents that differ from the file are refused.
    Kokkos::View<T***, Kokkos::LayoutRight, Mem> c("c", 3, 6, 4);
    CHECK_THROWS_WITH_AS(lensing::io::read_npy(path, c), doctest::Contains("has shape (3, 4, 6)"),
                         std::invalid_argument);
  }
  {
    Kokkos::View<T****, Kokkos::LayoutRight, Mem> a("a", 2, 3, 2, 5), b("b", 2, 3, 2, 5);
    fill<T>(a);
    lensing::io::write_npy(path, a);
    lensing::io::read_npy(path, b);
    CHECK(equal_views(a, b));
  }
  std::remove(path.c_str());
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("npy round trips of every dtype and rank", Config, lensing::test::DoubleConfigs) {
  using Mem = typename Config::memory_space;
  npy_round_trips<float, Mem>();
  npy_round_trips<double, Mem>();
  npy_round_trips<std::int32_t, Mem>();
  npy_round_trips<std::int64_t, Mem>();
}

TEST_CASE("npy files agree with xtensor's xnpy in both directions") {
  std::string const path = temp_path("x.npy");
  // Ours -> xnpy.
  std::vector<double> data(2 * 3 * 4);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = std::sin(double(i)) * 1e3;
  lensing::io::write_npy(path, data.data(), {2, 3, 4});
  auto const x = xt::load_npy<double>(path);
  REQUIRE(x.dimension() == 3);
  CHECK(x.shape()[0] == 2);
  CHECK(x.shape()[1] == 3);
  CHECK(x.shape()[2] == 4);
  for (size_t i = 0; i < data.size(); ++i)
    CHECK(x.data()[i] == data[i]);
  // The data starts at a multiple of 64 bytes (format 1.0 alignment).
  {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    CHECK((long(f.tellg()) - long(data.size() * 8)) % 64 == 0);
  }
  // xnpy -> ours, float32 rank 1 and int64 rank 2, with conversion to double.
  xt::xarray<float> const xf = {1.5f, -2.25f, 3.0f};
  xt::dump_npy(path, xf);
  auto const rf = lensing::io::read_npy<double>(path);
  CHECK(rf.descr == "<f4");
  REQUIRE(rf.shape == std::vector<std::size_t>{3});
  CHECK(rf.data == std::vector<double>{1.5, -2.25, 3.0});
  xt::xarray<std::int64_t> const xi = {{1, 2, 3}, {-4, 5, 6000000000LL}};
  xt::dump_npy(path, xi);
  auto const ri = lensing::io::read_npy<std::int64_t>(path);
  CHECK(ri.descr == "<i8");
  CHECK(ri.shape == std::vector<std::size_t>{2, 3});
  CHECK(ri.data == std::vector<std::int64_t>{1, 2, 3, -4, 5, 6000000000LL});
  // Fortran order is refused, not silently transposed.
  xt::xarray<double, xt::layout_type::column_major> xc = {{1, 2}, {3, 4}};
  xt::dump_npy(path, xc);
  CHECK_THROWS_WITH_AS(lensing::io::read_npy<double>(path), doctest::Contains("Fortran-order"), std::runtime_error);
  std::remove(path.c_str());
}

TEST_CASE("bad npy files give clear errors") {
  std::string const path = temp_path("bad.npy");
  CHECK_THROWS_WITH_AS(lensing::io::read_npy<float>(temp_path("does_not_exist.npy")),
                       doctest::Contains("lensing::io::read_npy"), std::runtime_error);
  {
    std::ofstream f(path, std::ios::binary);
    f << "hello, not numpy";
  }
  CHECK_THROWS_WITH_AS(lensing::io::read_npy<float>(path), doctest::Contains("not a .npy file"), std::runtime_error);
  // Truncated data block.
  std::vector<double> data(100, 1.0);
  lensing::io::write_npy(path, data.data(), {10, 10});
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), long(bytes.size()) - 8);
  }
  CHECK_THROWS_WITH_AS(lensing::io::read_npy<double>(path), doctest::Contains("truncated data"), std::runtime_error);
  // Unsupported dtype.
  xt::xarray<std::uint8_t> const xb = {1, 2};
  xt::dump_npy(path, xb);
  CHECK_THROWS_WITH_AS(lensing::io::read_npy<double>(path), doctest::Contains("is not supported"), std::runtime_error);
  CHECK_THROWS_WITH_AS(lensing::io::write_npy(std::string("/nonexistent_dir/x.npy"), data.data(), {100}),
                       doctest::Contains("cannot open for writing"), std::runtime_error);
  std::remove(path.c_str());
}

LENSING_TEST_CASE_TEMPLATE("FITS round trips with parameter keywords", Config, lensing::test::AllConfigs) {
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  std::string const path = temp_path("rt.fits");
  std::vector<lensing::io::FitsKeyword> keys = {{"theta_E", 1.234567890123, "", "Einstein radius [arcsec]"},
                                                {"GAMMA", 2.05, "", ""},
                                                {"center_x", -0.0312, "", ""},
                                                {"SEED", 42, "", ""},
                                                {"SOURCE", 0, "procedural galaxy", "source type"}};
  {
    lensing::View2D<Scalar, Mem> a("a", 9, 14), b("b", 9, 14);
    fill<Scalar>(a);
    lensing::io::write_fits(path, a, keys);
    auto const got = lensing::io::read_fits(path, b);
    CHECK(equal_views(a, b));
    auto const img = lensing::io::read_fits<double>(path);
    REQUIRE(img.shape == std::vector<std::size_t>{9, 14});
    CHECK(img.value("theta_E") == doctest::Approx(1.234567890123).epsilon(1e-14));
    CHECK(img.value("gamma") == 2.05);
    CHECK(img.value("CENTER_X") == -0.0312);
    CHECK(img.value("seed") == 42);
    REQUIRE(img.find("SOURCE") != nullptr);
    CHECK(img.find("SOURCE")->text == "procedural galaxy");
    CHECK(img.find("nothing") == nullptr);
    CHECK_THROWS_AS(img.value("nothing"), std::runtime_error);
    CHECK(got.size() == img.keywords.size());
  }
  {
    // Cube (n, ny, nx): NAXIS1 = nx.
    lensing::View3D<Scalar, Mem> a("a", 3, 5, 8), b("b", 3, 5, 8);
    fill<Scalar>(a);
    lensing::io::write_fits(path, a);
    lensing::io::read_fits(path, b);
    CHECK(equal_views(a, b));
    fitsfile* f = nullptr;
    int status = 0;
    long naxes[3];
    fits_open_image(&f, path.c_str(), READONLY, &status);
    fits_get_img_size(f, 3, naxes, &status);
    int bitpix = 0;
    fits_get_img_type(f, &bitpix, &status);
    fits_close_file(f, &status);
    CHECK(status == 0);
    CHECK(naxes[0] == 8);
    CHECK(naxes[1] == 5);
    CHECK(naxes[2] == 3);
    CHECK(bitpix == (std::is_same<Scalar, float>::value ? FLOAT_IMG : DOUBLE_IMG));
    // Wrong extents or rank are refused.
    lensing::View3D<Scalar, Mem> c("c", 3, 8, 5);
    CHECK_THROWS_WITH_AS(lensing::io::read_fits(path, c), doctest::Contains("has shape (3, 5, 8)"),
                         std::invalid_argument);
    lensing::View2D<Scalar, Mem> d("d", 5, 8);
    CHECK_THROWS_AS(lensing::io::read_fits(path, d), std::invalid_argument);
  }
  std::remove(path.c_str());
}

TEST_CASE("bad FITS files give clear errors") {
  std::string const path = temp_path("bad.fits");
  CHECK_THROWS_WITH_AS(lensing::io::read_fits<float>(temp_path("missing.fits")),
                       doctest::Contains("lensing::io::read_fits"), std::runtime_error);
  {
    std::ofstream f(path, std::ios::binary);
    f << "SIMPLE? no, this is not FITS at all";
  }
  CHECK_THROWS_AS(lensing::io::read_fits<float>(path), std::runtime_error);
  std::vector<double> data(4, 1.0);
  CHECK_THROWS_AS(lensing::io::write_fits(path, data.data(), {4}), std::invalid_argument);
  CHECK_THROWS_WITH_AS(lensing::io::write_fits(std::string("/nonexistent_dir/x.fits"), data.data(), {2, 2}),
                       doctest::Contains("cannot create"), std::runtime_error);
  double const nan = std::nan("");
  CHECK_THROWS_AS(lensing::io::write_fits(path, data.data(), {2, 2}, {{"BAD", nan, "", ""}}), std::invalid_argument);
  // A 1-D image is not a 2-D/3-D image.
  {
    fitsfile* f = nullptr;
    int status = 0;
    long n = 4;
    std::string const target = "!" + path;
    fits_create_file(&f, target.c_str(), &status);
    fits_create_img(f, DOUBLE_IMG, 1, &n, &status);
    fits_write_img(f, TDOUBLE, 1, 4, data.data(), &status);
    fits_close_file(f, &status);
    REQUIRE(status == 0);
  }
  CHECK_THROWS_WITH_AS(lensing::io::read_fits<double>(path), doctest::Contains("NAXIS = 1"), std::runtime_error);
  std::remove(path.c_str());
}
