// Dense (fully connected) layer: forward and backward side by side.
//
//   forward:   pre (B, D_out) = inp (B, D_in) · W (D_in, D_out)
//              (the bias is added in the same pass as the activation, see activation.hpp)
//   backward:  dW (D_in, D_out) = inpᵀ · dpre       db (1, D_out) = Σ_rows dpre
//              dinp (B, D_in)    = dpre · Wᵀ         -- only when dinp is given: the first layer
//              passes none, since ∂L/∂x is never needed to train.
// The lecture writes p = W a with W (D_out, D_in); our W is its transpose, the layout of
// scikit-learn's coefs_[i].
//
// The three products run through a GEMM kernel (sgemm.hpp for float, Eigen's otherwise) with
// packing buffers allocated once per layer (GemmBuffers), not on every call: above 128 KB Eigen
// would otherwise malloc them on each product, i.e. inside every training step. Without buffers
// (nullptr) the plain Eigen expressions are used — the reference path the tests compare against.
#pragma once

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "sgemm.hpp"
#include "tensor.hpp"

namespace nncore {

// Packing space and kernel for C (rows, cols, row-major, leading dimension ldc) = A · B, or
// += A · B when `accumulate`, with A (rows, depth) and B (depth, cols) stored in the given orders
// with leading dimensions lda, ldb; sized for the largest rows/cols/depth the layer will see.
// Eigen's kernel in general; float uses sgemm.hpp's where the build has AVX2+FMA.
template <class T>
class GemmBuffers {
 public:
  GemmBuffers(Index rows, Index cols, Index depth) : space_(rows, cols, depth, 1, true) {
    space_.allocateAll();
  }
  template <int AOrder, int BOrder>
  void product(T* C, Index ldc, const T* A, Index lda, const T* B, Index ldb, Index rows,
               Index cols, Index depth, bool accumulate) {
    if (!accumulate)
      for (Index i = 0; i < rows; ++i) std::fill(C + i * ldc, C + i * ldc + cols, T(0));
    Eigen::internal::general_matrix_matrix_product<Index, T, AOrder, false, T, BOrder, false,
                                                   Eigen::RowMajor, 1>::run(rows, cols, depth, A,
                                                                            lda, B, ldb, C, 1, ldc,
                                                                            T(1), space_, nullptr);
  }

 private:
  Eigen::internal::gemm_blocking_space<Eigen::RowMajor, T, T, Eigen::Dynamic, Eigen::Dynamic,
                                       Eigen::Dynamic, 1, false>
      space_;
};

#ifdef NNCORE_SGEMM
template <>
class GemmBuffers<float> {
 public:
  GemmBuffers(Index rows, Index cols, Index depth) : space_(rows, cols, depth) {}
  template <int AOrder, int BOrder>
  void product(float* C, Index ldc, const float* A, Index lda, const float* B, Index ldb,
               Index rows, Index cols, Index depth, bool accumulate) {
    sgemm::product<AOrder, BOrder>(C, ldc, A, lda, B, ldb, rows, cols, depth, accumulate, space_);
  }

