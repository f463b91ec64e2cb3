// The cols the host convolutions (Conv2D, Conv2DReLUPool, PreactConv2D) form
// against their definition, element by element: detail::im2col_masked /
// col2im_masked (detail/masked_rows.hpp: AVX-512 masked vectors where the
// build targets them, one flat shifted copy or sum per col row for
// unit-stride convolutions whose output rows are as long as the input's —
// 3x3 pad 1, 7x7 pad 3, dilated, kernels wider than the image — and a
// vector per row span for other unit strides), their portable same-width
// bodies im2col_same_portable / col2im_same_portable (what builds without
// AVX-512 run), and detail::im2col / col2im (detail/im2col.hpp, every
// geometry: strides 2 and 3, other widths), with cols laid side by side (a
// row stride ldcol > P, as PreactConv2D's grouped GEMMs use).
#include <lensing/nn/detail/masked_rows.hpp>
#include <lensing/nn/gemm.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace nn = lensing::nn;
namespace lt = lensing::test;

namespace {

struct Geometry {
  long c, h, w, kh, kw, sh, sw, ph, pw, dh, dw;
};

nn::detail::ConvDims dims_of(Geometry const& g) {
  long const oh = (g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  long const ow = (g.w + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  return nn::detail::ConvDims{1, g.c, g.h, g.w, 1, oh, ow, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
}

// The input index col entry (row r, output pixel q) reads, or -1 for a zero.
long source(nn::detail::ConvDims const& d, long r, long q) {
  long const c = r / (d.kh * d.kw), ki = (r / d.kw) % d.kh, kj = r % d.kw;
  long const i = q / d.ow, j = q % d.ow;
  long const ih = i * d.sh - d.ph + ki * d.dh, iw = j * d.sw - d.pw + kj * d.dw;
  if (ih < 0 || ih >= d.h || iw < 0 || iw >= d.w) return -1;
  return (c * d.h + ih) * d.w + iw;
}

}  // namespace

// Error model: im2col copies values (exact); col2im gives each input element
// the sum of the col entries that read it, added in the order of the rows
// (c, ki, kj) and, within a row, once — both the reference below and the
// library add them in that order (the same-width versions add exact zeros at
// the wrapped columns or masked-off lanes besides, which change no sum that
// starts from +0), so every comparison is exact equality.
LENSING_TEST_CASE_TEMPLATE("nn: im2col and col2im against their definition", Config, lt::AllConfigs) {
  using Scalar = typename Config::scalar;
  std::vector<Geometry> const geometries = {
      {3, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1},    // 3x3 pad 1: contiguous path
      {2, 9, 6, 7, 7, 1, 1, 3, 3, 1, 1},    // 7x7 pad 3 (the ResNet's stem), non-square
      {2, 6, 8, 3, 3, 1, 1, 2, 2, 2, 2},    // dilated 3x3 pad 2: contiguous path
      {1, 4, 2, 5, 5, 1, 1, 2, 2, 1, 1},    // kernel wider than the image: rows with no valid column
      {2, 5, 7, 3, 1, 1, 1, 4, 0, 1, 1},    // padding taller than the kernel: zero rows
      {1, 15, 16, 3, 3, 1, 1, 1, 1, 1, 1},  // 240 pixels: masked im2col, portable col2im
      {1, 26, 25, 3, 3, 1, 1, 1, 1, 1, 1},  // 650 pixels: the portable flat loops both ways
      {2, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1},    // strided by 2: im2col's stride-2 loop
      {2, 9, 7, 3, 3, 2, 2, 1, 1, 1, 1},    // odd sizes, strided by 2
      {2, 9, 9, 1, 1, 2, 2, 0, 0, 1, 1},    // strided 1x1 (a projection): subsample_rows
      {3, 10, 7, 1, 1, 3, 2, 0, 0, 1, 1},   // strided 1x1, strides 3 and 2: the last input row read
      {2, 7, 8, 1, 1, 2, 3, 0, 0, 1, 1},    // strided 1x1, column stride 3 (the general loop)
      {1, 10, 10, 3, 3, 3, 3, 1, 1, 1, 1},  // strided by 3: general path
      {2, 6, 7, 3, 3, 1, 1, 0, 0, 1, 1},    // valid (ow < w): the row-span path
      {3, 5, 5, 1, 1, 1, 1, 0, 0, 1, 1}};   // 1x1
  long n_same = 0, n_two = 0, n_sub = 0;
  for (Geometry const& g : geometries) {
    nn::detail::ConvDims const d = dims_of(g);
    n_same += nn::detail::same_width_unit_stride(d);
    n_two += d.sw == 2;
    n_sub += d.subsampling() && !d.pointwise();
    long const k = d.c * d.kh * d.kw, p = d.oh * d.ow, chw = d.c * d.h * d.w;
    for (long ld : {long(0), p + 5}) {
      long const stride = ld > 0 ? ld : p;
      std::string const what = "c" + std::to_string(g.c) + " " + std::to_string(g.h) + "x" + std::to_string(g.w) +
                               " k" + std::to_string(g.kh) + "x" + std::to_string(g.kw) + " s" + std::to_string(g.sh) +
                               " p" + std::to_string(g.ph) + "," + std::to_string(g.pw) + " d" + std::to_string(g.dh) +
                               " ldcol " + std::to_string(ld);
      CAPTURE(what);
      // x sits in a larger array with NaN around it: a read outside the sample shows.
      long const pad = 40;
      std::vector<Scalar> xbuf(chw + 2 * pad, std::numeric_limits<Scalar>::quiet_NaN());
      Scalar* x = xbuf.data() + pad;
      for (long i = 0; i < chw; ++i)
        x[i] = Scalar(1 + i) + Scalar(std::sin(0.7 * double(i)));  // no zeros: a stray zero shows
      // Cols prefilled with a marker outside the written rows' entries.
      bool const same = nn::detail::same_width_unit_stride(d);
      std::vector<Scalar> col(k * stride, Scalar(-99)), col_m(k * stride, Scalar(-99)), col_p(k * stride, Scalar(-99));
      nn::detail::im2col(d, static_cast<Scalar const*>(x), col.data(), ld);
      nn::detail::im2col_masked(d, static_cast<Scalar const*>(x), col_m.data(), ld);
      if (same) nn::detail::im2col_same_portable(d, static_cast<Scalar const*>(x), col_p.data(), stride);
      long wrong = 0, wrong_m = 0, wrong_p = 0;
      for (long r = 0; r < k; ++r) {
        for (long q = 0; q < p; ++q) {
          long const s = source(d, r, q);
          Scalar const want = s < 0 ? Scalar(0) : x[s];
          wrong += col[r * stride + q] != want;
          wrong_m += col_m[r * stride + q] != want;
          wrong_p += same && col_p[r * stride + q] != want;
        }
        for (long q = p; q < stride; ++q) {  // beyond P: untouched
          wrong += col[r * stride + q] != Scalar(-99);
          wrong_m += col_m[r * stride + q] != Scalar(-99);
          wrong_p += same && col_p[r * stride + q] != Scalar(-99);
        }
      }
      CHECK(wrong == 0);
      CHECK(wrong_m == 0);
      CHECK(wrong_p == 0);
      // col2im and the others: dx = the adjoint of im2col applied to dcol.
      std::vector<Scalar> dcol(k * stride), ref(chw, Scalar(0));
      for (long i = 0; i < k * stride; ++i)
        dcol[i] = Scalar(0.5) + Scalar(std::cos(1.3 * double(i)));
      for (long r = 0; r < k; ++r)
        for (long q = 0; q < p; ++q) {
          long const s = source(d, r, q);
          if (s >= 0) ref[s] += dcol[r * stride + q];
        }
      std::vector<Scalar> dx(chw, Scalar(7)), dx_m(chw, Scalar(7)), dx_p(chw, Scalar(7));
      nn::detail::col2im(d, static_cast<Scalar const*>(dcol.data()), dx.data(), ld);
      std::vector<Scalar> scratch = dcol;  // the same-width versions overwrite their wrapped columns
      nn::detail::col2im_masked(d, scratch.data(), dx_m.data(), ld);
      scratch = dcol;
      if (same) nn::detail::col2im_same_portable(d, scratch.data(), dx_p.data(), stride);
      long wrong1 = 0, wrong2 = 0, wrong3 = 0;
      for (long i = 0; i < chw; ++i) {
        wrong1 += dx[i] != ref[i];
        wrong2 += dx_m[i] != ref[i];
        wrong3 += same && dx_p[i] != ref[i];
      }
      CHECK(wrong1 == 0);
      CHECK(wrong2 == 0);
      CHECK(wrong3 == 0);
    }
  }
  CHECK(n_same == 8);  // the first seven geometries and the 1x1
  CHECK(n_two == 4);
  CHECK(n_sub == 3);  // the strided 1x1 kernels
}

// Error model: the shifted copies (detail::ShiftedPlanes; the phase planes
// at strides > 1) hold the input's values and zeros, so each col row read at its offset equals im2col's row
// exactly; gemm_host_offset_rows packs those same values into the same Eigen
// blocks and runs the same kernels as gemm_host on the formed col, so both
// products (C += W col, the forward; C += dy colᵀ, the weight gradient)
// agree bit for bit.  (Eigen multiplies products with rows + cols + depth
// < 20 coefficient by coefficient, another summation: every case here is
// larger, checked below.)
LENSING_TEST_CASE_TEMPLATE("nn: shifted planes read as im2col's col, and GEMMs through them", Config, lt::AllConfigs) {
  using Scalar = typename Config::scalar;
  REQUIRE(nn::detail::has_offset_rows_gemm);  // Eigen 3.4, as the project requires
  std::vector<Geometry> const geometries = {
      {3, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1},    // 3x3 pad 1
      {2, 9, 6, 7, 7, 1, 1, 3, 3, 1, 1},    // 7x7 pad 3 (the stem), non-square
      {2, 6, 8, 3, 3, 1, 1, 2, 2, 2, 2},    // dilated
      {1, 4, 2, 5, 5, 1, 1, 2, 2, 1, 1},    // kernel wider than the image: all columns wrapped
      {2, 5, 7, 3, 1, 1, 1, 4, 0, 1, 1},    // padding taller than the kernel: rows below and above
      {3, 12, 11, 3, 5, 1, 1, 0, 2, 1, 1},  // oh < h (no vertical padding), 3x5
      {2, 5, 5, 1, 3, 1, 1, 1, 1, 1, 1},    // oh > h: zero rows at both ends
      {1, 26, 25, 3, 3, 1, 1, 1, 1, 1, 1},  // 650 pixels
      {2, 9, 7, 3, 3, 2, 2, 1, 1, 1, 1},    // stride 2 (phase planes), odd sizes: a short phase each way
      {3, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1},    // stride 2, even sizes
      {2, 45, 45, 3, 3, 2, 2, 1, 1, 1, 1},  // the ResNet's first strided 3x3
      {2, 11, 10, 7, 7, 2, 2, 3, 3, 1, 1},  // 7x7 pad 3 at stride 2
      {2, 12, 13, 5, 5, 2, 2, 2, 2, 1, 1},  // 5x5 pad 2 at stride 2
      {1, 6, 9, 3, 3, 2, 2, 2, 2, 2, 2},    // dilated, stride 2
      {1, 10, 11, 3, 3, 3, 3, 1, 1, 1, 1},  // stride 3: three phases
      {2, 9, 8, 3, 3, 2, 1, 1, 1, 1, 1}};   // strides 2 (rows) and 1 (columns)
  long const o = 5;
  for (Geometry const& g : geometries) {
    nn::detail::ConvDims const d = dims_of(g);
    using Planes = nn::detail::ShiftedPlanes;
    REQUIRE(Planes::applies(d));
    long const k = d.c * d.kh * d.kw, p = d.oh * d.ow, chw = d.c * d.h * d.w, size = Planes::size(d);
    CAPTURE(g.c);
    CAPTURE(g.h);
    CAPTURE(g.w);
    CAPTURE(g.kh);
    CAPTURE(g.kw);
    CHECK(o + p + k >= 20);
    std::vector<Scalar> x(chw);
    for (long i = 0; i < chw; ++i)
      x[i] = Scalar(1 + i) + Scalar(std::sin(0.7 * double(i)));  // no zeros: a stray zero shows
    // The whole buffer is written: NaN left anywhere would show in the GEMMs.
    std::vector<Scalar> planes(size, std::numeric_limits<Scalar>::quiet_NaN());
    std::vector<long> offset(k);
    Planes::fill(d, x.data(), planes.data());
    Planes::offsets(d, offset.data());
    long wrong = 0, outside = 0;
    for (long r = 0; r < k; ++r) {
      outside += offset[r] < 0 || offset[r] + p > size;
      if (offset[r] < 0 || offset[r] + p > size) continue;
      for (long q = 0; q < p; ++q) {
        long const s = source(d, r, q);
        wrong += planes[offset[r] + q] != (s < 0 ? Scalar(0) : x[s]);
      }
    }
    CHECK(outside == 0);
    CHECK(wrong == 0);
    if (outside != 0) continue;
    std::vector<Scalar> col(k * p);
    nn::detail::im2col(d, x.data(), col.data());
    std::vector<Scalar> w(o * k), dy(o * p);
    for (long i = 0; i < o * k; ++i)
      w[i] = Scalar(std::cos(0.37 * double(i)));
    for (long i = 0; i < o * p; ++i)
      dy[i] = Scalar(std::sin(1.1 * double(i) + 0.2));
    // Forward onto a bias (beta = 1), as the layers run it.
    std::vector<Scalar> y1(o * p, Scalar(0.25)), y2(o * p, Scalar(0.25));
    nn::detail::gemm_host(false, false, o, p, k, Scalar(1), w.data(), k, col.data(), p, Scalar(1), y1.data(), p);
    nn::detail::gemm_host_offset_rows(false, o, p, k, w.data(), k, static_cast<Scalar const*>(planes.data()),
                                      offset.data(), y2.data(), p);
    long differ = 0;
    for (long i = 0; i < o * p; ++i)
      differ += y1[i] != y2[i];
    CHECK(differ == 0);
    // Weight gradient accumulated onto a partial sum.
    std::vector<Scalar> g1(o * k, Scalar(-0.5)), g2(o * k, Scalar(-0.5));
    nn::detail::gemm_host(false, true, o, k, p, Scalar(1), dy.data(), p, col.data(), p, Scalar(1), g1.data(), k);
    nn::detail::gemm_host_offset_rows(true, o, p, k, dy.data(), p, static_cast<Scalar const*>(planes.data()),
                                      offset.data(), g2.data(), k);
    differ = 0;
    for (long i = 0; i < o * k; ++i)
      differ += g1[i] != g2[i];
    CHECK(differ == 0);
  }
  // Not for geometries whose output rows are not the input's (phase) rows, nor 1x1 unpadded ones.
  CHECK_FALSE(nn::detail::ShiftedPlanes::applies(dims_of({2, 6, 7, 3, 3, 1, 1, 0, 0, 1, 1})));
  CHECK_FALSE(nn::detail::ShiftedPlanes::applies(dims_of({2, 9, 8, 3, 3, 2, 2, 0, 0, 1, 1})));
  CHECK_FALSE(nn::detail::ShiftedPlanes::applies(dims_of({2, 9, 9, 1, 1, 2, 2, 0, 0, 1, 1})));
}
