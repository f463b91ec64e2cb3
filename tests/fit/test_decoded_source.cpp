// Decoded<Net> (sources/decoded.hpp) and DecodedSourcePosterior
// (fit/decoded_source.hpp): the decoded pixels, the gradient of the joint
// log density with respect to the lens parameters, the latent vector and the
// flux scale against central differences, and the argument checks.

#include <lensing/fit/decoded_source.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/nn/activation.hpp>
#include <lensing/nn/dense.hpp>
#include <lensing/nn/reshape.hpp>
#include <lensing/nn/sequential.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/psf/convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/psf/kernels.hpp>
#include <lensing/sources/decoded.hpp>
#include <lensing/sources/light_profile.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

template <class T, class Mem>
using Decoder =
    lensing::nn::Sequential<lensing::nn::Dense<T, Mem>, lensing::nn::Tanh<T, Mem>, lensing::nn::Dense<T, Mem>,
                            lensing::nn::Softplus<T, Mem>, lensing::nn::Reshape<T, Mem>>;
template <class T>
using Lens = lensing::Composite<lensing::SIE<T>, lensing::ExternalShear<T>>;
template <class T>
using Model = lensing::LensModel<Lens<T>, lensing::PixelatedSource<T>, lensing::NoLight<T>>;

constexpr int kLatent = 3, kSrc = 10, kImg = 20;

// A 3 -> 24 -> 100 decoder onto a 10 x 10 source grid; weights from `w` when
// given (the same network in another scalar type), else He-initialised.
template <class T, class Mem>
std::shared_ptr<Decoder<T, Mem>> make_decoder(std::vector<double> const& w = {}) {
  using namespace lensing::nn;
  auto net = std::make_shared<Decoder<T, Mem>>(Shape4{1, kLatent, 1, 1}, Dense<T, Mem>(kLatent, 24), Tanh<T, Mem>(),
                                               Dense<T, Mem>(24, kSrc * kSrc), Softplus<T, Mem>(),
                                               Reshape<T, Mem>(1, kSrc, kSrc));
  net->initialize(7);
  if (!w.empty()) lensing::test::set_values(net->parameters(), w);
  return net;
}

// The lens in model order: SIE theta_E e1 e2 centre, shear gamma1 gamma2 ra_0 dec_0.
std::vector<double> lens_truth() { return {0.62, 0.07, -0.05, 0.02, -0.03, 0.03, -0.02, 0.0, 0.0}; }
std::vector<double> z_truth() { return {0.4, -0.8, 0.3}; }

lensing::ParameterTable<double, Kokkos::HostSpace> lens_table() {
  using P = lensing::Prior<double>;
  lensing::ParameterTable<double, Kokkos::HostSpace> t;
  t.add("lens0.theta_E", P::uniform(0.3, 1.2))
      .add("lens0.e1", P::truncated_normal(0, 0.2, -0.6, 0.6))
      .add("lens0.e2", P::truncated_normal(0, 0.2, -0.6, 0.6))
      .add("lens0.center_x", P::normal(0, 0.1))
      .add("lens0.center_y", P::normal(0, 0.1))
      .add("lens1.gamma1", P::normal(0, 0.05))
      .add("lens1.gamma2", P::normal(0, 0.05))
      .add("lens1.ra_0", P::fixed(0))
      .add("lens1.dec_0", P::fixed(0));
  return t;
}

// 20 x 20 pixels of 0.1" (k = 2, Gaussian PSF 0.2"), a 10 x 10 source of
// 0.08" off the lens centre; data: the decoded truth plus a fixed pattern
// (noise 0.05).  Holds the data so that the likelihood's views stay alive.
template <class T, class Space, class Mem>
struct Case {
  using Psf = lensing::GaussianFilter<T, Mem>;
  using Post = lensing::DecodedSourcePosterior<Model<T>, Mem, Psf, Decoder<T, Mem>>;
  lensing::Observation<T, Mem, Psf> obs{lensing::PixelGrid<T>(kImg, kImg, T(0.1), 2), Psf(0.2, 0.1, kImg, kImg)};
  lensing::PixelGrid<T> sgrid{kSrc, kSrc, T(0.08), 1, T(0.05), T(-0.03)};
  lensing::View2D<T, Mem> data{"data", kImg, kImg}, noise{"noise", kImg, kImg}, mask{"mask", kImg, kImg};
  lensing::Decoded<Decoder<T, Mem>, T> dec;
  std::unique_ptr<Post> post;

