// CPU kernels of vaebench::bernoulli_head and bernoulli_head_backward (formulas in
// bernoulli_head.h).
//
// The R rows of h are cut into tiles of T rows, T chosen so that a tile's logits [T, D] stay in
// the L2 cache; each thread walks its own tiles. Per tile: the logits from one BLAS call
// (at::mm on the tile, MKL/OpenBLAS single-threaded inside the parallel region), then one
// vectorized pass over them while they are in cache. The full [R, D] logits never exist. The
// backward recomputes a tile's logits, turns them into dl in place, and feeds two more BLAS
// calls: grad_h's tile rows, and grad_W accumulated into one [D, H] buffer per thread (summed
// at the end, with grad_b's per-thread rows).
//
// This file is compiled once per CPU capability (csrc/cpu_capability.h); the DEFAULT copy also
// registers the ops.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "bernoulli_head.h"
#include "cpu_capability.h"

VAEBENCH_DECLARE_CPU_KERNEL(void, bernoulli_head_forward_kernel, const vaebench::bhead::Layout& lay,
                            const at::Tensor& weight, const at::Tensor& bias, int64_t tile_rows,
                            at::Tensor& out)
VAEBENCH_DECLARE_CPU_KERNEL(void, bernoulli_head_backward_kernel, const at::Tensor& grad,
                            const vaebench::bhead::Layout& lay, const at::Tensor& weight,
                            const at::Tensor& bias, int64_t tile_rows, at::Tensor& grad_h,
                            at::Tensor& grad_w, at::Tensor& grad_b)

namespace vaebench::cpu::CPU_CAPABILITY {
namespace {

using at::vec::Vectorized;

// Plain [rows, cols] views of raw memory: no autograd metadata, so the BLAS calls below are
// safe on OpenMP worker threads, which do not inherit the caller's dispatcher state.
template <typename T>
at::Tensor view(const T* p, int64_t rows, int64_t cols) {
  return at::from_blob(const_cast<T*>(p), {rows, cols},
                       at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value));
}

// log1p(e) for e in [0, 1], the softplus tail: 2 atanh(s) with s = e / (2 + e) in [0, 1/3],
//   log1p(e) = 2 s (1 + s^2/3 + s^4/5 + ... + s^14/15),
// truncated where the next term, s^16/17 <= 9^-8/17 ~ 1.4e-9 relative, is below float32's
// rounding. One division and eight fmas: about half the cost of SLEEF's log1p, which made the
// row pass cost more than the tile's matmul. float64 keeps SLEEF's log1p (16 digits).
template <typename T>
Vectorized<T> log1p_unit(const Vectorized<T>& e) {
  using Vec = Vectorized<T>;
  if constexpr (std::is_same_v<T, float>) {
    const Vec s = e / (Vec(2.f) + e);
    const Vec s2 = s * s;
    Vec p(1.f / 15.f);
    for (const float c : {1.f / 13.f, 1.f / 11.f, 1.f / 9.f, 1.f / 7.f, 1.f / 5.f, 1.f / 3.f, 1.f}) {
      p = at::vec::fmadd(p, s2, Vec(c));
    }
    return Vec(2.f) * s * p;
  } else {
    return e.log1p();
  }
}

// Forward row pass: out_r = sum_n x_n (L_n + b_n) - softplus(L_n + b_n), L: [D] (bias not yet
// added), x, b: [D].
template <typename T>
T row_log_prob(const T* L, const T* x, const T* b, int64_t D) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  const Vec zero(T(0));
  Vec acc(T(0));
  int64_t j = 0;
  for (; j + V <= D; j += V) {
    const Vec l = Vec::loadu(L + j) + Vec::loadu(b + j);
    // x l - softplus(l), softplus(l) = max(l, 0) + log1p(exp(-|l|))
    acc = acc + (Vec::loadu(x + j) * l - (at::vec::maximum(l, zero) + log1p_unit(l.abs().neg().exp())));
  }
  T sum = at::vec::vec_reduce_all<T>([](Vec& a, Vec& c) { return a + c; }, acc);
  // Tail one by one: zero-filled lanes would add -softplus(0) = -log 2 each.
  for (; j < D; ++j) sum += bhead::log_prob_term(x[j], L[j] + b[j]);
  return sum;
}

// Backward row pass, in place: L_n <- g (x_n - sigmoid(L_n + b_n)) (dl).
template <typename T>
void row_dlogit(T* L, const T* x, const T* b, T g, int64_t D) {
  using Vec = Vectorized<T>;
  constexpr int64_t V = Vec::size();
  const Vec one(T(1)), gv(g);
  int64_t j = 0;
  for (; j + V <= D; j += V) {
    const Vec l = Vec::loadu(L + j) + Vec::loadu(b + j);
    // dl = g (x - sigmoid(l)), sigmoid(l) = 1 / (1 + exp(-l))
    (gv * (Vec::loadu(x + j) - one / (one + l.neg().exp()))).store(L + j);
  }
  for (; j < D; ++j) L[j] = bhead::dlogit(g, x[j], L[j] + b[j]);
}

