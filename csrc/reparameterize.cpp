// vaebench::reparameterize on the CPU: z = mu + sigma eps and log q(z), eps drawn in the kernel
// from the Philox stream (csrc/philox.h), and its backward, which recomputes eps from the seed.
//
// This file is compiled once per CPU capability (csrc/cpu_capability.h); the DEFAULT copy also
// holds the checks and the registration. All copies give the same bits: the normals and z use
// only IEEE-exact operations, and the sums run in a fixed order that depends on the shapes only
// (not on the thread count or the capability).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "checks.h"
#include "cpu_capability.h"
#include "philox_cpu.h"
#include "reparameterize_common.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

VAEBENCH_DECLARE_CPU_KERNEL(void, reparameterize_forward_kernel, const at::Tensor& mu,
                            const at::Tensor& logvar, uint64_t seed, uint64_t offset,
                            at::Tensor& z, at::Tensor& log_q)
VAEBENCH_DECLARE_CPU_KERNEL(void, reparameterize_backward_kernel, const at::Tensor* grad_z,
                            const at::Tensor* grad_log_q, const at::Tensor& mu,
                            const at::Tensor& logvar, uint64_t seed, uint64_t offset,
                            bool path_gradient, int64_t num_samples, at::Tensor& grad_mu,
                            at::Tensor& grad_logvar)

namespace vaebench::cpu::CPU_CAPABILITY {
namespace {

namespace ph = ::vaebench::philox;

// Elements handled per Philox call; a multiple of kLanes, small enough to stay in L1.
constexpr int64_t kChunk = 1024;
// Lanes of the fixed-order partial sums (sum over D): independent of the SIMD width, so all
// capability copies add in the same order.
constexpr int kLanes = 16;
// Samples whose gz and gz eps terms are summed in the input precision before they join the
// float64 sums: the rounding error of a float32 sum of 16 terms stays below ~16 ulp of the
// largest, far inside the float32 result's own rounding, and the conversions to float64 happen
// once per 16 samples instead of per sample.
constexpr int64_t kFlush = 16;
// Elements below which the per-(b, d) preparation (sigma, row constants) runs on one thread.
constexpr int64_t kSerial = 1 << 16;

template <typename T>
T reduce_lanes(const T (&acc)[kLanes]) {
  T s8[8], s4[4];
  for (int l = 0; l < 8; ++l) s8[l] = acc[l] + acc[l + 8];
  for (int l = 0; l < 4; ++l) s4[l] = s8[l] + s8[l + 4];
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

// sigma = exp(logvar / 2) with the stream's own exp (the same bits as the CUDA kernel).
template <typename T>
std::vector<T> sigmas(const T* lv, int64_t n) {
  std::vector<T> s(static_cast<size_t>(n));
  // Serial below kSerial elements: a parallel region costs more than it saves there (and on a
  // busy machine each region's barrier can wait a whole scheduler slice).
  at::parallel_for(0, n, kSerial, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) s[i] = ph::exp_(T(0.5) * lv[i]);
  });
  return s;
}

// One row piece of the forward: z = sigma eps + mu (one rounding), acc[j % kLanes] += eps^2.
// eps, mu, sigma, z: [len]
template <typename T>
void forward_piece(const T* __restrict eps, const T* __restrict mu, const T* __restrict sigma,
                   T* __restrict z, int64_t len, T (&acc)[kLanes]) {
  int64_t j = 0;
  for (; j + kLanes <= len; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const T e = eps[j + l];
      z[j + l] = ph::fma_(sigma[j + l], e, mu[j + l]);
      acc[l] = ph::fma_(e, e, acc[l]);
    }
  }
  for (int l = 0; j + l < len; ++l) {
    const T e = eps[j + l];
    z[j + l] = ph::fma_(sigma[j + l], e, mu[j + l]);
    acc[l] = ph::fma_(e, e, acc[l]);
  }
}

