// PSF operators on batches (n, ny, nx): each image of a batch is mapped as
// the same call maps it alone (bit-identical for GaussianFilter and
// DirectConvolution, to rounding for FftConvolution), on every layout, with
// batches larger and smaller than GaussianFilter's work buffer; the adjoint
// identity holds on batches; wrong extents are refused with a message; the
// operators declare psf_accepts_batches_v.  (A wrong rank, or input and output
// of different ranks, is a compile-time error: a static_assert in
// detail::check_image_pair.)

#include <lensing/model/observation.hpp>
#include <lensing/psf/convolution.hpp>
#include <lensing/psf/fft_convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/psf/kernels.hpp>
#include <lensing/psf/psf_operator.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// Image b of a test batch: a different smooth pattern per image, |value| <= 1.2.
double batch_value(int b, int iy, int ix, double a) {
  return std::sin(a * (ix + 1) * (1 + 0.1 * b) + 0.13 * iy * iy + 0.3 * b) + 0.2 * std::cos(0.17 * ix * iy - b);
}

template <class View3>
void fill_batch(View3 const& v, double a) {
  auto h = Kokkos::create_mirror_view(v);
  for (int b = 0; b < int(v.extent(0)); ++b)
    for (int iy = 0; iy < int(v.extent(1)); ++iy)
      for (int ix = 0; ix < int(v.extent(2)); ++ix)
        h(b, iy, ix) = typename View3::value_type(batch_value(b, iy, ix, a));
  Kokkos::deep_copy(v, h);
}

// Image b of a batch as a view of its own, of the batch's layout.
template <class Scalar, class Mem, class View3>
Kokkos::View<Scalar**, typename View3::array_layout, Mem> image_copy(View3 const& batch, int b) {
  Kokkos::View<Scalar**, typename View3::array_layout, Mem> v("image", batch.extent(1), batch.extent(2));
  Kokkos::deep_copy(v, Kokkos::subview(batch, b, Kokkos::ALL, Kokkos::ALL));
  return v;
}

template <class A, class B>
double host_dot(A const& a, B const& b) {
  auto const x = lensing::test::host_values(a), y = lensing::test::host_values(b);
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    s += x[i] * y[i];
  return s;
}

// For each image b of `batch`: op(batch)[b] against op(image b alone, in a
// view of the batch's layout, so the same code path).  tol = 0: bit-identical.  Returns the number of pixels
// that differ by more than tol, over apply and apply_adjoint.
template <class Space, class Op, class In, class Out>
long batch_mismatches(Space const& space, Op const& op, In const& batch, Out const& out, double tol) {
  using Scalar = typename Op::scalar_type;
  using Mem = typename Op::memory_space;
  int const n = int(batch.extent(0)), ny = int(batch.extent(1)), nx = int(batch.extent(2));
  long bad = 0;
  for (int adjoint = 0; adjoint < 2; ++adjoint) {
    if (adjoint)
      op.apply_adjoint(space, batch, out);
    else
      op.apply(space, batch, out);
    space.fence();
    auto const hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
    for (int b = 0; b < n; ++b) {
      auto const in1 = image_copy<Scalar, Mem>(batch, b);
      decltype(in1) out1("out1", ny, nx);
      if (adjoint)
        op.apply_adjoint(space, in1, out1);
      else
        op.apply(space, in1, out1);
      space.fence();
      auto const h1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out1);
      for (int iy = 0; iy < ny; ++iy)
        for (int ix = 0; ix < nx; ++ix) {
          double const d = std::fabs(double(hb(b, iy, ix)) - double(h1(iy, ix)));
          bad += tol == 0 ? (hb(b, iy, ix) != h1(iy, ix)) : !(d <= tol);
        }
    }
  }
  return bad;
}

