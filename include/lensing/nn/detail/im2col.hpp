#ifndef LENSING_NN_DETAIL_IM2COL_HPP
#define LENSING_NN_DETAIL_IM2COL_HPP

/// \file
/// Plumbing shared by Conv2D and ConvTranspose2D (a transposed convolution
/// is the adjoint of a convolution, so both run on the same three direct
/// kernels and the same im2col/col2im pair, with the roles of input and
/// output exchanged): the dimensions of a convolution, im2col/col2im on the
/// host, the per-thread host workspace with its partial-gradient reduction,
/// and the direct kernels (any execution space).

#include <lensing/core/parallel.hpp>
#include <lensing/core/views.hpp>
#include <lensing/nn/layer.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <string>
#include <type_traits>

namespace lensing {
namespace nn {
namespace detail {

/// The convolution from (c, h, w) to (o, oh, ow) over a batch of n, with
/// kernel (kh, kw), stride (sh, sw), zero padding (ph, pw), dilation (dh, dw):
/// out[n,o,i,j] = Σ_{c,p,q} W[o,c,p,q] in[n, c, i·sh − ph + p·dh, j·sw − pw + q·dw],
/// W row-major (o, c, kh, kw).  A ConvTranspose2D is described by the
/// convolution it is the adjoint of (its output is (c, h, w)).
struct ConvDims {
  long n, c, h, w, o, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
  /// A 1x1 kernel with unit stride and no padding: the input of a sample is its own col.
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
  /// A 1x1 kernel without padding (any stride): col row c is x_c subsampled,
  /// col[c, i·ow + j] = x[c, i·sh, j·sw], every read inside the image (the
  /// ResNets' strided projection shortcuts).
  bool subsampling() const { return kh == 1 && kw == 1 && ph == 0 && pw == 0; }
};

/// r[j] = x[j·s], j < n: a row read at a stride (im2col's rows, the
/// subsampled and phase-plane rows).  Strides 1 and 2 as constants, so that
/// the copy vectorises (stride 2: two loads and a permute per vector; with
/// the run-time stride each value was a scalar load and store).
template <class Scalar>
void copy_strided(Scalar* r, Scalar const* x, long n, long s) {
  if (s == 1) {
    for (long j = 0; j < n; ++j)
      r[j] = x[j];
  } else if (s == 2) {
    for (long j = 0; j < n; ++j)
      r[j] = x[2 * j];
  } else {
    for (long j = 0; j < n; ++j)
      r[j] = x[j * s];
  }
}
/// x[j·s] += r[j], j < n: copy_strided's adjoint (col2im's rows).
template <class Scalar>
void add_strided(Scalar* x, Scalar const* r, long n, long s) {
  if (s == 1) {
    for (long j = 0; j < n; ++j)
      x[j] += r[j];
  } else if (s == 2) {
    for (long j = 0; j < n; ++j)
      x[2 * j] += r[j];
  } else {
    for (long j = 0; j < n; ++j)
      x[j * s] += r[j];
  }
}

/// im2col and col2im of a subsampling() convolution (ld: col's row stride):
/// one pass over the rows without the per-tap bookkeeping (per output row of
/// 3–23 values that bookkeeping cost as much as the copies).
template <class Scalar>
void subsample_rows(ConvDims const& d, Scalar const* xs, Scalar* col, long ld) {
  long const h = d.h, w = d.w, oh = d.oh, ow = d.ow, sh = d.sh, sw = d.sw;
  for (long c = 0; c < d.c; ++c)
    for (long i = 0; i < oh; ++i) {
      Scalar const* xr = xs + (c * h + i * sh) * w;
      copy_strided(col + c * ld + i * ow, xr, ow, sw);
    }
}
/// The adjoint: dxs (c x h x w) overwritten, each input pixel that a column
/// reads gets 0 + its one col entry (col2im's sum, the same bits), every
/// other pixel 0.
template <class Scalar>
void scatter_subsampled_rows(ConvDims const& d, Scalar const* col, Scalar* dxs, long ld) {
  long const h = d.h, w = d.w, oh = d.oh, ow = d.ow, sh = d.sh, sw = d.sw;
  for (long c = 0; c < d.c; ++c)
    for (long ih = 0; ih < h; ++ih) {
      Scalar* xr = dxs + (c * h + ih) * w;
      std::fill(xr, xr + w, Scalar(0));
      if (ih % sh != 0 || ih / sh >= oh) continue;
      add_strided(xr, col + c * ld + (ih / sh) * ow, ow, sw);
    }
}

/// The output columns j in [lo, hi) whose input column j·s + off lies in [0, w).
inline void valid_columns(long ow, long s, long off, long w, long& lo, long& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = w - 1 - off < 0 ? 0 : std::min(ow, (w - 1 - off) / s + 1);
  if (lo > hi) lo = hi;
}

/// col (K x P, K = c·kh·kw, P = oh·ow) of one sample xs (c x h x w), zeros outside.
/// Each row of the output is a zero head, a copy (contiguous for unit
/// stride) and a zero tail: no bounds test per element.  ldcol (≥ P; 0: P)
/// is the row stride of col, so that the cols of several samples can sit
/// side by side in one K x (G·P) matrix (one GEMM for G samples).
template <class Scalar>
void im2col(ConvDims const& d, Scalar const* xs, Scalar* col, long ldcol = 0) {
  long const p = ldcol > 0 ? ldcol : d.oh * d.ow;
  if (d.subsampling()) {
    subsample_rows(d, xs, col, p);
    return;
  }
  for (long c = 0; c < d.c; ++c)
    for (long ki = 0; ki < d.kh; ++ki)
      for (long kj = 0; kj < d.kw; ++kj) {
        Scalar* row = col + ((c * d.kh + ki) * d.kw + kj) * p;
        long const off = kj * d.dw - d.pw;
        long lo, hi;
        valid_columns(d.ow, d.sw, off, d.w, lo, hi);
        for (long i = 0; i < d.oh; ++i) {
          long const ih = i * d.sh - d.ph + ki * d.dh;
          Scalar* r = row + i * d.ow;
          if (ih < 0 || ih >= d.h) {
            for (long j = 0; j < d.ow; ++j)
              r[j] = Scalar(0);
            continue;
          }
          Scalar const* xr = xs + (c * d.h + ih) * d.w;
          for (long j = 0; j < lo; ++j)
            r[j] = Scalar(0);
          if (hi > lo) copy_strided(r + lo, xr + lo * d.sw + off, hi - lo, d.sw);
          for (long j = hi; j < d.ow; ++j)
            r[j] = Scalar(0);
        }
      }
}

/// The adjoint of im2col: dxs (c x h x w) = col2im(col), overwriting dxs
/// (ldcol: col's row stride, as for im2col).
template <class Scalar>
void col2im(ConvDims const& d, Scalar const* col, Scalar* dxs, long ldcol = 0) {
  long const p = ldcol > 0 ? ldcol : d.oh * d.ow;
  if (d.subsampling()) {
    scatter_subsampled_rows(d, col, dxs, p);
    return;
  }
  for (long i = 0; i < d.c * d.h * d.w; ++i)
    dxs[i] = Scalar(0);
  for (long c = 0; c < d.c; ++c)
    for (long ki = 0; ki < d.kh; ++ki)
      for (long kj = 0; kj < d.kw; ++kj) {
        Scalar const* row = col + ((c * d.kh + ki) * d.kw + kj) * p;
        for (long i = 0; i < d.oh; ++i) {
          long const ih = i * d.sh - d.ph + ki * d.dh;
          if (ih < 0 || ih >= d.h) continue;
          long const off = kj * d.dw - d.pw;
          long lo, hi;
          valid_columns(d.ow, d.sw, off, d.w, lo, hi);
          Scalar* xr = dxs + (c * d.h + ih) * d.w;
          Scalar const* r = row + i * d.ow;
          if (hi > lo) add_strided(xr + lo * d.sw + off, r + lo, hi - lo, d.sw);
        }
      }
}

//----------------------------------------------------------------------------
// Host workspace.

/// out[i] = Σ_t part[t·np + i], i < np (host spaces; fences `space`).
template <class ExecutionSpace, class Scalar>
void reduce_partials(ExecutionSpace const& space, char const* name, Scalar const* part, long chunks, long np,
                     Scalar* out) {
  Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecutionSpace>(space, 0, np), [=](long i) {
    Scalar s = Scalar(0);
    for (long t = 0; t < chunks; ++t)
      s += part[t * np + i];
    out[i] = s;
  });
  space.fence();
}

/// Per-thread buffers of the host im2col path: `chunks` col buffers and
/// `chunks` partial parameter gradients (summed by reduce_partials), sized
/// for the input shape given to prepare().  Allocated in HostSpace only.
template <class Scalar, class MemorySpace>
struct ConvWorkspace {
  View1D<Scalar, MemorySpace> col, partial;
  long chunks = 0;
  Shape4 prepared{};

