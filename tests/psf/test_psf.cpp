#include <lensing/psf/convolution.hpp>
#include <lensing/psf/fft_convolution.hpp>
#include <lensing/psf/gaussian_filter.hpp>
#include <lensing/psf/kernels.hpp>

#include <lensing_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {
template <class Scalar, class Mem>
lensing::View2D<Scalar, Mem> pattern(int ny, int nx, double a, double b) {
  lensing::View2D<Scalar, Mem> v("v", ny, nx);
  auto h = Kokkos::create_mirror_view(v);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix)
      h(iy, ix) = Scalar(std::sin(a * ix + b * iy * iy + 0.3) + 0.2 * std::cos(b * ix * iy));
  Kokkos::deep_copy(v, h);
  return v;
}
template <class V>
double dot(V const& a, V const& b) {
  auto ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
  auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
  double s = 0;
  for (std::size_t i = 0; i < ha.extent(0); ++i)
    for (std::size_t j = 0; j < ha.extent(1); ++j)
      s += double(ha(i, j)) * double(hb(i, j));
  return s;
}
// scipy.ndimage.gaussian_filter of pattern(ny, nx, 0.7, 0.13) for the four
// cases below (scipy 1.17.1, float64), generated with
//   def pattern(ny, nx, a, b):
//       iy, ix = np.mgrid[0:ny, 0:nx]
//       return np.sin(a * ix + b * iy * iy + 0.3) + 0.2 * np.cos(b * ix * iy)
//   s = fwhm / (2 * np.sqrt(2 * np.log(2))) / 0.05
//   out = gaussian_filter(pattern(ny, nx, 0.7, 0.13), s, mode="nearest", truncate=5.0)
// and printed with %.17g, row-major, every row (the 20 x 20 case: rows 0, 1, 10, 19).
struct ScipyCase {
  int ny, nx;
  double fwhm;
  std::vector<int> rows;
  std::vector<double> values;
};
std::vector<ScipyCase> const& scipy_cases() {
  static std::vector<ScipyCase> const c = {
      {13, 10, 0.11, {}, {0.69761018224104365,   0.92821527772600065,   0.98581352372982489,    0.70069754941876705,
                          0.1773423172621223,    -0.34175072167474696,  -0.61491534071516352,   -0.51764966475696972,
                          -0.11877939596065679,  0.29893766441467107,   0.80111201455730585,    0.95517796641389752,
                          0.9131445442727405,    0.55266521070565244,   0.010783913507425157,   -0.46630707122877918,
                          -0.6625470721113994,   -0.49555400305477709,  -0.068527716595477531,  0.34100652672502174,
                          0.93293695841575275,   0.92296660557422872,   0.69331632731123416,    0.22632549214233655,
                          -0.29206153722983885,  -0.63366997650250489,  -0.65348540121420129,   -0.35793144816837363,
                          0.094073119264363014,  0.45887832978042858,   0.89273903882890604,    0.67441774742574312,
                          0.26390869236360259,   -0.21712186509461159,  -0.56830588523809711,   -0.64340877352937764,
                          -0.42496832709842264,  -0.030048452110959092, 0.35226029642289347,    0.57938011883436613,
                          0.48553734695115919,   0.17214932085137358,   -0.21876333143448268,   -0.49136029161431555,
                          -0.52518558449068997,  -0.31890943268501176,  0.017766396440576333,   0.31963123116074244,
                          0.45823966421618501,   0.45150999007148707,   -0.064931744812686057,  -0.22714993643690329,
                          -0.34343760768509768,  -0.30273824813996386,  -0.11617793189757367,   0.12270179306361471,
                          0.29412410435095582,   0.31274900244870263,   0.17979053708675297,    0.011898065700424582,
                          -0.13420716659285775,  -0.082445568718613138, -0.0015491255984194951, 0.085854360625465725,
                          0.14923555969469487,   0.15695230235931246,   0.092226826544767035,   -0.029092017413270509,
                          -0.1573367603241009,   -0.24019002021968225,  0.2601979196732081,     0.25412023640332765,
                          0.17198914419984621,   0.034828985108102825,  -0.079982523418062806,  -0.12966409159447159,
                          -0.12383620019887294,  -0.090676744561710321, -0.046699254097392492,  -0.0068897969675606602,
                          0.28010917303027028,   0.12083415331721839,   -0.094607637778048814,  -0.22778321461727097,
                          -0.19466674835327835,  -0.047435891633461971, 0.089127325637431809,   0.13466387924798259,
                          0.10316275964784508,   0.058400828704121673,  0.066336933104739149,   -0.034728454338744962,
                          -0.128559358863646,    -0.10215389087451579,  0.040998710584817036,   0.16106948726856962,
                          0.14121170444494185,   0.013821633256255151,  -0.097470828576440544,  -0.13428523286521971,
                          0.17206522404981028,   0.078369080115979997,  -0.023259209354873453,  -0.026826416371483107,
                          0.043864384122321361,  0.051494460882112514,  -0.040298258219952116,  -0.11190397975158806,
                          -0.068601422391202357, 0.027281429567108832,  0.18152968114139106,    0.069045493222180038,
                          -0.033754712790632926, -0.01725216690662575,  0.046885408993965809,   0.011640382735017007,
                          -0.08465620074667532,  -0.086058428473785101, 0.019443560689825796,   0.11159433998574642,
                          0.30239209056941763,   0.3373501259656696,    0.34206582515315076,    0.3109628405655091,
                          0.15061382701382034,   -0.1776525640401671,   -0.44653562437182731,   -0.41540922839663125,
                          -0.16346707421735093,  0.052660644019383696}},
      {3, 17, 0.2, {}, {0.75531527178365176,    0.79288954950097257,    0.71462256968594429,   0.47899637073623413,
                        0.13868407943079458,    -0.17619114357326726,   -0.33041476285999233,  -0.25827126847118953,
                        0.00084124231554917953, 0.31988622443825154,    0.54393804846855121,   0.56304584914471878,
                        0.36294903474966955,    0.027291679221673242,   -0.31296396436411966,  -0.55561982971213242,
                        -0.67603852487074234,   0.80491954956029821,    0.80610801963171164,   0.68645800944227564,
                        0.41793481819032463,    0.064874575437910129,   -0.23997273010363229,  -0.36978366523437567,
                        -0.27429995682931901,   -0.0079329622677630704, 0.29503514965499905,   0.48384926054659172,
                        0.46238030986902395,    0.23343799223569356,    -0.1071500567550728,   -0.42713841788244644,
                        -0.63435626291141789,   -0.71913864408475225,   0.85779116083764229,   0.81930071344353972,
                        0.65478079480968487,    0.35097636938091531,    -0.015159342796913215, -0.30824430792278662,
                        -0.41082197473323251,   -0.289551067112442,     -0.015066952927704564, 0.27075000332872923,
                        0.4220193403352242,     0.35788724851109538,    0.099760004682771408,  -0.24349561954468885,
                        -0.53863291701174654,   -0.70483334691446253,   -0.74904581711026275}},
      {1,
       5,
       0.13,
       {},
       {0.6784699308959955, 0.88388257007409188, 0.94883236025085993, 0.75685719936315743, 0.46745053599127884}},
      {20,
       20,
       0.6,
       {0, 1, 10, 19},
       {0.38884945499939405,    0.35322968050459125,   0.3152538636902385,    0.27701789908238972,
        0.24072019644878648,    0.20831254526549406,   0.18120859560791655,   0.16013770315726705,
        0.14519168238457139,    0.1360503692750501,    0.13230994461570289,   0.13379920575611565,
        0.14076961945620342,    0.15388672763580738,   0.17401904668755669,   0.20189111723596578,
        0.23771421640790374,    0.28091524193199024,   0.33005063171323301,   0.3829319829319654,
        0.36469091037897799,    0.32919632990308784,   0.29175836599279714,   0.25438724177468525,
        0.21914718777606862,    0.18783613524119894,   0.16172684152746652,   0.14144644372377269,
        0.12703301191860403,    0.11815147994110284,   0.11439665611942917,   0.11557855959621288,
        0.12188870407867272,    0.13388557082512181,   0.15229977098912992,   0.17772178088878013,
        0.21027513859358582,    0.24938197689156288,   0.29369594407295996,   0.34122313075563332,
        0.12335452577240573,    0.10443111121847234,   0.086148606810660999,  0.069222114587470324,
        0.054210495620487263,   0.041462193899607799,  0.031100946207790116,  0.023050673672592146,
        0.01708921306790356,    0.01291453321809858,   0.01020631651705505,   0.0086700249959535715,
        0.0080579175901429722,  0.0081692034953916998, 0.0088370836569535306, 0.0099124067969357348,
        0.011252052306644588,   0.012716185544230704,  0.014174040798682749,  0.015514537830569226,
        -0.010228625582418549,  -0.016057309589112112, -0.018816604351339354, -0.018897807772019957,
        -0.017076875590361189,  -0.014332364274696686, -0.011629543473017243, -0.0097433227199611519,
        -0.0091812460481579053, -0.010231496194529845, -0.013112253554480521, -0.018156759347187197,
        -0.025950448720442859,  -0.037350916688945079, -0.053363666177719621, -0.074900644294029484,
        -0.10249378639129766,   -0.13605516268967793,  -0.17476230692827424,  -0.21710788666203881}},
  };
  return c;
}
}  // namespace

