#ifndef LENSING_DEFLECTION_CONVERGENCE_DEFLECTION_HPP
#define LENSING_DEFLECTION_CONVERGENCE_DEFLECTION_HPP

/// \file
/// Deflection and potential maps from a convergence map, by FFT convolution
/// with the pixel-integrated Poisson kernels (deflection/kernels.hpp), and by
/// direct summation (O(N^2), for small maps and for checking the FFT).

// FFTW (and cuFFT with CUDA) come with the fft component of the CMake
// package, whose target lensing::fft defines LENSING_HAS_FFT.
#if !defined(LENSING_HAS_FFT)
#error \
    "lensing/deflection/convergence_deflection.hpp needs the fft component: find_package(lensing COMPONENTS fft) and link lensing::fft"
#endif

#include <lensing/core/errors.hpp>
#include <lensing/core/parallel.hpp>
#include <lensing/core/views.hpp>
#include <lensing/deflection/kernels.hpp>
#include <lensing/geometry/pixel_grid.hpp>

#include <fftw3.h>
#include <Kokkos_Complex.hpp>

#include <string>
#include <type_traits>

#if defined(KOKKOS_ENABLE_CUDA)
#include <cufft.h>
#endif

namespace lensing {

namespace detail {
template <class Scalar>
struct Fftw;
template <>
struct Fftw<double> {
  using plan = fftw_plan;
  using complex = fftw_complex;
  static plan r2c(int n0, int n1, double* in, complex* out) {
    return fftw_plan_dft_r2c_2d(n0, n1, in, out, FFTW_ESTIMATE);
  }
  static plan c2r(int n0, int n1, complex* in, double* out) {
    return fftw_plan_dft_c2r_2d(n0, n1, in, out, FFTW_ESTIMATE);
  }
  static void exec_r2c(plan p, double* in, complex* out) { fftw_execute_dft_r2c(p, in, out); }
  static void exec_c2r(plan p, complex* in, double* out) { fftw_execute_dft_c2r(p, in, out); }
  static void destroy(plan p) { fftw_destroy_plan(p); }
};
template <>
struct Fftw<float> {
  using plan = fftwf_plan;
  using complex = fftwf_complex;
  static plan r2c(int n0, int n1, float* in, complex* out) {
    return fftwf_plan_dft_r2c_2d(n0, n1, in, out, FFTW_ESTIMATE);
  }
  static plan c2r(int n0, int n1, complex* in, float* out) {
    return fftwf_plan_dft_c2r_2d(n0, n1, in, out, FFTW_ESTIMATE);
  }
  static void exec_r2c(plan p, float* in, complex* out) { fftwf_execute_dft_r2c(p, in, out); }
  static void exec_c2r(plan p, complex* in, float* out) { fftwf_execute_dft_c2r(p, in, out); }
  static void destroy(plan p) { fftwf_destroy_plan(p); }
};

template <class MemorySpace>
constexpr bool is_host_memory_v = Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemorySpace>::accessible;

#if defined(KOKKOS_ENABLE_CUDA)
template <class Scalar>
struct Cufft;
template <>
struct Cufft<double> {
  static constexpr cufftType r2c_type = CUFFT_D2Z, c2r_type = CUFFT_Z2D;
  static cufftResult r2c(cufftHandle p, double* in, Kokkos::complex<double>* out) {
    return cufftExecD2Z(p, in, reinterpret_cast<cufftDoubleComplex*>(out));
  }
  static cufftResult c2r(cufftHandle p, Kokkos::complex<double>* in, double* out) {
    return cufftExecZ2D(p, reinterpret_cast<cufftDoubleComplex*>(in), out);
  }
};
template <>
struct Cufft<float> {
  static constexpr cufftType r2c_type = CUFFT_R2C, c2r_type = CUFFT_C2R;
  static cufftResult r2c(cufftHandle p, float* in, Kokkos::complex<float>* out) {
    return cufftExecR2C(p, in, reinterpret_cast<cufftComplex*>(out));
  }
  static cufftResult c2r(cufftHandle p, Kokkos::complex<float>* in, float* out) {
    return cufftExecC2R(p, reinterpret_cast<cufftComplex*>(in), out);
  }
};

// Bind `plan` to the stream of the execution space instance the caller works
// on, so that the transform is ordered after the kernels already launched on
// that instance and before the ones that follow (a plan left on the default
// stream would race with kernels on a user's stream, and a global fence would
// wait on every other instance too).  cuFFT transforms on CUDA memory run on
// a Kokkos::Cuda instance.
template <class ExecutionSpace>
void cufft_bind_stream(cufftHandle plan, ExecutionSpace const& space, char const* where) {
  static_assert(std::is_same<ExecutionSpace, Kokkos::Cuda>::value,
                "lensing: FFTs of CUDA memory (cuFFT) run on a Kokkos::Cuda execution space instance");
  check_argument(cufftSetStream(plan, space.cuda_stream()) == CUFFT_SUCCESS, where, "cufftSetStream failed");
}
#endif
}  // namespace detail

namespace detail {
// Kernels of ConvergenceDeflection, as free functions: nvcc does not allow
// extended lambdas in constructors or private member functions.

// Poisson kernel `which` (0: alpha_x, 1: alpha_y, 2: psi) on the padded,
// wrapped offset grid: index i <-> offset i (i < n) or i - 2n (i >= n); the
// offset n never meets a pixel of the map.
template <class ExecutionSpace, class RealView, class Scalar>
void fill_poisson_kernel(ExecutionSpace const& space, RealView const& real, int ny, int nx, Scalar d, int which) {
  int const py = 2 * ny, px = 2 * nx;
  Kokkos::parallel_for(
      "lensing::deflection::kernel", Kokkos::RangePolicy<ExecutionSpace>(space, 0, py), KOKKOS_LAMBDA(int iy) {
        for (int ix = 0; ix < px; ++ix) {
          int const oy = iy < ny ? iy : iy - py, ox = ix < nx ? ix : ix - px;
          Scalar v = 0;
          if (oy != -ny && ox != -nx) {
            Scalar const X = Scalar(ox) * d, Y = Scalar(oy) * d;
            v = which == 0   ? pixel_kernel_x(X, Y, d)
                : which == 1 ? pixel_kernel_x(Y, X, d)
                             : pixel_kernel_potential(X, Y, d);
          }
          real(iy, ix) = v;
        }
      });
}

// real = kappa zero-padded to (2ny, 2nx).
template <class ExecutionSpace, class RealView, class KView>
void load_padded(ExecutionSpace const& space, RealView const& real, KView const& kappa, int ny, int nx) {
  using Scalar = typename RealView::non_const_value_type;
  int const px = static_cast<int>(real.extent(1));
  parallel_for_pixels(
      "lensing::deflection::load", space, static_cast<int>(real.extent(0)), px,
      KOKKOS_LAMBDA(int iy, int ix) { real(iy, ix) = (iy < ny && ix < nx) ? kappa(iy, ix) : Scalar(0); });
}

// w = a * b * scale, elementwise on half spectra.
template <class ExecutionSpace, class HatA, class HatB, class HatW, class Scalar>
void multiply_spectra(ExecutionSpace const& space, HatA const& a, HatB const& b, HatW const& w, Scalar scale) {
  parallel_for_pixels(
      "lensing::deflection::multiply", space, static_cast<int>(w.extent(0)), static_cast<int>(w.extent(1)),
      KOKKOS_LAMBDA(int iy, int ix) { w(iy, ix) = a(iy, ix) * b(iy, ix) * scale; });
}

// out = the (ny, nx) corner of the padded result.
template <class ExecutionSpace, class RealView, class OView>
void crop_padded(ExecutionSpace const& space, RealView const& real, OView const& out, int ny, int nx) {
  parallel_for_pixels(
      "lensing::deflection::crop", space, ny, nx, KOKKOS_LAMBDA(int iy, int ix) { out(iy, ix) = real(iy, ix); });
}
}  // namespace detail

/// Deflection (and potential) of a convergence map, by zero-padded FFT
/// convolution with the exact pixel-integrated Poisson kernels.
///
/// The map is kappa(iy, ix) on the pixel centres of `grid` (supersampling is
/// ignored: give the grid whose pixels the map samples), taken as constant
/// over each pixel.  Then, for every pixel centre x_i,
///   alpha(x_i) = (1/pi) sum_j kappa_j int_{pixel j} (x_i - x')/|x_i - x'|^2 d^2x',
///   psi(x_i)   = (1/pi) sum_j kappa_j int_{pixel j} ln|x_i - x'| d^2x'  [arcsec^2],
/// exactly (no aliasing: the arrays are padded to 2ny x 2nx), with no
/// singularity at r = 0 (the kernel is integrated over each pixel).  Mass
/// outside the map is absent: near the borders alpha differs from that of the
/// untruncated profile.
///
/// Backends: FFTW (float or double) for host memory; cuFFT for CUDA memory
/// (compiled when Kokkos has CUDA).  Plans and buffers are built once in the
/// constructor; apply() allocates nothing.  Cost: 3 (deflection) or 2
/// (potential) FFTs of (2ny) x (2nx) per call.
template <class Scalar, class MemorySpace>
class ConvergenceDeflection {
  static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value,
                "lensing::ConvergenceDeflection: Scalar must be float or double");
  using Complex = Kokkos::complex<Scalar>;

