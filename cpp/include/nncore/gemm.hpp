// Matrix product for the dense layers, written for their shapes, in float and double:
//
//   C (M, N) row-major  = A · B   or  += A · B,   A (M, K) and B (K, N) each row- or column-major.
//
// Why our own: Eigen's kernels reach 65-85% of the machine's FMA peak on the layers' shapes, and
// its double kernel least. This one uses a register tile chosen per scalar and instruction set
// (Tile below: most accumulators the vector registers allow, measured by bench/kernels.cpp),
// writes C directly when not accumulating (no zeroing pass before each product), and keeps one
// k-order per element of C whatever the split over threads, so results are the same for every
// thread count. Builds without AVX2+FMA keep Eigen's kernel.
//
// Blocking (the usual scheme for register-tiled GEMM): the depth is cut into slices of kDepth;
// for each slice all of A's rows are packed into panels of kRows rows (depth-major, [k][kRows]),
// and B's columns, kColsBlock at a time, into panels of kCols columns ([k][kCols]). The
// micro-kernel multiplies one A panel (kept in L1) by one B panel (streamed from L2) into a
// kRows × kCols tile of C held in registers. Partial panels are padded with zeros.
#pragma once

#include <algorithm>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "tensor.hpp"

namespace nncore {

// What a product's caller does to rows [r0, r1) of C once they are final (their last depth slice
// and column block stored), while they are still in L1: a layer adds its bias and applies its
// activation there, or its activation's derivative, instead of in a separate pass over C that
// would read it back from L2 or memory. A non-owning reference to a callable (no allocation, no
// template per caller); empty means nothing to do.
class RowsDone {
 public:
  RowsDone() = default;
  template <class F>
  RowsDone(const F& f)  // NOLINT: implicit, as std::function_ref
      : object_(&f), call_([](const void* o, Index r0, Index r1) {
          (*static_cast<const F*>(o))(r0, r1);
        }) {}
  explicit operator bool() const { return call_ != nullptr; }
  void operator()(Index r0, Index r1) const {
    if (call_ != nullptr && r1 > r0) call_(object_, r0, r1);
  }

 private:
  const void* object_ = nullptr;
  void (*call_)(const void*, Index, Index) = nullptr;
};

}  // namespace nncore

#if defined(__AVX2__) && defined(__FMA__) && (defined(__GNUC__) || defined(__clang__))
#define NNCORE_GEMM 1
#endif

