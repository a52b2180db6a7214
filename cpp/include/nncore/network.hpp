// A multilayer perceptron over one contiguous parameter slab and one gradient slab.
//
//   layer t = 0..L-1:  pre_t (B, D_{t+1}) = act_{t-1} · W_t + b_t
//                      z_t = BN_t(pre_t) = γ_t ⊙ xhat_t + β_t   (hidden layers, with batch_norm)
//                      act_t = g_t(z_t)                        (z_t = pre_t without batch norm)
//                      out_t = act_t ⊙ mask_t                  (hidden layers with dropout p_t > 0,
//                                                               training steps only; else act_t)
//   act_{-1} = X (B, d); g_t is the hidden activation for t < L-1 and identity for the output
//   layer, whose act_{L-1} (B, K) are the raw scores the loss reads. Layer t+1 reads out_t.
// Dropout comes last, after batch norm and the activation: batch norm's statistics (and its
// running averages) are then those of undropped units, the same in training and evaluation;
// masking before the batch statistics would make them shift between the two modes.
//
// Parameters (and gradients, same layout), per layer: W_t (D_t, D_{t+1}), b_t (1, D_{t+1}), then
// γ_t, β_t (1, D_{t+1}) on batch-normalised layers. Batch-norm running statistics (not trained)
// live in their own buffer: running_mean_t, running_var_t per normalised layer.
// Workspace (one per pass: the network's own for training, a fresh one for every evaluation),
// sized for `capacity` rows: per layer pre_t, act_t, and for batch norm z_t; act_t aliases the
// activation's input when g_t is identity. A training workspace also holds what backward needs:
// delta_t (∂L/∂out_t, turned into ∂L/∂pre_t in place), batch norm's xhat_t and per-feature
// statistics, and on layers with dropout mask_t and out_t (they exist only while the layer's rate
// is > 0). The network's own is only ever grown by reserve(): a training step allocates nothing.
//
// Threads: evaluation (predict_scores, weighted_loss_sum) reads the network and writes only its
// own workspace, so any number of threads may evaluate one network at once; everything else
// (training, setters) needs the network to itself — the bindings take that lock.
#pragma once

#include <array>
#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "activation.hpp"
#include "batchnorm.hpp"
#include "dense.hpp"
#include "dropout.hpp"
#include "loss.hpp"
#include "sparse.hpp"
#include "tensor.hpp"

namespace nncore {

enum class ParamKind { weight, bias, bn_gamma, bn_beta };

// The buffers of one forward (and backward) pass; offsets into `data` per layer.
template <class T>
struct Workspace {
  struct Layer {
    Index pre = 0, xhat = 0, z = 0, g_input = 0, act = 0, delta = 0;   // (rows × width)
    Index mean = 0, var = 0, inv_std = 0, scratch1 = 0, scratch2 = 0;  // (width)
    Index mask = -1, out = -1;  // (rows × width), layers with dropout only
    std::unique_ptr<DenseBuffers<T>> gemm;  // GEMM packing buffers for `capacity` rows
  };
  std::vector<Layer> layers;
  Vector<T> data;
  Index capacity = 0;
  int threads = 1;        // threads the products are split over (the packing buffers' slots)
  bool training = false;  // holds what backward needs
  bool last_dropout = false;  // the last forward pass applied dropout masks
  // Built for sparse input only: no first-layer packing space, no dense minibatch of X (for
  // 200,000 columns these would be hundreds of MB that sparse rows never use).
  bool sparse_only = false;
  std::vector<uint8_t> touched;  // training only: a flag per input column (sparse_backward)
  Index batch_x = 0, batch_y = 0, batch_w = 0;  // training only: the gathered minibatch
};

// What Network::predict() gives for each row.
enum class Prediction {
  scores,    // the raw outputs f (K values)
  response,  // the loss's inverse link of f (K values; see response() in loss.hpp)
  proba,     // a classifier's probabilities: the response, or 1 − p, p for one logistic output
  label,     // a class index: 1[p > ½] for one logistic output, the first largest softmax p
};

template <class T>
class Network {
 public:
  Network(std::vector<Index> layer_sizes, Activation hidden, Loss loss, T alpha,
          bool batch_norm = false)
      : sizes_(std::move(layer_sizes)), hidden_(hidden), loss_(loss), batch_norm_(batch_norm) {
    require(sizes_.size() >= 2, [&] {
      return std::string("layer_sizes needs at least 2 entries (inputs and outputs), got " +
                         std::to_string(sizes_.size()));
    });
    for (Index s : sizes_)
      require(s >= 1, [&] {
        return std::string("every layer size must be >= 1, got " + std::to_string(s));
      });
    require(loss != Loss::softmax || sizes_.back() >= 2,
            "the softmax loss needs at least 2 outputs");
    set_alpha(alpha);
    layers_.resize(static_cast<size_t>(n_layers()));
    Index bn_offset = 0;
    for (const ParamEntry& e : param_entries(sizes_, batch_norm_)) {
      LayerSlots& s = layers_[static_cast<size_t>(e.layer)];
      const Index at = add_param(e.kind, e.layer, e.rows, e.cols);
      switch (e.kind) {
        case ParamKind::weight: s.weight = at; break;
        case ParamKind::bias: s.bias = at; break;
        case ParamKind::bn_gamma:
          s.gamma = at;
          s.running_mean = {bn_offset, 1, e.cols};
          s.running_var = {bn_offset + e.cols, 1, e.cols};
          bn_offset += 2 * e.cols;
          break;
        case ParamKind::bn_beta: s.beta = at; break;
      }
    }
    params_ = Vector<T>::Zero(layout_.total());
    grads_ = Vector<T>::Zero(layout_.total());
    backup_ = Vector<T>::Zero(layout_.total());
    bn_state_ = Vector<T>::Zero(bn_offset);
    for (Index t = 0; t < n_layers(); ++t) {
      if (!has_batch_norm(t)) continue;
      map_row<T>(params_.data(), layout_[slots(t).gamma]).setOnes();
      map_row<T>(bn_state_.data(), slots(t).running_var).setOnes();
    }
    input_grad_counts_.assign(static_cast<size_t>(n_layers()), 0);
    dropout_.assign(static_cast<size_t>(n_layers() - 1), 0.0);
  }

