#ifndef LENSING_IO_XTENSOR_VIEWS_HPP
#define LENSING_IO_XTENSOR_VIEWS_HPP

/// \file
/// xtensor at the host data boundary: zero-copy adaptation between Kokkos
/// host Views and xtensor containers, both ways.
///
/// lensing computes on Kokkos Views; on the host side of a program (files,
/// label tables, analysis) xtensor's n-d arrays are the natural container:
/// broadcasting, slicing, reductions, and the xt::xarray / xt::xtensor types
/// the npy and FITS readers and writers accept (io/npy.hpp, io/fits.hpp).
/// The two adapters here share memory, they never copy:
///
///   - as_xtensor(view): an xt::xtensor_adaptor over the data of a host View
///     (rank N, row-major, shape = the View's extents).  The View (or its
///     allocation) must outlive the adaptor.  A View of const T gives a
///     read-only adaptor.
///   - as_host_view(e) / as_host_view<N>(e): an unmanaged
///     Kokkos::View<T*...*, LayoutRight, HostSpace> over the data of an
///     xtensor container (xt::xarray, xt::xtensor, an adaptor, or a strided
///     view whose memory happens to be contiguous).  The container must
///     outlive the View and must not be resized while it is in use.  For
///     xt::xtensor<T, N> the rank comes from the type; for xt::xarray, name it.
///
/// Both require contiguous row-major memory (what Kokkos::LayoutRight and
/// xtensor's default layout are).  A strided subview, a LayoutLeft View of
/// rank >= 2, a column-major xarray or a slice with gaps throws
/// std::invalid_argument naming the strides: copy it into a contiguous
/// container first (Kokkos::deep_copy into a LayoutRight View, or assign to
/// an xt::xarray<T>).  Host only: Views must be accessible from the host
/// (HostSpace, or CudaUVMSpace / CudaHostPinnedSpace after a fence).

#include <lensing/core/errors.hpp>

#include <Kokkos_Core.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

