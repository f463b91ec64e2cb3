#include <lensing/sources/composite_light.hpp>
#include <lensing/sources/gaussian.hpp>
#include <lensing/sources/hernquist_light.hpp>
#include <lensing/sources/sersic.hpp>
#include <lensing/sources/shapelets.hpp>

#include "light_checks.hpp"

#include <reference.hpp>

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

static_assert(lensing::is_light_profile_v<lensing::Sersic<double>>);
static_assert(lensing::is_light_profile_v<lensing::SersicEllipse<float>>);
static_assert(lensing::is_light_profile_v<lensing::Gaussian<double>>);
static_assert(lensing::is_light_profile_v<lensing::GaussianEllipse<double>>);
static_assert(lensing::is_light_profile_v<lensing::HernquistLight<double>>);
static_assert(lensing::is_light_profile_v<lensing::Shapelets<double, 5>>);
static_assert(lensing::is_light_profile_v<lensing::NoLight<double>>);
static_assert(lensing::is_light_profile_v<
              lensing::CompositeLight<lensing::SersicEllipse<double>, lensing::Shapelets<double, 2>>>);
static_assert(!lensing::is_light_profile_v<int>);

struct LightCase {
  std::string model;
  nlohmann::json params;
  std::vector<double> x, y, sb;
};

std::vector<LightCase> light_cases(std::string const& model) {
  std::vector<LightCase> out;
  for (auto const& m : lensing::test::reference_json().at("light")) {
    if (m.at("model").get<std::string>() != model) continue;
    out.push_back({model, m.at("params"), m.at("x").get<std::vector<double>>(), m.at("y").get<std::vector<double>>(),
                   m.at("surface_brightness").get<std::vector<double>>()});
  }
  REQUIRE(!out.empty());
  return out;
}

template <class Scalar>
struct Make {
  static Scalar p(LightCase const& c, char const* k) { return Scalar(c.params.at(k).get<double>()); }
  static lensing::Sersic<Scalar> sersic(LightCase const& c) {
    return {p(c, "amp"), p(c, "R_sersic"), p(c, "n_sersic"), p(c, "center_x"), p(c, "center_y")};
  }
  static lensing::SersicEllipse<Scalar> sersic_ellipse(LightCase const& c) {
    return {p(c, "amp"), p(c, "R_sersic"), p(c, "n_sersic"), p(c, "e1"),
            p(c, "e2"),  p(c, "center_x"), p(c, "center_y")};
  }
  static lensing::Gaussian<Scalar> gaussian(LightCase const& c) {
    return {p(c, "amp"), p(c, "sigma"), p(c, "center_x"), p(c, "center_y")};
  }
  static lensing::GaussianEllipse<Scalar> gaussian_ellipse(LightCase const& c) {
    return {p(c, "amp"), p(c, "sigma"), p(c, "e1"), p(c, "e2"), p(c, "center_x"), p(c, "center_y")};
  }
  static lensing::HernquistLight<Scalar> hernquist(LightCase const& c) {
    return {p(c, "amp"), p(c, "Rs"), p(c, "center_x"), p(c, "center_y")};
  }
  static lensing::Shapelets<Scalar, 3> shapelets(LightCase const& c) {
    REQUIRE(c.params.at("n_max").get<int>() == 3);
    lensing::Shapelets<Scalar, 3> s{};
    auto const a = c.params.at("amp").get<std::vector<double>>();
    REQUIRE(a.size() == 10);
    for (int k = 0; k < 10; ++k)
      s.amp[k] = Scalar(a[k]);
    s.beta = p(c, "beta");
    s.center_x = p(c, "center_x");
    s.center_y = p(c, "center_y");
    return s;
  }
};

