// xtensor at the data boundary: npy and FITS files read into and written from
// xt::xarray / xt::xtensor, and the zero-copy adapters between Kokkos host
// Views and xtensor containers (io/xtensor_views.hpp).  All checks are exact:
// files store the values bit for bit and the adapters share memory.
#include <lensing/io/fits.hpp>
#include <lensing/io/npy.hpp>
#include <lensing/io/xtensor_views.hpp>

#include <lensing_test.hpp>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <xtensor/xview.hpp>

namespace {

namespace io = lensing::io;
namespace fs = std::filesystem;

std::string temp_file(std::string const& name) {
  return (fs::temp_directory_path() / ("lensing_test_xtensor_" + std::to_string(::getpid()) + "_" + name)).string();
}

/// a(i, j, k) = distinct values, exact in every npy dtype.
template <class T>
xt::xarray<T> sample_array() {
  xt::xarray<T> a = xt::xarray<T>::from_shape({2, 3, 4});
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      for (std::size_t k = 0; k < 4; ++k)
        a(i, j, k) = T(100 * i + 10 * j + k) - T(7);
  return a;
}

/// The message of the std::invalid_argument `f` throws ("" if none).
template <class F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (std::invalid_argument const& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE_TEMPLATE("npy round trip through xt::xarray and xt::xtensor", T, float, double, std::int32_t, std::int64_t) {
  auto const path = temp_file("roundtrip.npy");
  auto const a = sample_array<T>();
  io::write_npy(path, a);

  xt::xarray<T> b;
  io::read_npy(path, b);
  CHECK(b.shape() == a.shape());
  CHECK(b == a);

  xt::xtensor<T, 3> c;
  io::read_npy(path, c);
  CHECK(c == a);

  // The file is the row-major dump that the pointer reader sees.
  auto const raw = io::read_npy<T>(path);
  CHECK(raw.shape == std::vector<std::size_t>{2, 3, 4});
  CHECK(std::equal(raw.data.begin(), raw.data.end(), a.data()));

  // A column-major destination gets the same values.
  xt::xarray<T, xt::layout_type::column_major> d;
  io::read_npy(path, d);
  CHECK(d == a);

  // Wrong rank for a fixed-rank container: a clear error, `e` untouched.
  xt::xtensor<T, 2> e = xt::zeros<T>({1, 1});
  auto const msg = invalid_argument_message([&] { io::read_npy(path, e); });
  CHECK(msg.find("has shape (2, 3, 4) (rank 3) but the xtensor has rank 2") != std::string::npos);
  CHECK(e.shape()[0] == 1);
  fs::remove(path);
}

TEST_CASE("npy writes strided views, column-major arrays and expressions in row-major order") {
  auto const path = temp_file("strided.npy");
  auto const a = sample_array<double>();
  // A strided slice: (2, 3, 2), every other k.
  auto const slice = xt::view(a, xt::all(), xt::all(), xt::range(0, 4, 2));
  io::write_npy(path, slice);
  xt::xarray<double> back;
  io::read_npy(path, back);
  CHECK(back.shape() == std::vector<std::size_t>{2, 3, 2});
  CHECK(back == xt::xarray<double>(slice));

  xt::xarray<double, xt::layout_type::column_major> cm = a;
  io::write_npy(path, cm);
  auto const raw = io::read_npy<double>(path);
  CHECK(std::equal(raw.data.begin(), raw.data.end(), a.data()));

  io::write_npy(path, 2.0 * a + 1.0);  // a lazy expression
  io::read_npy(path, back);
  CHECK(back == xt::xarray<double>(2.0 * a + 1.0));
  fs::remove(path);
}

TEST_CASE("npy files interchange between Kokkos Views and xtensor") {
  auto const path = temp_file("interchange.npy");
  Kokkos::View<double**, Kokkos::LayoutRight, Kokkos::HostSpace> v("v", 3, 5);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 5; ++j)
      v(i, j) = 0.25 * (5 * i + j);
  io::write_npy(path, v);
  xt::xtensor<double, 2> x;
  io::read_npy(path, x);
  CHECK(x == io::as_xtensor(v));

  x *= -1.0;
  io::write_npy(path, x);
  Kokkos::View<double**, Kokkos::LayoutRight, Kokkos::HostSpace> w("w", 3, 5);
  io::read_npy(path, w);
  CHECK(io::as_xtensor(w) == x);
  fs::remove(path);
}

TEST_CASE_TEMPLATE("FITS round trip through xt::xarray and xt::xtensor", T, float, double) {
  auto const path = temp_file("roundtrip.fits");
  auto const cube = sample_array<T>();
  io::write_fits(path, cube, {{"THETA_E", 1.25, "", "Einstein radius"}});
  xt::xarray<T> b;
  auto const keys = io::read_fits(path, b);
  CHECK(b.shape() == cube.shape());
  CHECK(b == cube);
  REQUIRE(keys.size() == 1);
  CHECK(keys[0].value == 1.25);

  xt::xtensor<T, 3> c;
  io::read_fits(path, c);
  CHECK(c == cube);
  xt::xtensor<T, 2> image;
  CHECK(invalid_argument_message([&] { io::read_fits(path, image); }).find("but the xtensor has rank 2") !=
        std::string::npos);

  // A 2-D image from a strided view of the cube: stored (ny, nx) = (3, 2).
  auto const plane = xt::view(cube, 1, xt::all(), xt::range(1, 4, 2));
  io::write_fits(path, plane);
  io::read_fits(path, image);
  CHECK(image.shape()[0] == 3);
  CHECK(image.shape()[1] == 2);
  CHECK(image == xt::xtensor<T, 2>(plane));

  // FITS images have rank 2 or 3.
  xt::xarray<T> line = xt::ones<T>({4});
  CHECK(invalid_argument_message([&] { io::write_fits(path, line); }).find("rank 2 (ny, nx) or 3") !=
        std::string::npos);
  fs::remove(path);
}

TEST_CASE("as_xtensor adapts a host View without copying") {
  Kokkos::View<float***, Kokkos::LayoutRight, Kokkos::HostSpace> v("v", 2, 3, 4);
  auto x = io::as_xtensor(v);
  static_assert(decltype(x)::rank == 3, "fixed rank from the View");
  CHECK(x.data() == v.data());
  CHECK(x.shape()[0] == 2);
  CHECK(x.shape()[1] == 3);
  CHECK(x.shape()[2] == 4);
  x(1, 2, 3) = 5.0f;  // writes through to the View
  CHECK(v(1, 2, 3) == 5.0f);
  v(0, 1, 2) = -3.0f;
  CHECK(x(0, 1, 2) == -3.0f);

  // const View -> read-only adaptor over the same memory.
  Kokkos::View<float const***, Kokkos::LayoutRight, Kokkos::HostSpace> cv = v;
  auto const cx = io::as_xtensor(cv);
  CHECK(cx.data() == v.data());
  CHECK(cx(1, 2, 3) == 5.0f);

  // Contiguous subviews work; so does rank 1 of any layout.
  auto row = Kokkos::subview(v, 1, Kokkos::ALL, Kokkos::ALL);
  CHECK(io::as_xtensor(row).data() == &v(1, 0, 0));
  Kokkos::View<double*, Kokkos::LayoutLeft, Kokkos::HostSpace> l1("l1", 7);
  CHECK(io::as_xtensor(l1).data() == l1.data());
}

TEST_CASE("as_xtensor refuses non-contiguous and column-major Views") {
  Kokkos::View<double**, Kokkos::LayoutRight, Kokkos::HostSpace> v("v", 4, 6);
  auto cols = Kokkos::subview(v, Kokkos::ALL, Kokkos::make_pair(1, 3));
  auto const msg = invalid_argument_message([&] { io::as_xtensor(cols); });
  CHECK(msg.find("lensing::io::as_xtensor: the view is not contiguous row-major (extents (4, 2), strides (6, 1))") !=
        std::string::npos);
  Kokkos::View<double**, Kokkos::LayoutLeft, Kokkos::HostSpace> left("left", 4, 6);
  CHECK(invalid_argument_message([&] { io::as_xtensor(left); }).find("not contiguous row-major") != std::string::npos);
}

TEST_CASE("as_host_view adapts xtensor containers without copying") {
  xt::xtensor<double, 2> t = xt::zeros<double>({3, 4});
  auto v = io::as_host_view(t);
  static_assert(std::is_same<decltype(v), Kokkos::View<double**, Kokkos::LayoutRight, Kokkos::HostSpace,
                                                       Kokkos::MemoryTraits<Kokkos::Unmanaged>>>::value,
                "an unmanaged LayoutRight host View");
  CHECK(v.data() == t.data());
  CHECK(v.extent(0) == 3);
  CHECK(v.extent(1) == 4);
  // A kernel on the host writes into the xtensor's memory.
  Kokkos::parallel_for(
      "test_xtensor_fill", Kokkos::MDRangePolicy<Kokkos::DefaultHostExecutionSpace, Kokkos::Rank<2>>({0, 0}, {3, 4}),
      KOKKOS_LAMBDA(int i, int j) { v(i, j) = 10.0 * i + j; });
  Kokkos::fence();
  CHECK(t(2, 3) == 23.0);

  // xarray: the rank is named; a const container gives a View of const.
  xt::xarray<float> a = xt::ones<float>({2, 2, 5});
  auto const va = io::as_host_view<3>(a);
  CHECK(va.data() == a.data());
  CHECK(va.extent(2) == 5);
  xt::xarray<float> const& ca = a;
  auto const cva = io::as_host_view<3>(ca);
  static_assert(std::is_same<typename decltype(cva)::value_type, float const>::value, "const in, const out");
  CHECK(cva.data() == a.data());

  // A contiguous view of a container: a row.
  auto row = xt::view(t, 1, xt::all());
  auto const vr = io::as_host_view<1>(row);
  CHECK(vr.data() == t.data() + 4);
  CHECK(vr(3) == 13.0);

  // The zero-copy pair composes: View -> xtensor -> View is the same memory.
  Kokkos::View<double**, Kokkos::LayoutRight, Kokkos::HostSpace> k("k", 2, 3);
  auto xk = io::as_xtensor(k);
  CHECK(io::as_host_view(xk).data() == k.data());
}

TEST_CASE("as_host_view refuses wrong ranks, column-major and strided arrays") {
  xt::xarray<double> a = xt::zeros<double>({3, 4});
  CHECK(invalid_argument_message([&] {
          io::as_host_view<3>(a);
        }).find("lensing::io::as_host_view: the xtensor array has rank 2 (shape (3, 4)), the View rank 3") !=
        std::string::npos);
  xt::xarray<double, xt::layout_type::column_major> cm = xt::zeros<double>({3, 4});
  CHECK(invalid_argument_message([&] {
          io::as_host_view<2>(cm);
        }).find("not contiguous row-major (shape (3, 4), strides (1, 3))") != std::string::npos);
  auto every_other = xt::view(a, xt::all(), xt::range(0, 4, 2));
  CHECK(invalid_argument_message([&] { io::as_host_view<2>(every_other); }).find("not contiguous row-major") !=
        std::string::npos);
}
