// Single-precision matrix product for the dense layers, written for their shapes:
//
//   C (M, N) row-major  = A · B   or  += A · B,   A (M, K) and B (K, N) each row- or column-major.
//
// Why our own: Eigen's float kernel reaches ~85% of this machine's FMA peak on the layers' shapes;
// this one uses a wider register tile (12 rows × 2 vectors on AVX-512, 6 × 2 on AVX2: 24 or 12
// accumulators), writes C directly when not accumulating (no zeroing pass before each product),
// and keeps one k-order per element of C whatever the column split over threads, so results are
// the same for every thread count. Doubles, and builds without AVX2+FMA, keep Eigen's kernel.
//
// Blocking (the usual scheme for register-tiled GEMM): the depth is cut into slices of kDepth;
// for each slice all of A's rows are packed into panels of kRows rows (depth-major, [k][kRows]),
// and B's columns, kColsBlock at a time, into panels of kCols columns ([k][kCols]). The
// micro-kernel multiplies one A panel (kept in L1) by one B panel (streamed from L2) into a
// kRows × kCols tile of C held in registers. Partial panels are padded with zeros.
#pragma once

#include <algorithm>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "tensor.hpp"

#if defined(__AVX2__) && defined(__FMA__) && (defined(__GNUC__) || defined(__clang__))
#define NNCORE_SGEMM 1
#endif

#ifdef NNCORE_SGEMM
namespace nncore::sgemm {

#if defined(__AVX512F__)
constexpr int kLanes = 16;  // floats per vector register
constexpr int kRows = 12;   // 12 × 2 accumulators + 2 B vectors + 1 broadcast of 32 registers
#else
constexpr int kLanes = 8;
constexpr int kRows = 6;  // 6 × 2 accumulators + 2 B vectors + 1 broadcast of 16 registers
#endif
constexpr int kVectors = 2;
constexpr int kCols = kVectors * kLanes;
constexpr Index kDepth = 256;  // depth slice: an A panel is kRows × 256 floats (12 KB on AVX-512)
constexpr Index kColsBlock = 512;  // B block: 256 × 512 floats (512 KB), in L2

// GCC/Clang vector types: Vec in registers; memory goes through VecUnaligned (alignment 4,
// may_alias), which compiles to plain unaligned vector loads and stores. (std::memcpy into a
// Vec compiles to bounces through the stack for 32-byte vectors with GCC 12.)
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));
typedef float VecUnaligned
    __attribute__((vector_size(kLanes * sizeof(float)), aligned(sizeof(float)), may_alias));
inline Vec load(const float* p) { return *reinterpret_cast<const VecUnaligned*>(p); }
inline void store(float* p, Vec v) { *reinterpret_cast<VecUnaligned*>(p) = v; }

// Packing space for products up to (rows, cols, depth).
class Buffers {
 public:
  Buffers(Index rows, Index cols, Index /*depth*/)
      : a_((rows + kRows - 1) / kRows * kRows * kDepth),
        b_(kDepth * ((std::min(cols, kColsBlock) + kCols - 1) / kCols * kCols)),
        rows_(rows),
        cols_(cols) {}
  float* a() { return a_.data(); }
  float* b() { return b_.data(); }
  bool fits(Index rows, Index cols) const { return rows <= rows_ && cols <= cols_; }

 private:
  Vector<float> a_, b_;
  Index rows_, cols_;
};

