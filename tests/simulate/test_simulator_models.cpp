// The Simulator beyond the galaxy-galaxy preset: the PSF on the supersampled
// grid for batches (equal to Observation's supersampled render image by
// image) and per-image subhaloes (ProfileArray: names, images equal to the
// Observation render of the same model, errors naming the member).
#include <lensing/density/parameter_table.hpp>
#include <lensing/model/instrument.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/profile_array.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/tnfw.hpp>
#include <lensing/psf/convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/psf/kernels.hpp>
#include <lensing/simulate/lens_presets.hpp>
#include <lensing/simulate/multiband.hpp>
#include <lensing/simulate/simulator.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include <algorithm>
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

// max |a - b| and max |b| over image `b` of a batch `a` against one image `one`.
struct Difference {
  double diff = 0, peak = 0;
};
inline Difference compare(std::vector<double> const& batch, int b, std::vector<double> const& one) {
  Difference d;
  for (std::size_t p = 0; p < one.size(); ++p) {
    d.peak = std::max(d.peak, std::fabs(one[p]));
    d.diff = std::max(d.diff, std::fabs(one[p] - batch[b * one.size() + p]));
  }
  return d;
}

// Every image of sim.render(labels) against Observation::render of the
// same label row's model; returns the worst difference relative to each
// image's peak.
template <class Sim, class Obs, class Space, class Labels, class Images>
double worst_relative(Sim const& s, Obs const& obs, Space const& space, Labels const& labels, Images const& images) {
  using Mem = typename Sim::memory_space;
  using S = typename Sim::scalar_type;
  int const n = int(images.extent(0)), ny = int(images.extent(1)), nx = int(images.extent(2));
  s.render(space, labels, images);
  space.fence();
  auto const hb = flat(images);
  auto const hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), labels);
  lensing::View2D<S, Mem> one("one", ny, nx);
  double worst = 0;
  for (int b = 0; b < n; ++b) {
    std::vector<double> row(s.num_labels());
    for (int c = 0; c < s.num_labels(); ++c)
      row[c] = double(hl(b, c));
    obs.render(space, s.model(row), one);
    space.fence();
    auto const d = compare(hb, b, flat(one));
    CHECK(d.peak > 0);
    worst = std::max(worst, d.diff / d.peak);
  }
  return worst;
}
}  // namespace

