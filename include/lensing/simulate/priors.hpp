#ifndef LENSING_SIMULATE_PRIORS_HPP
#define LENSING_SIMULATE_PRIORS_HPP

/// \file
/// Priors of the training-set generator: uniform, normal, log-uniform and
/// truncated normal distributions that sample on any execution space from
/// counter-based streams (deterministic per (seed, image, parameter), whatever
/// the thread count; noise/random_stream.hpp) and give their normalised
/// log-densities; and a named parameter table (name -> prior) that draws a
/// batch of parameter vectors (n, num_params).
///
/// (sample/priors.hpp has the log-densities and gradients the samplers need,
/// as separate types; here one tagged value type covers the four families, so
/// that a runtime table of them is a single View usable inside a kernel.)

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/core/special.hpp>
#include <lensing/core/views.hpp>
#include <lensing/core/random.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lensing {
namespace simulate {

//----------------------------------------------------------------------------
// One prior.

/// Family of a Prior.
enum class PriorKind : int { fixed = 0, uniform = 1, normal = 2, log_uniform = 3, truncated_normal = 4 };

/// A one-dimensional prior, a trivially copyable tagged value type usable in
/// kernels.  Build it with the host factories, which check the parameters:
///
/// - fixed(v): always v (log-density 0 at v, -inf elsewhere);
/// - uniform(lo, hi): p = 1/(hi - lo) on [lo, hi];
/// - normal(mu, sigma): p = exp(-z^2/2) / (sigma sqrt(2 pi)), z = (x - mu)/sigma;
/// - log_uniform(lo, hi), 0 < lo < hi: p = 1/(x log(hi/lo)) on [lo, hi]
///   (uniform in log x, for scale parameters);
/// - truncated_normal(mu, sigma, lo, hi): the normal restricted to [lo, hi],
///   p = phi(z) / (sigma Z), Z = Phi(beta) - Phi(alpha), alpha = (lo - mu)/sigma,
///   beta = (hi - mu)/sigma; lo = -inf or hi = +inf give one-sided truncation.
///   Valid while the interval carries probability Z > 1e-300 (its nearer end
///   within ~37 sigma of mu).
///
/// Sampling (`sample(stream)`) is exact: the uniform families by inversion,
/// the normal by Box-Muller, the truncated normal by inversion of its CDF,
/// x = mu + sigma Phi^-1(Phi(alpha) + U Z), evaluated in the lower tail
/// (intervals above the mean are mirrored) so that no precision is lost to
/// 1 - Phi.  Draws are computed in double and rounded to Scalar.
template <class Scalar>
struct Prior {
  PriorKind kind = PriorKind::fixed;
  double p0 = 0, p1 = 0;          ///< (value), (lo, hi) or (mu, sigma)
  double lo = 0, hi = 0;          ///< support (truncated normal: the truncation)
  double log_norm = 0;            ///< log of the density's normalisation
  double cdf_lo = 0, cdf_hi = 0;  ///< truncated normal: Phi at the (possibly mirrored) standardised bounds
  bool mirrored = false;

  using scalar_type = Scalar;

