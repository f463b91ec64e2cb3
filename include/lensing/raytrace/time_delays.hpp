#ifndef LENSING_RAYTRACE_TIME_DELAYS_HPP
#define LENSING_RAYTRACE_TIME_DELAYS_HPP

/// \file
/// Fermat potential, arrival times and time delays of point-source images,
/// and the inverse problem: H0 (or D_dt) from measured delays.

#include <lensing/core/errors.hpp>
#include <lensing/cosmology/flat_lcdm.hpp>
#include <lensing/raytrace/image_positions.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace lensing {

/// Fermat potential phi(x; beta) = |x - beta|^2 / 2 - psi(x) [arcsec^2]
/// (Schneider 1985; Blandford & Narayan 1986) of a single-plane lens.
/// Images are its stationary points; the arrival time is
/// t = D_dt / c phi (FlatLambdaCDM::fermat_to_days), the convention of
/// lenstronomy (no additive constant: psi is each profile's own potential).
template <class Lens>
KOKKOS_INLINE_FUNCTION typename Lens::scalar_type fermat_potential(Lens const& lens, typename Lens::scalar_type x,
                                                                   typename Lens::scalar_type y,
                                                                   typename Lens::scalar_type beta_x,
                                                                   typename Lens::scalar_type beta_y) {
  using Scalar = typename Lens::scalar_type;
  Scalar const dx = x - beta_x, dy = y - beta_y;
  return Scalar(0.5) * (dx * dx + dy * dy) - lens.potential(x, y);
}

/// An image with its Fermat potential [arcsec^2], arrival time t = D_dt phi / c
/// [days] and delay t - t_first [days] relative to the first-arriving image.
template <class Scalar>
struct TimedImage {
  PointImage<Scalar> image;
  Scalar fermat_potential;
  Scalar arrival_time;
  Scalar delay;
};

/// Arrival times of given images of the source beta for a single-plane lens
/// at z_lens and a source at z_source, sorted by arrival time (first first).
template <class Lens>
std::vector<TimedImage<typename Lens::scalar_type>> arrival_times(
    Lens const& lens, FlatLambdaCDM<typename Lens::scalar_type> const& cosmo, double z_lens, double z_source,
    typename Lens::scalar_type beta_x, typename Lens::scalar_type beta_y,
    std::vector<PointImage<typename Lens::scalar_type>> const& images) {
  using Scalar = typename Lens::scalar_type;
  constexpr char const* where = "lensing::arrival_times";
  FlatLambdaCDM<Scalar>::check_redshifts(z_lens, z_source, where);
  check_finite(beta_x, where, "beta_x");
  check_finite(beta_y, where, "beta_y");
  check_model(lens);
  double const days = cosmo.days_per_fermat(Scalar(z_lens), Scalar(z_source));
  std::vector<TimedImage<Scalar>> out;
  for (auto const& im : images) {
    // Evaluated in Scalar, scaled in double.
    Scalar const phi = fermat_potential(lens, im.x, im.y, beta_x, beta_y);
    out.push_back({im, phi, Scalar(days * double(phi)), Scalar(0)});
  }
  std::sort(out.begin(), out.end(),
            [](TimedImage<Scalar> const& a, TimedImage<Scalar> const& b) { return a.arrival_time < b.arrival_time; });
  for (auto& t : out)
    t.delay = Scalar(days * (double(t.fermat_potential) - double(out.front().fermat_potential)));
  return out;
}

/// Images (ImageFinder::find) and their arrival times in one call.
template <class Lens>
std::vector<TimedImage<typename Lens::scalar_type>> time_delays(
    ImageFinder<Lens> const& finder, FlatLambdaCDM<typename Lens::scalar_type> const& cosmo, double z_lens,
    double z_source, typename Lens::scalar_type beta_x, typename Lens::scalar_type beta_y,
    typename Lens::scalar_type tolerance = ImageFinder<Lens>::default_tolerance) {
  return arrival_times(finder.lens(), cosmo, z_lens, z_source, beta_x, beta_y, finder.find(beta_x, beta_y, tolerance));
}

/// Result of a delay fit: H0 [km/s/Mpc] (or D_dt [Mpc]), its 1-sigma error
/// from the delay errors, and chi^2 at the optimum.
struct DelayFit {
  double value;
  double sigma;
  double chi2;
};

/// Time-delay distance from measured delays: with Fermat-potential
/// differences dphi_i [arcsec^2] of the model and measured delays dt_i +-
/// sigma_i [days] (the same image pairs), dt = D_dt dphi / c is linear in D_dt,
/// so the weighted least-squares optimum is closed-form:
///   D_dt = sum(w k dt) / sum(w k^2),  k_i = dphi_i Mpc arcsec^2 / (c day),
///   w = 1/sigma^2,  sigma(D_dt) = 1/sqrt(sum w k^2).
/// Throws std::invalid_argument on mismatched sizes, non-finite values,
/// sigma <= 0 or all dphi = 0.
inline DelayFit time_delay_distance_from_delays(std::vector<double> const& dphi, std::vector<double> const& dt,
                                                std::vector<double> const& sigma) {
  constexpr char const* where = "lensing::time_delay_distance_from_delays";
  check_argument(!dphi.empty() && dphi.size() == dt.size() && dt.size() == sigma.size(), where,
                 "dphi, dt and sigma must be non-empty and of equal size");
  double swk2 = 0, swkt = 0;
  for (size_t i = 0; i < dphi.size(); ++i) {
    check_finite(dphi[i], where, "dphi");
    check_finite(dt[i], where, "dt");
    check_positive(sigma[i], where, "sigma");
    double const k = dphi[i] * FlatLambdaCDM<double>::days_per_Mpc_fermat(), w = 1 / (sigma[i] * sigma[i]);
    swk2 += w * k * k;
    swkt += w * k * dt[i];
  }
  check_argument(swk2 > 0, where, "the Fermat-potential differences are all zero");
  double const ddt = swkt / swk2;
  double chi2 = 0;
  for (size_t i = 0; i < dphi.size(); ++i) {
    double const r = (dt[i] - ddt * dphi[i] * FlatLambdaCDM<double>::days_per_Mpc_fermat()) / sigma[i];
    chi2 += r * r;
  }
  return {ddt, 1 / std::sqrt(swk2), chi2};
}

/// H0 from measured delays for a lens model, at fixed Om0 and redshifts: D_dt
/// is proportional to 1/H0, so D_dt(H0) = D_dt(H0_ref) H0_ref / H0 and, in
/// s = 1/H0, dt_i = s H0_ref D_dt(H0_ref) k_i is linear: closed-form weighted
/// least squares, sigma(H0) = H0^2 sigma(s) (first order).
inline DelayFit h0_from_delays(FlatLambdaCDM<double> const& cosmo_ref, double z_lens, double z_source,
                               std::vector<double> const& dphi, std::vector<double> const& dt,
                               std::vector<double> const& sigma) {
  constexpr char const* where = "lensing::h0_from_delays";
  FlatLambdaCDM<double>::check_redshifts(z_lens, z_source, where);
  DelayFit const d = time_delay_distance_from_delays(dphi, dt, sigma);
  check_argument(d.value > 0, where, "the delays have the opposite sign to the Fermat-potential differences");
  // D_dt = C / H0 with C = H0_ref D_dt(H0_ref).
  double const C = cosmo_ref.H0() * cosmo_ref.time_delay_distance(z_lens, z_source);
  double const h0 = C / d.value;
  return {h0, h0 * d.sigma / d.value, d.chi2};
}

}  // namespace lensing

#endif  // LENSING_RAYTRACE_TIME_DELAYS_HPP
