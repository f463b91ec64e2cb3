#ifndef LENSING_NN_POOLING_HPP
#define LENSING_NN_POOLING_HPP

#include <lensing/core/math.hpp>
#include <lensing/nn/layer.hpp>

namespace lensing {
namespace nn {

namespace detail {
/// Pooling shape: floor((H - k)/s) + 1 (no padding, PyTorch's default).
inline Shape4 pool_output(Shape4 const& in, int k, int s, char const* where) {
  check_valid_shape(in, where);
  check_argument(in.h >= k && in.w >= k, where,
                 "input " + in.str() + " is smaller than the pooling window " + std::to_string(k));
  return Shape4{in.n, in.c, (in.h - k) / s + 1, (in.w - k) / s + 1};
}
}  // namespace detail

/// Max pooling over k x k windows with stride s (default s = k), no padding.
///
/// y[n,c,i,j] = max_{p,q<k} x[n,c,i s+p, j s+q]; output ⌊(H−k)/s⌋+1.  Backward
/// routes dy to the first maximum of each window (re-found from x), summing
/// when windows overlap (s < k).  The gradient is that of the piecewise
/// linear max; it is undefined at ties.
template <class Scalar, class MemorySpace>
class MaxPool2D : public LayerBase<Scalar, MemorySpace> {
 public:
  using typename LayerBase<Scalar, MemorySpace>::tensor_type;
  using typename LayerBase<Scalar, MemorySpace>::vector_type;
  explicit MaxPool2D(int k, int s = 0) : k_(k), s_(s == 0 ? k : s) {
    check_count(k, 1, "lensing::nn::MaxPool2D", "kernel");
    check_count(s_, 1, "lensing::nn::MaxPool2D", "stride");
  }
  Shape4 output_shape(Shape4 const& in) const { return detail::pool_output(in, k_, s_, "lensing::nn::MaxPool2D"); }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::MaxPool2D::forward: inaccessible tensors");
    detail::check_forward(*this, x, y, "lensing::nn::MaxPool2D::forward");
    long const nc = long(x.extent(0)) * long(x.extent(1)), h = x.extent(2), w = x.extent(3), oh = y.extent(2),
               ow = y.extent(3), k = k_, s = s_;
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    Kokkos::parallel_for(
        "lensing::nn::MaxPool2D::forward",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, nc * oh), KOKKOS_LAMBDA(long r) {
          long const plane = r / oh, i = r % oh;
          Scalar const* xb = xp + plane * h * w + i * s * w;
          Scalar* yr = yp + plane * oh * ow + i * ow;
          for (long j = 0; j < ow; ++j) {
            Scalar m = xb[j * s];
            for (long p = 0; p < k; ++p)
              for (long q = 0; q < k; ++q) {
                Scalar const v = xb[p * w + j * s + q];
                m = v > m ? v : m;
              }
            yr[j] = m;
          }
        });
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::MaxPool2D::backward: inaccessible tensors");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::MaxPool2D::backward");
    if (dx.data() == nullptr) return;
    long const nc = long(x.extent(0)) * long(x.extent(1)), h = x.extent(2), w = x.extent(3), oh = y.extent(2),
               ow = y.extent(3), k = k_, s = s_;
    Scalar const* xp = x.data();
    Scalar const* dyp = dy.data();
    Scalar* dxp = dx.data();
    if (k == 2 && s == 2) {
      // 2x2 windows, stride 2 (they tile the plane): each element of dx is
      // written once, dy where it is its window's first maximum in scan
      // order (as the general loop below picks it) and 0 elsewhere, chosen
      // by selects, not data-dependent branches (the general loop's zero
      // pass, branches and scatter took 13 % of the Hezaveh-style CNN's
      // training step).
      Kokkos::parallel_for(
          "lensing::nn::MaxPool2D::backward",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, nc), KOKKOS_LAMBDA(long plane) {
            Scalar const* xb = xp + plane * h * w;
            Scalar const* gb = dyp + plane * oh * ow;
            Scalar* db = dxp + plane * h * w;
            for (long i = 0; i < oh; ++i) {
              Scalar const* x0 = xb + 2 * i * w;
              Scalar const* x1 = x0 + w;
              Scalar* d0 = db + 2 * i * w;
              Scalar* d1 = d0 + w;
              for (long j = 0; j < ow; ++j) {
                Scalar const a = x0[2 * j], b = x0[2 * j + 1], c = x1[2 * j], e = x1[2 * j + 1];
                Scalar const g = gb[i * ow + j];
                int t = 0;
                Scalar m = a;
                t = b > m ? 1 : t;
                m = b > m ? b : m;
                t = c > m ? 2 : t;
                m = c > m ? c : m;
                t = e > m ? 3 : t;
                d0[2 * j] = t == 0 ? g : Scalar(0);
                d0[2 * j + 1] = t == 1 ? g : Scalar(0);
                d1[2 * j] = t == 2 ? g : Scalar(0);
                d1[2 * j + 1] = t == 3 ? g : Scalar(0);
              }
              for (long j = 2 * ow; j < w; ++j) {  // an odd width's last column
                d0[j] = Scalar(0);
                d1[j] = Scalar(0);
              }
            }
            for (long i = 2 * oh * w; i < h * w; ++i)  // an odd height's last row
              db[i] = Scalar(0);
          });
      return;
    }
    // One work item per (n, c) plane: overlapping windows then need no atomics.
    Kokkos::parallel_for(
        "lensing::nn::MaxPool2D::backward", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, nc),
        KOKKOS_LAMBDA(long plane) {
          Scalar const* xb = xp + plane * h * w;
          Scalar* db = dxp + plane * h * w;
          for (long i = 0; i < h * w; ++i)
            db[i] = Scalar(0);
          for (long i = 0; i < oh; ++i)
            for (long j = 0; j < ow; ++j) {
              long best = i * s * w + j * s;
              for (long p = 0; p < k; ++p)
                for (long q = 0; q < k; ++q) {
                  long const at = (i * s + p) * w + j * s + q;
                  if (xb[at] > xb[best]) best = at;
                }
              db[best] += dyp[plane * oh * ow + i * ow + j];
            }
        });
  }

 private:
  int k_, s_;
};

