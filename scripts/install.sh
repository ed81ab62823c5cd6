#!/usr/bin/env bash
# Install vaebench with its compiled kernels into a virtual environment (default: ./.venv).
#
#   bash scripts/install.sh            # CPU kernels always; CUDA kernels when nvcc and a CUDA torch exist
#   VAEBENCH_CUDA=ON bash scripts/install.sh   # fail unless the CUDA kernels are built
#
# Environment knobs: VENV (folder), PYTHON (interpreter for a new venv), TORCH_SPEC (the torch
# to install when the venv has none; default "torch>=2.11,<2.15"), EXTRAS (default "test,bench,slurm"),
# VAEBENCH_CUDA (AUTO|ON|OFF), VAEBENCH_CUDA_ARCHS (default 90), CUDA_HOME (toolkit root).
#
# Why not a plain `pip install .`: the extension must be built against the torch it will run
# with (C++ ABI), and pip's build isolation would fetch a torch of its own choosing. So torch
# and the build tools are installed first and the package is built with --no-build-isolation.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$here/.venv}"
python="${PYTHON:-python3}"
torch_spec="${TORCH_SPEC:-torch>=2.11,<2.15}"
extras="${EXTRAS:-test,bench,slurm}"

if [[ ! -x "$venv/bin/python" ]]; then
  echo "vaebench: creating virtual environment $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "vaebench: installing $torch_spec"
  "${pip[@]}" install -q "$torch_spec"
fi
"${pip[@]}" install -q "scikit-build-core>=0.10" ninja "cmake>=3.25"

# nvcc on PATH may be a wrapper outside the toolkit; CMake wants the toolkit root.
if [[ -z "${CUDA_HOME:-}" && -x /usr/local/cuda/bin/nvcc ]]; then
  export CUDA_HOME=/usr/local/cuda
fi
if [[ -n "${CUDA_HOME:-}" ]]; then
  export CUDACXX="$CUDA_HOME/bin/nvcc"
fi

echo "vaebench: building and installing (VAEBENCH_CUDA=${VAEBENCH_CUDA:-AUTO})"
"${pip[@]}" install -q --no-build-isolation "$here[$extras]"
"$venv/bin/python" - <<'PY'
import vaebench.ops as ops
info = ops.build_info()
print(f"vaebench: installed; backend {ops.backend()}, build {info}")
PY
