// The normal CDF and quantile of core/special.hpp: the unrefined Acklam
// approximation against its published error bound (so a wrong coefficient
// cannot hide behind the refinement step), the refined quantile to a few ulp,
// both against independent references: values computed with mpmath (committed
// below) and, on a dense grid, a long-double bisection on glibc's erfl/erfcl.
#include <lensing/core/special.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace m = lensing::math;

namespace {

// Phi^-1(p) to 50 digits, generated with (mpmath 1.3, mp.dps = 50):
//   def q(p):                      # p: the exact double
//       s = p if p <= 0.5 else 1 - p
//       f = lambda x: mp.log(mp.erfc(-x / mp.sqrt(2)) / 2) - mp.log(s)
//       x0 = -mp.sqrt(-2 * mp.log(s)) if s < 0.3 else (s - 0.5) * 2.5
//       x = mp.findroot(f, x0, tol=mp.mpf(10)**-45)
//       return x if p <= 0.5 else -x
// printed to 25 significant digits (the boundary points are nextafter(0.02425, 0 or 1)
// and nextafter(0.97575, 0 or 1)).
struct PX {
  double p;
  long double x;
};
PX const mpmath_values[] = {
    {1e-300, -37.04709629936119923654704L},
    {1e-250, -33.79958617269483746959197L},
    {1e-200, -30.20559417957964306312401L},
    {1e-150, -26.1229611905939835092498L},
    {1e-100, -21.27345356096532429417952L},
    {1e-75, -18.37720831960792610232442L},
    {1e-50, -14.93333753478848898065821L},
    {1e-30, -11.46402468844361571976697L},
    {1e-20, -9.262340089798407579572095L},
    {1e-15, -7.941345326170996771330131L},
    {1e-10, -6.361340902404056199100397L},
    {1e-08, -5.612001244174788727930121L},
    {1e-06, -4.753424308822898957338864L},
    {0.0001, -3.719016485455680552287564L},
    {0.001, -3.090232306167813535358005L},
    {0.01, -2.326347874040841093075096L},
    {0.02, -2.053748910631823044338639L},
    {0.024249999999999997, -1.97296105131188489850203L},
    {0.02425, -1.972961051311884837602748L},
    {0.024250000000000004, -1.972961051311884776703466L},
    {0.05, -1.644853626951472687952128L},
    {0.1, -1.281551565544600435334517L},
    {0.2, -0.8416212335729141655224906L},
    {0.3, -0.5244005127080408159694544L},
    {0.4, -0.2533471031357997413246887L},
    {0.45, -0.1256613468550740061604284L},
    {0.49, -0.02506890825871105803269163L},
    {0.4999, -0.0002506628300880074923888501L},
    {0.499999999, -2.506628342884532671231129e-9L},
    {0.5, 0.0L},
    {0.500000001, 2.506628203738711437642782e-9L},
    {0.6, 0.2533471031357997413246887L},
    {0.75, 0.674489750196081743202227L},
    {0.9, 1.281551565544600593487448L},
    {0.9757499999999999, 1.972961051311883010624279L},
    {0.97575, 1.972961051311884959401313L},
    {0.9757500000000001, 1.972961051311886908178346L},
    {0.99, 2.326347874040840767637189L},
    {0.999999, 4.753424308817087765688097L},
    {0.9999999999, 6.361340889697421864155442L},
    {0.9999999999999999, 8.209536151601386855630769L},
};

// Independent reference on any p: bisection for Phi(x) = p in long double
// (64-bit significand on x86-64 glibc), on the lower half s = min(p, 1 - p)
// (1 - p is exact for p >= 1/2).  Near the centre through erfl and the exact
// s - 1/2, in the tail through erfcl, so the residual has relative accuracy;
// bisection runs until the bracket is one long-double ulp.
long double reference_quantile(double p) {
  bool const upper = p > 0.5;
  long double const s = upper ? 1.0L - p : (long double)p;
  if (s == 0.5L) return 0.0L;
  long double const r2 = 0.707106781186547524400844362104849039L;
  auto below = [&](long double x) {  // Phi(x) < s
    return s > 0.25L ? 0.5L * std::erf(x * r2) < s - 0.5L : 0.5L * std::erfc(-x * r2) < s;
  };
  long double lo = -40, hi = 0;
  for (int it = 0; it < 200; ++it) {
    long double const mid = 0.5L * (lo + hi);
    if (mid == lo || mid == hi) break;
    (below(mid) ? lo : hi) = mid;
  }
  long double const x = 0.5L * (lo + hi);
  return upper ? -x : x;
}

double rel_err(double x, long double ref) {
  if (ref == 0) return x == 0 ? 0.0 : HUGE_VAL;
  return double(std::fabs((long double)x - ref) / std::fabs(ref));
}

// Dense grid: log-spaced tail probabilities from 1e-300 to 1/2 and their
// mirror images, a uniform grid on (0, 1), and the points either side of the
// region boundaries 0.02425 and 0.97575, 1/2 and 1 - 2^-53.
std::vector<double> dense_grid() {
  std::vector<double> ps;
  int const nlog = 6000;
  for (int i = 0; i <= nlog; ++i) {
    double const s = std::pow(10.0, -300.0 + (300.0 - std::log10(2.0)) * i / nlog);
    ps.push_back(s);
    if (s > 1e-16) ps.push_back(1 - s);
  }
  for (int i = 1; i < 4096; ++i)
    ps.push_back((i + 0.37) / 4096.0);
  for (double b : {0.02425, 0.97575, 0.5})
    for (double q = b, k = 0; k < 8; ++k) {
      ps.push_back(q);
      ps.push_back(std::nextafter(b, 0.0) - (q - b));
      q = std::nextafter(q, 1.0);
    }
  ps.push_back(1 - std::ldexp(1.0, -53));
  ps.push_back(1 - 1e-16);
  ps.push_back(0.5 + 1e-9);
  ps.push_back(0.5 - 1e-9);
  ps.erase(std::remove_if(ps.begin(), ps.end(), [](double p) { return !(p > 0 && p < 1); }), ps.end());
  return ps;
}

// Acklam's published bound on the relative error of the unrefined
// approximation, plus the rounding of its ~20 double operations (< 1e-14).
constexpr double acklam_bound = 1.15e-9 + 1e-14;

}  // namespace

