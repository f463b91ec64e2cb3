#ifndef LENSING_NN_DETAIL_MASKED_ROWS_HPP
#define LENSING_NN_DETAIL_MASKED_ROWS_HPP

/// \file
/// im2col and col2im for the host convolutions of Conv2D and Conv2DReLUPool
/// on AVX-512 masked vectors (where the compiler targets AVX-512; elsewhere
/// they are detail::im2col / detail::col2im).  The same values: im2col's
/// copies and zeros, col2im's sums with the same terms in the same order.
///
/// Why: the maps of the Hezaveh-style CNN are 64 to 8 pixels wide, and the
/// per-row loops (a zero head, a copy, a zero tail: vector loops with scalar
/// remainders) ran far below the store rate — im2col was 14 % and col2im
/// 8 % of its training step.  A masked load reads only its enabled lanes
/// (the others are 0 and do not fault), so a zero-padded row span is one
/// load and one store; for a "same" convolution (unit stride, output rows as
/// long as the input's) a col row is the input plane read flat at a constant
/// shift, so whole planes go by vectors with the few wrapped columns fixed
/// after.

#include <lensing/nn/detail/im2col.hpp>

#include <algorithm>
#include <cstdint>
#include <type_traits>

// Not under nvcc (its front end parses the host code too, and the AVX-512
// intrinsic headers are not what it is checked with): the plain versions there.
#if defined(__AVX512F__) && !defined(__CUDA_ARCH__) && !defined(__CUDACC__)
#include <immintrin.h>
#define LENSING_NN_MASKED_ROWS 1
#endif

