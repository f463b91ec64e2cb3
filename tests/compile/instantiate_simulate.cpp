#include "instantiate.hpp"

#include <lensing/cosmology/flat_lcdm.hpp>
#include <lensing/deflection/interpolated_lens.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/profile_array.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/profiles/tnfw.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/raytrace/multi_plane.hpp>
#include <lensing/simulate/data_source.hpp>
#include <lensing/simulate/lens_presets.hpp>
#include <lensing/simulate/multiband.hpp>
#include <lensing/simulate/simulator.hpp>
#include <lensing/simulate/training_set.hpp>
#include <lensing/sources/sersic.hpp>

#include <array>

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
    // The PSF on the supersampled grid (a fine-grid operator, then the batched sub-pixel sum).
    opt.psf_sampling = lensing::PsfSampling::supersampled;
    lensing::simulate::Simulator<lensing::simulate::GalaxyGalaxyModel<S>, Psf, Mem> const fine_sim(
        lensing::PixelGrid<S>::square(8, S(0.05), 2), Psf(0.1, 0.025, 16, 16, 5.0, 2), band.detector_config(),
        lensing::simulate::galaxy_galaxy_priors<S, Mem>(), opt);
    fine_sim.generate(space, 0, images, sim_labels);
    space.fence();
    opt.psf_sampling = lensing::PsfSampling::binned;
    // A ProfileArray of subhaloes inside the per-image model.
    using SubModel = lensing::LensModel<lensing::Composite<lensing::SIS<S>, lensing::ProfileArray<lensing::TNFW<S>, 2>>,
                                        lensing::Sersic<S>, lensing::NoLight<S>>;
    lensing::ParameterTable<S, Mem> sub_table;
    for (auto const& name : lensing::simulate::model_parameter_names<SubModel>())
      sub_table.add(name, lensing::Prior<S>::uniform(0.5, 1.0));
    lensing::simulate::Simulator<SubModel, lensing::NoPsf<S>, Mem> const sub_sim(
        lensing::PixelGrid<S>::square(8, S(0.05), 1), lensing::NoPsf<S>{}, lensing::DetectorConfig::noiseless(),
        sub_table, opt);
    lensing::View2D<S, Mem> sub_labels("sub_labels", 2, sub_sim.num_labels());
    sub_sim.generate(space, 0, images, sub_labels);
    space.fence();
    // A two-plane lens (the prototype fixes the distances; planes' parameters by name) and an
    // interpolated lens (InterpolatedLensView: maps by pointer) summed with an SIS, per image.
    using Planes = lensing::MultiPlaneLens<lensing::SIS<S>, lensing::SIS<S>>;
    using PlaneModel = lensing::LensModel<Planes, lensing::Sersic<S>, lensing::NoLight<S>>;
    PlaneModel const plane_proto{
        lensing::make_multi_plane(lensing::FlatLambdaCDM<S>(70, 0.3), 2.0, std::array<double, 2>{0.5, 0.8},
                                  lensing::SIS<S>{}, lensing::SIS<S>{}),
        lensing::Sersic<S>{}, lensing::NoLight<S>{}};
    lensing::ParameterTable<S, Mem> plane_table;
    for (auto const& name : lensing::simulate::model_parameter_names<PlaneModel>())
      plane_table.add(name, lensing::Prior<S>::uniform(0.5, 1.0));
    lensing::simulate::Simulator<PlaneModel, lensing::NoPsf<S>, Mem> const plane_sim(
        plane_proto, lensing::PixelGrid<S>::square(8, S(0.05), 1), lensing::NoPsf<S>{},
        lensing::DetectorConfig::noiseless(), plane_table, opt);
    lensing::View2D<S, Mem> plane_labels("plane_labels", 2, plane_sim.num_labels());
    plane_sim.generate(space, 0, images, plane_labels);
    space.fence();
    using MapModel = lensing::LensModel<lensing::LensSum<lensing::InterpolatedLensView<S>, lensing::SIS<S>>,
                                        lensing::Sersic<S>, lensing::NoLight<S>>;
    auto const map_grid = lensing::PixelGrid<S>::square(4, S(0.2), 1);
    lensing::View2D<S, Mem> map("map", 4, 4);
    lensing::InterpolatedLens<S, Mem> const interpolated(map_grid, map, map, map, map);
    MapModel const map_proto{{interpolated.view(), lensing::SIS<S>{}}, lensing::Sersic<S>{}, lensing::NoLight<S>{}};
    lensing::ParameterTable<S, Mem> map_table;
    for (auto const& name : lensing::simulate::model_parameter_names<MapModel>())
      map_table.add(name, lensing::Prior<S>::uniform(0.5, 1.0));
    lensing::simulate::Simulator<MapModel, lensing::NoPsf<S>, Mem> const map_sim(
        map_proto, lensing::PixelGrid<S>::square(8, S(0.05), 1), lensing::NoPsf<S>{},
        lensing::DetectorConfig::noiseless(), map_table, opt);
    lensing::View2D<S, Mem> map_labels("map_labels", 2, map_sim.num_labels());
    map_sim.generate(space, 0, images, map_labels);
    space.fence();
    // MultiBandSimulator: one band (no colours needed), images (m, bands, ny, nx).
    lensing::simulate::MultiBandOptions mopt;
    mopt.batch_capacity = 2;
    mopt.domain_check_draws = 4;
    lensing::simulate::MultiBandSimulator<lensing::simulate::GalaxyGalaxyModel<S>, Psf, Mem> const multi(
        {band}, 8, 8, 2, lensing::simulate::galaxy_galaxy_priors<S, Mem>(), mopt);
    lensing::View4D<S, Mem> band_images("band_images", 2, 1, 8, 8);
    multi.generate(space, 0, band_images, sim_labels);
    space.fence();
    // SimulatedBatches over the Simulator: augmentation, standardisation, destandardise.
    lensing::simulate::SimulatedBatchesOptions bopt;
    bopt.batch_size = 3;
    bopt.augmentation.flips = bopt.augmentation.rotations = true;
    lensing::simulate::SimulatedBatches<std::decay_t<decltype(sim)>> batches(sim, bopt);
    batches.declare_standard_pairs();
    batches.select_labels({"lens0.theta_E", "lens0.e1", "lens0.e2"});
    batches.standardise_from_priors();
    auto const batch = batches.next(space);
    batches.destandardise(space, batch.labels);
    space.fence();
  });
}