  static Prior fixed(double value) {
    check_finite(value, "lensing::simulate::Prior::fixed", "value");
    Prior p;
    p.kind = PriorKind::fixed;
    p.p0 = p.lo = p.hi = value;
    return p;
  }
  static Prior uniform(double lo, double hi) {
    constexpr char const* where = "lensing::simulate::Prior::uniform";
    check_finite(lo, where, "lo");
    check_finite(hi, where, "hi");
    check_argument(lo < hi, where, "need lo < hi");
    Prior p;
    p.kind = PriorKind::uniform;
    p.lo = p.p0 = lo;
    p.hi = p.p1 = hi;
    p.log_norm = std::log(hi - lo);
    return p;
  }
  static Prior normal(double mu, double sigma) {
    constexpr char const* where = "lensing::simulate::Prior::normal";
    check_finite(mu, where, "mu");
    check_positive(sigma, where, "sigma");
    Prior p;
    p.kind = PriorKind::normal;
    p.p0 = mu;
    p.p1 = sigma;
    p.lo = -HUGE_VAL;
    p.hi = HUGE_VAL;
    p.log_norm = std::log(sigma) + 0.918938533204672741780329736405617639;
    return p;
  }
  static Prior log_uniform(double lo, double hi) {
    constexpr char const* where = "lensing::simulate::Prior::log_uniform";
    check_positive(lo, where, "lo");
    check_positive(hi, where, "hi");
    check_argument(lo < hi, where, "need 0 < lo < hi");
    Prior p;
    p.kind = PriorKind::log_uniform;
    p.lo = p.p0 = lo;
    p.hi = p.p1 = hi;
    p.log_norm = std::log(std::log(hi / lo));
    return p;
  }
  static Prior truncated_normal(double mu, double sigma, double lo, double hi) {
    constexpr char const* where = "lensing::simulate::Prior::truncated_normal";
    check_finite(mu, where, "mu");
    check_positive(sigma, where, "sigma");
    check_argument(!std::isnan(lo) && !std::isnan(hi) && lo < hi, where, "need lo < hi (not NaN; +-inf allowed)");
    Prior p;
    p.kind = PriorKind::truncated_normal;
    p.p0 = mu;
    p.p1 = sigma;
    p.lo = lo;
    p.hi = hi;
    double alpha = (lo - mu) / sigma, beta = (hi - mu) / sigma;
    // Work in the lower tail: mirror an interval that lies mostly above the mean.
    bool const mirror = std::isinf(alpha) ? false : (std::isinf(beta) ? true : alpha + beta > 0);
    if (mirror) {
      p.mirrored = true;
      double const t = alpha;
      alpha = -beta;
      beta = -t;
    }
    p.cdf_lo = math::normal_cdf(alpha);
    p.cdf_hi = math::normal_cdf(beta);
    double const z = p.cdf_hi - p.cdf_lo;
    check_argument(z > 1e-300, where, "the interval [lo, hi] carries no probability under Normal(mu, sigma)");
    p.log_norm = std::log(sigma) + 0.918938533204672741780329736405617639 + std::log(z);
    return p;
  }

  /// One draw from the stream.
  KOKKOS_INLINE_FUNCTION Scalar sample(random::Stream& r) const {
    switch (kind) {
      case PriorKind::uniform:
        return Scalar(lo + (hi - lo) * r.uniform<double>());
      case PriorKind::normal:
        return Scalar(p0 + p1 * r.normal<double>());
      case PriorKind::log_uniform:
        return Scalar(lo * math::exp(math::log(hi / lo) * r.uniform<double>()));
      case PriorKind::truncated_normal: {
        double u = cdf_lo + (cdf_hi - cdf_lo) * r.uniform<double>();
        u = math::fmin(math::fmax(u, 1e-300), 1 - 1e-16);
        double z = math::normal_quantile(u);
        if (mirrored) z = -z;
        double const x = p0 + p1 * z;
        // Rounding can step outside by an ulp: clamp to the support.
        return Scalar(math::fmin(math::fmax(x, lo), hi));
      }
      case PriorKind::fixed:
      default:
        return Scalar(p0);
    }
  }

  /// Normalised log-density at x (-inf outside the support; NaN for NaN x).
  KOKKOS_INLINE_FUNCTION double log_density(double x) const {
    if (math::isnan(x)) return x;
    double const ninf = -HUGE_VAL;
    switch (kind) {
      case PriorKind::uniform:
        return (x < lo || x > hi) ? ninf : -log_norm;
      case PriorKind::normal: {
        double const z = (x - p0) / p1;
        return -0.5 * z * z - log_norm;
      }
      case PriorKind::log_uniform:
        return (x < lo || x > hi) ? ninf : -math::log(x) - log_norm;
      case PriorKind::truncated_normal: {
        if (x < lo || x > hi) return ninf;
        double const z = (x - p0) / p1;
        return -0.5 * z * z - log_norm;
      }
      case PriorKind::fixed:
      default:
        return x == p0 ? 0.0 : ninf;
    }
  }

