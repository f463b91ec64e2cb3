// Observation::sample (noisy realisations), the supersampled PSF option of
// Observation (PsfSampling), and the likelihood gradient through it.
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/convolution.hpp>
#include <lensing/psf/fft_convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/psf/kernels.hpp>
#include <lensing/sources/gaussian.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {
template <class S>
using Lens = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
template <class S>
using Model = lensing::LensModel<Lens<S>, lensing::SersicEllipse<S>, lensing::SersicEllipse<S>>;

std::vector<double> theta0() {
  return {1.05, 0.05,  -0.03, 0.013, -0.021,                  // SIE
          0.03, -0.02, 0.0,   0.0,                            // shear
          20.0, 0.25,  1.6,   0.08,  -0.05,  0.06,  0.03,     // source
          8.0,  0.6,   3.2,   -0.06, 0.04,   0.013, -0.021};  // lens light
}
template <class S>
Model<S> model_at(std::vector<double> const& t) {
  std::vector<S> v(t.begin(), t.end());
  return Model<S>::unpack(v.data());
}

template <class V>
std::vector<double> to_host(V const& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  std::vector<double> out;
  for (std::size_t iy = 0; iy < h.extent(0); ++iy)
    for (std::size_t ix = 0; ix < h.extent(1); ++ix)
      out.push_back(double(h(iy, ix)));
  return out;
}
template <class S, class Mem>
lensing::View2D<S, Mem> from_host(std::vector<double> const& v, int ny, int nx) {
  lensing::View2D<S, Mem> out("v", ny, nx);
  auto h = Kokkos::create_mirror_view(out);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix)
      h(iy, ix) = S(v[std::size_t(iy) * nx + ix]);
  Kokkos::deep_copy(out, h);
  return out;
}
std::vector<double> pattern(int ny, int nx, double a, double b) {
  std::vector<double> v(std::size_t(ny) * nx);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix)
      v[std::size_t(iy) * nx + ix] = std::sin(a * ix + b * iy * iy + 0.3) + 0.2 * std::cos(b * ix * iy);
  return v;
}
double dot(std::vector<double> const& a, std::vector<double> const& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}
}  // namespace

//----------------------------------------------------------------------------
// Noisy realisations.