TEST_CASE("PSF kernels are odd-sized and sum to 1") {
  for (auto const& k :
       {lensing::gaussian_psf_kernel<double>(0.11, 0.05), lensing::gaussian_psf_kernel<double>(0.3, 0.04),
        lensing::moffat_psf_kernel<double>(0.15, 2.5, 0.05, 15)}) {
    CHECK(k.size % 2 == 1);
    CHECK(std::accumulate(k.values.begin(), k.values.end(), 0.0) == doctest::Approx(1).epsilon(1e-14));
    // Symmetric and peaked at the centre.
    int const r = k.radius();
    CHECK(k(r, r) == *std::max_element(k.values.begin(), k.values.end()));
    CHECK(k(0, 1) == doctest::Approx(k(1, 0)).epsilon(1e-14));
    CHECK(k(r - 1, r) == doctest::Approx(k(r + 1, r)).epsilon(1e-14));
  }
  // Pixel-integrated Gaussian: the kernel's second moment is sigma^2 + 1/12
  // (pixel variance) in pixel units, to the truncation error.
  double const sigma = 2.3;
  auto const g = lensing::gaussian_psf_kernel<double>(sigma * 2 * std::sqrt(2 * std::log(2.0)), 1.0, 8.0);
  double m2 = 0;
  for (int iy = 0; iy < g.size; ++iy)
    for (int ix = 0; ix < g.size; ++ix)
      m2 += g(iy, ix) * (ix - g.radius()) * (ix - g.radius());
  CHECK(m2 == doctest::Approx(sigma * sigma + 1.0 / 12).epsilon(1e-10));
  // Moffat FWHM: the half-maximum falls at fwhm/2 (sampled finely).
  auto const m = lensing::moffat_psf_kernel<double>(9.0, 3.0, 1.0, 31, 1);
  double const peak = m(15, 15);
  double const half = std::pow(1 + std::pow(4.5 / (9.0 / (2 * std::sqrt(std::pow(2.0, 1 / 3.0) - 1))), 2), -3.0);
  CHECK(half == doctest::Approx(0.5).epsilon(1e-12));
  CHECK(m(15, 19) / peak > 0.5);
  CHECK(m(15, 20) / peak < 0.5);
  CHECK_THROWS_AS(lensing::pixel_kernel<double>(std::vector<double>(16, 1.0), 4), std::invalid_argument);
  CHECK_THROWS_AS(lensing::pixel_kernel<double>(std::vector<double>(9, 0.0), 3), std::invalid_argument);
  CHECK_THROWS_AS(lensing::pixel_kernel<double>(std::vector<double>(8, 1.0), 3), std::invalid_argument);
  CHECK_THROWS_AS(lensing::gaussian_psf_kernel<double>(-0.1, 0.05), std::invalid_argument);
  CHECK_THROWS_AS(lensing::moffat_psf_kernel<double>(0.1, 0.9, 0.05, 11), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("direct convolution: brute force and adjoint identity", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  double const tol = std::is_same<Scalar, double>::value ? 1e-13 : 2e-6;
  std::vector<Scalar> kv(25);
  for (int i = 0; i < 25; ++i)
    kv[i] = Scalar(1 + 0.3 * std::sin(1.7 * i));  // asymmetric
  auto const k = lensing::pixel_kernel(kv, 5);
  int const ny = 11, nx = 9;
  lensing::DirectConvolution<Scalar, Mem> const A(k, ny, nx);
  auto const x = pattern<Scalar, Mem>(ny, nx, 0.7, 0.13), y = pattern<Scalar, Mem>(ny, nx, -0.4, 0.29);
  lensing::View2D<Scalar, Mem> Ax("Ax", ny, nx), Aty("Aty", ny, nx);
  Space space;
  A.apply(space, x, Ax);
  A.apply_adjoint(space, y, Aty);
  space.fence();
  double const lhs = dot(Ax, y), rhs = dot(x, Aty);
  CHECK(std::fabs(lhs - rhs) <= tol * (std::fabs(lhs) + 1));
  // Brute force: the image of a delta at (3, 4) is the kernel centred there.
  lensing::View2D<Scalar, Mem> d("d", ny, nx), out("out", ny, nx);
  Kokkos::deep_copy(Kokkos::subview(d, 3, 4), Scalar(1));
  A.apply(space, d, out);
  auto ho = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  int bad = 0;
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      int const a = iy - 3 + 2, b = ix - 4 + 2;
      double const want = (a >= 0 && a < 5 && b >= 0 && b < 5) ? double(k(a, b)) : 0.0;
      bad += std::fabs(double(ho(iy, ix)) - want) > tol;
    }
  CHECK(bad == 0);
  lensing::View2D<Scalar, Mem> wrong("wrong", ny + 1, nx);
  CHECK_THROWS_AS(A.apply(space, wrong, out), std::invalid_argument);
  CHECK_THROWS_AS(A.apply(space, out, out), std::invalid_argument);
}

LENSING_TEST_CASE_TEMPLATE("Gaussian filter: scipy conventions and adjoint identity", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  double const tol = std::is_same<Scalar, double>::value ? 1e-13 : 2e-6;
  Space space;
  for (auto [ny, nx, fwhm] : {std::tuple<int, int, double>{13, 10, 0.11}, {3, 17, 0.2}, {1, 5, 0.13}, {20, 20, 0.6}}) {
    lensing::GaussianFilter<Scalar, Mem> const G(fwhm, 0.05, ny, nx);
    // scipy: radius = int(5 sigma + 0.5).
    double const s = fwhm / (2 * std::sqrt(2 * std::log(2.0))) / 0.05;
    CHECK(G.radius() == int(5 * s + 0.5));
    auto const x = pattern<Scalar, Mem>(ny, nx, 0.7, 0.13), y = pattern<Scalar, Mem>(ny, nx, -0.4, 0.29);
    lensing::View2D<Scalar, Mem> Gx("Gx", ny, nx), Gty("Gty", ny, nx);
    G.apply(space, x, Gx);
    G.apply_adjoint(space, y, Gty);
    space.fence();
    // scipy's values.  Error model: each output is two passes of 2r + 1
    // products summed (weights sum to 1, |x| <= 1.2), plus the rounding of the
    // input to Scalar: <= (1 + 2 (2r + 2)) eps max|x| each side, x 2 for scipy's own.
    {
      ScipyCase const* sc = nullptr;
      for (auto const& cs : scipy_cases())
        if (cs.ny == ny && cs.nx == nx && cs.fwhm == fwhm) sc = &cs;
      REQUIRE(sc != nullptr);
      double const eps = std::numeric_limits<Scalar>::epsilon();
      double const tol_scipy = 2 * (1 + 2 * (2 * G.radius() + 2)) * eps * 1.2;
      auto const hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), Gx);
      std::vector<int> rows = sc->rows;
      if (rows.empty())
        for (int iy = 0; iy < ny; ++iy)
          rows.push_back(iy);
      REQUIRE(sc->values.size() == rows.size() * std::size_t(nx));
      double worst = 0;
      for (std::size_t r = 0; r < rows.size(); ++r)
        for (int ix = 0; ix < nx; ++ix)
          worst = std::max(worst, std::fabs(double(hg(rows[r], ix)) - sc->values[r * nx + ix]));
      CHECK_MESSAGE(worst <= tol_scipy, "scipy gaussian_filter ", ny, "x", nx, " fwhm ", fwhm, ": max |diff| ", worst,
                    " vs model ", tol_scipy);
    }
    double const lhs = dot(Gx, y), rhs = dot(x, Gty);
    CHECK(std::fabs(lhs - rhs) <= tol * (std::fabs(lhs) + 1));
    // "nearest" keeps a constant image constant.
    lensing::View2D<Scalar, Mem> c("c", ny, nx), Gc("Gc", ny, nx);
    Kokkos::deep_copy(c, Scalar(2.5));
    G.apply(space, c, Gc);
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), Gc);
    int bad = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix)
        bad += std::fabs(double(h(iy, ix)) - 2.5) > 4 * tol;
    CHECK(bad == 0);
  }
  CHECK_THROWS_AS((lensing::GaussianFilter<Scalar, Mem>(0.0, 0.05, 4, 4)), std::invalid_argument);
}

