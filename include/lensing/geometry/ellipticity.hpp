#ifndef LENSING_GEOMETRY_ELLIPTICITY_HPP
#define LENSING_GEOMETRY_ELLIPTICITY_HPP

#include <lensing/core/errors.hpp>
#include <lensing/core/vec2.hpp>

namespace lensing {

/// Axis ratio q = minor/major in (0, 1] and position angle phi (radians,
/// counter-clockwise from the +x axis) of an ellipse.
template <class Scalar>
struct AxisRatioAngle {
  Scalar q;
  Scalar phi;
};

/// Largest |e| that ellipticity_to_q_phi honours (q >= 5.0e-5), as lenstronomy
/// (`param_util.ellipticity2phi_q`): a sampler that steps outside the unit disc
/// still gets a finite model.
template <class Scalar>
constexpr Scalar max_ellipticity_modulus = Scalar(0.9999);

/// Ellipticity components (e1, e2) -> (q, phi), lenstronomy's convention:
///   e1 = (1-q)/(1+q) cos 2phi,  e2 = (1-q)/(1+q) sin 2phi,
/// so  c = sqrt(e1^2 + e2^2) (capped at 0.9999), q = (1-c)/(1+c),
/// phi = atan2(e2, e1)/2 in (-pi/2, pi/2].  At e = 0 phi is 0.
/// No argument checks (kernel-safe); see checked_ellipticity_to_q_phi.
template <class Scalar>
KOKKOS_INLINE_FUNCTION AxisRatioAngle<Scalar> ellipticity_to_q_phi(Scalar e1, Scalar e2) {
  Scalar const c = math::min(math::sqrt(e1 * e1 + e2 * e2), max_ellipticity_modulus<Scalar>);
  return {(Scalar(1) - c) / (Scalar(1) + c), Scalar(0.5) * math::atan2(e2, e1)};
}

/// (q, phi) -> (e1, e2), the inverse of ellipticity_to_q_phi for q in (0, 1].
template <class Scalar>
KOKKOS_INLINE_FUNCTION Vec2<Scalar> q_phi_to_ellipticity(Scalar q, Scalar phi) {
  Scalar const c = (Scalar(1) - q) / (Scalar(1) + q);
  return {c * math::cos(Scalar(2) * phi), c * math::sin(Scalar(2) * phi)};
}

/// Vector-Jacobian product of ellipticity_to_q_phi: given the upstream
/// gradients (q_bar, phi_bar), returns (e1_bar, e2_bar).
///   dq/de_i = -2/(1+c)^2 e_i/c (0 beyond the cap),
///   dphi/de1 = -e2/(2c^2),  dphi/de2 = e1/(2c^2).
/// At e = 0, where phi is undefined, both return 0 (a subgradient for q).
template <class Scalar>
KOKKOS_INLINE_FUNCTION Vec2<Scalar> ellipticity_to_q_phi_vjp(Scalar e1, Scalar e2, Scalar q_bar, Scalar phi_bar) {
  Scalar const c2 = e1 * e1 + e2 * e2;
  if (c2 == Scalar(0)) return {Scalar(0), Scalar(0)};
  Scalar const c = math::sqrt(c2);
  Scalar const dq_dc = c < max_ellipticity_modulus<Scalar> ? Scalar(-2) / math::square(Scalar(1) + c) : Scalar(0);
  Scalar const a = q_bar * dq_dc / c;
  Scalar const b = phi_bar / (Scalar(2) * c2);
  return {a * e1 - b * e2, a * e2 + b * e1};
}

/// Vector-Jacobian product of q_phi_to_ellipticity: given e_bar = (e1_bar,
/// e2_bar), returns (q_bar, phi_bar).
template <class Scalar>
KOKKOS_INLINE_FUNCTION AxisRatioAngle<Scalar> q_phi_to_ellipticity_vjp(Scalar q, Scalar phi, Vec2<Scalar> e_bar) {
  Scalar const c = (Scalar(1) - q) / (Scalar(1) + q);
  Scalar const dc_dq = Scalar(-2) / math::square(Scalar(1) + q);
  Scalar const c2p = math::cos(Scalar(2) * phi), s2p = math::sin(Scalar(2) * phi);
  return {dc_dq * (c2p * e_bar.x + s2p * e_bar.y), Scalar(2) * c * (c2p * e_bar.y - s2p * e_bar.x)};
}

/// Host-side check of an ellipticity: throws std::invalid_argument (prefixed
/// with `where`) when e1 or e2 is not finite or sqrt(e1^2 + e2^2) >= 1 (no
/// ellipse has that).
template <class Scalar>
void check_ellipticity(Scalar e1, Scalar e2, char const* where) {
  check_finite(e1, where, "e1");
  check_finite(e2, where, "e2");
  check_argument(e1 * e1 + e2 * e2 < Scalar(1), where, "|e| = sqrt(e1^2 + e2^2) must be < 1");
}

/// Host-side, checked ellipticity_to_q_phi (see check_ellipticity).
template <class Scalar>
AxisRatioAngle<Scalar> checked_ellipticity_to_q_phi(Scalar e1, Scalar e2) {
  check_ellipticity(e1, e2, "lensing::ellipticity_to_q_phi");
  return ellipticity_to_q_phi(e1, e2);
}

/// Host-side, checked q_phi_to_ellipticity: throws std::invalid_argument unless
/// q is in (0, 1] and phi is finite.
template <class Scalar>
Vec2<Scalar> checked_q_phi_to_ellipticity(Scalar q, Scalar phi) {
  constexpr char const* where = "lensing::q_phi_to_ellipticity";
  check_in_open_closed(q, Scalar(0), Scalar(1), where, "q");
  check_finite(phi, where, "phi");
  return q_phi_to_ellipticity(q, phi);
}

}  // namespace lensing

#endif  // LENSING_GEOMETRY_ELLIPTICITY_HPP
