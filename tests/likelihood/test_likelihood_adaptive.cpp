// GaussianLikelihood with adaptive supersampling (set_supersampling_mask,
// choose_supersampling_mask) and the float likelihood's double accumulation:
//  - the mask all-on is the full supersampled likelihood, all-off the k = 1
//    likelihood (value and gradient, to rounding);
//  - the adaptive gradient matches central finite differences for every
//    parameter with a mixed mask (fixed noise map and model variance);
//  - bad masks and modes are refused with clear errors; clones agree;
//  - error model on the examples/fit_lens case (100^2 pixels of 0.05",
//    k = 3, Gaussian PSF, sigma = 0.05): the mask chosen at tolerance 0.1
//    moves the likelihood's maximum by less than 0.1 posterior sd in every
//    parameter (Fisher matrix by finite differences), and the float
//    likelihood's value and gradient are within their error model of the
//    double one's.

#include <lensing/likelihood/gaussian.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>
#include "perturbed_data.hpp"

#if defined(KOKKOS_ENABLE_OPENMP)
#include <omp.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace {
template <class S>
using LensT = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
template <class S>
using ModelT = lensing::LensModel<LensT<S>, lensing::SersicEllipse<S>, lensing::SersicEllipse<S>>;
using Model = ModelT<double>;

std::vector<double> theta0() {
  return {1.05, 0.05,  -0.03, 0.013, -0.021,                  // SIE
          0.03, -0.02, 0.0,   0.0,                            // shear
          20.0, 0.25,  1.6,   0.08,  -0.05,  0.06,  0.03,     // source
          8.0,  0.6,   3.2,   -0.06, 0.04,   0.013, -0.021};  // lens light
}

template <class Mem>
using Like = lensing::GaussianLikelihood<Model, Mem, lensing::GaussianFilter<double, Mem>>;

// Data (the model at shifted parameters plus a fixed pattern), a varying
// noise map and a mask with a hole on `grid`.
template <class Space>
struct Case {
  using Mem = typename Space::memory_space;
  lensing::View2D<double, Mem> data, noise, mask;
  Case(lensing::Observation<double, Mem, lensing::GaussianFilter<double, Mem>> const& obs) {
    Space space;
    int const ny = obs.grid().ny(), nx = obs.grid().nx();
    data = lensing::View2D<double, Mem>("data", ny, nx);
    noise = lensing::View2D<double, Mem>("noise", ny, nx);
    mask = lensing::View2D<double, Mem>("mask", ny, nx);
    make_perturbed_data<Model>(space, obs, theta0(), data, noise, mask);
  }
};

template <class L, class Space>
std::vector<double> value_and_grad(L const& like, Space const& space, std::vector<double> const& t) {
  using Mem = typename Space::memory_space;
  lensing::View1D<double, Mem> grad("grad", Model::num_params);
  double const v = like.value_and_gradient(space, Model::unpack(t.data()), grad);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad);
  std::vector<double> out(h.data(), h.data() + Model::num_params);
  out.push_back(v);
  return out;
}

// Largest |a_i - b_i| over max_i |b_i| (value last, compared separately).
double max_rel_diff(std::vector<double> const& a, std::vector<double> const& b) {
  double scale = 0, worst = 0;
  for (std::size_t i = 0; i + 1 < b.size(); ++i)
    scale = std::max(scale, std::fabs(b[i]));
  for (std::size_t i = 0; i + 1 < b.size(); ++i)
    worst = std::max(worst, std::fabs(a[i] - b[i]) / scale);
  return worst;
}

