// Noise and detector artefacts: statistics within Monte Carlo error (the
// tolerances are 5 standard errors of the estimator, derived from the number
// of samples), determinism across backends and thread counts, bad inputs.
#include <lensing/noise/bad_pixels.hpp>
#include <lensing/noise/cosmic_rays.hpp>
#include <lensing/noise/masks.hpp>
#include <lensing/noise/pixel_noise.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace {

namespace noise = lensing::noise;

template <class View>
std::vector<double> to_host(View const& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  std::vector<double> out(h.data(), h.data() + h.size());
  return out;
}

struct Moments {
  double mean, var;
  long n;
};
Moments moments(std::vector<double> const& x) {
  double s = 0;
  for (double v : x)
    s += v;
  double const m = s / double(x.size());
  double q = 0;
  for (double v : x)
    q += (v - m) * (v - m);
  return {m, q / double(x.size() - 1), long(x.size())};
}

template <class Scalar, class Mem>
lensing::View3D<Scalar, Mem> filled(int n, int ny, int nx, Scalar value) {
  lensing::View3D<Scalar, Mem> v("images", n, ny, nx);
  Kokkos::deep_copy(v, value);
  return v;
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("Gaussian, read noise and bias moments", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  Space space;
  int const n = 4, ny = 64, nx = 64;
  long const N = long(n) * ny * nx;
  {
    auto img = filled<Scalar, Mem>(n, ny, nx, Scalar(3));
    noise::apply(space, noise::GaussianNoise<Scalar>{Scalar(2)}, img, 42);
    space.fence();
    auto const m = moments(to_host(img));
    // Standard errors: sigma / sqrt(N) for the mean, sigma^2 sqrt(2 / (N - 1)) for the variance.
    CHECK(std::fabs(m.mean - 3) < 5 * 2 / std::sqrt(double(N)));
    CHECK(std::fabs(m.var - 4) < 5 * 4 * std::sqrt(2.0 / (N - 1)));
  }
  {
    auto img = filled<Scalar, Mem>(n, ny, nx, Scalar(0));
    noise::apply(space, noise::ReadNoise<Scalar>{Scalar(5), Scalar(2)}, img, 43);  // sigma = 5 e- / 2 s = 2.5
    space.fence();
    auto const m = moments(to_host(img));
    CHECK(std::fabs(m.mean) < 5 * 2.5 / std::sqrt(double(N)));
    CHECK(std::fabs(m.var - 6.25) < 5 * 6.25 * std::sqrt(2.0 / (N - 1)));
  }
  {
    // Bias: one offset per image; 400 images of 2x3 pixels.
    int const nb = 400;
    auto img = filled<Scalar, Mem>(nb, 2, 3, Scalar(0));
    noise::apply(space, noise::ZeroPointBias<Scalar>{Scalar(0.5), Scalar(0.1)}, img, 44);
    space.fence();
    auto const h = to_host(img);
    std::vector<double> per_image(nb);
    int not_constant = 0;
    for (int b = 0; b < nb; ++b) {
      per_image[b] = h[6 * b];
      for (int k = 1; k < 6; ++k)
        not_constant += h[6 * b + k] != h[6 * b];
    }
    CHECK(not_constant == 0);
    auto const m = moments(per_image);
    CHECK(std::fabs(m.mean - 0.5) < 5 * 0.1 / std::sqrt(double(nb)));
    CHECK(std::fabs(m.var - 0.01) < 5 * 0.01 * std::sqrt(2.0 / (nb - 1)));
  }
}

LENSING_TEST_CASE_TEMPLATE("Poisson shot noise: moments, integer counts, P(0)", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  Space space;
  int const n = 4, ny = 64, nx = 64;
  long const N = long(n) * ny * nx;
  double const t = 4;
  // Expected counts lam = rate * t across the three regimes: inversion (< 10),
  // PTRS (10 .. 1000) and the normal approximation (>= 1000).
  for (double lam : {0.2, 3.0, 9.5, 12.0, 60.0, 800.0, 5000.0}) {
    auto img = filled<Scalar, Mem>(n, ny, nx, Scalar(lam / t));
    noise::apply(space, noise::PoissonNoise<Scalar>{Scalar(t)}, img, 7);
    space.fence();
    auto h = to_host(img);
    long non_integer = 0, zeros = 0;
    for (auto& v : h) {
      v *= t;  // counts
      non_integer += std::fabs(v - std::round(v)) > 1e-6 * std::fmax(1.0, v);
      zeros += v == 0;
    }
    // Scalar(lam / t) is the rate actually used.
    double const lam_used = double(Scalar(lam / t)) * t;
    auto const m = moments(h);
    INFO("lambda = " << lam << " mean " << m.mean << " var " << m.var);
    CHECK(non_integer == 0);
    CHECK(std::fabs(m.mean - lam_used) < 5 * std::sqrt(lam_used / N));
    // Var of the sample variance of a Poisson: (mu4 - sigma^4) / N = (lam + 2 lam^2) / N.
    CHECK(std::fabs(m.var - lam_used) < 5 * std::sqrt((lam_used + 2 * lam_used * lam_used) / N));
    if (lam < 10) {
      double const p0 = std::exp(-lam_used);
      CHECK(std::fabs(double(zeros) / N - p0) < 5 * std::sqrt(p0 * (1 - p0) / N) + 1e-12);
    }
  }
  // Negative expected rates count as zero.
  auto img = filled<Scalar, Mem>(1, 4, 4, Scalar(-1));
  noise::apply(space, noise::PoissonNoise<Scalar>{Scalar(t)}, img, 1);
  space.fence();
  for (double v : to_host(img))
    CHECK(v == 0);
}

LENSING_TEST_CASE_TEMPLATE("saturation clips, keeps the rest", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  Space space;
  lensing::View2D<Scalar, Mem> img("img", 3, 5);
  auto h = Kokkos::create_mirror_view(img);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 5; ++j)
      h(i, j) = Scalar(i * 5 + j);
  Kokkos::deep_copy(img, h);
  noise::apply(space, noise::Saturation<Scalar>{Scalar(7.5)}, img);
  space.fence();
  auto const out = to_host(img);
  for (int k = 0; k < 15; ++k)
    CHECK(out[k] == std::fmin(double(k), 7.5));
}

