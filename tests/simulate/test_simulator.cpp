// The batched forward model (render_batch, Detector) and the Simulator:
// batch == single-image renderer, determinism across batch splits and
// backends, the likelihood of a simulated image at its truth (chi^2 per
// pixel ~ 1), and the prior table's errors.
#include <lensing/density/parameter_table.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/instrument.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/model/render.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/lens_presets.hpp>
#include <lensing/simulate/simulator.hpp>
#include <lensing/simulate/write.hpp>
#include <lensing/sources/sersic.hpp>
#include <lensing/sources/shapelets.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>  // getpid: one directory per test process (ctest runs the omp1 and omp2 entries at once)

namespace {
template <class S>
using Model = lensing::simulate::GalaxyGalaxyModel<S>;

template <class S, class Mem>
lensing::ParameterTable<S, Mem> lens_priors() {
  return lensing::simulate::galaxy_galaxy_priors<S, Mem>();
}

template <class V>
std::vector<double> flat(V const& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(h.data(), h.data() + h.size());
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("model_parameter_names: group, component and lenstronomy name", Config,
                           lensing::test::DoubleConfigs) {
  using S = typename Config::scalar;
  auto const names = lensing::simulate::model_parameter_names<Model<S>>();
  REQUIRE(names.size() == std::size_t(Model<S>::num_params));
  CHECK(names[0] == "lens0.theta_E");
  CHECK(names[5] == "lens1.gamma1");
  CHECK(names[9] == "source0.amp");
  CHECK(names.back() == "light0.center_y");
  // Names repeated inside one component are numbered (shapelet coefficients).
  using ShapeletModel = lensing::LensModel<lensing::SIS<S>, lensing::Shapelets<S, 1>, lensing::NoLight<S>>;
  auto const sn = lensing::simulate::model_parameter_names<ShapeletModel>();
  REQUIRE(sn.size() == std::size_t(ShapeletModel::num_params));
  CHECK(std::find(sn.begin(), sn.end(), "source0.amp_0") != sn.end());
  CHECK(std::find(sn.begin(), sn.end(), "source0.amp_2") != sn.end());
  CHECK(std::find(sn.begin(), sn.end(), "source0.amp") == sn.end());
}

LENSING_TEST_CASE_TEMPLATE("render_batch equals the single-image renderer", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const n = 5, ny = 23, nx = 31;
  for (int k : {1, 2, 3}) {  // 2: render_batch's vectorised binning
    auto const grid = lensing::PixelGrid<S>(nx, ny, S(0.08), k);
    auto const table = lens_priors<S, Mem>();
    lensing::View2D<S, Mem> labels("labels", n, table.size());
    table.sample(space, labels, 11, 0);
    lensing::simulate::Simulator<Model<S>, lensing::NoPsf<S>, Mem> const sim(
        grid, lensing::NoPsf<S>{}, lensing::DetectorConfig::noiseless(), table, {});
    lensing::View3D<S, Mem> batch("batch", n, ny, nx);
    sim.render(space, labels, batch);
    space.fence();
    auto const hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), labels);
    auto const hb = flat(batch);
    lensing::Renderer<S, Mem> const renderer(grid);
    lensing::View2D<S, Mem> one("one", ny, nx);
    for (int b = 0; b < n; ++b) {
      std::vector<double> row(table.size());
      for (int c = 0; c < table.size(); ++c)
        row[c] = double(hl(b, c));
      auto const m = sim.model(row);
      renderer.render(space, m.lens, m.source, m.lens_light, one);
      space.fence();
      auto const ho = flat(one);
      double peak = 0, diff = 0;
      for (std::size_t p = 0; p < ho.size(); ++p) {
        peak = std::max(peak, std::fabs(ho[p]));
        diff = std::max(diff, std::fabs(ho[p] - hb[b * ho.size() + p]));
      }
      // The same sums in the same order; on devices only the vector and
      // scalar forms of the profiles' transcendental functions may differ (a
      // few ulp per sub-pixel term, k^2 terms per pixel): 64 eps of the peak.
      CHECK(diff <= 64 * std::numeric_limits<S>::epsilon() * peak);
      // Host: these skies (no deflection_batch, no add_surface_brightness)
      // are evaluated on the prepared profiles, as Renderer does, with the
      // same formulas and sums (row blocks here: n = 5 < 8 per thread): the
      // same bits.  Fails on a batch path that evaluates the profiles
      // unprepared (1e-15 to 2e-14 apart in double).
      if constexpr (lensing::detail::is_host_space_v<Space>) CHECK(diff == 0);
      CHECK(peak > 0);
    }
  }
}

