// Posterior<Likelihood> (fit/posterior.hpp): a GaussianLikelihood and a
// prior table by name as a LogDensity on unconstrained parameters.
//  - its gradient matches central differences through every transform
//    (bounded, lower, upper, identity), fixed parameters and ties with a
//    scale and an offset, and its value is the likelihood + the prior + the
//    log-Jacobians computed here independently;
//  - with a flat likelihood NUTS on it draws the prior (the log-Jacobians
//    are right): constrained means and variances within their Monte Carlo
//    error of the priors' moments;
//  - unknown and missing names, overrides of non-free parameters and
//    initial points outside a transform's support are clear errors;
//  - sample() gives bit-identical draws at 1 and 2 threads (a clone per
//    chain), and a clone does not share the likelihood's buffers;
//  - a float likelihood under the double posterior agrees with the double one.

#include <lensing/fit/posterior.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/sample/sampler.hpp>
#include <lensing/sources/light_profile.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {
template <class S>
using Lens = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
template <class S>
using Model = lensing::LensModel<Lens<S>, lensing::SersicEllipse<S>, lensing::SersicEllipse<S>>;
template <class S>
using Psf = lensing::GaussianFilter<S, Kokkos::HostSpace>;
template <class S>
using Like = lensing::GaussianLikelihood<Model<S>, Kokkos::HostSpace, Psf<S>>;
using P = lensing::Prior<double>;
using Table = lensing::ParameterTable<double, Kokkos::HostSpace>;

std::vector<double> truth() {
  return {1.05, 0.05,  -0.03, 0.013, -0.021,                  // SIE
          0.03, -0.02, 0.0,   0.0,                            // shear
          20.0, 0.25,  1.6,   0.08,  -0.05,  0.06,  0.03,     // source
          8.0,  0.6,   3.2,   0.035, 0.04,   0.013, -0.021};  // lens light (e1 = 0.5 e1_lens + 0.01)
}

// Every family of prior, every kind of transform, fixed parameters and ties.
Table lens_table() {
  Table t;
  t.add("lens0.theta_E", P::uniform(0.5, 2.0))                            // bounded
      .add("lens0.e1", P::normal(0, 0.2))                                 // identity
      .add("lens0.e2", P::truncated_normal(0, 0.2, -0.5, 0.5))            // bounded
      .add("lens0.center_x", P::student_t(4, 0, 0.1))                     // identity
      .add("lens0.center_y", P::normal(0, 0.1))                           //
      .add("lens1.gamma1", P::normal(0, 0.05))                            //
      .add("lens1.gamma2", P::truncated_normal(0, 0.05, -0.2, HUGE_VAL))  // lower_bound
      .add("lens1.ra_0", P::fixed(0))                                     // fixed
      .add("lens1.dec_0", P::fixed(0))                                    //
      .add("source0.amp", P::log_uniform(1, 100))                         // bounded
      .add("source0.R_sersic", P::half_normal(0.5))                       // lower_bound
      .add("source0.n_sersic", P::gamma(4, 2))                            // lower_bound
      .add("source0.e1", P::truncated_normal(0, 0.2, -HUGE_VAL, 0.6))     // upper_bound
      .add("source0.e2", P::normal(0, 0.2))                               //
      .add("source0.center_x", P::normal(0, 0.2))                         //
      .add("source0.center_y", P::normal(0, 0.2))                         //
      .add("light0.amp", P::half_cauchy(10))                              // lower_bound
      .add("light0.R_sersic", P::beta(3, 3))                              // bounded (0, 1)
      .add("light0.n_sersic", P::fixed(3.2))                              // fixed
      .add("light0.e2", P::normal(0, 0.2));
  t.tie("light0.e1", "lens0.e1", 0.5, 0.01);  // scale and offset
  t.tie("light0.center_x", "lens0.center_x");
  t.tie("light0.center_y", "lens0.center_y");
  return t;
}

// n^2 pixels of 0.1", supersampling 2, Gaussian PSF; data: the model at a
// shifted truth plus a fixed pattern (residuals not zero), noise 0.1.
template <class S, class Space>
Like<S> make_likelihood(Space const& space, int n) {
  auto const grid = lensing::PixelGrid<S>(n, n, S(0.1), 2, S(0.004), S(-0.007));
  lensing::Observation<S, Kokkos::HostSpace, Psf<S>> const obs(grid, Psf<S>(0.15, 0.1, n, n));
  lensing::View2D<S, Kokkos::HostSpace> data("data", n, n), noise("noise", n, n), mask("mask", n, n);
  auto t = truth();
  t[0] += 0.01;
  t[12] += 0.02;
  std::vector<S> ts(t.begin(), t.end());
  obs.render(space, Model<S>::unpack(ts.data()), data);
  space.fence();
  for (int iy = 0; iy < n; ++iy)
    for (int ix = 0; ix < n; ++ix) {
      data(iy, ix) += S(0.1 * std::sin(12.9898 * ix + 78.233 * iy));
      noise(iy, ix) = S(0.1);
      mask(iy, ix) = S(1);
    }
  return Like<S>(obs, data, noise, mask);
}

