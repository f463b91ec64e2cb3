#ifndef LENSING_TESTS_NN_GRADIENT_CHECK_HPP
#define LENSING_TESTS_NN_GRADIENT_CHECK_HPP

// The tests' names for the public gradient checkers (nn/gradient_check.hpp,
// core/gradient_check.hpp), plus expect_gradients: check_layer_gradients with
// the standard tolerance, reported through doctest.

#include <lensing/core/gradient_check.hpp>
#include <lensing/nn/gradient_check.hpp>

#include <lensing_test.hpp>

#include <string>
#include <vector>

namespace lensing {
namespace test {

using GradCheck = nn::LayerGradientCheck;
using nn::check_layer_gradients;
using nn::fill_normal;
using nn::loss_fd_error;

/// Indices to check: all of [0, n) when n <= max, else max spread evenly.
inline std::vector<long> pick(long n, long max) { return spread_indices(n, max); }

/// check_layer_gradients with the standard tolerance (1e-7 relative, double:
/// see the error model in nn/gradient_check.hpp), the errors reported through MESSAGE.
template <class Space, class Layer>
void expect_gradients(Space const& space, Layer const& layer, nn::Shape4 in, std::string const& what,
                      double x_scale = 1.0) {
  constexpr double grad_tol = 1e-7;
  auto const r = check_layer_gradients(space, layer, in, 7, 1e-5, 80, x_scale);
  MESSAGE(what << " on " << std::string(Space::name()) << ": input grad err " << r.input_error << " (" << r.inputs
               << " checked), param grad err " << r.param_error << " (" << r.params << " checked)");
  CHECK(r.inputs > 0);
  CHECK(r.input_error < grad_tol);
  CHECK(r.param_error < grad_tol);
  if (layer.num_params() > 0) CHECK(r.params > 0);
}

}  // namespace test
}  // namespace lensing

#endif
