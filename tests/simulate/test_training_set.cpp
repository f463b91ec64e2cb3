#include <lensing/model/render.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/simulate/training_set.hpp>

#include <lensing_test.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>
#include <xtensor/xadapt.hpp>

namespace {

namespace sim = lensing::simulate;

constexpr int n_images = 12, side = 32;

sim::TrainingSetConfig small_config(int chunk, bool noise = true) {
  sim::TrainingSetConfig c;
  c.nx = c.ny = side;
  c.chunk_size = chunk;
  c.seed = 77;
  c.noise = noise;
  c.cosmic.rate = 2e-3;  // a few tracks per 32x32 image
  c.bad_pixels.hot_fraction = c.bad_pixels.dead_fraction = 2e-3;
  c.mask.mean_count = 1;
  return c;
}

// All images and labels of a set generated chunk by chunk, on the host.
template <class Space, class Scalar>
void generate_all(sim::TrainingSetGenerator<Scalar, typename Space::memory_space> const& g, std::vector<double>& images,
                  std::vector<double>& labels) {
  using Mem = typename Space::memory_space;
  Space const space;
  int const chunk = g.chunk_size(), K = g.num_labels();
  images.clear();
  labels.clear();
  for (int first = 0; first < n_images; first += chunk) {
    int const m = std::min(chunk, n_images - first);
    lensing::View3D<Scalar, Mem> img("img", m, side, side);
    lensing::View2D<Scalar, Mem> lab("lab", m, K);
    g.generate(space, std::uint64_t(first), img, lab);
    space.fence();
    auto hi = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), img);
    auto hl = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lab);
    images.insert(images.end(), hi.data(), hi.data() + hi.size());
    labels.insert(labels.end(), hl.data(), hl.data() + hl.size());
  }
}

std::string temp_dir(std::string const& name) {
  return "/tmp/lensing_test_training_set_" + std::to_string(::getpid()) + "_" + name;
}

}  // namespace

LENSING_TEST_CASE_TEMPLATE("training set: identical for every chunk size and backend", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  auto const table = sim::default_training_set_priors<Scalar, Mem>();
  std::vector<double> a, la, b, lb, h, lh;
  generate_all<Space, Scalar>(sim::TrainingSetGenerator<Scalar, Mem>(small_config(n_images), table), a, la);
  generate_all<Space, Scalar>(sim::TrainingSetGenerator<Scalar, Mem>(small_config(5), table), b, lb);
  REQUIRE(a.size() == size_t(n_images) * side * side);
  CHECK(a == b);  // bit-identical: counter-based streams, same sums in the same order
  CHECK(la == lb);
  // Serial (host) reference: the same numbers on another backend.
  using Host = Kokkos::DefaultHostExecutionSpace;
  auto const host_table = sim::default_training_set_priors<Scalar, Host::memory_space>();
  generate_all<Host, Scalar>(sim::TrainingSetGenerator<Scalar, Host::memory_space>(small_config(4), host_table), h, lh);
  CHECK(la == lh);
  double peak = 0, diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    peak = std::max(peak, std::fabs(h[i]));
    diff = std::max(diff, std::fabs(a[i] - h[i]));
  }
  CHECK(diff <= 1e-5 * peak);
  // Images differ from one another, and noise / artefacts are present.
  bool distinct = false;
  for (int i = 0; i < side * side; ++i)
    distinct = distinct || a[i] != a[side * side + i];
  CHECK(distinct);
}

