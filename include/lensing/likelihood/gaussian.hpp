#ifndef LENSING_LIKELIHOOD_GAUSSIAN_HPP
#define LENSING_LIKELIHOOD_GAUSSIAN_HPP

/// \file
/// Gaussian image log-likelihood of a LensModel and its gradient through the
/// hand-derived VJP chain (PSF adjoint, supersampling, light VJPs, ray
/// shooting, lens deflection VJP), with a fixed noise map or the noise
/// variance of the model image, and the gradient with respect to the pixel
/// values of a PixelatedSource.

#include <lensing/core/reduce_params.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/raytrace/ray_shooting.hpp>
#include <lensing/sources/pixelated.hpp>

#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>

namespace lensing {

namespace detail {
// Backward pass of the light, one fine row per work item: the source VJP at
// beta = x - alpha(x) and the lens-light VJP at x give the light parameters'
// gradient (row sums into partial(jy, k)) and the source position cotangent
// bbar = dlogL/dbeta (written to bbar_x, bbar_y for the lens VJP).
//
// On host spaces the row is processed in blocks of B pixels whose per-pixel
// gradients are written column-wise into a stack block (StridedGrad) and then
// summed with 8 fixed lanes: no floating-point running sum inside the pixel
// loop, so the compiler vectorises it (a `grad[k] +=` reduction cannot be
// reordered without -ffast-math and stays scalar: measured 2-3x slower), and
// the result is the same for any thread count.  Device spaces accumulate per
// pixel directly.
template <class Model, class View, bool Blocked>
struct LightVjpRows {
  using Scalar = typename Model::scalar_type;
  static constexpr int NS = Model::source_type::num_params, NL = Model::lens_light_type::num_params, N = NS + NL;
  static constexpr int B = 64, Lanes = 8;
  Model model;
  PixelGrid<Scalar> grid;
  View gbar, bbar_x, bbar_y, partial;

  template <class G>
  KOKKOS_FORCEINLINE_FUNCTION void pixel_impl(int jy, int jx, Scalar g, G src, G ll) const {
    Scalar const x = grid.fine_x(jx), y = grid.fine_y(jy);
    auto const a = model.lens.deflection(x, y);
    Vec2<Scalar> const gb = model.source.surface_brightness_vjp(x - a.x, y - a.y, g, src);
    model.lens_light.surface_brightness_vjp(x, y, g, ll);
    bbar_x(jy, jx) = gb.x;
    bbar_y(jy, jx) = gb.y;
  }

