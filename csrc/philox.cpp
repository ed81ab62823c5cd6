// Test-facing views of the Philox stream (csrc/philox.h) used by the fused kernels:
//   philox4x32(counter [n, 4], key [2]) -> [n, 4]   the raw Philox4x32-10 words (as int64)
//   philox_normal(seed [2], start, count, dtype)   the normals with flat indices start .. + count
// They run the same code (and the same CPU capability copy) as the kernels, so tests check the
// kernels' integer stream and normals against the pure-PyTorch reference without a kernel.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "cpu_capability.h"
#include "philox_cpu.h"

#include <cstdint>
#include <vector>

VAEBENCH_DECLARE_CPU_KERNEL(void, philox_normal_kernel, uint64_t seed, uint64_t offset,
                            uint64_t start, at::Tensor& out)

namespace vaebench::cpu::CPU_CAPABILITY {

void philox_normal_kernel(uint64_t seed, uint64_t offset, uint64_t start, at::Tensor& out) {
  namespace ph = ::vaebench::philox;
  const ph::Key key = ph::make_key(seed, offset);
  const int64_t n = out.numel();
  auto run = [&](auto* dst) {
    using T = std::remove_pointer_t<decltype(dst)>;
    std::vector<T> buf(static_cast<size_t>(ph::normals_buffer_size<T>(n)));
    const T* e = ph::normals_cpu(key, start, n, buf.data());
    std::copy(e, e + n, dst);
  };
  if (out.scalar_type() == at::kFloat) {
    run(out.mutable_data_ptr<float>());
  } else {
    run(out.mutable_data_ptr<double>());
  }
}

}  // namespace vaebench::cpu::CPU_CAPABILITY

#if VAEBENCH_REGISTERING_UNIT
namespace vaebench {
namespace {

at::Tensor philox4x32_cpu(const at::Tensor& counter, const at::Tensor& key) {
  TORCH_CHECK(counter.scalar_type() == at::kLong && counter.dim() == 2 && counter.size(1) == 4,
              "vaebench.philox4x32: counter must be an int64 tensor (n, 4) of 32-bit words, got ",
              counter.scalar_type(), " ", counter.sizes());
  TORCH_CHECK(key.scalar_type() == at::kLong && key.numel() == 2,
              "vaebench.philox4x32: key must be an int64 tensor of 2 32-bit words, got ",
              key.scalar_type(), " ", key.sizes());
  const at::Tensor c = counter.contiguous();
  const at::Tensor k = key.contiguous();
  at::Tensor out = at::empty_like(c);
  const int64_t* cp = c.const_data_ptr<int64_t>();
  const int64_t* kp = k.const_data_ptr<int64_t>();
  int64_t* op = out.mutable_data_ptr<int64_t>();
  for (int64_t i = 0; i < c.size(0); ++i) {
    uint32_t x[4];
    philox::philox4x32_10(static_cast<uint32_t>(cp[4 * i]), static_cast<uint32_t>(cp[4 * i + 1]),
                          static_cast<uint32_t>(cp[4 * i + 2]),
                          static_cast<uint32_t>(cp[4 * i + 3]), static_cast<uint32_t>(kp[0]),
                          static_cast<uint32_t>(kp[1]), x);
    for (int l = 0; l < 4; ++l) op[4 * i + l] = x[l];
  }
  return out;
}

at::Tensor philox_normal_cpu(const at::Tensor& seed, int64_t start, int64_t count,
                             at::ScalarType dtype) {
  TORCH_CHECK(seed.device().is_cpu() && seed.scalar_type() == at::kLong && seed.numel() == 2,
              "vaebench.philox_normal: seed must be a CPU int64 tensor [seed, offset], got ",
              seed.scalar_type(), " ", seed.sizes());
  TORCH_CHECK(start >= 0 && count >= 0, "vaebench.philox_normal: start and count must be >= 0, got ",
              start, " and ", count);
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble,
              "vaebench.philox_normal: dtype must be float32 or float64, got ", dtype);
  const at::Tensor s = seed.contiguous();
  const int64_t* sp = s.const_data_ptr<int64_t>();
  at::Tensor out = at::empty({count}, at::TensorOptions().dtype(dtype));
  if (count > 0) {
    VAEBENCH_CPU_DISPATCH(philox_normal_kernel, static_cast<uint64_t>(sp[0]),
                          static_cast<uint64_t>(sp[1]), static_cast<uint64_t>(start), out);
  }
  return out;
}

}  // namespace
}  // namespace vaebench

TORCH_LIBRARY_IMPL(vaebench, CPU, m) {
  m.impl("philox4x32", &vaebench::philox4x32_cpu);
  m.impl("philox_normal", &vaebench::philox_normal_cpu);
}
#endif
