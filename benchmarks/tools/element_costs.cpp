// Cost per element of the operations the lens kernels' floors are written in
// (benchmarks/README.md): y[i] = f(x[i]) over 1024 elements in L1, through
// lensing::math, so on GCC/glibc hosts the loops call the same libmvec
// variants the pixel loops call (core/kokkos_compat.hpp).  Best of 7 blocks
// of 4000 passes, ns per element, on one pinned core:
//
//   K=/root/.cache/lensing/kokkos-3.4.1-openmp-serial-hsw   # any Kokkos install
//   cd benchmarks/tools && g++ -std=c++17 -O3 -fno-math-errno -march=native
//     -I../../include -I$K/include element_costs.cpp -o /tmp/ec   (one line)
//   taskset -c 1 /tmp/ec
//
// Build with -fopt-info-vec to see each loop vectorised.  `fma-reg`: FMAs in
// registers, no memory (see fma_throughput).  Not linked into anything.
#include <lensing/core/math.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace {

constexpr int n = 1024, passes = 4000, blocks = 7;

template <class Scalar, class F>
void report(char const* name, F f) {
  alignas(64) static Scalar x[n], y[n], z[n];
  for (int i = 0; i < n; ++i) {
    x[i] = Scalar(0.3) + Scalar(2) * Scalar(i) / Scalar(n);  // [0.3, 2.3)
    z[i] = Scalar(1.7) - Scalar(i) / Scalar(n);
  }
  double best = 1e30;
  for (int b = 0; b < blocks; ++b) {
    auto const t0 = std::chrono::steady_clock::now();
    for (int p = 0; p < passes; ++p) {
      f(x, z, y);
      asm volatile("" : : "r"(y) : "memory");  // keep every pass
    }
    auto const t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  std::printf("%-6s %-7s %6.3f ns/element\n", sizeof(Scalar) == 4 ? "float" : "double", name,
              best / (double(passes) * n) * 1e9);
}

template <class Scalar>
void run() {
  namespace m = lensing::math;
  using A = Scalar*;
  report<Scalar>("copy", [](A x, A, A y) {
    for (int i = 0; i < n; ++i)
      y[i] = x[i];
  });
  report<Scalar>("fma", [](A x, A z, A y) {
    for (int i = 0; i < n; ++i)
      y[i] = x[i] * z[i] + Scalar(0.5);
  });
  report<Scalar>("sqrt", [](A x, A, A y) {
    for (int i = 0; i < n; ++i)
      y[i] = m::sqrt(x[i]);
  });
  report<Scalar>("div", [](A x, A z, A y) {
    for (int i = 0; i < n; ++i)
      y[i] = z[i] / x[i];
  });
  report<Scalar>("atan", [](A x, A, A y) {
    for (int i = 0; i < n; ++i)
      y[i] = m::atan(x[i]);
  });
  report<Scalar>("atan2", [](A x, A z, A y) {
    for (int i = 0; i < n; ++i)
      y[i] = m::atan2(z[i], x[i]);
  });
  report<Scalar>("log", [](A x, A, A y) {
    for (int i = 0; i < n; ++i)
      y[i] = m::log(x[i]);
  });
  report<Scalar>("log1p", [](A x, A, A y) {
    for (int i = 0; i < n; ++i)
      y[i] = m::log1p(x[i]);
  });
  report<Scalar>("exp", [](A x, A, A y) {
    for (int i = 0; i < n; ++i)
      y[i] = m::exp(-x[i]);
  });
}

// The FMA pipes' throughput: 16 independent chains in registers (more than
// the FMA latency times the pipes), ns per FMA of one lane (a pixel loop's
// inline arithmetic costs about its count of multiplies and FMAs times this).
template <class Scalar>
struct Vec256;
template <>
struct Vec256<float> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct Vec256<double> {
  typedef double type __attribute__((vector_size(32)));
};

template <class Scalar>
void fma_throughput() {
  constexpr int chains = 16, lanes = 32 / sizeof(Scalar), steps = 1 << 20;
  using V = typename Vec256<Scalar>::type;
  double best = 1e30;
  for (int b = 0; b < blocks; ++b) {
    V acc[chains], mul, add;
    for (int l = 0; l < lanes; ++l) {
      mul[l] = Scalar(0.999);
      add[l] = Scalar(1e-3);
    }
    for (int c = 0; c < chains; ++c)
      acc[c] = mul * Scalar(c);
    auto const t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) {
      for (int c = 0; c < chains; ++c)
        acc[c] = acc[c] * mul + add;
      asm volatile("" : "+x"(mul));  // the loop is not folded
    }
    auto const t1 = std::chrono::steady_clock::now();
    V sum = acc[0];
    for (int c = 1; c < chains; ++c)
      sum += acc[c];
    asm volatile("" : : "x"(sum));
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  std::printf("%-6s %-7s %6.3f ns/element\n", sizeof(Scalar) == 4 ? "float" : "double", "fma-reg",
              best / (double(steps) * chains * lanes) * 1e9);
}

}  // namespace

int main() {
  run<float>();
  run<double>();
  fma_throughput<float>();
  fma_throughput<double>();
}
