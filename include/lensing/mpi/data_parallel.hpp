#ifndef LENSING_MPI_DATA_PARALLEL_HPP
#define LENSING_MPI_DATA_PARALLEL_HPP

/// \file
/// Data-parallel training over MPI ranks: every rank holds a replica of the
/// network, draws its own batches (ShardedSource) and runs nn::fit(); after
/// backward the gradients are averaged over the ranks with MPI_Allreduce in
/// buckets (DataParallel), overlapped with the rest of backward, so every
/// rank takes the same optimizer step.
///
///     lensing::mpi::Communicator world;
///     lensing::mpi::DataParallel<Net, Space> dp(world, space, net);  // broadcasts rank 0's weights
///     Source src(...);                                                // batch B per rank
///     lensing::mpi::ShardedSource<Source> shard(src, world.rank(), world.size());
///     nn::FitOptions fo;
///     fo.replica = dp.hooks();                      // gradient/loss averaging, rank-0 checkpoint
///     fo.log = world.rank() == 0 ? &std::cout : nullptr;
///     nn::fit(space, net, opt, loss, shard, fo);
///
/// **What equals what.**  With mean losses (every loss of nn/losses.hpp is a
/// batch mean), n ranks with batch B take the steps of one process with
/// batch nB on the same samples (ShardedSource gives rank r the r-th B of
/// each nB batch): the gradient averaged over ranks, (1/n) Σ_r (1/B) Σ_{b∈r}
/// g_b, is (1/(nB)) Σ_b g_b with the batch sum split into n partial sums,
/// so the two runs differ by the rounding of that sum only (tested in
/// tests/mpi/test_data_parallel.cpp, bound there).  Exceptions, by design:
/// - BatchNorm normalises with its own batch's statistics, so a rank's
///   forward sees the mean and variance of B samples, not of nB: the
///   training steps differ from the nB run beyond rounding (the statistics
///   are not synchronised across ranks during forward).  The running
///   statistics are averaged over the ranks at the end of every epoch
///   (DataParallel::synchronize_epoch): the running mean is then exactly
///   that of the nB run's batch means; the running variance misses the
///   spread of the ranks' batch means about the overall one.
/// - Dropout draws its masks from (seed, call, element index within the
///   batch): ranks with the same seed would apply the same masks to their
///   b-th samples.  Re-seed each rank's dropout (net.reseed_dropout(seed +
///   rank)) for independent masks; the run then equals the nB run in
///   distribution, not sample by sample.
///
/// **Buckets and overlap.**  Sequential keeps its gradients in one flat
/// vector, layer after layer, and its backward runs layer by layer from the
/// last; after each layer fit() calls ReplicaHooks::gradients_ready with
/// the range that layer wrote (Sequential::backward_each_layer).  The flat
/// vector is cut, from its end, into buckets of bucket_bytes (the last one
/// shorter); a bucket is handed to MPI_Iallreduce (in place, MPI_SUM) as
/// soon as every layer it overlaps has finished, and the outstanding
/// requests are driven by MPI_Testall at each later layer (MPI progresses
/// non-blocking collectives only inside MPI calls); after backward
/// reduce_gradients() issues the rest, waits for all and scales by 1/n.
/// The step's loss travels in one more (double) MPI_Iallreduce.  Networks
/// without backward_each_layer reduce all buckets after backward.
///
/// **Device memory.**  With a memory space the host cannot access (CUDA),
/// each bucket is copied to a host buffer before its allreduce and back
/// after, unless the MPI is CUDA-aware (cuda_aware() of comm.hpp, or
/// DataParallelOptions::device_pointers) — then MPI gets device pointers.
/// The space is fenced before a bucket is handed over.
///
/// Rank consistency: the replicas start from rank 0's parameters and state
/// (a broadcast in the constructor and again when fit() starts, after a
/// resume), and at every epoch end the parameters are re-broadcast from rank
/// 0 and the state averaged, so rounding differences between the ranks'
/// reductions (MPI does not promise bitwise-equal allreduce results on every
/// rank) cannot accumulate.  Checkpoints are written by rank 0 only; a
/// resume reads the file on every rank (a shared file system).

