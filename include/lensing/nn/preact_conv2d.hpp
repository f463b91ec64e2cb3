#ifndef LENSING_NN_PREACT_CONV2D_HPP
#define LENSING_NN_PREACT_CONV2D_HPP

#include <lensing/nn/activation.hpp>
#include <lensing/nn/batchnorm.hpp>
#include <lensing/nn/conv2d.hpp>

#include <algorithm>
#include <string>
#include <type_traits>

namespace lensing {
namespace nn {

/// Pre-activated convolution y = Conv2D(ELU(BatchNorm(x))) as one layer: the
/// three layers of a pre-activated residual branch (He et al. 2016,
/// arXiv:1603.05027) with the normalisation and the activation fused into
/// the convolution's input pass.
///
/// Same function, parameters and state as Sequential(BatchNorm(C_in),
/// ELU(α), Conv2D(C_in, C_out, g)): parameters, flat, γ (C_in), β (C_in),
/// then W (C_out, C_in, k_h, k_w) and b (C_out); state the running mean and
/// variance (C_in).  BatchNorm's conventions (batch statistics in training,
/// running statistics in inference, momentum 0.1, ε 1e-5) and Conv2D's
/// geometry and initialisation (He-normal W, zero b; γ = 1, β = 0).
///
/// Host spaces: the batch statistics are one read pass over x (BatchNorm's
/// own arithmetic); then per sample, on the thread that runs it, z =
/// ELU(a x + b') (a = γ/√(σ²+ε), b' = β − a μ, as BatchNorm computes it) goes
/// into a per-thread buffer, from which im2col (or, for a 1x1 unit-stride
/// kernel, the GEMM directly) reads; neither the normalised x nor z is
/// written to a tensor.  Backward recomputes z per sample the same way,
/// forms the weight and bias gradients and dz = Wᵀ dy (col2im), multiplies by
/// ELU'(t) (t = a x + b') and accumulates BatchNorm's two channel sums Σ dt,
/// Σ dt (x − μ) in double on the way; a last pass forms dx (training; in
/// inference dx = a dt is written in the per-sample pass).  The results
/// are those of the unfused layers to rounding: the same operations in the
/// same order, except that the compiler may contract a x + b' into an FMA
/// in one loop and not the other, the double channel sums run in another
/// order and the bias gradients are summed in double (Conv2D: float);
/// tests/nn/test_preact_conv2d.cpp bounds the differences.  Device spaces
/// run the three layers one after the other (stored t and z).
template <class Scalar, class MemorySpace>
class PreactConv2D : public LayerBase<Scalar, MemorySpace> {
  using base = LayerBase<Scalar, MemorySpace>;

 public:
  using typename base::tensor_type;
  using typename base::vector_type;
  using batchnorm_type = BatchNorm<Scalar, MemorySpace>;
  using conv_type = Conv2D<Scalar, MemorySpace>;

  PreactConv2D(int in_channels, int out_channels, Conv2DGeometry g, EluOp elu = EluOp{})
      : bn_(in_channels), conv_(in_channels, out_channels, g), op_(elu) {
    this->params_ = vector_type("lensing::nn::PreactConv2D::params", bn_.num_params() + conv_.num_params());
    bind_children();
  }
  /// Square kernel k, stride s, padding p, dilation d.
  PreactConv2D(int in_channels, int out_channels, int k, int s = 1, int p = 0, int d = 1)
      : PreactConv2D(in_channels, out_channels, Conv2DGeometry{k, k, s, s, p, p, d, d}) {}

  Shape4 output_shape(Shape4 const& in) const { return conv_.output_shape(bn_.output_shape(in)); }
  long num_state() const { return bn_.num_state(); }
  vector_type state() const { return bn_.state(); }
  void bind_parameters(vector_type const& p) {
    base::bind_parameters(p);
    bind_children();
  }
  void bind_state(vector_type const& s) { bn_.bind_state(s); }
  /// The convolution's weights from `seed` (BatchNorm: γ = 1, β = 0, running mean 0, variance 1).
  void initialize(std::uint64_t seed) {
    bn_.initialize(seed);
    conv_.initialize(seed);
  }
  void set_training(bool t) {
    base::set_training(t);
    bn_.set_training(t);
    conv_.set_training(t);
  }
  batchnorm_type& batchnorm() { return bn_; }
  conv_type& conv() { return conv_; }