// Relative error against the reference, with an absolute floor of
// atol_frac * max |I| (float cannot resolve the far tail of a Gaussian
// relative to itself when the exponent is large).
template <class Space, class MakeFn>
void compare_reference(std::string const& model, MakeFn make, double rtol, double atol_frac,
                       double (*reference_error)(LightCase const&) = nullptr) {
  for (auto const& c : light_cases(model)) {
    double const ref_err = reference_error ? reference_error(c) : 0.0;
    auto const p = make(c);
    p.check();
    auto const got = lensing::test::light_on_space<Space>(p, c.x, c.y);
    double peak = 0;
    for (double v : c.sb)
      peak = std::max(peak, std::fabs(v));
    int bad = 0;
    for (std::size_t i = 0; i < c.sb.size(); ++i)
      if (!(std::fabs(got[i] - c.sb[i]) <= rtol * std::fabs(c.sb[i]) + atol_frac * peak + ref_err)) {
        ++bad;
        MESSAGE(model << " point " << i << ": got " << got[i] << ", lenstronomy " << c.sb[i]);
      }
    CHECK(bad == 0);
  }
}

// lenstronomy's shapelets (stable_cut) set phi_n(t) to 0 for t = (x - cx)/beta
// >= 5 sqrt(n + 2) (one-sided); there |phi_n(t)| <= pi^(-1/4) e^(-25)
// (attained at n = 0; 4.8e-16 for n = 1, smaller beyond), and the other
// factor |phi_m| <= pi^(-1/4) (Cramer's bound).  So each term differs from
// ours by at most |amp_k| pi^(-1/2) e^(-25): a bound of 1.01 x the sum.
double shapelet_cut_error(LightCase const& c) {
  double s = 0;
  for (double a : c.params.at("amp").get<std::vector<double>>())
    s += std::fabs(a);
  return 1.01 * s * std::exp(-25.0) / std::sqrt(3.141592653589793);
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("light profiles match lenstronomy", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  bool const dbl = std::is_same<Scalar, double>::value;
  // double: 1e-10 relative (lenstronomy's Hernquist is itself good to ~4e-12
  // near X = 1); float: the exponent b_n (R/R_s)^(1/n) ~ 20 amplifies the
  // rounding of its argument, so ~20 eps relative.
  double const rtol = dbl ? 1e-10 : 3e-5;
  double const atol = dbl ? 0 : 1e-6;
  using M = Make<Scalar>;
  compare_reference<Space>("SERSIC", M::sersic, rtol, atol);
  compare_reference<Space>("SERSIC_ELLIPSE", M::sersic_ellipse, rtol, atol);
  compare_reference<Space>("GAUSSIAN", M::gaussian, rtol, atol);
  compare_reference<Space>("GAUSSIAN_ELLIPSE", M::gaussian_ellipse, rtol, atol);
  compare_reference<Space>("HERNQUIST", M::hernquist, rtol, atol);
  compare_reference<Space>("SHAPELETS", M::shapelets, rtol, atol, shapelet_cut_error);
}

LENSING_TEST_CASE_TEMPLATE("light profile VJPs match finite differences", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using M = Make<double>;
  // Points away from the centre and on / near it; the VJP of every reference
  // parameter draw.
  std::vector<std::pair<double, double>> const pts = {{0.31, -0.22}, {-0.7, 0.45}, {1.2, 0.9}, {0.05, 0.02}};
  double const rtol = 2e-7;
  int bad = 0;
  auto run = [&](std::string const& model, auto make) {
    for (auto const& c : light_cases(model)) {
      auto const p = make(c);
      for (auto const& [x, y] : pts)
        bad += lensing::test::light_vjp_failures<Space>(p, p, x, y, 0.8, rtol);
    }
  };
  run("SERSIC", M::sersic);
  run("SERSIC_ELLIPSE", M::sersic_ellipse);
  run("GAUSSIAN", M::gaussian);
  run("GAUSSIAN_ELLIPSE", M::gaussian_ellipse);
  run("HERNQUIST", M::hernquist);
  run("SHAPELETS", M::shapelets);
  // Hernquist around X = 1 (series branch) and a high-order shapelet set.
  lensing::HernquistLight<double> const h{2.0, 0.5, 0.1, -0.1};
  bad += lensing::test::light_vjp_failures<Space>(h, h, 0.1 + 0.5 * 0.8, -0.1 + 0.5 * 0.6 * 1.0001, 1.0, rtol);
  lensing::Shapelets<double, 6> s6{};
  for (int k = 0; k < s6.num_coefficients; ++k)
    s6.amp[k] = std::sin(1.3 * k + 0.2);
  s6.beta = 0.3;
  s6.center_x = 0.05;
  s6.center_y = -0.1;
  bad += lensing::test::light_vjp_failures<Space>(s6, s6, 0.2, 0.1, 1.0, rtol);
  bad += lensing::test::light_vjp_failures<Space>(s6, s6, -0.4, 0.3, 1.0, rtol);
  CHECK(bad == 0);
}

LENSING_TEST_CASE_TEMPLATE("light profiles are finite at their centres", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using S = typename Config::scalar;
  lensing::Sersic<S> const s{S(2), S(0.3), S(4), S(0.1), S(0.2)};
  lensing::SersicEllipse<S> const se{S(2), S(0.3), S(6), S(0.2), S(-0.1), S(0.1), S(0.2)};
  lensing::Gaussian<S> const g{S(2), S(0.3), S(0.1), S(0.2)};
  lensing::GaussianEllipse<S> const ge{S(2), S(0.3), S(0.2), S(-0.1), S(0.1), S(0.2)};
  lensing::HernquistLight<S> const h{S(2), S(0.3), S(0.1), S(0.2)};
  lensing::Shapelets<S, 4> sh{};
  sh.amp[0] = S(1);
  sh.beta = S(0.2);
  sh.center_x = S(0.1);
  sh.center_y = S(0.2);
  for (double d : {0.0, 1e-9, 1e-6}) {
    double const x = double(S(0.1)) + d, y = double(S(0.2));
    CHECK(lensing::test::light_finite_at<Space>(s, x, y));
    CHECK(lensing::test::light_finite_at<Space>(se, x, y));
    CHECK(lensing::test::light_finite_at<Space>(g, x, y));
    CHECK(lensing::test::light_finite_at<Space>(ge, x, y));
    CHECK(lensing::test::light_finite_at<Space>(h, x, y));
    CHECK(lensing::test::light_finite_at<Space>(sh, x, y));
  }
  // Far away: underflow to 0, no NaN.
  CHECK(lensing::test::light_finite_at<Space>(s, 1e3, -2e3));
  CHECK(lensing::test::light_finite_at<Space>(ge, 1e3, -2e3));
  CHECK(lensing::test::light_finite_at<Space>(h, 1e3, -2e3));
  CHECK(lensing::test::light_finite_at<Space>(sh, 1e3, -2e3));
}

// prepared() (the pixel loops' form: frame and radial constants built once)
// against the profile itself, in kernels on Space, at points over the core
// (inside the 1e-4" floor), the body and the far tail.  Same operations on
// the same values; the two copies may differ only where the compiler
// contracts or vectorises them differently: a few ulp in R^2 and in the two
// exponents' arguments.  The relative error of I = amp exp(-b_n (t - 1)),
// t = (R/R_s)^(1/n), from a relative error d of R^2 and of t's exponent, is
// about b_n t (1/(2n) + |log t|) d + d; bound with d = 8 eps.
LENSING_TEST_CASE_TEMPLATE("prepared Sersic profiles equal the profiles", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using S = typename Config::scalar;
  double const eps = std::is_same<S, double>::value ? 0x1p-52 : 0x1p-23;
  std::vector<double> xs, ys;
  for (double r : {0.0, 3e-5, 2e-4, 0.01, 0.13, 0.5, 1.4, 3.0, 7.5})
    for (double a : {0.0, 0.9, 2.3, 4.1}) {
      xs.push_back(0.1 + r * std::cos(a));
      ys.push_back(-0.05 + r * std::sin(a));
    }
  int bad = 0;
  auto run = [&](auto const& p, double n, double Rs) {
    auto const want = lensing::test::light_on_space<Space>(p, xs, ys);
    auto const got = lensing::test::light_on_space<Space>(p.prepared(), xs, ys);
    double const bn = 1.9992 * n - 0.3271;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      double const r = std::hypot(xs[i] - 0.1, ys[i] + 0.05) / Rs * 3.0 + 1e-4;  // generous R/R_s (q >= 1/9)
      double const t = std::pow(r, 1.0 / n);
      double const tol = (bn * t * (0.5 / n + std::fabs(std::log(t))) + 1.0) * 8.0 * eps * std::fabs(want[i]);
      if (!(std::fabs(got[i] - want[i]) <= tol)) {
        ++bad;
        MESSAGE("point " << i << ": prepared " << got[i] << ", profile " << want[i]);
      }
    }
  };
  run(lensing::Sersic<S>{S(2), S(0.3), S(4), S(0.1), S(-0.05)}, double(S(4)), double(S(0.3)));
  run(lensing::Sersic<S>{S(-0.7), S(1.1), S(0.6), S(0.1), S(-0.05)}, double(S(0.6)), double(S(1.1)));
  run(lensing::SersicEllipse<S>{S(20), S(0.25), S(1.6), S(0.08), S(-0.05), S(0.1), S(-0.05)}, double(S(1.6)),
      double(S(0.25)));
  run(lensing::SersicEllipse<S>{S(8), S(0.6), S(3.2), S(-0.6), S(0.3), S(0.1), S(-0.05)}, double(S(3.2)),
      double(S(0.6)));
  run(lensing::SersicEllipse<S>{S(1), S(0.4), S(2), S(0), S(0), S(0.1), S(-0.05)}, 2.0, double(S(0.4)));
  CHECK(bad == 0);
}

