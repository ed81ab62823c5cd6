// exp of float32 vectors for the CPU kernels whose arguments are log-weights minus their max
// (log_mean_exp, importance_weights): x <= 0 up to rounding.
//
// ATen's exp_u20 took 1.7x the time of this one in a loop over cached data (AVX-512, Zen 4),
// and exp is most of log_mean_exp's work per entry once the data streams from cache. Here:
//   exp(x) = 2^n * p(r),  n = round(x / ln 2),  r = x - n ln 2 in [-ln2/2, ln2/2]
// with ln 2 split in two (Cody-Waite; each fma rounds once) and p a degree-6 polynomial fitted
// to exp on that interval in relative error (weighted least squares iterated to equal ripple,
// 2e-9 before float32 rounding). Measured against float64 exp on 23 million points of
// [-87, 0.5]: at most 1.05 ulp (exp_u20: 20 ulp, and far more near the underflow end).
// 2^n is built in the exponent field: x is first clamped to >= -88, so n >= -127, and n = -127
// gives the bit pattern of +0: arguments below about -87.3 return exactly 0 (the true value is
// below 1.2e-38, the smallest normal float; all -inf slices depend on the exact 0). NaN passes
// through the clamp and the polynomial, so exp(NaN) = NaN. Arguments above 88 are outside the
// domain (2^n overflows the exponent field).
//
// Included by csrc/<op>.cpp files compiled once per CPU capability (csrc/cpu_capability.h): the
// Vectorized type differs per capability, hence the CPU_CAPABILITY namespace.
#pragma once

#include <ATen/cpu/vec/vec.h>

#include <cstdint>

namespace vaebench::cpu::CPU_CAPABILITY {

// float64: SLEEF's 1-ulp exp (float64 speed is not what the kernels are tuned for).
template <typename T>
inline at::vec::Vectorized<T> exp_nonpositive(const at::vec::Vectorized<T>& x) {
  return x.exp();
}

template <>
inline at::vec::Vectorized<float> exp_nonpositive<float>(const at::vec::Vectorized<float>& x) {
  using Vec = at::vec::Vectorized<float>;
  using IVec = at::vec::Vectorized<int32_t>;
  // clamp_min(x, c) keeps a NaN x (max(c, x) returns its second operand on NaN).
  const Vec a = at::vec::clamp_min(x, Vec(-88.0f));
  // Adding 1.5 * 2^23 rounds a / ln 2 to the integer n and leaves n in the low mantissa bits
  // (two's complement, |n| < 2^22): t's bits shifted left by 23 are n << 23, the exponent step.
  const Vec magic(12582912.0f);
  const Vec t = at::vec::fmadd(a, Vec(1.44269504088896341f), magic);  // 1 / ln 2
  const Vec n = t - magic;
  Vec r = at::vec::fmadd(n, Vec(-0.693145751953125f), a);        // ln 2, high bits
  r = at::vec::fmadd(n, Vec(-1.42860682030941723e-06f), r);      // ln 2, the rest
  Vec p = Vec(0.0013836846f);
  p = at::vec::fmadd(p, r, Vec(0.008374816f));
  p = at::vec::fmadd(p, r, Vec(0.041668225f));
  p = at::vec::fmadd(p, r, Vec(0.1666642f));
  p = at::vec::fmadd(p, r, Vec(0.4999999f));
  p = at::vec::fmadd(p, r, Vec(1.0f));
  p = at::vec::fmadd(p, r, Vec(1.0f));
  // 2^n = the bits of 1.0f plus n << 23 (n in [-127, 0]; n = -127 gives the bits of +0).
  const IVec scale = (at::vec::cast<int32_t>(t) << IVec(23)) + IVec(0x3f800000);
  return p * at::vec::cast<float>(scale);
}

}  // namespace vaebench::cpu::CPU_CAPABILITY
