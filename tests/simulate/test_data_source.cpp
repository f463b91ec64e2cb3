// Training data sources (simulate/data_source.hpp): SimulatedBatches over the
// Simulator and the TrainingSetGenerator (batches = the generator's images at
// the documented indices, whatever the batch size and capacity), label
// selection and standardisation, the augmentation checked against physics
// (an image rendered at the mapped labels equals the mapped image), ArraySource
// and the DataSource concept.
#include <lensing/density/parameter_table.hpp>
#include <lensing/model/instrument.hpp>
#include <lensing/model/render.hpp>
#include <lensing/nn/train.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/simulate/data_source.hpp>
#include <lensing/simulate/simulator.hpp>
#include <lensing/simulate/training_set.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {
namespace sim = lensing::simulate;

template <class S>
using Lens = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
template <class S>
using Model = lensing::LensModel<Lens<S>, lensing::SersicEllipse<S>, lensing::SersicEllipse<S>>;
template <class S, class Mem>
using Sim = sim::Simulator<Model<S>, lensing::NoPsf<S>, Mem>;

// An HST-like galaxy-galaxy lens; lens light tied to the lens; the shear's
// origin off the grid centre (so position pairs must rotate about the centre).
template <class S, class Mem>
lensing::ParameterTable<S, Mem> lens_priors() {
  using P = lensing::Prior<S>;
  lensing::ParameterTable<S, Mem> t({{"lens0.theta_E", P::uniform(0.8, 1.4)},
                                     {"lens0.e1", P::truncated_normal(0, 0.15, -0.4, 0.4)},
                                     {"lens0.e2", P::truncated_normal(0, 0.15, -0.4, 0.4)},
                                     {"lens0.center_x", P::normal(0, 0.05)},
                                     {"lens0.center_y", P::normal(0, 0.05)},
                                     {"lens1.gamma1", P::normal(0, 0.03)},
                                     {"lens1.gamma2", P::normal(0, 0.03)},
                                     {"lens1.ra_0", P::uniform(-0.3, 0.3)},
                                     {"lens1.dec_0", P::fixed(0.1)},
                                     {"source0.amp", P::log_uniform(20, 60)},
                                     {"source0.R_sersic", P::log_uniform(0.1, 0.3)},
                                     {"source0.n_sersic", P::uniform(0.8, 2.5)},
                                     {"source0.e1", P::uniform(-0.3, 0.3)},
                                     {"source0.e2", P::uniform(-0.3, 0.3)},
                                     {"source0.center_x", P::uniform(-0.2, 0.2)},
                                     {"source0.center_y", P::uniform(-0.2, 0.2)},
                                     {"light0.amp", P::log_uniform(5, 15)},
                                     {"light0.R_sersic", P::log_uniform(0.4, 1.0)},
                                     {"light0.n_sersic", P::uniform(2.5, 4.5)},
                                     {"light0.e1", P::fixed(0)},
                                     {"light0.e2", P::fixed(0)},
                                     {"light0.center_x", P::fixed(0)},
                                     {"light0.center_y", P::fixed(0)}});
  t.tie("light0.e1", "lens0.e1");
  t.tie("light0.e2", "lens0.e2");
  t.tie("light0.center_x", "lens0.center_x", 2.0, 0.01);
  t.tie("light0.center_y", "lens0.center_y");
  return t;
}

template <class S, class Mem>
Sim<S, Mem> make_sim(lensing::PixelGrid<S> const& grid, bool noise, int capacity) {
  lensing::DetectorConfig d = lensing::DetectorConfig::noiseless();
  if (noise) {
    d.noise.shot_noise = true;
    d.noise.exposure_time = 500;
    d.noise.background_rms = 0.05;
  }
  sim::SimulatorOptions o;
  o.seed = 23;
  o.batch_capacity = capacity;
  o.noise = noise;
  o.domain_check_draws = 16;
  return Sim<S, Mem>(grid, lensing::NoPsf<S>{}, d, lens_priors<S, Mem>(), o);
}

template <class V>
std::vector<double> flat(V const& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(h.data(), h.data() + h.size());
}

// Images and labels of global images [first, first + m) straight from a generator.
template <class Space, class G>
void direct(G const& g, std::uint64_t first, int m, int ny, int nx, std::vector<double>& img,
            std::vector<double>& lab) {
  using S = typename G::scalar_type;
  using Mem = typename G::memory_space;
  Space space;
  lensing::View3D<S, Mem> i("img", m, ny, nx);
  lensing::View2D<S, Mem> l("lab", m, int(g.label_names().size()));
  g.generate(space, first, i, l);
  space.fence();
  img = flat(i);
  lab = flat(l);
}