  explicit Case(std::vector<double> const& w, lensing::Prior<double> amp_prior)
      : dec(make_decoder<T, Mem>(w), kLatent, sgrid) {
    Space space;
    auto const z = z_truth();
    auto lt = lens_truth();
    std::vector<T> lp(lt.begin(), lt.end());
    Model<T> m{Lens<T>::unpack(lp.data()), dec.decode(space, z.data(), 3.0), {}};
    obs.render(space, m, data);
    space.fence();
    auto d = lensing::test::host_values(data);
    for (std::size_t i = 0; i < d.size(); ++i)
      d[i] += 0.05 * std::sin(1.7 * double(i) + 0.3);
    lensing::test::set_values(data, d);
    Kokkos::deep_copy(noise, T(0.05));
    Kokkos::deep_copy(mask, T(1));
    lensing::GaussianLikelihood<Model<T>, Mem, Psf> like(obs, data, noise, mask);
    post = std::make_unique<Post>(like, lens_table(), dec, amp_prior);
  }
  // A point near (not at) the truth, unconstrained.
  std::vector<double> point() const {
    auto lt = lens_truth();
    // The lens centre ~0.03" from the nearest sub-pixel centre: the SIE's
    // deflection is singular at its centre, so FD truncation (~h^2 theta_E /
    // r^3) grows where a sub-pixel lies near it.
    lt[0] += 0.03, lt[1] -= 0.02, lt[3] = 0.0, lt[4] = 0.012;
    return post->initial_point(lt, {0.5, -0.6, 0.2}, 2.7);
  }
  double eval(std::vector<double> const& q, std::vector<double>* g = nullptr) const {
    Space space;
    lensing::View1D<double, Kokkos::HostSpace> qv("q", q.size()), gv("g", q.size());
    for (std::size_t i = 0; i < q.size(); ++i)
      qv(i) = q[i];
    double const v = post->value_and_gradient(space, qv, gv);
    if (g) *g = std::vector<double>(gv.data(), gv.data() + gv.extent(0));
    return v;
  }
};

}  // namespace

LENSING_TEST_CASE_TEMPLATE("decoded source: pixels are amp times the decoder's output", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using T = typename Config::scalar;
  Space space;
  lensing::PixelGrid<T> const sgrid(kSrc, kSrc, T(0.08));
  auto net = make_decoder<T, Mem>();
  lensing::Decoded<Decoder<T, Mem>, T> const dec(net, kLatent, sgrid, lensing::Interpolation::bilinear);
  auto const z = z_truth();
  auto const src = dec.decode(space, z.data(), 2.5);
  lensing::nn::Tensor<T, Mem> x("x", 1, kLatent, 1, 1);
  lensing::test::set_values(x, z);
  auto const y = lensing::test::host_values(net->forward(space, x));
  auto const pix = lensing::test::host_values(dec.pixels());
  auto const unit = lensing::test::host_values(dec.unit_pixels());
  REQUIRE(pix.size() == y.size());
  // Rounding only: one product per pixel.
  double const tol = std::is_same<T, double>::value ? 1e-14 : 1e-6;
  for (std::size_t i = 0; i < y.size(); ++i) {
    CHECK(unit[i] == doctest::Approx(y[i]).epsilon(tol));
    CHECK(pix[i] == doctest::Approx(2.5 * y[i]).epsilon(tol));
  }
  // The source is the pixel grid: at a pixel centre the bilinear interpolation is the pixel.
  auto const hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dec.pixels());
  CHECK(src.grid.nx() == kSrc);
  CHECK(src.values == dec.pixels().data());
  // A clone has its own pixels.
  auto const c = dec.clone();
  CHECK(c.pixels().data() != dec.pixels().data());
  CHECK(c.network() == dec.network());
  (void)hp;
}