template <class Scalar>
lensing::PsfKernel<Scalar> asymmetric_kernel(int size) {
  std::vector<Scalar> kv(size * size);
  for (int i = 0; i < size * size; ++i)
    kv[i] = Scalar(1 + 0.5 * std::sin(2.3 * i + 0.4));  // positive, no symmetry
  return lensing::pixel_kernel(kv, size);
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("PSF operators map a batch image by image, as the same call on each image", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  using Batch = lensing::View3D<Scalar, Mem>;
  using LeftBatch = Kokkos::View<Scalar***, Kokkos::LayoutLeft, Mem>;
  Space space;
  double const eps = std::numeric_limits<Scalar>::epsilon();
  int const ny = 13, nx = 10;
  for (int n : {1, 5}) {
    Batch x("x", n, ny, nx), out("out", n, ny, nx);
    fill_batch(x, 0.7);
    LeftBatch xl("xl", n, ny, nx), outl("outl", n, ny, nx);
    Kokkos::deep_copy(xl, x);
    // GaussianFilter: work buffer of 1 image (5 chunks), 2 (chunks 2 + 2 + 1)
    // and 8 (one pass): the same sums whatever the chunking and layout.
    for (int max_batch : {1, 2, 8}) {
      lensing::GaussianFilter<Scalar, Mem> const G(0.2, 0.05, ny, nx, 5.0, max_batch);
      CHECK(G.max_batch() == max_batch);
      CHECK_MESSAGE(batch_mismatches(space, G, x, out, 0.0) == 0, "GaussianFilter n ", n, " max_batch ", max_batch);
      CHECK_MESSAGE(batch_mismatches(space, G, xl, outl, 0.0) == 0, "GaussianFilter LayoutLeft n ", n, " max_batch ",
                    max_batch);
      // A clone filters the same way with its own buffers.
      CHECK(batch_mismatches(space, G.clone(), x, out, 0.0) == 0);
    }
    lensing::DirectConvolution<Scalar, Mem> const D(asymmetric_kernel<Scalar>(5), ny, nx);
    CHECK_MESSAGE(batch_mismatches(space, D, x, out, 0.0) == 0, "DirectConvolution n ", n);
    CHECK_MESSAGE(batch_mismatches(space, D, xl, outl, 0.0) == 0, "DirectConvolution LayoutLeft n ", n);
    // FftConvolution: today each image goes through the single-image plan
    // (bit-identical), but a batched plan may order the transform's sums
    // differently.  Error model: each output of a zero-padded FFT convolution
    // is off by <= c eps log2(P) sum|K| max|x| (P padded pixels, c ~ 1 for
    // FFTW's Cooley-Tukey; c = 5 with room), so two computations differ by at
    // most twice that; sum|K| = 1, max|x| <= 1.2.
    auto const k = lensing::gaussian_psf_kernel<Scalar>(0.25, 0.05);
    lensing::FftConvolution<Scalar, Mem> const F(space, k, ny, nx);
    double const P = double(ny + 2 * k.radius()) * (nx + 2 * k.radius());
    double const tol_fft = 2 * 5 * eps * std::log2(P) * 1.2;
    CHECK_MESSAGE(batch_mismatches(space, F, x, out, tol_fft) == 0, "FftConvolution n ", n);
    CHECK_MESSAGE(batch_mismatches(space, F, xl, outl, tol_fft) == 0, "FftConvolution LayoutLeft n ", n);
  }
  // Rows wider than GaussianFilter's stack buffer (host): padded rows in memory.
  {
    int const wy = 3, wx = 1100;
    Batch x("x", 3, wy, wx), out("out", 3, wy, wx);
    fill_batch(x, 0.05);
    lensing::GaussianFilter<Scalar, Mem> const G(0.3, 0.05, wy, wx, 5.0, 2);
    CHECK(batch_mismatches(space, G, x, out, 0.0) == 0);
  }
}

LENSING_TEST_CASE_TEMPLATE("PSF operators on batches: adjoint identity <A x, y> = <x, A^T y>", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  using Batch = lensing::View3D<Scalar, Mem>;
  Space space;
  double const eps = std::numeric_limits<Scalar>::epsilon();
  int const n = 4, ny = 12, nx = 9;
  Batch x("x", n, ny, nx), y("y", n, ny, nx), Ax("Ax", n, ny, nx), Aty("Aty", n, ny, nx);
  fill_batch(x, 0.7);
  fill_batch(y, -0.4);
  // Error model: each output of A x (and A^T y) in Scalar is off by at most
  // L eps sum|K| max|x| (L roundings along its sum: 2r + 2 per pass), the
  // double dot products add nothing visible, so over N = n ny nx pixels
  //   |<A x, y> - <x, A^T y>| <= N L eps (max|x| max|y| + max|y| max|x|),
  // sum|K| = 1 and max|x|, max|y| <= 1.2.  FFT: L = 5 log2(P).
  auto const check = [&](auto const& A, double L, char const* name) {
    A.apply(space, x, Ax);
    A.apply_adjoint(space, y, Aty);
    space.fence();
    double const lhs = host_dot(Ax, y), rhs = host_dot(x, Aty);
    double const tol = double(n) * ny * nx * L * eps * 2 * 1.2 * 1.2;
    CHECK_MESSAGE(std::fabs(lhs - rhs) <= tol, std::string(name), ": <Ax, y> = ", lhs, ", <x, A^T y> = ", rhs,
                  ", model ", tol);
    // The identity must not hold by accident: a nonzero, non-symmetric map.
    CHECK(std::fabs(lhs) > 1e-3);
  };
  lensing::GaussianFilter<Scalar, Mem> const G(0.3, 0.05, ny, nx, 5.0, 3);
  check(G, 2.0 * (2 * G.radius() + 2), "GaussianFilter");
  auto const k = asymmetric_kernel<Scalar>(5);
  lensing::DirectConvolution<Scalar, Mem> const D(k, ny, nx);
  check(D, 25 + 1, "DirectConvolution");
  lensing::FftConvolution<Scalar, Mem> const F(space, k, ny, nx);
  check(F, 5 * std::log2(double(ny + 4) * (nx + 4)), "FftConvolution");
  // The adjoint of a batch is not the forward map (asymmetric kernel).
  D.apply(space, y, Ax);
  space.fence();
  CHECK(lensing::test::rel_diff(lensing::test::host_values(Ax), lensing::test::host_values(Aty)) > 1e-3);
}

LENSING_TEST_CASE_TEMPLATE("PSF operators refuse batches of the wrong extents, naming the culprit", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  using Batch = lensing::View3D<Scalar, Mem>;
  Space space;
  int const ny = 6, nx = 5;
  lensing::GaussianFilter<Scalar, Mem> const G(0.2, 0.05, ny, nx, 5.0, 2);
  auto const k = lensing::gaussian_psf_kernel<Scalar>(0.2, 0.05);
  lensing::DirectConvolution<Scalar, Mem> const D(k, ny, nx);
  lensing::FftConvolution<Scalar, Mem> const F(space, k, ny, nx);
  Batch x("x", 3, ny, nx), out("out", 3, ny, nx), fewer("fewer", 2, ny, nx), taller("taller", 3, ny + 1, nx),
      empty("empty", 0, ny, nx), empty_out("empty_out", 0, ny, nx);
  auto const refuses = [&](auto const& call, std::string const& what) {
    CHECK_THROWS_AS(call(), std::invalid_argument);
    std::string const msg = lensing::test::error_message(call);
    CHECK_MESSAGE(msg.find(what) != std::string::npos, "message \"", msg, "\" lacks \"", what, "\"");
  };
  auto const all = [&](auto const& A, std::string const& name) {
    refuses([&] { A.apply(space, x, fewer); },
            name + "::apply: output must have extents (n, ny, nx) = (3, 6, 5), got (2, 6, 5)");
    refuses([&] { A.apply_adjoint(space, fewer, x); },
            name + "::apply_adjoint: output must have extents (n, ny, nx) = (2, 6, 5), got (3, 6, 5)");
    refuses([&] { A.apply(space, taller, out); },
            name + "::apply: input must have extents (n, ny, nx) = (3, 6, 5), got (3, 7, 5)");
    refuses([&] { A.apply(space, empty, empty_out); }, name + "::apply: a batch (n, ny, nx) must hold at least one");
    refuses([&] { A.apply(space, x, x); }, name + "::apply: input and output must be different views");
  };
  all(G, "lensing::GaussianFilter");
  all(D, "lensing::DirectConvolution");
  all(F, "lensing::FftConvolution");
}

namespace {
struct RankTwoOnly {  // a PSF operator that does not declare batches
  template <class ExecutionSpace, class In, class Out>
  void apply(ExecutionSpace const& space, In const& in, Out const& out) const {
    Kokkos::deep_copy(space, out, in);
  }
  template <class ExecutionSpace, class In, class Out>
  void apply_adjoint(ExecutionSpace const& space, In const& in, Out const& out) const {
    Kokkos::deep_copy(space, out, in);
  }
};
struct DeclinesBatches : RankTwoOnly {
  static constexpr bool accepts_batches = false;
};
}  // namespace

static_assert(lensing::psf_accepts_batches_v<lensing::GaussianFilter<float, Kokkos::HostSpace>>, "GaussianFilter");
static_assert(lensing::psf_accepts_batches_v<lensing::DirectConvolution<double, Kokkos::HostSpace>>, "Direct");
static_assert(lensing::psf_accepts_batches_v<lensing::FftConvolution<double, Kokkos::HostSpace>>, "Fft");
static_assert(lensing::psf_accepts_batches_v<lensing::NoPsf<float>>, "NoPsf");
static_assert(!lensing::psf_accepts_batches_v<RankTwoOnly>, "undeclared: no batches");
static_assert(!lensing::psf_accepts_batches_v<DeclinesBatches>, "declared false");
static_assert(!lensing::psf_accepts_batches_v<int>, "not an operator");
static_assert(lensing::is_psf_operator_v<RankTwoOnly, double, Kokkos::HostSpace>, "still a PsfOperator");

LENSING_TEST_CASE_TEMPLATE("NoPsf copies batches", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  Space space;
  lensing::View3D<Scalar, Mem> x("x", 3, 4, 5), out("out", 3, 4, 5);
  fill_batch(x, 0.3);
  lensing::NoPsf<Scalar>{}.apply(space, x, out);
  space.fence();
  CHECK(lensing::test::host_values(out) == lensing::test::host_values(x));
}
