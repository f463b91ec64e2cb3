#ifndef LENSING_MPI_COMM_HPP
#define LENSING_MPI_COMM_HPP

/// \file
/// The MPI layer under lensing's scale-out (CMake component `lensing::mpi`,
/// which links MPI::MPI_CXX and defines LENSING_HAS_MPI): an RAII guard that
/// initialises and finalises MPI, a thin non-owning communicator with rank,
/// size and checked collectives on std::vector<double|float|int64>, strings
/// and scalars, and a start-up check that every rank runs with the same
/// configuration (naming the first setting that differs and the ranks).
///
///     int main(int argc, char** argv) {
///       lensing::mpi::Environment mpi(argc, argv);   // MPI_Init_thread ... MPI_Finalize
///       Kokkos::ScopeGuard kokkos(argc, argv);       // one execution space per rank
///       lensing::mpi::Communicator world;            // MPI_COMM_WORLD
///       lensing::mpi::check_same_configuration(world, {{"seed", "42"}, {"n", "4096"}}, "my_app");
///       std::vector<double> g = ...;  world.allreduce_sum(g);
///     }
///
/// Errors: every MPI call goes through check(), and the Environment sets
/// MPI_ERRORS_RETURN on MPI_COMM_WORLD, so an MPI error becomes a
/// std::runtime_error "lensing::mpi::<fn>: MPI_<call> failed: <MPI's error
/// string>" instead of an abort (a communicator whose handler is still
/// MPI_ERRORS_ARE_FATAL aborts inside MPI as usual).  Wrong arguments
/// (a root outside [0, size), vectors of different lengths across ranks)
/// throw std::invalid_argument on every rank that can see them.
///
/// Collectives must be called by every rank of the communicator in the same
/// order (MPI's rule); a rank that throws between collectives leaves the
/// others waiting, so code that can fail on one rank (a bad file, a failed
/// fit) catches locally and agrees on the outcome with agree_on_errors()
/// before the next collective: mpi/shard.hpp and mpi/fit_catalogue.hpp do.
///
/// Counts above INT_MAX (MPI's int counts) are sent in pieces of at most
/// 2^30 elements, so vectors of any length work.
///
/// GPU-aware MPI: these helpers take host memory.  With a CUDA Kokkos, pass
/// device pointers to MPI only when the MPI says it can take them
/// (cuda_aware() below: Open MPI's MPIX_Query_cuda_support() at run time);
/// otherwise copy to a host mirror first (Kokkos::create_mirror_view_and_copy)
/// and back after.  Debian's Open MPI is built without CUDA support, so host
/// staging is what a Debian build does.

// MPI comes with the mpi component of the CMake package, whose target
// lensing::mpi defines LENSING_HAS_MPI.
#if !defined(LENSING_HAS_MPI)
#error "lensing/mpi/comm.hpp needs the mpi component: find_package(lensing COMPONENTS mpi) and link lensing::mpi"
#endif