LENSING_TEST_CASE_TEMPLATE("composite light sums, packs and differentiates", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using C =
      lensing::CompositeLight<lensing::SersicEllipse<double>, lensing::Gaussian<double>, lensing::Shapelets<double, 2>>;
  static_assert(C::num_params == 7 + 4 + 9);
  static_assert(C::offset<1> == 7 && C::offset<2> == 11);
  CHECK(std::string(C::param_names[7]) == "amp");
  CHECK(std::string(C::param_names[8]) == "sigma");
  CHECK(std::string(C::param_names[C::num_params - 3]) == "beta");
  std::vector<double> theta(C::num_params);
  for (int k = 0; k < C::num_params; ++k)
    theta[k] = 0.1 + 0.05 * std::sin(1.7 * k);
  theta[1] = 0.4;    // R_sersic
  theta[2] = 2.5;    // n_sersic
  theta[8] = 0.3;    // sigma
  theta[17] = 0.35;  // beta
  auto const c = C::unpack(theta.data());
  std::vector<double> back(C::num_params);
  c.pack(back.data());
  CHECK(back == theta);
  double const x = 0.23, y = -0.31;
  CHECK(c.surface_brightness(x, y) ==
        doctest::Approx(c.get<0>().surface_brightness(x, y) + c.get<1>().surface_brightness(x, y) +
                        c.get<2>().surface_brightness(x, y))
            .epsilon(1e-14));
  CHECK(lensing::test::light_vjp_failures<Space>(c, c, x, y, 1.3, 2e-7) == 0);
}

