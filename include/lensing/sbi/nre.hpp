#ifndef LENSING_SBI_NRE_HPP
#define LENSING_SBI_NRE_HPP

/// \file
/// Neural ratio estimation (NRE): a classifier d(x, θ) = σ(f(x, θ)) trained
/// to tell joint pairs (x, θ) ~ p(x, θ) (label 1) from marginal pairs
/// (x, θ') ~ p(x) p(θ) (label 0) with the binary cross-entropy; the optimal
/// logit is f*(x, θ) = log p(x | θ) − log p(x) = log r(x, θ) (Hermans,
/// Begy & Louppe 2020, "Likelihood-free MCMC with amortized approximate
/// ratio estimators"; Brehmer et al. 2019), so log r + log p(θ) is the log
/// posterior up to a constant and NUTS can sample it.
///
/// The network is a two-input model (nn/two_input.hpp, e.g. a CNN on the
/// image and an MLP on the parameters, joined by a head with one output)
/// taking the standardised parameters z = (θ − m) / s as an (N, D, 1, 1)
/// tensor.  Marginal pairs are made within a batch: θ' of sample i is the θ
/// of sample (i + shift) mod B, shift uniform in [1, B) per step (a cyclic
/// permutation without fixed points).

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/nn/loss.hpp>
#include <lensing/nn/tensor.hpp>
#include <lensing/simulate/data_source.hpp>

#include <Kokkos_Core.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lensing {
namespace sbi {

/// Joint and shuffled pairs of one training batch.  From x (B, C, H, W) and
/// standardised θ (B, D) writes x2 (2B, C, H, W) = [x; x], t2 (2B, D, 1, 1) =
/// [θ; θ shifted by `shift` rows, cyclically] and labels (2B, 1) = [1; 0].
/// shift must be in [1, B).  Runs on `space`.
template <class ExecutionSpace, class Scalar, class MemorySpace>
void make_ratio_batch(ExecutionSpace const& space, nn::Tensor<Scalar, MemorySpace> const& x,
                      View2D<Scalar, MemorySpace> const& theta, long shift, nn::Tensor<Scalar, MemorySpace> const& x2,
                      nn::Tensor<Scalar, MemorySpace> const& t2, View2D<Scalar, MemorySpace> const& labels) {
  char const* where = "lensing::sbi::make_ratio_batch";
  long const b = long(x.extent(0)), per = long(x.extent(1) * x.extent(2) * x.extent(3)), d = long(theta.extent(1));
  check_argument(b >= 2 && long(theta.extent(0)) == b, where, "x and theta need the same batch of at least 2");
  check_argument(shift >= 1 && shift < b, where, "shift must be in [1, B)");
  check_argument(long(x2.extent(0)) == 2 * b && long(x2.extent(1) * x2.extent(2) * x2.extent(3)) == per &&
                     long(t2.extent(0)) == 2 * b && long(t2.extent(1) * t2.extent(2) * t2.extent(3)) == d &&
                     long(labels.extent(0)) == 2 * b && labels.extent(1) == 1,
                 where, "x2, t2 and labels must hold 2B samples of x's and theta's sizes (labels one column)");
  Scalar const* xp = x.data();
  Scalar const* tp = theta.data();
  Scalar* x2p = x2.data();
  Scalar* t2p = t2.data();
  Scalar* lp = labels.data();
  Kokkos::parallel_for(
      where, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, 2 * b * per),
      KOKKOS_LAMBDA(long i) { x2p[i] = xp[i % (b * per)]; });
  Kokkos::parallel_for(
      where, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, 2 * b), KOKKOS_LAMBDA(long i) {
        long const src = i < b ? i : (i - b + shift) % b;
        for (long j = 0; j < d; ++j)
          t2p[i * d + j] = tp[src * d + j];
        lp[i] = Scalar(i < b ? 1 : 0);
      });
}