#include <mpi.h>
#if defined(OPEN_MPI) && OPEN_MPI
#include <mpi-ext.h>
#endif

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lensing {
namespace mpi {

/// Throw std::runtime_error("<where>: <call> failed: <MPI's message>") unless
/// `code` is MPI_SUCCESS.
inline void check(int code, char const* where, char const* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
  throw std::runtime_error(std::string(where) + ": " + call + " failed: " +
                           (len > 0 ? std::string(text, std::size_t(len)) : "error " + std::to_string(code)));
}

/// True when MPI_Init has been called and MPI_Finalize has not.
inline bool initialized() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init != 0 && fin == 0;
}

/// RAII guard of MPI's lifetime (tests, examples, applications): initialises
/// MPI with the requested thread level (default MPI_THREAD_FUNNELED: only
/// the thread that initialised MPI calls it, which is how Kokkos host
/// backends and lensing use it) unless it already is, sets
/// MPI_ERRORS_RETURN on MPI_COMM_WORLD (errors become exceptions, see
/// check()), and finalises in the destructor if it initialised.  Throws
/// std::runtime_error when MPI provides less than `required`.
class Environment {
 public:
  Environment(int& argc, char**& argv, int required = MPI_THREAD_FUNNELED) { init(&argc, &argv, required); }
  explicit Environment(int required = MPI_THREAD_FUNNELED) { init(nullptr, nullptr, required); }
  Environment(Environment const&) = delete;
  Environment& operator=(Environment const&) = delete;
  ~Environment() {
    if (m_owner && initialized()) MPI_Finalize();
  }
  /// The thread level MPI provides.
  int thread_level() const { return m_provided; }
  /// True when this guard called MPI_Init (and will call MPI_Finalize).
  bool owner() const { return m_owner; }

 private:
  void init(int* argc, char*** argv, int required) {
    constexpr char const* where = "lensing::mpi::Environment";
    int init = 0;
    MPI_Initialized(&init);
    if (init == 0) {
      int fin = 0;
      MPI_Finalized(&fin);
      if (fin != 0) throw std::runtime_error(std::string(where) + ": MPI was already finalised");
      // MPI_ERRORS_RETURN is not in force yet: an init failure aborts inside MPI.
      MPI_Init_thread(argc, argv, required, &m_provided);
      m_owner = true;
    } else {
      MPI_Query_thread(&m_provided);
    }
    check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), where, "MPI_Comm_set_errhandler");
    if (m_provided < required) {
      std::string const msg = std::string(where) + ": MPI provides thread level " + std::to_string(m_provided) +
                              ", less than the required " + std::to_string(required);
      if (m_owner) MPI_Finalize();
      m_owner = false;
      throw std::runtime_error(msg);
    }
  }
  bool m_owner = false;
  int m_provided = MPI_THREAD_SINGLE;
};

/// True when the MPI library can take CUDA device pointers (Open MPI built
/// with CUDA: MPIX_Query_cuda_support() at run time); false for any other
/// MPI or an Open MPI without it.  With false, stage through host memory.
inline bool cuda_aware() {
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
  return MPIX_Query_cuda_support() == 1;
#else
  return false;
#endif
}

namespace detail {
template <class T>
struct datatype;
template <>
struct datatype<double> {
  static MPI_Datatype get() { return MPI_DOUBLE; }
};
template <>
struct datatype<float> {
  static MPI_Datatype get() { return MPI_FLOAT; }
};
template <>
struct datatype<std::int64_t> {
  static MPI_Datatype get() { return MPI_INT64_T; }
};
template <>
struct datatype<std::uint64_t> {
  static MPI_Datatype get() { return MPI_UINT64_T; }
};
template <>
struct datatype<int> {
  static MPI_Datatype get() { return MPI_INT; }
};
template <>
struct datatype<char> {
  static MPI_Datatype get() { return MPI_CHAR; }
};
template <class T, class = void>
struct has_datatype : std::false_type {};
template <class T>
struct has_datatype<T, decltype(void(datatype<T>::get()))> : std::true_type {};

// The largest piece one MPI call moves (MPI counts are int).
constexpr std::size_t max_piece = std::size_t(1) << 30;

// FNV-1a 64 of `n` bytes, continuing from `h`.
inline std::uint64_t fnv1a(void const* data, std::size_t n, std::uint64_t h = 1469598103934665603ull) {
  auto const* p = static_cast<unsigned char const*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}
}  // namespace detail

/// The element types the collectives take: double, float, std::int64_t,
/// std::uint64_t, int, char.
template <class T>
inline constexpr bool is_mpi_value_v = detail::has_datatype<T>::value;

