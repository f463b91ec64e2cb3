#ifndef LENSING_SIMULATE_DATA_SOURCE_HPP
#define LENSING_SIMULATE_DATA_SOURCE_HPP

/// \file
/// Training data for neural networks: SimulatedBatches (device batches drawn
/// on the fly from a batch generator, no disk), ArraySource (batches of
/// arrays in memory, shuffled per epoch), the label selection,
/// standardisation and augmentation they need, and the DataSource concept
/// that both model and a training loop takes.
///
/// ## DataSource concept
///
/// A DataSource `S` run on an execution space `E` provides
/// \code
/// typename S::scalar_type;                      // float or double
/// typename S::memory_space;                     // where its batches live
/// int  s.batch_size() const;                    // B, images per batch
/// int  s.num_labels() const;                    // K, label columns per image
/// std::array<int, 3> s.sample_shape() const;    // (C, H, W) of one image
/// long s.batches_per_epoch() const;             // next() calls per epoch
/// void s.start_epoch(long epoch);               // jump to epoch's first batch
/// auto b = s.next(space);                       // the next batch:
///   b.images  // View4D<scalar_type, memory_space> (B, C, H, W), NCHW, LayoutRight
///   b.labels  // View2D<scalar_type, memory_space> (B, K)
/// \endcode
/// next() is an endless iterator: the batches after step
/// e * batches_per_epoch() form epoch e, and start_epoch(e) positions it
/// there, so that a resumed training run sees the batches of an
/// uninterrupted one.  The views of a batch are the source's own buffers:
/// valid (and unchanged) until the next call that fills them (next, or
/// SimulatedBatches::standardise_from_pilot); next() is asynchronous on
/// `space` (fence it, or use the views on the same instance, before reading
/// them elsewhere).  The images tensor is the NCHW tensor of nn/tensor.hpp,
/// so a network's forward() reads it without a copy.  `is_data_source_v<S,
/// E>` tests the concept; `check_data_source<S, E>()` static_asserts it with
/// one message per missing requirement.
///
/// ## Disjoint training and validation streams
///
/// A SimulatedBatches over a generator draws global images [first_index +
/// s B, first_index + (s+1) B) at step s (fresh_each_epoch) and each image is
/// a function of (generator seed, global index) only.  A validation source
/// is the same generator with another index range: e.g.
/// \code
/// SimulatedBatches train(sim, {256, 0, 400});                      // images [0, ...)
/// SimulatedBatches val(sim, {256, validation_first_index, 20, false});  // the same 20 batches every epoch
/// \endcode
/// The two are disjoint as long as the training stream draws fewer than
/// validation_first_index = 2^48 images.  (A different generator seed gives
/// independent, but not index-disjoint, streams.)
///
/// ## Label augmentation
///
/// Augmentation maps image i by the element g_i of the dihedral group of the
/// square (8 elements: an optional mirror x -> -x, then k quarter turns,
/// (x, y) -> (-y, x) each, about the image centre), drawn from the
/// counter-based stream (seed, random::purpose_augment, i) of
/// core/random.hpp, and applies the same map to the labels: declared
/// position pairs rotate/flip as vectors about the grid centre, declared
/// spin-2 pairs (e1, e2 = (1-q)/(1+q) (cos 2phi, sin 2phi), phi from the x
/// axis; shear gamma1, gamma2) rotate by twice the angle, and a mirror maps
/// (e1, e2) -> (e1, -e2); every other column is taken to be a scalar
/// (unchanged).  Columns that are neither (an angle such as a multipole's
/// phi_m, shapelet coefficients) must not be used with augmentation.  The
/// map of the image is exact when the rest of the forward model commutes
/// with the group: pixel centres at (i - (n-1)/2) pixel_scale about the
/// grid centre (geometry/pixel_grid.hpp) and symmetric sub-pixels map to
/// each other; the PSF must be invariant under the group (a circular
/// Gaussian or Moffat: an asymmetric pixel PSF is mapped with the image, so
/// the result is the mapped labels seen through a mapped PSF); noise and
/// pixel artefacts are i.i.d. per pixel, so their statistics are unchanged
/// (cosmic-ray tracks and masks are mapped with the image).  Quarter turns
/// need square images.
///
/// References: lenstronomy's parameter conventions (Birrer & Amara 2018,
/// Phys. Dark Univ. 22, 189) for e1, e2, gamma1, gamma2.