// Rows per tile: the tile's logits [T, D] take about a quarter of one core's L2 (the rest
// holds W, the tile of h and the BLAS packing buffers); at least 16 rows so the BLAS call is
// efficient, and small enough that every thread gets a tile.
int64_t choose_tile_rows(int64_t R, int64_t D, int64_t elem, int64_t requested) {
  if (requested > 0) return requested;
  long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (l2 <= 0) l2 = 1 << 20;
  int64_t t = std::clamp<int64_t>(l2 / 4 / std::max<int64_t>(1, D * elem), 16, 1024);
  const int64_t per_thread = (R + at::get_num_threads() - 1) / at::get_num_threads();
  return std::max<int64_t>(1, std::min(t, per_thread));
}

template <typename T>
void forward_impl(const bhead::Layout& lay, const T* W, const T* b, int64_t tile_rows, T* out) {
  const int64_t R = lay.R, H = lay.H, D = lay.D, x_rows = lay.x2d.size(0);
  const T* h = lay.h2d.const_data_ptr<T>();
  const T* x = lay.x2d.const_data_ptr<T>();
  const int64_t T_rows = choose_tile_rows(R, D, sizeof(T), tile_rows);
  const int64_t tiles = (R + T_rows - 1) / T_rows;
  const at::Tensor Wt = view(W, D, H).t();  // [H, D]
  at::parallel_for(0, tiles, 1, [&](int64_t tb, int64_t te) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;  // thread-local: set on each worker
    at::Tensor buf = at::empty({T_rows, D}, at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value));
    T* L = buf.mutable_data_ptr<T>();
    for (int64_t tile = tb; tile < te; ++tile) {
      const int64_t r0 = tile * T_rows, t = std::min(T_rows, R - r0);
      at::Tensor Lt = buf.narrow(0, 0, t);
      // L = h_tile W^T  ([t, H] x [H, D]); the bias is added in the row pass
      at::mm_out(Lt, view(h + r0 * H, t, H), Wt);
      for (int64_t i = 0; i < t; ++i) {
        const int64_t r = r0 + i;
        out[r] = row_log_prob(L + i * D, x + (r % x_rows) * D, b, D);
      }
    }
  });
}

template <typename T>
void backward_impl(const T* g, const bhead::Layout& lay, const T* W, const T* b, int64_t tile_rows,
                   T* gh, at::Tensor& grad_w, at::Tensor& grad_b) {
  const int64_t R = lay.R, H = lay.H, D = lay.D, x_rows = lay.x2d.size(0);
  const T* h = lay.h2d.const_data_ptr<T>();
  const T* x = lay.x2d.const_data_ptr<T>();
  const int64_t T_rows = choose_tile_rows(R, D, sizeof(T), tile_rows);
  const int64_t tiles = (R + T_rows - 1) / T_rows;
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), tiles);
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  // One grad_W [D, H] and grad_b [D] per worker, summed after the parallel region. grad_b adds
  // each tile's column sums (ATen's cascade sum) in float64: a row-by-row running sum in float32
  // would lose digits over thousands of rows.
  at::Tensor part_w = at::zeros({workers, D, H}, opts);
  at::Tensor part_b = at::zeros({workers, D}, opts.dtype(at::kDouble));
  const at::Tensor Wv = view(W, D, H), Wt = Wv.t();
  // Worker w owns tiles [w * per, (w + 1) * per) and accumulator w: the split (and so the
  // summation order) does not depend on how OpenMP hands out the workers.
  const int64_t per = (tiles + workers - 1) / workers;
  at::parallel_for(0, workers, 1, [&](int64_t wb, int64_t we) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;  // thread-local: set on each worker
    at::Tensor buf = at::empty({T_rows, D}, opts);
    at::Tensor tile_b = at::empty({D}, opts);
    T* L = buf.mutable_data_ptr<T>();
    for (int64_t w = wb; w < we; ++w) {
      at::Tensor gw = part_w.select(0, w);
      at::Tensor gb = part_b.select(0, w);
      for (int64_t tile = w * per; tile < std::min(tiles, (w + 1) * per); ++tile) {
        const int64_t r0 = tile * T_rows, t = std::min(T_rows, R - r0);
        at::Tensor Lt = buf.narrow(0, 0, t);
        const at::Tensor ht = view(h + r0 * H, t, H);
        at::mm_out(Lt, ht, Wt);  // recomputed logits, bias added in the row pass
        for (int64_t i = 0; i < t; ++i) {
          const int64_t r = r0 + i;
          row_dlogit(L + i * D, x + (r % x_rows) * D, b, g[r], D);
        }
        at::sum_out(tile_b, Lt, 0);
        gb.add_(tile_b);
        // grad_h tile = dl W ([t, D] x [D, H]); grad_W += dl^T h_tile ([D, t] x [t, H])
        at::Tensor gh_t = view(gh + r0 * H, t, H);
        at::mm_out(gh_t, Lt, Wv);
        gw.addmm_(Lt.t(), ht);
      }
    }
  });
  grad_w.copy_(part_w.sum(0));
  grad_b.copy_(part_b.sum(0));
}

}  // namespace

