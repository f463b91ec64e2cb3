#ifndef LENSING_MODEL_RENDER_HPP
#define LENSING_MODEL_RENDER_HPP

/// \file
/// Noiseless lensed images on a PixelGrid with uniform supersampling.

#include <lensing/core/errors.hpp>
#include <lensing/core/parallel.hpp>
#include <lensing/core/views.hpp>
#include <lensing/geometry/pixel_grid.hpp>
#include <lensing/profiles/lens_parameters.hpp>
#include <lensing/profiles/mass_profile.hpp>
#include <lensing/sources/light_profile.hpp>

#include <cmath>
#include <string>
#include <type_traits>
#include <utility>

// The point loop of a fine row on hosts with 512-bit vectors: full-width
// lanes (`omp simd simdlen(n)`; GCC's skylake-avx512 tuning otherwise
// computes in 256-bit halves and packs them for libmvec's 512-bit exp, log
// and atan); elsewhere GCC's ivdep.
#define LENSING_RENDER_ROW_PRAGMA(x) _Pragma(#x)
#if defined(_OPENMP) && !defined(__CUDACC__) && defined(__AVX512F__)
#define LENSING_RENDER_SIMD_ROW(n) LENSING_RENDER_ROW_PRAGMA(omp simd simdlen(n))
#elif defined(__GNUC__)
#define LENSING_RENDER_SIMD_ROW(n) LENSING_RENDER_ROW_PRAGMA(GCC ivdep)
#else
#define LENSING_RENDER_SIMD_ROW(n)
#endif

