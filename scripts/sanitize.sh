#!/usr/bin/env bash
# Sanitizer run: builds the test suite with AddressSanitizer (+ LeakSanitizer)
# and UndefinedBehaviorSanitizer and runs it.  Build dir: $LENSING_ASAN_BUILD
# (default build-asan/).  Extra arguments go to ctest.
#
# What it builds, and why (measured on 2 cores; the whole-suite build with
# -O1 -g and every scalar took 21 min):
#  - Serial backend, double only (LENSING_TEST_SCALARS=double): the OpenMP and
#    float instantiations are the same template code, which the Release run
#    tests;
#  - no compile checks (header and kernel-instantiation programs): they test
#    compilation, which the Release build does;
#  - -O1 -g1 (line tables: stack traces keep file:line; full -g cost 30% of
#    each compile) and -fsanitize=address,undefined without the alignment and
#    null checks, which instrument every pointer access (a third of the compile
#    time): a null dereference still faults and ASan reports it with its stack,
#    Kokkos allocations are aligned, and the only code that reinterprets bytes,
#    the file readers, is fuzzed with the full -fsanitize=undefined
#    (scripts/fuzz.sh).
source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${LENSING_ASAN_BUILD:-$root/build-asan}"
install_packages "${LENSING_PACKAGES[@]}"
kokkos=$(find_or_build_kokkos_openmp)
use_ccache "$root"
mkdir -p "$build"
log "configuring the sanitizer build in $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DKokkos_ROOT="$kokkos" -DCMAKE_CXX_FLAGS_DEBUG="-g1" \
  -DCMAKE_CXX_FLAGS="-O1 -fsanitize=address,undefined -fno-sanitize=alignment,null -fno-sanitize-recover=all -fno-omit-frame-pointer" \
  -DLENSING_TEST_BACKENDS=Serial -DLENSING_TEST_SCALARS=double -DLENSING_COMPILE_CHECKS=OFF \
  -DLENSING_ENABLE_BENCHMARKS=OFF -DLENSING_ENABLE_EXAMPLES=OFF -DLENSING_ENABLE_MPI=OFF \
  >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; die "cmake configure (sanitizers) failed"; }
# The mpi component is off here: its tests run under mpiexec, whose Open MPI
# libraries (not instrumented) keep allocations LeakSanitizer would report.
log "building with $LENSING_JOBS jobs"
cmake --build "$build" -j "$LENSING_JOBS"
log "running ctest under ASan+UBSan"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
# libhdf5 (not instrumented) keeps some internal objects of an object header
# that failed its checksum until the process ends (HDF5 1.10.8; the damaged
# files of tests/io/test_hdf5.cpp): leaks inside libhdf5 are suppressed.
printf 'leak:libhdf5\n' >"$build/lsan.supp"
export LSAN_OPTIONS="suppressions=$build/lsan.supp:${LSAN_OPTIONS:-}"
# The posteriordb and diamonds programs run the sampler code that the other
# sample tests sanitise, on reference posteriors with many draws (a statistical
# check, which the Release run makes): 141 s and 97 s under ASan, so left out.
cd "$build" && ctest --output-on-failure -j "$LENSING_JOBS" -E '^test_sample_(posteriordb|diamonds)$' "$@"
