#ifndef LENSING_NN_RESHAPE_HPP
#define LENSING_NN_RESHAPE_HPP

#include <lensing/nn/layer.hpp>

namespace lensing {
namespace nn {

/// Reshape: (N, C, H, W) -> (N, c, h, w) with c·h·w = C·H·W, same memory
/// order (a copy; row-major NCHW makes it the identity on the flat data, as
/// torch.reshape of a contiguous tensor).  One of c, h, w may be −1: it is
/// inferred from the others (as PyTorch's −1).  Backward copies dy into dx.
/// Flatten (flatten.hpp) is Reshape(−1, 1, 1); the usual use is the other
/// way, a Dense output (N, F, 1, 1) turned into an image (N, C, H, W) before
/// a ConvTranspose2D decoder.  No parameters.
template <class Scalar, class MemorySpace>
class Reshape : public LayerBase<Scalar, MemorySpace> {
 public:
  using typename LayerBase<Scalar, MemorySpace>::tensor_type;
  using typename LayerBase<Scalar, MemorySpace>::vector_type;

  /// Target per-sample shape (c, h, w): each >= 1, or one of them −1.
  Reshape(int c, int h, int w) : c_(c), h_(h), w_(w) {
    char const* where = "lensing::nn::Reshape";
    int const inferred = (c == -1) + (h == -1) + (w == -1);
    check_argument((c >= 1 || c == -1) && (h >= 1 || h == -1) && (w >= 1 || w == -1) && inferred <= 1, where,
                   "target (" + std::to_string(c) + ", " + std::to_string(h) + ", " + std::to_string(w) +
                       ") must have every extent >= 1, or one of them -1 (inferred)");
  }

  Shape4 output_shape(Shape4 const& in) const {
    char const* where = "lensing::nn::Reshape";
    check_valid_shape(in, where);
    long const total = in.per_sample();
    long known = 1;
    for (int e : {c_, h_, w_})
      if (e != -1) known *= e;
    long const missing = total / known;
    Shape4 const out{in.n, c_ == -1 ? int(missing) : c_, h_ == -1 ? int(missing) : h_, w_ == -1 ? int(missing) : w_};
    check_argument(out.per_sample() == total, where,
                   "input " + in.str() + " has " + std::to_string(total) +
                       " values per sample, which cannot take the shape (" + std::to_string(c_) + ", " +
                       std::to_string(h_) + ", " + std::to_string(w_) + ")");
    return out;
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    detail::check_forward(*this, x, y, "lensing::nn::Reshape::forward");
    copy(space, x.data(), y.data(), long(x.size()));
  }
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::Reshape::backward");
    if (dx.data() != nullptr) copy(space, dy.data(), dx.data(), long(dy.size()));
  }

  // Implementation, public for nvcc (extended lambdas need a public enclosing function).
  template <class ExecutionSpace>
  static void copy(ExecutionSpace const& space, Scalar const* a, Scalar* b, long n) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>, "lensing::nn::Reshape: inaccessible tensors");
    Kokkos::parallel_for(
        "lensing::nn::Reshape::copy", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n),
        KOKKOS_LAMBDA(long i) { b[i] = a[i]; });
  }

 private:
  int c_, h_, w_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_RESHAPE_HPP
