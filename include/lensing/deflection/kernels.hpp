#ifndef LENSING_DEFLECTION_KERNELS_HPP
#define LENSING_DEFLECTION_KERNELS_HPP

/// \file
/// Pixel-integrated Green's functions of the 2-D Poisson equation, for
/// deflections and potentials from a convergence map.
///
/// With kappa constant over each square pixel of side d,
///   alpha(x) = (1/pi) sum_j kappa_j  int_{pixel j} (x - x') / |x - x'|^2 d^2x',
///   psi(x)   = (1/pi) sum_j kappa_j  int_{pixel j} ln|x - x'| d^2x'.
/// The pixel integrals have closed forms through corner antiderivatives, so
/// the kernels are finite everywhere, including the pixel itself (r -> 0),
/// and exact for piecewise-constant kappa:
///   Gx(u, v) = v/2 ln(u^2 + v^2) + u atan(v/u)          (d2Gx/du dv = u/r^2)
///   Gp(u, v) = [u v ln(u^2 + v^2) - 3 u v + u^2 atan(v/u) + v^2 atan(u/v)] / 2
///                                                        (d2Gp/du dv = ln r)
/// evaluated at corners that never lie on an axis for pixel offsets that are
/// integer multiples of d.

#include <lensing/core/math.hpp>

namespace lensing {
namespace detail {

// u atan(v/u) -> 0 as u -> 0 (the corners used here never have u = 0; the
// guard only keeps the function total).
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar u_atan_v_over_u(Scalar u, Scalar v) {
  return u == Scalar(0) ? Scalar(0) : u * math::atan(v / u);
}

template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar corner_gx(Scalar u, Scalar v) {
  Scalar const r2 = u * u + v * v;
  return (r2 > Scalar(0) ? Scalar(0.5) * v * math::log(r2) : Scalar(0)) + u_atan_v_over_u(u, v);
}

template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar corner_gp(Scalar u, Scalar v) {
  Scalar const r2 = u * u + v * v;
  Scalar const l = r2 > Scalar(0) ? u * v * math::log(r2) : Scalar(0);
  return Scalar(0.5) * (l - Scalar(3) * u * v + u * u_atan_v_over_u(u, v) + v * u_atan_v_over_u(v, u));
}

/// x-deflection per unit convergence of a square pixel of side d centred at
/// offset (X, Y) from the point: (1/pi) int x/r^2 over the pixel.
/// The y-deflection is pixel_kernel_x(Y, X, d).
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar pixel_kernel_x(Scalar X, Scalar Y, Scalar d) {
  Scalar const h = Scalar(0.5) * d;
  Scalar const x1 = X - h, x2 = X + h, y1 = Y - h, y2 = Y + h;
  return (corner_gx(x2, y2) - corner_gx(x1, y2) - corner_gx(x2, y1) + corner_gx(x1, y1)) / math::pi<Scalar>;
}

/// Potential per unit convergence of that pixel: (1/pi) int ln r over it.
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar pixel_kernel_potential(Scalar X, Scalar Y, Scalar d) {
  Scalar const h = Scalar(0.5) * d;
  Scalar const x1 = X - h, x2 = X + h, y1 = Y - h, y2 = Y + h;
  return (corner_gp(x2, y2) - corner_gp(x1, y2) - corner_gp(x2, y1) + corner_gp(x1, y1)) / math::pi<Scalar>;
}

}  // namespace detail
}  // namespace lensing

#endif  // LENSING_DEFLECTION_KERNELS_HPP
