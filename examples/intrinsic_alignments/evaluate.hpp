// Validation of painted orientations against the mock's true ones, for
// examples/intrinsic_alignments: the alignment statistic with the tidal
// field in mass bins and the ellipticity-direction (ED) and
// orientation-orientation (EE) pair correlations in radial bins, each for the
// true, generated and random (uniform) orientations of the same held-out
// catalogues; the figures.
//
// Errors: the alignment statistic's standard error over halos; the pair
// correlations' standard error of the mean over the held-out catalogues
// (each catalogue's own estimate counts once, so correlated pairs within a
// catalogue do not shrink the error).
#ifndef LENSING_EXAMPLES_INTRINSIC_ALIGNMENTS_EVALUATE_HPP
#define LENSING_EXAMPLES_INTRINSIC_ALIGNMENTS_EVALUATE_HPP

#include "../common/line_panel.hpp"
#include "catalogue.hpp"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace ia {

/// The statistics of one set of orientations over the held-out catalogues.
struct Statistics {
  std::vector<MeanErr> alignment;  // per mass bin, <cos 2 (phi - theta_t)>
  MeanErr alignment_all;           // over all halos
  std::vector<MeanErr> ed, ee;     // per radial bin, mean and error over catalogues
};

/// Bins of the validation.
struct Bins {
  std::vector<double> log_mass{12.0, 12.25, 12.5, 12.75, 13.0, 13.5, 14.5};
  std::vector<double> radius;  // log-spaced edges, Mpc/h
  Bins() {
    for (int b = 0; b <= 10; ++b)
      radius.push_back(0.5 * std::pow(40.0, b / 10.0));
  }
  std::vector<double> mass_centres() const {
    std::vector<double> c;
    for (std::size_t b = 0; b + 1 < log_mass.size(); ++b)
      c.push_back(std::pow(10.0, 0.5 * (log_mass[b] + log_mass[b + 1])));
    return c;
  }
  std::vector<double> radius_centres() const {
    std::vector<double> c;
    for (std::size_t b = 0; b + 1 < radius.size(); ++b)
      c.push_back(std::sqrt(radius[b] * radius[b + 1]));
    return c;
  }
};

/// Statistics of orientations phi[c] (one vector per catalogue c of
/// `cats`); `pairs` false skips the pair correlations (fast, for progress).
inline Statistics statistics(CatalogueOptions const& o, std::vector<Catalogue> const& cats,
                             std::vector<std::vector<double>> const& phi, Bins const& bins, bool pairs = true) {
  Statistics s;
  std::vector<double> m, p, t;
  for (std::size_t c = 0; c < cats.size(); ++c) {
    m.insert(m.end(), cats[c].mass.begin(), cats[c].mass.end());
    p.insert(p.end(), phi[c].begin(), phi[c].end());
    t.insert(t.end(), cats[c].tidal_angle.begin(), cats[c].tidal_angle.end());
  }
  s.alignment = alignment_in_mass_bins(m, p, t, bins.log_mass);
  std::vector<double> all(p.size());
  for (std::size_t h = 0; h < p.size(); ++h)
    all[h] = std::cos(2 * (p[h] - t[h]));
  s.alignment_all = mean_err(all);
  if (!pairs) return s;
  std::size_t const nb = bins.radius.size() - 1;
  std::vector<std::vector<double>> ed(nb), ee(nb);
  for (std::size_t c = 0; c < cats.size(); ++c) {
    PairSums ps(nb);
    accumulate_pairs(o, cats[c], phi[c], bins.radius, ps);
    for (std::size_t b = 0; b < nb; ++b)
      if (ps.count[b] > 1) {
        ed[b].push_back(ps.ed[b] / ps.count[b]);
        ee[b].push_back(ps.ee[b] / (0.5 * ps.count[b]));
      }
  }
  for (std::size_t b = 0; b < nb; ++b) {
    s.ed.push_back(mean_err(ed[b]));
    s.ee.push_back(mean_err(ee[b]));
  }
  return s;
}

/// Uniform random orientations for every halo of `cats` (stream `seed`).
inline std::vector<std::vector<double>> random_orientations(std::vector<Catalogue> const& cats, std::uint64_t seed) {
  std::vector<std::vector<double>> phi(cats.size());
  for (std::size_t c = 0; c < cats.size(); ++c) {
    lensing::Rng rng(seed, lensing::random::purpose_host, c, 0x5eed);
    phi[c].resize(cats[c].size());
    for (auto& v : phi[c])
      v = pi * (rng.uniform() - 0.5);
  }
  return phi;
}

inline line_panel::Series series_of(std::string const& label, std::vector<double> const& x,
                                    std::vector<MeanErr> const& v, lensing::io::Rgb colour, bool markers = true) {
  line_panel::Series s;
  s.label = label;
  s.colour = colour;
  s.markers = markers;
  for (std::size_t b = 0; b < v.size() && b < x.size(); ++b) {
    if (v[b].count == 0) continue;
    s.x.push_back(x[b]);
    s.y.push_back(v[b].mean);
    s.err.push_back(v[b].err);
  }
  return s;
}

