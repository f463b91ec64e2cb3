#ifndef LENSING_NN_FIT_HPP
#define LENSING_NN_FIT_HPP

/// \file
/// fit(): the training loop over DataSources (simulate/data_source.hpp):
/// in-memory arrays (ArraySource) or images simulated on the fly on the
/// same execution space (SimulatedBatches), with a validation source,
/// learning-rate schedule, early stopping, gradient clipping by global
/// norm, a progress line every N steps and resumable checkpoints written
/// durably and atomically (checkpoint.hpp).

#include <lensing/core/errors.hpp>
#include <lensing/nn/checkpoint.hpp>
#include <lensing/nn/detail/epoch_end.hpp>
#include <lensing/nn/loss.hpp>
#include <lensing/nn/losses.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/schedule.hpp>
#include <lensing/nn/serialize.hpp>
#include <lensing/nn/tensor.hpp>
#include <lensing/simulate/data_source.hpp>

#include <Kokkos_Core.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iomanip>
#include <iostream>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lensing {
namespace nn {

/// What fit() did in this call.
struct FitHistory {
  long first_epoch = 0;          ///< first epoch run in this call (> 0 when resumed)
  long steps = 0;                ///< optimizer steps taken in this call
  std::vector<double> loss;      ///< mean training loss of each epoch (training mode, over its steps)
  std::vector<double> val_loss;  ///< mean validation loss of each epoch (inference mode); empty without validation
  std::vector<double> lr;        ///< learning rate of each epoch
  std::vector<double> seconds;   ///< wall time of each epoch (validation and checkpoint included)
  long best_epoch = -1;          ///< epoch of the best monitored metric (over the whole run, resume included)
  double best_metric = 0;        ///< its value
  bool stopped_early = false;
  double data_seconds = 0;     ///< time in the training source's next() (simulation or gather), fenced
  double compute_seconds = 0;  ///< time in forward, loss, backward, clipping and the optimizer step, fenced
  long images = 0;             ///< training images seen in this call
  long epochs_run() const { return long(loss.size()); }
  /// Training throughput of this call (data + compute, validation excluded).
  double images_per_second() const {
    double const t = data_seconds + compute_seconds;
    return t > 0 ? double(images) / t : 0.0;
  }
};

/// How fit() trains one replica of a data-parallel run: every replica (an
/// MPI rank, say) runs fit() on its own shard of the batches and the hooks
/// make the replicas take the same steps.  nn knows nothing of the
/// transport: mpi/data_parallel.hpp (DataParallel::hooks()) implements them
/// with MPI.  All empty (the default): a single-process run.
struct ReplicaHooks {
  /// Called once before the first step, after resume_from is loaded: make
  /// every replica's parameters and state the root's (a broadcast).
  std::function<void()> synchronize;
  /// Called during backward as each layer finishes, with the range [first,
  /// last) of gradients() it wrote (layers finish last to first; see
  /// Sequential::backward_each_layer): where a reduction of the gradients
  /// already final may start, overlapping the rest of backward.  Only for
  /// networks with backward_each_layer (Sequential).
  std::function<void(long first, long last)> gradients_ready;
  /// Called after backward, before gradient clipping and the optimizer step,
  /// with this replica's batch loss: leaves in gradients() the mean of the
  /// replicas' gradients and returns the mean of their losses (the same on
  /// every replica: the non-finite check and the logged losses use it, so
  /// that a diverging replica stops all of them together).
  std::function<double(double loss)> reduce_gradients;
  /// The mean over the replicas of a per-replica value, the same on every
  /// replica: the validation loss (each replica validating on its shard) is
  /// averaged before it is monitored, so early stopping and the schedule
  /// decide alike everywhere.
  std::function<double(double value)> average;
  /// Called at the end of every epoch, before validation: make the state
  /// (batch-norm running statistics, which each replica updates from its own
  /// batches) and the parameters the same on every replica.
  std::function<void()> synchronize_epoch;
  /// Whether this replica writes checkpoint_path (exactly one should: the
  /// root).  resume_from is read by every replica.
  bool writes_checkpoint = true;
};

/// Options of fit().
struct FitOptions {
  long epochs =
      10;  ///< total epochs (of the training source's batches_per_epoch() steps); a resumed run continues up to it
  int patience = 0;                    ///< early stopping after `patience` epochs without improvement; 0: off
  double min_delta = 0;                ///< improvement means metric < best − min_delta
  bool restore_best = true;            ///< with early stopping on: end with the best epoch's weights
  double clip_grad_norm = 0;           ///< scale the gradient to this global Euclidean norm at most; 0: off
  long log_every = 100;                ///< a progress line every N steps (and one per epoch); 0: epoch lines only
  std::ostream* log = &std::cout;      ///< progress lines; nullptr: silent
  std::optional<LRSchedule> schedule;  ///< per-epoch learning-rate schedule; empty: keep the optimizer's rate
  std::string checkpoint_path;         ///< checkpoint file (one file); empty: none
  long checkpoint_every = 0;           ///< write the checkpoint after every N-th epoch; 0: see checkpoint_seconds
  double checkpoint_seconds = 0;       ///< also after the first epoch ending ≥ this many seconds after the last write
  std::string resume_from;             ///< checkpoint file to resume from; empty: start afresh
  /// Called after every epoch (after its checkpoint, before early stopping
  /// ends the run) with the epoch and the history so far: saving weights,
  /// custom metrics.  Empty: none.
  std::function<void(long epoch, FitHistory const& history)> on_epoch_end;
  /// Data-parallel training: this process is one replica (see ReplicaHooks).
  ReplicaHooks replica;
};

namespace detail {
inline constexpr char fit_magic[9] = "LNSNNF01";

template <class Net, class E, class = void>
struct has_backward_each_layer : std::false_type {};
template <class Net, class E>
struct has_backward_each_layer<Net, E,
                               std::void_t<decltype(std::declval<Net&>().backward_each_layer(
                                   std::declval<E const&>(), std::declval<typename Net::tensor_type const&>(),
                                   std::declval<void (*)(long, long)>()))>> : std::true_type {};

template <class Loss, class = void>
struct has_num_outputs : std::false_type {};
template <class Loss>
struct has_num_outputs<Loss, std::void_t<decltype(std::declval<Loss const&>().num_outputs(long(1)))>> : std::true_type {
};
template <class Loss, class = void>
struct has_loss_name : std::false_type {};
template <class Loss>
struct has_loss_name<Loss, std::void_t<decltype(std::string(std::declval<Loss const&>().name()))>> : std::true_type {};

/// Check that `net` takes the batches of `src` (its output_shape(in) for the
/// batch shape: a Sequential infers it, or refuses naming the layer) and
/// that its output fits the loss for the source's labels (when the loss
/// states num_outputs).
template <class Net, class Source, class Loss>
void check_fit_source(Net const& net, Source const& src, Loss const& loss, char const* which) {
  char const* where = "lensing::nn::fit";
  auto const ss = src.sample_shape();
  Shape4 const want{int(src.batch_size()), ss[0], ss[1], ss[2]};
  Shape4 out{};
  try {
    out = net.output_shape(want);
  } catch (std::invalid_argument const& e) {
    throw_invalid_argument(where, std::string("the network cannot take the ") + which + " source's batches of shape " +
                                      want.str() + ": " + e.what());
  }
  check_argument(src.batches_per_epoch() >= 1, where, std::string("the ") + which + " source has no batches");
  check_argument(src.num_labels() >= 1, where, std::string("the ") + which + " source has no label columns");
  if constexpr (has_num_outputs<Loss>::value) {
    long const per = long(out.c) * out.h * out.w, k = src.num_labels(), need = loss.num_outputs(k);
    std::string name = "the loss";
    if constexpr (has_loss_name<Loss>::value) name = std::string("the loss '") + loss.name() + "'";
    check_argument(per == need, where,
                   "the network outputs " + std::to_string(per) + " values per sample; " + name + " needs " +
                       std::to_string(need) + " for the " + std::to_string(k) + " label columns of the " + which +
                       " source");
  }
}

/// The weight-file bytes of `net` with parameters p and state s swapped in
/// (restored afterwards).
template <class Net, class V>
std::string encode_network_with(Net& net, V const& p, V const& s, std::string const& path, char const* where) {
  V cur_p("lensing::nn::fit::cur_params", net.num_params()), cur_s("lensing::nn::fit::cur_state", net.num_state());
  Kokkos::deep_copy(cur_p, net.parameters());
  Kokkos::deep_copy(cur_s, net.state());
  Kokkos::deep_copy(net.parameters(), p);
  Kokkos::deep_copy(net.state(), s);
  std::string out;
  try {
    out = encode_network(net, path, where);
  } catch (...) {
    Kokkos::deep_copy(net.parameters(), cur_p);
    Kokkos::deep_copy(net.state(), cur_s);
    throw;
  }
  Kokkos::deep_copy(net.parameters(), cur_p);
  Kokkos::deep_copy(net.state(), cur_s);
  return out;
}

inline std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long const t = long(s + 0.5);
  std::ostringstream o;
  if (t >= 3600)
    o << t / 3600 << "h" << std::setw(2) << std::setfill('0') << (t % 3600) / 60 << "m";
  else if (t >= 60)
    o << t / 60 << "m" << std::setw(2) << std::setfill('0') << t % 60 << "s";
  else
    o << t << "s";
  return o.str();
}

template <class ExecutionSpace, class Net, class Optimizer, class Loss, class Train, class Val>
FitHistory fit_impl(ExecutionSpace const& space, Net& net, Optimizer& opt, Loss const& loss, Train& train, Val* val,
                    FitOptions const& options) {
  using Scalar = typename Net::scalar_type;
  using Mem = typename Net::memory_space;
  using V = ParamVector<Scalar, Mem>;
  using Clock = std::chrono::steady_clock;
  char const* where = "lensing::nn::fit";
  auto const since = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };

