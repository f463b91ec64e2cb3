# shellcheck shell=bash
# Shared helpers for lensing's scripts: logging, Debian packages, and a cached
# Kokkos 3.4.1 built from Debian's trilinos source package.  Sourced, not run.
#
# Environment knobs:
#   LENSING_CACHE   where built dependencies live (default ~/.cache/lensing);
#                   kept outside the clone so later runs and clones reuse them.
#   Kokkos_ROOT     an existing Kokkos >= 3.4 install to use instead of building.
#   LENSING_JOBS    parallel build jobs (default: nproc).

set -euo pipefail

LENSING_CACHE="${LENSING_CACHE:-${HOME:-/root}/.cache/lensing}"
LENSING_JOBS="${LENSING_JOBS:-$(nproc 2>/dev/null || echo 2)}"
LENSING_KOKKOS_VERSION=3.4.1
# trilinos 13.2.0 (Debian bookworm) bundles Kokkos 3.4.1; pinned so a changed
# archive is noticed instead of silently built.
LENSING_TRILINOS_ORIG=trilinos_13.2.0.orig.tar.gz
LENSING_TRILINOS_SHA256="${LENSING_TRILINOS_SHA256:-0ddb47784ba7b8a6b9a07a4822b33be508feb4ccd54301b2a5d10c9e54524b90}"

log() { printf '[lensing] %s\n' "$*" >&2; }
die() { printf '[lensing] ERROR: %s\n' "$*" >&2; exit 1; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    die "installing Debian packages needs root; re-run as root (e.g. sudo $0), or install them yourself: $*"
  fi
}

# The archive URI of the machine's Debian sources (deb822 or one-line format).
debian_uri() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# A private apt configuration (sources + lists + cache) so the machine's own apt
# setup is left untouched.  $1 = components, e.g. "main" or "main contrib non-free".
private_apt_opts() {
  local components="$1" dir="$LENSING_CACHE/apt/${1// /-}"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  local uri; uri=$(debian_uri)
  cat >"$dir/sources.list" <<SRC
deb $uri bookworm $components
deb $uri bookworm-updates $components
deb-src $uri bookworm $components
SRC
  PRIVATE_APT_OPTS=(-o "Dir::Etc::SourceList=$dir/sources.list"
    -o "Dir::Etc::SourceParts=/nonexistent" -o "Dir::State::Lists=$dir/lists"
    -o "Dir::Cache=$dir/cache" -o "APT::Sandbox::User=root")
  if [ ! -f "$dir/.updated" ]; then
    log "apt-get update (private list: bookworm $components)"
    apt-get "${PRIVATE_APT_OPTS[@]}" update -qq || die "apt-get update failed for $uri (bookworm $components)"
    touch "$dir/.updated"
  fi
}

# Install the Debian packages that are not installed yet, from the machine's
# apt sources.  install_packages_from COMPONENTS PKG... uses a private list with
# those components instead (e.g. "main contrib non-free" for nvidia-cuda-toolkit).
APT_UPDATED=0
missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}
install_packages() {
  local missing; missing=$(missing_packages "$@")
  if [ -z "$missing" ]; then log "Debian packages present: $*"; return 0; fi
  need_root $missing
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
  fi
  log "apt-get install" $missing
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends $missing >/dev/null ||
    die "apt-get install failed for: $missing"
}
install_packages_from() {
  local components="$1"; shift
  local missing; missing=$(missing_packages "$@")
  if [ -z "$missing" ]; then log "Debian packages present: $*"; return 0; fi
  need_root $missing
  private_apt_opts "$components"
  log "apt-get install (bookworm $components)" $missing
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get "${PRIVATE_APT_OPTS[@]}" -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends $missing >/dev/null ||
    die "apt-get install failed for: $missing (bookworm $components)"
}

# Packages the library, its tests and benchmarks need (gcc for FindHDF5's C
# probe; python3-h5py for the test that reads our HDF5 files with h5py).
LENSING_PACKAGES=(cmake make gcc g++ pkg-config libeigen3-dev xtensor-dev libfftw3-dev nlohmann-json3-dev
  doctest-dev libbenchmark-dev libstb-dev libcfitsio-dev libhdf5-dev python3-h5py ccache)
