# FindFFTW: FFTW3 in double and single precision.
# Defines FFTW_FOUND, FFTW_INCLUDE_DIR and imported targets FFTW::Double and
# FFTW::Float.  Written here because Debian's FFTW3Config.cmake covers double
# precision only.  Hints: FFTW_ROOT.
find_path(FFTW_INCLUDE_DIR fftw3.h HINTS ${FFTW_ROOT} ENV FFTW_ROOT PATH_SUFFIXES include)
find_library(FFTW_DOUBLE_LIBRARY fftw3 HINTS ${FFTW_ROOT} ENV FFTW_ROOT PATH_SUFFIXES lib lib64)
find_library(FFTW_FLOAT_LIBRARY fftw3f HINTS ${FFTW_ROOT} ENV FFTW_ROOT PATH_SUFFIXES lib lib64)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(FFTW
  REQUIRED_VARS FFTW_INCLUDE_DIR FFTW_DOUBLE_LIBRARY FFTW_FLOAT_LIBRARY)
if(FFTW_FOUND)
  foreach(_p Double Float)
    string(TOUPPER ${_p} _P)
    if(NOT TARGET FFTW::${_p})
      add_library(FFTW::${_p} UNKNOWN IMPORTED)
      set_target_properties(FFTW::${_p} PROPERTIES
        IMPORTED_LOCATION "${FFTW_${_P}_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${FFTW_INCLUDE_DIR}")
    endif()
  endforeach()
endif()
mark_as_advanced(FFTW_INCLUDE_DIR FFTW_DOUBLE_LIBRARY FFTW_FLOAT_LIBRARY)