void bernoulli_head_forward_kernel(const bhead::Layout& lay, const at::Tensor& weight,
                                   const at::Tensor& bias, int64_t tile_rows, at::Tensor& out) {
  AT_DISPATCH_FLOATING_TYPES(lay.h2d.scalar_type(), "vaebench.bernoulli_head", [&] {
    forward_impl<scalar_t>(lay, weight.const_data_ptr<scalar_t>(), bias.const_data_ptr<scalar_t>(),
                           tile_rows, out.mutable_data_ptr<scalar_t>());
  });
}

void bernoulli_head_backward_kernel(const at::Tensor& grad, const bhead::Layout& lay,
                                    const at::Tensor& weight, const at::Tensor& bias,
                                    int64_t tile_rows, at::Tensor& grad_h, at::Tensor& grad_w,
                                    at::Tensor& grad_b) {
  AT_DISPATCH_FLOATING_TYPES(lay.h2d.scalar_type(), "vaebench.bernoulli_head_backward", [&] {
    backward_impl<scalar_t>(grad.const_data_ptr<scalar_t>(), lay, weight.const_data_ptr<scalar_t>(),
                            bias.const_data_ptr<scalar_t>(), tile_rows,
                            grad_h.mutable_data_ptr<scalar_t>(), grad_w, grad_b);
  });
}

}  // namespace vaebench::cpu::CPU_CAPABILITY

#if VAEBENCH_REGISTERING_UNIT
namespace vaebench {
namespace {

void check_tile_rows(std::string_view op, int64_t tile_rows) {
  TORCH_CHECK(tile_rows >= 0, "vaebench.", op,
              ": tile_rows must be >= 0 (0 chooses it from the L2 cache size), got ", tile_rows);
}

at::Tensor bernoulli_head_cpu(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& bias,
                              const at::Tensor& x, int64_t tile_rows) {
  constexpr std::string_view op = "bernoulli_head";
  check_tile_rows(op, tile_rows);
  checks::cpu_dtype(op, h, "h");
  const bhead::Layout lay = bhead::check_inputs(op, h, weight, bias, x);
  at::Tensor out = at::empty(lay.out_sizes, h.options());
  if (lay.R > 0) {
    VAEBENCH_CPU_DISPATCH(bernoulli_head_forward_kernel, lay, weight.contiguous(), bias.contiguous(),
                          tile_rows, out);
  }
  return out;
}

// (grad_h, grad_weight, grad_bias) in the shapes of h, weight and bias.
std::tuple<at::Tensor, at::Tensor, at::Tensor> bernoulli_head_backward_cpu(
    const at::Tensor& grad, const at::Tensor& h, const at::Tensor& weight, const at::Tensor& bias,
    const at::Tensor& x, int64_t tile_rows) {
  constexpr std::string_view op = "bernoulli_head_backward";
  check_tile_rows(op, tile_rows);
  checks::cpu_dtype(op, h, "h");
  const bhead::Layout lay = bhead::check_inputs(op, h, weight, bias, x);
  bhead::check_grad(op, grad, h, lay);
  at::Tensor gh = at::empty(h.sizes(), h.options());
  at::Tensor gw = at::zeros(weight.sizes(), weight.options());
  at::Tensor gb = at::zeros(bias.sizes(), bias.options());
  if (lay.R > 0 && lay.D > 0) {
    VAEBENCH_CPU_DISPATCH(bernoulli_head_backward_kernel, grad.contiguous(), lay, weight.contiguous(),
                          bias.contiguous(), tile_rows, gh, gw, gb);
  } else {
    gh.zero_();
  }
  return {gh, gw, gb};
}

}  // namespace
}  // namespace vaebench

TORCH_LIBRARY_IMPL(vaebench, CPU, m) {
  m.impl("bernoulli_head", &vaebench::bernoulli_head_cpu);
  m.impl("bernoulli_head_backward", &vaebench::bernoulli_head_backward_cpu);
}
#endif
