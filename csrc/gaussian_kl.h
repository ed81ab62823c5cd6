// Pieces of vaebench::gaussian_kl: the per-element formulas (host+device functions, used by the
// CUDA kernels in cuda/gaussian_kl.cu) and the input checks, shared by CPU and CUDA, that bring the
// prior into one of three layouts the kernels know.
//
// Where the formulas below are spelled, so that a change reaches all of them:
//   - here (two_kl, two_kl_std, kl_grads): the CUDA kernels; checked by the CUDA tests only;
//   - csrc/gaussian_kl.cpp: the CPU kernels, the same formulas on at::vec::Vectorized lanes
//     (not these scalar functions), checked by the CPU tests;
//   - vaebench/ops/reference.py (gaussian_kl_reference): the truth both are tested against;
//   - vaebench/ops/gaussian_kl.py (backward_bwd): the second derivative, in PyTorch.
// Making this header the one spelling (templated on the vector type) needs a rebuild and a CUDA
// run to verify; until then the CPU tests do not check the CUDA arithmetic.
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

// 2 KL per element against N(pm, exp(pl)).
template <typename T>
C10_HOST_DEVICE inline T two_kl(T mu, T l, T pm, T pl) {
  const T d = mu - pm;
  return pl - l + std::exp(l - pl) + d * d * std::exp(-pl) - T(1);
}

// 2 KL per element against N(0, 1).
template <typename T>
C10_HOST_DEVICE inline T two_kl_std(T mu, T l) {
  return std::exp(l) + mu * mu - l - T(1);
}

// Gradients of g * KL per element: (d/dmu, d/dl, d/dpm, d/dpl).
template <typename T>
C10_HOST_DEVICE inline void kl_grads(T g, T mu, T l, T pm, T pl, T& gmu, T& gl, T& gpm, T& gpl) {
  const T d = mu - pm;
  gmu = g * d * std::exp(-pl);
  gl = T(0.5) * g * (std::exp(l - pl) - T(1));
  gpm = -gmu;
  gpl = -(gl + T(0.5) * d * gmu);
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
