#ifndef LENSING_CORE_ERRORS_HPP
#define LENSING_CORE_ERRORS_HPP

/// \file
/// Host-side argument checking.  Every public entry point validates its
/// arguments before launching work and throws `std::invalid_argument` whose
/// message starts with the entry point's name, e.g.
/// `"lensing::PixelGrid: pixel_scale must be finite and > 0 (got -1)"`.
/// Kernels never throw; they rely on these checks having been made.

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace lensing {

/// Throw std::invalid_argument("<where>: <what>").
[[noreturn]] inline void throw_invalid_argument(char const* where, std::string const& what) {
  throw std::invalid_argument(std::string(where) + ": " + what);
}

/// Throw unless `ok`.
inline void check_argument(bool ok, char const* where, std::string const& what) {
  if (!ok) throw_invalid_argument(where, what);
}

namespace detail {
template <class T>
std::string describe(char const* name, char const* requirement, T value) {
  std::ostringstream s;
  s.precision(17);
  s << name << " must be " << requirement << " (got " << value << ")";
  return s.str();
}
}  // namespace detail

/// `value` is neither NaN nor infinite.
template <class T>
void check_finite(T value, char const* where, char const* name) {
  // std::isfinite first: an ordered comparison with NaN would raise FE_INVALID.
  if (!std::isfinite(value)) throw_invalid_argument(where, detail::describe(name, "finite", value));
}

/// `value` is finite and strictly positive.
template <class T>
void check_positive(T value, char const* where, char const* name) {
  if (!std::isfinite(value) || !(value > T(0)))
    throw_invalid_argument(where, detail::describe(name, "finite and > 0", value));
}

/// Integer count `n` >= `minimum`.
inline void check_count(long long n, long long minimum, char const* where, char const* name) {
  if (n < minimum) {
    throw_invalid_argument(where, detail::describe(name, (">= " + std::to_string(minimum)).c_str(), n));
  }
}

/// `value` finite and in the half-open interval (lo, hi].
template <class T>
void check_in_open_closed(T value, T lo, T hi, char const* where, char const* name) {
  if (!std::isfinite(value) || !(value > lo) || !(value <= hi)) {
    std::ostringstream req;
    req << "in (" << lo << ", " << hi << "]";
    throw_invalid_argument(where, detail::describe(name, req.str().c_str(), value));
  }
}

namespace detail {
template <class T, class = void>
struct has_check_member : std::false_type {};
template <class T>
struct has_check_member<T, std::void_t<decltype(std::declval<T const&>().check())>> : std::true_type {};
}  // namespace detail

/// Validate a model's parameters on the host before work is launched: calls
/// `model.check()` (mass and light profiles, Composite, CompositeLight,
/// LensModel, LensSum, multi-plane lenses; throws std::invalid_argument
/// naming the profile and the parameter).  Types without check() (a
/// Population, an InterpolatedLens) are validated when they are built.
template <class Model>
void check_model(Model const& model) {
  if constexpr (detail::has_check_member<Model>::value) model.check();
}

}  // namespace lensing

#endif  // LENSING_CORE_ERRORS_HPP