  // ---- structure -------------------------------------------------------------------------
  // The parameter slab's entries, in order, for these layer sizes: W_t (D_t, D_{t+1}) and b_t per
  // layer, then γ_t and β_t on a batch-normalised layer (every hidden one, never the output).
  // The constructor lays the slab out from this; before building a network, Python checks the
  // memory it will need against their total (parameter_count).
  struct ParamEntry {
    ParamKind kind;
    Index layer, rows, cols;
  };
  static std::vector<ParamEntry> param_entries(const std::vector<Index>& sizes, bool batch_norm) {
    std::vector<ParamEntry> entries;
    const Index layers = static_cast<Index>(sizes.size()) - 1;
    for (Index t = 0; t < layers; ++t) {
      const Index width = sizes[static_cast<size_t>(t + 1)];
      entries.push_back({ParamKind::weight, t, sizes[static_cast<size_t>(t)], width});
      entries.push_back({ParamKind::bias, t, 1, width});
      if (normalised(t, layers, batch_norm)) {
        entries.push_back({ParamKind::bn_gamma, t, 1, width});
        entries.push_back({ParamKind::bn_beta, t, 1, width});
      }
    }
    return entries;
  }
  static Index parameter_count(const std::vector<Index>& sizes, bool batch_norm) {
    Index total = 0;
    for (const ParamEntry& e : param_entries(sizes, batch_norm)) total += e.rows * e.cols;
    return total;
  }
  static bool normalised(Index t, Index n_layers, bool batch_norm) {
    return batch_norm && t < n_layers - 1;
  }

  Index n_layers() const { return static_cast<Index>(sizes_.size()) - 1; }
  Index n_inputs() const { return sizes_.front(); }
  Index n_outputs() const { return sizes_.back(); }
  const std::vector<Index>& layer_sizes() const { return sizes_; }
  Activation hidden_activation() const { return hidden_; }
  Loss loss() const { return loss_; }
  bool batch_norm() const { return batch_norm_; }
  bool has_batch_norm(Index t) const { return normalised(t, n_layers(), batch_norm_); }
  Activation activation_of(Index t) const {
    return t == n_layers() - 1 ? Activation::identity : hidden_;
  }
  T alpha() const { return alpha_; }

  // Dropout rate p_t of each hidden layer (L-1 entries, each in [0, 1); 0: no dropout there).
  const std::vector<double>& dropout() const { return dropout_; }
  bool has_dropout(Index t) const {
    return t < n_layers() - 1 && dropout_[static_cast<size_t>(t)] > 0.0;
  }
  void set_dropout(const std::vector<double>& rates) {
    require(static_cast<Index>(rates.size()) == n_layers() - 1, [&] {
      return "dropout needs one rate per hidden layer (" + std::to_string(n_layers() - 1) +
             "), got " + std::to_string(rates.size());
    });
    for (double p : rates)
      require(std::isfinite(p) && p >= 0.0 && p < 1.0, [&] {
        return "every dropout rate must be in [0, 1), got " + std::to_string(p);
      });
    bool same_layers = true;
    for (size_t t = 0; t < rates.size(); ++t)
      same_layers &= (rates[t] > 0.0) == (dropout_[t] > 0.0);
    dropout_ = rates;
    if (!same_layers) train_.capacity = 0;  // mask buffers come and go with the layers that drop
  }
  bool any_dropout() const {
    for (double p : dropout_)
      if (p > 0.0) return true;
    return false;
  }
  // The masks of training step s are a function of (seed, s): see dropout.hpp. The step
  // counter advances once per training step that drew masks.
  uint64_t dropout_seed() const { return dropout_seed_; }
  void set_dropout_seed(uint64_t seed) { dropout_seed_ = seed; }
  uint64_t dropout_step() const { return dropout_step_; }
  void set_dropout_step(uint64_t step) { dropout_step_ = step; }
  void set_alpha(T alpha) {
    require(std::isfinite(static_cast<double>(alpha)) && alpha >= T(0), [&] {
      return std::string("alpha must be a finite number >= 0, got " + std::to_string(alpha));
    });
    alpha_ = alpha;
  }