LENSING_TEST_CASE_TEMPLATE("cosmic rays: counts match the rate, deposits where tracks are", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  Space space;
  int const n = 500, ny = 48, nx = 40;
  noise::CosmicRayModel<Scalar> model;
  model.rate = Scalar(1.5e-3);  // 2.88 hits per image
  noise::CosmicRays<Scalar, Mem> cr(model, n);
  auto img = filled<Scalar, Mem>(n, ny, nx, Scalar(0));
  cr.apply(space, img, 99);
  space.fence();
  auto const counts = to_host(cr.counts());
  std::vector<double> c(counts.begin(), counts.begin() + n);
  auto const m = moments(c);
  double const expected = double(model.rate) * ny * nx;
  INFO("mean hits per image " << m.mean << " expected " << expected << " var " << m.var);
  CHECK(std::fabs(m.mean - expected) < 5 * std::sqrt(expected / n));
  CHECK(std::fabs(m.var - expected) < 5 * std::sqrt((expected + 2 * expected * expected) / n));
  // Images without hits stay exactly 0; images with hits have positive flux
  // that, for tracks far from the edges, equals the deposited charge rate.
  auto const h = to_host(img);
  auto const tracks = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), cr.tracks());
  int wrong_empty = 0, wrong_flux = 0, checked = 0;
  double worst = 0;
  for (int b = 0; b < n; ++b) {
    double sum = 0, mn = 0;
    for (int k = 0; k < ny * nx; ++k) {
      sum += h[long(b) * ny * nx + k];
      mn = std::fmin(mn, h[long(b) * ny * nx + k]);
    }
    if (c[b] == 0) {
      wrong_empty += sum != 0;
      continue;
    }
    wrong_empty += !(sum > 0) || mn < 0;
    bool inside = true;
    double charge = 0;
    for (int k = 0; k < c[b]; ++k) {
      auto const& t = tracks(b, k);
      double const e = 4;
      inside = inside && t.x0 > e && t.x1 > e && t.y0 > e && t.y1 > e && t.x0 < nx - 1 - e && t.x1 < nx - 1 - e &&
               t.y0 < ny - 1 - e && t.y1 < ny - 1 - e;
      double const len = std::hypot(double(t.x1 - t.x0), double(t.y1 - t.y0));
      charge += double(t.amplitude) * (len + std::sqrt(2 * M_PI) * double(t.width));
    }
    if (inside) {
      ++checked;
      // Pixel-centre sampling of the track profile (rms w = sqrt(0.5^2 + 1/12)
      // px) aliases.  Error model: the deterministic relative error of one
      // track's pixel sum, maximised over its geometry on a dense grid (length
      // 0-40 px, angle, sub-pixel offset of the start), is 3.84%, at length
      // ~0.4 px along a pixel row (the profile's second derivative jumps where
      // the segment's caps begin, so its spectrum is not Gaussian); an
      // image's error is the charge-weighted mean of its tracks', so at most
      // that.  Tolerance 4.5%.
      worst = std::fmax(worst, std::fabs(sum - charge) / charge);
      wrong_flux += std::fabs(sum - charge) > 4.5e-2 * charge;
    }
  }
  CHECK(wrong_empty == 0);
  CHECK(checked > 20);
  INFO("worst relative flux error " << worst << " over " << checked << " images");
  CHECK(wrong_flux == 0);
}

