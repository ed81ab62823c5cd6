// CPU kernels of vaebench::gaussian_kl and gaussian_kl_backward (formulas in gaussian_kl.h).
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
  const Vec one(T(1));
  at::parallel_for(0, N, std::max<int64_t>(1, kGrain / D), [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      const T* mr = mu + n * D;
      const T* lr = l + n * D;
      Vec acc(T(0));
      // Zero-filled tail lanes (mu = l = pm = pl = 0) add exp(0) - 1 = 0 exactly.
      auto step = [&](int64_t j, int64_t c) {
        const Vec m = Vec::loadu(mr + j, c), lv = Vec::loadu(lr + j, c);
        if (pm == nullptr) {
          // 2 KL = exp(l) + mu^2 - l - 1
          acc = acc + (lv.exp() + m * m - lv - one);
        } else {
          // 2 KL = pl - l + exp(l - pl) + (mu - pm)^2 exp(-pl) - 1
          const Vec pmv = Vec::loadu(pm + n * p_stride + j, c);
          const Vec plv = Vec::loadu(pl + n * p_stride + j, c);
          const Vec d = m - pmv;
          acc = acc + (plv - lv + (lv - plv).exp() + d * d * plv.neg().exp() - one);
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
  const Vec one(T(1)), half(T(0.5));
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
        if (pm == nullptr) {
          // d/dmu = g mu, d/dl = g (exp(l) - 1) / 2
          (gv * m).store(gmu + o + j, c);
          (half * gv * (lv.exp() - one)).store(gl + o + j, c);
          return;
        }
        const int64_t po = n * p_stride + j;
        const Vec d = m - Vec::loadu(pm + po, c);
        const Vec plv = Vec::loadu(pl + po, c);
        // d/dmu = g d exp(-pl), d/dl = g (exp(l - pl) - 1) / 2
        const Vec a = gv * d * plv.neg().exp();
        const Vec b2 = half * gv * ((lv - plv).exp() - one);
        a.store(gmu + o + j, c);
        b2.store(gl + o + j, c);
        if (gpm == nullptr) return;
        // d/dpm = -d/dmu, d/dpl = -(d/dl + d d/dmu / 2)
        const Vec gp_m = a.neg();
        const Vec gp_l = (b2 + half * d * a).neg();
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
