// Mock halo catalogue with a known intrinsic-alignment model, its graph
// features and the alignment statistics, for examples/intrinsic_alignments.
//
// The mock (2-D: a projected slab of a periodic box, side L, positions and
// separations in Mpc/h):
//   - positions: a Thomas-like cluster process.  A fraction f_field of the
//     N halos is uniform in the box; each of the others belongs to one of
//     n_clusters parents (uniform in the box, chosen uniformly per halo, so
//     cluster occupations are multinomial) and sits at a Gaussian offset of
//     per-cluster width sigma_c ~ U[sigma_min, sigma_max]; all wrapped
//     periodically.
//   - masses: dN/dM ∝ M^-slope on [m_min, m_max] (inverse CDF), independent
//     of position.
//   - tidal tensor: the halo number-density contrast delta on an n_g^2 grid
//     (cloud-in-cell), smoothed by a Gaussian of width R_s, and
//     T_ij = d_i d_j phi with nabla^2 phi = delta, i.e. in Fourier space
//     T_ij(k) = k_i k_j / k^2 delta(k) exp(-k^2 R_s^2 / 2) (k = 0 dropped),
//     by FFTW r2c/c2r, read back at the halos by cloud-in-cell.  The
//     stretching axis is the eigenvector of the smaller eigenvalue of T
//     (the direction the tidal field pulls apart: radial around an
//     overdensity, where d_r d_r phi < 0).
//   - orientations: headless (axial) major axes at angle phi in
//     (-pi/2, pi/2]; 2 (phi - theta_t) ~ von Mises(0, kappa(M)) around the
//     stretching-axis angle theta_t, kappa(M) = kappa0 (M / m_min)^kappa_slope
//     (Best & Fisher 1979 sampler), so <cos 2 (phi - theta_t)> = I_1(kappa) / I_0(kappa)
//     at mass M.  Networks see orientations as (cos 2 phi, sin 2 phi).
// Everything is a function of (seed, index): catalogue `index` of a run is
// reproducible on its own.
#ifndef LENSING_EXAMPLES_INTRINSIC_ALIGNMENTS_CATALOGUE_HPP
#define LENSING_EXAMPLES_INTRINSIC_ALIGNMENTS_CATALOGUE_HPP

