#ifndef LENSING_CORE_COMPLEX_HPP
#define LENSING_CORE_COMPLEX_HPP

/// \file
/// A kernel-safe complex number, for the series and special functions of the
/// mass profiles (the EPL hypergeometric series in profiles/epl.hpp, the
/// Faddeeva function of profiles/gaussian_kappa.hpp).

#include <lensing/core/math.hpp>

namespace lensing {

/// A complex number re + i im as two scalars.  std::complex is not usable in
/// every kernel (device code, and its operator* checks for NaN/inf with
/// branches); this is a plain aggregate (`Complex<double>{re, im}`), trivially
/// copyable, with no default member initialisers (a hot loop may declare one
/// uninitialised and fill it).  The operators are the textbook formulas,
/// inline and branch-free; products are evaluated as written,
/// (a.re b.re - a.im b.im, a.re b.im + a.im b.re), so results are reproducible.
/// Scalar: float or double.
template <class Scalar>
struct Complex {
  Scalar re;
  Scalar im;
};

template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION Complex<Scalar> operator+(Complex<Scalar> a, Complex<Scalar> b) {
  return {a.re + b.re, a.im + b.im};
}
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION Complex<Scalar> operator-(Complex<Scalar> a, Complex<Scalar> b) {
  return {a.re - b.re, a.im - b.im};
}
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION Complex<Scalar> operator*(Complex<Scalar> a, Complex<Scalar> b) {
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
/// Real scalar times complex.
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION Complex<Scalar> operator*(Scalar s, Complex<Scalar> a) {
  return {s * a.re, s * a.im};
}

/// 1/a without overflow or underflow of |a|^2 (Smith's scaling, one branch on
/// the larger component); a != 0.
template <class Scalar>
KOKKOS_INLINE_FUNCTION Complex<Scalar> reciprocal(Complex<Scalar> a) {
  if (math::fabs(a.re) >= math::fabs(a.im)) {
    Scalar const r = a.im / a.re, d = a.re + a.im * r;
    return {Scalar(1) / d, -r / d};
  }
  Scalar const r = a.re / a.im, d = a.re * r + a.im;
  return {r / d, Scalar(-1) / d};
}

}  // namespace lensing

#endif  // LENSING_CORE_COMPLEX_HPP
