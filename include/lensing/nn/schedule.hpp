#ifndef LENSING_NN_SCHEDULE_HPP
#define LENSING_NN_SCHEDULE_HPP

/// \file
/// Learning-rate schedules, per epoch, applied to any optimizer with
/// `set_lr(double)` (SGD, Adam, AdamW of optimizer.hpp).  The schedules are
/// the library's one set, core/lr_schedule.hpp (shared with the host Adam of
/// core/adam_rule.hpp); this header names them in lensing::nn.

#include <lensing/core/lr_schedule.hpp>

namespace lensing {
namespace nn {

/// The learning-rate schedule of core/lr_schedule.hpp (constant, step,
/// exponential, inverse_time, cosine with warm-up, reduce_on_plateau).
using LRSchedule = lensing::LRSchedule;

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_SCHEDULE_HPP