LENSING_TEST_CASE_TEMPLATE("sample: mean and variance match the noise model", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const n = 12;
  auto const grid = lensing::PixelGrid<S>::square(n, S(0.15), 2);
  lensing::GaussianFilter<S, Mem> const psf(0.2, 0.15, n, n);
  lensing::Observation<S, Mem, lensing::GaussianFilter<S, Mem>> const obs(grid, psf);
  auto const model = model_at<S>(theta0());
  lensing::View2D<S, Mem> clean("clean", n, n), noisy("noisy", n, n);
  obs.render(space, model, clean);
  space.fence();
  auto const M = to_host(clean);
  // Exposure time for 400 expected counts in the brightest pixel (the exact
  // Poisson regime everywhere); read noise and background each add a quarter
  // of the peak's shot variance, so all three terms matter.
  double const mmin = *std::min_element(M.begin(), M.end()), mmax = *std::max_element(M.begin(), M.end());
  double const t = 400 / mmax;
  lensing::ObservationNoise<S> noise;
  noise.exposure_time = S(t);
  noise.background_rms = S(0.5 * std::sqrt(mmax / t));
  noise.read_noise = S(10);  // = 0.5 sqrt(mmax t) electrons
  MESSAGE("model pixels in [" << mmin << ", " << mmax << "], " << mmin * t << " to 400 expected counts");
  REQUIRE(mmin > 0);
  int const N = 1000, P = n * n;
  std::vector<double> sum(P, 0.0), sum2(P, 0.0);
  for (int r = 0; r < N; ++r) {
    obs.sample(space, model, noise, noisy, 7, std::uint64_t(r));
    space.fence();
    auto const d = to_host(noisy);
    for (int p = 0; p < P; ++p) {
      double const e = d[p] - M[p];  // centred on the model: no cancellation
      sum[p] += e;
      sum2[p] += e * e;
    }
  }
  // Mean: per-pixel z = (mean - M) / sqrt(var / N) ~ N(0, 1) (CLT, N = 1000);
  // sum of z^2 ~ chi^2_P.  Variance: the sample variance s^2 has
  // Var[s^2 / var] ~ (2 + kappa4 / var^2) / N, kappa4 = M / t^3 the fourth
  // cumulant of Poisson(M t) / t (the Gaussian terms have none); the pooled
  // mean ratio over P pixels is tested at 5 sigma, every pixel at 5.5 sigma.
  double chi2 = 0, zmax = 0, ratio = 0, ratio_var = 0, zvmax = 0;
  for (int p = 0; p < P; ++p) {
    double const var = double(noise.variance(S(M[p])));
    double const mean = sum[p] / N;
    double const z = mean / std::sqrt(var / N);
    chi2 += z * z;
    zmax = std::max(zmax, std::fabs(z));
    double const s2 = (sum2[p] - N * mean * mean) / (N - 1);
    double const k4 = M[p] / (t * t * t);
    double const vr = (2.0 + k4 / (var * var)) / N;
    ratio += s2 / var - 1;
    ratio_var += vr;
    zvmax = std::max(zvmax, std::fabs(s2 / var - 1) / std::sqrt(vr));
  }
  double const zratio = ratio / std::sqrt(ratio_var);
  MESSAGE("mean: chi2 = " << chi2 << " (P = " << P << "), max |z| = " << zmax << "; variance: pooled z = " << zratio
                          << ", max |z| = " << zvmax);
  CHECK(std::fabs(chi2 - P) < 5 * std::sqrt(2.0 * P));
  CHECK(zmax < 5.5);
  CHECK(std::fabs(zratio) < 5);
  CHECK(zvmax < 5.5);
  // variance(); without shot noise the variance is the Gaussian terms alone.
  lensing::ObservationNoise<S> simple{S(50), S(0.3), S(10)};
  CHECK(double(simple.variance(S(4))) == doctest::Approx(4.0 / 50 + 0.04 + 0.09).epsilon(1e-6));
  CHECK(double(simple.variance(S(-1))) == doctest::Approx(0.04 + 0.09).epsilon(1e-6));
  simple.shot_noise = false;
  CHECK(double(simple.variance(S(4))) == doctest::Approx(0.04 + 0.09).epsilon(1e-6));
}

LENSING_TEST_CASE_TEMPLATE("sample is a deterministic function of the seed", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const n = 20;
  auto const grid = lensing::PixelGrid<S>(n, n - 2, S(0.12), 3);
  lensing::GaussianFilter<S, Mem> const psf(0.25, 0.12, n - 2, n);
  lensing::Observation<S, Mem, lensing::GaussianFilter<S, Mem>> const obs(grid, psf);
  auto const model = model_at<S>(theta0());
  lensing::ObservationNoise<S> noise{S(200), S(0.05), S(4)};
  lensing::View2D<S, Mem> a("a", n - 2, n), b("b", n - 2, n);
  obs.sample(space, model, noise, a, 11, 3);
  obs.sample(space, model, noise, b, 11, 3);
  space.fence();
  auto const ha = to_host(a);
  CHECK(ha == to_host(b));
  // = render + add_observation_noise.
  obs.render(space, model, b);
  lensing::add_observation_noise(space, noise, b, 11, 3);
  space.fence();
  CHECK(ha == to_host(b));
  // Another realisation index or seed: a different image.
  obs.sample(space, model, noise, b, 11, 4);
  space.fence();
  CHECK(ha != to_host(b));
  obs.sample(space, model, noise, b, 12, 3);
  space.fence();
  CHECK(ha != to_host(b));
}