#include <lensing/core/errors.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lensing {
namespace simulate {

/// First global image index of the conventional validation stream (see the
/// file comment): disjoint from a training stream starting at 0 that draws
/// fewer than 2^48 images.
inline constexpr std::uint64_t validation_first_index = std::uint64_t(1) << 48;

/// One batch of a DataSource: views to the source's buffers (see the file
/// comment for their lifetime).
template <class Scalar, class MemorySpace>
struct DataBatch {
  View4D<Scalar, MemorySpace> images;  ///< (B, C, H, W)
  View2D<Scalar, MemorySpace> labels;  ///< (B, K)
  long step = 0;                       ///< iterator position of this batch (epoch = step / batches_per_epoch)
};

//----------------------------------------------------------------------------
// The DataSource concept.

namespace detail {
template <class S, class = void>
struct ds_types : std::false_type {};
template <class S>
struct ds_types<S, std::void_t<typename S::scalar_type, typename S::memory_space>> : std::true_type {};
template <class S, class = void>
struct ds_batch_size : std::false_type {};
template <class S>
struct ds_batch_size<S, std::enable_if_t<std::is_integral<decltype(std::declval<S const&>().batch_size())>::value>>
    : std::true_type {};
template <class S, class = void>
struct ds_num_labels : std::false_type {};
template <class S>
struct ds_num_labels<S, std::enable_if_t<std::is_integral<decltype(std::declval<S const&>().num_labels())>::value>>
    : std::true_type {};
template <class S, class = void>
struct ds_sample_shape : std::false_type {};
template <class S>
struct ds_sample_shape<
    S,
    std::enable_if_t<std::is_convertible<decltype(std::declval<S const&>().sample_shape()), std::array<int, 3>>::value>>
    : std::true_type {};
template <class S, class = void>
struct ds_batches_per_epoch : std::false_type {};
template <class S>
struct ds_batches_per_epoch<
    S, std::enable_if_t<std::is_integral<decltype(std::declval<S const&>().batches_per_epoch())>::value>>
    : std::true_type {};
template <class S, class = void>
struct ds_start_epoch : std::false_type {};
template <class S>
struct ds_start_epoch<S, std::void_t<decltype(std::declval<S&>().start_epoch(long(0)))>> : std::true_type {};
template <class S, class E, class = void>
struct ds_next : std::false_type {
  using type = void;
};
template <class S, class E>
struct ds_next<S, E, std::void_t<decltype(std::declval<S&>().next(std::declval<E const&>()))>> : std::true_type {
  using type = std::decay_t<decltype(std::declval<S&>().next(std::declval<E const&>()))>;
};
template <class B, class Scalar, class Mem, class = void>
struct ds_batch_views : std::false_type {};
template <class B, class Scalar, class Mem>
struct ds_batch_views<B, Scalar, Mem,
                      std::void_t<decltype(std::declval<B const&>().images), decltype(std::declval<B const&>().labels)>>
    : std::integral_constant<
          bool, std::is_convertible<decltype(std::declval<B const&>().images), View4D<Scalar, Mem>>::value &&
                    std::is_convertible<decltype(std::declval<B const&>().labels), View2D<Scalar, Mem>>::value> {};
template <class S, class E, bool = ds_types<S>::value>
struct ds_batch_ok : std::false_type {};
template <class S, class E>
struct ds_batch_ok<S, E, true>
    : ds_batch_views<typename ds_next<S, E>::type, typename S::scalar_type, typename S::memory_space> {};
template <class S, class E, bool = ds_types<S>::value>
struct ds_accessible : std::false_type {};
template <class S, class E>
struct ds_accessible<S, E, true> : std::integral_constant<bool, is_accessible_from_v<E, typename S::memory_space>> {};
}  // namespace detail

/// Whether S models DataSource (see the file comment) on execution space E.
template <class S, class E>
constexpr bool is_data_source_v = is_execution_space_v<E>&& detail::ds_types<S>::value&&
    detail::ds_accessible<S, E>::value&& detail::ds_batch_size<S>::value&& detail::ds_num_labels<S>::value&&
        detail::ds_sample_shape<S>::value&& detail::ds_batches_per_epoch<S>::value&& detail::ds_start_epoch<S>::value&&
            detail::ds_next<S, E>::value&& detail::ds_batch_ok<S, E>::value;

/// Compile-time check of the DataSource concept with one readable message per
/// missing requirement (for a training loop's entry point).
template <class S, class E>
constexpr bool check_data_source() {
  static_assert(is_execution_space_v<E>, "lensing::DataSource: not a Kokkos execution space");
  static_assert(detail::ds_types<S>::value, "lensing::DataSource: the source must define scalar_type and memory_space");
  static_assert(!detail::ds_types<S>::value || detail::ds_accessible<S, E>::value,
                "lensing::DataSource: the source's memory space is not accessible from the execution space");
  static_assert(detail::ds_batch_size<S>::value, "lensing::DataSource: needs `int batch_size() const`");
  static_assert(detail::ds_num_labels<S>::value, "lensing::DataSource: needs `int num_labels() const`");
  static_assert(detail::ds_sample_shape<S>::value,
                "lensing::DataSource: needs `std::array<int, 3> sample_shape() const` (C, H, W of one image)");
  static_assert(detail::ds_batches_per_epoch<S>::value, "lensing::DataSource: needs `long batches_per_epoch() const`");
  static_assert(detail::ds_start_epoch<S>::value, "lensing::DataSource: needs `void start_epoch(long epoch)`");
  static_assert(detail::ds_next<S, E>::value, "lensing::DataSource: needs `next(space)` returning a batch");
  static_assert(!detail::ds_next<S, E>::value || detail::ds_batch_ok<S, E>::value,
                "lensing::DataSource: next(space) must return a batch with members `images` (View4D<scalar_type, "
                "memory_space>, (B, C, H, W)) and `labels` (View2D<scalar_type, memory_space>, (B, K))");
  return true;
}

//----------------------------------------------------------------------------
// The dihedral group of the square, on positions, spin-2 pairs and pixels.

/// Element g in [0, 8) of the dihedral group of the square: first a mirror
/// x -> -x when (g & 1), then (g >> 1) quarter turns (x, y) -> (-y, x).
/// Kernel-safe static functions.
struct Dihedral {
  /// A position (x, y) relative to the centre of the map.
  template <class Scalar>
  KOKKOS_INLINE_FUNCTION static void position(int g, Scalar& x, Scalar& y) {
    if (g & 1) x = -x;
    Scalar const a = x, b = y;
    switch ((g >> 1) & 3) {
      case 1:
        x = -b;
        y = a;
        break;
      case 2:
        x = -a;
        y = -b;
        break;
      case 3:
        x = b;
        y = -a;
        break;
      default:
        break;
    }
  }
  /// A spin-2 pair (e1, e2) ~ |e| (cos 2phi, sin 2phi): a mirror maps phi ->
  /// -phi, a quarter turn phi -> phi + pi/2 (e -> -e).
  template <class Scalar>
  KOKKOS_INLINE_FUNCTION static void spin2(int g, Scalar& e1, Scalar& e2) {
    if (g & 1) e2 = -e2;
    if ((g >> 1) & 1) {
      e1 = -e1;
      e2 = -e2;
    }
  }
  /// The input pixel (sx, sy) that output pixel (ix, iy) of the mapped
  /// nx x ny image shows (out(iy, ix) = in(sy, sx)): the inverse map applied
  /// to doubled centred coordinates (2 i - (n - 1)), exact in integers.  Odd
  /// numbers of quarter turns need nx == ny.
  KOKKOS_INLINE_FUNCTION static void source_pixel(int g, int ix, int iy, int nx, int ny, int& sx, int& sy) {
    int a = 2 * ix - (nx - 1), b = 2 * iy - (ny - 1);
    int const ra = a, rb = b;
    switch ((4 - ((g >> 1) & 3)) & 3) {  // the inverse rotation
      case 1:
        a = -rb;
        b = ra;
        break;
      case 2:
        a = -ra;
        b = -rb;
        break;
      case 3:
        a = rb;
        b = -ra;
        break;
      default:
        break;
    }
    if (g & 1) a = -a;  // the mirror is its own inverse, applied last
    sx = (a + nx - 1) / 2;
    sy = (b + ny - 1) / 2;
  }
  /// The group element of global image `index` for augmentation `seed`
  /// (three bits of the stream (seed, purpose_augment, index)).
  KOKKOS_INLINE_FUNCTION static int draw(std::uint64_t seed, std::uint64_t index, bool flips, bool rotations) {
    random::Stream s(random::stream_key(seed, random::purpose_augment, index));
    int const r = int(s.bits() >> 61);
    return (flips ? (r & 1) : 0) | (rotations ? (r & 6) : 0);
  }
};

/// Augmentation of SimulatedBatches (off by default).
struct Augmentation {
  bool flips = false;      ///< mirror x -> -x with probability 1/2
  bool rotations = false;  ///< k quarter turns, k uniform in {0, 1, 2, 3} (square images)
  std::uint64_t seed = 0;  ///< seed of the streams (seed, random::purpose_augment, global image index)
  bool enabled() const { return flips || rotations; }
};

/// Kind of a declared label pair.
enum class PairKind : int {
  position = 0,  ///< (x, y) in arcsec, a vector about the grid centre
  spin2 = 1      ///< (e1, e2) or (gamma1, gamma2): rotates by twice the angle
};

/// Columns (x, y) of a declared label pair (device table entry).
struct LabelPair {
  int x = 0, y = 0;
  PairKind kind = PairKind::position;
};

//----------------------------------------------------------------------------
// SimulatedBatches.

namespace detail {
template <class G, class = void>
struct has_batch_capacity : std::false_type {};
template <class G>
struct has_batch_capacity<G, std::void_t<decltype(std::declval<G const&>().batch_capacity())>> : std::true_type {};
template <class G, class = void>
struct has_chunk_size : std::false_type {};
template <class G>
struct has_chunk_size<G, std::void_t<decltype(std::declval<G const&>().chunk_size())>> : std::true_type {};
template <class G, class = void>
struct has_table : std::false_type {};
template <class G>
struct has_table<G, std::void_t<decltype(std::declval<G const&>().table())>> : std::true_type {};
template <class G, class = void>
struct has_grid : std::false_type {};
template <class G>
struct has_grid<G, std::void_t<decltype(std::declval<G const&>().grid().nx())>> : std::true_type {};

inline std::string join_names(std::vector<std::string> const& names) {
  std::string s;
  for (auto const& n : names)
    s += (s.empty() ? "" : ", ") + n;
  return s;
}
}  // namespace detail

/// Options of SimulatedBatches (see its class comment).
struct SimulatedBatchesOptions {
  int batch_size = 256;           ///< B, images per batch (any size: generated in chunks of the generator's capacity)
  std::uint64_t first_index = 0;  ///< global index of the first image of step 0
  long batches_per_epoch = 100;   ///< steps per epoch (the DataSource's epoch length)
  bool fresh_each_epoch = true;   ///< false: every epoch replays the same batches (a fixed validation set)
  Augmentation augmentation{};    ///< flips / quarter turns of images and labels; off by default
};

/// An endless iterator of device batches (images (B, 1, ny, nx), labels
/// (B, K')) drawn on the fly from a batch generator: a DataSource.
///
/// Generator: any type with `scalar_type`, `memory_space`, `grid()` (a
/// PixelGrid), `label_names()`, `batch_capacity()` or `chunk_size()`, and
/// `generate(space, first_index, images (m, ny, nx), labels (m, K))` drawing
/// global images [first_index, first_index + m), each a function of the
/// generator's seed and its index only: Simulator (simulator.hpp) and
/// TrainingSetGenerator (training_set.hpp).  The source holds a copy of the
/// generator; Kokkos views are shared, so the copy uses the generator's
/// buffers: don't run the original's generate concurrently with next().
///
/// Step s (the s-th next() since reset) draws the global images
///   first_index + j B + [0, B),  j = s (fresh_each_epoch) or s mod batches_per_epoch,
/// so batch s depends only on (generator seed, first_index, s, B) and the
/// augmentation seed, whatever the thread count or the generator's capacity.
/// Then per image b, on the device: the group element g = Dihedral::draw
/// (augmentation on), the declared label pairs mapped by g (file comment),
/// and the selected columns standardised:
///   labels(b, k) = (raw(b, column_k) - mean_k) / sd_k.
/// The images are generated straight into the batch tensor (no copy) without
/// augmentation; with it, into a scratch batch mapped by g.
///
/// Label selection: select_labels(names) (default: all, in the generator's
/// order).  Standardisation (default: none, mean 0 and sd 1): given means and
/// sds; from the table's priors (mean(), variance(); a tied column
/// scale * source + offset gets scale * mean + offset, |scale| * sd); or
/// estimated from a pilot run of the source itself (augmentation included).
/// Prior moments describe the un-augmented labels: with augmentation of a
/// column whose prior is not symmetric under the group, prefer the pilot.
/// destandardise() maps predictions back (host rows or device views).
///
/// Errors: std::invalid_argument naming the culprit (unknown label names,
/// with the known ones listed; a fixed or heavy-tailed prior for
/// standardisation; quarter turns of non-square images; with augmentation
/// on, a label with a standard position or spin-2 name in no declared pair,
/// or an angle label phi...).  Configuration
/// calls give the strong guarantee (a throw leaves the source unchanged);
/// next() advances the step only when it succeeds.  No output on streams.
template <class Generator>
class SimulatedBatches {
 public:
  using generator_type = Generator;
  using scalar_type = typename Generator::scalar_type;
  using memory_space = typename Generator::memory_space;
  using batch_type = DataBatch<scalar_type, memory_space>;
  using Scalar = scalar_type;

