#ifndef LENSING_PROFILES_NFW_HPP
#define LENSING_PROFILES_NFW_HPP

#include <lensing/core/math.hpp>
#include <lensing/profiles/detail/radial.hpp>

#include <limits>
#include <type_traits>

namespace lensing {

namespace detail {

/// log1p(z)/z, 1 at z = 0 (series below |z| = 1e-4: error < z^5/6).
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar log1p_over(Scalar z) {
  if (math::fabs(z) < Scalar(1e-4))
    return Scalar(1) - z * (Scalar(1) / 2 - z * (Scalar(1) / 3 - z * (Scalar(1) / 4 - z / 5)));
  return math::log1p(z) / z;
}

/// Largest x = r/Rs at which the spherical NFW-family functions are evaluated
/// (x^3 stays finite: 1e12 in float, 1e100 in double); beyond, the values at
/// that x are returned.  Irrelevant in practice (r > 1e12 Rs).
template <class Scalar>
constexpr Scalar nfw_x_max = std::is_same<Scalar, float>::value ? Scalar(1e12) : Scalar(1e100);

/// Series radius in u = 1 - x^2 of the NFW-family functions, and the number
/// of terms (tail < 0.5^n / n: 56 in double, 28 in float; the Hernquist series
/// has coefficients ~ 1/j and needs a few more).
template <class Scalar>
struct NFWSeries {
  static constexpr bool is_float = std::is_same<Scalar, float>::value;
  static constexpr int nF = is_float ? 28 : 56;
  static constexpr int nKH = is_float ? 36 : 76;
};

/// Shared functions of x = r/Rs (> 0) for NFW, TNFW and Hernquist, with
/// u = 1 - x^2:  A = atanh(sqrt u)/sqrt u (x < 1), atan(sqrt -u)/sqrt -u (x > 1),
/// 1 at x = 1;  F = (A - 1)/u (= 1/3 at x = 1) and the x-derivatives dF, dA.
/// Series in u for |u| < 1/2 (the direct forms lose ~eps/u and ~eps/u^2).
template <class Scalar>
struct NFWAux {
  Scalar u, A, F, dF, dA;
};

template <class Scalar>
KOKKOS_INLINE_FUNCTION NFWAux<Scalar> nfw_aux(Scalar x) {
  NFWAux<Scalar> o;
  Scalar const u = (Scalar(1) - x) * (Scalar(1) + x);
  o.u = u;
  if (math::fabs(u) < Scalar(0.5)) {
    // F = sum u^k/(2k+3),  dF/dx = -2x sum (k+1) u^k/(2k+5)
    Scalar f = Scalar(0), df = Scalar(0);
    for (int k = NFWSeries<Scalar>::nF - 1; k >= 0; --k) {
      f = f * u + Scalar(1) / Scalar(2 * k + 3);
      df = df * u + Scalar(k + 1) / Scalar(2 * k + 5);
    }
    o.F = f;
    o.A = Scalar(1) + u * f;
    o.dF = Scalar(-2) * x * df;
    o.dA = (x * x * f - Scalar(1)) / x;
  } else {
    if (x < Scalar(1)) {
      Scalar const s = math::sqrt(u);
      // atanh(s) = log((1+s)/x): the direct atanh overflows for tiny x.
      Scalar const at = x < Scalar(0.5) ? math::log1p(s) - math::log(x) : math::atanh(s);
      o.A = at / s;
    } else {
      Scalar const s = math::sqrt(-u);
      o.A = math::atan(s) / s;
    }
    o.F = (o.A - Scalar(1)) / u;
    Scalar const xu = x * u;
    o.dF = (Scalar(3) * x * x * o.F - Scalar(1)) / xu;
    o.dA = (x * x * o.A - Scalar(1)) / xu;
  }
  return o;
}

/// g(x)/x^2 with g = ln(x/2) + A (NFW: alpha = 4 ks Rs g/x) and h = ln^2(x/2) +
/// (x^2 - 1) A^2 (NFW: psi = 2 ks Rs^2 h), both cancellation-free near x = 0
/// (g ~ (x^2/2)(ln(2/x) - 1/2), h ~ (x^2/2) ln^2(2/x)).
template <class Scalar>
struct NFWgh {
  Scalar g_x2, g, h;
};

template <class Scalar>
KOKKOS_INLINE_FUNCTION NFWgh<Scalar> nfw_gh(Scalar x, NFWAux<Scalar> const& a) {
  NFWgh<Scalar> o;
  Scalar const x2 = x * x;
  if (x < Scalar(1)) {
    Scalar const s = math::sqrt(a.u), d1 = Scalar(1) + s;
    Scalar const z = -x2 / (Scalar(2) * d1);  // l = log1p(z)
    Scalar const l = math::log1p(z);
    o.h = (Scalar(2) * math::log(x) - math::log(Scalar(2) * d1)) * l;
    if (x < Scalar(0.75)) {
      // g = [x^2 ln(2/x)/(1+s) + l]/s
      o.g_x2 = (math::log(Scalar(2) / x) - Scalar(0.5) * log1p_over(z)) / (d1 * s);
      o.g = o.g_x2 * x2;
      return o;
    }
  } else {
    Scalar const lx = math::log(Scalar(0.5) * x), at = math::atan(math::sqrt((x - Scalar(1)) * (x + Scalar(1))));
    o.h = lx * lx + at * at;
  }
  o.g = math::log(Scalar(0.5) * x) + a.A;
  o.g_x2 = o.g / x2;
  return o;
}

/// g(x)/x^2 and A(x) of nfw_aux / nfw_gh without branches, for vectorised
/// deflection maps (a branch that calls libm in one arm keeps GCC from
/// vectorising the pixel loop), with one sqrt, two logs (one of them
/// math::log1p_from_log) and one atan per point.  With s = sqrt|1 - x^2|, lx = ln(x/2) and z = -x^2/(2(1 + s))
/// (so that ln((1 + s)/2) = log1p(z) exactly in exact arithmetic):
///   x < 3/4:        A = (log1p(z) - lx)/s,
///                   g/x^2 = (-lx - log1p(z)/(2z)) / ((1 + s) s)  (as nfw_gh:
///                   cancellation-free at small x; series of log1p(z)/z for
///                   |z| < 1e-4);
///   3/4 <= x < 1:   A = atanh(s)/s = log1p(2s/(1 - s))/(2s),  g = lx + A;
///   x >= 1:         A = atan(s)/s,  g = lx + A.
/// The two log1p arguments share one call (selected per lane); every form is
/// evaluated at an argument kept inside its domain (s <= 3/4 in 2s/(1 - s),
/// z <= -1e-4 in the division) and the right one selected, so no lane produces
/// a NaN.  Near x = 1, A = 1 + u/3 + O(u^2) is well conditioned and s >=
/// sqrt(tiny) keeps it finite (error < 1e-16).  lx is returned for callers
/// that need ln x (TNFW).
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION Scalar nfw_g_x2_A(Scalar x, Scalar& A, Scalar& lx) {
  constexpr Scalar three_quarters = Scalar(0.75), zs = Scalar(-1e-4), one = Scalar(1);
  constexpr Scalar tiny = std::is_same<Scalar, float>::value ? Scalar(1e-8) : Scalar(1e-16);
  // The smallest normal number (numeric_limits::min, a host function to nvcc).
  constexpr Scalar smallest_normal =
      std::is_same<Scalar, float>::value ? Scalar(1.17549435082228750797e-38) : Scalar(2.22507385850720138309e-308);
  Scalar const x2 = x * x, u = (one - x) * (one + x);
  Scalar const s = math::sqrt(math::max(math::fabs(u), tiny)), d1 = one + s;
  // Three divisions for the six reciprocals (1/(s d1) gives 1/s and 1/d1,
  // 1/x^2 gives 1/z = -2 d1/x^2): ~5 % faster than six in the NFW map.
  Scalar const q = one / (s * d1), is = d1 * q, id1 = s * q;
  Scalar const ix2 = one / math::max(x2, smallest_normal);
  bool const lo = x < three_quarters, hi = u < Scalar(0);
  lx = math::log(Scalar(0.5) * x);
  Scalar const z = Scalar(-0.5) * x2 * id1;
  Scalar const sm = math::min(s, three_quarters), wm = Scalar(2) * sm / (one - sm);
  // log1p(z) on lo lanes, 2 atanh(s) on the middle ones: one log, no division
  Scalar const l1 = math::log1p_from_log(math::select(lo, z, wm));
  Scalar const lo_series = one - z * (Scalar(1) / 2 - z * (Scalar(1) / 3 - z * (Scalar(1) / 4 - z / 5)));
  Scalar const lo_ratio = math::select(z > zs, lo_series, l1 * (Scalar(-2) * d1 * ix2));  // log1p(z)/z
  Scalar const A_lo = (l1 - lx) * is, A_mid = Scalar(0.5) * l1 * is, A_hi = math::atan(s) * is;
  A = math::select(lo, A_lo, math::select(hi, A_hi, A_mid));
  Scalar const g_lo_x2 = (-lx - Scalar(0.5) * lo_ratio) * q;
  return math::select(lo, g_lo_x2, (lx + A) * ix2);
}

/// F(x) = (A - 1)/u of nfw_aux without branches, from A of nfw_g_x2_A:
/// the direct form where |u| >= u_c (error ~ a few ulp / u_c: < 1e-13 in
/// double with u_c = 0.02, < 1e-6 in float with u_c = 0.1), else its series
/// sum_k u^k/(2k + 3) to 10 terms (tail < u_c^10: 1e-17, 1e-10), both
/// evaluated and one selected.
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION Scalar nfw_F_select(Scalar x, Scalar A) {
  constexpr Scalar uc = std::is_same<Scalar, float>::value ? Scalar(0.1) : Scalar(0.02);
  Scalar const u = (Scalar(1) - x) * (Scalar(1) + x);
  bool const near = math::fabs(u) < uc;
  Scalar f = Scalar(1) / Scalar(21);
  for (int k = 8; k >= 0; --k)
    f = f * u + Scalar(1) / Scalar(2 * k + 3);
  return math::select(near, f, (A - Scalar(1)) / math::select(near, Scalar(1), u));
}

/// g(x)/x^2 of nfw_gh without branches (see nfw_g_x2_A).
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar nfw_g_x2(Scalar x) {
  Scalar A, lx;
  return nfw_g_x2_A(x, A, lx);
}

/// x = max(r, cusp_radius)/Rs, limited to nfw_x_max.
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar nfw_x(Scalar r, Scalar Rs) {
  return math::min(math::max(r, cusp_radius<Scalar>) / Rs, nfw_x_max<Scalar>);
}

/// 1/(4 (1 - ln 2)): ks = alpha_Rs / (4 Rs (1 - ln 2)).
template <class Scalar>
constexpr Scalar nfw_norm = Scalar(0.81472283831773236365L);

template <class Scalar>
struct NFWKernel {
  Scalar Rs, alpha_Rs;