  KOKKOS_INLINE_FUNCTION void operator()(int jy) const {
    int const nx = grid.fine_nx();
    if constexpr (Blocked) {
      Scalar acc[N > 0 ? N : 1] = {};
      for (int ix0 = 0; ix0 < nx; ix0 += B) {
        int const nb = nx - ix0 < B ? nx - ix0 : B;
        Scalar tmp[(N > 0 ? N : 1) * B];
        for (int i = 0; i < N * B; ++i)
          tmp[i] = Scalar(0);
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
        for (int j = 0; j < nb; ++j)
          pixel_impl(jy, ix0 + j, gbar(jy, ix0 + j), StridedGrad<Scalar>{tmp + j, B},
                     StridedGrad<Scalar>{tmp + NS * B + j, B});
        for (int k = 0; k < N; ++k) {
          Scalar lane[Lanes] = {};
          for (int j = 0; j < B; j += Lanes)
            for (int l = 0; l < Lanes; ++l)
              lane[l] += tmp[k * B + j + l];
          Scalar s = 0;
          for (int l = 0; l < Lanes; ++l)
            s += lane[l];
          acc[k] += s;
        }
      }
      for (int k = 0; k < N; ++k)
        partial(jy, k) = acc[k];
    } else {
      Scalar acc[N > 0 ? N : 1] = {};
      for (int jx = 0; jx < nx; ++jx)
        pixel_impl(jy, jx, gbar(jy, jx), acc, acc + NS);
      for (int k = 0; k < N; ++k)
        partial(jy, k) = acc[k];
    }
  }
};
// Masked pixels (mask 0) may hold NaN or inf data and noise.  Multiplying by
// the mask is not enough (0 * NaN = NaN, and 0 * inf raises FE_INVALID), and
// selecting the result would still compute the bad values: the operands are
// selected instead (data -> the model, noise -> 1 where m = 0), so no lane
// ever sees a bad value, the term is m * 0 = 0, and the select is a vector
// blend of loaded values that keeps the loop vectorised.  Where m > 0 the
// arithmetic is the same as without masking.
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION Scalar masked_operand(Scalar m, Scalar value, Scalar fallback) {
  return m > Scalar(0) ? value : fallback;
}
template <class View, class Data>
struct Chi2Term {
  using Scalar = typename View::non_const_value_type;
  View model;
  Data data, noise, mask;
  KOKKOS_FORCEINLINE_FUNCTION void operator()(int iy, int ix, Scalar* acc) const {
    Scalar const mk = mask(iy, ix), M = model(iy, ix), dv = data(iy, ix), sv = noise(iy, ix);
    Scalar const r = (masked_operand(mk, dv, M) - M) / masked_operand(mk, sv, Scalar(1));
    acc[0] += mk * r * r;
  }
};
// The model-variance term m [(d - M)^2 / v + log(2 pi v)], v = noise.variance(M).
template <class View, class Data>
struct Chi2ModelVarianceTerm {
  using Scalar = typename View::non_const_value_type;
  View model;
  Data data, mask;
  ObservationNoise<Scalar> noise;
  KOKKOS_FORCEINLINE_FUNCTION void operator()(int iy, int ix, Scalar* acc) const {
    Scalar const mk = mask(iy, ix), M = model(iy, ix), dv = data(iy, ix);
    Scalar const v = noise.variance(M), e = masked_operand(mk, dv, M) - M;
    acc[0] += mk * (e * e / v + math::log(Scalar(6.283185307179586476925) * v));
  }
};
// d log L / d s for a PixelatedSource s, host form: the fine rows are split
// into `nc` fixed chunks (independent of the thread count); each chunk
// scatters g * w into its own row of `partial` (nc, ny_s * nx_s) in a fixed
// order, so the result is the same for any thread count.
template <class Lens, class Scalar, class View, class Part>
struct SourcePixelScatterChunks {
  Lens lens;
  PixelatedSource<Scalar> source;
  PixelGrid<Scalar> grid;
  View gbar;
  Part partial;
  int nc;
  KOKKOS_INLINE_FUNCTION void operator()(int c) const {
    int const fny = grid.fine_ny(), fnx = grid.fine_nx();
    int const sny = source.grid.ny(), snx = source.grid.nx();
    int const j0 = int((long(c) * fny) / nc), j1 = int((long(c + 1) * fny) / nc);
    for (int jy = j0; jy < j1; ++jy)
      for (int jx = 0; jx < fnx; ++jx) {
        Scalar const g = gbar(jy, jx);
        if (g == Scalar(0)) continue;  // masked pixels, far from the lens
        Scalar const x = grid.fine_x(jx), y = grid.fine_y(jy);
        auto const a = lens.deflection(x, y);
        source.for_each_weight(x - a.x, y - a.y, [&](int iy, int ix, Scalar w, Scalar, Scalar) {
          if (iy >= 0 && iy < sny && ix >= 0 && ix < snx) partial(c, long(iy) * snx + ix) += g * w;
        });
      }
  }
};
}  // namespace detail

/// Gaussian log-likelihood of an image.  Two noise models:
///
///  - a fixed noise map sigma_p (the default, unchanged):
///      log L = -1/2 sum_p m_p (d_p - M_p(theta))^2 / sigma_p^2;
///    the constant -1/2 sum_p m_p log(2 pi sigma_p^2) is omitted from value()
///    (normalisation() returns it);
///  - the noise variance of the model (noise model = ObservationNoise, the
///    library's convention: model/observation.hpp, the Detector's
///    pixel_noise()):
///      v_p = variance(M_p) = (max(M_p, 0) + sky) / t + (sigma_e / t)^2 + sigma_bg^2,
///      log L = -1/2 sum_p m_p [(d_p - M_p)^2 / v_p + log(2 pi v_p)],
///    normalisation included (it depends on theta), and differentiated:
///      d log L / d M_p = m_p [(d_p - M_p) / v_p - 1/2 (1 / v_p - (d_p - M_p)^2 / v_p^2) dv_p/dM_p],
///      dv_p/dM_p = 1/t where M_p > 0 and shot noise is on, else 0.
///
/// d the data, M the model image of Observation::render in the image units
/// (sky-subtracted count rate [e-/s per pixel] for data from
/// add_observation_noise / Detector), m the mask (1 use, 0 ignore; any
/// weight in [0, 1]).  Where m = 0 the data and the noise map may hold
/// anything (NaN, inf, 0: bad pixels, cosmic rays, chip gaps); where m > 0
/// the data must be finite and the noise map finite and > 0, else the
/// constructor throws std::invalid_argument naming the pixel (iy, ix).
///
/// Which noise model.  A noise map computed from the data themselves
/// (sigma^2 = sigma_bg^2 + max(d, 0)/t) is what a pipeline's weight map
/// often is, but its weights are correlated with the noise: a pixel that
/// fluctuated low gets a smaller sigma, hence more weight, one that
/// fluctuated high less weight, so the weighted fit is pulled low wherever
/// the Poisson term matters.  The bias is a fixed fraction per pixel, does
/// not average away, and grows relative to the statistical error with the
/// number of bright pixels: in a fit of an HST-like lens with bright lens
/// light (thousands of pixels above the background; issue 15) it biased the
/// lens light's parameters by 4-6 sigma; in tests/likelihood/
/// test_likelihood_noise.cpp, 32 Poisson realisations of a small lens, the
/// lens light's amplitude comes out 1.6 sd (of one fit) low with the map of
/// the data and unbiased (z = -0.4) with the model variance.  Use:
///  - the fixed noise map when the Poisson term of the lens and source is
///    negligible against the background (M / t << sigma_bg^2 everywhere) or
///    when the map is independent of the data's noise (a sky + read-noise
///    map, a stack's weight map without the objects' shot noise, or
///    observation_noise_map of a previous fit's model image): it is the
///    cheaper path and its value keeps the old meaning;
///  - the model variance (pass the ObservationNoise that made the data, e.g.
///    Detector::pixel_noise()) when the objects' shot noise matters (bright
///    lens light, long exposures): the weights follow the model, not the
///    noise.  Its value includes log(2 pi v), so it is comparable across
///    parameters (and, via normalisation(), with the fixed-map value).
///
/// value_and_gradient also returns d log L / d theta for every parameter of
/// LensModel (pack order), by
///   rbar = d log L / d M (residual_cotangent()) -> PSF^T -> spread over the
///   k^2 sub-pixels with weight A_pix/k^2 (Observation::blur_and_bin_adjoint;
///   with PsfSampling::supersampled: spread, then PSF^T on the fine grid) =
///   d log L / d(fine surface brightness) (fine_cotangent()) -> light VJPs
///   (source at beta, lens light at x) and the lens deflection VJP of the
///   source's position cotangent (beta = x - alpha),
/// reduced deterministically over pixels (same result for any thread count).
/// For a model whose source is a PixelatedSource,
/// value_and_gradient_source_pixels also returns d log L / d s(iy, ix) for
/// its pixel values (the interpolation adjoint of fine_cotangent()), so pixel,
/// VAE or score priors on the source compose with the likelihood.
/// Cost: one render, one PSF adjoint, one pass over the fine pixels for the
/// light VJPs (vectorised; with the residual and PSF^T ~1.5x the render)
/// and the lens parameters'
/// ray-shooting VJP (raytrace/ray_shooting.hpp: its running-sum reduction
/// does not vectorise, ~9x a deflection map for SIE + shear, and dominates:
/// value + gradient = 5.6x the value at 100^2, k = 3; see
/// benchmarks/simulate/bench_render.cpp).  The model variance adds one log
/// per image pixel (not per sub-pixel): measured within 1% (value) and 3%
/// (value + gradient) of the fixed map at 100^2, k = 3, double, 1 thread.
/// The source-pixel gradient adds one deflection and interpolation-weight
/// pass over the fine grid (measured: +40% on value_and_gradient for a 50^2
/// bicubic source at 100^2, k = 3, one thread, on a shared machine).
///
/// Owns work buffers (model image, cotangents, the Observation's buffers);
/// copies share them, as Views do.  For parallel chains or optimizer runs,
/// evaluate one clone() per host thread: a LogDensity built on a likelihood
/// should have a clone() that clones its likelihood, and declare
/// `static constexpr bool launches_kernels = true` (see
/// `GaussianLikelihood::launches_kernels` and density/log_density.hpp), so that
/// the samplers keep its kernel launches on one host thread (Kokkos 3.x host
/// backends take kernels from one thread only).
template <class Model, class MemorySpace, class Psf>
class GaussianLikelihood {
 public:
  using Scalar = typename Model::scalar_type;
  using scalar_type = Scalar;
  static constexpr int num_params = Model::num_params;
  /// Evaluations launch Kokkos kernels (LogDensity: see density/log_density.hpp).
  static constexpr bool launches_kernels = true;

