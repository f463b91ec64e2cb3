#ifndef LENSING_NN_TENSOR_HPP
#define LENSING_NN_TENSOR_HPP

/// \file
/// Tensor conventions of lensing's neural-network core, shapes, and the
/// seeded weight initialisers.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

namespace lensing {
namespace nn {

//----------------------------------------------------------------------------
// Tensors.

/// Activation tensor of every layer: NCHW, batch first, row-major.
///
/// Every layer reads and writes `Tensor<Scalar, MemorySpace>` =
/// `View4D<Scalar, MemorySpace>` (Kokkos::LayoutRight), element (n, c, h, w)
/// at `((n*C + c)*H + h)*W + w`, the PyTorch NCHW convention, so weights and
/// tensors can be exchanged with PyTorch by plain memory copies.  Vectors
/// (features) are tensors of shape (N, F, 1, 1); a dense layer reads any
/// (N, C, H, W) tensor as the row-major matrix (N, C*H*W) (what Flatten
/// produces), so matrices are row-major with the batch as the leading index.
/// Scalar is float or double.
template <class Scalar, class MemorySpace>
using Tensor = View4D<Scalar, MemorySpace>;

/// Flat parameter (or gradient, or optimizer-state) vector.
template <class Scalar, class MemorySpace>
using ParamVector = View1D<Scalar, MemorySpace>;

/// Shape (n, c, h, w) of an NCHW tensor.
struct Shape4 {
  int n = 0, c = 0, h = 0, w = 0;
  /// Elements per sample, c*h*w.
  long per_sample() const { return static_cast<long>(c) * h * w; }
  /// Total elements, n*c*h*w.
  long size() const { return static_cast<long>(n) * per_sample(); }
  friend bool operator==(Shape4 const& a, Shape4 const& b) {
    return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w;
  }
  friend bool operator!=(Shape4 const& a, Shape4 const& b) { return !(a == b); }
  /// "(n, c, h, w)".
  std::string str() const {
    std::ostringstream s;
    s << "(" << n << ", " << c << ", " << h << ", " << w << ")";
    return s.str();
  }
};

/// Shape of a 4-D view.
template <class View>
Shape4 shape_of(View const& v) {
  static_assert(View::rank == 4, "lensing::nn::shape_of: a rank-4 (NCHW) view is required");
  return Shape4{static_cast<int>(v.extent(0)), static_cast<int>(v.extent(1)), static_cast<int>(v.extent(2)),
                static_cast<int>(v.extent(3))};
}

/// Throw std::invalid_argument("<where>: <name> has shape ..., expected ...") unless equal.
template <class View>
void check_shape(View const& v, Shape4 const& expected, char const* where, char const* name) {
  Shape4 const s = shape_of(v);
  if (s != expected) {
    throw_invalid_argument(where, std::string(name) + " has shape " + s.str() + ", expected " + expected.str());
  }
}

/// All extents >= 1.
inline void check_valid_shape(Shape4 const& s, char const* where) {
  check_argument(s.n >= 1 && s.c >= 1 && s.h >= 1 && s.w >= 1, where,
                 "input shape " + s.str() + " must have every extent >= 1");
}

//----------------------------------------------------------------------------
// Initialisers.

/// Distribution of an initialiser.
enum class Init {
  he_normal,       ///< N(0, 2/fan_in)       (He et al. 2015, ReLU-family nets)
  he_uniform,      ///< U(-a, a), a = sqrt(6/fan_in)
  xavier_normal,   ///< N(0, 2/(fan_in+fan_out))   (Glorot & Bengio 2010)
  xavier_uniform,  ///< U(-a, a), a = sqrt(6/(fan_in+fan_out))
  zeros,
  ones
};

/// Fill `w` with draws of `init` for a layer of fan_in inputs and fan_out outputs.
///
/// Element i is drawn from the stream random::stream_key(seed,
/// purpose_weight_init, i) of core/random.hpp (on the host, then copied to
/// `w`'s memory space): the values depend only on (seed, init, fan_in,
/// fan_out, i), not on the execution space, the number of threads or the
/// size of `w`.  He: std = sqrt(2/fan_in)
/// (He, Zhang, Ren & Sun 2015, arXiv:1502.01852); Xavier/Glorot: variance
/// 2/(fan_in+fan_out) (Glorot & Bengio 2010).
template <class Scalar, class MemorySpace>
void initialize(ParamVector<Scalar, MemorySpace> const& w, Init init, long fan_in, long fan_out, std::uint64_t seed) {
  char const* where = "lensing::nn::initialize";
  check_count(fan_in, 1, where, "fan_in");
  check_count(fan_out, 1, where, "fan_out");
  auto h = Kokkos::create_mirror_view(w);
  if (init == Init::zeros || init == Init::ones) {
    Kokkos::deep_copy(h, init == Init::ones ? Scalar(1) : Scalar(0));
  } else {
    double const fi = double(fan_in), fo = double(fan_out);
    bool const normal = init == Init::he_normal || init == Init::xavier_normal;
    double const var = (init == Init::he_normal || init == Init::he_uniform) ? 2.0 / fi : 2.0 / (fi + fo);
    double const sd = std::sqrt(var), a = std::sqrt(3.0 * var);
    for (std::size_t i = 0; i < h.extent(0); ++i) {
      random::Stream r(random::stream_key(seed, random::purpose_weight_init, i));
      double const v = normal ? sd * r.normal<double>() : a * (2.0 * r.uniform<double>() - 1.0);
      h(i) = static_cast<Scalar>(v);
    }
  }
  Kokkos::deep_copy(w, h);
}

/// Seed of child `child` of a composite layer with seed `seed` (layer i of a
/// Sequential, the branches of a Concat or Residual): the child seed
/// random::stream_key(seed, purpose_layer_seed, child), so that every layer
/// of a network tree draws from its own streams.
inline std::uint64_t child_seed(std::uint64_t seed, std::uint64_t child) {
  return random::stream_key(seed, random::purpose_layer_seed, child);
}

/// y[n] = [a[n], b[n]]: the samples of two NCHW tensors with the same batch
/// size, each flattened per sample (C, H, W contiguous), joined per sample.
/// For equal H and W this is the concatenation along channels; used by
/// Concat (channels) and TwoInput (flattened branch outputs).
template <class ExecutionSpace, class Scalar, class MemorySpace>
void join_samples(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& a,
                  Tensor<Scalar, MemorySpace> const& b, Tensor<Scalar, MemorySpace> const& y) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>, "lensing::nn::join_samples: inaccessible tensors");
  long const pa = long(a.extent(1)) * a.extent(2) * a.extent(3), pb = long(b.extent(1)) * b.extent(2) * b.extent(3);
  Scalar const* ap = a.data();
  Scalar const* bp = b.data();
  Scalar* yp = y.data();
  Kokkos::parallel_for(
      "lensing::nn::join_samples",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(y.size())), KOKKOS_LAMBDA(long i) {
        long const n = i / (pa + pb), r = i % (pa + pb);
        yp[i] = r < pa ? ap[n * pa + r] : bp[n * pb + (r - pa)];
      });
}

/// The inverse of join_samples: a[n] = the first part of y[n], b[n] the rest.
template <class ExecutionSpace, class Scalar, class MemorySpace>
void split_samples(ExecutionSpace const& space, Tensor<Scalar, MemorySpace> const& y,
                   Tensor<Scalar, MemorySpace> const& a, Tensor<Scalar, MemorySpace> const& b) {
  static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>, "lensing::nn::split_samples: inaccessible tensors");
  long const pa = long(a.extent(1)) * a.extent(2) * a.extent(3), pb = long(b.extent(1)) * b.extent(2) * b.extent(3);
  Scalar* ap = a.data();
  Scalar* bp = b.data();
  Scalar const* yp = y.data();
  Kokkos::parallel_for(
      "lensing::nn::split_samples",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(y.size())), KOKKOS_LAMBDA(long i) {
        long const n = i / (pa + pb), r = i % (pa + pb);
        if (r < pa)
          ap[n * pa + r] = yp[i];
        else
          bp[n * pb + (r - pa)] = yp[i];
      });
}

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_TENSOR_HPP
