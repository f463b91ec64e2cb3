#ifndef LENSING_FIT_POSTERIOR_HPP
#define LENSING_FIT_POSTERIOR_HPP

/// \file
/// Posterior<Likelihood>: an image likelihood (likelihood/gaussian.hpp) and a
/// table of priors by parameter name (density/parameter_table.hpp) as one
/// LogDensity (density/log_density.hpp) on unconstrained parameters, so that
/// the optimizers and samplers run on a lens model without user glue.
///
///   lensing::ParameterTable<double, Kokkos::HostSpace> table;
///   table.add("lens0.theta_E", Prior<double>::uniform(0.5, 2)) ...;
///   table.tie("light0.center_x", "lens0.center_x");       // lens light on the lens
///   table.add("lens1.ra_0", Prior<double>::fixed(0));      // not sampled
///   lensing::Posterior post(likelihood, table);
///   auto r = lensing::sample(space, post, options);        // NUTS on R^dimension()
///   auto s = lensing::summarize(post, r);                  // by name, constrained
///
/// Also the named results of a run: constrained draws, summaries (mean, sd,
/// quantiles, R-hat, ESS, MCSE by name, with convergence warnings) and CSV.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>
#include <lensing/density/log_density.hpp>
#include <lensing/density/parameter_table.hpp>
#include <lensing/density/prior.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/parameter_names.hpp>
#include <lensing/sample/bijections.hpp>
#include <lensing/sample/diagnostics.hpp>
#include <lensing/sample/draws.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lensing {

//----------------------------------------------------------------------------
/// The constraining bijection of one free parameter of a Posterior: x =
/// f(u) from u in R onto the open interval (lo, hi), with the transforms of
/// sample/bijections.hpp:
///
/// | kind        | support      | x = f(u)                          | log|dx/du|                      |
/// |-------------|--------------|-----------------------------------|---------------------------------|
/// | identity    | R            | u                                 | 0                               |
/// | lower_bound | (lo, inf)    | lo + exp(u)      (LowerBound)     | u                               |
/// | upper_bound | (-inf, hi)   | hi - exp(u)      (UpperBound)     | u                               |
/// | bounded     | (lo, hi)     | lo + (hi - lo) sigmoid(u) (Bounded) | log(hi-lo) - softplus(u) - softplus(-u) |
///
/// `for_prior` picks the transform whose support is the prior's: both ends
/// finite (uniform, log-uniform, beta, a truncated normal on [lo, hi]) ->
/// bounded; only the lower end (half-normal, half-Cauchy, gamma, a normal
/// truncated below) -> lower_bound; only the upper end -> upper_bound;
/// neither (normal, Student-t) -> identity.  Host only (double).
struct ParameterTransform {
  enum class Kind { identity, lower_bound, upper_bound, bounded };
  Kind kind = Kind::identity;
  double lo = -HUGE_VAL, hi = HUGE_VAL;

  static ParameterTransform identity() { return {}; }
  static ParameterTransform lower_bound(double lo) {
    check_finite(lo, "lensing::ParameterTransform::lower_bound", "lo");
    return {Kind::lower_bound, lo, HUGE_VAL};
  }
  static ParameterTransform positive() { return lower_bound(0); }
  static ParameterTransform upper_bound(double hi) {
    check_finite(hi, "lensing::ParameterTransform::upper_bound", "hi");
    return {Kind::upper_bound, -HUGE_VAL, hi};
  }
  static ParameterTransform bounded(double lo, double hi) {
    constexpr char const* where = "lensing::ParameterTransform::bounded";
    check_finite(lo, where, "lo");
    check_finite(hi, where, "hi");
    check_argument(lo < hi, where, "need lo < hi");
    return {Kind::bounded, lo, hi};
  }
  /// The transform onto the support of `prior` (see above).
  static ParameterTransform for_prior(Prior<double> const& prior) {
    bool const has_lo = std::isfinite(prior.lo), has_hi = std::isfinite(prior.hi);
    if (has_lo && has_hi) return bounded(prior.lo, prior.hi);
    if (has_lo) return lower_bound(prior.lo);
    if (has_hi) return upper_bound(prior.hi);
    return identity();
  }

