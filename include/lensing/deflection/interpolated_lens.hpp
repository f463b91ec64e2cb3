#ifndef LENSING_DEFLECTION_INTERPOLATED_LENS_HPP
#define LENSING_DEFLECTION_INTERPOLATED_LENS_HPP

/// \file
/// A lens given by maps (deflection, potential, convergence) on a pixel grid,
/// evaluated anywhere by bilinear interpolation: the convergence-map
/// deflections of ConvergenceDeflection used as a lens in the ray-shooting maps.

#include <lensing/deflection/convergence_deflection.hpp>
#include <lensing/profiles/mass_profile.hpp>

namespace lensing {

namespace detail {
// A row-major map by pointer (InterpolatedLensView): m(j, i) = data[j stride + i].
template <class Scalar>
struct MapPointer {
  Scalar const* data;
  long stride;
  KOKKOS_INLINE_FUNCTION Scalar operator()(int j, int i) const { return data[j * stride + i]; }
};

// The bilinear interpolation of InterpolatedLens over four maps of one grid,
// for any map type with m(j, i) (a View, a MapPointer).
template <class Scalar, class Map>
struct InterpolatedMaps {
  using scalar_type = Scalar;
  PixelGrid<Scalar> grid;
  Map ax, ay, psi, kappa;

  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Cell const c = cell(x, y);
    return {c.interpolate(ax), c.interpolate(ay)};
  }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const { return cell(x, y).interpolate(psi); }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const { return cell(x, y).interpolate(kappa); }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const {
    Cell const c = cell(x, y);
    Scalar const inv = Scalar(1) / grid.pixel_scale();
    Scalar const xy = Scalar(0.5) * (c.d_dv(ax) + c.d_du(ay)) * inv;
    return {c.d_du(ax) * inv, xy, c.d_dv(ay) * inv};
  }

  // The pixel cell containing (x, y): lower-left index and weights (clamped).
  struct Cell {
    int i0, j0;
    Scalar tu, tv;
    KOKKOS_INLINE_FUNCTION Scalar interpolate(Map const& m) const {
      return (Scalar(1) - tv) * ((Scalar(1) - tu) * m(j0, i0) + tu * m(j0, i0 + 1)) +
             tv * ((Scalar(1) - tu) * m(j0 + 1, i0) + tu * m(j0 + 1, i0 + 1));
    }
    KOKKOS_INLINE_FUNCTION Scalar d_du(Map const& m) const {
      return (Scalar(1) - tv) * (m(j0, i0 + 1) - m(j0, i0)) + tv * (m(j0 + 1, i0 + 1) - m(j0 + 1, i0));
    }
    KOKKOS_INLINE_FUNCTION Scalar d_dv(Map const& m) const {
      return (Scalar(1) - tu) * (m(j0 + 1, i0) - m(j0, i0)) + tu * (m(j0 + 1, i0 + 1) - m(j0, i0 + 1));
    }
  };
  KOKKOS_INLINE_FUNCTION Cell cell(Scalar x, Scalar y) const {
    Vec2<Scalar> const p = grid.to_pixel(x, y);
    Scalar const u = math::clamp(p.x, Scalar(0), Scalar(grid.nx() - 1));
    Scalar const v = math::clamp(p.y, Scalar(0), Scalar(grid.ny() - 1));
    int const i0 = math::min(static_cast<int>(u), grid.nx() - 2);
    int const j0 = math::min(static_cast<int>(v), grid.ny() - 2);
    return {i0, j0, u - Scalar(i0), v - Scalar(j0)};
  }
};
}  // namespace detail

/// A non-owning, trivially copyable view of an InterpolatedLens's maps (the
/// same bilinear interpolation, by pointer): a lens without parameters that
/// can sit in a per-image model (a Simulator's LensModel, alone, in a
/// LensSum with analytic profiles, or as a plane of a MultiPlaneLens).  Valid
/// while the InterpolatedLens it came from (its Views) lives; kernels must
/// run where the maps' memory space is accessible.
template <class Scalar>
struct InterpolatedLensView : detail::InterpolatedMaps<Scalar, detail::MapPointer<Scalar>> {
  /// Nothing to check: the maps were checked when the InterpolatedLens was built.
  void check() const {}
};

