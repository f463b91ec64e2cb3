#ifndef LENSING_SOURCES_DECODED_HPP
#define LENSING_SOURCES_DECODED_HPP

/// \file
/// Decoded<Net>: the decoder of a variational autoencoder as a differentiable
/// source, latent z -> decoder network -> pixel grid -> PixelatedSource, with
/// the vector-Jacobian product back to z (the decoder's backward pass).

#include <lensing/core/errors.hpp>
#include <lensing/core/views.hpp>
#include <lensing/geometry/pixel_grid.hpp>
#include <lensing/sources/pixelated.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace lensing {

/// A source whose pixel values are a decoder network's output:
///
///   s(iy, ix) = amp * D(z)(0, 0, iy, ix),   I(x, y) = interpolation of s (PixelatedSource),
///
/// z in R^Z the latent vector (fed to the network as a (1, Z, 1, 1) tensor),
/// D(z) of shape (1, 1, ny, nx) (any (1, C, H, W) with C H W = ny nx, read
/// row-major) on the source's PixelGrid: row iy grows with y, the
/// lenstronomy grid convention of PixelGrid and of the library's image
/// arrays, and amp >= 0 a flux scale (the decoder's units are those of its
/// training images).
///
/// Net: a network with the nn::Sequential interface (nn/sequential.hpp):
/// `scalar_type`, `memory_space`, `tensor_type` (an NCHW View),
/// `tensor_type forward(space, x)`, `tensor_type output_gradient()`,
/// `void backward(space, x, dx)`, `Shape4 input_shape()` and
/// `Shape4 output_shape(Shape4)`; in inference mode (set_training(false):
/// batch norm with its running statistics, no dropout).  Net's
/// scalar may differ from the source's `Scalar` (a float decoder in a double
/// likelihood): values are converted on copy.  Both live in Net's memory space.
///
/// Gradients.  The lens parameters reach the source through the ray-traced
/// positions: PixelatedSource::surface_brightness_vjp (its spatial gradient)
/// in the likelihood's VJP chain.  The pixel values' cotangent gbar =
/// dL/ds(iy, ix) (GaussianLikelihood::value_and_gradient_source_pixels) is
/// pulled back here: dL/dz = J_D(z)^T (amp gbar) by the network's backward,
/// dL/damp = sum gbar D(z) (vjp()).
///
/// Buffers.  decode() writes the pixel values into a View owned by this
/// object, which the returned PixelatedSource points to (valid until the
/// next decode()).  The network (weights and activation buffers) is held
/// by a shared_ptr: copies and clone() share it, clone() gets its own pixel
/// and latent buffers.  decode() and vjp() of objects that share a network
/// must not interleave: a density built on Decoded declares
/// `launches_kernels`, so that the samplers and DensityEvaluator run its
/// evaluations one at a time (density/log_density.hpp).
template <class Net, class Scalar = typename Net::scalar_type>
class Decoded {
 public:
  using net_type = Net;
  using net_scalar = typename Net::scalar_type;
  using memory_space = typename Net::memory_space;
  using tensor_type = typename Net::tensor_type;
  using scalar_type = Scalar;
  using shape_type = std::decay_t<decltype(std::declval<Net const&>().input_shape())>;
  static_assert(std::is_floating_point<Scalar>::value, "lensing::Decoded: Scalar must be float or double");

  Decoded() = default;

  /// A decoder `net` with a latent space of dimension `latent_dim` whose
  /// output covers `grid` (ny x nx pixels).  Throws std::invalid_argument
  /// ("lensing::Decoded: ...") for a null network, latent_dim < 1 or an
  /// output size other than ny nx.
  Decoded(std::shared_ptr<Net> net, int latent_dim, PixelGrid<Scalar> const& grid,
          Interpolation interpolation = Interpolation::bicubic)
      : m_net(std::move(net)), m_latent(latent_dim), m_grid(grid), m_interp(interpolation) {
    constexpr char const* where = "lensing::Decoded";
    check_argument(m_net != nullptr, where, "the decoder network is null");
    check_count(latent_dim, 1, where, "latent_dim");
    auto const out = m_net->output_shape(input_shape());
    check_argument(out.n == 1 && long(out.c) * out.h * out.w == long(grid.nx()) * grid.ny(), where,
                   "the decoder maps a latent vector of " + std::to_string(latent_dim) + " to " + out.str() +
                       ", not to the " + std::to_string(grid.ny()) + " x " + std::to_string(grid.nx()) +
                       " pixels of the source grid");
    allocate();
  }

  /// An independent copy of the buffers (pixels, latent input and its
  /// gradient); the network is shared (see the class comment).
  Decoded clone() const {
    Decoded c = *this;
    if (m_net) c.allocate();
    return c;
  }

  int latent_dim() const { return m_latent; }
  PixelGrid<Scalar> const& grid() const { return m_grid; }
  Interpolation interpolation() const { return m_interp; }
  std::shared_ptr<Net> const& network() const { return m_net; }
  /// The network input shape, (1, latent_dim, 1, 1).
  shape_type input_shape() const { return shape_type{1, m_latent, 1, 1}; }

