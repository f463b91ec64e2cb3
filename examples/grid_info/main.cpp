// grid_info: describe a pixel grid the way lensing sees it.
//
//   grid_info [n] [pixel_scale] [supersampling]
//
// Prints the Kokkos configuration, the grid's extent on the sky, and the
// coordinates of its corner pixels and sub-pixels, computed on the default
// execution space.  Bad arguments give a clear error and exit code 2.
#include <lensing/geometry/grid_coordinates.hpp>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    int const n = argc > 1 ? std::stoi(argv[1]) : 64;
    double const scale = argc > 2 ? std::stod(argv[2]) : 0.05;
    int const k = argc > 3 ? std::stoi(argv[3]) : 1;
    auto const grid = lensing::PixelGrid<double>::square(n, scale, k);
    using Space = Kokkos::DefaultExecutionSpace;
    lensing::View2D<double, Space::memory_space> x("x", grid.fine_ny(), grid.fine_nx()),
        y("y", grid.fine_ny(), grid.fine_nx());
    Space space;
    lensing::grid_coordinates(space, grid, x, y);
    auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
    auto hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
    std::printf("Kokkos %d on %s (concurrency %d)\n", KOKKOS_VERSION, Space::name(), space.concurrency());
    std::printf("grid: %d x %d pixels of %g\" (%g\" x %g\" field), supersampling %d -> %d x %d sub-pixels\n", n, n,
                scale, n * scale, n * scale, k, grid.fine_nx(), grid.fine_ny());
    std::printf("pixel (0,0) centre:        (%+.6f, %+.6f)\"\n", grid.x(0), grid.y(0));
    std::printf("pixel (n-1,n-1) centre:    (%+.6f, %+.6f)\"\n", grid.x(n - 1), grid.y(n - 1));
    std::printf("first sub-pixel centre:    (%+.6f, %+.6f)\"\n", hx(0, 0), hy(0, 0));
    int const last = grid.fine_nx() - 1;
    std::printf("last sub-pixel centre:     (%+.6f, %+.6f)\"\n", hx(last, last), hy(last, last));
  } catch (std::exception const& e) {
    std::fprintf(stderr, "grid_info: %s\nusage: grid_info [n] [pixel_scale] [supersampling]\n", e.what());
    return 2;
  }
  return 0;
}
