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
