// CUDA kernels of vaebench::log_mean_exp, log_mean_exp_backward and importance_weights.
//
// log_w is walked as [outer, K, inner] (csrc/log_mean_exp.h), accumulating in float32 (float64
// for float64 inputs) with the scalar online step lme::online_add/merge (the CPU code spells the
// same step on vector lanes):
//  - inner == 1 (K contiguous): one block per row, threads stride over K (coalesced), states
//    merged by warp shuffles then through shared memory;
//  - inner > 1: threads along the columns (coalesced), blockDim.y and grid.z split K; each
//    (z, column) writes a partial state to a workspace and a second kernel merges the splits.
// The weights (backward and importance_weights) are one elementwise pass, w = exp(x - M) * g / S,
// from each column's max M and sum S that the reduction leaves (lme::weight_scale: never from the
// rounded lse, which loses log S for |lse| >~ 1/eps); the backward therefore reads log_w twice.
// Only stable headers (c10/cuda): builds against torch 2.11 and 2.14.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>

#include "../log_mean_exp.h"

namespace vaebench {
namespace {

constexpr int kRowThreads = 256;  // inner == 1: threads per row
constexpr int kColX = 32;         // inner > 1: columns per block (one warp, coalesced)
constexpr int kColY = 8;          // inner > 1: K slices per block
constexpr int64_t kMaxGridY = 65535;  // CUDA's limit on grid.y and grid.z

template <typename acc_t>
__device__ inline void warp_merge(acc_t& m, acc_t& s, acc_t& sq) {
  for (int off = 16; off > 0; off >>= 1) {
    const acc_t m2 = __shfl_down_sync(0xffffffffu, m, off);
    const acc_t s2 = __shfl_down_sync(0xffffffffu, s, off);
    const acc_t q2 = __shfl_down_sync(0xffffffffu, sq, off);
    lme::online_merge(m, s, sq, m2, s2, q2);
  }
}

// Where a reduction writes, each optional (null: not wanted): out = lse - shift (rounded to T);
// the column state the weights are formed from, col_max = M (exact in T: one of the entries)
// and col_sum = S = sum_k exp(x_k - M) in acc_t; ess = s^2 / sq in acc_t.
template <typename T, typename acc_t>
struct Outputs {
  T* out;
  T* col_max;
  acc_t* col_sum;
  acc_t* ess;

  // The same outputs from column c0 on (a slice of the columns).
  Outputs at(int64_t c0) const {
    return {out != nullptr ? out + c0 : nullptr, col_max != nullptr ? col_max + c0 : nullptr,
            col_sum != nullptr ? col_sum + c0 : nullptr, ess != nullptr ? ess + c0 : nullptr};
  }
};

template <typename T, typename acc_t>
__device__ inline void finish(acc_t m, acc_t s, acc_t sq, double shift, int64_t i,
                              const Outputs<T, acc_t>& o) {
  if (o.out != nullptr) o.out[i] = static_cast<T>(static_cast<double>(m) + log(static_cast<double>(s)) - shift);
  if (o.col_max != nullptr) {
    o.col_max[i] = lme::weight_base<T>(m, s);
    o.col_sum[i] = s;
  }
  if (o.ess != nullptr) o.ess[i] = lme::ess_from(m, s, sq);
}

// x: [outer, K]; outputs: [outer] (ess in acc_t: a count up to K overflows float16).
// One block per row.
template <typename T, typename acc_t>
__global__ void lse_rows_kernel(const T* __restrict__ x, int64_t K, double shift,
                                Outputs<T, acc_t> outs) {
  const int64_t o = blockIdx.x;
  const T* row = x + o * K;
  acc_t m = lme::lowest<acc_t>(), s = 0, sq = 0;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    lme::online_add(m, s, sq, static_cast<acc_t>(row[k]));
  }
  warp_merge(m, s, sq);
  __shared__ acc_t sm[kRowThreads / 32], ss[kRowThreads / 32], sqq[kRowThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    sm[warp] = m;
    ss[warp] = s;
    sqq[warp] = sq;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < blockDim.x / 32; ++w) lme::online_merge(m, s, sq, sm[w], ss[w], sqq[w]);
    finish<T, acc_t>(m, s, sq, shift, o, outs);
  }
}