#if defined(KOKKOS_ENABLE_SERIAL) && defined(KOKKOS_ENABLE_OPENMP)
TEST_CASE("sample does not depend on the thread count") {
  // Serial (1 thread) against OpenMP (OMP_NUM_THREADS threads; ctest runs
  // this program at 1 and 2): bitwise equal, supersampled PSF included.
  auto run = [](auto space, lensing::PsfSampling sampling) {
    using Space = decltype(space);
    using Mem = typename Space::memory_space;
    auto const grid = lensing::PixelGrid<double>(30, 26, 0.1, 3);
    bool const super = sampling == lensing::PsfSampling::supersampled;
    lensing::GaussianFilter<double, Mem> const psf(0.2, super ? 0.1 / 3 : 0.1, super ? 78 : 26, super ? 90 : 30);
    lensing::Observation<double, Mem, lensing::GaussianFilter<double, Mem>> const obs(grid, psf, sampling);
    lensing::View2D<double, Mem> image("image", 26, 30);
    lensing::ObservationNoise<double> noise{100.0, 0.02, 3.0};
    obs.sample(space, model_at<double>(theta0()), noise, image, 2024, 17);
    return to_host(image);
  };
  for (auto sampling : {lensing::PsfSampling::binned, lensing::PsfSampling::supersampled}) {
    auto const a = run(Kokkos::Serial(), sampling);
    auto const b = run(Kokkos::OpenMP(), sampling);
    CHECK(a == b);
  }
}
#endif

LENSING_TEST_CASE_TEMPLATE("sample rejects bad parameters", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  auto const grid = lensing::PixelGrid<double>::square(8, 0.1, 2);
  lensing::Observation<double, Mem, lensing::NoPsf<double>> const obs(grid, {});
  lensing::View2D<double, Mem> image("image", 8, 8), wrong("wrong", 8, 9);
  auto const model = model_at<double>(theta0());
  lensing::ObservationNoise<double> const good{100.0, 0.1, 2.0};
  CHECK_NOTHROW(obs.sample(space, model, good, image, 1));
  auto bad = good;
  for (double t : {-1.0, 0.0, double(NAN), double(INFINITY)}) {
    bad = good;
    bad.exposure_time = t;
    CHECK_THROWS_AS(obs.sample(space, model, bad, image, 1), std::invalid_argument);
  }
  bad = good;
  bad.background_rms = NAN;
  CHECK_THROWS_AS(obs.sample(space, model, bad, image, 1), std::invalid_argument);
  bad = good;
  bad.background_rms = -0.1;
  CHECK_THROWS_AS(obs.sample(space, model, bad, image, 1), std::invalid_argument);
  bad = good;
  bad.read_noise = NAN;
  CHECK_THROWS_AS(obs.sample(space, model, bad, image, 1), std::invalid_argument);
  bad = good;
  bad.normal_threshold = 1;
  CHECK_THROWS_AS(lensing::add_observation_noise(space, bad, image, 1), std::invalid_argument);
  // The message names the function and the parameter.
  bad = good;
  bad.exposure_time = -2;
  try {
    obs.sample(space, model, bad, image, 1);
    CHECK(false);
  } catch (std::invalid_argument const& e) {
    std::string const what = e.what();
    CHECK(what.find("lensing::Observation::sample") != std::string::npos);
    CHECK(what.find("exposure_time") != std::string::npos);
  }
  // NaN model parameters, wrong image shape.
  auto t = theta0();
  t[0] = NAN;
  CHECK_THROWS_AS(obs.sample(space, model_at<double>(t), good, image, 1), std::invalid_argument);
  t = theta0();
  t[10] = NAN;  // R_sersic of the source
  CHECK_THROWS_AS(obs.sample(space, model_at<double>(t), good, image, 1), std::invalid_argument);
  CHECK_THROWS_AS(obs.sample(space, model, good, wrong, 1), std::invalid_argument);
  // A PSF operator of the wrong size for the chosen sampling.
  lensing::GaussianFilter<double, Mem> const coarse(0.2, 0.1, 8, 8);
  using Obs = lensing::Observation<double, Mem, lensing::GaussianFilter<double, Mem>>;
  CHECK_NOTHROW(Obs(grid, coarse));
  CHECK_THROWS_AS(Obs(grid, coarse, lensing::PsfSampling::supersampled), std::invalid_argument);
  // Noise map: the square root of the model variance.
  lensing::View2D<double, Mem> sigma("sigma", 8, 8);
  obs.render(space, model, image);
  lensing::observation_noise_map(space, good, image, sigma);
  space.fence();
  auto const hm = to_host(image), hs = to_host(sigma);
  for (std::size_t p = 0; p < hm.size(); ++p)
    CHECK(hs[p] == doctest::Approx(std::sqrt(hm[p] / 100 + 0.0004 + 0.01)).epsilon(1e-14));
  CHECK_THROWS_AS(lensing::observation_noise_map(space, good, image, wrong), std::invalid_argument);
}

