// A Kokkos Tools library that counts and times every parallel region (for,
// reduce, scan) a program launches, by name: how many fork/joins a network's
// training step costs, and which layer's pass takes the time.  Not linked
// into anything; build it and point Kokkos at it:
//
//   g++ -O2 -std=c++17 -shared -fPIC benchmarks/tools/region_times.cpp -o /tmp/libregion_times.so
//   KOKKOS_PROFILE_LIBRARY=/tmp/libregion_times.so OMP_NUM_THREADS=2 build/benchmarks/nn/bench_nn_example_nets
//     --benchmark_filter='finder_train/32'     (one command line)
//
// (Kokkos 4.x also reads KOKKOS_TOOLS_LIBS.)  At exit it prints, to stderr,
// the total and, per region name, the count, the wall time and its mean,
// largest total first.  REGION_TIMES_LAST=N also prints the last N regions
// in launch order with their times (one training step of a network: the
// regions between two launches of its first layer).  Times are wall time
// from the launch to the end of the region as the calling thread sees it,
// the fork/join included.  Single-threaded callers only (regions are
// launched from one host thread, as in every program of this project).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct Totals {
  long count = 0;
  double seconds = 0;
};

std::map<std::string, Totals>& totals() {
  static std::map<std::string, Totals> t;
  return t;
}
// Open regions (a region may launch others: nested names stack up).
std::vector<std::pair<std::string, clock_type::time_point>>& open_regions() {
  static std::vector<std::pair<std::string, clock_type::time_point>> o;
  return o;
}
std::vector<std::pair<std::string, double>>& sequence() {
  static std::vector<std::pair<std::string, double>> s;
  return s;
}

void begin(char const* name, std::uint64_t* id) {
  *id = open_regions().size();
  open_regions().emplace_back(name, clock_type::now());
}

void end(std::uint64_t id) {
  auto const now = clock_type::now();
  auto& open = open_regions();
  if (id >= open.size()) return;  // not ours
  double const dt = std::chrono::duration<double>(now - open[id].second).count();
  Totals& t = totals()[open[id].first];
  ++t.count;
  t.seconds += dt;
  sequence().emplace_back(open[id].first, dt);
  open.resize(id);
}

}  // namespace

extern "C" void kokkosp_init_library(int, std::uint64_t, std::uint32_t, void*) {}

extern "C" void kokkosp_finalize_library() {
  std::vector<std::pair<std::string, Totals>> rows(totals().begin(), totals().end());
  std::sort(rows.begin(), rows.end(), [](auto const& a, auto const& b) { return a.second.seconds > b.second.seconds; });
  long count = 0;
  double seconds = 0;
  for (auto const& r : rows) {
    count += r.second.count;
    seconds += r.second.seconds;
  }
  std::fprintf(stderr, "region_times: %ld regions, %.4f s\n", count, seconds);
  for (auto const& r : rows)
    std::fprintf(stderr, "%10ld %10.4f s %10.2f us  %s\n", r.second.count, r.second.seconds,
                 1e6 * r.second.seconds / double(r.second.count), r.first.c_str());
  if (char const* last = std::getenv("REGION_TIMES_LAST")) {
    auto const& seq = sequence();
    std::size_t const n = std::min<std::size_t>(seq.size(), std::strtoul(last, nullptr, 10));
    for (std::size_t i = seq.size() - n; i < seq.size(); ++i)
      std::fprintf(stderr, "region %zu %10.1f us  %s\n", i, 1e6 * seq[i].second, seq[i].first.c_str());
  }
}

extern "C" void kokkosp_begin_parallel_for(char const* name, std::uint32_t, std::uint64_t* id) { begin(name, id); }
extern "C" void kokkosp_end_parallel_for(std::uint64_t id) { end(id); }
extern "C" void kokkosp_begin_parallel_reduce(char const* name, std::uint32_t, std::uint64_t* id) { begin(name, id); }
extern "C" void kokkosp_end_parallel_reduce(std::uint64_t id) { end(id); }
extern "C" void kokkosp_begin_parallel_scan(char const* name, std::uint32_t, std::uint64_t* id) { begin(name, id); }
extern "C" void kokkosp_end_parallel_scan(std::uint64_t id) { end(id); }