// Solve F x = b for symmetric positive definite F (d x d row-major) by Cholesky.
std::vector<double> spd_solve(std::vector<double> F, std::vector<double> b) {
  int const d = int(b.size());
  for (int j = 0; j < d; ++j) {
    for (int k = 0; k < j; ++k)
      F[j * d + j] -= F[j * d + k] * F[j * d + k];
    REQUIRE(F[j * d + j] > 0);
    F[j * d + j] = std::sqrt(F[j * d + j]);
    for (int i = j + 1; i < d; ++i) {
      for (int k = 0; k < j; ++k)
        F[i * d + j] -= F[i * d + k] * F[j * d + k];
      F[i * d + j] /= F[j * d + j];
    }
  }
  for (int i = 0; i < d; ++i) {
    for (int k = 0; k < i; ++k)
      b[i] -= F[i * d + k] * b[k];
    b[i] /= F[i * d + i];
  }
  for (int i = d - 1; i >= 0; --i) {
    for (int k = i + 1; k < d; ++k)
      b[i] -= F[k * d + i] * b[k];
    b[i] /= F[i * d + i];
  }
  return b;
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("adaptive likelihood: mask all-on is the full likelihood, all-off is k = 1", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using Psf = lensing::GaussianFilter<double, Mem>;
  Space space;
  int const nx = 20, ny = 18;
  lensing::Observation<double, Mem, Psf> const obs3(lensing::PixelGrid<double>(nx, ny, 0.12, 3, 0.004, -0.007),
                                                    Psf(0.25, 0.12, ny, nx));
  lensing::Observation<double, Mem, Psf> const obs1(lensing::PixelGrid<double>(nx, ny, 0.12, 1, 0.004, -0.007),
                                                    Psf(0.25, 0.12, ny, nx));
  Case<Space> const c(obs3);
  Like<Mem> const full(obs3, c.data, c.noise, c.mask), one(obs1, c.data, c.noise, c.mask);
  Like<Mem> on(obs3, c.data, c.noise, c.mask), off(obs3, c.data, c.noise, c.mask);
  lensing::View2D<int, Mem> m("m", ny, nx);
  Kokkos::deep_copy(m, 1);
  on.set_supersampling_mask(space, m);
  Kokkos::deep_copy(m, 0);
  off.set_supersampling_mask(space, m);
  CHECK(on.adaptive_supersampling());
  CHECK(on.supersampled_pixels() == nx * ny);
  CHECK(on.evaluation_points() == 9L * nx * ny);
  CHECK(off.supersampled_pixels() == 0);
  CHECK(off.evaluation_points() == long(nx) * ny);
  CHECK(full.evaluation_points() == 9L * nx * ny);
  auto const t = theta0();
  auto const a_full = value_and_grad(full, space, t), a_on = value_and_grad(on, space, t);
  auto const a_one = value_and_grad(one, space, t), a_off = value_and_grad(off, space, t);
  // Error model: the same points and per-point functions; only the order of
  // the sums differs (fixed rows of 256 points vs fine rows; each in double),
  // so the differences are rounding: ~1e-16 times the sum of |terms|, which
  // cancel to the gradient by at most ~1e3 here (residuals of a few sigma
  // against |d log L / d M| sums) -> 1e-11 of the largest component.
  double const d_on = max_rel_diff(a_on, a_full), d_off = max_rel_diff(a_off, a_one);
  MESSAGE("all-on vs full k = 3: gradient ", d_on, ", value ", a_on.back(), " vs ", a_full.back());
  MESSAGE("all-off vs k = 1: gradient ", d_off, ", value ", a_off.back(), " vs ", a_one.back());
  CHECK(d_on <= 1e-11);
  CHECK(d_off <= 1e-11);
  CHECK(a_on.back() == doctest::Approx(a_full.back()).epsilon(1e-13));
  CHECK(a_off.back() == doctest::Approx(a_one.back()).epsilon(1e-13));
  // value() is the same function as value_and_gradient's value.
  CHECK(on.value(space, Model::unpack(t.data())) == doctest::Approx(a_on.back()).epsilon(1e-14));
  // The two images differ (k = 3 vs k = 1 at these parameters).
  CHECK(std::fabs(a_full.back() - a_one.back()) > 1e-3 * std::fabs(a_full.back()));
  // clear_supersampling_mask: back to the full likelihood.
  on.clear_supersampling_mask();
  CHECK(!on.adaptive_supersampling());
  CHECK(value_and_grad(on, space, t) == a_full);
}

LENSING_TEST_CASE_TEMPLATE("adaptive likelihood gradient matches finite differences for every parameter", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using Psf = lensing::GaussianFilter<double, Mem>;
  Space space;
  int const nx = 20, ny = 18;
  for (int k : {2, 3}) {
    lensing::Observation<double, Mem, Psf> const obs(lensing::PixelGrid<double>(nx, ny, 0.12, k, 0.004, -0.007),
                                                     Psf(0.25, 0.12, ny, nx));
    Case<Space> const c(obs);
    // A mixed mask: a ring-like band where the arcs are, every 5th pixel elsewhere.
    lensing::View2D<double, Kokkos::HostSpace> m("m", ny, nx);
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        double const r = std::hypot(obs.grid().x(ix), obs.grid().y(iy));
        m(iy, ix) = (r > 0.8 && r < 1.3) || (iy * nx + ix) % 5 == 0 ? 1.0 : 0.0;
      }
    lensing::ObservationNoise<double> noise_model;
    noise_model.exposure_time = 500;
    noise_model.background_rms = 0.02;
    Like<Mem> fixed(obs, c.data, c.noise, c.mask), modelvar(obs, c.data, noise_model, c.mask);
    fixed.set_supersampling_mask(space, m);
    modelvar.set_supersampling_mask(space, m);
    CHECK(fixed.supersampled_pixels() > 0);
    CHECK(fixed.supersampled_pixels() < nx * ny);
    auto const t0 = theta0();
    for (Like<Mem> const* like : {&fixed, &modelvar}) {
      auto const g = value_and_grad(*like, space, t0);
      double const v = g.back();
      int bad = 0;
      for (int j = 0; j < Model::num_params; ++j) {
        double const h = 1e-6 * std::max(1.0, std::fabs(t0[j]));
        auto tp = t0, tm = t0;
        tp[j] += h;
        tm[j] -= h;
        double const fd =
            (like->value(space, Model::unpack(tp.data())) - like->value(space, Model::unpack(tm.data()))) / (2 * h);
        if (std::getenv("LENSING_VERBOSE")) MESSAGE(j << " " << g[j] << " " << fd << " v=" << v);
        // The existing likelihood test's tolerance: central differences at
        // h = 1e-6 err by ~h^2 f''' plus ~1e-16 |v| / h of rounding.
        if (!(std::fabs(g[j] - fd) <= 1e-5 * (std::fabs(fd) + 1e-2 * std::fabs(v)))) {
          ++bad;
          MESSAGE("k = " << k << ", parameter " << j << ": gradient " << g[j] << ", finite differences " << fd);
        }
      }
      CHECK(bad == 0);
    }
    // A clone evaluates the same numbers with its own buffers.
    auto const cl = fixed.clone();
    CHECK(cl.adaptive_supersampling());
    CHECK(value_and_grad(cl, space, t0) == value_and_grad(fixed, space, t0));
  }
}