  /// Fixed noise map sigma (ny, nx).  data, noise_map and mask are shared
  /// (not copied): keep them unchanged while the likelihood is in use.
  GaussianLikelihood(Observation<Scalar, MemorySpace, Psf> const& obs, View2D<Scalar const, MemorySpace> data,
                     View2D<Scalar const, MemorySpace> noise_map, View2D<Scalar const, MemorySpace> mask)
      : GaussianLikelihood(obs, data, mask, BuffersTag{}) {
    m_noise = noise_map;
    check_extents(noise_map, "lensing::GaussianLikelihood", "noise_map", "(ny, nx)", obs.grid().ny(), obs.grid().nx());
    validate();
  }

  /// Noise variance of the model image: v = noise_model.variance(M) (see the
  /// class comment).  noise_model must pass its check() and have a positive
  /// variance at M = 0 (sky, read noise or background > 0), so that v > 0
  /// for every model.
  GaussianLikelihood(Observation<Scalar, MemorySpace, Psf> const& obs, View2D<Scalar const, MemorySpace> data,
                     ObservationNoise<Scalar> const& noise_model, View2D<Scalar const, MemorySpace> mask)
      : GaussianLikelihood(obs, data, mask, BuffersTag{}) {
    constexpr char const* where = "lensing::GaussianLikelihood";
    noise_model.check(where);
    Scalar const v0 = noise_model.variance(Scalar(0));
    check_argument(std::isfinite(v0) && v0 > Scalar(0), where,
                   "the noise model's variance at a zero model must be > 0 (got " + std::to_string(double(v0)) +
                       "): set background_rms, read_noise or sky");
    m_model_variance = true;
    m_noise_model = noise_model;
    validate();
  }