  // scikit-learn's loss conventions (see loss.hpp), off by default.
  LossConventions loss_conventions() const { return conventions_; }
  void set_loss_conventions(LossConventions conventions) { conventions_ = conventions; }

  const SlabLayout& layout() const { return layout_; }
  // What each slab entry is: (kind, layer).
  const std::vector<std::pair<ParamKind, Index>>& entry_kinds() const { return kinds_; }
  Index n_params() const { return layout_.total(); }
  T* params() { return params_.data(); }
  T* grads() { return grads_.data(); }
  // running_mean_t, running_var_t of every batch-normalised layer, in layer order.
  T* batchnorm_state() { return bn_state_.data(); }
  Index batchnorm_state_size() const { return bn_state_.size(); }

  // ---- workspace ---------------------------------------------------------------------------
  Index capacity() const { return train_.capacity; }
  long long workspace_allocations() const { return workspace_allocations_; }
  // How often each layer computed the gradient of its input; layer 0 must stay at 0.
  const std::vector<long long>& input_grad_counts() const { return input_grad_counts_; }

  // Threads for the large products and passes: a number, or 0 for the process-wide default
  // (threads::limit(), which threadpoolctl and OMP_NUM_THREADS set), read at every reserve().
  void set_threads(int threads) {
    require(threads >= 0, [&] {
      return "n_threads must be >= 1, or 0 for the default, got " + std::to_string(threads);
    });
    requested_threads_ = threads;
  }
  int requested_threads() const { return requested_threads_; }
  // The thread count a computation started now runs on.
  int threads() const { return threads::resolve(requested_threads_); }

  // Plain Eigen products instead of the preallocated-buffer GEMM path: the reference the tests
  // compare the fast path with. Takes effect at the next reserve().
  void use_reference_products(bool reference) {
    use_gemm_buffers_ = !reference;
    train_.capacity = 0;
  }

  // Makes the training workspace hold `rows` rows on the current thread count, and starts the
  // pool's workers that needs. The only place training allocates.
  // sparse: the rows will come from a CSR matrix (a workspace built for dense rows serves too).
  void reserve(Index rows, bool sparse = false) {
    const int threads = this->threads();
    if (rows <= train_.capacity && threads == train_.threads && (sparse || !train_.sparse_only))
      return;
    build(train_, std::max(rows, train_.capacity), threads, /*training=*/true,
          sparse && (train_.capacity == 0 || train_.sparse_only));
    threads::prepare(threads);
    ++workspace_allocations_;
  }

  T* batch_x() { return train_.data.data() + train_.batch_x; }  // (capacity, d); dense only
  T* batch_y() { return train_.data.data() + train_.batch_y; }  // (capacity, K)
  T* batch_w() { return train_.data.data() + train_.batch_w; }  // (capacity)

  // ---- forward / backward -------------------------------------------------------------------
  // Forward pass over B <= capacity rows of X (B, d); returns the scores (B, K) in the workspace.
  // training: batch norm uses the batch's statistics (update_running_statistics then folds them
  // into the running averages); otherwise the running averages. dropout (training only): the
  // masks of the current dropout step on the layers whose rate is > 0.
  // This one runs in the training workspace (reserve() it first); evaluation goes through
  // predict_scores, which has its own.
  ConstMatrixMap<T> forward(InputRows<T> X, Index B, bool training = false, bool dropout = false) {
    return forward(train_, X, B, training, dropout);
  }

  // α/2 Σ_t ‖W_t‖² (biases and batch-norm parameters are not penalised).
  double penalty() const {
    if (alpha_ == T(0)) return 0.0;
    double sum = 0.0;
    for (Index t = 0; t < n_layers(); ++t)
      sum += static_cast<double>(param_matrix(slots(t).weight).squaredNorm());
    return 0.5 * static_cast<double>(alpha_) * sum;
  }

