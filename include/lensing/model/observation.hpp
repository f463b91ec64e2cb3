#ifndef LENSING_MODEL_OBSERVATION_HPP
#define LENSING_MODEL_OBSERVATION_HPP

/// \file
/// A lens model (lens + source light + lens light as one parameter vector)
/// and an observation (grid, supersampling, PSF, noise) that renders it and
/// draws noisy realisations of it.

#include <lensing/core/errors.hpp>
#include <lensing/model/render.hpp>
#include <lensing/noise/pixel_noise.hpp>
#include <lensing/profiles/lens_parameters.hpp>
#include <lensing/profiles/mass_profile.hpp>
#include <lensing/psf/psf_operator.hpp>
#include <lensing/sources/light_profile.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

namespace lensing {

/// Lens, source light and lens light (LightProfiles; NoLight for none) as
/// one model whose flat parameter vector is [lens | source | lens light].
/// The lens is a MassProfile (a profile, Composite<SIE, ExternalShear>,
/// ProfileArray, ...) or any lens with a deflection: a LensSum, a
/// MultiPlaneLens (its planes' parameters; the distance factors are fixed),
/// an InterpolatedLens or its view (no parameters).  The lens's parameters
/// are profiles/lens_parameters.hpp's (lens_param_count, pack_lens,
/// lens_with_params).  unpack(t) exists when the lens is a MassProfile (the
/// parameters are the whole model); with_params(t) keeps the lens's fixed
/// parts (distances, maps) and replaces the rest.  Trivially copyable when
/// the lens is (not an InterpolatedLens or Population: they hold Views).
template <class Lens, class Source, class LensLight>
struct LensModel {
  static_assert(is_deflector_v<Lens>,
                "lensing::LensModel: the lens must be a MassProfile or a lens with scalar_type and deflection(x, y) "
                "(LensSum, MultiPlaneLens, InterpolatedLens, InterpolatedLensView)");
  static_assert(check_light_profile<Source>() && check_light_profile<LensLight>(),
                "lensing::LensModel: source and lens light must be LightProfiles");
  using scalar_type = typename Lens::scalar_type;
  using Scalar = scalar_type;
  using lens_type = Lens;
  using source_type = Source;
  using lens_light_type = LensLight;
  static_assert(std::is_same<typename Source::scalar_type, Scalar>::value &&
                    std::is_same<typename LensLight::scalar_type, Scalar>::value,
                "lensing::LensModel: components must use the same scalar type");
  static constexpr int lens_offset = 0;
  static constexpr int source_offset = lens_param_count<Lens>::value;
  static constexpr int lens_light_offset = source_offset + Source::num_params;
  static constexpr int num_params = lens_light_offset + LensLight::num_params;

  Lens lens;
  Source source;
  LensLight lens_light;

