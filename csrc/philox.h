// Philox4x32-10 counter-based RNG and the Box-Muller normal transform, written once for the
// host (every CPU capability copy) and the device (CUDA), so both produce the same stream.
//
// Stream layout (shared by csrc/reparameterize.cpp and csrc/cuda/reparameterize.cu): the
// normal with flat index i (i over z: [K, *batch, D], row-major) comes from the Philox block
//     counter = (g_lo, g_hi, offset_lo, offset_hi), key = (seed_lo, seed_hi),
//     g = i / P, lane i % P,  P = 4 normals per block (float32 path) or 2 (float64 path).
// It depends on the element index only, never on threads or launch configuration.
//
// Bit-for-bit reproducibility: every transcendental below (log, sin/cos of 2 pi t, exp) is our
// own polynomial built from IEEE-exact operations only (+, -, *, /, sqrt, fma, exact
// int<->float conversions, bit casts), with every multiply-add written as an explicit fma and
// contraction disabled for the files that include this header (-ffp-contract=off, nvcc
// --fmad=false, set in CMakeLists.txt). The result is the same bits on every CPU capability and
// on CUDA. libm/SLEEF/CUDA math would differ by an ulp or two between them.
//
// References: "Parallel random numbers: as easy as 1, 2, 3", J. K. Salmon, M. A. Moraes,
// R. O. Dror, D. E. Shaw, SC 2011 (Philox, the known-answer vectors); "A note on the generation
// of random normal deviates", G. E. P. Box, M. E. Muller, 1958.
#pragma once

#include <cstdint>

#include <bit>
#include <cmath>

#if defined(__CUDACC__)
#define VAEBENCH_HD __host__ __device__ __forceinline__
#else
#define VAEBENCH_HD inline __attribute__((always_inline))
#endif

// Each CPU capability copy of a file that includes this header gets its own copy of these
// inline functions (an inline namespace named after CPU_CAPABILITY): otherwise the linker would
// keep one copy, e.g. the scalar DEFAULT one, for all of them.
#if defined(CPU_CAPABILITY) && !defined(__CUDACC__)
#define VAEBENCH_PHILOX_CAPABILITY_NS_BEGIN inline namespace CPU_CAPABILITY {
#define VAEBENCH_PHILOX_CAPABILITY_NS_END }
#else
#define VAEBENCH_PHILOX_CAPABILITY_NS_BEGIN
#define VAEBENCH_PHILOX_CAPABILITY_NS_END
#endif

namespace vaebench::philox {
VAEBENCH_PHILOX_CAPABILITY_NS_BEGIN

// ---- portable primitives -----------------------------------------------------------------
VAEBENCH_HD float fma_(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
VAEBENCH_HD double fma_(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
VAEBENCH_HD float sqrt_(float x) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}
VAEBENCH_HD double sqrt_(double x) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}
VAEBENCH_HD float div_(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
VAEBENCH_HD double div_(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
VAEBENCH_HD uint32_t bits_(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  return std::bit_cast<uint32_t>(x);
#endif
}
VAEBENCH_HD float f32_from_bits(uint32_t x) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(x);
#else
  return std::bit_cast<float>(x);
#endif
}
VAEBENCH_HD uint64_t bits_(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(x));
#else
  return std::bit_cast<uint64_t>(x);
#endif
}
VAEBENCH_HD double f64_from_bits(uint64_t x) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(x));
#else
  return std::bit_cast<double>(x);
#endif
}

// Exact conversions built from int32 -> float/double only: the correctly rounded float(x) of
// a uint32 (one rounding of the exact hi 2^16 + lo), and double(x) of an int64 with |x| < 2^53
// (exact). SIMD has no unsigned (AVX2) or 64-bit (AVX2, AVX-512F) integer conversions; these
// forms vectorize everywhere and give the same bits as a plain cast.
VAEBENCH_HD float u32_to_float(uint32_t x) {
  return fma_(static_cast<float>(static_cast<int32_t>(x >> 16)), 65536.0f,
              static_cast<float>(static_cast<int32_t>(x & 0xFFFFu)));
}
VAEBENCH_HD double i64_to_double(int64_t x) {
  return fma_(static_cast<double>(static_cast<int32_t>(x >> 26)), 0x1p26,
              static_cast<double>(static_cast<int32_t>(x & ((int64_t{1} << 26) - 1))));
}

// ---- Philox4x32-10 -------------------------------------------------------------------------
constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;
constexpr uint32_t kWeyl1 = 0xBB67AE85u;

struct Key {
  uint32_t k0, k1;  // seed (lo, hi)
  uint32_t o0, o1;  // stream offset (lo, hi): counter words 2 and 3
};

VAEBENCH_HD Key make_key(uint64_t seed, uint64_t offset) {
  return Key{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
             static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32)};
}

