// Input checks shared by every op. Each names the argument, what was expected and what came,
// e.g. "vaebench.reparameterize: mu must be (..., D) like logvar, got [4, 3] and [4, 5]".
// TORCH_CHECK is for caller mistakes; TORCH_INTERNAL_ASSERT for what the dispatcher guarantees.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <string_view>

namespace vaebench::checks {

inline void floating(std::string_view op, const at::Tensor& t, std::string_view name) {
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), "vaebench.", op, ": ", name,
              " must be a floating-point tensor (float32 or float64; float16/bfloat16 on CUDA), got ",
              t.scalar_type());
}

inline void same_shape(std::string_view op, const at::Tensor& a, std::string_view a_name,
                       const at::Tensor& b, std::string_view b_name) {
  TORCH_CHECK(a.sizes() == b.sizes(), "vaebench.", op, ": ", a_name, " must have the shape of ",
              b_name, ", got ", a.sizes(), " and ", b.sizes());
}

inline void same_dtype(std::string_view op, const at::Tensor& a, std::string_view a_name,
                       const at::Tensor& b, std::string_view b_name) {
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "vaebench.", op, ": ", a_name,
              " must have the dtype of ", b_name, ", got ", a.scalar_type(), " and ",
              b.scalar_type());
}

inline void same_device(std::string_view op, const at::Tensor& a, std::string_view a_name,
                        const at::Tensor& b, std::string_view b_name) {
  TORCH_CHECK(a.device() == b.device(), "vaebench.", op, ": ", a_name,
              " must be on the device of ", b_name, ", got ", a.device(), " and ", b.device());
}

inline void min_dim(std::string_view op, const at::Tensor& t, std::string_view name,
                    int64_t dims, std::string_view layout) {
  TORCH_CHECK(t.dim() >= dims, "vaebench.", op, ": ", name, " must be ", layout,
              " with at least ", dims, " dim(s), got shape ", t.sizes());
}

// CPU kernels support float32 and float64; half types are CUDA-only (float32 accumulation).
inline void cpu_dtype(std::string_view op, const at::Tensor& t, std::string_view name) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, "vaebench.", op,
              ": on CPU ", name, " must be float32 or float64, got ", t.scalar_type());
}

}  // namespace vaebench::checks