LENSING_TEST_CASE_TEMPLATE("decoded source posterior: gradient in lens parameters, z and amp", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using T = typename Config::scalar;
  using P = lensing::Prior<double>;
  std::vector<double> const w = lensing::test::host_values(make_decoder<double, Mem>()->parameters());
  Case<double, Space, Mem> const cd(w, P::log_uniform(0.5, 20));
  auto const q = cd.point();
  REQUIRE(int(q.size()) == cd.post->dimension());
  CHECK(cd.post->dimension() == 7 + kLatent + 1);
  auto const names = cd.post->free_names();
  CHECK(names[0] == "lens0.theta_E");
  CHECK(names[7] == "source0.z0");
  CHECK(names.back() == "source0.amp");
  std::vector<double> g;
  double const v = cd.eval(q, &g);
  REQUIRE(std::isfinite(v));
  if constexpr (std::is_same<T, double>::value) {
    // Central differences of log p (double) per coordinate: log p is smooth
    // here (bicubic source: C1 in position, its second derivative jumps at
    // source pixel edges, which moves a central difference by O(h |jump|));
    // truncation ~h^2 |f'''| ~1e-10 at h = 1e-5 on O(1) curvatures, rounding
    // eps |v| / h ~ 2e-16 * 1e3 / 1e-5 = 2e-8, against gradients of O(1e2):
    // a relative 1e-6 of the largest component holds all of it.
    double const h = 1e-5;
    std::vector<double> fd(q.size());
    for (std::size_t i = 0; i < q.size(); ++i) {
      auto qp = q, qm = q;
      qp[i] += h, qm[i] -= h;
      fd[i] = (cd.eval(qp) - cd.eval(qm)) / (2 * h);
    }
    double scale = 0;
    for (double x : fd)
      scale = std::max(scale, std::abs(x));
    for (std::size_t i = 0; i < q.size(); ++i) {
      INFO(names[i]);
      CHECK(std::abs(g[i] - fd[i]) <= 1e-6 * scale);
    }
    // Every block carries a real gradient (the test would not see a zeroed one otherwise).
    CHECK(std::abs(fd[0]) > 1e-3 * scale);
    CHECK(std::abs(fd[7]) + std::abs(fd[8]) + std::abs(fd[9]) > 1e-3 * scale);
    CHECK(std::abs(fd[10]) > 1e-3 * scale);
    // A clone evaluates the same density (bitwise: same operations, host reductions fixed).
    auto const cl = cd.post->clone();
    Space space;
    lensing::View1D<double, Kokkos::HostSpace> qv("q", q.size()), gv("g", q.size());
    for (std::size_t i = 0; i < q.size(); ++i)
      qv(i) = q[i];
    CHECK(cl.value_and_gradient(space, qv, gv) == doctest::Approx(v).epsilon(1e-12));
  } else {
    // The float density (float likelihood and network, the same weights)
    // against the double one: rounding of float sums over 1,600 sub-pixels
    // and the network's float arithmetic, ~1e-4 relative of the largest component.
    Case<T, Space, Mem> const cf(w, P::log_uniform(0.5, 20));
    std::vector<double> gf;
    double const vf = cf.eval(q, &gf);
    CHECK(vf == doctest::Approx(v).epsilon(1e-4));
    CHECK(lensing::test::rel_diff(gf, g) < 2e-3);
  }
}

