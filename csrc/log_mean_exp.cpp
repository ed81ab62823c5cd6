// CPU kernels of vaebench::log_mean_exp, log_mean_exp_backward and importance_weights.
//
// log_w is walked as [outer, K, inner] (csrc/log_mean_exp.h). One pass over memory: each
// column keeps an online (max, rescaled sum) state, one exp per entry. The states are
// accumulated in blocks of kBlock rows in the input precision and merged into float64 totals,
// so the float32 rounding error grows with kBlock, not with K. Three walks (forward_impl):
// columns of [K, inner] slabs (inner > 1), long contiguous rows as [K / V, V] lanes, and short
// rows transposed V at a time, so that every walk keeps all vector lanes busy.
//
// exp is csrc/vec_exp.h's exp_nonpositive (float32: at most 1.05 ulp measured, where ATen's
// exp_u20 took 1.7x its time), since the arguments are always <= 0 differences; tests/ops hold
// the float32 results to twice the error of torch's float32 logsumexp. The weights (the backward
// and importance_weights) are a second pass, w = exp(x - M) * g / S, from each column's max M and
// sum S that a forward walk leaves (never from the rounded lse: lme::weight_scale says why); the
// backward therefore reads log_w twice. Large weight tensors are written with streaming stores
// (kStreamBytes).
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
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "cpu_capability.h"
#include "log_mean_exp.h"
#include "vec_exp.h"

VAEBENCH_DECLARE_CPU_KERNEL(void, log_mean_exp_forward_kernel, const at::Tensor& log_w,
                            const vaebench::lme::ReductionShape& r, double shift, at::Tensor* out,
                            at::Tensor* col_max, at::Tensor* col_sum, at::Tensor* ess)
VAEBENCH_DECLARE_CPU_KERNEL(void, log_mean_exp_weights_kernel, const at::Tensor& log_w,
                            const vaebench::lme::ReductionShape& r, const at::Tensor& col_max,
                            const at::Tensor& col_sum, const at::Tensor* grad, at::Tensor& w)

