#ifndef LENSING_PSF_FFT_CONVOLUTION_HPP
#define LENSING_PSF_FFT_CONVOLUTION_HPP

/// \file
/// PSF convolution by zero-padded FFT (FFTW on the host, cuFFT under CUDA),
/// and its adjoint.

#if !defined(LENSING_HAS_FFT)
#error \
    "lensing/psf/fft_convolution.hpp needs the fft component: find_package(lensing COMPONENTS fft) and link lensing::fft"
#endif

#include <lensing/deflection/convergence_deflection.hpp>
#include <lensing/psf/convolution.hpp>
#include <lensing/psf/kernels.hpp>

#include <memory>
#include <string>
#include <type_traits>

namespace lensing {

namespace detail {
// Free functions (nvcc does not allow extended lambdas in constructors or
// private member functions).
// Image b of `in` (rank 2: b = 0) into the zero-padded buffer.
template <class ExecutionSpace, class RealView, class In>
void psf_load_padded(ExecutionSpace const& space, RealView const& real, In const& in, int b, int ny, int nx) {
  using Scalar = typename RealView::non_const_value_type;
  parallel_for_pixels(
      "lensing::psf::fft_load", space, int(real.extent(0)), int(real.extent(1)),
      KOKKOS_LAMBDA(int iy, int ix) { real(iy, ix) = (iy < ny && ix < nx) ? image_at(in, b, iy, ix) : Scalar(0); });
}
template <class ExecutionSpace, class RealView, class KView>
void psf_load_kernel(ExecutionSpace const& space, RealView const& real, KView const& k) {
  int const py = int(real.extent(0)), px = int(real.extent(1)), r = int(k.extent(0)) / 2;
  using Scalar = typename RealView::non_const_value_type;
  parallel_for_pixels(
      "lensing::psf::fft_kernel", space, py, px, KOKKOS_LAMBDA(int iy, int ix) {
        int const a = iy <= r ? iy : iy - py, b = ix <= r ? ix : ix - px;  // wrapped offsets
        real(iy, ix) = (a >= -r && a <= r && b >= -r && b <= r) ? k(r + a, r + b) : Scalar(0);
      });
}
template <class ExecutionSpace, class Hat, class Scalar>
void psf_multiply(ExecutionSpace const& space, Hat const& w, Hat const& k, bool adjoint, Scalar scale) {
  parallel_for_pixels(
      "lensing::psf::fft_multiply", space, int(w.extent(0)), int(w.extent(1)), KOKKOS_LAMBDA(int iy, int ix) {
        auto const kk = adjoint ? Kokkos::conj(k(iy, ix)) : k(iy, ix);
        w(iy, ix) = w(iy, ix) * kk * scale;
      });
}
template <class ExecutionSpace, class RealView, class Out>
void psf_crop(ExecutionSpace const& space, RealView const& real, Out const& out, int b, int ny, int nx) {
  parallel_for_pixels(
      "lensing::psf::fft_crop", space, ny, nx,
      KOKKOS_LAMBDA(int iy, int ix) { image_at(out, b, iy, ix) = real(iy, ix); });
}
}  // namespace detail

/// The same operator as DirectConvolution (PSF kernel K of odd size 2R+1,
/// zero outside the image, "same" output size) and its exact adjoint, by FFT:
/// the image is zero-padded to (ny + 2R) x (nx + 2R), so the circular
/// convolution equals the linear one on the image (no wrap-around), and the
/// adjoint multiplies by the conjugate spectrum.
///
/// Which to use: direct summation costs (2R+1)^2 multiply-adds per pixel,
/// this two real FFTs of the padded size (~5 N log2 N flops, N the padded
/// pixel count, plus the passes over memory).  Measured (1 thread, double,
/// benchmarks/simulate/bench_render.cpp, BM_psf): direct is 3x faster for
/// 5 x 5 kernels, even at 11 x 11 on 256^2 images, and 3-6x slower at
/// 21 x 21: use the FFT for kernels above about 13 x 13 pixels.  Results agree to rounding
/// (tests/psf/test_psf.cpp).
///
/// apply and apply_adjoint take one image (ny, nx) or a batch (n, ny, nx),
/// n >= 1: the images go one after the other through the same single-image
/// plans and buffers, so each result is bit-identical to applying the
/// operator to that image alone.  (A batched plan, fftw_plan_many_dft_r2c /
/// cufftPlanMany, would need the largest batch at construction and n times
/// the buffers; on the host it would do the same per-image transforms on the
/// calling thread, saving only the per-image load / multiply / crop launches,
/// small next to two transforms of the padded grid.  On CUDA devices, where a
/// launch costs about as much as a small transform, it would pay: the place
/// to change if batched FFT convolution on devices becomes a bottleneck.)
///
/// Backends as ConvergenceDeflection (whose FFTW / cuFFT wrappers it uses):
/// FFTW for host memory, cuFFT for CUDA memory.  Plans and buffers are built
/// in the constructor; apply allocates nothing.  Calls are synchronous.
/// Copies share the plans and buffers (like Views): do not apply one from
/// two threads at once.
template <class Scalar, class MemorySpace>
class FftConvolution {
  static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value,
                "lensing::FftConvolution: Scalar must be float or double");
  using Complex = Kokkos::complex<Scalar>;
  using RealView = View2D<Scalar, MemorySpace>;
  using HatView = Kokkos::View<Complex**, Kokkos::LayoutRight, MemorySpace>;

 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;
  /// apply / apply_adjoint take rank-3 batches (psf_accepts_batches_v).
  static constexpr bool accepts_batches = true;

