#ifndef LENSING_FIT_DECODED_SOURCE_HPP
#define LENSING_FIT_DECODED_SOURCE_HPP

/// \file
/// A lens fit with a learned source: the posterior of the lens parameters
/// and the latent vector z of a VAE decoder (sources/decoded.hpp) given an
/// image, as one LogDensity, so that find_map, sample_from_map and
/// fit_vi_from_map (fit/workflow.hpp) run on it.
///
///   lensing::Decoded<Decoder, double> dec(net, latent_dim, source_grid);
///   lensing::DecodedSourcePosterior<Model, Mem, Psf, Decoder> post(likelihood, lens_table, dec,
///                                                                 Prior<double>::log_uniform(1, 1000));
///   auto map = lensing::find_map(space, post, post.draw_prior_starts(8, seed), options);
///
/// Why not Posterior alone: Posterior (fit/posterior.hpp) samples the named
/// parameters of a LensModel (compile-time count, unpack() from a flat
/// array), while the pixel values of a decoded source come from a network
/// evaluated once per evaluation, not per pixel, and its latent vector has
/// no place in LensModel's packing.  So the lens part stays a Posterior
/// (prior table by name, transforms, ties, names of results) over a
/// likelihood whose model's source is the decoded pixel grid, and this
/// density adds z and the source's flux scale around it.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>
#include <lensing/density/parameter_table.hpp>
#include <lensing/density/prior.hpp>
#include <lensing/fit/posterior.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/sources/decoded.hpp>
#include <lensing/sources/light_profile.hpp>
#include <lensing/sources/pixelated.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lensing {

/// The Gaussian likelihood of a LensModel whose source is the pixel grid of
/// a Decoded source, as the likelihood of a Posterior over the lens alone:
/// its model_type is the LensModel with the source slot empty (NoLight: no
/// parameters, nothing to check — Posterior unpacks models from flat
/// arrays, and an unpacked PixelatedSource has no pixels), and
/// value_and_gradient(space, model, grad) puts `source` (a PixelatedSource
/// over the Decoded's pixel buffer) into that slot, evaluates
/// GaussianLikelihood::value_and_gradient_source_pixels, returns log L and
/// d log L / d theta and writes d log L / d s(iy, ix) into
/// grad_source_pixels().  Copies share the buffers; clone() gives the
/// GaussianLikelihood's clone and a new gradient buffer over the same source.
template <class Model, class MemorySpace, class Psf>
class DecodedSourceLikelihood {
 public:
  using Scalar = typename Model::scalar_type;
  /// The likelihood's model (its source a PixelatedSource).
  using full_model_type = Model;
  /// The model the Posterior unpacks: Model with an empty source slot.
  using model_type = LensModel<typename Model::lens_type, NoLight<Scalar>, typename Model::lens_light_type>;
  using memory_space = MemorySpace;
  using gaussian_type = GaussianLikelihood<Model, MemorySpace, Psf>;
  static constexpr bool launches_kernels = true;
  static_assert(std::is_same<typename Model::source_type, PixelatedSource<Scalar>>::value,
                "lensing::DecodedSourceLikelihood: the model's source must be a PixelatedSource of its scalar type");

  DecodedSourceLikelihood(gaussian_type const& like, PixelatedSource<Scalar> const& source)
      : m_like(like), m_source(source) {
    m_source.check();
    m_grad_pixels = View2D<Scalar, MemorySpace>("lensing::DecodedSourceLikelihood::grad_pixels", source.grid.ny(),
                                                source.grid.nx());
  }
  DecodedSourceLikelihood clone() const { return DecodedSourceLikelihood(m_like.clone(), m_source); }

  /// log L and grad = d log L / d theta; grad_source_pixels() = d log L / d s.  Fences `space`.
  template <class ExecutionSpace>
  Scalar value_and_gradient(ExecutionSpace const& space, model_type const& model,
                            View1D<Scalar, MemorySpace> const& grad) const {
    return m_like.value_and_gradient_source_pixels(space, with_source(model), grad, m_grad_pixels);
  }
  /// The full model: `model` with the decoded source.
  Model with_source(model_type const& model) const { return Model{model.lens, m_source, model.lens_light}; }
  View2D<Scalar, MemorySpace> const& grad_source_pixels() const { return m_grad_pixels; }
  gaussian_type const& gaussian() const { return m_like; }
  PixelatedSource<Scalar> const& source() const { return m_source; }

 private:
  gaussian_type m_like;
  PixelatedSource<Scalar> m_source;
  View2D<Scalar, MemorySpace> m_grad_pixels;
};

