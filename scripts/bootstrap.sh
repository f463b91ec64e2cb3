#!/usr/bin/env bash
# Install what lensing needs on Debian (bookworm) and print the Kokkos prefix.
# Idempotent: a second run only checks.  See scripts/deps.sh for the knobs.
source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
mapfile -t packages < <(lensing_test_packages)  # LENSING_PACKAGES + Open MPI (LENSING_MPI=0: without)
install_packages "${packages[@]}"
find_or_build_kokkos_openmp
