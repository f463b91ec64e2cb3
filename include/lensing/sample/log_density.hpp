#ifndef LENSING_SAMPLE_LOG_DENSITY_HPP
#define LENSING_SAMPLE_LOG_DENSITY_HPP

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
/// };
/// \endcode
/// Parameters are unconstrained (R^d): constrained parameters are mapped with
/// the bijections of sample/bijections.hpp and the log-Jacobian is added to
/// log p.  A non-finite value or gradient is allowed (e.g. far in the tails):
/// samplers treat it as a divergence, optimizers reject the step.

#include <lensing/core/views.hpp>

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

#endif  // LENSING_SAMPLE_LOG_DENSITY_HPP
