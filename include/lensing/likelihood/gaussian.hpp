#ifndef LENSING_LIKELIHOOD_GAUSSIAN_HPP
#define LENSING_LIKELIHOOD_GAUSSIAN_HPP

/// \file
/// Gaussian image log-likelihood of a LensModel and its gradient through the
/// hand-derived VJP chain (PSF adjoint, supersampling, light VJPs, ray
/// shooting, lens deflection VJP).

#include <lensing/core/reduce_params.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

#include <cmath>
#include <string>

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
template <class View, class Data>
struct Chi2Term {
  using Scalar = typename View::non_const_value_type;
  View model;
  Data data, noise, mask;
  KOKKOS_FORCEINLINE_FUNCTION void operator()(int iy, int ix, Scalar* acc) const {
    Scalar const r = (data(iy, ix) - model(iy, ix)) / noise(iy, ix);
    acc[0] += mask(iy, ix) * r * r;
  }
};
}  // namespace detail

/// Gaussian log-likelihood of an image,
///   log L = -1/2 sum_pixels m_p (d_p - M_p(theta))^2 / sigma_p^2,
/// d the data, sigma the noise map (> 0), m the mask (1 use, 0 ignore; any
/// weight in [0, 1]), M the model image of Observation::render.  The constant
/// -sum m log(sqrt(2 pi) sigma) is omitted.  value_and_gradient also returns
/// d log L / d theta for every parameter of LensModel (pack order), by
///   rbar = m (d - M)/sigma^2 -> PSF^T -> spread over the k^2 sub-pixels with
///   weight A_pix/k^2 (Observation::blur_and_bin_adjoint; with
///   PsfSampling::supersampled: spread, then PSF^T on the fine grid) -> light
///   VJPs (source at beta, lens light at x) and the
///   lens deflection VJP of the source's position cotangent (beta = x - alpha),
/// reduced deterministically over pixels (same result for any thread count).
/// Cost: one render, one PSF adjoint, one pass over the fine pixels for the
/// light VJPs (vectorised; with the residual and PSF^T ~1.5x the render)
/// and the lens parameters'
/// ray-shooting VJP (raytrace/ray_shooting.hpp: its running-sum reduction
/// does not vectorise, ~9x a deflection map for SIE + shear, and dominates:
/// value + gradient = 5.6x the value at 100^2, k = 3; see
/// benchmarks/simulate/bench_render.cpp).
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

  GaussianLikelihood(Observation<Scalar, MemorySpace, Psf> const& obs, View2D<Scalar const, MemorySpace> data,
                     View2D<Scalar const, MemorySpace> noise_map, View2D<Scalar const, MemorySpace> mask)
      : m_obs(obs),
        m_data(data),
        m_noise(noise_map),
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
    check_extents(noise_map, where, "noise_map", "(ny, nx)", ny, nx);
    check_extents(mask, where, "mask", "(ny, nx)", ny, nx);
    // Host-side validation of the inputs (once, at construction).
    auto hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), data);
    auto hn = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), noise_map);
    auto hm = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mask);
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        check_finite(hd(iy, ix), where, "data");
        check_positive(hn(iy, ix), where, "noise_map");
        check_in_closed(hm(iy, ix), Scalar(0), Scalar(1), where, "mask");
      }
  }

  /// An independent copy: the same data, noise map and mask (read-only,
  /// shared) and its own work buffers and Observation clone, so the copy may
  /// be evaluated while this one is in use (on host backends, still from one
  /// host thread at a time: see launches_kernels).
  GaussianLikelihood clone() const { return GaussianLikelihood(*this, CloneTag{}); }

  /// The model image of the last call (valid after the space is fenced).
  View2D<Scalar, MemorySpace> const& model_image() const { return m_model; }

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
    auto const s = m_noise;
    auto const m = m_mask;
    auto const M = m_model;
    auto const rbar = m_rbar;
    parallel_for_pixels(
        "lensing::likelihood::residual", space, grid.ny(), grid.nx(), KOKKOS_LAMBDA(int iy, int ix) {
          Scalar const sg = s(iy, ix);
          rbar(iy, ix) = m(iy, ix) * (d(iy, ix) - M(iy, ix)) / (sg * sg);
        });
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

 private:
  struct CloneTag {};
  // The clone: validated inputs shared, fresh buffers of the same extents.
  GaussianLikelihood(GaussianLikelihood const& o, CloneTag)
      : m_obs(o.m_obs.clone()),
        m_data(o.m_data),
        m_noise(o.m_noise),
        m_mask(o.m_mask),
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
        m_chi(fresh(o.m_chi)) {}
  template <class V>
  static V fresh(V const& v) {
    return V(v.label(), v.layout());
  }

  template <class ExecutionSpace>
  Scalar chi2_to_logl(ExecutionSpace const& space) const {
    auto const grid = m_obs.grid();
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
  View2D<Scalar, MemorySpace> m_model, m_rbar, m_gbar, m_bbar_x, m_bbar_y, m_partial;
  View1D<Scalar, MemorySpace> m_grad_light, m_grad_lens;
  MapVjpWorkspace<Scalar, MemorySpace> m_work;
  View2D<Scalar, MemorySpace> m_chi_partial;
  View1D<Scalar, MemorySpace> m_chi;
};

}  // namespace lensing

#endif  // LENSING_LIKELIHOOD_GAUSSIAN_HPP
