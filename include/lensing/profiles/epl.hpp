#ifndef LENSING_PROFILES_EPL_HPP
#define LENSING_PROFILES_EPL_HPP

#include <lensing/core/complex.hpp>
#include <lensing/profiles/detail/elliptical.hpp>

namespace lensing {

namespace detail {

#if defined(__GNUC__) && !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
/// Bytes of one host vector register: 64 with AVX-512, 32 with AVX/AVX2, 16
/// otherwise.  Blocks wider than a register are split into several and, in
/// the EPL's recurrences (12-14 blocks live), spilled to the stack on AVX2
/// (16 registers): 64-byte blocks there ran the deflection map 4x slower
/// (benchmarks/README.md, "AVX2 hosts").
#if defined(__AVX512F__)
#define LENSING_EPL_BLOCK_BYTES 64
#elif defined(__AVX__)
#define LENSING_EPL_BLOCK_BYTES 32
#else
#define LENSING_EPL_BLOCK_BYTES 16
#endif
/// A block of SIMD lanes for host batch loops (GCC/Clang vector extensions):
/// one vector register.  Explicit specialisations with a literal width, the
/// form every front end (nvcc's host pass included) accepts.
template <class Scalar>
struct SimdBlock;
template <>
struct SimdBlock<double> {
  typedef double type __attribute__((vector_size(LENSING_EPL_BLOCK_BYTES)));
  static constexpr int lanes = LENSING_EPL_BLOCK_BYTES / 8;
};
template <>
struct SimdBlock<float> {
  typedef float type __attribute__((vector_size(LENSING_EPL_BLOCK_BYTES)));
  static constexpr int lanes = LENSING_EPL_BLOCK_BYTES / 4;
};
#undef LENSING_EPL_BLOCK_BYTES
#endif

/// Series constants of the EPL: the truncation tolerance eps (bound on the
/// neglected tail relative to |e^{i phi}| = 1, so at most 2 eps relative to
/// |F| >= 1/(1 + f)), a cap on the number of terms, and the largest squared
/// radius that does not overflow.
template <class Scalar>
struct EPLSeriesConstants {
  static constexpr Scalar eps = Scalar(1e-14);
  static constexpr int max_terms = 1000;
  static constexpr Scalar huge = Scalar(1e300);
};
template <>
struct EPLSeriesConstants<float> {
  static constexpr float eps = 1e-7f;
  static constexpr int max_terms = 1000;
  static constexpr float huge = 1e37f;
};

/// Elliptical power law in its major-axis frame (Tessore & Metcalf 2015), with
/// t = gamma - 1, b = theta_E sqrt(q), f = (1 - q)/(1 + q),
/// R = sqrt(q^2 x^2 + y^2), e^{i phi} = (q x + i y)/R:
///   kappa = (2 - t)/2 (b/R)^t,
///   alpha_x + i alpha_y = A F,  A = 2b/(1 + q) (b/R)^(t-1),
///   F = sum_n Omega_n,  Omega_0 = e^{i phi},  Omega_n = z rho_n Omega_{n-1},
///   z = -f e^{2 i phi},  rho_n = (2n - 2 + t)/(2n + 2 - t),
///   psi = (x alpha_x + y alpha_y)/(2 - t),
///   shear gamma1 + i gamma2 = ((1 - t) alpha - kappa w)/conj(w),  w = x + i y.
/// Shape gradients go to grad[0] (theta_E) and grad[1] (gamma).
///
/// Points with R < cusp_radius q are moved radially onto R = cusp_radius q
/// (finite values there); at w = 0 exactly the deflection, potential, shear and
/// every gradient are 0 and kappa is its value at R = cusp_radius q.
template <class Scalar>
struct EPLKernel {
  using scalar_type = Scalar;
  using C = Complex<Scalar>;
  using K = EPLSeriesConstants<Scalar>;
  Scalar theta_E, t, q, b, f, tail, amp;  // tail = f/(1 - f); amp = 2b/(1 + q)

  KOKKOS_INLINE_FUNCTION EPLKernel(Scalar theta_E_, Scalar gamma_, Scalar q_)
      : theta_E(theta_E_),
        t(gamma_ - Scalar(1)),
        q(q_),
        b(theta_E_ * math::sqrt(q_)),
        f((Scalar(1) - q_) / (Scalar(1) + q_)),
        tail((Scalar(1) - q_) / (Scalar(2) * q_)),
        amp(Scalar(2) * theta_E_ * math::sqrt(q_) / (Scalar(1) + q_)) {}

  /// A major-axis-frame point (possibly moved onto the cusp radius), its
  /// elliptical radius R and e^{i phi} = (ux, uy).
  struct Point {
    Scalar x, y, R, ux, uy;
    bool centre;
  };

