#ifndef LENSING_OPTIM_LINE_SEARCH_HPP
#define LENSING_OPTIM_LINE_SEARCH_HPP

/// \file
/// Line search satisfying the strong Wolfe conditions (Nocedal & Wright,
/// "Numerical Optimization", 2nd ed., Algorithms 3.5 and 3.6, eq. 3.7):
///   phi(a) <= phi(0) + c1 a phi'(0),   |phi'(a)| <= c2 |phi'(0)|,
/// phi(a) = f(x + a p) for a descent direction p (phi'(0) < 0), 0 < c1 < c2 < 1.
/// Bracketing expands the step by 2 up to max_step; zoom interpolates with the
/// cubic of N&W eq. 3.59, safeguarded to the middle 80% of the bracket
/// (bisection otherwise).  A non-finite phi is treated as "too large".

#include <cmath>
#include <functional>
#include <utility>

namespace lensing {

/// Parameters of the strong-Wolfe line search.
struct LineSearchOptions {
  double c1 = 1e-4, c2 = 0.9;
  double max_step = 1e10;
  int max_evaluations = 40;
};

/// phi and phi' at a trial step.
struct LineSearchPoint {
  double alpha = 0, phi = 0, dphi = 0;
};

/// Strong-Wolfe step along a descent direction.  `phi(alpha)` returns a
/// LineSearchPoint (and may cache the state at alpha; the caller keeps the one
/// for the returned alpha).  `init` = phi at 0 (dphi < 0), `alpha1` the first
/// trial.  Returns {point, ok}: ok is false when no step satisfying the
/// conditions was found within max_evaluations (the point then is the best
/// sufficient-decrease step found, alpha = 0 if none).
template <class Phi>
std::pair<LineSearchPoint, bool> strong_wolfe_search(Phi&& phi, LineSearchPoint const& init, double alpha1,
                                                     LineSearchOptions const& o = {}) {
  double const f0 = init.phi, g0 = init.dphi;
  auto armijo = [&](LineSearchPoint const& p) { return std::isfinite(p.phi) && p.phi <= f0 + o.c1 * p.alpha * g0; };
  auto curvature = [&](LineSearchPoint const& p) { return std::isfinite(p.dphi) && std::fabs(p.dphi) <= -o.c2 * g0; };
  int evals = 0;
  LineSearchPoint best = init;  // best point with sufficient decrease (alpha = 0: none)
  best.alpha = 0;
  auto note = [&](LineSearchPoint const& p) {
    if (armijo(p) && p.phi < best.phi) best = p;
  };
  // Algorithm 3.6: zoom between lo (sufficient decrease, lowest phi so far) and hi.
  auto zoom = [&](LineSearchPoint lo, LineSearchPoint hi) -> std::pair<LineSearchPoint, bool> {
    while (evals < o.max_evaluations) {
      double const a = lo.alpha, b = hi.alpha, width = std::fabs(b - a);
      if (!(width > 1e-16 * std::max(1.0, std::fabs(a)))) break;
      double t = 0.5 * (a + b);
      if (std::isfinite(hi.phi) && std::isfinite(hi.dphi)) {
        double const d1 = lo.dphi + hi.dphi - 3 * (lo.phi - hi.phi) / (a - b);
        double const disc = d1 * d1 - lo.dphi * hi.dphi;
        if (disc >= 0) {
          double const d2 = (b > a ? 1.0 : -1.0) * std::sqrt(disc);
          double const den = hi.dphi - lo.dphi + 2 * d2;
          if (den != 0) {
            double const c = b - (b - a) * (hi.dphi + d2 - d1) / den;
            double const lo_end = std::min(a, b) + 0.1 * width, hi_end = std::max(a, b) - 0.1 * width;
            if (std::isfinite(c) && c >= lo_end && c <= hi_end) t = c;
          }
        }
      }
      LineSearchPoint const p = phi(t);
      ++evals;
      note(p);
      if (!armijo(p) || p.phi >= lo.phi) {
        hi = p;
      } else {
        if (curvature(p)) return {p, true};
        if (p.dphi * (hi.alpha - lo.alpha) >= 0) hi = lo;
        lo = p;
      }
    }
    return {best, false};
  };
  // Algorithm 3.5: bracketing.
  LineSearchPoint prev = init;
  prev.alpha = 0;
  double alpha = alpha1;
  for (int i = 1; evals < o.max_evaluations; ++i) {
    LineSearchPoint const p = phi(alpha);
    ++evals;
    note(p);
    if (!armijo(p) || (i > 1 && p.phi >= prev.phi)) return zoom(prev, p);
    if (curvature(p)) return {p, true};
    if (p.dphi >= 0) return zoom(p, prev);
    if (alpha >= o.max_step) return {p, false};
    prev = p;
    alpha = std::min(2 * alpha, o.max_step);
  }
  return {best, false};
}

}  // namespace lensing

#endif  // LENSING_OPTIM_LINE_SEARCH_HPP
