#ifndef LENSING_PROFILES_DETAIL_HESSIAN_VJP_HPP
#define LENSING_PROFILES_DETAIL_HESSIAN_VJP_HPP

/// \file
/// Parameter VJP of the Hessian by forward differentiation of the exact
/// deflection VJP along the position (used by EllipticalProfile and
/// Multipole; radial profiles, the shear, the sheet and Composite have
/// closed forms in their own headers).
///
/// Convention of every `hessian_vjp(x, y, Hessian<Scalar> hbar, Scalar* grad)`:
/// hbar is the cotangent of the three stored components (xx, xy, yy), so
///   grad[k] += hbar.xx dH_xx/dtheta_k + hbar.xy dH_xy/dtheta_k + hbar.yy dH_yy/dtheta_k
/// (H_xy counted once: shear gamma2 = H_xy has cotangent hbar.xy = gbar2).
///
/// Since H_xx = d alpha_x/dx, H_xy = d alpha_x/dy and H_yy = d alpha_y/dy,
///   hbar : dH/dtheta = d/dx [(hbar.xx, 0) . d alpha/dtheta]
///                    + d/dy [(hbar.xy, hbar.yy) . d alpha/dtheta],
/// i.e. the tangents of two deflection_vjp evaluations on Dual numbers with
/// a unit tangent in x, then in y (exact to rounding; parameters carried as
/// constants).  Float profiles are differentiated in Dual<double> (the
/// third derivatives of float kernels by duals would lose their float
/// thresholds; double costs 2x on GPUs but keeps every profile's double
/// branch constants), the result rounded to float.

#include <lensing/core/dual.hpp>
#include <lensing/profiles/mass_profile.hpp>

#include <type_traits>

namespace lensing {
namespace detail {

/// The scalar in which Hessian VJPs of Scalar profiles are differentiated.
template <class Scalar>
using hessian_dual_t = Dual<std::conditional_t<std::is_same<Scalar, float>::value, double, Scalar>>;

/// P<S> -> P<D> for a parameter aggregate templated on its scalar only.
template <class P, class D>
struct rebind_scalar;
template <template <class> class P, class S, class D>
struct rebind_scalar<P<S>, D> {
  using type = P<D>;
};
template <class P, class D>
using rebind_scalar_t = typename rebind_scalar<P, D>::type;

/// grad[k] += hbar : dH/dtheta_k for `profile`, evaluated as DualProfile (the
/// same profile on hessian_dual_t; see the file comment).
template <class DualProfile, class Profile, class Scalar>
KOKKOS_INLINE_FUNCTION void hessian_vjp_by_dual(Profile const& profile, Scalar x, Scalar y, Hessian<Scalar> hbar,
                                                Scalar* grad) {
  using D = typename DualProfile::scalar_type;
  using R = decltype(D::v);
  constexpr int n = Profile::num_params;
  static_assert(DualProfile::num_params == n, "lensing: dual profile must have the same parameters");
  Scalar theta[n];
  profile.pack(theta);
  D theta_d[n];
  for (int k = 0; k < n; ++k)
    theta_d[k] = D(R(theta[k]), R(0));
  DualProfile const pd = DualProfile::unpack(theta_d);
  D acc[n];
  for (int k = 0; k < n; ++k)
    acc[k] = D(R(0), R(0));
  pd.deflection_vjp(D(R(x), R(1)), D(R(y), R(0)), Vec2<D>{D(R(hbar.xx), R(0)), D(R(0), R(0))}, acc);
  pd.deflection_vjp(D(R(x), R(0)), D(R(y), R(1)), Vec2<D>{D(R(hbar.xy), R(0)), D(R(hbar.yy), R(0))}, acc);
  for (int k = 0; k < n; ++k)
    grad[k] += Scalar(acc[k].t);
}

}  // namespace detail

namespace detail {
template <class P, class = void>
struct has_hessian_vjp : std::false_type {};
template <class P>
struct has_hessian_vjp<
    P, std::void_t<decltype(std::declval<P const&>().hessian_vjp(
           std::declval<typename P::scalar_type>(), std::declval<typename P::scalar_type>(),
           std::declval<Hessian<typename P::scalar_type>>(), std::declval<typename P::scalar_type*>()))>>
    : std::true_type {};
}  // namespace detail

/// Whether P provides hessian_vjp(x, y, Hessian hbar, Scalar* grad) (every
/// profile in lensing/profiles does; see the file comment for its convention).
template <class P>
constexpr bool has_hessian_vjp_v = detail::has_hessian_vjp<P>::value;

}  // namespace lensing

#endif  // LENSING_PROFILES_DETAIL_HESSIAN_VJP_HPP
