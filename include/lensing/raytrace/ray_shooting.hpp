#ifndef LENSING_RAYTRACE_RAY_SHOOTING_HPP
#define LENSING_RAYTRACE_RAY_SHOOTING_HPP

/// \file
/// Lens maps over a PixelGrid on any execution space: deflection field, ray
/// shooting beta = x - alpha(x), convergence, shear and magnification, and
/// the vector-Jacobian products of the deflection, ray-shooting and
/// convergence maps back to the profile's parameters.
///
/// Maps live on the grid's fine (supersampled) pixels: every output view has
/// extents (grid.fine_ny(), grid.fine_nx()), row-major (iy, ix).  All calls are
/// asynchronous on `space`.

#include <lensing/core/parallel.hpp>
#include <lensing/core/reduce_params.hpp>
#include <lensing/core/views.hpp>
#include <lensing/geometry/pixel_grid.hpp>
#include <lensing/profiles/mass_profile.hpp>

#include <string>
#include <type_traits>

namespace lensing {

namespace detail {
template <class ExecutionSpace, class Profile, class View>
void check_map_args(char const* where, PixelGrid<typename Profile::scalar_type> const& grid, View const& v,
                    char const* name) {
  static_assert(is_execution_space_v<ExecutionSpace>, "lensing: first argument must be a Kokkos execution space");
  static_assert(is_lens_v<Profile>,
                "lensing: the lens must provide deflection, convergence and hessian (profiles/mass_profile.hpp)");
  static_assert(View::rank == 2, "lensing: maps are rank-2 views (iy, ix)");
  static_assert(std::is_same<typename View::value_type, typename Profile::scalar_type>::value ||
                    std::is_same<typename View::value_type, typename Profile::scalar_type const>::value,
                "lensing: map views must hold the profile's scalar type");
  static_assert(is_accessible_from_v<ExecutionSpace, typename View::memory_space>,
                "lensing: map views must be accessible from the execution space");
  check_extents(v, where, name, "(fine_ny, fine_nx)", grid.fine_ny(), grid.fine_nx());
}
}  // namespace detail

namespace detail {
// Host row loop over batches of deflection_batch_capacity pixels, for lenses
// that provide deflection_batch: out(iy, ix, x, y, ax, ay) stores one pixel.
template <class Lens, class Out>
struct BatchedDeflectionRows {
  using Scalar = typename Lens::scalar_type;
  Lens lens;
  PixelGrid<Scalar> grid;
  Out out;
  LENSING_ROW_FUNCTION void operator()(int iy) const {
    Scalar x[deflection_batch_capacity], y[deflection_batch_capacity], ax[deflection_batch_capacity],
        ay[deflection_batch_capacity];
    int const nx = grid.fine_nx();
    Scalar const yy = grid.fine_y(iy);
    for (int i0 = 0; i0 < nx; i0 += deflection_batch_capacity) {
      int const m = math::min(deflection_batch_capacity, nx - i0);
      for (int i = 0; i < m; ++i) {
        x[i] = grid.fine_x(i0 + i);
        y[i] = yy;
      }
      lens.deflection_batch(m, x, y, ax, ay);
      for (int i = 0; i < m; ++i)
        out(iy, i0 + i, x[i], yy, ax[i], ay[i]);
    }
  }
};
// Per-pixel stores.  The 6-argument form takes the deflection computed by
// BatchedDeflectionRows; the lens-first form evaluates the lens itself (for
// LocalLensRows).
template <class View>
struct StoreDeflection {
  View ax, ay;
  template <class Scalar>
  KOKKOS_INLINE_FUNCTION void operator()(int iy, int ix, Scalar, Scalar, Scalar a, Scalar b) const {
    ax(iy, ix) = a;
    ay(iy, ix) = b;
  }
  template <class Lens, class Scalar>
  KOKKOS_FORCEINLINE_FUNCTION void operator()(Lens const& l, int iy, int ix, Scalar x, Scalar y) const {
    auto const a = l.deflection(x, y);
    ax(iy, ix) = a.x;
    ay(iy, ix) = a.y;
  }
};
template <class View>
struct StoreRay {
  View bx, by;
  template <class Scalar>
  KOKKOS_INLINE_FUNCTION void operator()(int iy, int ix, Scalar x, Scalar y, Scalar a, Scalar b) const {
    bx(iy, ix) = x - a;
    by(iy, ix) = y - b;
  }
  template <class Lens, class Scalar>
  KOKKOS_FORCEINLINE_FUNCTION void operator()(Lens const& l, int iy, int ix, Scalar x, Scalar y) const {
    auto const a = l.deflection(x, y);
    bx(iy, ix) = x - a.x;
    by(iy, ix) = y - a.y;
  }
};
template <class View>
struct StoreConvergence {
  View kappa;
  template <class Lens, class Scalar>
  KOKKOS_FORCEINLINE_FUNCTION void operator()(Lens const& l, int iy, int ix, Scalar x, Scalar y) const {
    kappa(iy, ix) = l.convergence(x, y);
  }
};
template <class View>
struct StoreShear {
  View gamma1, gamma2;
  template <class Lens, class Scalar>
  KOKKOS_FORCEINLINE_FUNCTION void operator()(Lens const& l, int iy, int ix, Scalar x, Scalar y) const {
    auto const h = l.hessian(x, y);
    gamma1(iy, ix) = Scalar(0.5) * (h.xx - h.yy);
    gamma2(iy, ix) = h.xy;
  }
};
template <class View>
struct StoreMagnification {
  View mu;
  template <class Lens, class Scalar>
  KOKKOS_FORCEINLINE_FUNCTION void operator()(Lens const& l, int iy, int ix, Scalar x, Scalar y) const {
    mu(iy, ix) = l.hessian(x, y).magnification();
  }
};
template <class ExecutionSpace, class Lens>
constexpr bool use_batched_rows_v = is_host_space_v<ExecutionSpace>&& has_deflection_batch_v<Lens>;

// Host row loop for trivially copyable lenses: op(lens, iy, ix, x, y)
// evaluates and stores one pixel.  The lens and the grid are copied into
// locals once per row, so that the compiler knows the stores to the output
// rows cannot alias their parameters and keeps the per-profile constants (the
// SIE's frame, sqrt(q), ...) out of the pixel loop.  Reading them from the
// functor instead, the OpenMP backend (which reaches the functor through the
// pointer it passes to its threads) recomputed them at every pixel: the SIE +
// shear deflection map ran 1.8x slower than on Serial at one thread, its
// convergence map 3.1x, shear and magnification maps 2.1x
// (benchmarks/README.md).  operator(): see LENSING_ROW_FUNCTION.
template <class Lens, class Op>
struct LocalLensRows {
  using Scalar = typename Lens::scalar_type;
  Lens lens;
  PixelGrid<Scalar> grid;
  Op op;
  LENSING_ROW_FUNCTION void operator()(int iy) const {
    Lens const l = lens;
    PixelGrid<Scalar> const g = grid;
    int const nx = g.fine_nx();
    Scalar const y = g.fine_y(iy);
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
    for (int ix = 0; ix < nx; ++ix)
      op(l, iy, ix, g.fine_x(ix), y);
  }
};
template <class ExecutionSpace, class Lens>
constexpr bool use_local_rows_v = is_host_space_v<ExecutionSpace>&& std::is_trivially_copyable<Lens>::value;

// Nominal work per pixel of a map of Lens, for the small-map fallback:
// work_ns::deflection_pixel per component; lenses that hold Views (a
// Population, sized at run time) count as too much work to run on the caller.
template <class L, class = void>
struct lens_components : std::integral_constant<int, 1> {};
template <class L>
struct lens_components<L, std::void_t<decltype(L::num_components)>> : std::integral_constant<int, L::num_components> {};
template <class Lens>
constexpr double map_pixel_ns() {
  return std::is_trivially_copyable<Lens>::value ? work_ns::deflection_pixel * lens_components<Lens>::value : 1e9;
}

// Host rows of a map: on the calling thread when the map is small
// (core/parallel.hpp), else one row per work item.
template <class ExecutionSpace, class Rows>
void launch_map_rows(char const* name, ExecutionSpace const& space, int ny, double row_ns, Rows const& rows) {
  if (!run_small_on_caller(space, ny, row_ns, rows))
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecutionSpace>(space, 0, ny), rows);
}

// A map of op over the fine grid, on the lens prepared once
// (detail::prepare: an elliptical profile's frame and kernel constants out of
// the pixel loop): LocalLensRows on the host for trivially copyable lenses,
// else one work item per pixel.
template <class ExecutionSpace, class Profile, class Op>
void lens_map(char const* name, ExecutionSpace const& space, Profile const& profile,
              PixelGrid<typename Profile::scalar_type> const& grid, Op const& op) {
  auto const lens = prepare(profile);
  using Lens = std::remove_cv_t<decltype(lens)>;
  double const pixel_ns = map_pixel_ns<Profile>();
  if constexpr (use_local_rows_v<ExecutionSpace, Lens>) {
    launch_map_rows(name, space, grid.fine_ny(), double(grid.fine_nx()) * pixel_ns,
                    LocalLensRows<Lens, Op>{lens, grid, op});
  } else {
    parallel_for_pixels(
        name, space, grid.fine_ny(), grid.fine_nx(),
        KOKKOS_LAMBDA(int iy, int ix) { op(lens, iy, ix, grid.fine_x(ix), grid.fine_y(iy)); }, pixel_ns);
  }
}
}  // namespace detail