 private:
  sgemm::Buffers space_;
};
#endif

// Eigen sends these shapes to GEMV or to a coefficient loop, neither of which allocates.
inline bool uses_gemm(Index rows, Index cols, Index depth) {
  return rows > 1 && cols > 1 && rows + cols + depth >= EIGEN_GEMM_TO_COEFFBASED_THRESHOLD;
}

// Products this large (multiply-adds) are split over threads; smaller ones stay on one thread,
// where a parallel region's fork/join (a few µs) would cost more than it saves.
constexpr Index kParallelGemmWork = Index(1) << 21;

// Multiply-adds of C (rows, cols) = A (rows, depth) · B: the work a product has to share.
inline Index gemm_work(Index rows, Index cols, Index depth) { return rows * cols * depth; }

// One product's packing buffers, one set per thread; thread j computes a block of C's columns.
template <class T>
struct ParallelGemm {
  ParallelGemm(Index rows, Index cols, Index depth, int threads) {
    const int parts = gemm_work(rows, cols, depth) >= kParallelGemmWork ? threads : 1;
    for (int j = 0; j < parts; ++j) {
      // Part 0 also runs whole products too small to split (a smaller batch), so it is sized
      // for every column.
      const auto [c0, c1] =
          j == 0 ? std::pair<Index, Index>(0, cols) : column_block(cols, parts, j);
      buffers.push_back(std::make_unique<GemmBuffers<T>>(rows, std::max<Index>(c1 - c0, 1), depth));
    }
  }
  // Columns [c0, c1) of part j of `parts`, in multiples of 16 so each part keeps whole SIMD
  // registers.
  static std::pair<Index, Index> column_block(Index cols, int parts, int j) {
    const Index per = ((cols + parts - 1) / parts + 15) / 16 * 16;
    return {std::min(cols, per * j), std::min(cols, per * (j + 1))};
  }
  // C (rows, cols) = A · B (+= when `accumulate`), split by columns of C (and of B) over the
  // threads.
  template <int AOrder, int BOrder>
  void run(T* C, Index ldc, const T* A, Index lda, const T* B, Index ldb, Index rows, Index cols,
           Index depth, bool accumulate = false) {
    const int parts = static_cast<int>(buffers.size());
    if (parts == 1 || gemm_work(rows, cols, depth) < kParallelGemmWork) {
      buffers[0]->template product<AOrder, BOrder>(C, ldc, A, lda, B, ldb, rows, cols, depth,
                                                   accumulate);
      return;
    }
#pragma omp parallel for num_threads(parts) schedule(static, 1)
    for (int j = 0; j < parts; ++j) {
      const auto [c0, c1] = column_block(cols, parts, j);
      if (c1 <= c0) continue;
      // Column c of B: row-major B starts at B + c; column-major B (a transposed row-major
      // matrix) at B + c·ldb.
      const T* B_cols = BOrder == Eigen::RowMajor ? B + c0 : B + c0 * ldb;
      buffers[static_cast<size_t>(j)]->template product<AOrder, BOrder>(
          C + c0, ldc, A, lda, B_cols, ldb, rows, c1 - c0, depth, accumulate);
    }
  }
  std::vector<std::unique_ptr<GemmBuffers<T>>> buffers;
};

// Packing buffers of one layer's three products, for batches of up to `rows` rows.
template <class T>
struct DenseBuffers {
  DenseBuffers(Index rows, Index d_in, Index d_out, int threads)
      : forward(rows, d_out, d_in, threads),
        weight_grad(d_in, d_out, rows, threads),
        input_grad(rows, d_in, d_out, threads) {}
  ParallelGemm<T> forward, weight_grad, input_grad;
};

template <class T>
void dense_forward(MatrixMap<T> pre, ConstMatrixMap<T> inp, ConstMatrixMap<T> W,
                   DenseBuffers<T>* buffers = nullptr) {
  const Index B = inp.rows(), d_in = inp.cols(), d_out = W.cols();
  if (buffers == nullptr || !uses_gemm(B, d_out, d_in)) {
    pre.noalias() = inp * W;
    return;
  }
  buffers->forward.template run<Eigen::RowMajor, Eigen::RowMajor>(
      pre.data(), d_out, inp.data(), d_in, W.data(), d_out, B, d_out, d_in);
}

// Gradients are written (=), not accumulated: nothing needs zeroing before a step.
template <class T>
void dense_backward(MatrixMap<T>* dinp, MatrixMap<T> dW, RowVectorMap<T> db, ConstMatrixMap<T> dpre,
                    ConstMatrixMap<T> inp, ConstMatrixMap<T> W,
                    DenseBuffers<T>* buffers = nullptr) {
  const Index B = inp.rows(), d_in = inp.cols(), d_out = W.cols();
  if (buffers != nullptr && uses_gemm(d_in, d_out, B)) {
    // inpᵀ: the row-major (B, D_in) block read as column-major (D_in, B)
    buffers->weight_grad.template run<Eigen::ColMajor, Eigen::RowMajor>(
        dW.data(), d_out, inp.data(), d_in, dpre.data(), d_out, d_in, d_out, B);
  } else {
    dW.noalias() = inp.transpose() * dpre;
  }
  db.noalias() = dpre.colwise().sum();
  if (dinp == nullptr) return;
  if (buffers != nullptr && uses_gemm(B, d_in, d_out)) {
    // Wᵀ: the row-major (D_in, D_out) matrix read as column-major (D_out, D_in)
    buffers->input_grad.template run<Eigen::RowMajor, Eigen::ColMajor>(
        dinp->data(), d_in, dpre.data(), d_out, W.data(), d_out, B, d_in, d_out);
  } else {
    dinp->noalias() = dpre * W.transpose();
  }
}

}  // namespace nncore
