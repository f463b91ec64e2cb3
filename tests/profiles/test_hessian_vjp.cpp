// Parameter VJPs of the Hessian (every profile's hessian_vjp) and of the
// shear and magnification maps (raytrace/hessian_vjp.hpp):
//  - hessian_vjp in a kernel on every backend vs central finite differences of
//    hessian() over each parameter (double), or vs the double hessian_vjp
//    (float: a float difference quotient of a Hessian has ~1e-3 noise);
//  - identity: hbar = I (trace) gives 2 x convergence_vjp;
//  - finite at the centre and next to it;
//  - shear_map_vjp / magnification_map_vjp / hessian_map_vjp of a composite
//    (SIE + shear + NFW) vs finite differences of the summed maps.

#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/cored_density.hpp>
#include <lensing/profiles/epl.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/gaussian_kappa.hpp>
#include <lensing/profiles/hernquist.hpp>
#include <lensing/profiles/mass_sheet.hpp>
#include <lensing/profiles/multipole.hpp>
#include <lensing/profiles/nfw.hpp>
#include <lensing/profiles/nfw_ellipse.hpp>
#include <lensing/profiles/point_mass.hpp>
#include <lensing/profiles/pseudo_jaffe.hpp>
#include <lensing/profiles/sersic_kappa.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/profiles/tnfw.hpp>
#include <lensing/raytrace/hessian_vjp.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using lensing::Hessian;
using lensing::PixelGrid;

template <class Scalar>
using Multipole1 = lensing::Multipole<Scalar, 1>;
template <class Scalar>
using Multipole3 = lensing::Multipole<Scalar, 3>;
template <class Scalar>
using Multipole4 = lensing::Multipole<Scalar, 4>;

// The cotangent used for the general check (all three components, unequal).
constexpr double hbar_xx = 0.3, hbar_xy = -0.7, hbar_yy = 0.5;

/// Per point: hessian_vjp with the general hbar (np values), with hbar = I
/// (np values) and convergence_vjp with g = 1 (np values), computed in a
/// kernel on Space, as double on the host.
template <class Space, class P>
std::vector<std::vector<double>> hessian_vjps(P const& p, std::vector<double> const& xs,
                                              std::vector<double> const& ys) {
  using Scalar = typename P::scalar_type;
  constexpr int np = P::num_params;
  int const n = static_cast<int>(xs.size());
  Kokkos::View<Scalar**, Kokkos::HostSpace> in("in", n, 2 + 3 * np);
  for (int i = 0; i < n; ++i) {
    in(i, 0) = Scalar(xs[i]);
    in(i, 1) = Scalar(ys[i]);
  }
  auto d = Kokkos::create_mirror_view_and_copy(typename Space::memory_space(), in);
  Kokkos::parallel_for(
      "lensing::test::hessian_vjps", Kokkos::RangePolicy<Space>(Space(), 0, n), KOKKOS_LAMBDA(int i) {
        Scalar const x = d(i, 0), y = d(i, 1);
        Scalar g[np], t[np], c[np];
        for (int k = 0; k < np; ++k)
          g[k] = t[k] = c[k] = Scalar(0);
        p.hessian_vjp(x, y, Hessian<Scalar>{Scalar(hbar_xx), Scalar(hbar_xy), Scalar(hbar_yy)}, g);
        p.hessian_vjp(x, y, Hessian<Scalar>{Scalar(1), Scalar(0), Scalar(1)}, t);
        p.convergence_vjp(x, y, Scalar(1), c);
        for (int k = 0; k < np; ++k) {
          d(i, 2 + k) = g[k];
          d(i, 2 + np + k) = t[k];
          d(i, 2 + 2 * np + k) = c[k];
        }
      });
  Space().fence();
  Kokkos::deep_copy(in, d);
  std::vector<std::vector<double>> out(n, std::vector<double>(3 * np));
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 3 * np; ++k)
      out[i][k] = double(in(i, 2 + k));
  return out;
}

template <template <class> class Profile, class Scalar>
Profile<Scalar> make(std::vector<double> const& theta) {
  std::vector<Scalar> t(theta.begin(), theta.end());
  return Profile<Scalar>::unpack(t.data());
}

/// hbar : H for the general cotangent.
template <class S>
double contract(Hessian<S> const& h) {
  return hbar_xx * h.xx + hbar_xy * h.xy + hbar_yy * h.yy;
}

