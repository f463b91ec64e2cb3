#ifndef LENSING_INVERSION_REGULARISATION_HPP
#define LENSING_INVERSION_REGULARISATION_HPP

/// \file
/// Regularisation matrices of a pixelated source on a regular grid: zeroth
/// order, gradient and curvature (Suyu et al. 2006, MNRAS 371, 983, App. A).

#include <lensing/core/errors.hpp>
#include <lensing/geometry/pixel_grid.hpp>

// Eigen's own threading off, as nn/gemm.hpp does (Kokkos owns the threads;
// the macro must precede the first Eigen include of the translation unit).
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Sparse>

#include <cmath>
#include <vector>

namespace lensing {

/// The form of the source prior E_S(s) = 1/2 s^T R s.
enum class Regularisation {
  zeroth,    ///< R = I: E_S = 1/2 sum_j s_j^2
  gradient,  ///< first differences along x and y
  curvature  ///< second differences along x and y
};

/// The regularisation matrix R (n x n, n = source_grid.num_pixels(),
/// row-major source pixels iy * nx + ix) of Suyu et al. (2006, App. A):
///
///   zeroth:    R = I;
///   gradient:  R = D_x^T D_x + D_y^T D_y,   (D_x s)_{iy,ix} = s_{iy,ix+1} - s_{iy,ix};
///   curvature: R = C_x^T C_x + C_y^T C_y,   (C_x s)_{iy,ix} = s_{iy,ix-1} - 2 s_{iy,ix} + s_{iy,ix+1};
///
/// (D_y, C_y likewise along iy), dimensionless pixel differences (no pixel
/// scale).  Boundary: pixels beyond the grid's border count as 0, the
/// convention PixelatedSource uses when it interpolates (the source fades to
/// 0 beyond its border).  At the edges the missing neighbours therefore turn
/// the difference into a lower-order term (for the gradient, the last
/// column's and row's differences are the zeroth-order terms -s), in the
/// spirit of Suyu et al.'s lower-order regularisation of the edge pixels
/// (their exact edge terms may differ), and R is positive definite: D_x and
/// C_x are invertible (bidiagonal with diagonal -1;
/// tridiagonal Toeplitz with eigenvalues -2 + 2 cos(m pi / (n + 1)) != 0), so
/// log det R is finite.  Its smallest eigenvalue still falls as ~ 1 / n^2
/// (gradient) and ~ 1 / n^4 (curvature) on an n x n grid; `ridge` adds
/// ridge * I (a small zeroth-order term, >= 0) for grids large enough that
/// this matters in double (curvature beyond ~10^3 pixels a side).
///
/// Throws std::invalid_argument for an empty grid, a negative or non-finite
/// ridge, or an unknown form.
template <class Scalar>
Eigen::SparseMatrix<double> regularisation_matrix(PixelGrid<Scalar> const& source_grid, Regularisation form,
                                                  double ridge = 0) {
  constexpr char const* where = "lensing::regularisation_matrix";
  check_argument(source_grid.nx() > 0 && source_grid.ny() > 0, where, "empty source grid");
  check_nonnegative(ridge, where, "ridge");
  int const nx = source_grid.nx(), ny = source_grid.ny();
  long const n = long(nx) * ny;
  auto idx = [nx](int iy, int ix) { return long(iy) * nx + ix; };
  Eigen::SparseMatrix<double> r(n, n);
  if (form == Regularisation::zeroth) {
    r.setIdentity();
  } else if (form == Regularisation::gradient || form == Regularisation::curvature) {
    // Stack the difference operators along x and y as the rows of D; R = D^T D.
    std::vector<Eigen::Triplet<double>> t;
    long row = 0;
    bool const grad = form == Regularisation::gradient;
    t.reserve(std::size_t(2 * n * (grad ? 2 : 3)));
    for (int axis = 0; axis < 2; ++axis)
      for (int iy = 0; iy < ny; ++iy)
        for (int ix = 0; ix < nx; ++ix, ++row) {
          int const dy = axis == 1, dx = axis == 0;
          auto add = [&](int jy, int jx, double w) {
            if (jy >= 0 && jy < ny && jx >= 0 && jx < nx) t.emplace_back(row, idx(jy, jx), w);
          };
          if (grad) {
            add(iy, ix, -1.0);
            add(iy + dy, ix + dx, 1.0);
          } else {
            add(iy - dy, ix - dx, 1.0);
            add(iy, ix, -2.0);
            add(iy + dy, ix + dx, 1.0);
          }
        }
    Eigen::SparseMatrix<double> d(row, n);
    d.setFromTriplets(t.begin(), t.end());
    r = Eigen::SparseMatrix<double>(d.transpose()) * d;
  } else {
    throw_invalid_argument(where, "unknown Regularisation form");
  }
  if (ridge > 0) {
    Eigen::SparseMatrix<double> id(n, n);
    id.setIdentity();
    r = r + ridge * id;
  }
  r.makeCompressed();
  return r;
}

}  // namespace lensing

#endif  // LENSING_INVERSION_REGULARISATION_HPP