template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (std::exception const& e) {
    return e.what();
  }
  return "(no exception)";
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("DataSource concept", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  static_assert(sim::is_data_source_v<sim::SimulatedBatches<Sim<S, Mem>>, Space>, "SimulatedBatches<Simulator>");
  static_assert(sim::is_data_source_v<sim::SimulatedBatches<sim::TrainingSetGenerator<S, Mem>>, Space>,
                "SimulatedBatches<TrainingSetGenerator>");
  static_assert(sim::is_data_source_v<sim::ArraySource<S, Mem>, Space>, "ArraySource");
  static_assert(sim::check_data_source<sim::ArraySource<S, Mem>, Space>(), "ArraySource");
  static_assert(!sim::is_data_source_v<Sim<S, Mem>, Space>, "a generator is not a source");
  static_assert(!sim::is_data_source_v<int, Space>, "int is not a source");
  CHECK(true);
}

LENSING_TEST_CASE_TEMPLATE("SimulatedBatches: batch s = the generator's images at first + s*B, any B and capacity",
                           Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const n = 12;
  auto const grid = lensing::PixelGrid<S>::square(n, S(0.1), 1);
  auto const small = make_sim<S, Mem>(grid, true, 4);  // capacity 4 < B: chunked
  auto const big = make_sim<S, Mem>(grid, true, 32);
  std::uint64_t const first = 1000;
  sim::SimulatedBatchesOptions o;
  o.batch_size = 6;
  o.first_index = first;
  o.batches_per_epoch = 2;
  sim::SimulatedBatches<Sim<S, Mem>> src(small, o);
  CHECK(src.batch_size() == 6);
  CHECK(src.sample_shape() == std::array<int, 3>{1, n, n});
  CHECK(src.num_labels() == small.num_labels());
  // Steps 0..2 (epoch 0 and the first batch of epoch 1: fresh images).
  std::vector<std::vector<double>> imgs, labs;
  for (int s = 0; s < 3; ++s) {
    auto const b = src.next(space);
    space.fence();
    REQUIRE(b.images.extent(0) == 6);
    REQUIRE(b.images.extent(1) == 1);
    CHECK(b.step == s);
    imgs.push_back(flat(b.images));
    labs.push_back(flat(b.labels));
    std::vector<double> di, dl;
    direct<Space>(big, first + std::uint64_t(6 * s), 6, n, n, di, dl);
    CHECK(imgs.back() == di);  // the same kernels on the same indices: bit-identical
    CHECK(labs.back() == dl);
  }
  // A batch size of 3: its steps 2, 3 are step 1 of the B = 6 source.
  o.batch_size = 3;
  sim::SimulatedBatches<Sim<S, Mem>> half(big, o);
  half.start_epoch(1);  // step 2
  auto const h2 = flat(half.next(space).images);
  auto const h3 = flat(half.next(space).images);
  space.fence();
  std::vector<double> joined = h2;
  joined.insert(joined.end(), h3.begin(), h3.end());
  CHECK(joined == imgs[1]);
  // start_epoch and reset reproduce.
  src.start_epoch(1);
  CHECK(flat(src.next(space).images) == imgs[2]);
  src.reset();
  CHECK(flat(src.next(space).labels) == labs[0]);
  src.reset(first + 6);
  CHECK(flat(src.next(space).labels) == labs[1]);
  // A validation source replays its epoch.
  o.batch_size = 6;
  o.fresh_each_epoch = false;
  o.first_index = sim::validation_first_index;
  sim::SimulatedBatches<Sim<S, Mem>> val(small, o);
  auto const v0 = flat(val.next(space).images);
  val.next(space);
  auto const v2 = flat(val.next(space).images);
  CHECK(v0 == v2);
  CHECK(v0 != imgs[0]);
}

