#ifndef LENSING_DENSITY_LOG_DENSITY_HPP
#define LENSING_DENSITY_LOG_DENSITY_HPP

/// \file
/// The LogDensity concept: what optimizers and samplers need from a model.
///
/// Archetype (C++17; checked by `is_log_density_v` and `check_log_density`):
/// \code
/// struct MyDensity {
///   using scalar_type = double;                    // float or double
///   using memory_space = Kokkos::HostSpace;        // where q and grad live
///   int dimension() const;                         // number of unconstrained parameters, >= 1
///   // log p(q) up to a constant, and grad = d log p / dq, for q in R^dimension().
///   // May launch kernels on `space` (asynchronously); the caller fences `space`
///   // before reading grad.  Must be const and re-entrant: samplers call it from
///   // several host threads at once when chains run in parallel.
///   template <class ExecutionSpace>
///   scalar_type value_and_gradient(ExecutionSpace const& space,
///                                  lensing::View1D<scalar_type, memory_space> const& q,
///                                  lensing::View1D<scalar_type, memory_space> const& grad) const;
///
///   // Optional: an independent copy with its own work buffers (a deep copy of
///   // every View the evaluation writes to).  Needed when copies would share
///   // writable state (Views are reference-counted shallow copies): each chain,
///   // optimizer run or Langevin/variational fit evaluates its own clone.
///   MyDensity clone() const;
///   // Optional: true if value_and_gradient launches Kokkos kernels (default
///   // false).  Kokkos 3.x host backends take kernels from one host thread
///   // only (OpenMP: the thread that initialised Kokkos; Serial: one at a
///   // time), so the chains of such a density run on the calling thread
///   // (detail::chain_threads, parallel_chains.hpp; the kernels use the
///   // backend's threads), and DensityEvaluator serialises its evaluations
///   // and clones with one process-wide lock (kernel_launch_mutex()) for
///   // callers that use their own threads.  Draws stay bit-identical to a
///   // one-thread run.
///   static constexpr bool launches_kernels = true;
/// };
/// \endcode
/// Every front end (sample(), sample_batch(), langevin(), optimizers, fits)
/// goes through DensityEvaluator (density/evaluator.hpp), which holds
/// `clone_density(density)` and takes the lock when `launches_kernels_v`.
/// A density that wraps another one (a prior, a bijection) should forward
/// both: clone() its member and declare launches_kernels from it
/// (`lensing::launches_kernels_v<Inner>`).
/// Parameters are unconstrained (R^d): constrained parameters are mapped with
/// the bijections of sample/bijections.hpp and the log-Jacobian is added to
/// log p.  A non-finite value or gradient is allowed (e.g. far in the tails):
/// samplers treat it as a divergence, optimizers reject the step.

#include <lensing/core/views.hpp>

#include <mutex>
#include <type_traits>
#include <utility>

namespace lensing {

namespace detail {
template <class T, class = void>
struct has_log_density_types : std::false_type {};
template <class T>
struct has_log_density_types<T, std::void_t<typename T::scalar_type, typename T::memory_space>> : std::true_type {};

template <class T, class = void>
struct has_dimension : std::false_type {};
template <class T>
struct has_dimension<T, std::void_t<decltype(int(std::declval<T const&>().dimension()))>> : std::true_type {};

template <class T, class ExecutionSpace, class = void>
struct has_value_and_gradient : std::false_type {};
template <class T, class ExecutionSpace>
struct has_value_and_gradient<
    T, ExecutionSpace,
    std::enable_if_t<
        std::is_convertible<decltype(std::declval<T const&>().value_and_gradient(
                                std::declval<ExecutionSpace const&>(),
                                std::declval<View1D<typename T::scalar_type, typename T::memory_space> const&>(),
                                std::declval<View1D<typename T::scalar_type, typename T::memory_space> const&>())),
                            typename T::scalar_type>::value>> : std::true_type {};
template <class T, class ExecutionSpace>
struct has_value_and_gradient_checked
    : std::conditional_t<has_log_density_types<T>::value, has_value_and_gradient<T, ExecutionSpace>, std::false_type> {
};
}  // namespace detail

namespace detail {
template <class T, class = void>
struct has_clone : std::false_type {};
template <class T>
struct has_clone<T, std::enable_if_t<std::is_convertible<decltype(std::declval<T const&>().clone()), T>::value>>
    : std::true_type {};
template <class T, class = void>
struct declares_launches_kernels : std::false_type {};
template <class T>
struct declares_launches_kernels<T, std::enable_if_t<bool(T::launches_kernels)>> : std::true_type {};
}  // namespace detail

/// Whether `T` has a `T clone() const` member (an independent deep copy).
template <class T>
constexpr bool has_clone_v = detail::has_clone<T>::value;

/// Whether evaluations of `T` launch Kokkos kernels (`T::launches_kernels`, default false).
template <class T>
constexpr bool launches_kernels_v = detail::declares_launches_kernels<T>::value;

/// An independent copy of `density`: `density.clone()` where it exists, a plain copy otherwise.
template <class T>
T clone_density(T const& density) {
  if constexpr (has_clone_v<T>)
    return density.clone();
  else
    return density;
}

/// The process-wide lock that serialises evaluations (and clones) of densities
/// with `launches_kernels_v` across host threads.  Recursive, so that a
/// density may itself evaluate another one through a DensityEvaluator.
inline std::recursive_mutex& kernel_launch_mutex() {
  static std::recursive_mutex m;
  return m;
}

/// Whether `T` models LogDensity for `ExecutionSpace` (see the archetype above).
template <class T, class ExecutionSpace>
constexpr bool is_log_density_v = detail::has_log_density_types<T>::value&& detail::has_dimension<T>::value&&
    detail::has_value_and_gradient_checked<T, ExecutionSpace>::value;

/// Compile-time check with one readable message per missing requirement.
template <class T, class ExecutionSpace>
constexpr bool check_log_density() {
  static_assert(is_execution_space_v<ExecutionSpace>, "lensing::LogDensity: not a Kokkos execution space");
  static_assert(detail::has_log_density_types<T>::value,
                "lensing::LogDensity: the density must define scalar_type and memory_space");
  static_assert(detail::has_dimension<T>::value, "lensing::LogDensity: the density must have int dimension() const");
  static_assert(detail::has_value_and_gradient_checked<T, ExecutionSpace>::value,
                "lensing::LogDensity: the density must have scalar_type value_and_gradient(space, q, grad) const "
                "with q and grad of type View1D<scalar_type, memory_space>");
  if constexpr (detail::has_log_density_types<T>::value) {
    static_assert(std::is_floating_point<typename T::scalar_type>::value,
                  "lensing::LogDensity: scalar_type must be float or double");
    static_assert(is_accessible_from_v<ExecutionSpace, typename T::memory_space>,
                  "lensing::LogDensity: memory_space must be accessible from the execution space");
  }
  return true;
}

}  // namespace lensing

#endif  // LENSING_DENSITY_LOG_DENSITY_HPP
