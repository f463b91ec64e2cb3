#ifndef LENSING_PSF_PSF_OPERATOR_HPP
#define LENSING_PSF_PSF_OPERATOR_HPP

/// \file
/// The PsfOperator concept: what an Observation (model/observation.hpp)
/// needs from a PSF, and the compile-time check.
///
/// A PsfOperator is a linear map B on images of one shape and its exact
/// transpose, applied on an execution space to rank-2 views (iy, ix) of the
/// observation's scalar in its memory space (GaussianFilter, DirectConvolution,
/// FftConvolution, NoPsf):
/// \code
/// struct MyPsf {
///   // out = B in, and out = B^T in; in and out are different views of the
///   // operator's extents.  May launch kernels on `space` (asynchronously).
///   template <class ExecutionSpace, class In, class Out>
///   void apply(ExecutionSpace const& space, In const& in, Out const& out) const;
///   template <class ExecutionSpace, class In, class Out>
///   void apply_adjoint(ExecutionSpace const& space, In const& in, Out const& out) const;
///
///   // Optional: the image extents it acts on (an Observation checks them
///   // against its grid), the scalar and memory space it was built for (must
///   // then be the observation's), and an independent copy with its own work
///   // buffers for use from another thread (Observation::clone()).
///   int ny() const;
///   int nx() const;
///   using scalar_type = Scalar;
///   using memory_space = MemorySpace;
///   MyPsf clone() const;
///
///   // Optional: true when apply and apply_adjoint also take rank-3 batches
///   // (n, ny, nx) of images, each mapped independently (as the same call on
///   // each image alone); absent or false, callers loop over the images.
///   static constexpr bool accepts_batches = true;
/// };
/// \endcode
/// `is_psf_operator_v<Psf, Scalar, MemorySpace>` tests apply and
/// apply_adjoint for View2D<Scalar, MemorySpace> on the memory space's
/// execution space; `check_psf_operator<Psf, Scalar, MemorySpace>()` names
/// each missing requirement.  `psf_accepts_batches_v<Psf>` reads the
/// optional accepts_batches flag: a declaration, not a detection, because
/// apply is a template whose rank checks fire only when it is instantiated.

#include <lensing/core/views.hpp>

#include <type_traits>
#include <utility>

namespace lensing {

namespace detail {
template <class Psf, class = void>
struct has_psf_extents : std::false_type {};
template <class Psf>
struct has_psf_extents<Psf,
                       std::enable_if_t<std::is_convertible<decltype(std::declval<Psf const&>().ny()), int>::value &&
                                        std::is_convertible<decltype(std::declval<Psf const&>().nx()), int>::value>>
    : std::true_type {};

template <class Psf, class = void>
struct has_psf_clone : std::false_type {};
template <class Psf>
struct has_psf_clone<Psf, std::enable_if_t<std::is_same<decltype(std::declval<Psf const&>().clone()), Psf>::value>>
    : std::true_type {};

template <class Psf, class = void>
struct psf_accepts_batches : std::false_type {};
template <class Psf>
struct psf_accepts_batches<Psf,
                           std::enable_if_t<std::is_same<std::decay_t<decltype(Psf::accepts_batches)>, bool>::value>>
    : std::integral_constant<bool, Psf::accepts_batches> {};

template <class Psf, class Scalar, class MemorySpace, class = void>
struct has_psf_apply : std::false_type {};
template <class Psf, class Scalar, class MemorySpace>
struct has_psf_apply<
    Psf, Scalar, MemorySpace,
    std::void_t<decltype(std::declval<Psf const&>().apply(std::declval<typename MemorySpace::execution_space const&>(),
                                                          std::declval<View2D<Scalar, MemorySpace> const&>(),
                                                          std::declval<View2D<Scalar, MemorySpace> const&>()))>>
    : std::true_type {};

template <class Psf, class Scalar, class MemorySpace, class = void>
struct has_psf_apply_adjoint : std::false_type {};
template <class Psf, class Scalar, class MemorySpace>
struct has_psf_apply_adjoint<
    Psf, Scalar, MemorySpace,
    std::void_t<decltype(std::declval<Psf const&>().apply_adjoint(
        std::declval<typename MemorySpace::execution_space const&>(),
        std::declval<View2D<Scalar, MemorySpace> const&>(), std::declval<View2D<Scalar, MemorySpace> const&>()))>>
    : std::true_type {};

// The optional scalar_type / memory_space, where declared, must be the
// observation's (true where not declared).
template <class Psf, class Scalar, class = void>
struct psf_scalar_matches : std::true_type {};
template <class Psf, class Scalar>
struct psf_scalar_matches<Psf, Scalar, std::void_t<typename Psf::scalar_type>>
    : std::is_same<typename Psf::scalar_type, Scalar> {};
template <class Psf, class MemorySpace, class = void>
struct psf_memory_space_matches : std::true_type {};
template <class Psf, class MemorySpace>
struct psf_memory_space_matches<Psf, MemorySpace, std::void_t<typename Psf::memory_space>>
    : std::is_same<typename Psf::memory_space, MemorySpace> {};
}  // namespace detail

/// Whether Psf has ny() and nx() (the image extents it acts on).
template <class Psf>
constexpr bool has_psf_extents_v = detail::has_psf_extents<Psf>::value;

/// Whether Psf's apply and apply_adjoint also take rank-3 batches (n, ny, nx)
/// (its static constexpr bool accepts_batches; false where not declared).
template <class Psf>
constexpr bool psf_accepts_batches_v = detail::psf_accepts_batches<Psf>::value;

/// Whether Psf models PsfOperator on View2D<Scalar, MemorySpace> images.
template <class Psf, class Scalar, class MemorySpace>
constexpr bool is_psf_operator_v = detail::has_psf_apply<Psf, Scalar, MemorySpace>::value&&
    detail::has_psf_apply_adjoint<Psf, Scalar, MemorySpace>::value&& detail::psf_scalar_matches<Psf, Scalar>::value&&
        detail::psf_memory_space_matches<Psf, MemorySpace>::value;

/// Compile-time check with one readable message per missing requirement.
template <class Psf, class Scalar, class MemorySpace>
constexpr bool check_psf_operator() {
  static_assert(std::is_floating_point<Scalar>::value, "lensing::PsfOperator: Scalar must be float or double");
  static_assert(Kokkos::is_memory_space<MemorySpace>::value, "lensing::PsfOperator: not a Kokkos memory space");
  static_assert(detail::has_psf_apply<Psf, Scalar, MemorySpace>::value,
                "lensing::PsfOperator: the PSF must have apply(space, in, out) const for View2D<Scalar, MemorySpace> "
                "images");
  static_assert(detail::has_psf_apply_adjoint<Psf, Scalar, MemorySpace>::value,
                "lensing::PsfOperator: the PSF must have apply_adjoint(space, in, out) const for "
                "View2D<Scalar, MemorySpace> images");
  static_assert(detail::psf_scalar_matches<Psf, Scalar>::value,
                "lensing::PsfOperator: the PSF's scalar_type differs from the observation's Scalar");
  static_assert(detail::psf_memory_space_matches<Psf, MemorySpace>::value,
                "lensing::PsfOperator: the PSF's memory_space differs from the observation's MemorySpace");
  return true;
}

}  // namespace lensing

#endif  // LENSING_PSF_PSF_OPERATOR_HPP
