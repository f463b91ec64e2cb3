#ifndef LENSING_TEST_PROFILE_CHECKS_HPP
#define LENSING_TEST_PROFILE_CHECKS_HPP

// One generic checker used by every mass profile's test:
//  - check_reference: values against lenstronomy (tests/data) on a backend;
//  - check_identities: alpha = grad psi, H = grad alpha (central differences),
//    kappa = tr(H)/2 and convergence() (double, host);
//  - check_vjps: every parameter VJP (deflection, potential, convergence),
//    computed in a kernel on the backend, against central finite differences
//    (double), or against the double VJP (float);
//  - check_finite: every quantity and VJP finite at given (edge) points.
// Profile is a template of the scalar (e.g. lensing::SIE).

#include <lensing/profiles/mass_profile.hpp>

#include <lensing_test.hpp>
#include <reference.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace lensing {
namespace test {

/// Everything a profile computes at a list of points, copied to the host.
struct ProfileValues {
  std::vector<double> ax, ay, psi, kappa, hxx, hxy, hyy;
};

template <class Space, class P>
ProfileValues evaluate_profile(P const& p, std::vector<double> const& xs, std::vector<double> const& ys) {
  using Scalar = typename P::scalar_type;
  int const n = static_cast<int>(xs.size());
  Kokkos::View<Scalar* [9], Kokkos::HostSpace> in("in", n);
  for (int i = 0; i < n; ++i) {
    in(i, 0) = Scalar(xs[i]);
    in(i, 1) = Scalar(ys[i]);
  }
  auto d = Kokkos::create_mirror_view_and_copy(typename Space::memory_space(), in);
  Kokkos::parallel_for(
      "lensing::test::evaluate_profile", Kokkos::RangePolicy<Space>(Space(), 0, n), KOKKOS_LAMBDA(int i) {
        Scalar const x = d(i, 0), y = d(i, 1);
        Vec2<Scalar> const a = p.deflection(x, y);
        Hessian<Scalar> const h = p.hessian(x, y);
        d(i, 2) = a.x;
        d(i, 3) = a.y;
        d(i, 4) = p.potential(x, y);
        d(i, 5) = p.convergence(x, y);
        d(i, 6) = h.xx;
        d(i, 7) = h.xy;
        d(i, 8) = h.yy;
      });
  Space().fence();
  Kokkos::deep_copy(in, d);
  ProfileValues v;
  for (int i = 0; i < n; ++i) {
    v.ax.push_back(in(i, 2));
    v.ay.push_back(in(i, 3));
    v.psi.push_back(in(i, 4));
    v.kappa.push_back(in(i, 5));
    v.hxx.push_back(in(i, 6));
    v.hxy.push_back(in(i, 7));
    v.hyy.push_back(in(i, 8));
  }
  return v;
}

/// VJPs at each point for upstream (gx, gy) on the deflection, gp on the
/// potential and gk on the convergence, computed on Space; [i][3*k + j] holds
/// the gradient of parameter k for j = deflection, potential, convergence.
template <class Space, class P>
std::vector<std::vector<double>> profile_vjps(P const& p, std::vector<double> const& xs, std::vector<double> const& ys,
                                              double gx, double gy, double gp, double gk) {
  using Scalar = typename P::scalar_type;
  constexpr int np = P::num_params;
  int const n = static_cast<int>(xs.size());
  Kokkos::View<Scalar**, Kokkos::HostSpace> in("in", n, 2 + 3 * np);
  for (int i = 0; i < n; ++i) {
    in(i, 0) = Scalar(xs[i]);
    in(i, 1) = Scalar(ys[i]);
  }
  auto d = Kokkos::create_mirror_view_and_copy(typename Space::memory_space(), in);
  Scalar const sgx = Scalar(gx), sgy = Scalar(gy), sgp = Scalar(gp), sgk = Scalar(gk);
  Kokkos::parallel_for(
      "lensing::test::profile_vjps", Kokkos::RangePolicy<Space>(Space(), 0, n), KOKKOS_LAMBDA(int i) {
        Scalar ga[np], gpot[np], gkap[np];
        for (int k = 0; k < np; ++k)
          ga[k] = gpot[k] = gkap[k] = Scalar(0);
        Scalar const x = d(i, 0), y = d(i, 1);
        p.deflection_vjp(x, y, Vec2<Scalar>{sgx, sgy}, ga);
        p.potential_vjp(x, y, sgp, gpot);
        p.convergence_vjp(x, y, sgk, gkap);
        for (int k = 0; k < np; ++k) {
          d(i, 2 + 3 * k) = ga[k];
          d(i, 3 + 3 * k) = gpot[k];
          d(i, 4 + 3 * k) = gkap[k];
        }
      });
  Space().fence();
  Kokkos::deep_copy(in, d);
  std::vector<std::vector<double>> out(n, std::vector<double>(3 * np));
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 3 * np; ++k)
      out[i][k] = in(i, 2 + k);
  return out;
}