// Rows × kCols tile of C (at c, leading dimension ldc) = or += A panel · B panel over `depth`
// steps; the A panel is packed kRows wide whatever Rows (the remainder rows of A come here with
// Rows < kRows, so no multiply is spent on padding rows). With FullCols false only the first
// `cols` columns are stored.
template <int Rows, bool FullCols>
inline void micro_kernel(Index depth, const float* a, const float* b, float* c, Index ldc,
                         bool accumulate, int cols) {
  // C's tile is read or written once, after the loop: fetching it now hides the miss.
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r) {
    __builtin_prefetch(c + r * ldc, 1);
    __builtin_prefetch(c + r * ldc + kCols - 1, 1);
  }
  Vec acc[Rows][kVectors];
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) acc[r][v] = Vec{};
  for (Index k = 0; k < depth; ++k) {
    // B's panel streams from L2: ask for it 16 steps ahead (measured: +3-4% over none or 8).
    __builtin_prefetch(b + 16 * kCols);
    __builtin_prefetch(b + 16 * kCols + kLanes);
    Vec bv[kVectors];
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) bv[v] = load(b + v * kLanes);
#pragma GCC unroll 16
    for (int r = 0; r < Rows; ++r) {
      const float ar = a[r];
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) acc[r][v] += ar * bv[v];
    }
    a += kRows;
    b += kCols;
  }
  if constexpr (FullCols) {
#pragma GCC unroll 16
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) {
        float* out = c + r * ldc + v * kLanes;
        store(out, accumulate ? acc[r][v] + load(out) : acc[r][v]);
      }
  } else {
    float tile[Rows * kCols];
    for (int r = 0; r < Rows; ++r)
      for (int v = 0; v < kVectors; ++v) store(tile + r * kCols + v * kLanes, acc[r][v]);
    for (int r = 0; r < Rows; ++r)
      for (int j = 0; j < cols; ++j)
        c[r * ldc + j] = accumulate ? c[r * ldc + j] + tile[r * kCols + j] : tile[r * kCols + j];
  }
}

// One tile of `rows` (1..kRows) × `cols` (1..kCols), through the kernel made for that many rows.
template <int Rows = kRows>
inline void tile_product(int rows, int cols, Index depth, const float* a, const float* b, float* c,
                         Index ldc, bool accumulate) {
  if constexpr (Rows > 1) {
    if (rows < Rows) {
      tile_product<Rows - 1>(rows, cols, depth, a, b, c, ldc, accumulate);
      return;
    }
  }
  if (cols == kCols)
    micro_kernel<Rows, true>(depth, a, b, c, ldc, accumulate, cols);
  else
    micro_kernel<Rows, false>(depth, a, b, c, ldc, accumulate, cols);
}

#if defined(__AVX512F__)
// Transposes a 16 × 16 block: row r (r < rows, the rest read as zeros) is 16 floats at
// src + r·lds; column k goes to dst + k·ldd, the lanes in `lanes` only. Four rounds of shuffles
// in registers, instead of 256 scalar moves.
inline void transpose16(const float* src, Index lds, int rows, float* dst, Index ldd,
                        __mmask16 lanes) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i)
    r[i] = i < rows ? _mm512_loadu_ps(src + i * lds) : _mm512_setzero_ps();
  for (int i = 0; i < 16; i += 2) {  // per 128-bit lane L: [a(4L) b(4L) a(4L+1) b(4L+1)], ...
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // r[i+m], lane L: rows i..i+3 of column 4L+m
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {  // column 4L+m = lane L of r[m], r[4+m], r[8+m], r[12+m]
    const __m512 v0 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x44);
    const __m512 v1 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xEE);
    const __m512 w0 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x44);
    const __m512 w1 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xEE);
    _mm512_mask_storeu_ps(dst + m * ldd, lanes, _mm512_shuffle_f32x4(v0, w0, 0x88));
    _mm512_mask_storeu_ps(dst + (4 + m) * ldd, lanes, _mm512_shuffle_f32x4(v0, w0, 0xDD));
    _mm512_mask_storeu_ps(dst + (8 + m) * ldd, lanes, _mm512_shuffle_f32x4(v1, w1, 0x88));
    _mm512_mask_storeu_ps(dst + (12 + m) * ldd, lanes, _mm512_shuffle_f32x4(v1, w1, 0xDD));
  }
}
#endif

