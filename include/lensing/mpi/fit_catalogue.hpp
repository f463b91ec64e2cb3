#ifndef LENSING_MPI_FIT_CATALOGUE_HPP
#define LENSING_MPI_FIT_CATALOGUE_HPP

/// \file
/// Many-lens fitting over MPI ranks: the lenses of a catalogue are handed
/// out one at a time to whichever rank is free (dynamic load balancing: fits
/// take unequal time), each rank fits with its own execution space, and the
/// results are gathered into one CSV table on rank 0, one row per lens in
/// catalogue order.
///
///     lensing::mpi::Communicator world;
///     auto cat = lensing::mpi::read_lens_catalogue_npy("images.npy", "noise.npy");   // every rank
///     auto fit = [&](std::size_t i) -> std::vector<double> {   // throws: lens i failed
///       ... a GaussianLikelihood on cat.image(i), cat.noise_map(i); Posterior; find_map; ...
///       return {theta_E, sd_theta_E, log_p};
///     };
///     lensing::mpi::CatalogueFitOptions o;
///     o.work_dir = "fits";                  // per-lens results: the done-list of a restart
///     auto sum = lensing::mpi::fit_catalogue(world, cat.n, {"theta_E", "sd_theta_E", "log_p"}, fit,
///                                            "fits/table.csv", o);
///
/// **Work queue.**  An MPI one-sided counter in a window on rank 0
/// (MPI_Fetch_and_op, passive target): a rank that is free takes the next
/// lens index.  Rank 0 fits too (CatalogueFitOptions::rank0_works, default);
/// with shared memory or RDMA networks the counter needs no help from rank 0,
/// but over plain TCP an MPI library may progress it only when rank 0 enters
/// MPI, so a rank can wait up to one of rank 0's fits: set rank0_works =
/// false there (rank 0 then only serves the counter).  The order in which
/// lenses finish does not matter: each lens's result depends only on its
/// index (the fit function must be a function of i: seeds from i, one thread
/// count per rank), and the table is sorted by lens index, so it is the same
/// file for any number of ranks (tested: 2 ranks and 1 rank give identical
/// bytes).
///
/// **Failures.**  A lens whose fit function throws (NaN data refused by the
/// likelihood, no finite start, ...) is a row with status `failed` and the
/// message, and the run goes on.  A rank that dies (killed, out of memory)
/// usually ends the MPI job; the lenses finished before are on disk.
///
/// **Restart.**  Each finished lens (ok or failed) is one small file
/// `<work_dir>/lens_NNNNNNNN.csv` holding its table row, written atomically
/// (io/file.hpp) right after the fit: running the same command again fits
/// only the lenses without a file (and, with retry_failed, the failed ones),
/// on any number of ranks.  `<work_dir>/columns.csv` holds the header; a
/// restart with other columns is refused.  The work directory must be shared
/// by the ranks (as on a cluster's parallel file system).
///
/// **Table.**  `lens,status,<columns...>,message`: values with 17 significant
/// digits (exact round trip of doubles), a failed lens's values empty, the
/// message quoted (quotes in it become ', line breaks spaces).
///
/// **Consistency.**  At start-up every rank's configuration (n, columns,
/// paths, options and the caller's CatalogueFitOptions::configuration,
/// e.g. the catalogue file and model settings) is compared and a difference
/// named (mpi/comm.hpp check_same_configuration).
///
/// Communication per lens: one 8-byte fetch-and-add; at the end the rows
/// (~20 bytes per value) gathered to rank 0.  The catalogue reader loads the
/// whole stack on every rank (fine up to a few GB of cutouts; beyond that,
/// read lens i inside the fit function).

#if !defined(LENSING_HAS_MPI)
#error \
    "lensing/mpi/fit_catalogue.hpp needs the mpi component: find_package(lensing COMPONENTS mpi) and link lensing::mpi"
#endif

#include <lensing/core/errors.hpp>
#include <lensing/io/file.hpp>
#include <lensing/io/npy.hpp>
#include <lensing/mpi/comm.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <sys/stat.h>

