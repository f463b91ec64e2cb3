#include <lensing/core/vec2.hpp>

#include <lensing_test.hpp>

#include <type_traits>

using lensing::Vec2;

TEST_CASE("Vec2 is a trivially copyable aggregate") {
  static_assert(std::is_trivially_copyable<Vec2<double>>::value, "");
  static_assert(std::is_trivially_copyable<Vec2<float>>::value, "");
  static_assert(std::is_aggregate<Vec2<double>>::value, "");
  static_assert(sizeof(Vec2<float>) == 2 * sizeof(float), "");
}

LENSING_TEST_CASE_TEMPLATE("Vec2 arithmetic on the device", Config, lensing::test::AllConfigs) {
  using Space = typename Config::execution_space;
  using Scalar = typename Config::scalar;
  Scalar const tol = lensing::test::tolerance<Scalar>;
  long const failures = lensing::test::count_failures(
      Space(), 64, KOKKOS_LAMBDA(long i) {
        using lensing::test::close;
        Vec2<Scalar> const a{Scalar(i) * Scalar(0.25), Scalar(3) - Scalar(i)};
        Vec2<Scalar> const b{Scalar(-2), Scalar(0.5)};
        Vec2<Scalar> const s = a + b, d = a - b, m = Scalar(2) * a, n = -a, q = a / Scalar(4);
        bool ok = s.x == a.x + b.x && s.y == a.y + b.y && d.x == a.x - b.x && d.y == a.y - b.y;
        ok = ok && m == a * Scalar(2) && m.x == Scalar(2) * a.x && n.x == -a.x && n.y == -a.y;
        ok = ok && q.x == a.x / Scalar(4) && q.y == a.y / Scalar(4) && a != b;
        ok = ok && lensing::dot(a, b) == a.x * b.x + a.y * b.y;
        // |a|^2 = x^2 + y^2, and rotation preserves length and dot products.
        ok = ok && close(lensing::norm(a) * lensing::norm(a), a.x * a.x + a.y * a.y, Scalar(4) * tol, tol);
        Scalar const phi = Scalar(0.1) * Scalar(i);
        Scalar const c = lensing::math::cos(phi), sn = lensing::math::sin(phi);
        Vec2<Scalar> const ra = lensing::rotate(a, c, sn), rb = lensing::rotate(b, c, sn);
        ok = ok && close(lensing::norm2(ra), lensing::norm2(a), Scalar(8) * tol, tol);
        ok = ok && close(lensing::dot(ra, rb), lensing::dot(a, b), Scalar(8) * tol, Scalar(16) * tol);
        // Rotation by 90 degrees maps (x, y) to (-y, x).
        Vec2<Scalar> const r90 = lensing::rotate(a, Scalar(0), Scalar(1));
        ok = ok && r90.x == -a.y && r90.y == a.x;
        return ok;
      });
  CHECK(failures == 0);
}