namespace lensing {

namespace detail {
// Surface brightness of the lensed source plus the lens light at one sky point,
// on the profiles prepared once (detail::prepare: an elliptical profile's frame
// and kernel constants, a Sersic's 1/R_sersic^2, 1/n and b_n), so that pixel
// loops do not rebuild them at every point (GCC cannot hoist that set-up: its
// branches, and -ftrapping-math keeps the conditional square roots and
// divisions in place).  Same formulas as the profiles' own evaluation.
template <class Lens, class Source, class LensLight>
struct SkyBrightness {
  using Scalar = typename Lens::scalar_type;
  decltype(prepare(std::declval<Lens const&>())) lens;
  decltype(prepare(std::declval<Source const&>())) source;
  decltype(prepare(std::declval<LensLight const&>())) lens_light;
  KOKKOS_INLINE_FUNCTION SkyBrightness(Lens const& l, Source const& s, LensLight const& ll)
      : lens(prepare(l)), source(prepare(s)), lens_light(prepare(ll)) {}
  KOKKOS_FORCEINLINE_FUNCTION Scalar operator()(Scalar x, Scalar y) const {
    auto const a = lens.deflection(x, y);
    return source.surface_brightness(x - a.x, y - a.y) + lens_light.surface_brightness(x, y);
  }
};

// row[jx] = f(fine_x(jx), fine_y(jy)) for one fine row, on the host: one
// compiled function per sky and scalar type (LENSING_ROW_FUNCTION), shared by
// render's fused rows and render_fine, so that both give the same bits.
template <class F, class Scalar>
LENSING_ROW_FUNCTION void sky_fine_row(F const& f, PixelGrid<Scalar> const& grid, int jy, Scalar* __restrict row) {
  // Locals: the stores through row cannot alias them, so their constants
  // stay out of the point loop.
  F const g = f;
  PixelGrid<Scalar> const gr = grid;
  Scalar const y = gr.fine_y(jy);
  int const fnx = gr.fine_nx();
  if constexpr (sizeof(Scalar) == 8) {
    LENSING_RENDER_SIMD_ROW(8)
    for (int jx = 0; jx < fnx; ++jx)
      row[jx] = g(gr.fine_x(jx), y);
  } else {
    LENSING_RENDER_SIMD_ROW(16)
    for (int jx = 0; jx < fnx; ++jx)
      row[jx] = g(gr.fine_x(jx), y);
  }
}

// sky_fine_row, with each point's source-plane position beta = x - alpha(x)
// stored too (Renderer::render_fine_positions): the same operations on the
// same values for the brightness.
template <class Sky, class Scalar>
LENSING_ROW_FUNCTION void sky_fine_row_positions(Sky const& sky, PixelGrid<Scalar> const& grid, int jy,
                                                 Scalar* __restrict row, Scalar* __restrict beta_x,
                                                 Scalar* __restrict beta_y) {
  Sky const g = sky;
  PixelGrid<Scalar> const gr = grid;
  Scalar const y = gr.fine_y(jy);
  int const fnx = gr.fine_nx();
  auto const point = [&](int jx) {
    Scalar const x = gr.fine_x(jx);
    auto const a = g.lens.deflection(x, y);
    Scalar const bx = x - a.x, by = y - a.y;
    beta_x[jx] = bx;
    beta_y[jx] = by;
    row[jx] = g.source.surface_brightness(bx, by) + g.lens_light.surface_brightness(x, y);
  };
  if constexpr (sizeof(Scalar) == 8) {
    LENSING_RENDER_SIMD_ROW(8)
    for (int jx = 0; jx < fnx; ++jx)
      point(jx);
  } else {
    LENSING_RENDER_SIMD_ROW(16)
    for (int jx = 0; jx < fnx; ++jx)
      point(jx);
  }
}

// Host fine rows of Renderer::render_fine_positions (row-contiguous views).
template <class Sky, class Fine>
struct FinePositionRows {
  Sky sky;
  PixelGrid<typename Fine::non_const_value_type> grid;
  Fine fine, beta_x, beta_y;
  KOKKOS_INLINE_FUNCTION void operator()(int jy) const {
    sky_fine_row_positions(sky, grid, jy, &fine(jy, 0), &beta_x(jy, 0), &beta_y(jy, 0));
  }
};

// Host fine rows of Renderer::render_fine (a row-contiguous fine view).
template <class F, class Fine>
struct FineRows {
  using Scalar = typename Fine::non_const_value_type;
  F f;
  PixelGrid<Scalar> grid;
  Fine fine;
  KOKKOS_INLINE_FUNCTION void operator()(int jy) const { sky_fine_row(f, grid, jy, &fine(jy, 0)); }
};

// Host rows of Renderer::render_brightness for k > 1: for pixel row iy, the
// brightness of its k fine rows (sky_fine_row, into the renderer's fine
// buffer, where they stay in cache), then their k x k sums.  One pass instead
// of a fine pass and a binning pass that reads the fine buffer back from
// memory (4.7 MB at 256^2, k = 3); the same values and summation order as
// render_fine followed by bin_subpixels.
template <class F, class Fine, class Image>
struct FineBinRows {
  using Scalar = typename Image::non_const_value_type;
  F f;
  PixelGrid<Scalar> grid;
  Fine fine;
  Image image;
  Scalar w;
  LENSING_ROW_FUNCTION void operator()(int iy) const {
    int const k = grid.supersampling(), nx = grid.nx();
    for (int sy = 0; sy < k; ++sy)
      sky_fine_row(f, grid, iy * k + sy, &fine(iy * k + sy, 0));
    for (int ix = 0; ix < nx; ++ix) {
      Scalar s = 0;
      for (int sy = 0; sy < k; ++sy)
        for (int sx = 0; sx < k; ++sx)
          s += fine(iy * k + sy, ix * k + sx);
      image(iy, ix) = w * s;
    }
  }
};

// Host rows of Renderer::render_brightness for k = 1: image(iy, ix) = area
// f(x, y) in FineBinRows's full-width point loop.
template <class F, class Image>
struct PixelRows {
  using Scalar = typename Image::non_const_value_type;
  F f;
  PixelGrid<Scalar> grid;
  Image image;
  Scalar area;
  LENSING_ROW_FUNCTION void operator()(int iy) const {
    F const g = f;
    PixelGrid<Scalar> const gr = grid;
    Scalar const a = area, y = gr.y(iy);
    int const nx = gr.nx();
    Scalar* __restrict const row = &image(iy, 0);
    if constexpr (sizeof(Scalar) == 8) {
      LENSING_RENDER_SIMD_ROW(8)
      for (int ix = 0; ix < nx; ++ix)
        row[ix] = a * g(gr.x(ix), y);
    } else {
      LENSING_RENDER_SIMD_ROW(16)
      for (int ix = 0; ix < nx; ++ix)
        row[ix] = a * g(gr.x(ix), y);
    }
  }
};

template <class ExecutionSpace, class Lens, class Source, class LensLight, class Image>
void check_render_args(char const* where, PixelGrid<typename Lens::scalar_type> const& grid, Image const& image) {
  using Scalar = typename Lens::scalar_type;
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::render: first argument must be a Kokkos execution space");
  static_assert(is_deflector_v<Lens>,
                "lensing::render: the lens must have a deflection(x, y) (a MassProfile, Composite, LensSum, "
                "MultiPlaneLens, InterpolatedLens)");
  static_assert(check_light_profile<Source>() && check_light_profile<LensLight>(),
                "lensing::render: source and lens light must be LightProfiles (use NoLight for none)");
  static_assert(std::is_same<typename Source::scalar_type, Scalar>::value &&
                    std::is_same<typename LensLight::scalar_type, Scalar>::value,
                "lensing::render: lens, source and lens light must use the same scalar type");
  static_assert(Image::rank == 2 && std::is_same<typename Image::value_type, Scalar>::value,
                "lensing::render: the image is a rank-2 view (iy, ix) of the profiles' scalar type");
  static_assert(is_accessible_from_v<ExecutionSpace, typename Image::memory_space>,
                "lensing::render: the image must be accessible from the execution space");
  check_extents(image, where, "image", "(ny, nx)", grid.ny(), grid.nx());
}
}  // namespace detail

/// Renders noiseless images of lens + source + lens light on one PixelGrid,
/// as lenstronomy's ImageModel (without PSF; see psf/ for the blur):
///
///   image(iy, ix) = A_pix / k^2 sum_{sub-pixels s of (ix, iy)} [ S(x_s - alpha(x_s)) + L(x_s) ],
///
/// S the source and L the lens-light surface brightness (LightProfiles),
/// alpha the lens deflection (any lens of profiles/mass_profile.hpp), x_s the
/// k x k sub-pixel centres of PixelGrid (lenstronomy's `make_subgrid`), and
/// A_pix = pixel_scale^2: pixel values are fluxes in the light profiles'
/// amplitude units times arcsec^2 (lenstronomy's convention).  Uniform
/// supersampling with factor k = grid.supersampling(): the error of the
/// sub-pixel average against the exact pixel integral falls as 1/k^2 where
/// the image is smooth (see tests/model/test_render.cpp for the measured
/// differences between k = 1, 3, 7).
///
/// Owns a (fine_ny, fine_nx) buffer (allocated in the constructor when k > 1):
/// the sub-pixel brightness is computed row by row on the fine grid (a
/// vectorisable loop on the host) and then averaged per pixel.
template <class Scalar, class MemorySpace>
class Renderer {
 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;

  Renderer() = default;
  explicit Renderer(PixelGrid<Scalar> const& grid) : m_grid(grid) {
    check_count(grid.nx(), 1, "lensing::Renderer", "grid.nx");
    if (grid.supersampling() > 1)
      m_fine = allocate_view<View2D<Scalar, MemorySpace>>("lensing::Renderer", "lensing::Renderer::fine", true,
                                                          grid.fine_ny(), grid.fine_nx());
  }

  PixelGrid<Scalar> const& grid() const { return m_grid; }