  KOKKOS_INLINE_FUNCTION Point point(Scalar x, Scalar y) const {
    Scalar qx = q * x;
    Scalar const R2 = qx * qx + y * y;
    Scalar const rmin = cusp_radius<Scalar> * q;
    if (!(R2 > Scalar(0))) return {Scalar(0), Scalar(0), rmin, Scalar(1), Scalar(0), true};
    Scalar R;
    if (R2 <= K::huge) {
      R = math::sqrt(R2);
    } else {  // q^2 x^2 + y^2 overflowed: scale first
      Scalar const m = math::max(math::fabs(qx), math::fabs(y));
      R = m * math::sqrt(math::square(qx / m) + math::square(y / m));
    }
    if (R < rmin) {
      Scalar const k = rmin / R;
      x *= k;
      y *= k;
      qx *= k;
      R = rmin;
    }
    Scalar const inv = Scalar(1) / R;
    return {x, y, R, qx * inv, y * inv, false};
  }

  /// F (value path: no gradient sums), summed as two interleaved chains
  /// (even and odd n, Omega_{n+2} = z^2 rho_{n+2} rho_{n+1} Omega_n) to halve
  /// the latency of the recurrence.  Stops before term n once the tail bound
  /// |Omega_{n-1}| f/(1 - f) <= eps, where |Omega_n| = f^n prod rho_k exactly.
  KOKKOS_INLINE_FUNCTION C series(Scalar ux, Scalar uy) const {
    C const u{ux, uy}, z{-f * (ux * ux - uy * uy), Scalar(-2) * f * ux * uy};
    C const z2 = z * z;
    Scalar const f2 = f * f;
    Scalar rho_prev = t / (Scalar(4) - t);  // rho_1
    C even = u, odd = (rho_prev * z) * u;   // Omega_0, Omega_1
    C Fe = even, Fo = odd;
    Scalar a = tail * f * rho_prev;  // |Omega_1| f/(1 - f)
    Scalar num = t + Scalar(2), den = Scalar(6) - t;
    for (int n = 2; n < K::max_terms; n += 2) {
      if (!(a > K::eps)) break;
      // rho_n and rho_{n+1} with one division.
      Scalar const num2 = num + Scalar(2), den2 = den + Scalar(2), inv = Scalar(1) / (den * den2);
      Scalar const r1 = num * den2 * inv, r2 = num2 * den * inv;
      even = (rho_prev * r1 * z2) * even;
      odd = (r1 * r2 * z2) * odd;
      Fe = Fe + even;
      Fo = Fo + odd;
      a *= f2 * r1 * r2;
      rho_prev = r2;
      num += Scalar(4);
      den += Scalar(4);
    }
    return Fe + Fo;
  }

  /// F, P = sum_{n>=1} n rho_n Omega_{n-1} (so sum n Omega_n = z P) and
  /// D = dF/dt, with D_n = z (rho_n D_{n-1} + rho'_n Omega_{n-1}),
  /// rho'_n = 4n/(2n + 2 - t)^2.  Stops once the tails of all three are
  /// bounded by eps (majorants a >= |Omega_{n-1}|, d >= |D_{n-1}|).
  KOKKOS_INLINE_FUNCTION void series_grad(Scalar ux, Scalar uy, C& F, C& P, C& D) const {
    C const z{-f * (ux * ux - uy * uy), Scalar(-2) * f * ux * uy};
    C om{ux, uy}, dn{Scalar(0), Scalar(0)};
    F = om;
    P = dn;
    D = dn;
    Scalar const inv1mf = (Scalar(1) + q) / (Scalar(2) * q);  // 1/(1 - f)
    Scalar a = Scalar(1), d = Scalar(0);
    Scalar num = t, den = Scalar(4) - t;
    for (int n = 1; n <= K::max_terms; ++n) {
      Scalar const nn = Scalar(n);
      if (!(a * (nn + tail) * inv1mf + d * tail > K::eps)) break;
      Scalar const iden = Scalar(1) / den;
      Scalar const rho = num * iden, drho = Scalar(4) * nn * iden * iden;
      P = P + (nn * rho) * om;
      dn = z * (rho * dn + drho * om);
      D = D + dn;
      om = (rho * z) * om;
      F = F + om;
      d = f * (rho * d + drho * a);
      a *= f * rho;
      num += Scalar(2);
      den += Scalar(2);
    }
  }

  // kappa at elliptical radius R.
  KOKKOS_INLINE_FUNCTION Scalar kappa_at(Scalar R) const { return Scalar(0.5) * (Scalar(2) - t) * math::pow(b / R, t); }

  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Point const p = point(x, y);
    if (p.centre) return {Scalar(0), Scalar(0)};
    Scalar const A = amp * math::pow(b / p.R, t - Scalar(1));
    C const F = series(p.ux, p.uy);
    return {A * F.re, A * F.im};
  }
  /// Number of series terms the value path sums (the same at every point:
  /// the stopping rule of series() depends on f and t only), counting Omega_0.
  KOKKOS_INLINE_FUNCTION int num_terms() const {
    Scalar a = tail * f * (t / (Scalar(4) - t));
    Scalar num = t + Scalar(2), den = Scalar(6) - t;
    int n = 2;
    for (; n < K::max_terms; n += 2) {
      if (!(a > K::eps)) break;
      Scalar const r1 = num / den, r2 = (num + Scalar(2)) / (den + Scalar(2));
      a *= f * f * r1 * r2;
      num += Scalar(4);
      den += Scalar(4);
    }
    return n;
  }