  check_count(options.epochs, 1, where, "epochs");
  check_count(options.patience, 0, where, "patience");
  check_count(options.log_every, 0, where, "log_every");
  check_count(options.checkpoint_every, 0, where, "checkpoint_every");
  check_nonnegative(options.min_delta, where, "min_delta");
  check_nonnegative(options.clip_grad_norm, where, "clip_grad_norm");
  check_nonnegative(options.checkpoint_seconds, where, "checkpoint_seconds");
  check_argument((options.checkpoint_every == 0 && options.checkpoint_seconds == 0) || !options.checkpoint_path.empty(),
                 where, "checkpoint_every or checkpoint_seconds > 0 needs a checkpoint_path");
  check_fit_source(net, train, loss, "training");
  if (val != nullptr) {
    check_fit_source(net, *val, loss, "validation");
    check_argument(val->num_labels() == train.num_labels(), where,
                   "the validation source has " + std::to_string(val->num_labels()) +
                       " label columns, the training source " + std::to_string(train.num_labels()));
  }

  std::optional<LRSchedule> schedule = options.schedule;
  std::ostream* log = options.log;
  bool const early = options.patience > 0;
  long const bpe = train.batches_per_epoch(), bsz = train.batch_size();
  long const total_steps = options.epochs * bpe;
  V best_params("lensing::nn::fit::best_params", net.num_params());
  V best_state("lensing::nn::fit::best_state", net.num_state());
  Tensor<Scalar, Mem> none;

