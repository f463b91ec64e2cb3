#ifndef LENSING_SIMULATE_MULTIBAND_HPP
#define LENSING_SIMULATE_MULTIBAND_HPP

/// \file
/// MultiBandSimulator<Model, Psf, MemorySpace>: one lens model seen in
/// several bands (e.g. the LSST-like g, r, i presets), each band with its own
/// pixel scale, PSF and detector, the source and lens light with per-band
/// colours (flux ratios drawn from the prior table), giving batches of
/// (m, bands, ny, nx) images and (m, K) labels.  Built on one Simulator per
/// band (simulate/simulator.hpp): the same renderer, PSF operators and
/// Detector, no code of its own for any of them.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>
#include <lensing/density/parameter_table.hpp>
#include <lensing/geometry/pixel_grid.hpp>
#include <lensing/model/instrument.hpp>
#include <lensing/psf/psf_operator.hpp>
#include <lensing/simulate/simulator.hpp>

#include <Kokkos_Core.hpp>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace lensing {
namespace simulate {

/// Options of a MultiBandSimulator (all bands share them).
struct MultiBandOptions {
  std::uint64_t seed = 1;
  int batch_capacity = 256;      ///< most images per generate call (buffers are sized for it)
  bool noise = true;             ///< false: noiseless images (render + PSF only)
  int domain_check_draws = 256;  ///< prior draws checked against the profiles' domains at construction
  /// The band whose brightness the table's "amp" parameters give (its flux
  /// ratios are 1); empty: the first band.
  std::string reference_band{};
  /// Where each band's PSF acts (SimulatorOptions::psf_sampling): binned, or
  /// supersampled (the PSF operators then have the fine grids' extents; the
  /// (bands, ny, nx, supersampling) constructor samples the Gaussians at
  /// pixel_scale / supersampling).
  PsfSampling psf_sampling = PsfSampling::binned;
};

/// The ratio of count rates (the images' unit, e-/s) in `band` over
/// `reference` of a source of AB colour c = m_band - m_reference [mag]:
/// 10^(-0.4 (c - (zero_point_band - zero_point_reference))).  A colour
/// uniform in [c_lo, c_hi] is the ratio prior
/// Prior::log_uniform(flux_ratio_of_colour(c_hi, band, reference),
///                    flux_ratio_of_colour(c_lo, band, reference)).
inline double flux_ratio_of_colour(double colour, BandConfig const& band, BandConfig const& reference) {
  return std::pow(10.0, -0.4 * (colour - (band.zero_point - reference.zero_point)));
}

/// The noise seed of band b of a MultiBandSimulator with seed `seed`: the
/// seed itself for band 0 (so a one-band simulator is the Simulator), and
/// mix64(seed ^ mix64(0x6d756c746962616e + b)) for b > 0 (core/random.hpp's
/// bijective mixer: a different seed, hence independent noise streams, per
/// band).  Image i of band b then has the noise of Detector::apply(...,
/// band_noise_seed(seed, b), i).
inline std::uint64_t band_noise_seed(std::uint64_t seed, int band) {
  if (band == 0) return seed;
  return random::stream_key(seed, random::purpose_band_seed, std::uint64_t(band));
}

namespace detail {
// "source" / "light" group of a model parameter name "<group><c>.<name>".
inline bool in_group(std::string const& name, char const* group) { return name.rfind(group, 0) == 0; }
// Whether a model parameter is a linear amplitude ("amp", or "amp" followed
// by an index, should a profile number its coefficients).
inline bool is_amplitude(std::string const& name) {
  auto const dot = name.rfind('.');
  std::string const p = dot == std::string::npos ? name : name.substr(dot + 1);
  return p == "amp" || (p.size() > 3 && p.compare(0, 3, "amp") == 0 && !std::isalpha(static_cast<unsigned char>(p[3])));
}
}  // namespace detail

/// Images of one lens model in several bands.
///
/// The prior table holds
///  - every model parameter (model_parameter_names<Model>(), as a
///    Simulator's table): the amplitudes ("amp") are those of the reference
///    band (MultiBandOptions::reference_band, default the first band);
///  - the colours: for each other band B, "B.source_flux_ratio" (if the
///    source has an amplitude) and "B.light_flux_ratio" (if the lens light
///    has one), the band's flux over the reference band's.  Every "amp"
///    parameter of the source (resp. lens light) group is multiplied by it in
///    band B, so all components of a composite source share its colour.  The
///    reference band's ratios are 1: the table may omit them or give
///    Prior::fixed(1).  Any prior with support in [0, inf) will do; a
///    colour uniform in magnitudes is a log-uniform ratio
///    (flux_ratio_of_colour), and ties express e.g. the same colour for two
///    bands.  The ratios are of count rates, the images' unit: a colour in
///    AB magnitudes also carries the bands' zero points
///    (flux_ratio_of_colour).
/// Anything else in the table, a missing model parameter or ratio, a ratio
/// of an unknown band or a negative ratio support is a std::invalid_argument
/// naming it.  The labels are the table's columns in table order
/// (label_names() = table().names()), the colours included.
///
/// Per image i (global index first_index + b):
///   labels(b, :)       = θ_i ~ the table (ParameterTable::sample with `seed`)
///   images(b, band, :) = band's Simulator::render of θ_i's model parameters
///                        with the amplitudes times the band's ratios, then
///                        (noise) the band's Detector with the seed
///                        band_noise_seed(seed, band) and image index i.
/// So each band's images depend only on (seed, band, i): deterministic at any
/// thread count and batch size, each band with its own noise streams.
///
/// Bands: every band has its own grid (its pixel scale; all bands share ny,
/// nx and the supersampling need not agree), its PSF operator on that grid
/// and its detector (BandConfig::detector_config(): noise, sky and
/// artefacts).  The constructor from (bands, ny, nx, supersampling) builds
/// centred grids at each band's pixel_scale and, for Psf = GaussianFilter,
/// Gaussian PSFs of each band's psf_fwhm (NoPsf: none); the other takes the
/// grids and PSF operators.  A count that differs from the number of bands,
/// grids of different extents, or a grid whose pixel scale is not its
/// band's, is a std::invalid_argument naming the band.  Channels of
/// different pixel scales cover different fields: give bands one pixel scale
/// for pixel-aligned channels (a lens finder's input).
///
/// Owns one Simulator (buffers, PSF operator, Detector) per band and the
/// per-band labels buffer: generate is const but uses them, one
/// MultiBandSimulator per thread.
template <class Model, class Psf, class MemorySpace>
class MultiBandSimulator {
 public:
  using model_type = Model;
  using scalar_type = typename Model::scalar_type;
  using Scalar = scalar_type;
  using memory_space = MemorySpace;
  using table_type = ParameterTable<Scalar, MemorySpace>;
  using band_simulator_type = Simulator<Model, Psf, MemorySpace>;

