// time_delays: images, magnifications and time delays of a quadruply imaged
// point source behind an SIE + external-shear lens, and a picture of the
// critical curves and caustics.
//
//   time_delays [output.png] [beta_x] [beta_y]
//
// The lens (lenstronomy parameter conventions) sits at z = 0.405, the source
// at z = 2.63, in flat Lambda-CDM with H0 = 70 km/s/Mpc, Om0 = 0.3.  Prints
// every image with its magnification, parity, Fermat potential and delay
// after the first image, the H0 that these delays imply back (a round trip),
// and writes a PNG: left, the image plane with the critical curves
// (tangential orange, radial green) and the images (red: minima, blue:
// saddles); right, the source plane (zoomed 4x) with the caustics and the
// source.  Bad arguments give a clear error and exit code 2.
#include "../common/cli.hpp"

#include <lensing/cosmology/flat_lcdm.hpp>
#include <lensing/io/png.hpp>
#include <lensing/profiles/composite.hpp>
#include <lensing/profiles/external_shear.hpp>
#include <lensing/profiles/sie.hpp>
#include <lensing/raytrace/critical_curves.hpp>
#include <lensing/raytrace/image_positions.hpp>
#include <lensing/raytrace/time_delays.hpp>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace {
void usage(std::FILE* f) { std::fprintf(f, "usage: time_delays [output.png] [beta_x] [beta_y]\n"); }
}  // namespace

// Declared in ../common/cli.hpp.
[[noreturn]] void bad(std::string const& msg) {
  std::fprintf(stderr, "time_delays: %s\n", msg.c_str());
  usage(stderr);
  std::exit(2);
}

int main(int argc, char* argv[]) {
  // Arguments first (Kokkos-free), so a bad one exits before Kokkos starts.
  if (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    usage(stdout);
    return 0;
  }
  if (argc > 4) bad("at most 3 arguments, got " + std::to_string(argc - 1));
  std::string const out = argc > 1 ? argv[1] : "time_delays.png";
  if (out.empty()) bad("output.png (argument 1) must be a non-empty file name");
  // The lens's Einstein radius is 1.39": sources beyond 100" are surely a typo.
  double const bx = argc > 2 ? parse_real("beta_x (argument 2)", argv[2], -100, 100) : 0.0124;
  double const by = argc > 3 ? parse_real("beta_y (argument 3)", argv[3], -100, 100) : -0.0669;
  Kokkos::ScopeGuard guard(argc, argv);
  try {
    using Lens = lensing::Composite<lensing::SIE<double>, lensing::ExternalShear<double>>;
    Lens const lens(lensing::SIE<double>{1.39, -0.0698, 0.0065, 0.0, 0.0},
                    lensing::ExternalShear<double>{0.0462, 0.0225, 0.0, 0.0});
    lens.check();
    lensing::FlatLambdaCDM<double> const cosmo(70.0, 0.3);
    double const zl = 0.405, zs = 2.626;
    Kokkos::DefaultHostExecutionSpace host;

    lensing::ImageFinder<Lens> const finder(host, lens, 3.0, 128);
    auto const images = lensing::time_delays(finder, cosmo, zl, zs, bx, by);
    std::printf("lens: SIE theta_E = 1.39\", e1 = -0.0698, e2 = 0.0065 + shear (0.0462, 0.0225), z = %.3f\n", zl);
    std::printf("source: (%.4f\", %.4f\") at z = %.3f; D_dt = %.1f Mpc (H0 = 70, Om0 = 0.3)\n", bx, by, zs,
                cosmo.time_delay_distance(zl, zs));
    std::printf("%zu images (tolerance %.0e\" in the source plane):\n", images.size(),
                lensing::ImageFinder<Lens>::default_tolerance);
    std::printf("  %12s %12s %12s %7s %14s %12s\n", "x [\"]", "y [\"]", "mu", "parity", "phi [\"^2]", "delay [d]");
    for (auto const& t : images)
      std::printf("  %12.8f %12.8f %12.5f %7s %14.8f %12.5f\n", t.image.x, t.image.y, t.image.magnification,
                  t.image.parity > 0 ? "min" : "saddle", t.fermat_potential, t.delay);

    // Round trip: the H0 these delays imply, starting from a wrong cosmology.
    std::vector<double> dphi, dt, sigma;
    for (size_t k = 1; k < images.size(); ++k) {
      dphi.push_back(images[k].fermat_potential - images[0].fermat_potential);
      dt.push_back(images[k].delay);
      sigma.push_back(0.5);  // days, a typical measurement error
    }
    if (!dphi.empty()) {
      auto const fit = lensing::h0_from_delays(lensing::FlatLambdaCDM<double>(60.0, 0.3), zl, zs, dphi, dt, sigma);
      std::printf("H0 from these delays (0.5 d errors): %.6f +- %.2f km/s/Mpc\n", fit.value, fit.sigma);
    }

    auto const curves = lensing::critical_curves(host, lens, 3.0, 512);
    std::printf("%zu critical curve(s):", curves.size());
    for (auto const& c : curves)
      std::printf(" %s (%zu vertices)", c.kind == lensing::CriticalKind::tangential ? "tangential" : "radial",
                  c.x.size());
    std::printf("\n");

    // Left half: image plane [-2.2, 2.2]^2; right half: source plane [-0.55, 0.55]^2.
    lensing::io::Canvas canvas(1200, 600);
    lensing::io::Rgb const tangential{230, 120, 0}, radial{0, 150, 60}, grey{120, 120, 120};
    double const L = 2.2, S = 0.55;
    canvas.set_window(-L, 3 * L, -L, L);
    canvas.line(-L, -L, -L, L, grey);
    canvas.line(L, -L, L, L, grey, 2);
    for (auto const& c : curves) {
      std::vector<double> x(c.x.begin(), c.x.end()), y(c.y.begin(), c.y.end());
      canvas.polyline(x, y, c.kind == lensing::CriticalKind::tangential ? tangential : radial, c.closed, 2);
    }
    canvas.marker(0, 0, grey, 2);
    for (auto const& t : images)
      canvas.marker(t.image.x, t.image.y,
                    t.image.parity > 0 ? lensing::io::Rgb{210, 30, 30} : lensing::io::Rgb{30, 60, 220}, 6);
    canvas.set_window(-3 * S, S, -S, S);
    for (auto const& c : curves) {
      std::vector<double> x(c.beta_x.begin(), c.beta_x.end()), y(c.beta_y.begin(), c.beta_y.end());
      canvas.polyline(x, y, c.kind == lensing::CriticalKind::tangential ? tangential : radial, c.closed, 2);
    }
    canvas.marker(bx, by, lensing::io::Rgb{0, 0, 0}, 5);
    canvas.write(out);
    std::printf("wrote %s\n", out.c_str());
    return 0;
  } catch (std::invalid_argument const& e) {
    std::fprintf(stderr, "time_delays: %s\n", e.what());
    return 2;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "time_delays: %s\n", e.what());
    return 1;
  }
}
