#ifndef LENSING_SOURCES_PIXELATED_HPP
#define LENSING_SOURCES_PIXELATED_HPP

/// \file
/// A source given as pixel values on its own PixelGrid, interpolated
/// bilinearly or bicubically, with the adjoint (scatter) of the
/// interpolation for gradients with respect to the pixel values.

#include <lensing/core/errors.hpp>
#include <lensing/core/parallel.hpp>
#include <lensing/core/views.hpp>
#include <lensing/geometry/pixel_grid.hpp>
#include <lensing/sources/light_profile.hpp>

#include <string>
#include <type_traits>

namespace lensing {

/// Interpolation of a PixelatedSource.
enum class Interpolation {
  bilinear,  ///< 2 x 2 pixels, continuous, piecewise bilinear
  bicubic    ///< 4 x 4 pixels, Keys (1981) cubic convolution (a = -1/2, Catmull-Rom): C1, exact for quadratics
};

namespace detail {
// 1-D interpolation weights at fractional offset t in [0, 1) and their
// t-derivatives: bilinear taps at -0 .. 1 (from floor), bicubic at -1 .. 2.
template <class Scalar>
KOKKOS_FORCEINLINE_FUNCTION void cubic_weights(Scalar t, Scalar* w, Scalar* dw) {
  Scalar const t2 = t * t, t3 = t2 * t;
  w[0] = Scalar(0.5) * (-t3 + Scalar(2) * t2 - t);
  w[1] = Scalar(0.5) * (Scalar(3) * t3 - Scalar(5) * t2 + Scalar(2));
  w[2] = Scalar(0.5) * (Scalar(-3) * t3 + Scalar(4) * t2 + t);
  w[3] = Scalar(0.5) * (t3 - t2);
  dw[0] = Scalar(0.5) * (Scalar(-3) * t2 + Scalar(4) * t - Scalar(1));
  dw[1] = Scalar(0.5) * (Scalar(9) * t2 - Scalar(10) * t);
  dw[2] = Scalar(0.5) * (Scalar(-9) * t2 + Scalar(8) * t + Scalar(1));
  dw[3] = Scalar(0.5) * (Scalar(3) * t2 - Scalar(2) * t);
}
}  // namespace detail

/// A pixelated source: surface brightness values s(iy, ix) at the pixel
/// centres of its own PixelGrid (supersampling ignored), interpolated
///   I(x, y) = sum_{p, q} w_p(u_x) w_q(u_y) s(j_y + q, j_x + p),
/// (u_x, u_y) the fractional pixel coordinates of (x, y) (PixelGrid::to_pixel),
/// with bilinear or bicubic (Keys 1981, IEEE TASSP 29, 1153; a = -1/2)
/// weights.  Pixels outside the grid count as 0, so the source fades to 0
/// over one (bilinear) or two (bicubic) pixels beyond its border.  Units:
/// those of s (surface brightness, per arcsec^2).
///
/// A LightProfile with no parameters of its own (num_params = 0): it renders
/// and lenses like any profile, and its position cotangent carries gradients
/// to the lens; the gradient with respect to the pixel values is the
/// adjoint of the interpolation, pixelated_source_adjoint() below.
/// Trivially copyable: it holds a pointer to the values (which must outlive
/// it and be accessible where it is evaluated) — build it with
/// make_pixelated_source(view, grid, interpolation).  unpack() returns an
/// empty source (no pixels), as a pixel array is not part of a flat
/// parameter vector.
template <class Scalar>
struct PixelatedSource {
  using scalar_type = Scalar;
  static constexpr int num_params = 0;
  static constexpr char const* param_names[1] = {""};
  Scalar const* values = nullptr;  ///< row-major (ny, nx), contiguous
  PixelGrid<Scalar> grid;
  Interpolation interpolation = Interpolation::bilinear;

  KOKKOS_INLINE_FUNCTION Scalar value(int iy, int ix) const {
    return (iy >= 0 && iy < grid.ny() && ix >= 0 && ix < grid.nx()) ? values[long(iy) * grid.nx() + ix] : Scalar(0);
  }

  /// Calls f(iy, ix, weight, dweight_dx, dweight_dy) for every pixel that
  /// contributes to I(x, y) (derivatives in arcsec^-1).
  template <class F>
  KOKKOS_INLINE_FUNCTION void for_each_weight(Scalar x, Scalar y, F&& f) const {
    Vec2<Scalar> const u = grid.to_pixel(x, y);
    // Far outside: clamp before the integer conversion (no overflow).
    Scalar const big = Scalar(16777216);
    Scalar const ux = math::clamp(u.x, -big, big), uy = math::clamp(u.y, -big, big);
    Scalar const fx = math::floor(ux), fy = math::floor(uy);
    int const jx = int(fx), jy = int(fy);
    Scalar const tx = ux - fx, ty = uy - fy, inv = Scalar(1) / grid.pixel_scale();
    if (interpolation == Interpolation::bilinear) {
      Scalar const wx[2] = {Scalar(1) - tx, tx}, wy[2] = {Scalar(1) - ty, ty};
      Scalar const dx[2] = {-inv, inv}, dy[2] = {-inv, inv};
      for (int q = 0; q < 2; ++q)
        for (int p = 0; p < 2; ++p)
          f(jy + q, jx + p, wx[p] * wy[q], dx[p] * wy[q], wx[p] * dy[q]);
    } else {
      Scalar wx[4], dwx[4], wy[4], dwy[4];
      detail::cubic_weights(tx, wx, dwx);
      detail::cubic_weights(ty, wy, dwy);
      for (int q = 0; q < 4; ++q)
        for (int p = 0; p < 4; ++p)
          f(jy + q - 1, jx + p - 1, wx[p] * wy[q], inv * dwx[p] * wy[q], inv * wx[p] * dwy[q]);
    }
  }