LENSING_TEST_CASE_TEMPLATE("hot/dead pixels and random masks: fractions", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  Space space;
  int const n = 3, ny = 100, nx = 100;
  long const npix = long(ny) * nx;
  {
    noise::BadPixels<Scalar> bp;
    bp.hot_fraction = Scalar(0.02);
    bp.dead_fraction = Scalar(0.05);
    bp.hot_value = Scalar(100);
    auto img = filled<Scalar, Mem>(n, ny, nx, Scalar(1));
    noise::apply(space, bp, img, 5);
    space.fence();
    auto const h = to_host(img);
    long dead = 0, hot = 0, differ = 0;
    for (long k = 0; k < npix; ++k) {
      dead += h[k] == 0;
      hot += h[k] > 1;
      for (int b = 1; b < n; ++b)
        differ += h[b * npix + k] != h[k];  // fixed pattern
    }
    CHECK(differ == 0);
    CHECK(std::fabs(double(dead) / npix - 0.05) < 5 * std::sqrt(0.05 * 0.95 / npix));
    CHECK(std::fabs(double(hot) / npix - 0.02) < 5 * std::sqrt(0.02 * 0.98 / npix));
    bp.fixed_pattern = false;
    auto img2 = filled<Scalar, Mem>(n, ny, nx, Scalar(1));
    noise::apply(space, bp, img2, 5);
    space.fence();
    auto const h2 = to_host(img2);
    long differ2 = 0;
    for (long k = 0; k < npix; ++k)
      differ2 += h2[npix + k] != h2[k];
    CHECK(differ2 > 0);
  }
  {
    // Masks: P(no disk in an image) = exp(-mean_count); masked pixels hold fill_value.
    int const nm = 2000;
    noise::RandomMask<Scalar> rm;
    rm.mean_count = Scalar(1.2);
    rm.fill_value = Scalar(-7);
    auto img = filled<Scalar, Mem>(nm, 16, 16, Scalar(1));
    auto mask = filled<Scalar, Mem>(nm, 16, 16, Scalar(5));
    noise::apply(space, rm, img, mask, 11);
    space.fence();
    auto const hi = to_host(img), hm = to_host(mask);
    long unmasked_images = 0, inconsistent = 0;
    for (int b = 0; b < nm; ++b) {
      bool any = false;
      for (int k = 0; k < 256; ++k) {
        long const i = long(b) * 256 + k;
        inconsistent += !((hm[i] == 0 && hi[i] == -7) || (hm[i] == 1 && hi[i] == 1));
        any = any || hm[i] == 0;
      }
      unmasked_images += !any;
    }
    CHECK(inconsistent == 0);
    // A disk of radius >= 1 centred in the image always covers >= 1 pixel centre.
    double const p0 = std::exp(-1.2);
    CHECK(std::fabs(double(unmasked_images) / nm - p0) < 5 * std::sqrt(p0 * (1 - p0) / nm));
  }
}

