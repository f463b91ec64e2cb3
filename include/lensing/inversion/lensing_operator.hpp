#ifndef LENSING_INVERSION_LENSING_OPERATOR_HPP
#define LENSING_INVERSION_LENSING_OPERATOR_HPP

/// \file
/// The lensing operator of a pixelated source inversion as a sparse matrix:
/// image pixels inside a mask x source pixels of a regular source grid, from
/// ray shooting of the (supersampled) image grid, the interpolation weights
/// of PixelatedSource, the sub-pixel average and the PSF.

#include <lensing/core/errors.hpp>
#include <lensing/core/views.hpp>
#include <lensing/geometry/pixel_grid.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/psf/kernels.hpp>
#include <lensing/raytrace/ray_shooting.hpp>
#include <lensing/sources/pixelated.hpp>

// Eigen's own threading off, as nn/gemm.hpp does (Kokkos owns the threads;
// the macro must precede the first Eigen include of the translation unit).
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Sparse>

#include <string>
#include <type_traits>
#include <vector>

namespace lensing {

/// How lensing_operator() samples and blurs (the same choices as Observation).
struct LensingOperatorOptions {
  /// Interpolation of the source grid (PixelatedSource's weights).
  Interpolation interpolation = Interpolation::bilinear;
  /// Where the PSF acts: on the pixel grid after the sub-pixel average
  /// (binned) or on the fine grid before it (supersampled; the kernel is then
  /// sampled at pixel_scale / k).  See PsfSampling (model/observation.hpp).
  PsfSampling psf_sampling = PsfSampling::binned;
};

/// The lensing operator L of a semi-linear inversion (Warren & Dye 2003,
/// ApJ 590, 673; Suyu et al. 2006, MNRAS 371, 983, eq. 2): the model image
/// of a pixelated source s is
///
///   M_p = sum_j L_pj s_j,   L = P_mask · B_PSF · Bin · W,
///
/// W(f, j) the interpolation weight of source pixel j at the source-plane
/// position beta_f = x_f - alpha(x_f) of fine image pixel f
/// (PixelatedSource::for_each_weight: bilinear or bicubic, pixels outside
/// the source grid count as 0), Bin the A_pix / k^2 sub-pixel sum
/// (bin_subpixels), B_PSF the direct convolution with the PSF kernel, zero
/// outside the image (DirectConvolution; applied before Bin on the fine grid
/// for PsfSampling::supersampled), and P_mask the selection of the pixels
/// inside the mask.  So L s equals Observation::render of a LensModel whose
/// source is the PixelatedSource s on `source_grid` (and no lens light),
/// restricted to the mask.  Units: pixel values per unit source surface
/// brightness (the A_pix factor included).
///
/// Rows are the mask pixels in row-major order (`pixels[r] = iy * nx + ix`),
/// columns the source pixels in row-major order (`iy * source_nx + ix`).
/// The matrix is in double whatever the lens scalar (the ray positions and
/// weights are computed in the lens scalar, as the forward model does).
template <class Scalar>
struct LensingOperator {
  Eigen::SparseMatrix<double> matrix;  ///< (pixels.size(), source_grid.num_pixels())
  std::vector<long> pixels;            ///< image pixel (iy * nx + ix) of each row
  PixelGrid<Scalar> image_grid;
  PixelGrid<Scalar> source_grid;

  long rows() const { return long(matrix.rows()); }
  long cols() const { return long(matrix.cols()); }
};

namespace detail {
// Row-major indices of the nonzero pixels of a rank-2 mask (any memory space).
template <class Mask>
std::vector<long> mask_pixels(char const* where, Mask const& mask, int ny, int nx) {
  static_assert(Kokkos::is_view<Mask>::value && Mask::rank == 2, "lensing: the mask must be a rank-2 view (ny, nx)");
  check_extents(mask, where, "mask", "(ny, nx)", ny, nx);
  auto const h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mask);
  std::vector<long> pixels;
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      double const m = double(h(iy, ix));
      check_argument(m == m, where, "mask has a NaN");
      if (m != 0) pixels.push_back(long(iy) * nx + ix);
    }
  check_argument(!pixels.empty(), where, "the mask selects no pixel (empty mask)");
  return pixels;
}

