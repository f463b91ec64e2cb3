#ifndef LENSING_NN_MADE_HPP
#define LENSING_NN_MADE_HPP

/// \file
/// MADE, the masked autoencoder for distribution estimation (Germain,
/// Gregor, Murray & Larochelle 2015, arXiv:1502.03509): dense layers whose
/// weights are multiplied by fixed binary masks so that output i of the
/// network depends only on inputs 0..i−1 — the autoregressive networks of
/// an inverse autoregressive flow (iaf.hpp).
///
/// Degrees (1-based, for D inputs in their natural order):
///  - input j has degree m(j) = j + 1 (1..D);
///  - hidden unit k has degree m(k) = 1 + (k mod max(1, D − 1)) (1..D−1, each
///    used about equally: the deterministic assignment of Germain et al.'s
///    sec. 4, so no degree is left without units when H ≥ D − 1);
///  - output unit o (per_dim outputs per input: o = r D + i, e.g. (m, s) of
///    IAF) has degree i + 1.
/// Masks: a hidden layer connects unit k to unit j of the layer below when
/// m(k) ≥ m(j); the output layer when m(o) > m(j) (strictly).  Then, by
/// induction over the layers, hidden unit k depends only on inputs of degree
/// ≤ m(k), and output i only on inputs of degree < i + 1, i.e. inputs j < i:
/// ∂ out_i / ∂ in_j = 0 for j ≥ i (out_0 is a constant).

#include <lensing/core/errors.hpp>
#include <lensing/nn/activation.hpp>
#include <lensing/nn/gemm.hpp>
#include <lensing/nn/layer.hpp>
#include <lensing/nn/sequential.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace lensing {
namespace nn {

//----------------------------------------------------------------------------
// Degrees and masks (host).

/// Degrees of the D inputs: 1..D.
inline std::vector<int> made_input_degrees(int d) {
  check_count(d, 1, "lensing::nn::made_input_degrees", "d");
  std::vector<int> m(static_cast<std::size_t>(d));
  for (int j = 0; j < d; ++j)
    m[std::size_t(j)] = j + 1;
  return m;
}
/// Degrees of h hidden units for D inputs: 1 + (k mod max(1, D − 1)).
inline std::vector<int> made_hidden_degrees(int d, int h) {
  check_count(d, 1, "lensing::nn::made_hidden_degrees", "d");
  check_count(h, 1, "lensing::nn::made_hidden_degrees", "h");
  int const span = std::max(1, d - 1);
  std::vector<int> m(static_cast<std::size_t>(h));
  for (int k = 0; k < h; ++k)
    m[std::size_t(k)] = 1 + k % span;
  return m;
}
/// Degrees of per_dim × D outputs (output r D + i has degree i + 1).
inline std::vector<int> made_output_degrees(int d, int per_dim) {
  check_count(d, 1, "lensing::nn::made_output_degrees", "d");
  check_count(per_dim, 1, "lensing::nn::made_output_degrees", "per_dim");
  std::vector<int> m(std::size_t(d) * per_dim);
  for (std::size_t o = 0; o < m.size(); ++o)
    m[o] = int(o % std::size_t(d)) + 1;
  return m;
}
/// Mask (out × in, row-major, 1 = connected): out unit o sees in unit j when
/// m_out(o) ≥ m_in(j), or m_out(o) > m_in(j) when `strict` (output layer).
inline std::vector<unsigned char> made_mask(std::vector<int> const& in_degrees, std::vector<int> const& out_degrees,
                                            bool strict) {
  std::vector<unsigned char> m(out_degrees.size() * in_degrees.size());
  for (std::size_t o = 0; o < out_degrees.size(); ++o)
    for (std::size_t j = 0; j < in_degrees.size(); ++j)
      m[o * in_degrees.size() + j] =
          (strict ? out_degrees[o] > in_degrees[j] : out_degrees[o] >= in_degrees[j]) ? 1 : 0;
  return m;
}

//----------------------------------------------------------------------------
// The masked dense layer.

/// Dense layer with a fixed binary mask on its weights: y = (W ⊙ M) x + b.
///
/// Input any (N, C, H, W) read as (N, in_features); output (N,
/// out_features, 1, 1).  Parameters, flat: W (out × in, row-major, as
/// Dense) then b (out); masked-out weights are parameters too but never
/// used, and their gradient is 0.  Backward: dX = dY (W ⊙ M), dW = (dYᵀ X)
/// ⊙ M, db = Σ_n dY — GEMMs as Dense.  Initialised He-normal with the fan-in
/// of the unmasked layer (Germain et al. do the same), bias 0.
template <class Scalar, class MemorySpace>
class MaskedDense : public LayerBase<Scalar, MemorySpace> {
  using base = LayerBase<Scalar, MemorySpace>;

 public:
  using typename base::tensor_type;
  using typename base::vector_type;