#include <lensing/core/errors.hpp>
#include <lensing/mpi/comm.hpp>
#include <lensing/nn/fit.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lensing {
namespace mpi {

/// A DataSource (simulate/data_source.hpp) giving rank `rank` of `size` its
/// disjoint share of the batches of `inner`: with S = inner's
/// batches_per_epoch(), this source has S / size batches per epoch, and its
/// batch j of epoch e is inner's batch e S + j size + rank.
///
/// So the size ranks' batches of step (e, j) are together the inner batches
/// e S + j size + [0, size): for an ArraySource of batch B they are the
/// samples of positions [j size B, (j + 1) size B) of epoch e's permutation
/// — exactly the samples batch j of an ArraySource of batch size B (same
/// arrays, seed and shuffle) holds; for a SimulatedBatches of batch B they
/// are the global images first_index + (e S + j size) B + [0, size B) —
/// those of a SimulatedBatches of batch size B and S / size batches per
/// epoch when size divides S (otherwise the ranks still draw disjoint
/// images, but a few per epoch that the single run would draw are skipped).
///
/// `inner` (held by reference; it must outlive this) needs `seek(step)`
/// besides the DataSource members (ArraySource and SimulatedBatches have
/// it).  Throws std::invalid_argument for a rank outside [0, size) or an
/// inner source with fewer than `size` batches per epoch.
template <class Source>
class ShardedSource {
 public:
  using scalar_type = typename Source::scalar_type;
  using memory_space = typename Source::memory_space;

  ShardedSource(Source& inner, int rank, int size) : m_inner(inner), m_rank(rank), m_size(size) {
    constexpr char const* where = "lensing::mpi::ShardedSource";
    check_count(size, 1, where, "size");
    check_argument(rank >= 0 && rank < size, where,
                   "rank " + std::to_string(rank) + " is outside [0, " + std::to_string(size) + ")");
    check_argument(inner.batches_per_epoch() >= size, where,
                   "the source has " + std::to_string(inner.batches_per_epoch()) +
                       " batches per epoch, fewer than the " + std::to_string(size) + " ranks");
  }

  int batch_size() const { return m_inner.batch_size(); }
  int num_labels() const { return m_inner.num_labels(); }
  std::array<int, 3> sample_shape() const { return m_inner.sample_shape(); }
  long batches_per_epoch() const { return m_inner.batches_per_epoch() / m_size; }
  void start_epoch(long epoch) {
    check_count(epoch, 0, "lensing::mpi::ShardedSource::start_epoch", "epoch");
    m_step = epoch * batches_per_epoch();
  }
  /// The next batch of this rank (class comment); views to the inner
  /// source's buffers.
  template <class ExecutionSpace>
  auto next(ExecutionSpace const& space) {
    m_inner.seek(inner_step(m_step));
    auto b = m_inner.next(space);
    ++m_step;
    return b;
  }
  /// Position at step `step` of this source.
  void seek(long step) {
    check_count(step, 0, "lensing::mpi::ShardedSource::seek", "step");
    m_step = step;
  }
  /// The inner source's step that this source's step `step` reads.
  long inner_step(long step) const {
    long const bpe = batches_per_epoch(), e = step / bpe, j = step % bpe;
    return e * m_inner.batches_per_epoch() + j * m_size + m_rank;
  }
  long step() const { return m_step; }
  int rank() const { return m_rank; }
  int size() const { return m_size; }
  Source& inner() { return m_inner; }

