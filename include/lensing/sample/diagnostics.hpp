#ifndef LENSING_SAMPLE_DIAGNOSTICS_HPP
#define LENSING_SAMPLE_DIAGNOSTICS_HPP

/// \file
/// MCMC convergence diagnostics with Stan's definitions (Vehtari, Gelman,
/// Simpson, Carpenter & Buerkner 2021, "Rank-normalization, folding, and
/// localization: an improved R-hat", Bayesian Analysis 16, 667; posterior R
/// package): split R-hat, rank-normalised R-hat, bulk and tail effective
/// sample sizes, Monte Carlo standard error of the mean, and energy BFMI
/// (Betancourt 2016, arXiv:1604.00695).  A printed summary table.
///
/// Every function takes one parameter's draws x in (chain, draw) layout:
/// x[c * num_draws + i] (SampleResult::parameter(k) gives it).  Chains are
/// split in halves (the middle draw of odd chains dropped).
///   R-hat = sqrt(((n-1)/n W + B/n) / W) over the split chains;
///   rank-normalised R-hat = max(R-hat of z-scores of ranks, R-hat of
///     z-scores of ranks of |x - median|), z = Phi^{-1}((r - 3/8)/(S + 1/4));
///   ESS = m n / tau, tau = -1 + 2 sum_t rho_t with Geyer's initial monotone
///     sequence on the combined autocorrelation estimate (Vehtari et al. eq. 10);
///   bulk ESS: ESS of the rank-normalised split chains; tail ESS: min of the
///     ESS of the indicators x <= q5%, x <= q95%;  MCSE(mean) = sd / sqrt(ESS).
/// A constant parameter gives R-hat 1 and ESS m n (no NaN).

#include <lensing/core/errors.hpp>
#include <lensing/core/special.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

