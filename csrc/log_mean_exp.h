// Pieces of vaebench::log_mean_exp and vaebench::importance_weights: the scalar online
// log-sum-exp step (host+device) and the input checks, shared by CPU and CUDA, that map
// (log_w, dim) to the (outer, K, inner) view every kernel walks.
//
// Who uses the scalar step: the CUDA kernels (cuda/log_mean_exp.cu) for every entry; the CPU
// kernels (csrc/log_mean_exp.cpp) only where a vectorized walk ends non-finite and the column is
// redone (online_add), and for the ESS and the weights' rules (ess_from, weight_scale,
// weight_base, which both use as they are). The CPU's vector
// walks spell the same online step on at::vec::Vectorized lanes, so the CPU tests check the
// scalar step only through that redo path and the CUDA tests check the CUDA use of it.
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <limits>

#ifndef __CUDACC_RTC__
#include <ATen/core/Tensor.h>

#include "checks.h"
#endif

namespace vaebench::lme {

// A state (m, s) stands for sum_k exp(x_k) = s * exp(m). m starts at the lowest finite value,
// not -inf: a -inf entry then adds exp(-inf - m) = 0 instead of exp(-inf - -inf) = NaN, and an
// all -inf slice ends at s = 0, so lse = m + log(0) = -inf with no special case.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t lowest() {
  return std::numeric_limits<acc_t>::lowest();
}

// One entry in, one exp: with e = exp(-|x - m|),
//   x > m:  s <- s * e + 1, m <- x      (rescale the old sum to the new max)
//   else:   s <- s + e.
// `sq` (sum of the squared terms, for the effective sample size) follows with e^2.
template <typename acc_t>
C10_HOST_DEVICE inline void online_add(acc_t& m, acc_t& s, acc_t& sq, acc_t x) {
  const acc_t e = std::exp(-std::fabs(x - m));
  if (x > m) {
    s = s * e + acc_t(1);
    sq = sq * e * e + acc_t(1);
    m = x;
  } else {
    s = s + e;
    sq = sq + e * e;
  }
}

// Merges (m2, s2, sq2) into (m, s, sq): both rescaled to the larger max.
template <typename acc_t>
C10_HOST_DEVICE inline void online_merge(acc_t& m, acc_t& s, acc_t& sq, acc_t m2, acc_t s2,
                                         acc_t sq2) {
  if (m2 > m) {
    const acc_t e = std::exp(m - m2);
    s = s * e + s2;
    sq = sq * e * e + sq2;
    m = m2;
  } else {
    const acc_t e = std::exp(m2 - m);
    s = s + s2 * e;
    sq = sq + sq2 * e * e;
  }
  // A NaN max fails both comparisons and lands here: exp(NaN) makes s NaN, so NaN propagates.
}

// The weights of a column in state (m, s): w_k = g * exp(x_k - m) / s, formed as
// exp(x_k - m) * weight_scale(m, s, g). m is the column max (one of the entries, so exact in the
// input precision) and s = sum_k exp(x_k - m) in [1, K]: the weights are exact relative to each
// other and sum to g within the rounding of s and of exp, for any finite entries. Never formed
// against lse = m + log s rounded to one number: for |m| >~ 1/eps that rounding drops log s
// (2 x -1e30 gave weights 1 and 1), and for smaller |m| it still moves every weight by |m| eps.
// The scale also carries the rules for non-finite columns:
//   - s = 0 (an all -inf column): 0, so that the weights and the gradient are 0, not NaN
//     (exp(-inf - m) = 0 with m the lowest finite value);
//   - s NaN (a NaN entry): NaN over the column;
//   - m = +inf (a +inf entry): with `softmax` (importance_weights) NaN over the column, as
//     softmax gives it; otherwise (the gradient) g, so that exp(x - inf) gives NaN at the +inf
//     entries and 0 elsewhere, as autograd of logsumexp gives it.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t weight_scale(acc_t m, acc_t s, acc_t g, bool softmax) {
  constexpr acc_t inf = std::numeric_limits<acc_t>::infinity();
  if (s != s) return std::numeric_limits<acc_t>::quiet_NaN();
  if (s == acc_t(0)) return g * acc_t(0);  // a NaN or infinite g still gives NaN
  if (m == inf) return softmax ? std::numeric_limits<acc_t>::quiet_NaN() : g;
  return g / s;
}

