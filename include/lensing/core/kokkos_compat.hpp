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

#endif  // LENSING_CORE_KOKKOS_COMPAT_HPP