  /// image = lensed source + lens light (see the class comment); asynchronous
  /// on `space`.  image has extents (ny, nx).
  template <class ExecutionSpace, class Lens, class Source, class LensLight, class Image>
  void render(ExecutionSpace const& space, Lens const& lens, Source const& source, LensLight const& lens_light,
              Image const& image) const {
    detail::check_render_args<ExecutionSpace, Lens, Source, LensLight>("lensing::Renderer::render", m_grid, image);
    check_model(lens);
    check_model(source);
    check_model(lens_light);
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::Renderer::render: the renderer's memory space must be accessible from the execution space");
    detail::SkyBrightness<Lens, Source, LensLight> const sky{lens, source, lens_light};
    render_brightness(space, sky, image);
  }

  /// Adaptive supersampling: pixels with mask(iy, ix) != 0 are averaged over
  /// the grid's k x k sub-pixels, the others sampled once at their centre
  /// (lenstronomy's `supersampling_indexes`).  Choose the mask with
  /// select_supersampled_pixels (where the image varies) or by hand (e.g.
  /// around the arcs); the cost is that of k = 1 plus k^2 per flagged pixel.
  template <class ExecutionSpace, class Lens, class Source, class LensLight, class Mask, class Image>
  void render_adaptive(ExecutionSpace const& space, Lens const& lens, Source const& source, LensLight const& lens_light,
                       Mask const& mask, Image const& image) const {
    constexpr char const* where = "lensing::Renderer::render_adaptive";
    detail::check_render_args<ExecutionSpace, Lens, Source, LensLight>(where, m_grid, image);
    check_model(lens);
    check_model(source);
    check_model(lens_light);
    static_assert(Mask::rank == 2 && is_accessible_from_v<ExecutionSpace, typename Mask::memory_space>,
                  "lensing::Renderer::render_adaptive: the mask is a rank-2 view accessible from the space");
    check_extents(mask, where, "mask", "(ny, nx)", m_grid.ny(), m_grid.nx());
    detail::SkyBrightness<Lens, Source, LensLight> const f{lens, source, lens_light};
    auto const grid = m_grid;
    int const k = grid.supersampling();
    Scalar const area = grid.pixel_scale() * grid.pixel_scale(), w = area / Scalar(k * k);
    // Every pixel at its centre (a vectorised pass), then the flagged ones
    // again over their sub-pixels.
    parallel_for_pixels(
        "lensing::simulate::render_adaptive_centres", space, grid.ny(), grid.nx(),
        KOKKOS_LAMBDA(int iy, int ix) { image(iy, ix) = area * f(grid.x(ix), grid.y(iy)); });
    parallel_for_pixels(
        "lensing::simulate::render_adaptive", space, grid.ny(), grid.nx(), KOKKOS_LAMBDA(int iy, int ix) {
          if (mask(iy, ix)) {
            Scalar s = 0;
            for (int sy = 0; sy < k; ++sy)
              for (int sx = 0; sx < k; ++sx)
                s += f(grid.fine_x(ix * k + sx), grid.fine_y(iy * k + sy));
            image(iy, ix) = w * s;
          }
        });
  }

  /// The sub-pixel surface brightness itself (no pixel area, no binning):
  /// fine(jy, jx) = S(x_j - alpha(x_j)) + L(x_j) at the fine-grid centres,
  /// fine of extents (fine_ny, fine_nx).  With bin_subpixels this is render
  /// split in two, for operators that act on the fine grid in between (the
  /// supersampled PSF of Observation).  Asynchronous on `space`.
  template <class ExecutionSpace, class Lens, class Source, class LensLight, class Fine>
  void render_fine(ExecutionSpace const& space, Lens const& lens, Source const& source, LensLight const& lens_light,
                   Fine const& fine) const {
    constexpr char const* where = "lensing::Renderer::render_fine";
    auto const grid = m_grid;
    detail::check_render_args<ExecutionSpace, Lens, Source, LensLight>(where, grid.fine_grid(), fine);
    check_model(lens);
    check_model(source);
    check_model(lens_light);
    detail::SkyBrightness<Lens, Source, LensLight> const f{lens, source, lens_light};
    if constexpr (detail::is_host_space_v<ExecutionSpace> &&
                  std::is_same<typename Fine::array_layout, Kokkos::LayoutRight>::value) {
      detail::FineRows<detail::SkyBrightness<Lens, Source, LensLight>, Fine> const rows{f, grid, fine};
      if (!detail::run_small_on_caller(space, grid.fine_ny(), double(grid.fine_nx()) * work_ns::image_pixel, rows))
        Kokkos::parallel_for("lensing::simulate::render_fine",
                             Kokkos::RangePolicy<ExecutionSpace>(space, 0, grid.fine_ny()), rows);
    } else {
      parallel_for_pixels(
          "lensing::simulate::render_fine", space, grid.fine_ny(), grid.fine_nx(),
          KOKKOS_LAMBDA(int jy, int jx) { fine(jy, jx) = f(grid.fine_x(jx), grid.fine_y(jy)); });
    }
  }