template <typename T>
void forward_impl(const T* mu, const T* lv, ph::Key key, int64_t K, int64_t B, int64_t D, T* z,
                  T* log_q) {
  // mu, logvar, sigma: [B, D]; z: [K, B, D]; log_q: [K, B]
  const std::vector<T> sigma = sigmas(lv, B * D);
  // log q = -1/2 sum_D eps^2 + c_b,  c_b = -1/2 sum_D logvar - D log(2 pi) / 2
  std::vector<T> c(static_cast<size_t>(B));
  at::parallel_for(0, B, std::max<int64_t>(1, kSerial / D), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      T s = 0;
      for (int64_t d = 0; d < D; ++d) s += lv[b * D + d];
      c[b] = T(-0.5) * s - static_cast<T>(D) * static_cast<T>(kHalfLog2Pi);
    }
  });
  const int64_t rows = K * B;
  at::parallel_for(0, rows, std::max<int64_t>(1, kChunk / D), [&](int64_t r0, int64_t r1) {
    alignas(64) T buf[ph::normals_buffer_size<T>(kChunk)];
    if (D <= kChunk) {
      // whole rows per Philox run
      const int64_t per = kChunk / D;
      for (int64_t r = r0; r < r1; r += per) {
        const int64_t nr = std::min(per, r1 - r);
        const T* e = ph::normals_cpu(key, static_cast<uint64_t>(r * D), nr * D, buf);
        for (int64_t j = 0; j < nr; ++j) {
          const int64_t row = r + j, b = row % B;
          T acc[kLanes] = {};
          forward_piece(e + j * D, mu + b * D, sigma.data() + b * D, z + row * D, D, acc);
          log_q[row] = ph::fma_(T(-0.5), reduce_lanes(acc), c[b]);
        }
      }
    } else {
      // long rows in kChunk pieces (a multiple of kLanes, so the lanes line up across pieces)
      for (int64_t row = r0; row < r1; ++row) {
        const int64_t b = row % B;
        T acc[kLanes] = {};
        for (int64_t d = 0; d < D; d += kChunk) {
          const int64_t len = std::min(kChunk, D - d);
          const T* e = ph::normals_cpu(key, static_cast<uint64_t>(row * D + d), len, buf);
          forward_piece(e, mu + b * D + d, sigma.data() + b * D + d, z + row * D + d, len, acc);
        }
        log_q[row] = ph::fma_(T(-0.5), reduce_lanes(acc), c[b]);
      }
    }
  });
}