#ifdef NNCORE_GEMM
namespace nncore::gemm {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
constexpr bool kAvx512 = true;
#else
constexpr int kVectorBytes = 32;
constexpr bool kAvx512 = false;
#endif

// Register tile (kRows × kVectors vectors of C in accumulators) and cache blocking per scalar.
// The tile leaves room for kVectors vectors of B and a broadcast of A: 12 × 2 of 32 registers on
// AVX-512, 6 × 2 of 16 on AVX2 (measured against 8 × 3 and 4 × 3: bench/kernels.cpp). The depth
// slice keeps an A panel in L1 (kRows × kDepth scalars, 12-24 KB), the B block (kDepth ×
// kColsBlock) in L2. NNCORE_GEMM_TILE_<F32|F64>="rows,vectors,depth,cols_block" overrides them
// for tuning runs only.
template <class T>
struct Tile;
#ifndef NNCORE_GEMM_TILE_F32
#define NNCORE_GEMM_TILE_F32 (kAvx512 ? 12 : 6), 2, 256, 512
#endif
#ifndef NNCORE_GEMM_TILE_F64
#define NNCORE_GEMM_TILE_F64 (kAvx512 ? 12 : 6), 2, 256, 256
#endif
template <class T, int Rows, int Vectors, Index Depth, Index ColsBlock>
struct TileOf {
  static constexpr int kLanes = kVectorBytes / static_cast<int>(sizeof(T));
  static constexpr int kRows = Rows;
  static constexpr int kVectors = Vectors;
  static constexpr int kCols = Vectors * kLanes;
  static constexpr Index kDepth = Depth;
  static constexpr Index kColsBlock = ColsBlock;
  static_assert(ColsBlock % kCols == 0, "a B block is whole panels");
};
template <>
struct Tile<float> : TileOf<float, NNCORE_GEMM_TILE_F32> {};
template <>
struct Tile<double> : TileOf<double, NNCORE_GEMM_TILE_F64> {};

// GCC/Clang vector types: Vec in registers; memory goes through Unaligned (alignment of the
// scalar, may_alias), which compiles to plain unaligned vector loads and stores. (std::memcpy
// into a Vec compiles to bounces through the stack for 32-byte vectors with GCC 12.)
template <class T>
struct Simd;
template <>
struct Simd<float> {
  typedef float Vec __attribute__((vector_size(kVectorBytes)));
  typedef float Unaligned __attribute__((vector_size(kVectorBytes), aligned(4), may_alias));
};
template <>
struct Simd<double> {
  typedef double Vec __attribute__((vector_size(kVectorBytes)));
  typedef double Unaligned __attribute__((vector_size(kVectorBytes), aligned(8), may_alias));
};
template <class T>
using Vec = typename Simd<T>::Vec;
template <class T>
inline Vec<T> load(const T* p) {
  return *reinterpret_cast<const typename Simd<T>::Unaligned*>(p);
}
template <class T>
inline void store(T* p, Vec<T> v) {
  *reinterpret_cast<typename Simd<T>::Unaligned*>(p) = v;
}

// Packing space for products up to (rows, cols, depth).
template <class T>
class Buffers {
  using S = Tile<T>;

 public:
  Buffers(Index rows, Index cols, Index /*depth*/)
      : a_((rows + S::kRows - 1) / S::kRows * S::kRows * S::kDepth),
        b_(S::kDepth * ((std::min(cols, S::kColsBlock) + S::kCols - 1) / S::kCols * S::kCols)),
        rows_(rows),
        cols_(cols) {}
  T* a() { return a_.data(); }
  T* b() { return b_.data(); }
  bool fits(Index rows, Index cols) const { return rows <= rows_ && cols <= cols_; }

 private:
  Vector<T> a_, b_;
  Index rows_, cols_;
};

// Rows × kCols tile of C (at c, leading dimension ldc) = or += A panel · B panel over `depth`
// steps; the A panel is packed kRows wide whatever Rows (the remainder rows of A come here with
// Rows < kRows, so no multiply is spent on padding rows). With FullCols false only the first
// `cols` columns are stored.
template <class T, int Rows, bool FullCols>
inline void micro_kernel(Index depth, const T* a, const T* b, T* c, Index ldc, bool accumulate,
                         int cols) {
  using S = Tile<T>;
  constexpr int kLanes = S::kLanes, kVectors = S::kVectors, kCols = S::kCols;
  // C's tile is read or written once, after the loop: fetching it now hides the miss.
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r) {
    __builtin_prefetch(c + r * ldc, 1);
    __builtin_prefetch(c + r * ldc + kCols - 1, 1);
  }
  Vec<T> acc[Rows][kVectors];
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) acc[r][v] = Vec<T>{};
  for (Index k = 0; k < depth; ++k) {
    // B's panel streams from L2: ask for it 16 steps ahead (measured: +3-4% over none or 8).
    __builtin_prefetch(b + 16 * kCols);
    __builtin_prefetch(b + 16 * kCols + kCols / 2);
    Vec<T> bv[kVectors];
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) bv[v] = load(b + v * kLanes);
#pragma GCC unroll 16
    for (int r = 0; r < Rows; ++r) {
      const T ar = a[r];
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) acc[r][v] += ar * bv[v];
    }
    a += S::kRows;
    b += kCols;
  }
  if constexpr (FullCols) {
#pragma GCC unroll 16
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) {
        T* out = c + r * ldc + v * kLanes;
        store(out, accumulate ? acc[r][v] + load(out) : acc[r][v]);
      }
  } else {
    T tile[Rows * kCols];
    for (int r = 0; r < Rows; ++r)
      for (int v = 0; v < kVectors; ++v) store(tile + r * kCols + v * kLanes, acc[r][v]);
    for (int r = 0; r < Rows; ++r)
      for (int j = 0; j < cols; ++j)
        c[r * ldc + j] = accumulate ? c[r * ldc + j] + tile[r * kCols + j] : tile[r * kCols + j];
  }
}