  /// render_fine, and the source-plane position beta = x - alpha(x) of every
  /// sub-pixel, (beta_x, beta_y)(jy, jx): the points where a gradient pass
  /// evaluates the source's VJP (GaussianLikelihood::value_and_gradient keeps
  /// them rather than computing the deflection a second time).  All three
  /// views have extents (fine_ny, fine_nx) and must be distinct; fine is
  /// render_fine's (the same operations on the same points).  Asynchronous
  /// on `space`.
  template <class ExecutionSpace, class Lens, class Source, class LensLight, class Fine>
  void render_fine_positions(ExecutionSpace const& space, Lens const& lens, Source const& source,
                             LensLight const& lens_light, Fine const& fine, Fine const& beta_x,
                             Fine const& beta_y) const {
    constexpr char const* where = "lensing::Renderer::render_fine_positions";
    auto const grid = m_grid;
    detail::check_render_args<ExecutionSpace, Lens, Source, LensLight>(where, grid.fine_grid(), fine);
    check_extents(beta_x, where, "beta_x", "(fine_ny, fine_nx)", grid.fine_ny(), grid.fine_nx());
    check_extents(beta_y, where, "beta_y", "(fine_ny, fine_nx)", grid.fine_ny(), grid.fine_nx());
    check_argument(fine.data() != beta_x.data() && fine.data() != beta_y.data() && beta_x.data() != beta_y.data(),
                   where, "fine, beta_x and beta_y must be three different views");
    check_model(lens);
    check_model(source);
    check_model(lens_light);
    using Sky = detail::SkyBrightness<Lens, Source, LensLight>;
    Sky const sky{lens, source, lens_light};
    if constexpr (detail::is_host_space_v<ExecutionSpace> &&
                  std::is_same<typename Fine::array_layout, Kokkos::LayoutRight>::value) {
      detail::FinePositionRows<Sky, Fine> const rows{sky, grid, fine, beta_x, beta_y};
      if (!detail::run_small_on_caller(space, grid.fine_ny(), double(grid.fine_nx()) * work_ns::image_pixel, rows))
        Kokkos::parallel_for("lensing::simulate::render_fine_positions",
                             Kokkos::RangePolicy<ExecutionSpace>(space, 0, grid.fine_ny()), rows);
    } else {
      parallel_for_pixels(
          "lensing::simulate::render_fine_positions", space, grid.fine_ny(), grid.fine_nx(),
          KOKKOS_LAMBDA(int jy, int jx) {
            Scalar const x = grid.fine_x(jx), y = grid.fine_y(jy);
            auto const a = sky.lens.deflection(x, y);
            Scalar const bx = x - a.x, by = y - a.y;
            beta_x(jy, jx) = bx;
            beta_y(jy, jx) = by;
            fine(jy, jx) = sky.source.surface_brightness(bx, by) + sky.lens_light.surface_brightness(x, y);
          });
    }
  }

  /// image = A_pix / k^2 sum over sub-pixels of f(x_s, y_s), for any
  /// kernel-callable f (the building block of render).
  template <class ExecutionSpace, class F, class Image>
  void render_brightness(ExecutionSpace const& space, F const& f, Image const& image) const {
    auto const grid = m_grid;
    int const k = grid.supersampling();
    Scalar const area = grid.pixel_scale() * grid.pixel_scale();
    if (k == 1) {
      if constexpr (detail::is_host_space_v<ExecutionSpace> &&
                    std::is_same<typename Image::array_layout, Kokkos::LayoutRight>::value) {
        detail::PixelRows<F, Image> const rows{f, grid, image, area};
        if (!detail::run_small_on_caller(space, grid.ny(), double(grid.nx()) * work_ns::image_pixel, rows))
          Kokkos::parallel_for("lensing::simulate::render", Kokkos::RangePolicy<ExecutionSpace>(space, 0, grid.ny()),
                               rows);
        return;
      }
      parallel_for_pixels(
          "lensing::simulate::render", space, grid.ny(), grid.nx(),
          KOKKOS_LAMBDA(int iy, int ix) { image(iy, ix) = area * f(grid.x(ix), grid.y(iy)); });
      return;
    }
    auto const fine = m_fine;
    Scalar const w = area / Scalar(k * k);
    if constexpr (detail::is_host_space_v<ExecutionSpace>) {
      detail::FineBinRows<F, View2D<Scalar, MemorySpace>, Image> const rows{f, grid, fine, image, w};
      if (!detail::run_small_on_caller(space, grid.ny(), double(grid.fine_nx()) * k * work_ns::image_pixel, rows))
        Kokkos::parallel_for("lensing::simulate::render", Kokkos::RangePolicy<ExecutionSpace>(space, 0, grid.ny()),
                             rows);
      return;
    }
    parallel_for_pixels(
        "lensing::simulate::render_fine", space, grid.fine_ny(), grid.fine_nx(),
        KOKKOS_LAMBDA(int jy, int jx) { fine(jy, jx) = f(grid.fine_x(jx), grid.fine_y(jy)); });
    parallel_for_pixels(
        "lensing::simulate::render_bin", space, grid.ny(), grid.nx(), KOKKOS_LAMBDA(int iy, int ix) {
          Scalar s = 0;
          for (int sy = 0; sy < k; ++sy)
            for (int sx = 0; sx < k; ++sx)
              s += fine(iy * k + sy, ix * k + sx);
          image(iy, ix) = w * s;
        });
  }

