#ifndef LENSING_VALIDATE_SBC_HPP
#define LENSING_VALIDATE_SBC_HPP

/// \file
/// Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari & Gelman
/// 2018, "Validating Bayesian inference algorithms with simulation-based
/// calibration", arXiv:1804.06788, Algorithm 1).  For each of N simulations
/// theta~ ~ prior, y ~ p(y | theta~), and L (independent: thin MCMC output)
/// draws theta_1..L of the inference algorithm's posterior p(theta | y), the
/// rank of every parameter k,
///   r_k = #{ l : theta_l,k < theta~_k } in {0, ..., L},
/// is uniform on {0, ..., L} when the algorithm is exact.  Uniformity is
/// tested per parameter with Pearson's chi-square over B equal-width rank bins
/// ((L + 1) must be a multiple of B so that every bin has the same
/// probability 1/B): chi2 = sum_b (n_b - N / B)^2 / (N / B), dof = B - 1.
/// Host-side, double.  plot_sbc() writes the rank histograms with the 99%
/// binomial band of a uniform histogram (Talts et al., Fig. 1), labelled with
/// the parameters' names, p-values and rank range (sbc_canvas() returns the
/// canvas).

#include <lensing/core/errors.hpp>
#include <lensing/io/png.hpp>
#include <lensing/validate/statistics.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace lensing {
namespace validate {

/// Ranks and uniformity tests of an SBC run.
struct SbcResult {
  int num_simulations = 0, num_draws = 0, num_parameters = 0, num_bins = 0;
  std::vector<int> ranks;       ///< (simulation, parameter), each in [0, num_draws]
  std::vector<int> histogram;   ///< (parameter, bin)
  std::vector<double> chi2;     ///< per parameter
  std::vector<double> p_value;  ///< per parameter, chi-square with num_bins - 1 dof
};

/// SBC ranks from truths (N, P) and posterior draws (N, L, P), both
/// row-major.  Throws std::invalid_argument for inconsistent sizes,
/// non-finite values, or (L + 1) not a multiple of num_bins.
inline SbcResult sbc_ranks(std::vector<double> const& truths, std::vector<double> const& draws, int num_simulations,
                           int num_draws, int num_parameters, int num_bins) {
  constexpr char const* where = "lensing::validate::sbc_ranks";
  check_count(num_simulations, 1, where, "num_simulations");
  check_count(num_draws, 1, where, "num_draws");
  check_count(num_parameters, 1, where, "num_parameters");
  check_count(num_bins, 2, where, "num_bins");
  std::size_t const N = std::size_t(num_simulations), L = std::size_t(num_draws), P = std::size_t(num_parameters);
  check_argument(truths.size() == N * P, where, "truths must have num_simulations * num_parameters values");
  check_argument(draws.size() == N * L * P, where,
                 "draws must have num_simulations * num_draws * num_parameters values");
  check_argument((num_draws + 1) % num_bins == 0, where, "num_draws + 1 must be a multiple of num_bins");
  for (double v : truths)
    check_finite(v, where, "truth");
  for (double v : draws)
    check_finite(v, where, "draw");
  SbcResult r;
  r.num_simulations = num_simulations;
  r.num_draws = num_draws;
  r.num_parameters = num_parameters;
  r.num_bins = num_bins;
  r.ranks.resize(N * P);
  r.histogram.assign(P * num_bins, 0);
  int const per_bin = (num_draws + 1) / num_bins;
  for (std::size_t s = 0; s < N; ++s)
    for (std::size_t k = 0; k < P; ++k) {
      int rank = 0;
      for (std::size_t l = 0; l < L; ++l)
        rank += draws[(s * L + l) * P + k] < truths[s * P + k] ? 1 : 0;
      r.ranks[s * P + k] = rank;
      ++r.histogram[k * num_bins + rank / per_bin];
    }
  double const expected = double(N) / num_bins;
  for (std::size_t k = 0; k < P; ++k) {
    double c = 0;
    for (int b = 0; b < num_bins; ++b) {
      double const dv = r.histogram[k * num_bins + b] - expected;
      c += dv * dv / expected;
    }
    r.chi2.push_back(c);
    r.p_value.push_back(chi_square_p_value(c, num_bins - 1));
  }
  return r;
}

/// Rank histograms, one panel per parameter side by side, with the uniform
/// expectation (line) and its 99% band (normal approximation to the binomial),
/// as a canvas.  Each panel is labelled with the parameter's name (names[k];
/// "parameter k" when names is empty) and its chi^2 p-value above, and the
/// rank range 0 .. num_draws under its axis.  Throws std::invalid_argument
/// for an empty result or names of the wrong length.
inline io::Canvas sbc_canvas(SbcResult const& r, int panel_width = 240, int height = 200,
                             std::vector<std::string> const& names = {}) {
  char const* where = "lensing::validate::sbc_canvas";
  check_argument(r.num_bins > 0 && r.num_parameters > 0, where, "empty result");
  check_argument(names.empty() || names.size() == std::size_t(r.num_parameters), where,
                 "names must be empty or have num_parameters entries");
  check_count(height, 60, where, "height");
  io::Canvas c(panel_width * r.num_parameters, height);
  // Text rows: 14 pixels above the histograms, 12 below.
  int const top = 14, bottom = 12;
  double const e = double(r.num_simulations) / r.num_bins, p = 1.0 / r.num_bins;
  double const band = 2.576 * std::sqrt(r.num_simulations * p * (1 - p));
  int hmax = 0;
  for (int v : r.histogram)
    hmax = std::max(hmax, v);
  double const ymax = 1.15 * std::max(double(hmax), e + band);
  double const ph = height - top - bottom, y0 = -ymax * bottom / ph, y1 = ymax * (1 + top / ph);
  io::Rgb const ink{0, 0, 0};
  for (int k = 0; k < r.num_parameters; ++k) {
    // Each panel: x in [k (B + 1), k (B + 1) + B + 1) bins (one bin of gap).
    double const x0 = k * (r.num_bins + 1.0);
    c.set_window(0, r.num_parameters * (r.num_bins + 1.0), y0, y1);
    for (double y = std::max(0.0, e - band); y <= e + band; y += 0.5 * ymax / ph)
      c.line(x0, y, x0 + r.num_bins, y, {220, 220, 220});
    for (int b = 0; b < r.num_bins; ++b) {
      double const h = r.histogram[std::size_t(k) * r.num_bins + b];
      for (double y = 0; y <= h; y += 0.5 * ymax / ph)
        c.line(x0 + b + 0.1, y, x0 + b + 0.9, y, {70, 110, 180});
    }
    c.line(x0, e, x0 + r.num_bins, e, {200, 40, 40});
    c.line(x0, 0, x0 + r.num_bins, 0, ink);
    int const left = int(std::lround(c.to_col(x0))), right = int(std::lround(c.to_col(x0 + r.num_bins)));
    char label[96];
    std::snprintf(label, sizeof label, "%s  p = %.3g",
                  names.empty() ? ("parameter " + std::to_string(k)).c_str() : names[std::size_t(k)].c_str(),
                  r.p_value.empty() ? NAN : r.p_value[std::size_t(k)]);
    c.text(left, 3, label, ink);
    int const row = height - bottom + 3;
    c.text(left, row, "rank 0", ink);
    std::string const last = std::to_string(r.num_draws);
    c.text(right - io::Canvas::text_width(last), row, last, ink);
  }
  return c;
}

/// Write sbc_canvas(r, panel_width, height, names) as a PNG.
inline void plot_sbc(std::string const& path, SbcResult const& r, int panel_width = 240, int height = 200,
                     std::vector<std::string> const& names = {}) {
  sbc_canvas(r, panel_width, height, names).write(path);
}

}  // namespace validate
}  // namespace lensing

#endif  // LENSING_VALIDATE_SBC_HPP
