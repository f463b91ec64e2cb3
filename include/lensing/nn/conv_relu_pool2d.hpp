#ifndef LENSING_NN_CONV_RELU_POOL2D_HPP
#define LENSING_NN_CONV_RELU_POOL2D_HPP

#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/detail/masked_rows.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

// AVX2 hosts without AVX-512 (no lane masks): pool_row's and unpool_row's
// whole windows in vectors, the row's tail one window at a time.  Not under nvcc.
#if !defined(LENSING_NN_MASKED_ROWS) && defined(__AVX2__) && !defined(__CUDA_ARCH__) && !defined(__CUDACC__)
#include <immintrin.h>
#define LENSING_NN_POOL_AVX2 1
#endif

namespace lensing {
namespace nn {

#ifdef LENSING_NN_POOL_AVX2
namespace detail {
/// float or double windows of 2x2 pooling in AVX2 vectors (no lane masks):
/// W windows a step, each window's four values in 128-bit halves (pooling)
/// and its two columns of dz in a 256-bit vector (unpooling).
template <class Scalar>
struct PoolWindows;
template <>
struct PoolWindows<float> {
  static constexpr long W = 4;
  using H = __m128;   // one value per window
  using F = __m256;   // two per window (a row of dz)
  using I = __m256i;  // F's lanes as integers
  // The 2W values of a row from z: even columns in `even`, odd in `odd`.
  static void split(float const* z, H& even, H& odd) {
    F const r = _mm256_permutevar8x32_ps(_mm256_loadu_ps(z), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    even = _mm256_castps256_ps128(r);
    odd = _mm256_extractf128_ps(r, 1);
  }
  static H zero() { return _mm_setzero_ps(); }
  static H set1(float v) { return _mm_set1_ps(v); }
  static H max(H a, H b) { return _mm_max_ps(a, b); }
  static H greater(H a, H b) { return _mm_cmp_ps(a, b, _CMP_GT_OQ); }
  static H blend(H a, H b, H mask) { return _mm_blendv_ps(a, b, mask); }
  static void store(float* y, H v) { _mm_storeu_ps(y, v); }
  static __m128i to_int32(H t) { return _mm_cvttps_epi32(t); }
  // W dy values and W codes, each spread to its window's two columns.
  static F spread(float const* dy, std::uint8_t const* code, I& codes) {
    I const dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    std::int32_t c;
    std::memcpy(&c, code, W);
    codes = _mm256_permutevar8x32_epi32(_mm256_cvtepu8_epi32(_mm_cvtsi32_si128(c)), dup);
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(dy)), dup);
  }
  // The positions of a dz row's lanes in their windows: 2 row + column parity.
  static I positions(int row) {
    return _mm256_add_epi32(_mm256_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1), _mm256_set1_epi32(2 * row));
  }
  static void store_where(float* d, I codes, I position, F g) {
    _mm256_storeu_ps(d, _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(codes, position)), g));
  }
};
template <>
struct PoolWindows<double> {
  static constexpr long W = 2;
  using H = __m128d;
  using F = __m256d;
  using I = __m256i;
  static void split(double const* z, H& even, H& odd) {
    F const r = _mm256_permute4x64_pd(_mm256_loadu_pd(z), 0xD8);  // lanes (0, 2, 1, 3)
    even = _mm256_castpd256_pd128(r);
    odd = _mm256_extractf128_pd(r, 1);
  }
  static H zero() { return _mm_setzero_pd(); }
  static H set1(double v) { return _mm_set1_pd(v); }
  static H max(H a, H b) { return _mm_max_pd(a, b); }
  static H greater(H a, H b) { return _mm_cmp_pd(a, b, _CMP_GT_OQ); }
  static H blend(H a, H b, H mask) { return _mm_blendv_pd(a, b, mask); }
  static void store(double* y, H v) { _mm_storeu_pd(y, v); }
  static __m128i to_int32(H t) { return _mm_cvttpd_epi32(t); }  // in the low half
  static F spread(double const* dy, std::uint8_t const* code, I& codes) {
    std::uint16_t c;
    std::memcpy(&c, code, W);
    codes = _mm256_permute4x64_epi64(_mm256_cvtepu8_epi64(_mm_cvtsi32_si128(c)), 0x50);  // lanes (0, 0, 1, 1)
    return _mm256_permute4x64_pd(_mm256_castpd128_pd256(_mm_loadu_pd(dy)), 0x50);
  }
  static I positions(int row) { return _mm256_add_epi64(_mm256_setr_epi64x(0, 1, 0, 1), _mm256_set1_epi64x(2 * row)); }
  static void store_where(double* d, I codes, I position, F g) {
    _mm256_storeu_pd(d, _mm256_and_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(codes, position)), g));
  }
};
}  // namespace detail
#endif

