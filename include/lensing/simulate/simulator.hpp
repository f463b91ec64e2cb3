#ifndef LENSING_SIMULATE_SIMULATOR_HPP
#define LENSING_SIMULATE_SIMULATOR_HPP

/// \file
/// Simulator<Model, Psf, MemorySpace>: any lens model (LensModel of a lens,
/// a source and a lens light, each any profile or composite) drawn from a
/// table of priors by parameter name, rendered in batches on the forward
/// model of model/ (render_batch, a batched PSF operator, the Detector), to
/// images + labels on any execution space, deterministic per (seed, image
/// index) whatever the thread count or batch size.

#include <lensing/core/errors.hpp>
#include <lensing/core/views.hpp>
#include <lensing/density/parameter_table.hpp>
#include <lensing/geometry/pixel_grid.hpp>
#include <lensing/model/instrument.hpp>
#include <lensing/model/observation.hpp>
#include <lensing/model/parameter_names.hpp>
#include <lensing/model/render.hpp>
#include <lensing/psf/psf_operator.hpp>
#include <lensing/simulate/write.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lensing {
namespace simulate {

namespace detail {
template <class Psf, class = void>
struct is_identity_psf : std::false_type {};
template <class Scalar>
struct is_identity_psf<NoPsf<Scalar>> : std::true_type {};

// images(b, iy, ix) = sum_{sy, sx < k} fine(b, iy k + sy, ix k + sx): the
// batched sub-pixel sum (bin_subpixels' order; the weight A_pix / k^2 is
// already in `fine`, rendered on the fine grid).  Asynchronous on `space`.
template <class ExecutionSpace, class Fine, class Images>
void sum_subpixels_batch(ExecutionSpace const& space, int k, Fine const& fine, Images const& images) {
  using Scalar = typename Images::value_type;
  int const ny = int(images.extent(1)), nx = int(images.extent(2));
  Kokkos::parallel_for(
      "lensing::simulate::sum_subpixels_batch",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(images.extent(0)) * ny),
      KOKKOS_LAMBDA(long row) {
        int const b = int(row / ny), iy = int(row % ny);
        for (int ix = 0; ix < nx; ++ix) {
          Scalar s = 0;
          for (int sy = 0; sy < k; ++sy)
            for (int sx = 0; sx < k; ++sx)
              s += fine(b, iy * k + sy, ix * k + sx);
          images(b, iy, ix) = s;
        }
      });
}

// A model type with a static unpack (its parameters are the whole model).
template <class Model, class = void>
struct has_static_unpack : std::false_type {};
template <class Model>
struct has_static_unpack<Model,
                         std::void_t<decltype(Model::unpack(std::declval<typename Model::scalar_type const*>()))>>
    : std::true_type {};
template <class Model, class = void>
struct has_with_params_member : std::false_type {};
template <class Model>
struct has_with_params_member<Model, std::void_t<decltype(std::declval<Model const&>().with_params(
                                         std::declval<typename Model::scalar_type const*>()))>> : std::true_type {};

// The model of parameters t: prototype.with_params(t) where the model has
// it (a LensModel: fixed parts kept), else Model::unpack(t).
template <class Model>
KOKKOS_INLINE_FUNCTION Model model_with_params(Model const& prototype, typename Model::scalar_type const* t) {
  if constexpr (has_with_params_member<Model>::value) {
    return prototype.with_params(t);
  } else {
    (void)prototype;
    return Model::unpack(t);
  }
}
}  // namespace detail

// The names of a LensModel's parameters (model/parameter_names.hpp), as
// they were first declared here.
using lensing::model_parameter_names;

/// Options of a Simulator.
struct SimulatorOptions {
  std::uint64_t seed = 1;
  int batch_capacity = 256;      ///< most images per generate call (buffers are sized for it)
  bool noise = true;             ///< false: noiseless images (render + PSF only)
  int domain_check_draws = 256;  ///< prior draws checked against the profiles' domains at construction
  /// Where the PSF acts (model/observation.hpp's PsfSampling): binned (on the
  /// pixel grid, the default) or supersampled (on the fine grid before
  /// binning: the PSF operator then has the fine grid's extents and scale).
  PsfSampling psf_sampling = PsfSampling::binned;
};

