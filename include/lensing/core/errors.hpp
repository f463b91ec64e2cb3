#ifndef LENSING_CORE_ERRORS_HPP
#define LENSING_CORE_ERRORS_HPP

/// \file
/// Host-side argument checking.  Every public entry point validates its
/// arguments before launching work and throws `std::invalid_argument` whose
/// message starts with the entry point's name, e.g.
/// `"lensing::PixelGrid: pixel_scale must be finite and > 0 (got -1)"`.
/// Kernels never throw; they rely on these checks having been made.

#include <cmath>
#include <cstddef>
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

/// `value` is finite and >= 0.
template <class T>
void check_nonnegative(T value, char const* where, char const* name) {
  if (!std::isfinite(value) || !(value >= T(0)))
    throw_invalid_argument(where, detail::describe(name, "finite and >= 0", value));
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

/// `value` finite and in the closed interval [lo, hi].
template <class T>
void check_in_closed(T value, T lo, T hi, char const* where, char const* name) {
  if (!std::isfinite(value) || !(value >= lo) || !(value <= hi)) {
    std::ostringstream req;
    req << "in [" << lo << ", " << hi << "]";
    throw_invalid_argument(where, detail::describe(name, req.str().c_str(), value));
  }
}

/// `value` finite and in the half-open interval [lo, hi).
template <class T>
void check_in_closed_open(T value, T lo, T hi, char const* where, char const* name) {
  if (!std::isfinite(value) || !(value >= lo) || !(value < hi)) {
    std::ostringstream req;
    req << "in [" << lo << ", " << hi << ")";
    throw_invalid_argument(where, detail::describe(name, req.str().c_str(), value));
  }
}

namespace detail {
inline std::string extents_list(std::size_t const* e, std::size_t n) {
  std::string s = "(";
  for (std::size_t i = 0; i < n; ++i)
    s += (i ? ", " : "") + std::to_string(e[i]);
  return s + ")";
}
}  // namespace detail

/// The view `v` (anything with `extent(i)` and a static `rank`, e.g. a
/// Kokkos::View) has exactly the extents `expected...` (one per rank);
/// otherwise throws std::invalid_argument with the one message used across
/// the library,
///   "<where>: <name> must have extents <labels> = (e0, e1), got (g0, g1)",
/// e.g. "lensing::grid_coordinates: x must have extents (fine_ny, fine_nx) =
/// (15, 21), got (5, 7)".  `labels` names the expected extents, "(ny, nx)".
template <class View, class... Extent>
void check_extents(View const& v, char const* where, std::string const& name, char const* labels, Extent... expected) {
  constexpr std::size_t rank = sizeof...(Extent);
  static_assert(rank >= 1 && std::size_t(View::rank) == rank,
                "lensing::check_extents: give one expected extent per rank of the view");
  std::size_t const want[rank] = {static_cast<std::size_t>(expected)...};
  std::size_t got[rank];
  bool ok = true;
  for (std::size_t i = 0; i < rank; ++i) {
    got[i] = static_cast<std::size_t>(v.extent(i));
    ok = ok && got[i] == want[i];
  }
  if (!ok)
    throw_invalid_argument(where, name + " must have extents " + labels + " = " + detail::extents_list(want, rank) +
                                      ", got " + detail::extents_list(got, rank));
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