/// Average pooling over k x k windows with stride s (default s = k), no padding.
///
/// y[n,c,i,j] = k⁻² Σ_{p,q<k} x[n,c,i s+p, j s+q]; backward spreads dy/k² over
/// each window.
template <class Scalar, class MemorySpace>
class AvgPool2D : public LayerBase<Scalar, MemorySpace> {
 public:
  using typename LayerBase<Scalar, MemorySpace>::tensor_type;
  using typename LayerBase<Scalar, MemorySpace>::vector_type;
  explicit AvgPool2D(int k, int s = 0) : k_(k), s_(s == 0 ? k : s) {
    check_count(k, 1, "lensing::nn::AvgPool2D", "kernel");
    check_count(s_, 1, "lensing::nn::AvgPool2D", "stride");
  }
  Shape4 output_shape(Shape4 const& in) const { return detail::pool_output(in, k_, s_, "lensing::nn::AvgPool2D"); }

  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::AvgPool2D::forward: inaccessible tensors");
    detail::check_forward(*this, x, y, "lensing::nn::AvgPool2D::forward");
    long const nc = long(x.extent(0)) * long(x.extent(1)), h = x.extent(2), w = x.extent(3), oh = y.extent(2),
               ow = y.extent(3), k = k_, s = s_;
    Scalar const inv = Scalar(1) / Scalar(k * k);
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    Kokkos::parallel_for(
        "lensing::nn::AvgPool2D::forward",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, nc * oh), KOKKOS_LAMBDA(long r) {
          long const plane = r / oh, i = r % oh;
          Scalar const* xb = xp + plane * h * w + i * s * w;
          Scalar* yr = yp + plane * oh * ow + i * ow;
          for (long j = 0; j < ow; ++j) {
            Scalar m = Scalar(0);
            for (long p = 0; p < k; ++p)
              for (long q = 0; q < k; ++q)
                m += xb[p * w + j * s + q];
            yr[j] = m * inv;
          }
        });
  }

  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::AvgPool2D::backward: inaccessible tensors");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::AvgPool2D::backward");
    if (dx.data() == nullptr) return;
    long const nc = long(x.extent(0)) * long(x.extent(1)), h = x.extent(2), w = x.extent(3), oh = y.extent(2),
               ow = y.extent(3), k = k_, s = s_;
    Scalar const inv = Scalar(1) / Scalar(k * k);
    Scalar const* dyp = dy.data();
    Scalar* dxp = dx.data();
    Kokkos::parallel_for(
        "lensing::nn::AvgPool2D::backward", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, nc),
        KOKKOS_LAMBDA(long plane) {
          Scalar* db = dxp + plane * h * w;
          for (long i = 0; i < h * w; ++i)
            db[i] = Scalar(0);
          for (long i = 0; i < oh; ++i)
            for (long j = 0; j < ow; ++j) {
              Scalar const g = dyp[plane * oh * ow + i * ow + j] * inv;
              for (long p = 0; p < k; ++p)
                for (long q = 0; q < k; ++q)
                  db[(i * s + p) * w + j * s + q] += g;
            }
        });
  }

 private:
  int k_, s_;
};

/// Global average pooling: (N, C, H, W) -> (N, C, 1, 1), y = mean over H, W.
template <class Scalar, class MemorySpace>
class GlobalAvgPool : public LayerBase<Scalar, MemorySpace> {
 public:
  using typename LayerBase<Scalar, MemorySpace>::tensor_type;
  using typename LayerBase<Scalar, MemorySpace>::vector_type;
  Shape4 output_shape(Shape4 const& in) const {
    check_valid_shape(in, "lensing::nn::GlobalAvgPool");
    return Shape4{in.n, in.c, 1, 1};
  }
  template <class ExecutionSpace>
  void forward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::GlobalAvgPool::forward: inaccessible tensors");
    detail::check_forward(*this, x, y, "lensing::nn::GlobalAvgPool::forward");
    long const nc = long(x.extent(0)) * long(x.extent(1)), hw = long(x.extent(2)) * long(x.extent(3));
    Scalar const* xp = x.data();
    Scalar* yp = y.data();
    Kokkos::parallel_for(
        "lensing::nn::GlobalAvgPool::forward",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, nc), KOKKOS_LAMBDA(long plane) {
          Scalar s = Scalar(0);
          for (long i = 0; i < hw; ++i)
            s += xp[plane * hw + i];
          yp[plane] = s / Scalar(hw);
        });
  }
  template <class ExecutionSpace>
  void backward(ExecutionSpace const& space, tensor_type const& x, tensor_type const& y, tensor_type const& dy,
                tensor_type const& dx, vector_type const& dparams) {
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::nn::GlobalAvgPool::backward: inaccessible tensors");
    detail::check_backward(*this, x, y, dy, dx, dparams, "lensing::nn::GlobalAvgPool::backward");
    if (dx.data() == nullptr) return;
    long const total = long(x.size()), hw = long(x.extent(2)) * long(x.extent(3));
    Scalar const* dyp = dy.data();
    Scalar* dxp = dx.data();
    Kokkos::parallel_for(
        "lensing::nn::GlobalAvgPool::backward",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, total),
        KOKKOS_LAMBDA(long i) { dxp[i] = dyp[i / hw] / Scalar(hw); });
  }
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_POOLING_HPP
