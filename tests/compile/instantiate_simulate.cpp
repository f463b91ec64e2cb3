#include "instantiate.hpp"

#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/lens_presets.hpp>
#include <lensing/simulate/simulator.hpp>
#include <lensing/simulate/training_set.hpp>

LENSING_INSTANTIATE(instantiate_simulate) {
  lensing::instantiate::for_each_space_and_scalar([](auto const& space, auto scalar) {
    using Space = std::decay_t<decltype(space)>;
    using S = decltype(scalar);
    using Mem = typename Space::memory_space;
    lensing::simulate::TrainingSetConfig config;
    config.nx = config.ny = 8;
    config.chunk_size = 2;
    auto const table = lensing::simulate::default_training_set_priors<S, Mem>();
    lensing::simulate::TrainingSetGenerator<S, Mem> const g(config, table);
    lensing::View3D<S, Mem> images("images", 2, 8, 8);
    lensing::View2D<S, Mem> labels("labels", 2, g.num_labels());
    g.generate(space, 0, images, labels);
    space.fence();
    // The generic Simulator: table draws, models, render_batch, batched PSF, Detector.
    using Psf = lensing::GaussianFilter<S, Mem>;
    auto const band = lensing::presets::hst_like();
    lensing::simulate::SimulatorOptions opt;
    opt.batch_capacity = 2;
    opt.domain_check_draws = 4;
    lensing::simulate::Simulator<lensing::simulate::GalaxyGalaxyModel<S>, Psf, Mem> const sim(
        lensing::PixelGrid<S>::square(8, S(0.05), 2), Psf(0.1, 0.05, 8, 8), band.detector_config(),
        lensing::simulate::galaxy_galaxy_priors<S, Mem>(), opt);
    lensing::View2D<S, Mem> sim_labels("sim_labels", 2, sim.num_labels());
    sim.generate(space, 0, images, sim_labels);
    space.fence();
  });
}
