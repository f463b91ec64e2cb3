#include <lensing/likelihood/gaussian.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/convolution.hpp>
#include <lensing/psf/fft_convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/sources/pixelated.hpp>
#include <lensing/sources/sersic.hpp>
#include <lensing/sources/shapelets.hpp>

#include <lensing_test.hpp>
#include "perturbed_data.hpp"

#if defined(KOKKOS_ENABLE_OPENMP)
#include <omp.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace {
using Lens = lensing::Composite<lensing::SIE<double>, lensing::ExternalShear<double>>;
using Model = lensing::LensModel<Lens, lensing::SersicEllipse<double>, lensing::SersicEllipse<double>>;
using Model2 = lensing::LensModel<Lens, lensing::Shapelets<double, 2>, lensing::NoLight<double>>;

std::vector<double> theta0() {
  return {1.05, 0.05,  -0.03, 0.013, -0.021,                  // SIE
          0.03, -0.02, 0.0,   0.0,                            // shear
          20.0, 0.25,  1.6,   0.08,  -0.05,  0.06,  0.03,     // source
          8.0,  0.6,   3.2,   -0.06, 0.04,   0.013, -0.021};  // lens light
}

template <class Space, class M, class Psf>
void check_gradient(lensing::Observation<double, typename Space::memory_space, Psf> const& obs, std::vector<double> t0,
                    double rtol) {
  using Mem = typename Space::memory_space;
  Space space;
  auto const grid = obs.grid();
  int const ny = grid.ny(), nx = grid.nx();
  // Data: the model at a shifted parameter vector plus a fixed pattern, so
  // that the residuals are not zero; a mask with a hole; a varying noise map.
  lensing::View2D<double, Mem> data("data", ny, nx), noise("noise", ny, nx), mask("mask", ny, nx);
  make_perturbed_data<M>(space, obs, t0, data, noise, mask);
  lensing::GaussianLikelihood<M, Mem, Psf> const like(obs, data, noise, mask);
  lensing::View1D<double, Mem> grad("grad", M::num_params);
  auto const model = M::unpack(t0.data());
  model.check();
  double const v = like.value_and_gradient(space, model, grad);
  CHECK(v == doctest::Approx(like.value(space, model)).epsilon(1e-13));
  CHECK(v < 0);
  auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad);
  int bad = 0;
  for (int k = 0; k < M::num_params; ++k) {
    double const h = 1e-6 * std::max(1.0, std::fabs(t0[k]));
    auto tp = t0, tm = t0;
    tp[k] += h;
    tm[k] -= h;
    double const fd = (like.value(space, M::unpack(tp.data())) - like.value(space, M::unpack(tm.data()))) / (2 * h);
    if (std::getenv("LENSING_VERBOSE")) MESSAGE(k << " " << hg(k) << " " << fd << " v=" << v);
    if (!(std::fabs(hg(k) - fd) <= rtol * (std::fabs(fd) + 1e-2 * std::fabs(v)))) {
      ++bad;
      MESSAGE("parameter " << k << ": gradient " << hg(k) << ", finite differences " << fd);
    }
  }
  CHECK(bad == 0);
}
}  // namespace

LENSING_TEST_CASE_TEMPLATE("likelihood gradient matches finite differences for every parameter", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  for (int k : {1, 2}) {
    auto const grid = lensing::PixelGrid<double>(20, 18, 0.12, k, 0.004, -0.007);
    lensing::GaussianFilter<double, Mem> const psf(0.25, 0.12, 18, 20);
    lensing::Observation<double, Mem, lensing::GaussianFilter<double, Mem>> const obs(grid, psf);
    check_gradient<Space, Model>(obs, theta0(), 1e-5);
  }
  // Pixel-kernel PSF and a shapelet source without lens light.
  auto const grid = lensing::PixelGrid<double>(16, 16, 0.15, 3);
  auto const kern = lensing::moffat_psf_kernel<double>(0.3, 2.5, 0.15, 5);
  lensing::DirectConvolution<double, Mem> const psf(kern, 16, 16);
  lensing::Observation<double, Mem, lensing::DirectConvolution<double, Mem>> const obs(grid, psf);
  std::vector<double> t = {1.0, 0.05, -0.03, 0.013, -0.021, 0.03, -0.02, 0.0, 0.0};
  for (double a : {3.0, 1.0, -0.5, 0.4, 0.2, -0.3})
    t.push_back(a);
  t.insert(t.end(), {0.3, 0.05, 0.02});
  check_gradient<Space, Model2>(obs, t, 1e-5);
  // The same through the FFT convolution.
  lensing::FftConvolution<double, Mem> const fft(Space(), kern, 16, 16);
  lensing::Observation<double, Mem, lensing::FftConvolution<double, Mem>> const obs_fft(grid, fft);
  check_gradient<Space, Model2>(obs_fft, t, 1e-5);
}