  /// Buffers of col_size and num_params elements per thread for inputs of shape `in`.
  void prepare(Shape4 const& in, long col_size, long num_params, char const* col_name, char const* partial_name) {
    prepared = in;
    if constexpr (std::is_same<MemorySpace, Kokkos::HostSpace>::value) {
      long const c = std::max(1, std::min(in.n, Kokkos::DefaultHostExecutionSpace().concurrency()));
      if (long(col.extent(0)) < c * col_size)
        col = View1D<Scalar, MemorySpace>(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(col_name)),
                                          c * col_size);
      if (long(partial.extent(0)) < c * num_params)
        partial = View1D<Scalar, MemorySpace>(
            Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(partial_name)), c * num_params);
      chunks = c;
    }
  }
  /// Whether prepare() must run again before the host path takes `in`.
  bool stale(Shape4 const& in) const {
    long const c = std::min(in.n, Kokkos::DefaultHostExecutionSpace().concurrency());
    return in != prepared || c > chunks;
  }

  /// Runs body(n, col, g) for every sample n < batch on the host threads of
  /// `space` (fenced on return): the batch is split into contiguous chunks, one
  /// a thread, each with its own col buffer (col_size elements) and its own
  /// partial gradient g (num_params elements, zeroed first; 0 for none).
  /// Returns the number of chunks, for reduce().
  template <class ExecutionSpace, class Body>
  long for_each_sample(ExecutionSpace const& space, char const* name, long batch, long col_size, long num_params,
                       Body const& body) const {
    long const nc = std::min<long>({chunks, batch, long(space.concurrency())});
    Scalar* colb = col.data();
    Scalar* part = partial.data();
    Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecutionSpace>(space, 0, nc), [=](long t) {
      Scalar* ct = colb + t * col_size;
      Scalar* g = part + t * num_params;
      for (long i = 0; i < num_params; ++i)
        g[i] = Scalar(0);
      for (long n = batch * t / nc; n < batch * (t + 1) / nc; ++n)
        body(n, ct, g);
    });
    space.fence();
    return nc;
  }

  /// out = the sum of the `nc` partial gradients of for_each_sample (host spaces; fences `space`).
  template <class ExecutionSpace>
  void reduce(ExecutionSpace const& space, char const* name, long nc, long num_params, Scalar* out) const {
    reduce_partials(space, name, static_cast<Scalar const*>(partial.data()), nc, num_params, out);
  }
};