namespace lensing {
namespace io {

namespace detail {

/// T* ... * (N stars): the data type of a rank-N View.
template <class T, std::size_t N>
struct add_pointers {
  using type = typename add_pointers<T*, N - 1>::type;
};
template <class T>
struct add_pointers<T, 0> {
  using type = T;
};

/// "(a, b, c)" of a shape or stride sequence.
template <class Seq>
std::string xt_tuple_string(Seq const& s) {
  std::string out = "(";
  std::size_t i = 0;
  for (auto const v : s)
    out += (i++ ? ", " : "") + std::to_string(v);
  return out + ")";
}

/// True when `strides` (in elements) are those of contiguous row-major
/// memory of `shape`.  Extent-1 axes are skipped: their stride never moves
/// the pointer (xtensor stores 0 there, Kokkos a positive number).
template <class Shape, class Strides>
bool is_row_major_contiguous(Shape const& shape, Strides const& strides) {
  std::size_t expect = 1;
  for (std::size_t r = shape.size(); r-- > 0;) {
    if (shape[r] == 0) return true;  // empty: no element is ever addressed
    if (shape[r] != 1 && static_cast<std::ptrdiff_t>(strides[r]) != static_cast<std::ptrdiff_t>(expect)) return false;
    expect *= static_cast<std::size_t>(shape[r]);
  }
  return true;
}

/// The same test for an xtensor expression with a data interface.
template <class E>
bool xt_is_row_major_contiguous(E const& e) {
  return is_row_major_contiguous(e.shape(), e.strides());
}

/// The rank of an xtensor type whose rank is part of its type (xt::xtensor,
/// xtensor adaptors), or 0 for a dynamic rank (xt::xarray).
template <class Shape>
struct xt_static_rank : std::integral_constant<std::size_t, 0> {};
template <class I, std::size_t N>
struct xt_static_rank<std::array<I, N>> : std::integral_constant<std::size_t, N> {};

template <class View, std::size_t... I>
View make_unmanaged(typename View::pointer_type p, std::array<std::size_t, sizeof...(I)> const& n,
                    std::index_sequence<I...>) {
  return View(p, n[I]...);
}

}  // namespace detail

/// An xtensor adaptor over a host View's data, without copying: shape = the
/// View's extents, row-major.  `view` must be host-accessible, of rank >= 1,
/// and contiguous row-major (LayoutRight, rank-1 of any layout, or a
/// LayoutStride subview whose strides happen to be row-major contiguous);
/// otherwise std::invalid_argument.  The adaptor does not own the memory.
template <class View>
auto as_xtensor(View const& view) {
  static_assert(Kokkos::is_view<View>::value, "lensing::io::as_xtensor: argument must be a Kokkos::View");
  static_assert(View::rank >= 1, "lensing::io::as_xtensor: the view must have rank >= 1");
  static_assert(Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename View::memory_space>::accessible,
                "lensing::io::as_xtensor: the view must be host-accessible (use a host mirror)");
  constexpr std::size_t N = View::rank;
  std::array<std::size_t, N> shape;
  std::array<std::ptrdiff_t, N> strides;
  std::size_t size = 1;
  for (std::size_t r = 0; r < N; ++r) {
    shape[r] = view.extent(r);
    strides[r] = static_cast<std::ptrdiff_t>(view.stride(r));
    size *= shape[r];
  }
  check_argument(detail::is_row_major_contiguous(shape, strides), "lensing::io::as_xtensor",
                 "the view is not contiguous row-major (extents " + detail::xt_tuple_string(shape) + ", strides " +
                     detail::xt_tuple_string(strides) +
                     "): deep_copy it into a LayoutRight View first, or copy it into an xt::xarray");
  // view.data() is a prvalue: the adaptor stores the pointer itself (an
  // lvalue would be captured by reference).
  return xt::adapt(view.data(), size, xt::no_ownership(), shape);
}

/// An unmanaged rank-N LayoutRight host View over the data of an xtensor
/// container (or strided view with contiguous memory), without copying.
/// `e.dimension()` must be N and the memory contiguous row-major
/// (std::invalid_argument otherwise).  Through a const `e` the View is of
/// const T.  The container must outlive the View and keep its size.
template <std::size_t N, class E>
auto as_host_view(E& e) {
  static_assert(xt::has_data_interface<std::remove_const_t<E>>::value,
                "lensing::io::as_host_view: needs an xtensor container or strided view (with data()); "
                "evaluate an expression into an xt::xarray first");
  static_assert(N >= 1 && N <= 8, "lensing::io::as_host_view: rank must be 1 to 8 (Kokkos Views)");
  using T = std::conditional_t<std::is_const<E>::value, typename std::remove_const_t<E>::value_type const,
                               typename std::remove_const_t<E>::value_type>;
  using ViewType = Kokkos::View<typename detail::add_pointers<T, N>::type, Kokkos::LayoutRight, Kokkos::HostSpace,
                                Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  constexpr char const* where = "lensing::io::as_host_view";
  check_argument(e.dimension() == N, where,
                 "the xtensor array has rank " + std::to_string(e.dimension()) + " (shape " +
                     detail::xt_tuple_string(e.shape()) + "), the View rank " + std::to_string(N));
  check_argument(detail::xt_is_row_major_contiguous(e), where,
                 "the xtensor array is not contiguous row-major (shape " + detail::xt_tuple_string(e.shape()) +
                     ", strides " + detail::xt_tuple_string(e.strides()) +
                     "): copy it into an xt::xarray<T> (row_major) first");
  std::array<std::size_t, N> n;
  for (std::size_t r = 0; r < N; ++r)
    n[r] = static_cast<std::size_t>(e.shape()[r]);
  return detail::make_unmanaged<ViewType>(e.data() + e.data_offset(), n, std::make_index_sequence<N>());
}

/// As above, the rank taken from the type (xt::xtensor<T, N>, xtensor
/// adaptors of fixed rank).  For xt::xarray name the rank: as_host_view<2>(a).
template <class E, std::size_t N = detail::xt_static_rank<typename std::remove_const_t<E>::shape_type>::value,
          class = std::enable_if_t<(N > 0)>>
auto as_host_view(E& e) {
  return as_host_view<N>(e);
}

}  // namespace io
}  // namespace lensing

#endif  // LENSING_IO_XTENSOR_VIEWS_HPP
