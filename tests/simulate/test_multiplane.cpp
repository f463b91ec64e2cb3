// The Simulator with lenses that are more than their parameters: a
// MultiPlaneLens (planes' parameters by name, the distance factors fixed by a
// prototype built with make_multi_plane) and an interpolated lens (a fixed
// deflection map, alone or summed with analytic profiles), and the
// MultiBandSimulator with a multi-plane prototype.  Images equal the
// Observation render of the model built by hand from the named labels; the
// same images whatever the batch split; errors name the plane parameter.
#include <lensing/cosmology/flat_lcdm.hpp>
#include <lensing/deflection/interpolated_lens.hpp>
#include <lensing/density/parameter_table.hpp>
#include <lensing/model/instrument.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/raytrace/multi_plane.hpp>
#include <lensing/simulate/lens_presets.hpp>
#include <lensing/simulate/multiband.hpp>
#include <lensing/simulate/simulator.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace {
namespace sim = lensing::simulate;

template <class V>
std::vector<double> flat(V const& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(h.data(), h.data() + h.size());
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

// Row b of host labels.
template <class Labels>
std::vector<double> label_row(Labels const& labels, int b) {
  std::vector<double> row(labels.extent(1));
  for (std::size_t c = 0; c < row.size(); ++c)
    row[c] = double(labels(b, int(c)));
  return row;
}

// max |batch(b) - one| / max |one|.
inline double relative_difference(std::vector<double> const& batch, int b, std::vector<double> const& one) {
  double diff = 0, peak = 0;
  for (std::size_t p = 0; p < one.size(); ++p) {
    peak = std::max(peak, std::fabs(one[p]));
    diff = std::max(diff, std::fabs(one[p] - batch[b * one.size() + p]));
  }
  CHECK(peak > 0);
  return diff / peak;
}

// The values of `names` in a label row, looked up by name in the table.
template <class S, class Table, class Row>
std::vector<S> by_name(Table const& table, Row const& row, std::vector<std::string> const& names) {
  std::vector<S> v;
  for (auto const& n : names)
    v.push_back(S(row[table.index(n)]));
  return v;
}
std::vector<std::string> prefixed(std::string const& p, std::vector<std::string> const& names) {
  std::vector<std::string> out;
  for (auto const& n : names)
    out.push_back(p + n);
  return out;
}
std::vector<std::string> const sie_names = {"theta_E", "e1", "e2", "center_x", "center_y"};
std::vector<std::string> const shear_names = {"gamma1", "gamma2", "ra_0", "dec_0"};
std::vector<std::string> const sersic_names = {"amp", "R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y"};

template <class S, class Mem>
void add_source_priors(lensing::ParameterTable<S, Mem>& t) {
  using P = lensing::Prior<S>;
  t.add("source0.amp", P::uniform(20, 60));
  t.add("source0.R_sersic", P::uniform(0.1, 0.3));
  t.add("source0.n_sersic", P::uniform(0.8, 2.5));
  t.add("source0.e1", P::uniform(-0.3, 0.3));
  t.add("source0.e2", P::uniform(-0.3, 0.3));
  t.add("source0.center_x", P::uniform(-0.2, 0.2));
  t.add("source0.center_y", P::uniform(-0.2, 0.2));
}

// Two planes: SIE + shear at z = 0.5, an SIE at z = 0.8; source at z = 2.
template <class S>
using Planes = lensing::MultiPlaneLens<lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>, lensing::SIE<S>>;
template <class S>
using PlaneModel = lensing::LensModel<Planes<S>, lensing::SersicEllipse<S>, lensing::NoLight<S>>;
double const z_source = 2.0;
std::array<double, 2> const z_planes = {0.5, 0.8};

template <class S>
PlaneModel<S> plane_prototype(std::array<double, 2> const& z = z_planes) {
  lensing::FlatLambdaCDM<S> const cosmo(70, 0.3);
  return {lensing::make_multi_plane(
              cosmo, z_source, z, lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>{}, lensing::SIE<S>{}),
          lensing::SersicEllipse<S>{}, lensing::NoLight<S>{}};
}

// Priors of the two-plane model; `second_theta_E` names plane 1's Einstein
// radius (a typo there is an unknown name), `lo` its lower bound; `skip` is
// left out of the table.
template <class S, class Mem>
lensing::ParameterTable<S, Mem> plane_priors(std::string const& second_theta_E = "plane1.lens0.theta_E",
                                             double lo = 0.1, std::string const& skip = "") {
  using P = lensing::Prior<S>;
  lensing::ParameterTable<S, Mem> t;
  auto const add = [&](std::string const& name, P const& prior) {
    if (name != skip) t.add(name, prior);
  };
  add("plane0.lens0.theta_E", P::uniform(0.8, 1.4));
  add("plane0.lens0.e1", P::uniform(-0.2, 0.2));
  add("plane0.lens0.e2", P::uniform(-0.2, 0.2));
  add("plane0.lens0.center_x", P::uniform(-0.05, 0.05));
  add("plane0.lens0.center_y", P::uniform(-0.05, 0.05));
  add("plane0.lens1.gamma1", P::uniform(-0.05, 0.05));
  add("plane0.lens1.gamma2", P::uniform(-0.05, 0.05));
  add("plane0.lens1.ra_0", P::fixed(0));
  add("plane0.lens1.dec_0", P::fixed(0));
  add(second_theta_E, P::uniform(lo, 0.4));
  add("plane1.lens0.e1", P::uniform(-0.1, 0.1));
  add("plane1.lens0.e2", P::uniform(-0.1, 0.1));
  add("plane1.lens0.center_x", P::uniform(-0.6, 0.6));
  add("plane1.lens0.center_y", P::uniform(-0.6, 0.6));
  add_source_priors(t);
  return t;
}
}  // namespace

