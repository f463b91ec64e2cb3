// How to: render a lensed image through an Observation, write and read it
// back, build the Gaussian likelihood, and fit the lens from a perturbed start.
//
//   howto_render_fit      (no arguments; writes howto_data.npy; exits 1 if a check fails)
//
// Model: SIE + external shear lensing an elliptical Sersic source, no lens
// light.  Observation: 48^2 pixels of 0.08", 2x2 sub-pixels, Gaussian PSF
// (FWHM 0.15"), Poisson + background noise.  The five SIE parameters are
// fitted with L-BFGS (everything else at its true value).  Checks: the npy
// round trip is exact, chi^2 per pixel at the truth is 1 within 5 sigma of
// its sampling spread, the likelihood's gradient matches central
// differences, and the fit converges to theta_E within 5 sigma of the truth
// (sigma from the inverse Hessian at the optimum, by differences of the gradient).
#include <lensing/core/gradient_check.hpp>
#include <lensing/io/npy.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/optim/lbfgs.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/sources/sersic.hpp>

#include <Eigen/Dense>
#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

namespace {
using Space = Kokkos::DefaultHostExecutionSpace;
using Mem = Kokkos::HostSpace;
using Lens = lensing::Composite<lensing::SIE<double>, lensing::ExternalShear<double>>;
using Model = lensing::LensModel<Lens, lensing::SersicEllipse<double>, lensing::NoLight<double>>;
using Psf = lensing::GaussianFilter<double, Mem>;
using Like = lensing::GaussianLikelihood<Model, Mem, Psf>;
using V1 = lensing::View1D<double, Mem>;

// Flat parameters in pack order: SIE (theta_E, e1, e2, center_x, center_y),
// shear (gamma1, gamma2, ra_0, dec_0), source (amp, R_sersic, n_sersic, e1, e2, center_x, center_y).
std::vector<double> const truth = {1.1, 0.08, -0.04, 0.02, -0.01, 0.03,  -0.02, 0.0,
                                   0.0, 30.0, 0.2,   1.5,  0.1,   -0.05, 0.05,  0.02};

// log L as a function of the SIE parameters: a LogDensity on the likelihood.
struct SieFit {
  using scalar_type = double;
  using memory_space = Mem;
  static constexpr bool launches_kernels = Like::launches_kernels;
  Like like;
  V1 grad{"grad", Model::num_params};  // d log L / d (all parameters)
  int dimension() const { return 5; }
  SieFit clone() const { return {like.clone()}; }  // own work buffers per optimizer run / chain
  template <class S>
  double value_and_gradient(S const& space, V1 const& q, V1 const& g) const {
    std::vector<double> t = truth;
    for (int k = 0; k < 5; ++k)
      t[std::size_t(k)] = q(k);
    if (!(t[0] > 0 && t[1] * t[1] + t[2] * t[2] < 1)) return -HUGE_VAL;  // outside the SIE's domain
    double const logl = like.value_and_gradient(space, Model::unpack(t.data()), grad);
    for (int k = 0; k < 5; ++k)
      g(k) = grad(k);
    return logl;
  }
};
}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard guard(argc, argv);
  Space const space;
  bool ok = true;
  // Render: lens, source and PSF through the supersampled grid.
  int const n = 48;
  auto const grid = lensing::PixelGrid<double>(n, n, 0.08, /*supersampling=*/2);
  lensing::Observation<double, Mem, Psf> const obs(grid, Psf(/*fwhm=*/0.15, grid.pixel_scale(), n, n));
  lensing::View2D<double, Mem> image("image", n, n), data("data", n, n), sigma("sigma", n, n), mask("mask", n, n);
  obs.render(space, Model::unpack(truth.data()), image);
  // Noise: Poisson for 500 s of exposure plus a 0.05 e-/s sky; sigma is its noise map.
  lensing::ObservationNoise<double> noise;
  noise.exposure_time = 500;
  noise.background_rms = 0.05;
  lensing::observation_noise_map(space, noise, image, sigma);
  Kokkos::deep_copy(space, data, image);
  lensing::add_observation_noise(space, noise, data, /*seed=*/7);
  Kokkos::deep_copy(space, mask, 1.0);
  space.fence();

  // File I/O: an image to .npy and back (bit-exact).
  lensing::io::write_npy("howto_data.npy", data);
  lensing::View2D<double, Mem> back("back", n, n);
  lensing::io::read_npy("howto_data.npy", back);
  for (int iy = 0; iy < n; ++iy)
    for (int ix = 0; ix < n; ++ix)
      ok = ok && back(iy, ix) == data(iy, ix);

  // Likelihood: value and gradient at the truth (chi^2 = -2 log L ~ N +- sqrt(2N)).
  SieFit const fit{Like(obs, data, sigma, mask)};
  V1 grad("grad", Model::num_params);
  double const logl = fit.like.value_and_gradient(space, Model::unpack(truth.data()), grad);
  double const chi2 = -2 * logl, npix = double(n) * n;
  std::printf("at the truth: log L = %.2f, chi^2 / pixel = %.3f, d log L / d theta_E = %.2f\n", logl, chi2 / npix,
              grad(0));
  ok = ok && std::fabs(chi2 - npix) < 5 * std::sqrt(2 * npix);

  // Fit from a perturbed start; first check the density's gradient there.
  std::vector<double> const start = {1.2, 0.03, 0.0, 0.06, 0.03};
  auto const gc = lensing::check_log_density_gradient(space, fit, start);
  std::printf("gradient check at the start: max error %.1e (|log L| = %.0f)\n", gc.max_error, std::fabs(gc.value));
  ok = ok && gc.passed(1e-4);  // rounding ~ eps |log L| / h ~ 1e-6 here, truncation smaller
  lensing::OptimizeOptions opt;
  // Curvature ~1/sd^2 ~ 2e6: |grad| <= 1e-3 puts x within ~1e-9 of the optimum; much
  // tighter would chase the rounding of log L (~1e3 here).
  opt.gradient_tolerance = 1e-3;
  auto const r = lensing::lbfgs(space, fit, start, opt);
  // Uncertainty: Hessian of -log L at the optimum by central differences of the gradient.
  Eigen::Matrix<double, 5, 5> h;
  for (int j = 0; j < 5; ++j) {
    double const step = 1e-5;
    std::vector<double> qp = r.x, qm = r.x;
    qp[std::size_t(j)] += step;
    qm[std::size_t(j)] -= step;
    V1 gp("gp", 5), gm("gm", 5), q1("q", 5);
    for (int k = 0; k < 5; ++k)
      q1(k) = qp[std::size_t(k)];
    fit.value_and_gradient(space, q1, gp);
    for (int k = 0; k < 5; ++k)
      q1(k) = qm[std::size_t(k)];
    fit.value_and_gradient(space, q1, gm);
    for (int i = 0; i < 5; ++i)
      h(i, j) = -(gp(i) - gm(i)) / (2 * step);
  }
  h = 0.5 * (h + h.transpose()).eval();
  double const sd = std::sqrt(h.inverse()(0, 0));
  std::printf("L-BFGS: %d iterations, %s; theta_E = %.5f +- %.5f (truth %.2f, start %.2f)\n", r.iterations,
              r.message.c_str(), r.x[0], sd, truth[0], start[0]);
  ok = ok && r.converged && std::isfinite(sd) && std::fabs(r.x[0] - truth[0]) < 5 * sd;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
