// mpi/fit_catalogue.hpp under mpiexec -n 1 and -n 2: a catalogue of 5 small
// SIS + Sersic cutouts (one with a NaN pixel) fitted by MAP + Laplace
// (fit/workflow.hpp find_map) through the dynamic work queue.  The table
// holds exactly the values of a plain loop over the lenses (17 digits: exact
// round trip), the NaN lens is a failed row and the others are fitted; with 2
// ranks the table is byte-identical to a 1-rank run and to a run where rank 0
// only serves the queue; a restart after lost results refits only those
// lenses; other columns in the work directory and a configuration that
// differs across ranks are refused by name.
#include <lensing/fit/posterior.hpp>
#include <lensing/fit/workflow.hpp>
#include <lensing/io/npy.hpp>
#include <lensing/likelihood/gaussian.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/mpi/fit_catalogue.hpp>
#include <lensing/profiles/sis.hpp>
#include <lensing/sources/light_profile.hpp>
#include <lensing/sources/sersic.hpp>

#include <doctest/doctest.h>
#include <Kokkos_Core.hpp>
#include <mpi_test_support.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

namespace {
using S = double;
using Mem = Kokkos::HostSpace;
using Space = Kokkos::DefaultHostExecutionSpace;
using Model = lensing::LensModel<lensing::SIS<S>, lensing::Sersic<S>, lensing::NoLight<S>>;
using Obs = lensing::Observation<S, Mem, lensing::NoPsf<S>>;
using Like = lensing::GaussianLikelihood<Model, Mem, lensing::NoPsf<S>>;
using P = lensing::Prior<double>;
constexpr int npix = 14, nlens = 5, bad_lens = 3;

Obs observation() { return Obs(lensing::PixelGrid<S>::square(npix, S(0.12), 1), lensing::NoPsf<S>{}); }

// Catalogue files written by rank 0: lens i has theta_E = 0.8 + 0.07 i,
// noise sigma 0.2 + 0.02 i (one value per lens) and a fixed pseudo-noise
// pattern; lens bad_lens has a NaN pixel.
void write_catalogue(std::string const& dir) {
  Space space;
  Obs const obs = observation();
  std::vector<double> images, sigma;
  lensing::View2D<S, Mem> img("img", npix, npix);
  for (int i = 0; i < nlens; ++i) {
    std::vector<S> const t = {0.8 + 0.07 * i, 0.0, 0.0, 8.0, 0.2, 1.5, 0.05 * i - 0.1, 0.03};
    obs.render(space, Model::unpack(t.data()), img);
    space.fence();
    double const s = 0.2 + 0.02 * i;
    for (int iy = 0; iy < npix; ++iy)
      for (int ix = 0; ix < npix; ++ix)
        images.push_back(img(iy, ix) + s * std::sin(12.9898 * ix + 78.233 * iy + 3.1 * i));
    sigma.push_back(s);
  }
  images[std::size_t(bad_lens) * npix * npix + 17] = std::numeric_limits<double>::quiet_NaN();
  lensing::io::write_npy(dir + "/images.npy", images.data(),
                         {std::size_t(nlens), std::size_t(npix), std::size_t(npix)});
  lensing::io::write_npy(dir + "/noise.npy", sigma.data(), {std::size_t(nlens)});
}

// MAP + Laplace of lens i: theta_E, source amp and centre free.  A function
// of i only (starts drawn with seed 100 + i).
std::vector<double> fit_lens(lensing::mpi::LensCatalogue const& cat, std::size_t i) {
  Space space;
  lensing::View2D<S, Mem> data("data", npix, npix), noise("noise", npix, npix), mask("mask", npix, npix);
  for (int iy = 0; iy < npix; ++iy)
    for (int ix = 0; ix < npix; ++ix) {
      data(iy, ix) = cat.image(i)[iy * npix + ix];
      noise(iy, ix) = cat.noise_map(i)[iy * npix + ix];
      mask(iy, ix) = 1;
    }
  lensing::ParameterTable<double, Mem> table;
  table.add("lens0.theta_E", P::uniform(0.4, 1.8))
      .add("lens0.center_x", P::fixed(0))
      .add("lens0.center_y", P::fixed(0))
      .add("source0.amp", P::log_uniform(1, 50))
      .add("source0.R_sersic", P::fixed(0.2))
      .add("source0.n_sersic", P::fixed(1.5))
      .add("source0.center_x", P::normal(0, 0.3))
      .add("source0.center_y", P::normal(0, 0.3));
  lensing::Posterior<Like> const post(Like(observation(), data, noise, mask), table);  // throws on NaN data
  lensing::MapOptions mo;
  mo.scales = post.start_scales();
  auto const map = lensing::find_map(space, post, post.draw_prior_starts(2, 100 + i), mo);
  auto const v = post.constrain(map.q);
  return {v[0], v[3], v[6], v[7], std::sqrt(map.covariance[0]), map.log_density};
}

std::vector<std::string> const columns = {"theta_E", "source_amp", "source_x", "source_y", "sd_q_theta_E", "log_p"};

}  // namespace

