#include "instantiate.hpp"

#include <lensing/optim/adam.hpp>
#include <lensing/optim/lbfgs.hpp>
#include <lensing/optim/levenberg_marquardt.hpp>
#include <lensing/optim/multi_start.hpp>
#include <lensing/sample/langevin.hpp>
#include <lensing/sample/variational.hpp>
#include <lensing/validate/pqmass.hpp>
#include <lensing/validate/sbc.hpp>
#include <lensing/validate/tarp.hpp>

namespace {
// Isotropic Gaussian evaluated by a kernel on the space the caller passes.
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
        "lensing::instantiate::optim_gaussian", Kokkos::RangePolicy<Space>(space, 0, n),
        KOKKOS_LAMBDA(int i, Scalar& acc) {
          g(i) = -(q(i) - 1);
          acc += -Scalar(0.5) * (q(i) - 1) * (q(i) - 1);
        },
        lp);
    return lp;
  }
};

// Score of N(0, 1) smoothed by N(0, sigma^2), evaluated by a kernel.
struct GaussianScore {
  template <class Space, class Scalar, class Mem>
  void operator()(Space const& space, Scalar sigma, lensing::View2D<Scalar, Mem> const& x,
                  lensing::View2D<Scalar, Mem> const& s) const {
    Scalar const v = 1 + sigma * sigma;
    Kokkos::parallel_for(
        "lensing::instantiate::gaussian_score",
        Kokkos::MDRangePolicy<Space, Kokkos::Rank<2>>(space, {0, 0}, {int(x.extent(0)), int(x.extent(1))}),
        KOKKOS_LAMBDA(int i, int j) { s(i, j) = -x(i, j) / v; });
  }
};

struct Line {
  int num_residuals() const { return 3; }
  int num_parameters() const { return 2; }
  void residuals(double const* p, double* r) const {
    for (int i = 0; i < 3; ++i)
      r[i] = p[0] + p[1] * i - 2 * i;
  }
  void jvp(double const*, double const* v, double* jv) const {
    for (int i = 0; i < 3; ++i)
      jv[i] = v[0] + v[1] * i;
  }
};
}  // namespace

LENSING_INSTANTIATE(instantiate_optim) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using S = decltype(scalar);
    using Space = std::decay_t<decltype(space)>;
    using Mem = typename Space::memory_space;
    KernelGaussian<S, Mem> const target{3};
    std::vector<double> const x0(3, 0.0);
    lensing::OptimizeOptions o;
    o.max_iterations = 5;
    (void)lensing::lbfgs(space, target, x0, o);
    (void)lensing::adam(space, target, x0, o);
    (void)lensing::multi_start(x0, 1.0, 2, 1,
                               [&](std::vector<double> const& x) { return lensing::lbfgs(space, target, x, o); });
    lensing::LangevinOptions lo;
    lo.num_chains = 1;
    lo.num_warmup = 5;
    lo.num_draws = 5;
    lo.threads = 1;
    (void)lensing::langevin(space, target, lo);
    lo.algorithm = lensing::LangevinAlgorithm::ula;
    (void)lensing::langevin(space, target, lo);
    lensing::VariationalOptions vo;
    vo.max_iterations = 5;
    vo.average_last = 2;
    vo.num_elbo_draws = 4;
    (void)lensing::fit_variational(space, target, vo);
    vo.family = lensing::VariationalFamily::mean_field;
    (void)lensing::fit_variational(space, target, vo);
    lensing::AnnealedLangevinOptions ao;
    ao.sigmas = {1.0, 0.5};
    ao.steps_per_level = 2;
    lensing::AnnealedLangevin<S, Mem> al(4, 2, ao);
    lensing::View2D<S, Mem> x("x", 4, 2);
    al.run(space, GaussianScore{}, x);
    space.fence();
  });
  (void)lensing::levenberg_marquardt(Line{}, {0.0, 0.0});
  (void)lensing::validate::sbc_ranks({0.5}, {0.0, 1.0, 0.2}, 1, 3, 1, 2);
  (void)lensing::validate::tarp({1.0}, {0.0, 2.0}, 1, 2, 1);
  (void)lensing::validate::pqmass_with_references({0.0, 1.0}, {0.5, 2.0}, {0.0, 2.0}, 1);
}
