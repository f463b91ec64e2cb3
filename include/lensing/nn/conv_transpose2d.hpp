#ifndef LENSING_NN_CONV_TRANSPOSE2D_HPP
#define LENSING_NN_CONV_TRANSPOSE2D_HPP

#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/detail/im2col.hpp>

namespace lensing {
namespace nn {

/// 2-D transposed convolution (PyTorch's nn.ConvTranspose2d, groups = 1):
/// the adjoint of Conv2D with the same geometry, plus a bias.
///
/// y[n,o,i,j] = b[o] + Σ_{c,p,q,i',j'} W[c,o,p,q] x[n,c,i',j'] over i = i'·s_h − p_h + p·d_h,
/// j = j'·s_w − p_w + q·d_w; output extent H_out = (H−1)s − 2p + d(k−1) + op + 1
/// with the output padding op < max(s, d).  Parameters, flat: W (C_in, C_out,
/// k_h, k_w) row-major (PyTorch's layout) then b (C_out).  With C the Conv2D
/// from C_out to C_in channels whose weights are W (same memory), y = Cᵀx + b,
/// so forward = col2im(Wᵀ x_n) and backward dx = C dy = W · im2col(dy_n),
/// dW = Σ_n x_n im2col(dy_n)ᵀ, db = Σ dy.  Host: im2col/col2im + Eigen GEMM
/// with the batch split over threads (as Conv2D); device or `direct`: direct
/// kernels.  Initialised He-normal with fan_in = C_out k_h k_w (the fan PyTorch
/// computes for this weight layout), bias 0.
template <class Scalar, class MemorySpace>
class ConvTranspose2D : public detail::ConvLayer<ConvTranspose2D<Scalar, MemorySpace>, Scalar, MemorySpace> {
  using base = detail::ConvLayer<ConvTranspose2D<Scalar, MemorySpace>, Scalar, MemorySpace>;
  using base::cin_;
  using base::cout_;
  using base::g_;
  using base::ws_;

 public:
  using typename base::Dims;
  using typename base::tensor_type;
  using typename base::vector_type;
  static constexpr char const* forward_where = "lensing::nn::ConvTranspose2D::forward";
  static constexpr char const* backward_where = "lensing::nn::ConvTranspose2D::backward";

  ConvTranspose2D(int in_channels, int out_channels, Conv2DGeometry g, int output_padding_h = 0,
                  int output_padding_w = 0, Init init = Init::he_normal, bool direct = false)
      : base(in_channels, out_channels, g, init, direct, "lensing::nn::ConvTranspose2D"),
        oph_(output_padding_h),
        opw_(output_padding_w) {
    check_argument(oph_ >= 0 && opw_ >= 0 && oph_ < std::max(g.sh, g.dh) && opw_ < std::max(g.sw, g.dw),
                   "lensing::nn::ConvTranspose2D",
                   "output padding must be >= 0 and smaller than the stride or the dilation");
    this->params_ = vector_type("lensing::nn::ConvTranspose2D::params", long(cin_) * ksize() + cout_);
  }
  /// Square kernel k, stride s, padding p, output padding op.
  ConvTranspose2D(int in_channels, int out_channels, int k, int s = 1, int p = 0, int op = 0)
      : ConvTranspose2D(in_channels, out_channels, Conv2DGeometry{k, k, s, s, p, p, 1, 1}, op, op) {}

  /// Elements of W per input channel: C_out k_h k_w.
  long ksize() const { return long(cout_) * g_.kh * g_.kw; }

  Shape4 output_shape(Shape4 const& in) const {
    char const* where = "lensing::nn::ConvTranspose2D";
    this->check_input(in, where);
    int const oh = (in.h - 1) * g_.sh - 2 * g_.ph + g_.dh * (g_.kh - 1) + oph_ + 1;
    int const ow = (in.w - 1) * g_.sw - 2 * g_.pw + g_.dw * (g_.kw - 1) + opw_ + 1;
    check_argument(oh >= 1 && ow >= 1, where, "input " + in.str() + " gives an empty output (padding too large)");
    return Shape4{in.n, cout_, oh, ow};
  }

  void initialize(std::uint64_t seed) {
    this->initialize_weights(long(cin_) * ksize(), ksize(), long(cin_) * g_.kh * g_.kw, seed);
  }