LENSING_TEST_CASE_TEMPLATE("decoded source posterior: fixed amplitude, names, rejections and bad arguments", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  using T = typename Config::scalar;
  using P = lensing::Prior<double>;
  Case<T, Space, Mem> const c({}, P::fixed(3.0));
  CHECK(c.post->dimension() == 7 + kLatent);
  CHECK_FALSE(c.post->amplitude_free());
  auto const all = c.post->all_names();
  CHECK(all.size() == 9 + kLatent + 1);
  CHECK(all.back() == "source0.amp");
  auto q = c.post->initial_point(lens_truth(), z_truth(), 3.0);
  auto const row = c.post->constrain(q);
  CHECK(row[0] == doctest::Approx(0.62));
  CHECK(row[9] == doctest::Approx(0.4));
  CHECK(row.back() == 3.0);
  // At the truth the model is the data less the pattern: chi^2 = sum (0.05 sin / 0.05)^2 ~ 200.
  std::vector<double> g;
  double const v = c.eval(q, &g);
  CHECK(std::isfinite(v));
  // The lens model with the decoded source renders the noiseless image.
  Space space;
  lensing::View2D<T, Mem> img("img", kImg, kImg);
  c.obs.render(space, c.post->model_at(space, q), img);
  space.fence();
  auto const im = lensing::test::host_values(img), d = lensing::test::host_values(c.data);
  double worst = 0;
  for (std::size_t i = 0; i < im.size(); ++i)
    worst = std::max(worst, std::abs(d[i] - im[i] - 0.05 * std::sin(1.7 * double(i) + 0.3)));
  CHECK(worst < 1e-12);
  // Starts: z = 0 by default, z ~ N(0, 1) with latent_scale 1.
  auto const s0 = c.post->draw_prior_starts(3, 5), s1 = c.post->draw_prior_starts(3, 5, 1.0);
  CHECK(s0[1][7] == 0.0);
  CHECK(s1[1][7] != 0.0);
  CHECK(c.post->start_scales().size() == std::size_t(c.post->dimension()));
  // Bad arguments.
  CHECK_THROWS_AS(c.post->initial_point(lens_truth(), {0.1}, 3.0), std::invalid_argument);
  CHECK_THROWS_AS(c.post->constrain({0.1, 0.2}), std::invalid_argument);
  CHECK_THROWS_AS(c.eval({0.1, 0.2}), std::invalid_argument);
  using Dec = lensing::Decoded<Decoder<T, Mem>, T>;
  CHECK(lensing::test::error_message([&] {
          Dec(make_decoder<T, Mem>(), kLatent, lensing::PixelGrid<T>(9, 10, T(0.1)));
        }).find("lensing::Decoded") != std::string::npos);
  CHECK_THROWS_AS(Dec(nullptr, kLatent, c.sgrid), std::invalid_argument);
  CHECK_THROWS_AS(Dec(make_decoder<T, Mem>(), 4, c.sgrid), std::invalid_argument);
  CHECK_THROWS_AS(Dec(make_decoder<T, Mem>(), 0, c.sgrid), std::invalid_argument);
  lensing::View2D<T, Mem> wrong("wrong", 3, 3);
  std::vector<double> gz(kLatent);
  CHECK_THROWS_AS(c.post->decoded().vjp(space, wrong, 1.0, gz.data()), std::invalid_argument);
  CHECK_THROWS_AS(Dec().decode(space, gz.data(), 1.0), std::invalid_argument);
  using Post = typename Case<T, Space, Mem>::Post;
  lensing::GaussianLikelihood<Model<T>, Mem, typename Case<T, Space, Mem>::Psf> like(c.obs, c.data, c.noise, c.mask);
  CHECK_THROWS_AS(Post(like, lens_table(), c.dec, P::fixed(0.0)), std::invalid_argument);
  auto t = lens_table();
  t.add("source0.amp", P::uniform(0, 1));
  CHECK_THROWS_AS(Post(like, t, c.dec, P::fixed(1.0)), std::invalid_argument);
}

namespace {

// The decoder-error model (DecodedSourceLikelihood's second model): the same
// lens and decoder, a Gaussian PSF as a 7 x 7 DirectConvolution kernel (the
// SourceInversion's lensing operator renders exactly as this Observation),
// data = the decoded truth plus a smooth source-plane perturbation the decoder
// cannot produce, lensed, plus the fixed pattern of Case.
template <class Space, class Mem>
struct ErrCase {
  using T = double;
  using Psf = lensing::DirectConvolution<T, Mem>;
  using Post = lensing::DecodedSourcePosterior<Model<T>, Mem, Psf, Decoder<T, Mem>>;
  using Like = lensing::DecodedSourceLikelihood<Model<T>, Mem, Psf>;
  lensing::PsfKernel<T> kernel = lensing::gaussian_psf_kernel<T>(0.2, 0.1, 3.0);
  lensing::PixelGrid<T> igrid{kImg, kImg, T(0.1), 2};
  lensing::Observation<T, Mem, Psf> obs{igrid, Psf(kernel, kImg, kImg)};
  lensing::PixelGrid<T> sgrid{kSrc, kSrc, T(0.08), 1, T(0.05), T(-0.03)};
  lensing::View2D<T, Mem> data{"data", kImg, kImg}, noise{"noise", kImg, kImg}, mask{"mask", kImg, kImg};
  lensing::Decoded<Decoder<T, Mem>, T> dec;
  std::unique_ptr<lensing::SourceInversion<T>> inv;
  std::unique_ptr<Post> post;
  double tau;
  lensing::DecoderError error;  // the structured model when error.tau > 0, else the white one of tau