// The batched supersampled-grid PSF is Observation's supersampled mode image
// by image, for a Gaussian filter and a pixel-integrated kernel on the fine
// grid; with the pixel kernel it differs from the binned order by the
// pixel-integrated-twice blur (model/observation.hpp's PsfSampling).
LENSING_TEST_CASE_TEMPLATE("Simulator: the PSF on the supersampled grid equals Observation's supersampled render",
                           Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using Model = sim::GalaxyGalaxyModel<S>;
  using Filter = lensing::GaussianFilter<S, Mem>;
  using Direct = lensing::DirectConvolution<S, Mem>;
  Space space;
  int const n = 4, ny = 18, nx = 22;
  double const ps = 0.05, fwhm = 0.1;  // a PSF 2 pixels wide: undersampled at k = 1
  auto const table = sim::galaxy_galaxy_priors<S, Mem>();
  lensing::View2D<S, Mem> labels("labels", n, table.size());
  table.sample(space, labels, 17, 0);
  lensing::View3D<S, Mem> images("images", n, ny, nx), binned_images("binned", n, ny, nx);
  sim::SimulatorOptions opt;
  opt.batch_capacity = n;
  opt.noise = false;
  opt.domain_check_draws = 8;
  opt.psf_sampling = lensing::PsfSampling::supersampled;
  // Error model: the batch renders with the vector forms of the profiles'
  // functions and the weight A_pix / k^2 before the PSF, the Observation with
  // the scalar forms and the weight after it; both sum the same products.
  // The render differs by <= 64 eps of the peak (test_simulator.cpp's
  // render_batch test), the weight's rounding by 1 ulp per fine pixel, and the
  // PSF (positive weights summing to 1) and the k^2 sum carry these through
  // without growth: 128 eps of the peak.
  double const tol = 128 * double(std::numeric_limits<S>::epsilon());
  for (int k : {2, 3}) {
    CAPTURE(k);
    auto const grid = lensing::PixelGrid<S>(nx, ny, S(ps), k);
    int const fny = grid.fine_ny(), fnx = grid.fine_nx();
    double const fine_ps = ps / k;
    {
      Filter const psf(fwhm, fine_ps, fny, fnx, 5.0, n);
      sim::Simulator<Model, Filter, Mem> const s(grid, psf, lensing::DetectorConfig::noiseless(), table, opt);
      CHECK(s.supersampled());
      lensing::Observation<S, Mem, Filter> const obs(grid, psf, lensing::PsfSampling::supersampled);
      double const worst = worst_relative(s, obs, space, labels, images);
      CHECK(worst <= tol);
      MESSAGE("GaussianFilter k = " << k << ": worst |sim - obs| / peak = " << worst / tol * 128 << " eps");
    }
    {
      // A pixel-integrated kernel (integrated over fine pixels) on the fine grid.
      auto const kernel = lensing::gaussian_psf_kernel<S>(fwhm, fine_ps);
      Direct const psf(kernel, fny, fnx);
      sim::Simulator<Model, Direct, Mem> const s(grid, psf, lensing::DetectorConfig::noiseless(), table, opt);
      lensing::Observation<S, Mem, Direct> const obs(grid, psf, lensing::PsfSampling::supersampled);
      double const worst = worst_relative(s, obs, space, labels, images);
      CHECK(worst <= tol);
      MESSAGE("DirectConvolution k = " << k << ": worst |sim - obs| / peak = " << worst / tol * 128 << " eps");
      // The binned order with the kernel of the pixel scale blurs more (the
      // pixel integrated twice): percent-level differences, far above rounding.
      auto bopt = opt;
      bopt.psf_sampling = lensing::PsfSampling::binned;
      Direct const coarse(lensing::gaussian_psf_kernel<S>(fwhm, ps), ny, nx);
      sim::Simulator<Model, Direct, Mem> const b(grid, coarse, lensing::DetectorConfig::noiseless(), table, bopt);
      CHECK(!b.supersampled());
      b.render(space, labels, binned_images);
      space.fence();
      auto const hs = flat(images), hb = flat(binned_images);
      double peak = 0, diff = 0;
      for (std::size_t p = 0; p < hs.size(); ++p) {
        peak = std::max(peak, std::fabs(hs[p]));
        diff = std::max(diff, std::fabs(hs[p] - hb[p]));
      }
      CHECK(diff > 1e-3 * peak);
    }
  }
  // The PSF operator must have the fine grid's extents; the description says where the PSF acts.
  auto const grid = lensing::PixelGrid<S>(nx, ny, S(ps), 2);
  std::string const msg = message_of([&] {
    sim::Simulator<Model, Filter, Mem> const s(grid, Filter(fwhm, ps, ny, nx), lensing::DetectorConfig::noiseless(),
                                               table, opt);
  });
  CHECK(msg.find("the PSF operator must have the fine grid's extents (36, 44), got (18, 22)") != std::string::npos);
  sim::Simulator<Model, Filter, Mem> const s(grid, Filter(fwhm, ps / 2, 2 * ny, 2 * nx),
                                             lensing::DetectorConfig::noiseless(), table, opt);
  bool found = false;
  for (auto const& kv : s.description().settings)
    found = found || (kv.first == "psf_sampling" && kv.second == "supersampled");
  CHECK(found);
}

