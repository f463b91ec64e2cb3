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

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
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

/// log r(x, θ) + log p(θ) of one observation as a LogDensity
/// (density/log_density.hpp) over the physical parameters θ (host, double):
/// the classifier's logit at (x, (θ − m) / s) plus a log prior given as a
/// callable `double log_prior(double const* theta, double* grad)` that
/// returns log p(θ) and *adds* d log p / dθ into grad.  The gradient of the
/// logit is the network's input gradient with respect to its parameter
/// branch (TwoInput::backward's dx2), divided by s.
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
                  std::function<double(double const*, double*)> log_prior)
      : m_net(&net), m_x(x), m_mean(std::move(mean)), m_sd(std::move(sd)), m_prior(std::move(log_prior)) {
    char const* where = "lensing::sbi::RatioLogDensity";
    check_argument(x.extent(0) == 1, where, "x must hold one observation (batch 1)");
    check_argument(!m_mean.empty() && m_mean.size() == m_sd.size(), where, "mean and sd must have the same length");
    for (double s : m_sd)
      check_argument(std::isfinite(s) && s > 0, where, "sd must be finite and > 0");
    check_argument(bool(m_prior), where, "log_prior is empty");
    int const d = dimension();
    m_t = tensor_type("lensing::sbi::RatioLogDensity::theta", 1, d, 1, 1);
    m_dt = tensor_type("lensing::sbi::RatioLogDensity::dtheta", 1, d, 1, 1);
  }
  int dimension() const { return int(m_mean.size()); }
  RatioLogDensity clone() const { return *this; }

  /// The classifier's logit log r(x, θ) alone (θ physical, D values).
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
    auto g = m_net->output_gradient();
    Kokkos::deep_copy(space, g, net_scalar(1));
    m_net->backward(space, m_x, m_t, tensor_type(), m_dt);
    space.fence();
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m_dt);
    for (int j = 0; j < d; ++j)
      grad(j) = double(h.data()[j]) / m_sd[std::size_t(j)];
    double const lp = m_prior(q.data(), grad.data());
    return lr + lp;
  }

 private:
  void upload(double const* theta) const {
    auto h = Kokkos::create_mirror_view(m_t);
    for (int j = 0; j < dimension(); ++j)
      h.data()[j] = net_scalar((theta[j] - m_mean[std::size_t(j)]) / m_sd[std::size_t(j)]);
    Kokkos::deep_copy(m_t, h);
  }
  template <class ExecutionSpace>
  double logit(ExecutionSpace const& space) const {
    auto const out = m_net->forward(space, m_x, m_t);
    space.fence();
    check_argument(out.size() == 1, "lensing::sbi::RatioLogDensity", "the classifier must have one output");
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
    return double(h.data()[0]);
  }

  Net* m_net;
  tensor_type m_x, m_t, m_dt;
  std::vector<double> m_mean, m_sd;
  std::function<double(double const*, double*)> m_prior;
};

}  // namespace sbi
}  // namespace lensing

#endif  // LENSING_SBI_NRE_HPP