  static_assert(detail::has_grid<Generator>::value,
                "lensing::simulate::SimulatedBatches: the generator needs grid() (a PixelGrid)");
  static_assert(detail::has_batch_capacity<Generator>::value || detail::has_chunk_size<Generator>::value,
                "lensing::simulate::SimulatedBatches: the generator needs batch_capacity() or chunk_size()");

  explicit SimulatedBatches(Generator const& generator, SimulatedBatchesOptions const& options = {})
      : m_gen(generator), m_opt(options), m_all_names(generator.label_names()) {
    constexpr char const* where = "lensing::simulate::SimulatedBatches";
    check_count(options.batch_size, 1, where, "batch_size");
    check_count(options.batches_per_epoch, 1, where, "batches_per_epoch");
    check_argument(!m_all_names.empty(), where, "the generator has no labels");
    auto const& grid = generator.grid();
    m_nx = grid.nx();
    m_ny = grid.ny();
    m_cx = double(grid.center_x());
    m_cy = double(grid.center_y());
    if constexpr (detail::has_batch_capacity<Generator>::value)
      m_capacity = int(generator.batch_capacity());
    else
      m_capacity = int(generator.chunk_size());
    check_argument(m_capacity >= 1, where, "the generator's batch capacity must be >= 1");
    check_augmentation(options.augmentation, where);
    int const B = options.batch_size, K = int(m_all_names.size());
    m_images = View4D<Scalar, memory_space>("lensing::SimulatedBatches::images", B, 1, m_ny, m_nx);
    m_raw = View2D<Scalar, memory_space>("lensing::SimulatedBatches::raw_labels", B, K);
    m_group = View1D<int, memory_space>("lensing::SimulatedBatches::group", B);
    if (options.augmentation.enabled())
      m_scratch = View3D<Scalar, memory_space>("lensing::SimulatedBatches::scratch", B, m_ny, m_nx);
    std::vector<int> all(static_cast<std::size_t>(K));
    for (int k = 0; k < K; ++k)
      all[std::size_t(k)] = k;
    commit_selection(all, std::vector<double>(all.size(), 0.0), std::vector<double>(all.size(), 1.0));
    upload_pairs({});
    m_first = options.first_index;
  }

