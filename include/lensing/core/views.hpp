#ifndef LENSING_CORE_VIEWS_HPP
#define LENSING_CORE_VIEWS_HPP

/// \file
/// View aliases used across lensing, and the accessibility check that public
/// entry points make with `static_assert`.
///
/// Images are row-major, `image(iy, ix)`, so every multi-dimensional alias uses
/// `Kokkos::LayoutRight` whatever the memory space: the layout of a file on
/// disk, of a host array and of a device array is then the same.

#include <Kokkos_Core.hpp>

namespace lensing {

/// 1-D array, e.g. a flat parameter vector.
template <class T, class MemorySpace>
using View1D = Kokkos::View<T*, Kokkos::LayoutRight, MemorySpace>;
/// 2-D row-major array, e.g. an image (iy, ix).
template <class T, class MemorySpace>
using View2D = Kokkos::View<T**, Kokkos::LayoutRight, MemorySpace>;
/// 3-D row-major array, e.g. a batch of images (n, iy, ix).
template <class T, class MemorySpace>
using View3D = Kokkos::View<T***, Kokkos::LayoutRight, MemorySpace>;
/// 4-D row-major array, e.g. an NCHW tensor.
template <class T, class MemorySpace>
using View4D = Kokkos::View<T****, Kokkos::LayoutRight, MemorySpace>;

/// Whether kernels of ExecutionSpace may read and write memory of MemorySpace.
template <class ExecutionSpace, class MemorySpace>
constexpr bool is_accessible_from_v = Kokkos::SpaceAccessibility<ExecutionSpace, MemorySpace>::accessible;

/// Whether T is a Kokkos execution space (for readable static_asserts).
template <class T>
constexpr bool is_execution_space_v = Kokkos::is_execution_space<T>::value;

}  // namespace lensing

#endif  // LENSING_CORE_VIEWS_HPP