TEST_CASE("long-double reference quantile agrees with mpmath") {
  if (std::numeric_limits<long double>::digits < 64) {
    MESSAGE("long double has " << std::numeric_limits<long double>::digits << " bits: dense-grid reference skipped");
    return;
  }
  // Bisection to a long-double ulp on erfl/erfcl (a few ulp each): relative
  // error ~1e-18; 1e-16 still resolves the 1e-9 and ulp-level checks below.
  for (auto const& v : mpmath_values) {
    long double const r = reference_quantile(v.p);
    if (v.x == 0)
      CHECK(r == 0);
    else
      CHECK(double(std::fabs(r - v.x) / std::fabs(v.x)) < 1e-16);
  }
}

TEST_CASE("unrefined Acklam quantile within its published 1.15e-9 bound") {
  // The committed mpmath values first (independent of any libm).
  double worst_mp = 0;
  for (auto const& v : mpmath_values) {
    double const e = rel_err(m::normal_quantile_acklam(v.p), v.x);
    CHECK_MESSAGE(e < acklam_bound, "p = " << v.p << " relative error " << e);
    worst_mp = std::max(worst_mp, e);
  }
  // Then the dense grid against the long-double reference.
  double worst = 0, p_worst = 0;
  if (std::numeric_limits<long double>::digits >= 64) {
    int fails = 0;
    for (double p : dense_grid()) {
      double const e = rel_err(m::normal_quantile_acklam(p), reference_quantile(p));
      if (!(e < acklam_bound) && fails++ < 5) CHECK_MESSAGE(e < acklam_bound, "p = " << p << " relative error " << e);
      if (e > worst) worst = e, p_worst = p;
    }
    CHECK(fails == 0);
  }
  MESSAGE("worst relative error: mpmath points " << worst_mp << ", dense grid " << worst << " at p = " << p_worst);
  // The bound is nearly attained (about 1.13e-9 at the region boundaries and
  // near 1/2): a test on a loose bound could not see a wrong coefficient.
  CHECK(std::max(worst, worst_mp) > 1e-9);
}

