#ifndef LENSING_RAYTRACE_HESSIAN_VJP_HPP
#define LENSING_RAYTRACE_HESSIAN_VJP_HPP

/// \file
/// Vector-Jacobian products of the Hessian-derived maps (raytrace/ray_shooting.hpp:
/// shear_map, magnification_map) back to the profile's parameters.
///
/// Each pixel contributes the profile's hessian_vjp(x, y, hbar, grad)
/// (profiles/detail/hessian_vjp.hpp: hbar is the cotangent of the stored
/// components H_xx, H_xy, H_yy), with hbar from the map's cotangent:
///   shear  gamma1 = (H_xx - H_yy)/2, gamma2 = H_xy:
///          hbar = (gbar1/2, gbar2, -gbar1/2);
///   magnification mu = 1/det(I - H), det = (1 - H_xx)(1 - H_yy) - H_xy^2,
///          d mu = -mu^2 d det, d det/dH_xx = -(1 - H_yy), d det/dH_yy = -(1 - H_xx),
///          d det/dH_xy = -2 H_xy, so
///          hbar = mubar mu^2 (1 - H_yy, 2 H_xy, 1 - H_xx).
/// Pixels exactly on a critical curve (det = 0, where the map is inf and the
/// derivative does not exist) contribute 0.  The sums are deterministic
/// (row partials summed in order, as the other map VJPs) and reuse their
/// MapVjpWorkspace.
///
/// Populations (profiles/population.hpp): population_hessian_map_vjp and
/// population_shear_map_vjp give one gradient row per member.  The
/// magnification couples every component of a lens through det(I - H), so
/// for a sum of lenses (e.g. LensSum of a macro model and a Population)
/// magnification_cotangent_map turns mubar into the Hessian cotangent maps of
/// the whole lens; hessian_map_vjp / population_hessian_map_vjp then give
/// each part's gradient.

#include <lensing/profiles/detail/hessian_vjp.hpp>
#include <lensing/profiles/population.hpp>
#include <lensing/raytrace/population_vjp.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

namespace lensing {

namespace detail {
template <class Profile>
constexpr bool check_hessian_vjp_profile() {
  static_assert(has_hessian_vjp_v<Profile>,
                "lensing: the profile must provide hessian_vjp(x, y, Hessian hbar, Scalar* grad) "
                "(profiles/detail/hessian_vjp.hpp)");
  return true;
}

template <class Profile, class View>
struct HessianVjpTerm {
  using Scalar = typename Profile::scalar_type;
  Profile profile;
  PixelGrid<Scalar> grid;
  View hxx, hxy, hyy;
  KOKKOS_FORCEINLINE_FUNCTION void operator()(int iy, int ix, Scalar* acc) const {
    profile.hessian_vjp(grid.fine_x(ix), grid.fine_y(iy), Hessian<Scalar>{hxx(iy, ix), hxy(iy, ix), hyy(iy, ix)}, acc);
  }
};
template <class Profile, class View>
struct ShearVjpTerm {
  using Scalar = typename Profile::scalar_type;
  Profile profile;
  PixelGrid<Scalar> grid;
  View g1, g2;
  KOKKOS_FORCEINLINE_FUNCTION void operator()(int iy, int ix, Scalar* acc) const {
    Scalar const h = Scalar(0.5) * g1(iy, ix);
    profile.hessian_vjp(grid.fine_x(ix), grid.fine_y(iy), Hessian<Scalar>{h, g2(iy, ix), -h}, acc);
  }
};
template <class Profile, class View>
struct MagnificationVjpTerm {
  using Scalar = typename Profile::scalar_type;
  Profile profile;
  PixelGrid<Scalar> grid;
  View mubar;
  KOKKOS_FORCEINLINE_FUNCTION void operator()(int iy, int ix, Scalar* acc) const {
    Scalar const x = grid.fine_x(ix), y = grid.fine_y(iy);
    Hessian<Scalar> const h = profile.hessian(x, y);
    Scalar const ax = Scalar(1) - h.xx, ay = Scalar(1) - h.yy;
    Scalar const det = ax * ay - h.xy * h.xy;
    Scalar const inv = det != Scalar(0) ? Scalar(1) / det : Scalar(0);
    Scalar const c = mubar(iy, ix) * inv * inv;  // mubar mu^2
    profile.hessian_vjp(x, y, Hessian<Scalar>{c * ay, Scalar(2) * c * h.xy, c * ax}, acc);
  }
};
}  // namespace detail

/// grad(k) = sum over fine pixels of hbar . d H / d theta_k, with hbar =
/// (hbar_xx, hbar_xy, hbar_yy) the cotangents of the stored Hessian
/// components (overwrites grad; deterministic whatever the thread count).
template <class ExecutionSpace, class Profile, class View, class MemorySpace>
void hessian_map_vjp(ExecutionSpace const& space, Profile const& profile,
                     PixelGrid<typename Profile::scalar_type> const& grid, View const& hbar_xx, View const& hbar_xy,
                     View const& hbar_yy, View1D<typename Profile::scalar_type, MemorySpace> const& grad,
                     MapVjpWorkspace<typename Profile::scalar_type, MemorySpace> const& work) {
  constexpr char const* where = "lensing::hessian_map_vjp";
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, hbar_xx, "hbar_xx");
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, hbar_xy, "hbar_xy");
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, hbar_yy, "hbar_yy");
  detail::check_vjp_args<ExecutionSpace, Profile>(where, grad, work, grid);
  check_model(profile);
  static_assert(detail::check_hessian_vjp_profile<Profile>(), "");
  detail::reduce_params_over_pixels<Profile::num_params>(
      "lensing::raytrace::hessian_map_vjp", space, grid.fine_ny(), grid.fine_nx(), work.partial, grad,
      detail::HessianVjpTerm<Profile, View>{profile, grid, hbar_xx, hbar_xy, hbar_yy});
}

