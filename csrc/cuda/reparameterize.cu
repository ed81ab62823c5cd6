// vaebench::reparameterize on CUDA: the same Philox stream and arithmetic as the CPU kernel
// (csrc/philox.h, compiled here with --fmad=false), so z is bit-identical to the CPU's for the
// same seed; float16/bfloat16 compute in float32 and round z once. Sums (log q over D, the
// gradients over K) run in a fixed order per launch configuration, which is fixed by the shapes.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../philox.h"
#include "../reparameterize_common.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

namespace vaebench {
namespace {

namespace ph = ::vaebench::philox;

// float for float/half/bfloat16 (the float32 stream), double for double
template <typename scalar_t>
struct Compute {
  using type = float;
};
template <>
struct Compute<double> {
  using type = double;
};

constexpr int kWarp = 32;
constexpr int kThreads = 256;

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// One warp per row (k, b): z[k, b, :] = sigma eps + mu (one fma), then
//   log q[k, b] = -1/2 sum_D eps^2 - 1/2 sum_D logvar - D log(2 pi) / 2.
// Lane l takes the Philox blocks g0 + l, g0 + l + 32, ... that overlap the row.
// mu, logvar: [B, D]; z: [K, B, D]; log_q: [K, B]
template <typename scalar_t>
__global__ void forward_kernel(const scalar_t* __restrict__ mu, const scalar_t* __restrict__ logvar,
                               ph::Key key, int64_t rows, int64_t B, int64_t D,
                               scalar_t* __restrict__ z, scalar_t* __restrict__ log_q) {
  using T = typename Compute<scalar_t>::type;
  constexpr int P = ph::PerBlock<T>::value;
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarp);
  for (int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; row < rows;
       row += warps) {
    const int64_t b = row % B;
    const uint64_t first = static_cast<uint64_t>(row) * D;
    const uint64_t last = first + D;  // exclusive
    const uint64_t g0 = first / P;
    const uint64_t g1 = (last + P - 1) / P;
    T sum_sq = 0, sum_lv = 0;
    for (uint64_t g = g0 + lane; g < g1; g += kWarp) {
      uint32_t x[4];
      ph::block(key, g, x);
      T eps[P];
      ph::normals(x, eps);
#pragma unroll
      for (int l = 0; l < P; ++l) {
        const uint64_t i = g * P + l;
        if (i >= first && i < last) {
          const int64_t d = static_cast<int64_t>(i - first);
          const T lv = static_cast<T>(logvar[b * D + d]);
          const T sigma = ph::exp_(T(0.5) * lv);
          z[i] = static_cast<scalar_t>(ph::fma_(sigma, eps[l], static_cast<T>(mu[b * D + d])));
          sum_sq = ph::fma_(eps[l], eps[l], sum_sq);
          sum_lv += lv;
        }
      }
    }
    sum_sq = warp_sum(sum_sq);
    sum_lv = warp_sum(sum_lv);
    if (lane == 0) {
      log_q[row] = static_cast<scalar_t>(T(-0.5) * sum_sq - T(0.5) * sum_lv -
                                         static_cast<T>(D) * static_cast<T>(kHalfLog2Pi));
    }
  }
}

// One thread per P consecutive elements n of [B, D]; loops over the K samples (in order),
// recomputing eps for flat indices k N + n (at most two Philox blocks per k); the sums over K
// run in double, as on the CPU (a K of thousands would lose digits in float32):
//   full:  d/dmu = sum_k gz,                  d/dlogvar = sigma/2 sum_k gz eps - 1/2 sum_k gl
//   path:  d/dmu = sum_k gz - 1/sigma sum_k gl eps,
//          d/dlogvar = sigma/2 sum_k gz eps - 1/2 sum_k gl eps^2
// gz: [K, B, D] or null; gl: [K, B] or null; logvar, gmu, glv: [B, D]
template <typename scalar_t>
__global__ void backward_kernel(const scalar_t* __restrict__ gz, const scalar_t* __restrict__ gl,
                                const scalar_t* __restrict__ logvar, ph::Key key, bool path,
                                int64_t K, int64_t B, int64_t D, scalar_t* __restrict__ gmu,
                                scalar_t* __restrict__ glv) {
  using T = typename Compute<scalar_t>::type;
  constexpr int P = ph::PerBlock<T>::value;
  const int64_t N = B * D;
  const int64_t groups = (N + P - 1) / P;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < groups;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n0 = t * P;
    using A = double;
    A s_gz[P] = {}, s_gze[P] = {}, s_gle[P] = {}, s_gle2[P] = {}, s_gl[P] = {};
    for (int64_t k = 0; k < K; ++k) {
      const uint64_t first = static_cast<uint64_t>(k * N + n0);
      const uint64_t g = first / P;
      const int shift = static_cast<int>(first - g * P);
      uint32_t x[4];
      T e0[P], e1[P];
      ph::block(key, g, x);
      ph::normals(x, e0);
      if (shift != 0) {
        ph::block(key, g + 1, x);
        ph::normals(x, e1);
      }
#pragma unroll
      for (int j = 0; j < P; ++j) {
        const int64_t n = n0 + j;
        if (n < N) {
          const int idx = shift + j;
          T e = e0[0];
#pragma unroll
          for (int q = 0; q < 2 * P; ++q) {  // a select instead of a dynamic index (registers)
            if (q == idx) e = q < P ? e0[q % P] : e1[q % P];
          }
          const A ea = static_cast<A>(e);
          if (gz != nullptr) {
            const A g_z = static_cast<A>(static_cast<T>(gz[k * N + n]));
            s_gz[j] += g_z;
            s_gze[j] = ph::fma_(g_z, ea, s_gze[j]);
          }
          if (gl != nullptr) {
            const A w = static_cast<A>(static_cast<T>(gl[k * B + n / D]));
            s_gl[j] += w;
            const A we = w * ea;
            s_gle[j] += we;
            s_gle2[j] = ph::fma_(we, ea, s_gle2[j]);
          }
        }
      }
    }
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const int64_t n = n0 + j;
      if (n < N) {
        const A s = static_cast<A>(ph::exp_(T(0.5) * static_cast<T>(logvar[n])));
        const A gv_z = A(0.5) * s * s_gze[j];
        if (path) {
          gmu[n] = static_cast<scalar_t>(static_cast<T>(s_gz[j] - s_gle[j] / s));
          glv[n] = static_cast<scalar_t>(static_cast<T>(gv_z - A(0.5) * s_gle2[j]));
        } else {
          gmu[n] = static_cast<scalar_t>(static_cast<T>(s_gz[j]));
          glv[n] = static_cast<scalar_t>(static_cast<T>(gv_z - A(0.5) * s_gl[j]));
        }
      }
    }
  }
}

