#ifndef LENSING_SAMPLE_SCORE_HPP
#define LENSING_SAMPLE_SCORE_HPP

/// \file
/// Scores for AnnealedLangevin (langevin.hpp), whose interface is the
/// callable  score(space, sigma, x, s)  writing s(i, :) for every sample
/// row x(i, :) of a batch (n, d):
///  - PosteriorScore: prior score at noise level sigma plus the likelihood
///    score, grad log p(x | y) = grad log p_sigma(x) + grad log p(y | x)
///    (the likelihood is not smoothed: the usual approximation of
///    score-based posterior sampling, exact at the last, small sigma);
///  - LinearGaussianScore: the likelihood score of y = A x + n,
///    n ~ N(0, sigma_n^2 I): A^T (y - A x) / sigma_n^2 = b - H x with
///    H = A^T A / sigma_n^2, b = A^T y / sigma_n^2 (d x d per row);
///  - NetworkScore: a network of (x, log sigma) features (N, d + 1, 1, 1)
///    and d outputs, as trained by nn/score_matching.hpp.
/// Every chain is one row of the batch, so the kernels run all chains in
/// parallel on the execution space.

#include <lensing/core/errors.hpp>
#include <lensing/core/views.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace lensing {

/// Posterior score: prior(space, sigma, x, s) writes the prior score, then
/// likelihood(space, x, s) adds grad_x log p(y | x) into s.
template <class Prior, class Likelihood>
struct PosteriorScore {
  Prior prior;
  Likelihood likelihood;
  template <class ExecutionSpace, class Scalar, class View>
  void operator()(ExecutionSpace const& space, Scalar sigma, View const& x, View const& s) const {
    prior(space, sigma, x, s);
    likelihood(space, x, s);
  }
};

template <class Prior, class Likelihood>
PosteriorScore<Prior, Likelihood> make_posterior_score(Prior const& prior, Likelihood const& likelihood) {
  return PosteriorScore<Prior, Likelihood>{prior, likelihood};
}

/// Likelihood score of the linear Gaussian model y = A x + n,
/// n ~ N(0, sigma_n^2 I); callable (space, x, s) adding b - H x to s.
/// A is m x d, row-major on the host.
template <class Scalar, class MemorySpace>
class LinearGaussianScore {
 public:
  LinearGaussianScore(std::vector<double> const& a, int m, int d, std::vector<double> const& y, double sigma_n)
      : d_(d) {
    constexpr char const* where = "lensing::LinearGaussianScore";
    check_count(m, 1, where, "m");
    check_count(d, 1, where, "d");
    check_positive(sigma_n, where, "sigma_n");
    check_argument(a.size() == std::size_t(m) * std::size_t(d), where, "A must have m * d values");
    check_argument(y.size() == std::size_t(m), where, "y must have m values");
    h_ = View2D<Scalar, MemorySpace>(Kokkos::view_alloc(std::string("lensing::LinearGaussianScore::H")), d, d);
    b_ = View1D<Scalar, MemorySpace>(Kokkos::view_alloc(std::string("lensing::LinearGaussianScore::b")), d);
    auto hh = Kokkos::create_mirror_view(h_);
    auto bh = Kokkos::create_mirror_view(b_);
    double const w = 1 / (sigma_n * sigma_n);
    for (int i = 0; i < d; ++i) {
      double bi = 0;
      for (int k = 0; k < m; ++k)
        bi += a[std::size_t(k) * d + i] * y[std::size_t(k)];
      bh(i) = Scalar(w * bi);
      for (int j = 0; j < d; ++j) {
        double hij = 0;
        for (int k = 0; k < m; ++k)
          hij += a[std::size_t(k) * d + i] * a[std::size_t(k) * d + j];
        hh(i, j) = Scalar(w * hij);
      }
    }
    Kokkos::deep_copy(h_, hh);
    Kokkos::deep_copy(b_, bh);
  }
  template <class ExecutionSpace>
  void operator()(ExecutionSpace const& space, View2D<Scalar, MemorySpace> const& x,
                  View2D<Scalar, MemorySpace> const& s) const {
    check_argument(int(x.extent(1)) == d_ && s.extent(0) == x.extent(0) && s.extent(1) == x.extent(1),
                   "lensing::LinearGaussianScore", "x and s must have shape (n, d)");
    auto const h = h_;
    auto const b = b_;
    int const d = d_;
    Kokkos::parallel_for(
        "lensing::sample::linear_gaussian_score",
        Kokkos::MDRangePolicy<ExecutionSpace, Kokkos::Rank<2>>(space, {0, 0}, {int(x.extent(0)), d}),
        KOKKOS_LAMBDA(int i, int j) {
          Scalar g = b(j);
          for (int k = 0; k < d; ++k)
            g -= h(j, k) * x(i, k);
          s(i, j) += g;
        });
  }
  int dimension() const { return d_; }

 private:
  int d_;
  View2D<Scalar, MemorySpace> h_;
  View1D<Scalar, MemorySpace> b_;
};

/// A network score for AnnealedLangevin: net takes (N, d + 1, 1, 1) inputs
/// (x, log sigma), as dsm_perturb writes them, and returns d values per
/// sample (a Sequential at any batch size).  Holds the input buffer.
template <class Net>
class NetworkScore {
 public:
  using Scalar = typename Net::scalar_type;
  using Mem = typename Net::memory_space;
  NetworkScore(Net& net, int num_samples, int dimension) : net_(&net), d_(dimension) {
    check_count(num_samples, 1, "lensing::NetworkScore", "num_samples");
    check_count(dimension, 1, "lensing::NetworkScore", "dimension");
    in_ = View4D<Scalar, Mem>(Kokkos::view_alloc(std::string("lensing::NetworkScore::input")), num_samples,
                              dimension + 1, 1, 1);
  }
  template <class ExecutionSpace>
  void operator()(ExecutionSpace const& space, Scalar sigma, View2D<Scalar, Mem> const& x,
                  View2D<Scalar, Mem> const& s) const {
    check_argument(x.extent(0) == in_.extent(0) && int(x.extent(1)) == d_ && s.extent(0) == x.extent(0) &&
                       s.extent(1) == x.extent(1),
                   "lensing::NetworkScore", "x and s must have shape (num_samples, dimension)");
    auto const in = in_;
    int const d = d_, n = int(x.extent(0));
    Scalar const ls = Scalar(std::log(double(sigma)));
    Kokkos::parallel_for(
        "lensing::sample::network_score_in", Kokkos::RangePolicy<ExecutionSpace>(space, 0, n), KOKKOS_LAMBDA(int i) {
          for (int j = 0; j < d; ++j)
            in(i, j, 0, 0) = x(i, j);
          in(i, d, 0, 0) = ls;
        });
    auto const out = net_->forward(space, in);
    check_argument(out.extent(0) == in.extent(0) && long(out.extent(1)) * out.extent(2) * out.extent(3) == d,
                   "lensing::NetworkScore", "the network must return dimension values per sample");
    int const hw = int(out.extent(2) * out.extent(3)), w = int(out.extent(3));
    Kokkos::parallel_for(
        "lensing::sample::network_score_out",
        Kokkos::MDRangePolicy<ExecutionSpace, Kokkos::Rank<2>>(space, {0, 0}, {n, d}),
        KOKKOS_LAMBDA(int i, int j) { s(i, j) = out(i, j / hw, (j % hw) / w, j % w); });
  }

 private:
  Net* net_;
  int d_;
  View4D<Scalar, Mem> in_;
};

}  // namespace lensing

#endif  // LENSING_SAMPLE_SCORE_HPP