# The mpi component's (include/lensing/mpi/, its tests under mpiexec and the
# MPI examples): Open MPI.  Optional for the library; the README's test
# command (scripts/test.sh) installs them so that the component is built and
# tested (LENSING_MPI=0 skips them; CMake then leaves the component out).
LENSING_MPI_PACKAGES=(libopenmpi-dev openmpi-bin)
# The packages the test command installs: LENSING_PACKAGES plus the MPI set
# unless LENSING_MPI=0.
lensing_test_packages() {
  printf '%s\n' "${LENSING_PACKAGES[@]}"
  if [ "${LENSING_MPI:-1}" != 0 ]; then printf '%s\n' "${LENSING_MPI_PACKAGES[@]}"; fi
}
# The fuzzing stage's (scripts/fuzz.sh): clang with libFuzzer and the sanitizer
# runtimes, the OpenMP headers Kokkos' headers need under clang, and the
# libraries of the fuzzed readers.
LENSING_FUZZ_PACKAGES=(clang libclang-rt-14-dev libomp-dev libcfitsio-dev libhdf5-dev pkg-config)
# The nvcc check's (scripts/check-cuda.sh), from Debian non-free:
#   install_packages_from "$LENSING_CUDA_COMPONENTS" "${LENSING_CUDA_PACKAGES[@]}"
LENSING_CUDA_COMPONENTS="main contrib non-free non-free-firmware"
LENSING_CUDA_PACKAGES=(nvidia-cuda-toolkit g++-11)

# Compiler cache shared by every clone on this machine: objects are keyed on
# paths relative to the clone (base_dir), so a fresh clone in another folder
# hits what an earlier build of the same sources produced.  LENSING_CCACHE=0
# turns it off.
use_ccache() {
  local root="$1"
  if [ "${LENSING_CCACHE:-1}" = 0 ] || ! command -v ccache >/dev/null 2>&1; then return 0; fi
  export CCACHE_DIR="${CCACHE_DIR:-$LENSING_CACHE/ccache}"
  export CCACHE_BASEDIR="$root"
  export CCACHE_NOHASHDIR=true
  export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-8G}"
  export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-include_file_mtime,include_file_ctime,time_macros,pch_defines}"
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache
  mkdir -p "$CCACHE_DIR"
}

# Version "X.Y.Z" of the Kokkos installed under prefix $1 (empty if none).
kokkos_version_at() {
  local f
  f=$(ls "$1"/lib*/cmake/Kokkos/KokkosConfigVersion.cmake 2>/dev/null | head -n1) || true
  [ -n "$f" ] || return 0
  sed -n 's/^set(PACKAGE_VERSION "\([0-9.]*\)").*/\1/p' "$f" | head -n1
}