  /// amp D(z) of the last decode() (ny, nx).
  View2D<Scalar, memory_space> const& pixels() const { return m_pixels; }
  /// D(z) of the last decode() (ny, nx), amplitude 1.
  View2D<Scalar, memory_space> const& unit_pixels() const { return m_unit; }
  /// The PixelatedSource over pixels().
  PixelatedSource<Scalar> source() const { return make_pixelated_source(m_pixels, m_grid, m_interp); }

  /// Decode z (host array of latent_dim values) with flux scale `amplitude`
  /// into pixels(); returns source().  Fences `space`.
  template <class ExecutionSpace>
  PixelatedSource<Scalar> decode(ExecutionSpace const& space, double const* z, double amplitude) const {
    static_assert(is_accessible_from_v<ExecutionSpace, memory_space>,
                  "lensing::Decoded::decode: the network's memory space is not accessible from this execution space");
    check_ready("lensing::Decoded::decode");
    for (int j = 0; j < m_latent; ++j)
      m_z_host(0, j, 0, 0) = net_scalar(z[j]);
    Kokkos::deep_copy(space, m_z, m_z_host);
    tensor_type const y = m_net->forward(space, m_z);
    net_scalar const* yp = y.data();
    auto const unit = m_unit;
    auto const pix = m_pixels;
    int const nx = m_grid.nx();
    Scalar const a = Scalar(amplitude);
    Kokkos::parallel_for(
        "lensing::sources::decode", Kokkos::RangePolicy<ExecutionSpace>(space, 0, long(m_grid.ny()) * nx),
        KOKKOS_LAMBDA(long i) {
          Scalar const u = Scalar(yp[i]);
          unit(i / nx, i % nx) = u;
          pix(i / nx, i % nx) = a * u;
        });
    space.fence();
    return source();
  }

  /// After decode(space, z, amplitude): given gbar = dL/ds (ny, nx), the
  /// cotangent of pixels(), writes dL/dz = J_D(z)^T (amplitude gbar) into
  /// grad_z (host, latent_dim values, overwritten) and returns
  /// dL/damplitude = sum gbar D(z).  Runs the network's backward (which
  /// also overwrites its parameter gradients).  Fences `space`.
  template <class ExecutionSpace, class GView>
  double vjp(ExecutionSpace const& space, GView const& gbar, double amplitude, double* grad_z) const {
    static_assert(GView::rank == 2, "lensing::Decoded::vjp: gbar is a rank-2 view (ny, nx)");
    static_assert(is_accessible_from_v<ExecutionSpace, memory_space>,
                  "lensing::Decoded::vjp: the network's memory space is not accessible from this execution space");
    constexpr char const* where = "lensing::Decoded::vjp";
    check_ready(where);
    check_extents(gbar, where, "gbar", "(ny, nx) of the source grid", m_grid.ny(), m_grid.nx());
    tensor_type const dy = m_net->output_gradient();
    net_scalar* dyp = dy.data();
    auto const unit = m_unit;
    int const nx = m_grid.nx();
    Scalar const a = Scalar(amplitude);
    double damp = 0;
    Kokkos::parallel_reduce(
        "lensing::sources::decode_vjp", Kokkos::RangePolicy<ExecutionSpace>(space, 0, long(m_grid.ny()) * nx),
        KOKKOS_LAMBDA(long i, double& acc) {
          Scalar const g = gbar(i / nx, i % nx);
          dyp[i] = net_scalar(a * g);
          acc += double(g) * double(unit(i / nx, i % nx));
        },
        damp);
    m_net->backward(space, m_z, m_dz);
    Kokkos::deep_copy(space, m_dz_host, m_dz);
    space.fence();
    for (int j = 0; j < m_latent; ++j)
      grad_z[j] = double(m_dz_host(0, j, 0, 0));
    return damp;
  }

 private:
  void allocate() {
    m_pixels = View2D<Scalar, memory_space>("lensing::Decoded::pixels", m_grid.ny(), m_grid.nx());
    m_unit = View2D<Scalar, memory_space>("lensing::Decoded::unit_pixels", m_grid.ny(), m_grid.nx());
    m_z = tensor_type("lensing::Decoded::z", 1, m_latent, 1, 1);
    m_dz = tensor_type("lensing::Decoded::dz", 1, m_latent, 1, 1);
    m_z_host = Kokkos::create_mirror_view(m_z);
    m_dz_host = Kokkos::create_mirror_view(m_dz);
  }
  void check_ready(char const* where) const {
    check_argument(m_net != nullptr, where, "empty Decoded (default-constructed): give it a network");
  }

  std::shared_ptr<Net> m_net;
  int m_latent = 0;
  PixelGrid<Scalar> m_grid;
  Interpolation m_interp = Interpolation::bicubic;
  View2D<Scalar, memory_space> m_pixels, m_unit;
  tensor_type m_z, m_dz;
  typename tensor_type::HostMirror m_z_host, m_dz_host;
};

}  // namespace lensing

#endif  // LENSING_SOURCES_DECODED_HPP
