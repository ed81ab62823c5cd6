// CPU kernels of vaebench::log_mean_exp, log_mean_exp_backward and importance_weights.
//
// log_w is walked as [outer, K, inner] (csrc/log_mean_exp.h). One pass over memory: each
// column keeps an online (max, rescaled sum) state, one exp per entry. The states are
// accumulated in blocks of kBlock rows in the input precision and merged into float64 totals,
// so the float32 rounding error grows with kBlock, not with K.
//
// exp is ATen's exp_u20 (float32: a polynomial with <= 20 ulp error, ~1.5x faster than SLEEF's
// 1-ulp exp here; float64 falls back to exp): the arguments are <= 0 differences whose own
// rounding (an ulp of lse) dominates, and tests/ops hold the float32 results to twice the error
// of torch's float32 logsumexp.
//
// This file is compiled once per CPU capability (csrc/cpu_capability.h); the DEFAULT copy also
// registers the ops.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_capability.h"
#include "log_mean_exp.h"

VAEBENCH_DECLARE_CPU_KERNEL(void, log_mean_exp_forward_kernel, const at::Tensor& log_w,
                            const vaebench::lme::ReductionShape& r, double shift, at::Tensor& out,
                            at::Tensor* out_lo, at::Tensor* ess)
VAEBENCH_DECLARE_CPU_KERNEL(void, log_mean_exp_weights_kernel, const at::Tensor& log_w,
                            const vaebench::lme::ReductionShape& r, const at::Tensor& base,
                            const at::Tensor* base_lo, double shift, const at::Tensor* grad,
                            at::Tensor& w)

namespace vaebench::cpu::CPU_CAPABILITY {
namespace {

using at::vec::Vectorized;

// Rows per block of input-precision accumulation before the float64 merge: the float32 rounding
// error grows like sqrt(kBlock) ulp, not sqrt(K).
constexpr int64_t kBlock = 128;
// Columns per work item: the per-column states (4 arrays) stay in L1.
constexpr int64_t kMaxTile = 512;
// Rows whose entries update one register-held state before it goes back to L1.
constexpr int64_t kRowsInRegs = 16;
// Elements per parallel work item, so small problems stay on one thread.
constexpr int64_t kGrain = 32768;

// Online log-sum-exp of each column of x: [rows, cols] (row stride `stride`) into m, s, sq
// (sum exp(x) = s * exp(m), sum exp(2x) = sq * exp(2m)). ml, sl, sql: [cols] scratch.
template <typename T, bool kSq>
void column_lse(const T* x, int64_t rows, int64_t stride, int64_t cols, T* m, double* s,
                double* sq, T* ml, T* sl, T* sql) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  const Vec one(T(1));
  std::fill(m, m + cols, lme::lowest<T>());
  std::fill(s, s + cols, 0.0);
  std::fill(sq, sq + cols, 0.0);
  // Columns [j, j + n) of rows [r, r + nrows): the state stays in registers across the rows.
  auto step = [&](int64_t j, int64_t n, int64_t r, int64_t nrows) {
    Vec mv = Vec::loadu(ml + j, n);
    Vec sv = Vec::loadu(sl + j, n);
    Vec qv = kSq ? Vec::loadu(sql + j, n) : Vec(T(0));
    for (int64_t i = 0; i < nrows; ++i) {
      const Vec xv = Vec::loadu(x + (r + i) * stride + j, n);
      // e = exp(min(x, m) - max(x, m)); x > m: s = s * e + 1 (rescale to the new max),
      // else s = s + e.
      const Vec hi = at::vec::maximum(mv, xv);
      const Vec e = (at::vec::minimum(mv, xv) - hi).exp_u20();
      const Vec gt = xv > mv;
      sv = Vec::blendv(sv + e, at::vec::fmadd(sv, e, one), gt);
      if constexpr (kSq) {
        const Vec e2 = e * e;
        qv = Vec::blendv(qv + e2, at::vec::fmadd(qv, e2, one), gt);
      }
      mv = hi;
    }
    mv.store(ml + j, n);
    sv.store(sl + j, n);
    if constexpr (kSq) qv.store(sql + j, n);
  };
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    const int64_t r1 = std::min(rows, r0 + kBlock);
    std::copy(m, m + cols, ml);
    std::fill(sl, sl + cols, T(0));
    if constexpr (kSq) std::fill(sql, sql + cols, T(0));
    // kRowsInRegs rows at a time: a few concurrent row streams, state loaded once per group.
    for (int64_t r = r0; r < r1; r += kRowsInRegs) {
      const int64_t nrows = std::min(kRowsInRegs, r1 - r);
      int64_t j = 0;
      for (; j + V <= cols; j += V) step(j, V, r, nrows);
      if (j < cols) step(j, cols - j, r, nrows);
    }
    // Merge the block into the float64 totals: total * exp(m_old - m_new) + block.
    for (int64_t j = 0; j < cols; ++j) {
      if (ml[j] != m[j]) {
        const double f = std::exp(static_cast<double>(m[j]) - static_cast<double>(ml[j]));
        s[j] *= f;
        sq[j] *= f * f;
        m[j] = ml[j];
      }
      s[j] += sl[j];
      if constexpr (kSq) sq[j] += sql[j];
    }
  }
}