namespace lensing {
namespace mpi {

/// Cutouts of n lenses (ny x nx pixels, row-major image(iy, ix)) and their
/// per-pixel noise sigma, on the host.
struct LensCatalogue {
  std::size_t n = 0, ny = 0, nx = 0;
  std::vector<double> images;  ///< (n, ny, nx)
  std::vector<double> noise;   ///< (n, ny, nx) sigma per pixel
  double const* image(std::size_t i) const { return images.data() + i * ny * nx; }
  double const* noise_map(std::size_t i) const { return noise.data() + i * ny * nx; }
};

/// Read a catalogue from .npy files: `images_path` (n, ny, nx) and
/// `noise_path` either (n,) (one sigma per lens) or (n, ny, nx) (a noise
/// map per lens); float32 or float64 (io/npy.hpp's reader and its
/// validation).  Throws std::runtime_error naming the file for other shapes.
/// Non-finite pixels are kept: the fit of that lens fails and is reported.
inline LensCatalogue read_lens_catalogue_npy(std::string const& images_path, std::string const& noise_path) {
  constexpr char const* where = "lensing::mpi::read_lens_catalogue_npy";
  auto const im = io::read_npy<double>(images_path);
  if (im.shape.size() != 3 || im.shape[0] == 0 || im.shape[1] == 0 || im.shape[2] == 0)
    throw std::runtime_error(std::string(where) + ": " + images_path + " must hold (n, ny, nx) cutouts, n >= 1");
  LensCatalogue c;
  c.n = im.shape[0];
  c.ny = im.shape[1];
  c.nx = im.shape[2];
  c.images = im.data;
  auto const no = io::read_npy<double>(noise_path);
  std::size_t const pix = c.ny * c.nx;
  if (no.shape.size() == 1 && no.shape[0] == c.n) {
    c.noise.resize(c.n * pix);
    for (std::size_t i = 0; i < c.n; ++i)
      std::fill(c.noise.begin() + std::ptrdiff_t(i * pix), c.noise.begin() + std::ptrdiff_t((i + 1) * pix), no.data[i]);
  } else if (no.shape == im.shape) {
    c.noise = no.data;
  } else {
    throw std::runtime_error(std::string(where) + ": " + noise_path + " must hold (n,) or (n, ny, nx) = (" +
                             std::to_string(c.n) + ", " + std::to_string(c.ny) + ", " + std::to_string(c.nx) +
                             ") noise values");
  }
  return c;
}

/// A shared counter on rank 0 of a communicator (MPI one-sided window,
/// passive target): next() atomically returns the current value and adds 1.
/// Construction and destruction are collective.
class SharedCounter {
 public:
  explicit SharedCounter(Communicator const& comm) : m_comm(comm) {
    constexpr char const* where = "lensing::mpi::SharedCounter";
    MPI_Aint const bytes = comm.rank() == 0 ? MPI_Aint(sizeof(std::int64_t)) : 0;
    check(MPI_Win_allocate(bytes, int(sizeof(std::int64_t)), MPI_INFO_NULL, comm.get(), &m_base, &m_win), where,
          "MPI_Win_allocate");
    if (comm.rank() == 0) {
      check(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, m_win), where, "MPI_Win_lock");
      *m_base = 0;
      check(MPI_Win_unlock(0, m_win), where, "MPI_Win_unlock");
    }
    comm.barrier();
  }
  SharedCounter(SharedCounter const&) = delete;
  SharedCounter& operator=(SharedCounter const&) = delete;
  ~SharedCounter() {
    if (m_win != MPI_WIN_NULL) MPI_Win_free(&m_win);
  }
  std::int64_t next() {
    constexpr char const* where = "lensing::mpi::SharedCounter::next";
    std::int64_t one = 1, old = -1;
    check(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, m_win), where, "MPI_Win_lock");
    check(MPI_Fetch_and_op(&one, &old, MPI_INT64_T, 0, 0, MPI_SUM, m_win), where, "MPI_Fetch_and_op");
    check(MPI_Win_unlock(0, m_win), where, "MPI_Win_unlock");
    return old;
  }

 private:
  Communicator m_comm;
  std::int64_t* m_base = nullptr;
  MPI_Win m_win = MPI_WIN_NULL;
};

/// Options of fit_catalogue.
struct CatalogueFitOptions {
  std::string work_dir;         ///< per-lens result files (required; created if missing; shared by the ranks)
  bool rank0_works = true;      ///< rank 0 fits lenses too (see the file comment for TCP networks)
  bool retry_failed = false;    ///< a restart fits the lenses recorded as failed again
  bool progress = false;        ///< one line per lens on stderr
  Configuration configuration;  ///< more settings that must agree across ranks (catalogue file, model, seeds)
};

