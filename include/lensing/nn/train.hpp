#ifndef LENSING_NN_TRAIN_HPP
#define LENSING_NN_TRAIN_HPP

/// \file
/// A training loop: epochs over seeded shuffled mini-batches, validation,
/// learning-rate schedules, early stopping, checkpoints and resume.

#include <lensing/core/errors.hpp>
#include <lensing/nn/checkpoint.hpp>
#include <lensing/nn/detail/epoch_end.hpp>
#include <lensing/nn/finite_check.hpp>
#include <lensing/nn/loss.hpp>
#include <lensing/nn/schedule.hpp>
#include <lensing/nn/serialize.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace lensing {
namespace nn {

/// Options of train().
struct TrainOptions {
  int epochs = 10;                     ///< total number of epochs (a resumed run continues up to it)
  std::uint64_t seed = 0;              ///< seed of the per-epoch shuffles
  bool shuffle = true;                 ///< shuffle the training set every epoch
  int patience = 0;                    ///< early stopping after `patience` epochs without improvement; 0: off
  double min_delta = 0;                ///< improvement means metric < best − min_delta
  bool restore_best = true;            ///< with early stopping on: end with the best epoch's weights
  int checkpoint_every = 0;            ///< write a checkpoint every N epochs; 0: never
  std::string checkpoint_path;         ///< checkpoint base path (files <path>.weights, .train, .best)
  std::string resume_from;             ///< checkpoint base path to resume from; empty: start afresh
  std::ostream* log = &std::cout;      ///< progress lines; nullptr: silent
  std::optional<LRSchedule> schedule;  ///< learning-rate schedule; empty: keep the optimizer's rate
};

/// What train() did, per epoch run in this call.
struct TrainHistory {
  int first_epoch = 0;           ///< first epoch run in this call (> 0 when resumed)
  std::vector<double> loss;      ///< mean training loss of each epoch (over its mini-batches, training mode)
  std::vector<double> val_loss;  ///< mean validation loss (inference mode); empty without validation
  std::vector<double> lr;        ///< learning rate used in each epoch
  std::vector<double> seconds;   ///< wall time of each epoch
  int best_epoch = -1;           ///< epoch with the best monitored metric (over the whole run, resume included)
  double best_metric = 0;        ///< its value
  bool stopped_early = false;
  int epochs_run() const { return int(loss.size()); }
};

namespace detail {
inline constexpr char train_magic[9] = "LNSNNT01";

/// Permutation of [0, n) for an epoch: Fisher–Yates with the stream
/// (seed, purpose_epoch_shuffle, epoch) of core/random.hpp, so an epoch's order
/// does not depend on the previous ones (resume needs no generator state) nor
/// on the standard library.  n < 2^32 (Stream::index).
inline std::vector<long> epoch_permutation(long n, std::uint64_t seed, long epoch, bool shuffle) {
  std::vector<long> perm(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i)
    perm[std::size_t(i)] = i;
  if (!shuffle) return perm;
  check_argument(n <= 0xFFFFFFFFL, "lensing::nn::train", "at most 2^32 - 1 samples when shuffling");
  Rng rng(seed, random::purpose_epoch_shuffle, std::uint64_t(epoch));
  for (long i = n - 1; i > 0; --i) {
    long const j = long(rng.index(std::uint32_t(i + 1)));
    std::swap(perm[std::size_t(i)], perm[std::size_t(j)]);
  }
  return perm;
}

template <class V>
bool host_all_finite(V const& v) {
  auto const* p = v.data();
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!finite_bits(p[i])) return false;
  return true;
}

}  // namespace detail

