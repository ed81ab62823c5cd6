#include "cpu_capability.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <string_view>

namespace vaebench {

namespace {

CpuCapability detect() {
  CpuCapability best = CpuCapability::DEFAULT;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  // AVX-512 copies use F, BW, VL and DQ; AVX2 copies use AVX2 and FMA (see CMakeLists.txt).
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    best = CpuCapability::AVX512;
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    best = CpuCapability::AVX2;
  }
#endif
  const char* env = std::getenv("VAEBENCH_CPU_CAPABILITY");
  if (env != nullptr && *env != '\0') {
    const std::string_view want(env);
    CpuCapability asked;
    if (want == "default") {
      asked = CpuCapability::DEFAULT;
    } else if (want == "avx2") {
      asked = CpuCapability::AVX2;
    } else if (want == "avx512") {
      asked = CpuCapability::AVX512;
    } else {
      TORCH_CHECK(false, "VAEBENCH_CPU_CAPABILITY must be one of default, avx2, avx512, got '",
                  want, "'");
    }
    // The variable can only lower the capability: a higher one would crash on this CPU.
    if (static_cast<int>(asked) < static_cast<int>(best)) {
      best = asked;
    }
  }
  return best;
}

}  // namespace

CpuCapability cpu_capability() {
  static const CpuCapability cap = detect();
  return cap;
}

std::string cpu_capability_name(CpuCapability c) {
  switch (c) {
    case CpuCapability::AVX512:
      return "avx512";
    case CpuCapability::AVX2:
      return "avx2";
    default:
      return "default";
  }
}

}  // namespace vaebench
