// Exact Hessian-vector products of the training objective: Pearlmutter's R-operator, i.e. the
// forward pass and the backward pass differentiated once more along a direction v of the
// parameters (forward-over-reverse), for every layer, activation and loss the network has.
//
// Objective (as training minimises it, on the n rows given as one batch):
//   J(θ) = scale · (Σ_i w_i ℓ_i(θ) + α/2 Σ_t ‖W_t‖²)            (penalty optional: chunking)
// apply() returns H v = ∇²J(θ) v, and ∇J(θ) from the same pass. R{x} is the directional
// derivative of x along v; V_W, V_b, V_γ, V_β are v's blocks, laid out as the parameter slab.
//
//   forward   pre = in·W + b          R{pre} = R{in}·W + in·V_W + V_b
//             (batch norm, batch statistics over the n rows: μ, σ² depend on θ)
//             xhat = (pre − μ)·s, s = 1/√(σ² + ε)
//             R{xhat} = (R{pre} − mean R{pre} − xhat ⊙ m) ⊙ s,   m = mean(xhat ⊙ R{pre})
//             z = γ ⊙ xhat + β        R{z} = V_γ ⊙ xhat + γ ⊙ R{xhat} + V_β
//             act = g(z)              R{act} = g'(z) ⊙ R{z}
//   loss      δ_L = scale·w_i ∂ℓ/∂f   R{δ_L} = scale·w_i ∇²_f ℓ · R{f}
//   backward  dz = dact ⊙ g'(z)       R{dz} = R{dact} ⊙ g'(z) + dact ⊙ g''(z) ⊙ R{z}
//             (batch norm) dxh = γ ⊙ dz,  dpre = (dxh − mean dxh − xhat ⊙ mean(dxh ⊙ xhat)) ⊙ s
//             R{dpre} = (R{dxh} − mean R{dxh} − R{xhat} ⊙ mean(dxh ⊙ xhat)
//                        − xhat ⊙ mean(R{dxh} ⊙ xhat + dxh ⊙ R{xhat})) ⊙ s − dpre ⊙ s ⊙ m
//             (R{s} = −s²·m)          dγ = Σ dz ⊙ xhat,  (Hv)_γ = Σ R{dz} ⊙ xhat + dz ⊙ R{xhat}
//             dW = inᵀ·dpre           (Hv)_W = R{in}ᵀ·dpre + inᵀ·R{dpre} + scale·α·V_W
//             dact_prev = dpre·Wᵀ     R{dact_prev} = R{dpre}·Wᵀ + dpre·V_Wᵀ
// Loss Hessians ∇²_f ℓ: squared error I/K; logistic diag σ(1−σ); softmax Σy·(diag p − p pᵀ);
// Poisson diag e^f. Activation second derivatives: 0 for identity, relu, leaky_relu (their kinks
// have measure zero); logistic σ(1−σ)(1−2σ); tanh −2t(1−t²); softplus σ(1−σ); gelu φ(z)(2 − z²).
//
// A bias feeding a batch-normalised layer cancels in xhat: its rows and columns of H are zero.
// The first layer's R{in} is zero (X does not depend on θ); ∂ℓ/∂x is never formed.
// Buffers are sized at the first call for n rows and reused; the network is only read.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "activation.hpp"
#include "batchnorm.hpp"
#include "loss.hpp"
#include "network.hpp"
#include "tensor.hpp"