 public:
  /// Plans for maps of `grid`'s size; `space` builds the kernels.
  template <class ExecutionSpace>
  ConvergenceDeflection(ExecutionSpace const& space, PixelGrid<Scalar> const& grid)
      : m_grid(grid),
        m_ny(grid.ny()),
        m_nx(grid.nx()),
        m_py(2 * grid.ny()),
        m_px(2 * grid.nx()),
        m_real(allocate_view<RealView>("lensing::ConvergenceDeflection", "lensing::ConvergenceDeflection::real", true,
                                       2L * grid.ny(), 2L * grid.nx())),
        m_kappa_hat(allocate_view<HatView>("lensing::ConvergenceDeflection",
                                           "lensing::ConvergenceDeflection::kappa_hat", true, 2L * grid.ny(),
                                           grid.nx() + 1L)),
        m_work_hat(allocate_view<HatView>("lensing::ConvergenceDeflection", "lensing::ConvergenceDeflection::work_hat",
                                          true, 2L * grid.ny(), grid.nx() + 1L)),
        m_kernel_hat(allocate_view<Kokkos::View<Complex***, Kokkos::LayoutRight, MemorySpace>>(
            "lensing::ConvergenceDeflection", "lensing::ConvergenceDeflection::kernel_hat", true, 3, 2L * grid.ny(),
            grid.nx() + 1L)) {
    static_assert(is_execution_space_v<ExecutionSpace>,
                  "lensing::ConvergenceDeflection: first argument must be a Kokkos execution space");
    make_plans();
    // Kernels on the padded, wrapped offset grid: index i <-> offset i (i < n)
    // or i - 2n (i >= n); the offset n never meets a pixel of the map.
    for (int which = 0; which < 3; ++which) {
      detail::fill_poisson_kernel(space, m_real, m_ny, m_nx, grid.pixel_scale(), which);
      space.fence();
      forward(space, m_real, Kokkos::subview(m_kernel_hat, which, Kokkos::ALL, Kokkos::ALL));
    }
  }