  FitHistory hist;
  long first = 0, wait = 0, best_epoch = -1;
  double best = 0;

  // Resume: validate the whole file (checksum, state, both weight blobs)
  // before anything is modified.
  if (!options.resume_from.empty()) {
    std::string const& path = options.resume_from;
    std::string const bytes = read_file_bytes(path, where);
    auto const fail = [&](std::string const& what) {
      throw std::runtime_error(std::string(where) + ": '" + path + "': " + what);
    };
    if (bytes.size() < 8) fail("truncated file");
    std::uint64_t stored = 0;
    std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
    if (std::memcmp(bytes.data(), fit_magic, bytes.size() < 8 ? bytes.size() : 8) != 0)
      fail("not a lensing fit() checkpoint (bad magic)");
    if (fnv1a64(bytes.data(), bytes.size() - 8) != stored) fail("checksum mismatch: the file is corrupted");
    ByteReader r{bytes.data(), bytes.size() - 8};
    auto const decoded = decode_training_state<Scalar>(r, fit_magic, opt, net.num_params(), path, where);
    TrainingState const& st = decoded.state;
    std::uint64_t nw = 0, nb = 0;
    if (!r.read(nw) || nw > r.size - r.pos) fail("truncated weights");
    std::size_t const wpos = r.pos;
    r.skip(std::size_t(nw));
    if (!r.read(nb) || nb > r.size - r.pos) fail("truncated best weights");
    std::size_t const bpos = r.pos;
    r.skip(std::size_t(nb));
    if (r.pos != r.size) fail("trailing bytes after the data");
    check_argument(st.next_epoch <= options.epochs, where,
                   "the checkpoint's next epoch " + std::to_string(st.next_epoch) +
                       " is beyond epochs = " + std::to_string(options.epochs));
    check_argument(st.has_schedule == schedule.has_value(), where,
                   "the checkpoint was written with" + std::string(st.has_schedule ? "" : "out") +
                       " a learning-rate schedule, the options have" + (schedule ? "" : " none"));
    check_argument(st.counters.size() == layer_counters(net).size(), where,
                   "'" + path + "' holds " + std::to_string(st.counters.size() / 2) +
                       " dropout layers' states, the network has " + std::to_string(layer_counters(net).size() / 2) +
                       " dropout layers");
    if (nb > 0) {
      decode_network(net, bytes.data() + bpos, std::size_t(nb), nb, path);
      Kokkos::deep_copy(best_params, net.parameters());
      Kokkos::deep_copy(best_state, net.state());
    }
    decode_network(net, bytes.data() + wpos, std::size_t(nw), nw, path);
    set_layer_counters(net, st.counters, path, where);
    load_optimizer_state(opt, decoded.optimizer);
    opt.set_steps(long(st.optimizer_steps));
    opt.set_lr(st.lr);
    if (schedule) schedule->set_state(st.schedule);
    first = long(st.next_epoch);
    best_epoch = long(st.best_epoch);
    best = st.best_metric;
    wait = long(st.wait);
  }
  hist.first_epoch = first;
  ReplicaHooks const& replica = options.replica;
  if (replica.synchronize) replica.synchronize();

