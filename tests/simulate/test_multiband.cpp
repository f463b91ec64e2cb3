// MultiBandSimulator: each band is the single-band Simulator of the model
// with its amplitudes times the band's flux ratios (bit for bit), each band
// has its own noise stream, batches split anywhere give the same images,
// one band is the Simulator itself, and bad bands or tables are named.
#include <lensing/density/parameter_table.hpp>
#include <lensing/model/instrument.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/multiband.hpp>
#include <lensing/simulate/simulator.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {
template <class S>
using Lens = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
template <class S>
using Model = lensing::LensModel<Lens<S>, lensing::SersicEllipse<S>, lensing::SersicEllipse<S>>;

template <class S>
using Entries = std::vector<std::pair<std::string, lensing::Prior<S>>>;

// An LSST-like galaxy-galaxy lens (amplitudes of the r band, e-/s per
// arcsec^2) with g and i colours; `drop` removes an entry, `extra` appends.
template <class S, class Mem>
lensing::ParameterTable<S, Mem> priors(std::string const& drop = "", Entries<S> const& extra = {},
                                       bool colours = true) {
  using P = lensing::Prior<S>;
  Entries<S> e{{"lens0.theta_E", P::uniform(0.9, 1.3)},
               {"lens0.e1", P::uniform(-0.2, 0.2)},
               {"lens0.e2", P::uniform(-0.2, 0.2)},
               {"lens0.center_x", P::normal(0, 0.05)},
               {"lens0.center_y", P::normal(0, 0.05)},
               {"lens1.gamma1", P::normal(0, 0.03)},
               {"lens1.gamma2", P::normal(0, 0.03)},
               {"lens1.ra_0", P::fixed(0)},
               {"lens1.dec_0", P::fixed(0)},
               {"source0.amp", P::log_uniform(5, 20)},
               {"source0.R_sersic", P::log_uniform(0.15, 0.4)},
               {"source0.n_sersic", P::uniform(0.8, 2.5)},
               {"source0.e1", P::uniform(-0.3, 0.3)},
               {"source0.e2", P::uniform(-0.3, 0.3)},
               {"source0.center_x", P::uniform(-0.2, 0.2)},
               {"source0.center_y", P::uniform(-0.2, 0.2)},
               {"light0.amp", P::log_uniform(5, 15)},
               {"light0.R_sersic", P::log_uniform(0.5, 1.0)},
               {"light0.n_sersic", P::uniform(2.5, 4.5)},
               {"light0.e1", P::uniform(-0.2, 0.2)},
               {"light0.e2", P::uniform(-0.2, 0.2)},
               {"light0.center_x", P::fixed(0)},
               {"light0.center_y", P::fixed(0)}};
  if (colours) {
    e.push_back({"g.source_flux_ratio", P::log_uniform(1.0, 1.5)});  // blue source
    e.push_back({"g.light_flux_ratio", P::log_uniform(0.3, 0.6)});   // red lens
    e.push_back({"i.source_flux_ratio", P::log_uniform(0.7, 1.0)});
    e.push_back({"i.light_flux_ratio", P::log_uniform(1.1, 1.5)});
  }
  lensing::ParameterTable<S, Mem> t;
  for (auto const& x : e)
    if (x.first != drop) t.add(x.first, x.second);
  for (auto const& x : extra)
    t.add(x.first, x.second);
  t.tie("light0.center_x", "lens0.center_x");
  t.tie("light0.center_y", "lens0.center_y");
  return t;
}

std::vector<lensing::BandConfig> gri() {
  return {lensing::presets::lsst_like('g'), lensing::presets::lsst_like('r'), lensing::presets::lsst_like('i')};
}