namespace lensing {
namespace diagnostics {

namespace detail {
// Split chains: returns (2m chains of n/2 draws), chain-major.
inline std::vector<double> split(std::vector<double> const& x, int m, int n, int& half) {
  check_count(m, 1, "lensing::diagnostics", "number of chains");
  check_count(n, 4, "lensing::diagnostics", "draws per chain");
  check_argument(x.size() == std::size_t(m) * n, "lensing::diagnostics", "x must have num_chains * num_draws values");
  for (double v : x)
    check_finite(v, "lensing::diagnostics", "draw");
  half = n / 2;
  std::vector<double> out(std::size_t(2) * m * half);
  for (int c = 0; c < m; ++c)
    for (int i = 0; i < half; ++i) {
      out[(std::size_t(2) * c) * half + i] = x[std::size_t(c) * n + i];
      out[(std::size_t(2) * c + 1) * half + i] = x[std::size_t(c) * n + (n - half) + i];
    }
  return out;
}

// Inverse standard normal CDF (the library's one copy, core/special.hpp).
inline double inv_phi(double p) { return math::normal_quantile(p); }

// z-scores of the (average) ranks of all values.
inline std::vector<double> rank_normalize(std::vector<double> const& x) {
  std::size_t const s = x.size();
  std::vector<std::size_t> idx(s);
  std::iota(idx.begin(), idx.end(), std::size_t(0));
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return x[a] < x[b]; });
  std::vector<double> z(s);
  for (std::size_t i = 0; i < s;) {
    std::size_t j = i;
    while (j + 1 < s && x[idx[j + 1]] == x[idx[i]])
      ++j;
    double const rank = 0.5 * double(i + j) + 1;  // average 1-based rank of ties
    for (std::size_t k = i; k <= j; ++k)
      z[idx[k]] = inv_phi((rank - 0.375) / (double(s) + 0.25));
    i = j + 1;
  }
  return z;
}

inline double rhat_of(std::vector<double> const& y, int m, int n) {
  std::vector<double> means(m), vars(m);
  for (int c = 0; c < m; ++c) {
    double s = 0;
    for (int i = 0; i < n; ++i)
      s += y[std::size_t(c) * n + i];
    means[c] = s / n;
    double v = 0;
    for (int i = 0; i < n; ++i)
      v += (y[std::size_t(c) * n + i] - means[c]) * (y[std::size_t(c) * n + i] - means[c]);
    vars[c] = v / (n - 1);
  }
  double const grand = std::accumulate(means.begin(), means.end(), 0.0) / m;
  double b = 0;
  for (double mu : means)
    b += (mu - grand) * (mu - grand);
  b = m > 1 ? b * n / (m - 1) : 0.0;
  double const w = std::accumulate(vars.begin(), vars.end(), 0.0) / m;
  if (!(w > 0)) return 1.0;
  return std::sqrt(((n - 1.0) / n * w + b / n) / w);
}

// ESS of m chains of n draws (no splitting here).
inline double ess_of(std::vector<double> const& y, int m, int n) {
  std::vector<double> acov(std::size_t(m) * n, 0.0), means(m);
  for (int c = 0; c < m; ++c) {
    double const* v = y.data() + std::size_t(c) * n;
    double s = 0;
    for (int i = 0; i < n; ++i)
      s += v[i];
    means[c] = s / n;
  }
  // Autocovariances (biased, 1/n) are computed lazily, lag by lag, up to the truncation.
  auto acov_mean = [&](int t) {
    double tot = 0;
    for (int c = 0; c < m; ++c) {
      double const* v = y.data() + std::size_t(c) * n;
      double s = 0;
      for (int i = 0; i + t < n; ++i)
        s += (v[i] - means[c]) * (v[i + t] - means[c]);
      tot += s / n;
    }
    return tot / m;
  };
  double const acov0 = acov_mean(0);
  double const mean_var = acov0 * n / (n - 1.0);
  double var_plus = mean_var * (n - 1.0) / n;
  if (m > 1) {
    double const g = std::accumulate(means.begin(), means.end(), 0.0) / m;
    double b = 0;
    for (double mu : means)
      b += (mu - g) * (mu - g);
    var_plus += b / (m - 1);
  }
  double const total = double(m) * n;
  if (!(var_plus > 0)) return total;
  std::vector<double> rho(n, 0.0);
  rho[0] = 1;
  double even = 1, odd = 1 - (mean_var - acov_mean(1)) / var_plus;
  rho[1] = odd;
  int t = 0;
  while (t < n - 5 && even + odd > 0) {
    t += 2;
    even = 1 - (mean_var - acov_mean(t)) / var_plus;
    odd = 1 - (mean_var - acov_mean(t + 1)) / var_plus;
    if (even + odd >= 0) {
      rho[t] = even;
      rho[t + 1] = odd;
    }
  }
  int const max_t = t;
  if (even > 0) rho[max_t] = even;
  for (t = 2; t <= max_t - 2; t += 2)  // initial monotone sequence
    if (rho[t] + rho[t + 1] > rho[t - 2] + rho[t - 1]) rho[t] = rho[t + 1] = 0.5 * (rho[t - 2] + rho[t - 1]);
  double tau = -1;
  for (int k = 0; k < max_t; ++k)
    tau += 2 * rho[k];
  tau += rho[max_t];
  tau = std::max(tau, 1.0 / std::log10(total));
  return total / tau;
}

inline double quantile(std::vector<double> x, double p) {
  std::sort(x.begin(), x.end());
  double const h = (x.size() - 1) * p;  // type 7 (R default)
  std::size_t const lo = std::size_t(std::floor(h));
  std::size_t const hi = std::min(lo + 1, x.size() - 1);
  return x[lo] + (h - double(lo)) * (x[hi] - x[lo]);
}
}  // namespace detail

/// Classic split R-hat (no rank normalisation).
inline double split_rhat(std::vector<double> const& x, int num_chains, int num_draws) {
  int h;
  auto const y = detail::split(x, num_chains, num_draws, h);
  return detail::rhat_of(y, 2 * num_chains, h);
}

/// Rank-normalised split R-hat: max of the bulk and folded (tail) versions.
inline double rhat(std::vector<double> const& x, int num_chains, int num_draws) {
  int h;
  auto const y = detail::split(x, num_chains, num_draws, h);
  double const med = detail::quantile(y, 0.5);
  std::vector<double> folded(y.size());
  for (std::size_t i = 0; i < y.size(); ++i)
    folded[i] = std::fabs(y[i] - med);
  return std::max(detail::rhat_of(detail::rank_normalize(y), 2 * num_chains, h),
                  detail::rhat_of(detail::rank_normalize(folded), 2 * num_chains, h));
}

/// ESS of the mean (split chains, no rank normalisation): for MCSE of the mean.
inline double ess_mean(std::vector<double> const& x, int num_chains, int num_draws) {
  int h;
  auto const y = detail::split(x, num_chains, num_draws, h);
  return detail::ess_of(y, 2 * num_chains, h);
}

/// Bulk ESS: ESS of the rank-normalised split chains.
inline double ess_bulk(std::vector<double> const& x, int num_chains, int num_draws) {
  int h;
  auto const y = detail::split(x, num_chains, num_draws, h);
  return detail::ess_of(detail::rank_normalize(y), 2 * num_chains, h);
}