LENSING_TEST_CASE_TEMPLATE("adaptive likelihood rejects bad masks and modes", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using Psf = lensing::GaussianFilter<double, Mem>;
  Space space;
  auto const grid = lensing::PixelGrid<double>::square(8, 0.1, 3);
  lensing::Observation<double, Mem, Psf> const obs(grid, Psf(0.2, 0.1, 8, 8));
  lensing::View2D<double, Mem> d("d", 8, 8), n("n", 8, 8), m("m", 8, 8);
  Kokkos::deep_copy(n, 1.0);
  Kokkos::deep_copy(m, 1.0);
  Like<Mem> like(obs, d, n, m);
  lensing::View2D<int, Mem> wrong("w", 8, 7), ok("ok", 8, 8);
  CHECK_THROWS_WITH_AS(like.set_supersampling_mask(space, wrong), doctest::Contains("set_supersampling_mask: mask"),
                       std::invalid_argument);
  CHECK(!like.adaptive_supersampling());
  lensing::View2D<double, Kokkos::HostSpace> nan("nan", 8, 8);
  nan(3, 4) = std::nan("");
  CHECK_THROWS_WITH_AS(like.set_supersampling_mask(space, nan), doctest::Contains("mask(3, 4) must be finite"),
                       std::invalid_argument);
  CHECK(!like.adaptive_supersampling());
  CHECK_THROWS_AS(like.choose_supersampling_mask(space, Model::unpack(theta0().data()), -1.0), std::invalid_argument);
  CHECK_THROWS_AS(like.choose_supersampling_mask(space, Model::unpack(theta0().data()), 0.1, -1),
                  std::invalid_argument);
  // A PSF on the supersampled grid: no adaptive form.
  lensing::Observation<double, Mem, Psf> const fine(grid, Psf(0.2, 0.1 / 3, 24, 24),
                                                    lensing::PsfSampling::supersampled);
  Like<Mem> like_fine(fine, d, n, m);
  CHECK_THROWS_WITH_AS(like_fine.set_supersampling_mask(space, ok), doctest::Contains("PsfSampling::binned"),
                       std::invalid_argument);
  CHECK_NOTHROW(like.set_supersampling_mask(space, ok));
}

