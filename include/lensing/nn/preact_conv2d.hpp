#ifndef LENSING_NN_PREACT_CONV2D_HPP
#define LENSING_NN_PREACT_CONV2D_HPP

#include <lensing/core/math.hpp>
#include <lensing/nn/activation.hpp>
#include <lensing/nn/batchnorm.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/detail/masked_rows.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

// The fused layer's element loops (affine, ELU, its derivative, the channel
// sums) with 512-bit vectors: GCC prefers 256 bits on AVX-512 targets, and
// the inline expm1 is bound by arithmetic (16 lanes: 1.45x the rate of 8 on
// this machine's cores).  Each such loop is a function of its own, kept out
// of line: inlined into a caller, it took the caller's 256-bit preference.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && defined(__AVX512F__)
#define LENSING_NN_PREACT_WIDE __attribute__((target("prefer-vector-width=512"), noinline))
#else
#define LENSING_NN_PREACT_WIDE
#endif

namespace lensing {
namespace nn {

namespace detail {

/// e^x − 1 for float x ≤ 0, inline and vectorisable: x = k ln 2 + r (|r| ≤
/// ln 2 / 2, Cody–Waite split of ln 2), e^r − 1 by its Taylor series to r⁷
/// (truncation < 1.5e-8 relative), then 2ᵏ (e^r − 1) + (2ᵏ − 1) in one FMA
/// (k = 0 near 0: e^r − 1 itself, so no cancellation).  Over every float in
/// [−90, 0] it is within 0.87 ulp of the correctly rounded value (glibc's
/// scalar expm1f: 0.77); x < −87 is taken as −87 (the result −1 either way).
/// The fused ELU of PreactConv2D uses it: 2–2.5x faster than glibc's vector
/// expm1f, which took 12–16 % of the ResNet's inference.
///
/// Branch-free (math::select) and without a float-to-int conversion, so
/// that GCC vectorises the loops that call it for AVX2 as for AVX-512 under
/// the default -ftrapping-math: 2ᵏ comes from the bits of t = x/ln 2 +
/// 1.5·2²³, whose low mantissa bits hold k (t − 1.5·2²³ = k exactly), by an
/// integer shift and add (the same value as (int(k) + 127) << 23).
inline float expm1_nonpositive(float x) {
  x = math::select(x > -87.0f, x, -87.0f);
  float const t = x * 1.44269504088896341f + 12582912.0f;  // 1.5·2²³: rounds x/ln 2 to an integer
  float const kf = t - 12582912.0f;
  float r = x - kf * 0.693145751953125f;     // ln 2, high part (exact products)
  r = r - kf * 1.42860682030941723212e-06f;  // ln 2, low part
  float q = 1.98412698412698413e-04f;        // 1/7!
  q = q * r + 1.38888888888888889e-03f;
  q = q * r + 8.33333333333333333e-03f;
  q = q * r + 4.16666666666666667e-02f;
  q = q * r + 1.66666666666666667e-01f;
  q = q * r + 0.5f;
  float const p = r + (r * r) * q;
  // t's bits are 0x4B400000 + k (−126 ≤ k ≤ 0); shifted by 23 only k's bits
  // remain (mod 2³²), and + 127 << 23 makes 2ᵏ's exponent.
  std::uint32_t tb;
  std::memcpy(&tb, &t, sizeof tb);
  std::uint32_t const bits = (tb << 23) + 0x3f800000u;
  float s;
  std::memcpy(&s, &bits, sizeof s);
  return s * p + (s - 1.0f);
}

}  // namespace detail

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
/// written to a tensor; a "same" kernel (3x3 pad 1, at stride 1 or 2) on a
/// map of one sample per GEMM reads its col from k_w shifted copies of z (at
/// stride 2 of z's phase planes; detail::ShiftedPlanes), not from im2col's
/// K x P col, in the forward and the weight gradient (the same values), and
/// at unit stride its backward forms dz as the adjoint convolution — dy
/// convolved with W flipped, read from shifted copies of dy — in place of
/// dcol = Wᵀ dy and col2im.  (im2col and col2im are Conv2D's,
/// detail/masked_rows.hpp: for "same" unit-stride kernels one flat copy per
/// col row and its adjoint one sum; for stride 2 a vectorised copy; the element loops use 512-bit vectors where GCC
/// targets AVX-512.)  Small output maps (P = oh·ow ≤ 72: the deep
/// stages' 6x6 and 3x3) run G = ⌊144 / P⌋ samples (at most a thread's) per
/// GEMM, their cols side by side (K x G P), which Eigen's kernel runs near
/// its large-shape rate; the group's output goes to a cache-resident buffer
/// and is written to y once, with b + addend.  Backward recomputes z per sample the same way,
/// forms the weight and bias gradients and dz = Wᵀ dy (col2im), multiplies by
/// ELU'(t) (t = a x + b') and accumulates BatchNorm's two channel sums Σ dt,
/// Σ dt (x − μ) in double on the way; a last pass forms dx (training; in
/// inference dx = a dt is written in the per-sample pass), plus an addend
/// with backward_add (a residual unit's other branch).  Each pass (the
/// statistics and the chunks of samples; the chunks and the last pass) is
/// one parallel region, its phases separated by team barriers.  The results
/// are those of the unfused layers to rounding: the same operations in the
/// same order, except that the compiler may contract a x + b' into an FMA
/// in one loop and not the other, the double channel sums run in another
/// order, the bias gradients are summed in double (Conv2D: float), a grouped
/// GEMM may block its sums differently, the adjoint convolution sums dz's
/// terms in another order than col2im, and float ELU takes expm1 from
/// detail::expm1_nonpositive (≤ 0.87 ulp; glibc's vector expm1f otherwise);
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
      long const k = conv_.ksize(), p = long(out.h) * out.w, o = out.c;
      // Samples per GEMM: the small maps of the deep stages (P = 9, 36) run
      // G samples side by side (n = G P ≈ 144 columns), where Eigen's kernel
      // reaches its large-shape rate (n = 9: 25–50 GFLOP/s, n = 144: 110–160
      // on this machine) and packs W once per G samples instead of once per sample.
      long const per_chunk = (long(in.n) + c - 1) / c;
      group_ = std::max(1L, std::min(per_chunk, group_columns / std::max(1L, p)));
      long const gp = group_ * p;
      bool const one = dims_pointwise();
      // z of the group (for a 1x1 kernel: its col, C_in x G P), dz of a sample
      // (1x1: the group's dcol, C_in x G P), col (K x G P), and for G > 1 the
      // group's output or gathered dy (C_out x G P).
      scratch_size_ = group_ * chw + (one ? group_ * chw : chw) + (one ? 0 : k * gp) + (group_ > 1 ? o * gp : 0);
      // One sample per GEMM with a "same" kernel (output rows ⌈w/s⌉: 3x3 pad
      // 1 at stride 1 or 2): the GEMMs read col from shifted copies of z
      // (detail::ShiftedPlanes) at the end of the scratch, not from im2col
      // (forward, and the weight gradient).
      detail::ConvDims const dd = conv_.shape_dims(in, out);
      planes_ = detail::has_offset_rows_gemm && !one && group_ == 1 && detail::ShiftedPlanes::applies(dd);
      // At unit stride dz is the adjoint convolution of dy, also "same": shifted copies of dy.
      adjoint_ = planes_ && detail::same_width_unit_stride(dd);
      if (planes_) {
        plane_offsets_ = detail::ShiftedPlanes::offset_view(dd, "lensing::nn::PreactConv2D::offsets");
        planes_at_ = scratch_size_;
        long copies = detail::ShiftedPlanes::size(dd);
        if (adjoint_) copies = std::max(copies, detail::ShiftedPlanes::size(adjoint_dims(dd)));
        scratch_size_ += copies;
      }
      if (adjoint_) {
        adjoint_offsets_ =
            detail::ShiftedPlanes::offset_view(adjoint_dims(dd), "lensing::nn::PreactConv2D::adjoint_offsets");
        if (long(flipped_.extent(0)) < o * k)
          flipped_ = View1D<Scalar, MemorySpace>(
              Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string("lensing::nn::PreactConv2D::flipped")),
              o * k);
      }
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
      add_into(space, "lensing::nn::PreactConv2D::add", y, addend);
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

