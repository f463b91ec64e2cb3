#ifndef LENSING_PROFILES_DETAIL_RADIAL_HPP
#define LENSING_PROFILES_DETAIL_RADIAL_HPP

/// \file
/// RadialProfile<Params>: every MassProfile operation for a circularly
/// symmetric profile, derived from its radial functions.
///
/// Params is an aggregate whose members are the shape parameters followed by
/// center_x, center_y (pack order), and which provides
///   using scalar_type;  static constexpr int num_shape_params;
///   static constexpr char const* param_names[num_shape_params + 2];
///   void pack_shape(Scalar*) const;  void unpack_shape(Scalar const*);
///   void check_shape() const;        // host: throws std::invalid_argument
///   K kernel() const;                // radial functions, below
/// K gives, at radius r >= 0 (finite at r = 0):
///   psi(r), alpha_over_r(r) = alpha(r)/r, dalpha_dr(r), kappa(r), dkappa_dr(r),
///   and accumulates g * d(quantity)/d(shape_k) into grad[k] for k < num_shape_params:
///   psi_grad(r, g, grad), alpha_over_r_grad(r, g, grad), kappa_grad(r, g, grad).
/// With d = (x - center_x, y - center_y), r = |d|, u = d/r:
///   deflection = alpha_over_r * d,
///   hessian    = alpha_over_r * I + (dalpha_dr - alpha_over_r) u u^T,
/// and the centre gradients follow from d/dcenter = -d/dx.

#include <lensing/core/errors.hpp>
#include <lensing/profiles/mass_profile.hpp>

namespace lensing {

template <class Params>
struct RadialProfile : Params {
  using scalar_type = typename Params::scalar_type;
  using Scalar = scalar_type;
  static constexpr int num_shape_params = Params::num_shape_params;
  static constexpr int num_params = num_shape_params + 2;

 private:
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> offset(Scalar x, Scalar y) const {
    return {x - this->center_x, y - this->center_y};
  }
  // Unit vector along d, or 0 at the centre (where every term using it is
  // multiplied by a vanishing or isotropic factor).
  KOKKOS_INLINE_FUNCTION static Vec2<Scalar> unit(Vec2<Scalar> d, Scalar r) {
    Scalar const inv = r > Scalar(0) ? Scalar(1) / r : Scalar(0);
    return {d.x * inv, d.y * inv};
  }

