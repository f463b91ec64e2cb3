// Pixelated source inversion: the lensing operator against the forward model,
// noise-free recovery, the evidence against its dense Gaussian form, the
// evidence-maximising lambda against the lambda the data were drawn with,
// linear amplitudes, bad input.

#include <lensing/inversion/evidence_density.hpp>
#include <lensing/inversion/lensing_operator.hpp>
#include <lensing/inversion/linear_amplitudes.hpp>
#include <lensing/inversion/regularisation.hpp>
#include <lensing/inversion/source_inversion.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/convolution.hpp>
#include <lensing/psf/kernels.hpp>
#include <lensing/sources/pixelated.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include <Eigen/Dense>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

template <class Scalar>
using Lens = lensing::Composite<lensing::SIE<Scalar>, lensing::ExternalShear<Scalar>>;

template <class Scalar>
Lens<Scalar> make_lens(double theta_e = 1.0) {
  Scalar const t[9] = {Scalar(theta_e), Scalar(0.08),  Scalar(-0.05), Scalar(0.02), Scalar(-0.03),  // SIE
                       Scalar(0.03),    Scalar(-0.02), Scalar(0),     Scalar(0)};                   // shear
  return Lens<Scalar>::unpack(t);
}

// An asymmetric, odd-sized kernel (a flipped kernel, i.e. correlation instead
// of convolution, does not match).
template <class Scalar>
lensing::PsfKernel<Scalar> asymmetric_kernel(int size) {
  std::vector<Scalar> v(std::size_t(size) * size);
  int const r = size / 2;
  for (int a = 0; a < size; ++a)
    for (int b = 0; b < size; ++b) {
      double const x = b - r + 0.4, y = a - r - 0.3;
      v[std::size_t(a) * size + b] = Scalar(std::exp(-0.5 * (x * x / 1.2 + y * y / 0.7)) + 0.02 * (a + 2 * b));
    }
  return lensing::pixel_kernel(v, size);
}

template <class V>
void fill_mask_annulus(V const& h, lensing::PixelGrid<double> const& grid, double r0, double r1) {
  for (int iy = 0; iy < grid.ny(); ++iy)
    for (int ix = 0; ix < grid.nx(); ++ix) {
      double const r = std::hypot(grid.x(ix), grid.y(iy));
      h(iy, ix) = (r >= r0 && r <= r1) ? 1.0 : 0.0;
    }
}

// The setting of the recovery and evidence tests: a 30 x 30 image (0.1",
// supersampling 3) of a 20 x 20 source grid of 0.05" (+-0.5"), an SIE + shear
// lens with theta_E = 1": the rays of 0.033" sub-pixels sample every source
// pixel densely (radial magnification ~1), so F = L^T C^-1 L is nonsingular.
struct Setting {
  lensing::PixelGrid<double> image = lensing::PixelGrid<double>(30, 30, 0.1, 3);
  lensing::PixelGrid<double> source = lensing::PixelGrid<double>(20, 20, 0.05, 1, 0.01, -0.02);
};

template <class Space>
lensing::SourceInversion<double> make_inversion(Setting const& s, Eigen::VectorXd const& image_values,
                                                Eigen::VectorXd const& sigma_values, lensing::Regularisation form,
                                                lensing::PsfKernel<double> const& psf) {
  int const ny = s.image.ny(), nx = s.image.nx();
  Kokkos::View<double**, Kokkos::LayoutRight, Kokkos::HostSpace> d("d", ny, nx), n("n", ny, nx), m("m", ny, nx);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      d(iy, ix) = image_values[iy * nx + ix];
      n(iy, ix) = sigma_values[iy * nx + ix];
      m(iy, ix) = 1.0;
    }
  return lensing::SourceInversion<double>(s.image, s.source, d, n, m, form, psf);
}

Eigen::VectorXd sigma_map(lensing::PixelGrid<double> const& g, double base) {
  Eigen::VectorXd s(g.num_pixels());
  for (int iy = 0; iy < g.ny(); ++iy)
    for (int ix = 0; ix < g.nx(); ++ix)
      s[iy * g.nx() + ix] = base * (1.0 + 0.3 * std::sin(0.37 * ix + 0.71 * iy));
  return s;
}

// Dense symmetric eigenvalues of a sparse matrix.
Eigen::VectorXd eigenvalues(Eigen::SparseMatrix<double> const& m) {
  Eigen::MatrixXd const d(m);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(d, Eigen::EigenvaluesOnly);
  return es.eigenvalues();
}

}  // namespace

//----------------------------------------------------------------------------