// One tile of `rows` (1..kRows) × `cols` (1..kCols), through the kernel made for that many rows.
template <class T, int Rows = Tile<T>::kRows>
inline void tile_product(int rows, int cols, Index depth, const T* a, const T* b, T* c, Index ldc,
                         bool accumulate) {
  if constexpr (Rows > 1) {
    if (rows < Rows) {
      tile_product<T, Rows - 1>(rows, cols, depth, a, b, c, ldc, accumulate);
      return;
    }
  }
  if (cols == Tile<T>::kCols)
    micro_kernel<T, Rows, true>(depth, a, b, c, ldc, accumulate, cols);
  else
    micro_kernel<T, Rows, false>(depth, a, b, c, ldc, accumulate, cols);
}

// Transposes one vector's worth of lines: line r (r < lines, the rest read as zeros) is kLanes
// scalars at src + r·lds; step k goes to dst + k·ldd, its first `width` lanes only. Shuffles in
// registers instead of kLanes² scalar moves. Returns false where this build has no such
// transpose (the caller copies scalar by scalar).
#if defined(__AVX512F__)
inline void transpose_block(const float* src, Index lds, int lines, float* dst, Index ldd,
                            int width) {
  const __mmask16 lanes = static_cast<__mmask16>(width == 16 ? 0xFFFFu : (1u << width) - 1);
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i)
    r[i] = i < lines ? _mm512_loadu_ps(src + i * lds) : _mm512_setzero_ps();
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
inline void transpose_block(const double* src, Index lds, int lines, double* dst, Index ldd,
                            int width) {
  const __mmask8 lanes = static_cast<__mmask8>(width == 8 ? 0xFFu : (1u << width) - 1);
  __m512d r[8], t[8];
  for (int i = 0; i < 8; ++i)
    r[i] = i < lines ? _mm512_loadu_pd(src + i * lds) : _mm512_setzero_pd();
  for (int i = 0; i < 8; i += 2) {  // per 128-bit lane L: t[i] column 2L, t[i+1] column 2L+1
    t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
  }
  for (int m = 0; m < 2; ++m) {  // column 2L+m = lane L of t[m], t[2+m], t[4+m], t[6+m]
    const __m512d u0 = _mm512_shuffle_f64x2(t[m], t[2 + m], 0x88);  // lanes 0, 2 of each
    const __m512d u1 = _mm512_shuffle_f64x2(t[m], t[2 + m], 0xDD);  // lanes 1, 3
    const __m512d w0 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0x88);
    const __m512d w1 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0xDD);
    _mm512_mask_storeu_pd(dst + m * ldd, lanes, _mm512_shuffle_f64x2(u0, w0, 0x88));
    _mm512_mask_storeu_pd(dst + (4 + m) * ldd, lanes, _mm512_shuffle_f64x2(u0, w0, 0xDD));
    _mm512_mask_storeu_pd(dst + (2 + m) * ldd, lanes, _mm512_shuffle_f64x2(u1, w1, 0x88));
    _mm512_mask_storeu_pd(dst + (6 + m) * ldd, lanes, _mm512_shuffle_f64x2(u1, w1, 0xDD));
  }
}
#else
// The first `width` lanes of v at dst: plain stores of 4, 2 and 1 lanes (AVX2's masked store,
// vmaskmov, is microcoded on AMD cores and made the transpose slower than scalar copies).
inline void store_first(float* dst, __m256 v, int width) {
  if (width == 8) return _mm256_storeu_ps(dst, v);
  __m128 part = _mm256_castps256_ps128(v);
  if (width >= 4) {
    _mm_storeu_ps(dst, part);
    part = _mm256_extractf128_ps(v, 1);
    dst += 4;
    width -= 4;
  }
  if (width >= 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(dst), part);
    part = _mm_movehl_ps(part, part);
    dst += 2;
    width -= 2;
  }
  if (width == 1) _mm_store_ss(dst, part);
}
inline void store_first(double* dst, __m256d v, int width) {
  if (width == 4) return _mm256_storeu_pd(dst, v);
  __m128d part = _mm256_castpd256_pd128(v);
  if (width >= 2) {
    _mm_storeu_pd(dst, part);
    part = _mm256_extractf128_pd(v, 1);
    dst += 2;
    width -= 2;
  }
  if (width == 1) _mm_store_sd(dst, part);
}
inline void transpose_block(const float* src, Index lds, int lines, float* dst, Index ldd,
                            int width) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = i < lines ? _mm256_loadu_ps(src + i * lds) : _mm256_setzero_ps();
  for (int i = 0; i < 8; i += 2) {  // per 128-bit lane L: [a(4L) b(4L) a(4L+1) b(4L+1)], ...
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {  // r[i+m], lane L: rows i..i+3 of column 4L+m
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  // Column 4L+m = lane L of r[m] (rows 0-3), r[4+m] (rows 4-7). The lane selector is spelt out
  // per lane: it must be an immediate, which a loop variable is not in an unoptimised build.
  for (int m = 0; m < 4; ++m) {
    store_first(dst + m * ldd, _mm256_permute2f128_ps(r[m], r[4 + m], 0x20), width);
    store_first(dst + (4 + m) * ldd, _mm256_permute2f128_ps(r[m], r[4 + m], 0x31), width);
  }
}
inline void transpose_block(const double* src, Index lds, int lines, double* dst, Index ldd,
                            int width) {
  __m256d r[4], t[4];
  for (int i = 0; i < 4; ++i) r[i] = i < lines ? _mm256_loadu_pd(src + i * lds) : _mm256_setzero_pd();
  t[0] = _mm256_unpacklo_pd(r[0], r[1]);  // lane L: rows 0, 1 of column 2L
  t[1] = _mm256_unpackhi_pd(r[0], r[1]);  // column 2L+1
  t[2] = _mm256_unpacklo_pd(r[2], r[3]);
  t[3] = _mm256_unpackhi_pd(r[2], r[3]);
  for (int m = 0; m < 2; ++m) {  // column 2L+m = lane L of t[m] (rows 0-1), t[2+m] (rows 2-3)
    store_first(dst + m * ldd, _mm256_permute2f128_pd(t[m], t[2 + m], 0x20), width);
    store_first(dst + (2 + m) * ldd, _mm256_permute2f128_pd(t[m], t[2 + m], 0x31), width);
  }
}
#endif

// Packs `count` lines of an operand, starting at line `first`, over the depth slice
// [k0, k0 + depth) into panels of Width lines: panel p (lines p..p+Width-1) is stored step by
// step, [k][Width], padded with zeros past the last line. A's panels are its rows (Width kRows),
// B's its columns (Width kCols). Where line i at step k lives in the stored matrix S:
//   LinesAlongRows:  S[(k0 + k)·ld + first + i]   (A column-major, B row-major: one copy per step)
//   otherwise:       S[(first + i)·ld + k0 + k]   (A row-major, B column-major: a transpose)
template <class T, int Width, bool LinesAlongRows>
void pack_panels(T* out, const T* S, Index ld, Index first, Index count, Index k0, Index depth) {
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
                      sizeof(T) * Width);
      if (full < count)
        for (Index k = kb; k < kend; ++k)
          for (Index i = 0; i < Width; ++i)
            out[full * depth + k * Width + i] =
                full + i < count ? S[(k0 + k) * ld + first + full + i] : T(0);
    }
  } else {
    constexpr int kLanes = kVectorBytes / static_cast<int>(sizeof(T));
    for (Index p = 0; p < count; p += Width) {
      T* panel = out + p * depth;
      const int lines = static_cast<int>(std::min<Index>(Width, count - p));
      if (lines < Width) std::fill(panel, panel + depth * Width, T(0));
      Index k = 0;
      // kLanes × kLanes blocks transposed in registers; a panel of 12 takes 12 lanes of each.
      for (; k + kLanes <= depth; k += kLanes)
        for (int j = 0; j < lines; j += kLanes) {
          const int width = std::min(kLanes, Width - j);
          transpose_block(S + (first + p + j) * ld + k0 + k, ld, std::min(width, lines - j),
                          panel + k * Width + j, Width, width);
        }
      for (int i = 0; i < lines; ++i) {
        const T* src = S + (first + p + i) * ld + k0;
        for (Index kk = k; kk < depth; ++kk) panel[kk * Width + i] = src[kk];
      }
    }
  }
}

