// The PsfOperator concept (psf/psf_operator.hpp): the library's PSF operators
// and a hand-written archetype pass the per-requirement check; operators that
// miss a requirement are rejected by the trait (tested as a value, so the
// build does not fail).

#include <lensing/model/observation.hpp>
#include <lensing/psf/convolution.hpp>
#include <lensing/psf/fft_convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/psf/psf_operator.hpp>

#include <lensing_test.hpp>

namespace {

using Mem = Kokkos::HostSpace;

// The archetype: apply and its adjoint, nothing optional.
struct ArchetypePsf {
  template <class ExecutionSpace, class In, class Out>
  void apply(ExecutionSpace const& space, In const& in, Out const& out) const {
    Kokkos::deep_copy(space, out, in);
  }
  template <class ExecutionSpace, class In, class Out>
  void apply_adjoint(ExecutionSpace const& space, In const& in, Out const& out) const {
    Kokkos::deep_copy(space, out, in);
  }
};

// Extents only: what the Observation detected before (ny()/nx()).
struct ExtentsOnly {
  int ny() const { return 8; }
  int nx() const { return 8; }
};

// No adjoint (the likelihood's backward pass needs it).
struct NoAdjoint {
  int ny() const { return 8; }
  int nx() const { return 8; }
  template <class ExecutionSpace, class In, class Out>
  void apply(ExecutionSpace const&, In const&, Out const&) const {}
};

// apply not const: an Observation applies its PSF from const members.
struct NonConstApply {
  template <class ExecutionSpace, class In, class Out>
  void apply(ExecutionSpace const&, In const&, Out const&) {}
  template <class ExecutionSpace, class In, class Out>
  void apply_adjoint(ExecutionSpace const&, In const&, Out const&) const {}
};

}  // namespace

static_assert(lensing::check_psf_operator<ArchetypePsf, double, Mem>(), "the archetype models PsfOperator");
static_assert(lensing::check_psf_operator<lensing::GaussianFilter<double, Mem>, double, Mem>(), "GaussianFilter");
static_assert(lensing::check_psf_operator<lensing::DirectConvolution<float, Mem>, float, Mem>(), "DirectConvolution");
static_assert(lensing::check_psf_operator<lensing::FftConvolution<double, Mem>, double, Mem>(), "FftConvolution");
static_assert(lensing::check_psf_operator<lensing::NoPsf<double>, double, Mem>(), "NoPsf");

TEST_CASE("PsfOperator concept: apply and apply_adjoint are required, extents optional") {
  CHECK(lensing::is_psf_operator_v<ArchetypePsf, float, Mem>);
  CHECK(lensing::is_psf_operator_v<lensing::GaussianFilter<float, Mem>, float, Mem>);
  CHECK(lensing::has_psf_extents_v<lensing::GaussianFilter<float, Mem>>);
  CHECK_FALSE(lensing::has_psf_extents_v<ArchetypePsf>);
  // ExtentsOnly passed the Observation's old detection (ny()/nx() only).
  CHECK_FALSE(lensing::is_psf_operator_v<ExtentsOnly, double, Mem>);
  CHECK_FALSE(lensing::is_psf_operator_v<NoAdjoint, double, Mem>);
  CHECK_FALSE(lensing::is_psf_operator_v<NonConstApply, double, Mem>);
  CHECK_FALSE(lensing::is_psf_operator_v<int, double, Mem>);
  // An operator built for another scalar is not the observation's operator.
  CHECK_FALSE(lensing::is_psf_operator_v<lensing::GaussianFilter<float, Mem>, double, Mem>);
  CHECK(lensing::detail::has_psf_apply<NoAdjoint, double, Mem>::value);
  CHECK_FALSE(lensing::detail::has_psf_apply_adjoint<NoAdjoint, double, Mem>::value);
}