// L s equals Observation::render of the PixelatedSource s (an independent
// path: kernels, PSF operator and sub-pixel binning of the forward model),
// for bilinear and bicubic interpolation, no PSF, a binned PSF and a
// supersampled PSF (asymmetric kernels), on the mask pixels.
// Error model: the same products summed in a different order, so the
// difference is rounding, <= ~(number of terms ~ k^2 taps (2R+1)^2 ~ 10^3)
// eps |values|: 1e-12 of the peak in double; in float the forward model sums in
// float (~1e-6 of the peak), 2e-5.
LENSING_TEST_CASE_TEMPLATE("lensing_operator matches the forward model of a PixelatedSource", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using Scalar = typename Config::scalar;
  Space space;
  lensing::PixelGrid<Scalar> const grid(30, 30, Scalar(0.08), 2);
  lensing::PixelGrid<Scalar> const sgrid(20, 20, Scalar(0.04), 1, Scalar(0.02), Scalar(-0.01));
  int const ny = grid.ny(), nx = grid.nx();
  auto const lens = make_lens<Scalar>(0.9);
  // Source: a smooth blob plus a pixel pattern.
  lensing::View2D<Scalar, Mem> values("values", sgrid.ny(), sgrid.nx());
  auto hv = Kokkos::create_mirror_view(values);
  Eigen::VectorXd s(sgrid.num_pixels());
  for (int iy = 0; iy < sgrid.ny(); ++iy)
    for (int ix = 0; ix < sgrid.nx(); ++ix) {
      double const x = double(sgrid.x(ix)), y = double(sgrid.y(iy));
      double const v = std::exp(-(x * x + 2 * y * y) / 0.05) + 0.2 * std::sin(1.7 * ix + 0.9 * iy * iy);
      hv(iy, ix) = Scalar(v);
      s[iy * sgrid.nx() + ix] = double(Scalar(v));
    }
  Kokkos::deep_copy(values, hv);
  lensing::View2D<Scalar, Mem> mask("mask", ny, nx), image("image", ny, nx);
  auto hm = Kokkos::create_mirror_view(mask);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      double const r = std::hypot(double(grid.x(ix)), double(grid.y(iy)));
      hm(iy, ix) = Scalar(r > 0.3 && r < 1.3 ? 1 : 0);
    }
  Kokkos::deep_copy(mask, hm);
  double const tol = std::is_same<Scalar, float>::value ? 2e-5 : 1e-12;

  for (auto interp : {lensing::Interpolation::bilinear, lensing::Interpolation::bicubic}) {
    using Model = lensing::LensModel<Lens<Scalar>, lensing::PixelatedSource<Scalar>, lensing::NoLight<Scalar>>;
    Model const model{lens, lensing::make_pixelated_source(values, sgrid, interp), {}};
    auto compare = [&](lensing::LensingOperator<Scalar> const& op, char const* what) {
      space.fence();
      auto const hi = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), image);
      Eigen::VectorXd const ls = op.matrix * s;
      long npix = 0;
      double err = 0, peak = 0;
      for (int iy = 0; iy < ny; ++iy)
        for (int ix = 0; ix < nx; ++ix) {
          peak = std::max(peak, std::fabs(double(hi(iy, ix))));
          if (hm(iy, ix) == Scalar(0)) continue;
          REQUIRE(op.pixels[std::size_t(npix)] == long(iy) * nx + ix);
          err = std::max(err, std::fabs(ls[npix] - double(hi(iy, ix))));
          ++npix;
        }
      INFO(what << " interpolation " << int(interp) << ": max |L s - render| = " << err << ", peak " << peak);
      CHECK(npix == op.rows());
      CHECK(op.cols() == sgrid.num_pixels());
      CHECK(peak > 1e-3);  // A_pix = 0.0064 times source values ~1
      CHECK(err <= tol * peak);
    };
    {  // no PSF
      lensing::Observation<Scalar, Mem, lensing::NoPsf<Scalar>> const obs(grid, {});
      obs.render(space, model, image);
      lensing::LensingOperatorOptions opt;
      opt.interpolation = interp;
      compare(lensing::lensing_operator(space, lens, grid, sgrid, mask, lensing::PsfKernel<Scalar>{}, opt), "no PSF");
    }
    {  // binned PSF
      auto const k = asymmetric_kernel<Scalar>(5);
      lensing::Observation<Scalar, Mem, lensing::DirectConvolution<Scalar, Mem>> const obs(
          grid, lensing::DirectConvolution<Scalar, Mem>(k, ny, nx));
      obs.render(space, model, image);
      lensing::LensingOperatorOptions opt;
      opt.interpolation = interp;
      compare(lensing::lensing_operator(space, lens, grid, sgrid, mask, k, opt), "binned PSF");
    }
    {  // supersampled PSF
      auto const k = asymmetric_kernel<Scalar>(7);
      lensing::Observation<Scalar, Mem, lensing::DirectConvolution<Scalar, Mem>> const obs(
          grid, lensing::DirectConvolution<Scalar, Mem>(k, grid.fine_ny(), grid.fine_nx()),
          lensing::PsfSampling::supersampled);
      obs.render(space, model, image);
      lensing::LensingOperatorOptions opt;
      opt.interpolation = interp;
      opt.psf_sampling = lensing::PsfSampling::supersampled;
      compare(lensing::lensing_operator(space, lens, grid, sgrid, mask, k, opt), "supersampled PSF");
    }
  }
}