  /// Deflection at m points (major-axis frame) at once, for host row loops.
  /// The same terms as deflection() (num_terms(): the same at every point),
  /// F = e^{i phi} S, S = sum_{n<N} c_n z^n, c_n = prod_{k<=n} rho_k (real,
  /// computed once per batch), summed across points by Clenshaw's recurrence
  /// for a real polynomial at a complex point (Goertzel): z is a root of
  /// w^2 - 2 Re(z) w + |z|^2, |z|^2 = f^2 the same at every point, so
  ///   b_n = c_n + 2 Re(z) b_{n+1} - f^2 b_{n+2},  S = b_0 - conj(z) b_1,
  /// two real multiply-adds per term (Horner on complex S takes four, the
  /// recurrence Omega_n = rho_n z Omega_{n-1} plus the sum eight).  Rounding:
  /// |b_n| <= sum_k (k + 1) f^k c_{n+k} <= 1/(1 - f)^2 (|sin((k+1)x)/sin x| <=
  /// k + 1), so each rounding reaches S amplified by at most 1/(1 - f)^2:
  /// 1.3 at q = 0.8, 4 at f = 1/2 (q = 1/3); beyond f = 1/2 (a branch per
  /// batch) Horner's rule on complex S (S <- c_n + z S), whose terms decrease
  /// geometrically.  Differs from deflection() by rounding only.  x, y may
  /// alias ax, ay.  m <= deflection_batch_capacity.
  static constexpr int batch_capacity = deflection_batch_capacity;
  KOKKOS_INLINE_FUNCTION void deflection_batch(int m, Scalar const* x, Scalar const* y, Scalar* ax, Scalar* ay) const {
    Scalar ur[batch_capacity], ui[batch_capacity], zr[batch_capacity], zi[batch_capacity];
    Scalar Fr[batch_capacity], Fi[batch_capacity], A[batch_capacity];
    bool regular[batch_capacity];
    // Members copied to locals: the compiler cannot tell the local arrays'
    // stores from *this, and would reload them per point otherwise.
    Scalar const qq = q, ff = f, bb = b, aa = amp, tm1 = t - Scalar(1);
    Scalar const rmin2 = math::square(cusp_radius<Scalar> * qq), huge = K::huge;
    int irregular = 0;
    for (int i = 0; i < m; ++i) {
      Scalar const qx = qq * x[i], yi = y[i], R2 = qx * qx + yi * yi;
      bool const reg = (R2 > rmin2) & (R2 <= huge);  // & not &&: no branch in the loop
      regular[i] = reg;
      irregular += reg ? 0 : 1;
      Scalar const R = math::sqrt(math::select(reg, R2, Scalar(1)));
      Scalar const inv = Scalar(1) / R;
      Scalar const u_r = qx * inv, u_i = yi * inv;
      ur[i] = u_r;
      ui[i] = u_i;
      zr[i] = -ff * (u_r * u_r - u_i * u_i);
      zi[i] = Scalar(-2) * ff * u_r * u_i;
      A[i] = aa * math::exp(tm1 * math::log(bb * inv));
    }
    // Coefficients c_n, n < nterms, with nterms chosen by the arithmetic of
    // num_terms() (the same number; rho_n and rho_{n+1} are its r1, r2).
    Scalar c[K::max_terms];
    int nterms = 2;
    {
      Scalar const rho1 = t / (Scalar(4) - t);
      Scalar a = tail * f * rho1, num = t + Scalar(2), den = Scalar(6) - t, cn = rho1;
      c[0] = Scalar(1);
      c[1] = rho1;
      for (; nterms < K::max_terms; nterms += 2) {
        if (!(a > K::eps)) break;
        Scalar const r1 = num / den, r2 = (num + Scalar(2)) / (den + Scalar(2));
        a *= f * f * r1 * r2;
        cn *= r1;
        c[nterms] = cn;
        cn *= r2;
        c[nterms + 1] = cn;
        num += Scalar(4);
        den += Scalar(4);
      }
    }
#if defined(__GNUC__) && !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
    // Register blocking with GCC/Clang vector extensions: G blocks of L lanes
    // go through all terms together (z and S in registers; G independent
    // chains hide the multiply-add latency of each Horner step).
    using V = typename detail::SimdBlock<Scalar>::type;
    constexpr int L = detail::SimdBlock<Scalar>::lanes, G = 4;
    static_assert(batch_capacity % (G * L) == 0, "batch capacity must hold whole groups of blocks");
    // Loads into a register value: a memcpy into an element of a V array was
    // compiled as two 256-bit copies through the stack, then a 512-bit load
    // of them (a store-forwarding stall, 15 % of the map's time).
    auto const load = [](Scalar const* p) {
      V v;
      __builtin_memcpy(&v, p, sizeof(V));
      return v;
    };
    int const mpad = (m + G * L - 1) / (G * L) * (G * L);
    bool const direct = irregular == 0 && mpad == m;
    for (int i = m; i < mpad; ++i)
      zr[i] = zi[i] = ur[i] = ui[i] = A[i] = Scalar(0);
    // Clenshaw's recurrence for f <= 1/2 (q >= 1/3: rounding amplified at
    // most 4x), Horner's rule on complex S beyond (1/(1 - f)^2 grows to 625
    // at q = 0.02).
    bool const clenshaw = ff <= Scalar(0.5);
    Scalar const s2 = ff * ff;  // |z|^2
    for (int i0 = 0; i0 < mpad; i0 += G * L) {
      V sr[G], si[G];
      if (clenshaw) {
        V x2[G], b1[G], b2[G];
        for (int g = 0; g < G; ++g) {
          x2[g] = Scalar(2) * load(zr + i0 + g * L);
          b1[g] = x2[g] * Scalar(0) + c[nterms - 1];
          b2[g] = x2[g] * Scalar(0);
        }
        for (int n = nterms - 2; n >= 1; --n) {
          Scalar const cn = c[n];
          for (int g = 0; g < G; ++g) {
            V const b = x2[g] * b1[g] + (cn - s2 * b2[g]);
            b2[g] = b1[g];
            b1[g] = b;
          }
        }
        for (int g = 0; g < G; ++g) {
          // b_0 = c_0 + 2 Re z b_1 - |z|^2 b_2, S = b_0 - conj(z) b_1.
          V const b0 = x2[g] * b1[g] + (c[0] - s2 * b2[g]);
          sr[g] = b0 - Scalar(0.5) * x2[g] * b1[g];
          si[g] = load(zi + i0 + g * L) * b1[g];
        }
      } else {
        V vzr[G], vzi[G];
        for (int g = 0; g < G; ++g) {
          vzr[g] = load(zr + i0 + g * L);
          vzi[g] = load(zi + i0 + g * L);
          sr[g] = vzr[g] * Scalar(0) + c[nterms - 1];
          si[g] = vzr[g] * Scalar(0);
        }
        for (int n = nterms - 2; n >= 0; --n) {
          Scalar const cn = c[n];
          for (int g = 0; g < G; ++g) {
            V const nr = vzr[g] * sr[g] - vzi[g] * si[g] + cn;
            V const ni = vzr[g] * si[g] + vzi[g] * sr[g];
            sr[g] = nr;
            si[g] = ni;
          }
        }
      }
      for (int g = 0; g < G; ++g) {
        V const vur = load(ur + i0 + g * L), vui = load(ui + i0 + g * L), va = load(A + i0 + g * L);
        V const fr = va * (vur * sr[g] - vui * si[g]), fi = va * (vur * si[g] + vui * sr[g]);
        // Whole groups without irregular points go straight to the output
        // (x, y are no longer read); the rest through Fr, Fi.
        Scalar* const outr = direct ? ax : Fr;
        Scalar* const outi = direct ? ay : Fi;
        __builtin_memcpy(outr + i0 + g * L, &fr, sizeof(V));
        __builtin_memcpy(outi + i0 + g * L, &fi, sizeof(V));
      }
    }
#else
    for (int i = 0; i < m; ++i) {
      Fr[i] = c[nterms - 1];
      Fi[i] = Scalar(0);
    }
    for (int n = nterms - 2; n >= 0; --n) {
      Scalar const cn = c[n];
      for (int i = 0; i < m; ++i) {
        Scalar const nr = zr[i] * Fr[i] - zi[i] * Fi[i] + cn;
        Scalar const ni = zr[i] * Fi[i] + zi[i] * Fr[i];
        Fr[i] = nr;
        Fi[i] = ni;
      }
    }
    for (int i = 0; i < m; ++i) {
      Scalar const sr = Fr[i], si = Fi[i];
      Fr[i] = A[i] * (ur[i] * sr - ui[i] * si);
      Fi[i] = A[i] * (ur[i] * si + ui[i] * sr);
    }
#endif
#if defined(__GNUC__) && !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
    if (direct) return;
#endif
    // Points at the cusp or beyond overflow take the scalar path (rare; before
    // any store, since x, y may alias ax, ay).
    if (irregular > 0)
      for (int i = 0; i < m; ++i)
        if (!regular[i]) {
          Vec2<Scalar> const a = deflection(x[i], y[i]);
          Fr[i] = a.x;
          Fi[i] = a.y;
        }
    for (int i = 0; i < m; ++i) {
      ax[i] = Fr[i];
      ay[i] = Fi[i];
    }
  }

  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const {
    Point const p = point(x, y);
    if (p.centre) return Scalar(0);
    Scalar const A = amp * math::pow(b / p.R, t - Scalar(1));
    C const F = series(p.ux, p.uy);
    return A * (p.x * F.re + p.y * F.im) / (Scalar(2) - t);
  }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const { return kappa_at(point(x, y).R); }
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> convergence_gradient(Scalar x, Scalar y) const {
    Point const p = point(x, y);
    if (p.centre) return {Scalar(0), Scalar(0)};
    Scalar const c = -t * kappa_at(p.R) / p.R;  // dkappa/dR
    return {c * q * p.ux, c * p.uy};
  }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    Point const p = point(x, y);
    if (p.centre) {
      Scalar const k = kappa_at(p.R);
      return {k, Scalar(0), k};
    }
    Scalar const s = math::pow(b / p.R, t - Scalar(1));
    Scalar const A = amp * s;
    Scalar const kappa = Scalar(0.5) * (Scalar(2) - t) * s * (b / p.R);
    C const F = series(p.ux, p.uy);
    Scalar const ax = A * F.re, ay = A * F.im;
    Scalar const px = p.x, py = p.y, c = Scalar(1) - t;
    Scalar const ir2 = Scalar(1) / (px * px + py * py);
    Scalar const g1 = (c * (ax * px - ay * py) - kappa * (px - py) * (px + py)) * ir2;
    Scalar const g2 = (c * (ax * py + ay * px) - Scalar(2) * kappa * px * py) * ir2;
    return {kappa + g1, g2, kappa - g1};
  }

