#ifndef LENSING_NN_CONV2D_HPP
#define LENSING_NN_CONV2D_HPP

#include <lensing/nn/detail/im2col.hpp>
#include <lensing/nn/detail/masked_rows.hpp>
#include <lensing/nn/gemm.hpp>
#include <lensing/nn/layer.hpp>

#include <algorithm>
#include <string>

namespace lensing {
namespace nn {

/// Geometry of a 2-D convolution or pooling window (PyTorch conventions).
struct Conv2DGeometry {
  int kh = 1, kw = 1;  ///< kernel height, width
  int sh = 1, sw = 1;  ///< stride
  int ph = 0, pw = 0;  ///< zero padding on each side
  int dh = 1, dw = 1;  ///< dilation
  /// Output extent for an input extent: floor((in + 2p - d(k-1) - 1)/s) + 1.
  static int out_extent(int in, int k, int s, int p, int d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }
  void check(char const* where) const {
    check_argument(kh >= 1 && kw >= 1 && sh >= 1 && sw >= 1 && ph >= 0 && pw >= 0 && dh >= 1 && dw >= 1, where,
                   "kernel, stride and dilation must be >= 1 and padding >= 0");
  }
  /// Output (h, w) for input (h, w); throws when the dilated kernel does not fit.
  void output_hw(int h, int w, int& oh, int& ow, char const* where) const {
    if (h + 2 * ph < dh * (kh - 1) + 1 || w + 2 * pw < dw * (kw - 1) + 1) {
      throw_invalid_argument(where, "input " + std::to_string(h) + "x" + std::to_string(w) +
                                        " (padded) is smaller than the dilated kernel " +
                                        std::to_string(dh * (kh - 1) + 1) + "x" + std::to_string(dw * (kw - 1) + 1));
    }
    oh = out_extent(h, kh, sh, ph, dh);
    ow = out_extent(w, kw, sw, pw, dw);
  }
};

namespace detail {
/// What Conv2D and ConvTranspose2D share around their arithmetic (CRTP on
/// the layer L): channels, geometry, initialisation, the forward/backward
/// checks and the choice between the host im2col path (L::forward_host,
/// L::backward_host, on the per-thread ConvWorkspace, re-prepared when the
/// input shape changes) and the direct kernels (L::forward_direct,
/// L::backward_direct; device spaces or `direct = true`).  L names itself in
/// L::forward_where and L::backward_where.
template <class L, class Scalar, class MemorySpace>
class ConvLayer : public LayerBase<Scalar, MemorySpace> {
  using base = LayerBase<Scalar, MemorySpace>;

 public:
  using typename base::tensor_type;
  using typename base::vector_type;
  using Dims = ConvDims;

  Conv2DGeometry const& geometry() const { return g_; }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::Conv2D/ConvTranspose2D::forward: the tensors are not accessible from this "
                  "execution space");
    L& self = static_cast<L&>(*this);
    check_forward(self, x, y, L::forward_where);
    if constexpr (lensing::detail::is_host_space_v<ExecutionSpace>) {
      if (!direct_) {
        ensure_prepared(shape_of(x));
        self.forward_host(space, x, y);
        return;
      }
    }
    self.forward_direct(space, x, y);
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::Conv2D/ConvTranspose2D::backward: the tensors are not accessible from this "
                  "execution space");
    L& self = static_cast<L&>(*this);
    check_backward(self, x, y, dy, dx, dparams, L::backward_where);
    if constexpr (lensing::detail::is_host_space_v<ExecutionSpace>) {
      if (!direct_) {
        ensure_prepared(shape_of(x));
        self.backward_host(space, x, dy, dx, dparams);
        return;
      }
    }
    self.backward_direct(space, x, dy, dx, dparams);
  }

  /// The convolution taking `in` (n, c, h, w) to `out` (n, o, oh, ow) with this geometry.
  Dims conv_dims(tensor_type const& in, tensor_type const& out) const {
    return shape_dims(shape_of(in), shape_of(out));
  }
  /// The same for tensors of shapes `in` and `out`.
  Dims shape_dims(Shape4 const& in, Shape4 const& out) const {
    return Dims{long(in.n), long(in.c), long(in.h), long(in.w), long(out.c), long(out.h), long(out.w), g_.kh,
                g_.kw,      g_.sh,      g_.sw,      g_.ph,      g_.pw,       g_.dh,       g_.dw};
  }

 protected:
  ConvLayer(int in_channels, int out_channels, Conv2DGeometry g, Init init, bool direct, char const* where)
      : cin_(in_channels), cout_(out_channels), g_(g), init_(init), direct_(direct) {
    check_count(in_channels, 1, where, "in_channels");
    check_count(out_channels, 1, where, "out_channels");
    g.check(where);
  }

  /// Throws unless `in` is a valid shape with C_in channels.
  void check_input(Shape4 const& in, char const* where) const {
    check_valid_shape(in, where);
    check_argument(
        in.c == cin_, where,
        "input " + in.str() + " has " + std::to_string(in.c) + " channels, expected " + std::to_string(cin_));
  }

