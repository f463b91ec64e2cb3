// Calibration of posterior draws on held-out simulations, shared by the
// simulation-based-inference examples (npe_lens, nre_lens): SBC rank
// histograms with their chi^2 uniformity p-values (validate/sbc.hpp), the
// TARP expected-coverage curve with its bootstrap band (validate/tarp.hpp),
// both plotted to PNG, the RMS error of the posterior mean per parameter, and
// the table of these numbers as text.
#ifndef LENSING_EXAMPLES_COMMON_CALIBRATION_REPORT_HPP
#define LENSING_EXAMPLES_COMMON_CALIBRATION_REPORT_HPP

#include <lensing/validate/sbc.hpp>
#include <lensing/validate/tarp.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace examples {

/// The numbers of calibration_report and its text.
struct CalibrationReport {
  std::vector<double> sbc_p, rms;
  double tarp_max_dev = 0, tarp_mean_dev = 0, tarp_band = 0;
  std::string text;  ///< the parameter table and the TARP line
};

/// SBC (20 bins) and TARP (100 bootstrap resamples, `seed`) of draws (n, L, D)
/// row-major against truths (n, D) in the same units; writes the plots to
/// sbc_png (panels named by `names`) and tarp_png (titled `title`), each
/// skipped when its path is empty.  The text: a header line, one
/// line per parameter (name, SBC p, RMS(posterior mean − truth), prior sd)
/// and the TARP line.
inline CalibrationReport calibration_report(std::vector<double> const& truths, std::vector<double> const& draws, int n,
                                            int L, int D, std::vector<std::string> const& names,
                                            std::vector<double> const& prior_sd, std::uint64_t seed,
                                            std::string const& sbc_png, std::string const& tarp_png,
                                            std::string const& title = "") {
  CalibrationReport c;
  auto const sbc = lensing::validate::sbc_ranks(truths, draws, n, L, D, 20);
  if (!sbc_png.empty()) lensing::validate::plot_sbc(sbc_png, sbc, 240, 200, names);
  lensing::validate::TarpOptions to;
  to.num_bootstrap = 100;
  to.seed = seed;
  auto const tr = lensing::validate::tarp(truths, draws, n, L, D, to);
  if (!tarp_png.empty()) lensing::validate::plot_tarp(tarp_png, tr, 300, title);
  c.sbc_p = sbc.p_value;
  c.tarp_max_dev = tr.max_deviation;
  c.tarp_mean_dev = tr.mean_signed_deviation;
  c.tarp_band = tr.ecp_sd.empty() ? 0.0 : 2 * tr.ecp_sd[tr.ecp_sd.size() / 2];
  // Accuracy of the posterior mean against the prior's spread.
  for (int j = 0; j < D; ++j) {
    double se = 0;
    for (long i = 0; i < n; ++i) {
      double m = 0;
      for (int s = 0; s < L; ++s)
        m += draws[std::size_t((i * L + s) * D + j)] / L;
      se += (m - truths[std::size_t(i * D + j)]) * (m - truths[std::size_t(i * D + j)]);
    }
    c.rms.push_back(std::sqrt(se / double(n)));
  }
  c.text = "param      SBC chi2 p (20 bins)   RMS(post. mean - truth)   prior sd\n";
  for (int j = 0; j < D; ++j) {
    char line[160];
    std::snprintf(line, sizeof line, "%-9s  %20.3g   %23.4f   %8.4f\n", names[std::size_t(j)].c_str(),
                  c.sbc_p[std::size_t(j)], c.rms[std::size_t(j)], prior_sd[std::size_t(j)]);
    c.text += line;
  }
  char line[200];
  std::snprintf(line, sizeof line,
                "TARP: max |ECP - alpha| = %.4f, mean (ECP - alpha) = %+.4f (> 0: under-confident); "
                "2 sd bootstrap band at alpha = 0.5: %.4f\n",
                c.tarp_max_dev, c.tarp_mean_dev, c.tarp_band);
  c.text += line;
  return c;
}

}  // namespace examples

#endif  // LENSING_EXAMPLES_COMMON_CALIBRATION_REPORT_HPP
