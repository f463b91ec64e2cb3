// The critic panel of the WGAN examples (graph_wgan_digits,
// intrinsic_alignments): the critic's Wasserstein estimate and gradient
// penalty per generator step, as running means over windows of ~1 % of the
// steps (for readability), drawn with line_panel.  Host only.
#ifndef LENSING_EXAMPLES_COMMON_WGAN_PANEL_HPP
#define LENSING_EXAMPLES_COMMON_WGAN_PANEL_HPP

#include <lensing/nn/wgan.hpp>

#include "line_panel.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace wgan_panel {

/// Draw the panel "critic: W estimate and GP" of `hist` at (x, y), size w x h.
inline void draw_critic(lensing::io::Canvas& c, int x, int y, int w, int h,
                        std::vector<lensing::nn::WganRecord> const& hist) {
  std::size_t const win = std::max<std::size_t>(1, hist.size() / 100);
  line_panel::Series wasserstein, penalty;
  wasserstein.label = "W estimate";
  wasserstein.colour = {0, 0, 0};
  penalty.label = "grad. penalty";
  penalty.colour = {210, 30, 30};
  for (std::size_t s = 0; s + win <= hist.size(); s += win) {
    double a = 0, b = 0;
    for (std::size_t k = s; k < s + win; ++k) {
      a += hist[k].wasserstein;
      b += hist[k].gradient_penalty;
    }
    double const step = double(hist[s + win - 1].step);
    wasserstein.x.push_back(step);
    wasserstein.y.push_back(a / double(win));
    penalty.x.push_back(step);
    penalty.y.push_back(b / double(win));
  }
  line_panel::Options o;
  o.title = "critic: W estimate and GP";
  o.xlabel = "generator step";
  o.zero_line = true;
  line_panel::draw(c, x, y, w, h, {wasserstein, penalty}, o);
}

}  // namespace wgan_panel

#endif  // LENSING_EXAMPLES_COMMON_WGAN_PANEL_HPP
