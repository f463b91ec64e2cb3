// ComponentPack (core/component_pack.hpp): the parameter packing shared by
// the mass Composite and CompositeLight.  The same checks run on one
// composite of each kind: layout (offsets, names, component_of_param), the
// pack/unpack round trip in a kernel, and check() naming the bad parameter.
#include <lensing/core/component_pack.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/sources/composite_light.hpp>
#include <lensing/sources/gaussian.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lt = lensing::test;

namespace {

// A repeated component type, so a wrong offset would read a neighbour of the
// same type and pass a type-only check.
template <class Scalar>
using MassC = lensing::Composite<lensing::SIE<Scalar>, lensing::SIS<Scalar>, lensing::SIS<Scalar>>;
template <class Scalar>
using LightC =
    lensing::CompositeLight<lensing::SersicEllipse<Scalar>, lensing::Gaussian<Scalar>, lensing::Gaussian<Scalar>>;

// Valid parameter vectors (every entry distinct, so a permutation shows).
std::vector<double> mass_theta() { return {1.1, 0.1, -0.05, 0.01, -0.02, 0.2, 0.8, 0.3, 0.15, -0.6, 0.45}; }
std::vector<double> light_theta() {
  return {2.0, 0.4, 2.5, 0.05, -0.1, 0.02, 0.03, 1.5, 0.3, -0.2, 0.25, 0.7, 0.45, 0.6, -0.35};
}

template <class C>
struct components_of;
template <class... P>
struct components_of<lensing::Composite<P...>> {
  using layout = lensing::ParamLayout<P...>;
  using pack = lensing::ComponentPack<lensing::Composite<P...>, P...>;
  using first = lensing::tuple_element_t<0, lensing::Tuple<P...>>;
};
template <class... L>
struct components_of<lensing::CompositeLight<L...>> {
  using layout = lensing::ParamLayout<L...>;
  using pack = lensing::ComponentPack<lensing::CompositeLight<L...>, L...>;
  using first = lensing::tuple_element_t<0, lensing::Tuple<L...>>;
};

// Component I of C: its block of the layout and its names.
template <class C, std::size_t I>
void check_block() {
  using P = std::decay_t<decltype(std::declval<C const&>().template get<I>())>;
  CAPTURE(I);
  CHECK(C::template offset<I> == C::offsets[I]);
  CHECK(C::offsets[I + 1] - C::offsets[I] == P::num_params);
  for (int j = 0; j < P::num_params; ++j) {
    CAPTURE(j);
    CHECK(std::strcmp(C::param_names[C::offsets[I] + j], P::param_names[j]) == 0);
    CHECK(C::component_of_param(C::offsets[I] + j) == int(I));
  }
}

template <class C, std::size_t... I>
void check_layout(std::index_sequence<I...>) {
  using Info = components_of<C>;
  static_assert(std::is_base_of<typename Info::pack, C>::value, "the composite is a ComponentPack");
  static_assert(std::is_trivially_copyable<C>::value, "kernel-safe");
  static_assert(std::is_same<typename C::scalar_type, typename Info::first::scalar_type>::value, "");
  static_assert(C::num_components == int(sizeof...(I)), "");
  static_assert(C::num_params == Info::layout::num_params, "");
  CHECK(C::offsets == Info::layout::offsets);
  CHECK(C::offsets[0] == 0);
  CHECK(C::param_names.size() == std::size_t(C::num_params));
  (check_block<C, I>(), ...);
}

// theta -> unpack -> pack in a kernel, and each component's own pack into
// its block; both copies only, so equal to theta bit for bit.
template <class Space, class C>
void check_round_trip(std::vector<double> const& theta) {
  using Scalar = typename C::scalar_type;
  using Mem = typename Space::memory_space;
  constexpr int n = C::num_params;
  REQUIRE(theta.size() == std::size_t(n));
  Kokkos::View<Scalar*, Mem> in("in", n), whole("whole", n), blocks("blocks", n);
  lt::set_values(in, theta);
  Kokkos::parallel_for(
      "round_trip", Kokkos::RangePolicy<Space>(0, 1), KOKKOS_LAMBDA(int) {
        C const c = C::unpack(in.data());
        c.pack(whole.data());
        Scalar* const b = blocks.data();
        c.for_each_offset([&](auto const& p, int off) { p.pack(b + off); });
      });
  Kokkos::fence();
  // The Scalar copy of theta, exactly (float rounds each entry once on input).
  std::vector<double> expected(n);
  for (int k = 0; k < n; ++k)
    expected[k] = double(Scalar(theta[k]));
  CHECK(lt::host_values(whole) == expected);
  CHECK(lt::host_values(blocks) == expected);
}

// Parameter k set to NaN, the rest valid: check() must throw the failing
// component's own message, which names parameter k (param_names[k]).
template <class C, std::size_t... I>
void check_reports_parameter(std::vector<double> const& theta, std::index_sequence<I...>) {
  CHECK_NOTHROW(C::unpack(theta.data()).check());
  for (int k = 0; k < C::num_params; ++k) {
    CAPTURE(k);
    std::vector<double> bad = theta;
    bad[k] = std::numeric_limits<double>::quiet_NaN();
    C const c = C::unpack(bad.data());
    CHECK_THROWS_AS(c.check(), std::invalid_argument);
    std::string const msg = lt::error_message([&] { c.check(); });
    CAPTURE(msg);
    CHECK(msg.find(std::string(C::param_names[k]) + " must be") != std::string::npos);
    // The same message as the component alone (a valid neighbour of the same
    // type would give none: this pins down the component).
    int const comp = C::component_of_param(k);
    std::string own;
    ((int(I) == comp ? (void)(own = lt::error_message([&] { c.template get<I>().check(); })) : (void)0), ...);
    CHECK(msg == own);
  }
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("ComponentPack: one layout for mass and light composites", Config, lt::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  check_layout<MassC<Scalar>>(std::make_index_sequence<3>{});
  check_layout<LightC<Scalar>>(std::make_index_sequence<3>{});
  static_assert(MassC<Scalar>::template offset<1> == 5 && MassC<Scalar>::template offset<2> == 8 &&
                MassC<Scalar>::num_params == 11);
  static_assert(LightC<Scalar>::template offset<1> == 7 && LightC<Scalar>::template offset<2> == 11 &&
                LightC<Scalar>::num_params == 15);
  check_round_trip<Space, MassC<Scalar>>(mass_theta());
  check_round_trip<Space, LightC<Scalar>>(light_theta());
}

TEST_CASE("ComponentPack: check() reports the failing component's parameter") {
  check_reports_parameter<MassC<double>>(mass_theta(), std::make_index_sequence<3>{});
  check_reports_parameter<LightC<double>>(light_theta(), std::make_index_sequence<3>{});
  // The second of two SIS: the message is that component's, parameter theta_E.
  auto t = mass_theta();
  t[MassC<double>::offset<2>] = -0.2;
  CHECK_THROWS_WITH_AS(MassC<double>::unpack(t.data()).check(),
                       "lensing::SIS: theta_E must be finite and > 0 (got -0.20000000000000001)",
                       std::invalid_argument);
}
