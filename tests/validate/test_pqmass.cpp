// PQMass: hand-computed chi-square for given reference points; p-values
// uniform under the null (Kolmogorov-Smirnov over 1000 repeats) and ~0 for a
// shifted distribution; PNG; bad inputs.

#include <lensing/core/random.hpp>
#include <lensing/validate/pqmass.hpp>

#include <lensing_test.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

namespace lv = lensing::validate;

namespace {
std::vector<double> gaussian(int n, int d, double shift, lensing::Rng& rng) {
  std::vector<double> v(std::size_t(n) * d);
  for (auto& x : v)
    x = shift + rng.normal();
  return v;
}
}  // namespace

TEST_CASE("PQMass: hand-computed chi-square") {
  // 1-d, references {0, 10}: x = {-1, 1, 2, 9} -> counts (3, 1); y = {0.5, 8, 11, 12} -> (1, 3).
  // N_P = N_Q = 4: expected 2 per set and cell; chi2 = 4 * (1^2 / 2) = 2, dof 1, p = erfc(1).
  auto const r = lv::pqmass_with_references({-1, 1, 2, 9}, {0.5, 8, 11, 12}, {0, 10}, 1);
  CHECK(r.counts_p[0] == 3);
  CHECK(r.counts_q[1] == 3);
  CHECK(r.chi2[0] == doctest::Approx(2.0));
  CHECK(r.dof == 1);
  CHECK(r.p_value[0] == doctest::Approx(std::erfc(1.0)).epsilon(1e-12));
  // Unequal sizes: x = {-1, 1} (2, 0), y = {0.5, 8, 11, 12} (1, 3): N = 6, cell totals 3, 3;
  // expected P: 1, 1; Q: 2, 2 -> chi2 = 1 + 1 + 0.5 + 0.5 = 3.
  auto const u = lv::pqmass_with_references({-1, 1}, {0.5, 8, 11, 12}, {0, 10}, 1);
  CHECK(u.chi2[0] == doctest::Approx(3.0));
}

TEST_CASE("PQMass: p-values uniform under the null, ~0 for a shift") {
  int const repeats = 1000, n = 400, d = 3;
  lensing::Rng rng(21);
  std::vector<double> p;
  lv::PqmassOptions o;
  o.num_references = 10;
  for (int r = 0; r < repeats; ++r) {
    auto const x = gaussian(n, d, 0.0, rng), y = gaussian(n, d, 0.0, rng);
    o.seed = 500 + r;
    p.push_back(lv::pqmass(x, y, d, o).p_value[0]);
  }
  double const D = lv::ks_uniform_distance(p);
  double const pks = lv::kolmogorov_p_value(std::sqrt(double(repeats)) * D);
  MESSAGE("null: KS distance of the p-values to U(0,1) " << D << ", KS p-value " << pks);
  CHECK(pks > 1e-3);
  auto const x = gaussian(n, d, 0.0, rng), y = gaussian(n, d, 0.5, rng);
  o.num_realizations = 20;
  auto const shifted = lv::pqmass(x, y, d, o);
  MESSAGE("shift 0.5 sd: mean chi2 " << shifted.mean_chi2 << " (dof " << shifted.dof << "), mean p "
                                     << shifted.mean_p_value);
  CHECK(shifted.mean_p_value < 1e-6);
  CHECK(shifted.chi2.size() == 20u);
  std::string const path = "test_validate_pqmass.png";
  lv::plot_pqmass(path, shifted);
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  CHECK(f.good());
  CHECK(f.tellg() > 100);
  std::remove(path.c_str());
}

TEST_CASE("PQMass: bad inputs") {
  CHECK_THROWS_AS(lv::pqmass({1, 2, 3}, {1, 2}, 2), std::invalid_argument);  // not a multiple of d
  lv::PqmassOptions o;
  o.num_references = 10;
  CHECK_THROWS_AS(lv::pqmass({1, 2, 3}, {1, 2}, 1, o), std::invalid_argument);  // too few samples
  CHECK_THROWS_AS(lv::pqmass_with_references({1}, {2}, {0}, 1), std::invalid_argument);
  CHECK_THROWS_AS(lv::pqmass_with_references({std::nan("")}, {2}, {0, 1}, 1), std::invalid_argument);
}