/// g[ch] += Σ_q t[ch·hw + q], ch < channels: the bias gradients of one sample
/// (host).  Summed in double, vectorised (a float sum in order is one
/// dependent addition a value: 3–4 cycles each, 40–80 µs a sample for the
/// ResNet's stem and projections); error ≤ (hw ε_double + ε) Σ|t| against
/// hw ε Σ|t| for the float sum in order.
template <class Scalar>
void add_channel_sums(Scalar const* t, long channels, long hw, Scalar* g) {
  for (long ch = 0; ch < channels; ++ch) {
    Scalar const* row = t + ch * hw;
    double s = 0;
    LENSING_NN_SIMD_SUM(s)
    for (long q = 0; q < hw; ++q)
      s += double(row[q]);
    g[ch] += Scalar(s);
  }
}

//----------------------------------------------------------------------------
// Direct kernels (one thread per output element), any execution space.

/// out (n, o, oh, ow) = bias[o] + conv(in (n, c, h, w)); bias may be nullptr.
template <class ExecutionSpace, class Scalar>
void conv_direct(ExecutionSpace const& space, char const* name, ConvDims const& d, Scalar const* w, Scalar const* bias,
                 Scalar const* in, Scalar* out) {
  long const total = d.n * d.o * d.oh * d.ow;
  Kokkos::parallel_for(
      name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, total), KOKKOS_LAMBDA(long idx) {
        long const j = idx % d.ow, i = (idx / d.ow) % d.oh, oc = (idx / (d.ow * d.oh)) % d.o,
                   n = idx / (d.ow * d.oh * d.o);
        Scalar s = bias != nullptr ? bias[oc] : Scalar(0);
        for (long c = 0; c < d.c; ++c)
          for (long ki = 0; ki < d.kh; ++ki) {
            long const ih = i * d.sh - d.ph + ki * d.dh;
            if (ih < 0 || ih >= d.h) continue;
            for (long kj = 0; kj < d.kw; ++kj) {
              long const iw = j * d.sw - d.pw + kj * d.dw;
              if (iw < 0 || iw >= d.w) continue;
              s += w[((oc * d.c + c) * d.kh + ki) * d.kw + kj] * in[((n * d.c + c) * d.h + ih) * d.w + iw];
            }
          }
        out[idx] = s;
      });
}