// One Philox round: (c0, c1, c2, c3) -> (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0)).
VAEBENCH_HD void round_(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0,
                        uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0;
  const uint64_t p1 = static_cast<uint64_t>(kMul1) * c2;
  const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
  const uint32_t n1 = static_cast<uint32_t>(p1);
  const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
  const uint32_t n3 = static_cast<uint32_t>(p0);
  c0 = n0;
  c1 = n1;
  c2 = n2;
  c3 = n3;
}

// Philox4x32 with 10 rounds: out = philox(counter = (c0, c1, c2, c3), key = (k0, k1)).
VAEBENCH_HD void philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                               uint32_t k1, uint32_t out[4]) {
#if defined(__CUDACC__)
#pragma unroll
#else
#pragma GCC unroll 10
#endif
  for (int r = 0; r < 10; ++r) {
    round_(c0, c1, c2, c3, k0, k1);
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// The Philox block for group g of the stream (see the layout at the top of the file).
VAEBENCH_HD void block(const Key& key, uint64_t g, uint32_t out[4]) {
  philox4x32_10(static_cast<uint32_t>(g), static_cast<uint32_t>(g >> 32), key.o0, key.o1, key.k0,
                key.k1, out);
}

// ---- float32 math: log on (0, 1], sin/cos of 2 pi t, exp -----------------------------------
// log(u) = e ln2 + log(m), u = 2^e m, m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s) with
// s = (m - 1) / (m + 1) = 2 s (1 + s^2/3 + s^4/5 + ...), |s| <= 0.172 (truncation < 1e-9).
VAEBENCH_HD float log_unit(float u) {
  const uint32_t b = bits_(u);
  // m = 1.mant in [1, 2); m > sqrt(2) (as float: 0x3FB504F3) moves to m / 2 and e + 1, done on
  // the integer fields (selects on floats do not vectorize for AVX2).
  const uint32_t mant = b & 0x007FFFFFu;
  const uint32_t big = static_cast<uint32_t>(mant > 0x003504F3u);
  const int32_t e = static_cast<int32_t>(b >> 23) - 127 + static_cast<int32_t>(big);
  const float m = f32_from_bits((mant | 0x3F800000u) - (big << 23));
  const float f = m - 1.0f;  // exact (Sterbenz)
  const float s = div_(f, 2.0f + f);
  const float s2 = s * s;
  float p = 1.0f / 9.0f;
  p = fma_(p, s2, 1.0f / 7.0f);
  p = fma_(p, s2, 1.0f / 5.0f);
  p = fma_(p, s2, 1.0f / 3.0f);
  const float two_s = s + s;
  const float log_m = fma_(two_s * s2, p, two_s);
  // Cody-Waite ln2 = hi + lo, hi with 9 significant bits so e * hi is exact.
  const float ef = static_cast<float>(e);
  return fma_(ef, 0.693359375f, fma_(ef, -2.12194440e-4f, log_m));
}

// (sin, cos) of 2 pi a / 2^24 for a 24-bit integer a. The quadrant q = round(4 a / 2^24) and
// t = a / 2^24 - q / 4 in [-1/8, 1/8] are exact integer arithmetic; sin(2 pi t) = t S(t^2) and
// cos(2 pi t) = C(t^2) are Taylor polynomials (truncation < 3e-9 relative).
VAEBENCH_HD void sincos_2pi(uint32_t a, float& sn, float& cs) {
  const int32_t q = static_cast<int32_t>((a + (1u << 21)) >> 22);  // 0..4
  const int32_t ti = static_cast<int32_t>(a) - (q << 22);          // [-2^21, 2^21]
  const float t = static_cast<float>(ti) * 0x1p-24f;
  const float t2 = t * t;
  float sp = 0x1.507834p+5f;
  sp = fma_(sp, t2, -0x1.32d2ccp+6f);
  sp = fma_(sp, t2, 0x1.466bc6p+6f);
  sp = fma_(sp, t2, -0x1.4abbcep+5f);
  sp = fma_(sp, t2, 0x1.921fb6p+2f);
  const float s = sp * t;
  float cp = -0x1.a6d1f2p+4f;
  cp = fma_(cp, t2, 0x1.e1f506p+5f);
  cp = fma_(cp, t2, -0x1.55d3c8p+6f);
  cp = fma_(cp, t2, 0x1.03c1f0p+6f);
  cp = fma_(cp, t2, -0x1.3bd3ccp+4f);
  const float c = fma_(cp, t2, 1.0f);
  // theta = q pi/2 + 2 pi t: rotate (s, c) by the quadrant.
  const bool swap = (q & 1) != 0;
  const float s1 = swap ? c : s;
  const float c1 = swap ? s : c;
  sn = (q & 2) != 0 ? -s1 : s1;
  cs = ((q + 1) & 2) != 0 ? -c1 : c1;
}

// exp(x) = 2^n exp(r), n = round(x / ln2), r = x - n ln2 in [-0.35, 0.35] (Cody-Waite), exp(r)
// by its Taylor polynomial to r^7; 2^n applied in two exact halves so that the result under-
// and overflows exactly like a correctly rounded scaling.
VAEBENCH_HD float exp_(float x) {
  x = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);
  // round-to-nearest integer by the 1.5 * 2^23 shifter (exact for |x / ln2| < 2^22)
  const float n = fma_(x, 1.44269504f, 12582912.0f) - 12582912.0f;
  float r = fma_(-n, 0.693359375f, x);
  r = fma_(-n, -2.12194440e-4f, r);
  float p = 1.0f / 5040.0f;
  p = fma_(p, r, 1.0f / 720.0f);
  p = fma_(p, r, 1.0f / 120.0f);
  p = fma_(p, r, 1.0f / 24.0f);
  p = fma_(p, r, 1.0f / 6.0f);
  p = fma_(p, r, 0.5f);
  p = fma_(p, r, 1.0f);
  p = fma_(p, r, 1.0f);
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t h = ni / 2;
  const float s0 = f32_from_bits(static_cast<uint32_t>(h + 127) << 23);
  const float s1 = f32_from_bits(static_cast<uint32_t>(ni - h + 127) << 23);
  return (p * s0) * s1;
}

// ---- float64 math: the same constructions with double-precision polynomials ----------------
VAEBENCH_HD double log_unit(double u) {
  const uint64_t b = bits_(u);
  // as for float: sqrt(2) as double is 0x3FF6A09E667F3BCD
  const uint64_t mant = b & 0x000FFFFFFFFFFFFFull;
  const uint64_t big = static_cast<uint64_t>(mant > 0x0006A09E667F3BCDull);
  const int64_t e = static_cast<int64_t>(b >> 52) - 1023 + static_cast<int64_t>(big);
  const double m = f64_from_bits(static_cast<uint64_t>((mant | 0x3FF0000000000000ull) - (big << 52)));
  const double f = m - 1.0;
  const double s = div_(f, 2.0 + f);
  const double s2 = s * s;
  double p = 1.0 / 23.0;
  p = fma_(p, s2, 1.0 / 21.0);
  p = fma_(p, s2, 1.0 / 19.0);
  p = fma_(p, s2, 1.0 / 17.0);
  p = fma_(p, s2, 1.0 / 15.0);
  p = fma_(p, s2, 1.0 / 13.0);
  p = fma_(p, s2, 1.0 / 11.0);
  p = fma_(p, s2, 1.0 / 9.0);
  p = fma_(p, s2, 1.0 / 7.0);
  p = fma_(p, s2, 1.0 / 5.0);
  p = fma_(p, s2, 1.0 / 3.0);
  const double two_s = s + s;
  const double log_m = fma_(two_s * s2, p, two_s);
  const double ef = static_cast<double>(static_cast<int32_t>(e));
  // fdlibm's ln2_hi has 32 significant bits: e * hi is exact for |e| < 2^21.
  return fma_(ef, 6.93147180369123816490e-01, fma_(ef, 1.90821492927058770002e-10, log_m));
}

// (sin, cos) of 2 pi a / 2^53 for a 53-bit integer a.
VAEBENCH_HD void sincos_2pi(uint64_t a, double& sn, double& cs) {
  const int64_t q = static_cast<int64_t>((a + (1ull << 50)) >> 51);  // 0..4
  const int64_t ti = static_cast<int64_t>(a) - (q << 51);  // [-2^50, 2^50]
  const double t = i64_to_double(ti) * 0x1p-53;
  const double t2 = t * t;
  double sp = 0x1.aaec32af93359p-4;
  sp = fma_(sp, t2, -0x1.6fadb9f155744p-1);
  sp = fma_(sp, t2, 0x1.e8f434d018d63p+1);
  sp = fma_(sp, t2, -0x1.e3074fde8871fp+3);
  sp = fma_(sp, t2, 0x1.50783487ee782p+5);
  sp = fma_(sp, t2, -0x1.32d2cce62bd86p+6);
  sp = fma_(sp, t2, 0x1.466bc6775aae2p+6);
  sp = fma_(sp, t2, -0x1.4abbce625be53p+5);
  sp = fma_(sp, t2, 0x1.921fb54442d18p+2);
  const double s = sp * t;
  double cp = -0x1.2a0c591af8314p-5;
  cp = fma_(cp, t2, 0x1.20c62c2f2d7f5p-2);
  cp = fma_(cp, t2, -0x1.b6e24f44b128fp+0);
  cp = fma_(cp, t2, 0x1.f9d38a3763cc3p+2);
  cp = fma_(cp, t2, -0x1.a6d1f2a204a8cp+4);
  cp = fma_(cp, t2, 0x1.e1f506891babbp+5);
  cp = fma_(cp, t2, -0x1.55d3c7e3cbffap+6);
  cp = fma_(cp, t2, 0x1.03c1f081b5ac4p+6);
  cp = fma_(cp, t2, -0x1.3bd3cc9be45dep+4);
  const double c = fma_(cp, t2, 1.0);
  const bool swap = (q & 1) != 0;
  const double s1 = swap ? c : s;
  const double c1 = swap ? s : c;
  sn = (q & 2) != 0 ? -s1 : s1;
  cs = ((q + 1) & 2) != 0 ? -c1 : c1;
}

VAEBENCH_HD double exp_(double x) {
  x = x < -746.0 ? -746.0 : (x > 710.0 ? 710.0 : x);
  const double n = fma_(x, 1.4426950408889634, 6755399441055744.0) - 6755399441055744.0;
  double r = fma_(-n, 6.93147180369123816490e-01, x);
  r = fma_(-n, 1.90821492927058770002e-10, r);
  // Taylor to r^13 (|r| <= 0.347: truncation < 5e-18)
  double p = 1.0 / 6227020800.0;
  p = fma_(p, r, 1.0 / 479001600.0);
  p = fma_(p, r, 1.0 / 39916800.0);
  p = fma_(p, r, 1.0 / 3628800.0);
  p = fma_(p, r, 1.0 / 362880.0);
  p = fma_(p, r, 1.0 / 40320.0);
  p = fma_(p, r, 1.0 / 5040.0);
  p = fma_(p, r, 1.0 / 720.0);
  p = fma_(p, r, 1.0 / 120.0);
  p = fma_(p, r, 1.0 / 24.0);
  p = fma_(p, r, 1.0 / 6.0);
  p = fma_(p, r, 0.5);
  p = fma_(p, r, 1.0);
  p = fma_(p, r, 1.0);
  const int64_t ni = static_cast<int64_t>(n);
  const int64_t h = ni / 2;
  const double s0 = f64_from_bits(static_cast<uint64_t>(h + 1023) << 52);
  const double s1 = f64_from_bits(static_cast<uint64_t>(ni - h + 1023) << 52);
  return (p * s0) * s1;
}

// ---- Box-Muller: one Philox block -> normals ---------------------------------------------
// float32: 4 normals per block. u = (x0 + 1/2) 2^-32 in (0, 1) from all 32 bits (|eps| <= 6.8),
// angle from 24 bits: (n0, n1) = sqrt(-2 log u) (cos, sin)(2 pi (x1 >> 8) 2^-24); same for
// (x2, x3) -> (n2, n3).
VAEBENCH_HD float uniform_open(uint32_t x) {
  return fma_(u32_to_float(x), 0x1p-32f, 0x1p-33f);
}

VAEBENCH_HD void normals(const uint32_t x[4], float out[4]) {
  const float r0 = sqrt_(-2.0f * log_unit(uniform_open(x[0])));
  const float r1 = sqrt_(-2.0f * log_unit(uniform_open(x[2])));
  float s0, c0, s1, c1;
  sincos_2pi(x[1] >> 8, s0, c0);
  sincos_2pi(x[3] >> 8, s1, c1);
  out[0] = r0 * c0;
  out[1] = r0 * s0;
  out[2] = r1 * c1;
  out[3] = r1 * s1;
}

// float64: 2 normals per block from two 53-bit integers, u = (a + 1) 2^-53 in (0, 1]
// (|eps| <= 8.6) and the angle 2 pi b 2^-53.
VAEBENCH_HD void normals(const uint32_t x[4], double out[2]) {
  const uint64_t a = (static_cast<uint64_t>(x[0]) << 21) | (x[1] >> 11);
  const uint64_t b = (static_cast<uint64_t>(x[2]) << 21) | (x[3] >> 11);
  const double r = sqrt_(-2.0 * log_unit(i64_to_double(static_cast<int64_t>(a + 1)) * 0x1p-53));
  double s, c;
  sincos_2pi(b, s, c);
  out[0] = r * c;
  out[1] = r * s;
}

// Normals per Philox block for a compute type.
template <typename T>
struct PerBlock;
template <>
struct PerBlock<float> {
  static constexpr int value = 4;
};
template <>
struct PerBlock<double> {
  static constexpr int value = 2;
};

// The single normal with flat stream index i (slow path: heads, tails, tests).
template <typename T>
VAEBENCH_HD T normal_at(const Key& key, uint64_t i) {
  constexpr int P = PerBlock<T>::value;
  uint32_t x[4];
  block(key, i / P, x);
  T n[P];
  normals(x, n);
  return n[i % P];
}

VAEBENCH_PHILOX_CAPABILITY_NS_END
}  // namespace vaebench::philox