  /// An independent copy: the same data, noise map and mask (read-only,
  /// shared) and its own work buffers and Observation clone, so the copy may
  /// be evaluated while this one is in use (on host backends, still from one
  /// host thread at a time: see launches_kernels).
  GaussianLikelihood clone() const { return GaussianLikelihood(*this, CloneTag{}); }

  /// Whether the noise variance comes from the model (the ObservationNoise
  /// constructor) rather than a fixed noise map.
  bool model_variance() const { return m_model_variance; }
  /// The noise model of the model-variance likelihood (meaningless otherwise).
  ObservationNoise<Scalar> const& noise_model() const { return m_noise_model; }
  /// The constant value() omits with a fixed noise map,
  /// -1/2 sum_{m > 0} m log(2 pi sigma^2) (summed in double on the host), so
  /// that value() + normalisation() is the normalised log density; 0 in the
  /// model-variance mode, whose value() includes its (theta-dependent) term.
  double normalisation() const { return m_normalisation; }

  /// The model image of the last call (valid after the space is fenced).
  View2D<Scalar, MemorySpace> const& model_image() const { return m_model; }
  /// d log L / d M(iy, ix), the cotangent of the model image (ny, nx), of the
  /// last value_and_gradient (value() does not write it); 0 where the mask is 0.
  View2D<Scalar, MemorySpace> const& residual_cotangent() const { return m_rbar; }
  /// d log L / d f(jy, jx), f the sub-pixel surface brightness map
  /// (fine_ny, fine_nx) that Observation::blur_and_bin turns into the model
  /// image (Renderer::render_fine's f: source at beta plus lens light), of the
  /// last value_and_gradient: B_PSF^T residual_cotangent().
  View2D<Scalar, MemorySpace> const& fine_cotangent() const { return m_gbar; }

