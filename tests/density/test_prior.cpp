// Every prior family (density/prior.hpp): the log-density integrates to 1,
// its gradient matches central differences, draws match the mean and
// variance and the analytic CDF (Kolmogorov-Smirnov), bad parameters throw,
// and no finite input gives NaN.
#include <lensing/density/parameter_table.hpp>
#include <lensing/density/prior.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {
using PD = lensing::Prior<double>;

static_assert(std::is_trivially_copyable<lensing::Prior<float>>::value, "Prior must be trivially copyable");
static_assert(std::is_trivially_copyable<lensing::Prior<double>>::value, "Prior must be trivially copyable");

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// A test prior: its analytic CDF (independent of the library) and which
// sample moments have a usable standard error (finite 4th moment for the
// mean's variance estimate, finite 8th for the variance's).
template <class Scalar>
struct Case {
  std::string name;
  lensing::Prior<Scalar> prior;
  std::function<double(double)> cdf;
  bool check_mean, check_variance;
};

template <class Scalar>
std::vector<Case<Scalar>> cases() {
  using PD = lensing::Prior<Scalar>;  // the same parameters and densities; Scalar is the draws' type
  double const pi = M_PI;
  auto const trunc = [](double mu, double s, double lo, double hi) {
    return [=](double x) {
      double const a = normal_cdf((lo - mu) / s), b = normal_cdf((hi - mu) / s);
      return (normal_cdf((x - mu) / s) - a) / (b - a);
    };
  };
  return {
      {"normal", PD::normal(0.3, 0.7), [](double x) { return normal_cdf((x - 0.3) / 0.7); }, true, true},
      {"uniform", PD::uniform(-1, 3), [](double x) { return (x + 1) / 4; }, true, true},
      {"log_uniform", PD::log_uniform(0.1, 10), [](double x) { return std::log(x / 0.1) / std::log(100.0); }, true,
       true},
      {"truncated_normal", PD::truncated_normal(0.8, 0.2, 0.2, 1.0), trunc(0.8, 0.2, 0.2, 1.0), true, true},
      {"truncated_normal tail", PD::truncated_normal(0, 1, 3, HUGE_VAL), trunc(0, 1, 3, HUGE_VAL), true, true},
      {"half_normal", PD::half_normal(2), [](double x) { return std::erf(x / (2 * std::sqrt(2.0))); }, true, true},
      {"half_cauchy", PD::half_cauchy(1.5), [=](double x) { return 2 / pi * std::atan(x / 1.5); }, false, false},
      // Student-t(3): F = 1/2 + (z / (sqrt3 (1 + z^2/3)) + atan(z / sqrt3)) / pi.
      {"student_t 3", PD::student_t(3, 1, 2),
       [=](double x) {
         double const z = (x - 1) / 2, r3 = std::sqrt(3.0);
         return 0.5 + (z / (r3 * (1 + z * z / 3)) + std::atan(z / r3)) / pi;
       },
       true, false},
      // Student-t(1) is the Cauchy (chi2_1 / 2 ~ Gamma(1/2): the boost path).
      {"student_t 1", PD::student_t(1, 0, 1), [=](double x) { return 0.5 + std::atan(x) / pi; }, false, false},
      {"student_t 10", PD::student_t(10, -2, 0.5), nullptr, true, true},
      // Gamma(3, 2): P = 1 - e^-y (1 + y + y^2/2), y = 2x (Marsaglia-Tsang, shape >= 1).
      {"gamma 3", PD::gamma(3, 2),
       [](double x) {
         double const y = 2 * x;
         return -std::expm1(-y) - std::exp(-y) * (y + y * y / 2);
       },
       true, true},
      // Gamma(1/2, 4): P = erf(sqrt(4x)) (the shape < 1 boost).
      {"gamma 0.5", PD::gamma(0.5, 4), [](double x) { return std::erf(std::sqrt(4 * x)); }, true, true},
      // Beta(2, 3): I_x = 6x^2(1-x)^2 + 4x^3(1-x) + x^4.
      {"beta 2 3", PD::beta(2, 3),
       [](double x) { return 6 * x * x * (1 - x) * (1 - x) + 4 * x * x * x * (1 - x) + x * x * x * x; }, true, true},
      // Beta(1/2, 1/2), the arcsine law: I_x = 2 asin(sqrt x) / pi.
      {"beta 0.5 0.5", PD::beta(0.5, 0.5), [=](double x) { return 2 * std::asin(std::sqrt(x)) / pi; }, true, true},
  };
}