  //--------------------------------------------------------------------------
  // DataSource.

  int batch_size() const { return m_opt.batch_size; }
  int num_labels() const { return int(m_selected.size()); }
  std::array<int, 3> sample_shape() const { return {1, m_ny, m_nx}; }
  long batches_per_epoch() const { return m_opt.batches_per_epoch; }
  void start_epoch(long epoch) {
    check_count(epoch, 0, "lensing::simulate::SimulatedBatches::start_epoch", "epoch");
    m_step = epoch * m_opt.batches_per_epoch;
  }

  /// Fill the batch of the current step (class comment), advance, and return
  /// views to the source's buffers.  Asynchronous on `space` except for the
  /// generator's own fences.
  template <class ExecutionSpace>
  batch_type next(ExecutionSpace const& space) {
    fill(space, image_index(m_step));
    batch_type b{m_images, m_labels, m_step};
    ++m_step;
    return b;
  }

  /// Position the iterator at step `step` (the next next() draws its batch).
  void seek(long step) {
    check_count(step, 0, "lensing::simulate::SimulatedBatches::seek", "step");
    m_step = step;
  }
  /// Restart at step 0 with the first image `first_index`.
  void reset(std::uint64_t first_index) {
    m_first = first_index;
    m_step = 0;
  }
  /// Restart at step 0 with the current first index.
  void reset() { m_step = 0; }

  /// Global index of the first image of step s.
  std::uint64_t image_index(long step) const {
    long const j = m_opt.fresh_each_epoch ? step : step % m_opt.batches_per_epoch;
    return m_first + std::uint64_t(j) * std::uint64_t(m_opt.batch_size);
  }
  long step() const { return m_step; }
  std::uint64_t first_index() const { return m_first; }
  Generator const& generator() const { return m_gen; }
  SimulatedBatchesOptions const& options() const { return m_opt; }

  //--------------------------------------------------------------------------
  // Labels.

  /// Names of the selected label columns (the batch's label columns).
  std::vector<std::string> label_names() const {
    std::vector<std::string> out;
    for (int c : m_selected)
      out.push_back(m_all_names[std::size_t(c)]);
    return out;
  }
  /// The generator's label names (raw columns).
  std::vector<std::string> const& all_label_names() const { return m_all_names; }
  /// Raw (augmented, unstandardised) labels of the last filled batch, (B, K).
  View2D<Scalar, memory_space> const& raw_labels() const { return m_raw; }

  /// Select the label columns of the batches by name, in this order; resets
  /// the standardisation to none.  An unknown name is a
  /// std::invalid_argument naming it and the known ones.
  void select_labels(std::vector<std::string> const& names) {
    constexpr char const* where = "lensing::simulate::SimulatedBatches::select_labels";
    check_argument(!names.empty(), where, "select at least one label");
    std::vector<int> cols;
    for (auto const& n : names) {
      int const c = column(n, where);
      check_argument(std::find(cols.begin(), cols.end(), c) == cols.end(), where,
                     "the label '" + n + "' is selected twice");
      cols.push_back(c);
    }
    commit_selection(cols, std::vector<double>(cols.size(), 0.0), std::vector<double>(cols.size(), 1.0));
  }

  /// Standardise the selected columns: (label - means[k]) / sds[k], sds > 0.
  void standardise(std::vector<double> const& means, std::vector<double> const& sds) {
    constexpr char const* where = "lensing::simulate::SimulatedBatches::standardise";
    std::size_t const K = m_selected.size();
    check_argument(means.size() == K && sds.size() == K, where,
                   "give one mean and one sd per selected label (" + std::to_string(K) + "), got " +
                       std::to_string(means.size()) + " and " + std::to_string(sds.size()));
    for (std::size_t k = 0; k < K; ++k) {
      std::string const n = m_all_names[std::size_t(m_selected[k])];
      check_argument(std::isfinite(means[k]), where, "the mean of '" + n + "' is not finite");
      check_argument(std::isfinite(sds[k]) && sds[k] > 0, where, "the sd of '" + n + "' must be finite and > 0");
    }
    commit_selection(m_selected, means, sds);
  }

  /// Standardise with the priors' moments (generator.table(): mean(),
  /// variance(); tied columns from their sources, see the class comment).
  /// A fixed prior (sd 0) or one without finite moments is a
  /// std::invalid_argument naming the column.
  void standardise_from_priors() {
    constexpr char const* where = "lensing::simulate::SimulatedBatches::standardise_from_priors";
    if constexpr (detail::has_table<Generator>::value) {
      auto const& table = m_gen.table();
      check_argument(table.names() == m_all_names, where,
                     "the generator's label columns are not its table's columns; give means and sds instead");
      std::vector<double> means, sds;
      for (int c : m_selected) {
        double mean = 0, var = 0;
        prior_moments(table, c, mean, var, 0);
        std::string const& n = m_all_names[std::size_t(c)];
        check_argument(std::isfinite(mean) && std::isfinite(var), where,
                       "the prior of '" + n +
                           "' has no finite mean and variance; give means and sds or use standardise_from_pilot");
        check_argument(var > 0, where,
                       "the prior of '" + n + "' has variance 0 (fixed): leave it out of select_labels");
        means.push_back(mean);
        sds.push_back(std::sqrt(var));
      }
      commit_selection(m_selected, means, sds);
    } else {
      throw_invalid_argument(where, "the generator has no table() of priors; give means and sds instead");
    }
  }