  /// The nw weights (first in the parameters) from init_ with the given fans, then C_out zero biases.
  void initialize_weights(long nw, long fan_in, long fan_out, std::uint64_t seed) {
    nn::initialize(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(0L, nw))), init_, fan_in, fan_out,
                   seed);
    Kokkos::deep_copy(Kokkos::subview(this->params_, Kokkos::make_pair(nw, nw + cout_)), Scalar(0));
  }

  void ensure_prepared(Shape4 const& in) {
    if (ws_.stale(in)) static_cast<L&>(*this).prepare(in);
  }

  int cin_, cout_;
  Conv2DGeometry g_;
  Init init_;
  bool direct_;
  ConvWorkspace<Scalar, MemorySpace> ws_;
};
}  // namespace detail

/// 2-D convolution (cross-correlation, as PyTorch's nn.Conv2d, groups = 1).
///
/// y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q] x[n, c, i·s_h − p_h + p·d_h, j·s_w − p_w + q·d_w]
/// with zeros outside the image; output extent ⌊(H + 2p − d(k−1) − 1)/s⌋ + 1.
/// Parameters, flat: W (C_out, C_in, k_h, k_w) row-major then b (C_out).
///
/// Host: im2col + GEMM per sample (Y_n = W · col(x_n) + b; backward
/// dW = Σ_n dY_n col(x_n)ᵀ, dcol = Wᵀ dY_n scattered back by col2im; for
/// kernels with output rows of ⌈w/s⌉ values — 3x3 pad 1, 7x7 pad 3, at
/// stride 1 or 2 — the two GEMMs read col from shifted copies of x_n (or of
/// its phase planes) instead, detail::ShiftedPlanes, the same values without
/// forming it; a strided 1x1 kernel's col is x_n subsampled), the
/// samples of the batch split over the threads of the execution space, each
/// thread with its own col buffer and its own partial dW (summed after).
/// Device spaces (or `direct = true`): direct convolution kernels.
/// Initialised He-normal with fan_in = C_in k_h k_w, bias zero.
template <class Scalar, class MemorySpace>
class Conv2D : public detail::ConvLayer<Conv2D<Scalar, MemorySpace>, Scalar, MemorySpace> {
  using base = detail::ConvLayer<Conv2D<Scalar, MemorySpace>, Scalar, MemorySpace>;
  using base::cin_;
  using base::cout_;
  using base::g_;
  using base::ws_;

 public:
  using typename base::Dims;
  using typename base::tensor_type;
  using typename base::vector_type;
  static constexpr char const* forward_where = "lensing::nn::Conv2D::forward";
  static constexpr char const* backward_where = "lensing::nn::Conv2D::backward";

  Conv2D(int in_channels, int out_channels, Conv2DGeometry g, Init init = Init::he_normal, bool direct = false)
      : base(in_channels, out_channels, g, init, direct, "lensing::nn::Conv2D") {
    this->params_ = vector_type("lensing::nn::Conv2D::params", static_cast<long>(cout_) * ksize() + cout_);
  }
  /// Square kernel k, stride s, padding p, dilation d.
  Conv2D(int in_channels, int out_channels, int k, int s = 1, int p = 0, int d = 1, Init init = Init::he_normal)
      : Conv2D(in_channels, out_channels, Conv2DGeometry{k, k, s, s, p, p, d, d}, init) {}

  long ksize() const { return static_cast<long>(cin_) * g_.kh * g_.kw; }

  Shape4 output_shape(Shape4 const& in) const {
    char const* where = "lensing::nn::Conv2D";
    this->check_input(in, where);
    int oh, ow;
    g_.output_hw(in.h, in.w, oh, ow, where);
    return Shape4{in.n, cout_, oh, ow};
  }

  void initialize(std::uint64_t seed) {
    this->initialize_weights(static_cast<long>(cout_) * ksize(), ksize(), static_cast<long>(cout_) * g_.kh * g_.kw,
                             seed);
  }

  void prepare(Shape4 const& in) {
    Shape4 const out = output_shape(in);
    Dims const d = this->shape_dims(in, out);
    // Host, "same" convolutions (stride 1 or 2): the GEMMs read col from
    // shifted copies of x in the col buffer (detail::ShiftedPlanes) instead of im2col's col.
    planes_ = detail::has_offset_rows_gemm && !d.pointwise() && detail::ShiftedPlanes::applies(d);
    if (planes_) plane_offsets_ = detail::ShiftedPlanes::offset_view(d, "lensing::nn::Conv2D::plane_offsets");
    ws_.prepare(in, col_size(d), this->num_params(), "lensing::nn::Conv2D::col", "lensing::nn::Conv2D::partial");
  }

  //--------------------------------------------------------------------------
  // Implementation (public for the device lambdas).

  Dims dims(tensor_type const& x, tensor_type const& y) const { return this->conv_dims(x, y); }