/// A non-owning handle of an MPI communicator (default MPI_COMM_WORLD) with
/// checked collectives.  Cheap to copy; the communicator must outlive it.
class Communicator {
 public:
  explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD) : m_comm(comm) {
    constexpr char const* where = "lensing::mpi::Communicator";
    if (!initialized()) throw std::runtime_error(std::string(where) + ": MPI is not initialised (see Environment)");
    check(MPI_Comm_rank(comm, &m_rank), where, "MPI_Comm_rank");
    check(MPI_Comm_size(comm, &m_size), where, "MPI_Comm_size");
  }
  MPI_Comm get() const { return m_comm; }
  int rank() const { return m_rank; }
  int size() const { return m_size; }
  bool is_root(int root = 0) const { return m_rank == root; }

  void barrier() const { check(MPI_Barrier(m_comm), "lensing::mpi::Communicator::barrier", "MPI_Barrier"); }

  /// Broadcast `n` values at `data` from `root`.
  template <class T>
  void broadcast(T* data, std::size_t n, int root = 0) const {
    static_assert(is_mpi_value_v<T>, "lensing::mpi::Communicator::broadcast: unsupported element type");
    check_root(root, "lensing::mpi::Communicator::broadcast");
    for (std::size_t i = 0; i < n; i += detail::max_piece)
      check(MPI_Bcast(data + i, int(std::min(detail::max_piece, n - i)), detail::datatype<T>::get(), root, m_comm),
            "lensing::mpi::Communicator::broadcast", "MPI_Bcast");
  }
  /// Broadcast a vector from `root`; the others are resized to its length.
  template <class T>
  void broadcast(std::vector<T>& v, int root = 0) const {
    std::uint64_t n = v.size();
    broadcast(&n, 1, root);
    if (m_rank != root) v.resize(std::size_t(n));
    broadcast(v.data(), v.size(), root);
  }
  /// Broadcast a string from `root`.
  void broadcast(std::string& s, int root = 0) const {
    std::vector<char> v(s.begin(), s.end());
    broadcast(v, root);
    s.assign(v.begin(), v.end());
  }
  /// Broadcast one value from `root` and return it.
  template <class T, class = std::enable_if_t<is_mpi_value_v<T>>>
  T broadcast_value(T value, int root = 0) const {
    broadcast(&value, 1, root);
    return value;
  }

  /// In-place element-wise reduction of `n` values over all ranks (MPI_SUM,
  /// MPI_MAX, MPI_MIN, ...): every rank ends with the result.
  template <class T>
  void allreduce(T* data, std::size_t n, MPI_Op op) const {
    static_assert(is_mpi_value_v<T>, "lensing::mpi::Communicator::allreduce: unsupported element type");
    for (std::size_t i = 0; i < n; i += detail::max_piece)
      check(MPI_Allreduce(MPI_IN_PLACE, data + i, int(std::min(detail::max_piece, n - i)), detail::datatype<T>::get(),
                          op, m_comm),
            "lensing::mpi::Communicator::allreduce", "MPI_Allreduce");
  }
  /// In-place reduction of a vector; every rank must pass the same length
  /// (checked: std::invalid_argument on every rank otherwise).
  template <class T>
  void allreduce(std::vector<T>& v, MPI_Op op) const {
    check_same_length(v.size(), "lensing::mpi::Communicator::allreduce");
    allreduce(v.data(), v.size(), op);
  }
  template <class T>
  void allreduce_sum(std::vector<T>& v) const {
    allreduce(v, MPI_SUM);
  }
  template <class T, class = std::enable_if_t<is_mpi_value_v<T>>>
  T allreduce_value(T value, MPI_Op op) const {
    allreduce(&value, 1, op);
    return value;
  }
  template <class T, class = std::enable_if_t<is_mpi_value_v<T>>>
  T sum(T value) const {
    return allreduce_value(value, MPI_SUM);
  }
  template <class T, class = std::enable_if_t<is_mpi_value_v<T>>>
  T max(T value) const {
    return allreduce_value(value, MPI_MAX);
  }
  template <class T, class = std::enable_if_t<is_mpi_value_v<T>>>
  T min(T value) const {
    return allreduce_value(value, MPI_MIN);
  }
  /// True on every rank when `ok` is true on every rank.
  bool all_ok(bool ok) const { return min(int(ok ? 1 : 0)) == 1; }

  /// One value from each rank, in rank order, on every rank.
  template <class T, class = std::enable_if_t<is_mpi_value_v<T>>>
  std::vector<T> allgather(T value) const {
    std::vector<T> out(static_cast<std::size_t>(m_size));
    check(MPI_Allgather(&value, 1, detail::datatype<T>::get(), out.data(), 1, detail::datatype<T>::get(), m_comm),
          "lensing::mpi::Communicator::allgather", "MPI_Allgather");
    return out;
  }
  /// Each rank's string, in rank order, on `root` (empty elsewhere).  Each
  /// string must be shorter than 2^31 bytes, the total is unlimited.
  std::vector<std::string> gather(std::string const& s, int root = 0) const {
    constexpr char const* where = "lensing::mpi::Communicator::gather";
    check_root(root, where);
    if (s.size() > std::size_t(INT_MAX)) throw std::invalid_argument(std::string(where) + ": string over 2^31 bytes");
    int const len = int(s.size());
    std::vector<int> lens(m_rank == root ? std::size_t(m_size) : 0);
    check(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, root, m_comm), where, "MPI_Gather");
    std::vector<std::string> out;
    if (m_rank != root) {
      check(MPI_Send(s.data(), len, MPI_CHAR, root, gather_tag, m_comm), where, "MPI_Send");
      return out;
    }
    // Point-to-point from each rank: no int displacement limit on the total.
    out.resize(std::size_t(m_size));
    for (int r = 0; r < m_size; ++r) {
      if (r == root) {
        out[std::size_t(r)] = s;
        continue;
      }
      out[std::size_t(r)].resize(std::size_t(lens[std::size_t(r)]));
      check(MPI_Recv(&out[std::size_t(r)][0], lens[std::size_t(r)], MPI_CHAR, r, gather_tag, m_comm, MPI_STATUS_IGNORE),
            where, "MPI_Recv");
    }
    return out;
  }

 private:
  static constexpr int gather_tag = 0x1e75;
  void check_root(int root, char const* where) const {
    if (root < 0 || root >= m_size)
      throw std::invalid_argument(std::string(where) + ": root " + std::to_string(root) + " is outside [0, " +
                                  std::to_string(m_size) + ")");
  }
  void check_same_length(std::size_t n, char const* where) const {
    std::uint64_t lo = n, hi = n;
    allreduce(&lo, 1, MPI_MIN);
    allreduce(&hi, 1, MPI_MAX);
    if (lo != hi)
      throw std::invalid_argument(std::string(where) + ": the ranks pass vectors of different lengths (" +
                                  std::to_string(lo) + " to " + std::to_string(hi) + "; this rank " +
                                  std::to_string(n) + ")");
  }
  MPI_Comm m_comm = MPI_COMM_WORLD;
  int m_rank = 0, m_size = 1;
};

