#include <lensing/core/errors.hpp>

#include <lensing_test.hpp>

#include <limits>
#include <string>

namespace {
// The message of the std::invalid_argument that f throws ("" if none).
template <class F>
std::string thrown_message(F const& f) {
  try {
    f();
  } catch (std::invalid_argument const& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("argument checks throw std::invalid_argument with the entry point's name") {
  double const nan = std::numeric_limits<double>::quiet_NaN();
  double const inf = std::numeric_limits<double>::infinity();
  CHECK(thrown_message([] { lensing::check_positive(-1.0, "lensing::f", "scale"); }) ==
        "lensing::f: scale must be finite and > 0 (got -1)");
  CHECK(thrown_message([] { lensing::check_positive(0.0f, "lensing::f", "scale"); }).rfind("lensing::f: scale", 0) ==
        0);
  CHECK(thrown_message([&] { lensing::check_positive(nan, "lensing::f", "scale"); }).find("got nan") !=
        std::string::npos);
  CHECK(thrown_message([&] { lensing::check_positive(inf, "lensing::f", "scale"); }) != "");
  CHECK(thrown_message([&] { lensing::check_finite(nan, "lensing::g", "x"); }) ==
        "lensing::g: x must be finite (got nan)");
  CHECK(thrown_message([&] { lensing::check_finite(-inf, "lensing::g", "x"); }) != "");
  CHECK(thrown_message([] { lensing::check_count(0, 1, "lensing::h", "n"); }) == "lensing::h: n must be >= 1 (got 0)");
  CHECK(thrown_message([] { lensing::check_in_open_closed(0.0, 0.0, 1.0, "lensing::e", "q"); }) ==
        "lensing::e: q must be in (0, 1] (got 0)");
  CHECK(thrown_message([] { lensing::check_in_open_closed(1.5, 0.0, 1.0, "lensing::e", "q"); }) != "");
  CHECK(thrown_message([&] { lensing::check_in_open_closed(nan, 0.0, 1.0, "lensing::e", "q"); }) != "");
  CHECK(thrown_message([] { lensing::check_argument(false, "lensing::k", "custom"); }) == "lensing::k: custom");

  // Valid arguments pass silently.
  CHECK(thrown_message([] {
          lensing::check_positive(1e-30, "f", "x");
          lensing::check_finite(-1e300, "f", "x");
          lensing::check_count(1, 1, "f", "n");
          lensing::check_in_open_closed(1.0, 0.0, 1.0, "f", "q");
          lensing::check_argument(true, "f", "x");
        }) == "");
}