#include <lensing/core/random.hpp>

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ia {

constexpr double pi = 3.14159265358979323846;

/// The mock's parameters (see the file comment).
struct CatalogueOptions {
  double box = 50.0;  // Mpc/h
  int n_halos = 128;
  double field_fraction = 0.3;
  int n_clusters = 6;
  double sigma_min = 1.0, sigma_max = 4.0;  // Mpc/h
  double m_min = 1e12, m_max = 3e14, slope = 1.9;
  int grid = 64;
  double smoothing = 3.0;  // R_s, Mpc/h
  double kappa0 = 0.6, kappa_slope = 0.35;
};

/// One catalogue: per halo position, mass, the tidal stretching-axis angle
/// theta_t in (-pi/2, pi/2], the tidal anisotropy |lambda_1 - lambda_2| and
/// the orientation phi in (-pi/2, pi/2].
struct Catalogue {
  std::vector<double> x, y, mass, tidal_angle, tidal_strength, phi;
  int size() const { return int(x.size()); }
};

/// Angle wrapped into (-pi/2, pi/2] (an axis).
inline double wrap_axis(double a) {
  a = std::fmod(a, pi);
  if (a <= -pi / 2) a += pi;
  if (a > pi / 2) a -= pi;
  return a;
}

/// Periodic minimum-image difference.
inline double min_image(double d, double box) { return d - box * std::round(d / box); }

/// Von Mises(0, kappa) angle in (-pi, pi] (Best & Fisher 1979).
inline double von_mises(lensing::Rng& rng, double kappa) {
  if (kappa < 1e-8) return pi * (2 * rng.uniform() - 1);
  double const tau = 1 + std::sqrt(1 + 4 * kappa * kappa);
  double const rho = (tau - std::sqrt(2 * tau)) / (2 * kappa);
  double const r = (1 + rho * rho) / (2 * rho);
  for (;;) {
    double const z = std::cos(pi * rng.uniform());
    double const f = (1 + r * z) / (r + z);
    double const c = kappa * (r - f);
    double const u2 = rng.uniform();
    if (c * (2 - c) - u2 > 0 || std::log(c / u2) + 1 - c >= 0) {
      double const t = std::acos(std::max(-1.0, std::min(1.0, f)));
      return rng.uniform() < 0.5 ? -t : t;
    }
  }
}

/// kappa(M) of the alignment model.
inline double concentration(CatalogueOptions const& o, double mass) {
  return o.kappa0 * std::pow(mass / o.m_min, o.kappa_slope);
}

/// The model's <cos 2 (phi - theta_t)> at mass M: I_1(kappa) / I_0(kappa).
inline double model_alignment(CatalogueOptions const& o, double mass) {
  double const k = concentration(o, mass);
  return std::cyl_bessel_i(1.0, k) / std::cyl_bessel_i(0.0, k);
}

/// Tidal stretching-axis angle and anisotropy at every halo (file comment).
inline void tidal_field(CatalogueOptions const& o, std::vector<double> const& x, std::vector<double> const& y,
                        std::vector<double>& angle, std::vector<double>& strength) {
  int const n = o.grid, nh = n / 2 + 1;
  double const cell = o.box / n;
  std::size_t const n_real = std::size_t(n) * n, n_complex = std::size_t(n) * nh;
  double* rho = fftw_alloc_real(n_real);
  fftw_complex* dk = fftw_alloc_complex(n_complex);
  fftw_complex* tk = fftw_alloc_complex(n_complex);
  std::vector<std::vector<double>> t(3, std::vector<double>(n_real));
  std::fill(rho, rho + n_real, 0.0);
  // Cloud-in-cell weights of a position: cells (i0, i0 + 1) with weights (1 - w, w).
  auto cic = [&](double p, int& i0, double& w) {
    double const g = p / cell - 0.5;
    double const f = std::floor(g);
    w = g - f;
    i0 = ((int(f) % n) + n) % n;
  };
  for (std::size_t h = 0; h < x.size(); ++h) {
    int ix, iy;
    double wx, wy;
    cic(x[h], ix, wx);
    cic(y[h], iy, wy);
    int const jx = (ix + 1) % n, jy = (iy + 1) % n;
    rho[std::size_t(iy) * n + ix] += (1 - wx) * (1 - wy);
    rho[std::size_t(iy) * n + jx] += wx * (1 - wy);
    rho[std::size_t(jy) * n + ix] += (1 - wx) * wy;
    rho[std::size_t(jy) * n + jx] += wx * wy;
  }
  double const mean = double(x.size()) / double(n_real);
  for (std::size_t i = 0; i < n_real; ++i)
    rho[i] = rho[i] / mean - 1;
  fftw_plan fwd = fftw_plan_dft_r2c_2d(n, n, rho, dk, FFTW_ESTIMATE);
  fftw_execute(fwd);
  fftw_destroy_plan(fwd);
  double* out = fftw_alloc_real(n_real);
  fftw_plan inv = fftw_plan_dft_c2r_2d(n, n, tk, out, FFTW_ESTIMATE);
  double const dk_unit = 2 * pi / o.box;
  for (int c = 0; c < 3; ++c) {  // T_xx, T_xy, T_yy
    for (int iy = 0; iy < n; ++iy) {
      double const ky = dk_unit * (iy <= n / 2 ? iy : iy - n);
      for (int ix = 0; ix < nh; ++ix) {
        double const kx = dk_unit * ix;
        double const k2 = kx * kx + ky * ky;
        std::size_t const q = std::size_t(iy) * nh + ix;
        double f = 0;
        if (k2 > 0) {
          double const kk = c == 0 ? kx * kx : c == 1 ? kx * ky : ky * ky;
          f = kk / k2 * std::exp(-0.5 * k2 * o.smoothing * o.smoothing) / double(n_real);
        }
        tk[q][0] = dk[q][0] * f;
        tk[q][1] = dk[q][1] * f;
      }
    }
    fftw_execute(inv);
    std::copy(out, out + n_real, t[c].begin());
  }
  fftw_destroy_plan(inv);
  fftw_free(out);
  fftw_free(rho);
  fftw_free(dk);
  fftw_free(tk);
  angle.resize(x.size());
  strength.resize(x.size());
  for (std::size_t h = 0; h < x.size(); ++h) {
    int ix, iy;
    double wx, wy;
    cic(x[h], ix, wx);
    cic(y[h], iy, wy);
    int const jx = (ix + 1) % n, jy = (iy + 1) % n;
    double v[3];
    for (int c = 0; c < 3; ++c)
      v[c] = (1 - wx) * (1 - wy) * t[c][std::size_t(iy) * n + ix] + wx * (1 - wy) * t[c][std::size_t(iy) * n + jx] +
             (1 - wx) * wy * t[c][std::size_t(jy) * n + ix] + wx * wy * t[c][std::size_t(jy) * n + jx];
    // Eigenvector of the larger eigenvalue at 0.5 atan2(2 T_xy, T_xx - T_yy);
    // the stretching axis (smaller eigenvalue) is perpendicular to it.
    angle[h] = wrap_axis(0.5 * std::atan2(2 * v[1], v[0] - v[2]) + pi / 2);
    strength[h] = std::sqrt((v[0] - v[2]) * (v[0] - v[2]) + 4 * v[1] * v[1]);
  }
}

/// Catalogue `index` of seed `seed` (file comment).
inline Catalogue make_catalogue(CatalogueOptions const& o, std::uint64_t seed, std::uint64_t index) {
  lensing::Rng rng(seed, lensing::random::purpose_host, index, 0x1a);
  Catalogue c;
  int const n = o.n_halos;
  std::vector<double> px(o.n_clusters), py(o.n_clusters), ps(o.n_clusters);
  for (int p = 0; p < o.n_clusters; ++p) {
    px[p] = o.box * rng.uniform();
    py[p] = o.box * rng.uniform();
    ps[p] = o.sigma_min + (o.sigma_max - o.sigma_min) * rng.uniform();
  }
  c.x.resize(n);
  c.y.resize(n);
  c.mass.resize(n);
  double const a = 1 - o.slope, lo = std::pow(o.m_min, a), hi = std::pow(o.m_max, a);
  for (int h = 0; h < n; ++h) {
    double xx, yy;
    if (o.n_clusters == 0 || rng.uniform() < o.field_fraction) {
      xx = o.box * rng.uniform();
      yy = o.box * rng.uniform();
    } else {
      int const p = int(rng.index(std::uint32_t(o.n_clusters)));
      xx = px[p] + ps[p] * rng.normal();
      yy = py[p] + ps[p] * rng.normal();
    }
    c.x[h] = xx - o.box * std::floor(xx / o.box);
    c.y[h] = yy - o.box * std::floor(yy / o.box);
    c.mass[h] = std::pow(lo + (hi - lo) * rng.uniform(), 1 / a);
  }
  tidal_field(o, c.x, c.y, c.tidal_angle, c.tidal_strength);
  c.phi.resize(n);
  for (int h = 0; h < n; ++h)
    c.phi[h] = wrap_axis(c.tidal_angle[h] + 0.5 * von_mises(rng, concentration(o, c.mass[h])));
  return c;
}

//----------------------------------------------------------------------------
// Node features (what the networks see besides the graph)

/// Number of conditioning features per halo.
constexpr int n_features = 6;

/// Raw conditioning features per halo, row-major (halo, feature), all
/// invariant under rotations of the catalogue, and each halo's local frame:
/// with s_k = mean over the k nearest neighbours (periodic) of
/// (cos 2a, sin 2a), a the direction to the neighbour (the shape of the
/// neighbourhood, headless), and psi_k = atan2(s_k) / 2 its long axis,
///   0: log10(M / m_min);
///   1: log10 of the local density, -2 log10(d_8) (d_8: distance to the 8th
///      nearest neighbour);
///   2, 3: |s_8|, |s_32| (how elongated the neighbourhoods are);
///   4, 5: cos 2 (psi_8 - psi_32), sin 2 (psi_8 - psi_32) (the small-scale
///      axis in the frame of the large-scale one);
/// frame[h] = psi_32: the networks see and paint orientations relative to
/// it, phi - psi_32, so that the learned law is the same in every direction
/// (the mock is statistically isotropic).  Positions and masses only: the
/// tidal tensor is never given.
inline std::vector<double> halo_features(CatalogueOptions const& o, Catalogue const& c, std::vector<double>& frame) {
  int const n = c.size();
  int const k1 = std::min(8, n - 1), k2 = std::min(32, n - 1);
  std::vector<double> f(std::size_t(n) * n_features);
  frame.assign(n, 0.0);
  std::vector<std::pair<double, int>> d(n - 1);
  for (int i = 0; i < n; ++i) {
    int m = 0;
    for (int j = 0; j < n; ++j) {
      if (j == i) continue;
      double const dx = min_image(c.x[j] - c.x[i], o.box), dy = min_image(c.y[j] - c.y[i], o.box);
      d[m++] = {dx * dx + dy * dy, j};
    }
    std::partial_sort(d.begin(), d.begin() + k2, d.end());
    double s[4] = {0, 0, 0, 0};
    for (int q = 0; q < k2; ++q) {
      int const j = d[q].second;
      double const dx = min_image(c.x[j] - c.x[i], o.box), dy = min_image(c.y[j] - c.y[i], o.box);
      double const r2 = std::max(dx * dx + dy * dy, 1e-24);
      double const c2 = (dx * dx - dy * dy) / r2, s2 = 2 * dx * dy / r2;
      if (q < k1) {
        s[0] += c2 / k1;
        s[1] += s2 / k1;
      }
      s[2] += c2 / k2;
      s[3] += s2 / k2;
    }
    double const psi8 = 0.5 * std::atan2(s[1], s[0]), psi32 = 0.5 * std::atan2(s[3], s[2]);
    double* fi = &f[std::size_t(i) * n_features];
    fi[0] = std::log10(c.mass[i] / o.m_min);
    fi[1] = -std::log10(std::max(d[k1 - 1].first, 1e-12));
    fi[2] = std::hypot(s[0], s[1]);
    fi[3] = std::hypot(s[2], s[3]);
    fi[4] = std::cos(2 * (psi8 - psi32));
    fi[5] = std::sin(2 * (psi8 - psi32));
    frame[i] = psi32;
  }
  return f;
}

//----------------------------------------------------------------------------
// Statistics

/// Mean and standard error of a sample.
struct MeanErr {
  double mean = 0, err = 0;
  long count = 0;
};

inline MeanErr mean_err(std::vector<double> const& v) {
  MeanErr r;
  r.count = long(v.size());
  if (v.empty()) return r;
  double s = 0, s2 = 0;
  for (double x : v)
    s += x;
  r.mean = s / double(v.size());
  for (double x : v)
    s2 += (x - r.mean) * (x - r.mean);
  r.err = v.size() > 1 ? std::sqrt(s2 / double(v.size() - 1) / double(v.size())) : 0;
  return r;
}

/// The alignment statistic <cos 2 (phi - theta_t)> in bins of log10 M
/// (edges: bins + 1 values), over halos pooled from several catalogues.
inline std::vector<MeanErr> alignment_in_mass_bins(std::vector<double> const& mass, std::vector<double> const& phi,
                                                   std::vector<double> const& theta,
                                                   std::vector<double> const& log_mass_edges) {
  std::size_t const nb = log_mass_edges.size() - 1;
  std::vector<std::vector<double>> v(nb);
  for (std::size_t h = 0; h < mass.size(); ++h) {
    double const lm = std::log10(mass[h]);
    for (std::size_t b = 0; b < nb; ++b)
      if (lm >= log_mass_edges[b] && lm < log_mass_edges[b + 1]) v[b].push_back(std::cos(2 * (phi[h] - theta[h])));
  }
  std::vector<MeanErr> r(nb);
  for (std::size_t b = 0; b < nb; ++b)
    r[b] = mean_err(v[b]);
  return r;
}

/// Pair sums of one catalogue in radial bins (edges r_edges, periodic):
/// ed: sum over ordered pairs (i, j) of cos 2 (phi_i - theta_ij) (theta_ij the
/// direction from i to j; > 0: major axes point at the neighbours, the
/// ellipticity-direction correlation eta_ED / a w_g+-like position-shape
/// correlation); ee: sum over pairs of cos 2 (phi_i - phi_j) (the
/// orientation-orientation correlation); counts.
struct PairSums {
  std::vector<double> ed, ee, count;
  explicit PairSums(std::size_t nb = 0) : ed(nb, 0), ee(nb, 0), count(nb, 0) {}
};

inline void accumulate_pairs(CatalogueOptions const& o, Catalogue const& c, std::vector<double> const& phi,
                             std::vector<double> const& r_edges, PairSums& s) {
  int const n = c.size();
  std::size_t const nb = r_edges.size() - 1;
  double const rmin2 = r_edges.front() * r_edges.front(), rmax2 = r_edges.back() * r_edges.back();
  double const lr0 = std::log(r_edges.front()), dlr = (std::log(r_edges.back()) - lr0) / double(nb);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      if (j == i) continue;
      double const dx = min_image(c.x[j] - c.x[i], o.box), dy = min_image(c.y[j] - c.y[i], o.box);
      double const r2 = dx * dx + dy * dy;
      if (r2 < rmin2 || r2 >= rmax2) continue;
      // Log-spaced edges: the bin from log r directly.
      std::size_t const b = std::min(nb - 1, std::size_t((0.5 * std::log(r2) - lr0) / dlr));
      double const a = std::atan2(dy, dx);
      s.ed[b] += std::cos(2 * (phi[i] - a));
      if (j > i) s.ee[b] += std::cos(2 * (phi[i] - phi[j]));
      s.count[b] += 1;
    }
}

}  // namespace ia

#endif