// x: [outer, K, inner]; partial: [3, splits, outer * inner] states (m, s, sq) of K slice z.
template <typename T, typename acc_t>
__global__ void lse_cols_kernel(const T* __restrict__ x, int64_t K, int64_t inner,
                                int64_t k_per_split, acc_t* partial, int64_t n_cols) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kColX + threadIdx.x;
  const int64_t o = blockIdx.y;
  const int64_t z = blockIdx.z;
  const int64_t k0 = z * k_per_split, k1 = min(K, k0 + k_per_split);
  acc_t m = lme::lowest<acc_t>(), s = 0, sq = 0;
  if (j < inner) {
    const T* col = x + o * K * inner + j;
    for (int64_t k = k0 + threadIdx.y; k < k1; k += kColY) {
      lme::online_add(m, s, sq, static_cast<acc_t>(col[k * inner]));
    }
  }
  __shared__ acc_t sm[kColY][kColX], ss[kColY][kColX], sqq[kColY][kColX];
  sm[threadIdx.y][threadIdx.x] = m;
  ss[threadIdx.y][threadIdx.x] = s;
  sqq[threadIdx.y][threadIdx.x] = sq;
  __syncthreads();
  if (threadIdx.y == 0 && j < inner) {
    for (int y = 1; y < kColY; ++y) {
      lme::online_merge(m, s, sq, sm[y][threadIdx.x], ss[y][threadIdx.x], sqq[y][threadIdx.x]);
    }
    const int64_t c = o * inner + j;
    const int64_t splits = gridDim.z;
    partial[(0 * splits + z) * n_cols + c] = m;
    partial[(1 * splits + z) * n_cols + c] = s;
    partial[(2 * splits + z) * n_cols + c] = sq;
  }
}

template <typename T, typename acc_t>
__global__ void lse_merge_kernel(const acc_t* partial, int64_t splits, int64_t n_cols,
                                 double shift, Outputs<T, acc_t> outs) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= n_cols) return;
  acc_t m = lme::lowest<acc_t>(), s = 0, sq = 0;
  for (int64_t z = 0; z < splits; ++z) {
    lme::online_merge(m, s, sq, partial[z * n_cols + c], partial[(splits + z) * n_cols + c],
                      partial[(2 * splits + z) * n_cols + c]);
  }
  finish<T, acc_t>(m, s, sq, shift, c, outs);
}

// w = exp(x - M) * lme::weight_scale(M, S, g) per element (g / S for a live column; g = 1 and
// softmax's NaN rule when `grad` is null). x, w: [outer, K, inner]; col_max, col_sum, grad:
// [outer, inner].
template <typename T, typename acc_t>
__global__ void weights_kernel(const T* __restrict__ x, int64_t n, int64_t K, int64_t inner,
                               const T* col_max, const acc_t* col_sum, const T* grad, T* w) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = (i / (K * inner)) * inner + i % inner;
    const acc_t m = static_cast<acc_t>(col_max[c]);
    const acc_t g = grad != nullptr ? static_cast<acc_t>(grad[c]) : acc_t(1);
    const acc_t f = lme::weight_scale(m, col_sum[c], g, grad == nullptr);
    w[i] = static_cast<T>(exp(static_cast<acc_t>(x[i]) - m) * f);
  }
}

int sm_count(const at::Tensor& t) {
  int n = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, t.get_device()));
  return n;
}