/// Tail ESS: min of the ESS of I(x <= q05) and I(x <= q95).
inline double ess_tail(std::vector<double> const& x, int num_chains, int num_draws) {
  int h;
  auto const y = detail::split(x, num_chains, num_draws, h);
  double e = HUGE_VAL;
  for (double p : {0.05, 0.95}) {
    double const q = detail::quantile(y, p);
    std::vector<double> ind(y.size());
    for (std::size_t i = 0; i < y.size(); ++i)
      ind[i] = y[i] <= q ? 1.0 : 0.0;
    e = std::min(e, detail::ess_of(ind, 2 * num_chains, h));
  }
  return e;
}

/// Monte Carlo standard error of the mean: sd / sqrt(ess_mean).
inline double mcse_mean(std::vector<double> const& x, int num_chains, int num_draws) {
  double const n = double(x.size());
  double const mu = std::accumulate(x.begin(), x.end(), 0.0) / n;
  double v = 0;
  for (double xi : x)
    v += (xi - mu) * (xi - mu);
  return std::sqrt(v / (n - 1) / ess_mean(x, num_chains, num_draws));
}

/// Energy Bayesian fraction of missing information of one chain:
/// sum (E_i - E_{i-1})^2 / sum (E_i - mean E)^2.  Values below 0.3 flag
/// poorly explored energy (heavy tails).
inline double ebfmi(double const* energy, int n) {
  check_count(n, 2, "lensing::diagnostics::ebfmi", "number of draws");
  double mean = 0;
  for (int i = 0; i < n; ++i)
    mean += energy[i];
  mean /= n;
  double num = 0, den = 0;
  for (int i = 0; i < n; ++i) {
    if (i > 0) num += (energy[i] - energy[i - 1]) * (energy[i] - energy[i - 1]);
    den += (energy[i] - mean) * (energy[i] - mean);
  }
  return den > 0 ? num / den : 0.0;
}

/// One row of the summary table.
struct ParameterSummary {
  std::string name;
  double mean, sd, mcse, q5, q50, q95, ess_bulk, ess_tail, rhat;
};

/// Summaries of every parameter of `values` ((chain, draw, parameter) layout).
inline std::vector<ParameterSummary> summarize(std::vector<double> const& values, int num_chains, int num_draws,
                                               std::vector<std::string> const& names) {
  std::size_t const n = std::size_t(num_chains) * num_draws, m = names.size();
  check_argument(m > 0 && values.size() == n * m, "lensing::diagnostics::summarize",
                 "values must have num_chains * num_draws * names.size() entries");
  std::vector<ParameterSummary> out;
  for (std::size_t k = 0; k < m; ++k) {
    std::vector<double> x(n);
    for (std::size_t j = 0; j < n; ++j)
      x[j] = values[j * m + k];
    ParameterSummary s;
    s.name = names[k];
    s.mean = std::accumulate(x.begin(), x.end(), 0.0) / double(n);
    double v = 0;
    for (double xi : x)
      v += (xi - s.mean) * (xi - s.mean);
    s.sd = std::sqrt(v / double(n - 1));
    s.mcse = mcse_mean(x, num_chains, num_draws);
    s.q5 = detail::quantile(x, 0.05);
    s.q50 = detail::quantile(x, 0.5);
    s.q95 = detail::quantile(x, 0.95);
    s.ess_bulk = ess_bulk(x, num_chains, num_draws);
    s.ess_tail = ess_tail(x, num_chains, num_draws);
    s.rhat = rhat(x, num_chains, num_draws);
    out.push_back(s);
  }
  return out;
}

/// Print the table (name, mean, MCSE, sd, 5/50/95% quantiles, bulk/tail ESS, R-hat).
inline void print_summary(std::ostream& os, std::vector<ParameterSummary> const& rows) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-14s %11s %9s %10s %10s %10s %10s %8s %8s %7s\n", "parameter", "mean", "mcse", "sd",
                "5%", "50%", "95%", "ess_bulk", "ess_tail", "rhat");
  os << buf;
  for (auto const& s : rows) {
    std::snprintf(buf, sizeof buf, "%-14s %11.4g %9.2g %10.4g %10.4g %10.4g %10.4g %8.0f %8.0f %7.4f\n", s.name.c_str(),
                  s.mean, s.mcse, s.sd, s.q5, s.q50, s.q95, s.ess_bulk, s.ess_tail, s.rhat);
    os << buf;
  }
}

}  // namespace diagnostics
}  // namespace lensing

#endif  // LENSING_SAMPLE_DIAGNOSTICS_HPP