  double constrain(double u) const {
    switch (kind) {
      case Kind::lower_bound:
        return LowerBound<double>{lo}.constrain(u);
      case Kind::upper_bound:
        return UpperBound<double>{hi}.constrain(u);
      case Kind::bounded:
        return Bounded<double>{lo, hi}.constrain(u);
      default:
        return u;
    }
  }
  /// u = f^-1(x); +-inf or NaN outside the open support (see contains()).
  double unconstrain(double x) const {
    switch (kind) {
      case Kind::lower_bound:
        return LowerBound<double>{lo}.unconstrain(x);
      case Kind::upper_bound:
        return UpperBound<double>{hi}.unconstrain(x);
      case Kind::bounded:
        return Bounded<double>{lo, hi}.unconstrain(x);
      default:
        return x;
    }
  }
  /// Whether x is inside the open support (finite u).
  bool contains(double x) const { return x > lo && x < hi && std::isfinite(x); }
  double log_jacobian(double u) const {
    switch (kind) {
      case Kind::lower_bound:
        return LowerBound<double>{lo}.log_jacobian(u);
      case Kind::upper_bound:
        return UpperBound<double>{hi}.log_jacobian(u);
      case Kind::bounded:
        return Bounded<double>{lo, hi}.log_jacobian(u);
      default:
        return 0;
    }
  }
  /// d/du [logp(f(u)) + log|f'(u)|] given x_bar = dlogp/dx.
  double pullback(double u, double x_bar) const {
    switch (kind) {
      case Kind::lower_bound:
        return LowerBound<double>{lo}.pullback(u, x_bar);
      case Kind::upper_bound:
        return UpperBound<double>{hi}.pullback(u, x_bar);
      case Kind::bounded:
        return Bounded<double>{lo, hi}.pullback(u, x_bar);
      default:
        return x_bar;
    }
  }
  /// "identity", "lower_bound(0)", "bounded(0.5, 2)", ...
  std::string describe() const {
    std::ostringstream s;
    s.precision(10);
    switch (kind) {
      case Kind::lower_bound:
        s << "lower_bound(" << lo << ")";
        break;
      case Kind::upper_bound:
        s << "upper_bound(" << hi << ")";
        break;
      case Kind::bounded:
        s << "bounded(" << lo << ", " << hi << ")";
        break;
      default:
        s << "identity";
    }
    return s.str();
  }
};

namespace detail {
// The model type and memory space of a likelihood: its own typedefs
// (model_type, memory_space) where it declares them, else those of a
// GaussianLikelihood's template arguments.
template <class L, class = void>
struct posterior_likelihood_traits {
  using model_type = typename L::model_type;
  using memory_space = typename L::memory_space;
};
template <class Model, class Mem, class Psf>
struct posterior_likelihood_traits<GaussianLikelihood<Model, Mem, Psf>, void> {
  using model_type = Model;
  using memory_space = Mem;
};

inline std::string join_names(std::vector<std::string> const& names) {
  std::string s;
  for (auto const& n : names)
    s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? std::string("(none)") : s;
}
}  // namespace detail

