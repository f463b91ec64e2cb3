// Imaging forward model: rendering (SIE + shear lens, elliptical Sersic source
// and lens light, scipy-convention Gaussian PSF) and the Gaussian
// log-likelihood with and without its gradient, double and float, on the
// default host space (threads from OMP_NUM_THREADS).  The cases of the
// lenstronomy figures in issue 5: 64^2 k = 1 with PSF; 128^2 and 256^2 k = 3;
// log-likelihood on 100^2 k = 3.  Floors: benchmarks/README.md.
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/fft_convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/raytrace/ray_shooting.hpp>
#include <lensing/simulate/lens_presets.hpp>
#include <lensing/simulate/simulator.hpp>
#include <lensing/simulate/training_set.hpp>
#include <lensing/sources/sersic.hpp>

#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

namespace {

using Space = Kokkos::DefaultHostExecutionSpace;
using Mem = Space::memory_space;

template <class S>
using Model = lensing::LensModel<lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>,
                                 lensing::SersicEllipse<S>, lensing::SersicEllipse<S>>;

template <class S>
Model<S> make_model() {
  std::vector<S> const t = {S(1.05), S(0.05), S(-0.03), S(0.013), S(-0.021), S(0.03),  S(-0.02), S(0),
                            S(0),    S(20),   S(0.25),  S(1.6),   S(0.08),   S(-0.05), S(0.06),  S(0.03),
                            S(8),    S(0.6),  S(3.2),   S(-0.06), S(0.04),   S(0.013), S(-0.021)};
  return Model<S>::unpack(t.data());
}

void counters(benchmark::State& state, double pixels, double subpixels) {
  state.counters["ns/subpixel"] =
      benchmark::Counter(subpixels * 1e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["ms/image"] =
      benchmark::Counter(1e-3, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  (void)pixels;
}

// args: n, k
template <class S>
void BM_render(benchmark::State& state) {
  int const n = int(state.range(0)), k = int(state.range(1));
  S const pix = S(0.05);
  auto const grid = lensing::PixelGrid<S>::square(n, pix, k);
  using Psf = lensing::GaussianFilter<S, Mem>;
  lensing::Observation<S, Mem, Psf> const obs(grid, Psf(0.1, pix, n, n));
  lensing::View2D<S, Mem> image("image", n, n);
  auto const model = make_model<S>();
  Space space;
  for (auto _ : state) {
    obs.render(space, model, image);
    space.fence();
  }
  counters(state, double(n) * n, double(n) * n * k * k);
}

// Adaptive supersampling: args n, k; pixels chosen by select_supersampled_pixels
// (threshold 0.01) on a k = 1 image, then k x k on those.  No PSF.
template <class S>
void BM_render_adaptive(benchmark::State& state) {
  int const n = int(state.range(0)), k = int(state.range(1));
  S const pix = S(0.05) * S(64) / S(n);
  auto const model = make_model<S>();
  lensing::Renderer<S, Mem> const r1(lensing::PixelGrid<S>::square(n, pix, 1)),
      rk(lensing::PixelGrid<S>::square(n, pix, k));
  lensing::View2D<S, Mem> one("one", n, n), image("image", n, n);
  lensing::View2D<int, Mem> mask("mask", n, n);
  Space space;
  r1.render(space, model.lens, model.source, model.lens_light, one);
  lensing::select_supersampled_pixels(space, one, S(0.01), mask);
  int flagged = 0;
  Kokkos::parallel_reduce(
      "count", Kokkos::RangePolicy<Space>(space, 0, n * n), KOKKOS_LAMBDA(int i, int& c) { c += mask(i / n, i % n); },
      flagged);
  for (auto _ : state) {
    rk.render_adaptive(space, model.lens, model.source, model.lens_light, mask, image);
    space.fence();
  }
  state.counters["flagged"] = double(flagged) / (double(n) * n);
  counters(state, double(n) * n, double(n) * n);
}

// args: n, k, with_gradient
template <class S>
void BM_loglike(benchmark::State& state) {
  int const n = int(state.range(0)), k = int(state.range(1));
  bool const with_grad = state.range(2) != 0;
  S const pix = S(0.05);
  auto const grid = lensing::PixelGrid<S>::square(n, pix, k);
  using Psf = lensing::GaussianFilter<S, Mem>;
  lensing::Observation<S, Mem, Psf> const obs(grid, Psf(0.1, pix, n, n));
  lensing::View2D<S, Mem> data("data", n, n), noise("noise", n, n), mask("mask", n, n);
  Space space;
  obs.render(space, make_model<S>(), data);
  Kokkos::deep_copy(noise, S(0.05));
  Kokkos::deep_copy(mask, S(1));
  lensing::GaussianLikelihood<Model<S>, Mem, Psf> const like(obs, data, noise, mask);
  lensing::View1D<S, Mem> grad("grad", Model<S>::num_params);
  auto model = make_model<S>();
  model.source.center_x += S(0.01);
  for (auto _ : state) {
    S v = with_grad ? like.value_and_gradient(space, model, grad) : like.value(space, model);
    benchmark::DoNotOptimize(v);
  }
  counters(state, double(n) * n, double(n) * n * k * k);
}

// Issue 15: the examples/fit_lens case (100^2 pixels of 0.05", k = 3,
// Gaussian PSF FWHM 0.1", sigma = 0.05 noise, its truth), value + gradient
// at the truth with noisy data.  args: adaptive (0 = every pixel 3 x 3,
// 1 = the mask GaussianLikelihood::choose_supersampling_mask picks at the
// truth (the MAP's stand-in) with tolerance 0.1, 2 = mask all-off, i.e.
// k = 1), with_gradient.  Counters: the supersampled fraction and the
// points per call (ns/point: the cost per surface-brightness evaluation).
template <class S>
void BM_loglike_fit_lens(benchmark::State& state) {
  int const n = 100, k = 3, adaptive = int(state.range(0));
  bool const with_grad = state.range(1) != 0;
  S const pix = S(0.05);
  using Psf = lensing::GaussianFilter<S, Mem>;
  lensing::Observation<S, Mem, Psf> const obs(lensing::PixelGrid<S>::square(n, pix, k), Psf(S(0.1), pix, n, n));
  std::vector<S> const t = {S(1.20), S(0.08), S(-0.05), S(0.0),  S(0.0),  S(0.03),  S(-0.02), S(0.0),
                            S(0.0),  S(15.0), S(0.15),  S(1.5),  S(0.10), S(-0.08), S(0.05),  S(0.08),
                            S(2.0),  S(0.80), S(1.0),   S(0.05), S(0.03), S(0.0),   S(0.0)};
  auto const model = Model<S>::unpack(t.data());
  lensing::View2D<S, Mem> data("data", n, n), noise("noise", n, n), mask("mask", n, n);
  Space space;
  obs.render(space, model, data);
  lensing::noise::apply(space, lensing::noise::GaussianNoise<S>{S(0.05)}, data, 15);
  Kokkos::deep_copy(noise, S(0.05));
  Kokkos::deep_copy(mask, S(1));
  space.fence();
  lensing::GaussianLikelihood<Model<S>, Mem, Psf> like(obs, data, noise, mask);
  if (adaptive == 1) {
    auto const c = like.choose_supersampling_mask(space, model, 0.1);
    state.counters["chi_distance"] = c.chi_distance;
  } else if (adaptive == 2) {
    lensing::View2D<int, Mem> off("off", n, n);
    like.set_supersampling_mask(space, off);
  }
  lensing::View1D<S, Mem> grad("grad", Model<S>::num_params);
  for (auto _ : state) {
    S v = with_grad ? like.value_and_gradient(space, model, grad) : like.value(space, model);
    benchmark::DoNotOptimize(v);
  }
  state.counters["flagged"] = double(like.supersampled_pixels()) / (double(n) * n);
  state.counters["ns/point"] =
      benchmark::Counter(double(like.evaluation_points()) * 1e-9,
                         benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  counters(state, double(n) * n, double(n) * n * k * k);
}

template <class L>
struct LightOnly {
  L light;
  KOKKOS_INLINE_FUNCTION typename L::scalar_type operator()(typename L::scalar_type x,
                                                            typename L::scalar_type y) const {
    return light.surface_brightness(x, y);
  }
};

template <class L, class V>
struct LightVjpTerm {
  L light;
  lensing::PixelGrid<typename L::scalar_type> grid;
  V gbar;
  KOKKOS_FORCEINLINE_FUNCTION void operator()(int jy, int jx, typename L::scalar_type* acc) const {
    light.surface_brightness_vjp(grid.fine_x(jx), grid.fine_y(jy), gbar(jy, jx), acc);
  }
};

// Components of the floor, per fine pixel of an n^2 grid supersampled k: 0 = ray
// shooting through SIE + shear; 1 = one elliptical Sersic; 2 = ray-shooting
// VJP to the lens parameters; 3 = the Gaussian PSF on the n^2 image; 4 = the
// parameter VJP of one elliptical Sersic; 5 = one elliptical Sersic prepared
// (detail::prepare, as Renderer and render_batch evaluate it).
template <class S>
void BM_component(benchmark::State& state) {
  int const n = int(state.range(0)), k = int(state.range(1)), which = int(state.range(2));
  S const pix = S(0.05);
  auto const grid = lensing::PixelGrid<S>::square(n, pix, k);
  auto const model = make_model<S>();
  int const fn = n * k;
  lensing::View2D<S, Mem> bx("bx", fn, fn), by("by", fn, fn), image("image", n, n), out("out", n, n);
  using Lens = decltype(model.lens);
  lensing::MapVjpWorkspace<S, Mem> work(grid, Lens::num_params);
  lensing::View1D<S, Mem> g("g", Lens::num_params);
  lensing::Renderer<S, Mem> const r(grid);
  lensing::GaussianFilter<S, Mem> const psf(0.1, pix, n, n);
  using L = lensing::SersicEllipse<S>;
  lensing::View2D<S, Mem> partial("partial", fn, L::num_params);
  lensing::View1D<S, Mem> gl("gl", L::num_params);
  Kokkos::deep_copy(bx, S(0.1));
  auto const prepared_source = lensing::detail::prepare(model.source);
  Space space;
  for (auto _ : state) {
    if (which == 0) lensing::ray_shoot(space, model.lens, grid, bx, by);
    if (which == 1) r.render_brightness(space, LightOnly<lensing::SersicEllipse<S>>{model.source}, image);
    if (which == 5) r.render_brightness(space, LightOnly<decltype(prepared_source)>{prepared_source}, image);
    if (which == 2) lensing::ray_shoot_vjp(space, model.lens, grid, bx, by, g, work);
    if (which == 3) psf.apply(space, image, out);
    if (which == 4)
      lensing::detail::reduce_params_over_pixels<L::num_params>(
          "bench", space, fn, fn, partial, gl, LightVjpTerm<L, lensing::View2D<S, Mem>>{model.source, grid, bx});
    space.fence();
  }
  counters(state, double(n) * n, double(n) * n * k * k);
}

// PSF convolution of an n^2 image with a (2R+1)^2 pixel kernel: args n, kernel
// size, 0 = direct, 1 = FFT.
template <class S>
void BM_psf(benchmark::State& state) {
  int const n = int(state.range(0)), size = int(state.range(1));
  bool const fft = state.range(2) != 0;
  std::vector<S> kv(std::size_t(size) * size, S(1));
  auto const k = lensing::pixel_kernel(kv, size);
  Space space;
  lensing::DirectConvolution<S, Mem> const direct(k, n, n);
  lensing::FftConvolution<S, Mem> const f(space, k, n, n);
  lensing::View2D<S, Mem> in("in", n, n), out("out", n, n);
  Kokkos::deep_copy(in, S(1));
  for (auto _ : state) {
    if (fft)
      f.apply(space, in, out);
    else
      direct.apply(space, in, out);
    space.fence();
  }
  counters(state, double(n) * n, double(n) * n);
}

// Training-set generation (simulate/training_set.hpp): chunks of 256 images of
// 64^2 pixels, k = 2, with every artefact of the default TrainingSetConfig
// (SIE + shear, procedural galaxy, lens light, PSF, sky + Poisson, read noise,
// bias, cosmic rays, hot/dead pixels, masks).  args: chunk size, stages (0:
// render only; 1: + PSF; 2: + noise and artefacts).
template <class S>
void BM_training_set(benchmark::State& state) {
  lensing::simulate::TrainingSetConfig c;
  c.chunk_size = int(state.range(0));
  if (state.range(1) < 2) c.noise = false;
  if (state.range(1) < 1) c.psf_fwhm = 0;
  lensing::simulate::TrainingSetGenerator<S, Mem> const g(c, lensing::simulate::default_training_set_priors<S, Mem>());
  lensing::View3D<S, Mem> images("images", c.chunk_size, c.ny, c.nx);
  lensing::View2D<S, Mem> labels("labels", c.chunk_size, g.num_labels());
  Space space;
  std::uint64_t first = 0;
  for (auto _ : state) {
    g.generate(space, first, images, labels);
    space.fence();
    first += std::uint64_t(c.chunk_size);
  }
  state.counters["images/s"] = benchmark::Counter(double(c.chunk_size), benchmark::Counter::kIsIterationInvariantRate);
}

// The generic Simulator (simulate/simulator.hpp) with the HST-like preset
// (model/instrument.hpp: 0.05"/pixel, PSF FWHM 0.10", sky + Poisson, read
// noise, bias, cosmic rays, hot/dead pixels, masks): SIE + shear, elliptical
// Sersic source and lens light (centre and ellipticity tied to the lens),
// 64^2 pixels, k = 2, batches of 256.  args: stages (0: render only; 1: +
// PSF; 2: + noise and artefacts).  Floor per image: 64^2 k^2 = 16384
// sub-pixels x (SIE + shear + two Sersic evaluations) + 4096 pixels x (PSF
// taps + noise draws).
template <class S>
void BM_simulator(benchmark::State& state) {
  auto const t = lensing::simulate::galaxy_galaxy_priors<S, Mem>();
  auto const band = lensing::presets::hst_like();
  int const n = 64, batch = 256;
  auto const grid = lensing::PixelGrid<S>::square(n, S(band.pixel_scale), 2);
  lensing::simulate::SimulatorOptions opt;
  opt.batch_capacity = batch;
  opt.noise = state.range(0) >= 2;
  using Psf = lensing::GaussianFilter<S, Mem>;
  // Stage 0 uses a PSF of width ~0 (one tap): the render cost alone.
  double const fwhm = state.range(0) >= 1 ? band.psf_fwhm : 1e-3;
  lensing::simulate::Simulator<Model<S>, Psf, Mem> const sim(grid, Psf(fwhm, band.pixel_scale, n, n, 5.0, batch),
                                                             band.detector_config(), t, opt);
  lensing::View3D<S, Mem> images("images", batch, n, n);
  lensing::View2D<S, Mem> labels("labels", batch, sim.num_labels());
  Space space;
  std::uint64_t first = 0;
  for (auto _ : state) {
    sim.generate(space, first, images, labels);
    space.fence();
    first += std::uint64_t(batch);
  }
  state.counters["images/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

// Issue 21's batched case: a batch of different lenses, each SIE + external
// shear with an elliptical Sersic source (no lens light, no noise), 64^2
// pixels of 0.05", k x k supersampling, then the Gaussian PSF of FWHM 0.1"
// (truncation 5: 9 taps), as a user renders a batch of given models:
// render_batch over a view of LensModels, then GaussianFilter::apply on the
// batch.  Parameter j of lens i is lo_j + (hi_j - lo_j) frac((i + 1)
// sqrt(p_j)), p_j the j-th prime (benchmarks/peers/lens_peers.py draws the
// same lenses for the peers' vmap).  args: batch size, k.  Counters:
// images/s (wall time), ns/subpixel; the JSON's cpu_time is the process's
// CPU time (all threads).
template <class S>
using BatchModel = lensing::LensModel<lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>,
                                      lensing::SersicEllipse<S>, lensing::NoLight<S>>;

// (lo, hi) of the 16 parameters in LensModel order: SIE theta_E, e1, e2,
// centre; shear gamma1, gamma2, ra_0, dec_0; Sersic amp, R_sersic, n, e1,
// e2, centre.
constexpr double batch_ranges[16][2] = {
    {0.8, 1.5}, {-0.2, 0.2}, {-0.2, 0.2}, {-0.05, 0.05}, {-0.05, 0.05}, {-0.05, 0.05}, {-0.05, 0.05}, {0, 0},
    {0, 0},     {5, 30},     {0.1, 0.5},  {0.8, 4.0},    {-0.2, 0.2},   {-0.2, 0.2},   {-0.2, 0.2},   {-0.2, 0.2}};
constexpr int batch_primes[16] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53};

template <class S>
void BM_render_batch(benchmark::State& state) {
  int const batch = int(state.range(0)), k = int(state.range(1)), n = 64;
  S const pix = S(0.05);
  auto const grid = lensing::PixelGrid<S>::square(n, pix, k);
  Kokkos::View<BatchModel<S>*, Mem> skies("skies", batch);
  auto const h = Kokkos::create_mirror_view(skies);
  for (int i = 0; i < batch; ++i) {
    S t[16];
    for (int j = 0; j < 16; ++j) {
      double const u = std::fmod(double(i + 1) * std::sqrt(double(batch_primes[j])), 1.0);
      t[j] = S(batch_ranges[j][0] + (batch_ranges[j][1] - batch_ranges[j][0]) * u);
    }
    h(i) = BatchModel<S>::unpack(t);
    h(i).check();
  }
  Kokkos::deep_copy(skies, h);
  lensing::GaussianFilter<S, Mem> const psf(0.1, pix, n, n, 5.0, batch);
  lensing::View3D<S, Mem> sharp("sharp", batch, n, n), images("images", batch, n, n);
  Space space;
  for (auto _ : state) {
    lensing::render_batch(space, grid, skies, sharp);
    psf.apply(space, sharp, images);
    space.fence();
  }
  state.counters["images/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["ns/subpixel"] =
      benchmark::Counter(double(batch) * n * n * k * k * 1e-9,
                         benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

}  // namespace

BENCHMARK_TEMPLATE(BM_psf, double)->ArgsProduct({{64, 256}, {5, 11, 21, 41}, {0, 1}})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_component, double)
    ->Args({100, 3, 0})
    ->Args({100, 3, 1})
    ->Args({100, 3, 2})
    ->Args({100, 1, 3})
    ->Args({100, 3, 4})
    ->Unit(benchmark::kMillisecond);
// The floor of BM_simulator (64^2, k = 2, float): ray shooting, one Sersic, the PSF.
// With 64^2 k = 1 and the prepared Sersic (5): the floor of BM_render_batch.
BENCHMARK_TEMPLATE(BM_component, float)
    ->Args({64, 2, 0})
    ->Args({64, 2, 1})
    ->Args({64, 1, 3})
    ->Args({64, 1, 0})
    ->Args({64, 1, 5})
    ->Args({64, 2, 5})
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_component, double)
    ->Args({64, 1, 0})
    ->Args({64, 1, 5})
    ->Args({64, 2, 0})
    ->Args({64, 2, 5})
    ->Args({64, 1, 3})
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_render, double)->Args({64, 1})->Args({128, 3})->Args({256, 3})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_render, float)->Args({64, 1})->Args({128, 3})->Args({256, 3})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_render_adaptive, double)->Args({128, 7})->Args({256, 7})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_loglike, double)->Args({100, 3, 0})->Args({100, 3, 1})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_loglike, float)->Args({100, 3, 0})->Args({100, 3, 1})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_loglike_fit_lens, double)->ArgsProduct({{0, 1, 2}, {0, 1}})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_loglike_fit_lens, float)->ArgsProduct({{0, 1, 2}, {0, 1}})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_training_set, float)
    ->ArgsProduct({{256}, {0, 1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_training_set, double)
    ->ArgsProduct({{256}, {0, 1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_simulator, float)->Arg(0)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_render_batch, double)
    ->ArgsProduct({{32, 256}, {1, 2}})
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_render_batch, float)
    ->ArgsProduct({{32, 256}, {1, 2}})
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);
