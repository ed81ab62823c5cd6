// CPU side of the Philox normal stream (csrc/philox.h): runs of Philox blocks turned into
// normals in a loop the compiler vectorizes (checked with -fopt-info-vec for the AVX2 and
// AVX-512 copies). Included by csrc/<op>.cpp files, so it is compiled once per CPU capability;
// every copy gives the same bits (see philox.h).
#pragma once

#include "philox.h"

#include <cstdint>

namespace vaebench::philox {
VAEBENCH_PHILOX_CAPABILITY_NS_BEGIN

// out: [nblocks * P] <- the normals of Philox blocks g0 .. g0 + nblocks - 1.
template <typename T>
inline void fill_blocks(const Key& key, uint64_t g0, int64_t nblocks, T* __restrict out) {
  constexpr int P = PerBlock<T>::value;
  while (nblocks > 0) {
    const uint32_t lo = static_cast<uint32_t>(g0);
    const uint32_t hi = static_cast<uint32_t>(g0 >> 32);
    // A run never carries into the high counter word, so the loop counter stays 32-bit (which
    // is what lets it vectorize).
    const uint64_t room = (uint64_t{1} << 32) - lo;
    const int64_t run = static_cast<uint64_t>(nblocks) < room ? nblocks : static_cast<int64_t>(room);
    for (int64_t j = 0; j < run; ++j) {
      uint32_t x[4];
      philox4x32_10(lo + static_cast<uint32_t>(j), hi, key.o0, key.o1, key.k0, key.k1, x);
      T n[P];
      normals(x, n);
      for (int l = 0; l < P; ++l) {
        out[j * P + l] = n[l];
      }
    }
    out += run * P;
    g0 += static_cast<uint64_t>(run);
    nblocks -= run;
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
