// Dense (fully connected) layer: forward and backward side by side.
//
//   forward:   pre (B, D_out) = inp (B, D_in) · W (D_in, D_out)
//              (the bias is added in the same pass as the activation, see activation.hpp)
//   backward:  dW (D_in, D_out) += inpᵀ · dpre      db (1, D_out) += Σ_rows dpre
//              dinp (B, D_in)    = dpre · Wᵀ         -- only when dinp is given: the first layer
//              passes none, since ∂L/∂x is never needed to train.
// The lecture writes p = W a with W (D_out, D_in); our W is its transpose, the layout of
// scikit-learn's coefs_[i].
#pragma once

#include "tensor.hpp"

namespace nncore {

template <class T>
void dense_forward(MatrixMap<T> pre, ConstMatrixMap<T> inp, ConstMatrixMap<T> W) {
  pre.noalias() = inp * W;
}

// Gradients accumulate (+=) into buffers the caller zeroes once per step.
template <class T>
void dense_backward(MatrixMap<T>* dinp, MatrixMap<T> dW, RowVectorMap<T> db,
                    ConstMatrixMap<T> dpre, ConstMatrixMap<T> inp, ConstMatrixMap<T> W) {
  dW.noalias() += inp.transpose() * dpre;
  db.noalias() += dpre.colwise().sum();
  if (dinp != nullptr) dinp->noalias() = dpre * W.transpose();
}

}  // namespace nncore
