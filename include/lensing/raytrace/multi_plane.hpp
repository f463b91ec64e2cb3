#ifndef LENSING_RAYTRACE_MULTI_PLANE_HPP
#define LENSING_RAYTRACE_MULTI_PLANE_HPP

/// \file
/// Multi-plane lensing: the recursive lens equation through any number of
/// lens planes, its Jacobian, maps over a PixelGrid and the VJP back to every
/// plane's parameters.

#include <lensing/core/component_pack.hpp>
#include <lensing/core/errors.hpp>
#include <lensing/core/parallel.hpp>
#include <lensing/core/reduce_params.hpp>
#include <lensing/core/tuple.hpp>
#include <lensing/core/views.hpp>
#include <lensing/cosmology/flat_lcdm.hpp>
#include <lensing/geometry/pixel_grid.hpp>
#include <lensing/profiles/lens_parameters.hpp>
#include <lensing/profiles/population.hpp>
#include <lensing/raytrace/lens_map.hpp>
#include <lensing/raytrace/population_vjp.hpp>
#include <lensing/raytrace/ray_shooting.hpp>

#include <array>
#include <string>
#include <type_traits>
#include <utility>

// Host compilers: keep each plane's loop of MultiPlaneLens::source_positions
// a function of its own (see there).  Device code inlines as usual.
#if defined(__GNUC__) && !defined(__CUDACC__)
#define LENSING_MULTI_PLANE_NOINLINE __attribute__((noinline))
#else
#define LENSING_MULTI_PLANE_NOINLINE
#endif

namespace lensing {

namespace detail {
template <class T>
struct is_population : std::false_type {};
template <class P, class M>
struct is_population<Population<P, M>> : std::true_type {};
/// Parameters of a plane in the flat multi-plane vector (lens_param_count:
/// a MassProfile's num_params; a LensSum's two parts'; a Population or an
/// interpolated lens contributes none: a Population's members' gradients
/// come from multi_plane_population_vjp).
template <class L>
using plane_param_count = lens_param_count<L>;

/// Whether the VJP can reach every parameter-carrying part of a plane.
template <class L>
struct plane_supports_vjp : std::integral_constant<bool, is_mass_profile_v<L> || is_population<L>::value> {};
template <class A, class B>
struct plane_supports_vjp<LensSum<A, B>>
    : std::integral_constant<bool, plane_supports_vjp<A>::value && plane_supports_vjp<B>::value> {};

/// grad[k] += g . d alpha / d p_k for the plane's own flat parameters.
template <class L>
KOKKOS_FORCEINLINE_FUNCTION void plane_deflection_vjp(L const& l, typename L::scalar_type x, typename L::scalar_type y,
                                                      Vec2<typename L::scalar_type> const& g,
                                                      typename L::scalar_type* grad) {
  if constexpr (is_mass_profile_v<L>) {
    inline_deflection_vjp(l, x, y, g, grad);
  } else if constexpr (is_lens_sum<L>::value) {
    plane_deflection_vjp(l.first, x, y, g, grad);
    plane_deflection_vjp(l.second, x, y, g, grad + plane_param_count<std::decay_t<decltype(l.first)>>::value);
  }
}

template <class... L>
constexpr std::array<int, sizeof...(L) + 1> plane_offsets() {
  return prefix_offsets<plane_param_count<L>::value...>();
}
}  // namespace detail

/// A stack of lens planes, each any single-plane lens (MassProfile,
/// Composite, LensSum with a Population, ...), with the recursive
/// multi-plane lens equation (Blandford & Narayan 1986; Schneider, Ehlers &
/// Falco 1992 ch. 9; Petkova, Metcalf & Giocoli 2014):
///   theta_0 = theta,
///   theta_j = theta - sum_{i<j} B_ij alpha_i(theta_i),  B_ij = D_ij D_s / (D_j D_is),
///   beta    = theta - sum_i alpha_i(theta_i)            (B_is = 1 exactly),
/// D angular-diameter distances from the cosmology.  Rays are traced with
/// the equivalent O(1)-state comoving recursion (flat universe; see
/// forward_sum), the Jacobian and VJP with the B_ij form.  Convention: each
/// plane's profile gives its *reduced* deflection alpha_i = (D_is/D_s)
/// alpha_hat_i scaled to the final source redshift (lenstronomy's
/// MultiPlane convention with z_source_convention = z_source), so one plane
/// is algebraically the single-plane beta = theta - (0 + alpha(theta)), with
/// no distance factor (equal to lensing::ray_shoot to a few ulp: the same
/// expression, compiled in another context, may differ by FMA contraction).
/// The Jacobian A = d beta / d theta is built by the same recursion,
///   A_j = I - sum_{i<j} B_ij H_i A_i,  A = I - sum_i H_i A_i,
/// and is not symmetric in general (image rotation).
///
/// Planes are ordered by redshift, 0 < z_0 <= z_1 <= ... < z_source (build with
/// make_multi_plane, which checks this and computes the B_ij).  Angles in
/// arcsec.  Trivially copyable when every plane is; capture it in kernels.
/// num_params is the sum of the planes' MassProfile parameters (a LensSum
/// plane counts its MassProfile part), in plane order; Population members'
/// gradients come from multi_plane_population_vjp.
template <class... L>
struct MultiPlaneLens {
  static_assert(sizeof...(L) > 0, "lensing::MultiPlaneLens: needs at least one plane");
  static_assert((detail::has_lens_interface<L>::value && ...),
                "lensing::MultiPlaneLens: every plane must provide deflection, convergence and hessian");
  using scalar_type = typename std::tuple_element<0, std::tuple<typename L::scalar_type...>>::type;
  using Scalar = scalar_type;
  static_assert((std::is_same<Scalar, typename L::scalar_type>::value && ...),
                "lensing::MultiPlaneLens: every plane must use the same scalar type");
  static constexpr int num_planes = sizeof...(L);
  static constexpr std::array<int, sizeof...(L) + 1> offsets = detail::plane_offsets<L...>();
  static constexpr int num_params = offsets[sizeof...(L)];
  template <std::size_t I>
  static constexpr int offset = detail::plane_offsets<L...>()[I];

