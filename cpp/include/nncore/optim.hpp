// Optimisers: one fused loop over the whole parameter slab, with state buffers of the same layout.
//
//   sgd        θ ← θ − η g                                     (momentum = 0)
//   momentum   v ← μ v − η g;  θ ← θ + v                        (scikit-learn's SGD, nesterov off)
//   nesterov   v ← μ v − η g;  θ ← θ + μ v − η g                (scikit-learn's SGD, nesterov on)
//   adam       t ← t+1;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
//              η_t = η √(1−β2^t) / (1−β1^t);  θ ← θ − η_t m / (√v + ε)     (scikit-learn's Adam)
//   adamw      θ ← θ − η λ θ, then the Adam moments and
//              θ ← θ − η m̂ / (√v̂ + ε),  m̂ = m/(1−β1^t), v̂ = v/(1−β2^t)  (PyTorch's AdamW)
// The two Adam forms differ only in where ε enters (ε vs ε·√(1−β2^t)): adam follows scikit-learn
// so trajectories compare step for step with it, adamw follows PyTorch, which defines AdamW.
//
// A step is one pass over the slab that also keeps θ before the step in a backup buffer: if an
// updated value is not finite the step is undone from it (and the optimiser's state reset), and
// the trainer uses it to go back from a step whose next loss is not finite.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "tensor.hpp"

namespace nncore {

enum class OptimizerKind { sgd, adam, adamw };

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::sgd;
  double momentum = 0.0;                              // sgd: μ in [0, 1]
  bool nesterov = false;                              // sgd: Nesterov's momentum
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;  // adam, adamw
  double weight_decay = 0.0;                          // adamw: λ
};

template <class T>
class Optimizer {
 public:
  Optimizer(const OptimizerConfig& config, Index n_params) : config_(config), n_(n_params) {
    const auto& c = config_;
    require(n_params >= 1, "an optimiser needs at least one parameter");
    // The ranges users set are checked once, in Python (nncore._validation.BOUNDS). Here only
    // what Adam's arithmetic cannot survive: its bias corrections divide by 1 − β^t, and its
    // step by √v̂ + ε, which is 0 where a gradient entry has always been 0.
    require(c.beta1 < 1 && c.beta2 < 1, [&] {
      return std::string("beta_1 and beta_2 must be < 1, got " + std::to_string(c.beta1) +
                         " and " + std::to_string(c.beta2));
    });
    require(c.epsilon > 0,
            [&] { return std::string("epsilon must be > 0, got " + std::to_string(c.epsilon)); });
    if (uses_velocity()) first_ = Vector<T>::Zero(n_params);
    if (is_adam()) {
      first_ = Vector<T>::Zero(n_params);
      second_ = Vector<T>::Zero(n_params);
    }
  }

  const OptimizerConfig& config() const { return config_; }
  Index n_params() const { return n_; }
  bool uses_velocity() const { return config_.kind == OptimizerKind::sgd && config_.momentum > 0; }
  bool is_adam() const { return config_.kind != OptimizerKind::sgd; }
  // State: velocity (momentum) or first moment m (Adam) in first(); second moment v in second().
  T* first() { return first_.size() ? first_.data() : nullptr; }
  T* second() { return second_.size() ? second_.data() : nullptr; }
  Index first_size() const { return first_.size(); }
  Index second_size() const { return second_.size(); }
  int64_t steps() const { return t_; }
  void set_steps(int64_t t) {
    require(t >= 0,
            [&] { return std::string("the step count must be >= 0, got " + std::to_string(t)); });
    t_ = t;
  }
  void reset() {
    first_.setZero();
    second_.setZero();
    t_ = 0;
  }

  // θ (n_params) updated from g (n_params) with step size η, in one pass that also keeps θ
  // before the step in `backup` (n_params) and, when `grad_squares` is given, sums g² into it
  // (in double; the trainer's gradient norm without a pass of its own). If any updated value is
  // not finite, θ is restored from `backup`, the optimiser's state is reset (it holds the
  // diverging direction) and false is returned.
  // Slabs of at least kParallelSlab parameters are updated in contiguous chunks on up to
  // `threads` threads (the pass is memory-bound: smaller slabs stay in one thread's cache). The
  // chunks depend on the slab's size only, so the sum of squares is the same for every thread
  // count.
  static constexpr Index kParallelSlab = Index(1) << 18;
  static constexpr Index kChunk = Index(1) << 15;
  static constexpr int kMaxParts = 64;

