#ifndef LENSING_COSMOLOGY_FLAT_LCDM_HPP
#define LENSING_COSMOLOGY_FLAT_LCDM_HPP

/// \file
/// Flat Lambda-CDM background: comoving and angular-diameter distances, the
/// critical surface density and the time-delay distance.

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>

#include <Kokkos_Macros.hpp>

#include <cmath>

namespace lensing {

namespace constants {
/// Speed of light [km/s] (exact).
constexpr double c_km_s = 299792.458;
/// Megaparsec [m] (IAU 2015, astropy).
constexpr double Mpc_m = 3.0856775814913673e22;
/// Gravitational constant [m^3 kg^-1 s^-2] (CODATA 2018, astropy).
constexpr double G_SI = 6.67430e-11;
/// Solar mass [kg] (IAU 2015 nominal GM_sun / G, astropy).
constexpr double M_sun_kg = 1.988409870698051e30;
/// One arcsecond [rad].
constexpr double arcsec_rad = 3.141592653589793238462643383279502884 / 648000.0;
/// One day [s].
constexpr double day_s = 86400.0;
}  // namespace constants

/// Flat Lambda-CDM cosmology without radiation: H(z) = H0 E(z),
/// E(z) = sqrt(Om0 (1+z)^3 + 1 - Om0) (Hogg 1999, astro-ph/9905116).
///
/// Distances [Mpc]:
///   comoving      D_C(z)     = (c/H0) int_0^z dz'/E(z')
///   angular diam. D_A(z)     = D_C(z)/(1+z),
///                 D_A(z1,z2) = (D_C(z2) - D_C(z1))/(1+z2)   (flat: comoving distances add)
///   time delay    D_dt       = (1+z_l) D_l D_s / D_ls        (Refsdal 1964; Suyu et al. 2010)
///   Sigma_crit    = c^2 D_s / (4 pi G D_l D_ls)              [M_sun/Mpc^2]
/// Time delays: dt = D_dt / c * dphi with the Fermat potential difference dphi
/// in arcsec^2 (converted to rad^2), returned in days.
///
/// Quadrature: with u = sqrt(a) = (1+z)^(-1/2) the integrand becomes smooth on
/// [0, 1]:  D_C = (c/H0) int_u^1 2 du / sqrt(Om0 + (1-Om0) u^6).  It is
/// integrated with fixed Gauss-Legendre panels (num_panels x num_nodes,
/// nodes computed in the constructor); the cumulative integral at the panel
/// edges is stored, so one distance costs one partial panel (num_nodes
/// evaluations).  Relative error < 1e-13 for Om0 >= 1e-3 and any z >= 0
/// (the integrand's nearest complex singularity is then >= 0.1 from [0, 1]);
/// Om0 = 1 reproduces Einstein-de Sitter, D_C = 2 c/H0 (1 - (1+z)^(-1/2)).
/// Values match astropy's FlatLambdaCDM with Tcmb0 = 0 (the same constants).
///
/// Valid domain: H0 > 0 [km/s/Mpc], Om0 in [1e-3, 1], redshifts z >= 0
/// (z1 <= z2 for D_A(z1, z2); z_l < z_s for the lensing quantities).  Host:
/// the constructor checks the parameters (std::invalid_argument); methods are
/// KOKKOS_INLINE_FUNCTION and do not check (use check_redshifts on the host).
/// Trivially copyable: capture it by value in kernels.  Computed internally in
/// double whatever Scalar is; Scalar is the type of the results.
template <class Scalar>
class FlatLambdaCDM {
 public:
  using scalar_type = Scalar;
  static constexpr int num_panels = 32;
  static constexpr int num_nodes = 8;

  FlatLambdaCDM() = default;