  struct Eval {
    Scalar x, ks_unit, ks;  // ks_unit = ks / alpha_Rs
    NFWAux<Scalar> a;
    NFWgh<Scalar> gh;
  };
  KOKKOS_INLINE_FUNCTION Eval eval(Scalar r) const {
    Eval e;
    e.x = nfw_x(r, Rs);
    e.ks_unit = nfw_norm<Scalar> / Rs;
    e.ks = alpha_Rs * e.ks_unit;
    e.a = nfw_aux(e.x);
    e.gh = nfw_gh(e.x, e.a);
    return e;
  }

  KOKKOS_INLINE_FUNCTION Scalar psi(Scalar r) const {
    Eval const e = eval(r);
    return Scalar(2) * e.ks * Rs * Rs * e.gh.h;
  }
  // g/x^2 and F without branches (nfw_g_x2_A, nfw_F_select), for the
  // functions that deflection, convergence and Hessian maps and the deflection
  // VJP call at every pixel: their loops vectorise.
  struct Fast {
    Scalar g_x2, F;
  };
  KOKKOS_FORCEINLINE_FUNCTION Fast fast(Scalar r) const {
    Scalar const x = nfw_x(r, Rs);
    Scalar A, lx;
    Scalar const g_x2 = nfw_g_x2_A(x, A, lx);
    return {g_x2, nfw_F_select(x, A)};
  }
  KOKKOS_INLINE_FUNCTION Scalar alpha_over_r(Scalar r) const {
    return Scalar(4) * alpha_Rs * (nfw_norm<Scalar> / Rs) * nfw_g_x2(nfw_x(r, Rs));
  }
  KOKKOS_INLINE_FUNCTION Scalar kappa(Scalar r) const {
    return Scalar(2) * (alpha_Rs * (nfw_norm<Scalar> / Rs)) * fast(r).F;
  }
  KOKKOS_INLINE_FUNCTION Scalar dalpha_dr(Scalar r) const {
    Fast const f = fast(r);
    return Scalar(4) * (alpha_Rs * (nfw_norm<Scalar> / Rs)) * (f.F - f.g_x2);
  }
  KOKKOS_INLINE_FUNCTION Scalar dkappa_dr(Scalar r) const {
    Eval const e = eval(r);
    return Scalar(2) * e.ks * e.a.dF / Rs;
  }
  // grad[0] = d/dRs, grad[1] = d/dalpha_Rs.
  KOKKOS_INLINE_FUNCTION void psi_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    grad[0] += g * Scalar(2) * e.ks * Rs * (e.gh.h - Scalar(2) * e.gh.g);
    grad[1] += g * Scalar(2) * e.ks_unit * Rs * Rs * e.gh.h;
  }
  KOKKOS_INLINE_FUNCTION void alpha_over_r_grad(Scalar r, Scalar g, Scalar* grad) const {
    Fast const f = fast(r);
    Scalar const ks_unit = nfw_norm<Scalar> / Rs, ks = alpha_Rs * ks_unit;
    grad[0] += g * Scalar(4) * ks / Rs * (f.g_x2 - f.F);
    grad[1] += g * Scalar(4) * ks_unit * f.g_x2;
  }
  KOKKOS_INLINE_FUNCTION void kappa_grad(Scalar r, Scalar g, Scalar* grad) const {
    Eval const e = eval(r);
    grad[0] -= g * Scalar(2) * e.ks / Rs * (e.a.F + e.x * e.a.dF);
    grad[1] += g * Scalar(2) * e.ks_unit * e.a.F;
  }
};

}  // namespace detail