  ConvergenceDeflection(ConvergenceDeflection const&) = delete;
  ConvergenceDeflection& operator=(ConvergenceDeflection const&) = delete;
  ~ConvergenceDeflection() { destroy_plans(); }

  PixelGrid<Scalar> const& grid() const { return m_grid; }

  /// alpha_x, alpha_y (ny, nx) from kappa (ny, nx).  Synchronous.
  template <class ExecutionSpace, class KView, class AView>
  void deflection(ExecutionSpace const& space, KView const& kappa, AView const& alpha_x, AView const& alpha_y) {
    constexpr char const* where = "lensing::ConvergenceDeflection::deflection";
    check_map(where, kappa, "kappa");
    check_map(where, alpha_x, "alpha_x");
    check_map(where, alpha_y, "alpha_y");
    load(space, kappa);
    forward(space, m_real, m_kappa_hat);
    convolve_into(space, 0, alpha_x);
    convolve_into(space, 1, alpha_y);
  }

  /// psi (ny, nx) from kappa (ny, nx), in arcsec^2 (defined up to a constant
  /// that depends on the map's extent).  Synchronous.
  template <class ExecutionSpace, class KView, class PView>
  void potential(ExecutionSpace const& space, KView const& kappa, PView const& psi) {
    constexpr char const* where = "lensing::ConvergenceDeflection::potential";
    check_map(where, kappa, "kappa");
    check_map(where, psi, "psi");
    load(space, kappa);
    forward(space, m_real, m_kappa_hat);
    convolve_into(space, 2, psi);
  }