  /// Standardise with the mean and sd (n - 1 denominator) of the selected
  /// columns over `n_images` images of this source from global index
  /// `first_index` (augmentation included).  Overwrites the batch buffers
  /// (earlier batches' views), not the step.  A column with zero spread is a
  /// std::invalid_argument naming it.  Fences `space`.
  template <class ExecutionSpace>
  void standardise_from_pilot(ExecutionSpace const& space, long n_images, std::uint64_t first_index) {
    constexpr char const* where = "lensing::simulate::SimulatedBatches::standardise_from_pilot";
    check_count(n_images, 2, where, "n_images");
    std::size_t const K = m_selected.size();
    std::vector<double> sum(K, 0.0), mean(K, 0.0), m2(K, 0.0);
    auto host = Kokkos::create_mirror_view(m_raw);
    long count = 0;
    for (long done = 0; done < n_images; done += m_opt.batch_size) {
      fill(space, first_index + std::uint64_t(done));
      space.fence();
      Kokkos::deep_copy(host, m_raw);
      long const rows = std::min<long>(m_opt.batch_size, n_images - done);
      for (long b = 0; b < rows; ++b) {
        ++count;
        for (std::size_t k = 0; k < K; ++k) {  // Welford's update (stable for large means)
          double const v = double(host(b, m_selected[k]));
          double const d = v - mean[k];
          mean[k] += d / double(count);
          m2[k] += d * (v - mean[k]);
        }
      }
    }
    std::vector<double> sds(K);
    for (std::size_t k = 0; k < K; ++k) {
      sds[k] = std::sqrt(m2[k] / double(count - 1));
      std::string const& n = m_all_names[std::size_t(m_selected[k])];
      check_argument(std::isfinite(mean[k]) && std::isfinite(sds[k]), where,
                     "the pilot values of '" + n + "' are not finite");
      check_argument(sds[k] > 0, where,
                     "the label '" + n + "' does not vary over the pilot images: leave it out of select_labels");
    }
    commit_selection(m_selected, mean, sds);
  }

  /// Mean and sd of selected column k (0 and 1 without standardisation).
  double mean(int k) const { return m_mean.at(std::size_t(k)); }
  double sd(int k) const { return m_sd.at(std::size_t(k)); }

  /// Standardised value of selected column k, and back.
  double standardise_value(int k, double value) const { return (value - mean(k)) / sd(k); }
  double destandardise_value(int k, double value) const { return value * sd(k) + mean(k); }
  /// A host row of num_labels() standardised values, destandardised.
  std::vector<double> destandardise(std::vector<double> row) const {
    check_argument(
        row.size() == m_selected.size(), "lensing::simulate::SimulatedBatches::destandardise",
        "the row has " + std::to_string(row.size()) + " values, expected " + std::to_string(m_selected.size()));
    for (std::size_t k = 0; k < row.size(); ++k)
      row[k] = row[k] * m_sd[k] + m_mean[k];
    return row;
  }
  /// Destandardise predictions (n, num_labels()) in place on `space` (any
  /// rank-2 view accessible from it: device predictions or a host copy).
  /// Asynchronous on `space`.
  template <class ExecutionSpace, class View>
  void destandardise(ExecutionSpace const& space, View const& pred) const {
    static_assert(is_execution_space_v<ExecutionSpace>,
                  "lensing::simulate::SimulatedBatches::destandardise: first argument must be an execution space");
    static_assert(View::rank == 2, "lensing::simulate::SimulatedBatches::destandardise: a rank-2 view (n, K)");
    static_assert(is_accessible_from_v<ExecutionSpace, typename View::memory_space>,
                  "lensing::simulate::SimulatedBatches::destandardise: the view must be accessible from the space");
    int const K = num_labels();
    check_argument(
        int(pred.extent(1)) == K, "lensing::simulate::SimulatedBatches::destandardise",
        "the predictions have " + std::to_string(pred.extent(1)) + " columns, expected " + std::to_string(K));
    using T = typename View::non_const_value_type;
    View1D<double, typename ExecutionSpace::memory_space> mean("lensing::SimulatedBatches::mean", K),
        sd("lensing::SimulatedBatches::sd", K);
    {
      auto hm = Kokkos::create_mirror_view(mean);
      auto hs = Kokkos::create_mirror_view(sd);
      for (int k = 0; k < K; ++k) {
        hm(k) = m_mean[std::size_t(k)];
        hs(k) = m_sd[std::size_t(k)];
      }
      Kokkos::deep_copy(space, mean, hm);
      Kokkos::deep_copy(space, sd, hs);
      space.fence();  // the host mirrors die here
    }
    Kokkos::parallel_for(
        "lensing::simulate::destandardise", Kokkos::RangePolicy<ExecutionSpace>(space, 0, long(pred.extent(0)) * K),
        KOKKOS_LAMBDA(long i) {
          long const b = i / K;
          int const k = int(i % K);
          pred(b, k) = T(double(pred(b, k)) * sd(k) + mean(k));
        });
  }

  //--------------------------------------------------------------------------
  // Augmentation.

  /// Declare columns (x, y) a position pair (arcsec, about the grid centre).
  void add_position_pair(std::string const& x, std::string const& y) { add_pair(x, y, PairKind::position); }
  /// Declare columns (a, b) a spin-2 pair (e1, e2 or gamma1, gamma2).
  void add_spin2_pair(std::string const& a, std::string const& b) { add_pair(a, b, PairKind::spin2); }

  /// Declare the pairs of the standard (lenstronomy) names present among the
  /// labels, with any common prefix (e.g. "lens0."): positions (center_x,
  /// center_y), (ra_0, dec_0), (source_x, source_y); spin-2 (e1, e2),
  /// (gamma1, gamma2).  Pairs already declared are skipped.  Returns the
  /// number of pairs added.
  int declare_standard_pairs() {
    static constexpr char const* pos[][2] = {{"center_x", "center_y"}, {"ra_0", "dec_0"}, {"source_x", "source_y"}};
    static constexpr char const* spin[][2] = {{"e1", "e2"}, {"gamma1", "gamma2"}};
    std::vector<LabelPair> pairs = m_pairs_host;
    int added = 0;
    auto const try_add = [&](std::string const& name, char const* const(&p)[2], PairKind kind) {
      std::size_t const dot = name.rfind('.');
      std::string const prefix = dot == std::string::npos ? "" : name.substr(0, dot + 1);
      std::string const base = dot == std::string::npos ? name : name.substr(dot + 1);
      if (base != p[0]) return;
      int const cx = find(name), cy = find(prefix + p[1]);
      if (cx < 0 || cy < 0 || declared(pairs, cx) || declared(pairs, cy)) return;
      pairs.push_back(LabelPair{cx, cy, kind});
      ++added;
    };
    for (auto const& n : m_all_names) {
      for (auto const& p : pos)
        try_add(n, p, PairKind::position);
      for (auto const& p : spin)
        try_add(n, p, PairKind::spin2);
    }
    upload_pairs(pairs);
    return added;
  }
  /// The declared pairs (columns of the generator's labels).
  std::vector<LabelPair> const& pairs() const { return m_pairs_host; }

