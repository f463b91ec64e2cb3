#ifndef LENSING_TESTS_SAMPLE_GAUSSIAN_TARGETS_HPP
#define LENSING_TESTS_SAMPLE_GAUSSIAN_TARGETS_HPP

// Analytic Gaussian targets shared by the sampler tests: exact moments, cheap
// host evaluations, re-entrant (no scratch), so many chains and draws are cheap.

#include <lensing/core/views.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

namespace lensing {
namespace test {

/// Independent zero-mean Gaussian with standard deviations sd (a LogDensity on the host).
struct IndependentGaussian {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  std::vector<double> sd;
  int dimension() const { return int(sd.size()); }
  template <class Space>
  double value_and_gradient(Space const&, View1D<double, memory_space> const& q,
                            View1D<double, memory_space> const& g) const {
    double lp = 0;
    for (std::size_t i = 0; i < sd.size(); ++i) {
      double const r = q(i) / sd[i];
      lp -= 0.5 * r * r;
      g(i) = -r / sd[i];
    }
    return lp;
  }
};

/// d values log-spaced from lo to hi (lo alone when d = 1).
inline std::vector<double> log_spaced(int d, double lo, double hi) {
  std::vector<double> s(static_cast<std::size_t>(d));
  for (int i = 0; i < d; ++i)
    s[std::size_t(i)] = lo * std::pow(hi / lo, d > 1 ? double(i) / (d - 1) : 0.0);
  return s;
}

}  // namespace test
}  // namespace lensing

#endif  // LENSING_TESTS_SAMPLE_GAUSSIAN_TARGETS_HPP
