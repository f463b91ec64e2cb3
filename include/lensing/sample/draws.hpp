#ifndef LENSING_SAMPLE_DRAWS_HPP
#define LENSING_SAMPLE_DRAWS_HPP

/// \file
/// The output of an MCMC run (host, double): draws of every chain with the
/// per-transition sampler statistics, plus CSV output in the column layout of
/// Stan's CSV files (chain, draw, parameters, lp__, accept_stat__, stepsize__,
/// treedepth__, n_leapfrog__, divergent__, energy__).
///
/// Layout: draw i of chain c, parameter k at draws[(c * num_draws + i) * dimension + k]
/// (unconstrained parameters, as sampled; map_draws() applies a constraining map).

#include <lensing/core/errors.hpp>

#include <fstream>
#include <ostream>
#include <string>
#include <vector>

namespace lensing {

/// Draws and statistics of a multi-chain run.
struct SampleResult {
  int num_chains = 0, num_draws = 0, dimension = 0;
  std::vector<double> draws;                               ///< (chain, draw, parameter)
  std::vector<double> lp, accept_stat, step_size, energy;  ///< (chain, draw)
  std::vector<int> tree_depth, n_leapfrog;                 ///< (chain, draw)
  std::vector<char> divergent;                             ///< (chain, draw)
  std::vector<double> final_step_size;                     ///< per chain, after warm-up
  std::vector<std::vector<double>> inverse_metric;         ///< per chain, after warm-up
  long long gradient_evaluations = 0;                      ///< all chains, warm-up and sampling
  long long sampling_gradient_evaluations = 0;             ///< all chains, sampling only
  long long warmup_divergences = 0;
  double seconds = 0;  ///< wall time of the whole run

  double operator()(int chain, int draw, int k) const {
    return draws[(std::size_t(chain) * num_draws + draw) * dimension + k];
  }
  /// Draws of parameter k, (chain, draw) layout, as the diagnostics take them.
  std::vector<double> parameter(int k) const {
    std::vector<double> x(std::size_t(num_chains) * num_draws);
    for (std::size_t j = 0; j < x.size(); ++j)
      x[j] = draws[j * dimension + k];
    return x;
  }
  /// Divergent transitions after warm-up.
  long long divergences() const {
    long long n = 0;
    for (char v : divergent)
      n += v ? 1 : 0;
    return n;
  }
  /// Mean acceptance statistic after warm-up.
  double mean_accept_stat() const {
    double s = 0;
    for (double a : accept_stat)
      s += a;
    return accept_stat.empty() ? 0.0 : s / double(accept_stat.size());
  }
};

/// out[(c, i, :)] = f(draws[(c, i, :)]) for every draw: f(double const* u, double* x)
/// maps the `dimension` unconstrained values to `out_dimension` constrained ones.
template <class F>
std::vector<double> map_draws(SampleResult const& r, int out_dimension, F const& f) {
  check_count(out_dimension, 1, "lensing::map_draws", "out_dimension");
  std::size_t const n = std::size_t(r.num_chains) * r.num_draws;
  std::vector<double> out(n * out_dimension);
  for (std::size_t j = 0; j < n; ++j)
    f(r.draws.data() + j * r.dimension, out.data() + j * out_dimension);
  return out;
}

/// Write draws as CSV. `values` has (chain, draw, names.size()) layout (e.g.
/// from map_draws); empty: the unconstrained draws of `r` are written, named
/// `names` or q[1]..q[d].
inline void write_csv(std::ostream& os, SampleResult const& r, std::vector<std::string> names = {},
                      std::vector<double> const* values = nullptr) {
  constexpr char const* where = "lensing::write_csv";
  std::vector<double> const& v = values ? *values : r.draws;
  if (names.empty()) {
    check_argument(values == nullptr, where, "names are required with constrained values");
    for (int k = 0; k < r.dimension; ++k)
      names.push_back("q[" + std::to_string(k + 1) + "]");
  }
  std::size_t const n = std::size_t(r.num_chains) * r.num_draws, m = names.size();
  check_argument(v.size() == n * m, where,
                 "values must have num_chains * num_draws * names.size() = " + std::to_string(n * m) + " entries");
  os << "chain,draw";
  for (auto const& s : names)
    os << ',' << s;
  os << ",lp__,accept_stat__,stepsize__,treedepth__,n_leapfrog__,divergent__,energy__\n";
  auto const old = os.precision(17);
  for (std::size_t j = 0; j < n; ++j) {
    os << j / r.num_draws + 1 << ',' << j % r.num_draws + 1;
    for (std::size_t k = 0; k < m; ++k)
      os << ',' << v[j * m + k];
    os << ',' << r.lp[j] << ',' << r.accept_stat[j] << ',' << r.step_size[j] << ',' << r.tree_depth[j] << ','
       << r.n_leapfrog[j] << ',' << int(r.divergent[j]) << ',' << r.energy[j] << '\n';
  }
  os.precision(old);
}

/// write_csv to a file; throws std::runtime_error if it cannot be written.
inline void write_csv(std::string const& path, SampleResult const& r, std::vector<std::string> names = {},
                      std::vector<double> const* values = nullptr) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("lensing::write_csv: cannot open '" + path + "' for writing");
  write_csv(f, r, std::move(names), values);
  if (!f) throw std::runtime_error("lensing::write_csv: error writing '" + path + "'");
}

}  // namespace lensing

#endif  // LENSING_SAMPLE_DRAWS_HPP