 private:
  PixelGrid<Scalar> m_grid;
  View2D<Scalar, MemorySpace> m_fine;
};

//----------------------------------------------------------------------------
// Batches of images, one sky per image.

// Host builds with OpenMP on a target with 512-bit vectors: a loop over
// float points in 16 lanes (`omp simd simdlen(16)`); nothing elsewhere.
#define LENSING_RENDER_PRAGMA(x) _Pragma(#x)
#if defined(_OPENMP) && !defined(__CUDACC__) && defined(__AVX512F__)
#define LENSING_RENDER_SIMD16 LENSING_RENDER_PRAGMA(omp simd simdlen(16))
#else
#define LENSING_RENDER_SIMD16
#endif

namespace detail {
// Optional capability of a source: out[i] += S(x[i], y[i]) for i < m, a host
// structure-of-arrays form that may skip work (e.g. outside the source's box).
template <class Source, class Scalar, class = void>
struct has_add_surface_brightness : std::false_type {};
template <class Source, class Scalar>
struct has_add_surface_brightness<
    Source, Scalar,
    std::void_t<decltype(std::declval<Source const&>().add_surface_brightness(
        0, std::declval<Scalar const*>(), std::declval<Scalar const*>(), std::declval<Scalar*>()))>> : std::true_type {
};

// v[i] = S(x_i - alpha(x_i)) + L(x_i) for i < m <= deflection_batch_capacity,
// on the host: the lens's deflection_batch where it has one, the source's
// add_surface_brightness where it has one, otherwise per-point calls in
// loops the compiler vectorises (the per-pixel functions are branch-free).
template <class Sky, class Scalar>
KOKKOS_INLINE_FUNCTION void sky_brightness_points(Sky const& sky, int m, Scalar const* __restrict x,
                                                  Scalar const* __restrict y, Scalar* __restrict v) {
  using Lens = std::decay_t<decltype(sky.lens)>;
  using Source = std::decay_t<decltype(sky.source)>;
  constexpr int cap = deflection_batch_capacity;
  Scalar bx[cap], by[cap];
  if constexpr (has_deflection_batch_v<Lens>) {
    sky.lens.deflection_batch(m, x, y, bx, by);
    for (int i = 0; i < m; ++i) {
      bx[i] = x[i] - bx[i];
      by[i] = y[i] - by[i];
    }
  } else if constexpr (sizeof(Scalar) == 4) {
    // float: 16 lanes as for the light profiles below (the SIE's atan and
    // log in their 16-lane vector forms).
    LENSING_RENDER_SIMD16
    for (int i = 0; i < m; ++i) {
      auto const a = sky.lens.deflection(x[i], y[i]);
      bx[i] = x[i] - a.x;
      by[i] = y[i] - a.y;
    }
  } else {
    for (int i = 0; i < m; ++i) {
      auto const a = sky.lens.deflection(x[i], y[i]);
      bx[i] = x[i] - a.x;
      by[i] = y[i] - a.y;
    }
  }
  if constexpr (sizeof(Scalar) == 4) {
    // float: 16 lanes where the target has 512-bit vectors (the compiler's
    // default width for this target is 256; the light profiles' exp and log
    // calls are ~15% cheaper per point in the 16-lane vector forms).
    LENSING_RENDER_SIMD16
    for (int i = 0; i < m; ++i)
      v[i] = sky.lens_light.surface_brightness(x[i], y[i]);
  } else {
    for (int i = 0; i < m; ++i)
      v[i] = sky.lens_light.surface_brightness(x[i], y[i]);
  }
  if constexpr (has_add_surface_brightness<Source, Scalar>::value) {
    sky.source.add_surface_brightness(m, bx, by, v);
  } else if constexpr (sizeof(Scalar) == 4) {
    LENSING_RENDER_SIMD16
    for (int i = 0; i < m; ++i)
      v[i] += sky.source.surface_brightness(bx[i], by[i]);
  } else {
    for (int i = 0; i < m; ++i)
      v[i] += sky.source.surface_brightness(bx[i], by[i]);
  }
}

// Host: one work item = one image row of a batch; per fine sub-row, whole
// pixels' sub-pixels in blocks of at most deflection_batch_capacity go through
// sky_brightness_points and are summed into the row (sub-row, then
// sub-column: Renderer::render's order), then scaled by A_pix / k^2.
template <class Scalar, class Skies, class Images>
struct RenderBatchRows {
  Skies skies;
  Images images;
  PixelGrid<Scalar> grid;
  int ny, nx;
  Scalar weight;  // A_pix / k^2
  KOKKOS_INLINE_FUNCTION void operator()(long row) const {
    constexpr int cap = deflection_batch_capacity;
    int const b = int(row / ny), iy = int(row % ny);
    auto const& sky = skies(b);
    int const k = grid.supersampling(), fnx = nx * k, block = (cap / k) * k;
    Scalar x[cap], y[cap], v[cap];
    Scalar* __restrict const o = &images(b, iy, 0);
    for (int ix = 0; ix < nx; ++ix)
      o[ix] = Scalar(0);
    for (int sy = 0; sy < k; ++sy) {
      Scalar const yy = grid.fine_y(iy * k + sy);
      for (int i0 = 0; i0 < fnx; i0 += block) {
        int const m = math::min(block, fnx - i0);
        for (int i = 0; i < m; ++i) {
          x[i] = grid.fine_x(i0 + i);
          y[i] = yy;
        }
        sky_brightness_points(sky, m, x, y, v);
        Scalar* __restrict const out = o + i0 / k;
        if (k == 2) {
          // The common case with a fixed trip count, which vectorises (the
          // same sums in the same order as the general loop).
          for (int j = 0; j < m / 2; ++j)
            out[j] = (out[j] + v[2 * j]) + v[2 * j + 1];
        } else {
          for (int j = 0; j < m / k; ++j) {
            Scalar acc = out[j];
            for (int sx = 0; sx < k; ++sx)
              acc += v[j * k + sx];
            out[j] = acc;
          }
        }
      }
    }
    for (int ix = 0; ix < nx; ++ix)
      o[ix] *= weight;
  }
};

// Host, for skies whose lens has no deflection_batch and whose source no
// add_surface_brightness (e.g. SIE + shear with Sersic light): one work item
// = rows [r0, r0 + rows) of image b, on the sky prepared once per item
// (SkyBrightness: the lens's frame and kernel constants, the Sersic's frame
// and radial constants, instead of at every point: 1.2-1.4x), each fine row
// by sky_fine_row_split (at k = 1 into the pixel row, then times A_pix; at
// k > 1 into a stack buffer, then its k-column sums added to the pixel row:
// sub-row, then sub-column, FineBinRows's sums in its order, then times
// A_pix / k^2): Renderer::render's images bit for bit with GCC
// (tests/simulate/test_simulator.cpp).  fine_nx <=
// render_batch_prepared_fine_nx.
constexpr int render_batch_prepared_fine_nx = 4096;

// row[jx] = S(x_j - alpha(x_j)) + L(x_j) along fine row jy, on the host, for
// a prepared sky f (SkyBrightness): per block of 64 points, the deflection
// in one full-width loop (into stack buffers), then the two light profiles
// in another.  The same formulas as f(x, y); 1.1-1.2x faster than one loop
// over f (CPU time at 1 thread, 64^2 images: fewer values live across the
// lens's and the profiles' libmvec calls, whose vector registers are all
// caller-saved).
template <class F, class Scalar>
LENSING_ROW_FUNCTION void sky_fine_row_split(F const& f, PixelGrid<Scalar> const& grid, int jy,
                                             Scalar* __restrict row) {
  F const g = f;
  PixelGrid<Scalar> const gr = grid;
  Scalar const y = gr.fine_y(jy);
  int const fnx = gr.fine_nx();
  constexpr int B = 64;
  Scalar bx[B], by[B];
  for (int i0 = 0; i0 < fnx; i0 += B) {
    int const m = fnx - i0 < B ? fnx - i0 : B;
    if constexpr (sizeof(Scalar) == 8) {
      LENSING_RENDER_SIMD_ROW(8)
      for (int i = 0; i < m; ++i) {
        Scalar const x = gr.fine_x(i0 + i);
        auto const a = g.lens.deflection(x, y);
        bx[i] = x - a.x;
        by[i] = y - a.y;
      }
      LENSING_RENDER_SIMD_ROW(8)
      for (int i = 0; i < m; ++i)
        row[i0 + i] = g.source.surface_brightness(bx[i], by[i]) + g.lens_light.surface_brightness(gr.fine_x(i0 + i), y);
    } else {
      LENSING_RENDER_SIMD_ROW(16)
      for (int i = 0; i < m; ++i) {
        Scalar const x = gr.fine_x(i0 + i);
        auto const a = g.lens.deflection(x, y);
        bx[i] = x - a.x;
        by[i] = y - a.y;
      }
      LENSING_RENDER_SIMD_ROW(16)
      for (int i = 0; i < m; ++i)
        row[i0 + i] = g.source.surface_brightness(bx[i], by[i]) + g.lens_light.surface_brightness(gr.fine_x(i0 + i), y);
    }
  }
}

template <class Scalar, class Skies, class Images>
struct RenderBatchPrepared {
  Skies skies;
  Images images;
  PixelGrid<Scalar> grid;
  int ny, rows, items_per_image;
  Scalar area, weight;  // A_pix, A_pix / k^2
  void operator()(long item) const {
    int const b = int(item / items_per_image), r0 = int(item % items_per_image) * rows;
    int const r1 = r0 + rows < ny ? r0 + rows : ny;
    auto const& sky = skies(b);
    using Sky = std::decay_t<decltype(sky)>;
    SkyBrightness<decltype(Sky::lens), decltype(Sky::source), decltype(Sky::lens_light)> const f{sky.lens, sky.source,
                                                                                                 sky.lens_light};
    int const k = grid.supersampling(), nx = grid.nx();
    if (k == 1) {
      // At k = 1 the fine grid is the pixel grid (the same coordinates).
      for (int iy = r0; iy < r1; ++iy) {
        Scalar* __restrict const o = &images(b, iy, 0);
        sky_fine_row_split(f, grid, iy, o);
        for (int ix = 0; ix < nx; ++ix)
          o[ix] = area * o[ix];
      }
      return;
    }
    Scalar fine[render_batch_prepared_fine_nx];
    for (int iy = r0; iy < r1; ++iy) {
      Scalar* __restrict const o = &images(b, iy, 0);
      for (int ix = 0; ix < nx; ++ix)
        o[ix] = Scalar(0);
      for (int sy = 0; sy < k; ++sy) {
        sky_fine_row_split(f, grid, iy * k + sy, fine);
        if (k == 2) {
          // The common case with a fixed trip count (the same sums).
          for (int ix = 0; ix < nx; ++ix)
            o[ix] = (o[ix] + fine[2 * ix]) + fine[2 * ix + 1];
        } else {
          for (int ix = 0; ix < nx; ++ix) {
            Scalar acc = o[ix];
            for (int sx = 0; sx < k; ++sx)
              acc += fine[ix * k + sx];
            o[ix] = acc;
          }
        }
      }
      for (int ix = 0; ix < nx; ++ix)
        o[ix] = weight * o[ix];
    }
  }
};

// T::scalar_type is Scalar (false where T has none).
template <class T, class Scalar, class = void>
struct scalar_type_is : std::false_type {};
template <class T, class Scalar>
struct scalar_type_is<T, Scalar, std::void_t<typename T::scalar_type>> : std::is_same<typename T::scalar_type, Scalar> {
};

template <class Sky, class Scalar>
constexpr bool render_batch_prepared_v =
    !has_deflection_batch_v<std::decay_t<decltype(std::declval<Sky const&>().lens)>> &&
    !has_add_surface_brightness<std::decay_t<decltype(std::declval<Sky const&>().source)>, Scalar>::value &&
    scalar_type_is<std::decay_t<decltype(std::declval<Sky const&>().lens)>, Scalar>::value &&
    scalar_type_is<std::decay_t<decltype(std::declval<Sky const&>().source)>, Scalar>::value &&
    scalar_type_is<std::decay_t<decltype(std::declval<Sky const&>().lens_light)>, Scalar>::value;
}  // namespace detail

/// A batch of noiseless images, one sky per image, on one PixelGrid:
///
///   images(b, iy, ix) = A_pix / k^2 sum_{sub-pixels s} [ S_b(x_s - alpha_b(x_s)) + L_b(x_s) ],
///
/// Renderer::render's sum (same sub-pixels, same order) for sky b = skies(b),
/// any trivially copyable type with members `lens` (a MassProfile or
/// composite), `source` and `lens_light` (light profiles, or any type with a
/// kernel-callable surface_brightness(x, y)) — e.g. LensModel.  Sources may
/// provide the host form add_surface_brightness(m, x, y, out) (the procedural
/// Galaxy does: it skips points outside its box), lenses deflection_batch.
/// skies: rank-1 view of n skies; images: (n, ny, nx) with contiguous rows,
/// both accessible from `space`.  No buffer: on the host, skies whose lens
/// has no deflection_batch and whose source no add_surface_brightness (e.g.
/// SIE + shear, Sersic light) are prepared once per work item (detail::prepare,
/// as Renderer does; an item is an image, or a block of its rows when the
/// batch is smaller than 8 per thread) and give Renderer::render's images bit
/// for bit (fine rows up to 4096 sub-pixels wide); other skies go one image
/// row per work item in point blocks (sub-pixels summed as they are
/// computed); on a device one work item is a pixel.  Each image depends only
/// on its sky, so a batch split into pieces of any size gives the same images
/// at any thread count.  Asynchronous on `space`.
template <class ExecutionSpace, class Skies, class Images>
void render_batch(ExecutionSpace const& space, PixelGrid<typename Images::value_type> const& grid, Skies const& skies,
                  Images const& images) {
  using Scalar = typename Images::value_type;
  constexpr char const* where = "lensing::render_batch";
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::render_batch: first argument must be a Kokkos execution space");
  static_assert(Skies::rank == 1 && Images::rank == 3,
                "lensing::render_batch: skies is a rank-1 view (n) and images a rank-3 view (n, ny, nx)");
  static_assert(is_accessible_from_v<ExecutionSpace, typename Skies::memory_space> &&
                    is_accessible_from_v<ExecutionSpace, typename Images::memory_space>,
                "lensing::render_batch: skies and images must be accessible from the execution space");
  using Sky = typename Skies::non_const_value_type;
  static_assert(std::is_trivially_copyable<Sky>::value, "lensing::render_batch: a sky must be trivially copyable");
  static_assert(is_deflector_v<std::decay_t<decltype(std::declval<Sky const&>().lens)>>,
                "lensing::render_batch: a sky's `lens` must have a deflection(x, y) (a MassProfile, Composite, "
                "LensSum, MultiPlaneLens, InterpolatedLensView)");
  int const n = int(skies.extent(0));
  check_extents(images, where, "images", "(skies.extent(0), ny, nx)", n, grid.ny(), grid.nx());
  if (n == 0) return;
  int const ny = grid.ny(), nx = grid.nx(), k = grid.supersampling();
  Scalar const w = grid.pixel_scale() * grid.pixel_scale() / Scalar(k * k);
  if constexpr (detail::is_host_space_v<ExecutionSpace>) {
    check_argument(nx == 1 || images.stride(2) == 1, where, "images must have contiguous rows (LayoutRight)");
    if constexpr (detail::render_batch_prepared_v<Sky, Scalar>) {
      if (grid.fine_nx() <= detail::render_batch_prepared_fine_nx) {
        // Whole images per work item where the batch gives every thread
        // several (the sky prepared once per image); smaller batches split
        // their images into row blocks.  Dynamic: a descheduled thread's
        // share goes to the others.
        int const want = 8 * space.concurrency();
        int split = n >= want ? 1 : (want + n - 1) / n;
        if (split > ny) split = ny;
        int const rows = (ny + split - 1) / split, items_per_image = (ny + rows - 1) / rows;
        Kokkos::parallel_for(
            "lensing::model::render_batch",
            Kokkos::RangePolicy<ExecutionSpace, Kokkos::Schedule<Kokkos::Dynamic>, Kokkos::IndexType<long>>(
                space, 0, long(n) * items_per_image),
            detail::RenderBatchPrepared<Scalar, Skies, Images>{skies, images, grid, ny, rows, items_per_image,
                                                               grid.pixel_scale() * grid.pixel_scale(), w});
        return;
      }
    }
    Kokkos::parallel_for("lensing::model::render_batch",
                         Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(n) * ny),
                         detail::RenderBatchRows<Scalar, Skies, Images>{skies, images, grid, ny, nx, w});
  } else {
    Kokkos::parallel_for(
        "lensing::model::render_batch",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(n) * ny * nx),
        KOKKOS_LAMBDA(long i) {
          int const b = int(i / (long(ny) * nx)), iy = int((i / nx) % ny), ix = int(i % nx);
          auto const& sky = skies(b);
          Scalar s = 0;
          for (int sy = 0; sy < k; ++sy)
            for (int sx = 0; sx < k; ++sx) {
              Scalar const x = grid.fine_x(ix * k + sx), y = grid.fine_y(iy * k + sy);
              auto const a = sky.lens.deflection(x, y);
              s += sky.source.surface_brightness(x - a.x, y - a.y) + sky.lens_light.surface_brightness(x, y);
            }
          images(b, iy, ix) = w * s;
        });
  }
}

