#!/usr/bin/env bash
# Runs lensing's benchmarks at 1 and 2 threads and keeps the results.
#
#   bash scripts/bench.sh [benchmark-name-regex] [extra Google Benchmark args...]
#
# Builds the benchmark programs in $LENSING_BUILD (default build/, as the test
# command), runs every bench_* program whose name matches the regex (default:
# all) with OMP_NUM_THREADS=1 and 2 (OMP_PROC_BIND=spread, OMP_PLACES=threads),
# and writes Google Benchmark JSON and console tables to
# $LENSING_BENCH_OUT (default bench_results/<date>/).  These machines are
# noisy: compare figures taken in the same run, and see benchmarks/README.md.
source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${LENSING_BUILD:-$root/build}"
filter="${1:-.}"
shift || true
out="${LENSING_BENCH_OUT:-$root/bench_results/$(date -u +%Y%m%dT%H%M%S)}"

if [[ ! -f "$build/CMakeCache.txt" ]]; then
  install_packages "${LENSING_PACKAGES[@]}"
  kokkos=$(find_or_build_kokkos_openmp)
  mkdir -p "$build"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKokkos_ROOT="$kokkos" >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log" >&2; die "cmake configure failed (log above)"; }
fi
mapfile -t programs < <(cd "$root/benchmarks" && grep -ho 'lensing_add_benchmark(bench_[a-z0-9_]*' -r . |
  sed 's/.*(//' | sort -u | grep -E -- "$filter" || true)
[[ ${#programs[@]} -gt 0 ]] || die "no benchmark matches '$filter'"
log "building ${programs[*]}"
cmake --build "$build" -j "$LENSING_JOBS" --target "${programs[@]}"
mkdir -p "$out"
load=$(cut -d' ' -f1 /proc/loadavg)
log "load average before the run: $load (figures are only comparable within one run)"
for p in "${programs[@]}"; do
  exe=$(find "$build/benchmarks" -name "$p" -type f -perm -u+x | head -n1)
  [[ -n "$exe" ]] || die "$p was not built"
  for t in 1 2; do
    log "$p, $t thread(s)"
    OMP_NUM_THREADS=$t OMP_PROC_BIND=spread OMP_PLACES=threads "$exe" \
      --benchmark_out="$out/$p.omp$t.json" --benchmark_out_format=json "$@" | tee "$out/$p.omp$t.txt"
  done
done
log "results in $out"