template <class Space, class L>
double eval_on(Space const& space, L const& post, std::vector<double> q, std::vector<double>& g) {
  g.assign(q.size(), 0.0);
  lensing::View1D<double, Kokkos::HostSpace> const vq(q.data(), q.size()), vg(g.data(), g.size());
  return post.value_and_gradient(space, vq, vg);
}

// log|dx/du| of each transform, written from x (not through bijections.hpp).
double log_jacobian_at(lensing::ParameterTransform const& t, double x) {
  using K = lensing::ParameterTransform::Kind;
  switch (t.kind) {
    case K::bounded:
      return std::log((x - t.lo) * (t.hi - x) / (t.hi - t.lo));
    case K::lower_bound:
      return std::log(x - t.lo);
    case K::upper_bound:
      return std::log(t.hi - x);
    default:
      return 0;
  }
}

// A likelihood that is constant: the posterior is the prior.
template <class M>
struct FlatLikelihood {
  using model_type = M;
  using memory_space = Kokkos::HostSpace;
  using S = typename M::scalar_type;
  template <class Space>
  S value_and_gradient(Space const&, M const&, lensing::View1D<S, Kokkos::HostSpace> const& g) const {
    for (std::size_t k = 0; k < g.extent(0); ++k)
      g(k) = 0;
    return 0;
  }
};
}  // namespace

static_assert(lensing::check_log_density<lensing::Posterior<Like<double>>, Kokkos::DefaultHostExecutionSpace>(),
              "Posterior models LogDensity");
static_assert(lensing::launches_kernels_v<lensing::Posterior<Like<double>>> &&
                  lensing::has_clone_v<lensing::Posterior<Like<double>>>,
              "Posterior declares launches_kernels and clone() from its likelihood");
static_assert(!lensing::launches_kernels_v<lensing::Posterior<FlatLikelihood<Model<double>>>>,
              "launches_kernels follows the likelihood");

LENSING_TEST_CASE_TEMPLATE("Posterior: gradient matches central differences through transforms, ties and fixed", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  if constexpr (Kokkos::SpaceAccessibility<Space, Kokkos::HostSpace>::accessible) {
    Space const space;
    auto const like = make_likelihood<double>(space, 40);
    Table const table = lens_table();
    lensing::Posterior<Like<double>> const post(like, table);
    // 23 model parameters: 3 fixed, 3 tied -> 17 free.
    REQUIRE(post.dimension() == 17);
    CHECK(post.all_names() == lensing::model_parameter_names<Model<double>>());
    CHECK(post.free_names().front() == "lens0.theta_E");
    CHECK(post.free_names().back() == "light0.e2");
    using K = lensing::ParameterTransform::Kind;
    CHECK(post.transform(0).kind == K::bounded);
    CHECK(post.transform(1).kind == K::identity);
    CHECK(post.transform(6).kind == K::lower_bound);   // lens1.gamma2: truncated below
    CHECK(post.transform(10).kind == K::upper_bound);  // source0.e1: truncated above
    auto const q0 = post.initial_point_from(truth());
    // constrain o unconstrain is the identity on the truth (ties included).
    auto const back = post.constrain(q0);
    for (std::size_t j = 0; j < back.size(); ++j)
      CHECK(back[j] == doctest::Approx(truth()[j]).epsilon(1e-12));
    std::vector<double> g;
    double const v = eval_on(space, post, q0, g);
    REQUIRE(std::isfinite(v));
    // The value is log L + log prior + sum log|dx/du|, each computed here.
    auto const at = [&](std::string const& name) {
      auto const& all = post.all_names();
      return truth()[std::size_t(std::find(all.begin(), all.end(), name) - all.begin())];
    };
    double lj = 0;
    for (int f = 0; f < post.dimension(); ++f)
      lj += log_jacobian_at(post.transform(f), at(post.free_names()[f]));
    std::vector<double> row(std::size_t(table.size()));
    for (int c = 0; c < table.size(); ++c)
      row[c] = at(table.names()[c]);
    auto const t = truth();
    double const ll = like.value(space, Model<double>::unpack(t.data()));
    CHECK(v == doctest::Approx(ll + table.log_density(row) + lj).epsilon(1e-12));
    // Central differences, step h = 1e-5 in q (unconstrained, O(1) scale).
    // Error model: truncation h^2 |f'''| / 6 ~ 1e-10 |f'''| (|f'''| <~ 1e3
    // |f'| for these smooth profiles away from the SIE centre), rounding
    // ~ eps |v| / h ~ 1e-16 * 1e4 / 1e-5 = 1e-7; the bound 1e-5 (|fd| + 1e-2 |v|)
    // (as in the likelihood's own test) is 10^2 above both.  A missing
    // log-Jacobian gradient (~1) or tie pullback (~|dlogL/dx|) fails it.
    double const h = 1e-5;
    int bad = 0;
    for (int f = 0; f < post.dimension(); ++f) {
      auto qp = q0, qm = q0;
      qp[f] += h;
      qm[f] -= h;
      std::vector<double> gp, gm;
      double const fd = (eval_on(space, post, qp, gp) - eval_on(space, post, qm, gm)) / (2 * h);
      if (!(std::fabs(g[f] - fd) <= 1e-5 * (std::fabs(fd) + 1e-2 * std::fabs(v)))) {
        ++bad;
        MESSAGE(post.free_names()[f] << ": gradient " << g[f] << ", finite differences " << fd);
      }
    }
    CHECK(bad == 0);
    // Outside a profile's domain (|e| >= 1 through the identity transform): -inf, zero gradient.
    auto q_bad = q0;
    q_bad[1] = 1.5;
    double const vb = eval_on(space, post, q_bad, g);
    CHECK(vb == -HUGE_VAL);
    for (double x : g)
      CHECK(x == 0.0);
  }
}