  KOKKOS_INLINE_FUNCTION void pack(Scalar* t) const {
    pack_lens(lens, t);
    source.pack(t + source_offset);
    lens_light.pack(t + lens_light_offset);
  }
  template <class L = Lens, std::enable_if_t<is_mass_profile_v<L>, int> = 0>
  KOKKOS_INLINE_FUNCTION static LensModel unpack(Scalar const* t) {
    return {Lens::unpack(t), Source::unpack(t + source_offset), LensLight::unpack(t + lens_light_offset)};
  }
  /// This model with the parameters t (pack's order): the lens's fixed parts kept.
  KOKKOS_INLINE_FUNCTION LensModel with_params(Scalar const* t) const {
    return {lens_with_params(lens, t), Source::unpack(t + source_offset), LensLight::unpack(t + lens_light_offset)};
  }
  /// Host: throws std::invalid_argument if any component's parameters are bad.
  void check() const {
    check_model(lens);
    source.check();
    lens_light.check();
  }
};

/// The identity PSF (no blur), with the PSF operator interface.
template <class Scalar>
struct NoPsf {
  static constexpr bool accepts_batches = true;  // deep_copy takes (n, ny, nx) too
  template <class ExecutionSpace, class In, class Out>
  void apply(ExecutionSpace const& space, In const& in, Out const& out) const {
    Kokkos::deep_copy(space, out, in);
  }
  template <class ExecutionSpace, class In, class Out>
  void apply_adjoint(ExecutionSpace const& space, In const& in, Out const& out) const {
    Kokkos::deep_copy(space, out, in);
  }
};

//----------------------------------------------------------------------------
// Noise of an observation.

/// Pixel noise of an imaging observation (lenstronomy SimAPI / Hezaveh et
/// al. 2017 order): the noiseless image M [e-/s per pixel] becomes
///
///   d = N / t - s + (sigma_e / t) z_r + sigma_bg z_b,   N ~ Poisson((max(M, 0) + s) t),
///
/// t = exposure_time [s] (> 0, finite), s = sky [e-/s per pixel] (>= 0: a
/// sky-subtracted image whose sky still contributes its shot noise),
/// sigma_e = read_noise [e- rms per pixel per exposure] (>= 0), sigma_bg =
/// background_rms [image units, e-/s] (>= 0), z_r and z_b independent
/// standard normals per pixel; shot_noise = false drops the Poisson step
/// (d = M + Gaussian terms; the sky then plays no part).  The Poisson draw is
/// exact below `normal_threshold` expected counts and the rounded normal
/// approximation above (noise::PoissonNoise).  Hence
///   E[d] = M (M >= 0),  Var[d] = variance(M) = (max(M, 0) + s) / t + (sigma_e / t)^2 + sigma_bg^2.
/// Trivially copyable.
template <class Scalar>
struct ObservationNoise {
  Scalar exposure_time = Scalar(1);
  Scalar background_rms = Scalar(0);
  Scalar read_noise = Scalar(0);
  bool shot_noise = true;
  double normal_threshold = 1000;
  Scalar sky = Scalar(0);  ///< [e-/s per pixel], subtracted after the Poisson draw

