#ifndef LENSING_NN_WGAN_HPP
#define LENSING_NN_WGAN_HPP

/// \file
/// Wasserstein GAN with gradient penalty (WGAN-GP) on batched graphs: a
/// graph-network generator that paints node features (positions of a point
/// cloud, orientations of galaxies) given node and graph conditions and
/// noise, a graph-network critic, the gradient penalty with its double
/// backward derived by hand, and the alternating training loop.
///
/// Usage (H2's examples build on this):
/// \code
///   namespace nn = lensing::nn;
///   using Mem = Kokkos::HostSpace;
///   nn::WganConfig cfg;
///   cfg.node_features = 2;                       // what the generator paints, per node (x, y)
///   cfg.node_conditions = 0;                     // per-node catalogue features given to both networks
///   cfg.graph_conditions = 10;                   // per-graph conditions (e.g. one-hot digit), broadcast to nodes
///   cfg.node_noise = 2;  cfg.graph_noise = 8;    // generator noise per node and per graph
///   cfg.generator_conv = {64, 64};  cfg.critic_conv = {64, 64};  cfg.critic_dense = {64};
///   cfg.generator_graph = nn::WganGraph::knn_of_nodes;   // kNN of the node noise (point clouds)
///   cfg.critic_graph = nn::WganGraph::knn_of_nodes;      // kNN of the positions judged
///   cfg.knn = 8;  cfg.n_critic = 5;  cfg.gp_lambda = 10;
///   nn::Wgan<float, Mem> gan(cfg, nn::LeakyReluOp{0.2});
///   gan.initialize(1);
///   // A batch: the graphs (sizes; their adjacency is used when a graph is WganGraph::given),
///   // the real node features (N x node_features) and the conditions (N x node_conditions,
///   // G x graph_conditions; empty views when 0).
///   nn::WganBatch<float, Mem> b{nn::knn_graph_batch<float, Mem>(sizes, px, py, 8), real, {}, labels};
///   auto hist = gan.train(space, [&]() { return next_batch(); }, nn::WganTrainOptions{2000, 100, &std::cout});
///   // hist[s].wasserstein: the critic's estimate E[D(real)] − E[D(fake)] at generator step s
///   auto x = gan.generate(space, b, 123);        // (N x node_features) samples for b's conditions
///   gan.save("gen.weights", "critic.weights");  gan.load("gen.weights", "critic.weights");
/// \endcode
///
/// ## Losses (Arjovsky et al. 2017, arXiv:1701.07875; Gulrajani et al. 2017, arXiv:1704.00028)
/// Per batch of G graphs with real node features x_r and generated x_f = Gen(u, z; c):
///
///   L_D = (1/G) Σ_g D(x_f)_g − (1/G) Σ_g D(x_r)_g + λ (1/G) Σ_g (‖∇_{x̂_g} D(x̂)_g‖ − 1)²,
///   x̂ = ε_g x_r + (1 − ε_g) x_f,  ε_g ~ U(0, 1) per graph,
///   L_G = −(1/G) Σ_g D(x_f)_g,
///
/// with n_critic Adam steps on L_D per Adam step on L_G (defaults λ = 10,
/// n_critic = 5, β₁ = 0.5, β₂ = 0.9, η = 1e-4).  W = E[D(x_r)] − E[D(x_f)] is
/// the critic's estimate of the Wasserstein-1 distance, returned per step.
/// Real and generated node i of graph g are paired by index (the clouds of a
/// batch have the same sizes); any pairing is a valid set of lines for the
/// penalty, which only asks the critic to be 1-Lipschitz between them.  The
/// gradient is over the generated features only (x, not the conditions), the
/// norm over all nodes and features of one graph.
///
/// ## The graph of x̂ (and of x_r, x_f)
/// WganGraph::given: every input of the critic uses the batch's graph
/// (WganBatch::graph; the catalogue's kNN graph when the positions are
/// conditions and the generator paints other features; the adjacency is then
/// a constant).
/// WganGraph::knn_of_nodes: the critic's graph of each input (x_r, x_f and x̂)
/// is the kNN graph (WganConfig::knn, knn_graph_batch) of that input's first
/// two node features (positions), built on the host per pass: for x̂ from the
/// interpolated positions; only the sizes of the batch's graphs are used.
/// The graph is a piecewise-constant function of the positions, so within
/// each pass it is held fixed: D(x) = D(A(x), x) has gradient ∂D/∂x|_A almost
/// everywhere (where the kNN sets do not change), which is what is penalised
/// and what the generator receives.
///
/// ## The gradient penalty's double backward (GradientPenalty::evaluate)
/// With S(x, θ) = Σ_g D_g (graphs do not interact), g = ∇ₓ S (one backward
/// with dD_g = 1, no parameter gradient), per graph n_g = ‖g_g‖ over the
/// penalised features, and
///
///   GP = (λ/G) Σ_g (n_g − 1)²,   v = ∂GP/∂g = (2λ/G) (n_g − 1)/n_g g  (0 where n_g = 0;
///                                                                      0 on condition features),
///
/// the gradients of GP are (∂g/∂θ)ᵀ v and (∂g/∂x)ᵀ v.  Both are gradients of
/// the directional derivative J(x, θ) = ⟨∇ₓ S, v⟩ = Ṡ, the tangent of S for
/// the input tangent ẋ = v, with v held fixed (its own dependence on x and θ
/// is already in v = ∂GP/∂g by the chain rule).  So: one tangent pass
/// (GraphNet::forward_tangent with ẋ = v), then the reverse of the pair
/// (S, Ṡ) with dS = 0, dṠ_g = 1 (GraphNet::backward_tangent): its parameter
/// gradient is ∂GP/∂θ and its input adjoint ∂GP/∂x.  Per layer (graph_net.hpp):
///   linear (graph convolution, dense, pool), y = L_θ x + b, ẏ = L_θ ẋ:
///     dx = L_θᵀ dy, dẋ = L_θᵀ dẏ, dθ += ∂⟨dy, L_θ x⟩/∂θ + ∂⟨dẏ, L_θ ẋ⟩/∂θ, db += Σ dy;
///   activation y = s(x), ẏ = s'(x) ẋ:
///     dx = s'(x) dy + s''(x) ẋ dẏ,  dẋ = s'(x) dẏ.
/// For LeakyReLU s'' = 0 a.e. (the primal adjoint stays 0 and the parameter
/// gradient comes from the tangent stream alone); tanh, softplus, ELU and
/// sigmoid have closed-form s''.  Cost: one forward, one backward, one tangent
/// pass and one reverse of the pair (about two backwards): ~3.5 passes.
/// tests/nn/test_wgan.cpp checks GP's value against finite differences of D
/// and its parameter and input gradients against central differences of GP.
///
/// Weights: save/load write the two networks with nn::save_weights (format of
/// serialize.hpp); the Adam moments are not saved.