/// Lens from maps on a PixelGrid, bilinearly interpolated between pixel centres.
///
/// With (u, v) the fractional pixel coordinates of (x, y) (PixelGrid::to_pixel)
/// and f one of alpha_x, alpha_y, psi, kappa:
///   f(x, y) = bilinear interpolation of the four surrounding pixel centres;
/// the Hessian is the derivative of the bilinear deflection (f_xy averaged
/// over d alpha_x/dy and d alpha_y/dx so that it stays symmetric).  Outside the
/// span of pixel centres the maps are clamped to their edge values (the lens
/// knows nothing beyond its maps).  Provides deflection, potential, convergence
/// and hessian (a lens for the forward maps of raytrace/ray_shooting.hpp, not a
/// parametric MassProfile).  Holds Views: copy it into kernels by value; for a
/// per-image model (which must be trivially copyable) use view().
template <class Scalar, class MemorySpace>
class InterpolatedLens {
 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;
  using Map = View2D<Scalar, MemorySpace>;

  InterpolatedLens() = default;
  /// From maps (ny, nx) on `grid`'s pixel centres (supersampling ignored).
  InterpolatedLens(PixelGrid<Scalar> const& grid, Map alpha_x, Map alpha_y, Map psi, Map kappa)
      : m_maps{grid, alpha_x, alpha_y, psi, kappa} {
    constexpr char const* where = "lensing::InterpolatedLens";
    char const* const names[] = {"alpha_x", "alpha_y", "psi", "kappa"};
    Map const* const maps[] = {&m_maps.ax, &m_maps.ay, &m_maps.psi, &m_maps.kappa};
    for (int i = 0; i < 4; ++i)
      check_extents(*maps[i], where, names[i], "(ny, nx)", grid.ny(), grid.nx());
    check_argument(grid.nx() >= 2 && grid.ny() >= 2, where, "maps must be at least 2 x 2 pixels");
  }

  /// Deflection and potential of a convergence map (ny, nx) on `grid`, by FFT
  /// (ConvergenceDeflection), as an interpolated lens.  The kappa map is kept.
  template <class ExecutionSpace>
  static InterpolatedLens from_convergence(ExecutionSpace const& space, PixelGrid<Scalar> const& grid, Map kappa) {
    ConvergenceDeflection<Scalar, MemorySpace> fft(space, grid);
    constexpr char const* where = "lensing::InterpolatedLens::from_convergence";
    auto const ax = allocate_view<Map>(where, "lensing::InterpolatedLens::alpha_x", true, grid.ny(), grid.nx());
    auto const ay = allocate_view<Map>(where, "lensing::InterpolatedLens::alpha_y", true, grid.ny(), grid.nx());
    auto const psi = allocate_view<Map>(where, "lensing::InterpolatedLens::psi", true, grid.ny(), grid.nx());
    fft.deflection(space, kappa, ax, ay);
    fft.potential(space, kappa, psi);
    return InterpolatedLens(grid, ax, ay, psi, kappa);
  }

  PixelGrid<Scalar> const& grid() const { return m_maps.grid; }

  /// The trivially copyable view of these maps (InterpolatedLensView: the
  /// same values at every point; valid while this lens's Views live).
  InterpolatedLensView<Scalar> view() const {
    auto const ptr = [](Map const& m) { return detail::MapPointer<Scalar>{m.data(), long(m.stride(0))}; };
    InterpolatedLensView<Scalar> v;
    v.grid = m_maps.grid;
    v.ax = ptr(m_maps.ax);
    v.ay = ptr(m_maps.ay);
    v.psi = ptr(m_maps.psi);
    v.kappa = ptr(m_maps.kappa);
    return v;
  }

  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const { return m_maps.deflection(x, y); }
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const { return m_maps.potential(x, y); }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const { return m_maps.convergence(x, y); }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const { return m_maps.hessian(x, y); }

 private:
  detail::InterpolatedMaps<Scalar, Map> m_maps;
};

}  // namespace lensing

#endif  // LENSING_DEFLECTION_INTERPOLATED_LENS_HPP