  /// Host: throws std::invalid_argument ("<where>: ...") for a parameter out
  /// of its domain (NaN included).
  void check(char const* where) const {
    check_positive(exposure_time, where, "exposure_time");
    check_nonnegative(background_rms, where, "background_rms");
    check_nonnegative(read_noise, where, "read_noise");
    check_nonnegative(sky, where, "sky");
    check_argument(std::isfinite(normal_threshold) && normal_threshold >= 10, where,
                   detail::describe("normal_threshold", "finite and >= 10", normal_threshold));
  }
  /// Var[d] for a noiseless pixel value m (the noise model's variance).
  KOKKOS_INLINE_FUNCTION Scalar variance(Scalar m) const {
    Scalar const r = read_noise / exposure_time;
    Scalar const shot = shot_noise ? ((m > Scalar(0) ? m : Scalar(0)) + sky) / exposure_time : Scalar(0);
    return shot + r * r + background_rms * background_rms;
  }
};

/// Add the noise of `noise` to noiseless `images` (rank 2 (ny, nx) or rank 3
/// (n, ny, nx), finite values), in place: Poisson (if shot_noise), then read
/// noise, then background.  Every draw comes from the counter-based stream
/// (seed, purpose, realisation + b, pixel) of noise/random_stream.hpp, so the
/// result is a function of (images, noise, seed, realisation) alone, bit for
/// bit the same at any thread count and on any host backend; different
/// `realisation` indices give independent realisations.  Asynchronous on
/// `space` except for the finiteness check of the Poisson step (one reduction).
template <class ExecutionSpace, class View>
void add_observation_noise(ExecutionSpace const& space,
                           ObservationNoise<typename View::non_const_value_type> const& config, View const& images,
                           std::uint64_t seed, std::uint64_t realisation = 0) {
  using Scalar = typename View::non_const_value_type;
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::add_observation_noise: first argument must be a Kokkos execution space");
  config.check("lensing::add_observation_noise");
  if (config.shot_noise) {
    noise::PoissonNoise<Scalar> p{config.exposure_time};
    p.normal_threshold = config.normal_threshold;
    p.sky = config.sky;  // added and subtracted in the Poisson pass
    noise::apply(space, p, images, seed, realisation);
  }
  if (config.read_noise > 0)
    noise::apply(space, noise::ReadNoise<Scalar>{config.read_noise, config.exposure_time}, images, seed, realisation);
  if (config.background_rms > 0)
    noise::apply(space, noise::GaussianNoise<Scalar>{config.background_rms}, images, seed, realisation);
}

/// The noise map of a noiseless image: sigma(iy, ix) = sqrt(noise.variance(model(iy, ix)))
/// (the sigma_p of a GaussianLikelihood for data drawn by
/// add_observation_noise).  Zero where the model is <= 0 and there is no
/// Gaussian term.  Asynchronous on `space`.
template <class ExecutionSpace, class Model, class Sigma>
void observation_noise_map(ExecutionSpace const& space, ObservationNoise<typename Sigma::value_type> const& config,
                           Model const& model, Sigma const& sigma) {
  using Scalar = typename Sigma::value_type;
  constexpr char const* where = "lensing::observation_noise_map";
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::observation_noise_map: first argument must be a Kokkos execution space");
  static_assert(
      Model::rank == 2 && Sigma::rank == 2 && std::is_same<typename Model::non_const_value_type, Scalar>::value,
      "lensing::observation_noise_map: rank-2 views (ny, nx) of the same scalar type");
  static_assert(is_accessible_from_v<ExecutionSpace, typename Model::memory_space> &&
                    is_accessible_from_v<ExecutionSpace, typename Sigma::memory_space>,
                "lensing::observation_noise_map: the views must be accessible from the execution space");
  config.check(where);
  auto const noise = config;
  check_argument(model.extent(0) == sigma.extent(0) && model.extent(1) == sigma.extent(1), where,
                 "model and sigma must have the same extents");
  parallel_for_pixels(
      "lensing::simulate::noise_map", space, int(model.extent(0)), int(model.extent(1)),
      KOKKOS_LAMBDA(int iy, int ix) { sigma(iy, ix) = math::sqrt(noise.variance(model(iy, ix))); });
}

//----------------------------------------------------------------------------
// The observation.

/// Where an Observation applies its PSF.
///  - binned (default; lenstronomy's supersampling_convolution = False):
///    average the k x k sub-pixels into pixels, then convolve with the PSF
///    sampled at the pixel scale (an ny x nx operator).  Cheap: the
///    convolution runs on ny nx pixels.
///  - supersampled (supersampling_convolution = True): convolve the fine image
///    with the PSF sampled at the fine scale pixel_scale / k (a fine_ny x
///    fine_nx operator, e.g. GaussianFilter(fwhm, pixel_scale / k, fine_ny,
///    fine_nx) or DirectConvolution(gaussian_psf_kernel(fwhm, pixel_scale / k),
///    fine_ny, fine_nx)), then bin.  Costs k^2 (direct convolution: k^4, as
///    the kernel grows too) times the binned convolution.
/// At k = 1 the two are the same operator.  Which to choose depends on how
/// the PSF kernel was sampled (measured in tests/model/
/// test_observation_sample.cpp on a Gaussian source and a 2-pixel FWHM
/// Gaussian PSF, against the exact pixel integral):
///  - point-sampled kernels (GaussianFilter, lenstronomy's convention): both
///    converge to the exact image as O(1/k^2) (2.5%, 0.62%, 0.15%, 0.04% of
///    the peak at k = 1, 2, 4, 8) and differ by 5e-5 of the peak at any k > 1:
///    binned is the right choice;
///  - pixel-integrated kernels (gaussian_psf_kernel, moffat_psf_kernel, a
///    star stamp): binned at k > 1 integrates the pixel twice (once in the
///    sub-pixel average, once in the kernel) and converges to the image with
///    the PSF variance increased by pixel_scale^2 / 12 per axis, 2.4% of the
///    peak away from the exact one, whatever k; supersampled (the kernel
///    integrated over fine pixels) is within 1e-6 of it for k >= 2 (the
///    fine-pixel integration and the midpoint rule cancel at leading order).
///    Use supersampled, or k = 1, with such kernels when the PSF is not much
///    wider than a pixel.
enum class PsfSampling { binned, supersampled };

/// An imaging observation: PixelGrid (with supersampling k) and a PSF
/// operator (psf/psf_operator.hpp: GaussianFilter, DirectConvolution,
/// FftConvolution, NoPsf)
/// applied on the pixel grid (PsfSampling::binned, lenstronomy's default) or
/// on the supersampled grid (PsfSampling::supersampled; the operator must
/// then have the fine grid's extents): see PsfSampling for the choice.
///
///   render(model)  = B_PSF(F(model)),  F the sub-pixel surface brightness
///                    (Renderer::render_fine), B_PSF = blur_and_bin:
///                    binned: PSF(Bin(f)); supersampled: Bin(PSF_fine(f)),
///                    Bin the A_pix / k^2 sub-pixel sum (bin_subpixels);
///   sample(model, noise, seed, r) = render(model) + noise (add_observation_noise).
///
/// blur_and_bin_adjoint is the exact transpose of the linear map B_PSF (the
/// backward pass of GaussianLikelihood).  Owns the buffers (the unblurred
/// pixel image; in supersampled mode two fine images); copies share them, as
/// Views do: do not use one Observation from two threads at once.  clone()
/// gives an independent copy (own buffers, the PSF's clone() where it has one)
/// for use from another thread.
template <class Scalar, class MemorySpace, class Psf>
class Observation {
  static_assert(check_psf_operator<Psf, Scalar, MemorySpace>(),
                "lensing::Observation: the PSF must model PsfOperator (psf/psf_operator.hpp)");

 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;