//----------------------------------------------------------------------------

// Noise-free data d = L s0 of a source on the grid: S(lambda) - s0 =
// -lambda A^-1 R s0 exactly (A = F + lambda R), so with lambda -> 0
//   |S - s0| <= lambda |R s0| / mu_min(F)  (bias)  +  rounding,
// rounding ~ eps cond(F) |s0| (the LDL^T solve), allowed 100x that.  And at
// a finite lambda, S - s0 equals the dense -lambda A^-1 R s0 (to rounding).
// For every regularisation form, with a binned Gaussian-like PSF.
LENSING_TEST_CASE_TEMPLATE("noise-free source recovery as lambda -> 0", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  Space space;
  Setting const st;
  auto const lens = make_lens<double>();
  auto const psf = asymmetric_kernel<double>(3);
  long const ns = st.source.num_pixels();
  Eigen::VectorXd s0(ns);
  for (int iy = 0; iy < st.source.ny(); ++iy)
    for (int ix = 0; ix < st.source.nx(); ++ix) {
      double const x = st.source.x(ix), y = st.source.y(iy);
      s0[iy * st.source.nx() + ix] = std::exp(-(x * x + y * y) / 0.04) + 0.3 * std::cos(2.1 * ix - 1.3 * iy);
    }
  // The operator for the full image (mask everywhere), then data on every pixel.
  Kokkos::View<double**, Kokkos::HostSpace> all("all", st.image.ny(), st.image.nx());
  Kokkos::deep_copy(all, 1.0);
  auto const op = lensing::lensing_operator(space, lens, st.image, st.source, all, psf);
  REQUIRE(op.rows() == st.image.num_pixels());
  Eigen::VectorXd const d = op.matrix * s0;
  Eigen::VectorXd const sigma = sigma_map(st.image, 0.01);
  for (auto form :
       {lensing::Regularisation::zeroth, lensing::Regularisation::gradient, lensing::Regularisation::curvature}) {
    auto const inv = make_inversion<Space>(st, d, sigma, form, psf);
    auto solver = inv.solver(inv.lensing_operator(space, lens));
    Eigen::VectorXd const mu = eigenvalues(solver.f());
    double const mu_min = mu.minCoeff(), mu_max = mu.maxCoeff();
    INFO("form " << int(form) << ": F eigenvalues in [" << mu_min << ", " << mu_max << "]");
    REQUIRE(mu_min > 1e-8 * mu_max);  // the source is determined by the data
    double const lambda = 1e-9 * mu_min;
    auto const res = solver.solve(lambda);
    Eigen::VectorXd const rs0 = inv.regularisation() * s0;
    double const bias = lambda * rs0.norm() / mu_min;
    double const rounding = 100 * 2.2e-16 * (mu_max / mu_min) * s0.norm();
    double const err = (res.source - s0).norm();
    INFO("|S - s0| = " << err << ", bias bound " << bias << ", rounding allowance " << rounding);
    CHECK(err <= bias + rounding);
    CHECK(res.chi2 <= 1e-12 * d.squaredNorm() / (0.01 * 0.01));
    // A finite lambda: the bias is exactly -lambda A^-1 R s0.
    double const lam1 = 0.1 * mu_min;
    auto const r1 = solver.solve(lam1);
    Eigen::MatrixXd const a = Eigen::MatrixXd(solver.f()) + lam1 * Eigen::MatrixXd(inv.regularisation());
    Eigen::VectorXd const expected = -lam1 * a.ldlt().solve(rs0);
    double const e1 = (r1.source - s0 - expected).norm();
    INFO("|S - s0 + lambda A^-1 R s0| = " << e1 << " of |lambda A^-1 R s0| = " << expected.norm());
    CHECK(expected.norm() > 1e-6 * s0.norm());
    CHECK(e1 <= 1e-9 * s0.norm());
  }
}

//----------------------------------------------------------------------------

