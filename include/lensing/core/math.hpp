#ifndef LENSING_CORE_MATH_HPP
#define LENSING_CORE_MATH_HPP

/// \file
/// lensing's scalar math layer, usable on the host and inside device kernels.
///
/// Every kernel calls `lensing::math::fn` (always fully qualified: an unqualified
/// `sqrt(double)` would be ambiguous with the C library's).  On the host these
/// forward to the C++ standard library (and vectorise when compiled with
/// `-fno-math-errno`, which the `lensing::lensing` target adds); on CUDA to the
/// device intrinsics, through Kokkos.  The version-dependent Kokkos namespace
/// is resolved in core/kokkos_compat.hpp.

#include <lensing/core/kokkos_compat.hpp>

#include <cstdint>
#include <type_traits>

namespace lensing {
namespace math {

//----------------------------------------------------------------------------
// Forwarded functions (float and double overloads).
using compat::kmath::acos;
using compat::kmath::acosh;
using compat::kmath::asin;
using compat::kmath::asinh;
using compat::kmath::atan;
using compat::kmath::atan2;
using compat::kmath::atanh;
using compat::kmath::cbrt;
using compat::kmath::ceil;
using compat::kmath::cos;
using compat::kmath::cosh;
using compat::kmath::erf;
using compat::kmath::erfc;
using compat::kmath::exp;
using compat::kmath::expm1;
using compat::kmath::fabs;
using compat::kmath::floor;
using compat::kmath::fmax;
using compat::kmath::fmin;
using compat::kmath::hypot;
using compat::kmath::isfinite;
using compat::kmath::isinf;
using compat::kmath::isnan;
using compat::kmath::lgamma;
using compat::kmath::log;
using compat::kmath::log1p;
using compat::kmath::pow;
using compat::kmath::sin;
using compat::kmath::sinh;
using compat::kmath::sqrt;
using compat::kmath::tan;
using compat::kmath::tanh;
using compat::kmath::tgamma;

//----------------------------------------------------------------------------
// Constants and small helpers.

/// pi in the requested precision.
template <class Scalar>
constexpr Scalar pi = Scalar(3.141592653589793238462643383279502884L);

/// x * x.
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION constexpr Scalar square(Scalar x) {
  return x * x;
}

/// c ? a : b, evaluated as a select of values (both arguments are already
/// computed): in a pixel loop it stays a vector blend.  GCC turns a plain ?:
/// into control flow when an arm is used only by it (it sinks that arm's
/// computation into a branch), and a constant arm (the bound of a clamp,
/// min(t, 0)) is propagated by partial-redundancy elimination into the
/// arithmetic after it, which splits that arithmetic into two arms; without
/// vector masks (AVX-512) or -fno-trapping-math, which lensing does not use
/// (CMakeLists.txt), GCC does not convert such branches back, so on AVX2
/// hosts those pixel loops ran scalar.  On GCC (11+) hosts float and double select
/// by bit masks, which neither pass looks through (the same value, NaN
/// payloads and signed zeros included); elsewhere and for other types (duals,
/// integers) it is ?:.  Both arms are computed: each must be valid (no 0/0 in
/// the arm not taken; the tests trap FE_INVALID).
template <class T>
KOKKOS_FORCEINLINE_FUNCTION constexpr T select(bool c, T a, T b) {
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && !defined(__CUDACC__) && !defined(__CUDA_ARCH__)
  if constexpr (std::is_same<T, float>::value || std::is_same<T, double>::value) {
    using Bits = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;
    Bits const m = Bits(0) - Bits(c);
    return __builtin_bit_cast(T, (__builtin_bit_cast(Bits, a) & m) | (__builtin_bit_cast(Bits, b) & ~m));
  }
#endif
  return c ? a : b;
}

/// Smaller of two values (kernel-safe; std::min is not on every device); a
/// select (above), so a constant bound does not split the code after it.
template <class T>
KOKKOS_FORCEINLINE_FUNCTION constexpr T min(T a, T b) {
  return select(b < a, b, a);
}

/// Larger of two values.
template <class T>
KOKKOS_FORCEINLINE_FUNCTION constexpr T max(T a, T b) {
  return select(a < b, b, a);
}

/// x limited to [lo, hi] (requires lo <= hi).
template <class T>
KOKKOS_FORCEINLINE_FUNCTION constexpr T clamp(T x, T lo, T hi) {
  return select(x < lo, lo, select(hi < x, hi, x));
}

}  // namespace math
}  // namespace lensing

// Dual-number overloads of the functions above: declared here so that every
// kernel template (which names lensing::math::fn qualified, bound where it is
// defined) also runs on duals (core/dual.hpp).
#include <lensing/core/dual.hpp>

namespace lensing {
namespace math {

/// log1p(u), u > -1, from one logarithm and no division (a vector log costs
/// 0.7x a vector log1p on AVX2 hosts, and a division would add its latency):
///   log1p(u) = log(w) + log(1 + c/w) ≈ log(w) + c (2 - w)⁺,  w = fl(1 + u),  c = u - (w - 1).
/// c is the rounding error of w, exact for |u| <= 1 (Fast2Sum), |c| <= ulp(w)/2.
/// Error of the correction term against c/w: |c| (1 - w)²/w for 0 < w < 2, at
/// most ε |log1p(u)|; for w >= 2 it is dropped, |c|/w <= ε/2 against
/// log w >= 0.69.  Total: the log's own error plus one ulp.  |u| below half an
/// ulp (w = 1) gives u exactly.  Defined after the Dual overloads so that it
/// also runs on duals (tangent du/w: relative error ε).
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION Scalar log1p_from_log(Scalar u) {
  Scalar const w = Scalar(1) + u, c = u - (w - Scalar(1));
  return log(w) + c * max(Scalar(2) - w, Scalar(0));
}

}  // namespace math
}  // namespace lensing

#endif  // LENSING_CORE_MATH_HPP