// Error model of the image comparisons: the Simulator renders with
// render_batch (the profiles' functions in vectorised point loops, the
// weight A_pix / k^2 after the sub-pixel sum), the Observation with the
// Renderer (scalar forms per fine pixel): the same products and sums,
// differing by the rounding of the profiles' functions, <= 64 eps of the
// peak for one plane (test_simulator.cpp's render_batch test).  With two
// planes the few-ulp difference of plane 0's deflection moves the ray on
// plane 1 by a few ulp of its position (|x| ~ 1 arcsec), which changes
// plane 1's deflection by |Hessian| (< 1 here) times that and the source
// brightness by its gradient (~ peak / R_sersic >= peak / 0.1") times the
// shift: a few tens of eps of the peak more; the PSF (positive weights
// summing to 1) carries it unchanged: 128 eps of the peak (measured: 1.2
// eps in double, 2.3 in float).
LENSING_TEST_CASE_TEMPLATE("Simulator with a multi-plane lens: names, images, batch splits, errors", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using Model = PlaneModel<S>;
  using Psf = lensing::GaussianFilter<S, Mem>;
  Space space;
  static_assert(std::is_trivially_copyable<Model>::value, "a multi-plane LensModel is a per-image model");
  static_assert(Model::num_params == 9 + 5 + 7, "SIE + shear on plane 0, SIE on plane 1, a Sersic ellipse");

  // Names: plane by plane, components numbered inside each plane.
  auto const names = sim::model_parameter_names<Model>();
  REQUIRE(names.size() == std::size_t(Model::num_params));
  CHECK(names[0] == "plane0.lens0.theta_E");
  CHECK(names[5] == "plane0.lens1.gamma1");
  CHECK(names[8] == "plane0.lens1.dec_0");
  CHECK(names[9] == "plane1.lens0.theta_E");
  CHECK(names[13] == "plane1.lens0.center_y");
  CHECK(names[14] == "source0.amp");

  int const n = 6, size = 24;
  double const ps = 0.1;
  auto const grid = lensing::PixelGrid<S>::square(size, S(ps), 2);
  Psf const psf(0.15, ps, size, size, 5.0, n);
  auto const table = plane_priors<S, Mem>();
  auto const proto = plane_prototype<S>();
  sim::SimulatorOptions opt;
  opt.batch_capacity = n;
  opt.noise = false;
  opt.domain_check_draws = 16;
  sim::Simulator<Model, Psf, Mem> const s(proto, grid, psf, lensing::DetectorConfig::noiseless(), table, opt);
  lensing::View2D<S, Mem> labels("labels", n, table.size());
  lensing::View3D<S, Mem> images("images", n, size, size);
  s.generate(space, 3, images, labels);
  space.fence();
  auto const hb = flat(images);
  auto const hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), labels);

  // Each image against the Observation render of the model built by hand:
  // every plane's profile from its named labels, make_multi_plane with the
  // same cosmology and redshifts.
  lensing::Observation<S, Mem, Psf> const obs(grid, psf);
  lensing::View2D<S, Mem> one("one", size, size);
  lensing::FlatLambdaCDM<S> const cosmo(70, 0.3);
  double worst = 0, single_plane = 1e300;
  for (int b = 0; b < n; ++b) {
    auto const row = label_row(hl, b);
    auto p0 = by_name<S>(table, row, prefixed("plane0.lens0.", sie_names));
    auto const shear = by_name<S>(table, row, prefixed("plane0.lens1.", shear_names));
    p0.insert(p0.end(), shear.begin(), shear.end());
    auto const p1 = by_name<S>(table, row, prefixed("plane1.lens0.", sie_names));
    auto const src = by_name<S>(table, row, prefixed("source0.", sersic_names));
    using Main = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
    Model const ref{lensing::make_multi_plane(cosmo, z_source, z_planes, Main::unpack(p0.data()),
                                              lensing::SIE<S>::unpack(p1.data())),
                    lensing::SersicEllipse<S>::unpack(src.data()), lensing::NoLight<S>{}};
    // The Simulator's model of the row: the planes' parameters by name, the prototype's distances.
    auto const m = s.model(row);
    CHECK(m.lens.template plane<1>().theta_E == p1[0]);
    CHECK(m.lens.template plane<0>().template get<1>().gamma2 == p0[6]);
    CHECK(m.lens.coef[1][0] == ref.lens.coef[1][0]);
    CHECK(m.lens.coef[1][0] > S(0.1));  // plane 1 sees plane 0's deflection
    obs.render(space, ref, one);
    space.fence();
    worst = std::max(worst, relative_difference(hb, b, flat(one)));
    // The planes' distances matter: both planes at z = 0.5 (a plain sum) differ at the percent level.
    Model const same_z{lensing::make_multi_plane(cosmo, z_source, std::array<double, 2>{0.5, 0.5},
                                                 Main::unpack(p0.data()), lensing::SIE<S>::unpack(p1.data())),
                       ref.source, ref.lens_light};
    obs.render(space, same_z, one);
    space.fence();
    single_plane = std::min(single_plane, relative_difference(hb, b, flat(one)));
  }
  double const eps = std::numeric_limits<S>::epsilon();
  CHECK(worst <= 128 * eps);
  CHECK(single_plane > 1e-3);
  MESSAGE("multi-plane: worst |sim - obs| / peak = " << worst / eps << " eps; one-plane sum differs by >= "
                                                     << single_plane << " of the peak");

  // Deterministic per (seed, image index) whatever the batch split, noise and artefacts included.
  {
    auto nopt = opt;
    nopt.noise = true;
    sim::Simulator<Model, Psf, Mem> const noisy(proto, grid, psf, lensing::presets::hst_like().detector_config(), table,
                                                nopt);
    lensing::View3D<S, Mem> whole("whole", n, size, size), part("part", n, size, size);
    lensing::View2D<S, Mem> lw("lw", n, table.size()), lp("lp", n, table.size());
    noisy.generate(space, 100, whole, lw);
    auto const sub3 = [](auto const& v, int a, int b) {
      return Kokkos::subview(v, Kokkos::make_pair(a, b), Kokkos::ALL, Kokkos::ALL);
    };
    auto const sub2 = [](auto const& v, int a, int b) {
      return Kokkos::subview(v, Kokkos::make_pair(a, b), Kokkos::ALL);
    };
    lensing::View3D<S, Mem> p2("p2", 2, size, size), p4("p4", 4, size, size);
    lensing::View2D<S, Mem> l2("l2", 2, table.size()), l4("l4", 4, table.size());
    noisy.generate(space, 100, p2, l2);
    noisy.generate(space, 102, p4, l4);
    Kokkos::deep_copy(space, sub3(part, 0, 2), p2);
    Kokkos::deep_copy(space, sub3(part, 2, 6), p4);
    Kokkos::deep_copy(space, sub2(lp, 0, 2), l2);
    Kokkos::deep_copy(space, sub2(lp, 2, 6), l4);
    space.fence();
    CHECK(flat(whole) == flat(part));
    CHECK(flat(lw) == flat(lp));
  }

  // MultiBandSimulator takes the prototype too: one band is the Simulator on that band's grid and PSF.
  {
    auto const band = lensing::presets::hst_like();
    sim::MultiBandOptions mopt;
    mopt.batch_capacity = n;
    mopt.noise = false;
    mopt.domain_check_draws = 4;
    sim::MultiBandSimulator<Model, Psf, Mem> const multi(proto, {band}, size, size, 2, table, mopt);
    auto sopt = opt;
    sopt.domain_check_draws = 4;
    sim::Simulator<Model, Psf, Mem> const single(proto, lensing::PixelGrid<S>::square(size, S(band.pixel_scale), 2),
                                                 Psf(band.psf_fwhm, band.pixel_scale, size, size, 5.0, n),
                                                 lensing::DetectorConfig::noiseless(), table, sopt);
    lensing::View4D<S, Mem> a("a", n, 1, size, size);
    lensing::View2D<S, Mem> la("la", n, table.size()), lb("lb", n, table.size());
    multi.generate(space, 7, a, la);
    single.generate(space, 7, images, lb);
    space.fence();
    CHECK(flat(la) == flat(lb));
    CHECK(flat(a) == flat(images));  // the same kernels on the same inputs
  }

  // Errors name the plane parameter: an unknown name, a missing one, a prior leaving the profile's domain.
  std::string const unknown = message_of([&] {
    sim::Simulator<Model, Psf, Mem> const t(proto, grid, psf, lensing::DetectorConfig::noiseless(),
                                            plane_priors<S, Mem>("plane1.lens0.theta_e"), opt);
  });
  CHECK(unknown.find("names 'plane1.lens0.theta_e', which is not a parameter of the model") != std::string::npos);
  CHECK(unknown.find("plane1.lens0.theta_E") != std::string::npos);  // listed among the known names
  auto const missing = plane_priors<S, Mem>("plane1.lens0.theta_E", 0.1, "plane1.lens0.center_y");
  std::string const absent = message_of([&] {
    sim::Simulator<Model, Psf, Mem> const t(proto, grid, psf, lensing::DetectorConfig::noiseless(), missing, opt);
  });
  CHECK(absent.find("the model parameter 'plane1.lens0.center_y' has no prior") != std::string::npos);
  std::string const domain = message_of([&] {
    sim::Simulator<Model, Psf, Mem> const t(proto, grid, psf, lensing::DetectorConfig::noiseless(),
                                            plane_priors<S, Mem>("plane1.lens0.theta_E", -0.1), opt);
  });
  CHECK(domain.find("the prior of 'plane1.lens0.theta_E'") != std::string::npos);
  CHECK(domain.find("theta_E") != std::string::npos);
}