 private:
  Source& m_inner;
  int m_rank, m_size;
  long m_step = 0;
};

/// Options of DataParallel.
struct DataParallelOptions {
  /// Bucket size in bytes: the flat gradient vector is reduced in pieces of
  /// this many bytes (from its end; the last piece shorter).  Larger buckets
  /// mean fewer MPI calls (latency), smaller ones earlier overlap.
  double bucket_bytes = 4.0 * 1024 * 1024;
  /// Start a bucket's allreduce during backward as soon as its layers are
  /// done; false: reduce every bucket after backward (no overlap).
  bool overlap = true;
  /// Hand device pointers to MPI (CUDA-aware MPI) instead of staging through
  /// host buffers; default: cuda_aware() of comm.hpp.  Ignored for memory
  /// the host can access.
  bool device_pointers = cuda_aware();
};

/// Per-rank timings and sizes of DataParallel (since construction or
/// reset_statistics()).
struct DataParallelStatistics {
  long steps = 0;               ///< reduce_gradients() calls
  double issue_seconds = 0;     ///< in MPI_Iallreduce / MPI_Testall during backward (and host staging)
  double wait_seconds = 0;      ///< in reduce_gradients(): issuing the rest, MPI_Waitall, copies, scaling
  double sync_seconds = 0;      ///< broadcasts and averages outside the steps (start, epoch ends, average())
  double bytes_per_step = 0;    ///< gradient and loss bytes each rank contributes to the allreduces per step
  std::size_t buckets = 0;      ///< number of gradient buckets
  long overlapped_buckets = 0;  ///< buckets issued during backward (summed over steps)
  /// Communication seconds per step inside the training step (issue + wait).
  double step_seconds() const { return steps > 0 ? (issue_seconds + wait_seconds) / double(steps) : 0.0; }
};

/// Gradient averaging for data-parallel training of `Net` (a Sequential, or
/// any network with parameters(), gradients(), state()) over the ranks of a
/// communicator: the file comment describes buckets, overlap and device
/// memory.  The constructor broadcasts rank 0's parameters and state
/// (collective).  hooks() plugs it into nn::fit; the object must outlive
/// the fit() call, and every rank must make the same calls in the same
/// order (MPI's rule for collectives).
template <class Net, class ExecutionSpace>
class DataParallel {
 public:
  using scalar_type = typename Net::scalar_type;
  using memory_space = typename Net::memory_space;
  using vector_type = nn::ParamVector<scalar_type, memory_space>;
  static_assert(is_mpi_value_v<scalar_type>, "lensing::mpi::DataParallel: the scalar type must be float or double");

  DataParallel(Communicator const& comm, ExecutionSpace const& space, Net& net, DataParallelOptions const& options = {})
      : m_comm(comm), m_space(space), m_net(net), m_opt(options) {
    constexpr char const* where = "lensing::mpi::DataParallel";
    check_argument(options.bucket_bytes >= double(sizeof(scalar_type)), where,
                   "bucket_bytes must hold at least one value");
    long const n = net.num_params();
    long const per = std::max(1L, long(options.bucket_bytes / double(sizeof(scalar_type))));
    for (long hi = n; hi > 0; hi -= per)
      m_buckets.push_back(Bucket{std::max(0L, hi - per), hi});
    m_requests.assign(m_buckets.size() + 1, MPI_REQUEST_NULL);
    if (stage()) m_host = Kokkos::create_mirror_view(net.gradients());
    m_stats.buckets = m_buckets.size();
    m_stats.bytes_per_step = double(n) * double(sizeof(scalar_type)) + double(sizeof(double));
    reset_step();
    // The number of parameters must agree before any bucket is reduced.
    std::int64_t const lo = m_comm.min(std::int64_t(n)), hi = m_comm.max(std::int64_t(n));
    check_argument(lo == hi, where,
                   "the ranks' networks have different numbers of parameters (" + std::to_string(lo) + " to " +
                       std::to_string(hi) + ")");
    broadcast_model();
  }

  DataParallel(DataParallel const&) = delete;
  DataParallel& operator=(DataParallel const&) = delete;