/// alpha_x, alpha_y = deflection of `profile` at every fine pixel [arcsec].
template <class ExecutionSpace, class Profile, class View>
void deflection_map(ExecutionSpace const& space, Profile const& profile,
                    PixelGrid<typename Profile::scalar_type> const& grid, View const& alpha_x, View const& alpha_y) {
  constexpr char const* where = "lensing::deflection_map";
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, alpha_x, "alpha_x");
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, alpha_y, "alpha_y");
  check_model(profile);
  detail::StoreDeflection<View> const store{alpha_x, alpha_y};
  if constexpr (detail::use_batched_rows_v<ExecutionSpace, Profile>) {
    detail::launch_map_rows(
        "lensing::raytrace::deflection_map", space, grid.fine_ny(),
        double(grid.fine_nx()) * detail::map_pixel_ns<Profile>(),
        detail::BatchedDeflectionRows<Profile, detail::StoreDeflection<View>>{profile, grid, store});
  } else {
    detail::lens_map("lensing::raytrace::deflection_map", space, profile, grid, store);
  }
}

/// beta = x - alpha(x) at every fine pixel: where each ray lands on the source plane.
template <class ExecutionSpace, class Profile, class View>
void ray_shoot(ExecutionSpace const& space, Profile const& profile,
               PixelGrid<typename Profile::scalar_type> const& grid, View const& beta_x, View const& beta_y) {
  constexpr char const* where = "lensing::ray_shoot";
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, beta_x, "beta_x");
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, beta_y, "beta_y");
  check_model(profile);
  detail::StoreRay<View> const store{beta_x, beta_y};
  if constexpr (detail::use_batched_rows_v<ExecutionSpace, Profile>) {
    detail::launch_map_rows("lensing::raytrace::ray_shoot", space, grid.fine_ny(),
                            double(grid.fine_nx()) * detail::map_pixel_ns<Profile>(),
                            detail::BatchedDeflectionRows<Profile, detail::StoreRay<View>>{profile, grid, store});
  } else {
    detail::lens_map("lensing::raytrace::ray_shoot", space, profile, grid, store);
  }
}

