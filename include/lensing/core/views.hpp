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

#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

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

namespace detail {
// "(a, b, c)".
template <class... Extents>
std::string extents_string(Extents... extents) {
  std::string s = "(";
  bool first = true;
  ((s += (first ? "" : ", ") + std::to_string(extents), first = false), ...);
  return s + ")";
}
}  // namespace detail

/// Number of elements of an array with these extents, and a check that it
/// and its size in bytes (`bytes_per_element` each) fit in 64 bits.  Throws
/// std::invalid_argument for a negative extent and std::length_error
/// ("<where>: ...") when the product overflows; `what` names the array.
template <class... Extents>
std::size_t checked_element_count(char const* where, char const* what, std::size_t bytes_per_element,
                                  Extents... extents) {
  static_assert((std::is_integral<Extents>::value && ...), "lensing::checked_element_count: integer extents");
  bool negative = false;
  ((negative = negative || (std::is_signed<Extents>::value && extents < Extents(0))), ...);
  if (negative)
    throw std::invalid_argument(std::string(where) + ": " + what + " cannot have a negative extent " +
                                detail::extents_string(extents...));
  std::size_t count = 1;
  bool overflow = false;
  // Unsigned 64-bit multiplication, each step checked (no UB on overflow).
  auto const mul = [&](std::size_t e) {
    if (e != 0 && count > std::numeric_limits<std::size_t>::max() / e) overflow = true;
    count *= e;
  };
  (mul(static_cast<std::size_t>(extents)), ...);
  if (!overflow && bytes_per_element != 0 && count > std::numeric_limits<std::size_t>::max() / bytes_per_element)
    overflow = true;
  if (overflow)
    throw std::length_error(std::string(where) + ": " + what + " of extents " + detail::extents_string(extents...) +
                            " has more elements than 64-bit sizes can count");
  return count;
}

/// Allocate `ViewType(label, extents...)` (zero-filled, or uninitialised with
/// `initialize = false`) after checking that the View can hold that many
/// elements.  Kokkos 3.4.1 computes the span of a rank >= 3 LayoutRight View
/// in 32 bits: with extents (1024, 2048, 2048) the span is 0, the allocation
/// "succeeds" with 0 bytes and the first kernel writes out of bounds.  So the
/// span of an unallocated View of the same type and extents is compared with
/// the element count (computed with overflow-checked 64-bit products) first,
/// and std::length_error("<where>: ...") is thrown before anything is
/// allocated when they differ.  Use it for every View whose extents come
/// from user input.
template <class ViewType, class... Extents>
ViewType allocate_view(char const* where, std::string const& label, bool initialize, Extents... extents) {
  static_assert(Kokkos::is_view<ViewType>::value, "lensing::allocate_view: ViewType must be a Kokkos::View");
  static_assert(sizeof...(Extents) == ViewType::rank, "lensing::allocate_view: one extent per dimension");
  using value_type = typename ViewType::non_const_value_type;
  std::size_t const count = checked_element_count(where, label.c_str(), sizeof(value_type), extents...);
  auto const fail = [&](std::size_t span) {
    throw std::length_error(std::string(where) + ": " + label + " of extents " + detail::extents_string(extents...) +
                            " has " + std::to_string(count) + " elements, but Kokkos computes a span of " +
                            std::to_string(span) + " (its index arithmetic overflows); use smaller sizes");
  };
  {
    // A View built on a null pointer is unmanaged: its span comes from the
    // same index map as an allocation's, without allocating.
    ViewType const probe(static_cast<typename ViewType::pointer_type>(nullptr), static_cast<std::size_t>(extents)...);
    if (probe.span() != count) fail(probe.span());
  }
  ViewType v = initialize ? ViewType(Kokkos::view_alloc(label), static_cast<std::size_t>(extents)...)
                          : ViewType(Kokkos::view_alloc(Kokkos::WithoutInitializing, label),
                                     static_cast<std::size_t>(extents)...);
  if (v.span() != count) fail(v.span());  // padding or layout surprises
  return v;
}

}  // namespace lensing

#endif  // LENSING_CORE_VIEWS_HPP
