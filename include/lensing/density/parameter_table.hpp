#ifndef LENSING_DENSITY_PARAMETER_TABLE_HPP
#define LENSING_DENSITY_PARAMETER_TABLE_HPP

/// \file
/// A named table of priors (name -> Prior, density/prior.hpp): it draws a
/// batch of parameter vectors (n, num_params) on any execution space for the
/// training-set simulator, and evaluates the joint log-prior and its
/// gradient for a posterior.  Parameters are either independent (a prior of
/// their own) or tied to an independent one, x_name = scale x_source +
/// offset (e.g. the lens light centred on the lens mass).

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>
#include <lensing/density/prior.hpp>

#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace lensing {

/// How a parameter of a ParameterTable depends on another: x = scale *
/// x_source + offset, source = its column; source < 0 for an independent
/// parameter.  Trivially copyable (read inside the sampling kernels).
struct ParameterTie {
  int source = -1;
  double scale = 1, offset = 0;
};

/// Named priors, drawn as a batch of parameter vectors on any space, and the
/// joint log-prior of a host row.
///
/// Column k of a draw is parameter `names()[k]`, columns in the order the
/// parameters were added.  Independent parameter k of image i is drawn from
/// the stream (seed, purpose_prior, first_index + i, k): adding parameters at
/// the end of the table leaves the earlier columns unchanged, and a batch
/// drawn in chunks equals one drawn at once.  Tied parameters
/// (`tie(name, source, scale, offset)`) draw nothing: a second kernel sets
/// them from their sources after the independent draws.  They contribute no
/// density: the joint log-prior is the sum over the independent parameters,
/// and its gradient with respect to a tied column is 0 (a posterior whose
/// likelihood depends on a tied parameter adds scale * d/dx_tied to its
/// source's gradient: `pullback_ties`).
template <class Scalar, class MemorySpace>
class ParameterTable {
 public:
  using prior_type = Prior<Scalar>;

  ParameterTable() = default;
  /// From (name, prior) pairs; names must be unique and non-empty.
  explicit ParameterTable(std::vector<std::pair<std::string, prior_type>> const& entries) {
    for (auto const& e : entries)
      append(e.first, e.second, ParameterTie{}, "lensing::ParameterTable");
    upload();
  }

  /// The same table (names, priors, ties, column order) with its device copy
  /// in another memory space, e.g. a host copy of a device table.
  template <class OtherMemorySpace>
  explicit ParameterTable(ParameterTable<Scalar, OtherMemorySpace> const& other) {
    for (int k = 0; k < other.size(); ++k) {
      bool const tied = other.is_tied(k);
      append(other.names()[k], tied ? prior_type::fixed(0) : other.prior(k), tied ? other.tie_of(k) : ParameterTie{},
             "lensing::ParameterTable");
    }
    upload();
  }

  /// Append an independent parameter (host; rebuilds the device copy).
  ParameterTable& add(std::string const& name, prior_type const& prior) {
    append(name, prior, ParameterTie{}, "lensing::ParameterTable::add");
    upload();
    return *this;
  }

  /// Tie parameter `name` to the independent parameter `source_name`:
  /// x_name = scale * x_source + offset.  A new name is appended as a
  /// column; an existing independent parameter becomes tied in place (its
  /// column kept, its prior dropped) unless other parameters are tied to it.
  /// Throws std::invalid_argument for an unknown source, a source that is
  /// itself tied, a parameter tied to itself, or a non-finite scale/offset.
  ParameterTable& tie(std::string const& name, std::string const& source_name, double scale = 1, double offset = 0) {
    constexpr char const* where = "lensing::ParameterTable::tie";
    check_finite(scale, where, "scale");
    check_finite(offset, where, "offset");
    check_argument(name != source_name, where, "cannot tie '" + name + "' to itself");
    int const src = find(source_name);
    if (src < 0)
      throw_invalid_argument(
          where, "cannot tie '" + name + "' to unknown parameter '" + source_name + "'; known: " + known_names());
    if (m_ties[src].source >= 0)
      throw_invalid_argument(where, "cannot tie '" + name + "' to '" + source_name + "', which is itself tied to '" +
                                        m_names[m_ties[src].source] + "' (tie to that parameter instead)");
    ParameterTie const t{src, scale, offset};
    int const k = find(name);
    if (k < 0) {
      append(name, prior_type::fixed(0), t, where);
    } else {
      for (int j = 0; j < size(); ++j)
        if (m_ties[j].source == k)
          throw_invalid_argument(where, "cannot tie '" + name + "': '" + m_names[j] +
                                            "' is tied to it (tie that one to '" + source_name + "' instead)");
      m_host[k] = prior_type::fixed(0);
      m_ties[k] = t;
    }
    upload();
    return *this;
  }