/// Agree across the ranks of `comm` on a step that may fail on some
/// (collective): every rank passes its error message (empty: it succeeded);
/// if any failed, every rank throws the same std::runtime_error "<where>:
/// rank r: <message>; rank s: ...<after>", so no rank is left waiting in a
/// later collective.
inline void agree_on_errors(Communicator const& comm, std::string const& error, char const* where,
                            std::string const& after = "") {
  if (comm.all_ok(error.empty())) return;
  auto const all = comm.gather(error);
  std::string text;
  for (std::size_t r = 0; r < all.size(); ++r)
    if (!all[r].empty()) text += (text.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) + ": " + all[r];
  comm.broadcast(text);
  throw std::runtime_error(std::string(where) + ": " + text + after);
}

/// A run's configuration: ordered (name, value) settings; the same on every
/// rank for a consistent run (seeds, sizes, file names, model settings).
using Configuration = std::vector<std::pair<std::string, std::string>>;

/// FNV-1a 64 hash of a configuration (names and values, lengths included so
/// that ("ab","c") and ("a","bc") differ).
inline std::uint64_t configuration_hash(Configuration const& config) {
  std::uint64_t h = detail::fnv1a("lensing-config", 14);
  for (auto const& kv : config) {
    std::uint64_t const a = kv.first.size(), b = kv.second.size();
    h = detail::fnv1a(&a, sizeof a, h);
    h = detail::fnv1a(kv.first.data(), kv.first.size(), h);
    h = detail::fnv1a(&b, sizeof b, h);
    h = detail::fnv1a(kv.second.data(), kv.second.size(), h);
  }
  return h;
}