namespace {
// The whole chain on `space`; returns the host copy.
template <class Space, class Scalar>
std::vector<double> full_chain(Space const& space, int n, int ny, int nx, std::uint64_t seed, std::uint64_t first) {
  using Mem = typename Space::memory_space;
  lensing::View3D<Scalar, Mem> img("img", n, ny, nx), mask("mask", n, ny, nx);
  auto h = Kokkos::create_mirror_view(img);
  for (int b = 0; b < n; ++b)
    for (int i = 0; i < ny; ++i)
      for (int j = 0; j < nx; ++j)
        h(b, i, j) = Scalar(5 + 200 * std::exp(-0.02 * ((i - 12) * (i - 12) + (j - 9) * (j - 9))));
  Kokkos::deep_copy(img, h);
  noise::CosmicRayModel<Scalar> crm;
  crm.rate = Scalar(5e-3);
  noise::CosmicRays<Scalar, Mem> cr(crm, n);
  noise::apply(space, noise::PoissonNoise<Scalar>{Scalar(30)}, img, seed, first);
  noise::apply(space, noise::ReadNoise<Scalar>{Scalar(4), Scalar(30)}, img, seed, first);
  noise::apply(space, noise::GaussianNoise<Scalar>{Scalar(0.1)}, img, seed, first);
  noise::apply(space, noise::ZeroPointBias<Scalar>{Scalar(0.01), Scalar(0.02)}, img, seed, first);
  cr.apply(space, img, seed, first);
  noise::BadPixels<Scalar> bp;
  bp.hot_fraction = Scalar(0.01);
  bp.dead_fraction = Scalar(0.01);
  noise::apply(space, bp, img, seed, first);
  noise::apply(space, noise::RandomMask<Scalar>{}, img, mask, seed, first);
  noise::apply(space, noise::Saturation<Scalar>{Scalar(250)}, img);
  space.fence();
  return to_host(img);
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("the whole chain is deterministic across backends, threads and batching", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  int const n = 6, ny = 24, nx = 20;
  auto const a = full_chain<Space, Scalar>(Space(), n, ny, nx, 1234, 0);
  auto const b = full_chain<Space, Scalar>(Space(), n, ny, nx, 1234, 0);
  CHECK(a == b);
  // Reference on the Serial backend (1 thread); the test runs with OpenMP at 1
  // and at 2 threads, so this compares thread counts too.
#if defined(KOKKOS_ENABLE_SERIAL)
  auto const serial = full_chain<Kokkos::Serial, Scalar>(Kokkos::Serial(), n, ny, nx, 1234, 0);
  CHECK(a == serial);
#endif
  // Chunked generation: images 2..5 with first_image = 2 equal the tail of the batch.
  auto const tail = full_chain<Space, Scalar>(Space(), n - 2, ny, nx, 1234, 2);
  CHECK(std::equal(tail.begin(), tail.end(), a.begin() + 2 * ny * nx));
  // Another seed changes everything.
  auto const other = full_chain<Space, Scalar>(Space(), n, ny, nx, 1235, 0);
  long same = 0;
  for (size_t i = 0; i < a.size(); ++i)
    same += a[i] == other[i];
  CHECK(same < long(a.size()) / 5);  // equal only where saturated, masked or dead
}

LENSING_TEST_CASE_TEMPLATE("rank-2 images equal image 0 of a batch", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  lensing::View2D<double, Mem> one("one", 8, 9);
  lensing::View3D<double, Mem> batch("batch", 2, 8, 9);
  noise::apply(space, noise::GaussianNoise<double>{1.0}, one, 3, 1);
  noise::apply(space, noise::GaussianNoise<double>{1.0}, batch, 3, 0);
  space.fence();
  auto const h1 = to_host(one), hb = to_host(batch);
  // Equal up to the last ulp: the rank-2 and rank-3 row loops may be
  // vectorised differently (vector and scalar libm differ by an ulp).
  int bad = 0;
  for (int k = 0; k < 72; ++k)
    bad += std::fabs(h1[k] - hb[72 + k]) > 1e-14 * (1 + std::fabs(h1[k]));
  CHECK(bad == 0);
}

LENSING_TEST_CASE_TEMPLATE("bad inputs give clear errors", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  double const nan = std::numeric_limits<double>::quiet_NaN();
  lensing::View3D<double, Mem> img("img", 2, 4, 4), mask_bad("mask", 2, 4, 5), empty("empty", 0, 4, 4);
  CHECK_THROWS_WITH_AS(noise::apply(space, noise::PoissonNoise<double>{-1.0}, img, 1),
                       doctest::Contains("lensing::noise::apply(PoissonNoise): exposure_time"), std::invalid_argument);
  CHECK_THROWS_AS(noise::apply(space, noise::PoissonNoise<double>{0.0}, img, 1), std::invalid_argument);
  CHECK_THROWS_AS(noise::apply(space, noise::GaussianNoise<double>{nan}, img, 1), std::invalid_argument);
  CHECK_THROWS_AS(noise::apply(space, noise::GaussianNoise<double>{-1.0}, img, 1), std::invalid_argument);
  CHECK_THROWS_AS(noise::apply(space, noise::ReadNoise<double>{1.0, nan}, img, 1), std::invalid_argument);
  CHECK_THROWS_AS(noise::apply(space, noise::ZeroPointBias<double>{nan, 0.0}, img, 1), std::invalid_argument);
  CHECK_THROWS_AS(noise::apply(space, noise::Saturation<double>{nan}, img), std::invalid_argument);
  CHECK_THROWS_WITH_AS(noise::apply(space, noise::GaussianNoise<double>{1.0}, empty, 1),
                       doctest::Contains("must be non-empty"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(noise::apply(space, noise::RandomMask<double>{}, img, mask_bad, 1),
                       doctest::Contains("mask must have the extents"), std::invalid_argument);
  noise::BadPixels<double> bp;
  bp.dead_fraction = 0.7;
  bp.hot_fraction = 0.5;
  CHECK_THROWS_AS(noise::apply(space, bp, img, 1), std::invalid_argument);
  noise::CosmicRayModel<double> crm;
  crm.rate = -1;
  CHECK_THROWS_AS((noise::CosmicRays<double, Mem>(crm, 2)), std::invalid_argument);
  crm.rate = 1e-3;
  noise::CosmicRays<double, Mem> cr(crm, 1);
  CHECK_THROWS_WITH_AS(cr.apply(space, img, 1), doctest::Contains("exceeds max_images"), std::invalid_argument);
  // Huge expected counts are capped (no overflow to inf, no NaN).
  {
    lensing::View2D<double, Mem> big("big", 2, 2);
    Kokkos::deep_copy(big, 1e300);
    noise::apply(space, noise::PoissonNoise<double>{1e10}, big, 1);
    space.fence();
    auto const hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), big);
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j)
        CHECK(hb(i, j) == doctest::Approx(4.5e15 / 1e10).epsilon(1e-6));
  }
  // NaN pixels are refused by the Poisson model (its counts need a finite mean).
  auto h = Kokkos::create_mirror_view(img);
  Kokkos::deep_copy(h, 1.0);
  h(1, 2, 3) = nan;
  Kokkos::deep_copy(img, h);
  CHECK_THROWS_WITH_AS(noise::apply(space, noise::PoissonNoise<double>{10.0}, img, 1),
                       doctest::Contains("images must be finite (1 NaN"), std::invalid_argument);
}

TEST_CASE("the Box-Muller cosine polynomial equals cos(2 pi u)") {
  double worst_d = 0, worst_f = 0;
  for (int i = 0; i <= 100000; ++i) {
    double const u = i / 100000.0;
    double const ref = std::cos(2 * M_PI * u);
    worst_d = std::fmax(worst_d, std::fabs(lensing::random::Stream::cos_two_pi(u) - ref));
    worst_f = std::fmax(worst_f, std::fabs(double(lensing::random::Stream::cos_two_pi(float(u))) -
                                           std::cos(2 * M_PI * double(float(u)))));
  }
  CHECK(worst_d < 2e-15);
  CHECK(worst_f < 1e-6);
}

TEST_CASE("the Box-Muller logarithm equals log(u) on (0, 1]") {
  double worst_d = 0, worst_f = 0;
  for (int i = 1; i <= 200000; ++i) {
    double const u = std::pow(2.0, -54.0 * (i % 1000) / 1000.0) * (0.5 + 0.5 * i / 200000.0);
    worst_d = std::fmax(worst_d, std::fabs(lensing::random::Stream::log_unit(u) - std::log(u)) /
                                     std::fmax(1.0, std::fabs(std::log(u))));
    float const uf = float(u);
    worst_f = std::fmax(worst_f, std::fabs(double(lensing::random::Stream::log_unit(uf)) - std::log(double(uf))) /
                                     std::fmax(1.0, std::fabs(std::log(double(uf)))));
  }
  CHECK(lensing::random::Stream::log_unit(1.0) == 0);
  CHECK(worst_d < 4e-16);
  CHECK(worst_f < 3e-7);
}

TEST_CASE("floor_exact equals floor; log_factorial equals lgamma(k + 1)") {
  using lensing::random::Stream;
  Stream r(12345);
  long bad = 0;
  std::vector<double> xs = {0.0,
                            -0.0,
                            0.5,
                            -0.5,
                            1.0,
                            -1.0,
                            2.5,
                            -2.5,
                            4503599627370495.5,
                            -4503599627370495.5,
                            4503599627370496.0,
                            -4503599627370496.0,
                            1e17 + 8,
                            -1e17,
                            1e300,
                            -1e300};
  for (int i = 0; i < 20000; ++i) {
    double const u = r.uniform<double>(), v = r.uniform<double>();
    xs.push_back((2 * u - 1) * std::pow(10.0, 18 * v));  // magnitudes 1 .. 1e18, both signs
    xs.push_back(std::round((2 * u - 1) * 1e6) + (v < 0.5 ? 0.0 : 1e-9));
  }
  for (double x : xs)
    bad += Stream::floor_exact(x) == std::floor(x) ? 0 : 1;
  CHECK(bad == 0);
  double worst = 0;
  for (int k = 0; k <= 100000; k += (k < 200 ? 1 : 97))
    worst = std::max(worst,
                     std::fabs(Stream::log_factorial(k) - std::lgamma(k + 1.0)) / std::max(1.0, std::lgamma(k + 1.0)));
  CHECK(worst < 3e-12);  // truncation 1/(1680 11^7) = 3e-11 at k = 10, relative to log 10! = 15.1
}

// The count apply(PoissonNoise) draws for the expected count mu from pixel
// `pixel` of image `image`'s stream: Stream::poisson below the default normal
// threshold (1000), the normal approximation above.
namespace {
double stream_count(std::uint64_t seed, std::uint64_t image, std::uint64_t pixel, double mu) {
  lensing::random::Stream r(lensing::random::stream_key(seed, lensing::random::purpose_poisson, image, pixel));
  return mu < 1000 ? r.poisson(mu) : std::fmax(0.0, std::floor(mu + std::sqrt(mu) * r.normal<double>() + 0.5));
}
}  // namespace

// The host path of apply(PoissonNoise) draws the first PTRS candidate and the
// normal approximation in a vectorised pass: the counts must be those of
// Stream::poisson on each pixel's stream (a decision of the full PTRS test may
// differ only where its two sides agree to a few ulp: none expected here).
LENSING_TEST_CASE_TEMPLATE("Poisson: the host fast path draws Stream::poisson's counts", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  int const n = 3, ny = 16, nx = 100;  // rows longer than the 64-pixel blocks
  double const t = 2;
  std::uint64_t const seed = 99, first = 5;
  lensing::View3D<double, Mem> img("img", n, ny, nx);
  auto h0 = Kokkos::create_mirror(img);  // a copy, also on the host
  lensing::random::Stream g(7);
  for (int b = 0; b < n; ++b)
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        // Means across every regime: <= 0, inversion, PTRS, normal, clamped.
        double const u = g.uniform<double>();
        double const lam = ix % 10 == 0 ? -1.0 : (ix % 10 == 1 ? 1e20 : std::pow(10.0, 5 * u - 1));
        h0(b, iy, ix) = lam / t;
      }
  Kokkos::deep_copy(img, h0);
  noise::apply(space, noise::PoissonNoise<double>{t}, img, seed, first);
  space.fence();
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), img);
  long mismatch = 0;
  for (int b = 0; b < n; ++b)
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        double const mu = std::fmin(std::fmax(h0(b, iy, ix), 0.0) * t, 4.5e15);
        mismatch += h(b, iy, ix) == stream_count(seed, first + b, std::uint64_t(iy) * nx + ix, mu) / t ? 0 : 1;
      }
  CHECK(mismatch == 0);
}

