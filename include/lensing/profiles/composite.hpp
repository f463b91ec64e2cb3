#ifndef LENSING_PROFILES_COMPOSITE_HPP
#define LENSING_PROFILES_COMPOSITE_HPP

#include <lensing/core/tuple.hpp>
#include <lensing/profiles/mass_profile.hpp>

#include <array>
#include <string>
#include <type_traits>

namespace lensing {

namespace detail {
template <class... P>
constexpr std::array<int, sizeof...(P) + 1> param_offsets() {
  std::array<int, sizeof...(P) + 1> o{};
  int const n[] = {0, P::num_params...};
  for (std::size_t i = 0; i < sizeof...(P); ++i)
    o[i + 1] = o[i] + n[i + 1];
  return o;
}
template <class... P>
constexpr auto concatenated_param_names() {
  std::array<char const*, (0 + ... + P::num_params)> names{};
  std::size_t k = 0;
  (
      [&] {
        for (int j = 0; j < P::num_params; ++j)
          names[k++] = P::param_names[j];
      }(),
      ...);
  return names;
}
}  // namespace detail

/// Compile-time sum of mass profiles, itself a MassProfile.
///
/// `Composite<SIE<double>, ExternalShear<double>>` deflects by the sum of its
/// components' deflections (likewise potential, convergence, Hessian), and
/// its flat parameter vector is the components' vectors one after the other
/// (param_names repeats each component's names; component_of_param tells
/// which component a parameter belongs to).  Trivially copyable; the sum is a
/// fold over the components, fully inlined in kernels.
template <class... P>
struct Composite {
  static_assert(sizeof...(P) > 0, "lensing::Composite: needs at least one profile");
  static_assert((check_mass_profile<P>() && ...), "lensing::Composite: every component must be a MassProfile");
  using scalar_type = typename std::tuple_element<0, std::tuple<typename P::scalar_type...>>::type;
  static_assert((std::is_same<scalar_type, typename P::scalar_type>::value && ...),
                "lensing::Composite: every component must use the same scalar type");
  using Scalar = scalar_type;
  using Indices = std::index_sequence_for<P...>;
  static constexpr int num_components = sizeof...(P);
  static constexpr std::array<int, sizeof...(P) + 1> offsets = detail::param_offsets<P...>();
  static constexpr int num_params = offsets[sizeof...(P)];
  static constexpr std::array<char const*, num_params> param_names = detail::concatenated_param_names<P...>();
  /// Offset of component I's parameters in the flat vector (a constant, so
  /// usable in device code).
  template <std::size_t I>
  static constexpr int offset = detail::param_offsets<P...>()[I];

  Tuple<P...> components;

  Composite() = default;
  KOKKOS_FUNCTION constexpr explicit Composite(P const&... p) : components(p...) {}

