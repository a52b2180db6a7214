// Inverted dropout on a hidden layer's output, training steps only, with masks from a
// counter-based generator.
//
//   forward:   mask (B, D) = m_ij ∈ {0, 1/(1−p)},  P(m_ij = 0) = p;   out (B, D) = inp ⊙ mask
//   backward:  dinp (B, D) = dout ⊙ mask
// Scaling the kept units by 1/(1−p) while training keeps E[out] = inp, so evaluation (no
// dropout) needs no rescaling. p = 0 is never passed here: such a layer has no dropout at all.
//
// Mask entry (i, j) of layer t at training step s is a pure function of (seed, s, t, i, j):
// u = the top 53 bits of hash(seed, s, t, i·D + j) as a number in [0, 1), dropped when u < p.
// No generator state is carried between elements, so any split of the rows over threads gives
// the same mask, and a step can be replayed (or its mask recomputed, e.g. by the tests) from its
// counter alone. The hash is SplitMix64's output function evaluated at position i·D + j of a
// stream whose start is keyed by (seed, s, t) through the same bijective mixer.
#pragma once

#include <cstdint>

#include "tensor.hpp"

namespace nncore {

// SplitMix64's finaliser: a bijection on 64-bit words that mixes every input bit into every
// output bit.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

constexpr uint64_t kGolden64 = 0x9E3779B97F4A7C15ULL;

// The start of layer t's stream at step s. Nested mixing (rather than one linear combination of
// seed, s and t) so that no two (s, t) pairs of one seed can land on overlapping streams by
// arithmetic coincidence.
inline uint64_t dropout_stream_key(uint64_t seed, uint64_t step, uint64_t layer) {
  return mix64(mix64(mix64(seed + kGolden64) ^ step) + (layer + 1) * kGolden64);
}

// mask (B, D) for rows [r0, r1): entries 0 or scale, for element index i·D + j of the stream.
template <class T>
void dropout_mask_rows(MatrixMap<T> mask, Index r0, Index r1, uint64_t key, double p, T scale) {
  const Index D = mask.cols();
  // u < p  ⇔  (h >> 11) < p·2^53, compared in integers so the draw is exact and branch-free.
  const uint64_t threshold = static_cast<uint64_t>(p * 9007199254740992.0);  // p · 2^53
  for (Index i = r0; i < r1; ++i) {
    T* row = mask.data() + i * D;
    const uint64_t base = key + static_cast<uint64_t>(i * D) * kGolden64;
    for (Index j = 0; j < D; ++j) {
      const uint64_t h = mix64(base + static_cast<uint64_t>(j + 1) * kGolden64);
      row[j] = (h >> 11) < threshold ? T(0) : scale;
    }
  }
}

// 1/(1−p), the kept units' factor, rounded once in T.
template <class T>
T dropout_scale(double p) {
  return T(1) / (T(1) - static_cast<T>(p));
}

// out = inp ⊙ mask with the mask drawn for (key, p); out may alias inp.
// out, mask, inp (B, D); `threads` splits the rows (the result does not depend on it).
template <class T>
void dropout_forward(MatrixMap<T> out, MatrixMap<T> mask, ConstMatrixMap<T> inp, double p,
                     uint64_t key, int threads) {
  const T scale = dropout_scale<T>(p);
  parallel_rows(inp.rows(), inp.cols(), threads, [&](Index r0, Index r1) {
    dropout_mask_rows<T>(mask, r0, r1, key, p, scale);
    row_block(out, r0, r1) = row_block(inp, r0, r1).cwiseProduct(row_block(mask, r0, r1));
  });
}

// dinp = dout ⊙ mask, the mask the forward pass saved; dinp may alias dout.
// dinp, dout, mask (B, D).
template <class T>
void dropout_backward(MatrixMap<T> dinp, ConstMatrixMap<T> dout, ConstMatrixMap<T> mask,
                      int threads) {
  parallel_rows(dout.rows(), dout.cols(), threads, [&](Index r0, Index r1) {
    row_block(dinp, r0, r1) = row_block(dout, r0, r1).cwiseProduct(row_block(mask, r0, r1));
  });
}

}  // namespace nncore
