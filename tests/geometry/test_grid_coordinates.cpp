#include <lensing/geometry/grid_coordinates.hpp>

#include <lensing_test.hpp>

#include <stdexcept>

LENSING_TEST_CASE_TEMPLATE("grid_coordinates fills the supersampled grid", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Memory = typename Config::memory_space;
  lensing::PixelGrid<Scalar> const grid(7, 5, Scalar(0.08), 3, Scalar(0.5), Scalar(-0.25));
  lensing::View2D<Scalar, Memory> x("x", 15, 21), y("y", 15, 21);
  Space space;
  lensing::grid_coordinates(space, grid, x, y);
  space.fence();
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
  auto hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
  Scalar sx = 0, sy = 0;
  for (int jy = 0; jy < 15; ++jy)
    for (int jx = 0; jx < 21; ++jx) {
      CHECK(hx(jy, jx) == grid.fine_x(jx));
      CHECK(hy(jy, jx) == grid.fine_y(jy));
      sx += hx(jy, jx);
      sy += hy(jy, jx);
    }
  // Centred on (center_x, center_y).
  CHECK(sx / Scalar(315) == doctest::Approx(0.5).epsilon(1e-5));
  CHECK(sy / Scalar(315) == doctest::Approx(-0.25).epsilon(1e-5));
  // Spacing is pixel_scale / k.
  CHECK(hx(0, 1) - hx(0, 0) == doctest::Approx(Scalar(0.08) / 3).epsilon(1e-5));

  lensing::View2D<Scalar, Memory> bad("bad", 5, 7);
  CHECK_THROWS_WITH_AS(lensing::grid_coordinates(space, grid, bad, y),
                       "lensing::grid_coordinates: x must have extents (fine_ny, fine_nx) = (15, 21), got (5, 7)",
                       std::invalid_argument);
}
