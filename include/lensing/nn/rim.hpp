#ifndef LENSING_NN_RIM_HPP
#define LENSING_NN_RIM_HPP

/// \file
/// A recurrent inference machine (RIM; Putzky & Welling 2017,
/// arXiv:1706.04008) for linear inverse problems d = A s + n with Gaussian
/// noise, as used by Morningstar et al. (2019, arXiv:1901.01359) to
/// reconstruct the source behind a known lens (A = the lensing operator of
/// inversion/lensing_operator.hpp, PSF included): a convolutional network
/// that iterates s_{t+1} = s_t + g_phi(s_t, grad_s log p(d | s_t), h_t),
/// trained by backpropagation through time with hand-derived backward passes.

// Eigen's own threading off, as nn/gemm.hpp does (Kokkos owns the threads;
// the macro must precede the first Eigen include of the translation unit).
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Core>
#include <Eigen/Sparse>

#include <lensing/core/errors.hpp>
#include <lensing/nn/activation.hpp>
#include <lensing/nn/conv2d.hpp>
#include <lensing/nn/conv_gru.hpp>
#include <lensing/nn/layer.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace lensing {
namespace nn {

/// One linear-Gaussian inverse problem for a RIM: data d = A s + n,
/// n ~ N(0, diag(sigma^2)), s the (row-major) pixels of an image of the
/// RIM's size.  The RIM sees the scaled likelihood gradient
///
///   g(s) = c A^T C^-1 (d - A s) = c grad_s log p(d | s),
///   c = N_s / tr(A^T C^-1 A) = 1 / mean_j (A^T C^-1 A)_jj,
///
/// a fixed (s-independent) preconditioner that makes g O(s) whatever the
/// noise level and the pixel units (g(0) ~ s_true where A is well sampled),
/// and its derivative dg/ds = -c A^T C^-1 A (symmetric: the VJP is the same
/// product).  Host, double (Eigen).
struct LinearGaussianProblem {
  Eigen::SparseMatrix<double> a;  ///< A (data pixels x source pixels)
  Eigen::VectorXd data;           ///< d
  Eigen::VectorXd inv_var;        ///< 1 / sigma^2
  double scale = 1;               ///< c