//----------------------------------------------------------------------------
/// The posterior of a lens with a decoded (VAE) source: a LogDensity
/// (density/log_density.hpp) on q = (lens free parameters unconstrained, z,
/// u_amp), dimension lens free + Z (+ 1 when the flux scale is free),
///
///   log p(q) = log L(data | lens(theta), amp D(z)) + log p(theta) + log|dtheta/dq_lens|
///              + log N(z; 0, I) + log p_amp(amp) + log|damp/du|,
///
/// theta the lens model's named parameters (the Posterior of `lens_table`:
/// priors by name, ties, fixed values, transforms; the source has no
/// parameters of its own), N(0, I) the VAE's prior on z (normalised), amp =
/// f(u) the source's flux scale through the transform onto its prior's
/// support (ParameterTransform::for_prior; not sampled when the prior is
/// Prior::fixed).  Gradient: the lens part and d log L / d s from the
/// likelihood (DecodedSourceLikelihood), then
///   d/dz = J_D(z)^T (amp dlogL/ds) - z,
///   d/du = f'(u) [sum dlogL/ds D(z) + dlog p_amp/damp] + d/du log|f'(u)|.
/// A point where the lens prior or the lens model rejects its parameters has
/// log p = -inf and a zero gradient (as Posterior).
///
/// Names: free_names() = the lens Posterior's, then "source0.z0" ..
/// "source0.z{Z-1}", then "source0.amp" when free; all_names() the same with
/// every lens model parameter (constrain()).
///
/// Threads: launches kernels (the likelihood's and the network's), so the
/// samplers run its chains on the calling thread; clone() builds a new lens
/// Posterior on the likelihood's clone and a Decoded clone (own buffers,
/// shared network: see Decoded).
template <class Model, class MemorySpace, class Psf, class Net>
class DecodedSourcePosterior {
 public:
  using Scalar = typename Model::scalar_type;
  using gaussian_type = GaussianLikelihood<Model, MemorySpace, Psf>;
  using likelihood_type = DecodedSourceLikelihood<Model, MemorySpace, Psf>;
  using lens_posterior_type = Posterior<likelihood_type>;
  using decoded_type = Decoded<Net, Scalar>;
  using table_type = ParameterTable<double, Kokkos::HostSpace>;
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  static constexpr bool launches_kernels = true;
  static_assert(std::is_same<typename decoded_type::memory_space, MemorySpace>::value,
                "lensing::DecodedSourcePosterior: the decoder network must live in the likelihood's memory space");

  /// `lens_table` names every parameter of Model (lens and lens light; the
  /// decoded source has none), as for Posterior; `amplitude` the prior of
  /// the flux scale (Prior::fixed(v): held at v).  Throws
  /// std::invalid_argument as Posterior, and for a decoder whose grid is not
  /// the one the likelihood would see (checked by Decoded).
  DecodedSourcePosterior(gaussian_type const& likelihood, table_type const& lens_table, decoded_type const& decoded,
                         Prior<double> const& amplitude,
                         typename lens_posterior_type::transform_overrides const& overrides = {})
      : m_decoded(decoded.clone()),
        m_post(likelihood_type(likelihood, m_decoded.source()), lens_table, overrides),
        m_amp_prior(amplitude),
        m_overrides(overrides) {
    constexpr char const* where = "lensing::DecodedSourcePosterior";
    check_argument(m_decoded.network() != nullptr, where, "the decoder is empty (default-constructed Decoded)");
    m_amp_free = amplitude.kind != PriorKind::fixed;
    if (m_amp_free)
      m_amp_transform = ParameterTransform::for_prior(amplitude);
    else
      check_positive(amplitude.p0, where, "the fixed amplitude");
    int const nl = m_post.dimension();
    m_ql = View1D<double, Kokkos::HostSpace>("lensing::DecodedSourcePosterior::q_lens", nl);
    m_gl = View1D<double, Kokkos::HostSpace>("lensing::DecodedSourcePosterior::grad_lens", nl);
  }

  DecodedSourcePosterior clone() const {
    return DecodedSourcePosterior(m_post.likelihood().gaussian().clone(), m_post.table(), m_decoded, m_amp_prior,
                                  m_overrides);
  }

  //--------------------------------------------------------------------------
  // LogDensity.
  int dimension() const { return lens_dimension() + latent_dim() + (m_amp_free ? 1 : 0); }
  int lens_dimension() const { return m_post.dimension(); }
  int latent_dim() const { return m_decoded.latent_dim(); }
  bool amplitude_free() const { return m_amp_free; }

