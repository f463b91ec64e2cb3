#include "instantiate.hpp"

#include <lensing/fit/posterior.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/sources/sersic.hpp>

#include <vector>

namespace {
// A Posterior over a likelihood on every space: evaluated from the host
// (samplers are host-side), it runs the likelihood on the posterior's
// execution space where the host cannot access the likelihood's memory
// (Cuda), and copies the gradient back.
template <class Space, class S>
void fit(Space const& space) {
  using Mem = typename Space::memory_space;
  using Lens = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
  using Model = lensing::LensModel<Lens, lensing::SersicEllipse<S>, lensing::NoLight<S>>;
  using Psf = lensing::GaussianFilter<S, Mem>;
  using Like = lensing::GaussianLikelihood<Model, Mem, Psf>;
  auto const grid = lensing::PixelGrid<S>::square(6, S(0.3), 2);
  lensing::Observation<S, Mem, Psf> const obs(grid, Psf(0.2, 0.3, 6, 6));
  Lens const lens{lensing::SIE<S>{S(1), S(0.1), S(0), S(0), S(0)},
                  lensing::ExternalShear<S>{S(0.01), S(0), S(0), S(0)}};
  Model const model{lens, lensing::SersicEllipse<S>{S(1), S(0.3), S(2), S(0.1), S(0), S(0), S(0)}, {}};
  lensing::View2D<S, Mem> d("d", 6, 6), n("n", 6, 6), m("m", 6, 6);
  obs.render(space, model, d);
  Kokkos::deep_copy(space, n, S(1));
  Kokkos::deep_copy(space, m, S(1));
  space.fence();
  using P = lensing::Prior<double>;
  lensing::ParameterTable<double, Kokkos::HostSpace> table;
  table.add("lens0.theta_E", P::uniform(0.5, 2))
      .add("lens0.e1", P::normal(0.1, 0.1))
      .add("lens0.e2", P::normal(0, 0.1))
      .add("lens0.center_x", P::fixed(0))
      .add("lens0.center_y", P::fixed(0))
      .add("lens1.gamma1", P::normal(0, 0.05))
      .add("lens1.gamma2", P::normal(0, 0.05))
      .add("lens1.ra_0", P::fixed(0))
      .add("lens1.dec_0", P::fixed(0))
      .add("source0.amp", P::log_uniform(0.1, 10))
      .add("source0.R_sersic", P::half_normal(0.5))
      .add("source0.n_sersic", P::uniform(0.5, 6))
      .add("source0.e1", P::normal(0, 0.2))
      .add("source0.e2", P::normal(0, 0.2));
  table.tie("source0.center_x", "lens0.center_x");
  table.tie("source0.center_y", "lens0.center_y");
  lensing::Posterior<Like, Space> const post(Like(obs, d, n, m), table, {}, space);
  auto const q = post.draw_prior_starts(1, 3)[0];
  std::vector<double> g(q.size());
  auto qq = q;
  lensing::View1D<double, Kokkos::HostSpace> const vq(qq.data(), qq.size()), vg(g.data(), g.size());
  post.clone().value_and_gradient(Kokkos::DefaultHostExecutionSpace(), vq, vg);
  post.model_at(q);
}
}  // namespace

LENSING_INSTANTIATE(instantiate_fit) {
  lensing::instantiate::for_each_space_and_scalar(
      [](auto const& space, auto scalar) { fit<std::decay_t<decltype(space)>, decltype(scalar)>(space); });
}
