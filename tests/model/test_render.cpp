#include <lensing/model/render.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/sources/gaussian.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include "render_reference.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {
template <class V>
std::vector<double> to_host(V const& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  std::vector<double> out;
  for (std::size_t iy = 0; iy < h.extent(0); ++iy)
    for (std::size_t ix = 0; ix < h.extent(1); ++ix)
      out.push_back(double(h(iy, ix)));
  return out;
}
// The sky of the row-function tests below: SIE + shear, elliptical Sersic
// source and lens light (the benchmarks' case).
template <class S>
auto sky_lens() {
  return lensing::make_composite(lensing::SIE<S>{S(1.05), S(0.05), S(-0.03), S(0.013), S(-0.021)},
                                 lensing::ExternalShear<S>{S(0.03), S(-0.02), 0, 0});
}
template <class S>
lensing::SersicEllipse<S> sky_source() {
  return {S(20), S(0.25), S(1.6), S(0.08), S(-0.05), S(0.06), S(0.03)};
}
template <class S>
lensing::SersicEllipse<S> sky_lens_light() {
  return {S(8), S(0.6), S(3.2), S(-0.06), S(0.04), S(0.013), S(-0.021)};
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("rendered images match lenstronomy's ImageModel", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  double const eps = std::numeric_limits<Scalar>::epsilon();
  // Error model, relative to the image maximum, computed per image:
  //  - model: lenstronomy's SIE is an NIE with s_scale = 1e-10; we render that
  //    NIE too (e_core = |SIE image - NIE image| / max, reported) and compare
  //    ours (SIE) within e_core plus rounding, ours (NIE) within rounding;
  //  - rounding: positions |x| <= R (grid half-diagonal plus theta_E) rounded to
  //    the working precision move a pixel by eps R |grad I|: bound
  //    16 eps (1 + R max|grad I| / max I) (x 16: the pixel-difference gradient
  //    of a supersampled image understates the sub-pixel one, and both codes
  //    round).
  Space space;
  double worst = 0;
  for (auto const& c : lensing::test::image_cases<Scalar>()) {
    auto const& lp = c.entry->at("lens_params");
    auto g = [](nlohmann::json const& p, char const* k) { return Scalar(p.at(k).get<double>()); };
    lensing::NIE<Scalar> const nie{g(lp[0], "theta_E"), Scalar(1e-10),        g(lp[0], "e1"),
                                   g(lp[0], "e2"),      g(lp[0], "center_x"), g(lp[0], "center_y")};
    auto const lens_nie = lensing::make_composite(
        nie,
        lensing::ExternalShear<Scalar>{g(lp[1], "gamma1"), g(lp[1], "gamma2"), g(lp[1], "ra_0"), g(lp[1], "dec_0")});
    double const R = std::sqrt(2.0) * 0.5 * c.num_pix * c.pixel_scale + double(nie.theta_E);
    for (int k : {1, 3, 7}) {
      auto const grid = lensing::PixelGrid<Scalar>::square(c.num_pix, Scalar(c.pixel_scale), k);
      lensing::Renderer<Scalar, Mem> const renderer(grid);
      lensing::GaussianFilter<Scalar, Mem> const psf(c.psf_fwhm, c.pixel_scale, c.num_pix, c.num_pix, c.truncation);
      lensing::View2D<Scalar, Mem> image("image", c.num_pix, c.num_pix), blurred("blurred", c.num_pix, c.num_pix);
      lensing::View2D<Scalar, Mem> image_nie("image_nie", c.num_pix, c.num_pix),
          blurred_nie("blurred_nie", c.num_pix, c.num_pix);
      renderer.render(space, c.lens, c.source, c.lens_light, image);
      renderer.render(space, lens_nie, c.source, c.lens_light, image_nie);
      psf.apply(space, image, blurred);
      psf.apply(space, image_nie, blurred_nie);
      space.fence();
      auto const got = to_host(image), got_psf = to_host(blurred);
      auto const nie_img = to_host(image_nie), nie_psf = to_host(blurred_nie);
      // Largest pixel-difference gradient of the image, per arcsec, over its maximum.
      double peak = 0, grad = 0;
      int const n = c.num_pix;
      for (int iy = 0; iy < n; ++iy)
        for (int ix = 0; ix < n; ++ix) {
          peak = std::max(peak, std::fabs(nie_img[iy * n + ix]));
          if (ix > 0 && ix < n - 1)
            grad = std::max(grad, std::fabs(nie_img[iy * n + ix + 1] - nie_img[iy * n + ix - 1]) / (2 * c.pixel_scale));
          if (iy > 0 && iy < n - 1)
            grad = std::max(grad,
                            std::fabs(nie_img[(iy + 1) * n + ix] - nie_img[(iy - 1) * n + ix]) / (2 * c.pixel_scale));
        }
      double const rounding = 16 * eps * (1 + R * grad / peak);
      auto const ref = c.image("image_ss" + std::to_string(k) + "_no_psf"),
                 ref_psf = c.image("image_ss" + std::to_string(k));
      double const e_core = lensing::test::rel_diff(got, nie_img),
                   e_core_psf = lensing::test::rel_diff(got_psf, nie_psf);
      double const n0 = lensing::test::rel_diff(nie_img, ref), n1 = lensing::test::rel_diff(nie_psf, ref_psf);
      double const e0 = lensing::test::rel_diff(got, ref), e1 = lensing::test::rel_diff(got_psf, ref_psf);
      MESSAGE("k = " << k << ": max |diff| / max: SIE " << e0 << " (no PSF), " << e1 << " (PSF); NIE(1e-10) " << n0
                     << ", " << n1 << "; SIE - NIE " << e_core << "; rounding model " << rounding);
      CHECK(n0 <= rounding);
      CHECK(n1 <= rounding);
      CHECK(e0 <= e_core + rounding);
      CHECK(e1 <= e_core_psf + rounding);
      worst = std::max({worst, n0 / rounding, n1 / rounding, e0 / (e_core + rounding), e1 / (e_core_psf + rounding)});
    }
  }
  MESSAGE("worst error / model " << worst);
}

LENSING_TEST_CASE_TEMPLATE("supersampling converges to the pixel integral", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  // Unlensed Gaussian (no lens deflection: a zero shear) integrates in closed
  // form over each pixel; the k x k midpoint rule errs by O(1/k^2).
  lensing::Composite<lensing::ExternalShear<double>> const lens{lensing::ExternalShear<double>{0, 0, 0, 0}};
  lensing::Gaussian<double> const src{3.0, 0.12, 0.031, -0.017};
  int const n = 16;
  double const d = 0.05;
  std::vector<double> exact(n * n);
  auto F = [&](double a, double b, double c, double s) {
    return 0.5 * (std::erf((b - c) / (std::sqrt(2.0) * s)) - std::erf((a - c) / (std::sqrt(2.0) * s)));
  };
  for (int iy = 0; iy < n; ++iy)
    for (int ix = 0; ix < n; ++ix) {
      double const x = (ix - 7.5) * d, y = (iy - 7.5) * d;
      exact[iy * n + ix] = 3.0 * F(x - d / 2, x + d / 2, 0.031, 0.12) * F(y - d / 2, y + d / 2, -0.017, 0.12);
    }
  Space space;
  double prev = 1;
  for (int k : {1, 2, 4, 8}) {
    auto const grid = lensing::PixelGrid<double>::square(n, d, k);
    lensing::Renderer<double, Mem> const r(grid);
    lensing::View2D<double, Mem> image("image", n, n);
    r.render(space, lens, src, lensing::NoLight<double>{}, image);
    double const err = lensing::test::rel_diff(to_host(image), exact);
    MESSAGE("k = " << k << ": error " << err);
    if (k > 1) CHECK(err < prev / 3.0);  // ~1/4 per doubling
    prev = err;
  }
  CHECK(prev < 2e-3);
}

// The host render runs its rows (fine rows of a pixel row, then their k x k
// sums) on the calling thread for small images and forked otherwise: the same
// row function, so the same bits.  Against render_fine (the fine map through
// the generic pixel loop) binned here in the same order: the same formulas
// on the same points, vectorised at another width (libmvec's 4- and 8-lane
// exp, log and atan differ by a few ulp); the Sersic's exponent amplifies a
// relative error of its radius by b_n t / n <= ~10 on the arcs, the pixel sum
// adds k^2 roundings: bound 64 eps of the image maximum.
LENSING_TEST_CASE_TEMPLATE("render: same bits on the caller and forked, fine map and binning", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using S = typename Config::scalar;
  using Mem = typename Config::memory_space;
  double const eps = std::numeric_limits<S>::epsilon();
  auto const lens = sky_lens<S>();
  auto const src = sky_source<S>();
  auto const light = sky_lens_light<S>();
  Space space;
  for (int k : {1, 3}) {
    int const n = 37;  // odd: vector tails
    auto const grid = lensing::PixelGrid<S>::square(n, S(0.07), k);
    lensing::Renderer<S, Mem> const r(grid);
    lensing::View2D<S, Mem> a("a", n, n), b("b", n, n), fine("fine", grid.fine_ny(), grid.fine_nx());
    double const saved = lensing::host_fork_join_ns();
    lensing::set_host_fork_join_ns(0);
    r.render(space, lens, src, light, a);
    lensing::set_host_fork_join_ns(1e12);
    r.render(space, lens, src, light, b);
    lensing::set_host_fork_join_ns(saved);
    r.render_fine(space, lens, src, light, fine);
    space.fence();
    auto const ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
    auto const hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
    auto const hf = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), fine);
    S const w = grid.pixel_scale() * grid.pixel_scale() / S(k * k);
    int differ = 0;
    double peak = 0, worst = 0;
    for (int iy = 0; iy < n; ++iy)
      for (int ix = 0; ix < n; ++ix) {
        differ += std::memcmp(&ha(iy, ix), &hb(iy, ix), sizeof(S)) != 0;
        S s = 0;
        for (int sy = 0; sy < k; ++sy)
          for (int sx = 0; sx < k; ++sx)
            s += hf(iy * k + sy, ix * k + sx);
        peak = std::max(peak, std::fabs(double(ha(iy, ix))));
        worst = std::max(worst, std::fabs(double(ha(iy, ix)) - double(w * s)));
      }
    MESSAGE("k = " << k << ": render vs binned fine map, max |diff| / max " << worst / peak);
    CHECK(differ == 0);
    CHECK(peak > 0);
    CHECK(worst <= 64 * eps * peak);
  }
}