  template <class ExecutionSpace>
  FftConvolution(ExecutionSpace const& space, PsfKernel<Scalar> const& kernel, int ny, int nx)
      : m_ny(ny), m_nx(nx), m_r(kernel.radius()) {
    static_assert(is_execution_space_v<ExecutionSpace>,
                  "lensing::FftConvolution: first argument must be a Kokkos execution space");
    constexpr char const* where = "lensing::FftConvolution";
    check_count(ny, 1, where, "ny");
    check_count(nx, 1, where, "nx");
    check_argument(kernel.size % 2 == 1 && kernel.values.size() == std::size_t(kernel.size) * kernel.size, where,
                   "kernel must be odd-sized and square (build it with lensing::pixel_kernel)");
    m_py = ny + 2 * m_r;
    m_px = nx + 2 * m_r;
    m_real = allocate_view<RealView>(where, "lensing::FftConvolution::real", true, m_py, m_px);
    m_hat = allocate_view<HatView>(where, "lensing::FftConvolution::hat", true, m_py, m_px / 2 + 1);
    m_kernel_hat = allocate_view<HatView>(where, "lensing::FftConvolution::kernel_hat", true, m_py, m_px / 2 + 1);
    make_plans();
    View2D<Scalar, MemorySpace> k("lensing::FftConvolution::kernel", kernel.size, kernel.size);
    auto h = Kokkos::create_mirror_view(k);
    for (int a = 0; a < kernel.size; ++a)
      for (int b = 0; b < kernel.size; ++b)
        h(a, b) = kernel(a, b);
    Kokkos::deep_copy(k, h);
    detail::psf_load_kernel(space, m_real, k);
    space.fence();
    forward(space, m_kernel_hat);
  }

  int ny() const { return m_ny; }
  int nx() const { return m_nx; }

  /// An independent copy: its own buffers and plans (the kernel transform,
  /// read-only, is shared), so the copy may be applied concurrently with this
  /// one.  Plan creation is not thread-safe in FFTW: clone from one thread at
  /// a time (the samplers clone under kernel_launch_mutex()).
  FftConvolution clone() const {
    FftConvolution c(*this);
    c.m_real = RealView("lensing::FftConvolution::real", m_py, m_px);
    c.m_hat = HatView("lensing::FftConvolution::hat", m_py, m_px / 2 + 1);
    c.make_plans();
    return c;
  }

  /// out = K * in, for one image (ny, nx) or each image of a batch (n, ny, nx).  Synchronous.
  template <class ExecutionSpace, class In, class Out>
  void apply(ExecutionSpace const& space, In const& in, Out const& out) const {
    int const n =
        detail::check_image_pair<ExecutionSpace, Scalar>("lensing::FftConvolution::apply", in, out, m_ny, m_nx);
    run(space, in, out, n, false);
  }
  /// out = K^T in, one image or a batch as apply.  Synchronous.
  template <class ExecutionSpace, class In, class Out>
  void apply_adjoint(ExecutionSpace const& space, In const& in, Out const& out) const {
    int const n =
        detail::check_image_pair<ExecutionSpace, Scalar>("lensing::FftConvolution::apply_adjoint", in, out, m_ny, m_nx);
    run(space, in, out, n, true);
  }

