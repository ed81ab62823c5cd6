// CPU kernels of vaebench::gaussian_kl and gaussian_kl_backward: the formulas of gaussian_kl.h
// (the ones the CUDA kernels call) on at::vec::Vectorized lanes.
//
// mu, logvar are walked as [N, D] rows, vectorized along D and parallel over rows. A prior
// shared by all rows has its gradient reduced over rows in chunks of at most kChunkRows rows
// (input precision), then over chunks in float64.
//
// This file is compiled once per CPU capability (csrc/cpu_capability.h); the DEFAULT copy also
// registers the ops.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "cpu_capability.h"
#include "gaussian_kl.h"

// gaussian_kl.h's formulas on vector lanes: exp is ATen's (SLEEF's in the AVX2/AVX-512 copies).
namespace vaebench::gkl {
template <typename T>
struct LaneMath<at::vec::Vectorized<T>> {
  using V = at::vec::Vectorized<T>;
  static V exp(const V& x) { return x.exp(); }
  static V constant(double c) { return V(static_cast<T>(c)); }
};
}  // namespace vaebench::gkl

VAEBENCH_DECLARE_CPU_KERNEL(void, gaussian_kl_forward_kernel, const at::Tensor& mu,
                            const at::Tensor& logvar, const vaebench::gkl::Prior& prior,
                            at::Tensor& out)
VAEBENCH_DECLARE_CPU_KERNEL(void, gaussian_kl_backward_kernel, const at::Tensor& grad,
                            const at::Tensor& mu, const at::Tensor& logvar,
                            const vaebench::gkl::Prior& prior, at::Tensor& grad_mu,
                            at::Tensor& grad_logvar, at::Tensor* grad_prior_mu,
                            at::Tensor* grad_prior_logvar)

namespace vaebench::cpu::CPU_CAPABILITY {
namespace {

using at::vec::Vectorized;

constexpr int64_t kGrain = 32768;     // elements per parallel work item
constexpr int64_t kChunkRows = 256;  // rows summed in input precision for a shared prior's grad

// out: [N] = 1/2 sum_D two_kl; mu, l: [N, D]; pm, pl: [D] (p_stride 0) or [N, D] (p_stride D),
// or null for the standard normal.
template <typename T>
void forward_impl(const T* mu, const T* l, const T* pm, const T* pl, int64_t p_stride, int64_t N,
                  int64_t D, T* out) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  at::parallel_for(0, N, std::max<int64_t>(1, kGrain / D), [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      const T* mr = mu + n * D;
      const T* lr = l + n * D;
      Vec acc(T(0));
      // Zero-filled tail lanes (mu = l = pm = pl = 0) add exp(0) - 1 = 0 exactly.
      auto step = [&](int64_t j, int64_t c) {
        const Vec m = Vec::loadu(mr + j, c), lv = Vec::loadu(lr + j, c);
        if (pm == nullptr) {
          acc = acc + gkl::two_kl_std(m, lv);
        } else {
          acc = acc + gkl::two_kl(m, lv, Vec::loadu(pm + n * p_stride + j, c),
                                  Vec::loadu(pl + n * p_stride + j, c));
        }
      };
      int64_t j = 0;
      for (; j + V <= D; j += V) step(j, V);
      if (j < D) step(j, D - j);
      out[n] = T(0.5) * at::vec::vec_reduce_all<T>([](Vec& x, Vec& y) { return x + y; }, acc);
    }
  });
}