  /// Mean (host; for documentation and tests).
  double mean() const {
    switch (kind) {
      case PriorKind::uniform:
        return 0.5 * (lo + hi);
      case PriorKind::normal:
        return p0;
      case PriorKind::log_uniform:
        return (hi - lo) / std::log(hi / lo);
      case PriorKind::truncated_normal: {
        auto const m = truncated_moments();
        return p0 + p1 * m.first;
      }
      default:
        return p0;
    }
  }
  /// Variance (host).
  double variance() const {
    switch (kind) {
      case PriorKind::uniform:
        return (hi - lo) * (hi - lo) / 12;
      case PriorKind::normal:
        return p1 * p1;
      case PriorKind::log_uniform: {
        double const l = std::log(hi / lo), m = (hi - lo) / l;
        return (hi * hi - lo * lo) / (2 * l) - m * m;
      }
      case PriorKind::truncated_normal:
        return p1 * p1 * truncated_moments().second;
      default:
        return 0;
    }
  }

 private:
  // Standardised mean and variance of the truncated normal
  // (Johnson, Kotz & Balakrishnan 1994, eq. 13.134-13.135).
  std::pair<double, double> truncated_moments() const {
    double const a = (lo - p0) / p1, b = (hi - p0) / p1;
    auto phi = [](double t) { return std::isfinite(t) ? std::exp(-0.5 * t * t) * 0.398942280401432677939946 : 0.0; };
    auto tphi = [&](double t) { return std::isfinite(t) ? t * phi(t) : 0.0; };
    double const z = cdf_hi - cdf_lo;
    double const m = (phi(a) - phi(b)) / z;
    return {m, 1 + (tphi(a) - tphi(b)) / z - m * m};
  }
};

//----------------------------------------------------------------------------
// Named parameter tables.

/// Named priors, drawn as a batch of parameter vectors on any space.
///
/// Column k of a draw is parameter `names()[k]`; image i, parameter k uses
/// the stream (seed, purpose_prior, first_image + i, k): adding parameters at
/// the end of the table leaves the earlier columns unchanged, and a batch
/// drawn in chunks equals one drawn at once.
template <class Scalar, class MemorySpace>
class ParameterTable {
 public:
  using prior_type = Prior<Scalar>;

  ParameterTable() = default;
  /// From (name, prior) pairs; names must be unique and non-empty.
  explicit ParameterTable(std::vector<std::pair<std::string, prior_type>> const& entries) {
    for (auto const& e : entries)
      add(e.first, e.second);
  }

  /// Append a parameter (host; rebuilds the device copy).
  ParameterTable& add(std::string const& name, prior_type const& prior) {
    constexpr char const* where = "lensing::simulate::ParameterTable::add";
    check_argument(!name.empty(), where, "parameter names must be non-empty");
    check_argument(find(name) < 0, where, "duplicate parameter name '" + name + "'");
    m_names.push_back(name);
    m_host.push_back(prior);
    m_device = View1D<prior_type, MemorySpace>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::ParameterTable"), m_host.size());
    auto h = Kokkos::create_mirror_view(m_device);
    for (size_t i = 0; i < m_host.size(); ++i)
      h(i) = m_host[i];
    Kokkos::deep_copy(m_device, h);
    return *this;
  }

