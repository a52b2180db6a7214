// Batch normalisation per feature over the rows of a batch, between a dense layer and its
// activation. Conventions of PyTorch's BatchNorm1d: ε = 1e-5, running averages with momentum 0.1,
// the batch variance biased (÷B) when normalising and unbiased (÷(B−1)) in the running average.
//
//   train:     μ = mean_rows(inp), σ² = mean_rows((inp − μ)²), inv_std = 1/√(σ² + ε)
//              xhat = (inp − μ) ⊙ inv_std,   out = γ ⊙ xhat   (β is added with the activation)
//              running_mean ← (1−m) running_mean + m μ,  running_var ← (1−m) running_var + m σ²
//              B/(B−1)
//   eval:      out = γ ⊙ (inp − running_mean)/√(running_var + ε)
//   backward:  dγ = Σ_rows dout ⊙ xhat,    dβ = Σ_rows dout
//              dinp = (γ ⊙ inv_std / B) ⊙ (B dout − Σ_rows dout − xhat ⊙ Σ_rows(dout ⊙ xhat))
// Shapes: inp, xhat, out, dout, dinp (B, D); γ, β, μ, σ², inv_std, running stats (1, D).
// β is a parameter of this layer but its add is fused into the activation pass (activation.hpp),
// so `out` here is γ ⊙ xhat.
#pragma once

#include <cmath>
#include <string>

#include "tensor.hpp"

namespace nncore {

constexpr double kBatchNormEpsilon = 1e-5;
constexpr double kBatchNormMomentum = 0.1;

template <class T>
void batchnorm_forward_train(MatrixMap<T> out, MatrixMap<T> xhat, RowVectorMap<T> mean,
                             RowVectorMap<T> var, RowVectorMap<T> inv_std, ConstMatrixMap<T> inp,
                             ConstRowVectorMap<T> gamma) {
  const Index B = inp.rows();
  require(B >= 2, [&] {
    return std::string(
        "batch normalisation in training mode needs at least 2 rows per batch, got " +
        std::to_string(B));
  });
  // Statistics of the rows shifted by the first row: exact when a feature is constant over the
  // batch (its variance is then 0 and 1/√(σ²+ε) amplifies any rounding in the mean by ~300),
  // and less cancellation in the variance otherwise.
  xhat = inp.rowwise() - inp.row(0);
  inv_std = xhat.colwise().sum() / T(B);  // the shifted mean, kept in inv_std for a moment
  xhat.rowwise() -= inv_std;
  mean = inp.row(0) + inv_std;
  var = xhat.colwise().squaredNorm() / T(B);
  inv_std = (var.array() + T(kBatchNormEpsilon)).rsqrt().matrix();
  for (Index i = 0; i < B; ++i) {
    xhat.row(i) = xhat.row(i).cwiseProduct(inv_std);
    out.row(i) = xhat.row(i).cwiseProduct(gamma);
  }
}

template <class T>
void batchnorm_update_running(RowVectorMap<T> running_mean, RowVectorMap<T> running_var,
                              ConstRowVectorMap<T> mean, ConstRowVectorMap<T> var, Index B) {
  const T m = T(kBatchNormMomentum);
  running_mean = (T(1) - m) * running_mean + m * mean;
  running_var = (T(1) - m) * running_var + (m * T(B) / T(B - 1)) * var;
}

template <class T>
void batchnorm_forward_eval(MatrixMap<T> out, ConstMatrixMap<T> inp,
                            ConstRowVectorMap<T> running_mean, ConstRowVectorMap<T> running_var,
                            ConstRowVectorMap<T> gamma) {
  // One fused scale per feature: γ / √(running_var + ε).
  for (Index i = 0; i < inp.rows(); ++i)
    out.row(i) = ((inp.row(i) - running_mean).array() * gamma.array() *
                  (running_var.array() + T(kBatchNormEpsilon)).rsqrt())
                     .matrix();
}

// dinp may be the same buffer as dout: each element is read before it is written.
// sum_dout and sum_dout_xhat (1, D) are workspace scratch, so the backward pass allocates nothing.
template <class T>
void batchnorm_backward(MatrixMap<T> dinp, RowVectorMap<T> dgamma, RowVectorMap<T> dbeta,
                        RowVectorMap<T> sum_dout, RowVectorMap<T> sum_dout_xhat,
                        ConstMatrixMap<T> dout, ConstMatrixMap<T> xhat,
                        ConstRowVectorMap<T> inv_std, ConstRowVectorMap<T> gamma) {
  const Index B = dout.rows();
  sum_dout = dout.colwise().sum();
  sum_dout_xhat = dout.cwiseProduct(xhat).colwise().sum();
  dbeta = sum_dout;
  dgamma = sum_dout_xhat;
  for (Index i = 0; i < B; ++i)
    dinp.row(i) = (T(B) * dout.row(i) - sum_dout - xhat.row(i).cwiseProduct(sum_dout_xhat))
                      .cwiseProduct(gamma.cwiseProduct(inv_std)) /
                  T(B);
}

}  // namespace nncore