// gmu, gl: [N, D]. Prior grads: gpm, gpl [N, D] when p_stride = D; when p_stride = 0 (shared)
// they are [D], reduced over rows; null when not wanted.
template <typename T>
void backward_impl(const T* g, const T* mu, const T* l, const T* pm, const T* pl,
                   int64_t p_stride, int64_t N, int64_t D, T* gmu, T* gl, T* gpm, T* gpl) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  const bool shared_sum = pm != nullptr && p_stride == 0 && gpm != nullptr;
  // Shared prior: rows in chunks, each chunk's partial sums [2, D] in `partial`.
  const int64_t rows_per_chunk =
      shared_sum ? std::clamp<int64_t>(N / (4 * at::get_num_threads()), 1, kChunkRows) : N;
  const int64_t nchunks = shared_sum ? (N + rows_per_chunk - 1) / rows_per_chunk : 0;
  std::vector<T> partial(shared_sum ? nchunks * 2 * D : 0, T(0));

  auto rows = [&](int64_t b, int64_t e, T* ppm, T* ppl) {
    for (int64_t n = b; n < e; ++n) {
      const Vec gv(g[n]);
      const int64_t o = n * D;
      auto step = [&](int64_t j, int64_t c) {
        const Vec m = Vec::loadu(mu + o + j, c), lv = Vec::loadu(l + o + j, c);
        Vec a, b2;
        if (pm == nullptr) {
          gkl::kl_grads_std(gv, m, lv, a, b2);
          a.store(gmu + o + j, c);
          b2.store(gl + o + j, c);
          return;
        }
        const int64_t po = n * p_stride + j;
        Vec gp_m, gp_l;
        gkl::kl_grads(gv, m, lv, Vec::loadu(pm + po, c), Vec::loadu(pl + po, c), a, b2, gp_m, gp_l);
        a.store(gmu + o + j, c);
        b2.store(gl + o + j, c);
        if (gpm == nullptr) return;
        if (shared_sum) {
          (Vec::loadu(ppm + j, c) + gp_m).store(ppm + j, c);
          (Vec::loadu(ppl + j, c) + gp_l).store(ppl + j, c);
        } else {
          gp_m.store(gpm + po, c);
          gp_l.store(gpl + po, c);
        }
      };
      int64_t j = 0;
      for (; j + V <= D; j += V) step(j, V);
      if (j < D) step(j, D - j);
    }
  };

  if (!shared_sum) {
    at::parallel_for(0, N, std::max<int64_t>(1, kGrain / D),
                     [&](int64_t b, int64_t e) { rows(b, e, nullptr, nullptr); });
    return;
  }
  at::parallel_for(0, nchunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      T* p = partial.data() + c * 2 * D;
      rows(c * rows_per_chunk, std::min(N, (c + 1) * rows_per_chunk), p, p + D);
    }
  });
  std::vector<double> sm(D, 0.0), sl(D, 0.0);
  for (int64_t c = 0; c < nchunks; ++c) {
    const T* p = partial.data() + c * 2 * D;
    for (int64_t j = 0; j < D; ++j) {
      sm[j] += p[j];
      sl[j] += p[D + j];
    }
  }
  for (int64_t j = 0; j < D; ++j) {
    gpm[j] = static_cast<T>(sm[j]);
    gpl[j] = static_cast<T>(sl[j]);
  }
}

template <typename T>
const T* prior_ptr(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

}  // namespace

void gaussian_kl_forward_kernel(const at::Tensor& mu, const at::Tensor& logvar,
                                const gkl::Prior& prior, at::Tensor& out) {
  const int64_t D = mu.size(-1), N = mu.numel() / D;
  const int64_t p_stride = prior.mode == gkl::PriorMode::kFull ? D : 0;
  AT_DISPATCH_FLOATING_TYPES(mu.scalar_type(), "vaebench.gaussian_kl", [&] {
    forward_impl<scalar_t>(mu.const_data_ptr<scalar_t>(), logvar.const_data_ptr<scalar_t>(),
                           prior_ptr<scalar_t>(prior.mu), prior_ptr<scalar_t>(prior.logvar),
                           p_stride, N, D, out.mutable_data_ptr<scalar_t>());
  });
}

