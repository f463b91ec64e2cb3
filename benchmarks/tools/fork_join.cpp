// The cost of an OpenMP fork/join on this machine: empty parallel regions,
// each after GAP iterations of serial work (the glue between two layers'
// regions), per region + gap in µs; compare the thread counts and wait
// policies, e.g.
//
//   g++ -O2 -fopenmp -DGAP=100 benchmarks/tools/fork_join.cpp -o /tmp/fork_join
//   for p in passive active; do OMP_NUM_THREADS=2 OMP_WAIT_POLICY=$p /tmp/fork_join; done
//   OMP_NUM_THREADS=1 /tmp/fork_join
//
// (2-core AVX2 host, 2026-12-06, 2 threads: passive 15–16 µs with GAP=100
// (≈ 1 µs of work), 40–50 µs more than one thread with GAP=200000 (≈ 0.2 ms);
// active 1.5 µs and ~5 µs.)  Not linked into anything.
#include <omp.h>

#include <chrono>
#include <cstdio>

#ifndef GAP
#define GAP 20000
#endif

int main() {
  volatile double sink = 0;
  for (int rep = 0; rep < 3; ++rep) {
    int const n = 2000;
    auto const t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
#pragma omp parallel
      { sink = sink + omp_get_thread_num(); }
      double s = 0;
      for (int k = 0; k < GAP; ++k)
        s += k * 1e-9;
      sink = sink + s;
    }
    auto const t1 = std::chrono::steady_clock::now();
    std::printf("%.1f us per region + gap\n", std::chrono::duration<double>(t1 - t0).count() / n * 1e6);
  }
}
