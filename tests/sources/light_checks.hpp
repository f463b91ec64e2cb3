#ifndef LENSING_TESTS_SOURCES_LIGHT_CHECKS_HPP
#define LENSING_TESTS_SOURCES_LIGHT_CHECKS_HPP

// Shared checks for light profiles: evaluation on an execution space, and the
// parameter / position VJP against central finite differences (double).

#include <lensing/core/math.hpp>
#include <lensing/core/views.hpp>
#include <lensing/sources/light_profile.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <vector>

namespace lensing {
namespace test {

/// Surface brightness of `p` at the points, computed in a kernel on Space.
template <class Space, class P>
std::vector<double> light_on_space(P const& p, std::vector<double> const& xs, std::vector<double> const& ys) {
  using Scalar = typename P::scalar_type;
  using Mem = typename Space::memory_space;
  int const n = int(xs.size());
  View1D<Scalar, Mem> x("x", n), y("y", n), out("out", n);
  auto hx = Kokkos::create_mirror_view(x), hy = Kokkos::create_mirror_view(y);
  for (int i = 0; i < n; ++i) {
    hx(i) = Scalar(xs[i]);
    hy(i) = Scalar(ys[i]);
  }
  Kokkos::deep_copy(x, hx);
  Kokkos::deep_copy(y, hy);
  Space space;
  Kokkos::parallel_for(
      "lensing::test::light", Kokkos::RangePolicy<Space>(space, 0, n),
      KOKKOS_LAMBDA(int i) { out(i) = p.surface_brightness(x(i), y(i)); });
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  std::vector<double> r(n);
  for (int i = 0; i < n; ++i)
    r[i] = double(h(i));
  return r;
}

/// VJP (parameters and position) of `p` at (x, y) computed in a kernel on
/// Space, compared with central differences of the double profile `pd`:
/// returns the number of components off by more than rtol * scale + atol.
template <class Space, class P, class PD>
int light_vjp_failures(P const& p, PD const& pd, double x, double y, double g, double rtol, double h = 1e-6) {
  using Scalar = typename P::scalar_type;
  using Mem = typename Space::memory_space;
  constexpr int N = P::num_params;
  View1D<Scalar, Mem> out("out", N + 2);
  Space space;
  Kokkos::parallel_for(
      "lensing::test::light_vjp", Kokkos::RangePolicy<Space>(space, 0, 1), KOKKOS_LAMBDA(int) {
        Scalar grad[N + 1] = {};
        auto const gp = p.surface_brightness_vjp(Scalar(x), Scalar(y), Scalar(g), grad);
        for (int k = 0; k < N; ++k)
          out(k) = grad[k];
        out(N) = gp.x;
        out(N + 1) = gp.y;
      });
  auto ho = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  double theta[N + 1] = {};
  pd.pack(theta);
  // Central differences at steps h and 2h: fd_err = |fd(2h) - fd(h)| / 3 is
  // Richardson's estimate of fd(h)'s own error (h^2/6 times the third
  // derivative, which grows like the cube of the exponent in a far Gaussian
  // or Sersic tail, plus rounding eps |f| / h); the bound adds twice it.
  std::vector<double> fd(N + 2), fd_err(N + 2);
  for (int k = 0; k < N; ++k) {
    double const hk = h * std::max(1.0, std::fabs(theta[k]));
    double d[2];
    for (int s = 0; s < 2; ++s) {
      double tp[N + 1], tm[N + 1];
      for (int j = 0; j < N; ++j)
        tp[j] = tm[j] = theta[j];
      tp[k] += (s + 1) * hk;
      tm[k] -= (s + 1) * hk;
      d[s] =
          g * (PD::unpack(tp).surface_brightness(x, y) - PD::unpack(tm).surface_brightness(x, y)) / (2 * (s + 1) * hk);
    }
    fd[k] = d[0];
    fd_err[k] = std::fabs(d[1] - d[0]) / 3;
  }
  for (int axis = 0; axis < 2; ++axis) {
    double d[2];
    for (int s = 0; s < 2; ++s) {
      double const dx = axis == 0 ? (s + 1) * h : 0, dy = axis == 1 ? (s + 1) * h : 0;
      d[s] = g * (pd.surface_brightness(x + dx, y + dy) - pd.surface_brightness(x - dx, y - dy)) / (2 * (s + 1) * h);
    }
    fd[N + axis] = d[0];
    fd_err[N + axis] = std::fabs(d[1] - d[0]) / 3;
  }
  double scale = 0;
  for (double v : fd)
    scale = std::max(scale, std::fabs(v));
  int bad = 0;
  for (int k = 0; k < N + 2; ++k) {
    double const v = double(ho(k));
    if (!(std::fabs(v - fd[k]) <= rtol * (scale + std::fabs(pd.surface_brightness(x, y))) + 2 * fd_err[k])) {
      ++bad;
      MESSAGE("vjp component " << k << ": got " << v << ", finite differences " << fd[k]);
    }
  }
  return bad;
}

/// Whether the surface brightness and its VJP are finite at (x, y) (on Space).
template <class Space, class P>
bool light_finite_at(P const& p, double x, double y) {
  using Scalar = typename P::scalar_type;
  constexpr int N = P::num_params;
  return count_failures(
             Space(), 1, KOKKOS_LAMBDA(long) {
               Scalar grad[N + 1] = {};
               Scalar const I = p.surface_brightness(Scalar(x), Scalar(y));
               auto const gp = p.surface_brightness_vjp(Scalar(x), Scalar(y), Scalar(1), grad);
               bool ok = lensing::math::isfinite(I) && lensing::math::isfinite(gp.x) && lensing::math::isfinite(gp.y);
               for (int k = 0; k < N; ++k)
                 ok = ok && lensing::math::isfinite(grad[k]);
               return ok;
             }) == 0;
}

}  // namespace test
}  // namespace lensing

#endif