  /// alpha and its derivatives with respect to t (= gamma) and q at a
  /// (non-centre) point; d alpha/d theta_E = t alpha/theta_E.
  KOKKOS_INLINE_FUNCTION void alpha_derivatives(Point const& p, C& alpha, C& da_dt, C& da_dq) const {
    C F, P, D;
    series_grad(p.ux, p.uy, F, P, D);
    Scalar const L = math::log(b / p.R);
    Scalar const A = amp * math::exp((t - Scalar(1)) * L);
    alpha = A * F;
    da_dt = L * alpha + A * D;
    // d ln A/dq (b = theta_E sqrt(q) included), dphi/dq = -ux uy/q,
    // dF/dphi = i (F + 2 sum n Omega_n), dF/df = -e^{2 i phi} P, df/dq = -2/(1 + q)^2.
    Scalar const ux = p.ux, uy = p.uy, iq = Scalar(1) / q, ip = Scalar(1) / (Scalar(1) + q);
    Scalar const dlnA = -ip + Scalar(0.5) * t * iq + (Scalar(1) - t) * ux * ux * iq;
    C const u2P = C{ux * ux - uy * uy, Scalar(2) * ux * uy} * P;
    C const G = F + (Scalar(-2) * f) * u2P;  // F + 2 sum n Omega_n
    Scalar const dphi = -ux * uy * iq, df = Scalar(2) * ip * ip;
    C const dF{-G.im * dphi + df * u2P.re, G.re * dphi + df * u2P.im};
    da_dq = dlnA * alpha + A * dF;
  }