/// Conv2D, ReLU and 2x2 max pooling (stride 2) fused into one layer: the
/// three layers `Conv2D(g)`, `ReLU`, `MaxPool2D(2)` run one after the other,
/// with the same parameters (Conv2D's: W (C_out, C_in, k_h, k_w) then b
/// (C_out)), the same initialisation and the same results.
///
/// y[n,o,i,j] = max_{p,q<2} ReLU(z[n,o,2i+p,2j+q]), z = conv(x; W, b) of
/// extent (oh, ow) as Conv2D's; output ⌊oh/2⌋ x ⌊ow/2⌋ (an odd last row or
/// column of z is dropped, as MaxPool2D drops it).  Backward routes dy to the
/// window's first maximum of ReLU(z) in scan order (MaxPool2D's rule, ties
/// included) when that maximum is > 0, and nowhere otherwise (ReLU' = 0).
///
/// Host: per sample, z = W col(x_n) + b goes into a per-thread buffer (C_out x
/// oh·ow, cache-resident for the maps of the Hezaveh-style CNN) and only the
/// pooled y and a byte per pooled value (which of the four positions took the
/// maximum, or none) are written: the full-resolution z, ReLU(z) and their
/// gradients never reach memory.  Backward rebuilds dz of a sample from dy and
/// those bytes in the same buffer, then runs Conv2D's GEMMs on it (the same
/// calls, so dx and the weight gradients equal Conv2D's given dz; the bias
/// gradients are summed from the pooled dy, a quarter of the reads, in
/// another order than Conv2D's sum over dz: they differ in rounding).  With
/// one input channel and unit stride (the first layer of an image network)
/// the weight gradient is computed directly from the zero-padded plane
/// (no im2col; the GEMM's shape there is poor), also equal up to rounding.  The
/// bytes are state of the last forward (as Dropout's mask): backward must
/// follow the forward of the same x.  Device spaces (or `direct = true`): z in
/// a full tensor by the direct convolution kernels, then the same pooling.
template <class Scalar, class MemorySpace>
class Conv2DReLUPool : public detail::ConvLayer<Conv2DReLUPool<Scalar, MemorySpace>, Scalar, MemorySpace> {
  using base = detail::ConvLayer<Conv2DReLUPool<Scalar, MemorySpace>, Scalar, MemorySpace>;
  using base::cin_;
  using base::cout_;
  using base::g_;
  using base::ws_;

 public:
  using typename base::Dims;
  using typename base::tensor_type;
  using typename base::vector_type;
  static constexpr char const* forward_where = "lensing::nn::Conv2DReLUPool::forward";
  static constexpr char const* backward_where = "lensing::nn::Conv2DReLUPool::backward";

  Conv2DReLUPool(int in_channels, int out_channels, Conv2DGeometry g, Init init = Init::he_normal, bool direct = false)
      : base(in_channels, out_channels, g, init, direct, "lensing::nn::Conv2DReLUPool") {
    this->params_ = vector_type("lensing::nn::Conv2DReLUPool::params", static_cast<long>(cout_) * ksize() + cout_);
  }
  /// Square kernel k, stride s, padding p, dilation d (the convolution's).
  Conv2DReLUPool(int in_channels, int out_channels, int k, int s = 1, int p = 0, int d = 1, Init init = Init::he_normal)
      : Conv2DReLUPool(in_channels, out_channels, Conv2DGeometry{k, k, s, s, p, p, d, d}, init) {}

  long ksize() const { return static_cast<long>(cin_) * g_.kh * g_.kw; }

  Shape4 output_shape(Shape4 const& in) const {
    char const* where = "lensing::nn::Conv2DReLUPool";
    this->check_input(in, where);
    int oh, ow;
    g_.output_hw(in.h, in.w, oh, ow, where);
    check_argument(oh >= 2 && ow >= 2, where,
                   "the convolution's output " + std::to_string(oh) + "x" + std::to_string(ow) +
                       " is smaller than the 2x2 pooling window");
    return Shape4{in.n, cout_, oh / 2, ow / 2};
  }

  /// As Conv2D::initialize (the same values for the same seed).
  void initialize(std::uint64_t seed) {
    this->initialize_weights(static_cast<long>(cout_) * ksize(), ksize(), static_cast<long>(cout_) * g_.kh * g_.kw,
                             seed);
  }

  void prepare(Shape4 const& in) {
    Shape4 const out = output_shape(in);
    int oh, ow;
    g_.output_hw(in.h, in.w, oh, ow, "lensing::nn::Conv2DReLUPool");
    // Per thread: col (K x oh·ow) then z, later dz (C_out x oh·ow).
    ws_.prepare(in, (ksize() + cout_) * oh * ow, this->num_params(), "lensing::nn::Conv2DReLUPool::col",
                "lensing::nn::Conv2DReLUPool::partial");
    ensure_mask(long(out.n) * out.c * out.h * out.w);
  }

  //--------------------------------------------------------------------------
  // Implementation (public for the device lambdas).

