#ifndef LENSING_NN_CONV_GRU_HPP
#define LENSING_NN_CONV_GRU_HPP

/// \file
/// A convolutional gated recurrent unit (ConvGRU; Cho et al. 2014 with the
/// matrix products replaced by convolutions, Ballas et al. 2016,
/// arXiv:1511.06432), the recurrent cell of the recurrent inference machine
/// (Putzky & Welling 2017; Morningstar et al. 2019, arXiv:1901.01359).

#include <lensing/nn/activation.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/layer.hpp>

#include <string>

namespace lensing {
namespace nn {

/// Convolutional GRU cell with C_x input and C_h hidden channels, k x k
/// "same" convolutions (k odd, zero padding k / 2, stride 1):
///
///   [z, r] = sigmoid(W_g * [x, h] + b_g)        (gates, 2 C_h channels)
///   h~     = tanh(W_c * [x, r . h] + b_c)        (candidate, C_h channels)
///   h'     = (1 - z) . h + z . h~
///
/// `*` the 2-D convolution of Conv2D (cross-correlation), `.` elementwise,
/// [a, b] concatenation along channels.  Convention: z is the update gate
/// weighting the *new* candidate (z = 0 keeps the old state; PyTorch's
/// nn.GRUCell weights the old state by z instead, so its z is our 1 - z).
///
/// As a Layer the cell maps one tensor to one: its input is the
/// concatenation xh = [x, h] (N, C_x + C_h, H, W), its output h'
/// (N, C_h, H, W); backward gives dxh = [dx, dh] and the parameter
/// gradients (overwritten, as every layer does).  Parameters, flat: W_g
/// (2 C_h, C_x + C_h, k, k), b_g (2 C_h) (the z rows first, then r), then
/// W_c (C_h, C_x + C_h, k, k), b_c (C_h); initialised as Conv2D (He-normal
/// unless `init` says otherwise, zero biases).
///
/// Backward (hand-derived; g = dL/dh'):
///   dz = g . (h~ - h),  dh~ = g . z,  dh = g . (1 - z) + (W_c^T dc)_h . r,
///   dc = dh~ . (1 - h~^2)            (c the candidate's pre-activation),
///   [dx_c, d(r.h)] = W_c^T dc,  dr = d(r.h) . h,
///   da = [dz . z (1 - z), dr . r (1 - r)],   dxh += W_g^T da,
///   dW_c, db_c from (u = [x, r.h], dc);  dW_g, db_g from (xh, da).
/// The intermediate values (z, r, u, h~) are kept in a Cache: the
/// forward/backward overloads that take one let a caller (backpropagation
/// through time) keep one Cache per step; the plain Layer backward
/// recomputes them from xh with a forward pass.  Buffers are slices of
/// storage kept at the largest batch seen.
template <class Scalar, class MemorySpace>
class ConvGRU : public LayerBase<Scalar, MemorySpace> {
  using base = LayerBase<Scalar, MemorySpace>;
  using Conv = Conv2D<Scalar, MemorySpace>;

 public:
  using typename base::tensor_type;
  using typename base::vector_type;

  /// What forward keeps for backward: gates [z, r] (N, 2 C_h, H, W), the
  /// candidate's input u = [x, r . h] (N, C_x + C_h, H, W) and h~ (N, C_h, H, W).
  struct Cache {
    tensor_type gates, cand_in, cand;
  };

  ConvGRU(int input_channels, int hidden_channels, int kernel = 3, Init init = Init::he_normal)
      : cx_(input_channels),
        ch_(hidden_channels),
        k_(kernel),
        gates_(checked(input_channels, hidden_channels, kernel) + hidden_channels, 2 * hidden_channels,
               Conv2DGeometry{kernel, kernel, 1, 1, kernel / 2, kernel / 2, 1, 1}, init),
        cand_(input_channels + hidden_channels, hidden_channels,
              Conv2DGeometry{kernel, kernel, 1, 1, kernel / 2, kernel / 2, 1, 1}, init) {
    ng_ = gates_.num_params();
    this->params_ = vector_type("lensing::nn::ConvGRU::params", ng_ + cand_.num_params());
    bind_children();
  }

  int input_channels() const { return cx_; }
  int hidden_channels() const { return ch_; }
  int kernel() const { return k_; }

  Shape4 output_shape(Shape4 const& in) const {
    char const* where = "lensing::nn::ConvGRU";
    check_valid_shape(in, where);
    check_argument(
        in.c == cx_ + ch_, where,
        "input " + in.str() + " must hold [x, h]: " + std::to_string(cx_) + " + " + std::to_string(ch_) + " channels");
    return Shape4{in.n, ch_, in.h, in.w};
  }

