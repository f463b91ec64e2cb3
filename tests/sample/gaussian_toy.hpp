// The Gaussian toy of the score-based sampler tests (test_score.cpp,
// test_predictor_corrector.cpp): small dense matrix helpers, the analytic
// noise-conditioned score of a Gaussian prior, and the sample moments of a
// batch of chains.
#ifndef LENSING_TESTS_SAMPLE_GAUSSIAN_TOY_HPP
#define LENSING_TESTS_SAMPLE_GAUSSIAN_TOY_HPP

#include <lensing/core/views.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <memory>
#include <vector>

namespace gaussian_toy {

using Mat = std::vector<double>;  // row-major d x d

// Inverse of a small symmetric positive definite matrix (Gauss-Jordan).
inline Mat inverse(Mat a, int d) {
  Mat b(std::size_t(d * d), 0.0);
  for (int i = 0; i < d; ++i)
    b[std::size_t(i * d + i)] = 1;
  for (int c = 0; c < d; ++c) {
    double const p = a[std::size_t(c * d + c)];
    for (int j = 0; j < d; ++j)
      a[std::size_t(c * d + j)] /= p, b[std::size_t(c * d + j)] /= p;
    for (int r = 0; r < d; ++r) {
      if (r == c) continue;
      double const f = a[std::size_t(r * d + c)];
      for (int j = 0; j < d; ++j)
        a[std::size_t(r * d + j)] -= f * a[std::size_t(c * d + j)],
            b[std::size_t(r * d + j)] -= f * b[std::size_t(c * d + j)];
    }
  }
  return b;
}
inline Mat matmul(Mat const& a, Mat const& b, int d) {
  Mat c(std::size_t(d * d), 0.0);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j)
      for (int k = 0; k < d; ++k)
        c[std::size_t(i * d + j)] += a[std::size_t(i * d + k)] * b[std::size_t(k * d + j)];
  return c;
}

// Analytic noise-conditioned score of the prior N(mu, Sigma):
// s(x, sigma) = -(Sigma + sigma^2 I)^-1 (x - mu); the matrix is rebuilt when sigma changes.
template <class S, class Mem>
struct GaussianPriorScore {
  Mat sigma_mat;
  std::vector<double> mu;
  int d;
  lensing::View2D<S, Mem> m;
  lensing::View1D<S, Mem> mu_v;
  std::shared_ptr<double> last;
  GaussianPriorScore(Mat const& cov, std::vector<double> const& mean)
      : sigma_mat(cov), mu(mean), d(int(mean.size())), m("M", d, d), mu_v("mu", d), last(new double(-1)) {
    auto h = Kokkos::create_mirror_view(mu_v);
    for (int i = 0; i < d; ++i)
      h(i) = S(mu[std::size_t(i)]);
    Kokkos::deep_copy(mu_v, h);
  }
  template <class Space>
  void operator()(Space const& space, S sigma, lensing::View2D<S, Mem> const& x,
                  lensing::View2D<S, Mem> const& s) const {
    if (double(sigma) != *last) {
      Mat c = sigma_mat;
      for (int i = 0; i < d; ++i)
        c[std::size_t(i * d + i)] += double(sigma) * double(sigma);
      Mat const inv = inverse(c, d);
      auto h = Kokkos::create_mirror_view(m);
      for (int i = 0; i < d; ++i)
        for (int j = 0; j < d; ++j)
          h(i, j) = S(inv[std::size_t(i * d + j)]);
      space.fence();
      Kokkos::deep_copy(m, h);
      *last = double(sigma);
    }
    auto const mm = m;
    auto const mv = mu_v;
    int const dd = d;
    Kokkos::parallel_for(
        "test::gaussian_prior_score",
        Kokkos::MDRangePolicy<Space, Kokkos::Rank<2>>(space, {0, 0}, {int(x.extent(0)), dd}),
        KOKKOS_LAMBDA(int i, int j) {
          S g = 0;
          for (int k = 0; k < dd; ++k)
            g -= mm(j, k) * (x(i, k) - mv(k));
          s(i, j) = g;
        });
  }
};

struct Moments {
  std::vector<double> mean, cov;
};
template <class V>
Moments moments(V const& x) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
  int const n = int(h.extent(0)), d = int(h.extent(1));
  Moments r{std::vector<double>(std::size_t(d), 0.0), std::vector<double>(std::size_t(d * d), 0.0)};
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j)
      r.mean[std::size_t(j)] += double(h(i, j)) / n;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j)
      for (int k = 0; k < d; ++k)
        r.cov[std::size_t(j * d + k)] +=
            (double(h(i, j)) - r.mean[std::size_t(j)]) * (double(h(i, k)) - r.mean[std::size_t(k)]) / (n - 1);
  return r;
}

}  // namespace gaussian_toy

#endif  // LENSING_TESTS_SAMPLE_GAUSSIAN_TOY_HPP