  KOKKOS_INLINE_FUNCTION void deflection_grad(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad, Scalar& q_grad) const {
    Point const p = point(x, y);
    if (p.centre) return;
    C alpha, da_dt, da_dq;
    alpha_derivatives(p, alpha, da_dt, da_dq);
    grad[0] += t * (g.x * alpha.re + g.y * alpha.im) / theta_E;
    grad[1] += g.x * da_dt.re + g.y * da_dt.im;
    q_grad += g.x * da_dq.re + g.y * da_dq.im;
  }
  // Major-axis Hessian at a non-centre point from alpha and kappa there
  // (homogeneity, as hessian()); c = 1 - t.
  KOKKOS_FORCEINLINE_FUNCTION static Hessian<Scalar> hessian_from(Scalar px, Scalar py, Scalar ax, Scalar ay,
                                                                  Scalar kappa, Scalar c) {
    Scalar const ir2 = Scalar(1) / (px * px + py * py);
    Scalar const g1 = (c * (ax * px - ay * py) - kappa * (px - py) * (px + py)) * ir2;
    Scalar const g2 = (c * (ax * py + ay * px) - Scalar(2) * kappa * px * py) * ir2;
    return {kappa + g1, g2, kappa - g1};
  }

  /// deflection_grad, and alpha and the Hessian at the same point, from one
  /// pass of series_grad (F, sum n Omega_n, dF/dt): what the deflection VJP
  /// of EllipticalProfile needs, without summing the series three times.
  KOKKOS_INLINE_FUNCTION void deflection_grad_with_values(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad,
                                                          Scalar& q_grad, Vec2<Scalar>& alpha_out,
                                                          Hessian<Scalar>& hess) const {
    Point const p = point(x, y);
    if (p.centre) {
      Scalar const k = kappa_at(p.R);
      alpha_out = {Scalar(0), Scalar(0)};
      hess = {k, Scalar(0), k};
      return;
    }
    C alpha, da_dt, da_dq;
    alpha_derivatives(p, alpha, da_dt, da_dq);
    grad[0] += t * (g.x * alpha.re + g.y * alpha.im) / theta_E;
    grad[1] += g.x * da_dt.re + g.y * da_dt.im;
    q_grad += g.x * da_dq.re + g.y * da_dq.im;
    alpha_out = {alpha.re, alpha.im};
    hess = hessian_from(p.x, p.y, alpha.re, alpha.im, kappa_at(p.R), Scalar(1) - t);
  }