// The max that exp(x - m) subtracts, in the input precision T: the column max, or the lowest
// finite T where the column has no live entry (s = 0; its m may be a wider type's lowest).
template <typename T, typename acc_t>
C10_HOST_DEVICE inline T weight_base(acc_t m, acc_t s) {
  return s == acc_t(0) ? std::numeric_limits<T>::lowest() : static_cast<T>(m);
}

// ESS = 1 / sum_k w_k^2 with w_k = e_k / s:  ESS = s^2 / sq; 0 for an all -inf slice (sq = 0),
// NaN where the weights are (a NaN entry makes sq NaN; a +inf entry makes the max m +inf).
template <typename acc_t>
C10_HOST_DEVICE inline acc_t ess_from(acc_t m, acc_t s, acc_t sq) {
  if (m == std::numeric_limits<acc_t>::infinity()) return std::numeric_limits<acc_t>::quiet_NaN();
  return sq == acc_t(0) ? acc_t(0) : s * s / sq;
}

#ifndef __CUDACC_RTC__
// log_w viewed as [outer, K, inner] around the reduced dim.
struct ReductionShape {
  int64_t dim;  // wrapped to [0, ndim)
  int64_t outer;
  int64_t K;
  int64_t inner;
};

// Checks log_w and dim for `op` and returns the view; names the argument in every message.
inline ReductionShape check_reduction(std::string_view op, const at::Tensor& log_w, int64_t dim) {
  checks::floating(op, log_w, "log_w");
  checks::min_dim(op, log_w, "log_w", 1, "(..., K, ...)");
  const int64_t nd = log_w.dim();
  TORCH_CHECK(dim >= -nd && dim < nd, "vaebench.", op, ": dim must be in [", -nd, ", ", nd - 1,
              "] for log_w of shape ", log_w.sizes(), ", got dim=", dim);
  const int64_t d = dim < 0 ? dim + nd : dim;
  ReductionShape r{d, 1, log_w.size(d), 1};
  TORCH_CHECK(r.K >= 1, "vaebench.", op, ": log_w must hold K >= 1 log-weights along dim ", dim,
              ", got shape ", log_w.sizes(), "; the mean of no weights is undefined");
  for (int64_t i = 0; i < d; ++i) r.outer *= log_w.size(i);
  for (int64_t i = d + 1; i < nd; ++i) r.inner *= log_w.size(i);
  return r;
}

// The shape of log_w without `dim`.
inline std::vector<int64_t> reduced_sizes(const at::Tensor& log_w, int64_t dim) {
  std::vector<int64_t> sizes = log_w.sizes().vec();
  sizes.erase(sizes.begin() + dim);
  return sizes;
}

// Checks the backward's inputs: grad and out shaped like log_w without `dim`, same dtype and
// device as log_w.
inline ReductionShape check_backward(std::string_view op, const at::Tensor& grad,
                                     const at::Tensor& log_w, const at::Tensor& out, int64_t dim) {
  const ReductionShape r = check_reduction(op, log_w, dim);
  const std::vector<int64_t> want = reduced_sizes(log_w, r.dim);
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(want) && out.sizes() == at::IntArrayRef(want),
              "vaebench.", op, ": grad and out must have the shape of log_w without dim ", dim,
              " ", at::IntArrayRef(want), ", got ", grad.sizes(), " and ", out.sizes());
  checks::same_dtype(op, grad, "grad", log_w, "log_w");
  checks::same_dtype(op, out, "out", log_w, "log_w");
  checks::same_device(op, grad, "grad", log_w, "log_w");
  checks::same_device(op, out, "out", log_w, "log_w");
  return r;
}

#endif

}  // namespace vaebench::lme