  /// H0 [km/s/Mpc] > 0, Om0 in [1e-3, 1].
  FlatLambdaCDM(double H0, double Om0) : m_H0(H0), m_Om0(Om0) {
    check_positive(H0, "lensing::FlatLambdaCDM", "H0");
    check_finite(Om0, "lensing::FlatLambdaCDM", "Om0");
    check_argument(Om0 >= 1e-3 && Om0 <= 1.0, "lensing::FlatLambdaCDM", detail::describe("Om0", "in [1e-3, 1]", Om0));
    m_hubble_distance = constants::c_km_s / H0;
    // Gauss-Legendre nodes and weights on [-1, 1] by Newton iteration on P_n.
    int const n = num_nodes;
    for (int i = 0; i < (n + 1) / 2; ++i) {
      double x = std::cos(3.141592653589793 * (i + 0.75) / (n + 0.5)), dp = 0;
      for (int it = 0; it < 100; ++it) {
        double p0 = 1, p1 = x;
        for (int k = 2; k <= n; ++k) {
          double const p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
          p0 = p1;
          p1 = p2;
        }
        dp = n * (x * p1 - p0) / (x * x - 1);
        double const dx = p1 / dp;
        x -= dx;
        if (std::fabs(dx) < 1e-16) break;
      }
      double const w = 2 / ((1 - x * x) * dp * dp);
      m_node[i] = -x;
      m_node[n - 1 - i] = x;
      m_weight[i] = m_weight[n - 1 - i] = w;
    }
    m_cumulative[0] = 0;
    for (int p = 0; p < num_panels; ++p)
      m_cumulative[p + 1] = m_cumulative[p] + gauss(double(p) / num_panels, 1.0 / num_panels);
  }

  KOKKOS_INLINE_FUNCTION double H0() const { return m_H0; }
  KOKKOS_INLINE_FUNCTION double Om0() const { return m_Om0; }
  /// c/H0 [Mpc].
  KOKKOS_INLINE_FUNCTION Scalar hubble_distance() const { return Scalar(m_hubble_distance); }
  /// E(z) = H(z)/H0.
  KOKKOS_INLINE_FUNCTION Scalar efunc(Scalar z) const {
    double const zp = 1 + double(z);
    return Scalar(math::sqrt(m_Om0 * zp * zp * zp + (1 - m_Om0)));
  }

  /// Comoving (line-of-sight = transverse, flat) distance to z [Mpc].
  KOKKOS_INLINE_FUNCTION Scalar comoving_distance(Scalar z) const { return Scalar(comoving(double(z))); }
  /// Comoving distance between z1 and z2 [Mpc] (negative if z2 < z1).
  KOKKOS_INLINE_FUNCTION Scalar comoving_distance(Scalar z1, Scalar z2) const {
    return Scalar(m_hubble_distance * integral_z(double(z1), double(z2)));
  }
  /// Angular-diameter distance to z [Mpc].
  KOKKOS_INLINE_FUNCTION Scalar angular_diameter_distance(Scalar z) const {
    return Scalar(comoving(double(z)) / (1 + double(z)));
  }
  /// Angular-diameter distance from z1 to z2 >= z1 [Mpc].
  KOKKOS_INLINE_FUNCTION Scalar angular_diameter_distance(Scalar z1, Scalar z2) const {
    return Scalar(m_hubble_distance * integral_z(double(z1), double(z2)) / (1 + double(z2)));
  }
  /// Time-delay distance (1+z_l) D_l D_s / D_ls [Mpc].
  KOKKOS_INLINE_FUNCTION Scalar time_delay_distance(Scalar z_l, Scalar z_s) const {
    return Scalar(ddt(double(z_l), double(z_s)));
  }
  /// Critical surface density c^2 D_s / (4 pi G D_l D_ls) [M_sun / Mpc^2].
  KOKKOS_INLINE_FUNCTION Scalar sigma_crit(Scalar z_l, Scalar z_s) const {
    double const dl = comoving(double(z_l)) / (1 + double(z_l));
    double const ds = comoving(double(z_s)) / (1 + double(z_s));
    double const dls = m_hubble_distance * integral_z(double(z_l), double(z_s)) / (1 + double(z_s));
    return Scalar(c2_over_4piG_Msun_per_Mpc() * ds / (dl * dls));
  }
  /// Critical surface density per solid angle at the lens [M_sun / arcsec^2]
  /// (lenstronomy's sigma_crit_angle): Sigma_crit D_l^2 arcsec^2.
  KOKKOS_INLINE_FUNCTION Scalar sigma_crit_angle(Scalar z_l, Scalar z_s) const {
    double const dl = comoving(double(z_l)) / (1 + double(z_l));
    return Scalar(double(sigma_crit(z_l, z_s)) * dl * dl * constants::arcsec_rad * constants::arcsec_rad);
  }
  /// Days per arcsec^2 of Fermat potential: D_dt / c * arcsec^2.
  KOKKOS_INLINE_FUNCTION Scalar days_per_fermat(Scalar z_l, Scalar z_s) const {
    return Scalar(ddt(double(z_l), double(z_s)) * days_per_Mpc_fermat());
  }
  /// Time delay [days] of a Fermat-potential difference dphi [arcsec^2].
  KOKKOS_INLINE_FUNCTION Scalar fermat_to_days(Scalar z_l, Scalar z_s, Scalar dphi) const {
    return Scalar(ddt(double(z_l), double(z_s)) * days_per_Mpc_fermat() * double(dphi));
  }

