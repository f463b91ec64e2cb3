#ifndef LENSING_BENCH_PROFILE_ZOO_HPP
#define LENSING_BENCH_PROFILE_ZOO_HPP
// Representative lens models for the profile benchmarks (parameters typical of
// galaxy-scale lenses on a 4" field).
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/epl.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/nfw.hpp>
#include <lensing/profiles/nfw_ellipse.hpp>
#include <lensing/profiles/point_mass.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/profiles/tnfw.hpp>

namespace lensing {
namespace bench {
template <class S>
auto sie_shear() {
  return make_composite(SIE<S>{S(1.2), S(0.1), S(-0.05), S(0.02), S(-0.01)},
                        ExternalShear<S>{S(0.03), S(-0.02), S(0), S(0)});
}
template <class S>
auto epl() {
  // q ~ 0.8 (|e| = 0.11), gamma = 2.1
  return make_composite(EPL<S>{S(1.2), S(2.1), S(0.1), S(-0.05), S(0.02), S(-0.01)});
}
template <class S>
auto nfw() {
  return make_composite(NFW<S>{S(5.0), S(0.8), S(0.02), S(-0.01)});
}
template <class S>
auto nfw_ellipse_cse() {
  return make_composite(NFWEllipseCSE<S>{S(5.0), S(0.8), S(0.1), S(-0.05), S(0.02), S(-0.01)});
}
template <class S>
auto nfw_ellipse() {
  return make_composite(NFWEllipse<S>{S(5.0), S(0.8), S(0.1), S(-0.05), S(0.02), S(-0.01)});
}
template <class S>
auto point_mass() {
  return make_composite(PointMass<S>{S(1.2), S(0.02), S(-0.01)});
}
template <class S>
auto sis() {
  return make_composite(SIS<S>{S(1.2), S(0.02), S(-0.01)});
}
}  // namespace bench
}  // namespace lensing
#endif
