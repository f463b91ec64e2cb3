// fit_batch (fit/batch.hpp): the fit workflow on several lenses, one
// Posterior per lens (16x16 pixels, SIE + Sersic source, 6 free parameters):
//  - every lens's result equals the workflow run on that lens alone
//    (find_map from draw_prior_starts(starts, batch_seed(seed, i)), NUTS and
//    VI from its MAP with that seed), bit for bit, and so does a batch resumed
//    at first_index = 1: a lens's fit depends only on (seed, i);
//  - a lens whose prior the model rejects everywhere (R_sersic < 0: log p =
//    -inf at every start) is reported failed with the reason, its callback
//    called, and the lenses after it still fitted;
//  - bad options throw before anything runs.

#include <lensing/fit/batch.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/noise/pixel_noise.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/sources/light_profile.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace {
using Model = lensing::LensModel<lensing::SIE<double>, lensing::SersicEllipse<double>, lensing::NoLight<double>>;
using Psf = lensing::GaussianFilter<double, Kokkos::HostSpace>;
using Like = lensing::GaussianLikelihood<Model, Kokkos::HostSpace, Psf>;
using Post = lensing::Posterior<Like>;
using P = lensing::Prior<double>;
using Table = lensing::ParameterTable<double, Kokkos::HostSpace>;

constexpr int kN = 16;
constexpr double kSigma = 0.05;

Table lens_table(bool broken) {
  Table t;
  t.add("lens0.theta_E", P::uniform(0.5, 1.0))
      .add("lens0.e1", P::truncated_normal(0, 0.1, -0.4, 0.4))
      .add("lens0.e2", P::fixed(0))
      .add("lens0.center_x", P::fixed(0))
      .add("lens0.center_y", P::fixed(0))
      .add("source0.amp", P::log_uniform(5, 50))
      .add("source0.R_sersic", broken ? P::uniform(-2, -1) : P::log_uniform(0.1, 0.4))
      .add("source0.n_sersic", P::fixed(1))
      .add("source0.e1", P::fixed(0))
      .add("source0.e2", P::fixed(0))
      .add("source0.center_x", P::normal(0, 0.1))
      .add("source0.center_y", P::normal(0, 0.1));
  return t;
}

// Lens i: its own truth and noise; `broken_lens` gets an impossible prior.
template <class Space>
Post make_lens(Space const& space, int i, int broken_lens) {
  lensing::Observation<double, Kokkos::HostSpace, Psf> const obs(lensing::PixelGrid<double>::square(kN, 0.1, 1),
                                                                 Psf(0.15, 0.1, kN, kN));
  lensing::View2D<double, Kokkos::HostSpace> data("data", kN, kN), noise("noise", kN, kN), mask("mask", kN, kN);
  double const t[Model::num_params] = {0.7 + 0.05 * i, 0.05, 0, 0, 0, 20.0 + 5 * i, 0.2, 1, 0, 0, 0.05, -0.03 * i};
  obs.render(space, Model::unpack(t), data);
  lensing::noise::apply(space, lensing::noise::GaussianNoise<double>{kSigma}, data, std::uint64_t(100 + i));
  Kokkos::deep_copy(space, noise, kSigma);
  Kokkos::deep_copy(space, mask, 1.0);
  space.fence();
  return Post(Like(obs, data, noise, mask), lens_table(i == broken_lens));
}