// Rows [0, M) of A (depth slice [k0, k0 + depth)) into panels [k][kRows].
template <class T, int AOrder>
void pack_a(T* out, const T* A, Index lda, Index M, Index k0, Index depth) {
  pack_panels<T, Tile<T>::kRows, AOrder == Eigen::ColMajor>(out, A, lda, 0, M, k0, depth);
}

// Columns [j0, j0 + N) of B (depth slice [k0, k0 + depth)) into panels [k][kCols].
template <class T, int BOrder>
void pack_b(T* out, const T* B, Index ldb, Index j0, Index N, Index k0, Index depth) {
  pack_panels<T, Tile<T>::kCols, BOrder == Eigen::RowMajor>(out, B, ldb, j0, N, k0, depth);
}

// C's columns [0, N) over one depth slice [k0, k0 + depth): a_slice holds A's rows packed for
// that slice (pack_a), `b` is packing space for B's blocks. add: C += the product (else =).
// last: the last slice, after which each panel of rows is handed to `done`.
template <class T, int BOrder>
void multiply_slice(T* C, Index ldc, const T* a_slice, const T* B, Index ldb, Index M, Index N,
                    Index k0, Index depth, bool add, T* b, bool last, const RowsDone& done) {
  using S = Tile<T>;
  for (Index j0 = 0; j0 < N; j0 += S::kColsBlock) {
    const Index block = std::min(S::kColsBlock, N - j0);
    pack_b<T, BOrder>(b, B, ldb, j0, block, k0, depth);
    for (Index i0 = 0; i0 < M; i0 += S::kRows) {
      const int rows = static_cast<int>(std::min<Index>(S::kRows, M - i0));
      const T* a_panel = a_slice + i0 * depth;
      for (Index jj = 0; jj < block; jj += S::kCols) {
        const int cols = static_cast<int>(std::min<Index>(S::kCols, block - jj));
        tile_product<T>(rows, cols, depth, a_panel, b + jj * depth, C + i0 * ldc + j0 + jj, ldc,
                        add);
      }
      if (last && j0 + block == N) done(i0, i0 + rows);
    }
  }
}

