#ifndef LENSING_NN_UNET_HPP
#define LENSING_NN_UNET_HPP

/// \file
/// A noise-conditioned U-Net score network s(x, sigma) ~ grad_x log p_sigma(x)
/// for images (Ronneberger, Fischer & Brox 2015 for the U-Net; Song & Ermon
/// 2019/2020 for the noise conditioning), as a Layer (layer.hpp) so that
/// Sequential, fit() (fit.hpp), the weight files (serialize.hpp),
/// DenoisingScoreMatchingLoss and dsm_perturb (score_matching.hpp) and
/// NetworkScore (sample/score.hpp) take it unchanged.
///
/// Usage sketch (float, 32 x 32 single-channel images):
/// \code
///   using Mem = Kokkos::HostSpace;
///   nn::UNetOptions o;                       // channels 1, 32 x 32, base 16, 2 levels
///   auto net = nn::make_sequential(nn::ScoreUNet<float, Mem>(o));
///   net.initialize(seed);
///   // training pairs (N, 32*32 + 1, 1, 1) = (x + sigma z, log sigma), labels (z, sigma):
///   nn::dsm_perturb(clean, nn::geometric_sigmas(1.0, 0.01, 10), seed, inputs, labels);
///   nn::fit(space, net, adam, nn::DenoisingScoreMatchingLoss{}, source, options);
///   // sampling: the prior score of AnnealedLangevin / PosteriorScore
///   NetworkScore<decltype(net)> prior(net, chains, 32 * 32);
/// \endcode
///
/// Input and output.  The input is the layout of dsm_perturb and NetworkScore:
/// (N, C H W + 1, 1, 1), per sample the image x (C, H, W) flattened
/// (row-major) then t = log sigma.  The output is the score (N, C, H, W).
///
/// Architecture (L = levels, c_l = base_channels 2^l):
///   x' = c_in(sigma) x,  c_in = 1 / sqrt(sigma_data^2 + sigma^2)
///     (input preconditioning, Karras et al. 2022: unit-variance input at
///     every noise level for data of scale sigma_data);
///   encoder l = 0..L-1: h_l = Block(c_{l-1} -> c_l) at H/2^l (c_{-1} = C),
///     kept as skip l, then 2x2 average pooling;
///   middle: Block(c_{L-1} -> c_L) at H/2^L;
///   decoder l = L-1..0: u = ConvTranspose2D(c_{l+1} -> c_l, k 2, s 2),
///     the channel concatenation [u, h_l] (2 c_l channels), Block(2 c_l -> c_l);
///   r = Conv2D(c_0 -> C, 3 x 3, pad 1);  s = r / sigma.
/// Block(a -> b): p = Conv3x3(a -> b) + e(sigma), h = SiLU(p),
///   q = Conv3x3(b -> b), out = SiLU(q), where e(sigma) (b values, one per
///   channel, added to every pixel of the channel) is a learned linear map of
///   fixed Fourier features of t = log sigma:
///   phi_{2j}(t) = sin(w_j t), phi_{2j+1}(t) = cos(w_j t), w_j = (pi / 8) 2^j,
///   j < frequencies; e_c = beta_c + sum_k E_{c,k} phi_k(t).
/// Sigma conditioning: two mechanisms, documented choice.  (1) The output is
/// divided by sigma (Song & Ermon 2020, "Improved techniques", technique 3):
/// since the DSM target is -z / sigma, the network body regresses the
/// unit-variance -z at every level, so one set of weights fits all levels
/// and the loss sigma^2 ||s + z / sigma||^2 = ||r + z||^2 is balanced.
/// (2) The per-channel Fourier-feature embedding in every block (the usual
/// time embedding of diffusion U-Nets) lets the body change with sigma (it
/// must: at small sigma the score is the local denoising direction, at large
/// sigma a global pull toward the data).
///
/// Parameters, flat, in this order: each Block of the encoder (l = 0..L-1),
/// the middle Block, then per decoder level l = L-1..0 the transposed
/// convolution and the Block, then the output convolution.  A Block holds its
/// first convolution's (W, b), its second's, then E (b, 2 frequencies)
/// row-major and beta (b).  No state.
///
/// Backward: by hand, composing the layers' backwards (conv, transposed conv,
/// pooling); the plumbing of this file is the SiLU-with-embedding of each
/// block, the split of the concatenation's gradient between the transposed
/// convolution and the skip (whose gradient adds to the pooling path's), and
/// the gradient with respect to t = log sigma through c_in, every embedding
/// and the output's 1/sigma.  Checked against central differences
/// (tests/nn/test_unet.cpp).
///
/// Kernels: the convolutions of conv2d.hpp (host: im2col + GEMM with the
/// batch split over threads); the glue kernels run over (sample, channel)
/// planes.  The layer keeps buffers at the largest batch seen (batch_slice).

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/conv_transpose2d.hpp>
#include <lensing/nn/layer.hpp>
#include <lensing/nn/pooling.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace lensing {
namespace nn {

/// Shape and width of a ScoreUNet.
struct UNetOptions {
  int channels = 1;         ///< image channels C
  int height = 32;          ///< image height H (divisible by 2^levels)
  int width = 32;           ///< image width W (divisible by 2^levels)
  int base_channels = 16;   ///< c_0; level l has base_channels 2^l
  int levels = 2;           ///< number of down-samplings L >= 1
  int frequencies = 4;      ///< Fourier frequencies of the sigma embedding (2 features each)
  double sigma_data = 1.0;  ///< data scale of the input preconditioning c_in