# True when the Kokkos under $1 enables backend macro $2 (e.g. OPENMP, CUDA).
kokkos_has_backend() {
  grep -qs "^#define KOKKOS_ENABLE_$2\b" "$1"/include/KokkosCore_config.h
}

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# Fetch and verify trilinos' source, extract Kokkos; prints the Kokkos source dir.
kokkos_source() {
  local src="$LENSING_CACHE/src"
  local kdir="$src/kokkos-$LENSING_KOKKOS_VERSION"
  if [ -f "$kdir/.lensing-extracted" ]; then echo "$kdir"; return 0; fi
  mkdir -p "$src"
  if [ ! -f "$src/$LENSING_TRILINOS_ORIG" ]; then
    need_root "(apt-get source trilinos)"
    private_apt_opts "main"
    log "downloading Debian's trilinos source package (bundles Kokkos $LENSING_KOKKOS_VERSION)"
    (cd "$src" && apt-get "${PRIVATE_APT_OPTS[@]}" source --download-only -qq trilinos >/dev/null) ||
      die "apt-get source trilinos failed; is a Debian bookworm archive reachable?"
  fi
  local want
  want=$(awk '/^Checksums-Sha256:/ {f=1; next} /^[^ ]/ {f=0} f && $3 == "'"$LENSING_TRILINOS_ORIG"'" {print $1}' "$src"/trilinos_*.dsc | head -n1)
  [ -n "$want" ] || die "no sha256 for $LENSING_TRILINOS_ORIG in $(ls "$src"/trilinos_*.dsc)"
  if [ -n "$LENSING_TRILINOS_SHA256" ] && [ "$want" != "$LENSING_TRILINOS_SHA256" ]; then
    die "trilinos .dsc lists sha256 $want, lensing pins $LENSING_TRILINOS_SHA256"
  fi
  local have; have=$(sha256sum "$src/$LENSING_TRILINOS_ORIG" | cut -d' ' -f1)
  [ "$have" = "$want" ] || { rm -f "$src/$LENSING_TRILINOS_ORIG"; die "sha256 mismatch for $LENSING_TRILINOS_ORIG: got $have, want $want (deleted; re-run)"; }
  log "sha256 ok: $LENSING_TRILINOS_ORIG ($have)"
  rm -rf "$kdir" "$src/extract"; mkdir -p "$src/extract"
  tar -xzf "$src/$LENSING_TRILINOS_ORIG" -C "$src/extract" --wildcards '*/packages/kokkos/*' ||
    die "extracting Kokkos from $LENSING_TRILINOS_ORIG failed"
  mv "$src"/extract/*/packages/kokkos "$kdir"
  rm -rf "$src/extract"
  grep -q "Kokkos_VERSION_PATCH 01" "$kdir/CMakeLists.txt" || log "warning: $kdir does not look like Kokkos $LENSING_KOKKOS_VERSION"
  touch "$kdir/.lensing-extracted"
  echo "$kdir"
}

# Build Kokkos into a cached prefix.  $1 = variant name, rest = cmake args.
# Prints the prefix.
build_kokkos() {
  local variant="$1"; shift
  local prefix="$LENSING_CACHE/kokkos-$LENSING_KOKKOS_VERSION-$variant"
  if [ -f "$prefix/.lensing-complete" ]; then
    log "reusing cached Kokkos $LENSING_KOKKOS_VERSION ($variant) at $prefix"
    echo "$prefix"; return 0
  fi
  local ksrc; ksrc=$(kokkos_source)
  local bdir="$LENSING_CACHE/build/kokkos-$variant"
  rm -rf "$bdir" "$prefix"; mkdir -p "$bdir"
  log "building Kokkos $LENSING_KOKKOS_VERSION ($variant) into $prefix (log: $bdir/build.log)"
  if ! { cmake -S "$ksrc" -B "$bdir" -DCMAKE_CXX_STANDARD=17 -DCMAKE_BUILD_TYPE=Release \
           -DCMAKE_INSTALL_PREFIX="$prefix" -DKokkos_ENABLE_SERIAL=ON "$@" &&
         cmake --build "$bdir" -j "$LENSING_JOBS" && cmake --install "$bdir"; } >"$bdir/build.log" 2>&1; then
    tail -n 30 "$bdir/build.log" >&2
    die "building Kokkos ($variant) failed; full log in $bdir/build.log"
  fi
  touch "$prefix/.lensing-complete"
  echo "$prefix"
}

# A Kokkos >= 3.4 with OpenMP: Kokkos_ROOT if given, else the cached build.
# Prints its prefix.
find_or_build_kokkos_openmp() {
  if [ -n "${Kokkos_ROOT:-}" ]; then
    local v; v=$(kokkos_version_at "$Kokkos_ROOT")
    [ -n "$v" ] || die "Kokkos_ROOT=$Kokkos_ROOT has no lib*/cmake/Kokkos/KokkosConfigVersion.cmake"
    version_ge "$v" 3.4 || die "Kokkos_ROOT=$Kokkos_ROOT is Kokkos $v; lensing needs >= 3.4"
    kokkos_has_backend "$Kokkos_ROOT" OPENMP || die "Kokkos_ROOT=$Kokkos_ROOT was built without OpenMP (KOKKOS_ENABLE_OPENMP); lensing's tests need it"
    log "using Kokkos $v from Kokkos_ROOT=$Kokkos_ROOT"
    echo "$Kokkos_ROOT"; return 0
  fi
  local arch; arch=$(host_arch)
  if [ -n "$arch" ]; then
    build_kokkos "openmp-serial-${arch,,}" -DKokkos_ENABLE_OPENMP=ON "-DKokkos_ARCH_$arch=ON"
  else
    build_kokkos openmp-serial -DKokkos_ENABLE_OPENMP=ON
  fi
}

# Kokkos host architecture for this CPU, so kernels vectorise with its widest
# SIMD (Kokkos 3.4 has no "native"): SKX (AVX-512), HSW (AVX2) or none.
# LENSING_KOKKOS_ARCH overrides (e.g. "" for a portable build, or "SKX").
host_arch() {
  if [ -n "${LENSING_KOKKOS_ARCH+set}" ]; then echo "$LENSING_KOKKOS_ARCH"; return; fi
  local flags; flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
  if echo "$flags" | grep -qw avx512f && echo "$flags" | grep -qw avx512bw && echo "$flags" | grep -qw avx512vl &&
     echo "$flags" | grep -qw avx512dq; then
    echo SKX
  elif echo "$flags" | grep -qw avx2 && echo "$flags" | grep -qw fma; then
    echo HSW
  fi
}
