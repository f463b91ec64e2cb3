// The strict number parsers of the example programs (examples/common/cli.hpp).
#include "../../examples/common/cli.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

// The programs print and exit; here a refusal throws so that it can be checked.
[[noreturn]] void bad(std::string const& msg) { throw std::invalid_argument(msg); }

namespace {
// The message of the refusal of `text` for flag "--x", or "" when it is accepted.
template <class F>
std::string refusal(F parse) {
  try {
    parse();
  } catch (std::invalid_argument const& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("parse_integer: whole decimal tokens in range only") {
  CHECK(parse_integer("--n", "64", 1, 100) == 64);
  CHECK(parse_integer("--n", "+7", 1, 100) == 7);
  CHECK(parse_integer("--n", "-3", -5, 5) == -3);
  CHECK(parse_integer("--n", "100", 1, 100) == 100);
  CHECK(parse_integer("--seed", "9000000000000000000", 0, 9000000000000000000LL) == 9000000000000000000LL);
  // Not integers, or not only an integer: each refusal names the flag and quotes the text.
  for (char const* text : {"1e3", "64x", "x64", "", " 64", "64 ", "2.0", "0x10", "--", "+", "1,000", "nan"}) {
    CAPTURE(text);
    std::string const m = refusal([&] { parse_integer("--n", text, 0, 1000000); });
    CHECK(m.find("--n") != std::string::npos);
    CHECK(m.find(std::string("'") + text + "'") != std::string::npos);
  }
  // Out of range, overflowing included.
  for (char const* text : {"0", "101", "-1", "99999999999999999999", "-99999999999999999999"}) {
    CAPTURE(text);
    std::string const m = refusal([&] { parse_integer("--size", text, 1, 100); });
    CHECK(m.find("--size must be an integer in [1, 100]") != std::string::npos);
  }
}

TEST_CASE("parse_real: whole finite decimal tokens in range only") {
  CHECK(parse_real("--fwhm", "0.1", 0, 1) == 0.1);
  CHECK(parse_real("--fwhm", "1e-2", 0, 1) == 1e-2);
  CHECK(parse_real("--fwhm", "-.5E0", -1, 1) == -0.5);
  CHECK(parse_real("--fwhm", "3", 0, 3) == 3.0);
  for (char const* text : {"0.1abc", "abc", "", " 0.1", "0.1 ", "nan", "inf", "-inf", "0x1p-3", "1e", "."}) {
    CAPTURE(text);
    std::string const m = refusal([&] { parse_real("--fwhm", text, -1e300, 1e300); });
    CHECK(m.find("--fwhm") != std::string::npos);
    CHECK(m.find(std::string("'") + text + "'") != std::string::npos);
  }
  for (char const* text : {"1.5", "-0.001", "1e400", "-1e400"}) {
    CAPTURE(text);
    std::string const m = refusal([&] { parse_real("--fwhm", text, 0, 1); });
    CHECK(m.find("--fwhm must be in [0, 1]") != std::string::npos);
  }
}
