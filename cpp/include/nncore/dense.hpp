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
#include <numeric>
#include <optional>
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
// where handing out tasks (a few µs) would cost more than it saves.
constexpr Index kParallelGemmWork = Index(1) << 21;
// A split product is cut into column blocks, about this many per thread: enough that a thread
// that lost its core to another process leaves little for the others to wait on, few enough that
// packing A again for every block stays cheap. Blocks start on multiples of
// gemm_column_align<T>() columns: whole register panels of either kernel (sgemm.hpp's 16 or 32
// columns; Eigen's, below).
constexpr Index kGemmTasksPerThread = 2;
template <class T>
constexpr Index gemm_column_align() {
  // Eigen computes a row-major C as the column-major Cᵀ, so C's columns are the rows of its
  // kernel's register panels (mr rows; nr for good measure): blocks must start on a multiple of
  // both for every row to go through the same code path as in the whole product.
  using Traits = Eigen::internal::gebp_traits<T, T>;
  return std::lcm(std::lcm(Index(32), Index(Traits::mr)), Index(Traits::nr));
}

// Multiply-adds of C (rows, cols) = A (rows, depth) · B: the work a product has to share.
inline Index gemm_work(Index rows, Index cols, Index depth) { return rows * cols * depth; }

// One product's packing buffers, one set per thread (slot) that may run part of it.
// Every element of C is computed by one task, over the whole depth, in an order that depends on
// neither the block it falls in nor the number of blocks: sgemm.hpp's kernel sums each element in
// the same order whatever the column range; Eigen's does too for blocks that start on a panel
// boundary, given the same depth slicing, which it derives from the sizes its buffers were made
// for — so every slot's buffers are made for the whole product. Results are therefore the same
// bits for every thread count.
template <class T>
struct ParallelGemm {
  ParallelGemm(Index rows, Index cols, Index depth, int slots) {
    const int n = gemm_work(rows, cols, depth) >= kParallelGemmWork ? std::max(slots, 1) : 1;
    for (int j = 0; j < n; ++j)
      buffers.push_back(std::make_unique<GemmBuffers<T>>(rows, cols, depth));
  }
  // C (rows, cols) = A · B (+= when `accumulate`), split by blocks of C's (and B's) columns over
  // the slots' threads.
  template <int AOrder, int BOrder>
  void run(T* C, Index ldc, const T* A, Index lda, const T* B, Index ldb, Index rows, Index cols,
           Index depth, bool accumulate = false) {
    const int threads = static_cast<int>(buffers.size());
    if (threads == 1 || gemm_work(rows, cols, depth) < kParallelGemmWork) {
      buffers[0]->template product<AOrder, BOrder>(C, ldc, A, lda, B, ldb, rows, cols, depth,
                                                   accumulate);
      return;
    }
    const Index blocks = threads * kGemmTasksPerThread;
    constexpr Index align = gemm_column_align<T>();
    const Index width = ((cols + blocks - 1) / blocks + align - 1) / align * align;
    const Index tasks = (cols + width - 1) / width;
    threads::parallel_for(threads, tasks, [&](int64_t task, int slot) {
      const Index c0 = task * width, c1 = std::min(cols, c0 + width);
      // Column c of B: row-major B starts at B + c; column-major B (a transposed row-major
      // matrix) at B + c·ldb.
      const T* B_cols = BOrder == Eigen::RowMajor ? B + c0 : B + c0 * ldb;
      buffers[static_cast<size_t>(slot)]->template product<AOrder, BOrder>(
          C + c0, ldc, A, lda, B_cols, ldb, rows, c1 - c0, depth, accumulate);
    });
  }
  std::vector<std::unique_ptr<GemmBuffers<T>>> buffers;
};

// Packing buffers of one layer's products, for batches of up to `rows` rows, on up to `threads`
// threads: the forward product's, and with `backward` the two gradient products'.
template <class T>
struct DenseBuffers {
  DenseBuffers(Index rows, Index d_in, Index d_out, int threads, bool backward = true)
      : forward(rows, d_out, d_in, threads) {
    if (backward) {
      weight_grad.emplace(d_in, d_out, rows, threads);
      input_grad.emplace(rows, d_in, d_out, threads);
    }
  }
  ParallelGemm<T> forward;
  std::optional<ParallelGemm<T>> weight_grad, input_grad;
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
  if (buffers != nullptr && buffers->weight_grad && uses_gemm(d_in, d_out, B)) {
    // inpᵀ: the row-major (B, D_in) block read as column-major (D_in, B)
    buffers->weight_grad->template run<Eigen::ColMajor, Eigen::RowMajor>(
        dW.data(), d_out, inp.data(), d_in, dpre.data(), d_out, d_in, d_out, B);
  } else {
    dW.noalias() = inp.transpose() * dpre;
  }
  db.noalias() = dpre.colwise().sum();
  if (dinp == nullptr) return;
  if (buffers != nullptr && buffers->input_grad && uses_gemm(B, d_in, d_out)) {
    // Wᵀ: the row-major (D_in, D_out) matrix read as column-major (D_out, D_in)
    buffers->input_grad->template run<Eigen::RowMajor, Eigen::ColMajor>(
        dinp->data(), d_in, dpre.data(), d_out, W.data(), d_out, B, d_in, d_out);
  } else {
    dinp->noalias() = dpre * W.transpose();
  }
}

}  // namespace nncore
