#ifndef LENSING_NN_SCORE_MATCHING_HPP
#define LENSING_NN_SCORE_MATCHING_HPP

/// \file
/// Denoising score matching (Vincent 2011; Song & Ermon 2019, "Generative
/// modeling by estimating gradients of the data distribution", NeurIPS):
/// the loss object for fit() (losses.hpp), the geometric noise schedule,
/// the perturbation of clean samples into training pairs, and an
/// exponential moving average of the weights.
///
/// For clean x, a noise level sigma and z ~ N(0, I), the perturbed
/// x~ = x + sigma z has the conditional score grad log N(x~; x, sigma^2 I)
/// = -z / sigma; a network s(x~, sigma) regressed on it with the weight
/// lambda(sigma) = sigma^2 learns grad log p_sigma(x~) of the data density
/// smoothed by N(0, sigma^2 I).  Per sample the loss is
///   l = 1/2 sigma^2 || s + z / sigma ||^2 = 1/2 || sigma s + z ||^2,
/// averaged over the batch.  Up to a constant it equals
/// 1/2 E[sigma^2 || s - grad log p_sigma ||^2], so its minimum is the exact
/// smoothed score; for Gaussian data N(mu, v I) in D dimensions the minimum
/// value is 1/2 E_sigma[D v / (v + sigma^2)].

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace lensing {
namespace nn {

/// Geometric noise schedule: `levels` values from sigma_max down to
/// sigma_min, sigma_i = sigma_max (sigma_min / sigma_max)^(i / (levels - 1))
/// (one level: sigma_max).  Strictly decreasing, as AnnealedLangevin takes.
inline std::vector<double> geometric_sigmas(double sigma_max, double sigma_min, int levels) {
  constexpr char const* where = "lensing::nn::geometric_sigmas";
  check_positive(sigma_max, where, "sigma_max");
  check_positive(sigma_min, where, "sigma_min");
  check_count(levels, 1, where, "levels");
  check_argument(levels == 1 || sigma_min < sigma_max, where, "sigma_min must be < sigma_max");
  std::vector<double> s(static_cast<std::size_t>(levels));
  for (int i = 0; i < levels; ++i)
    s[std::size_t(i)] = levels == 1 ? sigma_max : sigma_max * std::pow(sigma_min / sigma_max, double(i) / (levels - 1));
  return s;
}

/// Denoising score-matching loss object (the interface of losses.hpp).
/// pred: the network's score s(x~, sigma), D values per sample; labels
/// (N, D + 1): the noise z (D columns) then sigma.  Value: the batch mean of
/// 1/2 || sigma s + z ||^2; gradient d/ds = sigma (sigma s + z) / N.
/// dsm_perturb() writes such labels.
struct DenoisingScoreMatchingLoss {
  static constexpr char const* name() { return "dsm"; }
  /// D = K - 1 outputs for K label columns (z and sigma).
  static long num_outputs(long k) { return k - 1; }

  template <class ExecutionSpace, class Scalar, class MemorySpace>
  double operator()(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& pred,
                    View2D<Scalar, MemorySpace> const& labels, Tensor<Scalar, MemorySpace> const& grad) const {
    constexpr char const* where = "lensing::nn::DenoisingScoreMatchingLoss";
    int const n = int(pred.extent(0));
    long const per = long(pred.extent(1)) * long(pred.extent(2)) * long(pred.extent(3));
    check_argument(int(labels.extent(0)) == n, where, "pred and labels must have the same batch size");
    check_argument(long(labels.extent(1)) == per + 1, where,
                   "labels must have D + 1 columns (z then sigma) for D = " + std::to_string(per) + " outputs");
    bool const want_grad = grad.data() != nullptr;
    if (want_grad)
      check_argument(grad.extent(0) == pred.extent(0) && grad.extent(1) == pred.extent(1) &&
                         grad.extent(2) == pred.extent(2) && grad.extent(3) == pred.extent(3),
                     where, "grad must have pred's shape");
    int const hh = int(pred.extent(2)), ww = int(pred.extent(3));
    double const inv_n = 1.0 / n;
    double sum = 0;
    Kokkos::parallel_reduce(
        "lensing::nn::dsm_loss", Kokkos::RangePolicy<ExecutionSpace>(space, 0, n),
        KOKKOS_LAMBDA(int i, double& acc) {
          double const sigma = labels(i, per);
          for (long j = 0; j < per; ++j) {
            int const c = int(j / (hh * ww)), r = int(j % (hh * ww));
            int const y = r / ww, x = r % ww;
            double const e = sigma * double(pred(i, c, y, x)) + double(labels(i, j));
            acc += 0.5 * e * e;
            if (want_grad) grad(i, c, y, x) = Scalar(sigma * e * inv_n);
          }
        },
        sum);
    return sum * inv_n;
  }

  template <class ExecutionSpace, class Scalar, class MemorySpace>
  double value(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& pred,
               View2D<Scalar, MemorySpace> const& labels) const {
    return (*this)(space, pred, labels, Tensor<Scalar, MemorySpace>());
  }
};

/// Training pairs for the DSM loss from clean samples x (N, D) on the host:
/// sample i gets sigma drawn uniformly from `sigmas` and z ~ N(0, I)
/// (stream (seed, i)); inputs(i, :) = (x~ = x + sigma z, log sigma) as
/// (N, D + 1, 1, 1) features of a network conditioned on log sigma, and
/// labels(i, :) = (z, sigma) for DenoisingScoreMatchingLoss.
template <class Scalar>
void dsm_perturb(View2D<Scalar, Kokkos::HostSpace> const& x, std::vector<double> const& sigmas, std::uint64_t seed,
                 View4D<Scalar, Kokkos::HostSpace> const& inputs, View2D<Scalar, Kokkos::HostSpace> const& labels) {
  constexpr char const* where = "lensing::nn::dsm_perturb";
  check_argument(!sigmas.empty(), where, "sigmas must not be empty");
  for (double s : sigmas)
    check_positive(s, where, "sigma");
  long const n = long(x.extent(0)), d = long(x.extent(1));
  check_argument(
      long(inputs.extent(0)) == n && long(inputs.extent(1)) == d + 1 && inputs.extent(2) == 1 && inputs.extent(3) == 1,
      where, "inputs must have shape (N, D + 1, 1, 1)");
  check_argument(long(labels.extent(0)) == n && long(labels.extent(1)) == d + 1, where,
                 "labels must have shape (N, D + 1)");
  for (long i = 0; i < n; ++i) {
    Rng rng(seed, random::purpose_host, std::uint64_t(i));
    double const u = rng.uniform();
    std::size_t const k = std::min(sigmas.size() - 1, std::size_t(u * double(sigmas.size())));
    double const sigma = sigmas[k];
    for (long j = 0; j < d; ++j) {
      double const z = rng.normal();
      inputs(i, j, 0, 0) = Scalar(double(x(i, j)) + sigma * z);
      labels(i, j) = Scalar(z);
    }
    inputs(i, d, 0, 0) = Scalar(std::log(sigma));
    labels(i, d) = Scalar(sigma);
  }
}

/// Exponential moving average of a parameter vector (e.g. a network's
/// parameters()): after update(p), avg = decay avg + (1 - decay) p; the
/// first update copies p.  copy_to(p) writes the average into p (to
/// evaluate or save the averaged weights).
template <class Scalar, class MemorySpace>
class ExponentialMovingAverage {
 public:
  ExponentialMovingAverage(long size, double decay) : decay_(decay) {
    constexpr char const* where = "lensing::nn::ExponentialMovingAverage";
    check_count(size, 1, where, "size");
    check_argument(decay >= 0 && decay < 1, where, "decay must be in [0, 1)");
    avg_ = View1D<Scalar, MemorySpace>(Kokkos::view_alloc(std::string("lensing::nn::ema")), size);
  }
  template <class ExecutionSpace>
  void update(ExecutionSpace const& space, View1D<Scalar, MemorySpace> const& p) {
    check_argument(p.extent(0) == avg_.extent(0), "lensing::nn::ExponentialMovingAverage::update",
                   "the vector's size differs from the average's");
    auto const a = avg_;
    Scalar const d = Scalar(updates_ == 0 ? 0.0 : decay_), w = Scalar(1) - d;
    Kokkos::parallel_for(
        "lensing::nn::ema_update", Kokkos::RangePolicy<ExecutionSpace>(space, 0, long(a.extent(0))),
        KOKKOS_LAMBDA(long i) { a(i) = d * a(i) + w * p(i); });
    ++updates_;
  }
  template <class ExecutionSpace>
  void copy_to(ExecutionSpace const& space, View1D<Scalar, MemorySpace> const& p) const {
    check_argument(p.extent(0) == avg_.extent(0), "lensing::nn::ExponentialMovingAverage::copy_to",
                   "the vector's size differs from the average's");
    Kokkos::deep_copy(space, p, avg_);
  }
  View1D<Scalar, MemorySpace> average() const { return avg_; }
  long updates() const { return updates_; }
  double decay() const { return decay_; }

 private:
  double decay_;
  long updates_ = 0;
  View1D<Scalar, MemorySpace> avg_;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_SCORE_MATCHING_HPP
