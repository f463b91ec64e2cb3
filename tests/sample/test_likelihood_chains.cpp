// Parallel chains on a likelihood-backed posterior.  GaussianLikelihood owns
// work buffers (model image, cotangents, the Observation's and the PSF's
// buffers) that copies share, and Kokkos host backends must not be entered
// from two host threads at once (OpenMP only from the thread that
// initialised Kokkos).  The samplers give every chain its own clone() of the
// density and run the chains of densities that declare launches_kernels on
// the calling thread (density/log_density.hpp), so NUTS draws on a lens
// posterior are bit-identical at threads = 1, 2 and the default 0 (before,
// chains in worker threads shared the buffers: divergent transitions and
// draws off by O(1), or a crash).  Also: a clone is independent of its
// original (a deep copy of every written buffer), and sample_batch() on such
// densities matches its one-thread run.

#include <lensing/likelihood/gaussian.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/fft_convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/sample/batch.hpp>
#include <lensing/sample/sampler.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <type_traits>
#include <vector>

namespace {
using Lens = lensing::Composite<lensing::SIE<double>, lensing::ExternalShear<double>>;
using Model = lensing::LensModel<Lens, lensing::SersicEllipse<double>, lensing::SersicEllipse<double>>;

std::vector<double> truth() {
  return {1.05, 0.05,  -0.03, 0.013, -0.021,                  // SIE
          0.03, -0.02, 0.0,   0.0,                            // shear
          20.0, 0.25,  1.6,   0.08,  -0.05,  0.06,  0.03,     // source
          8.0,  0.6,   3.2,   -0.06, 0.04,   0.013, -0.021};  // lens light
}

// Posterior of (theta_E, center_x, center_y) of the SIE, every other
// parameter at its true value, flat prior: a LogDensity on a likelihood.  It
// holds the likelihood and a gradient buffer, so clone() deep-copies both.
template <class Psf>
struct LensPosterior {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  using Like = lensing::GaussianLikelihood<Model, Kokkos::HostSpace, Psf>;
  static constexpr bool launches_kernels = Like::launches_kernels;
  Like like;
  lensing::View1D<double, Kokkos::HostSpace> grad;
  int dimension() const { return 3; }
  LensPosterior clone() const {
    return {like.clone(), lensing::View1D<double, Kokkos::HostSpace>("grad", Model::num_params)};
  }
  template <class Space>
  double value_and_gradient(Space const& space, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& g) const {
    std::vector<double> t = truth();
    t[0] = q(0);
    t[3] = q(1);
    t[4] = q(2);
    if (!(t[0] > 0)) return -HUGE_VAL;
    double const lp = like.value_and_gradient(space, Model::unpack(t.data()), grad);
    g(0) = grad(0);
    g(1) = grad(3);
    g(2) = grad(4);
    return lp;
  }
};

// A 10^2 image of 0.2" pixels, supersampled 2x: the model at the truth
// plus a fixed pseudo-noise pattern; noise 0.05.
template <class Space, class Psf>
LensPosterior<Psf> make_posterior(Space const& space, Psf const& psf) {
  auto const grid = lensing::PixelGrid<double>(10, 10, 0.2, 2);
  lensing::Observation<double, Kokkos::HostSpace, Psf> const obs(grid, psf);
  lensing::View2D<double, Kokkos::HostSpace> data("data", 10, 10), noise("noise", 10, 10), mask("mask", 10, 10);
  auto const t = truth();
  obs.render(space, Model::unpack(t.data()), data);
  space.fence();
  for (int iy = 0; iy < 10; ++iy)
    for (int ix = 0; ix < 10; ++ix)
      data(iy, ix) += 0.05 * std::sin(12.9898 * ix + 78.233 * iy);
  Kokkos::deep_copy(noise, 0.05);
  Kokkos::deep_copy(mask, 1.0);
  return {typename LensPosterior<Psf>::Like(obs, data, noise, mask),
          lensing::View1D<double, Kokkos::HostSpace>("grad", Model::num_params)};
}

// Fixed step on a Laplace-scaled metric (the inverse diagonal of the Hessian
// at the truth, by central differences of the gradient): no warm-up, so the
// run is short and every transition is a well-scaled NUTS step.
template <class Space, class Psf>
lensing::SamplerOptions chain_options(Space const& space, LensPosterior<Psf> const& post) {
  lensing::SamplerOptions opt;
  opt.num_chains = 2;
  opt.num_warmup = 0;
  opt.adapt = false;
  opt.num_draws = 20;
  opt.max_depth = 5;
  opt.init_step_size = 0.5;
  opt.seed = 11;
  opt.init = {1.05, 0.013, -0.021};
  for (int i = 0; i < 3; ++i) {
    double qp[3] = {opt.init[0], opt.init[1], opt.init[2]}, qm[3] = {qp[0], qp[1], qp[2]}, gp[3], gm[3];
    double const h = 1e-5;
    qp[i] += h;
    qm[i] -= h;
    using V = lensing::View1D<double, Kokkos::HostSpace>;
    post.value_and_gradient(space, V(qp, 3), V(gp, 3));
    post.value_and_gradient(space, V(qm, 3), V(gm, 3));
    opt.init_inv_metric.push_back(2 * h / std::fabs(gp[i] - gm[i]));
  }
  return opt;
}

bool identical(lensing::SampleResult const& a, lensing::SampleResult const& b) {
  return a.draws == b.draws && a.lp == b.lp && a.energy == b.energy && a.n_leapfrog == b.n_leapfrog &&
         a.divergent == b.divergent && a.final_step_size == b.final_step_size && a.inverse_metric == b.inverse_metric;
}

template <class Space, class Psf>
void check_parallel_chains(Space const& space, Psf const& psf) {
  auto const post = make_posterior(space, psf);
  static_assert(lensing::has_clone_v<LensPosterior<Psf>> && lensing::launches_kernels_v<LensPosterior<Psf>>,
                "the test density declares clone() and launches_kernels");
  auto opt = chain_options(space, post);
  opt.threads = 1;
  auto const one = lensing::sample(space, post, opt);
  opt.threads = 2;
  auto const two = lensing::sample(space, post, opt);
  opt.threads = 0;
  auto const dflt = lensing::sample(space, post, opt);
  MESSAGE("1 thread: " << one.gradient_evaluations << " gradients, " << one.seconds << " s");
  CHECK(identical(one, two));
  CHECK(identical(one, dflt));
  CHECK(one.divergences() == 0);
  // The draws are near the truth (posterior sd ~1e-3; a chain that read another
  // chain's model image would wander off).
  for (std::size_t j = 0; j < one.draws.size(); j += 3)
    CHECK(std::fabs(one.draws[j] - 1.05) < 0.05);
  // sample_batch on two copies of the posterior: same as its one-thread run.
  std::vector<LensPosterior<Psf>> const batch = {post, post};
  opt.num_chains = 1;
  opt.threads = 1;
  auto const b1 = lensing::sample_batch(space, batch, opt);
  opt.threads = 2;
  auto const b2 = lensing::sample_batch(space, batch, opt);
  CHECK(identical(b1[0], b2[0]));
  CHECK(identical(b1[1], b2[1]));
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("NUTS on a likelihood-backed posterior: bit-identical at threads 1, 2 and 0", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  if constexpr (Kokkos::SpaceAccessibility<Space, Kokkos::HostSpace>::accessible) {
    Space const space;
    // A PSF with work buffers (GaussianFilter: cloned); on the default host
    // space also the FFT convolution (own buffers and plans per clone).
    check_parallel_chains(space, lensing::GaussianFilter<double, Kokkos::HostSpace>(0.3, 0.2, 10, 10));
    if (std::is_same<Space, Kokkos::DefaultHostExecutionSpace>::value) {
      auto const kern = lensing::gaussian_psf_kernel<double>(0.3, 0.2, 5);
      check_parallel_chains(space, lensing::FftConvolution<double, Kokkos::HostSpace>(space, kern, 10, 10));
    }
  }
}

LENSING_TEST_CASE_TEMPLATE("GaussianLikelihood::clone is an independent deep copy", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  if constexpr (Kokkos::SpaceAccessibility<Space, Kokkos::HostSpace>::accessible) {
    Space const space;
    using Psf = lensing::GaussianFilter<double, Kokkos::HostSpace>;
    auto const post = make_posterior(space, Psf(0.3, 0.2, 10, 10));
    auto const copy = post.clone();
    CHECK(copy.like.model_image().data() != post.like.model_image().data());
    CHECK(copy.grad.data() != post.grad.data());
    double qa[3] = {1.04, 0.01, -0.02}, qb[3] = {1.07, 0.02, -0.01}, ga[3], gb[3], gc[3];
    lensing::View1D<double, Kokkos::HostSpace> const va(qa, 3), vb(qb, 3), wa(ga, 3), wb(gb, 3), wc(gc, 3);
    double const a = post.value_and_gradient(space, va, wa);
    double const b = copy.value_and_gradient(space, vb, wb);  // must not touch post's buffers
    auto const image = [](auto const& v) { return std::vector<double>(v.data(), v.data() + v.size()); };
    auto const image_a = image(post.like.model_image());
    double const a2 = post.value_and_gradient(space, va, wc);
    CHECK(a == a2);
    CHECK(a != b);
    for (int k = 0; k < 3; ++k)
      CHECK(ga[k] == gc[k]);
    // post's model image is still that of qa after the clone was evaluated at qb.
    double const b2 = copy.value_and_gradient(space, vb, wb);
    CHECK(b == b2);
    CHECK(image(post.like.model_image()) == image_a);
  }
}