// Sparse matrix of the "same"-size direct convolution with `kernel` on an
// ny x nx image, out(i, j) = sum_{a,b} K(R + a, R + b) in(i - a, j - b) (zero
// outside), restricted to the output pixels `rows` (all pixels if empty).
template <class KScalar>
Eigen::SparseMatrix<double> convolution_matrix(PsfKernel<KScalar> const& kernel, int ny, int nx,
                                               std::vector<long> const& rows) {
  long const n = long(ny) * nx;
  long const nrows = rows.empty() ? n : long(rows.size());
  int const r = kernel.radius();
  std::vector<Eigen::Triplet<double>> t;
  t.reserve(std::size_t(nrows) * kernel.size * kernel.size);
  for (long row = 0; row < nrows; ++row) {
    long const p = rows.empty() ? row : rows[std::size_t(row)];
    int const iy = int(p / nx), ix = int(p % nx);
    for (int a = -r; a <= r; ++a) {
      int const jy = iy - a;
      if (jy < 0 || jy >= ny) continue;
      for (int b = -r; b <= r; ++b) {
        int const jx = ix - b;
        if (jx < 0 || jx >= nx) continue;
        double const w = double(kernel(r + a, r + b));
        if (w != 0) t.emplace_back(row, long(jy) * nx + jx, w);
      }
    }
  }
  Eigen::SparseMatrix<double> m(nrows, n);
  m.setFromTriplets(t.begin(), t.end());
  return m;
}

// Selection of the rows `rows` of an n-vector.
inline Eigen::SparseMatrix<double> selection_matrix(std::vector<long> const& rows, long n) {
  std::vector<Eigen::Triplet<double>> t;
  t.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r)
    t.emplace_back(long(r), rows[r], 1.0);
  Eigen::SparseMatrix<double> m(long(rows.size()), n);
  m.setFromTriplets(t.begin(), t.end());
  return m;
}
}  // namespace detail