/// Worst error / tolerance of hessian_vjp (general hbar) vs central FD of
/// hessian() (double) or vs the double hessian_vjp (float), and of the
/// identity hbar = I -> 2 convergence_vjp.  Returns the worst relative error
/// for the report (double: vs FD, |d| / (|FD| + 1e-3); float: vs the double
/// VJP, normwise per parameter).
template <template <class> class Profile, class Config>
double check_hessian_vjp(std::string const& model, std::vector<double> const& theta, std::vector<double> const& xs,
                         std::vector<double> const& ys, double rtol = 1e-6) {
  using Scalar = typename Config::scalar;
  using Space = typename Config::execution_space;
  using PD = Profile<double>;
  constexpr int np = PD::num_params;
  bool const is_float = std::is_same<Scalar, float>::value;
  auto const ours = hessian_vjps<Space>(make<Profile, Scalar>(theta), xs, ys);
  auto const exact = hessian_vjps<Kokkos::DefaultHostExecutionSpace>(make<Profile, double>(theta), xs, ys);
  double worst_rel = 0;
  for (int k = 0; k < np; ++k) {
    // float: normwise over the points, relative to this gradient's largest value.
    double scale = 0, tscale = 0;
    for (auto const& e : exact) {
      scale = std::max(scale, std::fabs(e[k]));
      tscale = std::max(tscale, std::fabs(e[2 * np + k]));
    }
    for (size_t i = 0; i < xs.size(); ++i) {
      double const x = xs[i], y = ys[i];
      double ref = exact[i][k], noise = 0;
      if (!is_float) {
        std::vector<double> tp = theta, tm = theta;
        double const step = 1e-5 * std::max(1.0, std::fabs(theta[k]));
        tp[k] += step;
        tm[k] -= step;
        auto const hp = make<Profile, double>(tp).hessian(x, y), hm = make<Profile, double>(tm).hessian(x, y);
        ref = (contract(hp) - contract(hm)) / (2 * step);
        // Rounding noise of the difference quotient: a few ulp of the values / step.
        noise = 8 * std::numeric_limits<double>::epsilon() / (2 * step) *
                (std::fabs(hbar_xx) * (std::fabs(hp.xx) + std::fabs(hm.xx)) +
                 std::fabs(hbar_xy) * (std::fabs(hp.xy) + std::fabs(hm.xy)) +
                 std::fabs(hbar_yy) * (std::fabs(hp.yy) + std::fabs(hm.yy)));
        worst_rel = std::max(worst_rel, std::fabs(ours[i][k] - ref) / (std::fabs(ref) + 1e-3));
      }
      if (is_float) worst_rel = std::max(worst_rel, std::fabs(ours[i][k] - ref) / (scale + 1e-6));
      double const tol = is_float ? 1e-4 * (scale + 1e-6) : rtol * (std::fabs(ref) + 1e-3) + noise;
      CHECK_MESSAGE(std::fabs(ours[i][k] - ref) <= tol, model, " hessian_vjp d/d", std::string(PD::param_names[k]),
                    " at (", x, ", ", y, "): ", ours[i][k], " vs ", ref);
      // Trace identity, on the same backend and precision.
      double const two_c = 2 * ours[i][2 * np + k], tr = ours[i][np + k];
      // float: relative to the gradients' scale (the trace of a point mass's
      // Hessian is 0 by cancellation of O(1) terms).
      double const ttol = is_float ? 1e-4 * (2 * tscale + scale + 1e-6) : 1e-9 * (std::fabs(two_c) + 1e-3);
      CHECK_MESSAGE(std::fabs(tr - two_c) <= ttol, model, " hessian_vjp(I) vs 2 convergence_vjp d/d",
                    std::string(PD::param_names[k]), " at (", x, ", ", y, "): ", tr, " vs ", two_c);
    }
  }
  return worst_rel;
}

/// hessian_vjp is finite at the centre and next to it (the test main traps
/// FE_INVALID, so a NaN from finite input fails loudly too).
template <template <class> class Profile, class Config>
void check_centre(std::string const& model, std::vector<double> const& theta, double cx, double cy) {
  using Scalar = typename Config::scalar;
  using Space = typename Config::execution_space;
  std::vector<double> const xs = {cx, cx + 1e-20, cx, cx + 1e-9, cx + 0.5};
  std::vector<double> const ys = {cy, cy, cy - 1e-20, cy + 2e-9, cy};
  auto const v = hessian_vjps<Space>(make<Profile, Scalar>(theta), xs, ys);
  for (size_t i = 0; i < xs.size(); ++i)
    for (double g : v[i])
      CHECK_MESSAGE(std::isfinite(g), model, " hessian_vjp not finite at offset (", xs[i] - cx, ", ", ys[i] - cy, ")");
}