  /// log L(model); fences `space`.
  template <class ExecutionSpace>
  Scalar value(ExecutionSpace const& space, Model const& model) const {
    m_obs.render(space, model, m_model);
    return chi2_to_logl(space);
  }

  /// log L(model), and grad(k) = d log L / d theta_k (overwritten); fences `space`.
  template <class ExecutionSpace>
  Scalar value_and_gradient(ExecutionSpace const& space, Model const& model,
                            View1D<Scalar, MemorySpace> const& grad) const {
    check_argument(grad.extent(0) == size_t(num_params), "lensing::GaussianLikelihood::value_and_gradient",
                   "grad must have length num_params = " + std::to_string(num_params));
    m_obs.render(space, model, m_model);
    auto const grid = m_obs.grid();
    // One declarator per auto: the views have different types (const data).
    auto const d = m_data;
    auto const m = m_mask;
    auto const M = m_model;
    auto const rbar = m_rbar;
    // The residual cotangent; the mode is chosen here, not per pixel.  Masked
    // pixels: operands selected (see detail::masked_operand), cotangent 0.
    if (m_model_variance) {
      auto const noise = m_noise_model;
      Scalar const inv_t = noise.shot_noise ? Scalar(1) / noise.exposure_time : Scalar(0);
      parallel_for_pixels(
          "lensing::likelihood::residual", space, grid.ny(), grid.nx(), KOKKOS_LAMBDA(int iy, int ix) {
            Scalar const mk = m(iy, ix), Mp = M(iy, ix), dp = d(iy, ix);
            Scalar const v = noise.variance(Mp), iv = Scalar(1) / v;
            Scalar const e = detail::masked_operand(mk, dp, Mp) - Mp, ev = e * iv;
            Scalar const dvar = Mp > Scalar(0) ? inv_t : Scalar(0);
            rbar(iy, ix) = mk * (ev - Scalar(0.5) * (iv - ev * ev) * dvar);
          });
    } else {
      auto const s = m_noise;
      parallel_for_pixels(
          "lensing::likelihood::residual", space, grid.ny(), grid.nx(), KOKKOS_LAMBDA(int iy, int ix) {
            Scalar const mk = m(iy, ix), Mp = M(iy, ix), dp = d(iy, ix), sp = s(iy, ix);
            Scalar const sg = detail::masked_operand(mk, sp, Scalar(1));
            rbar(iy, ix) = mk * (detail::masked_operand(mk, dp, Mp) - Mp) / (sg * sg);
          });
    }
    // The transpose of the observation's PSF + binning: PSF^T, then the pixel
    // cotangents spread over their sub-pixels (a contiguous fine array keeps
    // the backward loop free of index division, so it vectorises); with a
    // supersampled PSF, spread first and PSF^T on the fine grid.
    m_obs.blur_and_bin_adjoint(space, m_rbar, m_gbar);
    // Light parameters and the source position cotangent ...
    constexpr int NLight = Model::source_type::num_params + Model::lens_light_type::num_params;
    constexpr int NLens = Model::lens_type::num_params;
    Kokkos::parallel_for(
        "lensing::likelihood::light_vjp", Kokkos::RangePolicy<ExecutionSpace>(space, 0, grid.fine_ny()),
        detail::LightVjpRows<Model, View2D<Scalar, MemorySpace>, detail::is_host_space_v<ExecutionSpace>>{
            model, grid, m_gbar, m_bbar_x, m_bbar_y, m_partial});
    auto const partial = m_partial;
    auto const glight = m_grad_light;
    int const fny = grid.fine_ny();
    Kokkos::parallel_for(
        "lensing::likelihood::light_sum", Kokkos::RangePolicy<ExecutionSpace>(space, 0, NLight), KOKKOS_LAMBDA(int j) {
          Scalar t = 0;
          for (int jy = 0; jy < fny; ++jy)
            t += partial(jy, j);
          glight(j) = t;
        });
    // ... then the lens parameters by the ray-shooting VJP (beta = x - alpha).
    ray_shoot_vjp(space, model.lens, grid, m_bbar_x, m_bbar_y, m_grad_lens, m_work);
    auto const glens = m_grad_lens;
    Kokkos::parallel_for(
        "lensing::likelihood::gradient", Kokkos::RangePolicy<ExecutionSpace>(space, 0, num_params),
        KOKKOS_LAMBDA(int j) { grad(j) = j < NLens ? glens(j) : glight(j - NLens); });
    return chi2_to_logl(space);
  }

