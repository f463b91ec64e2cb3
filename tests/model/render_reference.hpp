#ifndef LENSING_TESTS_SIMULATE_RENDER_REFERENCE_HPP
#define LENSING_TESTS_SIMULATE_RENDER_REFERENCE_HPP

// The `images` entries of tests/data/lenstronomy_reference.json as lensing
// models: SIE + SHEAR lens, SERSIC_ELLIPSE source and lens light, 64^2 grid.

#include <lensing/geometry/pixel_grid.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/sources/sersic.hpp>

#include <reference.hpp>

#include <string>
#include <vector>

namespace lensing {
namespace test {

template <class Scalar>
struct ImageCase {
  Composite<SIE<Scalar>, ExternalShear<Scalar>> lens;
  SersicEllipse<Scalar> source, lens_light;
  int num_pix;
  double pixel_scale, psf_fwhm, truncation;
  nlohmann::json const* entry;
  std::vector<double> image(std::string const& key) const { return entry->at(key).get<std::vector<double>>(); }
};

template <class Scalar>
SersicEllipse<Scalar> sersic_ellipse_from(nlohmann::json const& p) {
  auto g = [&](char const* k) { return Scalar(p.at(k).get<double>()); };
  return {g("amp"), g("R_sersic"), g("n_sersic"), g("e1"), g("e2"), g("center_x"), g("center_y")};
}

template <class Scalar>
std::vector<ImageCase<Scalar>> image_cases() {
  std::vector<ImageCase<Scalar>> out;
  for (auto const& e : reference_json().at("images")) {
    auto const& lp = e.at("lens_params");
    auto g = [](nlohmann::json const& p, char const* k) { return Scalar(p.at(k).get<double>()); };
    SIE<Scalar> sie{};
    sie.theta_E = g(lp[0], "theta_E");
    sie.e1 = g(lp[0], "e1");
    sie.e2 = g(lp[0], "e2");
    sie.center_x = g(lp[0], "center_x");
    sie.center_y = g(lp[0], "center_y");
    ExternalShear<Scalar> const shear{g(lp[1], "gamma1"), g(lp[1], "gamma2"), g(lp[1], "ra_0"), g(lp[1], "dec_0")};
    ImageCase<Scalar> c{make_composite(sie, shear),
                        sersic_ellipse_from<Scalar>(e.at("source_params")[0]),
                        sersic_ellipse_from<Scalar>(e.at("lens_light_params")[0]),
                        e.at("num_pix").get<int>(),
                        e.at("pixel_scale").get<double>(),
                        e.at("psf_fwhm").get<double>(),
                        e.at("psf_truncation_sigmas").get<double>(),
                        &e};
    out.push_back(c);
  }
  return out;
}

}  // namespace test
}  // namespace lensing

#endif
