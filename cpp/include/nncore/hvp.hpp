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
#include <memory>
#include <string>
#include <vector>

#include "activation.hpp"
#include "batchnorm.hpp"
#include "loss.hpp"
#include "network.hpp"
#include "tensor.hpp"

namespace nncore {

// g''(z) elementwise (zero for identity, relu, leaky_relu), from z, act = g(z) and g'(z) as
// activation_backward gives it: the first derivatives come from that one place.
template <class T>
void activation_second_derivative(Matrix<T>& second, const Matrix<T>& z, const Matrix<T>& act,
                                  const Matrix<T>& first, Activation g) {
  auto a = act.array();
  switch (g) {
    case Activation::logistic:  // σ(1−σ)(1−2σ)
      second = (first.array() * (T(1) - T(2) * a)).matrix();
      return;
    case Activation::tanh:  // −2t(1−t²)
      second = (T(-2) * a * first.array()).matrix();
      return;
    case Activation::softplus:  // σ(1−σ), g' = σ
      second = (first.array() * (T(1) - first.array())).matrix();
      return;
    case Activation::gelu:  // φ(z)(2 − z²)
      second = z.unaryExpr([](T p) {
        const T pdf = T(0.5 * M_2_SQRTPI * M_SQRT1_2) * std::exp(T(-0.5) * p * p);
        return pdf * (T(2) - p * p);
      });
      return;
    default:
      second.setZero(z.rows(), z.cols());
  }
}

inline bool has_curvature(Activation g) {
  return g == Activation::logistic || g == Activation::tanh || g == Activation::softplus ||
         g == Activation::gelu;
}

// Rdscores (B, K) = scale·w_i ∇²_f ℓ_i · Rf_i, row by row.
template <class T>
void loss_hessian_vector(Loss loss, T* Rdscores, const T* scores, const T* Rscores,
                         const T* targets, const T* weights, Index B, Index K, T scale,
                         LossConventions conventions = {}) {
  // The Hessian of the loss whose gradient training follows (the clipped value has none).
  const T squared_divisor = conventions.sum_output_gradient ? T(1) : T(K);
  for (Index i = 0; i < B; ++i) {
    const T *f = scores + i * K, *rf = Rscores + i * K, *y = targets + i * K;
    T* out = Rdscores + i * K;
    const T gscale = scale * (weights != nullptr ? weights[i] : T(1));
    switch (loss) {
      case Loss::squared_error:
        for (Index k = 0; k < K; ++k) out[k] = gscale * rf[k] / squared_divisor;
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
    const double objective = base_pass(net, X, Y, w, n, scale, grad, with_penalty);
    tangent_pass(net, X, Y, w, n, scale, v, hv, with_penalty);
    return objective;
  }

  // HV (k, n_params) = H V for the k rows of V (k, n_params): the forward and backward passes at
  // θ are shared, only the tangents are per vector (each costs ~2/3 of a lone H·v).
  double apply_many(Network<T>& net, const T* X, const T* Y, const T* w, Index n, T scale,
                    const T* V, T* HV, Index k, bool with_penalty) {
    const double objective = base_pass(net, X, Y, w, n, scale, nullptr, with_penalty);
    const Index P = net.n_params();
    for (Index j = 0; j < k; ++j)
      tangent_pass(net, X, Y, w, n, scale, V + j * P, HV + j * P, with_penalty);
    return objective;
  }

 private:
  struct Layer {
    Matrix<T> pre, Rpre, xhat, Rxhat, z, Rz, act, Ract, gprime, gsecond;
    Matrix<T> dact, dz, dpre;             // the backward pass at θ: ∂J/∂act, ∂J/∂z, ∂J/∂pre
    RowVector<T> inv_std, m, mean_rpre, s2;  // s2 = mean(dxh ⊙ xhat) of the batch-norm backward
    const Matrix<T>* zp = nullptr;  // z: &z with batch norm, else &pre
    const Matrix<T>* Rzp = nullptr;
    const Matrix<T>* out = nullptr;  // the layer's output: &act, or z for identity
    const Matrix<T>* Rout = nullptr;
    const Matrix<T>* dpre_p = nullptr;  // &dpre with batch norm, else &dz
  };

  const SlabEntry& entry(Network<T>& net, Index t, ParamKind kind) const {
    return net.layout()[entries_[static_cast<size_t>(t)][static_cast<size_t>(kind)]];
  }
  ConstMatrixMap<T> matrix_of(Network<T>& net, const T* base, Index t, ParamKind kind) const {
    const SlabEntry& e = entry(net, t, kind);
    return ConstMatrixMap<T>(base + e.offset, e.rows, e.cols);
  }
  ConstRowVectorMap<T> row_of(Network<T>& net, const T* base, Index t, ParamKind kind) const {
    const SlabEntry& e = entry(net, t, kind);
    return ConstRowVectorMap<T>(base + e.offset, e.size());
  }
  MatrixMap<T> out_matrix(Network<T>& net, T* base, Index t, ParamKind kind) const {
    const SlabEntry& e = entry(net, t, kind);
    return MatrixMap<T>(base + e.offset, e.rows, e.cols);
  }
  RowVectorMap<T> out_row(Network<T>& net, T* base, Index t, ParamKind kind) const {
    const SlabEntry& e = entry(net, t, kind);
    return RowVectorMap<T>(base + e.offset, e.size());
  }

  // Forward and backward at θ, kept for the tangents; the gradient into grad when given.
  double base_pass(Network<T>& net, const T* X, const T* Y, const T* w, Index n, T scale,
                   T* grad, bool with_penalty) {
    const Index L = net.n_layers();
    require(n >= 1, "H·v needs at least one row");
    if (net.batch_norm())
      require(n >= 2, "H·v with batch normalisation needs at least 2 rows (batch statistics)");
    resize(net, n);
    const T* theta = net.params();
    for (Index t = 0; t < L; ++t) {
      Layer& s = layers_[static_cast<size_t>(t)];
      const auto W = matrix_of(net, theta, t, ParamKind::weight);
      forward_product(net, t, s.pre.data(), input_of(X, t), W.data(), n, false);
      // The forward pass of network.hpp, through the same functions: the bias before batch
      // norm, β added in the activation pass.
      const bool bn = net.has_batch_norm(t);
      const Activation g = net.activation_of(t);
      const Index D = s.pre.cols();
      if (bn) {
        s.pre.rowwise() += row_of(net, theta, t, ParamKind::bias);
        // The statistics as the network computes them (shifted by the first row).
        s.xhat = s.pre.rowwise() - s.pre.row(0);
        s.mean_rpre = s.xhat.colwise().sum() / T(n);  // the shifted mean, for a moment
        s.xhat.rowwise() -= s.mean_rpre;
        s.inv_std = ((s.xhat.colwise().squaredNorm() / T(n)).array() + T(kBatchNormEpsilon))
                        .rsqrt()
                        .matrix();
        s.xhat.array().rowwise() *= s.inv_std.array();
        s.z = s.xhat.array().rowwise() * row_of(net, theta, t, ParamKind::bn_gamma).array();
      }
      // Without batch norm z is pre itself; an identity activation's output is z itself.
      Matrix<T>& z = bn ? s.z : s.pre;
      const auto shift = row_of(net, theta, t, bn ? ParamKind::bn_beta : ParamKind::bias);
      s.zp = &z;
      if (g == Activation::identity) {
        bias_activation_forward<T>(as_map(z), as_map(z), shift, g);
        s.out = &z;
        continue;
      }
      s.act.resize(n, D);
      bias_activation_forward<T>(as_map(s.act), as_map(z), shift, g);
      s.gprime.setOnes(n, D);
      activation_backward<T>(as_map(s.gprime), as_const_map(z), as_const_map(s.act), g);
      if (has_curvature(g)) activation_second_derivative(s.gsecond, z, s.act, s.gprime, g);
      s.out = &s.act;
    }

    const Index K = net.n_outputs();
    Layer& last = layers_[static_cast<size_t>(L - 1)];  // linear: out is its z
    last.dact.resize(n, K);
    double objective = loss_forward_backward<T>(net.loss(), last.dact.data(), last.out->data(),
                                                Y, w, n, K, scale, net.loss_conventions());
    for (Index t = L - 1; t >= 0; --t) {
      Layer& s = layers_[static_cast<size_t>(t)];
      if (net.activation_of(t) != Activation::identity)
        s.dz = s.dact.cwiseProduct(s.gprime);
      const Matrix<T>& dz = net.activation_of(t) != Activation::identity ? s.dz : s.dact;
      s.dpre_p = &dz;
      if (net.has_batch_norm(t)) {
        const auto gamma = row_of(net, theta, t, ParamKind::bn_gamma);
        if (grad != nullptr) {
          out_row(net, grad, t, ParamKind::bn_gamma) = dz.cwiseProduct(s.xhat).colwise().sum();
          out_row(net, grad, t, ParamKind::bn_beta) = dz.colwise().sum();
        }
        s.dpre = dz.array().rowwise() * gamma.array();  // dxh, for a moment
        const RowVector<T> s1 = s.dpre.colwise().sum() / T(n);
        s.s2 = s.dpre.cwiseProduct(s.xhat).colwise().sum() / T(n);
        s.dpre.rowwise() -= s1;
        s.dpre -= (s.xhat.array().rowwise() * s.s2.array()).matrix();
        s.dpre.array().rowwise() *= s.inv_std.array();
        s.dpre_p = &s.dpre;
      }
      const Matrix<T>& dpre = *s.dpre_p;
      const auto W = matrix_of(net, theta, t, ParamKind::weight);
      if (grad != nullptr) {
        MatrixMap<T> gW = out_matrix(net, grad, t, ParamKind::weight);
        weight_product(net, t, gW.data(), input_of(X, t), dpre.data(), n, false);
        out_row(net, grad, t, ParamKind::bias) = dpre.colwise().sum();
        if (with_penalty && net.alpha() != T(0)) gW += (scale * net.alpha()) * W;
      }
      if (t > 0)
        input_product(net, t, layers_[static_cast<size_t>(t - 1)].dact.data(), dpre.data(),
                      W.data(), n, false);
    }
    if (with_penalty) objective += net.penalty();
    return objective;
  }

  // H v from the base pass: the tangent forward, the loss's Hessian, the tangent backward.
  void tangent_pass(Network<T>& net, const T* X, const T* Y, const T* w, Index n, T scale,
                    const T* v, T* hv, bool with_penalty) {
    const Index L = net.n_layers();
    const T* theta = net.params();
    for (Index t = 0; t < L; ++t) {
      Layer& s = layers_[static_cast<size_t>(t)];
      const auto VW = matrix_of(net, v, t, ParamKind::weight);
      forward_product(net, t, s.Rpre.data(), input_of(X, t), VW.data(), n, false);
      if (t > 0)
        forward_product(net, t, s.Rpre.data(), layers_[static_cast<size_t>(t - 1)].Rout->data(),
                        matrix_of(net, theta, t, ParamKind::weight).data(), n, true);
      s.Rpre.rowwise() += row_of(net, v, t, ParamKind::bias);
      const bool bn = net.has_batch_norm(t);
      if (bn) {
        const auto gamma = row_of(net, theta, t, ParamKind::bn_gamma);
        s.mean_rpre = s.Rpre.colwise().sum() / T(n);
        s.m = (s.xhat.cwiseProduct(s.Rpre)).colwise().sum() / T(n);
        s.Rxhat = s.Rpre.rowwise() - s.mean_rpre;
        s.Rxhat -= (s.xhat.array().rowwise() * s.m.array()).matrix();
        s.Rxhat.array().rowwise() *= s.inv_std.array();
        s.Rz = s.Rxhat.array().rowwise() * gamma.array();
        s.Rz += (s.xhat.array().rowwise() * row_of(net, v, t, ParamKind::bn_gamma).array())
                    .matrix();
        s.Rz.rowwise() += row_of(net, v, t, ParamKind::bn_beta);
      }
      s.Rzp = bn ? &s.Rz : &s.Rpre;
      if (net.activation_of(t) == Activation::identity) {
        s.Rout = s.Rzp;
        continue;
      }
      s.Ract = s.gprime.cwiseProduct(*s.Rzp);
      s.Rout = &s.Ract;
    }

    const Index K = net.n_outputs();
    const Layer& last = layers_[static_cast<size_t>(L - 1)];
    int cur = 0;  // Rdelta_[cur]: this layer's R{∂J/∂act}; the other: the layer below's
    loss_hessian_vector<T>(net.loss(), Rdelta_[cur].data(), last.out->data(),
                           last.Rout->data(), Y, w, n, K, scale, net.loss_conventions());
    for (Index t = L - 1; t >= 0; --t) {
      Layer& s = layers_[static_cast<size_t>(t)];
      const Index D = net.layer_sizes()[static_cast<size_t>(t + 1)];
      MatrixMap<T> Rdz(Rdelta_[cur].data(), n, D);
      const Activation g = net.activation_of(t);
      if (g != Activation::identity) {  // through g
        if (has_curvature(g))
          Rdz.array() = Rdz.array() * s.gprime.array() +
                        s.dact.array() * s.gsecond.array() * s.Rzp->array();
        else
          Rdz.array() *= s.gprime.array();
      }
      const Matrix<T>& dz = g != Activation::identity ? s.dz : s.dact;
      if (net.has_batch_norm(t)) {
        const auto gamma = row_of(net, theta, t, ParamKind::bn_gamma);
        const auto Vgamma = row_of(net, v, t, ParamKind::bn_gamma);
        out_row(net, hv, t, ParamKind::bn_gamma) =
            (Rdz.cwiseProduct(s.xhat) + dz.cwiseProduct(s.Rxhat)).colwise().sum();
        out_row(net, hv, t, ParamKind::bn_beta) = Rdz.colwise().sum();
        // R{dxh} = γ ⊙ R{dz} + V_γ ⊙ dz in place of R{dz}; dxh = γ ⊙ dz.
        Rdz.array() = Rdz.array().rowwise() * gamma.array() +
                      dz.array().rowwise() * Vgamma.array();
        const RowVector<T> r1 = Rdz.colwise().sum() / T(n);
        const RowVector<T> r2 =
            (Rdz.cwiseProduct(s.xhat) +
             (dz.array().rowwise() * gamma.array()).matrix().cwiseProduct(s.Rxhat))
                .colwise()
                .sum() /
            T(n);
        Rdz.rowwise() -= r1;
        Rdz -= (s.Rxhat.array().rowwise() * s.s2.array()).matrix();
        Rdz -= (s.xhat.array().rowwise() * r2.array()).matrix();
        Rdz.array().rowwise() *= s.inv_std.array();
        Rdz -= (s.dpre.array().rowwise() * (s.inv_std.array() * s.m.array())).matrix();
      }
      // Rdz now holds R{dpre}.
      const Matrix<T>& dpre = *s.dpre_p;
      MatrixMap<T> hvW = out_matrix(net, hv, t, ParamKind::weight);
      weight_product(net, t, hvW.data(), input_of(X, t), Rdz.data(), n, false);
      if (t > 0)
        weight_product(net, t, hvW.data(), layers_[static_cast<size_t>(t - 1)].Rout->data(),
                       dpre.data(), n, true);
      out_row(net, hv, t, ParamKind::bias) = Rdz.colwise().sum();
      if (with_penalty && net.alpha() != T(0))
        hvW += (scale * net.alpha()) * matrix_of(net, v, t, ParamKind::weight);
      if (t > 0) {  // R{∂J/∂act} of the layer below
        T* Rbelow = Rdelta_[1 - cur].data();
        input_product(net, t, Rbelow, Rdz.data(), matrix_of(net, theta, t, ParamKind::weight).data(),
                      n, false);
        input_product(net, t, Rbelow, dpre.data(), matrix_of(net, v, t, ParamKind::weight).data(),
                      n, true);
        cur = 1 - cur;
      }
    }
  }

  // The three products of layer t (input (n, D_in), weights (D_in, D_out)) on the training
  // kernel, with this object's packing space: out (n, D_out) (+)= inp · W; gW (+)= inpᵀ · d for
  // d (n, D_out); below (n, D_in) (+)= d · Wᵀ.
  void forward_product(Network<T>& net, Index t, T* out, const T* inp, const T* W, Index n,
                       bool accumulate) {
    const Index din = net.layer_sizes()[static_cast<size_t>(t)],
                dout = net.layer_sizes()[static_cast<size_t>(t + 1)];
    matmul<Eigen::RowMajor, Eigen::RowMajor>(&gemm_[static_cast<size_t>(t)]->forward, out, dout,
                                             inp, din, W, dout, n, dout, din, accumulate);
  }
  void weight_product(Network<T>& net, Index t, T* gW, const T* inp, const T* d, Index n,
                      bool accumulate) {
    const Index din = net.layer_sizes()[static_cast<size_t>(t)],
                dout = net.layer_sizes()[static_cast<size_t>(t + 1)];
    matmul<Eigen::ColMajor, Eigen::RowMajor>(&*gemm_[static_cast<size_t>(t)]->weight_grad, gW,
                                             dout, inp, din, d, dout, din, dout, n, accumulate);
  }
  void input_product(Network<T>& net, Index t, T* below, const T* d, const T* W, Index n,
                     bool accumulate) {
    const Index din = net.layer_sizes()[static_cast<size_t>(t)],
                dout = net.layer_sizes()[static_cast<size_t>(t + 1)];
    matmul<Eigen::RowMajor, Eigen::ColMajor>(&*gemm_[static_cast<size_t>(t)]->input_grad, below,
                                             din, d, dout, W, dout, n, din, dout, accumulate);
  }
  // Layer t's input in the base pass: X itself for the first.
  const T* input_of(const T* X, Index t) const {
    return t == 0 ? X : layers_[static_cast<size_t>(t - 1)].out->data();
  }

  static MatrixMap<T> as_map(Matrix<T>& m) { return MatrixMap<T>(m.data(), m.rows(), m.cols()); }
  static ConstMatrixMap<T> as_const_map(const Matrix<T>& m) {
    return ConstMatrixMap<T>(m.data(), m.rows(), m.cols());
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
      s.dact.resize(n, D);
    }
    for (int i = 0; i < 2; ++i) Rdelta_[i].resize(n * widest);
    const int threads = net.threads();
    if (gemm_rows_ != n || gemm_threads_ != threads || gemm_.size() != layers_.size()) {
      gemm_.clear();
      for (Index t = 0; t < L; ++t)
        gemm_.push_back(std::make_unique<DenseBuffers<T>>(
            n, net.layer_sizes()[static_cast<size_t>(t)],
            net.layer_sizes()[static_cast<size_t>(t + 1)], threads));
      gemm_rows_ = n;
      gemm_threads_ = threads;
    }
  }

  std::vector<Layer> layers_;
  std::vector<std::array<Index, 4>> entries_;  // slab entry of (weight, bias, γ, β) per layer
  Vector<T> Rdelta_[2];  // ping-pong: one layer's tangent is read while the next is written
  std::vector<std::unique_ptr<DenseBuffers<T>>> gemm_;  // per layer, for gemm_rows_ rows
  Index gemm_rows_ = -1;
  int gemm_threads_ = 0;
};

}  // namespace nncore