TEST_CASE("Posterior: names, starts from prior draws and start scales") {
  Kokkos::DefaultHostExecutionSpace const space;
  auto const like = make_likelihood<double>(space, 12);
  Table const table = lens_table();
  lensing::Posterior<Like<double>> const post(like, table,
                                              {{"lens0.center_y", lensing::ParameterTransform::bounded(-1, 1)}});
  CHECK(post.transform(4).kind == lensing::ParameterTransform::Kind::bounded);
  // Starts are the table's own prior draws (image s) of the free columns.
  auto const starts = post.draw_prior_starts(5, 42);
  REQUIRE(starts.size() == 5);
  lensing::View2D<double, Kokkos::HostSpace> draws("draws", 5, table.size());
  table.sample(space, draws, 42, 0);
  space.fence();
  for (int s = 0; s < 5; ++s) {
    auto const x = post.constrain(starts[s]);
    for (int j = 0; j < int(x.size()); ++j) {
      int const c = table.index(post.all_names()[j]);
      CHECK(x[j] == doctest::Approx(draws(s, c)).epsilon(1e-9));
    }
  }
  // Start scales: sigma for a normal prior on the identity (lens0.e1: 0.2,
  // to the 2000-draw quantile error ~ 3 %); the logit's scale for a uniform
  // on the bounded transform (central 68 % of a logistic: 1.6685).
  auto const& sc = post.start_scales();
  REQUIRE(int(sc.size()) == post.dimension());
  CHECK(sc[1] == doctest::Approx(0.2).epsilon(0.06));
  CHECK(sc[0] == doctest::Approx(std::log(0.8413447460685429 / 0.15865525393145707)).epsilon(0.06));
  // The model at q: the constrained parameters, unpacked.
  auto const m = post.model_at(starts[0]);
  auto const x0 = post.constrain(starts[0]);
  double packed[23];
  m.pack(packed);
  for (int j = 0; j < 23; ++j)
    CHECK(packed[j] == x0[j]);
  // unconstrain accepts the free values as well as a full row.
  std::vector<double> free_values;
  for (auto const& n : post.free_names())
    free_values.push_back(
        x0[std::size_t(std::find(post.all_names().begin(), post.all_names().end(), n) - post.all_names().begin())]);
  auto const qa = post.unconstrain(free_values), qb = post.unconstrain(x0);
  for (int f = 0; f < post.dimension(); ++f)
    CHECK(qa[f] == qb[f]);
}

