#ifndef LENSING_FIT_DECODED_SOURCE_HPP
#define LENSING_FIT_DECODED_SOURCE_HPP

/// \file
/// A lens fit with a learned source: the posterior of the lens parameters
/// and the latent vector z of a VAE decoder (sources/decoded.hpp) given an
/// image, as one LogDensity, so that find_map, sample_from_map and
/// fit_vi_from_map (fit/workflow.hpp) run on it.
///
///   lensing::Decoded<Decoder, double> dec(net, latent_dim, source_grid);
///   lensing::DecodedSourcePosterior<Model, Mem, Psf, Decoder> post(likelihood, lens_table, dec,
///                                                                 Prior<double>::log_uniform(1, 1000));
///   auto map = lensing::find_map(space, post, post.draw_prior_starts(8, seed), options);
///
/// Why not Posterior alone: Posterior (fit/posterior.hpp) samples the named
/// parameters of a LensModel (compile-time count, unpack() from a flat
/// array), while the pixel values of a decoded source come from a network
/// evaluated once per evaluation, not per pixel, and its latent vector has
/// no place in LensModel's packing.  So the lens part stays a Posterior
/// (prior table by name, transforms, ties, names of results) over a
/// likelihood whose model's source is the decoded pixel grid, and this
/// density adds z and the source's flux scale around it.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>
#include <lensing/density/parameter_table.hpp>
#include <lensing/density/prior.hpp>
#include <lensing/fit/posterior.hpp>
#include <lensing/inversion/source_inversion.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/sources/decoded.hpp>
#include <lensing/sources/light_profile.hpp>
#include <lensing/sources/pixelated.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lensing {

/// A structured prior of the decoder's error delta on the decoded source
/// pixels (DecodedSourceLikelihood's third model): correlated and
/// brightness-dependent,
///
///   delta = K (sqrt(v) .* eta),  eta ~ N(0, I),
///   v_j = tau^2 + kappa^2 s_j^2 + gamma^2 |grad s|_j^2,
///   so delta ~ N(0, K V K^T),  V = diag(v),
///
/// s = amp D(z) the decoded pixels (the variance follows the model's own
/// image: a decoder errs most on the strokes it draws, and most of all at
/// their edges, where a small misplacement of an edge changes a pixel by
/// about the displacement times the slope), |grad s|_j^2 = g_x^2 + g_y^2 with
/// central differences g_x = (s_{iy,ix+1} - s_{iy,ix-1}) / 2 (per pixel,
/// pixels beyond the border 0), K the
/// convolution with a separable Gaussian kernel of sd `kernel_sigma` source
/// pixels, truncated at ceil(3 kernel_sigma) pixels and normalised to
/// sum_i k_i^2 = 1 per axis (so that a white eta keeps its variance: the
/// marginal sd of delta_j is sqrt(v_j) for slowly varying v, less within
/// the kernel's radius of the border, where pixels beyond the grid count
/// as 0).  kernel_sigma = 0: K = I; kappa = gamma = 0: the variance tau^2
/// everywhere (with kernel_sigma = 0, the white model of the constructor with
/// tau, R = I).  tau in the source's surface-brightness units, kappa and gamma
/// dimensionless.
struct DecoderError {
  double tau = 0;           ///< sd of the error where the source is dark and flat (> 0)
  double kappa = 0;         ///< the error's variance grows by kappa^2 times the squared brightness (>= 0)
  double kernel_sigma = 0;  ///< sd of the correlation kernel in source pixels (>= 0; 0: uncorrelated)
  double gamma = 0;         ///< the variance grows by gamma^2 times the squared brightness gradient per pixel (>= 0)
};

namespace detail {
/// v_j of DecoderError at the pixels s (ny x nx, row-major).
inline std::vector<double> decoder_error_variance(DecoderError const& e, int ny, int nx, double const* s) {
  std::vector<double> v(std::size_t(ny) * nx);
  auto at = [&](int iy, int ix) {
    return iy >= 0 && iy < ny && ix >= 0 && ix < nx ? s[std::size_t(iy) * nx + ix] : 0.0;
  };
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      double const x = s[std::size_t(iy) * nx + ix];
      double const gx = 0.5 * (at(iy, ix + 1) - at(iy, ix - 1)), gy = 0.5 * (at(iy + 1, ix) - at(iy - 1, ix));
      v[std::size_t(iy) * nx + ix] =
          e.tau * e.tau + e.kappa * e.kappa * x * x + e.gamma * e.gamma * (gx * gx + gy * gy);
    }
  return v;
}
/// sum_j a_j dv_j / ds_i (DecoderError's v; the pullback of a through v).
inline std::vector<double> decoder_error_variance_vjp(DecoderError const& e, int ny, int nx, double const* s,
                                                      double const* a) {
  std::size_t const n = std::size_t(ny) * nx;
  std::vector<double> out(n, 0.0), cx(n, 0.0), cy(n, 0.0);
  auto at = [&](int iy, int ix) {
    return iy >= 0 && iy < ny && ix >= 0 && ix < nx ? s[std::size_t(iy) * nx + ix] : 0.0;
  };
  double const k2 = e.kappa * e.kappa, g2 = e.gamma * e.gamma;
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      std::size_t const j = std::size_t(iy) * nx + ix;
      out[j] = 2 * k2 * a[j] * s[j];
      cx[j] = a[j] * 0.5 * (at(iy, ix + 1) - at(iy, ix - 1));
      cy[j] = a[j] * 0.5 * (at(iy + 1, ix) - at(iy - 1, ix));
    }
  if (g2 > 0) {
    // v_j contains g2 (gx_j^2 + gy_j^2), d gx_j / d s_{iy,ix+1} = 1/2, d gx_j / d s_{iy,ix-1} = -1/2:
    // d/ds_i sum_j a_j g2 gx_j^2 = g2 (c_{i-1} - c_{i+1}) along x with c = a gx (0 beyond the border).
    auto c = [&](std::vector<double> const& m, int iy, int ix) {
      return iy >= 0 && iy < ny && ix >= 0 && ix < nx ? m[std::size_t(iy) * nx + ix] : 0.0;
    };
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix)
        out[std::size_t(iy) * nx + ix] +=
            g2 * (c(cx, iy, ix - 1) - c(cx, iy, ix + 1) + c(cy, iy - 1, ix) - c(cy, iy + 1, ix));
  }
  return out;
}
/// The 1-D kernel of DecoderError (taps -r..r, sum of squares 1); {1} for sigma = 0.
inline std::vector<double> decoder_error_kernel(double sigma) {
  if (!(sigma > 0)) return {1.0};
  int const r = int(std::ceil(3 * sigma));
  std::vector<double> k(std::size_t(2 * r + 1));
  double ss = 0;
  for (int i = -r; i <= r; ++i) {
    k[std::size_t(i + r)] = std::exp(-0.5 * double(i) * i / (sigma * sigma));
    ss += k[std::size_t(i + r)] * k[std::size_t(i + r)];
  }
  for (auto& x : k)
    x /= std::sqrt(ss);
  return k;
}
/// out = K in on an ny x nx image (row-major; K the separable kernel `k`,
/// zero beyond the border; symmetric, so K^T = K).  `tmp`: ny * nx doubles.
inline void decoder_error_smooth(std::vector<double> const& k, int ny, int nx, double const* in, double* out,
                                 double* tmp) {
  int const r = int(k.size() / 2);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      double acc = 0;
      for (int a = std::max(-r, -ix); a <= std::min(r, nx - 1 - ix); ++a)
        acc += k[std::size_t(a + r)] * in[std::size_t(iy) * nx + ix + a];
      tmp[std::size_t(iy) * nx + ix] = acc;
    }
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      double acc = 0;
      for (int a = std::max(-r, -iy); a <= std::min(r, ny - 1 - iy); ++a)
        acc += k[std::size_t(a + r)] * tmp[std::size_t(iy + a) * nx + ix];
      out[std::size_t(iy) * nx + ix] = acc;
    }
}
}  // namespace detail

