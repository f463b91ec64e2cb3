# Run PROGRAM with ARGS ('|'-separated) in WORKDIR; pass if it exits with
# status 1 or 2 (a clean refusal: not success, not a signal) and its stderr
# matches the regular expression EXPECT.
string(REPLACE "|" ";" _args "${ARGS}")
file(REMOVE_RECURSE "${WORKDIR}")
file(MAKE_DIRECTORY "${WORKDIR}")
execute_process(COMMAND "${PROGRAM}" ${_args} WORKING_DIRECTORY "${WORKDIR}"
  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err TIMEOUT 120)
message(STATUS "exit status: ${_rc}\nstderr:\n${_err}")
if(NOT _rc MATCHES "^[12]$")
  message(FATAL_ERROR "expected exit status 1 or 2, got '${_rc}'")
endif()
if(NOT _err MATCHES "${EXPECT}")
  message(FATAL_ERROR "stderr does not match '${EXPECT}'")
endif()