/// The adjoint: out (n, c, h, w) = bias[c] + convᵀ(in (n, o, oh, ow)); bias may be nullptr.
template <class ExecutionSpace, class Scalar>
void conv_adjoint_direct(ExecutionSpace const& space, char const* name, ConvDims const& d, Scalar const* w,
                         Scalar const* bias, Scalar const* in, Scalar* out) {
  long const total = d.n * d.c * d.h * d.w;
  Kokkos::parallel_for(
      name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, total), KOKKOS_LAMBDA(long idx) {
        long const iw = idx % d.w, ih = (idx / d.w) % d.h, c = (idx / (d.w * d.h)) % d.c, n = idx / (d.w * d.h * d.c);
        Scalar s = bias != nullptr ? bias[c] : Scalar(0);
        for (long ki = 0; ki < d.kh; ++ki) {
          long const ti = ih + d.ph - ki * d.dh;  // = i * sh
          if (ti < 0 || ti % d.sh != 0 || ti / d.sh >= d.oh) continue;
          long const i = ti / d.sh;
          for (long kj = 0; kj < d.kw; ++kj) {
            long const tj = iw + d.pw - kj * d.dw;
            if (tj < 0 || tj % d.sw != 0 || tj / d.sw >= d.ow) continue;
            long const j = tj / d.sw;
            for (long oc = 0; oc < d.o; ++oc)
              s += w[((oc * d.c + c) * d.kh + ki) * d.kw + kj] * in[((n * d.o + oc) * d.oh + i) * d.ow + j];
          }
        }
        out[idx] = s;
      });
}

/// g[o, c, p, q] = Σ_{n,i,j} out_grid[n, o, i, j] · in_grid[n, c, i·sh − ph + p·dh, j·sw − pw + q·dw]
/// (the weight gradient of conv_direct with out_grid = dy, and of its adjoint with in_grid = dy).
template <class ExecutionSpace, class Scalar>
void conv_weight_grad_direct(ExecutionSpace const& space, char const* name, ConvDims const& d, Scalar const* in_grid,
                             Scalar const* out_grid, Scalar* g) {
  long const k = d.c * d.kh * d.kw;
  Kokkos::parallel_for(
      name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, d.o * k), KOKKOS_LAMBDA(long idx) {
        long const kj = idx % d.kw, ki = (idx / d.kw) % d.kh, c = (idx / (d.kw * d.kh)) % d.c, oc = idx / k;
        Scalar s = Scalar(0);
        for (long n = 0; n < d.n; ++n)
          for (long i = 0; i < d.oh; ++i) {
            long const ih = i * d.sh - d.ph + ki * d.dh;
            if (ih < 0 || ih >= d.h) continue;
            for (long j = 0; j < d.ow; ++j) {
              long const iw = j * d.sw - d.pw + kj * d.dw;
              if (iw < 0 || iw >= d.w) continue;
              s += out_grid[((n * d.o + oc) * d.oh + i) * d.ow + j] * in_grid[((n * d.c + c) * d.h + ih) * d.w + iw];
            }
          }
        g[idx] = s;
      });
}

/// g[ch] = Σ_{n, q} t[(n·channels + ch)·hw + q] (bias gradients).
template <class ExecutionSpace, class Scalar>
void channel_sums(ExecutionSpace const& space, char const* name, Scalar const* t, long n, long channels, long hw,
                  Scalar* g) {
  Kokkos::parallel_for(
      name, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, channels), KOKKOS_LAMBDA(long ch) {
        Scalar s = Scalar(0);
        for (long b = 0; b < n; ++b)
          for (long q = 0; q < hw; ++q)
            s += t[(b * channels + ch) * hw + q];
        g[ch] = s;
      });
}

}  // namespace detail
}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_DETAIL_IM2COL_HPP