  /// The convolution's dims (z's extents, not y's).
  Dims dims(tensor_type const& x) const {
    int oh, ow;
    g_.output_hw(int(x.extent(2)), int(x.extent(3)), oh, ow, "lensing::nn::Conv2DReLUPool");
    return Dims{long(x.extent(0)),
                long(x.extent(1)),
                long(x.extent(2)),
                long(x.extent(3)),
                long(cout_),
                long(oh),
                long(ow),
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
  void forward_host(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    Dims const d = dims(x);
    long const k = ksize(), p = d.oh * d.ow, o = d.o, ow = d.ow, ph = d.oh / 2, pw = d.ow / 2, py = ph * pw;
    ensure_mask(d.n * o * py);
    bool const one = d.pointwise();
    Scalar const* w = this->params_.data();
    Scalar const* b = w + o * k;
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    std::uint8_t* mk = mask_.data();
    ws_.for_each_sample(space, forward_where, d.n, (k + o) * p, 0, [=](long n, Scalar* col, Scalar*) {
      Scalar* z = col + k * p;
      // z = b + W col: the fill and the GEMM of Conv2D::forward_host, into the buffer.
      for (long oc = 0; oc < o; ++oc)
        for (long i = 0; i < p; ++i)
          z[oc * p + i] = b[oc];
      Scalar const* cn = xp + n * d.c * d.h * d.w;
      if (!one) {
        detail::im2col_masked(d, cn, col);
        cn = col;
      }
      detail::gemm_host(false, false, o, p, k, Scalar(1), w, k, cn, p, Scalar(1), z, p);
      Scalar* yn = yp + n * o * py;
      std::uint8_t* mn = mk + n * o * py;
      for (long oc = 0; oc < o; ++oc)
        for (long i = 0; i < ph; ++i) {
          Scalar const* z0 = z + oc * p + 2 * i * ow;
          long const at = oc * py + i * pw;
          pool_row(z0, z0 + ow, yn + at, mn + at, pw);
        }
    });
  }

  template <class ExecutionSpace>
  void backward_host(ExecutionSpace const& space, tensor_type const& x, tensor_type const& dy, tensor_type const& dx,
                     vector_type const& dparams) const {
    Dims const d = dims(x);
    long const k = ksize(), p = d.oh * d.ow, o = d.o, oh = d.oh, ow = d.ow, ph = d.oh / 2, pw = d.ow / 2, py = ph * pw,
               np = this->num_params();
    bool const one = d.pointwise();
    bool const one_channel = direct_weight_grad(d);  // in rounding only, dW differs from the GEMM's
    Scalar const* w = this->params_.data();
    Scalar const* xp = x.data();
    Scalar const* dyp = dy.data();
    Scalar* dxp = dx.data();
    std::uint8_t const* mk = mask_.data();
    long const chunks =
        ws_.for_each_sample(space, backward_where, d.n, (k + o) * p, np, [=](long n, Scalar* col, Scalar* g) {
          Scalar* dz = col + k * p;
          Scalar const* dyn = dyp + n * o * py;
          std::uint8_t const* mn = mk + n * o * py;
          // dz of the sample: dy at the chosen position of each window, 0 elsewhere
          // (an odd last row or column of z included), each element written once.
          for (long oc = 0; oc < o; ++oc) {
            Scalar* zc = dz + oc * p;
            for (long i = 0; i < ph; ++i) {
              Scalar* d0 = zc + 2 * i * ow;
              Scalar* d1 = d0 + ow;
              long const at = oc * py + i * pw;
              unpool_row(d0, d1, dyn + at, mn + at, pw);
              for (long j = 2 * pw; j < ow; ++j) {
                d0[j] = Scalar(0);
                d1[j] = Scalar(0);
              }
            }
            for (long i = 2 * ph * ow; i < oh * ow; ++i)
              zc[i] = Scalar(0);
            // The bias gradient: Σ dz = Σ of the dy that pass, over the channel's
            // pooled plane at once (per row, the vector sum's reduction cost more
            // than the row on the 4- to 32-window rows).
            g[o * k + oc] += passed_sum(dyn + oc * py, mn + oc * py, py);
          }
          // Conv2D::backward_host's calls with dz for dy.
          Scalar const* xn = xp + n * d.c * d.h * d.w;
          if (one_channel) {
            weight_grad_one_channel(d, xn, dz, col, g);
          } else {
            Scalar const* cn = xn;
            if (!one) {
              detail::im2col_masked(d, xn, col);
              cn = col;
            }
            detail::gemm_host(false, true, o, k, p, Scalar(1), dz, p, cn, p, Scalar(1), g, k);
          }
          if (dxp == nullptr) return;
          Scalar* dxn = dxp + n * d.c * d.h * d.w;
          if (one) {
            detail::gemm_host(true, false, k, p, o, Scalar(1), w, k, dz, p, Scalar(0), dxn, p);
          } else {
            detail::gemm_host(true, false, k, p, o, Scalar(1), w, k, dz, p, Scalar(0), col, p);
            detail::col2im_masked(d, col, dxn);
          }
        });
    ws_.reduce(space, "lensing::nn::Conv2DReLUPool::reduce_partials", chunks, np, dparams.data());
  }

  template <class ExecutionSpace>
  void forward_direct(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    Dims const d = dims(x);
    long const ow = d.ow, ph = d.oh / 2, pw = d.ow / 2, py = ph * pw, plane = d.oh * d.ow;
    ensure_mask(d.n * d.o * py);
    if (long(z_.extent(0)) < d.n * d.o * plane)
      z_ = View1D<Scalar, MemorySpace>(
          Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string("lensing::nn::Conv2DReLUPool::z")),
          d.n * d.o * plane);
    Scalar const* w = this->params_.data();
    Scalar* zp = z_.data();
    detail::conv_direct(space, "lensing::nn::Conv2DReLUPool::forward_direct", d, w, w + d.o * ksize(), x.data(), zp);
    Scalar* yp = y.data();
    std::uint8_t* mk = mask_.data();
    Kokkos::parallel_for(
        "lensing::nn::Conv2DReLUPool::pool",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, d.n * d.o * py), KOKKOS_LAMBDA(long r) {
          long const pl = r / py, i = (r % py) / pw, j = r % pw;
          Scalar const* z0 = zp + pl * plane + 2 * i * ow + 2 * j;
          pool_one(z0[0], z0[1], z0[ow], z0[ow + 1], yp[r], mk[r]);
        });
  }