/// One optimiser step of a ratio classifier on a batch (x (B, ...), θ
/// standardised (B, D)): joint and shuffled pairs (make_ratio_batch with a
/// shift drawn from Rng(seed, random::purpose_epoch_shuffle, step)), the
/// BCE-with-logits loss, backward, opt.step.  Returns the loss.  The
/// buffers x2, t2, labels (2B samples) are the caller's, reused across steps.
template <class ExecutionSpace, class Net, class Optimizer, class Scalar, class MemorySpace>
double ratio_train_step(ExecutionSpace const& space, Net& net, Optimizer& opt, nn::Tensor<Scalar, MemorySpace> const& x,
                        View2D<Scalar, MemorySpace> const& theta, std::uint64_t seed, std::uint64_t step,
                        nn::Tensor<Scalar, MemorySpace> const& x2, nn::Tensor<Scalar, MemorySpace> const& t2,
                        View2D<Scalar, MemorySpace> const& labels) {
  long const b = long(x.extent(0));
  Rng rng(seed, random::purpose_epoch_shuffle, step);
  long const shift = 1 + long(rng.uniform() * double(b - 1)) % (b - 1);
  make_ratio_batch(space, x, theta, shift, x2, t2, labels);
  auto const out = net.forward(space, x2, t2);
  double const loss = double(nn::bce_with_logits_loss(space, out, labels, net.output_gradient()));
  net.backward(space, x2, t2);
  opt.step(space, net.parameters(), net.gradients());
  return loss;
}

namespace detail {
/// y[i] = a[i mod a.size()] over y's elements: the rows of a repeated
/// cyclically (a of n rows into y of k n rows, or one row into m rows).
template <class ExecutionSpace, class Scalar, class MemorySpace>
void repeat_rows(ExecutionSpace const& space, nn::Tensor<Scalar, MemorySpace> const& a,
                 nn::Tensor<Scalar, MemorySpace> const& y) {
  long const na = long(a.size());
  Scalar const* ap = a.data();
  Scalar* yp = y.data();
  Kokkos::parallel_for(
      "lensing::sbi::repeat_rows",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(y.size())),
      KOKKOS_LAMBDA(long i) { yp[i] = ap[i % na]; });
}
/// a[i] = Σ_r y[i + r a.size()]: the adjoint of repeat_rows.
template <class ExecutionSpace, class Scalar, class MemorySpace>
void fold_rows(ExecutionSpace const& space, nn::Tensor<Scalar, MemorySpace> const& y,
               nn::Tensor<Scalar, MemorySpace> const& a) {
  long const na = long(a.size()), reps = long(y.size()) / na;
  Scalar const* yp = y.data();
  Scalar* ap = a.data();
  Kokkos::parallel_for(
      "lensing::sbi::fold_rows", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, na),
      KOKKOS_LAMBDA(long i) {
        Scalar s = 0;
        for (long r = 0; r < reps; ++r)
          s += yp[i + r * na];
        ap[i] = s;
      });
}
/// A tensor of the given shape, reallocated only when the shape changes.
template <class Tensor>
void ensure_shape(Tensor& t, nn::Shape4 const& s, char const* label) {
  if (t.data() == nullptr || !(nn::shape_of(t) == s))
    t = Tensor(std::string(label), std::size_t(s.n), std::size_t(s.c), std::size_t(s.h), std::size_t(s.w));
}
}  // namespace detail

/// The ratio classifier with its image branch run once per image: for a
/// TwoInput net f(x, z) = Head([A(x), B(z)]) whose branches and head have
/// Sequential's interface (forward(space, x) returning output(),
/// output_gradient(), backward(space, x, dx), gradients()), `embed` returns
/// A(x) and `logits` evaluates Head([e, B(z)]) for M parameter rows against
/// an embedding e of M rows or of one row (broadcast), so that one image
/// embedding serves any number of parameter points (posterior sampling,
/// importance weights).  Holds a reference to the network and its own
/// buffers; the network's weights must not change between embed and logits.
template <class Net>
class RatioFromEmbedding {
 public:
  using tensor_type = typename Net::tensor_type;
  using scalar_type = typename Net::scalar_type;

  explicit RatioFromEmbedding(Net& net) : m_net(&net) {}
  Net& network() const { return *m_net; }

  /// A(x) for x (N, C, H, W): a copy, (N, P_A, ...) as the branch outputs it.
  template <class ExecutionSpace>
  tensor_type embed(ExecutionSpace const& space, tensor_type const& x) const {
    auto const y = m_net->first().forward(space, x);
    tensor_type e("lensing::sbi::RatioFromEmbedding::embedding", y.extent(0), y.extent(1), y.extent(2), y.extent(3));
    Kokkos::deep_copy(space, e, y);
    return e;
  }

