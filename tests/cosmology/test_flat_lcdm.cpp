#include <lensing/cosmology/flat_lcdm.hpp>

#include <lensing_test.hpp>
#include <reference.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <stdexcept>

namespace {
nlohmann::json const& reference() { return lensing::test::reference_json(); }

// Independent check: adaptive Simpson in z of 1/E(z) in long double.
long double simpson(long double Om, long double a, long double b, long double fa, long double fm, long double fb,
                    long double whole, int depth) {
  auto f = [Om](long double z) { return 1.0L / std::sqrt(Om * (1 + z) * (1 + z) * (1 + z) + 1 - Om); };
  long double const m = (a + b) / 2, lm = (a + m) / 2, rm = (m + b) / 2;
  long double const flm = f(lm), frm = f(rm);
  long double const left = (m - a) / 6 * (fa + 4 * flm + fm), right = (b - m) / 6 * (fm + 4 * frm + fb);
  if (depth <= 0 || std::fabs(left + right - whole) < 1e-17L) return left + right + (left + right - whole) / 15;
  return simpson(Om, a, m, fa, flm, fm, left, depth - 1) + simpson(Om, m, b, fm, frm, fb, right, depth - 1);
}
double comoving_reference(double H0, double Om, double z) {
  auto f = [Om](long double zz) { return 1.0L / std::sqrt(Om * (1 + zz) * (1 + zz) * (1 + zz) + 1 - Om); };
  long double const fa = f(0), fb = f(z), fm = f(z / 2.0L);
  long double const whole = z / 6.0L * (fa + 4 * fm + fb);
  return double(lensing::constants::c_km_s / H0 * simpson(Om, 0, z, fa, fm, fb, whole, 40));
}
}  // namespace

TEST_CASE("FlatLambdaCDM: distances match astropy (lenstronomy reference) to 1e-8") {
  double worst = 0;
  for (auto const& c : reference()["cosmology"]) {
    lensing::FlatLambdaCDM<double> const cosmo(c["H0"].get<double>(), c["Om0"].get<double>());
    double const zl = c["z_lens"], zs = c["z_source"];
    double const dl = c["D_l_Mpc"], ds = c["D_s_Mpc"], dls = c["D_ls_Mpc"];
    CHECK(std::fabs(cosmo.angular_diameter_distance(zl) / dl - 1) < 1e-8);
    CHECK(std::fabs(cosmo.angular_diameter_distance(zs) / ds - 1) < 1e-8);
    CHECK(std::fabs(cosmo.angular_diameter_distance(zl, zs) / dls - 1) < 1e-8);
    CHECK(std::fabs(cosmo.time_delay_distance(zl, zs) / ((1 + zl) * dl * ds / dls) - 1) < 1e-8);
    for (double r : {cosmo.angular_diameter_distance(zl) / dl, cosmo.angular_diameter_distance(zs) / ds,
                     cosmo.angular_diameter_distance(zl, zs) / dls})
      worst = std::max(worst, std::fabs(r - 1));
  }
  MESSAGE("astropy reference: max relative distance error " << worst);
}

TEST_CASE("FlatLambdaCDM: quadrature accurate to 1e-11 against adaptive Simpson and Einstein-de Sitter") {
  for (double Om : {0.001, 0.05, 0.3, 0.7, 1.0}) {
    lensing::FlatLambdaCDM<double> const cosmo(67.4, Om);
    for (double z : {1e-4, 0.01, 0.3, 1.0, 2.5, 7.0, 30.0, 1100.0}) {
      double const ref = comoving_reference(67.4, Om, z);
      INFO("Om0 = " << Om << " z = " << z);
      CHECK(std::fabs(cosmo.comoving_distance(z) / ref - 1) < 1e-11);
    }
  }
  lensing::FlatLambdaCDM<double> const eds(70, 1.0);
  for (double z : {0.0, 0.1, 0.5, 1.0, 3.0, 10.0}) {
    double const dh = lensing::constants::c_km_s / 70;
    double const dc = 2 * dh * (1 - 1 / std::sqrt(1 + z));
    CHECK(std::fabs(eds.comoving_distance(z) - dc) <= 1e-13 * dh);
    for (double z2 : {z + 1e-6, z + 0.2, z + 2.0}) {
      double const s1 = std::sqrt(1 + z), s2 = std::sqrt(1 + z2);
      double const d12 = 2 * dh * ((z2 - z) / (s1 * s2 * (s1 + s2))) / (1 + z2);
      CHECK(std::fabs(eds.angular_diameter_distance(z, z2) / d12 - 1) < 1e-12);
    }
  }
}

