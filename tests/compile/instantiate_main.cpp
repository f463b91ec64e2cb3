// Links every instantiate_<area>.cpp; with --run executes them (needs the
// backend's hardware, so the CUDA check only compiles and links).
#include "instantiate.hpp"

#include <cstdio>
#include <cstring>

int main(int argc, char* argv[]) {
  bool const run = argc > 1 && std::strcmp(argv[1], "--run") == 0;
  auto const& fs = lensing::instantiate::registry();
  if (!run) {
    std::printf("lensing_instantiate: %zu areas compiled and linked; pass --run to execute them\n", fs.size());
    return 0;
  }
  Kokkos::ScopeGuard guard(argc, argv);
  for (auto f : fs)
    f();
  std::printf("lensing_instantiate: every kernel of %zu areas ran\n", fs.size());
  return 0;
}