  /// Head([e, B(z)]) for z (M, D, 1, 1) standardised parameters and e of M
  /// rows or one row: the head's output (M, 1, 1, 1), valid until the next
  /// use of the network.
  template <class ExecutionSpace>
  tensor_type logits(ExecutionSpace const& space, tensor_type const& e, tensor_type const& z) {
    char const* where = "lensing::sbi::RatioFromEmbedding::logits";
    long const m = long(z.extent(0)), ne = long(e.extent(0));
    check_argument(
        m >= 1 && (ne == 1 || ne == m), where,
        "the embedding must have one row or as many rows as z (" + std::to_string(m) + "), got " + std::to_string(ne));
    auto const yb = m_net->second().forward(space, z);
    long const pa = long(e.extent(1) * e.extent(2) * e.extent(3)),
               pb = long(yb.extent(1) * yb.extent(2) * yb.extent(3));
    if (ne == m) {
      m_e = e;
    } else {
      detail::ensure_shape(m_rep, nn::Shape4{int(m), int(pa), 1, 1}, "lensing::sbi::RatioFromEmbedding::repeated");
      detail::repeat_rows(space, e, m_rep);
      m_e = m_rep;
    }
    detail::ensure_shape(m_z, nn::Shape4{int(m), int(pa + pb), 1, 1}, "lensing::sbi::RatioFromEmbedding::z");
    nn::join_samples(space, m_e, yb, m_z);
    return m_net->head().forward(space, m_z);
  }

  /// After logits(space, e, z) and with dL/d(logit) in
  /// network().head().output_gradient(): dL/dz into dz (the shape of z).
  template <class ExecutionSpace>
  void backward_parameters(ExecutionSpace const& space, tensor_type const& z, tensor_type const& dz) {
    auto& head = m_net->head();
    auto& b = m_net->second();
    detail::ensure_shape(m_dz, nn::shape_of(m_z), "lensing::sbi::RatioFromEmbedding::dz");
    head.backward(space, m_z, m_dz);
    detail::ensure_shape(m_de, nn::shape_of(m_e), "lensing::sbi::RatioFromEmbedding::de");
    auto const gb = b.output_gradient();
    nn::split_samples(space, m_dz, m_de, gb);
    b.backward(space, z, dz);
  }

 private:
  Net* m_net;
  tensor_type m_e, m_rep, m_z, m_dz, m_de;
};

/// A TwoInput ratio classifier as a one-input model for nn::fit, the image
/// branch run once per image: forward(space, x) takes B images and returns
/// the 2B logits of the joint pairs (x_i, z_i) then the marginal pairs
/// (x_i, z_{(i + shift) mod B}), with the standardised parameter rows set
/// beforehand by pair() (RatioPairSource does it for every batch).  Equal to
/// net.forward on the make_ratio_batch tensors [x; x], [z; z shifted] up to
/// rounding, at about half the image-branch cost; backward sums the two
/// halves' gradients of A(x).  Parameters, state and for_each_layer are the
/// network's (weights saved from this model load into the TwoInput).
/// Requirements on the branches and head: those of RatioFromEmbedding.
template <class Net>
class SharedEmbeddingRatioModel {
 public:
  using scalar_type = typename Net::scalar_type;
  using memory_space = typename Net::memory_space;
  using tensor_type = typename Net::tensor_type;
  using vector_type = typename Net::vector_type;

  SharedEmbeddingRatioModel(Net& net, int dimension) : m_net(&net), m_d(dimension) {
    check_count(dimension, 1, "lensing::sbi::SharedEmbeddingRatioModel", "dimension");
  }
  Net& network() const { return *m_net; }
  int dimension() const { return m_d; }