//----------------------------------------------------------------------------
// PSF on the supersampled grid.

LENSING_TEST_CASE_TEMPLATE("supersampled PSF converges to the exact pixel integral", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  // Unlensed (zero shear) Gaussian source of total flux A and width s, Gaussian
  // PSF of width p: the exact pixel value is A F_x F_y, F the erf difference
  // over the pixel for the width sqrt(s^2 + p^2).  The PSF is barely resolved
  // (FWHM 2 pixels), where the choice matters.
  using L = lensing::Composite<lensing::ExternalShear<double>>;
  using M = lensing::LensModel<L, lensing::Gaussian<double>, lensing::NoLight<double>>;
  M const model{L{lensing::ExternalShear<double>{0, 0, 0, 0}}, lensing::Gaussian<double>{3.0, 0.08, 0.031, -0.017}, {}};
  int const n = 24;
  double const d = 0.05, fwhm = 0.1, s = 0.08, p = fwhm / (2 * std::sqrt(2 * std::log(2.0)));
  auto exact = [&](double var) {
    std::vector<double> e(n * n);
    double const sw = std::sqrt(2 * var);
    auto F = [&](double x, double c) {
      return 0.5 * (std::erf((x + d / 2 - c) / sw) - std::erf((x - d / 2 - c) / sw));
    };
    for (int iy = 0; iy < n; ++iy)
      for (int ix = 0; ix < n; ++ix)
        e[iy * n + ix] = 3.0 * F((ix - 11.5) * d, 0.031) * F((iy - 11.5) * d, -0.017);
    return e;
  };
  auto const truth = exact(s * s + p * p);
  // A pixel-integrated PSF applied after binning blurs once more by a pixel:
  // variance + d^2 / 12 per axis.
  auto const broadened = exact(s * s + p * p + d * d / 12);
  Space space;
  // 1. lenstronomy's point-sampled Gaussian (GaussianFilter): both orders
  //    converge to the exact image as k grows, and so to each other.
  {
    using Psf = lensing::GaussianFilter<double, Mem>;
    double prev_s = 1, prev_b = 1;
    for (int k : {1, 2, 4, 8}) {
      auto const grid = lensing::PixelGrid<double>::square(n, d, k);
      lensing::Observation<double, Mem, Psf> const sup(grid, Psf(fwhm, d / k, n * k, n * k),
                                                       lensing::PsfSampling::supersampled);
      lensing::Observation<double, Mem, Psf> const bin(grid, Psf(fwhm, d, n, n));
      lensing::View2D<double, Mem> a("a", n, n), b("b", n, n);
      sup.render(space, model, a);
      bin.render(space, model, b);
      space.fence();
      auto const ha = to_host(a), hb = to_host(b);
      double const es = lensing::test::rel_diff(ha, truth), eb = lensing::test::rel_diff(hb, truth),
                   diff = lensing::test::rel_diff(ha, hb);
      MESSAGE("point-sampled PSF, k = " << k << ": supersampled vs exact " << es << ", binned vs exact " << eb
                                        << "; |supersampled - binned| / max = " << diff);
      if (k == 1) CHECK(diff < 1e-14);  // the two orders commute at k = 1
      if (k > 1) {
        CHECK(es < prev_s / 3);  // O(1/k^2), the sub-pixel midpoint rule
        CHECK(eb < prev_b / 3);
        // Agreement to 1e-4 of the peak (measured 5.2e-5 at every k > 1: the
        // coarse kernel's point sampling of a 2-pixel FWHM, which k does not change).
        CHECK(diff < 1e-4);
      }
      if (k == 8) CHECK(es < 5e-4);
      prev_s = es;
      prev_b = eb;
    }
  }
  // 2. A pixel-integrated Gaussian kernel (gaussian_psf_kernel): the
  //    supersampled path (kernel integrated over fine pixels) converges to the
  //    exact image; the binned one to the broadened image instead.
  {
    using Psf = lensing::DirectConvolution<double, Mem>;
    double prev_broad = 1;
    for (int k : {1, 2, 4, 8}) {
      auto const grid = lensing::PixelGrid<double>::square(n, d, k);
      Psf const fine_psf(lensing::gaussian_psf_kernel<double>(fwhm, d / k), n * k, n * k);
      Psf const coarse_psf(lensing::gaussian_psf_kernel<double>(fwhm, d), n, n);
      lensing::Observation<double, Mem, Psf> const sup(grid, fine_psf, lensing::PsfSampling::supersampled);
      lensing::Observation<double, Mem, Psf> const bin(grid, coarse_psf);
      lensing::View2D<double, Mem> a("a", n, n), b("b", n, n);
      sup.render(space, model, a);
      bin.render(space, model, b);
      space.fence();
      auto const ha = to_host(a), hb = to_host(b);
      double const es = lensing::test::rel_diff(ha, truth), eb = lensing::test::rel_diff(hb, truth),
                   ebb = lensing::test::rel_diff(hb, broadened), diff = lensing::test::rel_diff(ha, hb);
      MESSAGE("pixel-integrated PSF, k = " << k << ": supersampled vs exact " << es << "; binned vs exact " << eb
                                           << ", vs broadened " << ebb << "; |supersampled - binned| / max = " << diff);
      if (k == 1) CHECK(diff < 1e-14);
      CHECK(es < 3e-5);
      if (k > 1) {
        CHECK(ebb < prev_broad / 3);  // binned -> broadened as O(1/k^2)
        CHECK(eb > 0.015);            // and stays ~2% of the peak away from the exact image
        CHECK(std::fabs(diff - eb) < 2 * es + 0.1 * eb);
      }
      prev_broad = ebb;
    }
  }
}