std::vector<double> const xs = {0.7, -0.45, 1.3, 0.05, -1.1, 2.4};
std::vector<double> const ys = {0.3, 0.85, -0.6, -0.35, -0.9, 1.7};

}  // namespace

LENSING_TEST_CASE_TEMPLATE("hessian_vjp matches finite differences: elliptical profiles", Config,
                           lensing::test::AllConfigs) {
  double w = 0;
  w = std::max(w, check_hessian_vjp<lensing::SIE, Config>("SIE", {1.2, 0.1, -0.05, 0.1, 0.0}, xs, ys));
  // Nearly round (the atan/atanh series branch); e = 0 exactly is excluded: the
  // dual numbers differentiate through the (q, phi) chart, which is singular
  // there, and give zero e1, e2 gradients (the first-order VJPs handle e = 0,
  // EllipticalProfile::vjp_round; hessian_vjp does not yet).
  // Double only: d/de2 = (1/2|e|) d/dphi amplifies float rounding of the
  // float convergence_vjp (trace identity) 5000 times.
  if constexpr (std::is_same<typename Config::scalar, double>::value)
    w = std::max(w, check_hessian_vjp<lensing::SIE, Config>("SIE nearly round", {1.2, 1e-4, 0.0, 0.1, 0.0}, xs, ys));
  w = std::max(w, check_hessian_vjp<lensing::NIE, Config>("NIE", {1.2, 0.2, 0.1, -0.05, 0.1, 0.0}, xs, ys));
  w = std::max(w, check_hessian_vjp<lensing::EPL, Config>("EPL", {1.2, 2.1, 0.1, -0.05, 0.1, 0.0}, xs, ys));
  w = std::max(w, check_hessian_vjp<lensing::EPL, Config>("EPL steep", {0.9, 2.6, -0.2, 0.15, -0.1, 0.2}, xs, ys));
  w = std::max(w,
               check_hessian_vjp<lensing::NFWEllipse, Config>("NFWEllipse", {1.5, 0.8, 0.1, -0.05, 0.1, 0.0}, xs, ys));
  w = std::max(
      w, check_hessian_vjp<lensing::NFWEllipseCSE, Config>("NFWEllipseCSE", {1.5, 0.8, 0.1, -0.05, 0.1, 0.0}, xs, ys));
  w = std::max(
      w, check_hessian_vjp<lensing::GaussianKappa, Config>("GaussianKappa", {1.5, 0.8, 0.1, -0.05, 0.1, 0.0}, xs, ys));
  w = std::max(
      w, check_hessian_vjp<lensing::SersicKappa, Config>("SersicKappa", {0.5, 0.8, 2.5, 0.1, -0.05, 0.1, 0.0}, xs, ys));
  MESSAGE("elliptical: worst relative error (double: vs FD; float: vs double) = ", w);
  check_centre<lensing::SIE, Config>("SIE", {1.2, 0.1, -0.05, 0.1, 0.0}, 0.1, 0.0);
  check_centre<lensing::NIE, Config>("NIE", {1.2, 0.2, 0.1, -0.05, 0.1, 0.0}, 0.1, 0.0);
  check_centre<lensing::EPL, Config>("EPL", {1.2, 2.1, 0.1, -0.05, 0.1, 0.0}, 0.1, 0.0);
  check_centre<lensing::NFWEllipse, Config>("NFWEllipse", {1.5, 0.8, 0.1, -0.05, 0.1, 0.0}, 0.1, 0.0);
  check_centre<lensing::NFWEllipseCSE, Config>("NFWEllipseCSE", {1.5, 0.8, 0.1, -0.05, 0.1, 0.0}, 0.1, 0.0);
  check_centre<lensing::GaussianKappa, Config>("GaussianKappa", {1.5, 0.8, 0.1, -0.05, 0.1, 0.0}, 0.1, 0.0);
  check_centre<lensing::SersicKappa, Config>("SersicKappa", {0.5, 0.8, 2.5, 0.1, -0.05, 0.1, 0.0}, 0.1, 0.0);
}