  template <class ExecutionSpace>
  void backward_direct(ExecutionSpace const& space, tensor_type const& x, tensor_type const& dy, tensor_type const& dx,
                       vector_type const& dparams) {
    Dims const d = dims(x);
    long const ow = d.ow, ph = d.oh / 2, pw = d.ow / 2, py = ph * pw, plane = d.oh * d.ow;
    if (long(z_.extent(0)) < d.n * d.o * plane)
      z_ = View1D<Scalar, MemorySpace>(
          Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string("lensing::nn::Conv2DReLUPool::z")),
          d.n * d.o * plane);
    Scalar* dz = z_.data();
    Scalar const* dyp = dy.data();
    std::uint8_t const* mk = mask_.data();
    Kokkos::parallel_for(
        "lensing::nn::Conv2DReLUPool::unpool",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, d.n * d.o * plane),
        KOKKOS_LAMBDA(long r) {
          long const pl = r / plane, i = (r % plane) / ow, j = r % ow, pi = i / 2, pj = j / 2;
          Scalar v = Scalar(0);
          if (pi < ph && pj < pw) {
            long const at = pl * py + pi * pw + pj;
            v = int(mk[at]) == int(2 * (i % 2) + j % 2) ? dyp[at] : Scalar(0);
          }
          dz[r] = v;
        });
    Scalar const* w = this->params_.data();
    Scalar* gp = dparams.data();
    detail::conv_weight_grad_direct(space, "lensing::nn::Conv2DReLUPool::backward_weights_direct", d, x.data(),
                                    static_cast<Scalar const*>(dz), gp);
    detail::channel_sums(space, "lensing::nn::Conv2DReLUPool::backward_bias_direct", static_cast<Scalar const*>(dz),
                         d.n, d.o, plane, gp + d.o * ksize());
    if (dx.data() != nullptr)
      detail::conv_adjoint_direct(space, "lensing::nn::Conv2DReLUPool::backward_input_direct", d, w,
                                  static_cast<Scalar const*>(nullptr), static_cast<Scalar const*>(dz), dx.data());
  }

  /// Whether the host backward computes the weight gradient directly
  /// (weight_grad_one_channel) rather than by im2col + GEMM: one input
  /// channel (the first layer of an image network), unit stride and
  /// dilation, a kernel of 2 to 16 columns  There the GEMM is C_out x K with
  /// an inner dimension oh·ow (16 x 25, inner 4096 for the Hezaveh-style CNN's
  /// first layer: 36 GFLOP/s, a third of the kernel's rate) after an im2col
  /// of K·oh·ow values.
  static bool direct_weight_grad(Dims const& d) {
    // ... and the padded plane and the partial sums fit in the col buffer.
    return d.c == 1 && d.sh == 1 && d.sw == 1 && d.dh == 1 && d.dw == 1 && d.kw >= 2 && d.kw <= 16 &&
           (d.h + 2 * d.ph) * (d.w + 2 * d.pw) <= d.kh * d.kw * d.oh * d.ow;
  }

  /// g[oc, p, q] += Σ_{i,j} dz[oc, i, j] xpad[i + p, j + q] for one sample of
  /// one input channel (x zero-padded into buf first: ≤ K·oh·ow values, see
  /// direct_weight_grad).
  static void weight_grad_one_channel(Dims const& d, Scalar const* xn, Scalar const* dz, Scalar* buf, Scalar* g) {
    long const oh = d.oh, ow = d.ow, kh = d.kh, kw = d.kw, h2 = d.h + 2 * d.ph, w2 = d.w + 2 * d.pw, p = oh * ow;
    Scalar* xpad = buf;
    for (long r = 0; r < h2; ++r) {
      long const sr = r - d.ph;
      for (long c = 0; c < w2; ++c) {
        long const sc = c - d.pw;
        xpad[r * w2 + c] = sr >= 0 && sr < d.h && sc >= 0 && sc < d.w ? xn[sr * d.w + sc] : Scalar(0);
      }
    }
#ifdef LENSING_NN_MASKED_ROWS
    if constexpr (detail::has_masked_rows_v<Scalar>) {
      // Register blocks of 4 output channels x up to 5 kernel columns (20
      // vector sums, independent chains: the loop is bound by FMA throughput,
      // not latency); each row's x vectors serve the 4 channels and each dz
      // vector the 5 columns.  Before: one sum chain per (oc, p, q), bound
      // by the FMA's latency (≈ 11 % of the training step).
      for (long oc = 0; oc < d.o; oc += 4)
        for (long pp = 0; pp < kh; ++pp)
          for (long q0 = 0; q0 < kw; q0 += 5) {
            long const nq = std::min(5L, kw - q0);
            Scalar const* xc = xpad + pp * w2 + q0;
            Scalar const* dzc = dz + oc * p;
            Scalar* gc = g + (oc * kh + pp) * kw + q0;
            long const gs = kh * kw;  // next output channel in g
            if (d.o - oc >= 4) {
              switch (nq) {
                case 5:
                  weight_grad_block<4, 5>(dzc, p, oh, ow, xc, w2, gc, gs);
                  break;
                case 4:
                  weight_grad_block<4, 4>(dzc, p, oh, ow, xc, w2, gc, gs);
                  break;
                case 3:
                  weight_grad_block<4, 3>(dzc, p, oh, ow, xc, w2, gc, gs);
                  break;
                case 2:
                  weight_grad_block<4, 2>(dzc, p, oh, ow, xc, w2, gc, gs);
                  break;
                default:
                  weight_grad_block<4, 1>(dzc, p, oh, ow, xc, w2, gc, gs);
                  break;
              }
            } else {
              for (long a = 0; a < d.o - oc; ++a) {
                switch (nq) {
                  case 5:
                    weight_grad_block<1, 5>(dzc + a * p, p, oh, ow, xc, w2, gc + a * gs, gs);
                    break;
                  case 4:
                    weight_grad_block<1, 4>(dzc + a * p, p, oh, ow, xc, w2, gc + a * gs, gs);
                    break;
                  case 3:
                    weight_grad_block<1, 3>(dzc + a * p, p, oh, ow, xc, w2, gc + a * gs, gs);
                    break;
                  case 2:
                    weight_grad_block<1, 2>(dzc + a * p, p, oh, ow, xc, w2, gc + a * gs, gs);
                    break;
                  default:
                    weight_grad_block<1, 1>(dzc + a * p, p, oh, ow, xc, w2, gc + a * gs, gs);
                    break;
                }
              }
            }
          }
      return;
    }
#endif
    // Per (oc, p, q): 16 columns at a time, their partial sums kept in
    // registers over all rows i (an array of constant length that GCC
    // vectorises), then reduced; the columns past the last multiple of 16
    // one at a time.
    constexpr long vl = 16;
    long const jv = ow / vl * vl;
    for (long oc = 0; oc < d.o; ++oc)
      for (long pp = 0; pp < kh; ++pp)
        for (long qq = 0; qq < kw; ++qq) {
          Scalar const* dzc = dz + oc * p;
          Scalar const* xc = xpad + pp * w2 + qq;
          Scalar total = Scalar(0);
          for (long j0 = 0; j0 < jv; j0 += vl) {
            Scalar acc[vl] = {};
            for (long i = 0; i < oh; ++i) {
              Scalar const* a = dzc + i * ow + j0;
              Scalar const* b = xc + i * w2 + j0;
              for (long jj = 0; jj < vl; ++jj)
                acc[jj] += a[jj] * b[jj];
            }
            for (long jj = 0; jj < vl; ++jj)
              total += acc[jj];
          }
          for (long j = jv; j < ow; ++j)
            for (long i = 0; i < oh; ++i)
              total += dzc[i * ow + j] * xc[i * w2 + j];
          g[(oc * kh + pp) * kw + qq] += total;
        }
  }