 private:
  template <class ExecutionSpace, class In, class Out>
  void run(ExecutionSpace const& space, In const& in, Out const& out, int n, bool adjoint) const {
    for (int b = 0; b < n; ++b) {
      detail::psf_load_padded(space, m_real, in, b, m_ny, m_nx);
      space.fence();
      forward(space, m_hat);
      detail::psf_multiply(space, m_hat, m_kernel_hat, adjoint, Scalar(1) / (Scalar(m_py) * Scalar(m_px)));
      space.fence();
      inverse(space);
      detail::psf_crop(space, m_real, out, b, m_ny, m_nx);
      space.fence();
    }
  }

#if defined(KOKKOS_ENABLE_CUDA)
  static constexpr bool use_cufft = !detail::is_host_memory_v<MemorySpace>;
#else
  static constexpr bool use_cufft = false;
#endif
  // The plans, shared by copies (copies share the buffers too, as Views do)
  // and destroyed with the last one.
  struct Plans {
#if defined(KOKKOS_ENABLE_CUDA)
    cufftHandle cu_r2c = 0, cu_c2r = 0;
#endif
    typename detail::Fftw<Scalar>::plan r2c = nullptr, c2r = nullptr;
    Plans() = default;
    Plans(Plans const&) = delete;
    Plans& operator=(Plans const&) = delete;
    ~Plans() {
      if constexpr (use_cufft) {
#if defined(KOKKOS_ENABLE_CUDA)
        cufftDestroy(cu_r2c);
        cufftDestroy(cu_c2r);
#endif
      } else {
        if (r2c) detail::Fftw<Scalar>::destroy(r2c);
        if (c2r) detail::Fftw<Scalar>::destroy(c2r);
      }
    }
  };
  std::shared_ptr<Plans> m_plans;

  void make_plans() {
    m_plans = std::make_shared<Plans>();
    if constexpr (use_cufft) {
#if defined(KOKKOS_ENABLE_CUDA)
      check_argument(cufftPlan2d(&m_plans->cu_r2c, m_py, m_px, detail::Cufft<Scalar>::r2c_type) == CUFFT_SUCCESS &&
                         cufftPlan2d(&m_plans->cu_c2r, m_py, m_px, detail::Cufft<Scalar>::c2r_type) == CUFFT_SUCCESS,
                     "lensing::FftConvolution", "cuFFT plan creation failed");
#endif
    } else {
      m_plans->r2c = detail::Fftw<Scalar>::r2c(m_py, m_px, m_real.data(),
                                               reinterpret_cast<typename detail::Fftw<Scalar>::complex*>(m_hat.data()));
      m_plans->c2r = detail::Fftw<Scalar>::c2r(
          m_py, m_px, reinterpret_cast<typename detail::Fftw<Scalar>::complex*>(m_hat.data()), m_real.data());
      check_argument(m_plans->r2c != nullptr && m_plans->c2r != nullptr, "lensing::FftConvolution",
                     "FFTW plan creation failed");
    }
  }
  // m_real -> out (half spectrum), on `space` (cuFFT: on its stream, see
  // detail::cufft_bind_stream); finished on return.
  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, HatView const& out) const {
    (void)space;  // FFTW runs on the calling host thread
    if constexpr (use_cufft) {
#if defined(KOKKOS_ENABLE_CUDA)
      detail::cufft_bind_stream(m_plans->cu_r2c, space, "lensing::FftConvolution");
      check_argument(detail::Cufft<Scalar>::r2c(m_plans->cu_r2c, m_real.data(), out.data()) == CUFFT_SUCCESS,
                     "lensing::FftConvolution", "cuFFT forward transform failed");
      space.fence();
#endif
    } else {
      detail::Fftw<Scalar>::exec_r2c(m_plans->r2c, m_real.data(),
                                     reinterpret_cast<typename detail::Fftw<Scalar>::complex*>(out.data()));
    }
  }
  // m_hat -> m_real (overwrites m_hat), on `space`; finished on return.
  template <class ExecutionSpace>
  void inverse(ExecutionSpace const& space) const {
    (void)space;  // FFTW runs on the calling host thread
    if constexpr (use_cufft) {
#if defined(KOKKOS_ENABLE_CUDA)
      detail::cufft_bind_stream(m_plans->cu_c2r, space, "lensing::FftConvolution");
      check_argument(detail::Cufft<Scalar>::c2r(m_plans->cu_c2r, m_hat.data(), m_real.data()) == CUFFT_SUCCESS,
                     "lensing::FftConvolution", "cuFFT inverse transform failed");
      space.fence();
#endif
    } else {
      detail::Fftw<Scalar>::exec_c2r(
          m_plans->c2r, reinterpret_cast<typename detail::Fftw<Scalar>::complex*>(m_hat.data()), m_real.data());
    }
  }

  int m_ny = 0, m_nx = 0, m_r = 0, m_py = 0, m_px = 0;
  RealView m_real;
  HatView m_hat, m_kernel_hat;
};

}  // namespace lensing

#endif  // LENSING_PSF_FFT_CONVOLUTION_HPP