  // One minibatch X (B, d), Y (B, K), w (B) or null, batch norm in training mode:
  //   grads = ∂/∂θ  scale · (Σ_i w_i ℓ_i + α/2 Σ_t ‖W_t‖²)
  // and returns the unscaled Σ_i w_i ℓ_i + α/2 Σ_t ‖W_t‖². X, Y, w must hold B <= capacity rows.
  // dropout: ℓ_i of the network under the current step's masks (a training step), after which
  // the dropout step counter advances; without it, the objective without dropout.
  double forward_backward(InputRows<T> X, const T* Y, const T* w, Index B, T scale,
                          bool dropout = false) {
    // Every gradient entry is written (not accumulated) below, so the slab needs no zeroing.
    const Index L = n_layers();
    Workspace<T>& ws = train_;
    ConstMatrixMap<T> scores = forward(ws, X, B, /*training=*/true, dropout);
    double objective = loss_forward_backward<T>(loss_, work(ws, ws_layer(ws, L - 1).delta, L - 1, B).data(),
                                                scores.data(), Y, w, B, n_outputs(), scale,
                                                conventions_);
    objective += penalty();
    for (Index t = L - 1; t >= 0; --t) {
      const LayerSlots& s = slots(t);
      const typename Workspace<T>::Layer& w = ws_layer(ws, t);
      MatrixMap<T> dW = grad_matrix(s.weight);
      if (t == 0 && X.csr != nullptr) {
        sparse_backward<T>(dW, grad_row(s.bias), as_const(work(ws, w.delta, t, B)), X,
                           param_matrix(s.weight), scale * alpha_, ws.touched.data(),
                           ws.threads);
        continue;  // the L2 term is in dW already
      } else if (t > 0) {
        const ConstMatrixMap<T> layer_input(work(ws, output_of(ws, t - 1), t - 1, B).data(), B,
                                            sizes_[t]);
        MatrixMap<T> dinp = work(ws, ws_layer(ws, t - 1).delta, t - 1, B);
        // The activation's derivative goes on each panel of dinp's rows as the product
        // finishes it, unless a dropout mask must come first.
        const bool fused = !(ws.last_dropout && has_dropout(t - 1));
        auto derivative = [&](Index r0, Index r1) { activation_backward_rows(ws, t - 1, r0, r1, B); };
        dense_backward<T>(&dinp, dW, grad_row(s.bias), as_const(work(ws, w.delta, t, B)),
                          layer_input, param_matrix(s.weight), w.gemm.get(),
                          fused ? RowsDone(derivative) : RowsDone());
        ++input_grad_counts_[static_cast<size_t>(t)];
        nonlinear_backward(ws, t - 1, B, /*activation_done=*/fused);
      } else {
        dense_backward<T>(nullptr, dW, grad_row(s.bias), as_const(work(ws, w.delta, t, B)),
                          ConstMatrixMap<T>(X.dense, B, sizes_[0]), param_matrix(s.weight),
                          w.gemm.get());
      }
      if (alpha_ != T(0)) dW += (scale * alpha_) * param_matrix(s.weight);
    }
    if (ws.last_dropout) ++dropout_step_;
    return objective;
  }

  // ‖g‖₂ of the gradient slab (a vectorised float reduction; the scaled algorithm only when the
  // squares overflow).
  double grad_norm() const {
    const double squares = static_cast<double>(grads_.squaredNorm());
    return std::isfinite(squares) ? std::sqrt(squares) : static_cast<double>(grads_.stableNorm());
  }

  // Folds the statistics of the last training-mode forward pass (B rows) into the running
  // averages. Separate from the forward pass so a step whose loss is not finite leaves them be.
  void update_running_statistics(Index B) {
    for (Index t = 0; t < n_layers(); ++t) {
      if (!has_batch_norm(t)) continue;
      const LayerSlots& s = slots(t);
      const typename Workspace<T>::Layer& w = ws_layer(train_, t);
      batchnorm_update_running<T>(bn_row(s.running_mean), bn_row(s.running_var),
                                  as_const(work_row(train_, w.mean, t)),
                                  as_const(work_row(train_, w.var, t)), B);
    }
  }

  // The parameters before the last optimiser step (optim.hpp writes them while stepping), so a
  // run whose next loss is not finite can go back to the last state with a finite loss.
  T* params_backup() { return backup_.data(); }
  bool has_backup() const { return has_backup_; }
  void mark_backup(bool valid) { has_backup_ = valid; }
  void restore_backup() {
    params_ = backup_;
    has_backup_ = false;
  }

  // ---- evaluation over whole data sets -------------------------------------------------------
  // Evaluation reads the network and writes workspaces of its own, so any number of threads may
  // evaluate one network at once. In eval mode the rows go through in blocks of eval_block()
  // rows, the blocks on the threads; in training mode batch norm needs every row at once, and the
  // products are split instead. Either way each row's result is the same for every thread count.

  // scores (n, K) for X (n, d).
  void predict_scores(InputRows<T> X, Index n, T* out, bool training = false) const {
    const Index K = n_outputs();
    evaluate(X, n, training, [&](Index start, ConstMatrixMap<T> scores) {
      MatrixMap<T>(out + start * K, scores.rows(), K) = scores;
      return 0.0;
    });
  }

  // Values per row for `kind` (label: one index, written as int64 to `labels` instead).
  Index prediction_width(Prediction kind) const {
    if (kind == Prediction::label) return 1;
    return kind == Prediction::proba && loss_ == Loss::logistic && n_outputs() == 1 ? 2
                                                                                    : n_outputs();
  }
  bool has_label_prediction() const {
    return loss_ == Loss::softmax || (loss_ == Loss::logistic && n_outputs() == 1);
  }

