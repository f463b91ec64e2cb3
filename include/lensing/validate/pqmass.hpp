#ifndef LENSING_VALIDATE_PQMASS_HPP
#define LENSING_VALIDATE_PQMASS_HPP

/// \file
/// PQMass (Lemos, Sharief, Malkin, Salhi, Stone, Perreault-Levasseur &
/// Hezaveh 2024, "PQMass: probabilistic assessment of the quality of generative
/// models using probability mass estimation", arXiv:2402.04355): a two-sample
/// test of whether samples x_1..n ~ P and y_1..m ~ Q come from the same
/// distribution.  n_R reference points are drawn without replacement from the
/// pooled samples (and removed from them); the Voronoi cells of the
/// references (nearest reference, Euclidean distance) partition the space;
/// with k_P(c), k_Q(c) the counts of the remaining samples in cell c, the
/// chi-square statistic for the homogeneity of two multinomials
///   chi2 = sum_c sum_{S in {P, Q}} (k_S(c) - N_S (k_P(c) + k_Q(c)) / (N_P + N_Q))^2
///          / (N_S (k_P(c) + k_Q(c)) / (N_P + N_Q)),
/// summed over cells with at least one sample, has n_R - 1 degrees of freedom
/// under P = Q; p = Q_chi2(chi2; n_R - 1).  The draw of references is repeated
/// `num_realizations` times; the result holds each chi2 / p-value and their
/// means.  plot_pqmass() draws the histogram of chi2 over realisations with
/// the chi-square density of n_R - 1 dof.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/io/png.hpp>
#include <lensing/validate/statistics.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