lensing::BatchFitOptions batch_options() {
  lensing::BatchFitOptions o;
  o.seed = 11;
  o.starts = 3;
  o.sampler.num_chains = 1;
  o.sampler.num_warmup = 40;
  o.sampler.num_draws = 30;
  o.sampler.max_depth = 6;
  lensing::VariationalOptions v;
  v.family = lensing::VariationalFamily::mean_field;
  v.max_iterations = 60;
  v.average_last = 20;
  v.num_elbo_draws = 20;
  o.variational.push_back(v);
  return o;
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("fit_batch: each lens as if fitted alone; a failed lens is reported, not fatal", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  if constexpr (Kokkos::SpaceAccessibility<Space, Kokkos::HostSpace>::accessible) {
    Space const space;
    auto const options = batch_options();
    int const broken = 1;
    std::vector<int> called;
    auto const fits = lensing::fit_batch(
        space, [&](int i) { return make_lens(space, i, broken); }, 3, options,
        [&](lensing::LensFitResult const& r, Post const& post) {
          called.push_back(r.index);
          CHECK(post.dimension() == 6);
        });
    REQUIRE(fits.size() == 3);
    CHECK(called == std::vector<int>{0, 1, 2});
    CHECK(fits[1].index == 1);
    CHECK_FALSE(fits[1].ok);
    CHECK_FALSE(fits[1].converged());
    MESSAGE(fits[1].error);
    CHECK(fits[1].error.find("lensing::fit_batch: lens 1: ") == 0);
    CHECK(fits[1].error.find("finite") != std::string::npos);

    // The workflow by hand on lenses 0 and 2 (the contract in batch.hpp's comment).
    for (int i : {0, 2}) {
      auto const& r = fits[std::size_t(i)];
      REQUIRE(r.ok);
      auto const post = make_lens(space, i, broken);
      std::uint64_t const seed = lensing::batch_seed(options.seed, i);
      CHECK(r.seed == seed);
      lensing::MapOptions mo = options.map;
      mo.scales = post.start_scales();
      auto const map = lensing::find_map(space, post, post.draw_prior_starts(options.starts, seed), mo);
      lensing::SamplerOptions so = options.sampler;
      so.seed = seed;
      auto const draws = lensing::sample_from_map(space, post, map, so);
      lensing::VariationalOptions vo = options.variational[0];
      vo.seed = lensing::batch_seed(seed, 0);
      auto const vi = lensing::fit_vi_from_map(space, post, map, vo);
      CHECK(r.map.q == map.q);
      CHECK(r.map.covariance == map.covariance);
      CHECK(r.has_draws);
      CHECK(r.draws.draws == draws.draws);
      REQUIRE(r.vi.size() == 1);
      CHECK(r.vi[0].mean == vi.mean);
      CHECK(r.vi[0].chol == vi.chol);
      CHECK(r.summary.rows.size() == std::size_t(Model::num_params));
      CHECK(r.summary["lens0.theta_E"].mean > 0.5);
      CHECK(r.convergence.message.size() > 0);
    }

    // Resumed at lens 1 (lens 1 fine this time): lens 2 bit-identical to the first batch.
    auto const resumed = lensing::fit_batch(
        space, [&](int i) { return make_lens(space, i, -1); }, 2, options,
        [](lensing::LensFitResult const&, Post const&) {}, 1);
    REQUIRE(resumed.size() == 2);
    CHECK(resumed[0].index == 1);
    CHECK(resumed[0].ok);
    CHECK(resumed[1].index == 2);
    CHECK(resumed[1].draws.draws == fits[2].draws.draws);
    CHECK(resumed[1].vi[0].mean == fits[2].vi[0].mean);

    // Over a vector of posteriors: the same as the factory.
    std::vector<Post> posts;
    for (int i = 0; i < 2; ++i)
      posts.push_back(make_lens(space, i, -1));
    auto const from_vector = lensing::fit_batch(space, posts, options);
    REQUIRE(from_vector.size() == 2);
    CHECK(from_vector[0].draws.draws == fits[0].draws.draws);
    CHECK(from_vector[1].draws.draws == resumed[0].draws.draws);
  }
}

TEST_CASE("fit_batch: bad options throw before any lens is fitted") {
  Kokkos::DefaultHostExecutionSpace const space;
  int made = 0;
  auto make = [&](int i) {
    ++made;
    return make_lens(space, i, -1);
  };
  auto o = batch_options();
  o.starts = 0;
  CHECK_THROWS_WITH_AS(lensing::fit_batch(space, make, 2, o), doctest::Contains("lensing::fit_batch: starts"),
                       std::invalid_argument);
  o = batch_options();
  o.nuts = false;
  o.variational.clear();
  CHECK_THROWS_WITH_AS(lensing::fit_batch(space, make, 2, o), doctest::Contains("nothing to run"),
                       std::invalid_argument);
  o = batch_options();
  o.sampler.num_draws = 0;
  CHECK_THROWS_AS(lensing::fit_batch(space, make, 2, o), std::invalid_argument);
  CHECK_THROWS_WITH_AS(lensing::fit_batch(space, make, -1, batch_options()), doctest::Contains("num_lenses"),
                       std::invalid_argument);
  CHECK(made == 0);
}