template <class T>
inline void zero_rows(T* C, Index ldc, Index M, Index N) {
  for (Index i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, T(0));
}

// C (M, N) row-major with leading dimension ldc: = A · B, or += A · B when `accumulate`.
// A is (M, K) and B (K, N), stored in AOrder/BOrder with leading dimensions lda, ldb.
template <int AOrder, int BOrder, class T>
void product(T* C, Index ldc, const T* A, Index lda, const T* B, Index ldb, Index M, Index N,
             Index K, bool accumulate, Buffers<T>& buffers, const RowsDone& done = {}) {
  if (K == 0) {
    if (!accumulate) zero_rows(C, ldc, M, N);
    done(0, M);
    return;
  }
  eigen_assert(buffers.fits(M, N));
  for (Index k0 = 0; k0 < K; k0 += Tile<T>::kDepth) {
    const Index depth = std::min(Tile<T>::kDepth, K - k0);
    pack_a<T, AOrder>(buffers.a(), A, lda, M, k0, depth);
    multiply_slice<T, BOrder>(C, ldc, buffers.a(), B, ldb, M, N, k0, depth, accumulate || k0 > 0,
                              buffers.b(), k0 + depth == K, done);
  }
}

// For threads sharing one product: A and B packed whole, once, then rows of C computed from them.
// A's depth slice k0 lies at M_pad × k0 (the panels pack_a writes for that slice; M_pad = M rounded
// up to whole panels), B's at k0 × N_pad (all its column panels for that slice, panel by panel).
inline Index padded(Index n, Index to) { return (n + to - 1) / to * to; }
template <class T>
Index packed_a_size(Index M, Index K) {
  return padded(M, Tile<T>::kRows) * K;
}
template <class T>
Index packed_b_size(Index N, Index K) {
  return padded(N, Tile<T>::kCols) * K;
}
// Rows [r0, r1) of A (r0 a multiple of kRows) into their panels of every slice.
template <class T, int AOrder>
void pack_a_rows(T* out, const T* A, Index lda, Index M, Index K, Index r0, Index r1) {
  using S = Tile<T>;
  for (Index k0 = 0; k0 < K; k0 += S::kDepth) {
    const Index depth = std::min(S::kDepth, K - k0);
    pack_panels<T, S::kRows, AOrder == Eigen::ColMajor>(out + padded(M, S::kRows) * k0 + r0 * depth,
                                                        A, lda, r0, r1 - r0, k0, depth);
  }
}
// Columns [c0, c1) of B (c0 a multiple of kCols) into their panels of every slice.
template <class T, int BOrder>
void pack_b_cols(T* out, const T* B, Index ldb, Index N, Index K, Index c0, Index c1) {
  using S = Tile<T>;
  for (Index k0 = 0; k0 < K; k0 += S::kDepth) {
    const Index depth = std::min(S::kDepth, K - k0);
    pack_panels<T, S::kCols, BOrder == Eigen::RowMajor>(out + padded(N, S::kCols) * k0 + c0 * depth,
                                                        B, ldb, c0, c1 - c0, k0, depth);
  }
}