// Integral of exp(log_density) over the support by composite 5-point
// Gauss-Legendre on `panels` panels of t in [0, 1] (no endpoint is
// evaluated), after a change of variable that removes the x^(-1/2)
// end singularities and maps infinite supports to a finite interval:
// finite [lo, hi]: x = lo + (hi - lo)(1 - cos(pi t))/2; [lo, inf):
// x = lo + u^2, u = t / (1 - t); R: x = p0 + p1 tan(pi (t - 1/2)).
double integrate(PD const& p, int panels) {
  static double const gx[5] = {-0.9061798459386640, -0.5384693101056831, 0.0, 0.5384693101056831, 0.9061798459386640};
  static double const gw[5] = {0.2369268850561891, 0.4786286704993665, 0.5688888888888889, 0.4786286704993665,
                               0.2369268850561891};
  double const pi = M_PI;
  auto integrand = [&](double t) {
    double x, jac;
    if (std::isfinite(p.lo) && std::isfinite(p.hi)) {
      x = p.lo + (p.hi - p.lo) * 0.5 * (1 - std::cos(pi * t));
      jac = (p.hi - p.lo) * 0.5 * pi * std::sin(pi * t);
    } else if (std::isfinite(p.lo)) {
      double const u = t / (1 - t);
      x = p.lo + u * u;
      jac = 2 * u / ((1 - t) * (1 - t));
    } else {
      x = p.p0 + p.p1 * std::tan(pi * (t - 0.5));
      double const c = std::cos(pi * (t - 0.5));
      jac = p.p1 * pi / (c * c);
    }
    double const lp = p.log_density(x);
    return std::isfinite(lp) ? std::exp(lp) * jac : 0.0;
  };
  double s = 0, h = 1.0 / panels;
  for (int i = 0; i < panels; ++i)
    for (int k = 0; k < 5; ++k)
      s += 0.5 * h * gw[k] * integrand((i + 0.5) * h + 0.5 * h * gx[k]);
  return s;
}
}  // namespace

TEST_CASE("every prior family's log-density integrates to 1") {
  for (auto const& c : cases<double>()) {
    // Error model: the difference between 2000 and 4000 panels bounds the
    // error of the finer sum (the rule converges at least linearly in the
    // panel width for these integrands, usually far faster), plus the
    // rounding of 20000 terms (~1e-12).
    double const coarse = integrate(c.prior, 2000), fine = integrate(c.prior, 4000);
    double const err = std::fabs(fine - coarse);
    INFO(c.name << ": integral " << fine << ", quadrature error " << err);
    CHECK(err < 1e-6);  // the quadrature resolves the density
    CHECK(std::fabs(fine - 1) <= err + 1e-12);
  }
  // Known values (closed forms).
  CHECK(PD::normal(0.3, 0.7).log_density(1.0) ==
        doctest::Approx(-0.5 * 1.0 - std::log(0.7) - 0.5 * std::log(2 * M_PI)).epsilon(1e-14));
  CHECK(PD::log_uniform(0.1, 10).log_density(2.0) == doctest::Approx(-std::log(2.0 * std::log(100.0))).epsilon(1e-14));
  CHECK(std::exp(PD::student_t(3, 8, 10).log_density(8)) ==
        doctest::Approx(1.0 / (std::tgamma(1.5) * std::sqrt(3 * M_PI) * 10)).epsilon(1e-12));
  CHECK(std::exp(PD::gamma(2, 3).log_density(0.5)) == doctest::Approx(9 * 0.5 * std::exp(-1.5)).epsilon(1e-13));
  CHECK(std::exp(PD::beta(2, 3).log_density(0.25)) == doctest::Approx(12 * 0.25 * 0.75 * 0.75).epsilon(1e-13));
  CHECK(std::exp(PD::half_cauchy(2).log_density(2)) == doctest::Approx(1 / (2 * M_PI)).epsilon(1e-14));
  CHECK(std::exp(PD::half_normal(2).log_density(0)) == doctest::Approx(1 / (2 * std::sqrt(M_PI / 2))).epsilon(1e-14));
  CHECK(PD::fixed(2).log_density(2) == 0);
  // -inf outside the support, 0 gradient there.
  double const ninf = -HUGE_VAL;
  CHECK(PD::uniform(-1, 3).log_density(3.5) == ninf);
  CHECK(PD::truncated_normal(0, 1, 4, 9).log_density(3.9) == ninf);
  CHECK(PD::half_normal(1).log_density(-0.1) == ninf);
  CHECK(PD::half_cauchy(1).log_density(-0.1) == ninf);
  CHECK(PD::gamma(2, 1).log_density(0) == ninf);
  CHECK(PD::beta(2, 2).log_density(1) == ninf);
  CHECK(PD::beta(2, 2).log_density(0) == ninf);
  CHECK(PD::fixed(2).log_density(2.5) == ninf);
  CHECK(PD::beta(2, 2).gradient(1.5) == 0);
  CHECK(PD::gamma(2, 1).gradient(-1) == 0);
  CHECK(PD::half_cauchy(1).gradient(-1) == 0);
  CHECK(PD::log_uniform(1, 2).gradient(3) == 0);
}

