#ifndef LENSING_NN_DETAIL_MASKED_ROWS_HPP
#define LENSING_NN_DETAIL_MASKED_ROWS_HPP

/// \file
/// im2col and col2im for the host convolutions of Conv2D, Conv2DReLUPool and
/// PreactConv2D: the same values as detail::im2col / detail::col2im (im2col's
/// copies and zeros, col2im's sums with the same terms in the same order), on
/// AVX-512 masked vectors where the compiler targets AVX-512, elsewhere
/// (other hosts, nvcc) the portable loops below and detail::im2col / col2im
/// (same-width planes above a few hundred pixels take the portable flat loops
/// on AVX-512 hosts too: faster there, masked_im2col_max_pixels).
///
/// Why: the maps of the Hezaveh-style CNN and of the ResNet are 64 to 8
/// pixels wide, and the per-row loops (a zero head, a copy, a zero tail:
/// vector loops with scalar remainders) ran far below the store rate —
/// im2col was 14 % and col2im 8 % of the CNN's training step.  For a "same"
/// convolution (unit stride, output rows as long as the input's) a col row is
/// the input plane read flat at a constant shift, so whole planes go by one
/// copy (one sum for col2im) with the few wrapped columns fixed after.  A
/// masked load reads only its enabled lanes (the others are 0 and do not
/// fault), so a zero-padded row span is one load and one store.

#include <lensing/nn/detail/im2col.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
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

/// Whether a convolution has unit stride and output rows as long as its
/// input's (a "same" convolution: 3x3 pad 1, …): then each row of its col is
/// the input plane read flat at a constant shift.
inline bool same_width_unit_stride(ConvDims const& d) { return d.sh == 1 && d.sw == 1 && d.ow == d.w; }

/// The output rows [i_lo, i_hi) of a unit-vertical-stride convolution whose
/// input row i − ph + ki·dh lies in [0, h).
inline void rows_inside(ConvDims const& d, long ki, long& i_lo, long& i_hi) {
  i_lo = std::min(d.oh, std::max(0L, d.ph - ki * d.dh));
  i_hi = std::max(i_lo, std::min(d.oh, d.h + d.ph - ki * d.dh));
}

/// im2col_masked's same_width_unit_stride case without vectors (the hosts
/// and scalars without masked rows; row stride ldcol): a col row's valid part
/// is x_c[t + shift] over one contiguous range of t = i·ow + j, so it is one
/// copy, then the |off| columns per output row that wrapped into the
/// neighbouring input row set to zero.
template <class Scalar>
void im2col_same_portable(ConvDims const& d, Scalar const* xs, Scalar* col, long ldcol) {
  long const ow = d.ow, pp = d.oh * d.ow, hw = d.h * d.w;
  for (long c = 0; c < d.c; ++c)
    for (long ki = 0; ki < d.kh; ++ki) {
      long i0, i1;
      rows_inside(d, ki, i0, i1);
      for (long kj = 0; kj < d.kw; ++kj) {
        Scalar* row = col + ((c * d.kh + ki) * d.kw + kj) * ldcol;
        long const off = kj * d.dw - d.pw;
        long lo, hi;
        valid_columns(ow, 1, off, d.w, lo, hi);
        if (i0 == i1 || lo == hi) {
          std::fill(row, row + pp, Scalar(0));
          continue;
        }
        // row[t] = x_c[t + shift] for t in [a, b), the rest zero.
        long const a = i0 * ow + lo, b = (i1 - 1) * ow + hi;
        long const shift = (ki * d.dh - d.ph) * d.w + off;
        std::fill(row, row + a, Scalar(0));
        std::copy(xs + c * hw + (a + shift), xs + c * hw + (b + shift), row + a);
        std::fill(row + b, row + pp, Scalar(0));
        for (long i = i0; i < i1; ++i) {
          Scalar* r = row + i * ow;
          for (long j = 0; j < lo; ++j)
            r[j] = Scalar(0);
          for (long j = hi; j < ow; ++j)
            r[j] = Scalar(0);
        }
      }
    }
}