namespace vaebench::cpu::CPU_CAPABILITY {
namespace {

using at::vec::Vectorized;

// Rows per block of input-precision accumulation before the float64 merge: the float32 rounding
// error grows like sqrt(kBlock) ulp, not sqrt(K).
constexpr int64_t kBlock = 128;
// Columns per work item: the per-column states (4 arrays) stay in L1.
constexpr int64_t kMaxTile = 512;
// Rows whose entries update one register-held state before it goes back to L1 (8 measured
// faster than 4, 16 and 24 on the 2-core AVX-512 machine).
constexpr int64_t kRowsInRegs = 8;
// Rows at least this long are walked one at a time (K / V entries per lane); shorter ones are
// transposed V rows at a time.
constexpr int64_t kLongRow = 128;
// Bytes of output from which the weights are written with streaming stores: log_w and w
// together (2 x 16 MiB) then exceed a server L3 (32 MiB here).
constexpr int64_t kStreamBytes = int64_t(16) << 20;
// Elements per parallel work item, so small problems stay on one thread.
constexpr int64_t kGrain = 32768;

// Log-sum-exp of each column of x: [rows, cols] (row stride `stride`) into m, s, sq
// (sum exp(x) = s * exp(m), sum exp(2x) = sq * exp(2m)). ml, sl, sql: [cols] scratch.
//
// Per group of kRowsInRegs rows of V columns, in registers: the group's max first, the running
// sums rescaled by exp(m_old - m_new) only when some lane's max grew (rare after the first
// rows), then one exp(x - m) and one add per entry. Ties and NaN need no care on this path:
// m starts at the lowest finite value, so -inf entries give exp(-inf) = 0; a NaN entry makes
// its column's sum NaN (exp_nonpositive passes NaN), and a +inf entry makes the max +inf; such
// columns (a non-finite max or sum) are redone by the caller with the scalar online step.
template <typename T, bool kSq>
void column_lse(const T* x, int64_t rows, int64_t stride, int64_t cols, T* m, double* s,
                double* sq, T* ml, T* sl, T* sql) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  const Vec zero(T(0));
  std::fill(m, m + cols, lme::lowest<T>());
  std::fill(s, s + cols, 0.0);
  std::fill(sq, sq + cols, 0.0);
  // Columns [j, j + n) of rows [r, r + nrows): the state stays in registers across the rows.
  // n and nrows come as std::integral_constant in the common case (full vectors, full groups)
  // so that the loops unroll and xs lives in registers.
  auto step = [&](int64_t j, auto n, int64_t r, auto nrows) {
    Vec mv = Vec::loadu(ml + j, n);
    Vec sv = Vec::loadu(sl + j, n);
    Vec qv = kSq ? Vec::loadu(sql + j, n) : zero;
    Vec xs[kRowsInRegs];
    Vec hi = mv;
    for (int64_t i = 0; i < nrows; ++i) {
      xs[i] = Vec::loadu(x + (r + i) * stride + j, n);
      hi = at::vec::clamp_min(xs[i], hi);  // max; a NaN may drop out here, see above
    }
    // (hi > mv) is all-zero bits, i.e. every lane "zero", unless some max grew.
    if ((hi > mv).zero_mask() != (1 << V) - 1) {
      const Vec f = exp_nonpositive(mv - hi);  // rescale the sums to the new max
      sv = sv * f;
      if constexpr (kSq) qv = qv * f * f;
      mv = hi;
    }
    for (int64_t i = 0; i < nrows; ++i) {
      const Vec e = exp_nonpositive(xs[i] - mv);
      sv = sv + e;
      if constexpr (kSq) qv = at::vec::fmadd(e, e, qv);
    }
    mv.store(ml + j, n);
    sv.store(sl + j, n);
    if constexpr (kSq) qv.store(sql + j, n);
  };
  const std::integral_constant<int64_t, V> full_vec;
  const std::integral_constant<int64_t, kRowsInRegs> full_group;
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    const int64_t r1 = std::min(rows, r0 + kBlock);
    std::copy(m, m + cols, ml);
    std::fill(sl, sl + cols, T(0));
    if constexpr (kSq) std::fill(sql, sql + cols, T(0));
    int64_t r = r0;
    for (; r + kRowsInRegs <= r1; r += kRowsInRegs) {
      int64_t j = 0;
      for (; j + V <= cols; j += V) step(j, full_vec, r, full_group);
      if (j < cols) step(j, cols - j, r, full_group);
    }
    if (r < r1) {
      int64_t j = 0;
      for (; j + V <= cols; j += V) step(j, full_vec, r, r1 - r);
      if (j < cols) step(j, cols - j, r, r1 - r);
    }
    // Merge the block into the float64 totals: total * exp(m_old - m_new) + block.
    for (int64_t j = 0; j < cols; ++j) {
      if (ml[j] != m[j]) {
        if (s[j] != 0.0) {  // nothing to rescale in the first block (or after only -inf)
          const double f = std::exp(static_cast<double>(m[j]) - static_cast<double>(ml[j]));
          s[j] *= f;
          sq[j] *= f * f;
        }
        m[j] = ml[j];
      }
      s[j] += sl[j];
      if constexpr (kSq) sq[j] += sql[j];
    }
  }
}

// The scalar online step over one column (rows entries, `stride` apart): exact for any
// mix of NaN and infinities, used for the columns column_lse leaves non-finite.
template <typename T>
void column_lse_scalar(const T* x, int64_t rows, int64_t stride, double& m, double& s,
                       double& sq) {
  m = lme::lowest<double>();
  s = 0.0;
  sq = 0.0;
  for (int64_t k = 0; k < rows; ++k) lme::online_add<double>(m, s, sq, x[k * stride]);
}

