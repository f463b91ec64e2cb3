#ifndef LENSING_SOURCES_SHAPELETS_HPP
#define LENSING_SOURCES_SHAPELETS_HPP

#include <lensing/core/errors.hpp>
#include <lensing/sources/light_profile.hpp>

#include <array>

namespace lensing {

namespace detail {
template <int NC>
constexpr std::array<char const*, NC + 3> shapelet_param_names() {
  std::array<char const*, NC + 3> n{};
  for (int i = 0; i < NC; ++i)
    n[i] = "amp";
  n[NC] = "beta";
  n[NC + 1] = "center_x";
  n[NC + 2] = "center_y";
  return n;
}
}  // namespace detail

/// Cartesian shapelets up to order NMax (lenstronomy "SHAPELETS"; Refregier
/// 2003, MNRAS 338, 35):
///   I(x, y) = sum_{n1 + n2 <= NMax} amp_k phi_n1((x - cx)/beta) phi_n2((y - cy)/beta),
///   phi_n(t) = H_n(t) exp(-t^2/2) / sqrt(2^n sqrt(pi) n!),
/// H_n the physicists' Hermite polynomials, with lenstronomy's normalisation
/// (no 1/beta factor) and coefficient order: by total order N = 0..NMax, and
/// within an order n1 = N, N-1, ..., 0 (so (0,0), (1,0), (0,1), (2,0), (1,1),
/// (0,2), ...).  The phi_n are evaluated by the stable three-term recurrence.
/// Parameters (pack order): the (NMax+1)(NMax+2)/2 coefficients (each named
/// "amp", as lenstronomy's list), beta > 0 [arcsec], center_x, center_y.
/// Differences from lenstronomy: its `stable_cut` zeroes basis functions for
/// (x - cx)/beta >= 5 sqrt(n + 2), where they are below exp(-12.5 (n + 2)) of
/// their peak; this profile does not.
template <class Scalar, int NMax>
struct Shapelets {
  static_assert(NMax >= 0 && NMax <= 100, "lensing::Shapelets: NMax must be in [0, 100]");
  using scalar_type = Scalar;
  static constexpr int n_max = NMax;
  static constexpr int num_coefficients = (NMax + 1) * (NMax + 2) / 2;
  static constexpr int num_params = num_coefficients + 3;
  static constexpr std::array<char const*, num_params> param_names = detail::shapelet_param_names<num_coefficients>();
  Scalar amp[num_coefficients];
  Scalar beta;
  Scalar center_x;
  Scalar center_y;

 private:
  // phi_0..phi_{NMax+1}(t) (one extra order, for the derivatives).
  KOKKOS_FORCEINLINE_FUNCTION static void hermite_functions(Scalar t, Scalar* phi) {
    phi[0] = Scalar(0.7511255444649425) * math::exp(Scalar(-0.5) * t * t);  // pi^(-1/4)
    phi[1] = Scalar(1.4142135623730951) * t * phi[0];
    for (int n = 1; n <= NMax; ++n)
      phi[n + 1] =
          math::sqrt(Scalar(2) / Scalar(n + 1)) * t * phi[n] - math::sqrt(Scalar(n) / Scalar(n + 1)) * phi[n - 1];
  }
  // phi_n'(t) = sqrt(n/2) phi_{n-1} - sqrt((n+1)/2) phi_{n+1}.
  KOKKOS_FORCEINLINE_FUNCTION static Scalar hermite_derivative(Scalar const* phi, int n) {
    Scalar d = -math::sqrt(Scalar(0.5) * Scalar(n + 1)) * phi[n + 1];
    if (n > 0) d += math::sqrt(Scalar(0.5) * Scalar(n)) * phi[n - 1];
    return d;
  }

 public:
  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    Scalar px[NMax + 2], py[NMax + 2];
    hermite_functions((x - center_x) / beta, px);
    hermite_functions((y - center_y) / beta, py);
    Scalar s = 0;
    int k = 0;
    for (int N = 0; N <= NMax; ++N)
      for (int n1 = N; n1 >= 0; --n1, ++k)
        s += amp[k] * px[n1] * py[N - n1];
    return s;
  }
  template <class Grad>
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> surface_brightness_vjp(Scalar x, Scalar y, Scalar g, Grad grad) const {
    Scalar const xs = (x - center_x) / beta, ys = (y - center_y) / beta;
    Scalar px[NMax + 2], py[NMax + 2], dx[NMax + 1], dy[NMax + 1];
    hermite_functions(xs, px);
    hermite_functions(ys, py);
    for (int n = 0; n <= NMax; ++n) {
      dx[n] = hermite_derivative(px, n);
      dy[n] = hermite_derivative(py, n);
    }
    Scalar gx = 0, gy = 0;
    int k = 0;
    for (int N = 0; N <= NMax; ++N)
      for (int n1 = N; n1 >= 0; --n1, ++k) {
        int const n2 = N - n1;
        grad[k] += g * px[n1] * py[n2];
        gx += amp[k] * dx[n1] * py[n2];
        gy += amp[k] * px[n1] * dy[n2];
      }
    Scalar const cx = g * gx / beta, cy = g * gy / beta;
    grad[num_coefficients] -= cx * xs + cy * ys;
    grad[num_coefficients + 1] -= cx;
    grad[num_coefficients + 2] -= cy;
    return {cx, cy};
  }
  KOKKOS_INLINE_FUNCTION void pack(Scalar* t) const {
    for (int k = 0; k < num_coefficients; ++k)
      t[k] = amp[k];
    t[num_coefficients] = beta;
    t[num_coefficients + 1] = center_x;
    t[num_coefficients + 2] = center_y;
  }
  KOKKOS_INLINE_FUNCTION static Shapelets unpack(Scalar const* t) {
    Shapelets s{};
    for (int k = 0; k < num_coefficients; ++k)
      s.amp[k] = t[k];
    s.beta = t[num_coefficients];
    s.center_x = t[num_coefficients + 1];
    s.center_y = t[num_coefficients + 2];
    return s;
  }
  void check() const {
    constexpr char const* where = "lensing::Shapelets";
    for (int k = 0; k < num_coefficients; ++k)
      check_finite(amp[k], where, "amp");
    check_positive(beta, where, "beta");
    check_finite(center_x, where, "center_x");
    check_finite(center_y, where, "center_y");
  }
};

}  // namespace lensing

#endif  // LENSING_SOURCES_SHAPELETS_HPP