/// Parameter vector (pack order) of Profile from named values.
template <template <class> class Profile>
std::vector<double> params_from_names(std::map<std::string, double> const& named,
                                      std::set<std::string> const& ignored = {}) {
  using P = Profile<double>;
  std::vector<double> theta(P::num_params);
  std::set<std::string> used;
  for (int k = 0; k < P::num_params; ++k) {
    auto const it = named.find(P::param_names[k]);
    REQUIRE_MESSAGE(it != named.end(), "reference lacks parameter ", P::param_names[k]);
    theta[k] = it->second;
    used.insert(it->first);
  }
  for (auto const& [name, value] : named) {
    CHECK_MESSAGE((used.count(name) == 1 || ignored.count(name) == 1), "parameter ", name, " (", value,
                  ") of the reference is not one of the profile's");
  }
  return theta;
}

template <template <class> class Profile, class Scalar>
Profile<Scalar> make_profile(std::vector<double> const& theta) {
  std::vector<Scalar> t(theta.begin(), theta.end());
  return Profile<Scalar>::unpack(t.data());
}

/// Input-rounding sensitivity of every quantity at every point,
///   S_i = sum_j |z_j| |d f_i / d z_j|,  z = (x_i, y_i, theta...),
/// by central differences of the double profile on the host with relative
/// steps 1e-6 (z_j = 0 is exact in any precision and contributes nothing).
/// Rounding the inputs to a precision eps moves f_i by at most eps S_i / 2:
/// the condition number of f_i times |f_i| times eps.
template <template <class> class Profile>
ProfileValues input_sensitivity(std::vector<double> const& theta, std::vector<double> const& xs,
                                std::vector<double> const& ys) {
  using Host = Kokkos::DefaultHostExecutionSpace;
  double const rel = 1e-6;
  std::size_t const n = xs.size();
  ProfileValues s;
  for (auto* q : {&s.ax, &s.ay, &s.psi, &s.kappa, &s.hxx, &s.hxy, &s.hyy})
    q->assign(n, 0.0);
  auto accumulate = [&](ProfileValues const& a, ProfileValues const& b, std::size_t i0, std::size_t i1) {
    auto add = [&](std::vector<double>& out, std::vector<double> const& pa, std::vector<double> const& pb) {
      for (std::size_t i = i0; i < i1; ++i)
        out[i] += std::fabs(pa[i - i0] - pb[i - i0]) / (2 * rel);
    };
    add(s.ax, a.ax, b.ax);
    add(s.ay, a.ay, b.ay);
    add(s.psi, a.psi, b.psi);
    add(s.kappa, a.kappa, b.kappa);
    add(s.hxx, a.hxx, b.hxx);
    add(s.hxy, a.hxy, b.hxy);
    add(s.hyy, a.hyy, b.hyy);
  };
  // Parameters: one perturbation of all points at a time.
  for (std::size_t j = 0; j < theta.size(); ++j) {
    if (theta[j] == 0) continue;
    auto tp = theta, tm = theta;
    tp[j] *= 1 + rel;
    tm[j] *= 1 - rel;
    accumulate(evaluate_profile<Host>(Profile<double>::unpack(tp.data()), xs, ys),
               evaluate_profile<Host>(Profile<double>::unpack(tm.data()), xs, ys), 0, n);
  }
  // Coordinates: every point moved at once (points are independent).
  auto const p = Profile<double>::unpack(theta.data());
  for (int axis = 0; axis < 2; ++axis) {
    auto xp = xs, xm = xs, yp = ys, ym = ys;
    for (std::size_t i = 0; i < n; ++i) {
      (axis == 0 ? xp : yp)[i] *= 1 + rel;
      (axis == 0 ? xm : ym)[i] *= 1 - rel;
    }
    accumulate(evaluate_profile<Host>(p, xp, yp), evaluate_profile<Host>(p, xm, ym), 0, n);
  }
  return s;
}