// Rows wider than the host's register blocks (16 doubles, 32 floats) and
// with a tail after them, against the filter's definition summed here in
// double (scipy's weights: exp(-m^2 / (2 sigma^2)), |m| <= r, normalised;
// edges "nearest").  Error model as the scipy check above: each output is
// two passes of 2r + 1 products (weights sum to 1, |x| <= 1.2), plus the
// rounding of the weights and of the x pass's output to Scalar:
// <= (2 + 2 (2r + 2)) eps max|x|.
LENSING_TEST_CASE_TEMPLATE("Gaussian filter: wide rows (register blocks and tails) against a direct sum", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  double const eps = std::numeric_limits<Scalar>::epsilon();
  Space space;
  for (auto [ny, nx, fwhm] : {std::tuple<int, int, double>{9, 75, 0.1}, {40, 33, 0.3}, {6, 64, 0.17}}) {
    lensing::GaussianFilter<Scalar, Mem> const G(fwhm, 0.05, ny, nx);
    int const r = G.radius();
    double const sigma = fwhm / (2 * std::sqrt(2 * std::log(2.0))) / 0.05;
    std::vector<double> w(2 * r + 1);
    double wsum = 0;
    for (int m = -r; m <= r; ++m)
      wsum += w[m + r] = std::exp(-double(m) * m / (2 * sigma * sigma));
    for (double& v : w)
      v /= wsum;
    auto const x = pattern<Scalar, Mem>(ny, nx, 0.7, 0.13);
    lensing::View2D<Scalar, Mem> gx("gx", ny, nx);
    G.apply(space, x, gx);
    space.fence();
    auto const hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
    auto const hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gx);
    auto clamp = [](int i, int n) { return std::min(std::max(i, 0), n - 1); };
    std::vector<double> t(std::size_t(ny) * nx, 0.0);
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix)
        for (int m = -r; m <= r; ++m)
          t[std::size_t(iy) * nx + ix] += w[m + r] * double(hx(iy, clamp(ix + m, nx)));
    double worst = 0, peak = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        double want = 0;
        for (int m = -r; m <= r; ++m)
          want += w[m + r] * t[std::size_t(clamp(iy + m, ny)) * nx + ix];
        worst = std::max(worst, std::fabs(double(hg(iy, ix)) - want));
        peak = std::max(peak, std::fabs(double(hx(iy, ix))));
      }
    double const bound = (2 + 2 * (2 * r + 2)) * eps * 1.2;
    CHECK(peak > 0.5);
    CHECK_MESSAGE(worst <= bound, ny, "x", nx, " fwhm ", fwhm, ": max |diff| ", worst, " vs model ", bound);
  }
}

