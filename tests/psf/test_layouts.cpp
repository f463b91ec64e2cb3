// Image operators on views of any layout: LayoutLeft (column-major), strided
// (every other element of a wider array) and padded-row subviews give the
// same images as LayoutRight, and write nothing between strided elements.
// Operators: DirectConvolution, FftConvolution, GaussianFilter (apply and
// apply_adjoint), Renderer::render / render_fine, Observation::render.
// DirectConvolution used to walk raw row pointers whatever the layout (wrong
// by up to 500 on a LayoutLeft image, and writing between strided elements).
#include <lensing/core/math.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/model/render.hpp>
#include <lensing/noise/pixel_noise.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/convolution.hpp>
#include <lensing/psf/fft_convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/psf/kernels.hpp>
#include <lensing/sources/sersic.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace {

double const sentinel = 7.25;

/// The four layouts an image view can have, each over storage pre-filled with
/// `sentinel` so that stray writes show.
template <class Scalar, class Mem>
struct LayoutSet {
  using Right = lensing::View2D<Scalar, Mem>;
  using Left = Kokkos::View<Scalar**, Kokkos::LayoutLeft, Mem>;
  lensing::View3D<Scalar, Mem> wide;  // (ny, nx, 2): the strided view is [:, :, 0]
  lensing::View2D<Scalar, Mem> pad;   // (ny, nx + 3): the padded view is [:, 1 : nx + 1]
  Right right;
  Left left;
  decltype(Kokkos::subview(wide, Kokkos::ALL, Kokkos::ALL, 0)) strided;
  decltype(Kokkos::subview(pad, Kokkos::ALL, std::pair<int, int>(0, 1))) padded;
  LayoutSet(int ny, int nx)
      : wide("wide", ny, nx, 2),
        pad("pad", ny, nx + 3),
        right("right", ny, nx),
        left("left", ny, nx),
        strided(Kokkos::subview(wide, Kokkos::ALL, Kokkos::ALL, 0)),
        padded(Kokkos::subview(pad, Kokkos::ALL, std::pair<int, int>(1, nx + 1))) {
    Kokkos::deep_copy(wide, Scalar(sentinel));
    Kokkos::deep_copy(pad, Scalar(sentinel));
    Kokkos::deep_copy(right, Scalar(sentinel));
    Kokkos::deep_copy(left, Scalar(sentinel));
  }
  /// f(view, name) for each of the four views.
  template <class F>
  void each(F const& f) const {
    f(right, "LayoutRight");
    f(left, "LayoutLeft");
    f(strided, "strided (LayoutStride)");
    f(padded, "padded rows (LayoutStride)");
  }
  /// Elements of the storage outside the views that differ from the sentinel.
  int stray_writes() const {
    auto hw = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), wide);
    auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), pad);
    int n = 0;
    for (std::size_t i = 0; i < hw.extent(0); ++i) {
      for (std::size_t j = 0; j < hw.extent(1); ++j)
        n += hw(i, j, 1) != Scalar(sentinel);
      n += hp(i, 0) != Scalar(sentinel);
      n += hp(i, hp.extent(1) - 1) != Scalar(sentinel);
      n += hp(i, hp.extent(1) - 2) != Scalar(sentinel);
    }
    return n;
  }
};

/// Row-major host copy of any rank-2 view (through a kernel: deep_copy does
/// not convert layouts on every backend).
template <class Space, class V>
std::vector<double> read(V const& v) {
  using Scalar = typename V::non_const_value_type;
  int const ny = int(v.extent(0)), nx = int(v.extent(1));
  lensing::View2D<Scalar, typename V::memory_space> r("r", ny, nx);
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, ny * nx), KOKKOS_LAMBDA(int i) { r(i / nx, i % nx) = v(i / nx, i % nx); });
  Space().fence();
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), r);
  return std::vector<double>(h.data(), h.data() + ny * nx);
}

/// v(iy, ix) = a smooth pattern with sign changes, for any layout.
template <class Space, class V>
void fill(V const& v, double a) {
  int const ny = int(v.extent(0)), nx = int(v.extent(1));
  using Scalar = typename V::non_const_value_type;
  Kokkos::parallel_for(
      Kokkos::RangePolicy<Space>(0, ny * nx), KOKKOS_LAMBDA(int i) {
        int const iy = i / nx, ix = i % nx;
        v(iy, ix) = Scalar(lensing::math::sin(a * ix + 0.37 * iy * iy + 0.3) + 0.5);
      });
  Space().fence();
}