TEST_CASE("light profiles reject bad parameters") {
  CHECK_THROWS_AS((lensing::Sersic<double>{1, -0.3, 4, 0, 0}.check()), std::invalid_argument);
  CHECK_THROWS_AS((lensing::Sersic<double>{1, 0.3, 0, 0, 0}.check()), std::invalid_argument);
  CHECK_THROWS_AS((lensing::Sersic<double>{NAN, 0.3, 4, 0, 0}.check()), std::invalid_argument);
  CHECK_THROWS_AS((lensing::SersicEllipse<double>{1, 0.3, 4, 0.8, 0.7, 0, 0}.check()), std::invalid_argument);
  CHECK_THROWS_AS((lensing::Gaussian<double>{1, 0, 0, 0}.check()), std::invalid_argument);
  CHECK_THROWS_AS((lensing::GaussianEllipse<double>{1, 0.2, 0, 0, INFINITY, 0}.check()), std::invalid_argument);
  CHECK_THROWS_AS((lensing::HernquistLight<double>{1, -1, 0, 0}.check()), std::invalid_argument);
  lensing::Shapelets<double, 1> s{{1, 2, NAN}, 0.2, 0, 0};
  CHECK_THROWS_AS(s.check(), std::invalid_argument);
  try {
    lensing::Sersic<double>{1, -0.3, 4, 0, 0}.check();
  } catch (std::invalid_argument const& e) {
    CHECK(std::string(e.what()).rfind("lensing::Sersic: R_sersic", 0) == 0);
  }
}