  KOKKOS_INLINE_FUNCTION Scalar surface_brightness(Scalar x, Scalar y) const {
    Scalar s = 0;
    for_each_weight(x, y, [&](int iy, int ix, Scalar w, Scalar, Scalar) { s += w * value(iy, ix); });
    return s;
  }
  /// Position cotangent g dI/d(x, y) (no parameters to accumulate).
  template <class Grad>
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> surface_brightness_vjp(Scalar x, Scalar y, Scalar g, Grad) const {
    Vec2<Scalar> d{Scalar(0), Scalar(0)};
    for_each_weight(x, y, [&](int iy, int ix, Scalar, Scalar wx, Scalar wy) {
      Scalar const v = value(iy, ix);
      d.x += wx * v;
      d.y += wy * v;
    });
    return {g * d.x, g * d.y};
  }
  KOKKOS_INLINE_FUNCTION void pack(Scalar*) const {}
  KOKKOS_INLINE_FUNCTION static PixelatedSource unpack(Scalar const*) { return {}; }
  /// Host: throws unless the source has pixel values.
  void check() const {
    check_argument(values != nullptr && grid.nx() > 0, "lensing::PixelatedSource", "no pixel values (empty source)");
  }
};

/// A PixelatedSource over `values` (ny, nx) of `grid`, in its memory space.
template <class Scalar, class... Props>
PixelatedSource<Scalar> make_pixelated_source(Kokkos::View<Scalar**, Props...> const& values,
                                              PixelGrid<Scalar> const& grid,
                                              Interpolation interpolation = Interpolation::bilinear) {
  constexpr char const* where = "lensing::make_pixelated_source";
  check_extents(values, where, "values", "(ny, nx) of the source grid", grid.ny(), grid.nx());
  check_argument(values.span_is_contiguous() && (values.extent(1) <= 1 || values.stride(1) == 1), where,
                 "values must be a contiguous row-major view");
  return {values.data(), grid, interpolation};
}

/// Adjoint of the interpolation at the points (beta_x, beta_y):
///   grad(iy, ix) = sum_points gbar(point) * weight of source pixel (iy, ix),
/// i.e. d(sum gbar * I(beta)) / d s(iy, ix) (overwrites grad, the shape of
/// the source grid).  Scatter with atomic additions: the result can differ
/// between runs in the last bits (summation order).  Points and gbar are
/// rank-2 views of one shape (e.g. the ray-shooting maps of a fine grid).
template <class ExecutionSpace, class Scalar, class PView, class GView, class Out>
void pixelated_source_adjoint(ExecutionSpace const& space, PixelatedSource<Scalar> const& source, PView const& beta_x,
                              PView const& beta_y, GView const& gbar, Out const& grad) {
  constexpr char const* where = "lensing::pixelated_source_adjoint";
  static_assert(is_execution_space_v<ExecutionSpace>,
                "lensing::pixelated_source_adjoint: first argument must be a "
                "Kokkos execution space");
  static_assert(PView::rank == 2 && GView::rank == 2 && Out::rank == 2,
                "lensing::pixelated_source_adjoint: views are rank 2");
  static_assert(std::is_same<typename Out::value_type, Scalar>::value,
                "lensing::pixelated_source_adjoint: grad must hold the source's scalar type");
  check_argument(beta_y.extent(0) == beta_x.extent(0) && beta_y.extent(1) == beta_x.extent(1) &&
                     gbar.extent(0) == beta_x.extent(0) && gbar.extent(1) == beta_x.extent(1),
                 where, "beta_x, beta_y and gbar must have the same extents");
  check_argument(grad.extent(0) == size_t(source.grid.ny()) && grad.extent(1) == size_t(source.grid.nx()), where,
                 "grad must have the extents (ny, nx) of the source grid");
  Kokkos::deep_copy(space, grad, Scalar(0));
  int const ny = source.grid.ny(), nx = source.grid.nx();
  parallel_for_pixels(
      "lensing::sources::pixelated_adjoint", space, int(beta_x.extent(0)), int(beta_x.extent(1)),
      KOKKOS_LAMBDA(int jy, int jx) {
        Scalar const g = gbar(jy, jx);
        source.for_each_weight(beta_x(jy, jx), beta_y(jy, jx), [&](int iy, int ix, Scalar w, Scalar, Scalar) {
          if (iy >= 0 && iy < ny && ix >= 0 && ix < nx) Kokkos::atomic_add(&grad(iy, ix), g * w);
        });
      });
}

}  // namespace lensing

#endif  // LENSING_SOURCES_PIXELATED_HPP
