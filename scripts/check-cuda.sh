#!/usr/bin/env bash
# CUDA compile check (no GPU needed): installs nvcc 11.8 and g++-11 from Debian
# non-free, builds a CUDA+OpenMP Kokkos 3.4.1 into its own cached prefix, then
# compiles with nvcc every public header on its own and the translation units in
# tests/compile/ that instantiate every public kernel, and links them.
# Kokkos 3.4.1 does not compile against CUDA 12+/13 headers, hence 11.8.
source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${LENSING_CUDA_BUILD:-$root/build-cuda}"
install_packages "${LENSING_PACKAGES[@]}"
log "nvidia-cuda-toolkit is about 1.6 GB: the first run takes a few minutes"
install_packages_from "$LENSING_CUDA_COMPONENTS" "${LENSING_CUDA_PACKAGES[@]}"

# Debian's nvcc 11.8 is /usr/bin/nvcc: put it before any newer toolkit, and
# drop variables that point at one.
export PATH="/usr/bin:$PATH"
unset CUDA_HOME CUDA_ROOT CUDA_PATH LIBRARY_PATH CPATH
export NVCC_WRAPPER_DEFAULT_COMPILER=g++-11
nvcc --version | grep -q "release 11.8" || die "nvcc on PATH is not 11.8: $(command -v nvcc)"
# Some images copy a newer toolkit's headers into /usr/local/include, which the
# compilers search before /usr/include.  Shadow those names with Debian's 11.8
# headers through an -I directory.  The directory is shared by every checkout
# using this cache and only ever gains links (never emptied), so concurrent runs
# cannot pull headers from under each other's compilers.
shadow="$LENSING_CACHE/cuda-11.8-include-shadow"
mkdir -p "$shadow"
for f in /usr/local/include/*; do
  n=$(basename "$f")
  if [ -e "/usr/include/$n" ] && { [ -e "/usr/include/cuda_runtime.h" ]; }; then
    case "$(readlink -f "$f")" in
      *cuda*) [ -L "$shadow/$n" ] || ln -s "/usr/include/$n" "$shadow/$n" 2>/dev/null || true ;;
    esac
  fi
done
flags="-I$shadow"

ksrc=$(kokkos_source)
kokkos=$(build_kokkos cuda-openmp-ampere80 -DCMAKE_CXX_COMPILER="$ksrc/bin/nvcc_wrapper" \
  -DCMAKE_CXX_FLAGS="$flags" -DKokkos_ENABLE_CUDA=ON -DKokkos_ENABLE_CUDA_LAMBDA=ON \
  -DKokkos_ARCH_AMPERE80=ON -DKokkos_ENABLE_OPENMP=ON -DCUDAToolkit_ROOT=/usr)
# ccache recognises nvcc_wrapper as nvcc (its name contains "nvcc") and caches
# its objects like the host builds' (same cache, clone-relative keys).
use_ccache "$root"
log "configuring the CUDA compile check in $build"
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKokkos_ROOT="$kokkos" \
  -DCMAKE_CXX_COMPILER="$kokkos/bin/nvcc_wrapper" -DCMAKE_CXX_FLAGS="$flags" \
  -DLENSING_CUDA_COMPILE_CHECK=ON >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; die "cmake configure (CUDA) failed"; }
log "compiling with nvcc ($LENSING_JOBS jobs)"
cmake --build "$build" -j "$LENSING_JOBS" || die "CUDA compile check failed"
log "CUDA compile check passed: every header and kernel instantiation compiled with nvcc 11.8"