TEST_CASE("Posterior: unknown and missing names, bad overrides, starts outside the support") {
  Kokkos::DefaultHostExecutionSpace const space;
  auto const like = make_likelihood<double>(space, 8);
  auto const message = [&](Table const& t, lensing::Posterior<Like<double>>::transform_overrides const& o = {}) {
    try {
      lensing::Posterior<Like<double>> const post(like, t, o);
    } catch (std::invalid_argument const& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  Table unknown = lens_table();
  unknown.add("lens0.theta_e", P::uniform(0, 1));  // a typo
  std::string const m1 = message(unknown);
  CHECK(m1.find("lensing::Posterior: ") == 0);
  CHECK(m1.find("'lens0.theta_e'") != std::string::npos);
  CHECK(m1.find("known: lens0.theta_E, lens0.e1") != std::string::npos);
  Table missing;
  auto const full = lens_table();
  for (int c = 0; c < full.size(); ++c)
    if (!full.is_tied(c) && full.names()[c] != "source0.amp") missing.add(full.names()[c], full.prior(c));
  missing.tie("light0.e1", "lens0.e1", 0.5, 0.01);
  missing.tie("light0.center_x", "lens0.center_x");
  missing.tie("light0.center_y", "lens0.center_y");
  std::string const m2 = message(missing);
  CHECK(m2.find("'source0.amp' has no prior") != std::string::npos);
  CHECK(m2.find("known: ") != std::string::npos);
  std::string const m3 = message(full, {{"lens1.ra_0", lensing::ParameterTransform::identity()}});
  CHECK(m3.find("'lens1.ra_0', which is not a free parameter") != std::string::npos);
  Table all_fixed;
  for (auto const& n : lensing::model_parameter_names<Model<double>>())
    all_fixed.add(n, P::fixed(n.find("R_sersic") != std::string::npos || n.find("amp") != std::string::npos ? 1 : 0));
  CHECK(message(all_fixed).find("nothing to infer") != std::string::npos);

  lensing::Posterior<Like<double>> const post(like, full);
  auto row = truth();
  row[0] = 0.5;  // theta_E on the uniform prior's lower bound: not inside (0.5, 2)
  try {
    post.initial_point_from(row);
    CHECK(false);
  } catch (std::invalid_argument const& e) {
    std::string const m(e.what());
    CHECK(m.find("lensing::Posterior::initial_point_from: 'lens0.theta_E' = 0.5 is outside") == 0);
    CHECK(m.find("bounded(0.5, 2)") != std::string::npos);
  }
  row = truth();
  row[10] = -0.1;  // source0.R_sersic < 0 under a half-normal
  CHECK_THROWS_WITH_AS(post.initial_point_from(row), doctest::Contains("'source0.R_sersic' = -0.1"),
                       std::invalid_argument);
  CHECK_THROWS_AS(post.unconstrain(std::vector<double>(5, 0.0)), std::invalid_argument);  // wrong length
}

TEST_CASE("Posterior: a flat likelihood gives back the prior (log-Jacobians)") {
  using M = lensing::LensModel<lensing::SIE<double>, lensing::SersicEllipse<double>, lensing::NoLight<double>>;
  Table t;
  t.add("lens0.theta_E", P::uniform(0.5, 2.0))
      .add("lens0.e1", P::normal(0, 0.1))
      .add("lens0.e2", P::truncated_normal(0.1, 0.2, -0.3, 0.4))
      .add("lens0.center_x", P::gamma(3, 4))
      .add("lens0.center_y", P::fixed(0.01))
      .add("source0.amp", P::log_uniform(1, 100))
      .add("source0.R_sersic", P::half_normal(0.5))
      .add("source0.n_sersic", P::beta(2, 5))
      .add("source0.e2", P::truncated_normal(0, 0.1, -HUGE_VAL, 0.2))
      .add("source0.center_x", P::student_t(7, 0.1, 0.1))
      .add("source0.center_y", P::fixed(-0.02));
  t.tie("source0.e1", "lens0.e1", 2, 0.1);
  lensing::Posterior<FlatLikelihood<M>> const post(FlatLikelihood<M>{}, t);
  REQUIRE(post.dimension() == 9);
  lensing::SamplerOptions opt;
  opt.num_chains = 4;
  opt.num_warmup = 400;
  opt.num_draws = 1000;
  opt.seed = 3;
  opt.threads = 1;
  auto const r = lensing::sample(Kokkos::DefaultHostExecutionSpace(), post, opt);
  auto const s = lensing::summarize(post, r);
  std::ostringstream os;
  s.print(os);
  MESSAGE(os.str());
  // A rare divergence in a transformed tail (gamma, beta near 0) is allowed.
  CHECK(s.divergences <= 4);
  auto const x = lensing::constrained_draws(post, r);
  CHECK(post.constrained_draws(r) == x);
  std::size_t const n = std::size_t(r.num_chains) * r.num_draws, m = post.all_names().size();
  // Mean within 5 MCSE (MCSE from the chains' ESS); variance within 5
  // standard errors sqrt((m4 - var^2) / ESS) of the sample variance.
  for (std::size_t j = 0; j < m; ++j) {
    std::string const& name = post.all_names()[j];
    int const c = t.index(name);
    if (t.is_tied(c)) {
      for (std::size_t i = 0; i < n; ++i)
        CHECK(x[i * m + j] == doctest::Approx(2 * x[i * m + 1] + 0.1).epsilon(1e-12));
      continue;
    }
    auto const& prior = t.prior(c);
    auto const& row = s[name];
    if (prior.kind == lensing::PriorKind::fixed) {
      CHECK(row.mean == doctest::Approx(prior.p0).epsilon(1e-12));  // a sum of 4000 equal values
      CHECK(row.sd <= 1e-12);
      CHECK(row.q50 == prior.p0);
      continue;
    }
    double m4 = 0;
    for (std::size_t i = 0; i < n; ++i)
      m4 += std::pow(x[i * m + j] - row.mean, 4) / double(n);
    double const var = row.sd * row.sd, ess = row.ess_bulk;
    INFO(name << ": mean " << row.mean << " vs " << prior.mean() << " (mcse " << row.mcse << "), var " << var << " vs "
              << prior.variance());
    CHECK(std::fabs(row.mean - prior.mean()) <= 5 * row.mcse);
    CHECK(std::fabs(var - prior.variance()) <= 5 * std::sqrt((m4 - var * var) / ess));
  }
  // CSV with named columns.
  std::ostringstream csv;
  lensing::write_csv(csv, post, r);
  std::string const header = csv.str().substr(0, csv.str().find('\n'));
  CHECK(header.find("chain,draw,lens0.theta_E,lens0.e1,") == 0);
  CHECK(header.find("source0.center_y,lp__") != std::string::npos);
}

LENSING_TEST_CASE_TEMPLATE("Posterior: sample() bit-identical at 1 and 2 threads; clones are independent", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  if constexpr (Kokkos::SpaceAccessibility<Space, Kokkos::HostSpace>::accessible) {
    Space const space;
    lensing::Posterior<Like<double>> const post(make_likelihood<double>(space, 16), lens_table());
    auto const copy = post.clone();
    CHECK(copy.likelihood().model_image().data() != post.likelihood().model_image().data());
    auto const q0 = post.initial_point_from(truth());
    std::vector<double> ga, gb, gc;
    auto qb = q0;
    qb[0] += 0.1;
    double const a = eval_on(space, post, q0, ga);
    double const b = eval_on(space, copy, qb, gb);  // must not disturb post's buffers
    double const a2 = eval_on(space, post, q0, gc);
    CHECK(a == a2);
    CHECK(a != b);
    CHECK(ga == gc);

    lensing::SamplerOptions opt;
    opt.num_chains = 2;
    opt.num_warmup = 20;
    opt.num_draws = 10;
    opt.max_depth = 5;
    opt.seed = 5;
    opt.init = q0;
    for (double s : post.start_scales())
      opt.init_inv_metric.push_back(1e-4 * s * s);
    opt.threads = 1;
    auto const one = lensing::sample(space, post, opt);
    opt.threads = 2;
    auto const two = lensing::sample(space, post, opt);
    MESSAGE("1 thread: " << one.gradient_evaluations << " gradients, " << one.seconds << " s");
    CHECK(one.draws == two.draws);
    CHECK(one.lp == two.lp);
    CHECK(one.n_leapfrog == two.n_leapfrog);
    CHECK(one.divergent == two.divergent);
  }
}

TEST_CASE("Posterior over a float likelihood agrees with the double one") {
  Kokkos::DefaultHostExecutionSpace const space;
  lensing::Posterior<Like<double>> const pd(make_likelihood<double>(space, 16), lens_table());
  lensing::Posterior<Like<float>> const pf(make_likelihood<float>(space, 16), lens_table());
  static_assert(std::is_same<decltype(pf)::scalar_type, double>::value, "a double posterior");
  auto const q0 = pd.initial_point_from(truth());
  std::vector<double> gd, gf;
  double const vd = eval_on(space, pd, q0, gd), vf = eval_on(space, pf, q0, gf);
  // float: the likelihood's sums of ~1e3 terms of relative error ~6e-8
  // each: |dv| <~ 1e-4 |v|; gradients to ~1e-3 of the largest component.
  CHECK(vf == doctest::Approx(vd).epsilon(1e-4));
  double gmax = 0;
  for (double x : gd)
    gmax = std::max(gmax, std::fabs(x));
  for (std::size_t f = 0; f < gd.size(); ++f)
    CHECK(std::fabs(gf[f] - gd[f]) <= 2e-3 * gmax);
}