LENSING_TEST_CASE_TEMPLATE("SimulatedBatches over the TrainingSetGenerator", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  sim::TrainingSetConfig c;
  c.nx = c.ny = 16;
  c.chunk_size = 3;
  c.seed = 5;
  sim::TrainingSetGenerator<S, Mem> const g(c, sim::default_training_set_priors<S, Mem>());
  sim::SimulatedBatchesOptions o;
  o.batch_size = 4;
  o.first_index = 7;
  sim::SimulatedBatches<sim::TrainingSetGenerator<S, Mem>> src(g, o);
  src.select_labels({"theta_E", "source_x"});
  src.next(space);
  auto const b = src.next(space);
  space.fence();
  std::vector<double> di, dl, d2;
  direct<Space>(g, 11, 3, 16, 16, di, dl);  // images 11..13 (one chunk) and 14
  direct<Space>(g, 14, 1, 16, 16, d2, dl);
  di.insert(di.end(), d2.begin(), d2.end());
  CHECK(flat(b.images) == di);
  // Standard pairs of the generator's names: (center_x, center_y), (source_x, source_y), e, gamma.
  CHECK(src.declare_standard_pairs() == 4);
  CHECK(src.declare_standard_pairs() == 0);
}

LENSING_TEST_CASE_TEMPLATE("SimulatedBatches: label selection and standardisation", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  auto const grid = lensing::PixelGrid<S>::square(8, S(0.2), 1);
  auto const g = make_sim<S, Mem>(grid, false, 64);
  sim::SimulatedBatchesOptions o;
  o.batch_size = 64;
  sim::SimulatedBatches<Sim<S, Mem>> src(g, o);
  // Unknown name: named, with the known ones.
  std::string const msg = message_of([&] { src.select_labels({"lens0.theta_E", "lens0.thetaE"}); });
  CHECK(msg.find("SimulatedBatches::select_labels") != std::string::npos);
  CHECK(msg.find("'lens0.thetaE'") != std::string::npos);
  CHECK(msg.find("known: lens0.theta_E, lens0.e1") != std::string::npos);
  CHECK(src.num_labels() == 23);  // unchanged by the failed call
  src.select_labels({"light0.center_x", "lens0.theta_E", "lens1.gamma2"});
  CHECK(src.label_names() == std::vector<std::string>{"light0.center_x", "lens0.theta_E", "lens1.gamma2"});
  // From the priors: uniform(0.8, 1.4): 1.1, 0.6/sqrt(12); normal(0, 0.03);
  // light0.center_x = 2 lens0.center_x + 0.01: 0.01, 2 * 0.05.
  src.standardise_from_priors();
  CHECK(src.mean(0) == doctest::Approx(0.01));
  CHECK(src.sd(0) == doctest::Approx(0.1));
  CHECK(src.mean(1) == doctest::Approx(1.1));
  CHECK(src.sd(1) == doctest::Approx(0.6 / std::sqrt(12.0)));
  CHECK(src.mean(2) == doctest::Approx(0.0));
  CHECK(src.sd(2) == doctest::Approx(0.03));
  auto const b = src.next(space);
  space.fence();
  auto const lab = flat(b.labels);
  auto const raw = flat(src.raw_labels());
  int const cols[3] = {21, 0, 6};
  double const eps = std::numeric_limits<S>::epsilon();
  for (int i = 0; i < 64; ++i)
    for (int k = 0; k < 3; ++k) {
      double const want = (raw[i * 23 + cols[k]] - src.mean(k)) / src.sd(k);
      // One subtraction and one division in Scalar on values of size <~ 10 (the
      // mean and sd rounded to Scalar): a few ulp of 10.
      CHECK(std::fabs(lab[i * 3 + k] - want) <= 40 * eps);
    }
  // destandardise: host rows and device views give the raw labels back.
  auto const row = src.destandardise(std::vector<double>{lab[3], lab[4], lab[5]});
  for (int k = 0; k < 3; ++k)
    CHECK(std::fabs(row[k] - raw[23 + cols[k]]) <= 40 * eps);
  lensing::View2D<S, Mem> pred("pred", 64, 3);
  Kokkos::deep_copy(pred, b.labels);
  src.destandardise(space, pred);
  space.fence();
  auto const back = flat(pred);
  for (int i = 0; i < 64; ++i)
    for (int k = 0; k < 3; ++k)
      CHECK(std::fabs(back[i * 3 + k] - raw[i * 23 + cols[k]]) <= 40 * eps);
  // A fixed column cannot be standardised from its prior.
  src.select_labels({"lens0.theta_E", "lens1.dec_0"});
  std::string const fixed = message_of([&] { src.standardise_from_priors(); });
  CHECK(fixed.find("'lens1.dec_0'") != std::string::npos);
  CHECK(src.mean(0) == 0.0);  // unchanged (strong guarantee)
  CHECK(message_of([&] { src.standardise_from_pilot(space, 100, 0); }).find("'lens1.dec_0'") != std::string::npos);
  // The pilot: 512 images of theta_E ~ U(0.8, 1.4): mean within 4 standard errors.
  src.select_labels({"lens0.theta_E"});
  src.standardise_from_pilot(space, 512, 1u << 20);
  double const sd = 0.6 / std::sqrt(12.0);
  CHECK(std::fabs(src.mean(0) - 1.1) < 4 * sd / std::sqrt(512.0));
  CHECK(std::fabs(src.sd(0) - sd) < 0.15 * sd);
  CHECK(src.step() == 1);  // the pilot does not move the iterator
  CHECK_THROWS_AS(src.standardise({1.0}, {0.0}), std::invalid_argument);
}