// Merges n lane states (m_l, s_l, sq_l) into one, in float64:
//   S = sum_l s_l exp(m_l - M), SQ = sum_l sq_l exp(2 (m_l - M)), M = max_l m_l.
// A NaN lane max is skipped by the max but makes S NaN (the caller then redoes the row).
template <typename T>
void merge_lanes(const T* m, const double* s, const double* sq, int64_t n, T& M, double& S,
                 double& SQ) {
  using DVec = Vectorized<double>;
  constexpr int64_t DV = DVec::size();
  M = lme::lowest<T>();
  for (int64_t l = 0; l < n; ++l) M = std::max(M, m[l]);
  DVec sv(0.0), qv(0.0);
  for (int64_t l = 0; l < n; l += DV) {
    const int64_t c = std::min<int64_t>(DV, n - l);
    double md[DV];
    for (int64_t i = 0; i < c; ++i) md[i] = m[l + i];
    const DVec f = (DVec::loadu(md, c) - DVec(M)).exp();
    sv = at::vec::fmadd(DVec::loadu(s + l, c), f, sv);  // loadu(.., c) zero-fills the rest
    qv = at::vec::fmadd(DVec::loadu(sq + l, c), f * f, qv);
  }
  double sa[DV], qa[DV];
  sv.store(sa);
  qv.store(qa);
  S = std::accumulate(sa, sa + DV, 0.0);
  SQ = std::accumulate(qa, qa + DV, 0.0);
}

// Where forward_impl writes, each optional (null: not wanted): out = lse - shift rounded to T;
// the column state that the weights are formed from (lme::weight_scale): col_max = M, exact in
// T, and col_sum = S = sum_k exp(x_k - M) in float64; ess (with kSq).
template <typename T>
struct Outputs {
  T* out;
  T* col_max;
  double* col_sum;
  T* ess;
  double shift;
};

// Writes outputs [i0, i0 + n) from n column states (m, s, sq), with log in vectors of float64.
// Column i's entries are at col(i)[k * k_stride], k < K: a non-finite state (a NaN or +inf
// entry, see column_lse) is redone from them by the scalar step.
template <typename T, bool kSq, typename Col>
void finish_columns(const T* m, const double* s, const double* sq, int64_t n, Col col, int64_t K,
                    int64_t k_stride, const Outputs<T>& o, int64_t i0) {
  using DVec = Vectorized<double>;
  constexpr int64_t DV = DVec::size();
  for (int64_t c0 = 0; c0 < n; c0 += DV) {
    const int64_t c = std::min<int64_t>(DV, n - c0);
    double M[DV], S[DV], SQ[DV], lse[DV];
    for (int64_t i = 0; i < c; ++i) {
      M[i] = m[c0 + i];
      S[i] = s[c0 + i];
      SQ[i] = sq[c0 + i];
      if (!std::isfinite(M[i]) || !std::isfinite(S[i])) {
        column_lse_scalar(col(c0 + i), K, k_stride, M[i], S[i], SQ[i]);
      }
    }
    if (o.out != nullptr) (DVec::loadu(M, c) + DVec::loadu(S, c).log() - DVec(o.shift)).store(lse, c);
    for (int64_t i = 0; i < c; ++i) {
      const int64_t at = i0 + c0 + i;
      if (o.out != nullptr) o.out[at] = static_cast<T>(lse[i]);
      if (o.col_max != nullptr) {
        o.col_max[at] = lme::weight_base<T>(M[i], S[i]);
        o.col_sum[at] = S[i];
      }
      if constexpr (kSq) o.ess[at] = static_cast<T>(lme::ess_from(M[i], S[i], SQ[i]));
    }
  }
}

