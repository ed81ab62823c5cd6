// Pieces of vaebench::gaussian_kl: the per-element formulas, the one spelling of the KL and its
// gradient in C++ that both the CUDA kernels (cuda/gaussian_kl.cu, on scalars of the
// accumulation type) and the CPU kernels (gaussian_kl.cpp, on at::vec::Vectorized lanes) call,
// and the input checks, shared by CPU and CUDA, that bring the prior into one of three layouts
// the kernels know. The formulas are templates over the lane type V: a scalar, or a vector of
// lanes for which LaneMath<V> says how to take exp (gaussian_kl.cpp specializes it), so the CPU
// tests run the very expressions the CUDA kernels run, on other lanes.
//
// Elsewhere: vaebench/ops/reference.py (gaussian_kl_reference) spells the KL in PyTorch, the
// truth both kernels are tested against; its gradient is autograd's, and the second derivative
// (vaebench/ops/gaussian_kl.py, backward_bwd) is autograd of that reference too, so no other
// spelling of the gradient exists.
//
//   KL(N(mu, e^l) || N(pm, e^pl)) = 1/2 sum_D [ pl - l + exp(l - pl) + (mu - pm)^2 exp(-pl) - 1 ]
//   d/dmu = (mu - pm) exp(-pl)           d/dl  = 1/2 (exp(l - pl) - 1)
//   d/dpm = -d/dmu                       d/dpl = -(d/dl + 1/2 (mu - pm) d/dmu)
// exp(l - pl), never exp(l) / exp(pl): finite for |logvar| up to ~80 in float32.
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>

#ifndef __CUDACC_RTC__
#include <ATen/ExpandUtils.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <optional>
#include <tuple>
#include <vector>

#include "checks.h"
#endif