#ifdef LENSING_NN_MASKED_ROWS
  /// g[a·gs + q] += Σ_{i<oh, j<ow} dz[a·p + i·ow + j] xc[i·w2 + j + q] for a < A,
  /// q < NQ (one block of weight_grad_one_channel; xc: the padded plane at
  /// the block's kernel row and first column, w2 its row length ≥ ow + NQ − 1).
  template <int A, int NQ>
  static void weight_grad_block(Scalar const* dz, long p, long oh, long ow, Scalar const* xc, long w2, Scalar* g,
                                long gs) {
    using R = detail::MaskedRow<Scalar>;
    constexpr long L = R::lanes;
    typename R::V acc[A][NQ];
    for (int a = 0; a < A; ++a)
      for (int q = 0; q < NQ; ++q)
        acc[a][q] = R::zero();
    for (long i = 0; i < oh; ++i) {
      Scalar const* xr = xc + i * w2;
      Scalar const* dr = dz + i * ow;
      for (long j0 = 0; j0 < ow; j0 += L) {
        auto const m = R::span(0, ow - j0);  // masked-off lanes load 0 from both
        typename R::V xv[NQ];
        for (int q = 0; q < NQ; ++q)
          xv[q] = R::load(m, xr + j0 + q);
        for (int a = 0; a < A; ++a) {
          auto const dv = R::load(m, dr + a * p + j0);
          for (int q = 0; q < NQ; ++q)
            acc[a][q] = R::fma(dv, xv[q], acc[a][q]);
        }
      }
    }
    for (int a = 0; a < A; ++a)
      for (int q = 0; q < NQ; ++q)
        g[a * gs + q] += R::sum(acc[a][q]);
  }
