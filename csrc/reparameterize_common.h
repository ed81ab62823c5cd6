// Host-side pieces shared by the CPU and CUDA reparameterize kernels: input checks that name
// the argument, the seed tensor, constants.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "checks.h"

#include <cstdint>
#include <optional>
#include <utility>

namespace vaebench {

// log(2 pi) / 2
constexpr double kHalfLog2Pi = 0.91893853320467274178;

inline void check_reparameterize_inputs(const at::Tensor& mu, const at::Tensor& logvar,
                                        int64_t num_samples, const at::Tensor& seed) {
  constexpr const char* op = "reparameterize";
  checks::floating(op, mu, "mu");
  checks::floating(op, logvar, "logvar");
  checks::same_dtype(op, logvar, "logvar", mu, "mu");
  checks::same_device(op, logvar, "logvar", mu, "mu");
  checks::min_dim(op, mu, "mu", 1, "(..., D)");
  checks::same_shape(op, logvar, "logvar", mu, "mu");
  TORCH_CHECK(mu.size(-1) > 0, "vaebench.reparameterize: mu must be (..., D) with D >= 1, got shape ",
              mu.sizes(), " (an empty event dimension has no density)");
  TORCH_CHECK(num_samples >= 1, "vaebench.reparameterize: num_samples must be >= 1, got ",
              num_samples);
  TORCH_CHECK(seed.device().is_cpu() && seed.scalar_type() == at::kLong && seed.numel() == 2,
              "vaebench.reparameterize: seed must be a CPU int64 tensor [seed, offset] of 2 "
              "elements, got ", seed.scalar_type(), " on ", seed.device(), " with shape ",
              seed.sizes(), " (vaebench.ops.reparameterize draws one from a torch.Generator)");
}

inline void check_reparameterize_grads(const std::optional<at::Tensor>& grad_z,
                                       const std::optional<at::Tensor>& grad_log_q,
                                       const at::Tensor& mu, int64_t num_samples) {
  if (grad_z.has_value()) {
    TORCH_CHECK(grad_z->dim() == mu.dim() + 1 && grad_z->size(0) == num_samples &&
                    grad_z->sizes().slice(1) == mu.sizes(),
                "vaebench.reparameterize_backward: grad_z must be (K, *batch, D) = (", num_samples,
                ", ", mu.sizes(), "), got ", grad_z->sizes());
    checks::same_dtype("reparameterize_backward", *grad_z, "grad_z", mu, "mu");
    checks::same_device("reparameterize_backward", *grad_z, "grad_z", mu, "mu");
  }
  if (grad_log_q.has_value()) {
    TORCH_CHECK(grad_log_q->dim() == mu.dim() && grad_log_q->size(0) == num_samples &&
                    grad_log_q->sizes().slice(1) == mu.sizes().slice(0, mu.dim() - 1),
                "vaebench.reparameterize_backward: grad_log_q must be (K, *batch) for mu of shape ",
                mu.sizes(), " and K = ", num_samples, ", got ", grad_log_q->sizes());
    checks::same_dtype("reparameterize_backward", *grad_log_q, "grad_log_q", mu, "mu");
    checks::same_device("reparameterize_backward", *grad_log_q, "grad_log_q", mu, "mu");
  }
}

// (seed, offset) as the unsigned words of the Philox key and counter.
inline std::pair<uint64_t, uint64_t> read_seed(const at::Tensor& seed) {
  const at::Tensor s = seed.contiguous();
  const int64_t* p = s.const_data_ptr<int64_t>();
  return {static_cast<uint64_t>(p[0]), static_cast<uint64_t>(p[1])};
}

}  // namespace vaebench