/// Batches of simulated images and their labels for one band.
///
/// Per image i (global index first_index + b):
///   labels(b, :) = θ_i ~ the table's priors (stream (seed, prior, i, column);
///                  tied columns follow their source: density/parameter_table.hpp)
///   model_i      = prototype.with_params(θ_i reordered to the model's
///                  parameters)  (Model::unpack for a model without a prototype)
///   sharp_i      = render_batch(grid, model_i)      (supersampling k of grid)
///   images(b)    = Detector(PSF(sharp_i))           (binned PSF, then noise and artefacts)
/// or, with options.psf_sampling = PsfSampling::supersampled,
///   images(b)    = Detector(Bin(PSF_fine(render_batch(fine grid, model_i))))
/// (the fine image carries the weight A_pix / k^2, Bin sums the k x k
/// sub-pixels): the same image as Observation's supersampled mode to
/// rounding, the right order for a PSF sampled finer than the pixels or
/// integrated over fine pixels (see PsfSampling).
/// The table must name every model parameter (model_parameter_names<Model>();
/// Prior::fixed(v) for a constant) and nothing else: an unknown name or a
/// missing parameter is a std::invalid_argument naming it.  At construction
/// the priors are checked against the profiles' valid domains: the model at
/// each end of every prior's support (the other parameters at a prior draw)
/// and at domain_check_draws prior draws must pass Model::check(), else a
/// std::invalid_argument naming the parameter and the profile's complaint
/// (e.g. a normal prior on theta_E reaches theta_E <= 0: truncate it).
///
/// Psf: a PSF operator on the pixel grid (on the fine grid, extents
/// (fine_ny, fine_nx), when supersampled) that accepts rank-3 batches
/// (psf/psf_operator.hpp; NoPsf, GaussianFilter, DirectConvolution,
/// FftConvolution); build a GaussianFilter with max_batch = batch_capacity
/// so that a batch is filtered in one pass.  The labels are the table's columns in table order (the
/// label names are table().names()).  Owns its batch buffers (built in the
/// constructor); generate is const but uses them: one Simulator per thread.
///
/// Model: a LensModel (or any trivially copyable type with lens, source,
/// lens_light, num_params, check and unpack or with_params) whose lens is
///  - a MassProfile: a profile, a Composite, or a ProfileArray of subhaloes
///    (profiles/profile_array.hpp: a fixed count N, every member's
///    parameters from the table as lens<c>.subhalo<m>.<name>);
///  - a MultiPlaneLens (make_multi_plane) of such planes: each plane's
///    parameters from the table as plane<p>.lens<c>.<name>, the redshifts
///    and the cosmology (the distance factors) fixed by the prototype;
///  - an InterpolatedLensView (InterpolatedLens::view(): a fixed deflection
///    map, no parameters), alone, in a LensSum with analytic profiles (e.g.
///    LensSum<InterpolatedLensView, Composite<SIE, ExternalShear>>: lens1.*,
///    lens2.*) or as a plane of a MultiPlaneLens.
/// A model with fixed parts (distances, maps) is built from a prototype
/// (the constructor taking `prototype` first): per image the model is
/// prototype.with_params(θ_i) (LensModel::with_params: the fixed parts
/// kept, every parameter from the table); for the rest Model::unpack(θ_i).
/// The maps of an InterpolatedLensView are not copied: the InterpolatedLens
/// must outlive the Simulator.  Not supported, with a compile-time error: a
/// runtime Population or an InterpolatedLens itself (they hold Views, and a
/// per-image model must be trivially copyable to sit in a View and be built
/// in a kernel; a varying subhalo count is not a row of a table: use
/// ProfileArray; for the maps use InterpolatedLens::view()).
template <class Model, class Psf, class MemorySpace>
class Simulator {
  static_assert(std::is_trivially_copyable<Model>::value,
                "lensing::simulate::Simulator: the model must be trivially copyable (one model per image in a "
                "View, built from a table row in a kernel): a runtime Population or an InterpolatedLens holds "
                "Views; for subhaloes use ProfileArray<Profile, N> (profiles/profile_array.hpp), for a deflection "
                "map InterpolatedLens::view()");
  static_assert(is_deflector_v<typename Model::lens_type>,
                "lensing::simulate::Simulator: the model's lens must have a deflection (a MassProfile, LensSum, "
                "MultiPlaneLens or InterpolatedLensView; see the class comment)");