namespace {
// A fixed deflection map: an SIS (theta_E = 0.4" at (0.3, -0.2)) sampled on
// a 60 x 60 grid of 0.1" (wider than the 24 x 24 image), as an InterpolatedLens.
template <class S, class Mem>
lensing::InterpolatedLens<S, Mem> sis_map() {
  int const m = 60;
  auto const grid = lensing::PixelGrid<S>::square(m, S(0.1), 1);
  lensing::SIS<double> const sis{0.4, 0.3, -0.2};
  lensing::View2D<S, Mem> ax("ax", m, m), ay("ay", m, m), psi("psi", m, m), kappa("kappa", m, m);
  auto hx = Kokkos::create_mirror_view(ax), hy = Kokkos::create_mirror_view(ay);
  auto hp = Kokkos::create_mirror_view(psi), hk = Kokkos::create_mirror_view(kappa);
  for (int iy = 0; iy < m; ++iy)
    for (int ix = 0; ix < m; ++ix) {
      double const x = double(grid.x(ix)), y = double(grid.y(iy));
      auto const a = sis.deflection(x, y);
      hx(iy, ix) = S(a.x);
      hy(iy, ix) = S(a.y);
      hp(iy, ix) = S(sis.potential(x, y));
      hk(iy, ix) = S(sis.convergence(x, y));
    }
  Kokkos::deep_copy(ax, hx);
  Kokkos::deep_copy(ay, hy);
  Kokkos::deep_copy(psi, hp);
  Kokkos::deep_copy(kappa, hk);
  return lensing::InterpolatedLens<S, Mem>(grid, ax, ay, psi, kappa);
}
}  // namespace