LENSING_TEST_CASE_TEMPLATE("likelihood rejects bad inputs", Config, lensing::test::DoubleConfigs) {
  using Mem = typename Config::memory_space;
  auto const grid = lensing::PixelGrid<double>::square(8, 0.1);
  lensing::Observation<double, Mem, lensing::NoPsf<double>> const obs(grid, {});
  lensing::View2D<double, Mem> d("d", 8, 8), n("n", 8, 8), m("m", 8, 8), wrong("w", 8, 7);
  Kokkos::deep_copy(n, 1.0);
  Kokkos::deep_copy(m, 1.0);
  using L = lensing::GaussianLikelihood<Model, Mem, lensing::NoPsf<double>>;
  CHECK_NOTHROW(L(obs, d, n, m));
  CHECK_THROWS_AS(L(obs, wrong, n, m), std::invalid_argument);
  CHECK_THROWS_AS(L(obs, d, d, m), std::invalid_argument);  // noise 0
  Kokkos::deep_copy(Kokkos::subview(d, 2, 3), NAN);
  CHECK_THROWS_AS(L(obs, d, n, m), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("likelihood gradient through a lensed pixelated source", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using M = lensing::LensModel<Lens, lensing::PixelatedSource<double>, lensing::NoLight<double>>;
  // A smooth source on a 24^2 grid of 0.05", bicubic.
  lensing::PixelGrid<double> const sgrid(24, 24, 0.05, 1, 0.04, 0.02);
  lensing::View2D<double, Mem> values("values", 24, 24);
  auto hv = Kokkos::create_mirror_view(values);
  for (int iy = 0; iy < 24; ++iy)
    for (int ix = 0; ix < 24; ++ix) {
      double const x = sgrid.x(ix) - 0.05, y = sgrid.y(iy) - 0.01;
      hv(iy, ix) = 30 * std::exp(-(x * x + 2 * y * y) / (2 * 0.1 * 0.1)) + 5 * std::exp(-(x * x + y * y) / 0.08);
    }
  Kokkos::deep_copy(values, hv);
  auto const src = lensing::make_pixelated_source(values, sgrid, lensing::Interpolation::bicubic);
  auto const t0 = theta0();
  std::vector<double> lens_theta(t0.begin(), t0.begin() + Lens::num_params);
  M const model{Lens::unpack(lens_theta.data()), src, {}};
  model.check();
  auto const grid = lensing::PixelGrid<double>(18, 18, 0.12, 2);
  lensing::GaussianFilter<double, Mem> const psf(0.25, 0.12, 18, 18);
  lensing::Observation<double, Mem, lensing::GaussianFilter<double, Mem>> const obs(grid, psf);
  Space space;
  lensing::View2D<double, Mem> data("data", 18, 18), noise("noise", 18, 18), mask("mask", 18, 18);
  auto shifted = lens_theta;
  shifted[0] += 0.02;
  obs.render(space, M{Lens::unpack(shifted.data()), src, {}}, data);
  Kokkos::deep_copy(noise, 0.05);
  Kokkos::deep_copy(mask, 1.0);
  space.fence();
  lensing::GaussianLikelihood<M, Mem, lensing::GaussianFilter<double, Mem>> const like(obs, data, noise, mask);
  lensing::View1D<double, Mem> grad("grad", M::num_params);
  double const v = like.value_and_gradient(space, model, grad);
  CHECK(v < 0);
  auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad);
  int bad = 0;
  for (int k = 0; k < Lens::num_params; ++k) {
    double const h = 1e-6;
    auto tp = lens_theta, tm = lens_theta;
    tp[k] += h;
    tm[k] -= h;
    double const fd = (like.value(space, M{Lens::unpack(tp.data()), src, {}}) -
                       like.value(space, M{Lens::unpack(tm.data()), src, {}})) /
                      (2 * h);
    if (!(std::fabs(hg(k) - fd) <= 1e-5 * (std::fabs(fd) + 1e-2 * std::fabs(v)))) {
      ++bad;
      MESSAGE("lens parameter " << k << ": gradient " << hg(k) << ", finite differences " << fd);
    }
  }
  CHECK(bad == 0);
}

#if defined(KOKKOS_ENABLE_SERIAL) && defined(KOKKOS_ENABLE_OPENMP)
TEST_CASE("likelihood value and gradient do not depend on the thread count") {
  // OpenMP at OMP_NUM_THREADS threads against OpenMP at 1 thread: bitwise
  // equal; Serial against OpenMP within rounding.
  auto run = [](auto space) {
    using Space = decltype(space);
    using Mem = typename Space::memory_space;
    auto const grid = lensing::PixelGrid<double>(30, 26, 0.1, 3);
    lensing::GaussianFilter<double, Mem> const psf(0.2, 0.1, 26, 30);
    lensing::Observation<double, Mem, lensing::GaussianFilter<double, Mem>> const obs(grid, psf);
    auto t = theta0();
    lensing::View2D<double, Mem> data("data", 26, 30), noise("noise", 26, 30), mask("mask", 26, 30);
    obs.render(space, Model::unpack(t.data()), data);
    Kokkos::deep_copy(noise, 0.03);
    Kokkos::deep_copy(mask, 1.0);
    space.fence();
    lensing::GaussianLikelihood<Model, Mem, lensing::GaussianFilter<double, Mem>> const like(obs, data, noise, mask);
    t[0] += 0.01;
    t[12] -= 0.02;
    lensing::View1D<double, Mem> grad("grad", Model::num_params);
    double const v = like.value_and_gradient(space, Model::unpack(t.data()), grad);
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad);
    std::vector<double> out(h.data(), h.data() + Model::num_params);
    out.push_back(v);
    return out;
  };
  // The reduction order is fixed (rows, then blocks of columns), so OpenMP
  // gives the same sums at any thread count; Serial and OpenMP are separate
  // instantiations, which GCC may vectorise differently (libmvec SIMD math
  // differs from scalar libm by a few ulp), so compare them within 1e-12.
  auto const a = run(Kokkos::Serial());
  auto const b = run(Kokkos::OpenMP());
  // The same OpenMP code on a 1-thread pool: Kokkos 3.4 cannot resize its
  // OpenMP pool, but partition_master (with nested parallelism enabled) runs
  // a function on a sub-pool of the requested size.  Meaningful where the
  // process has >= 2 threads (the _omp2 ctest run).
  int const threads = Kokkos::OpenMP::impl_thread_pool_size();
  std::vector<double> c;
  int inner = 0;
  int const levels = omp_get_max_active_levels();
  omp_set_max_active_levels(2);
  Kokkos::OpenMP::partition_master(
      [&](int, int) {
        inner = Kokkos::OpenMP::impl_thread_pool_size();
        c = run(Kokkos::OpenMP());
      },
      1, 1);
  omp_set_max_active_levels(levels);
  CHECK(inner == 1);
  if (threads < 2) MESSAGE("OpenMP pool has 1 thread: 1 vs 1 thread only (run with OMP_NUM_THREADS >= 2)");
  MESSAGE("OpenMP at ", threads, " threads vs ", inner, " thread: bitwise ",
          std::string(b == c ? "equal" : "DIFFERENT"));
  CHECK(b == c);
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(a[i] - b[i]) / std::max(1.0, std::fabs(a[i])));
  MESSAGE("Serial vs OpenMP: max relative difference ", worst);
  CHECK(worst <= 1e-12);
}
#endif