#include <lensing/core/errors.hpp>
#include <lensing/core/math.hpp>
#include <lensing/core/random.hpp>
#include <lensing/core/views.hpp>
#include <lensing/nn/graph_batch.hpp>
#include <lensing/nn/graph_net.hpp>
#include <lensing/nn/optimizer.hpp>
#include <lensing/nn/serialize.hpp>

#include <Kokkos_Core.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace lensing {
namespace nn {

//----------------------------------------------------------------------------
// Gradient penalty.

/// Outcome of one gradient-penalty evaluation.
struct GradientPenaltyResult {
  double penalty = 0;    ///< GP = (λ/G) Σ_g (‖∇ D_g‖ − 1)²
  double mean_norm = 0;  ///< (1/G) Σ_g ‖∇ D_g‖
};

namespace detail {
/// Per-graph gradient norms of g (N x f, first d columns) and the adjoint
/// v = coef (n_g − 1)/n_g g (first d columns; 0 elsewhere and where n_g = 0).
template <class ExecutionSpace, class Scalar, class MemorySpace>
void gp_adjoint(ExecutionSpace const& space, GraphBatch<Scalar, MemorySpace> const& b, Scalar const* g, long f, long d,
                double coef, double* norms, Scalar* v) {
  int const* off = b.offsets.data();
  int const* gof = b.graph_of.data();
  Kokkos::parallel_for(
      "lensing::nn::gradient_penalty::norms",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, b.num_graphs()), KOKKOS_LAMBDA(long k) {
        double s = 0;
        for (long i = off[k]; i < off[k + 1]; ++i)
          for (long c = 0; c < d; ++c)
            s += double(g[i * f + c]) * double(g[i * f + c]);
        norms[k] = lensing::math::sqrt(s);
      });
  Kokkos::parallel_for(
      "lensing::nn::gradient_penalty::adjoint",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(b.num_nodes()) * f),
      KOKKOS_LAMBDA(long r) {
        long const i = r / f, c = r % f;
        double const n = norms[gof[i]];
        v[r] = c < d && n > 0 ? Scalar(coef * (n - 1) / n * double(g[r])) : Scalar(0);
      });
}
}  // namespace detail

