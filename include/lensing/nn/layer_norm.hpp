#ifndef LENSING_NN_LAYER_NORM_HPP
#define LENSING_NN_LAYER_NORM_HPP

#include <lensing/core/math.hpp>
#include <lensing/nn/layer.hpp>

namespace lensing {
namespace nn {

/// Layer normalisation over the features of each sample (Ba, Kiros & Hinton
/// 2016, arXiv:1607.06450), PyTorch's nn.LayerNorm([C, H, W]) conventions.
///
/// For sample n with D = C·H·W values: μ_n, σ²_n = mean and biased variance
/// of x[n, :, :, :]; x̂ = (x − μ_n)/√(σ²_n + ε); y = γ ⊙ x̂ + β, with γ, β of
/// the per-sample shape (C, H, W) (element-wise affine).  The same in training
/// and inference (no running statistics, no state).  Parameters, flat: γ (D)
/// then β (D), initialised 1 and 0.  Backward, g = γ ⊙ dy:
/// dx = (D g − Σ g − x̂ Σ g x̂)/(D √(σ²+ε)) per sample, dγ = Σ_n dy x̂,
/// dβ = Σ_n dy.  Sums run in double.  D = 1 gives y = β (x̂ = 0).
template <class Scalar, class MemorySpace>
class LayerNorm : public LayerBase<Scalar, MemorySpace> {
 public:
  using typename LayerBase<Scalar, MemorySpace>::tensor_type;
  using typename LayerBase<Scalar, MemorySpace>::vector_type;

  /// Normalise per-sample tensors of shape (c, h, w); eps > 0.
  LayerNorm(int c, int h, int w, double eps = 1e-5) : c_(c), h_(h), w_(w), eps_(eps) {
    char const* where = "lensing::nn::LayerNorm";
    check_count(c, 1, where, "c");
    check_count(h, 1, where, "h");
    check_count(w, 1, where, "w");
    check_positive(eps, where, "eps");
    this->params_ = vector_type("lensing::nn::LayerNorm::params", 2 * features());
    initialize(0);
  }
  /// Normalise feature vectors (N, features, 1, 1) (ε = 1e-5; LayerNorm(F, 1, 1, eps) for another ε).
  explicit LayerNorm(int features) : LayerNorm(features, 1, 1) {}

  /// Values per sample, D = C·H·W.
  long features() const { return long(c_) * h_ * w_; }

  Shape4 output_shape(Shape4 const& in) const {
    char const* where = "lensing::nn::LayerNorm";
    check_valid_shape(in, where);
    Shape4 const want{in.n, c_, h_, w_};
    check_argument(in == want, where,
                   "input " + in.str() + " does not have the normalised per-sample shape (" + std::to_string(c_) +
                       ", " + std::to_string(h_) + ", " + std::to_string(w_) + ")");
    return in;
  }
  void initialize(std::uint64_t) {
    long const d = features();
    Kokkos::deep_copy(Kokkos::subview(this->params_, Kokkos::make_pair(0L, d)), Scalar(1));
    Kokkos::deep_copy(Kokkos::subview(this->params_, Kokkos::make_pair(d, 2 * d)), Scalar(0));
  }
  void prepare(Shape4 const& in) {
    output_shape(in);
    if (long(stats_.extent(0)) < 2L * in.n) stats_ = vector_type("lensing::nn::LayerNorm::stats", 2L * in.n);
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::LayerNorm::forward: inaccessible tensors");
    detail::check_forward(*this, x, y, "lensing::nn::LayerNorm::forward");
    prepare(shape_of(x));
    long const n = long(x.extent(0)), d = features();
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    Scalar const* g = this->params_.data();
    Scalar* ws = stats_.data();
    Scalar const eps = Scalar(eps_);
    Kokkos::parallel_for(
        "lensing::nn::LayerNorm::forward", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n),
        KOKKOS_LAMBDA(long b) {
          Scalar const* xb = xp + b * d;
          double s = 0;
          LENSING_NN_SIMD_SUM(s)
          for (long i = 0; i < d; ++i)
            s += double(xb[i]);
          Scalar const mean = Scalar(s / double(d));
          double v = 0;
          LENSING_NN_SIMD_SUM(v)
          for (long i = 0; i < d; ++i) {
            double const e = double(xb[i] - mean);
            v += e * e;
          }
          Scalar const inv = Scalar(1) / lensing::math::sqrt(Scalar(v / double(d)) + eps);
          ws[2 * b] = mean;
          ws[2 * b + 1] = inv;
          Scalar* yb = yp + b * d;
          for (long i = 0; i < d; ++i)
            yb[i] = g[i] * ((xb[i] - mean) * inv) + g[d + i];
        });
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::LayerNorm::backward: inaccessible tensors");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::LayerNorm::backward");
    long const n = long(x.extent(0)), d = features();
    Scalar const* xp = x.data();
    Scalar const* dyp = dy.data();
    Scalar* dxp = dx.data();
    Scalar const* g = this->params_.data();
    Scalar* dg = dparams.data();
    Scalar const* ws = stats_.data();
    Kokkos::parallel_for(
        "lensing::nn::LayerNorm::backward_params",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, d), KOKKOS_LAMBDA(long i) {
          double sg = 0, sb = 0;
          for (long b = 0; b < n; ++b) {
            Scalar const e = dyp[b * d + i];
            sg += double(e * ((xp[b * d + i] - ws[2 * b]) * ws[2 * b + 1]));
            sb += double(e);
          }
          dg[i] = Scalar(sg);
          dg[d + i] = Scalar(sb);
        });
    if (dxp == nullptr) return;
    Kokkos::parallel_for(
        "lensing::nn::LayerNorm::backward_input",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n), KOKKOS_LAMBDA(long b) {
          Scalar const mean = ws[2 * b], inv = ws[2 * b + 1];
          Scalar const* xb = xp + b * d;
          Scalar const* db = dyp + b * d;
          double s0 = 0, s1 = 0;
          LENSING_NN_SIMD_SUM(s0)
          for (long i = 0; i < d; ++i)
            s0 += double(g[i] * db[i]);
          LENSING_NN_SIMD_SUM(s1)
          for (long i = 0; i < d; ++i)
            s1 += double(g[i] * db[i] * ((xb[i] - mean) * inv));
          Scalar const k0 = Scalar(s0 / double(d)), k1 = Scalar(s1 / double(d));
          Scalar* dxb = dxp + b * d;
          for (long i = 0; i < d; ++i)
            dxb[i] = inv * (g[i] * db[i] - k0 - (xb[i] - mean) * inv * k1);
        });
  }

 private:
  int c_, h_, w_;
  double eps_;
  vector_type stats_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_LAYER_NORM_HPP
