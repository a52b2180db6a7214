// Dense (fully connected) layer: forward and backward side by side.
//
//   forward:   pre (B, D_out) = inp (B, D_in) · W (D_in, D_out)
//              (the bias is added in the same pass as the activation, see activation.hpp)
//   backward:  dW (D_in, D_out) += inpᵀ · dpre      db (1, D_out) += Σ_rows dpre
//              dinp (B, D_in)    = dpre · Wᵀ         -- only when dinp is given: the first layer
//              passes none, since ∂L/∂x is never needed to train.
// The lecture writes p = W a with W (D_out, D_in); our W is its transpose, the layout of
// scikit-learn's coefs_[i].
//
// The three products run through Eigen's GEMM kernel with packing buffers allocated once per
// layer (GemmBuffers), not on every call: above 128 KB Eigen would otherwise malloc them on each
// product, i.e. inside every training step. Without buffers (nullptr) the plain Eigen
// expressions are used — the reference path the tests compare against.
#pragma once

#include <memory>

#include "tensor.hpp"

namespace nncore {

// Eigen's packing buffers for C (rows, cols) = A (rows, depth) · B (depth, cols), row-major C,
// sized for the largest rows/cols/depth the layer will see.
template <class T>
class GemmBuffers {
 public:
  GemmBuffers(Index rows, Index cols, Index depth) : space_(rows, cols, depth, 1, true) {
    space_.allocateAll();
  }
  Eigen::internal::level3_blocking<T, T>& blocking() { return space_; }

 private:
  Eigen::internal::gemm_blocking_space<Eigen::RowMajor, T, T, Eigen::Dynamic, Eigen::Dynamic,
                                       Eigen::Dynamic, 1, false>
      space_;
};

// C (rows, cols, row-major, leading dimension ldc) += A · B, where A and B are stored in the
// given orders with leading dimensions lda, ldb.
template <class T, int AOrder, int BOrder>
void gemm_accumulate(T* C, Index ldc, const T* A, Index lda, const T* B, Index ldb, Index rows,
                     Index cols, Index depth, GemmBuffers<T>& buffers) {
  Eigen::internal::general_matrix_matrix_product<Index, T, AOrder, false, T, BOrder, false,
                                                 Eigen::RowMajor, 1>::run(rows, cols, depth, A, lda,
                                                                          B, ldb, C, 1, ldc, T(1),
                                                                          buffers.blocking(),
                                                                          nullptr);
}

// Eigen sends these shapes to GEMV or to a coefficient loop, neither of which allocates.
inline bool uses_gemm(Index rows, Index cols, Index depth) {
  return rows > 1 && cols > 1 && rows + cols + depth >= EIGEN_GEMM_TO_COEFFBASED_THRESHOLD;
}

// Packing buffers of one layer's three products, for batches of up to `rows` rows.
template <class T>
struct DenseBuffers {
  DenseBuffers(Index rows, Index d_in, Index d_out)
      : forward(rows, d_out, d_in), weight_grad(d_in, d_out, rows), input_grad(rows, d_in, d_out) {}
  GemmBuffers<T> forward, weight_grad, input_grad;
};

template <class T>
void dense_forward(MatrixMap<T> pre, ConstMatrixMap<T> inp, ConstMatrixMap<T> W,
                   DenseBuffers<T>* buffers = nullptr) {
  const Index B = inp.rows(), d_in = inp.cols(), d_out = W.cols();
  if (buffers == nullptr || !uses_gemm(B, d_out, d_in)) {
    pre.noalias() = inp * W;
    return;
  }
  pre.setZero();
  gemm_accumulate<T, Eigen::RowMajor, Eigen::RowMajor>(
      pre.data(), d_out, inp.data(), d_in, W.data(), d_out, B, d_out, d_in, buffers->forward);
}

// Gradients accumulate (+=) into buffers the caller zeroes once per step.
template <class T>
void dense_backward(MatrixMap<T>* dinp, MatrixMap<T> dW, RowVectorMap<T> db, ConstMatrixMap<T> dpre,
                    ConstMatrixMap<T> inp, ConstMatrixMap<T> W,
                    DenseBuffers<T>* buffers = nullptr) {
  const Index B = inp.rows(), d_in = inp.cols(), d_out = W.cols();
  if (buffers != nullptr && uses_gemm(d_in, d_out, B)) {
    // inpᵀ: the row-major (B, D_in) block read as column-major (D_in, B)
    gemm_accumulate<T, Eigen::ColMajor, Eigen::RowMajor>(dW.data(), d_out, inp.data(), d_in,
                                                         dpre.data(), d_out, d_in, d_out, B,
                                                         buffers->weight_grad);
  } else {
    dW.noalias() += inp.transpose() * dpre;
  }
  db.noalias() += dpre.colwise().sum();
  if (dinp == nullptr) return;
  if (buffers != nullptr && uses_gemm(B, d_in, d_out)) {
    dinp->setZero();
    // Wᵀ: the row-major (D_in, D_out) matrix read as column-major (D_out, D_in)
    gemm_accumulate<T, Eigen::RowMajor, Eigen::ColMajor>(dinp->data(), d_in, dpre.data(), d_out,
                                                         W.data(), d_out, B, d_in, d_out,
                                                         buffers->input_grad);
  } else {
    dinp->noalias() = dpre * W.transpose();
  }
}

}  // namespace nncore