namespace nncore {

// g'(z) and g''(z) elementwise, from z and act = g(z) (whichever is cheaper).
template <class T>
void activation_derivatives(Matrix<T>& first, Matrix<T>* second, const Matrix<T>& z,
                            const Matrix<T>& act, Activation g) {
  auto a = act.array();
  switch (g) {
    case Activation::identity:
      first.setOnes(z.rows(), z.cols());
      if (second) second->setZero(z.rows(), z.cols());
      return;
    case Activation::relu:
      first = (z.array() > T(0)).template cast<T>().matrix();
      if (second) second->setZero(z.rows(), z.cols());
      return;
    case Activation::leaky_relu:
      first = ((z.array() > T(0)).template cast<T>() * T(1 - kLeakyReluSlope) +
               T(kLeakyReluSlope)).matrix();
      if (second) second->setZero(z.rows(), z.cols());
      return;
    case Activation::logistic:
      first = (a * (T(1) - a)).matrix();
      if (second) *second = (first.array() * (T(1) - T(2) * a)).matrix();
      return;
    case Activation::tanh:
      first = (T(1) - a.square()).matrix();
      if (second) *second = (T(-2) * a * first.array()).matrix();
      return;
    case Activation::softplus:
      first = z.unaryExpr([](T p) { return logistic_scalar(p); });
      if (second) *second = (first.array() * (T(1) - first.array())).matrix();
      return;
    case Activation::gelu:
      first = z.unaryExpr([](T p) { return gelu_derivative_scalar(p); });
      if (second)
        *second = z.unaryExpr([](T p) {
          const T pdf = T(0.5 * M_2_SQRTPI * M_SQRT1_2) * std::exp(T(-0.5) * p * p);
          return pdf * (T(2) - p * p);
        });
      return;
  }
}

inline bool has_curvature(Activation g) {
  return g == Activation::logistic || g == Activation::tanh || g == Activation::softplus ||
         g == Activation::gelu;
}

// Rdscores (B, K) = scale·w_i ∇²_f ℓ_i · Rf_i, row by row.
template <class T>
void loss_hessian_vector(Loss loss, T* Rdscores, const T* scores, const T* Rscores,
                         const T* targets, const T* weights, Index B, Index K, T scale) {
  for (Index i = 0; i < B; ++i) {
    const T *f = scores + i * K, *rf = Rscores + i * K, *y = targets + i * K;
    T* out = Rdscores + i * K;
    const T gscale = scale * (weights != nullptr ? weights[i] : T(1));
    switch (loss) {
      case Loss::squared_error:
        for (Index k = 0; k < K; ++k) out[k] = gscale * rf[k] / T(K);
        break;
      case Loss::logistic:
        for (Index k = 0; k < K; ++k) {
          const T s = logistic_scalar(f[k]);
          out[k] = gscale * s * (T(1) - s) * rf[k];
        }
        break;
      case Loss::softmax: {
        const T fmax = *std::max_element(f, f + K);
        T sum_exp = 0, sum_y = 0;
        for (Index k = 0; k < K; ++k) {
          sum_exp += std::exp(f[k] - fmax);
          sum_y += y[k];
        }
        T p_dot_rf = 0;
        for (Index k = 0; k < K; ++k) {
          out[k] = std::exp(f[k] - fmax) / sum_exp;  // p_k, for a moment
          p_dot_rf += out[k] * rf[k];
        }
        for (Index k = 0; k < K; ++k) out[k] = gscale * sum_y * out[k] * (rf[k] - p_dot_rf);
        break;
      }
      case Loss::poisson:
        for (Index k = 0; k < K; ++k) out[k] = gscale * std::exp(f[k]) * rf[k];
        break;
    }
  }
}

template <class T>
class HessianVectorProduct {
 public:
  // hv (n_params) = H v and, when grad is given, grad (n_params) = ∇J, for X (n, d), Y (n, K),
  // w (n) or null, v (n_params). Returns Σ w ℓ (+ α/2 Σ‖W‖² with the penalty), unscaled.
  double apply(Network<T>& net, const T* X, const T* Y, const T* w, Index n, T scale,
               const T* v, T* hv, T* grad, bool with_penalty) {
    const Index L = net.n_layers();
    require(n >= 1, "H·v needs at least one row");
    if (net.batch_norm())
      require(n >= 2, "H·v with batch normalisation needs at least 2 rows (batch statistics)");
    resize(net, n);
    const T* theta = net.params();
    const auto& layout = net.layout();
    const auto entry = [&](Index t, ParamKind kind) {
      return layout[entries_[static_cast<size_t>(t)][static_cast<size_t>(kind)]];
    };
    auto matrix_of = [&](const T* base, Index t, ParamKind kind) {
      const SlabEntry& e = entry(t, kind);
      return ConstMatrixMap<T>(base + e.offset, e.rows, e.cols);
    };
    auto row_of = [&](const T* base, Index t, ParamKind kind) {
      const SlabEntry& e = entry(t, kind);
      return ConstRowVectorMap<T>(base + e.offset, e.size());
    };
    auto out_matrix = [&](T* base, Index t, ParamKind kind) {
      const SlabEntry& e = entry(t, kind);
      return MatrixMap<T>(base + e.offset, e.rows, e.cols);
    };
    auto out_row = [&](T* base, Index t, ParamKind kind) {
      const SlabEntry& e = entry(t, kind);
      return RowVectorMap<T>(base + e.offset, e.size());
    };

    // ---- forward and its tangent ----
    const ConstMatrixMap<T> Xmap(X, n, net.n_inputs());
    for (Index t = 0; t < L; ++t) {
      Layer& s = layers_[static_cast<size_t>(t)];
      const auto W = matrix_of(theta, t, ParamKind::weight);
      const auto VW = matrix_of(v, t, ParamKind::weight);
      if (t == 0) {
        s.pre.noalias() = Xmap * W;
        s.Rpre.noalias() = Xmap * VW;
      } else {
        const Layer& p = layers_[static_cast<size_t>(t - 1)];
        s.pre.noalias() = *p.out * W;
        s.Rpre.noalias() = *p.out * VW;
        s.Rpre.noalias() += *p.Rout * W;
      }
      s.pre.rowwise() += row_of(theta, t, ParamKind::bias);
      s.Rpre.rowwise() += row_of(v, t, ParamKind::bias);
      if (net.has_batch_norm(t)) {
        const auto gamma = row_of(theta, t, ParamKind::bn_gamma);
        const auto Vgamma = row_of(v, t, ParamKind::bn_gamma);
        // The statistics as the network computes them (shifted by the first row).
        s.xhat = s.pre.rowwise() - s.pre.row(0);
        s.mean_rpre = s.xhat.colwise().sum() / T(n);  // the shifted mean, for a moment
        s.xhat.rowwise() -= s.mean_rpre;
        s.inv_std = ((s.xhat.colwise().squaredNorm() / T(n)).array() + T(kBatchNormEpsilon))
                        .rsqrt()
                        .matrix();
        s.xhat.array().rowwise() *= s.inv_std.array();
        s.mean_rpre = s.Rpre.colwise().sum() / T(n);
        s.m = (s.xhat.cwiseProduct(s.Rpre)).colwise().sum() / T(n);
        s.Rxhat = s.Rpre.rowwise() - s.mean_rpre;
        s.Rxhat -= (s.xhat.array().rowwise() * s.m.array()).matrix();
        s.Rxhat.array().rowwise() *= s.inv_std.array();
        s.z = s.xhat.array().rowwise() * gamma.array();
        s.z.rowwise() += row_of(theta, t, ParamKind::bn_beta);
        s.Rz = s.Rxhat.array().rowwise() * gamma.array();
        s.Rz += (s.xhat.array().rowwise() * Vgamma.array()).matrix();
        s.Rz.rowwise() += row_of(v, t, ParamKind::bn_beta);
      }
      // Without batch norm z is pre itself; an identity activation's output is z itself.
      const bool bn = net.has_batch_norm(t);
      s.zp = bn ? &s.z : &s.pre;
      s.Rzp = bn ? &s.Rz : &s.Rpre;
      const Activation g = net.activation_of(t);
      if (g == Activation::identity) {
        s.out = s.zp;
        s.Rout = s.Rzp;
        continue;
      }
      apply_activation(s.act, *s.zp, g);
      activation_derivatives(s.gprime, has_curvature(g) ? &s.gsecond : nullptr, *s.zp, s.act, g);
      s.Ract = s.gprime.cwiseProduct(*s.Rzp);
      s.out = &s.act;
      s.Rout = &s.Ract;
    }

    // ---- loss: δ and R{δ} on the scores ----
    const Layer& last = layers_[static_cast<size_t>(L - 1)];  // linear: out is its z
    const Index K = net.n_outputs();
    int cur = 0;  // delta_[cur], Rdelta_[cur]: this layer's; the other pair: the layer below's
    double objective = loss_forward_backward<T>(net.loss(), delta_[cur].data(),
                                                last.out->data(), Y, w, n, K, scale);
    loss_hessian_vector<T>(net.loss(), Rdelta_[cur].data(), last.out->data(),
                           last.Rout->data(), Y, w, n, K, scale);

    // ---- backward and its tangent ----
    // delta_ / Rdelta_ hold ∂J/∂act_t and R{·} on entry to layer t (the last layer's act is its
    // z: the output layer is linear).
    for (Index t = L - 1; t >= 0; --t) {
      Layer& s = layers_[static_cast<size_t>(t)];
      const Index D = net.layer_sizes()[static_cast<size_t>(t + 1)];
      MatrixMap<T> dz(delta_[cur].data(), n, D), Rdz(Rdelta_[cur].data(), n, D);
      if (net.activation_of(t) != Activation::identity) {  // through g
        if (has_curvature(net.activation_of(t)))
          Rdz.array() = Rdz.array() * s.gprime.array() +
                        dz.array() * s.gsecond.array() * s.Rzp->array();
        else
          Rdz.array() *= s.gprime.array();
        dz.array() *= s.gprime.array();
      }
      if (net.has_batch_norm(t)) {
        const auto gamma = row_of(theta, t, ParamKind::bn_gamma);
        const auto Vgamma = row_of(v, t, ParamKind::bn_gamma);
        if (grad != nullptr) {
          out_row(grad, t, ParamKind::bn_gamma) = dz.cwiseProduct(s.xhat).colwise().sum();
          out_row(grad, t, ParamKind::bn_beta) = dz.colwise().sum();
        }
        out_row(hv, t, ParamKind::bn_gamma) =
            (Rdz.cwiseProduct(s.xhat) + dz.cwiseProduct(s.Rxhat)).colwise().sum();
        out_row(hv, t, ParamKind::bn_beta) = Rdz.colwise().sum();
        // dxh = γ ⊙ dz, R{dxh} = γ ⊙ R{dz} + V_γ ⊙ dz, in place of dz and R{dz}.
        Rdz.array() = Rdz.array().rowwise() * gamma.array() +
                      dz.array().rowwise() * Vgamma.array();
        dz.array().rowwise() *= gamma.array();
        const RowVector<T> s1 = dz.colwise().sum() / T(n);
        const RowVector<T> s2 = dz.cwiseProduct(s.xhat).colwise().sum() / T(n);
        const RowVector<T> r1 = Rdz.colwise().sum() / T(n);
        const RowVector<T> r2 =
            (Rdz.cwiseProduct(s.xhat) + dz.cwiseProduct(s.Rxhat)).colwise().sum() / T(n);
        // dpre and R{dpre}, R{dpre} first (it reads dxh).
        Rdz.rowwise() -= r1;
        Rdz -= (s.Rxhat.array().rowwise() * s2.array()).matrix();
        Rdz -= (s.xhat.array().rowwise() * r2.array()).matrix();
        Rdz.array().rowwise() *= s.inv_std.array();
        dz.rowwise() -= s1;
        dz -= (s.xhat.array().rowwise() * s2.array()).matrix();
        dz.array().rowwise() *= s.inv_std.array();
        Rdz -= (dz.array().rowwise() * (s.inv_std.array() * s.m.array())).matrix();
      }
      // dz, Rdz now hold dpre and R{dpre}.
      MatrixMap<T> hvW = out_matrix(hv, t, ParamKind::weight);
      if (t == 0) {
        hvW.noalias() = Xmap.transpose() * Rdz;
        if (grad != nullptr) out_matrix(grad, t, ParamKind::weight).noalias() = Xmap.transpose() * dz;
      } else {
        const Layer& p = layers_[static_cast<size_t>(t - 1)];
        hvW.noalias() = p.out->transpose() * Rdz;
        hvW.noalias() += p.Rout->transpose() * dz;
        if (grad != nullptr)
          out_matrix(grad, t, ParamKind::weight).noalias() = p.out->transpose() * dz;
      }
      out_row(hv, t, ParamKind::bias) = Rdz.colwise().sum();
      if (grad != nullptr) out_row(grad, t, ParamKind::bias) = dz.colwise().sum();
      const auto W = matrix_of(theta, t, ParamKind::weight);
      if (with_penalty && net.alpha() != T(0)) {
        hvW += (scale * net.alpha()) * matrix_of(v, t, ParamKind::weight);
        if (grad != nullptr) out_matrix(grad, t, ParamKind::weight) += (scale * net.alpha()) * W;
      }
      if (t > 0) {  // into the layer below: ∂J/∂act_{t-1} and its tangent
        const Index Din = net.layer_sizes()[static_cast<size_t>(t)];
        MatrixMap<T> below(delta_[1 - cur].data(), n, Din), Rbelow(Rdelta_[1 - cur].data(), n, Din);
        Rbelow.noalias() = Rdz * W.transpose();
        Rbelow.noalias() += dz * matrix_of(v, t, ParamKind::weight).transpose();
        below.noalias() = dz * W.transpose();
        cur = 1 - cur;
      }
    }
    if (with_penalty) objective += net.penalty();
    return objective;
  }

