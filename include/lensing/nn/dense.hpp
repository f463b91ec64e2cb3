#ifndef LENSING_NN_DENSE_HPP
#define LENSING_NN_DENSE_HPP

#include <lensing/nn/gemm.hpp>
#include <lensing/nn/layer.hpp>

namespace lensing {
namespace nn {

/// Fully connected layer y = W x + b.
///
/// Input: any (N, C, H, W) tensor, read as the row-major matrix
/// X (N, in_features = C*H*W); output (N, out_features, 1, 1):
/// Y = X Wᵀ + 1 bᵀ.  Parameters, flat: W (out_features x in_features,
/// row-major, PyTorch's nn.Linear order) then b (out_features).
/// Backward: dX = dY W, dW = dYᵀ X, db = Σ_n dY.  All three are GEMMs
/// (gemm.hpp: Eigen on the host).  Initialised He-normal (weights) and zero
/// (bias), or with the Init given to the constructor.
template <class Scalar, class MemorySpace>
class Dense : public LayerBase<Scalar, MemorySpace> {
  using base = LayerBase<Scalar, MemorySpace>;

 public:
  using typename base::tensor_type;
  using typename base::vector_type;

  Dense(int in_features, int out_features, Init init = Init::he_normal)
      : in_(in_features), out_(out_features), init_(init) {
    check_count(in_features, 1, "lensing::nn::Dense", "in_features");
    check_count(out_features, 1, "lensing::nn::Dense", "out_features");
    this->params_ = vector_type("lensing::nn::Dense::params", static_cast<long>(out_) * in_ + out_);
  }
  int in_features() const { return in_; }
  int out_features() const { return out_; }

  Shape4 output_shape(Shape4 const& in) const {
    check_valid_shape(in, "lensing::nn::Dense");
    check_argument(in.per_sample() == in_, "lensing::nn::Dense",
                   "input " + in.str() + " has " + std::to_string(in.per_sample()) + " features per sample, expected " +
                       std::to_string(in_));
    return Shape4{in.n, out_, 1, 1};
  }

  void initialize(std::uint64_t seed) {
    long const nw = static_cast<long>(out_) * in_;
    auto w = Kokkos::subview(this->params_, Kokkos::make_pair(0L, nw));
    auto b = Kokkos::subview(this->params_, Kokkos::make_pair(nw, nw + out_));
    nn::initialize(vector_type(w), init_, in_, out_, seed);
    Kokkos::deep_copy(b, Scalar(0));
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::Dense::forward: the tensors are not accessible from this execution space");
    detail::check_forward(*this, x, y, "lensing::nn::Dense::forward");
    long const n = static_cast<long>(x.extent(0)), in = in_, out = out_;
    Scalar const* p = this->params_.data();
    Scalar* yp = y.data();
    Kokkos::parallel_for(
        "lensing::nn::Dense::bias", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * out),
        KOKKOS_LAMBDA(long i) { yp[i] = p[out * in + i % out]; });
    gemm(space, false, true, n, out, in, Scalar(1), x.data(), in, p, in, Scalar(1), yp, out);
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::Dense::backward: the tensors are not accessible from this execution space");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::Dense::backward");
    long const n = static_cast<long>(x.extent(0)), in = in_, out = out_;
    Scalar* g = dparams.data();
    Scalar const* dyp = dy.data();
    gemm(space, true, false, out, in, n, Scalar(1), dyp, out, x.data(), in, Scalar(0), g, in);
    Kokkos::parallel_for(
        "lensing::nn::Dense::bias_grad", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, out),
        KOKKOS_LAMBDA(long o) {
          Scalar s = Scalar(0);
          for (long i = 0; i < n; ++i)
            s += dyp[i * out + o];
          g[out * in + o] = s;
        });
    if (dx.data() != nullptr)
      gemm(space, false, false, n, in, out, Scalar(1), dyp, out, this->params_.data(), in, Scalar(0), dx.data(), in);
  }

 private:
  int in_, out_;
  Init init_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_DENSE_HPP