/// The Gaussian likelihood of a LensModel whose source is the pixel grid of
/// a Decoded source, as the likelihood of a Posterior over the lens alone:
/// its model_type is the LensModel with the source slot empty (NoLight: no
/// parameters, nothing to check — Posterior unpacks models from flat
/// arrays, and an unpacked PixelatedSource has no pixels) and
/// value_and_gradient(space, model, grad) puts the decoded source into that
/// slot, returns log L and d log L / d theta and writes d log L / d s(iy, ix)
/// into grad_source_pixels().
///
/// Two models of the source:
///  - exact decoder (the two-argument constructor): s = D, the decoded pixels
///    (`source`, a PixelatedSource over the Decoded's pixel buffer), and log L =
///    GaussianLikelihood::value_and_gradient_source_pixels at s;
///  - decoder with a source-model error (the constructor with a
///    SourceInversion and tau > 0): s = D + delta with delta ~ N(0, (lambda R)^-1)
///    on the same source pixels, lambda = 1 / tau^2 (R = I, zeroth-order
///    regularisation: iid N(0, tau^2) per pixel, tau in the source's surface-
///    brightness units), delta marginalised analytically:
///
///      log L = log N(d; L D, C + L (lambda R)^-1 L^T),
///
///    L the lensing operator of the lens (inversion/lensing_operator.hpp: the
///    render of a pixelated source as a matrix), C the noise covariance.
///    Evaluated as the evidence of the linear inversion of the residual
///    r = d - L D (Suyu et al. 2006 eq. 19, LinearInversion):
///
///      log L = log N_C(d - L (D + delta*)) - lambda/2 delta*^T R delta* - 1/2 log det A
///              + 1/2 log det(lambda R),    A = L^T C^-1 L + lambda R,  delta* = A^-1 L^T C^-1 r,
///
///    the first term GaussianLikelihood at the source D + delta* (the forward
///    model itself, so the data term is the library's render; L must render
///    as the likelihood's Observation does: same grids, PSF kernel (a
///    DirectConvolution with the SourceInversion's kernel, binned sampling)
///    and interpolation — checked where the objects allow).
///
///    Gradient (derivation).  Write Sigma = C + L (lambda R)^-1 L^T.  With
///    respect to the source D (hence z and the flux scale through the
///    Decoded's VJP): d log L / dD = L^T Sigma^-1 r, and by the Woodbury
///    identity Sigma^-1 = C^-1 - C^-1 L A^-1 L^T C^-1, so
///    Sigma^-1 r = C^-1 (r - L delta*), i.e. d log L / dD = L^T C^-1 (d - L (D + delta*)):
///    the ordinary likelihood's source-pixel gradient evaluated at the
///    source D + delta* (exact: the marginal is Gaussian, delta* its
///    posterior mean).  With respect to the lens theta (L depends on it):
///    the first three terms are max_delta of a function of (theta, delta),
///    so by the envelope theorem their derivative is the partial derivative
///    at fixed delta = delta*, i.e. the ordinary likelihood's lens gradient
///    at the source D + delta* (GaussianLikelihood's VJP through the ray
///    shooting); the log-det term adds
///
///      d/dtheta (-1/2 log det A) = -1/2 tr(A^-1 dF/dtheta) = -sum_{p,j} Z_pj dL_pj/dtheta,
///      Z = C^-1 L A^-1,
///
///    with dL_pj/dtheta = sum_q K(p, q) w_bin sum_{f in q} grad_beta w_j(beta_f) . dbeta_f/dtheta
///    (K the PSF, q the image pixels, f their sub-pixels, w_j the
///    interpolation weights, beta_f = x_f - alpha(x_f)), so it is the
///    ray-shooting VJP of the cotangent
///      bbar_f = -w_bin sum_j H(q(f), j) grad_beta w_j(beta_f),   H = K^T Z,
///    computed here on the host: A^-1 densely from the inversion's
///    factorisation (LinearInversion::solve_a), Z on the nonzeros of L only
///    (sum over rows of |row|^2 multiply-adds), H per image pixel on the
///    fly, then Mass profile VJPs (deflection_vjp) per sub-pixel.  Exact
///    (not a finite difference as inversion/evidence_density.hpp's): the
///    bicubic weights are C1 in beta, like the forward model.
///    Cost per evaluation: the operator (ray shooting, weights, the PSF
///    product), F = L^T C^-1 L, a Cholesky factorisation and inverse of the
///    n_s x n_s matrix A (n_s the source pixels: 1024 for a 32 x 32 decoder,
///    dense), Z and H: tens to hundreds of ms for a 32 x 32 source against
///    ~10 ms for the decoder alone.
///  - decoder with a structured error (the constructor with a DecoderError):
///    delta = K S eta, S = diag(sqrt(v)), v_j = tau^2 + kappa^2 s_j^2 +
///    gamma^2 |grad s|_j^2 (s = D, the decoded pixels), eta ~ N(0, I), marginalised: log L = log N(d; L D,
///    Sigma), Sigma = C + L' L'^T, L' = L K S.  The evidence of the linear
///    problem in eta with the operator L' and a unit prior:
///
///      log L = log N_C(d - L (D + delta*)) - 1/2 |eta*|^2 - 1/2 log det A',
///      A' = I + L'^T C^-1 L',  eta* = A'^-1 L'^T C^-1 r,  delta* = K S eta*,
///
///    A' = I + S K F K S built densely from F = L^T C^-1 L by the separable
///    smoothing K on both sides (K is never inverted: a Gaussian K is nearly
///    singular, so the precision form R = (K V K^T)^-1 is not used).
///    Gradient.  At fixed V, d log L / dD = L^T Sigma^-1 r = L^T C^-1 (r - L delta*)
///    (Woodbury, as above: the ordinary source-pixel gradient at D + delta*).
///    V depends on D: d log N / dv_j = 1/2 [(K^T L^T Sigma^-1 r)_j^2 -
///    (K^T L^T Sigma^-1 L K)_jj], and with L'^T Sigma^-1 r = eta* and
///    L'^T Sigma^-1 L' = I - A'^-1 (push-through identities),
///
///      d log L / dv_j = (eta*_j^2 + (A'^-1)_jj - 1) / (2 v_j),
///
///    pulled back through v(D) (2 kappa^2 D_j on the diagonal, the central
///    differences' transpose for the gradient term) and added to the source-pixel gradient (so z and the flux scale see
///    it through the decoder).  The lens: the envelope theorem as above plus d/dtheta (-1/2 log det A') = -sum_{p,c}
///    Z_pc dL_pc/dtheta with Z = C^-1 L M, M = K S A'^-1 S K: the same ray-shooting VJP with M in place of A^-1.  With
///    kappa = 0 and kernel_sigma = 0 this is the white model (A' = tau^2 A, M = A^-1).  Cost: that of the white model
///    plus four separable smoothings of n_s x n_s matrices.
///
/// Copies share the buffers; clone() gives the GaussianLikelihood's clone,
/// new buffers over the same source and the same (immutable) inversion.
template <class Model, class MemorySpace, class Psf>
class DecodedSourceLikelihood {
 public:
  using Scalar = typename Model::scalar_type;
  /// The likelihood's model (its source a PixelatedSource).
  using full_model_type = Model;
  /// The model the Posterior unpacks: Model with an empty source slot.
  using model_type = LensModel<typename Model::lens_type, NoLight<Scalar>, typename Model::lens_light_type>;
  using memory_space = MemorySpace;
  using gaussian_type = GaussianLikelihood<Model, MemorySpace, Psf>;
  using inversion_type = SourceInversion<Scalar>;
  static constexpr bool launches_kernels = true;
  static_assert(std::is_same<typename Model::source_type, PixelatedSource<Scalar>>::value,
                "lensing::DecodedSourceLikelihood: the model's source must be a PixelatedSource of its scalar type");

