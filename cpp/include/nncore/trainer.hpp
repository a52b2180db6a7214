// One epoch of minibatch training, entirely in C++:
//   choose the row order (the caller's, a seeded permutation, or 0..n-1), then for each
//   minibatch M: gather its rows into the batch buffers, forward, loss, backward, and the
//   optimiser's update (optim.hpp). A batch of n rows is full-batch gradient descent.
//
// Objective of one step (scikit-learn's, so alpha means what it means there), with W = Σ_{i∈M} w_i (= |M| without sample weights):
//   mean:  L_M = (1/W) (Σ_{i∈M} w_i ℓ_i + α/2 Σ_t ‖W_t‖²)            scikit-learn's objective
//   sum:   n · L_M, whose gradient is the lecture's (n/|M|) Σ_{i∈M} ∂ℓ_i/∂θ
// The epoch loss reported is always in mean units, Σ_M |M| L_M / Σ_M |M|, which is
// scikit-learn's loss_curve_ entry whatever the reduction.
// Hidden layers with a dropout rate train under fresh masks every step (network.hpp,
// dropout.hpp); L_M, and so the epoch loss, is then the loss under those masks.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "network.hpp"
#include "optim.hpp"

namespace nncore {

enum class Reduction { mean, sum };

// splitmix64: a tiny, fully specified generator, so one seed gives the same permutation on every
// platform and compiler (std::shuffle's algorithm is implementation-defined).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound) without modulo bias (rejection on the incomplete last block).
  uint64_t below(uint64_t bound) {
    const uint64_t limit =
        std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % bound;
    uint64_t r;
    do r = next();
    while (r >= limit);
    return r % bound;
  }

 private:
  uint64_t state_;
};

