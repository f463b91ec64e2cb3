#ifndef LENSING_PROFILES_MASS_PROFILE_HPP
#define LENSING_PROFILES_MASS_PROFILE_HPP

/// \file
/// The MassProfile concept, its Hessian type, and the compile-time check.
///
/// A MassProfile is a trivially copyable value type, templated on the scalar,
/// usable inside kernels.  With x, y the angular position (arcsec) and the
/// lensing potential psi (arcsec^2) it provides:
///
///   using scalar_type = Scalar;
///   static constexpr int num_params;                 // length of the flat vector
///   static constexpr char const* param_names[];      // lenstronomy names, pack order
///   Vec2<Scalar> deflection(Scalar x, Scalar y) const;    // alpha = grad psi
///   Scalar       potential(Scalar x, Scalar y) const;     // psi
///   Scalar       convergence(Scalar x, Scalar y) const;   // kappa = laplacian(psi)/2
///   Hessian<Scalar> hessian(Scalar x, Scalar y) const;    // second derivatives of psi
///   // Vector-Jacobian products: grad[k] += d(g . quantity)/d(theta_k).
///   void deflection_vjp(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad) const;
///   void potential_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const;
///   void convergence_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const;
///   // Every profile here also has hessian_vjp(x, y, Hessian<Scalar> hbar, grad):
///   // grad[k] += hbar.xx dH_xx/dtheta_k + hbar.xy dH_xy/dtheta_k + hbar.yy dH_yy/dtheta_k
///   // (optional for the concept; see profiles/detail/hessian_vjp.hpp).
///   void pack(Scalar* theta) const;                  // to the flat vector
///   static P unpack(Scalar const* theta);            // from the flat vector
///   void check() const;                              // host: throws on bad parameters
///
/// Every member function except check() is KOKKOS_INLINE_FUNCTION and safe at
/// every finite (x, y), the profile centre included (no NaN or inf).

#include <lensing/core/vec2.hpp>

#include <type_traits>
#include <utility>

namespace lensing {

/// Second derivatives of the lensing potential: xx = d2psi/dx2, xy, yy.
/// Convergence kappa = (xx + yy)/2, shear gamma1 = (xx - yy)/2, gamma2 = xy.
template <class Scalar>
struct Hessian {
  Scalar xx;
  Scalar xy;
  Scalar yy;