  DecodedSourceLikelihood(gaussian_type const& like, PixelatedSource<Scalar> const& source)
      : m_like(like), m_source(source) {
    m_source.check();
    m_grad_pixels = View2D<Scalar, MemorySpace>("lensing::DecodedSourceLikelihood::grad_pixels", source.grid.ny(),
                                                source.grid.nx());
  }
  /// With the marginalised source-model error of sd `tau` (> 0) per source
  /// pixel (prior N(0, (R / tau^2)^-1), R = correction.regularisation()):
  /// `correction` is a SourceInversion on the likelihood's data, noise, mask
  /// and image grid, whose source grid and interpolation are the decoded
  /// source's and whose PSF kernel is the likelihood's (binned sampling).
  /// Throws std::invalid_argument for tau <= 0, another source grid or
  /// interpolation, or supersampled PSF sampling with k > 1.
  DecodedSourceLikelihood(gaussian_type const& like, PixelatedSource<Scalar> const& source,
                          std::shared_ptr<inversion_type const> correction, double tau)
      : DecodedSourceLikelihood(like, source) {
    check_positive(tau, "lensing::DecodedSourceLikelihood", "tau");
    init_correction(std::move(correction), DecoderError{tau, 0, 0}, false);
  }
  /// With the structured source-model error of `error` (DecoderError: delta ~
  /// N(0, K V K^T), v_j = tau^2 + kappa^2 s_j^2) marginalised; `correction`
  /// as above (its regularisation is not used).  Throws
  /// std::invalid_argument as above, for tau <= 0, kappa < 0 or
  /// kernel_sigma < 0 (or not finite).
  DecodedSourceLikelihood(gaussian_type const& like, PixelatedSource<Scalar> const& source,
                          std::shared_ptr<inversion_type const> correction, DecoderError const& error)
      : DecodedSourceLikelihood(like, source) {
    constexpr char const* where = "lensing::DecodedSourceLikelihood";
    check_positive(error.tau, where, "DecoderError::tau");
    check_nonnegative(error.kappa, where, "DecoderError::kappa");
    check_nonnegative(error.kernel_sigma, where, "DecoderError::kernel_sigma");
    check_nonnegative(error.gamma, where, "DecoderError::gamma");
    init_correction(std::move(correction), error, true);
  }

 private:
  void init_correction(std::shared_ptr<inversion_type const> correction, DecoderError const& error, bool structured) {
    constexpr char const* where = "lensing::DecodedSourceLikelihood";
    auto const& source = m_source;
    check_argument(correction != nullptr, where, "the correction's SourceInversion is null");
    auto const& sg = correction->source_grid();
    check_argument(sg.nx() == source.grid.nx() && sg.ny() == source.grid.ny() &&
                       double(sg.pixel_scale()) == double(source.grid.pixel_scale()) &&
                       double(sg.x(0)) == double(source.grid.x(0)) && double(sg.y(0)) == double(source.grid.y(0)),
                   where, "the correction's source grid must be the decoded source's");
    check_argument(correction->operator_options().interpolation == source.interpolation, where,
                   "the correction's interpolation must be the decoded source's");
    check_argument(correction->operator_options().psf_sampling == PsfSampling::binned ||
                       correction->image_grid().supersampling() == 1,
                   where, "supersampled PSF sampling is not supported by the correction's lens gradient");
    m_corr = std::move(correction);
    m_tau = error.tau;
    m_error = error;
    m_structured = structured;
    m_kernel = std::make_shared<std::vector<double> const>(detail::decoder_error_kernel(error.kernel_sigma));
    m_total = View2D<Scalar, MemorySpace>("lensing::DecodedSourceLikelihood::corrected_pixels", source.grid.ny(),
                                          source.grid.nx());
    m_delta = std::make_shared<Eigen::VectorXd>(Eigen::VectorXd::Zero(long(source.grid.num_pixels())));
    auto const& px = m_corr->pixels();
    int const ny = m_corr->image_grid().ny(), nx = m_corr->image_grid().nx();
    m_row_of_pixel = std::make_shared<std::vector<long>>(std::size_t(ny) * nx, -1L);
    for (std::size_t r = 0; r < px.size(); ++r)
      (*m_row_of_pixel)[std::size_t(px[r])] = long(r);
  }

