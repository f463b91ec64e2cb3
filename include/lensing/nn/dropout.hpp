#ifndef LENSING_NN_DROPOUT_HPP
#define LENSING_NN_DROPOUT_HPP

#include <lensing/nn/layer.hpp>

#include <cmath>
#include <cstdint>

namespace lensing {
namespace nn {

/// Inverted dropout (Srivastava et al. 2014) with Monte-Carlo dropout
/// (Gal & Ghahramani 2016).
///
/// Active (training mode, or any mode after `set_mc(true)`): y_i = m_i x_i
/// with m_i = 1/(1−p) with probability 1−p and 0 otherwise, so E[y] = x;
/// inactive: y = x.  m_i of the k-th active forward is drawn from the stream
/// random::stream_key(seed, purpose_dropout, k, i) (core/random.hpp) —
/// deterministic for a seed whatever the execution
/// space or number of threads, and recomputed (not stored) by backward,
/// which applies the mask of the last forward: dx = m ⊙ dy.  `rate` p in [0, 1).
template <class Scalar, class MemorySpace>
class Dropout : public LayerBase<Scalar, MemorySpace> {
 public:
  using typename LayerBase<Scalar, MemorySpace>::tensor_type;
  using typename LayerBase<Scalar, MemorySpace>::vector_type;
  explicit Dropout(double rate, std::uint64_t seed = 0) : rate_(rate), seed_(seed) {
    check_in_closed_open(rate, 0.0, 1.0, "lensing::nn::Dropout", "rate");
  }
  Shape4 output_shape(Shape4 const& in) const {
    check_valid_shape(in, "lensing::nn::Dropout");
    return in;
  }
  /// Keep dropout on at inference (MC dropout).
  void set_mc(bool on) { mc_ = on; }
  bool active() const { return this->training_ || mc_; }
  /// Re-seed and restart the mask sequence.
  void initialize(std::uint64_t seed) {
    seed_ = seed;
    counter_ = 0;
  }
  /// Same as initialize(seed) (a dropout layer has no parameters): what
  /// Sequential::reseed_dropout and mc_predict call to re-seed the masks
  /// without touching other layers' parameters.
  void reseed_dropout(std::uint64_t seed) { initialize(seed); }
  double rate() const { return rate_; }
  /// Forward calls with dropout active so far (the mask of the next one is
  /// drawn from (seed, counter)); a training checkpoint saves and restores
  /// it so that a resumed run draws the masks of an uninterrupted one.
  std::uint64_t counter() const { return counter_; }
  void set_counter(std::uint64_t c) { counter_ = c; }
  /// The seed of the masks (initialize's).
  std::uint64_t seed() const { return seed_; }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    detail::check_forward(*this, x, y, "lensing::nn::Dropout::forward");
    last_active_ = active();
    if (last_active_) last_ = counter_++;
    apply(space, x, y, "lensing::nn::Dropout::forward");
  }
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::Dropout::backward");
    if (dx.data() != nullptr) apply(space, dy, dx, "lensing::nn::Dropout::backward");
  }

  // Implementation, public for nvcc (extended lambdas need a public enclosing function).
  // b = mask(last forward) ⊙ a, or b = a when that forward was inactive.
  template <class ExecutionSpace>
  void apply(ExecutionSpace const& space, tensor_type const& a, tensor_type const& b, char const* name) const {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>, "lensing::nn::Dropout: inaccessible tensors");
    Scalar const* ap = a.data();
    Scalar* bp = b.data();
    bool const on = last_active_;
    double const p = rate_;
    Scalar const scale = Scalar(1.0 / (1.0 - rate_));
    std::uint64_t const seed = seed_, call = last_;
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(a.size())),
        KOKKOS_LAMBDA(long i) {
          if (!on) {
            bp[i] = ap[i];
          } else {
            random::Stream r(random::stream_key(seed, random::purpose_dropout, call, std::uint64_t(i)));
            double const u = r.template uniform<double>();
            bp[i] = u < p ? Scalar(0) : scale * ap[i];
          }
        });
  }

 private:
  double rate_;
  std::uint64_t seed_;
  std::uint64_t counter_ = 0, last_ = 0;
  bool mc_ = false, last_active_ = false;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_DROPOUT_HPP
