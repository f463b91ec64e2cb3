// A downstream program that uses only the samplers (and the umbrella header,
// which leaves out the FFT and FITS headers when their components are not
// linked): NUTS on a 2-D Gaussian, checked against its known mean and
// standard deviations (exit code 1 if wrong).
#include <lensing/lensing.hpp>
#include <lensing/sample/sampler.hpp>

#include <cmath>
#include <cstdio>

#if defined(LENSING_HAS_FITS) || defined(LENSING_HAS_FFT) || defined(LENSING_HAS_HDF5)
#error "lensing_samplers_only links only lensing::lensing"
#endif

namespace {

/// log p(q) = -(q0 - 1)^2 / 2 - q1^2 / (2 * 4): mean (1, 0), sd (1, 2).
struct Gaussian2 {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int dimension() const { return 2; }
  template <class ExecutionSpace>
  double value_and_gradient(ExecutionSpace const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& grad) const {
    grad(0) = -(q(0) - 1.0);
    grad(1) = -q(1) / 4.0;
    return -0.5 * (q(0) - 1.0) * (q(0) - 1.0) - q(1) * q(1) / 8.0;
  }
};

}  // namespace

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard guard(argc, argv);
  lensing::SamplerOptions options;
  options.num_chains = 2;
  options.num_warmup = 500;
  options.num_draws = 2000;
  options.seed = 7;
  auto const r = lensing::sample(Kokkos::DefaultHostExecutionSpace(), Gaussian2{}, options);
  double m[2] = {0, 0}, s[2] = {0, 0};
  int const n = r.num_chains * r.num_draws;
  for (int c = 0; c < r.num_chains; ++c)
    for (int i = 0; i < r.num_draws; ++i)
      for (int k = 0; k < 2; ++k) {
        m[k] += r(c, i, k) / n;
        s[k] += r(c, i, k) * r(c, i, k) / n;
      }
  double const sd0 = std::sqrt(s[0] - m[0] * m[0]), sd1 = std::sqrt(s[1] - m[1] * m[1]);
  // 4000 draws with an effective size of at least ~1000: the Monte Carlo
  // error of the mean is about sd / 30, of the sd about sd / 45; the bounds
  // are ~5 of those.
  bool const ok = std::fabs(m[0] - 1.0) < 0.2 && std::fabs(m[1]) < 0.35 && std::fabs(sd0 - 1.0) < 0.15 &&
                  std::fabs(sd1 - 2.0) < 0.3;
  std::printf("lensing samplers-only consumer: mean (%.3f, %.3f), sd (%.3f, %.3f): %s\n", m[0], m[1], sd0, sd1,
              ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