TEST_CASE("priors: no NaN from finite input, bad parameters throw naming the family") {
  double const big = std::numeric_limits<double>::max(), tiny = std::numeric_limits<double>::denorm_min();
  std::vector<PD> const all = {PD::fixed(1),
                               PD::uniform(-1, 3),
                               PD::normal(0, 1e-200),
                               PD::log_uniform(1, 2),
                               PD::truncated_normal(0, 1, 0, 1),
                               PD::half_normal(1e-200),
                               PD::half_cauchy(1e-200),
                               PD::student_t(0.5, 0, 1e-200),
                               PD::gamma(0.5, 1e200),
                               PD::beta(0.5, 3)};
  long nan = 0;
  for (auto const& p : all)
    for (double x : {-big, -1e200, -1.0, -tiny, 0.0, tiny, 1e-300, 0.5, 1.0, 1 - 1e-16, 2.0, 1e200, big}) {
      nan += std::isnan(p.log_density(x)) + std::isnan(p.gradient(x));
      INFO(p.family() << " at " << x << ": " << p.log_density(x) << ", " << p.gradient(x));
      CHECK(p.log_density(x) < HUGE_VAL);
    }
  CHECK(nan == 0);
  CHECK(std::isnan(PD::normal(0, 1).log_density(std::nan(""))));

  double const nanv = std::nan("");
  auto throws_as = [](auto f, char const* family) {
    std::string const msg = lensing::test::error_message(f);
    INFO(msg);
    CHECK(msg.find(std::string("lensing::Prior::") + family + ":") != std::string::npos);
    CHECK_THROWS_AS(f(), std::invalid_argument);
  };
  throws_as([&] { PD::fixed(HUGE_VAL); }, "fixed");
  throws_as([&] { PD::uniform(1, 1); }, "uniform");
  throws_as([&] { PD::uniform(nanv, 1); }, "uniform");
  throws_as([&] { PD::normal(0, 0); }, "normal");
  throws_as([&] { PD::normal(nanv, 1); }, "normal");
  throws_as([&] { PD::log_uniform(0, 1); }, "log_uniform");
  throws_as([&] { PD::log_uniform(2, 1); }, "log_uniform");
  throws_as([&] { PD::truncated_normal(0, 1, 1, 0); }, "truncated_normal");
  throws_as([&] { PD::truncated_normal(0, 1, 50, 60); }, "truncated_normal");
  throws_as([&] { PD::half_normal(-1); }, "half_normal");
  throws_as([&] { PD::half_normal(HUGE_VAL); }, "half_normal");
  throws_as([&] { PD::half_cauchy(0); }, "half_cauchy");
  throws_as([&] { PD::student_t(0, 0, 1); }, "student_t");
  throws_as([&] { PD::student_t(3, nanv, 1); }, "student_t");
  throws_as([&] { PD::student_t(3, 0, -1); }, "student_t");
  throws_as([&] { PD::gamma(0, 1); }, "gamma");
  throws_as([&] { PD::gamma(1, -2); }, "gamma");
  throws_as([&] { PD::beta(-1, 1); }, "beta");
  throws_as([&] { PD::beta(1, nanv); }, "beta");
}