// The regularisation matrices are the quadratic forms they document:
// s^T R s = sum over pixels of the squared first (gradient) or second
// (curvature) differences along x and y, pixels beyond the border 0, for a
// random s on a 7 x 5 grid (exact up to rounding, 1e-12); R is symmetric and
// positive definite (smallest eigenvalue > 0), so log det R is finite.
TEST_CASE("regularisation matrices are the documented quadratic forms") {
  lensing::PixelGrid<double> const g(7, 5, 0.1);
  int const nx = 7, ny = 5;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  Eigen::VectorXd s(nx * ny);
  for (long j = 0; j < s.size(); ++j)
    s[j] = normal(rng);
  auto at = [&](int iy, int ix) { return iy >= 0 && iy < ny && ix >= 0 && ix < nx ? s[iy * nx + ix] : 0.0; };
  double grad = 0, curv = 0;
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      grad += std::pow(at(iy, ix + 1) - at(iy, ix), 2) + std::pow(at(iy + 1, ix) - at(iy, ix), 2);
      curv += std::pow(at(iy, ix - 1) - 2 * at(iy, ix) + at(iy, ix + 1), 2) +
              std::pow(at(iy - 1, ix) - 2 * at(iy, ix) + at(iy + 1, ix), 2);
    }
  double const want[3] = {s.squaredNorm(), grad, curv};
  int f = 0;
  for (auto form :
       {lensing::Regularisation::zeroth, lensing::Regularisation::gradient, lensing::Regularisation::curvature}) {
    auto const r = lensing::regularisation_matrix(g, form);
    Eigen::MatrixXd const rd(r);
    CHECK((rd - rd.transpose()).norm() == 0.0);
    CHECK(s.dot(r * s) == doctest::Approx(want[f]).epsilon(1e-12));
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(rd, Eigen::EigenvaluesOnly);
    CHECK(es.eigenvalues().minCoeff() > 1e-3);
    // The ridge adds ridge * I.
    auto const rr = lensing::regularisation_matrix(g, form, 0.5);
    CHECK((Eigen::MatrixXd(rr) - rd - 0.5 * Eigen::MatrixXd::Identity(nx * ny, nx * ny)).norm() <= 1e-15);
    ++f;
  }
}

//----------------------------------------------------------------------------

// The evidence of LinearInversion is log N(d; 0, C + L (lambda R)^-1 L^T)
// exactly (Gaussian prior, Gaussian noise): computed densely on a tiny case
// for every regularisation form, three lambdas, sparse and dense factorisations.  Error model: both sides
// sum ~10^2 logs and quadratic forms of O(10^2) magnitude with condition
// numbers <= ~10^4: agreement to ~1e-11 relative; allowed 1e-9 (|log eps| + N_d).
LENSING_TEST_CASE_TEMPLATE("evidence equals the dense Gaussian marginal", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  Space space;
  lensing::PixelGrid<double> const grid(10, 10, 0.2, 2), sgrid(6, 6, 0.15);
  auto const lens = make_lens<double>();
  Kokkos::View<double**, Kokkos::HostSpace> mask("mask", 10, 10);
  for (int iy = 0; iy < 10; ++iy)
    for (int ix = 0; ix < 10; ++ix)
      mask(iy, ix) = (ix + iy) % 7 == 3 ? 0.0 : 1.0;  // a few holes
  auto const op = lensing::lensing_operator(space, lens, grid, sgrid, mask, asymmetric_kernel<double>(3));
  long const nd = op.rows(), ns = op.cols();
  Eigen::VectorXd d(nd), sigma(nd);
  for (long p = 0; p < nd; ++p) {
    d[p] = 0.3 * std::sin(0.9 * p) + 0.1;
    sigma[p] = 0.05 + 0.02 * std::cos(1.3 * p);
  }
  for (auto form :
       {lensing::Regularisation::zeroth, lensing::Regularisation::gradient, lensing::Regularisation::curvature}) {
    auto const r = lensing::regularisation_matrix(sgrid, form);
    Eigen::MatrixXd const l(op.matrix), rd(r);
    for (auto fac : {lensing::Factorisation::sparse, lensing::Factorisation::dense})
      for (double rel : {0.01, 1.0, 100.0}) {
        lensing::LinearInversion inv(op.matrix, d, sigma, r, std::nan(""), fac);
        CHECK(inv.dense() == (fac == lensing::Factorisation::dense));
        double const lambda = rel * inv.reference_lambda();
        Eigen::MatrixXd cov = l * (lambda * rd).inverse() * l.transpose();
        for (long p = 0; p < nd; ++p)
          cov(p, p) += sigma[p] * sigma[p];
        Eigen::LLT<Eigen::MatrixXd> llt(cov);
        REQUIRE(llt.info() == Eigen::Success);
        double logdet = 0;
        for (long p = 0; p < nd; ++p)
          logdet += 2 * std::log(llt.matrixL()(p, p));
        double const dense = -0.5 * d.dot(llt.solve(d)) - 0.5 * logdet - 0.5 * nd * std::log(2 * std::acos(-1.0));
        double const ev = inv.log_evidence(lambda);
        INFO("form " << int(form) << (inv.dense() ? " dense" : " sparse") << " lambda " << lambda << ": evidence " << ev
                     << ", dense " << dense);
        CHECK(std::fabs(ev - dense) <= 1e-9 * (std::fabs(dense) + nd));
      }
    CHECK(ns == sgrid.num_pixels());
  }
}

