// Image scaling shared by the example programs that train on the streaming
// simulator: ScaledSource divides the images of another DataSource by a
// constant (the network sees pixel values of order one), and
// pilot_pixel_sd measures that constant on a pilot stream.
#ifndef LENSING_EXAMPLES_COMMON_SCALED_SOURCE_HPP
#define LENSING_EXAMPLES_COMMON_SCALED_SOURCE_HPP

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <cmath>

namespace examples {

/// A DataSource whose batches are those of `inner` with the images divided
/// by `scale`, in place on the same execution space.
template <class Inner>
class ScaledSource {
 public:
  using scalar_type = typename Inner::scalar_type;
  using memory_space = typename Inner::memory_space;
  ScaledSource(Inner& inner, double scale) : m_inner(inner), m_inv(scalar_type(1.0 / scale)) {}
  int batch_size() const { return m_inner.batch_size(); }
  int num_labels() const { return m_inner.num_labels(); }
  std::array<int, 3> sample_shape() const { return m_inner.sample_shape(); }
  long batches_per_epoch() const { return m_inner.batches_per_epoch(); }
  void start_epoch(long e) { m_inner.start_epoch(e); }
  template <class ExecutionSpace>
  auto next(ExecutionSpace const& space) {
    auto b = m_inner.next(space);
    scalar_type* p = b.images.data();
    scalar_type const inv = m_inv;
    Kokkos::parallel_for(
        "examples::ScaledSource",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(b.images.size())),
        KOKKOS_LAMBDA(long i) { p[i] *= inv; });
    return b;
  }
  Inner& inner() { return m_inner; }

 private:
  Inner& m_inner;
  scalar_type m_inv;
};

/// Standard deviation of the pixels of the next `batches` batches of `pilot`.
template <class ExecutionSpace, class Source>
double pilot_pixel_sd(ExecutionSpace const& space, Source& pilot, int batches) {
  double s = 0, ss = 0;
  long n = 0;
  for (int b = 0; b < batches; ++b) {
    auto const x = pilot.next(space);
    space.fence();
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x.images);
    for (std::size_t i = 0; i < h.size(); ++i) {
      s += double(h.data()[i]);
      ss += double(h.data()[i]) * double(h.data()[i]);
      ++n;
    }
  }
  double const m = s / double(n);
  return std::sqrt(std::max(ss / double(n) - m * m, 1e-30));
}

}  // namespace examples

#endif  // LENSING_EXAMPLES_COMMON_SCALED_SOURCE_HPP
