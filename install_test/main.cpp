// A downstream program built against the installed lensing package with its
// fits and fft components: uses the umbrella header, runs a kernel, writes
// the result as FITS and reads it back into an xtensor array, and checks the
// values (exit code 1 if wrong).
#include <lensing/io/xtensor_views.hpp>
#include <lensing/lensing.hpp>

#include <cmath>
#include <cstdio>
#include <string>

#if !defined(LENSING_HAS_FITS) || !defined(LENSING_HAS_FFT)
#error "lensing_consumer links lensing::fits and lensing::fft"
#endif

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard guard(argc, argv);
  auto const grid = lensing::PixelGrid<double>::square(64, 0.05, 2);
  using Space = Kokkos::DefaultExecutionSpace;
  lensing::View2D<double, Space::memory_space> x("x", 128, 128), y("y", 128, 128);
  lensing::grid_coordinates(Space(), grid, x, y);
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
  // Sub-pixel (0,0) of a 64 x 0.05" grid supersampled 2x: -1.6 + 0.0125.
  std::string const path = "lensing_consumer_x.fits";
  lensing::io::write_fits(path, hx);
  xt::xarray<double> back;
  lensing::io::read_fits(path, back);
  std::remove(path.c_str());
  bool const ok =
      std::fabs(hx(0, 0) - (-1.5875)) < 1e-12 && LENSING_VERSION == 100 && back == lensing::io::as_xtensor(hx);
  std::printf("lensing %d.%d.%d consumer on %s: %s\n", LENSING_VERSION_MAJOR, LENSING_VERSION_MINOR,
              LENSING_VERSION_PATCH, Space::name(), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