#endif

  // The host loops over a row of windows, as functions of restrict pointers:
  // GCC vectorises them so (with `omp simd` instead it gave up: "control
  // flow", "no vectype"), the selects then run on vectors.  The position is
  // carried as a Scalar for the same reason.
  /// pool_one over the windows of rows z0, z1 (2 pw values each).
  static void pool_row(Scalar const* __restrict z0, Scalar const* __restrict z1, Scalar* __restrict y,
                       std::uint8_t* __restrict code, long pw) {
#if defined(LENSING_NN_MASKED_ROWS) && defined(__AVX512BW__) && defined(__AVX512VL__)
    if constexpr (detail::has_masked_rows_v<Scalar>) {
      // L/2 windows a step (the short rows ran one window at a time, as in
      // unpool_row): the four positions split from two rows by even/odd lane
      // permutes, then the selects below on vectors, in the same order with
      // the same comparisons — the same y and codes.
      using R = detail::MaskedRow<Scalar>;
      using V = typename R::V;
      constexpr long L = R::lanes, H = L / 2;
      for (long j0 = 0; j0 < pw; j0 += H) {
        long const nw = std::min(H, pw - j0);
        auto const ld = R::span(0, 2 * nw);
        V const r0 = R::load(ld, z0 + 2 * j0), r1 = R::load(ld, z1 + 2 * j0);
        V a, b, c, e, m;
        __m128i bytes;
        if constexpr (std::is_same<Scalar, float>::value) {
          __m512i const ev = _mm512_set_epi32(14, 12, 10, 8, 6, 4, 2, 0, 14, 12, 10, 8, 6, 4, 2, 0);
          __m512i const od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
          V const zero = _mm512_setzero_ps();
          auto relu = [&](V v) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v); };
          a = relu(_mm512_permutexvar_ps(ev, r0));
          b = relu(_mm512_permutexvar_ps(od, r0));
          c = relu(_mm512_permutexvar_ps(ev, r1));
          e = relu(_mm512_permutexvar_ps(od, r1));
          __m512i t = _mm512_setzero_si512();
          m = a;
          __mmask16 k = _mm512_cmp_ps_mask(b, m, _CMP_GT_OQ);
          t = _mm512_mask_mov_epi32(t, k, _mm512_set1_epi32(1));
          m = _mm512_mask_mov_ps(m, k, b);
          k = _mm512_cmp_ps_mask(c, m, _CMP_GT_OQ);
          t = _mm512_mask_mov_epi32(t, k, _mm512_set1_epi32(2));
          m = _mm512_mask_mov_ps(m, k, c);
          k = _mm512_cmp_ps_mask(e, m, _CMP_GT_OQ);
          t = _mm512_mask_mov_epi32(t, k, _mm512_set1_epi32(3));
          m = _mm512_mask_mov_ps(m, k, e);
          t = _mm512_mask_mov_epi32(_mm512_set1_epi32(4), _mm512_cmp_ps_mask(m, zero, _CMP_GT_OQ), t);
          bytes = _mm512_cvtepi32_epi8(t);
        } else {
          __m512i const ev = _mm512_set_epi64(6, 4, 2, 0, 6, 4, 2, 0);
          __m512i const od = _mm512_add_epi64(ev, _mm512_set1_epi64(1));
          V const zero = _mm512_setzero_pd();
          auto relu = [&](V v) { return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(v, zero, _CMP_GT_OQ), v); };
          a = relu(_mm512_permutexvar_pd(ev, r0));
          b = relu(_mm512_permutexvar_pd(od, r0));
          c = relu(_mm512_permutexvar_pd(ev, r1));
          e = relu(_mm512_permutexvar_pd(od, r1));
          __m512i t = _mm512_setzero_si512();
          m = a;
          __mmask8 k = _mm512_cmp_pd_mask(b, m, _CMP_GT_OQ);
          t = _mm512_mask_mov_epi64(t, k, _mm512_set1_epi64(1));
          m = _mm512_mask_mov_pd(m, k, b);
          k = _mm512_cmp_pd_mask(c, m, _CMP_GT_OQ);
          t = _mm512_mask_mov_epi64(t, k, _mm512_set1_epi64(2));
          m = _mm512_mask_mov_pd(m, k, c);
          k = _mm512_cmp_pd_mask(e, m, _CMP_GT_OQ);
          t = _mm512_mask_mov_epi64(t, k, _mm512_set1_epi64(3));
          m = _mm512_mask_mov_pd(m, k, e);
          t = _mm512_mask_mov_epi64(_mm512_set1_epi64(4), _mm512_cmp_pd_mask(m, zero, _CMP_GT_OQ), t);
          bytes = _mm512_cvtepi64_epi8(t);
        }
        R::store(R::span(0, nw), y + j0, m);
        _mm_mask_storeu_epi8(code + j0, __mmask16((1u << nw) - 1u), bytes);
      }
      return;
    }
