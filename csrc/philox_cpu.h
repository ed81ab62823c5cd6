// CPU side of the Philox normal stream (csrc/philox.h): runs of Philox blocks turned into
// normals, Philox in explicit SIMD (AVX2/AVX-512 copies), Box-Muller in a loop the compiler
// vectorizes (checked with -fopt-info-vec). Included by csrc/<op>.cpp files, so it is
// compiled once per CPU capability; every copy gives the same bits (see philox.h).
#pragma once

#include "philox.h"

#include <cstdint>

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
#include <immintrin.h>
#endif

namespace vaebench::philox {
VAEBENCH_PHILOX_CAPABILITY_NS_BEGIN

// Philox blocks are computed kTile at a time in structure-of-arrays form (x_w[j] = word w of
// block j), with 32-bit lanes: plain C++ would widen to 64-bit lanes for the 32x32->64
// multiply (vpmullq on 8 lanes), so the AVX2/AVX-512 copies spell out the even/odd vpmuludq
// form on 8/16 lanes. The integer results are the same in every copy.
constexpr int kTile = 16;

#if defined(CPU_CAPABILITY_AVX512)
inline void philox_tile(uint32_t lo, uint32_t hi, const Key& key, uint32_t* __restrict x) {
  // x: [4, kTile]
  __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(lo)),
                                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  __m512i c1 = _mm512_set1_epi32(static_cast<int>(hi));
  __m512i c2 = _mm512_set1_epi32(static_cast<int>(key.o0));
  __m512i c3 = _mm512_set1_epi32(static_cast<int>(key.o1));
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(kMul0));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(kMul1));
  uint32_t k0 = key.k0, k1 = key.k1;
  for (int r = 0; r < 10; ++r) {
    // 64-bit products of the even lanes and of the odd lanes, then hi/lo words back in place
    const __m512i e0 = _mm512_mul_epu32(c0, m0), o0 = _mm512_mul_epu32(_mm512_srli_epi64(c0, 32), m0);
    const __m512i e1 = _mm512_mul_epu32(c2, m1), o1 = _mm512_mul_epu32(_mm512_srli_epi64(c2, 32), m1);
    const __m512i hi0 = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(e0, 32), o0);
    const __m512i lo0 = _mm512_mask_blend_epi32(0xAAAA, e0, _mm512_slli_epi64(o0, 32));
    const __m512i hi1 = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(e1, 32), o1);
    const __m512i lo1 = _mm512_mask_blend_epi32(0xAAAA, e1, _mm512_slli_epi64(o1, 32));
    c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(static_cast<int>(k0)));
    c1 = lo1;
    c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(static_cast<int>(k1)));
    c3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  _mm512_storeu_si512(x, c0);
  _mm512_storeu_si512(x + kTile, c1);
  _mm512_storeu_si512(x + 2 * kTile, c2);
  _mm512_storeu_si512(x + 3 * kTile, c3);
}
#elif defined(CPU_CAPABILITY_AVX2)
inline void philox_tile(uint32_t lo, uint32_t hi, const Key& key, uint32_t* __restrict x) {
  for (int half = 0; half < 2; ++half) {
    __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(lo + 8 * half)),
                                  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i c1 = _mm256_set1_epi32(static_cast<int>(hi));
    __m256i c2 = _mm256_set1_epi32(static_cast<int>(key.o0));
    __m256i c3 = _mm256_set1_epi32(static_cast<int>(key.o1));
    const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kMul0));
    const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kMul1));
    uint32_t k0 = key.k0, k1 = key.k1;
    for (int r = 0; r < 10; ++r) {
      const __m256i e0 = _mm256_mul_epu32(c0, m0), o0 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
      const __m256i e1 = _mm256_mul_epu32(c2, m1), o1 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
      const __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(e0, 32), o0, 0xAA);
      const __m256i lo0 = _mm256_blend_epi32(e0, _mm256_slli_epi64(o0, 32), 0xAA);
      const __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(e1, 32), o1, 0xAA);
      const __m256i lo1 = _mm256_blend_epi32(e1, _mm256_slli_epi64(o1, 32), 0xAA);
      c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int>(k0)));
      c1 = lo1;
      c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(static_cast<int>(k1)));
      c3 = lo0;
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x + 8 * half), c0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x + kTile + 8 * half), c1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x + 2 * kTile + 8 * half), c2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x + 3 * kTile + 8 * half), c3);
  }
}
#else
inline void philox_tile(uint32_t lo, uint32_t hi, const Key& key, uint32_t* __restrict x) {
  for (int j = 0; j < kTile; ++j) {
    uint32_t w[4];
    philox4x32_10(lo + static_cast<uint32_t>(j), hi, key.o0, key.o1, key.k0, key.k1, w);
    for (int l = 0; l < 4; ++l) x[l * kTile + j] = w[l];
  }
}
#endif

// out: [nblocks * P] <- the normals of Philox blocks g0 .. g0 + nblocks - 1.
template <typename T>
inline void fill_blocks(const Key& key, uint64_t g0, int64_t nblocks, T* __restrict out) {
  constexpr int P = PerBlock<T>::value;
  alignas(64) uint32_t x[4 * kTile];
  int64_t j = 0;
  for (; j + kTile <= nblocks; j += kTile) {
    const uint64_t g = g0 + static_cast<uint64_t>(j);
    if (static_cast<uint32_t>(g) > 0xFFFFFFFFu - (kTile - 1)) break;  // the tile would carry
    philox_tile(static_cast<uint32_t>(g), static_cast<uint32_t>(g >> 32), key, x);
    // Box-Muller over the tile's lanes (vectorized by the compiler), stored block by block
    for (int l = 0; l < kTile; ++l) {
      const uint32_t w[4] = {x[l], x[kTile + l], x[2 * kTile + l], x[3 * kTile + l]};
      T n[P];
      normals(w, n);
      for (int q = 0; q < P; ++q) out[(j + l) * P + q] = n[q];
    }
  }
  // the tail, and a tile that would carry into the high counter word, one block at a time
  for (; j < nblocks; ++j) {
    uint32_t w[4];
    block(key, g0 + static_cast<uint64_t>(j), w);
    T n[P];
    normals(w, n);
    for (int q = 0; q < P; ++q) out[j * P + q] = n[q];
  }
}

// Space `normals_cpu` needs for `count` normals.
template <typename T>
constexpr int64_t normals_buffer_size(int64_t count) {
  return count + 2 * PerBlock<T>::value;
}

// The normals with flat stream indices [start, start + count), computed into buf (at least
// normals_buffer_size<T>(count) long); returns the pointer to the one with index `start`.
template <typename T>
inline const T* normals_cpu(const Key& key, uint64_t start, int64_t count, T* buf) {
  constexpr uint64_t P = PerBlock<T>::value;
  const uint64_t g0 = start / P;
  const uint64_t g1 = (start + static_cast<uint64_t>(count) + P - 1) / P;
  fill_blocks(key, g0, static_cast<int64_t>(g1 - g0), buf);
  return buf + (start - g0 * P);
}

VAEBENCH_PHILOX_CAPABILITY_NS_END
}  // namespace vaebench::philox