// Pass 1 of the host path also decides the PTRS draws whose first two
// candidates are rejected (candidates 3, 4, ...; ~2% of pixels at these
// means, ~600 here): they must be Stream::poisson's counts too.
LENSING_TEST_CASE_TEMPLATE("Poisson: draws needing three or more PTRS candidates are Stream::poisson's", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  int const n = 4, ny = 64, nx = 128;
  std::uint64_t const seed = 12, first = 3;
  lensing::View3D<double, Mem> img("img", n, ny, nx);
  auto h0 = Kokkos::create_mirror(img);
  for (int b = 0; b < n; ++b)
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix)
        h0(b, iy, ix) = 12.0 + 11.0 * ((ix * 7 + iy * 3 + b) % 80);  // means 12 ... 881, t = 1
  Kokkos::deep_copy(img, h0);
  noise::apply(space, noise::PoissonNoise<double>{1.0}, img, seed, first);
  space.fence();
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), img);
  long mismatch = 0;
  for (int b = 0; b < n; ++b)
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        lensing::random::Stream r(lensing::random::stream_key(seed, lensing::random::purpose_poisson, first + b,
                                                              std::uint64_t(iy) * nx + ix));
        mismatch += h(b, iy, ix) == r.poisson(h0(b, iy, ix)) ? 0 : 1;
      }
  CHECK(mismatch == 0);
}