//----------------------------------------------------------------------------
// Binning of sub-pixels and its adjoint.

namespace detail {
// Host: the fine (sub-pixel) and image views of bin_subpixels / spread_to_subpixels match grid.
template <class Scalar, class Fine, class Image>
void check_fine_and_image(PixelGrid<Scalar> const& grid, Fine const& fine, Image const& image, char const* where) {
  check_extents(fine, where, "fine", "(fine_ny, fine_nx)", grid.fine_ny(), grid.fine_nx());
  check_extents(image, where, "image", "(ny, nx)", grid.ny(), grid.nx());
}
}  // namespace detail

/// Bin a sub-pixel brightness map onto the pixels of `grid`:
///   image(iy, ix) = A_pix / k^2 sum_{sy, sx < k} fine(iy k + sy, ix k + sx),
/// A_pix = pixel_scale^2, k = grid.supersampling() (the second half of
/// Renderer::render; the same sums in the same order).  fine has extents
/// (fine_ny, fine_nx), image (ny, nx).  Asynchronous on `space`.
template <class ExecutionSpace, class Fine, class Image>
void bin_subpixels(ExecutionSpace const& space, PixelGrid<typename Image::value_type> const& grid, Fine const& fine,
                   Image const& image) {
  using Scalar = typename Image::value_type;
  constexpr char const* where = "lensing::bin_subpixels";
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::bin_subpixels: first argument must be a Kokkos execution space");
  static_assert(Fine::rank == 2 && Image::rank == 2 && std::is_same<typename Fine::non_const_value_type, Scalar>::value,
                "lensing::bin_subpixels: rank-2 views of the same scalar type");
  static_assert(is_accessible_from_v<ExecutionSpace, typename Fine::memory_space> &&
                    is_accessible_from_v<ExecutionSpace, typename Image::memory_space>,
                "lensing::bin_subpixels: the views must be accessible from the execution space");
  detail::check_fine_and_image(grid, fine, image, where);
  int const k = grid.supersampling();
  Scalar const w = grid.pixel_scale() * grid.pixel_scale() / Scalar(k * k);
  parallel_for_pixels(
      "lensing::simulate::bin_subpixels", space, grid.ny(), grid.nx(), KOKKOS_LAMBDA(int iy, int ix) {
        Scalar s = 0;
        for (int sy = 0; sy < k; ++sy)
          for (int sx = 0; sx < k; ++sx)
            s += fine(iy * k + sy, ix * k + sx);
        image(iy, ix) = w * s;
      });
}