namespace detail {
// Float error model against the reference, elementwise:
//   |ours_i - ref_i| <= floor * eps_f max|ref| + margin * eps_f S_i + ref_bound_i,
// with S_i the input sensitivity (the rounding of x, y and the parameters to
// float moves f_i by eps_f S_i / 2), floor * eps_f max|ref| the rounding inside
// the evaluation at the scale of the quantity, and ref_bound_i the double
// tolerance of the reference itself.  Returns the largest ratio (<= 1 passes).
inline double worst_float(std::vector<double> const& ours, std::vector<double> const& ref,
                          std::vector<double> const& sens, double floor, double margin, double rtol_ref,
                          double atol_ref, bool ref_normwise, std::vector<double> const* extra = nullptr) {
  double const eps = std::numeric_limits<float>::epsilon();
  double scale = 0, w = 0;
  for (double r : ref)
    scale = std::max(scale, std::fabs(r));
  for (size_t i = 0; i < ref.size(); ++i) {
    double const d = std::fabs(ours[i] - ref[i]);
    double const ref_bound =
        (ref_normwise ? rtol_ref * scale : rtol_ref * std::fabs(ref[i])) + atol_ref + (extra ? (*extra)[i] : 0.0);
    double const bound = floor * eps * scale + margin * eps * sens[i] + ref_bound;
    w = std::max(w, std::isnan(d) ? 1e300 : d / bound);
  }
  return w;
}

// Largest error of ours vs ref: elementwise |d| / (atol + rtol |ref|) for
// double; normwise |d| / (rtol max|ref| + atol) for float.  <= 1 passes.
inline double worst(std::vector<double> const& ours, std::vector<double> const& ref, double rtol, double atol,
                    bool normwise, std::vector<double> const* extra = nullptr) {
  double scale = 0, w = 0;
  for (double r : ref)
    scale = std::max(scale, std::fabs(r));
  for (size_t i = 0; i < ref.size(); ++i) {
    double const d = std::fabs(ours[i] - ref[i]);
    double const bound =
        (normwise ? rtol * scale + atol : rtol * std::fabs(ref[i]) + atol) + (extra ? (*extra)[i] : 0.0);
    w = std::max(w, std::isnan(d) ? 1e300 : d / bound);
  }
  return w;
}
}  // namespace detail

/// Values of Profile on Config's backend and scalar against lenstronomy's for
/// every reference case of `model`: double elementwise within rtol (or atol
/// absolute), float normwise within float_rtol of each quantity's largest value.
/// How closely check_reference compares (see there).
struct ReferenceTolerance {
  double rtol = 1e-10;  ///< double: elementwise relative ...
  double atol = 1e-12;  ///< ... or absolute
  /// float: the error model of detail::worst_float, in units of float eps:
  /// rounding inside the evaluation, float_floor eps max|f| (a few dozen
  /// operations, each rounding at most at the scale of the result, x 2), plus
  /// float_margin x the input-rounding bound eps S_i / 2 (x 8: S_i is a
  /// first-order estimate and the evaluation's own intermediate roundings
  /// propagate through the same derivatives).
  double float_floor = 64;
  double float_margin = 4;
  /// Condition of the profile's own algorithm beyond its inputs' (e.g. a
  /// closed form of cancelling terms), as a factor on the float_floor term for
  /// a parameter vector (pack order); 1 by default.
  std::function<double(std::vector<double> const&)> float_amplification = {};
  /// Error of the reference itself beyond rtol / atol, absolute, at a point:
  /// (theta, x, y, second) with second = true for the Hessian and kappa,
  /// false for the deflection and potential.  Empty: none.
  std::function<double(std::vector<double> const&, double, double, bool)> reference_error = {};
  double hessian_rtol = 0;  ///< > 0: Hessian and kappa normwise at this (reference itself inexact)
  bool check_potential = true;
  bool check_hessian = true;           ///< false: the reference Hessian / kappa is not accurate enough to check against
  std::set<std::string> ignored = {};  ///< reference parameters the profile does not take
};

