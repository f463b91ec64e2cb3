#ifndef LENSING_NN_ACTIVATION_HPP
#define LENSING_NN_ACTIVATION_HPP

#include <lensing/core/math.hpp>
#include <lensing/core/parallel.hpp>
#include <lensing/nn/layer.hpp>

namespace lensing {
namespace nn {

namespace detail {
// Host: blocks of 2048 elements with a vectorisable inner loop (the
// functions below are branch-free selects, and their libm calls have SIMD
// variants: core/kokkos_compat.hpp).  Device: one element per thread.
template <class F>
struct ElementBlocks {
  F f;
  long n;
  static constexpr long block = 2048;
  KOKKOS_INLINE_FUNCTION void operator()(long b) const {
    long const lo = b * block, hi = lo + block < n ? lo + block : n;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
    for (long i = lo; i < hi; ++i)
      f(i);
  }
};
/// Call f(i) for i in [0, n) on `space`.
template <class ExecutionSpace, class F>
void for_each_element(char const* name, ExecutionSpace const& space, long n, F const& f) {
  if constexpr (lensing::detail::is_host_space_v<ExecutionSpace>) {
    long const blocks = (n + ElementBlocks<F>::block - 1) / ElementBlocks<F>::block;
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, blocks),
                         ElementBlocks<F>{f, n});
  } else {
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n), f);
  }
}
}  // namespace detail

//----------------------------------------------------------------------------
// Element-wise functions: value f(x) and derivative f'(x) (given y = f(x)).
// Trivially copyable, kernel-safe, no NaN from finite input.

/// ReLU: max(x, 0); f' = [x > 0].
struct ReluOp {
  template <class S>
  KOKKOS_INLINE_FUNCTION S value(S x) const {
    return x > S(0) ? x : S(0);
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION S derivative(S x, S) const {
    return x > S(0) ? S(1) : S(0);
  }
};
/// LeakyReLU: x for x > 0, slope·x otherwise (PyTorch default slope 0.01).
struct LeakyReluOp {
  double slope = 0.01;
  template <class S>
  KOKKOS_INLINE_FUNCTION S value(S x) const {
    return x > S(0) ? x : S(slope) * x;
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION S derivative(S x, S) const {
    return x > S(0) ? S(1) : S(slope);
  }
};
/// ELU (Clevert et al. 2015): x for x > 0, α(eˣ − 1) otherwise; f' = y + α for x <= 0.
struct EluOp {
  double alpha = 1.0;
  template <class S>
  KOKKOS_INLINE_FUNCTION S value(S x) const {
    // Both sides computed, then selected: GCC vectorises this form (a product
    // inside the select becomes a branch); expm1 of min(x, 0) cannot overflow.
    S const e = S(alpha) * lensing::math::expm1(x < S(0) ? x : S(0));
    return x > S(0) ? x : e;
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION S derivative(S x, S y) const {
    S const d = y + S(alpha);
    return x > S(0) ? S(1) : d;
  }
};
/// GELU, exact (Hendrycks & Gimpel 2016): x Φ(x), Φ(x) = ½(1 + erf(x/√2));
/// f' = Φ(x) + x φ(x).
struct GeluOp {
  template <class S>
  KOKKOS_INLINE_FUNCTION S value(S x) const {
    return S(0.5) * x * (S(1) + lensing::math::erf(x * S(0.70710678118654752440)));
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION S derivative(S x, S) const {
    S const cdf = S(0.5) * (S(1) + lensing::math::erf(x * S(0.70710678118654752440)));
    S const pdf = S(0.39894228040143267794) * lensing::math::exp(S(-0.5) * x * x);
    return cdf + x * pdf;
  }
};
/// tanh; f' = 1 − y².
struct TanhOp {
  template <class S>
  KOKKOS_INLINE_FUNCTION S value(S x) const {
    return lensing::math::tanh(x);
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION S derivative(S, S y) const {
    return S(1) - y * y;
  }
};
/// Logistic sigmoid 1/(1 + e⁻ˣ), evaluated without overflow; f' = y(1 − y).
struct SigmoidOp {
  template <class S>
  KOKKOS_INLINE_FUNCTION S value(S x) const {
    S const e = lensing::math::exp(-lensing::math::fabs(x));  // in (0, 1]
    S const r = S(1) / (S(1) + e);
    return x >= S(0) ? r : e * r;
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION S derivative(S, S y) const {
    return y * (S(1) - y);
  }
};
/// Softplus log(1 + eˣ) = max(x, 0) + log1p(e^{−|x|}); f' = sigmoid(x).
struct SoftplusOp {
  template <class S>
  KOKKOS_INLINE_FUNCTION S value(S x) const {
    return (x > S(0) ? x : S(0)) + lensing::math::log1p(lensing::math::exp(-lensing::math::fabs(x)));
  }
  template <class S>
  KOKKOS_INLINE_FUNCTION S derivative(S x, S) const {
    return SigmoidOp{}.value(x);
  }
};

/// Element-wise activation layer y = f(x) for an Op above (any shape).
/// Backward: dx = f'(x) ⊙ dy.  No parameters.
template <class Op, class Scalar, class MemorySpace>
class Activation : public LayerBase<Scalar, MemorySpace> {
 public:
  using typename LayerBase<Scalar, MemorySpace>::tensor_type;
  using typename LayerBase<Scalar, MemorySpace>::vector_type;
  explicit Activation(Op op = Op{}) : op_(op) {}
  Shape4 output_shape(Shape4 const& in) const {
    check_valid_shape(in, "lensing::nn::Activation");
    return in;
  }
  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::Activation::forward: inaccessible tensors");
    detail::check_forward(*this, x, y, "lensing::nn::Activation::forward");
    Op const op = op_;
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    detail::for_each_element(
        "lensing::nn::Activation::forward", space, long(x.size()), KOKKOS_LAMBDA(long i) { yp[i] = op.value(xp[i]); });
  }
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::Activation::backward: inaccessible tensors");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::Activation::backward");
    if (dx.data() == nullptr) return;
    Op const op = op_;
    Scalar const* xp = x.data();
    Scalar const* yp = y.data();
    Scalar const* dyp = dy.data();
    Scalar* dxp = dx.data();
    detail::for_each_element(
        "lensing::nn::Activation::backward", space, long(x.size()),
        KOKKOS_LAMBDA(long i) { dxp[i] = op.derivative(xp[i], yp[i]) * dyp[i]; });
  }

 private:
  Op op_;
};

template <class S, class M>
using ReLU = Activation<ReluOp, S, M>;
template <class S, class M>
using LeakyReLU = Activation<LeakyReluOp, S, M>;
template <class S, class M>
using ELU = Activation<EluOp, S, M>;
template <class S, class M>
using GELU = Activation<GeluOp, S, M>;
template <class S, class M>
using Tanh = Activation<TanhOp, S, M>;
template <class S, class M>
using Sigmoid = Activation<SigmoidOp, S, M>;
template <class S, class M>
using Softplus = Activation<SoftplusOp, S, M>;

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_ACTIVATION_HPP
