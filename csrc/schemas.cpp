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
}