 public:
  DecodedSourceLikelihood clone() const {
    if (m_corr && m_structured) return DecodedSourceLikelihood(m_like.clone(), m_source, m_corr, m_error);
    if (m_corr) return DecodedSourceLikelihood(m_like.clone(), m_source, m_corr, m_tau);
    return DecodedSourceLikelihood(m_like.clone(), m_source);
  }

  /// log L and grad = d log L / d theta; grad_source_pixels() = d log L / d s.  Fences `space`.
  template <class ExecutionSpace>
  Scalar value_and_gradient(ExecutionSpace const& space, model_type const& model,
                            View1D<Scalar, MemorySpace> const& grad) const {
    if (!m_corr) return m_like.value_and_gradient_source_pixels(space, with_source(model), grad, m_grad_pixels);
    return marginal(space, model, grad);
  }
  /// The full model: `model` with the decoded source.
  Model with_source(model_type const& model) const { return Model{model.lens, m_source, model.lens_light}; }
  /// With the error term: the model with the source D + delta* of the last
  /// evaluation (its most probable source; valid until the next one).
  Model with_corrected_source(model_type const& model) const {
    return Model{model.lens, m_corr ? corrected_source() : m_source, model.lens_light};
  }
  View2D<Scalar, MemorySpace> const& grad_source_pixels() const { return m_grad_pixels; }
  gaussian_type const& gaussian() const { return m_like; }
  PixelatedSource<Scalar> const& source() const { return m_source; }
  /// The error term's inversion (null without one) and tau.
  std::shared_ptr<inversion_type const> const& correction() const { return m_corr; }
  double tau() const { return m_tau; }
  /// The structured error model (DecoderError{tau, 0, 0} for the white one) and whether it is on.
  DecoderError const& error_model() const { return m_error; }
  bool structured_error() const { return m_structured; }
  /// delta* of the last evaluation (row-major source pixels; zeros before one or without the error term).
  Eigen::VectorXd const& last_correction() const {
    static Eigen::VectorXd const none;
    return m_delta ? *m_delta : none;
  }

 private:
  PixelatedSource<Scalar> corrected_source() const {
    return make_pixelated_source(m_total, m_source.grid, m_source.interpolation);
  }