  /// Centred grids of ny x nx pixels at each band's pixel_scale with
  /// `supersampling` sub-pixels per side, and each band's PSF from its
  /// psf_fwhm (Psf = GaussianFilter; NoPsf ignores the FWHM).
  MultiBandSimulator(std::vector<BandConfig> const& bands, int ny, int nx, int supersampling, table_type const& table,
                     MultiBandOptions const& options = {})
      : MultiBandSimulator(bands, make_grids(bands, ny, nx, supersampling),
                           make_psfs(bands, ny, nx, supersampling, options), table, options) {}
  /// The same with a prototype model (Simulator's prototype constructor: a
  /// MultiPlaneLens's distances, an InterpolatedLensView's maps).
  MultiBandSimulator(Model const& prototype, std::vector<BandConfig> const& bands, int ny, int nx, int supersampling,
                     table_type const& table, MultiBandOptions const& options = {})
      : MultiBandSimulator(prototype, bands, make_grids(bands, ny, nx, supersampling),
                           make_psfs(bands, ny, nx, supersampling, options), table, options) {}

  /// Given grids and PSF operators, one per band (see the class comment).
  MultiBandSimulator(std::vector<BandConfig> const& bands, std::vector<PixelGrid<Scalar>> const& grids,
                     std::vector<Psf> const& psfs, table_type const& table, MultiBandOptions const& options = {})
      : MultiBandSimulator(Model{}, bands, grids, psfs, table, options) {
    static_assert(detail::has_static_unpack<Model>::value,
                  "lensing::simulate::MultiBandSimulator: this model has fixed parts (a MultiPlaneLens's distances, "
                  "an interpolated lens's maps): pass a prototype model as the first constructor argument");
  }
  /// The same with a prototype model (see the Simulator's constructors).
  MultiBandSimulator(Model const& prototype, std::vector<BandConfig> const& bands,
                     std::vector<PixelGrid<Scalar>> const& grids, std::vector<Psf> const& psfs, table_type const& table,
                     MultiBandOptions const& options = {})
      : m_bands(bands), m_table(table), m_options(options) {
    constexpr char const* where = "lensing::simulate::MultiBandSimulator";
    check_bands(grids, psfs, where);
    int const B = num_bands();
    analyse_table(where);
    SimulatorOptions so;
    so.seed = options.seed;
    so.batch_capacity = options.batch_capacity;
    so.noise = options.noise;
    so.psf_sampling = options.psf_sampling;
    m_simulators.reserve(B);
    for (int b = 0; b < B; ++b) {
      // Every band checks the same model table: the prior draws once.
      so.domain_check_draws = b == 0 ? options.domain_check_draws : 0;
      try {
        m_simulators.emplace_back(prototype, grids[b], psfs[b], bands[b].detector_config(), m_model_table, so);
      } catch (std::invalid_argument const& e) {
        throw std::invalid_argument(std::string(where) + ": band '" + bands[b].name + "': " + e.what());
      }
    }
    int const Km = m_model_table.size(), cap = options.batch_capacity;
    m_band_labels = allocate_view<View3D<Scalar, MemorySpace>>(where, "lensing::MultiBandSimulator::band_labels", false,
                                                               B, cap, Km > 0 ? Km : 1);
    m_sources = View1D<int, MemorySpace>("lensing::MultiBandSimulator::sources", Km > 0 ? Km : 1);
    m_ratios = View2D<int, MemorySpace>("lensing::MultiBandSimulator::ratios", B, Km > 0 ? Km : 1);
    auto hs = Kokkos::create_mirror_view(m_sources);
    auto hr = Kokkos::create_mirror_view(m_ratios);
    for (int c = 0; c < Km; ++c) {
      hs(c) = m_host_sources[c];
      for (int b = 0; b < B; ++b)
        hr(b, c) = m_host_ratios[b][c];
    }
    Kokkos::deep_copy(m_sources, hs);
    Kokkos::deep_copy(m_ratios, hr);
  }

