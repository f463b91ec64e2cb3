#ifndef LENSING_NN_DETAIL_EPOCH_END_HPP
#define LENSING_NN_DETAIL_EPOCH_END_HPP

/// \file
/// The end of an epoch, shared by train() (nn/train.hpp) and fit()
/// (nn/fit.hpp): tracking the best monitored metric with its patience
/// count, and the epoch and early-stopping log lines.

#include <Kokkos_Core.hpp>

#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>

namespace lensing {
namespace nn {
namespace detail {

/// Record `metric` of epoch `e`: an improvement (finite and below best −
/// min_delta, or the first finite metric) makes it the best, resets `wait`
/// and, with `keep_weights` (early stopping), copies the network's
/// parameters and state into best_params/best_state; otherwise `wait` counts
/// one more epoch without improvement.  Returns whether it improved.
template <class Net, class V, class Epoch>
bool track_best(double metric, Epoch e, double min_delta, bool keep_weights, Net& net, V const& best_params,
                V const& best_state, double& best, Epoch& best_epoch, long& wait) {
  if (std::isfinite(metric) && (best_epoch < 0 || metric < best - min_delta)) {
    best = metric;
    best_epoch = e;
    wait = 0;
    if (keep_weights) {
      Kokkos::deep_copy(best_params, net.parameters());
      Kokkos::deep_copy(best_state, net.state());
    }
    return true;
  }
  ++wait;
  return false;
}

/// "epoch E/N  loss L  [val_loss V]  lr R  time T s  [*]" (* marks an improvement).
inline void log_epoch(std::ostream& log, long e, long epochs, double train_loss, bool has_val, double val_loss,
                      double lr, double seconds, bool improved) {
  std::ostringstream line;
  line << "epoch " << (e + 1) << "/" << epochs << "  loss " << std::scientific << std::setprecision(6) << train_loss;
  if (has_val) line << "  val_loss " << val_loss;
  line << "  lr " << std::setprecision(3) << lr << "  time " << std::fixed << std::setprecision(2) << seconds << " s"
       << (improved ? "  *" : "") << "\n";
  log << line.str() << std::flush;
}

/// The early-stopping line (epochs 1-based).
inline void log_early_stop(std::ostream& log, long e, long wait, long best_epoch) {
  log << "early stopping after epoch " << (e + 1) << ": no improvement for " << wait << " epochs (best epoch "
      << (best_epoch + 1) << ")\n"
      << std::flush;
}

}  // namespace detail
}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_DETAIL_EPOCH_END_HPP
