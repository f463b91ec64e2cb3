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
#include <lensing/profiles/detail/hessian_vjp.hpp>
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
  ///
  /// No select on e1, e2 themselves: pixel loops that rebuild the frame per
  /// point (the VJPs) get those conditions hoisted as scalars while the
  /// operands stay in the loop, and GCC cannot vectorise a select of vector
  /// operands on a scalar condition without vector masks (AVX2: the whole
  /// likelihood gradient ran scalar).  The choices are products with 0/1
  /// (or +-1) factors instead, exact where e != 0 (x * 1 + y * 0 = x for
  /// finite y; at e = 0 the safe operand c2 = 1 keeps every lane finite).
  KOKKOS_INLINE_FUNCTION static EllipticalFrame from_ellipticity(Scalar e1, Scalar e2) {
    Scalar const c2 = e1 * e1 + e2 * e2;
    Scalar const round = c2 > Scalar(0) ? Scalar(0) : Scalar(1);
    Scalar const pos = e1 >= Scalar(0) ? Scalar(1) : Scalar(0), sgn = e2 < Scalar(0) ? Scalar(-1) : Scalar(1);
    Scalar const c = math::sqrt(c2 + round);
    Scalar const big = c + math::fabs(e1), small = e2 * e2 / big;  // c + |e1|, c - |e1|
    Scalar const plus = pos * big + (Scalar(1) - pos) * small, minus = pos * small + (Scalar(1) - pos) * big;
    Scalar const cc = math::min(c, max_ellipticity_modulus<Scalar>);
    Scalar const sphi = math::sqrt(minus / (Scalar(2) * c));
    Scalar const keep = Scalar(1) - round;
    return {keep * ((Scalar(1) - cc) / (Scalar(1) + cc)) + round, keep * math::sqrt(plus / (Scalar(2) * c)) + round,
            keep * (sgn * sphi)};
  }
  /// (q_bar, phi_bar) -> (e1_bar, e2_bar): the VJP of ellipticity_to_q_phi
  /// (geometry/ellipticity.hpp), written without branches so that pixel
  /// loops calling it vectorise (0 at e = 0, as there).
  KOKKOS_FORCEINLINE_FUNCTION static Vec2<Scalar> ellipticity_vjp(Scalar e1, Scalar e2, Scalar q_bar, Scalar phi_bar) {
    // c2 + tiny rather than max(c2, tiny): the max's condition is loop
    // invariant and hoisted while its operand stays in the loop, a select GCC
    // cannot vectorise without vector masks (AVX2).  The sum is c2 itself
    // unless |e| < 1e-142 (double) or 4e-12 (float), and tiny at e = 0.
    constexpr Scalar tiny = std::is_same<Scalar, float>::value ? Scalar(1e-30) : Scalar(1e-300);
    Scalar const c2 = e1 * e1 + e2 * e2 + tiny;
    Scalar const c = math::sqrt(c2);
    Scalar const dq_dc =
        math::select(c < max_ellipticity_modulus<Scalar>, Scalar(-2) / ((Scalar(1) + c) * (Scalar(1) + c)), Scalar(0));
    // Products by constants of (e1, e2) alone, which pixel loops hoist: no
    // division per point.
    Scalar const a = q_bar * (dq_dc / c), b = phi_bar * (Scalar(0.5) / c2);
    return {a * e1 - b * e2, a * e2 + b * e1};
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

namespace detail {
/// Per-point outputs of a kernel's batched deflection VJP (host):
/// major-axis-frame deflection and Hessian and the q-cotangent g . d alpha'/dq.
template <class Scalar>
struct KernelVjpBatch {
  Scalar ax[deflection_batch_capacity], ay[deflection_batch_capacity];
  Scalar hxx[deflection_batch_capacity], hxy[deflection_batch_capacity], hyy[deflection_batch_capacity];
  Scalar q_bar[deflection_batch_capacity];
};
// Whether a kernel K provides
//   void deflection_vjp_batch(int m, Scalar const* x, Scalar const* y, Scalar const* gx, Scalar const* gy,
//                             Scalar* grad, int stride, KernelVjpBatch<Scalar>& out) const;
// (major-axis frame: shape cotangents added into grad[k * stride + i], the
// rest written to out), used by EllipticalProfile::deflection_vjp_batch.
template <class K, class = void>
struct has_kernel_vjp_batch : std::false_type {};
template <class K>
struct has_kernel_vjp_batch<
    K, std::void_t<decltype(std::declval<K const&>().deflection_vjp_batch(
           0, std::declval<typename K::scalar_type const*>(), std::declval<typename K::scalar_type const*>(),
           std::declval<typename K::scalar_type const*>(), std::declval<typename K::scalar_type const*>(),
           std::declval<typename K::scalar_type*>(), 0, std::declval<KernelVjpBatch<typename K::scalar_type>&>()))>>
    : std::true_type {};
// Whether a kernel K provides, at one point, the deflection cotangents
// together with alpha' and H' (one evaluation of shared subexpressions):
//   void deflection_grad_with_values(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad, Scalar& q_grad,
//                                    Vec2<Scalar>& alpha, Hessian<Scalar>& hess) const;
template <class K, class = void>
struct has_deflection_grad_with_values : std::false_type {};
template <class K>
struct has_deflection_grad_with_values<
    K, std::void_t<decltype(std::declval<K const&>().deflection_grad_with_values(
           std::declval<typename K::scalar_type>(), std::declval<typename K::scalar_type>(),
           std::declval<Vec2<typename K::scalar_type>>(), std::declval<typename K::scalar_type*>(),
           std::declval<typename K::scalar_type&>(), std::declval<Vec2<typename K::scalar_type>&>(),
           std::declval<Hessian<typename K::scalar_type>&>()))>> : std::true_type {};
}  // namespace detail

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
  // The VJPs in a given frame f (rotation of the major axis; f.q is the
  // profile's): accumulate the shape and centre cotangents into grad and
  // return the (q, phi) cotangents.  Op 0: deflection (g a Vec2), 1:
  // potential, 2: convergence (g a Scalar).
  template <int Op, class G>
  KOKKOS_FORCEINLINE_FUNCTION void vjp_in_frame(EllipticalFrame<Scalar> const& f, Vec2<Scalar> d, G g, Scalar* grad,
                                                Scalar& q_bar, Scalar& phi_bar) const {
    Vec2<Scalar> const p = f.to_major(d);
    auto const k = this->kernel(f.q);
    if constexpr (Op == 0) {
      Vec2<Scalar> const gp = f.to_major(g);  // R^T g
      Hessian<Scalar> hp;
      Vec2<Scalar> ap;
      if constexpr (detail::has_deflection_grad_with_values<kernel_type>::value) {
        k.deflection_grad_with_values(p.x, p.y, gp, grad, q_bar, ap, hp);
      } else {
        k.deflection_grad(p.x, p.y, gp, grad, q_bar);
        hp = k.hessian(p.x, p.y);
        ap = k.deflection(p.x, p.y);
      }
      Vec2<Scalar> const dp = hp.apply(Vec2<Scalar>{p.y, -p.x});
      phi_bar = gp.x * (dp.x - ap.y) + gp.y * (dp.y + ap.x);
      Vec2<Scalar> const hg = f.to_sky(hp.apply(gp));  // H g in the sky frame
      grad[icx] -= hg.x;
      grad[icy] -= hg.y;
    } else {
      Vec2<Scalar> v;  // major-axis gradient of the quantity: alpha' for psi, grad kappa' for kappa
      if constexpr (Op == 1) {
        k.potential_grad(p.x, p.y, g, grad, q_bar);
        v = k.deflection(p.x, p.y);
      } else {
        k.convergence_grad(p.x, p.y, g, grad, q_bar);
        v = k.convergence_gradient(p.x, p.y);
      }
      phi_bar = g * (v.x * p.y - v.y * p.x);
      Vec2<Scalar> const vs = f.to_sky(v);
      grad[icx] -= g * vs.x;
      grad[icy] -= g * vs.y;
    }
  }
  // Away from e = 0: one evaluation, (q_bar, phi_bar) chained to (e1, e2).
  template <int Op, class G>
  KOKKOS_FORCEINLINE_FUNCTION void vjp_regular(Scalar x, Scalar y, G g, Scalar* grad) const {
    Scalar q_bar = 0, phi_bar = 0;
    vjp_in_frame<Op>(frame(), offset(x, y), g, grad, q_bar, phi_bar);
    // The branch-free form: ellipticity_to_q_phi_vjp's early return at e = 0
    // left a select on a hoisted condition in the pixel loops, which GCC
    // cannot vectorise without vector masks (AVX2).  Exact for e != 0.
    Vec2<Scalar> const ge = EllipticalFrame<Scalar>::ellipticity_vjp(this->e1, this->e2, q_bar, phi_bar);
    grad[ie1] += ge.x;
    grad[ie2] += ge.y;
  }
  // At e = 0 exactly (q, phi) is a singular chart: the function of (e1, e2)
  // is smooth there (or has a cone, for axis ratios linear in |e|) but the
  // chain gives 0 * infinity.  Moving along +e1 puts the major axis at
  // phi = 0, along -e1 at phi = pi/2, along +-e2 at phi = pi/4 and 3pi/4, and
  // dq/d|e| = -2, so the symmetric derivatives are d/de1 = -(dq(0) - dq(pi/2))
  // and d/de2 = -(dq(pi/4) - dq(3pi/4)), dq(phi) the q-cotangent in that
  // frame: three extra kernel evaluations.  A separate function, so that the
  // branch stays out of the vectorised map loops (vjp_is_regular).
  template <int Op, class G>
  KOKKOS_INLINE_FUNCTION void vjp_round(Scalar x, Scalar y, G g, Scalar* grad) const {
    Vec2<Scalar> const d = offset(x, y);
    Scalar const h = math::sqrt(Scalar(0.5));
    EllipticalFrame<Scalar> const f0 = frame();
    EllipticalFrame<Scalar> const fr[3] = {{f0.q, Scalar(0), Scalar(1)}, {f0.q, h, h}, {f0.q, -h, h}};
    Scalar q0 = 0, phi = 0, qr[3] = {0, 0, 0};
    vjp_in_frame<Op>(f0, d, g, grad, q0, phi);
    for (int i = 0; i < 3; ++i) {
      Scalar scratch[num_params];
      for (int j = 0; j < num_params; ++j)
        scratch[j] = 0;
      vjp_in_frame<Op>(fr[i], d, g, scratch, qr[i], phi);
    }
    grad[ie1] -= q0 - qr[0];
    grad[ie2] -= qr[1] - qr[2];
  }

 public:
  KOKKOS_FORCEINLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    auto const f = frame();
    Vec2<Scalar> const p = f.to_major(offset(x, y));
    return f.to_sky(this->kernel(f.q).deflection(p.x, p.y));
  }
  using kernel_type = decltype(std::declval<Params const&>().kernel(Scalar(1)));

  /// The profile with its frame and kernel built once, for loops over many
  /// points (detail::prepare): deflection, convergence and hessian as the
  /// profile's, without the per-call frame (3 square roots, 4 divisions).
  struct Prepared {
    using scalar_type = Scalar;
    EllipticalFrame<Scalar> f;
    kernel_type k;
    Scalar cx, cy;
    KOKKOS_FORCEINLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
      Vec2<Scalar> const p = f.to_major(Vec2<Scalar>{x - cx, y - cy});
      return f.to_sky(k.deflection(p.x, p.y));
    }
    KOKKOS_FORCEINLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const {
      Vec2<Scalar> const p = f.to_major(Vec2<Scalar>{x - cx, y - cy});
      return k.convergence(p.x, p.y);
    }
    KOKKOS_FORCEINLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
      Vec2<Scalar> const p = f.to_major(Vec2<Scalar>{x - cx, y - cy});
      return f.to_sky(k.hessian(p.x, p.y));
    }
  };
  KOKKOS_INLINE_FUNCTION Prepared prepared() const {
    auto const f = frame();
    return {f, this->kernel(f.q), this->center_x, this->center_y};
  }

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

  /// Whether the *_vjp_regular forms are exact (e != 0; see vjp_round).
  /// Map kernels test this once and then call the branch-free forms.
  KOKKOS_FORCEINLINE_FUNCTION bool vjp_is_regular() const { return this->e1 != Scalar(0) || this->e2 != Scalar(0); }
  KOKKOS_FORCEINLINE_FUNCTION void deflection_vjp(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad) const {
    if (vjp_is_regular())
      vjp_regular<0>(x, y, g, grad);
    else
      vjp_round<0>(x, y, g, grad);
  }
  /// deflection_vjp, exact only where vjp_is_regular() (no branch).
  KOKKOS_FORCEINLINE_FUNCTION void deflection_vjp_regular(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad) const {
    vjp_regular<0>(x, y, g, grad);
  }
  /// Batched deflection VJP (host), present when the kernel provides one:
  /// grad[k * stride + i] += g_i . d alpha(x_i, y_i)/d theta_k, i < m (see
  /// has_deflection_vjp_batch_v); the same chain rule as deflection_vjp.
  template <class K = kernel_type, std::enable_if_t<detail::has_kernel_vjp_batch<K>::value, int> = 0>
  KOKKOS_INLINE_FUNCTION void deflection_vjp_batch(int m, Scalar const* x, Scalar const* y, Scalar const* gx,
                                                   Scalar const* gy, Scalar* grad, int stride) const {
    if (!vjp_is_regular()) {  // the singular chart: see vjp_round
      for (int i = 0; i < m; ++i) {
        Scalar gi[num_params];
        for (int j = 0; j < num_params; ++j)
          gi[j] = 0;
        deflection_vjp(x[i], y[i], Vec2<Scalar>{gx[i], gy[i]}, gi);
        for (int j = 0; j < num_params; ++j)
          grad[j * stride + i] += gi[j];
      }
      return;
    }
    auto const f = frame();
    auto const k = this->kernel(f.q);
    Scalar px[deflection_batch_capacity], py[deflection_batch_capacity], gpx[deflection_batch_capacity],
        gpy[deflection_batch_capacity];
    for (int i = 0; i < m; ++i) {
      Vec2<Scalar> const p = f.to_major(offset(x[i], y[i]));
      Vec2<Scalar> const gp = f.to_major(Vec2<Scalar>{gx[i], gy[i]});
      px[i] = p.x;
      py[i] = p.y;
      gpx[i] = gp.x;
      gpy[i] = gp.y;
    }
    detail::KernelVjpBatch<Scalar> out;
    k.deflection_vjp_batch(m, px, py, gpx, gpy, grad, stride, out);
    // ellipticity_to_q_phi_vjp is linear in (q_bar, phi_bar).
    Vec2<Scalar> const eq = ellipticity_to_q_phi_vjp(this->e1, this->e2, Scalar(1), Scalar(0));
    Vec2<Scalar> const ephi = ellipticity_to_q_phi_vjp(this->e1, this->e2, Scalar(0), Scalar(1));
    for (int i = 0; i < m; ++i) {
      Hessian<Scalar> const hp{out.hxx[i], out.hxy[i], out.hyy[i]};
      Vec2<Scalar> const gp{gpx[i], gpy[i]};
      Vec2<Scalar> const dp = hp.apply(Vec2<Scalar>{py[i], -px[i]});
      Scalar const phi_bar = gp.x * (dp.x - out.ay[i]) + gp.y * (dp.y + out.ax[i]);
      grad[ie1 * stride + i] += out.q_bar[i] * eq.x + phi_bar * ephi.x;
      grad[ie2 * stride + i] += out.q_bar[i] * eq.y + phi_bar * ephi.y;
      Vec2<Scalar> const hg = f.to_sky(hp.apply(gp));
      grad[icx * stride + i] -= hg.x;
      grad[icy * stride + i] -= hg.y;
    }
  }
  KOKKOS_FORCEINLINE_FUNCTION void potential_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    if (vjp_is_regular())
      vjp_regular<1>(x, y, g, grad);
    else
      vjp_round<1>(x, y, g, grad);
  }
  KOKKOS_FORCEINLINE_FUNCTION void convergence_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    if (vjp_is_regular())
      vjp_regular<2>(x, y, g, grad);
    else
      vjp_round<2>(x, y, g, grad);
  }
  /// convergence_vjp, exact only where vjp_is_regular() (no branch).
  KOKKOS_FORCEINLINE_FUNCTION void convergence_vjp_regular(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    vjp_regular<2>(x, y, g, grad);
  }

  /// grad[k] += hbar : dH/dtheta_k (exact third derivatives by dual numbers,
  /// see profiles/detail/hessian_vjp.hpp).  Known limitation: at e = 0 exactly
  /// the e1, e2 components come out 0 (the duals pass through the singular
  /// (q, phi) chart; vjp_round fixes this for the first-order VJPs).
  KOKKOS_INLINE_FUNCTION void hessian_vjp(Scalar x, Scalar y, Hessian<Scalar> hbar, Scalar* grad) const {
    using DualProfile = EllipticalProfile<detail::rebind_scalar_t<Params, detail::hessian_dual_t<Scalar>>>;
    detail::hessian_vjp_by_dual<DualProfile>(*this, x, y, hbar, grad);
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
