// Stroke digits: determinism, ink inside the box, the rendered ink of a
// single stroke against its exact area, points on the ink with the right
// centroid, labels telling apart by template matching, bad inputs.
#include <lensing/simulate/digits.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <vector>

using lensing::simulate::Digit;
using lensing::simulate::digit_points;
using lensing::simulate::make_digit;
using lensing::simulate::render_digit;

TEST_CASE("digits are deterministic per (label, seed, index) and keep their ink inside the box") {
  for (int label = 0; label < 10; ++label) {
    Digit const a = make_digit(label, 7, 3), b = make_digit(label, 7, 3), c = make_digit(label, 7, 4);
    REQUIRE(a.strokes.size() == b.strokes.size());
    CHECK(a.strokes[0][1] == b.strokes[0][1]);
    CHECK(a.half_width == b.half_width);
    CHECK(a.strokes[0][1] != c.strokes[0][1]);
    // The strokes are polylines, so their ink lies within half_width + edge/2
    // of the vertices' bounding box: checking the vertices is exact.
    for (std::uint64_t index = 0; index < 300; ++index) {
      Digit const d = make_digit(label, 11, index);
      double reach = 0;
      for (auto const& s : d.strokes)
        for (auto const& p : s)
          reach = std::max({reach, std::fabs(p[0]), std::fabs(p[1])});
      INFO("label " << label << " index " << index);
      CHECK(reach + d.half_width + 0.5 * lensing::simulate::detail::digit_edge <= 0.5);
    }
  }
}

TEST_CASE_TEMPLATE("the rendered ink of one straight stroke equals its exact area", Scalar, float, double) {
  // Soft capsule of length L and half-width w (edge e, linear): the straight
  // edges are symmetric about w, so they integrate to 2 w L exactly; the two
  // half-disc caps integrate to pi w^2 + pi e^2 / 12 (the linear ramp of the
  // disc weighted by 2 pi r).  Render error: the 3 x 3 midpoint rule is exact
  // on the linear ramp and the plateaus; only sub-pixels straddling one of
  // the ramp's two kinks err, each by at most h^2 * (h / 2) / e / 2 (area
  // times the largest deviation of a kinked linear function from its value
  // at the centre), and at most perimeter / h of them per kink:
  // |error| <= 2 * perimeter * h^2 / (4 e), h = 1 / (3 n).
  Digit d;
  d.half_width = 0.06;
  d.strokes = {{{-0.3, -0.1}, {0.25, 0.2}}};
  double const len = std::hypot(0.55, 0.3), w = d.half_width, e = lensing::simulate::detail::digit_edge;
  double const pi = 3.14159265358979323846;
  double const exact = 2 * w * len + pi * w * w + pi * e * e / 12;
  int const n = 96;
  std::vector<Scalar> image(n * n);
  render_digit(d, n, image.data());
  double sum = 0;
  for (Scalar v : image) {
    CHECK(v >= Scalar(0));
    CHECK(v <= Scalar(1));
    sum += double(v);
  }
  double const area = sum / (double(n) * n);
  double const h = 1.0 / (3 * n), perimeter = 2 * len + 2 * pi * w;
  double const bound = 2 * perimeter * h * h / (4 * e) + n * n * 1e-7 / (double(n) * n);  // + float rounding
  CHECK(std::fabs(area - exact) <= bound);
}

TEST_CASE("digit points lie on the ink and are spread uniformly along the strokes") {
  Digit d;
  d.half_width = 0.05;
  d.strokes = {{{-0.3, 0.0}, {0.3, 0.0}}};
  int const m = 20000;
  auto const points = digit_points(d, m, 5);
  double mx = 0, my = 0;
  for (auto const& p : points) {
    CHECK(std::fabs(p[1]) <= d.half_width + 1e-12);
    CHECK(std::fabs(p[0]) <= 0.3 + 1e-12);
    mx += p[0] / m;
    my += p[1] / m;
  }
  // Uniform along a length L: the mean's sd is L / sqrt(12 m); across the
  // width 2w: 2w / sqrt(12 m).  5 sd.
  CHECK(std::fabs(mx) <= 5 * 0.6 / std::sqrt(12.0 * m));
  CHECK(std::fabs(my) <= 5 * 0.1 / std::sqrt(12.0 * m));
  // Real digits: every point within half_width of a stroke.
  Digit const eight = make_digit(8, 1, 2);
  for (auto const& p : digit_points(eight, 500, 9))
    CHECK(lensing::simulate::digit_intensity(eight, p[0], p[1]) >= 0.5 - 1e-9);
  CHECK(digit_points(eight, 10, 9)[3] == digit_points(eight, 10, 9)[3]);
  CHECK(digit_points(eight, 10, 9)[3] != digit_points(eight, 10, 10)[3]);
}

TEST_CASE("the ten labels are told apart by nearest-template matching") {
  // Templates: mean 20 x 20 images of 40 digits per label; test on 40 other
  // digits per label.  A glyph that lost its shape (or two labels drawing the
  // same glyph) drops its accuracy to ~50% or below; the bound 0.85 sits far
  // below the ~0.97 measured and far above that failure (binomial sd of the
  // accuracy over 400 digits: 0.01-0.025).
  int const n = 20, per = 40;
  std::vector<std::vector<double>> templates(10, std::vector<double>(n * n, 0.0));
  std::vector<double> image(n * n);
  for (int label = 0; label < 10; ++label)
    for (int i = 0; i < per; ++i) {
      render_digit(make_digit(label, 3, i), n, image.data());
      for (int k = 0; k < n * n; ++k)
        templates[label][k] += image[k] / per;
    }
  int correct = 0;
  for (int label = 0; label < 10; ++label)
    for (int i = 0; i < per; ++i) {
      render_digit(make_digit(label, 3, 1000 + i), n, image.data());
      int best = -1;
      double best_d = 1e300;
      for (int t = 0; t < 10; ++t) {
        double dist = 0;
        for (int k = 0; k < n * n; ++k)
          dist += (image[k] - templates[t][k]) * (image[k] - templates[t][k]);
        if (dist < best_d) best_d = dist, best = t;
      }
      correct += best == label;
    }
  double const accuracy = double(correct) / (10 * per);
  INFO("accuracy " << accuracy);
  CHECK(accuracy >= 0.85);
}

TEST_CASE("bad digit arguments are refused") {
  CHECK_THROWS_AS(make_digit(10, 1, 1), std::invalid_argument);
  CHECK_THROWS_AS(make_digit(-1, 1, 1), std::invalid_argument);
  lensing::simulate::DigitOptions o;
  o.height_max = 1.5;
  CHECK_THROWS_AS(make_digit(3, 1, 1, o), std::invalid_argument);
  std::vector<float> image(4);
  CHECK_THROWS_AS(render_digit(make_digit(3, 1, 1), 0, image.data()), std::invalid_argument);
  CHECK_THROWS_AS(render_digit(make_digit(3, 1, 1), 2, static_cast<float*>(nullptr)), std::invalid_argument);
  CHECK_THROWS_AS(digit_points(make_digit(3, 1, 1), 0, 1), std::invalid_argument);
  CHECK_THROWS_AS(digit_points(Digit{}, 5, 1), std::invalid_argument);
}