TEST_CASE("adaptive and float likelihoods on the fit_lens case: error model against the posterior sd") {
  using Space = Kokkos::DefaultHostExecutionSpace;
  using Mem = Space::memory_space;
  using Psf = lensing::GaussianFilter<double, Mem>;
  Space space;
  // examples/fit_lens's full case and truth.
  int const n = 100, k = 3;
  double const pixel = 0.05, sigma = 0.05;
  lensing::Observation<double, Mem, Psf> const obs(lensing::PixelGrid<double>::square(n, pixel, k),
                                                   Psf(0.1, pixel, n, n));
  std::vector<double> const truth = {1.20, 0.08,  -0.05, 0.0,  0.0, 0.03, -0.02, 0.0,  0.0,  15.0, 0.15, 1.5,
                                     0.10, -0.08, 0.05,  0.08, 2.0, 0.80, 1.0,   0.05, 0.03, 0.0,  0.0};
  lensing::View2D<double, Mem> data("data", n, n), noisy("noisy", n, n), noise("noise", n, n), mask("mask", n, n);
  obs.render(space, Model::unpack(truth.data()), data);  // noise-free: the bias is E over the noise
  Kokkos::deep_copy(space, noisy, data);
  lensing::noise::apply(space, lensing::noise::GaussianNoise<double>{sigma}, noisy, 15);
  Kokkos::deep_copy(space, noise, sigma);
  Kokkos::deep_copy(space, mask, 1.0);
  space.fence();
  Like<Mem> const full(obs, data, noise, mask);
  Like<Mem> adaptive(obs, data, noise, mask);
  double const tol = 0.1;
  auto const choice = adaptive.choose_supersampling_mask(space, Model::unpack(truth.data()), tol);
  MESSAGE("fit_lens case, tolerance ", tol, ": ", choice.flagged, " of ", n * n, " pixels supersampled, ",
          choice.points, " points (cost ", choice.cost, " of k = 3), chi distance ", choice.chi_distance, " (bound ",
          choice.bound, ")");
  CHECK(choice.bound <= tol);
  // Uniform sigma, no mask: the PSF does not increase the pre-PSF norm.
  CHECK(choice.chi_distance <= choice.bound * (1 + 1e-9) + 1e-12);
  CHECK(choice.chi_distance <= tol);
  CHECK(choice.cost < 0.6);  // the point of it: far fewer evaluations than k^2 per pixel
  // Free parameters of fit_lens (the shear origin is fixed; the lens light's
  // centre is free here, which only widens the Fisher matrix's span).
  std::vector<int> free;
  for (int j = 0; j < Model::num_params; ++j)
    if (j != 7 && j != 8) free.push_back(j);
  int const d = int(free.size());
  // J = dM/dtheta of the full model image by central differences, F = J^T J / sigma^2.
  auto image = [&](Like<Mem> const& like, std::vector<double> const& t) {
    lensing::View2D<double, Mem> img("img", n, n);
    like.render_model(space, Model::unpack(t.data()), img);
    space.fence();
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), img);
    return std::vector<double>(h.data(), h.data() + n * n);
  };
  auto jacobian = [&](Like<Mem> const& like) {
    std::vector<std::vector<double>> J(static_cast<std::size_t>(d));
    for (int a = 0; a < d; ++a) {
      int const j = free[std::size_t(a)];
      double const h = 1e-5 * std::max(1.0, std::fabs(truth[std::size_t(j)]));
      auto tp = truth, tm = truth;
      tp[std::size_t(j)] += h;
      tm[std::size_t(j)] -= h;
      auto const ip = image(like, tp), im = image(like, tm);
      J[std::size_t(a)].resize(ip.size());
      for (std::size_t p = 0; p < ip.size(); ++p)
        J[std::size_t(a)][p] = (ip[p] - im[p]) / (2 * h * sigma);  // Sigma^-1/2 J
    }
    return J;
  };
  auto const J = jacobian(full);
  std::vector<double> F(static_cast<std::size_t>(d * d));
  for (int a = 0; a < d; ++a)
    for (int b = 0; b < d; ++b) {
      double s = 0;
      for (std::size_t p = 0; p < J[0].size(); ++p)
        s += J[std::size_t(a)][p] * J[std::size_t(b)][p];
      F[std::size_t(a * d + b)] = s;
    }
  std::vector<double> sd(static_cast<std::size_t>(d));
  for (int a = 0; a < d; ++a) {
    std::vector<double> e(static_cast<std::size_t>(d), 0.0);
    e[std::size_t(a)] = 1;
    sd[std::size_t(a)] = std::sqrt(spd_solve(F, e)[std::size_t(a)]);
  }
  // The first-order shift of the maximum from a gradient difference dg
  // (d log L / d theta at the same point): delta = F^-1 dg; its Mahalanobis
  // length sqrt(dg^T F^-1 dg) and its largest |delta_i| / sd_i.
  auto shift = [&](std::vector<double> const& ga, std::vector<double> const& gb, double& worst_z) {
    std::vector<double> dg(static_cast<std::size_t>(d));
    for (int a = 0; a < d; ++a)
      dg[std::size_t(a)] = ga[std::size_t(free[std::size_t(a)])] - gb[std::size_t(free[std::size_t(a)])];
    auto const delta = spd_solve(F, dg);
    double m2 = 0;
    worst_z = 0;
    for (int a = 0; a < d; ++a) {
      m2 += delta[std::size_t(a)] * dg[std::size_t(a)];
      worst_z = std::max(worst_z, std::fabs(delta[std::size_t(a)]) / sd[std::size_t(a)]);
    }
    return std::sqrt(m2);
  };

  // 1. Adaptive vs full on noise-free data at the truth: the full gradient is
  // 0 (data = its model), the adaptive one J_a^T Sigma^-1 (M_k - M_a), and
  // delta = F^-1 g_a is the bias of the adaptive fit; its Mahalanobis length
  // is at most chi_distance (projection), and each |delta_i| / sd_i at most that.
  auto const gf = value_and_grad(full, space, truth), ga = value_and_grad(adaptive, space, truth);
  double z_bias = 0;
  double const m_bias = shift(ga, gf, z_bias);
  MESSAGE("adaptive bias at the truth: Mahalanobis ", m_bias, ", largest |bias| / sd ", z_bias,
          "; log L (noise-free data): adaptive ", ga.back(), ", full ", gf.back());
  // log L_a = -1/2 chi_distance^2 exactly (data = M_k); rounding ~1e-12.
  CHECK(ga.back() == doctest::Approx(-0.5 * choice.chi_distance * choice.chi_distance).epsilon(1e-6));
  // J_a vs J_k and F by differences (relative ~1e-4 here) loosen the bound
  // by a few per cent at most.
  CHECK(m_bias <= 1.05 * choice.chi_distance + 1e-6);
  CHECK(z_bias <= m_bias * (1 + 1e-9) + 1e-12);
  CHECK(z_bias < tol);

  // 1b. The mask is chosen once, at the MAP, and used over the whole
  // posterior, whose draws lie at Mahalanobis distance ~sqrt(d) = 4.6 from
  // it.  Move one parameter at a time by +-sqrt(d) conditional sd
  // (1 / sqrt(F_aa): a point at that Mahalanobis distance, as far as the
  // typical set reaches along that axis): the adaptive image stays within
  // 2 tolerance of the full one there, so the bias bound above holds over
  // the posterior's bulk with that margin (the arcs move by far less than
  // the mask's one-pixel dilation).
  double worst_far = 0;
  int skipped = 0;
  for (int a = 0; a < d; ++a)
    for (double sgn : {-1.0, 1.0}) {
      auto t = truth;
      std::size_t const j = std::size_t(free[std::size_t(a)]);
      double const step = sgn * std::sqrt(double(d) / F[std::size_t(a * d + a)]);
      bool const positive = j == 0 || j == 9 || j == 10 || j == 11 || j == 16 || j == 17 || j == 18;
      t[j] = positive ? t[j] * std::exp(step / t[j]) : t[j] + step;  // positive ones: the step in log
      try {
        Model::unpack(t.data()).check();
      } catch (std::invalid_argument const&) {  // an ellipticity of the faint lens light past |e| = 1
        ++skipped;
        continue;
      }
      auto const ia = image(adaptive, t), ik = image(full, t);
      double s = 0;
      for (std::size_t p = 0; p < ia.size(); ++p)
        s += (ia[p] - ik[p]) * (ia[p] - ik[p]) / (sigma * sigma);
      worst_far = std::max(worst_far, std::sqrt(s));
    }
  MESSAGE("mask chosen at the truth, model moved to the typical set's radius: largest chi distance ", worst_far, " (",
          skipped, " of ", 2 * d, " points outside the profiles' domain)");
  CHECK(skipped <= 4);
  CHECK(worst_far <= 2 * tol);

  // 2. On noisy data (fit_lens's seed): the gradient difference adds
  // (J_a - J_k)^T Sigma^-1 n, zero-mean with E ||F^-1/2 .||^2 =
  // tr(F^-1 dJ^T dJ) =: s^2 (dJ = Sigma^-1/2 (J_a - J_k)): a fluctuation of
  // the sampled posterior around the unbiased one, not a bias.  Check the
  // Mahalanobis length against chi_distance + 5 s.
  Like<Mem> const full_n(obs, noisy, noise, mask);
  Like<Mem> adaptive_n(obs, noisy, noise, mask);
  adaptive_n.set_supersampling_mask(space, adaptive.supersampling_mask());
  auto const gfn = value_and_grad(full_n, space, truth), gan = value_and_grad(adaptive_n, space, truth);
  auto const Ja = jacobian(adaptive_n);
  double s2 = 0;
  for (int a = 0; a < d; ++a) {
    // column a of dJ^T dJ, then (F^-1 .)_a
    std::vector<double> col(static_cast<std::size_t>(d));
    for (int b = 0; b < d; ++b) {
      double s = 0;
      for (std::size_t p = 0; p < J[0].size(); ++p)
        s += (Ja[std::size_t(b)][p] - J[std::size_t(b)][p]) * (Ja[std::size_t(a)][p] - J[std::size_t(a)][p]);
      col[std::size_t(b)] = s;
    }
    s2 += spd_solve(F, col)[std::size_t(a)];
  }
  double z_noisy = 0;
  double const m_noisy = shift(gan, gfn, z_noisy);
  MESSAGE("noisy data: log L adaptive - full = ", gan.back() - gfn.back(), "; gradient difference: Mahalanobis ",
          m_noisy, ", largest |delta| / sd ", z_noisy, "; noise term rms s = ", std::sqrt(s2));
  CHECK(m_noisy <= 1.05 * choice.chi_distance + 5 * std::sqrt(s2) + 1e-6);

  // 3. Float with double accumulation against double (full k = 3 and the
  // same mask).  Error model: the float model image carries relative errors
  // of a few float ulp (eps = 6e-8) through ~10 operations per point, so
  // ||Sigma^-1/2 (M_f - M_d)|| <~ 1e-6 ||Sigma^-1/2 M||; by the projection
  // argument that bounds the float fit's bias in posterior sd units; the
  // chi^2 and gradient sums are in double, so the value differs by
  // |M_f - M_d| (d - M) / sigma^2 summed (<= chi2-norm product) plus one
  // rounding of -chi^2/2 to float (|log L| 2^-24).
  using ModelF = ModelT<float>;
  using PsfF = lensing::GaussianFilter<float, Mem>;
  lensing::Observation<float, Mem, PsfF> const obs_f(lensing::PixelGrid<float>::square(n, float(pixel), k),
                                                     PsfF(0.1f, float(pixel), n, n));
  lensing::View2D<float, Mem> data_f("data_f", n, n), noise_f("noise_f", n, n), mask_f("mask_f", n, n);
  {
    auto hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), noisy);
    auto hf = Kokkos::create_mirror_view(data_f);
    for (int iy = 0; iy < n; ++iy)
      for (int ix = 0; ix < n; ++ix)
        hf(iy, ix) = float(hd(iy, ix));
    Kokkos::deep_copy(data_f, hf);
    Kokkos::deep_copy(noise_f, float(sigma));
    Kokkos::deep_copy(mask_f, 1.0f);
  }
  using LikeF = lensing::GaussianLikelihood<ModelF, Mem, PsfF>;
  LikeF full_f(obs_f, data_f, noise_f, mask_f), adaptive_f(obs_f, data_f, noise_f, mask_f);
  adaptive_f.set_supersampling_mask(space, adaptive.supersampling_mask());
  std::vector<float> tf(truth.begin(), truth.end());
  auto const mf = ModelF::unpack(tf.data());
  lensing::View1D<float, Mem> grad_f("grad_f", ModelF::num_params);
  auto run_f = [&](LikeF const& like) {
    float const v = like.value_and_gradient(space, mf, grad_f);
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad_f);
    std::vector<double> out(h.data(), h.data() + ModelF::num_params);
    out.push_back(double(v));
    return out;
  };
  // The double reference at the float-rounded parameters (the float model's
  // own truth), so the comparison measures the arithmetic only.
  std::vector<double> const tr(tf.begin(), tf.end());
  auto const gfd = value_and_grad(full_n, space, tr), gad = value_and_grad(adaptive_n, space, tr);
  double norm_m = 0;  // ||Sigma^-1/2 M||
  for (double v : image(full_n, tr))
    norm_m += (v / sigma) * (v / sigma);
  norm_m = std::sqrt(norm_m);
  for (int mode = 0; mode < 2; ++mode) {
    auto const gflt = run_f(mode == 0 ? full_f : adaptive_f);
    auto const& gdbl = mode == 0 ? gfd : gad;
    double z_f = 0;
    double const m_f = shift(gflt, gdbl, z_f);
    double const dv = std::fabs(gflt.back() - gdbl.back());
    MESSAGE(std::string(mode == 0 ? "float full k = 3" : "float adaptive"),
            ": log L float - double = ", gflt.back() - gdbl.back(), " (log L ", gdbl.back(),
            "); gradient difference: Mahalanobis ", m_f, ", largest |delta| / sd ", z_f,
            "; model-error bound 1e-6 ||M / sigma|| = ", 1e-6 * norm_m);
    CHECK(m_f <= 1e-6 * norm_m + 1e-3);
    CHECK(dv <= 1e-6 * norm_m * std::sqrt(2 * std::fabs(gdbl.back())) + std::ldexp(std::fabs(gdbl.back()), -23));
  }
}

