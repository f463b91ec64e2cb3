#ifndef LENSING_INVERSION_SOURCE_INVERSION_HPP
#define LENSING_INVERSION_SOURCE_INVERSION_HPP

/// \file
/// Pixelated source inversion (semi-linear inversion, Warren & Dye 2003, ApJ
/// 590, 673) with the Bayesian evidence of Suyu et al. (2006, MNRAS 371, 983)
/// for the regularisation constant lambda and for the lens parameters.

#include <lensing/core/errors.hpp>
#include <lensing/inversion/lensing_operator.hpp>
#include <lensing/inversion/regularisation.hpp>

// Eigen's own threading off, as nn/gemm.hpp does (Kokkos owns the threads;
// the macro must precede the first Eigen include of the translation unit).
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <Eigen/SparseCholesky>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lensing {

/// The most probable source at one lambda and its evidence terms
/// (LinearInversion::solve, SourceInversion::solve).
struct InversionResult {
  Eigen::VectorXd source;       ///< S, row-major source pixels (surface brightness)
  double lambda = 0;            ///< regularisation constant
  double chi2 = 0;              ///< (d - L S)^T C^-1 (d - L S)
  double regularisation = 0;    ///< S^T R S (= 2 E_S(S))
  double log_det_a = 0;         ///< log det(F + lambda R)
  double log_det_lambda_r = 0;  ///< log det(lambda R) = N_s log lambda + log det R
  double log_evidence = 0;      ///< log P(d | lambda, lens, R)
  double log_lambda_sigma =
      std::numeric_limits<double>::quiet_NaN();  ///< curvature sigma of ln lambda (maximise_evidence)
  bool at_bound = false;                         ///< maximise_evidence: the maximum is at an end of the search range
  int evaluations = 0;                           ///< factorisations used (maximise_evidence)
};

/// The search range of maximise_evidence, relative to the reference
/// lambda_ref = tr(F) / tr(R) (where data and prior weigh the same on
/// average): lambda in [relative_min, relative_max] * lambda_ref, a scan of
/// `grid` points uniform in ln lambda, then golden-section refinement of the
/// best bracket to `tolerance` in ln lambda.
struct EvidenceSearch {
  double relative_min = 1e-8;
  double relative_max = 1e4;
  int grid = 17;
  double tolerance = 1e-4;  // in ln lambda: far below the evidence's width in ln lambda (~ (N_s / 2)^-1/2)
};

/// How LinearInversion factorises F + lambda R.
///  - sparse: Eigen::SimplicialLDLT (AMD ordering; pattern analysed once);
///  - dense: Eigen::LLT of the dense matrix (n^3 / 3 flops, n^2 doubles);
///  - automatic: dense when F holds more than 5% nonzeros and n <= 6000 (a PSF wider
///    than a few pixels couples every source pixel to hundreds of others and
///    the simplicial factor fills in: measured on 40 x 40 source pixels under
///    an 11 x 11 PSF, F 47% full, sparse LDL^T 1.4 s per lambda), sparse
///    otherwise.
enum class Factorisation { automatic, sparse, dense };

/// The linear part of a pixelated source inversion, from the matrices
/// (Suyu et al. 2006, sec. 2):
///
///   F = L^T C^-1 L,  D = L^T C^-1 d,  A = F + lambda R,  S = A^-1 D,
///
/// C = diag(sigma^2) the noise covariance of the data d (rows of L), R the
/// regularisation matrix (symmetric positive definite; regularisation_matrix),
/// lambda > 0.  The Bayesian evidence (Suyu et al. 2006 eq. 19, written out;
/// exact for the Gaussian prior s ~ N(0, (lambda R)^-1) and Gaussian noise)
///
///   log eps(lambda) = -1/2 chi2(S) - 1/2 lambda S^T R S - 1/2 log det A
///                     + 1/2 log det(lambda R) - 1/2 sum_p log(2 pi sigma_p^2),
///
/// equals log N(d; 0, C + L (lambda R)^-1 L^T).  log det A is the sum of the
/// logs of the diagonal D of A's sparse LDL^T factorisation
/// (Eigen::SimplicialLDLT, AMD ordering; the pattern is analysed once and
/// refactorised for every lambda), or 2 sum log L_ii of its dense Cholesky
/// factor when F is far from sparse (Factorisation); log det R once, from
/// its sparse LDL^T.  R must be
/// positive definite: the gradient and curvature forms of
/// regularisation_matrix are (their boundary makes them so), and its
/// `ridge` adds a zeroth-order term where needed.
///
/// Throws std::invalid_argument for mismatched sizes, sigma <= 0 or
/// non-finite data, lambda <= 0 or non-finite; std::runtime_error when A or R
/// is not numerically positive definite.
class LinearInversion {
 public:
  LinearInversion(Eigen::SparseMatrix<double> const& lensing_matrix, Eigen::VectorXd const& data,
                  Eigen::VectorXd const& sigma, Eigen::SparseMatrix<double> const& regularisation,
                  double log_det_r = std::numeric_limits<double>::quiet_NaN(),
                  Factorisation factorisation = Factorisation::automatic)
      : m_l(lensing_matrix), m_r(regularisation), m_d(data) {
    constexpr char const* where = "lensing::LinearInversion";
    check_argument(m_l.rows() > 0 && m_l.cols() > 0, where, "empty lensing matrix (no pixels or no source pixels)");
    check_argument(data.size() == m_l.rows(), where,
                   "data has " + std::to_string(data.size()) + " values, the lensing matrix " +
                       std::to_string(m_l.rows()) + " rows");
    check_argument(sigma.size() == m_l.rows(), where,
                   "sigma has " + std::to_string(sigma.size()) + " values, the lensing matrix " +
                       std::to_string(m_l.rows()) + " rows");
    check_argument(m_r.rows() == m_l.cols() && m_r.cols() == m_l.cols(), where,
                   "the regularisation matrix must be " + std::to_string(m_l.cols()) + " x " +
                       std::to_string(m_l.cols()) + " (one row per source pixel), got " + std::to_string(m_r.rows()) +
                       " x " + std::to_string(m_r.cols()));
    m_w.resize(sigma.size());
    m_log_norm = 0;
    for (Eigen::Index p = 0; p < sigma.size(); ++p) {
      check_argument(std::isfinite(data[p]), where, "data must be finite (pixel " + std::to_string(p) + ")");
      check_argument(std::isfinite(sigma[p]) && sigma[p] > 0, where,
                     "sigma must be finite and > 0 (pixel " + std::to_string(p) + ")");
      m_w[p] = 1.0 / (sigma[p] * sigma[p]);
      m_log_norm -= 0.5 * std::log(6.283185307179586477 * sigma[p] * sigma[p]);
    }
    Eigen::SparseMatrix<double> const lt = m_l.transpose();
    m_rhs = lt * m_w.cwiseProduct(m_d);
    if (std::isnan(log_det_r)) log_det_r = log_det_spd(m_r, "the regularisation matrix");
    m_log_det_r = log_det_r;
    // F = sum_p w_p l_p l_p^T over the rows l_p of L.  Its nonzeros are at
    // most U = sum_p nnz(l_p)^2: where U is small, F is sparse for sure and
    // the sparse product builds it; otherwise F is accumulated densely from
    // the rows (U multiply-adds: 1.5x faster than the sparse product on a
    // 40 x 40 source under an 11 x 11 PSF, and no conversion to dense) and
    // kept dense if it is more than 5% full.
    long const n = long(m_l.cols());
    double const n2 = double(n) * double(n);
    Eigen::SparseMatrix<double, Eigen::RowMajor> const lr = m_l;
    double bound = 0;
    for (Eigen::Index p = 0; p < lr.rows(); ++p) {
      double const k = double(lr.outerIndexPtr()[p + 1] - lr.outerIndexPtr()[p]);
      bound += k * k;
    }
    bool const may_be_dense = factorisation == Factorisation::dense ||
                              (factorisation == Factorisation::automatic && bound > 0.05 * n2 && n <= 6000);
    if (may_be_dense) {
      m_fd = Eigen::MatrixXd::Zero(n, n);
      for (Eigen::Index p = 0; p < lr.rows(); ++p) {
        long const b = lr.outerIndexPtr()[p], e = lr.outerIndexPtr()[p + 1];
        int const* idx = lr.innerIndexPtr();
        double const* val = lr.valuePtr();
        for (long a = b; a < e; ++a) {
          double const wa = m_w[p] * val[a];
          double* col = m_fd.col(idx[a]).data();
          for (long c = b; c < e; ++c)
            col[idx[c]] += wa * val[c];
        }
      }
      m_f = m_fd.sparseView(0.0, 0.0);  // exact zeros dropped only
      m_dense = factorisation == Factorisation::dense || double(m_f.nonZeros()) > 0.05 * n2;
    } else {
      m_f = lt * m_w.asDiagonal() * m_l;
      m_dense = false;
    }
    m_pattern = m_f + m_r;  // the pattern of F + lambda R for every lambda > 0
    if (m_dense) {
      m_rd = Eigen::MatrixXd(m_r);
    } else {
      m_fd.resize(0, 0);
      m_ldlt.analyzePattern(m_pattern);
    }
  }

  /// Whether F + lambda R is factorised densely (Factorisation).
  bool dense() const { return m_dense; }

  long num_data() const { return long(m_d.size()); }
  long num_source() const { return long(m_l.cols()); }
  Eigen::SparseMatrix<double> const& f() const { return m_f; }  ///< L^T C^-1 L
  Eigen::VectorXd const& rhs() const { return m_rhs; }          ///< L^T C^-1 d
  double log_det_r() const { return m_log_det_r; }
  /// tr(F) / tr(R), the scale of lambda where data and prior weigh alike.
  double reference_lambda() const {
    double const tf = m_f.diagonal().sum(), tr = m_r.diagonal().sum();
    return tf > 0 ? tf / tr : 1.0;
  }

  /// S and the evidence terms at lambda (> 0).
  InversionResult solve(double lambda) {
    constexpr char const* where = "lensing::LinearInversion::solve";
    check_argument(std::isfinite(lambda) && lambda > 0, where,
                   "lambda must be finite and > 0, got " + std::to_string(lambda));
    InversionResult out;
    out.lambda = lambda;
    m_factorised = false;
    auto not_spd = [&] {
      return std::runtime_error(std::string(where) + ": F + lambda R is not numerically positive definite (lambda = " +
                                std::to_string(lambda) + ")");
    };
    double ld = 0;
    if (m_dense) {
      m_ad = m_fd + lambda * m_rd;
      m_llt.compute(m_ad);
      if (m_llt.info() != Eigen::Success) throw not_spd();
      auto const& fac = m_llt.matrixLLT();
      for (Eigen::Index i = 0; i < fac.rows(); ++i) {
        if (!(fac(i, i) > 0)) throw not_spd();
        ld += 2 * std::log(fac(i, i));
      }
      out.source = m_llt.solve(m_rhs);
    } else {
      m_a = m_f + lambda * m_r;
      m_ldlt.factorize(m_a);
      if (m_ldlt.info() != Eigen::Success) throw not_spd();
      auto const diag = m_ldlt.vectorD();
      for (Eigen::Index i = 0; i < diag.size(); ++i) {
        if (!(diag[i] > 0)) throw not_spd();
        ld += std::log(diag[i]);
      }
      out.source = m_ldlt.solve(m_rhs);
    }
    m_factorised = true;
    Eigen::VectorXd const res = m_d - m_l * out.source;
    out.chi2 = res.dot(m_w.cwiseProduct(res));
    out.regularisation = out.source.dot(m_r * out.source);
    out.log_det_a = ld;
    out.log_det_lambda_r = double(num_source()) * std::log(lambda) + m_log_det_r;
    out.log_evidence = -0.5 * out.chi2 - 0.5 * lambda * out.regularisation - 0.5 * out.log_det_a +
                       0.5 * out.log_det_lambda_r + m_log_norm;
    out.evaluations = 1;
    return out;
  }

  /// log eps(lambda).
  double log_evidence(double lambda) { return solve(lambda).log_evidence; }

  /// (F + lambda R)^-1 b with the factorisation of the last solve() (b: n x m,
  /// dense; b = I gives the posterior covariance of the source).  Throws
  /// std::logic_error before the first solve().
  Eigen::MatrixXd solve_a(Eigen::MatrixXd const& b) const {
    if (!m_factorised) throw std::logic_error("lensing::LinearInversion::solve_a: call solve(lambda) first");
    check_argument(b.rows() == num_source(), "lensing::LinearInversion::solve_a",
                   "b must have num_source() = " + std::to_string(num_source()) + " rows");
    if (m_dense) return m_llt.solve(b);
    return m_ldlt.solve(b);
  }

  /// The lambda that maximises log eps (EvidenceSearch: grid scan in ln lambda,
  /// then Brent's minimisation of -log eps in ln lambda on the bracket of the best grid point), with log_lambda_sigma =
  /// (-d^2 log eps / d(ln lambda)^2)^-1/2 at the maximum (central differences, step 0.01; the Laplace width of the
  /// evidence in ln lambda) and at_bound set when the maximum lies at an end of the range.
  InversionResult maximise_evidence(EvidenceSearch const& search = {}) {
    constexpr char const* where = "lensing::LinearInversion::maximise_evidence";
    check_argument(std::isfinite(search.relative_min) && search.relative_min > 0 &&
                       std::isfinite(search.relative_max) && search.relative_max > search.relative_min,
                   where, "need 0 < relative_min < relative_max, finite");
    check_argument(search.grid >= 3, where, "grid must be >= 3");
    check_argument(std::isfinite(search.tolerance) && search.tolerance > 0, where, "tolerance must be > 0");
    int evals = 0;
    InversionResult best_r;
    best_r.log_evidence = -std::numeric_limits<double>::infinity();
    auto g = [&](double u) {  // log eps at lambda = e^u, keeping the best solution
      ++evals;
      InversionResult r = solve(std::exp(u));
      double const v = r.log_evidence;
      if (v > best_r.log_evidence) best_r = std::move(r);
      return v;
    };
    double const ref = std::log(reference_lambda());
    double const lo = ref + std::log(search.relative_min), hi = ref + std::log(search.relative_max);
    double const step = (hi - lo) / (search.grid - 1);
    int best = 0;
    double best_v = -std::numeric_limits<double>::infinity();
    for (int i = 0; i < search.grid; ++i) {
      double const v = g(lo + i * step);
      if (v > best_v) best_v = v, best = i;
    }
    // Brent's minimisation (golden section with parabolic steps; Brent 1973,
    // ch. 5) of -log eps on the bracket around the best grid point, started
    // there.
    double a = lo + std::max(0, best - 1) * step, b = lo + std::min(search.grid - 1, best + 1) * step;
    double const cgold = 0.5 * (3 - std::sqrt(5.0)), tol = search.tolerance;
    double x = lo + best * step, w = x, v = x, fx = -best_v, fw = fx, fv = fx, d = 0, e = 0;
    for (int it = 0; it < 200; ++it) {
      double const m = 0.5 * (a + b), tol2 = 2 * tol;
      if (std::fabs(x - m) <= tol2 - 0.5 * (b - a)) break;
      bool golden = true;
      if (std::fabs(e) > tol) {  // try a parabola through x, w, v
        double r = (x - w) * (fx - fv), q = (x - v) * (fx - fw), p = (x - v) * q - (x - w) * r;
        q = 2 * (q - r);
        if (q > 0) p = -p;
        q = std::fabs(q);
        double const e_prev = e;
        e = d;
        if (std::fabs(p) < std::fabs(0.5 * q * e_prev) && p > q * (a - x) && p < q * (b - x)) {
          d = p / q;
          golden = false;
          double const u = x + d;
          if (u - a < tol2 || b - u < tol2) d = m > x ? tol : -tol;
        }
      }
      if (golden) {
        e = (x >= m ? a : b) - x;
        d = cgold * e;
      }
      double const u = std::fabs(d) >= tol ? x + d : x + (d > 0 ? tol : -tol);
      double const fu = -g(u);
      if (fu <= fx) {
        (u >= x ? a : b) = x;
        v = w, fv = fw, w = x, fw = fx, x = u, fx = fu;
      } else {
        (u < x ? a : b) = u;
        if (fu <= fw || w == x) {
          v = w, fv = fw, w = u, fw = fu;
        } else if (fu <= fv || v == x || v == w) {
          v = u, fv = fu;
        }
      }
    }
    InversionResult out = best_r;
    double const u = std::log(out.lambda), h = 1e-2;
    double const curv = (g(u + h) - 2 * out.log_evidence + g(u - h)) / (h * h);
    out.evaluations = evals;
    out.log_lambda_sigma = curv < 0 ? 1.0 / std::sqrt(-curv) : std::numeric_limits<double>::infinity();
    out.at_bound = u - lo < 2 * tol + 1e-12 || hi - u < 2 * tol + 1e-12;
    return out;
  }

  /// log det of a symmetric positive definite sparse matrix from its LDL^T.
  static double log_det_spd(Eigen::SparseMatrix<double> const& m, char const* what) {
    Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>> ldlt(m);
    if (ldlt.info() != Eigen::Success)
      throw std::runtime_error(std::string("lensing::LinearInversion: factorisation of ") + what + " failed");
    double ld = 0;
    auto const diag = ldlt.vectorD();
    for (Eigen::Index i = 0; i < diag.size(); ++i) {
      if (!(diag[i] > 0))
        throw std::runtime_error(std::string("lensing::LinearInversion: ") + what +
                                 " is not positive definite (add a ridge: regularisation_matrix)");
      ld += std::log(diag[i]);
    }
    return ld;
  }

 private:
  Eigen::SparseMatrix<double> m_l, m_r, m_f, m_a, m_pattern;
  Eigen::VectorXd m_d, m_w, m_rhs;
  double m_log_det_r = 0, m_log_norm = 0;
  Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>> m_ldlt;
  bool m_dense = false, m_factorised = false;
  Eigen::MatrixXd m_fd, m_rd, m_ad;
  Eigen::LLT<Eigen::MatrixXd> m_llt;
};

//----------------------------------------------------------------------------

/// A pixelated source inversion of one image: data, noise map and mask on
/// the image grid, a regular source grid, the PSF and the regularisation.
/// For a lens (any MassProfile) it builds the LensingOperator
/// (lensing_operator()), solves for the most probable source
/// S = (L^T C^-1 L + lambda R)^-1 L^T C^-1 d, and gives the Bayesian
/// evidence log eps(lambda; lens) of LinearInversion — at a given lambda,
/// or maximised over lambda (Suyu et al. 2006, sec. 2.2: the most probable
/// lambda stands in for its marginalisation).  As a function of the lens
/// parameters, log_evidence() is the log density of the lens parameters
/// with the source marginalised (Suyu et al. 2006 sec. 3; add the log prior
/// of the lens parameters).  It is continuous in the lens parameters but
/// not smooth: the interpolation weights are piecewise polynomials of the
/// ray positions, so the evidence has kinks where rays cross source pixel
/// edges — use it with gradient-free samplers, or the finite-difference
/// gradient log_evidence_gradient_fd with a step of a fraction of a source pixel.
///
/// Mask: pixels where `mask` is nonzero are used (weights other than 0 and 1
/// count as 1).  Noise: sigma_p > 0 and finite, data finite, on the mask.
/// Host state only (Eigen); the rays are shot on the execution space passed
/// to each call.  Not thread-safe (the solver is rebuilt per lens; use one
/// SourceInversion per thread).
template <class Scalar>
class SourceInversion {
 public:
  /// data, noise_map and mask: rank-2 views (ny, nx) of the image grid, any
  /// memory space (copied to the host).
  template <class Data, class Noise, class Mask, class KScalar = double>
  SourceInversion(PixelGrid<Scalar> const& image_grid, PixelGrid<Scalar> const& source_grid, Data const& data,
                  Noise const& noise_map, Mask const& mask, Regularisation form,
                  PsfKernel<KScalar> const& psf = PsfKernel<KScalar>{}, LensingOperatorOptions const& options = {},
                  double ridge = 0)
      : m_image_grid(image_grid), m_source_grid(source_grid), m_options(options) {
    constexpr char const* where = "lensing::SourceInversion";
    static_assert(Kokkos::is_view<Data>::value && Kokkos::is_view<Noise>::value && Data::rank == 2 && Noise::rank == 2,
                  "lensing::SourceInversion: data and noise_map are rank-2 views (ny, nx)");
    int const ny = image_grid.ny(), nx = image_grid.nx();
    check_extents(data, where, "data", "(ny, nx)", ny, nx);
    check_extents(noise_map, where, "noise_map", "(ny, nx)", ny, nx);
    m_pixels = detail::mask_pixels(where, mask, ny, nx);
    auto const hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), data);
    auto const hn = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), noise_map);
    m_d.resize(long(m_pixels.size()));
    m_sigma.resize(long(m_pixels.size()));
    for (std::size_t r = 0; r < m_pixels.size(); ++r) {
      int const iy = int(m_pixels[r] / nx), ix = int(m_pixels[r] % nx);
      m_d[long(r)] = double(hd(iy, ix));
      m_sigma[long(r)] = double(hn(iy, ix));
      check_argument(
          std::isfinite(m_d[long(r)]), where,
          "data is not finite at pixel (" + std::to_string(iy) + ", " + std::to_string(ix) + ") of the mask");
      check_argument(std::isfinite(m_sigma[long(r)]) && m_sigma[long(r)] > 0, where,
                     "noise_map must be finite and > 0 on the mask, got " + std::to_string(m_sigma[long(r)]) +
                         " at pixel (" + std::to_string(iy) + ", " + std::to_string(ix) + ")");
    }
    m_mask = View2D<double, Kokkos::HostSpace>("lensing::SourceInversion::mask", ny, nx);
    for (long p : m_pixels)
      m_mask(int(p / nx), int(p % nx)) = 1.0;
    m_psf.size = psf.size;
    m_psf.values.assign(psf.values.begin(), psf.values.end());
    m_r = regularisation_matrix(source_grid, form, ridge);
    m_log_det_r = LinearInversion::log_det_spd(m_r, "the regularisation matrix");
  }

  PixelGrid<Scalar> const& image_grid() const { return m_image_grid; }
  PixelGrid<Scalar> const& source_grid() const { return m_source_grid; }
  std::vector<long> const& pixels() const { return m_pixels; }  ///< mask pixels (iy * nx + ix)
  Eigen::VectorXd const& data() const { return m_d; }           ///< data on the mask pixels
  Eigen::VectorXd const& sigma() const { return m_sigma; }      ///< noise on the mask pixels
  Eigen::SparseMatrix<double> const& regularisation() const { return m_r; }
  double log_det_r() const { return m_log_det_r; }
  PsfKernel<double> const& psf() const { return m_psf; }                        ///< the PSF kernel of the operator
  LensingOperatorOptions const& operator_options() const { return m_options; }  ///< its sampling choices
  /// How the solvers factorise F + lambda R (default automatic).
  void set_factorisation(Factorisation f) { m_factorisation = f; }

  /// The LensingOperator of `lens` on this inversion's grids, mask and PSF.
  template <class ExecutionSpace, class Lens>
  LensingOperator<Scalar> lensing_operator(ExecutionSpace const& space, Lens const& lens) const {
    return lensing::lensing_operator(space, lens, m_image_grid, m_source_grid, m_mask, m_psf, m_options);
  }
  /// The solver of the linear problem for a LensingOperator of this inversion.
  LinearInversion solver(LensingOperator<Scalar> const& op) const {
    check_argument(op.rows() == long(m_pixels.size()) && op.cols() == m_source_grid.num_pixels(),
                   "lensing::SourceInversion::solver",
                   "the lensing operator does not match this inversion's mask and source grid");
    return LinearInversion(op.matrix, m_d, m_sigma, m_r, m_log_det_r, m_factorisation);
  }
  /// S and the evidence at lambda (> 0) for `lens`.
  template <class ExecutionSpace, class Lens>
  InversionResult solve(ExecutionSpace const& space, Lens const& lens, double lambda) const {
    check_argument(std::isfinite(lambda) && lambda > 0, "lensing::SourceInversion::solve",
                   "lambda must be finite and > 0, got " + std::to_string(lambda));
    auto s = solver(lensing_operator(space, lens));
    return s.solve(lambda);
  }
  /// S and the evidence at the lambda that maximises it, for `lens`.
  template <class ExecutionSpace, class Lens>
  InversionResult maximise_evidence(ExecutionSpace const& space, Lens const& lens,
                                    EvidenceSearch const& search = {}) const {
    auto s = solver(lensing_operator(space, lens));
    return s.maximise_evidence(search);
  }

 private:
  PixelGrid<Scalar> m_image_grid, m_source_grid;
  LensingOperatorOptions m_options;
  std::vector<long> m_pixels;
  Eigen::VectorXd m_d, m_sigma;
  View2D<double, Kokkos::HostSpace> m_mask;
  PsfKernel<double> m_psf;
  Eigen::SparseMatrix<double> m_r;
  double m_log_det_r = 0;
  Factorisation m_factorisation = Factorisation::automatic;
};