// Fisher–Yates shuffle of 0..n-1.
inline std::vector<int64_t> seeded_permutation(Index n, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (Index i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  SplitMix64 rng(seed);
  for (Index i = n - 1; i > 0; --i) {
    const Index j = static_cast<Index>(rng.below(static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

struct EpochResult {
  double mean_loss = 0.0;       // in mean units, over the steps taken
  Index steps = 0;              // parameter updates made
  double mean_grad_norm = 0.0;  // mean over the steps of ‖∇θ L_M‖₂ (the objective's gradient)
  bool diverged = false;        // a non-finite loss or update stopped the epoch before that step
  bool rolled_back = false;     // ... and the parameters went back to before the previous step
  bool interrupted = false;     // should_stop() asked to stop; the last step was completed
};

struct EpochOptions {
  Index batch_size = 200;
  double learning_rate = 1e-3;
  Reduction reduction = Reduction::mean;
  bool shuffle = true;
  uint64_t seed = 0;
  // Polled between steps, at most every `poll_interval` (so a Ctrl-C is seen within a fraction
  // of a second without paying for a check on every small step); true ends the epoch there.
  std::function<bool()> should_stop;
  std::chrono::milliseconds poll_interval{20};
  // True when this epoch continues the previous one with nothing touching the parameters in
  // between, so the previous epoch's last step can still be undone.
  bool continuing = false;
};

// X (n, d) dense or X_csr (n, d) CSR (the other null), Y (n, K), w (n) or null, order (m) of
// row indices in [0, n) or null. A minibatch's Y and w rows are gathered into the batch
// buffers; its X rows too when X is dense, while CSR rows are read where they are (sparse.hpp).
template <class T>
EpochResult train_epoch(Network<T>& net, Optimizer<T>& optimizer, const T* X, const Csr<T>* X_csr,
                        const T* Y, const T* w, Index n, const int64_t* order, Index m,
                        const EpochOptions& opt) {
  require(optimizer.n_params() == net.n_params(), [&] {
    return std::string("the optimiser was made for " + std::to_string(optimizer.n_params()) +
                       " parameters, the network has " + std::to_string(net.n_params()));
  });
  require(n >= 1, "train_epoch needs at least one row, got n=0");
  require(opt.batch_size >= 1, [&] {
    return std::string("batch_size must be >= 1, got " + std::to_string(opt.batch_size));
  });
  require(std::isfinite(opt.learning_rate) && opt.learning_rate > 0, [&] {
    return std::string("learning_rate must be a finite number > 0, got " +
                       std::to_string(opt.learning_rate));
  });
  std::vector<int64_t> permutation;
  if (order != nullptr) {
    require(m >= 1, "order must hold at least one row index");
    for (Index i = 0; i < m; ++i)
      require(order[i] >= 0 && order[i] < n, [&] {
        return std::string("order[" + std::to_string(i) + "] = " + std::to_string(order[i]) +
                           " is outside [0, " + std::to_string(n) + ")");
      });
  } else if (opt.shuffle) {
    permutation = seeded_permutation(n, opt.seed);
    order = permutation.data();
    m = n;
  } else {
    m = n;  // sequential batches are read in place, no gather
  }

  const Index d = net.n_inputs(), K = net.n_outputs();
  const Index batch = std::min(opt.batch_size, m);
  if (!opt.continuing) net.mark_backup(false);
  if (net.batch_norm())
    require(batch >= 2 && m % batch != 1, [&] {
      return std::string(
          "batch normalisation in training mode needs at least 2 rows in every minibatch, but "
          "batch_size=" +
          std::to_string(opt.batch_size) + " over " + std::to_string(m) +
          " rows leaves a minibatch of 1 row; choose another batch_size");
    });
  net.reserve(batch, X_csr != nullptr);

  EpochResult result;
  double loss_rows = 0.0, rows = 0.0, grad_norm_sum = 0.0;
  auto next_poll = std::chrono::steady_clock::now() + opt.poll_interval;
  for (Index start = 0; start < m; start += batch) {
    if (opt.should_stop && std::chrono::steady_clock::now() >= next_poll) {
      if (opt.should_stop()) {
        result.interrupted = true;
        break;
      }
      next_poll = std::chrono::steady_clock::now() + opt.poll_interval;
    }
    const Index B = std::min(batch, m - start);
    InputRows<T> xb = X_csr != nullptr ? InputRows<T>(*X_csr, nullptr, start)
                                       : InputRows<T>(X + start * d);
    const T *yb = Y + start * K, *wb = w != nullptr ? w + start : nullptr;
    if (order != nullptr) {
      T* gx = X_csr != nullptr ? nullptr : net.batch_x();
      T *gy = net.batch_y(), *gw = net.batch_w();
      parallel_rows(B, X_csr != nullptr ? K : d, net.threads(), [&](Index r0, Index r1) {
        for (Index r = r0; r < r1; ++r) {
          const Index src = static_cast<Index>(order[start + r]);
          if (gx != nullptr)
            std::memcpy(gx + r * d, X + src * d, sizeof(T) * static_cast<size_t>(d));
          std::memcpy(gy + r * K, Y + src * K, sizeof(T) * static_cast<size_t>(K));
          if (w != nullptr) gw[r] = w[src];
        }
      });
      xb = X_csr != nullptr ? InputRows<T>(*X_csr, order + start, 0) : InputRows<T>(gx);
      yb = gy;
      wb = w != nullptr ? gw : nullptr;
    }
    double weight_sum = static_cast<double>(B);
    if (wb != nullptr) {
      weight_sum = 0.0;
      for (Index r = 0; r < B; ++r) weight_sum += static_cast<double>(wb[r]);
    }
    // A batch whose weights sum to zero has no weighted mean: no step, no loss. A negative sum
    // (scikit-learn takes negative weights) normalises as scikit-learn does, by that sum.
    if (weight_sum == 0.0) continue;
    const double scale =
        (opt.reduction == Reduction::mean ? 1.0 : static_cast<double>(n)) / weight_sum;
    // With dropout, the step's masks (and so its loss) come from the network's step counter.
    const double objective =
        net.forward_backward(xb, yb, wb, B, static_cast<T>(scale), /*dropout=*/true);
    if (!std::isfinite(objective)) {
      // The current parameters give a non-finite loss: go back to those before the previous
      // step (whose loss was finite) and drop the optimiser's state, which carries the
      // diverging direction. The caller reports the divergence.
      result.diverged = true;
      if (net.has_backup()) {
        net.restore_backup();
        optimizer.reset();
        result.rolled_back = true;
      }
      break;
    }
    // ‖g‖² comes out of the optimiser's pass over the slab; the scaled norm only on overflow.
    double grad_squares = 0.0;
    if (!optimizer.step(net.params(), net.grads(), opt.learning_rate, net.params_backup(),
                        net.threads(), &grad_squares)) {
      result.diverged = true;  // the update itself was not finite: undone, optimiser reset
      result.rolled_back = true;
      net.mark_backup(false);
      break;
    }
    grad_norm_sum += std::isfinite(grad_squares) ? std::sqrt(grad_squares) : net.grad_norm();
    net.mark_backup(true);
    if (net.batch_norm()) net.update_running_statistics(B);
    loss_rows += static_cast<double>(B) * objective / weight_sum;
    rows += static_cast<double>(B);
    ++result.steps;
  }
  result.mean_loss = rows > 0 ? loss_rows / rows : std::numeric_limits<double>::quiet_NaN();
  result.mean_grad_norm = result.steps > 0 ? grad_norm_sum / static_cast<double>(result.steps)
                                           : std::numeric_limits<double>::quiet_NaN();
  return result;
}

// Dense X (n, d).
template <class T>
EpochResult train_epoch(Network<T>& net, Optimizer<T>& optimizer, const T* X, const T* Y,
                        const T* w, Index n, const int64_t* order, Index m,
                        const EpochOptions& opt) {
  return train_epoch(net, optimizer, X, static_cast<const Csr<T>*>(nullptr), Y, w, n, order, m,
                     opt);
}

}  // namespace nncore