  /// From A, d and sigma (> 0, finite; d finite).  Throws
  /// std::invalid_argument for mismatched sizes, bad values or A = 0.
  static LinearGaussianProblem make(Eigen::SparseMatrix<double> a, Eigen::VectorXd const& d,
                                    Eigen::VectorXd const& sigma) {
    constexpr char const* where = "lensing::nn::LinearGaussianProblem::make";
    check_argument(a.rows() > 0 && a.cols() > 0, where, "empty operator");
    check_argument(d.size() == a.rows() && sigma.size() == a.rows(), where,
                   "data and sigma need " + std::to_string(a.rows()) + " values (the rows of A), got " +
                       std::to_string(d.size()) + " and " + std::to_string(sigma.size()));
    LinearGaussianProblem p;
    p.inv_var.resize(sigma.size());
    for (Eigen::Index i = 0; i < sigma.size(); ++i) {
      check_argument(std::isfinite(d[i]), where, "data must be finite");
      check_argument(std::isfinite(sigma[i]) && sigma[i] > 0, where, "sigma must be finite and > 0");
      p.inv_var[i] = 1 / (sigma[i] * sigma[i]);
    }
    double tr = 0;  // tr(A^T W A) = sum_ij w_i A_ij^2
    for (Eigen::Index k = 0; k < a.outerSize(); ++k)
      for (Eigen::SparseMatrix<double>::InnerIterator it(a, k); it; ++it)
        tr += p.inv_var[it.row()] * it.value() * it.value();
    check_argument(tr > 0 && std::isfinite(tr), where, "A^T C^-1 A has no positive diagonal (A = 0?)");
    p.scale = double(a.cols()) / tr;
    p.a = std::move(a);
    p.data = d;
    return p;
  }
  long num_source() const { return long(a.cols()); }
  /// g(s) = c A^T C^-1 (d - A s).
  Eigen::VectorXd gradient(Eigen::VectorXd const& s) const {
    Eigen::VectorXd const r = inv_var.cwiseProduct(data - a * s);
    return scale * (a.transpose() * r);
  }
  /// (dg/ds)^T v = -c A^T C^-1 A v.
  Eigen::VectorXd gradient_vjp(Eigen::VectorXd const& v) const {
    Eigen::VectorXd const av = inv_var.cwiseProduct(a * v);
    return -scale * (a.transpose() * av);
  }
  /// chi^2 = (d - A s)^T C^-1 (d - A s).
  double chi2(Eigen::VectorXd const& s) const {
    Eigen::VectorXd const r = data - a * s;
    return r.dot(inv_var.cwiseProduct(r));
  }
};

/// Architecture of a RIM (RIM below).
struct RimOptions {
  int steps = 8;      ///< T, the number of updates
  int features = 16;  ///< F, channels of the input convolution
  int hidden = 16;    ///< C_h, channels of the ConvGRU state
  int kernel = 3;     ///< k (odd) of every convolution ("same" padding)
};

/// Recurrent inference machine for images of ny x nx pixels (Putzky &
/// Welling 2017; Morningstar et al. 2019).  From s_0 = 0, h_0 = 0, for
/// t = 0 .. T-1:
///
///   g_t     = c A^T C^-1 (d - A s_t)                    (LinearGaussianProblem)
///   e_t     = tanh(W_in * [s_t, g_t] + b_in)            (F channels)
///   h_{t+1} = ConvGRU([e_t, h_t])                       (C_h channels)
///   s_{t+1} = s_t + W_out * h_{t+1} + b_out             (1 channel)
///
/// all convolutions k x k "same".  Loss (per batch of B problems with true
/// images s*):
///
///   L = sum_{t=1..T} w_t (1 / (B N)) sum_{b, j} (s_t - s*)_{bj}^2,   w_t = 1 / T,
///
/// N = ny nx.  loss_and_gradient backpropagates through time by hand: the
/// adjoint of s_t collects the loss term, the identity path from s_{t+1},
/// the input convolution's channel 0 and, through the likelihood gradient
/// (linear in s), (dg_t/ds_t)^T dg_t = -c A^T C^-1 A dg_t; the adjoint of
/// h_t comes from the ConvGRU's backward (its per-step Cache).
/// Parameters, flat: W_in, b_in, then the ConvGRU's, then W_out, b_out
/// (each in Conv2D's order); for_each_layer visits the three parts, so
/// nn::save_weights / load_weights store them.  The likelihood terms run on
/// the host in double (Eigen); the network on MemorySpace.  Not thread-safe
/// (buffers are members).
template <class Scalar, class MemorySpace>
class RIM {
  using Conv = Conv2D<Scalar, MemorySpace>;
  using GRU = ConvGRU<Scalar, MemorySpace>;

 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;
  using tensor_type = Tensor<Scalar, MemorySpace>;
  using vector_type = ParamVector<Scalar, MemorySpace>;

  RIM(RimOptions const& o, int ny, int nx)
      : opt_(checked(o)),
        ny_(ny),
        nx_(nx),
        in_(2, o.features, Conv2DGeometry{o.kernel, o.kernel, 1, 1, o.kernel / 2, o.kernel / 2, 1, 1}),
        gru_(o.features, o.hidden, o.kernel),
        out_(o.hidden, 1, Conv2DGeometry{o.kernel, o.kernel, 1, 1, o.kernel / 2, o.kernel / 2, 1, 1},
             Init::xavier_normal) {
    check_count(ny, 1, "lensing::nn::RIM", "ny");
    check_count(nx, 1, "lensing::nn::RIM", "nx");
    n_in_ = in_.num_params();
    n_gru_ = gru_.num_params();
    params_ = vector_type("lensing::nn::RIM::params", num_params());
    tmp_ = vector_type("lensing::nn::RIM::tmp", num_params());
    bind();
  }

  RimOptions const& options() const { return opt_; }
  int steps() const { return opt_.steps; }
  int ny() const { return ny_; }
  int nx() const { return nx_; }
  long num_params() const { return n_in_ + n_gru_ + out_.num_params(); }
  vector_type parameters() const { return params_; }
  void initialize(std::uint64_t seed) {
    in_.initialize(child_seed(seed, 0));
    gru_.initialize(child_seed(seed, 1));
    out_.initialize(child_seed(seed, 2));
  }
  /// The three parts (input convolution, ConvGRU, output convolution), for nn::save_weights.
  template <class F>
  void for_each_layer(F&& f) const {
    f(in_);
    f(gru_);
    f(out_);
  }
  template <class F>
  void for_each_layer(F&& f) {
    f(in_);
    f(gru_);
    f(out_);
  }

