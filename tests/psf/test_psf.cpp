#include <lensing/psf/convolution.hpp>
#include <lensing/psf/fft_convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/psf/kernels.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {
template <class Scalar, class Mem>
lensing::View2D<Scalar, Mem> pattern(int ny, int nx, double a, double b) {
  lensing::View2D<Scalar, Mem> v("v", ny, nx);
  auto h = Kokkos::create_mirror_view(v);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix)
      h(iy, ix) = Scalar(std::sin(a * ix + b * iy * iy + 0.3) + 0.2 * std::cos(b * ix * iy));
  Kokkos::deep_copy(v, h);
  return v;
}
template <class V>
double dot(V const& a, V const& b) {
  auto ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
  auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
  double s = 0;
  for (std::size_t i = 0; i < ha.extent(0); ++i)
    for (std::size_t j = 0; j < ha.extent(1); ++j)
      s += double(ha(i, j)) * double(hb(i, j));
  return s;
}
}  // namespace

TEST_CASE("PSF kernels are odd-sized and sum to 1") {
  for (auto const& k :
       {lensing::gaussian_psf_kernel<double>(0.11, 0.05), lensing::gaussian_psf_kernel<double>(0.3, 0.04),
        lensing::moffat_psf_kernel<double>(0.15, 2.5, 0.05, 15)}) {
    CHECK(k.size % 2 == 1);
    CHECK(std::accumulate(k.values.begin(), k.values.end(), 0.0) == doctest::Approx(1).epsilon(1e-14));
    // Symmetric and peaked at the centre.
    int const r = k.radius();
    CHECK(k(r, r) == *std::max_element(k.values.begin(), k.values.end()));
    CHECK(k(0, 1) == doctest::Approx(k(1, 0)).epsilon(1e-14));
    CHECK(k(r - 1, r) == doctest::Approx(k(r + 1, r)).epsilon(1e-14));
  }
  // Pixel-integrated Gaussian: the kernel's second moment is sigma^2 + 1/12
  // (pixel variance) in pixel units, to the truncation error.
  double const sigma = 2.3;
  auto const g = lensing::gaussian_psf_kernel<double>(sigma * 2 * std::sqrt(2 * std::log(2.0)), 1.0, 8.0);
  double m2 = 0;
  for (int iy = 0; iy < g.size; ++iy)
    for (int ix = 0; ix < g.size; ++ix)
      m2 += g(iy, ix) * (ix - g.radius()) * (ix - g.radius());
  CHECK(m2 == doctest::Approx(sigma * sigma + 1.0 / 12).epsilon(1e-10));
  // Moffat FWHM: the half-maximum falls at fwhm/2 (sampled finely).
  auto const m = lensing::moffat_psf_kernel<double>(9.0, 3.0, 1.0, 31, 1);
  double const peak = m(15, 15);
  double const half = std::pow(1 + std::pow(4.5 / (9.0 / (2 * std::sqrt(std::pow(2.0, 1 / 3.0) - 1))), 2), -3.0);
  CHECK(half == doctest::Approx(0.5).epsilon(1e-12));
  CHECK(m(15, 19) / peak > 0.5);
  CHECK(m(15, 20) / peak < 0.5);
  CHECK_THROWS_AS(lensing::pixel_kernel<double>(std::vector<double>(16, 1.0), 4), std::invalid_argument);
  CHECK_THROWS_AS(lensing::pixel_kernel<double>(std::vector<double>(9, 0.0), 3), std::invalid_argument);
  CHECK_THROWS_AS(lensing::pixel_kernel<double>(std::vector<double>(8, 1.0), 3), std::invalid_argument);
  CHECK_THROWS_AS(lensing::gaussian_psf_kernel<double>(-0.1, 0.05), std::invalid_argument);
  CHECK_THROWS_AS(lensing::moffat_psf_kernel<double>(0.1, 0.9, 0.05, 11), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("direct convolution: brute force and adjoint identity", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  double const tol = std::is_same<Scalar, double>::value ? 1e-13 : 2e-6;
  std::vector<Scalar> kv(25);
  for (int i = 0; i < 25; ++i)
    kv[i] = Scalar(1 + 0.3 * std::sin(1.7 * i));  // asymmetric
  auto const k = lensing::pixel_kernel(kv, 5);
  int const ny = 11, nx = 9;
  lensing::DirectConvolution<Scalar, Mem> const A(k, ny, nx);
  auto const x = pattern<Scalar, Mem>(ny, nx, 0.7, 0.13), y = pattern<Scalar, Mem>(ny, nx, -0.4, 0.29);
  lensing::View2D<Scalar, Mem> Ax("Ax", ny, nx), Aty("Aty", ny, nx);
  Space space;
  A.apply(space, x, Ax);
  A.apply_adjoint(space, y, Aty);
  space.fence();
  double const lhs = dot(Ax, y), rhs = dot(x, Aty);
  CHECK(std::fabs(lhs - rhs) <= tol * (std::fabs(lhs) + 1));
  // Brute force: the image of a delta at (3, 4) is the kernel centred there.
  lensing::View2D<Scalar, Mem> d("d", ny, nx), out("out", ny, nx);
  Kokkos::deep_copy(Kokkos::subview(d, 3, 4), Scalar(1));
  A.apply(space, d, out);
  auto ho = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  int bad = 0;
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      int const a = iy - 3 + 2, b = ix - 4 + 2;
      double const want = (a >= 0 && a < 5 && b >= 0 && b < 5) ? double(k(a, b)) : 0.0;
      bad += std::fabs(double(ho(iy, ix)) - want) > tol;
    }
  CHECK(bad == 0);
  lensing::View2D<Scalar, Mem> wrong("wrong", ny + 1, nx);
  CHECK_THROWS_AS(A.apply(space, wrong, out), std::invalid_argument);
  CHECK_THROWS_AS(A.apply(space, out, out), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("Gaussian filter: scipy conventions and adjoint identity", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  double const tol = std::is_same<Scalar, double>::value ? 1e-13 : 2e-6;
  Space space;
  for (auto [ny, nx, fwhm] : {std::tuple<int, int, double>{13, 10, 0.11}, {3, 17, 0.2}, {1, 5, 0.13}, {20, 20, 0.6}}) {
    lensing::GaussianFilter<Scalar, Mem> const G(fwhm, 0.05, ny, nx);
    // scipy: radius = int(5 sigma + 0.5).
    double const s = fwhm / (2 * std::sqrt(2 * std::log(2.0))) / 0.05;
    CHECK(G.radius() == int(5 * s + 0.5));
    auto const x = pattern<Scalar, Mem>(ny, nx, 0.7, 0.13), y = pattern<Scalar, Mem>(ny, nx, -0.4, 0.29);
    lensing::View2D<Scalar, Mem> Gx("Gx", ny, nx), Gty("Gty", ny, nx);
    G.apply(space, x, Gx);
    G.apply_adjoint(space, y, Gty);
    space.fence();
    double const lhs = dot(Gx, y), rhs = dot(x, Gty);
    CHECK(std::fabs(lhs - rhs) <= tol * (std::fabs(lhs) + 1));
    // "nearest" keeps a constant image constant.
    lensing::View2D<Scalar, Mem> c("c", ny, nx), Gc("Gc", ny, nx);
    Kokkos::deep_copy(c, Scalar(2.5));
    G.apply(space, c, Gc);
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), Gc);
    int bad = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix)
        bad += std::fabs(double(h(iy, ix)) - 2.5) > 4 * tol;
    CHECK(bad == 0);
  }
  CHECK_THROWS_AS((lensing::GaussianFilter<Scalar, Mem>(0.0, 0.05, 4, 4)), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("FFT convolution equals direct convolution, adjoint included", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  double const tol = std::is_same<Scalar, double>::value ? 1e-12 : 2e-5;
  Space space;
  for (auto [ny, nx, size] : {std::tuple<int, int, int>{11, 9, 5}, {16, 21, 3}, {7, 7, 13}, {1, 6, 3}}) {
    std::vector<Scalar> kv(size * size);
    for (int i = 0; i < size * size; ++i)
      kv[i] = Scalar(1 + 0.5 * std::sin(2.3 * i + 0.4));
    auto const k = lensing::pixel_kernel(kv, size);
    lensing::DirectConvolution<Scalar, Mem> const D(k, ny, nx);
    lensing::FftConvolution<Scalar, Mem> const F(space, k, ny, nx);
    auto const x = pattern<Scalar, Mem>(ny, nx, 0.7, 0.13), y = pattern<Scalar, Mem>(ny, nx, -0.4, 0.29);
    lensing::View2D<Scalar, Mem> a("a", ny, nx), b("b", ny, nx), c("c", ny, nx), d("d", ny, nx);
    D.apply(space, x, a);
    F.apply(space, x, b);
    D.apply_adjoint(space, y, c);
    F.apply_adjoint(space, y, d);
    space.fence();
    auto ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
    auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
    auto hc = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), c);
    auto hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), d);
    int bad = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        bad += std::fabs(double(ha(iy, ix)) - double(hb(iy, ix))) > tol;
        bad += std::fabs(double(hc(iy, ix)) - double(hd(iy, ix))) > tol;
      }
    CHECK(bad == 0);
    double const lhs = dot(b, y), rhs = dot(x, d);
    CHECK(std::fabs(lhs - rhs) <= tol * (std::fabs(lhs) + 1));
  }
  lensing::View2D<Scalar, Mem> wrong("wrong", 3, 3), out("out", 4, 4);
  lensing::FftConvolution<Scalar, Mem> const F(space, lensing::gaussian_psf_kernel<Scalar>(0.2, 0.1), 4, 4);
  CHECK_THROWS_AS(F.apply(space, wrong, out), std::invalid_argument);
}
