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
// The three products run through a GEMM kernel (gemm.hpp where the build has AVX2+FMA, Eigen's
// otherwise) with
// packing buffers allocated once per layer (GemmBuffers), not on every call: above 128 KB Eigen
// would otherwise malloc them on each product, i.e. inside every training step. Without buffers
// (nullptr) the plain Eigen expressions are used — the reference path the tests compare against.
#pragma once

#include <algorithm>
#include <atomic>
#include <memory>
#include <numeric>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "gemm.hpp"
#include "tensor.hpp"

namespace nncore {

// Packing space and kernel for C (rows, cols, row-major, leading dimension ldc) = A · B, or
// += A · B when `accumulate`, with A (rows, depth) and B (depth, cols) stored in the given orders
// with leading dimensions lda, ldb; sized for the largest rows/cols/depth the layer will see.
// Eigen's kernel in general; float and double use gemm.hpp's where the build has AVX2+FMA.
template <class T, class = void>
class GemmBuffers {
 public:
  // Whether threads share one packing of both operands (see ParallelGemm): Eigen's kernel packs
  // its own.
  static constexpr bool kSharesPacking = false;
  GemmBuffers(Index rows, Index cols, Index depth) : space_(rows, cols, depth, 1, true) {
    space_.allocateAll();
  }
  template <int AOrder, int BOrder>
  void product(T* C, Index ldc, const T* A, Index lda, const T* B, Index ldb, Index rows,
               Index cols, Index depth, bool accumulate, const RowsDone& done = {}) {
    if (!accumulate)
      for (Index i = 0; i < rows; ++i) std::fill(C + i * ldc, C + i * ldc + cols, T(0));
    Eigen::internal::general_matrix_matrix_product<Index, T, AOrder, false, T, BOrder, false,
                                                   Eigen::RowMajor, 1>::run(rows, cols, depth, A,
                                                                            lda, B, ldb, C, 1, ldc,
                                                                            T(1), space_, nullptr);
    done(0, rows);  // Eigen's kernel hands out no rows before the end: not fused
  }

 private:
  Eigen::internal::gemm_blocking_space<Eigen::RowMajor, T, T, Eigen::Dynamic, Eigen::Dynamic,
                                       Eigen::Dynamic, 1, false>
      space_;
};

#ifdef NNCORE_GEMM
template <class T>
class GemmBuffers<T, std::enable_if_t<std::is_same_v<T, float> || std::is_same_v<T, double>>> {
 public:
  static constexpr bool kSharesPacking = true;
  GemmBuffers(Index rows, Index cols, Index depth) : space_(rows, cols, depth) {}
  template <int AOrder, int BOrder>
  void product(T* C, Index ldc, const T* A, Index lda, const T* B, Index ldb, Index rows,
               Index cols, Index depth, bool accumulate, const RowsDone& done = {}) {
    gemm::product<AOrder, BOrder>(C, ldc, A, lda, B, ldb, rows, cols, depth, accumulate, space_,
                                  done);
  }
  // Shared by threads: A and B packed once, then blocks of C's rows (gemm.hpp).
  static Index packed_size(Index rows, Index cols, Index depth) {
    return gemm::packed_a_size<T>(rows, depth) + gemm::packed_b_size<T>(cols, depth);
  }
  // Part `part` (of kPackParts) of packing A and B whole: halves of A's rows, halves of B's
  // columns. A pure copy: how it is cut changes nothing in the result.
  static constexpr int kPackParts = 4;
  template <int AOrder, int BOrder>
  static void pack(int part, T* packed, const T* A, Index lda, const T* B, Index ldb, Index rows,
                   Index cols, Index depth) {
    using S = gemm::Tile<T>;
    if (part < 2) {
      const Index mid = std::min(rows, gemm::padded(rows / 2, S::kRows));
      gemm::pack_a_rows<T, AOrder>(packed, A, lda, rows, depth, part == 0 ? 0 : mid,
                                   part == 0 ? mid : rows);
    } else {
      const Index mid = std::min(cols, gemm::padded(cols / 2, S::kCols));
      gemm::pack_b_cols<T, BOrder>(packed + gemm::packed_a_size<T>(rows, depth), B, ldb, cols,
                                   depth, part == 2 ? 0 : mid, part == 2 ? mid : cols);
    }
  }
  static void product_rows(T* C, Index ldc, const T* packed, Index rows, Index cols, Index depth,
                           bool accumulate, Index r0, Index r1, const RowsDone& done) {
    gemm::product_rows<T>(C, ldc, packed, packed + gemm::packed_a_size<T>(rows, depth), rows,
                          cols, depth, accumulate, r0, r1, done);
  }
  static constexpr Index kRowAlign = gemm::Tile<T>::kRows;