// Rows [r0, r1) (r0 a multiple of kRows) of C (M, N) = or += A · B from A and B packed whole:
// the same slices, blocks, tiles and so the same summation order as product().
template <class T>
void product_rows(T* C, Index ldc, const T* a_whole, const T* b_whole, Index M, Index N, Index K,
                  bool accumulate, Index r0, Index r1, const RowsDone& done = {}) {
  using S = Tile<T>;
  if (K == 0) {
    if (!accumulate) zero_rows(C + r0 * ldc, ldc, r1 - r0, N);
    done(r0, r1);
    return;
  }
  for (Index k0 = 0; k0 < K; k0 += S::kDepth) {
    const Index depth = std::min(S::kDepth, K - k0);
    const bool add = accumulate || k0 > 0;
    const T* a_slice = a_whole + padded(M, S::kRows) * k0;
    const T* b_slice = b_whole + padded(N, S::kCols) * k0;
    for (Index j0 = 0; j0 < N; j0 += S::kColsBlock) {
      const Index block = std::min(S::kColsBlock, N - j0);
      for (Index i0 = r0; i0 < r1; i0 += S::kRows) {
        const int rows = static_cast<int>(std::min<Index>(S::kRows, r1 - i0));
        for (Index jj = 0; jj < block; jj += S::kCols) {
          const int cols = static_cast<int>(std::min<Index>(S::kCols, block - jj));
          tile_product<T>(rows, cols, depth, a_slice + i0 * depth, b_slice + (j0 + jj) * depth,
                          C + i0 * ldc + j0 + jj, ldc, add);
        }
        if (k0 + depth == K && j0 + block == N) done(i0, i0 + rows);
      }
    }
  }
}

}  // namespace nncore::gemm
#endif