#if defined(KOKKOS_ENABLE_SERIAL) && defined(KOKKOS_ENABLE_OPENMP)
TEST_CASE("adaptive likelihood does not depend on the thread count") {
  // As the full likelihood's test in test_likelihood.cpp: OpenMP at
  // OMP_NUM_THREADS threads against OpenMP on a 1-thread pool, bitwise (the
  // rows of points and their sums are fixed); Serial against OpenMP within
  // rounding (separate instantiations may vectorise differently).
  auto run = [](auto space) {
    using Space = decltype(space);
    using Mem = typename Space::memory_space;
    using Psf = lensing::GaussianFilter<double, Mem>;
    lensing::Observation<double, Mem, Psf> const obs(lensing::PixelGrid<double>(30, 26, 0.1, 3), Psf(0.2, 0.1, 26, 30));
    Case<Space> const c(obs);
    Like<Mem> like(obs, c.data, c.noise, c.mask);
    auto const t = theta0();
    // A varying noise map and a masked hole: the pre-PSF criterion alone
    // does not bound the distance after the PSF there (it did not: 0.10 for
    // a bound of 0.014); the measured distance must still be <= tolerance.
    auto const ch = like.choose_supersampling_mask(space, Model::unpack(t.data()), 0.05);
    CHECK(ch.chi_distance <= 0.05);
    CHECK(ch.flagged < 30 * 26);
    return value_and_grad(like, space, t);
  };
  auto const a = run(Kokkos::Serial());
  auto const b = run(Kokkos::OpenMP());
  std::vector<double> c;
  int inner = 0;
  int const levels = omp_get_max_active_levels();
  omp_set_max_active_levels(2);
  Kokkos::OpenMP::partition_master(
      [&](int, int) {
        inner = Kokkos::OpenMP::impl_thread_pool_size();
        c = run(Kokkos::OpenMP());
      },
      1, 1);
  omp_set_max_active_levels(levels);
  CHECK(inner == 1);
  MESSAGE("adaptive, OpenMP at ", Kokkos::OpenMP::impl_thread_pool_size(), " threads vs 1 thread: bitwise ",
          std::string(b == c ? "equal" : "DIFFERENT"));
  CHECK(b == c);
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(a[i] - b[i]) / std::max(1.0, std::fabs(a[i])));
  MESSAGE("adaptive, Serial vs OpenMP: max relative difference ", worst);
  CHECK(worst <= 1e-12);
}
#endif