/// col2im_masked's same_width_unit_stride case without vectors (row stride
/// ldcol; dxs overwritten, col scratch): the wrapped columns of each col row
/// (those im2col_same_portable sets to zero) are overwritten with zeros, then
/// the row is added to dxs in one contiguous loop.  Each dxs element receives
/// the same terms in the same order as col2im's (rows c, ki, kj; one term per
/// row), plus exact zeros.
template <class Scalar>
void col2im_same_portable(ConvDims const& d, Scalar* col, Scalar* dxs, long ldcol) {
  long const ow = d.ow, hw = d.h * d.w;
  for (long i = 0; i < d.c * hw; ++i)
    dxs[i] = Scalar(0);
  for (long c = 0; c < d.c; ++c)
    for (long ki = 0; ki < d.kh; ++ki) {
      long i0, i1;
      rows_inside(d, ki, i0, i1);
      if (i0 == i1) continue;
      for (long kj = 0; kj < d.kw; ++kj) {
        Scalar* row = col + ((c * d.kh + ki) * d.kw + kj) * ldcol;
        long const off = kj * d.dw - d.pw;
        long lo, hi;
        valid_columns(ow, 1, off, d.w, lo, hi);
        if (lo == hi) continue;
        for (long i = i0; i < i1; ++i) {
          Scalar* r = row + i * ow;
          for (long j = 0; j < lo; ++j)
            r[j] = Scalar(0);
          for (long j = hi; j < ow; ++j)
            r[j] = Scalar(0);
        }
        // x_c[t + shift] += row[t] for t in [a, b): im2col_same_portable's indices.
        long const a = i0 * ow + lo, b = (i1 - 1) * ow + hi;
        Scalar* xc = dxs + c * hw + (a + (ki * d.dh - d.ph) * d.w + off);
        Scalar const* rc = row + a;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
        for (long t = 0; t < b - a; ++t)
          xc[t] += rc[t];
      }
    }
}

