#ifndef LENSING_CORE_DUAL_HPP
#define LENSING_CORE_DUAL_HPP

/// \file
/// Forward-mode dual numbers (one tangent) for exact directional derivatives
/// of kernel code written generically over the scalar.
///
/// Dual<S> carries a value v and a tangent t (the derivative of v along one
/// input direction); arithmetic and the lensing::math overloads below apply
/// the chain rule, comparisons look at the value only, so code written for a
/// plain scalar (branches, clamps, series stopped by a tolerance) runs
/// unchanged on duals and gives the derivative of the branch it takes.
/// Used by the Hessian VJPs (profiles/detail/hessian_vjp.hpp): third
/// derivatives of the potential as the position-tangent of the exact
/// deflection VJP.
///
/// Edges: a function whose derivative is infinite at the value (sqrt(0),
/// pow(0, b < 1), log(0), ...) gives tangent 0 when the incoming tangent is 0
/// (parameters carried as constants never produce NaN), and otherwise the
/// IEEE result of t * f'(v).  Never used for the float batch (SIMD) paths.

#include <lensing/core/math.hpp>

#include <type_traits>

namespace lensing {

/// Value and one tangent; trivially copyable, usable in kernels.
template <class S>
struct Dual {
  S v;  ///< value
  S t;  ///< tangent (directional derivative of v)

  Dual() = default;
  KOKKOS_FORCEINLINE_FUNCTION constexpr Dual(S value, S tangent) : v(value), t(tangent) {}
  /// A constant (zero tangent); implicit so that Scalar(2) and mixed
  /// arithmetic with plain numbers read as in scalar code.
  template <class T, std::enable_if_t<std::is_arithmetic<T>::value, int> = 0>
  KOKKOS_FORCEINLINE_FUNCTION constexpr Dual(T value) : v(S(value)), t(S(0)) {}

  KOKKOS_FORCEINLINE_FUNCTION constexpr Dual operator-() const { return {-v, -t}; }
  KOKKOS_FORCEINLINE_FUNCTION constexpr Dual operator+() const { return *this; }
  KOKKOS_FORCEINLINE_FUNCTION constexpr Dual& operator+=(Dual b) {
    v += b.v;
    t += b.t;
    return *this;
  }
  KOKKOS_FORCEINLINE_FUNCTION constexpr Dual& operator-=(Dual b) {
    v -= b.v;
    t -= b.t;
    return *this;
  }
  KOKKOS_FORCEINLINE_FUNCTION constexpr Dual& operator*=(Dual b) {
    t = t * b.v + v * b.t;
    v *= b.v;
    return *this;
  }
  KOKKOS_FORCEINLINE_FUNCTION constexpr Dual& operator/=(Dual b) {
    S const inv = S(1) / b.v;
    v *= inv;
    t = (t - v * b.t) * inv;
    return *this;
  }