namespace lensing {
namespace nn {
namespace detail {

#ifdef LENSING_NN_MASKED_ROWS
/// float or double as 512-bit vectors with lane masks (host, AVX-512).
template <class Scalar>
struct MaskedRow;
template <>
struct MaskedRow<float> {
  static constexpr long lanes = 16;
  using V = __m512;
  using M = __mmask16;
  /// The lanes l with lo <= l < hi (any lo, hi; none when hi <= lo).
  static M span(long lo, long hi) {
    lo = std::max(lo, 0L);
    hi = std::min(hi, lanes);
    return hi <= lo ? M(0) : M(((1u << (hi - lo)) - 1u) << lo);
  }
  static V load(M m, float const* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(M m, float* p, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static V load_all(float const* p) { return _mm512_loadu_ps(p); }
  static void store_all(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V zero() { return _mm512_setzero_ps(); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static float sum(V a) { return _mm512_reduce_add_ps(a); }
};
template <>
struct MaskedRow<double> {
  static constexpr long lanes = 8;
  using V = __m512d;
  using M = __mmask8;
  static M span(long lo, long hi) {
    lo = std::max(lo, 0L);
    hi = std::min(hi, lanes);
    return hi <= lo ? M(0) : M(((1u << (hi - lo)) - 1u) << lo);
  }
  static V load(M m, double const* p) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(M m, double* p, V v) { _mm512_mask_storeu_pd(p, m, v); }
  static V load_all(double const* p) { return _mm512_loadu_pd(p); }
  static void store_all(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V zero() { return _mm512_setzero_pd(); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static double sum(V a) { return _mm512_reduce_add_pd(a); }
};

/// r[j] = 0 for a <= j < b by masked vector stores (GCC turns the plain loop
/// into a memset call: a call per row for one or two values).
template <class R, class Scalar>
void zero_span(Scalar* r, long a, long b) {
  for (long j0 = a; j0 < b; j0 += R::lanes)
    R::store(R::span(0, b - j0), r + j0, R::zero());
}

/// p + k as an address only: k may step outside the array where the lanes
/// that would read there are masked off (no pointer arithmetic outside it).
template <class Scalar>
Scalar const* shifted(Scalar const* p, long k) {
  return reinterpret_cast<Scalar const*>(reinterpret_cast<std::intptr_t>(p) + k * long(sizeof(Scalar)));
}
#endif

/// Whether the masked versions run for Scalar (float, double on AVX-512 hosts).
template <class Scalar>
constexpr bool has_masked_rows_v =
#ifdef LENSING_NN_MASKED_ROWS
    std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value;
#else
    false;
#endif

/// The output rows [i_lo, i_hi) of a unit-vertical-stride convolution whose
/// input row i − ph + ki·dh lies in [0, h).
inline void rows_inside(ConvDims const& d, long ki, long& i_lo, long& i_hi) {
  i_lo = std::min(d.oh, std::max(0L, d.ph - ki * d.dh));
  i_hi = std::max(i_lo, std::min(d.oh, d.h + d.ph - ki * d.dh));
}

/// detail::im2col(d, xs, col) (row stride P = oh·ow), the same values.
template <class Scalar>
void im2col_masked(ConvDims const& d, Scalar const* xs, Scalar* col) {
#ifdef LENSING_NN_MASKED_ROWS
  if constexpr (has_masked_rows_v<Scalar>) {
    using R = MaskedRow<Scalar>;
    constexpr long L = R::lanes;
    // Locals: a masked store may alias anything, d's fields would be reloaded.
    long const nc = d.c, h = d.h, w = d.w, oh = d.oh, ow = d.ow, kh = d.kh, kw = d.kw, ph = d.ph, pw = d.pw, dh = d.dh,
               dw = d.dw, sh = d.sh, p = oh * ow, hw = h * w;
    if (d.sh == 1 && d.sw == 1 && ow == w) {
      // Col row (c, ki, kj) = x_c read flat at the shift sft over its rows
      // [i_lo, i_hi) (zero outside), then the |off| columns per row that
      // wrapped into the neighbouring input row set to zero.
      for (long c = 0; c < nc; ++c)
        for (long ki = 0; ki < kh; ++ki) {
          long i_lo, i_hi;
          rows_inside(d, ki, i_lo, i_hi);
          for (long kj = 0; kj < kw; ++kj) {
            Scalar* row = col + ((c * kh + ki) * kw + kj) * p;
            Scalar const* xc = xs + c * hw;
            long const off = kj * dw - pw, sft = (ki * dh - ph) * w + off;
            long const lo = std::max(i_lo * ow, -sft), hi = std::min(i_hi * ow, hw - sft);
            // Full vectors inside [lo, hi) without masks; masks at the edges.
            for (long t0 = 0; t0 < p;) {
              if (t0 >= lo && t0 + L <= hi) {
                for (; t0 + L <= hi; t0 += L)
                  R::store_all(row + t0, R::load_all(xc + (t0 + sft)));
                continue;
              }
              auto const st = R::span(0, p - t0);
              R::store(st, row + t0, R::load(st & R::span(lo - t0, hi - t0), shifted(xc, t0 + sft)));
              t0 += L;
            }
            if (off != 0)
              for (long i = i_lo; i < i_hi; ++i) {
                Scalar* r = row + i * ow;
                zero_span<R>(r, 0, std::min(-off, ow));
                zero_span<R>(r, std::max(0L, w - off), ow);
              }
          }
        }
      return;
    }
    if (d.sw == 1) {
      // Per output row: lanes l of the vector at j0 take x[ih, j0 + l + off]
      // where that column lies in [0, w), else 0.
      for (long c = 0; c < nc; ++c)
        for (long ki = 0; ki < kh; ++ki)
          for (long kj = 0; kj < kw; ++kj) {
            Scalar* row = col + ((c * kh + ki) * kw + kj) * p;
            long const off = kj * dw - pw;
            for (long i = 0; i < oh; ++i) {
              long const ih = i * sh - ph + ki * dh;
              Scalar* r = row + i * ow;
              if (ih < 0 || ih >= h) {
                for (long j0 = 0; j0 < ow; j0 += L)
                  R::store(R::span(0, ow - j0), r + j0, R::zero());
                continue;
              }
              Scalar const* xr = xs + (c * h + ih) * w;
              for (long j0 = 0; j0 < ow; j0 += L) {
                auto const st = R::span(0, ow - j0);
                R::store(st, r + j0, R::load(st & R::span(-off - j0, w - off - j0), shifted(xr, j0 + off)));
              }
            }
          }
      return;
    }
  }
#endif
  im2col(d, xs, col);
}

/// detail::col2im(d, col, dxs) (row stride P = oh·ow): dxs overwritten with
/// the same sums (each element 0 + its terms in (ki, kj) order, as col2im
/// adds them; a masked-off lane adds +0, which changes no partial sum since
/// none starting from +0 is −0).  col is scratch: with same width and unit
/// stride its wrapped columns are set to zero first, so that each col row
/// reads flat at a constant shift.
template <class Scalar>
void col2im_masked(ConvDims const& d, Scalar* col, Scalar* dxs) {
#ifdef LENSING_NN_MASKED_ROWS
  if constexpr (has_masked_rows_v<Scalar>) {
    using R = MaskedRow<Scalar>;
    constexpr long L = R::lanes;
    long const nc = d.c, h = d.h, w = d.w, oh = d.oh, ow = d.ow, kh = d.kh, kw = d.kw, ph = d.ph, pw = d.pw, dh = d.dh,
               dw = d.dw, sh = d.sh, p = oh * ow, hw = h * w;
    if (d.sh == 1 && d.sw == 1 && ow == w) {
      for (long c = 0; c < nc; ++c) {
        for (long ki = 0; ki < kh; ++ki) {
          long i_lo, i_hi;
          rows_inside(d, ki, i_lo, i_hi);
          for (long kj = 0; kj < kw; ++kj) {
            long const off = kj * dw - pw;
            if (off == 0) continue;
            Scalar* row = col + ((c * kh + ki) * kw + kj) * p;
            for (long i = i_lo; i < i_hi; ++i) {
              Scalar* r = row + i * ow;
              zero_span<R>(r, 0, std::min(-off, ow));
              zero_span<R>(r, std::max(0L, w - off), ow);
            }
          }
        }
        // dx_c[t] = Σ_{ki,kj} row[t − sft] over the t whose row index lies in [i_lo, i_hi).
        Scalar* xc = dxs + c * hw;
        for (long t0 = 0; t0 < hw; t0 += L) {
          auto const st = R::span(0, hw - t0);
          auto acc = R::zero();
          for (long ki = 0; ki < kh; ++ki) {
            long i_lo, i_hi;
            rows_inside(d, ki, i_lo, i_hi);
            for (long kj = 0; kj < kw; ++kj) {
              long const sft = (ki * dh - ph) * w + kj * dw - pw;
              Scalar const* row = col + ((c * kh + ki) * kw + kj) * p;
              auto const m = st & R::span(i_lo * ow + sft - t0, i_hi * ow + sft - t0);
              acc = R::add(acc, R::load(m, shifted(row, t0 - sft)));
            }
          }
          R::store(st, xc + t0, acc);
        }
      }
      return;
    }
    if (d.sw == 1) {
      // Gathered per output vector: lanes take col[(c, ki, kj), i, iw + s]
      // for the rows i with i·sh = ih + ph − ki·dh, where iw + s lies in [0, ow).
      for (long c = 0; c < nc; ++c)
        for (long ih = 0; ih < h; ++ih) {
          Scalar* xr = dxs + (c * h + ih) * w;
          for (long w0 = 0; w0 < w; w0 += L) {
            auto const st = R::span(0, w - w0);
            auto acc = R::zero();
            for (long ki = 0; ki < kh; ++ki) {
              long const ti = ih + ph - ki * dh;
              if (ti < 0 || ti % sh != 0 || ti / sh >= oh) continue;
              Scalar const* rows = col + (c * kh + ki) * kw * p + ti / sh * ow;
              for (long kj = 0; kj < kw; ++kj) {
                long const s = pw - kj * dw;
                auto const m = st & R::span(-s - w0, ow - s - w0);
                acc = R::add(acc, R::load(m, shifted(rows + kj * p, w0 + s)));
              }
            }
            R::store(st, xr + w0, acc);
          }
        }
      return;
    }
  }
#endif
  col2im(d, static_cast<Scalar const*>(col), dxs);
}

}  // namespace detail
}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_DETAIL_MASKED_ROWS_HPP