/// grad(k) = sum over fine pixels of gbar1 d gamma1/d theta_k + gbar2 d gamma2/d theta_k
/// for the maps of shear_map (overwrites grad).
template <class ExecutionSpace, class Profile, class View, class MemorySpace>
void shear_map_vjp(ExecutionSpace const& space, Profile const& profile,
                   PixelGrid<typename Profile::scalar_type> const& grid, View const& gbar1, View const& gbar2,
                   View1D<typename Profile::scalar_type, MemorySpace> const& grad,
                   MapVjpWorkspace<typename Profile::scalar_type, MemorySpace> const& work) {
  constexpr char const* where = "lensing::shear_map_vjp";
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, gbar1, "gbar1");
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, gbar2, "gbar2");
  detail::check_vjp_args<ExecutionSpace, Profile>(where, grad, work, grid);
  check_model(profile);
  static_assert(detail::check_hessian_vjp_profile<Profile>(), "");
  detail::reduce_params_over_pixels<Profile::num_params>(
      "lensing::raytrace::shear_map_vjp", space, grid.fine_ny(), grid.fine_nx(), work.partial, grad,
      detail::ShearVjpTerm<Profile, View>{profile, grid, gbar1, gbar2});
}

/// grad(k) = sum over fine pixels of mubar d mu/d theta_k for the signed
/// magnification of magnification_map (overwrites grad; pixels with
/// det(I - H) = 0 exactly contribute 0).
template <class ExecutionSpace, class Profile, class View, class MemorySpace>
void magnification_map_vjp(ExecutionSpace const& space, Profile const& profile,
                           PixelGrid<typename Profile::scalar_type> const& grid, View const& mubar,
                           View1D<typename Profile::scalar_type, MemorySpace> const& grad,
                           MapVjpWorkspace<typename Profile::scalar_type, MemorySpace> const& work) {
  constexpr char const* where = "lensing::magnification_map_vjp";
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, mubar, "mubar");
  detail::check_vjp_args<ExecutionSpace, Profile>(where, grad, work, grid);
  check_model(profile);
  static_assert(detail::check_hessian_vjp_profile<Profile>(), "");
  detail::reduce_params_over_pixels<Profile::num_params>(
      "lensing::raytrace::magnification_map_vjp", space, grid.fine_ny(), grid.fine_nx(), work.partial, grad,
      detail::MagnificationVjpTerm<Profile, View>{profile, grid, mubar});
}