  void check(char const* where) const {
    check_count(channels, 1, where, "channels");
    check_count(levels, 1, where, "levels");
    check_count(base_channels, 1, where, "base_channels");
    check_count(frequencies, 1, where, "frequencies");
    check_positive(sigma_data, where, "sigma_data");
    check_argument(levels <= 8, where, "levels must be <= 8");
    int const f = 1 << levels;
    check_argument(height >= f && width >= f && height % f == 0 && width % f == 0, where,
                   "height and width must be positive multiples of 2^levels = " + std::to_string(f));
  }
};

namespace detail {
/// Fourier feature k of t and its derivative (see unet.hpp).
KOKKOS_INLINE_FUNCTION double unet_feature(int k, double t, double& dfdt) {
  double const w = 0.39269908169872414 * double(1 << (k / 2));  // (pi / 8) 2^j
  double const s = lensing::math::sin(w * t), c = lensing::math::cos(w * t);
  if (k % 2 == 0) {
    dfdt = w * c;
    return s;
  }
  dfdt = -w * s;
  return c;
}
KOKKOS_INLINE_FUNCTION double unet_sigmoid(double p) {
  return p >= 0 ? 1 / (1 + lensing::math::exp(-p)) : lensing::math::exp(p) / (1 + lensing::math::exp(p));
}
}  // namespace detail

/// Noise-conditioned U-Net score network; see the file comment for the
/// architecture, input layout and parameter order.  Models the Layer
/// archetype: wrap it in a Sequential (make_sequential(ScoreUNet(o))) for
/// fit(), the weight files and NetworkScore.
template <class Scalar, class MemorySpace>
class ScoreUNet : public LayerBase<Scalar, MemorySpace> {
  using base = LayerBase<Scalar, MemorySpace>;

 public:
  using typename base::tensor_type;
  using typename base::vector_type;
  using conv_type = Conv2D<Scalar, MemorySpace>;
  using up_type = ConvTranspose2D<Scalar, MemorySpace>;

  explicit ScoreUNet(UNetOptions const& o) : o_(o), pool_(2) {
    o.check("lensing::nn::ScoreUNet");
    int const L = o.levels, F = 2 * o.frequencies;
    long off = 0;
    auto add_block = [&](int cin, int cout, int level) {
      Block b{conv_type(cin, cout, 3, 1, 1), conv_type(cout, cout, 3, 1, 1), cin, cout, level};
      b.off_a = off;
      off += b.a.num_params();
      b.off_b = off;
      off += b.b.num_params();
      b.off_e = off;
      off += long(cout) * F + cout;
      return b;
    };
    for (int l = 0; l < L; ++l)
      enc_.push_back(add_block(l == 0 ? o.channels : chan(l - 1), chan(l), l));
    mid_ = add_block(chan(L - 1), chan(L), L);
    // Decoder in parameter order (l = L-1..0), then stored indexed by level.
    for (int l = L - 1; l >= 0; --l) {
      Up u{up_type(chan(l + 1), chan(l), 2, 2), off};
      off += u.t.num_params();
      up_.insert(up_.begin(), u);
      dec_.insert(dec_.begin(), add_block(2 * chan(l), chan(l), l));
    }
    out_off_ = off;
    off += out_.num_params();
    this->params_ = vector_type("lensing::nn::ScoreUNet::params", off);
    bind_all();
  }