/// kappa at every fine pixel.
template <class ExecutionSpace, class Profile, class View>
void convergence_map(ExecutionSpace const& space, Profile const& profile,
                     PixelGrid<typename Profile::scalar_type> const& grid, View const& kappa) {
  detail::check_map_args<ExecutionSpace, Profile>("lensing::convergence_map", grid, kappa, "kappa");
  check_model(profile);
  detail::lens_map("lensing::raytrace::convergence_map", space, profile, grid, detail::StoreConvergence<View>{kappa});
}

/// Shear gamma1 = (f_xx - f_yy)/2, gamma2 = f_xy at every fine pixel.
template <class ExecutionSpace, class Profile, class View>
void shear_map(ExecutionSpace const& space, Profile const& profile,
               PixelGrid<typename Profile::scalar_type> const& grid, View const& gamma1, View const& gamma2) {
  constexpr char const* where = "lensing::shear_map";
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, gamma1, "gamma1");
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, gamma2, "gamma2");
  check_model(profile);
  detail::lens_map("lensing::raytrace::shear_map", space, profile, grid, detail::StoreShear<View>{gamma1, gamma2});
}

/// Signed magnification mu = 1/det(I - H) at every fine pixel (inf on
/// critical curves, where det = 0 exactly).
template <class ExecutionSpace, class Profile, class View>
void magnification_map(ExecutionSpace const& space, Profile const& profile,
                       PixelGrid<typename Profile::scalar_type> const& grid, View const& mu) {
  detail::check_map_args<ExecutionSpace, Profile>("lensing::magnification_map", grid, mu, "mu");
  check_model(profile);
  detail::lens_map("lensing::raytrace::magnification_map", space, profile, grid, detail::StoreMagnification<View>{mu});
}