  // Eval-mode predictions for X (n, d) into values (n, prediction_width(kind)), or labels (n)
  // for Prediction::label. With check_finite, every block of rows is checked as it goes in (in
  // cache, on the thread that computes it): a NaN or infinite input stops the pass and false
  // comes back, the outputs unspecified. This is a served model's only input check, so it is
  // exact, not inferred from the outputs (ReLU turns a NaN score into 0).
  bool predict(InputRows<T> X, Index n, Prediction kind, T* values, int64_t* labels,
               bool check_finite) const {
    require(kind != Prediction::label || has_label_prediction(),
            [] { return std::string("class labels need a softmax or a single logistic output"); });
    const Index K = n_outputs(), width = prediction_width(kind);
    std::atomic<bool> nonfinite{false};
    evaluate(
        X, n, /*training=*/false,
        [&](Index start, ConstMatrixMap<T> scores) {
          const Index B = scores.rows();
          const T* f = scores.data();
          T* out = values != nullptr ? values + start * width : nullptr;
          if (kind == Prediction::scores) {
            std::copy(f, f + B * K, out);
          } else if (kind == Prediction::label) {
            write_labels(f, B, labels + start);
          } else if (width == K) {
            response(loss_, f, B, K, out);
          } else {  // 1 − p, p
            for (Index i = 0; i < B; ++i) {
              const T p = expit(f[i]);
              out[2 * i] = T(1) - p;
              out[2 * i + 1] = p;
            }
          }
          return 0.0;
        },
        check_finite && X.csr == nullptr ? &nonfinite : nullptr);
    return !nonfinite.load();
  }

  // Σ_i w_i ℓ_i over X (n, d), Y (n, K), w (n) or null; no gradient, no penalty.
  double weighted_loss_sum(InputRows<T> X, const T* Y, const T* w, Index n,
                           bool training = false) const {
    const Index K = n_outputs();
    return evaluate(X, n, training, [&](Index start, ConstMatrixMap<T> scores) {
      return loss_forward_backward<T>(loss_, nullptr, scores.data(), Y + start * K,
                                      w != nullptr ? w + start : nullptr, scores.rows(), K, T(1),
                                      conventions_);
    });
  }

  // Rows per block of an eval-mode pass: about kEvalBlockWork multiply-adds, a multiple of 32
  // rows in [kEvalBlockMin, kEvalBlockMax]. It depends on the layer sizes only, so a row's result
  // does not depend on how many rows come with it or how many threads there are (with nncore's
  // GEMM, which dense_forward's rows_alike sends even a one-row block to; Eigen's kernel in the
  // baseline build sums a few rows of a narrow layer in another order).
  static constexpr Index kEvalBlockWork = Index(1) << 22;
  static constexpr Index kEvalBlockMin = 64, kEvalBlockMax = 1024;
  Index eval_block() const {
    Index per_row = 0;
    for (Index t = 0; t < n_layers(); ++t) per_row += sizes_[t] * sizes_[t + 1];
    return std::clamp(kEvalBlockWork / std::max<Index>(per_row, 1) / 32 * 32, kEvalBlockMin,
                      kEvalBlockMax);
  }

  // Sets every running mean/variance to the statistics of X (n, d) taken as one batch (the
  // population statistics, e.g. after full-batch training).
  void set_batchnorm_statistics(InputRows<T> X, Index n) {
    require(n >= 2, [&] {
      return std::string("batch-norm statistics need at least 2 rows, got " + std::to_string(n));
    });
    Workspace<T> ws;
    build(ws, n, threads(), /*training=*/true, X.csr != nullptr);
    forward(ws, X, n, /*training=*/true);
    for (Index t = 0; t < n_layers(); ++t) {
      if (!has_batch_norm(t)) continue;
      const LayerSlots& s = slots(t);
      const typename Workspace<T>::Layer& w = ws_layer(ws, t);
      bn_row(s.running_mean) = work_row(ws, w.mean, t);
      bn_row(s.running_var) = work_row(ws, w.var, t) * (T(n) / T(n - 1));
    }
  }

 private:
  // Class indices from scores f (B, K) (see Prediction::label), decided on the probabilities
  // response() gives, so that they agree with a choice made on predict_proba's values.
  void write_labels(const T* f, Index B, int64_t* labels) const {
    const Index K = n_outputs();
    for (Index i = 0; i < B; ++i) {
      const T* fi = f + i * K;
      if (loss_ == Loss::logistic) {
        labels[i] = expit(fi[0]) > T(0.5);
        continue;
      }
      const T fmax = *std::max_element(fi, fi + K);
      T sum = 0;
      for (Index k = 0; k < K; ++k) sum += std::exp(fi[k] - fmax);
      int64_t best = 0;
      T best_p = std::exp(fi[0] - fmax) / sum;
      for (Index k = 1; k < K; ++k) {
        const T p = std::exp(fi[k] - fmax) / sum;
        if (p > best_p) best = k, best_p = p;  // the first of equal ones, as argmax takes
      }
      labels[i] = best;
    }
  }