LENSING_TEST_CASE_TEMPLATE("blur_and_bin and its adjoint", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  double const tol = std::is_same<S, double>::value ? 1e-12 : 2e-5;
  Space space;
  int const k = 3, nx = 14, ny = 11;
  auto const grid = lensing::PixelGrid<S>(nx, ny, S(0.1), k, S(0.01), S(-0.02));
  auto const x = pattern(ny * k, nx * k, 0.37, 0.011), y = pattern(ny, nx, 0.71, 0.05);
  auto const xv = from_host<S, Mem>(x, ny * k, nx * k), yv = from_host<S, Mem>(y, ny, nx);
  lensing::View2D<S, Mem> ax("ax", ny, nx), aty("aty", ny * k, nx * k), img("img", ny, nx), ref("ref", ny, nx),
      fine("fine", ny * k, nx * k);
  auto const model = model_at<S>(theta0());
  auto check_operator = [&](auto const& obs, std::string const& name) {
    obs.blur_and_bin(space, xv, ax);
    obs.blur_and_bin_adjoint(space, yv, aty);
    space.fence();
    double const lhs = dot(to_host(ax), y), rhs = dot(x, to_host(aty));
    MESSAGE(name << ": <Ax, y> = " << lhs << ", <x, A^T y> = " << rhs);
    CHECK(std::fabs(lhs - rhs) <= tol * (std::fabs(lhs) + 1));
    // render = blur_and_bin(render_fine).
    obs.render(space, model, ref);
    obs.renderer().render_fine(space, model.lens, model.source, model.lens_light, fine);
    obs.blur_and_bin(space, fine, img);
    space.fence();
    CHECK(lensing::test::rel_diff(to_host(img), to_host(ref)) <= tol);
  };
  using G = lensing::GaussianFilter<S, Mem>;
  using D = lensing::DirectConvolution<S, Mem>;
  using F = lensing::FftConvolution<S, Mem>;
  auto const kern = lensing::moffat_psf_kernel<S>(0.2, 2.5, 0.1 / k, 9);
  check_operator(
      lensing::Observation<S, Mem, G>(grid, G(0.2, 0.1 / k, ny * k, nx * k), lensing::PsfSampling::supersampled),
      "supersampled GaussianFilter");
  check_operator(lensing::Observation<S, Mem, D>(grid, D(kern, ny * k, nx * k), lensing::PsfSampling::supersampled),
                 "supersampled DirectConvolution");
  check_operator(
      lensing::Observation<S, Mem, F>(grid, F(space, kern, ny * k, nx * k), lensing::PsfSampling::supersampled),
      "supersampled FftConvolution");
  check_operator(lensing::Observation<S, Mem, G>(grid, G(0.2, 0.1, ny, nx)), "binned GaussianFilter");
  // Bin and spread alone are each other's transpose, and bin reproduces the renderer.
  lensing::bin_subpixels(space, grid, xv, ax);
  lensing::spread_to_subpixels(space, grid, yv, aty);
  space.fence();
  double const lhs = dot(to_host(ax), y), rhs = dot(x, to_host(aty));
  CHECK(std::fabs(lhs - rhs) <= tol * (std::fabs(lhs) + 1));
  lensing::Renderer<S, Mem> const r(grid);
  r.render(space, model.lens, model.source, model.lens_light, ref);
  r.render_fine(space, model.lens, model.source, model.lens_light, fine);
  lensing::bin_subpixels(space, grid, fine, img);
  space.fence();
  CHECK(to_host(img) == to_host(ref));  // the same sums in the same order
  lensing::View2D<S, Mem> wrong("wrong", ny, nx + 1);
  CHECK_THROWS_AS(lensing::bin_subpixels(space, grid, fine, wrong), std::invalid_argument);
  CHECK_THROWS_AS(lensing::spread_to_subpixels(space, grid, wrong, fine), std::invalid_argument);
  CHECK_THROWS_AS(r.render_fine(space, model.lens, model.source, model.lens_light, img), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("likelihood gradient through a supersampled PSF matches finite differences", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using M = Model<double>;
  Space space;
  for (int k : {2, 3}) {
    int const nx = 20, ny = 18;
    auto const grid = lensing::PixelGrid<double>(nx, ny, 0.12, k, 0.004, -0.007);
    using G = lensing::GaussianFilter<double, Mem>;
    lensing::Observation<double, Mem, G> const obs(grid, G(0.2, 0.12 / k, ny * k, nx * k),
                                                   lensing::PsfSampling::supersampled);
    // Data: a noisy realisation at shifted parameters, with its noise map.
    auto const t0 = theta0();
    auto t1 = t0;
    for (std::size_t j = 0; j < t1.size(); ++j)
      t1[j] += 0.01 * std::sin(3.1 * j + 1);
    lensing::ObservationNoise<double> const noise{400.0, 0.02, 3.0};
    lensing::View2D<double, Mem> data("data", ny, nx), sigma("sigma", ny, nx), mask("mask", ny, nx);
    obs.sample(space, M::unpack(t1.data()), noise, data, 5);
    obs.render(space, M::unpack(t1.data()), sigma);
    lensing::observation_noise_map(space, noise, sigma, sigma);
    Kokkos::deep_copy(space, mask, 1.0);
    space.fence();
    lensing::GaussianLikelihood<M, Mem, G> const like(obs, data, sigma, mask);
    lensing::View1D<double, Mem> grad("grad", M::num_params);
    double const v = like.value_and_gradient(space, M::unpack(t0.data()), grad);
    CHECK(v == doctest::Approx(like.value(space, M::unpack(t0.data()))).epsilon(1e-13));
    auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad);
    int bad = 0;
    for (int j = 0; j < M::num_params; ++j) {
      double const h = 1e-6 * std::max(1.0, std::fabs(t0[j]));
      auto tp = t0, tm = t0;
      tp[j] += h;
      tm[j] -= h;
      double const fd = (like.value(space, M::unpack(tp.data())) - like.value(space, M::unpack(tm.data()))) / (2 * h);
      if (std::getenv("LENSING_VERBOSE")) MESSAGE(j << " " << hg(j) << " " << fd << " v=" << v);
      if (!(std::fabs(hg(j) - fd) <= 1e-5 * (std::fabs(fd) + 1e-2 * std::fabs(v)))) {
        ++bad;
        MESSAGE("k = " << k << ", parameter " << j << ": gradient " << hg(j) << ", finite differences " << fd);
      }
    }
    CHECK(bad == 0);
  }
}