  /// Turn augmentation on or off (quarter turns need square images).
  void set_augmentation(Augmentation const& a) {
    check_augmentation(a, "lensing::simulate::SimulatedBatches::set_augmentation");
    View3D<Scalar, memory_space> scratch = m_scratch;
    if (a.enabled() && scratch.data() == nullptr)
      scratch = View3D<Scalar, memory_space>("lensing::SimulatedBatches::scratch", m_opt.batch_size, m_ny, m_nx);
    m_scratch = a.enabled() ? scratch : View3D<Scalar, memory_space>();
    m_opt.augmentation = a;
  }

 private:
  using Unmanaged3 =
      Kokkos::View<Scalar***, Kokkos::LayoutRight, memory_space, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

  void check_augmentation(Augmentation const& a, char const* where) const {
    check_argument(!a.rotations || m_nx == m_ny, where,
                   "augmentation by quarter turns needs square images, got ny x nx = " + std::to_string(m_ny) + " x " +
                       std::to_string(m_nx) + " (use flips only)");
  }

  // With augmentation on, a column with a standard position or spin-2 name
  // outside every declared pair, or an angle (phi...), would be left
  // unmapped while the image turns: refuse it.
  void check_pairs_declared() const {
    constexpr char const* where = "lensing::simulate::SimulatedBatches::next";
    static constexpr char const* paired[] = {"center_x", "center_y", "ra_0", "dec_0",  "source_x",
                                             "source_y", "e1",       "e2",   "gamma1", "gamma2"};
    for (std::size_t c = 0; c < m_all_names.size(); ++c) {
      std::string const& name = m_all_names[c];
      std::size_t const dot = name.rfind('.');
      std::string const base = dot == std::string::npos ? name : name.substr(dot + 1);
      check_argument(base.compare(0, 3, "phi") != 0, where,
                     "the label '" + name + "' is an angle, which augmentation does not map; leave augmentation off");
      if (declared(m_pairs_host, int(c))) continue;
      for (char const* p : paired)
        check_argument(base != p, where,
                       "augmentation is on but the label '" + name +
                           "' is in no declared pair: declare it (add_position_pair, add_spin2_pair or "
                           "declare_standard_pairs())");
    }
  }

