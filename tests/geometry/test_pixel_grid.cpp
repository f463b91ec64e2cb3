#include <lensing/geometry/pixel_grid.hpp>

#include <lensing_test.hpp>

#include <limits>
#include <numeric>
#include <stdexcept>
#include <type_traits>
#include <vector>

using lensing::PixelGrid;

namespace {
// lenstronomy's util.make_grid(numPix, deltapix, subgrid_res), re-derived:
// arange(n*k) * deltapix/k, shifted by (k-1)/(2k) deltapix, minus its mean.
std::vector<double> make_grid_1d(int n, double deltapix, int k) {
  std::vector<double> x(n * k);
  double const shift = (k - 1) / (2.0 * k) * deltapix;
  for (int i = 0; i < n * k; ++i)
    x[i] = i * (deltapix / k) - shift;
  double const mean = std::accumulate(x.begin(), x.end(), 0.0) / x.size();
  for (auto& v : x)
    v -= mean;
  return x;
}
}  // namespace

TEST_CASE("PixelGrid follows lenstronomy's pixel centring") {
  static_assert(std::is_trivially_copyable<PixelGrid<double>>::value, "");
  static_assert(std::is_trivially_copyable<PixelGrid<float>>::value, "");

  // Reference: lenstronomy's 64x64, 0.05" images have pixel (0,0) at
  // ra_at_xy_0 = dec_at_xy_0 = -1.575 (tests/data/lenstronomy_reference.json).
  auto const g = PixelGrid<double>::square(64, 0.05);
  CHECK(g.x(0) == doctest::Approx(-1.5750000000000002).epsilon(1e-15));
  CHECK(g.y(0) == doctest::Approx(-1.5750000000000002).epsilon(1e-15));
  CHECK(g.x(63) == doctest::Approx(1.575).epsilon(1e-15));
  CHECK(g.num_pixels() == 64 * 64);

  for (int n : {1, 2, 5, 64}) {
    for (int k : {1, 2, 3, 7}) {
      auto const grid = PixelGrid<double>::square(n, 0.13, k);
      auto const ref = make_grid_1d(n, 0.13, k);
      REQUIRE(grid.fine_nx() == n * k);
      for (int j = 0; j < n * k; ++j) {
        CHECK(grid.fine_x(j) == doctest::Approx(ref[j]).epsilon(0).scale(1).epsilon(1e-14));
        CHECK(grid.fine_y(j) == doctest::Approx(ref[j]).epsilon(1e-14));
      }
      // The k x k sub-pixels of a pixel average to its centre.
      for (int ix = 0; ix < n; ++ix) {
        double sx = 0, sy = 0;
        for (int a = 0; a < k; ++a)
          for (int b = 0; b < k; ++b) {
            auto const p = grid.subpixel_position(ix, n - 1 - ix, a, b);
            sx += p.x;
            sy += p.y;
          }
        CHECK(sx / (k * k) == doctest::Approx(grid.x(ix)).epsilon(1e-13));
        CHECK(sy / (k * k) == doctest::Approx(grid.y(n - 1 - ix)).epsilon(1e-13));
      }
      // The fine grid as a grid of its own gives the same coordinates.
      auto const fine = grid.fine_grid();
      CHECK(fine.supersampling() == 1);
      CHECK(fine.x(n * k - 1) == doctest::Approx(grid.fine_x(n * k - 1)).epsilon(1e-15));
    }
  }
}

TEST_CASE("PixelGrid rectangular, off-centre, and to_pixel inverse") {
  PixelGrid<float> const g(6, 3, 0.5f, 2, 1.0f, -2.0f);
  CHECK(g.nx() == 6);
  CHECK(g.ny() == 3);
  CHECK(g.x(0) == doctest::Approx(1.0 - 1.25));
  CHECK(g.y(1) == doctest::Approx(-2.0));
  CHECK(g.fine_pixel_scale() == 0.25f);
  for (int iy = 0; iy < 3; ++iy)
    for (int ix = 0; ix < 6; ++ix) {
      auto const p = g.to_pixel(g.x(ix), g.y(iy));
      CHECK(p.x == doctest::Approx(ix).epsilon(1e-6));
      CHECK(p.y == doctest::Approx(iy).epsilon(1e-6));
    }
  // A pixel's left edge is at fractional index -0.5.
  CHECK(g.to_pixel(g.x(0) - 0.25f, 0.0f).x == doctest::Approx(-0.5));
}

TEST_CASE("PixelGrid rejects bad arguments with clear errors") {
  double const nan = std::numeric_limits<double>::quiet_NaN();
  double const inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(PixelGrid<double>(0, 4, 0.1), "lensing::PixelGrid: nx must be >= 1 (got 0)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(PixelGrid<double>(4, -3, 0.1), "lensing::PixelGrid: ny must be >= 1 (got -3)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(PixelGrid<double>(4, 4, 0.0), "lensing::PixelGrid: pixel_scale must be finite and > 0 (got 0)",
                       std::invalid_argument);
  CHECK_THROWS_AS(PixelGrid<double>(4, 4, -0.1), std::invalid_argument);
  CHECK_THROWS_WITH_AS(PixelGrid<double>(4, 4, nan), "lensing::PixelGrid: pixel_scale must be finite and > 0 (got nan)",
                       std::invalid_argument);
  CHECK_THROWS_AS(PixelGrid<float>(4, 4, std::numeric_limits<float>::infinity()), std::invalid_argument);
  CHECK_THROWS_WITH_AS(PixelGrid<double>(4, 4, 0.1, 0), "lensing::PixelGrid: supersampling must be >= 1 (got 0)",
                       std::invalid_argument);
  CHECK_THROWS_AS(PixelGrid<double>(4, 4, 0.1, 1, nan, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(PixelGrid<double>(4, 4, 0.1, 1, 0.0, inf), std::invalid_argument);
  CHECK_THROWS_AS(PixelGrid<double>(1 << 20, 4, 0.1, 32), std::invalid_argument);
  CHECK_NOTHROW(PixelGrid<double>(1, 1, 1e-6, 9));
}