  void prepare(Shape4 const& in) {
    output_shape(in);
    ws_.prepare(in, ksize() * in.h * in.w, this->num_params(), "lensing::nn::ConvTranspose2D::col",
                "lensing::nn::ConvTranspose2D::partial");
  }

  //--------------------------------------------------------------------------
  // Implementation (public for the device lambdas).  Dims describe the
  // equivalent Conv2D: its input is our output (c, h, w) = (C_out, H_out,
  // W_out), its output our input (o, oh, ow) = (C_in, H, W).
  Dims dims(tensor_type const& x, tensor_type const& y) const { return this->conv_dims(y, x); }

  template <class ExecutionSpace>
  void forward_host(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) const {
    Dims const d = dims(x, y);
    long const k = ksize(), p = d.oh * d.ow, hw = d.h * d.w;
    Scalar const* w = this->params_.data();
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    ws_.for_each_sample(
        space, "lensing::nn::ConvTranspose2D::forward", d.n, k * p, 0, [=](long n, Scalar* col, Scalar*) {
          Scalar* yn = yp + n * d.c * hw;
          detail::gemm_host(true, false, k, p, d.o, Scalar(1), w, k, xp + n * d.o * p, p, Scalar(0), col, p);
          detail::col2im(d, col, yn);
          for (long c = 0; c < d.c; ++c) {
            Scalar const b = w[d.o * k + c];
            for (long i = 0; i < hw; ++i)
              yn[c * hw + i] += b;
          }
        });
  }

  template <class ExecutionSpace>
  void backward_host(ExecutionSpace const& space, tensor_type const& x, tensor_type const& dy, tensor_type const& dx,
                     vector_type const& dparams) const {
    Dims const d = dims(x, dy);
    long const k = ksize(), p = d.oh * d.ow, np = this->num_params(), hw = d.h * d.w;
    Scalar const* w = this->params_.data();
    Scalar const* xp = x.data();
    Scalar const* dyp = dy.data();
    Scalar* dxp = dx.data();
    long const chunks = ws_.for_each_sample(
        space, "lensing::nn::ConvTranspose2D::backward", d.n, k * p, np, [=](long n, Scalar* col, Scalar* g) {
          Scalar const* dyn = dyp + n * d.c * hw;
          detail::im2col(d, dyn, col);
          detail::gemm_host(false, true, d.o, k, p, Scalar(1), xp + n * d.o * p, p, col, p, Scalar(1), g, k);
          detail::add_channel_sums(dyn, d.c, hw, g + d.o * k);
          if (dxp != nullptr)
            detail::gemm_host(false, false, d.o, p, k, Scalar(1), w, k, col, p, Scalar(0), dxp + n * d.o * p, p);
        });
    ws_.reduce(space, "lensing::nn::ConvTranspose2D::reduce_partials", chunks, np, dparams.data());
  }

  template <class ExecutionSpace>
  void forward_direct(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) const {
    Dims const d = dims(x, y);
    Scalar const* w = this->params_.data();
    detail::conv_adjoint_direct(space, "lensing::nn::ConvTranspose2D::forward_direct", d, w, w + d.o * ksize(),
                                x.data(), y.data());
  }

  template <class ExecutionSpace>
  void backward_direct(ExecutionSpace const& space, tensor_type const& x, tensor_type const& dy, tensor_type const& dx,
                       vector_type const& dparams) const {
    Dims const d = dims(x, dy);
    Scalar const* w = this->params_.data();
    Scalar* gp = dparams.data();
    detail::conv_weight_grad_direct(space, "lensing::nn::ConvTranspose2D::backward_weights_direct", d, dy.data(),
                                    x.data(), gp);
    detail::channel_sums(space, "lensing::nn::ConvTranspose2D::backward_bias_direct", dy.data(), d.n, d.c, d.h * d.w,
                         gp + d.o * ksize());
    if (dx.data() != nullptr)
      detail::conv_direct(space, "lensing::nn::ConvTranspose2D::backward_input_direct", d, w,
                          static_cast<Scalar const*>(nullptr), dy.data(), dx.data());
  }

 private:
  int oph_, opw_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_CONV_TRANSPOSE2D_HPP