  void bind_parameters(vector_type const& p) {
    base::bind_parameters(p);
    bind_children();
  }
  void initialize(std::uint64_t seed) {
    gates_.initialize(child_seed(seed, 0));
    cand_.initialize(child_seed(seed, 1));
  }
  void prepare(Shape4 const& in) {
    Shape4 const out = output_shape(in);
    gates_.prepare(in);
    cand_.prepare(in);
    Shape4 const g{in.n, 2 * ch_, in.h, in.w};
    char const* where = "lensing::nn::ConvGRU::prepare";
    own_.gates = detail::batch_slice(own_store_.gates, g, where, "gates");
    own_.cand_in = detail::batch_slice(own_store_.cand_in, in, where, "cand_in");
    own_.cand = detail::batch_slice(own_store_.cand, out, where, "cand");
    da_ = detail::batch_slice(da_store_, g, where, "da");
    dc_ = detail::batch_slice(dc_store_, out, where, "dc");
    dh_ = detail::batch_slice(dh_store_, out, where, "dh");
    du_ = detail::batch_slice(du_store_, in, where, "du");
    y_ = detail::batch_slice(y_store_, out, where, "y");
  }

  /// A Cache with buffers for inputs of shape `in`.
  Cache make_cache(Shape4 const& in) const {
    Shape4 const out = output_shape(in);
    Cache c;
    c.gates = tensor_type("lensing::nn::ConvGRU::cache_gates", in.n, 2 * ch_, in.h, in.w);
    c.cand_in = tensor_type("lensing::nn::ConvGRU::cache_cand_in", in.n, in.c, in.h, in.w);
    c.cand = tensor_type("lensing::nn::ConvGRU::cache_cand", out.n, out.c, out.h, out.w);
    return c;
  }

  /// h' = GRU(xh) with the intermediates kept in the Layer's own cache.
  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& xh, tensor_type const& y) {
    prepare(shape_of(xh));
    forward(space, xh, y, own_);
  }