// Packs `count` lines of an operand, starting at line `first`, over the depth slice
// [k0, k0 + depth) into panels of Width lines: panel p (lines p..p+Width-1) is stored step by
// step, [k][Width], padded with zeros past the last line. A's panels are its rows (Width kRows),
// B's its columns (Width kCols). Where line i at step k lives in the stored matrix S:
//   LinesAlongRows:  S[(k0 + k)·ld + first + i]   (A column-major, B row-major: one copy per step)
//   otherwise:       S[(first + i)·ld + k0 + k]   (A row-major, B column-major: a transpose)
template <int Width, bool LinesAlongRows>
void pack_panels(float* out, const float* S, Index ld, Index first, Index count, Index k0,
                 Index depth) {
  const Index full = count / Width * Width;
  if constexpr (LinesAlongRows) {
    // In blocks of 16 steps over every panel, so each stored row is read once, in order, from
    // L1 (panel by panel, the reads would walk rows ld apart, which for ld = 1024 all share one
    // L1 set).
    for (Index kb = 0; kb < depth; kb += 16) {
      const Index kend = std::min(depth, kb + 16);
      for (Index p = 0; p < full; p += Width)
        for (Index k = kb; k < kend; ++k)
          std::memcpy(out + p * depth + k * Width, S + (k0 + k) * ld + first + p,
                      sizeof(float) * Width);
      if (full < count)
        for (Index k = kb; k < kend; ++k)
          for (Index i = 0; i < Width; ++i)
            out[full * depth + k * Width + i] =
                full + i < count ? S[(k0 + k) * ld + first + full + i] : 0.0f;
    }
  } else {
    for (Index p = 0; p < count; p += Width) {
      float* panel = out + p * depth;
      const int lines = static_cast<int>(std::min<Index>(Width, count - p));
      if (lines < Width) std::fill(panel, panel + depth * Width, 0.0f);
      Index k = 0;
#if defined(__AVX512F__)
      // 16 × 16 blocks transposed in registers; a panel of 12 takes 12 lanes of each.
      for (; k + 16 <= depth; k += 16)
        for (int j = 0; j < lines; j += 16) {
          const int width = std::min(16, Width - j);
          transpose16(S + (first + p + j) * ld + k0 + k, ld, std::min(width, lines - j),
                      panel + k * Width + j, Width,
                      static_cast<__mmask16>(width == 16 ? 0xFFFFu : (1u << width) - 1));
        }
#endif
      for (int i = 0; i < lines; ++i) {
        const float* src = S + (first + p + i) * ld + k0;
        for (Index kk = k; kk < depth; ++kk) panel[kk * Width + i] = src[kk];
      }
    }
  }
}

// Rows [0, M) of A (depth slice [k0, k0 + depth)) into panels [k][kRows].
template <int AOrder>
void pack_a(float* out, const float* A, Index lda, Index M, Index k0, Index depth) {
  pack_panels<kRows, AOrder == Eigen::ColMajor>(out, A, lda, 0, M, k0, depth);
}

// Columns [j0, j0 + N) of B (depth slice [k0, k0 + depth)) into panels [k][kCols].
template <int BOrder>
void pack_b(float* out, const float* B, Index ldb, Index j0, Index N, Index k0, Index depth) {
  pack_panels<kCols, BOrder == Eigen::RowMajor>(out, B, ldb, j0, N, k0, depth);
}

// C's columns [0, N) over one depth slice [k0, k0 + depth): a_slice holds A's rows packed for
// that slice (pack_a), `b` is packing space for B's blocks. add: C += the product (else =).
template <int BOrder>
void multiply_slice(float* C, Index ldc, const float* a_slice, const float* B, Index ldb, Index M,
                    Index N, Index k0, Index depth, bool add, float* b) {
  for (Index j0 = 0; j0 < N; j0 += kColsBlock) {
    const Index block = std::min(kColsBlock, N - j0);
    pack_b<BOrder>(b, B, ldb, j0, block, k0, depth);
    for (Index i0 = 0; i0 < M; i0 += kRows) {
      const int rows = static_cast<int>(std::min<Index>(kRows, M - i0));
      const float* a_panel = a_slice + i0 * depth;
      for (Index jj = 0; jj < block; jj += kCols) {
        const int cols = static_cast<int>(std::min<Index>(kCols, block - jj));
        float* c = C + i0 * ldc + j0 + jj;
        const float* b_panel = b + jj * depth;
        tile_product(rows, cols, depth, a_panel, b_panel, c, ldc, add);
      }
    }
  }
}

