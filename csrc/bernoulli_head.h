// Shared pieces of vaebench::bernoulli_head, the decoder's last Linear layer fused with the
// Bernoulli log-likelihood summed over the data dimensions: the per-element formulas (host and
// device, so the CPU tests check the CUDA arithmetic too), the input checks, and the layout of
// x against h's rows.
//
//   l = h W^T + b                       h: [R, H], W: [D, H], b: [D]  ->  l: [R, D]
//   log p(x | h)_r = sum_n x_rn l_rn - softplus(l_rn)
//   d/dl_rn = g_r (x_rn - sigmoid(l_rn))   (dl)
//   grad_h = dl W,  grad_W = dl^T h,  grad_b = sum_r dl_r
// softplus(l) = max(l, 0) + log1p(exp(-|l|)): finite for every finite l (no exp overflow).
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>

#ifndef __CUDACC_RTC__
#include <ATen/core/Tensor.h>

#include <string_view>
#include <utility>
#include <vector>

#include "checks.h"
#endif

namespace vaebench::bhead {

// One element's term of log p(x | h): x l - softplus(l).
template <typename T>
C10_HOST_DEVICE inline T log_prob_term(T x, T l) {
  return x * l - (std::fmax(l, T(0)) + std::log1p(std::exp(-std::fabs(l))));
}

// d/dl of g (x l - softplus(l)) = g (x - sigmoid(l)); sigmoid(l) = 1 / (1 + exp(-l)) is exact
// in the limits (exp(-l) = inf gives 0, exp(-l) = 0 gives 1).
template <typename T>
C10_HOST_DEVICE inline T dlogit(T g, T x, T l) {
  return g * (x - T(1) / (T(1) + std::exp(-l)));
}

#ifndef __CUDACC_RTC__
// h flattened to rows, and x as the rows it repeats: row r of h pairs with row r % x_rows of
// x2d (x2d: [x_rows, D], contiguous; R is a multiple of x_rows).
struct Layout {
  int64_t R = 0, H = 0, D = 0;
  at::Tensor h2d;  // [R, H], contiguous
  at::Tensor x2d;  // [x_rows, D], contiguous
  std::vector<int64_t> out_sizes;  // h.shape[:-1]
};

inline Layout check_inputs(std::string_view op, const at::Tensor& h, const at::Tensor& weight,
                           const at::Tensor& bias, const at::Tensor& x) {
  checks::floating(op, h, "h");
  checks::min_dim(op, h, "h", 1, "(..., H)");
  for (const auto& [t, name] : {std::pair<const at::Tensor&, const char*>{weight, "weight"},
                                {bias, "bias"}, {x, "x"}}) {
    checks::same_dtype(op, t, name, h, "h");
    checks::same_device(op, t, name, h, "h");
  }
  const int64_t H = h.size(-1);
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == H, "vaebench.", op,
              ": weight must be (D, H) with H=", H, " the last dim of h, got shape ", weight.sizes(),
              " (nn.Linear(H, D).weight has this layout)");
  const int64_t D = weight.size(0);
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == D, "vaebench.", op, ": bias must be (D,) with D=",
              D, " the rows of weight, got shape ", bias.sizes());
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == D, "vaebench.", op, ": x must be (..., D) with D=", D,
              " the rows of weight, got shape ", x.sizes());
  const int64_t lead = h.dim() - 1, xlead = x.dim() - 1;
  bool broadcasts = xlead <= lead;
  for (int64_t i = 1; broadcasts && i <= xlead; ++i) {
    broadcasts = x.size(-1 - i) == 1 || x.size(-1 - i) == h.size(-1 - i);
  }
  TORCH_CHECK(broadcasts, "vaebench.", op, ": x's leading dims must broadcast to h's leading dims ",
              h.sizes().slice(0, lead), " (e.g. x (B, D) for h (K, B, H)), got x of shape ",
              x.sizes());
  Layout out;
  out.H = H;
  out.D = D;
  out.out_sizes = h.sizes().slice(0, lead).vec();
  out.R = 1;
  for (int64_t s : out.out_sizes) out.R *= s;
  out.h2d = h.reshape({out.R, H}).contiguous();
  // x repeats along rows when its dims match a suffix of h's leading dims and all dims before
  // that suffix are 1 (the (B, D) data against (K, B, H) samples): then it is never expanded.
  int64_t suffix = 0;
  while (suffix < xlead && x.size(-2 - suffix) == h.size(-2 - suffix)) ++suffix;
  bool ones_before = true;
  for (int64_t i = suffix; i < xlead; ++i) ones_before = ones_before && x.size(-2 - i) == 1;
  if (ones_before) {
    int64_t x_rows = 1;
    for (int64_t i = 0; i < suffix; ++i) x_rows *= h.size(-2 - i);
    out.x2d = x.reshape({x_rows, D}).contiguous();
  } else {
    // A broadcast in the middle (x (K, 1, D) against h (K, B, H)): expanded once.
    std::vector<int64_t> full = out.out_sizes;
    full.push_back(D);
    out.x2d = x.expand(full).reshape({out.R, D}).contiguous();
  }
  return out;
}

inline void check_grad(std::string_view op, const at::Tensor& grad, const at::Tensor& h,
                       const Layout& layout) {
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(layout.out_sizes), "vaebench.", op,
              ": grad must have h's leading shape ", at::IntArrayRef(layout.out_sizes), ", got ",
              grad.sizes());
  checks::same_dtype(op, grad, "grad", h, "h");
  checks::same_device(op, grad, "grad", h, "h");
}
#endif

}  // namespace vaebench::bhead
