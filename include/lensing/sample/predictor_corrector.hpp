#ifndef LENSING_SAMPLE_PREDICTOR_CORRECTOR_HPP
#define LENSING_SAMPLE_PREDICTOR_CORRECTOR_HPP

/// \file
/// Predictor-corrector sampling of the variance-exploding SDE (Song et al.
/// 2021, "Score-based generative modeling through stochastic differential
/// equations", ICLR, Algorithms 2 and 5) for a user-supplied score
/// s(x, sigma) ~ grad_x log p_sigma(x), with the same score interface and
/// chain layout as AnnealedLangevin (langevin.hpp), so that a caller can swap
/// one sampler for the other.
///
/// **Equations.**  Noise levels sigma_0 > sigma_1 > ... > sigma_{L-1} > 0
/// (L >= 2).  The chains start from the caller's x (for the VE SDE, draws of
/// N(0, sigma_0^2 I) with sigma_0 large against the data's spread:
/// initialize() writes them).  For i = 0 .. L-2:
///  - predictor (reverse-diffusion step of dx = sqrt(d sigma^2 / dt) dW from
///    sigma_i to sigma_{i+1}):
///      x <- x + c_i s(x, sigma_i) + sqrt(c_i) z,
///      c_i = min(sigma_i^2 - sigma_{i+1}^2, max_step);
///  - corrector: M = corrector_steps Langevin (ULA) steps at sigma_{i+1},
///      x <- x + eps s(x, sigma_{i+1}) + sqrt(2 eps) z,
///      eps = min(2 (r ||z|| / ||s||)^2, max_step),
///    r = snr, the signal-to-noise ratio of the update.  The norms are
///    root-mean-square over the whole batch, ||z||^2 = sum_{chains, coords}
///    z^2 / n and ||s||^2 likewise, so all chains of one step share eps (with
///    one chain it is exactly the per-sample formula of the paper; for many
///    chains it is far less noisy in low dimension).  eps is computed before
///    the update from the very z that the update then adds.
/// z ~ N(0, I) fresh for every step, chain and coordinate.
///
/// **Valid domain.**  Each step is an explicit Euler step: for a score of
/// local curvature (Hessian of -log p) with largest eigenvalue lambda the
/// step is stable only when c_i lambda < 2 and eps lambda < 2.  A prior score
/// alone has lambda ~ 1 / sigma^2 and the VE steps are safe; a likelihood
/// score added (PosteriorScore, score.hpp) does not scale with sigma, so use
/// a fine schedule or cap the steps by max_step.  A capped predictor removes
/// only c_i < sigma_i^2 - sigma_{i+1}^2 of the noise variance (drift and
/// noise are capped together, i.e. a reverse step over a smaller noise
/// decrement) and leaves the rest to the corrector.  At the end x is a draw
/// of (approximately) p_{sigma_{L-1}}: take sigma_{L-1} small.  For a
/// Gaussian level target of precision P the corrector's stationary law is
/// N(mean, (P - eps P^2 / 2)^-1), as for AnnealedLangevin (see
/// tests/sample/test_predictor_corrector.cpp, which propagates the exact law
/// of the whole chain of steps).
///
/// **Random streams.**  Counter-based streams random::stream_key(seed,
/// random::purpose_langevin, a, b) with b = chain * dimension + coordinate
/// and a = 2^62 + k, where k = 0 for initialize(), k = i (M + 1) + 1 for the
/// predictor from sigma_i and k = i (M + 1) + 2 + j for corrector step j at
/// sigma_{i+1}.  The offset 2^62 keeps them apart from AnnealedLangevin's
/// step numbers a < 2^62 under the same seed.  The noise does not depend on
/// the number of threads; eps is a parallel sum (in double), so runs with
/// different thread counts can differ in the last bits.  Every corrector
/// step reduces two sums to the host (a synchronisation of `space`).

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace lensing {

/// Settings of predictor-corrector sampling (see the file comment).
struct PredictorCorrectorOptions {
  std::vector<double> sigmas;  ///< noise levels sigma_0 > ... > sigma_{L-1} > 0, L >= 2
  int corrector_steps = 1;     ///< M Langevin steps after each predictor step; 0: reverse diffusion only
  double snr = 0.16;           ///< r: eps = 2 (r ||z|| / ||s||)^2
  /// Upper bound on the predictor's c_i and the corrector's eps (infinite:
  /// none); see the valid domain in the file comment.
  double max_step = HUGE_VAL;
  std::uint64_t seed = 1;
  bool progress = false;  ///< print each finished level to stderr
};

/// Step sizes used by one PredictorCorrector::run, for diagnostics and tests.
struct PredictorCorrectorTrace {
  std::vector<double> predictor_steps;  ///< c_i, i = 0 .. L-2
  std::vector<double> corrector_steps;  ///< eps of step j after predictor i at [i * M + j]
};

/// Predictor-corrector sampler for a batch of `num_samples` points in R^d
/// (Scalar float or double, data in Mem).  The score is the callable of
/// AnnealedLangevin:
///   score(space, sigma, x, s):  s(i, :) = grad_x log p_sigma(x(i, :)),  x, s: View2D<Scalar, Mem> (n, d),
/// which may launch kernels on `space`.  Row i of x is chain i.  Throws
/// std::invalid_argument for bad options or shapes, and std::runtime_error
/// when a corrector's norms are zero or non-finite (the chains diverged, or
/// the score vanished everywhere).
template <class Scalar, class MemorySpace>
class PredictorCorrector {
  static_assert(std::is_floating_point<Scalar>::value, "lensing::PredictorCorrector: Scalar must be float or double");

 public:
  PredictorCorrector(int num_samples, int dimension, PredictorCorrectorOptions const& options)
      : opt_(options), n_(num_samples), d_(dimension) {
    constexpr char const* where = "lensing::PredictorCorrector";
    check_count(num_samples, 1, where, "num_samples");
    check_count(dimension, 1, where, "dimension");
    check_count(options.corrector_steps, 0, where, "corrector_steps");
    check_positive(options.snr, where, "snr");
    check_argument(options.max_step > 0, where, "max_step must be > 0");
    check_argument(options.sigmas.size() >= 2, where,
                   "sigmas must hold at least two levels (the predictor steps from one to the next)");
    for (std::size_t i = 0; i < options.sigmas.size(); ++i) {
      check_positive(options.sigmas[i], where, "sigma");
      check_argument(i == 0 || options.sigmas[i] < options.sigmas[i - 1], where, "sigmas must be strictly decreasing");
    }
    s_ = View2D<Scalar, MemorySpace>(Kokkos::view_alloc(std::string("lensing::sample::pc_score")), n_, d_);
  }

  /// Predictor step c_i from sigma_i to sigma_{i+1}: min(sigma_i^2 - sigma_{i+1}^2, max_step).
  double predictor_step(int i) const {
    double const a = opt_.sigmas[std::size_t(i)], b = opt_.sigmas[std::size_t(i) + 1];
    return std::min((a - b) * (a + b), opt_.max_step);
  }

  /// x <- sigma_0 z: draws of N(0, sigma_0^2 I), the VE SDE's starting law.
  template <class ExecutionSpace>
  void initialize(ExecutionSpace const& space, View2D<Scalar, MemorySpace> const& x) const {
    check_shape(x, "lensing::PredictorCorrector::initialize");
    std::uint64_t const key_a = offset, seed = opt_.seed;
    int const d = d_;
    Scalar const s0 = Scalar(opt_.sigmas.front());
    Kokkos::parallel_for(
        "lensing::sample::pc_initialize",
        Kokkos::MDRangePolicy<ExecutionSpace, Kokkos::Rank<2>>(space, {0, 0}, {n_, d_}), KOKKOS_LAMBDA(int i, int j) {
          random::Stream z(random::stream_key(seed, random::purpose_langevin, key_a, std::uint64_t(i) * d + j));
          x(i, j) = s0 * z.template normal<Scalar>();
        });
    space.fence();
  }

  /// Run all predictor and corrector steps from the samples in x (n, d),
  /// which hold the result on return; returns the step sizes used.
  template <class ExecutionSpace, class Score>
  PredictorCorrectorTrace run(ExecutionSpace const& space, Score const& score,
                              View2D<Scalar, MemorySpace> const& x) const {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::PredictorCorrector::run: the samples must be accessible from the execution space");
    constexpr char const* where = "lensing::PredictorCorrector::run";
    check_shape(x, where);
    auto const s = s_;
    int const d = d_, m = opt_.corrector_steps, levels = int(opt_.sigmas.size());
    std::uint64_t const seed = opt_.seed;
    PredictorCorrectorTrace trace;
    trace.predictor_steps.reserve(std::size_t(levels - 1));
    trace.corrector_steps.reserve(std::size_t(levels - 1) * std::size_t(m));
    auto const policy = Kokkos::MDRangePolicy<ExecutionSpace, Kokkos::Rank<2>>(space, {0, 0}, {n_, d_});
    for (int i = 0; i + 1 < levels; ++i) {
      std::uint64_t const base = offset + std::uint64_t(i) * std::uint64_t(m + 1) + 1;
      // Predictor: reverse-diffusion step from sigma_i to sigma_{i+1}.
      double const c = predictor_step(i);
      trace.predictor_steps.push_back(c);
      score(space, Scalar(opt_.sigmas[std::size_t(i)]), x, s);
      {
        Scalar const drift = Scalar(c), noise = Scalar(std::sqrt(c));
        Kokkos::parallel_for(
            "lensing::sample::pc_predictor", policy, KOKKOS_LAMBDA(int r, int j) {
              random::Stream z(random::stream_key(seed, random::purpose_langevin, base, std::uint64_t(r) * d + j));
              x(r, j) += drift * s(r, j) + noise * z.template normal<Scalar>();
            });
      }
      // Corrector: M Langevin steps at sigma_{i+1} with the step set by the SNR.
      Scalar const sigma_next = Scalar(opt_.sigmas[std::size_t(i) + 1]);
      for (int t = 0; t < m; ++t) {
        std::uint64_t const key_a = base + 1 + std::uint64_t(t);
        score(space, sigma_next, x, s);
        // Sums in double: n d terms of order 1 (z) or |s|^2.
        double zz = 0, ss = 0;
        Kokkos::parallel_reduce(
            "lensing::sample::pc_noise_norm", policy,
            KOKKOS_LAMBDA(int r, int j, double& acc) {
              random::Stream z(random::stream_key(seed, random::purpose_langevin, key_a, std::uint64_t(r) * d + j));
              double const v = double(z.template normal<Scalar>());
              acc += v * v;
            },
            zz);
        Kokkos::parallel_reduce(
            "lensing::sample::pc_score_norm", policy,
            KOKKOS_LAMBDA(int r, int j, double& acc) { acc += double(s(r, j)) * double(s(r, j)); }, ss);
        if (!std::isfinite(ss) || !(ss > 0))
          throw std::runtime_error(std::string(where) + ": the score's squared norm over the batch is " +
                                   std::to_string(ss) + " at sigma = " + std::to_string(double(sigma_next)) +
                                   " (diverged chains, or a score that vanishes everywhere)");
        double const eps = std::min(2 * opt_.snr * opt_.snr * zz / ss, opt_.max_step);
        trace.corrector_steps.push_back(eps);
        Scalar const drift = Scalar(eps), noise = Scalar(std::sqrt(2 * eps));
        Kokkos::parallel_for(
            "lensing::sample::pc_corrector", policy, KOKKOS_LAMBDA(int r, int j) {
              // The same stream as in the norms: the z whose norm set eps.
              random::Stream z(random::stream_key(seed, random::purpose_langevin, key_a, std::uint64_t(r) * d + j));
              x(r, j) += drift * s(r, j) + noise * z.template normal<Scalar>();
            });
      }
      space.fence();
      if (opt_.progress)
        std::fprintf(stderr, "lensing::PredictorCorrector: level %d / %d (sigma = %g) done\n", i + 2, levels,
                     double(sigma_next));
    }
    return trace;
  }

  PredictorCorrectorOptions const& options() const { return opt_; }

 private:
  static constexpr std::uint64_t offset = std::uint64_t(1) << 62;
  void check_shape(View2D<Scalar, MemorySpace> const& x, char const* where) const {
    check_argument(int(x.extent(0)) == n_ && int(x.extent(1)) == d_, where,
                   "x must have shape (num_samples, dimension)");
  }
  PredictorCorrectorOptions opt_;
  int n_, d_;
  View2D<Scalar, MemorySpace> s_;
};

}  // namespace lensing

#endif  // LENSING_SAMPLE_PREDICTOR_CORRECTOR_HPP