/// Train `net` with `opt` on (x, y), validating on (x_val, y_val).
///
/// `net` is a Sequential (sequential.hpp; any type with its forward/backward,
/// parameters/gradients/state, output_gradient, input_shape, set_training
/// and for_each_layer); its input batch size B = net.input_shape().n is the
/// mini-batch size.  `opt` is SGD/Adam/AdamW (optimizer.hpp: step, set_lr,
/// lr, steps/set_steps, state_vectors).  `loss(space, pred, target, grad)`
/// returns the batch-mean loss and writes dL/dpred into grad when grad.data()
/// is not null (every loss of loss*.hpp, wrapped in a lambda; pred is
/// net.output(), target a (B, D) view in the network's memory space).
///
/// Data are host views: x (N, C, H, W) with (C, H, W) the network's input
/// sample shape, y (N, D); validation (N_val, ...) or empty views (N_val = 0:
/// no validation).  Epoch e (0-based) visits the training set in a
/// permutation drawn from (seed, e) (detail::epoch_permutation) in ⌊N/B⌋
/// full mini-batches (the rest of that permutation is skipped, other samples
/// next epoch); per batch: forward, loss, backward, opt.step.  Validation
/// runs in inference mode (set_training(false)) over the first ⌊N_val/B⌋·B
/// samples; its loss is the mean of the batch losses.  The monitored metric
/// is the validation loss, or the training loss without validation.
///
/// Schedule: before epoch e, opt.set_lr(schedule.lr(e)); after it,
/// schedule.observe(metric).  Early stopping (patience > 0): training stops
/// after `patience` epochs in a row without metric < best − min_delta; with
/// restore_best the network then ends with the parameters and state of the
/// best epoch (also when all epochs ran).  A progress line per epoch —
/// "epoch e/E  loss …  val_loss …  lr …  time … s", with "  *" appended when
/// the metric improved — goes to *log (one more line when stopping early).
///
/// Checkpoints (checkpoint_every = k > 0): after every k-th epoch, files
/// `<checkpoint_path>.weights` (the network, serialize.hpp's format),
/// `<checkpoint_path>.best` (the best epoch's weights, early stopping only)
/// and `<checkpoint_path>.train` (next epoch, best epoch and metric, epochs
/// without improvement, optimizer step count, rate and state vectors,
/// schedule state, Dropout layers' mask counters; the training state block
/// of checkpoint.hpp, magic "LNSNNT01"; every file replaced durably and
/// atomically).  With resume_from = a checkpoint's path, training
/// continues at its next epoch and, when run to the same total, ends with
/// weights bit-identical to an uninterrupted run (the per-epoch shuffle is a
/// function of (seed, e), and top-level Dropout layers' mask counters are
/// saved; Dropout nested inside a block is not).
///
/// Throws std::invalid_argument("lensing::nn::train: ...") for inconsistent
/// shapes, fewer samples than B, non-finite data, bad options or a
/// checkpoint of another network/optimizer; std::runtime_error for
/// unreadable/unwritable checkpoint files and for a non-finite training loss
/// (divergence), naming the epoch and batch.
template <class ExecutionSpace, class Net, class Optimizer, class Loss>
TrainHistory train(ExecutionSpace const& space, Net& net, Optimizer& opt, Loss&& loss,
                   Tensor<typename Net::scalar_type, Kokkos::HostSpace> const& x,
                   View2D<typename Net::scalar_type, Kokkos::HostSpace> const& y,
                   Tensor<typename Net::scalar_type, Kokkos::HostSpace> const& x_val,
                   View2D<typename Net::scalar_type, Kokkos::HostSpace> const& y_val, TrainOptions const& options) {
  using Scalar = typename Net::scalar_type;
  using Mem = typename Net::memory_space;
  using T = Tensor<Scalar, Mem>;
  using V = ParamVector<Scalar, Mem>;
  static_assert(is_accessible_from_v<ExecutionSpace, Mem>,
                "lensing::nn::train: the network's memory space is not accessible from this execution space");
  static_assert(check_loss<Loss, ExecutionSpace, Scalar, Mem>(),
                "lensing::nn::train: `loss` must model Loss (loss.hpp)");
  char const* where = "lensing::nn::train";
  Shape4 const in = net.input_shape();
  long const bsz = in.n, n = long(x.extent(0)), nval = long(x_val.extent(0)), d = long(y.extent(1));
  // Checks.
  check_count(options.epochs, 1, where, "epochs");
  check_count(options.patience, 0, where, "patience");
  check_count(options.checkpoint_every, 0, where, "checkpoint_every");
  check_nonnegative(options.min_delta, where, "min_delta");
  check_argument(options.checkpoint_every == 0 || !options.checkpoint_path.empty(), where,
                 "checkpoint_every > 0 needs a checkpoint_path");
  check_argument(long(y.extent(0)) == n, where,
                 "x has " + std::to_string(n) + " samples, y has " + std::to_string(y.extent(0)));
  check_argument(n >= bsz, where,
                 "the training set has " + std::to_string(n) + " samples, fewer than the batch size " +
                     std::to_string(bsz) + " of the network");
  check_shape(x, Shape4{int(n), in.c, in.h, in.w}, where, "x");
  check_argument(long(y_val.extent(0)) == nval, where,
                 "x_val has " + std::to_string(nval) + " samples, y_val has " + std::to_string(y_val.extent(0)));
  if (nval > 0) {
    check_argument(nval >= bsz, where,
                   "the validation set has " + std::to_string(nval) + " samples, fewer than the batch size " +
                       std::to_string(bsz) + " (pass empty views for no validation)");
    check_shape(x_val, Shape4{int(nval), in.c, in.h, in.w}, where, "x_val");
    check_argument(long(y_val.extent(1)) == d, where, "y_val and y must have the same number of columns");
  }
  check_argument(detail::host_all_finite(x) && detail::host_all_finite(y), where,
                 "the training data have NaN or infinite values");
  check_argument(detail::host_all_finite(x_val) && detail::host_all_finite(y_val), where,
                 "the validation data have NaN or infinite values");

  std::optional<LRSchedule> schedule = options.schedule;
  std::ostream* log = options.log;
  long const per_sample = long(in.c) * in.h * in.w;
  T xb("lensing::nn::train::x", in.n, in.c, in.h, in.w), none;
  View2D<Scalar, Mem> yb("lensing::nn::train::y", bsz, d);
  auto hxb = Kokkos::create_mirror_view(xb);
  auto hyb = Kokkos::create_mirror_view(yb);
  bool const early = options.patience > 0;
  V best_params("lensing::nn::train::best_params", net.num_params());
  V best_state("lensing::nn::train::best_state", net.num_state());

  TrainHistory hist;
  int first = 0;
  long wait = 0;
  double best = 0;
  int best_epoch = -1;

  // Resume.
  if (!options.resume_from.empty()) {
    std::string const base = options.resume_from;
    std::string const tpath = base + ".train";
    std::string const bytes = detail::read_file_bytes(tpath, where);
    detail::ByteReader r{bytes.data(), bytes.size()};
    auto const decoded =
        detail::decode_training_state<Scalar>(r, detail::train_magic, opt, net.num_params(), tpath, where);
    TrainingState const& st = decoded.state;
    if (r.pos != r.size)
      throw std::runtime_error(std::string(where) + ": '" + tpath + "': trailing bytes after the data");
    check_argument(st.next_epoch >= 1 && st.next_epoch <= options.epochs, where,
                   "the checkpoint's next epoch " + std::to_string(st.next_epoch) +
                       " is not in [1, epochs = " + std::to_string(options.epochs) + "]");
    check_argument(st.has_schedule == schedule.has_value(), where,
                   "the checkpoint was written with" + std::string(st.has_schedule ? "" : "out") +
                       " a learning-rate schedule, the options have" + (schedule ? "" : " none"));
    std::int64_t const be = st.best_epoch, steps = st.optimizer_steps, next = st.next_epoch, w = st.wait;
    double const bm = st.best_metric, lr = st.lr;
    auto const& sched = st.schedule;
    if (!st.counters.empty()) detail::set_layer_counters(net, st.counters, tpath, where);
    detail::load_optimizer_state(opt, decoded.optimizer);
    if (be >= 0 && early) {
      load_weights(net, base + ".best");
      Kokkos::deep_copy(best_params, net.parameters());
      Kokkos::deep_copy(best_state, net.state());
    }
    load_weights(net, base + ".weights");
    opt.set_steps(long(steps));
    opt.set_lr(lr);
    if (schedule) schedule->set_state(sched);
    first = int(next);
    best_epoch = int(be);
    best = bm;
    wait = long(w);
  }
  hist.first_epoch = first;

  auto const save_checkpoint = [&](int next_epoch) {
    std::string const base = options.checkpoint_path;
    save_weights(net, base + ".weights");
    if (early && best_epoch >= 0) {
      // The best weights are in best_params/best_state: swap them in to save.
      V cur_p("lensing::nn::train::cur_params", net.num_params());
      V cur_s("lensing::nn::train::cur_state", net.num_state());
      Kokkos::deep_copy(cur_p, net.parameters());
      Kokkos::deep_copy(cur_s, net.state());
      Kokkos::deep_copy(net.parameters(), best_params);
      Kokkos::deep_copy(net.state(), best_state);
      save_weights(net, base + ".best");
      Kokkos::deep_copy(net.parameters(), cur_p);
      Kokkos::deep_copy(net.state(), cur_s);
    }
    TrainingState st;
    st.next_epoch = next_epoch;
    st.best_epoch = best_epoch;
    st.best_metric = best;
    st.wait = wait;
    st.optimizer_steps = opt.steps();
    st.lr = opt.lr();
    st.has_schedule = schedule.has_value();
    if (schedule) st.schedule = schedule->state();
    st.counters = detail::layer_counters(net);
    write_file_durably(base + ".train",
                       detail::encode_training_state<Scalar>(detail::train_magic, st, opt, net.num_params()), where);
  };

  // Copy samples idx[first..first+B) of (xs, ys) into the device batch.
  auto const load_batch = [&](auto const& xs, auto const& ys, long const* idx) {
    for (long i = 0; i < bsz; ++i) {
      std::memcpy(hxb.data() + i * per_sample, xs.data() + idx[i] * per_sample, sizeof(Scalar) * per_sample);
      std::memcpy(hyb.data() + i * d, ys.data() + idx[i] * d, sizeof(Scalar) * d);
    }
    Kokkos::deep_copy(xb, hxb);
    Kokkos::deep_copy(yb, hyb);
  };

  net.set_training(true);
  std::vector<long> val_idx(static_cast<std::size_t>(nval));
  for (long i = 0; i < nval; ++i)
    val_idx[std::size_t(i)] = i;
  for (int e = first; e < options.epochs; ++e) {
    auto const t0 = std::chrono::steady_clock::now();
    if (schedule) schedule->apply(opt, e);
    double const lr = opt.lr();
    auto const perm = detail::epoch_permutation(n, options.seed, e, options.shuffle);
    long const nb = n / bsz;
    double sum = 0;
    for (long b = 0; b < nb; ++b) {
      load_batch(x, y, perm.data() + b * bsz);
      auto const out = net.forward(space, xb);
      double const l = double(loss(space, out, yb, net.output_gradient()));
      if (!std::isfinite(l))
        throw std::runtime_error(std::string(where) + ": the training loss is not finite at epoch " +
                                 std::to_string(e) + ", batch " + std::to_string(b) + " (diverged?)");
      sum += l;
      net.backward(space, xb);
      opt.step(space, net.parameters(), net.gradients());
    }
    double const train_loss = sum / double(nb);
    double val = 0;
    if (nval > 0) {
      net.set_training(false);
      long const nvb = nval / bsz;
      double vs = 0;
      for (long b = 0; b < nvb; ++b) {
        load_batch(x_val, y_val, val_idx.data() + b * bsz);
        vs += double(loss(space, net.forward(space, xb), yb, none));
      }
      val = vs / double(nvb);
      net.set_training(true);
    }
    space.fence();
    double const metric = nval > 0 ? val : train_loss;
    bool const improved =
        detail::track_best(metric, e, options.min_delta, early, net, best_params, best_state, best, best_epoch, wait);
    if (schedule && std::isfinite(metric)) schedule->observe(metric);
    double const secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    hist.loss.push_back(train_loss);
    if (nval > 0) hist.val_loss.push_back(val);
    hist.lr.push_back(lr);
    hist.seconds.push_back(secs);
    if (log != nullptr) detail::log_epoch(*log, e, options.epochs, train_loss, nval > 0, val, lr, secs, improved);
    if (options.checkpoint_every > 0 && (e + 1) % options.checkpoint_every == 0) save_checkpoint(e + 1);
    if (early && wait >= options.patience) {
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

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_TRAIN_HPP