  int size() const { return int(m_names.size()); }
  std::vector<std::string> const& names() const { return m_names; }
  prior_type const& prior(int k) const { return m_host.at(k); }
  /// Column of `name`, or -1.
  int find(std::string const& name) const {
    for (size_t i = 0; i < m_names.size(); ++i)
      if (m_names[i] == name) return int(i);
    return -1;
  }
  /// Column of `name`; std::invalid_argument if absent.
  int index(std::string const& name) const {
    int const k = find(name);
    check_argument(k >= 0, "lensing::simulate::ParameterTable::index", "no parameter named '" + name + "'");
    return k;
  }
  View1D<prior_type, MemorySpace> device_priors() const { return m_device; }

  /// out(i, k) ~ prior k for image first_image + i; out has extents (n, size()).
  template <class ExecutionSpace, class View>
  void sample(ExecutionSpace const& space, View const& out, std::uint64_t seed, std::uint64_t first_image = 0) const {
    constexpr char const* where = "lensing::simulate::ParameterTable::sample";
    check_out<ExecutionSpace, View>(where, out);
    auto const priors = m_device;
    int const k = size();
    Kokkos::parallel_for(
        "lensing::simulate::sample_priors",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(out.extent(0)) * k),
        KOKKOS_LAMBDA(long i) {
          long const b = i / k;
          int const j = int(i % k);
          random::Stream r(random::stream_key(seed, random::purpose_prior, first_image + b, j));
          out(b, j) = priors(j).sample(r);
        });
  }

  /// logp(i) = sum_k log p_k(params(i, k)) (double).
  template <class ExecutionSpace, class View, class Out>
  void log_density(ExecutionSpace const& space, View const& params, Out const& logp) const {
    constexpr char const* where = "lensing::simulate::ParameterTable::log_density";
    check_out<ExecutionSpace, View, true>(where, params);
    static_assert(Out::rank == 1, "lensing::simulate::ParameterTable::log_density: logp must be rank 1");
    static_assert(is_accessible_from_v<ExecutionSpace, typename Out::memory_space>,
                  "lensing::simulate::ParameterTable::log_density: logp must be accessible from the space");
    check_argument(logp.extent(0) == params.extent(0), where, "logp must have length params.extent(0)");
    auto const priors = m_device;
    int const k = size();
    Kokkos::parallel_for(
        "lensing::simulate::prior_log_density", Kokkos::RangePolicy<ExecutionSpace>(space, 0, int(params.extent(0))),
        KOKKOS_LAMBDA(int b) {
          double s = 0;
          for (int j = 0; j < k; ++j)
            s += priors(j).log_density(double(params(b, j)));
          logp(b) = s;
        });
  }

 private:
  template <class ExecutionSpace, class View, bool Input = false>
  void check_out(char const* where, View const& v) const {
    static_assert(is_execution_space_v<ExecutionSpace>,
                  "lensing::simulate::ParameterTable: first argument must be a Kokkos execution space");
    static_assert(View::rank == 2, "lensing::simulate::ParameterTable: parameters are a rank-2 view (n, num_params)");
    static_assert(Input || std::is_same<typename View::value_type, Scalar>::value,
                  "lensing::simulate::ParameterTable: the output view must hold the table's Scalar");
    static_assert(is_accessible_from_v<ExecutionSpace, typename View::memory_space>,
                  "lensing::simulate::ParameterTable: views must be accessible from the execution space");
    static_assert(
        is_accessible_from_v<ExecutionSpace, MemorySpace>,
        "lensing::simulate::ParameterTable: the table's memory space must be accessible from the execution space");
    check_argument(size() > 0, where, "the table is empty");
    check_argument(v.extent(1) == size_t(size()), where,
                   "parameter views must have extent(1) = num_params = " + std::to_string(size()) + ", got " +
                       std::to_string(v.extent(1)));
  }

  std::vector<std::string> m_names;
  std::vector<prior_type> m_host;
  View1D<prior_type, MemorySpace> m_device;
};

}  // namespace simulate
}  // namespace lensing

#endif  // LENSING_SIMULATE_PRIORS_HPP