TEST_CASE("refined normal quantile to a few ulp") {
  // Halley's step from the 1.15e-9 start leaves ~1e-27; what remains is the
  // rounding of erf/erfc (a few ulp, relative) divided by the Mills-ratio
  // factor |x| phi / Phi >= 1 in the tail (and by ~1 near the centre, where
  // the residual goes through erf): relative error <= ~4 eps; bound 16 eps.
  double const tol = 16 * std::numeric_limits<double>::epsilon();
  double worst_mp = 0;
  for (auto const& v : mpmath_values) {
    double const e = rel_err(m::normal_quantile(v.p), v.x);
    CHECK_MESSAGE(e < tol, "p = " << v.p << " relative error " << e);
    worst_mp = std::max(worst_mp, e);
  }
  double worst = 0, p_worst = 0;
  if (std::numeric_limits<long double>::digits >= 64) {
    int fails = 0;
    for (double p : dense_grid()) {
      double const e = rel_err(m::normal_quantile(p), reference_quantile(p));
      if (!(e < tol) && fails++ < 5) CHECK_MESSAGE(e < tol, "p = " << p << " relative error " << e);
      if (e > worst) worst = e, p_worst = p;
    }
    CHECK(fails == 0);
  }
  MESSAGE("refined: worst relative error: mpmath points " << worst_mp << ", dense grid " << worst
                                                          << " at p = " << p_worst);
  // Symmetry and the ends.
  CHECK(m::normal_quantile(0.5) == 0);
  CHECK(m::normal_quantile(0.25) == -m::normal_quantile(0.75));
  CHECK(m::normal_quantile(0.0) == -HUGE_VAL);
  CHECK(m::normal_quantile(1.0) == HUGE_VAL);
  CHECK(m::normal_quantile_acklam(0.0) == -HUGE_VAL);
  CHECK(m::normal_quantile_acklam(1.0) == HUGE_VAL);
}

TEST_CASE("normal CDF against mpmath and in the far tail") {
  // Phi(x(p)) = p at the mpmath points.  Error model: rounding x to double
  // (|dx| <= eps |x| / 2) moves Phi by the relative amount (phi / Phi) |dx|,
  // and phi / Phi <= |x| + 1 for x < 0 (Mills ratio), so <= (x^2 + |x|) eps / 2;
  // erfc adds a few ulp.  Bound: twice (x^2 / 2 + |x| / 2 + 4) eps.
  for (auto const& v : mpmath_values) {
    if (v.p > 0.5) continue;  // Phi(x) near 1 has only absolute accuracy
    double const x = double(v.x);
    double const e = std::fabs(m::normal_cdf(x) - v.p) / v.p;
    CHECK_MESSAGE(e < (x * x + std::fabs(x) + 8) * std::numeric_limits<double>::epsilon(), "p = " << v.p);
  }
}

// The quantile is a kernel function: device values equal the host's.
LENSING_TEST_CASE_TEMPLATE("normal quantile in a kernel", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  int const n = 64;
  Kokkos::View<double*, Mem> out("out", 2 * n);
  Kokkos::parallel_for(
      "quantile", Kokkos::RangePolicy<Space>(Space(), 0, n), KOKKOS_LAMBDA(int i) {
        double const p = (i + 0.5) / n;
        out(2 * i) = m::normal_quantile(p);
        out(2 * i + 1) = m::normal_quantile_acklam(p * 1e-20);
      });
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  for (int i = 0; i < n; ++i) {
    double const p = (i + 0.5) / n;
    CHECK(std::fabs(h(2 * i) - m::normal_quantile(p)) <=
          4 * std::numeric_limits<double>::epsilon() * (1 + std::fabs(h(2 * i))));
    CHECK(std::fabs(h(2 * i + 1) - m::normal_quantile_acklam(p * 1e-20)) <=
          4 * std::numeric_limits<double>::epsilon() * std::fabs(h(2 * i + 1)));
  }
}

// ---------------------------------------------------------------------------
// Sérsic b_n and the incomplete gamma series.