template <template <class> class Profile, class Config>
void check_reference(std::string const& model, ReferenceTolerance const& tol = {}) {
  using Scalar = typename Config::scalar;
  using Space = typename Config::execution_space;
  bool const is_float = std::is_same<Scalar, float>::value;
  double const rt = tol.rtol, at = tol.atol;
  bool const hnorm = tol.hessian_rtol > 0;
  double const hrt = hnorm ? tol.hessian_rtol : rt;
  auto const& ignored = tol.ignored;
  bool const check_potential = tol.check_potential;
  double worst_seen = 0;
  for (auto const& c : mass_cases(model)) {
    auto const theta = params_from_names<Profile>(c.params, ignored);
    auto const p = make_profile<Profile, Scalar>(theta);
    p.check();
    auto const v = evaluate_profile<Space>(p, c.x, c.y);
    std::vector<double> e1(c.x.size(), 0.0), e2(c.x.size(), 0.0);  // reference error: first, second derivatives
    if (tol.reference_error)
      for (std::size_t i = 0; i < c.x.size(); ++i) {
        e1[i] = tol.reference_error(theta, c.x[i], c.y[i], false);
        e2[i] = tol.reference_error(theta, c.x[i], c.y[i], true);
      }
    std::map<std::string, double> errs;
    if (!is_float) {
      errs = {{"alpha_x", detail::worst(v.ax, c.alpha_x, rt, at, false, &e1)},
              {"alpha_y", detail::worst(v.ay, c.alpha_y, rt, at, false, &e1)},
              {"f_xx", detail::worst(v.hxx, c.f_xx, hrt, at, hnorm, &e2)},
              {"f_xy", detail::worst(v.hxy, c.f_xy, hrt, at, hnorm, &e2)},
              {"f_yy", detail::worst(v.hyy, c.f_yy, hrt, at, hnorm, &e2)},
              {"kappa", detail::worst(v.kappa, c.kappa, hrt, at, hnorm, &e2)}};
      if (c.has_potential && check_potential) errs["potential"] = detail::worst(v.psi, c.potential, rt, at, false, &e1);
    } else {
      auto const sens = input_sensitivity<Profile>(theta, c.x, c.y);
      double const fl = tol.float_floor * (tol.float_amplification ? tol.float_amplification(theta) : 1.0);
      double const mg = tol.float_margin;
      errs = {{"alpha_x", detail::worst_float(v.ax, c.alpha_x, sens.ax, fl, mg, rt, at, false, &e1)},
              {"alpha_y", detail::worst_float(v.ay, c.alpha_y, sens.ay, fl, mg, rt, at, false, &e1)},
              {"f_xx", detail::worst_float(v.hxx, c.f_xx, sens.hxx, fl, mg, hrt, at, hnorm, &e2)},
              {"f_xy", detail::worst_float(v.hxy, c.f_xy, sens.hxy, fl, mg, hrt, at, hnorm, &e2)},
              {"f_yy", detail::worst_float(v.hyy, c.f_yy, sens.hyy, fl, mg, hrt, at, hnorm, &e2)},
              {"kappa", detail::worst_float(v.kappa, c.kappa, sens.kappa, fl, mg, hrt, at, hnorm, &e2)}};
      if (c.has_potential && check_potential)
        errs["potential"] = detail::worst_float(v.psi, c.potential, sens.psi, fl, mg, rt, at, false, &e1);
    }
    if (!tol.check_hessian)
      for (char const* q : {"f_xx", "f_xy", "f_yy", "kappa"})
        errs.erase(q);
    for (auto const& [q, e] : errs) {
      worst_seen = std::max(worst_seen, e);
      CHECK_MESSAGE(e <= 1.0, model, " ", q, ": error ", e, " x the tolerance");
    }
  }
  MESSAGE(model << std::string(is_float ? " float" : " double") << ": worst error / tolerance " << worst_seen);
}

/// Error of lenstronomy's round NFW at (x, y), absolute (Rs, alpha_Rs, centre).
/// Near X = r / Rs = 1 its F(X) = (1 - 2 atanh|atan(sqrt|(1-X)/(1+X)|) /
/// sqrt|X^2 - 1|) / (X^2 - 1) divides a difference of O(1) terms, whose
/// rounding is ~eps / |X - 1| (sqrt|X^2 - 1| from X^2 - 1), by X^2 - 1 ~ 2 (X - 1):
/// |dF| ~ eps / (X - 1)^2 / 8.  The Hessian and kappa are 2 rho0 Rs (...F...)
/// with 2 rho0 Rs = alpha_Rs / (2 Rs (1 + ln 1/2)) = 1.63 alpha_Rs / Rs; the
/// deflection and potential use g(X) = ln(X/2) + acos(1/X)/sqrt(X^2 - 1) (or
/// acosh), rounding ~eps / |X - 1|, times alpha_Rs (times Rs for psi, which
/// is at most a factor 5 on the reference points).  Bound: 8 x these.
inline double nfw_reference_error(double Rs, double alpha_Rs, double cx, double cy, double x, double y, bool second) {
  double const eps = std::numeric_limits<double>::epsilon();
  double const t = std::max(std::fabs(std::hypot(x - cx, y - cy) / Rs - 1), 1e-8);
  return second ? 8 * 1.63 * alpha_Rs / Rs * eps / (8 * t * t) : 8 * alpha_Rs * std::max(Rs, 1.0) * eps / t;
}

