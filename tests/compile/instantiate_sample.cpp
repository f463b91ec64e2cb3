#include "instantiate.hpp"

#include <lensing/density/prior.hpp>
#include <lensing/sample/batch.hpp>
#include <lensing/sample/bijections.hpp>
#include <lensing/sample/diagnostics.hpp>
#include <lensing/sample/sampler.hpp>

namespace {
// Isotropic Gaussian evaluated by a kernel on the space the sampler passes.
template <class Scalar, class Mem>
struct KernelGaussian {
  using scalar_type = Scalar;
  using memory_space = Mem;
  int n;
  int dimension() const { return n; }
  template <class Space>
  Scalar value_and_gradient(Space const& space, lensing::View1D<Scalar, Mem> const& q,
                            lensing::View1D<Scalar, Mem> const& g) const {
    Scalar lp = 0;
    Kokkos::parallel_reduce(
        "lensing::instantiate::gaussian", Kokkos::RangePolicy<Space>(space, 0, n),
        KOKKOS_LAMBDA(int i, Scalar& acc) {
          g(i) = -q(i);
          acc += -Scalar(0.5) * q(i) * q(i);
        },
        lp);
    return lp;
  }
};

// Every bijection and prior in a kernel.
template <class Space, class S>
void transforms(Space const& space) {
  using Mem = typename Space::memory_space;
  lensing::View1D<S, Mem> out("out", 32);
  using P = lensing::Prior<S>;
  lensing::View1D<P, Mem> priors("priors", 8);
  auto hp = Kokkos::create_mirror_view(priors);
  P const list[8] = {P::normal(0, 1), P::half_normal(1), P::half_cauchy(1), P::student_t(3, 0, 1),
                     P::gamma(2, 1),  P::beta(2, 2),     P::uniform(0, 1),  P::log_uniform(0.1, 1)};
  for (int k = 0; k < 8; ++k)
    hp(k) = list[k];
  Kokkos::deep_copy(priors, hp);
  Kokkos::parallel_for(
      "lensing::instantiate::sample_transforms", Kokkos::RangePolicy<Space>(space, 0, 1), KOKKOS_LAMBDA(int) {
        S const u = S(0.3);
        lensing::Positive<S> const a;
        lensing::LowerBound<S> const b{S(1)};
        lensing::UpperBound<S> const c{S(1)};
        lensing::UnitInterval<S> const d;
        lensing::Bounded<S> const e{S(-1), S(2)};
        out(0) = a.constrain(u) + a.unconstrain(S(2)) + a.log_jacobian(u) + a.pullback(u, S(1));
        out(1) = b.constrain(u) + b.unconstrain(S(2)) + b.derivative(u) + b.log_jacobian_gradient(u);
        out(2) = c.constrain(u) + c.unconstrain(S(0)) + c.log_jacobian(u) + c.pullback(u, S(1));
        out(3) = d.constrain(u) + d.unconstrain(S(0.5)) + d.log_jacobian(u) + d.pullback(u, S(1));
        out(4) = e.constrain(u) + e.unconstrain(S(0.5)) + e.log_jacobian(u) + e.pullback(u, S(1));
        S uu[3] = {S(0.1), S(0.2), S(0.3)}, xx[3], ub[3];
        lensing::Ordered<S> const o{3};
        o.constrain(uu, xx);
        o.unconstrain(xx, uu);
        o.pullback(uu, xx, ub);
        out(5) = o.log_jacobian(uu) + ub[0];
        S const x = S(0.4);
        for (int k = 0; k < 8; ++k)
          out(6 + k) = S(priors(k).log_density(x) + priors(k).gradient(x));
        lensing::Simplex<S> const sx{3};
        S su[2] = {S(0.1), S(-0.2)}, sxx[3], slx[3], sg[2], sub[2];
        sx.constrain(su, sxx);
        sx.log_constrain(su, slx);
        sx.unconstrain(sxx, su);
        sx.log_jacobian_gradient(su, sg);
        sx.pullback(su, sxx, sub);
        out(14) = sx.log_jacobian(su) + slx[0] + sg[0] + sub[1] + S(sx.unconstrained_dimension());
      });
  space.fence();
}
}  // namespace

LENSING_INSTANTIATE(instantiate_sample) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    using Space = std::decay_t<decltype(space)>;
    transforms<Space, S>(space);
    KernelGaussian<S, typename Space::memory_space> const target{3};
    lensing::SamplerOptions opt;
    opt.num_chains = 1;
    opt.num_warmup = 30;
    opt.num_draws = 10;
    opt.threads = 1;
    auto const r = lensing::sample(space, target, opt);
    opt.algorithm = lensing::HmcAlgorithm::static_hmc;
    opt.metric = lensing::MetricKind::dense;
    auto const r2 = lensing::sample(space, target, opt);
    (void)lensing::diagnostics::summarize(r.draws, 1, 10, {"a", "b", "c"});
    (void)r2;
    std::vector<KernelGaussian<S, typename Space::memory_space>> const batch(2, target);
    opt.num_chains = 2;
    auto const rb = lensing::sample_batch(space, batch, opt);
    (void)rb;
  });
}