LENSING_TEST_CASE_TEMPLATE("Gaussian filter: small images on the calling thread give the threaded bits", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  // The passes of a small image run on the calling thread (core/parallel.hpp)
  // through the same row function as the parallel loop: the same bits.
  // host_fork_join_ns = 0 forces the parallel loop, a huge value the caller.
  Space space;
  int const ny = 37, nx = 53;
  lensing::GaussianFilter<Scalar, Mem> const G(0.1, 0.05, ny, nx);
  auto const x = pattern<Scalar, Mem>(ny, nx, 0.7, 0.13);
  auto run = [&](double fork_join_ns, bool adjoint) {
    lensing::set_host_fork_join_ns(fork_join_ns);
    lensing::View2D<Scalar, Mem> out("out", ny, nx);
    if (adjoint)
      G.apply_adjoint(space, x, out);
    else
      G.apply(space, x, out);
    space.fence();
    auto const h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
    return std::vector<Scalar>(h.data(), h.data() + h.size());
  };
  double const saved = lensing::host_fork_join_ns();
  for (bool adjoint : {false, true}) {
    auto const threaded = run(0, adjoint), caller = run(1e12, adjoint);
    int differ = 0;
    for (std::size_t i = 0; i < threaded.size(); ++i)
      differ += std::memcmp(&threaded[i], &caller[i], sizeof(Scalar)) != 0;
    CHECK(differ == 0);
  }
  lensing::set_host_fork_join_ns(saved);
}