  /// For a model whose source is a PixelatedSource<Scalar>: value_and_gradient
  /// (grad: the lens and lens-light parameters, pack order), and
  /// grad_source_pixels(iy, ix) = d log L / d s(iy, ix) for the source's
  /// pixel values (overwritten; extents (ny, nx) of the source grid), the
  /// interpolation adjoint of fine_cotangent() at beta = x - alpha(x).
  /// Deterministic on host spaces (fixed chunks of fine rows, each scattered
  /// into its own copy, summed in a fixed order: the same bits at any thread
  /// count); atomic additions on devices (last-bit differences between runs).
  /// The host form allocates a scratch of min(16, fine_ny) x (source pixels)
  /// on its first call and when the source grid's size changes.  The
  /// source's pixel values must be accessible from `space`.  Fences `space`.
  template <class ExecutionSpace>
  Scalar value_and_gradient_source_pixels(ExecutionSpace const& space, Model const& model,
                                          View1D<Scalar, MemorySpace> const& grad,
                                          View2D<Scalar, MemorySpace> const& grad_source_pixels) const {
    static_assert(std::is_same<typename Model::source_type, PixelatedSource<Scalar>>::value,
                  "lensing::GaussianLikelihood::value_and_gradient_source_pixels: the model's source must be a "
                  "PixelatedSource of the likelihood's scalar type");
    constexpr char const* where = "lensing::GaussianLikelihood::value_and_gradient_source_pixels";
    auto const& src = model.source;
    src.check();
    int const sny = src.grid.ny(), snx = src.grid.nx();
    check_extents(grad_source_pixels, where, "grad_source_pixels", "(ny, nx) of the source grid", sny, snx);
    Scalar const v = value_and_gradient(space, model, grad);
    auto const grid = m_obs.grid();
    auto const out = grad_source_pixels;
    if constexpr (detail::is_host_space_v<ExecutionSpace>) {
      int const nc = grid.fine_ny() < 16 ? grid.fine_ny() : 16;
      long const ns = long(sny) * snx;
      if (m_src_partial.extent(0) != size_t(nc) || m_src_partial.extent(1) != size_t(ns))
        m_src_partial = View2D<Scalar, MemorySpace>("lensing::GaussianLikelihood::source_partial", nc, ns);
      else
        Kokkos::deep_copy(space, m_src_partial, Scalar(0));
      auto const part = m_src_partial;
      Kokkos::parallel_for(
          "lensing::likelihood::source_pixels", Kokkos::RangePolicy<ExecutionSpace>(space, 0, nc),
          detail::SourcePixelScatterChunks<typename Model::lens_type, Scalar, View2D<Scalar, MemorySpace>,
                                           View2D<Scalar, MemorySpace>>{model.lens, src, grid, m_gbar, part, nc});
      parallel_for_pixels(
          "lensing::likelihood::source_pixels_sum", space, sny, snx, KOKKOS_LAMBDA(int iy, int ix) {
            long const i = long(iy) * snx + ix;
            Scalar t = 0;
            for (int c = 0; c < nc; ++c)
              t += part(c, i);
            out(iy, ix) = t;
          });
    } else {
      Kokkos::deep_copy(space, out, Scalar(0));
      auto const lens = model.lens;
      auto const gbar = m_gbar;
      parallel_for_pixels(
          "lensing::likelihood::source_pixels", space, grid.fine_ny(), grid.fine_nx(), KOKKOS_LAMBDA(int jy, int jx) {
            Scalar const g = gbar(jy, jx);
            Scalar const x = grid.fine_x(jx), y = grid.fine_y(jy);
            auto const a = lens.deflection(x, y);
            src.for_each_weight(x - a.x, y - a.y, [&](int iy, int ix, Scalar w, Scalar, Scalar) {
              if (iy >= 0 && iy < sny && ix >= 0 && ix < snx) Kokkos::atomic_add(&out(iy, ix), g * w);
            });
          });
    }
    space.fence();
    return v;
  }