namespace vaebench::gkl {

// What the formulas need of a lane type V beyond +, - and *: exp, and constants. This primary
// template serves scalars (the CUDA kernels' float and double accumulators); the CPU kernels
// specialize it for at::vec::Vectorized<T>.
//
// The arguments are taken by value, as the scalar code always did: with const references GCC
// contracted the AVX-512 forward's multiply-adds differently (KL values 1 ulp apart in 2-17% of
// rows against the hand-written vector code this replaced); by value the CPU results are
// bit-identical to it in all three capabilities.
template <typename V>
struct LaneMath {
  C10_HOST_DEVICE static V exp(V x) { return std::exp(x); }
  C10_HOST_DEVICE static V constant(double c) { return static_cast<V>(c); }
};

// 2 KL per element against N(pm, exp(pl)).
template <typename V>
C10_HOST_DEVICE inline V two_kl(V mu, V l, V pm, V pl) {
  using M = LaneMath<V>;
  const V d = mu - pm;
  return pl - l + M::exp(l - pl) + d * d * M::exp(-pl) - M::constant(1);
}

// 2 KL per element against N(0, 1).
template <typename V>
C10_HOST_DEVICE inline V two_kl_std(V mu, V l) {
  using M = LaneMath<V>;
  return M::exp(l) + mu * mu - l - M::constant(1);
}

// Gradients of g * KL per element: (d/dmu, d/dl, d/dpm, d/dpl).
template <typename V>
C10_HOST_DEVICE inline void kl_grads(V g, V mu, V l, V pm, V pl, V& gmu, V& gl, V& gpm, V& gpl) {
  using M = LaneMath<V>;
  const V d = mu - pm;
  const V half = M::constant(0.5);
  gmu = g * d * M::exp(-pl);
  gl = half * g * (M::exp(l - pl) - M::constant(1));
  gpm = -gmu;
  gpl = -(gl + half * d * gmu);
}

// Gradients of g * KL per element against N(0, 1): (d/dmu, d/dl); kl_grads at pm = pl = 0,
// without its two exp(0).
template <typename V>
C10_HOST_DEVICE inline void kl_grads_std(V g, V mu, V l, V& gmu, V& gl) {
  using M = LaneMath<V>;
  gmu = g * mu;
  gl = M::constant(0.5) * g * (M::exp(l) - M::constant(1));
}

#ifndef __CUDACC_RTC__
enum class PriorMode {
  kStandard,  // N(0, I): no prior tensors
  kShared,    // one prior for every row: mu, logvar [D]
  kFull,      // one prior per row: mu, logvar [N, D] (broadcast batch dims expanded)
};

struct Prior {
  PriorMode mode = PriorMode::kStandard;
  at::Tensor mu;      // contiguous, [D] or [N, D]
  at::Tensor logvar;  // contiguous, like mu
};

inline void check_prior(std::string_view op, const at::Tensor& p, std::string_view name,
                        const at::Tensor& mu) {
  checks::floating(op, p, name);
  checks::same_dtype(op, p, name, mu, "mu");
  checks::same_device(op, p, name, mu, "mu");
  const int64_t D = mu.size(-1);
  TORCH_CHECK(p.dim() >= 1 && p.size(-1) == D, "vaebench.", op, ": ", name,
              " must end in the latent dim D=", D, " of mu (shape (..., ", D, ")), got shape ",
              p.sizes());
  bool broadcasts = p.dim() <= mu.dim();
  for (int64_t i = 1; broadcasts && i <= p.dim(); ++i) {
    broadcasts = p.size(-i) == 1 || p.size(-i) == mu.size(-i);
  }
  TORCH_CHECK(broadcasts, "vaebench.", op, ": ", name, " must broadcast to mu's shape ",
              mu.sizes(), " (e.g. (", D, ",) or mu's own shape), got shape ", p.sizes());
}

// Checks every input of `op` and returns the prior in kernel layout.
inline Prior check_inputs(std::string_view op, const at::Tensor& mu, const at::Tensor& logvar,
                          const std::optional<at::Tensor>& prior_mu,
                          const std::optional<at::Tensor>& prior_logvar) {
  checks::floating(op, mu, "mu");
  checks::min_dim(op, mu, "mu", 1, "(*batch, D)");
  checks::same_dtype(op, logvar, "logvar", mu, "mu");
  checks::same_device(op, logvar, "logvar", mu, "mu");
  checks::same_shape(op, logvar, "logvar", mu, "mu");
  TORCH_CHECK(mu.size(-1) >= 1, "vaebench.", op, ": mu must hold D >= 1 latent dims, got shape ",
              mu.sizes());
  const bool has_mu = prior_mu.has_value() && prior_mu->defined();
  const bool has_lv = prior_logvar.has_value() && prior_logvar->defined();
  Prior p;
  if (!has_mu && !has_lv) return p;
  if (has_mu) check_prior(op, *prior_mu, "prior_mu", mu);
  if (has_lv) check_prior(op, *prior_logvar, "prior_logvar", mu);
  const int64_t D = mu.size(-1);
  // A missing half of the prior is the standard normal's: mean 0, log-variance 0.
  const at::Tensor pm = has_mu ? *prior_mu : at::zeros({D}, mu.options());
  const at::Tensor pl = has_lv ? *prior_logvar : at::zeros({D}, mu.options());
  if (pm.numel() == D && pl.numel() == D) {
    p.mode = PriorMode::kShared;
    p.mu = pm.reshape({D}).contiguous();
    p.logvar = pl.reshape({D}).contiguous();
  } else {
    // Partly broadcast priors (e.g. (B, 1, D) against (B, K, D)) are expanded once.
    p.mode = PriorMode::kFull;
    p.mu = pm.expand(mu.sizes()).contiguous();
    p.logvar = pl.expand(mu.sizes()).contiguous();
  }
  return p;
}

// The batch shape of mu: the shape of the KL.
inline std::vector<int64_t> batch_sizes(const at::Tensor& mu) {
  std::vector<int64_t> s = mu.sizes().vec();
  s.pop_back();
  return s;
}

inline void check_grad(std::string_view op, const at::Tensor& grad, const at::Tensor& mu) {
  const auto want = batch_sizes(mu);
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(want), "vaebench.", op,
              ": grad must have mu's batch shape ", at::IntArrayRef(want), ", got ", grad.sizes());
  checks::same_dtype(op, grad, "grad", mu, "mu");
  checks::same_device(op, grad, "grad", mu, "mu");
}

// Prior gradients as computed by a kernel (kShared: [D]; kFull: mu's shape) brought back to
// the shapes the caller passed; an absent prior gets an empty (0,) tensor.
inline at::Tensor prior_grad_to(const at::Tensor& g, const std::optional<at::Tensor>& prior,
                                const at::Tensor& mu) {
  if (!prior.has_value() || !prior->defined() || !g.defined()) {
    return at::empty({0}, mu.options());
  }
  if (g.sizes() == prior->sizes()) return g;
  if (g.numel() == prior->numel()) return g.reshape(prior->sizes());
  return at::sum_to(g, prior->sizes());
}
#endif

}  // namespace vaebench::gkl
