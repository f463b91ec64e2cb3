// Every public entry point that takes a lens, a light profile or a lens model
// validates it on the host before launching work (core/errors.hpp): called
// with an invalid profile it throws std::invalid_argument, whatever the
// profile type.  One table of entry points (`entry_points`) and one of
// invalid models: a new entry point is one more line in the table.
//
// Entry points covered (grep raytrace/, simulate/, likelihood/ for public
// functions taking a profile):
//   raytrace/ray_shooting.hpp   deflection_map ray_shoot convergence_map shear_map
//                               magnification_map deflection_map_vjp ray_shoot_vjp
//                               convergence_map_vjp
//   raytrace/hessian_vjp.hpp    hessian_map_vjp shear_map_vjp magnification_map_vjp
//                               magnification_cotangent_map
//   raytrace/image_positions.hpp ImageFinder find_images
//   raytrace/critical_curves.hpp critical_curves
//   raytrace/time_delays.hpp    arrival_times
//   raytrace/multi_plane.hpp    multi_plane_ray_shoot multi_plane_magnification_map
//                               multi_plane_ray_shoot_vjp
//   model/render.hpp         Renderer::render render_adaptive render_fine
//   model/observation.hpp    Observation::render Observation::sample
//   likelihood/gaussian.hpp     GaussianLikelihood::value value_and_gradient
// (deflection/ takes convergence maps, not profiles.)
#include <lensing/cosmology/flat_lcdm.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/model/render.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/epl.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/population.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/raytrace/critical_curves.hpp>
#include <lensing/raytrace/hessian_vjp.hpp>
#include <lensing/raytrace/image_positions.hpp>
#include <lensing/raytrace/multi_plane.hpp>
#include <lensing/raytrace/ray_shooting.hpp>
#include <lensing/raytrace/time_delays.hpp>
#include <lensing/simulate/training_set.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using Sie = lensing::SIE<double>;
using Shear = lensing::ExternalShear<double>;
using Lens = lensing::Composite<Sie, Shear>;
using Epl = lensing::EPL<double>;
using Source = lensing::SersicEllipse<double>;
using NoLight = lensing::NoLight<double>;

double const not_a_number = std::numeric_limits<double>::quiet_NaN();

Source good_source() { return Source{10.0, 0.2, 1.5, 0.05, -0.03, 0.02, 0.01}; }
Lens sie_lens(double theta_E, double e1, double e2) {
  return Lens(Sie{theta_E, e1, e2, 0.01, -0.02}, Shear{0.03, -0.01, 0, 0});
}

/// One named call of an entry point with a lens (any lens type) and a source.
struct EntryPoint {
  std::string name;
  // Runs the entry point on (lens, source); the lens comes as a type-erased
  // caller so that one table serves every lens type (see run_all).
  std::function<void(void const*, Source const&)> run;
};