LENSING_TEST_CASE_TEMPLATE("hessian_vjp matches finite differences: radial and other profiles", Config,
                           lensing::test::AllConfigs) {
  double w = 0;
  w = std::max(w, check_hessian_vjp<lensing::SIS, Config>("SIS", {1.2, 0.1, -0.05}, xs, ys));
  w = std::max(w, check_hessian_vjp<lensing::NFW, Config>("NFW", {1.5, 0.8, 0.1, -0.05}, xs, ys));
  w = std::max(w, check_hessian_vjp<lensing::TNFW, Config>("TNFW", {1.5, 0.8, 5.0, 0.1, -0.05}, xs, ys));
  w = std::max(w, check_hessian_vjp<lensing::PointMass, Config>("PointMass", {1.2, 0.1, -0.05}, xs, ys));
  w = std::max(w, check_hessian_vjp<lensing::Hernquist, Config>("Hernquist", {1.0, 0.8, 0.1, -0.05}, xs, ys));
  w = std::max(w, check_hessian_vjp<lensing::PseudoJaffe, Config>("PseudoJaffe", {1.0, 0.2, 2.0, 0.1, -0.05}, xs, ys));
  w = std::max(w, check_hessian_vjp<lensing::CoredDensity, Config>("CoredDensity", {1.0, 0.3, 0.1, -0.05}, xs, ys));
  w = std::max(w, check_hessian_vjp<lensing::ExternalShear, Config>("ExternalShear", {0.05, -0.03, 0.1, 0.2}, xs, ys));
  w = std::max(w, check_hessian_vjp<lensing::MassSheet, Config>("MassSheet", {0.05, 0.1, 0.2}, xs, ys));
  w = std::max(w, check_hessian_vjp<Multipole1, Config>("Multipole1", {0.05, 0.3, 0.1, 0.2, 1.3}, xs, ys));
  w = std::max(w, check_hessian_vjp<Multipole3, Config>("Multipole3", {0.05, 0.3, 0.1, 0.2, 1.0}, xs, ys));
  w = std::max(w, check_hessian_vjp<Multipole4, Config>("Multipole4", {-0.04, 1.1, 0.1, 0.2, 1.0}, xs, ys));
  MESSAGE("radial/other: worst relative error (double: vs FD; float: vs double) = ", w);
  check_centre<lensing::SIS, Config>("SIS", {1.2, 0.1, -0.05}, 0.1, -0.05);
  check_centre<lensing::NFW, Config>("NFW", {1.5, 0.8, 0.1, -0.05}, 0.1, -0.05);
  check_centre<lensing::TNFW, Config>("TNFW", {1.5, 0.8, 5.0, 0.1, -0.05}, 0.1, -0.05);
  check_centre<lensing::PointMass, Config>("PointMass", {1.2, 0.1, -0.05}, 0.1, -0.05);
  check_centre<lensing::Hernquist, Config>("Hernquist", {1.0, 0.8, 0.1, -0.05}, 0.1, -0.05);
  check_centre<lensing::PseudoJaffe, Config>("PseudoJaffe", {1.0, 0.2, 2.0, 0.1, -0.05}, 0.1, -0.05);
  check_centre<lensing::CoredDensity, Config>("CoredDensity", {1.0, 0.3, 0.1, -0.05}, 0.1, -0.05);
  check_centre<Multipole1, Config>("Multipole1", {0.05, 0.3, 0.1, 0.2, 1.3}, 0.1, 0.2);
  check_centre<Multipole4, Config>("Multipole4", {-0.04, 1.1, 0.1, 0.2, 1.0}, 0.1, 0.2);
}

namespace {
template <class Scalar>
using Lens = lensing::Composite<lensing::SIE<Scalar>, lensing::ExternalShear<Scalar>, lensing::NFW<Scalar>>;
}  // namespace

LENSING_TEST_CASE_TEMPLATE("composite hessian_vjp matches finite differences", Config, lensing::test::AllConfigs) {
  // SIE + shear + NFW: components' parameters at their offsets.
  std::vector<double> const theta = {1.1, 0.1, -0.05, 0.02, -0.01, 0.04, -0.03, 0.0, 0.0, 2.0, 0.3, 0.5, 0.4};
  double const w = check_hessian_vjp<Lens, Config>("SIE+shear+NFW", theta, xs, ys);
  MESSAGE("composite: worst relative error (double: vs FD; float: vs double) = ", w);
}

