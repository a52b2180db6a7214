// A multilayer perceptron over one contiguous parameter slab and one gradient slab.
//
//   layer t = 0..L-1:  pre_t (B, D_{t+1}) = act_{t-1} · W_t + b_t,   act_t = g_t(pre_t)
//   act_{-1} = X (B, d); g_t is the hidden activation for t < L-1 and identity for the output
//   layer, whose act_{L-1} (B, K) are the raw scores the loss reads.
//
// Parameters (and gradients, same layout): W_0 (D_0, D_1), b_0 (1, D_1), W_1, b_1, ...
// Workspace, sized for `capacity` rows and only ever grown by reserve(): per layer pre_t, act_t
// (aliases pre_t when g_t is identity) and delta_t (∂L/∂act_t, turned into ∂L/∂pre_t in place),
// plus the batch buffers the trainer gathers rows into. A training step allocates nothing.
#pragma once

#include "activation.hpp"
#include "dense.hpp"
#include "loss.hpp"
#include "tensor.hpp"

#include <cmath>
#include <string>
#include <vector>

namespace nncore {

template <class T>
class Network {
 public:
  Network(std::vector<Index> layer_sizes, Activation hidden, Loss loss, T alpha)
      : sizes_(std::move(layer_sizes)), hidden_(hidden), loss_(loss) {
    require(sizes_.size() >= 2,
            "layer_sizes needs at least 2 entries (inputs and outputs), got " +
                std::to_string(sizes_.size()));
    for (Index s : sizes_)
      require(s >= 1, "every layer size must be >= 1, got " + std::to_string(s));
    set_alpha(alpha);
    for (Index t = 0; t < n_layers(); ++t) {
      layout_.add(sizes_[t], sizes_[t + 1]);  // W_t
      layout_.add(1, sizes_[t + 1]);          // b_t
    }
    params_ = Vector<T>::Zero(layout_.total());
    grads_ = Vector<T>::Zero(layout_.total());
    input_grad_counts_.assign(static_cast<size_t>(n_layers()), 0);
  }

  // ---- structure -------------------------------------------------------------------------
  Index n_layers() const { return static_cast<Index>(sizes_.size()) - 1; }
  Index n_inputs() const { return sizes_.front(); }
  Index n_outputs() const { return sizes_.back(); }
  const std::vector<Index>& layer_sizes() const { return sizes_; }
  Activation hidden_activation() const { return hidden_; }
  Loss loss() const { return loss_; }
  Activation activation_of(Index t) const {
    return t == n_layers() - 1 ? Activation::identity : hidden_;
  }
  T alpha() const { return alpha_; }
  void set_alpha(T alpha) {
    require(std::isfinite(static_cast<double>(alpha)) && alpha >= T(0),
            "alpha must be a finite number >= 0, got " + std::to_string(alpha));
    alpha_ = alpha;
  }

  const SlabLayout& layout() const { return layout_; }
  const SlabEntry& weight_entry(Index t) const { return layout_[2 * t]; }
  const SlabEntry& bias_entry(Index t) const { return layout_[2 * t + 1]; }
  Index n_params() const { return layout_.total(); }
  T* params() { return params_.data(); }
  T* grads() { return grads_.data(); }

  // ---- workspace ---------------------------------------------------------------------------
  Index capacity() const { return capacity_; }
  long long workspace_allocations() const { return workspace_allocations_; }
  // How often each layer computed the gradient of its input; layer 0 must stay at 0.
  const std::vector<long long>& input_grad_counts() const { return input_grad_counts_; }

  // Grows the workspace to hold `rows` rows. The only place the workspace allocates.
  void reserve(Index rows) {
    if (rows <= capacity_) return;
    Index offset = 0;
    auto take = [&](Index cols) {
      const Index at = offset;
      offset += rows * cols;
      return at;
    };
    const size_t L = static_cast<size_t>(n_layers());
    pre_.assign(L, 0);
    act_.assign(L, 0);
    delta_.assign(L, 0);
    for (size_t t = 0; t < L; ++t) {
      const Index width = sizes_[t + 1];
      pre_[t] = take(width);
      act_[t] = activation_of(static_cast<Index>(t)) == Activation::identity ? pre_[t] : take(width);
      delta_[t] = take(width);
    }
    batch_x_ = take(n_inputs());
    batch_y_ = take(n_outputs());
    batch_w_ = take(1);
    workspace_.resize(offset);
    capacity_ = rows;
    ++workspace_allocations_;
  }

  T* batch_x() { return workspace_.data() + batch_x_; }  // (capacity, d)
  T* batch_y() { return workspace_.data() + batch_y_; }  // (capacity, K)
  T* batch_w() { return workspace_.data() + batch_w_; }  // (capacity)

  // ---- forward / backward -------------------------------------------------------------------
  // Forward pass over B <= capacity rows of X (B, d); returns the scores (B, K) in the workspace.
  ConstMatrixMap<T> forward(const T* X, Index B) {
    const T* inp = X;
    for (Index t = 0; t < n_layers(); ++t) {
      const Index d_in = sizes_[t];
      MatrixMap<T> pre = work(pre_, t, B);
      MatrixMap<T> act = work(act_, t, B);
      dense_forward<T>(pre, ConstMatrixMap<T>(inp, B, d_in), weight(t));
      bias_activation_forward<T>(act, pre, bias(t), activation_of(t));
      inp = act.data();
    }
    return ConstMatrixMap<T>(inp, B, n_outputs());
  }