// out = lse - shift rounded to T; out_lo (optional) = the rounding residual, so that a later
// pass can rebuild lse in float64 (importance_weights).
template <typename T, bool kSq>
void forward_impl(const T* x, const lme::ReductionShape& r, double shift, T* out, T* out_lo,
                  T* ess) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  const int64_t K = r.K, inner = r.inner, outer = r.outer;
  auto put = [&](int64_t i, double v) {
    out[i] = static_cast<T>(v);
    if (out_lo != nullptr) out_lo[i] = std::isfinite(v) ? static_cast<T>(v - out[i]) : T(0);
  };
  if (inner == 1) {
    // Contiguous rows of K: the V lanes are V interleaved columns of a [K / V, V] view, merged
    // at the end with the K % V leftover entries.
    const int64_t grain = std::max<int64_t>(1, kGrain / K);
    at::parallel_for(0, outer, grain, [&](int64_t b, int64_t e) {
      T m[V], ml[V], sl[V], sql[V];
      double s[V], sq[V];
      for (int64_t o = b; o < e; ++o) {
        const T* row = x + o * K;
        double M = lme::lowest<double>(), S = 0.0, SQ = 0.0;
        const int64_t nvec = K / V;
        if (nvec > 0) {
          column_lse<T, kSq>(row, nvec, V, V, m, s, sq, ml, sl, sql);
          for (int64_t l = 0; l < V; ++l) lme::online_merge<double>(M, S, SQ, m[l], s[l], sq[l]);
        }
        for (int64_t k = nvec * V; k < K; ++k) lme::online_add<double>(M, S, SQ, row[k]);
        put(o, M + std::log(S) - shift);
        if constexpr (kSq) ess[o] = static_cast<T>(lme::ess_from(S, SQ));
      }
    });
    return;
  }
  // Columns of a [K, inner] slab: tiles as wide as the threads allow (up to kMaxTile), since
  // each row of a tile is one contiguous read and wider reads stream better.
  const int64_t want = at::get_num_threads();
  int64_t tile = (outer * inner + want - 1) / want;
  tile = std::clamp<int64_t>((tile + V - 1) / V * V, 4 * V, kMaxTile);
  tile = std::min(tile, inner);
  const int64_t ntiles = (inner + tile - 1) / tile;
  const int64_t grain = std::max<int64_t>(1, kGrain / (K * tile));
  at::parallel_for(0, outer * ntiles, grain, [&](int64_t b, int64_t e) {
    std::vector<T> m(tile), ml(tile), sl(tile), sql(tile);
    std::vector<double> s(tile), sq(tile);
    for (int64_t item = b; item < e; ++item) {
      const int64_t o = item / ntiles, j0 = (item % ntiles) * tile;
      const int64_t cols = std::min(tile, inner - j0);
      column_lse<T, kSq>(x + o * K * inner + j0, K, inner, cols, m.data(), s.data(), sq.data(),
                         ml.data(), sl.data(), sql.data());
      for (int64_t j = 0; j < cols; ++j) {
        put(o * inner + j0 + j, static_cast<double>(m[j]) + std::log(s[j]) - shift);
      }
      if constexpr (kSq) {
        T* o_ess = ess + o * inner + j0;
        for (int64_t j = 0; j < cols; ++j) o_ess[j] = static_cast<T>(lme::ess_from(s[j], sq[j]));
      }
    }
  });
}