LENSING_TEST_CASE_TEMPLATE("FFT convolution equals direct convolution, adjoint included", Config,
                           lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  using Mem = typename Config::memory_space;
  double const tol = std::is_same<Scalar, double>::value ? 1e-12 : 2e-5;
  Space space;
  for (auto [ny, nx, size] : {std::tuple<int, int, int>{11, 9, 5}, {16, 21, 3}, {7, 7, 13}, {1, 6, 3}}) {
    std::vector<Scalar> kv(size * size);
    for (int i = 0; i < size * size; ++i)
      kv[i] = Scalar(1 + 0.5 * std::sin(2.3 * i + 0.4));
    auto const k = lensing::pixel_kernel(kv, size);
    lensing::DirectConvolution<Scalar, Mem> const D(k, ny, nx);
    lensing::FftConvolution<Scalar, Mem> const F(space, k, ny, nx);
    auto const x = pattern<Scalar, Mem>(ny, nx, 0.7, 0.13), y = pattern<Scalar, Mem>(ny, nx, -0.4, 0.29);
    lensing::View2D<Scalar, Mem> a("a", ny, nx), b("b", ny, nx), c("c", ny, nx), d("d", ny, nx);
    D.apply(space, x, a);
    F.apply(space, x, b);
    D.apply_adjoint(space, y, c);
    F.apply_adjoint(space, y, d);
    space.fence();
    auto ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
    auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
    auto hc = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), c);
    auto hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), d);
    int bad = 0;
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        bad += std::fabs(double(ha(iy, ix)) - double(hb(iy, ix))) > tol;
        bad += std::fabs(double(hc(iy, ix)) - double(hd(iy, ix))) > tol;
      }
    CHECK(bad == 0);
    double const lhs = dot(b, y), rhs = dot(x, d);
    CHECK(std::fabs(lhs - rhs) <= tol * (std::fabs(lhs) + 1));
  }
  lensing::View2D<Scalar, Mem> wrong("wrong", 3, 3), out("out", 4, 4);
  lensing::FftConvolution<Scalar, Mem> const F(space, lensing::gaussian_psf_kernel<Scalar>(0.2, 0.1), 4, 4);
  CHECK_THROWS_AS(F.apply(space, wrong, out), std::invalid_argument);
}