  struct LayerSlots {
    Index weight = -1, bias = -1, gamma = -1, beta = -1;  // slab entries
    SlabEntry running_mean, running_var;                  // in bn_state_
  };

  Index add_param(ParamKind kind, Index layer, Index rows, Index cols) {
    kinds_.emplace_back(kind, layer);
    return layout_.add(rows, cols);
  }
  const LayerSlots& slots(Index t) const { return layers_[static_cast<size_t>(t)]; }
  static const typename Workspace<T>::Layer& ws_layer(const Workspace<T>& ws, Index t) {
    return ws.layers[static_cast<size_t>(t)];
  }

  // Lays out `ws` for `rows` rows, its products split over `threads` threads; a training
  // workspace also holds what backward needs and the gathered minibatch.
  // sparse_only: for rows from a CSR matrix (see Workspace::sparse_only).
  void build(Workspace<T>& ws, Index rows, int threads, bool training,
             bool sparse_only = false) const {
    Index offset = 0;
    auto take = [&](Index count) {
      const Index at = offset;
      offset += count;
      return at;
    };
    ws.layers.resize(static_cast<size_t>(n_layers()));
    for (Index t = 0; t < n_layers(); ++t) {
      typename Workspace<T>::Layer& w = ws.layers[static_cast<size_t>(t)];
      const Index width = sizes_[t + 1];
      w.pre = take(rows * width);
      w.g_input = w.pre;
      if (has_batch_norm(t)) {
        w.z = take(rows * width);
        w.g_input = w.z;
        if (training) {
          w.xhat = take(rows * width);
          w.mean = take(width);
          w.var = take(width);
          w.inv_std = take(width);
          w.scratch1 = take(width);
          w.scratch2 = take(width);
        }
      }
      w.act = activation_of(t) == Activation::identity ? w.g_input : take(rows * width);
      w.delta = training ? take(rows * width) : -1;
      w.mask = w.out = -1;
      if (training && has_dropout(t)) {
        w.mask = take(rows * width);
        w.out = take(rows * width);
      }
      w.gemm.reset();
      // Evaluation workspaces hold eval_block() rows: a layer whose products at that size go
      // to the GEMM gets packing space, and then takes every block there, however small.
      if (use_gemm_buffers_ && !(sparse_only && t == 0) &&
          (training || uses_gemm(rows, width, sizes_[t])))
        w.gemm = std::make_unique<DenseBuffers<T>>(rows, sizes_[t], width, threads, training);
    }
    ws.batch_x = ws.batch_y = ws.batch_w = -1;
    ws.touched.assign(training ? static_cast<size_t>(n_inputs()) : 0, 0);
    if (training) {
      if (!sparse_only) ws.batch_x = take(rows * n_inputs());
      ws.batch_y = take(rows * n_outputs());
      ws.batch_w = take(rows);
    }
    ws.data.resize(offset);
    ws.capacity = rows;
    ws.threads = threads;
    ws.training = training;
    ws.sparse_only = sparse_only;
    ws.last_dropout = false;
  }

  // Forward pass over B <= ws.capacity rows of X (B, d) in `ws`; returns the scores (B, K) there.
  // training: batch norm on the batch's statistics (needs a training workspace); dropout: the
  // masks of the current dropout step (training workspaces only).
  ConstMatrixMap<T> forward(Workspace<T>& ws, InputRows<T> X, Index B, bool training,
                            bool dropout = false) const {
    ws.last_dropout = training && dropout && ws.training && any_dropout();
    const T* inp = X.dense;
    for (Index t = 0; t < n_layers(); ++t) {
      const LayerSlots& s = slots(t);
      const typename Workspace<T>::Layer& w = ws_layer(ws, t);
      MatrixMap<T> pre = work(ws, w.pre, t, B);
      MatrixMap<T> act = work(ws, w.act, t, B);
      // Without batch norm, the bias and activation are applied to each panel of rows as the
      // product finishes it (RowsDone); batch norm needs the whole batch's statistics first.
      auto bias_activation = [&](Index r0, Index r1) {
        bias_activation_forward<T>(row_block(act, r0, r1), row_block(pre, r0, r1),
                                   param_row(s.bias), activation_of(t));
      };
      const RowsDone done = has_batch_norm(t) ? RowsDone() : RowsDone(bias_activation);
      if (t == 0 && X.csr != nullptr) {
        sparse_forward<T>(pre, X, param_matrix(s.weight), ws.threads);
        parallel_rows(B, sizes_[t + 1], ws.threads, done);
      } else {
        dense_forward<T>(pre, ConstMatrixMap<T>(inp, B, sizes_[t]), param_matrix(s.weight),
                         w.gemm.get(), done, /*rows_alike=*/!training);
      }
      if (has_batch_norm(t)) {
        pre.rowwise() += param_row(s.bias);
        MatrixMap<T> z = work(ws, w.z, t, B);
        if (training) {
          batchnorm_forward_train<T>(z, work(ws, w.xhat, t, B), work_row(ws, w.mean, t),
                                     work_row(ws, w.var, t), work_row(ws, w.inv_std, t),
                                     as_const(pre), param_row(s.gamma));
        } else {
          batchnorm_forward_eval<T>(z, as_const(pre), bn_row(s.running_mean),
                                    bn_row(s.running_var), param_row(s.gamma));
        }
        bias_activation_forward<T>(act, z, param_row(s.beta), activation_of(t));
      }
      if (ws.last_dropout && has_dropout(t))
        dropout_forward<T>(work(ws, w.out, t, B), work(ws, w.mask, t, B),
                           as_const(work(ws, w.act, t, B)), dropout_[static_cast<size_t>(t)],
                           dropout_stream_key(dropout_seed_, dropout_step_, t), ws.threads);
      inp = work(ws, output_of(ws, t), t, B).data();
    }
    return ConstMatrixMap<T>(inp, B, n_outputs());
  }