#endif
    long j = 0;
#ifdef LENSING_NN_POOL_AVX2
    // 4 (float) or 2 (double) windows a step, the four positions split from
    // two rows by an even/odd permute; ReLU as max(v, 0) (maxps returns its
    // second operand unless v > 0: NaN and -0 give +0, as ReluOp) and the
    // selects below as blends on the same comparisons — the same y and codes.
    if constexpr (std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value) {
      using P = detail::PoolWindows<Scalar>;
      using H = typename P::H;
      H const zero = P::zero();
      for (; j + P::W <= pw; j += P::W) {
        H a, b, c, e;
        P::split(z0 + 2 * j, a, b);
        P::split(z1 + 2 * j, c, e);
        a = P::max(a, zero);
        b = P::max(b, zero);
        c = P::max(c, zero);
        e = P::max(e, zero);
        H m = a, t = zero, g = P::greater(b, m);
        t = P::blend(t, P::set1(1), g);
        m = P::blend(m, b, g);
        g = P::greater(c, m);
        t = P::blend(t, P::set1(2), g);
        m = P::blend(m, c, g);
        g = P::greater(e, m);
        t = P::blend(t, P::set1(3), g);
        m = P::blend(m, e, g);
        P::store(y + j, m);
        __m128i const i32 = P::to_int32(P::blend(P::set1(4), t, P::greater(m, zero)));
        std::int32_t const bytes = _mm_cvtsi128_si32(_mm_packus_epi16(_mm_packus_epi32(i32, i32), i32));
        std::memcpy(code + j, &bytes, P::W);  // the low W bytes: the W codes
      }
    }
#endif
    for (; j < pw; ++j) {
      Scalar a = z0[2 * j], b = z0[2 * j + 1], c = z1[2 * j], e = z1[2 * j + 1];
      a = a > Scalar(0) ? a : Scalar(0);  // ReluOp::value
      b = b > Scalar(0) ? b : Scalar(0);
      c = c > Scalar(0) ? c : Scalar(0);
      e = e > Scalar(0) ? e : Scalar(0);
      Scalar t = Scalar(0), m = a;  // MaxPool2D's selects
      t = b > m ? Scalar(1) : t;
      m = b > m ? b : m;
      t = c > m ? Scalar(2) : t;
      m = c > m ? c : m;
      t = e > m ? Scalar(3) : t;
      m = e > m ? e : m;
      y[j] = m;
      code[j] = std::uint8_t(int(m > Scalar(0) ? t : Scalar(4)));
    }
  }
  /// dz of rows d0, d1 (2 pw values each) from dy and the codes.
  static void unpool_row(Scalar* __restrict d0, Scalar* __restrict d1, Scalar const* __restrict dy,
                         std::uint8_t const* __restrict code, long pw) {
#if defined(LENSING_NN_MASKED_ROWS) && defined(__AVX512BW__) && defined(__AVX512VL__)
    if constexpr (detail::has_masked_rows_v<Scalar>) {
      // GCC's vector loop needs 8-16 windows and the CNN's rows have 4-32:
      // the short ones ran one window at a time.  Here L/2 windows a step:
      // dy and the codes loaded (masked), each spread to the window's two
      // columns, and a lane of row r keeps dy where the code equals its
      // position 2r + (column parity), 0 elsewhere — the same values.
      using R = detail::MaskedRow<Scalar>;
      constexpr long L = R::lanes, H = L / 2;
      for (long j0 = 0; j0 < pw; j0 += H) {
        long const nw = std::min(H, pw - j0);
        auto const st = R::span(0, 2 * nw);
        auto const g = R::load(R::span(0, nw), dy + j0);
        __m128i const cb = _mm_maskz_loadu_epi8(__mmask16((1u << nw) - 1u), code + j0);
        if constexpr (std::is_same<Scalar, float>::value) {
          __m512i const dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
          __m512 const gd = _mm512_permutexvar_ps(dup, g);
          __m512i const cd = _mm512_permutexvar_epi32(dup, _mm512_cvtepu8_epi32(cb));
          __m512i const t0 = _mm512_set_epi32(1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0);
          __m512i const t1 = _mm512_add_epi32(t0, _mm512_set1_epi32(2));
          R::store(st, d0 + 2 * j0, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(cd, t0), gd));
          R::store(st, d1 + 2 * j0, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(cd, t1), gd));
        } else {
          __m512i const dup = _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0);
          __m512d const gd = _mm512_permutexvar_pd(dup, g);
          __m512i const cd = _mm512_permutexvar_epi64(dup, _mm512_cvtepu8_epi64(cb));
          __m512i const t0 = _mm512_set_epi64(1, 0, 1, 0, 1, 0, 1, 0);
          __m512i const t1 = _mm512_add_epi64(t0, _mm512_set1_epi64(2));
          R::store(st, d0 + 2 * j0, _mm512_maskz_mov_pd(_mm512_cmpeq_epi64_mask(cd, t0), gd));
          R::store(st, d1 + 2 * j0, _mm512_maskz_mov_pd(_mm512_cmpeq_epi64_mask(cd, t1), gd));
        }
      }
      return;
    }
