// Writes the training set that check_hdf5_h5py.py reads with h5py: 11 images
// of 5 x 4 pixels, written in two runs (the first dropped without finish(),
// the second resuming it), with values the script recomputes.
#include <lensing/io/hdf5.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <file.h5>\n", argv[0]);
    return 2;
  }
  namespace io = lensing::io;
  std::size_t const n = 11, ny = 5, nx = 4;
  std::vector<std::string> const names{"theta_E", "e1", "e2"};
  io::Hdf5Attributes a{{"preset", "HST-like"}};
  a.set("seed", std::uint64_t(0x8000000000000005ull)).set("pixel_scale", 0.05).set("n_bands", -3);
  io::Hdf5WriterOptions o;
  o.chunk_images = 4;
  try {
    auto run = [&](std::size_t upto, bool finish) {
      io::Hdf5TrainingSetWriter w(argv[1], ny, nx, names, a, o);
      for (std::size_t i = w.size(); i < upto; ++i) {
        float img[ny * nx];
        for (std::size_t p = 0; p < ny * nx; ++p)
          img[p] = static_cast<float>(1000 * i + 10 * (p / nx)) + 0.5f * static_cast<float>(p % nx);
        double const lab[3] = {double(i), double(i) + 0.125, -double(i)};
        w.append(img, lab, 1);
      }
      if (finish) w.finish();
    };
    run(6, false);
    run(n, true);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