/// The gradient penalty of a graph critic (Gulrajani et al. 2017):
///
///   GP(x̂) = (λ/G) Σ_g (‖∇_{x̂_g} D(x̂)_g‖ − 1)²,
///
/// the gradient over the first `penalised_features` columns of the critic's
/// node input x̂ (the generated features; the conditions after them are not
/// penalised) and over all nodes of graph g.  evaluate() returns GP and adds
/// (ParamGrad) its parameter gradient to the critic's gradients(), and writes
/// ∂GP/∂x̂ when asked, by the double backward of the file comment.  Holds the
/// workspaces (allocated for the largest batch seen).
template <class Scalar, class MemorySpace>
class GradientPenalty {
 public:
  using matrix_type = View2D<Scalar, MemorySpace>;

  explicit GradientPenalty(int penalised_features, double lambda = 10.0) : d_(penalised_features), lambda_(lambda) {
    check_count(penalised_features, 1, "lensing::nn::GradientPenalty", "penalised_features");
    check_nonnegative(lambda, "lensing::nn::GradientPenalty", "lambda");
  }
  double lambda() const { return lambda_; }
  int penalised_features() const { return d_; }

  /// GP at x̂ (N x critic.in_features()) for the critic's graph `b`; the
  /// parameter gradient into critic.gradients() as `mode` says, ∂GP/∂x̂ into
  /// dxhat when not empty.  The critic must have one output per graph.
  template <class ExecutionSpace, class Act>
  GradientPenaltyResult evaluate(ExecutionSpace const& space, GraphNet<Scalar, MemorySpace, Act>& critic,
                                 GraphBatch<Scalar, MemorySpace> const& b, matrix_type const& xhat, ParamGrad mode,
                                 matrix_type const& dxhat = matrix_type()) {
    char const* where = "lensing::nn::GradientPenalty::evaluate";
    check_argument(critic.spec().pool && critic.out_features() == 1, where,
                   "the critic must pool over each graph and have one output");
    check_argument(d_ <= critic.in_features(), where,
                   "penalised_features (" + std::to_string(d_) + ") exceeds the critic's input features (" +
                       std::to_string(critic.in_features()) + ")");
    long const n = b.num_nodes(), G = b.num_graphs(), f = critic.in_features();
    if (long(g_.extent(0)) != n || long(g_.extent(1)) != f) {
      g_ = matrix_type("lensing::nn::GradientPenalty::g", n, f);
      v_ = matrix_type("lensing::nn::GradientPenalty::v", n, f);
    }
    if (long(ones_.extent(0)) != G) {
      ones_ = matrix_type("lensing::nn::GradientPenalty::ones", G, 1);
      norms_ = View1D<double, MemorySpace>("lensing::nn::GradientPenalty::norms", G);
      Kokkos::deep_copy(ones_, Scalar(1));
    }
    critic.forward(space, b, xhat);
    critic.backward(space, b, xhat, ones_, g_, ParamGrad::none);  // g = ∇ₓ Σ_g D_g
    double const coef = 2 * lambda_ / double(G);
    detail::gp_adjoint(space, b, static_cast<Scalar const*>(g_.data()), f, long(d_), coef, norms_.data(), v_.data());
    critic.forward_tangent(space, b, v_);  // Ṡ = ⟨∇ₓ S, v⟩
    critic.backward_tangent(space, b, xhat, v_, matrix_type(), ones_, dxhat, matrix_type(), mode);
    space.fence();
    auto const hn = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), norms_);
    GradientPenaltyResult r;
    for (long k = 0; k < G; ++k) {
      r.penalty += (hn(k) - 1) * (hn(k) - 1);
      r.mean_norm += hn(k);
    }
    r.penalty *= lambda_ / double(G);
    r.mean_norm /= double(G);
    return r;
  }

  /// ∇ₓ Σ_g D_g of the last evaluate (N x in_features).
  matrix_type input_gradient() const { return g_; }

 private:
  int d_;
  double lambda_;
  matrix_type g_, v_, ones_;
  View1D<double, MemorySpace> norms_;
};

//----------------------------------------------------------------------------
// Configuration, batches, records.

/// Where the graph a network runs on comes from (see the file comment).
enum class WganGraph {
  given,        ///< the batch's graph (WganBatch::graph)
  knn_of_nodes  ///< kNN graph (WganConfig::knn) of the first two columns of the network's node input
};