 private:
  struct CloneTag {};
  struct BuffersTag {};
  // The buffers and the shared data and mask; the public constructors set the
  // noise and validate.
  GaussianLikelihood(Observation<Scalar, MemorySpace, Psf> const& obs, View2D<Scalar const, MemorySpace> data,
                     View2D<Scalar const, MemorySpace> mask, BuffersTag)
      : m_obs(obs),
        m_data(data),
        m_mask(mask),
        m_model("lensing::GaussianLikelihood::model", obs.grid().ny(), obs.grid().nx()),
        m_rbar("lensing::GaussianLikelihood::rbar", obs.grid().ny(), obs.grid().nx()),
        m_gbar("lensing::GaussianLikelihood::gbar", obs.grid().fine_ny(), obs.grid().fine_nx()),
        m_bbar_x("lensing::GaussianLikelihood::bbar_x", obs.grid().fine_ny(), obs.grid().fine_nx()),
        m_bbar_y("lensing::GaussianLikelihood::bbar_y", obs.grid().fine_ny(), obs.grid().fine_nx()),
        m_partial("lensing::GaussianLikelihood::partial", obs.grid().fine_ny(),
                  Model::source_type::num_params + Model::lens_light_type::num_params + 1),
        m_grad_light("lensing::GaussianLikelihood::grad_light",
                     Model::source_type::num_params + Model::lens_light_type::num_params + 1),
        m_grad_lens("lensing::GaussianLikelihood::grad_lens", Model::lens_type::num_params),
        m_work(obs.grid(), Model::lens_type::num_params),
        m_chi_partial("lensing::GaussianLikelihood::chi_partial", obs.grid().ny(), 1),
        m_chi("lensing::GaussianLikelihood::chi", 1) {
    constexpr char const* where = "lensing::GaussianLikelihood";
    int const ny = obs.grid().ny(), nx = obs.grid().nx();
    check_extents(data, where, "data", "(ny, nx)", ny, nx);
    check_extents(mask, where, "mask", "(ny, nx)", ny, nx);
  }