  /// Set the parameter rows of the next forward from standardised θ (B, D):
  /// [θ; θ shifted cyclically by shift rows], shift in [1, B); returns the
  /// labels (2B, 1) = [1; 0] (a buffer of this model).
  template <class ExecutionSpace>
  View2D<scalar_type, memory_space> pair(ExecutionSpace const& space, View2D<scalar_type, memory_space> const& theta,
                                         long shift) {
    char const* where = "lensing::sbi::SharedEmbeddingRatioModel::pair";
    long const b = long(theta.extent(0)), d = m_d;
    check_argument(long(theta.extent(1)) == d, where,
                   "theta has " + std::to_string(theta.extent(1)) + " columns, expected " + std::to_string(d));
    check_argument(b >= 2 && shift >= 1 && shift < b, where, "needs a batch of at least 2 and shift in [1, B)");
    detail::ensure_shape(m_t2, nn::Shape4{int(2 * b), int(d), 1, 1}, "lensing::sbi::SharedEmbeddingRatioModel::t2");
    if (long(m_labels.extent(0)) != 2 * b)
      m_labels = View2D<scalar_type, memory_space>("lensing::sbi::SharedEmbeddingRatioModel::labels", 2 * b, 1);
    scalar_type const* tp = theta.data();
    scalar_type* t2p = m_t2.data();
    scalar_type* lp = m_labels.data();
    Kokkos::parallel_for(
        where, Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, 2 * b), KOKKOS_LAMBDA(long i) {
          long const src = i < b ? i : (i - b + shift) % b;
          for (long j = 0; j < d; ++j)
            t2p[i * d + j] = tp[src * d + j];
          lp[i] = scalar_type(i < b ? 1 : 0);
        });
    return m_labels;
  }
  /// The parameter rows of the last pair() (2B, D, 1, 1).
  tensor_type pair_parameters() const { return m_t2; }

  nn::Shape4 output_shape(nn::Shape4 const& in) const {
    return m_net->output_shape(nn::Shape4{2 * in.n, in.c, in.h, in.w}, nn::Shape4{2 * in.n, m_d, 1, 1});
  }
  long num_params() const { return m_net->num_params(); }
  vector_type parameters() const { return m_net->parameters(); }
  vector_type gradients() const { return m_net->gradients(); }
  long num_state() const { return m_net->num_state(); }
  vector_type state() const { return m_net->state(); }
  void initialize(std::uint64_t seed) { m_net->initialize(seed); }
  void set_training(bool t) { m_net->set_training(t); }
  template <class F>
  void for_each_layer(F&& f) {
    m_net->for_each_layer(std::forward<F>(f));
  }
  template <class F>
  void for_each_layer(F&& f) const {
    static_cast<Net const*>(m_net)->for_each_layer(std::forward<F>(f));
  }
  tensor_type output() const { return m_net->head().output(); }
  tensor_type output_gradient() const { return m_net->head().output_gradient(); }

  /// The 2B logits for the B images x and the rows of the last pair().
  template <class ExecutionSpace>
  tensor_type forward(ExecutionSpace const& space, tensor_type const& x) {
    char const* where = "lensing::sbi::SharedEmbeddingRatioModel::forward";
    check_argument(m_t2.data() != nullptr && long(m_t2.extent(0)) == 2 * long(x.extent(0)), where,
                   "call pair() with the batch's parameters first");
    auto const ya = m_net->first().forward(space, x);
    detail::ensure_shape(m_ya2,
                         nn::Shape4{int(2 * ya.extent(0)), int(ya.extent(1)), int(ya.extent(2)), int(ya.extent(3))},
                         "lensing::sbi::SharedEmbeddingRatioModel::ya2");
    detail::repeat_rows(space, ya, m_ya2);
    auto const yb = m_net->second().forward(space, m_t2);
    long const pa = long(ya.extent(1) * ya.extent(2) * ya.extent(3)),
               pb = long(yb.extent(1) * yb.extent(2) * yb.extent(3));
    detail::ensure_shape(m_z, nn::Shape4{int(yb.extent(0)), int(pa + pb), 1, 1},
                         "lensing::sbi::SharedEmbeddingRatioModel::z");
    nn::join_samples(space, m_ya2, yb, m_z);
    return m_net->head().forward(space, m_z);
  }

  /// Back-propagate output_gradient() through the last forward (same x):
  /// fills gradients() (the network's, overwritten).
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x) {
    auto& a = m_net->first();
    auto& b = m_net->second();
    auto& head = m_net->head();
    detail::ensure_shape(m_dz, nn::shape_of(m_z), "lensing::sbi::SharedEmbeddingRatioModel::dz");
    detail::ensure_shape(m_dya2, nn::shape_of(m_ya2), "lensing::sbi::SharedEmbeddingRatioModel::dya2");
    head.backward(space, m_z, m_dz);
    nn::split_samples(space, m_dz, m_dya2, b.output_gradient());
    b.backward(space, m_t2);
    detail::fold_rows(space, m_dya2, a.output_gradient());
    a.backward(space, x);
    auto g = m_net->gradients();
    long const na = a.num_params(), nb = b.num_params(), nh = head.num_params();
    if (na > 0) Kokkos::deep_copy(space, Kokkos::subview(g, Kokkos::make_pair(0L, na)), a.gradients());
    if (nb > 0) Kokkos::deep_copy(space, Kokkos::subview(g, Kokkos::make_pair(na, na + nb)), b.gradients());
    if (nh > 0)
      Kokkos::deep_copy(space, Kokkos::subview(g, Kokkos::make_pair(na + nb, na + nb + nh)), head.gradients());
  }

 private:
  Net* m_net;
  int m_d;
  tensor_type m_t2, m_ya2, m_z, m_dz, m_dya2;
  View2D<scalar_type, memory_space> m_labels;
};