/// A "same" convolution's col without forming it (host GEMMs through
/// gemm_host_offset_rows, nn/gemm.hpp).  Unit stride: kw copies of the c
/// input planes, one per kernel column kj, each plane between `guard` zeros
/// before and after, copy kj with the columns zeroed that a flat read at the
/// column offset off = kj·dw − pw wraps into (the last −off columns for
/// off < 0, the first off for off > 0).  Then col row (c, ki, kj) is the
/// contiguous range of P = oh·ow values at copy kj, plane c, + guard +
/// (ki·dh − ph)·w + off: inside the image the input itself; a wrapped column
/// or a row above or below the image reads a zero (the same values as
/// im2col, so the GEMM gives the same bits).  kw·c·(hw + 2 guard) values
/// against im2col's kh·kw·c·hw: a third of the copies for 3x3, a seventh for
/// 7x7.
///
/// Strides (sh, sw) whose output rows are the input's phase rows, ow =
/// ⌈w/sw⌉ (3x3 pad 1, 5x5 pad 2, 7x7 pad 3 at stride 2): tap (ki, kj) reads
/// x[sh·(i + du) + a, sw·(j + dv) + b] with ki·dh − ph = sh·du + a and
/// kj·dw − pw = sw·dv + b (0 ≤ a < sh, 0 ≤ b < sw), i.e. the phase plane
/// (a, b) of x, X_ab[u, v] = x[sh·u + a, sw·v + b], at the shift (du, dv).
/// The copies are then phase planes of ⌈h/sh⌉ rows of ow values, one per
/// (kj, a) — b and dv follow from kj — zero where sh·u + a ≥ h or
/// sw·v + b ≥ w, with the wrapped columns of dv zeroed as above, and col row
/// (c, ki, kj) starts at copy (kj, a), plane c, + guard + du·ow + dv.  3x3
/// at stride 2: six quarter planes a channel (1.5 c·h·w values) in place of
/// im2col's 9 c·oh·ow ≈ 2.25 c·h·w, written in one pass per plane instead of
/// a short row per tap.  Unit stride is the case sh = sw = 1 (one phase).
struct ShiftedPlanes {
  /// Convolutions with output rows of ⌈w/sw⌉ values (same_width_unit_stride(d)
  /// at unit stride), except the 1x1 unpadded ones (their col is a
  /// subsampled x, as small as the copies: detail::subsample_rows).
  static bool applies(ConvDims const& d) { return d.ow == (d.w + d.sw - 1) / d.sw && !d.subsampling(); }
  /// Rows of a phase plane, ⌈h/sh⌉ (h at unit stride); a plane is rows x ow.
  static long rows(ConvDims const& d) { return (d.h + d.sh - 1) / d.sh; }
  /// Phase and shift of t = ki·dh − ph (or kj·dw − pw) at stride st: t = st·shift + phase.
  static long phase(long t, long st) { return ((t % st) + st) % st; }
  static long shift(long t, long st) { return (t - phase(t, st)) / st; }
  /// Zeros before and after each plane: the rows outside the plane that an
  /// output row reads, plus one row for the wrapped reads at the ends.
  static long guard(ConvDims const& d) {
    // shift(t) is nondecreasing in t: the extremes are at the first and last taps.
    long const du_lo = shift(-d.ph, d.sh), du_hi = shift((d.kh - 1) * d.dh - d.ph, d.sh);
    long const dv_max = std::max(std::abs(shift(-d.pw, d.sw)), std::abs(shift((d.kw - 1) * d.dw - d.pw, d.sw)));
    long const above = std::max(0L, -du_lo), below = std::max(0L, (d.oh - 1) + du_hi - (rows(d) - 1));
    return (std::max(above, below) + 1) * d.ow + dv_max;
  }
  static long plane_stride(ConvDims const& d) { return rows(d) * d.ow + 2 * guard(d); }
  /// Values of the copies (the buffer fill writes).
  static long size(ConvDims const& d) { return d.kw * d.sh * d.c * plane_stride(d); }
  /// offset[r] for the K = c·kh·kw col rows, in im2col's order (c, ki, kj).
  static void offsets(ConvDims const& d, long* offset) {
    long const ps = plane_stride(d), g = guard(d);
    for (long c = 0; c < d.c; ++c)
      for (long ki = 0; ki < d.kh; ++ki)
        for (long kj = 0; kj < d.kw; ++kj) {
          long const ti = ki * d.dh - d.ph, tj = kj * d.dw - d.pw;
          long const copy = kj * d.sh + phase(ti, d.sh);
          offset[(c * d.kh + ki) * d.kw + kj] = (copy * d.c + c) * ps + g + shift(ti, d.sh) * d.ow + shift(tj, d.sw);
        }
  }
  /// offsets(d) in a new host View named `label` (a View, not a std::vector:
  /// nvcc compiles a layer's implicit copy as host and device code; a new
  /// View per call, so copies of a layer keep the offsets of their own shapes).
  static Kokkos::View<long*, Kokkos::HostSpace> offset_view(ConvDims const& d, std::string const& label) {
    Kokkos::View<long*, Kokkos::HostSpace> view(Kokkos::view_alloc(Kokkos::WithoutInitializing, label),
                                                d.c * d.kh * d.kw);
    offsets(d, view.data());
    return view;
  }
  /// The copies of xs (c planes of h x w) into buf (size(d) values; the
  /// copies of a row phase no tap reads are left unwritten).
  template <class Scalar>
  static void fill(ConvDims const& d, Scalar const* xs, Scalar* buf) {
    long const ps = plane_stride(d), g = guard(d), hw = d.h * d.w, w = d.w, ow = d.ow, nr = rows(d);
    for (long a = 0; a < d.sh; ++a) {
      bool used = false;
      for (long ki = 0; ki < d.kh; ++ki)
        used = used || phase(ki * d.dh - d.ph, d.sh) == a;
      if (!used) continue;
      long const ra = (d.h - a + d.sh - 1) / d.sh;  // rows u with sh·u + a < h
      for (long kj = 0; kj < d.kw; ++kj) {
        long const tj = kj * d.dw - d.pw, b = phase(tj, d.sw), dv = shift(tj, d.sw);
        long const vb = (w - b + d.sw - 1) / d.sw;  // columns v with sw·v + b < w
        // Columns a flat read at dv wraps into.
        long const zero_lo = dv > 0 ? 0 : std::max(0L, ow + dv), zero_hi = dv > 0 ? std::min(dv, ow) : ow;
        for (long c = 0; c < d.c; ++c) {
          Scalar* plane = buf + ((kj * d.sh + a) * d.c + c) * ps;
          Scalar const* xc = xs + c * hw;
          Scalar* q = plane + g;
          std::fill(plane, q, Scalar(0));
          if (d.sh == 1 && d.sw == 1) {
            std::copy(xc, xc + hw, q);
          } else {
            for (long u = 0; u < ra; ++u) {
              Scalar* r = q + u * ow;
              copy_strided(r, xc + (d.sh * u + a) * w + b, vb, d.sw);
              std::fill(r + vb, r + ow, Scalar(0));
            }
            std::fill(q + ra * ow, q + nr * ow, Scalar(0));
          }
          std::fill(q + nr * ow, plane + ps, Scalar(0));
          if (dv == 0) continue;
          for (long u = 0; u < nr; ++u)
            for (long v = zero_lo; v < zero_hi; ++v)
              q[u * ow + v] = Scalar(0);
        }
      }
    }
  }
};

/// Same-width planes (h·w pixels) below these sizes take the masked vectors,
/// larger ones the portable flat copies and sums even where masked vectors
/// run: their long contiguous runs beat the per-vector masks there.  Measured
/// (one core of this machine's AVX-512 host, float, 3x3 pad 1, C·h·w ≈ 32k):
/// im2col masked 1.9x faster at 8x8, even at 23x23, 0.76x at 32x32 and
/// 0.73x at 45x45; col2im masked 1.29x at 8x8, 1.04x at 12x12, 0.90x at 16x16,
/// 0.70x at 45x45.
constexpr long masked_im2col_max_pixels = 576;  // 24x24
constexpr long masked_col2im_max_pixels = 196;  // 14x14