namespace {

// Independent reference for the half-light constant: the upper regularised
// gamma Q(a, x) = 1 - P(a, x) in closed form for a a multiple of 1/2
// (n a multiple of 1/4), in long double:
//   integer a:       Q = e^-x sum_{k<a} x^k / k!,
//   a = m + 1/2:     Q = erfc(sqrt x) + e^-x sum_{k<m} x^(k+1/2) / Gamma(k + 3/2).
// No series truncation and no lgamma: independent of gamma_p_series.
long double upper_gamma_closed(int twice_a, long double x) {
  long double const ex = std::exp(-x);
  if (twice_a % 2 == 0) {
    long double term = 1, sum = 0;  // x^k / k!
    for (int k = 0; k < twice_a / 2; ++k) {
      sum += term;
      term *= x / (k + 1);
    }
    return ex * sum;
  }
  long double const sx = std::sqrt(x);
  long double term = sx / std::tgamma(1.5L), sum = 0;  // x^(k+1/2) / Gamma(k + 3/2)
  for (int k = 0; k < twice_a / 2; ++k) {
    sum += term;
    term *= x / (k + 1.5L);
  }
  return std::erfc(sx) + ex * sum;
}

// Exact b_n for n = quarter / 4: bisection for Q(2n, b) = 1/2 (Q decreases
// in b) down to one long-double ulp of the bracket.
long double reference_sersic_b(int quarter) {
  int const twice_a = quarter;  // a = 2n = quarter / 2
  long double lo = 1e-3L, hi = 2.0L * quarter + 2;
  for (int it = 0; it < 200; ++it) {
    long double const mid = 0.5L * (lo + hi);
    if (mid == lo || mid == hi) break;
    (upper_gamma_closed(twice_a, mid) > 0.5L ? lo : hi) = mid;
  }
  return 0.5L * (lo + hi);
}

}  // namespace

TEST_CASE("closed-form Sersic reference: ln 2 at n = 1/2") {
  // n = 1/2: Q(1, b) = e^-b = 1/2.  Bisection on long double to ~1e-18.
  CHECK(double(std::fabs(reference_sersic_b(2) - std::log(2.0L))) < 1e-15);
  // n = 1: (1 + b) e^-b = 1/2, residual at the reference.
  long double const b1 = reference_sersic_b(4);
  CHECK(double(std::fabs((1 + b1) * std::exp(-b1) - 0.5L)) < 1e-16);
}

TEST_CASE("gamma_p_series against the closed forms") {
  // Series rounding: ~ (number of terms) ulp in the sum plus the rounding of
  // exp(-x + a log x - lgamma(a)), whose argument is ~a in size (relative
  // error ~ a eps): bound 1e-13 for a <= 20.
  for (int twice_a = 1; twice_a <= 40; ++twice_a)
    for (double f : {0.05, 0.3, 0.7, 1.0, 1.6, 2.5}) {
      double const a = twice_a / 2.0, x = f * a + 0.1;
      double const p = m::gamma_p_series(a, x);
      long double const ref = 1 - upper_gamma_closed(twice_a, x);
      CHECK_MESSAGE(double(std::fabs(p - ref)) < 1e-13, "a = " << a << " x = " << x << " P = " << p);
    }
  CHECK(m::gamma_p_series(2.0, 0.0) == 0);
  CHECK(m::gamma_p_series(2.0, -1.0) == 0);
}

TEST_CASE("gamma_q against the closed forms, both branches and the far tail") {
  // Series branch (x < a + 1): Q = 1 - P with P's absolute error < 1e-13
  // (above) and Q >~ 0.3 there, so relative error < 1e-12.  Continued
  // fraction (x >= a + 1): converged to 1e-16 per step, rounding of the
  // prefactor exp(a log x - x - lgamma(a)) with an argument of size ~x:
  // relative error ~ x eps, below 1e-12 for x <= 400.
  for (int twice_a = 1; twice_a <= 40; ++twice_a)
    for (double f : {0.05, 0.3, 0.7, 1.0, 1.6, 2.5, 5.0, 15.0}) {
      double const a = twice_a / 2.0, x = f * a + 0.1;
      long double const ref = upper_gamma_closed(twice_a, x);
      double const e = rel_err(m::gamma_q(a, x), ref);
      CHECK_MESSAGE(e < 1e-12, "a = " << a << " x = " << x << " Q = " << m::gamma_q(a, x) << " relative error " << e);
    }
  CHECK(m::gamma_q(2.0, 0.0) == 1);
  CHECK(m::gamma_q(2.0, HUGE_VAL) == 0);
  // Large a (a chi-square with 2e4 degrees of freedom): the series needs
  // O(sqrt a) terms.  Q(a, a) = 1/2 - 1/(3 sqrt(2 pi a)) + O(a^-3/2) (the
  // next term is ~1e-9 here), and two values from scipy 1.17's gammaincc.
  // Error model: the prefactor's exponent a log x - x - lgamma(a) has terms of
  // ~1e5, so ~1e-11 absolute in it and relative in Q: bound 1e-10.
  double const big = 1e4;
  CHECK(std::fabs(m::gamma_q(big, big) - (0.5 - 1 / (3 * std::sqrt(2 * M_PI * big)))) < 1e-8);
  CHECK(rel_err(m::gamma_q(big, 9900.0), 0.8413488078064354L) < 1e-10);
  CHECK(rel_err(m::gamma_q(big, 10300.0), 0.0014704948963856813L) < 1e-10);
}

