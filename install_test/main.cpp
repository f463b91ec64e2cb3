// A downstream program built against the installed lensing package: uses the
// umbrella header, runs a kernel, and checks the result (exit code 1 if wrong).
#include <lensing/lensing.hpp>

#include <cmath>
#include <cstdio>

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard guard(argc, argv);
  auto const grid = lensing::PixelGrid<double>::square(64, 0.05, 2);
  using Space = Kokkos::DefaultExecutionSpace;
  lensing::View2D<double, Space::memory_space> x("x", 128, 128), y("y", 128, 128);
  lensing::grid_coordinates(Space(), grid, x, y);
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
  // Sub-pixel (0,0) of a 64 x 0.05" grid supersampled 2x: -1.6 + 0.0125.
  bool const ok = std::fabs(hx(0, 0) - (-1.5875)) < 1e-12 && LENSING_VERSION == 100;
  std::printf("lensing %d.%d.%d consumer on %s: %s\n", LENSING_VERSION_MAJOR, LENSING_VERSION_MINOR,
              LENSING_VERSION_PATCH, Space::name(), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