//----------------------------------------------------------------------------
// Vector-Jacobian products back to the profile parameters.

/// Reusable buffers for the map VJPs of one profile type on one grid.
template <class Scalar, class MemorySpace>
struct MapVjpWorkspace {
  View2D<Scalar, MemorySpace> partial;
  MapVjpWorkspace() = default;
  MapVjpWorkspace(PixelGrid<Scalar> const& grid, int num_params)
      : partial("lensing::MapVjpWorkspace", grid.fine_ny(), num_params) {}
};

namespace detail {
template <class ExecutionSpace, class Profile, class Grad, class Work>
void check_vjp_args(char const* where, Grad const& grad, Work const& work,
                    PixelGrid<typename Profile::scalar_type> const& grid) {
  static_assert(is_mass_profile_v<Profile>,
                "lensing: parameter VJPs need a MassProfile (for a Population see raytrace/population_vjp.hpp)");
  static_assert(Grad::rank == 1, "lensing: the gradient is a rank-1 view of length num_params");
  check_argument(grad.extent(0) == size_t(Profile::num_params), where,
                 "grad must have length num_params = " + std::to_string(Profile::num_params));
  check_argument(
      work.partial.extent(0) >= size_t(grid.fine_ny()) && work.partial.extent(1) == size_t(Profile::num_params), where,
      "workspace was made for another grid or profile");
}
}  // namespace detail

namespace detail {
// Per-pixel VJP terms as functors with forced inlining, so the row loop of
// reduce_params_over_pixels sees the whole computation and vectorises it.
template <class Profile, class View>
struct DeflectionVjpTerm {
  using Scalar = typename Profile::scalar_type;
  Profile profile;
  PixelGrid<Scalar> grid;
  View gx, gy;
  Scalar sign;
  KOKKOS_FORCEINLINE_FUNCTION void operator()(int iy, int ix, Scalar* acc) const {
    profile.deflection_vjp(grid.fine_x(ix), grid.fine_y(iy), Vec2<Scalar>{sign * gx(iy, ix), sign * gy(iy, ix)}, acc);
  }
  // Branch-free form for rows where the profile is regular (reduce_params.hpp).
  template <class P = Profile, std::enable_if_t<has_regular_vjp<P>::value, int> = 0>
  KOKKOS_FORCEINLINE_FUNCTION bool is_regular() const {
    return profile.vjp_is_regular();
  }
  template <class P = Profile, std::enable_if_t<has_regular_vjp<P>::value, int> = 0>
  KOKKOS_FORCEINLINE_FUNCTION void regular(int iy, int ix, Scalar* acc) const {
    profile.deflection_vjp_regular(grid.fine_x(ix), grid.fine_y(iy), Vec2<Scalar>{sign * gx(iy, ix), sign * gy(iy, ix)},
                                   acc);
  }
  // Host block form for profiles with deflection_vjp_batch (reduce_params.hpp).
  template <class P = Profile, std::enable_if_t<has_deflection_vjp_batch_v<P>, int> = 0>
  KOKKOS_INLINE_FUNCTION void block(int iy, int ix0, int m, Scalar* grad, int stride) const {
    Scalar x[deflection_batch_capacity], y[deflection_batch_capacity], wx[deflection_batch_capacity],
        wy[deflection_batch_capacity];
    Scalar const yy = grid.fine_y(iy);
    for (int i = 0; i < m; ++i) {
      x[i] = grid.fine_x(ix0 + i);
      y[i] = yy;
      wx[i] = sign * gx(iy, ix0 + i);
      wy[i] = sign * gy(iy, ix0 + i);
    }
    profile.deflection_vjp_batch(m, x, y, wx, wy, grad, stride);
  }
};
template <class Profile, class View>
struct ConvergenceVjpTerm {
  using Scalar = typename Profile::scalar_type;
  Profile profile;
  PixelGrid<Scalar> grid;
  View g;
  KOKKOS_FORCEINLINE_FUNCTION void operator()(int iy, int ix, Scalar* acc) const {
    profile.convergence_vjp(grid.fine_x(ix), grid.fine_y(iy), g(iy, ix), acc);
  }
  template <class P = Profile, std::enable_if_t<has_regular_vjp<P>::value, int> = 0>
  KOKKOS_FORCEINLINE_FUNCTION bool is_regular() const {
    return profile.vjp_is_regular();
  }
  template <class P = Profile, std::enable_if_t<has_regular_vjp<P>::value, int> = 0>
  KOKKOS_FORCEINLINE_FUNCTION void regular(int iy, int ix, Scalar* acc) const {
    profile.convergence_vjp_regular(grid.fine_x(ix), grid.fine_y(iy), g(iy, ix), acc);
  }
};
}  // namespace detail