  /// Host: throws std::invalid_argument unless 0 <= z_l < z_s, both finite.
  static void check_redshifts(double z_l, double z_s, char const* where) {
    check_finite(z_l, where, "z_lens");
    check_finite(z_s, where, "z_source");
    check_argument(z_l >= 0 && z_s > z_l, where,
                   "need 0 <= z_lens < z_source (got " + std::to_string(z_l) + ", " + std::to_string(z_s) + ")");
  }

  /// c^2/(4 pi G) [M_sun / Mpc].
  KOKKOS_INLINE_FUNCTION static constexpr double c2_over_4piG_Msun_per_Mpc() {
    return (constants::c_km_s * 1e3) * (constants::c_km_s * 1e3) /
           (4 * 3.141592653589793238462643383279502884 * constants::G_SI) * constants::Mpc_m / constants::M_sun_kg;
  }
  /// Days per (Mpc arcsec^2): Mpc / c * arcsec^2 / day.
  KOKKOS_INLINE_FUNCTION static constexpr double days_per_Mpc_fermat() {
    return constants::Mpc_m / (constants::c_km_s * 1e3) * constants::arcsec_rad * constants::arcsec_rad /
           constants::day_s;
  }

 private:
  double m_H0 = 70;
  double m_Om0 = 0.3;
  double m_hubble_distance = constants::c_km_s / 70;
  double m_node[num_nodes] = {};
  double m_weight[num_nodes] = {};
  double m_cumulative[num_panels + 1] = {};

  KOKKOS_INLINE_FUNCTION double integrand(double u) const {
    double const u2 = u * u;
    return 2 / math::sqrt(m_Om0 + (1 - m_Om0) * u2 * u2 * u2);
  }
  // Gauss-Legendre rule on [a, a + w].
  KOKKOS_INLINE_FUNCTION double gauss(double a, double w) const {
    double const h = 0.5 * w, m = a + h;
    double s = 0;
    for (int i = 0; i < num_nodes; ++i)
      s += m_weight[i] * integrand(m + h * m_node[i]);
    return s * h;
  }
  // F(u) = int_0^u (one partial panel).
  KOKKOS_INLINE_FUNCTION double primitive(double u) const {
    int p = static_cast<int>(u * num_panels);
    p = p < 0 ? 0 : (p >= num_panels ? num_panels - 1 : p);
    double const a = double(p) / num_panels;
    return m_cumulative[p] + gauss(a, u - a);
  }
  // int over u from u(z2) to u(z1), z1 <= z2.  Intervals up to one panel
  // wide get the rule directly, with the width
  //   u1 - u2 = (z2 - z1) / (s1 s2 (s1 + s2)),  s = sqrt(1+z),
  // so short intervals keep full relative accuracy; longer ones are
  // differences of the stored primitive (relative error < num_panels eps).
  KOKKOS_INLINE_FUNCTION double integral_z(double z1, double z2) const {
    double const s1 = math::sqrt(1 + z1), s2 = math::sqrt(1 + z2);
    double const du = (z2 - z1) / (s1 * s2 * (s1 + s2));
    if (math::fabs(du) <= 1.0 / num_panels) return gauss(1 / s2, du);
    return primitive(1 / s1) - primitive(1 / s2);
  }
  KOKKOS_INLINE_FUNCTION double comoving(double z) const { return m_hubble_distance * integral_z(0.0, z); }
  KOKKOS_INLINE_FUNCTION double ddt(double z_l, double z_s) const {
    double const cl = comoving(z_l), cs = comoving(z_s);
    double const cls = m_hubble_distance * integral_z(z_l, z_s);
    // (1+z_l) D_l D_s / D_ls = cl cs / cls (the (1+z) factors cancel).
    return cl * cs / cls;
  }
};

}  // namespace lensing

#endif  // LENSING_COSMOLOGY_FLAT_LCDM_HPP