//----------------------------------------------------------------------------

// Data from the prior: S ~ N(0, (lambda0 R)^-1) with R = I, d = L S + noise.
// The evidence-maximising lambda-hat is consistent with lambda0: the Fisher
// information of u = ln lambda in the marginal N(d; 0, C + L L^T / lambda) is
//   I(u) = 1/2 sum_i (f_i / (f_i + lambda0))^2,  f_i the eigenvalues of F,
// so sd(u-hat) ~ I^-1/2 (~0.07 here).  Per seed |u-hat - u0| <= 4 I^-1/2
// (a false alarm per seed ~6e-5); the library's curvature width
// log_lambda_sigma is the observed-information version of the same number:
// within 25% of I^-1/2.  Also: the evidence falls on both sides of lambda-hat.
LENSING_TEST_CASE_TEMPLATE("evidence-maximising lambda is consistent with the prior's lambda", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  Space space;
  Setting const st;
  auto const lens = make_lens<double>();
  auto const psf = asymmetric_kernel<double>(3);
  Kokkos::View<double**, Kokkos::HostSpace> all("all", st.image.ny(), st.image.nx());
  Kokkos::deep_copy(all, 1.0);
  auto const op = lensing::lensing_operator(space, lens, st.image, st.source, all, psf);
  Eigen::VectorXd const sigma = sigma_map(st.image, 0.02);
  long const ns = op.cols(), nd = op.rows();
  // F's eigenvalues (for the Fisher information).
  Eigen::SparseMatrix<double> const f =
      Eigen::SparseMatrix<double>(op.matrix.transpose()) * sigma.cwiseInverse().cwiseAbs2().asDiagonal() * op.matrix;
  Eigen::VectorXd const mu = eigenvalues(f);
  double const lambda0 = 0.05 * f.diagonal().sum() / double(ns);
  double fisher = 0;
  for (long i = 0; i < ns; ++i)
    fisher += 0.5 * std::pow(mu[i] / (mu[i] + lambda0), 2);
  double const sd = 1 / std::sqrt(fisher);
  for (unsigned seed : {1u, 2u, 3u, 4u}) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    Eigen::VectorXd s(ns), d(nd);
    for (long j = 0; j < ns; ++j)
      s[j] = normal(rng) / std::sqrt(lambda0);
    d = op.matrix * s;
    for (long p = 0; p < nd; ++p)
      d[p] += sigma[p] * normal(rng);
    auto const inv = make_inversion<Space>(st, d, sigma, lensing::Regularisation::zeroth, psf);
    auto const best = inv.maximise_evidence(space, lens);
    double const z = (std::log(best.lambda) - std::log(lambda0)) / sd;
    INFO("seed " << seed << ": lambda-hat / lambda0 = " << best.lambda / lambda0 << ", z = " << z << ", sd(ln lambda) "
                 << sd << ", curvature sigma " << best.log_lambda_sigma << ", " << best.evaluations << " evaluations");
    CHECK(!best.at_bound);
    CHECK(std::fabs(z) <= 4.0);
    CHECK(std::fabs(best.log_lambda_sigma / sd - 1) <= 0.25);
    auto solver = inv.solver(inv.lensing_operator(space, lens));
    CHECK(solver.log_evidence(best.lambda * 1.5) < best.log_evidence);
    CHECK(solver.log_evidence(best.lambda / 1.5) < best.log_evidence);
    CHECK(lensing::log_evidence(space, lens, inv) == doctest::Approx(best.log_evidence).epsilon(1e-12));
  }
}

//----------------------------------------------------------------------------

