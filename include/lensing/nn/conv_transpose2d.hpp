#ifndef LENSING_NN_CONV_TRANSPOSE2D_HPP
#define LENSING_NN_CONV_TRANSPOSE2D_HPP

#include <lensing/nn/conv2d.hpp>

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
class ConvTranspose2D : public LayerBase<Scalar, MemorySpace> {
  using base = LayerBase<Scalar, MemorySpace>;
  using conv = Conv2D<Scalar, MemorySpace>;

 public:
  using typename base::tensor_type;
  using typename base::vector_type;
  using Dims = typename conv::Dims;

  ConvTranspose2D(int in_channels, int out_channels, Conv2DGeometry g, int output_padding_h = 0,
                  int output_padding_w = 0, Init init = Init::he_normal, bool direct = false)
      : cin_(in_channels),
        cout_(out_channels),
        g_(g),
        oph_(output_padding_h),
        opw_(output_padding_w),
        init_(init),
        direct_(direct) {
    char const* where = "lensing::nn::ConvTranspose2D";
    check_count(in_channels, 1, where, "in_channels");
    check_count(out_channels, 1, where, "out_channels");
    g.check(where);
    check_argument(oph_ >= 0 && opw_ >= 0 && oph_ < std::max(g.sh, g.dh) && opw_ < std::max(g.sw, g.dw), where,
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
    check_valid_shape(in, where);
    check_argument(
        in.c == cin_, where,
        "input " + in.str() + " has " + std::to_string(in.c) + " channels, expected " + std::to_string(cin_));
    int const oh = (in.h - 1) * g_.sh - 2 * g_.ph + g_.dh * (g_.kh - 1) + oph_ + 1;
    int const ow = (in.w - 1) * g_.sw - 2 * g_.pw + g_.dw * (g_.kw - 1) + opw_ + 1;
    check_argument(oh >= 1 && ow >= 1, where, "input " + in.str() + " gives an empty output (padding too large)");
    return Shape4{in.n, cout_, oh, ow};
  }

  void initialize(std::uint64_t seed) {
    long const nw = long(cin_) * ksize();
    nn::initialize(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(0L, nw))), init_, ksize(),
                   long(cin_) * g_.kh * g_.kw, seed);
    Kokkos::deep_copy(Kokkos::subview(this->params_, Kokkos::make_pair(nw, nw + cout_)), Scalar(0));
  }

  void prepare(Shape4 const& in) {
    Shape4 const out = output_shape(in);
    prepared_ = in;
    if constexpr (std::is_same<MemorySpace, Kokkos::HostSpace>::value) {
      long const chunks = std::max(1, std::min(in.n, Kokkos::DefaultHostExecutionSpace().concurrency()));
      long const p = long(in.h) * in.w;
      if (long(col_.extent(0)) < chunks * ksize() * p)
        col_ = vector_type(Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::nn::ConvTranspose2D::col"),
                           chunks * ksize() * p);
      if (long(partial_.extent(0)) < chunks * this->num_params())
        partial_ = vector_type(Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::nn::ConvTranspose2D::partial"),
                               chunks * this->num_params());
      chunks_ = chunks;
    }
    (void)out;
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::ConvTranspose2D::forward: the tensors are not accessible from this execution space");
    detail::check_forward(*this, x, y, "lensing::nn::ConvTranspose2D::forward");
    if constexpr (lensing::detail::is_host_space_v<ExecutionSpace>) {
      if (!direct_) {
        ensure_prepared(shape_of(x));
        forward_host(space, x, y);
        return;
      }
    }
    forward_direct(space, x, y);
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::ConvTranspose2D::backward: the tensors are not accessible from this execution space");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::ConvTranspose2D::backward");
    if constexpr (lensing::detail::is_host_space_v<ExecutionSpace>) {
      if (!direct_) {
        ensure_prepared(shape_of(x));
        backward_host(space, x, dy, dx, dparams);
        return;
      }
    }
    backward_direct(space, x, dy, dx, dparams);
  }

  //--------------------------------------------------------------------------
  // Implementation (public for the device lambdas).  Dims describe the
  // equivalent Conv2D: its input is our output (c, h, w) = (C_out, H_out,
  // W_out), its output our input (o, oh, ow) = (C_in, H, W).
  Dims dims(tensor_type const& x, tensor_type const& y) const {
    return Dims{long(x.extent(0)),
                long(y.extent(1)),
                long(y.extent(2)),
                long(y.extent(3)),
                long(x.extent(1)),
                long(x.extent(2)),
                long(x.extent(3)),
                g_.kh,
                g_.kw,
                g_.sh,
                g_.sw,
                g_.ph,
                g_.pw,
                g_.dh,
                g_.dw};
  }

  template <class ExecutionSpace>
  void forward_host(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) const {
    Dims const d = dims(x, y);
    long const k = ksize(), p = d.oh * d.ow, chunks = std::min<long>({chunks_, d.n, long(space.concurrency())});
    long const hw = d.h * d.w;
    Scalar const* w = this->params_.data();
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    Scalar* colb = col_.data();
    Kokkos::parallel_for(
        "lensing::nn::ConvTranspose2D::forward", Kokkos::RangePolicy<ExecutionSpace>(space, 0, chunks), [=](long t) {
          Scalar* col = colb + t * k * p;
          for (long n = d.n * t / chunks; n < d.n * (t + 1) / chunks; ++n) {
            Scalar* yn = yp + n * d.c * hw;
            detail::gemm_host(true, false, k, p, d.o, Scalar(1), w, k, xp + n * d.o * p, p, Scalar(0), col, p);
            conv::col2im(d, col, yn);
            for (long c = 0; c < d.c; ++c) {
              Scalar const b = w[d.o * k + c];
              for (long i = 0; i < hw; ++i)
                yn[c * hw + i] += b;
            }
          }
        });
    space.fence();
  }

  template <class ExecutionSpace>
  void backward_host(ExecutionSpace const& space, tensor_type const& x, tensor_type const& dy, tensor_type const& dx,
                     vector_type const& dparams) const {
    Dims const d = dims(x, dy);
    long const k = ksize(), p = d.oh * d.ow, np = this->num_params(), hw = d.h * d.w;
    long const chunks = std::min<long>({chunks_, d.n, long(space.concurrency())});
    Scalar const* w = this->params_.data();
    Scalar const* xp = x.data();
    Scalar const* dyp = dy.data();
    Scalar* dxp = dx.data();
    Scalar* colb = col_.data();
    Scalar* part = partial_.data();
    Kokkos::parallel_for(
        "lensing::nn::ConvTranspose2D::backward", Kokkos::RangePolicy<ExecutionSpace>(space, 0, chunks), [=](long t) {
          Scalar* col = colb + t * k * p;
          Scalar* g = part + t * np;
          for (long i = 0; i < np; ++i)
            g[i] = Scalar(0);
          for (long n = d.n * t / chunks; n < d.n * (t + 1) / chunks; ++n) {
            Scalar const* dyn = dyp + n * d.c * hw;
            Scalar const* xn = xp + n * d.o * p;
            conv::im2col(d, dyn, col);
            detail::gemm_host(false, true, d.o, k, p, Scalar(1), xn, p, col, p, Scalar(1), g, k);
            for (long c = 0; c < d.c; ++c) {
              Scalar s = Scalar(0);
              for (long i = 0; i < hw; ++i)
                s += dyn[c * hw + i];
              g[d.o * k + c] += s;
            }
            if (dxp != nullptr)
              detail::gemm_host(false, false, d.o, p, k, Scalar(1), w, k, col, p, Scalar(0), dxp + n * d.o * p, p);
          }
        });
    space.fence();
    Scalar* gp = dparams.data();
    Kokkos::parallel_for("lensing::nn::ConvTranspose2D::reduce_partials",
                         Kokkos::RangePolicy<ExecutionSpace>(space, 0, np), [=](long i) {
                           Scalar s = Scalar(0);
                           for (long t = 0; t < chunks; ++t)
                             s += part[t * np + i];
                           gp[i] = s;
                         });
    space.fence();
  }

  template <class ExecutionSpace>
  void forward_direct(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) const {
    Dims const d = dims(x, y);
    long const k = ksize();
    Scalar const* w = this->params_.data();
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    long const total = d.n * d.c * d.h * d.w;
    Kokkos::parallel_for(
        "lensing::nn::ConvTranspose2D::forward_direct",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, total), KOKKOS_LAMBDA(long idx) {
          long const iw = idx % d.w, ih = (idx / d.w) % d.h, c = (idx / (d.w * d.h)) % d.c, n = idx / (d.w * d.h * d.c);
          Scalar s = w[d.o * k + c];
          for (long ki = 0; ki < d.kh; ++ki) {
            long const ti = ih + d.ph - ki * d.dh;
            if (ti < 0 || ti % d.sh != 0 || ti / d.sh >= d.oh) continue;
            long const i = ti / d.sh;
            for (long kj = 0; kj < d.kw; ++kj) {
              long const tj = iw + d.pw - kj * d.dw;
              if (tj < 0 || tj % d.sw != 0 || tj / d.sw >= d.ow) continue;
              long const j = tj / d.sw;
              for (long o = 0; o < d.o; ++o)
                s += w[((o * d.c + c) * d.kh + ki) * d.kw + kj] * xp[((n * d.o + o) * d.oh + i) * d.ow + j];
            }
          }
          yp[idx] = s;
        });
  }

  template <class ExecutionSpace>
  void backward_direct(ExecutionSpace const& space, tensor_type const& x, tensor_type const& dy, tensor_type const& dx,
                       vector_type const& dparams) const {
    Dims const d = dims(x, dy);
    long const k = ksize(), np = this->num_params();
    Scalar const* w = this->params_.data();
    Scalar const* xp = x.data();
    Scalar const* dyp = dy.data();
    Scalar* gp = dparams.data();
    Kokkos::parallel_for(
        "lensing::nn::ConvTranspose2D::backward_params_direct",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, np), KOKKOS_LAMBDA(long idx) {
          Scalar s = Scalar(0);
          if (idx >= d.o * k) {
            long const c = idx - d.o * k;
            for (long n = 0; n < d.n; ++n)
              for (long q = 0; q < d.h * d.w; ++q)
                s += dyp[(n * d.c + c) * d.h * d.w + q];
          } else {
            long const kj = idx % d.kw, ki = (idx / d.kw) % d.kh, c = (idx / (d.kw * d.kh)) % d.c, o = idx / k;
            for (long n = 0; n < d.n; ++n)
              for (long i = 0; i < d.oh; ++i) {
                long const ih = i * d.sh - d.ph + ki * d.dh;
                if (ih < 0 || ih >= d.h) continue;
                for (long j = 0; j < d.ow; ++j) {
                  long const iw = j * d.sw - d.pw + kj * d.dw;
                  if (iw < 0 || iw >= d.w) continue;
                  s += xp[((n * d.o + o) * d.oh + i) * d.ow + j] * dyp[((n * d.c + c) * d.h + ih) * d.w + iw];
                }
              }
          }
          gp[idx] = s;
        });
    if (dx.data() == nullptr) return;
    Scalar* dxp = dx.data();
    long const total = d.n * d.o * d.oh * d.ow;
    Kokkos::parallel_for(
        "lensing::nn::ConvTranspose2D::backward_input_direct",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, total), KOKKOS_LAMBDA(long idx) {
          long const j = idx % d.ow, i = (idx / d.ow) % d.oh, o = (idx / (d.ow * d.oh)) % d.o,
                     n = idx / (d.ow * d.oh * d.o);
          Scalar s = Scalar(0);
          for (long c = 0; c < d.c; ++c)
            for (long ki = 0; ki < d.kh; ++ki) {
              long const ih = i * d.sh - d.ph + ki * d.dh;
              if (ih < 0 || ih >= d.h) continue;
              for (long kj = 0; kj < d.kw; ++kj) {
                long const iw = j * d.sw - d.pw + kj * d.dw;
                if (iw < 0 || iw >= d.w) continue;
                s += w[((o * d.c + c) * d.kh + ki) * d.kw + kj] * dyp[((n * d.c + c) * d.h + ih) * d.w + iw];
              }
            }
          dxp[idx] = s;
        });
  }

 private:
  void ensure_prepared(Shape4 const& in) {
    long const chunks = std::min(in.n, Kokkos::DefaultHostExecutionSpace().concurrency());
    if (in != prepared_ || chunks > chunks_) prepare(in);
  }

  int cin_, cout_;
  Conv2DGeometry g_;
  int oph_, opw_;
  Init init_;
  bool direct_;
  Shape4 prepared_{};
  long chunks_ = 0;
  vector_type col_, partial_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_CONV_TRANSPOSE2D_HPP