// The host path works on chunks of up to 512 consecutive pixels of an image:
// the whole image when its rows are contiguous (the tests above), else each
// row apart.  A column subview (rows 600 wide in a 640-wide view: two chunks
// per row) must draw each pixel's count from its own stream too (pixel index
// iy * 600 + ix of the subview).
LENSING_TEST_CASE_TEMPLATE("Poisson: images with non-contiguous rows draw Stream::poisson's counts", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  int const n = 2, ny = 3, nx_full = 640, nx = 600;
  double const t = 1.5;
  std::uint64_t const seed = 31, first = 8;
  lensing::View3D<double, Mem> full("full", n, ny, nx_full);
  auto h0 = Kokkos::create_mirror(full);
  lensing::random::Stream g(11);
  for (int b = 0; b < n; ++b)
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx_full; ++ix) {
        // Means across every regime: <= 0, inversion, PTRS, normal.
        double const u = g.uniform<double>();
        double const lam = ix % 13 == 0 ? -2.0 : std::pow(10.0, 4 * u - 1);
        h0(b, iy, ix) = lam / t;
      }
  Kokkos::deep_copy(full, h0);
  auto const img = Kokkos::subview(full, Kokkos::ALL, Kokkos::ALL, Kokkos::make_pair(0, nx));
  noise::apply(space, noise::PoissonNoise<double>{t}, img, seed, first);
  space.fence();
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), full);
  long mismatch = 0, untouched = 0;
  for (int b = 0; b < n; ++b)
    for (int iy = 0; iy < ny; ++iy) {
      for (int ix = 0; ix < nx; ++ix) {
        double const mu = std::fmin(std::fmax(h0(b, iy, ix), 0.0) * t, 4.5e15);
        mismatch += h(b, iy, ix) == stream_count(seed, first + b, std::uint64_t(iy) * nx + ix, mu) / t ? 0 : 1;
      }
      for (int ix = nx; ix < nx_full; ++ix)
        untouched += h(b, iy, ix) == h0(b, iy, ix) ? 1 : 0;
    }
  CHECK(mismatch == 0);
  CHECK(untouched == long(n) * ny * (nx_full - nx));  // the columns outside the subview are left alone
}

