// The Lupton et al. (2004) asinh colour mapping and the colour mosaic of a
// three-band batch (io/rgb_mosaic.hpp).
#include <lensing/io/rgb_mosaic.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

TEST_CASE("lupton_rgb keeps the channels' ratios, saturates without turning white, and maps I <= 0 to black") {
  using lensing::io::lupton_rgb;
  double const q = 3, stretch = 1;
  // Grey stays grey.
  auto const grey = lupton_rgb(0.5, 0.5, 0.5, q, stretch);
  CHECK(grey.r == grey.g);
  CHECK(grey.g == grey.b);
  CHECK(grey.r > 0);
  // Below saturation each channel is its value times F(I)/I: ratios 4:2:1
  // (red:green:blue) up to the rounding to bytes (+-0.5 each).
  auto const c = lupton_rgb(0.1, 0.2, 0.4, q, stretch);
  REQUIRE(c.b > 20);
  CHECK(std::fabs(double(c.r) / c.b - 4) < 4 * 0.5 / (c.b - 0.5) + 0.5 / c.b);
  CHECK(std::fabs(double(c.g) / c.b - 2) < 2 * 0.5 / (c.b - 0.5) + 0.5 / c.b);
  // Far above saturation: divided by the largest channel, so the hue is kept.
  auto const s = lupton_rgb(1e6, 2e6, 4e6, q, stretch);
  CHECK(s.r == 255);
  CHECK(s.g == 128);                                        // 255 / 2 = 127.5, rounded half away from zero
  CHECK(s.b == 64);                                         // 255 / 4 = 63.75
  auto const black = lupton_rgb(-1, 0.5, 0.2, q, stretch);  // I = -0.1 / 3
  CHECK((black.r == 0 && black.g == 0 && black.b == 0));
  auto const nan = lupton_rgb(NAN, 1, 1, q, stretch);
  CHECK((nan.r == 128 && nan.g == 128 && nan.b == 128));
}

TEST_CASE("rgb_stretch maps the chosen percentile of the intensity to auto_level") {
  lensing::io::RgbOptions o;
  o.auto_percentile = 100;  // the brightest pixel
  // One image of 1 x 2 pixels, channels (b, g, r): intensities 1 and 3.
  std::vector<double> const v{0, 3, 3, 3, 0, 3};
  double const stretch = lensing::io::rgb_stretch(v.data(), 1, 1, 2, o);
  CHECK(std::asinh(o.q * 3 / stretch) / o.q == doctest::Approx(o.auto_level).epsilon(1e-12));
  o.stretch = 0.25;
  CHECK(lensing::io::rgb_stretch(v.data(), 1, 1, 2, o) == 0.25);
  std::vector<double> const dark(6, -1.0);
  o.stretch = 0;
  CHECK(lensing::io::rgb_stretch(dark.data(), 1, 1, 2, o) == 1);
}

TEST_CASE("rgb_mosaic lays out tiles left to right, top to bottom, y up, reddest channel red") {
  int const m = 5, ny = 3, nx = 4;
  std::vector<double> v(std::size_t(m) * 3 * ny * nx, 0.0);
  // Image 4 (second row, second tile): pixel (iy 0, ix 0) bright in channel 2 only.
  v[(std::size_t(4) * 3 + 2) * ny * nx] = 1;
  lensing::io::RgbOptions o;
  o.scale = 2;
  o.gap = 1;
  o.stretch = 0.1;
  auto const canvas = lensing::io::rgb_mosaic(v.data(), m, ny, nx, o);
  // ceil(sqrt(5)) = 3 columns, 2 rows of (2 nx, 2 ny) tiles with 1-pixel gaps.
  CHECK(canvas.width() == 3 * 2 * nx + 2);
  CHECK(canvas.height() == 2 * 2 * ny + 1);
  // Tile 4 starts at column 1 * (8 + 1) and row 1 * (6 + 1); iy = 0 is its bottom row pair.
  int const col = 9, row = 7 + 2 * (ny - 1);
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) {
      auto const p = canvas.get(col + b, row + a);
      CHECK(p.r == 255);
      CHECK(p.g == 0);
      CHECK(p.b == 0);
    }
  CHECK(canvas.get(col + 2, row).r == 0);  // the next pixel is dark
  CHECK(canvas.get(8, 0).r == 40);         // a gap column
  CHECK_THROWS_AS(lensing::io::write_rgb_mosaic("x.png", std::vector<double>(7), 1, 1, 2), std::invalid_argument);
  o.q = 0;
  CHECK_THROWS_AS(lensing::io::rgb_mosaic(v.data(), m, ny, nx, o), std::invalid_argument);
  CHECK_THROWS_AS(lensing::io::write_rgb_mosaic("/nonexistent-dir/x.png", v, m, ny, nx), std::runtime_error);
}