/// The adjoint of bin_subpixels: fine(jy, jx) = A_pix / k^2 image(jy / k, jx / k)
/// (each pixel's value spread over its k x k sub-pixels).  Asynchronous on `space`.
template <class ExecutionSpace, class Image, class Fine>
void spread_to_subpixels(ExecutionSpace const& space, PixelGrid<typename Fine::value_type> const& grid,
                         Image const& image, Fine const& fine) {
  using Scalar = typename Fine::value_type;
  constexpr char const* where = "lensing::spread_to_subpixels";
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::spread_to_subpixels: first argument must be a Kokkos execution space");
  static_assert(
      Fine::rank == 2 && Image::rank == 2 && std::is_same<typename Image::non_const_value_type, Scalar>::value,
      "lensing::spread_to_subpixels: rank-2 views of the same scalar type");
  static_assert(is_accessible_from_v<ExecutionSpace, typename Fine::memory_space> &&
                    is_accessible_from_v<ExecutionSpace, typename Image::memory_space>,
                "lensing::spread_to_subpixels: the views must be accessible from the execution space");
  detail::check_fine_and_image(grid, fine, image, where);
  int const k = grid.supersampling();
  Scalar const w = grid.pixel_scale() * grid.pixel_scale() / Scalar(k * k);
  parallel_for_pixels(
      "lensing::simulate::spread_to_subpixels", space, grid.fine_ny(), grid.fine_nx(),
      KOKKOS_LAMBDA(int jy, int jx) { fine(jy, jx) = w * image(jy / k, jx / k); });
}