  template <class ExecutionSpace>
  Scalar marginal(ExecutionSpace const& space, model_type const& model, View1D<Scalar, MemorySpace> const& grad) const {
    using Lens = typename Model::lens_type;
    constexpr int nlens = lens_param_count<Lens>::value;
    auto const& inv = *m_corr;
    int const sny = m_source.grid.ny(), snx = m_source.grid.nx();
    long const ns = long(sny) * snx;
    // The operator of this lens, the residual of the decoded source, delta*.
    auto const op = inv.lensing_operator(space, model.lens);
    Kokkos::View<Scalar const**, Kokkos::LayoutRight, MemorySpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>> const
        src_view(m_source.values, sny, snx);
    auto const hs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), src_view);
    Eigen::VectorXd s0(ns);
    for (long j = 0; j < ns; ++j)
      s0[j] = double(hs.data()[j]);
    Eigen::VectorXd const r = inv.data() - op.matrix * s0;
    Eigen::SparseMatrix<double, Eigen::RowMajor> const lr = op.matrix;
    // delta*, the evidence terms beyond the data term (extra), the matrix M of
    // Z = C^-1 L M (A^-1 for the white model) and, for the structured one,
    // d log L / d s through v (dsv).
    double extra = 0;
    Eigen::MatrixXd ainv;
    Eigen::VectorXd dsv;
    if (!m_structured) {
      double const lambda = 1.0 / (m_tau * m_tau);
      LinearInversion lin(op.matrix, r, inv.sigma(), inv.regularisation(), inv.log_det_r());
      InversionResult const res = lin.solve(lambda);
      *m_delta = res.source;
      extra = -0.5 * lambda * res.regularisation - 0.5 * res.log_det_a + 0.5 * res.log_det_lambda_r;
      ainv = lin.solve_a(Eigen::MatrixXd::Identity(ns, ns));
    } else {
      extra = structured_solve(lr, r, s0, sny, snx, ainv, dsv);
    }
    auto ht = Kokkos::create_mirror_view(m_total);
    for (long j = 0; j < ns; ++j)
      ht.data()[j] = Scalar(s0[j] + (*m_delta)[j]);
    Kokkos::deep_copy(space, m_total, ht);
    space.fence();
    // The data term and the z / lens gradients at D + delta* (see the class comment).
    Scalar const v = m_like.value_and_gradient_source_pixels(
        space, Model{model.lens, corrected_source(), model.lens_light}, grad, m_grad_pixels);
    if (!std::isfinite(double(v))) return v;
    if (dsv.size() == ns) {  // the structured model's variance depends on s
      auto hgp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m_grad_pixels);
      for (long j = 0; j < ns; ++j)
        hgp.data()[j] += Scalar(dsv[j]);
      Kokkos::deep_copy(space, m_grad_pixels, hgp);
      space.fence();
    }
    // d/dtheta (-1/2 log det A): Z = C^-1 L A^-1 (M for the structured model) on the nonzeros of L.
    std::vector<double> zval(std::size_t(lr.nonZeros()));
    auto const* outer = lr.outerIndexPtr();
    auto const* idx = lr.innerIndexPtr();
    auto const* val = lr.valuePtr();
    for (Eigen::Index row = 0; row < lr.rows(); ++row) {
      double const w = 1.0 / (inv.sigma()[row] * inv.sigma()[row]);
      for (auto a = outer[row]; a < outer[row + 1]; ++a) {
        double const* col = ainv.col(idx[a]).data();
        double acc = 0;
        for (auto c = outer[row]; c < outer[row + 1]; ++c)
          acc += val[c] * col[idx[c]];
        zval[std::size_t(a)] = w * acc;
      }
    }
    auto const& grid = inv.image_grid();
    auto const& psf = inv.psf();
    auto const& rows = *m_row_of_pixel;
    int const ny = grid.ny(), nx = grid.nx(), k = grid.supersampling();
    int const rad = psf.size > 0 ? psf.radius() : 0;
    double const wbin = double(grid.pixel_scale() * grid.pixel_scale() / Scalar(k * k));
    PixelatedSource<Scalar> const interp{nullptr, m_source.grid, m_source.interpolation};  // weights only
    std::vector<double> hq(std::size_t(ns), 0.0), gl(std::size_t(nlens), 0.0);
    std::vector<Scalar> bx(std::size_t(k) * k), by(std::size_t(k) * k);
    Lens const& lens = model.lens;
    auto in_grid = [&](int jy, int jx) { return jy >= 0 && jy < sny && jx >= 0 && jx < snx; };
    // Apply fn(row, K(p, q)) over the rows p that pixel q feeds.
    auto for_rows_of = [&](int qy, int qx, auto&& fn) {
      for (int a = -rad; a <= rad; ++a) {
        int const py = qy + a;
        if (py < 0 || py >= ny) continue;
        for (int b = -rad; b <= rad; ++b) {
          int const px = qx + b;
          if (px < 0 || px >= nx) continue;
          long const row = rows[std::size_t(py) * nx + px];
          if (row < 0) continue;
          fn(row, psf.size > 0 ? double(psf(rad + a, rad + b)) : 1.0);
        }
      }
    };
    for (int qy = 0; qy < ny; ++qy)
      for (int qx = 0; qx < nx; ++qx) {
        bool any = false;
        for (int sy = 0; sy < k; ++sy)
          for (int sx = 0; sx < k; ++sx) {
            Vec2<Scalar> const x = grid.subpixel_position(qx, qy, sx, sy);
            Vec2<Scalar> const al = lens.deflection(x.x, x.y);
            Scalar const b_x = x.x - al.x, b_y = x.y - al.y;
            bx[std::size_t(sy) * k + sx] = b_x, by[std::size_t(sy) * k + sx] = b_y;
            interp.for_each_weight(b_x, b_y,
                                   [&](int jy, int jx, Scalar, Scalar, Scalar) { any = any || in_grid(jy, jx); });
          }
        if (!any) continue;
        bool fed = false;
        for_rows_of(qy, qx, [&](long row, double kv) {
          fed = true;
          for (auto a = outer[row]; a < outer[row + 1]; ++a)
            hq[std::size_t(idx[a])] += kv * zval[std::size_t(a)];
        });
        if (!fed) continue;
        for (int sy = 0; sy < k; ++sy)
          for (int sx = 0; sx < k; ++sx) {
            double gx = 0, gy = 0;
            interp.for_each_weight(bx[std::size_t(sy) * k + sx], by[std::size_t(sy) * k + sx],
                                   [&](int jy, int jx, Scalar, Scalar wx, Scalar wy) {
                                     if (!in_grid(jy, jx)) return;
                                     double const h = hq[std::size_t(jy) * snx + jx];
                                     gx += h * double(wx), gy += h * double(wy);
                                   });
            // bbar_f = -w_bin (gx, gy) on beta = x - alpha: d/dtheta = sum bbar . dbeta/dtheta
            // = sum w_bin (gx, gy) . dalpha/dtheta, the deflection VJP of w_bin (gx, gy).
            Vec2<Scalar> const x = grid.subpixel_position(qx, qy, sx, sy);
            Scalar t[nlens > 0 ? nlens : 1] = {};
            lens.deflection_vjp(x.x, x.y, Vec2<Scalar>{Scalar(wbin * gx), Scalar(wbin * gy)}, t);
            for (int i = 0; i < nlens; ++i)
              gl[std::size_t(i)] += double(t[i]);
          }
        for_rows_of(qy, qx, [&](long row, double) {
          for (auto a = outer[row]; a < outer[row + 1]; ++a)
            hq[std::size_t(idx[a])] = 0;
        });
      }
    auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad);
    for (int i = 0; i < nlens; ++i)
      hg(i) += Scalar(gl[std::size_t(i)]);
    Kokkos::deep_copy(space, grad, hg);
    space.fence();
    return Scalar(double(v) + extra);
  }

  // The structured model's linear algebra (see the class comment): sets
  // *m_delta = delta*, m = M = K S A'^-1 S K and dsv = d log L / d s through
  // v (empty when kappa = gamma = 0); returns -1/2 |eta*|^2 - 1/2 log det A'.
  double structured_solve(Eigen::SparseMatrix<double, Eigen::RowMajor> const& lr, Eigen::VectorXd const& r,
                          Eigen::VectorXd const& s0, int sny, int snx, Eigen::MatrixXd& m, Eigen::VectorXd& dsv) const {
    auto const& inv = *m_corr;
    long const ns = long(sny) * snx;
    auto const& kern = *m_kernel;
    bool const smooth = kern.size() > 1;
    std::vector<double> tmp(std::size_t(ns), 0.0);
    // out = K X column by column (each column an sny x snx image).
    auto smooth_cols = [&](Eigen::MatrixXd const& x, Eigen::MatrixXd& out) {
      out.resize(x.rows(), x.cols());
      for (Eigen::Index c = 0; c < x.cols(); ++c)
        detail::decoder_error_smooth(kern, sny, snx, x.col(c).data(), out.col(c).data(), tmp.data());
    };
    // F = L^T C^-1 L, densely from the rows of L (as LinearInversion).
    Eigen::MatrixXd f = Eigen::MatrixXd::Zero(ns, ns);
    Eigen::VectorXd w(lr.rows());
    for (Eigen::Index p = 0; p < lr.rows(); ++p) {
      w[p] = 1.0 / (inv.sigma()[p] * inv.sigma()[p]);
      auto const b = lr.outerIndexPtr()[p], e = lr.outerIndexPtr()[p + 1];
      for (auto a = b; a < e; ++a) {
        double const wa = w[p] * lr.valuePtr()[a];
        double* col = f.col(lr.innerIndexPtr()[a]).data();
        for (auto c = b; c < e; ++c)
          col[lr.innerIndexPtr()[c]] += wa * lr.valuePtr()[c];
      }
    }
    if (smooth) {  // K F K (F and K symmetric: K (K F)^T)
      Eigen::MatrixXd kf;
      smooth_cols(f, kf);
      kf.transposeInPlace();
      smooth_cols(kf, f);
    }
    auto const vv = detail::decoder_error_variance(m_error, sny, snx, s0.data());
    Eigen::VectorXd v(ns), sq(ns);
    for (long j = 0; j < ns; ++j) {
      v[j] = vv[std::size_t(j)];
      sq[j] = std::sqrt(v[j]);
    }
    Eigen::MatrixXd a = sq.asDiagonal() * f * sq.asDiagonal();
    a.diagonal().array() += 1.0;
    Eigen::LLT<Eigen::MatrixXd> llt(a);
    if (llt.info() != Eigen::Success)
      throw std::runtime_error("lensing::DecodedSourceLikelihood: I + S K F K S is not numerically positive definite");
    double log_det = 0;
    for (long j = 0; j < ns; ++j)
      log_det += 2 * std::log(llt.matrixLLT()(j, j));
    // eta* = A'^-1 S K L^T C^-1 r, delta* = K S eta*.
    Eigen::VectorXd b = lr.transpose() * w.cwiseProduct(r), kb(ns);
    detail::decoder_error_smooth(kern, sny, snx, b.data(), kb.data(), tmp.data());
    Eigen::VectorXd const eta = llt.solve(sq.cwiseProduct(kb));
    Eigen::VectorXd const se = sq.cwiseProduct(eta);
    detail::decoder_error_smooth(kern, sny, snx, se.data(), m_delta->data(), tmp.data());
    Eigen::MatrixXd ainv = llt.solve(Eigen::MatrixXd::Identity(ns, ns));
    if (m_error.kappa > 0 || m_error.gamma > 0) {
      std::vector<double> a(static_cast<std::size_t>(ns));
      for (long j = 0; j < ns; ++j)
        a[std::size_t(j)] = (eta[j] * eta[j] + ainv(j, j) - 1) / (2 * v[j]);
      auto const g = detail::decoder_error_variance_vjp(m_error, sny, snx, s0.data(), a.data());
      dsv.resize(ns);
      for (long j = 0; j < ns; ++j)
        dsv[j] = g[std::size_t(j)];
    } else {
      dsv.resize(0);
    }
    // M = K S A'^-1 S K.
    Eigen::MatrixXd sas = sq.asDiagonal() * ainv * sq.asDiagonal();
    if (smooth) {
      smooth_cols(sas, ainv);
      ainv.transposeInPlace();
      smooth_cols(ainv, m);
    } else {
      m = std::move(sas);
    }
    return -0.5 * eta.squaredNorm() - 0.5 * log_det;
  }

  gaussian_type m_like;
  PixelatedSource<Scalar> m_source;
  View2D<Scalar, MemorySpace> m_grad_pixels;
  std::shared_ptr<inversion_type const> m_corr;
  double m_tau = 0;
  View2D<Scalar, MemorySpace> m_total;
  std::shared_ptr<Eigen::VectorXd> m_delta;
  std::shared_ptr<std::vector<long>> m_row_of_pixel;
  DecoderError m_error;
  bool m_structured = false;
  std::shared_ptr<std::vector<double> const> m_kernel;
};

