#ifndef LENSING_LENSING_HPP
#define LENSING_LENSING_HPP

/// \file
/// Umbrella header: every public header of lensing.  Prefer the individual
/// headers in your own code; they compile much faster.
///
/// The headers of a CMake package component are included only when the
/// component is linked: lensing::fft (LENSING_HAS_FFT) brings the FFT
/// deflections and PSF convolution, lensing::fits (LENSING_HAS_FITS) the FITS
/// files and the training-set writer.
///
/// Layout: the folders of include/lensing/ include each other without a
/// cycle (core at the bottom; density/ holds the LogDensity concept and its
/// evaluator, the priors and the parameter table, below optim/, sample/ and
/// simulate/); scripts/include-graph.sh prints the folder graph and fails on
/// a cycle (ctest label "layering").  Tests mirror
/// the folders: tests/<folder>/ tests include/lensing/<folder>/.
///
/// Namespace rule: the model and inference folders (core, geometry,
/// cosmology, profiles, sources, psf, deflection, raytrace, model,
/// likelihood, density, optim, sample, fit) declare their public names directly in
/// `lensing::`, the toolkit folders io, noise, nn, simulate and validate in
/// `lensing::<folder>::`, and every folder keeps its internals in a nested
/// `detail::`.  Exceptions, each with its reason:
///  - core/random.hpp: `lensing::random` (mix64, stream_key, Purpose and its
///    purpose_* values, Stream: the one counter-based random family's key
///    derivation, stream-splitting purposes and streams, whose short names
///    stay out of `lensing::`); its host face `Rng` is `lensing::Rng`;
///  - sample/diagnostics.hpp: `lensing::diagnostics` (rhat, ess_bulk,
///    summarize...: short names kept out of `lensing::`);
///  - families inside a folder: `lensing::math` (core: functions named like
///    std's), `lensing::compat` and `lensing::kmath` (core: Kokkos version
///    shims), `lensing::constants` (cosmology: physical constants).