// The evidence as a density of the lens parameters: for data from a lens with
// theta_E = 1 and a source with a gradient prior, the lambda-maximised
// evidence is higher at the true theta_E than 0.03" away on either side
// (a shift of 0.6 source pixels moves the ring image by 0.3 pixels: the
// log evidence drops by >> 1 at S/N ~ 50 per pixel), and the finite-difference
// gradient in theta_E points towards the truth from both sides.
LENSING_TEST_CASE_TEMPLATE("log_evidence peaks at the true lens", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  Space space;
  Setting const st;
  auto const psf = asymmetric_kernel<double>(3);
  Kokkos::View<double**, Kokkos::HostSpace> all("all", st.image.ny(), st.image.nx());
  Kokkos::deep_copy(all, 1.0);
  auto const truth = make_lens<double>(1.0);
  auto const op = lensing::lensing_operator(space, truth, st.image, st.source, all, psf);
  Eigen::VectorXd s(op.cols());
  for (int iy = 0; iy < st.source.ny(); ++iy)
    for (int ix = 0; ix < st.source.nx(); ++ix) {
      double const x = st.source.x(ix) - 0.05, y = st.source.y(iy) + 0.03;
      s[iy * st.source.nx() + ix] = std::exp(-(x * x + 2 * y * y) / 0.03);
    }
  Eigen::VectorXd const sigma = sigma_map(st.image, 0.002);
  Eigen::VectorXd d = op.matrix * s;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  for (long p = 0; p < d.size(); ++p)
    d[p] += sigma[p] * normal(rng);
  auto const inv = make_inversion<Space>(st, d, sigma, lensing::Regularisation::gradient, psf);
  double const e0 = lensing::log_evidence(space, truth, inv);
  double const em = lensing::log_evidence(space, make_lens<double>(0.97), inv);
  double const ep = lensing::log_evidence(space, make_lens<double>(1.03), inv);
  INFO("log evidence at theta_E = 0.97, 1, 1.03: " << em << ", " << e0 << ", " << ep);
  CHECK(e0 > em + 10);
  CHECK(e0 > ep + 10);
  double const lambda = inv.maximise_evidence(space, truth).lambda;
  auto const gm = lensing::log_evidence_gradient_fd(space, make_lens<double>(0.98), inv, lambda, 2e-3);
  auto const gp = lensing::log_evidence_gradient_fd(space, make_lens<double>(1.02), inv, lambda, 2e-3);
  REQUIRE(gm.size() == 9);
  INFO("d log eps / d theta_E at 0.98: " << gm[0] << ", at 1.02: " << gp[0]);
  CHECK(gm[0] > 0);
  CHECK(gp[0] < 0);
  // The same numbers through EvidenceDensity (a LogDensity of the 9 lens
  // parameters): at fixed lambda, and with lambda maximised per evaluation.
  using Density = lensing::EvidenceDensity<Lens<double>>;
  static_assert(lensing::check_log_density<Density, Space>(), "EvidenceDensity models LogDensity");
  Density const fixed(inv, lambda, 2e-3), best(inv);
  CHECK(fixed.dimension() == 9);
  lensing::View1D<double, Kokkos::HostSpace> q("q", 9), g("g", 9);
  make_lens<double>(0.98).pack(q.data());
  double const v = fixed.clone().value_and_gradient(space, q, g);
  CHECK(v == doctest::Approx(lensing::log_evidence(space, make_lens<double>(0.98), inv, lambda)).epsilon(1e-12));
  for (int k = 0; k < 9; ++k)
    CHECK(g(k) == doctest::Approx(gm[std::size_t(k)]).epsilon(1e-10));
  truth.pack(q.data());
  CHECK(best.value(space, q) == doctest::Approx(e0).epsilon(1e-12));
  q(0) = -1;  // theta_E outside its domain: -inf, not an exception
  CHECK(fixed.value_and_gradient(space, q, g) == -std::numeric_limits<double>::infinity());
  CHECK(std::isnan(g(0)));
}

//----------------------------------------------------------------------------

// A float lens: the rays and weights in float, the inversion in double.  The
// evidence of the same data moves by the float rounding of the rays (~1e-7"
// on 0.15" source pixels: ~1e-6 relative weights), far inside 1e-4 relative;
// lambda-hat by << its width (~0.3 here); the gradient runs in float steps.
LENSING_TEST_CASE_TEMPLATE("a float lens gives the double evidence to float rounding", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  Space space;
  lensing::PixelGrid<double> const grid(12, 12, 0.2, 2), sgrid(6, 6, 0.15);
  lensing::PixelGrid<float> const gridf(12, 12, 0.2f, 2), sgridf(6, 6, 0.15f);
  Kokkos::View<double**, Kokkos::HostSpace> data("d", 12, 12), noise("n", 12, 12), mask("m", 12, 12);
  Kokkos::View<float**, Kokkos::HostSpace> dataf("d", 12, 12), noisef("n", 12, 12), maskf("m", 12, 12);
  for (int iy = 0; iy < 12; ++iy)
    for (int ix = 0; ix < 12; ++ix) {
      data(iy, ix) = dataf(iy, ix) =
          float(0.05 * std::exp(-0.1 * ((ix - 6) * (ix - 6) + (iy - 5) * (iy - 5))) + 0.003 * std::sin(3.3 * ix * iy));
      noise(iy, ix) = noisef(iy, ix) = 0.004f;
      mask(iy, ix) = maskf(iy, ix) = 1;
    }
  auto const psf = asymmetric_kernel<double>(3);
  lensing::SourceInversion<double> const invd(grid, sgrid, data, noise, mask, lensing::Regularisation::gradient, psf);
  lensing::SourceInversion<float> const invf(gridf, sgridf, dataf, noisef, maskf, lensing::Regularisation::gradient,
                                             asymmetric_kernel<float>(3));
  auto const bd = invd.maximise_evidence(space, make_lens<double>());
  auto const bf = invf.maximise_evidence(space, make_lens<float>());
  INFO("double: " << bd.log_evidence << " at lambda " << bd.lambda << "; float: " << bf.log_evidence << " at "
                  << bf.lambda);
  CHECK(std::fabs(bf.log_evidence - bd.log_evidence) <= 1e-4 * std::fabs(bd.log_evidence));
  CHECK(std::fabs(std::log(bf.lambda / bd.lambda)) <= 0.05);
  auto const g = lensing::log_evidence_gradient_fd(space, make_lens<float>(), invf, bf.lambda, 1e-3);
  auto const gd = lensing::log_evidence_gradient_fd(space, make_lens<double>(), invd, bd.lambda, 1e-3);
  for (std::size_t k = 0; k < g.size(); ++k)
    CHECK(std::fabs(g[k] - gd[k]) <= 0.05 * (std::fabs(gd[k]) + 1));
}