//----------------------------------------------------------------------------
/// The posterior of a lens model's parameters given an image: a LogDensity
/// (density/log_density.hpp) on the unconstrained free parameters q in
/// R^dimension(),
///
///   log p(q) = log L(model(x)) + sum_k log p_k(x_k) + sum_f log|dx_f/dq_f|,
///   x_f = f_f(q_f) (free),  x = v (fixed),  x_t = s x_src + o (tied),
///
/// up to a constant, with its exact gradient:
///   dlogp/dq_f = f_f'(q_f) [dlogL/dx + dlogprior/dx]_f + d/dq_f log|f_f'|,
/// where dlogL/dx of a tied parameter is added (times s) to its source's
/// (ParameterTable::pullback_ties).
///
/// Parameters: the table (ParameterTable<double, HostSpace>) must name every
/// parameter of the likelihood's model exactly once (model_parameter_names,
/// model/parameter_names.hpp: "lens0.theta_E", "source0.amp", ...) and
/// nothing else; an unknown or missing name is a std::invalid_argument that
/// names it and lists the model's names.  Each model parameter is
///  - fixed: Prior::fixed(v) (held at v, not sampled);
///  - tied: table.tie(name, source, scale, offset) (x = scale x_source + offset);
///  - free: any other prior.  Free parameters are sampled in model order
///    (free_names()), each through the ParameterTransform onto its prior's
///    support (ParameterTransform::for_prior), or an override given by name.
///
/// Evaluation: constrain q, fill in the fixed values and ties, unpack the
/// model (in the likelihood's Scalar: a float likelihood gets the parameters
/// rounded to float and returns a float value and gradient, accumulated here
/// in double), evaluate the likelihood and its gradient on the execution
/// space passed in when it can access the likelihood's memory, else on
/// `ExecutionSpace` (e.g. a CUDA likelihood driven by host-side samplers),
/// and add the prior and the log-Jacobian.  A point outside a prior's support
/// or where the model's profiles reject their parameters (Model::check(),
/// e.g. |e| >= 1) has log p = -inf and a zero gradient (samplers count it as
/// a divergence, optimizers reject the step).
///
/// Likelihood: a GaussianLikelihood<Model, MemorySpace, Psf>, or any type
/// with `model_type` (a LensModel) and `memory_space` typedefs and
/// `Scalar value_and_gradient(space, model, View1D<Scalar, memory_space> grad)`
/// returning log L and writing d log L / d theta (pack order), fencing
/// `space`; its optional clone() and launches_kernels are forwarded.
///
/// Threads: the Posterior holds the likelihood (whose work buffers copies
/// share) and one gradient buffer; clone() deep-copies both, and
/// `launches_kernels` is the likelihood's, so sample() (one clone per chain,
/// chains on the calling thread) gives the same draws at any thread count.
template <class Likelihood, class ExecutionSpace =
                                typename detail::posterior_likelihood_traits<Likelihood>::memory_space::execution_space>
class Posterior {
 public:
  using likelihood_type = Likelihood;
  using model_type = typename detail::posterior_likelihood_traits<Likelihood>::model_type;
  using likelihood_memory_space = typename detail::posterior_likelihood_traits<Likelihood>::memory_space;
  using likelihood_scalar = typename model_type::scalar_type;
  using execution_space = ExecutionSpace;
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  using table_type = ParameterTable<double, Kokkos::HostSpace>;
  static constexpr int num_model_params = model_type::num_params;
  /// Evaluations launch the likelihood's kernels (LogDensity).
  static constexpr bool launches_kernels = launches_kernels_v<Likelihood>;
  static_assert(is_execution_space_v<ExecutionSpace>, "lensing::Posterior: ExecutionSpace must be an execution space");
  static_assert(is_accessible_from_v<ExecutionSpace, likelihood_memory_space>,
                "lensing::Posterior: ExecutionSpace must access the likelihood's memory space");

  /// Transform overrides by free-parameter name (see ParameterTransform).
  using transform_overrides = std::vector<std::pair<std::string, ParameterTransform>>;

  /// Throws std::invalid_argument ("lensing::Posterior: ...") for a table
  /// name that is not a model parameter, a model parameter missing from the
  /// table, no free parameter, or an override naming no free parameter.
  Posterior(Likelihood const& likelihood, table_type const& table, transform_overrides const& overrides = {},
            ExecutionSpace const& space = ExecutionSpace())
      : m_like(likelihood), m_table(table), m_space(space), m_names(model_parameter_names<model_type>()) {
    constexpr char const* where = "lensing::Posterior";
    std::string const known = detail::join_names(m_names);
    for (auto const& t : table.names())
      check_argument(std::find(m_names.begin(), m_names.end(), t) != m_names.end(), where,
                     "the prior table names '" + t + "', which is not a parameter of the model; known: " + known);
    m_column.resize(std::size_t(num_model_params));
    for (int j = 0; j < num_model_params; ++j) {
      int const c = table.find(m_names[j]);
      check_argument(c >= 0, where,
                     "the model parameter '" + m_names[j] +
                         "' has no prior in the table (add one; Prior::fixed(value) for a constant); known: " + known);
      m_column[j] = c;
    }
    m_base_row.assign(std::size_t(table.size()), 0.0);
    for (int j = 0; j < num_model_params; ++j) {
      int const c = m_column[j];
      if (table.is_tied(c)) continue;
      Prior<double> const& p = table.prior(c);
      if (p.kind == PriorKind::fixed) {
        m_base_row[c] = p.p0;
        continue;
      }
      m_free_model.push_back(j);
      m_free_column.push_back(c);
      m_free_names.push_back(m_names[j]);
      m_transforms.push_back(ParameterTransform::for_prior(p));
    }
    check_argument(!m_free_model.empty(), where,
                   "every parameter is fixed or tied: nothing to infer (give at least one a prior that is not fixed)");
    for (auto const& o : overrides) {
      auto const it = std::find(m_free_names.begin(), m_free_names.end(), o.first);
      check_argument(it != m_free_names.end(), where,
                     "a transform override names '" + o.first +
                         "', which is not a free parameter; free: " + detail::join_names(m_free_names));
      m_transforms[std::size_t(it - m_free_names.begin())] = o.second;
    }
    // Without initialisation (the likelihood overwrites it): no kernel, so
    // clone() may run in a sampler's worker thread (a density whose
    // likelihood launches no kernels runs its chains there).
    m_grad = View1D<likelihood_scalar, likelihood_memory_space>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::Posterior::grad"), num_model_params);
    m_grad_host = Kokkos::create_mirror_view(m_grad);
    compute_start_scales();
  }

