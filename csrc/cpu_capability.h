// Run-time choice among the CPU kernels compiled once per capability (see CMakeLists.txt).
//
// Every csrc/<op>.cpp is compiled with CPU_CAPABILITY set to DEFAULT, AVX2 and AVX512 (x86-64),
// each copy living in namespace vaebench::cpu::<CAPABILITY>. The DEFAULT copy also holds the
// op's registration, which calls VAEBENCH_CPU_DISPATCH to run the best copy this CPU supports.
#pragma once

#include <string>

namespace vaebench {

enum class CpuCapability { DEFAULT = 0, AVX2 = 1, AVX512 = 2 };

// Best capability that was compiled in and that this CPU supports; the environment variable
// VAEBENCH_CPU_CAPABILITY=default|avx2|avx512 lowers it (for tests and benchmarks).
CpuCapability cpu_capability();
std::string cpu_capability_name(CpuCapability c);

}  // namespace vaebench

// True in the one compilation of an op file that registers the op.
#if defined(CPU_CAPABILITY_DEFAULT)
#define VAEBENCH_REGISTERING_UNIT 1
#else
#define VAEBENCH_REGISTERING_UNIT 0
#endif

// Declares `fn` (a function with the given signature) in each capability namespace.
#if defined(__x86_64__) || defined(_M_X64)
#define VAEBENCH_DECLARE_CPU_KERNEL(ret, fn, ...)          \
  namespace vaebench::cpu::DEFAULT { ret fn(__VA_ARGS__); } \
  namespace vaebench::cpu::AVX2 { ret fn(__VA_ARGS__); }    \
  namespace vaebench::cpu::AVX512 { ret fn(__VA_ARGS__); }
// Calls the copy of `fn` for the capability chosen at run time.
#define VAEBENCH_CPU_DISPATCH(fn, ...)                                  \
  ([&]() {                                                              \
    switch (::vaebench::cpu_capability()) {                             \
      case ::vaebench::CpuCapability::AVX512:                           \
        return ::vaebench::cpu::AVX512::fn(__VA_ARGS__);                \
      case ::vaebench::CpuCapability::AVX2:                             \
        return ::vaebench::cpu::AVX2::fn(__VA_ARGS__);                  \
      default:                                                          \
        return ::vaebench::cpu::DEFAULT::fn(__VA_ARGS__);               \
    }                                                                   \
  }())
#else
#define VAEBENCH_DECLARE_CPU_KERNEL(ret, fn, ...) \
  namespace vaebench::cpu::DEFAULT { ret fn(__VA_ARGS__); }
#define VAEBENCH_CPU_DISPATCH(fn, ...) (::vaebench::cpu::DEFAULT::fn(__VA_ARGS__))
#endif
