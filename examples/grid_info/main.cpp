// grid_info: describe a pixel grid the way lensing sees it.
//
//   grid_info [n] [pixel_scale] [supersampling]
//
// Prints the Kokkos configuration, the grid's extent on the sky, and the
// coordinates of its corner pixels and sub-pixels, computed on the default
// execution space.  Bad arguments give a clear error and exit code 2.
#include "../common/cli.hpp"

#include <lensing/geometry/grid_coordinates.hpp>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace {
void usage(std::FILE* f) { std::fprintf(f, "usage: grid_info [n] [pixel_scale] [supersampling]\n"); }
}  // namespace

// Declared in ../common/cli.hpp.
[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "grid_info: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

int main(int argc, char* argv[]) {
  // Arguments first (Kokkos-free), so a bad one exits before Kokkos starts.
  if (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    usage(stdout);
    return 0;
  }
  if (argc > 4) bad("at most 3 arguments, got " + std::to_string(argc - 1));
  int const n = argc > 1 ? int(parse_integer("n (argument 1)", argv[1], 1, 16384)) : 64;
  double const scale = argc > 2 ? parse_real("pixel_scale (argument 2)", argv[2], 1e-6, 1e4) : 0.05;
  int const k = argc > 3 ? int(parse_integer("supersampling (argument 3)", argv[3], 1, 16)) : 1;
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    auto const grid = lensing::PixelGrid<double>::square(n, scale, k);
    using Space = Kokkos::DefaultExecutionSpace;
    using Map = lensing::View2D<double, Space::memory_space>;
    auto const x = lensing::allocate_view<Map>("grid_info", "x", false, grid.fine_ny(), grid.fine_nx());
    auto const y = lensing::allocate_view<Map>("grid_info", "y", false, grid.fine_ny(), grid.fine_nx());
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
    std::fprintf(stderr, "grid_info: %s\n", e.what());
    usage(stderr);
    return 2;
  }
  return 0;
}