LENSING_TEST_CASE_TEMPLATE("training set: labels are the prior draws and drive the rendering", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  Space const space;
  auto const table = sim::default_training_set_priors<Scalar, Mem>();
  auto const cfg = small_config(n_images, /*noise=*/false);
  sim::TrainingSetGenerator<Scalar, Mem> const g(cfg, table);
  std::vector<double> images, labels;
  generate_all<Space, Scalar>(g, images, labels);
  // Labels = ParameterTable::sample with the generator's seed.
  int const K = table.size();
  lensing::View2D<Scalar, Mem> drawn("drawn", n_images, K);
  table.sample(space, drawn, cfg.seed, 0);
  space.fence();
  auto hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), drawn);
  long mismatch = 0;
  for (int i = 0; i < n_images * K; ++i)
    mismatch += labels[i] == double(hd.data()[i]) ? 0 : 1;
  CHECK(mismatch == 0);
  CHECK(g.label_names() == sim::training_set_parameter_names());
  // Within the priors' supports.
  for (int i = 0; i < n_images; ++i)
    for (int k = 0; k < K; ++k) {
      auto const& p = table.prior(k);
      CHECK(labels[i * K + k] >= p.lo);
      CHECK(labels[i * K + k] <= p.hi);
    }
  // Noise-free images = Renderer (k x k sub-pixels) + GaussianFilter for the
  // sky built from each label row; the source galaxy sits at (source_x, source_y).
  lensing::Renderer<Scalar, Mem> const renderer(g.grid());
  lensing::GaussianFilter<Scalar, Mem> const psf(cfg.psf_fwhm, cfg.pixel_scale, side, side);
  lensing::View2D<Scalar, Mem> sharp("sharp", side, side), blurred("blurred", side, side);
  double worst = 0;
  for (int i = 0; i < n_images; ++i) {
    std::vector<Scalar> row(K);
    for (int k = 0; k < K; ++k)
      row[k] = Scalar(labels[i * K + k]);
    auto const sky = g.sky(row.data(), std::uint64_t(i));
    CHECK(double(sky.source.center_x) == double(row[g.columns().source_x]));
    CHECK(double(sky.lens.template get<0>().theta_E) == double(row[g.columns().theta_E]));
    renderer.render_brightness(space, sky, sharp);
    psf.apply(space, sharp, blurred);
    space.fence();
    auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), blurred);
    double peak = 0, diff = 0, total = 0;
    for (int p = 0; p < side * side; ++p) {
      double const v = images[size_t(i) * side * side + p];
      peak = std::max(peak, std::fabs(double(hb.data()[p])));
      diff = std::max(diff, std::fabs(v - double(hb.data()[p])));
      total += v;
    }
    worst = std::max(worst, diff / peak);
    CHECK(total > 0);
  }
  // The host path renders with vector atan/pow/exp (libmvec, <= 4 ulp; the
  // Renderer's scalar libm calls <= 1 ulp), errors that the Sérsic exponent
  // b_n (R/R_e)^(1/n) ~ 10 amplifies: a few 1e-6 (float), 1e-14 (double) of the peak.
  CHECK(worst <= (std::is_same<Scalar, float>::value ? 2e-5 : 1e-13));
}