  /// Number of terms series_grad sums (its stopping rule depends on f and t
  /// only: the same at every point), by the same arithmetic.
  KOKKOS_INLINE_FUNCTION int num_grad_terms() const {
    Scalar const inv1mf = (Scalar(1) + q) / (Scalar(2) * q);
    Scalar a = Scalar(1), d = Scalar(0);
    Scalar num = t, den = Scalar(4) - t;
    int n = 1;
    for (; n <= K::max_terms; ++n) {
      Scalar const nn = Scalar(n);
      if (!(a * (nn + tail) * inv1mf + d * tail > K::eps)) break;
      Scalar const iden = Scalar(1) / den;
      Scalar const rho = num * iden, drho = Scalar(4) * nn * iden * iden;
      d = f * (rho * d + drho * a);
      a *= f * rho;
      num += Scalar(2);
      den += Scalar(2);
    }
    return n - 1;
  }

  /// Deflection VJP at m points at once (host; see
  /// detail::has_kernel_vjp_batch): the series_grad recurrences (F, P, D) run
  /// term by term across points in SIMD blocks, as deflection_batch does for
  /// F, with the same number of terms as series_grad.  Points at or inside
  /// the cusp radius, or beyond overflow, take deflection_grad_with_values.
  KOKKOS_INLINE_FUNCTION void deflection_vjp_batch(int m, Scalar const* x, Scalar const* y, Scalar const* gx,
                                                   Scalar const* gy, Scalar* grad, int stride,
                                                   KernelVjpBatch<Scalar>& out) const {
    constexpr int cap = deflection_batch_capacity;
    Scalar ur[cap], ui[cap], Rs[cap], Fr[cap], Fi[cap], Pr[cap], Pi[cap], Dr[cap], Di[cap];
    bool regular[cap];
    Scalar mask[cap];
    Scalar const rmin2 = math::square(cusp_radius<Scalar> * q);
    for (int i = 0; i < m; ++i) {
      Scalar const qx = q * x[i], R2 = qx * qx + y[i] * y[i];
      bool const reg = (R2 > rmin2) & (R2 <= K::huge);
      regular[i] = reg;
      mask[i] = math::select(reg, Scalar(1), Scalar(0));
      Scalar const R = math::sqrt(math::select(reg, R2, Scalar(1)));
      Scalar const inv = Scalar(1) / R;
      Rs[i] = R;
      ur[i] = math::select(reg, qx * inv, Scalar(1));
      ui[i] = math::select(reg, y[i] * inv, Scalar(0));
    }
    int const nterms = num_grad_terms();
#if defined(__GNUC__) && !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
    using V = typename detail::SimdBlock<Scalar>::type;
    constexpr int L = detail::SimdBlock<Scalar>::lanes;
    int const mpad = (m + L - 1) / L * L;
    for (int i = m; i < mpad; ++i) {
      ur[i] = Scalar(1);
      ui[i] = Scalar(0);
    }
    for (int i0 = 0; i0 < mpad; i0 += L) {
      V vor, voi;
      __builtin_memcpy(&vor, ur + i0, sizeof(V));
      __builtin_memcpy(&voi, ui + i0, sizeof(V));
      V const vzr = -f * (vor * vor - voi * voi), vzi = Scalar(-2) * f * vor * voi;
      V vfr = vor, vfi = voi;
      V vpr = vor * Scalar(0), vpi = vpr, vdnr = vpr, vdni = vpr, vdr = vpr, vdi = vpr;
      Scalar num = t, den = Scalar(4) - t;
      for (int n = 1; n <= nterms; ++n) {
        Scalar const nn = Scalar(n);
        Scalar const iden = Scalar(1) / den;
        Scalar const rho = num * iden, drho = Scalar(4) * nn * iden * iden, nrho = nn * rho;
        vpr += nrho * vor;
        vpi += nrho * voi;
        V const tr = rho * vdnr + drho * vor, ti = rho * vdni + drho * voi;
        vdnr = vzr * tr - vzi * ti;
        vdni = vzr * ti + vzi * tr;
        vdr += vdnr;
        vdi += vdni;
        V const o_r = rho * (vzr * vor - vzi * voi), o_i = rho * (vzr * voi + vzi * vor);
        vor = o_r;
        voi = o_i;
        vfr += o_r;
        vfi += o_i;
        num += Scalar(2);
        den += Scalar(2);
      }
      __builtin_memcpy(Fr + i0, &vfr, sizeof(V));
      __builtin_memcpy(Fi + i0, &vfi, sizeof(V));
      __builtin_memcpy(Pr + i0, &vpr, sizeof(V));
      __builtin_memcpy(Pi + i0, &vpi, sizeof(V));
      __builtin_memcpy(Dr + i0, &vdr, sizeof(V));
      __builtin_memcpy(Di + i0, &vdi, sizeof(V));
    }
#else
    for (int i = 0; i < m; ++i) {
      C F, P, D;
      series_grad(ur[i], ui[i], F, P, D);
      Fr[i] = F.re;
      Fi[i] = F.im;
      Pr[i] = P.re;
      Pi[i] = P.im;
      Dr[i] = D.re;
      Di[i] = D.im;
    }
#endif
    // As alpha_derivatives, per point (vectorisable; libmvec log/exp).  The
    // members are copied first: the stores through grad/out could alias *this.
    Scalar const tt = t, bb = b, aa = amp, ff = f;
    Scalar const iq = Scalar(1) / q, ip = Scalar(1) / (Scalar(1) + q), df = Scalar(2) * ip * ip;
    Scalar const half2t = Scalar(0.5) * (Scalar(2) - tt), t_theta = tt / theta_E, c1t = Scalar(1) - tt;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
    for (int i = 0; i < m; ++i) {
      Scalar const w = mask[i];  // 1 regular, 0 not: blended, not branched (keeps the loop if-convertible)
      Scalar const L = math::log(bb / Rs[i]);
      Scalar const A = aa * math::exp(-c1t * L);
      Scalar const kappa = half2t * math::exp(tt * L);
      C const F{Fr[i], Fi[i]}, P{Pr[i], Pi[i]}, D{Dr[i], Di[i]};
      C const alpha = A * F;
      C const da_dt = L * alpha + A * D;
      Scalar const ux = ur[i], uy = ui[i];
      Scalar const dlnA = -ip + Scalar(0.5) * tt * iq + c1t * ux * ux * iq;
      C const u2P = C{ux * ux - uy * uy, Scalar(2) * ux * uy} * P;
      C const G = F + (Scalar(-2) * ff) * u2P;
      Scalar const dphi = -ux * uy * iq;
      C const dF{-G.im * dphi + df * u2P.re, G.re * dphi + df * u2P.im};
      C const da_dq = dlnA * alpha + A * dF;
      Scalar const xi = x[i], yi = y[i];
      Scalar const px = w * xi + (Scalar(1) - w), py = w * yi;
      Hessian<Scalar> const h = hessian_from(px, py, alpha.re, alpha.im, kappa, c1t);
      Scalar const g_x = gx[i], g_y = gy[i];
      Scalar const c0 = t_theta * (g_x * alpha.re + g_y * alpha.im), c1 = g_x * da_dt.re + g_y * da_dt.im;
      grad[i] += w * c0;
      grad[stride + i] += w * c1;
      out.q_bar[i] = g_x * da_dq.re + g_y * da_dq.im;
      out.ax[i] = alpha.re;
      out.ay[i] = alpha.im;
      out.hxx[i] = h.xx;
      out.hxy[i] = h.xy;
      out.hyy[i] = h.yy;
    }
    for (int i = 0; i < m; ++i) {
      if (regular[i]) continue;
      Scalar gs[2] = {Scalar(0), Scalar(0)}, qb = Scalar(0);
      Vec2<Scalar> a;
      Hessian<Scalar> h;
      deflection_grad_with_values(x[i], y[i], Vec2<Scalar>{gx[i], gy[i]}, gs, qb, a, h);
      grad[i] += gs[0];
      grad[stride + i] += gs[1];
      out.q_bar[i] = qb;
      out.ax[i] = a.x;
      out.ay[i] = a.y;
      out.hxx[i] = h.xx;
      out.hxy[i] = h.xy;
      out.hyy[i] = h.yy;
    }
  }

