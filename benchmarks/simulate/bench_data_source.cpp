// Streaming training data (simulate/data_source.hpp) against writing the
// same batches to memory: the Simulator with the HST-like preset (SIE +
// shear, elliptical Sersic source and lens light, PSF, noise and every
// artefact), float, 64^2 pixels, k = 2, batches of 256, on the default host
// space (threads from OMP_NUM_THREADS).  The requirement: batched
// streaming must not be slower than writing to memory.
//   BM_generate_to_memory: Simulator::generate into preallocated (256, 64, 64)
//     images and (256, K) labels (what a writer does before its file I/O);
//   BM_stream_next/0: SimulatedBatches::next, all labels, no standardisation;
//   BM_stream_next/1: + 7 selected labels standardised from the priors;
//   BM_stream_next/2: + flips and quarter turns of images and labels.
// Overhead floor of next over generate: one pass over the labels (256 x K)
// and, with augmentation, one copy of the batch (256 x 4096 floats, ~4 MB
// read + written: ~1 ms at memory bandwidth, against ~25 ms of simulation).
#include <lensing/model/instrument.hpp>
#include <lensing/model/render.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/data_source.hpp>
#include <lensing/simulate/lens_presets.hpp>
#include <lensing/simulate/simulator.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>

namespace {

using Space = Kokkos::DefaultHostExecutionSpace;
using Mem = Space::memory_space;
using S = float;
using Model = lensing::simulate::GalaxyGalaxyModel<S>;
using Psf = lensing::GaussianFilter<S, Mem>;
using Sim = lensing::simulate::Simulator<Model, Psf, Mem>;
constexpr int n = 64, batch = 256;

Sim make_simulator() {
  auto const band = lensing::presets::hst_like();
  auto const grid = lensing::PixelGrid<S>::square(n, S(band.pixel_scale), 2);
  lensing::simulate::SimulatorOptions opt;
  opt.batch_capacity = batch;
  return Sim(grid, Psf(band.psf_fwhm, band.pixel_scale, n, n, 5.0, batch), band.detector_config(),
             lensing::simulate::galaxy_galaxy_priors<S, Mem>(), opt);
}

void BM_generate_to_memory(benchmark::State& state) {
  Sim const sim = make_simulator();
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

void BM_stream_next(benchmark::State& state) {
  Sim const sim = make_simulator();
  lensing::simulate::SimulatedBatchesOptions o;
  o.batch_size = batch;
  if (state.range(0) >= 2) o.augmentation = {true, true, 3};
  lensing::simulate::SimulatedBatches<Sim> source(sim, o);
  if (state.range(0) >= 1) {
    source.select_labels(
        {"lens0.theta_E", "lens0.e1", "lens0.e2", "lens0.center_x", "lens0.center_y", "lens1.gamma1", "lens1.gamma2"});
    source.standardise_from_priors();
  }
  source.declare_standard_pairs();
  Space space;
  for (auto _ : state) {
    auto const b = source.next(space);
    space.fence();
    benchmark::DoNotOptimize(b.images.data());
  }
  state.counters["images/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_generate_to_memory)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_next)->Arg(0)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
