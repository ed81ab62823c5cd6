// CUDA kernels of vaebench::gaussian_kl and gaussian_kl_backward (formulas in gaussian_kl.h,
// shared with the CPU code), accumulating in float32 (float64 for float64 inputs).
//  - forward: one warp per row of D, lanes stride over D, warp-shuffle sum;
//  - backward: threads along D (coalesced) and rows; a prior shared by all rows has its
//    gradient summed per block into a [row blocks, 2, D] workspace, then over row blocks.
// Only stable headers (c10/cuda): builds against torch 2.11 and 2.14.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/sum.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "../gaussian_kl.h"

namespace vaebench {
namespace {

constexpr int kRowsPerBlock = 8;  // forward: warps (rows) per block
constexpr int kBX = 32, kBY = 8;  // backward: D x rows per block
constexpr int kRowsPerThread = 16;  // backward: rows each thread walks (grid.y = N / 128)
constexpr int64_t kMaxGridY = 65535;  // CUDA's limit on grid.y and grid.z

// out: [N]; mu, l: [N, D]; pm, pl: [D] (p_stride 0), [N, D] (p_stride D) or null.
template <typename T, typename acc_t>
__global__ void kl_forward_kernel(const T* __restrict__ mu, const T* __restrict__ l,
                                  const T* __restrict__ pm, const T* __restrict__ pl,
                                  int64_t p_stride, int64_t N, int64_t D, T* out) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.y;
  if (n >= N) return;
  acc_t acc = 0;
  for (int64_t j = threadIdx.x; j < D; j += 32) {
    const acc_t m = static_cast<acc_t>(mu[n * D + j]), lv = static_cast<acc_t>(l[n * D + j]);
    acc += pm == nullptr ? gkl::two_kl_std(m, lv)
                         : gkl::two_kl(m, lv, static_cast<acc_t>(pm[n * p_stride + j]),
                                       static_cast<acc_t>(pl[n * p_stride + j]));
  }
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
  if (threadIdx.x == 0) out[n] = static_cast<T>(acc_t(0.5) * acc);
}

// gmu, gl: [N, D]. gpm, gpl: [N, D] (p_stride D) or, for a shared prior (p_stride 0), partial
// sums in `partial`: [row blocks, 2, D]; null when not wanted. Row block y0 + blockIdx.y: grid.y
// is limited to 65535, so the host launches the row blocks in slices of that many.
template <typename T, typename acc_t>
__global__ void kl_backward_kernel(const T* __restrict__ g, const T* __restrict__ mu,
                                   const T* __restrict__ l, const T* __restrict__ pm,
                                   const T* __restrict__ pl, int64_t p_stride, int64_t N,
                                   int64_t D, T* gmu, T* gl, T* gpm, T* gpl, acc_t* partial,
                                   int64_t y0) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kBX + threadIdx.x;
  const int64_t by = y0 + blockIdx.y;
  const int64_t n0 = by * kBY * kRowsPerThread;
  const int64_t n1 = min(N, n0 + kBY * kRowsPerThread);
  acc_t sum_pm = 0, sum_pl = 0;
  if (j < D) {
    for (int64_t n = n0 + threadIdx.y; n < n1; n += kBY) {
      const int64_t i = n * D + j;
      const acc_t gv = static_cast<acc_t>(g[n]);
      const acc_t m = static_cast<acc_t>(mu[i]), lv = static_cast<acc_t>(l[i]);
      acc_t a, b, c, d;
      if (pm == nullptr) {
        gkl::kl_grads_std(gv, m, lv, a, b);
        c = d = acc_t(0);  // no prior, so no prior gradient (gpm and partial are null)
      } else {
        const int64_t p = n * p_stride + j;
        gkl::kl_grads(gv, m, lv, static_cast<acc_t>(pm[p]), static_cast<acc_t>(pl[p]), a, b, c, d);
      }
      gmu[i] = static_cast<T>(a);
      gl[i] = static_cast<T>(b);
      if (partial != nullptr) {
        sum_pm += c;
        sum_pl += d;
      } else if (gpm != nullptr) {
        gpm[i] = static_cast<T>(c);
        gpl[i] = static_cast<T>(d);
      }
    }
  }
  if (partial == nullptr) return;
  __shared__ acc_t s_pm[kBY][kBX], s_pl[kBY][kBX];
  s_pm[threadIdx.y][threadIdx.x] = sum_pm;
  s_pl[threadIdx.y][threadIdx.x] = sum_pl;
  __syncthreads();
  if (threadIdx.y == 0 && j < D) {
    for (int y = 1; y < kBY; ++y) {
      sum_pm += s_pm[y][threadIdx.x];
      sum_pl += s_pl[y][threadIdx.x];
    }
    partial[(by * 2 + 0) * D + j] = sum_pm;
    partial[(by * 2 + 1) * D + j] = sum_pl;
  }
}

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

