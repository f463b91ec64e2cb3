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

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

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
//
// The row sums (lanes, blocks, rows) are accumulated in Acc = the type of
// `partial` (double: a float likelihood sums its per-pixel float terms in
// double; for a double likelihood the arithmetic is unchanged).
//
// bbar_x, bbar_y hold beta = x - alpha(x) on entry (Renderer::
// render_fine_positions, from the value pass): each pixel reads its beta
// before writing its cotangent there, so the deflection is not computed again.
template <class Model, class View, class Partial, bool Blocked>
struct LightVjpRows {
  using Scalar = typename Model::scalar_type;
  using Acc = typename Partial::non_const_value_type;
  static constexpr int NS = Model::source_type::num_params, NL = Model::lens_light_type::num_params, N = NS + NL;
  static constexpr int B = 64, Lanes = 8;
  Model model;
  PixelGrid<Scalar> grid;
  View gbar, bbar_x, bbar_y;
  Partial partial;

  // m: a local copy of the model made by the caller, so that the stores
  // (bbar, the gradient columns) cannot alias it and its per-profile
  // constants stay out of the pixel loop (measured: the adaptive form of this
  // loop took 1.3x as long per point with the model reached through `this`).
  template <class G>
  KOKKOS_FORCEINLINE_FUNCTION void pixel_impl(Model const& m, int jy, int jx, Scalar g, G src, G ll) const {
    Scalar const x = grid.fine_x(jx), y = grid.fine_y(jy);
    Vec2<Scalar> const gb = m.source.surface_brightness_vjp(bbar_x(jy, jx), bbar_y(jy, jx), g, src);
    m.lens_light.surface_brightness_vjp(x, y, g, ll);
    bbar_x(jy, jx) = gb.x;
    bbar_y(jy, jx) = gb.y;
  }