/// Parameters of the spherical NFW profile (see NFW).
template <class Scalar>
struct NFWParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::NFW";
  static constexpr int num_shape_params = 2;
  static constexpr char const* param_names[] = {"Rs", "alpha_Rs", "center_x", "center_y"};
  Scalar Rs;        ///< scale radius [arcsec], > 0
  Scalar alpha_Rs;  ///< deflection at r = Rs [arcsec], > 0
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;  ///< [arcsec]

  KOKKOS_INLINE_FUNCTION detail::NFWKernel<Scalar> kernel() const { return {Rs, alpha_Rs}; }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const {
    t[0] = Rs;
    t[1] = alpha_Rs;
  }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) {
    Rs = t[0];
    alpha_Rs = t[1];
  }
  void check_shape() const {
    check_positive(Rs, name, "Rs");
    check_positive(alpha_Rs, name, "alpha_Rs");
  }
};

/// Spherical Navarro-Frenk-White profile (lenstronomy "NFW"; lensing by
/// Bartelmann 1996, Wright & Brainerd 2000, Golse & Kneib 2002).
///
/// 3D density rho = rho0 / ((r/Rs)(1 + r/Rs)^2); with x = r/Rs and
/// ks = rho0 Rs = alpha_Rs / (4 Rs (1 - ln 2)) (so that |alpha(Rs)| = alpha_Rs):
///   kappa = 2 ks F(x),  F = (1 - A)/(x^2 - 1),
///   alpha = 4 ks Rs g(x)/x,  g = ln(x/2) + A,
///   psi   = 2 ks Rs^2 h(x),  h = ln^2(x/2) + (x^2 - 1) A^2   (psi(0) = 0),
/// A = arccosh(1/x)/sqrt(1 - x^2) (x < 1), arccos(1/x)/sqrt(x^2 - 1) (x > 1), 1 at x = 1.
/// Angles in arcsec; psi in arcsec^2; kappa dimensionless.
/// Parameters (pack order): Rs > 0, alpha_Rs > 0, center_x, center_y.
/// Numerics: F, F', A near x = 1 (|1 - x^2| < 1/2) from their series in
/// 1 - x^2 (relative error ~1e-15; the direct forms lose ~eps/|1 - x^2|); g/x^2
/// and h cancellation-free at small x; log1p throughout.  kappa diverges
/// logarithmically at the centre: below detail::cusp_radius every function is
/// evaluated at that radius (finite values and gradients; deflection 0 at
/// the centre).  lenstronomy clamps instead at R = 1e-8 (alpha), 1e-6 Rs
/// (psi) and uses c = 1e-7 for kappa(0), so values within ~1e-6" of the centre differ.
template <class Scalar>
using NFW = RadialProfile<NFWParams<Scalar>>;

}  // namespace lensing

#endif  // LENSING_PROFILES_NFW_HPP