  int num_bands() const { return int(m_bands.size()); }
  BandConfig const& band(int b) const { return m_bands.at(b); }
  std::vector<std::string> band_names() const {
    std::vector<std::string> n;
    for (auto const& b : m_bands)
      n.push_back(b.name);
    return n;
  }
  /// Index of the reference band.
  int reference_band() const { return m_reference; }
  /// The Simulator of band b (its grid, PSF, detector, noise model).
  band_simulator_type const& simulator(int b) const { return m_simulators.at(b); }
  table_type const& table() const { return m_table; }
  /// The model parameters' part of the table (the band simulators' table:
  /// each distinct model parameter name once, in model order).
  table_type const& model_table() const { return m_model_table; }
  MultiBandOptions const& options() const { return m_options; }
  int num_labels() const { return m_table.size(); }
  std::vector<std::string> const& label_names() const { return m_table.names(); }
  int batch_capacity() const { return m_options.batch_capacity; }
  int ny() const { return m_simulators.front().grid().ny(); }
  int nx() const { return m_simulators.front().grid().nx(); }

  /// Band b's row of model_table() parameters for a label row (host;
  /// row[k] = label k in table order): the values render uses, in Scalar.
  template <class Row>
  std::vector<double> band_row(Row const& row, int b) const {
    check_argument(b >= 0 && b < num_bands(), "lensing::simulate::MultiBandSimulator::band_row",
                   "band index " + std::to_string(b) + " out of [0, " + std::to_string(num_bands()) + ")");
    std::vector<double> r(m_host_sources.size());
    for (std::size_t c = 0; c < r.size(); ++c) {
      Scalar v = Scalar(row[m_host_sources[c]]);
      if (m_host_ratios[b][c] >= 0) v = v * Scalar(row[m_host_ratios[b][c]]);
      r[c] = double(v);
    }
    return r;
  }
  /// Band b's model of a label row (host).
  template <class Row>
  Model model(Row const& row, int b) const {
    return m_simulators.at(b).model(band_row(row, b));
  }