/// Check at start-up that every rank of `comm` has the same `config`
/// (collective).  On a mismatch every rank throws the same
/// std::runtime_error "<where>: configuration differs across ranks: rank r
/// has <name> = '<value>', rank 0 has '<value>'" (or names a setting that
/// only one side has), for the lowest rank r that differs from rank 0.
inline void check_same_configuration(Communicator const& comm, Configuration const& config, char const* where) {
  std::uint64_t const h = configuration_hash(config);
  std::vector<std::uint64_t> const all = comm.allgather(h);
  int bad = -1;
  for (int r = 1; r < comm.size() && bad < 0; ++r)
    if (all[std::size_t(r)] != all[0]) bad = r;
  if (bad < 0) return;
  // Rank 0 sends its settings to the first differing rank, which names the
  // difference and broadcasts the message.
  std::string text;
  if (comm.rank() == 0 || comm.rank() == bad) {
    std::vector<char> ser;
    if (comm.rank() == 0) {
      for (auto const& kv : config) {
        ser.insert(ser.end(), kv.first.begin(), kv.first.end());
        ser.push_back('\0');
        ser.insert(ser.end(), kv.second.begin(), kv.second.end());
        ser.push_back('\0');
      }
      std::uint64_t n = ser.size();
      check(MPI_Send(&n, 1, MPI_UINT64_T, bad, 0x1e76, comm.get()), where, "MPI_Send");
      if (n > 0) check(MPI_Send(ser.data(), int(n), MPI_CHAR, bad, 0x1e77, comm.get()), where, "MPI_Send");
    } else {
      std::uint64_t n = 0;
      check(MPI_Recv(&n, 1, MPI_UINT64_T, 0, 0x1e76, comm.get(), MPI_STATUS_IGNORE), where, "MPI_Recv");
      ser.resize(std::size_t(n));
      if (n > 0)
        check(MPI_Recv(ser.data(), int(n), MPI_CHAR, 0, 0x1e77, comm.get(), MPI_STATUS_IGNORE), where, "MPI_Recv");
      Configuration root;
      for (std::size_t i = 0; i < ser.size();) {
        std::string const k(&ser[i]);
        i += k.size() + 1;
        std::string const v(&ser[i]);
        i += v.size() + 1;
        root.emplace_back(k, v);
      }
      std::string const r = "rank " + std::to_string(bad);
      auto find = [](Configuration const& c, std::string const& k) {
        return std::find_if(c.begin(), c.end(), [&](auto const& kv) { return kv.first == k; });
      };
      for (auto const& kv : config) {
        auto it = find(root, kv.first);
        if (it == root.end()) {
          text = r + " has " + kv.first + " = '" + kv.second + "', rank 0 has no setting " + kv.first;
          break;
        }
        if (it->second != kv.second) {
          text = r + " has " + kv.first + " = '" + kv.second + "', rank 0 has '" + it->second + "'";
          break;
        }
      }
      if (text.empty())
        for (auto const& kv : root)
          if (find(config, kv.first) == config.end()) {
            text = "rank 0 has " + kv.first + " = '" + kv.second + "', " + r + " has no setting " + kv.first;
            break;
          }
      if (text.empty()) text = r + " lists the same settings as rank 0 in another order";
    }
  }
  comm.broadcast(text, bad);
  throw std::runtime_error(std::string(where) + ": configuration differs across ranks: " + text);
}

}  // namespace mpi
}  // namespace lensing

#endif  // LENSING_MPI_COMM_HPP