// log_w: [outer, K, inner] -> outputs [outer, inner], in one of three walks.
template <typename T, bool kSq>
void forward_impl(const T* x, const lme::ReductionShape& r, const Outputs<T>& o) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  const int64_t K = r.K, inner = r.inner, outer = r.outer;
  if (inner == 1 && K >= kLongRow) {
    // Long contiguous rows: the V lanes are V interleaved columns of a [K / V, V] view; the
    // K % V leftover entries, padded with -inf, are one more row of V lanes; the 2V lane states
    // are merged at the end.
    const int64_t grain = std::max<int64_t>(1, kGrain / K);
    at::parallel_for(0, outer, grain, [&](int64_t b, int64_t e) {
      T m[2 * V], ml[V], sl[V], sql[V], tail[V];
      double s[2 * V], sq[2 * V];
      const int64_t nvec = K / V, rest = K - nvec * V;
      for (int64_t i = b; i < e; ++i) {
        const T* row = x + i * K;
        column_lse<T, kSq>(row, nvec, V, V, m, s, sq, ml, sl, sql);
        if (rest > 0) {
          std::fill(tail, tail + V, -std::numeric_limits<T>::infinity());
          std::copy(row + nvec * V, row + K, tail);
          column_lse<T, kSq>(tail, 1, V, V, m + V, s + V, sq + V, ml, sl, sql);
        }
        T M;
        double S, SQ;
        merge_lanes(m, s, sq, rest > 0 ? 2 * V : V, M, S, SQ);
        finish_columns<T, kSq>(&M, &S, &SQ, 1, [&](int64_t) { return row; }, K, 1, o, i);
      }
    });
    return;
  }
  if (inner == 1) {
    // Short contiguous rows: V rows at a time are transposed into a [K, V] buffer, whose
    // columns are then the rows (a vector per row would leave most lanes idle).
    const int64_t grain = std::max<int64_t>(V, kGrain / K);
    at::parallel_for(0, outer, grain, [&](int64_t b, int64_t e) {
      std::vector<T> buf(K * V);
      T m[V], ml[V], sl[V], sql[V];
      double s[V], sq[V];
      for (int64_t i0 = b; i0 < e; i0 += V) {
        const int64_t n = std::min<int64_t>(V, e - i0);
        for (int64_t j = 0; j < n; ++j) {
          const T* row = x + (i0 + j) * K;
          for (int64_t k = 0; k < K; ++k) buf[k * V + j] = row[k];
        }
        column_lse<T, kSq>(buf.data(), K, V, n, m, s, sq, ml, sl, sql);
        finish_columns<T, kSq>(m, s, sq, n, [&](int64_t j) { return x + (i0 + j) * K; }, K, 1, o,
                               i0);
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
      const int64_t oi = item / ntiles, j0 = (item % ntiles) * tile;
      const int64_t cols = std::min(tile, inner - j0);
      const T* slab = x + oi * K * inner + j0;
      column_lse<T, kSq>(slab, K, inner, cols, m.data(), s.data(), sq.data(), ml.data(),
                         sl.data(), sql.data());
      finish_columns<T, kSq>(m.data(), s.data(), sq.data(), cols,
                             [&](int64_t j) { return slab + j; }, K, inner, o, oi * inner + j0);
    }
  });
}

// Stores v at p bypassing the caches (a non-temporal store) when the ISA has one and p is
// aligned to the vector; false when it did not store.
template <typename T>
inline bool stream_store(T* p, const Vectorized<T>& v) {
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
  if (reinterpret_cast<uintptr_t>(p) % sizeof(Vectorized<T>) == 0) {
#if defined(CPU_CAPABILITY_AVX512)
    if constexpr (std::is_same_v<T, float>) _mm512_stream_ps(p, v);
    else _mm512_stream_pd(p, v);
#else
    if constexpr (std::is_same_v<T, float>) _mm256_stream_ps(p, v);
    else _mm256_stream_pd(p, v);
#endif
    return true;
  }
#endif
  return false;
}

// Non-temporal stores are weakly ordered: each thread fences its own before its work item
// ends, so that whoever reads w after the parallel region sees them.
struct StoreFence {
  bool active;
  ~StoreFence() {
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
    if (active) _mm_sfence();
#endif
  }
};