// Backward, summed over the K samples of each (b, d), eps recomputed from the seed:
//   full:  d/dmu = sum_k gz,                  d/dlogvar = sigma/2 sum_k gz eps - 1/2 sum_k gl
//   path:  d/dmu = sum_k gz - 1/sigma sum_k gl eps,
//          d/dlogvar = sigma/2 sum_k gz eps - 1/2 sum_k gl eps^2
// (path: log q reaches mu, logvar only through z, d log q / dz = -eps / sigma).
// The sums over K run in double (float32 products are exact there): a K of thousands (IWAE,
// evaluation) would otherwise lose digits to a sequential float32 sum.
// gz: [K, B, D] or null; gl: [K, B] or null; mu, lv, gmu, glv: [B, D]
template <typename T>
void backward_impl(const T* gz, const T* gl, const T* lv, ph::Key key, bool path, int64_t K,
                   int64_t B, int64_t D, T* gmu, T* glv) {
  using A = double;
  const std::vector<T> sigma = sigmas(lv, B * D);
  const int64_t N = B * D;
  // Pieces: whole rows [r, r + per) when D fits a chunk, else kChunk slices of one row.
  const bool whole = D <= kChunk;
  const int64_t per = whole ? kChunk / D : 1;
  const int64_t slices = whole ? 1 : (D + kChunk - 1) / kChunk;
  const int64_t pieces = whole ? (B + per - 1) / per : B * slices;
  // Few pieces (small B, large K: IWAE) would leave threads idle, so K is also split, into a
  // number of chunks that depends on the shapes only: partial sums go to a workspace and are
  // added in chunk order, so the result does not depend on the thread count.
  constexpr int64_t kMinTasks = 16;  // enough for the machines' thread counts we target
  int64_t kchunks =
      pieces >= kMinTasks ? 1 : std::min<int64_t>((K + 15) / 16, (kMinTasks + pieces - 1) / pieces);
  if (kchunks > 1 && kchunks * 5 * N * static_cast<int64_t>(sizeof(A)) > (int64_t{64} << 20)) {
    kchunks = 1;  // the workspace would not be worth its memory
  }
  const int64_t kstep = (K + kchunks - 1) / kchunks;
  kchunks = (K + kstep - 1) / kstep;
  // workspace: [kchunks, 5, N] sums of gz, gz eps, gl eps, gl eps^2, gl (per element)
  std::vector<A> part(kchunks > 1 ? static_cast<size_t>(kchunks * 5 * N) : 0);

  // out <- the backward from the five sums of one element n
  auto finish = [&](int64_t n, A sum_gz, A sum_gze, A sum_gle, A sum_gle2, A sum_gl) {
    const A s = static_cast<A>(sigma[n]);
    const A gv_z = A(0.5) * s * sum_gze;
    if (path) {
      gmu[n] = static_cast<T>(sum_gz - sum_gle / s);
      glv[n] = static_cast<T>(gv_z - A(0.5) * sum_gle2);
    } else {
      gmu[n] = static_cast<T>(sum_gz);
      glv[n] = static_cast<T>(gv_z - A(0.5) * sum_gl);
    }
  };

  at::parallel_for(0, pieces * kchunks, 1, [&](int64_t t0, int64_t t1) {
    alignas(64) T buf[ph::normals_buffer_size<T>(kChunk)];
    // per element of the piece: sum gz, sum gz eps, sum gl eps, sum gl eps^2; sum gl per row
    std::vector<A> acc(static_cast<size_t>(4 * kChunk));
    A* s_gz = acc.data();
    A* s_gze = s_gz + kChunk;
    A* s_gle = s_gze + kChunk;
    A* s_gle2 = s_gle + kChunk;
    std::vector<A> gl_sum(static_cast<size_t>(per));
    // sum gz and sum gz eps over up to kFlush samples in T, then added to the float64 sums
    std::vector<T> blk(static_cast<size_t>(2 * kChunk));
    T* b_gz = blk.data();
    T* b_gze = b_gz + kChunk;
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t piece = task / kchunks, kc = task % kchunks;
      const int64_t b = whole ? piece * per : piece / slices;
      const int64_t d = whole ? 0 : (piece % slices) * kChunk;
      const int64_t nb = whole ? std::min(per, B - b) : 1;
      const int64_t len = whole ? nb * D : std::min(kChunk, D - d);
      const int64_t row_len = whole ? D : len;
      const int64_t n0 = b * D + d;
      std::fill(acc.begin(), acc.end(), A(0));
      std::fill(gl_sum.begin(), gl_sum.end(), A(0));
      std::fill(blk.begin(), blk.end(), T(0));
      const int64_t k_end = std::min(K, (kc + 1) * kstep);
      for (int64_t k = kc * kstep; k < k_end; ++k) {
        const T* e = ph::normals_cpu(key, static_cast<uint64_t>(k * N + n0), len, buf);
        if (gz != nullptr) {
          const T* g = gz + k * N + n0;
          for (int64_t j = 0; j < len; ++j) {
            b_gz[j] += g[j];
            b_gze[j] = ph::fma_(g[j], e[j], b_gze[j]);
          }
          // Flush every kFlush samples counted from the chunk's first (the order depends on
          // the shapes only, as the fixed-order sums require).
          if ((k - kc * kstep) % kFlush == kFlush - 1 || k == k_end - 1) {
            for (int64_t j = 0; j < len; ++j) {
              s_gz[j] += static_cast<A>(b_gz[j]);
              s_gze[j] += static_cast<A>(b_gze[j]);
              b_gz[j] = T(0);
              b_gze[j] = T(0);
            }
          }
        }
        if (gl != nullptr) {
          for (int64_t i = 0; i < nb; ++i) {
            const A w = static_cast<A>(gl[k * B + b + i]);
            gl_sum[i] += w;
            if (path) {
              for (int64_t j = i * row_len; j < (i + 1) * row_len; ++j) {
                const A ej = static_cast<A>(e[j]);
                const A we = w * ej;
                s_gle[j] += we;
                s_gle2[j] = ph::fma_(we, ej, s_gle2[j]);
              }
            }
          }
        }
      }
      if (kchunks == 1) {
        for (int64_t j = 0; j < len; ++j) {
          finish(n0 + j, s_gz[j], s_gze[j], s_gle[j], s_gle2[j], gl_sum[j / row_len]);
        }
      } else {
        A* w = part.data() + kc * 5 * N + n0;
        for (int64_t j = 0; j < len; ++j) {
          w[j] = s_gz[j];
          w[N + j] = s_gze[j];
          w[2 * N + j] = s_gle[j];
          w[3 * N + j] = s_gle2[j];
          w[4 * N + j] = gl_sum[j / row_len];
        }
      }
    }
  });
  if (kchunks > 1) {
    at::parallel_for(0, N, 4096, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        A v[5] = {};
        for (int64_t kc = 0; kc < kchunks; ++kc) {
          for (int q = 0; q < 5; ++q) v[q] += part[(kc * 5 + q) * N + n];
        }
        finish(n, v[0], v[1], v[2], v[3], v[4]);
      }
    });
  }
}

}  // namespace