  void prepare(Shape4 const& in) {
    Shape4 const out = output_shape(in);
    in_ = in;
    if constexpr (std::is_same<MemorySpace, Kokkos::HostSpace>::value) {
      long const c = std::max(1, std::min(in.n, Kokkos::DefaultHostExecutionSpace().concurrency()));
      long const chw = long(in.c) * in.h * in.w;
      long const k = conv_.ksize(), p = long(out.h) * out.w;
      scratch_size_ = 2 * chw + (dims_pointwise() ? 0 : k * p);
      if (long(scratch_.extent(0)) < c * scratch_size_)
        scratch_ = View1D<Scalar, MemorySpace>(
            Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string("lensing::nn::PreactConv2D::scratch")),
            c * scratch_size_);
      long const np = conv_.num_params();
      if (long(partial_.extent(0)) < c * np)
        partial_ = View1D<Scalar, MemorySpace>(
            Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string("lensing::nn::PreactConv2D::partial")), c * np);
      if (long(sums_.extent(0)) < c * 2 * in.c)
        sums_ = View1D<double, MemorySpace>(
            Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string("lensing::nn::PreactConv2D::sums")),
            c * 2 * in.c);
      chunks_ = c;
    }
    prepared_ = true;
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::PreactConv2D::forward: inaccessible tensors");
    detail::check_forward(*this, x, y, "lensing::nn::PreactConv2D::forward");
    if constexpr (lensing::detail::is_host_space_v<ExecutionSpace>) {
      ensure_prepared(shape_of(x));
      forward_host(space, x, y);
    } else {
      forward_layers(space, x, y);
    }
  }

  /// y = layer(x) + addend (addend of y's shape; it may be y itself): the
  /// sum of a residual unit formed in the convolution's output pass (host:
  /// the GEMM accumulates onto b + addend; device: forward, then the sum).
  template <class ExecutionSpace>
  void forward_add(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& addend) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::PreactConv2D::forward_add: inaccessible tensors");
    detail::check_forward(*this, x, y, "lensing::nn::PreactConv2D::forward_add");
    check_shape(addend, shape_of(y), "lensing::nn::PreactConv2D::forward_add", "addend");
    if constexpr (lensing::detail::is_host_space_v<ExecutionSpace>) {
      ensure_prepared(shape_of(x));
      forward_host(space, x, y, addend.data());
    } else {
      check_argument(addend.data() != y.data(), "lensing::nn::PreactConv2D::forward_add",
                     "on a device space the addend must not be y");
      forward_layers(space, x, y);
      Scalar const* ap = addend.data();
      Scalar* yp = y.data();
      detail::for_each_element(
          "lensing::nn::PreactConv2D::add", space, long(y.size()), KOKKOS_LAMBDA(long i) { yp[i] += ap[i]; });
    }
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::PreactConv2D::backward: inaccessible tensors");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::PreactConv2D::backward");
    if constexpr (lensing::detail::is_host_space_v<ExecutionSpace>) {
      ensure_prepared(shape_of(x));
      backward_host(space, x, dy, dx, dparams);
    } else {
      backward_layers(space, x, y, dy, dx, dparams);
    }
  }

  //--------------------------------------------------------------------------
  // Implementation (public for the device lambdas).

  /// The unfused path: BatchNorm into t, ELU into z, Conv2D into y (device spaces).
  template <class ExecutionSpace>
  void forward_layers(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    Shape4 const in = shape_of(x);
    t_ = detail::batch_slice(t_store_, in, "lensing::nn::PreactConv2D", "t");
    z_ = detail::batch_slice(z_store_, in, "lensing::nn::PreactConv2D", "z");
    bn_.forward(space, x, t_);
    EluOp const op = op_;
    Scalar const* tp = t_.data();
    Scalar* zp = z_.data();
    detail::for_each_element(
        "lensing::nn::PreactConv2D::elu", space, long(t_.size()), KOKKOS_LAMBDA(long i) { zp[i] = op.value(tp[i]); });
    conv_.forward(space, z_, y);
  }

  template <class ExecutionSpace>
  void backward_layers(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                       tensor_type const& dx, vector_type const& dparams) {
    Shape4 const in = shape_of(x);
    check_argument(t_.data() != nullptr && shape_of(t_) == in, "lensing::nn::PreactConv2D::backward",
                   "call forward with this input first");
    tensor_type const dz = detail::batch_slice(dz_store_, in, "lensing::nn::PreactConv2D", "dz");
    long const nb = bn_.num_params();
    conv_.backward(space, z_, y, dy, dz,
                   vector_type(Kokkos::subview(dparams, Kokkos::make_pair(nb, this->num_params()))));
    EluOp const op = op_;
    Scalar const* tp = t_.data();
    Scalar const* zp = z_.data();
    Scalar* dzp = dz.data();
    detail::for_each_element(
        "lensing::nn::PreactConv2D::elu_backward", space, long(dz.size()),
        KOKKOS_LAMBDA(long i) { dzp[i] = op.derivative(tp[i], zp[i]) * dzp[i]; });
    bn_.backward(space, x, t_, dz, dx, vector_type(Kokkos::subview(dparams, Kokkos::make_pair(0L, nb))));
  }

  template <class ExecutionSpace>
  void forward_host(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y,
                    Scalar const* addend = nullptr) {
    bn_.statistics(space, x);
    detail::ConvDims const d = conv_.dims(x, y);
    long const k = conv_.ksize(), p = d.oh * d.ow, o = d.o, chw = d.c * d.h * d.w, hw = d.h * d.w;
    bool const one = d.pointwise();
    Scalar const* w = conv_.parameters().data();
    Scalar const* g = this->params_.data();
    Scalar const* ws = bn_.batch_statistics().data();
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    EluOp const op = op_;
    for_each_chunk(space, "lensing::nn::PreactConv2D::forward", d.n, 0, [=](long n, Scalar* scratch, Scalar*, double*) {
      Scalar* z = scratch;
      Scalar* col = scratch + 2 * chw;
      activate(d.c, hw, xp + n * chw, g, ws, op, z);
      Scalar* yn = yp + n * o * p;
      if (addend != nullptr) {
        Scalar const* an = addend + n * o * p;  // may be yn
        for (long oc = 0; oc < o; ++oc)
          for (long i = 0; i < p; ++i)
            yn[oc * p + i] = w[o * k + oc] + an[oc * p + i];
      } else {
        for (long oc = 0; oc < o; ++oc)
          for (long i = 0; i < p; ++i)
            yn[oc * p + i] = w[o * k + oc];
      }
      Scalar const* cn = z;
      if (!one) {
        detail::im2col(d, static_cast<Scalar const*>(z), col);
        cn = col;
      }
      detail::gemm_host(false, false, o, p, k, Scalar(1), w, k, cn, p, Scalar(1), yn, p);
    });
  }

  template <class ExecutionSpace>
  void backward_host(ExecutionSpace const& space, tensor_type const& x, tensor_type const& dy, tensor_type const& dx,
                     vector_type const& dparams) {
    detail::ConvDims const d = conv_.dims(x, dy);
    long const k = conv_.ksize(), p = d.oh * d.ow, o = d.o, chw = d.c * d.h * d.w, hw = d.h * d.w, c = d.c;
    long const npc = conv_.num_params(), m = d.n * hw;
    bool const one = d.pointwise();
    bool const train = bn_.last_training();
    Scalar const* w = conv_.parameters().data();
    Scalar const* g = this->params_.data();
    Scalar const* ws = bn_.batch_statistics().data();
    Scalar const* xp = x.data();
    Scalar const* dyp = dy.data();
    Scalar* dxp = dx.data();
    EluOp const op = op_;
    long const nc = for_each_chunk(
        space, "lensing::nn::PreactConv2D::backward", d.n, npc, [=](long n, Scalar* scratch, Scalar* gw, double* sums) {
          Scalar* z = scratch;
          Scalar* dz = scratch + chw;
          Scalar* col = scratch + 2 * chw;
          Scalar const* xn = xp + n * chw;
          Scalar const* dyn = dyp + n * o * p;
          activate(c, hw, xn, g, ws, op, z);
          Scalar const* cn = z;
          if (!one) {
            detail::im2col(d, static_cast<Scalar const*>(z), col);
            cn = col;
          }
          detail::gemm_host(false, true, o, k, p, Scalar(1), dyn, p, cn, p, Scalar(1), gw, k);
          // Bias gradients: Σ dy per channel, vectorised, in double (Conv2D
          // sums in float, serially: the same to its rounding).
          for (long oc = 0; oc < o; ++oc) {
            Scalar const* dr = dyn + oc * p;
            double sb = 0;
            LENSING_NN_SIMD_SUM(sb)
            for (long i = 0; i < p; ++i)
              sb += double(dr[i]);
            gw[o * k + oc] += Scalar(sb);
          }
          if (one) {
            detail::gemm_host(true, false, k, p, o, Scalar(1), w, k, dyn, p, Scalar(0), dz, p);
          } else {
            detail::gemm_host(true, false, k, p, o, Scalar(1), w, k, dyn, p, Scalar(0), col, p);
            detail::col2im(d, static_cast<Scalar const*>(col), dz);
          }
          // dt = ELU'(t) dz, t recomputed as forward made it; BatchNorm's channel sums.
          Scalar* dxn = dxp != nullptr ? dxp + n * chw : nullptr;
          for (long ch = 0; ch < c; ++ch) {
            Scalar const mean = ws[ch], inv = ws[c + ch];
            Scalar const a = g[ch] * inv, b0 = g[c + ch] - a * mean;
            Scalar const* xc = xn + ch * hw;
            Scalar const* zc = z + ch * hw;
            Scalar* dc = dz + ch * hw;
        // Three loops of BatchNorm::backward's form, so each vectorises
        // (one loop with the double sums ran scalar).
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
            for (long i = 0; i < hw; ++i)
              dc[i] = op.derivative(a * xc[i] + b0, zc[i]) * dc[i];
            double s0 = 0, s1 = 0;
            LENSING_NN_SIMD_SUM(s0)
            for (long i = 0; i < hw; ++i)
              s0 += double(dc[i]);
            LENSING_NN_SIMD_SUM(s1)
            for (long i = 0; i < hw; ++i)
              s1 += double(dc[i] * (xc[i] - mean));
            sums[ch] += s0;
            sums[c + ch] += s1;
            if (dxn == nullptr) continue;
            Scalar* dxc = dxn + ch * hw;
            if (train) {
              for (long i = 0; i < hw; ++i)
                dxc[i] = dc[i];  // dt, finished after the channel sums are complete
            } else {
              for (long i = 0; i < hw; ++i)
                dxc[i] = a * dc[i];
            }
          }
        });
    // Parameter gradients: γ, β from the channel sums (as BatchNorm::backward), W, b from the partials.
    Scalar* dg = dparams.data();
    Scalar const* part = partial_.data();
    double const* sp = sums_.data();
    long const nb = 2 * c;
    Kokkos::parallel_for("lensing::nn::PreactConv2D::reduce", Kokkos::RangePolicy<ExecutionSpace>(space, 0, npc + c),
                         [=](long i) {
                           if (i < npc) {
                             Scalar s = Scalar(0);
                             for (long t = 0; t < nc; ++t)
                               s += part[t * npc + i];
                             dg[nb + i] = s;
                           } else {
                             long const ch = i - npc;
                             double s0 = 0, s1 = 0;
                             for (long t = 0; t < nc; ++t) {
                               s0 += sp[t * nb + ch];
                               s1 += sp[t * nb + c + ch];
                             }
                             dg[ch] = Scalar(s1) * ws[c + ch];
                             dg[c + ch] = Scalar(s0);
                           }
                         });
    space.fence();
    if (dxp == nullptr || !train) return;
    // dx = a (dt − Σdt/m − (x − μ) Σdt(x − μ)/(σ m)), BatchNorm's training formula, per (sample, channel).
    Kokkos::parallel_for("lensing::nn::PreactConv2D::backward_input",
                         Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, d.n * c),
                         [=](long nch) {
                           long const ch = nch % c;
                           Scalar const mean = ws[ch], inv = ws[c + ch];
                           Scalar const a = g[ch] * inv;
                           Scalar const sdy = dg[c + ch], sdyx = dg[ch];
                           Scalar const k0 = sdy / Scalar(m), k1 = sdyx * inv / Scalar(m);
                           Scalar const* xc = xp + nch * hw;
                           Scalar* dxc = dxp + nch * hw;
                           for (long i = 0; i < hw; ++i)
                             dxc[i] = a * (dxc[i] - k0 - (xc[i] - mean) * k1);
                         });
    space.fence();
  }

  /// z (c x hw) = ELU(a x + b') per channel, a and b' from γ, β and the
  /// statistics ws, as BatchNorm: the affine map per channel, then ELU over
  /// the whole sample in one loop (one vector remainder per sample, not one
  /// per channel: the small maps of the deep stages have 9–36 pixels).
  static void activate(long c, long hw, Scalar const* x, Scalar const* g, Scalar const* ws, EluOp op, Scalar* z) {
    for (long ch = 0; ch < c; ++ch) {
      Scalar const mean = ws[ch], inv = ws[c + ch];
      Scalar const a = g[ch] * inv, b0 = g[c + ch] - a * mean;
      Scalar const* xc = x + ch * hw;
      Scalar* zc = z + ch * hw;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
      for (long i = 0; i < hw; ++i)
        zc[i] = a * xc[i] + b0;
    }
    long const chw = c * hw;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
    for (long i = 0; i < chw; ++i)
      z[i] = op.value(z[i]);
  }

  /// body(n, scratch, g, sums) for every sample n < batch on the host threads of
  /// `space`, the batch split into contiguous chunks, one a thread, each with
  /// its own scratch, partial conv gradient g (np, zeroed) and double channel
  /// sums (2 C_in, zeroed); fences `space`; returns the number of chunks.
  template <class ExecutionSpace, class Body>
  long for_each_chunk(ExecutionSpace const& space, char const* name, long batch, long np, Body const& body) const {
    long const nc = std::min<long>({chunks_, batch, long(space.concurrency())});
    long const ss = scratch_size_, ns = 2 * long(bn_.channels());
    Scalar* sb = scratch_.data();
    Scalar* pb = partial_.data();
    double* qb = sums_.data();
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecutionSpace>(space, 0, nc), [=](long t) {
      Scalar* gt = pb + t * np;
      double* qt = qb + t * ns;
      for (long i = 0; i < np; ++i)
        gt[i] = Scalar(0);
      for (long i = 0; i < ns; ++i)
        qt[i] = 0;
      for (long n = batch * t / nc; n < batch * (t + 1) / nc; ++n)
        body(n, sb + t * ss, gt, qt);
    });
    space.fence();
    return nc;
  }

 private:
  bool dims_pointwise() const {
    auto const& g = conv_.geometry();
    return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
  }
  void ensure_prepared(Shape4 const& in) {
    long const c = std::min(in.n, Kokkos::DefaultHostExecutionSpace().concurrency());
    if (!prepared_ || in != in_ || c > chunks_) prepare(in);
  }
  void bind_children() {
    long const nb = bn_.num_params();
    bn_.bind_parameters(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(0L, nb))));
    conv_.bind_parameters(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(nb, this->num_params()))));
  }

  batchnorm_type bn_;
  conv_type conv_;
  EluOp op_;
  bool prepared_ = false;
  Shape4 in_{};
  long chunks_ = 0, scratch_size_ = 0;
  View1D<Scalar, MemorySpace> scratch_, partial_;
  View1D<double, MemorySpace> sums_;
  // The unfused (device) path's stored tensors.
  tensor_type t_store_, z_store_, dz_store_, t_, z_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_PREACT_CONV2D_HPP