// render_fine_positions: the fine map of render_fine (the same operations on
// the same points; vector widths may differ between the two loops, so the
// bound of the test above: 64 eps of the maximum) and beta = x - alpha(x)
// against the lens's own deflection evaluated here point by point (the
// prepared kernel vs the profile's, vector vs scalar atan2 and log: a few
// ulp of |alpha| = |alpha_x| + |alpha_y|, ~1 here, in each component, which
// the rotation to the sky frame mixes; bound 16 eps (|x| + |alpha|)).
LENSING_TEST_CASE_TEMPLATE("render_fine_positions: render_fine's map and the source-plane positions", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using S = typename Config::scalar;
  using Mem = typename Config::memory_space;
  double const eps = std::numeric_limits<S>::epsilon();
  auto const lens = sky_lens<S>();
  auto const src = sky_source<S>();
  auto const light = sky_lens_light<S>();
  Space space;
  for (int k : {1, 3}) {
    int const n = 37;  // odd: vector tails
    auto const grid = lensing::PixelGrid<S>::square(n, S(0.07), k);
    int const fny = grid.fine_ny(), fnx = grid.fine_nx();
    lensing::Renderer<S, Mem> const r(grid);
    lensing::View2D<S, Mem> fine("fine", fny, fnx), fine2("fine2", fny, fnx), bx("bx", fny, fnx), by("by", fny, fnx);
    r.render_fine(space, lens, src, light, fine);
    r.render_fine_positions(space, lens, src, light, fine2, bx, by);
    space.fence();
    auto const hf = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), fine);
    auto const hf2 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), fine2);
    auto const hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), bx);
    auto const hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), by);
    double peak = 0, worst = 0, worst_beta = 0;
    int same = 0;
    for (int jy = 0; jy < fny; ++jy)
      for (int jx = 0; jx < fnx; ++jx) {
        same += std::memcmp(&hf(jy, jx), &hf2(jy, jx), sizeof(S)) == 0;
        peak = std::max(peak, std::fabs(double(hf(jy, jx))));
        worst = std::max(worst, std::fabs(double(hf(jy, jx)) - double(hf2(jy, jx))));
        S const x = grid.fine_x(jx), y = grid.fine_y(jy);
        auto const a = lens.deflection(x, y);
        double const alpha = std::fabs(double(a.x)) + std::fabs(double(a.y));
        double const wb = std::max(std::fabs(double(hx(jy, jx)) - double(x - a.x)) / (std::fabs(double(x)) + alpha),
                                   std::fabs(double(hy(jy, jx)) - double(y - a.y)) / (std::fabs(double(y)) + alpha));
        worst_beta = std::max(worst_beta, wb / eps);
      }
    MESSAGE("k = " << k << ": fine maps equal at " << same << " of " << fny * fnx << " points, max |diff| / max "
                   << worst / peak << "; beta within " << worst_beta << " eps (|x| + |alpha|)");
    CHECK(peak > 0);
    CHECK(worst <= 64 * eps * peak);
    CHECK(worst_beta <= 16);
  }
  // Bad input: views of the wrong extents, or the same view twice.
  auto const grid = lensing::PixelGrid<S>::square(8, S(0.1), 2);
  lensing::Renderer<S, Mem> const r(grid);
  lensing::View2D<S, Mem> f("f", 16, 16), g("g", 16, 16), wrong("wrong", 16, 15);
  CHECK_THROWS_AS(r.render_fine_positions(space, lens, src, light, f, g, wrong), std::invalid_argument);
  CHECK_THROWS_AS(r.render_fine_positions(space, lens, src, light, wrong, f, g), std::invalid_argument);
  CHECK_THROWS_AS(r.render_fine_positions(space, lens, src, light, f, g, g), std::invalid_argument);
  CHECK_THROWS_AS(r.render_fine_positions(space, lens, src, light, f, f, g), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("render rejects bad shapes", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  auto const grid = lensing::PixelGrid<double>::square(8, 0.1, 2);
  lensing::Renderer<double, Mem> const r(grid);
  lensing::View2D<double, Mem> wrong("wrong", 8, 9);
  lensing::Composite<lensing::ExternalShear<double>> const lens{lensing::ExternalShear<double>{0, 0, 0, 0}};
  lensing::Gaussian<double> const src{1, 0.1, 0, 0};
  CHECK_THROWS_AS(r.render(Space(), lens, src, src, wrong), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("adaptive supersampling", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  Space space;
  auto const c = lensing::test::image_cases<double>()[0];
  int const n = c.num_pix;
  auto const g7 = lensing::PixelGrid<double>::square(n, c.pixel_scale, 7);
  auto const g1 = lensing::PixelGrid<double>::square(n, c.pixel_scale, 1);
  lensing::Renderer<double, Mem> const r7(g7), r1(g1);
  lensing::View2D<double, Mem> uni("uni", n, n), one("one", n, n), ada("ada", n, n);
  lensing::View2D<int, Mem> mask("mask", n, n);
  r7.render(space, c.lens, c.source, c.lens_light, uni);
  r1.render(space, c.lens, c.source, c.lens_light, one);
  // All flagged = uniform k; none flagged = k = 1 (same sums in the same order).
  Kokkos::deep_copy(mask, 1);
  r7.render_adaptive(space, c.lens, c.source, c.lens_light, mask, ada);
  space.fence();
  CHECK(lensing::test::rel_diff(to_host(ada), to_host(uni)) <= 1e-14);
  Kokkos::deep_copy(mask, 0);
  r7.render_adaptive(space, c.lens, c.source, c.lens_light, mask, ada);
  space.fence();
  CHECK(lensing::test::rel_diff(to_host(ada), to_host(one)) <= 1e-14);
  // Selected pixels: most of the supersampling gain for a fraction of the cost.
  lensing::select_supersampled_pixels(space, one, 0.01, mask);
  r7.render_adaptive(space, c.lens, c.source, c.lens_light, mask, ada);
  space.fence();
  auto hm = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mask);
  long flagged = 0;
  for (int iy = 0; iy < n; ++iy)
    for (int ix = 0; ix < n; ++ix)
      flagged += hm(iy, ix);
  auto const ref7 = c.image("image_ss7_no_psf");
  double const e1 = lensing::test::rel_diff(to_host(one), ref7), ea = lensing::test::rel_diff(to_host(ada), ref7);
  MESSAGE("adaptive: " << flagged << " of " << n * n << " pixels supersampled; max error vs k = 7: " << ea
                       << " (k = 1: " << e1 << ")");
  CHECK(flagged < n * n / 2);
  CHECK(ea < e1 / 20);
  lensing::View2D<int, Mem> wrong("wrong", n, n + 1);
  CHECK_THROWS_AS(r7.render_adaptive(space, c.lens, c.source, c.lens_light, wrong, ada), std::invalid_argument);
  CHECK_THROWS_AS(lensing::select_supersampled_pixels(space, one, -1.0, mask), std::invalid_argument);
}