  /// Images (m, num_bands, ny, nx) and labels (m, num_labels) of global
  /// images [first_index, first_index + m), 1 <= m <= batch_capacity (see
  /// the class comment).  Asynchronous on `space` except for each band
  /// detector's one fence.
  template <class ExecutionSpace, class Images, class Labels>
  void generate(ExecutionSpace const& space, std::uint64_t first_index, Images const& images,
                Labels const& labels) const {
    constexpr char const* where = "lensing::simulate::MultiBandSimulator::generate";
    static_assert(Labels::rank == 2 && std::is_same<typename Labels::non_const_value_type, Scalar>::value,
                  "lensing::simulate::MultiBandSimulator::generate: labels must be a rank-2 view (m, num_labels) of "
                  "the model's Scalar");
    static_assert(Images::rank == 4,
                  "lensing::simulate::MultiBandSimulator::generate: images must be a rank-4 view "
                  "(m, num_bands, ny, nx)");
    int const m = int(images.extent(0));
    check_extents(labels, where, "labels", "(images.extent(0), num_labels)", m, m_table.size());
    check_images(images, where);
    m_table.sample(space, labels, m_options.seed, first_index);
    render(space, labels, images);
    if (m_options.noise)
      for (int b = 0; b < num_bands(); ++b)
        m_simulators[b].detector().apply(space, Kokkos::subview(images, Kokkos::ALL, b, Kokkos::ALL, Kokkos::ALL),
                                         band_noise_seed(m_options.seed, b), first_index);
  }

  /// Noiseless images (m, num_bands, ny, nx) of given labels (m,
  /// num_labels): each band's render + PSF.  Asynchronous on `space`.
  template <class ExecutionSpace, class Labels, class Images>
  void render(ExecutionSpace const& space, Labels const& labels, Images const& images) const {
    constexpr char const* where = "lensing::simulate::MultiBandSimulator::render";
    static_assert(is_execution_space_v<ExecutionSpace>,
                  "lensing::simulate::MultiBandSimulator: first argument must be a Kokkos execution space");
    static_assert(Images::rank == 4 && std::is_same<typename Images::value_type, Scalar>::value,
                  "lensing::simulate::MultiBandSimulator: images must be a rank-4 view (m, num_bands, ny, nx) of "
                  "the model's Scalar");
    static_assert(Labels::rank == 2,
                  "lensing::simulate::MultiBandSimulator: labels must be a rank-2 view (m, num_labels)");
    static_assert(is_accessible_from_v<ExecutionSpace, typename Labels::memory_space> &&
                      is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::simulate::MultiBandSimulator: labels and the simulator's buffers must be accessible "
                  "from the execution space");
    int const m = int(images.extent(0));
    check_images(images, where);
    check_extents(labels, where, "labels", "(images.extent(0), num_labels)", m, m_table.size());
    // Each band's model-table row: the label, times the band's ratio for an amplitude.
    auto const out = m_band_labels;
    auto const sources = m_sources;
    auto const ratios = m_ratios;
    int const B = num_bands(), Km = m_model_table.size();
    Kokkos::parallel_for(
        "lensing::simulate::multiband_labels", Kokkos::RangePolicy<ExecutionSpace>(space, 0, m), KOKKOS_LAMBDA(int i) {
          for (int b = 0; b < B; ++b)
            for (int c = 0; c < Km; ++c) {
              Scalar v = Scalar(labels(i, sources(c)));
              int const r = ratios(b, c);
              if (r >= 0) v = v * Scalar(labels(i, r));
              out(b, i, c) = v;
            }
        });
    for (int b = 0; b < B; ++b)
      m_simulators[b].render(space, Kokkos::subview(m_band_labels, b, Kokkos::make_pair(0, m), Kokkos::ALL),
                             Kokkos::subview(images, Kokkos::ALL, b, Kokkos::ALL, Kokkos::ALL));
  }

