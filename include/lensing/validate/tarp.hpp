#ifndef LENSING_VALIDATE_TARP_HPP
#define LENSING_VALIDATE_TARP_HPP

/// \file
/// TARP: Tests of Accuracy with Random Points (Lemos, Coogan, Hezaveh &
/// Perreault-Levasseur 2023, "Sampling-based accuracy testing of posterior
/// estimators for general inference", ICML, arXiv:2302.03026, Algorithm 2).
/// For simulations i = 1..N with true parameters theta_i, n posterior samples
/// theta_ij and a random reference point theta_r,i:
///   f_i = (1/n) #{ j : |theta_ij - theta_r,i| < |theta_i - theta_r,i| },
///   ECP(alpha) = (1/N) #{ i : f_i < alpha },
/// and for an accurate estimator ECP(alpha) = alpha at every alpha, whatever
/// the distribution the reference points are drawn from.  Distances are Euclidean in parameters
/// standardised by the truths (zero mean, unit standard deviation per
/// parameter, as the reference implementation's default normalisation);
/// reference points default to uniform draws over the truths' bounding box in
/// those coordinates.  Bootstrap over simulations (resampled with replacement)
/// gives the mean and standard deviation of ECP at each alpha.  plot_tarp()
/// draws ECP against alpha with the diagonal, a +-2 sd bootstrap band and
/// axis labels (tarp_canvas() returns the canvas).

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/io/png.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace lensing {
namespace validate {

/// Settings of a TARP computation.
struct TarpOptions {
  int num_alpha = 101;     ///< alpha grid 0, 1/(num_alpha-1), ..., 1
  int num_bootstrap = 0;   ///< bootstrap resamples (0: none)
  bool normalize = true;   ///< standardise parameters by the truths' mean and sd
  std::uint64_t seed = 1;  ///< for reference points and bootstrap
};

/// Coverage curve of a TARP test.
struct TarpResult {
  std::vector<double> alpha, ecp;        ///< credibility levels and expected coverage
  std::vector<double> ecp_mean, ecp_sd;  ///< bootstrap mean and sd (empty without bootstrap)
  std::vector<double> f;                 ///< per simulation: fraction of samples closer to the reference
  double max_deviation = 0;              ///< max_alpha |ECP(alpha) - alpha|
  double mean_signed_deviation = 0;      ///< mean over alpha of ECP - alpha (> 0: under-confident)
};

/// TARP from truths (N, P), samples (N, n, P) and optional reference points
/// (N, P; empty: drawn as described above), all row-major and in the original
/// parameter units (reference points too).  Throws std::invalid_argument on
/// inconsistent sizes or non-finite values.
inline TarpResult tarp(std::vector<double> const& truths, std::vector<double> const& samples, int num_simulations,
                       int num_samples, int num_parameters, TarpOptions const& options = {},
                       std::vector<double> references = {}) {
  constexpr char const* where = "lensing::validate::tarp";
  check_count(num_simulations, 1, where, "num_simulations");
  check_count(num_samples, 1, where, "num_samples");
  check_count(num_parameters, 1, where, "num_parameters");
  check_count(options.num_alpha, 2, where, "num_alpha");
  check_count(options.num_bootstrap, 0, where, "num_bootstrap");
  std::size_t const N = std::size_t(num_simulations), n = std::size_t(num_samples), P = std::size_t(num_parameters);
  check_argument(truths.size() == N * P, where, "truths must have num_simulations * num_parameters values");
  check_argument(samples.size() == N * n * P, where,
                 "samples must have num_simulations * num_samples * num_parameters values");
  check_argument(references.empty() || references.size() == N * P, where,
                 "references must be empty or have num_simulations * num_parameters values");
  for (double v : truths)
    check_finite(v, where, "truth");
  for (double v : samples)
    check_finite(v, where, "sample");
  for (double v : references)
    check_finite(v, where, "reference");
  // Standardisation by the truths.
  std::vector<double> mean(P, 0.0), scale(P, 1.0), lo(P, HUGE_VAL), hi(P, -HUGE_VAL);
  for (std::size_t k = 0; k < P; ++k) {
    for (std::size_t s = 0; s < N; ++s) {
      double const v = truths[s * P + k];
      lo[k] = std::min(lo[k], v), hi[k] = std::max(hi[k], v);
    }
    if (options.normalize && N > 1) {
      double m = 0, v2 = 0;
      for (std::size_t s = 0; s < N; ++s)
        m += truths[s * P + k];
      m /= double(N);
      for (std::size_t s = 0; s < N; ++s)
        v2 += (truths[s * P + k] - m) * (truths[s * P + k] - m);
      double const sd = std::sqrt(v2 / double(N - 1));
      mean[k] = m;
      if (sd > 0) scale[k] = sd;
    }
  }
  Rng rng(options.seed, random::purpose_tarp, 0);
  if (references.empty()) {
    references.resize(N * P);
    for (std::size_t s = 0; s < N; ++s)
      for (std::size_t k = 0; k < P; ++k)
        references[s * P + k] = lo[k] + (hi[k] - lo[k]) * rng.uniform();
  }
  auto dist2 = [&](double const* a, double const* b) {
    double d = 0;
    for (std::size_t k = 0; k < P; ++k) {
      double const t = (a[k] - b[k]) / scale[k];
      d += t * t;
    }
    return d;
  };
  TarpResult r;
  r.f.resize(N);
  for (std::size_t s = 0; s < N; ++s) {
    double const* ref = references.data() + s * P;
    double const dt = dist2(truths.data() + s * P, ref);
    std::size_t closer = 0;
    for (std::size_t j = 0; j < n; ++j)
      closer += dist2(samples.data() + (s * n + j) * P, ref) < dt ? 1 : 0;
    r.f[s] = double(closer) / double(n);
  }
  int const na = options.num_alpha;
  auto ecp_of = [&](std::vector<double> const& f, std::vector<double>& out) {
    std::vector<double> sorted = f;
    std::sort(sorted.begin(), sorted.end());
    out.resize(na);
    for (int a = 0; a < na; ++a) {
      double const alpha = double(a) / (na - 1);
      out[a] = double(std::lower_bound(sorted.begin(), sorted.end(), alpha) - sorted.begin()) / double(sorted.size());
    }
  };
  ecp_of(r.f, r.ecp);
  for (int a = 0; a < na; ++a) {
    r.alpha.push_back(double(a) / (na - 1));
    r.max_deviation = std::max(r.max_deviation, std::fabs(r.ecp[a] - r.alpha[a]));
    r.mean_signed_deviation += (r.ecp[a] - r.alpha[a]) / na;
  }
  if (options.num_bootstrap > 0) {
    std::vector<double> sum(na, 0.0), sum2(na, 0.0), fb(N), e;
    for (int b = 0; b < options.num_bootstrap; ++b) {
      for (std::size_t s = 0; s < N; ++s)
        fb[s] = r.f[std::min(N - 1, std::size_t(rng.uniform() * double(N)))];
      ecp_of(fb, e);
      for (int a = 0; a < na; ++a)
        sum[a] += e[a], sum2[a] += e[a] * e[a];
    }
    for (int a = 0; a < na; ++a) {
      double const m = sum[a] / options.num_bootstrap;
      r.ecp_mean.push_back(m);
      r.ecp_sd.push_back(std::sqrt(std::max(0.0, sum2[a] / options.num_bootstrap - m * m)));
    }
  }
  return r;
}

/// ECP against alpha as a canvas (`size` x `size` pixels): the diagonal
/// (grey), a +-2 sd bootstrap band (light blue, when computed) and the ECP
/// curve (blue) in a frame with margins for the labels: ticks 0, 0.5, 1 on
/// both axes, "credibility level alpha" under the x axis, "ECP" beside the y
/// axis, the maximum |ECP - alpha| in the plot's top left corner and `title`
/// (if any) above the frame.  The world window maps [0, 1]^2 onto the frame.
inline io::Canvas tarp_canvas(TarpResult const& r, int size = 300, std::string const& title = "") {
  check_argument(!r.alpha.empty(), "lensing::validate::tarp_canvas", "empty result");
  check_count(size, 120, "lensing::validate::tarp_canvas", "size");
  io::Canvas c(size, size);
  // Frame in pixels: left margin for the y ticks and label, bottom for the x ones.
  int const left = 34, right = 10, top = title.empty() ? 10 : 20, bottom = 34;
  double const pw = size - left - right, ph = size - top - bottom;
  c.set_window(-left / pw, 1 + right / pw, -bottom / ph, 1 + top / ph);
  if (!r.ecp_sd.empty()) {
    for (std::size_t a = 0; a < r.alpha.size(); ++a)
      c.line(r.alpha[a], std::max(0.0, r.ecp_mean[a] - 2 * r.ecp_sd[a]), r.alpha[a],
             std::min(1.0, r.ecp_mean[a] + 2 * r.ecp_sd[a]), {190, 210, 240}, 3);
  }
  io::Rgb const ink{0, 0, 0};
  c.polyline({0, 1, 1, 0}, {0, 0, 1, 1}, ink, true);
  c.line(0, 0, 1, 1, {150, 150, 150});
  c.polyline(r.alpha, r.ecp, {30, 80, 200}, false, 2);
  int const x_axis = int(std::lround(c.to_row(0))), y_axis = int(std::lround(c.to_col(0)));
  for (double t : {0.0, 0.5, 1.0}) {
    std::string const s = t == 0.0 ? "0" : t == 1.0 ? "1" : "0.5";
    int const col = int(std::lround(c.to_col(t))), row = int(std::lround(c.to_row(t)));
    for (int k = 1; k <= 3; ++k) {
      c.set(col, x_axis + k, ink);
      c.set(y_axis - k, row, ink);
    }
    c.text(col - io::Canvas::text_width(s) / 2, x_axis + 6, s, ink);
    c.text(y_axis - 6 - io::Canvas::text_width(s), row - 3, s, ink);
  }
  std::string const xl = "credibility level alpha";
  c.text(y_axis + int(pw / 2) - io::Canvas::text_width(xl) / 2, x_axis + 18, xl, ink);
  c.text(2, int(std::lround(c.to_row(0.75))) - 3, "ECP", ink);
  char dev[64];
  std::snprintf(dev, sizeof dev, "max|ECP-alpha| %.3f", r.max_deviation);
  c.text(y_axis + 5, int(std::lround(c.to_row(1))) + 5, dev, ink);
  if (!title.empty()) c.text(y_axis, 5, title, ink);
  return c;
}

/// Write tarp_canvas(r, size, title) as a PNG.
inline void plot_tarp(std::string const& path, TarpResult const& r, int size = 300, std::string const& title = "") {
  check_argument(!r.alpha.empty(), "lensing::validate::plot_tarp", "empty result");
  tarp_canvas(r, size, title).write(path);
}

}  // namespace validate
}  // namespace lensing

#endif  // LENSING_VALIDATE_TARP_HPP