namespace lensing {
namespace validate {

/// Settings of PQMass.
struct PqmassOptions {
  int num_references = 100;  ///< n_R Voronoi cells
  int num_realizations = 1;  ///< independent draws of the reference points
  std::uint64_t seed = 1;
};

/// Statistics of a PQMass test.
struct PqmassResult {
  std::vector<double> chi2, p_value;  ///< per realisation
  double mean_chi2 = 0, mean_p_value = 0;
  int dof = 0;
  std::vector<int> counts_p, counts_q;  ///< per cell, first realisation
};

/// chi2 and p-value for given reference points (n_R, d) and samples x (n, d),
/// y (m, d) (row-major; the references are not removed from x or y here).
inline PqmassResult pqmass_with_references(std::vector<double> const& x, std::vector<double> const& y,
                                           std::vector<double> const& references, int dimension) {
  constexpr char const* where = "lensing::validate::pqmass";
  check_count(dimension, 1, where, "dimension");
  std::size_t const d = std::size_t(dimension);
  check_argument(x.size() % d == 0 && y.size() % d == 0 && references.size() % d == 0, where,
                 "sizes must be multiples of dimension");
  std::size_t const n = x.size() / d, m = y.size() / d, nr = references.size() / d;
  check_count((long long)n, 1, where, "number of x samples");
  check_count((long long)m, 1, where, "number of y samples");
  check_count((long long)nr, 2, where, "number of references");
  for (auto const* v : {&x, &y, &references})
    for (double a : *v)
      check_finite(a, where, "value");
  auto cell = [&](double const* p) {
    std::size_t best = 0;
    double bd = HUGE_VAL;
    for (std::size_t c = 0; c < nr; ++c) {
      double s = 0;
      for (std::size_t k = 0; k < d; ++k) {
        double const t = p[k] - references[c * d + k];
        s += t * t;
      }
      if (s < bd) bd = s, best = c;
    }
    return best;
  };
  PqmassResult r;
  r.counts_p.assign(nr, 0);
  r.counts_q.assign(nr, 0);
  for (std::size_t i = 0; i < n; ++i)
    ++r.counts_p[cell(x.data() + i * d)];
  for (std::size_t i = 0; i < m; ++i)
    ++r.counts_q[cell(y.data() + i * d)];
  double const np = double(n), nq = double(m), tot = np + nq;
  double chi2 = 0;
  for (std::size_t c = 0; c < nr; ++c) {
    double const k = r.counts_p[c] + r.counts_q[c];
    if (k == 0) continue;
    double const ep = np * k / tot, eq = nq * k / tot;
    chi2 += (r.counts_p[c] - ep) * (r.counts_p[c] - ep) / ep + (r.counts_q[c] - eq) * (r.counts_q[c] - eq) / eq;
  }
  r.dof = int(nr) - 1;
  r.chi2 = {chi2};
  r.p_value = {chi_square_p_value(chi2, r.dof)};
  r.mean_chi2 = chi2;
  r.mean_p_value = r.p_value[0];
  return r;
}

/// PQMass with references drawn from the pooled samples (see the file comment).
inline PqmassResult pqmass(std::vector<double> const& x, std::vector<double> const& y, int dimension,
                           PqmassOptions const& options = {}) {
  constexpr char const* where = "lensing::validate::pqmass";
  check_count(dimension, 1, where, "dimension");
  check_count(options.num_references, 2, where, "num_references");
  check_count(options.num_realizations, 1, where, "num_realizations");
  std::size_t const d = std::size_t(dimension);
  check_argument(x.size() % d == 0 && y.size() % d == 0, where, "sizes must be multiples of dimension");
  std::size_t const n = x.size() / d, m = y.size() / d, nr = std::size_t(options.num_references);
  check_argument(n + m >= nr + 2, where, "need more samples than reference points");
  PqmassResult out;
  std::vector<std::size_t> idx(n + m);
  for (int rlz = 0; rlz < options.num_realizations; ++rlz) {
    Rng rng(options.seed, random::purpose_pqmass, std::uint64_t(rlz));
    std::iota(idx.begin(), idx.end(), std::size_t(0));
    // Partial Fisher-Yates: the first nr indices are the references.
    for (std::size_t i = 0; i < nr; ++i) {
      std::size_t const j = i + std::min(idx.size() - i - 1, std::size_t(rng.uniform() * double(idx.size() - i)));
      std::swap(idx[i], idx[j]);
    }
    std::vector<double> refs, xs, ys;
    std::vector<char> is_ref(n + m, 0);
    for (std::size_t i = 0; i < nr; ++i) {
      is_ref[idx[i]] = 1;
      double const* p = idx[i] < n ? x.data() + idx[i] * d : y.data() + (idx[i] - n) * d;
      refs.insert(refs.end(), p, p + d);
    }
    for (std::size_t i = 0; i < n; ++i)
      if (!is_ref[i]) xs.insert(xs.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
    for (std::size_t i = 0; i < m; ++i)
      if (!is_ref[n + i]) ys.insert(ys.end(), y.begin() + i * d, y.begin() + (i + 1) * d);
    check_argument(!xs.empty() && !ys.empty(), where, "every sample of one set was drawn as a reference");
    auto const r = pqmass_with_references(xs, ys, refs, dimension);
    if (rlz == 0) out.counts_p = r.counts_p, out.counts_q = r.counts_q;
    out.dof = r.dof;
    out.chi2.push_back(r.chi2[0]);
    out.p_value.push_back(r.p_value[0]);
  }
  for (std::size_t i = 0; i < out.chi2.size(); ++i) {
    out.mean_chi2 += out.chi2[i] / double(out.chi2.size());
    out.mean_p_value += out.p_value[i] / double(out.chi2.size());
  }
  return out;
}

/// Histogram of chi2 over realisations (blue) with the chi-square density of
/// dof degrees of freedom scaled to the histogram (red).
inline void plot_pqmass(std::string const& path, PqmassResult const& r, int width = 360, int height = 240) {
  check_argument(!r.chi2.empty() && r.dof > 0, "lensing::validate::plot_pqmass", "empty result");
  double const k = r.dof;
  double xmax = k + 6 * std::sqrt(2 * k);
  for (double v : r.chi2)
    xmax = std::max(xmax, 1.05 * v);
  int const bins = 30;
  std::vector<double> h(bins, 0.0);
  double const w = xmax / bins;
  for (double v : r.chi2)
    h[std::min(bins - 1, int(v / w))] += 1;
  // chi-square density f(x) = x^(k/2-1) e^(-x/2) / (2^(k/2) Gamma(k/2)), times count * bin width.
  std::vector<double> xs, ys;
  double ymax = 1;
  for (double v : h)
    ymax = std::max(ymax, v);
  for (int i = 1; i <= 200; ++i) {
    double const xv = xmax * i / 200.0;
    double const logf = (k / 2 - 1) * std::log(xv) - xv / 2 - (k / 2) * std::log(2.0) - std::lgamma(k / 2);
    xs.push_back(xv);
    ys.push_back(std::exp(logf) * double(r.chi2.size()) * w);
    ymax = std::max(ymax, ys.back());
  }
  io::Canvas c(width, height);
  c.set_window(0, xmax, 0, 1.1 * ymax);
  for (int b = 0; b < bins; ++b)
    for (double y = 0; y <= h[b]; y += 0.5 * ymax / height)
      c.line(b * w + 0.1 * w, y, (b + 0.9) * w, y, {70, 110, 180});
  c.polyline(xs, ys, {200, 40, 40}, false, 2);
  c.line(0, 0, xmax, 0, {0, 0, 0});
  c.write(path);
}

}  // namespace validate
}  // namespace lensing

#endif  // LENSING_VALIDATE_PQMASS_HPP