TEST_CASE("Sersic b_n: exact, Ciotti-Bertin series and lenstronomy's linear fit") {
  // n = 0.5, 0.75, ..., 10 (the closed-form reference needs 4n integer).
  double worst_exact = 0, worst_cb = 0, worst_cb1 = 0, worst_lin = 0, worst_lin_abs = 0, worst_lin1 = 0;
  for (int quarter = 2; quarter <= 40; ++quarter) {
    double const n = quarter / 4.0;
    long double const ref = reference_sersic_b(quarter);
    // sersic_b(): three Newton steps from the 4e-4 start leave ~1e-26; what
    // remains is the rounding of gamma_p_series (< 1e-13 absolute, above)
    // divided by dP/db ~ 1/sqrt(4 pi n): relative error < 1e-12 for n <= 8.
    if (n <= 8) {
      double const e = rel_err(m::sersic_b(n), ref);
      CHECK_MESSAGE(e < 1e-12, "n = " << n << " relative error " << e);
      worst_exact = std::max(worst_exact, e);
    }
    // The documented bounds of the two approximations (maxima at n = 0.5 and
    // n = 1, on this grid too).
    double const ecb = rel_err(m::sersic_b_ciotti_bertin(n), ref);
    CHECK_MESSAGE(ecb < 3.7e-4, "n = " << n << " Ciotti-Bertin relative error " << ecb);
    worst_cb = std::max(worst_cb, ecb);
    if (n >= 1) worst_cb1 = std::max(worst_cb1, ecb);
    double const lin = m::sersic_b_lenstronomy(n);
    double const elin = rel_err(lin, ref);
    worst_lin = std::max(worst_lin, elin);
    worst_lin_abs = std::max(worst_lin_abs, double(std::fabs(lin - ref)));
    if (n >= 1) worst_lin1 = std::max(worst_lin1, elin);
  }
  MESSAGE("worst relative errors: exact " << worst_exact << ", Ciotti-Bertin " << worst_cb << " (n >= 1: " << worst_cb1
                                          << "), linear " << worst_lin << " (n >= 1: " << worst_lin1 << ", absolute "
                                          << worst_lin_abs << ")");
  CHECK(worst_cb1 < 2.5e-5);
  CHECK(worst_lin < 3.0e-2);
  CHECK(worst_lin_abs < 0.021);
  CHECK(worst_lin1 < 3.8e-3);
  // The bounds are nearly attained: a wrong coefficient would show.
  CHECK(worst_cb > 3.5e-4);
  CHECK(worst_cb1 > 2.4e-5);
  CHECK(worst_lin > 2.9e-2);
  CHECK(worst_lin1 > 3.6e-3);
}

TEST_CASE("lenstronomy's linear b_n: the coefficients, the floor and the derivative") {
  CHECK(m::sersic_b_lenstronomy(4.0) == 1.9992 * 4.0 - 0.3271);
  CHECK(m::sersic_b_lenstronomy(1.0f) == 1.9992f * 1.0f - 0.3271f);
  CHECK(m::sersic_b_lenstronomy_dn(2.0) == 1.9992);
  CHECK(m::sersic_b_lenstronomy_dn(2.0f) == 1.9992f);
  // Floor 1e-5 below n = (0.3271 + 1e-5) / 1.9992 = 0.16362; zero slope there.
  CHECK(m::sersic_b_lenstronomy(0.1) == 1e-5);
  CHECK(m::sersic_b_lenstronomy(0.1f) == 1e-5f);
  CHECK(m::sersic_b_lenstronomy_dn(0.1) == 0);
  CHECK(m::sersic_b_lenstronomy(0.1637) > 1e-5);
}
