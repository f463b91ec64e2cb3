#ifndef LENSING_CORE_VEC2_HPP
#define LENSING_CORE_VEC2_HPP

#include <lensing/core/math.hpp>

namespace lensing {

/// A 2-vector of angles or deflections, in arcsec unless stated otherwise.
///
/// An aggregate (`Vec2<double>{x, y}`), trivially copyable and usable inside
/// kernels.  Component order is (x, y) with x increasing with image column.
template <class Scalar>
struct Vec2 {
  Scalar x;
  Scalar y;

  KOKKOS_FORCEINLINE_FUNCTION constexpr Vec2& operator+=(Vec2 const& o) {
    x += o.x;
    y += o.y;
    return *this;
  }
  KOKKOS_FORCEINLINE_FUNCTION constexpr Vec2& operator-=(Vec2 const& o) {
    x -= o.x;
    y -= o.y;
    return *this;
  }
  KOKKOS_FORCEINLINE_FUNCTION constexpr Vec2& operator*=(Scalar s) {
    x *= s;
    y *= s;
    return *this;
  }
};

template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION constexpr Vec2<Scalar> operator+(Vec2<Scalar> a, Vec2<Scalar> const& b) {
  return a += b;
}
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION constexpr Vec2<Scalar> operator-(Vec2<Scalar> a, Vec2<Scalar> const& b) {
  return a -= b;
}
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION constexpr Vec2<Scalar> operator-(Vec2<Scalar> const& a) {
  return {-a.x, -a.y};
}
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION constexpr Vec2<Scalar> operator*(Scalar s, Vec2<Scalar> a) {
  return a *= s;
}
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION constexpr Vec2<Scalar> operator*(Vec2<Scalar> a, Scalar s) {
  return a *= s;
}
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION constexpr Vec2<Scalar> operator/(Vec2<Scalar> const& a, Scalar s) {
  return {a.x / s, a.y / s};
}
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION constexpr bool operator==(Vec2<Scalar> const& a, Vec2<Scalar> const& b) {
  return a.x == b.x && a.y == b.y;
}
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION constexpr bool operator!=(Vec2<Scalar> const& a, Vec2<Scalar> const& b) {
  return !(a == b);
}

/// Dot product a.x b.x + a.y b.y.
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION constexpr Scalar dot(Vec2<Scalar> const& a, Vec2<Scalar> const& b) {
  return a.x * b.x + a.y * b.y;
}

/// Squared Euclidean norm.
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION constexpr Scalar norm2(Vec2<Scalar> const& a) {
  return dot(a, a);
}

/// Euclidean norm (hypot-free: the arguments here are angles of order 1-1e3").
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION Scalar norm(Vec2<Scalar> const& a) {
  return math::sqrt(norm2(a));
}

/// Rotate by angle phi (radians, counter-clockwise) given cos(phi), sin(phi).
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION constexpr Vec2<Scalar> rotate(Vec2<Scalar> const& a, Scalar c, Scalar s) {
  return {c * a.x - s * a.y, s * a.x + c * a.y};
}

}  // namespace lensing

#endif  // LENSING_CORE_VEC2_HPP
