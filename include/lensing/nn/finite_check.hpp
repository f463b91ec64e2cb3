#ifndef LENSING_NN_FINITE_CHECK_HPP
#define LENSING_NN_FINITE_CHECK_HPP

/// \file
/// Input validation shared by the losses of loss_gaussian_full.hpp,
/// loss_mdn.hpp and vae.hpp: shapes of per-sample packed outputs, and a scan
/// for NaN/inf values before any arithmetic is done on them (so that a NaN
/// input is reported as std::invalid_argument instead of propagating into
/// the loss, and no ordered comparison with a NaN raises FE_INVALID).

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/nn/tensor.hpp>

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <cstring>
#include <string>

namespace lensing {
namespace nn {
namespace detail {

/// Whether x is finite, from its bits (exponent not all ones): unlike
/// isfinite, which compilers may lower to an ordered comparison
/// |x| <= max (raising FE_INVALID for NaN when vectorised), this never
/// touches the floating-point flags.
KOKKOS_INLINE_FUNCTION bool finite_bits(double x) {
  std::uint64_t u;
  std::memcpy(&u, &x, sizeof(u));
  return (u & 0x7ff0000000000000ULL) != 0x7ff0000000000000ULL;
}
KOKKOS_INLINE_FUNCTION bool finite_bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return (u & 0x7f800000U) != 0x7f800000U;
}

/// Throw std::invalid_argument("<where>: <name> has k non-finite values") unless
/// every one of the `n` values at `p` (accessible from ExecutionSpace) is finite.
template <class ExecutionSpace, class Scalar>
void check_all_finite(ExecutionSpace const& space, Scalar const* p, long n, char const* where, char const* name) {
  long bad = 0;
  Kokkos::parallel_reduce(
      "lensing::nn::check_all_finite", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n),
      KOKKOS_LAMBDA(long i, long& acc) { acc += finite_bits(p[i]) ? 0 : 1; }, bad);
  if (bad != 0)
    throw_invalid_argument(where, std::string(name) + " has " + std::to_string(bad) + " NaN or infinite values");
}

/// Checks of a loss whose output packs `per_sample` values per sample and
/// whose target has `d` columns: batch sizes agree, per-sample sizes agree,
/// grad (when given) has pred's shape, and pred and target are finite.
template <class ExecutionSpace, class P, class T, class G>
void check_packed_loss(ExecutionSpace const& space, P const& pred, T const& target, G const& grad, long per_sample,
                       long d, char const* where) {
  check_argument(long(pred.extent(0)) >= 1, where, "the batch is empty");
  check_argument(
      long(target.extent(0)) == long(pred.extent(0)), where,
      "target has " + std::to_string(target.extent(0)) + " rows, pred has batch " + std::to_string(pred.extent(0)));
  long const ps = long(pred.extent(1)) * long(pred.extent(2)) * long(pred.extent(3));
  check_argument(ps == per_sample, where,
                 "pred has " + std::to_string(ps) + " values per sample, expected " + std::to_string(per_sample) +
                     " for " + std::to_string(d) + " targets per sample");
  if (grad.data() != nullptr) check_shape(grad, shape_of(pred), where, "grad");
  check_all_finite(space, pred.data(), long(pred.size()), where, "pred");
  check_all_finite(space, target.data(), long(target.size()), where, "target");
}

}  // namespace detail
}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_FINITE_CHECK_HPP
