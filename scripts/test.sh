#!/usr/bin/env bash
# The README's test command: installs dependencies, builds lensing's tests,
# benchmarks and examples (Release), and runs ctest (Serial, OpenMP at 1 and 2
# threads).  Extra arguments go to ctest.  Build dir: $LENSING_BUILD (default build/).
source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${LENSING_BUILD:-$root/build}"
install_packages "${LENSING_PACKAGES[@]}"
kokkos=$(find_or_build_kokkos_openmp)
log "configuring $build (Kokkos at $kokkos)"
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKokkos_ROOT="$kokkos" >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; die "cmake configure failed (log above)"; }
log "building with $LENSING_JOBS jobs"
cmake --build "$build" -j "$LENSING_JOBS"
log "running ctest"
cd "$build" && ctest --output-on-failure -j "$LENSING_JOBS" "$@"
