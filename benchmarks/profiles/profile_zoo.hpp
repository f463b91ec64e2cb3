#ifndef LENSING_BENCH_PROFILE_ZOO_HPP
#define LENSING_BENCH_PROFILE_ZOO_HPP
// Representative lens models for the profile benchmarks.
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>

namespace lensing {
namespace bench {
template <class S>
auto sie_shear() {
  // The shear is a second SIE-free component once ExternalShear exists; for
  // now an SIS stands in (see benchmarks/README.md).
  return make_composite(SIE<S>{S(1.2), S(0.1), S(-0.05), S(0.02), S(-0.01)});
}
template <class S>
auto sis() {
  return make_composite(SIS<S>{S(1.2), S(0.02), S(-0.01)});
}
}  // namespace bench
}  // namespace lensing
#endif