/// Hessian cotangents of the magnification: (hbar_xx, hbar_xy, hbar_yy) =
/// mubar mu^2 (1 - H_yy, 2 H_xy, 1 - H_xx) with H the Hessian of `lens` (any
/// lens: a profile, a Population, a LensSum), at every fine pixel; 0 where
/// det(I - H) = 0 exactly.
template <class ExecutionSpace, class Lens, class View, class OutView>
void magnification_cotangent_map(ExecutionSpace const& space, Lens const& lens,
                                 PixelGrid<typename Lens::scalar_type> const& grid, View const& mubar,
                                 OutView const& hbar_xx, OutView const& hbar_xy, OutView const& hbar_yy) {
  constexpr char const* where = "lensing::magnification_cotangent_map";
  using Scalar = typename Lens::scalar_type;
  detail::check_map_args<ExecutionSpace, Lens>(where, grid, mubar, "mubar");
  detail::check_map_args<ExecutionSpace, Lens>(where, grid, hbar_xx, "hbar_xx");
  detail::check_map_args<ExecutionSpace, Lens>(where, grid, hbar_xy, "hbar_xy");
  detail::check_map_args<ExecutionSpace, Lens>(where, grid, hbar_yy, "hbar_yy");
  check_model(lens);
  parallel_for_pixels(
      "lensing::raytrace::magnification_cotangent_map", space, grid.fine_ny(), grid.fine_nx(),
      KOKKOS_LAMBDA(int iy, int ix) {
        Hessian<Scalar> const h = lens.hessian(grid.fine_x(ix), grid.fine_y(iy));
        Scalar const ax = Scalar(1) - h.xx, ay = Scalar(1) - h.yy;
        Scalar const det = ax * ay - h.xy * h.xy;
        Scalar const inv = det != Scalar(0) ? Scalar(1) / det : Scalar(0);
        Scalar const c = mubar(iy, ix) * inv * inv;
        hbar_xx(iy, ix) = c * ay;
        hbar_xy(iy, ix) = Scalar(2) * c * h.xy;
        hbar_yy(iy, ix) = c * ax;
      });
}

/// grad(m, k) = sum over fine pixels of hbar . d H / d theta_{m,k} for member
/// m of the population (grad: (size, Profile::num_params), overwritten).
template <class ExecutionSpace, class Profile, class MemorySpace, class View, class Grad>
void population_hessian_map_vjp(ExecutionSpace const& space, Population<Profile, MemorySpace> const& pop,
                                PixelGrid<typename Profile::scalar_type> const& grid, View const& hbar_xx,
                                View const& hbar_xy, View const& hbar_yy, Grad const& grad) {
  constexpr char const* where = "lensing::population_hessian_map_vjp";
  using Scalar = typename Profile::scalar_type;
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, hbar_xx, "hbar_xx");
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, hbar_xy, "hbar_xy");
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, hbar_yy, "hbar_yy");
  static_assert(detail::check_hessian_vjp_profile<Profile>(), "");
  detail::population_map_vjp(
      where, space, pop, grid.fine_ny(), grid.fine_nx(), grad,
      KOKKOS_LAMBDA(Profile const& p, int iy, int ix, Scalar* acc) {
        p.hessian_vjp(grid.fine_x(ix), grid.fine_y(iy),
                      Hessian<Scalar>{hbar_xx(iy, ix), hbar_xy(iy, ix), hbar_yy(iy, ix)}, acc);
      });
}

/// grad(m, k) = sum over fine pixels of gbar1 d gamma1/d theta_{m,k} +
/// gbar2 d gamma2/d theta_{m,k} (the shear is additive over the lens's parts).
template <class ExecutionSpace, class Profile, class MemorySpace, class View, class Grad>
void population_shear_map_vjp(ExecutionSpace const& space, Population<Profile, MemorySpace> const& pop,
                              PixelGrid<typename Profile::scalar_type> const& grid, View const& gbar1,
                              View const& gbar2, Grad const& grad) {
  constexpr char const* where = "lensing::population_shear_map_vjp";
  using Scalar = typename Profile::scalar_type;
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, gbar1, "gbar1");
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, gbar2, "gbar2");
  static_assert(detail::check_hessian_vjp_profile<Profile>(), "");
  detail::population_map_vjp(
      where, space, pop, grid.fine_ny(), grid.fine_nx(), grad,
      KOKKOS_LAMBDA(Profile const& p, int iy, int ix, Scalar* acc) {
        Scalar const h = Scalar(0.5) * gbar1(iy, ix);
        p.hessian_vjp(grid.fine_x(ix), grid.fine_y(iy), Hessian<Scalar>{h, gbar2(iy, ix), -h}, acc);
      });
}

}  // namespace lensing

#endif  // LENSING_RAYTRACE_HESSIAN_VJP_HPP