  // Hidden friends: found by ADL, and mixed Dual/number operands convert.
  friend KOKKOS_FORCEINLINE_FUNCTION constexpr Dual operator+(Dual a, Dual b) { return a += b; }
  friend KOKKOS_FORCEINLINE_FUNCTION constexpr Dual operator-(Dual a, Dual b) { return a -= b; }
  friend KOKKOS_FORCEINLINE_FUNCTION constexpr Dual operator*(Dual a, Dual b) { return a *= b; }
  friend KOKKOS_FORCEINLINE_FUNCTION constexpr Dual operator/(Dual a, Dual b) { return a /= b; }
  friend KOKKOS_FORCEINLINE_FUNCTION constexpr bool operator<(Dual a, Dual b) { return a.v < b.v; }
  friend KOKKOS_FORCEINLINE_FUNCTION constexpr bool operator>(Dual a, Dual b) { return a.v > b.v; }
  friend KOKKOS_FORCEINLINE_FUNCTION constexpr bool operator<=(Dual a, Dual b) { return a.v <= b.v; }
  friend KOKKOS_FORCEINLINE_FUNCTION constexpr bool operator>=(Dual a, Dual b) { return a.v >= b.v; }
  friend KOKKOS_FORCEINLINE_FUNCTION constexpr bool operator==(Dual a, Dual b) { return a.v == b.v; }
  friend KOKKOS_FORCEINLINE_FUNCTION constexpr bool operator!=(Dual a, Dual b) { return a.v != b.v; }
};

/// Whether T is a Dual.
template <class T>
struct is_dual : std::false_type {};
template <class S>
struct is_dual<Dual<S>> : std::true_type {};
template <class T>
constexpr bool is_dual_v = is_dual<T>::value;

namespace detail {
// t * f'(v), or 0 when t = 0 (f' may be infinite there).
template <class S>
KOKKOS_FORCEINLINE_FUNCTION constexpr S chain(S t, S fprime) {
  return t == S(0) ? S(0) : t * fprime;
}
}  // namespace detail

namespace math {

//----------------------------------------------------------------------------
// lensing::math overloads for Dual (value through the scalar function,
// tangent by the chain rule).

template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> sqrt(Dual<S> a) {
  S const r = math::sqrt(a.v);
  return {r, a.t == S(0) ? S(0) : a.t / (S(2) * r)};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> cbrt(Dual<S> a) {
  S const r = math::cbrt(a.v);
  return {r, a.t == S(0) ? S(0) : a.t / (S(3) * r * r)};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> exp(Dual<S> a) {
  S const e = math::exp(a.v);
  return {e, detail::chain(a.t, e)};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> expm1(Dual<S> a) {
  return {math::expm1(a.v), detail::chain(a.t, math::exp(a.v))};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> log(Dual<S> a) {
  return {math::log(a.v), a.t == S(0) ? S(0) : a.t / a.v};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> log1p(Dual<S> a) {
  return {math::log1p(a.v), a.t == S(0) ? S(0) : a.t / (S(1) + a.v)};
}
/// a^b = exp(b ln a): d = b a^(b-1) da + a^b ln(a) db (each term only when
/// its tangent is nonzero).
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> pow(Dual<S> a, Dual<S> b) {
  S const p = math::pow(a.v, b.v);
  S t = S(0);
  if (a.t != S(0)) t += a.t * b.v * math::pow(a.v, b.v - S(1));
  if (b.t != S(0)) t += b.t * p * math::log(a.v);
  return {p, t};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> pow(Dual<S> a, S b) {
  return pow(a, Dual<S>(b));
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> pow(S a, Dual<S> b) {
  return pow(Dual<S>(a), b);
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> sin(Dual<S> a) {
  return {math::sin(a.v), detail::chain(a.t, math::cos(a.v))};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> cos(Dual<S> a) {
  return {math::cos(a.v), detail::chain(a.t, -math::sin(a.v))};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> tan(Dual<S> a) {
  S const r = math::tan(a.v);
  return {r, detail::chain(a.t, S(1) + r * r)};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> sinh(Dual<S> a) {
  return {math::sinh(a.v), detail::chain(a.t, math::cosh(a.v))};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> cosh(Dual<S> a) {
  return {math::cosh(a.v), detail::chain(a.t, math::sinh(a.v))};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> tanh(Dual<S> a) {
  S const r = math::tanh(a.v);
  return {r, detail::chain(a.t, S(1) - r * r)};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> atan(Dual<S> a) {
  return {math::atan(a.v), a.t == S(0) ? S(0) : a.t / (S(1) + a.v * a.v)};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> atanh(Dual<S> a) {
  return {math::atanh(a.v), a.t == S(0) ? S(0) : a.t / (S(1) - a.v * a.v)};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> asinh(Dual<S> a) {
  return {math::asinh(a.v), a.t == S(0) ? S(0) : a.t / math::sqrt(a.v * a.v + S(1))};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> acosh(Dual<S> a) {
  return {math::acosh(a.v), a.t == S(0) ? S(0) : a.t / math::sqrt((a.v - S(1)) * (a.v + S(1)))};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> asin(Dual<S> a) {
  return {math::asin(a.v), a.t == S(0) ? S(0) : a.t / math::sqrt((S(1) - a.v) * (S(1) + a.v))};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> acos(Dual<S> a) {
  return {math::acos(a.v), a.t == S(0) ? S(0) : -a.t / math::sqrt((S(1) - a.v) * (S(1) + a.v))};
}
/// atan2(y, x): d = (x dy - y dx)/(x^2 + y^2).
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> atan2(Dual<S> y, Dual<S> x) {
  S const num = x.v * y.t - y.v * x.t;
  return {math::atan2(y.v, x.v), num == S(0) ? S(0) : num / (x.v * x.v + y.v * y.v)};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> hypot(Dual<S> x, Dual<S> y) {
  S const h = math::hypot(x.v, y.v);
  S const num = x.v * x.t + y.v * y.t;
  return {h, num == S(0) ? S(0) : num / h};
}
/// erf' = 2/sqrt(pi) exp(-x^2).
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> erf(Dual<S> a) {
  return {math::erf(a.v), detail::chain(a.t, S(1.1283791670955125739) * math::exp(-a.v * a.v))};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> erfc(Dual<S> a) {
  return {math::erfc(a.v), detail::chain(a.t, S(-1.1283791670955125739) * math::exp(-a.v * a.v))};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> fabs(Dual<S> a) {
  return a.v < S(0) ? -a : a;
}
/// Piecewise constant: zero tangent.
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> floor(Dual<S> a) {
  return {math::floor(a.v), S(0)};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> ceil(Dual<S> a) {
  return {math::ceil(a.v), S(0)};
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> fmin(Dual<S> a, Dual<S> b) {
  return b.v < a.v ? b : a;
}
template <class S>
KOKKOS_INLINE_FUNCTION Dual<S> fmax(Dual<S> a, Dual<S> b) {
  return a.v < b.v ? b : a;
}
template <class S>
KOKKOS_INLINE_FUNCTION bool isfinite(Dual<S> a) {
  return math::isfinite(a.v) && math::isfinite(a.t);
}
template <class S>
KOKKOS_INLINE_FUNCTION bool isnan(Dual<S> a) {
  return math::isnan(a.v) || math::isnan(a.t);
}
template <class S>
KOKKOS_INLINE_FUNCTION bool isinf(Dual<S> a) {
  return math::isinf(a.v);
}

}  // namespace math
}  // namespace lensing

#endif  // LENSING_CORE_DUAL_HPP