using OptTensor = std::optional<at::Tensor>;

at::Tensor gaussian_kl_cuda(const at::Tensor& mu, const at::Tensor& logvar,
                            const OptTensor& prior_mu, const OptTensor& prior_logvar) {
  const gkl::Prior prior = gkl::check_inputs("gaussian_kl", mu, logvar, prior_mu, prior_logvar);
  const c10::cuda::CUDAGuard guard(mu.device());
  at::Tensor out = at::empty(gkl::batch_sizes(mu), mu.options());
  if (out.numel() == 0) return out;
  const at::Tensor m = mu.contiguous(), l = logvar.contiguous();
  const int64_t D = mu.size(-1), N = mu.numel() / D;
  const int64_t p_stride = prior.mode == gkl::PriorMode::kFull ? D : 0;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, mu.scalar_type(), "vaebench.gaussian_kl", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const dim3 block(32, kRowsPerBlock);
    kl_forward_kernel<scalar_t, acc_t><<<(N + kRowsPerBlock - 1) / kRowsPerBlock, block, 0, stream>>>(
        m.const_data_ptr<scalar_t>(), l.const_data_ptr<scalar_t>(), ptr_or_null<scalar_t>(prior.mu),
        ptr_or_null<scalar_t>(prior.logvar), p_stride, N, D, out.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gaussian_kl_backward_cuda(
    const at::Tensor& grad, const at::Tensor& mu, const at::Tensor& logvar,
    const OptTensor& prior_mu, const OptTensor& prior_logvar, bool prior_grad) {
  constexpr std::string_view op = "gaussian_kl_backward";
  const gkl::Prior prior = gkl::check_inputs(op, mu, logvar, prior_mu, prior_logvar);
  gkl::check_grad(op, grad, mu);
  const c10::cuda::CUDAGuard guard(mu.device());
  const int64_t D = mu.size(-1), N = mu.numel() / D;
  const int64_t p_stride = prior.mode == gkl::PriorMode::kFull ? D : 0;
  const bool want_prior = prior_grad && prior.mode != gkl::PriorMode::kStandard;
  const bool shared = want_prior && prior.mode == gkl::PriorMode::kShared;
  at::Tensor gmu = at::empty(mu.sizes(), mu.options());
  at::Tensor gl = at::empty(mu.sizes(), mu.options());
  at::Tensor gpm, gpl;
  if (want_prior && !shared) {
    gpm = at::empty(mu.sizes(), mu.options());
    gpl = at::empty(mu.sizes(), mu.options());
  }
  const int64_t row_blocks = (N + kBY * kRowsPerThread - 1) / (kBY * kRowsPerThread);
  const at::Tensor g = grad.contiguous(), m = mu.contiguous(), l = logvar.contiguous();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, mu.scalar_type(), "vaebench.gaussian_kl_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::Tensor partial;
    if (shared) {
      partial = at::empty({row_blocks, 2, D}, mu.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
    }
    const dim3 block(kBX, kBY);
    for (int64_t y0 = 0; y0 < row_blocks; y0 += kMaxGridY) {
      const dim3 grid((D + kBX - 1) / kBX, std::min(kMaxGridY, row_blocks - y0));
      kl_backward_kernel<scalar_t, acc_t><<<grid, block, 0, stream>>>(
          g.const_data_ptr<scalar_t>(), m.const_data_ptr<scalar_t>(), l.const_data_ptr<scalar_t>(),
          ptr_or_null<scalar_t>(prior.mu), ptr_or_null<scalar_t>(prior.logvar), p_stride, N, D,
          gmu.mutable_data_ptr<scalar_t>(), gl.mutable_data_ptr<scalar_t>(),
          gpm.defined() ? gpm.mutable_data_ptr<scalar_t>() : nullptr,
          gpl.defined() ? gpl.mutable_data_ptr<scalar_t>() : nullptr,
          shared ? partial.mutable_data_ptr<acc_t>() : nullptr, y0);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (shared) {
      // Sum over row blocks in the accumulation type, then round once.
      // Two separate tensors: op outputs must not share storage.
      const at::Tensor total = partial.sum(0).to(mu.scalar_type());
      gpm = total.select(0, 0).clone();
      gpl = total.select(0, 1).clone();
    }
  });
  return {gmu, gl, gkl::prior_grad_to(gpm, prior_mu, mu), gkl::prior_grad_to(gpl, prior_logvar, mu)};
}

}  // namespace
}  // namespace vaebench

TORCH_LIBRARY_IMPL(vaebench, CUDA, m) {
  m.impl("gaussian_kl", &vaebench::gaussian_kl_cuda);
  m.impl("gaussian_kl_backward", &vaebench::gaussian_kl_backward_cuda);
}
