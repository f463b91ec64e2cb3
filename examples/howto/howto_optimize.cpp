// How to: find the maximum (MAP) of your own density with L-BFGS and Adam.
//
//   howto_optimize      (no arguments; exits 1 if a check fails)
//
// Optimizers take the same LogDensity as the samplers and *maximise* log p.
// Here log p = -[(1 - x)^2 + 100 (y - x^2)^2] (Rosenbrock's banana: a
// curved, badly scaled valley), maximum at (1, 1).  Checks: its gradient
// matches central differences; both optimizers report convergence and land
// within their gradient tolerance's reach of (1, 1) (Hessian eigenvalues at
// the optimum >= 0.4, so |x - 1| <= |grad| / 0.4).
#include <lensing/core/gradient_check.hpp>
#include <lensing/optim/adam.hpp>
#include <lensing/optim/lbfgs.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdio>

namespace {
struct Banana {
  using scalar_type = double;
  using memory_space = Kokkos::HostSpace;
  int dimension() const { return 2; }
  template <class Space>
  double value_and_gradient(Space const&, lensing::View1D<double, memory_space> const& q,
                            lensing::View1D<double, memory_space> const& grad) const {
    double const x = q(0), y = q(1), r = y - x * x;
    grad(0) = 2 * (1 - x) + 400 * x * r;
    grad(1) = -200 * r;
    return -((1 - x) * (1 - x) + 100 * r * r);
  }
};

bool report(char const* name, lensing::OptimizeResult const& r, double tol) {
  bool const ok = r.converged && std::fabs(r.x[0] - 1) < tol && std::fabs(r.x[1] - 1) < tol;
  std::printf("%-7s x = (%.8f, %.8f)  log p = %.3e  %d iterations, %lld evaluations, %.3f s: %s\n", name, r.x[0],
              r.x[1], r.value, r.iterations, r.evaluations, r.seconds, r.message.c_str());
  return ok;
}
}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard guard(argc, argv);
  Kokkos::DefaultHostExecutionSpace const space;
  Banana const density;
  bool ok = lensing::check_log_density_gradient(space, density, {-0.7, 0.2}).passed(1e-6);

  // L-BFGS: quasi-Newton with a strong-Wolfe line search.
  lensing::OptimizeOptions opt;
  opt.gradient_tolerance = 1e-8;  // stop when |grad log p|_inf <= 1e-8
  auto const lb = lensing::lbfgs(space, density, {-1.2, 1.0}, opt);
  ok = report("L-BFGS", lb, 1e-7) && ok;

  // Adam: first-order, step ~ learning rate (decaying), many cheap iterations.
  lensing::AdamOptions adam;
  adam.learning_rate = 0.02;
  adam.decay_steps = 5000;
  opt.max_iterations = 50000;
  opt.gradient_tolerance = 1e-5;
  auto const ad = lensing::adam(space, density, {-1.2, 1.0}, opt, adam);
  ok = report("Adam", ad, 1e-4) && ok;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
