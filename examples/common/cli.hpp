// Command-line helpers shared by the example programs.  Each program defines
// `[[noreturn]] void bad(std::string const& msg)`, which prints its name, the
// message and its usage to stderr and exits with status 2; the parsers call it
// on malformed or out-of-range values.
#ifndef LENSING_EXAMPLES_COMMON_CLI_HPP
#define LENSING_EXAMPLES_COMMON_CLI_HPP

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

[[noreturn]] void bad(std::string const& msg);

/// The integer `text` given for `flag`, which must lie in [lo, hi].
inline long long parse_integer(std::string const& flag, char const* text, long long lo, long long hi) {
  char* end = nullptr;
  errno = 0;
  long long const v = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') bad(flag + " needs an integer, got '" + text + "'");
  if (v < lo || v > hi) bad(flag + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + text);
  return v;
}

/// The finite real `text` given for `flag`, which must lie in [lo, hi].
inline double parse_real(std::string const& flag, char const* text, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  double const v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !std::isfinite(v))
    bad(flag + " needs a finite number, got '" + text + "'");
  if (!(v >= lo && v <= hi))
    bad(flag + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + text);
  return v;
}

#endif