  Tuple<L...> planes;
  /// coef[j][i] = B_ij for i < j (zero otherwise).
  Scalar coef[num_planes][num_planes];
  /// Comoving distance to plane j over that to the source, T_j / T_s.
  Scalar dist[num_planes];
  /// D_s / D_js: reduced to physical deflection at plane j.
  Scalar scale[num_planes];

  template <std::size_t I>
  KOKKOS_INLINE_FUNCTION constexpr auto const& plane() const {
    return lensing::get<I>(planes);
  }
  template <std::size_t I>
  KOKKOS_INLINE_FUNCTION constexpr auto& plane() {
    return lensing::get<I>(planes);
  }

  /// beta(theta) [arcsec].
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> source_position(Scalar x, Scalar y) const {
    Vec2<Scalar> const theta{x, y};
    Vec2<Scalar> s{Scalar(0), Scalar(0)};
    forward_sum<0>(theta, dist[0] * theta, theta, s);
    return {x - s.x, y - s.y};
  }
  /// beta for m <= Chunk rays at (x[k], y) (one row segment), plane by
  /// plane: each plane is one short loop over the rays in a function of its
  /// own, so host pixel loops vectorise whatever the number of planes (the
  /// ray-by-ray form stops being inlined into the pixel loop beyond a few
  /// planes with GCC 12, and then runs scalar, ~10x slower).  Same
  /// arithmetic as source_position.
  template <int Chunk>
  KOKKOS_INLINE_FUNCTION void source_positions(Scalar const* x, Scalar y, int m, Scalar* bx, Scalar* by) const {
    Scalar px[Chunk], py[Chunk], dx[Chunk], dy[Chunk], sx[Chunk], sy[Chunk];
    for (int k = 0; k < m; ++k) {
      px[k] = dist[0] * x[k];
      py[k] = dist[0] * y;
      dx[k] = x[k];
      dy[k] = y;
      sx[k] = Scalar(0);
      sy[k] = Scalar(0);
    }
    sweep(std::make_index_sequence<num_planes>{}, x, y, m, px, py, dx, dy, sx, sy);
    for (int k = 0; k < m; ++k) {
      bx[k] = x[k] - sx[k];
      by[k] = y - sy[k];
    }
  }
  /// Effective deflection theta - beta [arcsec].
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const {
    Vec2<Scalar> const b = source_position(x, y);
    return {x - b.x, y - b.y};
  }
  /// Positions theta_j on every plane (pos[num_planes]) and the reduced
  /// deflections there (alpha[num_planes]).
  KOKKOS_INLINE_FUNCTION void trace(Scalar x, Scalar y, Vec2<Scalar>* pos, Vec2<Scalar>* alpha) const {
    forward<0>(Vec2<Scalar>{x, y}, pos, alpha);
  }
  /// A = d beta / d theta.
  KOKKOS_INLINE_FUNCTION LensJacobian<Scalar> jacobian(Scalar x, Scalar y) const {
    Vec2<Scalar> pos[num_planes], alpha[num_planes];
    forward<0>(Vec2<Scalar>{x, y}, pos, alpha);
    LensJacobian<Scalar> HA[num_planes];  // H_i A_i
    jacobian_rec<0>(pos, HA);
    LensJacobian<Scalar> A{Scalar(1), Scalar(0), Scalar(0), Scalar(1)};
    for (int i = 0; i < num_planes; ++i) {
      A.a11 -= HA[i].a11;
      A.a12 -= HA[i].a12;
      A.a21 -= HA[i].a21;
      A.a22 -= HA[i].a22;
    }
    return A;
  }
  /// grad[k] += d(g . beta)/d(theta_k) over the flat vector of all planes'
  /// parameters (plane p's block at offset<p>).
  KOKKOS_INLINE_FUNCTION void source_position_vjp(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad) const {
    Vec2<Scalar> pos[num_planes], alpha[num_planes], tbar[num_planes];
    forward<0>(Vec2<Scalar>{x, y}, pos, alpha);
    backward<num_planes - 1>(g, pos, tbar, grad);
  }
  /// For the ray theta and upstream g on beta: the position theta_P on plane
  /// P and the adjoint abar_P = d(g . beta)/d alpha_P there (what a plane-P
  /// parameter gradient contracts with: grad_p = abar_P . d alpha_P / d p).
  template <int P>
  KOKKOS_INLINE_FUNCTION void plane_adjoint(Scalar x, Scalar y, Vec2<Scalar> g, Vec2<Scalar>& theta_p,
                                            Vec2<Scalar>& abar_p) const {
    static_assert(P >= 0 && P < num_planes, "lensing::MultiPlaneLens::plane_adjoint: plane index out of range");
    Vec2<Scalar> pos[num_planes], alpha[num_planes], tbar[num_planes];
    forward<0>(Vec2<Scalar>{x, y}, pos, alpha);
    backward<num_planes - 1, P>(g, pos, tbar, nullptr, &abar_p);
    theta_p = pos[P];
  }
  /// Host: throws std::invalid_argument if a MassProfile plane's parameters are bad.
  void check() const { check_rec<0>(); }

