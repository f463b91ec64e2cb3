#!/usr/bin/env bash
# Install lensing into a scratch prefix and build + run install_test/ against
# it with find_package(lensing), as a downstream project would.
source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work="${LENSING_INSTALL_TEST_DIR:-$root/build-install-test}"
mapfile -t packages < <(lensing_test_packages)
install_packages "${packages[@]}"
kokkos=$(find_or_build_kokkos_openmp)
rm -rf "$work"; mkdir -p "$work"
log "installing lensing into $work/prefix"
cmake -S "$root" -B "$work/lensing" -DKokkos_ROOT="$kokkos" -DLENSING_ENABLE_TESTS=OFF \
  -DLENSING_ENABLE_BENCHMARKS=OFF -DLENSING_ENABLE_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" \
  >"$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; die "configuring lensing for install failed"; }
cmake --install "$work/lensing" >/dev/null
log "building install_test/ against it (find_package(lensing))"
cmake -S "$root/install_test" -B "$work/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix;$kokkos" >"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log" >&2; die "find_package(lensing) from the install failed"; }
cmake --build "$work/consumer" -j "$LENSING_JOBS" >/dev/null
(cd "$work/consumer" && ctest --output-on-failure)
# A samplers-only consumer: find_package(lensing) without components must
# work with FFTW, pkg-config (hence cfitsio) and HDF5 unfindable, and its link
# line must name none of these libraries.
log "building install_test/samplers_only/ (lensing::lensing only, FFTW, cfitsio and HDF5 hidden)"
cmake -S "$root/install_test/samplers_only" -B "$work/samplers_only" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix;$kokkos" -DCMAKE_DISABLE_FIND_PACKAGE_FFTW=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON -DCMAKE_DISABLE_FIND_PACKAGE_HDF5=ON >"$work/samplers_only.log" 2>&1 ||
  { cat "$work/samplers_only.log" >&2; die "find_package(lensing) without components needed FFTW, cfitsio or HDF5"; }
cmake --build "$work/samplers_only" -j "$LENSING_JOBS" >/dev/null
link="$work/samplers_only/CMakeFiles/lensing_samplers_only.dir/link.txt"
[ -f "$link" ] || die "no link line at $link"
if grep -Eiq 'fftw|cfitsio|hdf5|libmpi|openmpi' "$link"; then die "the samplers-only consumer links FFTW, cfitsio, HDF5 or MPI: $(cat "$link")"; fi
(cd "$work/samplers_only" && ctest --output-on-failure)
log "install test passed"