LENSING_TEST_CASE_TEMPLATE("shear and magnification map VJPs match finite differences of the summed maps", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  using L = Lens<Scalar>;
  using LD = Lens<double>;
  bool const is_float = std::is_same<Scalar, float>::value;
  // A lens and a grid whose pixels stay away from its critical curves
  // (|det(I - H)| >= 0.05 checked below, |mu| <= 20): the magnification and
  // its FD are then well conditioned.
  std::vector<double> const theta = {0.4, 0.1, -0.05, 0.02, -0.01, 0.04, -0.03, 0.0, 0.0, 2.0, 0.2, 0.5, 0.4};
  std::vector<Scalar> ts(theta.begin(), theta.end());
  auto const lens = L::unpack(ts.data());
  PixelGrid<Scalar> const grid(9, 8, Scalar(0.35), 1, Scalar(0.013), Scalar(0.021));
  PixelGrid<double> const gridd(9, 8, 0.35, 1, 0.013, 0.021);
  int const ny = grid.fine_ny(), nx = grid.fine_nx();
  lensing::View2D<Scalar, Mem> w1("w1", ny, nx), w2("w2", ny, nx), wm("wm", ny, nx), one("one", ny, nx),
      zero("zero", ny, nx);
  auto h1 = Kokkos::create_mirror_view(w1), h2 = Kokkos::create_mirror_view(w2), hm = Kokkos::create_mirror_view(wm);
  double min_det = 1e300;
  auto const lensd = LD::unpack(theta.data());
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      h1(iy, ix) = Scalar(std::sin(0.7 * ix + 0.3 * iy));
      h2(iy, ix) = Scalar(std::cos(0.4 * ix - 0.9 * iy));
      hm(iy, ix) = Scalar(0.5 + 0.1 * ((ix * 7 + iy * 3) % 5));
      min_det = std::min(min_det, std::fabs(1 / lensd.hessian(gridd.fine_x(ix), gridd.fine_y(iy)).magnification()));
    }
  REQUIRE(min_det >= 0.05);
  Kokkos::deep_copy(w1, h1);
  Kokkos::deep_copy(w2, h2);
  Kokkos::deep_copy(wm, hm);
  Kokkos::deep_copy(one, Scalar(1));
  constexpr int np = L::num_params;
  lensing::View1D<Scalar, Mem> gs("gs", np), gm("gm", np), gt("gt", np), gk("gk", np);
  lensing::MapVjpWorkspace<Scalar, Mem> work(grid, np);
  Space space;
  lensing::shear_map_vjp(space, lens, grid, w1, w2, gs, work);
  auto hgs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gs);
  lensing::magnification_map_vjp(space, lens, grid, wm, gm, work);
  auto hgm = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gm);
  // Trace: hbar = I on every pixel gives 2 x convergence_map_vjp with kbar = 1.
  lensing::hessian_map_vjp(space, lens, grid, one, zero, one, gt, work);
  auto hgt = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gt);
  lensing::convergence_map_vjp(space, lens, grid, one, gk, work);
  auto hgk = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gk);
  double worst_s = 0, worst_m = 0;
  for (int p = 0; p < np; ++p) {
    double const h = 1e-5 * std::max(1.0, std::fabs(theta[p]));
    std::vector<double> tp = theta, tm = theta;
    tp[p] += h;
    tm[p] -= h;
    auto const lp = LD::unpack(tp.data()), lm = LD::unpack(tm.data());
    double fs = 0, fm = 0, scale_s = 0, scale_m = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        double const x = gridd.fine_x(ix), y = gridd.fine_y(iy);
        auto const hp = lp.hessian(x, y), hq = lm.hessian(x, y);
        double const g1 = 0.5 * ((hp.xx - hp.yy) - (hq.xx - hq.yy)), g2 = hp.xy - hq.xy;
        fs += (double(h1(iy, ix)) * g1 + double(h2(iy, ix)) * g2) / (2 * h);
        fm += double(hm(iy, ix)) * (hp.magnification() - hq.magnification()) / (2 * h);
        auto const h0 = lensd.hessian(x, y);
        scale_s += std::fabs(h0.xx) + std::fabs(h0.xy) + std::fabs(h0.yy);
        scale_m += std::fabs(h0.magnification());
      }
    worst_s = std::max(worst_s, std::fabs(hgs(p) - fs) / (std::fabs(fs) + 1));
    worst_m = std::max(worst_m, std::fabs(hgm(p) - fm) / (std::fabs(fm) + 1));
    // float: the float map VJP vs the double FD, relative to the summed map size.
    double const tols = is_float ? 1e-4 * scale_s : 1e-6 * (std::fabs(fs) + 1);
    double const tolm = is_float ? 1e-4 * scale_m : 1e-6 * (std::fabs(fm) + 1);
    CHECK_MESSAGE(std::fabs(hgs(p) - fs) <= tols, "shear_map_vjp param ", p, ": ", hgs(p), " vs ", fs);
    CHECK_MESSAGE(std::fabs(hgm(p) - fm) <= tolm, "magnification_map_vjp param ", p, ": ", hgm(p), " vs ", fm);
    double const tolt = is_float ? 1e-4 * scale_s : 1e-9 * (std::fabs(hgk(p)) + 1);
    CHECK_MESSAGE(std::fabs(hgt(p) - 2 * hgk(p)) <= tolt, "hessian_map_vjp(I) param ", p, ": ", hgt(p), " vs ",
                  2 * hgk(p));
  }
  MESSAGE("maps: worst |vjp - FD| / (|FD| + 1): shear ", worst_s, ", magnification ", worst_m);
  lensing::View1D<Scalar, Mem> short_grad("short", 3);
  CHECK_THROWS_AS(lensing::shear_map_vjp(space, lens, grid, w1, w2, short_grad, work), std::invalid_argument);
  CHECK_THROWS_AS(lensing::magnification_map_vjp(space, lens, grid, wm, short_grad, work), std::invalid_argument);
  lensing::View2D<Scalar, Mem> small("small", 2, 2);
  CHECK_THROWS_AS(lensing::magnification_map_vjp(space, lens, grid, small, gm, work), std::invalid_argument);
  CHECK_THROWS_AS(lensing::shear_map_vjp(space, lens, grid, w1, small, gs, work), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("population shear and magnification VJPs match finite differences", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  using Member = lensing::TNFW<Scalar>;
  using Pop = lensing::Population<Member, Mem>;
  bool const is_float = std::is_same<Scalar, float>::value;
  constexpr int nm = 2, np = Member::num_params;
  // Macro SIE plus two truncated NFW subhaloes.
  std::vector<double> const macro = {0.45, 0.1, -0.05, 0.02, -0.01};
  std::vector<double> const subs = {0.5, 0.05, 1.0, 0.6, -0.5, 0.35, 0.075, 0.7, -0.9, 0.45};
  std::vector<Scalar> ms(macro.begin(), macro.end()), ss(subs.begin(), subs.end());
  Space space;
  auto const sie = lensing::SIE<Scalar>::unpack(ms.data());
  auto const pop = Pop::from_params(space, ss);
  lensing::LensSum<lensing::SIE<Scalar>, Pop> const lens{sie, pop};
  PixelGrid<Scalar> const grid(9, 8, Scalar(0.35), 1, Scalar(0.013), Scalar(0.021));
  PixelGrid<double> const gridd(9, 8, 0.35, 1, 0.013, 0.021);
  int const ny = grid.fine_ny(), nx = grid.fine_nx();
  // Host double Hessian of the whole lens for FD.
  auto hessian_d = [&](std::vector<double> const& mac, std::vector<double> const& sub, double x, double y) {
    Hessian<double> h = lensing::SIE<double>::unpack(mac.data()).hessian(x, y);
    for (int m = 0; m < nm; ++m)
      h += lensing::TNFW<double>::unpack(sub.data() + m * np).hessian(x, y);
    return h;
  };
  lensing::View2D<Scalar, Mem> w1("w1", ny, nx), w2("w2", ny, nx), wm("wm", ny, nx), hxx("hxx", ny, nx),
      hxy("hxy", ny, nx), hyy("hyy", ny, nx);
  auto h1 = Kokkos::create_mirror_view(w1), h2 = Kokkos::create_mirror_view(w2), hm = Kokkos::create_mirror_view(wm);
  double min_det = 1e300;
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      h1(iy, ix) = Scalar(std::sin(0.7 * ix + 0.3 * iy));
      h2(iy, ix) = Scalar(std::cos(0.4 * ix - 0.9 * iy));
      hm(iy, ix) = Scalar(0.5 + 0.1 * ((ix * 7 + iy * 3) % 5));
      min_det =
          std::min(min_det, std::fabs(1 / hessian_d(macro, subs, gridd.fine_x(ix), gridd.fine_y(iy)).magnification()));
    }
  REQUIRE(min_det >= 0.05);
  Kokkos::deep_copy(w1, h1);
  Kokkos::deep_copy(w2, h2);
  Kokkos::deep_copy(wm, hm);
  Kokkos::View<Scalar**, Kokkos::LayoutRight, Mem> gs("gs", nm, np), gm("gm", nm, np);
  lensing::View1D<Scalar, Mem> gmac("gmac", lensing::SIE<Scalar>::num_params);
  lensing::MapVjpWorkspace<Scalar, Mem> work(grid, lensing::SIE<Scalar>::num_params);
  lensing::population_shear_map_vjp(space, pop, grid, w1, w2, gs);
  lensing::magnification_cotangent_map(space, lens, grid, wm, hxx, hxy, hyy);
  lensing::population_hessian_map_vjp(space, pop, grid, hxx, hxy, hyy, gm);
  lensing::hessian_map_vjp(space, sie, grid, hxx, hxy, hyy, gmac, work);
  auto hgs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gs);
  auto hgm = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gm);
  auto hgmac = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gmac);
  // FD over every parameter: macro first (shear: the macro is not in the
  // population's gradient, so only magnification), then members.
  int const nmac = static_cast<int>(macro.size());
  double worst = 0;
  for (int p = 0; p < nmac + nm * np; ++p) {
    std::vector<double> mp = macro, mq = macro, sp = subs, sq = subs;
    bool const is_macro = p < nmac;
    double& vp = is_macro ? mp[p] : sp[p - nmac];
    double& vq = is_macro ? mq[p] : sq[p - nmac];
    double const h = 1e-5 * std::max(1.0, std::fabs(vp));
    vp += h;
    vq -= h;
    double fs = 0, fm = 0, scale_s = 0, scale_m = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        double const x = gridd.fine_x(ix), y = gridd.fine_y(iy);
        auto const hp = hessian_d(mp, sp, x, y), hq = hessian_d(mq, sq, x, y), h0 = hessian_d(macro, subs, x, y);
        double const g1 = 0.5 * ((hp.xx - hp.yy) - (hq.xx - hq.yy)), g2 = hp.xy - hq.xy;
        fs += (double(h1(iy, ix)) * g1 + double(h2(iy, ix)) * g2) / (2 * h);
        fm += double(hm(iy, ix)) * (hp.magnification() - hq.magnification()) / (2 * h);
        scale_s += std::fabs(h0.xx) + std::fabs(h0.xy) + std::fabs(h0.yy);
        scale_m += std::fabs(h0.magnification());
      }
    double const tols = is_float ? 1e-4 * scale_s : 1e-6 * (std::fabs(fs) + 1);
    double const tolm = is_float ? 1e-4 * scale_m : 1e-6 * (std::fabs(fm) + 1);
    double const ours_m = is_macro ? double(hgmac(p)) : double(hgm((p - nmac) / np, (p - nmac) % np));
    worst = std::max(worst, std::fabs(ours_m - fm) / (std::fabs(fm) + 1));
    CHECK_MESSAGE(std::fabs(ours_m - fm) <= tolm, "magnification (LensSum) param ", p, ": ", ours_m, " vs ", fm);
    if (!is_macro) {
      double const ours_s = hgs((p - nmac) / np, (p - nmac) % np);
      worst = std::max(worst, std::fabs(ours_s - fs) / (std::fabs(fs) + 1));
      CHECK_MESSAGE(std::fabs(ours_s - fs) <= tols, "population_shear_map_vjp param ", p, ": ", ours_s, " vs ", fs);
    }
  }
  MESSAGE("population: worst |vjp - FD| / (|FD| + 1) = ", worst);
  Kokkos::View<Scalar**, Kokkos::LayoutRight, Mem> bad("bad", nm + 1, np);
  CHECK_THROWS_AS(lensing::population_shear_map_vjp(space, pop, grid, w1, w2, bad), std::invalid_argument);
}
