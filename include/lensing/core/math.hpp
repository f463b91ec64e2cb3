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

/// Smaller of two values (kernel-safe; std::min is not on every device).
template <class T>
KOKKOS_FORCEINLINE_FUNCTION constexpr T min(T a, T b) {
  return b < a ? b : a;
}

/// Larger of two values.
template <class T>
KOKKOS_FORCEINLINE_FUNCTION constexpr T max(T a, T b) {
  return a < b ? b : a;
}

/// x limited to [lo, hi] (requires lo <= hi).
template <class T>
KOKKOS_FORCEINLINE_FUNCTION constexpr T clamp(T x, T lo, T hi) {
  return x < lo ? lo : (hi < x ? hi : x);
}

}  // namespace math
}  // namespace lensing

// Dual-number overloads of the functions above: declared here so that every
// kernel template (which names lensing::math::fn qualified, bound where it is
// defined) also runs on duals (core/dual.hpp).
#include <lensing/core/dual.hpp>

#endif  // LENSING_CORE_MATH_HPP