//----------------------------------------------------------------------------

// Linear amplitudes: data = 3.2 x (lensed Sersic source, amp 1) + 1.7 x (lens
// light Sersic, amp 1) rendered by the forward model, noise-free: the
// amplitudes come back to rounding (relative 1e-10: a 2 x 2 QR of
// well-separated images), chi2 ~ 0, the covariance is (B^T C^-1 B)^-1.
LENSING_TEST_CASE_TEMPLATE("linear amplitudes recover the true amplitudes", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  lensing::PixelGrid<double> const grid(30, 30, 0.08, 2);
  using Model = lensing::LensModel<Lens<double>, lensing::Sersic<double>, lensing::Sersic<double>>;
  double const src[5] = {1.0, 0.15, 1.5, 0.05, -0.02}, ll[5] = {1.0, 0.6, 3.0, 0.02, -0.03};
  lensing::Sersic<double> const off = lensing::Sersic<double>::unpack(std::vector<double>{0.0, 0.1, 1.0, 0, 0}.data());
  lensing::Observation<double, Mem, lensing::DirectConvolution<double, Mem>> const obs(
      grid, lensing::DirectConvolution<double, Mem>(asymmetric_kernel<double>(5), 30, 30));
  using Img = lensing::View2D<double, Mem>;
  Img b0("b0", 30, 30), b1("b1", 30, 30), data("data", 30, 30), noise("noise", 30, 30), mask("mask", 30, 30);
  auto const lens = make_lens<double>(0.9);
  obs.render(space, Model{lens, lensing::Sersic<double>::unpack(src), off}, b0);
  obs.render(space, Model{lens, off, lensing::Sersic<double>::unpack(ll)}, b1);
  space.fence();
  auto h0 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b0);
  auto h1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b1);
  auto hd = Kokkos::create_mirror_view(data);
  auto hn = Kokkos::create_mirror_view(noise);
  auto hm = Kokkos::create_mirror_view(mask);
  for (int iy = 0; iy < 30; ++iy)
    for (int ix = 0; ix < 30; ++ix) {
      hd(iy, ix) = 3.2 * h0(iy, ix) + 1.7 * h1(iy, ix);
      hn(iy, ix) = 0.01 * (1 + 0.2 * std::sin(ix + 2.0 * iy));
      hm(iy, ix) = (ix * 7 + iy) % 11 == 0 ? 0.0 : 1.0;
    }
  Kokkos::deep_copy(data, hd);
  Kokkos::deep_copy(noise, hn);
  Kokkos::deep_copy(mask, hm);
  auto const a = lensing::solve_linear_amplitudes(std::vector<Img>{b0, b1}, data, noise, mask);
  INFO("amplitudes " << a.amplitudes.transpose() << ", chi2 " << a.chi2);
  CHECK(a.amplitudes[0] == doctest::Approx(3.2).epsilon(1e-10));
  CHECK(a.amplitudes[1] == doctest::Approx(1.7).epsilon(1e-10));
  CHECK(a.chi2 <= 1e-16 * (3.2 * 3.2 + 1.7 * 1.7) * 1e8);
  // Covariance against the normal matrix.
  Eigen::Matrix2d nm = Eigen::Matrix2d::Zero();
  for (int iy = 0; iy < 30; ++iy)
    for (int ix = 0; ix < 30; ++ix) {
      if (hm(iy, ix) == 0) continue;
      double const w = 1 / (hn(iy, ix) * hn(iy, ix));
      double const v[2] = {h0(iy, ix), h1(iy, ix)};
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
          nm(i, j) += w * v[i] * v[j];
    }
  Eigen::Matrix2d const cov = nm.inverse();
  CHECK((a.covariance - cov).norm() <= 1e-8 * cov.norm());
  // A degenerate basis: the same image twice.
  CHECK_THROWS_AS(lensing::solve_linear_amplitudes(std::vector<Img>{b0, b0}, data, noise, mask), std::runtime_error);
}