void gaussian_kl_backward_kernel(const at::Tensor& grad, const at::Tensor& mu,
                                 const at::Tensor& logvar, const gkl::Prior& prior,
                                 at::Tensor& grad_mu, at::Tensor& grad_logvar,
                                 at::Tensor* grad_prior_mu, at::Tensor* grad_prior_logvar) {
  const int64_t D = mu.size(-1), N = mu.numel() / D;
  const int64_t p_stride = prior.mode == gkl::PriorMode::kFull ? D : 0;
  AT_DISPATCH_FLOATING_TYPES(mu.scalar_type(), "vaebench.gaussian_kl_backward", [&] {
    backward_impl<scalar_t>(
        grad.const_data_ptr<scalar_t>(), mu.const_data_ptr<scalar_t>(),
        logvar.const_data_ptr<scalar_t>(), prior_ptr<scalar_t>(prior.mu),
        prior_ptr<scalar_t>(prior.logvar), p_stride, N, D, grad_mu.mutable_data_ptr<scalar_t>(),
        grad_logvar.mutable_data_ptr<scalar_t>(),
        grad_prior_mu != nullptr ? grad_prior_mu->mutable_data_ptr<scalar_t>() : nullptr,
        grad_prior_logvar != nullptr ? grad_prior_logvar->mutable_data_ptr<scalar_t>() : nullptr);
  });
}

}  // namespace vaebench::cpu::CPU_CAPABILITY

#if VAEBENCH_REGISTERING_UNIT
namespace vaebench {
namespace {

using OptTensor = std::optional<at::Tensor>;

at::Tensor gaussian_kl_cpu(const at::Tensor& mu, const at::Tensor& logvar,
                           const OptTensor& prior_mu, const OptTensor& prior_logvar) {
  constexpr std::string_view op = "gaussian_kl";
  const gkl::Prior prior = gkl::check_inputs(op, mu, logvar, prior_mu, prior_logvar);
  checks::cpu_dtype(op, mu, "mu");
  at::Tensor out = at::empty(gkl::batch_sizes(mu), mu.options());
  if (out.numel() > 0) {
    VAEBENCH_CPU_DISPATCH(gaussian_kl_forward_kernel, mu.contiguous(), logvar.contiguous(), prior,
                          out);
  }
  return out;
}

// (grad_mu, grad_logvar, grad_prior_mu, grad_prior_logvar); the prior grads have the priors'
// shapes, or are empty (0,) for an absent prior or when prior_grad is false.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gaussian_kl_backward_cpu(
    const at::Tensor& grad, const at::Tensor& mu, const at::Tensor& logvar,
    const OptTensor& prior_mu, const OptTensor& prior_logvar, bool prior_grad) {
  constexpr std::string_view op = "gaussian_kl_backward";
  const gkl::Prior prior = gkl::check_inputs(op, mu, logvar, prior_mu, prior_logvar);
  checks::cpu_dtype(op, mu, "mu");
  gkl::check_grad(op, grad, mu);
  at::Tensor gmu = at::empty(mu.sizes(), mu.options());
  at::Tensor gl = at::empty(mu.sizes(), mu.options());
  at::Tensor gpm, gpl;
  const bool want_prior = prior_grad && prior.mode != gkl::PriorMode::kStandard;
  if (want_prior) {
    const int64_t D = mu.size(-1);
    gpm = prior.mode == gkl::PriorMode::kShared ? at::zeros({D}, mu.options())
                                                : at::empty(mu.sizes(), mu.options());
    gpl = at::zeros_like(gpm);
  }
  if (mu.numel() > 0) {
    VAEBENCH_CPU_DISPATCH(gaussian_kl_backward_kernel, grad.contiguous(), mu.contiguous(),
                          logvar.contiguous(), prior, gmu, gl, want_prior ? &gpm : nullptr,
                          want_prior ? &gpl : nullptr);
  }
  return {gmu, gl, gkl::prior_grad_to(gpm, prior_mu, mu), gkl::prior_grad_to(gpl, prior_logvar, mu)};
}

}  // namespace
}  // namespace vaebench

TORCH_LIBRARY_IMPL(vaebench, CPU, m) {
  m.impl("gaussian_kl", &vaebench::gaussian_kl_cpu);
  m.impl("gaussian_kl_backward", &vaebench::gaussian_kl_backward_cpu);
}
#endif