  /// log p(q) and grad (host views of length dimension()); see the class comment.  Fences `space`.
  template <class Space>
  double value_and_gradient(Space const& space, View1D<double, Kokkos::HostSpace> const& q,
                            View1D<double, Kokkos::HostSpace> const& grad) const {
    constexpr char const* where = "lensing::DecodedSourcePosterior::value_and_gradient";
    int const d = dimension(), nl = lens_dimension(), nz = latent_dim();
    check_argument(q.extent(0) == std::size_t(d) && grad.extent(0) == std::size_t(d), where,
                   "q and grad must have dimension() = " + std::to_string(d) + " entries");
    for (int f = 0; f < nl; ++f)
      m_ql(f) = q(f);
    std::vector<double> z(static_cast<std::size_t>(nz)), gz(static_cast<std::size_t>(nz));
    double log_z = -0.5 * nz * std::log(2 * M_PI);
    for (int j = 0; j < nz; ++j) {
      z[j] = q(nl + j);
      log_z -= 0.5 * z[j] * z[j];
    }
    double amp = m_amp_prior.p0, log_amp = 0, u = 0;
    if (m_amp_free) {
      u = q(nl + nz);
      amp = m_amp_transform.constrain(u);
      log_amp = m_amp_prior.log_density(amp) + m_amp_transform.log_jacobian(u);
      if (!(log_amp > -HUGE_VAL) || !std::isfinite(amp)) return reject(grad, log_amp);
    }
    if (!std::isfinite(log_z)) return reject(grad, -HUGE_VAL);
    m_decoded.decode(space, z.data(), amp);
    double const v = m_post.value_and_gradient(space, m_ql, m_gl);
    if (!(v > -HUGE_VAL) || !std::isfinite(v)) return reject(grad, v);
    double const damp = m_decoded.vjp(space, m_post.likelihood().grad_source_pixels(), amp, gz.data());
    for (int f = 0; f < nl; ++f)
      grad(f) = m_gl(f);
    for (int j = 0; j < nz; ++j)
      grad(nl + j) = gz[j] - z[j];
    if (m_amp_free) grad(nl + nz) = m_amp_transform.pullback(u, damp + m_amp_prior.gradient(amp));
    return v + log_z + log_amp;
  }

  //--------------------------------------------------------------------------
  // Names and maps.