// The test that matters: mapping an image by a flip / quarter turn equals
// rendering at the mapped labels.  Per image b of an augmented batch of a
// noiseless Simulator (no PSF, supersampling 2, grid centre off the origin):
// images(b) == render(raw_labels(b)), the raw labels being the mapped ones.
LENSING_TEST_CASE_TEMPLATE("augmentation: the mapped image is the image of the mapped labels", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  struct Case {
    int nx, ny;
    bool rotations;
  };
  for (Case const c : {Case{24, 24, true}, Case{20, 16, false}}) {
    CAPTURE(c.nx);
    auto const grid = lensing::PixelGrid<S>(c.nx, c.ny, S(0.12), 2, S(0.07), S(-0.05));
    auto const g = make_sim<S, Mem>(grid, false, 48);
    int const B = 48;
    sim::SimulatedBatchesOptions o;
    o.batch_size = B;
    o.first_index = 300;
    sim::SimulatedBatches<Sim<S, Mem>> plain(g, o);
    o.augmentation.flips = true;
    o.augmentation.rotations = c.rotations;
    o.augmentation.seed = 9;
    sim::SimulatedBatches<Sim<S, Mem>> src(g, o);
    // Undeclared pairs are refused (the image would turn, the labels not).
    std::string const undeclared = message_of([&] { src.next(space); });
    CHECK(undeclared.find("'lens0.e1' is in no declared pair") != std::string::npos);
    CHECK(src.step() == 0);
    // lens0 centre and e, lens1 gamma and (ra_0, dec_0), source0 e and centre, light0 e and centre.
    CHECK(src.declare_standard_pairs() == 8);
    auto const b = src.next(space);
    lensing::View3D<S, Mem> ref("ref", B, c.ny, c.nx);
    g.render(space, src.raw_labels(), ref);
    auto const p = plain.next(space);
    space.fence();
    auto const img = flat(b.images), want = flat(ref), orig = flat(p.images);
    std::set<int> seen;
    int const npix = c.nx * c.ny;
    double const eps = std::numeric_limits<S>::epsilon();
    double worst = 0;
    for (int i = 0; i < B; ++i) {
      int const gi = sim::Dihedral::draw(9, 300 + i, true, c.rotations);
      seen.insert(gi);
      double peak = 0, diff = 0, moved = 0;
      for (int q = 0; q < npix; ++q) {
        peak = std::max(peak, std::fabs(want[i * npix + q]));
        diff = std::max(diff, std::fabs(img[i * npix + q] - want[i * npix + q]));
        moved = std::max(moved, std::fabs(orig[i * npix + q] - want[i * npix + q]));
      }
      // Error model: the mapped sub-pixel positions and the mapped labels are
      // exact up to rounding (negations and swaps, and x -> cx + (x - cx) with
      // |x| <~ 1.5 arcsec: a few ulp), so the two renderings evaluate the same
      // profiles at arguments a few ulp apart, and the transcendentals (q, phi
      // from e1, e2; the Sersic exp/pow) differ by a few ulp, amplified by
      // |d ln I / d ln r| = (b_n / n) (r / R)^(1/n) <~ 20 and by the
      // relative gradient of the steep n ~ 4 lens-light core (<~ 100 /
      // arcsec at the innermost sub-pixel): below 1000 eps of the peak.
      // A wrong map moves arcs by pixels: differences of order the peak.
      CHECK(diff <= 1000 * eps * peak);
      worst = std::max(worst, diff / peak);
      if (gi != 0) CHECK(moved > 0.01 * peak);  // the map is not the identity
    }
    MESSAGE("worst |mapped image - image of mapped labels| / peak = " << worst << " (" << worst / eps << " eps)");
    CHECK(int(seen.size()) == (c.rotations ? 8 : 2));  // every group element exercised
  }
  // Quarter turns need square images.
  auto const rect = make_sim<S, Mem>(lensing::PixelGrid<S>(10, 8, S(0.1), 1), false, 4);
  sim::SimulatedBatchesOptions o;
  o.augmentation.rotations = true;
  std::string const msg = message_of([&] { sim::SimulatedBatches<Sim<S, Mem>> s(rect, o); });
  CHECK(msg.find("square") != std::string::npos);
}