/// Sizes, architecture and training constants of a Wgan.
///
/// Generator input per node: [node noise u (node_noise) | node conditions
/// (node_conditions) | graph noise z (graph_noise, broadcast) | graph
/// conditions (graph_conditions, broadcast)], output node_features per node.
/// Critic input per node: [node features x | node conditions | graph
/// conditions (broadcast)], output one number per graph.  The noise is
/// standard normal.  knn_of_nodes needs node_noise >= 2 (generator) or
/// node_features >= 2 (critic).
struct WganConfig {
  int node_features = 2;
  int node_conditions = 0;
  int graph_conditions = 0;
  int node_noise = 2;
  int graph_noise = 0;
  std::vector<int> generator_conv{32, 32};
  std::vector<int> generator_dense{};
  std::vector<int> critic_conv{32, 32};
  std::vector<int> critic_dense{32};
  WganGraph generator_graph = WganGraph::given;
  WganGraph critic_graph = WganGraph::given;
  int knn = 8;
  double gp_lambda = 10;
  int n_critic = 5;
  double lr_generator = 1e-4, lr_critic = 1e-4;
  double beta1 = 0.5, beta2 = 0.9;
  std::uint64_t seed = 1;  ///< noise streams of training (generate() takes its own seed)
};

/// One batch: the graphs, the real node features (N x node_features) and the
/// conditions (N x node_conditions and G x graph_conditions; empty views
/// when the config has none).  `real` may be empty for generate().
template <class Scalar, class MemorySpace>
struct WganBatch {
  GraphBatch<Scalar, MemorySpace> graph;
  View2D<Scalar, MemorySpace> real;
  View2D<Scalar, MemorySpace> node_conditions;
  View2D<Scalar, MemorySpace> graph_conditions;
};

/// Outcome of one critic step.
struct WganCriticStep {
  double wasserstein = 0;       ///< (1/G) Σ D(x_r) − (1/G) Σ D(x_f): the critic's W₁ estimate
  double gradient_penalty = 0;  ///< GP at x̂
  double grad_norm = 0;         ///< mean ‖∇ D‖ at x̂
  double loss = 0;              ///< L_D = −W + GP
};

/// One generator step of train(): the means over its n_critic critic steps and the generator loss.
struct WganRecord {
  long step = 0;
  double wasserstein = 0, gradient_penalty = 0, grad_norm = 0, generator_loss = 0;
};

/// Options of Wgan::train.
struct WganTrainOptions {
  long steps = 1000;            ///< generator steps (each after n_critic critic steps)
  long log_every = 100;         ///< a progress line every so many steps (0: none)
  std::ostream* log = nullptr;  ///< where progress lines go (nullptr: nowhere)
  long checkpoint_every = 0;    ///< save both networks every so many steps (0: never)
  std::string generator_path;   ///< checkpoint files (save())
  std::string critic_path;
};

//----------------------------------------------------------------------------
// Wgan.

namespace detail {
/// dst[i, c0 + c] = src[i or graph(i), c] for c < w (src N x w, or G x w when per_graph).
template <class ExecutionSpace, class Scalar, class MemorySpace>
void put_columns(ExecutionSpace const& space, GraphBatch<Scalar, MemorySpace> const& b, Scalar* dst, long ld, long c0,
                 Scalar const* src, long w, bool per_graph) {
  if (w == 0) return;
  int const* gof = b.graph_of.data();
  Kokkos::parallel_for(
      "lensing::nn::Wgan::put_columns",
      Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, long(b.num_nodes()) * w),
      KOKKOS_LAMBDA(long r) {
        long const i = r / w, c = r % w, row = per_graph ? long(gof[i]) : i;
        dst[i * ld + c0 + c] = src[row * w + c];
      });
}
/// v[i] = standard normal (uniform in (0, 1) when uniform) of stream (seed, purpose_latent_noise, a, i).
template <class ExecutionSpace, class Scalar>
void fill_noise(ExecutionSpace const& space, Scalar* v, long n, std::uint64_t seed, std::uint64_t a, bool uniform) {
  Kokkos::parallel_for(
      "lensing::nn::Wgan::noise", Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n),
      KOKKOS_LAMBDA(long i) {
        random::Stream s(random::stream_key(seed, random::purpose_latent_noise, a, std::uint64_t(i)));
        v[i] = uniform ? s.template uniform<Scalar>() : s.template normal<Scalar>();
      });
}
}  // namespace detail

/// Conditional WGAN-GP on batched graphs (see the file comment for the
/// losses, the graphs and the double backward): a generator and a critic
/// (GraphNet, activation Act after every hidden layer; LeakyReluOp{0.2} is
/// the usual choice), their Adam optimizers, the gradient penalty.
/// critic_step and generator_step are one optimisation step each; train()
/// alternates them (n_critic : 1) over batches from a source.
template <class Scalar, class MemorySpace, class Act = LeakyReluOp>
class Wgan {
 public:
  using scalar_type = Scalar;
  using memory_space = MemorySpace;
  using net_type = GraphNet<Scalar, MemorySpace, Act>;
  using matrix_type = View2D<Scalar, MemorySpace>;
  using batch_type = WganBatch<Scalar, MemorySpace>;
  using graph_type = GraphBatch<Scalar, MemorySpace>;
  using optimizer_type = Adam<Scalar, MemorySpace>;