#endif
    long j = 0;
#ifdef LENSING_NN_POOL_AVX2
    // The CNN's rows have 4-32 windows, too short for GCC's vector loop: here
    // 4 (float) or 2 (double) windows a step, dy and the codes each spread to
    // the window's two columns, and a lane of row r keeps dy where the code
    // equals its position 2r + (column parity), +0 elsewhere (an AND with the
    // comparison's mask) — the same values as the loop below.
    if constexpr (std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value) {
      using P = detail::PoolWindows<Scalar>;
      typename P::I const row0 = P::positions(0), row1 = P::positions(1);
      for (; j + P::W <= pw; j += P::W) {
        typename P::I codes;
        typename P::F const g = P::spread(dy + j, code + j, codes);
        P::store_where(d0 + 2 * j, codes, row0, g);
        P::store_where(d1 + 2 * j, codes, row1, g);
      }
    }
#endif
    for (; j < pw; ++j) {
      Scalar const t = Scalar(code[j]);
      Scalar const gv = dy[j];
      d0[2 * j] = t == Scalar(0) ? gv : Scalar(0);
      d0[2 * j + 1] = t == Scalar(1) ? gv : Scalar(0);
      d1[2 * j] = t == Scalar(2) ? gv : Scalar(0);
      d1[2 * j + 1] = t == Scalar(3) ? gv : Scalar(0);
    }
  }
  /// Σ of the dy[r], r < n, whose code says they pass (code < 4).
  static Scalar passed_sum(Scalar const* __restrict dy, std::uint8_t const* __restrict code, long n) {
    Scalar sb = Scalar(0);
    LENSING_NN_SIMD_SUM(sb)
    for (long r = 0; r < n; ++r)
      sb += code[r] < 4 ? dy[r] : Scalar(0);
    return sb;
  }

  /// One window: y = the max of ReLU of the four values (MaxPool2D's selects:
  /// the first maximum in scan order wins ties), code = its position 0..3
  /// when y > 0, else 4 (ReLU' = 0 there: no gradient).
  KOKKOS_INLINE_FUNCTION static void pool_one(Scalar a, Scalar b, Scalar c, Scalar e, Scalar& y, std::uint8_t& code) {
    a = a > Scalar(0) ? a : Scalar(0);  // ReluOp::value
    b = b > Scalar(0) ? b : Scalar(0);
    c = c > Scalar(0) ? c : Scalar(0);
    e = e > Scalar(0) ? e : Scalar(0);
    Scalar t = Scalar(0);
    Scalar m = a;
    t = b > m ? Scalar(1) : t;
    m = b > m ? b : m;
    t = c > m ? Scalar(2) : t;
    m = c > m ? c : m;
    t = e > m ? Scalar(3) : t;
    m = e > m ? e : m;
    y = m;
    code = std::uint8_t(int(m > Scalar(0) ? t : Scalar(4)));
  }

 private:
  void ensure_mask(long size) {
    if (long(mask_.extent(0)) < size)
      mask_ = Kokkos::View<std::uint8_t*, MemorySpace>(
          Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string("lensing::nn::Conv2DReLUPool::mask")), size);
  }

  Kokkos::View<std::uint8_t*, MemorySpace> mask_;  // per pooled value: its window's chosen position, or 4
  View1D<Scalar, MemorySpace> z_;                  // the direct path's z, then dz
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_CONV_RELU_POOL2D_HPP