/// Deterministic test points around (cx, cy): a spiral from r = 0.02 to 4.
inline void spiral_points(double cx, double cy, int n, std::vector<double>& xs, std::vector<double>& ys) {
  for (int i = 0; i < n; ++i) {
    double const r = 0.02 * std::pow(200.0, double(i) / (n - 1)), t = 2.39996 * i;
    xs.push_back(cx + r * std::cos(t));
    ys.push_back(cy + r * std::sin(t));
  }
}

/// alpha = grad psi and H = grad alpha by central differences (step h),
/// kappa = tr(H)/2 = convergence(), on the host in double.
template <template <class> class Profile>
void check_identities(std::vector<double> const& theta, std::vector<double> const& xs, std::vector<double> const& ys,
                      double fd_rtol = 1e-7, double h = 1e-5, bool has_potential = true) {
  auto const p = make_profile<Profile, double>(theta);
  for (size_t i = 0; i < xs.size(); ++i) {
    double const x = xs[i], y = ys[i];
    auto const a = p.deflection(x, y);
    auto const H = p.hessian(x, y);
    double const scale_a = std::fabs(a.x) + std::fabs(a.y) + 1e-3;
    if (has_potential) {
      double const dpx = (p.potential(x + h, y) - p.potential(x - h, y)) / (2 * h);
      double const dpy = (p.potential(x, y + h) - p.potential(x, y - h)) / (2 * h);
      CHECK_MESSAGE(std::fabs(dpx - a.x) <= fd_rtol * scale_a, "alpha_x != dpsi/dx at (", x, ", ", y, "): ", a.x,
                    " vs ", dpx);
      CHECK_MESSAGE(std::fabs(dpy - a.y) <= fd_rtol * scale_a, "alpha_y != dpsi/dy at (", x, ", ", y, "): ", a.y,
                    " vs ", dpy);
    }
    auto const axp = p.deflection(x + h, y), axm = p.deflection(x - h, y);
    auto const ayp = p.deflection(x, y + h), aym = p.deflection(x, y - h);
    double const scale_h = std::fabs(H.xx) + std::fabs(H.xy) + std::fabs(H.yy) + 1e-3;
    CHECK_MESSAGE(std::fabs((axp.x - axm.x) / (2 * h) - H.xx) <= fd_rtol * scale_h, "f_xx at (", x, ", ", y, ")");
    CHECK_MESSAGE(std::fabs((ayp.y - aym.y) / (2 * h) - H.yy) <= fd_rtol * scale_h, "f_yy at (", x, ", ", y, ")");
    CHECK_MESSAGE(std::fabs((ayp.x - aym.x) / (2 * h) - H.xy) <= fd_rtol * scale_h, "f_xy (dalpha_x/dy) at (", x, ", ",
                  y, ")");
    CHECK_MESSAGE(std::fabs((axp.y - axm.y) / (2 * h) - H.xy) <= fd_rtol * scale_h, "f_xy (dalpha_y/dx) at (", x, ", ",
                  y, ")");
    CHECK_MESSAGE(std::fabs(H.convergence() - p.convergence(x, y)) <= 1e-12 * scale_h, "kappa != tr(H)/2 at (", x, ", ",
                  y, ")");
  }
}