/// grad(k) = sum over fine pixels of (abar_x, abar_y) . d alpha / d theta_k
/// (overwrites grad; deterministic whatever the thread count).
template <class ExecutionSpace, class Profile, class View, class MemorySpace>
void deflection_map_vjp(ExecutionSpace const& space, Profile const& profile,
                        PixelGrid<typename Profile::scalar_type> const& grid, View const& abar_x, View const& abar_y,
                        View1D<typename Profile::scalar_type, MemorySpace> const& grad,
                        MapVjpWorkspace<typename Profile::scalar_type, MemorySpace> const& work) {
  constexpr char const* where = "lensing::deflection_map_vjp";
  using Scalar = typename Profile::scalar_type;
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, abar_x, "abar_x");
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, abar_y, "abar_y");
  detail::check_vjp_args<ExecutionSpace, Profile>(where, grad, work, grid);
  check_model(profile);
  detail::reduce_params_over_pixels<Profile::num_params>(
      "lensing::raytrace::deflection_map_vjp", space, grid.fine_ny(), grid.fine_nx(), work.partial, grad,
      detail::DeflectionVjpTerm<Profile, View>{profile, grid, abar_x, abar_y, Scalar(1)});
}

/// grad(k) = sum over fine pixels of (bbar_x, bbar_y) . d beta / d theta_k,
/// beta = x - alpha (overwrites grad).
template <class ExecutionSpace, class Profile, class View, class MemorySpace>
void ray_shoot_vjp(ExecutionSpace const& space, Profile const& profile,
                   PixelGrid<typename Profile::scalar_type> const& grid, View const& bbar_x, View const& bbar_y,
                   View1D<typename Profile::scalar_type, MemorySpace> const& grad,
                   MapVjpWorkspace<typename Profile::scalar_type, MemorySpace> const& work) {
  constexpr char const* where = "lensing::ray_shoot_vjp";
  using Scalar = typename Profile::scalar_type;
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, bbar_x, "bbar_x");
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, bbar_y, "bbar_y");
  detail::check_vjp_args<ExecutionSpace, Profile>(where, grad, work, grid);
  check_model(profile);
  detail::reduce_params_over_pixels<Profile::num_params>(
      "lensing::raytrace::ray_shoot_vjp", space, grid.fine_ny(), grid.fine_nx(), work.partial, grad,
      detail::DeflectionVjpTerm<Profile, View>{profile, grid, bbar_x, bbar_y, Scalar(-1)});
}

/// grad(k) = sum over fine pixels of kbar * d kappa / d theta_k (overwrites grad).
template <class ExecutionSpace, class Profile, class View, class MemorySpace>
void convergence_map_vjp(ExecutionSpace const& space, Profile const& profile,
                         PixelGrid<typename Profile::scalar_type> const& grid, View const& kbar,
                         View1D<typename Profile::scalar_type, MemorySpace> const& grad,
                         MapVjpWorkspace<typename Profile::scalar_type, MemorySpace> const& work) {
  constexpr char const* where = "lensing::convergence_map_vjp";
  using Scalar = typename Profile::scalar_type;
  detail::check_map_args<ExecutionSpace, Profile>(where, grid, kbar, "kbar");
  detail::check_vjp_args<ExecutionSpace, Profile>(where, grad, work, grid);
  check_model(profile);
  detail::reduce_params_over_pixels<Profile::num_params>(
      "lensing::raytrace::convergence_map_vjp", space, grid.fine_ny(), grid.fine_nx(), work.partial, grad,
      detail::ConvergenceVjpTerm<Profile, View>{profile, grid, kbar});
}

}  // namespace lensing

#endif  // LENSING_RAYTRACE_RAY_SHOOTING_HPP