  UNetOptions const& options() const { return o_; }
  /// Values per sample of the image, C H W.
  long image_size() const { return long(o_.channels) * o_.height * o_.width; }

  Shape4 output_shape(Shape4 const& in) const {
    char const* where = "lensing::nn::ScoreUNet";
    check_valid_shape(in, where);
    check_argument(long(in.c) == image_size() + 1 && in.h == 1 && in.w == 1, where,
                   "input " + in.str() + " must be (N, C*H*W + 1, 1, 1) = (N, " + std::to_string(image_size() + 1) +
                       ", 1, 1): the image then log sigma");
    return Shape4{in.n, o_.channels, o_.height, o_.width};
  }

  void bind_parameters(vector_type const& p) {
    check_argument(
        long(p.extent(0)) == this->num_params(), "lensing::nn::ScoreUNet::bind_parameters",
        "vector has " + std::to_string(p.extent(0)) + " elements, expected " + std::to_string(this->num_params()));
    Kokkos::deep_copy(p, this->params_);
    this->params_ = p;
    bind_all();
  }

  /// Convolutions He-normal (child seeds in parameter order), embeddings
  /// N(0, 1/F) weights and zero offsets, biases zero.
  void initialize(std::uint64_t seed) {
    std::uint64_t child = 0;
    int const F = 2 * o_.frequencies;
    auto init_block = [&](Block& b) {
      b.a.initialize(child_seed(seed, child++));
      b.b.initialize(child_seed(seed, child++));
      vector_type e = slice(b.off_e, long(b.cout) * F);
      nn::initialize(e, Init::he_normal, 2 * F, b.cout, child_seed(seed, child++));
      Kokkos::deep_copy(slice(b.off_e + long(b.cout) * F, b.cout), Scalar(0));
    };
    for (auto& b : enc_)
      init_block(b);
    init_block(mid_);
    for (int l = o_.levels - 1; l >= 0; --l) {
      up_[std::size_t(l)].t.initialize(child_seed(seed, child++));
      init_block(dec_[std::size_t(l)]);
    }
    out_.initialize(child_seed(seed, child++));
  }

  void prepare(Shape4 const& in) {
    Shape4 const os = output_shape(in);
    if (prepared_ && in == in_) return;
    char const* where = "lensing::nn::ScoreUNet";
    int const n = in.n;
    xs_ = detail::batch_slice(xs_s_, os, where, "xs");
    dxs_ = detail::batch_slice(dxs_s_, os, where, "dxs");
    t_ = detail::batch_slice(t_s_, Shape4{n, 1, 1, 1}, where, "t");
    dt_ = detail::batch_slice(dt_s_, Shape4{n, 1, 1, 1}, where, "dt");
    for (int l = 0; l < o_.levels; ++l) {
      int const h = o_.height >> l, w = o_.width >> l;
      prepare_block(enc_[std::size_t(l)], n, h, w);
      Pool& p = pools_.size() > std::size_t(l) ? pools_[std::size_t(l)] : pools_.emplace_back();
      Shape4 const ps{n, chan(l), h / 2, w / 2};
      p.y = detail::batch_slice(p.y_s, ps, where, "pool");
      p.dy = detail::batch_slice(p.dy_s, ps, where, "dpool");
      p.dx = detail::batch_slice(p.dx_s, Shape4{n, chan(l), h, w}, where, "dpool_in");
      Block& d = dec_[std::size_t(l)];
      prepare_block(d, n, h, w);
      Up& u = up_[std::size_t(l)];
      Shape4 const us{n, chan(l), h, w}, cs{n, 2 * chan(l), h, w};
      u.y = detail::batch_slice(u.y_s, us, where, "up");
      u.dy = detail::batch_slice(u.dy_s, us, where, "dup");
      u.dskip = detail::batch_slice(u.dskip_s, us, where, "dskip");
      u.cat = detail::batch_slice(u.cat_s, cs, where, "cat");
      u.dcat = detail::batch_slice(u.dcat_s, cs, where, "dcat");
    }
    prepare_block(mid_, n, o_.height >> o_.levels, o_.width >> o_.levels);
    raw_ = detail::batch_slice(raw_s_, os, where, "raw");
    draw_ = detail::batch_slice(draw_s_, os, where, "draw");
    in_ = in;
    prepared_ = true;
  }

