#ifndef LENSING_PROFILES_DETAIL_ELLIPTICAL_HPP
#define LENSING_PROFILES_DETAIL_ELLIPTICAL_HPP

/// \file
/// EllipticalProfile<Params>: every MassProfile operation for a profile given
/// in the frame of its major axis, rotated by the position angle phi and
/// shifted to its centre.
///
/// Params is an aggregate whose members are the shape parameters followed by
/// e1, e2, center_x, center_y (pack order), and which provides
///   using scalar_type;  static constexpr int num_shape_params;
///   static constexpr char const* param_names[num_shape_params + 4];
///   static constexpr char const* name;   // "lensing::SIE", for errors
///   void pack_shape(Scalar*) const;  void unpack_shape(Scalar const*);
///   void check_shape() const;        // host: throws std::invalid_argument
///   K kernel(Scalar q) const;        // major-axis-frame functions, below
/// K, at major-axis coordinates (x, y), gives deflection(x, y) -> Vec2,
/// potential, convergence, hessian, convergence_gradient(x, y) -> Vec2, and
/// accumulates g . d(quantity)/d(shape_k) into grad[k] and the q-derivative
/// into q_grad: deflection_grad(x, y, Vec2 g, grad, q_grad),
/// potential_grad(x, y, g, grad, q_grad), convergence_grad(x, y, g, grad, q_grad).
///
/// Sky frame: d = (x - cx, y - cy), x' = R(phi)^T d, alpha = R(phi) alpha'(x'),
/// H = R H' R^T.  Position-angle derivative: dx'/dphi = (y', -x') and
/// dR/dphi = R J with J = [[0, -1], [1, 0]], so
///   g . dalpha/dphi = g' . (J alpha' + H' (y', -x')),  g' = R^T g.
/// (q, phi) derivatives are chained to (e1, e2) by ellipticity_to_q_phi_vjp.

#include <lensing/core/errors.hpp>
#include <lensing/geometry/ellipticity.hpp>
#include <lensing/profiles/mass_profile.hpp>

#include <type_traits>
#include <utility>

namespace lensing {

/// Axis ratio and the rotation of the major axis, from (e1, e2).
template <class Scalar>
struct EllipticalFrame {
  Scalar q;
  Scalar cos_phi;
  Scalar sin_phi;

  /// phi = atan2(e2, e1)/2 without trigonometric calls: cos(phi), sin(phi)
  /// from the half-angle formulas, with the cancelling difference c - |e1|
  /// rewritten as e2^2 / (c + |e1|).  q is capped as in ellipticity_to_q_phi.
  KOKKOS_INLINE_FUNCTION static EllipticalFrame from_ellipticity(Scalar e1, Scalar e2) {
    Scalar const c2 = e1 * e1 + e2 * e2;
    if (!(c2 > Scalar(0))) return {Scalar(1), Scalar(1), Scalar(0)};
    Scalar const c = math::sqrt(c2);
    Scalar const big = c + math::fabs(e1), small = e2 * e2 / big;  // c + |e1|, c - |e1|
    Scalar const plus = e1 >= Scalar(0) ? big : small, minus = e1 >= Scalar(0) ? small : big;
    Scalar const cc = math::min(c, max_ellipticity_modulus<Scalar>);
    Scalar const sphi = math::sqrt(minus / (Scalar(2) * c));
    return {(Scalar(1) - cc) / (Scalar(1) + cc), math::sqrt(plus / (Scalar(2) * c)), e2 < Scalar(0) ? -sphi : sphi};
  }
  /// Sky offset -> major-axis frame: R^T d.
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> to_major(Vec2<Scalar> d) const {
    return {cos_phi * d.x + sin_phi * d.y, -sin_phi * d.x + cos_phi * d.y};
  }
  /// Major-axis-frame vector -> sky: R v.
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> to_sky(Vec2<Scalar> v) const {
    return {cos_phi * v.x - sin_phi * v.y, sin_phi * v.x + cos_phi * v.y};
  }
  /// R H R^T.
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> to_sky(Hessian<Scalar> const& h) const {
    Scalar const c = cos_phi, s = sin_phi;
    Scalar const cc = c * c, ss = s * s, cs = c * s;
    return {cc * h.xx - Scalar(2) * cs * h.xy + ss * h.yy, cs * (h.xx - h.yy) + (cc - ss) * h.xy,
            ss * h.xx + Scalar(2) * cs * h.xy + cc * h.yy};
  }
};

template <class Params>
struct EllipticalProfile : Params {
  using scalar_type = typename Params::scalar_type;
  using Scalar = scalar_type;
  static constexpr int num_shape_params = Params::num_shape_params;
  static constexpr int num_params = num_shape_params + 4;

 private:
  static constexpr int ie1 = num_shape_params, ie2 = num_shape_params + 1;
  static constexpr int icx = num_shape_params + 2, icy = num_shape_params + 3;
  KOKKOS_INLINE_FUNCTION EllipticalFrame<Scalar> frame() const {
    return EllipticalFrame<Scalar>::from_ellipticity(this->e1, this->e2);
  }
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> offset(Scalar x, Scalar y) const {
    return {x - this->center_x, y - this->center_y};
  }
  // Chain (q_bar, phi_bar) to (e1, e2).
  KOKKOS_INLINE_FUNCTION void add_shape_angles(Scalar q_bar, Scalar phi_bar, Scalar* grad) const {
    Vec2<Scalar> const g = ellipticity_to_q_phi_vjp(this->e1, this->e2, q_bar, phi_bar);
    grad[ie1] += g.x;
    grad[ie2] += g.y;
  }