#include <lensing/core/adam_rule.hpp>
#include <lensing/core/complex.hpp>
#include <lensing/core/dual.hpp>
#include <lensing/core/errors.hpp>
#include <lensing/core/gradient_check.hpp>
#include <lensing/core/kokkos_compat.hpp>
#include <lensing/core/lr_schedule.hpp>
#include <lensing/core/math.hpp>
#include <lensing/core/parallel.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/reduce_params.hpp>
#include <lensing/core/special.hpp>
#include <lensing/core/tuple.hpp>
#include <lensing/core/vec2.hpp>
#include <lensing/core/version.hpp>
#include <lensing/core/views.hpp>
#include <lensing/cosmology/flat_lcdm.hpp>
#if defined(LENSING_HAS_FFT)
#include <lensing/deflection/convergence_deflection.hpp>
#include <lensing/deflection/interpolated_lens.hpp>
#endif
#include <lensing/deflection/kernels.hpp>
#include <lensing/density/evaluator.hpp>
#include <lensing/density/log_density.hpp>
#include <lensing/density/parameter_table.hpp>
#include <lensing/density/prior.hpp>
#include <lensing/fit/batch.hpp>
#include <lensing/fit/decoded_source.hpp>
#include <lensing/fit/plots.hpp>
#include <lensing/fit/posterior.hpp>
#include <lensing/fit/workflow.hpp>
#include <lensing/geometry/ellipticity.hpp>
#include <lensing/geometry/grid_coordinates.hpp>
#include <lensing/geometry/pixel_grid.hpp>
#include <lensing/inversion/evidence_density.hpp>
#include <lensing/inversion/lensing_operator.hpp>
#include <lensing/inversion/linear_amplitudes.hpp>
#include <lensing/inversion/regularisation.hpp>
#include <lensing/inversion/source_inversion.hpp>
#include <lensing/io/file.hpp>
#if defined(LENSING_HAS_FITS)
#include <lensing/io/fits.hpp>
#endif
#include <lensing/io/font.hpp>
#include <lensing/io/npy.hpp>
#if defined(LENSING_HAS_HDF5)
#include <lensing/io/hdf5.hpp>
#endif
#include <lensing/io/png.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/nn/activation.hpp>
#include <lensing/nn/batchnorm.hpp>
#include <lensing/nn/checkpoint.hpp>
#include <lensing/nn/concat.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/conv_transpose2d.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/dropout.hpp>
#include <lensing/nn/finite_check.hpp>
#include <lensing/nn/fit.hpp>
#include <lensing/nn/flatten.hpp>
#include <lensing/nn/gemm.hpp>
#include <lensing/nn/gradient_check.hpp>
#include <lensing/nn/graph_conv.hpp>
#include <lensing/nn/graph_conv_directional.hpp>
#include <lensing/nn/layer.hpp>
#include <lensing/nn/layer_norm.hpp>
#include <lensing/nn/loss.hpp>
#include <lensing/nn/loss_gaussian_full.hpp>
#include <lensing/nn/loss_mdn.hpp>
#include <lensing/nn/losses.hpp>
#include <lensing/nn/mc_predict.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/pooling.hpp>
#include <lensing/nn/reshape.hpp>
#include <lensing/nn/residual.hpp>
#include <lensing/nn/schedule.hpp>
#include <lensing/nn/score_matching.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/nn/serialize.hpp>
#include <lensing/nn/tensor.hpp>
#include <lensing/nn/train.hpp>
#include <lensing/nn/two_input.hpp>
#include <lensing/nn/vae.hpp>
#include <lensing/noise/bad_pixels.hpp>
#include <lensing/noise/cosmic_rays.hpp>
#include <lensing/noise/image_batch.hpp>
#include <lensing/noise/masks.hpp>
#include <lensing/noise/pixel_noise.hpp>
#include <lensing/optim/adam.hpp>
#include <lensing/optim/lbfgs.hpp>
#include <lensing/optim/levenberg_marquardt.hpp>
#include <lensing/optim/line_search.hpp>
#include <lensing/optim/multi_start.hpp>
#include <lensing/optim/result.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/cored_density.hpp>
#include <lensing/profiles/epl.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/gaussian_kappa.hpp>
#include <lensing/profiles/hernquist.hpp>
#include <lensing/profiles/lens_parameters.hpp>
#include <lensing/profiles/mass_profile.hpp>
#include <lensing/profiles/mass_sheet.hpp>
#include <lensing/profiles/multipole.hpp>
#include <lensing/profiles/nfw.hpp>
#include <lensing/profiles/nfw_ellipse.hpp>
#include <lensing/profiles/point_mass.hpp>
#include <lensing/profiles/population.hpp>
#include <lensing/profiles/profile_array.hpp>
#include <lensing/profiles/pseudo_jaffe.hpp>
#include <lensing/profiles/sersic_kappa.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/profiles/tnfw.hpp>
#include <lensing/psf/convolution.hpp>
#if defined(LENSING_HAS_FFT)
#include <lensing/psf/fft_convolution.hpp>
#endif
#include <lensing/model/instrument.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/model/parameter_names.hpp>
#include <lensing/model/render.hpp>
#include <lensing/nn/conv_gru.hpp>
#include <lensing/nn/graph_batch.hpp>
#include <lensing/nn/graph_net.hpp>
#include <lensing/nn/iaf.hpp>
#include <lensing/nn/iaf_variational.hpp>
#include <lensing/nn/made.hpp>
#include <lensing/nn/rim.hpp>
#include <lensing/nn/unet.hpp>
#include <lensing/nn/variational_autoencoder.hpp>
#include <lensing/nn/wgan.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/psf/kernels.hpp>
#include <lensing/psf/psf_operator.hpp>
#include <lensing/raytrace/critical_curves.hpp>
#include <lensing/raytrace/hessian_vjp.hpp>
#include <lensing/raytrace/image_positions.hpp>
#include <lensing/raytrace/lens_map.hpp>
#include <lensing/raytrace/multi_plane.hpp>
#include <lensing/raytrace/population_vjp.hpp>
#include <lensing/raytrace/ray_shooting.hpp>
#include <lensing/raytrace/time_delays.hpp>
#include <lensing/sample/adaptation.hpp>
#include <lensing/sample/batch.hpp>
#include <lensing/sample/bijections.hpp>
#include <lensing/sample/diagnostics.hpp>
#include <lensing/sample/draws.hpp>
#include <lensing/sample/hamiltonian.hpp>
#include <lensing/sample/langevin.hpp>
#include <lensing/sample/metric.hpp>
#include <lensing/sample/parallel_chains.hpp>
#include <lensing/sample/predictor_corrector.hpp>
#include <lensing/sample/sampler.hpp>
#include <lensing/sample/score.hpp>
#include <lensing/sample/variational.hpp>
#include <lensing/sbi/npe.hpp>
#include <lensing/sbi/nre.hpp>
#include <lensing/simulate/digits.hpp>
#include <lensing/simulate/galaxies.hpp>
#include <lensing/simulate/lens_presets.hpp>
#include <lensing/simulate/spiral_galaxies.hpp>
#if defined(LENSING_HAS_FITS)
#include <lensing/simulate/simulator.hpp>
#include <lensing/simulate/training_set.hpp>
#include <lensing/simulate/write.hpp>
#endif
#include <lensing/sources/composite_light.hpp>
#include <lensing/sources/decoded.hpp>
#include <lensing/sources/gaussian.hpp>
#include <lensing/sources/hernquist_light.hpp>
#include <lensing/sources/light_profile.hpp>
#include <lensing/sources/pixelated.hpp>
#include <lensing/sources/sersic.hpp>
#include <lensing/sources/shapelets.hpp>
#include <lensing/validate/pqmass.hpp>
#include <lensing/validate/sbc.hpp>
#include <lensing/validate/statistics.hpp>
#include <lensing/validate/tarp.hpp>
#include <lensing/validate/variance_scale.hpp>

#endif  // LENSING_LENSING_HPP
