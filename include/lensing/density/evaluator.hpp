#ifndef LENSING_DENSITY_EVALUATOR_HPP
#define LENSING_DENSITY_EVALUATOR_HPP

/// \file
/// Host-side evaluation of a LogDensity (density/log_density.hpp) at a point
/// held in double on the host: the one bridge every optimizer, HMC / NUTS
/// chain (sample/hamiltonian.hpp), Langevin sampler and variational fit goes
/// through.
///
/// The evaluator owns the density-side buffers q and grad (built once in the
/// constructor), converts the host point to the density's Scalar, copies it to
/// the density's memory space, calls value_and_gradient(space, q, grad),
/// fences `space` and copies the gradient back.  A non-finite value or
/// gradient (or point) is reported as -infinity; floating-point exceptions are
/// held during the call, so a density evaluated far in the tails cannot trap.
/// One evaluator per host thread (it is not re-entrant).  The evaluator holds
/// its own `clone_density(density)` (log_density.hpp: density.clone() where
/// the density has one, so that work buffers are not shared between the
/// evaluators of parallel chains; a plain copy otherwise), and for a density
/// with `launches_kernels_v` it takes kernel_launch_mutex() around the clone
/// and around every evaluation, so that host backends are never entered from
/// two threads at once.

#include <lensing/core/errors.hpp>
#include <lensing/core/views.hpp>
#include <lensing/density/log_density.hpp>

#include <Kokkos_Core.hpp>

#include <cfenv>
#include <cmath>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

namespace lensing {

//----------------------------------------------------------------------------
/// log p(x) and grad log p(x) of a LogDensity at host points x (double).
template <class ExecutionSpace, class Density>
class DensityEvaluator {
  static_assert(check_log_density<Density, ExecutionSpace>(), "lensing::DensityEvaluator: see the messages above");
  using Scalar = typename Density::scalar_type;
  using Mem = typename Density::memory_space;
  using HostView = typename View1D<Scalar, Mem>::HostMirror;
  static constexpr bool host_memory = std::is_same<Mem, Kokkos::HostSpace>::value;

 public:
  /// Throws std::invalid_argument if density.dimension() < 1.
  DensityEvaluator(ExecutionSpace const& space, Density const& density, char const* where)
      : space_(space), density_(make_clone(density)), d_(density_.dimension()) {
    check_count(d_, 1, where, "density dimension()");
    if constexpr (host_memory) {
      // Unmanaged views over host vectors: no Kokkos allocation, so the
      // evaluator may be built in any host thread.
      q_store_.assign(std::size_t(d_), Scalar(0));
      g_store_.assign(std::size_t(d_), Scalar(0));
      q_dev_ = View1D<Scalar, Mem>(q_store_.data(), d_);
      g_dev_ = View1D<Scalar, Mem>(g_store_.data(), d_);
      q_host_ = q_dev_;
      g_host_ = g_dev_;
    } else {
      q_dev_ = View1D<Scalar, Mem>(
          Kokkos::view_alloc(std::string("lensing::DensityEvaluator::q"), Kokkos::WithoutInitializing), d_);
      g_dev_ = View1D<Scalar, Mem>(
          Kokkos::view_alloc(std::string("lensing::DensityEvaluator::grad"), Kokkos::WithoutInitializing), d_);
      q_host_ = Kokkos::create_mirror_view(q_dev_);
      g_host_ = Kokkos::create_mirror_view(g_dev_);
    }
  }

  int dimension() const { return d_; }
  long long evaluations() const { return n_; }

  /// log p(x), with grad[0..d) = d log p / dx; -HUGE_VAL (grad unspecified) if
  /// x, the value or the gradient is not finite.
  double operator()(double const* x, double* grad) {
    std::fenv_t env;
    std::feholdexcept(&env);
    double const lp = evaluate(x, grad);
    std::fesetenv(&env);
    return lp;
  }

  /// As operator(), for a caller that already holds the floating-point
  /// environment (feholdexcept) around a run of evaluations.
  double evaluate(double const* x, double* grad) {
    for (int i = 0; i < d_; ++i) {
      if (!std::isfinite(x[i])) return -HUGE_VAL;
      q_host_(i) = Scalar(x[i]);
    }
    std::unique_lock<std::recursive_mutex> lock;
    if constexpr (serialised) lock = std::unique_lock<std::recursive_mutex>(kernel_launch_mutex());
    if constexpr (!host_memory) Kokkos::deep_copy(space_, q_dev_, q_host_);
    Scalar const lp = density_.value_and_gradient(space_, q_dev_, g_dev_);
    if constexpr (!host_memory) Kokkos::deep_copy(space_, g_host_, g_dev_);
    space_.fence();
    ++n_;
    if constexpr (serialised) lock.unlock();
    if (!std::isfinite(lp)) return -HUGE_VAL;
    for (int i = 0; i < d_; ++i) {
      grad[i] = double(g_host_(i));
      if (!std::isfinite(grad[i])) return -HUGE_VAL;
    }
    return double(lp);
  }

 private:
  static constexpr bool serialised = launches_kernels_v<Density>;
  static Density make_clone(Density const& density) {
    if constexpr (serialised) {
      std::lock_guard<std::recursive_mutex> lock(kernel_launch_mutex());
      return clone_density(density);
    } else {
      return clone_density(density);
    }
  }

  ExecutionSpace space_;
  Density density_;
  int d_;
  long long n_ = 0;
  std::vector<Scalar> q_store_, g_store_;
  View1D<Scalar, Mem> q_dev_, g_dev_;
  HostView q_host_, g_host_;
};

}  // namespace lensing

#endif  // LENSING_DENSITY_EVALUATOR_HPP
