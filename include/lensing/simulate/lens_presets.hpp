#ifndef LENSING_SIMULATE_LENS_PRESETS_HPP
#define LENSING_SIMULATE_LENS_PRESETS_HPP

/// \file
/// The galaxy-galaxy lens model of the seed pipelines and its default prior
/// table, for the Simulator (simulate/simulator.hpp).

#include <lensing/density/parameter_table.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/sources/sersic.hpp>

namespace lensing {
namespace simulate {

/// SIE + external shear lens, elliptical Sérsic source and elliptical Sérsic
/// lens light (lenstronomy's SIE, SHEAR, SERSIC_ELLIPSE): 23 parameters,
/// named lens0.* (SIE), lens1.* (shear), source0.*, light0.*
/// (model_parameter_names).
template <class Scalar>
using GalaxyGalaxyModel =
    LensModel<Composite<SIE<Scalar>, ExternalShear<Scalar>>, SersicEllipse<Scalar>, SersicEllipse<Scalar>>;

/// Default priors of GalaxyGalaxyModel for HST-like cutouts (amplitudes in
/// e-/s per arcsec^2 at the HST-like preset's zero point, sizes in arcsec):
///
/// | parameter | prior |
/// |---|---|
/// | lens0.theta_E | U(0.8, 1.4) |
/// | lens0.e1, lens0.e2 | truncated N(0, 0.15) on [-0.4, 0.4] |
/// | lens0.center_x, lens0.center_y | N(0, 0.05) |
/// | lens1.gamma1, lens1.gamma2 | N(0, 0.03) |
/// | lens1.ra_0, lens1.dec_0 | fixed 0 (shear origin; no effect on deflections) |
/// | source0.amp | log-U(20, 60) |
/// | source0.R_sersic | log-U(0.1, 0.3) |
/// | source0.n_sersic | U(0.8, 2.5) |
/// | source0.e1, source0.e2 | U(-0.3, 0.3) |
/// | source0.center_x, source0.center_y | U(-0.2, 0.2) |
/// | light0.amp | log-U(5, 15) |
/// | light0.R_sersic | log-U(0.4, 1.0) |
/// | light0.n_sersic | U(2.5, 4.5) |
/// | light0.e1, e2, center_x, center_y | tied to the lens's (light follows mass) |
template <class Scalar, class MemorySpace>
ParameterTable<Scalar, MemorySpace> galaxy_galaxy_priors() {
  using P = Prior<Scalar>;
  ParameterTable<Scalar, MemorySpace> t({{"lens0.theta_E", P::uniform(0.8, 1.4)},
                                         {"lens0.e1", P::truncated_normal(0, 0.15, -0.4, 0.4)},
                                         {"lens0.e2", P::truncated_normal(0, 0.15, -0.4, 0.4)},
                                         {"lens0.center_x", P::normal(0, 0.05)},
                                         {"lens0.center_y", P::normal(0, 0.05)},
                                         {"lens1.gamma1", P::normal(0, 0.03)},
                                         {"lens1.gamma2", P::normal(0, 0.03)},
                                         {"lens1.ra_0", P::fixed(0)},
                                         {"lens1.dec_0", P::fixed(0)},
                                         {"source0.amp", P::log_uniform(20, 60)},
                                         {"source0.R_sersic", P::log_uniform(0.1, 0.3)},
                                         {"source0.n_sersic", P::uniform(0.8, 2.5)},
                                         {"source0.e1", P::uniform(-0.3, 0.3)},
                                         {"source0.e2", P::uniform(-0.3, 0.3)},
                                         {"source0.center_x", P::uniform(-0.2, 0.2)},
                                         {"source0.center_y", P::uniform(-0.2, 0.2)},
                                         {"light0.amp", P::log_uniform(5, 15)},
                                         {"light0.R_sersic", P::log_uniform(0.4, 1.0)},
                                         {"light0.n_sersic", P::uniform(2.5, 4.5)}});
  t.tie("light0.e1", "lens0.e1");
  t.tie("light0.e2", "lens0.e2");
  t.tie("light0.center_x", "lens0.center_x");
  t.tie("light0.center_y", "lens0.center_y");
  return t;
}

}  // namespace simulate
}  // namespace lensing

#endif  // LENSING_SIMULATE_LENS_PRESETS_HPP
