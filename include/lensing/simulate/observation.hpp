#ifndef LENSING_SIMULATE_OBSERVATION_HPP
#define LENSING_SIMULATE_OBSERVATION_HPP

/// \file
/// A lens model (lens + source light + lens light as one parameter vector)
/// and an observation (grid, supersampling, PSF) that renders it.

#include <lensing/profiles/mass_profile.hpp>
#include <lensing/simulate/render.hpp>
#include <lensing/sources/light_profile.hpp>

#include <array>
#include <type_traits>

namespace lensing {

/// Lens (a MassProfile, e.g. Composite<SIE, ExternalShear>), source light and
/// lens light (LightProfiles; NoLight for none) as one trivially copyable
/// model whose flat parameter vector is [lens | source | lens light].
template <class Lens, class Source, class LensLight>
struct LensModel {
  static_assert(check_mass_profile<Lens>(), "lensing::LensModel: the lens must be a MassProfile");
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
  static constexpr int source_offset = Lens::num_params;
  static constexpr int lens_light_offset = Lens::num_params + Source::num_params;
  static constexpr int num_params = lens_light_offset + LensLight::num_params;

  Lens lens;
  Source source;
  LensLight lens_light;

  KOKKOS_INLINE_FUNCTION void pack(Scalar* t) const {
    lens.pack(t);
    source.pack(t + source_offset);
    lens_light.pack(t + lens_light_offset);
  }
  KOKKOS_INLINE_FUNCTION static LensModel unpack(Scalar const* t) {
    return {Lens::unpack(t), Source::unpack(t + source_offset), LensLight::unpack(t + lens_light_offset)};
  }
  /// Host: throws std::invalid_argument if any component's parameters are bad.
  void check() const {
    lens.check();
    source.check();
    lens_light.check();
  }
};

/// The identity PSF (no blur), with the PSF operator interface.
template <class Scalar>
struct NoPsf {
  template <class ExecutionSpace, class In, class Out>
  void apply(ExecutionSpace const& space, In const& in, Out const& out) const {
    Kokkos::deep_copy(space, out, in);
  }
  template <class ExecutionSpace, class In, class Out>
  void apply_adjoint(ExecutionSpace const& space, In const& in, Out const& out) const {
    Kokkos::deep_copy(space, out, in);
  }
};

/// An imaging observation: PixelGrid (with supersampling k), and a PSF
/// operator applied to the binned image (lenstronomy's default,
/// supersampling_convolution = False): GaussianFilter, DirectConvolution or
/// NoPsf.  render(space, model, image) = PSF(Renderer(model)).  Owns the
/// renderer's buffers and the unblurred image.
template <class Scalar, class MemorySpace, class Psf>
class Observation {
 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;

  Observation(PixelGrid<Scalar> const& grid, Psf const& psf)
      : m_renderer(grid), m_psf(psf), m_sharp("lensing::Observation::sharp", grid.ny(), grid.nx()) {}

  PixelGrid<Scalar> const& grid() const { return m_renderer.grid(); }
  Renderer<Scalar, MemorySpace> const& renderer() const { return m_renderer; }
  Psf const& psf() const { return m_psf; }

  /// Noiseless model image (ny, nx), asynchronous on `space`.
  template <class ExecutionSpace, class Model, class Image>
  void render(ExecutionSpace const& space, Model const& model, Image const& image) const {
    m_renderer.render(space, model.lens, model.source, model.lens_light, m_sharp);
    m_psf.apply(space, m_sharp, image);
  }

 private:
  Renderer<Scalar, MemorySpace> m_renderer;
  Psf m_psf;
  View2D<Scalar, MemorySpace> m_sharp;
};

}  // namespace lensing

#endif  // LENSING_SIMULATE_OBSERVATION_HPP