  /// Throws std::invalid_argument for an inconsistent configuration.
  explicit Wgan(WganConfig const& cfg, Act act = Act{})
      : cfg_(checked(cfg)),
        gen_(generator_spec(cfg_), act),
        critic_(critic_spec(cfg_), act),
        gen_opt_(gen_.num_params(), cfg_.lr_generator, cfg_.beta1, cfg_.beta2),
        critic_opt_(critic_.num_params(), cfg_.lr_critic, cfg_.beta1, cfg_.beta2),
        gp_(cfg_.node_features, cfg_.gp_lambda) {}

  WganConfig const& config() const { return cfg_; }
  net_type& generator() { return gen_; }
  net_type& critic() { return critic_; }
  net_type const& generator() const { return gen_; }
  net_type const& critic() const { return critic_; }
  optimizer_type& generator_optimizer() { return gen_opt_; }
  optimizer_type& critic_optimizer() { return critic_opt_; }
  GradientPenalty<Scalar, MemorySpace>& gradient_penalty() { return gp_; }
  /// Generator steps taken (the noise streams advance with every pass).
  long steps() const { return steps_; }

  /// Initialise both networks (generator child_seed(seed, 0), critic child_seed(seed, 1)).
  void initialize(std::uint64_t seed) {
    gen_.initialize(child_seed(seed, 0));
    critic_.initialize(child_seed(seed, 1));
  }

  /// Generated node features (N x node_features) for the graphs and
  /// conditions of `b` with noise streams of `seed`; valid until the next pass.
  template <class ExecutionSpace>
  matrix_type generate(ExecutionSpace const& space, batch_type const& b, std::uint64_t seed) {
    check_batch(b, false, "lensing::nn::Wgan::generate");
    prepare(b);
    return run_generator(space, b, seed, 0);
  }

