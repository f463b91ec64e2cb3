#include <lensing/io/png.hpp>

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

TEST_CASE("PNG canvas draws and writes a valid file") {
  lensing::io::Canvas c(40, 30);
  c.set_window(-1, 1, -1, 1);
  c.line(-1, 0, 1, 0, {255, 0, 0});
  c.marker(0.5, 0.5, {0, 0, 255}, 2);
  // The horizontal line y = 0 crosses the middle row; the marker sits up and right.
  int red = 0;
  for (int col = 0; col < 40; ++col)
    red += c.get(col, 15).r == 255 && c.get(col, 15).g == 0;
  CHECK(red >= 38);
  CHECK(c.get(c.to_col(0.5) + 0.5, c.to_row(0.5) + 0.5).b == 255);
  std::string const path = "lensing_test_canvas.png";
  c.write(path);
  std::ifstream in(path, std::ios::binary);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(bytes.size() > 8);
  unsigned char const sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  CHECK(std::equal(sig, sig + 8, bytes.begin()));
  std::remove(path.c_str());
  CHECK_THROWS_AS(c.write("/nonexistent-dir/x.png"), std::runtime_error);
  CHECK_THROWS_AS(lensing::io::Canvas(0, 3), std::invalid_argument);
  CHECK_THROWS_AS(lensing::io::write_png("x.png", std::vector<double>(5), 2, 2), std::invalid_argument);
}

TEST_CASE("colour maps span their ranges") {
  using lensing::io::ColorMap;
  auto const lo = lensing::io::colour(ColorMap::gray, 0.0), hi = lensing::io::colour(ColorMap::gray, 1.0);
  CHECK(lo.r == 0);
  CHECK(hi.r == 255);
  auto const mid = lensing::io::colour(ColorMap::diverging, 0.5);
  CHECK(mid.r == 247);
  CHECK(lensing::io::colour(ColorMap::magma, 2.0).r == lensing::io::colour(ColorMap::magma, 1.0).r);
  CHECK(lensing::io::colour(ColorMap::magma, std::nan("")).g == 128);
}