  int rank() const { return m_comm.rank(); }
  int size() const { return m_comm.size(); }
  Communicator const& communicator() const { return m_comm; }
  DataParallelOptions const& options() const { return m_opt; }
  DataParallelStatistics const& statistics() const { return m_stats; }
  void reset_statistics() {
    std::size_t const b = m_stats.buckets;
    double const bytes = m_stats.bytes_per_step;
    m_stats = DataParallelStatistics{};
    m_stats.buckets = b;
    m_stats.bytes_per_step = bytes;
  }
  /// The buckets as ranges [first, last) of gradients(), in reduction order
  /// (from the end of the vector).
  std::vector<std::pair<long, long>> buckets() const {
    std::vector<std::pair<long, long>> out;
    for (auto const& b : m_buckets)
      out.emplace_back(b.first, b.last);
    return out;
  }

  /// nn::fit hooks: synchronize = broadcast_model, gradients_ready (when
  /// overlap is on), reduce_gradients, average, synchronize_epoch, and the
  /// checkpoint written by rank 0 only.
  nn::ReplicaHooks hooks() {
    nn::ReplicaHooks h;
    h.synchronize = [this] { broadcast_model(); };
    if (m_opt.overlap) h.gradients_ready = [this](long first, long last) { gradients_ready(first, last); };
    h.reduce_gradients = [this](double loss) { return reduce_gradients(loss); };
    h.average = [this](double v) { return average(v); };
    h.synchronize_epoch = [this] { synchronize_epoch(); };
    h.writes_checkpoint = m_comm.rank() == 0;
    return h;
  }

  /// Broadcast rank 0's parameters and state to every rank (collective).
  void broadcast_model() {
    auto const t0 = Clock::now();
    broadcast_vector(m_net.parameters());
    broadcast_vector(m_net.state());
    m_stats.sync_seconds += since(t0);
  }
  /// Epoch end: rank 0's parameters to every rank, and the state (batch-norm
  /// running statistics) averaged over the ranks (collective).
  void synchronize_epoch() {
    auto const t0 = Clock::now();
    broadcast_vector(m_net.parameters());
    average_vector(m_net.state());
    m_stats.sync_seconds += since(t0);
  }
  /// Mean of `value` over the ranks, bitwise the same on every rank (the
  /// sum is reduced to rank 0 and broadcast; collective).
  double average(double value) {
    auto const t0 = Clock::now();
    double sum = 0;
    check(MPI_Reduce(&value, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, m_comm.get()), "lensing::mpi::DataParallel::average",
          "MPI_Reduce");
    sum = m_comm.broadcast_value(sum, 0);
    m_stats.sync_seconds += since(t0);
    return sum / double(m_comm.size());
  }

  /// During backward: the layer owning gradients [first, last) is done (its
  /// kernels enqueued on the space).  Issues every bucket that lies wholly
  /// at or above the lowest finished index, and drives the outstanding
  /// requests.
  void gradients_ready(long first, long last) {
    (void)last;
    if (m_comm.size() == 1) return;
    auto const t0 = Clock::now();
    if (first < m_low) m_low = first;
    bool fenced = false;
    while (m_next < m_buckets.size() && m_buckets[m_next].first >= m_low) {
      if (!fenced) m_space.fence();  // the layers' kernels wrote the bucket
      fenced = true;
      issue(m_next++);
      ++m_stats.overlapped_buckets;
    }
    if (m_next > 0) {
      int done = 0;
      check(MPI_Testall(int(m_next), m_requests.data(), &done, MPI_STATUSES_IGNORE),
            "lensing::mpi::DataParallel::gradients_ready", "MPI_Testall");
    }
    m_stats.issue_seconds += since(t0);
  }

