#!/usr/bin/env bash
# The README's demo command: installs dependencies, finds or builds Kokkos,
# builds ONLY the main demo (examples/simulate_survey, Release) and runs it.
# Arguments go to the demo (e.g. --n 5000 --size 96 --out DIR); threads via
# OMP_NUM_THREADS.  Build dir: $LENSING_BUILD (default build/).  Output:
# ./lensing_demo_output/ (relative to the current directory) unless --out.
source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${LENSING_BUILD:-$root/build}"
install_packages "${LENSING_PACKAGES[@]}"
kokkos=$(find_or_build_kokkos_openmp)
log "configuring $build (Kokkos at $kokkos)"
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKokkos_ROOT="$kokkos" -DLENSING_ENABLE_EXAMPLES=ON \
  >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; die "cmake configure failed (log above)"; }
log "building the demo (simulate_survey) with $LENSING_JOBS jobs"
cmake --build "$build" -j "$LENSING_JOBS" --target simulate_survey >"$build/demo-build.log" 2>&1 ||
  { tail -n 40 "$build/demo-build.log" >&2; die "building simulate_survey failed (full log: $build/demo-build.log)"; }
demo="$build/examples/simulate_survey"
[ -x "$demo" ] || demo=$(find "$build" -type f -name simulate_survey -perm -u+x | head -n1)
[ -n "$demo" ] && [ -x "$demo" ] || die "simulate_survey not found under $build"
export OMP_PROC_BIND="${OMP_PROC_BIND:-false}"
log "running $demo $*"
"$demo" "$@"
# The output directory: the value after --out, else the default.
out=lensing_demo_output
prev=""
for a in "$@"; do
  [ "$prev" = "--out" ] && out="$a"
  prev="$a"
done
log "files in $out:"
ls -l "$out" >&2