  template <class ExecutionSpace>
  void forward_host(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) const {
    Dims const d = dims(x, y);
    long const k = ksize(), p = d.oh * d.ow, o = d.o;
    bool const one = d.pointwise();
    Scalar const* w = this->params_.data();
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    bool const planes = planes_;
    long const* offsets = plane_offsets_.data();
    ws_.for_each_sample(space, "lensing::nn::Conv2D::forward", d.n, col_size(d), 0, [=](long n, Scalar* col, Scalar*) {
      Scalar* yn = yp + n * o * p;
      for (long oc = 0; oc < o; ++oc)
        for (long i = 0; i < p; ++i)
          yn[oc * p + i] = w[o * k + oc];
      Scalar const* cn = xp + n * d.c * d.h * d.w;  // 1x1: x_n is its col
      if (planes) {
        detail::ShiftedPlanes::fill(d, cn, col);
        detail::gemm_host_offset_rows(false, o, p, k, w, k, static_cast<Scalar const*>(col), offsets, yn, p);
        return;
      }
      if (!one) {
        detail::im2col_masked(d, cn, col);
        cn = col;
      }
      detail::gemm_host(false, false, o, p, k, Scalar(1), w, k, cn, p, Scalar(1), yn, p);
    });
  }

  template <class ExecutionSpace>
  void backward_host(ExecutionSpace const& space, tensor_type const& x, tensor_type const& dy, tensor_type const& dx,
                     vector_type const& dparams) const {
    Dims const d = dims(x, dy);
    long const k = ksize(), p = d.oh * d.ow, o = d.o, np = this->num_params();
    bool const one = d.pointwise();
    Scalar const* w = this->params_.data();
    Scalar const* xp = x.data();
    Scalar const* dyp = dy.data();
    Scalar* dxp = dx.data();
    bool const planes = planes_;
    long const* offsets = plane_offsets_.data();
    long const chunks = ws_.for_each_sample(
        space, "lensing::nn::Conv2D::backward", d.n, col_size(d), np, [=](long n, Scalar* col, Scalar* g) {
          Scalar const* xn = xp + n * d.c * d.h * d.w;
          Scalar const* dyn = dyp + n * o * p;
          Scalar const* cn = xn;
          if (planes) {
            // dW from the shifted copies; dcol below overwrites them.
            detail::ShiftedPlanes::fill(d, xn, col);
            detail::gemm_host_offset_rows(true, o, p, k, dyn, p, static_cast<Scalar const*>(col), offsets, g, k);
          } else {
            if (!one) {
              detail::im2col_masked(d, xn, col);
              cn = col;
            }
            detail::gemm_host(false, true, o, k, p, Scalar(1), dyn, p, cn, p, Scalar(1), g, k);
          }
          detail::add_channel_sums(dyn, o, p, g + o * k);
          if (dxp == nullptr) return;
          Scalar* dxn = dxp + n * d.c * d.h * d.w;
          if (one) {
            detail::gemm_host(true, false, k, p, o, Scalar(1), w, k, dyn, p, Scalar(0), dxn, p);
          } else {
            detail::gemm_host(true, false, k, p, o, Scalar(1), w, k, dyn, p, Scalar(0), col, p);
            detail::col2im_masked(d, col, dxn);
          }
        });
    ws_.reduce(space, "lensing::nn::Conv2D::reduce_partials", chunks, np, dparams.data());
  }

  template <class ExecutionSpace>
  void forward_direct(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) const {
    Dims const d = dims(x, y);
    Scalar const* w = this->params_.data();
    detail::conv_direct(space, "lensing::nn::Conv2D::forward_direct", d, w, w + d.o * ksize(), x.data(), y.data());
  }

  template <class ExecutionSpace>
  void backward_direct(ExecutionSpace const& space, tensor_type const& x, tensor_type const& dy, tensor_type const& dx,
                       vector_type const& dparams) const {
    Dims const d = dims(x, dy);
    Scalar const* w = this->params_.data();
    Scalar* gp = dparams.data();
    detail::conv_weight_grad_direct(space, "lensing::nn::Conv2D::backward_weights_direct", d, x.data(), dy.data(), gp);
    detail::channel_sums(space, "lensing::nn::Conv2D::backward_bias_direct", dy.data(), d.n, d.o, d.oh * d.ow,
                         gp + d.o * ksize());
    if (dx.data() != nullptr)
      detail::conv_adjoint_direct(space, "lensing::nn::Conv2D::backward_input_direct", d, w,
                                  static_cast<Scalar const*>(nullptr), dy.data(), dx.data());
  }

 private:
  // Per-thread col buffer: im2col's col, or the shifted copies, whichever is larger.
  long col_size(Dims const& d) const {
    long const cols = ksize() * d.oh * d.ow;
    return planes_ ? std::max(cols, detail::ShiftedPlanes::size(d)) : cols;
  }
  bool planes_ = false;
  // ShiftedPlanes::offsets of the prepared shape.
  Kokkos::View<long*, Kokkos::HostSpace> plane_offsets_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_CONV2D_HPP