// Error model: as the multi-plane test's one-plane part, 64 eps of the peak
// (the view reads the same map values as the InterpolatedLens, the same
// bilinear arithmetic).
LENSING_TEST_CASE_TEMPLATE("Simulator with an interpolated lens: alone and with analytic profiles", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using View = lensing::InterpolatedLensView<S>;
  using Main = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
  using Model = lensing::LensModel<lensing::LensSum<View, Main>, lensing::SersicEllipse<S>, lensing::NoLight<S>>;
  using Psf = lensing::GaussianFilter<S, Mem>;
  Space space;
  static_assert(std::is_trivially_copyable<View>::value, "the view of an InterpolatedLens is trivially copyable");
  static_assert(Model::num_params == 9 + 7, "the map has no parameters");
  auto const map = sis_map<S, Mem>();

  // Names: the map takes component 0 and has none; the analytic profiles follow.
  auto const names = sim::model_parameter_names<Model>();
  REQUIRE(names.size() == std::size_t(Model::num_params));
  CHECK(names[0] == "lens1.theta_E");
  CHECK(names[5] == "lens2.gamma1");
  CHECK(names[9] == "source0.amp");
  using Alone = lensing::LensModel<View, lensing::SersicEllipse<S>, lensing::NoLight<S>>;
  auto const alone = sim::model_parameter_names<Alone>();
  REQUIRE(alone.size() == 7u);
  CHECK(alone[0] == "source0.amp");

  int const n = 4, size = 24;
  double const ps = 0.1;
  double const eps = std::numeric_limits<S>::epsilon();
  auto const grid = lensing::PixelGrid<S>::square(size, S(ps), 2);
  Psf const psf(0.15, ps, size, size, 5.0, n);
  sim::SimulatorOptions opt;
  opt.batch_capacity = n;
  opt.noise = false;
  opt.domain_check_draws = 16;
  lensing::Observation<S, Mem, Psf> const obs(grid, psf);
  lensing::View2D<S, Mem> one("one", size, size);
  lensing::View3D<S, Mem> images("images", n, size, size);
  {
    using P = lensing::Prior<S>;
    lensing::ParameterTable<S, Mem> table;
    table.add("lens1.theta_E", P::uniform(0.6, 1.0));
    table.add("lens1.e1", P::uniform(-0.2, 0.2));
    table.add("lens1.e2", P::uniform(-0.2, 0.2));
    table.add("lens1.center_x", P::uniform(-0.05, 0.05));
    table.add("lens1.center_y", P::uniform(-0.05, 0.05));
    table.add("lens2.gamma1", P::uniform(-0.05, 0.05));
    table.add("lens2.gamma2", P::uniform(-0.05, 0.05));
    table.add("lens2.ra_0", P::fixed(0));
    table.add("lens2.dec_0", P::fixed(0));
    add_source_priors(table);
    Model const proto{{map.view(), Main{}}, lensing::SersicEllipse<S>{}, lensing::NoLight<S>{}};
    sim::Simulator<Model, Psf, Mem> const s(proto, grid, psf, lensing::DetectorConfig::noiseless(), table, opt);
    lensing::View2D<S, Mem> labels("labels", n, table.size());
    s.generate(space, 0, images, labels);
    space.fence();
    auto const hb = flat(images);
    auto const hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), labels);
    double worst = 0, without_map = 1e300;
    for (int b = 0; b < n; ++b) {
      auto const row = label_row(hl, b);
      auto p = by_name<S>(table, row, prefixed("lens1.", sie_names));
      auto const shear = by_name<S>(table, row, prefixed("lens2.", shear_names));
      p.insert(p.end(), shear.begin(), shear.end());
      auto const src =
          lensing::SersicEllipse<S>::unpack(by_name<S>(table, row, prefixed("source0.", sersic_names)).data());
      // The reference holds the owning InterpolatedLens.
      lensing::LensModel<lensing::LensSum<lensing::InterpolatedLens<S, Mem>, Main>, lensing::SersicEllipse<S>,
                         lensing::NoLight<S>> const ref{{map, Main::unpack(p.data())}, src, lensing::NoLight<S>{}};
      obs.render(space, ref, one);
      space.fence();
      worst = std::max(worst, relative_difference(hb, b, flat(one)));
      lensing::LensModel<Main, lensing::SersicEllipse<S>, lensing::NoLight<S>> const bare{Main::unpack(p.data()), src,
                                                                                          lensing::NoLight<S>{}};
      obs.render(space, bare, one);
      space.fence();
      without_map = std::min(without_map, relative_difference(hb, b, flat(one)));
    }
    CHECK(worst <= 64 * eps);
    CHECK(without_map > 1e-2);  // the map's SIS is in the images
    MESSAGE("map + SIE + shear: worst |sim - obs| / peak = " << worst / eps << " eps");
  }
  {
    // The map alone: only the source is drawn.
    lensing::ParameterTable<S, Mem> table;
    add_source_priors(table);
    Alone const proto{map.view(), lensing::SersicEllipse<S>{}, lensing::NoLight<S>{}};
    sim::Simulator<Alone, Psf, Mem> const s(proto, grid, psf, lensing::DetectorConfig::noiseless(), table, opt);
    lensing::View2D<S, Mem> labels("labels", n, table.size());
    s.generate(space, 0, images, labels);
    space.fence();
    auto const hb = flat(images);
    auto const hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), labels);
    double worst = 0;
    for (int b = 0; b < n; ++b) {
      auto const row = label_row(hl, b);
      auto const src =
          lensing::SersicEllipse<S>::unpack(by_name<S>(table, row, prefixed("source0.", sersic_names)).data());
      lensing::LensModel<lensing::InterpolatedLens<S, Mem>, lensing::SersicEllipse<S>, lensing::NoLight<S>> const ref{
          map, src, lensing::NoLight<S>{}};
      obs.render(space, ref, one);
      space.fence();
      worst = std::max(worst, relative_difference(hb, b, flat(one)));
    }
    CHECK(worst <= 64 * eps);
    MESSAGE("map alone: worst |sim - obs| / peak = " << worst / eps << " eps");
    // A lens-parameter name for a lens without parameters is unknown.
    auto extra = table;
    extra.add("lens0.theta_E", lensing::Prior<S>::uniform(0.5, 1.0));
    std::string const msg = message_of([&] {
      sim::Simulator<Alone, Psf, Mem> const t(proto, grid, psf, lensing::DetectorConfig::noiseless(), extra, opt);
    });
    CHECK(msg.find("names 'lens0.theta_E', which is not a parameter of the model") != std::string::npos);
  }
}