LENSING_TEST_CASE_TEMPLATE("prior draws: moments, KS distance, gradients in kernels", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  using Pr = lensing::Prior<Scalar>;
  auto const cs = cases<Scalar>();
  int const k = int(cs.size());
  std::vector<std::pair<std::string, Pr>> entries;
  for (auto const& c : cs)
    entries.push_back({c.name, c.prior});
  entries.push_back({"fixed", Pr::fixed(0.5)});
  lensing::ParameterTable<Scalar, Mem> table(entries);
  int const n = 20000;
  lensing::View2D<Scalar, Mem> draws("draws", n, k + 1);
  Space space;
  table.sample(space, draws, 4242);
  space.fence();
  auto const h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), draws);

  // Gradient and log-density in a kernel at the first 8 draws of each column.
  int const m = 8;
  lensing::View2D<double, Mem> lp("lp", m, k), g("g", m, k);
  auto const priors = table.device_priors();
  Kokkos::parallel_for(
      "lensing::test::prior_gradients", Kokkos::MDRangePolicy<Space, Kokkos::Rank<2>>(space, {0, 0}, {m, k}),
      KOKKOS_LAMBDA(int i, int j) {
        double const x = double(draws(i, j));
        lp(i, j) = priors(j).log_density(x);
        g(i, j) = priors(j).gradient(x);
      });
  space.fence();
  auto const hlp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lp);
  auto const hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), g);

  for (int j = 0; j < k; ++j) {
    auto const& c = cs[j];
    Pr const& p = c.prior;
    std::vector<double> x(n);
    for (int i = 0; i < n; ++i)
      x[i] = double(h(i, j));
    INFO(c.name);
    // Support (draws are clamped into it; float rounding of the truncated
    // normal's ends is the only way out by an ulp).
    double const lo = *std::min_element(x.begin(), x.end()), hi = *std::max_element(x.begin(), x.end());
    CHECK(lo >= double(Scalar(p.lo)));
    CHECK(hi <= double(Scalar(p.hi)));
    CHECK(std::isfinite(lo));
    CHECK(std::isfinite(hi));

    // Gradient vs central differences of the double log-density, step
    // h = 1e-5 s, s = min(max(1, |x|), distance to a finite support end).
    // Error model: truncation h^2/6 |f'''| <= ~1e-10 (|g| + |f| / s) for
    // these log-densities (derivatives scale like powers of 1/s), rounding
    // 2 eps |f| / h ~ 2e-11 |f| / s; tolerance 1e-6 (1 + |g| + |f| / s).
    // The kernel's log-density equals the host's up to the device math
    // library's last-ulp differences.
    long bad_grad = 0;
    for (int i = 0; i < m; ++i) {
      double const xi = x[i];
      double s = std::max(1.0, std::fabs(xi));
      if (std::isfinite(p.lo)) s = std::min(s, xi - p.lo);
      if (std::isfinite(p.hi)) s = std::min(s, p.hi - xi);
      double const step = 1e-5 * s;
      double const f = p.log_density(xi);
      double const fd = (p.log_density(xi + step) - p.log_density(xi - step)) / (2 * step);
      bool const ok_g = std::fabs(hg(i, j) - fd) <= 1e-6 * (1 + std::fabs(fd) + std::fabs(f) / s);
      bool const ok_f = lensing::test::close(hlp(i, j), f, 1e-13, 1e-13);
      if (!ok_g || !ok_f)
        MESSAGE(c.name << " at " << xi << ": gradient " << hg(i, j) << " vs FD " << fd << ", log p " << hlp(i, j)
                       << " vs " << f);
      bad_grad += !ok_g + !ok_f;
    }
    CHECK(bad_grad == 0);

    // Moments.  Error model (central limit theorem): the sample mean has
    // standard error sqrt(var / n); the sample variance sqrt((mu4 - var^2) / n)
    // (mu4 from the sample: needs a finite 8th moment to be a stable
    // estimate, hence check_variance).  5 standard errors: a false alarm
    // per check < 1e-6 under normality.
    double mean = 0;
    for (double v : x)
      mean += v;
    mean /= n;
    double var = 0, m4 = 0;
    for (double v : x) {
      var += (v - mean) * (v - mean);
      m4 += std::pow(v - mean, 4);
    }
    var /= (n - 1);
    m4 /= n;
    INFO("mean " << mean << " vs " << p.mean() << ", var " << var << " vs " << p.variance());
    if (c.check_mean) CHECK(std::fabs(mean - p.mean()) < 5 * std::sqrt(p.variance() / n));
    if (c.check_variance) CHECK(std::fabs(var - p.variance()) < 5 * std::sqrt((m4 - var * var) / n));

    // Kolmogorov-Smirnov: P(sqrt(n) D > 1.95) = 0.001 (Kolmogorov's
    // asymptotic distribution; n = 20000 is far in the asymptotic regime).
    // Rounding the draws to float moves the empirical CDF by < 1e-6, far
    // below the critical D = 0.014.
    if (c.cdf) {
      std::sort(x.begin(), x.end());
      double D = 0;
      for (int i = 0; i < n; ++i) {
        double const F = c.cdf(x[i]);
        D = std::max({D, std::fabs(F - double(i) / n), std::fabs(F - double(i + 1) / n)});
      }
      INFO("sqrt(n) D = " << std::sqrt(double(n)) * D);
      CHECK(std::sqrt(double(n)) * D < 1.95);
    }
  }
  long not_fixed = 0;
  for (int i = 0; i < n; ++i)
    not_fixed += h(i, k) != Scalar(0.5);
  CHECK(not_fixed == 0);
}
