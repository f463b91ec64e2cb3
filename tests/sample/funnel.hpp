// Neal's funnel in its non-centred parameterisation, shared by the sampler
// tests: v ~ N(0, 3^2), z_i ~ N(0, 1) (i = 1..n), x_i = exp(v/2) z_i, as a
// host LogDensity in (v, z): log p = -v^2/18 - |z|^2/2 (re-entrant).
#ifndef LENSING_TEST_FUNNEL_HPP
#define LENSING_TEST_FUNNEL_HPP

#include <lensing/core/views.hpp>

#include <Kokkos_Core.hpp>

namespace lensing {
namespace test {

struct NonCentredFunnel {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int n = 9;  // number of z_i; n < 0 gives dimension <= 0 (for the bad-input tests)
  int dimension() const { return n + 1; }
  template <class Space>
  double value_and_gradient(Space const&, View1D<double, memory_space> const& q,
                            View1D<double, memory_space> const& g) const {
    double lp = -q(0) * q(0) / 18;
    g(0) = -q(0) / 9;
    for (int i = 1; i <= n; ++i) {
      lp -= 0.5 * q(i) * q(i);
      g(i) = -q(i);
    }
    return lp;
  }
};

}  // namespace test
}  // namespace lensing

#endif