 private:
  static std::vector<PixelGrid<Scalar>> make_grids(std::vector<BandConfig> const& bands, int ny, int nx, int k) {
    constexpr char const* where = "lensing::simulate::MultiBandSimulator";
    check_count(ny, 1, where, "ny");
    check_count(nx, 1, where, "nx");
    check_count(k, 1, where, "supersampling");
    std::vector<PixelGrid<Scalar>> grids;
    for (auto const& b : bands) {
      b.check();
      grids.push_back(PixelGrid<Scalar>(nx, ny, Scalar(b.pixel_scale), k));
    }
    return grids;
  }
  static std::vector<Psf> make_psfs(std::vector<BandConfig> const& bands, int ny, int nx, int k,
                                    MultiBandOptions const& options) {
    constexpr char const* where = "lensing::simulate::MultiBandSimulator";
    if constexpr (detail::is_identity_psf<Psf>::value) {
      return std::vector<Psf>(bands.size());
    } else {
      int const capacity = options.batch_capacity;
      // Supersampled: the PSF sampled on the fine grid (k times finer, k times the extents).
      int const f = options.psf_sampling == PsfSampling::supersampled && k > 1 ? k : 1;
      static_assert(std::is_constructible<Psf, double, double, int, int, double, int>::value,
                    "lensing::simulate::MultiBandSimulator: this Psf cannot be built from a band's FWHM (the "
                    "(bands, ny, nx, supersampling) constructor takes GaussianFilter or NoPsf): give the bands' PSF "
                    "operators");
      check_count(capacity, 1, where, "batch_capacity");
      std::vector<Psf> psfs;
      for (auto const& b : bands) {
        b.check();
        check_argument(b.psf_fwhm > 0, where,
                       "band '" + b.name + "' has psf_fwhm = " + std::to_string(b.psf_fwhm) +
                           ": a Gaussian PSF needs a positive FWHM (use NoPsf, or give the PSF operators)");
        // Sized for whole batches: one pass of the filter per generate call.
        psfs.emplace_back(b.psf_fwhm, b.pixel_scale / f, ny * f, nx * f, 5.0, capacity);
      }
      return psfs;
    }
  }

  template <class Images>
  void check_images(Images const& images, char const* where) const {
    int const m = int(images.extent(0));
    check_argument(m >= 1 && m <= m_options.batch_capacity, where,
                   "images.extent(0) must be in [1, batch_capacity = " + std::to_string(m_options.batch_capacity) +
                       "], got " + std::to_string(m));
    check_extents(images, where, "images", "(m, num_bands, ny, nx)", m, num_bands(), ny(), nx());
  }

