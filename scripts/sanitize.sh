#!/usr/bin/env bash
# Sanitizer run: builds the whole test suite with AddressSanitizer and
# UndefinedBehaviorSanitizer (Serial backend only, Debug with -O1) and runs it.
# Build dir: $LENSING_ASAN_BUILD (default build-asan/).
source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${LENSING_ASAN_BUILD:-$root/build-asan}"
install_packages "${LENSING_PACKAGES[@]}"
kokkos=$(find_or_build_kokkos_openmp)
use_ccache "$root"
mkdir -p "$build"
log "configuring the sanitizer build in $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DKokkos_ROOT="$kokkos" \
  -DCMAKE_CXX_FLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
  -DLENSING_TEST_BACKENDS=Serial -DLENSING_ENABLE_BENCHMARKS=OFF -DLENSING_ENABLE_EXAMPLES=OFF -DLENSING_COMPILE_CHECKS=OFF \
  >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; die "cmake configure (sanitizers) failed"; }
log "building with $LENSING_JOBS jobs"
cmake --build "$build" -j "$LENSING_JOBS"
log "running ctest under ASan+UBSan"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
cd "$build" && ctest --output-on-failure -j "$LENSING_JOBS" "$@"