  // α/2 Σ_t ‖W_t‖² (biases are not penalised).
  double penalty() const {
    if (alpha_ == T(0)) return 0.0;
    double sum = 0.0;
    for (Index t = 0; t < n_layers(); ++t)
      sum += static_cast<double>(weight(t).squaredNorm());
    return 0.5 * static_cast<double>(alpha_) * sum;
  }

  // One minibatch X (B, d), Y (B, K), w (B) or null:
  //   grads = ∂/∂θ  scale · (Σ_i w_i ℓ_i + α/2 Σ_t ‖W_t‖²)
  // and returns the unscaled Σ_i w_i ℓ_i + α/2 Σ_t ‖W_t‖². X, Y, w must hold B <= capacity rows.
  double forward_backward(const T* X, const T* Y, const T* w, Index B, T scale) {
    grads_.setZero();
    const Index L = n_layers();
    ConstMatrixMap<T> scores = forward(X, B);
    double objective = loss_forward_backward<T>(loss_, work(delta_, L - 1, B).data(), scores.data(),
                                                Y, w, B, n_outputs(), scale);
    objective += penalty();
    for (Index t = L - 1; t >= 0; --t) {
      const T* inp = t == 0 ? X : work(act_, t - 1, B).data();
      const ConstMatrixMap<T> dpre = const_work(delta_, t, B);
      MatrixMap<T> dW = map_matrix<T>(grads_.data(), weight_entry(t));
      RowVectorMap<T> db = map_row<T>(grads_.data(), bias_entry(t));
      const ConstMatrixMap<T> layer_input(inp, B, sizes_[t]);
      if (t > 0) {
        MatrixMap<T> dinp = work(delta_, t - 1, B);
        dense_backward<T>(&dinp, dW, db, dpre, layer_input, weight(t));
        ++input_grad_counts_[static_cast<size_t>(t)];
        activation_backward<T>(dinp, const_work(pre_, t - 1, B), const_work(act_, t - 1, B),
                               activation_of(t - 1));
      } else {
        dense_backward<T>(nullptr, dW, db, dpre, layer_input, weight(t));
      }
      if (alpha_ != T(0)) dW += (scale * alpha_) * weight(t);
    }
    return objective;
  }

  // θ ← θ − η·g: one loop over the whole slab.
  void sgd_step(T learning_rate) { params_.noalias() -= learning_rate * grads_; }

  // The same step, taken only when every updated parameter is finite; returns whether it was.
  // The check reads the slab once more, which is cheap next to the GEMMs of the step.
  bool sgd_step_if_finite(T learning_rate) {
    if (!(params_ - learning_rate * grads_).allFinite()) return false;
    sgd_step(learning_rate);
    return true;
  }

  // ---- evaluation over whole data sets (chunked through the workspace) ----------------------
  // scores (n, K) for X (n, d).
  void predict_scores(const T* X, Index n, T* out) {
    const Index chunk = eval_chunk(n);
    for (Index start = 0; start < n; start += chunk) {
      const Index B = std::min(chunk, n - start);
      MatrixMap<T>(out + start * n_outputs(), B, n_outputs()) = forward(X + start * n_inputs(), B);
    }
  }

  // Σ_i w_i ℓ_i over X (n, d), Y (n, K), w (n) or null; no gradient, no penalty.
  double weighted_loss_sum(const T* X, const T* Y, const T* w, Index n) {
    const Index chunk = eval_chunk(n);
    double total = 0.0;
    for (Index start = 0; start < n; start += chunk) {
      const Index B = std::min(chunk, n - start);
      ConstMatrixMap<T> scores = forward(X + start * n_inputs(), B);
      total += loss_forward_backward<T>(loss_, nullptr, scores.data(), Y + start * n_outputs(),
                                        w != nullptr ? w + start : nullptr, B, n_outputs(), T(1));
    }
    return total;
  }

 private:
  ConstMatrixMap<T> weight(Index t) const {
    return map_matrix<T>(static_cast<const T*>(params_.data()), weight_entry(t));
  }
  ConstRowVectorMap<T> bias(Index t) const {
    return map_row<T>(static_cast<const T*>(params_.data()), bias_entry(t));
  }
  ConstMatrixMap<T> const_work(const std::vector<Index>& offsets, Index t, Index B) const {
    return ConstMatrixMap<T>(workspace_.data() + offsets[static_cast<size_t>(t)], B, sizes_[t + 1]);
  }
  MatrixMap<T> work(const std::vector<Index>& offsets, Index t, Index B) {
    return MatrixMap<T>(workspace_.data() + offsets[static_cast<size_t>(t)], B, sizes_[t + 1]);
  }
  // Evaluation streams data through the workspace in blocks big enough for efficient GEMMs.
  Index eval_chunk(Index n) {
    const Index chunk = std::max<Index>(capacity_, std::min<Index>(n, 1024));
    reserve(chunk);
    return chunk;
  }

  std::vector<Index> sizes_;
  Activation hidden_;
  Loss loss_;
  T alpha_ = 0;
  SlabLayout layout_;
  Vector<T> params_;
  Vector<T> grads_;

  Index capacity_ = 0;
  Vector<T> workspace_;
  std::vector<Index> pre_, act_, delta_;
  Index batch_x_ = 0, batch_y_ = 0, batch_w_ = 0;
  long long workspace_allocations_ = 0;
  std::vector<long long> input_grad_counts_;
};

}  // namespace nncore