TEST_CASE("FlatLambdaCDM: identities, Sigma_crit and delays") {
  lensing::FlatLambdaCDM<double> const cosmo(70, 0.3);
  // Comoving distances add along the line of sight (flat), short intervals stay accurate.
  for (double z1 : {0.2, 0.5, 1.3})
    for (double dz : {1e-7, 1e-3, 0.8}) {
      double const z2 = z1 + dz;
      double const sum = cosmo.comoving_distance(z2) - cosmo.comoving_distance(z1);
      CHECK(std::fabs(cosmo.comoving_distance(z1, z2) - sum) <= 1e-12 * cosmo.comoving_distance(z2));
      // D_C(z1, z2) ~ c/H0 dz / E(z) for small dz.
      if (dz < 1e-6) {
        double const approx = cosmo.hubble_distance() * (z2 - z1) / cosmo.efunc(z1 + dz / 2);
        CHECK(std::fabs(cosmo.comoving_distance(z1, z2) / approx - 1) < 1e-10);
      }
    }
  double const zl = 0.5, zs = 2.0;
  double const dl = cosmo.angular_diameter_distance(zl), ds = cosmo.angular_diameter_distance(zs);
  double const dls = cosmo.angular_diameter_distance(zl, zs);
  // c^2/(4 pi G) = 1.6629165e18 M_sun/Mpc (hand value, 5 digits) and the full expression.
  CHECK(std::fabs(lensing::FlatLambdaCDM<double>::c2_over_4piG_Msun_per_Mpc() / 1.6629165e18 - 1) < 1e-7);
  double const sc = lensing::FlatLambdaCDM<double>::c2_over_4piG_Msun_per_Mpc() * ds / (dl * dls);
  CHECK(std::fabs(cosmo.sigma_crit(zl, zs) / sc - 1) < 1e-13);
  CHECK(std::fabs(cosmo.sigma_crit_angle(zl, zs) / (sc * dl * dl * std::pow(M_PI / 648000, 2)) - 1) < 1e-13);
  // 1 arcsec^2 over D_dt = 1 Gpc: 1e3 Mpc / c * arcsec^2 = 28.0006 days (hand value, 6 digits).
  double const days = 1e3 * lensing::FlatLambdaCDM<double>::days_per_Mpc_fermat();
  CHECK(std::fabs(days / 28.0006 - 1) < 1e-5);
  CHECK(std::fabs(cosmo.fermat_to_days(zl, zs, 0.25) / (0.25 * cosmo.time_delay_distance(zl, zs) * days / 1e3) - 1) <
        1e-13);
  // D_dt scales as 1/H0.
  lensing::FlatLambdaCDM<double> const c2(35, 0.3);
  CHECK(std::fabs(c2.time_delay_distance(zl, zs) / (2 * cosmo.time_delay_distance(zl, zs)) - 1) < 1e-14);
}

TEST_CASE("FlatLambdaCDM: bad parameters throw") {
  CHECK_THROWS_AS(lensing::FlatLambdaCDM<double>(-70, 0.3), std::invalid_argument);
  CHECK_THROWS_AS(lensing::FlatLambdaCDM<double>(70, 0.0), std::invalid_argument);
  CHECK_THROWS_AS(lensing::FlatLambdaCDM<double>(70, 1.5), std::invalid_argument);
  CHECK_THROWS_AS(lensing::FlatLambdaCDM<double>(70, std::nan("")), std::invalid_argument);
  CHECK_THROWS_AS(lensing::FlatLambdaCDM<double>::check_redshifts(1.0, 0.5, "test"), std::invalid_argument);
  CHECK_NOTHROW(lensing::FlatLambdaCDM<double>::check_redshifts(0.5, 1.0, "test"));
}

LENSING_TEST_CASE_TEMPLATE("FlatLambdaCDM: usable in kernels", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  static_assert(std::is_trivially_copyable<lensing::FlatLambdaCDM<Scalar>>::value, "");
  lensing::FlatLambdaCDM<Scalar> const cosmo(70, 0.3);
  lensing::FlatLambdaCDM<double> const ref(70, 0.3);
  Scalar const tol = std::is_same<Scalar, float>::value ? Scalar(1e-6) : Scalar(1e-14);
  auto const fails = lensing::test::count_failures(
      Space(), 100, KOKKOS_LAMBDA(long i) {
        Scalar const z1 = Scalar(0.01 * i), z2 = z1 + Scalar(0.5) + Scalar(0.02 * i);
        return lensing::test::close(cosmo.angular_diameter_distance(z1, z2),
                                    Scalar(ref.angular_diameter_distance(z1, z2)), tol) &&
               lensing::test::close(cosmo.time_delay_distance(z2 / 2, z2), Scalar(ref.time_delay_distance(z2 / 2, z2)),
                                    tol);
      });
  CHECK(fails == 0);
}