  /// Free parameters in the order of q: the lens Posterior's, z0.., amp.
  std::vector<std::string> free_names() const {
    auto n = m_post.free_names();
    append_source_names(n);
    return n;
  }
  /// Every lens model parameter (model order), then z0.., amp (constrain()'s columns).
  std::vector<std::string> all_names() const {
    auto n = m_post.all_names();
    append_source_names(n, true);
    return n;
  }
  /// Every named value at unconstrained q: the lens model's (Posterior::constrain), z, amp.
  std::vector<double> constrain(std::vector<double> const& q) const {
    check_size(q, "lensing::DecodedSourcePosterior::constrain");
    int const nl = lens_dimension(), nz = latent_dim();
    auto out = m_post.constrain(q.data());
    for (int j = 0; j < nz; ++j)
      out.push_back(q[nl + j]);
    out.push_back(amplitude_at(q));
    return out;
  }
  /// The unconstrained point of a lens row (Posterior::unconstrain: full
  /// model row or free values), a latent vector and a flux scale (ignored
  /// when fixed).  Throws std::invalid_argument as Posterior::unconstrain,
  /// for a z of the wrong size or an amplitude outside its prior's support.
  std::vector<double> initial_point(std::vector<double> const& lens_values, std::vector<double> const& z,
                                    double amplitude) const {
    constexpr char const* where = "lensing::DecodedSourcePosterior::initial_point";
    auto q = m_post.initial_point_from(lens_values);
    check_argument(z.size() == std::size_t(latent_dim()), where,
                   "z must have latent_dim() = " + std::to_string(latent_dim()) + " entries");
    q.insert(q.end(), z.begin(), z.end());
    if (m_amp_free) {
      check_argument(m_amp_transform.contains(amplitude), where,
                     "the amplitude " + std::to_string(amplitude) + " is outside its prior's support " +
                         m_amp_transform.describe());
      q.push_back(m_amp_transform.unconstrain(amplitude));
    }
    return q;
  }
  /// `n` starting points: the lens parameters drawn from their priors
  /// (Posterior::draw_prior_starts), z = latent_scale * N(0, I) (0: the
  /// prior's mode) and the amplitude from its prior, from the streams
  /// (seed, purpose_prior, start, column) of core/random.hpp.
  std::vector<std::vector<double>> draw_prior_starts(int n, std::uint64_t seed, double latent_scale = 0) const {
    check_nonnegative(latent_scale, "lensing::DecodedSourcePosterior::draw_prior_starts", "latent_scale");
    auto starts = m_post.draw_prior_starts(n, seed);
    int const nz = latent_dim(), base = m_post.table().size();
    for (int s = 0; s < n; ++s) {
      for (int j = 0; j < nz; ++j) {
        random::Stream r(random::stream_key(seed, random::purpose_prior, std::uint64_t(s), std::uint64_t(base + j)));
        starts[s].push_back(latent_scale * r.normal<double>());
      }
      if (m_amp_free) {
        random::Stream r(random::stream_key(seed, random::purpose_prior, std::uint64_t(s), std::uint64_t(base + nz)));
        double const a = m_amp_prior.sample(r);
        double const ua = m_amp_transform.contains(a) ? m_amp_transform.unconstrain(a) : 0.0;
        starts[s].push_back(std::max(-30.0, std::min(30.0, ua)));
      }
    }
    return starts;
  }
  /// Prior scales in q (Posterior::start_scales, 1 for z, half the central
  /// 68 % of the amplitude's prior in u, estimated from 2000 draws).
  std::vector<double> start_scales() const {
    auto s = m_post.start_scales();
    s.insert(s.end(), std::size_t(latent_dim()), 1.0);
    if (m_amp_free) {
      std::vector<double> u;
      for (int i = 0; i < 2000; ++i) {
        random::Stream r(random::stream_key(0x5ca1e5, random::purpose_prior, std::uint64_t(i), 0));
        double const a = m_amp_prior.sample(r);
        if (m_amp_transform.contains(a)) u.push_back(m_amp_transform.unconstrain(a));
      }
      double sc = 1;
      if (u.size() > 10) {
        std::sort(u.begin(), u.end());
        sc = 0.5 * (u[std::size_t(0.8413 * (u.size() - 1))] - u[std::size_t(0.1587 * (u.size() - 1))]);
      }
      s.push_back(std::isfinite(sc) && sc > 0 ? sc : 1.0);
    }
    return s;
  }
  /// The flux scale at q.
  double amplitude_at(std::vector<double> const& q) const {
    check_size(q, "lensing::DecodedSourcePosterior::amplitude_at");
    return m_amp_free ? m_amp_transform.constrain(q[std::size_t(lens_dimension() + latent_dim())]) : m_amp_prior.p0;
  }
  /// The model at q with the source decoded into this density's pixel buffer
  /// (valid until its next evaluation).  Fences `space`.
  template <class Space>
  Model model_at(Space const& space, std::vector<double> const& q) const {
    check_size(q, "lensing::DecodedSourcePosterior::model_at");
    std::vector<double> const ql(q.begin(), q.begin() + lens_dimension());
    m_decoded.decode(space, q.data() + lens_dimension(), amplitude_at(q));
    return m_post.likelihood().with_source(m_post.model_at(ql));
  }

  lens_posterior_type const& lens_posterior() const { return m_post; }
  decoded_type const& decoded() const { return m_decoded; }
  Prior<double> const& amplitude_prior() const { return m_amp_prior; }

 private:
  static double reject(View1D<double, Kokkos::HostSpace> const& grad, double value) {
    for (std::size_t f = 0; f < grad.extent(0); ++f)
      grad(f) = 0;
    return std::isnan(value) ? value : -HUGE_VAL;
  }
  void check_size(std::vector<double> const& q, char const* where) const {
    check_argument(
        q.size() == std::size_t(dimension()), where,
        "q must have dimension() = " + std::to_string(dimension()) + " entries, got " + std::to_string(q.size()));
  }
  void append_source_names(std::vector<std::string>& n, bool always_amp = false) const {
    for (int j = 0; j < latent_dim(); ++j)
      n.push_back("source0.z" + std::to_string(j));
    if (m_amp_free || always_amp) n.push_back("source0.amp");
  }

  decoded_type m_decoded;  // before m_post: its pixel buffer is the likelihood's source
  lens_posterior_type m_post;
  Prior<double> m_amp_prior;
  typename lens_posterior_type::transform_overrides m_overrides;
  bool m_amp_free = false;
  ParameterTransform m_amp_transform;
  View1D<double, Kokkos::HostSpace> m_ql, m_gl;
};

}  // namespace lensing

#endif  // LENSING_FIT_DECODED_SOURCE_HPP