/// The table: every entry point, for lens type L, on a small grid of Space.
template <class Space, class L>
std::vector<EntryPoint> entry_points() {
  using Mem = typename Space::memory_space;
  using Map = lensing::View2D<double, Mem>;
  using Host = Kokkos::DefaultHostExecutionSpace;
  auto const grid = lensing::PixelGrid<double>::square(8, 0.2, 2);
  int const fy = grid.fine_ny(), fx = grid.fine_nx();
  Map a("a", fy, fx), b("b", fy, fx), c("c", fy, fx), d("d", fy, fx);
  Map image("image", grid.ny(), grid.nx()), fine("fine", fy, fx);
  Kokkos::View<int**, Kokkos::LayoutRight, Mem> mask("mask", grid.ny(), grid.nx());
  lensing::View1D<double, Mem> grad("grad", L::num_params);
  lensing::MapVjpWorkspace<double, Mem> const work(grid, L::num_params);
  lensing::Renderer<double, Mem> const renderer(grid);
  using Psf = lensing::GaussianFilter<double, Mem>;
  using Obs = lensing::Observation<double, Mem, Psf>;
  Obs const obs(grid, Psf(0.3, grid.pixel_scale(), grid.ny(), grid.nx()));
  using Model = lensing::LensModel<L, Source, NoLight>;
  Map data("data", grid.ny(), grid.nx()), sigma("sigma", grid.ny(), grid.nx()), weight("weight", grid.ny(), grid.nx());
  Kokkos::deep_copy(sigma, 1.0);
  Kokkos::deep_copy(weight, 1.0);
  lensing::GaussianLikelihood<Model, Mem, Psf> const like(obs, data, sigma, weight);
  lensing::FlatLambdaCDM<double> const cosmo(70, 0.3);
  Space s;
  auto const lens_of = [](void const* p) -> L const& { return *static_cast<L const*>(p); };
  auto const model_of = [lens_of](void const* p, Source const& src) { return Model{lens_of(p), src, NoLight{}}; };
  auto const mp_of = [lens_of, cosmo](void const* p) {
    return lensing::make_multi_plane(cosmo, 2.0, std::array<double, 2>{0.3, 0.6}, lens_of(p), Sie{0.1, 0, 0, 0.5, 0});
  };
  std::vector<EntryPoint> t;
  auto add = [&](std::string name, std::function<void(void const*, Source const&)> f) {
    t.push_back({std::move(name), std::move(f)});
  };
  add("deflection_map", [=](void const* p, Source const&) { lensing::deflection_map(s, lens_of(p), grid, a, b); });
  add("ray_shoot", [=](void const* p, Source const&) { lensing::ray_shoot(s, lens_of(p), grid, a, b); });
  add("convergence_map", [=](void const* p, Source const&) { lensing::convergence_map(s, lens_of(p), grid, a); });
  add("shear_map", [=](void const* p, Source const&) { lensing::shear_map(s, lens_of(p), grid, a, b); });
  add("magnification_map", [=](void const* p, Source const&) { lensing::magnification_map(s, lens_of(p), grid, a); });
  add("deflection_map_vjp",
      [=](void const* p, Source const&) { lensing::deflection_map_vjp(s, lens_of(p), grid, a, b, grad, work); });
  add("ray_shoot_vjp",
      [=](void const* p, Source const&) { lensing::ray_shoot_vjp(s, lens_of(p), grid, a, b, grad, work); });
  add("convergence_map_vjp",
      [=](void const* p, Source const&) { lensing::convergence_map_vjp(s, lens_of(p), grid, a, grad, work); });
  add("hessian_map_vjp",
      [=](void const* p, Source const&) { lensing::hessian_map_vjp(s, lens_of(p), grid, a, b, c, grad, work); });
  add("shear_map_vjp",
      [=](void const* p, Source const&) { lensing::shear_map_vjp(s, lens_of(p), grid, a, b, grad, work); });
  add("magnification_map_vjp",
      [=](void const* p, Source const&) { lensing::magnification_map_vjp(s, lens_of(p), grid, a, grad, work); });
  add("magnification_cotangent_map",
      [=](void const* p, Source const&) { lensing::magnification_cotangent_map(s, lens_of(p), grid, a, b, c, d); });
  add("ImageFinder", [=](void const* p, Source const&) { lensing::ImageFinder<L>(Host(), lens_of(p), 2.0, 16); });
  add("find_images", [=](void const* p, Source const&) { lensing::find_images(Host(), lens_of(p), 0.01, 0.02, 2.0); });
  add("critical_curves", [=](void const* p, Source const&) { lensing::critical_curves(Host(), lens_of(p), 2.0, 16); });
  add("arrival_times", [=](void const* p, Source const&) {
    std::vector<lensing::PointImage<double>> images(1);
    images[0].x = 1.0;
    images[0].y = 0.1;
    lensing::arrival_times(lens_of(p), cosmo, 0.5, 2.0, 0.01, 0.02, images);
  });
  add("multi_plane_ray_shoot",
      [=](void const* p, Source const&) { lensing::multi_plane_ray_shoot(s, mp_of(p), grid, a, b); });
  add("multi_plane_magnification_map",
      [=](void const* p, Source const&) { lensing::multi_plane_magnification_map(s, mp_of(p), grid, a); });
  add("multi_plane_ray_shoot_vjp", [=](void const* p, Source const&) {
    auto const mp = mp_of(p);
    using MP = std::decay_t<decltype(mp)>;
    lensing::View1D<double, Mem> g("g", MP::num_params);
    lensing::MapVjpWorkspace<double, Mem> const w(grid, MP::num_params);
    lensing::multi_plane_ray_shoot_vjp(s, mp, grid, a, b, g, w);
  });
  add("Renderer::render",
      [=](void const* p, Source const& src) { renderer.render(s, lens_of(p), src, NoLight{}, image); });
  add("Renderer::render_adaptive",
      [=](void const* p, Source const& src) { renderer.render_adaptive(s, lens_of(p), src, NoLight{}, mask, image); });
  add("Renderer::render_fine",
      [=](void const* p, Source const& src) { renderer.render_fine(s, lens_of(p), src, NoLight{}, fine); });
  add("Observation::render", [=](void const* p, Source const& src) { obs.render(s, model_of(p, src), image); });
  add("Observation::sample", [=](void const* p, Source const& src) {
    obs.sample(s, model_of(p, src), lensing::ObservationNoise<double>{}, image, 1);
  });
  add("GaussianLikelihood::value", [=](void const* p, Source const& src) { like.value(s, model_of(p, src)); });
  add("GaussianLikelihood::value_and_gradient", [=](void const* p, Source const& src) {
    lensing::View1D<double, Mem> g("g", Model::num_params);
    like.value_and_gradient(s, model_of(p, src), g);
  });
  return t;
}