int64_t grid_for(int64_t work_items, int threads) {
  // grid-stride loops: enough blocks to fill the GPU, bounded for huge inputs
  return std::max<int64_t>(1, std::min<int64_t>((work_items + threads - 1) / threads, 65535 * 8));
}

std::tuple<at::Tensor, at::Tensor> reparameterize_cuda(const at::Tensor& mu,
                                                       const at::Tensor& logvar,
                                                       int64_t num_samples, const at::Tensor& seed,
                                                       bool path_gradient) {
  (void)path_gradient;  // used by the backward only
  check_reparameterize_inputs(mu, logvar, num_samples, seed);
  TORCH_CHECK(mu.is_cuda(), "vaebench.reparameterize: mu must be a CUDA tensor here, got ", mu.device());
  const c10::cuda::CUDAGuard guard(mu.device());
  const auto [s, off] = read_seed(seed);
  const ph::Key key = ph::make_key(s, off);
  const at::Tensor m = mu.contiguous();
  const at::Tensor lv = logvar.contiguous();
  std::vector<int64_t> zshape{num_samples};
  zshape.insert(zshape.end(), mu.sizes().begin(), mu.sizes().end());
  at::Tensor z = at::empty(zshape, mu.options());
  zshape.pop_back();
  at::Tensor log_q = at::empty(zshape, mu.options());
  const int64_t D = mu.size(-1);
  const int64_t B = mu.numel() / D;
  const int64_t rows = num_samples * B;
  if (rows == 0) return {z, log_q};
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, mu.scalar_type(), "reparameterize_cuda", [&] {
    const int64_t blocks = grid_for(rows * kWarp, kThreads);
    forward_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
        m.const_data_ptr<scalar_t>(), lv.const_data_ptr<scalar_t>(), key, rows, B, D,
        z.mutable_data_ptr<scalar_t>(), log_q.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {z, log_q};
}

std::tuple<at::Tensor, at::Tensor> reparameterize_backward_cuda(
    const std::optional<at::Tensor>& grad_z, const std::optional<at::Tensor>& grad_log_q,
    const at::Tensor& mu, const at::Tensor& logvar, const at::Tensor& seed, int64_t num_samples,
    bool path_gradient) {
  check_reparameterize_inputs(mu, logvar, num_samples, seed);
  check_reparameterize_grads(grad_z, grad_log_q, mu, num_samples);
  const c10::cuda::CUDAGuard guard(mu.device());
  const auto [s, off] = read_seed(seed);
  const ph::Key key = ph::make_key(s, off);
  const at::Tensor lv = logvar.contiguous();
  std::optional<at::Tensor> gz, gl;
  if (grad_z.has_value()) gz = grad_z->contiguous();
  if (grad_log_q.has_value()) gl = grad_log_q->contiguous();
  at::Tensor grad_mu = at::empty(mu.sizes(), mu.options());
  at::Tensor grad_logvar = at::empty(mu.sizes(), mu.options());
  const int64_t D = mu.size(-1);
  const int64_t B = mu.numel() / D;
  if (B == 0) return {grad_mu, grad_logvar};
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, mu.scalar_type(), "reparameterize_backward_cuda", [&] {
    using T = typename Compute<scalar_t>::type;
    const int64_t groups = (B * D + ph::PerBlock<T>::value - 1) / ph::PerBlock<T>::value;
    backward_kernel<scalar_t><<<grid_for(groups, kThreads), kThreads, 0, stream>>>(
        gz ? gz->const_data_ptr<scalar_t>() : nullptr, gl ? gl->const_data_ptr<scalar_t>() : nullptr,
        lv.const_data_ptr<scalar_t>(), key, path_gradient, num_samples, B, D,
        grad_mu.mutable_data_ptr<scalar_t>(), grad_logvar.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_mu, grad_logvar};
}

}  // namespace
}  // namespace vaebench

TORCH_LIBRARY_IMPL(vaebench, CUDA, m) {
  m.impl("reparameterize", &vaebench::reparameterize_cuda);
  m.impl("reparameterize_backward", &vaebench::reparameterize_backward_cuda);
}
