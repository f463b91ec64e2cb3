#ifndef LENSING_CORE_KOKKOS_COMPAT_HPP
#define LENSING_CORE_KOKKOS_COMPAT_HPP

/// \file
/// The one place where differences between Kokkos versions are handled.
///
/// lensing builds against Kokkos 3.4.1 (what Debian bookworm can provide) and
/// keeps to APIs that still exist in Kokkos 4.x.  Everything that moved between
/// those versions is named here once, and the rest of the library uses the
/// names below:
///  - mathematical functions: `Kokkos::Experimental::sqrt` (3.4 - 3.6) became
///    `Kokkos::sqrt` (3.7+); lensing code calls `lensing::math::sqrt`
///    (core/math.hpp), which forwards to whichever exists.
///
/// Only `Kokkos_Macros.hpp`-level headers are included so that value types
/// (profiles, light sources) stay cheap to compile.

#include <Kokkos_Macros.hpp>
#include <Kokkos_MathematicalFunctions.hpp>

#ifndef KOKKOS_VERSION
#error "lensing: KOKKOS_VERSION is not defined; lensing needs Kokkos >= 3.4"
#endif
#if KOKKOS_VERSION < 30400
#error "lensing: Kokkos >= 3.4 is required"
#endif

/// Kokkos version as MAJOR*10000 + MINOR*100 + PATCH (e.g. 30401).
#define LENSING_KOKKOS_VERSION KOKKOS_VERSION

namespace lensing {
namespace compat {

//----------------------------------------------------------------------------
// Mathematical functions.
#if KOKKOS_VERSION >= 30700
namespace kmath = ::Kokkos;
#else
namespace kmath = ::Kokkos::Experimental;
#endif

}  // namespace compat
}  // namespace lensing

//----------------------------------------------------------------------------
// Vector math on the host.  GCC vectorises a loop that calls a libm function
// only if that function is declared with a SIMD variant; glibc (>= 2.35 ships
// libmvec variants of these, accurate to 4 ulp) declares them only under
// -ffast-math, which lensing never uses (it breaks NaN handling).  Declaring
// the variants here lets the pixel loops vectorise with exact IEEE semantics
// otherwise.  Linking needs nothing more: Debian's libm.so pulls in libmvec.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && !defined(__FAST_MATH__) && \
    defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35)) &&          \
    !defined(LENSING_NO_LIBMVEC) && defined(__x86_64__)
#include <cmath>
#define LENSING_HAVE_LIBMVEC 1
#define LENSING_SIMD_UNARY(fn)                                     \
  __attribute__((simd("notinbranch"))) double fn(double) noexcept; \
  __attribute__((simd("notinbranch"))) float fn##f(float) noexcept;
#define LENSING_SIMD_BINARY(fn)                                            \
  __attribute__((simd("notinbranch"))) double fn(double, double) noexcept; \
  __attribute__((simd("notinbranch"))) float fn##f(float, float) noexcept;
extern "C" {
LENSING_SIMD_UNARY(acos)
LENSING_SIMD_UNARY(acosh)
LENSING_SIMD_UNARY(asin)
LENSING_SIMD_UNARY(asinh)
LENSING_SIMD_UNARY(atan)
LENSING_SIMD_UNARY(atanh)
LENSING_SIMD_UNARY(cbrt)
LENSING_SIMD_UNARY(cos)
LENSING_SIMD_UNARY(cosh)
LENSING_SIMD_UNARY(erf)
LENSING_SIMD_UNARY(erfc)
LENSING_SIMD_UNARY(exp)
LENSING_SIMD_UNARY(exp2)
LENSING_SIMD_UNARY(expm1)
LENSING_SIMD_UNARY(log)
LENSING_SIMD_UNARY(log10)
LENSING_SIMD_UNARY(log1p)
LENSING_SIMD_UNARY(log2)
LENSING_SIMD_UNARY(sin)
LENSING_SIMD_UNARY(sinh)
LENSING_SIMD_UNARY(tan)
LENSING_SIMD_UNARY(tanh)
LENSING_SIMD_BINARY(atan2)
LENSING_SIMD_BINARY(hypot)
LENSING_SIMD_BINARY(pow)
}
#undef LENSING_SIMD_UNARY
#undef LENSING_SIMD_BINARY
#endif

#endif  // LENSING_CORE_KOKKOS_COMPAT_HPP