/// Every entry point of the table, for lens `lens` and source `src`: throws
/// std::invalid_argument when `valid` is false, nothing when it is true.
template <class Space, class L>
void check_all(L const& lens, Source const& src, bool valid, std::string const& what) {
  for (auto const& e : entry_points<Space, L>()) {
    CAPTURE(e.name);
    CAPTURE(what);
    if (valid) {
      CHECK_NOTHROW(e.run(&lens, src));
    } else {
      CHECK_THROWS_AS(e.run(&lens, src), std::invalid_argument);
    }
    Space().fence();
  }
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("every entry point validates the lens and the source", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  // Valid models run (so the throws below come from the validation).
  check_all<Space>(sie_lens(1.0, 0.05, -0.03), good_source(), true, "valid SIE + shear");
  check_all<Space>(Epl{1.0, 2.1, 0.05, -0.03, 0.0, 0.0}, good_source(), true, "valid EPL");
  // Invalid lenses.
  check_all<Space>(sie_lens(-0.5, 0.05, -0.03), good_source(), false, "theta_E < 0");
  check_all<Space>(sie_lens(not_a_number, 0.05, -0.03), good_source(), false, "theta_E = NaN");
  check_all<Space>(sie_lens(1.0, 0.8, 0.7), good_source(), false, "|e| >= 1");
  check_all<Space>(sie_lens(1.0, not_a_number, 0.0), good_source(), false, "e1 = NaN");
  check_all<Space>(Lens(Sie{1.0, 0.05, -0.03, 0, 0}, Shear{not_a_number, 0, 0, 0}), good_source(), false, "shear NaN");
  check_all<Space>(Epl{1.0, 3.5, 0.05, -0.03, 0.0, 0.0}, good_source(), false, "EPL gamma = 3.5");
}

LENSING_TEST_CASE_TEMPLATE("entry points that render validate the source", Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  Source bad = good_source();
  bad.R_sersic = -0.2;
  Lens const lens = sie_lens(1.0, 0.05, -0.03);
  for (auto const& e : entry_points<Space, Lens>()) {
    bool const renders =
        e.name.find("Render") == 0 || e.name.find("Observation") == 0 || e.name.find("GaussianLikelihood") == 0;
    if (!renders) continue;
    CAPTURE(e.name);
    CHECK_THROWS_AS(e.run(&lens, bad), std::invalid_argument);
  }
}

TEST_CASE("a LensSum validates both of its lenses") {
  using Sum = lensing::LensSum<Lens, Sie>;
  CHECK_NOTHROW(lensing::check_model(Sum{sie_lens(1.0, 0, 0), Sie{0.1, 0, 0, 0, 0}}));
  CHECK_THROWS_AS(lensing::check_model(Sum{sie_lens(1.0, 0, 0), Sie{-0.1, 0, 0, 0, 0}}), std::invalid_argument);
  CHECK_THROWS_AS(lensing::check_model(Sum{sie_lens(not_a_number, 0, 0), Sie{0.1, 0, 0, 0, 0}}), std::invalid_argument);
}

// simulate_survey --size 2048 --chunk 1024 (chunk x size^2 = 2^32 pixels):
// Kokkos 3.4.1 computes a span of 0 for that rank-3 View, so the generator's
// buffer "allocated" 0 bytes and the first kernel wrote through it (SIGSEGV).
// Now the generator refuses before allocating anything.
LENSING_TEST_CASE_TEMPLATE("the training-set generator refuses buffers Kokkos cannot index", Config,
                           lensing::test::FloatFirstConfigs) {
  using Mem = typename Config::memory_space;
  namespace sim = lensing::simulate;
  auto const table = sim::default_training_set_priors<float, Mem>();
  for (auto [chunk, size] : {std::pair<int, int>{1024, 2048}, {4096, 1024}, {256, 4096}}) {
    CAPTURE(chunk);
    CAPTURE(size);
    sim::TrainingSetConfig config;
    config.nx = config.ny = size;
    config.chunk_size = chunk;
    std::string const message =
        lensing::test::error_message([&] { sim::TrainingSetGenerator<float, Mem>(config, table); });
    CHECK(message.find("(" + std::to_string(chunk) + ", " + std::to_string(size) + ", " + std::to_string(size) + ")") !=
          std::string::npos);
    CHECK_THROWS_AS((sim::TrainingSetGenerator<float, Mem>(config, table)), std::length_error);
  }
}
