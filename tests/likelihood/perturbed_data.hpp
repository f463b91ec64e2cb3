#ifndef LENSING_TESTS_LIKELIHOOD_PERTURBED_DATA_HPP
#define LENSING_TESTS_LIKELIHOOD_PERTURBED_DATA_HPP

// Shared fixture of the likelihood tests: data = the model rendered at theta
// shifted by 0.01 sin(3.1 k + 1) plus a fixed pattern (so that the residuals
// are not zero), a varying noise map and a mask with a hole at the centre.

#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

template <class Model, class Space, class Obs, class View>
void make_perturbed_data(Space const& space, Obs const& obs, std::vector<double> theta, View const& data,
                         View const& noise, View const& mask) {
  int const ny = obs.grid().ny(), nx = obs.grid().nx();
  for (std::size_t k = 0; k < theta.size(); ++k)
    theta[k] += 0.01 * std::sin(3.1 * k + 1);
  obs.render(space, Model::unpack(theta.data()), data);
  space.fence();
  auto hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), data);
  auto hn = Kokkos::create_mirror_view(noise);
  auto hm = Kokkos::create_mirror_view(mask);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      hd(iy, ix) += 0.01 * std::sin(0.7 * ix + 1.3 * iy);
      hn(iy, ix) = 0.02 + 0.01 * std::cos(0.3 * ix * iy);
      hm(iy, ix) = (ix - nx / 2) * (ix - nx / 2) + (iy - ny / 2) * (iy - ny / 2) < 4 ? 0.0 : 1.0;
    }
  Kokkos::deep_copy(data, hd);
  Kokkos::deep_copy(noise, hn);
  Kokkos::deep_copy(mask, hm);
}

#endif
