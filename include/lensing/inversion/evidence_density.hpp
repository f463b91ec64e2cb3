#ifndef LENSING_INVERSION_EVIDENCE_DENSITY_HPP
#define LENSING_INVERSION_EVIDENCE_DENSITY_HPP

/// \file
/// The Bayesian evidence of a pixelated source inversion as a LogDensity of
/// the lens parameters (the source marginalised).

#include <lensing/core/errors.hpp>
#include <lensing/core/views.hpp>
#include <lensing/density/log_density.hpp>
#include <lensing/inversion/source_inversion.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

namespace lensing {

/// log p(theta | d) up to a constant = log eps(lambda; Lens::unpack(theta))
/// of a SourceInversion (Suyu et al. 2006, sec. 3): the lens parameters
/// theta (Lens::pack order, Lens::num_params of them) with the pixelated
/// source marginalised, lambda either fixed or re-maximised at every
/// evaluation (`fixed_lambda <= 0`, the default; Suyu et al.'s most probable
/// lambda).  Add the log prior of theta and map constrained parameters with
/// the bijections of sample/bijections.hpp as for any LogDensity.
///
/// LogDensity (density/log_density.hpp) with scalar_type double and
/// memory_space HostSpace; the rays are shot on the execution space passed
/// to value_and_gradient.  The gradient is the central finite difference of
/// log_evidence_gradient_fd at the lambda of the value (the envelope theorem
/// makes it the gradient of the lambda-maximised evidence too), step
/// `gradient_step` * max(1, |theta_k|): 1 + 2 num_params inversions per
/// call, and a smoothed gradient of an evidence that has kinks where rays
/// cross source-pixel edges — gradient-free samplers can call value() alone.
/// Parameters outside a profile's domain (e.g. theta_E <= 0) give -inf (the
/// samplers' divergence), not an exception.
template <class Lens>
class EvidenceDensity {
 public:
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  using lens_scalar = typename Lens::scalar_type;
  static constexpr bool launches_kernels = true;
  static_assert(Lens::num_params >= 1, "lensing::EvidenceDensity: the lens must have parameters");

  EvidenceDensity(SourceInversion<lens_scalar> inversion, double fixed_lambda = 0, double gradient_step = 1e-4,
                  EvidenceSearch search = {})
      : m_inversion(std::move(inversion)), m_lambda(fixed_lambda), m_step(gradient_step), m_search(search) {
    constexpr char const* where = "lensing::EvidenceDensity";
    check_argument(std::isfinite(fixed_lambda), where, "fixed_lambda must be finite (<= 0: maximise)");
    check_positive(gradient_step, where, "gradient_step");
  }

  int dimension() const { return Lens::num_params; }
  SourceInversion<lens_scalar> const& inversion() const { return m_inversion; }
  /// Host-only state, read-only in evaluations: a copy is independent.
  EvidenceDensity clone() const { return *this; }

  /// log eps at theta = q (and the lambda used, if `lambda_used`).
  template <class ExecutionSpace>
  double value(ExecutionSpace const& space, View1D<double, Kokkos::HostSpace> const& q,
               double* lambda_used = nullptr) const {
    check_extents(q, "lensing::EvidenceDensity::value", "q", "(dimension)", dimension());
    Lens lens;
    if (!unpack(q, lens)) return -std::numeric_limits<double>::infinity();
    InversionResult const r =
        m_lambda > 0 ? m_inversion.solve(space, lens, m_lambda) : m_inversion.maximise_evidence(space, lens, m_search);
    if (lambda_used) *lambda_used = r.lambda;
    return r.log_evidence;
  }

  template <class ExecutionSpace>
  double value_and_gradient(ExecutionSpace const& space, View1D<double, Kokkos::HostSpace> const& q,
                            View1D<double, Kokkos::HostSpace> const& grad) const {
    check_extents(grad, "lensing::EvidenceDensity::value_and_gradient", "grad", "(dimension)", dimension());
    double lambda = 0;
    double const v = value(space, q, &lambda);
    Lens lens;
    if (!std::isfinite(v) || !unpack(q, lens)) {
      for (int k = 0; k < dimension(); ++k)
        grad(k) = std::numeric_limits<double>::quiet_NaN();
      return v;
    }
    std::vector<double> g;
    try {
      g = log_evidence_gradient_fd(space, lens, m_inversion, lambda, m_step);
    } catch (std::invalid_argument const&) {  // a step left the parameters' domain
      g.assign(std::size_t(dimension()), std::numeric_limits<double>::quiet_NaN());
    }
    for (int k = 0; k < dimension(); ++k)
      grad(k) = g[std::size_t(k)];
    return v;
  }

 private:
  // The lens at q; false where its parameters are outside their domain.
  static bool unpack(View1D<double, Kokkos::HostSpace> const& q, Lens& lens) {
    lens_scalar t[Lens::num_params];
    for (int k = 0; k < Lens::num_params; ++k) {
      if (!std::isfinite(q(k))) return false;
      t[k] = lens_scalar(q(k));
    }
    lens = Lens::unpack(t);
    try {
      check_model(lens);
    } catch (std::invalid_argument const&) {
      return false;
    }
    return true;
  }

  SourceInversion<lens_scalar> m_inversion;
  double m_lambda = 0, m_step = 1e-4;
  EvidenceSearch m_search;
};

}  // namespace lensing

#endif  // LENSING_INVERSION_EVIDENCE_DENSITY_HPP