  /// An independent copy: the likelihood's clone() and a fresh gradient buffer.
  Posterior clone() const { return Posterior(*this, CloneTag{}); }

  //--------------------------------------------------------------------------
  // LogDensity.

  /// Number of free (sampled) parameters.
  int dimension() const { return int(m_free_model.size()); }

  /// log p(q) and grad = dlogp/dq (host views of length dimension()); see the class comment.
  template <class Space>
  double value_and_gradient(Space const& space, View1D<double, Kokkos::HostSpace> const& q,
                            View1D<double, Kokkos::HostSpace> const& grad) const {
    constexpr char const* where = "lensing::Posterior::value_and_gradient";
    int const d = dimension();
    check_argument(q.extent(0) == std::size_t(d) && grad.extent(0) == std::size_t(d), where,
                   "q and grad must have length dimension() = " + std::to_string(d));
    int const nt = m_table.size();
    std::vector<double> row = m_base_row, gprior(static_cast<std::size_t>(nt)),
                        glike(static_cast<std::size_t>(nt), 0.0);
    double log_jac = 0;
    for (int f = 0; f < d; ++f) {
      row[m_free_column[f]] = m_transforms[f].constrain(q(f));
      log_jac += m_transforms[f].log_jacobian(q(f));
    }
    m_table.resolve_ties(row.data());
    double const log_prior = m_table.log_density_and_gradient(row.data(), gprior.data());
    if (!(log_prior > -HUGE_VAL) || !std::isfinite(log_jac)) return reject(grad, log_prior + log_jac);
    model_type model;
    try {
      model = unpack_row(row);
      check_model(model);
    } catch (std::invalid_argument const&) {
      return reject(grad, -HUGE_VAL);
    }
    likelihood_scalar log_like;
    if constexpr (is_accessible_from_v<Space, likelihood_memory_space>)
      log_like = m_like.value_and_gradient(space, model, m_grad);
    else
      log_like = m_like.value_and_gradient(m_space, model, m_grad);
    if (m_grad_host.data() != m_grad.data()) Kokkos::deep_copy(m_grad_host, m_grad);
    for (int j = 0; j < num_model_params; ++j)
      glike[m_column[j]] += double(m_grad_host(j));
    m_table.pullback_ties(glike.data());
    for (int f = 0; f < d; ++f) {
      int const c = m_free_column[f];
      grad(f) = m_transforms[f].pullback(q(f), glike[c] + gprior[c]);
    }
    return double(log_like) + log_prior + log_jac;
  }

  //--------------------------------------------------------------------------
  // Names and maps between the unconstrained and the named parameters.

  /// Names of the free parameters, in the order of q (model order).
  std::vector<std::string> const& free_names() const { return m_free_names; }
  /// Names of every model parameter, in model order (the rows of constrain()).
  std::vector<std::string> const& all_names() const { return m_names; }
  /// The transform of free parameter f.
  ParameterTransform const& transform(int f) const { return m_transforms.at(std::size_t(f)); }
  table_type const& table() const { return m_table; }
  Likelihood const& likelihood() const { return m_like; }

  /// The draws of every named parameter of a run on this posterior:
  /// (chain, draw, parameter) layout with all_names() columns (as
  /// constrained_draws(posterior, r)).
  std::vector<double> constrained_draws(SampleResult const& r) const {
    check_argument(r.dimension == dimension(), "lensing::Posterior::constrained_draws",
                   "the run's dimension " + std::to_string(r.dimension) + " is not the posterior's " +
                       std::to_string(dimension()));
    return map_draws(r, num_model_params, [this](double const* q, double* x) {
      auto const row = constrain(q);
      std::copy(row.begin(), row.end(), x);
    });
  }