  KOKKOS_FORCEINLINE_FUNCTION constexpr Hessian& operator+=(Hessian const& o) {
    xx += o.xx;
    xy += o.xy;
    yy += o.yy;
    return *this;
  }
  /// H v (H is symmetric).
  KOKKOS_FORCEINLINE_FUNCTION constexpr Vec2<Scalar> apply(Vec2<Scalar> const& v) const {
    return {xx * v.x + xy * v.y, xy * v.x + yy * v.y};
  }
  /// kappa = trace / 2.
  KOKKOS_FORCEINLINE_FUNCTION constexpr Scalar convergence() const { return Scalar(0.5) * (xx + yy); }
  /// Magnification 1 / det(I - H).
  KOKKOS_FORCEINLINE_FUNCTION constexpr Scalar magnification() const {
    return Scalar(1) / ((Scalar(1) - xx) * (Scalar(1) - yy) - xy * xy);
  }
};

template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION constexpr Hessian<Scalar> operator+(Hessian<Scalar> a, Hessian<Scalar> const& b) {
  return a += b;
}

namespace detail {
/// Radius below which profiles with a central cusp are evaluated at
/// cusp_radius instead: keeps kappa, the Hessian and their gradients finite at
/// the centre (1e-15" in double, 1e-12" in float so that its cube is still a
/// normal number; both far below any pixel).
template <class Scalar>
constexpr Scalar cusp_radius = std::is_same<Scalar, float>::value ? Scalar(1e-12) : Scalar(1e-15);
}  // namespace detail

//----------------------------------------------------------------------------
// Optional capability: batched deflection on the host.
//
// A profile (or a major-axis kernel) may provide
//   void deflection_batch(int m, Scalar const* x, Scalar const* y, Scalar* ax, Scalar* ay) const;
// for m <= deflection_batch_capacity points at once (x, y may alias ax, ay).
// Host row loops use it when present: profiles whose per-point evaluation is
// an iteration (the EPL series) vectorise across points this way.

/// Largest batch a deflection_batch call receives.
constexpr int deflection_batch_capacity = 64;

namespace detail {
template <class P, class = void>
struct has_deflection_batch : std::false_type {};
template <class P>
struct has_deflection_batch<
    P, std::void_t<decltype(std::declval<P const&>().deflection_batch(
           0, std::declval<typename P::scalar_type const*>(), std::declval<typename P::scalar_type const*>(),
           std::declval<typename P::scalar_type*>(), std::declval<typename P::scalar_type*>()))>> : std::true_type {};
}  // namespace detail

/// Whether P (a profile or kernel with scalar_type) provides deflection_batch.
template <class P>
constexpr bool has_deflection_batch_v = detail::has_deflection_batch<P>::value;

// Optional capability: batched deflection VJP on the host.  A profile may provide
//   void deflection_vjp_batch(int m, Scalar const* x, Scalar const* y, Scalar const* gx,
//                             Scalar const* gy, Scalar* grad, int stride) const;
// adding g_i . d alpha(x_i, y_i)/d theta_k into grad[k * stride + i] for
// i < m <= deflection_batch_capacity (the same sums as m deflection_vjp
// calls, each into a column of its own).  Host parameter reductions
// (raytrace/ray_shooting.hpp) use it when present.
namespace detail {
template <class P, class = void>
struct has_deflection_vjp_batch : std::false_type {};
template <class P>
struct has_deflection_vjp_batch<
    P, std::void_t<decltype(std::declval<P const&>().deflection_vjp_batch(
           0, std::declval<typename P::scalar_type const*>(), std::declval<typename P::scalar_type const*>(),
           std::declval<typename P::scalar_type const*>(), std::declval<typename P::scalar_type const*>(),
           std::declval<typename P::scalar_type*>(), 0))>> : std::true_type {};
}  // namespace detail

/// Whether the profile P provides deflection_vjp_batch.
template <class P>
constexpr bool has_deflection_vjp_batch_v = detail::has_deflection_vjp_batch<P>::value;

// Optional capability: branch-free VJP forms for map loops.  A profile whose
// exact VJP needs a rare, parameter-dependent special case (an elliptical
// profile at e = 0 exactly) may provide
//   bool vjp_is_regular() const;   // true when the special case is off
//   void deflection_vjp_regular(x, y, g, grad) const;   // exact when regular
//   void convergence_vjp_regular(x, y, g, grad) const;
// Map reductions test vjp_is_regular once per row and then call the branch-free
// forms, so the pixel loop still vectorises (core/reduce_params.hpp).
namespace detail {
template <class P, class = void>
struct has_regular_vjp : std::false_type {};
template <class P>
struct has_regular_vjp<P, std::void_t<decltype(std::declval<P const&>().vjp_is_regular())>> : std::true_type {};

template <class P>
KOKKOS_FORCEINLINE_FUNCTION bool vjp_is_regular(P const& p) {
  if constexpr (has_regular_vjp<P>::value)
    return p.vjp_is_regular();
  else
    return true;
}
template <class P>
KOKKOS_FORCEINLINE_FUNCTION void deflection_vjp_regular(P const& p, typename P::scalar_type x,
                                                        typename P::scalar_type y, Vec2<typename P::scalar_type> g,
                                                        typename P::scalar_type* grad) {
  if constexpr (has_regular_vjp<P>::value)
    p.deflection_vjp_regular(x, y, g, grad);
  else
    p.deflection_vjp(x, y, g, grad);
}
template <class P>
KOKKOS_FORCEINLINE_FUNCTION void convergence_vjp_regular(P const& p, typename P::scalar_type x,
                                                         typename P::scalar_type y, typename P::scalar_type g,
                                                         typename P::scalar_type* grad) {
  if constexpr (has_regular_vjp<P>::value)
    p.convergence_vjp_regular(x, y, g, grad);
  else
    p.convergence_vjp(x, y, g, grad);
}
}  // namespace detail

//----------------------------------------------------------------------------
// Concept check.

namespace detail {
template <class P, class = void>
struct has_mass_profile_interface : std::false_type {};
template <class P>
struct has_mass_profile_interface<
    P, std::void_t<typename P::scalar_type, decltype(P::num_params), decltype(P::param_names[0]),
                   decltype(std::declval<P const&>().deflection(std::declval<typename P::scalar_type>(),
                                                                std::declval<typename P::scalar_type>())),
                   decltype(std::declval<P const&>().potential(std::declval<typename P::scalar_type>(),
                                                               std::declval<typename P::scalar_type>())),
                   decltype(std::declval<P const&>().convergence(std::declval<typename P::scalar_type>(),
                                                                 std::declval<typename P::scalar_type>())),
                   decltype(std::declval<P const&>().hessian(std::declval<typename P::scalar_type>(),
                                                             std::declval<typename P::scalar_type>())),
                   decltype(std::declval<P const&>().deflection_vjp(
                       std::declval<typename P::scalar_type>(), std::declval<typename P::scalar_type>(),
                       std::declval<Vec2<typename P::scalar_type>>(), std::declval<typename P::scalar_type*>())),
                   decltype(std::declval<P const&>().potential_vjp(
                       std::declval<typename P::scalar_type>(), std::declval<typename P::scalar_type>(),
                       std::declval<typename P::scalar_type>(), std::declval<typename P::scalar_type*>())),
                   decltype(std::declval<P const&>().convergence_vjp(
                       std::declval<typename P::scalar_type>(), std::declval<typename P::scalar_type>(),
                       std::declval<typename P::scalar_type>(), std::declval<typename P::scalar_type*>())),
                   decltype(std::declval<P const&>().pack(std::declval<typename P::scalar_type*>())),
                   decltype(P::unpack(std::declval<typename P::scalar_type const*>())),
                   decltype(std::declval<P const&>().check())>> : std::true_type {};
}  // namespace detail

namespace detail {
template <class L, class = void>
struct has_lens_interface : std::false_type {};
template <class L>
struct has_lens_interface<
    L, std::void_t<typename L::scalar_type,
                   decltype(std::declval<L const&>().deflection(std::declval<typename L::scalar_type>(),
                                                                std::declval<typename L::scalar_type>())),
                   decltype(std::declval<L const&>().convergence(std::declval<typename L::scalar_type>(),
                                                                 std::declval<typename L::scalar_type>())),
                   decltype(std::declval<L const&>().hessian(std::declval<typename L::scalar_type>(),
                                                             std::declval<typename L::scalar_type>()))>>
    : std::true_type {};
}  // namespace detail

/// Whether L is a lens for the forward maps: scalar_type, deflection,
/// convergence and hessian at a point (MassProfiles, Population, LensSum, ...).
template <class L>
constexpr bool is_lens_v = detail::has_lens_interface<L>::value;

/// Whether P models MassProfile (see the file comment).
template <class P>
constexpr bool is_mass_profile_v = detail::has_mass_profile_interface<P>::value&& std::is_trivially_copyable<P>::value;

/// static_assert with readable messages that P is a MassProfile.
template <class P>
constexpr bool check_mass_profile() {
  static_assert(detail::has_mass_profile_interface<P>::value,
                "lensing: not a MassProfile: needs scalar_type, num_params, param_names, deflection, potential, "
                "convergence, hessian, deflection_vjp, potential_vjp, convergence_vjp, pack, unpack and check "
                "(see lensing/profiles/mass_profile.hpp)");
  static_assert(std::is_trivially_copyable<P>::value,
                "lensing: a MassProfile must be trivially copyable to be captured by value in kernels");
  return true;
}

//----------------------------------------------------------------------------
// Prepared lenses for pixel loops.

namespace detail {
template <class L, class = void>
struct has_prepared : std::false_type {};
template <class L>
struct has_prepared<L, std::void_t<decltype(std::declval<L const&>().prepared())>> : std::true_type {};

/// The lens with its per-evaluation set-up done once, for a loop over many
/// points: l.prepared() where the lens provides it (an elliptical profile's
/// frame and kernel constants, a composite's parts), else a copy of l.  The
/// result has deflection, convergence and hessian equal to the lens's (the
/// same formulas) and is trivially copyable when the lens is.  A profile
/// builds its frame at every call; inside a pixel loop GCC cannot hoist that
/// set-up (a branch, and -ftrapping-math keeps conditional square roots and
/// divisions in place), so it recomputed the SIE's frame at every pixel.
template <class L>
KOKKOS_FORCEINLINE_FUNCTION auto prepare(L const& l) {
  if constexpr (has_prepared<L>::value)
    return l.prepared();
  else
    return l;
}

/// Sum of prepared lenses in order (the composite's summation order:
/// ((0 + a_0) + a_1) + ...).
template <class... Q>
struct PreparedSum;
template <class Q>
struct PreparedSum<Q> {
  using scalar_type = typename Q::scalar_type;
  using Scalar = scalar_type;
  Q head;
  KOKKOS_FORCEINLINE_FUNCTION void add_deflection(Scalar x, Scalar y, Vec2<Scalar>& r) const {
    r += head.deflection(x, y);
  }
  KOKKOS_FORCEINLINE_FUNCTION void add_convergence(Scalar x, Scalar y, Scalar& r) const { r += head.convergence(x, y); }
  KOKKOS_FORCEINLINE_FUNCTION void add_hessian(Scalar x, Scalar y, Hessian<Scalar>& r) const {
    r += head.hessian(x, y);
  }
  KOKKOS_FORCEINLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Vec2<Scalar> r{Scalar(0), Scalar(0)};
    add_deflection(x, y, r);
    return r;
  }
  KOKKOS_FORCEINLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const {
    Scalar r(0);
    add_convergence(x, y, r);
    return r;
  }
  KOKKOS_FORCEINLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    Hessian<Scalar> r{Scalar(0), Scalar(0), Scalar(0)};
    add_hessian(x, y, r);
    return r;
  }
};
template <class Q, class R, class... Rest>
struct PreparedSum<Q, R, Rest...> {
  using scalar_type = typename Q::scalar_type;
  using Scalar = scalar_type;
  Q head;
  PreparedSum<R, Rest...> tail;
  KOKKOS_FORCEINLINE_FUNCTION void add_deflection(Scalar x, Scalar y, Vec2<Scalar>& r) const {
    r += head.deflection(x, y);
    tail.add_deflection(x, y, r);
  }
  KOKKOS_FORCEINLINE_FUNCTION void add_convergence(Scalar x, Scalar y, Scalar& r) const {
    r += head.convergence(x, y);
    tail.add_convergence(x, y, r);
  }
  KOKKOS_FORCEINLINE_FUNCTION void add_hessian(Scalar x, Scalar y, Hessian<Scalar>& r) const {
    r += head.hessian(x, y);
    tail.add_hessian(x, y, r);
  }
  KOKKOS_FORCEINLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Vec2<Scalar> r{Scalar(0), Scalar(0)};
    add_deflection(x, y, r);
    return r;
  }
  KOKKOS_FORCEINLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const {
    Scalar r(0);
    add_convergence(x, y, r);
    return r;
  }
  KOKKOS_FORCEINLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    Hessian<Scalar> r{Scalar(0), Scalar(0), Scalar(0)};
    add_hessian(x, y, r);
    return r;
  }
};
template <class Q>
KOKKOS_INLINE_FUNCTION PreparedSum<Q> make_prepared_sum(Q const& q) {
  return {q};
}
template <class Q, class R, class... Rest>
KOKKOS_INLINE_FUNCTION PreparedSum<Q, R, Rest...> make_prepared_sum(Q const& q, R const& r, Rest const&... rest) {
  return {q, make_prepared_sum(r, rest...)};
}
}  // namespace detail

}  // namespace lensing

#endif  // LENSING_PROFILES_MASS_PROFILE_HPP
