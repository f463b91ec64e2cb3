#ifndef LENSING_NN_GEMM_HPP
#define LENSING_NN_GEMM_HPP

/// \file
/// Row-major matrix product C = alpha op(A) op(B) + beta C, the hot path of
/// Dense and Conv2D (im2col).
///
/// Host spaces use Eigen's blocked, vectorised GEMM kernels.  lensing
/// parallelises over the Kokkos execution space itself (each thread calls a
/// single-threaded Eigen product on its block), so that a Serial instance
/// runs on one thread and an OpenMP instance on its own threads; for this the
/// header defines EIGEN_DONT_PARALLELIZE before including Eigen (include it
/// before any other Eigen header, or define that macro yourself).  Device
/// spaces use a plain Kokkos kernel (one thread per element of C).

#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Core>

#include <lensing/core/parallel.hpp>
#include <lensing/core/views.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <memory>
#include <stdexcept>

namespace lensing {
namespace nn {

namespace detail {

/// Single-threaded host GEMM on raw row-major arrays (Eigen).  beta == 0
/// overwrites C without reading it.
template <class Scalar>
void gemm_host(bool trans_a, bool trans_b, long m, long n, long k, Scalar alpha, Scalar const* a, long lda,
               Scalar const* b, long ldb, Scalar beta, Scalar* c, long ldc) {
  if (m <= 0 || n <= 0) return;
  using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::OuterStride<>;
  Eigen::Map<Mat, 0, Stride> cm(c, m, n, Stride(ldc));
  if (k <= 0) {
    if (beta == Scalar(0))
      cm.setZero();
    else
      cm *= beta;
    return;
  }
  Eigen::Map<Mat const, 0, Stride> am(a, trans_a ? k : m, trans_a ? m : k, Stride(lda));
  Eigen::Map<Mat const, 0, Stride> bm(b, trans_b ? n : k, trans_b ? k : n, Stride(ldb));
  auto run = [&](auto const& opa, auto const& opb) {
    if (beta == Scalar(0)) {
      cm.noalias() = alpha * (opa * opb);
    } else {
      if (beta != Scalar(1)) cm *= beta;
      cm.noalias() += alpha * (opa * opb);
    }
  };
  if (trans_a && trans_b)
    run(am.transpose(), bm.transpose());
  else if (trans_a)
    run(am.transpose(), bm);
  else if (trans_b)
    run(am, bm.transpose());
  else
    run(am, bm);
}

/// Whether gemm_host_offset_rows is available: it drives Eigen's packing
/// and block kernels itself (Eigen::internal, as of Eigen 3.4); with an
/// older Eigen the callers form the operand as a matrix (im2col) instead.
#if EIGEN_VERSION_AT_LEAST(3, 4, 0)
constexpr bool has_offset_rows_gemm = true;
#else
constexpr bool has_offset_rows_gemm = false;
#endif

/// A matrix R (rows x cols) whose row r is the contiguous range base +
/// offset[r] .. + cols (any offsets: the rows may overlap, as the rows of a
/// convolution's col over shifted copies of its input do), as an Eigen data
/// mapper.  Transposed = false: Eigen's element (i, j) is R(i, j) (a
/// "row-major" operand, packets along j); true: element (i, j) is R(j, i) (a
/// "column-major" operand, packets along i).  Only the members Eigen's
/// packing routines use.
template <class Scalar, bool Transposed>
struct OffsetRowsMapper {
  Scalar const* base;
  long const* offset;
  long i0, j0;
  struct LinearMapper {};  // named by Eigen's packers, not used
  Scalar const* at(long i, long j) const {
    return Transposed ? base + offset[j0 + j] + (i0 + i) : base + offset[i0 + i] + (j0 + j);
  }
  Scalar operator()(long i, long j) const { return *at(i, j); }
  template <class Packet>
  Packet loadPacket(long i, long j) const {
    return Eigen::internal::ploadu<Packet>(at(i, j));
  }
  OffsetRowsMapper getSubMapper(long i, long j) const { return {base, offset, i0 + i, j0 + j}; }
};

#if EIGEN_VERSION_AT_LEAST(3, 4, 0)
/// Eigen's sequential GEMM driver (general_matrix_matrix_product, Eigen
/// 3.4) with the left operand read through `lhs`: the column-major product
/// C (rows x cols, ldc) += L (rows x depth) · B (depth x cols, column-major,
/// ldb).  The same blocking, packing and kernel as Eigen's own product, so
/// the same values bit for bit as forming L and multiplying.
template <int LhsOrder, class Scalar, class LhsMapper>
void gemm_host_mapped(long rows, long cols, long depth, LhsMapper const& lhs, Scalar const* b, long ldb, Scalar* c,
                      long ldc) {
  namespace ei = Eigen::internal;
  using Traits = ei::gebp_traits<Scalar, Scalar>;
  using RhsMapper = ei::const_blas_data_mapper<Scalar, long, Eigen::ColMajor>;
  using ResMapper = ei::blas_data_mapper<Scalar, long, Eigen::ColMajor>;
  long kc = depth, mc = rows, nc = cols;
  ei::computeProductBlockingSizes<Scalar, Scalar, 1>(kc, mc, nc, 1L);
  mc = std::min(rows, mc);
  nc = std::min(cols, nc);
  struct Free {
    void operator()(Scalar* q) const { ei::aligned_free(q); }
  };
  std::unique_ptr<Scalar, Free> const block_a(static_cast<Scalar*>(ei::aligned_malloc(sizeof(Scalar) * kc * mc)));
  std::unique_ptr<Scalar, Free> const block_b(static_cast<Scalar*>(ei::aligned_malloc(sizeof(Scalar) * kc * nc)));
  ei::gemm_pack_lhs<Scalar, long, LhsMapper, Traits::mr, Traits::LhsProgress, typename Traits::LhsPacket4Packing,
                    LhsOrder>
      pack_lhs;
  ei::gemm_pack_rhs<Scalar, long, RhsMapper, Traits::nr, Eigen::ColMajor> pack_rhs;
  ei::gebp_kernel<Scalar, Scalar, long, ResMapper, Traits::mr, Traits::nr, false, false> gebp;
  RhsMapper const rhs(b, ldb);
  ResMapper const res(c, ldc);
  bool const pack_rhs_once = mc != rows && kc == depth && nc == cols;
  for (long i2 = 0; i2 < rows; i2 += mc) {
    long const amc = std::min(i2 + mc, rows) - i2;
    for (long k2 = 0; k2 < depth; k2 += kc) {
      long const akc = std::min(k2 + kc, depth) - k2;
      pack_lhs(block_a.get(), lhs.getSubMapper(i2, k2), akc, amc);
      for (long j2 = 0; j2 < cols; j2 += nc) {
        long const anc = std::min(j2 + nc, cols) - j2;
        if (!pack_rhs_once || i2 == 0) pack_rhs(block_b.get(), rhs.getSubMapper(k2, j2), akc, anc);
        gebp(res.getSubMapper(i2, j2), block_a.get(), block_b.get(), amc, akc, anc, Scalar(1));
      }
    }
  }
}
#endif

/// Single-threaded host products with one operand R given by row offsets
/// (OffsetRowsMapper: row r of R is base[offset[r] .. + len)), row-major
/// raw arrays otherwise, accumulating into C (beta = 1):
///   trans_r = false: C (m x n) += A (m x k) · R (k x n);
///   trans_r = true:  C (m x k) += A (m x n) · Rᵀ (R: k x n).
/// The values of gemm_host on R formed as a matrix, bit for bit (the same
/// Eigen kernels on the same packed blocks), without forming it: a
/// convolution's col read straight from shifted copies of its input.
/// Requires has_offset_rows_gemm.
template <class Scalar>
void gemm_host_offset_rows(bool trans_r, long m, long n, long k, Scalar const* a, long lda, Scalar const* base,
                           long const* offset, Scalar* c, long ldc) {
  if (m <= 0 || n <= 0 || k <= 0) return;
#if EIGEN_VERSION_AT_LEAST(3, 4, 0)
  // Row-major C = Cᵀ column-major: Cᵀ += Rᵀ Aᵀ (n x m), or Cᵀ += R Aᵀ (k x m);
  // Aᵀ is A's row-major storage read column-major, as Eigen does for row-major products.
  if (trans_r)
    gemm_host_mapped<Eigen::RowMajor>(k, m, n, OffsetRowsMapper<Scalar, false>{base, offset, 0, 0}, a, lda, c, ldc);
  else
    gemm_host_mapped<Eigen::ColMajor>(n, m, k, OffsetRowsMapper<Scalar, true>{base, offset, 0, 0}, a, lda, c, ldc);
#else
  (void)trans_r, (void)lda, (void)base, (void)offset, (void)ldc;
  throw std::logic_error("lensing::nn::detail::gemm_host_offset_rows: needs Eigen 3.4");
#endif
}

}  // namespace detail

/// C(m x n) = alpha op(A) op(B) + beta C on `space`, row-major raw arrays in
/// the space's memory; op(A) is m x k (A stored k x m when trans_a), op(B)
/// is k x n (B stored n x k when trans_b); lda, ldb, ldc are row strides.
/// Host: the larger of m and n is split into one block per thread of
/// `space`, each an Eigen product.  Fences `space` on return (host).
template <class ExecutionSpace, class Scalar>
void gemm(ExecutionSpace const& space, bool trans_a, bool trans_b, long m, long n, long k, Scalar alpha,
          Scalar const* a, long lda, Scalar const* b, long ldb, Scalar beta, Scalar* c, long ldc) {
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::nn::gemm: the first argument must be a Kokkos execution space");
  if (m <= 0 || n <= 0) return;
  if constexpr (lensing::detail::is_host_space_v<ExecutionSpace>) {
    space.fence();  // inputs written by earlier kernels on `space`
    long const threads = std::max(1, space.concurrency());
    // Blocks of at least ~32k multiply-adds so small products stay on one thread.
    long const work = m * n * std::max(k, 1L);
    long const chunks = std::max(1L, std::min(threads, work / 32768));
    if (chunks == 1) {
      detail::gemm_host(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
    bool const split_m = m >= n;
    long const len = split_m ? m : n;
    Kokkos::parallel_for("lensing::nn::gemm", Kokkos::RangePolicy<ExecutionSpace>(space, 0, chunks), [=](long t) {
      long const lo = len * t / chunks, hi = len * (t + 1) / chunks;
      if (split_m) {
        Scalar const* at = trans_a ? a + lo : a + lo * lda;
        detail::gemm_host(trans_a, trans_b, hi - lo, n, k, alpha, at, lda, b, ldb, beta, c + lo * ldc, ldc);
      } else {
        Scalar const* bt = trans_b ? b + lo * ldb : b + lo;
        detail::gemm_host(trans_a, trans_b, m, hi - lo, k, alpha, a, lda, bt, ldb, beta, c + lo, ldc);
      }
    });
    space.fence();
  } else {
    Kokkos::parallel_for(
        "lensing::nn::gemm", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, m * n),
        KOKKOS_LAMBDA(long idx) {
          long const i = idx / n, j = idx % n;
          Scalar s = Scalar(0);
          for (long p = 0; p < k; ++p) {
            Scalar const av = trans_a ? a[p * lda + i] : a[i * lda + p];
            Scalar const bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
            s += av * bv;
          }
          c[i * ldc + j] = beta == Scalar(0) ? alpha * s : alpha * s + beta * c[i * ldc + j];
        });
  }
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_GEMM_HPP