  /// Every model parameter (model order: all_names()) at unconstrained q.
  std::vector<double> constrain(double const* q) const {
    std::vector<double> row = m_base_row;
    for (int f = 0; f < dimension(); ++f)
      row[m_free_column[f]] = m_transforms[f].constrain(q[f]);
    m_table.resolve_ties(row.data());
    std::vector<double> out(static_cast<std::size_t>(num_model_params));
    for (int j = 0; j < num_model_params; ++j)
      out[j] = row[m_column[j]];
    return out;
  }
  std::vector<double> constrain(std::vector<double> const& q) const {
    check_argument(
        q.size() == std::size_t(dimension()), "lensing::Posterior::constrain",
        "q must have dimension() = " + std::to_string(dimension()) + " entries, got " + std::to_string(q.size()));
    return constrain(q.data());
  }

  /// The unconstrained point of `values`: either a full row (num_model_params
  /// values in model order; fixed and tied entries are ignored) or the free
  /// values (dimension() values in free_names() order).  Throws
  /// std::invalid_argument naming the parameter if a value lies outside the
  /// open support of its transform (e.g. on a uniform prior's bound).
  std::vector<double> unconstrain(std::vector<double> const& values) const {
    return unconstrain_impl(values, "lensing::Posterior::unconstrain");
  }
  /// unconstrain(row), for an initial point of an optimizer or sampler (the
  /// same checks, reported as a bad initial point).
  std::vector<double> initial_point_from(std::vector<double> const& row) const {
    return unconstrain_impl(row, "lensing::Posterior::initial_point_from");
  }

  /// The model at unconstrained q (the likelihood's Scalar).
  model_type model_at(std::vector<double> const& q) const {
    auto const x = constrain(q);
    std::vector<likelihood_scalar> t(x.begin(), x.end());
    return model_type::unpack(t.data());
  }

  /// `n` unconstrained starting points drawn from the priors: start s,
  /// free parameter in table column c is drawn from the stream (seed,
  /// purpose_prior, s, c), the draw ParameterTable::sample makes for image
  /// s.  A draw on the edge of its support (e.g. exactly a uniform's lower
  /// bound) is moved to u = -+30.
  std::vector<std::vector<double>> draw_prior_starts(int n, std::uint64_t seed) const {
    check_count(n, 1, "lensing::Posterior::draw_prior_starts", "n");
    std::vector<std::vector<double>> out(static_cast<std::size_t>(n),
                                         std::vector<double>(static_cast<std::size_t>(dimension())));
    for (int s = 0; s < n; ++s)
      for (int f = 0; f < dimension(); ++f)
        out[s][f] = prior_draw_unconstrained(f, seed, std::uint64_t(s));
    return out;
  }

  /// Per free parameter, a prior scale in the unconstrained space: half the
  /// central 68 % interval of the prior pushed through its transform
  /// (estimated from 2000 fixed prior draws; = sigma for a normal prior on
  /// an identity transform), e.g. the radius of multi-start perturbations or
  /// a first guess of the inverse metric (its square).
  std::vector<double> const& start_scales() const { return m_scales; }

 private:
  struct CloneTag {};
  Posterior(Posterior const& o, CloneTag)
      : m_like(clone_density(o.m_like)),
        m_table(o.m_table),
        m_space(o.m_space),
        m_names(o.m_names),
        m_column(o.m_column),
        m_free_model(o.m_free_model),
        m_free_column(o.m_free_column),
        m_free_names(o.m_free_names),
        m_transforms(o.m_transforms),
        m_base_row(o.m_base_row),
        m_scales(o.m_scales),
        m_grad(Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::Posterior::grad"), num_model_params) {
    m_grad_host = Kokkos::create_mirror_view(m_grad);
  }

  static double reject(View1D<double, Kokkos::HostSpace> const& grad, double value) {
    for (std::size_t f = 0; f < grad.extent(0); ++f)
      grad(f) = 0;
    return std::isnan(value) ? value : -HUGE_VAL;
  }