TEST_CASE("mpi::fit_catalogue: the table equals a plain loop, for any rank count; restart fits only lost lenses") {
  lensing::mpi::Communicator world;
  std::string const dir = lensing::test::shared_dir(world, "catalogue");
  if (world.rank() == 0) write_catalogue(dir);
  world.barrier();
  auto const cat = lensing::mpi::read_lens_catalogue_npy(dir + "/images.npy", dir + "/noise.npy");
  REQUIRE(cat.n == std::size_t(nlens));
  CHECK(cat.noise_map(2)[40] == doctest::Approx(0.24));
  auto const fit = [&](std::size_t i) { return fit_lens(cat, i); };
  lensing::mpi::CatalogueFitOptions opt;
  opt.work_dir = dir + "/fits";
  opt.configuration = {{"catalogue", dir + "/images.npy"}};
  std::string const table = dir + "/table.csv";

  auto const sum = lensing::mpi::fit_catalogue(world, cat.n, columns, fit, table, opt);
  CHECK(sum.found == 0);
  CHECK(sum.fitted == std::size_t(nlens));
  CHECK(sum.failed == 1);
  REQUIRE(sum.per_rank.size() == std::size_t(world.size()));
  CHECK(sum.rank_fitted == sum.per_rank[std::size_t(world.rank())]);

  std::string const tab = world.rank() == 0 ? lensing::test::file_bytes(table) : "";
  if (world.rank() == 0) {
    // The rows against a plain loop over the lenses on this rank.
    std::string want = "lens,status,theta_E,source_amp,source_x,source_y,sd_q_theta_E,log_p,message\n";
    for (std::size_t i = 0; i < cat.n; ++i) {
      if (i == std::size_t(bad_lens)) {
        CHECK_THROWS_AS(fit_lens(cat, i), std::invalid_argument);
        want += std::to_string(i) + ",failed,,,,,,,\"";
        std::size_t const p = tab.find("\n3,failed,,,,,,,\"");
        REQUIRE(p != std::string::npos);
        std::string const msg = tab.substr(p + 17, tab.find('\n', p + 1) - p - 17);
        CHECK(msg.find("data(1, 3) = nan") != std::string::npos);  // the likelihood names the pixel
        want += msg + "\n";
        continue;
      }
      auto const v = fit_lens(cat, i);
      want += std::to_string(i) + ",ok";
      char buf[40];
      for (double x : v) {
        std::snprintf(buf, sizeof buf, ",%.17g", x);
        want += buf;
      }
      want += ",\n";
      CHECK(std::fabs(v[0] - (0.8 + 0.07 * double(i))) < 0.05);  // theta_E near its truth
    }
    CHECK(tab == want);
  }

  if (world.size() > 1) {
    // A 1-rank run (rank 0 alone) writes the same bytes.
    MPI_Comm solo = MPI_COMM_NULL;
    MPI_Comm_split(world.get(), world.rank() == 0 ? 0 : MPI_UNDEFINED, 0, &solo);
    if (world.rank() == 0) {
      MPI_Comm_set_errhandler(solo, MPI_ERRORS_RETURN);
      lensing::mpi::Communicator one(solo);
      auto o1 = opt;
      o1.work_dir = dir + "/fits_solo";
      auto const s1 = lensing::mpi::fit_catalogue(one, cat.n, columns, fit, dir + "/solo.csv", o1);
      CHECK(s1.fitted == std::size_t(nlens));
      CHECK(lensing::test::file_bytes(dir + "/solo.csv") == tab);
      MPI_Comm_free(&solo);
    }
    // Rank 0 serving the queue only: the others fit everything, same table.
    auto o2 = opt;
    o2.work_dir = dir + "/fits_served";
    o2.rank0_works = false;
    auto const s2 = lensing::mpi::fit_catalogue(world, cat.n, columns, fit, dir + "/served.csv", o2);
    CHECK(s2.per_rank[0] == 0);
    CHECK(s2.fitted == std::size_t(nlens));
    if (world.rank() == 0) CHECK(lensing::test::file_bytes(dir + "/served.csv") == tab);
  }

  // Lost results: the restart fits only those lenses; the failed one stays failed, not refitted.
  if (world.rank() == 0) {
    std::filesystem::remove(lensing::mpi::detail::lens_file(opt.work_dir, 1));
    std::filesystem::remove(lensing::mpi::detail::lens_file(opt.work_dir, 4));
    std::filesystem::remove(table);
  }
  world.barrier();
  auto const again = lensing::mpi::fit_catalogue(world, cat.n, columns, fit, table, opt);
  CHECK(again.found == 3);
  CHECK(again.fitted == 2);
  CHECK(again.failed == 1);
  if (world.rank() == 0) CHECK(lensing::test::file_bytes(table) == tab);
  auto retry = opt;
  retry.retry_failed = true;
  auto const r = lensing::mpi::fit_catalogue(world, cat.n, columns, fit, table, retry);
  CHECK(r.fitted == 1);  // the failed lens only, failing again
  CHECK(r.failed == 1);

  // A work directory of another run (other columns) is refused on every rank.
  auto other = columns;
  other.back() = "log_posterior";
  CHECK_THROWS_WITH_AS(lensing::mpi::fit_catalogue(world, cat.n, other, fit, table, opt),
                       doctest::Contains("names other columns"), std::runtime_error);
  lensing::test::remove_shared_dir(world, dir);
}

TEST_CASE("mpi::fit_catalogue: a configuration that differs across ranks is named before any fit") {
  lensing::mpi::Communicator world;
  if (world.size() < 2) return;
  std::string const dir = lensing::test::shared_dir(world, "catalogue_config");
  lensing::mpi::CatalogueFitOptions opt;
  opt.work_dir = dir + "/fits";
  opt.configuration = {{"catalogue", world.rank() == 1 ? "b.npy" : "a.npy"}};
  int calls = 0;
  auto const fit = [&](std::size_t) {
    ++calls;
    return std::vector<double>{1.0};
  };
  CHECK_THROWS_WITH_AS(lensing::mpi::fit_catalogue(world, 3, {"x"}, fit, dir + "/t.csv", opt),
                       "lensing::mpi::fit_catalogue: configuration differs across ranks: rank 1 has catalogue = "
                       "'b.npy', rank 0 has 'a.npy'",
                       std::runtime_error);
  CHECK(calls == 0);
  lensing::test::remove_shared_dir(world, dir);
}