/// detail::im2col(d, xs, col, ldcol) (col's row stride ldcol ≥ P = oh·ow;
/// 0: P), the same values; entries P … ldcol − 1 of each col row untouched.
template <class Scalar>
void im2col_masked(ConvDims const& d, Scalar const* xs, Scalar* col, long ldcol = 0) {
  long const ld = ldcol > 0 ? ldcol : d.oh * d.ow;
#ifdef LENSING_NN_MASKED_ROWS
  if constexpr (has_masked_rows_v<Scalar>) {
    using R = MaskedRow<Scalar>;
    constexpr long L = R::lanes;
    // Locals: a masked store may alias anything, d's fields would be reloaded.
    long const nc = d.c, h = d.h, w = d.w, oh = d.oh, ow = d.ow, kh = d.kh, kw = d.kw, ph = d.ph, pw = d.pw, dh = d.dh,
               dw = d.dw, sh = d.sh, p = oh * ow, hw = h * w;
    if (same_width_unit_stride(d) && hw < masked_im2col_max_pixels) {
      // Col row (c, ki, kj) = x_c read flat at the shift sft over its rows
      // [i_lo, i_hi) (zero outside), then the |off| columns per row that
      // wrapped into the neighbouring input row set to zero.
      for (long c = 0; c < nc; ++c)
        for (long ki = 0; ki < kh; ++ki) {
          long i_lo, i_hi;
          rows_inside(d, ki, i_lo, i_hi);
          for (long kj = 0; kj < kw; ++kj) {
            Scalar* row = col + ((c * kh + ki) * kw + kj) * ld;
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
    if (d.sw == 1 && !same_width_unit_stride(d)) {
      // Per output row: lanes l of the vector at j0 take x[ih, j0 + l + off]
      // where that column lies in [0, w), else 0.
      for (long c = 0; c < nc; ++c)
        for (long ki = 0; ki < kh; ++ki)
          for (long kj = 0; kj < kw; ++kj) {
            Scalar* row = col + ((c * kh + ki) * kw + kj) * ld;
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
  if (same_width_unit_stride(d))
    im2col_same_portable(d, xs, col, ld);
  else
    im2col(d, xs, col, ld);
}

/// detail::col2im(d, col, dxs, ldcol) (ldcol as for im2col_masked): dxs overwritten with
/// the same sums (each element 0 + its terms in (ki, kj) order, as col2im
/// adds them; a masked-off lane adds +0, which changes no partial sum since
/// none starting from +0 is −0).  col is scratch: with same width and unit
/// stride its wrapped columns are set to zero first, so that each col row
/// reads flat at a constant shift.
template <class Scalar>
void col2im_masked(ConvDims const& d, Scalar* col, Scalar* dxs, long ldcol = 0) {
  long const ld = ldcol > 0 ? ldcol : d.oh * d.ow;
#ifdef LENSING_NN_MASKED_ROWS
  if constexpr (has_masked_rows_v<Scalar>) {
    using R = MaskedRow<Scalar>;
    constexpr long L = R::lanes;
    long const nc = d.c, h = d.h, w = d.w, oh = d.oh, ow = d.ow, kh = d.kh, kw = d.kw, ph = d.ph, pw = d.pw, dh = d.dh,
               dw = d.dw, sh = d.sh, hw = h * w;
    if (same_width_unit_stride(d) && hw < masked_col2im_max_pixels) {
      for (long c = 0; c < nc; ++c) {
        for (long ki = 0; ki < kh; ++ki) {
          long i_lo, i_hi;
          rows_inside(d, ki, i_lo, i_hi);
          for (long kj = 0; kj < kw; ++kj) {
            long const off = kj * dw - pw;
            if (off == 0) continue;
            Scalar* row = col + ((c * kh + ki) * kw + kj) * ld;
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
              Scalar const* row = col + ((c * kh + ki) * kw + kj) * ld;
              auto const m = st & R::span(i_lo * ow + sft - t0, i_hi * ow + sft - t0);
              acc = R::add(acc, R::load(m, shifted(row, t0 - sft)));
            }
          }
          R::store(st, xc + t0, acc);
        }
      }
      return;
    }
    if (d.sw == 1 && !same_width_unit_stride(d)) {
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
              Scalar const* rows = col + (c * kh + ki) * kw * ld + ti / sh * ow;
              for (long kj = 0; kj < kw; ++kj) {
                long const s = pw - kj * dw;
                auto const m = st & R::span(-s - w0, ow - s - w0);
                acc = R::add(acc, R::load(m, shifted(rows + kj * ld, w0 + s)));
              }
            }
            R::store(st, xr + w0, acc);
          }
        }
      return;
    }
  }
#endif
  if (same_width_unit_stride(d))
    col2im_same_portable(d, col, dxs, ld);
  else
    col2im(d, static_cast<Scalar const*>(col), dxs, ld);
}

}  // namespace detail
}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_DETAIL_MASKED_ROWS_HPP