inline void zero_rows(float* C, Index ldc, Index M, Index N) {
  for (Index i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
}

// C (M, N) row-major with leading dimension ldc: = A · B, or += A · B when `accumulate`.
// A is (M, K) and B (K, N), stored in AOrder/BOrder with leading dimensions lda, ldb.
template <int AOrder, int BOrder>
void product(float* C, Index ldc, const float* A, Index lda, const float* B, Index ldb, Index M,
             Index N, Index K, bool accumulate, Buffers& buffers) {
  if (K == 0) {
    if (!accumulate) zero_rows(C, ldc, M, N);
    return;
  }
  eigen_assert(buffers.fits(M, N));
  for (Index k0 = 0; k0 < K; k0 += kDepth) {
    const Index depth = std::min(kDepth, K - k0);
    pack_a<AOrder>(buffers.a(), A, lda, M, k0, depth);
    multiply_slice<BOrder>(C, ldc, buffers.a(), B, ldb, M, N, k0, depth, accumulate || k0 > 0,
                           buffers.b());
  }
}

// For threads sharing one product: A and B packed whole, once, then rows of C computed from them.
// A's depth slice k0 lies at M_pad × k0 (the panels pack_a writes for that slice; M_pad = M rounded
// up to whole panels), B's at k0 × N_pad (all its column panels for that slice, panel by panel).
inline Index padded(Index n, Index to) { return (n + to - 1) / to * to; }
inline Index packed_a_size(Index M, Index K) { return padded(M, kRows) * K; }
inline Index packed_b_size(Index N, Index K) { return padded(N, kCols) * K; }
// Rows [r0, r1) of A (r0 a multiple of kRows) into their panels of every slice.
template <int AOrder>
void pack_a_rows(float* out, const float* A, Index lda, Index M, Index K, Index r0, Index r1) {
  for (Index k0 = 0; k0 < K; k0 += kDepth) {
    const Index depth = std::min(kDepth, K - k0);
    pack_panels<kRows, AOrder == Eigen::ColMajor>(out + padded(M, kRows) * k0 + r0 * depth, A, lda,
                                                  r0, r1 - r0, k0, depth);
  }
}
// Columns [c0, c1) of B (c0 a multiple of kCols) into their panels of every slice.
template <int BOrder>
void pack_b_cols(float* out, const float* B, Index ldb, Index N, Index K, Index c0, Index c1) {
  for (Index k0 = 0; k0 < K; k0 += kDepth) {
    const Index depth = std::min(kDepth, K - k0);
    pack_panels<kCols, BOrder == Eigen::RowMajor>(out + padded(N, kCols) * k0 + c0 * depth, B,
                                                  ldb, c0, c1 - c0, k0, depth);
  }
}

// Rows [r0, r1) (r0 a multiple of kRows) of C (M, N) = or += A · B from A and B packed whole:
// the same slices, blocks, tiles and so the same summation order as product().
inline void product_rows(float* C, Index ldc, const float* a_whole, const float* b_whole, Index M,
                         Index N, Index K, bool accumulate, Index r0, Index r1) {
  if (K == 0) {
    if (!accumulate) zero_rows(C + r0 * ldc, ldc, r1 - r0, N);
    return;
  }
  for (Index k0 = 0; k0 < K; k0 += kDepth) {
    const Index depth = std::min(kDepth, K - k0);
    const bool add = accumulate || k0 > 0;
    const float* a_slice = a_whole + padded(M, kRows) * k0;
    const float* b_slice = b_whole + padded(N, kCols) * k0;
    for (Index j0 = 0; j0 < N; j0 += kColsBlock) {
      const Index block = std::min(kColsBlock, N - j0);
      for (Index i0 = r0; i0 < r1; i0 += kRows) {
        const int rows = static_cast<int>(std::min<Index>(kRows, r1 - i0));
        for (Index jj = 0; jj < block; jj += kCols) {
          const int cols = static_cast<int>(std::min<Index>(kCols, block - jj));
          tile_product(rows, cols, depth, a_slice + i0 * depth, b_slice + (j0 + jj) * depth,
                       C + i0 * ldc + j0 + jj, ldc, add);
        }
      }
    }
  }
}

}  // namespace nncore::sgemm
#endif