void reparameterize_forward_kernel(const at::Tensor& mu, const at::Tensor& logvar, uint64_t seed,
                                   uint64_t offset, at::Tensor& z, at::Tensor& log_q) {
  const int64_t D = mu.size(-1);
  const int64_t B = mu.numel() / D;
  const int64_t K = z.size(0);
  const ph::Key key = ph::make_key(seed, offset);
  if (mu.scalar_type() == at::kFloat) {
    forward_impl<float>(mu.const_data_ptr<float>(), logvar.const_data_ptr<float>(), key, K, B, D,
                        z.mutable_data_ptr<float>(), log_q.mutable_data_ptr<float>());
  } else {
    forward_impl<double>(mu.const_data_ptr<double>(), logvar.const_data_ptr<double>(), key, K, B,
                         D, z.mutable_data_ptr<double>(), log_q.mutable_data_ptr<double>());
  }
}

void reparameterize_backward_kernel(const at::Tensor* grad_z, const at::Tensor* grad_log_q,
                                    const at::Tensor& mu, const at::Tensor& logvar, uint64_t seed,
                                    uint64_t offset, bool path_gradient, int64_t num_samples,
                                    at::Tensor& grad_mu, at::Tensor& grad_logvar) {
  const int64_t D = mu.size(-1);
  const int64_t B = mu.numel() / D;
  const ph::Key key = ph::make_key(seed, offset);
  auto run = [&](auto zero) {
    using T = decltype(zero);
    backward_impl<T>(grad_z ? grad_z->const_data_ptr<T>() : nullptr,
                     grad_log_q ? grad_log_q->const_data_ptr<T>() : nullptr,
                     logvar.const_data_ptr<T>(), key, path_gradient, num_samples, B, D,
                     grad_mu.mutable_data_ptr<T>(), grad_logvar.mutable_data_ptr<T>());
  };
  if (mu.scalar_type() == at::kFloat) {
    run(0.0f);
  } else {
    run(0.0);
  }
}

}  // namespace vaebench::cpu::CPU_CAPABILITY

#if VAEBENCH_REGISTERING_UNIT
namespace vaebench {
namespace {

std::tuple<at::Tensor, at::Tensor> reparameterize_cpu(const at::Tensor& mu,
                                                      const at::Tensor& logvar,
                                                      int64_t num_samples, const at::Tensor& seed,
                                                      bool path_gradient) {
  (void)path_gradient;  // used by the backward only
  check_reparameterize_inputs(mu, logvar, num_samples, seed);
  checks::cpu_dtype("reparameterize", mu, "mu");
  const auto [s, off] = read_seed(seed);
  // One explicit copy for non-contiguous inputs; the kernel reads [B, D] row-major.
  const at::Tensor m = mu.contiguous();
  const at::Tensor lv = logvar.contiguous();
  std::vector<int64_t> zshape{num_samples};
  zshape.insert(zshape.end(), mu.sizes().begin(), mu.sizes().end());
  at::Tensor z = at::empty(zshape, mu.options());
  zshape.pop_back();
  at::Tensor log_q = at::empty(zshape, mu.options());
  if (z.numel() > 0) {
    VAEBENCH_CPU_DISPATCH(reparameterize_forward_kernel, m, lv, s, off, z, log_q);
  }
  return {z, log_q};
}

std::tuple<at::Tensor, at::Tensor> reparameterize_backward_cpu(
    const std::optional<at::Tensor>& grad_z, const std::optional<at::Tensor>& grad_log_q,
    const at::Tensor& mu, const at::Tensor& logvar, const at::Tensor& seed, int64_t num_samples,
    bool path_gradient) {
  check_reparameterize_inputs(mu, logvar, num_samples, seed);
  checks::cpu_dtype("reparameterize", mu, "mu");
  check_reparameterize_grads(grad_z, grad_log_q, mu, num_samples);
  const auto [s, off] = read_seed(seed);
  const at::Tensor lv = logvar.contiguous();
  std::optional<at::Tensor> gz, gl;
  if (grad_z.has_value()) gz = grad_z->contiguous();
  if (grad_log_q.has_value()) gl = grad_log_q->contiguous();
  at::Tensor grad_mu = at::zeros(mu.sizes(), mu.options());
  at::Tensor grad_logvar = at::zeros(mu.sizes(), mu.options());
  if (mu.numel() > 0) {
    VAEBENCH_CPU_DISPATCH(reparameterize_backward_kernel, gz ? &*gz : nullptr,
                          gl ? &*gl : nullptr, mu, lv, s, off, path_gradient, num_samples,
                          grad_mu, grad_logvar);
  }
  return {grad_mu, grad_logvar};
}

}  // namespace
}  // namespace vaebench

TORCH_LIBRARY_IMPL(vaebench, CPU, m) {
  m.impl("reparameterize", &vaebench::reparameterize_cpu);
  m.impl("reparameterize_backward", &vaebench::reparameterize_backward_cpu);
}
#endif
