// lensing::allocate_view: the element count is checked against the span Kokkos
// computes before anything is allocated.
#include <lensing/core/views.hpp>

#include <lensing_test.hpp>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

LENSING_TEST_CASE_TEMPLATE("allocate_view refuses extents Kokkos cannot index", Config, lensing::test::AllConfigs) {
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  using V3 = lensing::View3D<Scalar, Mem>;
  using V4 = lensing::View4D<Scalar, Mem>;
  // Element counts that are multiples of 2^32: Kokkos 3.4.1 computes a span of
  // 0 for these LayoutRight views (its span is a 32-bit product), so without
  // the guard they would "allocate" 0 bytes.  The guard throws before
  // allocating (a successful allocation here would take 16-48 GiB).
  for (auto e : {std::array<long, 3>{1024, 2048, 2048}, {4096, 1024, 1024}, {3, 65536, 65536}, {1, 65536, 65536}}) {
    CAPTURE(e[0]);
    CAPTURE(e[1]);
    std::string const m = lensing::test::error_message(
        [&] { lensing::allocate_view<V3>("lensing::test", "images", true, e[0], e[1], e[2]); });
    CHECK(m.find("lensing::test: images of extents (" + std::to_string(e[0]) + ", ") == 0);
    CHECK_THROWS_AS(lensing::allocate_view<V3>("lensing::test", "images", false, e[0], e[1], e[2]), std::length_error);
  }
  CHECK_THROWS_AS(lensing::allocate_view<V4>("lensing::test", "t", true, 16, 64, 2048, 2048), std::length_error);
  // Products that overflow 64 bits (elements, or bytes).
  long const big = 1L << 40;
  CHECK_THROWS_AS(lensing::allocate_view<V3>("lensing::test", "x", true, big, big, 2), std::length_error);
  CHECK_THROWS_AS(lensing::allocate_view<V3>("lensing::test", "x", true, 1L << 31, 1L << 31, 2), std::length_error);
  CHECK_THROWS_AS(lensing::checked_element_count("lensing::test", "x", sizeof(Scalar), std::size_t(1) << 62, 1),
                  std::length_error);
  CHECK_THROWS_AS(lensing::allocate_view<V3>("lensing::test", "x", true, -1, 4, 4), std::invalid_argument);
  // Ordinary sizes allocate, zero-filled when asked, and empty views are fine.
  auto const v = lensing::allocate_view<V3>("lensing::test", "v", true, 3, 4, 5);
  CHECK(v.span() == 60);
  CHECK(v.extent(0) == 3);
  CHECK(v.extent(2) == 5);
  CHECK(v.label() == "v");
  auto const h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  int nonzero = 0;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 5; ++k)
        nonzero += h(i, j, k) != Scalar(0);
  CHECK(nonzero == 0);
  CHECK(lensing::allocate_view<V3>("lensing::test", "e", false, 0, 4, 5).span() == 0);
  CHECK(lensing::allocate_view<lensing::View1D<Scalar, Mem>>("lensing::test", "w", false, 7).extent(0) == 7);
  CHECK(lensing::checked_element_count("lensing::test", "x", sizeof(Scalar), 3, 4, 5) == 60);
}