  // Host-side validation of the inputs (once, at construction): the mask
  // finite in [0, 1] everywhere; where it is > 0, finite data and (fixed
  // map) a finite noise map > 0.  Also sums the fixed map's normalisation.
  void validate() {
    constexpr char const* where = "lensing::GaussianLikelihood";
    int const ny = m_obs.grid().ny(), nx = m_obs.grid().nx();
    auto hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m_data);
    auto hm = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m_mask);
    View2D<Scalar const, Kokkos::HostSpace> hn;
    if (!m_model_variance) hn = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m_noise);
    auto bad = [&](char const* name, int iy, int ix, Scalar value, char const* requirement) {
      std::ostringstream s;
      s.precision(9);
      s << name << "(" << iy << ", " << ix << ") = " << value << " where mask = " << hm(iy, ix) << " > 0; " << name
        << " must be " << requirement << " where the mask is > 0 (set the mask to 0 to ignore the pixel)";
      throw_invalid_argument(where, s.str());
    };
    double norm = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        Scalar const mk = hm(iy, ix);
        if (!std::isfinite(mk) || !(mk >= Scalar(0)) || !(mk <= Scalar(1))) {
          std::ostringstream s;
          s.precision(9);
          s << "mask(" << iy << ", " << ix << ") must be finite and in [0, 1] (got " << mk << ")";
          throw_invalid_argument(where, s.str());
        }
        if (!(mk > Scalar(0))) continue;
        if (!std::isfinite(hd(iy, ix))) bad("data", iy, ix, hd(iy, ix), "finite");
        if (!m_model_variance) {
          Scalar const sg = hn(iy, ix);
          if (!std::isfinite(sg) || !(sg > Scalar(0))) bad("noise_map", iy, ix, sg, "finite and > 0");
          norm += double(mk) * std::log(6.283185307179586476925 * double(sg) * double(sg));
        }
      }
    m_normalisation = -0.5 * norm;
  }

  // The clone: validated inputs shared, fresh buffers of the same extents.
  GaussianLikelihood(GaussianLikelihood const& o, CloneTag)
      : m_obs(o.m_obs.clone()),
        m_data(o.m_data),
        m_noise(o.m_noise),
        m_mask(o.m_mask),
        m_model_variance(o.m_model_variance),
        m_noise_model(o.m_noise_model),
        m_normalisation(o.m_normalisation),
        m_model(fresh(o.m_model)),
        m_rbar(fresh(o.m_rbar)),
        m_gbar(fresh(o.m_gbar)),
        m_bbar_x(fresh(o.m_bbar_x)),
        m_bbar_y(fresh(o.m_bbar_y)),
        m_partial(fresh(o.m_partial)),
        m_grad_light(fresh(o.m_grad_light)),
        m_grad_lens(fresh(o.m_grad_lens)),
        m_work(o.m_obs.grid(), Model::lens_type::num_params),
        m_chi_partial(fresh(o.m_chi_partial)),
        m_chi(fresh(o.m_chi)) {}  // m_src_partial: allocated by the clone's own first use
  template <class V>
  static V fresh(V const& v) {
    return V(v.label(), v.layout());
  }

  template <class ExecutionSpace>
  Scalar chi2_to_logl(ExecutionSpace const& space) const {
    auto const grid = m_obs.grid();
    if (m_model_variance)
      detail::reduce_params_over_pixels<1>(
          "lensing::likelihood::chi2", space, grid.ny(), grid.nx(), m_chi_partial, m_chi,
          detail::Chi2ModelVarianceTerm<View2D<Scalar, MemorySpace>, View2D<Scalar const, MemorySpace>>{
              m_model, m_data, m_mask, m_noise_model});
    else
      detail::reduce_params_over_pixels<1>(
          "lensing::likelihood::chi2", space, grid.ny(), grid.nx(), m_chi_partial, m_chi,
          detail::Chi2Term<View2D<Scalar, MemorySpace>, View2D<Scalar const, MemorySpace>>{m_model, m_data, m_noise,
                                                                                           m_mask});
    Scalar chi2;
    Kokkos::deep_copy(space, Kokkos::View<Scalar, Kokkos::HostSpace>(&chi2), Kokkos::subview(m_chi, 0));
    space.fence();
    return Scalar(-0.5) * chi2;
  }

  Observation<Scalar, MemorySpace, Psf> m_obs;
  View2D<Scalar const, MemorySpace> m_data, m_noise, m_mask;
  bool m_model_variance = false;
  ObservationNoise<Scalar> m_noise_model{};
  double m_normalisation = 0;
  View2D<Scalar, MemorySpace> m_model, m_rbar, m_gbar, m_bbar_x, m_bbar_y, m_partial;
  View1D<Scalar, MemorySpace> m_grad_light, m_grad_lens;
  MapVjpWorkspace<Scalar, MemorySpace> m_work;
  View2D<Scalar, MemorySpace> m_chi_partial;
  View1D<Scalar, MemorySpace> m_chi;
  // Scratch of the host source-pixel gradient (sized on use).
  mutable View2D<Scalar, MemorySpace> m_src_partial;
};

}  // namespace lensing

#endif  // LENSING_LIKELIHOOD_GAUSSIAN_HPP