/// A DataSource (simulate/data_source.hpp) for nn::fit of a
/// SharedEmbeddingRatioModel: each batch of `inner` (images, standardised
/// θ (B, D)) becomes its images with the labels [1; 0] (2B, 1), after
/// model.pair with a shift drawn from Rng(seed, random::purpose_epoch_shuffle,
/// epoch, batch of the epoch) — the same pairs whatever the resume point.
/// num_labels() is 1; use nn::BCEWithLogitsLoss.
template <class Inner, class Model>
class RatioPairSource {
 public:
  using scalar_type = typename Inner::scalar_type;
  using memory_space = typename Inner::memory_space;
  using batch_type = simulate::DataBatch<scalar_type, memory_space>;

  RatioPairSource(Inner& inner, Model& model, std::uint64_t seed) : m_inner(&inner), m_model(&model), m_seed(seed) {
    check_argument(inner.batch_size() >= 2, "lensing::sbi::RatioPairSource", "needs batches of at least 2");
  }
  int batch_size() const { return m_inner->batch_size(); }
  int num_labels() const { return 1; }
  std::array<int, 3> sample_shape() const { return m_inner->sample_shape(); }
  long batches_per_epoch() const { return m_inner->batches_per_epoch(); }
  void start_epoch(long e) {
    m_inner->start_epoch(e);
    m_epoch = e;
    m_batch = 0;
  }
  template <class ExecutionSpace>
  batch_type next(ExecutionSpace const& space) {
    auto const b = m_inner->next(space);
    long const n = long(b.images.extent(0));
    Rng rng(m_seed, random::purpose_epoch_shuffle, std::uint64_t(m_epoch), std::uint64_t(m_batch));
    ++m_batch;
    long const shift = 1 + long(rng.uniform() * double(n - 1)) % (n - 1);
    batch_type out;
    out.images = b.images;
    out.labels = m_model->pair(space, b.labels, shift);
    out.step = b.step;
    return out;
  }

 private:
  Inner* m_inner;
  Model* m_model;
  std::uint64_t m_seed;
  long m_epoch = 0, m_batch = 0;
};

/// log r(x, θ) + log p(θ) of one observation as a LogDensity
/// (density/log_density.hpp) over the physical parameters θ (host, double):
/// the classifier's logit at (x, (θ − m) / s) plus a log prior given as a
/// callable `double log_prior(double const* theta, double* grad)` that
/// returns log p(θ) and *adds* d log p / dθ into grad.  The gradient of the
/// logit is the input gradient of the network's parameter branch, divided
/// by s.
///
/// The image branch runs once, at the first evaluation (RatioFromEmbedding:
/// the net's branches and head need Sequential's interface); every later
/// value and gradient runs only the parameter branch and the head.  Optional
/// `logit_scale` a and `logit_shift` b evaluate a f + b instead of the logit
/// f (a recalibrated classifier, e.g. by temperature / Platt scaling).
///
/// The network is shared by reference between clones (it holds the
/// activation buffers): launches_kernels is true, so the samplers run the
/// chains of this density one evaluation at a time.
template <class Net>
class RatioLogDensity {
 public:
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  static constexpr bool launches_kernels = true;
  using tensor_type = typename Net::tensor_type;
  using net_scalar = typename Net::scalar_type;

