// Command-line helpers shared by the example programs.  Each program defines
// `[[noreturn]] void bad(std::string const& msg)`, which prints its name, the
// message and its usage to stderr and exits with status 2; the parsers call it
// on malformed or out-of-range values, with a message that names the flag (or
// the positional argument) and quotes the text given.
//
// Numbers are parsed strictly: the whole token must be the number (no
// leading blanks, no trailing characters: "64x" and " 64" are refused), an
// integer flag takes decimal digits with an optional sign only ("1e3" and
// "2.0" are refused rather than read as 1 and 2), a real flag takes decimal
// notation with an optional exponent (no "nan", "inf" or hexadecimal), and
// the value must lie in the flag's range.
#ifndef LENSING_EXAMPLES_COMMON_CLI_HPP
#define LENSING_EXAMPLES_COMMON_CLI_HPP

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

[[noreturn]] void bad(std::string const& msg);

namespace cli_detail {
// A number as the messages print it (17 significant digits at most, no trailing zeros).
inline std::string show(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}
// text consists only of characters from `allowed` and is not empty.
inline bool only(char const* text, char const* allowed) {
  return text[0] != '\0' && std::strspn(text, allowed) == std::strlen(text);
}
}  // namespace cli_detail

/// The integer `text` given for `flag`, which must lie in [lo, hi].
inline long long parse_integer(std::string const& flag, char const* text, long long lo, long long hi) {
  std::string const quoted = std::string("'") + text + "'";
  if (!cli_detail::only(text, "+-0123456789")) bad(flag + " needs an integer, got " + quoted);
  char* end = nullptr;
  errno = 0;
  long long const v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0') bad(flag + " needs an integer, got " + quoted);
  if (errno == ERANGE || v < lo || v > hi)
    bad(flag + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + quoted);
  return v;
}

/// The finite real `text` given for `flag`, which must lie in [lo, hi].
inline double parse_real(std::string const& flag, char const* text, double lo, double hi) {
  std::string const quoted = std::string("'") + text + "'";
  if (!cli_detail::only(text, "+-.0123456789eE")) bad(flag + " needs a number, got " + quoted);
  char* end = nullptr;
  errno = 0;
  double const v = std::strtod(text, &end);
  if (end == text || *end != '\0') bad(flag + " needs a number, got " + quoted);
  if (errno == ERANGE || !std::isfinite(v) || !(v >= lo && v <= hi))
    bad(flag + " must be in [" + cli_detail::show(lo) + ", " + cli_detail::show(hi) + "], got " + quoted);
  return v;
}

#endif