  /// backward with dx = the input gradient + addend (x's shape; it may not
  /// be dx): the sum of a residual unit's two branches formed in the pass
  /// that writes dx (host), or backward then the sum (device).  dx is required.
  template <class ExecutionSpace>
  void backward_add(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                    tensor_type const& dx, vector_type const& dparams, tensor_type const& addend) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::PreactConv2D::backward_add: inaccessible tensors");
    char const* where = "lensing::nn::PreactConv2D::backward_add";
    detail::check_backward(*this, x, y, dy, dx, dparams, where);
    check_argument(dx.data() != nullptr, where, "dx is required");
    check_shape(addend, shape_of(x), where, "addend");
    check_argument(addend.data() != dx.data(), where, "the addend must not be dx");
    if constexpr (lensing::detail::is_host_space_v<ExecutionSpace>) {
      ensure_prepared(shape_of(x));
      backward_host(space, x, dy, dx, dparams, addend.data());
    } else {
      backward_layers(space, x, y, dy, dx, dparams);
      add_into(space, "lensing::nn::PreactConv2D::add_gradient", dx, addend);
    }
  }

  //--------------------------------------------------------------------------
  // Implementation (public for the device lambdas).

  /// to += from, element by element (the device paths of forward_add and backward_add).
  template <class ExecutionSpace>
  static void add_into(ExecutionSpace const& space, char const* name, tensor_type const& to, tensor_type const& from) {
    Scalar const* fp = from.data();
    Scalar* tp = to.data();
    detail::for_each_element(
        name, space, long(to.size()), KOKKOS_LAMBDA(long i) { tp[i] += fp[i]; });
  }

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
    ensure_prepared(shape_of(x));
    detail::ConvDims const d = conv_.dims(x, y);
    long const sx = d.c * d.h * d.w, sy = d.o * d.oh * d.ow, c = d.c;
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    PreactConv2D const* self = this;
    // The statistics (the batch's in training, the running ones in
    // inference) in the same parallel region, before the chunks.
    auto const stats = bn_.statistics_pass(x);
    for_each_chunk(
        space, "lensing::nn::PreactConv2D::forward", d.n, 0,
        [=](long rank, long size) {
          for (long ch = rank; ch < c; ch += size)
            stats(ch);
        },
        [=](long n0, long gn, Scalar* scratch, Scalar*, double*) {
          self->forward_samples(d, gn, xp + n0 * sx, yp + n0 * sy, addend != nullptr ? addend + n0 * sy : nullptr,
                                scratch);
        },
        [](long, long) {});
  }

  /// Host: prepares for x's shape and forms the statistics forward uses (the
  /// batch's in training, the running ones in inference), so that
  /// forward_samples may then run on the host threads (chunk t with
  /// scratch(t)); returns the convolution's dimensions.  Used by forward_host
  /// and by a residual unit running its layers sample by sample (inference).
  template <class ExecutionSpace>
  detail::ConvDims start_samples(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    ensure_prepared(shape_of(x));
#if defined(KOKKOS_ENABLE_SERIAL)
    // Inference statistics are the running ones (two values a channel): on
    // the calling thread, the same function, without a parallel region.
    if (!bn_.training()) {
      bn_.statistics(Kokkos::Serial(), x);
      return conv_.dims(x, y);
    }
#endif
    bn_.statistics(space, x);
    return conv_.dims(x, y);
  }
  /// The per-thread scratch of chunk t (t < chunks()), for forward_samples.
  Scalar* scratch(long t) const { return scratch_.data() + t * scratch_size_; }
  /// Samples per GEMM (forward_samples takes at most this many at once) and chunks prepared.
  long group() const { return group_; }
  long chunks() const { return chunks_; }

  /// Host, on the calling thread: y = layer(x) (+ addend) for the gn ≤
  /// group() samples whose input starts at xs (d.c·d.h·d.w values a sample)
  /// and whose output starts at ys (d.o·d.oh·d.ow a sample; the addend, when
  /// not null, likewise, and it may be ys), with the statistics of the last
  /// start_samples.
  void forward_samples(detail::ConvDims const& d, long gn, Scalar const* xs, Scalar* ys, Scalar const* addend,
                       Scalar* scratch) const {
    long const k = conv_.ksize(), p = d.oh * d.ow, o = d.o, chw = d.c * d.h * d.w;
    bool const one = d.pointwise();
    long const gmax = group_;
    Scalar const* w = conv_.parameters().data();
    Scalar const* g = this->params_.data();
    Scalar const* ws = bn_.batch_statistics().data();
    // G = gn samples in one GEMM: col is K x G P, sample j's columns at j P.
    long const gp = gn * p;
    Scalar* z = scratch;
    Scalar* col = scratch + gmax * chw + (one ? gmax * chw : chw);
    Scalar* cbuf = col + (one ? 0 : k * gmax * p);
    bool const planes = planes_ && gn == 1;
    Scalar const* cn =
        planes ? activated_inputs(d, 0, gn, xs, g, ws, op_, z) : activated_columns(d, 0, gn, xs, g, ws, op_, z, col);
    if (gn == 1) {
      // One sample: the GEMM accumulates onto b + addend in y itself.
      if (addend != nullptr) {
        for (long oc = 0; oc < o; ++oc)
          for (long i = 0; i < p; ++i)
            ys[oc * p + i] = w[o * k + oc] + addend[oc * p + i];
      } else {
        for (long oc = 0; oc < o; ++oc)
          for (long i = 0; i < p; ++i)
            ys[oc * p + i] = w[o * k + oc];
      }
      if (planes) {
        Scalar* copies = scratch + planes_at_;
        detail::ShiftedPlanes::fill(d, cn, copies);
        detail::gemm_host_offset_rows(false, o, p, k, w, k, static_cast<Scalar const*>(copies), plane_offsets_.data(),
                                      ys, p);
      } else {
        detail::gemm_host(false, false, o, p, k, Scalar(1), w, k, cn, p, Scalar(1), ys, p);
      }
      return;
    }
    // A group: W col into the cache-resident buffer, then y = that + (b + addend),
    // written once per sample (the same sums, one rounding of (b + addend) + Σ).
    detail::gemm_host(false, false, o, gp, k, Scalar(1), w, k, cn, gp, Scalar(0), cbuf, gp);
    for (long j = 0; j < gn; ++j) {
      Scalar* yn = ys + j * o * p;
      Scalar const* an = addend != nullptr ? addend + j * o * p : nullptr;  // may be yn
      for (long oc = 0; oc < o; ++oc) {
        Scalar const b = w[o * k + oc];
        Scalar const* cr = cbuf + oc * gp + j * p;
        Scalar* yr = yn + oc * p;
        if (an != nullptr) {
          Scalar const* ar = an + oc * p;
          for (long i = 0; i < p; ++i)
            yr[i] = (b + ar[i]) + cr[i];
        } else {
          for (long i = 0; i < p; ++i)
            yr[i] = b + cr[i];
        }
      }
    }
  }

  template <class ExecutionSpace>
  void backward_host(ExecutionSpace const& space, tensor_type const& x, tensor_type const& dy, tensor_type const& dx,
                     vector_type const& dparams, Scalar const* addend = nullptr) {
    detail::ConvDims const d = conv_.dims(x, dy);
    long const k = conv_.ksize(), p = d.oh * d.ow, o = d.o, chw = d.c * d.h * d.w, hw = d.h * d.w, c = d.c;
    long const npc = conv_.num_params(), m = d.n * hw;
    bool const one = d.pointwise();
    bool const train = bn_.last_training();
    long const gmax = group_;
    Scalar const* w = conv_.parameters().data();
    Scalar const* g = this->params_.data();
    Scalar const* ws = bn_.batch_statistics().data();
    Scalar const* xp = x.data();
    Scalar const* dyp = dy.data();
    Scalar* dxp = dx.data();
    EluOp const op = op_;
    long const nc = chunk_count(space, d.n);
    bool const planes_on = planes_, adjoint_on = adjoint_;
    long const planes_at = planes_at_;
    long const* offsets = plane_offsets_.data();
    long const* adjoint_offsets = adjoint_offsets_.data();
    detail::ConvDims const da = adjoint_on ? adjoint_dims(d) : d;
    long const ka = o * d.kh * d.kw;
    Scalar* flipped = flipped_.data();
    auto const chunk = [=](long n0, long gn, Scalar* scratch, Scalar* gw, double* sums) {
      // G = gn samples n0.. in one GEMM each for dW and dcol (see forward_host).
      long const gp = gn * p;
      Scalar* z = scratch;
      Scalar* dz = scratch + gmax * chw;
      Scalar* col = dz + (one ? gmax * chw : chw);
      Scalar* dyg = col + (one ? 0 : k * gmax * p);
      // One sample, "same" kernel: dW reads col from shifted copies of z
      // (and at unit stride dz is the adjoint convolution).
      bool const planes = planes_on && gn == 1, adjoint = adjoint_on && gn == 1;
      Scalar const* cn =
          planes ? activated_inputs(d, n0, gn, xp, g, ws, op, z) : activated_columns(d, n0, gn, xp, g, ws, op, z, col);
      // dy of the group, C_out x G P (one sample: dy itself).
      Scalar const* dy_group = dyp + n0 * o * p;
      if (gn > 1) {
        for (long j = 0; j < gn; ++j)
          for (long oc = 0; oc < o; ++oc) {
            Scalar const* dr = dyp + ((n0 + j) * o + oc) * p;
            Scalar* gr = dyg + oc * gp + j * p;
            for (long i = 0; i < p; ++i)
              gr[i] = dr[i];
          }
        dy_group = dyg;
      }
      if (planes) {
        Scalar* copies = scratch + planes_at;
        detail::ShiftedPlanes::fill(d, cn, copies);
        detail::gemm_host_offset_rows(true, o, gp, k, dy_group, gp, static_cast<Scalar const*>(copies), offsets, gw, k);
      } else {
        detail::gemm_host(false, true, o, k, gp, Scalar(1), dy_group, gp, cn, gp, Scalar(1), gw, k);
      }
      // Bias gradients: Σ dy per channel (in double, vectorised).
      for (long j = 0; j < gn; ++j)
        detail::add_channel_sums(dyp + (n0 + j) * o * p, o, p, gw + o * k);
      if (adjoint) {
        // dz = the adjoint convolution: W flipped (C_in x C_out k_h k_w) times
        // dy's col, read from shifted copies of dy; no dcol, no col2im.
        Scalar* copies = scratch + planes_at;
        detail::ShiftedPlanes::fill(da, dy_group, copies);
        for (long i = 0; i < chw; ++i)
          dz[i] = Scalar(0);
        detail::gemm_host_offset_rows(false, c, hw, ka, static_cast<Scalar const*>(flipped), ka,
                                      static_cast<Scalar const*>(copies), adjoint_offsets, dz, hw);
      } else {
        // dcol = Wᵀ dy: for a 1x1 kernel dz of the group itself (C_in x G P), else into col.
        detail::gemm_host(true, false, k, gp, o, Scalar(1), w, k, dy_group, gp, Scalar(0), one ? dz : col, gp);
      }
      for (long j = 0; j < gn; ++j) {
        long const n = n0 + j;
        Scalar const* xn = xp + n * chw;
        // Sample j's z and dz: rows of stride ld (1x1: the group's matrices; else its own).
        Scalar const* zj = one ? z + j * p : z + j * chw;
        Scalar* dzj = dz;
        long ld = hw;
        if (one) {
          dzj = dz + j * p;
          ld = gp;
        } else if (!adjoint) {
          detail::col2im_masked(d, col + j * p, dz, gp);
        }
        // dt = ELU'(t) dz, t recomputed as forward made it; BatchNorm's channel sums.
        Scalar* dxn = dxp != nullptr ? dxp + n * chw : nullptr;
        for (long ch = 0; ch < c; ++ch) {
          Scalar const mean = ws[ch], inv = ws[c + ch];
          Scalar const a = g[ch] * inv, b0 = g[c + ch] - a * mean;
          Scalar const* xc = xn + ch * hw;
          Scalar const* zc = zj + ch * ld;
          Scalar* dc = dzj + ch * ld;
          elu_backward_channel(hw, a, b0, mean, xc, zc, dc, op, sums[ch], sums[c + ch]);
          if (dxn == nullptr) continue;
          Scalar* dxc = dxn + ch * hw;
          if (train) {
            for (long i = 0; i < hw; ++i)
              dxc[i] = dc[i];  // dt, finished after the channel sums are complete
          } else if (addend != nullptr) {
            Scalar const* adc = addend + n * chw + ch * hw;
            for (long i = 0; i < hw; ++i)
              dxc[i] = a * dc[i] + adc[i];
          } else {
            for (long i = 0; i < hw; ++i)
              dxc[i] = a * dc[i];
          }
        }
      }
    };
    // Parameter gradients: γ, β from the channel sums (as BatchNorm::backward), W, b from the partials.
    Scalar* dg = dparams.data();
    Scalar const* part = partial_.data();
    double const* sp = sums_.data();
    long const nb = 2 * c;
    // dx = a (dt − Σdt/m − (x − μ) Σdt(x − μ)/(σ m)), BatchNorm's training
    // formula, per (sample, channel), in the same parallel region as the
    // parameter gradients: each dx iteration sums its channel's per-thread
    // sums itself (the same sums in the same order as dβ, dγ), so it needs
    // nothing from the others (one fork/join less per layer).
    long const ndx = (dxp != nullptr && train) ? d.n * c : 0;
    // The W, b sums go in blocks of about a dx item's work (hw values), so
    // that an equal split of the items is an equal split of the work (one
    // item per parameter put nearly all of them on the first thread and the
    // dx items on the second).
    long const pb = std::max<long>(64, (hw + 7) / 8 * 8), npb = (npc + pb - 1) / pb, nitems = npb + c + ndx;
    auto const reduce_item = [=](long i) {
      if (i < npb) {
        long const q0 = i * pb, q1 = std::min(npc, q0 + pb);
        Scalar* out = dg + nb;
        // The same sums in the same order (0 + part₀ + part₁ ...), vectorised over q.
        for (long q = q0; q < q1; ++q)
          out[q] = Scalar(0) + part[q];
        for (long t = 1; t < nc; ++t)
          for (long q = q0; q < q1; ++q)
            out[q] += part[t * npc + q];
        return;
      }
      i -= npb;
      long const nch = i < c ? i : i - c, ch = nch % c;
      double s0 = 0, s1 = 0;
      for (long t = 0; t < nc; ++t) {
        s0 += sp[t * nb + ch];
        s1 += sp[t * nb + c + ch];
      }
      Scalar const inv = ws[c + ch], sdy = Scalar(s0), sdyx = Scalar(s1) * inv;
      if (i < c) {
        dg[ch] = sdyx;
        dg[c + ch] = sdy;
        return;
      }
      Scalar const mean = ws[ch], a = g[ch] * inv;
      Scalar const k0 = sdy / Scalar(m), k1 = sdyx * inv / Scalar(m);
      Scalar const* xc = xp + nch * hw;
      Scalar* dxc = dxp + nch * hw;
      if (addend != nullptr) {
        Scalar const* adc = addend + nch * hw;
        for (long q = 0; q < hw; ++q)
          dxc[q] = a * (dxc[q] - k0 - (xc[q] - mean) * k1) + adc[q];
      } else {
        for (long q = 0; q < hw; ++q)
          dxc[q] = a * (dxc[q] - k0 - (xc[q] - mean) * k1);
      }
    };
    // The chunks, then (once all partials are in) the sums, in one parallel region.
    for_each_chunk(
        space, "lensing::nn::PreactConv2D::backward", d.n, npc,
        [=](long rank, long size) {
          // W flipped for the adjoint convolution: (ci, oc, kh−1−ki, kw−1−kj) ← (oc, ci, ki, kj).
          if (!adjoint_on) return;
          long const kh = d.kh, kw = d.kw, kk = kh * kw;
          for (long ci = rank; ci < c; ci += size)
            for (long oc = 0; oc < o; ++oc)
              for (long t = 0; t < kk; ++t)
                flipped[ci * ka + oc * kk + (kk - 1 - t)] = w[(oc * c + ci) * kk + t];
        },
        chunk,
        [=](long rank, long size) {
          for (long i = nitems * rank / size, hi = nitems * (rank + 1) / size; i < hi; ++i)
            reduce_item(i);
        });
  }

  /// The GEMM's right operand for samples n0 .. n0 + gn − 1, as forward and
  /// backward both form it: each sample normalised (affine) and activated
  /// (elu) into z, then im2col into col (sample j's columns at j P, row stride
  /// G P); for a 1x1 convolution z is written in that layout and is the operand.
  static Scalar const* activated_columns(detail::ConvDims const& d, long n0, long gn, Scalar const* xp, Scalar const* g,
                                         Scalar const* ws, EluOp op, Scalar* z, Scalar* col) {
    long const p = d.oh * d.ow, chw = d.c * d.h * d.w;
    activated_inputs(d, n0, gn, xp, g, ws, op, z);
    if (d.pointwise()) return z;
    for (long j = 0; j < gn; ++j)
      detail::im2col_masked(d, static_cast<Scalar const*>(z + j * chw), col + j * p, gn * p);
    return col;
  }
  /// activated_columns without the im2col: z of the gn samples (for a 1x1
  /// kernel their col, C_in x G P; else one C_in x h x w block a sample); returns z.
  static Scalar const* activated_inputs(detail::ConvDims const& d, long n0, long gn, Scalar const* xp, Scalar const* g,
                                        Scalar const* ws, EluOp op, Scalar* z) {
    long const p = d.oh * d.ow, chw = d.c * d.h * d.w, hw = d.h * d.w, gp = gn * p;
    bool const one = d.pointwise();
    // Large maps: z = ELU(a x + b') in one pass per channel; small maps (a
    // few pixels a channel): the affine map per channel, then ELU over the
    // group in one loop (one vector remainder per group, not per channel).
    bool const fused = hw >= fused_elu_pixels;
    for (long j = 0; j < gn; ++j) {
      Scalar* zj = one ? z + j * p : z + j * chw;
      long const ld = one ? gp : hw;
      if (fused)
        affine<true>(d.c, hw, xp + (n0 + j) * chw, g, ws, op, zj, ld);
      else
        affine<false>(d.c, hw, xp + (n0 + j) * chw, g, ws, op, zj, ld);
    }
    if (!fused) elu(gn * chw, op, z);
    return z;
  }

  /// ELU(t) as the host loops form it.  Float: EluOp's formula with
  /// detail::expm1_nonpositive for expm1 (within 0.87 ulp of the exact value;
  /// the unfused ELU, glibc's vector expm1f, may differ in the last bit or
  /// two); double: EluOp::value.  Inline into the loops below, which vectorise it.
  static Scalar elu_value(EluOp const& op, Scalar t) {
    if constexpr (std::is_same<Scalar, float>::value) {
      float const e = float(op.alpha) * detail::expm1_nonpositive(math::select(t < 0.0f, t, 0.0f));
      return math::select(t > 0.0f, t, e);
    } else {
      return op.value(t);
    }
  }
  /// ELU'(t) given z = ELU(t), as EluOp::derivative (1 for t > 0, z + α
  /// otherwise), in the branch-free form the host loops vectorise (float).
  static Scalar elu_slope(EluOp const& op, Scalar t, Scalar z) {
    if constexpr (std::is_same<Scalar, float>::value)
      return math::select(t > 0.0f, 1.0f, z + float(op.alpha));
    else
      return op.derivative(t, z);
  }

  /// z = ELU(z) over len contiguous values: a group's z in one loop (one
  /// vector remainder per group, not one per channel: the small maps of the
  /// deep stages have 9–36 pixels).
  static LENSING_NN_PREACT_WIDE void elu(long len, EluOp op, Scalar* z) {
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
    for (long i = 0; i < len; ++i)
      z[i] = elu_value(op, z[i]);
  }

  /// z (c rows of hw, row stride ld ≥ hw) = a x + b' per channel, a and b'
  /// from γ, β and the statistics ws, as BatchNorm computes them; with Elu,
  /// z = ELU(a x + b') in the same pass (affine then elu, the same
  /// operations, without storing and reloading t).
  template <bool Elu>
  static LENSING_NN_PREACT_WIDE void affine(long c, long hw, Scalar const* x, Scalar const* g, Scalar const* ws,
                                            [[maybe_unused]] EluOp op, Scalar* z, long ld) {
    for (long ch = 0; ch < c; ++ch) {
      Scalar const mean = ws[ch], inv = ws[c + ch];
      Scalar const a = g[ch] * inv, b0 = g[c + ch] - a * mean;
      Scalar const* xc = x + ch * hw;
      Scalar* zc = z + ch * ld;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
      for (long i = 0; i < hw; ++i) {
        Scalar const t = a * xc[i] + b0;
        if constexpr (Elu)
          zc[i] = elu_value(op, t);
        else
          zc[i] = t;
      }
    }
  }

  /// One channel of the backward's per-sample pass: dc = ELU'(t) dc with t =
  /// a x + b' recomputed, and the channel sums Σ dc, Σ dc (x − μ) in double.
  static LENSING_NN_PREACT_WIDE void elu_backward_channel(long hw, Scalar a, Scalar b0, Scalar mean, Scalar const* xc,
                                                          Scalar const* zc, Scalar* dc, EluOp op, double& s0_out,
                                                          double& s1_out) {
    // Three loops of BatchNorm::backward's form, so each vectorises (one
    // loop with the double sums ran scalar).
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
    for (long i = 0; i < hw; ++i)
      dc[i] = elu_slope(op, a * xc[i] + b0, zc[i]) * dc[i];
    double s0 = 0, s1 = 0;
    LENSING_NN_SIMD_SUM(s0)
    for (long i = 0; i < hw; ++i)
      s0 += double(dc[i]);
    LENSING_NN_SIMD_SUM(s1)
    for (long i = 0; i < hw; ++i)
      s1 += double(dc[i] * (xc[i] - mean));
    s0_out += s0;
    s1_out += s1;
  }

  /// In one parallel region of the host threads of `space` (one team of up
  /// to space.concurrency() threads; Kokkos caps a host team at 64, so a
  /// host with more threads runs these passes on 64), three phases, each
  /// started when every thread has finished the one before (team
  /// barriers): before(rank, size);
  /// then body(n0, gn, scratch, g, sums) for every group of gn ≤ group_
  /// samples n0, …, n0 + gn − 1 of the batch, the batch split into
  /// chunk_count contiguous chunks, one a thread, each with its own scratch,
  /// partial conv gradient g (np, zeroed) and double channel sums (2 C_in,
  /// zeroed); then after(rank, size).  One fork/join for a layer's pass: the
  /// statistics before the forward's chunks and the sums after the
  /// backward's ran as regions of their own, and a fork/join costs 15–60 µs
  /// with passive waiting on the 2-core hosts (benchmarks/README.md), more
  /// than those phases' work in the deep stages.  Fences `space`.
  template <class ExecutionSpace, class Before, class Body, class After>
  void for_each_chunk(ExecutionSpace const& space, char const* name, long batch, long np, Before const& before,
                      Body const& body, After const& after) const {
    using policy_type = Kokkos::TeamPolicy<ExecutionSpace>;
    using member_type = typename policy_type::member_type;
    long const nc = chunk_count(space, batch);
    long const ss = scratch_size_, ns = 2 * long(bn_.channels()), gmax = group_;
    Scalar* sb = scratch_.data();
    Scalar* pb = partial_.data();
    double* qb = sums_.data();
    auto const region = [=](member_type const& member) {
      long const rank = member.team_rank(), size = member.team_size();
      before(rank, size);
      member.team_barrier();
      for (long t = rank; t < nc; t += size) {
        Scalar* gt = pb + t * np;
        double* qt = qb + t * ns;
        for (long i = 0; i < np; ++i)
          gt[i] = Scalar(0);
        for (long i = 0; i < ns; ++i)
          qt[i] = 0;
        long const hi = batch * (t + 1) / nc;
        for (long n = batch * t / nc; n < hi; n += gmax)
          body(n, std::min(gmax, hi - n), sb + t * ss, gt, qt);
      }
      member.team_barrier();
      after(rank, size);
    };
    int const most = policy_type(space, 1, 1).team_size_max(region, Kokkos::ParallelForTag());
    int const threads = std::max(1, std::min(int(space.concurrency()), most));
    Kokkos::parallel_for(name, policy_type(space, 1, threads), region);
    space.fence();
  }
  /// Chunks of a batch of `batch` samples on `space`: at most one a thread.
  template <class ExecutionSpace>
  long chunk_count(ExecutionSpace const& space, long batch) const {
    return std::min<long>({chunks_, batch, long(space.concurrency())});
  }

 private:
  /// The convolution whose adjoint d is, as a convolution of dy (unit
  /// stride, same width): C_out → C_in channels, the kernel flipped, padding
  /// (k − 1) d − p, output h x w.
  static detail::ConvDims adjoint_dims(detail::ConvDims const& d) {
    return detail::ConvDims{
        d.n,  d.o, d.oh, d.ow, d.c, d.h, d.w, d.kh, d.kw, 1, 1, (d.kh - 1) * d.dh - d.ph, (d.kw - 1) * d.dw - d.pw,
        d.dh, d.dw};
  }
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
  long chunks_ = 0, scratch_size_ = 0, group_ = 1;
  // Shifted copies of z for the GEMMs (prepare): on, where in a thread's scratch, col row offsets.
  bool planes_ = false, adjoint_ = false;  // adjoint_: dz by the adjoint convolution (unit stride)
  long planes_at_ = 0;
  // (Views, not std::vectors: nvcc compiles the layer's implicit copy as host and device code.)
  Kokkos::View<long*, Kokkos::HostSpace> plane_offsets_, adjoint_offsets_;
  View1D<Scalar, MemorySpace> flipped_;  // W flipped for the adjoint convolution
  // Columns a grouped GEMM aims at (G = group_columns / P samples).
  static constexpr long group_columns = 144;
  // Maps of at least this many pixels form z = ELU(a x + b') in one pass per channel.
  static constexpr long fused_elu_pixels = 64;
  View1D<Scalar, MemorySpace> scratch_, partial_;
  View1D<double, MemorySpace> sums_;
  // The unfused (device) path's stored tensors.
  tensor_type t_store_, z_store_, dz_store_, t_, z_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_PREACT_CONV2D_HPP