  /// Run the T steps on `problems` (B of them, each with ny nx source
  /// pixels); estimate(t) (t = 0..T) is then s_t (B, 1, ny, nx), valid
  /// until the next call.
  template <class ExecutionSpace>
  void reconstruct(ExecutionSpace const& space, std::vector<LinearGaussianProblem> const& problems) {
    forward(space, problems);
  }
  tensor_type const& estimate(int t) const {
    check_argument(t >= 0 && t < int(s_.size()), "lensing::nn::RIM::estimate", "no estimate " + std::to_string(t));
    return s_[std::size_t(t)];
  }

  /// The loss L of the T steps on `problems` against `truth` (B, 1, ny, nx),
  /// and its gradient with respect to the parameters (overwritten into
  /// `grad`, num_params() values) by backpropagation through time.
  template <class ExecutionSpace>
  double loss_and_gradient(ExecutionSpace const& space, std::vector<LinearGaussianProblem> const& problems,
                           tensor_type const& truth, vector_type const& grad) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::RIM::loss_and_gradient: the tensors are not accessible from this execution space");
    constexpr char const* where = "lensing::nn::RIM::loss_and_gradient";
    int const b = int(problems.size());
    check_shape(truth, Shape4{b, 1, ny_, nx_}, where, "truth");
    check_argument(long(grad.extent(0)) == num_params(), where,
                   "grad has " + std::to_string(grad.extent(0)) + " values, expected " + std::to_string(num_params()));
    forward(space, problems);
    int const T = opt_.steps, F = opt_.features, C = opt_.hidden;
    long const hw = long(ny_) * nx_, nb = long(b) * hw;
    double const w = 1.0 / (double(T) * double(nb));  // w_t / (B N)
    Kokkos::deep_copy(space, grad, Scalar(0));
    Kokkos::deep_copy(space, dh_, Scalar(0));
    // ds_ = dL/ds_T (loss term only); loss accumulated over the steps.
    double loss = loss_term(space, T, truth, w, false);
    long const nin = n_in_, ngru = n_gru_, np = num_params();
    vector_type const g_in(Kokkos::subview(tmp_, Kokkos::make_pair(0L, nin)));
    vector_type const g_gru(Kokkos::subview(tmp_, Kokkos::make_pair(nin, nin + ngru)));
    vector_type const g_out(Kokkos::subview(tmp_, Kokkos::make_pair(nin + ngru, np)));
    Scalar* gp = grad.data();
    Scalar const* tmpp = tmp_.data();
    for (int t = T - 1; t >= 0; --t) {
      std::size_t const ut = std::size_t(t);
      // s_{t+1} = s_t + out(h_{t+1}): dh_{t+1} = out^T ds_{t+1} + (dh_{t+1} from step t+1).
      out_.backward(space, h_[ut + 1], delta_, ds_, dh_out_, g_out);
      add_into(space, dh_out_, dh_);
      gru_.backward(space, xh_[ut], dh_, dxh_, g_gru, cache_[ut]);
      // Split dxh = [de_t, dh_t]; de_t through tanh.
      Scalar const* dxp = dxh_.data();
      Scalar const* ep = e_[ut].data();
      Scalar* dep = de_.data();
      Scalar* dhp = dh_.data();
      long const cin = F + C;
      Kokkos::parallel_for(
          "lensing::nn::RIM::backward_split",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(b) * cin * hw),
          KOKKOS_LAMBDA(long i) {
            long const n = i / (cin * hw), c = (i / hw) % cin, p = i % hw;
            if (c < F) {
              Scalar const e = ep[(n * F + c) * hw + p];
              dep[(n * F + c) * hw + p] = dxp[i] * (Scalar(1) - e * e);
            } else {
              dhp[(n * C + c - F) * hw + p] = dxp[i];
            }
          });
      in_.backward(space, in_t_[ut], e_[ut], de_, din_, g_in);
      Kokkos::parallel_for(
          "lensing::nn::RIM::accumulate_gradient",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, np),
          KOKKOS_LAMBDA(long i) { gp[i] += tmpp[i]; });
      // ds_t = ds_{t+1} + din[:, 0] + (dg_t/ds_t)^T din[:, 1] (+ the loss term of s_t, t >= 1).
      space.fence();
      auto const hdin = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), din_);
      auto hds = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ds_);
      Eigen::VectorXd v(hw);
      for (int n = 0; n < b; ++n) {
        for (long p = 0; p < hw; ++p)
          v[p] = double(hdin.data()[(long(n) * 2 + 1) * hw + p]);
        Eigen::VectorXd const back = problems[std::size_t(n)].gradient_vjp(v);
        for (long p = 0; p < hw; ++p)
          hds.data()[long(n) * hw + p] += Scalar(double(hdin.data()[long(n) * 2 * hw + p]) + back[p]);
      }
      Kokkos::deep_copy(space, ds_, hds);
      space.fence();  // hds (a host mirror) dies at the end of this iteration
      if (t >= 1) loss += loss_term(space, t, truth, w, true);
    }
    space.fence();
    return loss;
  }

 public:
  // Implementation, public for nvcc (extended lambdas need a public enclosing function).
  static RimOptions const& checked(RimOptions const& o) {
    char const* where = "lensing::nn::RIM";
    check_count(o.steps, 1, where, "steps");
    check_count(o.features, 1, where, "features");
    check_count(o.hidden, 1, where, "hidden");
    check_argument(o.kernel >= 1 && o.kernel % 2 == 1, where, "kernel must be odd and >= 1");
    return o;
  }
  void bind() {
    long const a = n_in_, b = a + n_gru_, c = num_params();
    in_.bind_parameters(vector_type(Kokkos::subview(params_, Kokkos::make_pair(0L, a))));
    gru_.bind_parameters(vector_type(Kokkos::subview(params_, Kokkos::make_pair(a, b))));
    out_.bind_parameters(vector_type(Kokkos::subview(params_, Kokkos::make_pair(b, c))));
  }
  // ds_ (+)= 2 w (s_t - s*) (add: accumulate, else overwrite); returns w sum (s_t - s*)^2.
  template <class ExecutionSpace>
  double loss_term(ExecutionSpace const& space, int t, tensor_type const& truth, double w, bool add) {
    Scalar const* sp = s_[std::size_t(t)].data();
    Scalar const* tp = truth.data();
    Scalar* dsp = ds_.data();
    Scalar const two_w = Scalar(2 * w);
    double sum = 0;
    Kokkos::parallel_reduce(
        "lensing::nn::RIM::loss",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(ds_.size())),
        KOKKOS_LAMBDA(long i, double& acc) {
          Scalar const r = sp[i] - tp[i];
          dsp[i] = (add ? dsp[i] : Scalar(0)) + two_w * r;
          acc += double(r) * double(r);
        },
        sum);
    return w * sum;
  }
  template <class ExecutionSpace>
  static void add_into(ExecutionSpace const& space, tensor_type const& from, tensor_type const& to) {
    Scalar const* f = from.data();
    Scalar* o = to.data();
    Kokkos::parallel_for(
        "lensing::nn::RIM::add",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(to.size())),
        KOKKOS_LAMBDA(long i) { o[i] += f[i]; });
  }

  // Buffers for a batch of b problems (reallocated when b changes).
  void allocate(int b) {
    if (b == batch_) return;
    int const T = opt_.steps, F = opt_.features, C = opt_.hidden;
    batch_ = b;
    s_.assign(std::size_t(T + 1), tensor_type());
    h_.assign(std::size_t(T + 1), tensor_type());
    in_t_.assign(std::size_t(T), tensor_type());
    e_.assign(std::size_t(T), tensor_type());
    xh_.assign(std::size_t(T), tensor_type());
    cache_.assign(std::size_t(T), typename GRU::Cache());
    for (int t = 0; t <= T; ++t) {
      s_[std::size_t(t)] = tensor_type("lensing::nn::RIM::s", b, 1, ny_, nx_);
      h_[std::size_t(t)] = tensor_type("lensing::nn::RIM::h", b, C, ny_, nx_);
    }
    for (int t = 0; t < T; ++t) {
      in_t_[std::size_t(t)] = tensor_type("lensing::nn::RIM::in", b, 2, ny_, nx_);
      e_[std::size_t(t)] = tensor_type("lensing::nn::RIM::e", b, F, ny_, nx_);
      xh_[std::size_t(t)] = tensor_type("lensing::nn::RIM::xh", b, F + C, ny_, nx_);
      cache_[std::size_t(t)] = gru_.make_cache(Shape4{b, F + C, ny_, nx_});
    }
    delta_ = tensor_type("lensing::nn::RIM::delta", b, 1, ny_, nx_);
    ds_ = tensor_type("lensing::nn::RIM::ds", b, 1, ny_, nx_);
    dh_ = tensor_type("lensing::nn::RIM::dh", b, C, ny_, nx_);
    dh_out_ = tensor_type("lensing::nn::RIM::dh_out", b, C, ny_, nx_);
    dxh_ = tensor_type("lensing::nn::RIM::dxh", b, F + C, ny_, nx_);
    de_ = tensor_type("lensing::nn::RIM::de", b, F, ny_, nx_);
    din_ = tensor_type("lensing::nn::RIM::din", b, 2, ny_, nx_);
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, std::vector<LinearGaussianProblem> const& problems) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::RIM: the tensors are not accessible from this execution space");
    constexpr char const* where = "lensing::nn::RIM::forward";
    int const b = int(problems.size());
    check_argument(b >= 1, where, "no problems");
    long const hw = long(ny_) * nx_;
    for (auto const& p : problems)
      check_argument(
          p.num_source() == hw && p.data.size() == p.a.rows() && p.inv_var.size() == p.a.rows(), where,
          "a problem has " + std::to_string(p.num_source()) + " source pixels, the RIM " + std::to_string(hw));
    allocate(b);
    int const T = opt_.steps, F = opt_.features, C = opt_.hidden;
    Kokkos::deep_copy(space, s_[0], Scalar(0));
    Kokkos::deep_copy(space, h_[0], Scalar(0));
    Eigen::VectorXd sv(hw);
    for (int t = 0; t < T; ++t) {
      std::size_t const ut = std::size_t(t);
      // in_t = [s_t, g_t] (the likelihood gradient on the host).
      space.fence();
      auto const hs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), s_[ut]);
      auto hin = Kokkos::create_mirror_view(in_t_[ut]);
      for (int n = 0; n < b; ++n) {
        for (long p = 0; p < hw; ++p)
          sv[p] = double(hs.data()[long(n) * hw + p]);
        Eigen::VectorXd const g = problems[std::size_t(n)].gradient(sv);
        for (long p = 0; p < hw; ++p) {
          hin.data()[long(n) * 2 * hw + p] = hs.data()[long(n) * hw + p];
          hin.data()[(long(n) * 2 + 1) * hw + p] = Scalar(g[p]);
        }
      }
      Kokkos::deep_copy(space, in_t_[ut], hin);
      space.fence();  // hin (a host mirror) dies at the end of this iteration
      in_.forward(space, in_t_[ut], e_[ut]);
      Scalar* ep = e_[ut].data();
      Scalar* xhp = xh_[ut].data();
      Scalar const* hp = h_[ut].data();
      long const cin = F + C;
      Kokkos::parallel_for(
          "lensing::nn::RIM::features",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(b) * cin * hw),
          KOKKOS_LAMBDA(long i) {
            long const n = i / (cin * hw), c = (i / hw) % cin, p = i % hw;
            if (c < F) {
              Scalar const e = TanhOp{}.value(ep[(n * F + c) * hw + p]);
              ep[(n * F + c) * hw + p] = e;
              xhp[i] = e;
            } else {
              xhp[i] = hp[(n * C + c - F) * hw + p];
            }
          });
      gru_.forward(space, xh_[ut], h_[ut + 1], cache_[ut]);
      out_.forward(space, h_[ut + 1], delta_);
      Scalar const* dp = delta_.data();
      Scalar const* sp = s_[ut].data();
      Scalar* snp = s_[ut + 1].data();
      Kokkos::parallel_for(
          "lensing::nn::RIM::update",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(b) * hw),
          KOKKOS_LAMBDA(long i) { snp[i] = sp[i] + dp[i]; });
    }
    space.fence();
  }

 private:
  RimOptions opt_;
  int ny_, nx_;
  Conv in_;
  GRU gru_;
  Conv out_;
  long n_in_ = 0, n_gru_ = 0;
  vector_type params_, tmp_;
  int batch_ = 0;
  std::vector<tensor_type> s_, h_, in_t_, e_, xh_;
  std::vector<typename GRU::Cache> cache_;
  tensor_type delta_, ds_, dh_, dh_out_, dxh_, de_, din_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_RIM_HPP
