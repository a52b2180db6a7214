// Eigen typedefs and the parameter slab layout shared by parameters, gradients and optimiser state.
//
// Shape legend (used by every shape comment in the core):
//   n      rows of a data set          d      input features       K   outputs
//   B      rows of one minibatch (B <= the network's workspace capacity)
//   D_in, D_out                       widths on either side of one dense layer
// Matrices are row-major with samples in rows, so a minibatch of a data set is a contiguous block
// and a weight matrix W (D_in, D_out) has the layout of scikit-learn's coefs_[i].
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "thread_pool.hpp"

namespace nncore {

using Index = Eigen::Index;

template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatrixMap = Eigen::Map<Matrix<T>>;
template <class T>
using ConstMatrixMap = Eigen::Map<const Matrix<T>>;
template <class T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;
template <class T>
using RowVectorMap = Eigen::Map<RowVector<T>>;
template <class T>
using ConstRowVectorMap = Eigen::Map<const RowVector<T>>;
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <class T>
using VectorMap = Eigen::Map<Vector<T>>;

// Whether all `count` values are finite: NaN and ±∞ are the values whose exponent bits are all
// ones. Tested on the bits, an OR over integers, which vectorises (a sum of floats would not:
// its order is fixed without -ffast-math).
template <class T>
bool all_finite(const T* x, Index count) {
  using Bits = std::conditional_t<sizeof(T) == 8, uint64_t, uint32_t>;
  constexpr Bits exponent = sizeof(T) == 8 ? Bits(0x7FF0000000000000ULL) : Bits(0x7F800000U);
  Bits nonfinite = 0;
  for (Index i = 0; i < count; ++i) {
    Bits bits;
    std::memcpy(&bits, x + i, sizeof bits);
    nonfinite |= Bits((bits & exponent) == exponent);
  }
  return nonfinite == 0;
}

// One tensor inside a slab: a (rows, cols) row-major block starting at offset.
struct SlabEntry {
  Index offset = 0;
  Index rows = 0;
  Index cols = 0;
  Index size() const { return rows * cols; }
};

// The order of tensors in the parameter slab: W_0, b_0, W_1, b_1, ... Gradients and every optimiser
// state buffer use this same layout, so an update is one loop over the whole slab.
class SlabLayout {
 public:
  Index add(Index rows, Index cols) {
    entries_.push_back({total_, rows, cols});
    total_ += rows * cols;
    return static_cast<Index>(entries_.size()) - 1;
  }
  const SlabEntry& operator[](Index i) const { return entries_[static_cast<size_t>(i)]; }
  Index count() const { return static_cast<Index>(entries_.size()); }
  Index total() const { return total_; }

 private:
  std::vector<SlabEntry> entries_;
  Index total_ = 0;
};

template <class T>
MatrixMap<T> map_matrix(T* slab, const SlabEntry& e) {
  return MatrixMap<T>(slab + e.offset, e.rows, e.cols);
}
template <class T>
ConstMatrixMap<T> map_matrix(const T* slab, const SlabEntry& e) {
  return ConstMatrixMap<T>(slab + e.offset, e.rows, e.cols);
}
template <class T>
RowVectorMap<T> map_row(T* slab, const SlabEntry& e) {
  return RowVectorMap<T>(slab + e.offset, e.size());
}
template <class T>
ConstRowVectorMap<T> map_row(const T* slab, const SlabEntry& e) {
  return ConstRowVectorMap<T>(slab + e.offset, e.size());
}

// Elementwise passes over a (rows, width) block worth splitting over threads: below this many
// elements the hand-off costs more than it saves. Above it, the rows go out in tasks of about
// kTaskElements elements, several per thread, so a thread that lost its core delays little.
constexpr Index kParallelElements = Index(1) << 17;
constexpr Index kTaskElements = Index(1) << 15;

// f(begin, end) over the rows [0, rows) in contiguous blocks: on up to `threads` threads when
// rows × width is large enough, else in one call on this thread. f must not throw.
template <class F>
void parallel_rows(Index rows, Index width, int threads, F&& f) {
  if (threads <= 1 || rows * width < kParallelElements || rows < 2) {
    f(Index(0), rows);
    return;
  }
  const Index tasks = std::min(rows, std::max<Index>(1, rows * width / kTaskElements));
  threads::parallel_for(threads, tasks, [&](int64_t task, int) {
    f(rows * task / tasks, rows * (task + 1) / tasks);
  });
}

// Rows [begin, end) of a row-major map, as a map.
template <class T>
MatrixMap<T> row_block(MatrixMap<T> m, Index begin, Index end) {
  return MatrixMap<T>(m.data() + begin * m.cols(), end - begin, m.cols());
}
template <class T>
ConstMatrixMap<T> row_block(const ConstMatrixMap<T>& m, Index begin, Index end) {
  return ConstMatrixMap<T>(m.data() + begin * m.cols(), end - begin, m.cols());
}

// Errors on user input: the bindings turn std::invalid_argument into Python's ValueError.
// A message that must be built (concatenation, numbers) is passed as a function, so checks
// that pass — in an epoch or a step — build and allocate nothing.
template <class Message>
void require(bool ok, Message&& message) {
  if (ok) return;
  if constexpr (std::is_invocable_v<Message>) {
    throw std::invalid_argument(message());
  } else {
    throw std::invalid_argument(std::string(message));
  }
}

}  // namespace nncore