  KOKKOS_INLINE_FUNCTION void operator()(int jy) const {
    int const nx = grid.fine_nx();
    Model const m = model;
    if constexpr (Blocked) {
      Acc acc[N > 0 ? N : 1] = {};
      for (int ix0 = 0; ix0 < nx; ix0 += B) {
        int const nb = nx - ix0 < B ? nx - ix0 : B;
        Scalar tmp[(N > 0 ? N : 1) * B];
        for (int i = 0; i < N * B; ++i)
          tmp[i] = Scalar(0);
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
        for (int j = 0; j < nb; ++j)
          pixel_impl(m, jy, ix0 + j, gbar(jy, ix0 + j), StridedGrad<Scalar>{tmp + j, B},
                     StridedGrad<Scalar>{tmp + NS * B + j, B});
        for (int k = 0; k < N; ++k) {
          Acc lane[Lanes] = {};
          for (int j = 0; j < B; j += Lanes)
            for (int l = 0; l < Lanes; ++l)
              lane[l] += Acc(tmp[k * B + j + l]);
          Acc s = 0;
          for (int l = 0; l < Lanes; ++l)
            s += lane[l];
          acc[k] += s;
        }
      }
      for (int k = 0; k < N; ++k)
        partial(jy, k) = acc[k];
    } else {
      Acc acc[N > 0 ? N : 1] = {};
      for (int jx = 0; jx < nx; ++jx) {
        Scalar a[N > 0 ? N : 1] = {};
        pixel_impl(m, jy, jx, gbar(jy, jx), a, a + NS);
        for (int k = 0; k < N; ++k)
          acc[k] += Acc(a[k]);
      }
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
  template <class Acc>
  KOKKOS_FORCEINLINE_FUNCTION void operator()(int iy, int ix, Acc* acc) const {
    Scalar const mk = mask(iy, ix), M = model(iy, ix), dv = data(iy, ix), sv = noise(iy, ix);
    Scalar const r = (masked_operand(mk, dv, M) - M) / masked_operand(mk, sv, Scalar(1));
    acc[0] += Acc(mk * r * r);
  }
};
// The model-variance term m [(d - M)^2 / v + log(2 pi v)], v = noise.variance(M).
template <class View, class Data>
struct Chi2ModelVarianceTerm {
  using Scalar = typename View::non_const_value_type;
  View model;
  Data data, mask;
  ObservationNoise<Scalar> noise;
  template <class Acc>
  KOKKOS_FORCEINLINE_FUNCTION void operator()(int iy, int ix, Acc* acc) const {
    Scalar const mk = mask(iy, ix), M = model(iy, ix), dv = data(iy, ix);
    Scalar const v = noise.variance(M), e = masked_operand(mk, dv, M) - M;
    acc[0] += Acc(mk * (e * e / v + math::log(Scalar(6.283185307179586476925) * v)));
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

//----------------------------------------------------------------------------
// Adaptive supersampling (GaussianLikelihood::set_supersampling_mask).
//
// The evaluation points: for each pixel p in row-major order, its k x k
// sub-pixel centres (sub-row, then sub-column: Renderer::render's order)
// where the mask is on, else its centre alone; pixel p owns the points
// [start(p), start(p + 1)).  The list is padded to rows of W points (the
// padding repeats the last point and keeps a zero cotangent), so host kernels
// run over fixed rows: deterministic sums at any thread count.
inline constexpr int adaptive_points_per_row = 256;

// float loops over points in 16 lanes where the target has 512-bit vectors
// (as the renderer's, model/render.hpp: the light profiles' exp and log are
// cheaper per point in their 16-lane forms); GCC's ivdep otherwise.
#if defined(_OPENMP) && !defined(__CUDACC__) && defined(__AVX512F__)
#define LENSING_LIKELIHOOD_SIMD_FLOAT _Pragma("omp simd simdlen(16)")
#else
#define LENSING_LIKELIHOOD_SIMD_FLOAT
#endif
#if defined(__GNUC__) && !defined(__CUDACC__)
#define LENSING_LIKELIHOOD_IVDEP _Pragma("GCC ivdep")
#else
#define LENSING_LIKELIHOOD_IVDEP
#endif
// for (j < n) body, iterations independent: the float form in 16 lanes.
#define LENSING_LIKELIHOOD_POINT_LOOP(Scalar, j, n, body) \
  if constexpr (sizeof(Scalar) == 4) {                    \
    LENSING_LIKELIHOOD_SIMD_FLOAT                         \
    for (int j = 0; j < (n); ++j)                         \
      body;                                               \
  } else {                                                \
    LENSING_LIKELIHOOD_IVDEP                              \
    for (int j = 0; j < (n); ++j)                         \
      body;                                               \
  }

// For every point i of row r: beta_i = x_i - alpha(x_i) (kept for the
// backward pass) and value_i = S(beta_i) + L(x_i) (SkyBrightness's sum).
template <class Model, class View>
struct AdaptiveBrightnessRows {
  using Scalar = typename Model::scalar_type;
  Model model;
  View x, y, bx, by, value;
  KOKKOS_FORCEINLINE_FUNCTION static void point(Model const& m, Scalar const* __restrict px,
                                                Scalar const* __restrict py, Scalar* __restrict pbx,
                                                Scalar* __restrict pby, Scalar* __restrict pv, int j) {
    Scalar const xx = px[j], yy = py[j];
    auto const a = m.lens.deflection(xx, yy);
    Scalar const u = xx - a.x, v = yy - a.y;
    pbx[j] = u;
    pby[j] = v;
    pv[j] = m.source.surface_brightness(u, v) + m.lens_light.surface_brightness(xx, yy);
  }
  KOKKOS_INLINE_FUNCTION void operator()(int r) const {
    constexpr int W = adaptive_points_per_row;
    long const i0 = long(r) * W;
    Scalar const* __restrict const px = &x(i0);
    Scalar const* __restrict const py = &y(i0);
    Scalar* __restrict const pbx = &bx(i0);
    Scalar* __restrict const pby = &by(i0);
    Scalar* __restrict const pv = &value(i0);
    // The model in a local: stores through the output pointers cannot alias
    // it, so its per-profile constants stay out of the point loop.
    Model const m = model;
    LENSING_LIKELIHOOD_POINT_LOOP(Scalar, j, W, point(m, px, py, pbx, pby, pv, j))
  }
};

// The backward pass over the points, one row of W points per work item:
// with g_i = d log L / d(value_i) (`gbar`), the light VJPs at (x_i, beta_i)
// give the light parameters' gradient and beta_bar_i, and the lens's
// deflection VJP of -beta_bar_i (beta = x - alpha) the lens parameters'
// gradient; row sums in Acc (double) into partial(r, k), k in pack order
// [lens | source | lens light].  Host: blocks of B points, per-point terms
// stored column-wise (as LightVjpRows and core/reduce_params.hpp, so the
// point loops vectorise), then summed over 8 fixed lanes in Acc; the lens's
// regular (branch-free) VJP form when it has one and it holds, its batched
// form when it has one.  Devices: a running per-row sum.
template <class Model, class View, class Partial, bool Blocked>
struct AdaptiveVjpRows {
  using Scalar = typename Model::scalar_type;
  using Lens = typename Model::lens_type;
  using Acc = typename Partial::non_const_value_type;
  static constexpr int NM = Lens::num_params, NS = Model::source_type::num_params,
                       NL = Model::lens_light_type::num_params, N = NM + NS + NL;
  static constexpr int W = adaptive_points_per_row, B = 64, Lanes = 8;
  static_assert(W % B == 0 && B <= deflection_batch_capacity, "lensing: adaptive rows hold whole blocks");
  Model model;
  View x, y, bx, by, gbar;  // bx, by: beta of the forward pass
  Partial partial;

  template <bool Regular>
  KOKKOS_FORCEINLINE_FUNCTION static void lens_vjp(Lens const& lens, Scalar px, Scalar py, Vec2<Scalar> g, Scalar* a) {
    if constexpr (Regular)
      lens.deflection_vjp_regular(px, py, g, a);
    else
      lens.deflection_vjp(px, py, g, a);
  }

  // Light VJPs of point j: columns NM.. of tmp, and the lens's cotangent
  // -beta_bar into wx, wy.
  KOKKOS_FORCEINLINE_FUNCTION static void light_point(Model const& m, Scalar const* __restrict px,
                                                      Scalar const* __restrict py, Scalar const* __restrict pbx,
                                                      Scalar const* __restrict pby, Scalar const* __restrict pg,
                                                      Scalar* tmp, Scalar* __restrict wx, Scalar* __restrict wy,
                                                      int j) {
    Scalar const g = pg[j];
    Vec2<Scalar> const gb =
        m.source.surface_brightness_vjp(pbx[j], pby[j], g, StridedGrad<Scalar>{tmp + NM * B + j, B});
    m.lens_light.surface_brightness_vjp(px[j], py[j], g, StridedGrad<Scalar>{tmp + (NM + NS) * B + j, B});
    wx[j] = -gb.x;
    wy[j] = -gb.y;
  }
  template <bool Regular>
  KOKKOS_FORCEINLINE_FUNCTION static void lens_point(Lens const& lens, Scalar const* __restrict px,
                                                     Scalar const* __restrict py, Scalar const* __restrict wx,
                                                     Scalar const* __restrict wy, Scalar* tmp, int j) {
    Scalar a[NM > 0 ? NM : 1] = {};
    lens_vjp<Regular>(lens, px[j], py[j], Vec2<Scalar>{wx[j], wy[j]}, a);
    for (int k = 0; k < NM; ++k)
      tmp[k * B + j] = a[k];
  }

  // m: the caller's local copy of the model (see AdaptiveBrightnessRows).
  template <bool Regular>
  KOKKOS_INLINE_FUNCTION void block(Model const& m, long i0, Scalar* tmp, Scalar* wx, Scalar* wy) const {
    Scalar const* __restrict const px = &x(i0);
    Scalar const* __restrict const py = &y(i0);
    Scalar const* __restrict const pbx = &bx(i0);
    Scalar const* __restrict const pby = &by(i0);
    Scalar const* __restrict const pg = &gbar(i0);
    for (int i = 0; i < N * B; ++i)
      tmp[i] = Scalar(0);
    LENSING_LIKELIHOOD_POINT_LOOP(Scalar, j, B, light_point(m, px, py, pbx, pby, pg, tmp, wx, wy, j))
    if constexpr (NM > 0) {
      if constexpr (has_deflection_vjp_batch_v<Lens>) {
        m.lens.deflection_vjp_batch(B, px, py, wx, wy, tmp, B);
      } else {
        LENSING_LIKELIHOOD_POINT_LOOP(Scalar, j, B, lens_point<Regular>(m.lens, px, py, wx, wy, tmp, j))
      }
    }
  }

  KOKKOS_INLINE_FUNCTION void operator()(int r) const {
    Acc acc[N > 0 ? N : 1] = {};
    long const i0 = long(r) * W;
    if constexpr (Blocked) {
      Model const m = model;  // a local copy (see AdaptiveBrightnessRows)
      bool regular = false;
      if constexpr (has_regular_vjp<Lens>::value) regular = m.lens.vjp_is_regular();
      for (int j0 = 0; j0 < W; j0 += B) {
        Scalar tmp[(N > 0 ? N : 1) * B], wx[B], wy[B];
        if constexpr (has_regular_vjp<Lens>::value) {
          if (regular)
            block<true>(m, i0 + j0, tmp, wx, wy);
          else
            block<false>(m, i0 + j0, tmp, wx, wy);
        } else {
          block<false>(m, i0 + j0, tmp, wx, wy);
        }
        for (int k = 0; k < N; ++k) {
          Acc lane[Lanes] = {};
          for (int j = 0; j < B; j += Lanes)
            for (int l = 0; l < Lanes; ++l)
              lane[l] += Acc(tmp[k * B + j + l]);
          Acc t = 0;
          for (int l = 0; l < Lanes; ++l)
            t += lane[l];
          acc[k] += t;
        }
      }
    } else {
      for (int j = 0; j < W; ++j) {
        Scalar const xx = x(i0 + j), yy = y(i0 + j), g = gbar(i0 + j);
        Scalar a[N > 0 ? N : 1] = {};
        Vec2<Scalar> const gb = model.source.surface_brightness_vjp(bx(i0 + j), by(i0 + j), g, a + NM);
        model.lens_light.surface_brightness_vjp(xx, yy, g, a + NM + NS);
        model.lens.deflection_vjp(xx, yy, Vec2<Scalar>{-gb.x, -gb.y}, a);
        for (int k = 0; k < N; ++k)
          acc[k] += Acc(a[k]);
      }
    }
    for (int k = 0; k < N; ++k)
      partial(r, k) = acc[k];
  }
};
}  // namespace detail

/// What GaussianLikelihood::choose_supersampling_mask chose, at its
/// reference model: `flagged` pixels supersampled k x k (the others sampled
/// once at their centre), `points` surface-brightness evaluations per
/// likelihood call (fine_ny fine_nx without the mask), `cost` = points /
/// (fine_ny fine_nx), and the error of the adaptive model image M_a against
/// the full one M_k (both after the PSF) in noise units,
///   chi_distance = sqrt(sum_p m_p (M_a,p - M_k,p)^2 / sigma_p^2),
/// <= the tolerance asked for (up to rounding), and `bound` its pre-PSF form
/// (the unflagged pixels' sub-pixel errors; >= chi_distance when sigma is
/// uniform, as the PSF, a normalised non-negative kernel, does not increase
/// the norm).  The bias this induces in any parameter, in units of its
/// posterior sd, is at most chi_distance (see choose_supersampling_mask).
struct SupersamplingChoice {
  long flagged = 0, points = 0;
  double cost = 1, chi_distance = 0, bound = 0;
};

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
/// Cost: one render that keeps the sub-pixels' source-plane positions
/// (Renderer::render_fine_positions, then the PSF and binning), one PSF
/// adjoint, one pass over the fine pixels for the light VJPs at those
/// positions (vectorised; no second deflection), and the lens parameters'
/// ray-shooting VJP (raytrace/ray_shooting.hpp); value + gradient = 2.8x
/// the value at 100^2, k = 3, SIE + shear, Sersic source and lens light,
/// double, 1 thread (benchmarks/simulate/bench_render.cpp,
/// benchmarks/README.md).  The model variance adds one log
/// per image pixel (not per sub-pixel): measured within 1% (value) and 3%
/// (value + gradient) of the fixed map at 100^2, k = 3, double, 1 thread.
/// The source-pixel gradient adds one deflection and interpolation-weight
/// pass over the fine grid (measured: +40% on value_and_gradient for a 50^2
/// bicubic source at 100^2, k = 3, one thread, on a shared machine).
///
/// Adaptive supersampling (set_supersampling_mask, choose_supersampling_mask;
/// binned PSF): pixels off the mask are sampled once at their centre, with
/// the exact VJP of that image and an error model for the bias it induces
/// (at most SupersamplingChoice::chi_distance posterior sd in any
/// parameter).  On the examples/fit_lens case (100^2, k = 3), tolerance 0.1
/// supersamples 12% of the pixels: 0.21 of the full likelihood's points,
/// bias <= 0.03 sd (tests/likelihood/test_likelihood_adaptive.cpp).
///
/// Float (Scalar = float): the per-pixel model, residuals and per-point
/// gradient terms in float; chi^2, the light gradient and (adaptive) every
/// gradient sum accumulated in double, the value rounded to float once.
/// Without a mask the lens parameters' sums are ray_shoot_vjp's (Scalar).
/// Measured on the fit_lens case: float vs double moves the maximum by
/// 2e-5 posterior sd (Mahalanobis), log L by 4e-4 of -5017.
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
    render_model(space, model, m_model);
    return chi2_to_logl(space);
  }

  /// The model image this likelihood compares with the data (ny, nx):
  /// Observation::render, or with a supersampling mask set, the adaptive
  /// render (PSF of the adaptively binned image).  Asynchronous on `space`.
  template <class ExecutionSpace, class Image>
  void render_model(ExecutionSpace const& space, Model const& model, Image const& image) const {
    if (m_adaptive)
      adaptive_render(space, model, image);
    else
      m_obs.render(space, model, image);
  }

  /// log L(model), and grad(k) = d log L / d theta_k (overwritten); fences `space`.
  template <class ExecutionSpace>
  Scalar value_and_gradient(ExecutionSpace const& space, Model const& model,
                            View1D<Scalar, MemorySpace> const& grad) const {
    check_argument(grad.extent(0) == size_t(num_params), "lensing::GaussianLikelihood::value_and_gradient",
                   "grad must have length num_params = " + std::to_string(num_params));
    // The model image; without adaptive supersampling through the fine
    // brightness (in gbar, which the PSF adjoint overwrites below) and the
    // source-plane positions (in bbar_x, bbar_y, read by the light VJP
    // before it writes the cotangents there): the deflection once per
    // sub-pixel for both passes.
    if (m_adaptive) {
      render_model(space, model, m_model);
    } else {
      m_obs.renderer().render_fine_positions(space, model.lens, model.source, model.lens_light, m_gbar, m_bbar_x,
                                             m_bbar_y);
      m_obs.blur_and_bin(space, m_gbar, m_model);
    }
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
    if (m_adaptive) {
      adaptive_backward(space, model, grad);
      return chi2_to_logl(space);
    }
    // The transpose of the observation's PSF + binning: PSF^T, then the pixel
    // cotangents spread over their sub-pixels (a contiguous fine array keeps
    // the backward loop free of index division, so it vectorises); with a
    // supersampled PSF, spread first and PSF^T on the fine grid.
    m_obs.blur_and_bin_adjoint(space, m_rbar, m_gbar);
    // Light parameters and the source position cotangent ...
    constexpr int NLight = Model::source_type::num_params + Model::lens_light_type::num_params;
    constexpr int NLens = Model::lens_type::num_params;
    Kokkos::parallel_for("lensing::likelihood::light_vjp",
                         Kokkos::RangePolicy<ExecutionSpace>(space, 0, grid.fine_ny()),
                         detail::LightVjpRows<Model, View2D<Scalar, MemorySpace>, View2D<double, MemorySpace>,
                                              detail::is_host_space_v<ExecutionSpace>>{model, grid, m_gbar, m_bbar_x,
                                                                                       m_bbar_y, m_partial});
    auto const partial = m_partial;
    auto const glight = m_grad_light;
    int const fny = grid.fine_ny();
    // The two small loops (a few thousand additions, a copy) run on the
    // calling thread of a host space (run_small_on_caller: a fork/join costs
    // more than they do).
    auto const light_sum = KOKKOS_LAMBDA(int j) {
      double t = 0;
      for (int jy = 0; jy < fny; ++jy)
        t += partial(jy, j);
      glight(j) = t;
    };
    if (!detail::run_small_on_caller(space, NLight, double(fny), light_sum))
      Kokkos::parallel_for("lensing::likelihood::light_sum", Kokkos::RangePolicy<ExecutionSpace>(space, 0, NLight),
                           light_sum);
    // ... then the lens parameters by the ray-shooting VJP (beta = x - alpha).
    ray_shoot_vjp(space, model.lens, grid, m_bbar_x, m_bbar_y, m_grad_lens, m_work);
    auto const glens = m_grad_lens;
    auto const gather = KOKKOS_LAMBDA(int j) { grad(j) = j < NLens ? glens(j) : Scalar(glight(j - NLens)); };
    if (!detail::run_small_on_caller(space, num_params, 1.0, gather))
      Kokkos::parallel_for("lensing::likelihood::gradient", Kokkos::RangePolicy<ExecutionSpace>(space, 0, num_params),
                           gather);
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
    check_argument(!m_adaptive, where,
                   "not available with adaptive supersampling (clear_supersampling_mask() first): the source-pixel "
                   "gradient needs the fine-grid cotangent");
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

  //--------------------------------------------------------------------------
  // Adaptive supersampling.
  //
  // The model image of the full likelihood averages every pixel over k x k
  // sub-pixels (k = grid.supersampling()), k^2 surface-brightness
  // evaluations per pixel, though only pixels where the brightness varies
  // within the pixel need them.  With a supersampling mask, pixels where
  // the mask is on are averaged over their k x k sub-pixels and the others
  // sampled once at their centre (Renderer::render_adaptive's image):
  //   sharp(p) = A_pix / k^2 sum_{s of p} f(x_s)  (mask on),  A_pix f(x_p)  (off),
  //   M = PSF(sharp),
  // and the gradient is the exact VJP of that image (the same chain as the
  // full likelihood: PSF^T, each pixel's cotangent times its weight at its
  // points, light and lens VJPs at the points), every sum in double.  The
  // cost is (1 + (k^2 - 1) f) / k^2 of the full likelihood's per-sub-pixel
  // work, f the flagged fraction.  Binned PSF only (PsfSampling::binned).

  /// Sets the supersampling mask: a rank-2 view (ny, nx) of any arithmetic
  /// type accessible from the host or copyable to it, nonzero = supersample
  /// the pixel; all-on gives the full likelihood (to rounding), all-off the
  /// likelihood at k = 1.  Allocates the evaluation points (once; clones made
  /// afterwards share them).  Throws std::invalid_argument for a mask of the
  /// wrong extents or with non-finite values, or std::invalid_argument when the
  /// observation's PSF acts on the supersampled grid.  Fences `space`.
  template <class ExecutionSpace, class Mask>
  void set_supersampling_mask(ExecutionSpace const& space, Mask const& mask) {
    constexpr char const* where = "lensing::GaussianLikelihood::set_supersampling_mask";
    static_assert(Kokkos::is_view<Mask>::value && Mask::rank == 2,
                  "lensing::GaussianLikelihood::set_supersampling_mask: the mask is a rank-2 view (ny, nx)");
    auto const grid = m_obs.grid();
    int const ny = grid.ny(), nx = grid.nx(), k = grid.supersampling();
    check_argument(m_obs.sampling() == PsfSampling::binned, where,
                   "adaptive supersampling needs the PSF on the pixel grid (PsfSampling::binned); this observation "
                   "convolves the supersampled image");
    check_extents(mask, where, "mask", "(ny, nx)", ny, nx);
    space.fence();
    auto hm = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mask);
    long const np = long(ny) * nx;
    std::vector<long> start(static_cast<size_t>(np) + 1);
    View2D<int, MemorySpace> dmask("lensing::GaussianLikelihood::supersampling_mask", ny, nx);
    auto hmask = Kokkos::create_mirror_view(dmask);
    long count = 0, flagged = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        double const v = double(hm(iy, ix));
        if (!std::isfinite(v)) {
          std::ostringstream msg;
          msg << "mask(" << iy << ", " << ix << ") must be finite (nonzero = supersample), got " << v;
          throw_invalid_argument(where, msg.str());
        }
        bool const on = v != 0;
        hmask(iy, ix) = on ? 1 : 0;
        flagged += on;
        start[size_t(long(iy) * nx + ix)] = count;
        count += on ? long(k) * k : 1;
      }
    start[size_t(np)] = count;
    constexpr int W = detail::adaptive_points_per_row;
    int const rows = int((count + W - 1) / W);
    long const padded = long(rows) * W;
    AdaptivePoints pts;
    pts.x = View1D<Scalar, MemorySpace>("lensing::GaussianLikelihood::points_x", padded);
    pts.y = View1D<Scalar, MemorySpace>("lensing::GaussianLikelihood::points_y", padded);
    pts.start = View1D<long, MemorySpace>("lensing::GaussianLikelihood::points_start", np + 1);
    auto hx = Kokkos::create_mirror_view(pts.x);
    auto hy = Kokkos::create_mirror_view(pts.y);
    auto hs = Kokkos::create_mirror_view(pts.start);
    long i = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        hs(long(iy) * nx + ix) = start[size_t(long(iy) * nx + ix)];
        if (hmask(iy, ix)) {
          for (int sy = 0; sy < k; ++sy)
            for (int sx = 0; sx < k; ++sx, ++i) {
              hx(i) = grid.fine_x(ix * k + sx);
              hy(i) = grid.fine_y(iy * k + sy);
            }
        } else {
          hx(i) = grid.x(ix);
          hy(i) = grid.y(iy);
          ++i;
        }
      }
    hs(np) = count;
    for (; i < padded; ++i) {  // padding: a copy of the last point (cotangent 0)
      hx(i) = hx(count - 1);
      hy(i) = hy(count - 1);
    }
    Kokkos::deep_copy(space, pts.x, hx);
    Kokkos::deep_copy(space, pts.y, hy);
    Kokkos::deep_copy(space, pts.start, hs);
    Kokkos::deep_copy(space, dmask, hmask);
    pts.mask = dmask;
    pts.value = View1D<Scalar, MemorySpace>("lensing::GaussianLikelihood::points_value", padded);
    pts.bx = View1D<Scalar, MemorySpace>("lensing::GaussianLikelihood::points_beta_x", padded);
    pts.by = View1D<Scalar, MemorySpace>("lensing::GaussianLikelihood::points_beta_y", padded);
    pts.gbar = View1D<Scalar, MemorySpace>("lensing::GaussianLikelihood::points_gbar", padded);
    pts.partial = View2D<double, MemorySpace>("lensing::GaussianLikelihood::points_partial", rows, num_params);
    pts.sharp = View2D<Scalar, MemorySpace>("lensing::GaussianLikelihood::sharp", ny, nx);
    pts.sharp_bar = View2D<Scalar, MemorySpace>("lensing::GaussianLikelihood::sharp_bar", ny, nx);
    pts.points = count;
    pts.flagged = flagged;
    pts.rows = rows;
    space.fence();
    m_pts = pts;
    m_adaptive = true;
  }

  /// Back to the full likelihood (every pixel k x k).
  void clear_supersampling_mask() {
    m_adaptive = false;
    m_pts = AdaptivePoints{};
  }
  /// Whether a supersampling mask is set.
  bool adaptive_supersampling() const { return m_adaptive; }
  /// The mask (ny, nx; 1 = supersampled) when set, else an empty view.
  View2D<int, MemorySpace> const& supersampling_mask() const { return m_pts.mask; }
  /// Pixels supersampled: the mask's count, or every pixel without a mask.
  long supersampled_pixels() const { return m_adaptive ? m_pts.flagged : m_obs.grid().num_pixels(); }
  /// Surface-brightness evaluations per likelihood call: points of the mask,
  /// or fine_ny fine_nx without one.
  long evaluation_points() const {
    return m_adaptive ? m_pts.points : long(m_obs.grid().fine_ny()) * m_obs.grid().fine_nx();
  }

  /// Chooses and sets the supersampling mask at a reference model (the MAP,
  /// or any model close to the posterior's bulk) so that the adaptive model
  /// image stays within `tolerance` noise units of the full one.
  ///
  /// Error model.  Let e_p = sqrt(m_p) (sharp_a,p - sharp_k,p) / sigma_p be
  /// pixel p's error of the centre sample against the k x k average before
  /// the PSF, at the reference, in noise units (sigma: the noise map, or
  /// sqrt(variance(M_k)) with the model variance; masked pixels, whose errors
  /// the PSF carries into their neighbours, with weight 1 and the smallest
  /// sigma).  Pixels are flagged in decreasing |e_p| until the unflagged
  /// ones' sqrt(sum e_p^2) <= tolerance, then the flags are dilated by
  /// `dilation` pixels (so that the arcs may move by a pixel over the
  /// posterior); the distance after the PSF (chi_distance below) is then
  /// measured, and if it exceeds the tolerance (possible with a varying
  /// sigma) the criterion is halved and the choice made again.  The adaptive likelihood is then
  /// the full one with the model image moved by Delta = M_a - M_k, and to
  /// first order (the linear-Gaussian approximation around the MAP, Fisher
  /// matrix F = J^T Sigma^-1 J, J = dM/dtheta) its maximum moves by
  ///   delta theta = F^-1 J^T Sigma^-1 Delta,
  /// whose Mahalanobis length sqrt(delta^T F delta) is the norm of the
  /// projection of Sigma^-1/2 Delta on the span of Sigma^-1/2 J, hence
  ///   |delta theta_i| / sd_i <= sqrt(delta^T F delta) <= ||Sigma^-1/2 Delta|| = chi_distance
  /// for every parameter i (sd_i = sqrt(F^-1_ii), the posterior sd with flat
  /// priors; priors only shrink it).  So tolerance = 0.1 keeps every bias below
  /// 0.1 posterior sd; the posterior's width is changed at second order
  /// (J_a vs J_k, the same pixels).  Returns the choice with its measured
  /// chi_distance (tests/likelihood/test_likelihood_adaptive.cpp checks the
  /// bound on the fit_lens case with the Fisher matrix by finite
  /// differences).  Allocates; fences `space`.
  template <class ExecutionSpace>
  SupersamplingChoice choose_supersampling_mask(ExecutionSpace const& space, Model const& reference, double tolerance,
                                                int dilation = 1) {
    constexpr char const* where = "lensing::GaussianLikelihood::choose_supersampling_mask";
    check_argument(std::isfinite(tolerance) && tolerance >= 0, where,
                   detail::describe("tolerance", "finite and >= 0", tolerance));
    check_argument(dilation >= 0, where, detail::describe("dilation", ">= 0", dilation));
    auto const grid = m_obs.grid();
    int const ny = grid.ny(), nx = grid.nx();
    long const np = long(ny) * nx;
    // The full sub-pixel average and the centre sample, before the PSF.
    View2D<Scalar, MemorySpace> full("lensing::GaussianLikelihood::choose_full", ny, nx),
        centre("lensing::GaussianLikelihood::choose_centre", ny, nx),
        model_k("lensing::GaussianLikelihood::choose_model", ny, nx);
    m_obs.renderer().render(space, reference.lens, reference.source, reference.lens_light, full);
    detail::SkyBrightness<typename Model::lens_type, typename Model::source_type, typename Model::lens_light_type> const
        sky{reference.lens, reference.source, reference.lens_light};
    Scalar const area = grid.pixel_scale() * grid.pixel_scale();
    parallel_for_pixels(
        "lensing::likelihood::choose_centre", space, ny, nx,
        KOKKOS_LAMBDA(int iy, int ix) { centre(iy, ix) = area * sky(grid.x(ix), grid.y(iy)); });
    m_obs.render(space, reference, model_k);
    space.fence();
    auto hf = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), full);
    auto hc = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), centre);
    auto hmk = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model_k);
    auto const sig = noise_sigma_host(hmk);
    auto hm = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m_mask);
    // Masked pixels' sub-pixel errors still reach unmasked pixels through
    // the PSF: count them with the smallest sigma of the unmasked pixels.
    double sig_min = HUGE_VAL;
    for (long p = 0; p < np; ++p)
      if (hm(int(p / nx), int(p % nx)) > Scalar(0)) sig_min = std::min(sig_min, sig[size_t(p)]);
    if (!(sig_min < HUGE_VAL)) sig_min = 1;
    std::vector<double> e2(static_cast<size_t>(np));
    std::vector<long> order(static_cast<size_t>(np));
    double total = 0;
    for (long p = 0; p < np; ++p) {
      int const iy = int(p / nx), ix = int(p % nx);
      double const m = double(hm(iy, ix));
      double const d = (double(hc(iy, ix)) - double(hf(iy, ix))) / (m > 0 ? sig[size_t(p)] : sig_min);
      e2[size_t(p)] = (m > 0 ? m : 1.0) * d * d;
      total += e2[size_t(p)];
      order[size_t(p)] = p;
    }
    std::sort(order.begin(), order.end(), [&](long a, long b) {
      return e2[size_t(a)] > e2[size_t(b)] || (e2[size_t(a)] == e2[size_t(b)] && a < b);
    });
    View2D<int, Kokkos::HostSpace> hmask("lensing::GaussianLikelihood::choose_mask", ny, nx);
    View2D<Scalar, MemorySpace> model_a("lensing::GaussianLikelihood::choose_adaptive", ny, nx);
    double bound = 0, dist = 0;
    // The pre-PSF criterion bounds the post-PSF distance when sigma is
    // uniform; otherwise (a varying noise map, the model variance) the
    // distance after the PSF is measured and the criterion tightened until
    // it holds (at worst every pixel with an error is flagged: distance 0).
    double target = tolerance;
    for (int attempt = 0; attempt < 12; ++attempt) {
      std::vector<char> flag(static_cast<size_t>(np), 0);
      double remaining = total;
      for (long j = 0; j < np && remaining > target * target && e2[size_t(order[size_t(j)])] > 0; ++j) {
        flag[size_t(order[size_t(j)])] = 1;
        remaining -= e2[size_t(order[size_t(j)])];
      }
      if (attempt == 11)  // last try: every pixel with an error
        for (long p = 0; p < np; ++p)
          flag[size_t(p)] = e2[size_t(p)] > 0;
      for (int iy = 0; iy < ny; ++iy)
        for (int ix = 0; ix < nx; ++ix) {
          bool on = false;
          for (int dy = -dilation; dy <= dilation && !on; ++dy)
            for (int dx = -dilation; dx <= dilation && !on; ++dx) {
              int const cy = iy + dy, cx = ix + dx;
              on = cy >= 0 && cy < ny && cx >= 0 && cx < nx && flag[size_t(long(cy) * nx + cx)];
            }
          hmask(iy, ix) = on ? 1 : 0;
        }
      bound = 0;
      for (long p = 0; p < np; ++p)
        if (!hmask(int(p / nx), int(p % nx))) bound += e2[size_t(p)];
      set_supersampling_mask(space, hmask);
      adaptive_render(space, reference, model_a);
      space.fence();
      auto ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model_a);
      dist = 0;
      for (long p = 0; p < np; ++p) {
        int const iy = int(p / nx), ix = int(p % nx);
        double const m = double(hm(iy, ix));
        if (m > 0) {
          double const d = (double(ha(iy, ix)) - double(hmk(iy, ix))) / sig[size_t(p)];
          dist += m * d * d;
        }
      }
      if (std::sqrt(dist) <= tolerance) break;
      target *= 0.5;
    }
    SupersamplingChoice c;
    c.flagged = m_pts.flagged;
    c.points = m_pts.points;
    c.cost = double(m_pts.points) / (double(grid.fine_ny()) * grid.fine_nx());
    c.chi_distance = std::sqrt(dist);
    c.bound = std::sqrt(bound);
    return c;
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
        m_chi(fresh(o.m_chi)),
        m_adaptive(o.m_adaptive),
        m_pts(o.m_pts) {
    // m_src_partial: allocated by the clone's own first use.  The adaptive
    // points' coordinates and owners are read-only (shared); the buffers are
    // the clone's own (zero-initialised, so the padding keeps a zero cotangent).
    if (m_adaptive) {
      m_pts.value = fresh(o.m_pts.value);
      m_pts.bx = fresh(o.m_pts.bx);
      m_pts.by = fresh(o.m_pts.by);
      m_pts.gbar = fresh(o.m_pts.gbar);
      m_pts.partial = fresh(o.m_pts.partial);
      m_pts.sharp = fresh(o.m_pts.sharp);
      m_pts.sharp_bar = fresh(o.m_pts.sharp_bar);
    }
  }
  template <class V>
  static V fresh(V const& v) {
    return V(v.label(), v.layout());
  }

  // sigma_p on the host for the noise model (the fixed map, or the model
  // variance at the model image `model` (host mirror)); 1 where masked.
  template <class HostImage>
  std::vector<double> noise_sigma_host(HostImage const& model) const {
    int const ny = m_obs.grid().ny(), nx = m_obs.grid().nx();
    std::vector<double> sig(static_cast<size_t>(long(ny) * nx), 1.0);
    auto hm = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m_mask);
    View2D<Scalar const, Kokkos::HostSpace> hn;
    if (!m_model_variance) hn = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m_noise);
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix)
        if (hm(iy, ix) > Scalar(0))
          sig[size_t(long(iy) * nx + ix)] =
              m_model_variance ? std::sqrt(double(m_noise_model.variance(model(iy, ix)))) : double(hn(iy, ix));
    return sig;
  }

 public:
  // (Public only because nvcc refuses an extended __host__ __device__ lambda
  // in a private member function; implementation details, not API.)
  // The adaptive model image: the points' brightness, binned per pixel with
  // its weight (A_pix / k^2 for k x k points, A_pix for the centre), PSF.
  template <class ExecutionSpace, class Image>
  void adaptive_render(ExecutionSpace const& space, Model const& model, Image const& image) const {
    check_extents(image, "lensing::GaussianLikelihood::render_model", "image", "(ny, nx)", m_obs.grid().ny(),
                  m_obs.grid().nx());
    check_model(model.lens);
    check_model(model.source);
    check_model(model.lens_light);
    auto const grid = m_obs.grid();
    auto const x = m_pts.x;
    auto const y = m_pts.y;
    auto const bx = m_pts.bx;
    auto const by = m_pts.by;
    auto const value = m_pts.value;
    auto const start = m_pts.start;
    auto const sharp = m_pts.sharp;
    if constexpr (detail::is_host_space_v<ExecutionSpace>)
      Kokkos::parallel_for(
          "lensing::likelihood::adaptive_brightness", Kokkos::RangePolicy<ExecutionSpace>(space, 0, m_pts.rows),
          detail::AdaptiveBrightnessRows<Model, View1D<Scalar, MemorySpace>>{model, x, y, bx, by, value});
    else
      Kokkos::parallel_for(
          "lensing::likelihood::adaptive_brightness",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(x.extent(0))),
          KOKKOS_LAMBDA(long i) {
            Scalar const xx = x(i), yy = y(i);
            auto const a = model.lens.deflection(xx, yy);
            Scalar const u = xx - a.x, v = yy - a.y;
            bx(i) = u;
            by(i) = v;
            value(i) = model.source.surface_brightness(u, v) + model.lens_light.surface_brightness(xx, yy);
          });
    int const nx = grid.nx(), k = grid.supersampling();
    Scalar const area = grid.pixel_scale() * grid.pixel_scale(), w = area / Scalar(k * k);
    parallel_for_pixels(
        "lensing::likelihood::adaptive_bin", space, grid.ny(), nx, KOKKOS_LAMBDA(int iy, int ix) {
          long const p = long(iy) * nx + ix, i0 = start(p), i1 = start(p + 1);
          Scalar s = 0;
          for (long i = i0; i < i1; ++i)
            s += value(i);
          sharp(iy, ix) = (i1 - i0 == 1 ? area : w) * s;
        });
    m_obs.psf().apply(space, m_pts.sharp, image);
  }

  // The adaptive backward pass from m_rbar: PSF^T, each pixel's cotangent
  // times its weight at its points, then the point VJPs (AdaptiveVjpRows)
  // and the sum over rows (in double).
  template <class ExecutionSpace>
  void adaptive_backward(ExecutionSpace const& space, Model const& model,
                         View1D<Scalar, MemorySpace> const& grad) const {
    static_assert(is_mass_profile_v<typename Model::lens_type>,
                  "lensing::GaussianLikelihood: the gradient needs a MassProfile lens (parameter VJPs)");
    auto const grid = m_obs.grid();
    m_obs.psf().apply_adjoint(space, m_rbar, m_pts.sharp_bar);
    auto const start = m_pts.start;
    auto const sbar = m_pts.sharp_bar;
    auto const gbar = m_pts.gbar;
    int const nx = grid.nx(), k = grid.supersampling();
    Scalar const area = grid.pixel_scale() * grid.pixel_scale(), w = area / Scalar(k * k);
    parallel_for_pixels(
        "lensing::likelihood::adaptive_spread", space, grid.ny(), nx, KOKKOS_LAMBDA(int iy, int ix) {
          long const p = long(iy) * nx + ix, i0 = start(p), i1 = start(p + 1);
          Scalar const g = (i1 - i0 == 1 ? area : w) * sbar(iy, ix);
          for (long i = i0; i < i1; ++i)
            gbar(i) = g;
        });
    Kokkos::parallel_for("lensing::likelihood::adaptive_vjp", Kokkos::RangePolicy<ExecutionSpace>(space, 0, m_pts.rows),
                         detail::AdaptiveVjpRows<Model, View1D<Scalar, MemorySpace>, View2D<double, MemorySpace>,
                                                 detail::is_host_space_v<ExecutionSpace>>{
                             model, m_pts.x, m_pts.y, m_pts.bx, m_pts.by, gbar, m_pts.partial});
    auto const partial = m_pts.partial;
    int const rows = m_pts.rows;
    Kokkos::parallel_for(
        "lensing::likelihood::adaptive_sum", Kokkos::RangePolicy<ExecutionSpace>(space, 0, num_params),
        KOKKOS_LAMBDA(int j) {
          double t = 0;
          for (int r = 0; r < rows; ++r)
            t += partial(r, j);
          grad(j) = Scalar(t);
        });
  }

 private:
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
    // chi^2 summed in double (per-pixel terms in Scalar), rounded once.
    double chi2;
    Kokkos::deep_copy(space, Kokkos::View<double, Kokkos::HostSpace>(&chi2), Kokkos::subview(m_chi, 0));
    space.fence();
    return Scalar(-0.5 * chi2);
  }

  Observation<Scalar, MemorySpace, Psf> m_obs;
  View2D<Scalar const, MemorySpace> m_data, m_noise, m_mask;
  bool m_model_variance = false;
  ObservationNoise<Scalar> m_noise_model{};
  double m_normalisation = 0;
  View2D<Scalar, MemorySpace> m_model, m_rbar, m_gbar, m_bbar_x, m_bbar_y;
  // Light gradient and chi^2 accumulated in double (see LightVjpRows).
  View2D<double, MemorySpace> m_partial;
  View1D<double, MemorySpace> m_grad_light;
  View1D<Scalar, MemorySpace> m_grad_lens;
  MapVjpWorkspace<Scalar, MemorySpace> m_work;
  View2D<double, MemorySpace> m_chi_partial;
  View1D<double, MemorySpace> m_chi;
  // Adaptive supersampling (set_supersampling_mask): the evaluation points
  // (see detail::adaptive_points_per_row) and their buffers.
  struct AdaptivePoints {
    View1D<Scalar, MemorySpace> x, y;                 // (rows * W) point coordinates, shared by clones
    View1D<long, MemorySpace> start;                  // (ny * nx + 1): pixel p owns points [start(p), start(p + 1))
    View2D<int, MemorySpace> mask;                    // (ny, nx) 1 = supersampled, shared by clones
    View1D<Scalar, MemorySpace> value, gbar, bx, by;  // per point: brightness, cotangent, beta
    View2D<double, MemorySpace> partial;              // (rows, num_params)
    View2D<Scalar, MemorySpace> sharp, sharp_bar;     // (ny, nx) before the PSF, and its cotangent
    long points = 0, flagged = 0;
    int rows = 0;
  };
  bool m_adaptive = false;
  AdaptivePoints m_pts;
  // Scratch of the host source-pixel gradient (sized on use).
  mutable View2D<Scalar, MemorySpace> m_src_partial;
};

}  // namespace lensing

#endif  // LENSING_LIKELIHOOD_GAUSSIAN_HPP