/// What fit_catalogue did (totals over the ranks unless "this rank").
struct CatalogueFitSummary {
  std::size_t lenses = 0;             ///< in the catalogue
  std::size_t found = 0;              ///< finished before this run (restart)
  std::size_t fitted = 0;             ///< fitted by this run (ok or failed)
  std::size_t failed = 0;             ///< rows with status failed in the table (this run and before)
  std::vector<std::size_t> per_rank;  ///< lenses fitted by each rank in this run
  std::size_t rank_fitted = 0;        ///< this rank
  double rank_fit_seconds = 0;        ///< this rank: inside the fit function
  double seconds = 0;                 ///< wall time of the call (slowest rank)
  std::string table;                  ///< the table's path
};

namespace detail {
inline std::string lens_file(std::string const& dir, std::size_t i) {
  std::ostringstream o;
  o << dir << "/lens_" << std::setw(8) << std::setfill('0') << i << ".csv";
  return o.str();
}
inline std::string csv_message(std::string m) {
  for (char& c : m) {
    if (c == '"') c = '\'';
    if (c == '\n' || c == '\r') c = ' ';
  }
  return "\"" + m + "\"";
}
// One table row (with its line break) of lens i.
inline std::string catalogue_row(std::size_t i, std::vector<double> const* values, std::size_t columns,
                                 std::string const& message) {
  std::string row = std::to_string(i) + (values ? ",ok" : ",failed");
  char buf[40];
  for (std::size_t k = 0; k < columns; ++k) {
    row += ",";
    if (values) {
      std::snprintf(buf, sizeof buf, "%.17g", (*values)[k]);
      row += buf;
    }
  }
  return row + "," + (values ? std::string() : csv_message(message)) + "\n";
}
inline bool read_text(std::string const& path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream s;
  s << f.rdbuf();
  out = s.str();
  return true;
}
}  // namespace detail

