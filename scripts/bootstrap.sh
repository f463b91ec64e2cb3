#!/usr/bin/env bash
# Install what lensing needs on Debian (bookworm) and print the Kokkos prefix.
# Idempotent: a second run only checks.  See scripts/deps.sh for the knobs.
source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
install_packages "${LENSING_PACKAGES[@]}"
find_or_build_kokkos_openmp
