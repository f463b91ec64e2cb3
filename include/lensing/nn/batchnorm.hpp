#ifndef LENSING_NN_BATCHNORM_HPP
#define LENSING_NN_BATCHNORM_HPP

#include <lensing/core/math.hpp>
#include <lensing/nn/layer.hpp>

namespace lensing {
namespace nn {

/// Batch normalisation over (N, H, W) per channel (Ioffe & Szegedy 2015),
/// PyTorch's BatchNorm2d/1d conventions.
///
/// Training: μ_c, σ²_c = mean and biased variance of x[:, c, :, :] over the
/// m = N·H·W values; y = γ_c (x − μ_c)/√(σ²_c + ε) + β_c; running statistics
/// r_μ ← (1−α) r_μ + α μ, r_σ² ← (1−α) r_σ² + α σ² m/(m−1) (unbiased), α the
/// momentum (0.1).  Inference: the same with (r_μ, r_σ²).  Parameters, flat:
/// γ (C) then β (C), initialised 1 and 0.  State (saved with the weights):
/// running mean (C) then running variance (C), initialised 0 and 1.
/// Backward (training), x̂ = (x − μ)/√(σ²+ε): dβ = Σ dy, dγ = Σ dy x̂,
/// dx = γ/(m √(σ²+ε)) (m dy − dβ − x̂ dγ); inference: dx = γ dy/√(r_σ²+ε).
/// Training needs m >= 2.
template <class Scalar, class MemorySpace>
class BatchNorm : public LayerBase<Scalar, MemorySpace> {
 public:
  using typename LayerBase<Scalar, MemorySpace>::tensor_type;
  using typename LayerBase<Scalar, MemorySpace>::vector_type;
  explicit BatchNorm(int channels, double momentum = 0.1, double eps = 1e-5)
      : c_(channels), momentum_(momentum), eps_(eps) {
    char const* where = "lensing::nn::BatchNorm";
    check_count(channels, 1, where, "channels");
    check_in_open_closed(momentum, 0.0, 1.0, where, "momentum");
    check_positive(eps, where, "eps");
    this->params_ = vector_type("lensing::nn::BatchNorm::params", 2 * c_);
    state_ = vector_type("lensing::nn::BatchNorm::state", 2 * c_);
    stats_ = vector_type("lensing::nn::BatchNorm::stats", 2 * c_);
    initialize(0);
  }
  Shape4 output_shape(Shape4 const& in) const {
    check_valid_shape(in, "lensing::nn::BatchNorm");
    check_argument(in.c == c_, "lensing::nn::BatchNorm",
                   "input " + in.str() + " has " + std::to_string(in.c) + " channels, expected " + std::to_string(c_));
    return in;
  }
  void initialize(std::uint64_t) {
    Kokkos::deep_copy(Kokkos::subview(this->params_, Kokkos::make_pair(0, c_)), Scalar(1));
    Kokkos::deep_copy(Kokkos::subview(this->params_, Kokkos::make_pair(c_, 2 * c_)), Scalar(0));
    Kokkos::deep_copy(Kokkos::subview(state_, Kokkos::make_pair(0, c_)), Scalar(0));
    Kokkos::deep_copy(Kokkos::subview(state_, Kokkos::make_pair(c_, 2 * c_)), Scalar(1));
  }
  long num_state() const { return 2 * c_; }
  vector_type state() const { return state_; }
  void bind_state(vector_type const& s) {
    check_argument(long(s.extent(0)) == num_state(), "lensing::nn::BatchNorm::bind_state",
                   "vector has " + std::to_string(s.extent(0)) + " elements, expected " + std::to_string(num_state()));
    Kokkos::deep_copy(s, state_);
    state_ = s;
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::BatchNorm::forward: inaccessible tensors");
    char const* where = "lensing::nn::BatchNorm::forward";
    detail::check_forward(*this, x, y, where);
    long const n = x.extent(0), c = c_, hw = long(x.extent(2)) * long(x.extent(3)), m = n * hw;
    bool const train = this->training_;
    check_argument(!train || m >= 2, where, "training mode needs at least 2 values per channel (N*H*W >= 2)");
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    Scalar const* g = this->params_.data();
    Scalar* st = state_.data();
    Scalar* ws = stats_.data();
    Scalar const eps = Scalar(eps_), mom = Scalar(momentum_);
    Kokkos::parallel_for(
        "lensing::nn::BatchNorm::forward", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, c),
        KOKKOS_LAMBDA(long ch) {
          channel_statistics(xp, n, c, hw, ch, train, mom, eps, st, ws);
          Scalar const mean = ws[ch], inv = ws[c + ch];
          Scalar const a = g[ch] * inv, b0 = g[c + ch] - a * mean;
          for (long b = 0; b < n; ++b)
            for (long i = 0; i < hw; ++i)
              yp[(b * c + ch) * hw + i] = a * xp[(b * c + ch) * hw + i] + b0;
        });
    last_train_ = train;
  }

  //--------------------------------------------------------------------------
  // Implementation, public for nvcc and for the fused PreactConv2D
  // (preact_conv2d.hpp), which normalises inside its convolution's input pass.