/// op(in, out) for every (input layout, output layout) pair agrees with the
/// LayoutRight pair to tol max(1, max|out|), and writes only inside `out`.
template <class Space, class Scalar, class Op>
void check_operator(std::string const& name, int ny, int nx, double tol, Op const& op) {
  using Mem = typename Space::memory_space;
  LayoutSet<Scalar, Mem> ins(ny, nx);
  ins.each([&](auto const& in, char const*) { fill<Space>(in, 0.71); });
  LayoutSet<Scalar, Mem> const ref_set(ny, nx);
  op(ins.right, ref_set.right);
  Space().fence();
  std::vector<double> const ref = read<Space>(ref_set.right);
  double peak = 1;
  for (double r : ref)
    peak = std::max(peak, std::fabs(r));
  ins.each([&](auto const& in, std::string const& in_name) {
    LayoutSet<Scalar, Mem> const outs(ny, nx);
    outs.each([&](auto const& out, std::string const& out_name) {
      CAPTURE(name);
      CAPTURE(in_name);
      CAPTURE(out_name);
      op(in, out);
      Space().fence();
      std::vector<double> const got = read<Space>(out);
      double err = 0;
      for (std::size_t i = 0; i < ref.size(); ++i)
        err = std::max(err, std::fabs(got[i] - ref[i]));
      CHECK(err <= tol * peak);
    });
    CHECK(outs.stray_writes() == 0);
  });
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("PSF operators give the same image on every view layout", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  Space space;
  // Error model: the layouts change how the sums are evaluated (row pointers
  // or view indexing; vectorised or not), never which terms are summed or in
  // which order, so the only possible difference is the contraction of a
  // multiply-add into an FMA: at most one rounding per tap, |term| <= max|K|
  // max|in| <= 1.5 here; taps <= 49 (7 x 7 kernel) or 2 x 13 (Gaussian, r = 6).
  double const eps = std::numeric_limits<Scalar>::epsilon();
  double const tol = 64 * 1.5 * eps;
  int const ny = 11, nx = 9;
  std::vector<Scalar> kv(49);
  for (int i = 0; i < 49; ++i)
    kv[i] = Scalar(0.02 * (1 + 0.5 * std::sin(2.3 * i + 0.4)));
  auto const k = lensing::pixel_kernel(kv, 7);
  lensing::DirectConvolution<Scalar, Mem> const D(k, ny, nx);
  lensing::FftConvolution<Scalar, Mem> const F(space, k, ny, nx);
  lensing::GaussianFilter<Scalar, Mem> const G(0.3, 0.1, ny, nx);
  REQUIRE(G.radius() == 6);
  auto const apply = [&](auto const& A) { return [&](auto const& in, auto const& out) { A.apply(space, in, out); }; };
  auto const adjoint = [&](auto const& A) {
    return [&](auto const& in, auto const& out) { A.apply_adjoint(space, in, out); };
  };
  check_operator<Space, Scalar>("DirectConvolution::apply", ny, nx, tol, apply(D));
  check_operator<Space, Scalar>("DirectConvolution::apply_adjoint", ny, nx, tol, adjoint(D));
  check_operator<Space, Scalar>("FftConvolution::apply", ny, nx, tol, apply(F));
  check_operator<Space, Scalar>("FftConvolution::apply_adjoint", ny, nx, tol, adjoint(F));
  check_operator<Space, Scalar>("GaussianFilter::apply", ny, nx, tol, apply(G));
  check_operator<Space, Scalar>("GaussianFilter::apply_adjoint", ny, nx, tol, adjoint(G));
}

LENSING_TEST_CASE_TEMPLATE("rendered images are the same on every output layout", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  Space space;
  using Lens = lensing::Composite<lensing::SIE<Scalar>, lensing::ExternalShear<Scalar>>;
  using Source = lensing::SersicEllipse<Scalar>;
  using Light = lensing::NoLight<Scalar>;
  Lens const lens(lensing::SIE<Scalar>{Scalar(1.0), Scalar(0.05), Scalar(-0.03), Scalar(0.01), Scalar(-0.02)},
                  lensing::ExternalShear<Scalar>{Scalar(0.03), Scalar(-0.01), Scalar(0), Scalar(0)});
  Source const source{Scalar(10), Scalar(0.2), Scalar(1.5), Scalar(0.05), Scalar(-0.03), Scalar(0.02), Scalar(0.01)};
  int const n = 12;
  auto const grid = lensing::PixelGrid<Scalar>::square(n, Scalar(0.25), 2);
  lensing::Renderer<Scalar, Mem> const renderer(grid);
  lensing::Observation<Scalar, Mem, lensing::GaussianFilter<Scalar, Mem>> const obs(
      grid, lensing::GaussianFilter<Scalar, Mem>(0.5, 0.25, n, n));
  lensing::LensModel<Lens, Source, Light> const model{lens, source, Light{}};
  // The same kernels write the same values whatever the output layout, up
  // to vectorisation: a vectorised exp/pow (libmvec) may differ from the
  // scalar libm call by a few ulp, on each of the k^2 = 4 sub-pixel terms.
  double const tol = 64 * std::numeric_limits<Scalar>::epsilon();
  auto const ignore_input = [](auto const& op) { return [op](auto const&, auto const& out) { op(out); }; };
  check_operator<Space, Scalar>("Renderer::render", n, n, tol, ignore_input([&](auto const& out) {
                                  renderer.render(space, lens, source, Light{}, out);
                                }));
  check_operator<Space, Scalar>("Observation::render", n, n, tol,
                                ignore_input([&](auto const& out) { obs.render(space, model, out); }));
  check_operator<Space, Scalar>("Renderer::render_fine", 2 * n, 2 * n, tol, ignore_input([&](auto const& out) {
                                  renderer.render_fine(space, lens, source, Light{}, out);
                                }));
}

LENSING_TEST_CASE_TEMPLATE("noise models take row-contiguous images and refuse other layouts", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  Space space;
  int const n = 10;
  LayoutSet<Scalar, Mem> const images(n, n);
  lensing::noise::GaussianNoise<Scalar> const noise{Scalar(0.5)};
  // The host loops address rows through pointers: unit stride along ix is
  // required (LayoutRight, or a subview keeping whole rows, which gives the
  // same draws); LayoutLeft and strided rows are refused, not mis-indexed.
  Kokkos::deep_copy(images.right, Scalar(1));
  lensing::noise::apply(space, noise, images.right, 42);
  Kokkos::deep_copy(images.padded, Scalar(1));
  lensing::noise::apply(space, noise, images.padded, 42);
  space.fence();
  CHECK(read<Space>(images.padded) == read<Space>(images.right));
  CHECK(images.stray_writes() == 0);
  CHECK_THROWS_AS(lensing::noise::apply(space, noise, images.left, 42), std::invalid_argument);
  CHECK_THROWS_AS(lensing::noise::apply(space, noise, images.strided, 42), std::invalid_argument);
}