// w = exp(x - M) * f per column, f = lme::weight_scale(M, S, g) (g / S for a live column; g = 1
// and softmax's NaN rule when `grad` is null): the column's max M and sum S from forward_impl,
// never a rounded lse (see lme::weight_scale for why). x - M <= 0 is exact near the max (both
// in T), so each weight carries only the rounding of exp, of f and of one product.
// x, w: [outer, K, inner]; col_max, col_sum, grad: [outer, inner].
template <typename T>
void weights_impl(const T* x, const lme::ReductionShape& r, const T* col_max,
                  const double* col_sum, const T* grad, T* w) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  const int64_t K = r.K, inner = r.inner, outer = r.outer;
  // importance_weights passes no grad: its weights follow softmax's NaN rule.
  const bool softmax = grad == nullptr;
  std::vector<T> scale(outer * inner);
  for (int64_t i = 0; i < outer * inner; ++i) {
    const double g = grad != nullptr ? static_cast<double>(grad[i]) : 1.0;
    scale[i] = static_cast<T>(lme::weight_scale(static_cast<double>(col_max[i]), col_sum[i], g, softmax));
  }
  // w is written with streaming stores once it is too large to stay in cache: they skip reading
  // each line before overwriting it (measured: 20 MB of w in 0.6x the time, 4 MB in 1.2x).
  const bool streaming = outer * K * inner * static_cast<int64_t>(sizeof(T)) >= kStreamBytes;
  auto store = [streaming](T* p, const Vec& v, int64_t n) {
    if (streaming && n == V && stream_store(p, v)) return;
    v.store(p, n);
  };
  if (inner == 1) {
    const int64_t grain = std::max<int64_t>(1, kGrain / K);
    at::parallel_for(0, outer, grain, [&](int64_t b, int64_t e) {
      StoreFence fence{streaming};
      for (int64_t o = b; o < e; ++o) {
        const Vec mv(col_max[o]), fv(scale[o]);
        const T* xr = x + o * K;
        T* wr = w + o * K;
        int64_t k = 0;
        for (; k + V <= K; k += V) store(wr + k, exp_nonpositive(Vec::loadu(xr + k) - mv) * fv, V);
        if (k < K) store(wr + k, exp_nonpositive(Vec::loadu(xr + k, K - k) - mv) * fv, K - k);
      }
    });
    return;
  }
  const int64_t grain = std::max<int64_t>(1, kGrain / inner);
  at::parallel_for(0, outer * K, grain, [&](int64_t b, int64_t e) {
    StoreFence fence{streaming};
    for (int64_t i = b; i < e; ++i) {
      const int64_t o = i / K;
      const T* xr = x + i * inner;
      const T* mr = col_max + o * inner;
      const T* fr = scale.data() + o * inner;
      T* wr = w + i * inner;
      auto step = [&](int64_t j, int64_t n) {
        store(wr + j, exp_nonpositive(Vec::loadu(xr + j, n) - Vec::loadu(mr + j, n)) * Vec::loadu(fr + j, n), n);
      };
      int64_t j = 0;
      for (; j + V <= inner; j += V) step(j, V);
      if (j < inner) step(j, inner - j);
    }
  });
}

}  // namespace

void log_mean_exp_forward_kernel(const at::Tensor& log_w, const lme::ReductionShape& r,
                                 double shift, at::Tensor* out, at::Tensor* col_max,
                                 at::Tensor* col_sum, at::Tensor* ess) {
  TORCH_INTERNAL_ASSERT((col_max == nullptr) == (col_sum == nullptr));
  AT_DISPATCH_FLOATING_TYPES(log_w.scalar_type(), "vaebench.log_mean_exp", [&] {
    const scalar_t* x = log_w.const_data_ptr<scalar_t>();
    const Outputs<scalar_t> outs{
        out != nullptr ? out->mutable_data_ptr<scalar_t>() : nullptr,
        col_max != nullptr ? col_max->mutable_data_ptr<scalar_t>() : nullptr,
        col_sum != nullptr ? col_sum->mutable_data_ptr<double>() : nullptr,
        ess != nullptr ? ess->mutable_data_ptr<scalar_t>() : nullptr, shift};
    if (ess != nullptr) {
      forward_impl<scalar_t, true>(x, r, outs);
    } else {
      forward_impl<scalar_t, false>(x, r, outs);
    }
  });
}

