// The schemas of every vaebench op, declared once. Kernels register themselves in
// csrc/<op>.cpp (CPU) and csrc/cuda/<op>.cu (CUDA) with TORCH_LIBRARY_IMPL; autograd and fake
// (meta) kernels are registered from Python in vaebench/ops/<op>.py.
#include <torch/library.h>

#include "cpu_capability.h"

#include <string>

namespace vaebench {
namespace {

// What this build holds, as JSON: read by vaebench.ops.backend() and by CI to prove that the
// fused kernels (and, where built, the CUDA kernels) are really in the module.
std::string build_info() {
  std::string cuda =
#if defined(VAEBENCH_WITH_CUDA)
      "true";
#else
      "false";
#endif
  return std::string("{\"cuda\": ") + cuda + ", \"cpu_capabilities\": \"" +
         VAEBENCH_CPU_CAPABILITIES + "\", \"cpu_capability\": \"" +
         cpu_capability_name(cpu_capability()) + "\", \"torch\": \"" + VAEBENCH_TORCH_VERSION +
         "\"}";
}

}  // namespace
}  // namespace vaebench

TORCH_LIBRARY(vaebench, m) {
  m.def("build_info() -> str", &vaebench::build_info);
  // Op schema lines follow, one block per op (see vaebench/ops/<op>.py for the math).

  // ---- reparameterize (vaebench/ops/reparameterize.py; csrc/philox.h for the stream) ----
  // seed: CPU int64 [seed, offset]; eps is drawn in the kernel, never an input.
  m.def("reparameterize(Tensor mu, Tensor logvar, int num_samples, Tensor seed, "
        "bool path_gradient=False) -> (Tensor z, Tensor log_q)");
  m.def("reparameterize_backward(Tensor? grad_z, Tensor? grad_log_q, Tensor mu, Tensor logvar, "
        "Tensor seed, int num_samples, bool path_gradient) -> (Tensor grad_mu, Tensor grad_logvar)");
  // The Philox stream itself, for tests (CPU only).
  m.def("philox4x32(Tensor counter, Tensor key) -> Tensor");
  m.def("philox_normal(Tensor seed, int start, int count, ScalarType dtype) -> Tensor");
  // ---- end reparameterize ----

  // gaussian_kl: KL(N(mu, exp(logvar)) || N(prior_mu, exp(prior_logvar))) summed over D; a
  // missing prior is N(0, I). Backward returns the prior grads in the priors' shapes, or empty
  // (0,) tensors for an absent prior or when prior_grad is false.
  m.def("gaussian_kl(Tensor mu, Tensor logvar, Tensor? prior_mu=None, Tensor? prior_logvar=None) -> Tensor");
  m.def("gaussian_kl_backward(Tensor grad, Tensor mu, Tensor logvar, Tensor? prior_mu, "
        "Tensor? prior_logvar, bool prior_grad) -> (Tensor, Tensor, Tensor, Tensor)");

  // log_mean_exp: log (1/K) sum_k exp(log_w_k) along dim; backward from log_w and the output.
  // importance_weights: normalized weights and ESS = 1 / sum w^2 (not differentiable).
  m.def("log_mean_exp(Tensor log_w, int dim=0) -> Tensor");
  m.def("log_mean_exp_backward(Tensor grad, Tensor log_w, Tensor out, int dim) -> Tensor");
  m.def("importance_weights(Tensor log_w, int dim=0) -> (Tensor, Tensor)");

  // bernoulli_head: the decoder's last Linear fused with the Bernoulli log-likelihood summed
  // over D, sum_n x_n l_n - softplus(l_n) with l = h W^T + b, computed in row tiles (the full
  // logits never exist). x broadcasts against h's leading dims. tile_rows = 0 chooses the tile
  // from the L2 cache size (CPU) or GPU memory (CUDA); backward recomputes the logits.
  m.def("bernoulli_head(Tensor h, Tensor weight, Tensor bias, Tensor x, int tile_rows=0) -> Tensor");
  m.def("bernoulli_head_backward(Tensor grad, Tensor h, Tensor weight, Tensor bias, Tensor x, "
        "int tile_rows=0) -> (Tensor grad_h, Tensor grad_weight, Tensor grad_bias)");
}