  /// Component I.
  template <std::size_t I>
  KOKKOS_INLINE_FUNCTION constexpr auto& get() {
    return lensing::get<I>(components);
  }
  template <std::size_t I>
  KOKKOS_INLINE_FUNCTION constexpr auto const& get() const {
    return lensing::get<I>(components);
  }

  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y) const { return deflection(x, y, Indices{}); }
  /// Batched deflection (host), present when a component provides one; the
  /// other components are evaluated point by point inside the batch.
  template <bool B = (has_deflection_batch_v<P> || ...), std::enable_if_t<B, int> = 0>
  KOKKOS_INLINE_FUNCTION void deflection_batch(int m, Scalar const* x, Scalar const* y, Scalar* ax, Scalar* ay) const {
    Scalar sx[deflection_batch_capacity] = {}, sy[deflection_batch_capacity] = {};
    batch_components(m, x, y, sx, sy, Indices{});
    for (int i = 0; i < m; ++i) {
      ax[i] = sx[i];
      ay[i] = sy[i];
    }
  }

  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y) const { return potential(x, y, Indices{}); }
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y) const { return convergence(x, y, Indices{}); }
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y) const { return hessian(x, y, Indices{}); }
  KOKKOS_FORCEINLINE_FUNCTION void deflection_vjp(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad) const {
    deflection_vjp(x, y, g, grad, Indices{});
  }
  /// Branch-free VJP forms (see detail::has_regular_vjp), present when a
  /// component has them.
  template <bool B = (detail::has_regular_vjp<P>::value || ...), std::enable_if_t<B, int> = 0>
  KOKKOS_FORCEINLINE_FUNCTION bool vjp_is_regular() const {
    return vjp_is_regular(Indices{});
  }
  template <bool B = (detail::has_regular_vjp<P>::value || ...), std::enable_if_t<B, int> = 0>
  KOKKOS_FORCEINLINE_FUNCTION void deflection_vjp_regular(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad) const {
    deflection_vjp_regular(x, y, g, grad, Indices{});
  }
  template <bool B = (detail::has_regular_vjp<P>::value || ...), std::enable_if_t<B, int> = 0>
  KOKKOS_FORCEINLINE_FUNCTION void convergence_vjp_regular(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    convergence_vjp_regular(x, y, g, grad, Indices{});
  }
  /// Batched deflection VJP (host), present when a component provides one;
  /// the other components are differentiated point by point inside the batch.
  template <bool B = (has_deflection_vjp_batch_v<P> || ...), std::enable_if_t<B, int> = 0>
  KOKKOS_FORCEINLINE_FUNCTION void deflection_vjp_batch(int m, Scalar const* x, Scalar const* y, Scalar const* gx,
                                                        Scalar const* gy, Scalar* grad, int stride) const {
    vjp_batch_components(m, x, y, gx, gy, grad, stride, Indices{});
  }
  KOKKOS_INLINE_FUNCTION void potential_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    potential_vjp(x, y, g, grad, Indices{});
  }
  KOKKOS_INLINE_FUNCTION void convergence_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad) const {
    convergence_vjp(x, y, g, grad, Indices{});
  }
  /// grad[k] += hbar . dH/dtheta_k, every component contributing to its own
  /// parameters (each component must provide hessian_vjp).
  KOKKOS_INLINE_FUNCTION void hessian_vjp(Scalar x, Scalar y, Hessian<Scalar> hbar, Scalar* grad) const {
    hessian_vjp(x, y, hbar, grad, Indices{});
  }
  KOKKOS_INLINE_FUNCTION void pack(Scalar* theta) const { pack(theta, Indices{}); }
  KOKKOS_INLINE_FUNCTION static Composite unpack(Scalar const* theta) { return unpack(theta, Indices{}); }
  /// Host: throws std::invalid_argument if a component's parameters are bad.
  void check() const { check(Indices{}); }
  /// Index of the component that parameter k belongs to.
  static constexpr int component_of_param(int k) {
    int c = 0;
    while (c + 1 < num_components && offsets[c + 1] <= k)
      ++c;
    return c;
  }

 private:
  template <class C>
  KOKKOS_INLINE_FUNCTION static void add_batch(C const& c, int m, Scalar const* x, Scalar const* y, Scalar* sx,
                                               Scalar* sy) {
    if constexpr (has_deflection_batch_v<C>) {
      Scalar tx[deflection_batch_capacity], ty[deflection_batch_capacity];
      c.deflection_batch(m, x, y, tx, ty);
      for (int i = 0; i < m; ++i) {
        sx[i] += tx[i];
        sy[i] += ty[i];
      }
    } else {
      for (int i = 0; i < m; ++i) {
        Vec2<Scalar> const a = c.deflection(x[i], y[i]);
        sx[i] += a.x;
        sy[i] += a.y;
      }
    }
  }
  template <std::size_t I>
  KOKKOS_FORCEINLINE_FUNCTION void add_vjp_batch(int m, Scalar const* x, Scalar const* y, Scalar const* gx,
                                                 Scalar const* gy, Scalar* grad, int stride) const {
    auto const& c = lensing::get<I>(components);
    using C = std::decay_t<decltype(c)>;
    Scalar* const g0 = grad + offset<I> * stride;
    if constexpr (has_deflection_vjp_batch_v<C>) {
      c.deflection_vjp_batch(m, x, y, gx, gy, g0, stride);
    } else {
      constexpr int n = C::num_params;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
      for (int i = 0; i < m; ++i) {
        Scalar a[n] = {};
        c.deflection_vjp(x[i], y[i], Vec2<Scalar>{gx[i], gy[i]}, a);
        for (int k = 0; k < n; ++k)
          g0[k * stride + i] += a[k];
      }
    }
  }
  template <std::size_t... I>
  KOKKOS_FORCEINLINE_FUNCTION void vjp_batch_components(int m, Scalar const* x, Scalar const* y, Scalar const* gx,
                                                        Scalar const* gy, Scalar* grad, int stride,
                                                        std::index_sequence<I...>) const {
    (add_vjp_batch<I>(m, x, y, gx, gy, grad, stride), ...);
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION void batch_components(int m, Scalar const* x, Scalar const* y, Scalar* sx, Scalar* sy,
                                               std::index_sequence<I...>) const {
    (add_batch(lensing::get<I>(components), m, x, y, sx, sy), ...);
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION Vec2<Scalar> deflection(Scalar x, Scalar y, std::index_sequence<I...>) const {
    Vec2<Scalar> r{Scalar(0), Scalar(0)};
    ((r += lensing::get<I>(components).deflection(x, y)), ...);
    return r;
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION Scalar potential(Scalar x, Scalar y, std::index_sequence<I...>) const {
    return (Scalar(0) + ... + lensing::get<I>(components).potential(x, y));
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION Scalar convergence(Scalar x, Scalar y, std::index_sequence<I...>) const {
    return (Scalar(0) + ... + lensing::get<I>(components).convergence(x, y));
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION Hessian<Scalar> hessian(Scalar x, Scalar y, std::index_sequence<I...>) const {
    Hessian<Scalar> h{Scalar(0), Scalar(0), Scalar(0)};
    ((h += lensing::get<I>(components).hessian(x, y)), ...);
    return h;
  }
  template <std::size_t... I>
  KOKKOS_FORCEINLINE_FUNCTION void deflection_vjp(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad,
                                                  std::index_sequence<I...>) const {
    (lensing::get<I>(components).deflection_vjp(x, y, g, grad + offset<I>), ...);
  }
  template <std::size_t... I>
  KOKKOS_FORCEINLINE_FUNCTION bool vjp_is_regular(std::index_sequence<I...>) const {
    return (detail::vjp_is_regular(lensing::get<I>(components)) && ...);
  }
  template <std::size_t... I>
  KOKKOS_FORCEINLINE_FUNCTION void deflection_vjp_regular(Scalar x, Scalar y, Vec2<Scalar> g, Scalar* grad,
                                                          std::index_sequence<I...>) const {
    (detail::deflection_vjp_regular(lensing::get<I>(components), x, y, g, grad + offset<I>), ...);
  }
  template <std::size_t... I>
  KOKKOS_FORCEINLINE_FUNCTION void convergence_vjp_regular(Scalar x, Scalar y, Scalar g, Scalar* grad,
                                                           std::index_sequence<I...>) const {
    (detail::convergence_vjp_regular(lensing::get<I>(components), x, y, g, grad + offset<I>), ...);
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION void potential_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad,
                                            std::index_sequence<I...>) const {
    (lensing::get<I>(components).potential_vjp(x, y, g, grad + offset<I>), ...);
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION void convergence_vjp(Scalar x, Scalar y, Scalar g, Scalar* grad,
                                              std::index_sequence<I...>) const {
    (lensing::get<I>(components).convergence_vjp(x, y, g, grad + offset<I>), ...);
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION void hessian_vjp(Scalar x, Scalar y, Hessian<Scalar> hbar, Scalar* grad,
                                          std::index_sequence<I...>) const {
    (lensing::get<I>(components).hessian_vjp(x, y, hbar, grad + offset<I>), ...);
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION void pack(Scalar* theta, std::index_sequence<I...>) const {
    (lensing::get<I>(components).pack(theta + offset<I>), ...);
  }
  template <std::size_t... I>
  KOKKOS_INLINE_FUNCTION static Composite unpack(Scalar const* theta, std::index_sequence<I...>) {
    return Composite(P::unpack(theta + offset<I>)...);
  }
  template <std::size_t... I>
  void check(std::index_sequence<I...>) const {
    (lensing::get<I>(components).check(), ...);
  }
};

/// Composite of the given profiles (types deduced).
template <class... P>
KOKKOS_FUNCTION constexpr Composite<P...> make_composite(P const&... p) {
  return Composite<P...>(p...);
}

}  // namespace lensing

#endif  // LENSING_PROFILES_COMPOSITE_HPP