/// log eps(lambda; lens): the log density of the lens parameters with the
/// source marginalised at the fixed regularisation constant lambda (> 0),
/// Suyu et al. (2006) eq. 19.  Rays shot on `space`; the rest on the host.
template <class ExecutionSpace, class Lens, class Scalar>
double log_evidence(ExecutionSpace const& space, Lens const& lens, SourceInversion<Scalar> const& inversion,
                    double lambda) {
  return inversion.solve(space, lens, lambda).log_evidence;
}

/// max over lambda of log eps(lambda; lens) (the source marginalised, lambda
/// at its most probable value; LinearInversion::maximise_evidence).
template <class ExecutionSpace, class Lens, class Scalar>
double log_evidence(ExecutionSpace const& space, Lens const& lens, SourceInversion<Scalar> const& inversion,
                    EvidenceSearch const& search = {}) {
  return inversion.maximise_evidence(space, lens, search).log_evidence;
}

/// Central finite-difference gradient of log eps(lambda; lens) with respect
/// to the lens's packed parameters (Lens::pack order), at fixed lambda (> 0):
///   grad_k = [log eps(theta + h_k e_k) - log eps(theta - h_k e_k)] / (2 h_k),
///   h_k = step * max(1, |theta_k|).
/// At lambda = the evidence-maximising lambda this is also the gradient of
/// the lambda-maximised evidence (envelope theorem).  Costs 2 Lens::num_params
/// inversions.  The evidence has kinks where rays cross source-pixel edges
/// (see SourceInversion): a step of a fraction of a source pixel averages
/// over them; this is a smoothed gradient, not an exact one.
template <class ExecutionSpace, class Lens, class Scalar>
std::vector<double> log_evidence_gradient_fd(ExecutionSpace const& space, Lens const& lens,
                                             SourceInversion<Scalar> const& inversion, double lambda,
                                             double step = 1e-4) {
  constexpr char const* where = "lensing::log_evidence_gradient_fd";
  check_argument(std::isfinite(step) && step > 0, where, "step must be finite and > 0");
  check_argument(std::isfinite(lambda) && lambda > 0, where,
                 "lambda must be finite and > 0, got " + std::to_string(lambda));
  constexpr int n = Lens::num_params;
  std::vector<double> grad(std::size_t(n), 0.0);
  if constexpr (n > 0) {
    Scalar theta[n], t[n];
    lens.pack(theta);
    for (int k = 0; k < n; ++k) {
      double const h = step * std::max(1.0, std::fabs(double(theta[k])));
      for (int i = 0; i < n; ++i)
        t[i] = theta[i];
      t[k] = Scalar(double(theta[k]) + h);
      Scalar const up = t[k];
      double const fp = log_evidence(space, Lens::unpack(t), inversion, lambda);
      t[k] = Scalar(double(theta[k]) - h);
      Scalar const down = t[k];
      double const fm = log_evidence(space, Lens::unpack(t), inversion, lambda);
      grad[std::size_t(k)] = (fp - fm) / (double(up) - double(down));  // the steps actually taken
    }
  }
  return grad;
}

}  // namespace lensing

#endif  // LENSING_INVERSION_SOURCE_INVERSION_HPP