//----------------------------------------------------------------------------
/// The posterior of a lens with a decoded (VAE) source: a LogDensity
/// (density/log_density.hpp) on q = (lens free parameters unconstrained, z,
/// u_amp), dimension lens free + Z (+ 1 when the flux scale is free),
///
///   log p(q) = log L(data | lens(theta), amp D(z)) + log p(theta) + log|dtheta/dq_lens|
///              + log N(z; 0, I) + log p_amp(amp) + log|damp/du|,
///
/// theta the lens model's named parameters (the Posterior of `lens_table`:
/// priors by name, ties, fixed values, transforms; the source has no
/// parameters of its own), N(0, I) the VAE's prior on z (normalised), amp =
/// f(u) the source's flux scale through the transform onto its prior's
/// support (ParameterTransform::for_prior; not sampled when the prior is
/// Prior::fixed).  Gradient: the lens part and d log L / d s from the
/// likelihood (DecodedSourceLikelihood), then
///   d/dz = J_D(z)^T (amp dlogL/ds) - z,
///   d/du = f'(u) [sum dlogL/ds D(z) + dlog p_amp/damp] + d/du log|f'(u)|.
/// A point where the lens prior or the lens model rejects its parameters has
/// log p = -inf and a zero gradient (as Posterior).
///
/// Names: free_names() = the lens Posterior's, then "source0.z0" ..
/// "source0.z{Z-1}", then "source0.amp" when free; all_names() the same with
/// every lens model parameter (constrain()).
///
/// Threads: launches kernels (the likelihood's and the network's), so the
/// samplers run its chains on the calling thread; clone() builds a new lens
/// Posterior on the likelihood's clone and a Decoded clone (own buffers,
/// shared network: see Decoded).
template <class Model, class MemorySpace, class Psf, class Net>
class DecodedSourcePosterior {
 public:
  using Scalar = typename Model::scalar_type;
  using gaussian_type = GaussianLikelihood<Model, MemorySpace, Psf>;
  using likelihood_type = DecodedSourceLikelihood<Model, MemorySpace, Psf>;
  using lens_posterior_type = Posterior<likelihood_type>;
  using decoded_type = Decoded<Net, Scalar>;
  using table_type = ParameterTable<double, Kokkos::HostSpace>;
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  static constexpr bool launches_kernels = true;
  static_assert(std::is_same<typename decoded_type::memory_space, MemorySpace>::value,
                "lensing::DecodedSourcePosterior: the decoder network must live in the likelihood's memory space");

  /// `lens_table` names every parameter of Model (lens and lens light; the
  /// decoded source has none), as for Posterior; `amplitude` the prior of
  /// the flux scale (Prior::fixed(v): held at v).  Throws
  /// std::invalid_argument as Posterior, and for a decoder whose grid is not
  /// the one the likelihood would see (checked by Decoded).
  DecodedSourcePosterior(gaussian_type const& likelihood, table_type const& lens_table, decoded_type const& decoded,
                         Prior<double> const& amplitude,
                         typename lens_posterior_type::transform_overrides const& overrides = {})
      : DecodedSourcePosterior(likelihood, table_type(lens_table), decoded, amplitude, nullptr, DecoderError{}, false,
                               overrides) {}
  /// With the decoder's error marginalised: source = amp D(z) + delta, delta
  /// ~ N(0, (R / tau^2)^-1) on the decoded pixels (DecodedSourceLikelihood's
  /// second model: `correction` a SourceInversion on the same data, noise,
  /// mask, image grid and PSF kernel, over the decoder's source grid with
  /// its interpolation; R its regularisation, Regularisation::zeroth for iid
  /// pixels of sd tau).  The density is the joint one above with log L the
  /// marginal likelihood; same parameters, names and gradients' structure.
  DecodedSourcePosterior(gaussian_type const& likelihood, table_type const& lens_table, decoded_type const& decoded,
                         Prior<double> const& amplitude, SourceInversion<Scalar> const& correction, double tau,
                         typename lens_posterior_type::transform_overrides const& overrides = {})
      : DecodedSourcePosterior(likelihood, table_type(lens_table), decoded, amplitude,
                               std::make_shared<SourceInversion<Scalar> const>(correction), DecoderError{tau, 0, 0},
                               false, overrides) {
    check_positive(tau, "lensing::DecodedSourcePosterior", "tau");
  }
  /// With the structured decoder error of `error` marginalised
  /// (DecodedSourceLikelihood's third model: delta ~ N(0, K V K^T), v_j =
  /// tau^2 + kappa^2 s_j^2, K a Gaussian smoothing of sd kernel_sigma
  /// source pixels); `correction` as above (its regularisation unused).
  DecodedSourcePosterior(gaussian_type const& likelihood, table_type const& lens_table, decoded_type const& decoded,
                         Prior<double> const& amplitude, SourceInversion<Scalar> const& correction,
                         DecoderError const& error,
                         typename lens_posterior_type::transform_overrides const& overrides = {})
      : DecodedSourcePosterior(likelihood, table_type(lens_table), decoded, amplitude,
                               std::make_shared<SourceInversion<Scalar> const>(correction), error, true, overrides) {}

