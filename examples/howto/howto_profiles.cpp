// How to: a composite lens, its deflection, and ray shooting on a pixel grid.
//
//   howto_profiles      (no arguments; exits 1 if a check fails)
//
// An SIE plus external shear (lenstronomy parameter conventions, arcsec) is
// one trivially copyable value: call its methods anywhere, or hand it to the
// map functions, which evaluate it on every (sub-)pixel in a kernel.  Checks:
// ray shooting gives beta = x - alpha(x) on every sub-pixel, the composite's
// deflection is the sum of its components', and a round SIE deflects by
// exactly theta_E everywhere.
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

int main(int argc, char** argv) {
  Kokkos::ScopeGuard guard(argc, argv);
  using Space = Kokkos::DefaultExecutionSpace;
  // theta_E, e1, e2, center_x, center_y  |  gamma1, gamma2, ra_0, dec_0
  lensing::SIE<double> const sie{1.2, 0.1, -0.05, 0.02, -0.01};
  lensing::ExternalShear<double> const shear{0.03, -0.02, 0.0, 0.0};
  auto const lens = lensing::make_composite(sie, shear);

  // One point: deflection alpha(x) (a Vec2), convergence, and the source position.
  lensing::Vec2<double> const a = lens.deflection(0.7, 0.4);
  std::printf("alpha(0.7, 0.4) = (%.6f, %.6f), kappa = %.6f, beta = (%.6f, %.6f)\n", a.x, a.y,
              lens.convergence(0.7, 0.4), 0.7 - a.x, 0.4 - a.y);

  // A 64^2 grid of 0.05" pixels, 3x3 sub-pixels: beta on every sub-pixel.
  auto const grid = lensing::PixelGrid<double>::square(64, 0.05, /*supersampling=*/3);
  lensing::View2D<double, Space::memory_space> bx("bx", grid.fine_ny(), grid.fine_nx()),
      by("by", grid.fine_ny(), grid.fine_nx());
  lensing::ray_shoot(Space(), lens, grid, bx, by);
  auto const hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), bx);  // fences
  auto const hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), by);

  double ray_err = 0, sum_err = 0, sis_err = 0;
  lensing::SIE<double> const round{1.2, 0.0, 0.0, 0.0, 0.0};
  for (int jy = 0; jy < grid.fine_ny(); ++jy)
    for (int jx = 0; jx < grid.fine_nx(); ++jx) {
      double const x = grid.fine_x(jx), y = grid.fine_y(jy);
      auto const al = lens.deflection(x, y), a1 = sie.deflection(x, y), a2 = shear.deflection(x, y);
      ray_err = std::max({ray_err, std::fabs(hx(jy, jx) - (x - al.x)), std::fabs(hy(jy, jx) - (y - al.y))});
      sum_err = std::max({sum_err, std::fabs(al.x - a1.x - a2.x), std::fabs(al.y - a1.y - a2.y)});
      auto const ar = round.deflection(x, y);
      sis_err = std::max(sis_err, std::fabs(std::hypot(ar.x, ar.y) - 1.2));
    }
  std::printf(
      "max |beta - (x - alpha)| = %.2e, max |alpha - sum of parts| = %.2e, max ||alpha_round| - theta_E| = %.2e\n",
      ray_err, sum_err, sis_err);
  // Same formulas on both sides (kernel vs host, up to FMA contraction): a few ulps.
  bool const ok = ray_err < 1e-12 && sum_err < 1e-12 && sis_err < 1e-12;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