// PoissonNoise::sky: v -> N / t - sky, N the stream's draw for (v + sky) t,
// on the host fast path (64-pixel blocks with and without normal-regime
// pixels: the blocks without skip the normal draw; on a device, the
// per-pixel path).
LENSING_TEST_CASE_TEMPLATE("Poisson with a sky: the draw of v + sky, minus the sky", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  int const n = 2, ny = 6, nx = 130;
  double const t = 3;
  std::uint64_t const seed = 5, first = 17;
  for (double sky : {0.0, 40.0}) {
    lensing::View3D<double, Mem> img("img", n, ny, nx);
    auto h0 = Kokkos::create_mirror(img);
    lensing::random::Stream g(3);
    for (int b = 0; b < n; ++b)
      for (int iy = 0; iy < ny; ++iy)
        for (int ix = 0; ix < nx; ++ix) {
          // Even rows: expected counts below the threshold only (with the sky
          // too); odd rows: every regime, <= 0 included.
          double const u = g.uniform<double>();
          double const lam = iy % 2 == 0 ? 200 * u : (ix % 7 == 0 ? -500.0 : std::pow(10.0, 5 * u - 1));
          h0(b, iy, ix) = lam / t;
        }
    Kokkos::deep_copy(img, h0);
    noise::PoissonNoise<double> model{t};
    model.sky = sky;
    noise::apply(space, model, img, seed, first);
    space.fence();
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), img);
    long mismatch = 0;
    for (int b = 0; b < n; ++b)
      for (int iy = 0; iy < ny; ++iy)
        for (int ix = 0; ix < nx; ++ix) {
          double const mu = std::fmin(std::fmax(h0(b, iy, ix) + sky, 0.0) * t, 4.5e15);
          double const expected = stream_count(seed, first + b, std::uint64_t(iy) * nx + ix, mu) / t - sky;
          mismatch += h(b, iy, ix) == expected ? 0 : 1;
        }
    CHECK(mismatch == 0);
  }
  noise::PoissonNoise<double> bad{t};
  bad.sky = -1;
  lensing::View3D<double, Mem> img("img", 1, 2, 2);
  CHECK_THROWS_WITH_AS(noise::apply(space, bad, img, seed), doctest::Contains("sky"), std::invalid_argument);
}