  /// t[0, num_params) = the planes' parameters, plane by plane (plane p's
  /// block at offset<p>; profiles/lens_parameters.hpp's pack_lens per plane).
  KOKKOS_INLINE_FUNCTION void pack(Scalar* t) const { pack_planes(std::make_index_sequence<num_planes>{}, t); }
  /// This lens with the planes' parameters from t[0, num_params) (in pack's
  /// order) and the same distance factors: the per-image lens of a Simulator
  /// whose prototype fixes the redshifts and the cosmology.  A plane without
  /// parameters (an interpolated lens) is kept as it is.
  KOKKOS_INLINE_FUNCTION MultiPlaneLens with_params(Scalar const* t) const {
    MultiPlaneLens r = *this;
    r.unpack_planes(std::make_index_sequence<num_planes>{}, t);
    return r;
  }

 private:
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION void pack_planes(std::index_sequence<I...>, Scalar* t) const {
    (pack_lens(lensing::get<I>(planes), t + offset<I>), ...);
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION void unpack_planes(std::index_sequence<I...>, Scalar const* t) {
    ((lensing::get<I>(planes) = lens_with_params(lensing::get<I>(planes), t + offset<I>)), ...);
  }
  // Forward sweep in comoving coordinates with O(1) state (so the pixel loop
  // keeps everything in registers and vectorises for any number of planes):
  // the ray is at x_j = T_j theta_j / T_s on plane j and travels with angle d,
  //   x_{j+1} = x_j + (T_{j+1} - T_j)/T_s d,   d -= (D_s/D_js) alpha_j(theta_j),
  // the same rays as the B_ij form for a flat universe; theta_0 = theta
  // exactly, and beta = theta - sum_j alpha_j.
  template <int J>
  KOKKOS_FORCEINLINE_FUNCTION void forward_sum(Vec2<Scalar> const& theta, Vec2<Scalar> x, Vec2<Scalar> d,
                                               Vec2<Scalar>& s) const {
    if constexpr (J < num_planes) {
      Vec2<Scalar> const t = J == 0 ? theta : x / dist[J];
      Vec2<Scalar> const a = detail::inline_deflection(lensing::get<J>(planes), t.x, t.y);
      s += a;
      if constexpr (J + 1 < num_planes) {
        d -= scale[J] * a;
        forward_sum<J + 1>(theta, x + (dist[J + 1] - dist[J]) * d, d, s);
      }
    }
  }
  // One plane of source_positions: a separate (non-inlined on host) function
  // per plane, so each plane's loop stays small enough for the inliner to
  // take the profile in whole and the loop vectorises.
  template <int J>
  LENSING_MULTI_PLANE_NOINLINE KOKKOS_FUNCTION void sweep_plane(Scalar const* x, Scalar y, int m, Scalar* px,
                                                                Scalar* py, Scalar* dx, Scalar* dy, Scalar* sx,
                                                                Scalar* sy) const {
    // A local copy: stores through the ray arrays cannot alias it, so the
    // profile's derived constants (q, angle) are hoisted out of the loop.
    auto const p = lensing::get<J>(planes);
    Scalar const dj = dist[J];
    Scalar const step = J + 1 < num_planes ? dist[J + 1 < num_planes ? J + 1 : J] - dist[J] : Scalar(0);
    Scalar const sc = scale[J];
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
    for (int k = 0; k < m; ++k) {
      Scalar const tx = J == 0 ? x[k] : px[k] / dj, ty = J == 0 ? y : py[k] / dj;
      Vec2<Scalar> const a = detail::inline_deflection(p, tx, ty);
      sx[k] += a.x;
      sy[k] += a.y;
      dx[k] -= sc * a.x;
      dy[k] -= sc * a.y;
      px[k] += step * dx[k];
      py[k] += step * dy[k];
    }
  }
  template <std::size_t... J>
  KOKKOS_INLINE_FUNCTION void sweep(std::index_sequence<J...>, Scalar const* x, Scalar y, int m, Scalar* px, Scalar* py,
                                    Scalar* dx, Scalar* dy, Scalar* sx, Scalar* sy) const {
    (sweep_plane<int(J)>(x, y, m, px, py, dx, dy, sx, sy), ...);
  }
  // The same sweep keeping every plane's position and deflection.
  template <int J>
  KOKKOS_INLINE_FUNCTION void forward(Vec2<Scalar> const& theta, Vec2<Scalar>* pos, Vec2<Scalar>* alpha,
                                      Vec2<Scalar> x = {}, Vec2<Scalar> d = {}) const {
    if constexpr (J < num_planes) {
      if constexpr (J == 0) {
        x = dist[0] * theta;
        d = theta;
      }
      Vec2<Scalar> const t = J == 0 ? theta : x / dist[J];
      pos[J] = t;
      alpha[J] = detail::inline_deflection(lensing::get<J>(planes), t.x, t.y);
      if constexpr (J + 1 < num_planes) {
        d -= scale[J] * alpha[J];
        forward<J + 1>(theta, pos, alpha, x + (dist[J + 1] - dist[J]) * d, d);
      }
    }
  }
  template <int J>
  KOKKOS_INLINE_FUNCTION void jacobian_rec(Vec2<Scalar> const* pos, LensJacobian<Scalar>* HA) const {
    if constexpr (J < num_planes) {
      LensJacobian<Scalar> A{Scalar(1), Scalar(0), Scalar(0), Scalar(1)};
      for (int i = 0; i < J; ++i) {
        A.a11 -= coef[J][i] * HA[i].a11;
        A.a12 -= coef[J][i] * HA[i].a12;
        A.a21 -= coef[J][i] * HA[i].a21;
        A.a22 -= coef[J][i] * HA[i].a22;
      }
      auto const H = detail::inline_hessian(lensing::get<J>(planes), pos[J].x, pos[J].y);
      HA[J] = {H.xx * A.a11 + H.xy * A.a21, H.xx * A.a12 + H.xy * A.a22, H.xy * A.a11 + H.yy * A.a21,
               H.xy * A.a12 + H.yy * A.a22};
      jacobian_rec<J + 1>(pos, HA);
    }
  }
  // Reverse sweep, plane J down to 0: abar_J = -(g + sum_{j>J} B_Jj tbar_j),
  // parameters get abar_J . d alpha_J / d p, and tbar_J = H_J abar_J.
  // Stop >= 0: only propagate down to plane Stop and return its upstream
  // deflection adjoint in *abar_stop (no parameter gradients).
  template <int J, int Stop = -1>
  KOKKOS_INLINE_FUNCTION void backward(Vec2<Scalar> const& g, Vec2<Scalar> const* pos, Vec2<Scalar>* tbar, Scalar* grad,
                                       Vec2<Scalar>* abar_stop = nullptr) const {
    if constexpr (J >= 0) {
      Vec2<Scalar> ab = g;
      for (int j = J + 1; j < num_planes; ++j)
        ab += coef[j][J] * tbar[j];
      ab = -ab;
      auto const& p = lensing::get<J>(planes);
      if constexpr (Stop >= 0 && J == Stop) {
        *abar_stop = ab;
      } else {
        if constexpr (Stop < 0) detail::plane_deflection_vjp(p, pos[J].x, pos[J].y, ab, grad + offset<J>);
        if (J > 0) tbar[J] = detail::inline_hessian(p, pos[J].x, pos[J].y).apply(ab);
        backward<J - 1, Stop>(g, pos, tbar, grad, abar_stop);
      }
    }
  }
  template <int J>
  void check_rec() const {
    if constexpr (J < num_planes) {
      check_model(lensing::get<J>(planes));  // profiles, composites, LensSums
      check_rec<J + 1>();
    }
  }
};

/// Builds a MultiPlaneLens: planes at redshifts z[0] <= z[1] <= ... (all > 0
/// and < z_source) with the coefficients B_ij from `cosmo`.  Throws
/// std::invalid_argument on unordered or out-of-range redshifts.
template <class... L>
MultiPlaneLens<L...> make_multi_plane(FlatLambdaCDM<typename MultiPlaneLens<L...>::scalar_type> const& cosmo,
                                      double z_source, std::array<double, sizeof...(L)> const& z, L const&... planes) {
  constexpr char const* where = "lensing::make_multi_plane";
  using MP = MultiPlaneLens<L...>;
  using Scalar = typename MP::scalar_type;
  check_finite(z_source, where, "z_source");
  constexpr int n = sizeof...(L);
  for (int i = 0; i < n; ++i) {
    check_finite(z[i], where, "z");
    check_argument(z[i] > 0 && z[i] < z_source, where, "every plane needs 0 < z < z_source");
    check_argument(i == 0 || z[i] >= z[i - 1], where, "plane redshifts must be non-decreasing");
  }
  MP mp{Tuple<L...>(planes...), {}, {}, {}};
  // Computed in double from a double-precision copy of the cosmology.
  FlatLambdaCDM<double> const c(cosmo.H0(), cosmo.Om0());
  double const ds = c.angular_diameter_distance(z_source);
  double const ts = c.comoving_distance(z_source);
  for (int j = 0; j < n; ++j) {
    mp.dist[j] = Scalar(c.comoving_distance(z[j]) / ts);
    mp.scale[j] = Scalar(ds / c.angular_diameter_distance(z[j], z_source));
  }
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) {
      double b = 0;
      if (i < j) {
        double const dij = c.angular_diameter_distance(z[i], z[j]);
        double const dj = c.angular_diameter_distance(z[j]);
        double const dis = c.angular_diameter_distance(z[i], z_source);
        b = dij * ds / (dj * dis);
      }
      mp.coef[j][i] = Scalar(b);
    }
  return mp;
}

//----------------------------------------------------------------------------
// Maps over a PixelGrid.

namespace detail {
template <class T>
struct is_multi_plane_lens : std::false_type {};
template <class... L>
struct is_multi_plane_lens<MultiPlaneLens<L...>> : std::true_type {};
// The planes' vjp support, for a MultiPlaneLens type.
template <class MP>
struct multi_plane_supports_vjp;
template <class... L>
struct multi_plane_supports_vjp<MultiPlaneLens<L...>>
    : std::integral_constant<bool, (plane_supports_vjp<L>::value && ...)> {};

template <class ExecutionSpace, class MP, class View>
void check_multi_plane_map(char const* where, PixelGrid<typename MP::scalar_type> const& grid, View const& v,
                           char const* name) {
  static_assert(is_execution_space_v<ExecutionSpace>, "lensing: first argument must be a Kokkos execution space");
  static_assert(View::rank == 2, "lensing: maps are rank-2 views (iy, ix)");
  static_assert(std::is_same<typename View::value_type, typename MP::scalar_type>::value ||
                    std::is_same<typename View::value_type, typename MP::scalar_type const>::value,
                "lensing: map views must hold the lens's scalar type");
  static_assert(is_accessible_from_v<ExecutionSpace, typename View::memory_space>,
                "lensing: map views must be accessible from the execution space");
  check_extents(v, where, name, "(fine_ny, fine_nx)", grid.fine_ny(), grid.fine_nx());
}
template <class MP, class View>
struct MultiPlaneRows {
  using Scalar = typename MP::scalar_type;
  MP lens;
  PixelGrid<Scalar> grid;
  View bx, by;
  static constexpr int chunk = 64;
  KOKKOS_INLINE_FUNCTION void operator()(int iy) const {
    Scalar const y = grid.fine_y(iy);
    int const nx = grid.fine_nx();
    Scalar xs[chunk], b_x[chunk], b_y[chunk];
    for (int i0 = 0; i0 < nx; i0 += chunk) {
      int const m = nx - i0 < chunk ? nx - i0 : chunk;
      for (int k = 0; k < m; ++k)
        xs[k] = grid.fine_x(i0 + k);
      lens.template source_positions<chunk>(xs, y, m, b_x, b_y);
      for (int k = 0; k < m; ++k) {
        bx(iy, i0 + k) = b_x[k];
        by(iy, i0 + k) = b_y[k];
      }
    }
  }
};
template <class MP, class View>
struct MultiPlaneVjpTerm {
  using Scalar = typename MP::scalar_type;
  MP lens;
  PixelGrid<Scalar> grid;
  View gx, gy;
  KOKKOS_FORCEINLINE_FUNCTION void operator()(int iy, int ix, Scalar* acc) const {
    lens.source_position_vjp(grid.fine_x(ix), grid.fine_y(iy), Vec2<Scalar>{gx(iy, ix), gy(iy, ix)}, acc);
  }
};
}  // namespace detail

/// beta = source position of the ray through every fine pixel, through all planes.
template <class ExecutionSpace, class MP, class View>
void multi_plane_ray_shoot(ExecutionSpace const& space, MP const& lens, PixelGrid<typename MP::scalar_type> const& grid,
                           View const& beta_x, View const& beta_y) {
  static_assert(detail::is_multi_plane_lens<MP>::value,
                "lensing: the lens must be a MultiPlaneLens (make_multi_plane)");
  constexpr char const* where = "lensing::multi_plane_ray_shoot";
  detail::check_multi_plane_map<ExecutionSpace, MP>(where, grid, beta_x, "beta_x");
  detail::check_multi_plane_map<ExecutionSpace, MP>(where, grid, beta_y, "beta_y");
  check_model(lens);
  if constexpr (detail::is_host_space_v<ExecutionSpace>) {
    // One row per work item, traced in chunks of 64 rays plane by plane
    // (MultiPlaneLens::source_positions): vectorised for any number of planes.
    Kokkos::parallel_for("lensing::raytrace::multi_plane_ray_shoot",
                         Kokkos::RangePolicy<ExecutionSpace>(space, 0, grid.fine_ny()),
                         detail::MultiPlaneRows<MP, View>{lens, grid, beta_x, beta_y});
  } else {
    parallel_for_pixels(
        "lensing::raytrace::multi_plane_ray_shoot", space, grid.fine_ny(), grid.fine_nx(),
        KOKKOS_LAMBDA(int iy, int ix) {
          auto const b = lens.source_position(grid.fine_x(ix), grid.fine_y(iy));
          beta_x(iy, ix) = b.x;
          beta_y(iy, ix) = b.y;
        });
  }
}

/// Signed magnification 1/det A at every fine pixel, through all planes.
template <class ExecutionSpace, class MP, class View>
void multi_plane_magnification_map(ExecutionSpace const& space, MP const& lens,
                                   PixelGrid<typename MP::scalar_type> const& grid, View const& mu) {
  static_assert(detail::is_multi_plane_lens<MP>::value,
                "lensing: the lens must be a MultiPlaneLens (make_multi_plane)");
  detail::check_multi_plane_map<ExecutionSpace, MP>("lensing::multi_plane_magnification_map", grid, mu, "mu");
  check_model(lens);
  parallel_for_pixels(
      "lensing::raytrace::multi_plane_magnification_map", space, grid.fine_ny(), grid.fine_nx(),
      KOKKOS_LAMBDA(int iy, int ix) { mu(iy, ix) = lens.jacobian(grid.fine_x(ix), grid.fine_y(iy)).magnification(); });
}

/// grad(k) = sum over fine pixels of (bbar_x, bbar_y) . d beta / d p_k for
/// every parameter of every plane (flat vector, plane by plane; overwrites
/// grad; deterministic).  Planes: MassProfiles (e.g. Composites),
/// Populations and LensSums of those; populations' members are not in this
/// vector (multi_plane_population_vjp) but their lensing is propagated.
template <class ExecutionSpace, class MP, class View, class MemorySpace>
void multi_plane_ray_shoot_vjp(ExecutionSpace const& space, MP const& lens,
                               PixelGrid<typename MP::scalar_type> const& grid, View const& bbar_x, View const& bbar_y,
                               View1D<typename MP::scalar_type, MemorySpace> const& grad,
                               MapVjpWorkspace<typename MP::scalar_type, MemorySpace> const& work) {
  static_assert(detail::is_multi_plane_lens<MP>::value,
                "lensing: the lens must be a MultiPlaneLens (make_multi_plane)");
  static_assert(detail::multi_plane_supports_vjp<MP>::value,
                "lensing::multi_plane_ray_shoot_vjp: every plane must be a MassProfile (e.g. a Composite), a "
                "Population or a LensSum of those");
  constexpr char const* where = "lensing::multi_plane_ray_shoot_vjp";
  detail::check_multi_plane_map<ExecutionSpace, MP>(where, grid, bbar_x, "bbar_x");
  detail::check_multi_plane_map<ExecutionSpace, MP>(where, grid, bbar_y, "bbar_y");
  check_model(lens);
  check_argument(grad.extent(0) == size_t(MP::num_params), where,
                 "grad must have length num_params = " + std::to_string(MP::num_params));
  check_argument(work.partial.extent(0) >= size_t(grid.fine_ny()) && work.partial.extent(1) == size_t(MP::num_params),
                 where, "workspace was made for another grid or lens");
  detail::reduce_params_over_pixels<MP::num_params>("lensing::raytrace::multi_plane_ray_shoot_vjp", space,
                                                    grid.fine_ny(), grid.fine_nx(), work.partial, grad,
                                                    detail::MultiPlaneVjpTerm<MP, View>{lens, grid, bbar_x, bbar_y});
}

//----------------------------------------------------------------------------
// Population members on a plane.

namespace detail {
template <class L>
KOKKOS_INLINE_FUNCTION auto const& plane_population(L const& l) {
  if constexpr (is_population<L>::value) {
    return l;
  } else {
    static_assert(is_lens_sum<L>::value, "lensing::multi_plane_population_vjp: the plane holds no Population");
    if constexpr (is_population<std::decay_t<decltype(l.second)>>::value) {
      return l.second;
    } else {
      static_assert(is_population<std::decay_t<decltype(l.first)>>::value,
                    "lensing::multi_plane_population_vjp: the plane holds no Population");
      return l.first;
    }
  }
}
}  // namespace detail

/// Buffers for multi_plane_population_vjp: each pixel's ray position on the
/// plane and the deflection adjoint there.
template <class Scalar, class MemorySpace>
struct MultiPlanePopulationWork {
  View2D<Scalar, MemorySpace> theta_x, theta_y, abar_x, abar_y;
  MultiPlanePopulationWork() = default;
  explicit MultiPlanePopulationWork(PixelGrid<Scalar> const& grid)
      : theta_x("lensing::MultiPlanePopulationWork", grid.fine_ny(), grid.fine_nx()),
        theta_y("lensing::MultiPlanePopulationWork", grid.fine_ny(), grid.fine_nx()),
        abar_x("lensing::MultiPlanePopulationWork", grid.fine_ny(), grid.fine_nx()),
        abar_y("lensing::MultiPlanePopulationWork", grid.fine_ny(), grid.fine_nx()) {}
};

/// grad(m, k) = sum over fine pixels of (bbar_x, bbar_y) . d beta / d p_{m,k}
/// for member m of the Population on plane P (the plane is a Population or a
/// LensSum holding one; grad: (size, Profile::num_params), overwritten).
/// Per pixel: the ray's position theta_P on the plane and the adjoint
/// abar_P (MultiPlaneLens::plane_adjoint), then per member the profile's
/// deflection VJP, one team per member (raytrace/population_vjp.hpp).
template <int P, class ExecutionSpace, class MP, class View, class Grad>
void multi_plane_population_vjp(
    ExecutionSpace const& space, MP const& lens, PixelGrid<typename MP::scalar_type> const& grid, View const& bbar_x,
    View const& bbar_y, Grad const& grad,
    MultiPlanePopulationWork<typename MP::scalar_type, typename ExecutionSpace::memory_space> const& work) {
  static_assert(detail::is_multi_plane_lens<MP>::value,
                "lensing: the lens must be a MultiPlaneLens (make_multi_plane)");
  using Scalar = typename MP::scalar_type;
  constexpr char const* where = "lensing::multi_plane_population_vjp";
  static_assert(P >= 0 && P < MP::num_planes, "lensing::multi_plane_population_vjp: plane index out of range");
  detail::check_multi_plane_map<ExecutionSpace, MP>(where, grid, bbar_x, "bbar_x");
  detail::check_multi_plane_map<ExecutionSpace, MP>(where, grid, bbar_y, "bbar_y");
  check_model(lens);
  check_argument(work.theta_x.extent(0) == size_t(grid.fine_ny()) && work.theta_x.extent(1) == size_t(grid.fine_nx()),
                 where, "workspace was made for another grid");
  auto const tx = work.theta_x, ty = work.theta_y, ax = work.abar_x, ay = work.abar_y;
  parallel_for_pixels(
      "lensing::raytrace::multi_plane_population_adjoint", space, grid.fine_ny(), grid.fine_nx(),
      KOKKOS_LAMBDA(int iy, int ix) {
        Vec2<Scalar> t, a;
        lens.template plane_adjoint<P>(grid.fine_x(ix), grid.fine_y(iy), Vec2<Scalar>{bbar_x(iy, ix), bbar_y(iy, ix)},
                                       t, a);
        tx(iy, ix) = t.x;
        ty(iy, ix) = t.y;
        ax(iy, ix) = a.x;
        ay(iy, ix) = a.y;
      });
  auto const& pop = detail::plane_population(lens.template plane<P>());
  using Profile = typename std::decay_t<decltype(pop)>::profile_type;
  detail::population_map_vjp(
      where, space, pop, grid.fine_ny(), grid.fine_nx(), grad,
      KOKKOS_LAMBDA(Profile const& p, int iy, int ix, Scalar* acc) {
        p.deflection_vjp(tx(iy, ix), ty(iy, ix), Vec2<Scalar>{ax(iy, ix), ay(iy, ix)}, acc);
      });
}

}  // namespace lensing

#endif  // LENSING_RAYTRACE_MULTI_PLANE_HPP