  void check_bands(std::vector<PixelGrid<Scalar>> const& grids, std::vector<Psf> const& psfs, char const* where) {
    int const B = num_bands();
    check_argument(B >= 1, where, "no bands: give at least one BandConfig");
    check_argument(int(grids.size()) == B, where,
                   std::to_string(B) + " bands but " + std::to_string(grids.size()) + " grids: give one grid per band");
    check_argument(
        int(psfs.size()) == B, where,
        std::to_string(B) + " bands but " + std::to_string(psfs.size()) + " PSF operators: give one PSF per band");
    check_count(m_options.batch_capacity, 1, where, "batch_capacity");
    m_reference = m_options.reference_band.empty() ? 0 : -1;
    for (int b = 0; b < B; ++b) {
      auto const& band = m_bands[b];
      band.check();
      check_argument(!band.name.empty() && band.name.find('.') == std::string::npos, where,
                     "band " + std::to_string(b) + " has the name '" + band.name +
                         "': band names must be non-empty and contain no '.' (they prefix the flux-ratio names)");
      for (int c = 0; c < b; ++c)
        check_argument(m_bands[c].name != band.name, where, "two bands are named '" + band.name + "'");
      if (band.name == m_options.reference_band) m_reference = b;
      auto const& g = grids[b];
      check_argument(g.ny() == grids[0].ny() && g.nx() == grids[0].nx(), where,
                     "band '" + band.name + "' has a grid of (ny, nx) = (" + std::to_string(g.ny()) + ", " +
                         std::to_string(g.nx()) + ") but band '" + m_bands[0].name + "' has (" +
                         std::to_string(grids[0].ny()) + ", " + std::to_string(grids[0].nx()) +
                         "): all bands share the image extents");
      double const s = double(g.pixel_scale());
      // The grid holds the scale in Scalar: agreement to float rounding.
      check_argument(std::fabs(s - band.pixel_scale) <= 1e-6 * band.pixel_scale, where,
                     "band '" + band.name + "' has pixel_scale " + std::to_string(band.pixel_scale) +
                         " but its grid has pixel scale " + std::to_string(s));
    }
    if (m_reference < 0) {
      std::string names;
      for (auto const& band : m_bands)
        names += (names.empty() ? "" : ", ") + band.name;
      throw_invalid_argument(
          where, "the reference band '" + m_options.reference_band + "' is not one of the bands (" + names + ")");
    }
  }