  // f(start, scores (B, K) of rows [start, start + B)) over X (n, d) in blocks, in workspaces of
  // this call's own; returns the sum of f's results in block order.
  // With `nonfinite` given, each block's rows of a dense X are checked first: a NaN or infinite
  // value sets it, and that block and the blocks after it are skipped (f not called).
  template <class F>
  double evaluate(InputRows<T> X, Index n, bool training, F&& f,
                  std::atomic<bool>* nonfinite = nullptr) const {
    if (n <= 0) return 0.0;
    auto finite = [&](Index start, Index rows) {
      if (nonfinite == nullptr) return true;
      if (nonfinite->load(std::memory_order_relaxed)) return false;
      if (all_finite(X.dense + start * n_inputs(), rows * n_inputs())) return true;
      nonfinite->store(true, std::memory_order_relaxed);
      return false;
    };
    const int threads = this->threads();
    const bool sparse = X.csr != nullptr;
    if (training && batch_norm_) {
      Workspace<T> ws;
      build(ws, n, threads, /*training=*/true, sparse);
      if (!finite(0, n)) return 0.0;
      return f(Index(0), forward(ws, X, n, /*training=*/true));
    }
    const Index block = eval_block();
    const Index blocks = (n + block - 1) / block;
    // Blocks side by side, one workspace per thread; or a single block, its products split.
    const int slots = static_cast<int>(std::min<Index>(threads, blocks));
    std::unique_ptr<EvalSet> set = take_eval_set(slots, slots > 1 ? 1 : threads, sparse);
    std::vector<double> sums(static_cast<size_t>(blocks));
    threads::parallel_for(slots, blocks, [&](int64_t j, int slot) {
      const Index start = j * block, B = std::min(block, n - start);
      if (!finite(start, B)) return;
      sums[static_cast<size_t>(j)] = f(
          start, forward(set->ws[static_cast<size_t>(slot)], X.from(start, n_inputs()), B,
                         training));
    });
    give_back_eval_set(std::move(set));
    double total = 0.0;
    for (double v : sums) total += v;
    return total;
  }

  // Evaluation workspaces are kept between calls: fresh ones each call would cost more than the
  // pass itself for small models (a 20-64-64 net on 2,048 rows: ~1.5 ms of page faults against
  // 0.35 ms of arithmetic). A call takes a spare set or builds one, and gives it back after;
  // taking and giving are one atomic exchange each, so concurrent callers never wait on each
  // other (each ends up with a set of its own). A set fits a call made with the same thread
  // layout; a few are kept, for callers on different layouts.
  struct EvalSet {
    std::vector<Workspace<T>> ws;  // one per slot, eval_block() rows each
    int product_threads = 1;
    bool reference = false;
    bool sparse_only = false;
  };
  struct EvalSpares {
    std::array<std::atomic<EvalSet*>, 4> sets{};
    ~EvalSpares() {
      for (auto& set : sets) delete set.load();
    }
  };
  std::unique_ptr<EvalSet> take_eval_set(int slots, int product_threads, bool sparse) const {
    for (auto& spare : spares_->sets) {
      std::unique_ptr<EvalSet> set(spare.exchange(nullptr, std::memory_order_acquire));
      if (set && static_cast<int>(set->ws.size()) >= slots &&
          set->product_threads == product_threads && set->reference == !use_gemm_buffers_ &&
          (sparse || !set->sparse_only))
        return set;
    }
    auto set = std::make_unique<EvalSet>();
    set->ws.resize(static_cast<size_t>(slots));
    set->product_threads = product_threads;
    set->reference = !use_gemm_buffers_;
    set->sparse_only = sparse;
    for (auto& w : set->ws) build(w, eval_block(), product_threads, /*training=*/false, sparse);
    return set;
  }
  void give_back_eval_set(std::unique_ptr<EvalSet> set) const {
    for (auto& spare : spares_->sets) {
      EvalSet* empty = nullptr;
      if (spare.compare_exchange_strong(empty, set.get(), std::memory_order_release,
                                        std::memory_order_relaxed)) {
        set.release();
        return;
      }
    }
  }