  RatioLogDensity(Net& net, tensor_type const& x, std::vector<double> mean, std::vector<double> sd,
                  std::function<double(double const*, double*)> log_prior, double logit_scale = 1,
                  double logit_shift = 0)
      : m_net(&net),
        m_x(x),
        m_mean(std::move(mean)),
        m_sd(std::move(sd)),
        m_prior(std::move(log_prior)),
        m_a(logit_scale),
        m_b(logit_shift),
        m_shared(std::make_shared<Shared>(net)) {
    char const* where = "lensing::sbi::RatioLogDensity";
    check_argument(x.extent(0) == 1, where, "x must hold one observation (batch 1)");
    check_argument(!m_mean.empty() && m_mean.size() == m_sd.size(), where, "mean and sd must have the same length");
    for (double s : m_sd)
      check_argument(std::isfinite(s) && s > 0, where, "sd must be finite and > 0");
    check_argument(bool(m_prior), where, "log_prior is empty");
    check_argument(std::isfinite(m_a) && std::isfinite(m_b), where, "logit_scale and logit_shift must be finite");
    int const d = dimension();
    m_t = tensor_type("lensing::sbi::RatioLogDensity::theta", 1, d, 1, 1);
    m_dt = tensor_type("lensing::sbi::RatioLogDensity::dtheta", 1, d, 1, 1);
  }
  int dimension() const { return int(m_mean.size()); }
  RatioLogDensity clone() const { return *this; }

  /// The (rescaled) logit a f(x, θ) + b alone (θ physical, D values).
  template <class ExecutionSpace>
  double log_ratio(ExecutionSpace const& space, double const* theta) const {
    upload(theta);
    return logit(space);
  }

  template <class ExecutionSpace>
  double value_and_gradient(ExecutionSpace const& space, View1D<double, Kokkos::HostSpace> const& q,
                            View1D<double, Kokkos::HostSpace> const& grad) const {
    int const d = dimension();
    upload(q.data());
    double const lr = logit(space);
    Kokkos::deep_copy(space, m_net->head().output_gradient(), net_scalar(1));
    m_shared->eval.backward_parameters(space, m_t, m_dt);
    space.fence();
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m_dt);
    for (int j = 0; j < d; ++j)
      grad(j) = m_a * double(h.data()[j]) / m_sd[std::size_t(j)];
    double const lp = m_prior(q.data(), grad.data());
    return lr + lp;
  }

 private:
  struct Shared {
    explicit Shared(Net& net) : eval(net) {}
    RatioFromEmbedding<Net> eval;
    tensor_type embedding;
  };
  void upload(double const* theta) const {
    auto h = Kokkos::create_mirror_view(m_t);
    for (int j = 0; j < dimension(); ++j)
      h.data()[j] = net_scalar((theta[j] - m_mean[std::size_t(j)]) / m_sd[std::size_t(j)]);
    Kokkos::deep_copy(m_t, h);
  }
  template <class ExecutionSpace>
  double logit(ExecutionSpace const& space) const {
    if (m_shared->embedding.data() == nullptr) m_shared->embedding = m_shared->eval.embed(space, m_x);
    auto const out = m_shared->eval.logits(space, m_shared->embedding, m_t);
    space.fence();
    check_argument(out.size() == 1, "lensing::sbi::RatioLogDensity", "the classifier must have one output");
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
    return m_a * double(h.data()[0]) + m_b;
  }

  Net* m_net;
  tensor_type m_x, m_t, m_dt;
  std::vector<double> m_mean, m_sd;
  std::function<double(double const*, double*)> m_prior;
  double m_a, m_b;
  std::shared_ptr<Shared> m_shared;
};

}  // namespace sbi
}  // namespace lensing

#endif  // LENSING_SBI_NRE_HPP
