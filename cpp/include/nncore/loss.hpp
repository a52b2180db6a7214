// Per-sample losses on raw scores f (the output layer is linear; links such as the logistic or
// softmax are applied only when predicting probabilities), each with its gradient beside it.
//
//   scores f (B, K), targets y (B, K), weights w (B) or null (all ones), dscores (B, K) or null
//   squared_error  ℓ = 1/(2K) Σ_k (y_k − f_k)²             ∂ℓ/∂f = (f − y)/K
//                  (½ the squared error averaged over outputs: scikit-learn's reported loss)
//   logistic       ℓ = Σ_k softplus(f_k) − y_k f_k          ∂ℓ/∂f = σ(f) − y
//                  (binary / multilabel log loss, y ∈ [0, 1], prediction 1[f ≥ 0])
//   softmax        ℓ = Σy · logsumexp(f) − Σ_k y_k f_k      ∂ℓ/∂f = softmax(f) Σy − y
//                  (cross-entropy; Σy = 1 for one-hot or probability targets)
//   poisson        ℓ = Σ_k e^{f_k} − y_k f_k + y_k log y_k − y_k   ∂ℓ/∂f = e^f − y
//                  (half Poisson deviance with log link, scikit-learn's loss='poisson')
//
// loss_forward_backward returns Σ_i w_i ℓ_i (accumulated in double) and, when dscores is given,
// writes dscores_i = scale · w_i · ∂ℓ_i/∂f_i, where the caller's scale turns the weighted sum
// into the objective it minimises (1/Σw for the mean, n/Σw for the lecture's sum).
//
// LossConventions reproduce two places where scikit-learn's numbers are not the textbook's
// (both off by default; its estimators switch them on):
//   clip_epsilon         when > 0, the log-loss *value* as scikit-learn computes it: from the
//                        probabilities (σ(f) = 1/(1 + e^−f), or the softmax over f − max f)
//                        clipped to [eps, 1 − eps] (its eps: the machine epsilon of their
//                        dtype), −Σ y log p (+ (1 − y) log(1 − p) for the logistic loss); the
//                        gradient is the unclipped one, as scikit-learn's is
//   sum_output_gradient  squared error's gradient is that of Σ_k ½(y_k − f_k)² (K times the
//                        gradient of the reported loss, which stays averaged over outputs)
#pragma once

#include <algorithm>
#include <cmath>

#include "activation.hpp"
#include "tensor.hpp"

namespace nncore {

enum class Loss { squared_error, logistic, softmax, poisson };

// y log y with the convention 0 log 0 = 0.
template <class T>
T xlogx(T y) {
  return y > T(0) ? y * std::log(y) : T(0);
}

struct LossConventions {
  double clip_epsilon = 0;
  bool sum_output_gradient = false;
};

// σ(f) = 1/(1 + e^−f) as SciPy's expit and scikit-learn write it (so a probability agrees with
// theirs to the last bit where the scores do); e^−f overflowing to ∞ gives 0, never NaN. Every
// prediction of a logistic output (response, proba, label) and scikit-learn's clipped log-loss
// value take it.
template <class T>
T expit(T f) {
  return T(1) / (T(1) + std::exp(-f));
}

template <class T>
T clip_probability(T p, double eps) {
  return std::min(std::max(p, static_cast<T>(eps)), static_cast<T>(1.0 - eps));
}

template <class T>
double loss_forward_backward(Loss loss, T* dscores, const T* scores, const T* targets,
                             const T* weights, Index B, Index K, T scale,
                             LossConventions conventions = {}) {
  double total = 0.0;
  for (Index i = 0; i < B; ++i) {
    const T* f = scores + i * K;
    const T* y = targets + i * K;
    T* df = dscores != nullptr ? dscores + i * K : nullptr;
    const T w = weights != nullptr ? weights[i] : T(1);
    const T gscale = scale * w;
    T li = 0;
    switch (loss) {
      case Loss::squared_error: {
        const T inv_k = T(1) / T(K);
        const T gfactor = conventions.sum_output_gradient ? gscale : gscale * inv_k;
        for (Index k = 0; k < K; ++k) {
          const T r = f[k] - y[k];
          li += r * r;
          if (df) df[k] = gfactor * r;
        }
        li *= T(0.5) * inv_k;
        break;
      }
      case Loss::logistic:
        for (Index k = 0; k < K; ++k) {
          if (conventions.clip_epsilon > 0) {
            const T p = clip_probability(expit(f[k]), conventions.clip_epsilon);
            li -= y[k] * std::log(p) + (T(1) - y[k]) * std::log(T(1) - p);
          } else {
            li += softplus_scalar(f[k]) - y[k] * f[k];
          }
          if (df) df[k] = gscale * (logistic_scalar(f[k]) - y[k]);
        }
        break;
      case Loss::softmax: {
        const T fmax = *std::max_element(f, f + K);
        T sum_exp = 0, sum_y = 0, y_dot_f = 0;
        for (Index k = 0; k < K; ++k) {
          sum_exp += std::exp(f[k] - fmax);
          sum_y += y[k];
          y_dot_f += y[k] * f[k];
        }
        const T log_sum_exp = fmax + std::log(sum_exp);
        li = sum_y * log_sum_exp - y_dot_f;
        if (conventions.clip_epsilon > 0) {
          li = 0;
          for (Index k = 0; k < K; ++k) {
            if (y[k] == T(0)) continue;  // scikit-learn's xlogy: 0 · log p = 0
            const T p = clip_probability(std::exp(f[k] - fmax) / sum_exp, conventions.clip_epsilon);
            li -= y[k] * std::log(p);
          }
        }
        if (df) {
          for (Index k = 0; k < K; ++k)
            df[k] = gscale * (std::exp(f[k] - log_sum_exp) * sum_y - y[k]);
        }
        break;
      }
      case Loss::poisson:
        for (Index k = 0; k < K; ++k) {
          const T mu = std::exp(f[k]);
          li += mu - y[k] * f[k] + xlogx(y[k]) - y[k];
          if (df) df[k] = gscale * (mu - y[k]);
        }
        break;
    }
    total += static_cast<double>(w) * static_cast<double>(li);
  }
  return total;
}

// The loss's inverse link: predictions on the response scale from scores f (B, K), into out
// (B, K), which may be f itself. f for squared error; e^f for Poisson; expit(f) for logistic;
// softmax from f − max f for softmax, as scikit-learn writes it.
template <class T>
void response(Loss loss, const T* f, Index B, Index K, T* out) {
  const Index size = B * K;
  switch (loss) {
    case Loss::squared_error:
      if (out != f) std::copy(f, f + size, out);
      return;
    case Loss::logistic:
      for (Index i = 0; i < size; ++i) out[i] = expit(f[i]);
      return;
    case Loss::poisson:
      for (Index i = 0; i < size; ++i) out[i] = std::exp(f[i]);
      return;
    case Loss::softmax:
      for (Index i = 0; i < B; ++i) {
        const T* fi = f + i * K;
        T* pi = out + i * K;
        const T fmax = *std::max_element(fi, fi + K);
        T sum = 0;
        for (Index k = 0; k < K; ++k) sum += (pi[k] = std::exp(fi[k] - fmax));
        for (Index k = 0; k < K; ++k) pi[k] /= sum;
      }
      return;
  }
}

}  // namespace nncore
