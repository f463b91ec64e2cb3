// A downstream program that asks for the hdf5 component only: writes a tiny
// training set with the resumable writer and reads it back (exit code 1 if
// the values differ).
#include <lensing/io/hdf5.hpp>

#include <cstdio>
#include <string>
#include <vector>

#if !defined(LENSING_HAS_HDF5) || defined(LENSING_HAS_FITS) || defined(LENSING_HAS_FFT)
#error "lensing_hdf5_consumer links lensing::hdf5 only"
#endif

int main() {
  namespace io = lensing::io;
  std::string const path = "lensing_hdf5_consumer.h5";
  std::vector<float> const images{1, 2, 3, 4, 5, 6};  // 3 images of 1 x 2
  std::vector<double> const labels{0.5, 1.5, 2.5};
  {
    io::Hdf5TrainingSetWriter w(path, 1, 2, {"theta_E"}, {{"preset", "test"}});
    w.append(images.data(), labels.data(), 3);
    w.finish();
  }
  auto const s = io::read_hdf5_training_set(path);
  std::remove(path.c_str());
  bool const ok = s.n == 3 && s.images == images && s.labels == labels && s.attributes.size() == 1;
  std::printf("lensing hdf5 consumer: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
