#ifndef LENSING_TEST_REFERENCE_HPP
#define LENSING_TEST_REFERENCE_HPP

// Loader for tests/data/lenstronomy_reference.json (lenstronomy 1.14.2 values;
// see tests/data/README.md).  Host only.  The environment variable
// LENSING_REFERENCE_JSON names another file with the same layout, e.g. one
// regenerated with another seed by ../shared/reference/gen_reference.py: the
// tests must pass on every draw, not only on the committed one.

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef LENSING_TEST_DATA_DIR
#error "LENSING_TEST_DATA_DIR must point at tests/data"
#endif

namespace lensing {
namespace test {

/// Path of the reference file: $LENSING_REFERENCE_JSON if set and non-empty,
/// else the committed tests/data/lenstronomy_reference.json (seed 1).
inline std::string reference_json_path() {
  char const* env = std::getenv("LENSING_REFERENCE_JSON");
  if (env != nullptr && *env != '\0') return env;
  return std::string(LENSING_TEST_DATA_DIR) + "/lenstronomy_reference.json";
}

inline nlohmann::json const& reference_json() {
  static nlohmann::json const j = [] {
    std::string const path = reference_json_path();
    std::ifstream in(path);
    if (!in) throw std::runtime_error("lensing tests: cannot open " + path);
    return nlohmann::json::parse(in);
  }();
  return j;
}

/// One lenstronomy mass-model evaluation: parameters and values at points.
struct MassCase {
  std::string model;
  std::map<std::string, double> params;
  std::vector<double> x, y, alpha_x, alpha_y, f_xx, f_xy, f_yy, kappa, potential;
  bool has_potential = false;
};

inline std::vector<MassCase> mass_cases(std::string const& model) {
  std::vector<MassCase> out;
  for (auto const& m : reference_json().at("mass")) {
    if (m.at("model").get<std::string>() != model) continue;
    MassCase c;
    c.model = model;
    for (auto const& [k, v] : m.at("params").items())
      c.params[k] = v.get<double>();
    c.x = m.at("x").get<std::vector<double>>();
    c.y = m.at("y").get<std::vector<double>>();
    c.alpha_x = m.at("alpha_x").get<std::vector<double>>();
    c.alpha_y = m.at("alpha_y").get<std::vector<double>>();
    c.f_xx = m.at("f_xx").get<std::vector<double>>();
    c.f_xy = m.at("f_xy").get<std::vector<double>>();
    c.f_yy = m.at("f_yy").get<std::vector<double>>();
    c.kappa = m.at("kappa").get<std::vector<double>>();
    if (m.contains("potential")) {
      c.potential = m.at("potential").get<std::vector<double>>();
      c.has_potential = true;
    }
    out.push_back(std::move(c));
  }
  if (out.empty()) throw std::runtime_error("lensing tests: no reference cases for model " + model);
  return out;
}

}  // namespace test
}  // namespace lensing

#endif