 public:
  using model_type = Model;
  using scalar_type = typename Model::scalar_type;
  using Scalar = scalar_type;
  using memory_space = MemorySpace;
  using table_type = ParameterTable<Scalar, MemorySpace>;
  static constexpr int num_params = Model::num_params;

  /// A model that is its parameters (Model::unpack; e.g. a MassProfile lens).
  Simulator(PixelGrid<Scalar> const& grid, Psf const& psf, DetectorConfig const& detector, table_type const& table,
            SimulatorOptions const& options = {})
      : Simulator(Model{}, grid, psf, detector, table, options) {
    static_assert(detail::has_static_unpack<Model>::value,
                  "lensing::simulate::Simulator: this model has fixed parts (a MultiPlaneLens's distances, an "
                  "interpolated lens's maps): pass a prototype model as the first constructor argument");
  }
  /// Per image prototype.with_params(θ_i): the prototype's fixed parts (a
  /// MultiPlaneLens's distance factors, an InterpolatedLensView's maps) with
  /// every parameter from the table (its own parameter values are unused).
  Simulator(Model const& prototype, PixelGrid<Scalar> const& grid, Psf const& psf, DetectorConfig const& detector,
            table_type const& table, SimulatorOptions const& options = {})
      : m_prototype(prototype),
        m_grid(grid),
        m_psf(psf),
        m_detector(detector, options.batch_capacity, grid.ny(), grid.nx()),
        m_table(table),
        m_options(options) {
    constexpr char const* where = "lensing::simulate::Simulator";
    check_count(options.batch_capacity, 1, where, "batch_capacity");
    check_count(options.domain_check_draws, 0, where, "domain_check_draws");
    check_argument(options.psf_sampling == PsfSampling::binned || options.psf_sampling == PsfSampling::supersampled,
                   where, "unknown psf_sampling");
    bool const super = supersampled();
    int const psf_ny = super ? grid.fine_ny() : grid.ny(), psf_nx = super ? grid.fine_nx() : grid.nx();
    if constexpr (lensing::detail::has_psf_extents<Psf>::value) {
      check_argument(psf.ny() == psf_ny && psf.nx() == psf_nx, where,
                     std::string("the PSF operator must have the ") + (super ? "fine grid's" : "grid's") +
                         " extents (" + std::to_string(psf_ny) + ", " + std::to_string(psf_nx) + "), got (" +
                         std::to_string(psf.ny()) + ", " + std::to_string(psf.nx()) + ")");
    }
    // Model parameter j <- table column m_columns[j]; every table name must be a model parameter.
    auto const names = model_parameter_names<Model>();
    std::string known;
    for (auto const& n : names)
      known += (known.empty() ? "" : ", ") + n;
    for (auto const& t : table.names()) {
      bool found = false;
      for (auto const& n : names)
        found = found || n == t;
      check_argument(found, where,
                     "the prior table names '" + t + "', which is not a parameter of the model; known: " + known);
    }
    m_host_columns.resize(num_params);
    for (int j = 0; j < num_params; ++j) {
      int const c = table.find(names[j]);
      check_argument(c >= 0, where,
                     "the model parameter '" + names[j] +
                         "' has no prior in the table (add one; Prior::fixed(value) for a constant)");
      m_host_columns[j] = c;
    }
    m_columns = View1D<int, MemorySpace>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::Simulator::columns"),
                                         num_params > 0 ? num_params : 1);
    {
      auto h = Kokkos::create_mirror_view(m_columns);
      for (int j = 0; j < num_params; ++j)
        h(j) = m_host_columns[j];
      Kokkos::deep_copy(m_columns, h);
    }
    int const cap = options.batch_capacity;
    m_models =
        View1D<Model, MemorySpace>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::Simulator::models"), cap);
    if (super) {
      m_sharp = allocate_view<View3D<Scalar, MemorySpace>>(where, "lensing::Simulator::fine", true, cap, grid.fine_ny(),
                                                           grid.fine_nx());
      m_fine_blur = allocate_view<View3D<Scalar, MemorySpace>>(where, "lensing::Simulator::fine_blurred", true, cap,
                                                               grid.fine_ny(), grid.fine_nx());
    } else if constexpr (!detail::is_identity_psf<Psf>::value) {
      m_sharp = allocate_view<View3D<Scalar, MemorySpace>>(where, "lensing::Simulator::sharp", true, cap, grid.ny(),
                                                           grid.nx());
    }
    check_domains(where);
  }

  PixelGrid<Scalar> const& grid() const { return m_grid; }
  Psf const& psf() const { return m_psf; }
  Detector<Scalar, MemorySpace> const& detector() const { return m_detector; }
  table_type const& table() const { return m_table; }
  SimulatorOptions const& options() const { return m_options; }
  int num_labels() const { return m_table.size(); }
  std::vector<std::string> const& label_names() const { return m_table.names(); }
  int batch_capacity() const { return m_options.batch_capacity; }
  /// Whether the PSF acts on the fine grid (options().psf_sampling ==
  /// supersampled with a PSF other than NoPsf, which is the identity either way).
  bool supersampled() const {
    return !detail::is_identity_psf<Psf>::value && m_options.psf_sampling == PsfSampling::supersampled;
  }
  /// The likelihood's noise model for this simulator's images (the detector's pixel noise).
  ObservationNoise<Scalar> noise_model() const { return m_detector.pixel_noise(); }

  /// The settings that identify a set (simulate/write.hpp's manifest and
  /// HDF5 attributes, FITS keywords): grid, seed, batch, detector.
  SetDescription description() const {
    SetDescription d;
    d.ny = m_grid.ny();
    d.nx = m_grid.nx();
    d.batch = m_options.batch_capacity;
    auto const& c = m_detector.config();
    d.masks = m_options.noise && c.masks;
    auto const put = [&](char const* key, auto value) {
      std::ostringstream v;
      v << std::setprecision(17) << value;
      d.settings.emplace_back(key, v.str());
    };
    put("generator", "Simulator");
    put("ny", m_grid.ny());
    put("nx", m_grid.nx());
    put("pixel_scale", double(m_grid.pixel_scale()));
    put("supersampling", m_grid.supersampling());
    put("scalar", sizeof(Scalar) == 4 ? "float" : "double");
    put("seed", m_options.seed);
    put("chunk_size", m_options.batch_capacity);
    put("noise", m_options.noise);
    if (supersampled()) put("psf_sampling", "supersampled");  // absent: binned (sets written before the option)
    put("exposure_time", c.noise.exposure_time);
    put("sky", c.noise.sky);
    put("read_noise", c.noise.read_noise);
    put("background_rms", c.noise.background_rms);
    put("shot_noise", c.noise.shot_noise);
    put("bias_sigma", c.bias_sigma);
    put("cosmic_rays", c.cosmic_rays);
    put("hot_dead_pixels", c.hot_dead_pixels);
    put("saturation", c.saturation);
    put("masks", c.masks);
    d.fits = {{"PIXSCALE", double(m_grid.pixel_scale()), "", "pixel scale [arcsec]"},
              {"SUPERSMP", double(m_grid.supersampling()), "", "supersampling factor"},
              {"EXPTIME", c.noise.exposure_time, "", "exposure time [s]"},
              {"SEED", double(m_options.seed), "", "generator seed"}};
    return d;
  }
  /// Masks of the last generate call (detector().masks()).
  View3D<Scalar, MemorySpace> const& masks() const { return m_detector.masks(); }

  /// The model of a label row (host; row[k] = label k in table order).
  template <class Row>
  Model model(Row const& row) const {
    Scalar theta[num_params > 0 ? num_params : 1];
    for (int j = 0; j < num_params; ++j)
      theta[j] = Scalar(row[m_host_columns[j]]);
    return detail::model_with_params(m_prototype, theta);
  }

  /// Images (m, ny, nx) and labels (m, num_labels) of global images
  /// [first_index, first_index + m), 1 <= m <= batch_capacity (see the
  /// class comment).  Asynchronous on `space` except for the detector's one
  /// fence.
  template <class ExecutionSpace, class Images, class Labels>
  void generate(ExecutionSpace const& space, std::uint64_t first_index, Images const& images,
                Labels const& labels) const {
    constexpr char const* where = "lensing::simulate::Simulator::generate";
    static_assert(Labels::rank == 2 && std::is_same<typename Labels::non_const_value_type, Scalar>::value,
                  "lensing::simulate::Simulator::generate: labels must be a rank-2 view (m, num_labels) of the "
                  "model's Scalar");
    int const m = int(images.extent(0));
    check_extents(labels, where, "labels", "(images.extent(0), num_labels)", m, m_table.size());
    m_table.sample(space, labels, m_options.seed, first_index);
    render(space, labels, images);
    if (m_options.noise) m_detector.apply(space, images, m_options.seed, first_index);
  }

  /// Noiseless images (m, ny, nx) of given labels (m, num_labels): render +
  /// PSF, the first half of generate (e.g. the model of a likelihood test).
  /// Asynchronous on `space`.
  template <class ExecutionSpace, class Labels, class Images>
  void render(ExecutionSpace const& space, Labels const& labels, Images const& images) const {
    constexpr char const* where = "lensing::simulate::Simulator::render";
    static_assert(is_execution_space_v<ExecutionSpace>,
                  "lensing::simulate::Simulator: first argument must be a Kokkos execution space");
    static_assert(Images::rank == 3 && std::is_same<typename Images::value_type, Scalar>::value,
                  "lensing::simulate::Simulator: images must be a rank-3 view (m, ny, nx) of the model's Scalar");
    static_assert(Labels::rank == 2, "lensing::simulate::Simulator: labels must be a rank-2 view (m, num_labels)");
    static_assert(is_accessible_from_v<ExecutionSpace, typename Images::memory_space> &&
                      is_accessible_from_v<ExecutionSpace, typename Labels::memory_space> &&
                      is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::simulate::Simulator: views and the simulator's buffers must be accessible from the "
                  "execution space");
    int const m = int(images.extent(0));
    check_argument(m >= 1 && m <= m_options.batch_capacity, where,
                   "images.extent(0) must be in [1, batch_capacity = " + std::to_string(m_options.batch_capacity) +
                       "], got " + std::to_string(m));
    check_extents(images, where, "images", "(m, ny, nx)", m, m_grid.ny(), m_grid.nx());
    check_extents(labels, where, "labels", "(images.extent(0), num_labels)", m, m_table.size());
    auto const models = Kokkos::subview(m_models, Kokkos::make_pair(0, m));
    auto const columns = m_columns;
    auto const prototype = m_prototype;
    Kokkos::parallel_for(
        "lensing::simulate::simulator_models", Kokkos::RangePolicy<ExecutionSpace>(space, 0, m), KOKKOS_LAMBDA(int b) {
          Scalar theta[num_params > 0 ? num_params : 1];
          for (int j = 0; j < num_params; ++j)
            theta[j] = Scalar(labels(b, columns(j)));
          models(b) = detail::model_with_params(prototype, theta);
        });
    if constexpr (detail::is_identity_psf<Psf>::value) {
      render_batch(space, m_grid, models, images);
    } else if (supersampled()) {
      auto const fine = Kokkos::subview(m_sharp, Kokkos::make_pair(0, m), Kokkos::ALL, Kokkos::ALL);
      auto const blurred = Kokkos::subview(m_fine_blur, Kokkos::make_pair(0, m), Kokkos::ALL, Kokkos::ALL);
      render_batch(space, m_grid.fine_grid(), models, fine);
      m_psf.apply(space, fine, blurred);
      detail::sum_subpixels_batch(space, m_grid.supersampling(), blurred, images);
    } else {
      auto const sharp = Kokkos::subview(m_sharp, Kokkos::make_pair(0, m), Kokkos::ALL, Kokkos::ALL);
      render_batch(space, m_grid, models, sharp);
      m_psf.apply(space, sharp, images);
    }
  }

 private:
  // The priors' supports against the profiles' domains (see the class
  // comment): each end of each support first (the message names the
  // parameter), then the draws.
  void check_domains(char const* where) const {
    int const n = m_options.domain_check_draws, K = m_table.size();
    if (K == 0) return;
    int const draws = n > 0 ? n : 1;
    Kokkos::View<Scalar**, Kokkos::LayoutRight, Kokkos::HostSpace> rows("lensing::Simulator::domain_rows", draws, K);
    // The table's device copy may live elsewhere: sample on the host from a host copy.
    ParameterTable<Scalar, Kokkos::HostSpace> const host_table(m_table);
    host_table.sample(Kokkos::DefaultHostExecutionSpace(), rows, m_options.seed ^ 0x9e3779b97f4a7c15ULL, 0);
    Kokkos::DefaultHostExecutionSpace().fence();
    auto const names = m_table.names();
    auto const check_row = [&](std::vector<double> const& row, std::string const& context) {
      try {
        model(row).check();
      } catch (std::invalid_argument const& e) {
        throw std::invalid_argument(std::string(where) + ": " + context + " gives an invalid model: " + e.what());
      }
    };
    // Base point: each column's median draw (finite and typical whatever the
    // family), tied columns from their sources.
    std::vector<double> base(K), column(draws), row(K);
    for (int k = 0; k < K; ++k) {
      for (int i = 0; i < draws; ++i)
        column[i] = double(rows(i, k));
      std::nth_element(column.begin(), column.begin() + draws / 2, column.end());
      base[k] = column[draws / 2];
    }
    for (int k = 0; k < K; ++k) {
      if (m_table.is_tied(k)) continue;
      auto const& p = m_table.prior(k);
      for (double bound : {double(p.lo), double(p.hi)}) {
        row = base;
        // An unbounded support is probed far out (a finite value: profiles reject non-finite input anyway).
        row[k] = std::isfinite(bound) ? bound : (bound > 0 ? 1e30 : -1e30);
        // Tied columns follow their source.
        for (int j = 0; j < K; ++j)
          if (m_table.is_tied(j)) {
            auto const& t = m_table.tie_of(j);
            row[j] = t.scale * row[t.source] + t.offset;
          }
        check_row(row, "the prior of '" + names[k] + "' (support [" + format_number(p.lo) + ", " + format_number(p.hi) +
                           "]) at " + format_number(row[k]));
      }
    }
    for (int i = 0; i < n; ++i) {
      for (int k = 0; k < K; ++k)
        row[k] = double(rows(i, k));
      check_row(row, "prior draw " + std::to_string(i) + " (" + describe_row(row) + ")");
    }
  }
  static std::string format_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
  }
  std::string describe_row(std::vector<double> const& row) const {
    std::string s;
    for (std::size_t k = 0; k < row.size(); ++k)
      s += (k ? ", " : "") + m_table.names()[k] + " = " + format_number(row[k]);
    return s;
  }
  Model m_prototype;
  PixelGrid<Scalar> m_grid;
  Psf m_psf;
  Detector<Scalar, MemorySpace> m_detector;
  table_type m_table;
  SimulatorOptions m_options;
  std::vector<int> m_host_columns;
  View1D<int, MemorySpace> m_columns;
  View1D<Model, MemorySpace> m_models;
  View3D<Scalar, MemorySpace> m_sharp;      // binned: the unblurred pixels; supersampled: the fine images
  View3D<Scalar, MemorySpace> m_fine_blur;  // supersampled: the blurred fine images
};

}  // namespace simulate
}  // namespace lensing

#endif  // LENSING_SIMULATE_SIMULATOR_HPP