// Over dim, each optional (null: not wanted): out = lse - shift; the column state col_max (in
// x's dtype) and col_sum (in x's opmath dtype); ESS (opmath dtype).
void lse_forward(const at::Tensor& x, const lme::ReductionShape& r, double shift, at::Tensor* out,
                 at::Tensor* col_max, at::Tensor* col_sum, at::Tensor* ess) {
  TORCH_INTERNAL_ASSERT((col_max == nullptr) == (col_sum == nullptr));
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "vaebench.log_mean_exp", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const Outputs<scalar_t, acc_t> outs{
        out != nullptr ? out->mutable_data_ptr<scalar_t>() : nullptr,
        col_max != nullptr ? col_max->mutable_data_ptr<scalar_t>() : nullptr,
        col_sum != nullptr ? col_sum->mutable_data_ptr<acc_t>() : nullptr,
        ess != nullptr ? ess->mutable_data_ptr<acc_t>() : nullptr};
    if (r.inner == 1) {
      // grid.x is limited to 2^31 - 1 rows, far above any batch.
      lse_rows_kernel<scalar_t, acc_t><<<r.outer, kRowThreads, 0, stream>>>(xp, r.K, shift, outs);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      return;
    }
    // grid.y (the dims before `dim`) is limited to 65535: slices of that many, each its own
    // pair of launches on pointers moved to the slice.
    const int64_t col_blocks = (r.inner + kColX - 1) / kColX;
    for (int64_t o0 = 0; o0 < r.outer; o0 += kMaxGridY) {
      const int64_t outer = std::min(kMaxGridY, r.outer - o0);
      const int64_t n_cols = outer * r.inner;
      // Split K over grid.z until about two blocks per SM, keeping >= 64 rows per split.
      const int64_t want = std::max<int64_t>(1, 2 * sm_count(x) / (col_blocks * outer));
      const int64_t splits = std::clamp<int64_t>(want, 1, std::min<int64_t>(kMaxGridY, (r.K + 63) / 64));
      const int64_t k_per_split = (r.K + splits - 1) / splits;
      at::Tensor partial = at::empty({3, splits, n_cols}, x.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
      const dim3 block(kColX, kColY);
      const dim3 grid(col_blocks, outer, splits);
      lse_cols_kernel<scalar_t, acc_t><<<grid, block, 0, stream>>>(
          xp + o0 * r.K * r.inner, r.K, r.inner, k_per_split, partial.mutable_data_ptr<acc_t>(), n_cols);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      const int64_t c0 = o0 * r.inner;  // the slice's first output
      lse_merge_kernel<scalar_t, acc_t><<<(n_cols + 255) / 256, 256, 0, stream>>>(
          partial.const_data_ptr<acc_t>(), splits, n_cols, shift, outs.at(c0));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
}

void weights(const at::Tensor& x, const lme::ReductionShape& r, const at::Tensor& col_max,
             const at::Tensor& col_sum, const at::Tensor* grad, at::Tensor& w) {
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const int64_t n = x.numel();
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, int64_t(sm_count(x)) * 32);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "vaebench.log_mean_exp_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    weights_kernel<scalar_t, acc_t><<<blocks, 256, 0, stream>>>(
        x.const_data_ptr<scalar_t>(), n, r.K, r.inner, col_max.const_data_ptr<scalar_t>(),
        col_sum.const_data_ptr<acc_t>(), grad != nullptr ? grad->const_data_ptr<scalar_t>() : nullptr,
        w.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

at::Tensor log_mean_exp_cuda(const at::Tensor& log_w, int64_t dim) {
  const auto r = lme::check_reduction("log_mean_exp", log_w, dim);
  const c10::cuda::CUDAGuard guard(log_w.device());
  const at::Tensor x = log_w.contiguous();
  at::Tensor out = at::empty(lme::reduced_sizes(log_w, r.dim), log_w.options());
  if (out.numel() > 0) lse_forward(x, r, std::log(static_cast<double>(r.K)), &out, nullptr, nullptr, nullptr);
  return out;
}

// The weights times grad, from the column max and sum read again from log_w: `out` rounded to T
// has lost log S for |out| >~ 1/eps and moves every weight by up to |out| eps below that (for
// float16, 1e-3 at |out| ~ 1), so it is only checked for its shape (csrc/log_mean_exp.cpp).
at::Tensor log_mean_exp_backward_cuda(const at::Tensor& grad, const at::Tensor& log_w,
                                      const at::Tensor& out, int64_t dim) {
  constexpr std::string_view op = "log_mean_exp_backward";
  const auto r = lme::check_backward(op, grad, log_w, out, dim);
  const c10::cuda::CUDAGuard guard(log_w.device());
  const at::Tensor x = log_w.contiguous(), g = grad.contiguous();
  at::Tensor w = at::empty(log_w.sizes(), log_w.options());
  if (w.numel() == 0) return w;
  const auto sizes = lme::reduced_sizes(log_w, r.dim);
  at::Tensor col_max = at::empty(sizes, log_w.options());
  at::Tensor col_sum = at::empty(sizes, log_w.options().dtype(at::toOpMathType(log_w.scalar_type())));
  lse_forward(x, r, 0.0, nullptr, &col_max, &col_sum, nullptr);
  weights(x, r, col_max, col_sum, &g, w);
  return w;
}

std::tuple<at::Tensor, at::Tensor> importance_weights_cuda(const at::Tensor& log_w, int64_t dim) {
  const auto r = lme::check_reduction("importance_weights", log_w, dim);
  const c10::cuda::CUDAGuard guard(log_w.device());
  const at::Tensor x = log_w.contiguous();
  const auto sizes = lme::reduced_sizes(log_w, r.dim);
  // ESS and the column sums in float32 for 16-bit inputs: a count up to K overflows float16
  // beyond 65504.
  const auto wide = log_w.options().dtype(at::toOpMathType(log_w.scalar_type()));
  at::Tensor col_max = at::empty(sizes, log_w.options());
  at::Tensor col_sum = at::empty(sizes, wide);
  at::Tensor ess = at::empty(sizes, wide);
  at::Tensor w = at::empty(log_w.sizes(), log_w.options());
  if (w.numel() > 0) {
    lse_forward(x, r, 0.0, nullptr, &col_max, &col_sum, &ess);
    weights(x, r, col_max, col_sum, nullptr, w);
  }
  return {w, ess};
}

}  // namespace
}  // namespace vaebench

TORCH_LIBRARY_IMPL(vaebench, CUDA, m) {
  m.impl("log_mean_exp", &vaebench::log_mean_exp_cuda);
  m.impl("log_mean_exp_backward", &vaebench::log_mean_exp_backward_cuda);
  m.impl("importance_weights", &vaebench::importance_weights_cuda);
}