  auto const save_checkpoint = [&](long next_epoch) {
    std::string const& path = options.checkpoint_path;
    TrainingState st;
    st.next_epoch = next_epoch;
    st.best_epoch = best_epoch;
    st.best_metric = best;
    st.wait = wait;
    st.optimizer_steps = opt.steps();
    st.lr = opt.lr();
    st.has_schedule = schedule.has_value();
    if (schedule) st.schedule = schedule->state();
    st.counters = layer_counters(net);
    std::string out = encode_training_state<Scalar>(fit_magic, st, opt, net.num_params());
    std::string const w = encode_network(net, path, where);
    append_pod<std::uint64_t>(out, w.size());
    out += w;
    if (early && best_epoch >= 0) {
      std::string const b = encode_network_with(net, best_params, best_state, path, where);
      append_pod<std::uint64_t>(out, b.size());
      out += b;
    } else {
      append_pod<std::uint64_t>(out, 0);
    }
    append_pod<std::uint64_t>(out, fnv1a64(out.data(), out.size()));
    write_file_durably(path, out, where);
  };

  auto const t_start = Clock::now();
  auto t_line = t_start, t_ckpt = t_start;
  long line_steps = 0;
  double line_loss = 0, last_val = std::nan("");
  bool const has_val = val != nullptr;
  for (long e = first; e < options.epochs; ++e) {
    auto const t0 = Clock::now();
    if (schedule) schedule->apply(opt, e);
    double const lr = opt.lr();
    train.start_epoch(e);
    net.set_training(true);
    double sum = 0;
    for (long b = 0; b < bpe; ++b) {
      auto const td = Clock::now();
      auto const batch = train.next(space);
      space.fence();
      auto const tc = Clock::now();
      hist.data_seconds += std::chrono::duration<double>(tc - td).count();
      auto const out = net.forward(space, batch.images);
      double l = double(loss(space, out, batch.labels, net.output_gradient()));
      auto const check_finite = [&] {
        if (!std::isfinite(l))
          throw std::runtime_error(std::string(where) + ": the training loss is not finite at epoch " +
                                   std::to_string(e) + ", step " + std::to_string(e * bpe + b) + " (diverged?)");
      };
      if (!replica.reduce_gradients) check_finite();
      if constexpr (has_backward_each_layer<Net, ExecutionSpace>::value) {
        if (replica.gradients_ready)
          net.backward_each_layer(space, batch.images, [&](long a, long z) { replica.gradients_ready(a, z); });
        else
          net.backward(space, batch.images);
      } else {
        net.backward(space, batch.images);
      }
      if (replica.reduce_gradients) {
        l = replica.reduce_gradients(l);  // every replica throws alike
        check_finite();
      }
      if (options.clip_grad_norm > 0) nn::clip_grad_norm(space, net.gradients(), options.clip_grad_norm);
      opt.step(space, net.parameters(), net.gradients());
      space.fence();
      hist.compute_seconds += since(tc);
      sum += l;
      line_loss += l;
      ++line_steps;
      ++hist.steps;
      hist.images += bsz;
      long const step = e * bpe + b + 1;
      if (log != nullptr && options.log_every > 0 && step % options.log_every == 0) {
        double const dt = since(t_line), rate = dt > 0 ? double(line_steps) / dt : 0.0;
        double const overall = double(hist.steps) / since(t_start);
        std::ostringstream line;
        line << "step " << step << "/" << total_steps << "  " << std::fixed << std::setprecision(2) << rate
             << " steps/s  " << std::setprecision(0) << rate * double(bsz) << " images/s  loss " << std::scientific
             << std::setprecision(4) << line_loss / double(line_steps);
        if (has_val) line << "  val_loss " << last_val;
        line << "  lr " << std::setprecision(3) << lr << "  ETA "
             << format_duration(overall > 0 ? double(total_steps - step) / overall : -1.0) << "\n";
        *log << line.str() << std::flush;
        t_line = Clock::now();
        line_steps = 0;
        line_loss = 0;
      }
    }
    double const train_loss = sum / double(bpe);
    double vloss = 0;
    if (replica.synchronize_epoch) replica.synchronize_epoch();
    if (has_val) {
      net.set_training(false);
      val->start_epoch(0);
      long const nvb = val->batches_per_epoch();
      double vs = 0;
      for (long b = 0; b < nvb; ++b) {
        auto const batch = val->next(space);
        vs += double(loss(space, net.forward(space, batch.images), batch.labels, none));
      }
      vloss = vs / double(nvb);
      if (replica.average) vloss = replica.average(vloss);
      last_val = vloss;
      net.set_training(true);
    }
    space.fence();
    double const metric = has_val ? vloss : train_loss;
    bool const improved =
        detail::track_best(metric, e, options.min_delta, early, net, best_params, best_state, best, best_epoch, wait);
    if (schedule && std::isfinite(metric)) schedule->observe(metric);
    bool const stop = early && wait >= options.patience;
    bool const last = stop || e + 1 == options.epochs;
    if (!options.checkpoint_path.empty() && replica.writes_checkpoint &&
        (last || (options.checkpoint_every > 0 && (e + 1) % options.checkpoint_every == 0) ||
         (options.checkpoint_seconds > 0 && since(t_ckpt) >= options.checkpoint_seconds))) {
      save_checkpoint(e + 1);
      t_ckpt = Clock::now();
    }
    double const secs = since(t0);
    hist.loss.push_back(train_loss);
    if (has_val) hist.val_loss.push_back(vloss);
    hist.lr.push_back(lr);
    hist.seconds.push_back(secs);
    if (log != nullptr) detail::log_epoch(*log, e, options.epochs, train_loss, has_val, vloss, lr, secs, improved);
    if (options.on_epoch_end) options.on_epoch_end(e, hist);
    if (stop) {
      hist.stopped_early = e + 1 < options.epochs;
      if (hist.stopped_early && log != nullptr) detail::log_early_stop(*log, e, wait, best_epoch);
      break;
    }
  }
  if (early && options.restore_best && best_epoch >= 0) {
    Kokkos::deep_copy(net.parameters(), best_params);
    Kokkos::deep_copy(net.state(), best_state);
  }
  hist.best_epoch = best_epoch;
  hist.best_metric = best;
  return hist;
}
}  // namespace detail