  /// The statistics forward would use for x, without writing y: the batch
  /// mean and 1/√(σ²+ε) (training, updating the running statistics as
  /// forward does) or those of the running statistics (inference), into
  /// batch_statistics(); the same arithmetic as forward, so the same bits.
  template <class ExecutionSpace>
  void statistics(ExecutionSpace const& space, tensor_type const& x) {
    ChannelStatistics const pass = statistics_pass(x);
    Kokkos::parallel_for("lensing::nn::BatchNorm::statistics",
                         Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, c_), pass);
  }
  /// statistics() of one channel: pass(ch) writes channel ch's mean and
  /// 1/√(σ²+ε) (and, training, updates its running statistics); the
  /// channels are independent, so any thread may run any of them.
  struct ChannelStatistics {
    Scalar const* xp;
    long n, c, hw;
    bool train;
    Scalar mom, eps;
    Scalar* st;
    Scalar* ws;
    KOKKOS_INLINE_FUNCTION void operator()(long ch) const {
      channel_statistics(xp, n, c, hw, ch, train, mom, eps, st, ws);
    }
  };
  /// statistics(x) as a per-channel pass, for a caller that runs it inside
  /// its own parallel region (the fused PreactConv2D): checks x and records
  /// the mode as statistics() does; the channels are then pass(0 .. C−1).
  ChannelStatistics statistics_pass(tensor_type const& x) {
    char const* where = "lensing::nn::BatchNorm::statistics";
    output_shape(shape_of(x));
    long const n = x.extent(0), c = c_, hw = long(x.extent(2)) * long(x.extent(3)), m = n * hw;
    bool const train = this->training_;
    check_argument(!train || m >= 2, where, "training mode needs at least 2 values per channel (N*H*W >= 2)");
    last_train_ = train;
    return {x.data(), n, c, hw, train, Scalar(momentum_), Scalar(eps_), state_.data(), stats_.data()};
  }
  /// Mean (C) then 1/√(σ²+ε) (C) of the last forward or statistics().
  vector_type batch_statistics() const { return stats_; }
  /// Whether the last forward or statistics() used batch statistics (training).
  bool last_training() const { return last_train_; }
  int channels() const { return c_; }

  /// Statistics of channel ch of x (n, c, hw) into ws[ch] (mean) and ws[c + ch]
  /// (1/√(σ²+ε)): two passes in double over the batch (training, updating the
  /// running statistics st) or the running statistics (inference).
  KOKKOS_INLINE_FUNCTION static void channel_statistics(Scalar const* xp, long n, long c, long hw, long ch, bool train,
                                                        Scalar mom, Scalar eps, Scalar* st, Scalar* ws) {
    long const m = n * hw;
    Scalar mean, var;
    if (train) {
      double s = 0;
      for (long b = 0; b < n; ++b) {
        Scalar const* xb = xp + (b * c + ch) * hw;
        LENSING_NN_SIMD_SUM(s)
        for (long i = 0; i < hw; ++i)
          s += double(xb[i]);
      }
      mean = Scalar(s / double(m));
      double v = 0;
      for (long b = 0; b < n; ++b) {
        Scalar const* xb = xp + (b * c + ch) * hw;
        LENSING_NN_SIMD_SUM(v)
        for (long i = 0; i < hw; ++i) {
          double const d = double(xb[i] - mean);
          v += d * d;
        }
      }
      var = Scalar(v / double(m));
      st[ch] = (Scalar(1) - mom) * st[ch] + mom * mean;
      st[c + ch] = (Scalar(1) - mom) * st[c + ch] + mom * var * Scalar(m) / Scalar(m - 1);
    } else {
      mean = st[ch];
      var = st[c + ch];
    }
    ws[ch] = mean;
    ws[c + ch] = Scalar(1) / lensing::math::sqrt(var + eps);
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::BatchNorm::backward: inaccessible tensors");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::BatchNorm::backward");
    long const n = x.extent(0), c = c_, hw = long(x.extent(2)) * long(x.extent(3)), m = n * hw;
    bool const train = last_train_;
    Scalar const* xp = x.data();
    Scalar const* dyp = dy.data();
    Scalar* dxp = dx.data();
    Scalar const* g = this->params_.data();
    Scalar* dg = dparams.data();
    Scalar const* ws = stats_.data();
    Kokkos::parallel_for(
        "lensing::nn::BatchNorm::backward", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, c),
        KOKKOS_LAMBDA(long ch) {
          Scalar const mean = ws[ch], inv = ws[c + ch];
          double sdy_acc = 0, sdyx_acc = 0;
          for (long b = 0; b < n; ++b) {
            Scalar const* xb = xp + (b * c + ch) * hw;
            Scalar const* db = dyp + (b * c + ch) * hw;
            LENSING_NN_SIMD_SUM(sdy_acc)
            for (long i = 0; i < hw; ++i)
              sdy_acc += double(db[i]);
            LENSING_NN_SIMD_SUM(sdyx_acc)
            for (long i = 0; i < hw; ++i)
              sdyx_acc += double(db[i] * (xb[i] - mean));
          }
          Scalar const sdy = Scalar(sdy_acc), sdyx = Scalar(sdyx_acc) * inv;
          dg[ch] = sdyx;
          dg[c + ch] = sdy;
          if (dxp == nullptr) return;
          Scalar const a = g[ch] * inv;
          for (long b = 0; b < n; ++b)
            if (train) {
              Scalar const k0 = sdy / Scalar(m), k1 = sdyx * inv / Scalar(m);
              for (long i = 0; i < hw; ++i) {
                long const at = (b * c + ch) * hw + i;
                dxp[at] = a * (dyp[at] - k0 - (xp[at] - mean) * k1);
              }
            } else {
              for (long i = 0; i < hw; ++i)
                dxp[(b * c + ch) * hw + i] = a * dyp[(b * c + ch) * hw + i];
            }
        });
  }

 private:
  int c_;
  double momentum_, eps_;
  vector_type state_, stats_;
  bool last_train_ = true;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_BATCHNORM_HPP