  /// One Adam step of the critic on L_D for batch b (real features and
  /// conditions); the fake features come from the generator with fresh noise.
  template <class ExecutionSpace>
  WganCriticStep critic_step(ExecutionSpace const& space, batch_type const& b) {
    check_batch(b, true, "lensing::nn::Wgan::critic_step");
    prepare(b);
    long const n = b.graph.num_nodes(), G = b.graph.num_graphs(), dx = cfg_.node_features, fc = critic_.in_features();
    std::uint64_t const draw = draws_++;
    auto const xf = run_generator(space, b, cfg_.seed, draw);
    put_conditions(space, b, hreal_);
    put_conditions(space, b, hfake_);
    put_conditions(space, b, hhat_);
    detail::put_columns(space, b.graph, hreal_.data(), fc, 0, static_cast<Scalar const*>(b.real.data()), dx, false);
    detail::put_columns(space, b.graph, hfake_.data(), fc, 0, static_cast<Scalar const*>(xf.data()), dx, false);
    // x̂ = ε_g x_r + (1 − ε_g) x_f.
    detail::fill_noise(space, eps_.data(), G, cfg_.seed, 3 * draw + 2, true);
    {
      Scalar const* e = eps_.data();
      Scalar const* xr = b.real.data();
      Scalar const* xfp = xf.data();
      Scalar* h = hhat_.data();
      int const* gof = b.graph.graph_of.data();
      Kokkos::parallel_for(
          "lensing::nn::Wgan::interpolate",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * dx), KOKKOS_LAMBDA(long r) {
            long const i = r / dx, c = r % dx;
            Scalar const t = e[gof[i]];
            h[i * fc + c] = t * xr[r] + (Scalar(1) - t) * xfp[r];
          });
    }
    graph_type const& gr = critic_graph(space, b, hreal_, creal_);
    graph_type const& gf = critic_graph(space, b, hfake_, cfake_);
    graph_type const& gh = critic_graph(space, b, hhat_, chat_);
    WganCriticStep r;
    auto const dr = critic_.forward(space, gr, hreal_);
    double const mr = mean_of(space, dr);
    Kokkos::deep_copy(space, seeds_, Scalar(-1.0 / double(G)));
    critic_.backward(space, gr, hreal_, seeds_, matrix_type(), ParamGrad::overwrite);
    auto const df = critic_.forward(space, gf, hfake_);
    double const mf = mean_of(space, df);
    Kokkos::deep_copy(space, seeds_, Scalar(1.0 / double(G)));
    critic_.backward(space, gf, hfake_, seeds_, matrix_type(), ParamGrad::accumulate);
    auto const gp = gp_.evaluate(space, critic_, gh, hhat_, ParamGrad::accumulate);
    critic_opt_.step(space, critic_.parameters(), critic_.gradients());
    space.fence();
    r.wasserstein = mr - mf;
    r.gradient_penalty = gp.penalty;
    r.grad_norm = gp.mean_norm;
    r.loss = -r.wasserstein + gp.penalty;
    return r;
  }

  /// One Adam step of the generator on L_G = −(1/G) Σ D(x_f) for the
  /// conditions of b (b.real is not used); returns L_G.
  template <class ExecutionSpace>
  double generator_step(ExecutionSpace const& space, batch_type const& b) {
    check_batch(b, false, "lensing::nn::Wgan::generator_step");
    prepare(b);
    long const n = b.graph.num_nodes(), G = b.graph.num_graphs(), dx = cfg_.node_features, fc = critic_.in_features();
    std::uint64_t const draw = draws_++;
    auto const xf = run_generator(space, b, cfg_.seed, draw);
    put_conditions(space, b, hfake_);
    detail::put_columns(space, b.graph, hfake_.data(), fc, 0, static_cast<Scalar const*>(xf.data()), dx, false);
    graph_type const& gf = critic_graph(space, b, hfake_, cfake_);
    auto const df = critic_.forward(space, gf, hfake_);
    double const loss = -mean_of(space, df);
    Kokkos::deep_copy(space, seeds_, Scalar(-1.0 / double(G)));
    critic_.backward(space, gf, hfake_, seeds_, dh_, ParamGrad::none);
    {
      Scalar const* d = dh_.data();
      Scalar* o = dxf_.data();
      Kokkos::parallel_for(
          "lensing::nn::Wgan::take_columns",
          Kokkos::RangePolicy<ExecutionSpace, Kokkos::IndexType<long>>(space, 0, n * dx),
          KOKKOS_LAMBDA(long r) { o[r] = d[(r / dx) * fc + r % dx]; });
    }
    gen_.backward(space, *gen_graph_, hgen_, dxf_, matrix_type(), ParamGrad::overwrite);
    gen_opt_.step(space, gen_.parameters(), gen_.gradients());
    space.fence();
    ++steps_;
    return loss;
  }

  /// Alternate n_critic critic steps and one generator step, opt.steps
  /// times; `next_batch()` gives a WganBatch for every step (n_critic + 1
  /// per generator step).  Progress lines ("wgan step s/S: W ... GP ...
  /// |grad| ... L_G ... (t ms/step)") go to opt.log; checkpoints as opt
  /// says.  Returns one record per generator step.
  template <class ExecutionSpace, class Source>
  std::vector<WganRecord> train(ExecutionSpace const& space, Source&& next_batch, WganTrainOptions const& opt) {
    char const* where = "lensing::nn::Wgan::train";
    check_count(opt.steps, 0, where, "steps");
    check_count(opt.log_every, 0, where, "log_every");
    check_count(opt.checkpoint_every, 0, where, "checkpoint_every");
    check_argument(opt.checkpoint_every == 0 || (!opt.generator_path.empty() && !opt.critic_path.empty()), where,
                   "checkpoint_every needs generator_path and critic_path");
    std::vector<WganRecord> hist;
    hist.reserve(std::size_t(opt.steps));
    auto t0 = std::chrono::steady_clock::now();
    long since = 0;
    for (long s = 1; s <= opt.steps; ++s) {
      WganRecord rec;
      rec.step = steps_ + 1;
      for (int c = 0; c < cfg_.n_critic; ++c) {
        auto const r = critic_step(space, next_batch());
        rec.wasserstein += r.wasserstein / cfg_.n_critic;
        rec.gradient_penalty += r.gradient_penalty / cfg_.n_critic;
        rec.grad_norm += r.grad_norm / cfg_.n_critic;
      }
      rec.generator_loss = generator_step(space, next_batch());
      hist.push_back(rec);
      ++since;
      if (opt.log != nullptr && opt.log_every > 0 && (s % opt.log_every == 0 || s == 1 || s == opt.steps)) {
        auto const t1 = std::chrono::steady_clock::now();
        double const ms = std::chrono::duration<double, std::milli>(t1 - t0).count() / double(since);
        char line[256];
        std::snprintf(line, sizeof line, "wgan step %ld/%ld: W %.5g  GP %.4g  |grad| %.4g  L_G %.5g  (%.2f ms/step)\n",
                      rec.step, steps_ - s + opt.steps, rec.wasserstein, rec.gradient_penalty, rec.grad_norm,
                      rec.generator_loss, ms);
        *opt.log << line << std::flush;
        t0 = t1;
        since = 0;
      }
      if (opt.checkpoint_every > 0 && s % opt.checkpoint_every == 0) save(opt.generator_path, opt.critic_path);
    }
    return hist;
  }

  /// Write both networks' weights (nn::save_weights; atomic replace).
  void save(std::string const& generator_path, std::string const& critic_path) const {
    save_weights(gen_, generator_path);
    save_weights(critic_, critic_path);
  }
  /// Read weights written by save() for the same configuration.
  void load(std::string const& generator_path, std::string const& critic_path) {
    load_weights(gen_, generator_path);
    load_weights(critic_, critic_path);
  }

  static GraphNetSpec generator_spec(WganConfig const& c) {
    GraphNetSpec s;
    s.in_features = c.node_noise + c.node_conditions + c.graph_noise + c.graph_conditions;
    s.conv_widths = c.generator_conv;
    s.pool = false;
    s.dense_widths = c.generator_dense;
    s.out_features = c.node_features;
    return s;
  }
  static GraphNetSpec critic_spec(WganConfig const& c) {
    GraphNetSpec s;
    s.in_features = c.node_features + c.node_conditions + c.graph_conditions;
    s.conv_widths = c.critic_conv;
    s.pool = true;
    s.dense_widths = c.critic_dense;
    s.out_features = 1;
    return s;
  }

 private:
  static WganConfig const& checked(WganConfig const& c) {
    char const* where = "lensing::nn::Wgan";
    check_count(c.node_features, 1, where, "node_features");
    check_count(c.node_conditions, 0, where, "node_conditions");
    check_count(c.graph_conditions, 0, where, "graph_conditions");
    check_count(c.node_noise, 0, where, "node_noise");
    check_count(c.graph_noise, 0, where, "graph_noise");
    check_argument(c.node_noise + c.node_conditions + c.graph_noise + c.graph_conditions >= 1, where,
                   "the generator needs an input: node_noise + node_conditions + graph_noise + graph_conditions >= 1");
    check_count(c.n_critic, 1, where, "n_critic");
    check_count(c.knn, 1, where, "knn");
    check_nonnegative(c.gp_lambda, where, "gp_lambda");
    check_argument(c.generator_graph == WganGraph::given || c.node_noise >= 2, where,
                   "generator_graph = knn_of_nodes needs node_noise >= 2 (the first two noise values are positions)");
    check_argument(c.critic_graph == WganGraph::given || c.node_features >= 2, where,
                   "critic_graph = knn_of_nodes needs node_features >= 2 (the first two are positions)");
    return c;
  }

  void check_batch(batch_type const& b, bool need_real, char const* where) const {
    long const n = b.graph.num_nodes(), G = b.graph.num_graphs();
    check_argument(G >= 1, where, "the batch has no graph");
    if (need_real) detail::check_matrix(b.real, n, cfg_.node_features, where, "real");
    if (cfg_.node_conditions > 0)
      detail::check_matrix(b.node_conditions, n, cfg_.node_conditions, where, "node_conditions");
    if (cfg_.graph_conditions > 0)
      detail::check_matrix(b.graph_conditions, G, cfg_.graph_conditions, where, "graph_conditions");
  }

  /// Workspaces for b's sizes.
  void prepare(batch_type const& b) {
    long const n = b.graph.num_nodes(), G = b.graph.num_graphs();
    if (n == n_ && G == G_) return;
    n_ = n;
    G_ = G;
    long const fg = gen_.in_features(), fc = critic_.in_features();
    hgen_ = matrix_type("lensing::nn::Wgan::hgen", n, fg);
    u_ = matrix_type("lensing::nn::Wgan::u", n, std::max(cfg_.node_noise, 1));
    z_ = matrix_type("lensing::nn::Wgan::z", G, std::max(cfg_.graph_noise, 1));
    eps_ = View1D<Scalar, MemorySpace>("lensing::nn::Wgan::eps", G);
    hreal_ = matrix_type("lensing::nn::Wgan::hreal", n, fc);
    hfake_ = matrix_type("lensing::nn::Wgan::hfake", n, fc);
    hhat_ = matrix_type("lensing::nn::Wgan::hhat", n, fc);
    dh_ = matrix_type("lensing::nn::Wgan::dh", n, fc);
    dxf_ = matrix_type("lensing::nn::Wgan::dxf", n, cfg_.node_features);
    seeds_ = matrix_type("lensing::nn::Wgan::seeds", G, 1);
  }

  /// Node features and graph conditions in columns [node_features, ...) of a critic input.
  template <class ExecutionSpace>
  void put_conditions(ExecutionSpace const& space, batch_type const& b, matrix_type const& h) const {
    long const fc = critic_.in_features(), c0 = cfg_.node_features;
    detail::put_columns(space, b.graph, h.data(), fc, c0, static_cast<Scalar const*>(b.node_conditions.data()),
                        cfg_.node_conditions, false);
    detail::put_columns(space, b.graph, h.data(), fc, c0 + cfg_.node_conditions,
                        static_cast<Scalar const*>(b.graph_conditions.data()), cfg_.graph_conditions, true);
  }

  /// Generator input for noise draw `draw` of `seed` (streams a = 3 draw for
  /// u, 3 draw + 1 for z; 3 draw + 2 is the interpolation's ε), the
  /// generator's graph, its forward.
  template <class ExecutionSpace>
  matrix_type run_generator(ExecutionSpace const& space, batch_type const& b, std::uint64_t seed, std::uint64_t draw) {
    long const n = b.graph.num_nodes(), G = b.graph.num_graphs(), fg = gen_.in_features();
    long const du = cfg_.node_noise, dc = cfg_.node_conditions, dz = cfg_.graph_noise, dgc = cfg_.graph_conditions;
    detail::fill_noise(space, u_.data(), n * du, seed, 3 * draw, false);
    detail::fill_noise(space, z_.data(), G * dz, seed, 3 * draw + 1, false);
    detail::put_columns(space, b.graph, hgen_.data(), fg, 0, static_cast<Scalar const*>(u_.data()), du, false);
    detail::put_columns(space, b.graph, hgen_.data(), fg, du, static_cast<Scalar const*>(b.node_conditions.data()), dc,
                        false);
    detail::put_columns(space, b.graph, hgen_.data(), fg, du + dc, static_cast<Scalar const*>(z_.data()), dz, true);
    detail::put_columns(space, b.graph, hgen_.data(), fg, du + dc + dz,
                        static_cast<Scalar const*>(b.graph_conditions.data()), dgc, true);
    if (cfg_.generator_graph == WganGraph::given) {
      gen_graph_ = &b.graph;
    } else {
      gknn_ = knn_of(space, b.graph, hgen_);
      gen_graph_ = &gknn_;
    }
    return gen_.forward(space, *gen_graph_, hgen_);
  }

  /// The critic's graph for input h: the batch's, or the kNN graph of h's first two columns (stored in `store`).
  template <class ExecutionSpace>
  graph_type const& critic_graph(ExecutionSpace const& space, batch_type const& b, matrix_type const& h,
                                 graph_type& store) const {
    if (cfg_.critic_graph == WganGraph::given) return b.graph;
    store = knn_of(space, b.graph, h);
    return store;
  }

  template <class ExecutionSpace>
  graph_type knn_of(ExecutionSpace const& space, graph_type const& g, matrix_type const& h) const {
    space.fence();
    auto const hh = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), h);
    long const n = g.num_nodes();
    std::vector<double> px(n), py(n);
    for (long i = 0; i < n; ++i) {
      px[i] = double(hh(i, 0));
      py[i] = double(hh(i, 1));
    }
    std::vector<int> sizes(g.num_graphs());
    for (int k = 0; k < g.num_graphs(); ++k)
      sizes[k] = g.graph_size(k);
    return knn_graph_batch<Scalar, MemorySpace>(sizes, px, py, cfg_.knn);
  }

  template <class ExecutionSpace>
  static double mean_of(ExecutionSpace const& space, matrix_type const& d) {
    space.fence();
    auto const h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), d);
    double s = 0;
    for (std::size_t i = 0; i < h.extent(0); ++i)
      s += double(h(i, 0));
    return s / double(h.extent(0));
  }

  WganConfig cfg_;
  net_type gen_, critic_;
  optimizer_type gen_opt_, critic_opt_;
  GradientPenalty<Scalar, MemorySpace> gp_;
  long n_ = -1, G_ = -1, steps_ = 0;
  std::uint64_t draws_ = 0;
  matrix_type hgen_, u_, z_, hreal_, hfake_, hhat_, dh_, dxf_, seeds_;
  View1D<Scalar, MemorySpace> eps_;
  graph_type gknn_, creal_, cfake_, chat_;
  graph_type const* gen_graph_ = nullptr;
};

}  // namespace nn
}  // namespace lensing

#endif  // LENSING_NN_WGAN_HPP
