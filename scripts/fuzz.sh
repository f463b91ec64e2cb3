#!/usr/bin/env bash
# Fuzz the file readers (npy, FITS, weight files, HDF5 training sets) with libFuzzer under
# AddressSanitizer (+ LeakSanitizer) and UndefinedBehaviorSanitizer.
#
#   scripts/fuzz.sh [SECONDS]   build tests/fuzz/fuzz_{npy,fits,weights,hdf5}.cpp,
#                               run every file of tests/fuzz/corpus/<reader>/
#                               as a regression input, then fuzz each target
#                               for SECONDS (default $LENSING_FUZZ_SECONDS or 20)
#   scripts/fuzz.sh --corpus    regenerate the committed seed corpus
#
# Build dir: $LENSING_FUZZ_BUILD (default build-fuzz/); inputs found while
# fuzzing go to <build>/found/<reader>/, crashes to <build>/crash-*.  The
# targets include the reader headers only: Kokkos is needed for its headers
# (the cached install), not linked, so the build takes seconds.
source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${LENSING_FUZZ_BUILD:-$root/build-fuzz}"
seconds="${LENSING_FUZZ_SECONDS:-20}"
regenerate=0
case "${1:-}" in
  --corpus) regenerate=1 ;;
  "") ;;
  *) [[ "$1" =~ ^[0-9]+$ ]] || die "usage: scripts/fuzz.sh [SECONDS | --corpus]"; seconds="$1" ;;
esac

install_packages "${LENSING_FUZZ_PACKAGES[@]}"
kokkos=$(find_or_build_kokkos_openmp)
cxx="${LENSING_FUZZ_CXX:-clang++}"
mkdir -p "$build"
common=(-std=c++17 -fopenmp -DLENSING_HAS_FITS=1 -I"$root/include" -I"$kokkos/include" $(pkg-config --cflags cfitsio))
libs=($(pkg-config --libs cfitsio))
targets=(npy fits weights)
# HDF5 training sets, when Debian's libhdf5-dev is there.  libhdf5 is not
# instrumented; its free lists hold memory until the library closes, which
# LeakSanitizer would report, so leaks inside libhdf5 are suppressed.
if pkg-config --exists hdf5; then
  common+=(-DLENSING_HAS_HDF5=1 $(pkg-config --cflags hdf5))
  libs+=($(pkg-config --libs hdf5))
  targets+=(hdf5)
  printf 'leak:libhdf5\n' >"$build/lsan_hdf5.supp"
  export LSAN_OPTIONS="suppressions=$build/lsan_hdf5.supp:${LSAN_OPTIONS:-}"
else
  log "no HDF5 (pkg-config hdf5; Debian libhdf5-dev): fuzz_hdf5 left out"
fi

if [ "$regenerate" = 1 ]; then
  log "regenerating tests/fuzz/corpus"
  "$cxx" "${common[@]}" -O1 "$root/tests/fuzz/make_corpus.cpp" "${libs[@]}" -o "$build/make_corpus"
  rm -rf "$root/tests/fuzz/corpus"
  mkdir -p "$root/tests/fuzz/corpus"/{npy,fits,weights}
  if [[ " ${targets[*]} " == *" hdf5 "* ]]; then mkdir -p "$root/tests/fuzz/corpus/hdf5"; fi
  "$build/make_corpus" "$root/tests/fuzz/corpus"
  exit 0
fi

flags=(-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export OMP_NUM_THREADS=1
start=$(date +%s)
for t in "${targets[@]}"; do
  log "building fuzz_$t"
  "$cxx" "${common[@]}" "${flags[@]}" "$root/tests/fuzz/fuzz_$t.cpp" "${libs[@]}" -o "$build/fuzz_$t"
done
# A reader may allocate a few times the file's size, never what a header
# merely declares: -malloc_limit_mb makes a large allocation a finding.
limits=(-rss_limit_mb=1024 -malloc_limit_mb=64 -timeout=10)
cd "$build"
for t in "${targets[@]}"; do
  corpus="$root/tests/fuzz/corpus/$t"
  log "fuzz_$t: $(ls "$corpus" | wc -l) corpus files as regression inputs"
  "./fuzz_$t" "${limits[@]}" "$corpus"/* >"$build/regress_$t.log" 2>&1 ||
    { tail -n 40 "$build/regress_$t.log" >&2; die "fuzz_$t failed on a corpus file (log: $build/regress_$t.log)"; }
  mkdir -p "$build/found/$t"
  log "fuzz_$t: fuzzing for ${seconds}s"
  "./fuzz_$t" "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 "$build/found/$t" "$corpus" \
    >"$build/fuzz_$t.log" 2>&1 ||
    { tail -n 60 "$build/fuzz_$t.log" >&2; die "fuzz_$t found a defect (log: $build/fuzz_$t.log; input: $build/crash-*)"; }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/fuzz_$t.log" | sed "s/^/[lensing] fuzz_$t /" >&2 || true
done
log "fuzzing passed ($(( $(date +%s) - start ))s)"