LENSING_TEST_CASE_TEMPLATE("Simulator: deterministic across batch splits and backends", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using Psf = lensing::GaussianFilter<S, Mem>;
  Space space;
  int const n = 6, size = 24;
  auto const grid = lensing::PixelGrid<S>::square(size, S(0.05), 2);
  auto band = lensing::presets::hst_like();
  lensing::simulate::SimulatorOptions opt;
  opt.seed = 5;
  opt.batch_capacity = n;
  lensing::simulate::Simulator<Model<S>, Psf, Mem> const sim(grid, Psf(band.psf_fwhm, 0.05, size, size),
                                                             band.detector_config(), lens_priors<S, Mem>(), opt);
  int const K = sim.num_labels();
  lensing::View3D<S, Mem> all("all", n, size, size), part("part", 4, size, size);
  lensing::View2D<S, Mem> labels_all("labels_all", n, K), labels_part("labels_part", 4, K);
  sim.generate(space, 100, all, labels_all);
  space.fence();
  auto const ha = flat(all), hla = flat(labels_all);
  // Images 102..105 in one call of 4: equal to images 2..5 of the call of 6.
  sim.generate(space, 102, part, labels_part);
  space.fence();
  auto const hp = flat(part), hlp = flat(labels_part);
  std::size_t const px = std::size_t(size) * size;
  CHECK(std::equal(hp.begin(), hp.end(), ha.begin() + 2 * px));
  CHECK(std::equal(hlp.begin(), hlp.end(), hla.begin() + 2 * K));
  // Ties: the lens light follows the lens's centre and ellipticity.
  auto const& t = sim.table();
  for (int b = 0; b < n; ++b) {
    CHECK(hla[b * K + t.index("light0.center_x")] == hla[b * K + t.index("lens0.center_x")]);
    CHECK(hla[b * K + t.index("light0.e2")] == hla[b * K + t.index("lens0.e2")]);
  }
  // The same images on the Serial backend (every host backend runs the same code).
#if defined(KOKKOS_ENABLE_SERIAL)
  if constexpr (std::is_same<Mem, Kokkos::HostSpace>::value) {
    lensing::simulate::Simulator<Model<S>, lensing::GaussianFilter<S, Kokkos::HostSpace>, Kokkos::HostSpace> const
        serial(grid, lensing::GaussianFilter<S, Kokkos::HostSpace>(band.psf_fwhm, 0.05, size, size),
               band.detector_config(), lens_priors<S, Kokkos::HostSpace>(), opt);
    lensing::View3D<S, Kokkos::HostSpace> s_all("s_all", n, size, size);
    lensing::View2D<S, Kokkos::HostSpace> s_labels("s_labels", n, K);
    serial.generate(Kokkos::Serial(), 100, s_all, s_labels);
    auto const hs = flat(s_all);
    CHECK(std::equal(hs.begin(), hs.end(), ha.begin()));
  }
#endif
}