  /// y = s(x, sigma) for x (N, C H W + 1, 1, 1); see the file comment.
  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::ScoreUNet::forward: the tensors are not accessible from this execution space");
    char const* where = "lensing::nn::ScoreUNet::forward";
    Shape4 const in = shape_of(x);
    check_shape(y, output_shape(in), where, "y");
    prepare(in);
    input_kernel(space, x);
    tensor_type cur = xs_;
    for (int l = 0; l < o_.levels; ++l) {
      Block& b = enc_[std::size_t(l)];
      block_forward(space, b, cur);
      pool_.forward(space, b.hb, pools_[std::size_t(l)].y);
      cur = pools_[std::size_t(l)].y;
    }
    block_forward(space, mid_, cur);
    cur = mid_.hb;
    for (int l = o_.levels - 1; l >= 0; --l) {
      Up& u = up_[std::size_t(l)];
      u.t.forward(space, cur, u.y);
      join_samples(space, u.y, enc_[std::size_t(l)].hb, u.cat);
      Block& d = dec_[std::size_t(l)];
      block_forward(space, d, u.cat);
      cur = d.hb;
    }
    out_.forward(space, cur, raw_);
    // s = r / sigma.
    long const per = image_size();
    auto const t = t_;
    Scalar const* rp = raw_.data();
    Scalar* yp = y.data();
    Kokkos::parallel_for(
        "lensing::nn::ScoreUNet::output", Kokkos::RangePolicy<ExecutionSpace>(space, 0, long(in.n) * per),
        KOKKOS_LAMBDA(long i) {
          long const n = i / per;
          yp[i] = Scalar(double(rp[i]) * lensing::math::exp(-double(t(n, 0, 0, 0))));
        });
  }