LENSING_TEST_CASE_TEMPLATE("training set: files, resume and bad input", Config, lensing::test::FloatFirstConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  namespace fs = std::filesystem;
  Space const space;
  auto const table = sim::default_training_set_priors<Scalar, Mem>();
  sim::TrainingSetGenerator<Scalar, Mem> const g(small_config(5), table);
  std::vector<double> images, labels;
  generate_all<Space, Scalar>(g, images, labels);
  std::string const dir = temp_dir(Space::name());
  fs::remove_all(dir);
  sim::TrainingSetWriteOptions opt;
  opt.progress = false;
  opt.mosaic_count = 9;
  auto const s1 = sim::write_training_set(space, g, n_images, dir, opt);
  CHECK(s1.chunks == 3);
  CHECK(s1.generated == n_images);
  CHECK(s1.chunks_skipped == 0);
  auto const ri = lensing::io::read_npy<float>(dir + "/images.npy");
  auto const rl = lensing::io::read_npy<double>(dir + "/labels.npy");
  REQUIRE(ri.shape == std::vector<size_t>{size_t(n_images), size_t(side), size_t(side)});
  REQUIRE(rl.shape == std::vector<size_t>{size_t(n_images), size_t(table.size())});
  CHECK(ri.descr == "<f4");
  CHECK(rl.descr == "<f8");
  long bad = 0;
  for (size_t i = 0; i < images.size(); ++i)
    bad += double(ri.data[i]) == double(float(images[i])) ? 0 : 1;
  for (size_t i = 0; i < labels.size(); ++i)
    bad += rl.data[i] == labels[i] ? 0 : 1;
  CHECK(bad == 0);
  std::ifstream names(dir + "/labels_names.txt");
  std::string line;
  std::vector<std::string> read_names;
  while (std::getline(names, line))
    read_names.push_back(line);
  CHECK(read_names == g.label_names());
  // The label table on the host (xtensor), from the merged labels.npy.
  std::array<std::size_t, 2> const label_shape{size_t(n_images), size_t(table.size())};
  auto const label_table = sim::read_training_labels(dir);
  CHECK(label_table.names == g.label_names());
  CHECK(label_table.values == xt::adapt(labels, label_shape));
  auto const theta_e = label_table.column("theta_E");
  CHECK(theta_e(1) == labels[table.size() + label_table.index("theta_E")]);
  CHECK_THROWS_AS(label_table.index("no_such_label"), std::invalid_argument);
  auto const cube = lensing::io::read_fits<float>(dir + "/images.fits");
  CHECK(cube.shape == ri.shape);
  CHECK(cube.data == ri.data);
  REQUIRE(cube.find("PNAME1") != nullptr);
  CHECK(cube.find("PNAME1")->text == "theta_E");
  CHECK(cube.value("NPARAM") == double(table.size()));
  CHECK(fs::file_size(dir + "/mosaic.png") > 100);
#if defined(LENSING_HAS_HDF5)
  {
    // The HDF5 file holds the same images, labels and names, and the manifest.
    auto const h5 = lensing::io::read_hdf5_training_set(dir + "/training_set.h5");
    CHECK(h5.n == std::size_t(n_images));
    CHECK(h5.images == ri.data);
    CHECK(h5.labels == rl.data);
    CHECK(h5.label_names == g.label_names());
  }
#endif
  // Resume: everything is found on disk, files unchanged.
  auto const s2 = sim::write_training_set(space, g, n_images, dir, opt);
  CHECK(s2.chunks_skipped == 3);
  CHECK(s2.generated == 0);
  CHECK(lensing::io::read_npy<float>(dir + "/images.npy").data == ri.data);
  // Resume after losing a chunk: only that chunk is regenerated, identically.
  fs::remove(dir + "/chunks/images_000001.npy");
  auto const s3 = sim::write_training_set(space, g, n_images, dir, opt);
  CHECK(s3.generated == 5);
  CHECK(lensing::io::read_npy<float>(dir + "/images.npy").data == ri.data);
  // An interrupted run (here: the merged images.npy cannot be written, a
  // full disk stood in for by the file-size limit) leaves no truncated
  // merged file and no temporary beside the chunks; the resume completes
  // the set byte-identically.
  {
    std::string const dir2 = temp_dir(std::string(Space::name()) + "_interrupted");
    fs::remove_all(dir2);
    {
      rlimit saved{};
      ::getrlimit(RLIMIT_FSIZE, &saved);
      auto const handler = ::signal(SIGXFSZ, SIG_IGN);
      rlimit l = saved;
      l.rlim_cur = 30000;  // a chunk's images (20.6 kB) fit, the merged 49 kB do not
      REQUIRE(::setrlimit(RLIMIT_FSIZE, &l) == 0);
      CHECK_THROWS_AS(sim::write_training_set(space, g, n_images, dir2, opt), std::runtime_error);
      ::setrlimit(RLIMIT_FSIZE, &saved);
      ::signal(SIGXFSZ, handler);
    }
    std::set<std::string> top, chunks;
    for (auto const& e : fs::directory_iterator(dir2))
      top.insert(e.path().filename().string());
    for (auto const& e : fs::directory_iterator(dir2 + "/chunks"))
      chunks.insert(e.path().filename().string());
    CHECK(top == std::set<std::string>{"chunks", "labels_names.txt", "manifest.txt"});
    CHECK(chunks.size() == 6);  // three complete chunks, nothing else
    // No merged labels.npy: the label table is read from the chunks.
    CHECK(sim::read_training_labels(dir2).values == xt::adapt(labels, label_shape));
    auto const s4 = sim::write_training_set(space, g, n_images, dir2, opt);
    CHECK(s4.chunks_skipped == 3);
    for (char const* f : {
           "/images.npy", "/labels.npy", "/images.fits", "/labels.fits", "/mosaic.png"
#if defined(LENSING_HAS_HDF5)
               ,
               "/training_set.h5"
#endif
         }) {
      std::ifstream a(dir + f, std::ios::binary), b(dir2 + f, std::ios::binary);
      std::string const sa((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
      std::string const sb((std::istreambuf_iterator<char>(b)), std::istreambuf_iterator<char>());
      CAPTURE(f);
      CHECK(!sa.empty());
      CHECK(sa == sb);
    }
    fs::remove_all(dir2);
  }
  // Other settings into the same directory are refused.
  auto other = small_config(5);
  other.seed = 78;
  sim::TrainingSetGenerator<Scalar, Mem> const g2(other, table);
  CHECK_THROWS_AS(sim::write_training_set(space, g2, n_images, dir, opt), std::runtime_error);
  fs::remove_all(dir);

  // Bad input.
  CHECK_THROWS_AS(sim::write_training_set(space, g, 0, dir, opt), std::invalid_argument);
  using Gen = sim::TrainingSetGenerator<Scalar, Mem>;
  using Table = lensing::ParameterTable<Scalar, Mem>;
  auto missing = Table({{"theta_E", lensing::Prior<Scalar>::uniform(1, 2)}});
  CHECK_THROWS_WITH_AS(Gen(small_config(5), missing), doctest::Contains("no 'e1'"), std::invalid_argument);
  auto unbounded = sim::default_training_set_priors<Scalar, Mem>();
  auto entries = std::vector<std::pair<std::string, lensing::Prior<Scalar>>>{};
  for (int k = 0; k < unbounded.size(); ++k)
    entries.push_back({unbounded.names()[k], k == 0 ? lensing::Prior<Scalar>::normal(1, 0.3) : unbounded.prior(k)});
  Table const unbounded_table(entries);
  CHECK_THROWS_WITH_AS(Gen(small_config(5), unbounded_table), doctest::Contains("theta_E"), std::invalid_argument);
  auto cfg = small_config(5);
  cfg.exposure_time = -1;
  CHECK_THROWS_AS(Gen(cfg, table), std::invalid_argument);
  lensing::View3D<Scalar, Mem> wrong("wrong", 6, side, side);
  lensing::View2D<Scalar, Mem> lab("lab", 6, table.size());
  CHECK_THROWS_AS(g.generate(space, 0, wrong, lab), std::invalid_argument);  // 6 > chunk_size 5
}