 private:
  static likelihood_type make_likelihood(gaussian_type const& likelihood, PixelatedSource<Scalar> const& source,
                                         std::shared_ptr<SourceInversion<Scalar> const> const& correction,
                                         DecoderError const& error, bool structured) {
    if (correction && structured) return likelihood_type(likelihood, source, correction, error);
    if (correction) return likelihood_type(likelihood, source, correction, error.tau);
    return likelihood_type(likelihood, source);
  }
  DecodedSourcePosterior(gaussian_type const& likelihood, table_type&& lens_table, decoded_type const& decoded,
                         Prior<double> const& amplitude, std::shared_ptr<SourceInversion<Scalar> const> correction,
                         DecoderError const& error, bool structured,
                         typename lens_posterior_type::transform_overrides const& overrides)
      : m_decoded(decoded.clone()),
        m_post(make_likelihood(likelihood, m_decoded.source(), correction, error, structured), lens_table, overrides),
        m_amp_prior(amplitude),
        m_overrides(overrides),
        m_corr(std::move(correction)),
        m_tau(error.tau),
        m_error(error),
        m_structured(structured) {
    constexpr char const* where = "lensing::DecodedSourcePosterior";
    check_argument(m_decoded.network() != nullptr, where, "the decoder is empty (default-constructed Decoded)");
    m_amp_free = amplitude.kind != PriorKind::fixed;
    if (m_amp_free)
      m_amp_transform = ParameterTransform::for_prior(amplitude);
    else
      check_positive(amplitude.p0, where, "the fixed amplitude");
    int const nl = m_post.dimension();
    m_ql = View1D<double, Kokkos::HostSpace>("lensing::DecodedSourcePosterior::q_lens", nl);
    m_gl = View1D<double, Kokkos::HostSpace>("lensing::DecodedSourcePosterior::grad_lens", nl);
  }

 public:
  DecodedSourcePosterior clone() const {
    return DecodedSourcePosterior(m_post.likelihood().gaussian().clone(), table_type(m_post.table()), m_decoded,
                                  m_amp_prior, m_corr, m_error, m_structured, m_overrides);
  }
  /// Whether the decoder's error term is on, and its tau (0 when off).
  bool source_error() const { return m_corr != nullptr; }
  double tau() const { return m_tau; }
  /// The structured error model (DecoderError) and whether it is the one in use.
  DecoderError const& error_model() const { return m_error; }
  bool structured_error() const { return m_structured; }

  //--------------------------------------------------------------------------
  // LogDensity.
  int dimension() const { return lens_dimension() + latent_dim() + (m_amp_free ? 1 : 0); }
  int lens_dimension() const { return m_post.dimension(); }
  int latent_dim() const { return m_decoded.latent_dim(); }
  bool amplitude_free() const { return m_amp_free; }

  /// log p(q) and grad (host views of length dimension()); see the class comment.  Fences `space`.
  template <class Space>
  double value_and_gradient(Space const& space, View1D<double, Kokkos::HostSpace> const& q,
                            View1D<double, Kokkos::HostSpace> const& grad) const {
    constexpr char const* where = "lensing::DecodedSourcePosterior::value_and_gradient";
    int const d = dimension(), nl = lens_dimension(), nz = latent_dim();
    check_argument(q.extent(0) == std::size_t(d) && grad.extent(0) == std::size_t(d), where,
                   "q and grad must have dimension() = " + std::to_string(d) + " entries");
    for (int f = 0; f < nl; ++f)
      m_ql(f) = q(f);
    std::vector<double> z(static_cast<std::size_t>(nz)), gz(static_cast<std::size_t>(nz));
    double log_z = -0.5 * nz * std::log(2 * M_PI);
    for (int j = 0; j < nz; ++j) {
      z[j] = q(nl + j);
      log_z -= 0.5 * z[j] * z[j];
    }
    double amp = m_amp_prior.p0, log_amp = 0, u = 0;
    if (m_amp_free) {
      u = q(nl + nz);
      amp = m_amp_transform.constrain(u);
      log_amp = m_amp_prior.log_density(amp) + m_amp_transform.log_jacobian(u);
      if (!(log_amp > -HUGE_VAL) || !std::isfinite(amp)) return reject(grad, log_amp);
    }
    if (!std::isfinite(log_z)) return reject(grad, -HUGE_VAL);
    m_decoded.decode(space, z.data(), amp);
    double const v = m_post.value_and_gradient(space, m_ql, m_gl);
    if (!(v > -HUGE_VAL) || !std::isfinite(v)) return reject(grad, v);
    double const damp = m_decoded.vjp(space, m_post.likelihood().grad_source_pixels(), amp, gz.data());
    for (int f = 0; f < nl; ++f)
      grad(f) = m_gl(f);
    for (int j = 0; j < nz; ++j)
      grad(nl + j) = gz[j] - z[j];
    if (m_amp_free) grad(nl + nz) = m_amp_transform.pullback(u, damp + m_amp_prior.gradient(amp));
    return v + log_z + log_amp;
  }

  //--------------------------------------------------------------------------
  // Names and maps.