  model_type unpack_row(std::vector<double> const& row) const {
    likelihood_scalar t[num_model_params > 0 ? num_model_params : 1];
    for (int j = 0; j < num_model_params; ++j)
      t[j] = likelihood_scalar(row[m_column[j]]);
    return model_type::unpack(t);
  }

  std::vector<double> unconstrain_impl(std::vector<double> const& values, char const* where) const {
    int const d = dimension();
    bool const full = values.size() == std::size_t(num_model_params);
    check_argument(full || values.size() == std::size_t(d), where,
                   "expected a full row of " + std::to_string(num_model_params) + " values (all_names()) or the " +
                       std::to_string(d) + " free values (free_names()), got " + std::to_string(values.size()));
    std::vector<double> q(static_cast<std::size_t>(d));
    for (int f = 0; f < d; ++f) {
      double const x = values[full ? std::size_t(m_free_model[f]) : std::size_t(f)];
      ParameterTransform const& t = m_transforms[f];
      if (!t.contains(x)) {
        std::ostringstream s;
        s.precision(17);
        s << "'" << m_free_names[f] << "' = " << x << " is outside the support of its transform " << t.describe()
          << " (prior " << m_table.prior(m_free_column[f]).family() << "); start strictly inside the prior's support";
        throw_invalid_argument(where, s.str());
      }
      q[f] = t.unconstrain(x);
    }
    return q;
  }

  double prior_draw_unconstrained(int f, std::uint64_t seed, std::uint64_t index) const {
    int const c = m_free_column[f];
    random::Stream r(random::stream_key(seed, random::purpose_prior, index, std::uint64_t(c)));
    ParameterTransform const& t = m_transforms[f];
    double const x = double(m_table.prior(c).sample(r));
    // Checked first: log(0) at a bound would raise a floating-point exception.
    if (!t.contains(x)) return std::isnan(x) ? 0.0 : (x <= t.lo ? -30.0 : 30.0);
    return std::max(-30.0, std::min(30.0, t.unconstrain(x)));
  }

  void compute_start_scales() {
    constexpr int n = 2000;
    constexpr std::uint64_t seed = 0x5ca1e5;
    m_scales.assign(std::size_t(dimension()), 1.0);
    std::vector<double> u(static_cast<std::size_t>(n));
    for (int f = 0; f < dimension(); ++f) {
      for (int i = 0; i < n; ++i)
        u[i] = prior_draw_unconstrained(f, seed, std::uint64_t(i));
      double const s = 0.5 * (diagnostics::detail::quantile(u, 0.8413447460685429) -
                              diagnostics::detail::quantile(u, 0.15865525393145707));
      if (std::isfinite(s) && s > 0) m_scales[f] = s;
    }
  }

  Likelihood m_like;
  table_type m_table;
  ExecutionSpace m_space;
  std::vector<std::string> m_names;              // model order
  std::vector<int> m_column;                     // model parameter j -> table column
  std::vector<int> m_free_model, m_free_column;  // free f -> model index, table column
  std::vector<std::string> m_free_names;         // free f -> name
  std::vector<ParameterTransform> m_transforms;  // free f
  std::vector<double> m_base_row;                // table order, fixed values filled in
  std::vector<double> m_scales;                  // free f
  View1D<likelihood_scalar, likelihood_memory_space> m_grad;
  typename View1D<likelihood_scalar, likelihood_memory_space>::HostMirror m_grad_host;
};

//----------------------------------------------------------------------------
// Named results of a run on a Posterior.

/// The draws of every named parameter (all_names(), model order) of a run
/// on `posterior`: (chain, draw, parameter) layout, as map_draws and
/// write_csv take them.
template <class L, class E>
std::vector<double> constrained_draws(Posterior<L, E> const& posterior, SampleResult const& r) {
  return posterior.constrained_draws(r);
}

/// Summary of a run on a Posterior: one row per named parameter
/// (diagnostics::ParameterSummary: mean, sd, MCSE of the mean, 5/50/95 %
/// quantiles, bulk and tail ESS, rank-normalised R-hat) of the constrained
/// draws, and the run's convergence warnings.
struct PosteriorSummary {
  std::vector<diagnostics::ParameterSummary> rows;  ///< all_names() order (fixed and tied included)
  std::vector<std::string> free_names;              ///< the sampled parameters
  long long divergences = 0;                        ///< after warm-up, all chains
  double min_ebfmi = NAN;                           ///< smallest E-BFMI over the chains
  std::vector<std::string> warnings;                ///< empty when no check failed