/// Fit lenses [0, n) with `fit_one(i)` (returns columns.size() values, or
/// throws to report lens i failed) on all ranks of `comm` (collective), and
/// write the table `table_path` on rank 0 (atomically).  Every rank passes
/// the same n, columns, paths and options (checked).  Returns the summary on
/// every rank.  Errors other than a lens's own failure (unwritable work
/// directory, MPI errors, a work directory of another run) make every rank
/// throw the same std::runtime_error naming the ranks; finished lenses stay
/// on disk for the restart.
template <class FitOne>
CatalogueFitSummary fit_catalogue(Communicator const& comm, std::size_t n, std::vector<std::string> const& columns,
                                  FitOne const& fit_one, std::string const& table_path,
                                  CatalogueFitOptions const& options) {
  constexpr char const* where = "lensing::mpi::fit_catalogue";
  auto const t_start = std::chrono::steady_clock::now();
  check_argument(n >= 1, where, "the catalogue is empty (n = 0)");
  check_argument(!options.work_dir.empty(), where, "options.work_dir (the per-lens result directory) is empty");
  check_argument(!table_path.empty(), where, "the table path is empty");
  check_argument(!columns.empty(), where, "no result column");
  std::string header = "lens,status";
  for (auto const& c : columns) {
    check_argument(!c.empty() && c.find_first_of(",\"\n") == std::string::npos, where,
                   "column name '" + c + "' is empty or holds a comma, quote or line break");
    header += "," + c;
  }
  header += ",message\n";
  Configuration config = options.configuration;
  config.emplace_back("lenses", std::to_string(n));
  config.emplace_back("columns", header);
  config.emplace_back("table", table_path);
  config.emplace_back("work_dir", options.work_dir);
  config.emplace_back("rank0_works", std::to_string(int(options.rank0_works)));
  config.emplace_back("retry_failed", std::to_string(int(options.retry_failed)));
  check_same_configuration(comm, config, where);

  CatalogueFitSummary sum;
  sum.lenses = n;
  sum.table = table_path;
  std::string error;
  // The work directory and its header (a directory of another run is refused).
  if (comm.rank() == 0) {
    try {
      ::mkdir(options.work_dir.c_str(), 0777);
      std::string const hp = options.work_dir + "/columns.csv";
      std::string have;
      if (detail::read_text(hp, have)) {
        if (have != header)
          throw std::runtime_error(hp + " names other columns (" + have.substr(0, have.find('\n')) +
                                   "): the work directory holds another run; delete it or choose another");
      } else {
        io::write_file_atomically(hp, header.data(), header.size(), where);
      }
    } catch (std::exception const& e) {
      error = e.what();
    }
  }
  agree_on_errors(comm, error, where);

  // Which lenses are done: each rank checks every P-th file.
  std::vector<int> done(n, 0);  // 1 ok, 2 failed (kept), 0 to fit
  try {
    for (std::size_t i = std::size_t(comm.rank()); i < n; i += std::size_t(comm.size())) {
      std::string row;
      if (!detail::read_text(detail::lens_file(options.work_dir, i), row)) continue;
      std::string const prefix = std::to_string(i) + ",";
      bool const ok = row.rfind(prefix + "ok,", 0) == 0, failed = row.rfind(prefix + "failed,", 0) == 0;
      if (!(ok || failed) || row.empty() || row.back() != '\n')
        throw std::runtime_error(detail::lens_file(options.work_dir, i) + " is not a result row of lens " +
                                 std::to_string(i) + ": delete it to fit the lens again");
      if (ok) done[i] = 1;
      if (failed && !options.retry_failed) done[i] = 2;
    }
  } catch (std::exception const& e) {
    error = e.what();
  }
  agree_on_errors(comm, error, where);
  comm.allreduce(done, MPI_MAX);
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < n; ++i)
    if (done[i] == 0)
      todo.push_back(i);
    else
      ++sum.found;

  // The work queue.
  std::string rows;
  {
    SharedCounter counter(comm);
    bool const works = options.rank0_works || comm.rank() != 0 || comm.size() == 1;
    try {
      while (works) {
        std::int64_t const k = counter.next();
        if (k < 0 || std::size_t(k) >= todo.size()) break;
        std::size_t const i = todo[std::size_t(k)];
        std::string row;
        auto const t0 = std::chrono::steady_clock::now();
        try {
          std::vector<double> const v = fit_one(i);
          if (v.size() != columns.size())
            throw std::runtime_error("the fit function returned " + std::to_string(v.size()) + " values for " +
                                     std::to_string(columns.size()) + " columns");
          row = detail::catalogue_row(i, &v, columns.size(), "");
        } catch (std::exception const& e) {
          row = detail::catalogue_row(i, nullptr, columns.size(), e.what());
        } catch (...) {
          row = detail::catalogue_row(i, nullptr, columns.size(), "unknown exception");
        }
        double const dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        sum.rank_fit_seconds += dt;
        io::write_file_atomically(detail::lens_file(options.work_dir, i), row.data(), row.size(), where);
        rows += row;
        ++sum.rank_fitted;
        if (options.progress)
          std::fprintf(stderr, "[lensing] rank %d: lens %zu %s (%.2f s)\n", comm.rank(), i,
                       row.find(",failed,") != std::string::npos ? "FAILED" : "ok", dt);
      }
    } catch (std::exception const& e) {
      error = e.what();
    }
  }
  {
    auto const per = comm.allgather(std::uint64_t(sum.rank_fitted));
    sum.per_rank.assign(per.begin(), per.end());
    for (auto c : per)
      sum.fitted += std::size_t(c);
  }
  agree_on_errors(comm, error, where, " (the finished lenses are kept: run again to fit the others)");

  // The table, on rank 0: this run's rows gathered, the earlier ones read.
  auto const gathered = comm.gather(rows);
  std::uint64_t failed_rows = 0;
  if (comm.rank() == 0) {
    try {
      std::vector<std::string> table(n);
      for (auto const& chunk : gathered) {
        std::size_t p = 0;
        while (p < chunk.size()) {
          std::size_t const e = chunk.find('\n', p);
          std::string line = chunk.substr(p, e - p + 1);
          table[std::size_t(std::stoull(line))] = std::move(line);
          p = e + 1;
        }
      }
      std::string out = header;
      for (std::size_t i = 0; i < n; ++i) {
        if (table[i].empty() && !detail::read_text(detail::lens_file(options.work_dir, i), table[i]))
          throw std::runtime_error(detail::lens_file(options.work_dir, i) + " disappeared during the run");
        if (table[i].find(",failed,") != std::string::npos) ++failed_rows;
        out += table[i];
      }
      io::write_file_atomically(table_path, out.data(), out.size(), where);
    } catch (std::exception const& e) {
      error = e.what();
    }
  }
  agree_on_errors(comm, error, where);
  sum.failed = std::size_t(comm.broadcast_value(failed_rows));
  sum.seconds = comm.max(std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count());
  return sum;
}

}  // namespace mpi
}  // namespace lensing

#endif  // LENSING_MPI_FIT_CATALOGUE_HPP