 private:
  gemm::Buffers<T> space_;
};
#endif

// Eigen sends these shapes to GEMV or to a coefficient loop, neither of which allocates.
inline bool uses_gemm(Index rows, Index cols, Index depth) {
  return rows > 1 && cols > 1 && rows + cols + depth >= EIGEN_GEMM_TO_COEFFBASED_THRESHOLD;
}

// Products this large (multiply-adds) are split over threads; smaller ones stay on one thread,
// where handing out tasks (a few µs) would cost more than it saves.
constexpr Index kParallelGemmWork = Index(1) << 21;

// A split product is cut into several blocks per thread, so a thread that lost its core to
// another process leaves little for the others to wait on. nncore's own kernel packs both
// operands once (the caller does it) and then cuts C into blocks of rows, each multiplying its
// rows of packed A with all of packed B: blocks cost no extra packing, so they can be small.
// Eigen's kernel packs for itself: C is cut into blocks of columns, each packing its own columns of
// B and all of A again, so fewer, larger ones.
template <class T>
constexpr Index gemm_tasks_per_thread() {
  return GemmBuffers<T>::kSharesPacking ? 4 : 2;
}
// Eigen's blocks of C's columns start on a multiple of this many. Eigen computes a row-major C as
// the column-major Cᵀ, so C's columns are the rows of its kernel's register panels (mr rows, nr
// columns): a block must start on a multiple of mr for each of its elements to go through the
// same code path, and so the same summation order, as in the whole product. (nncore's own kernel
// sums every element in the same order whatever the block.)
template <class T>
constexpr Index gemm_column_align() {
  using Traits = Eigen::internal::gebp_traits<T, T>;
  return std::lcm(Index(Traits::mr), Index(Traits::nr));
}

// Multiply-adds of C (rows, cols) = A (rows, depth) · B: the work a product has to share.
inline Index gemm_work(Index rows, Index cols, Index depth) { return rows * cols * depth; }

// One product's packing space: one set per thread (slot) that may run part of it, and for
// nncore's own kernel the operands packed once for all of them. Every element of C is computed
// by one task, over the whole depth, in an order that depends on neither the block it falls in nor
// the number of blocks (see gemm_column_align; Eigen's depth slicing follows the sizes its buffers
// were made for, so every slot's are made for the whole product). Results are therefore the same
// bits for every thread count.
template <class T>
struct ParallelGemm {
  ParallelGemm(Index rows, Index cols, Index depth, int slots) {
    const int n = gemm_work(rows, cols, depth) >= kParallelGemmWork ? std::max(slots, 1) : 1;
    for (int j = 0; j < n; ++j)
      buffers.push_back(std::make_unique<GemmBuffers<T>>(rows, cols, depth));
    if constexpr (GemmBuffers<T>::kSharesPacking)
      if (n > 1) packed.resize(GemmBuffers<T>::packed_size(rows, cols, depth));
  }
  // C (rows, cols) = A · B (+= when `accumulate`), split over the slots' threads; `done` gets
  // every row of C once, when it is final, on the thread that computed it.
  template <int AOrder, int BOrder>
  void run(T* C, Index ldc, const T* A, Index lda, const T* B, Index ldb, Index rows, Index cols,
           Index depth, bool accumulate = false, const RowsDone& done = {}) {
    const int threads = static_cast<int>(buffers.size());
    if (threads == 1 || gemm_work(rows, cols, depth) < kParallelGemmWork) {
      buffers[0]->template product<AOrder, BOrder>(C, ldc, A, lda, B, ldb, rows, cols, depth,
                                                   accumulate, done);
      return;
    }
    const Index blocks = threads * gemm_tasks_per_thread<T>();
    if constexpr (GemmBuffers<T>::kSharesPacking) {
      // The first tasks pack the operands; the others compute blocks of rows once all packing is
      // done. Tasks are claimed in order, so a block waits only for packing already under way.
      constexpr Index align = GemmBuffers<T>::kRowAlign;
      constexpr int pack_tasks = GemmBuffers<T>::kPackParts;
      const Index height = ((rows + blocks - 1) / blocks + align - 1) / align * align;
      const Index tasks = (rows + height - 1) / height;
      std::atomic<int> packed_parts{0};
      threads::parallel_for(threads, pack_tasks + tasks, [&](int64_t task, int) {
        if (task < pack_tasks) {
          GemmBuffers<T>::template pack<AOrder, BOrder>(static_cast<int>(task), packed.data(), A,
                                                        lda, B, ldb, rows, cols, depth);
          packed_parts.fetch_add(1, std::memory_order_release);
          return;
        }
        threads::wait_until([&] { return packed_parts.load(std::memory_order_acquire) == pack_tasks; });
        const Index r0 = (task - pack_tasks) * height;
        GemmBuffers<T>::product_rows(C, ldc, packed.data(), rows, cols, depth, accumulate, r0,
                                     std::min(rows, r0 + height), done);
      });
    } else {
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
      // Blocks of columns: no row is final before the last block, so `done` runs after all.
      parallel_rows(rows, cols, threads, [&](Index r0, Index r1) { done(r0, r1); });
    }
  }
  std::vector<std::unique_ptr<GemmBuffers<T>>> buffers;
  Vector<T> packed;  // both operands packed once for every block (kernels that can share them)
};

// C (rows, cols, row-major, leading dimension ldc) = A · B, or += A · B when `accumulate`, with A
// and B stored in AOrder/BOrder: on `gemm`'s kernel and threads, or (no gemm, or a shape too small
// for a GEMM) Eigen's plain product, which allocates nothing at those sizes.
template <int AOrder, int BOrder, class T>
void matmul(ParallelGemm<T>* gemm, T* C, Index ldc, const T* A, Index lda, const T* B, Index ldb,
            Index rows, Index cols, Index depth, bool accumulate = false) {
  if (gemm != nullptr && uses_gemm(rows, cols, depth)) {
    gemm->template run<AOrder, BOrder>(C, ldc, A, lda, B, ldb, rows, cols, depth, accumulate);
    return;
  }
  using Stride = Eigen::OuterStride<>;
  using Dyn = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ADyn = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, AOrder>;
  using BDyn = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, BOrder>;
  const Eigen::Map<const ADyn, 0, Stride> a(A, rows, depth, Stride(lda));
  const Eigen::Map<const BDyn, 0, Stride> b(B, depth, cols, Stride(ldb));
  Eigen::Map<Dyn, 0, Stride> c(C, rows, cols, Stride(ldc));
  if (accumulate)
    c.noalias() += a * b;
  else
    c.noalias() = a * b;
}

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

// pre (B, 1) = inp · w for a single output column: each row's dot product summed in one fixed
// order (eight partial sums over the depth, then pairwise), whatever B is. Eigen would take a
// dot product for one row and a GEMV for several, which sum in different orders.
template <class T>
void single_column_forward(MatrixMap<T> pre, ConstMatrixMap<T> inp, const T* w) {
  const Index B = inp.rows(), depth = inp.cols(), whole = depth / 8 * 8;
  for (Index i = 0; i < B; ++i) {
    const T* a = inp.data() + i * depth;
    T part[8] = {};
    for (Index k = 0; k < whole; k += 8)
      for (int j = 0; j < 8; ++j) part[j] += a[k + j] * w[k + j];
    T tail = 0;
    for (Index k = whole; k < depth; ++k) tail += a[k] * w[k];
    pre(i, 0) = (((part[0] + part[4]) + (part[1] + part[5])) +
                 ((part[2] + part[6]) + (part[3] + part[7]))) + tail;
  }
}

// `done` gets pre's rows once final (see RowsDone): where the caller's bias and activation go.
// rows_alike: each row's result the same bits whatever rows come with it (evaluation: a row
// served alone gets what it gets inside a batch), by taking the GEMM however few rows B has
// (given buffers) and a fixed-order loop for one output column; otherwise a tiny B goes to
// Eigen's GEMV or coefficient loop, whose sums run in other orders.
template <class T>
void dense_forward(MatrixMap<T> pre, ConstMatrixMap<T> inp, ConstMatrixMap<T> W,
                   DenseBuffers<T>* buffers = nullptr, const RowsDone& done = {},
                   bool rows_alike = false) {
  const Index B = inp.rows(), d_in = inp.cols(), d_out = W.cols();
  if (rows_alike && d_out == 1) {
    single_column_forward<T>(pre, inp, W.data());
    done(0, B);
    return;
  }
  if (buffers == nullptr || !(rows_alike || uses_gemm(B, d_out, d_in))) {
    pre.noalias() = inp * W;
    done(0, B);
    return;
  }
  buffers->forward.template run<Eigen::RowMajor, Eigen::RowMajor>(
      pre.data(), d_out, inp.data(), d_in, W.data(), d_out, B, d_out, d_in, false, done);
}

// Gradients are written (=), not accumulated: nothing needs zeroing before a step. `done` gets
// dinp's rows once final: where the previous layer's activation derivative goes.
template <class T>
void dense_backward(MatrixMap<T>* dinp, MatrixMap<T> dW, RowVectorMap<T> db, ConstMatrixMap<T> dpre,
                    ConstMatrixMap<T> inp, ConstMatrixMap<T> W,
                    DenseBuffers<T>* buffers = nullptr, const RowsDone& done = {}) {
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
        dinp->data(), d_in, dpre.data(), d_out, W.data(), d_out, B, d_in, d_out, false, done);
  } else {
    dinp->noalias() = dpre * W.transpose();
    done(0, B);
  }
}

}  // namespace nncore