// w = g * exp(x - lse), lse = safe(base + base_lo + shift) per column; g = 1 when `grad` is
// null, base_lo = 0 when null.
// lse is held as hi + lo in T and subtracted as (x - hi) - lo, so that re-adding log K to the
// rounded output costs no extra rounding of lse. x, w: [outer, K, inner]; base, grad: [outer, inner].
template <typename T>
void weights_impl(const T* x, const lme::ReductionShape& r, const T* base, const T* base_lo,
                  double shift, const T* grad, T* w) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  const int64_t K = r.K, inner = r.inner, outer = r.outer;
  std::vector<T> hi(outer * inner), lo(outer * inner);
  for (int64_t i = 0; i < outer * inner; ++i) {
    const double lo_in = base_lo != nullptr ? static_cast<double>(base_lo[i]) : 0.0;
    const double lse = lme::safe_lse(static_cast<double>(base[i]) + lo_in + shift);
    hi[i] = static_cast<T>(lse);
    lo[i] = std::isfinite(lse) ? static_cast<T>(lse - static_cast<double>(hi[i])) : T(0);
  }
  if (inner == 1) {
    const int64_t grain = std::max<int64_t>(1, kGrain / K);
    at::parallel_for(0, outer, grain, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const Vec hv(hi[o]), lv(lo[o]);
        const Vec gv(grad != nullptr ? grad[o] : T(1));
        const T* xr = x + o * K;
        T* wr = w + o * K;
        int64_t k = 0;
        for (; k + V <= K; k += V) (((Vec::loadu(xr + k) - hv) - lv).exp_u20() * gv).store(wr + k);
        if (k < K) (((Vec::loadu(xr + k, K - k) - hv) - lv).exp_u20() * gv).store(wr + k, K - k);
      }
    });
    return;
  }
  const int64_t grain = std::max<int64_t>(1, kGrain / inner);
  at::parallel_for(0, outer * K, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t o = i / K;
      const T* xr = x + i * inner;
      const T* hr = hi.data() + o * inner;
      const T* lr = lo.data() + o * inner;
      const T* gr = grad != nullptr ? grad + o * inner : nullptr;
      T* wr = w + i * inner;
      auto step = [&](int64_t j, int64_t n) {
        Vec v = ((Vec::loadu(xr + j, n) - Vec::loadu(hr + j, n)) - Vec::loadu(lr + j, n)).exp_u20();
        if (gr != nullptr) v = v * Vec::loadu(gr + j, n);
        v.store(wr + j, n);
      };
      int64_t j = 0;
      for (; j + V <= inner; j += V) step(j, V);
      if (j < inner) step(j, inner - j);
    }
  });
}

}  // namespace

void log_mean_exp_forward_kernel(const at::Tensor& log_w, const lme::ReductionShape& r,
                                 double shift, at::Tensor& out, at::Tensor* out_lo,
                                 at::Tensor* ess) {
  AT_DISPATCH_FLOATING_TYPES(log_w.scalar_type(), "vaebench.log_mean_exp", [&] {
    const scalar_t* x = log_w.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    scalar_t* lo = out_lo != nullptr ? out_lo->mutable_data_ptr<scalar_t>() : nullptr;
    if (ess != nullptr) {
      forward_impl<scalar_t, true>(x, r, shift, o, lo, ess->mutable_data_ptr<scalar_t>());
    } else {
      forward_impl<scalar_t, false>(x, r, shift, o, lo, nullptr);
    }
  });
}