  /// After backward: the buckets not yet issued are issued, with the loss;
  /// all are waited for and the sums scaled by 1/size.  gradients() then
  /// hold the mean over the ranks; returns the mean loss.  Collective.
  double reduce_gradients(double loss) {
    ++m_stats.steps;
    if (m_comm.size() == 1) {
      reset_step();
      return loss;
    }
    constexpr char const* where = "lensing::mpi::DataParallel::reduce_gradients";
    auto const t0 = Clock::now();
    if (m_next < m_buckets.size()) m_space.fence();
    while (m_next < m_buckets.size())
      issue(m_next++);
    double sum = loss;
    check(MPI_Iallreduce(MPI_IN_PLACE, &sum, 1, MPI_DOUBLE, MPI_SUM, m_comm.get(), &m_requests.back()), where,
          "MPI_Iallreduce");
    check(MPI_Waitall(int(m_requests.size()), m_requests.data(), MPI_STATUSES_IGNORE), where, "MPI_Waitall");
    auto const g = m_net.gradients();
    if (stage()) Kokkos::deep_copy(m_space, g, m_host);
    scale(g);
    reset_step();
    m_stats.wait_seconds += since(t0);
    return sum / double(m_comm.size());
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Bucket {
    long first, last;
  };
  static double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
  bool stage() const {
    return !Kokkos::SpaceAccessibility<Kokkos::HostSpace, memory_space>::accessible && !m_opt.device_pointers;
  }
  void reset_step() {
    m_next = 0;
    m_low = m_net.num_params();
  }

  // Bucket k: staged to the host when needed, then MPI_Iallreduce in place.
  void issue(std::size_t k) {
    Bucket const b = m_buckets[k];
    scalar_type* p = nullptr;
    if (stage()) {
      auto const r = Kokkos::make_pair(b.first, b.last);
      Kokkos::deep_copy(Kokkos::subview(m_host, r), Kokkos::subview(m_net.gradients(), r));
      p = m_host.data() + b.first;
    } else {
      p = m_net.gradients().data() + b.first;
    }
    check(MPI_Iallreduce(MPI_IN_PLACE, p, int(b.last - b.first), detail::datatype<scalar_type>::get(), MPI_SUM,
                         m_comm.get(), &m_requests[k]),
          "lensing::mpi::DataParallel", "MPI_Iallreduce");
  }

  // A device vector through a host copy when needed.
  template <class F>
  void on_host(vector_type const& v, F&& f) {
    if (v.extent(0) == 0) return;
    m_space.fence();
    if (Kokkos::SpaceAccessibility<Kokkos::HostSpace, memory_space>::accessible || m_opt.device_pointers) {
      f(v.data(), std::size_t(v.extent(0)));
    } else {
      auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
      f(h.data(), std::size_t(h.extent(0)));
      Kokkos::deep_copy(v, h);
    }
  }
  void broadcast_vector(vector_type const& v) {
    on_host(v, [&](scalar_type* p, std::size_t n) { m_comm.broadcast(p, n, 0); });
  }
  void average_vector(vector_type const& v) {
    on_host(v, [&](scalar_type* p, std::size_t n) { m_comm.allreduce(p, n, MPI_SUM); });
    scale(v);
  }

 public:
  // Implementation, public for nvcc: v *= 1 / size on the space, fenced.
  void scale(vector_type const& v) {
    scalar_type* p = v.data();
    scalar_type const inv = scalar_type(1) / scalar_type(m_comm.size());
    Kokkos::parallel_for(
        "lensing::mpi::DataParallel::scale",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(m_space, 0, long(v.extent(0))),
        KOKKOS_LAMBDA(long i) { p[i] *= inv; });
    m_space.fence();
  }

 private:
  Communicator m_comm;
  ExecutionSpace m_space;
  Net& m_net;
  DataParallelOptions m_opt;
  std::vector<Bucket> m_buckets;
  std::vector<MPI_Request> m_requests;  // one per bucket, then the loss
  typename vector_type::HostMirror m_host;
  std::size_t m_next = 0;  // buckets issued in this step
  long m_low = 0;          // lowest gradient index whose layer has finished backward
  DataParallelStatistics m_stats;
};

}  // namespace mpi
}  // namespace lensing

#endif  // LENSING_MPI_DATA_PARALLEL_HPP
