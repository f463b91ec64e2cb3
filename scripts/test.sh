#!/usr/bin/env bash
# The README's test command: installs dependencies, builds lensing's tests,
# benchmarks and examples (Release), and runs ctest (Serial, OpenMP at 1 and 2
# threads; the MPI tests under mpiexec with 1 and 2 ranks).  Extra arguments go
# to ctest.  Build dir: $LENSING_BUILD (default build/).
# With `-R REGEX` only the programs of the matching tests are built (the fast
# inner loop: `bash scripts/test.sh -R sample` builds the sampler tests only).
source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${LENSING_BUILD:-$root/build}"
mapfile -t packages < <(lensing_test_packages)  # LENSING_PACKAGES + Open MPI (LENSING_MPI=0: without)
install_packages "${packages[@]}"
kokkos=$(find_or_build_kokkos_openmp)
use_ccache "$root"
log "configuring $build (Kokkos at $kokkos)"
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKokkos_ROOT="$kokkos" >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; die "cmake configure failed (log above)"; }

# The ctest regex, if any (-R REGEX, -R=REGEX or --tests-regex REGEX).
regex=""
args=("$@")
for ((i = 0; i < ${#args[@]}; ++i)); do
  case "${args[$i]}" in
    -R | --tests-regex) regex="${args[$((i + 1))]:-}" ;;
    -R=* | --tests-regex=*) regex="${args[$i]#*=}" ;;
  esac
done
targets=()
if [ -n "$regex" ]; then
  # Each ctest entry is add_test(NAME "PROGRAM" ARGS...) in a CTestTestfile.cmake;
  # the program's file name is its CMake target.  Programs outside the build
  # tree (bash running a script, e.g. the include_graph test) need no build.
  build_abs=$(cd "$build" && pwd)
  mapfile -t targets < <(find "$build" -name CTestTestfile.cmake -exec cat {} + |
    sed -n 's/^add_test(\([^ ]*\) "\([^"]*\)".*/\1 \2/p' | while read -r name prog; do
      if printf '%s\n' "$name" | grep -Eq -- "$regex"; then
        case "$prog" in "$build_abs"/*) basename "$prog" ;; esac
      fi
    done | sort -u)
fi
if [ -n "$regex" ] && [ "${#targets[@]}" -eq 0 ]; then
  log "no program to build for tests matching '$regex'"
elif [ "${#targets[@]}" -gt 0 ]; then
  log "building ${#targets[@]} program(s) for tests matching '$regex' with $LENSING_JOBS jobs: ${targets[*]}"
  cmake --build "$build" -j "$LENSING_JOBS" --target "${targets[@]}"
else
  log "building with $LENSING_JOBS jobs"
  cmake --build "$build" -j "$LENSING_JOBS"
fi
log "running ctest"
cd "$build" && ctest --output-on-failure -j "$LENSING_JOBS" "$@"
