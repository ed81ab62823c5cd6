// CUDA kernels of vaebench::bernoulli_head and bernoulli_head_backward (formulas in
// bernoulli_head.h, shared with the CPU code), accumulating in float32 (float64 for float64).
//
// The rows are cut into chunks whose logits [chunk, D] take at most kChunkBytes of GPU memory
// (the full [R, D] logits never exist); per chunk: logits by cuBLAS (at::mm), then
//  - forward: one warp per row sums x l - softplus(l + b) over D (warp-shuffle reduction);
//  - backward: one pass turns the logits into dl = g (x - sigmoid(l + b)) in place, then
//    grad_h's rows = dl W and grad_W += dl^T h by cuBLAS, grad_b += column sums of dl.
// Only stable headers (c10/cuda) and dispatcher calls for the matmuls: builds against torch
// 2.11 and 2.14 without the cuBLAS headers.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "../bernoulli_head.h"

namespace vaebench {
namespace {

constexpr int kRowsPerBlock = 8;               // warps (rows) per block
constexpr int64_t kChunkBytes = 256ll << 20;   // logits per chunk: 256 MiB, small next to an H100's 80 GB
constexpr int64_t kMaxGridX = 2147483647;

int64_t chunk_rows(int64_t R, int64_t D, int64_t elem, int64_t requested) {
  if (requested > 0) return requested;
  return std::max<int64_t>(1, std::min(R, kChunkBytes / std::max<int64_t>(1, D * elem)));
}

// out: [rows]; L: [rows, D] logits without bias, rows r0.. of the whole; x: [x_rows, D]; b: [D].
template <typename T, typename acc_t>
__global__ void head_forward_kernel(const T* __restrict__ L, const T* __restrict__ x,
                                    const T* __restrict__ b, int64_t rows, int64_t r0,
                                    int64_t x_rows, int64_t D, T* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.y;
  if (i >= rows) return;
  const T* xr = x + ((r0 + i) % x_rows) * D;
  acc_t acc = 0;
  for (int64_t j = threadIdx.x; j < D; j += 32) {
    const acc_t l = static_cast<acc_t>(L[i * D + j]) + static_cast<acc_t>(b[j]);
    acc += bhead::log_prob_term(static_cast<acc_t>(xr[j]), l);
  }
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
  if (threadIdx.x == 0) out[r0 + i] = static_cast<T>(acc);
}

// In place: L[i, j] <- g[r0 + i] (x - sigmoid(L[i, j] + b[j])); L: [rows, D].
template <typename T, typename acc_t>
__global__ void head_dlogit_kernel(T* __restrict__ L, const T* __restrict__ g,
                                   const T* __restrict__ x, const T* __restrict__ b, int64_t rows,
                                   int64_t r0, int64_t x_rows, int64_t D) {
  const int64_t n = rows * D;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / D, j = e - i * D;
    const acc_t l = static_cast<acc_t>(L[e]) + static_cast<acc_t>(b[j]);
    L[e] = static_cast<T>(bhead::dlogit(static_cast<acc_t>(g[r0 + i]),
                                        static_cast<acc_t>(x[((r0 + i) % x_rows) * D + j]), l));
  }
}

at::Tensor bernoulli_head_cuda(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& bias,
                               const at::Tensor& x, int64_t tile_rows) {
  constexpr std::string_view op = "bernoulli_head";
  TORCH_CHECK(tile_rows >= 0, "vaebench.", op, ": tile_rows must be >= 0 (0 chooses it), got ", tile_rows);
  const bhead::Layout lay = bhead::check_inputs(op, h, weight, bias, x);
  const c10::cuda::CUDAGuard guard(h.device());
  at::Tensor out = at::empty(lay.out_sizes, h.options());
  if (lay.R == 0) return out;
  const at::Tensor Wt = weight.contiguous().t(), b = bias.contiguous();
  const int64_t C = chunk_rows(lay.R, lay.D, h.element_size(), tile_rows);
  at::Tensor buf = at::empty({std::min(C, lay.R), lay.D}, h.options());
  const auto stream = c10::cuda::getCurrentCUDAStream();
  for (int64_t r0 = 0; r0 < lay.R; r0 += C) {
    const int64_t rows = std::min(C, lay.R - r0);
    at::Tensor Lc = buf.narrow(0, 0, rows);
    at::mm_out(Lc, lay.h2d.narrow(0, r0, rows), Wt);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, h.scalar_type(), "vaebench.bernoulli_head", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      const dim3 block(32, kRowsPerBlock);
      head_forward_kernel<scalar_t, acc_t><<<(rows + kRowsPerBlock - 1) / kRowsPerBlock, block, 0, stream>>>(
          Lc.const_data_ptr<scalar_t>(), lay.x2d.const_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(),
          rows, r0, lay.x2d.size(0), lay.D, out.mutable_data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> bernoulli_head_backward_cuda(
    const at::Tensor& grad, const at::Tensor& h, const at::Tensor& weight, const at::Tensor& bias,
    const at::Tensor& x, int64_t tile_rows) {
  constexpr std::string_view op = "bernoulli_head_backward";
  TORCH_CHECK(tile_rows >= 0, "vaebench.", op, ": tile_rows must be >= 0 (0 chooses it), got ", tile_rows);
  const bhead::Layout lay = bhead::check_inputs(op, h, weight, bias, x);
  bhead::check_grad(op, grad, h, lay);
  const c10::cuda::CUDAGuard guard(h.device());
  at::Tensor gh = at::zeros(h.sizes(), h.options());
  at::Tensor gw = at::zeros(weight.sizes(), weight.options());
  at::Tensor gb = at::zeros(bias.sizes(), bias.options());
  if (lay.R == 0 || lay.D == 0) return {gh, gw, gb};
  const at::Tensor W = weight.contiguous(), Wt = W.t(), b = bias.contiguous(), g = grad.contiguous();
  const at::Tensor gh2d = gh.view({lay.R, lay.H});
  const int64_t C = chunk_rows(lay.R, lay.D, h.element_size(), tile_rows);
  at::Tensor buf = at::empty({std::min(C, lay.R), lay.D}, h.options());
  const auto stream = c10::cuda::getCurrentCUDAStream();
  for (int64_t r0 = 0; r0 < lay.R; r0 += C) {
    const int64_t rows = std::min(C, lay.R - r0);
    at::Tensor Lc = buf.narrow(0, 0, rows);
    const at::Tensor hc = lay.h2d.narrow(0, r0, rows);
    at::mm_out(Lc, hc, Wt);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, h.scalar_type(), "vaebench.bernoulli_head_backward", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      const int threads = 256;
      const int64_t blocks = std::min<int64_t>((rows * lay.D + threads - 1) / threads, 65536);
      head_dlogit_kernel<scalar_t, acc_t><<<static_cast<unsigned>(std::min(blocks, kMaxGridX)), threads, 0, stream>>>(
          Lc.mutable_data_ptr<scalar_t>(), g.const_data_ptr<scalar_t>(), lay.x2d.const_data_ptr<scalar_t>(),
          b.const_data_ptr<scalar_t>(), rows, r0, lay.x2d.size(0), lay.D);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    // grad_h rows = dl W ([rows, D] x [D, H]); grad_W += dl^T h ([D, rows] x [rows, H])
    at::Tensor ghc = gh2d.narrow(0, r0, rows);
    at::mm_out(ghc, Lc, W);
    gw.addmm_(Lc.t(), hc);
    gb.add_(Lc.sum(0));
  }
  return {gh, gw, gb};
}

}  // namespace
}  // namespace vaebench

TORCH_LIBRARY_IMPL(vaebench, CUDA, m) {
  m.impl("bernoulli_head", &vaebench::bernoulli_head_cuda);
  m.impl("bernoulli_head_backward", &vaebench::bernoulli_head_backward_cuda);
}