  KOKKOS_INLINE_FUNCTION void potential_grad(Scalar x, Scalar y, Scalar g, Scalar* grad, Scalar& q_grad) const {
    Point const p = point(x, y);
    if (p.centre) return;
    C alpha, da_dt, da_dq;
    alpha_derivatives(p, alpha, da_dt, da_dq);
    Scalar const i2t = Scalar(1) / (Scalar(2) - t);
    Scalar const psi = (p.x * alpha.re + p.y * alpha.im) * i2t;
    grad[0] += g * t * psi / theta_E;
    grad[1] += g * (p.x * da_dt.re + p.y * da_dt.im + psi) * i2t;
    q_grad += g * (p.x * da_dq.re + p.y * da_dq.im) * i2t;
  }
  KOKKOS_INLINE_FUNCTION void convergence_grad(Scalar x, Scalar y, Scalar g, Scalar* grad, Scalar& q_grad) const {
    Point const p = point(x, y);
    if (p.centre) return;
    Scalar const L = math::log(b / p.R);
    Scalar const kappa = Scalar(0.5) * (Scalar(2) - t) * math::exp(t * L);
    grad[0] += g * t * kappa / theta_E;
    grad[1] += g * kappa * (L - Scalar(1) / (Scalar(2) - t));
    q_grad += g * t * kappa / q * (Scalar(0.5) - p.ux * p.ux);
  }
};
}  // namespace detail