  int find(std::string const& name) const {
    for (std::size_t i = 0; i < m_all_names.size(); ++i)
      if (m_all_names[i] == name) return int(i);
    return -1;
  }
  int column(std::string const& name, char const* where) const {
    int const c = find(name);
    if (c < 0) throw_invalid_argument(where, "unknown label '" + name + "'; known: " + detail::join_names(m_all_names));
    return c;
  }
  static bool declared(std::vector<LabelPair> const& pairs, int c) {
    for (auto const& p : pairs)
      if (p.x == c || p.y == c) return true;
    return false;
  }
  void add_pair(std::string const& x, std::string const& y, PairKind kind) {
    constexpr char const* where = "lensing::simulate::SimulatedBatches::add_pair";
    int const cx = column(x, where), cy = column(y, where);
    check_argument(cx != cy, where, "a pair needs two different columns, got '" + x + "' twice");
    std::vector<LabelPair> pairs = m_pairs_host;
    check_argument(!declared(pairs, cx), where, "the label '" + x + "' is already in a declared pair");
    check_argument(!declared(pairs, cy), where, "the label '" + y + "' is already in a declared pair");
    pairs.push_back(LabelPair{cx, cy, kind});
    upload_pairs(pairs);
  }
  void upload_pairs(std::vector<LabelPair> const& pairs) {
    View1D<LabelPair, memory_space> d(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::SimulatedBatches::pairs"), pairs.size());
    auto h = Kokkos::create_mirror_view(d);
    for (std::size_t i = 0; i < pairs.size(); ++i)
      h(i) = pairs[i];
    Kokkos::deep_copy(d, h);
    m_pairs = d;  // no throw from here on
    m_pairs_host = pairs;
  }

  // Mean and variance of table column c (ties: scale * source + offset).
  template <class Table>
  static void prior_moments(Table const& table, int c, double& mean, double& var, int depth) {
    check_argument(depth < 64, "lensing::simulate::SimulatedBatches::standardise_from_priors", "a cycle of ties");
    if (table.is_tied(c)) {
      auto const& t = table.tie_of(c);
      prior_moments(table, t.source, mean, var, depth + 1);
      mean = t.scale * mean + t.offset;
      var = t.scale * t.scale * var;
    } else {
      auto const& p = table.prior(c);
      mean = double(p.mean());
      var = double(p.variance());
    }
  }

  // New selection and standardisation: device copies and the label buffer
  // first, members after (strong guarantee).
  void commit_selection(std::vector<int> const& cols, std::vector<double> const& means,
                        std::vector<double> const& sds) {
    int const K = int(cols.size());
    View1D<int, memory_space> sel(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::SimulatedBatches::selected"), K);
    View1D<Scalar, memory_space> dm(Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::SimulatedBatches::mean"),
                                    K),
        ds(Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::SimulatedBatches::sd"), K);
    auto hsel = Kokkos::create_mirror_view(sel);
    auto hm = Kokkos::create_mirror_view(dm);
    auto hs = Kokkos::create_mirror_view(ds);
    for (int k = 0; k < K; ++k) {
      hsel(k) = cols[std::size_t(k)];
      hm(k) = Scalar(means[std::size_t(k)]);
      hs(k) = Scalar(sds[std::size_t(k)]);
    }
    Kokkos::deep_copy(sel, hsel);
    Kokkos::deep_copy(dm, hm);
    Kokkos::deep_copy(ds, hs);
    View2D<Scalar, memory_space> labels = m_labels;
    if (labels.data() == nullptr || int(labels.extent(1)) != K)
      labels = View2D<Scalar, memory_space>("lensing::SimulatedBatches::labels", m_opt.batch_size, K);
    std::vector<int> c2 = cols;
    std::vector<double> m2 = means, s2 = sds;
    // No throw from here on.
    m_sel = sel;
    m_dmean = dm;
    m_dsd = ds;
    m_labels = labels;
    m_selected.swap(c2);
    m_mean.swap(m2);
    m_sd.swap(s2);
  }

 public:
  // Public only because nvcc forbids extended lambdas in private member
  // functions; not part of the interface.
  // Images and labels of global images [first, first + B) into the buffers.
  template <class ExecutionSpace>
  void fill(ExecutionSpace const& space, std::uint64_t first) {
    static_assert(is_execution_space_v<ExecutionSpace>,
                  "lensing::simulate::SimulatedBatches: first argument must be a Kokkos execution space");
    static_assert(is_accessible_from_v<ExecutionSpace, memory_space>,
                  "lensing::simulate::SimulatedBatches: the generator's memory space must be accessible from the "
                  "execution space");
    int const B = m_opt.batch_size, ny = m_ny, nx = m_nx;
    Augmentation const aug = m_opt.augmentation;
    bool const augment = aug.enabled();
    if (augment) check_pairs_declared();
    // 1. Generate, in chunks of the generator's capacity (images are a
    //    function of their global index only, so chunking changes nothing).
    Unmanaged3 const target(augment ? m_scratch.data() : m_images.data(), B, ny, nx);
    for (int s = 0; s < B; s += m_capacity) {
      int const e = std::min(B, s + m_capacity);
      m_gen.generate(space, first + std::uint64_t(s),
                     Kokkos::subview(target, Kokkos::make_pair(s, e), Kokkos::ALL, Kokkos::ALL),
                     Kokkos::subview(m_raw, Kokkos::make_pair(s, e), Kokkos::ALL));
    }
    // 2. Labels: group element, pairs mapped, selected columns standardised.
    auto const raw = m_raw;
    auto const out = m_labels;
    auto const sel = m_sel;
    auto const mean = m_dmean;
    auto const sd = m_dsd;
    auto const pairs = m_pairs;
    auto const group = m_group;
    int const P = augment ? int(pairs.extent(0)) : 0, K = int(sel.extent(0));
    std::uint64_t const seed = aug.seed;
    bool const flips = aug.flips, rotations = aug.rotations;
    Scalar const cx = Scalar(m_cx), cy = Scalar(m_cy);
    Kokkos::parallel_for(
        "lensing::simulate::SimulatedBatches::labels", Kokkos::RangePolicy<ExecutionSpace>(space, 0, B),
        KOKKOS_LAMBDA(int b) {
          if (augment) {
            int const g = Dihedral::draw(seed, first + std::uint64_t(b), flips, rotations);
            group(b) = g;
            for (int p = 0; p < P; ++p) {
              LabelPair const pr = pairs(p);
              Scalar x = raw(b, pr.x), y = raw(b, pr.y);
              if (pr.kind == PairKind::position) {
                x -= cx;
                y -= cy;
                Dihedral::position(g, x, y);
                x += cx;
                y += cy;
              } else {
                Dihedral::spin2(g, x, y);
              }
              raw(b, pr.x) = x;
              raw(b, pr.y) = y;
            }
          }
          for (int k = 0; k < K; ++k)
            out(b, k) = (raw(b, sel(k)) - mean(k)) / sd(k);
        });
    // 3. Images mapped by their group elements.
    if (augment) {
      auto const in = m_scratch;
      auto const img = m_images;
      Kokkos::parallel_for(
          "lensing::simulate::SimulatedBatches::augment",
          Kokkos::MDRangePolicy<ExecutionSpace, Kokkos::Rank<3>>(space, {0, 0, 0}, {B, ny, nx}),
          KOKKOS_LAMBDA(int b, int iy, int ix) {
            int sx = 0, sy = 0;
            Dihedral::source_pixel(group(b), ix, iy, nx, ny, sx, sy);
            img(b, 0, iy, ix) = in(b, sy, sx);
          });
    }
  }

 private:
  Generator m_gen;
  SimulatedBatchesOptions m_opt;
  std::vector<std::string> m_all_names;
  int m_nx = 0, m_ny = 0, m_capacity = 1;
  double m_cx = 0, m_cy = 0;
  std::uint64_t m_first = 0;
  long m_step = 0;
  std::vector<int> m_selected;
  std::vector<double> m_mean, m_sd;
  std::vector<LabelPair> m_pairs_host;
  View4D<Scalar, memory_space> m_images;
  View3D<Scalar, memory_space> m_scratch;
  View2D<Scalar, memory_space> m_raw, m_labels;
  View1D<int, memory_space> m_group, m_sel;
  View1D<Scalar, memory_space> m_dmean, m_dsd;
  View1D<LabelPair, memory_space> m_pairs;
};

//----------------------------------------------------------------------------
// ArraySource.

/// Options of ArraySource.
struct ArraySourceOptions {
  int batch_size = 32;     ///< B
  bool shuffle = true;     ///< a new permutation every epoch
  std::uint64_t seed = 0;  ///< seed of the per-epoch permutations
};

/// Batches of arrays in memory, a DataSource: images (N, C, H, W) and labels
/// (N, K), given as host or device views (LayoutRight).  Views in
/// MemorySpace are used in place (no copy); others are copied there once.
///
/// Epoch e visits the samples in the permutation of [0, N) drawn by
/// Fisher-Yates with the host stream Rng(seed, random::purpose_epoch_shuffle,
/// e) of core/random.hpp (the identity without shuffle) — the same order as
/// nn::train's epochs — in batches_per_epoch() = floor(N / B) full batches
/// (the rest of that permutation is skipped; other samples next epoch).  A
/// batch is gathered on the device into the source's own buffers.
template <class Scalar, class MemorySpace>
class ArraySource {
 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;
  using batch_type = DataBatch<Scalar, MemorySpace>;

  template <class Images, class Labels>
  ArraySource(Images const& images, Labels const& labels, ArraySourceOptions const& options = {}) : m_opt(options) {
    constexpr char const* where = "lensing::simulate::ArraySource";
    static_assert(Kokkos::is_view<Images>::value && Images::rank == 4 &&
                      std::is_same<typename Images::non_const_value_type, Scalar>::value &&
                      std::is_same<typename Images::array_layout, Kokkos::LayoutRight>::value,
                  "lensing::simulate::ArraySource: images must be a LayoutRight rank-4 view (N, C, H, W) of Scalar");
    static_assert(Kokkos::is_view<Labels>::value && Labels::rank == 2 &&
                      std::is_same<typename Labels::non_const_value_type, Scalar>::value &&
                      std::is_same<typename Labels::array_layout, Kokkos::LayoutRight>::value,
                  "lensing::simulate::ArraySource: labels must be a LayoutRight rank-2 view (N, K) of Scalar");
    check_count(options.batch_size, 1, where, "batch_size");
    long const n = long(images.extent(0));
    check_argument(long(labels.extent(0)) == n, where,
                   "images has " + std::to_string(n) + " samples, labels has " + std::to_string(labels.extent(0)));
    check_argument(n >= options.batch_size, where,
                   "the arrays hold " + std::to_string(n) + " samples, fewer than the batch size " +
                       std::to_string(options.batch_size));
    check_argument(n <= 0xFFFFFFFFL, where, "at most 2^32 - 1 samples");
    check_argument(labels.extent(1) >= 1 && images.extent(1) >= 1 && images.extent(2) >= 1 && images.extent(3) >= 1,
                   where, "empty sample shape or no label columns");
    m_x = to_space<View4D<Scalar, MemorySpace>>(images);
    m_y = to_space<View2D<Scalar, MemorySpace>>(labels);
    int const B = options.batch_size;
    m_images =
        View4D<Scalar, MemorySpace>("lensing::ArraySource::images", B, m_x.extent(1), m_x.extent(2), m_x.extent(3));
    m_labels = View2D<Scalar, MemorySpace>("lensing::ArraySource::labels", B, m_y.extent(1));
    m_perm = View1D<long, MemorySpace>("lensing::ArraySource::permutation", n);
  }

  int batch_size() const { return m_opt.batch_size; }
  int num_labels() const { return int(m_y.extent(1)); }
  std::array<int, 3> sample_shape() const { return {int(m_x.extent(1)), int(m_x.extent(2)), int(m_x.extent(3))}; }
  long batches_per_epoch() const { return long(m_x.extent(0)) / m_opt.batch_size; }
  long num_samples() const { return long(m_x.extent(0)); }
  long step() const { return m_step; }
  void start_epoch(long epoch) {
    check_count(epoch, 0, "lensing::simulate::ArraySource::start_epoch", "epoch");
    m_step = epoch * batches_per_epoch();
  }
  void reset() { m_step = 0; }
  /// Position the iterator at step `step` (the next next() gathers its batch).
  void seek(long step) {
    check_count(step, 0, "lensing::simulate::ArraySource::seek", "step");
    m_step = step;
  }

  /// The permutation of epoch `epoch` (host; see the class comment).
  std::vector<long> permutation(long epoch) const {
    long const n = num_samples();
    std::vector<long> perm(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i)
      perm[std::size_t(i)] = i;
    if (!m_opt.shuffle) return perm;
    Rng rng(m_opt.seed, random::purpose_epoch_shuffle, std::uint64_t(epoch));
    for (long i = n - 1; i > 0; --i) {
      long const j = long(rng.index(std::uint32_t(i + 1)));
      std::swap(perm[std::size_t(i)], perm[std::size_t(j)]);
    }
    return perm;
  }

  /// Gather the batch of the current step and advance; views to the
  /// source's buffers.  Asynchronous on `space` (the permutation of a new
  /// epoch is uploaded first, fenced).
  template <class ExecutionSpace>
  batch_type next(ExecutionSpace const& space) {
    static_assert(is_execution_space_v<ExecutionSpace>,
                  "lensing::simulate::ArraySource::next: first argument must be a Kokkos execution space");
    static_assert(is_accessible_from_v<ExecutionSpace, MemorySpace>,
                  "lensing::simulate::ArraySource::next: the memory space must be accessible from the execution space");
    long const bpe = batches_per_epoch(), epoch = m_step / bpe, j = m_step % bpe;
    if (epoch != m_epoch) {
      auto const perm = permutation(epoch);
      auto h = Kokkos::create_mirror_view(m_perm);
      for (std::size_t i = 0; i < perm.size(); ++i)
        h(i) = perm[i];
      space.fence();  // earlier gathers may still read m_perm
      Kokkos::deep_copy(m_perm, h);
      m_epoch = epoch;
    }
    int const B = m_opt.batch_size;
    long const per = long(m_x.extent(1)) * long(m_x.extent(2)) * long(m_x.extent(3)), K = long(m_y.extent(1));
    using Flat = Kokkos::View<Scalar**, Kokkos::LayoutRight, MemorySpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
    using ConstFlat =
        Kokkos::View<Scalar const**, Kokkos::LayoutRight, MemorySpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
    Flat const xo(m_images.data(), B, per);
    ConstFlat const xi(m_x.data(), m_x.extent(0), per);
    auto const yo = m_labels;
    auto const yi = m_y;
    auto const perm = m_perm;
    long const base = j * B;
    Kokkos::parallel_for(
        "lensing::simulate::ArraySource::gather",
        Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(B) * (per + K)),
        KOKKOS_LAMBDA(long i) {
          long const b = i / (per + K), r = i % (per + K);
          long const src = perm(base + b);
          if (r < per)
            xo(b, r) = xi(src, r);
          else
            yo(b, r - per) = yi(src, r - per);
        });
    batch_type out{m_images, m_labels, m_step};
    ++m_step;
    return out;
  }

 private:
  template <class Out, class In>
  static Out to_space(In const& in) {
    if constexpr (std::is_same<typename In::memory_space, MemorySpace>::value &&
                  std::is_same<typename In::value_type, Scalar>::value) {
      return Out(in);  // used in place
    } else if constexpr (std::is_same<typename In::memory_space, MemorySpace>::value) {
      Out out(Kokkos::view_alloc(Kokkos::WithoutInitializing, "lensing::ArraySource::data"), in.layout());
      Kokkos::deep_copy(out, in);  // const data: a copy the source may own
      return out;
    } else {
      auto copy = Kokkos::create_mirror_view_and_copy(MemorySpace(), in);
      return Out(copy);
    }
  }

  ArraySourceOptions m_opt;
  View4D<Scalar, MemorySpace> m_x, m_images;
  View2D<Scalar, MemorySpace> m_y, m_labels;
  View1D<long, MemorySpace> m_perm;
  long m_step = 0, m_epoch = -1;
};

}  // namespace simulate
}  // namespace lensing

#endif  // LENSING_SIMULATE_DATA_SOURCE_HPP
