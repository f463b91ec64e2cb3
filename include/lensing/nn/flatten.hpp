#ifndef LENSING_NN_FLATTEN_HPP
#define LENSING_NN_FLATTEN_HPP

#include <lensing/nn/layer.hpp>

namespace lensing {
namespace nn {

/// Flatten: (N, C, H, W) -> (N, C·H·W, 1, 1), same memory order (a copy; the
/// row-major layout makes it the identity on the flat data).  Dense reads
/// any tensor flattened already; Flatten makes the shape explicit.
template <class Scalar, class MemorySpace>
class Flatten : public LayerBase<Scalar, MemorySpace> {
 public:
  using typename LayerBase<Scalar, MemorySpace>::tensor_type;
  using typename LayerBase<Scalar, MemorySpace>::vector_type;
  Shape4 output_shape(Shape4 const& in) const {
    check_valid_shape(in, "lensing::nn::Flatten");
    return Shape4{in.n, static_cast<int>(in.per_sample()), 1, 1};
  }
  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    detail::check_forward(*this, x, y, "lensing::nn::Flatten::forward");
    copy(space, x.data(), y.data(), long(x.size()));
  }
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::Flatten::backward");
    if (dx.data() != nullptr) copy(space, dy.data(), dx.data(), long(dy.size()));
  }

  // Implementation, public for nvcc (extended lambdas need a public enclosing function).
  template <class ExecutionSpace>
  static void copy(ExecutionSpace const& space, Scalar const* a, Scalar* b, long n) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>, "lensing::nn::Flatten: inaccessible tensors");
    Kokkos::parallel_for(
        "lensing::nn::Flatten::copy", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n),
        KOKKOS_LAMBDA(long i) { b[i] = a[i]; });
  }
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_FLATTEN_HPP