  Observation(PixelGrid<Scalar> const& grid, Psf const& psf, PsfSampling sampling = PsfSampling::binned)
      : m_renderer(grid),
        m_psf(psf),
        m_sampling(sampling),
        m_sharp(allocate_view<View2D<Scalar, MemorySpace>>("lensing::Observation", "lensing::Observation::sharp", true,
                                                           grid.ny(), grid.nx())) {
    constexpr char const* where = "lensing::Observation";
    check_argument(sampling == PsfSampling::binned || sampling == PsfSampling::supersampled, where,
                   "unknown PsfSampling");
    bool const super = sampling == PsfSampling::supersampled;
    int const ny = super ? grid.fine_ny() : grid.ny(), nx = super ? grid.fine_nx() : grid.nx();
    if constexpr (detail::has_psf_extents<Psf>::value) {
      check_argument(psf.ny() == ny && psf.nx() == nx, where,
                     std::string("the PSF operator must have the ") + (super ? "fine grid's" : "grid's") +
                         " extents (" + std::to_string(ny) + ", " + std::to_string(nx) + "), got (" +
                         std::to_string(psf.ny()) + ", " + std::to_string(psf.nx()) + ")");
    }
    if (super) {
      m_fine = allocate_view<View2D<Scalar, MemorySpace>>(where, "lensing::Observation::fine", true, grid.fine_ny(),
                                                          grid.fine_nx());
      m_fine_blur = allocate_view<View2D<Scalar, MemorySpace>>(where, "lensing::Observation::fine_blurred", true,
                                                               grid.fine_ny(), grid.fine_nx());
    }
  }

  /// An independent copy with its own buffers (renderer, pixel and fine
  /// images; the PSF operator cloned if it has a clone() member, otherwise
  /// copied: a PSF without clone() must have no writable buffers).
  Observation clone() const {
    if constexpr (detail::has_psf_clone<Psf>::value)
      return Observation(grid(), m_psf.clone(), m_sampling);
    else
      return Observation(grid(), m_psf, m_sampling);
  }

  PixelGrid<Scalar> const& grid() const { return m_renderer.grid(); }
  Renderer<Scalar, MemorySpace> const& renderer() const { return m_renderer; }
  Psf const& psf() const { return m_psf; }
  PsfSampling sampling() const { return m_sampling; }