namespace {
template <class S>
using SubhaloModel = lensing::LensModel<
    lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>, lensing::ProfileArray<lensing::TNFW<S>, 3>>,
    lensing::SersicEllipse<S>, lensing::SersicEllipse<S>>;

// The galaxy-galaxy priors plus three TNFW subhaloes within the Einstein ring.
template <class S, class Mem>
lensing::ParameterTable<S, Mem> subhalo_priors(double r_trunc_lo = 0.2) {
  using P = lensing::Prior<S>;
  auto t = sim::galaxy_galaxy_priors<S, Mem>();
  for (int m = 0; m < 3; ++m) {
    std::string const p = "lens2.subhalo" + std::to_string(m) + ".";
    t.add(p + "Rs", P::uniform(0.05, 0.1));
    t.add(p + "alpha_Rs", P::uniform(0.05, 0.15));
    t.add(p + "r_trunc", P::uniform(r_trunc_lo, 0.6));
    t.add(p + "center_x", P::uniform(-1.2, 1.2));
    t.add(p + "center_y", P::uniform(-1.2, 1.2));
  }
  return t;
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("Simulator with per-image subhaloes (ProfileArray): names, images, errors", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using Model = SubhaloModel<S>;
  using Array = lensing::ProfileArray<lensing::TNFW<S>, 3>;
  Space space;
  static_assert(lensing::is_mass_profile_v<Array>, "a ProfileArray is a MassProfile");
  static_assert(Model::num_params == 9 + 15 + 14, "SIE + shear + 3 TNFW, two Sersic ellipses");
  // Names: the members numbered under their component.
  auto const names = sim::model_parameter_names<Model>();
  REQUIRE(names.size() == std::size_t(Model::num_params));
  CHECK(names[8] == "lens1.dec_0");
  CHECK(names[9] == "lens2.subhalo0.Rs");
  CHECK(names[13] == "lens2.subhalo0.center_y");
  CHECK(names[14] == "lens2.subhalo1.Rs");
  CHECK(names[23] == "lens2.subhalo2.center_y");
  CHECK(names[24] == "source0.amp");
  // A ProfileArray as the whole lens: component 0.
  auto const alone = sim::model_parameter_names<lensing::LensModel<Array, lensing::NoLight<S>, lensing::NoLight<S>>>();
  REQUIRE(alone.size() == 15u);
  CHECK(alone[0] == "lens0.subhalo0.Rs");
  CHECK(alone[14] == "lens0.subhalo2.center_y");

  // Deflection: the sum of the members, in member order.
  {
    S theta[Array::num_params];
    for (int j = 0; j < Array::num_params; ++j)
      theta[j] = S(0.1 + 0.05 * j);
    auto const a = Array::unpack(theta);
    S back[Array::num_params];
    a.pack(back);
    CHECK(std::equal(theta, theta + Array::num_params, back));
    auto const d = a.deflection(S(0.3), S(-0.4));
    auto e = a.member(0).deflection(S(0.3), S(-0.4));
    e += a.member(1).deflection(S(0.3), S(-0.4));
    e += a.member(2).deflection(S(0.3), S(-0.4));
    double const eps = std::numeric_limits<S>::epsilon();
    CHECK(std::fabs(double(d.x - e.x)) <= 4 * eps * std::fabs(double(e.x)));
    CHECK(std::fabs(double(d.y - e.y)) <= 4 * eps * std::fabs(double(e.y)));
  }

  // Images: the Simulator (render_batch, batched PSF, noise off) equals the
  // Observation render of the model of each label row.
  int const n = 5, size = 24;
  double const ps = 0.1;
  auto const grid = lensing::PixelGrid<S>::square(size, S(ps), 2);
  using Psf = lensing::GaussianFilter<S, Mem>;
  Psf const psf(0.15, ps, size, size, 5.0, n);
  auto const table = subhalo_priors<S, Mem>();
  sim::SimulatorOptions opt;
  opt.batch_capacity = n;
  opt.noise = false;
  opt.domain_check_draws = 16;
  sim::Simulator<Model, Psf, Mem> const s(grid, psf, lensing::DetectorConfig::noiseless(), table, opt);
  lensing::View2D<S, Mem> labels("labels", n, table.size());
  lensing::View3D<S, Mem> images("images", n, size, size);
  s.generate(space, 40, images, labels);
  lensing::Observation<S, Mem, Psf> const obs(grid, psf);
  double const worst = worst_relative(s, obs, space, labels, images);
  // As the render_batch test: the same sums, vector vs scalar forms of the
  // profiles' functions, 64 eps of the peak; the PSF carries it unchanged.
  CHECK(worst <= 64 * double(std::numeric_limits<S>::epsilon()));
  MESSAGE("subhalo model: worst |sim - obs| / peak = " << worst / double(std::numeric_limits<S>::epsilon()) << " eps");
  // The subhaloes are in the images: without them (alpha_Rs -> tiny) the images change.
  {
    auto const hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), labels);
    std::vector<double> row(table.size());
    for (int c = 0; c < table.size(); ++c)
      row[c] = double(hl(0, c));
    auto const with = s.model(row);
    for (int m = 0; m < 3; ++m)
      row[table.index("lens2.subhalo" + std::to_string(m) + ".alpha_Rs")] = 1e-6;
    auto const without = s.model(row);
    CHECK(with.lens.template get<2>().member(1).center_x == S(hl(0, table.index("lens2.subhalo1.center_x"))));
    lensing::View2D<S, Mem> a("a", size, size), b("b", size, size);
    obs.render(space, with, a);
    obs.render(space, without, b);
    space.fence();
    auto const ha = flat(a), hb = flat(b);
    double diff = 0, peak = 0;
    for (std::size_t p = 0; p < ha.size(); ++p) {
      diff = std::max(diff, std::fabs(ha[p] - hb[p]));
      peak = std::max(peak, std::fabs(ha[p]));
    }
    CHECK(diff > 1e-4 * peak);
  }