  bool step(T* params, const T* grads, double learning_rate, T* backup, int threads = 1,
            double* grad_squares = nullptr) {
    const Index parts =
        n_ >= kParallelSlab ? std::min<Index>(kMaxParts, (n_ + kChunk - 1) / kChunk) : 1;
    // Per-part results, combined in part order so the sum is the same on every run.
    unsigned not_finite[kMaxParts] = {};
    double squares[kMaxParts] = {};
    // Chunk edges on multiples of 16 entries: whole cache lines and vectors per chunk.
    auto edge = [&](Index j) { return j == parts ? n_ : n_ * j / parts / 16 * 16; };
    threads::parallel_for(threads, parts, [&](int64_t j, int) {
      not_finite[j] = update(params, grads, learning_rate, backup, edge(j), edge(j + 1), squares[j]);
    });
    bool finite = true;
    double sum = 0.0;
    for (Index j = 0; j < parts; ++j) {
      finite = finite && not_finite[j] == 0;
      sum += squares[j];
    }
    if (grad_squares != nullptr) *grad_squares = sum;
    if (is_adam()) ++t_;
    if (!finite) {
      std::copy(backup, backup + n_, params);
      reset();
    }
    return finite;
  }

 private:
  // Updates entries [begin, end); returns how many updated values are not finite and adds
  // Σ g² over them to `squares`.
  unsigned update(T* theta, const T* g, double learning_rate, T* backup, Index begin, Index end,
                  double& squares) {
    const auto& c = config_;
    const T eta = static_cast<T>(learning_rate);
    // Counts values that are not finite: |x| <= max is false for inf and NaN alike, and an
    // integer count (unlike a bool flag or std::isfinite) lets the loops vectorise.
    const T largest = std::numeric_limits<T>::max();
    auto bad = [largest](T x) { return static_cast<unsigned>(!(std::abs(x) <= largest)); };
    unsigned not_finite = 0;
    double sq = 0.0;
    switch (c.kind) {
      case OptimizerKind::sgd:
        if (!uses_velocity()) {
#pragma omp simd reduction(+ : not_finite, sq)
          for (Index i = begin; i < end; ++i) {
            sq += static_cast<double>(g[i]) * static_cast<double>(g[i]);
            backup[i] = theta[i];
            theta[i] -= eta * g[i];
            not_finite += bad(theta[i]);
          }
        } else {
          const T mu = static_cast<T>(c.momentum);
          // Nesterov's step is θ += μ v − η g, plain momentum's θ += v: one loop for both.
          const T mu_theta = c.nesterov ? mu : T(1), eta_theta = c.nesterov ? eta : T(0);
          T* v = first_.data();
#pragma omp simd reduction(+ : not_finite, sq)
          for (Index i = begin; i < end; ++i) {
            sq += static_cast<double>(g[i]) * static_cast<double>(g[i]);
            backup[i] = theta[i];
            v[i] = mu * v[i] - eta * g[i];
            theta[i] += mu_theta * v[i] - eta_theta * g[i];
            not_finite += bad(theta[i]) + bad(v[i]);
          }
        }
        break;
      case OptimizerKind::adam:
      case OptimizerKind::adamw: {
        const double t = static_cast<double>(t_ + 1);
        const double bias1 = 1.0 - std::pow(c.beta1, t), bias2 = 1.0 - std::pow(c.beta2, t);
        const T b1 = static_cast<T>(c.beta1), b2 = static_cast<T>(c.beta2);
        const T eps = static_cast<T>(c.epsilon);
        const bool decoupled = c.kind == OptimizerKind::adamw;
        // adam: θ −= η_t m/(√v + ε);  adamw: θ −= (η/bias1) m/(√v/√bias2 + ε)
        const T step_size = static_cast<T>(decoupled ? learning_rate / bias1
                                                     : learning_rate * std::sqrt(bias2) / bias1);
        const T v_scale = static_cast<T>(decoupled ? 1.0 / std::sqrt(bias2) : 1.0);
        const T decay = static_cast<T>(decoupled ? 1.0 - learning_rate * c.weight_decay : 1.0);
        T *m = first_.data(), *v = second_.data();
#pragma omp simd reduction(+ : not_finite, sq)
        for (Index i = begin; i < end; ++i) {
          sq += static_cast<double>(g[i]) * static_cast<double>(g[i]);
          backup[i] = theta[i];
          m[i] = b1 * m[i] + (T(1) - b1) * g[i];
          v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
          theta[i] = decay * theta[i] - step_size * m[i] / (std::sqrt(v[i]) * v_scale + eps);
          not_finite += bad(theta[i]) + bad(v[i]);
        }
        break;
      }
    }
    squares += sq;
    return not_finite;
  }

  OptimizerConfig config_;
  Index n_;
  Vector<T> first_, second_;
  int64_t t_ = 0;
};

}  // namespace nncore