/// Train `model` with `optimizer` on the batches of `train_source`,
/// validating on `val_source` (the overload without it monitors the
/// training loss).
///
/// `model` is a Sequential (sequential.hpp) that takes the sources' batches
/// (B, C, H, W) = (batch_size(), sample_shape()): model.output_shape() of
/// that shape is checked before training (a Sequential runs at any batch
/// size, so training and validation batches may differ).  `loss` is a loss object of losses.hpp (MSELoss,
/// GaussianNLLLoss, GaussianFullNLLLoss, BCEWithLogitsLoss, MDNLoss) or any
/// Loss (loss.hpp); with a loss object, the network's outputs per sample
/// must be loss.num_outputs(num_labels()) (checked before training).  The
/// sources model DataSource (simulate/data_source.hpp) on `space`, with the
/// network's scalar type and memory space: their batches feed forward()
/// without a copy.
///
/// Epoch e (0-based) takes S = train_source.batches_per_epoch() steps after
/// train_source.start_epoch(e) (ArraySource: the permutation of epoch e;
/// SimulatedBatches: the images of steps [e S, (e+1) S)); per step: next,
/// forward, loss, backward, [gradient clipping by global norm
/// (clip_grad_norm of optimizer.hpp)], optimizer step.  After each epoch the
/// validation source runs in inference mode from start_epoch(0), all its
/// batches_per_epoch() batches; its loss is the mean of the batch losses.
/// The monitored metric is the validation loss, or the training loss
/// without validation.  Schedule, early stopping and restore_best work as in
/// train() (train.hpp), per epoch.
///
/// Progress (to *log): every log_every steps "step s/T  r steps/s  i
/// images/s  loss L  val_loss V  lr η  ETA t" (loss: mean over the steps
/// since the previous line; val_loss: the last validation; rates over that
/// interval; ETA from the mean rate of this call, validation included), and
/// per epoch the line of train() ("epoch e/E  loss …  val_loss …  lr …  time
/// … s", "  *" when the metric improved).
///
/// Checkpoints (checkpoint_path set): one file (checkpoint.hpp: the
/// training state, the network's weights in serialize.hpp's format, the
/// best epoch's weights with early stopping, a checksum), replaced durably
/// and atomically, after every checkpoint_every-th epoch, after the first
/// epoch ending checkpoint_seconds or more after the previous write, and
/// after the last epoch of the call.  resume_from = such a file continues at
/// its next epoch: run to the same total, the weights are bit-identical to
/// an uninterrupted run on a deterministic backend (the sources' batches
/// are functions of the epoch; the optimizer state, step count, rate,
/// schedule state and top-level Dropout mask counters are restored).
///
/// Data-parallel training (options.replica, see ReplicaHooks; implemented
/// with MPI by mpi/data_parallel.hpp): each replica runs fit() on its own
/// shard of the batches; after backward the gradients and the step's loss
/// are averaged over the replicas (so every replica takes the same step and
/// logs the same loss), the validation loss is averaged, and only the
/// replica with writes_checkpoint writes the checkpoint.
///
/// Throws std::invalid_argument("lensing::nn::fit: ...") for a network that
/// does not take the sources' batches or whose output does not fit the
/// loss and labels, bad options, or a checkpoint of another network,
/// optimizer or schedule; std::runtime_error for unreadable, corrupted or
/// unwritable checkpoint files (a failed write leaves the previous file
/// valid) and for a non-finite training loss, naming the epoch and step.
template <class ExecutionSpace, class Net, class Optimizer, class Loss, class TrainSource, class ValSource>
FitHistory fit(ExecutionSpace const& space, Net& model, Optimizer& optimizer, Loss const& loss,
               TrainSource& train_source, ValSource& val_source, FitOptions const& options) {
  using Scalar = typename Net::scalar_type;
  using Mem = typename Net::memory_space;
  static_assert(simulate::check_data_source<TrainSource, ExecutionSpace>(), "lensing::nn::fit: training source");
  static_assert(simulate::check_data_source<ValSource, ExecutionSpace>(), "lensing::nn::fit: validation source");
  static_assert(std::is_same<typename TrainSource::scalar_type, Scalar>::value &&
                    std::is_same<typename ValSource::scalar_type, Scalar>::value,
                "lensing::nn::fit: the sources' scalar type must be the network's");
  static_assert(std::is_same<typename TrainSource::memory_space, Mem>::value &&
                    std::is_same<typename ValSource::memory_space, Mem>::value,
                "lensing::nn::fit: the sources' memory space must be the network's");
  static_assert(check_loss<Loss const, ExecutionSpace, Scalar, Mem>(), "lensing::nn::fit: `loss` must model Loss");
  return detail::fit_impl(space, model, optimizer, loss, train_source, &val_source, options);
}

/// fit() without a validation source.
template <class ExecutionSpace, class Net, class Optimizer, class Loss, class TrainSource>
FitHistory fit(ExecutionSpace const& space, Net& model, Optimizer& optimizer, Loss const& loss,
               TrainSource& train_source, FitOptions const& options) {
  using Scalar = typename Net::scalar_type;
  using Mem = typename Net::memory_space;
  static_assert(simulate::check_data_source<TrainSource, ExecutionSpace>(), "lensing::nn::fit: training source");
  static_assert(std::is_same<typename TrainSource::scalar_type, Scalar>::value,
                "lensing::nn::fit: the source's scalar type must be the network's");
  static_assert(std::is_same<typename TrainSource::memory_space, Mem>::value,
                "lensing::nn::fit: the source's memory space must be the network's");
  static_assert(check_loss<Loss const, ExecutionSpace, Scalar, Mem>(), "lensing::nn::fit: `loss` must model Loss");
  return detail::fit_impl(space, model, optimizer, loss, train_source, static_cast<TrainSource*>(nullptr), options);
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_FIT_HPP
