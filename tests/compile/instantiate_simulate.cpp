#include "instantiate.hpp"

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
  });
}
