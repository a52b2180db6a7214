// The first layer on sparse input (CSR rows): forward and backward side by side.
//
//   forward:   pre (B, D_out) = X_M (B, D_in) · W (D_in, D_out)
//              row r of pre = Σ over the stored entries (k, x) of input row r of x · W[k, :]
//   backward:  dW (D_in, D_out) = X_Mᵀ · dpre   -- row k of dW gathers x · dpre[r, :] over the
//              batch rows r that store column k; rows of W no input touched get 0.
//              db (1, D_out) = Σ_rows dpre
// W is row-major (D_in, D_out), so every term reads or writes one contiguous row of D_out values:
// the work is nnz(X_M) · D_out, not B · D_in · D_out, and X is never made dense. The batch rows
// are read where they lie in X (through the epoch's row order): no gather, no copy of X.
// Only the first layer can see sparse input; ∂L/∂x is never needed, so there is no dinp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "tensor.hpp"
#include "thread_pool.hpp"

namespace nncore {

// A CSR matrix (n, d): row i's entries are data[indptr[i] .. indptr[i+1]) in the columns
// indices[...] (any order within a row, no duplicates needed: duplicates add up).
template <class T>
struct Csr {
  const int64_t* indptr = nullptr;  // (n + 1)
  const int64_t* indices = nullptr;
  const T* data = nullptr;
  Index rows = 0, cols = 0;
};

// The rows one pass starts from: B rows of a dense row-major X (B, d), or rows of a CSR matrix —
// row r of the batch is csr row order[r], or first + r without an order.
template <class T>
struct InputRows {
  const T* dense = nullptr;
  const Csr<T>* csr = nullptr;
  const int64_t* order = nullptr;
  Index first = 0;

  InputRows(const T* X) : dense(X) {}  // NOLINT: a dense block is the usual input
  InputRows(const Csr<T>& X, const int64_t* rows, Index start)
      : csr(&X), order(rows), first(start) {}
  Index csr_row(Index r) const { return order != nullptr ? order[r] : first + r; }
  // The same rows from batch row `offset` on.
  InputRows from(Index offset, Index width) const {
    if (csr == nullptr) return InputRows(dense + offset * width);
    return order != nullptr ? InputRows(*csr, order + offset, 0)
                            : InputRows(*csr, nullptr, first + offset);
  }
};

// Checks a CSR matrix's structure once, before any pass reads it: indptr starts at 0, never
// decreases and ends at nnz; every column index lies in [0, cols).
template <class T>
void check_csr(const Csr<T>& X, Index nnz) {
  require(X.indptr[0] == 0 && X.indptr[X.rows] == nnz, [&] {
    return std::string("CSR indptr must start at 0 and end at nnz=" + std::to_string(nnz) +
                       ", got " + std::to_string(X.indptr[0]) + " and " +
                       std::to_string(X.indptr[X.rows]));
  });
  for (Index i = 0; i < X.rows; ++i)
    require(X.indptr[i] <= X.indptr[i + 1],
            [&] { return std::string("CSR indptr decreases at row " + std::to_string(i)); });
  for (Index p = 0; p < nnz; ++p)
    require(X.indices[p] >= 0 && X.indices[p] < X.cols, [&] {
      return std::string("CSR column index " + std::to_string(X.indices[p]) + " is outside [0, " +
                         std::to_string(X.cols) + ")");
    });
}

// pre = X_M · W over the batch rows of `in`, the rows on up to `threads` threads (each row is
// summed over its entries in stored order, whatever the thread count).
template <class T>
void sparse_forward(MatrixMap<T> pre, const InputRows<T>& in, ConstMatrixMap<T> W, int threads) {
  const Csr<T>& X = *in.csr;
  const Index B = pre.rows(), d_out = W.cols();
  parallel_rows(B, d_out * 4, threads, [&](Index r0, Index r1) {
    for (Index r = r0; r < r1; ++r) {
      auto out = pre.row(r);
      out.setZero();
      const Index i = in.csr_row(r);
      for (int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p)
        out.noalias() += X.data[p] * W.row(X.indices[p]);
    }
  });
}

// dW = X_Mᵀ · dpre + decay · W (written, not accumulated), db = Σ dpre. decay is the L2 term's
// factor (scale · α, or 0). With wide sparse input the passes over the (D_in, D_out) slab are
// the step's cost, so the rows no entry touches get decay · W in the one pass that must write
// them anyway; a touched row is zeroed, gathers its entries' terms in batch order, then gets
// decay · W added — the dense path's order of operations, and so its bits. `touched` holds
// D_in zero flags and is left zeroed. Threads split dW's columns for the terms: each adds its
// slice of every entry's row in batch order, so the sums are the same for every thread count.
template <class T>
void sparse_backward(MatrixMap<T> dW, RowVectorMap<T> db, ConstMatrixMap<T> dpre,
                     const InputRows<T>& in, ConstMatrixMap<T> W, T decay, uint8_t* touched,
                     int threads) {
  const Csr<T>& X = *in.csr;
  const Index B = dpre.rows(), d_in = dW.rows(), d_out = dW.cols();
  parallel_rows(d_in, d_out, threads, [&](Index r0, Index r1) {
    if (decay == T(0))
      dW.middleRows(r0, r1 - r0).setZero();
    else
      dW.middleRows(r0, r1 - r0) = decay * W.middleRows(r0, r1 - r0);
  });
  for (Index r = 0; r < B; ++r) {
    const Index i = in.csr_row(r);
    for (int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p) {
      const Index k = X.indices[p];
      if (!touched[k]) {
        touched[k] = 1;
        dW.row(k).setZero();
      }
    }
  }
  Index nnz = 0;
  for (Index r = 0; r < B; ++r) {
    const Index i = in.csr_row(r);
    nnz += X.indptr[i + 1] - X.indptr[i];
  }
  const Index slices =
      threads <= 1 || nnz * d_out < kParallelElements ? 1 : std::min<Index>(threads * 2, d_out);
  auto scatter = [&](Index c0, Index c1) {
    for (Index r = 0; r < B; ++r) {
      const Index i = in.csr_row(r);
      const auto grad = dpre.row(r).segment(c0, c1 - c0);
      for (int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p)
        dW.row(X.indices[p]).segment(c0, c1 - c0).noalias() += X.data[p] * grad;
    }
  };
  if (slices == 1) {
    scatter(0, d_out);
  } else {
    threads::parallel_for(threads, slices, [&](int64_t s, int) {
      scatter(d_out * s / slices, d_out * (s + 1) / slices);
    });
  }
  for (Index r = 0; r < B; ++r) {
    const Index i = in.csr_row(r);
    for (int64_t p = X.indptr[i]; p < X.indptr[i + 1]; ++p) {
      const Index k = X.indices[p];
      if (touched[k]) {
        touched[k] = 0;
        if (decay != T(0)) dW.row(k).noalias() += decay * W.row(k);
      }
    }
  }
  db.noalias() = dpre.colwise().sum();
}

}  // namespace nncore