  /// `mask`: out_features × in_features values, row-major, nonzero = connected.
  MaskedDense(int in_features, int out_features, std::vector<unsigned char> const& mask, Init init = Init::he_normal)
      : in_(in_features), out_(out_features), init_(init) {
    char const* where = "lensing::nn::MaskedDense";
    check_count(in_features, 1, where, "in_features");
    check_count(out_features, 1, where, "out_features");
    check_argument(mask.size() == std::size_t(in_features) * std::size_t(out_features), where,
                   "the mask has " + std::to_string(mask.size()) + " values, expected out_features x in_features = " +
                       std::to_string(long(in_features) * out_features));
    long const nw = long(out_) * in_;
    this->params_ = vector_type("lensing::nn::MaskedDense::params", nw + out_);
    mask_ = vector_type("lensing::nn::MaskedDense::mask", nw);
    wm_ = vector_type("lensing::nn::MaskedDense::masked_weights", nw);
    auto h = Kokkos::create_mirror_view(mask_);
    for (long i = 0; i < nw; ++i)
      h(i) = mask[std::size_t(i)] ? Scalar(1) : Scalar(0);
    Kokkos::deep_copy(mask_, h);
  }
  int in_features() const { return in_; }
  int out_features() const { return out_; }
  /// The mask, out × in (1 = connected).
  vector_type mask() const { return mask_; }

  Shape4 output_shape(Shape4 const& in) const {
    check_valid_shape(in, "lensing::nn::MaskedDense");
    check_argument(in.per_sample() == in_, "lensing::nn::MaskedDense",
                   "input " + in.str() + " has " + std::to_string(in.per_sample()) + " features per sample, expected " +
                       std::to_string(in_));
    return Shape4{in.n, out_, 1, 1};
  }

  void initialize(std::uint64_t seed) {
    long const nw = static_cast<long>(out_) * in_;
    auto w = Kokkos::subview(this->params_, Kokkos::make_pair(0L, nw));
    auto b = Kokkos::subview(this->params_, Kokkos::make_pair(nw, nw + out_));
    nn::initialize(vector_type(w), init_, in_, out_, seed);
    Kokkos::deep_copy(b, Scalar(0));
  }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::MaskedDense::forward: the tensors are not accessible from this execution space");
    detail::check_forward(*this, x, y, "lensing::nn::MaskedDense::forward");
    long const n = static_cast<long>(x.extent(0)), in = in_, out = out_;
    Scalar const* p = this->params_.data();
    Scalar const* m = mask_.data();
    Scalar* wm = wm_.data();
    Scalar* yp = y.data();
    Kokkos::parallel_for(
        "lensing::nn::MaskedDense::mask",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, out * in),
        KOKKOS_LAMBDA(long i) { wm[i] = p[i] * m[i]; });
    Kokkos::parallel_for(
        "lensing::nn::MaskedDense::bias",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * out),
        KOKKOS_LAMBDA(long i) { yp[i] = p[out * in + i % out]; });
    gemm(space, false, true, n, out, in, Scalar(1), x.data(), in, wm, in, Scalar(1), yp, out);
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::MaskedDense::backward: the tensors are not accessible from this execution space");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::MaskedDense::backward");
    long const n = static_cast<long>(x.extent(0)), in = in_, out = out_;
    Scalar* g = dparams.data();
    Scalar const* dyp = dy.data();
    Scalar const* m = mask_.data();
    gemm(space, true, false, out, in, n, Scalar(1), dyp, out, x.data(), in, Scalar(0), g, in);
    Kokkos::parallel_for(
        "lensing::nn::MaskedDense::mask_grad",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, out * in),
        KOKKOS_LAMBDA(long i) { g[i] *= m[i]; });
    Kokkos::parallel_for(
        "lensing::nn::MaskedDense::bias_grad",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, out), KOKKOS_LAMBDA(long o) {
          Scalar s = Scalar(0);
          for (long i = 0; i < n; ++i)
            s += dyp[i * out + o];
          g[out * in + o] = s;
        });
    if (dx.data() != nullptr)
      gemm(space, false, false, n, in, out, Scalar(1), dyp, out, wm_.data(), in, Scalar(0), dx.data(), in);
  }

 private:
  int in_, out_;
  Init init_;
  vector_type mask_, wm_;  // the mask; W ⊙ M of the last forward (used by backward)
};

//----------------------------------------------------------------------------
// The MADE network.

/// A MADE of D inputs with two hidden layers of H units (ELU) and per_dim
/// outputs per input: MaskedDense(D→H) – ELU – MaskedDense(H→H) – ELU –
/// MaskedDense(H→per_dim D), masks from the degrees of the file comment.
/// Input (N, D, 1, 1) (or any shape of D values per sample); output (N,
/// per_dim D, 1, 1), output r D + i depending only on inputs j < i.
template <class Scalar, class MemorySpace>
auto make_made(int d, int hidden, int per_dim = 2) {
  char const* where = "lensing::nn::make_made";
  check_count(d, 1, where, "d");
  check_count(hidden, 1, where, "hidden");
  check_count(per_dim, 1, where, "per_dim");
  using MD = MaskedDense<Scalar, MemorySpace>;
  using E = ELU<Scalar, MemorySpace>;
  auto const mi = made_input_degrees(d), mh = made_hidden_degrees(d, hidden), mo = made_output_degrees(d, per_dim);
  return make_sequential(MD(d, hidden, made_mask(mi, mh, false)), E(), MD(hidden, hidden, made_mask(mh, mh, false)),
                         E(), MD(hidden, per_dim * d, made_mask(mh, mo, true), Init::xavier_normal));
}
/// The type of make_made's network.
template <class Scalar, class MemorySpace>
using Made = decltype(make_made<Scalar, MemorySpace>(1, 1));

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_MADE_HPP