LENSING_TEST_CASE_TEMPLATE("Simulator and likelihood share the forward model: chi^2 per pixel ~ 1 at the truth", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using Psf = lensing::GaussianFilter<S, Mem>;
  Space space;
  int const n = 8, size = 40;
  auto const grid = lensing::PixelGrid<S>::square(size, S(0.05), 2);
  auto band = lensing::presets::hst_like();
  auto detector = band.detector_config();
  // Pixel noise only: artefacts are not in the likelihood's noise model.
  detector.cosmic_rays = detector.hot_dead_pixels = detector.masks = false;
  detector.bias_sigma = 0;
  lensing::simulate::SimulatorOptions opt;
  opt.seed = 9;
  opt.batch_capacity = n;
  Psf const psf(band.psf_fwhm, 0.05, size, size);
  lensing::simulate::Simulator<Model<S>, Psf, Mem> const sim(grid, psf, detector, lens_priors<S, Mem>(), opt);
  int const K = sim.num_labels();
  lensing::View3D<S, Mem> images("images", n, size, size);
  lensing::View2D<S, Mem> labels("labels", n, K);
  sim.generate(space, 0, images, labels);
  space.fence();
  auto const hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), labels);
  lensing::Observation<S, Mem, Psf> const obs(grid, psf);
  auto const noise = sim.noise_model();
  lensing::View2D<S, Mem> model_image("model", size, size), sigma("sigma", size, size), mask("mask", size, size);
  Kokkos::deep_copy(mask, S(1));
  double chi2 = 0;
  for (int b = 0; b < n; ++b) {
    std::vector<double> row(K);
    for (int c = 0; c < K; ++c)
      row[c] = double(hl(b, c));
    auto const m = sim.model(row);
    obs.render(space, m, model_image);
    lensing::observation_noise_map(space, noise, model_image, sigma);
    space.fence();
    lensing::View2D<S, Mem> data("data", size, size);
    Kokkos::deep_copy(data, Kokkos::subview(images, b, Kokkos::ALL, Kokkos::ALL));
    lensing::GaussianLikelihood<Model<S>, Mem, Psf> const like(obs, data, sigma, mask);
    chi2 += -2 * double(like.value(space, m));
  }
  double const N = double(n) * size * size;
  // chi^2 of N independent pixels with the exact variance: mean N, sd
  // sqrt(2N) (plus the Poisson excess kurtosis, < 1% here at >= 100
  // counts per pixel): 5 sd.
  double const per_pixel = chi2 / N, tol = 5 * std::sqrt(2.0 / N);
  MESSAGE("chi^2 per pixel " << per_pixel << " (tolerance " << tol << ")");
  CHECK(std::fabs(per_pixel - 1) < tol);
}

LENSING_TEST_CASE_TEMPLATE("Simulator: unknown, missing and out-of-domain parameters are named", Config,
                           lensing::test::DoubleConfigs) {
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using P = lensing::Prior<S>;
  using Sim = lensing::simulate::Simulator<Model<S>, lensing::NoPsf<S>, Mem>;
  auto const grid = lensing::PixelGrid<S>::square(16, S(0.05), 1);
  auto const det = lensing::DetectorConfig::noiseless();
  auto const message = [&](lensing::ParameterTable<S, Mem> const& t) -> std::string {
    try {
      Sim const s(grid, lensing::NoPsf<S>{}, det, t, {});
    } catch (std::invalid_argument const& e) {
      return e.what();
    }
    return "";
  };
  {
    auto t = lens_priors<S, Mem>();
    t.add("lens0.theta_e", P::uniform(1, 2));  // a typo
    auto const m = message(t);
    CHECK(m.find("'lens0.theta_e'") != std::string::npos);
    CHECK(m.find("lens0.theta_E") != std::string::npos);  // the list of known names
  }
  {
    lensing::ParameterTable<S, Mem> t;
    auto const full = lens_priors<S, Mem>();
    for (int k = 0; k < full.size(); ++k)
      if (full.names()[k] != "source0.n_sersic") t.add(full.names()[k], full.is_tied(k) ? P::fixed(0) : full.prior(k));
    CHECK(message(t).find("'source0.n_sersic' has no prior") != std::string::npos);
  }
  {
    // theta_E ~ N(1, 0.3) reaches theta_E <= 0, outside SIE's domain.
    lensing::ParameterTable<S, Mem> t;
    auto const full = lens_priors<S, Mem>();
    for (int k = 0; k < full.size(); ++k)
      t.add(full.names()[k],
            full.names()[k] == "lens0.theta_E" ? P::normal(1, 0.3) : (full.is_tied(k) ? P::fixed(0) : full.prior(k)));
    auto const m = message(t);
    MESSAGE(m);
    CHECK(m.find("'lens0.theta_E'") != std::string::npos);
    CHECK(m.find("invalid model") != std::string::npos);
  }
  {
    auto const t = lens_priors<S, Mem>();
    CHECK_NOTHROW(Sim(grid, lensing::NoPsf<S>{}, det, t, {}));
  }
}