  int size() const { return int(m_names.size()); }
  std::vector<std::string> const& names() const { return m_names; }
  /// Whether column k is tied to another.
  bool is_tied(int k) const { return m_ties.at(k).source >= 0; }
  /// The tie of column k (source < 0 for an independent parameter).
  ParameterTie const& tie_of(int k) const { return m_ties.at(k); }
  /// Prior of independent parameter k; std::invalid_argument for a tied one
  /// (it has no prior of its own) and std::out_of_range for a bad k.
  prior_type const& prior(int k) const {
    prior_type const& p = m_host.at(k);
    if (is_tied(k))
      throw_invalid_argument(
          "lensing::ParameterTable::prior",
          "'" + m_names[k] + "' is tied to '" + m_names[m_ties[k].source] + "' and has no prior of its own");
    return p;
  }
  /// Column of `name`, or -1.
  int find(std::string const& name) const {
    for (size_t i = 0; i < m_names.size(); ++i)
      if (m_names[i] == name) return int(i);
    return -1;
  }
  /// Column of `name`; std::invalid_argument naming it and the known names if absent.
  int index(std::string const& name) const {
    int const k = find(name);
    if (k < 0)
      throw_invalid_argument("lensing::ParameterTable::index",
                             "no parameter named '" + name + "'; known: " + known_names());
    return k;
  }
  /// Device copies of the priors (placeholders at tied columns) and ties.
  View1D<prior_type, MemorySpace> device_priors() const { return m_device; }
  View1D<ParameterTie, MemorySpace> device_ties() const { return m_device_ties; }

  //--------------------------------------------------------------------------
  // Batches on an execution space.