void log_mean_exp_weights_kernel(const at::Tensor& log_w, const lme::ReductionShape& r,
                                 const at::Tensor& col_max, const at::Tensor& col_sum,
                                 const at::Tensor* grad, at::Tensor& w) {
  AT_DISPATCH_FLOATING_TYPES(log_w.scalar_type(), "vaebench.log_mean_exp_backward", [&] {
    weights_impl<scalar_t>(
        log_w.const_data_ptr<scalar_t>(), r, col_max.const_data_ptr<scalar_t>(),
        col_sum.const_data_ptr<double>(),
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
                          &out, nullptr, nullptr, nullptr);
  }
  return out;
}

// d out / d log_w_k = w_k = exp(log_w_k - M) / S: the self-normalized weights, times grad.
// `out` (the forward's output, checked for its shape) is not what they are formed from: rounded
// to T it has lost log S for |out| >~ 1/eps (2 x -1e30 gave weights 1 and 1) and moves every
// weight by up to |out| eps below that. The column's max M and sum S are read again from log_w
// instead (one more read of log_w; lme::weight_scale).
at::Tensor log_mean_exp_backward_cpu(const at::Tensor& grad, const at::Tensor& log_w,
                                     const at::Tensor& out, int64_t dim) {
  constexpr std::string_view op = "log_mean_exp_backward";
  const auto r = lme::check_backward(op, grad, log_w, out, dim);
  checks::cpu_dtype(op, log_w, "log_w");
  const at::Tensor x = log_w.contiguous();
  const at::Tensor g = grad.contiguous();
  at::Tensor w = at::empty(log_w.sizes(), log_w.options());
  if (w.numel() > 0) {
    const auto sizes = lme::reduced_sizes(log_w, r.dim);
    at::Tensor col_max = at::empty(sizes, log_w.options());
    at::Tensor col_sum = at::empty(sizes, log_w.options().dtype(at::kDouble));
    VAEBENCH_CPU_DISPATCH(log_mean_exp_forward_kernel, x, r, 0.0, nullptr, &col_max, &col_sum,
                          nullptr);
    VAEBENCH_CPU_DISPATCH(log_mean_exp_weights_kernel, x, r, col_max, col_sum, &g, w);
  }
  return w;
}

// w_k = exp(log_w_k - M) / S (M the column max, S = sum_k exp(log_w_k - M)) and
// ESS = 1 / sum_k w_k^2 (0 and 0 on an all -inf slice).
std::tuple<at::Tensor, at::Tensor> importance_weights_cpu(const at::Tensor& log_w, int64_t dim) {
  constexpr std::string_view op = "importance_weights";
  const auto r = lme::check_reduction(op, log_w, dim);
  checks::cpu_dtype(op, log_w, "log_w");
  const at::Tensor x = log_w.contiguous();
  const auto sizes = lme::reduced_sizes(log_w, r.dim);
  at::Tensor col_max = at::empty(sizes, log_w.options());
  at::Tensor col_sum = at::empty(sizes, log_w.options().dtype(at::kDouble));
  at::Tensor ess = at::empty(sizes, log_w.options());
  at::Tensor w = at::empty(log_w.sizes(), log_w.options());
  if (w.numel() > 0) {
    VAEBENCH_CPU_DISPATCH(log_mean_exp_forward_kernel, x, r, 0.0, nullptr, &col_max, &col_sum,
                          &ess);
    VAEBENCH_CPU_DISPATCH(log_mean_exp_weights_kernel, x, r, col_max, col_sum, nullptr, w);
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