  /// h' = GRU(xh), the intermediates written to `cache` (make_cache(shape of xh)).
  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& xh, tensor_type const& y, Cache const& cache) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::ConvGRU::forward: the tensors are not accessible from this execution space");
    char const* where = "lensing::nn::ConvGRU::forward";
    detail::check_forward(*this, xh, y, where);
    check_cache(cache, shape_of(xh), where);
    gates_.forward(space, xh, cache.gates);
    Shape4 const s = shape_of(xh);
    long const hw = long(s.h) * s.w, cin = s.c, ch = ch_, cx = cx_;
    Scalar* gp = cache.gates.data();
    Scalar const* xp = xh.data();
    Scalar* up = cache.cand_in.data();
    // Gates through the sigmoid, then u = [x, r . h].
    Kokkos::parallel_for(
        "lensing::nn::ConvGRU::gates",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, s.n * 2 * ch * hw),
        KOKKOS_LAMBDA(long i) { gp[i] = SigmoidOp{}.value(gp[i]); });
    Kokkos::parallel_for(
        "lensing::nn::ConvGRU::candidate_input",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, s.n * cin * hw), KOKKOS_LAMBDA(long i) {
          long const n = i / (cin * hw), c = (i / hw) % cin, p = i % hw;
          up[i] = c < cx ? xp[i] : gp[(n * 2 * ch + ch + c - cx) * hw + p] * xp[i];
        });
    cand_.forward(space, cache.cand_in, cache.cand);
    Scalar* cp = cache.cand.data();
    Scalar* yp = y.data();
    Scalar const* gz = cache.gates.data();
    Kokkos::parallel_for(
        "lensing::nn::ConvGRU::update",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, s.n * ch * hw), KOKKOS_LAMBDA(long i) {
          long const n = i / (ch * hw), k = (i / hw) % ch, p = i % hw;
          Scalar const ht = TanhOp{}.value(cp[i]);
          cp[i] = ht;
          Scalar const z = gz[n * 2 * ch * hw + k * hw + p];
          Scalar const h = xp[(n * cin + cx + k) * hw + p];
          yp[i] = (Scalar(1) - z) * h + z * ht;
        });
  }

  /// Layer backward: recomputes the intermediates from xh, then as below.
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& xh, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dxh, vector_type const& dparams) {
    detail::check_backward(*this, xh, y, dy, dxh, dparams, "lensing::nn::ConvGRU::backward");
    prepare(shape_of(xh));
    forward(space, xh, y_, own_);
    backward(space, xh, dy, dxh, dparams, own_);
  }

  /// dxh (empty: not wanted) and dparams (overwritten) for the upstream
  /// gradient dy = dL/dh', from the `cache` of the forward pass of this xh.
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& xh, tensor_type const& dy, tensor_type const& dxh,
                vector_type const& dparams, Cache const& cache) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::ConvGRU::backward: the tensors are not accessible from this execution space");
    char const* where = "lensing::nn::ConvGRU::backward";
    Shape4 const s = shape_of(xh);
    detail::check_backward(*this, xh, dy, dy, dxh, dparams, where);
    check_cache(cache, s, where);
    if (!(shape_of(da_) == Shape4{s.n, 2 * ch_, s.h, s.w})) prepare(s);
    long const hw = long(s.h) * s.w, cin = s.c, ch = ch_, cx = cx_;
    Scalar const* xp = xh.data();
    Scalar const* gp = cache.gates.data();
    Scalar const* htp = cache.cand.data();
    Scalar const* dyp = dy.data();
    Scalar* dap = da_.data();
    Scalar* dcp = dc_.data();
    Scalar* dhp = dh_.data();
    Kokkos::parallel_for(
        "lensing::nn::ConvGRU::backward_update",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, s.n * ch * hw), KOKKOS_LAMBDA(long i) {
          long const n = i / (ch * hw), k = (i / hw) % ch, p = i % hw;
          Scalar const g = dyp[i], ht = htp[i];
          Scalar const z = gp[n * 2 * ch * hw + k * hw + p];
          Scalar const h = xp[(n * cin + cx + k) * hw + p];
          dap[n * 2 * ch * hw + k * hw + p] = g * (ht - h) * z * (Scalar(1) - z);
          dcp[i] = g * z * (Scalar(1) - ht * ht);
          dhp[i] = g * (Scalar(1) - z);
        });
    vector_type const dpg(Kokkos::subview(dparams, Kokkos::make_pair(0L, ng_)));
    vector_type const dpc(Kokkos::subview(dparams, Kokkos::make_pair(ng_, this->num_params())));
    cand_.backward(space, cache.cand_in, cache.cand, dc_, du_, dpc);
    Scalar const* dup = du_.data();
    Kokkos::parallel_for(
        "lensing::nn::ConvGRU::backward_reset",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, s.n * ch * hw), KOKKOS_LAMBDA(long i) {
          long const n = i / (ch * hw), k = (i / hw) % ch, p = i % hw;
          Scalar const drh = dup[(n * cin + cx + k) * hw + p];
          Scalar const r = gp[n * 2 * ch * hw + (ch + k) * hw + p];
          Scalar const h = xp[(n * cin + cx + k) * hw + p];
          dap[n * 2 * ch * hw + (ch + k) * hw + p] = drh * h * r * (Scalar(1) - r);
          dhp[i] += drh * r;
        });
    bool const want_dx = dxh.data() != nullptr;
    gates_.backward(space, xh, cache.gates, da_, dxh, dpg);
    if (!want_dx) return;
    Scalar* dxp = dxh.data();
    Kokkos::parallel_for(
        "lensing::nn::ConvGRU::backward_input",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, s.n * cin * hw), KOKKOS_LAMBDA(long i) {
          long const n = i / (cin * hw), c = (i / hw) % cin, p = i % hw;
          dxp[i] += c < cx ? dup[i] : dhp[(n * ch + c - cx) * hw + p];
        });
  }

 private:
  static int checked(int cx, int ch, int k) {
    char const* where = "lensing::nn::ConvGRU";
    check_count(cx, 1, where, "input_channels");
    check_count(ch, 1, where, "hidden_channels");
    check_argument(k >= 1 && k % 2 == 1, where, "kernel must be odd and >= 1, got " + std::to_string(k));
    return cx;
  }
  void check_cache(Cache const& c, Shape4 const& in, char const* where) const {
    check_shape(c.gates, Shape4{in.n, 2 * ch_, in.h, in.w}, where, "cache.gates");
    check_shape(c.cand_in, in, where, "cache.cand_in");
    check_shape(c.cand, Shape4{in.n, ch_, in.h, in.w}, where, "cache.cand");
  }
  void bind_children() {
    gates_.bind_parameters(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(0L, ng_))));
    cand_.bind_parameters(vector_type(Kokkos::subview(this->params_, Kokkos::make_pair(ng_, this->num_params()))));
  }

  int cx_, ch_, k_;
  Conv gates_, cand_;
  long ng_ = 0;
  Cache own_, own_store_;
  tensor_type da_, dc_, dh_, du_, y_;
  tensor_type da_store_, dc_store_, dh_store_, du_store_, y_store_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_CONV_GRU_HPP