  /// Free parameters in the order of q: the lens Posterior's, z0.., amp.
  std::vector<std::string> free_names() const {
    auto n = m_post.free_names();
    append_source_names(n);
    return n;
  }
  /// Every lens model parameter (model order), then z0.., amp (constrain()'s columns).
  std::vector<std::string> all_names() const {
    auto n = m_post.all_names();
    append_source_names(n, true);
    return n;
  }
  /// Every named value at unconstrained q: the lens model's (Posterior::constrain), z, amp.
  std::vector<double> constrain(std::vector<double> const& q) const {
    check_size(q, "lensing::DecodedSourcePosterior::constrain");
    int const nl = lens_dimension(), nz = latent_dim();
    auto out = m_post.constrain(q.data());
    for (int j = 0; j < nz; ++j)
      out.push_back(q[nl + j]);
    out.push_back(amplitude_at(q));
    return out;
  }
  /// The unconstrained point of a lens row (Posterior::unconstrain: full
  /// model row or free values), a latent vector and a flux scale (ignored
  /// when fixed).  Throws std::invalid_argument as Posterior::unconstrain,
  /// for a z of the wrong size or an amplitude outside its prior's support.
  std::vector<double> initial_point(std::vector<double> const& lens_values, std::vector<double> const& z,
                                    double amplitude) const {
    constexpr char const* where = "lensing::DecodedSourcePosterior::initial_point";
    auto q = m_post.initial_point_from(lens_values);
    check_argument(z.size() == std::size_t(latent_dim()), where,
                   "z must have latent_dim() = " + std::to_string(latent_dim()) + " entries");
    q.insert(q.end(), z.begin(), z.end());
    if (m_amp_free) {
      check_argument(m_amp_transform.contains(amplitude), where,
                     "the amplitude " + std::to_string(amplitude) + " is outside its prior's support " +
                         m_amp_transform.describe());
      q.push_back(m_amp_transform.unconstrain(amplitude));
    }
    return q;
  }
  /// `n` starting points: the lens parameters drawn from their priors
  /// (Posterior::draw_prior_starts), z = latent_scale * N(0, I) (0: the
  /// prior's mode) and the amplitude from its prior, from the streams
  /// (seed, purpose_prior, start, column) of core/random.hpp.
  std::vector<std::vector<double>> draw_prior_starts(int n, std::uint64_t seed, double latent_scale = 0) const {
    check_nonnegative(latent_scale, "lensing::DecodedSourcePosterior::draw_prior_starts", "latent_scale");
    auto starts = m_post.draw_prior_starts(n, seed);
    int const nz = latent_dim(), base = m_post.table().size();
    for (int s = 0; s < n; ++s) {
      for (int j = 0; j < nz; ++j) {
        random::Stream r(random::stream_key(seed, random::purpose_prior, std::uint64_t(s), std::uint64_t(base + j)));
        starts[s].push_back(latent_scale * r.normal<double>());
      }
      if (m_amp_free) {
        random::Stream r(random::stream_key(seed, random::purpose_prior, std::uint64_t(s), std::uint64_t(base + nz)));
        double const a = m_amp_prior.sample(r);
        double const ua = m_amp_transform.contains(a) ? m_amp_transform.unconstrain(a) : 0.0;
        starts[s].push_back(std::max(-30.0, std::min(30.0, ua)));
      }
    }
    return starts;
  }
  /// Prior scales in q (Posterior::start_scales, 1 for z, half the central
  /// 68 % of the amplitude's prior in u, estimated from 2000 draws).
  std::vector<double> start_scales() const {
    auto s = m_post.start_scales();
    s.insert(s.end(), std::size_t(latent_dim()), 1.0);
    if (m_amp_free) {
      std::vector<double> u;
      for (int i = 0; i < 2000; ++i) {
        random::Stream r(random::stream_key(0x5ca1e5, random::purpose_prior, std::uint64_t(i), 0));
        double const a = m_amp_prior.sample(r);
        if (m_amp_transform.contains(a)) u.push_back(m_amp_transform.unconstrain(a));
      }
      double sc = 1;
      if (u.size() > 10) {
        std::sort(u.begin(), u.end());
        sc = 0.5 * (u[std::size_t(0.8413 * (u.size() - 1))] - u[std::size_t(0.1587 * (u.size() - 1))]);
      }
      s.push_back(std::isfinite(sc) && sc > 0 ? sc : 1.0);
    }
    return s;
  }
  /// The flux scale at q.
  double amplitude_at(std::vector<double> const& q) const {
    check_size(q, "lensing::DecodedSourcePosterior::amplitude_at");
    return m_amp_free ? m_amp_transform.constrain(q[std::size_t(lens_dimension() + latent_dim())]) : m_amp_prior.p0;
  }
  /// The model at q with the source decoded into this density's pixel buffer
  /// (valid until its next evaluation).  Fences `space`.
  template <class Space>
  Model model_at(Space const& space, std::vector<double> const& q) const {
    check_size(q, "lensing::DecodedSourcePosterior::model_at");
    std::vector<double> const ql(q.begin(), q.begin() + lens_dimension());
    m_decoded.decode(space, q.data() + lens_dimension(), amplitude_at(q));
    return m_post.likelihood().with_source(m_post.model_at(ql));
  }
  /// With the error term: the model at q with its most probable source amp
  /// D(z) + delta* (one evaluation of the density; valid until the next);
  /// without it, model_at(q).  Fences `space`.
  template <class Space>
  Model corrected_model_at(Space const& space, std::vector<double> const& q) const {
    check_size(q, "lensing::DecodedSourcePosterior::corrected_model_at");
    if (!m_corr) return model_at(space, q);
    View1D<double, Kokkos::HostSpace> qv("lensing::DecodedSourcePosterior::q", q.size()),
        gv("lensing::DecodedSourcePosterior::g", q.size());
    for (std::size_t i = 0; i < q.size(); ++i)
      qv(i) = q[i];
    value_and_gradient(space, qv, gv);
    std::vector<double> const ql(q.begin(), q.begin() + lens_dimension());
    return m_post.likelihood().with_corrected_source(m_post.model_at(ql));
  }

  lens_posterior_type const& lens_posterior() const { return m_post; }
  decoded_type const& decoded() const { return m_decoded; }
  Prior<double> const& amplitude_prior() const { return m_amp_prior; }

 private:
  static double reject(View1D<double, Kokkos::HostSpace> const& grad, double value) {
    for (std::size_t f = 0; f < grad.extent(0); ++f)
      grad(f) = 0;
    return std::isnan(value) ? value : -HUGE_VAL;
  }
  void check_size(std::vector<double> const& q, char const* where) const {
    check_argument(
        q.size() == std::size_t(dimension()), where,
        "q must have dimension() = " + std::to_string(dimension()) + " entries, got " + std::to_string(q.size()));
  }
  void append_source_names(std::vector<std::string>& n, bool always_amp = false) const {
    for (int j = 0; j < latent_dim(); ++j)
      n.push_back("source0.z" + std::to_string(j));
    if (m_amp_free || always_amp) n.push_back("source0.amp");
  }

  decoded_type m_decoded;  // before m_post: its pixel buffer is the likelihood's source
  lens_posterior_type m_post;
  Prior<double> m_amp_prior;
  typename lens_posterior_type::transform_overrides m_overrides;
  std::shared_ptr<SourceInversion<Scalar> const> m_corr;
  double m_tau = 0;
  DecoderError m_error;
  bool m_structured = false;
  bool m_amp_free = false;
  ParameterTransform m_amp_transform;
  View1D<double, Kokkos::HostSpace> m_ql, m_gl;
};

}  // namespace lensing

#endif  // LENSING_FIT_DECODED_SOURCE_HPP