 public:
  KOKKOS_FORCEINLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Vec2<Scalar> const d = offset(x, y);
    Scalar const a = this->kernel().alpha_over_r(norm(d));
    return {a * d.x, a * d.y};
  }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const { return this->kernel().psi(norm(offset(x, y))); }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const {
    return this->kernel().kappa(norm(offset(x, y)));
  }
  KOKKOS_FORCEINLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    Vec2<Scalar> const d = offset(x, y);
    Scalar const r = norm(d);
    auto const k = this->kernel();
    Scalar const a = k.alpha_over_r(r), t = k.dalpha_dr(r) - a;
    Vec2<Scalar> const u = unit(d, r);
    return {a + t * u.x * u.x, t * u.x * u.y, a + t * u.y * u.y};
  }

  KOKKOS_FORCEINLINE_FUNCTION void deflection_vjp(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad) const {
    Vec2<Scalar> const d = offset(x, y);
    Scalar const r = norm(d);
    auto const k = this->kernel();
    k.alpha_over_r_grad(r, dot(g, d), grad);
    Scalar const a = k.alpha_over_r(r), t = k.dalpha_dr(r) - a;
    Vec2<Scalar> const u = unit(d, r);
    Scalar const gu = t * dot(g, u);
    grad[num_shape_params] -= a * g.x + gu * u.x;
    grad[num_shape_params + 1] -= a * g.y + gu * u.y;
  }
  KOKKOS_FORCEINLINE_FUNCTION void potential_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    Vec2<Scalar> const d = offset(x, y);
    Scalar const r = norm(d);
    auto const k = this->kernel();
    k.psi_grad(r, g, grad);
    Scalar const a = k.alpha_over_r(r);
    grad[num_shape_params] -= g * a * d.x;
    grad[num_shape_params + 1] -= g * a * d.y;
  }
  KOKKOS_FORCEINLINE_FUNCTION void convergence_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    Vec2<Scalar> const d = offset(x, y);
    Scalar const r = norm(d);
    auto const k = this->kernel();
    k.kappa_grad(r, g, grad);
    Vec2<Scalar> const u = unit(d, r);
    Scalar const s = g * k.dkappa_dr(r);
    grad[num_shape_params] -= s * u.x;
    grad[num_shape_params + 1] -= s * u.y;
  }

  /// grad[k] += hbar : dH/dtheta_k (hbar the cotangent of (xx, xy, yy); see
  /// profiles/detail/hessian_vjp.hpp).  With S = hbar.xx + hbar.yy,
  /// B = [[hbar.xx, hbar.xy/2], [hbar.xy/2, hbar.yy]], W = u^T B u and
  /// dalpha_dr = 2 kappa - alpha_over_r (circular symmetry),
  ///   hbar : H = a (S - 2W) + 2 kappa W,  a = alpha_over_r,
  /// so the shape gradient is (S - 2W) da/dtheta + 2W dkappa/dtheta, and its
  /// gradient in position (minus the centre gradient) is, with t = dalpha_dr - a,
  ///   u [(t/r)(S - 2W) + 2 kappa'(r) W] + (2t/r)(B u - W u).
  /// Below cusp_radius the position terms are 0 (the limit for a smooth
  /// centre; the value at the floor would overflow for a cusp).
  KOKKOS_INLINE_FUNCTION void hessian_vjp(Scalar x, Scalar y, Hessian<Scalar> hbar, Scalar* grad) const {
    Vec2<Scalar> const d = offset(x, y);
    Scalar const r = norm(d);
    auto const k = this->kernel();
    Vec2<Scalar> const u = unit(d, r);
    Scalar const sum = hbar.xx + hbar.yy;
    Vec2<Scalar> const bu{hbar.xx * u.x + Scalar(0.5) * hbar.xy * u.y, Scalar(0.5) * hbar.xy * u.x + hbar.yy * u.y};
    Scalar const w = dot(u, bu);
    k.alpha_over_r_grad(r, sum - Scalar(2) * w, grad);
    k.kappa_grad(r, Scalar(2) * w, grad);
    Scalar const inv = r > detail::cusp_radius<Scalar> ? Scalar(1) / r : Scalar(0);
    Scalar const a = k.alpha_over_r(r), t = (k.dalpha_dr(r) - a) * inv;
    Scalar const kp = inv > Scalar(0) ? k.dkappa_dr(r) : Scalar(0);
    Scalar const radial = t * (sum - Scalar(2) * w) + Scalar(2) * kp * w;
    Scalar const s = Scalar(2) * t;
    Scalar const on = inv > Scalar(0) ? Scalar(1) : Scalar(0);
    grad[num_shape_params] -= on * (radial * u.x + s * (bu.x - w * u.x));
    grad[num_shape_params + 1] -= on * (radial * u.y + s * (bu.y - w * u.y));
  }

  KOKKOS_INLINE_FUNCTION void pack(Scalar* theta) const {
    this->pack_shape(theta);
    theta[num_shape_params] = this->center_x;
    theta[num_shape_params + 1] = this->center_y;
  }
  KOKKOS_INLINE_FUNCTION static RadialProfile unpack(Scalar const* theta) {
    RadialProfile p{};
    p.unpack_shape(theta);
    p.center_x = theta[num_shape_params];
    p.center_y = theta[num_shape_params + 1];
    return p;
  }
  /// Host: throws std::invalid_argument on bad parameters.
  void check() const {
    this->check_shape();
    check_finite(this->center_x, Params::name, "center_x");
    check_finite(this->center_y, Params::name, "center_y");
  }
};

}  // namespace lensing

#endif  // LENSING_PROFILES_DETAIL_RADIAL_HPP