// The host path of apply(BadPixels) flags hot/dead pixels in a vectorised
// pass and redraws them: the result must be the per-pixel draw of its stream.
LENSING_TEST_CASE_TEMPLATE("hot/dead pixels: the host fast path equals the per-pixel draws", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  Space space;
  int const n = 3, ny = 8, nx = 90;
  std::uint64_t const seed = 5, first = 3;
  // A new pattern per image, and the fixed pattern (keyed by pixel only,
  // drawn once per row for the whole batch on the host).
  for (bool fixed : {false, true}) {
    noise::BadPixels<Scalar> const model{Scalar(0.2), Scalar(3), Scalar(0.1), Scalar(-1), Scalar(0.5), fixed};
    auto img = filled<Scalar, Mem>(n, ny, nx, Scalar(1));
    noise::apply(space, model, img, seed, first);
    space.fence();
    auto const h = to_host(img);
    long mismatch = 0, hot = 0, dead = 0;
    for (int b = 0; b < n; ++b)
      for (int iy = 0; iy < ny; ++iy)
        for (int ix = 0; ix < nx; ++ix) {
          std::uint64_t const image = fixed ? ~std::uint64_t(0) : first + b;
          lensing::random::Stream r(
              lensing::random::stream_key(seed, lensing::random::purpose_hot_dead, image, std::uint64_t(iy) * nx + ix));
          Scalar v = Scalar(1);
          Scalar const u = r.uniform<Scalar>();
          if (u < model.dead_fraction) {
            v = model.dead_value;
            ++dead;
          } else if (u < model.dead_fraction + model.hot_fraction) {
            v += model.hot_value * std::exp(model.sigma_log * r.normal<Scalar>());
            ++hot;
          }
          double const got = h[(size_t(b) * ny + iy) * nx + ix];
          mismatch += std::fabs(got - double(v)) <= 1e-6 * std::fabs(double(v)) ? 0 : 1;
        }
    CHECK(mismatch == 0);
    CHECK(hot > 100);
    CHECK(dead > 50);
  }
}