/// Parameters of the elliptical power law (see EPL).
template <class Scalar>
struct EPLParams {
  using scalar_type = Scalar;
  static constexpr char const* name = "lensing::EPL";
  static constexpr int num_shape_params = 2;
  static constexpr char const* param_names[] = {"theta_E", "gamma", "e1", "e2", "center_x", "center_y"};
  Scalar theta_E;  ///< Einstein radius [arcsec] (lenstronomy's: of the intermediate axis), > 0
  Scalar gamma;    ///< 3D logarithmic density slope (2 = isothermal), in [1, 3)
  Scalar e1;       ///< ellipticity, lenstronomy convention
  Scalar e2;
  Scalar center_x;  ///< [arcsec]
  Scalar center_y;

  KOKKOS_INLINE_FUNCTION detail::EPLKernel<Scalar> kernel(Scalar q) const { return {theta_E, gamma, q}; }
  KOKKOS_INLINE_FUNCTION void pack_shape(Scalar* t) const {
    t[0] = theta_E;
    t[1] = gamma;
  }
  KOKKOS_INLINE_FUNCTION void unpack_shape(Scalar const* t) {
    theta_E = t[0];
    gamma = t[1];
  }
  void check_shape() const {
    check_positive(theta_E, name, "theta_E");
    check_finite(gamma, name, "gamma");
    check_argument(gamma >= Scalar(1) && gamma < Scalar(3), name, detail::describe("gamma", "in [1, 3)", gamma));
  }
};

/// Elliptical power-law mass profile (lenstronomy "EPL"; Tessore & Metcalf
/// 2015, A&A 580, A79, "The elliptical power law profile lens").
///
///   kappa = (3 - gamma)/2 (theta_E / sqrt(q x'^2 + y'^2 / q))^(gamma - 1),
/// x', y' along the major and minor axes, q = minor/major from (e1, e2)
/// (lenstronomy's convention), angles in arcsec, psi in arcsec^2.
/// With t = gamma - 1, b = theta_E sqrt(q), R = sqrt(q^2 x'^2 + y'^2),
/// e^{i phi} = (q x' + i y')/R and f = (1 - q)/(1 + q), the deflection is
///   alpha' = 2b/(1 + q) (b/R)^(t-1) e^{i phi} 2F1(1, t/2; 2 - t/2; -f e^{2 i phi}),
/// summed by the recurrence of Tessore & Metcalf (eqs. 23-26; see
/// detail::EPLKernel); psi = (x' alpha'_x + y' alpha'_y)/(2 - t) and the shear
/// follows from the homogeneity of alpha (their eq. 17):
///   gamma1 + i gamma2 = ((1 - t) alpha - kappa w)/conj(w).
/// EPL(gamma = 2) is the SIE, EPL(q = 1) the spherical power law
///   alpha = theta_E (r/theta_E)^(2 - gamma) (x, y)/r.
/// Parameter gradients are analytic (the series carries sum n Omega_n and
/// dF/dgamma along); the e1/e2 chain rule is the one of EllipticalProfile.
///
/// Parameters (pack order): theta_E > 0, gamma in [1, 3), e1, e2 (|e| < 1),
/// center_x, center_y.  The formulas hold for 1 <= gamma < 3 (psi diverges as
/// gamma -> 3); gamma = 2 (arctan closed form) and q = 1 (one term) need no
/// special case.
///
/// Series truncation: the terms have |Omega_n| = f^n prod_{k<=n} rho_k
/// exactly (0 <= rho_k < 1), independent of the position, so the series stops
/// before term n once the tail bound |Omega_{n-1}| f/(1 - f) <= eps: the same
/// number of terms at every pixel (no per-pixel branching), about
/// N = ln(eps (1 - f))/ln f, fewer for small gamma, rounded up to even (the
/// value path sums even and odd terms as two chains).  Since
/// |F| >= 1/(1 + f) >= 1/2 (Euler's integral of 2F1), the truncation error of
/// alpha, psi and the Hessian is below 2 eps relative to |alpha|:
/// eps = 1e-14 in double, 1e-7 in float.  Terms (double, gamma = 1.2 / 2 /
/// 2.8): 10 / 10 / 12 at q = 0.9, 16 / 18 / 20 at q = 0.7, 24 / 28 / 30 at
/// q = 0.5, 60 / 72 / 80 at q = 0.2 (float: 6 / 8 / 10 at q = 0.7, 24 / 34 /
/// 42 at q = 0.2).  Gradients bound the slower tails of sum n Omega_n and
/// dF/dgamma the same way (a few more terms).  At most 1000 terms: q >= 0.02
/// keeps the full accuracy, smaller q stays finite but is less accurate.
/// Measured against lenstronomy: alpha, psi and H within 1e-13 of their
/// largest value (double), 5e-7 (float).
///
/// Centre: points with R < 1e-15" q (1e-12" q in float; detail::cusp_radius)
/// are moved radially onto that radius (finite values), and at the centre
/// itself alpha = psi = shear = 0 (as lenstronomy), kappa is its value at
/// that radius and the shape gradients are 0: no NaN or inf anywhere.
template <class Scalar>
using EPL = EllipticalProfile<EPLParams<Scalar>>;

}  // namespace lensing

#endif  // LENSING_PROFILES_EPL_HPP
