#include "instantiate.hpp"

#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/model/render.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/convolution.hpp>
#include <lensing/psf/fft_convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/psf/kernels.hpp>
#include <lensing/sources/composite_light.hpp>
#include <lensing/sources/gaussian.hpp>
#include <lensing/sources/hernquist_light.hpp>
#include <lensing/sources/pixelated.hpp>
#include <lensing/sources/sersic.hpp>
#include <lensing/sources/shapelets.hpp>

namespace {
// Render one image with every light profile as the source, through both PSF
// operators and their adjoints, and one likelihood value and gradient.
template <class Space, class S>
void imaging(Space const& space) {
  using Mem = typename Space::memory_space;
  using Lens = lensing::Composite<lensing::SIE<S>, lensing::ExternalShear<S>>;
  Lens const lens{lensing::SIE<S>{S(1), S(0.1), S(0), S(0), S(0)},
                  lensing::ExternalShear<S>{S(0.01), S(0), S(0), S(0)}};
  auto const grid = lensing::PixelGrid<S>::square(6, S(0.3), 2);
  lensing::Renderer<S, Mem> const r(grid);
  lensing::View2D<S, Mem> a("a", 6, 6), b("b", 6, 6);
  lensing::SersicEllipse<S> const se{S(1), S(0.3), S(2), S(0.1), S(0), S(0), S(0)};
  lensing::Shapelets<S, 2> sh{};
  sh.beta = S(0.3);
  r.render(space, lens, lensing::Sersic<S>{S(1), S(0.3), S(2), S(0), S(0)}, se, a);
  r.render(space, lens, lensing::Gaussian<S>{S(1), S(0.3), S(0), S(0)}, lensing::NoLight<S>{}, a);
  r.render(space, lens, lensing::GaussianEllipse<S>{S(1), S(0.3), S(0.1), S(0), S(0), S(0)}, lensing::NoLight<S>{}, a);
  r.render(space, lens, lensing::HernquistLight<S>{S(1), S(0.3), S(0), S(0)}, lensing::NoLight<S>{}, a);
  r.render(space, lens, lensing::make_composite_light(se, sh), lensing::NoLight<S>{}, a);
  lensing::View2D<int, Mem> mask("mask", 6, 6);
  lensing::select_supersampled_pixels(space, a, S(0.01), mask);
  r.render_adaptive(space, lens, se, lensing::NoLight<S>{}, mask, b);
  auto const px = lensing::make_pixelated_source(a, grid, lensing::Interpolation::bicubic);
  r.render(space, lens, px, lensing::NoLight<S>{}, b);
  lensing::View2D<S, Mem> bx("bx", 12, 12), by("by", 12, 12), gb("gb", 12, 12);
  lensing::pixelated_source_adjoint(space, px, bx, by, gb, b);
  lensing::GaussianFilter<S, Mem> const g(0.2, 0.3, 6, 6);
  g.apply(space, a, b);
  g.apply_adjoint(space, a, b);
  lensing::DirectConvolution<S, Mem> const c(lensing::gaussian_psf_kernel<S>(0.5, 0.3), 6, 6);
  c.apply(space, a, b);
  c.apply_adjoint(space, a, b);
  lensing::FftConvolution<S, Mem> const f(space, lensing::gaussian_psf_kernel<S>(0.5, 0.3), 6, 6);
  f.apply(space, a, b);
  f.apply_adjoint(space, a, b);
  lensing::View3D<S, Mem> a3("a3", 2, 6, 6), b3("b3", 2, 6, 6);  // batches (n, ny, nx)
  g.apply(space, a3, b3);
  g.apply_adjoint(space, a3, b3);
  c.apply(space, a3, b3);
  c.apply_adjoint(space, a3, b3);
  f.apply(space, a3, b3);
  f.apply_adjoint(space, a3, b3);
  using Model = lensing::LensModel<Lens, lensing::SersicEllipse<S>, lensing::NoLight<S>>;
  lensing::Observation<S, Mem, lensing::GaussianFilter<S, Mem>> const obs(grid, g);
  Model const model{lens, se, {}};
  obs.render(space, model, a);
  lensing::View2D<S, Mem> n("n", 6, 6), m("m", 6, 6);
  Kokkos::deep_copy(space, n, S(1));
  Kokkos::deep_copy(space, m, S(1));
  space.fence();
  lensing::GaussianLikelihood<Model, Mem, lensing::GaussianFilter<S, Mem>> const like(obs, a, n, m);
  lensing::View1D<S, Mem> grad("grad", Model::num_params);
  like.value_and_gradient(space, model, grad);
  // Adaptive supersampling: the point kernels and their VJP.
  lensing::GaussianLikelihood<Model, Mem, lensing::GaussianFilter<S, Mem>> like_ad(obs, a, n, m);
  like_ad.choose_supersampling_mask(space, model, 0.1);
  like_ad.value_and_gradient(space, model, grad);
  // Noisy realisations, the noise map, and the PSF on the supersampled grid
  // (render, sub-pixel binning and its adjoint, likelihood gradient).
  lensing::ObservationNoise<S> const noise{S(100), S(0.1), S(2)};
  obs.sample(space, model, noise, b, 1, 2);
  lensing::observation_noise_map(space, noise, a, n);
  lensing::View2D<S, Mem> fa("fa", 12, 12), fb("fb", 12, 12);
  r.render_fine(space, lens, se, lensing::NoLight<S>{}, fa);
  lensing::bin_subpixels(space, grid, fa, a);
  lensing::spread_to_subpixels(space, grid, a, fb);
  lensing::Observation<S, Mem, lensing::GaussianFilter<S, Mem>> const sup(
      grid, lensing::GaussianFilter<S, Mem>(0.2, 0.15, 12, 12), lensing::PsfSampling::supersampled);
  sup.render(space, model, a);
  sup.blur_and_bin(space, fa, a);
  sup.blur_and_bin_adjoint(space, a, fb);
  Kokkos::deep_copy(space, n, S(1));
  space.fence();
  lensing::GaussianLikelihood<Model, Mem, lensing::GaussianFilter<S, Mem>> const like_sup(sup, a, n, m);
  like_sup.value_and_gradient(space, model, grad);
  // The noise variance of the model, and the gradient with respect to a
  // pixelated source's pixel values.
  lensing::GaussianLikelihood<Model, Mem, lensing::GaussianFilter<S, Mem>> const like_mv(obs, a, noise, m);
  like_mv.value_and_gradient(space, model, grad);
  using PixModel = lensing::LensModel<Lens, lensing::PixelatedSource<S>, lensing::NoLight<S>>;
  lensing::View2D<S, Mem> sv("sv", 4, 4), sg("sg", 4, 4);
  PixModel const pm{lens, lensing::make_pixelated_source(sv, lensing::PixelGrid<S>::square(4, S(0.2))), {}};
  lensing::GaussianLikelihood<PixModel, Mem, lensing::GaussianFilter<S, Mem>> const like_pix(obs, a, n, m);
  lensing::View1D<S, Mem> gp("gp", PixModel::num_params);
  like_pix.value_and_gradient_source_pixels(space, pm, gp, sg);
  space.fence();
}
}  // namespace

LENSING_INSTANTIATE(instantiate_imaging) {
  lensing::instantiate::for_each_space_and_scalar(
      [](auto const& space, auto scalar) { imaging<std::decay_t<decltype(space)>, decltype(scalar)>(space); });
}