  // Errors name the member: a prior whose support leaves TNFW's domain, an unknown member.
  std::string const bad = message_of([&] {
    sim::Simulator<Model, Psf, Mem> const t(grid, psf, lensing::DetectorConfig::noiseless(),
                                            subhalo_priors<S, Mem>(-0.1), opt);
  });
  CHECK(bad.find("'lens2.subhalo0.r_trunc'") != std::string::npos);
  CHECK(bad.find("lensing::ProfileArray: subhalo 0: ") != std::string::npos);
  CHECK(bad.find("r_trunc") != std::string::npos);
  auto extra = subhalo_priors<S, Mem>();
  extra.add("lens2.subhalo3.Rs", lensing::Prior<S>::uniform(0.05, 0.1));
  std::string const unknown = message_of(
      [&] { sim::Simulator<Model, Psf, Mem> const t(grid, psf, lensing::DetectorConfig::noiseless(), extra, opt); });
  CHECK(unknown.find("names 'lens2.subhalo3.Rs', which is not a parameter of the model") != std::string::npos);
}

// MultiBandSimulator passes psf_sampling to its bands and samples their
// Gaussians on the fine grid: one band equals the Simulator built by hand.
LENSING_TEST_CASE_TEMPLATE("MultiBandSimulator: the PSF on the supersampled grid", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using S = typename Config::scalar;
  using Model = sim::GalaxyGalaxyModel<S>;
  using Psf = lensing::GaussianFilter<S, Mem>;
  Space space;
  int const n = 3, size = 16, k = 2;
  auto const band = lensing::presets::hst_like();
  sim::MultiBandOptions mopt;
  mopt.batch_capacity = n;
  mopt.noise = false;
  mopt.domain_check_draws = 8;
  mopt.psf_sampling = lensing::PsfSampling::supersampled;
  sim::MultiBandSimulator<Model, Psf, Mem> const multi({band}, size, size, k, sim::galaxy_galaxy_priors<S, Mem>(),
                                                       mopt);
  sim::SimulatorOptions opt;
  opt.batch_capacity = n;
  opt.noise = false;
  opt.domain_check_draws = 8;
  opt.psf_sampling = lensing::PsfSampling::supersampled;
  sim::Simulator<Model, Psf, Mem> const single(lensing::PixelGrid<S>::square(size, S(band.pixel_scale), k),
                                               Psf(band.psf_fwhm, band.pixel_scale / k, k * size, k * size, 5.0, n),
                                               lensing::DetectorConfig::noiseless(),
                                               sim::galaxy_galaxy_priors<S, Mem>(), opt);
  int const K = multi.num_labels();
  lensing::View4D<S, Mem> a("a", n, 1, size, size);
  lensing::View3D<S, Mem> b("b", n, size, size);
  lensing::View2D<S, Mem> la("la", n, K), lb("lb", n, K);
  multi.generate(space, 7, a, la);
  single.generate(space, 7, b, lb);
  space.fence();
  auto const ha = flat(a), hb = flat(b);
  CHECK(flat(la) == flat(lb));
  CHECK(ha == hb);  // the same kernels on the same inputs
  // The binned multi-band images differ (percent level at this PSF width).
  mopt.psf_sampling = lensing::PsfSampling::binned;
  sim::MultiBandSimulator<Model, Psf, Mem> const binned({band}, size, size, k, sim::galaxy_galaxy_priors<S, Mem>(),
                                                        mopt);
  binned.generate(space, 7, a, la);
  space.fence();
  auto const hc = flat(a);
  double diff = 0, peak = 0;
  for (std::size_t p = 0; p < hc.size(); ++p) {
    diff = std::max(diff, std::fabs(hc[p] - hb[p]));
    peak = std::max(peak, std::fabs(hb[p]));
  }
  CHECK(diff > 1e-4 * peak);
}