  /// dx (when given) and dparams for dy = dL/dy of the last forward (same x, y).
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::ScoreUNet::backward: the tensors are not accessible from this execution space");
    char const* where = "lensing::nn::ScoreUNet::backward";
    check_argument(prepared_, where, "call forward first");
    check_shape(x, in_, where, "x");
    Shape4 const os = output_shape(in_);
    check_shape(y, os, where, "y");
    check_shape(dy, os, where, "dy");
    if (dx.data() != nullptr) check_shape(dx, in_, where, "dx");
    check_argument(long(dparams.extent(0)) == this->num_params(), where,
                   "dparams has " + std::to_string(dparams.extent(0)) + " elements, expected " +
                       std::to_string(this->num_params()));
    bool const want_dx = dx.data() != nullptr;
    long const per = image_size();
    int const n = in_.n;
    // dr = dy / sigma; dt = -sum dy * y (d(r e^{-t})/dt = -y).
    {
      auto const t = t_;
      auto const dt = dt_;
      Scalar const* dyp = dy.data();
      Scalar const* yp = y.data();
      Scalar* drp = draw_.data();
      Kokkos::parallel_for(
          "lensing::nn::ScoreUNet::output_backward", Kokkos::RangePolicy<ExecutionSpace>(space, 0, n),
          KOKKOS_LAMBDA(int s) {
            double const inv = lensing::math::exp(-double(t(s, 0, 0, 0)));
            double acc = 0;
            for (long j = 0; j < per; ++j) {
              long const i = long(s) * per + j;
              drp[i] = Scalar(double(dyp[i]) * inv);
              acc -= double(dyp[i]) * double(yp[i]);
            }
            dt(s, 0, 0, 0) = Scalar(acc);
          });
    }
    tensor_type cur = dec_[0].hb;
    out_.backward(space, cur, raw_, draw_, dec_[0].dhb, slice(dparams, out_off_, out_.num_params()));
    for (int l = 0; l < o_.levels; ++l) {
      Up& u = up_[std::size_t(l)];
      Block& d = dec_[std::size_t(l)];
      block_backward(space, d, u.cat, u.dcat, dparams);
      split_samples(space, u.dcat, u.dy, u.dskip);
      bool const last = l == o_.levels - 1;
      tensor_type const uin = last ? mid_.hb : dec_[std::size_t(l + 1)].hb;
      tensor_type const duin = last ? mid_.dhb : dec_[std::size_t(l + 1)].dhb;
      u.t.backward(space, uin, u.y, u.dy, duin, slice(dparams, u.off, u.t.num_params()));
    }
    block_backward(space, mid_, pools_[std::size_t(o_.levels - 1)].y, pools_[std::size_t(o_.levels - 1)].dy, dparams);
    for (int l = o_.levels - 1; l >= 0; --l) {
      Block& b = enc_[std::size_t(l)];
      Pool& p = pools_[std::size_t(l)];
      pool_.backward(space, b.hb, p.y, p.dy, p.dx, vector_type());
      // The skip's gradient adds to the pooling path's.
      add(space, p.dx, up_[std::size_t(l)].dskip, b.dhb);
      tensor_type const bin = l == 0 ? xs_ : pools_[std::size_t(l - 1)].y;
      tensor_type const dbin = l == 0 ? (want_dx ? dxs_ : tensor_type()) : pools_[std::size_t(l - 1)].dy;
      block_backward(space, b, bin, dbin, dparams);
    }
    if (want_dx) input_backward(space, x, dx);
  }

 public:
  // Implementation, public for nvcc (extended lambdas need a public enclosing function).
  struct Block {
    conv_type a, b;
    int cin = 0, cout = 0, level = 0;
    long off_a = 0, off_b = 0, off_e = 0;
    tensor_type pa_s, ha_s, pb_s, hb_s, dpa_s, dha_s, dpb_s, dhb_s, e_s, se_s;
    tensor_type pa, ha, pb, hb, dpa, dha, dpb, dhb, e, se;
  };
  struct Up {
    up_type t;
    long off = 0;
    tensor_type y_s, dy_s, dskip_s, cat_s, dcat_s;
    tensor_type y, dy, dskip, cat, dcat;
  };
  struct Pool {
    tensor_type y_s, dy_s, dx_s;
    tensor_type y, dy, dx;
  };

  int chan(int l) const { return o_.base_channels << l; }

  vector_type slice(long off, long count) const { return slice(this->params_, off, count); }
  static vector_type slice(vector_type const& v, long off, long count) {
    return vector_type(Kokkos::subview(v, Kokkos::make_pair(off, off + count)));
  }

  void bind_all() {
    auto bind_block = [&](Block& b) {
      b.a.bind_parameters(slice(b.off_a, b.a.num_params()));
      b.b.bind_parameters(slice(b.off_b, b.b.num_params()));
    };
    for (auto& b : enc_)
      bind_block(b);
    bind_block(mid_);
    for (auto& b : dec_)
      bind_block(b);
    for (auto& u : up_)
      u.t.bind_parameters(slice(u.off, u.t.num_params()));
    out_.bind_parameters(slice(out_off_, out_.num_params()));
  }

  void prepare_block(Block& b, int n, int h, int w) {
    char const* where = "lensing::nn::ScoreUNet";
    Shape4 const s{n, b.cout, h, w}, e{n, b.cout, 1, 1};
    b.pa = detail::batch_slice(b.pa_s, s, where, "pa");
    b.ha = detail::batch_slice(b.ha_s, s, where, "ha");
    b.pb = detail::batch_slice(b.pb_s, s, where, "pb");
    b.hb = detail::batch_slice(b.hb_s, s, where, "hb");
    b.dpa = detail::batch_slice(b.dpa_s, s, where, "dpa");
    b.dha = detail::batch_slice(b.dha_s, s, where, "dha");
    b.dpb = detail::batch_slice(b.dpb_s, s, where, "dpb");
    b.dhb = detail::batch_slice(b.dhb_s, s, where, "dhb");
    b.e = detail::batch_slice(b.e_s, e, where, "e");
    b.se = detail::batch_slice(b.se_s, e, where, "se");
  }

  // x' = c_in(t) x, t = log sigma.
  template <class ExecutionSpace>
  void input_kernel(ExecutionSpace const& space, tensor_type const& x) {
    long const per = image_size();
    double const sd2 = o_.sigma_data * o_.sigma_data;
    auto const t = t_;
    Scalar const* xp = x.data();
    Scalar* xsp = xs_.data();
    Kokkos::parallel_for(
        "lensing::nn::ScoreUNet::input", Kokkos::RangePolicy<ExecutionSpace>(space, 0, in_.n), KOKKOS_LAMBDA(int s) {
          double const ts = double(xp[long(s) * (per + 1) + per]);
          double const c = 1 / lensing::math::sqrt(sd2 + lensing::math::exp(2 * ts));
          t(s, 0, 0, 0) = Scalar(ts);
          for (long j = 0; j < per; ++j)
            xsp[long(s) * per + j] = Scalar(c * double(xp[long(s) * (per + 1) + j]));
        });
  }

  // dx = c_in dx', dt += sum dx' x dc_in/dt, dc_in/dt = -c_in sigma^2 / (sigma_data^2 + sigma^2).
  template <class ExecutionSpace>
  void input_backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& dx) {
    long const per = image_size();
    double const sd2 = o_.sigma_data * o_.sigma_data;
    auto const dt = dt_;
    Scalar const* xp = x.data();
    Scalar const* dxsp = dxs_.data();
    Scalar* dxp = dx.data();
    Kokkos::parallel_for(
        "lensing::nn::ScoreUNet::input_backward", Kokkos::RangePolicy<ExecutionSpace>(space, 0, in_.n),
        KOKKOS_LAMBDA(int s) {
          double const ts = double(xp[long(s) * (per + 1) + per]);
          double const s2 = lensing::math::exp(2 * ts);
          double const c = 1 / lensing::math::sqrt(sd2 + s2), dc = -c * s2 / (sd2 + s2);
          double acc = double(dt(s, 0, 0, 0));
          for (long j = 0; j < per; ++j) {
            double const g = double(dxsp[long(s) * per + j]);
            dxp[long(s) * (per + 1) + j] = Scalar(c * g);
            acc += g * dc * double(xp[long(s) * (per + 1) + j]);
          }
          dxp[long(s) * (per + 1) + per] = Scalar(acc);
        });
  }

  template <class ExecutionSpace>
  void block_forward(ExecutionSpace const& space, Block& b, tensor_type const& in) {
    b.a.forward(space, in, b.pa);
    int const F = 2 * o_.frequencies, cout = b.cout, n = in_.n;
    long const hw = long(b.pa.extent(2)) * b.pa.extent(3);
    vector_type const ep = slice(b.off_e, long(cout) * F + cout);
    auto const t = t_;
    auto const e = b.e;
    Kokkos::parallel_for(
        "lensing::nn::ScoreUNet::embed", Kokkos::RangePolicy<ExecutionSpace>(space, 0, n * cout), KOKKOS_LAMBDA(int i) {
          int const s = i / cout, c = i % cout;
          double const ts = double(t(s, 0, 0, 0));
          double v = double(ep(long(cout) * F + c)), dummy = 0;
          for (int k = 0; k < F; ++k)
            v += double(ep(long(c) * F + k)) * detail::unet_feature(k, ts, dummy);
          e(s, c, 0, 0) = Scalar(v);
        });
    silu_planes(space, b.pa, b.ha, b.e, long(n) * cout, hw);
    b.b.forward(space, b.ha, b.pb);
    silu_planes(space, b.pb, b.hb, tensor_type(), long(n) * cout, hw);
  }

  // p += e (per plane, when e is given), h = SiLU(p).
  template <class ExecutionSpace>
  static void silu_planes(ExecutionSpace const& space, tensor_type const& p, tensor_type const& h, tensor_type const& e,
                          long planes, long hw) {
    Scalar* pp = p.data();
    Scalar* hp = h.data();
    Scalar const* epp = e.data();
    Kokkos::parallel_for(
        "lensing::nn::ScoreUNet::silu", Kokkos::RangePolicy<ExecutionSpace>(space, 0, planes), KOKKOS_LAMBDA(long q) {
          Scalar const add = epp != nullptr ? epp[q] : Scalar(0);
          for (long j = 0; j < hw; ++j) {
            long const i = q * hw + j;
            double const v = double(pp[i] + add);
            pp[i] = Scalar(v);
            hp[i] = Scalar(v * detail::unet_sigmoid(v));
          }
        });
  }

  // dp = dh SiLU'(p); with se given, se = sum over the plane of dp.
  template <class ExecutionSpace>
  static void silu_backward(ExecutionSpace const& space, tensor_type const& p, tensor_type const& dh,
                            tensor_type const& dp, tensor_type const& se, long planes, long hw) {
    Scalar const* pp = p.data();
    Scalar const* dhp = dh.data();
    Scalar* dpp = dp.data();
    Scalar* sep = se.data();
    Kokkos::parallel_for(
        "lensing::nn::ScoreUNet::silu_backward", Kokkos::RangePolicy<ExecutionSpace>(space, 0, planes),
        KOKKOS_LAMBDA(long q) {
          double acc = 0;
          for (long j = 0; j < hw; ++j) {
            long const i = q * hw + j;
            double const v = double(pp[i]), sg = detail::unet_sigmoid(v);
            double const g = double(dhp[i]) * sg * (1 + v * (1 - sg));
            dpp[i] = Scalar(g);
            acc += g;
          }
          if (sep != nullptr) sep[q] = Scalar(acc);
        });
  }

  // From b.dhb: the block's parameter gradients into dparams, dt accumulated,
  // din (when given) = dL/d(block input).
  template <class ExecutionSpace>
  void block_backward(ExecutionSpace const& space, Block& b, tensor_type const& in, tensor_type const& din,
                      vector_type const& dparams) {
    int const F = 2 * o_.frequencies, cout = b.cout, n = in_.n;
    long const hw = long(b.pa.extent(2)) * b.pa.extent(3);
    silu_backward(space, b.pb, b.dhb, b.dpb, tensor_type(), long(n) * cout, hw);
    b.b.backward(space, b.ha, b.pb, b.dpb, b.dha, slice(dparams, b.off_b, b.b.num_params()));
    silu_backward(space, b.pa, b.dha, b.dpa, b.se, long(n) * cout, hw);
    // Embedding: dE[c,k] = sum_s se[s,c] phi_k(t_s), dbeta[c] = sum_s se[s,c];
    // dt_s += sum_c se[s,c] sum_k E[c,k] phi_k'(t_s).
    vector_type const ep = slice(b.off_e, long(cout) * F + cout);
    vector_type const dep = slice(dparams, b.off_e, long(cout) * F + cout);
    auto const t = t_;
    auto const dt = dt_;
    auto const se = b.se;
    Kokkos::parallel_for(
        "lensing::nn::ScoreUNet::embed_backward_params", Kokkos::RangePolicy<ExecutionSpace>(space, 0, cout),
        KOKKOS_LAMBDA(int c) {
          double db = 0;
          for (int k = 0; k < F; ++k) {
            double acc = 0, dummy = 0;
            for (int s = 0; s < n; ++s)
              acc += double(se(s, c, 0, 0)) * detail::unet_feature(k, double(t(s, 0, 0, 0)), dummy);
            dep(long(c) * F + k) = Scalar(acc);
          }
          for (int s = 0; s < n; ++s)
            db += double(se(s, c, 0, 0));
          dep(long(cout) * F + c) = Scalar(db);
        });
    Kokkos::parallel_for(
        "lensing::nn::ScoreUNet::embed_backward_t", Kokkos::RangePolicy<ExecutionSpace>(space, 0, n),
        KOKKOS_LAMBDA(int s) {
          double const ts = double(t(s, 0, 0, 0));
          double acc = 0;
          for (int k = 0; k < F; ++k) {
            double d = 0;
            detail::unet_feature(k, ts, d);
            double w = 0;
            for (int c = 0; c < cout; ++c)
              w += double(se(s, c, 0, 0)) * double(ep(long(c) * F + k));
            acc += w * d;
          }
          dt(s, 0, 0, 0) += Scalar(acc);
        });
    b.a.backward(space, in, b.pa, b.dpa, din, slice(dparams, b.off_a, b.a.num_params()));
  }

  template <class ExecutionSpace>
  static void add(ExecutionSpace const& space, tensor_type const& a, tensor_type const& b, tensor_type const& y) {
    Scalar const* ap = a.data();
    Scalar const* bp = b.data();
    Scalar* yp = y.data();
    Kokkos::parallel_for(
        "lensing::nn::ScoreUNet::add", Kokkos::RangePolicy<ExecutionSpace>(space, 0, long(y.size())),
        KOKKOS_LAMBDA(long i) { yp[i] = ap[i] + bp[i]; });
  }

 private:
  UNetOptions o_;
  AvgPool2D<Scalar, MemorySpace> pool_;
  std::vector<Block> enc_, dec_;
  Block mid_{conv_type(1, 1, 1), conv_type(1, 1, 1)};
  std::vector<Up> up_;
  std::vector<Pool> pools_;
  conv_type out_{o_.base_channels, o_.channels, 3, 1, 1};
  long out_off_ = 0;
  bool prepared_ = false;
  Shape4 in_;
  tensor_type xs_s_, dxs_s_, t_s_, dt_s_, raw_s_, draw_s_;
  tensor_type xs_, dxs_, t_, dt_, raw_, draw_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_UNET_HPP