//----------------------------------------------------------------------------

LENSING_TEST_CASE_TEMPLATE("inversion rejects bad input", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using lensing::test::error_message;
  Space space;
  lensing::PixelGrid<double> const grid(10, 10, 0.2), sgrid(6, 6, 0.15);
  auto const lens = make_lens<double>();
  using Img = lensing::View2D<double, Mem>;
  Img empty("empty", 10, 10), ones("ones", 10, 10), wrong("wrong", 9, 10), zeros("zeros", 10, 10);
  Kokkos::deep_copy(ones, 1.0);
  // Empty mask.
  CHECK_THROWS_AS(lensing::lensing_operator(space, lens, grid, sgrid, empty), std::invalid_argument);
  CHECK(error_message([&] {
          lensing::lensing_operator(space, lens, grid, sgrid, empty);
        }).find("lensing::lensing_operator: the mask selects no pixel") != std::string::npos);
  CHECK_THROWS_AS(lensing::lensing_operator(space, lens, grid, sgrid, wrong), std::invalid_argument);
  CHECK_THROWS_AS(lensing::SourceInversion<double>(grid, sgrid, ones, ones, empty, lensing::Regularisation::zeroth),
                  std::invalid_argument);
  // Noise map with zeros, data of the wrong size.
  CHECK(error_message([&] {
          lensing::SourceInversion<double>(grid, sgrid, ones, zeros, ones, lensing::Regularisation::zeroth);
        }).find("noise_map must be finite and > 0") != std::string::npos);
  CHECK_THROWS_AS(lensing::SourceInversion<double>(grid, sgrid, wrong, ones, ones, lensing::Regularisation::gradient),
                  std::invalid_argument);
  // An even PSF kernel.
  lensing::PsfKernel<double> even{2, {0.25, 0.25, 0.25, 0.25}};
  CHECK_THROWS_AS(lensing::lensing_operator(space, lens, grid, sgrid, ones, even), std::invalid_argument);
  // lambda <= 0, NaN.
  lensing::SourceInversion<double> const inv(grid, sgrid, ones, ones, ones, lensing::Regularisation::curvature);
  CHECK_THROWS_AS(inv.solve(space, lens, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(inv.solve(space, lens, -1.0), std::invalid_argument);
  CHECK_THROWS_AS(lensing::log_evidence(space, lens, inv, std::nan("")), std::invalid_argument);
  CHECK(error_message([&] { inv.solve(space, lens, -1.0); }).find("lambda must be finite and > 0") !=
        std::string::npos);
  // Mismatched sizes in LinearInversion.
  auto const op = inv.lensing_operator(space, lens);
  Eigen::VectorXd const d = Eigen::VectorXd::Ones(op.rows()), s = Eigen::VectorXd::Ones(op.rows());
  auto const r = lensing::regularisation_matrix(sgrid, lensing::Regularisation::zeroth);
  auto const r_small =
      lensing::regularisation_matrix(lensing::PixelGrid<double>(5, 5, 0.1), lensing::Regularisation::zeroth);
  CHECK_THROWS_AS(lensing::LinearInversion(op.matrix, Eigen::VectorXd::Ones(op.rows() - 1), s, r),
                  std::invalid_argument);
  CHECK_THROWS_AS(lensing::LinearInversion(op.matrix, d, Eigen::VectorXd::Ones(3), r), std::invalid_argument);
  CHECK_THROWS_AS(lensing::LinearInversion(op.matrix, d, s, r_small), std::invalid_argument);
  CHECK_THROWS_AS(lensing::LinearInversion(op.matrix, d, -s, r), std::invalid_argument);
  CHECK_THROWS_AS(lensing::regularisation_matrix(sgrid, lensing::Regularisation::gradient, -1.0),
                  std::invalid_argument);
  // Linear amplitudes: no basis, wrong extents, empty mask.
  CHECK_THROWS_AS(lensing::solve_linear_amplitudes(std::vector<Img>{}, ones, ones, ones), std::invalid_argument);
  CHECK_THROWS_AS(lensing::solve_linear_amplitudes(std::vector<Img>{wrong}, ones, ones, ones), std::invalid_argument);
  CHECK_THROWS_AS(lensing::solve_linear_amplitudes(std::vector<Img>{ones}, ones, ones, empty), std::invalid_argument);
  CHECK_THROWS_AS(lensing::solve_linear_amplitudes(std::vector<Img>{ones}, ones, zeros, ones), std::invalid_argument);
}