 private:
  template <class View>
  void check_map(char const* where, View const& v, char const* name) const {
    static_assert(View::rank == 2, "lensing::ConvergenceDeflection: maps are rank-2 views (iy, ix)");
    static_assert(std::is_same<typename View::non_const_value_type, Scalar>::value,
                  "lensing::ConvergenceDeflection: maps must hold the same Scalar");
    static_assert(Kokkos::SpaceAccessibility<typename View::memory_space, MemorySpace>::accessible ||
                      std::is_same<typename View::memory_space, MemorySpace>::value,
                  "lensing::ConvergenceDeflection: maps must live in the operator's memory space");
    check_extents(v, where, name, "(ny, nx)", m_ny, m_nx);
  }

  template <class ExecutionSpace, class KView>
  void load(ExecutionSpace const& space, KView const& kappa) {
    detail::load_padded(space, m_real, kappa, m_ny, m_nx);
    space.fence();
  }

  // out = IFFT(kappa_hat * kernel_hat[which]) / N, cropped to the map: the
  // linear convolution's value at pixel i sits at index i of the padded array.
  template <class ExecutionSpace, class OView>
  void convolve_into(ExecutionSpace const& space, int which, OView const& out) {
    Scalar const inv_n = Scalar(1) / (Scalar(m_py) * Scalar(m_px));
    detail::multiply_spectra(space, m_kappa_hat, Kokkos::subview(m_kernel_hat, which, Kokkos::ALL, Kokkos::ALL),
                             m_work_hat, inv_n);
    space.fence();
    inverse(space, m_work_hat, m_real);
    detail::crop_padded(space, m_real, out, m_ny, m_nx);
    space.fence();
  }

  //--------------------------------------------------------------------------
  // FFT backends.
  using RealView = View2D<Scalar, MemorySpace>;
  using HatView = Kokkos::View<Complex**, Kokkos::LayoutRight, MemorySpace>;

#if defined(KOKKOS_ENABLE_CUDA)
  static constexpr bool use_cufft = !detail::is_host_memory_v<MemorySpace>;
  cufftHandle m_cu_r2c = 0, m_cu_c2r = 0;
#else
  static constexpr bool use_cufft = false;
#endif
  typename detail::Fftw<Scalar>::plan m_r2c = nullptr, m_c2r = nullptr;