/// Every parameter VJP on Config's backend against central differences of
/// g . alpha, g psi and g kappa (double), or against the double VJP (float).
template <template <class> class Profile, class Config>
void check_vjps(std::vector<double> const& theta, std::vector<double> const& xs, std::vector<double> const& ys,
                double fd_rtol = 1e-6, double h = 1e-6, bool has_potential = true) {
  using Scalar = typename Config::scalar;
  using Space = typename Config::execution_space;
  using PD = Profile<double>;
  constexpr int np = PD::num_params;
  double const gx = 0.7, gy = -1.3, gp = 0.9, gk = 1.1;
  auto const ours = profile_vjps<Space>(make_profile<Profile, Scalar>(theta), xs, ys, gx, gy, gp, gk);
  bool const is_float = std::is_same<Scalar, float>::value;
  auto const exact =
      profile_vjps<Kokkos::DefaultHostExecutionSpace>(make_profile<Profile, double>(theta), xs, ys, gx, gy, gp, gk);
  for (size_t i = 0; i < xs.size(); ++i) {
    double const x = xs[i], y = ys[i];
    for (int k = 0; k < np; ++k) {
      double fd[3], noise[3] = {0, 0, 0};
      if (is_float) {
        for (int j = 0; j < 3; ++j)
          fd[j] = exact[i][3 * k + j];
      } else {
        std::vector<double> tp = theta, tm = theta;
        double const step = h * std::max(1.0, std::fabs(theta[k]));
        tp[k] += step;
        tm[k] -= step;
        auto const pp = make_profile<Profile, double>(tp), pm = make_profile<Profile, double>(tm);
        auto const ap = pp.deflection(x, y), am = pm.deflection(x, y);
        fd[0] = (gx * (ap.x - am.x) + gy * (ap.y - am.y)) / (2 * step);
        fd[1] = gp * (pp.potential(x, y) - pm.potential(x, y)) / (2 * step);
        fd[2] = gk * (pp.convergence(x, y) - pm.convergence(x, y)) / (2 * step);
        // Rounding noise of the difference quotient: a few ulp of the values / step.
        double const ulp = 8 * std::numeric_limits<double>::epsilon() / (2 * step);
        noise[0] = ulp * (std::fabs(gx) * (std::fabs(ap.x) + std::fabs(am.x)) +
                          std::fabs(gy) * (std::fabs(ap.y) + std::fabs(am.y)));
        noise[1] = ulp * std::fabs(gp) * (std::fabs(pp.potential(x, y)) + std::fabs(pm.potential(x, y)));
        noise[2] = ulp * std::fabs(gk) * (std::fabs(pp.convergence(x, y)) + std::fabs(pm.convergence(x, y)));
      }
      std::string const what[3] = {"deflection", "potential", "convergence"};
      for (int j = 0; j < 3; ++j) {
        if (j == 1 && !has_potential) continue;
        // float: normwise over the points, relative to this gradient's largest value.
        double scale = 0;
        if (is_float)
          for (auto const& e : exact)
            scale = std::max(scale, std::fabs(e[3 * k + j]));
        double const tol = is_float ? 1e-4 * (scale + 1e-6) : fd_rtol * (std::fabs(fd[j]) + 1e-3) + noise[j];
        CHECK_MESSAGE(std::fabs(ours[i][3 * k + j] - fd[j]) <= tol, what[j], "_vjp d/d",
                      std::string(PD::param_names[k]), " at (", x, ", ", y, "): ", ours[i][3 * k + j], " vs ", fd[j]);
      }
    }
  }
}

/// Every quantity and VJP is finite at the given points on Config's backend.
template <template <class> class Profile, class Config>
void check_finite(std::vector<double> const& theta, std::vector<double> const& xs, std::vector<double> const& ys) {
  using Scalar = typename Config::scalar;
  using Space = typename Config::execution_space;
  auto const p = make_profile<Profile, Scalar>(theta);
  auto const v = evaluate_profile<Space>(p, xs, ys);
  auto const g = profile_vjps<Space>(p, xs, ys, 0.3, -0.8, 1.0, 1.0);
  for (size_t i = 0; i < xs.size(); ++i) {
    bool ok = std::isfinite(v.ax[i]) && std::isfinite(v.ay[i]) && std::isfinite(v.psi[i]) &&
              std::isfinite(v.kappa[i]) && std::isfinite(v.hxx[i]) && std::isfinite(v.hxy[i]) &&
              std::isfinite(v.hyy[i]);
    for (double gi : g[i])
      ok = ok && std::isfinite(gi);
    CHECK_MESSAGE(ok, "non-finite value or gradient at (", xs[i], ", ", ys[i], ")");
  }
}

/// Pack and unpack are inverse and follow param_names.
template <template <class> class Profile>
void check_packing(std::vector<double> const& theta) {
  using P = Profile<double>;
  static_assert(check_mass_profile<P>(), "");
  static_assert(check_mass_profile<Profile<float>>(), "");
  auto const p = P::unpack(theta.data());
  std::vector<double> back(P::num_params);
  p.pack(back.data());
  CHECK(back == theta);
  CHECK(sizeof(P::param_names) / sizeof(P::param_names[0]) == size_t(P::num_params));
}

}  // namespace test
}  // namespace lensing

#endif