  /// Noiseless model image (ny, nx), asynchronous on `space`.
  template <class ExecutionSpace, class Model, class Image>
  void render(ExecutionSpace const& space, Model const& model, Image const& image) const {
    lensing::check_extents(image, "lensing::Observation::render", "image", "(ny, nx)", grid().ny(), grid().nx());
    if (m_sampling == PsfSampling::supersampled) {
      m_renderer.render_fine(space, model.lens, model.source, model.lens_light, m_fine);
      m_psf.apply(space, m_fine, m_fine_blur);
      bin_subpixels(space, grid(), m_fine_blur, image);
    } else {
      m_renderer.render(space, model.lens, model.source, model.lens_light, m_sharp);
      m_psf.apply(space, m_sharp, image);
    }
  }

  /// A noisy realisation: image = render(model) + noise (add_observation_noise
  /// with `seed` and realisation index `realisation`).  Throws
  /// std::invalid_argument for bad model or noise parameters (NaN included)
  /// or a non-finite rendered image.  Deterministic: the same (model, noise,
  /// seed, realisation) give the same image bit for bit at any thread count.
  /// Fences `space` once (the finiteness check of the Poisson step).
  template <class ExecutionSpace, class Model, class Image>
  void sample(ExecutionSpace const& space, Model const& model, ObservationNoise<Scalar> const& noise,
              Image const& image, std::uint64_t seed, std::uint64_t realisation = 0) const {
    noise.check("lensing::Observation::sample");
    model.check();
    render(space, model, image);
    add_observation_noise(space, noise, image, seed, realisation);
  }

  /// image = B_PSF(fine): the linear part of render, from a sub-pixel
  /// surface brightness map fine (fine_ny, fine_nx).  Asynchronous on `space`.
  template <class ExecutionSpace, class Fine, class Image>
  void blur_and_bin(ExecutionSpace const& space, Fine const& fine, Image const& image) const {
    constexpr char const* where = "lensing::Observation::blur_and_bin";
    lensing::check_extents(fine, where, "fine", "(fine_ny, fine_nx)", grid().fine_ny(), grid().fine_nx());
    lensing::check_extents(image, where, "image", "(ny, nx)", grid().ny(), grid().nx());
    if (m_sampling == PsfSampling::supersampled) {
      m_psf.apply(space, fine, m_fine_blur);
      bin_subpixels(space, grid(), m_fine_blur, image);
    } else {
      bin_subpixels(space, grid(), fine, m_sharp);
      m_psf.apply(space, m_sharp, image);
    }
  }

  /// fine_bar = B_PSF^T image_bar (fine_bar of extents (fine_ny, fine_nx)):
  /// <B_PSF f, g> = <f, B_PSF^T g>.  Asynchronous on `space`.
  template <class ExecutionSpace, class Image, class Fine>
  void blur_and_bin_adjoint(ExecutionSpace const& space, Image const& image_bar, Fine const& fine_bar) const {
    constexpr char const* where = "lensing::Observation::blur_and_bin_adjoint";
    lensing::check_extents(fine_bar, where, "fine_bar", "(fine_ny, fine_nx)", grid().fine_ny(), grid().fine_nx());
    lensing::check_extents(image_bar, where, "image_bar", "(ny, nx)", grid().ny(), grid().nx());
    if (m_sampling == PsfSampling::supersampled) {
      spread_to_subpixels(space, grid(), image_bar, m_fine);
      m_psf.apply_adjoint(space, m_fine, fine_bar);
    } else {
      m_psf.apply_adjoint(space, image_bar, m_sharp);
      spread_to_subpixels(space, grid(), m_sharp, fine_bar);
    }
  }

 private:
  Renderer<Scalar, MemorySpace> m_renderer;
  Psf m_psf;
  PsfSampling m_sampling = PsfSampling::binned;
  View2D<Scalar, MemorySpace> m_sharp, m_fine, m_fine_blur;
};

}  // namespace lensing

#endif  // LENSING_MODEL_OBSERVATION_HPP
