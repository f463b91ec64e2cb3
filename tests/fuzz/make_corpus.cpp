// Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<reader>/):
// a few valid files and the inputs of past defects as regression cases.
// Build and run: see scripts/fuzz.sh (--corpus regenerates it).
#include <lensing/io/fits.hpp>
#if defined(LENSING_HAS_HDF5)
#include <lensing/io/hdf5.hpp>
#endif
#include <lensing/io/npy.hpp>
#include <lensing/nn/serialize.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

std::string root;

void put(std::string const& name, std::string const& bytes) {
  std::ofstream f(root + "/" + name, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  if (!f) std::perror(name.c_str());
}

std::string npy(std::string const& dict, std::string const& data = "") {
  std::string h = dict;
  std::size_t const total = 10 + h.size() + 1;
  h.append((total + 63) / 64 * 64 - total, ' ');
  h.push_back('\n');
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += char(h.size() & 0xff);
  out += char(h.size() >> 8);
  return out + h + data;
}

std::string card(std::string s) {
  s.resize(80, ' ');
  return s;
}
std::string block(std::string s) {
  s.resize((s.size() + 2879) / 2880 * 2880, ' ');
  return s;
}
std::string header(int bitpix, std::vector<std::string> const& naxes, bool extend = false) {
  std::string h = card("SIMPLE  =                    T") + card("BITPIX  = " + std::to_string(bitpix)) +
                  card("NAXIS   = " + std::to_string(naxes.size()));
  for (std::size_t i = 0; i < naxes.size(); ++i)
    h += card("NAXIS" + std::to_string(i + 1) + "  = " + naxes[i]);
  if (extend) h += card("EXTEND  =                    T");
  return block(h + card("END"));
}

}  // namespace

int main(int argc, char** argv) {
  std::string const base = argc > 1 ? argv[1] : "tests/fuzz/corpus";
  namespace io = lensing::io;
  // npy: valid files of each dtype, then past defects.
  root = base + "/npy";
  std::vector<float> f6 = {1.5f, -2.f, 0.f, 3.25f, 1e30f, -0.f};
  std::vector<double> d3 = {1.0, -1e300, std::nan("")};
  std::vector<std::int32_t> i4 = {7, -8, 9, 10};
  std::vector<std::int64_t> i8 = {5000000000LL, -1};
  io::write_npy(root + "/valid_f4_2x3.npy", f6.data(), {2, 3});
  io::write_npy(root + "/valid_f8_3.npy", d3.data(), {3});
  io::write_npy(root + "/valid_i4_2x1x2.npy", i4.data(), {2, 1, 2});
  io::write_npy(root + "/valid_i8_scalar.npy", i8.data(), {});
  io::write_npy(root + "/valid_empty_0x5.npy", f6.data(), {0, 5});
  put("huge_1GiB_declared.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (268435456,), }"));
  put("count_overflow.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }"));
  put("shape_no_comma.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", std::string(24, '\0')));
  put("shape_int.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': 6, }", std::string(24, '\0')));
  put("shape_oversized_token.npy",
      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }"));
  put("shape_non_numeric.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (x,), }"));
  std::vector<double> out_of_range = {1e300, 3e9, 2.5};
  io::write_npy(root + "/f8_out_of_range.npy", out_of_range.data(), {3});

  // FITS.
  root = base + "/fits";
  io::write_fits(root + "/valid_float_2x3.fits", f6.data(), {2, 3}, {{"theta_E", 1.2, "", "Einstein radius"}});
  std::vector<double> cube(2 * 3 * 4);
  for (std::size_t i = 0; i < cube.size(); ++i)
    cube[i] = std::sin(double(i));
  io::write_fits(root + "/valid_double_cube.fits", cube.data(), {2, 3, 4}, {{"NAME", 0, "lens", ""}});
  std::string const empty_primary =
      block(card("SIMPLE  =                    T") + card("BITPIX  =                    8") +
            card("NAXIS   =                    0") + card("EXTEND  =                    T") + card("END"));
  std::string const ext_cards = card("XTENSION= 'IMAGE   '") + card("BITPIX  =                  -32") +
                                card("NAXIS   =                    2") + card("NAXIS1  =                    2") +
                                card("NAXIS2  =                    2") + card("PCOUNT  =                    0") +
                                card("GCOUNT  =                    1");
  std::vector<float> four = {1, 2, 3, 4};
  std::string be;  // big-endian float32 data block
  for (float v : four) {
    unsigned char b[4];
    std::memcpy(b, &v, 4);
    be += std::string{char(b[3]), char(b[2]), char(b[1]), char(b[0])};
  }
  be.resize(2880, '\0');
  put("valid_image_extension.fits", empty_primary + block(ext_cards + card("END")) + be);
  put("truncated_extension_leak.fits", empty_primary + ext_cards);
  put("huge_naxis1_2pow32.fits", header(8, {"4294967296", "1"}) + std::string(100, '\0'));
  put("pixel_count_overflow.fits", header(-32, {"4194304", "4194304", "4194304"}));
  std::vector<double> big = {1, 2, 1e300, 4};
  io::write_fits(root + "/f64_beyond_float.fits", big.data(), {2, 2});

  // Weight files for the fuzz target's architecture {3, 0, 4, 2, 0, 0}.
  root = base + "/weights";
  std::vector<std::vector<float>> wf = {{0.5f, -1.f, 2.f}, {}, {1.f, 2.f, 3.f, 4.f}, {0.f, 1.f}, {}, {}};
  std::vector<std::vector<double>> wd = {{0.5, -1, 2}, {}, {1, 2, 3, 4}, {0, 1}, {}, {}};
  put("valid_float.bin", lensing::nn::detail::encode_weights(wf));
  put("valid_double.bin", lensing::nn::detail::encode_weights(wd));
  auto nan = wd;
  nan[2][1] = std::nan("");
  put("nan_weight_valid_checksum.bin", lensing::nn::detail::encode_weights(nan));
  auto corrupt = lensing::nn::detail::encode_weights(wd);
  corrupt[24 + 16 * 3 + 3] ^= 0x40;
  put("corrupted_data_byte.bin", corrupt);
  auto v1 = lensing::nn::detail::encode_weights(wd);
  v1.resize(v1.size() - 8);
  v1[8] = 1;
  put("format_version_1.bin", v1);

