#include "instantiate.hpp"

#include <lensing/core/views.hpp>
#include <lensing/geometry/grid_coordinates.hpp>

LENSING_INSTANTIATE(instantiate_geometry) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using Space = std::decay_t<decltype(space)>;
    using Scalar = decltype(scalar);
    auto const grid = lensing::PixelGrid<Scalar>::square(4, Scalar(0.1), 2);
    lensing::View2D<Scalar, typename Space::memory_space> x("x", 8, 8), y("y", 8, 8);
    lensing::grid_coordinates(space, grid, x, y);
    space.fence();
  });
}
