# Finds lensing's dependencies and stops with one readable message per missing
# piece (instead of a stack of CMake errors).  Used by the build tree; the
# installed lensingConfig.cmake does the same through find_dependency.
set(_lensing_hint "run scripts/bootstrap.sh (Debian, as root) or see README.md")

find_package(Kokkos QUIET)
if(NOT Kokkos_FOUND)
  message(FATAL_ERROR "lensing: Kokkos not found. Pass -DKokkos_ROOT=<prefix> of a Kokkos >= 3.4, or ${_lensing_hint}.")
endif()
if(Kokkos_VERSION VERSION_LESS 3.4)
  message(FATAL_ERROR "lensing: Kokkos ${Kokkos_VERSION} at ${Kokkos_DIR} is too old; lensing needs >= 3.4.")
endif()
message(STATUS "lensing: Kokkos ${Kokkos_VERSION} (${Kokkos_DEVICES}) from ${Kokkos_DIR}")

find_package(Eigen3 3.3 QUIET NO_MODULE)
if(NOT Eigen3_FOUND)
  message(FATAL_ERROR "lensing: Eigen3 >= 3.3 not found (Debian: libeigen3-dev); ${_lensing_hint}.")
endif()
find_package(xtensor QUIET)
if(NOT xtensor_FOUND)
  message(FATAL_ERROR "lensing: xtensor not found (Debian: xtensor-dev); ${_lensing_hint}.")
endif()
# The components (see CMakeLists.txt): lensing::fft needs FFTW (float and
# double; cuFFT too with a CUDA Kokkos), lensing::fits needs cfitsio,
# lensing::hdf5 the HDF5 C library (optional even for the tests, see below).  A
# component whose dependency is missing is left out of the install, unless
# this build's tests, examples, benchmarks or compile check need it.
if(LENSING_ENABLE_TESTS OR LENSING_ENABLE_EXAMPLES OR LENSING_ENABLE_BENCHMARKS OR LENSING_CUDA_COMPILE_CHECK)
  set(_lensing_need_components ON)
else()
  set(_lensing_need_components OFF)
endif()
macro(_lensing_component_missing component what)
  if(_lensing_need_components)
    message(FATAL_ERROR "lensing: ${what}; ${_lensing_hint}.  (Only the install can do without it: "
      "-DLENSING_ENABLE_TESTS=OFF -DLENSING_ENABLE_EXAMPLES=OFF -DLENSING_ENABLE_BENCHMARKS=OFF.)")
  endif()
  message(STATUS "lensing: ${what}; the ${component} component is left out")
endmacro()

set(LENSING_HAVE_FFT ON)
find_package(FFTW QUIET)
if(NOT FFTW_FOUND)
  set(LENSING_HAVE_FFT OFF)
  _lensing_component_missing(fft "FFTW3 (double and float) not found (Debian: libfftw3-dev)")
endif()
# cuFFT for the FFTs on CUDA memory (only with a CUDA Kokkos).
set(LENSING_CUDA_LIBRARIES "")
if(LENSING_HAVE_FFT AND "CUDA" IN_LIST Kokkos_DEVICES)
  find_package(CUDAToolkit QUIET)
  if(NOT CUDAToolkit_FOUND OR NOT TARGET CUDA::cufft)
    set(LENSING_HAVE_FFT OFF)
    _lensing_component_missing(fft "Kokkos has CUDA but cuFFT (CUDA::cufft) was not found; set CUDAToolkit_ROOT")
  endif()
  set(LENSING_CUDA_LIBRARIES CUDA::cufft)
endif()

# FITS files (io/fits.hpp).
set(LENSING_HAVE_FITS ON)
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(CFITSIO QUIET IMPORTED_TARGET GLOBAL cfitsio)
endif()
if(NOT TARGET PkgConfig::CFITSIO)
  set(LENSING_HAVE_FITS OFF)
  _lensing_component_missing(fits "cfitsio not found (Debian: libcfitsio-dev, pkg-config)")
endif()

# HDF5 files (io/hdf5.hpp), through CMake's FindHDF5, whose C component needs
# the C language (its compiler wrapper probe is a C program).  Optional even
# for this build's tests: without it the component and the tests and examples
# that use it are left out.
set(LENSING_HAVE_HDF5 OFF)
include(CheckLanguage)
check_language(C)
if(CMAKE_C_COMPILER)
  enable_language(C)
  find_package(HDF5 QUIET COMPONENTS C)
  if(HDF5_FOUND AND NOT HDF5_IS_PARALLEL)
    set(LENSING_HAVE_HDF5 ON)
    # FindHDF5 makes hdf5::hdf5 since CMake 3.19; older ones only set variables.
    if(NOT TARGET hdf5::hdf5)
      add_library(hdf5::hdf5 INTERFACE IMPORTED)
      set_target_properties(hdf5::hdf5 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${HDF5_C_INCLUDE_DIRS}"
        INTERFACE_LINK_LIBRARIES "${HDF5_C_LIBRARIES}" INTERFACE_COMPILE_DEFINITIONS "${HDF5_C_DEFINITIONS}")
    endif()
    message(STATUS "lensing: HDF5 ${HDF5_VERSION} (C) for the hdf5 component")
  endif()
endif()
if(NOT LENSING_HAVE_HDF5)
  message(STATUS "lensing: the serial HDF5 C library was not found (Debian: libhdf5-dev) or no C compiler; "
    "the hdf5 component and its tests are left out")
endif()

# MPI (include/lensing/mpi/, the mpi component), through CMake's FindMPI (C++
# bindings not needed: MPI::MPI_CXX is the C API with the C++ compiler's flags).
# LENSING_ENABLE_MPI: AUTO (default) builds the component, its tests and
# examples when an MPI is found (Debian: libopenmpi-dev openmpi-bin; the
# README's test command installs them), ON requires it, OFF leaves it out.
set(LENSING_ENABLE_MPI AUTO CACHE STRING "Build the mpi component (AUTO: when MPI is found; ON: required; OFF)")
set_property(CACHE LENSING_ENABLE_MPI PROPERTY STRINGS AUTO ON OFF)
set(LENSING_HAVE_MPI OFF)
if(NOT LENSING_ENABLE_MPI STREQUAL "OFF")
  find_package(MPI QUIET COMPONENTS CXX)
  if(MPI_CXX_FOUND)
    set(LENSING_HAVE_MPI ON)
    message(STATUS "lensing: MPI ${MPI_CXX_VERSION} (${MPIEXEC_EXECUTABLE}) for the mpi component")
  elseif(LENSING_ENABLE_MPI STREQUAL "ON")
    message(FATAL_ERROR "lensing: LENSING_ENABLE_MPI=ON but no MPI was found (Debian: libopenmpi-dev openmpi-bin); ${_lensing_hint}.")
  else()
    message(STATUS "lensing: no MPI found (Debian: libopenmpi-dev openmpi-bin); the mpi component and its tests are left out")
  endif()
endif()