  // Where layer t's output, the next layer's input, is in the last forward pass through ws.
  Index output_of(const Workspace<T>& ws, Index t) const {
    return ws.last_dropout && has_dropout(t) ? ws_layer(ws, t).out : ws_layer(ws, t).act;
  }

  // delta_t's rows [r0, r1) ⊙= g_t'(pre_t): ∂L/∂act_t to ∂L/∂(batch norm's output or pre_t).
  void activation_backward_rows(Workspace<T>& ws, Index t, Index r0, Index r1, Index B) const {
    const typename Workspace<T>::Layer& w = ws_layer(ws, t);
    activation_backward<T>(row_block(work(ws, w.delta, t, B), r0, r1),
                           row_block(as_const(work(ws, w.g_input, t, B)), r0, r1),
                           row_block(as_const(work(ws, w.act, t, B)), r0, r1), activation_of(t));
  }

  // Turns delta_t from ∂L/∂out_t into ∂L/∂pre_t: through the dropout mask, g_t (unless
  // activation_done: applied already, as the product wrote delta_t), then batch norm.
  void nonlinear_backward(Workspace<T>& ws, Index t, Index B, bool activation_done = false) {
    const LayerSlots& s = slots(t);
    const typename Workspace<T>::Layer& w = ws_layer(ws, t);
    MatrixMap<T> delta = work(ws, w.delta, t, B);
    if (ws.last_dropout && has_dropout(t))
      dropout_backward<T>(delta, as_const(delta), as_const(work(ws, w.mask, t, B)), ws.threads);
    if (!activation_done)
      parallel_rows(B, sizes_[t + 1], ws.threads,
                    [&](Index r0, Index r1) { activation_backward_rows(ws, t, r0, r1, B); });
    if (has_batch_norm(t))
      batchnorm_backward<T>(delta, grad_row(s.gamma), grad_row(s.beta),
                            work_row(ws, w.scratch1, t), work_row(ws, w.scratch2, t),
                            as_const(delta), as_const(work(ws, w.xhat, t, B)),
                            as_const(work_row(ws, w.inv_std, t)), param_row(s.gamma));
  }

  ConstMatrixMap<T> param_matrix(Index entry) const {
    return map_matrix<T>(static_cast<const T*>(params_.data()), layout_[entry]);
  }
  ConstRowVectorMap<T> param_row(Index entry) const {
    return map_row<T>(static_cast<const T*>(params_.data()), layout_[entry]);
  }
  MatrixMap<T> grad_matrix(Index entry) { return map_matrix<T>(grads_.data(), layout_[entry]); }
  RowVectorMap<T> grad_row(Index entry) { return map_row<T>(grads_.data(), layout_[entry]); }
  RowVectorMap<T> bn_row(const SlabEntry& e) { return map_row<T>(bn_state_.data(), e); }
  ConstRowVectorMap<T> bn_row(const SlabEntry& e) const {
    return map_row<T>(static_cast<const T*>(bn_state_.data()), e);
  }
  MatrixMap<T> work(Workspace<T>& ws, Index offset, Index t, Index B) const {
    return MatrixMap<T>(ws.data.data() + offset, B, sizes_[t + 1]);
  }
  RowVectorMap<T> work_row(Workspace<T>& ws, Index offset, Index t) const {
    return RowVectorMap<T>(ws.data.data() + offset, sizes_[t + 1]);
  }
  static ConstMatrixMap<T> as_const(const MatrixMap<T>& m) {
    return ConstMatrixMap<T>(m.data(), m.rows(), m.cols());
  }
  static ConstRowVectorMap<T> as_const(const RowVectorMap<T>& m) {
    return ConstRowVectorMap<T>(m.data(), m.size());
  }

  std::vector<Index> sizes_;
  Activation hidden_;
  Loss loss_;
  bool batch_norm_;
  T alpha_ = 0;
  LossConventions conventions_;
  SlabLayout layout_;
  std::vector<std::pair<ParamKind, Index>> kinds_;
  std::vector<LayerSlots> layers_;
  Vector<T> params_;
  Vector<T> grads_;
  Vector<T> backup_;
  bool has_backup_ = false;
  Vector<T> bn_state_;
  std::vector<double> dropout_;  // (L-1) rates
  uint64_t dropout_seed_ = 0, dropout_step_ = 0;

  bool use_gemm_buffers_ = true;
  int requested_threads_ = 0;  // 0: the process-wide default
  Workspace<T> train_;         // training steps' own
  std::unique_ptr<EvalSpares> spares_ = std::make_unique<EvalSpares>();  // evaluation's
  long long workspace_allocations_ = 0;
  std::vector<long long> input_grad_counts_;
};

}  // namespace nncore
