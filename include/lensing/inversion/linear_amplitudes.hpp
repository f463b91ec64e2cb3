#ifndef LENSING_INVERSION_LINEAR_AMPLITUDES_HPP
#define LENSING_INVERSION_LINEAR_AMPLITUDES_HPP

/// \file
/// Linear amplitudes of light profiles by weighted least squares.

#include <lensing/core/errors.hpp>
#include <lensing/core/views.hpp>

// Eigen's own threading off, as nn/gemm.hpp does (Kokkos owns the threads;
// the macro must precede the first Eigen include of the translation unit).
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Dense>

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace lensing {

/// The amplitudes of solve_linear_amplitudes.
struct LinearAmplitudes {
  Eigen::VectorXd amplitudes;  ///< a, one per basis image
  Eigen::MatrixXd covariance;  ///< (B^T C^-1 B)^-1, the Gaussian posterior covariance of a (flat prior)
  double chi2 = 0;             ///< (d - B a)^T C^-1 (d - B a) on the mask
};

/// The amplitudes a of the model image M = sum_i a_i B_i that best fit the
/// data d (weighted linear least squares, the amplitude part of a
/// semi-linear inversion without regularisation; Warren & Dye 2003):
///
///   a = argmin (d - B a)^T C^-1 (d - B a) = (B^T C^-1 B)^-1 B^T C^-1 d,
///
/// B_i the basis images (each light profile rendered with amplitude 1 through
/// the whole observation, e.g. Observation::render of a LensModel whose
/// source or lens light has amp = 1 and the other components switched off),
/// C = diag(sigma^2) on the pixels where `mask` is nonzero.  Solved by
/// column-pivoted Householder QR of C^-1/2 B (no normal equations: the
/// condition number enters once, not squared); the covariance from the
/// same factor.  The amplitudes may come out negative: no positivity
/// constraint.
///
/// All views rank 2 (ny, nx) of the same extents, any memory space
/// (copied to the host).  Throws std::invalid_argument for no basis image,
/// mismatched extents, an empty mask, fewer mask pixels than basis images,
/// sigma <= 0 or non-finite data/basis on the mask; std::runtime_error when
/// the basis images are linearly dependent on the mask.
template <class Basis, class Data, class Noise, class Mask>
LinearAmplitudes solve_linear_amplitudes(std::vector<Basis> const& basis, Data const& data, Noise const& noise_map,
                                         Mask const& mask) {
  constexpr char const* where = "lensing::solve_linear_amplitudes";
  static_assert(Kokkos::is_view<Basis>::value && Kokkos::is_view<Data>::value && Kokkos::is_view<Noise>::value &&
                    Kokkos::is_view<Mask>::value,
                "lensing::solve_linear_amplitudes: basis images, data, noise map and mask are Kokkos views");
  static_assert(Basis::rank == 2 && Data::rank == 2 && Noise::rank == 2 && Mask::rank == 2,
                "lensing::solve_linear_amplitudes: rank-2 views (ny, nx)");
  check_argument(!basis.empty(), where, "no basis image");
  int const ny = int(data.extent(0)), nx = int(data.extent(1));
  check_extents(noise_map, where, "noise_map", "(ny, nx) of the data", ny, nx);
  check_extents(mask, where, "mask", "(ny, nx) of the data", ny, nx);
  for (std::size_t i = 0; i < basis.size(); ++i)
    check_extents(basis[i], where, "basis[" + std::to_string(i) + "]", "(ny, nx) of the data", ny, nx);
  auto const hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), data);
  auto const hn = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), noise_map);
  auto const hm = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mask);
  std::vector<long> pixels;
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix)
      if (double(hm(iy, ix)) != 0) pixels.push_back(long(iy) * nx + ix);
  check_argument(!pixels.empty(), where, "the mask selects no pixel (empty mask)");
  long const m = long(basis.size()), n = long(pixels.size());
  check_argument(n >= m, where, std::to_string(n) + " mask pixels cannot fix " + std::to_string(m) + " amplitudes");
  // Whitened system: rows divided by sigma.
  Eigen::MatrixXd b(n, m);
  Eigen::VectorXd d(n);
  for (long r = 0; r < n; ++r) {
    int const iy = int(pixels[std::size_t(r)] / nx), ix = int(pixels[std::size_t(r)] % nx);
    double const s = double(hn(iy, ix));
    check_argument(std::isfinite(s) && s > 0, where,
                   "noise_map must be finite and > 0 on the mask, got " + std::to_string(s) + " at pixel (" +
                       std::to_string(iy) + ", " + std::to_string(ix) + ")");
    d[r] = double(hd(iy, ix)) / s;
    check_argument(std::isfinite(d[r]), where, "data is not finite on the mask");
  }
  for (long i = 0; i < m; ++i) {
    auto const hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), basis[std::size_t(i)]);
    for (long r = 0; r < n; ++r) {
      int const iy = int(pixels[std::size_t(r)] / nx), ix = int(pixels[std::size_t(r)] % nx);
      b(r, i) = double(hb(iy, ix)) / double(hn(iy, ix));
      check_argument(std::isfinite(b(r, i)), where, "basis[" + std::to_string(i) + "] is not finite on the mask");
    }
  }
  Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(b);
  if (qr.rank() < m)
    throw std::runtime_error(std::string(where) + ": the basis images are linearly dependent on the mask (rank " +
                             std::to_string(qr.rank()) + " of " + std::to_string(m) + ")");
  LinearAmplitudes out;
  out.amplitudes = qr.solve(d);
  out.chi2 = (d - b * out.amplitudes).squaredNorm();
  // (B^T B)^-1 = P R^-1 R^-T P^T from B P = Q R.
  Eigen::MatrixXd const r = qr.matrixR().topLeftCorner(m, m).template triangularView<Eigen::Upper>();
  Eigen::MatrixXd const rinv = r.template triangularView<Eigen::Upper>().solve(Eigen::MatrixXd::Identity(m, m));
  Eigen::MatrixXd const cov_p = rinv * rinv.transpose();
  out.covariance = qr.colsPermutation() * cov_p * qr.colsPermutation().transpose();
  return out;
}

}  // namespace lensing

#endif  // LENSING_INVERSION_LINEAR_AMPLITUDES_HPP