  // Column roles, the model table, and each band's ratio columns.
  void analyse_table(char const* where) {
    auto const model_names = model_parameter_names<Model>();
    std::vector<std::string> unique;
    for (auto const& n : model_names) {
      bool seen = false;
      for (auto const& u : unique)
        seen = seen || u == n;
      if (!seen) unique.push_back(n);
    }
    auto const is_model = [&](std::string const& n) {
      for (auto const& u : unique)
        if (u == n) return true;
      return false;
    };
    bool source_amp = false, light_amp = false;
    for (auto const& u : unique) {
      source_amp = source_amp || (detail::in_group(u, "source") && detail::is_amplitude(u));
      light_amp = light_amp || (detail::in_group(u, "light") && detail::is_amplitude(u));
    }
    std::string known, bands;
    for (auto const& u : unique)
      known += (known.empty() ? "" : ", ") + u;
    for (auto const& band : m_bands)
      bands += (bands.empty() ? "" : ", ") + band.name;
    auto const& names = m_table.names();
    int const K = m_table.size(), B = num_bands();
    // Every column: a model parameter or a known band's ratio.
    for (int k = 0; k < K; ++k) {
      auto const& n = names[k];
      if (is_model(n)) {
        if (m_table.is_tied(k)) {
          auto const& src = names[m_table.tie_of(k).source];
          check_argument(is_model(src), where,
                         "the model parameter '" + n + "' is tied to '" + src +
                             "', which is not a model parameter (tie model parameters to model parameters)");
        }
        continue;
      }
      auto const dot = n.rfind('.');
      std::string const suffix = dot == std::string::npos ? "" : n.substr(dot + 1);
      if (suffix != "source_flux_ratio" && suffix != "light_flux_ratio")
        throw_invalid_argument(where,
                               "the prior table names '" + n +
                                   "', which is neither a parameter of the model nor a band's flux ratio "
                                   "('<band>.source_flux_ratio', '<band>.light_flux_ratio'); model parameters: " +
                                   known);
      std::string const band = n.substr(0, dot);
      bool found = false;
      for (auto const& b : m_bands)
        found = found || b.name == band;
      check_argument(
          found, where,
          "the prior table names '" + n + "' of band '" + band + "', which is not one of the bands (" + bands + ")");
      bool const is_source = suffix == "source_flux_ratio";
      check_argument(is_source ? source_amp : light_amp, where,
                     "the prior table names '" + n + "', but the " + (is_source ? "source" : "lens light") +
                         " has no amplitude ('amp') parameter to scale");
      // Support of the ratio (through its tie, if tied): within [0, inf).
      double lo, hi;
      if (m_table.is_tied(k)) {
        auto const& t = m_table.tie_of(k);
        auto const& p = m_table.prior(t.source);
        double const a = t.scale * p.lo + t.offset, c = t.scale * p.hi + t.offset;
        lo = std::fmin(a, c);
        hi = std::fmax(a, c);
        if (t.scale == 0) lo = hi = t.offset;
      } else {
        lo = m_table.prior(k).lo;
        hi = m_table.prior(k).hi;
      }
      check_argument(lo >= 0, where,
                     "the prior of '" + n + "' reaches negative flux ratios (support [" + std::to_string(lo) + ", " +
                         std::to_string(hi) +
                         "]): give a prior on [0, inf), e.g. Prior::log_uniform(flux_ratio_of_colour(c_hi, band, "
                         "reference), flux_ratio_of_colour(c_lo, band, reference)) for a colour uniform in [c_lo, "
                         "c_hi] magnitudes");
      if (band == m_bands[m_reference].name)
        check_argument(!m_table.is_tied(k) && lo == 1 && hi == 1, where,
                       "'" + n + "' belongs to the reference band '" + band +
                           "', whose flux ratios are 1 by definition: remove it or give Prior::fixed(1)");
    }
    // The model table: each distinct model parameter once, in model order.
    for (auto const& u : unique) {
      int const k = m_table.find(u);
      check_argument(
          k >= 0, where,
          "the model parameter '" + u + "' has no prior in the table (add one; Prior::fixed(value) for a constant)");
      m_model_table.add(u, m_table.is_tied(k) ? table_type::prior_type::fixed(0) : m_table.prior(k));
      m_host_sources.push_back(k);
    }
    for (auto const& u : unique) {
      int const k = m_table.find(u);
      if (m_table.is_tied(k)) {
        auto const& t = m_table.tie_of(k);
        m_model_table.tie(u, names[t.source], t.scale, t.offset);
      }
    }
    // Band b's ratio column for each model-table column (-1: none).
    m_host_ratios.assign(B, std::vector<int>(unique.size(), -1));
    for (int b = 0; b < B; ++b) {
      int const rs = m_table.find(m_bands[b].name + ".source_flux_ratio");
      int const rl = m_table.find(m_bands[b].name + ".light_flux_ratio");
      if (b != m_reference) {
        std::string const colour = "(its flux over that of the reference band '" + m_bands[m_reference].name +
                                   "'; Prior::fixed(1) for the same colour)";
        check_argument(!source_amp || rs >= 0, where,
                       "band '" + m_bands[b].name + "' has no source colour: add '" + m_bands[b].name +
                           ".source_flux_ratio' to the table " + colour);
        check_argument(!light_amp || rl >= 0, where,
                       "band '" + m_bands[b].name + "' has no lens-light colour: add '" + m_bands[b].name +
                           ".light_flux_ratio' to the table " + colour);
      }
      for (std::size_t c = 0; c < unique.size(); ++c) {
        if (!detail::is_amplitude(unique[c])) continue;
        if (detail::in_group(unique[c], "source")) m_host_ratios[b][c] = rs;
        if (detail::in_group(unique[c], "light")) m_host_ratios[b][c] = rl;
      }
    }
  }

  std::vector<BandConfig> m_bands;
  table_type m_table;
  MultiBandOptions m_options;
  int m_reference = 0;
  table_type m_model_table;
  std::vector<int> m_host_sources;              // model-table column -> table column
  std::vector<std::vector<int>> m_host_ratios;  // [band][model-table column] -> ratio column or -1
  std::vector<band_simulator_type> m_simulators;
  View1D<int, MemorySpace> m_sources;
  View2D<int, MemorySpace> m_ratios;
  View3D<Scalar, MemorySpace> m_band_labels;  // (bands, capacity, model-table columns)
};

}  // namespace simulate
}  // namespace lensing

#endif  // LENSING_SIMULATE_MULTIBAND_HPP
