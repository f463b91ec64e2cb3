#ifndef LENSING_GEOMETRY_GRID_COORDINATES_HPP
#define LENSING_GEOMETRY_GRID_COORDINATES_HPP

#include <lensing/core/parallel.hpp>
#include <lensing/core/views.hpp>
#include <lensing/geometry/pixel_grid.hpp>

namespace lensing {

/// Fill x(jy, jx) and y(jy, jx) with the sky coordinates (arcsec) of every
/// fine-grid (supersampled) pixel centre of `grid`, on `space`.
///
/// x and y are rank-2 views of extent (grid.fine_ny(), grid.fine_nx()),
/// writable from `space`.  Asynchronous: fence `space` before reading on the host.
/// Floor: no arithmetic to speak of; 2*sizeof(Scalar) bytes written per
/// fine pixel, so it runs at the memory write bandwidth.
template <class ExecutionSpace, class Scalar, class ViewX, class ViewY>
void grid_coordinates(ExecutionSpace const& space, PixelGrid<Scalar> const& grid, ViewX const& x, ViewY const& y) {
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::grid_coordinates: first argument must be a Kokkos execution space instance");
  static_assert(Kokkos::is_view<ViewX>::value && Kokkos::is_view<ViewY>::value,
                "lensing::grid_coordinates: x and y must be Kokkos::Views");
  static_assert(ViewX::rank == 2 && ViewY::rank == 2,
                "lensing::grid_coordinates: x and y must be rank-2 views (iy, ix)");
  static_assert(std::is_same<typename ViewX::non_const_value_type, Scalar>::value &&
                    std::is_same<typename ViewX::value_type, Scalar>::value &&
                    std::is_same<typename ViewY::value_type, Scalar>::value,
                "lensing::grid_coordinates: x and y must hold the grid's (non-const) Scalar");
  static_assert(is_accessible_from_v<ExecutionSpace, typename ViewX::memory_space> &&
                    is_accessible_from_v<ExecutionSpace, typename ViewY::memory_space>,
                "lensing::grid_coordinates: x and y must be accessible from the execution space");
  constexpr char const* where = "lensing::grid_coordinates";
  int const nyf = grid.fine_ny(), nxf = grid.fine_nx();
  check_extents(x, where, "x", "(fine_ny, fine_nx)", nyf, nxf);
  check_extents(y, where, "y", "(fine_ny, fine_nx)", nyf, nxf);
  parallel_for_pixels(
      "lensing::geometry::grid_coordinates", space, nyf, nxf, KOKKOS_LAMBDA(int jy, int jx) {
        x(jy, jx) = grid.fine_x(jx);
        y(jy, jx) = grid.fine_y(jy);
      });
}

}  // namespace lensing

#endif  // LENSING_GEOMETRY_GRID_COORDINATES_HPP