  void make_plans() {
    if constexpr (use_cufft) {
#if defined(KOKKOS_ENABLE_CUDA)
      check_argument(cufftPlan2d(&m_cu_r2c, m_py, m_px, detail::Cufft<Scalar>::r2c_type) == CUFFT_SUCCESS &&
                         cufftPlan2d(&m_cu_c2r, m_py, m_px, detail::Cufft<Scalar>::c2r_type) == CUFFT_SUCCESS,
                     "lensing::ConvergenceDeflection", "cuFFT plan creation failed");
#endif
    } else {
      // FFTW_ESTIMATE leaves the arrays untouched while planning.
      m_r2c = detail::Fftw<Scalar>::r2c(m_py, m_px, m_real.data(),
                                        reinterpret_cast<typename detail::Fftw<Scalar>::complex*>(m_work_hat.data()));
      m_c2r = detail::Fftw<Scalar>::c2r(
          m_py, m_px, reinterpret_cast<typename detail::Fftw<Scalar>::complex*>(m_work_hat.data()), m_real.data());
      check_argument(m_r2c != nullptr && m_c2r != nullptr, "lensing::ConvergenceDeflection",
                     "FFTW plan creation failed");
    }
  }
  void destroy_plans() {
    if constexpr (use_cufft) {
#if defined(KOKKOS_ENABLE_CUDA)
      cufftDestroy(m_cu_r2c);
      cufftDestroy(m_cu_c2r);
#endif
    } else {
      if (m_r2c) detail::Fftw<Scalar>::destroy(m_r2c);
      if (m_c2r) detail::Fftw<Scalar>::destroy(m_c2r);
    }
  }
  // The transforms run on `space` (cuFFT: on its stream) and have finished
  // when these return: the FFTW results are read by the next kernel, and the
  // operator's API is synchronous.
  template <class ExecutionSpace, class Out>
  void forward(ExecutionSpace const& space, RealView const& in, Out const& out) {
    (void)space;  // FFTW runs on the calling host thread
    if constexpr (use_cufft) {
#if defined(KOKKOS_ENABLE_CUDA)
      detail::cufft_bind_stream(m_cu_r2c, space, "lensing::ConvergenceDeflection");
      check_argument(detail::Cufft<Scalar>::r2c(m_cu_r2c, in.data(), out.data()) == CUFFT_SUCCESS,
                     "lensing::ConvergenceDeflection", "cuFFT forward transform failed");
      space.fence();
#endif
    } else {
      detail::Fftw<Scalar>::exec_r2c(m_r2c, in.data(),
                                     reinterpret_cast<typename detail::Fftw<Scalar>::complex*>(out.data()));
    }
  }
  template <class ExecutionSpace>
  void inverse(ExecutionSpace const& space, HatView const& in, RealView const& out) {
    (void)space;  // FFTW runs on the calling host thread
    if constexpr (use_cufft) {
#if defined(KOKKOS_ENABLE_CUDA)
      detail::cufft_bind_stream(m_cu_c2r, space, "lensing::ConvergenceDeflection");
      check_argument(detail::Cufft<Scalar>::c2r(m_cu_c2r, in.data(), out.data()) == CUFFT_SUCCESS,
                     "lensing::ConvergenceDeflection", "cuFFT inverse transform failed");
      space.fence();
#endif
    } else {
      // c2r overwrites its input; the product is rebuilt on each call anyway.
      detail::Fftw<Scalar>::exec_c2r(m_c2r, reinterpret_cast<typename detail::Fftw<Scalar>::complex*>(in.data()),
                                     out.data());
    }
  }

  PixelGrid<Scalar> m_grid;
  int m_ny, m_nx, m_py, m_px;
  RealView m_real;
  HatView m_kappa_hat, m_work_hat;
  Kokkos::View<Complex***, Kokkos::LayoutRight, MemorySpace> m_kernel_hat;
};

/// Deflection of a convergence map by direct summation over its pixels with
/// the same pixel-integrated kernel (O((ny nx)^2): small maps, and the
/// reference for the FFT).  alpha_x, alpha_y, kappa: (ny, nx) on `space`.
template <class ExecutionSpace, class Scalar, class KView, class AView>
void convergence_deflection_direct(ExecutionSpace const& space, PixelGrid<Scalar> const& grid, KView const& kappa,
                                   AView const& alpha_x, AView const& alpha_y) {
  constexpr char const* where = "lensing::convergence_deflection_direct";
  int const ny = grid.ny(), nx = grid.nx();
  check_argument(kappa.extent(0) == size_t(ny) && kappa.extent(1) == size_t(nx), where, "kappa must be (ny, nx)");
  check_argument(alpha_x.extent(0) == size_t(ny) && alpha_x.extent(1) == size_t(nx) &&
                     alpha_y.extent(0) == size_t(ny) && alpha_y.extent(1) == size_t(nx),
                 where, "alpha_x and alpha_y must be (ny, nx)");
  Scalar const d = grid.pixel_scale();
  Kokkos::parallel_for(
      "lensing::deflection::direct", Kokkos::MDRangePolicy<ExecutionSpace, Kokkos::Rank<2>>(space, {0, 0}, {ny, nx}),
      KOKKOS_LAMBDA(int iy, int ix) {
        Scalar ax = 0, ay = 0;
        for (int jy = 0; jy < ny; ++jy)
          for (int jx = 0; jx < nx; ++jx) {
            Scalar const X = Scalar(ix - jx) * d, Y = Scalar(iy - jy) * d, k = kappa(jy, jx);
            ax += k * detail::pixel_kernel_x(X, Y, d);
            ay += k * detail::pixel_kernel_x(Y, X, d);
          }
        alpha_x(iy, ix) = ax;
        alpha_y(iy, ix) = ay;
      });
}

}  // namespace lensing

#endif  // LENSING_DEFLECTION_CONVERGENCE_DEFLECTION_HPP