  /// The row of `name`; std::invalid_argument listing the names if absent.
  diagnostics::ParameterSummary const& operator[](std::string const& name) const {
    for (auto const& r : rows)
      if (r.name == name) return r;
    std::vector<std::string> names;
    for (auto const& r : rows)
      names.push_back(r.name);
    throw_invalid_argument("lensing::PosteriorSummary",
                           "no parameter named '" + name + "'; known: " + detail::join_names(names));
  }
  /// No warning (R-hat, ESS, divergences, E-BFMI).
  bool converged() const { return warnings.empty(); }
  /// The table (diagnostics::print_summary) and the warnings.
  void print(std::ostream& os) const {
    diagnostics::print_summary(os, rows);
    os << "divergences: " << divergences << ", min E-BFMI: " << min_ebfmi << "\n";
    for (auto const& w : warnings)
      os << "warning: " << w << "\n";
  }
};

/// Summaries by name of a run on `posterior`, with warnings for a run that
/// has not converged: a free parameter with R-hat > 1.01 or bulk/tail ESS
/// below 100 per chain (Vehtari et al. 2021's thresholds), divergent
/// transitions after warm-up, or a chain with E-BFMI < 0.3 (Betancourt 2016).
template <class L, class E>
PosteriorSummary summarize(Posterior<L, E> const& posterior, SampleResult const& r) {
  PosteriorSummary s;
  s.rows = diagnostics::summarize(constrained_draws(posterior, r), r.num_chains, r.num_draws, posterior.all_names());
  s.free_names = posterior.free_names();
  s.divergences = r.divergences();
  char buf[256];
  double const min_ess = 100.0 * r.num_chains;
  for (auto const& row : s.rows) {
    if (std::find(s.free_names.begin(), s.free_names.end(), row.name) == s.free_names.end()) continue;
    if (!(row.rhat <= 1.01)) {
      std::snprintf(buf, sizeof buf, "%s: R-hat %.4f > 1.01 (chains disagree: run longer or check for modes)",
                    row.name.c_str(), row.rhat);
      s.warnings.push_back(buf);
    }
    if (!(std::min(row.ess_bulk, row.ess_tail) >= min_ess)) {
      std::snprintf(buf, sizeof buf, "%s: ESS bulk %.0f / tail %.0f below %.0f (100 per chain)", row.name.c_str(),
                    row.ess_bulk, row.ess_tail, min_ess);
      s.warnings.push_back(buf);
    }
  }
  if (s.divergences > 0) {
    std::snprintf(buf, sizeof buf, "%lld divergent transitions after warm-up (raise target_accept or reparametrise)",
                  s.divergences);
    s.warnings.push_back(buf);
  }
  if (r.num_draws >= 2 && r.energy.size() == std::size_t(r.num_chains) * r.num_draws) {
    for (int c = 0; c < r.num_chains; ++c) {
      double const e = diagnostics::ebfmi(r.energy.data() + std::size_t(c) * r.num_draws, r.num_draws);
      s.min_ebfmi = c == 0 ? e : std::min(s.min_ebfmi, e);
    }
    if (s.min_ebfmi < 0.3) {
      std::snprintf(buf, sizeof buf, "E-BFMI %.3f < 0.3 in a chain (poorly explored energy: heavy tails?)",
                    s.min_ebfmi);
      s.warnings.push_back(buf);
    }
  }
  return s;
}

inline std::ostream& operator<<(std::ostream& os, PosteriorSummary const& s) {
  s.print(os);
  return os;
}

/// CSV of a run on `posterior`: the constrained draws of every named
/// parameter (columns all_names()) and the sampler statistics (write_csv,
/// sample/draws.hpp).
template <class L, class E>
void write_csv(std::ostream& os, Posterior<L, E> const& posterior, SampleResult const& r) {
  auto const values = constrained_draws(posterior, r);
  write_csv(os, r, posterior.all_names(), &values);
}
/// write_csv to a file; std::runtime_error if it cannot be written.
template <class L, class E>
void write_csv(std::string const& path, Posterior<L, E> const& posterior, SampleResult const& r) {
  auto const values = constrained_draws(posterior, r);
  write_csv(path, r, posterior.all_names(), &values);
}

}  // namespace lensing

#endif  // LENSING_FIT_POSTERIOR_HPP