/// Figure: alignment vs mass | ED correlation vs r | EE correlation vs r,
/// true (black), generated (red), random (grey), the model's I_1/I_0 (blue).
inline void plot_statistics(std::string const& path, CatalogueOptions const& o, Bins const& bins,
                            Statistics const& truth, Statistics const& generated, Statistics const& random) {
  lensing::io::Rgb const black{0, 0, 0}, red{210, 30, 30}, grey{150, 150, 150}, blue{40, 70, 200};
  int const pw = 300, ph = 240, left = 50, top = 30, gap = 70;
  lensing::io::Canvas c(left + 3 * pw + 2 * gap + 20, top + ph + 40);
  auto const mc = bins.mass_centres();
  line_panel::Series model;
  model.label = "model I1/I0";
  model.colour = blue;
  for (double lm = bins.log_mass.front(); lm <= bins.log_mass.back() + 1e-9; lm += 0.05) {
    model.x.push_back(std::pow(10.0, lm));
    model.y.push_back(model_alignment(o, std::pow(10.0, lm)));
  }
  line_panel::Options a;
  a.title = "<cos 2(phi - theta_tidal)> vs mass";
  a.xlabel = "M [Msun/h]";
  a.log_x = true;
  a.zero_line = true;
  line_panel::draw(
      c, left, top, pw, ph,
      {model, series_of("true", mc, truth.alignment, black), series_of("generated", mc, generated.alignment, red),
       series_of("random", mc, random.alignment, grey)},
      a);
  auto const rc = bins.radius_centres();
  line_panel::Options e;
  e.title = "ED: <cos 2(phi_i - theta_ij)>";
  e.xlabel = "r [Mpc/h]";
  e.log_x = true;
  e.zero_line = true;
  line_panel::draw(c, left + pw + gap, top, pw, ph,
                   {series_of("true", rc, truth.ed, black), series_of("generated", rc, generated.ed, red),
                    series_of("random", rc, random.ed, grey)},
                   e);
  e.title = "EE: <cos 2(phi_i - phi_j)>";
  line_panel::draw(c, left + 2 * (pw + gap), top, pw, ph,
                   {series_of("true", rc, truth.ee, black), series_of("generated", rc, generated.ee, red),
                    series_of("random", rc, random.ee, grey)},
                   e);
  c.write(path);
}

/// Figure: one catalogue's halos in a square region [x0, x0 + size]^2 as
/// sticks along their major axes (length growing with log mass), true
/// orientations left, generated right, with the tidal stretching axis as
/// faint blue sticks under both.
inline void plot_map(std::string const& path, Catalogue const& cat, std::vector<double> const& generated, double x0,
                     double y0, double size) {
  int const pw = 420, top = 20, gap = 20;
  lensing::io::Canvas c(2 * pw + 3 * gap, pw + top + gap);
  lensing::io::Rgb const black{0, 0, 0}, red{210, 30, 30}, blue{150, 170, 235};
  for (int panel = 0; panel < 2; ++panel) {
    int const col0 = gap + panel * (pw + gap), row0 = top;
    double const W = c.width(), H = c.height(), scale = pw / size;
    double const wx0 = x0 - col0 / scale, wy1 = y0 + size + row0 / scale;
    c.set_window(wx0, wx0 + W / scale, wy1 - H / scale, wy1);
    c.polyline({x0, x0 + size, x0 + size, x0}, {y0, y0, y0 + size, y0 + size}, black, true);
    c.text(col0, 4, panel == 0 ? "true orientations (blue: tidal stretching axis)" : "generated orientations", black);
    std::vector<double> const& phi = panel == 0 ? cat.phi : generated;
    for (int h = 0; h < cat.size(); ++h) {
      if (cat.x[h] < x0 || cat.x[h] > x0 + size || cat.y[h] < y0 || cat.y[h] > y0 + size) continue;
      double const len = size * (0.008 + 0.006 * std::log10(cat.mass[h] / 1e12));
      double const tx = std::cos(cat.tidal_angle[h]), ty = std::sin(cat.tidal_angle[h]);
      c.line(cat.x[h] - len * tx, cat.y[h] - len * ty, cat.x[h] + len * tx, cat.y[h] + len * ty, blue, 3);
      double const ux = std::cos(phi[h]), uy = std::sin(phi[h]);
      c.line(cat.x[h] - len * ux, cat.y[h] - len * uy, cat.x[h] + len * ux, cat.y[h] + len * uy,
             panel == 0 ? black : red, 1);
    }
  }
  c.write(path);
}

/// One line per bin of a statistics table (CSV).
inline void write_statistics_csv(std::string const& path, Bins const& bins, Statistics const& truth,
                                 Statistics const& generated, Statistics const& random) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw std::runtime_error("intrinsic_alignments: cannot write " + path);
  std::fprintf(f, "statistic,bin_lo,bin_hi,count,true,true_err,generated,generated_err,random,random_err\n");
  for (std::size_t b = 0; b < truth.alignment.size(); ++b)
    std::fprintf(f, "alignment_log10M,%g,%g,%ld,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f\n", bins.log_mass[b],
                 bins.log_mass[b + 1], truth.alignment[b].count, truth.alignment[b].mean, truth.alignment[b].err,
                 generated.alignment[b].mean, generated.alignment[b].err, random.alignment[b].mean,
                 random.alignment[b].err);
  std::fprintf(f, "alignment_all,%g,%g,%ld,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f\n", bins.log_mass.front(),
               bins.log_mass.back(), truth.alignment_all.count, truth.alignment_all.mean, truth.alignment_all.err,
               generated.alignment_all.mean, generated.alignment_all.err, random.alignment_all.mean,
               random.alignment_all.err);
  for (int which = 0; which < 2; ++which)
    for (std::size_t b = 0; b < truth.ed.size(); ++b) {
      auto const& t = which == 0 ? truth.ed[b] : truth.ee[b];
      auto const& g = which == 0 ? generated.ed[b] : generated.ee[b];
      auto const& r = which == 0 ? random.ed[b] : random.ee[b];
      std::fprintf(f, "%s_r,%g,%g,%ld,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f\n", which == 0 ? "ED" : "EE", bins.radius[b],
                   bins.radius[b + 1], t.count, t.mean, t.err, g.mean, g.err, r.mean, r.err);
    }
  std::fclose(f);
}

}  // namespace ia

#endif
