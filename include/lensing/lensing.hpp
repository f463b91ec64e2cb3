#ifndef LENSING_LENSING_HPP
#define LENSING_LENSING_HPP

/// \file
/// Umbrella header: everything in lensing.  Prefer the individual headers in
/// your own code; they compile faster.

#include <lensing/core/errors.hpp>
#include <lensing/core/kokkos_compat.hpp>
#include <lensing/core/math.hpp>
#include <lensing/core/tuple.hpp>
#include <lensing/core/vec2.hpp>
#include <lensing/core/version.hpp>
#include <lensing/core/views.hpp>
#include <lensing/geometry/ellipticity.hpp>
#include <lensing/geometry/grid_coordinates.hpp>
#include <lensing/geometry/pixel_grid.hpp>

#endif  // LENSING_LENSING_HPP