/// Builds the LensingOperator of `lens` (any MassProfile) for the image grid
/// `image_grid` (with its supersampling k), the pixels where `mask` (rank-2
/// view (ny, nx), any memory space and arithmetic type) is nonzero, and the
/// regular `source_grid` (its supersampling is ignored).  `psf` is the PSF
/// kernel (size 0, `PsfKernel<double>{}`, for none), sampled at the pixel
/// scale for PsfSampling::binned and at pixel_scale / k for supersampled.
///
/// The rays are shot on `space` (ray_shoot into a View of its memory
/// space); the matrix is assembled on the host from triplets (duplicates
/// summed), the PSF applied as a sparse product with the convolution matrix
/// of the masked rows.  Cost: fine_ny fine_nx (2 or 4)^2 weights, plus the
/// product with the (mask rows x pixels, (2R+1)^2 per row) PSF matrix.
/// Throws std::invalid_argument for an empty mask, a mask of the wrong
/// extents, an even or non-square kernel, or bad lens parameters.
template <class ExecutionSpace, class Lens, class Mask, class KScalar = double>
LensingOperator<typename Lens::scalar_type> lensing_operator(ExecutionSpace const& space, Lens const& lens,
                                                             PixelGrid<typename Lens::scalar_type> const& image_grid,
                                                             PixelGrid<typename Lens::scalar_type> const& source_grid,
                                                             Mask const& mask,
                                                             PsfKernel<KScalar> const& psf = PsfKernel<KScalar>{},
                                                             LensingOperatorOptions const& options = {}) {
  using Scalar = typename Lens::scalar_type;
  using Memory = typename ExecutionSpace::memory_space;
  constexpr char const* where = "lensing::lensing_operator";
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::lensing_operator: first argument must be a Kokkos execution space");
  static_assert(is_lens_v<Lens>, "lensing::lensing_operator: the lens must be a MassProfile");
  check_argument(source_grid.nx() > 0 && source_grid.ny() > 0, where, "empty source grid");
  check_argument(image_grid.nx() > 0 && image_grid.ny() > 0, where, "empty image grid");
  check_argument(options.psf_sampling == PsfSampling::binned || options.psf_sampling == PsfSampling::supersampled,
                 where, "unknown PsfSampling");
  bool const has_psf = psf.size > 0;
  if (has_psf)
    check_argument(psf.size % 2 == 1 && psf.values.size() == std::size_t(psf.size) * psf.size, where,
                   "the PSF kernel must be odd-sized and square (build it with lensing::pixel_kernel)");
  check_model(lens);
  int const ny = image_grid.ny(), nx = image_grid.nx(), k = image_grid.supersampling();
  int const fny = image_grid.fine_ny(), fnx = image_grid.fine_nx();
  LensingOperator<Scalar> op;
  op.image_grid = image_grid;
  op.source_grid = source_grid;
  op.pixels = detail::mask_pixels(where, mask, ny, nx);

  // Ray shooting on the execution space, then the weights on the host.
  View2D<Scalar, Memory> bx("lensing::lensing_operator::beta_x", fny, fnx),
      by("lensing::lensing_operator::beta_y", fny, fnx);
  ray_shoot(space, lens, image_grid, bx, by);
  space.fence();
  auto const hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), bx);
  auto const hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), by);
  PixelatedSource<Scalar> const interp{nullptr, source_grid, options.interpolation};  // weights only
  int const sny = source_grid.ny(), snx = source_grid.nx();
  long const nsrc = source_grid.num_pixels();
  // Same pixel-area weight as the forward model (Renderer: A_pix / k^2 in Scalar).
  double const wbin = double(image_grid.pixel_scale() * image_grid.pixel_scale() / Scalar(k * k));
  int const taps = options.interpolation == Interpolation::bilinear ? 4 : 16;
  bool const fine_psf = has_psf && options.psf_sampling == PsfSampling::supersampled && k > 1;

  std::vector<Eigen::Triplet<double>> t;
  if (!fine_psf) {
    // B = Bin · W on every image pixel (the PSF needs the unmasked neighbours);
    // without a PSF only the masked pixels.
    std::vector<long> const all = has_psf ? std::vector<long>{} : op.pixels;
    long const nrows = has_psf ? long(ny) * nx : long(all.size());
    t.reserve(std::size_t(nrows) * k * k * taps);
    for (long row = 0; row < nrows; ++row) {
      long const p = has_psf ? row : all[std::size_t(row)];
      int const iy = int(p / nx), ix = int(p % nx);
      for (int sy = 0; sy < k; ++sy)
        for (int sx = 0; sx < k; ++sx) {
          int const fy = iy * k + sy, fx = ix * k + sx;
          interp.for_each_weight(hx(fy, fx), hy(fy, fx), [&](int jy, int jx, Scalar w, Scalar, Scalar) {
            if (jy >= 0 && jy < sny && jx >= 0 && jx < snx && w != Scalar(0))
              t.emplace_back(row, long(jy) * snx + jx, wbin * double(w));
          });
        }
    }
    Eigen::SparseMatrix<double> b(nrows, nsrc);
    b.setFromTriplets(t.begin(), t.end());
    if (has_psf)
      op.matrix = detail::convolution_matrix(psf, ny, nx, op.pixels) * b;
    else
      op.matrix = std::move(b);
  } else {
    // Supersampled PSF: W on every fine pixel, the fine convolution, then Bin.
    long const nfine = long(fny) * fnx;
    t.reserve(std::size_t(nfine) * taps);
    for (int fy = 0; fy < fny; ++fy)
      for (int fx = 0; fx < fnx; ++fx)
        interp.for_each_weight(hx(fy, fx), hy(fy, fx), [&](int jy, int jx, Scalar w, Scalar, Scalar) {
          if (jy >= 0 && jy < sny && jx >= 0 && jx < snx && w != Scalar(0))
            t.emplace_back(long(fy) * fnx + fx, long(jy) * snx + jx, double(w));
        });
    Eigen::SparseMatrix<double> w(nfine, nsrc);
    w.setFromTriplets(t.begin(), t.end());
    // Fine pixels needed: the sub-pixels of the masked pixels.
    std::vector<long> fine_rows;
    fine_rows.reserve(op.pixels.size() * std::size_t(k * k));
    std::vector<Eigen::Triplet<double>> tb;
    tb.reserve(op.pixels.size() * std::size_t(k * k));
    for (std::size_t r = 0; r < op.pixels.size(); ++r) {
      int const iy = int(op.pixels[r] / nx), ix = int(op.pixels[r] % nx);
      for (int sy = 0; sy < k; ++sy)
        for (int sx = 0; sx < k; ++sx) {
          tb.emplace_back(long(r), long(fine_rows.size()), wbin);
          fine_rows.push_back(long(iy * k + sy) * fnx + (ix * k + sx));
        }
    }
    Eigen::SparseMatrix<double> bin(long(op.pixels.size()), long(fine_rows.size()));
    bin.setFromTriplets(tb.begin(), tb.end());
    Eigen::SparseMatrix<double> const pw = detail::convolution_matrix(psf, fny, fnx, fine_rows) * w;
    op.matrix = bin * pw;
  }
  op.matrix.makeCompressed();
  return op;
}

}  // namespace lensing

#endif  // LENSING_INVERSION_LENSING_OPERATOR_HPP