LENSING_TEST_CASE_TEMPLATE("Detector: pixel-noise variance matches its noise model on a batch", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  Space space;
  int const n = 64, size = 32;
  lensing::DetectorConfig c;
  c.noise.exposure_time = 100;
  c.noise.sky = 3;
  c.noise.read_noise = 20;
  c.noise.background_rms = 0.05;
  lensing::Detector<S, Mem> const det(c, n, size, size);
  lensing::View3D<S, Mem> images("images", n, size, size);
  S const level = 2;
  Kokkos::deep_copy(images, level);
  det.apply(space, images, 3, 0);
  space.fence();
  auto const h = flat(images);
  double mean = 0, var = 0;
  for (double v : h)
    mean += v;
  mean /= double(h.size());
  for (double v : h)
    var += (v - mean) * (v - mean);
  var /= double(h.size() - 1);
  double const expected = double(det.pixel_noise().variance(level));
  double const N = double(h.size());
  // Mean within 5 standard errors; the sample variance's relative sd is
  // sqrt(2/N) (near-Gaussian: 500 expected counts per pixel): 5 sd.
  CHECK(std::fabs(mean - level) < 5 * std::sqrt(expected / N));
  CHECK(std::fabs(var / expected - 1) < 5 * std::sqrt(2 / N));
  CHECK(expected == doctest::Approx((2.0 + 3.0) / 100 + 0.04 + 0.0025).epsilon(1e-12));
}

LENSING_TEST_CASE_TEMPLATE("Simulator sets on disk: npy, FITS, HDF5 and labels read back; unwritable output is named",
                           Config, lensing::test::FloatFirstConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using Psf = lensing::GaussianFilter<S, Mem>;
  namespace fs = std::filesystem;
  Space space;
  int const n = 6, size = 16;
  auto const grid = lensing::PixelGrid<S>::square(size, S(0.05), 2);
  auto const band = lensing::presets::hst_like();
  lensing::simulate::SimulatorOptions opt;
  opt.seed = 21;
  opt.batch_capacity = 4;
  lensing::simulate::Simulator<Model<S>, Psf, Mem> const sim(grid, Psf(band.psf_fwhm, 0.05, size, size),
                                                             band.detector_config(), lens_priors<S, Mem>(), opt);
  int const K = sim.num_labels();
  lensing::View3D<S, Mem> images("images", 4, size, size);
  lensing::View2D<S, Mem> labels("labels", 4, K);
  std::vector<float> expected;
  for (int first : {0, 4}) {
    int const m = std::min(4, n - first);
    auto const im = Kokkos::subview(images, Kokkos::make_pair(0, m), Kokkos::ALL, Kokkos::ALL);
    auto const lb = Kokkos::subview(labels, Kokkos::make_pair(0, m), Kokkos::ALL);
    sim.generate(space, std::uint64_t(first), im, lb);
    space.fence();
    auto const h = flat(im);
    expected.insert(expected.end(), h.begin(), h.end());
  }
  std::string const dir = (fs::temp_directory_path() /
                           ("lensing_simulator_set_" + std::to_string(::getpid()) + "_" + std::string(Space::name())))
                              .string();
  fs::remove_all(dir);
  lensing::simulate::TrainingSetWriteOptions wopt;
  wopt.progress = false;
  wopt.mosaic_count = 4;
  auto const sum = lensing::simulate::write_training_set(space, sim, n, dir, wopt);
  CHECK(sum.chunks == 2);
  auto const ri = lensing::io::read_npy<float>(dir + "/images.npy");
  CHECK(ri.data == expected);
  auto const lab = lensing::simulate::read_training_labels(dir);
  CHECK(lab.names == sim.label_names());
  CHECK(lab.values.shape()[0] == std::size_t(n));
#if defined(LENSING_HAS_HDF5)
  auto const h5 = lensing::io::read_hdf5_training_set(dir + "/training_set.h5");
  CHECK(h5.images == expected);
  CHECK(h5.label_names == sim.label_names());
#endif
  fs::remove_all(dir);
  // An output directory below a regular file cannot be created: the error names it.
  std::string const file = dir + "_file";
  { std::ofstream(file) << "x"; }
  try {
    lensing::simulate::write_training_set(space, sim, n, file + "/set", wopt);
    CHECK_MESSAGE(false, "no exception for an unwritable directory");
  } catch (std::runtime_error const& e) {
    CHECK(std::string(e.what()).find(file) != std::string::npos);
  }
  fs::remove(file);
}