void log_mean_exp_weights_kernel(const at::Tensor& log_w, const lme::ReductionShape& r,
                                 const at::Tensor& base, const at::Tensor* base_lo, double shift,
                                 const at::Tensor* grad, at::Tensor& w) {
  AT_DISPATCH_FLOATING_TYPES(log_w.scalar_type(), "vaebench.log_mean_exp_backward", [&] {
    weights_impl<scalar_t>(
        log_w.const_data_ptr<scalar_t>(), r, base.const_data_ptr<scalar_t>(),
        base_lo != nullptr ? base_lo->const_data_ptr<scalar_t>() : nullptr, shift,
        grad != nullptr ? grad->const_data_ptr<scalar_t>() : nullptr,
        w.mutable_data_ptr<scalar_t>());
  });
}

}  // namespace vaebench::cpu::CPU_CAPABILITY

#if VAEBENCH_REGISTERING_UNIT
namespace vaebench {
namespace {

constexpr std::string_view kLme = "log_mean_exp";

// log (1/K) sum_k exp(log_w_k) along dim.
at::Tensor log_mean_exp_cpu(const at::Tensor& log_w, int64_t dim) {
  const auto r = lme::check_reduction(kLme, log_w, dim);
  checks::cpu_dtype(kLme, log_w, "log_w");
  const at::Tensor x = log_w.contiguous();
  at::Tensor out = at::empty(lme::reduced_sizes(log_w, r.dim), log_w.options());
  if (out.numel() > 0) {
    VAEBENCH_CPU_DISPATCH(log_mean_exp_forward_kernel, x, r, std::log(static_cast<double>(r.K)),
                          out, nullptr, nullptr);
  }
  return out;
}

// d out / d log_w_k = w_k = exp(log_w_k - out - log K): the self-normalized weights.
at::Tensor log_mean_exp_backward_cpu(const at::Tensor& grad, const at::Tensor& log_w,
                                     const at::Tensor& out, int64_t dim) {
  constexpr std::string_view op = "log_mean_exp_backward";
  const auto r = lme::check_backward(op, grad, log_w, out, dim);
  checks::cpu_dtype(op, log_w, "log_w");
  const at::Tensor x = log_w.contiguous();
  const at::Tensor g = grad.contiguous();
  const at::Tensor o = out.contiguous();
  at::Tensor w = at::empty(log_w.sizes(), log_w.options());
  if (w.numel() > 0) {
    VAEBENCH_CPU_DISPATCH(log_mean_exp_weights_kernel, x, r, o, nullptr,
                          std::log(static_cast<double>(r.K)), &g, w);
  }
  return w;
}

// w_k = exp(log_w_k - lse) and ESS = 1 / sum_k w_k^2 (0 and 0 on an all -inf slice).
std::tuple<at::Tensor, at::Tensor> importance_weights_cpu(const at::Tensor& log_w, int64_t dim) {
  constexpr std::string_view op = "importance_weights";
  const auto r = lme::check_reduction(op, log_w, dim);
  checks::cpu_dtype(op, log_w, "log_w");
  const at::Tensor x = log_w.contiguous();
  const auto sizes = lme::reduced_sizes(log_w, r.dim);
  at::Tensor lse = at::empty(sizes, log_w.options());
  at::Tensor lse_lo = at::empty(sizes, log_w.options());
  at::Tensor ess = at::empty(sizes, log_w.options());
  at::Tensor w = at::empty(log_w.sizes(), log_w.options());
  if (w.numel() > 0) {
    VAEBENCH_CPU_DISPATCH(log_mean_exp_forward_kernel, x, r, 0.0, lse, &lse_lo, &ess);
    VAEBENCH_CPU_DISPATCH(log_mean_exp_weights_kernel, x, r, lse, &lse_lo, 0.0, nullptr, w);
  }
  return {w, ess};
}

}  // namespace
}  // namespace vaebench

TORCH_LIBRARY_IMPL(vaebench, CPU, m) {
  m.impl("log_mean_exp", &vaebench::log_mean_exp_cpu);
  m.impl("log_mean_exp_backward", &vaebench::log_mean_exp_backward_cpu);
  m.impl("importance_weights", &vaebench::importance_weights_cpu);
}
#endif