#if defined(LENSING_HAS_HDF5)
  // HDF5 training sets (scripts/fuzz.sh builds this part when HDF5 is found).
  root = base + "/hdf5";
  {
    namespace io = lensing::io;
    io::Hdf5Attributes attrs{{"preset", "fuzz"}};
    attrs.set("seed", std::uint64_t(7)).set("pixel_scale", 0.05);
    io::Hdf5WriterOptions o;
    o.chunk_images = 2;
    std::vector<float> img(5 * 4 * 3);
    for (std::size_t i = 0; i < img.size(); ++i)
      img[i] = 0.25f * static_cast<float>(i);
    std::vector<double> lab(5 * 2, 0.5);
    std::string const valid = root + "/valid_5x4x3.h5";
    {
      io::Hdf5TrainingSetWriter w(valid, 4, 3, {"theta_E", "e1"}, attrs, o);
      w.append(img.data(), lab.data(), 5);
      w.finish();
    }
    {  // the configuration file of a dropped writer (no images, a format tag)
      io::Hdf5TrainingSetWriter w(root + "/partial_config.h5", 4, 3, {"theta_E", "e1"}, attrs, o);
      w.append(img.data(), lab.data(), 5);
    }
    std::rename((root + "/partial_config.h5.partial").c_str(), (root + "/partial_config.h5").c_str());
    std::remove((root + "/partial_config.h5.partial.data").c_str());
    std::ifstream f(valid, std::ios::binary);
    std::string const bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    put("truncated_half.h5", bytes.substr(0, bytes.size() / 2));
    std::string flipped = bytes;
    flipped[flipped.size() - 40] ^= 0x10;
    put("flipped_byte_near_end.h5", flipped);
  }
#endif
  return 0;
}
