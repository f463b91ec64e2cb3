// Links every instantiate_<area>.cpp; with --run executes them (needs the
// backend's hardware, so the CUDA check only compiles and links).
#include "instantiate.hpp"

#include <cstdio>
#include <cstring>

int main(int argc, char* argv[]) {
  bool const run = argc > 1 && std::strcmp(argv[1], "--run") == 0;
  if (!run) {
    std::printf("lensing_instantiate: compiled and linked; pass --run to execute the kernels\n");
    return 0;
  }
  Kokkos::ScopeGuard guard(argc, argv);
  instantiate_geometry();
  std::printf("lensing_instantiate: every kernel ran\n");
  return 0;
}