 public:
  KOKKOS_FORCEINLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    auto const f = frame();
    Vec2<Scalar> const p = f.to_major(offset(x, y));
    return f.to_sky(this->kernel(f.q).deflection(p.x, p.y));
  }
  using kernel_type = decltype(std::declval<Params const&>().kernel(Scalar(1)));

  /// Batched deflection (host), present when the kernel provides one: rotate
  /// into the major-axis frame, evaluate the batch, rotate back.
  template <class K = kernel_type, std::enable_if_t<has_deflection_batch_v<K>, int> = 0>
  KOKKOS_INLINE_FUNCTION void deflection_batch(int m, Scalar const* x, Scalar const* y, Scalar* ax, Scalar* ay) const {
    auto const f = frame();
    Scalar px[deflection_batch_capacity], py[deflection_batch_capacity];
    for (int i = 0; i < m; ++i) {
      Vec2<Scalar> const p = f.to_major(offset(x[i], y[i]));
      px[i] = p.x;
      py[i] = p.y;
    }
    this->kernel(f.q).deflection_batch(m, px, py, px, py);
    for (int i = 0; i < m; ++i) {
      Vec2<Scalar> const a = f.to_sky(Vec2<Scalar>{px[i], py[i]});
      ax[i] = a.x;
      ay[i] = a.y;
    }
  }

  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const {
    auto const f = frame();
    Vec2<Scalar> const p = f.to_major(offset(x, y));
    return this->kernel(f.q).potential(p.x, p.y);
  }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const {
    auto const f = frame();
    Vec2<Scalar> const p = f.to_major(offset(x, y));
    return this->kernel(f.q).convergence(p.x, p.y);
  }
  KOKKOS_FORCEINLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    auto const f = frame();
    Vec2<Scalar> const p = f.to_major(offset(x, y));
    return f.to_sky(this->kernel(f.q).hessian(p.x, p.y));
  }

  KOKKOS_FORCEINLINE_FUNCTION void deflection_vjp(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad) const {
    auto const f = frame();
    Vec2<Scalar> const p = f.to_major(offset(x, y));
    auto const k = this->kernel(f.q);
    Vec2<Scalar> const gp = f.to_major(g);  // R^T g
    Scalar q_bar = 0;
    k.deflection_grad(p.x, p.y, gp, grad, q_bar);
    Hessian<Scalar> const hp = k.hessian(p.x, p.y);
    Vec2<Scalar> const ap = k.deflection(p.x, p.y);
    Vec2<Scalar> const dp = hp.apply(Vec2<Scalar>{p.y, -p.x});
    Scalar const phi_bar = gp.x * (dp.x - ap.y) + gp.y * (dp.y + ap.x);
    add_shape_angles(q_bar, phi_bar, grad);
    Vec2<Scalar> const hg = f.to_sky(hp.apply(gp));  // H g in the sky frame
    grad[icx] -= hg.x;
    grad[icy] -= hg.y;
  }
  KOKKOS_FORCEINLINE_FUNCTION void potential_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    auto const f = frame();
    Vec2<Scalar> const p = f.to_major(offset(x, y));
    auto const k = this->kernel(f.q);
    Scalar q_bar = 0;
    k.potential_grad(p.x, p.y, g, grad, q_bar);
    Vec2<Scalar> const ap = k.deflection(p.x, p.y);
    add_shape_angles(q_bar, g * (ap.x * p.y - ap.y * p.x), grad);
    Vec2<Scalar> const a = f.to_sky(ap);
    grad[icx] -= g * a.x;
    grad[icy] -= g * a.y;
  }
  KOKKOS_FORCEINLINE_FUNCTION void convergence_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    auto const f = frame();
    Vec2<Scalar> const p = f.to_major(offset(x, y));
    auto const k = this->kernel(f.q);
    Scalar q_bar = 0;
    k.convergence_grad(p.x, p.y, g, grad, q_bar);
    Vec2<Scalar> const kp = k.convergence_gradient(p.x, p.y);
    add_shape_angles(q_bar, g * (kp.x * p.y - kp.y * p.x), grad);
    Vec2<Scalar> const ks = f.to_sky(kp);
    grad[icx] -= g * ks.x;
    grad[icy] -= g * ks.y;
  }

  KOKKOS_INLINE_FUNCTION void pack(Scalar* theta) const {
    this->pack_shape(theta);
    theta[ie1] = this->e1;
    theta[ie2] = this->e2;
    theta[icx] = this->center_x;
    theta[icy] = this->center_y;
  }
  KOKKOS_INLINE_FUNCTION static EllipticalProfile unpack(Scalar const* theta) {
    EllipticalProfile p{};
    p.unpack_shape(theta);
    p.e1 = theta[ie1];
    p.e2 = theta[ie2];
    p.center_x = theta[icx];
    p.center_y = theta[icy];
    return p;
  }
  /// Host: throws std::invalid_argument on bad parameters.
  void check() const {
    this->check_shape();
    check_finite(this->e1, Params::name, "e1");
    check_finite(this->e2, Params::name, "e2");
    check_argument(this->e1 * this->e1 + this->e2 * this->e2 < Scalar(1), Params::name,
                   "|e| = sqrt(e1^2 + e2^2) must be < 1");
    check_finite(this->center_x, Params::name, "center_x");
    check_finite(this->center_y, Params::name, "center_y");
  }
};

}  // namespace lensing

#endif  // LENSING_PROFILES_DETAIL_ELLIPTICAL_HPP