 private:
  struct Layer {
    Matrix<T> pre, Rpre, xhat, Rxhat, z, Rz, act, Ract, gprime, gsecond;
    RowVector<T> inv_std, m, mean_rpre;
    const Matrix<T>* zp = nullptr;  // z: &z with batch norm, else &pre
    const Matrix<T>* Rzp = nullptr;
    const Matrix<T>* out = nullptr;  // the layer's output: &act, or z for identity
    const Matrix<T>* Rout = nullptr;
  };

  static void apply_activation(Matrix<T>& act, const Matrix<T>& z, Activation g) {
    switch (g) {
      case Activation::identity: act = z; return;
      case Activation::relu: act = z.array().max(T(0)).matrix(); return;
      case Activation::logistic: act = z.unaryExpr([](T p) { return logistic_scalar(p); }); return;
      case Activation::tanh: act = z.array().tanh().matrix(); return;
      case Activation::leaky_relu:
        act = z.unaryExpr([](T p) { return p > T(0) ? p : T(kLeakyReluSlope) * p; });
        return;
      case Activation::softplus: act = z.unaryExpr([](T p) { return softplus_scalar(p); }); return;
      case Activation::gelu: act = z.unaryExpr([](T p) { return gelu_scalar(p); }); return;
    }
  }

  void resize(Network<T>& net, Index n) {
    const Index L = net.n_layers();
    if (static_cast<Index>(layers_.size()) != L) {
      layers_.assign(static_cast<size_t>(L), Layer{});
      entries_.assign(static_cast<size_t>(L), {-1, -1, -1, -1});
      const auto& kinds = net.entry_kinds();
      for (size_t e = 0; e < kinds.size(); ++e)
        entries_[static_cast<size_t>(kinds[e].second)][static_cast<size_t>(kinds[e].first)] =
            static_cast<Index>(e);
    }
    Index widest = 0;
    for (Index t = 0; t < L; ++t) {
      const Index D = net.layer_sizes()[static_cast<size_t>(t + 1)];
      widest = std::max(widest, std::max(D, net.layer_sizes()[static_cast<size_t>(t)]));
      Layer& s = layers_[static_cast<size_t>(t)];
      s.pre.resize(n, D);
      s.Rpre.resize(n, D);
    }
    for (int i = 0; i < 2; ++i) {
      delta_[i].resize(n * widest);
      Rdelta_[i].resize(n * widest);
    }
  }

  std::vector<Layer> layers_;
  std::vector<std::array<Index, 4>> entries_;  // slab entry of (weight, bias, γ, β) per layer
  Vector<T> delta_[2], Rdelta_[2];  // ping-pong: one layer's pair is read while the next is written
};

}  // namespace nncore