/// Pixels worth supersampling: mask(iy, ix) = 1 where the image sampled at
/// pixel centres (`image`, e.g. rendered with k = 1) differs from the mean of
/// its 4 neighbours by more than threshold * max|image| (a discrete
/// curvature: large where the midpoint rule errs), and in the 8 pixels
/// around those; 0 elsewhere.  threshold >= 0 (0 flags every pixel with any
/// curvature).  Asynchronous on `space`; fences it once to get the maximum.
template <class ExecutionSpace, class Image, class Mask>
void select_supersampled_pixels(ExecutionSpace const& space, Image const& image,
                                typename Image::non_const_value_type threshold, Mask const& mask) {
  using Scalar = typename Image::non_const_value_type;
  constexpr char const* where = "lensing::select_supersampled_pixels";
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::select_supersampled_pixels: first argument must be a "
                "Kokkos execution space");
  static_assert(Image::rank == 2 && Mask::rank == 2, "lensing::select_supersampled_pixels: rank-2 views");
  check_nonnegative(threshold, where, "threshold");
  int const ny = int(image.extent(0)), nx = int(image.extent(1));
  check_argument(mask.extent(0) == image.extent(0) && mask.extent(1) == image.extent(1), where,
                 "mask must have the image's extents");
  Scalar peak = 0;
  Kokkos::parallel_reduce(
      "lensing::simulate::image_max", Kokkos::RangePolicy<ExecutionSpace>(space, 0, ny),
      KOKKOS_LAMBDA(int iy, Scalar& m) {
        for (int ix = 0; ix < nx; ++ix)
          m = math::max(m, math::fabs(image(iy, ix)));
      },
      Kokkos::Max<Scalar>(peak));
  space.fence();
  Scalar const tol = threshold * peak;
  auto const at = [=] KOKKOS_FUNCTION(int iy, int ix) {
    return image(iy < 0 ? 0 : (iy >= ny ? ny - 1 : iy), ix < 0 ? 0 : (ix >= nx ? nx - 1 : ix));
  };
  parallel_for_pixels(
      "lensing::simulate::select_supersampled", space, ny, nx, KOKKOS_LAMBDA(int iy, int ix) {
        bool flag = false;
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            int const cy = iy + dy, cx = ix + dx;
            if (cy < 0 || cy >= ny || cx < 0 || cx >= nx) continue;
            Scalar const lap =
                at(cy, cx) - Scalar(0.25) * (at(cy - 1, cx) + at(cy + 1, cx) + at(cy, cx - 1) + at(cy, cx + 1));
            flag = flag || math::fabs(lap) > tol;
          }
        mask(iy, ix) = flag ? 1 : 0;
      });
}

}  // namespace lensing

#endif  // LENSING_MODEL_RENDER_HPP