  /// out(i, k) ~ prior k for image first_index + i (tied columns from their
  /// sources); out has extents (n, size()).
  template <class ExecutionSpace, class View>
  void sample(ExecutionSpace const& space, View const& out, std::uint64_t seed, std::uint64_t first_index = 0) const {
    constexpr char const* where = "lensing::ParameterTable::sample";
    check_view<ExecutionSpace, View>(where, out);
    auto const priors = m_device;
    auto const ties = m_device_ties;
    int const k = size();
    Kokkos::parallel_for(
        "lensing::ParameterTable::sample",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(out.extent(0)) * k),
        KOKKOS_LAMBDA(long i) {
          long const b = i / k;
          int const j = int(i % k);
          if (ties(j).source >= 0) return;
          random::Stream r(random::stream_key(seed, random::purpose_prior, first_index + b, j));
          out(b, j) = priors(j).sample(r);
        });
    if (m_num_tied > 0) resolve_ties(space, out);
  }

  /// Sets the tied columns of params (n, size()) from their sources.
  template <class ExecutionSpace, class View>
  void resolve_ties(ExecutionSpace const& space, View const& params) const {
    constexpr char const* where = "lensing::ParameterTable::resolve_ties";
    check_view<ExecutionSpace, View>(where, params);
    auto const ties = m_device_ties;
    int const k = size();
    using value_type = typename View::value_type;
    Kokkos::parallel_for(
        "lensing::ParameterTable::resolve_ties", Kokkos::RangePolicy<ExecutionSpace>(space, 0, int(params.extent(0))),
        KOKKOS_LAMBDA(int b) {
          for (int j = 0; j < k; ++j) {
            ParameterTie const t = ties(j);
            if (t.source >= 0) params(b, j) = value_type(t.scale * double(params(b, t.source)) + t.offset);
          }
        });
  }

  /// logp(i) = sum over independent k of log p_k(params(i, k)) (double).
  template <class ExecutionSpace, class View, class Out>
  void log_density(ExecutionSpace const& space, View const& params, Out const& logp) const {
    constexpr char const* where = "lensing::ParameterTable::log_density";
    check_view<ExecutionSpace, View, true>(where, params);
    static_assert(Out::rank == 1, "lensing::ParameterTable::log_density: logp must be rank 1");
    static_assert(is_accessible_from_v<ExecutionSpace, typename Out::memory_space>,
                  "lensing::ParameterTable::log_density: logp must be accessible from the space");
    check_argument(logp.extent(0) == params.extent(0), where, "logp must have length params.extent(0)");
    auto const priors = m_device;
    auto const ties = m_device_ties;
    int const k = size();
    Kokkos::parallel_for(
        "lensing::ParameterTable::log_density", Kokkos::RangePolicy<ExecutionSpace>(space, 0, int(params.extent(0))),
        KOKKOS_LAMBDA(int b) {
          double s = 0;
          for (int j = 0; j < k; ++j)
            if (ties(j).source < 0) s += priors(j).log_density(double(params(b, j)));
          logp(b) = s;
        });
  }

  //--------------------------------------------------------------------------
  // One host row (a posterior's parameter vector in table order).

  /// Joint log-prior of row[0 .. size()) (tied entries ignored).
  double log_density(double const* row) const {
    double s = 0;
    for (int j = 0; j < size(); ++j)
      if (m_ties[j].source < 0) s += m_host[j].log_density(row[j]);
    return s;
  }
  double log_density(std::vector<double> const& row) const {
    check_row(row.size(), "lensing::ParameterTable::log_density");
    return log_density(row.data());
  }
  /// Joint log-prior of row, and grad[k] = d log prior / d row[k] (0 at tied columns).
  double log_density_and_gradient(double const* row, double* grad) const {
    double s = 0;
    for (int j = 0; j < size(); ++j) {
      bool const free = m_ties[j].source < 0;
      s += free ? m_host[j].log_density(row[j]) : 0.0;
      grad[j] = free ? m_host[j].gradient(row[j]) : 0.0;
    }
    return s;
  }
  double log_density_and_gradient(std::vector<double> const& row, std::vector<double>& grad) const {
    check_row(row.size(), "lensing::ParameterTable::log_density_and_gradient");
    grad.resize(row.size());
    return log_density_and_gradient(row.data(), grad.data());
  }
  /// Sets the tied entries of a host row from their sources.
  void resolve_ties(double* row) const {
    for (int j = 0; j < size(); ++j)
      if (m_ties[j].source >= 0) row[j] = m_ties[j].scale * row[m_ties[j].source] + m_ties[j].offset;
  }
  /// Chain rule through the ties: for a gradient g with respect to every
  /// column (tied ones included), adds scale * g[tied] to g[source] and sets
  /// g[tied] = 0, giving the gradient with respect to the independent ones.
  void pullback_ties(double* grad) const {
    for (int j = 0; j < size(); ++j)
      if (m_ties[j].source >= 0) {
        grad[m_ties[j].source] += m_ties[j].scale * grad[j];
        grad[j] = 0;
      }
  }

 private:
  std::string known_names() const {
    if (m_names.empty()) return "(none: the table is empty)";
    std::ostringstream s;
    for (size_t i = 0; i < m_names.size(); ++i)
      s << (i ? ", " : "") << m_names[i];
    return s.str();
  }

  void append(std::string const& name, prior_type const& prior, ParameterTie const& tie, char const* where) {
    check_argument(!name.empty(), where, "parameter names must be non-empty");
    check_argument(find(name) < 0, where, "duplicate parameter name '" + name + "'");
    m_names.push_back(name);
    m_host.push_back(prior);
    m_ties.push_back(tie);
  }

  void upload() {
    size_t const n = m_host.size();
    m_device = View1D<prior_type, MemorySpace>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::ParameterTable::priors"), n);
    m_device_ties = View1D<ParameterTie, MemorySpace>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::ParameterTable::ties"), n);
    auto hp = Kokkos::create_mirror_view(m_device);
    auto ht = Kokkos::create_mirror_view(m_device_ties);
    m_num_tied = 0;
    for (size_t i = 0; i < n; ++i) {
      hp(i) = m_host[i];
      ht(i) = m_ties[i];
      m_num_tied += m_ties[i].source >= 0;
    }
    Kokkos::deep_copy(m_device, hp);
    Kokkos::deep_copy(m_device_ties, ht);
  }

  void check_row(size_t n, char const* where) const {
    check_argument(n == size_t(size()), where,
                   "the row must have num_params = " + std::to_string(size()) + " entries, got " + std::to_string(n));
  }

  template <class ExecutionSpace, class View, bool Input = false>
  void check_view(char const* where, View const& v) const {
    static_assert(is_execution_space_v<ExecutionSpace>,
                  "lensing::ParameterTable: first argument must be a Kokkos execution space");
    static_assert(View::rank == 2, "lensing::ParameterTable: parameters are a rank-2 view (n, num_params)");
    static_assert(Input || std::is_same<typename View::value_type, Scalar>::value,
                  "lensing::ParameterTable: the output view must hold the table's Scalar");
    static_assert(is_accessible_from_v<ExecutionSpace, typename View::memory_space>,
                  "lensing::ParameterTable: views must be accessible from the execution space");
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::ParameterTable: the table's memory space must be accessible from the execution space");
    check_argument(size() > 0, where, "the table is empty");
    check_argument(v.extent(1) == size_t(size()), where,
                   "parameter views must have extent(1) = num_params = " + std::to_string(size()) + ", got " +
                       std::to_string(v.extent(1)));
  }

  std::vector<std::string> m_names;
  std::vector<prior_type> m_host;
  std::vector<ParameterTie> m_ties;
  int m_num_tied = 0;
  View1D<prior_type, MemorySpace> m_device;
  View1D<ParameterTie, MemorySpace> m_device_ties;
};

}  // namespace lensing

#endif  // LENSING_DENSITY_PARAMETER_TABLE_HPP