LENSING_TEST_CASE_TEMPLATE("Dihedral: group maps of positions, spin-2 pairs and pixels", Config,
                           lensing::test::DoubleConfigs) {
  // A quarter turn maps (1, 0) to (0, 1); a spin-2 pair at phi = 0 (e1 > 0)
  // to phi = 90 degrees (e1 < 0); the mirror maps phi = 45 deg (e2 > 0) to -45.
  double x = 1, y = 0, e1 = 0.2, e2 = 0.1;
  sim::Dihedral::position(2, x, y);
  CHECK(x == 0.0);
  CHECK(y == 1.0);
  sim::Dihedral::spin2(2, e1, e2);
  CHECK(e1 == -0.2);
  CHECK(e2 == -0.1);
  e1 = 0.0, e2 = 0.3;
  sim::Dihedral::spin2(1, e1, e2);
  CHECK(e2 == -0.3);
  // Pixels: the image of pixel (ix, iy) under g sits where the position map sends its centre.
  int const n = 5;
  for (int g = 0; g < 8; ++g)
    for (int iy = 0; iy < n; ++iy)
      for (int ix = 0; ix < n; ++ix) {
        int sx = -1, sy = -1;
        sim::Dihedral::source_pixel(g, ix, iy, n, n, sx, sy);
        double u = sx - 2.0, v = sy - 2.0;
        sim::Dihedral::position(g, u, v);
        CHECK(u == ix - 2.0);
        CHECK(v == iy - 2.0);
      }
}

LENSING_TEST_CASE_TEMPLATE("ArraySource: per-epoch permutations of arrays, as nn::train visits them", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const N = 11, C = 2, H = 3, W = 2, K = 2, B = 3;
  lensing::View4D<S, Kokkos::HostSpace> x("x", N, C, H, W);
  lensing::View2D<S, Kokkos::HostSpace> y("y", N, K);
  for (int i = 0; i < N; ++i) {
    for (int j = 0; j < C * H * W; ++j)
      x.data()[i * C * H * W + j] = S(100 * i + j);
    y(i, 0) = S(i);
    y(i, 1) = S(-i);
  }
  sim::ArraySourceOptions o;
  o.batch_size = B;
  o.seed = 4;
  sim::ArraySource<S, Mem> src(x, y, o);
  CHECK(src.batches_per_epoch() == 3);
  CHECK(src.sample_shape() == std::array<int, 3>{C, H, W});
  for (long e = 0; e < 2; ++e) {
    auto const perm = src.permutation(e);
    CHECK(perm == lensing::nn::detail::epoch_permutation(N, 4, e, true));
    for (int j = 0; j < 3; ++j) {
      auto const b = src.next(space);
      space.fence();
      CHECK(b.step == e * 3 + j);
      auto const hx = flat(b.images), hy = flat(b.labels);
      for (int i = 0; i < B; ++i) {
        long const s = perm[std::size_t(j * B + i)];
        CHECK(hy[i * K] == double(s));
        CHECK(hy[i * K + 1] == double(-s));
        CHECK(hx[i * C * H * W + 5] == double(100 * s + 5));
      }
    }
  }
  CHECK(src.permutation(0) != src.permutation(1));
  src.start_epoch(1);
  auto const again = flat(src.next(space).labels);
  space.fence();
  auto const p1 = src.permutation(1);
  CHECK(again[0] == double(p1[0]));
  // Device arrays are used in place.
  lensing::View4D<S, Mem> dx("dx", N, C, H, W);
  lensing::View2D<S, Mem> dy("dy", N, K);
  Kokkos::deep_copy(dx, x);
  Kokkos::deep_copy(dy, y);
  o.shuffle = false;
  sim::ArraySource<S, Mem> dev(dx, dy, o);
  auto const b0 = dev.next(space);
  space.fence();
  CHECK(flat(b0.labels) == std::vector<double>{0, 0, 1, -1, 2, -2});
  CHECK_THROWS_AS((sim::ArraySource<S, Mem>(dx, Kokkos::subview(dy, Kokkos::make_pair(0, 5), Kokkos::ALL), o)),
                  std::invalid_argument);
}