  ErrCase(std::vector<double> const& w, double tau_, lensing::DecoderError const& error_ = {})
      : dec(make_decoder<T, Mem>(w), kLatent, sgrid), tau(tau_), error(error_) {
    Space space;
    auto const z = z_truth();
    auto const lt = lens_truth();
    dec.decode(space, z.data(), 3.0);
    auto px = lensing::test::host_values(dec.pixels());
    for (std::size_t i = 0; i < px.size(); ++i)
      px[i] += 0.4 * std::cos(0.9 * double(i % kSrc)) * std::sin(0.7 * double(i / kSrc));
    lensing::View2D<T, Mem> truth("truth", kSrc, kSrc);
    lensing::test::set_values(truth, px);
    Model<T> m{
        Lens<T>::unpack(lt.data()), lensing::make_pixelated_source(truth, sgrid, lensing::Interpolation::bicubic), {}};
    obs.render(space, m, data);
    space.fence();
    auto d = lensing::test::host_values(data);
    for (std::size_t i = 0; i < d.size(); ++i)
      d[i] += 0.05 * std::sin(1.7 * double(i) + 0.3);
    lensing::test::set_values(data, d);
    Kokkos::deep_copy(noise, T(0.05));
    Kokkos::deep_copy(mask, T(1));
    lensing::LensingOperatorOptions oo;
    oo.interpolation = lensing::Interpolation::bicubic;
    inv = std::make_unique<lensing::SourceInversion<T>>(igrid, sgrid, data, noise, mask,
                                                        lensing::Regularisation::zeroth, kernel, oo);
    lensing::GaussianLikelihood<Model<T>, Mem, Psf> like(obs, data, noise, mask);
    if (error.tau > 0)
      post = std::make_unique<Post>(like, lens_table(), dec, lensing::Prior<double>::log_uniform(0.5, 20), *inv, error);
    else
      post = std::make_unique<Post>(like, lens_table(), dec, lensing::Prior<double>::log_uniform(0.5, 20), *inv, tau);
  }
  std::vector<double> point() const {
    auto lt = lens_truth();
    lt[0] += 0.03, lt[1] -= 0.02, lt[3] = 0.0, lt[4] = 0.012;  // as Case::point
    return post->initial_point(lt, {0.5, -0.6, 0.2}, 2.7);
  }
  double eval(std::vector<double> const& q, std::vector<double>* g = nullptr) const {
    Space space;
    lensing::View1D<double, Kokkos::HostSpace> qv("q", q.size()), gv("g", q.size());
    for (std::size_t i = 0; i < q.size(); ++i)
      qv(i) = q[i];
    double const v = post->value_and_gradient(space, qv, gv);
    if (g) *g = std::vector<double>(gv.data(), gv.data() + gv.extent(0));
    return v;
  }
  // log N(d; L s, C + tau^2 L L^T) by dense linear algebra (the definition);
  // for the structured model C + L K V K^T L^T, v_j = tau^2 + kappa^2 s_j^2 +
  // gamma^2 |grad s|_j^2 (central differences, 0 beyond the border),
  // K the dense matrix of the Gaussian kernel (written out here from its
  // definition: k_i ~ exp(-i^2 / 2 sigma^2), |i| <= ceil(3 sigma), sum k_i^2 = 1).
  double direct_marginal(std::vector<double> const& lens, std::vector<double> const& s) const {
    Space space;
    auto const op = inv->lensing_operator(space, Lens<T>::unpack(lens.data()));
    Eigen::MatrixXd const l(op.matrix);
    Eigen::VectorXd sv(long(s.size()));
    for (std::size_t i = 0; i < s.size(); ++i)
      sv[long(i)] = s[i];
    Eigen::VectorXd const r = inv->data() - l * sv;
    Eigen::MatrixXd cov = tau * tau * l * l.transpose();
    if (error.tau > 0) {
      int const rad = int(std::ceil(3 * error.kernel_sigma));
      std::vector<double> k1(std::size_t(2 * rad + 1));
      double ss = 0;
      for (int i = -rad; i <= rad; ++i)
        ss +=
            std::pow(k1[std::size_t(i + rad)] = std::exp(-0.5 * i * i / (error.kernel_sigma * error.kernel_sigma)), 2);
      Eigen::MatrixXd k = Eigen::MatrixXd::Zero(kSrc * kSrc, kSrc * kSrc);
      for (int a = 0; a < kSrc * kSrc; ++a)
        for (int b = 0; b < kSrc * kSrc; ++b) {
          int const dy = a / kSrc - b / kSrc, dx = a % kSrc - b % kSrc;
          if (std::abs(dy) <= rad && std::abs(dx) <= rad)
            k(a, b) = k1[std::size_t(dy + rad)] * k1[std::size_t(dx + rad)] / ss;
        }
      Eigen::VectorXd v(sv.size());
      auto px = [&](int iy, int ix) { return iy >= 0 && iy < kSrc && ix >= 0 && ix < kSrc ? sv[iy * kSrc + ix] : 0.0; };
      for (long j = 0; j < sv.size(); ++j) {
        int const iy = int(j / kSrc), ix = int(j % kSrc);
        double const gx = (px(iy, ix + 1) - px(iy, ix - 1)) / 2, gy = (px(iy + 1, ix) - px(iy - 1, ix)) / 2;
        v[j] = error.tau * error.tau + error.kappa * error.kappa * sv[j] * sv[j] +
               error.gamma * error.gamma * (gx * gx + gy * gy);
      }
      Eigen::MatrixXd const lk = l * k;
      cov = lk * v.asDiagonal() * lk.transpose();
    }
    for (long p = 0; p < cov.rows(); ++p)
      cov(p, p) += inv->sigma()[p] * inv->sigma()[p];
    Eigen::LLT<Eigen::MatrixXd> llt(cov);
    double ld = 0;
    for (long p = 0; p < cov.rows(); ++p)
      ld += 2 * std::log(llt.matrixL()(p, p));
    return -0.5 * r.dot(llt.solve(r)) - 0.5 * ld - 0.5 * double(r.size()) * std::log(2 * M_PI);
  }
};

// The value of an ErrCase's posterior: its change between two (lens, z, amp)
// equals that of the dense marginal c.direct_marginal (constants cancel; 400 x
// 400 Cholesky, rounding ~1e-12 relative of log-densities of O(1e3)); the
// change is a real one and the inversion's correction is not zero (the data
// hold a perturbation the decoder cannot make).
template <class Space, class Mem>
void check_value_against_dense(ErrCase<Space, Mem> const& c, Space const& space) {
  using Like = typename ErrCase<Space, Mem>::Like;
  using MT = typename Like::model_type;
  Like const& like = c.post->lens_posterior().likelihood();
  lensing::View1D<double, Mem> gm("gm", Model<double>::num_params);
  auto lens_a = lens_truth(), lens_b = lens_truth();
  lens_b[0] += 0.04, lens_b[2] += 0.03;
  std::vector<double> const za = z_truth(), zb = {0.1, 0.2, -0.5};
  auto at = [&](std::vector<double> const& lens, std::vector<double> const& z, double amp, double& direct) {
    c.post->decoded().decode(space, z.data(), amp);
    direct = c.direct_marginal(lens, lensing::test::host_values(c.post->decoded().pixels()));
    return like.value_and_gradient(space, MT{Lens<double>::unpack(lens.data()), {}, {}}, gm);
  };
  double da = 0, db = 0;
  double const va = at(lens_a, za, 3.0, da), vb = at(lens_b, zb, 2.0, db);
  INFO("marginalised: " << va - vb << ", dense " << da - db);
  CHECK(std::abs((va - vb) - (da - db)) <= 1e-9 * (std::abs(da) + std::abs(db)));
  CHECK(std::abs(va - vb) > 1);
  CHECK(like.last_correction().norm() > 0.1);
}

// The full gradient of an ErrCase's posterior (7 lens, 3 latent, flux scale)
// against central differences, h = 1e-5: truncation ~h^2 f''' ~1e-10, rounding
// eps |v| / h ~2e-8, the inversion's solves ~1e-13 relative: 1e-6 of the
// largest component.  The lens and latent parts must be non-trivial.  Returns
// the value at c.point() and the largest component (the callers' scale).
struct ValueAndScale {
  double value, scale;
};
template <class C>
ValueAndScale check_gradient_against_central_differences(C const& c) {
  auto const q = c.point();
  std::vector<double> g;
  double const v = c.eval(q, &g);
  REQUIRE(std::isfinite(v));
  auto const names = c.post->free_names();
  double const h = 1e-5;
  std::vector<double> fd(q.size());
  for (std::size_t i = 0; i < q.size(); ++i) {
    auto qp = q, qm = q;
    qp[i] += h, qm[i] -= h;
    fd[i] = (c.eval(qp) - c.eval(qm)) / (2 * h);
  }
  double scale = 0;
  for (double x : fd)
    scale = std::max(scale, std::abs(x));
  for (std::size_t i = 0; i < q.size(); ++i) {
    INFO(names[i] << ": analytic " << g[i] << ", fd " << fd[i]);
    CHECK(std::abs(g[i] - fd[i]) <= 1e-6 * scale);
  }
  CHECK(std::abs(fd[0]) > 1e-3 * scale);
  CHECK(std::abs(fd[7]) + std::abs(fd[8]) + std::abs(fd[9]) > 1e-3 * scale);
  return {v, scale};
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("decoded source with its error marginalised: value and gradient", Config,
                           lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  std::vector<double> const w = lensing::test::host_values(make_decoder<double, Mem>()->parameters());
  ErrCase<Space, Mem> const c(w, 3.0);
  Space space;
  // 1. The value is the Gaussian marginal: its change between two lenses and
  //    sources equals that of log N(d; L s, C + tau^2 L L^T) computed densely
  //    (constants cancel; 400 x 400 Cholesky, rounding ~1e-12 relative of
  //    log-densities of O(1e3)).  This also checks that the operator renders
  //    as the Observation does (the data term is the Observation's).
  check_value_against_dense(c, space);

  // 2. The full gradient (7 lens, 3 latent, flux scale) against central
  //    differences: error model as the exact-decoder test above (bicubic
  //    source C1, truncation ~h^2 f''' ~1e-10, rounding eps |v| / h ~2e-8,
  //    plus the inversion's solves ~1e-13 relative): 1e-6 of the largest.
  auto const q = c.point();
  auto const [v, scale] = check_gradient_against_central_differences(c);
  // The error term changes the density (not a no-op): the exact-decoder
  // posterior on the same data differs.
  lensing::GaussianLikelihood<Model<double>, Mem, typename ErrCase<Space, Mem>::Psf> gl(c.obs, c.data, c.noise, c.mask);
  typename ErrCase<Space, Mem>::Post const plain(gl, lens_table(), c.dec, lensing::Prior<double>::log_uniform(0.5, 20));
  lensing::View1D<double, Kokkos::HostSpace> qv("q", q.size()), gv("g", q.size());
  for (std::size_t i = 0; i < q.size(); ++i)
    qv(i) = q[i];
  CHECK(std::abs(plain.value_and_gradient(space, qv, gv) - v) > 1.0);
  // A clone evaluates the same density.
  auto const cl = c.post->clone();
  CHECK(cl.source_error());
  CHECK(cl.tau() == 3.0);
  CHECK(cl.value_and_gradient(space, qv, gv) == doctest::Approx(v).epsilon(1e-12));
  // Bad arguments: tau <= 0, another source grid.
  using EPost = typename ErrCase<Space, Mem>::Post;
  auto const amp = lensing::Prior<double>::log_uniform(0.5, 20);
  CHECK_THROWS_AS(EPost(gl, lens_table(), c.dec, amp, *c.inv, 0.0), std::invalid_argument);
  lensing::SourceInversion<double> const other(c.igrid, lensing::PixelGrid<double>(kSrc, kSrc, 0.07), c.data, c.noise,
                                               c.mask, lensing::Regularisation::zeroth, c.kernel);
  CHECK_THROWS_AS(EPost(gl, lens_table(), c.dec, amp, other, 0.3), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("decoded source with a structured (correlated, brightness-dependent) error marginalised",
                           Config, lensing::test::DoubleConfigs) {
  using Space = typename Config::execution_space;
  using Mem = typename Config::memory_space;
  std::vector<double> const w = lensing::test::host_values(make_decoder<double, Mem>()->parameters());
  // v_j = 0.3^2 + 0.5^2 s_j^2 + 0.6^2 |grad s|_j^2 with decoded pixels s ~
  // 1-3 (the brightness and slope terms dominate on most pixels: their
  // gradients matter), kernel sd 1.2 source pixels (radius 4 on the 10 x 10
  // grid: the border truncation is exercised).
  lensing::DecoderError const err{0.3, 0.5, 1.2, 0.6};
  ErrCase<Space, Mem> const c(w, 0.0, err);
  Space space;
  REQUIRE(c.post->lens_posterior().likelihood().structured_error());
  // 1. The value: changes between two (lens, z, amp) equal those of log N(d;
  //    L s, C + L K V(s) K^T L^T) computed densely (error model as the white
  //    test: 400 x 400 Cholesky, ~1e-12 relative of O(1e3) log-densities).
  check_value_against_dense(c, space);

  // 2. The full gradient against central differences (error model as the
  //    white test: 1e-6 of the largest component).  The latent and flux-scale
  //    components include d log L / d v through v(s) = tau^2 + kappa^2 s^2,
  //    the lens components the log det A' term with M = K S A'^-1 S K.
  auto const q = c.point();
  auto const [v, scale] = check_gradient_against_central_differences(c);

  // 3. kappa = 0 and kernel_sigma = 0 is the white model: value and gradient
  //    of DecoderError{tau, 0, 0} equal the tau constructor's (the same
  //    algebra rescaled: A' = tau^2 A; rounding ~1e-12 relative).
  ErrCase<Space, Mem> const white(w, 0.7), white_s(w, 0.0, lensing::DecoderError{0.7, 0, 0});
  std::vector<double> gw, gs;
  double const vw = white.eval(q, &gw), vs = white_s.eval(q, &gs);
  CHECK(vs == doctest::Approx(vw).epsilon(1e-11));
  for (std::size_t i = 0; i < q.size(); ++i) {
    INFO(c.post->free_names()[i]);
    CHECK(std::abs(gs[i] - gw[i]) <= 1e-9 * scale);
  }

  // 4. A clone evaluates the same density; bad arguments.
  lensing::View1D<double, Kokkos::HostSpace> qv("q", q.size()), gv("g", q.size());
  for (std::size_t i = 0; i < q.size(); ++i)
    qv(i) = q[i];
  auto const cl = c.post->clone();
  CHECK(cl.structured_error());
  CHECK(cl.error_model().kappa == 0.5);
  CHECK(cl.value_and_gradient(space, qv, gv) == doctest::Approx(v).epsilon(1e-12));
  using EPost = typename ErrCase<Space, Mem>::Post;
  lensing::GaussianLikelihood<Model<double>, Mem, typename ErrCase<Space, Mem>::Psf> gl(c.obs, c.data, c.noise, c.mask);
  auto const amp = lensing::Prior<double>::log_uniform(0.5, 20);
  CHECK_THROWS_AS(EPost(gl, lens_table(), c.dec, amp, *c.inv, lensing::DecoderError{0.0, 0.5, 1.0}),
                  std::invalid_argument);
  CHECK_THROWS_AS(EPost(gl, lens_table(), c.dec, amp, *c.inv, lensing::DecoderError{0.3, -0.1, 1.0}),
                  std::invalid_argument);
  CHECK_THROWS_AS(EPost(gl, lens_table(), c.dec, amp, *c.inv, lensing::DecoderError{0.3, 0.5, -1.0}),
                  std::invalid_argument);
  CHECK_THROWS_AS(EPost(gl, lens_table(), c.dec, amp, *c.inv, lensing::DecoderError{0.3, 0.5, 1.0, -0.2}),
                  std::invalid_argument);
}