template <class V>
std::vector<double> flat(V const& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(h.data(), h.data() + h.size());
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("MultiBandSimulator: band b is the Simulator with amplitudes times b's flux ratios", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using Psf = lensing::GaussianFilter<S, Mem>;
  using Multi = lensing::simulate::MultiBandSimulator<Model<S>, Psf, Mem>;
  Space space;
  int const m = 5, size = 20, k = 2;
  std::uint64_t const first = 7;
  lensing::simulate::MultiBandOptions opt;
  opt.seed = 3;
  opt.batch_capacity = m;
  opt.reference_band = "r";
  auto const bands = gri();
  Multi const multi(bands, size, size, k, priors<S, Mem>(), opt);
  REQUIRE(multi.num_bands() == 3);
  REQUIRE(multi.reference_band() == 1);
  int const K = multi.num_labels();
  lensing::View4D<S, Mem> images("images", m, 3, size, size);
  lensing::View2D<S, Mem> labels("labels", m, K);
  multi.generate(space, first, images, labels);
  space.fence();
  auto const hi = flat(images), hl = flat(labels);
  auto const& t = multi.table();
  auto const& mt = multi.model_table();
  REQUIRE(mt.size() == Model<S>::num_params);
  std::size_t const px = std::size_t(size) * size;
  for (int b = 0; b < 3; ++b) {
    auto const& band = bands[b];
    std::string const ratio[2] = {band.name + ".source_flux_ratio", band.name + ".light_flux_ratio"};
    // The band's labels by hand: amplitudes times the ratios (in Scalar, as the kernel).
    lensing::View2D<S, Mem> band_labels("band_labels", m, mt.size());
    auto hb = Kokkos::create_mirror_view(band_labels);
    for (int i = 0; i < m; ++i) {
      std::vector<double> row(hl.begin() + i * K, hl.begin() + (i + 1) * K);
      for (int c = 0; c < mt.size(); ++c) {
        auto const& name = mt.names()[c];
        S v = S(row[t.index(name)]);
        if (b != 1 && name == "source0.amp") v = v * S(row[t.index(ratio[0])]);
        if (b != 1 && name == "light0.amp") v = v * S(row[t.index(ratio[1])]);
        hb(i, c) = v;
      }
      auto const r = multi.band_row(row, b);
      for (int c = 0; c < mt.size(); ++c)
        CHECK(r[c] == double(hb(i, c)));
    }
    Kokkos::deep_copy(band_labels, hb);
    lensing::simulate::SimulatorOptions so;
    so.batch_capacity = m;
    auto const grid = lensing::PixelGrid<S>::square(size, S(band.pixel_scale), k);
    lensing::simulate::Simulator<Model<S>, Psf, Mem> const single(
        grid, Psf(band.psf_fwhm, band.pixel_scale, size, size), band.detector_config(), mt, so);
    lensing::View3D<S, Mem> expected("expected", m, size, size);
    single.render(space, band_labels, expected);
    // The band's detector with the band's noise seed.
    lensing::Detector<S, Mem> const det(band.detector_config(), m, size, size);
    det.apply(space, expected, lensing::simulate::band_noise_seed(opt.seed, b), first);
    space.fence();
    auto const he = flat(expected);
    int mismatched = 0;
    for (int i = 0; i < m; ++i)
      for (std::size_t p = 0; p < px; ++p)
        mismatched += he[i * px + p] != hi[(std::size_t(i) * 3 + b) * px + p];
    // The same code path: equal bit for bit.
    CHECK(mismatched == 0);
  }
  // The colours are in the images: the g band's source is brighter than r's
  // by its drawn ratio, its lens light fainter (ratios 1..1.5 and 0.3..0.6).
  for (int i = 0; i < m; ++i) {
    std::vector<double> row(hl.begin() + i * K, hl.begin() + (i + 1) * K);
    CHECK(multi.model(row, 0).source.amp == S(S(row[t.index("source0.amp")]) * S(row[t.index("g.source_flux_ratio")])));
    CHECK(multi.model(row, 1).lens_light.amp == S(row[t.index("light0.amp")]));
  }
}

LENSING_TEST_CASE_TEMPLATE("MultiBandSimulator: deterministic across batch splits, one noise stream per band", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using P = lensing::Prior<S>;
  using Psf = lensing::GaussianFilter<S, Mem>;
  using Multi = lensing::simulate::MultiBandSimulator<Model<S>, Psf, Mem>;
  Space space;
  int const n = 6, size = 16;
  lensing::simulate::MultiBandOptions opt;
  opt.seed = 11;
  opt.batch_capacity = n;
  // Bands "r" and "r2": the same band twice, the same colour.
  auto r2 = lensing::presets::lsst_like('r');
  r2.name = "r2";
  std::vector<lensing::BandConfig> const bands{lensing::presets::lsst_like('r'), r2};
  Multi const multi(
      bands, size, size, 1,
      priors<S, Mem>("", {{"r2.source_flux_ratio", P::fixed(1)}, {"r2.light_flux_ratio", P::fixed(1)}}, false), opt);
  int const K = multi.num_labels();
  lensing::View4D<S, Mem> all("all", n, 2, size, size), part("part", 4, 2, size, size);
  lensing::View2D<S, Mem> labels_all("labels_all", n, K), labels_part("labels_part", 4, K);
  multi.generate(space, 100, all, labels_all);
  multi.generate(space, 102, part, labels_part);
  space.fence();
  auto const ha = flat(all), hp = flat(part), hla = flat(labels_all), hlp = flat(labels_part);
  std::size_t const image = 2 * std::size_t(size) * size;
  // Images 102..105 in one call of 4: images 2..5 of the call of 6, every band.
  CHECK(std::equal(hp.begin(), hp.end(), ha.begin() + 2 * image));
  CHECK(std::equal(hlp.begin(), hlp.end(), hla.begin() + 2 * K));
  // The same noiseless images in both bands, different noise: nearly every
  // pixel differs (two independent draws of a continuous variable with
  // > 1000 counts per pixel: equal with probability ~ 1/sqrt(counts)).
  lensing::View4D<S, Mem> clean("clean", n, 2, size, size);
  multi.render(space, labels_all, clean);
  space.fence();
  auto const hc = flat(clean);
  std::size_t const plane = std::size_t(size) * size;
  long same_clean = 0, same_noisy = 0;
  for (int i = 0; i < n; ++i)
    for (std::size_t p = 0; p < plane; ++p) {
      same_clean += hc[i * image + p] == hc[i * image + plane + p];
      same_noisy += ha[i * image + p] == ha[i * image + plane + p];
    }
  CHECK(same_clean == long(n * plane));
  CHECK(same_noisy < long(n * plane) / 10);
  // The same images on the Serial backend (one thread; every host backend runs the same code).
#if defined(KOKKOS_ENABLE_SERIAL)
  if constexpr (std::is_same<Mem, Kokkos::HostSpace>::value) {
    using H = Kokkos::HostSpace;
    lensing::simulate::MultiBandSimulator<Model<S>, lensing::GaussianFilter<S, H>, H> const serial(
        bands, size, size, 1,
        priors<S, H>("", {{"r2.source_flux_ratio", P::fixed(1)}, {"r2.light_flux_ratio", P::fixed(1)}}, false), opt);
    lensing::View4D<S, H> s_all("s_all", n, 2, size, size);
    lensing::View2D<S, H> s_labels("s_labels", n, K);
    serial.generate(Kokkos::Serial(), 100, s_all, s_labels);
    auto const hs = flat(s_all);
    CHECK(std::equal(hs.begin(), hs.end(), ha.begin()));
  }
#endif
}

LENSING_TEST_CASE_TEMPLATE("MultiBandSimulator without a PSF: bands of different pixel scales render in place", Config,
                           lensing::test::FloatFirstConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using NoPsf = lensing::NoPsf<S>;
  Space space;
  int const n = 3, size = 12;
  auto const bands = gri();
  auto g = bands[0];
  g.pixel_scale = 0.1;  // a finer g band: its own grid
  lensing::simulate::MultiBandOptions opt;
  opt.batch_capacity = n;
  opt.noise = false;
  opt.reference_band = "r";
  lensing::simulate::MultiBandSimulator<Model<S>, NoPsf, Mem> const multi({g, bands[1], bands[2]}, size, size, 2,
                                                                          priors<S, Mem>(), opt);
  int const K = multi.num_labels();
  lensing::View4D<S, Mem> images("images", n, 3, size, size);
  lensing::View2D<S, Mem> labels("labels", n, K);
  multi.generate(space, 0, images, labels);
  space.fence();
  auto const hi = flat(images), hl = flat(labels);
  lensing::simulate::SimulatorOptions so;
  so.batch_capacity = n;
  lensing::simulate::Simulator<Model<S>, NoPsf, Mem> const fine(lensing::PixelGrid<S>::square(size, S(0.1), 2), NoPsf{},
                                                                lensing::DetectorConfig::noiseless(),
                                                                multi.model_table(), so);
  lensing::View2D<S, Mem> band_labels("band_labels", n, multi.model_table().size());
  auto hb = Kokkos::create_mirror_view(band_labels);
  for (int i = 0; i < n; ++i) {
    auto const r = multi.band_row(std::vector<double>(hl.begin() + i * K, hl.begin() + (i + 1) * K), 0);
    for (std::size_t c = 0; c < r.size(); ++c)
      hb(i, c) = S(r[c]);
  }
  Kokkos::deep_copy(band_labels, hb);
  lensing::View3D<S, Mem> expected("expected", n, size, size);
  fine.render(space, band_labels, expected);
  space.fence();
  auto const he = flat(expected);
  std::size_t const px = std::size_t(size) * size;
  int mismatched = 0;
  for (int i = 0; i < n; ++i)
    for (std::size_t p = 0; p < px; ++p)
      mismatched += he[i * px + p] != hi[std::size_t(i) * 3 * px + p];
  CHECK(mismatched == 0);
  CHECK(*std::max_element(he.begin(), he.end()) > 0);
}

LENSING_TEST_CASE_TEMPLATE("MultiBandSimulator: one band is the Simulator", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using Psf = lensing::GaussianFilter<S, Mem>;
  Space space;
  int const n = 4, size = 16;
  auto const band = lensing::presets::lsst_like('i');
  lensing::simulate::MultiBandOptions opt;
  opt.seed = 21;
  opt.batch_capacity = n;
  lensing::simulate::MultiBandSimulator<Model<S>, Psf, Mem> const multi({band}, size, size, 2,
                                                                        priors<S, Mem>("", {}, false), opt);
  lensing::simulate::SimulatorOptions so;
  so.seed = 21;
  so.batch_capacity = n;
  lensing::simulate::Simulator<Model<S>, Psf, Mem> const single(
      lensing::PixelGrid<S>::square(size, S(band.pixel_scale), 2), Psf(band.psf_fwhm, band.pixel_scale, size, size),
      band.detector_config(), priors<S, Mem>("", {}, false), so);
  int const K = multi.num_labels();
  lensing::View4D<S, Mem> a("a", n, 1, size, size);
  lensing::View3D<S, Mem> b("b", n, size, size);
  lensing::View2D<S, Mem> la("la", n, K), lb("lb", n, K);
  multi.generate(space, 40, a, la);
  single.generate(space, 40, b, lb);
  space.fence();
  auto const ha = flat(a), hb = flat(b), hla = flat(la), hlb = flat(lb);
  CHECK(ha == hb);
  CHECK(hla == hlb);
}

LENSING_TEST_CASE_TEMPLATE("MultiBandSimulator: bad bands, grids and tables are named", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using P = lensing::Prior<S>;
  using Psf = lensing::GaussianFilter<S, Mem>;
  using Multi = lensing::simulate::MultiBandSimulator<Model<S>, Psf, Mem>;
  using Table = lensing::ParameterTable<S, Mem>;
  lensing::simulate::MultiBandOptions ref_r;
  ref_r.reference_band = "r";
  ref_r.batch_capacity = 2;
  ref_r.domain_check_draws = 8;
  auto const message = [&](auto&& make) -> std::string {
    try {
      make();
    } catch (std::invalid_argument const& e) {
      return e.what();
    }
    return "(no exception)";
  };
  auto const build = [&](std::vector<lensing::BandConfig> const& bands, Table const& t,
                         lensing::simulate::MultiBandOptions const& o) {
    return message([&] { Multi(bands, 16, 16, 1, t, o); });
  };
  auto const has = [](std::string const& m, std::string const& part) {
    bool const found = m.find(part) != std::string::npos;
    if (!found) MESSAGE("'" << part << "' not in: " << m);
    return found;
  };
  auto const grid = [](double scale, int n) { return lensing::PixelGrid<S>::square(n, S(scale), 1); };
  auto const psf = [](lensing::BandConfig const& b, int n) { return Psf(b.psf_fwhm, b.pixel_scale, n, n); };
  auto const bands = gri();
  CHECK_NOTHROW(Multi(bands, 16, 16, 1, priors<S, Mem>(), ref_r));
  CHECK(has(build({}, priors<S, Mem>(), ref_r), "no bands"));
  // Counts and grids.
  CHECK(has(message([&] {
              Multi(bands, {grid(0.2, 16), grid(0.2, 16)}, {psf(bands[0], 16), psf(bands[1], 16), psf(bands[2], 16)},
                    priors<S, Mem>(), ref_r);
            }),
            "3 bands but 2 grids"));
  CHECK(has(message([&] {
              Multi(bands, {grid(0.2, 16), grid(0.2, 16), grid(0.2, 16)}, {psf(bands[0], 16)}, priors<S, Mem>(), ref_r);
            }),
            "3 bands but 1 PSF"));
  CHECK(has(message([&] {
              Multi(bands, {grid(0.2, 16), grid(0.2, 16), grid(0.2, 24)},
                    {psf(bands[0], 16), psf(bands[1], 16), psf(bands[2], 24)}, priors<S, Mem>(), ref_r);
            }),
            "band 'i' has a grid of (ny, nx) = (24, 24)"));
  CHECK(has(message([&] {
              Multi(bands, {grid(0.1, 16), grid(0.2, 16), grid(0.2, 16)},
                    {psf(bands[0], 16), psf(bands[1], 16), psf(bands[2], 16)}, priors<S, Mem>(), ref_r);
            }),
            "band 'g' has pixel_scale 0.2"));
  CHECK(has(message([&] {
              Multi(bands, {grid(0.2, 16), grid(0.2, 16), grid(0.2, 16)},
                    {psf(bands[0], 16), psf(bands[1], 20), psf(bands[2], 16)}, priors<S, Mem>(), ref_r);
            }),
            "band 'r': "));
  // Band names and the reference band.
  auto twice = bands;
  twice[2].name = "r";
  CHECK(has(build(twice, priors<S, Mem>(), ref_r), "two bands are named 'r'"));
  auto ref_y = ref_r;
  ref_y.reference_band = "y";
  CHECK(has(build(bands, priors<S, Mem>(), ref_y), "reference band 'y' is not one of the bands (g, r, i)"));
  // The table: unknown names, unknown bands, missing and impossible colours.
  CHECK(has(build(bands, priors<S, Mem>("", {{"lens0.theta_e", P::uniform(1, 2)}}), ref_r), "'lens0.theta_e'"));
  CHECK(has(build(bands, priors<S, Mem>("", {{"z.source_flux_ratio", P::uniform(1, 2)}}), ref_r),
            "band 'z', which is not one of the bands (g, r, i)"));
  CHECK(has(build(bands, priors<S, Mem>("g.light_flux_ratio"), ref_r),
            "band 'g' has no lens-light colour: add 'g.light_flux_ratio'"));
  CHECK(has(build(bands, priors<S, Mem>("source0.R_sersic"), ref_r), "'source0.R_sersic' has no prior"));
  CHECK(has(build(bands, priors<S, Mem>("", {{"r.source_flux_ratio", P::uniform(0.5, 1)}}), ref_r),
            "reference band 'r'"));
  CHECK_NOTHROW(Multi(bands, 16, 16, 1, priors<S, Mem>("", {{"r.source_flux_ratio", P::fixed(1)}}), ref_r));
  CHECK(has(build(bands, priors<S, Mem>("i.source_flux_ratio", {{"i.source_flux_ratio", P::normal(1, 0.2)}}), ref_r),
            "'i.source_flux_ratio' reaches negative flux ratios"));
  // Ties between colours: the support through the tie must stay >= 0.
  {
    auto t = priors<S, Mem>();
    t.tie("i.light_flux_ratio", "g.light_flux_ratio", 2.0);  // g.light in [0.3, 0.6]: [0.6, 1.2]
    CHECK_NOTHROW(Multi(bands, 16, 16, 1, t, ref_r));
    t.tie("i.light_flux_ratio", "g.light_flux_ratio", -1.0, 0.5);  // [-0.1, 0.2]
    CHECK(has(build(bands, t, ref_r), "'i.light_flux_ratio' reaches negative flux ratios (support [-0.1"));
  }
  // Colours in AB magnitudes become count-rate ratios through the zero points.
  using lensing::simulate::flux_ratio_of_colour;
  CHECK(flux_ratio_of_colour(0.0, bands[0], bands[1]) == doctest::Approx(std::pow(10.0, 0.4 * (28.30 - 28.13))));
  CHECK(flux_ratio_of_colour(1.0, bands[1], bands[1]) == doctest::Approx(std::pow(10.0, -0.4)));
  // A prior outside a profile's domain names the band's model parameter.
  CHECK(has(build(bands, priors<S, Mem>("lens0.theta_E", {{"lens0.theta_E", P::normal(1, 0.3)}}), ref_r),
            "'lens0.theta_E'"));
  // The images' band count.
  Multi const ok(bands, 16, 16, 1, priors<S, Mem>(), ref_r);
  lensing::View4D<S, Mem> two("two", 2, 2, 16, 16);
  lensing::View2D<S, Mem> labels("labels", 2, ok.num_labels());
  CHECK(has(message([&] { ok.generate(Space(), 0, two, labels); }), "(m, num_bands, ny, nx)"));
}
